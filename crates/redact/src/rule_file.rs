//! The rule file format: how `rules/secrets.yaml` reads, and how its
//! entries become [`Rule`]s.
//!
//! The file is data: each entry names its keywords, its regex tail and, by
//! name, the code it needs (a validator, an extender, byte classes). Names
//! are resolved here, so an unknown name is a load error, and the tests load
//! the file, so such an error never reaches a build. Tails may use a few
//! macros for the shapes that many rules share:
//!
//! | macro | expands to |
//! |---|---|
//! | `%{ansi}` | up to three ANSI colour sequences |
//! | `%{assign}` | the end of a key and an assignment operator (`=`, `:`, `:=`, `=>`) |
//! | `%{assign_quote}` | `%{assign}` and an optional opening quote (`"`, `'`, `\"`) |
//! | `%{value:N}` | a value of at least N units in one of four forms (see `rules.rs`) |
//! | `%{assignment:N}` | `%{assign}%{value:N}`, or `>value` after an XML key |
//! | `%{flag:N}` | ` value` or `=value` after a command-line flag |
//! | `%{uuid}` | a UUID, either case |
//! | `%{prose:N}` | what follows a credential's name in a sentence: a few words, `:` or `is`, and a value of at least N bytes |
//!
//! Each entry also carries examples (`match` and `no_match`), which the tests
//! run through the rule; see `rule_file_tests.rs` for the generators they may
//! use.

use serde::Deserialize;

use crate::extenders;
use crate::rules::{Lead, Rule};
use crate::validators;

/// The default rule file, built into the binary.
pub(crate) const SECRETS_YAML: &str = include_str!("../rules/secrets.yaml");

/// The most units (characters, or escape pairs) the regex of an assignment
/// value takes; the `value` extender continues longer values. Kept small
/// because the regex's size, and the work of finding its groups, grow with
/// it.
pub(crate) const VALUE_BOUND: usize = 64;

/// The most bytes the regex of a value named in prose (`%{prose:N}`) takes;
/// the `prose_value` extender continues longer ones.
pub(crate) const PROSE_BOUND: usize = 128;

/// The only version of the format this code reads.
const FORMAT_VERSION: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    version: u32,
    rules: Vec<Entry>,
}

/// One entry of the rule file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    kind: String,
    #[serde(default)]
    service: Option<String>,
    category: String,
    doc: String,
    keywords: Vec<String>,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    not_followed_by: Option<String>,
    #[serde(default)]
    lead: Option<LeadEntry>,
    tail: String,
    #[serde(default)]
    validator: Option<String>,
    #[serde(default)]
    extend: Option<String>,
    #[serde(default)]
    min_entropy: Option<f64>,
    examples: Examples,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeadEntry {
    class: String,
    min: usize,
    max: usize,
}

/// Inputs a rule must find something in, and near misses it must leave
/// alone. Only the tests read them.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Examples {
    #[serde(rename = "match")]
    pub matches: Vec<String>,
    pub no_match: Vec<String>,
}

/// Parses a rule file and resolves every name in it.
pub(crate) fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let file: RuleFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if file.version != FORMAT_VERSION {
        return Err(format!(
            "rule file version {} is not supported; this build reads version {FORMAT_VERSION}",
            file.version
        ));
    }
    let mut rules = Vec::with_capacity(file.rules.len());
    for entry in file.rules {
        let id = entry.id.clone();
        rules.push(resolve(entry).map_err(|e| format!("rule {id}: {e}"))?);
    }
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("rule id {} is used twice", pair[0]));
    }
    Ok(rules)
}

fn resolve(entry: Entry) -> Result<Rule, String> {
    let byte_class = |name: &Option<String>| -> Result<_, String> {
        name.as_deref()
            .map(|n| validators::byte_class(n).ok_or_else(|| format!("unknown byte class {n:?}")))
            .transpose()
    };
    let lead = match entry.lead {
        Some(lead) => {
            let class = validators::byte_class(&lead.class)
                .ok_or_else(|| format!("unknown byte class {:?}", lead.class))?;
            if class.run(b'"') || class.run(b'\\') {
                return Err(format!(
                    "lead class {:?} may not contain '\"' or '\\'",
                    lead.class
                ));
            }
            if lead.min > lead.max || lead.max > 64 {
                return Err(format!(
                    "lead needs min <= max <= 64, not {}..{}",
                    lead.min, lead.max
                ));
            }
            Some(Lead {
                class,
                min: lead.min,
                max: lead.max,
            })
        }
        None => None,
    };
    let validator = entry
        .validator
        .as_deref()
        .map(|n| validators::validator(n).ok_or_else(|| format!("unknown validator {n:?}")))
        .transpose()?;
    let extend = entry
        .extend
        .as_deref()
        .map(|n| extenders::extender(n).ok_or_else(|| format!("unknown extender {n:?}")))
        .transpose()?;
    if let Some(min) = entry.min_entropy
        && !(0.0..=8.0).contains(&min)
    {
        return Err(format!("min_entropy {min} is outside 0..=8 bits per byte"));
    }
    Ok(Rule {
        id: entry.id,
        kind: entry.kind,
        service: entry.service,
        category: entry.category,
        doc: normalise_doc(&entry.doc),
        keywords: entry.keywords,
        case_insensitive: entry.case_insensitive,
        not_after: byte_class(&entry.not_after)?,
        not_followed_by: byte_class(&entry.not_followed_by)?,
        lead,
        tail: expand_tail(&entry.tail)?,
        validator,
        extend,
        min_entropy: entry.min_entropy,
        examples: entry.examples,
    })
}

/// Folded YAML keeps a trailing newline; docs are one paragraph.
fn normalise_doc(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Expands the `%{...}` macros of a tail.
pub(crate) fn expand_tail(tail: &str) -> Result<String, String> {
    let mut out = String::with_capacity(tail.len());
    let mut rest = tail;
    while let Some(at) = rest.find("%{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed macro in tail {tail:?}"))?;
        out.push_str(&expand_macro(&after[..close])?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_macro(call: &str) -> Result<String, String> {
    let (name, arg) = match call.split_once(':') {
        Some((name, arg)) => {
            let n: usize = arg
                .parse()
                .map_err(|_| format!("macro {name} needs a number, not {arg:?}"))?;
            if n == 0 || n > 64 {
                return Err(format!("macro {name} takes a minimum of 1 to 64, not {n}"));
            }
            (name, Some(n))
        }
        None => (call, None),
    };
    let text = match (name, arg) {
        ("ansi", None) => ansi(),
        ("assign", None) => assign(),
        ("assign_quote", None) => format!(r#"{}(?:\\?["'])?"#, assign()),
        ("uuid", None) => {
            "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}".to_owned()
        }
        ("value", Some(n)) => value(n),
        ("assignment", Some(n)) => format!(
            r#"(?:{}(?:{})|>((?:[^<"\\\r\n]|\\[^\r\n]){{{n},{VALUE_BOUND}}}))"#,
            assign(),
            value(n)
        ),
        ("flag", Some(n)) => format!(r"(?:[ \t]{{1,16}}|=)(?:{})", value(n)),
        ("prose", Some(n)) if n >= 2 => prose(n),
        _ => return Err(format!("unknown macro %{{{call}}}")),
    };
    Ok(text)
}

/// What follows a credential's name in a sentence, up to the value (the
/// capture group): the `)` of `(API key)`, up to three short words (`for
/// staging`, `in the channel`), then `:` or a linking verb (`is`,
/// `was`, German `ist` and `lautet`, French `est`), a space, and an optional
/// opening quote. The value is a run of bytes that are not whitespace,
/// quotes, angle brackets, `,` or `;`, and does not end with the punctuation
/// that ends a sentence (`.` `!` `?` `)`). The validator decides whether the
/// name and the value make a credential.
fn prose(min: usize) -> String {
    let value = r#"[^\s"'`<>,;]"#;
    let last = r#"[^\s"'`<>,;.!?)]"#;
    format!(
        r#"\)?(?:[ \t]{{1,4}}[A-Za-z]{{1,16}}){{0,3}}?(?:[ \t]{{0,4}}:|[ \t]{{1,4}}(?:is|was|ist|lautet|est))[ \t]{{1,4}}["'`]?({value}{{{},{}}}{last})"#,
        min - 1,
        PROSE_BOUND - 1
    )
}

/// Up to three ANSI colour sequences, which `tracing` puts around field
/// names and the `=` after them when colours are on.
fn ansi() -> String {
    r"(?:\x1b\[[0-9;]{0,8}m){0,3}".to_owned()
}

/// The end of a key (an optional closing quote, possibly JSON-escaped) and an
/// assignment operator. The key must end right at the keyword, so that
/// `token_count: 5` or `password_hint=...` are not mistaken for secrets.
fn assign() -> String {
    let ansi = ansi();
    format!(r#"(?:\\?["'])?{ansi}[ \t]{{0,16}}{ansi}(?::=|=>|:|=){ansi}[ \t]{{0,16}}"#)
}

/// The value of an assignment, in its four forms; each form is one capture
/// group (see `GROUP_*` in `rules.rs`).
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
fn value(min: usize) -> String {
    let rest = min - 1;
    let rest_bound = VALUE_BOUND - 1;
    [
        format!(r#"\\"((?:[^"\\\r\n]|\\[^"\r\n]){{{min},{VALUE_BOUND}}})"#),
        format!(
            r#""((?:[^"\\\s,:\]}}]|\\[^\r\n])(?:[^"\\\r\n]|\\[^\r\n]){{{rest},{rest_bound}}})"#
        ),
        format!(r#"'((?:[^'"\\\r\n]|\\[^\r\n]){{{min},{VALUE_BOUND}}})"#),
        format!(
            r#"((?:[^\s"'`,;&<>()\[\]{{}}\\]|\\[^\s"nrt])(?:[^\s"'`,;&<>)\]}}\\]|\\[^\s"nrt]){{{rest},{rest_bound}}})"#
        ),
    ]
    .join("|")
}
