//! Tests of the credential rules: for each rule, realistic positives and
//! the near misses it must leave alone; and checks on the rule table itself.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::rule_file::VALUE_BOUND;
use crate::rules::{self, RuleSet};
use crate::test_support::{ALNUM, B64URL, HEX, UPPER_B32, check, fake, unchanged};

// ---------------------------------------------------------------------------
// The table.

#[test]
fn every_rule_compiles_and_is_documented() {
    let table = rules::default_table();
    let set = RuleSet::compile(table).expect("rules compile");
    assert_eq!(set.rules.len(), table.len());
    for rule in table {
        assert!(rule.doc.len() > 40, "rule {} needs a real doc", rule.kind);
        assert!(
            !rule.keywords.is_empty(),
            "rule {} has no keyword",
            rule.kind
        );
        assert!(
            rule.kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "kind {} must be snake_case",
            rule.kind
        );
        for keyword in &rule.keywords {
            assert!(keyword.len() >= 2, "keyword {keyword:?} too short");
        }
    }
}

#[test]
fn every_match_starts_with_a_keyword() {
    // The completeness argument of the scanner rests on this; the pattern
    // is built so that it holds, and this checks the building.
    for rule in rules::default_table() {
        let pattern = rules::rule_pattern(rule);
        let flags = if rule.case_insensitive { "(?i:" } else { "(?:" };
        assert!(pattern.starts_with(flags), "{pattern}");
    }
}

#[test]
fn no_placeholder_matches_a_rule() {
    let set = rules::default_rules();
    let redactor = crate::Redactor::new();
    for kind in set.kinds() {
        let placeholder = format!("[REDACTED:{kind}]");
        for text in [
            placeholder.clone(),
            format!("x {placeholder} y"),
            format!("password={placeholder}"),
            format!("\"token\": \"{placeholder}\""),
            format!("Authorization: Bearer {placeholder}"),
            format!("postgres://user:{placeholder}@host/db"),
        ] {
            assert!(redactor.find(&text).is_empty(), "{text:?} matched");
        }
    }
}

// ---------------------------------------------------------------------------
// AWS.

#[test]
fn aws_access_key_id() {
    check(
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "aws_access_key_id = [REDACTED:aws_access_key_id]",
    );
    let temporary = fake("ASIA", UPPER_B32, 16);
    check(
        &format!("key {temporary}."),
        "key [REDACTED:aws_access_key_id].",
    );
    check(
        "\"AccessKeyId\":\"AKIAIOSFODNN7EXAMPLE\"",
        "\"AccessKeyId\":\"[REDACTED:aws_access_key_id]\"",
    );
}

#[test]
fn aws_access_key_id_near_misses() {
    unchanged("AKIAIOSFODNN7");
    unchanged("XAKIAIOSFODNN7EXAMPLE");
    unchanged("akiaiosfodnn7example");
    unchanged("timezone Asia/Kolkata and ASIA-PACIFIC region");
    unchanged("AKIA1111111111111111"); // 1 is not base32
}

#[test]
fn aws_secret_access_key() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    check(
        &format!("aws_secret_access_key = {secret}\n"),
        "aws_secret_access_key = [REDACTED:aws_secret_access_key]\n",
    );
    check(
        &format!("{{\"SecretAccessKey\": \"{secret}\", \"x\": 1}}"),
        "{\"SecretAccessKey\": \"[REDACTED:aws_secret_access_key]\", \"x\": 1}",
    );
    check(
        &format!("AWS_SECRET_ACCESS_KEY='{secret}'"),
        "AWS_SECRET_ACCESS_KEY='[REDACTED:aws_secret_access_key]'",
    );
}

#[test]
fn aws_secret_access_key_near_misses() {
    unchanged("aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}");
    unchanged("aws_secret_access_key: null");
    unchanged("the secret access key is stored in the vault");
}

// ---------------------------------------------------------------------------
// GitHub, GitLab.

#[test]
fn github_tokens() {
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        let token = fake(prefix, ALNUM, 36);
        check(
            &format!("token {token} end"),
            "token [REDACTED:github_token] end",
        );
        check(&token, "[REDACTED:github_token]");
    }
    let pat = format!("{}_{}", fake("github_pat_", ALNUM, 22), fake("", ALNUM, 59));
    check(
        &format!("GH_TOKEN=\"{pat}\""),
        "GH_TOKEN=\"[REDACTED:github_token]\"",
    );
}

#[test]
fn github_near_misses() {
    unchanged("ghp_short");
    unchanged(&format!("x{}", fake("ghp_", ALNUM, 36)));
    unchanged("commit e83c5163316f89bfbde7d9ab23ca2e25604af290");
    unchanged("github_pat_ is the prefix of fine-grained tokens");
}

#[test]
fn gitlab_tokens() {
    let token = fake("glpat-", B64URL, 20);
    check(
        &format!("PRIVATE-TOKEN: {token}"),
        "PRIVATE-TOKEN: [REDACTED:gitlab_token]",
    );
    let runner = fake("glrt-", B64URL, 24);
    check(
        &format!("runner {runner}"),
        "runner [REDACTED:gitlab_token]",
    );
    unchanged("glpat-short");
}

// ---------------------------------------------------------------------------
// Slack.

#[test]
fn slack_tokens() {
    let bot = format!("xoxb-1234567890-1234567890123-{}", fake("", ALNUM, 24));
    check(
        &format!("SLACK_BOT_TOKEN is {bot}"),
        "SLACK_BOT_TOKEN is [REDACTED:slack_token]",
    );
    for prefix in ["xoxp-", "xoxa-", "xoxr-"] {
        let token = format!("{prefix}2-{}", fake("", ALNUM, 30));
        check(&format!("[{token}]"), "[[REDACTED:slack_token]]");
    }
    unchanged("xoxb-abcdefghijklmnop");
    unchanged("xoxo, gossip girl");
}

#[test]
fn slack_webhook_urls() {
    let url = format!(
        "https://hooks.slack.com/services/T00000000/B00000000/{}",
        fake("", ALNUM, 24)
    );
    check(
        &format!("post to {url} now"),
        "post to https://hooks.slack.com/services/[REDACTED:slack_webhook_url] now",
    );
    unchanged("see https://hooks.slack.com/ for docs");
}

// ---------------------------------------------------------------------------
// Stripe, OpenAI, Anthropic, Google, Twilio, SendGrid, npm, PyPI.

#[test]
fn stripe_keys() {
    for prefix in ["sk_live_", "sk_test_", "rk_live_", "rk_test_"] {
        let key = fake(prefix, ALNUM, 24);
        check(
            &format!("stripe key {key}"),
            "stripe key [REDACTED:stripe_secret_key]",
        );
    }
    let webhook = fake("whsec_", ALNUM, 32);
    check(
        &format!("signing {webhook}"),
        "signing [REDACTED:stripe_webhook_secret]",
    );
}

#[test]
fn stripe_publishable_keys_are_public() {
    unchanged(&fake("pk_live_", ALNUM, 24));
    unchanged(&fake("pk_test_", ALNUM, 24));
    unchanged(&format!("task_live_{}", fake("", ALNUM, 24)));
}

#[test]
fn openai_and_anthropic_keys() {
    let legacy = fake("sk-", ALNUM, 48);
    check(
        &format!("OPENAI_API_KEY={legacy}"),
        "OPENAI_API_KEY=[REDACTED:openai_api_key]",
    );
    let project = fake("sk-proj-", B64URL, 156);
    check(&format!("key: {project}"), "key: [REDACTED:openai_api_key]");
    let anthropic = format!("{}AA", fake("sk-ant-api03-", B64URL, 93));
    check(
        &format!("x-api-key: {anthropic}"),
        "x-api-key: [REDACTED:anthropic_api_key]",
    );
    let admin = fake("sk-ant-admin01-", B64URL, 93);
    check(&admin, "[REDACTED:anthropic_api_key]");
}

#[test]
fn openai_near_misses() {
    unchanged("pip install sk-learn-compatible-estimator-wrapper");
    unchanged(&format!("task-{}", fake("", ALNUM, 40)));
    unchanged("sk-short");
    unchanged("risk-assessment-for-the-quarterly-report-2024");
}

#[test]
fn google_api_key() {
    let key = fake("AIza", B64URL, 35);
    check(
        &format!("https://maps.googleapis.com/maps/api/js?key={key}&v=3"),
        "https://maps.googleapis.com/maps/api/js?key=[REDACTED:google_api_key]&v=3",
    );
    unchanged("AIzaShort");
}

#[test]
fn twilio_api_key() {
    let key = fake("SK", HEX, 32);
    check(
        &format!("TWILIO_API_KEY {key}"),
        "TWILIO_API_KEY [REDACTED:twilio_api_key]",
    );
    unchanged("SKIP this step");
    unchanged(&format!("ASK{}", fake("", HEX, 32)));
    unchanged("SKffffffffffffffffffffffffffffffff");
}

#[test]
fn sendgrid_api_key() {
    let key = format!("{}.{}", fake("SG.", B64URL, 22), fake("", B64URL, 43));
    check(
        &format!("SENDGRID_API_KEY={key}"),
        "SENDGRID_API_KEY=[REDACTED:sendgrid_api_key]",
    );
    unchanged("SG.short.x");
}

#[test]
fn npm_token() {
    let token = fake("npm_", ALNUM, 36);
    check(
        &format!("//registry.npmjs.org/:_authToken={token}"),
        "//registry.npmjs.org/:_authToken=[REDACTED:npm_token]",
    );
    unchanged("npm_config_cache=/home/u/.npm npm_package_version=1.2.3");
    unchanged("npm_lifecycle_event_name_that_is_long_enough_ok");
}

#[test]
fn pypi_token() {
    let token = fake("pypi-AgEIcHlwaS5vcmc", B64URL, 120);
    check(
        &format!("password = {token}"),
        "password = [REDACTED:pypi_token]",
    );
    unchanged("pip install pypi-simple");
}

// ---------------------------------------------------------------------------
// Private keys.

fn pem(label: &str, lines: usize) -> String {
    let mut body = String::new();
    for i in 0..lines {
        body.push_str(&fake(&format!("{i}"), ALNUM, 64));
        body.push('\n');
    }
    format!("-----BEGIN {label}-----\n{body}-----END {label}-----")
}

#[test]
fn private_key_blocks() {
    for label in [
        "RSA PRIVATE KEY",
        "PRIVATE KEY",
        "EC PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "DSA PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
    ] {
        let key = pem(label, 5);
        check(
            &format!("key:\n{key}\nafter"),
            "key:\n[REDACTED:private_key]\nafter",
        );
    }
}

#[test]
fn private_key_with_headers_and_in_json() {
    let encrypted = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{}\n\n{}\n-----END RSA PRIVATE KEY-----",
        fake("", HEX, 32),
        fake("", ALNUM, 64)
    );
    check(&format!("{encrypted}\n"), "[REDACTED:private_key]\n");

    let key = pem("PRIVATE KEY", 3);
    let json = serde_json::json!({"type": "service_account", "private_key": key}).to_string();
    let redacted = crate::Redactor::new().redact_str(&json).into_owned();
    let parsed: serde_json::Value = serde_json::from_str(&redacted).expect("still JSON");
    assert_eq!(parsed["private_key"], "[REDACTED:private_key]");
    assert_eq!(parsed["type"], "service_account");
}

#[test]
fn truncated_private_key_is_redacted_up_to_its_body() {
    let body = fake("", ALNUM, 64);
    check(
        &format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n{body}\n2024-01-01 INFO next line"),
        "[REDACTED:private_key]\n2024-01-01 INFO next line",
    );
    check(
        &format!("\"-----BEGIN OPENSSH PRIVATE KEY-----\\n{body}\\n{body}\" rest"),
        "\"[REDACTED:private_key]\" rest",
    );
}

#[test]
fn public_blocks_are_left_alone() {
    unchanged(&pem("CERTIFICATE", 3));
    unchanged(&pem("PUBLIC KEY", 3));
    unchanged(&pem("PGP PUBLIC KEY BLOCK", 3));
    unchanged("-----BEGIN PRIVATE KEY (but not really)");
}

// ---------------------------------------------------------------------------
// JWTs and authorization headers.

fn jwt(header: &str) -> String {
    let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"1234567890","name":"Jane","iat":1516239022}"#);
    let signature = fake("", B64URL, 43);
    format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode(header))
}

#[test]
fn jwts() {
    let token = jwt(r#"{"alg":"HS256","typ":"JWT"}"#);
    check(
        &format!("id_token {token} ok"),
        "id_token [REDACTED:jwt] ok",
    );
    check(&format!("?jwt={token}&x=1"), "?jwt=[REDACTED:jwt]&x=1");
    check(&format!("\"{token}\""), "\"[REDACTED:jwt]\"");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
    );
    check(&format!("t={unsigned} end"), "t=[REDACTED:jwt] end");
}

#[test]
fn jwt_near_misses() {
    // A base64 JSON object that is not a JWT header.
    let not_header = format!("{}.abc.def", URL_SAFE_NO_PAD.encode(r#"{"foo":1}"#));
    unchanged(&not_header);
    unchanged("eyJ is how base64 JSON starts");
    unchanged("version 1.2.3 and 10.0.0.1");
    unchanged(&format!("x{}", jwt(r#"{"alg":"HS256"}"#)));
}

#[test]
fn bearer_tokens() {
    let token = fake("", ALNUM, 32);
    check(
        &format!("Authorization: Bearer {token}"),
        "Authorization: Bearer [REDACTED:bearer_token]",
    );
    check(
        &format!("{{\"Authorization\": \"Bearer {token}\"}}"),
        "{\"Authorization\": \"Bearer [REDACTED:bearer_token]\"}",
    );
    let jwt = jwt(r#"{"alg":"RS256"}"#);
    check(
        &format!("authorization: bearer {jwt}"),
        "authorization: bearer [REDACTED:bearer_token]",
    );
    check(
        "curl -H 'Authorization: Bearer abc123def456'",
        "curl -H 'Authorization: Bearer [REDACTED:bearer_token]'",
    );
}

#[test]
fn bearer_near_misses() {
    unchanged("\"token_type\": \"Bearer\", \"expires_in\": 3600");
    unchanged("the bearer instruments were transferred");
    unchanged("WWW-Authenticate: Bearer realm=\"api\"");
    unchanged("Bearer ********");
}

#[test]
fn basic_credentials() {
    let credentials = STANDARD.encode("admin:correct-horse");
    check(
        &format!("Authorization: Basic {credentials}"),
        "Authorization: Basic [REDACTED:basic_auth]",
    );
    unchanged("basic usage of the Basic configuration");
    unchanged(&format!("Basic {}", STANDARD.encode("testing123")));
}

// ---------------------------------------------------------------------------
// URLs with credentials.

#[test]
fn url_passwords() {
    for (input, expected) in [
        (
            "postgres://app:s3cr3t@db.internal:5432/app",
            "postgres://app:[REDACTED:url_password]@db.internal:5432/app",
        ),
        (
            "mysql://root:hunter2@127.0.0.1/test",
            "mysql://root:[REDACTED:url_password]@127.0.0.1/test",
        ),
        (
            "mongodb+srv://admin:P%40ssw0rd@cluster0.mongodb.net/?retryWrites=true",
            "mongodb+srv://admin:[REDACTED:url_password]@cluster0.mongodb.net/?retryWrites=true",
        ),
        (
            "redis://:verysecret@cache:6379/0",
            "redis://:[REDACTED:url_password]@cache:6379/0",
        ),
        (
            "amqp://guest:guest@rabbit:5672/",
            "amqp://guest:[REDACTED:url_password]@rabbit:5672/",
        ),
        (
            "fetch https://user:pa:ss@w0rd@example.com/path done",
            "fetch https://user:[REDACTED:url_password]@example.com/path done",
        ),
        (
            "{\"url\":\"https://bot:tok3n@api.example.com\"}",
            "{\"url\":\"https://bot:[REDACTED:url_password]@api.example.com\"}",
        ),
    ] {
        check(input, expected);
    }
}

#[test]
fn url_near_misses() {
    unchanged("https://example.com:8080/path?a=b@c");
    unchanged("ssh://git@github.com/org/repo.git");
    unchanged("postgres://user:${DB_PASSWORD}@db/app");
    unchanged("redis://:****@cache:6379");
    unchanged("http://[::1]:8080/health");
    unchanged("mailto:someone@example.com");
}

// ---------------------------------------------------------------------------
// Generic assignments.

#[test]
fn password_assignments() {
    for (input, expected) in [
        ("password=hunter22", "password=[REDACTED:password]"),
        (
            "DB_PASSWORD=hunter22 next",
            "DB_PASSWORD=[REDACTED:password] next",
        ),
        (
            "{\"password\": \"hunter22\"}",
            "{\"password\": \"[REDACTED:password]\"}",
        ),
        (
            "{\"password\":\"hu\\\"nter\"}",
            "{\"password\":\"[REDACTED:password]\"}",
        ),
        (
            "password: hunter22\nuser: bob",
            "password: [REDACTED:password]\nuser: bob",
        ),
        ("passwd = 'hunter 22'", "passwd = '[REDACTED:password]'"),
        (
            "<password>hunter22</password>",
            "<password>[REDACTED:password]</password>",
        ),
        (
            "Server=db;User Id=sa;Password=Str0ng!;",
            "Server=db;User Id=sa;Password=[REDACTED:password];",
        ),
        (
            "?user=bob&password=hunter22&x=1",
            "?user=bob&password=[REDACTED:password]&x=1",
        ),
        (
            "mysql --password hunter22 -h db",
            "mysql --password [REDACTED:password] -h db",
        ),
        (
            "login --password=\"hunter 22\"",
            "login --password=\"[REDACTED:password]\"",
        ),
        (
            "db.password := 'abcd'",
            "db.password := '[REDACTED:password]'",
        ),
        (
            "'passphrase' => 'open sesame'",
            "'passphrase' => '[REDACTED:password]'",
        ),
        ("DB_PWD=S3cret!x", "DB_PWD=[REDACTED:password]"),
        ("password: 1234", "password: [REDACTED:password]"),
        ("password=$ecret99", "password=[REDACTED:password]"),
        ("password=C:\\\\Users\\\\x", "password=[REDACTED:password]"),
    ] {
        check(input, expected);
    }
}

#[test]
fn password_inside_json_escaped_json() {
    // A JSON request body held in a JSON string: the quotes are escaped.
    check(
        r#"{"body":"{\"password\":\"hunter22\",\"user\":\"bob\"}"}"#,
        r#"{"body":"{\"password\":\"[REDACTED:password]\",\"user\":\"bob\"}"}"#,
    );
    check(
        r#"{"msg":"login password=hunter22\nnext"}"#,
        r#"{"msg":"login password=[REDACTED:password]\nnext"}"#,
    );
}

#[test]
fn password_near_misses() {
    for input in [
        "password: ${PASSWORD}",
        "password: $DB_PASSWORD",
        "password = {{ vault_password }}",
        "password: null",
        "password: None",
        "\"password\": true",
        "password: ****",
        "password=",
        "password_hint=abc123456",
        "passwordless: enabled",
        "PWD=/home/user/project",
        "pwd: ~/src",
        "cat /etc/passwd: permission denied",
        "\"password\": 12345678",
        "password = get_password()",
        "password = os.getenv(\"DB\")",
        "password: <your-password>",
        "reset your password now",
        "\"password\": [1234, 5678]",
        "password={\"a\":1}",
    ] {
        unchanged(input);
    }
}

#[test]
fn token_secret_and_key_assignments() {
    for (input, expected) in [
        ("access_token=abcdef123456", "access_token=[REDACTED:token]"),
        (
            "GITHUB_TOKEN: 'abc123def456'",
            "GITHUB_TOKEN: '[REDACTED:token]'",
        ),
        (
            "x-auth-token: 7f8e9d0c1b2a",
            "x-auth-token: [REDACTED:token]",
        ),
        (
            "\"client_secret\": \"s3cr3t-value\"",
            "\"client_secret\": \"[REDACTED:secret]\"",
        ),
        ("JWT_SECRET=averylongsecret", "JWT_SECRET=[REDACTED:secret]"),
        ("X-Api-Key: abcd1234efgh", "X-Api-Key: [REDACTED:api_key]"),
        (
            "apiKey = \"abcd1234efgh\"",
            "apiKey = \"[REDACTED:api_key]\"",
        ),
        (
            "accessKey: q1w2e3r4t5y6",
            "accessKey: [REDACTED:access_key]",
        ),
        (
            "SECRET_KEY = 'django-insecure-abc123'",
            "SECRET_KEY = '[REDACTED:secret_key]'",
        ),
        (
            "private_key=0x4c0883a69102937d6231471b5dbb6204fe51296170827",
            "private_key=[REDACTED:private_key]",
        ),
        (
            "gh auth login --token abcdef123456",
            "gh auth login --token [REDACTED:token]",
        ),
        (
            "tool --api-key=abcdef123456",
            "tool --api-key=[REDACTED:token]",
        ),
    ] {
        check(input, expected);
    }
}

#[test]
fn token_near_misses() {
    for input in [
        "token_count=12",
        "token_count: 12345678",
        "max_tokens: 4096",
        "\"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 7}",
        "token: 1234567890",
        "token=$GITHUB_TOKEN",
        "secret: true",
        "secret: short",
        "\"tokenizer\": \"cl100k_base\"",
        "next_token: none",
        "api_key: undefined",
        "request_id=550e8400-e29b-41d4-a716-446655440000",
        "version: v1.2.3",
        "sha: e83c5163316f89bfbde7d9ab23ca2e25604af290",
    ] {
        unchanged(input);
    }
}

#[test]
fn assignments_through_ansi_colours() {
    // What tracing's formatter prints for a field when colours are on.
    check(
        "\x1b[3mpassword\x1b[0m\x1b[2m=\x1b[0m\"hunter22\"",
        "\x1b[3mpassword\x1b[0m\x1b[2m=\x1b[0m\"[REDACTED:password]\"",
    );
}

#[test]
fn long_values_are_redacted_whole() {
    // Longer than the regex's bounded repetition: the extender takes the rest.
    let long = fake("", ALNUM, 5000);
    check(&format!("token={long} next"), "token=[REDACTED:token] next");
    check(
        &format!("\"token\": \"{long}\", "),
        "\"token\": \"[REDACTED:token]\", ",
    );
    check(&format!("Bearer {long}."), "Bearer [REDACTED:bearer_token]");
    let escaped = format!("{}\\\"{}", fake("", ALNUM, 300), fake("", ALNUM, 300));
    check(
        &format!("\"secret\": \"{escaped}\""),
        "\"secret\": \"[REDACTED:secret]\"",
    );
}

#[test]
fn value_extender_agrees_with_an_unbounded_regex() {
    // The extender must continue a value exactly as the regex would if its
    // repetition had no upper bound.
    let rule = rules::default_table()
        .iter()
        .find(|r| r.kind == "token" && r.keywords == ["token"])
        .expect("token rule");
    let unbounded = rules::rule_pattern(rule)
        .replace(&format!(",{VALUE_BOUND}}}"), ",}")
        .replace(&format!(",{}}}", VALUE_BOUND - 1), ",}");
    let regex = rules::compile_pattern(&unbounded).expect("unbounded compiles");
    let redactor = crate::Redactor::new();
    // Mostly value characters, so that values often outgrow the bound, and
    // now and then a delimiter of one form or another.
    let fillers = ["a", "Z9", "é", "\\\\", "\\/", "x\\y", "=", "{", "("];
    let delimiters = [" ", "'", "\"", ",", "\\n", "\\\"", "\\", "<", "\n", "]"];
    for seed in 0..300u64 {
        let mut value = String::new();
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for _ in 0..400 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let piece = if state % 97 == 0 {
                delimiters[(state / 97 % delimiters.len() as u64) as usize]
            } else {
                fillers[(state % fillers.len() as u64) as usize]
            };
            value.push_str(piece);
        }
        for opener in ["token=", "token: \"", "token='", "token: \\\"", "<token>"] {
            let text = format!("{opener}{value}");
            let mut caps = regex.create_captures();
            regex.captures(text.as_bytes(), &mut caps);
            let expected = (1..caps.group_len()).find_map(|g| caps.get_group(g));
            let found = redactor.find(&text);
            if let (Some(span), [finding]) = (expected, found.as_slice())
                && finding.kind == "token"
            {
                assert_eq!(finding.start, span.start, "{text:?}");
                // The cut may widen by a JSON escape or a char, no more.
                assert!(
                    finding.end >= span.end && finding.end <= span.end + 6,
                    "extender stopped at {} instead of {} in {text:?}",
                    finding.end,
                    span.end
                );
            }
        }
    }
}

#[test]
fn github_and_npm_checksums() {
    // A body of lower-case letters alone is no random token, unless its
    // checksum says it is one.
    let body = "abcdefghijklmnopqrstuvwxyzabcd";
    let sum = crate::validators::base62_checksum(body.as_bytes());
    let sum = std::str::from_utf8(&sum).expect("base62 is ASCII");
    for prefix in ["ghp_", "npm_"] {
        check_with_default(&format!("{prefix}{body}{sum}"), true);
        check_with_default(&format!("{prefix}{body}zzzzzz"), false);
    }
    // A random-looking body is redacted whether or not its checksum holds:
    // a mistyped or made-up token is not proven harmless.
    let token = format!("ghp_{}", fake("", ALNUM, 36));
    let mut broken = token.clone();
    broken.pop();
    broken.push(if token.ends_with('A') { 'B' } else { 'A' });
    check(&broken, "[REDACTED:github_token]");
}

fn check_with_default(input: &str, redacted: bool) {
    let kind = if input.starts_with("ghp_") {
        "github_token"
    } else {
        "npm_token"
    };
    if redacted {
        check(input, &format!("[REDACTED:{kind}]"));
    } else {
        unchanged(input);
    }
}

mod tail_gate {
    //! The gates before a rule's regex (two bytes, leading runs) never
    //! turn away a keyword occurrence the regex would have matched.

    use proptest::prelude::*;
    use regex_automata::{Anchored, Input};

    use crate::rules::{self, compile_pattern};

    /// The rules whose keywords are common words or fragments, tried
    /// most often on prose, logs and code.
    const BUSY: &[&str] = &[
        "password_assignment",
        "token_assignment",
        "secret_assignment",
        "api_key_assignment",
        "airtable_pat",
        "bearer_token",
        "basic_auth",
        "url_password",
        "key_in_prose",
        "password_flag",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn every_tail_match_passes_the_gate(
            text in "[ \t\"'=:>\\\\a-fA-F0-9._/@-]{2,48}|[ \t]{1,3}[a-zA-Z0-9+/=._~-]{4,12}[ .]?",
            which in 0..BUSY.len(),
        ) {
            let set = rules::default_rules();
            let rule = set
                .rules
                .iter()
                .find(|r| r.rule.id == BUSY[which])
                .expect("a busy rule is built in");
            let tail = compile_pattern(&rule.rule.tail).expect("built-in tails compile");
            let input = Input::new(text.as_bytes()).anchored(Anchored::Yes);
            if tail.is_match(input) {
                let b = text.as_bytes();
                prop_assert!(rule.tail_may_begin(b[0], b[1]), "{} turned away {:?}", BUSY[which], text);
                prop_assert!(rules::runs_may_begin(&rule.leading_runs, b), "{} turned away {:?}", BUSY[which], text);
            }
        }
    }

    #[test]
    fn a_common_word_after_a_keyword_is_turned_away() {
        let set = rules::default_rules();
        let rule = |id: &str| {
            set.rules
                .iter()
                .find(|r| r.rule.id == id)
                .expect("the rule is built in")
                .clone()
        };
        let token = rule("token_assignment");
        assert!(!token.tail_may_begin(b' ', b'c'), "token count");
        assert!(!token.tail_may_begin(b'i', b'z'), "tokenizer");
        assert!(token.tail_may_begin(b' ', b'='), "token = ...");
        assert!(token.tail_may_begin(b'"', b':'), "\"token\": ...");
        assert!(token.tail_may_begin(b'=', b'a'), "token=abc");
        let bearer = rule("bearer_token");
        assert!(bearer.tail_may_begin(b' ', b'e'), "bearer eyJ...");
        assert!(!bearer.tail_may_begin(b'x', b'y'), "bearerxy");
        assert!(!bearer.tail_may_begin(b' ', b'\''), "bearer '");
        // `pattern`, `path`: a personal access token is `pat` and 14
        // letters or digits first.
        let airtable = rule("airtable_pat");
        assert!(!rules::runs_may_begin(&airtable.leading_runs, b"tern ask"));
        assert!(rules::runs_may_begin(
            &airtable.leading_runs,
            b"0123456789abcd."
        ));
        // `bearer task`: a bearer token is eight bytes or more.
        let bearer = rule("bearer_token");
        assert!(!rules::runs_may_begin(&bearer.leading_runs, b" task was"));
        assert!(rules::runs_may_begin(&bearer.leading_runs, b"  eyJhbGciOi"));
    }
}
