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

mod privacy {
    use serde_json::json;

    use crate::sandbar_mask::{MaskKey, Operator, PersonalKind};
    use crate::{Privacy, PrivacyPolicy, Redactor, SharedRedactor, Sink, SinkPolicy};

    fn shared(policy: PrivacyPolicy) -> SharedRedactor {
        let shared = SharedRedactor::new(Redactor::new());
        shared.set_privacy(Some(Privacy::new(MaskKey::from_bytes([7; 32]), policy)));
        shared
    }

    #[test]
    fn every_sink_pseudonymizes_personal_data_by_default_and_redacts_secrets() {
        let shared = shared(PrivacyPolicy::default());
        let input = "mail ada@realmail.net, password=hunter2hunter2";
        let mut seen = Vec::new();
        for &sink in Sink::ALL {
            let out = shared.for_sink(sink).redact_str(input);
            assert!(!out.contains("ada@realmail.net"), "{sink}: {out}");
            assert!(!out.contains("hunter2hunter2"), "{sink}: {out}");
            assert!(out.contains("[REDACTED:password]"), "{sink}: {out}");
            seen.push(out);
        }
        // The same pseudonym in every sink: one key, one mapping.
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
        // Without a policy, personal data passes (secrets never do).
        let bare = SharedRedactor::new(Redactor::new());
        assert_eq!(
            bare.redact_str(input),
            "mail ada@realmail.net, password=[REDACTED:password]"
        );
    }

    #[test]
    fn the_most_specific_operator_wins_per_sink_and_kind() {
        let policy = PrivacyPolicy {
            personal: Operator::Pseudonymize,
            kinds: vec![(PersonalKind::Email, Operator::Hash { length: 12 })],
            sinks: vec![
                (
                    Sink::Logs,
                    SinkPolicy {
                        personal: Some(Operator::Redact),
                        kinds: vec![],
                    },
                ),
                (
                    Sink::Export,
                    SinkPolicy {
                        personal: Some(Operator::Redact),
                        kinds: vec![(PersonalKind::Email, Operator::Mask { keep: 3, char: '#' })],
                    },
                ),
            ],
        };
        assert_eq!(
            policy.operator(Sink::Store, PersonalKind::Phone),
            &Operator::Pseudonymize
        );
        assert_eq!(
            policy.operator(Sink::Store, PersonalKind::Email),
            &Operator::Hash { length: 12 }
        );
        assert_eq!(
            policy.operator(Sink::Logs, PersonalKind::Email),
            &Operator::Redact
        );
        let shared = shared(policy);
        let input = "mail ada@realmail.net";
        assert_eq!(
            shared.for_sink(Sink::Logs).redact_str(input),
            "mail [REDACTED:email]"
        );
        let exported = shared.for_sink(Sink::Export).redact_str(input);
        assert!(
            exported.starts_with("mail ###@") && exported.ends_with("net"),
            "{exported}"
        );
        let stored = shared.for_sink(Sink::Store).redact_str(input);
        let hash = stored.strip_prefix("mail ").expect("prefix");
        assert_eq!(hash.len(), 12, "{stored}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{stored}");
    }

    #[test]
    fn json_uses_field_names_and_reports_what_stands_for_what() {
        let shared = shared(PrivacyPolicy::default());
        let mut value = json!({"customer": {"name": "Ada Lovelace", "sku": "Ada Lovelace"}, "token": "ghp_0123456789abcdefghijABCDEFGHIJ012345"});
        let mut pairs = Vec::new();
        shared.for_sink(Sink::Agent).snapshot().redact_json_seen(
            &mut value,
            &mut |pseudonym, real| {
                pairs.push((pseudonym.to_owned(), real.to_owned()));
            },
        );
        let name = value["customer"]["name"].as_str().expect("name").to_owned();
        assert_ne!(name, "Ada Lovelace");
        assert_eq!(
            value["customer"]["sku"], "Ada Lovelace",
            "not a person's field"
        );
        assert_eq!(value["token"], "[REDACTED:github_token]");
        assert_eq!(pairs, vec![(name, "Ada Lovelace".to_owned())]);
    }
}
