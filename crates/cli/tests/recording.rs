//! Recording, end to end: every call becomes ordered events in the store;
//! `runs list/show/export` read them back; no secret reaches the database,
//! an export or the logs; and a `kill -9` in the middle of a burst of calls
//! loses nothing that an agent was told.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use common::*;

const SECRET: &str = "sk_live_behaviourSECRET1234567890";
const GITHUB_TOKEN: &str = "ghp_R8sT4uV6wX8yZ0aB2cD4eF6gH8iJ0kL2mN4o";

fn scenario() -> std::path::PathBuf {
    repo().join("crates/cli/tests/scenarios/behaviour.yaml")
}

/// Every file under the data directory, concatenated.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            out.extend(std::fs::read(&path).expect("read"));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_become_ordered_events_that_runs_commands_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&scenario(), &data, &[]);
    let s = connect_http(&server.url, TestClient::default()).await;
    call(&s, "echo", json!({"text": "one"})).await;
    call(&s, "flaky", json!({})).await;
    call(&s, "buy", json!({"id": "a", "qty": 1})).await;
    call(&s, "nope", json!({})).await;
    s.cancel().await.expect("close");
    server.stop();

    let shown = newest_run(&data);
    let run = &shown["run"];
    assert_eq!(run["scenario_name"], json!("behaviour"));
    assert_eq!(run["seed"], json!(99));
    assert_eq!(run["transport"], json!("http"));
    assert_eq!(run["status"], json!("completed"));
    assert_eq!(run["tenant"], json!("default"));
    assert_eq!(run["scenario_hash"].as_str().map(str::len), Some(64));

    let events = shown["events"].as_array().expect("events");
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "sequence numbers are dense and ordered"
    );
    let outline: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_owned(),
                e["method"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(&str, &str)> = vec![
        ("lifecycle", "run/start"),
        ("request", "initialize"),
        ("response", "initialize"),
        ("notification", "notifications/initialized"),
        ("request", "tools/call"),
        ("response", "tools/call"),
        ("request", "tools/call"),
        ("response", "tools/call"),
        ("request", "tools/call"),
        ("lifecycle", "state/change"),
        ("response", "tools/call"),
        ("request", "tools/call"),
        ("error", "tools/call"),
        ("lifecycle", "run/end"),
    ];
    assert_eq!(
        outline,
        expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    // Requests and their answers share the JSON-RPC id; virtual time moves by the step.
    assert_eq!(events[4]["request_id"], events[5]["request_id"]);
    assert_eq!(events[4]["virtual_time"], json!("2026-02-01T12:00:01.000Z"));
    assert_eq!(events[6]["virtual_time"], json!("2026-02-01T12:00:02.000Z"));
    assert_eq!(events[4]["payload"]["name"], json!("echo"));
    assert_eq!(events[4]["payload"]["arguments"], json!({"text": "one"}));
    assert_eq!(
        events[5]["payload"]["result"]["content"][0]["text"],
        json!("echo: one")
    );
    assert_eq!(
        events[9]["payload"]["updated"]["items"][0]["stock"],
        json!(4)
    );
    assert_eq!(events[12]["payload"]["error"]["code"], json!(-32602));

    // The list and the timeline.
    let (code, list, _) = cli(&data, &["runs", "list"]);
    assert_eq!(code, 0);
    let id = run["id"].as_str().expect("id");
    assert!(
        list.contains(id) && list.contains("behaviour") && list.contains("completed"),
        "{list}"
    );
    let (code, timeline, _) = cli(&data, &["runs", "show", &id[..10]]);
    assert_eq!(code, 0, "a unique prefix finds the run");
    assert!(timeline.contains("echo {\"text\":\"one\"}"), "{timeline}");
    assert!(timeline.contains("ok: echo: one"), "{timeline}");
    assert!(timeline.contains("state/change"), "{timeline}");

    // The JSONL export: a header, then one event per line, equal to `show --json`.
    let out = dir.path().join("run.jsonl");
    let (code, _, err) = cli(
        &data,
        &[
            "runs",
            "export",
            id,
            "--format",
            "jsonl",
            "-o",
            out.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).expect("export");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines[0]["format"], json!("sandbar-run"));
    assert_eq!(lines[0]["version"], json!(1));
    assert_eq!(lines[0]["run"]["id"], json!(id));
    assert_eq!(&lines[1..], events.as_slice());

    // Unknown runs are a clear error with exit status 1.
    let (code, _, err) = cli(&data, &["runs", "show", "run_doesnotexist"]);
    assert_eq!(code, 1);
    assert!(err.contains("no run matches"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_store_an_export_or_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&scenario(), &data, &["--log", "debug"]);
    let s = connect_http(&server.url, TestClient::default()).await;
    let encoded = base64::engine::general_purpose::STANDARD.encode(SECRET);
    // The agent sends the scenario's secret, its base64 form and a credential
    // the redactor knows by shape; the scenario also logs the secret itself.
    call(&s, "echo", json!({"text": SECRET})).await;
    call(&s, "echo", json!({"text": format!("b64 {encoded}")})).await;
    call(
        &s,
        "classify",
        json!({"token": GITHUB_TOKEN, "note": format!("Authorization: Bearer {GITHUB_TOKEN}")}),
    )
    .await;
    let mut request = rmcp::model::CallToolRequestParams::new("chatty");
    rmcp::model::RequestParamsMeta::set_progress_token(
        &mut request,
        rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(1)),
    );
    s.call_tool(request).await.expect("chatty");
    s.cancel().await.expect("close");
    let stderr = server.stop();

    let (code, export, _) = cli(
        &data,
        &[
            "runs",
            "export",
            newest_run(&data)["run"]["id"].as_str().expect("id"),
        ],
    );
    assert_eq!(code, 0);
    let (_, show, _) = cli(
        &data,
        &[
            "runs",
            "show",
            newest_run(&data)["run"]["id"].as_str().expect("id"),
        ],
    );
    let store = all_bytes(&data);
    for (sink, bytes) in [
        ("store", store.as_slice()),
        ("export", export.as_bytes()),
        ("timeline", show.as_bytes()),
        ("logs", stderr.as_bytes()),
    ] {
        for secret in [SECRET, encoded.as_str(), GITHUB_TOKEN] {
            assert!(!contains(bytes, secret), "{secret} reached the {sink}");
        }
    }
    // What was redacted is visible as a placeholder, so the run stays readable.
    assert!(export.contains("[REDACTED:secret:api_key]"), "{export}");
    assert!(
        export.contains("[REDACTED:github_token]") || export.contains("[REDACTED:bearer_token]"),
        "{export}"
    );
    assert!(
        stderr.contains("serving"),
        "the logs were written: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_that_was_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&scenario(), &data, &[]);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let url = server.url.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let s = connect_http(&url, TestClient::default()).await;
            for i in 0.. {
                let text = format!("w{worker}-{i}");
                let result = call(&s, "echo", json!({"text": text})).await;
                if result["content"][0]["text"] != json!(format!("echo: {text}")) {
                    break; // The server is gone.
                }
                acked.lock().expect("acked").push(text);
            }
        }));
    }
    // Let a few hundred calls through, then kill the server without warning.
    while acked.lock().expect("acked").len() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reap");
    // Clients of a dead server may keep retrying; their answers so far are
    // all that matters.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for t in &tasks {
        t.abort();
    }
    let acked = acked.lock().expect("acked").clone();
    assert!(acked.len() >= 300);

    // Reopen: every acknowledged answer is in a response event, and the
    // killed runs are marked interrupted.
    let (code, out, err) = cli(&data, &["runs", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let runs: Value = serde_json::from_str(&out).expect("json");
    let runs = runs.as_array().expect("runs");
    assert_eq!(runs.len(), 4);
    let mut answered = std::collections::HashSet::new();
    for run in runs {
        assert_eq!(run["status"], json!("interrupted"), "{run}");
        let (code, out, err) = cli(
            &data,
            &["runs", "show", run["id"].as_str().expect("id"), "--json"],
        );
        assert_eq!(code, 0, "{err}");
        let shown: Value = serde_json::from_str(&out).expect("json");
        for e in shown["events"].as_array().expect("events") {
            if e["kind"] == json!("response")
                && let Some(t) = e["payload"]["result"]["content"][0]["text"].as_str()
            {
                answered.insert(t.trim_start_matches("echo: ").to_owned());
            }
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|t| !answered.contains(*t)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged answers were lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );

    // The store reopens cleanly for serving, too.
    let server = Server::start(&scenario(), &data, &[]);
    let s = connect_http(&server.url, TestClient::default()).await;
    assert_eq!(
        text(&call(&s, "echo", json!({"text": "again"})).await),
        "echo: again"
    );
    s.cancel().await.expect("close");
}
