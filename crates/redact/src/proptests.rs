//! Property tests: for arbitrary text and arbitrary secrets, no planted
//! secret survives in any encoding, redaction is idempotent and never panics,
//! `find` agrees with `redact_str`, rescanning only near placeholders finds
//! what a full rescan finds, redacted JSON values hold no secret, and
//! redacted JSON text is still JSON.

use proptest::prelude::*;
use serde_json::Value;

use crate::Redactor;
use crate::encodings_tests::reference_encodings;
use crate::test_support::{ALNUM, fake, render};

/// A character the generators never produce, standing in for placeholders
/// when looking for survivors.
const MARK: char = '\u{0}';

/// Secrets: at least 4 bytes, any script, some punctuation; never `[` or
/// `]`, so that a secret cannot be mistaken for part of a placeholder.
fn secret() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 !#$%&'()*+,./:;<=>?@^_`{|}~\"\\\\éüß€κλ日本😀\t\n-]{2,14}"
        .prop_filter("at least 4 bytes, not blank", |s| {
            s.len() >= 4 && !s.chars().all(char::is_whitespace)
        })
}

/// Surrounding text: anything but the marker.
fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,24}"
}

/// Text made of fragments that exercise the rules: keywords, quotes,
/// escapes, token prefixes, placeholder pieces, multibyte characters.
fn rich_text() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("password=".to_owned()),
        Just("\"password\": \"".to_owned()),
        Just("token: ".to_owned()),
        Just("secret='".to_owned()),
        Just("<password>".to_owned()),
        Just("--password ".to_owned()),
        Just("Bearer ".to_owned()),
        Just("Basic dXNlcjpwYXNz".to_owned()),
        Just("://u:".to_owned()),
        Just("@".to_owned()),
        Just("ghp_".to_owned()),
        Just("AKIA".to_owned()),
        Just("sk-".to_owned()),
        Just("eyJhbGciOiJub25lIn0.".to_owned()),
        Just("eyJ".to_owned()),
        Just(".".to_owned()),
        Just("-----BEGIN RSA PRIVATE KEY-----".to_owned()),
        Just("-----END RSA PRIVATE KEY-----".to_owned()),
        Just("[REDACTED:".to_owned()),
        Just("[REDACTED:password]".to_owned()),
        Just("[REDACTED:secret:s]".to_owned()),
        Just("]".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\\".to_owned()),
        Just("\\n".to_owned()),
        Just("\\u00e9".to_owned()),
        Just("\\ud83d\\ude00".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        Just("=".to_owned()),
        Just(":".to_owned()),
        Just(",".to_owned()),
        Just("é".to_owned()),
        Just("😀".to_owned()),
        Just("s3cr3t-value".to_owned()),
        Just(fake("ghp_", ALNUM, 36)),
        Just("123456789:AA".to_owned()),
        Just("0123456789abcdef0123456789abcdef-us".to_owned()),
        Just("8Q~".to_owned()),
        Just("postgres://u:".to_owned()),
        Just("hvs.".to_owned()),
        Just("AccountKey=".to_owned()),
        Just("-----BEGIN OpenVPN Static key V1-----".to_owned()),
        Just("Private-Lines: 1\n".to_owned()),
        Just("api_key: ".to_owned()),
        "[A-Za-z0-9]{1,40}",
        "[^\u{0}]{0,4}",
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

fn redactor_with(secret: &str) -> Redactor {
    Redactor::builder()
        .secret("s", secret)
        .expect("generated secrets are valid")
        .build()
}

/// The output with every placeholder replaced by [`MARK`], so that a
/// survivor cannot hide in, or be faked by, placeholder text.
fn strip_placeholders(output: &str) -> String {
    let mut out = String::with_capacity(output.len());
    let mut rest = output;
    while let Some(at) = rest.find("[REDACTED:") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match tail.find(']') {
            Some(close) => {
                out.push(MARK);
                rest = &tail[close + 1..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A JSON value whose strings and keys may hold `\u{1}`, later replaced by
/// the secret.
fn json_value() -> impl Strategy<Value = Value> {
    let string = prop_oneof![
        "[a-z \"\\\\é😀=:]{0,8}",
        "[a-z ]{0,4}\u{1}[a-z ]{0,4}",
        Just("password=".to_owned()),
        Just("token: ".to_owned()),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        string.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof!["[a-z_]{1,8}", "[a-z]{0,3}\u{1}[a-z]{0,3}"],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn plant(value: &mut Value, secret: &str) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) => *s = s.replace('\u{1}', secret),
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(k.replace('\u{1}', secret), v);
                }
                stack.extend(map.values_mut());
            }
            _ => {}
        }
    }
}

// The default configuration: 256 cases, more with PROPTEST_CASES=n.
proptest! {
    #[test]
    fn planted_secret_never_survives(
        secret in secret(),
        before in text(),
        after in text(),
        which in 0usize..64,
    ) {
        let redactor = redactor_with(&secret);
        let encodings = reference_encodings(&secret);
        let (name, encoded) = &encodings[which % encodings.len()];
        let input = format!("{before}{encoded}{after}");
        let output = redactor.redact_str(&input);
        let stripped = strip_placeholders(&output);
        prop_assert!(
            !stripped.contains(encoded.as_str()),
            "{} of {:?} survived: {:?}", name, secret, output
        );
        prop_assert!(!stripped.contains(secret.as_str()), "raw {:?} survived: {:?}", secret, output);
    }

    #[test]
    fn every_encoding_at_once(secret in secret(), glue in text()) {
        let redactor = redactor_with(&secret);
        let encodings = reference_encodings(&secret);
        let input = encodings
            .iter()
            .map(|(_, e)| e.as_str())
            .collect::<Vec<_>>()
            .join(&glue);
        let stripped = strip_placeholders(&redactor.redact_str(&input));
        for (name, encoded) in &encodings {
            prop_assert!(!stripped.contains(encoded.as_str()), "{} survived in {:?}", name, stripped);
        }
    }

    #[test]
    fn idempotent_and_consistent(input in rich_text(), secret in secret()) {
        for redactor in [Redactor::new(), redactor_with(&secret)] {
            let once = redactor.redact_str(&input);
            let twice = redactor.redact_str(&once);
            prop_assert_eq!(&twice, &once, "input {:?}", input);
            prop_assert_eq!(render(&input, &redactor.find(&input)), once.as_ref());
            let findings = redactor.find(&input);
            for pair in findings.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start, "overlapping findings {:?}", findings);
            }
        }
    }

    #[test]
    fn rescanning_near_placeholders_finds_what_a_full_rescan_finds(
        input in rich_text(),
        secret in secret(),
    ) {
        for redactor in [Redactor::new(), redactor_with(&secret)] {
            let windowed = redactor.redact_str(&input).into_owned();
            crate::redactor::FULL_RESCAN.with(|f| f.set(true));
            let full = redactor.redact_str(&input).into_owned();
            crate::redactor::FULL_RESCAN.with(|f| f.set(false));
            prop_assert_eq!(windowed, full, "input {:?}", input);
        }
    }

    #[test]
    fn never_panics_on_arbitrary_text(input in any::<String>(), rich in rich_text()) {
        let redactor = redactor_with("s3cr3t-value");
        for text in [input.clone(), rich.clone(), format!("{rich}{input}{rich}")] {
            let output = redactor.redact_str(&text);
            // Every cut landed on char boundaries, or `output` could not be a
            // `str`; check the findings too.
            for finding in redactor.find(&text) {
                prop_assert!(text.is_char_boundary(finding.start));
                prop_assert!(text.is_char_boundary(finding.end));
            }
            prop_assert!(output.len() <= text.len() + 64 * (text.len() + 1));
        }
    }

    #[test]
    fn redacted_json_holds_no_secret(
        mut value in json_value(),
        secret in "[a-zA-Z0-9_é€😀 -]{4,10}",
    ) {
        // A secret spelled like JSON's own words would be found in `true`.
        prop_assume!(!["true", "false", "null"].iter().any(|w| w.contains(secret.as_str())));
        plant(&mut value, &secret);
        let redactor = redactor_with(&secret);
        redactor.redact_json(&mut value);
        let serialized = serde_json::to_string(&value).expect("serializes");
        let stripped = strip_placeholders(&serialized);
        let escaped = serde_json::to_string(&secret).expect("serializes");
        prop_assert!(!stripped.contains(secret.as_str()), "{}", serialized);
        prop_assert!(!stripped.contains(&escaped[1..escaped.len() - 1]), "{}", serialized);
    }

    #[test]
    fn redacted_json_text_is_still_json(
        mut value in json_value(),
        secret in "[a-zA-Z0-9_é€😀-]{4,10}",
    ) {
        plant(&mut value, &secret);
        let redactor = redactor_with(&secret);
        for text in [
            serde_json::to_string(&value).expect("serializes"),
            serde_json::to_string_pretty(&value).expect("serializes"),
        ] {
            let redacted = redactor.redact_str(&text);
            prop_assert!(
                serde_json::from_str::<Value>(&redacted).is_ok(),
                "invalid JSON after redaction:\n{}\n{}", text, redacted
            );
        }
    }
}

/// Text dense with what the personal-data detector reads: its cue words in
/// both cases, as keys and in prose, with names, dates, numbers and
/// addresses around them, credentials and placeholders among them.
fn personal_text() -> impl Strategy<Value = String> {
    let cue = prop::sample::select(crate::sandbar_mask::cue_words().collect::<Vec<_>>())
        .prop_flat_map(|w| {
            prop_oneof![
                Just(w.to_owned()),
                Just(w.to_ascii_uppercase()),
                Just(format!("\"{w}\": \"")),
                Just(format!("{w}=")),
                Just(format!("{w}: ")),
            ]
        });
    let fragment = prop_oneof![
        cue.clone(),
        cue.clone(),
        cue,
        Just("Ada Lovelace".to_owned()),
        Just("Mr. John Smith".to_owned()),
        Just("1990-02-03".to_owned()),
        Just("3 March 1985".to_owned()),
        Just("221B Baker Street, London NW1 6XE".to_owned()),
        Just("+44 20 7946 0018".to_owned()),
        Just("(212) 555-0148".to_owned()),
        Just("4539 1488 0343 6467".to_owned()),
        Just("078-05-1120".to_owned()),
        Just("ada@example.org".to_owned()),
        Just("password=hunter2hunter2".to_owned()),
        Just("[REDACTED:email]".to_owned()),
        // Secrets whose names are cue words: their placeholders hold one.
        Just("zq9-user-secret-1".to_owned()),
        Just("zq9-cust-secret-2".to_owned()),
        Just(" ".to_owned()),
        Just(", ".to_owned()),
        Just("\n".to_owned()),
        Just("\"".to_owned()),
        "[A-Za-z]{1,9}",
        "[0-9]{1,6}",
    ];
    prop::collection::vec(fragment, 0..20).prop_map(|parts| parts.concat())
}

/// A redactor holding two secrets whose names are cue words, without
/// privacy yet, and the privacy the one-read tests turn on.
fn one_read_setup() -> (crate::SharedRedactor, crate::Privacy) {
    use crate::sandbar_mask::MaskKey;
    use crate::{Privacy, PrivacyPolicy, SharedRedactor};
    let redactor = Redactor::builder()
        .secret("user", "zq9-user-secret-1")
        .and_then(|b| b.secret("customer", "zq9-cust-secret-2"))
        .map(|b| b.build())
        .expect("two valid secrets");
    let privacy = Privacy::new(MaskKey::from_bytes([7; 32]), PrivacyPolicy::default());
    (SharedRedactor::new(redactor), privacy)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// A sink reads a text once for secrets and personal data together;
    /// what it writes is what the two passes, one after the other, write.
    #[test]
    fn one_pass_masks_exactly_as_two_passes(text in prop_oneof![personal_text(), rich_text()]) {
        use crate::Sink;
        let (shared, privacy) = one_read_setup();
        let two_passes = privacy
            .masker(Sink::Logs)
            .mask(&shared.current().redact_str(&text));
        shared.set_privacy(Some(privacy));
        let one_pass = shared.for_sink(Sink::Logs).redact_str(&text);
        prop_assert_eq!(one_pass, two_passes);
    }
}

/// JSON documents whose keys are field names that give personal data its
/// context (or hold a secret), and whose values are texts of both kinds,
/// numbers and nested documents.
fn personal_json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop_oneof![
        Just("name".to_owned()),
        Just("first_name".to_owned()),
        Just("customer".to_owned()),
        Just("address".to_owned()),
        Just("dob".to_owned()),
        Just("phone".to_owned()),
        Just("password".to_owned()),
        Just("note".to_owned()),
        Just("zq9-user-secret-1".to_owned()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        prop_oneof![personal_text(), rich_text()].prop_map(serde_json::Value::String),
        any::<u32>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// A sink walks a JSON document once, reading each string once for
    /// secrets and personal data; what it writes is what the two walks, one
    /// after the other, write.
    #[test]
    fn one_walk_masks_json_exactly_as_two_walks(doc in personal_json()) {
        use crate::Sink;
        let (shared, privacy) = one_read_setup();
        let mut two_walks = doc.clone();
        shared.current().redact_json(&mut two_walks);
        privacy.masker(Sink::Store).mask_json_in_place(&mut two_walks, &mut |_, _| {});
        shared.set_privacy(Some(privacy));
        let mut one_walk = doc;
        shared.for_sink(Sink::Store).redact_json(&mut one_walk);
        prop_assert_eq!(one_walk, two_walks);
    }
}
