//! The credential rules: a data table saying what each credential looks like,
//! compiled once per process into a keyword prefilter and one anchored regex
//! per rule.
//!
//! # How a rule is matched, and why it is both complete and linear
//!
//! A rule is `{kind, keywords, tail, validator, extend}`. Its regex is built as
//! `(?:KEYWORD|KEYWORD|..)(?:TAIL)`, so **every match begins with one of the
//! rule's keywords**; this holds by construction, not by convention.
//!
//! The scanner runs one Aho-Corasick automaton (ASCII case-insensitive, all
//! overlapping matches) over the input to find every keyword occurrence, and
//! for each occurrence runs the rule's regex *anchored at that position* over
//! the rest of the input (look-behind assertions still see the bytes before
//! it). Since every match starts at a keyword occurrence and every occurrence
//! is tried, no match can be missed: this is exact, not a window heuristic,
//! and it needs no argument about how long a match can be.
//!
//! The cost of one anchored attempt is the number of bytes the regex examines
//! before it succeeds or dies. To keep the whole scan linear in the input:
//!
//! - Tails use bounded repetitions (`{8,512}`), so an attempt examines a
//!   bounded number of bytes, whatever follows. A value longer than the bound
//!   is then continued by the rule's `extend` function, which runs only after
//!   the match was accepted; and a later keyword occurrence that falls inside
//!   a match the same rule already accepted is not tried again. So each rule
//!   extends over each input byte at most once.
//! - The few tails with an unbounded repetition (JWTs) only start where the
//!   previous byte cannot belong to the same run (`not_after`), so each run of
//!   token characters is scanned by a bounded number of attempts. Each such
//!   rule says so in its documentation.
//!
//! Placeholders (`[REDACTED:KIND]`) contain no assignment, quote or token
//! shape that a rule accepts, and the scanner additionally never matches
//! inside a placeholder it produced; the redactor also rescans its own output
//! until nothing new turns up. Together these make redaction idempotent.
//!
//! No rule span contains an unescaped `"` and no span cuts a JSON escape in
//! half (the scanner enforces both for every rule), so redacting JSON text
//! leaves valid JSON.
//!
//! # Adding a rule
//!
//! Add an entry to [`DEFAULT_RULES`]: a `kind` (snake_case, it names the
//! placeholder), a `doc` saying what it matches and why the regex looks the
//! way it does, the literal `keywords` every match starts with (as specific
//! as possible: they decide how often the regex runs), a `tail` with bounded
//! repetitions, and a `validator` where the shape alone would match ordinary
//! text. Put a capture group around the part to replace if the match also
//! holds context to keep (a key, a scheme). Then add a positive case and
//! near misses to `rules_tests.rs`.

use std::sync::{Arc, OnceLock};

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use regex_automata::meta;
use regex_automata::util::syntax;

/// The text every placeholder starts with.
pub(crate) const PLACEHOLDER_PREFIX: &str = "[REDACTED:";

/// The most capture groups a rule tail may use; checked when rules compile.
pub(crate) const MAX_GROUPS: usize = 7;

/// A match of a rule, as its validator and extender see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<'h> {
    /// The whole input being scanned.
    pub hay: &'h [u8],
    /// Where the regex match ends.
    pub match_end: usize,
    /// Start of the part to replace: the first capture group that took part
    /// in the match, or the whole match when the tail has no group.
    pub start: usize,
    /// End of the part to replace.
    pub end: usize,
    /// Which capture group `start..end` came from (0 for the whole match).
    pub group: usize,
}

impl<'h> Hit<'h> {
    /// The bytes that would be replaced.
    pub(crate) fn secret(&self) -> &'h [u8] {
        self.hay.get(self.start..self.end).unwrap_or_default()
    }
}

/// Decides whether a regex match really is a credential.
pub(crate) type Validator = fn(&Hit<'_>) -> bool;
/// Continues a match past the regex's bounded repetition; returns the new end
/// of the part to replace, or `None` to reject the match.
pub(crate) type Extender = fn(&Hit<'_>) -> Option<usize>;

/// One credential rule.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The placeholder kind: a match is replaced by `[REDACTED:kind]`.
    pub kind: &'static str,
    /// What the rule matches and why its regex looks the way it does. Only
    /// the tests read it (every rule must have one); it is the rule's
    /// documentation, kept as data so that a generated rule list can use it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub doc: &'static str,
    /// Every match begins with one of these. They double as the prefilter:
    /// the regex runs only where a keyword occurs.
    pub keywords: &'static [&'static str],
    /// Whether the keyword may appear in any letter case (`Password=`,
    /// `BEARER`); otherwise it must appear exactly as written (`ghp_`).
    pub case_insensitive: bool,
    /// A match is not tried when the byte just before the keyword satisfies
    /// this: it keeps `task-...` from looking like `sk-...`.
    pub not_after: Option<fn(u8) -> bool>,
    /// Regex (bytes, Unicode off) for what follows the keyword.
    pub tail: &'static str,
    pub validator: Option<Validator>,
    pub extend: Option<Extender>,
}

// Building blocks for assignment-shaped rules (`key = value`, `"key": "value"`,
// `key: value`, `<key>value</key>`). They are macros so that the rule table
// stays a `static` of plain string literals.

/// Up to three ANSI colour sequences, which `tracing` puts around field names
/// and the `=` after them when colours are on.
macro_rules! ansi {
    () => {
        r"(?:\x1b\[[0-9;]{0,8}m){0,3}"
    };
}

/// The end of a key (an optional closing quote, possibly JSON-escaped) and an
/// assignment operator. The key must end right at the keyword, so that
/// `token_count: 5` or `password_hint=...` are not mistaken for secrets.
macro_rules! assign {
    () => {
        concat!(
            r#"(?:\\?["'])?"#,
            ansi!(),
            r"[ \t]{0,16}",
            ansi!(),
            r"(?::=|=>|:|=)",
            ansi!(),
            r"[ \t]{0,16}"
        )
    };
}

/// The value of an assignment, in its four forms; each form is one capture
/// group (see `GROUP_*`).
///
/// The forms are shaped so that cutting a value out of JSON text leaves
/// valid JSON: escapes are consumed as whole pairs, so a span never ends
/// between a backslash and the character it escapes; no form crosses an
/// unescaped `"` (the end of a JSON string); and a double-quoted value may
/// not start with what follows the closing quote of a JSON string (`,` `:`
/// `]` `}` or whitespace), so that `["password: ", 12345]` is not read as a
/// quoted value. An unquoted value may not start with `[`, `{` or `(` (JSON
/// arrays and objects, YAML flow collections, expressions), and stops at the
/// delimiters of query strings, connection strings and logs (`,` `;` `&`
/// whitespace).
macro_rules! value {
    ($min:literal, $rest:literal) => {
        concat!(
            r#"\\"((?:[^"\\\r\n]|\\[^"\r\n]){"#,
            $min,
            r#",256})"#,
            r#"|"((?:[^"\\\s,:\]}]|\\[^\r\n])(?:[^"\\\r\n]|\\[^\r\n]){"#,
            $rest,
            r#",255})"#,
            r#"|'((?:[^'"\\\r\n]|\\[^\r\n]){"#,
            $min,
            r#",256})"#,
            r#"|((?:[^\s"'`,;&<>()\[\]{}\\]|\\[^\s"nrt])(?:[^\s"'`,;&<>)\]}\\]|\\[^\s"nrt]){"#,
            $rest,
            r#",255})"#
        )
    };
}

/// `key = value` in any of the forms above, or `<key>value` in XML.
macro_rules! assignment_tail {
    ($min:literal, $rest:literal) => {
        concat!(
            "(?:",
            assign!(),
            "(?:",
            value!($min, $rest),
            ")",
            r#"|>((?:[^<"\\\r\n]|\\[^\r\n]){"#,
            $min,
            r#",256})"#,
            ")"
        )
    };
}

/// `--flag value` or `--flag=value` on a command line.
macro_rules! flag_tail {
    ($min:literal, $rest:literal) => {
        concat!("(?:[ \t]{1,16}|=)(?:", value!($min, $rest), ")")
    };
}

/// Capture groups of `value!` and `assignment_tail!`, in order.
pub(crate) const GROUP_ESCAPED_QUOTED: usize = 1;
pub(crate) const GROUP_DOUBLE_QUOTED: usize = 2;
pub(crate) const GROUP_SINGLE_QUOTED: usize = 3;
pub(crate) const GROUP_UNQUOTED: usize = 4;
pub(crate) const GROUP_XML: usize = 5;

/// The default rules, in priority order: when two rules match exactly the
/// same span, the earlier one names it. Specific services come first, then
/// structural shapes, then generic assignments.
pub(crate) static DEFAULT_RULES: &[Rule] = &[
    Rule {
        kind: "aws_access_key_id",
        doc: "AWS access key ids: a four-letter prefix naming the key type (AKIA long-term, ASIA \
              temporary, ABIA/ACCA service-specific) and 16 base32 characters. Case-sensitive \
              because AWS writes them in upper case and lower-case look-alikes are words.",
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Z2-7]{16}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "aws_secret_access_key",
        doc: "AWS secret access keys, which have no prefix of their own, so they are found by \
              their key name (`aws_secret_access_key=`, `\"SecretAccessKey\": ` in STS \
              responses) followed by exactly 40 base64 characters.",
        keywords: &[
            "secret_access_key",
            "secretaccesskey",
            "secret-access-key",
            "aws_secret_key",
        ],
        case_insensitive: true,
        not_after: None,
        tail: concat!(
            assign!(),
            r#"(?:\\?["'])?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#
        ),
        validator: None,
        extend: None,
    },
    Rule {
        kind: "github_token",
        doc: "GitHub tokens with a type prefix: personal (ghp_), OAuth (gho_), user-to-server \
              (ghu_), server-to-server (ghs_) and refresh (ghr_) tokens, 36 base62 characters \
              today; GitHub reserves lengths up to 255, hence the open bound.",
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9]{30,251}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "github_token",
        doc: "GitHub fine-grained personal access tokens: github_pat_ then 22 and 59 base62 \
              characters joined by an underscore.",
        keywords: &["github_pat_"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9_]{22,244}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "gitlab_token",
        doc: "GitLab tokens, recognised by their documented prefixes (personal, pipeline \
              trigger, runner, deploy, feed, SCIM/OAuth, CI job, incoming mail, agent).",
        keywords: &[
            "glpat-", "glptt-", "glrt-", "gldt-", "glft-", "glsoat-", "glcbt-", "glimt-",
            "glagent-", "gloas-",
        ],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9_-]{20,250}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "slack_token",
        doc: "Slack tokens: bot (xoxb-), user (xoxp-), app (xoxa-), refresh (xoxr-, xoxe.), \
              legacy session (xoxs-) and config (xoxe-) tokens. Real ones always contain the \
              numeric team and user ids, so a digit is required.",
        keywords: &[
            "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xoxe.",
        ],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9.-]{10,250}",
        validator: Some(has_digit),
        extend: None,
    },
    Rule {
        kind: "slack_webhook_url",
        doc: "Slack incoming webhook, workflow and trigger URLs: whoever holds the path can \
              post to the channel, so the path after the host is replaced.",
        keywords: &["hooks.slack.com/"],
        case_insensitive: true,
        not_after: None,
        tail: r"(?:services|workflows|triggers)/([A-Za-z0-9+/_-]{8,256})",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "stripe_secret_key",
        doc: "Stripe secret and restricted keys, live and test (test keys still read and write \
              the account's test data). Publishable keys (pk_live_, pk_test_) are left alone on \
              purpose: Stripe designs them to be embedded in web pages, and redacting them would \
              only damage recordings.",
        keywords: &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9]{10,247}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "stripe_webhook_secret",
        doc: "Stripe webhook signing secrets (whsec_), which let anyone forge webhook calls.",
        keywords: &["whsec_"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9+/=]{20,247}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "anthropic_api_key",
        doc: "Anthropic API and admin keys (sk-ant-api03-..., sk-ant-admin01-...). Listed before \
              the OpenAI rule, whose sk- prefix they share, so that the more specific kind names \
              the match.",
        keywords: &["sk-ant-"],
        case_insensitive: false,
        not_after: Some(is_base64url),
        tail: r"[A-Za-z0-9_-]{20,300}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "openai_api_key",
        doc: "OpenAI keys: legacy sk- plus 48 base62 characters, and project, service-account \
              and admin keys (sk-proj-, sk-svcacct-, sk-admin-) with longer URL-safe bodies. The \
              prefix is common in kebab-case words, so the body must mix upper case, lower case \
              and digits, as random keys always do.",
        keywords: &["sk-"],
        case_insensitive: false,
        not_after: Some(is_base64url),
        tail: r"[A-Za-z0-9_-]{20,300}",
        validator: Some(openai_key),
        extend: None,
    },
    Rule {
        kind: "google_api_key",
        doc: "Google API keys: AIza and 35 URL-safe base64 characters.",
        keywords: &["AIza"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9_-]{35}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "twilio_api_key",
        doc: "Twilio API key SIDs: SK and 32 hex digits. Account SIDs (AC...) are identifiers, \
              not credentials, and are left alone; auth tokens have no prefix and are caught by \
              the token assignment rule.",
        keywords: &["SK"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[0-9a-fA-F]{32}",
        validator: Some(has_digit_and_letter),
        extend: None,
    },
    Rule {
        kind: "sendgrid_api_key",
        doc: "SendGrid API keys: SG., a 22-character key id, a dot and a 43-character secret.",
        keywords: &["SG."],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "npm_token",
        doc: "npm access tokens: npm_ and 36 base62 characters. npm's own environment variables \
              (npm_config_cache, npm_package_version) contain underscores and never match.",
        keywords: &["npm_"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9]{36}",
        validator: Some(mixed_case_and_digit),
        extend: None,
    },
    Rule {
        kind: "pypi_token",
        doc: "PyPI and TestPyPI API tokens: pypi- and a macaroon whose first bytes always encode \
              the issuing host, hence the long literal keywords.",
        keywords: &["pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"],
        case_insensitive: false,
        not_after: Some(is_alnum),
        tail: r"[A-Za-z0-9_-]{50,1000}",
        validator: None,
        extend: None,
    },
    Rule {
        kind: "private_key",
        doc: "PEM and OpenPGP private key blocks (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... \
              BLOCK), from the BEGIN line through the matching END line, in real or \
              JSON-escaped newlines. The regex matches the BEGIN line only; the extender walks \
              the body to the END line (at most 64 KiB) and, when a truncated block has no END \
              line, takes the base64 and header lines that follow.",
        keywords: &["-----BEGIN "],
        case_insensitive: false,
        not_after: None,
        tail: r"[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        validator: None,
        extend: Some(extend_pem),
    },
    Rule {
        kind: "bearer_token",
        doc: "The credential in `Authorization: Bearer <token>` (RFC 6750 token characters), \
              keeping the scheme. Prose such as `Bearer instruments` is not a token: a digit, or \
              mixed case over at least 20 characters, is required.",
        keywords: &["bearer"],
        case_insensitive: true,
        not_after: Some(is_alnum),
        tail: r"[ \t]{1,16}([A-Za-z0-9._~+/=-]{8,512})",
        validator: Some(bearer_token),
        extend: Some(extend_token68),
    },
    Rule {
        kind: "basic_auth",
        doc: "The credential in `Authorization: Basic <base64>`, kept only when it decodes to \
              `user:password`, so that `Basic usage` or `basic configuration` are left alone.",
        keywords: &["basic"],
        case_insensitive: true,
        not_after: Some(is_alnum),
        tail: r"[ \t]{1,16}([A-Za-z0-9+/]{6,512}={0,2})",
        validator: Some(basic_credentials),
        extend: Some(extend_base64),
    },
    Rule {
        kind: "jwt",
        doc: "JSON Web Tokens (JWS, and JWE with five segments): base64url segments joined by \
              dots whose first segment decodes to a JSON object with an \"alg\" member. The \
              header always starts with `{\"`, which is `eyJ` in base64. Work: segments are \
              unbounded runs, but an attempt only starts where no token character precedes \
              the keyword, so each run is examined by at most five attempts.",
        keywords: &["eyJ"],
        case_insensitive: false,
        not_after: Some(is_base64url),
        tail: r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+){0,2}",
        validator: Some(jwt),
        extend: None,
    },
    Rule {
        kind: "url_password",
        doc: "The password in a URL's user information (`scheme://user:password@host`), for \
              every scheme: postgres, mysql, mongodb(+srv), redis, amqp, https and others. The \
              password may itself contain `@` and `:`; the last `@` before the path ends it.",
        keywords: &["://"],
        case_insensitive: false,
        not_after: None,
        tail: r#"[^\s:/@?#"'<>\\\[\]]{0,256}:([^\s/?#"'<>\\]{1,256})@"#,
        validator: Some(url_password),
        extend: None,
    },
    Rule {
        kind: "password",
        doc: "Assignments to a key ending in password, passwd or passphrase (`DB_PASSWORD=...`, \
              `\"password\": \"...\"`, `password: ...`, `<password>...`). At least 4 \
              characters; stop words (`null`, `true`, `none`...), references (`${PASSWORD}`, \
              `$DB_PASS`, `{{ pw }}`) and masks (`****`) are not secrets. `/etc/passwd:` is not \
              a key, hence no slash before the keyword.",
        keywords: &["password", "passwd", "passphrase"],
        case_insensitive: true,
        not_after: Some(is_slash),
        tail: assignment_tail!(4, 3),
        validator: Some(password_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "password",
        doc: "Assignments to a key ending in pwd (`DB_PWD=...`); the shell's `PWD=/home/...` \
              holds a directory, so values that look like paths are not secrets.",
        keywords: &["pwd"],
        case_insensitive: true,
        not_after: Some(is_slash),
        tail: assignment_tail!(4, 3),
        validator: Some(pwd_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "password",
        doc: "Passwords on a command line: `--password hunter2` or `--password=hunter2`.",
        keywords: &["--password", "--passwd"],
        case_insensitive: true,
        not_after: None,
        tail: flag_tail!(4, 3),
        validator: Some(password_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "secret",
        doc: "Assignments to a key ending in secret (`client_secret`, `JWT_SECRET`), at least 8 \
              characters and not only digits.",
        keywords: &["secret"],
        case_insensitive: true,
        not_after: Some(is_slash),
        tail: assignment_tail!(8, 7),
        validator: Some(opaque_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "token",
        doc: "Assignments to a key ending in token (`access_token`, `GITHUB_TOKEN`, \
              `x-auth-token:`), at least 8 characters and not only digits. `token_count` or \
              `max_tokens` do not end in the keyword and never match.",
        keywords: &["token"],
        case_insensitive: true,
        not_after: Some(is_slash),
        tail: assignment_tail!(8, 7),
        validator: Some(opaque_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "token",
        doc: "Tokens and secrets on a command line: `--token abc...`, `--api-key=...`.",
        keywords: &[
            "--token",
            "--api-key",
            "--apikey",
            "--access-token",
            "--auth-token",
            "--secret",
            "--client-secret",
        ],
        case_insensitive: true,
        not_after: None,
        tail: flag_tail!(8, 7),
        validator: Some(opaque_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "api_key",
        doc: "Assignments to a key ending in api_key, apikey or api-key (`X-Api-Key:` headers \
              included), at least 8 characters and not only digits.",
        keywords: &["api_key", "apikey", "api-key"],
        case_insensitive: true,
        not_after: Some(is_slash),
        tail: assignment_tail!(8, 7),
        validator: Some(opaque_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "access_key",
        doc: "Assignments to a key ending in access_key, accesskey or access-key.",
        keywords: &["access_key", "accesskey", "access-key"],
        case_insensitive: true,
        not_after: Some(is_slash),
        tail: assignment_tail!(8, 7),
        validator: Some(opaque_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "secret_key",
        doc: "Assignments to a key ending in secret_key, secretkey or secret-key (Django's \
              SECRET_KEY, signing keys).",
        keywords: &["secret_key", "secretkey", "secret-key"],
        case_insensitive: true,
        not_after: Some(is_slash),
        tail: assignment_tail!(8, 7),
        validator: Some(opaque_value),
        extend: Some(extend_value),
    },
    Rule {
        kind: "private_key",
        doc: "Assignments to a key ending in private_key (hex or base64 signing keys, and the \
              JSON-escaped PEM of a Google service account file).",
        keywords: &["private_key", "privatekey", "private-key"],
        case_insensitive: true,
        not_after: Some(is_slash),
        tail: assignment_tail!(8, 7),
        validator: Some(opaque_value),
        extend: Some(extend_value),
    },
];

/// A rule with its regex compiled.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub rule: &'static Rule,
    pub regex: meta::Regex,
    /// How many capture slots a search fills: two per group, group 0 included.
    pub slots: usize,
}

/// The compiled form of a rule table: shared by every redactor of the process.
#[derive(Debug)]
pub(crate) struct RuleSet {
    pub rules: Vec<CompiledRule>,
    /// Every keyword of every rule, lower-cased and deduplicated, then the
    /// placeholder prefix; ASCII case-insensitive, all overlapping matches.
    pub keywords: AhoCorasick,
    /// For each keyword pattern id, the rules that use it.
    pub keyword_rules: Vec<Vec<usize>>,
    /// The pattern id of [`PLACEHOLDER_PREFIX`] in `keywords`.
    pub marker: usize,
}

impl RuleSet {
    /// Compiles a rule table. Fails only on a mistake in the table itself,
    /// which the tests catch: no input reaches this.
    pub(crate) fn compile(table: &'static [Rule]) -> Result<RuleSet, String> {
        let mut rules = Vec::with_capacity(table.len());
        let mut patterns: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        for (index, rule) in table.iter().enumerate() {
            if rule.keywords.is_empty() {
                return Err(format!("rule {} has no keyword", rule.kind));
            }
            let regex = compile_regex(rule)?;
            let groups = regex.captures_len();
            if groups > MAX_GROUPS {
                return Err(format!(
                    "rule {} has {} capture groups, at most {MAX_GROUPS} are supported",
                    rule.kind,
                    groups - 1
                ));
            }
            rules.push(CompiledRule {
                rule,
                regex,
                slots: groups * 2,
            });
            for keyword in rule.keywords {
                let lower = keyword.to_ascii_lowercase();
                match patterns.iter().position(|p| *p == lower) {
                    Some(id) => {
                        if !keyword_rules[id].contains(&index) {
                            keyword_rules[id].push(index);
                        }
                    }
                    None => {
                        patterns.push(lower);
                        keyword_rules.push(vec![index]);
                    }
                }
            }
        }
        let marker = patterns.len();
        patterns.push(PLACEHOLDER_PREFIX.to_ascii_lowercase());
        keyword_rules.push(Vec::new());
        let keywords = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&patterns)
            .map_err(|e| format!("keyword automaton: {e}"))?;
        Ok(RuleSet {
            rules,
            keywords,
            keyword_rules,
            marker,
        })
    }

    /// The kinds this set can produce, for recognising its placeholders.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rules.iter().map(|r| r.rule.kind)
    }
}

/// Builds `(?:kw|kw..)(?:tail)` for a rule; see the module documentation for
/// why every match must begin with a keyword.
pub(crate) fn rule_pattern(rule: &Rule) -> String {
    let keywords: Vec<String> = rule.keywords.iter().map(|k| escape(k)).collect();
    let flags = if rule.case_insensitive { "i" } else { "" };
    format!("(?{flags}:{})(?:{})", keywords.join("|"), rule.tail)
}

fn compile_regex(rule: &Rule) -> Result<meta::Regex, String> {
    compile_pattern(&rule_pattern(rule)).map_err(|e| format!("rule {}: {e}", rule.kind))
}

/// Compiles a byte-oriented, Unicode-off regex: the measured difference is
/// two orders of magnitude, and credentials are ASCII anyway.
pub(crate) fn compile_pattern(pattern: &str) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(meta::Config::new().utf8_empty(false))
        .build(pattern)
        .map_err(|e| e.to_string())
}

/// Escapes a keyword for use as a regex literal. Only the characters that
/// are special to the regex syntax are escaped, because escaping others (such
/// as `<`) can turn them into assertions.
fn escape(keyword: &str) -> String {
    let mut out = String::with_capacity(keyword.len() * 2);
    for c in keyword.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The default rule set, compiled once per process.
pub(crate) fn default_rules() -> Arc<RuleSet> {
    static SET: OnceLock<Arc<RuleSet>> = OnceLock::new();
    SET.get_or_init(|| {
        // The table is static data, and the tests compile every rule, so a
        // failure here is a bug in this file rather than bad input.
        Arc::new(RuleSet::compile(DEFAULT_RULES).expect("the default rule table compiles"))
    })
    .clone()
}

/// A rule set with no rule: it still recognises placeholders.
pub(crate) fn no_rules() -> Arc<RuleSet> {
    static SET: OnceLock<Arc<RuleSet>> = OnceLock::new();
    SET.get_or_init(|| Arc::new(RuleSet::compile(&[]).expect("an empty rule table compiles")))
        .clone()
}

// ---------------------------------------------------------------------------
// Byte classes for `not_after`.

fn is_alnum(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
}

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

fn is_slash(byte: u8) -> bool {
    byte == b'/'
}

// ---------------------------------------------------------------------------
// Validators.

fn has_digit(hit: &Hit<'_>) -> bool {
    hit.secret().iter().any(u8::is_ascii_digit)
}

fn has_digit_and_letter(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    s.iter().any(u8::is_ascii_digit) && s.iter().any(u8::is_ascii_alphabetic)
}

fn mixed_case_and_digit(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    s.iter().any(u8::is_ascii_digit)
        && s.iter().any(u8::is_ascii_uppercase)
        && s.iter().any(u8::is_ascii_lowercase)
}

fn openai_key(hit: &Hit<'_>) -> bool {
    let secret = hit.secret();
    let body = secret.strip_prefix(b"sk-").unwrap_or(secret);
    if body.starts_with(b"ant-") {
        return false;
    }
    body.iter().any(u8::is_ascii_digit)
        && body.iter().any(u8::is_ascii_uppercase)
        && body.iter().any(u8::is_ascii_lowercase)
}

fn bearer_token(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    if is_uniform(s) {
        return false;
    }
    s.iter().any(u8::is_ascii_digit)
        || (s.len() >= 20
            && s.iter().any(u8::is_ascii_uppercase)
            && s.iter().any(u8::is_ascii_lowercase))
}

/// Lenient base64: padding optional, trailing bits allowed, because the
/// value may have been cut at the regex's bound.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

const LENIENT_BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes at most the first 96 characters: the `user:` part is at the start,
/// and this keeps the work per match bounded.
fn basic_credentials(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    let s = s.strip_suffix(b"==").or(s.strip_suffix(b"=")).unwrap_or(s);
    let take = s.len().min(96) / 4 * 4;
    let Some(prefix) = s.get(..take) else {
        return false;
    };
    let Ok(decoded) = LENIENT_BASE64.decode(prefix) else {
        return false;
    };
    match decoded.iter().position(|&b| b == b':') {
        Some(colon) => decoded[..colon].iter().all(|b| (0x20..0x7f).contains(b)),
        None => false,
    }
}

/// The header segment must decode to a JSON object with an `alg` member.
/// The decode runs once per attempt; attempts start only at run starts (see
/// the rule), so the total work stays linear.
fn jwt(hit: &Hit<'_>) -> bool {
    let token = hit.secret();
    let header = token.split(|&b| b == b'.').next().unwrap_or_default();
    let Ok(decoded) = LENIENT_BASE64URL.decode(header) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&decoded) {
        Ok(serde_json::Value::Object(map)) => map.contains_key("alg"),
        _ => false,
    }
}

fn url_password(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    !is_uniform(s) && !is_reference(s) && !s.starts_with(PLACEHOLDER_PREFIX.as_bytes())
}

/// What an assignment's value must be beyond its minimum length.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueClass {
    /// Passwords may be short and may be all digits (PINs).
    Password,
    /// Tokens, secrets and keys: an all-digit value is a count or an id.
    Opaque,
}

fn password_value(hit: &Hit<'_>) -> bool {
    assignment_value(hit, ValueClass::Password)
}

fn pwd_value(hit: &Hit<'_>) -> bool {
    let s = hit.secret();
    let path_like = s.starts_with(b"/")
        || s.starts_with(b"~")
        || s.starts_with(b"./")
        || s.starts_with(b"../")
        || (s.len() >= 3
            && s[0].is_ascii_alphabetic()
            && s[1] == b':'
            && matches!(s[2], b'\\' | b'/'));
    !path_like && assignment_value(hit, ValueClass::Password)
}

fn opaque_value(hit: &Hit<'_>) -> bool {
    assignment_value(hit, ValueClass::Opaque)
}

/// Words that say something about a value rather than being one.
const STOP_WORDS: &[&str] = &[
    "null",
    "nil",
    "none",
    "true",
    "false",
    "undefined",
    "empty",
    "required",
    "optional",
    "string",
    "integer",
    "number",
    "bool",
    "boolean",
    "object",
    "redacted",
    "masked",
    "hidden",
    "unset",
    "[redacted]",
    "<redacted>",
];

fn assignment_value(hit: &Hit<'_>, class: ValueClass) -> bool {
    let value = hit.secret();
    if value.is_empty() || is_uniform(value) || is_reference(value) {
        return false;
    }
    if STOP_WORDS
        .iter()
        .any(|w| value.eq_ignore_ascii_case(w.as_bytes()))
    {
        return false;
    }
    if value.starts_with(PLACEHOLDER_PREFIX.as_bytes()) {
        return false;
    }
    if hit.group == GROUP_UNQUOTED {
        // `password = get_password()` and `token = env["X"]` are code, not
        // values; their unquoted capture stops at the bracket.
        if value.ends_with(b"(") || value.ends_with(b"[") {
            return false;
        }
        // In JSON (`"password": 1234`) an unquoted value is a number, and
        // replacing it would leave invalid JSON behind.
        if is_json_number(value) && after_json_key(hit) {
            return false;
        }
    }
    if class == ValueClass::Opaque && value.iter().all(u8::is_ascii_digit) {
        return false;
    }
    true
}

/// A value of three or more of one repeated byte (`***`, `xxxxxxxx`) is a
/// mask, not a secret.
fn is_uniform(value: &[u8]) -> bool {
    value.len() >= 3 && value.windows(2).all(|w| w[0] == w[1])
}

/// References to a secret held elsewhere: environment variables, templates,
/// angle-bracket placeholders, code that reads the environment.
fn is_reference(value: &[u8]) -> bool {
    const PREFIXES: &[&[u8]] = &[
        b"${",
        b"$(",
        b"{{",
        b"{%",
        b"%(",
        b"%{",
        b"#{",
        b"<%",
        b"process.env.",
        b"os.environ",
        b"os.getenv",
        b"env.",
        b"ENV[",
    ];
    if PREFIXES.iter().any(|p| value.starts_with(p)) {
        return true;
    }
    // `$DB_PASSWORD`: by convention environment variables are upper case, so
    // a password such as `$ecret99` is still treated as a value.
    if let Some(name) = value.strip_prefix(b"$")
        && !name.is_empty()
        && !name[0].is_ascii_digit()
        && name
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
    {
        return true;
    }
    // `%DB_PASSWORD%` in Windows scripts.
    if value.len() > 2
        && value.starts_with(b"%")
        && value.ends_with(b"%")
        && value[1..value.len() - 1]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return true;
    }
    // `<your-token-here>`
    value.starts_with(b"<") && value.ends_with(b">")
}

fn is_json_number(value: &[u8]) -> bool {
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    !digits.is_empty()
        && digits[0].is_ascii_digit()
        && digits
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
}

/// Whether the value follows `":` (after optional spaces), that is, the key
/// was a quoted JSON key.
fn after_json_key(hit: &Hit<'_>) -> bool {
    let before = hit.hay.get(..hit.start).unwrap_or_default();
    let mut rest = before;
    while let Some((&last, init)) = rest.split_last() {
        if last == b' ' || last == b'\t' {
            rest = init;
        } else {
            break;
        }
    }
    let Some(rest) = rest.strip_suffix(b":") else {
        return false;
    };
    let trimmed = rest
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(&[][..], |i| &rest[..=i]);
    trimmed.ends_with(b"\"")
}

// ---------------------------------------------------------------------------
// Extenders. Each one runs only on an accepted match and scans forward from
// its end, and the scanner never starts a new attempt of the same rule inside
// an accepted match, so each extender visits each input byte at most once per
// rule.

/// Continues an assignment value past the regex's 256-unit bound, with the
/// same units the regex uses for the value's form (see `value!`).
fn extend_value(hit: &Hit<'_>) -> Option<usize> {
    let hay = hit.hay;
    let mut i = hit.end;
    while let Some(len) = value_unit(hay, i, hit.group) {
        i += len;
    }
    count_extended(i - hit.end);
    Some(i)
}

/// The length of the value unit starting at `i` (1, or 2 for an escape pair),
/// or `None` where the value ends. Mirrors the character classes of `value!`
/// and `assignment_tail!` exactly; a test checks the two agree.
pub(crate) fn value_unit(hay: &[u8], i: usize, group: usize) -> Option<usize> {
    let &b = hay.get(i)?;
    let next = hay.get(i + 1).copied();
    let pair = |excluded: &[u8]| match next {
        Some(n) if !excluded.contains(&n) => Some(2),
        _ => None,
    };
    match group {
        GROUP_ESCAPED_QUOTED => match b {
            b'"' | b'\r' | b'\n' => None,
            b'\\' => pair(b"\"\r\n"),
            _ => Some(1),
        },
        GROUP_DOUBLE_QUOTED => match b {
            b'"' | b'\r' | b'\n' => None,
            b'\\' => pair(b"\r\n"),
            _ => Some(1),
        },
        GROUP_SINGLE_QUOTED => match b {
            b'\'' | b'"' | b'\r' | b'\n' => None,
            b'\\' => pair(b"\r\n"),
            _ => Some(1),
        },
        GROUP_XML => match b {
            b'<' | b'"' | b'\r' | b'\n' => None,
            b'\\' => pair(b"\r\n"),
            _ => Some(1),
        },
        GROUP_UNQUOTED => match b {
            b'\\' => pair(b"\t\n\x0b\x0c\r \"nrt"),
            b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | b' ' => None,
            b'"' | b'\'' | b'`' | b',' | b';' | b'&' | b'<' | b'>' | b')' | b']' | b'}' => None,
            _ => Some(1),
        },
        _ => None,
    }
}

/// RFC 7235 token68 characters, as in the bearer tail.
fn is_token68(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._~+/=-".contains(&byte)
}

fn extend_token68(hit: &Hit<'_>) -> Option<usize> {
    let end = run_end(hit.hay, hit.end, is_token68);
    count_extended(end - hit.end);
    Some(end)
}

fn extend_base64(hit: &Hit<'_>) -> Option<usize> {
    if hit.secret().ends_with(b"=") {
        return Some(hit.end);
    }
    let mut end = run_end(hit.hay, hit.end, |b| {
        b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
    });
    for _ in 0..2 {
        if hit.hay.get(end) == Some(&b'=') {
            end += 1;
        }
    }
    count_extended(end - hit.end);
    Some(end)
}

fn run_end(hay: &[u8], from: usize, class: impl Fn(u8) -> bool) -> usize {
    let len = hay
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| class(b))
        .count();
    from + len
}

/// The longest a private key block may be; real ones are under 10 KiB.
const PEM_LIMIT: usize = 64 * 1024;

/// Walks a private key body from the end of the BEGIN line.
///
/// If the next `-----` within [`PEM_LIMIT`] starts a matching END line, the
/// block ends after it. Otherwise the block is truncated, and it ends after
/// the lines that look like a PEM body (base64 or `Name: value` headers).
///
/// Work: the first walk stops at the next `-----`, which is where the next
/// BEGIN line would start, so two blocks' walks never overlap.
fn extend_pem(hit: &Hit<'_>) -> Option<usize> {
    let hay = hit.hay;
    let from = hit.end;
    // A block never crosses a `"`: in JSON text that is the end of the
    // string the key sits in, and an END line after it belongs to another
    // string.
    let mut limit = hay.len().min(from.saturating_add(PEM_LIMIT));
    if let Some(quote) = hay
        .get(from..limit)
        .and_then(|w| w.iter().position(|&b| b == b'"'))
    {
        limit = from + quote;
    }
    let window = hay.get(from..limit).unwrap_or_default();
    let dashes = window
        .windows(5)
        .position(|w| w == b"-----")
        .map(|p| from + p);
    count_extended(dashes.unwrap_or(limit) - from);
    if let Some(at) = dashes
        && let Some(end) = pem_end_line(hay, at)
    {
        return Some(end);
    }
    Some(pem_body_end(hay, from, dashes.unwrap_or(limit)))
}

/// If an END line of a private key block starts at `at`, where it ends.
fn pem_end_line(hay: &[u8], at: usize) -> Option<usize> {
    let rest = hay.get(at..)?.strip_prefix(b"-----END ")?;
    let label_len = rest
        .iter()
        .take(41)
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b' ')
        .count();
    let label = &rest[..label_len];
    let key_at = label.windows(11).position(|w| w == b"PRIVATE KEY")?;
    let mut after = &rest[key_at + 11..];
    if let Some(r) = after.strip_prefix(b" BLOCK") {
        after = r;
    }
    after.strip_prefix(b"-----")?;
    let consumed = rest.len() - after.len() + 5;
    Some(at + 9 + consumed)
}

/// The end of the PEM-looking lines from `from`, for a block without an END
/// line. The rest of the BEGIN line is taken while it looks like base64
/// (keys pasted on one line separate their parts with spaces); each later
/// line is taken whole if it is base64, a `Name: value` header or blank, and
/// the walk stops at the first line that is none of these. Lines end at real
/// or JSON-escaped line breaks.
fn pem_body_end(hay: &[u8], from: usize, limit: usize) -> usize {
    let line = hay.get(from..limit).unwrap_or_default();
    let first = line
        .iter()
        .take_while(|&&b| is_base64_byte(b) || b == b' ' || b == b'\t')
        .count();
    let mut i = from + first;
    if !at_line_break(hay, i, limit) {
        return i;
    }
    loop {
        // `i` is at a line break: step over it, then judge the next line.
        let Some(break_len) = line_break_len(hay, i, limit) else {
            return i;
        };
        let line_start = i + break_len;
        let mut end = line_start;
        while end < limit && line_break_len(hay, end, limit).is_none() && hay[end] != b'"' {
            end += 1;
        }
        let line = &hay[line_start..end];
        let body_like = line.iter().all(|&b| is_base64_byte(b));
        if !(body_like || pem_header_line(line)) {
            return i;
        }
        i = end;
        if !at_line_break(hay, i, limit) {
            return i;
        }
    }
}

fn is_base64_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=')
}

fn at_line_break(hay: &[u8], i: usize, limit: usize) -> bool {
    line_break_len(hay, i, limit).is_some()
}

/// The length of the line break at `i`: `\n`, `\r\n`, `\r`, or their
/// JSON-escaped spellings.
fn line_break_len(hay: &[u8], i: usize, limit: usize) -> Option<usize> {
    let rest = hay.get(i..limit)?;
    for brk in [&b"\r\n"[..], b"\n", b"\r", b"\\r\\n", b"\\n", b"\\r"] {
        if rest.starts_with(brk) {
            return Some(brk.len());
        }
    }
    None
}

/// `Proc-Type: 4,ENCRYPTED`, `DEK-Info: ...`, `Version: ...`, `Comment: ...`.
fn pem_header_line(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    name_len > 0 && line[0].is_ascii_alphabetic() && line.get(name_len) == Some(&b':')
}

// ---------------------------------------------------------------------------
// Test-only work counters, so that the linear-time tests can assert on the
// amount of work done instead of on wall-clock time.

#[cfg(test)]
thread_local! {
    pub(crate) static EXTENDED_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_extended(_bytes: usize) {
    #[cfg(test)]
    EXTENDED_BYTES.with(|c| c.set(c.get() + _bytes));
}
