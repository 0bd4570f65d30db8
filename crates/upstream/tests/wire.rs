//! What goes over the wire, seen from the other end: a small scripted MCP
//! server (`scripted_server.cjs`, run by node) records every line Sandbar
//! sends. Catalog paging, the order of what arrives before an answer,
//! progress tokens, `notifications/cancelled` on cancellation, timeout and
//! abandonment, questions with no request in flight, and stray JSON.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use sandbar_engine::{Outcome, UpstreamErrorKind, UpstreamRequest, UpstreamSession};
use sandbar_upstream::McpUpstream;

use common::*;

struct Scripted {
    _dir: TempDir,
    record: PathBuf,
    upstream: Arc<McpUpstream>,
}

impl Scripted {
    fn start() -> Scripted {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let record = dir.path().join("received.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripted_server.cjs");
        let upstream = McpUpstream::new(config(
            "scripted",
            stdio(
                "node",
                &[&script.display().to_string()],
                &[("RECORD", &record.display().to_string())],
            ),
        ));
        Scripted {
            _dir: dir,
            record,
            upstream,
        }
    }

    /// Every message the server has received so far.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits (bounded) until a received message satisfies `found`.
    async fn wait_for(&self, what: &str, found: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(message) = self.received().into_iter().find(|m| found(m)) {
                return message;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the server never received {what}; it got {:#?}",
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The `tools/call` requests received for `tool`.
    fn calls_of(&self, tool: &str) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
            .collect()
    }
}

fn hang_request<'a>(
    client: &'a Recorder,
    cancel: CancellationToken,
    timeout: Duration,
) -> UpstreamRequest<'a> {
    UpstreamRequest {
        method: "tools/call",
        params: json!({"name": "hang", "arguments": {}}),
        progress_token: Some(json!("p")),
        client,
        cancel,
        timeout,
    }
}

async fn check_cancelled_upstream(scripted: &Scripted, reason: &str) {
    let calls = scripted.calls_of("hang");
    let id = calls
        .last()
        .map(|call| call["id"].clone())
        .unwrap_or_default();
    let cancelled = scripted
        .wait_for("notifications/cancelled", |m| {
            m["method"] == "notifications/cancelled" && m["params"]["requestId"] == id
        })
        .await;
    assert_eq!(cancelled["params"]["reason"], reason, "{cancelled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_follows_pages_and_tolerates_lists_the_server_lacks() {
    let scripted = Scripted::start();
    let session = connect(&scripted.upstream).await;
    let catalog = match bounded("catalog", session.catalog()).await {
        Ok(catalog) => catalog,
        Err(e) => panic!("{e}"),
    };
    let tools: Vec<_> = catalog
        .tools
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tools, ["a", "b", "c", "burst", "hang"]);
    let cursors: Vec<Value> = scripted
        .received()
        .into_iter()
        .filter(|m| m["method"] == "tools/list")
        .map(|m| m["params"]["cursor"].clone())
        .collect();
    assert_eq!(cursors, [Value::Null, json!("p2"), json!("p3")]);
    // A cursor that repeats ends the paging instead of looping.
    assert_eq!(catalog.resources.len(), 2);
    assert!(catalog.resource_templates.is_empty());
    // prompts/list answered with method-not-found: no prompts.
    assert!(catalog.prompts.is_empty());
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_sent_before_the_answer_reaches_the_client_first_in_order() {
    let scripted = Scripted::start();
    let session = connect(&scripted.upstream).await;
    for _ in 0..3 {
        let client = Recorder::default();
        let outcome = bounded(
            "burst",
            session.request(UpstreamRequest {
                method: "tools/call",
                params: json!({"name": "burst", "arguments": {}}),
                progress_token: Some(json!("a string")),
                client: &client,
                cancel: CancellationToken::new(),
                timeout: Duration::from_secs(30),
            }),
        )
        .await;
        assert_eq!(
            outcome,
            Ok(Outcome::Result(
                json!({"content": [{"type": "text", "text": "burst done"}]})
            ))
        );
        let mut expected = Vec::new();
        for i in 1..=50 {
            expected.push((
                "notifications/progress".to_owned(),
                json!({"progressToken": "a string", "progress": i, "total": 50}),
            ));
            if i % 10 == 0 {
                expected.push((
                    "notifications/message".to_owned(),
                    json!({"level": "info", "data": format!("step {i}")}),
                ));
            }
        }
        assert_eq!(client.notifications(), expected);
    }
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_is_asked_for_progress_only_when_the_agent_asked() {
    let scripted = Scripted::start();
    let session = connect(&scripted.upstream).await;
    let client = Recorder::default();
    call_tool(session.as_ref(), &client, "burst", json!({})).await;
    assert!(
        client
            .notifications_named("notifications/progress")
            .is_empty()
    );
    let with_token = bounded(
        "burst",
        session.request(UpstreamRequest {
            method: "tools/call",
            params: json!({"name": "burst", "arguments": {}}),
            progress_token: Some(json!(99)),
            client: &client,
            cancel: CancellationToken::new(),
            timeout: Duration::from_secs(30),
        }),
    )
    .await;
    assert!(with_token.is_ok());
    let calls = scripted.calls_of("burst");
    assert_eq!(calls.len(), 2);
    // Without a token the request carries no `_meta` at all; with one, the
    // upstream gets a token of the connection's own (the agent's tokens
    // could collide across requests), mapped back to the agent's.
    assert_eq!(
        calls[0]["params"],
        json!({"name": "burst", "arguments": {}})
    );
    assert!(
        calls[1]["params"]["_meta"]["progressToken"].is_number(),
        "{}",
        calls[1]
    );
    let progress = client.notifications_named("notifications/progress");
    assert_eq!(progress.len(), 50);
    assert!(progress.iter().all(|p| p["progressToken"] == 99));
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_timeout_and_abandonment_are_passed_upstream() {
    let scripted = Scripted::start();
    let session = connect(&scripted.upstream).await;
    let client = Recorder::default();

    // Cancelled before it left: never sent at all.
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    let outcome = bounded(
        "cancelled early",
        session.request(hang_request(&client, cancelled, Duration::from_secs(30))),
    )
    .await;
    assert_eq!(
        outcome.map_err(|e| e.kind),
        Err(UpstreamErrorKind::Cancelled)
    );
    assert!(scripted.calls_of("hang").is_empty());

    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cancel.cancel();
        }
    };
    let call = session.request(hang_request(&client, cancel, Duration::from_secs(30)));
    let (outcome, ()) = bounded("cancel", async { tokio::join!(call, canceller) }).await;
    assert_eq!(
        outcome.map_err(|e| e.kind),
        Err(UpstreamErrorKind::Cancelled)
    );
    check_cancelled_upstream(&scripted, "cancelled by the client").await;

    let outcome = bounded(
        "timeout",
        session.request(hang_request(
            &client,
            CancellationToken::new(),
            Duration::from_millis(300),
        )),
    )
    .await;
    assert_eq!(outcome.map_err(|e| e.kind), Err(UpstreamErrorKind::Timeout));
    check_cancelled_upstream(&scripted, "timed out").await;

    // A caller that stops waiting (its future dropped) still cancels.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        session.request(hang_request(
            &client,
            CancellationToken::new(),
            Duration::from_secs(30),
        )),
    )
    .await;
    assert!(abandoned.is_err(), "the hanging request was answered");
    check_cancelled_upstream(&scripted, "the request was abandoned").await;

    assert!(!session.is_closed());
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_with_no_request_in_flight_is_refused() {
    let scripted = Scripted::start();
    let session = connect(&scripted.upstream).await;
    let client = Recorder::answering(&["sampling"], json!({}));
    call_tool(session.as_ref(), &client, "ask-later", json!({})).await;
    let refusal = scripted
        .wait_for("the answer to the late question", |m| m["id"] == "late")
        .await;
    assert_eq!(refusal["error"]["code"], -32600, "{refusal}");
    assert!(client.questions().is_empty());
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_json_on_stdout_does_not_disturb_the_session() {
    let scripted = Scripted::start();
    let session: Arc<dyn UpstreamSession> = connect(&scripted.upstream).await;
    let client = Recorder::default();
    let result = call_tool(session.as_ref(), &client, "junk", json!({})).await;
    assert_eq!(first_text(&result), "after junk");
    let result = call_tool(session.as_ref(), &client, "junk", json!({})).await;
    assert_eq!(first_text(&result), "after junk");
    assert!(!session.is_closed());
    bounded("close", session.close()).await;
}
