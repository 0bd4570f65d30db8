//! Canaries in every sink: real personal data and a secret reach Sandbar
//! from every side — a real upstream's answer (server-filesystem reading a
//! customer file), the agent's own arguments, a stub's data — and no sink
//! Sandbar writes may hold them afterwards: the SQLite file and its WAL,
//! the run's cassette, the logs at `trace` level, `runs show`, both
//! `runs export` formats and a `runs diff` report. What the agent is shown
//! of the upstream's answer is pseudonymous, and a pseudonym it passes back
//! reaches the upstream as the real value.

mod common;

use std::path::Path;

use serde_json::{Value, json};

use common::*;

/// The canaries: what must never be found in any sink.
const NAME: &str = "Ada Lovelace";
const EMAIL: &str = "ada.lovelace@realmail.net";
const CARD: &str = "4539 1488 0343 6467";
const PHONE: &str = "+44 20 7123 4567";
const SECRET: &str = "sk-privacy-canary-5b1d0e77c4";

fn canaries() -> Vec<String> {
    vec![
        NAME.to_owned(),
        "Lovelace".to_owned(),
        EMAIL.to_owned(),
        "ada.lovelace".to_owned(),
        CARD.to_owned(),
        CARD.replace(' ', ""),
        PHONE.to_owned(),
        "7123 4567".to_owned(),
        SECRET.to_owned(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, SECRET),
    ]
}

/// Every file under `dir`, with the canaries found in its bytes.
fn leaks_in_dir(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir").flatten() {
                stack.push(entry.path());
            }
            continue;
        }
        let bytes = std::fs::read(&path).expect("read file");
        for leak in leaks_in(&String::from_utf8_lossy(&bytes)) {
            found.push(format!("{}: {leak}", path.display()));
        }
    }
    found
}

fn leaks_in(text: &str) -> Vec<String> {
    canaries()
        .into_iter()
        .filter(|c| text.contains(c.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_reaches_any_sink_and_the_agent_sees_only_pseudonyms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("files dir");
    let customer = files.join("customer.json");
    std::fs::write(
        &customer,
        format!(
            "{{\n  \"name\": \"{NAME}\",\n  \"email\": \"{EMAIL}\",\n  \"card\": \"{CARD}\",\n  \"phone\": \"{PHONE}\"\n}}\n"
        ),
    )
    .expect("write customer");
    let filesystem = node_module("@modelcontextprotocol/server-filesystem/dist/index.js");
    let scenario = write_scenario(
        dir.path(),
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: privacy-canaries
secrets:
  crm_key: "{SECRET}"
data:
  notes:
    - {{id: n1, author: "{NAME}", contact: "{EMAIL}"}}
tools:
  - name: note
    description: Reads a note.
    input_schema:
      type: object
      properties: {{id: {{type: string}}}}
      required: [id]
    respond:
      - text: "{{{{ notes[args.id] | tojson }}}}"
  - name: remember
    description: Keeps whatever it is given.
    input_schema: {{type: object}}
    respond:
      - text: "kept"
upstreams:
  - name: fs
    command: node
    args: ["{filesystem}", "{files}"]
"#,
            filesystem = filesystem.display(),
            files = files.display(),
        ),
    );
    let data = dir.path().join("data");
    // A fixed masking key. Which real names a key takes for pseudonyms (and
    // leaves alone) depends on the key — 1 name in 64 made of list names,
    // see crates/mask/README.md — and this test is about every sink, not
    // about that trade-off, so it must not depend on a random key.
    std::fs::create_dir_all(data.join("keys")).expect("keys dir");
    std::fs::write(data.join("keys/mask.key"), format!("{}\n", "5a".repeat(32))).expect("key");
    let cassettes = dir.path().join("cassettes");
    let server = Server::start(
        &scenario,
        &data,
        &[
            "--record",
            cassettes.to_str().expect("path"),
            "--log",
            "trace",
        ],
    );
    let session = connect_http(&server.url, TestClient::default()).await;

    // The upstream reads the real customer; the agent is shown pseudonyms.
    let read = call(
        &session,
        "read_text_file",
        json!({"path": customer.display().to_string()}),
    )
    .await;
    let shown = text(&read);
    assert!(
        leaks_in(&shown).is_empty(),
        "the agent was shown real data: {shown}"
    );
    let shown_json: Value = serde_json::from_str(&shown).expect("the file is still JSON");
    let pseudonymous_email = shown_json["email"].as_str().expect("an email").to_owned();
    assert!(
        pseudonymous_email.contains('@') && pseudonymous_email != EMAIL,
        "{shown}"
    );
    let pseudonymous_card = shown_json["card"].as_str().expect("a card").to_owned();
    assert_eq!(pseudonymous_card.len(), CARD.len(), "{shown}");

    // The agent writes the pseudonym back: the upstream gets the real value.
    let copy = files.join("copy.txt");
    let wrote = call(
        &session,
        "write_file",
        json!({"path": copy.display().to_string(), "content": format!("contact {pseudonymous_email}\n")}),
    )
    .await;
    assert_eq!(wrote["isError"], Value::Null, "{wrote}");
    assert_eq!(
        std::fs::read_to_string(&copy).expect("written"),
        format!("contact {EMAIL}\n"),
        "the upstream did not get the real value back"
    );
    // And reading it again shows the same pseudonym: one mapping per run.
    let again = call(
        &session,
        "read_text_file",
        json!({"path": copy.display().to_string()}),
    )
    .await;
    assert_eq!(text(&again), format!("contact {pseudonymous_email}\n"));

    // The agent's own arguments and a stub's data carry canaries too.
    let remembered = call(
        &session,
        "remember",
        json!({"who": NAME, "email": EMAIL, "card": CARD, "phone": PHONE, "key": SECRET}),
    )
    .await;
    assert_eq!(text(&remembered), "kept");
    let note = call(&session, "note", json!({"id": "n1"})).await;
    assert!(
        text(&note).contains(EMAIL),
        "a stub answers from the scenario's own data as written: {note}"
    );
    session.cancel().await.expect("close");
    let logs = server.stop();

    // The logs at trace level carry the protocol traffic, masked.
    assert!(
        logs.contains("read_text_file") && logs.contains("TRACE"),
        "trace logs show the traffic: {logs}"
    );
    assert!(
        leaks_in(&logs).is_empty(),
        "logs leak {:?}",
        leaks_in(&logs)
    );

    // The store (database and WAL) and the cassette.
    let store_leaks = leaks_in_dir(&data);
    assert!(store_leaks.is_empty(), "the store leaks: {store_leaks:?}");
    let cassette_leaks = leaks_in_dir(&cassettes);
    assert!(
        cassette_leaks.is_empty(),
        "the cassette leaks: {cassette_leaks:?}"
    );
    assert!(
        std::fs::read_dir(&cassettes)
            .expect("cassettes")
            .flatten()
            .any(|e| std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains(&pseudonymous_email)),
        "the cassette holds what the agent was shown"
    );

    // Every export and report.
    let run = newest_run(&data);
    let (code, list, err) = cli(&data, &["runs", "list", "--json", "--limit", "1"]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&list).expect("runs list JSON");
    let id = list[0]["id"].as_str().expect("run id").to_owned();
    let (code, shown_run, err) = cli(&data, &["runs", "show", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(leaks_in(&shown_run).is_empty(), "runs show leaks");
    assert!(
        leaks_in(&run.to_string()).is_empty(),
        "runs show --json leaks"
    );
    let (code, jsonl, err) = cli(&data, &["runs", "export", &id, "--format", "jsonl"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        leaks_in(&jsonl).is_empty(),
        "runs export --format jsonl leaks"
    );
    let exported = dir.path().join("exported.jsonl");
    let (code, _, err) = cli(
        &data,
        &[
            "runs",
            "export",
            &id,
            "--format",
            "cassette",
            "-o",
            exported.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read_to_string(&exported).expect("exported");
    assert!(leaks_in(&bytes).is_empty(), "the exported cassette leaks");
    let (code, diff, err) = cli(
        &data,
        &["runs", "diff", &id, exported.to_str().expect("path")],
    );
    assert!(code == 0 || code == 1, "{err}");
    assert!(leaks_in(&diff).is_empty(), "runs diff leaks");
    assert!(leaks_in(&err).is_empty(), "runs diff's stderr leaks");
}
