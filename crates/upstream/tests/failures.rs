//! Upstreams that fail: commands that do not exist, processes that exit at
//! once or print garbage, processes killed mid-session, unreachable and
//! vanishing HTTP servers. Each failure is a typed error with a plain
//! message, never a panic or a hang, and a crashed upstream can be
//! connected to again.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use sandbar_engine::{UpstreamErrorKind, UpstreamRequest};
use sandbar_upstream::{McpUpstream, Transport};

use common::*;

fn quick(name: &str, transport: Transport) -> std::sync::Arc<McpUpstream> {
    let mut config = config(name, transport);
    config.connect_timeout = Duration::from_secs(2);
    McpUpstream::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_does_not_exist_cannot_connect() {
    let upstream = quick("everything", stdio("sandbar-no-such-command", &[], &[]));
    let error = connect_error(&upstream).await;
    assert_eq!(error.kind, UpstreamErrorKind::Connect);
    assert_eq!(
        error.to_string(),
        "upstream everything: could not start `sandbar-no-such-command`: No such file or directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_exits_at_once_is_quoted() {
    let upstream = quick("broken", stdio("sh", &["-c", "echo oops >&2; exit 3"], &[]));
    let error = connect_error(&upstream).await;
    assert_eq!(error.kind, UpstreamErrorKind::Connect);
    assert_eq!(
        error.to_string(),
        "upstream broken: the process exited (status 3) before answering initialize: oops"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_stdout_ends_in_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pidfile = dir.path().join("pid");
    // `sleep` stands for a server that never answers; it is a child of the
    // shell, so stopping the upstream must take the whole process group.
    let script = format!(
        "echo $$ > '{}'; echo 'Welcome to my server!'; sleep 60",
        pidfile.display()
    );
    let upstream = quick("noisy", stdio("sh", &["-c", &script], &[]));
    let started = Instant::now();
    let error = connect_error(&upstream).await;
    assert_eq!(error.kind, UpstreamErrorKind::Connect);
    assert_eq!(
        error.to_string(),
        "upstream noisy: no answer to initialize within 2s \
         (it wrote to stdout something that is not MCP: `Welcome to my server!`)"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let shell = read_pid(&pidfile);
    assert!(!process_exists(shell), "the shell {shell} is still there");
    // Nothing of the group is left: `pgrep -g` soon finds no member (the
    // killed `sleep` is an orphan, reaped by init rather than by us).
    let members = || {
        std::process::Command::new("pgrep")
            .args(["-g", &shell.to_string()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let stopped = Instant::now();
    while !members().is_empty() {
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "left running in the upstream's group: {}",
            members()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_an_exit_are_both_reported() {
    let upstream = quick(
        "noisy",
        stdio(
            "sh",
            &["-c", "echo 'not json'; echo 'fatal: no config' >&2; exit 1"],
            &[],
        ),
    );
    let error = connect_error(&upstream).await;
    assert_eq!(
        error.to_string(),
        "upstream noisy: the process exited (status 1) before answering initialize: \
         fatal: no config (it wrote to stdout something that is not MCP: `not json`)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banner_before_the_server_starts_is_skipped() {
    let script = format!(
        "echo 'starting up...'; echo '{{\"not\": \"json-rpc\"}}'; exec node '{}' stdio",
        everything_script()
    );
    let upstream = quick("banner", stdio("sh", &["-c", &script], &[]));
    let session = connect(&upstream).await;
    let client = Recorder::default();
    let echo = call_tool(session.as_ref(), &client, "echo", json!({"message": "ok"})).await;
    assert_eq!(first_text(&echo), "Echo: ok");
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_request_closes_the_session_and_can_be_restarted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pidfile = dir.path().join("pid");
    let upstream = everything_with_pidfile(&pidfile);
    let session = connect(&upstream).await;
    let pid = read_pid(&pidfile);
    let client = Recorder::default();

    let call = session.request(UpstreamRequest {
        method: "tools/call",
        params: json!({"name": "trigger-long-running-operation", "arguments": {"duration": 30, "steps": 30}}),
        progress_token: None,
        client: &client,
        cancel: CancellationToken::new(),
        timeout: Duration::from_secs(60),
    });
    let killer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        kill9(pid);
    };
    let (outcome, ()) = bounded("killed call", async { tokio::join!(call, killer) }).await;
    match outcome {
        Err(e) => {
            assert_eq!(e.kind, UpstreamErrorKind::Closed, "{e}");
            assert!(
                e.to_string()
                    .starts_with("upstream everything: the process was killed by signal 9"),
                "{e}"
            );
        }
        Ok(outcome) => panic!("answered by a killed process: {outcome:?}"),
    }
    assert!(session.is_closed());
    // The next request fails at once the same way.
    match request(session.as_ref(), &client, "ping", json!({})).await {
        Err(e) => assert_eq!(e.kind, UpstreamErrorKind::Closed),
        Ok(outcome) => panic!("{outcome:?}"),
    }
    bounded("close", session.close()).await;

    // A new connection starts the process again.
    let again = connect(&upstream).await;
    let echo = call_tool(again.as_ref(), &client, "echo", json!({"message": "back"})).await;
    assert_eq!(first_text(&echo), "Echo: back");
    bounded("close", again.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_between_requests_fails_the_next_one() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pidfile = dir.path().join("pid");
    let session = connect(&everything_with_pidfile(&pidfile)).await;
    let client = Recorder::default();
    call_tool(
        session.as_ref(),
        &client,
        "echo",
        json!({"message": "first"}),
    )
    .await;
    kill9(read_pid(&pidfile));
    // Whether or not the end of the stream has been seen yet, the request
    // gets a Closed error, and from then on the session says so.
    match request(
        session.as_ref(),
        &client,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "x"}}),
    )
    .await
    {
        Err(e) => assert_eq!(e.kind, UpstreamErrorKind::Closed, "{e}"),
        Ok(outcome) => panic!("{outcome:?}"),
    }
    assert!(session.is_closed());
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_a_closed_port_cannot_connect() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let upstream = quick(
        "web",
        Transport::Http {
            url: url.clone(),
            headers: Default::default(),
        },
    );
    let error = connect_error(&upstream).await;
    assert_eq!(error.kind, UpstreamErrorKind::Connect);
    assert_eq!(
        error.to_string(),
        format!("upstream web: connection refused at {url}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_that_goes_away_closes_the_session() {
    let mut server = HttpServer::start();
    let upstream = server.upstream();
    let session = connect(&upstream).await;
    let client = Recorder::default();
    call_tool(session.as_ref(), &client, "echo", json!({"message": "up"})).await;
    server.kill();
    match request(
        session.as_ref(),
        &client,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "x"}}),
    )
    .await
    {
        Err(e) => {
            assert_eq!(e.kind, UpstreamErrorKind::Closed, "{e}");
            assert!(e.message.contains(&server.url), "{e}");
        }
        Ok(outcome) => panic!("{outcome:?}"),
    }
    assert!(session.is_closed());
    bounded("close", session.close()).await;
    // Reconnecting while it is down is a plain connect error.
    let error = connect_error(&upstream).await;
    assert_eq!(error.kind, UpstreamErrorKind::Connect);
}
