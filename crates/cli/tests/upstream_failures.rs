//! Upstreams that misbehave, end to end: the real `sandbar` binary in front
//! of real upstream processes and servers — a small Python MCP server that
//! answers malformed results, writes garbage on stdout or hangs, and the
//! reference `server-everything` started after Sandbar. Each failure is a
//! clear error for the agent, recorded as the agent got it; the sandbox
//! keeps serving; a broken or wedged process is started again for the next
//! call; an upstream that is down at start is left out until it answers.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::*;

/// A stdio MCP server in Python: `ok` answers with its process id, the
/// others misbehave as their names say.
const EVIL: &str = r#"
import sys, json, os, time
def out(o):
    sys.stdout.write(json.dumps(o) + "\n"); sys.stdout.flush()
names = ["ok", "garbage", "wrongshape", "nullresult", "slow"]
tools = [{"name": n, "inputSchema": {"type": "object"}} for n in names]
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    method, i = m["method"], m["id"]
    if method == "initialize":
        out({"jsonrpc": "2.0", "id": i, "result": {"protocolVersion": "2025-06-18",
             "capabilities": {"tools": {}}, "serverInfo": {"name": "evil", "version": "1"}}})
    elif method == "tools/list":
        out({"jsonrpc": "2.0", "id": i, "result": {"tools": tools}})
    elif method == "ping":
        out({"jsonrpc": "2.0", "id": i, "result": {}})
    elif method == "tools/call":
        n = m["params"]["name"]
        if n == "ok":
            out({"jsonrpc": "2.0", "id": i, "result": {"content": [{"type": "text", "text": "pid %d" % os.getpid()}]}})
        elif n == "garbage":
            sys.stdout.write("this is not json\n{\"half\":\n"); sys.stdout.flush()
        elif n == "wrongshape":
            out({"jsonrpc": "2.0", "id": i, "result": {"content": "not-an-array"}})
        elif n == "nullresult":
            out({"jsonrpc": "2.0", "id": i, "result": None})
        elif n == "slow":
            time.sleep(60)
    else:
        out({"jsonrpc": "2.0", "id": i, "error": {"code": -32601, "message": "no"}})
"#;

/// Writes the Python server and a scenario using it (in `record` mode,
/// with the given call timeout) into `dir`.
fn evil_scenario(dir: &Path, timeout: &str) -> PathBuf {
    let script = dir.join("evil.py");
    std::fs::write(&script, EVIL).expect("write evil.py");
    write_scenario(
        dir,
        "evil.yaml",
        &format!(
            r#"
version: 1
name: evil
mode: record
record:
  dir: cassettes
upstreams:
  - name: evil
    command: python3
    args: ["{script}"]
    timeout: {timeout}
"#,
            script = script.display(),
        ),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port} after 30 s");
}

async fn tool_names(session: &Session) -> Vec<String> {
    let tools = session.list_all_tools().await.expect("tools/list");
    tools.iter().map(|t| t.name.to_string()).collect()
}

/// The process id an `ok` call answered from.
fn pid_of(result: &Value) -> String {
    let text = text(result);
    assert!(text.starts_with("pid "), "not an answer of `ok`: {result}");
    text
}

/// The whole text of every cassette in `dir`.
fn cassettes_text(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_upstream_result_is_an_error_recorded_as_the_agent_got_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = evil_scenario(dir.path(), "10s");
    let data = dir.path().join("data");
    let session = connect_stdio(&scenario, &data, TestClient::default()).await;

    let wrong = call(&session, "wrongshape", json!({})).await;
    assert_eq!(wrong["isError"], true, "{wrong}");
    assert_eq!(
        text(&wrong),
        "upstream evil: answered tools/call with a malformed result: \
         content must be an array, not a string"
    );
    let null = call(&session, "nullresult", json!({})).await;
    assert_eq!(
        text(&null),
        "upstream evil: answered tools/call with a malformed result: \
         the result must be an object, not null",
        "{null}"
    );
    // The upstream is fine otherwise: the same process answers.
    let first = pid_of(&call(&session, "ok", json!({})).await);
    assert_eq!(pid_of(&call(&session, "ok", json!({})).await), first);
    session.cancel().await.expect("close the session");

    // The store says what the agent was told, and so does the cassette.
    let run = newest_run(&data);
    let events = run["events"].as_array().expect("events");
    let outcomes: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "response" && e["method"] == "tools/call")
        .collect();
    assert!(
        outcomes.iter().any(|e| e
            .to_string()
            .contains("content must be an array, not a string")),
        "{events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains("not-an-array")),
        "the malformed result was recorded as a result: {events:#?}"
    );
    let cassettes = cassettes_text(&dir.path().join("cassettes"));
    assert!(
        cassettes.contains("answered tools/call with a malformed result"),
        "{cassettes}"
    );
    assert!(!cassettes.contains("not-an-array"), "{cassettes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_stdout_mid_session_fails_the_call_at_once_and_restarts_the_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A long timeout: the call must not wait it out.
    let scenario = evil_scenario(dir.path(), "30s");
    let data = dir.path().join("data");
    let session = connect_stdio(&scenario, &data, TestClient::default()).await;

    let before = pid_of(&call(&session, "ok", json!({})).await);
    let started = Instant::now();
    let garbage = call(&session, "garbage", json!({})).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(garbage["isError"], true, "{garbage}");
    assert_eq!(
        text(&garbage),
        "upstream evil: the process wrote something that is not MCP to stdout: \
         `this is not json`; it is restarted for the next call"
    );
    let after = pid_of(&call(&session, "ok", json!({})).await);
    assert_ne!(before, after, "the process was not restarted");
    session.cancel().await.expect("close the session");

    let run = newest_run(&data);
    let events = run["events"].as_array().expect("events");
    let methods: Vec<&str> = events.iter().filter_map(|e| e["method"].as_str()).collect();
    assert!(methods.contains(&"upstream/closed"), "{methods:?}");
    assert_eq!(
        methods
            .iter()
            .filter(|m| **m == "upstream/connected")
            .count(),
        2,
        "{methods:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_process_is_restarted_after_a_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = evil_scenario(dir.path(), "1s");
    let data = dir.path().join("data");
    let session = connect_stdio(&scenario, &data, TestClient::default()).await;

    let before = pid_of(&call(&session, "ok", json!({})).await);
    // `slow` sleeps for a minute: the process answers nothing meanwhile,
    // not even a ping.
    let slow = call(&session, "slow", json!({})).await;
    assert_eq!(
        text(&slow),
        "upstream evil: no answer within 1s (nor did a ping within 1s); \
         the process is restarted for the next call",
        "{slow}"
    );
    let started = Instant::now();
    let after = pid_of(&call(&session, "ok", json!({})).await);
    assert_ne!(before, after, "the process was not restarted");
    assert!(started.elapsed() < Duration::from_secs(10));
    session.cancel().await.expect("close the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_down_at_start_is_left_out_until_it_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let scenario = write_scenario(
        dir.path(),
        "down.yaml",
        &format!(
            r#"
version: 1
name: down-at-start
upstreams:
  - name: everything
    url: http://127.0.0.1:{port}/mcp
  - name: dies
    command: sh
    args: ["-c", "echo 'fatal: cannot open db' >&2; exit 3"]
tools:
  - name: lookup
    respond:
      - text: ok
"#
        ),
    );
    let data = dir.path().join("data");
    let server = Server::start(&scenario, &data, &[]);

    let first = connect_http(&server.url, TestClient::default()).await;
    assert_eq!(tool_names(&first).await, ["lookup"]);
    assert_eq!(text(&call(&first, "lookup", json!({})).await), "ok");
    first.cancel().await.expect("close the session");

    // The upstream comes up: the next session is offered its tools.
    let everything = node_module("@modelcontextprotocol/server-everything/dist/index.js");
    let mut upstream = std::process::Command::new("node")
        .arg(everything)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start server-everything over HTTP");
    wait_for_port(port);
    let second = connect_http(&server.url, TestClient::default()).await;
    let names = tool_names(&second).await;
    assert!(
        names.contains(&"lookup".to_owned()) && names.contains(&"echo".to_owned()),
        "{names:?}"
    );
    let echo = call(&second, "echo", json!({"message": "back"})).await;
    assert_eq!(text(&echo), "Echo: back", "{echo}");
    second.cancel().await.expect("close the session");
    // Sandbar first, so it closes its upstream session while the upstream
    // is still there to hear it.
    let stderr = server.stop();
    let _ = upstream.kill();
    let _ = upstream.wait();

    let refused = format!(
        "upstream everything is unavailable: connection refused at http://127.0.0.1:{port}/mcp; \
         its tools, prompts and resources are not offered until it answers"
    );
    assert_eq!(stderr.matches(&refused).count(), 1, "{stderr}");
    assert_eq!(
        stderr
            .matches(
                "upstream dies (`sh`) is unavailable: the process exited (status 3) \
                 before answering initialize: fatal: cannot open db; its tools"
            )
            .count(),
        1,
        "{stderr}"
    );
    for noise in ["worker quit", "reqwest", "ERROR", "cannot list what"] {
        assert!(!stderr.contains(noise), "{noise} in: {stderr}");
    }
}

#[test]
fn a_scenario_with_nothing_else_to_offer_says_so_and_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let scenario = write_scenario(
        dir.path(),
        "only.yaml",
        &format!(
            "version: 1\nname: only-upstream\nupstreams:\n  - name: down\n    url: http://127.0.0.1:{port}/mcp\n"
        ),
    );
    let data = dir.path().join("data");
    let (code, _out, err) = cli(
        &data,
        &[
            "serve",
            scenario.to_str().expect("UTF-8 path"),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "sandbar: upstream down: connection refused at http://127.0.0.1:{port}/mcp; \
             the scenario offers nothing else, so there is nothing to serve"
        )),
        "{err}"
    );
    for noise in ["worker quit", "reqwest", "ERROR", "cannot list what"] {
        assert!(!err.contains(noise), "{noise} in: {err}");
    }
}
