//! Protocol lifecycles and utilities: the stateless 2026-07-28 lifecycle
//! (`server/discover`, no session) beside legacy sessions, `serve
//! --stateless`, every protocol version the SDK knows, ping, and
//! cancellation recorded as the specification describes.

mod common;

use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, PingRequest, ProtocolVersion,
};
use rmcp::service::PeerRequestOptions;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::json;

use common::*;

fn scenario() -> std::path::PathBuf {
    repo().join("crates/cli/tests/scenarios/behaviour.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stateless_2026_lifecycle_shares_one_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&scenario(), &data, &[]);
    let discover = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };

    // Two stateless clients: without sessions, their requests join the
    // shared `default` run, so the twin's state carries across them.
    let a = TestClient::default()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(server.url.clone()),
            discover.clone(),
        )
        .await
        .expect("discover");
    let bought = call(&a, "buy", json!({"id": "a", "qty": 1})).await;
    assert_eq!(bought["structuredContent"]["left"], json!(4), "{bought}");
    a.cancel().await.expect("close");
    let b = TestClient::default()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(server.url.clone()),
            discover,
        )
        .await
        .expect("discover");
    let again = call(&b, "buy", json!({"id": "a", "qty": 1})).await;
    assert_eq!(again["structuredContent"]["left"], json!(3), "{again}");
    b.cancel().await.expect("close");

    // A legacy session on the same server still gets a run of its own.
    let legacy = connect_http(&server.url, TestClient::default()).await;
    let fresh = call(&legacy, "item", json!({"id": "a"})).await;
    assert_eq!(fresh["structuredContent"]["stock"], json!(5));
    legacy.cancel().await.expect("close");
    server.stop();

    let (_, out, _) = cli(&data, &["runs", "list", "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&out).expect("json");
    let labels: Vec<serde_json::Value> = runs
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["labels"].clone())
        .collect();
    assert_eq!(
        labels
            .iter()
            .filter(|l| **l == json!({"stateless_run": "default"}))
            .count(),
        1,
        "{labels:?}"
    );
    assert_eq!(
        labels.len(),
        2,
        "one shared stateless run and one session run: {labels:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stateless_answers_every_request_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &["--stateless"]);
    let s = connect_http(&server.url, TestClient::default()).await;
    assert_eq!(
        text(&call(&s, "echo", json!({"text": "x"})).await),
        "echo: x"
    );
    let bought = call(&s, "buy", json!({"id": "a", "qty": 2})).await;
    assert_eq!(bought["structuredContent"]["left"], json!(3));
    // Progress needs a stream; stateless servers fall back to SSE for it.
    assert!(text(&call(&s, "chatty", json!({})).await).starts_with("done at"));
    s.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_version_negotiates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    for version in ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .filter(|v| v.as_str() < "2026-07-28")
    {
        let mut info = rmcp::ClientHandler::get_info(&TestClient::default());
        info.protocol_version = version.clone();
        let s = info
            .serve(StreamableHttpClientTransport::from_uri(server.url.clone()))
            .await
            .expect("initialize");
        let negotiated = s.peer_info().map(|i| i.protocol_version.clone());
        assert_eq!(negotiated.as_ref(), Some(version), "asked for {version}");
        let result = s
            .call_tool(
                CallToolRequestParams::new("echo").with_arguments(
                    json!({"text": "v"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
            )
            .await
            .expect("call");
        assert_eq!(
            serde_json::to_value(result).expect("json")["content"][0]["text"],
            json!("echo: v"),
            "on {version}"
        );
        s.cancel().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_cancellation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&scenario(), &data, &[]);
    let s = connect_http(&server.url, TestClient::default()).await;
    let pong = s
        .send_request(ClientRequest::PingRequest(PingRequest::default()))
        .await
        .expect("ping");
    assert_eq!(serde_json::to_value(pong).expect("json"), json!({}));

    let request =
        ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new("stuck")));
    let handle = s
        .peer()
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle
        .cancel(Some("the user gave up".into()))
        .await
        .expect("cancel");
    // The session goes on.
    assert_eq!(
        text(&call(&s, "echo", json!({"text": "after"})).await),
        "echo: after"
    );
    s.cancel().await.expect("close");
    server.stop();

    let shown = newest_run(&data);
    let events = shown["events"].as_array().expect("events");
    let cancelled = events
        .iter()
        .find(|e| e["method"] == json!("notifications/cancelled"))
        .expect("cancellation recorded");
    assert_eq!(cancelled["payload"]["reason"], json!("the user gave up"));
    let stuck_end = events.iter().find(|e| {
        e["method"] == json!("tools/call")
            && e["kind"] == json!("error")
            && e["payload"]["error"]["code"] == json!(-32800)
    });
    assert!(
        stuck_end.is_some(),
        "the abandoned call ends with a cancellation error event: {events:#?}"
    );
    let fault = events
        .iter()
        .find(|e| e["kind"] == json!("fault"))
        .expect("fault event");
    assert_eq!(fault["payload"]["action"], json!("hang"));
}

/// Posts one JSON-RPC message on a raw session; returns status, content type and body.
async fn raw_post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: &str,
) -> (u16, String, String, Option<String>) {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(s) = session {
        request = request
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-06-18");
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        content_type,
        response.text().await.expect("body"),
        session,
    )
}

/// Opens a session over raw HTTP as a client declaring `capabilities` (a
/// JSON object); returns its id.
async fn open_session(client: &reqwest::Client, url: &str, capabilities: &str) -> String {
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{capabilities},"clientInfo":{{"name":"raw","version":"1"}}}}}}"#
    );
    let (status, _, _, session) = raw_post(client, url, None, &init).await;
    assert_eq!(status, 200);
    let session = session.expect("a session id");
    let (status, _, _, _) = raw_post(
        client,
        url,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, 202);
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_calls_are_answered_in_one_piece_and_idle_sessions_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&scenario(), &data, &["--session-idle", "1"]);
    let client = reqwest::Client::new();
    let session = open_session(&client, &server.url, "{}").await;

    // A tool without steps: one JSON answer, the same result as over SSE.
    let call = |id: u32, tool: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"hi"}}}}}}"#
        )
    };
    let (status, content_type, body, _) =
        raw_post(&client, &server.url, Some(&session), &call(2, "echo")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json"),
        "{body}"
    );
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": 2, "result": {"content": [{"type": "text", "text": "echo: hi"}]}})
    );
    // A tool with steps streams its messages, then the answer, over SSE.
    let (status, content_type, body, _) =
        raw_post(&client, &server.url, Some(&session), &call(3, "chatty")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/event-stream"),
        "{body}"
    );
    assert!(body.contains("done at"), "{body}");

    // A call still going is activity: the session outlives the idle
    // timeout while a call hangs, and the call ends when cancelled.
    let stuck = {
        let (client, url, session) = (client.clone(), server.url.clone(), session.clone());
        tokio::spawn(
            async move { raw_post(&client, &url, Some(&session), &call(9, "stuck")).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, _, body, _) =
        raw_post(&client, &server.url, Some(&session), &call(10, "echo")).await;
    assert_eq!(
        status, 200,
        "a session with a call in flight expired: {body}"
    );
    let (status, _, _, _) = raw_post(
        &client,
        &server.url,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}"#,
    )
    .await;
    assert_eq!(status, 202);
    let (status, _, body, _) = tokio::time::timeout(Duration::from_secs(10), stuck)
        .await
        .expect("the cancelled call ends")
        .expect("task");
    assert_eq!(status, 200);
    assert!(body.contains("-32800"), "{body}");

    // Quiet for longer than the idle timeout: the session is gone.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, _, body, _) =
        raw_post(&client, &server.url, Some(&session), &call(4, "echo")).await;
    assert_eq!(status, 404, "{body}");
    let mut shown = newest_run(&data);
    for _ in 0..50 {
        if shown["run"]["status"] == json!("completed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        shown = newest_run(&data);
    }
    assert_eq!(
        shown["run"]["status"],
        json!("completed"),
        "the expired session's run is ended"
    );
    let calls = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["method"] == json!("tools/call") && e["kind"] == json!("response"))
        .count();
    assert_eq!(calls, 3, "every answered call is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_loses_a_calls_stream_picks_it_up_again_after_the_last_event_it_saw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let client = reqwest::Client::new();
    let session = open_session(&client, &server.url, r#"{"sampling":{}}"#).await;

    // The call asks the model: read its stream up to the question, then
    // lose the connection.
    let mut response = client
        .post(&server.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .body(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ask_model","arguments":{"topic":"tides"}}}"#)
        .send()
        .await
        .expect("POST");
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains("sampling/createMessage") {
            let chunk = response.chunk().await.expect("read").expect("more");
            seen.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    })
    .await
    .expect("the question");
    drop(response);
    let events: Vec<&str> = seen.split("\n\n").filter(|e| !e.is_empty()).collect();
    // A priming event first: an id, a retry hint, no message.
    assert!(
        events[0].starts_with("id: ")
            && events[0].contains("\nretry: ")
            && events[0].ends_with("data: "),
        "{seen:?}"
    );
    let question_event = events.last().expect("the question's event");
    let last_id = question_event
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("the question has no event id: {seen:?}"));
    let question: serde_json::Value = serde_json::from_str(
        question_event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("data"),
    )
    .expect("JSON");

    // The client answers, then picks the stream up after the question.
    let answer = json!({"jsonrpc": "2.0", "id": question["id"], "result": {
        "role": "assistant", "model": "m", "content": {"type": "text", "text": "the tide turns"}}});
    let (status, _, body, _) =
        raw_post(&client, &server.url, Some(&session), &answer.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let resume = || {
        client
            .get(&server.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
            .header("last-event-id", last_id)
            .send()
    };
    let resumed = tokio::time::timeout(Duration::from_secs(10), async {
        let response = resume().await.expect("GET");
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.expect("body")
    })
    .await
    .expect("the rest of the stream");
    let messages: Vec<serde_json::Value> = resumed
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("JSON"))
        .collect();
    assert_eq!(
        messages.len(),
        1,
        "only what came after the question: {resumed:?}"
    );
    assert_eq!(messages[0]["id"], 7, "{resumed:?}");
    assert_eq!(
        messages[0]["result"]["content"][0]["text"],
        "model said: the tide turns"
    );
    // Picked up again from the same place, it gives the same rest (the
    // answer may have been lost with the connection again).
    let again = resume().await.expect("GET");
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(again.text().await.expect("body"), resumed);
    // A stream the session never had is not found.
    let unknown = client
        .get(&server.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .header("last-event-id", "sandbar-99-1")
        .send()
        .await
        .expect("GET");
    assert_eq!(unknown.status().as_u16(), 404);
}
