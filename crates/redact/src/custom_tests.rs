//! Tests of user rules: they match in the same pass as the built-in rules,
//! replace only their capture group, honour case and entropy settings,
//! survive adding secrets later, and every mistake is a clear error.

use crate::rules::MAX_CUSTOM_MATCH;
use crate::scan::ATTEMPTS;
use crate::test_support::{ALNUM, HEX, check_with, fake};
use crate::{CustomRule, RedactError, Redactor, SharedRedactor};

fn acme() -> CustomRule {
    CustomRule::new("acme_key", ["acme_"], "[a-z0-9]{32}")
}

fn error_of(rule: CustomRule) -> String {
    match Redactor::builder().rule(rule) {
        Ok(_) => panic!("the rule was accepted"),
        Err(RedactError::InvalidRule { reason, .. }) => reason,
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn a_custom_rule_redacts_alongside_the_built_in_ones() {
    let redactor = Redactor::builder().rule(acme()).expect("valid").build();
    let key = fake("acme_", "abcdefghijklmnopqrstuvwxyz0123456789", 32);
    let token = fake("ghp_", ALNUM, 36);
    check_with(
        &redactor,
        &format!("k={key} t={token} password=hunter22"),
        "k=[REDACTED:acme_key] t=[REDACTED:github_token] password=[REDACTED:password]",
    );
    // Near misses: too short, glued to a longer run of the class is fine
    // (the pattern has no boundary), wrong case.
    check_with(&redactor, "acme_short", "acme_short");
    check_with(&redactor, &key.to_uppercase(), &key.to_uppercase());
}

#[test]
fn only_the_capture_group_is_replaced() {
    let rule = CustomRule::new(
        "internal_token",
        ["X-Internal-Token:"],
        r"[ \t]{0,4}([A-Za-z0-9]{16,64})",
    );
    let redactor = Redactor::builder().rule(rule).expect("valid").build();
    check_with(
        &redactor,
        &format!("X-Internal-Token: {}", fake("", ALNUM, 24)),
        "X-Internal-Token: [REDACTED:internal_token]",
    );
}

#[test]
fn case_insensitive_keywords_and_entropy() {
    let mut rule = CustomRule::new("corp_secret", ["corp-secret:"], r"[ ]?([A-Za-z0-9]{8,64})");
    rule.case_insensitive = true;
    rule.min_entropy = Some(3.0);
    let redactor = Redactor::builder().rule(rule).expect("valid").build();
    let value = fake("", ALNUM, 20);
    check_with(
        &redactor,
        &format!("CORP-SECRET: {value}"),
        "CORP-SECRET: [REDACTED:corp_secret]",
    );
    // Low entropy: a mask or a placeholder, not a secret.
    check_with(&redactor, "corp-secret: aaaabbbb", "corp-secret: aaaabbbb");
}

#[test]
fn custom_rules_alone_and_with_secrets_added_later() {
    let redactor = Redactor::builder()
        .without_default_patterns()
        .rule(acme())
        .expect("valid")
        .build();
    let key = fake("acme_", HEX, 32);
    check_with(
        &redactor,
        &format!("{key} password=hunter22"),
        "[REDACTED:acme_key] password=hunter22",
    );
    let shared = SharedRedactor::new(redactor);
    shared.add_secrets([("db", "hunter22")]).expect("valid");
    assert_eq!(
        shared.redact_str(&format!("{key} password=hunter22")),
        "[REDACTED:acme_key] password=[REDACTED:secret:db]"
    );
}

#[test]
fn a_custom_rule_wins_a_tie_with_a_built_in_rule() {
    let rule = CustomRule::new("corp_github", ["ghp_"], "[A-Za-z0-9]{36}");
    let redactor = Redactor::builder().rule(rule).expect("valid").build();
    let token = fake("ghp_", ALNUM, 36);
    check_with(&redactor, &token, "[REDACTED:corp_github]");
}

#[test]
fn placeholders_of_custom_rules_are_stable() {
    let redactor = Redactor::builder().rule(acme()).expect("valid").build();
    check_with(&redactor, "[REDACTED:acme_key]", "[REDACTED:acme_key]");
    check_with(
        &redactor,
        "password=[REDACTED:acme_key]",
        "password=[REDACTED:acme_key]",
    );
}

#[test]
fn invalid_rules_are_clear_errors() {
    let with = |f: fn(&mut CustomRule)| {
        let mut rule = acme();
        f(&mut rule);
        error_of(rule)
    };
    let reason = with(|r| r.kind = "Acme Key".into());
    assert!(reason.contains("lower-case"), "{reason}");
    let reason = with(|r| r.kind = String::new());
    assert!(reason.contains("kind"), "{reason}");
    let reason = with(|r| r.keywords.clear());
    assert!(reason.contains("at least one keyword"), "{reason}");
    let reason = with(|r| r.keywords = vec!["a".into()]);
    assert!(reason.contains("too short"), "{reason}");
    let reason = with(|r| r.keywords = vec!["   ".into()]);
    assert!(reason.contains("too short"), "{reason}");
    let reason = with(|r| r.pattern = "[a-z".into());
    assert!(reason.contains("not a valid regex"), "{reason}");
    let reason = with(|r| r.pattern = "[a-z]+".into());
    assert!(reason.contains("any length"), "{reason}");
    let reason = with(|r| r.pattern = "(?:ab)*x".into());
    assert!(reason.contains("any length"), "{reason}");
    let reason = with(|r| r.pattern = "[a-z]{1,5000}".into());
    assert!(reason.contains(&MAX_CUSTOM_MATCH.to_string()), "{reason}");
    let reason = with(|r| r.pattern = "(a)(b)(c)(d)(e)(f)(g)".into());
    assert!(reason.contains("capture groups"), "{reason}");
    let reason = with(|r| r.min_entropy = Some(f64::NAN));
    assert!(reason.contains("min_entropy"), "{reason}");
    let reason = with(|r| r.min_entropy = Some(9.0));
    assert!(reason.contains("min_entropy"), "{reason}");
    // The message names the rule and says what is wrong.
    let message = Redactor::builder()
        .rule(CustomRule::new("acme_key", ["acme_"], "[a-z]+"))
        .expect_err("unbounded")
        .to_string();
    assert!(
        message.starts_with("invalid redaction rule \"acme_key\":"),
        "{message}"
    );
}

#[test]
fn custom_rules_deserialize_strictly() {
    let rule: CustomRule = serde_json::from_str(
        r#"{"kind": "acme_key", "keywords": ["acme_"], "pattern": "[a-z0-9]{32}"}"#,
    )
    .expect("deserializes");
    assert_eq!(rule, acme());
    assert!(
        serde_json::from_str::<CustomRule>(
            r#"{"kind": "k", "keywords": ["ab"], "pattern": "x", "extra": 1}"#
        )
        .is_err()
    );
}

#[test]
fn custom_rules_keep_the_scan_linear() {
    // Bounded by construction: a keyword at every position and a pattern
    // that could run to its bound each time still costs one attempt per
    // occurrence.
    let rule = CustomRule::new("run", ["ab"], "[ab]{0,1000}c");
    let redactor = Redactor::builder().rule(rule).expect("valid").build();
    let input = "ab".repeat(32 * 1024);
    ATTEMPTS.with(|c| c.set(0));
    let output = redactor.redact_str(&input);
    assert_eq!(output, input);
    let attempts = ATTEMPTS.with(|c| c.get());
    assert!(attempts <= input.len(), "{attempts} attempts");
}
