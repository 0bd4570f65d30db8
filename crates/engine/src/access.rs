//! Who is calling and what they may reach: the pipeline's authenticate
//! stage.
//!
//! An agent holds an opaque bearer token; the store keeps only its hash.
//! A [`Principal`] is a token resolved and checked (known, not revoked, not
//! expired, issued for this tenant and scenario) with its [`Scope`]
//! compiled: the tools it may call (allow and deny globs), constraints on
//! the arguments of some tools (a JSON Schema, a CEL condition, or both),
//! the upstreams and hosts it may reach, and a rate. Its call budget and
//! its revocation are the store's to count and to know, so every node
//! sharing the store sees the same.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use sandbar_scenario::CelCondition as Condition;
use sandbar_scenario::glob::Glob;
use sandbar_store::{Store, StoredToken};

use crate::policy::{self, PolicyInput, RateWindow};

/// The prefix of every bearer value Sandbar issues, so a leaked one is
/// recognisable (and the redactor has a rule for it).
pub const TOKEN_PREFIX: &str = "sbt_";

/// A token's scope as written when it is issued and kept in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    /// Tool name globs the token may call; empty means every tool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_tools: Vec<String>,
    /// Tool name globs the token may never call, even when allowed above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_tools: Vec<String>,
    /// Constraints on arguments, by tool name glob; every matching entry
    /// must hold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, ArgConstraintSpec>,
    /// Upstream name globs the token's calls may reach; absent means every
    /// upstream, empty means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstreams: Option<Vec<String>>,
    /// Host globs of HTTP upstreams the token's calls may reach; absent
    /// means every host. Upstreams started as processes have no host and
    /// are limited by `upstreams` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// At most this many calls in a sliding window, per token and node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateSpec>,
}

/// A constraint on one tool's arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgConstraintSpec {
    /// A JSON Schema the arguments must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// A CEL condition over the call (the variables policy rules see)
    /// that must be true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

/// A rate: `calls` per `per_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub calls: u32,
    pub per_ms: u64,
}

/// A scope ready to check calls against.
#[derive(Debug)]
pub struct Scope {
    allow_tools: Vec<Glob>,
    deny_tools: Vec<Glob>,
    args: Vec<(String, Glob, ArgConstraint)>,
    upstreams: Option<Vec<Glob>>,
    hosts: Option<Vec<Glob>>,
    rate: Option<(u32, Duration)>,
}

#[derive(Debug)]
struct ArgConstraint {
    schema: Option<jsonschema::Validator>,
    when: Option<(String, Condition)>,
}

impl ScopeSpec {
    /// Compiles the scope; the error says which part is wrong.
    pub fn compile(&self) -> Result<Scope, String> {
        let globs = |what: &str, list: &[String]| {
            list.iter()
                .map(|g| Glob::new(g).map_err(|e| format!("{what} `{g}`: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut args = Vec::with_capacity(self.args.len());
        for (tool, constraint) in &self.args {
            let glob = Glob::new(tool).map_err(|e| format!("argument constraint `{tool}`: {e}"))?;
            let schema = match &constraint.schema {
                Some(schema) => Some(jsonschema::options().build(schema).map_err(|e| {
                    format!("the argument schema for `{tool}` is not a valid JSON Schema: {e}")
                })?),
                None => None,
            };
            let when = match &constraint.when {
                Some(source) => Some((
                    source.clone(),
                    sandbar_scenario::compile_condition(source).map_err(|e| {
                        format!("the argument condition for `{tool}` does not compile: {e}")
                    })?,
                )),
                None => None,
            };
            if schema.is_none() && when.is_none() {
                return Err(format!(
                    "the argument constraint for `{tool}` needs a schema or a condition"
                ));
            }
            args.push((tool.clone(), glob, ArgConstraint { schema, when }));
        }
        let rate = match self.rate {
            Some(RateSpec { calls, per_ms }) if calls == 0 || per_ms == 0 => {
                return Err("a rate needs at least one call in a window longer than 0".to_owned());
            }
            Some(RateSpec { calls, per_ms }) => Some((calls, Duration::from_millis(per_ms))),
            None => None,
        };
        Ok(Scope {
            allow_tools: globs("allowed tool", &self.allow_tools)?,
            deny_tools: globs("denied tool", &self.deny_tools)?,
            args,
            upstreams: self
                .upstreams
                .as_deref()
                .map(|u| globs("upstream", u))
                .transpose()?,
            hosts: self
                .hosts
                .as_deref()
                .map(|h| globs("host", h))
                .transpose()?,
            rate,
        })
    }
}

/// Why a scope or a token refuses a call; the text is what the agent reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short, stable code: `tool_not_allowed`, `arguments_not_allowed`,
    /// `upstream_not_allowed`, `host_not_allowed`, `rate_limited`,
    /// `revoked`, `expired`, `over_budget`, `unknown_token`, ...
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: String) -> Refusal {
        Refusal { code, message }
    }
}

impl Scope {
    /// Whether the scope leaves any tool out.
    pub fn limits_tools(&self) -> bool {
        !self.allow_tools.is_empty() || !self.deny_tools.is_empty()
    }

    /// Whether the token may call `tool` at all (what tool lists show).
    pub fn allows_tool(&self, tool: &str) -> bool {
        (self.allow_tools.is_empty() || self.allow_tools.iter().any(|g| g.matches(tool)))
            && !self.deny_tools.iter().any(|g| g.matches(tool))
    }

    /// Checks a tool call's name and arguments.
    pub fn check_call(&self, token: &str, input: &PolicyInput<'_>) -> Result<(), Refusal> {
        let tool = input.tool;
        if !self.allows_tool(tool) {
            return Err(Refusal::new(
                "tool_not_allowed",
                format!("token {token} does not allow the tool `{tool}`"),
            ));
        }
        for (pattern, glob, constraint) in &self.args {
            if !glob.matches(tool) {
                continue;
            }
            if let Some(schema) = &constraint.schema {
                let args = Value::Object(input.args.clone());
                if let Some(error) = schema.iter_errors(&args).next() {
                    let at = error.instance_path().to_string();
                    let at = if at.is_empty() { "/".to_owned() } else { at };
                    return Err(Refusal::new(
                        "arguments_not_allowed",
                        format!(
                            "token {token} does not allow these arguments for `{tool}` (constraint `{pattern}`): at {at}: {error}"
                        ),
                    ));
                }
            }
            if let Some((source, condition)) = &constraint.when {
                match policy::evaluate(condition, input) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(Refusal::new(
                            "arguments_not_allowed",
                            format!(
                                "token {token} does not allow these arguments for `{tool}`: `{source}` is false"
                            ),
                        ));
                    }
                    Err(e) => {
                        return Err(Refusal::new(
                            "arguments_not_allowed",
                            format!(
                                "token {token} does not allow these arguments for `{tool}`: `{source}` cannot be evaluated: {e}"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that a request may reach the upstream `name` (at `host`, for
    /// HTTP upstreams).
    pub fn check_upstream(
        &self,
        token: &str,
        name: &str,
        host: Option<&str>,
    ) -> Result<(), Refusal> {
        if let Some(allowed) = &self.upstreams
            && !allowed.iter().any(|g| g.matches(name))
        {
            return Err(Refusal::new(
                "upstream_not_allowed",
                format!("token {token} does not allow reaching the upstream `{name}`"),
            ));
        }
        if let (Some(allowed), Some(host)) = (&self.hosts, host)
            && !allowed.iter().any(|g| g.matches(host))
        {
            return Err(Refusal::new(
                "host_not_allowed",
                format!(
                    "token {token} does not allow reaching the host `{host}` (upstream `{name}`)"
                ),
            ));
        }
        Ok(())
    }
}

/// A token resolved and checked, with its scope compiled.
#[derive(Debug)]
pub struct Principal {
    pub token_id: String,
    /// The hash of the bearer value, to recognise it again without the
    /// store.
    pub hash: String,
    pub tenant: String,
    pub name: String,
    pub scenario: Option<String>,
    pub run: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scope: Scope,
}

impl Principal {
    /// Builds a principal from a stored token, if its scope compiles.
    pub fn from_stored(token: &StoredToken) -> Result<Principal, String> {
        let spec: ScopeSpec = serde_json::from_value(token.scopes.clone())
            .map_err(|e| format!("token {} has a malformed scope: {e}", token.id))?;
        let scope = spec
            .compile()
            .map_err(|e| format!("token {}: {e}", token.id))?;
        Ok(Principal {
            token_id: token.id.clone(),
            hash: token.hash.clone(),
            tenant: token.tenant.clone(),
            name: token.name.clone(),
            scenario: token.scenario.clone(),
            run: token.run.clone(),
            expires_at: token.expires_at,
            scope,
        })
    }
}

/// The hash a bearer value is stored and looked up under: lowercase hex
/// SHA-256.
pub fn hash_bearer(bearer: &str) -> String {
    hex(&Sha256::digest(bearer.as_bytes()))
}

/// Lowercase hex of some bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why a bearer value does not authenticate; the text is what the client
/// reads (it never repeats the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this server requires a bearer token (Authorization: Bearer sbt_…)")]
    Missing,
    #[error("the bearer token is not one this server issued")]
    Unknown,
    #[error("token {0} has been revoked")]
    Revoked(String),
    #[error("token {0} has expired")]
    Expired(String),
    #[error("token {id} is for tenant `{token}`, not `{server}`")]
    WrongTenant {
        id: String,
        token: String,
        server: String,
    },
    #[error("token {id} is for the scenario `{token}`, not `{server}`")]
    WrongScenario {
        id: String,
        token: String,
        server: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("sandbar could not check the token: {0}")]
    Store(String),
}

/// Resolves bearer values against the store for one engine.
pub(crate) async fn authenticate(
    store: &Store,
    tenant: &str,
    scenario: &str,
    bearer: &str,
) -> Result<Principal, AuthError> {
    let bearer = bearer.trim();
    if bearer.is_empty() {
        return Err(AuthError::Missing);
    }
    let token = store
        .token_by_hash(&hash_bearer(bearer))
        .await
        .map_err(|e| AuthError::Store(e.to_string()))?
        .ok_or(AuthError::Unknown)?;
    if token.revoked_at.is_some() {
        return Err(AuthError::Revoked(token.id));
    }
    if token.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AuthError::Expired(token.id));
    }
    if token.tenant != tenant {
        return Err(AuthError::WrongTenant {
            id: token.id,
            token: token.tenant,
            server: tenant.to_owned(),
        });
    }
    if let Some(bound) = &token.scenario
        && bound != scenario
    {
        return Err(AuthError::WrongScenario {
            id: token.id,
            token: bound.clone(),
            server: scenario.to_owned(),
        });
    }
    Principal::from_stored(&token).map_err(AuthError::Invalid)
}

/// Sliding windows of recent calls per token, for token rates.
#[derive(Debug, Default)]
pub(crate) struct TokenRates {
    windows: Mutex<HashMap<Arc<str>, RateWindow>>,
}

impl TokenRates {
    /// Counts a call of `token` if it is under `calls` per `per`; otherwise
    /// says how long until the oldest call leaves the window.
    pub fn admit(&self, token: &str, calls: u32, per: Duration) -> Result<(), Duration> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .entry(Arc::from(token))
            .or_default()
            .admit(calls, per)
    }
}

impl Scope {
    /// The rate this scope sets, if any.
    pub(crate) fn rate(&self) -> Option<(u32, Duration)> {
        self.rate
    }
}

/// The hash an approval is bound to: SHA-256 over the tool name and its
/// canonical arguments (keys sorted at every level).
pub fn arguments_hash(tool: &str, args: &Map<String, Value>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(tool.as_bytes());
    hasher.update([0]);
    canonical(&Value::Object(args.clone()), &mut hasher);
    hex(&hasher.finalize())
}

fn canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                hasher.update(serde_json::to_string(key).unwrap_or_default().as_bytes());
                hasher.update(b":");
                canonical(&map[key], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argument_hashes_ignore_key_order_but_not_values() {
        let a = json!({"a": 1, "b": {"x": [1, 2], "y": "z"}});
        let b = json!({"b": {"y": "z", "x": [1, 2]}, "a": 1});
        let c = json!({"a": 1, "b": {"x": [2, 1], "y": "z"}});
        let h = |v: &Value| arguments_hash("t", v.as_object().unwrap());
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
        assert_ne!(h(&a), arguments_hash("u", a.as_object().unwrap()));
    }

    #[test]
    fn scopes_allow_and_deny_tools() {
        let scope = ScopeSpec {
            allow_tools: vec!["lookup_*".into(), "send_email".into()],
            deny_tools: vec!["lookup_secret*".into()],
            ..ScopeSpec::default()
        }
        .compile()
        .unwrap();
        assert!(scope.allows_tool("lookup_order"));
        assert!(scope.allows_tool("send_email"));
        assert!(!scope.allows_tool("send_emails"));
        assert!(!scope.allows_tool("lookup_secrets"));
        assert!(!scope.allows_tool("issue_refund"));
        let open = ScopeSpec::default().compile().unwrap();
        assert!(open.allows_tool("anything"));
    }

    #[test]
    fn upstream_and_host_scopes() {
        let scope = ScopeSpec {
            upstreams: Some(vec!["mailer".into()]),
            hosts: Some(vec!["*.example.test".into()]),
            ..ScopeSpec::default()
        }
        .compile()
        .unwrap();
        assert!(
            scope
                .check_upstream("t", "mailer", Some("api.example.test"))
                .is_ok()
        );
        assert!(scope.check_upstream("t", "mailer", None).is_ok());
        assert_eq!(
            scope.check_upstream("t", "billing", None).unwrap_err().code,
            "upstream_not_allowed"
        );
        assert_eq!(
            scope
                .check_upstream("t", "mailer", Some("evil.test"))
                .unwrap_err()
                .code,
            "host_not_allowed"
        );
        let none = ScopeSpec {
            upstreams: Some(vec![]),
            ..ScopeSpec::default()
        }
        .compile()
        .unwrap();
        assert!(none.check_upstream("t", "mailer", None).is_err());
    }

    #[test]
    fn bad_scopes_are_errors() {
        let bad_schema = ScopeSpec {
            args: BTreeMap::from([(
                "t".to_owned(),
                ArgConstraintSpec {
                    schema: Some(json!({"type": "no-such-type"})),
                    when: None,
                },
            )]),
            ..ScopeSpec::default()
        };
        assert!(bad_schema.compile().unwrap_err().contains("JSON Schema"));
        let empty = ScopeSpec {
            args: BTreeMap::from([("t".to_owned(), ArgConstraintSpec::default())]),
            ..ScopeSpec::default()
        };
        assert!(empty.compile().is_err());
        let rate = ScopeSpec {
            rate: Some(RateSpec {
                calls: 0,
                per_ms: 10,
            }),
            ..ScopeSpec::default()
        };
        assert!(rate.compile().is_err());
    }

    #[test]
    fn token_rates_slide() {
        let rates = TokenRates::default();
        let per = Duration::from_millis(150);
        assert!(rates.admit("a", 2, per).is_ok());
        assert!(rates.admit("a", 2, per).is_ok());
        assert!(rates.admit("a", 2, per).is_err());
        assert!(rates.admit("b", 2, per).is_ok(), "windows are per token");
        std::thread::sleep(per + Duration::from_millis(20));
        assert!(rates.admit("a", 2, per).is_ok());
    }
}
