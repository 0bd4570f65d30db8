//! Every stub behaviour, end to end: the real binary serves
//! `tests/scenarios/behaviour.yaml` over Streamable HTTP and a real MCP
//! client (rmcp) calls it.

#![allow(deprecated)] // Logging and subscriptions are deprecated in 2026-07-28 but tested for earlier versions.

mod common;

use std::time::{Duration, Instant};

use rmcp::model::RequestParamsMeta as _;
use rmcp::model::{
    CompleteRequestParams, GetPromptRequestParams, ReadResourceRequestParams,
    SetLevelRequestParams, SubscribeRequestParams,
};
use serde_json::{Value, json};

use common::*;

fn scenario() -> std::path::PathBuf {
    repo().join("crates/cli/tests/scenarios/behaviour.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_answer_as_the_scenario_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let s = connect_http(&server.url, TestClient::default()).await;

    let tools = s.list_all_tools().await.expect("tools/list");
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names[..4], ["echo", "item", "classify", "buy"]);
    let echo = &tools[0];
    assert_eq!(echo.description.as_deref(), Some("Echoes its text."));
    assert_eq!(echo.input_schema.get("required"), Some(&json!(["text"])));

    // Text, templated from the arguments.
    assert_eq!(
        call(&s, "echo", json!({"text": "hi"})).await,
        json!({"content": [{"type": "text", "text": "echo: hi"}]})
    );

    // Schema violations are tool errors the model can read.
    let bad = call(&s, "echo", json!({"text": 5})).await;
    assert_eq!(bad["isError"], json!(true));
    assert!(
        text(&bad).contains("invalid arguments for tool echo"),
        "{bad}"
    );
    let missing = call(&s, "echo", json!({})).await;
    assert!(
        text(&missing).contains("\"text\" is a required property"),
        "{missing}"
    );

    // Unknown tools are protocol errors (invalid params).
    let unknown = call(&s, "nope", json!({})).await;
    assert_eq!(unknown["error"]["code"], json!(-32602), "{unknown}");

    // JSON keeps types and comes back as structured content and text.
    let item = call(&s, "item", json!({"id": "a"})).await;
    assert_eq!(
        item["structuredContent"],
        json!({"id": "a", "name": "Apple", "stock": 5, "price": 1.5})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&text(&item)).expect("json text"),
        item["structuredContent"]
    );
    let none = call(&s, "item", json!({"id": "zzz"})).await;
    assert_eq!(
        (none["isError"].clone(), text(&none)),
        (json!(true), "no item zzz".to_owned())
    );

    // Rule matching: first match wins; every operator.
    for (args, expected) in [
        (json!({"n": 101}), "big"),
        (json!({"n": "55"}), "medium"),
        (json!({"n": 5}), "default"),
        (json!({"code": "ABC-12"}), "code"),
        (json!({"code": "abc-12"}), "default"),
        (json!({"nested": {"deep": [{"x": 1}, {"x": 7}]}}), "nested"),
        (json!({"tag": "green"}), "colour"),
        (json!({"tag": "blue"}), "default"),
        (json!({"flag": null}), "flagged"),
    ] {
        assert_eq!(
            text(&call(&s, "classify", args.clone()).await),
            expected,
            "classify {args}"
        );
    }

    // Every content type, with structured content beside it.
    let mixed = call(&s, "mixed", json!({})).await;
    let kinds: Vec<&str> = mixed["content"]
        .as_array()
        .expect("content")
        .iter()
        .map(|c| c["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["text", "image", "audio", "resource", "resource_link"]
    );
    assert_eq!(mixed["content"][1]["mimeType"], json!("image/png"));
    assert_eq!(mixed["content"][3]["resource"]["uri"], json!("mem://note"));
    assert_eq!(mixed["structuredContent"], json!({"kind": "mixed"}));

    // Protocol errors from the scenario.
    let broken = call(&s, "broken", json!({"why": "testing"})).await;
    assert_eq!(broken["error"]["code"], json!(-32050));
    assert_eq!(
        broken["error"]["message"],
        json!("backend exploded for testing")
    );
    assert_eq!(broken["error"]["data"], json!({"retry": false}));

    // A template failing at run time is a clear internal error, not a crash.
    let failed = call(&s, "bad_template", json!({})).await;
    assert_eq!(failed["error"]["code"], json!(-32603), "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("tools[14].respond[0].text"),
        "{failed}"
    );

    // A runaway template runs out of fuel instead of hanging the server.
    let runaway = call(&s, "runaway", json!({})).await;
    assert_eq!(runaway["error"]["code"], json!(-32603), "{runaway}");
    assert!(
        runaway["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("fuel"),
        "{runaway}"
    );

    // Structured results are checked against the declared output schema.
    let typed = call(&s, "typed", json!({"good": true})).await;
    assert_eq!(typed["structuredContent"], json!({"count": 3}));
    let mistyped = call(&s, "typed", json!({})).await;
    assert_eq!(mistyped["error"]["code"], json!(-32603), "{mistyped}");
    assert!(
        mistyped["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not fit its output schema"),
        "{mistyped}"
    );

    // The session still works afterwards.
    assert_eq!(
        text(&call(&s, "echo", json!({"text": "still here"})).await),
        "echo: still here"
    );
    s.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_change_the_twin_and_each_run_starts_from_the_seed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let s = connect_http(&server.url, TestClient::default()).await;

    let bought = call(&s, "buy", json!({"id": "a", "qty": 2})).await;
    assert_eq!(bought["structuredContent"]["left"], json!(3), "{bought}");
    assert_eq!(bought["structuredContent"]["order"]["item"], json!("a"));
    assert_eq!(bought["structuredContent"]["order"]["qty"], json!(2));
    assert_eq!(
        bought["structuredContent"]["order"]["at"],
        json!("2026-02-01T12:00:01Z")
    );
    let again = call(&s, "buy", json!({"id": "a", "qty": 3})).await;
    assert_eq!(again["structuredContent"]["left"], json!(0));
    let refused = call(&s, "buy", json!({"id": "a", "qty": 1})).await;
    assert_eq!(text(&refused), "only 0 Apple left");
    assert_eq!(
        text(&call(&s, "buy", json!({"id": "b", "qty": 1})).await),
        "only 0 Banana left"
    );

    // The resource template reads the same state.
    let read = s
        .read_resource(ReadResourceRequestParams::new("items://a"))
        .await
        .expect("read");
    let contents = serde_json::to_value(&read.contents[0]).expect("json");
    assert_eq!(
        serde_json::from_str::<Value>(contents["text"].as_str().unwrap_or("")).expect("json")["stock"],
        json!(0)
    );
    s.cancel().await.expect("close");

    // A new session is a new run, back at the seed.
    let s2 = connect_http(&server.url, TestClient::default()).await;
    let fresh = call(&s2, "item", json!({"id": "a"})).await;
    assert_eq!(fresh["structuredContent"]["stock"], json!(5));
    s2.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_fire_by_count_and_by_seed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let s = connect_http(&server.url, TestClient::default()).await;

    let mut flaky = Vec::new();
    for _ in 0..6 {
        let r = call(&s, "flaky", json!({})).await;
        flaky.push((r["isError"] == json!(true), text(&r)));
    }
    assert_eq!(
        flaky,
        [
            (false, "ok 1".into()),
            (false, "ok 2".into()),
            (true, "flaky failure on call 3".into()),
            (false, "ok 4".into()),
            (false, "ok 5".into()),
            (true, "flaky failure on call 6".into()),
        ]
    );

    let first = call(&s, "later", json!({})).await;
    assert_eq!(
        first["error"]["message"],
        json!("first call refused"),
        "{first}"
    );
    assert_eq!(text(&call(&s, "later", json!({})).await), "fine");
    assert_eq!(text(&call(&s, "later", json!({})).await), "exhausted");

    // Probability faults: some heads, some tails, and the same sequence
    // for the same seed in a second session.
    let mut first_run = Vec::new();
    for _ in 0..20 {
        first_run.push(text(&call(&s, "coin", json!({})).await));
    }
    let tails = first_run.iter().filter(|t| *t == "tails").count();
    assert!(
        (3..=17).contains(&tails),
        "{tails} tails out of 20: {first_run:?}"
    );
    s.cancel().await.expect("close");
    let s2 = connect_http(&server.url, TestClient::default()).await;
    let mut second_run = Vec::new();
    for _ in 0..20 {
        second_run.push(text(&call(&s2, "coin", json!({})).await));
    }
    assert_eq!(first_run, second_run);

    // Latency is real time and virtual time.
    let started = Instant::now();
    let slow = call(&s2, "slow", json!({})).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "latency not applied"
    );
    // 20 coin calls at 1s each, this call's step, and 300ms of latency.
    assert_eq!(text(&slow), "slow done at 2026-02-01T12:00:21.300Z");
    s2.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_tool_can_be_cancelled_and_the_session_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let s = connect_http(&server.url, TestClient::default()).await;
    let hung = tokio::time::timeout(Duration::from_millis(500), call(&s, "stuck", json!({}))).await;
    assert!(hung.is_err(), "the stuck tool answered: {hung:?}");
    // The abandoned request does not block others.
    assert_eq!(
        text(&call(&s, "echo", json!({"text": "after"})).await),
        "echo: after"
    );
    s.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_send_progress_logs_and_questions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let client = TestClient::default();
    let inbox = client.inbox.clone();
    let s = connect_http(&server.url, client).await;

    s.subscribe(SubscribeRequestParams::new("mem://watched"))
        .await
        .expect("subscribe");
    s.set_level(SetLevelRequestParams::new(rmcp::model::LoggingLevel::Info))
        .await
        .expect("setLevel");
    let mut request = rmcp::model::CallToolRequestParams::new("chatty");
    request.set_progress_token(rmcp::model::ProgressToken(
        rmcp::model::NumberOrString::String("tok-1".into()),
    ));
    let result = s.call_tool(request).await.expect("call chatty");
    let result = serde_json::to_value(result).expect("json");
    // One minute of virtual time passed in the wait step, and one second for the request.
    assert_eq!(text(&result), "done at 2026-02-01T12:01:03Z", "{result}");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The client's SDK may hand notifications to its handler out of order;
    // the order the server sent them in is checked in the recorded run below.
    let mut progress = inbox.of("notifications/progress");
    progress.sort_by(|a, b| {
        a["progress"]
            .as_f64()
            .partial_cmp(&b["progress"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    assert_eq!(progress.len(), 2, "{progress:?}");
    // The SDK client puts its own token on the request; the server echoes it.
    assert!(!progress[0]["progressToken"].is_null());
    assert_eq!(progress[0]["progressToken"], progress[1]["progressToken"]);
    assert_eq!(
        progress[0]["message"],
        json!("half at 2026-02-01T12:00:03Z")
    );
    assert_eq!(progress[1]["progress"], json!(2.0));
    // The debug message is below the level the client set; the warning is not.
    let logs = inbox.of("notifications/message");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["level"], json!("warning"));
    assert_eq!(
        inbox.of("notifications/resources/updated"),
        vec![json!({"uri": "mem://watched"})]
    );

    let sampled = call(&s, "ask_model", json!({"topic": "tides"})).await;
    assert_eq!(text(&sampled), "model said: a reply from the model");
    let asked = inbox.of("sampling/createMessage");
    assert_eq!(
        asked[0]["messages"][0]["content"]["text"],
        json!("Say something about tides")
    );
    assert_eq!(asked[0]["maxTokens"], json!(20));

    let elicited = call(&s, "ask_user", json!({})).await;
    assert_eq!(text(&elicited), "hello ada");
    assert_eq!(
        inbox.of("elicitation/create")[0]["message"],
        json!("Who are you?")
    );
    s.cancel().await.expect("close");

    // The run recorded what the server sent, in the order it sent it.
    let shown = newest_run(&dir.path().join("data"));
    let sent: Vec<String> = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == json!("notification") && e["direction"] == json!("to_client"))
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap_or(""),
                e["payload"]["progress"]
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            "notifications/progress 1.0",
            "notifications/message null",
            "notifications/progress 2.0",
            "notifications/resources/updated null",
        ]
    );

    // A client that declines takes the other branch.
    let declining = TestClient {
        elicitation_reply: json!({"action": "decline"}),
        ..TestClient::default()
    };
    let s2 = connect_http(&server.url, declining).await;
    assert_eq!(text(&call(&s2, "ask_user", json!({})).await), "declined");
    s2.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_prompts_and_completion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let s = connect_http(&server.url, TestClient::default()).await;

    let listed = s.list_all_resources().await.expect("resources/list");
    assert_eq!(
        listed.iter().map(|r| r.uri.clone()).collect::<Vec<_>>(),
        ["mem://static", "mem://watched", "mem://bytes"]
    );
    let templates = s.list_all_resource_templates().await.expect("templates");
    assert_eq!(templates[0].uri_template, "items://{id}");

    let read = |uri: &'static str| {
        let s = &s;
        async move {
            serde_json::to_value(
                s.read_resource(ReadResourceRequestParams::new(uri))
                    .await
                    .expect("read"),
            )
            .expect("json")
        }
    };
    assert_eq!(
        read("mem://static").await["contents"][0],
        json!({"uri": "mem://static", "mimeType": "text/plain", "text": "static text"})
    );
    assert_eq!(
        read("mem://bytes").await["contents"][0]["blob"],
        json!("AAEC")
    );
    assert_eq!(
        read("items://b").await["contents"][0]["text"],
        json!(r#"{"id":"b","name":"Banana","stock":0,"price":0.5}"#)
    );
    let missing = s
        .read_resource(ReadResourceRequestParams::new("mem://nowhere"))
        .await
        .expect_err("not found");
    assert!(
        missing.to_string().contains("resource not found"),
        "{missing}"
    );

    let prompts = s.list_all_prompts().await.expect("prompts/list");
    assert_eq!(prompts[0].name, "greet");
    let mut args = serde_json::Map::new();
    args.insert("who".into(), json!("Ada"));
    args.insert("mood".into(), json!("sunny"));
    let got = s
        .get_prompt(GetPromptRequestParams::new("greet").with_arguments(args))
        .await
        .expect("get");
    let got = serde_json::to_value(got).expect("json");
    assert_eq!(
        got["messages"][0]["content"]["text"],
        json!("Greet Ada in a sunny mood.")
    );
    assert_eq!(got["messages"][1]["role"], json!("assistant"));
    let err = s
        .get_prompt(GetPromptRequestParams::new("greet"))
        .await
        .expect_err("missing argument");
    assert!(
        err.to_string().contains("needs the argument(s): who"),
        "{err}"
    );

    let complete = |reference: Value, name: &str, value: &str| {
        let params: CompleteRequestParams = serde_json::from_value(
            json!({"ref": reference, "argument": {"name": name, "value": value}}),
        )
        .expect("params");
        let s = &s;
        async move { serde_json::to_value(s.complete(params).await.expect("complete")).expect("json") }
    };
    let c = complete(json!({"type": "ref/prompt", "name": "greet"}), "who", "a").await;
    assert_eq!(c["completion"]["values"], json!(["Ada", "Alan"]));
    let c = complete(
        json!({"type": "ref/resource", "uri": "items://{id}"}),
        "id",
        "av",
    )
    .await;
    assert_eq!(c["completion"]["values"], json!(["avocado"]));
    s.cancel().await.expect("close");
}
