//! The vault through the binary: a secret goes in on standard input, is
//! stored sealed (the store's bytes never hold it), is never printed, opens
//! only with its key, survives a key rotation, and leaves an audit trail
//! without its value.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use common::*;

const VALUE: &str = "sk-vault-canary-7d41c09e5a";

/// `sandbar ARGS --data DATA` with `stdin` on standard input.
fn with_stdin(
    data: &Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut command = sandbar();
    command
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("SANDBAR_VAULT_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run sandbar");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn store_bytes(data: &Path) -> String {
    let mut all = String::new();
    for name in ["sandbar.db", "sandbar.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(name)) {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

#[test]
fn secrets_are_sealed_never_printed_open_only_with_their_key_and_survive_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");

    // A value is never an argument.
    let (code, _, _) = with_stdin(&data, &["secret", "set", "api_token", VALUE], "", &[]);
    assert_eq!(code, 2);

    let (code, out, err) = with_stdin(
        &data,
        &["secret", "set", "api_token"],
        &format!("{VALUE}\n"),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(VALUE) && !err.contains(VALUE));
    assert!(err.contains("sealed under vault key"), "{err}");
    let (code, _, err) = with_stdin(&data, &["secret", "set", "bad name!"], "x-long-enough", &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = with_stdin(&data, &["secret", "set", "empty"], "\n", &[]);
    assert_eq!(code, 2, "{err}");

    let (code, list, err) = with_stdin(&data, &["secret", "list", "--json"], "", &[]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&list).expect("list JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["name"], "api_token");
    assert!(!list.to_string().contains(VALUE));
    assert!(
        !store_bytes(&data).contains(VALUE),
        "the store holds the value"
    );
    assert!(
        !store_bytes(&data).contains(&VALUE[3..20]),
        "the store holds part of the value"
    );

    let (code, out, err) = with_stdin(&data, &["secret", "check"], "", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 secret(s) open"), "{out}");

    // Another key opens nothing, and says why.
    let other = "11".repeat(32);
    let (code, out, err) = with_stdin(
        &data,
        &["secret", "check"],
        "",
        &[("SANDBAR_VAULT_KEY", &other)],
    );
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("sealed under vault key"), "{err}");
    assert!(!err.contains(VALUE));

    // Rotation: everything re-sealed under the new key, which alone opens
    // it. A key given from outside stays the caller's to replace...
    let old_key = dir.path().join("old.key");
    std::fs::copy(data.join("keys/vault.key"), &old_key).expect("keep the old key");
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, format!("{}\n", "42".repeat(32))).expect("key");
    let (code, out, err) = with_stdin(
        &data,
        &[
            "secret",
            "rotate",
            "--new-key-file",
            new_key.to_str().expect("path"),
            "--vault-key-file",
            old_key.to_str().expect("path"),
        ],
        "",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 secret(s) re-sealed"), "{out}");
    assert!(out.contains("use that key from now on"), "{out}");
    let (code, out, err) = with_stdin(
        &data,
        &[
            "secret",
            "check",
            "--vault-key-file",
            new_key.to_str().expect("path"),
        ],
        "",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 secret(s) open"), "{out}");
    let (code, _, err) = with_stdin(
        &data,
        &[
            "secret",
            "check",
            "--vault-key-file",
            old_key.to_str().expect("path"),
        ],
        "",
        &[],
    );
    assert_eq!(code, 1, "the old key still opens: {err}");
    // ...while the data directory's own key is replaced in place.
    std::fs::copy(&new_key, data.join("keys/vault.key")).expect("use the new key");
    let newer_key = dir.path().join("newer.key");
    std::fs::write(&newer_key, format!("{}\n", "43".repeat(32))).expect("key");
    let (code, out, err) = with_stdin(
        &data,
        &[
            "secret",
            "rotate",
            "--new-key-file",
            newer_key.to_str().expect("path"),
        ],
        "",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("now holds it"), "{out}");
    let (code, out, err) = with_stdin(&data, &["secret", "check"], "", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 secret(s) open"), "{out}");

    // Removing, and the trail of it all, without the value.
    let (code, _, err) = with_stdin(
        &data,
        &[
            "secret",
            "rm",
            "api_token",
            "--vault-key-file",
            new_key.to_str().expect("path"),
        ],
        "",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = with_stdin(
        &data,
        &[
            "secret",
            "rm",
            "api_token",
            "--vault-key-file",
            new_key.to_str().expect("path"),
        ],
        "",
        &[],
    );
    assert_eq!(code, 1);
    let (code, trail, err) = cli(&data, &["audit", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(!trail.contains(VALUE));
    let trail: Value = serde_json::from_str(&trail).expect("audit JSON");
    let actions: Vec<&str> = trail["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["secret.set", "secret.rotate", "secret.rotate", "secret.rm"]
    );
}

/// A scenario whose one upstream, `servers/credentialed.cjs`, gets the
/// vault's `crm_token` in its environment and writes it to `received`.
fn credentialed_scenario(dir: &Path, name: &str, received: &Path) -> std::path::PathBuf {
    let server = repo().join("crates/cli/tests/servers/credentialed.cjs");
    write_scenario(
        dir,
        "scenario.yaml",
        &format!(
            r#"
version: 1
name: {name}
upstreams:
  - name: crm
    command: node
    args: ["{}"]
    env: {{API_TOKEN: "{{{{ secrets.crm_token }}}}", RECEIVED: "{}"}}
"#,
            server.display(),
            received.display()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_secret_reaches_the_upstream_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (code, _, err) = with_stdin(&data, &["secret", "set", "crm_token"], VALUE, &[]);
    assert_eq!(code, 0, "{err}");
    let received = dir.path().join("received.txt");
    let scenario = credentialed_scenario(dir.path(), "vault-injection", &received);
    // Validation without the vault says what is missing.
    let (code, out, err) = cli(
        &dir.path().join("elsewhere"),
        &["validate", scenario.to_str().expect("path")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        format!("{out}{err}").contains("no secret named `crm_token`"),
        "{out}{err}"
    );

    // With the vault's data directory, the name is known.
    let (code, out, err) = cli(&data, &["validate", scenario.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(VALUE) && !err.contains(VALUE));

    let cassettes = dir.path().join("cassettes");
    let mut args = vec![
        "serve".to_owned(),
        scenario.display().to_string(),
        "--stdio".to_owned(),
        "--data".to_owned(),
        data.display().to_string(),
        "--record".to_owned(),
        cassettes.display().to_string(),
    ];
    args.extend(["--log".to_owned(), "trace".to_owned()]);
    let session = connect_command(&sandbar_path(), &args, TestClient::default()).await;
    let answer = call(&session, "whoami", serde_json::json!({})).await;
    session.cancel().await.expect("close");

    // The upstream got the real credential, from the vault.
    assert_eq!(std::fs::read_to_string(&received).expect("received"), VALUE);
    // The agent was told the upstream authenticated, never with what.
    let shown = answer.to_string();
    assert!(
        shown.contains("authenticated with [REDACTED:secret:crm_token]"),
        "{shown}"
    );
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, VALUE);
    for form in [VALUE, encoded.as_str()] {
        assert!(
            !shown.contains(form),
            "the agent was shown the credential: {shown}"
        );
        assert!(
            !store_bytes(&data).contains(form),
            "the store holds the credential"
        );
        for entry in std::fs::read_dir(&cassettes).expect("cassettes").flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(!text.contains(form), "a cassette holds the credential");
        }
    }
    let run = newest_run(&data).to_string();
    assert!(
        !run.contains(VALUE) && !run.contains(&encoded),
        "runs show holds the credential"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_rotates_while_a_server_runs_without_interrupting_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (code, _, err) = with_stdin(&data, &["secret", "set", "crm_token"], VALUE, &[]);
    assert_eq!(code, 0, "{err}");
    let received = dir.path().join("received.txt");
    let scenario = credentialed_scenario(dir.path(), "vault-rotation", &received);
    let server = Server::start(&scenario, &data, &[]);
    let first = connect_http(&server.url, TestClient::default()).await;
    let answer = call(&first, "whoami", serde_json::json!({})).await;
    assert!(
        text(&answer).contains("authenticated with [REDACTED"),
        "{answer}"
    );

    // Rotate while the server runs and a session is open.
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, "ab".repeat(32)).expect("new key");
    let (code, _, err) = cli(
        &data,
        &[
            "secret",
            "rotate",
            "--new-key-file",
            new_key.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{err}");

    // The open session goes on, and a new one (a new run, a new upstream
    // process given the credential) starts as before.
    std::fs::remove_file(&received).expect("clear");
    let answer = call(&first, "whoami", serde_json::json!({})).await;
    assert!(
        text(&answer).contains("authenticated with [REDACTED"),
        "{answer}"
    );
    let second = connect_http(&server.url, TestClient::default()).await;
    let answer = call(&second, "whoami", serde_json::json!({})).await;
    assert!(
        text(&answer).contains("authenticated with [REDACTED"),
        "{answer}"
    );
    assert_eq!(std::fs::read_to_string(&received).expect("received"), VALUE);
    first.cancel().await.expect("close");
    second.cancel().await.expect("close");
    server.stop();

    // A server started after the rotation opens the vault with the new key.
    std::fs::remove_file(&received).expect("clear");
    let server = Server::start(&scenario, &data, &[]);
    let third = connect_http(&server.url, TestClient::default()).await;
    let answer = call(&third, "whoami", serde_json::json!({})).await;
    assert!(
        text(&answer).contains("authenticated with [REDACTED"),
        "{answer}"
    );
    assert_eq!(std::fs::read_to_string(&received).expect("received"), VALUE);
    third.cancel().await.expect("close");
    let stderr = server.stop();
    assert!(!stderr.contains(VALUE));
}
