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
