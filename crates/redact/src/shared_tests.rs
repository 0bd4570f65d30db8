//! Tests of `SharedRedactor`: secrets added after construction apply to
//! later calls, on every clone of the handle and from other threads, and a
//! rejected batch changes nothing.

use std::sync::Arc;
use std::thread;

use serde_json::json;

use crate::{RedactError, Redactor, SharedRedactor};

#[test]
fn added_secrets_apply_to_later_calls() {
    let shared = SharedRedactor::new(Redactor::new());
    let clone = shared.clone();
    assert_eq!(
        shared.redact_str("key=abcd-efgh-1234"),
        "key=abcd-efgh-1234"
    );
    shared
        .add_secrets([("k", "abcd-efgh-1234"), ("other", "zyxw-9876")])
        .expect("valid");
    assert_eq!(
        clone.redact_str("key=abcd-efgh-1234"),
        "key=[REDACTED:secret:k]"
    );
    assert_eq!(shared.current().secret_count(), 2);
    // Patterns are kept.
    assert_eq!(
        clone.redact_str("password=hunter22"),
        "password=[REDACTED:password]"
    );
    let mut value = json!({"a": "zyxw-9876"});
    clone.redact_json(&mut value);
    assert_eq!(value, json!({"a": "[REDACTED:secret:other]"}));
    // Adding more keeps the earlier ones.
    shared
        .add_secrets([("third", "third-value")])
        .expect("valid");
    assert_eq!(
        shared.redact_str("abcd-efgh-1234 third-value"),
        "[REDACTED:secret:k] [REDACTED:secret:third]"
    );
}

#[test]
fn a_rejected_batch_changes_nothing() {
    let shared = SharedRedactor::default();
    let err = shared
        .add_secrets([("good", "good-value"), ("bad", "x")])
        .expect_err("too short");
    assert!(matches!(err, RedactError::SecretTooShort { .. }));
    assert_eq!(shared.current().secret_count(), 0);
    assert_eq!(shared.redact_str("good-value"), "good-value");
}

#[test]
fn other_threads_see_added_secrets() {
    let shared = SharedRedactor::new(Redactor::new());
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let reader = {
        let shared = shared.clone();
        let barrier = barrier.clone();
        thread::spawn(move || {
            let before = shared.redact_str("token-from-vault-42");
            barrier.wait(); // the secret is added now
            barrier.wait();
            let after = shared.redact_str("token-from-vault-42");
            (before, after)
        })
    };
    barrier.wait();
    shared
        .add_secrets([("vault", "token-from-vault-42")])
        .expect("valid");
    barrier.wait();
    let (before, after) = reader.join().expect("reader thread");
    assert_eq!(before, "token-from-vault-42");
    assert_eq!(after, "[REDACTED:secret:vault]");
}

#[test]
fn concurrent_adds_lose_nothing() {
    let shared = SharedRedactor::default();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let shared = shared.clone();
            thread::spawn(move || {
                for j in 0..5 {
                    let value = format!("secret-{i}-{j}-value");
                    shared.add_secrets([("s", value.as_str())]).expect("valid");
                    // Readers keep working while others rebuild.
                    assert_eq!(shared.redact_str(&value), "[REDACTED:secret:s]");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("writer thread");
    }
    assert_eq!(shared.current().secret_count(), 40);
}
