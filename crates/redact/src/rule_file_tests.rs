//! Tests of the rule file: it loads, every rule compiles, is documented and
//! bounded, every example in the file behaves as it says, names that resolve
//! to nothing are load errors, there are enough services, and the README's
//! list of services is the one the file produces.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::Redactor;
use crate::rule_file;
use crate::rules::{self, Rule, RuleSet};
use crate::scan::Scanner;
use crate::test_support::render;
use crate::validators::base62_checksum;

const CATEGORIES: &[&str] = &[
    "cloud",
    "source",
    "payment",
    "messaging",
    "ai",
    "database",
    "ci",
    "observability",
    "productivity",
    "infrastructure",
    "identity",
    "registry",
    "commerce",
    "social",
    "crypto",
    "generic",
];

// ---------------------------------------------------------------------------
// Example generators.

/// An example with its generators replaced, and the generated pieces.
struct Expanded {
    text: String,
    generated: Vec<String>,
}

/// Replaces every `<<name:arg>>` of an example (see the rule file's header).
/// Output is deterministic: seeded by the rule, the example and the position.
fn expand(example: &str, seed: u64) -> Expanded {
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut text = String::new();
    let mut generated = Vec::new();
    let mut rest = example;
    while let Some(at) = rest.find("<<") {
        text.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let close = after
            .find(">>")
            .unwrap_or_else(|| panic!("unclosed generator in {example:?}"));
        let call = &after[..close];
        let (name, arg) = call.split_once(':').unwrap_or((call, ""));
        let piece = generate(name, arg, &mut rng)
            .unwrap_or_else(|| panic!("unknown generator <<{call}>> in {example:?}"));
        text.push_str(&piece);
        generated.push(piece);
        rest = &after[close + 2..];
    }
    text.push_str(rest);
    Expanded { text, generated }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `len` characters of `alphabet`, starting with one upper-case letter,
    /// one lower-case letter and one digit where the alphabet has them, as a
    /// random token of any length worth the name would.
    fn string(&mut self, alphabet: &str, len: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        let mut out = String::new();
        let classes: [fn(&char) -> bool; 3] = [
            char::is_ascii_uppercase,
            char::is_ascii_lowercase,
            char::is_ascii_digit,
        ];
        for class in classes {
            let members: Vec<char> = chars.iter().copied().filter(class).collect();
            if out.len() < len && !members.is_empty() {
                out.push(members[(self.next() % members.len() as u64) as usize]);
            }
        }
        while out.len() < len {
            out.push(chars[(self.next() % chars.len() as u64) as usize]);
        }
        out
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn generate(name: &str, arg: &str, rng: &mut Rng) -> Option<String> {
    let len = || arg.parse::<usize>().ok();
    Some(match name {
        "alnum" => rng.string(ALNUM, len()?),
        "hex" => rng.string("0123456789abcdef", len()?),
        "HEX" => rng.string("0123456789ABCDEF", len()?),
        "digits" => rng.string("0123456789", len()?),
        "lower" => rng.string("abcdefghijklmnopqrstuvwxyz0123456789", len()?),
        "upper" => rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", len()?),
        "letters" => rng.string(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            len()?,
        ),
        "b64" => rng.string(&format!("{ALNUM}+/"), len()?),
        "b64url" => rng.string(&format!("{ALNUM}-_"), len()?),
        "b32" => rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", len()?),
        "bech32" => rng.string("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", len()?),
        "crc32" => {
            let random = rng.string(ALNUM, len()?.checked_sub(6)?);
            let check = base62_checksum(random.as_bytes());
            format!("{random}{}", String::from_utf8_lossy(&check))
        }
        "uuid" => {
            let h = rng.string("0123456789abcdef", 32);
            format!(
                "{}-{}-4{}-a{}-{}",
                &h[..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..]
            )
        }
        "jwt" => {
            let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
            let payload = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"sub":"{}","iat":1516239022}}"#,
                rng.string("0123456789", 10)
            ));
            format!(
                "{header}.{payload}.{}",
                rng.string(&format!("{ALNUM}-_"), 43)
            )
        }
        "base64" => STANDARD.encode(arg),
        "base64url" => URL_SAFE_NO_PAD.encode(arg),
        _ => return None,
    })
}

fn seed(rule: &Rule, index: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rule.id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h ^ (index as u64).wrapping_mul(0x9e37_79b9)
}

#[test]
fn generators_are_deterministic_and_checksums_verify() {
    let a = expand("x <<alnum:20>> <<crc32:36>> <<uuid>>", 7);
    let b = expand("x <<alnum:20>> <<crc32:36>> <<uuid>>", 7);
    assert_eq!(a.text, b.text);
    assert_eq!(a.generated.len(), 3);
    let token = &a.generated[1];
    assert_eq!(
        base62_checksum(&token.as_bytes()[..30]),
        token.as_bytes()[30..]
    );
    // A published example token of GitHub's format: the checksum of its 30
    // random characters is its last six.
    assert_eq!(
        &base62_checksum(b"zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ"),
        b"0mLq17"
    );
}

// ---------------------------------------------------------------------------
// The table.

fn table() -> &'static [Rule] {
    rules::default_table()
}

#[test]
fn every_rule_compiles_is_documented_and_has_examples() {
    let set = RuleSet::compile(table()).expect("rules compile");
    assert_eq!(set.rules.len(), table().len());
    for compiled in &set.rules {
        // Regexes compile on first use; every one must.
        compiled.compile_now().expect("the regex compiles");
    }
    for rule in table() {
        let id = &rule.id;
        assert!(rule.doc.len() > 40, "rule {id} needs a real doc");
        assert!(!rule.keywords.is_empty(), "rule {id} has no keyword");
        for keyword in &rule.keywords {
            assert!(
                keyword.len() >= 2,
                "rule {id}: keyword {keyword:?} too short"
            );
        }
        assert!(
            rule.kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "kind {} must be snake_case",
            rule.kind
        );
        assert!(
            CATEGORIES.contains(&rule.category.as_str()),
            "rule {id}: unknown category {}",
            rule.category
        );
        assert_eq!(
            rule.service.is_none(),
            rule.category == "generic",
            "rule {id}: generic rules, and only they, have no service"
        );
        assert!(
            !rule.examples.matches.is_empty(),
            "rule {id} needs an example it matches"
        );
        assert!(
            !rule.examples.no_match.is_empty(),
            "rule {id} needs a near miss it leaves alone"
        );
    }
}

#[test]
fn every_match_starts_with_a_keyword() {
    // The completeness argument of the scanner rests on this; the pattern
    // is built so that it holds, and this checks the building.
    for rule in table() {
        let pattern = rules::rule_pattern(rule);
        let flags = if rule.case_insensitive { "(?i:" } else { "(?:" };
        assert!(pattern.starts_with(flags), "{pattern}");
    }
}

#[test]
fn every_attempt_is_bounded() {
    // The linear-time argument: an attempt examines a bounded number of
    // bytes, unless the rule starts only at the start of a run of its own
    // characters (`not_after`) and says so.
    for rule in table() {
        let pattern = rules::rule_pattern(rule);
        match rules::pattern_max_len(&pattern).expect("parses") {
            Some(len) => assert!(len <= 4096, "rule {}: attempts up to {len} bytes", rule.id),
            None => assert!(
                rule.not_after.is_some() && rule.doc.contains("Work:"),
                "rule {} is unbounded without a not_after and a Work: note",
                rule.id
            ),
        }
    }
}

#[test]
fn rescans_look_at_most_a_kilobyte_before_a_placeholder() {
    // After a replacement the redactor rescans one bounded attempt before
    // each placeholder (`Redactor::rescan_windows`); long tokens are
    // continued by extenders instead of long regex bounds.
    let set = rules::default_rules();
    assert!(set.max_attempt <= 1024, "max_attempt {}", set.max_attempt);
}

#[test]
fn ids_are_unique_and_kinds_consistent() {
    let mut ids = HashSet::new();
    let mut services_of_kind: BTreeMap<&str, BTreeSet<Option<&str>>> = BTreeMap::new();
    for rule in table() {
        assert!(ids.insert(rule.id.as_str()), "duplicate id {}", rule.id);
        services_of_kind
            .entry(rule.kind.as_str())
            .or_default()
            .insert(rule.service.as_deref());
    }
    for (kind, services) in services_of_kind {
        // A kind names one thing: one service's credential, or a shape.
        assert!(
            services.len() == 1 || services.contains(&None),
            "kind {kind} is used by several services: {services:?}"
        );
    }
}

/// A scanner over one rule alone, and nothing else.
fn scan_one(set: &RuleSet, text: &str) -> usize {
    let placeholders = HashSet::new();
    let scanner = Scanner {
        rules: set,
        secrets: None,
        secret_owner: &[],
        placeholders: &placeholders,
        max_placeholder: 0,
        longest_secret: 0,
    };
    scanner.scan(text).len()
}

/// `text` with every placeholder removed.
fn outside_placeholders(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("[REDACTED:") {
        out.push_str(&rest[..at]);
        out.push('\u{0}');
        rest = match rest[at..].find(']') {
            Some(close) => &rest[at + close + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

#[test]
fn every_example_in_the_rule_file() {
    let redactor = Redactor::new();
    let mut failures = Vec::new();
    for rule in table() {
        let alone = RuleSet::compile(std::slice::from_ref(rule)).expect("compiles");
        for (index, example) in rule.examples.matches.iter().enumerate() {
            let expanded = expand(example, seed(rule, index));
            let text = &expanded.text;
            if scan_one(&alone, text) == 0 {
                failures.push(format!("{}: no match in {text:?}", rule.id));
                continue;
            }
            let output = redactor.redact_str(text);
            let placeholder = format!("[REDACTED:{}]", rule.kind);
            if !output.contains(&placeholder) {
                failures.push(format!(
                    "{}: {text:?} became {output:?}, without {placeholder}",
                    rule.id
                ));
            }
            let outside = outside_placeholders(&output);
            for piece in &expanded.generated {
                if piece.len() >= 8 && outside.contains(piece.as_str()) {
                    failures.push(format!("{}: {piece:?} survived in {output:?}", rule.id));
                }
            }
            let again = redactor.redact_str(&output);
            if again != output {
                failures.push(format!("{}: not idempotent on {text:?}", rule.id));
            }
            if render(text, &redactor.find(text)) != output {
                failures.push(format!("{}: find disagrees on {text:?}", rule.id));
            }
        }
        for (index, example) in rule.examples.no_match.iter().enumerate() {
            let expanded = expand(example, seed(rule, 1000 + index));
            if scan_one(&alone, &expanded.text) != 0 {
                failures.push(format!(
                    "{}: matched near miss {:?}",
                    rule.id, expanded.text
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn at_least_150_services() {
    let services: BTreeSet<&str> = table()
        .iter()
        .filter_map(|r| r.service.as_deref())
        .collect();
    assert!(
        services.len() >= 150,
        "the rule file covers {} services: {services:?}",
        services.len()
    );
}

// ---------------------------------------------------------------------------
// Load errors.

fn one_rule(fields: &str) -> String {
    format!(
        "version: 1\nrules:\n  - id: r\n    kind: r\n    service: S\n    category: cloud\n    doc: d\n    keywords: [ab]\n    tail: 'x'\n    examples: {{match: [abx], no_match: [ab]}}\n{fields}"
    )
}

#[test]
fn names_that_resolve_to_nothing_are_load_errors() {
    assert!(rule_file::parse(&one_rule("")).is_ok());
    for (fields, message) in [
        ("    validator: nope\n", "unknown validator \"nope\""),
        ("    extend: nope\n", "unknown extender \"nope\""),
        ("    not_after: nope\n", "unknown byte class \"nope\""),
        ("    not_followed_by: nope\n", "unknown byte class \"nope\""),
        (
            "    lead: {class: nope, min: 1, max: 2}\n",
            "unknown byte class \"nope\"",
        ),
        ("    min_entropy: 9\n", "min_entropy"),
        ("    surprise: 1\n", "surprise"),
    ] {
        let error = rule_file::parse(&one_rule(fields))
            .err()
            .unwrap_or_else(|| panic!("{fields:?} loaded"));
        assert!(error.contains(message), "{fields:?}: {error}");
    }
    let macro_error = rule_file::expand_tail("%{nope}").expect_err("unknown macro");
    assert!(macro_error.contains("unknown macro"), "{macro_error}");
    assert!(rule_file::expand_tail("%{value:0}").is_err());
    let twice = format!(
        "{}{}",
        one_rule(""),
        &one_rule("")["version: 1\nrules:\n".len()..]
    );
    let error = rule_file::parse(&twice).expect_err("duplicate id");
    assert!(error.contains("used twice"), "{error}");
    let error = rule_file::parse(&one_rule("").replace("version: 1", "version: 2"))
        .expect_err("newer version");
    assert!(error.contains("version 2"), "{error}");
}

// ---------------------------------------------------------------------------
// The README's list of services.

/// The table of services that `README.md` holds between its markers.
fn services_table() -> String {
    let mut by_service: BTreeMap<String, (String, BTreeSet<String>, usize)> = BTreeMap::new();
    for rule in table() {
        let Some(service) = &rule.service else {
            continue;
        };
        let entry = by_service
            .entry(service.clone())
            .or_insert_with(|| (rule.category.clone(), BTreeSet::new(), 0));
        entry.1.insert(format!("`{}`", rule.kind));
        entry.2 += 1;
    }
    let mut out =
        String::from("| service | category | placeholder kinds | rules |\n|---|---|---|---:|\n");
    let mut sorted: Vec<_> = by_service.into_iter().collect();
    sorted.sort_by_key(|(name, _)| name.to_ascii_lowercase());
    for (service, (category, kinds, count)) in &sorted {
        let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
        out.push_str(&format!(
            "| {service} | {category} | {} | {count} |\n",
            kinds.join(", ")
        ));
    }
    let generic: Vec<String> = table()
        .iter()
        .filter(|r| r.service.is_none())
        .map(|r| format!("`{}` ({})", r.id, r.kind))
        .collect();
    out.push_str(&format!(
        "\n{} services, {} rules in all. Shapes shared by many services: {}.\n",
        sorted.len(),
        table().len(),
        generic.join(", ")
    ));
    out
}

#[test]
fn readme_lists_every_service() {
    const BEGIN: &str =
        "<!-- services:begin (generated by the rule_file_tests; SANDBAR_BLESS=1 rewrites it) -->\n";
    const END: &str = "<!-- services:end -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md reads");
    let (Some(begin), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md lacks the services markers");
    };
    let current = &readme[begin + BEGIN.len()..end];
    let wanted = services_table();
    if current == wanted {
        return;
    }
    if std::env::var_os("SANDBAR_BLESS").is_some() {
        let updated = format!(
            "{}{wanted}{}",
            &readme[..begin + BEGIN.len()],
            &readme[end..]
        );
        std::fs::write(path, updated).expect("README.md writes");
        return;
    }
    panic!(
        "the services table in README.md is stale; regenerate it with \
         `SANDBAR_BLESS=1 cargo test -p sandbar-redact readme_lists_every_service`"
    );
}
