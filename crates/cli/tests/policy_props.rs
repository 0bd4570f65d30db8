//! Property: over generated token scopes, scenario policies and calls, a
//! call the gate refuses never reaches the upstream, and a call it lets
//! through reaches it exactly once. The decision itself is checked against
//! a plain restatement of the rules (first matching rule decides; a token
//! scope is checked before the policy).
//!
//! The pipeline is the real one — engine, store on a temporary SQLite file,
//! the SDK-based upstream connection — in front of a real MCP server over
//! Streamable HTTP (`servers/counting_http.cjs`) that writes down what it
//! receives.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use sandbar_engine::access::{ArgConstraintSpec, ScopeSpec};
use sandbar_engine::{
    Call, DetachedClient, Engine, EngineOptions, Method, Outcome, Principal, RunOptions, Upstream,
};
use sandbar_redact::{Redactor, SharedRedactor};
use sandbar_store::{Store, StoreOptions, StoredToken};
use sandbar_upstream::{McpUpstream, Transport, UpstreamConfig};

use common::CountingUpstream;

const TOOLS: [&str; 3] = ["echo", "send_email", "issue_refund"];
const GLOBS: [&str; 5] = ["*", "echo", "send_*", "issue_*", "nothing"];

#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    glob: &'static str,
    /// `args.amount > N`, when set.
    over: Option<i64>,
}

#[derive(Debug, Clone)]
struct Case {
    rules: Vec<Rule>,
    default_allow: bool,
    allow_tools: Vec<&'static str>,
    deny_tools: Vec<&'static str>,
    /// `args.amount < N` for every tool, when set.
    under: Option<i64>,
    /// None: every upstream; Some(true): `billing`; Some(false): none.
    upstream: Option<bool>,
    tool: &'static str,
    amount: i64,
}

fn glob_matches(glob: &str, tool: &str) -> bool {
    match glob.strip_suffix('*') {
        Some(prefix) => tool.starts_with(prefix),
        None => glob == tool,
    }
}

impl Case {
    /// What the gate should decide, restated plainly.
    fn allowed(&self) -> bool {
        let scope_ok = (self.allow_tools.is_empty()
            || self.allow_tools.iter().any(|g| glob_matches(g, self.tool)))
            && !self.deny_tools.iter().any(|g| glob_matches(g, self.tool))
            && self.under.is_none_or(|n| self.amount < n)
            && self.upstream != Some(false);
        if !scope_ok {
            return false;
        }
        self.rules
            .iter()
            .find(|r| glob_matches(r.glob, self.tool) && r.over.is_none_or(|n| self.amount > n))
            .map_or(self.default_allow, |r| r.allow)
    }

    fn policy_yaml(&self) -> String {
        let mut out = format!(
            "policy:\n  default: {}\n  rules:\n",
            if self.default_allow { "allow" } else { "deny" }
        );
        if self.rules.is_empty() {
            out = format!(
                "policy:\n  default: {}\n  rules: []\n",
                if self.default_allow { "allow" } else { "deny" }
            );
        }
        for rule in &self.rules {
            out.push_str(&format!(
                "    - {}: \"{}\"\n",
                if rule.allow { "allow" } else { "deny" },
                rule.glob
            ));
            if let Some(n) = rule.over {
                out.push_str(&format!("      when: \"args.amount > {n}\"\n"));
            }
        }
        out
    }

    fn scope(&self) -> ScopeSpec {
        ScopeSpec {
            allow_tools: self.allow_tools.iter().map(|s| s.to_string()).collect(),
            deny_tools: self.deny_tools.iter().map(|s| s.to_string()).collect(),
            args: self
                .under
                .map(|n| {
                    [(
                        "*".to_owned(),
                        ArgConstraintSpec {
                            schema: None,
                            when: Some(format!("args.amount < {n}")),
                        },
                    )]
                    .into_iter()
                    .collect()
                })
                .unwrap_or_default(),
            upstreams: self.upstream.map(|billing| {
                if billing {
                    vec!["billing".to_owned()]
                } else {
                    Vec::new()
                }
            }),
            hosts: None,
            rate: None,
        }
    }
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        any::<bool>(),
        prop::sample::select(GLOBS.to_vec()),
        prop::option::of(0i64..1000),
    )
        .prop_map(|(allow, glob, over)| Rule { allow, glob, over })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(rule(), 0..4),
        any::<bool>(),
        prop::sample::subsequence(GLOBS.to_vec(), 0..3),
        prop::sample::subsequence(GLOBS[1..].to_vec(), 0..2),
        prop::option::of(0i64..1000),
        prop::option::of(any::<bool>()),
        prop::sample::select(TOOLS.to_vec()),
        0i64..1000,
    )
        .prop_map(
            |(rules, default_allow, allow_tools, deny_tools, under, upstream, tool, amount)| Case {
                rules,
                default_allow,
                allow_tools,
                deny_tools,
                under,
                upstream,
                tool,
                amount,
            },
        )
}

/// Runs one case through the pipeline; returns whether the upstream
/// answered (the call went through) and how often the upstream saw it.
async fn run_case(
    case: &Case,
    number: usize,
    counting: &CountingUpstream,
    store: &Store,
    redactor: &SharedRedactor,
) -> (bool, usize) {
    let text = format!(
        "version: 1\nname: props\nupstreams:\n  - name: billing\n    url: \"{}\"\n    mask: false\n{}",
        counting.url,
        case.policy_yaml()
    );
    let scenario =
        Arc::new(sandbar_scenario::load_str(&text, "props.yaml", None).expect("scenario loads"));
    let upstream: Arc<dyn Upstream> = McpUpstream::new(UpstreamConfig {
        name: "billing".to_owned(),
        transport: Transport::Http {
            url: counting.url.clone(),
            headers: Default::default(),
        },
        timeout: std::time::Duration::from_secs(10),
        connect_timeout: std::time::Duration::from_secs(10),
    });
    let engine = Engine::build(
        scenario,
        store.clone(),
        redactor,
        EngineOptions {
            upstreams: vec![upstream],
            ..EngineOptions::default()
        },
    )
    .await
    .expect("engine");
    let token = StoredToken {
        id: format!("tok_case{number}"),
        tenant: engine.tenant().to_owned(),
        name: String::new(),
        hash: format!("{number:064x}"),
        scenario: None,
        run: None,
        scopes: serde_json::to_value(case.scope()).expect("scope JSON"),
        budget: None,
        calls_used: 0,
        created_at: chrono::Utc::now(),
        expires_at: None,
        revoked_at: None,
    };
    store.put_token(token.clone()).await.expect("token stored");
    let principal = Arc::new(Principal::from_stored(&token).expect("scope compiles"));
    let mut options = RunOptions::new("test");
    options.principal = Some(principal);
    let run = engine.start_run(options).await.expect("run");
    let marker = format!("case-{number}");
    let mut args = Map::new();
    args.insert("amount".to_owned(), json!(case.amount));
    args.insert("case".to_owned(), json!(marker));
    let outcome = run
        .handle(
            Call::new(Method::CallTool {
                name: case.tool.to_owned(),
                arguments: Some(args),
            }),
            &DetachedClient,
        )
        .await;
    run.finish(sandbar_store::RunStatus::Completed)
        .await
        .expect("finish");
    let through = match &outcome {
        Outcome::Result(v) => v.get("isError") != Some(&Value::Bool(true)),
        Outcome::Error(_) => false,
    };
    (through, counting.calls_of(&marker).len())
}

#[test]
fn a_refused_call_never_reaches_the_upstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counting = CountingUpstream::start(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let redactor = SharedRedactor::new(Redactor::new());
    let store = runtime
        .block_on(Store::open(
            &dir.path().join("data"),
            redactor.clone(),
            StoreOptions::default(),
        ))
        .expect("store");
    runtime
        .block_on(store.ensure_tenant("default", "default"))
        .expect("tenant");
    let number = std::sync::atomic::AtomicUsize::new(0);
    let mut config = ProptestConfig::with_cases(48);
    config.failure_persistence = None;
    proptest!(config, |(case in case())| {
        let n = number.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (through, received) = runtime.block_on(run_case(&case, n, &counting, &store, &redactor));
        prop_assert_eq!(through, case.allowed(), "decision differs from the rules: {:?}", case);
        prop_assert_eq!(received, usize::from(through), "the upstream saw {} calls of {:?}", received, case);
    });
}
