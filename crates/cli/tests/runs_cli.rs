//! `sandbar runs` and the cassettes around it, end to end: every `runs`
//! subcommand on a fresh data directory (import creates the store, the
//! others create nothing), run diffs as a tool reads them, a run exported
//! as a cassette that is the cassette recorded live and replays through a
//! replay-mode scenario, `validate` checking the cassette a scenario
//! replays, and a `record`-mode server saying where its cassettes went.

mod common;

use std::path::{Path, PathBuf};
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

/// A hand-written cassette: one call answered by upstream `everything`
/// (whose catalog the header holds) and one stubbed call, whose answer
/// text is `answer`.
fn hand_cassette(dir: &Path, name: &str, answer: &str) -> PathBuf {
    let header = json!({
        "format": "sandbar-cassette",
        "version": "1.3",
        "scenario": {"name": "hand", "hash": "ab".repeat(32)},
        "seed": 3,
        "clock_start": "2026-01-15T09:00:00Z",
        "recorded_at": "2026-01-16T10:00:00Z",
        "run_id": "run_hand",
        "server": {
            "info": {"name": "hand", "version": "2.0.0", "instructions": null},
            "listings": {"tools": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}},
        },
        "upstreams": {"everything": {
            "tools": [{"name": "echo", "inputSchema": {"type": "object"}}],
            "resources": [],
            "resource_templates": [{"uriTemplate": "demo://{id}", "name": "demo"}],
            "prompts": [],
        }},
    });
    let lines = [
        header,
        json!({
            "seq": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}},
            "upstream": "everything",
            "virtual_time": "2026-01-15T09:00:01Z",
            "notifications": [{"method": "notifications/message", "params": {"level": "info", "data": "echoing"}}],
            "outcome": {"result": {"content": [{"type": "text", "text": "Echo: hi"}]}},
        }),
        json!({
            "seq": 2,
            "method": "tools/call",
            "params": {"name": "lookup", "arguments": {"id": "c-1"}},
            "virtual_time": "2026-01-15T09:00:02Z",
            "outcome": {"result": {"content": [{"type": "text", "text": answer}]}},
        }),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write cassette");
    path
}

/// The lines of a cassette file as JSON.
fn cassette_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn runs_commands_on_a_fresh_data_directory_create_nothing_but_import_creates_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("fresh");
    let a = hand_cassette(dir.path(), "a.jsonl", "stubbed c-1");
    let missing = dir.path().join("missing.jsonl");

    let (code, out, err) = cli(&data, &["runs", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no runs recorded"), "{out}");
    let (code, out, _) = cli(&data, &["runs", "list", "--json"]);
    assert_eq!((code, out.trim()), (0, "[]"));
    let (code, _, err) = cli(&data, &["runs", "show", "run_nothing"]);
    assert_eq!(code, 1);
    assert!(err.contains("no run matches `run_nothing`"), "{err}");
    let (code, _, err) = cli(&data, &["runs", "show", path_str(&missing)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("missing.jsonl") && err.contains("does not exist"),
        "{err}"
    );
    let (code, _, err) = cli(&data, &["runs", "export", "run_nothing"]);
    assert_eq!(code, 1);
    assert!(err.contains("no run matches"), "{err}");
    let (code, _, err) = cli(
        &data,
        &["runs", "export", "run_nothing", "--format", "cassette"],
    );
    assert_eq!(
        code, 2,
        "a cassette export without --output is a usage error: {err}"
    );
    let (code, out, err) = cli(&data, &["runs", "show", path_str(&a)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Echo: hi"), "{out}");

    // A diff of two files needs no store; a missing file is named as such.
    let (code, out, err) = cli(&data, &["runs", "diff", path_str(&a), path_str(&a)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with('\n'), "the text ends its last line: {out:?}");
    assert!(out.contains("identical (2 interactions)"), "{out}");
    let (code, out, err) = cli(&data, &["runs", "diff", path_str(&a), path_str(&missing)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("missing.jsonl") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains("no runs recorded"), "{err}");
    let (code, _, err) = cli(&data, &["runs", "diff", path_str(&a), "run_nothing"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("`run_nothing` is neither a cassette file nor a recorded run"),
        "{err}"
    );
    assert!(
        !data.exists(),
        "read-only commands wrote to the data directory: {:?}",
        std::fs::read_dir(&data).map(|d| d.count())
    );

    // Importing a cassette into a fresh directory creates the store; the
    // imported run exports as the cassette it came from.
    let (code, out, err) = cli(&data, &["runs", "import", path_str(&a)]);
    assert_eq!(code, 0, "{out}{err}");
    let id = out
        .trim()
        .rsplit(' ')
        .next()
        .expect("the run id")
        .to_owned();
    assert!(id.starts_with("run_"), "{out}");
    let (code, out, err) = cli(&data, &["runs", "show", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("lookup"), "{out}");
    let exported = dir.path().join("exported.jsonl");
    let (code, out, err) = cli(
        &data,
        &[
            "runs",
            "export",
            &id,
            "--format",
            "cassette",
            "-o",
            path_str(&exported),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let original = cassette_lines(&a);
    let mut back = cassette_lines(&exported);
    // The export names the imported run and the key of this directory.
    assert_eq!(back[0]["run_id"], id.as_str());
    assert!(back[0]["mask_key"].is_string(), "{}", back[0]);
    let header = back[0].as_object_mut().expect("header");
    header.insert("run_id".into(), json!("run_hand"));
    header.remove("mask_key");
    assert_eq!(back, original);
    let (code, out, err) = cli(&data, &["runs", "diff", &id, path_str(&a)]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_run_diff_names_its_sides_left_and_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let a = hand_cassette(dir.path(), "a.jsonl", "stubbed c-1");
    let b = hand_cassette(dir.path(), "b.jsonl", "stubbed C-1");
    let (code, out, err) = cli(&data, &["runs", "diff", path_str(&a), path_str(&b)]);
    assert_eq!(code, 1, "{err}");
    assert!(out.ends_with('\n'), "{out:?}");
    assert!(out.contains("first divergence"), "{out}");
    let (code, out, _) = cli(
        &data,
        &["runs", "diff", path_str(&a), path_str(&b), "--json"],
    );
    assert_eq!(code, 1);
    assert!(
        !out.contains("\"recorded\"") && !out.contains("\"received\""),
        "{out}"
    );
    let report: Value = serde_json::from_str(&out).expect("diff JSON");
    let changed = report["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["kind"] == "changed")
        .unwrap_or_else(|| panic!("no changed entry: {report}"));
    let field = &changed["outcome"][0];
    assert_eq!(field["path"], "result.content[0].text", "{report}");
    assert_eq!(field["left"], "stubbed c-1", "{report}");
    assert_eq!(field["right"], "stubbed C-1", "{report}");
    assert_eq!(report["left"], path_str(&a));
    assert_eq!(report["right"], path_str(&b));
    assert!(!data.exists(), "a diff wrote to the data directory");
}

/// A scenario that replays upstream `everything` (and its stub `lookup`)
/// from `cassette`; its upstream, were it ever started, touches `marker`.
fn replay_scenario(dir: &Path, name: &str, cassette: &Path, marker: &Path) -> PathBuf {
    write_scenario(
        dir,
        name,
        &format!(
            r#"
version: 1
name: everything-behind-sandbar
seed: 7
clock: 2026-01-15T09:00:00Z
upstreams:
  - name: everything
    command: sh
    args: ["-c", "touch '{marker}'; exec node '{everything}' stdio"]
    mode: replay
replay:
  cassette: "{cassette}"
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
}

#[test]
fn validate_loads_the_cassette_a_scenario_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let marker = dir.path().join("started");
    let check = |scenario: &Path| {
        let (code, out, err) = cli(&data, &["validate", path_str(scenario)]);
        let (_, json, _) = cli(&data, &["validate", path_str(scenario), "--json"]);
        let json: Value = serde_json::from_str(&json).expect("validate JSON");
        (code, format!("{out}{err}"), json)
    };

    let missing = replay_scenario(
        dir.path(),
        "missing.yaml",
        &dir.path().join("nowhere.jsonl"),
        &marker,
    );
    let (code, out, json) = check(&missing);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("replay.cassette")
            && out.contains("nowhere.jsonl")
            && out.contains("does not exist"),
        "{out}"
    );
    // The problem points at the `cassette:` line of the scenario.
    assert!(out.contains("missing.yaml:12:"), "{out}");
    assert_eq!(json[0]["valid"], false);
    assert_eq!(json[0]["problems"][0]["place"], "replay.cassette");
    assert_eq!(json[0]["problems"][0]["line"], 12);

    let future = dir.path().join("future.jsonl");
    std::fs::write(
        &future,
        "{\"format\":\"sandbar-cassette\",\"version\":\"2.0\",\"scenario\":{\"name\":\"x\",\"hash\":\"y\"},\"seed\":0,\"clock_start\":\"2026-01-01T00:00:00Z\",\"recorded_at\":\"2026-01-01T00:00:00Z\"}\n",
    )
    .expect("write");
    let (code, out, _) = check(&replay_scenario(
        dir.path(),
        "future.yaml",
        &future,
        &marker,
    ));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2.0") && out.contains("newer"), "{out}");

    // A cassette without the catalog of the upstream it replays.
    let stub_only = dir.path().join("stub-only.jsonl");
    let mut lines = cassette_lines(&hand_cassette(dir.path(), "full.jsonl", "x"));
    lines[0]
        .as_object_mut()
        .expect("header")
        .remove("upstreams");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&stub_only, text).expect("write");
    let (code, out, _) = check(&replay_scenario(
        dir.path(),
        "no-catalog.yaml",
        &stub_only,
        &marker,
    ));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("upstream everything is in replay mode but the cassette has no catalog of it"),
        "{out}"
    );

    let full = dir.path().join("full.jsonl");
    let (code, out, json) = check(&replay_scenario(dir.path(), "ok.yaml", &full, &marker));
    assert_eq!(code, 0, "{out}");
    assert_eq!(json[0]["valid"], true);
    assert!(!marker.exists(), "validate started the upstream");
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

async fn with_timeout<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took over 60 s"))
}

/// The one cassette in `dir`.
fn only_cassette(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(files.len(), 1, "expected one cassette: {files:?}");
    files[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_exported_as_a_cassette_is_the_cassette_recorded_live_and_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: everything-behind-sandbar
seed: 7
clock: 2026-01-15T09:00:00Z
server:
  version: "3.1.4"
  instructions: "Look things up."
upstreams:
  - name: everything
    command: node
    args: ["{everything}", stdio]
tools:
  - name: lookup
    input_schema: {{type: object, properties: {{id: {{type: string}}}}, required: [id]}}
    respond:
      - text: "stubbed {{{{ args.id }}}}"
"#,
            everything = everything()
        ),
    );
    let data = dir.path().join("data");
    let recorded = dir.path().join("recorded");
    let mut args = vec![
        "serve".to_owned(),
        scenario.display().to_string(),
        "--stdio".to_owned(),
        "--data".to_owned(),
        data.display().to_string(),
        "--record".to_owned(),
        recorded.display().to_string(),
    ];
    let live = with_timeout("the recorded session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let mut answers = Vec::new();
        session.list_all_tools().await.expect("tools/list");
        for (tool, arguments) in [
            ("echo", json!({"message": "hello"})),
            ("get-sum", json!({"a": 2, "b": 3})),
            ("lookup", json!({"id": "c-1"})),
        ] {
            answers.push(call(&session, tool, arguments).await);
        }
        answers.push(progress_call(&session, "agent-token").await);
        session
            .read_resource(ReadResourceRequestParams::new(
                "demo://resource/static/document/architecture.md",
            ))
            .await
            .expect("resources/read");
        session
            .get_prompt(GetPromptRequestParams::new("simple-prompt"))
            .await
            .expect("prompts/get");
        session.cancel().await.expect("close");
        answers
    })
    .await;
    assert_eq!(text(&live[0]), "Echo: hello");
    // Let the server see the end of its stdin and end the run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let live_cassette = only_cassette(&recorded);
    let run_id = live_cassette
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("RUN_ID.jsonl")
        .to_owned();

    let exported = dir.path().join("exported.jsonl");
    let (code, out, err) = cli(
        &data,
        &[
            "runs",
            "export",
            &run_id,
            "--format",
            "cassette",
            "-o",
            path_str(&exported),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");

    let live_text = std::fs::read_to_string(&live_cassette).expect("live cassette");
    let exported_text = std::fs::read_to_string(&exported).expect("exported cassette");
    let live_lines: Vec<&str> = live_text.lines().collect();
    let exported_lines: Vec<&str> = exported_text.lines().collect();
    // Every interaction, byte for byte: params, upstream, virtual time,
    // notifications (progress and list changes) and outcome.
    assert_eq!(
        live_lines[1..],
        exported_lines[1..],
        "the exported interactions differ from the recorded ones"
    );
    assert!(
        live_lines
            .iter()
            .any(|l| l.contains("notifications/progress")),
        "{live_text}"
    );
    let echo = exported_lines
        .iter()
        .find(|l| l.contains("\"params\":{\"name\":\"echo\""))
        .expect("the echo call");
    assert!(echo.contains("\"upstream\":\"everything\""), "{echo}");
    let lookup = exported_lines
        .iter()
        .find(|l| l.contains("\"params\":{\"name\":\"lookup\""))
        .expect("the lookup call");
    assert!(!lookup.contains("\"upstream\""), "{lookup}");
    // The header: the same in every field but `recorded_at`, the wall
    // time the live cassette was opened, which the store does not keep
    // (the export says when the run started: the same moment, give or take
    // the milliseconds between the run's row and the cassette's file).
    let mut live_header: Value = serde_json::from_str(live_lines[0]).expect("header");
    let mut exported_header: Value = serde_json::from_str(exported_lines[0]).expect("header");
    for header in [&mut live_header, &mut exported_header] {
        let recorded_at = header
            .as_object_mut()
            .expect("header")
            .remove("recorded_at")
            .expect("recorded_at");
        assert!(recorded_at.as_str().is_some_and(|t| t.starts_with("20")));
    }
    assert_eq!(live_header, exported_header);
    let catalog = &exported_header["upstreams"]["everything"];
    assert!(
        catalog["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{exported_header}"
    );
    assert!(
        catalog["resource_templates"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{exported_header}"
    );
    assert_eq!(
        exported_header["server"]["info"],
        json!({"name": "everything-behind-sandbar", "version": "3.1.4", "instructions": "Look things up."})
    );

    // The export replays through a replay-mode scenario, offline.
    let marker = dir.path().join("upstream-started");
    let replaying = replay_scenario(dir.path(), "replay.yaml", &exported, &marker);
    let (code, out, err) = cli(&data, &["validate", path_str(&replaying)]);
    assert_eq!(code, 0, "{out}{err}");
    args = vec![
        "serve".to_owned(),
        replaying.display().to_string(),
        "--stdio".to_owned(),
        "--data".to_owned(),
        data.display().to_string(),
    ];
    let replayed = with_timeout("the replayed session", async {
        let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
        let tools = session.list_all_tools().await.expect("tools/list");
        assert!(tools.iter().any(|t| t.name == "echo"), "{tools:?}");
        let mut answers = Vec::new();
        for (tool, arguments) in [
            ("echo", json!({"message": "hello"})),
            ("get-sum", json!({"a": 2, "b": 3})),
            ("lookup", json!({"id": "c-1"})),
        ] {
            answers.push(call(&session, tool, arguments).await);
        }
        answers.push(progress_call(&session, "agent-token").await);
        session.cancel().await.expect("close");
        answers
    })
    .await;
    assert_eq!(live, replayed, "the export must replay what was recorded");
    assert!(
        !marker.exists(),
        "replaying the export started the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_mode_server_says_where_each_runs_cassette_went() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: recording-upstream
upstreams:
  - name: everything
    command: node
    args: ["{everything}", stdio]
    mode: record
"#,
            everything = everything()
        ),
    );
    let data = dir.path().join("data");
    let server = Server::start(&scenario, &data, &[]);
    let session = connect_http(&server.url, TestClient::default()).await;
    let answer = call(&session, "echo", json!({"message": "kept"})).await;
    assert_eq!(text(&answer), "Echo: kept");
    session.cancel().await.expect("close");
    let stderr = server.stop();
    let cassettes = data.join("cassettes");
    assert!(
        stderr.contains(&format!("cassettes to {}", cassettes.display())),
        "{stderr}"
    );
    let cassette = only_cassette(&cassettes);
    assert!(
        stderr.contains(&format!("wrote its cassette to {}", cassette.display())),
        "{stderr}"
    );
}
