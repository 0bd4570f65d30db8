//! Bad input on the wire, end to end: malformed JSON-RPC, unknown methods,
//! bad params, batches, missing or unknown sessions, oversized bodies and
//! DNS-rebinding Host/Origin headers, sent as raw HTTP to the real binary
//! (and bad lines over stdio). Each gets the error the JSON-RPC 2.0 and MCP
//! Streamable HTTP specifications call for, and never harms anything else:
//! after every bad request a session opened before it (with a real MCP
//! client) still answers, and the server process is still running.
//!
//! What the wire should carry, and why:
//! - A body that is not JSON is a JSON-RPC parse error (-32700); JSON that is
//!   not a JSON-RPC request (a number, `null`, a batch, a wrong `jsonrpc`
//!   version) is an invalid request (-32600). Neither can be routed to a
//!   session, so both are refused with HTTP 400 and a JSON-RPC error body
//!   whose `id` is null (JSON-RPC 2.0 §5.1; MCP Streamable HTTP: "If the
//!   server cannot accept the input, it MUST return an HTTP error status
//!   code (e.g., 400 Bad Request)", with a JSON-RPC error body that has no
//!   id). This is also what the reference TypeScript SDK sends.
//! - A well-formed request for an unknown method is answered in-band with
//!   -32601; a known method with parameters of the wrong shape with -32602.
//! - A request other than `initialize` without `Mcp-Session-Id` gets 400; an
//!   unknown or terminated session gets 404 (MCP: "MUST respond to requests
//!   containing that session ID with HTTP 404 Not Found").
//! - Bodies over `--max-body` get 413; a Host or Origin outside the allowed
//!   lists gets 403.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use common::*;

/// How long an answer may take before the test calls it a hang. Generous:
/// debug builds on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

const ACCEPT: &str = "application/json, text/event-stream";

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw-http","version":"1.0.0"}}}"#;

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

fn scenario() -> std::path::PathBuf {
    repo().join("crates/cli/tests/scenarios/behaviour.yaml")
}

/// One HTTP answer, read to the end.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    session: Option<String>,
    body: String,
}

impl Reply {
    /// The JSON-RPC messages in the body, whether it came as one JSON value
    /// or as a `text/event-stream` of `data:` events.
    fn messages(&self) -> Vec<Value> {
        if self.content_type.starts_with("text/event-stream") {
            sse_messages(&self.body)
        } else {
            serde_json::from_str(&self.body)
                .map(|v| vec![v])
                .unwrap_or_default()
        }
    }

    /// The answer to the request with this id.
    fn answer(&self, id: &Value) -> Option<Value> {
        self.messages()
            .into_iter()
            .find(|m| m.get("id") == Some(id))
    }
}

/// The JSON payloads of an SSE stream: events are separated by blank lines,
/// and an event's `data:` lines join with newlines. Events without data
/// (priming events, keep-alives) carry no message.
fn sse_messages(body: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut data: Option<String> = None;
    for line in body.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if let Some(d) = data.take()
                && !d.trim().is_empty()
            {
                match serde_json::from_str(&d) {
                    Ok(v) => messages.push(v),
                    Err(e) => panic!("an SSE event that is not JSON ({e}): {d:?}"),
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("data:") {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(rest);
                }
                None => data = Some(rest.to_owned()),
            }
        }
    }
    messages
}

/// Sends one request with MCP's usual headers (`headers` add to or replace
/// them) and reads the whole answer; a server that does not answer within
/// the deadline fails the test.
async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Reply {
    // A map with `insert`, so a case's Accept or Content-Type replaces the
    // default instead of adding a second value.
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in [("accept", ACCEPT), ("content-type", "application/json")]
        .into_iter()
        .chain(headers.iter().map(|(n, v)| (*n, v.as_str())))
    {
        map.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            reqwest::header::HeaderValue::from_str(value).expect("header value"),
        );
    }
    let mut request = client.request(method.clone(), url).headers(map);
    if let Some(body) = body {
        request = request.body(body);
    }
    let exchange = async {
        let response = request.send().await.expect("an HTTP response");
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let session = header("mcp-session-id");
        let body = response.text().await.expect("the response body");
        Reply {
            status,
            content_type,
            session,
            body,
        }
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} {url} within {DEADLINE:?}: a hang"))
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Reply {
    send(
        client,
        Method::POST,
        url,
        headers,
        Some(body.as_bytes().to_vec()),
    )
    .await
}

/// Opens a session by hand: `initialize`, then `notifications/initialized`.
async fn open_raw_session(client: &reqwest::Client, url: &str, extra: &[(&str, String)]) -> String {
    let init = post(client, url, extra, INITIALIZE).await;
    assert_eq!(init.status, 200, "initialize: {init:?}");
    let result = init.answer(&json!(1)).expect("an initialize result");
    assert!(result["result"]["protocolVersion"].is_string(), "{result}");
    let session = init.session.clone().expect("an Mcp-Session-Id header");
    let mut headers = extra.to_vec();
    headers.push(("mcp-session-id", session.clone()));
    let done = post(client, url, &headers, INITIALIZED).await;
    assert_eq!(done.status, 202, "notifications/initialized: {done:?}");
    session
}

/// A raw `tools/call` of `echo` in a session; returns the echoed text.
async fn raw_echo(
    client: &reqwest::Client,
    url: &str,
    session: &str,
    id: u64,
    text: &str,
) -> String {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}}});
    let reply = post(
        client,
        url,
        &[("mcp-session-id", session.to_owned())],
        &body.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let answer = reply.answer(&json!(id)).expect("an answer");
    answer
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text in {answer}"))
        .to_owned()
}

/// Asserts that the process still runs and that a session opened before
/// the bad request still answers.
async fn assert_unharmed(server: &mut Server, healthy: &Session, after: &str) {
    assert!(
        matches!(server.child.try_wait(), Ok(None)),
        "the server exited after {after}; stderr:\n{}",
        std::fs::read_to_string(&server.stderr_path).unwrap_or_default()
    );
    let echoed = call(healthy, "echo", json!({"text": "still here"})).await;
    assert_eq!(
        text(&echoed),
        "echo: still here",
        "the healthy session broke after {after}: {echoed}"
    );
}

/// What a bad request must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused at the HTTP level with this status; when a code is given, the
    /// body is a JSON-RPC error with that code and a null (or absent) id.
    Http(u16, Option<i64>),
    /// Answered in-band (HTTP 200) with a JSON-RPC error of this code for the
    /// request's own id.
    Error(i64),
}

/// Which `Mcp-Session-Id` a bad request carries.
#[derive(Debug, Clone, Copy)]
enum SessionId {
    /// The raw session opened for the test.
    Open,
    /// None at all.
    Missing,
    /// One the server never issued.
    Unknown,
}

struct BadRequest {
    name: &'static str,
    method: Method,
    session: SessionId,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expect: Expect,
}

fn bad(name: &'static str, body: &str, expect: Expect) -> BadRequest {
    BadRequest {
        name,
        method: Method::POST,
        session: SessionId::Open,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
        expect,
    }
}

fn bad_requests(port: u16) -> Vec<BadRequest> {
    let call = |id: u64, params: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
    };
    let oversized = call(
        90,
        json!({"name": "echo", "arguments": {"text": "x".repeat(4096)}}),
    );
    vec![
        bad(
            "truncated JSON",
            r#"{"jsonrpc":"2.0","id":10,"method":"#,
            Expect::Http(400, Some(-32700)),
        ),
        bad(
            "not JSON at all",
            "hello, server",
            Expect::Http(400, Some(-32700)),
        ),
        bad("an empty body", "", Expect::Http(400, Some(-32700))),
        bad("a bare number", "42", Expect::Http(400, Some(-32600))),
        bad("null", "null", Expect::Http(400, Some(-32600))),
        bad(
            "a batch",
            r#"[{"jsonrpc":"2.0","id":11,"method":"tools/list"},{"jsonrpc":"2.0","id":12,"method":"tools/list"}]"#,
            Expect::Http(400, Some(-32600)),
        ),
        bad("an empty batch", "[]", Expect::Http(400, Some(-32600))),
        bad(
            "jsonrpc 1.0",
            r#"{"jsonrpc":"1.0","id":13,"method":"tools/list"}"#,
            Expect::Http(400, Some(-32600)),
        ),
        bad(
            "no method",
            r#"{"jsonrpc":"2.0","id":14,"params":{}}"#,
            Expect::Http(400, Some(-32600)),
        ),
        bad(
            "an unknown method",
            r#"{"jsonrpc":"2.0","id":20,"method":"tools/frobnicate","params":{}}"#,
            Expect::Error(-32601),
        ),
        bad(
            "tools/call with a number for name",
            &call(21, json!({"name": 42})),
            Expect::Error(-32602),
        ),
        bad(
            "tools/call without name",
            &call(22, json!({"arguments": {}})),
            Expect::Error(-32602),
        ),
        bad(
            "tools/call with arguments that are a list",
            &call(23, json!({"name": "echo", "arguments": [1, 2]})),
            Expect::Error(-32602),
        ),
        bad(
            "tools/call with arguments that are a string",
            &call(24, json!({"name": "echo", "arguments": "text=hi"})),
            Expect::Error(-32602),
        ),
        bad(
            "tools/call of an unknown tool",
            &call(25, json!({"name": "no_such_tool", "arguments": {}})),
            Expect::Error(-32602),
        ),
        bad(
            "resources/read without uri",
            r#"{"jsonrpc":"2.0","id":26,"method":"resources/read","params":{}}"#,
            Expect::Error(-32602),
        ),
        bad(
            "prompts/get with a list for arguments",
            r#"{"jsonrpc":"2.0","id":27,"method":"prompts/get","params":{"name":"p","arguments":[1]}}"#,
            Expect::Error(-32602),
        ),
        bad(
            "a 4 KiB body over --max-body 1024",
            &oversized,
            Expect::Http(413, None),
        ),
        BadRequest {
            session: SessionId::Missing,
            ..bad(
                "a request before initialize (no session)",
                r#"{"jsonrpc":"2.0","id":30,"method":"tools/list"}"#,
                Expect::Http(400, None),
            )
        },
        BadRequest {
            session: SessionId::Unknown,
            ..bad(
                "an unknown Mcp-Session-Id",
                r#"{"jsonrpc":"2.0","id":31,"method":"tools/list"}"#,
                Expect::Http(404, None),
            )
        },
        BadRequest {
            session: SessionId::Unknown,
            method: Method::GET,
            ..bad(
                "GET with an unknown Mcp-Session-Id",
                "",
                Expect::Http(404, None),
            )
        },
        BadRequest {
            headers: vec![("host", "evil.example.com".to_owned())],
            ..bad("a foreign Host", INITIALIZE, Expect::Http(403, None))
        },
        BadRequest {
            headers: vec![("host", format!("evil.example.com:{port}"))],
            ..bad(
                "a foreign Host with our port",
                INITIALIZE,
                Expect::Http(403, None),
            )
        },
        BadRequest {
            headers: vec![("origin", "http://evil.example.com".to_owned())],
            ..bad("a foreign Origin", INITIALIZE, Expect::Http(403, None))
        },
        BadRequest {
            headers: vec![("origin", format!("http://evil.example.com:{port}"))],
            ..bad(
                "a foreign Origin with our port",
                INITIALIZE,
                Expect::Http(403, None),
            )
        },
        BadRequest {
            headers: vec![("origin", "null".to_owned())],
            ..bad("Origin: null", INITIALIZE, Expect::Http(403, None))
        },
        BadRequest {
            headers: vec![("content-type", "text/plain".to_owned())],
            ..bad(
                "a body that is not application/json",
                r#"{"jsonrpc":"2.0","id":40,"method":"tools/list"}"#,
                Expect::Http(415, None),
            )
        },
        BadRequest {
            headers: vec![("accept", "text/html".to_owned())],
            ..bad(
                "an Accept without JSON and SSE",
                r#"{"jsonrpc":"2.0","id":41,"method":"tools/list"}"#,
                Expect::Http(406, None),
            )
        },
    ]
}

/// What is wrong with `reply` as an answer to `request`, if anything.
fn check(request: &BadRequest, reply: &Reply) -> Option<String> {
    match request.expect {
        Expect::Http(status, code) => {
            if reply.status != status {
                return Some(format!("HTTP {}, expected {status}", reply.status));
            }
            let code = code?;
            if !reply.content_type.starts_with("application/json") {
                return Some(format!(
                    "Content-Type {:?}, expected a JSON-RPC error body with code {code}",
                    reply.content_type
                ));
            }
            let error: Value = match serde_json::from_str(&reply.body) {
                Ok(v) => v,
                Err(_) => return Some("the body is not JSON".to_owned()),
            };
            let id_ok = error.get("id").is_none_or(Value::is_null);
            let message_ok = error
                .pointer("/error/message")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.is_empty());
            (error["jsonrpc"] != "2.0"
                || error.pointer("/error/code") != Some(&json!(code))
                || !id_ok
                || !message_ok)
                .then(|| format!("expected a JSON-RPC error with code {code} and a null id"))
        }
        Expect::Error(code) => {
            if reply.status != 200 {
                return Some(format!(
                    "HTTP {}, expected 200 with a JSON-RPC error {code}",
                    reply.status
                ));
            }
            let sent: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let Some(answer) = reply.answer(&sent["id"]) else {
                return Some(format!("no answer with id {}", sent["id"]));
            };
            (answer.pointer("/error/code") != Some(&json!(code)))
                .then(|| format!("answered {answer}, expected error code {code}"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_errors_and_harm_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(
        &scenario(),
        &dir.path().join("data"),
        &["--max-body", "1024"],
    );
    let port: u16 = server
        .base()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let healthy = connect_http(&server.url, TestClient::default()).await;
    assert_unharmed(&mut server, &healthy, "nothing").await;
    let client = reqwest::Client::new();
    let raw = open_raw_session(&client, &server.url, &[]).await;

    let mut failures = Vec::new();
    for (i, request) in bad_requests(port).iter().enumerate() {
        let mut headers: Vec<(&str, String)> = request.headers.clone();
        match request.session {
            SessionId::Open => headers.push(("mcp-session-id", raw.clone())),
            SessionId::Missing => {}
            SessionId::Unknown => headers.push((
                "mcp-session-id",
                "00000000-0000-4000-8000-000000000000".to_owned(),
            )),
        }
        let body = (request.method == Method::POST).then(|| request.body.clone());
        let reply = send(&client, request.method.clone(), &server.url, &headers, body).await;
        if let Some(problem) = check(request, &reply) {
            failures.push(format!(
                "{}: {problem}\n  got HTTP {} {:?}: {}",
                request.name, reply.status, reply.content_type, reply.body
            ));
        }
        assert_unharmed(&mut server, &healthy, request.name).await;
        // The session the bad request named (or would have) works too.
        let id = 1000 + i as u64;
        assert_eq!(
            raw_echo(&client, &server.url, &raw, id, "raw").await,
            "echo: raw",
            "the raw session broke after {}",
            request.name
        );
    }
    healthy.cancel().await.expect("close");
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        failures.is_empty(),
        "{} of {} bad requests got the wrong answer:\n\n{}",
        failures.len(),
        bad_requests(port).len(),
        failures.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_hosts_and_origins_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let port = server.base().rsplit(':').next().unwrap_or("").to_owned();
    let healthy = connect_http(&server.url, TestClient::default()).await;
    let client = reqwest::Client::new();
    for headers in [
        vec![("host", format!("localhost:{port}"))],
        vec![("host", format!("127.0.0.1:{port}"))],
        vec![("origin", format!("http://localhost:{port}"))],
        vec![("origin", format!("http://127.0.0.1:{port}"))],
        vec![
            ("host", format!("localhost:{port}")),
            ("origin", format!("http://localhost:{port}")),
        ],
    ] {
        let session = open_raw_session(&client, &server.url, &headers).await;
        let mut with_session = headers.clone();
        with_session.push(("mcp-session-id", session));
        let reply = post(
            &client,
            &server.url,
            &with_session,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )
        .await;
        assert_eq!(reply.status, 200, "{headers:?}: {reply:?}");
        assert!(
            reply
                .answer(&json!(2))
                .is_some_and(|a| a["result"]["tools"].is_array()),
            "{headers:?}: {reply:?}"
        );
    }
    assert_unharmed(&mut server, &healthy, "loopback requests").await;
    healthy.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_host_and_allow_origin_extend_the_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(
        &scenario(),
        &dir.path().join("data"),
        &[
            "--allow-host",
            "sandbar.test",
            "--allow-origin",
            "https://app.example.com:8443",
        ],
    );
    let port = server.base().rsplit(':').next().unwrap_or("").to_owned();
    let healthy = connect_http(&server.url, TestClient::default()).await;
    let client = reqwest::Client::new();

    for (headers, status) in [
        (vec![("host", "sandbar.test".to_owned())], 200),
        (vec![("host", format!("sandbar.test:{port}"))], 200),
        (vec![("host", "other.test".to_owned())], 403),
        (
            vec![("origin", "https://app.example.com:8443".to_owned())],
            200,
        ),
        (vec![("origin", "https://app.example.com".to_owned())], 403),
        (
            vec![("origin", "http://app.example.com:8443".to_owned())],
            403,
        ),
        // The defaults still hold next to the additions.
        (vec![("origin", format!("http://localhost:{port}"))], 200),
        (
            vec![
                ("host", "sandbar.test".to_owned()),
                ("origin", "https://evil.example.com".to_owned()),
            ],
            403,
        ),
    ] {
        let reply = post(&client, &server.url, &headers, INITIALIZE).await;
        assert_eq!(reply.status, status, "{headers:?}: {reply:?}");
        if status == 200 {
            assert!(reply.session.is_some(), "{headers:?}: {reply:?}");
            assert!(reply.answer(&json!(1)).is_some(), "{reply:?}");
        }
        assert_unharmed(&mut server, &healthy, &format!("{headers:?}")).await;
    }
    healthy.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_session_answers_404() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(&scenario(), &dir.path().join("data"), &[]);
    let healthy = connect_http(&server.url, TestClient::default()).await;
    let client = reqwest::Client::new();
    let raw = open_raw_session(&client, &server.url, &[]).await;
    assert_eq!(
        raw_echo(&client, &server.url, &raw, 2, "hi").await,
        "echo: hi"
    );
    let session = [("mcp-session-id", raw.clone())];

    let ended = send(&client, Method::DELETE, &server.url, &session, None).await;
    assert!(
        ended.status == 200 || ended.status == 202 || ended.status == 204,
        "{ended:?}"
    );
    let mut failures = Vec::new();
    for (method, body) in [
        (
            Method::POST,
            Some(br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#.to_vec()),
        ),
        (Method::GET, None),
        (Method::DELETE, None),
    ] {
        let reply = send(&client, method.clone(), &server.url, &session, body).await;
        if reply.status != 404 {
            failures.push(format!(
                "{method} with the terminated session: HTTP {}, expected 404 ({})",
                reply.status, reply.body
            ));
        }
        assert_unharmed(
            &mut server,
            &healthy,
            &format!("{method} on a terminated session"),
        )
        .await;
    }
    healthy.cancel().await.expect("close");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_server_rejects_bad_bodies_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(
        &scenario(),
        &dir.path().join("data"),
        &["--stateless", "--max-body", "1024"],
    );
    let client = reqwest::Client::new();
    let good = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"stateless"}}}"#;

    // No handshake is needed: a lone request is answered.
    let reply = post(&client, &server.url, &[], good).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let answer = reply.answer(&json!(5)).expect("an answer");
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("echo: stateless")),
        "{answer}"
    );

    let oversized = format!(
        r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(4096)
    );
    let mut failures = Vec::new();
    for request in [
        bad(
            "truncated JSON",
            r#"{"jsonrpc":"2.0","id":1,"#,
            Expect::Http(400, Some(-32700)),
        ),
        bad("a bare string", r#""hi""#, Expect::Http(400, Some(-32600))),
        bad(
            "an unknown method",
            r#"{"jsonrpc":"2.0","id":7,"method":"nope/nothing"}"#,
            Expect::Error(-32601),
        ),
        bad(
            "tools/call with a number for name",
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":42}}"#,
            Expect::Error(-32602),
        ),
        bad("an oversized body", &oversized, Expect::Http(413, None)),
    ] {
        let reply = post(
            &client,
            &server.url,
            &[],
            std::str::from_utf8(&request.body).unwrap_or(""),
        )
        .await;
        if let Some(problem) = check(&request, &reply) {
            failures.push(format!(
                "{}: {problem}\n  got HTTP {} {:?}: {}",
                request.name, reply.status, reply.content_type, reply.body
            ));
        }
        assert!(
            matches!(server.child.try_wait(), Ok(None)),
            "the server exited after {}",
            request.name
        );
        let again = post(&client, &server.url, &[], good).await;
        assert!(again.answer(&json!(5)).is_some(), "{again:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Reads the child's stdout line by line on a thread, so a missing answer
/// is a failed `recv_timeout` rather than a blocked test.
fn line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn stdio_survives_bad_lines_and_stdout_carries_only_json_rpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandbar"))
        .arg("serve")
        .arg(scenario())
        .arg("--stdio")
        .arg("--data")
        .arg(dir.path().join("data"))
        // Chatty logs must still go to stderr only.
        .args(["--log", "debug"])
        .env_remove("SANDBAR_DATA")
        .env_remove("SANDBAR_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn sandbar serve --stdio");
    let mut stdin = child.stdin.take().expect("stdin");
    let lines = line_reader(child.stdout.take().expect("stdout"));
    let mut seen: Vec<String> = Vec::new();
    let mut send = |line: &str| {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to the server");
    };
    let mut next = |what: &str| -> Value {
        let line = lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no line from the server for {what}: a hang or a crash"));
        seen.push(line.clone());
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"))
    };
    let echo = |id: u64, text: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}})
        .to_string()
    };

    send(INITIALIZE);
    assert!(next("initialize")["result"]["protocolVersion"].is_string());
    send(INITIALIZED);

    // Lines that are not JSON at all are dropped without an answer, as every
    // official MCP SDK does: with no id there is nothing to answer, and an
    // answer could start an error storm with a peer that echoes. The next
    // request is served as if nothing happened.
    send(r#"{"jsonrpc":"2.0","id":2,"method":"#);
    send("this is not json");
    send(&echo(3, "after garbage"));
    let answer = next("the request after garbage");
    assert_eq!(answer["id"], json!(3), "{answer}");
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("echo: after garbage")),
        "{answer}"
    );

    // JSON that is not a JSON-RPC message is an invalid request, with no id
    // to answer to.
    let mut failures = Vec::new();
    for (line, what) in [
        ("42", "a bare number"),
        (
            r#"[{"jsonrpc":"2.0","id":4,"method":"tools/list"}]"#,
            "a batch",
        ),
        (
            r#"{"jsonrpc":"1.0","id":5,"method":"tools/list"}"#,
            "jsonrpc 1.0",
        ),
    ] {
        send(line);
        let error = next(what);
        if error.pointer("/error/code") != Some(&json!(-32600))
            || !error.get("id").is_none_or(Value::is_null)
        {
            failures.push(format!(
                "{what}: {error}, expected error -32600 with a null id"
            ));
        }
    }

    // Unknown methods and bad params, answered for their id.
    for (id, line, code, what) in [
        (
            6,
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/frobnicate"}"#,
            -32601,
            "an unknown method",
        ),
        (
            7,
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":42}}"#,
            -32602,
            "tools/call with a number for name",
        ),
        (
            8,
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo","arguments":[1]}}"#,
            -32602,
            "tools/call with a list for arguments",
        ),
        (
            9,
            r#"{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{}}"#,
            -32602,
            "resources/read without uri",
        ),
    ] {
        send(line);
        let error = next(what);
        if error["id"] != json!(id) || error.pointer("/error/code") != Some(&json!(code)) {
            failures.push(format!(
                "{what}: {error}, expected error {code} for id {id}"
            ));
        }
    }

    send(&echo(10, "the end"));
    let last = next("the last request");
    assert_eq!(
        last.pointer("/result/content/0/text"),
        Some(&json!("echo: the end")),
        "{last}"
    );

    // The client leaves; the server ends cleanly.
    drop(stdin);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sandbar serve --stdio did not exit after stdin closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        seen.push(line);
    }
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Nothing but JSON-RPC frames on stdout, and exactly one per answer.
    for line in &seen {
        let frame: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line:?}"));
        assert_eq!(frame["jsonrpc"], json!("2.0"), "{line}");
    }
    assert_eq!(seen.len(), 10, "one line per answer:\n{}", seen.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_scenario_or_cassette_that_is_not_there_is_said_and_nothing_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-file");
    let missing = missing.to_str().expect("UTF-8 path");
    for (i, command) in [
        vec!["serve", missing],
        vec!["serve", missing, "--stdio"],
        vec!["replay", missing],
        vec!["demo", missing],
    ]
    .into_iter()
    .enumerate()
    {
        let data = dir.path().join(format!("data-{i}"));
        let (code, _, err) = cli(&data, &command);
        assert_eq!(code, 1, "{command:?}: {err}");
        assert!(
            err.contains("no-such-file") && err.contains("cannot read"),
            "{command:?}: {err}"
        );
        assert!(
            !data.exists(),
            "{command:?} created {} for a file that is not there",
            data.display()
        );
    }
}
