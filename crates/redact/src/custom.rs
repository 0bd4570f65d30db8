//! Rules that users add to the built-in set ([`CustomRule`]), checked and
//! compiled when they are added, so that a mistake is reported where the
//! rule was written and a redactor, once built, cannot fail.

use serde::Deserialize;

use crate::error::RedactError;
use crate::rule_file::Examples;
use crate::rules::{self, CompiledRule, MAX_CUSTOM_MATCH, Rule};

/// A credential rule supplied by a user (from configuration or a scenario),
/// matched in the same single pass as the built-in rules.
///
/// A match starts at one of the `keywords` and continues with `pattern`: the
/// regex that runs is `(?:KEYWORD|KEYWORD..)(?:PATTERN)`, over bytes, with
/// Unicode off (`\w`, `\d` and classes are ASCII). If `pattern` has a capture
/// group, only the text of the first group that took part in the match is
/// replaced, which keeps a key or a prefix readable:
///
/// ```
/// use sandbar_redact::{CustomRule, Redactor};
///
/// let rule = CustomRule::new("acme_key", ["acme_"], "[a-z0-9]{32}");
/// let redactor = Redactor::builder().rule(rule)?.build();
/// assert_eq!(
///     redactor.redact_str("key acme_0123456789abcdef0123456789abcdef"),
///     "key [REDACTED:acme_key]",
/// );
/// # Ok::<(), sandbar_redact::RedactError>(())
/// ```
///
/// The pattern must be bounded: repetitions need an upper bound (`{8,64}`,
/// not `+` or `*`), and a whole match, keyword included, is at most 1024
/// bytes. This keeps the scan linear in its input whatever the rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// Names the placeholder (`[REDACTED:kind]`): lower-case ASCII letters,
    /// digits and `_`, at most 64 bytes.
    pub kind: String,
    /// Literal text every match begins with, at least 2 bytes each; the
    /// pattern runs only where one occurs.
    pub keywords: Vec<String>,
    /// Regex for what follows the keyword.
    pub pattern: String,
    /// Whether keywords match in any letter case. The pattern's own case
    /// sensitivity is its own (`(?i)` inside it).
    #[serde(default)]
    pub case_insensitive: bool,
    /// The least Shannon entropy, in bits per byte, that the replaced text
    /// must have (`3.0` keeps `aaaa1111` and `changeme` out; random base62
    /// has about 5.9).
    #[serde(default)]
    pub min_entropy: Option<f64>,
}

impl CustomRule {
    /// A case-sensitive rule with no entropy threshold.
    pub fn new<K, S>(kind: &str, keywords: K, pattern: &str) -> CustomRule
    where
        K: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CustomRule {
            kind: kind.to_owned(),
            keywords: keywords.into_iter().map(Into::into).collect(),
            pattern: pattern.to_owned(),
            case_insensitive: false,
            min_entropy: None,
        }
    }

    /// Checks the rule and compiles it.
    pub(crate) fn compile(&self) -> Result<CompiledRule, RedactError> {
        let invalid = |reason: String| RedactError::InvalidRule {
            kind: self.kind.clone(),
            reason,
        };
        if self.kind.is_empty()
            || self.kind.len() > 64
            || !self
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(invalid(
                "the kind must be 1 to 64 lower-case ASCII letters, digits or '_'".to_owned(),
            ));
        }
        if self.keywords.is_empty() {
            return Err(invalid("a rule needs at least one keyword".to_owned()));
        }
        for keyword in &self.keywords {
            if keyword.len() < 2 || keyword.trim().is_empty() {
                return Err(invalid(format!(
                    "keyword {keyword:?} is too short: keywords need at least 2 bytes and not only spaces"
                )));
            }
        }
        if let Some(min) = self.min_entropy
            && !(0.0..=8.0).contains(&min)
        {
            return Err(invalid(format!(
                "min_entropy {min} is outside 0 to 8 bits per byte"
            )));
        }
        let rule = Rule {
            id: format!("custom:{}", self.kind),
            kind: self.kind.clone(),
            service: None,
            category: "custom".to_owned(),
            doc: String::new(),
            keywords: self.keywords.clone(),
            case_insensitive: self.case_insensitive,
            not_after: None,
            not_followed_by: None,
            lead: None,
            tail: self.pattern.clone(),
            validator: None,
            extend: None,
            min_entropy: self.min_entropy,
            examples: Examples::default(),
        };
        let pattern = rules::rule_pattern(&rule);
        let max_len = rules::pattern_max_len(&pattern)
            .map_err(|e| invalid(format!("the pattern is not a valid regex: {e}")))?;
        match max_len {
            None => {
                return Err(invalid(
                    "the pattern can match text of any length; bound every repetition \
                     (`{1,256}` rather than `+` or `*`)"
                        .to_owned(),
                ));
            }
            Some(len) if len > MAX_CUSTOM_MATCH => {
                return Err(invalid(format!(
                    "a match can be up to {len} bytes long; at most {MAX_CUSTOM_MATCH} are allowed"
                )));
            }
            Some(_) => {}
        }
        // Strip the rule id that the compiler's messages start with.
        let reason = |e: String| {
            let reason = e.split_once(": ").map_or(e.as_str(), |(_, r)| r);
            invalid(reason.to_owned())
        };
        let compiled = rules::compile_rule(rule).map_err(reason)?;
        // Compiled now, so that a pattern too large to compile is reported
        // here rather than at the first scan.
        compiled.compile_now().map_err(reason)?;
        Ok(compiled)
    }
}
