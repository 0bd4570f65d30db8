//! Tests of known-secret matching: each encoding, computed here with
//! independent encoders, is redacted wherever it sits (mid-sentence,
//! mid-JSON, inside a larger base64 blob, at the start and end of the text),
//! and overlapping or adjacent secrets are handled.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::encodings::{self, MIN_VARIANT_LEN};
use crate::test_support::check_with;
use crate::{RedactError, Redactor};

/// Everything but the RFC 3986 unreserved characters.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The encoded forms of `value`, computed without the crate's encoder.
pub(crate) fn reference_encodings(value: &str) -> Vec<(&'static str, String)> {
    let raw = value.as_bytes();
    let json = serde_json::to_string(value).expect("a str serializes");
    let json = json[1..json.len() - 1].to_owned();
    let percent = utf8_percent_encode(value, RFC3986).to_string();
    let mut out = vec![
        ("raw", value.to_owned()),
        ("base64", STANDARD.encode(raw)),
        ("base64 unpadded", STANDARD_NO_PAD.encode(raw)),
        ("base64url", URL_SAFE.encode(raw)),
        ("base64url unpadded", URL_SAFE_NO_PAD.encode(raw)),
        ("percent", percent.clone()),
        ("percent lower", lower_hex_escapes(&percent)),
        (
            "form",
            utf8_percent_encode(value, RFC3986)
                .to_string()
                .replace("%20", "+"),
        ),
        ("json", json.clone()),
        ("json twice", {
            let twice = serde_json::to_string(&json).expect("a str serializes");
            twice[1..twice.len() - 1].to_owned()
        }),
        ("json ascii", ascii_json(value)),
        ("rust debug", {
            let debug = format!("{value:?}");
            debug[1..debug.len() - 1].to_owned()
        }),
        ("hex", raw.iter().map(|b| format!("{b:02x}")).collect()),
        ("HEX", raw.iter().map(|b| format!("{b:02X}")).collect()),
    ];
    if value.contains('/') {
        out.push(("json slash", json.replace('/', "\\/")));
    }
    out
}

fn lower_hex_escapes(percent: &str) -> String {
    let mut out = String::new();
    let mut chars = percent.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            for _ in 0..2 {
                if let Some(h) = chars.next() {
                    out.push(h.to_ascii_lowercase());
                }
            }
        }
    }
    out
}

/// JSON as Python's `json.dumps` writes it: every non-ASCII char escaped.
fn ascii_json(value: &str) -> String {
    let json = serde_json::to_string(value).expect("a str serializes");
    let mut out = String::new();
    for c in json[1..json.len() - 1].chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

const SECRETS: &[&str] = &[
    "hunter2-but-longer",
    "p@ss w/rd\"quoted\"&<tag>'apos'",
    "pässwörd-κλειδί-😀",
    "tab\there\nnewline\u{1}ctl",
    "back\\slash/and+plus=",
    "abcd",
];

fn redactor_with(value: &str) -> Redactor {
    Redactor::builder()
        .without_default_patterns()
        .secret("db", value)
        .expect("valid secret")
        .build()
}

#[test]
fn variants_include_every_reference_encoding() {
    for value in SECRETS {
        let variants = encodings::variants(value);
        assert_eq!(variants[0], value.as_bytes(), "raw comes first");
        for (name, encoded) in reference_encodings(value) {
            assert!(
                variants.contains(&encoded.clone().into_bytes()),
                "{name} of {value:?} missing: {encoded:?}"
            );
        }
        for variant in &variants {
            assert!(variant.len() >= MIN_VARIANT_LEN);
        }
        let mut unique = variants.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), variants.len(), "variants are distinct");
    }
}

#[test]
fn plain_ascii_secret_has_no_pointless_variants() {
    // Every text encoding leaves `abcdef12` as it is, so only the raw value,
    // base64 (with its fragments) and hex remain.
    let variants = encodings::variants("abcdef12");
    for v in &variants[1..] {
        assert_ne!(v.as_slice(), b"abcdef12");
    }
    assert!(variants.len() <= 12, "{}", variants.len());
}

#[test]
fn every_encoding_is_redacted_in_every_position() {
    for value in SECRETS {
        let redactor = redactor_with(value);
        for (name, encoded) in reference_encodings(value) {
            for (input, expected) in [
                (encoded.clone(), "[REDACTED:secret:db]".to_owned()),
                (
                    format!("the value {encoded} was sent"),
                    "the value [REDACTED:secret:db] was sent".to_owned(),
                ),
                (
                    format!("{encoded} at start"),
                    "[REDACTED:secret:db] at start".to_owned(),
                ),
                (
                    format!("at end {encoded}"),
                    "at end [REDACTED:secret:db]".to_owned(),
                ),
                (
                    format!("{{\"k\":\"x{encoded}y\",\"n\":1}}"),
                    "{\"k\":\"x[REDACTED:secret:db]y\",\"n\":1}".to_owned(),
                ),
            ] {
                let output = redactor.redact_str(&input);
                assert!(
                    !output.contains(&encoded),
                    "{name} of {value:?} survived in {output:?}"
                );
                // A neighbour that continues the encoding (a base64 or hex
                // character) may be absorbed; otherwise the cut is exact.
                if !matches!(
                    name,
                    "raw" | "json" | "json ascii" | "rust debug" | "json twice"
                ) {
                    continue;
                }
                assert_eq!(output, expected, "{name} of {value:?} in {input:?}");
            }
        }
    }
}

#[test]
fn secret_inside_larger_base64_blobs() {
    let value = "correct horse battery staple";
    let redactor = redactor_with(value);
    for prefix_len in 0..7 {
        for suffix_len in 0..7 {
            let mut blob = vec![b'\x01'; prefix_len];
            blob.extend_from_slice(value.as_bytes());
            blob.extend(std::iter::repeat_n(b'\xfe', suffix_len));
            for (engine_name, encoded) in [
                ("std", STANDARD.encode(&blob)),
                ("std nopad", STANDARD_NO_PAD.encode(&blob)),
                ("url", URL_SAFE.encode(&blob)),
                ("url nopad", URL_SAFE_NO_PAD.encode(&blob)),
            ] {
                // The characters fully determined by the secret's bits.
                let first = (8 * prefix_len).div_ceil(6);
                let last = 8 * (prefix_len + value.len()) / 6;
                let determined = &encoded[first..last];
                let input = format!("data:application/octet-stream;base64,{encoded}");
                let output = redactor.redact_str(&input);
                assert!(
                    output.contains("[REDACTED:secret:db]"),
                    "{engine_name} prefix {prefix_len}: {output}"
                );
                assert!(
                    !output.contains(determined),
                    "{engine_name} prefix {prefix_len} suffix {suffix_len}: {output}"
                );
                // No window of the secret's base64 longer than a few chars
                // survives either.
                for window in determined.as_bytes().windows(8) {
                    let window = std::str::from_utf8(window).expect("ascii");
                    assert!(!output.contains(window), "{window} survived in {output}");
                }
            }
        }
    }
}

#[test]
fn basic_auth_header_with_a_registered_password() {
    let redactor = Redactor::builder()
        .without_default_patterns()
        .secret("db", "s3cret-pw")
        .expect("valid")
        .build();
    let header = format!(
        "Authorization: Basic {}",
        STANDARD.encode("admin:s3cret-pw")
    );
    let output = redactor.redact_str(&header);
    assert!(output.contains("[REDACTED:secret:db]"), "{output}");
    // `admin:` is 6 bytes, so the password starts on a 3-byte boundary and
    // its base64 is a clean substring that must be gone.
    assert!(!output.contains(&STANDARD_NO_PAD.encode("s3cret-pw")[..8]));
}

#[test]
fn overlapping_and_adjacent_secrets() {
    let redactor = Redactor::builder()
        .without_default_patterns()
        .secret("a", "abcd1234")
        .and_then(|b| b.secret("b", "1234wxyz"))
        .and_then(|b| b.secret("c", "zzzzqqqq"))
        .and_then(|b| b.secret("long", "abcdefghij12345678"))
        .and_then(|b| b.secret("inner", "efghij12"))
        .expect("valid")
        .build();
    // Overlapping: one placeholder covers both; neither leaves a tail.
    check_with(&redactor, "x abcd1234wxyz y", "x [REDACTED:secret:a] y");
    // Adjacent: two placeholders.
    check_with(
        &redactor,
        "abcd1234zzzzqqqq",
        "[REDACTED:secret:a][REDACTED:secret:c]",
    );
    // Nested: the longer one names the span.
    check_with(
        &redactor,
        "<abcdefghij12345678>",
        "<[REDACTED:secret:long]>",
    );
    // Repeated.
    check_with(
        &redactor,
        "abcd1234 abcd1234abcd1234",
        "[REDACTED:secret:a] [REDACTED:secret:a][REDACTED:secret:a]",
    );
}

#[test]
fn secret_next_to_a_token_is_redacted_with_it() {
    // `Xghp_...` is not a GitHub token (a letter precedes it), but once the
    // secret before it is a placeholder it would be one: the rescan catches it
    // in the same call, which keeps redaction idempotent.
    let token = crate::test_support::fake("ghp_", crate::test_support::ALNUM, 36);
    let redactor = Redactor::builder()
        .secret("s", "abcd")
        .expect("valid")
        .build();
    check_with(
        &redactor,
        &format!("abcd{token}"),
        "[REDACTED:secret:s][REDACTED:github_token]",
    );
}

#[test]
fn rejects_unsafe_secrets_without_leaking_them() {
    let err = Redactor::builder()
        .secret("pin", "123")
        .expect_err("too short");
    assert!(matches!(err, RedactError::SecretTooShort { len: 3, .. }));
    assert!(!err.to_string().contains("123"), "{err}");
    let err = Redactor::builder()
        .secret("blank", "    \t")
        .expect_err("blank");
    assert!(matches!(err, RedactError::SecretBlank { .. }));
    for name in ["", "has space", "slash/name", "brack]et", "é"] {
        let err = Redactor::builder()
            .secret(name, "long-enough-value")
            .expect_err("bad name");
        assert!(
            matches!(err, RedactError::InvalidSecretName { .. }),
            "{name:?}"
        );
        assert!(!err.to_string().contains("long-enough-value"));
    }
    let ok = Redactor::builder()
        .secret("a.b-C_9", "long-enough-value")
        .and_then(|b| b.secret("a.b-C_9", "long-enough-value"))
        .expect("valid")
        .build();
    assert_eq!(
        ok.secret_count(),
        1,
        "a repeated registration is one secret"
    );
}

#[test]
fn debug_output_never_shows_a_secret() {
    let builder = Redactor::builder()
        .secret("db", "s3cret-value")
        .expect("valid");
    assert!(!format!("{builder:?}").contains("s3cret-value"));
    let redactor = builder.build();
    let debug = format!("{redactor:?}");
    assert!(!debug.contains("s3cret-value"));
    assert!(debug.contains("db"));
}

#[test]
fn secret_containing_a_rule_keyword() {
    // A secret whose value looks like an assignment: the secret wins the tie.
    let redactor = Redactor::builder()
        .secret("pw", "password=hunter22")
        .expect("valid")
        .build();
    check_with(
        &redactor,
        "x password=hunter22 y",
        "x [REDACTED:secret:pw] y",
    );
    check_with(&redactor, "password=hunter22", "[REDACTED:secret:pw]");
}

#[test]
fn secret_as_a_rule_value_takes_the_secret_name() {
    let redactor = Redactor::builder()
        .secret("api", "abcdef123456")
        .expect("valid")
        .build();
    check_with(
        &redactor,
        "token=abcdef123456",
        "token=[REDACTED:secret:api]",
    );
    check_with(
        &redactor,
        "Authorization: Bearer abcdef123456",
        "Authorization: Bearer [REDACTED:secret:api]",
    );
}
