//! Live upstreams, recording and replay, end to end: real MCP servers
//! (the reference `server-everything`, `server-memory` and
//! `server-filesystem`, installed by `npm ci --prefix .ci/node`) behind
//! the real `sandbar` binary, driven by a real MCP client. A session is
//! recorded through Sandbar, then replayed with the upstream gone — inside
//! a network namespace without interfaces — and must give the same bytes.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::RequestParamsMeta as _;
use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
use serde_json::{Value, json};

use common::*;

fn everything() -> String {
    node_module("@modelcontextprotocol/server-everything/dist/index.js")
        .display()
        .to_string()
}

/// A scenario with one stubbed tool and `server-everything` over stdio.
/// Gives a data directory a fixed masking key, so that which pseudonyms
/// come out is the same on every run of the test.
fn fixed_mask_key(data: &Path) {
    std::fs::create_dir_all(data.join("keys")).expect("keys dir");
    std::fs::write(data.join("keys/mask.key"), format!("{}\n", "5a".repeat(32))).expect("key");
}

/// Copies the masking key of one data directory into another.
fn carry_mask_key(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("keys")).expect("keys dir");
    std::fs::copy(from.join("keys/mask.key"), to.join("keys/mask.key")).expect("copy the key");
}

fn everything_scenario(dir: &Path, extra: &str) -> PathBuf {
    write_scenario(
        dir,
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: everything-behind-sandbar
seed: 7
clock: 2026-01-15T09:00:00Z
upstreams:
  - name: everything
    command: node
    args: ["{everything}", stdio]
{extra}
tools:
  - name: lookup
    input_schema: {{type: object, properties: {{id: {{type: string}}}}, required: [id]}}
    respond:
      - text: "stubbed {{{{ args.id }}}}"
"#,
            everything = everything()
        ),
    )
}

/// `sandbar COMMAND TARGET --stdio --data DATA EXTRA...` as arguments.
fn stdio_args(command: &str, target: &Path, data: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        command.to_owned(),
        target.display().to_string(),
        "--stdio".to_owned(),
        "--data".to_owned(),
        data.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// `sandbar serve SCENARIO --stdio --data DIR/data --record DIR/cassettes`
/// as arguments, and the cassettes' folder.
fn recording_args(dir: &Path, scenario: &Path) -> (Vec<String>, PathBuf) {
    let cassettes = dir.join("cassettes");
    let args = stdio_args(
        "serve",
        scenario,
        &dir.join("data"),
        &["--record", &cassettes.display().to_string()],
    );
    (args, cassettes)
}

/// `unshare -rn sandbar replay CASSETTE --stdio --data DATA` as arguments:
/// a replay inside a network namespace without interfaces (loopback down).
fn offline_replay_args(cassette: &Path, data: &Path) -> Vec<String> {
    let mut args = vec!["-rn".to_owned(), sandbar_path()];
    args.extend(stdio_args("replay", cassette, data, &[]));
    args
}

/// The one cassette in `dir`.
fn only_cassette(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "expected one cassette in {}: {files:?}",
        dir.display()
    );
    files[0].clone()
}

/// The same session, whatever serves it: every answer as JSON text.
async fn session_transcript(session: &Session) -> Vec<String> {
    let mut out = Vec::new();
    let tools = session.list_all_tools().await.expect("tools/list");
    out.push(serde_json::to_string(&tools).expect("json"));
    for (tool, args) in [
        ("echo", json!({"message": "hello"})),
        ("get-sum", json!({"a": 2, "b": 3})),
        ("lookup", json!({"id": "c-1"})),
        ("echo", json!({"message": "hello"})),
        ("get-structured-content", json!({"location": "New York"})),
    ] {
        out.push(serde_json::to_string(&call(session, tool, args).await).expect("json"));
    }
    let resource = session
        .read_resource(ReadResourceRequestParams::new(
            "demo://resource/static/document/architecture.md",
        ))
        .await
        .map(|r| serde_json::to_value(r).expect("json"))
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    out.push(resource.to_string());
    let prompt = session
        .get_prompt(GetPromptRequestParams::new("simple-prompt"))
        .await
        .map(|r| serde_json::to_value(r).expect("json"))
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    out.push(prompt.to_string());
    out
}

/// Every line the server wrote to the client, as it was written, before
/// the client parsed it.
#[derive(Clone, Default)]
struct Frames(Arc<Mutex<Vec<String>>>);

impl Frames {
    fn all(&self) -> Vec<String> {
        self.0.lock().expect("frames").clone()
    }

    /// The notifications among the frames, as `(method, params)`.
    fn notifications(&self) -> Vec<(String, Value)> {
        self.all()
            .iter()
            .map(|frame| serde_json::from_str::<Value>(frame).expect("a JSON frame"))
            .filter(|m| m.get("id").is_none())
            .map(|m| {
                (
                    m["method"].as_str().unwrap_or("").to_owned(),
                    m["params"].clone(),
                )
            })
            .collect()
    }
}

/// Like `connect_command`, but keeps every frame the server writes.
async fn connect_tapped(program: &str, args: &[String], client: TestClient) -> (Session, Frames) {
    use rmcp::ServiceExt as _;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

    let mut child = stdio_command(program, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the stdio server");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (mut to_client, from_tap) = tokio::io::duplex(1 << 20);
    let frames = Frames::default();
    let tap = frames.clone();
    // The child lives as long as its stdout: until the client has closed
    // its stdin and the server has ended.
    tokio::spawn(async move {
        let _child = child;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tap.0.lock().expect("frames").push(line.clone());
            if to_client
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let session = client
        .serve((from_tap, stdin))
        .await
        .expect("connect over stdio");
    (session, frames)
}

/// The notifications a run's store says the agent was sent, in order, as
/// `(method, params)`.
fn stored_notifications(run: &Value) -> Vec<(String, Value)> {
    run["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "notification" && e["direction"] == "to_client")
        .map(|e| {
            (
                e["method"].as_str().unwrap_or("").to_owned(),
                e["payload"].clone(),
            )
        })
        .collect()
}

async fn with_timeout<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took over 60 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_upstream_is_recorded_and_replayed_offline_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = everything_scenario(dir.path(), "");
    let (args, cassettes) = recording_args(dir.path(), &scenario);
    let (live, live_frames) = with_timeout("the live session", async {
        let (session, frames) = connect_tapped(&sandbar_path(), &args, TestClient::default()).await;
        let mut transcript = session_transcript(&session).await;
        transcript.push(progress_call(&session, "agent-token").await.to_string());
        session.cancel().await.expect("close");
        (transcript, frames)
    })
    .await;
    // The upstream really answered: echo and get-sum are its tools.
    assert!(live[1].contains("Echo: hello"), "{}", live[1]);
    assert!(live[2].contains('5'), "{}", live[2]);
    assert!(live[3].contains("stubbed c-1"), "{}", live[3]);
    assert!(live[6].contains("architecture"), "{}", live[6]);
    assert!(!live[7].contains("error"), "{}", live[7]);

    let cassette = only_cassette(&cassettes);
    let recorded = std::fs::read_to_string(&cassette).expect("cassette");
    assert!(
        recorded.starts_with("{\"format\":\"sandbar-cassette\""),
        "{recorded}"
    );

    // Replay with no network at all: a network namespace without
    // interfaces (loopback down), and no upstream declared anywhere.
    let replay_args = offline_replay_args(&cassette, &dir.path().join("replay-data"));
    let (replayed, replayed_frames, unrecorded) = with_timeout("the replayed session", async {
        let (session, frames) =
            connect_tapped("unshare", &replay_args, TestClient::default()).await;
        let mut transcript = session_transcript(&session).await;
        transcript.push(progress_call(&session, "agent-token").await.to_string());
        let replayed_frames = frames.all();
        let unrecorded = call(&session, "echo", json!({"message": "hullo"})).await;
        session.cancel().await.expect("close");
        (transcript, replayed_frames, unrecorded)
    })
    .await;
    assert_eq!(live, replayed, "the replay must give the recorded bytes");
    // Byte for byte on the wire: every frame the agent got, the
    // initialize answer (and the capabilities it advertises) and every
    // notification included, in the same order.
    let live_frames_all = live_frames.all();
    assert_eq!(
        live_frames_all.join("\n"),
        replayed_frames.join("\n"),
        "the replay must send the recorded frames"
    );
    // The session opens the upstream on its first call, and the upstream
    // then says its tool list changed (four times); the agent hears of it
    // before the answer, live and replayed alike.
    let echo_answer = live_frames_all
        .iter()
        .position(|f| f.contains("Echo: hello"))
        .expect("the echo answer");
    let changed = live_frames_all[..echo_answer]
        .iter()
        .filter(|f| f.contains("\"notifications/tools/list_changed\""))
        .count();
    assert!(changed > 0, "{live_frames_all:#?}");
    assert!(
        live_frames_all[0].contains("\"tools\":{\"listChanged\":true}"),
        "{}",
        live_frames_all[0]
    );
    // Whole progress values stay integers on the wire.
    let progress: Vec<&String> = live_frames_all
        .iter()
        .filter(|f| f.contains("notifications/progress"))
        .collect();
    assert_eq!(progress.len(), 3, "{live_frames_all:#?}");
    assert!(progress[0].contains("\"progress\":1,"), "{}", progress[0]);
    // What the stores say the agent was sent is what it was sent.
    let sent = live_frames.notifications();
    assert_eq!(
        stored_notifications(&newest_run(&dir.path().join("data"))),
        sent
    );

    // A call the recording does not hold: a tool error that shows the
    // closest recorded call and the field that differs.
    assert_eq!(unrecorded["isError"], true, "{unrecorded}");
    let message = text(&unrecorded);
    assert!(message.contains("not in the recording"), "{message}");
    assert!(message.contains("arguments.message"), "{message}");
    assert!(message.contains("\"hello\""), "{message}");
    let run = newest_run(&dir.path().join("replay-data"));
    let divergences: Vec<&Value> = run["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "divergence")
        .collect();
    assert_eq!(divergences.len(), 1, "{run}");
    assert_eq!(divergences[0]["payload"]["candidates"][0]["tool"], "echo");
    assert_eq!(stored_notifications(&run), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_is_recorded_and_replayed_by_a_scenario_without_contacting_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut upstream = std::process::Command::new("node")
        .arg(everything())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start server-everything over HTTP");
    wait_for_port(port);
    let scenario_text = |mode: &str| {
        format!(
            r#"
version: 1
name: everything-over-http
clock: 2026-01-15T09:00:00Z
mode: {mode}
upstreams:
  - name: everything
    url: http://127.0.0.1:{port}/mcp
replay:
  cassette: cassettes/recorded.jsonl
"#
        )
    };
    let record_scenario = write_scenario(dir.path(), "record.yaml", &scenario_text("record"));
    let cassettes = dir.path().join("recorded");
    let server = Server::start(
        &record_scenario,
        &dir.path().join("data"),
        &["--record", cassettes.to_str().expect("path")],
    );
    let live = with_timeout("the live session", async {
        let session = connect_http(&server.url, TestClient::default()).await;
        let mut out = Vec::new();
        for message in ["one", "two", "one"] {
            out.push(call(&session, "echo", json!({"message": message})).await);
        }
        out.push(call(&session, "get-sum", json!({"a": 40, "b": 2})).await);
        session.cancel().await.expect("close");
        out
    })
    .await;
    server.stop();
    assert_eq!(text(&live[0]), "Echo: one");
    std::fs::create_dir_all(dir.path().join("cassettes")).expect("mkdir");
    std::fs::copy(
        only_cassette(&cassettes),
        dir.path().join("cassettes/recorded.jsonl"),
    )
    .expect("copy cassette");

    // The upstream is gone; the scenario replays it from the cassette.
    upstream.kill().expect("stop upstream");
    upstream.wait().expect("reap upstream");
    let replay_scenario = write_scenario(dir.path(), "replay.yaml", &scenario_text("replay"));
    let server = Server::start(&replay_scenario, &dir.path().join("data2"), &[]);
    let replayed = with_timeout("the replayed session", async {
        let session = connect_http(&server.url, TestClient::default()).await;
        let tools = session.list_all_tools().await.expect("tools/list");
        assert!(tools.iter().any(|t| t.name == "get-sum"), "{tools:?}");
        let mut out = Vec::new();
        for message in ["one", "two", "one"] {
            out.push(call(&session, "echo", json!({"message": message})).await);
        }
        out.push(call(&session, "get-sum", json!({"a": 40, "b": 2})).await);
        session.cancel().await.expect("close");
        out
    })
    .await;
    server.stop();
    assert_eq!(live, replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_memory_and_filesystem_upstreams_replay_after_their_state_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    std::fs::write(files.join("notes.txt"), "first line\n").expect("write");
    let memory = node_module("@modelcontextprotocol/server-memory/dist/index.js");
    let filesystem = node_module("@modelcontextprotocol/server-filesystem/dist/index.js");
    let memory_file = dir.path().join("memory.jsonl");
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: memory-and-files
upstreams:
  - name: memory
    command: node
    args: ["{memory}"]
    env: {{MEMORY_FILE_PATH: "{memory_file}"}}
  - name: fs
    command: node
    args: ["{filesystem}", "{files}"]
"#,
            memory = memory.display(),
            filesystem = filesystem.display(),
            memory_file = memory_file.display(),
            files = files.display(),
        ),
    );
    let cassettes = dir.path().join("cassettes");
    fixed_mask_key(&dir.path().join("data"));
    let note = files.join("notes.txt").display().to_string();
    let session_calls = |session: Session| {
        let note = note.clone();
        async move {
            let mut out = Vec::new();
            out.push(
            call(
                &session,
                "create_entities",
                json!({"entities": [{"name": "Ada", "entityType": "person", "observations": ["writes programs"]}]}),
            )
            .await,
        );
            out.push(call(&session, "read_graph", json!({})).await);
            out.push(call(&session, "read_text_file", json!({"path": note})).await);
            out.push(
                call(
                    &session,
                    "write_file",
                    json!({"path": note, "content": "second version\n"}),
                )
                .await,
            );
            out.push(call(&session, "read_text_file", json!({"path": note})).await);
            session.cancel().await.expect("close");
            out
        }
    };
    let args = stdio_args(
        "serve",
        &scenario,
        &dir.path().join("data"),
        &["--record", &cassettes.display().to_string()],
    );
    let live = with_timeout("the live session", async {
        session_calls(connect_command(&sandbar_path(), &args, TestClient::default()).await).await
    })
    .await;
    assert!(
        live[1].to_string().contains("writes programs"),
        "{}",
        live[1]
    );
    assert_eq!(text(&live[2]), "first line\n");
    assert_eq!(text(&live[4]), "second version\n");

    // The state behind both upstreams is gone; the recording is all there is.
    std::fs::remove_dir_all(&files).expect("remove files");
    std::fs::remove_file(&memory_file).expect("remove memory");
    let cassette = only_cassette(&cassettes);
    // The personal data in the calls (the entity's name) was pseudonymized
    // under the recording's key; the replay uses the same key, as a team
    // sharing cassettes shares it.
    carry_mask_key(&dir.path().join("data"), &dir.path().join("replay-data"));
    let replay_args = offline_replay_args(&cassette, &dir.path().join("replay-data"));
    let replayed = with_timeout("the replayed session", async {
        session_calls(connect_command("unshare", &replay_args, TestClient::default()).await).await
    })
    .await;
    assert_eq!(live, replayed);
    // What the agent was shown of the entity it created is a pseudonym.
    assert!(
        !live[0].to_string().contains("\"Ada\""),
        "the upstream's answer reached the agent unmasked: {}",
        live[0]
    );
    assert!(
        !files.exists() && !memory_file.exists(),
        "replay touched the upstreams' state"
    );
}

/// Records a stub-only session (two lookups) into `dir/cassettes`, and
/// returns the cassette.
async fn record_lookups(dir: &Path) -> PathBuf {
    let scenario = everything_scenario(dir, "");
    let cassettes = dir.join("recorded");
    let args = stdio_args(
        "serve",
        &scenario,
        &dir.join("data"),
        &["--record", &cassettes.display().to_string()],
    );
    with_timeout("the recording session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        call(&session, "lookup", json!({"id": "c-1"})).await;
        call(&session, "echo", json!({"message": "recorded"})).await;
        session.cancel().await.expect("close");
    })
    .await;
    only_cassette(&cassettes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_miss_policy_does_what_it_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cassette = record_lookups(dir.path()).await;
    // A marker file shows whether the upstream process was ever started.
    let marker = dir.path().join("upstream-started");
    let scenario_for = |policy: &str| {
        write_scenario(
            dir.path(),
            &format!("{policy}.yaml"),
            &format!(
                r#"
version: 1
name: everything-behind-sandbar
seed: 7
clock: 2026-01-15T09:00:00Z
mode: replay
upstreams:
  - name: everything
    command: sh
    args: ["-c", "touch '{marker}'; exec node '{everything}' stdio"]
replay:
  cassette: "{cassette}"
  miss: {policy}
tools:
  - name: lookup
    input_schema: {{type: object, properties: {{id: {{type: string}}}}, required: [id]}}
    respond:
      - text: "stubbed {{{{ args.id }}}}"
"#,
                marker = marker.display(),
                everything = everything(),
                cassette = cassette.display(),
            ),
        )
    };
    let session_for = |policy: &str| {
        let scenario = scenario_for(policy);
        let data = dir.path().join(format!("data-{policy}"));
        async move {
            let args = stdio_args("serve", &scenario, &data, &[]);
            connect_command(&sandbar_path(), &args, TestClient::default()).await
        }
    };

    // fail: recorded calls are answered, others are tool errors; the
    // upstream is never started.
    let session = session_for("fail").await;
    let hit = call(&session, "echo", json!({"message": "recorded"})).await;
    assert_eq!(text(&hit), "Echo: recorded");
    let miss = call(&session, "lookup", json!({"id": "c-2"})).await;
    assert_eq!(miss["isError"], true, "{miss}");
    assert!(text(&miss).contains("arguments.id"), "{miss}");
    let miss = call(&session, "echo", json!({"message": "new"})).await;
    assert_eq!(miss["isError"], true, "{miss}");
    session.cancel().await.expect("close");
    assert!(!marker.exists(), "replay started the upstream");

    // stub: the scenario's rules answer what was not recorded.
    let session = session_for("stub").await;
    let answer = call(&session, "lookup", json!({"id": "c-2"})).await;
    assert_eq!(text(&answer), "stubbed c-2");
    session.cancel().await.expect("close");
    assert!(!marker.exists(), "a stub miss started the upstream");

    // live: the upstream answers what was not recorded, and only then is
    // it started.
    let session = session_for("live").await;
    let hit = call(&session, "echo", json!({"message": "recorded"})).await;
    assert_eq!(text(&hit), "Echo: recorded");
    assert!(!marker.exists(), "a replayed call started the upstream");
    let answer = call(&session, "echo", json!({"message": "new"})).await;
    assert_eq!(text(&answer), "Echo: new");
    assert!(marker.exists(), "a live miss did not reach the upstream");
    session.cancel().await.expect("close");

    // Every miss is a divergence event in its run, whatever the policy.
    let run = newest_run(&dir.path().join("data-live"));
    let divergence = run["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "divergence")
        .unwrap_or_else(|| panic!("no divergence event: {run}"));
    assert_eq!(divergence["payload"]["policy"], "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_clear_errors_and_a_crashed_upstream_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An upstream that cannot start: serve says so and exits.
    let broken = write_scenario(
        dir.path(),
        "broken.yaml",
        r#"
version: 1
name: broken
upstreams:
  - name: ghost
    command: sandbar-test-no-such-command
"#,
    );
    let (code, _out, err) = cli(
        &dir.path().join("data0"),
        &["serve", broken.to_str().expect("path"), "--stdio"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ghost"), "{err}");
    assert!(err.contains("sandbar-test-no-such-command"), "{err}");

    // An upstream slower than its timeout: a tool error that says so, and
    // an error event in the run.
    let slow = write_scenario(
        dir.path(),
        "slow.yaml",
        &format!(
            r#"
version: 1
name: slow
upstreams:
  - name: everything
    command: node
    args: ["{everything}", stdio]
    timeout: 500ms
"#,
            everything = everything(),
        ),
    );
    let slow_data = dir.path().join("data-slow");
    let args = stdio_args("serve", &slow, &slow_data, &[]);
    with_timeout("the slow session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let started = std::time::Instant::now();
        let late = call(
            &session,
            "trigger-long-running-operation",
            json!({"duration": 5, "steps": 5}),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the timeout did not apply"
        );
        assert_eq!(late["isError"], true, "{late}");
        assert!(text(&late).contains("everything"), "{late}");
        // The sandbox keeps serving.
        let ok = call(&session, "echo", json!({"message": "still here"})).await;
        assert_eq!(text(&ok), "Echo: still here");
        session.cancel().await.expect("close");
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = newest_run(&slow_data);
    assert!(
        run["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "error"
                && e["payload"]["upstream"] == "everything"
                && e["payload"]["kind"] == "timeout"),
        "{run}"
    );

    // An upstream that dies mid-session: the call in flight gets a tool
    // error, and the next call starts it again.
    let pidfile = dir.path().join("upstream.pid");
    let scenario = write_scenario(
        dir.path(),
        "crash.yaml",
        &format!(
            r#"
version: 1
name: crash
upstreams:
  - name: everything
    command: sh
    args: ["-c", "echo $$ > '{pidfile}'; exec node '{everything}' stdio"]
    timeout: 20s
"#,
            pidfile = pidfile.display(),
            everything = everything(),
        ),
    );
    let args = stdio_args("serve", &scenario, &dir.path().join("data"), &[]);
    with_timeout("the crash session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let ok = call(&session, "echo", json!({"message": "before"})).await;
        assert_eq!(text(&ok), "Echo: before");
        let pid = std::fs::read_to_string(&pidfile)
            .expect("pid")
            .trim()
            .to_owned();
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let failed = call(&session, "echo", json!({"message": "during"})).await;
        // Either the dead connection is noticed on this call (a tool error
        // naming the upstream) or it was noticed before and this call
        // already runs on a new process.
        if failed["isError"] == true {
            assert!(text(&failed).contains("everything"), "{failed}");
        } else {
            assert_eq!(text(&failed), "Echo: during");
        }
        let again = call(&session, "echo", json!({"message": "after"})).await;
        assert_eq!(text(&again), "Echo: after");
        let new_pid = std::fs::read_to_string(&pidfile)
            .expect("pid")
            .trim()
            .to_owned();
        assert_ne!(pid, new_pid, "the upstream was not restarted");
        session.cancel().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_diff_shows_the_first_divergence_and_runs_round_trip_through_cassettes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = everything_scenario(dir.path(), "");
    let data = dir.path().join("data");
    for id in ["c-1", "c-2"] {
        let args = stdio_args("serve", &scenario, &data, &[]);
        with_timeout("a session", async {
            let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
            session.list_all_tools().await.expect("tools/list");
            call(&session, "echo", json!({"message": "same"})).await;
            call(&session, "lookup", json!({"id": id})).await;
            session.cancel().await.expect("close");
        })
        .await;
        // Let the server see the end of its stdin and end the run.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (code, out, err) = cli(&data, &["runs", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let runs: Value = serde_json::from_str(&out).expect("json");
    let newer = runs[0]["id"].as_str().expect("id").to_owned();
    let older = runs[1]["id"].as_str().expect("id").to_owned();

    let (code, out, err) = cli(&data, &["runs", "diff", &older, &newer]);
    assert_eq!(code, 1, "runs that differ exit 1: {out}{err}");
    assert!(out.contains("first divergence"), "{out}");
    assert!(out.contains("arguments.id"), "{out}");
    assert!(out.contains("c-1") && out.contains("c-2"), "{out}");
    let (code, out, _) = cli(&data, &["runs", "diff", &older, &newer, "--json"]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).expect("diff JSON");
    assert_eq!(report["identical"], false);
    let (code, out, err) = cli(&data, &["runs", "diff", &older, &older]);
    assert_eq!(code, 0, "{out}{err}");

    // A run exported as a cassette, imported back, is the same run.
    let exported = dir.path().join("older.jsonl");
    let (code, out, err) = cli(
        &data,
        &[
            "runs",
            "export",
            &older,
            "--format",
            "cassette",
            "-o",
            exported.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = cli(
        &data,
        &["runs", "diff", &older, exported.to_str().expect("path")],
    );
    assert_eq!(code, 0, "a run and its cassette are the same: {out}{err}");
    // The exported cassette serves what the agent saw, tools/list included.
    let replay_args = stdio_args("replay", &exported, &dir.path().join("replay-data"), &[]);
    with_timeout("replaying the export", async {
        let session = connect_command(&sandbar_path(), &replay_args, TestClient::default()).await;
        let tools = session.list_all_tools().await.expect("tools/list");
        assert!(tools.iter().any(|t| t.name == "lookup"), "{tools:?}");
        assert!(tools.iter().any(|t| t.name == "echo"), "{tools:?}");
        let answer = call(&session, "lookup", json!({"id": "c-1"})).await;
        assert_eq!(text(&answer), "stubbed c-1");
        session.cancel().await.expect("close");
    })
    .await;
    let (code, out, err) = cli(&data, &["runs", "show", exported.to_str().expect("path")]);
    assert_eq!(code, 0, "a cassette file shows as a run: {err}");
    assert!(
        out.contains("lookup") && out.contains("stubbed c-1"),
        "{out}"
    );
    let (code, out, err) = cli(&data, &["runs", "import", exported.to_str().expect("path")]);
    assert_eq!(code, 0, "{err}");
    let imported = out.trim().rsplit(' ').next().expect("id").to_owned();
    let (code, out, err) = cli(&data, &["runs", "show", &imported]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("lookup"), "{out}");
    let (code, out, err) = cli(&data, &["runs", "diff", &imported, &older]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_cassette_from_a_newer_sandbar_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cassette = dir.path().join("future.jsonl");
    std::fs::write(
        &cassette,
        "{\"format\":\"sandbar-cassette\",\"version\":\"2.0\",\"scenario\":{\"name\":\"x\",\"hash\":\"y\"},\"seed\":0,\"clock_start\":\"2026-01-01T00:00:00Z\",\"recorded_at\":\"2026-01-01T00:00:00Z\"}\n",
    )
    .expect("write");
    let (code, _out, err) = cli(
        &dir.path().join("data"),
        &["replay", cassette.to_str().expect("path"), "--stdio"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2.0") && err.contains("newer"), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port} after 30 s");
}

/// Calls the long-running tool with a progress token.
async fn progress_call(session: &Session, token: &str) -> Value {
    let mut request = rmcp::model::CallToolRequestParams::new("trigger-long-running-operation")
        .with_arguments(
            json!({"duration": 0.3, "steps": 3})
                .as_object()
                .cloned()
                .expect("object"),
        );
    request.set_progress_token(rmcp::model::ProgressToken(
        rmcp::model::NumberOrString::String(token.to_owned().into()),
    ));
    serde_json::to_value(session.call_tool(request).await.expect("call")).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_progress_passes_through_is_recorded_and_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = everything_scenario(dir.path(), "");
    let (args, cassettes) = recording_args(dir.path(), &scenario);
    let client = TestClient::default();
    let inbox = client.inbox.clone();
    let live = with_timeout("the live session", async {
        let session = connect_command(&sandbar_path(), &args, client).await;
        let result = progress_call(&session, "agent-token").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        session.cancel().await.expect("close");
        result
    })
    .await;
    // (rmcp's client puts a token of its own on every request, so the one
    // the client sees is whatever it sent, not necessarily the test's.)
    let progress = inbox.of("notifications/progress");
    assert_eq!(progress.len(), 3, "{progress:?}");
    let token = progress[0]["progressToken"].clone();
    assert!(!token.is_null(), "{progress:?}");
    assert!(
        progress.iter().all(|p| p["progressToken"] == token),
        "{progress:?}"
    );
    let steps: Vec<&Value> = progress.iter().map(|p| &p["progress"]).collect();
    assert_eq!(
        steps,
        [&json!(1.0), &json!(2.0), &json!(3.0)],
        "{progress:?}"
    );
    let recorded = std::fs::read_to_string(only_cassette(&cassettes)).expect("cassette");
    assert!(recorded.contains("notifications/progress"), "{recorded}");

    // Replayed, the client sees the same progress under its own token.
    let replay_args = stdio_args(
        "replay",
        &only_cassette(&cassettes),
        &dir.path().join("replay-data"),
        &[],
    );
    let client = TestClient::default();
    let inbox = client.inbox.clone();
    let replayed = with_timeout("the replayed session", async {
        let session = connect_command(&sandbar_path(), &replay_args, client).await;
        let result = progress_call(&session, "another-token").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        session.cancel().await.expect("close");
        result
    })
    .await;
    assert_eq!(live, replayed);
    let progress = inbox.of("notifications/progress");
    assert_eq!(progress.len(), 3, "{progress:?}");
    let token = progress[0]["progressToken"].clone();
    assert!(!token.is_null(), "{progress:?}");
    assert!(
        progress.iter().all(|p| p["progressToken"] == token),
        "{progress:?}"
    );
}

/// The questions a run's store says were put to the client, in order, as
/// `(method, params, answer)` with the answer's event kind and payload.
fn stored_questions(run: &Value) -> Vec<(String, Value, String, Value)> {
    let events = run["events"].as_array().expect("events");
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["kind"] == "request" && e["direction"] == "to_client")
        .map(|(i, e)| {
            let answer = events[i + 1..]
                .iter()
                .find(|a| a["direction"] == "to_server" && a["method"] == e["method"])
                .expect("an answer");
            (
                e["method"].as_str().unwrap_or("").to_owned(),
                e["payload"].clone(),
                answer["kind"].as_str().unwrap_or("").to_owned(),
                answer["payload"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_an_upstream_puts_to_the_client_are_recorded_and_put_again_on_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = everything_scenario(dir.path(), "");
    let (args, cassettes) = recording_args(dir.path(), &scenario);
    let declining = || TestClient {
        elicitation_reply: json!({"action": "decline"}),
        ..TestClient::default()
    };
    async fn ask_both(session: &Session) -> Vec<Value> {
        vec![
            call(
                session,
                "trigger-sampling-request",
                json!({"prompt": "which carrier ships order o1?", "maxTokens": 20}),
            )
            .await,
            call(session, "trigger-elicitation-request", json!({})).await,
        ]
    }
    let client = declining();
    let inbox = client.inbox.clone();
    let (live, live_frames) = with_timeout("the live session", async {
        let (session, frames) = connect_tapped(&sandbar_path(), &args, client).await;
        let answers = ask_both(&session).await;
        session.cancel().await.expect("close");
        (answers, frames)
    })
    .await;
    // The upstream asked the agent's client through Sandbar and used its
    // answers.
    assert!(
        text(&live[0]).contains("a reply from the model"),
        "{}",
        live[0]
    );
    assert!(text(&live[1]).contains("decline"), "{}", live[1]);
    let asked = inbox.of("sampling/createMessage");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(inbox.of("elicitation/create").len(), 1);
    // The cassette keeps each question where the client got it, with the
    // answer.
    let cassette = only_cassette(&cassettes);
    let recorded = sandbar_cassette::Cassette::load(&cassette).expect("the cassette loads");
    let questions: Vec<&sandbar_cassette::Notification> = recorded
        .interactions
        .iter()
        .flat_map(|i| i.notifications.iter().filter(|n| n.is_request()))
        .collect();
    assert_eq!(questions.len(), 2, "{questions:?}");
    assert_eq!(questions[0].method, "sampling/createMessage");
    assert!(
        questions[0]
            .params
            .to_string()
            .contains("which carrier ships order o1?"),
        "{:?}",
        questions[0]
    );
    assert!(
        questions[0]
            .answer
            .as_ref()
            .expect("answered")
            .to_json()
            .to_string()
            .contains("a reply from the model"),
        "{:?}",
        questions[0]
    );
    assert_eq!(questions[1].method, "elicitation/create");
    let live_run = newest_run(&dir.path().join("data"));
    let live_questions = stored_questions(&live_run);
    assert_eq!(live_questions.len(), 2, "{live_run}");

    // Replayed with no upstream and no network, the client is asked the
    // same questions in the same places, on the wire byte for byte.
    let replay_args = offline_replay_args(&cassette, &dir.path().join("replay-data"));
    let client = declining();
    let inbox = client.inbox.clone();
    let (replayed, replayed_frames) = with_timeout("the replayed session", async {
        let (session, frames) = connect_tapped("unshare", &replay_args, client).await;
        let answers = ask_both(&session).await;
        session.cancel().await.expect("close");
        (answers, frames)
    })
    .await;
    assert_eq!(live, replayed);
    assert_eq!(
        live_frames.all().join("\n"),
        replayed_frames.all().join("\n"),
        "the replay must send the recorded frames, questions included"
    );
    assert_eq!(inbox.of("sampling/createMessage"), asked);
    assert_eq!(inbox.of("elicitation/create").len(), 1);
    let replay_run = newest_run(&dir.path().join("replay-data"));
    assert_eq!(stored_questions(&replay_run), live_questions);

    // A stored run exports as the cassette it recorded, questions and
    // answers included.
    let export = dir.path().join("export.jsonl");
    let run_id = live_run["run"]["id"].as_str().expect("run id").to_owned();
    let (code, _, err) = cli(
        &dir.path().join("data"),
        &[
            "runs",
            "export",
            &run_id,
            "--format",
            "cassette",
            "-o",
            &export.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    // And the run and its cassette are the same, questions included.
    let (code, out, err) = cli(
        &dir.path().join("data"),
        &["runs", "diff", &run_id, &export.display().to_string()],
    );
    assert_eq!(code, 0, "{out}{err}");
    let exported = sandbar_cassette::Cassette::load(&export).expect("the export loads");
    let exported_questions: Vec<&sandbar_cassette::Notification> = exported
        .interactions
        .iter()
        .flat_map(|i| i.notifications.iter().filter(|n| n.is_request()))
        .collect();
    assert_eq!(exported_questions, questions);
}

/// A test client whose model answers `reply`.
fn model_saying(reply: &str) -> TestClient {
    TestClient {
        sampling_reply: reply.into(),
        ..TestClient::default()
    }
}

/// A stub that asks the client's model before it answers.
const ASKS_THE_MODEL: &str = r#"
version: 1
name: asks-the-model
seed: 1
clock: 2026-01-15T09:00:00Z
tools:
  - name: summarize
    input_schema: {type: object, properties: {topic: {type: string}}, required: [topic]}
    respond:
      - steps:
          - sample: {as: s, prompt: "Summarize {{ args.topic }}", max_tokens: 50}
        text: "summary: {{ answers.s.text }}"
"#;

/// The call of the `summarize` stub ([`ASKS_THE_MODEL`]).
async fn summarize(session: &Session) -> Value {
    call(session, "summarize", json!({"topic": "the release notes"})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stubs_question_is_replayed_and_the_recorded_answer_stands_whatever_the_client_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "scenario.yaml", ASKS_THE_MODEL);
    let (args, cassettes) = recording_args(dir.path(), &scenario);
    let live = with_timeout("the live session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let answer = summarize(&session).await;
        session.cancel().await.expect("close");
        answer
    })
    .await;
    assert_eq!(text(&live), "summary: a reply from the model");

    // The replaying client's model says something else: it is asked the
    // same question, its answer is recorded, and the call gets what the
    // recording says.
    let replay_args = stdio_args(
        "replay",
        &only_cassette(&cassettes),
        &dir.path().join("replay-data"),
        &[],
    );
    let client = model_saying("another reply");
    let inbox = client.inbox.clone();
    let replayed = with_timeout("the replayed session", async {
        let session = connect_command(&sandbar_path(), &replay_args, client).await;
        let answer = summarize(&session).await;
        session.cancel().await.expect("close");
        answer
    })
    .await;
    assert_eq!(live, replayed);
    let asked = inbox.of("sampling/createMessage");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].to_string().contains("Summarize the release notes"),
        "{asked:?}"
    );
    let questions = stored_questions(&newest_run(&dir.path().join("replay-data")));
    assert_eq!(questions.len(), 1, "{questions:?}");
    assert_eq!(questions[0].0, "sampling/createMessage");
    assert_eq!(questions[0].2, "response");
    assert!(
        questions[0].3.to_string().contains("another reply"),
        "{questions:?}"
    );

    // Over Streamable HTTP, the question goes to the client on the call's
    // stream just the same.
    let server = Server::start_command(
        "replay",
        only_cassette(&cassettes).to_str().expect("path"),
        &dir.path().join("http-data"),
        &[],
    );
    let client = model_saying("a third reply");
    let inbox = client.inbox.clone();
    let over_http = with_timeout("the replay over HTTP", async {
        let session = connect_http(&server.url, client).await;
        let answer = summarize(&session).await;
        session.cancel().await.expect("close");
        answer
    })
    .await;
    server.stop();
    assert_eq!(over_http, live);
    assert_eq!(inbox.of("sampling/createMessage"), asked);
    let questions = stored_questions(&newest_run(&dir.path().join("http-data")));
    assert!(
        questions.len() == 1 && questions[0].3.to_string().contains("a third reply"),
        "{questions:?}"
    );

    // A client that declared no sampling is not asked, as the recorded
    // server would not have asked it; the call still gets its answer.
    let bare_args = stdio_args(
        "replay",
        &only_cassette(&cassettes),
        &dir.path().join("bare-data"),
        &[],
    );
    let unasked = with_timeout("the replay to a client that cannot be asked", async {
        use rmcp::ServiceExt as _;
        // A client with no capability at all (not the test client's).
        let session = ()
            .serve(
                rmcp::transport::TokioChildProcess::new(stdio_command(&sandbar_path(), &bare_args))
                    .expect("spawn sandbar replay"),
            )
            .await
            .expect("connect");
        let answer = session
            .call_tool(
                rmcp::model::CallToolRequestParams::new("summarize").with_arguments(
                    json!({"topic": "the release notes"})
                        .as_object()
                        .cloned()
                        .expect("object"),
                ),
            )
            .await
            .expect("the call is answered");
        session.cancel().await.expect("close");
        serde_json::to_value(answer).expect("json")
    })
    .await;
    assert_eq!(unasked, live);
    assert_eq!(
        stored_questions(&newest_run(&dir.path().join("bare-data"))),
        []
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_names_follow_the_prefixing_rule_and_can_be_hidden_or_renamed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let everything = everything();
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: two-upstreams
upstreams:
  - name: left
    command: node
    args: ["{everything}", stdio]
    hide: ["trigger-*", "get-env"]
    rename: {{get-sum: add}}
  - name: right
    command: node
    args: ["{everything}", stdio]
    prefix: "r_"
tools:
  - name: get-tiny-image
    respond:
      - text: "declared tools keep their names"
"#
        ),
    );
    let data = dir.path().join("data");
    let args = stdio_args("serve", &scenario, &data, &[]);
    with_timeout("the session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let names: Vec<String> = session
            .list_all_tools()
            .await
            .expect("tools/list")
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        let has = |n: &str| names.iter().any(|x| x == n);
        // Unique names stay as they are; renames and prefixes apply.
        assert!(
            has("echo") && has("add") && has("r_echo") && has("r_get-sum"),
            "{names:?}"
        );
        // Hidden tools are not offered.
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("trigger-") || n == "get-env"),
            "{names:?}"
        );
        assert!(has("r_trigger-long-running-operation"), "{names:?}");
        // A name taken by a declared tool: the upstream's copy is prefixed
        // with its upstream's name; the declared one keeps its name.
        assert!(
            has("left__get-tiny-image") && has("get-tiny-image"),
            "{names:?}"
        );
        assert!(!has("get-sum"), "{names:?}");
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "names must be unambiguous: {names:?}"
        );

        assert_eq!(
            text(&call(&session, "add", json!({"a": 1, "b": 2})).await),
            "The sum of 1 and 2 is 3."
        );
        assert_eq!(
            text(&call(&session, "r_echo", json!({"message": "x"})).await),
            "Echo: x"
        );
        assert_eq!(
            text(&call(&session, "get-tiny-image", json!({})).await),
            "declared tools keep their names"
        );
        let theirs = call(&session, "left__get-tiny-image", json!({})).await;
        assert_eq!(theirs["content"][1]["type"], "image", "{theirs}");
        session.cancel().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_rules_and_strict_order_decide_what_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cassette = record_lookups(dir.path()).await;
    let scenario_for = |name: &str, replay: &str| {
        write_scenario(
            dir.path(),
            &format!("{name}.yaml"),
            &format!(
                r#"
version: 1
name: everything-behind-sandbar
mode: replay
upstreams:
  - name: everything
    command: sandbar-test-never-started
replay:
  cassette: "{cassette}"
{replay}
tools:
  - name: lookup
    input_schema: {{type: object}}
    match: {{regex: {{id: "^c-[0-9]+$"}}}}
"#,
                cassette = cassette.display(),
            ),
        )
    };
    let connect = |scenario: PathBuf, data: PathBuf| async move {
        let args = stdio_args("serve", &scenario, &data, &[]);
        connect_command(&sandbar_path(), &args, TestClient::default()).await
    };

    // Ignored paths and per-tool regex matchers.
    let scenario = scenario_for("loose", "  match: {ignore: [message]}");
    with_timeout("the loose session", async {
        let session = connect(scenario, dir.path().join("d1")).await;
        let any_message = call(&session, "echo", json!({"message": "anything at all"})).await;
        assert_eq!(text(&any_message), "Echo: recorded", "{any_message}");
        let like_id = call(&session, "lookup", json!({"id": "c-9"})).await;
        assert_eq!(text(&like_id), "stubbed c-1", "{like_id}");
        let unlike = call(&session, "lookup", json!({"id": "other"})).await;
        assert_eq!(unlike["isError"], true, "{unlike}");
        session.cancel().await.expect("close");
    })
    .await;

    // Strict order: the recorded calls in another order diverge.
    let scenario = scenario_for("strict", "  strict_order: true");
    with_timeout("the strict session", async {
        let session = connect(scenario, dir.path().join("d2")).await;
        let first = call(&session, "echo", json!({"message": "recorded"})).await;
        assert_eq!(first["isError"], true, "{first}");
        assert!(
            text(&first).contains("lookup"),
            "the report names the expected call: {first}"
        );
        session.cancel().await.expect("close");
    })
    .await;
    let scenario = scenario_for("strict-ok", "  strict_order: true");
    with_timeout("the strict session in order", async {
        let session = connect(scenario, dir.path().join("d3")).await;
        assert_eq!(
            text(&call(&session, "lookup", json!({"id": "c-1"})).await),
            "stubbed c-1"
        );
        assert_eq!(
            text(&call(&session, "echo", json!({"message": "recorded"})).await),
            "Echo: recorded"
        );
        session.cancel().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_a_cassette_and_replay_still_matches_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "sk-sandbar-cassette-canary-7f3a9c";
    let scenario = everything_scenario(dir.path(), &format!("secrets:\n  api_key: \"{secret}\""));
    let (args, cassettes) = recording_args(dir.path(), &scenario);
    let live = with_timeout("the live session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        // The upstream echoes the secret back: it is in the request and
        // in the response.
        let result = call(
            &session,
            "echo",
            json!({"message": format!("key={secret}")}),
        )
        .await;
        session.cancel().await.expect("close");
        result
    })
    .await;
    // The upstream's answer is redacted before the agent sees it: an
    // agent never holds a secret, even one an upstream hands back.
    assert_eq!(text(&live), "Echo: key=[REDACTED:secret:api_key]");
    let cassette = only_cassette(&cassettes);
    let bytes = std::fs::read(&cassette).expect("cassette");
    let encoded = [
        secret.to_owned(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret),
    ];
    for form in &encoded {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(form.as_str()),
            "the cassette holds a secret"
        );
    }
    assert!(String::from_utf8_lossy(&bytes).contains("[REDACTED:secret:api_key]"));

    // Replayed with the same scenario (so the same secret is known), the
    // same call matches its redacted recording.
    let replay_scenario = everything_scenario(
        dir.path(),
        &format!(
            "secrets:\n  api_key: \"{secret}\"\nmode: replay\nreplay:\n  cassette: \"{}\"",
            cassette.display()
        ),
    );
    let args = stdio_args("serve", &replay_scenario, &dir.path().join("data2"), &[]);
    with_timeout("the replayed session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let result = call(
            &session,
            "echo",
            json!({"message": format!("key={secret}")}),
        )
        .await;
        assert_eq!(result["isError"], Value::Null, "{result}");
        assert_eq!(
            result, live,
            "replay gives the agent what it was given live"
        );
        session.cancel().await.expect("close");
    })
    .await;
}

/// `sandbar replay` knows no scenario, so no scenario secret: a value the
/// recording redacted by its name (`[REDACTED:secret:NAME]`) is redacted
/// there by a detector (`[REDACTED:token]`), and the call still matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_carrying_a_scenario_secret_matches_on_a_replay_without_the_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "st_live_0123456789abcdefSECRET";
    let scenario = everything_scenario(
        dir.path(),
        &format!("secrets:\n  search_token: \"{secret}\""),
    );
    let (args, cassettes) = recording_args(dir.path(), &scenario);
    let message = json!({"message": format!("my token is {secret} ok")});
    let live = with_timeout("the live session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let result = call(&session, "echo", message.clone()).await;
        session.cancel().await.expect("close");
        result
    })
    .await;
    assert_eq!(
        text(&live),
        "Echo: my token is [REDACTED:secret:search_token] ok"
    );
    let cassette = only_cassette(&cassettes);

    let args = stdio_args("replay", &cassette, &dir.path().join("replay-data"), &[]);
    with_timeout("the replay", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let result = call(&session, "echo", message.clone()).await;
        assert_eq!(result["isError"], Value::Null, "{result}");
        assert_eq!(
            result, live,
            "replay gives the agent what it was given live"
        );
        // Another value where the secret was is another call.
        let other = call(&session, "echo", json!({"message": "my token is none ok"})).await;
        assert_eq!(other["isError"], Value::Bool(true), "{other}");
        session.cancel().await.expect("close");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_change_upstream_reaches_the_agent_after_the_offer_has_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = repo().join("crates/cli/tests/servers/growing.cjs");
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: growing
upstreams:
  - name: growing
    command: node
    args: ["{}"]
"#,
            server.display()
        ),
    );
    let args = stdio_args("serve", &scenario, &dir.path().join("data"), &[]);
    let client = TestClient::default();
    with_timeout("the session", async {
        let session = connect_command(&sandbar_path(), &args, client).await;
        let names = |tools: Vec<rmcp::model::Tool>| -> Vec<String> {
            tools.into_iter().map(|t| t.name.to_string()).collect()
        };
        let info = session.peer_info().expect("server info");
        assert_eq!(
            info.capabilities
                .tools
                .as_ref()
                .and_then(|t| t.list_changed),
            Some(true)
        );
        assert_eq!(
            names(session.list_all_tools().await.expect("list")),
            ["grow"]
        );
        assert_eq!(
            text(&call(&session, "grow", json!({})).await),
            "now 1 grown"
        );
        // Listing again right after the change shows the new tool.
        assert_eq!(
            names(session.list_all_tools().await.expect("list")),
            ["grow", "grown-1"]
        );
        assert_eq!(text(&call(&session, "grown-1", json!({})).await), "grown 1");
        session.cancel().await.expect("close");
    })
    .await;
    let run = newest_run(&dir.path().join("data"));
    let events = run["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["method"] == "notifications/tools/list_changed"),
        "{run}"
    );
    assert!(
        events.iter().any(|e| e["method"] == "upstream/catalog"),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cancelling_a_forwarded_call_cancels_it_upstream() {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use rmcp::service::PeerRequestOptions;

    let dir = tempfile::tempdir().expect("tempdir");
    let script = repo().join("crates/upstream/tests/scripted_server.cjs");
    let received = dir.path().join("received.jsonl");
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: cancelling
upstreams:
  - name: scripted
    command: node
    args: ["{}"]
    env: {{RECORD: "{}"}}
"#,
            script.display(),
            received.display()
        ),
    );
    let data = dir.path().join("data");
    let args = stdio_args("serve", &scenario, &data, &[]);
    with_timeout("the session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new("hang"),
        ));
        let handle = session
            .peer()
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
            .expect("send");
        // Wait until the call has reached the upstream, then give up on it.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&received)
            .unwrap_or_default()
            .contains("\"hang\"")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the call never reached the upstream"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle
            .cancel(Some("the user gave up".into()))
            .await
            .expect("cancel");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&received)
            .unwrap_or_default()
            .contains("notifications/cancelled")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the upstream was not told: {}",
                std::fs::read_to_string(&received).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The session and the upstream connection go on: the scripted
        // server answers the next call itself.
        let after = call(&session, "a", json!({})).await;
        assert_eq!(text(&after), "no tool a", "{after}");
        session.cancel().await.expect("close");
    })
    .await;
}

/// Sends `tools/call hang` and returns its handle once `reached` says the
/// call got where it was going.
async fn send_hang(
    session: &Session,
    reached: impl Fn() -> bool,
) -> rmcp::service::RequestHandle<rmcp::RoleClient> {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use rmcp::service::PeerRequestOptions;

    let request =
        ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new("hang")));
    let handle = session
        .peer()
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
        .expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !reached() {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never got there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle
}

/// Whether a frame answers the request with this id.
fn answers(frame: &str, id: &rmcp::model::RequestId) -> bool {
    let message: Value = serde_json::from_str(frame).expect("a JSON frame");
    message.get("method").is_none()
        && message.get("id") == Some(&serde_json::to_value(id).expect("id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_is_recorded_as_cancelled_and_replayed_unanswered_until_cancelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = repo().join("crates/upstream/tests/scripted_server.cjs");
    let received = dir.path().join("received.jsonl");
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: cancelling
upstreams:
  - name: scripted
    command: node
    args: ["{}"]
    env: {{RECORD: "{}"}}
"#,
            script.display(),
            received.display()
        ),
    );
    let (args, cassettes) = recording_args(dir.path(), &scenario);
    let upstream_got = |what: &str| {
        std::fs::read_to_string(&received)
            .unwrap_or_default()
            .contains(what)
    };
    let live_frames = with_timeout("the live session", async {
        let (session, frames) = connect_tapped(&sandbar_path(), &args, TestClient::default()).await;
        let handle = send_hang(&session, || upstream_got("\"hang\"")).await;
        let id = handle.id.clone();
        handle
            .cancel(Some("the user gave up".into()))
            .await
            .expect("cancel");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !upstream_got("notifications/cancelled") {
            assert!(
                std::time::Instant::now() < deadline,
                "the upstream was not told"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let after = call(&session, "a", json!({})).await;
        assert_eq!(text(&after), "no tool a", "{after}");
        session.cancel().await.expect("close");
        let frames = frames.all();
        assert!(!frames.iter().any(|f| answers(f, &id)), "{frames:#?}");
        frames
    })
    .await;

    // The cassette says the call was cancelled, not that the agent was
    // answered.
    let cassette = only_cassette(&cassettes);
    let lines: Vec<Value> = std::fs::read_to_string(&cassette)
        .expect("cassette")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let hang = lines
        .iter()
        .find(|l| l["params"]["name"] == "hang")
        .expect("the cancelled call is recorded");
    assert_eq!(hang["outcome"]["cancelled"], true, "{hang}");
    assert_eq!(hang["outcome"]["error"]["code"], -32800, "{hang}");
    assert!(hang["outcome"].get("result").is_none(), "{hang}");

    // Replayed, the call is not answered until the client cancels it, and
    // then not at all; the session goes on.
    let replay_args = stdio_args("replay", &cassette, &dir.path().join("replay-data"), &[]);
    let replay_frames = with_timeout("the replayed session", async {
        let (session, frames) =
            connect_tapped(&sandbar_path(), &replay_args, TestClient::default()).await;
        let handle = send_hang(&session, || true).await;
        let id = handle.id.clone();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !frames.all().iter().any(|f| answers(f, &id)),
            "a cancelled recording was answered: {:#?}",
            frames.all()
        );
        handle
            .cancel(Some("the user gave up".into()))
            .await
            .expect("cancel");
        let after = call(&session, "a", json!({})).await;
        assert_eq!(text(&after), "no tool a", "{after}");
        session.cancel().await.expect("close");
        let frames = frames.all();
        assert!(!frames.iter().any(|f| answers(f, &id)), "{frames:#?}");
        frames
    })
    .await;
    assert_eq!(live_frames, replay_frames);
    // The replayed run records the client's cancel and the call ending
    // cancelled, as the recorded one did. (Which of the two comes first is
    // not fixed: the SDK hands the cancel to the call and to the handler
    // that records it on tasks of their own.)
    let run = newest_run(&dir.path().join("replay-data"));
    let events = run["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["method"] == "notifications/cancelled" && e["direction"] == "to_server"),
        "{run}"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "error"
            && e["method"] == "tools/call"
            && e["payload"]["error"]["code"] == -32800),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_mode_keeps_only_the_recorded_items_in_the_runs_cassette() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = everything_scenario(dir.path(), "    mode: record");
    let data = dir.path().join("data");
    let args = stdio_args("serve", &scenario, &data, &[]);
    with_timeout("the session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        session.list_all_tools().await.expect("list");
        call(&session, "lookup", json!({"id": "c-1"})).await;
        call(&session, "echo", json!({"message": "kept"})).await;
        session.cancel().await.expect("close");
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Without --record, the cassette goes under the data directory.
    let cassette = only_cassette(&data.join("cassettes"));
    let lines: Vec<Value> = std::fs::read_to_string(&cassette)
        .expect("cassette")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "a header and the one recorded call: {lines:?}"
    );
    assert_eq!(lines[1]["params"]["name"], "echo");
    assert_eq!(lines[1]["upstream"], "everything");
}

/// POSTs one JSON-RPC message in a session; returns the status, the
/// content type, the session id it names and the body.
async fn post_rpc(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    message: Value,
) -> (u16, String, Option<String>, String) {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(message.to_string());
    if let Some(id) = session {
        request = request.header("mcp-session-id", id);
    }
    let response = request.send().await.expect("POST");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let session = header("mcp-session-id");
    let status = response.status().as_u16();
    (
        status,
        content_type,
        session,
        response.text().await.expect("body"),
    )
}

/// Opens a session over raw HTTP as a client that declares no capability
/// (nothing a server could ask it); returns its id.
async fn plain_session(http: &reqwest::Client, url: &str) -> String {
    raw_session(http, url, json!({})).await
}

/// Opens a session over raw HTTP as a client that declares `capabilities`;
/// returns its id.
async fn raw_session(http: &reqwest::Client, url: &str, capabilities: Value) -> String {
    let (status, _, session, body) = post_rpc(
        http,
        url,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": capabilities,
            "clientInfo": {"name": "raw", "version": "1"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = session.unwrap_or_else(|| panic!("no session: {body}"));
    let (status, _, _, _) = post_rpc(
        http,
        url,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_calls_of_a_client_that_cannot_be_asked_are_answered_in_one_piece_or_streamed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = everything_scenario(dir.path(), "");
    let server = Server::start(&scenario, &dir.path().join("data"), &[]);
    let http = reqwest::Client::new();
    // A client that declares no sampling, elicitation or roots.
    let session = plain_session(&http, &server.url).await;

    // The first call opens the run's upstream session, whose server says
    // its tool list changed: that notification comes first, so the answer
    // is a stream.
    let (status, content_type, _, body) = post_rpc(
        &http,
        &server.url,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"message": "first"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    if content_type.starts_with("text/event-stream") {
        assert!(body.contains("list_changed"), "{body}");
        assert!(body.contains("Echo: first"), "{body}");
    }

    // The upstream answers at once: one JSON body.
    let (status, content_type, _, body) = post_rpc(
        &http,
        &server.url,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"message": "in one piece"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {body}"
    );
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["id"], 2);
    assert_eq!(text(&answer["result"]), "Echo: in one piece");

    // The upstream reports progress first: an event stream, the progress
    // (under the client's own token) in order, then the answer.
    let (status, content_type, _, body) = post_rpc(
        &http,
        &server.url,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": "p-1", "method": "tools/call",
               "params": {"name": "trigger-long-running-operation",
                          "arguments": {"duration": 0.3, "steps": 3},
                          "_meta": {"progressToken": "mine"}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    // (The priming event, first, carries no message.)
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| !d.is_empty())
        .map(|d| serde_json::from_str(d).expect("event JSON"))
        .collect();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{body}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "mine")
    );
    let last = messages.last().expect("messages");
    assert_eq!(last["id"], "p-1", "{body}");
    assert!(
        text(&last["result"]).contains("Long running operation completed"),
        "{body}"
    );

    // The run holds both calls like any other.
    let run = newest_run(&dir.path().join("data"));
    let shown = run.to_string();
    assert!(shown.contains("in one piece"), "{shown}");
    assert!(shown.contains("notifications/progress"), "{shown}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_call_answered_in_one_piece_cancels_it_upstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = repo().join("crates/upstream/tests/scripted_server.cjs");
    let received = dir.path().join("received.jsonl");
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: cancelling-over-http
upstreams:
  - name: scripted
    command: node
    args: ["{}"]
    env: {{RECORD: "{}"}}
"#,
            script.display(),
            received.display()
        ),
    );
    let server = Server::start(&scenario, &dir.path().join("data"), &[]);
    let http = reqwest::Client::new();
    let session = plain_session(&http, &server.url).await;
    let hanging = {
        let (http, url, session) = (http.clone(), server.url.clone(), session.clone());
        tokio::spawn(async move {
            post_rpc(
                &http,
                &url,
                Some(&session),
                json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "hang", "arguments": {}}}),
            )
            .await
        })
    };
    with_timeout("the call reaching the upstream", async {
        while !std::fs::read_to_string(&received)
            .unwrap_or_default()
            .contains("\"hang\"")
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (status, _, _, _) = post_rpc(
        &http,
        &server.url,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": 7, "reason": "the user gave up"}}),
    )
    .await;
    assert_eq!(status, 202);
    with_timeout("the upstream being told", async {
        while !std::fs::read_to_string(&received)
            .unwrap_or_default()
            .contains("notifications/cancelled")
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // The cancelled call's response ends rather than hanging.
    let (status, content_type, _, body) = with_timeout("the cancelled call's response", hanging)
        .await
        .expect("task");
    assert_eq!(status, 200, "{body}");
    // It was answered in one piece (the SDK's path would have streamed it).
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {body}"
    );
    drop(server);
}

/// Opens a session over raw HTTP as a client that declares sampling and
/// elicitation; returns its id.
async fn asking_session(http: &reqwest::Client, url: &str) -> String {
    raw_session(http, url, json!({"sampling": {}, "elicitation": {}})).await
}

/// POSTs `message` and reads its answer as it comes: every message of an
/// event stream (or the one JSON body), as the bytes sent. A question put
/// to the client on the stream is answered at once with a POST of the
/// response `reply(question)` gives (`{"result": …}` or `{"error": …}`),
/// which the server must accept (202).
async fn call_answering(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    message: Value,
    reply: impl Fn(&Value) -> Value,
) -> Vec<String> {
    let mut response = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", session)
        .body(message.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let streamed = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut messages = Vec::new();
    let mut buffer = String::new();
    while let Some(chunk) = response.chunk().await.expect("read the answer") {
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        if !streamed {
            continue;
        }
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            // (A priming event, SEP-1699, carries no message.)
            for data in event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .filter(|d| !d.is_empty())
            {
                let parsed: Value = serde_json::from_str(data).expect("event JSON");
                if parsed.get("method").is_some() && parsed.get("id").is_some() {
                    let mut answer = reply(&parsed);
                    answer["jsonrpc"] = json!("2.0");
                    answer["id"] = parsed["id"].clone();
                    let (status, _, _, body) = post_rpc(http, url, Some(session), answer).await;
                    assert_eq!(status, 202, "the answer to {data}: {body}");
                }
                messages.push(data.to_owned());
            }
        }
    }
    if !streamed {
        messages.push(buffer);
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_client_that_can_be_asked_gets_a_calls_messages_on_its_stream_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = everything_scenario(dir.path(), "");
    let cassettes = dir.path().join("cassettes");
    let http = reqwest::Client::new();
    // The model's reply, and the person declining to answer the form.
    let reply = |question: &Value| match question["method"].as_str() {
        Some("sampling/createMessage") => {
            json!({"result": {"role": "assistant", "model": "test-model",
            "content": {"type": "text", "text": "a reply over HTTP"}, "stopReason": "endTurn"}})
        }
        _ => json!({"result": {"action": "decline"}}),
    };
    let calls = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "trigger-long-running-operation",
                          "arguments": {"duration": 0.3, "steps": 3},
                          "_meta": {"progressToken": "mine"}}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "trigger-sampling-request",
                          "arguments": {"prompt": "which carrier ships order o1?", "maxTokens": 20}}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "trigger-elicitation-request", "arguments": {}}}),
    ];
    async fn session_of(
        http: &reqwest::Client,
        url: &str,
        calls: &[Value],
        reply: &(dyn Fn(&Value) -> Value + Sync),
    ) -> Vec<Vec<String>> {
        let session = asking_session(http, url).await;
        let mut out = Vec::new();
        for message in calls {
            out.push(call_answering(http, url, &session, message.clone(), reply).await);
        }
        let closed = http
            .delete(url)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
            .send()
            .await
            .expect("DELETE");
        assert!(closed.status().is_success(), "{}", closed.status());
        out
    }

    let server = Server::start(
        &scenario,
        &dir.path().join("data"),
        &["--record", cassettes.to_str().expect("path")],
    );
    let live = with_timeout(
        "the live session",
        session_of(&http, &server.url, &calls, &reply),
    )
    .await;
    server.stop();

    // Progress reaches the client on the call's own stream as the upstream
    // sent it: whole numbers stay whole.
    let progress: Vec<Value> = live[0]
        .iter()
        .map(|m| serde_json::from_str::<Value>(m).expect("JSON"))
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", live[0]);
    for (step, p) in progress.iter().enumerate() {
        assert_eq!(p["params"]["progressToken"], "mine", "{p}");
        assert_eq!(
            p["params"]["progress"].as_u64(),
            Some(step as u64 + 1),
            "{p}"
        );
    }
    assert!(
        live[0].iter().all(|m| !m.contains("\"progress\":1.0")),
        "{:?}",
        live[0]
    );
    // The questions came on their calls' streams, and the upstream used the
    // answers the client POSTed.
    let question = |messages: &[String]| -> Value {
        messages
            .iter()
            .map(|m| serde_json::from_str::<Value>(m).expect("JSON"))
            .find(|m| m.get("method").is_some() && m.get("id").is_some())
            .unwrap_or_else(|| panic!("no question in {messages:?}"))
    };
    assert_eq!(question(&live[1])["method"], "sampling/createMessage");
    assert_eq!(question(&live[2])["method"], "elicitation/create");
    let last = |messages: &[String]| -> Value {
        serde_json::from_str(messages.last().expect("an answer")).expect("JSON")
    };
    assert_eq!(last(&live[1])["id"], 2);
    assert!(
        text(&last(&live[1])["result"]).contains("a reply over HTTP"),
        "{:?}",
        live[1]
    );
    assert!(
        text(&last(&live[2])["result"]).contains("decline"),
        "{:?}",
        live[2]
    );

    // Replayed with the upstream gone, the same client gets the same
    // messages, byte for byte, and is asked the same questions.
    let cassette = only_cassette(&cassettes);
    let server = Server::start_command(
        "replay",
        cassette.to_str().expect("path"),
        &dir.path().join("replay-data"),
        &[],
    );
    let replayed = with_timeout(
        "the replayed session",
        session_of(&http, &server.url, &calls, &reply),
    )
    .await;
    server.stop();
    assert_eq!(live, replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_over_http_refused_or_left_unanswered_never_holds_the_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "scenario.yaml", ASKS_THE_MODEL);
    let data = dir.path().join("data");
    let server = Server::start(&scenario, &data, &[]);
    let http = reqwest::Client::new();
    let summarize = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "summarize", "arguments": {"topic": "the notes"}}})
    };

    // The client refuses to sample: the call ends, and says why.
    let session = asking_session(&http, &server.url).await;
    let refused = with_timeout(
        "the refused question",
        call_answering(
            &http,
            &server.url,
            &session,
            summarize(1),
            |_| json!({"error": {"code": -1, "message": "the user said no"}}),
        ),
    )
    .await;
    let answer: Value = serde_json::from_str(refused.last().expect("an answer")).expect("JSON");
    assert_eq!(answer["id"], 1, "{refused:?}");
    assert!(answer.to_string().contains("the user said no"), "{answer}");

    // An answer to a question nobody asked is not taken for one.
    let (status, _, _, _) = post_rpc(
        &http,
        &server.url,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": "sandbar-41", "result": {}}),
    )
    .await;
    assert_ne!(status, 500);

    // The client goes away with the question open: the call ends with the
    // session, and the run keeps it as cancelled.
    let mut response = http
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", &session)
        .body(summarize(2).to_string())
        .send()
        .await
        .expect("POST");
    let mut seen = String::new();
    with_timeout("the question", async {
        while !seen.contains("sampling/createMessage") {
            let chunk = response.chunk().await.expect("read").expect("more");
            seen.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    })
    .await;
    let closed = http
        .delete(&server.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .expect("DELETE");
    assert!(closed.status().is_success(), "{}", closed.status());
    with_timeout("the call's stream to end", async {
        while let Some(chunk) = response.chunk().await.ok().flatten() {
            seen.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    })
    .await;
    server.stop();
    let run = newest_run(&data);
    let ends: Vec<&Value> = run["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["method"] == "tools/call" && e["direction"] == "to_client")
        .collect();
    assert_eq!(ends.len(), 2, "both calls end in the run: {run}");
    assert_eq!(ends[1]["kind"], "error", "{run}");
    assert_eq!(ends[1]["payload"]["error"]["code"], -32800, "{run}");
    // And the run's end comes after it.
    let last = run["events"]
        .as_array()
        .and_then(|e| e.last())
        .expect("events");
    assert_eq!(last["method"], "run/end", "{run}");
}
