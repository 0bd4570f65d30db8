//! Call matching for replay: what makes two calls "the same", the field
//! level differences between two JSON values, and the [`Replayer`] that
//! hands recorded interactions out to a run's calls.
//!
//! The *subject* of a call is what is compared: the `arguments` of a
//! `tools/call` (absent arguments count as `{}`), the whole `params` (less
//! `_meta`) of any other method. Two calls match when their methods (and tool
//! names) are equal and their subjects are equal once normalised:
//!
//! - object keys are compared regardless of order, numbers by value (`1`
//!   equals `1.0`), and a redaction placeholder equals any other
//!   (`[REDACTED:secret:api_key]` recorded with a scenario's secrets equals
//!   `[REDACTED:token]` from a replay that only detects the value): what was
//!   redacted is compared by where it was, never by what it was;
//! - rules in the [`MatchConfig`] relax the comparison at given paths of the
//!   subject: [`PathMatch::Ignore`] removes the field (an ignored array
//!   element keeps its place but not its value), [`PathMatch::Regex`] makes
//!   every string matching the regex equal to every other one (a string that
//!   does not match is compared as it is), [`PathMatch::SameType`] makes any
//!   two values of the same JSON type equal. Where several rules name the
//!   same field, the first one decides.
//!
//! Normalisation and diffs recurse over values. Values that come from a
//! cassette or from the wire are at most 128 levels deep; for anything
//! deeper built in memory, levels past [`COMPARE_DEPTH`] are not compared
//! rather than risk the stack.

mod path;
mod replay;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::json::{canonical_number, clone_bounded, compact, type_name};
use crate::model::tool_of;

pub(crate) use path::render as render_path;
pub use path::{FieldPath, PathSegment};
pub use replay::{Candidate, DivergenceReport, Miss, Replayer};
pub(crate) use replay::{call_line, call_name};

/// How many levels normalisation and diffs descend before they stop
/// comparing.
pub const COMPARE_DEPTH: usize = 256;

/// What makes two calls "the same" for replay.
#[derive(Debug, Clone, Default)]
pub struct MatchConfig {
    /// Rules on paths of the call's subject; the first rule naming a field
    /// decides how it is compared.
    pub rules: Vec<PathRule>,
}

impl MatchConfig {
    /// A config with no rules: subjects must be equal.
    pub fn new() -> MatchConfig {
        MatchConfig::default()
    }

    /// Adds a rule at `path` (in [`FieldPath`] syntax).
    pub fn with_rule(mut self, path: &str, how: PathMatch) -> Result<MatchConfig, String> {
        self.rules.push(PathRule {
            path: path.parse()?,
            how,
        });
        Ok(self)
    }
}

/// How the values at one path are compared.
#[derive(Debug, Clone)]
pub struct PathRule {
    /// Where, relative to the call's subject.
    pub path: FieldPath,
    /// How.
    pub how: PathMatch,
}

/// A relaxed comparison for the values at a path.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// The field is not compared at all.
    Ignore,
    /// Values are the same when both are strings matching the regex (which
    /// is not anchored: write `^...$` to match whole strings).
    Regex(Regex),
    /// Values are the same when they have the same JSON type.
    SameType,
}

/// Matching configuration for a replay or a run diff.
#[derive(Debug, Clone, Default)]
pub struct MatchOptions {
    /// Rules for every call.
    pub default: MatchConfig,
    /// Rules for the calls of one tool, by tool name, applied after the
    /// default rules.
    pub per_tool: HashMap<String, MatchConfig>,
    /// Whether replayed calls must come in the recorded order.
    pub strict_order: bool,
    /// When a call's recorded answers are used up, answer it again with
    /// the last one instead of missing (outside strict order mode): for
    /// agents that poll, and for load tests that repeat one call.
    pub repeat_last: bool,
}

impl MatchOptions {
    /// The rules for a call to `tool` (or to a method with no tool): the
    /// default ones, then the tool's.
    fn rules_for(&self, tool: Option<&str>) -> Vec<&PathRule> {
        let mut rules: Vec<&PathRule> = self.default.rules.iter().collect();
        if let Some(config) = tool.and_then(|tool| self.per_tool.get(tool)) {
            rules.extend(config.rules.iter());
        }
        rules
    }

    /// The rules that apply to a call and where its subject sits in its
    /// params.
    pub(crate) fn scope(&self, method: &str, params: &Value) -> Scope<'_> {
        let tool = tool_of(method, params);
        Scope {
            rules: self.rules_for(tool),
            base: if method == "tools/call" {
                vec![PathSegment::Key("arguments".to_owned())]
            } else {
                Vec::new()
            },
        }
    }

    /// The identity of a call for matching: two calls match exactly when
    /// their keys are equal.
    pub(crate) fn call_key(&self, method: &str, params: &Value) -> String {
        let scope = self.scope(method, params);
        let tool = tool_of(method, params);
        let subject = subject(method, params);
        let normalised = normalise(
            &subject,
            &scope.rules,
            &scope.base,
            &mut scope.base.clone(),
            0,
        )
        .unwrap_or(Value::Null);
        let text = serde_json::to_string(&normalised).unwrap_or_default();
        format!("{method}\u{0}{}\u{0}{text}", tool.unwrap_or(""))
    }
}

/// The rules of one call, and the path of its subject inside its params
/// (`arguments` for `tools/call`, the root otherwise).
pub(crate) struct Scope<'a> {
    pub(crate) rules: Vec<&'a PathRule>,
    pub(crate) base: Vec<PathSegment>,
}

/// A call's params without `_meta` (`null` counts as `{}`).
pub(crate) fn params_without_meta(params: &Value) -> Value {
    match params {
        Value::Null => Value::Object(Map::new()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| key.as_str() != "_meta")
                .map(|(key, item)| (key.clone(), clone_bounded(item, COMPARE_DEPTH)))
                .collect(),
        ),
        other => clone_bounded(other, COMPARE_DEPTH),
    }
}

/// A call's params as replay compares them field by field: for a
/// `tools/call` its `name` and its `arguments` (`{}` when absent), for other
/// methods its params less `_meta`.
pub(crate) fn comparable_params(method: &str, params: &Value) -> Value {
    if method == "tools/call" {
        let mut map = Map::new();
        if let Some(name) = params.get("name") {
            map.insert("name".to_owned(), clone_bounded(name, COMPARE_DEPTH));
        }
        let arguments = clone_bounded(&subject(method, params), COMPARE_DEPTH);
        map.insert("arguments".to_owned(), arguments);
        Value::Object(map)
    } else {
        params_without_meta(params)
    }
}

/// What is compared of a call: its arguments for `tools/call` (`{}` when
/// absent), its params less `_meta` otherwise (`{}` when absent).
pub(crate) fn subject<'a>(method: &str, params: &'a Value) -> Cow<'a, Value> {
    let value = if method == "tools/call" {
        params.get("arguments").unwrap_or(&Value::Null)
    } else {
        params
    };
    match value {
        Value::Null => Cow::Owned(Value::Object(Map::new())),
        Value::Object(map) if method != "tools/call" && map.contains_key("_meta") => {
            Cow::Owned(params_without_meta(value))
        }
        other => Cow::Borrowed(other),
    }
}

/// Marks a value replaced by a rule. The key holds a NUL character, which
/// no real key is expected to hold, so a marker never equals real data.
fn marker(what: &str) -> Value {
    let mut map = Map::new();
    map.insert("\u{0}sandbar".to_owned(), Value::String(what.to_owned()));
    Value::Object(map)
}

fn rule_at<'r>(
    rules: &[&'r PathRule],
    base: &[PathSegment],
    at: &[PathSegment],
) -> Option<&'r PathRule> {
    rules
        .iter()
        .copied()
        .find(|rule| rule.path.matches_at(base, at))
}

/// `value` (found at `at`) in canonical form with the rules applied: keys
/// sorted, numbers canonical. `None` when the value is ignored.
pub(crate) fn normalise(
    value: &Value,
    rules: &[&PathRule],
    base: &[PathSegment],
    at: &mut Vec<PathSegment>,
    level: usize,
) -> Option<Value> {
    if let Some(rule) = rule_at(rules, base, at) {
        match &rule.how {
            PathMatch::Ignore => return None,
            PathMatch::SameType => return Some(marker(type_name(value))),
            PathMatch::Regex(regex) => {
                if let Value::String(text) = value
                    && regex.is_match(text)
                {
                    return Some(marker("matches"));
                }
            }
        }
    }
    if level >= COMPARE_DEPTH && matches!(value, Value::Array(_) | Value::Object(_)) {
        return Some(marker("too deep"));
    }
    Some(match value {
        Value::Number(number) => Value::Number(canonical_number(number)),
        Value::String(text) => match sandbar_redact::generalize_placeholders(text) {
            Cow::Borrowed(_) => value.clone(),
            Cow::Owned(text) => Value::String(text),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    at.push(PathSegment::Index(index));
                    let item = normalise(item, rules, base, at, level + 1)
                        .unwrap_or_else(|| marker("ignored"));
                    at.pop();
                    item
                })
                .collect(),
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                at.push(PathSegment::Key(key.clone()));
                if let Some(item) = map
                    .get(key)
                    .and_then(|item| normalise(item, rules, base, at, level + 1))
                {
                    out.insert(key.clone(), item);
                }
                at.pop();
            }
            Value::Object(out)
        }
        scalar => scalar.clone(),
    })
}

/// One field that differs between two values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    /// Where, in [`FieldPath`] syntax from the root of the values compared
    /// (`arguments.items[2].id`); empty when the values differ as a whole.
    pub path: String,
    /// The value on the recorded (left) side; `None` when absent there.
    pub recorded: Option<Value>,
    /// The value on the received (right) side; `None` when absent there.
    pub received: Option<Value>,
}

impl FieldDiff {
    /// One line: `path: <left> "a", <right> "b"`, with the given words for
    /// the two sides.
    pub(crate) fn line(&self, left: &str, right: &str) -> String {
        let side = |value: &Option<Value>| match value {
            Some(value) => compact(value, 120),
            None => "(absent)".to_owned(),
        };
        let path = if self.path.is_empty() {
            "(whole value)"
        } else {
            &self.path
        };
        format!(
            "{path}: {left} {}, {right} {}",
            side(&self.recorded),
            side(&self.received)
        )
    }
}

impl fmt::Display for FieldDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line("recorded", "received"))
    }
}

/// Every field where `a` (recorded, left) and `b` (received, right) differ.
///
/// Objects are compared key by key (keys in sorted order), arrays index by
/// index (extra elements are reported as absent on the other side), other
/// values by value: numbers equal in value are equal (`1` and `1.0`). Two
/// values differ in no field exactly when they are equal in that sense.
pub fn diff_values(a: &Value, b: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    diff_into(Some(a), Some(b), &[], &[], &mut Vec::new(), 0, &mut out);
    out
}

/// [`diff_values`] honouring the rules of a scope: differences the rules
/// make irrelevant are not reported.
pub(crate) fn diff_with_rules(a: &Value, b: &Value, scope: &Scope<'_>) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    diff_into(
        Some(a),
        Some(b),
        &scope.rules,
        &scope.base,
        &mut Vec::new(),
        0,
        &mut out,
    );
    out
}

fn diff_into(
    a: Option<&Value>,
    b: Option<&Value>,
    rules: &[&PathRule],
    base: &[PathSegment],
    at: &mut Vec<PathSegment>,
    level: usize,
    out: &mut Vec<FieldDiff>,
) {
    let report = |out: &mut Vec<FieldDiff>, at: &[PathSegment]| {
        out.push(FieldDiff {
            path: render_path(at),
            recorded: a.map(|v| clone_bounded(v, COMPARE_DEPTH)),
            received: b.map(|v| clone_bounded(v, COMPARE_DEPTH)),
        });
    };
    if let Some(rule) = rule_at(rules, base, at) {
        match (&rule.how, a, b) {
            // An ignored key may be present on one side only; an ignored
            // array element still takes its place in the array.
            (PathMatch::Ignore, Some(_), Some(_)) => return,
            (PathMatch::Ignore, _, _) if matches!(at.last(), Some(PathSegment::Key(_))) => return,
            (PathMatch::Regex(regex), Some(Value::String(x)), Some(Value::String(y)))
                if regex.is_match(x) && regex.is_match(y) =>
            {
                return;
            }
            (PathMatch::SameType, Some(x), Some(y)) if type_name(x) == type_name(y) => return,
            _ => {}
        }
    }
    let (Some(a_value), Some(b_value)) = (a, b) else {
        if a.is_some() || b.is_some() {
            report(out, at);
        }
        return;
    };
    if level >= COMPARE_DEPTH && matches!(a_value, Value::Array(_) | Value::Object(_)) {
        return;
    }
    match (a_value, b_value) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                at.push(PathSegment::Key(key.clone()));
                diff_into(x.get(key), y.get(key), rules, base, at, level + 1, out);
                at.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for index in 0..x.len().max(y.len()) {
                at.push(PathSegment::Index(index));
                diff_into(x.get(index), y.get(index), rules, base, at, level + 1, out);
                at.pop();
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            if canonical_number(x) != canonical_number(y) {
                report(out, at);
            }
        }
        (Value::String(x), Value::String(y)) => {
            if sandbar_redact::generalize_placeholders(x)
                != sandbar_redact::generalize_placeholders(y)
            {
                report(out, at);
            }
        }
        (x, y) => {
            if x != y {
                report(out, at);
            }
        }
    }
}

/// How alike two normalised values are, from 0 (nothing in common) to 1
/// (equal).
///
/// Both values are flattened into their leaves: every scalar, empty object
/// and empty array, with its path. The score is the number of leaves equal
/// on both sides (same path, same value) over the number of distinct leaf
/// paths on either side, so each differing, missing or extra field lowers
/// it by a similar amount whatever the size of the value, and two empty
/// values score 1.
pub(crate) fn similarity(a: &Value, b: &Value) -> f64 {
    let mut left = Vec::new();
    let mut right = Vec::new();
    leaves(a, &mut String::new(), &mut left);
    leaves(b, &mut String::new(), &mut right);
    let left: HashMap<String, String> = left.into_iter().collect();
    let right: HashMap<String, String> = right.into_iter().collect();
    let paths: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    if paths.is_empty() {
        return 1.0;
    }
    let same = left
        .iter()
        .filter(|(path, value)| right.get(*path) == Some(*value))
        .count();
    same as f64 / paths.len() as f64
}

/// The leaves of a normalised value as `(path, compact JSON)`. Paths put a
/// NUL before a key and a U+0001 before an index: they are only compared,
/// never shown.
fn leaves(value: &Value, at: &mut String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let len = at.len();
                at.push('\u{0}');
                at.push_str(key);
                leaves(item, at, out);
                at.truncate(len);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                let len = at.len();
                at.push('\u{1}');
                at.push_str(&index.to_string());
                leaves(item, at, out);
                at.truncate(len);
            }
        }
        leaf => out.push((at.clone(), serde_json::to_string(leaf).unwrap_or_default())),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
