//! Tests of the `Redactor` API as a whole: borrowing when clean, `find`,
//! JSON redaction, cuts that keep JSON valid, and linear work on
//! adversarial input (asserted through work counters, never wall-clock time).

use std::borrow::Cow;

use serde_json::json;

use crate::rules::EXTENDED_BYTES;
use crate::scan::ATTEMPTS;
use crate::test_support::{ALNUM, check, check_with, fake, render, unchanged};
use crate::{Finding, Redactor};

#[test]
fn clean_text_is_borrowed() {
    let redactor = Redactor::new();
    for input in [
        "",
        "hello world",
        "token_count=12 and the password reset flow",
        "{\"kind\":\"call\",\"tool\":\"lookup_order\",\"args\":{\"order_id\":\"o1\"}}",
    ] {
        assert!(
            matches!(redactor.redact_str(input), Cow::Borrowed(_)),
            "{input}"
        );
    }
}

#[test]
fn find_reports_kinds_and_offsets() {
    let token = fake("ghp_", ALNUM, 36);
    let input = format!("a {token} b password=hunter22");
    let findings = Redactor::new().find(&input);
    assert_eq!(
        findings,
        vec![
            Finding {
                kind: "github_token".into(),
                start: 2,
                end: 2 + token.len()
            },
            Finding {
                kind: "password".into(),
                start: input.len() - 8,
                end: input.len()
            },
        ]
    );
}

#[test]
fn deterministic() {
    let input = format!("{} password=x1234567", fake("sk-", ALNUM, 48));
    let a = Redactor::new().redact_str(&input).into_owned();
    let b = Redactor::new().redact_str(&input).into_owned();
    assert_eq!(a, b);
}

#[test]
fn without_default_patterns_only_secrets() {
    let redactor = Redactor::builder()
        .without_default_patterns()
        .secret("k", "my-registered-value")
        .expect("valid")
        .build();
    let token = fake("ghp_", ALNUM, 36);
    check_with(
        &redactor,
        &format!("{token} my-registered-value password=hunter22"),
        &format!("{token} [REDACTED:secret:k] password=hunter22"),
    );
    assert_eq!(redactor.secret_count(), 1);
    assert_eq!(Redactor::default().secret_count(), 0);
}

#[test]
fn placeholders_in_the_input_stay_as_they_are() {
    unchanged("[REDACTED:github_token] and password=[REDACTED:password]");
    unchanged("\"secret\": \"[REDACTED:secret]\"");
    // Placeholders written by a process that knew other secrets, or by a
    // newer version with more rules, are left alone too.
    unchanged("[REDACTED:secret:unknown]");
    unchanged("stored: [REDACTED:secret:production_db_password] and [REDACTED:datadog_api_key]");
    unchanged("\"secret\": \"[REDACTED:secret:production_db_password]\"");
    // But the shape of a placeholder cannot hide a registered value.
    let redactor = Redactor::builder()
        .secret("s", "hunter22xyz")
        .expect("valid")
        .build();
    check_with(
        &redactor,
        "[REDACTED:secret:hunter22xyz]",
        "[REDACTED:secret:[REDACTED:secret:s]]",
    );
    let redactor = Redactor::builder()
        .secret("db_pw", "hunter22x")
        .expect("valid")
        .build();
    check_with(
        &redactor,
        "secret: [REDACTED:secret:db_pw]",
        "secret: [REDACTED:secret:db_pw]",
    );
}

#[test]
fn multibyte_text_around_matches() {
    check("é password=hünter22 ü", "é password=[REDACTED:password] ü");
    check(
        "日本語 token=秘密の値です。 終わり",
        "日本語 token=[REDACTED:token] 終わり",
    );
    let redactor = Redactor::builder()
        .secret("s", "κλειδί")
        .expect("valid")
        .build();
    check_with(&redactor, "ακλειδίω", "α[REDACTED:secret:s]ω");
}

#[test]
fn redact_json_strings_keys_and_numbers() {
    let redactor = Redactor::builder()
        .secret("pin", "98765432")
        .and_then(|b| b.secret("key", "top-secret-key"))
        .expect("valid")
        .build();
    let token = fake("ghp_", ALNUM, 36);
    let mut value = json!({
        "tool": "lookup",
        "args": {"auth": format!("token {token}"), "n": 98765432, "ok": 1.5},
        "top-secret-key": "value",
        "list": ["a", "top-secret-key", {"nested": "x top-secret-key y"}],
        "flag": true,
        "nothing": null,
    });
    redactor.redact_json(&mut value);
    assert_eq!(
        value,
        json!({
            "tool": "lookup",
            "args": {"auth": "token [REDACTED:github_token]", "n": "[REDACTED:secret:pin]", "ok": 1.5},
            "[REDACTED:secret:key]": "value",
            "list": ["a", "[REDACTED:secret:key]", {"nested": "x [REDACTED:secret:key] y"}],
            "flag": true,
            "nothing": null,
        })
    );
    // Key order is kept.
    let keys: Vec<&String> = value.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "tool",
            "args",
            "[REDACTED:secret:key]",
            "list",
            "flag",
            "nothing"
        ]
    );
}

#[test]
fn redact_json_keeps_colliding_keys_apart() {
    let redactor = Redactor::builder()
        .secret("s", "alpha-secret")
        .and_then(|b| b.secret("s", "beta-secret"))
        .expect("valid")
        .build();
    let mut value = json!({"alpha-secret": 1, "beta-secret": 2, "[REDACTED:secret:s] (2)": 3});
    redactor.redact_json(&mut value);
    assert_eq!(
        value,
        json!({"[REDACTED:secret:s]": 1, "[REDACTED:secret:s] (2)": 2, "[REDACTED:secret:s] (2) (2)": 3})
    );
}

#[test]
fn redact_json_handles_deep_nesting() {
    let mut value = json!("password=hunter22");
    for _ in 0..100_000 {
        value = serde_json::Value::Array(vec![value]);
    }
    Redactor::new().redact_json(&mut value);
    let mut inner = &value;
    while let serde_json::Value::Array(items) = inner {
        inner = &items[0];
    }
    assert_eq!(inner, "password=[REDACTED:password]");
    // Dropping a deeply nested value recurses inside serde_json; unwind it
    // by hand so the test does not depend on the stack size.
    let mut current = value;
    while let serde_json::Value::Array(mut items) = current {
        current = items.pop().unwrap_or_default();
    }
}

#[test]
fn redacting_serialized_json_keeps_it_valid() {
    let redactor = Redactor::builder()
        .secret("u", "nabc-secret")
        .and_then(|b| b.secret("e", "00e9xyz!"))
        .and_then(|b| b.secret("q", "quote\"d"))
        .expect("valid")
        .build();
    let token = fake("ghp_", ALNUM, 36);
    for value in [
        json!({"a": "x\nabc-secret"}),
        json!({"a": "\u{e9}00e9xyz!", "b": "é00e9xyz!"}),
        json!({"a": "quote\"d", "b": "password=ab\"cd\"", "c": "token=abc\\\\def123"}),
        json!({"password": 12345678, "token": [1, 2], "secret": {"k": "v"}}),
        json!({"password": "hunter\"22\"", "c": format!("{token}\"x")}),
        json!({"k": "emoji 😀 password=😀😀😀😀", "t": "Bearer abc123\\def456"}),
        json!([
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\\",
            "private_key=\"\\u0041bc123456\""
        ]),
    ] {
        for text in [
            value.to_string(),
            serde_json::to_string_pretty(&value).expect("serializes"),
            ascii_json(&value.to_string()),
        ] {
            let redacted = redactor.redact_str(&text);
            assert!(
                serde_json::from_str::<serde_json::Value>(&redacted).is_ok(),
                "invalid JSON after redaction:\n{text}\n{redacted}"
            );
        }
    }
}

/// Escapes every non-ASCII character of JSON text as `\uXXXX`.
fn ascii_json(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
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

#[test]
fn escaped_secret_halves_are_cut_whole() {
    // The secret "abc-secret" appears after a `\n` escape: `nabc-secret`
    // is registered too, so the match starts right after the backslash, and
    // the cut takes the backslash with it.
    let redactor = Redactor::builder()
        .without_default_patterns()
        .secret("u", "nabc-secret")
        .expect("valid")
        .build();
    check_with(&redactor, "\"x\\nabc-secret\"", "\"x[REDACTED:secret:u]\"");
    // Inside a \u escape: the cut starts at its backslash.
    let redactor = Redactor::builder()
        .without_default_patterns()
        .secret("e", "00e9-tail")
        .expect("valid")
        .build();
    check_with(&redactor, "\"\\u00e9-tail\"", "\"[REDACTED:secret:e]\"");
    // Ending between the halves of a surrogate pair: both halves go.
    let redactor = Redactor::builder()
        .without_default_patterns()
        .secret("p", "head\\ud83d")
        .expect("valid")
        .build();
    check_with(
        &redactor,
        "\"head\\ud83d\\ude00 x\"",
        "\"[REDACTED:secret:p] x\"",
    );
}

// ---------------------------------------------------------------------------
// Linear work on adversarial input. Nothing here measures time: the work
// counters must stay proportional to the input, and a quadratic scan would
// not finish within the test runner's timeout anyway.

const MB: usize = 1024 * 1024;

/// Redacts `input` twice and checks that the second pass changes nothing
/// and that `find` reports what the first replaced.
#[track_caller]
fn assert_settles(redactor: &Redactor, input: &str) -> String {
    let once = redactor.redact_str(input).into_owned();
    assert_eq!(
        redactor.redact_str(&once),
        once,
        "not idempotent for {input:?}"
    );
    assert_eq!(render(input, &redactor.find(input)), once);
    once
}

#[test]
fn chains_of_values_that_end_at_placeholders_settle() {
    // The fuzzer's first finding (`examples/fuzz.rs -- 200000 12345`),
    // minimized: assignments to `secret` whose values run on into the next
    // one. Only the last value passed; once it was a placeholder, the value
    // before it read up to (and into) the placeholder and passed too, and so
    // on backwards, one link per pass, until the passes ran out. A rule
    // attempt now stops at the next placeholder, and a rescan tries the
    // keywords before a span it finds, last first, on the text the next
    // rescan would see.
    let mut minimized = String::new();
    for (c_before, c_after) in [
        (9, 1),
        (9, 17),
        (9, 13),
        (9, 5),
        (9, 17),
        (9, 1),
        (9, 17),
        (9, 3),
        (9, 15),
        (9, 11),
        (9, 7),
        (9, 15),
        (9, 3),
        (7, 17),
        (9, 3),
        (9, 15),
    ] {
        minimized.push_str("secret:");
        minimized.push_str(&"C".repeat(c_before));
        minimized.push('\u{3}');
        minimized.push_str(&"C".repeat(c_after));
    }
    minimized.push_str("secret:ED:secre");
    let redactor = Redactor::builder()
        .secret("fuzz", "fz-Sandbar-Fuzz-Secret-91c7e2")
        .expect("valid")
        .build();
    let once = assert_settles(&redactor, &minimized);
    assert!(once.ends_with("secret:[REDACTED:secret]"), "{once:?}");
    // The input as found: unterminated placeholder fragments, each holding
    // `secret:`, far more of them than there are passes.
    let fragment = "CCCCCCCCC\u{3}CCCCBCCCCCCCCCCCCCCCCC[REDACTED:secret:";
    assert_settles(&redactor, &format!("{}ED:secre", fragment.repeat(40)));
}

fn adversarial_inputs() -> Vec<(&'static str, String)> {
    let repeat = |unit: &str| unit.repeat(MB / unit.len());
    vec![
        ("assignments", repeat("password=")),
        ("json assignments", repeat("\"token\":\"")),
        ("flags", repeat("--password ")),
        (
            "quoted value run",
            format!("\"password\": \"{}", "a".repeat(2 * MB)),
        ),
        (
            "unquoted value run",
            format!("token={}", "token=ab".repeat(MB / 8)),
        ),
        ("token prefixes", repeat("ghp_")),
        ("token prefix run", format!("ghp_{}", "A".repeat(2 * MB))),
        ("base64 run", "QUJD".repeat(MB)),
        ("jwt keywords", repeat("eyJ")),
        ("jwt headers", repeat("eyJhbGciOiJub25lIn0.")),
        (
            "begin without end",
            repeat("-----BEGIN RSA PRIVATE KEY-----\n"),
        ),
        (
            "begin then long body",
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}",
                "QUJD\n".repeat(MB / 5)
            ),
        ),
        ("urls", repeat("://a:")),
        ("url at signs", format!("://u:{}", "@".repeat(MB))),
        ("bearer", repeat("Bearer ")),
        ("bearer run", format!("Bearer {}", "a1".repeat(MB))),
        ("sk prefixes", repeat("sk-")),
        ("placeholder prefixes", repeat("[REDACTED:")),
        ("placeholders", repeat("[REDACTED:password]")),
        ("backslashes", format!("password=\"{}", "\\".repeat(MB))),
        (
            "mixed",
            repeat("password=\"eyJ\\\" ghp_AKIA://u:p@ -----BEGIN "),
        ),
        ("telegram leads", repeat("123456789:AA")),
        (
            "long digit runs before a lead keyword",
            format!("{}:AA", "1".repeat(MB)),
        ),
        (
            "mailchimp leads",
            repeat("0123456789abcdef0123456789abcdef-us"),
        ),
        (
            "hex run before a lead keyword",
            format!("{}-us1", "a".repeat(MB)),
        ),
        ("azure secret markers", repeat("abc8Q~")),
        ("short prefixes", repeat("sk_pat1/2/AC SK re_ cs_ ")),
        ("vault prefix run", format!("hvs.{}", "A".repeat(2 * MB))),
        ("connection strings", repeat("postgres://u:")),
        (
            "putty private lines",
            format!("Private-Lines: 9\n{}", "QUJD\n".repeat(MB / 5)),
        ),
        ("assignment keys", repeat("DD_API_KEY=")),
        ("placeholders and leads", repeat("[REDACTED:password]:AA")),
        (
            "values running into the next assignment",
            repeat("secret:CCCCCCCCC\u{3}CCCCCCCCCCCCCCCCCsecret:"),
        ),
        (
            "placeholder fragments",
            repeat("CCCCCCCCC\u{3}CCCCBCCCCCCCCCCCCCCCCC[REDACTED:secret:"),
        ),
    ]
}

#[test]
fn work_is_linear_on_adversarial_input() {
    let redactor = Redactor::builder()
        .secret("a", "AAAAAAAA")
        .expect("valid")
        .build();
    for (name, input) in adversarial_inputs() {
        ATTEMPTS.with(|c| c.set(0));
        EXTENDED_BYTES.with(|c| c.set(0));
        let output = redactor.redact_str(&input);
        let attempts = ATTEMPTS.with(|c| c.get());
        let extended = EXTENDED_BYTES.with(|c| c.get());
        // At most a few keyword occurrences start at each byte, and each runs
        // at most a handful of rules, in at most a few passes.
        assert!(attempts <= 4 * input.len(), "{name}: {attempts} attempts");
        // Extenders visit each byte at most once per rule and pass.
        assert!(
            extended <= 8 * input.len(),
            "{name}: {extended} bytes extended"
        );
        assert_eq!(
            redactor.redact_str(&output),
            output,
            "{name}: not idempotent"
        );
    }
}

#[test]
fn large_clean_input_is_borrowed() {
    let text = "The quick brown fox jumps over the lazy dog; token_count=5.\n".repeat(MB / 60);
    assert!(matches!(
        Redactor::new().redact_str(&text),
        Cow::Borrowed(_)
    ));
}

#[test]
fn many_secrets() {
    let mut builder = Redactor::builder();
    for i in 0..2000 {
        builder = builder
            .secret(&format!("s{i}"), &format!("value-{i:06}-xyz"))
            .expect("valid");
    }
    let redactor = builder.build();
    assert_eq!(redactor.secret_count(), 2000);
    check_with(
        &redactor,
        "a value-001999-xyz b value-000000-xyz",
        "a [REDACTED:secret:s1999] b [REDACTED:secret:s0]",
    );
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Redactor>();
    assert_send_sync::<crate::SharedRedactor>();
}
