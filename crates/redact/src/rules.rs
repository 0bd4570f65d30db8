//! The credential rules: a data file (`rules/secrets.yaml`) saying what each
//! credential looks like, compiled once per process into one keyword
//! prefilter and one anchored regex per rule; plus the rules users add.
//!
//! # How a rule is matched, and why it is both complete and linear
//!
//! A rule is `{kind, keywords, tail, validator, extend, ...}`. Its regex is
//! built as `(?:KEYWORD|KEYWORD|..)(?:TAIL)`, so **every match begins with one
//! of the rule's keywords**; this holds by construction, not by convention.
//!
//! The scanner runs one Aho-Corasick automaton (ASCII case-insensitive, all
//! overlapping matches) over the input to find every keyword occurrence of
//! every rule, and for each occurrence runs the rule's regex *anchored at that
//! position* over the rest of the input (look-behind assertions still see the
//! bytes before it). Since every match starts at a keyword occurrence and
//! every occurrence is tried, no match can be missed: this is exact, not a
//! window heuristic, and it needs no argument about how long a match can be.
//! Before the regex runs, cheap checks that cannot change its answer reject
//! most occurrences: the keyword's exact case for case-sensitive rules, and
//! the set of bytes the tail can begin with.
//!
//! The cost of one anchored attempt is the number of bytes the regex examines
//! before it succeeds or dies. To keep the whole scan linear in the input:
//!
//! - Tails use bounded repetitions (`{8,512}`), so an attempt examines a
//!   bounded number of bytes, whatever follows (a test checks the bound of
//!   every rule). A value longer than the bound is then continued by the
//!   rule's extender, which runs only after the match was accepted; and a
//!   later keyword occurrence that falls inside a match the same rule already
//!   accepted is not tried again. So each rule extends over each input byte
//!   at most once.
//! - The few tails with an unbounded repetition (JWTs) only start where the
//!   previous byte cannot belong to the same run (`not_after`), so each run of
//!   token characters is scanned by a bounded number of attempts. Each such
//!   rule says so in its documentation.
//! - A rule may take a bounded *lead* of bytes just before its keyword
//!   (`lead: {class: digit, min: 8, max: 10}` for Telegram's `123456789:AA...`):
//!   counting it looks at most `max + 1` bytes back.
//! - User rules may not contain unbounded repetitions at all, and their
//!   matches are at most [`MAX_CUSTOM_MATCH`] bytes long.
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
//! Add an entry to `rules/secrets.yaml` (its header explains every field): a
//! `kind` (snake_case, it names the placeholder), the `service` and a `doc`
//! saying what it matches and why the regex looks the way it does, the
//! literal `keywords` every match starts with (as specific as possible: they
//! decide how often the regex runs), a `tail` with bounded repetitions, a
//! `validator` where the shape alone would match ordinary text, and
//! examples: inputs it must match and near misses it must not. Put a capture
//! group around the part to replace if the match also holds context to keep
//! (a key, a scheme). The tests run every example.

use std::sync::{Arc, OnceLock};

use crate::keywords::Keywords;
use regex_automata::meta;
use regex_automata::util::syntax;
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::rule_file::{self, Examples};

/// The text every placeholder starts with.
pub(crate) const PLACEHOLDER_PREFIX: &str = "[REDACTED:";

/// The most capture groups a rule tail may use; checked when rules compile.
pub(crate) const MAX_GROUPS: usize = 7;

/// The longest match a user rule may have, in bytes.
pub(crate) const MAX_CUSTOM_MATCH: usize = 1024;

/// Capture groups of the `%{value:N}` and `%{assignment:N}` macros, in order.
pub(crate) const GROUP_ESCAPED_QUOTED: usize = 1;
pub(crate) const GROUP_DOUBLE_QUOTED: usize = 2;
pub(crate) const GROUP_SINGLE_QUOTED: usize = 3;
pub(crate) const GROUP_UNQUOTED: usize = 4;
pub(crate) const GROUP_XML: usize = 5;

/// A match of a rule, as its validator and extender see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<'h> {
    /// The whole input being scanned.
    pub hay: &'h [u8],
    /// Where the keyword occurrence that started the match begins.
    pub keyword_start: usize,
    /// Where the regex match ends.
    pub match_end: usize,
    /// Start of the part to replace: the first capture group that took part
    /// in the match, or the whole match (with its lead) when the tail has no
    /// group.
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

/// A piece of code that the rule file refers to by name.
#[derive(Clone, Copy)]
pub(crate) struct Named<T> {
    pub name: &'static str,
    pub f: T,
}

impl<T> std::fmt::Debug for Named<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Decides whether a regex match really is a credential.
pub(crate) type ValidatorFn = fn(&Hit<'_>) -> bool;
pub(crate) type Validator = Named<ValidatorFn>;
/// Continues a match past the regex's bounded repetition; returns the new end
/// of the part to replace, or `None` to reject the match.
pub(crate) type ExtenderFn = fn(&Hit<'_>) -> Option<usize>;
pub(crate) type Extender = Named<ExtenderFn>;
/// A set of bytes.
pub(crate) type ByteClass = Named<fn(u8) -> bool>;

impl ByteClass {
    pub(crate) fn run(&self, byte: u8) -> bool {
        (self.f)(byte)
    }
}

/// Bytes just before the keyword that belong to the match.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lead {
    pub class: ByteClass,
    /// At least this many bytes of `class` must precede the keyword.
    pub min: usize,
    /// At most this many may; a longer run is not this credential.
    pub max: usize,
}

/// One credential rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// Unique within the rule file; names the rule in tests and listings.
    pub id: String,
    /// The placeholder kind: a match is replaced by `[REDACTED:kind]`.
    pub kind: String,
    /// The service or platform whose credential this is; `None` for rules
    /// that recognise a shape used everywhere (assignments, URLs, headers).
    #[cfg_attr(not(test), allow(dead_code))]
    pub service: Option<String>,
    /// What sort of service it is (cloud, payment, ...), for listings.
    #[cfg_attr(not(test), allow(dead_code))]
    pub category: String,
    /// What the rule matches and why its regex looks the way it does.
    #[cfg_attr(not(test), allow(dead_code))]
    pub doc: String,
    /// Every match begins with one of these. They double as the prefilter:
    /// the regex runs only where a keyword occurs.
    pub keywords: Vec<String>,
    /// Whether the keyword may appear in any letter case (`Password=`,
    /// `BEARER`); otherwise it must appear exactly as written (`ghp_`).
    pub case_insensitive: bool,
    /// A match is not tried when the byte just before it (before the keyword,
    /// or before the lead) is in this class: it keeps `task-...` from looking
    /// like `sk-...`.
    pub not_after: Option<ByteClass>,
    /// A match is rejected when the byte just after it is in this class: a
    /// fixed-length token followed by more token characters is something
    /// else.
    pub not_followed_by: Option<ByteClass>,
    /// Bytes before the keyword that belong to the match.
    pub lead: Option<Lead>,
    /// Regex (bytes, Unicode off) for what follows the keyword, macros
    /// expanded.
    pub tail: String,
    pub validator: Option<Validator>,
    pub extend: Option<Extender>,
    /// The least Shannon entropy, in bits per byte, of the part replaced.
    pub min_entropy: Option<f64>,
    /// Inputs the rule must match and near misses it must leave alone; only
    /// the tests read them.
    #[cfg_attr(not(test), allow(dead_code))]
    pub examples: Examples,
}

/// A rule ready to run: its pattern parsed and checked, its regex compiled
/// on first use (most rules never trigger in a given process, and compiling
/// all of them up front would cost a tenth of a second at start-up).
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub rule: Rule,
    /// `(?:keywords)(?:tail)`.
    pattern: String,
    regex: OnceLock<meta::Regex>,
    /// How many capture slots a search fills: two per group, group 0 included.
    pub slots: usize,
    /// The longest text the pattern can match, or `None` when unbounded.
    pub max_len: Option<usize>,
    /// The bytes the tail can begin with, or `None` when it could begin with
    /// anything (or match the empty string). A keyword occurrence followed by
    /// any other byte cannot start a match, so the regex is not run.
    pub first_bytes: Option<Box<[bool; 256]>>,
    /// The pairs of bytes the tail can begin with, worked out on first use.
    pairs: OnceLock<Option<BytePairs>>,
    /// The runs of classes the tail begins with (`[ \t]{1,16}` then
    /// `[A-Za-z0-9._~+/=-]{8,512}`), where they take three bytes or more.
    pub leading_runs: Box<[Run]>,
}

/// A class repeated `min..=max` times at the start of a tail.
#[derive(Debug)]
pub(crate) struct Run {
    class: [bool; 256],
    min: usize,
    max: usize,
}

/// Whether `text` can begin with the `runs`: each, in turn, as many bytes
/// of its class as there are up to its most, and at least its least. That
/// the reading is greedy loses no match: each run's class shares no byte
/// with the next one's, which takes at least one byte, so a run can only
/// end where its class does.
pub(crate) fn runs_may_begin(runs: &[Run], text: &[u8]) -> bool {
    let mut at = 0;
    for run in runs {
        let len = text
            .get(at..)
            .unwrap_or_default()
            .iter()
            .take(run.max)
            .take_while(|&&b| run.class[usize::from(b)])
            .count();
        if len < run.min {
            return false;
        }
        at += len;
    }
    true
}

impl CompiledRule {
    /// Whether a match of the tail can begin with `first` then `second`
    /// (true when that is not known). Cheaper than the regex by two orders
    /// of magnitude, and on prose it turns most keyword occurrences away
    /// (`token count`, `password from`, `pattern`), whose first byte
    /// alone could begin a match.
    pub(crate) fn tail_may_begin(&self, first: u8, second: u8) -> bool {
        self.pairs
            .get_or_init(|| byte_pairs(&self.rule.tail))
            .as_ref()
            .is_none_or(|pairs| pairs.contains(first, second))
    }

    /// The rule's regex, compiled on first use.
    pub(crate) fn regex(&self) -> &meta::Regex {
        self.regex.get_or_init(|| {
            // The pattern parsed when the rule was loaded, user rules are
            // compiled when they are added, and the tests compile every
            // built-in rule; what remains would be a bug in the rule file.
            compile_pattern(&self.pattern)
                .unwrap_or_else(|e| panic!("rule {} does not compile: {e}", self.rule.id))
        })
    }

    /// Compiles the regex now, reporting an error instead of panicking.
    pub(crate) fn compile_now(&self) -> Result<&meta::Regex, String> {
        if let Some(regex) = self.regex.get() {
            return Ok(regex);
        }
        let regex =
            compile_pattern(&self.pattern).map_err(|e| format!("rule {}: {e}", self.rule.id))?;
        Ok(self.regex.get_or_init(|| regex))
    }
}

/// What to try when a keyword pattern occurs.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    /// Index of the rule in [`RuleSet::rules`].
    pub rule: usize,
    /// The rule's keywords that begin with this pattern, as written; the
    /// text must begin with one of them (in any case when the rule is case
    /// insensitive) for the rule to be tried.
    pub keywords: Vec<Box<[u8]>>,
    pub case_insensitive: bool,
}

/// The automaton searches for the first bytes of each keyword only: a
/// smaller automaton is a faster one (about 1.5 times on source code, with
/// half the states), and the few extra occurrences it reports are checked
/// against the whole keyword before any regex runs.
pub(crate) const KEYWORD_PREFIX: usize = 8;

/// The first [`KEYWORD_PREFIX`] bytes of a keyword, lower-cased, cut on a
/// char boundary.
fn keyword_pattern(keyword: &str) -> String {
    let mut end = keyword.len().min(KEYWORD_PREFIX);
    while !keyword.is_char_boundary(end) {
        end -= 1;
    }
    keyword[..end].to_ascii_lowercase()
}

/// The compiled form of a rule table: the default one is shared by every
/// redactor of the process; redactors with user rules add theirs to it.
#[derive(Debug)]
pub(crate) struct RuleSet {
    pub rules: Vec<Arc<CompiledRule>>,
    /// The first bytes of every keyword of every rule (see
    /// [`KEYWORD_PREFIX`]), lower-cased and deduplicated, then the start of
    /// the placeholder prefix; ASCII case-insensitive, all overlapping
    /// matches.
    pub keywords: Keywords,
    /// For each keyword pattern id, the rules it triggers.
    pub triggers: Vec<Vec<Trigger>>,
    /// `keywords`' patterns, then the personal-data cue words: the
    /// automaton of a scan that reads the text for both.
    pub with_cues: Keywords,
    /// For each keyword pattern id, the personal-data cue word it is
    /// (index into [`sandbar_mask::cue_words`]), if it is one: the
    /// detector's cue words ride in this automaton, so a text is read once
    /// for both (see `Redactor::redact_str_with_cues`). Cue patterns
    /// trigger no rule.
    pub cue_of: Vec<Option<u32>>,
    /// The pattern id of [`PLACEHOLDER_PREFIX`] in `keywords`.
    pub marker: usize,
    /// The longest pattern of `keywords`, in bytes.
    pub longest_keyword: usize,
    /// The longest match of any rule with a bounded pattern: how far before a
    /// change a match that the change affects can start. (Unbounded rules,
    /// JWTs, cannot match across a placeholder; see `Redactor::resolve`.)
    pub max_attempt: usize,
}

impl RuleSet {
    /// Compiles a rule table. Fails only on a mistake in the table itself,
    /// which the tests catch for the default table.
    pub(crate) fn compile(table: &[Rule]) -> Result<RuleSet, String> {
        let rules = table
            .iter()
            .map(|rule| compile_rule(rule.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, String>>()?;
        RuleSet::assemble(rules)
    }

    /// Builds the keyword automaton over already compiled rules.
    pub(crate) fn assemble(rules: Vec<Arc<CompiledRule>>) -> Result<RuleSet, String> {
        let mut patterns: Vec<String> = Vec::new();
        let mut triggers: Vec<Vec<Trigger>> = Vec::new();
        for (index, compiled) in rules.iter().enumerate() {
            let rule = &compiled.rule;
            if rule.keywords.is_empty() {
                return Err(format!("rule {} has no keyword", rule.id));
            }
            for keyword in &rule.keywords {
                let pattern = keyword_pattern(keyword);
                if pattern.is_empty() {
                    return Err(format!("rule {} has an empty keyword", rule.id));
                }
                let id = match patterns.iter().position(|p| *p == pattern) {
                    Some(id) => id,
                    None => {
                        patterns.push(pattern);
                        triggers.push(Vec::new());
                        patterns.len() - 1
                    }
                };
                let list = &mut triggers[id];
                let trigger = match list.iter().position(|t| t.rule == index) {
                    Some(at) => &mut list[at],
                    None => {
                        list.push(Trigger {
                            rule: index,
                            keywords: Vec::new(),
                            case_insensitive: rule.case_insensitive,
                        });
                        list.last_mut().expect("just pushed")
                    }
                };
                trigger.keywords.push(keyword.as_bytes().into());
            }
        }
        let marker = patterns.len();
        patterns.push(keyword_pattern(PLACEHOLDER_PREFIX));
        triggers.push(Vec::new());
        let keyword_count = patterns.len();
        let mut cue_of: Vec<Option<u32>> = vec![None; patterns.len()];
        for (index, word) in sandbar_mask::cue_words().enumerate() {
            let index = u32::try_from(index).map_err(|_| "too many cue words".to_owned())?;
            // A whole word, not a prefix: the detector needs its exact end.
            let word = word.to_ascii_lowercase();
            match patterns.iter().position(|p| *p == word) {
                Some(id) => cue_of[id] = Some(index),
                None => {
                    patterns.push(word);
                    triggers.push(Vec::new());
                    cue_of.push(Some(index));
                }
            }
        }
        // Two automata: the keywords alone (a smaller one, faster where no
        // personal data is looked for) and the keywords with the cue words
        // after them (same ids for the keywords).
        let keywords = Keywords::new(&patterns[..keyword_count])?;
        let with_cues = Keywords::new(&patterns)?;
        let longest_keyword = patterns.iter().map(String::len).max().unwrap_or(0);
        let max_attempt = rules.iter().filter_map(|r| r.max_len).max().unwrap_or(0);
        Ok(RuleSet {
            rules,
            keywords,
            with_cues,
            cue_of,
            triggers,
            marker,
            longest_keyword,
            max_attempt,
        })
    }

    /// The kinds this set can produce, for recognising its placeholders.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = &str> + '_ {
        self.rules.iter().map(|r| r.rule.kind.as_str())
    }
}

/// Prepares one rule: parses its pattern (a syntax error is reported here),
/// counts its groups and finds the bytes its tail can begin with. The regex
/// itself is compiled on first use.
pub(crate) fn compile_rule(rule: Rule) -> Result<CompiledRule, String> {
    let pattern = rule_pattern(&rule);
    let hir = syntax::parse_with(&pattern, &syntax_config())
        .map_err(|e| format!("rule {}: {e}", rule.id))?;
    let groups = hir.properties().explicit_captures_len() + 1;
    if groups > MAX_GROUPS {
        return Err(format!(
            "rule {} has {} capture groups, at most {} are supported",
            rule.id,
            groups - 1,
            MAX_GROUPS - 1
        ));
    }
    // The tail alone, parsed once for the checks made before its regex.
    let tail = syntax::parse_with(&rule.tail, &syntax_config()).ok();
    let first_bytes = tail.as_ref().and_then(first_bytes);
    let leading_runs = tail.as_ref().map(leading_runs).unwrap_or_default();
    Ok(CompiledRule {
        max_len: hir.properties().maximum_len(),
        rule,
        pattern,
        regex: OnceLock::new(),
        slots: groups * 2,
        first_bytes,
        pairs: OnceLock::new(),
        leading_runs,
    })
}

/// The runs of classes a match of `hir` begins with (see [`Run`]): each
/// but the last shares no byte with the next, and each takes a byte or
/// more. Empty when they would take fewer than three bytes in all.
fn leading_runs(hir: &Hir) -> Box<[Run]> {
    fn uncaptured(hir: &Hir) -> &Hir {
        match hir.kind() {
            HirKind::Capture(capture) => uncaptured(&capture.sub),
            _ => hir,
        }
    }
    fn run(hir: &Hir) -> Option<Run> {
        let (sub, min, max) = match uncaptured(hir).kind() {
            HirKind::Repetition(repetition) => (
                uncaptured(&repetition.sub),
                repetition.min,
                repetition.max.unwrap_or(u32::MAX),
            ),
            HirKind::Class(_) => (uncaptured(hir), 1, 1),
            _ => return None,
        };
        let HirKind::Class(_) = sub.kind() else {
            return None;
        };
        let mut class = [false; 256];
        first_set(sub, &mut class)?;
        Some(Run {
            class,
            min: usize::try_from(min).ok()?,
            max: usize::try_from(max).unwrap_or(usize::MAX),
        })
    }
    let parts: Vec<&Hir> = match uncaptured(hir).kind() {
        HirKind::Concat(parts) => parts.iter().collect(),
        _ => vec![hir],
    };
    let mut runs: Vec<Run> = Vec::new();
    for part in parts {
        let Some(next) = run(part) else { break };
        if next.min == 0 {
            break;
        }
        if let Some(last) = runs.last()
            && (0..256).any(|b| last.class[b] && next.class[b])
        {
            break;
        }
        runs.push(next);
    }
    if runs.iter().map(|r| r.min).sum::<usize>() < 3 {
        return Box::default();
    }
    runs.into_boxed_slice()
}

/// A set of two-byte sequences.
#[derive(Debug)]
struct BytePairs(Box<[u64; 1024]>);

impl BytePairs {
    fn contains(&self, first: u8, second: u8) -> bool {
        let bit = usize::from(first) << 8 | usize::from(second);
        self.0[bit >> 6] & (1 << (bit & 63)) != 0
    }
}

/// The two-byte sequences a match of `tail` can begin with, read off a
/// lazy DFA of the tail: after each first byte that does not kill it, each
/// second byte that does not either. `None` where that cannot be known
/// exactly: a tail with look-around assertions (the DFA would need the
/// keyword before it), one that can match fewer than two bytes, or a DFA
/// that does not build.
fn byte_pairs(tail: &str) -> Option<BytePairs> {
    use regex_automata::hybrid::dfa::DFA;
    use regex_automata::nfa::thompson;
    use regex_automata::util::start;

    let hir = syntax::parse_with(tail, &syntax_config()).ok()?;
    let properties = hir.properties();
    // A tail that can end within two bytes may end before the pair: then
    // any pair can follow the keyword.
    if !properties.look_set().is_empty() || properties.minimum_len().is_none_or(|n| n < 2) {
        return None;
    }
    let dfa = DFA::builder()
        .syntax(syntax_config())
        .thompson(thompson::Config::new().utf8(false))
        .build(tail)
        .ok()?;
    let mut cache = dfa.create_cache();
    let config = start::Config::new().anchored(regex_automata::Anchored::Yes);
    let begin = dfa.start_state(&mut cache, &config).ok()?;
    let mut pairs = Box::new([0u64; 1024]);
    for first in 0..=255u8 {
        let after_first = dfa.next_state(&mut cache, begin, first).ok()?;
        if after_first.is_dead() {
            continue;
        }
        for second in 0..=255u8 {
            let after_second = dfa.next_state(&mut cache, after_first, second).ok()?;
            if !after_second.is_dead() {
                let bit = usize::from(first) << 8 | usize::from(second);
                pairs[bit >> 6] |= 1 << (bit & 63);
            }
        }
    }
    Some(BytePairs(pairs))
}

/// Builds `(?:kw|kw..)(?:tail)` for a rule; see the module documentation for
/// why every match must begin with a keyword.
pub(crate) fn rule_pattern(rule: &Rule) -> String {
    let keywords: Vec<String> = rule.keywords.iter().map(|k| escape(k)).collect();
    let flags = if rule.case_insensitive { "i" } else { "" };
    format!("(?{flags}:{})(?:{})", keywords.join("|"), rule.tail)
}

fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

/// Compiles a byte-oriented, Unicode-off regex: the measured difference is
/// two orders of magnitude, and credentials are ASCII anyway.
pub(crate) fn compile_pattern(pattern: &str) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .syntax(syntax_config())
        .configure(meta::Config::new().utf8_empty(false))
        .build(pattern)
        .map_err(|e| e.to_string())
}

/// The longest text `pattern` can match, or `None` when it is unbounded.
pub(crate) fn pattern_max_len(pattern: &str) -> Result<Option<usize>, String> {
    let hir = syntax::parse_with(pattern, &syntax_config()).map_err(|e| e.to_string())?;
    Ok(hir.properties().maximum_len())
}

/// The bytes a match of `tail` can begin with, read off its parsed form.
/// `None` when that cannot be told (a look-around assertion before the first
/// byte), when the tail can match the empty string, or when any byte can
/// begin it.
fn first_bytes(tail: &Hir) -> Option<Box<[bool; 256]>> {
    let mut set = Box::new([false; 256]);
    let nullable = first_set(tail, &mut set)?;
    if nullable || set.iter().all(|&b| b) {
        None
    } else {
        Some(set)
    }
}

/// Adds to `set` the bytes a match of `hir` can begin with; returns whether
/// it can match the empty string, or `None` when a look-around assertion
/// comes before the first byte.
fn first_set(hir: &Hir, set: &mut [bool; 256]) -> Option<bool> {
    match hir.kind() {
        HirKind::Empty => Some(true),
        HirKind::Literal(literal) => {
            let &first = literal.0.first()?;
            set[usize::from(first)] = true;
            Some(false)
        }
        HirKind::Class(Class::Bytes(class)) => {
            for range in class.ranges() {
                for byte in range.start()..=range.end() {
                    set[usize::from(byte)] = true;
                }
            }
            Some(false)
        }
        HirKind::Class(Class::Unicode(class)) => {
            for range in class.ranges() {
                // With Unicode off, classes are bytes; a class that still
                // reaches past ASCII is not worth reasoning about.
                let (start, end) = (u32::from(range.start()), u32::from(range.end()));
                if end > 0x7f {
                    return None;
                }
                for byte in start..=end {
                    set[byte as usize] = true;
                }
            }
            Some(false)
        }
        HirKind::Look(_) => None,
        HirKind::Repetition(repetition) => {
            let nullable = first_set(&repetition.sub, set)?;
            Some(nullable || repetition.min == 0)
        }
        HirKind::Capture(capture) => first_set(&capture.sub, set),
        HirKind::Concat(parts) => {
            for part in parts {
                if !first_set(part, set)? {
                    return Some(false);
                }
            }
            Some(true)
        }
        HirKind::Alternation(branches) => {
            let mut nullable = false;
            for branch in branches {
                nullable |= first_set(branch, set)?;
            }
            Some(nullable)
        }
    }
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

/// The default rule table, parsed from the rule file once per process.
pub(crate) fn default_table() -> &'static [Rule] {
    static TABLE: OnceLock<Vec<Rule>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The file is built in, and the tests load it, so a failure here is a
        // bug in the file rather than bad input.
        rule_file::parse(rule_file::SECRETS_YAML).expect("the built-in rule file loads")
    })
}

/// The default rule set, compiled once per process.
pub(crate) fn default_rules() -> Arc<RuleSet> {
    static SET: OnceLock<Arc<RuleSet>> = OnceLock::new();
    SET.get_or_init(|| {
        Arc::new(RuleSet::compile(default_table()).expect("the built-in rule file compiles"))
    })
    .clone()
}

/// A rule set with no rule: it still recognises placeholders.
pub(crate) fn no_rules() -> Arc<RuleSet> {
    static SET: OnceLock<Arc<RuleSet>> = OnceLock::new();
    SET.get_or_init(|| Arc::new(RuleSet::compile(&[]).expect("an empty rule table compiles")))
        .clone()
}

#[cfg(test)]
pub(crate) use crate::extenders::EXTENDED_BYTES;
