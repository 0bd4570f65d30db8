//! Forwarding to the reference server, server-everything, over stdio and
//! Streamable HTTP: catalogs, results and errors as the server sends them,
//! progress, log messages, sampling and elicitation routed to the agent's
//! client, cancellation, timeouts, concurrency and closing.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use sandbar_engine::{
    Client, Outcome, ProtocolError, UpstreamErrorKind, UpstreamRequest, UpstreamSession,
};

use common::*;

const LONG_RUNNING: &str = "trigger-long-running-operation";

fn sampling_answer() -> Value {
    json!({
        "role": "assistant",
        "content": {"type": "text", "text": "a sampled reply"},
        "model": "test-model",
        "stopReason": "endTurn"
    })
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| item["name"].as_str().map(str::to_owned))
        .collect()
}

async fn check_catalog(session: &dyn UpstreamSession) {
    let catalog = match bounded("catalog", session.catalog()).await {
        Ok(catalog) => catalog,
        Err(e) => panic!("catalog: {e}"),
    };
    let tools = names(&catalog.tools);
    for tool in ["echo", "get-sum", LONG_RUNNING, "trigger-sampling-request"] {
        assert!(
            tools.contains(&tool.to_owned()),
            "{tool} missing from {tools:?}"
        );
    }
    // Raw MCP objects, as listed.
    let echo = catalog.tools.iter().find(|t| t["name"] == "echo");
    assert!(echo.is_some_and(|t| t["inputSchema"]["type"] == "object"));
    assert!(!catalog.resources.is_empty());
    assert!(catalog.resources.iter().all(|r| r["uri"].is_string()));
    assert!(!catalog.resource_templates.is_empty());
    assert!(
        catalog
            .resource_templates
            .iter()
            .all(|t| t["uriTemplate"].is_string())
    );
    assert!(names(&catalog.prompts).contains(&"simple-prompt".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_catalog_lists_tools_resources_and_prompts() {
    let session = connect(&everything()).await;
    check_catalog(session.as_ref()).await;
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_tool_results_come_back_as_the_server_sent_them() {
    let session = connect(&everything()).await;
    let client = Recorder::default();
    let echo = call_tool(session.as_ref(), &client, "echo", json!({"message": "hi"})).await;
    assert_eq!(
        echo,
        json!({"content": [{"type": "text", "text": "Echo: hi"}]})
    );
    let sum = call_tool(
        session.as_ref(),
        &client,
        "get-sum",
        json!({"a": 2, "b": 3}),
    )
    .await;
    assert_eq!(first_text(&sum), "The sum of 2 and 3 is 5.");
    // An unknown tool is a tool error in this server, sent as a result.
    let unknown = call_tool(session.as_ref(), &client, "no-such-tool", json!({})).await;
    assert_eq!(
        unknown,
        json!({
            "content": [{"type": "text", "text": "MCP error -32602: Tool no-such-tool not found"}],
            "isError": true
        })
    );
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_prompts_pass_through_and_errors_keep_their_code() {
    let session = connect(&everything()).await;
    let client = Recorder::default();
    let catalog = match bounded("catalog", session.catalog()).await {
        Ok(catalog) => catalog,
        Err(e) => panic!("{e}"),
    };
    let uri = catalog.resources[0]["uri"].clone();
    match request(
        session.as_ref(),
        &client,
        "resources/read",
        json!({"uri": uri}),
    )
    .await
    {
        Ok(Outcome::Result(result)) => {
            assert_eq!(result["contents"][0]["uri"], uri);
            assert!(
                result["contents"][0]["text"].is_string()
                    || result["contents"][0]["blob"].is_string()
            );
        }
        other => panic!("resources/read: {other:?}"),
    }
    match request(
        session.as_ref(),
        &client,
        "prompts/get",
        json!({"name": "args-prompt", "arguments": {"city": "Lisbon"}}),
    )
    .await
    {
        Ok(Outcome::Result(result)) => {
            let text = result["messages"][0]["content"]["text"]
                .as_str()
                .unwrap_or_default();
            assert!(text.contains("Lisbon"), "{result}");
        }
        other => panic!("prompts/get: {other:?}"),
    }
    // The upstream's JSON-RPC error, exactly as sent.
    let expected = |message: &str| {
        Ok(Outcome::Error(ProtocolError {
            code: -32602,
            message: message.to_owned(),
            data: None,
        }))
    };
    assert_eq!(
        request(
            session.as_ref(),
            &client,
            "prompts/get",
            json!({"name": "nope"})
        )
        .await,
        expected("MCP error -32602: Prompt nope not found")
    );
    assert_eq!(
        request(
            session.as_ref(),
            &client,
            "resources/read",
            json!({"uri": "demo://nope"})
        )
        .await,
        expected("MCP error -32602: Resource demo://nope not found")
    );
    // Refused before sending: an unknown method, and params that do not fit.
    match request(session.as_ref(), &client, "tools/frobnicate", json!({})).await {
        Ok(Outcome::Error(e)) => assert_eq!(e.code, ProtocolError::METHOD_NOT_FOUND),
        other => panic!("{other:?}"),
    }
    match request(
        session.as_ref(),
        &client,
        "tools/call",
        json!({"arguments": 3}),
    )
    .await
    {
        Ok(Outcome::Error(e)) => assert_eq!(e.code, ProtocolError::INVALID_PARAMS),
        other => panic!("{other:?}"),
    }
    // The session is still fine.
    let echo = call_tool(
        session.as_ref(),
        &client,
        "echo",
        json!({"message": "still"}),
    )
    .await;
    assert_eq!(first_text(&echo), "Echo: still");
    bounded("close", session.close()).await;
}

async fn check_progress(session: &dyn UpstreamSession) {
    let client = Recorder::default();
    let result = bounded(
        "long-running operation",
        session.request(UpstreamRequest {
            method: "tools/call",
            params: json!({"name": LONG_RUNNING, "arguments": {"duration": 0.4, "steps": 4}}),
            progress_token: Some(json!("agent-token-7")),
            client: &client,
            cancel: CancellationToken::new(),
            timeout: Duration::from_secs(30),
        }),
    )
    .await;
    match result {
        Ok(Outcome::Result(result)) => {
            assert!(first_text(&result).starts_with("Long running operation completed"))
        }
        other => panic!("{other:?}"),
    }
    // Every step, in order, under the agent's token, before the answer.
    let progress = client.notifications_named("notifications/progress");
    let expected: Vec<Value> = (1..=4)
        .map(|i| json!({"progressToken": "agent-token-7", "progress": i, "total": 4}))
        .collect();
    assert_eq!(progress, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_client_under_the_agents_token() {
    let session = connect(&everything()).await;
    check_progress(session.as_ref()).await;
    // Without a token the agent asked for no progress, and gets none.
    let client = Recorder::default();
    let result = call_tool(
        session.as_ref(),
        &client,
        LONG_RUNNING,
        json!({"duration": 0.2, "steps": 2}),
    )
    .await;
    assert!(first_text(&result).starts_with("Long running operation completed"));
    assert!(
        client
            .notifications_named("notifications/progress")
            .is_empty()
    );
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_reach_the_client_of_a_request_in_flight() {
    let session = connect(&everything()).await;
    let client = Recorder::default();
    // The logging tool sends its first message at once, possibly after its
    // own answer; a second request in flight meanwhile takes it then.
    let long = call_tool(
        session.as_ref(),
        &client,
        LONG_RUNNING,
        json!({"duration": 1.5, "steps": 1}),
    );
    let toggle = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        call_tool(
            session.as_ref(),
            &client,
            "toggle-simulated-logging",
            json!({}),
        )
        .await
    };
    let (_, toggled) = tokio::join!(long, toggle);
    assert!(
        first_text(&toggled).contains("Started simulated"),
        "{toggled}"
    );
    let messages = client.notifications_named("notifications/message");
    assert!(
        messages
            .iter()
            .any(|m| m["level"].is_string()
                && m["data"].as_str().is_some_and(|d| d.contains("message"))),
        "no log message among {:?}",
        client.notifications()
    );
    bounded("close", session.close()).await;
}

async fn check_sampling(session: &dyn UpstreamSession) {
    let client = Recorder::answering(&["sampling"], sampling_answer());
    let result = call_tool(
        session,
        &client,
        "trigger-sampling-request",
        json!({"prompt": "Say hello", "maxTokens": 10}),
    )
    .await;
    let questions = client.questions();
    assert_eq!(questions.len(), 1, "{questions:?}");
    let (method, params) = &questions[0];
    assert_eq!(method, "sampling/createMessage");
    assert_eq!(params["maxTokens"], 10);
    let asked = params["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(asked.contains("Say hello"), "{params}");
    // The client's answer went back upstream, which quotes it.
    assert!(first_text(&result).contains("a sampled reply"), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_and_elicitation_go_to_the_client_and_back() {
    let session = connect(&everything()).await;
    check_sampling(session.as_ref()).await;

    let declining = Recorder::answering(&["elicitation"], json!({"action": "decline"}));
    let result = call_tool(
        session.as_ref(),
        &declining,
        "trigger-elicitation-request",
        json!({}),
    )
    .await;
    let questions = declining.questions();
    assert_eq!(questions.len(), 1);
    assert_eq!(questions[0].0, "elicitation/create");
    assert!(questions[0].1["requestedSchema"]["properties"].is_object());
    assert!(
        result.to_string().to_lowercase().contains("decline"),
        "{result}"
    );

    // A client without sampling is never asked; the upstream hears
    // method-not-found and reports its failure in its own way.
    let unable = Recorder::default();
    let outcome = request(
        session.as_ref(),
        &unable,
        "tools/call",
        json!({"name": "trigger-sampling-request", "arguments": {"prompt": "x"}}),
    )
    .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(unable.questions().is_empty());
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_ends_the_request_at_once_and_the_session_stays_usable() {
    let session = connect(&everything()).await;
    let client = Recorder::default();
    let cancel = CancellationToken::new();
    let trigger = {
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            cancel.cancel();
            Instant::now()
        }
    };
    let call = session.request(UpstreamRequest {
        method: "tools/call",
        params: json!({"name": LONG_RUNNING, "arguments": {"duration": 20, "steps": 20}}),
        progress_token: Some(json!(1)),
        client: &client,
        cancel,
        timeout: Duration::from_secs(60),
    });
    let (outcome, cancelled_at) =
        bounded("cancelled call", async { tokio::join!(call, trigger) }).await;
    match outcome {
        Err(e) => {
            assert_eq!(e.kind, UpstreamErrorKind::Cancelled, "{e}");
            assert_eq!(e.upstream, "everything");
        }
        Ok(outcome) => panic!("not cancelled: {outcome:?}"),
    }
    assert!(cancelled_at.elapsed() < Duration::from_secs(2));
    assert!(!session.is_closed());
    let echo = call_tool(
        session.as_ref(),
        &client,
        "echo",
        json!({"message": "after"}),
    )
    .await;
    assert_eq!(first_text(&echo), "Echo: after");
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_times_out_and_the_session_stays_usable() {
    let session = connect(&everything()).await;
    let client = Recorder::default();
    let started = Instant::now();
    let outcome = bounded(
        "timed-out call",
        session.request(UpstreamRequest {
            method: "tools/call",
            params: json!({"name": LONG_RUNNING, "arguments": {"duration": 20, "steps": 2}}),
            progress_token: None,
            client: &client,
            cancel: CancellationToken::new(),
            timeout: Duration::from_millis(500),
        }),
    )
    .await;
    match outcome {
        Err(e) => {
            assert_eq!(e.kind, UpstreamErrorKind::Timeout);
            assert_eq!(e.to_string(), "upstream everything: no answer within 500ms");
        }
        Ok(outcome) => panic!("no timeout: {outcome:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    let echo = call_tool(
        session.as_ref(),
        &client,
        "echo",
        json!({"message": "later"}),
    )
    .await;
    assert_eq!(first_text(&echo), "Echo: later");
    bounded("close", session.close()).await;
}

async fn check_concurrency(session: Arc<dyn UpstreamSession>) {
    let mut calls = Vec::new();
    for i in 0..20 {
        let session = Arc::clone(&session);
        calls.push(tokio::spawn(async move {
            let client = Recorder::default();
            let message = format!("message {i}");
            let result = call_tool(
                session.as_ref(),
                &client,
                "echo",
                json!({"message": message}),
            )
            .await;
            (message, first_text(&result))
        }));
    }
    for call in calls {
        match bounded("concurrent echo", call).await {
            Ok((message, echoed)) => assert_eq!(echoed, format!("Echo: {message}")),
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_calls_on_one_session_are_all_answered() {
    let session = connect(&everything()).await;
    check_concurrency(Arc::clone(&session)).await;
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_stops_and_reaps_the_process() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pidfile = dir.path().join("pid");
    let session = connect(&everything_with_pidfile(&pidfile)).await;
    let pid = read_pid(&pidfile);
    assert!(process_exists(pid));
    bounded("close", session.close()).await;
    assert!(session.is_closed());
    // Reaped, not a zombie: the /proc entry is gone.
    assert!(!process_exists(pid), "process {pid} is still there");
    let client = Recorder::default();
    match request(session.as_ref(), &client, "ping", json!({})).await {
        Err(e) => assert_eq!(e.kind, UpstreamErrorKind::Closed),
        Ok(outcome) => panic!("{outcome:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_session_stops_and_reaps_the_process() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pidfile = dir.path().join("pid");
    let session = connect(&everything_with_pidfile(&pidfile)).await;
    let pid = read_pid(&pidfile);
    drop(session);
    let started = Instant::now();
    while process_exists(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "process {pid} outlived its session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_catalog_calls_progress_sampling_and_concurrency() {
    let server = HttpServer::start();
    let session = connect(&server.upstream()).await;
    check_catalog(session.as_ref()).await;
    let client: &dyn Client = &Recorder::default();
    let echo = call_tool(
        session.as_ref(),
        client,
        "echo",
        json!({"message": "over http"}),
    )
    .await;
    assert_eq!(
        echo,
        json!({"content": [{"type": "text", "text": "Echo: over http"}]})
    );
    check_progress(session.as_ref()).await;
    check_sampling(session.as_ref()).await;
    check_concurrency(Arc::clone(&session)).await;
    bounded("close", session.close()).await;
    assert!(session.is_closed());
}
