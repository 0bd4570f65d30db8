//! The policy stage: for each tool call, the scenario's policy rules decide
//! whether it goes on, is refused, waits for a human, or is over a rate
//! limit.
//!
//! Rules were compiled when the scenario loaded (patterns parsed, CEL
//! parsed and checked), so deciding only matches names and evaluates
//! conditions. The variables a condition can read are bound lazily, once
//! per decision, and only those that some applicable condition reads: a
//! policy of plain name patterns never converts the arguments, and only a
//! condition that reads `calls` sees the run's history.
//!
//! Rate limits are sliding windows kept in memory per rule, in real
//! monotonic time: they limit how fast the agent acts, which the virtual
//! clock (stepped by the run, not by the wall) cannot measure.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cel::extractors::Arguments;
use cel::objects::{Key, Map as CelMap};
use cel::{Context, Env, ExecutionError, Value as CelValue};
use sandbar_scenario::{CelCondition, ConditionVariable, Policy, PolicyAction, PolicyDefault};
use serde_json::{Map, Value};

/// How many earlier calls `calls` holds at most. Older ones are dropped a
/// thousand at a time, so `calls` holds the last 9,000 to 10,000 calls of
/// a long run; `counts` stays exact.
pub const HISTORY_LIMIT: usize = 10_000;

/// How many of the oldest calls are dropped once the history is full.
const HISTORY_DROP: usize = 1_000;

/// The rule name a decision of the policy's default carries.
pub const DEFAULT_RULE: &str = "default";

/// What the policy knows about a call.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// The tenant the run belongs to.
    pub tenant: &'a str,
    /// The token id, if the session is authenticated.
    pub token: Option<&'a str>,
    /// The tool being called.
    pub tool: &'a str,
    /// The call's arguments.
    pub args: &'a Map<String, Value>,
    /// The upstream the tool forwards to, if any.
    pub upstream: Option<&'a str>,
    /// `stub`, `live`, `record` or `replay`.
    pub mode: &'a str,
    /// The run's earlier calls.
    pub history: &'a History,
}

/// The run's earlier calls, as policies see them: `calls` (at most the last
/// [`HISTORY_LIMIT`]) and `counts` (exact). Kept in CEL's own values, so a
/// decision shares them instead of converting them again.
#[derive(Default)]
pub struct History {
    /// Each a map `{tool, args, error}`, oldest first. Shared with the
    /// evaluation context during a decision, and appended to in place
    /// once that is over.
    calls: Arc<Vec<CelValue>>,
    /// Tool name → calls so far.
    counts: Arc<HashMap<Key, CelValue>>,
    /// Every call pushed, including those dropped from `calls`.
    total: usize,
}

impl History {
    /// Records a finished call: its tool, its arguments and whether it
    /// ended in an error.
    pub fn push(&mut self, tool: &str, args: &Map<String, Value>, error: bool) {
        let mut call = HashMap::with_capacity(3);
        call.insert(key("tool"), CelValue::String(Arc::new(tool.to_owned())));
        call.insert(key("args"), cel_object(args));
        call.insert(key("error"), CelValue::Bool(error));
        let calls = Arc::make_mut(&mut self.calls);
        if calls.len() >= HISTORY_LIMIT {
            calls.drain(..HISTORY_DROP);
        }
        calls.push(CelValue::Map(CelMap {
            map: Arc::new(call),
        }));
        let counts = Arc::make_mut(&mut self.counts);
        match counts.get_mut(&key(tool)) {
            Some(CelValue::Int(n)) => *n += 1,
            _ => {
                counts.insert(key(tool), CelValue::Int(1));
            }
        }
        self.total += 1;
    }

    /// How many calls were pushed (all of them, not only those `calls` keeps).
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no call was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many calls of `tool` were pushed.
    pub fn count(&self, tool: &str) -> usize {
        match self.counts.get(&key(tool)) {
            Some(CelValue::Int(n)) => usize::try_from(*n).unwrap_or(0),
            _ => 0,
        }
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("calls", &self.total)
            .field("kept", &self.calls.len())
            .field("tools", &self.counts.len())
            .finish()
    }
}

/// What the policy decided about a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The call goes on. `rule` is the rule that allowed it, `None` when no
    /// rule decided and the default allows.
    Allow { rule: Option<String> },
    /// The call is refused; `message` is for the agent. `rule` is
    /// [`DEFAULT_RULE`] when the default denies.
    Deny { rule: String, message: String },
    /// The call waits for a human's approval, and is denied if none comes
    /// within `timeout`.
    Approve {
        rule: String,
        message: String,
        timeout: Duration,
    },
    /// The call is over a rate limit; one may succeed after `retry_after`.
    RateLimited {
        rule: String,
        message: String,
        retry_after: Duration,
    },
}

/// A policy ready to evaluate, with the rate-limit windows of one run.
pub struct PolicyState {
    policy: Arc<Policy>,
    /// Per rule (empty for rules that are not rate limits): when the calls
    /// still in its window were let through, oldest first.
    windows: Mutex<Vec<RateWindow>>,
    /// Every tool name a rule's condition looks up in `counts` literally;
    /// they read 0 until the tool is called.
    count_keys: Vec<String>,
}

impl PolicyState {
    /// A run's policy state, with empty rate-limit windows. Takes the
    /// policy itself or a shared one.
    pub fn new(policy: impl Into<Arc<Policy>>) -> Self {
        let policy: Arc<Policy> = policy.into();
        let mut count_keys: Vec<String> = Vec::new();
        for key in policy
            .rules
            .iter()
            .filter_map(|r| r.when.as_ref())
            .flat_map(|w| w.count_keys())
        {
            if !count_keys.contains(key) {
                count_keys.push(key.clone());
            }
        }
        let windows = policy.rules.iter().map(|_| RateWindow::default()).collect();
        PolicyState {
            policy,
            windows: Mutex::new(windows),
            count_keys,
        }
    }

    /// The policy this state evaluates.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Decides one call. Rules are tried in order: the first whose pattern
    /// matches the tool and whose `when` holds decides, except that a rate
    /// limit under its limit counts the call and lets the next rules decide
    /// (it decides only when the call is over the limit, which is then not
    /// counted). A `when` that cannot be evaluated (a missing key, values
    /// of the wrong types) denies the call: a policy fails closed. When no
    /// rule decides, the policy's default does.
    pub fn decide(&self, input: &PolicyInput<'_>) -> Verdict {
        let mut bindings = Bindings::new(input, &self.count_keys);
        for (index, rule) in self.policy.rules.iter().enumerate() {
            if !rule.tools.matches(input.tool) {
                continue;
            }
            if let Some(when) = &rule.when {
                match bindings.evaluate(when) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(error) => {
                        return Verdict::Deny {
                            rule: rule.name.clone(),
                            message: format!(
                                "the call is denied because the condition of policy rule `{}` could not be evaluated: {error}",
                                rule.name
                            ),
                        };
                    }
                }
            }
            match rule.action {
                PolicyAction::Allow => {
                    return Verdict::Allow {
                        rule: Some(rule.name.clone()),
                    };
                }
                PolicyAction::Deny => {
                    return Verdict::Deny {
                        rule: rule.name.clone(),
                        message: rule.message.clone(),
                    };
                }
                PolicyAction::Approve => {
                    return Verdict::Approve {
                        rule: rule.name.clone(),
                        message: rule.message.clone(),
                        timeout: self.policy.approval_timeout,
                    };
                }
                PolicyAction::RateLimit { calls, per } => {
                    if let Some(retry_after) = self.count_call(index, calls, per) {
                        return Verdict::RateLimited {
                            rule: rule.name.clone(),
                            message: rule.message.clone(),
                            retry_after,
                        };
                    }
                }
            }
        }
        match self.policy.default {
            PolicyDefault::Allow => Verdict::Allow { rule: None },
            PolicyDefault::Deny => Verdict::Deny {
                rule: DEFAULT_RULE.to_owned(),
                message: format!(
                    "the scenario's policy denies `{}`: no rule allows it",
                    input.tool
                ),
            },
        }
    }

    /// Counts a call in rule `index`'s window if it is under the limit;
    /// otherwise says how long until the oldest call leaves the window.
    fn count_call(&self, index: usize, calls: u32, per: Duration) -> Option<Duration> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.get_mut(index)?.admit(calls, per).err()
    }
}

/// The calls a rate let through in its sliding window, oldest first: a
/// policy's `rate_limit` rule's, or a token's.
#[derive(Debug, Default)]
pub(crate) struct RateWindow(VecDeque<Instant>);

impl RateWindow {
    /// Counts a call now if fewer than `calls` went through in the last
    /// `per`; otherwise says how long until the oldest leaves the window
    /// (and counts nothing).
    pub(crate) fn admit(&mut self, calls: u32, per: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        while self
            .0
            .front()
            .is_some_and(|oldest| now.duration_since(*oldest) >= per)
        {
            self.0.pop_front();
        }
        if self.0.len() < calls as usize {
            self.0.push_back(now);
            return Ok(());
        }
        let oldest = self.0.front().copied().unwrap_or(now);
        Err(per.saturating_sub(now.duration_since(oldest)))
    }
}

impl fmt::Debug for PolicyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyState")
            .field("rules", &self.policy.rules.len())
            .finish_non_exhaustive()
    }
}

/// Evaluates one compiled condition (a token's argument constraint, say)
/// against a call. `Err` carries the evaluation error; callers should treat
/// it as a refusal.
pub fn evaluate(condition: &CelCondition, input: &PolicyInput<'_>) -> Result<bool, String> {
    Bindings::new(input, condition.count_keys()).evaluate(condition)
}

/// The standard CEL environment, built once: its functions and macros.
static ENVIRONMENT: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// The evaluation context of one decision, made on first use, with each
/// variable bound the first time a condition reads it.
struct Bindings<'i, 'a> {
    input: &'i PolicyInput<'a>,
    count_keys: &'i [String],
    context: Option<Context<'static, 'static>>,
    bound: u16,
}

impl<'i, 'a> Bindings<'i, 'a> {
    fn new(input: &'i PolicyInput<'a>, count_keys: &'i [String]) -> Self {
        Bindings {
            input,
            count_keys,
            context: None,
            bound: 0,
        }
    }

    fn evaluate(&mut self, condition: &CelCondition) -> Result<bool, String> {
        let context = match &mut self.context {
            Some(context) => context,
            empty => empty.insert(new_context()?),
        };
        for variable in condition.variables() {
            let bit = 1u16 << (variable as u16);
            if self.bound & bit == 0 {
                context.add_variable_from_value(
                    variable.name(),
                    value_of(variable, self.input, self.count_keys),
                );
                self.bound |= bit;
            }
        }
        match condition.program().execute(context) {
            Ok(CelValue::Bool(result)) => Ok(result),
            Ok(other) => Err(format!(
                "`{}` gave {} where true or false was expected",
                condition.source(),
                describe(&other)
            )),
            Err(error) => Err(format!("`{}`: {error}", condition.source())),
        }
    }
}

fn new_context() -> Result<Context<'static, 'static>, String> {
    let mut context = Context::with_env(Arc::clone(&ENVIRONMENT));
    context
        .add_function("sum", sum)
        .map_err(|e| format!("cannot set up policy functions: {e}"))?;
    Ok(context)
}

/// The value of `variable` for this call.
fn value_of(
    variable: ConditionVariable,
    input: &PolicyInput<'_>,
    count_keys: &[String],
) -> CelValue {
    let text = |s: &str| CelValue::String(Arc::new(s.to_owned()));
    match variable {
        ConditionVariable::Tenant => text(input.tenant),
        ConditionVariable::Token => text(input.token.unwrap_or("")),
        ConditionVariable::Tool => text(input.tool),
        ConditionVariable::Args => cel_object(input.args),
        ConditionVariable::Upstream => text(input.upstream.unwrap_or("")),
        ConditionVariable::Mode => text(input.mode),
        ConditionVariable::Calls => CelValue::List(Arc::clone(&input.history.calls)),
        ConditionVariable::Counts => {
            let mut counts = Arc::clone(&input.history.counts);
            for name in count_keys {
                if !counts.contains_key(&key(name)) {
                    Arc::make_mut(&mut counts).insert(key(name), CelValue::Int(0));
                }
            }
            CelValue::Map(CelMap { map: counts })
        }
    }
}

/// `sum(list)`: the sum of a list of numbers; an int when every item is an
/// int, a double otherwise.
fn sum(Arguments(args): Arguments) -> Result<CelValue, ExecutionError> {
    let [CelValue::List(items)] = args.as_slice() else {
        return Err(ExecutionError::function_error(
            "sum",
            "sum takes one list of numbers, e.g. sum(calls.map(c, c.args.amount))",
        ));
    };
    let mut ints: i64 = 0;
    let mut doubles: Option<f64> = None;
    for item in items.iter() {
        match item {
            CelValue::Int(n) => {
                ints = ints
                    .checked_add(*n)
                    .ok_or_else(|| ExecutionError::function_error("sum", "the sum overflows"))?;
            }
            CelValue::UInt(n) => {
                ints = i64::try_from(*n)
                    .ok()
                    .and_then(|n| ints.checked_add(n))
                    .ok_or_else(|| ExecutionError::function_error("sum", "the sum overflows"))?;
            }
            CelValue::Float(x) => *doubles.get_or_insert(0.0) += x,
            other => {
                return Err(ExecutionError::function_error(
                    "sum",
                    format!("sum adds numbers, and the list holds {}", describe(other)),
                ));
            }
        }
    }
    Ok(match doubles {
        Some(x) => CelValue::Float(x + ints as f64),
        None => CelValue::Int(ints),
    })
}

/// A value's type, with the value when it is short, for messages.
fn describe(value: &CelValue) -> String {
    match value {
        CelValue::Null => "null".to_owned(),
        CelValue::Bool(b) => format!("the bool {b}"),
        CelValue::Int(n) => format!("the int {n}"),
        CelValue::UInt(n) => format!("the uint {n}"),
        CelValue::Float(x) => format!("the double {x}"),
        CelValue::String(_) => "a string".to_owned(),
        CelValue::List(_) => "a list".to_owned(),
        CelValue::Map(_) => "a map".to_owned(),
        other => format!("a {}", other.type_of()),
    }
}

fn key(name: &str) -> Key {
    Key::String(Arc::new(name.to_owned()))
}

/// A JSON object as a CEL map.
fn cel_object(object: &Map<String, Value>) -> CelValue {
    CelValue::Map(CelMap {
        map: Arc::new(object.iter().map(|(k, v)| (key(k), cel_value(v))).collect()),
    })
}

/// A JSON value as CEL sees it. Numbers are ints when integral (`100` and
/// `100.0` alike, up to 2^53 for the latter) and doubles otherwise, so an
/// amount compares and adds the same way however the client wrote it.
fn cel_value(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                CelValue::UInt(u)
            } else {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.fract() == 0.0 && x.abs() <= 9_007_199_254_740_992.0 {
                    CelValue::Int(x as i64)
                } else {
                    CelValue::Float(x)
                }
            }
        }
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(cel_value).collect())),
        Value::Object(object) => cel_object(object),
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
