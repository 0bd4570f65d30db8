//! The `Redactor` and its builder: holds the known secrets and the rule set,
//! and turns the spans a scan finds into placeholders.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use serde_json::Value;

use crate::custom::CustomRule;
use crate::encodings;
use crate::error::RedactError;
use crate::rules::{self, CompiledRule, PLACEHOLDER_PREFIX, RuleSet};
use crate::scan::{self, Label, Scanner, Span};

/// The shortest secret value accepted, in bytes.
pub(crate) const MIN_SECRET_LEN: usize = 4;

/// The most pattern bytes (all encodings of all secrets) one redactor holds.
/// It keeps the exact-match automaton far inside its size limits, so that
/// building it cannot fail.
const MAX_PATTERN_BYTES: usize = 256 * 1024 * 1024;

/// Up to this many bytes of secret patterns (all encodings of all secrets),
/// the exact-match automaton is a DFA (some fifty secrets; a DFA of that
/// many pattern bytes takes a few megabytes and milliseconds to build).
const SECRET_DFA_BYTES: usize = 64 * 1024;

/// How many times a text is rescanned after a replacement. Replacing a span
/// can make text next to it match where it did not before (`xghp_...` is not
/// a token, `[REDACTED:secret:a]ghp_...` is); rescanning until nothing new
/// is found is what makes `redact(redact(x)) == redact(x)` hold. Each pass
/// replaces at least one byte that was not yet in a placeholder, so the loop
/// ends; real inputs need one extra pass at most.
const MAX_PASSES: usize = 16;

#[cfg(test)]
thread_local! {
    /// Makes rescans cover the whole text, for tests that compare the two.
    pub(crate) static FULL_RESCAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Redacts known secrets and credentials from text and JSON.
///
/// Immutable and cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

struct Inner {
    rules: Arc<RuleSet>,
    default_patterns: bool,
    custom: Vec<Arc<CompiledRule>>,
    secrets: Vec<KnownSecret>,
    matcher: Option<AhoCorasick>,
    owner: Vec<usize>,
    placeholders: HashSet<Vec<u8>>,
    max_placeholder: usize,
    /// The longest pattern of `matcher`, in bytes.
    longest_secret: usize,
}

/// A registered secret with its encodings (raw first).
#[derive(Clone)]
struct KnownSecret {
    name: String,
    value: String,
    variants: Vec<Vec<u8>>,
}

/// One thing found in a text: a byte range and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// As in the placeholder: `github_token`, `password`, `secret:NAME`.
    pub kind: String,
    /// Byte offset where the replaced text starts.
    pub start: usize,
    /// Byte offset where the replaced text ends (exclusive).
    pub end: usize,
}

impl Redactor {
    /// The default credential patterns and no known secrets.
    pub fn new() -> Redactor {
        Redactor::builder().build()
    }

    /// Starts a redactor with the default patterns and no known secrets.
    pub fn builder() -> RedactorBuilder {
        RedactorBuilder {
            default_patterns: true,
            custom: Vec::new(),
            rules: None,
            secrets: Vec::new(),
            pattern_bytes: 0,
        }
    }

    /// Replaces every secret and credential in `input` by its placeholder.
    /// Returns `Cow::Borrowed` when nothing was found, without allocating.
    pub fn redact_str<'a>(&self, input: &'a str) -> Cow<'a, str> {
        match self.resolve(input, None) {
            Some((_, redacted)) => Cow::Owned(redacted),
            None => Cow::Borrowed(input),
        }
    }

    /// [`Redactor::redact_str`], also collecting, in the same pass, every
    /// occurrence in the redacted text of the personal-data detector's cue
    /// words ([`sandbar_mask::cue_words`]: start, end, index) into `cues`,
    /// for [`sandbar_mask::Detector::find_with_cues`].
    pub fn redact_str_with_cues<'a>(
        &self,
        input: &'a str,
        cues: &mut Vec<(usize, usize, usize)>,
    ) -> Cow<'a, str> {
        cues.clear();
        match self.resolve(input, Some(cues)) {
            Some((found, redacted)) => {
                self.carry_cues(&found, cues);
                Cow::Owned(redacted)
            }
            None => Cow::Borrowed(input),
        }
    }

    /// Moves cue matches found in an input onto its redaction by `found`:
    /// those clear of every replaced span shift with the text around them;
    /// those that overlapped one are gone. A cue word inside a placeholder
    /// (`[REDACTED:ip_address]`) is none of the detector's business — it
    /// ignores cues that overlap placeholders — so the placeholders are
    /// not read again.
    fn carry_cues(&self, found: &[Span], cues: &mut Vec<(usize, usize, usize)>) {
        // Each span in the input, and its placeholder in the output.
        let mut regions = Vec::with_capacity(found.len());
        let mut shift = 0isize;
        for span in found {
            let start = span.start.saturating_add_signed(shift);
            let end = start + self.placeholder_len(span.label);
            regions.push((span.start, span.end, start, end));
            shift += (end - start) as isize - (span.end - span.start) as isize;
        }
        cues.sort_unstable();
        let mut kept = Vec::with_capacity(cues.len() + regions.len());
        let (mut next, mut shift) = (0, 0isize);
        for &(start, end, index) in cues.iter() {
            while let Some(&(s, e, ps, pe)) = regions.get(next)
                && e <= start
            {
                shift += (pe - ps) as isize - (e - s) as isize;
                next += 1;
            }
            if regions.get(next).is_some_and(|&(s, _, _, _)| s < end) {
                continue;
            }
            kept.push((
                start.saturating_add_signed(shift),
                end.saturating_add_signed(shift),
                index,
            ));
        }
        kept.sort_unstable();
        kept.dedup();
        *cues = kept;
    }

    /// Redacts every string in place, object keys included. A number whose
    /// digits contain a secret becomes a string holding its redacted digits.
    /// Keys that become equal after redaction are kept apart with a ` (2)`,
    /// ` (3)`... suffix rather than overwriting each other.
    pub fn redact_json(&self, value: &mut Value) {
        // An explicit stack rather than recursion: a JSON value built in
        // memory can be nested deeper than the thread's stack allows.
        let mut stack: Vec<&mut Value> = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(text) => {
                    if let Cow::Owned(redacted) = self.redact_str(text) {
                        *text = redacted;
                    }
                }
                Value::Number(_) => self.redact_number(value),
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    self.redact_keys(map);
                    stack.extend(map.values_mut());
                }
                Value::Null | Value::Bool(_) => {}
            }
        }
    }

    /// What was found, in order and non-overlapping: the same spans that
    /// [`Redactor::redact_str`] replaces.
    pub fn find(&self, input: &str) -> Vec<Finding> {
        match self.resolve(input, None) {
            Some((spans, _)) => spans
                .into_iter()
                .map(|span| Finding {
                    kind: self.kind(span.label),
                    start: span.start,
                    end: span.end,
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// Number of registered known secrets (for diagnostics).
    pub fn secret_count(&self) -> usize {
        self.inner.secrets.len()
    }

    /// A builder holding this redactor's patterns and secrets, to add more.
    pub(crate) fn to_builder(&self) -> RedactorBuilder {
        let inner = &self.inner;
        RedactorBuilder {
            default_patterns: inner.default_patterns,
            custom: inner.custom.clone(),
            rules: Some(inner.rules.clone()),
            pattern_bytes: inner
                .secrets
                .iter()
                .map(|s| s.variants.iter().map(Vec::len).sum::<usize>())
                .sum(),
            secrets: inner.secrets.clone(),
        }
    }

    fn scanner(&self) -> Scanner<'_> {
        let inner = &*self.inner;
        Scanner {
            rules: &inner.rules,
            secrets: inner.matcher.as_ref(),
            secret_owner: &inner.owner,
            placeholders: &inner.placeholders,
            max_placeholder: inner.max_placeholder,
            longest_secret: inner.longest_secret,
        }
    }

    /// Scans `input` and rescans the redacted text until nothing new turns
    /// up (see [`MAX_PASSES`]). Returns the spans in `input`'s coordinates and
    /// the redacted text, or `None` when nothing was found.
    fn resolve(
        &self,
        input: &str,
        cues: Option<&mut Vec<(usize, usize, usize)>>,
    ) -> Option<(Vec<Span>, String)> {
        let scanner = self.scanner();
        let mut found = scanner.scan_with_cues(input, cues);
        if found.is_empty() {
            return None;
        }
        let mut redacted = self.render(input, &found);
        for _ in 1..MAX_PASSES {
            #[cfg(test)]
            let windows = if FULL_RESCAN.with(std::cell::Cell::get) {
                std::iter::once(0..redacted.len()).collect()
            } else {
                self.rescan_windows(redacted.len(), &found)
            };
            #[cfg(not(test))]
            let windows = self.rescan_windows(redacted.len(), &found);
            let again = scanner.scan_windows(&redacted, &windows);
            if again.is_empty() {
                break;
            }
            let mapped = self.map_back(&again, &found);
            found.extend(mapped);
            found = scan::resolve(found);
            redacted = self.render(input, &found);
        }
        Some((found, redacted))
    }

    /// Where a rescan of the rendering of `found` must look for keywords.
    ///
    /// A match that replacing a span can create or change must read the
    /// placeholder or the bytes around it: its keyword starts at most one
    /// bounded attempt before the placeholder (`RuleSet::max_attempt`), or
    /// just after it (where `not_after`, a lead or an ANSI sequence look a
    /// few bytes back). Rules with unbounded patterns (JWTs) cannot match a
    /// placeholder's `[`, and a placeholder can only shorten their runs, so
    /// it cannot make them match where they did not. Text far from every
    /// placeholder is exactly as it was in the previous pass, and its matches
    /// are already known.
    fn rescan_windows(&self, rendered_len: usize, found: &[Span]) -> Vec<Range<usize>> {
        const MARGIN: usize = scan::RESCAN_MARGIN;
        let back = self.inner.rules.max_attempt + MARGIN;
        let mut windows: Vec<Range<usize>> = Vec::new();
        let mut shift: isize = 0;
        for span in found {
            let start = span.start.saturating_add_signed(shift);
            let placeholder = self.placeholder_len(span.label);
            let end = start + placeholder;
            shift += placeholder as isize - (span.end - span.start) as isize;
            let window = start.saturating_sub(back)..(end + MARGIN).min(rendered_len);
            match windows.last_mut() {
                Some(last) if window.start <= last.end => last.end = last.end.max(window.end),
                _ => windows.push(window),
            }
        }
        windows
    }

    /// Maps spans found in the rendering of `found` back to the original
    /// text. The scanner never matches inside a placeholder it produced, so a
    /// span lies between placeholders; should one still reach into a
    /// placeholder, it is widened to the whole original span behind it.
    fn map_back(&self, spans: &[Span], found: &[Span]) -> Vec<Span> {
        // For each placeholder: where it sits in the rendering, and the shift
        // (rendered minus original offset) of the text just before it.
        struct Placed {
            rendered_start: usize,
            rendered_end: usize,
            shift_before: isize,
            original: Span,
        }
        let mut layout = Vec::with_capacity(found.len());
        let mut shift: isize = 0;
        for span in found {
            let rendered_start = span.start.saturating_add_signed(shift);
            let placeholder = self.placeholder_len(span.label);
            layout.push(Placed {
                rendered_start,
                rendered_end: rendered_start + placeholder,
                shift_before: shift,
                original: *span,
            });
            shift += placeholder as isize - (span.end - span.start) as isize;
        }
        let to_original = |pos: usize, is_end: bool| -> usize {
            let i = layout.partition_point(|p| p.rendered_end <= pos);
            match layout.get(i) {
                // Inside a placeholder: widen to the original span behind it.
                Some(p) if pos > p.rendered_start => {
                    if is_end {
                        p.original.end
                    } else {
                        p.original.start
                    }
                }
                Some(p) => pos.saturating_add_signed(-p.shift_before),
                None => pos.saturating_add_signed(-shift),
            }
        };
        spans
            .iter()
            .map(|span| Span {
                start: to_original(span.start, false),
                end: to_original(span.end, true),
                label: span.label,
            })
            .filter(|span| span.end > span.start)
            .collect()
    }

    /// `input` with every span replaced by its placeholder.
    fn render(&self, input: &str, spans: &[Span]) -> String {
        let mut out = String::with_capacity(input.len() + spans.len() * 16);
        let mut last = 0;
        for span in spans {
            out.push_str(input.get(last..span.start).unwrap_or_default());
            self.push_placeholder(&mut out, span.label);
            last = span.end;
        }
        out.push_str(input.get(last..).unwrap_or_default());
        out
    }

    fn push_placeholder(&self, out: &mut String, label: Label) {
        out.push_str(PLACEHOLDER_PREFIX);
        out.push_str(&self.kind(label));
        out.push(']');
    }

    fn placeholder_len(&self, label: Label) -> usize {
        PLACEHOLDER_PREFIX.len() + self.kind(label).len() + 1
    }

    /// The kind shown in a placeholder and a [`Finding`].
    fn kind(&self, label: Label) -> String {
        match label {
            Label::Secret(i) => match self.inner.secrets.get(i) {
                Some(secret) => format!("secret:{}", secret.name),
                None => "secret".to_owned(),
            },
            Label::Rule(i) => match self.inner.rules.rules.get(i) {
                Some(rule) => rule.rule.kind.clone(),
                None => "credential".to_owned(),
            },
        }
    }

    /// A number whose digits hold a secret (a registered numeric value)
    /// becomes the string of its redaction.
    pub(crate) fn redact_number(&self, value: &mut Value) {
        if let Value::Number(number) = value {
            let digits = number.to_string();
            if let Cow::Owned(redacted) = self.redact_str(&digits) {
                *value = Value::String(redacted);
            }
        }
    }

    pub(crate) fn redact_keys(&self, map: &mut serde_json::Map<String, Value>) {
        if !map
            .keys()
            .any(|key| matches!(self.redact_str(key), Cow::Owned(_)))
        {
            return;
        }
        let old = std::mem::take(map);
        for (key, value) in old {
            let key = self.redact_str(&key).into_owned();
            let mut unique = key.clone();
            let mut n = 2;
            while map.contains_key(&unique) {
                unique = format!("{key} ({n})");
                n += 1;
            }
            map.insert(unique, value);
        }
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

impl fmt::Debug for Redactor {
    // Never prints a secret value: only counts and names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.inner.rules.rules.len())
            .field(
                "secrets",
                &self
                    .inner
                    .secrets
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Configures a [`Redactor`].
pub struct RedactorBuilder {
    default_patterns: bool,
    /// User rules, compiled, in the order they were added.
    custom: Vec<Arc<CompiledRule>>,
    /// The rule set of the redactor this builder came from, while the rules
    /// are unchanged, so that adding a secret does not rebuild it.
    rules: Option<Arc<RuleSet>>,
    secrets: Vec<KnownSecret>,
    pattern_bytes: usize,
}

impl RedactorBuilder {
    /// Leaves the built-in credential rules out: only registered secrets and
    /// rules added with [`RedactorBuilder::rule`] are redacted.
    pub fn without_default_patterns(mut self) -> Self {
        self.default_patterns = false;
        self.rules = None;
        self
    }

    /// Adds a credential rule of the user's own, matched in the same pass as
    /// the built-in rules. When a user rule and a built-in rule match exactly
    /// the same text, the user rule names it.
    ///
    /// Fails, without changing the builder, when the kind is not a valid
    /// placeholder name, there is no keyword or one is shorter than 2 bytes,
    /// the pattern is not a valid regex, has more than 6 capture groups, or
    /// can match unboundedly long text (see [`CustomRule`]).
    pub fn rule(mut self, rule: CustomRule) -> Result<Self, RedactError> {
        let compiled = rule.compile()?;
        self.custom.push(Arc::new(compiled));
        self.rules = None;
        Ok(self)
    }

    /// Registers a value that must never appear in any sink, under a name
    /// used in its placeholder (`[REDACTED:secret:NAME]`).
    ///
    /// Fails on a value shorter than 4 bytes or made only of whitespace
    /// (redacting it would shred unrelated text), and on a name that is empty
    /// or not made of `[A-Za-z0-9_.-]`. Registering the same name and value
    /// twice is harmless.
    pub fn secret(mut self, name: &str, value: &str) -> Result<Self, RedactError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(RedactError::InvalidSecretName {
                name: name.to_owned(),
            });
        }
        if value.len() < MIN_SECRET_LEN {
            return Err(RedactError::SecretTooShort {
                name: name.to_owned(),
                len: value.len(),
                min: MIN_SECRET_LEN,
            });
        }
        if value.chars().all(char::is_whitespace) {
            return Err(RedactError::SecretBlank {
                name: name.to_owned(),
            });
        }
        if self
            .secrets
            .iter()
            .any(|s| s.name == name && s.value == value)
        {
            return Ok(self);
        }
        let variants = encodings::variants(value);
        let bytes: usize = variants.iter().map(Vec::len).sum();
        if self.pattern_bytes + bytes > MAX_PATTERN_BYTES {
            return Err(RedactError::TooManySecrets {
                name: name.to_owned(),
                limit: MAX_PATTERN_BYTES,
            });
        }
        self.pattern_bytes += bytes;
        self.secrets.push(KnownSecret {
            name: name.to_owned(),
            value: value.to_owned(),
            variants,
        });
        Ok(self)
    }

    /// Builds the redactor: compiles the exact-match automaton over every
    /// encoding of every secret.
    pub fn build(self) -> Redactor {
        let rules = match self.rules {
            Some(rules) => rules,
            None => self.rule_set(),
        };
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut owner = Vec::new();
        for (index, secret) in self.secrets.iter().enumerate() {
            for variant in &secret.variants {
                patterns.push(variant);
                owner.push(index);
            }
        }
        let matcher = if patterns.is_empty() {
            None
        } else {
            // The pattern total is capped by `secret` far below the
            // automaton's limits, so building it cannot fail.
            // A DFA searches fastest; it is built when the patterns are few
            // enough for it to stay small, else the default kind is used.
            let total: usize = patterns.iter().map(|p| p.len()).sum();
            let dfa = (total <= SECRET_DFA_BYTES)
                .then(|| {
                    AhoCorasick::builder()
                        .kind(Some(AhoCorasickKind::DFA))
                        .build(&patterns)
                        .ok()
                })
                .flatten();
            Some(dfa.unwrap_or_else(|| {
                AhoCorasick::new(&patterns)
                    .expect("secret patterns stay within the automaton's limits")
            }))
        };
        let mut placeholders: HashSet<Vec<u8>> =
            rules.kinds().map(|kind| kind.as_bytes().to_vec()).collect();
        for secret in &self.secrets {
            placeholders.insert(format!("secret:{}", secret.name).into_bytes());
        }
        let max_placeholder = placeholders.iter().map(Vec::len).max().unwrap_or(0);
        let longest_secret = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        Redactor {
            inner: Arc::new(Inner {
                rules,
                default_patterns: self.default_patterns,
                custom: self.custom,
                secrets: self.secrets,
                matcher,
                owner,
                placeholders,
                max_placeholder,
                longest_secret,
            }),
        }
    }
}

impl RedactorBuilder {
    /// The rule set this builder describes: the shared default (or empty)
    /// set when there are no user rules, else the user rules followed by the
    /// built-in ones under a keyword automaton of their own. The built-in
    /// rules' regexes are shared, not recompiled.
    fn rule_set(&self) -> Arc<RuleSet> {
        let base = if self.default_patterns {
            rules::default_rules()
        } else {
            rules::no_rules()
        };
        if self.custom.is_empty() {
            return base;
        }
        let mut all = self.custom.clone();
        all.extend(base.rules.iter().cloned());
        // Every rule here compiled already, and keywords were checked when
        // each was added; the automaton over a few hundred short keywords
        // stays far inside its limits.
        Arc::new(RuleSet::assemble(all).expect("compiled rules assemble into a rule set"))
    }
}

impl fmt::Debug for RedactorBuilder {
    // Never prints a secret value: only names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactorBuilder")
            .field("default_patterns", &self.default_patterns)
            .field(
                "rules",
                &self
                    .custom
                    .iter()
                    .map(|r| r.rule.kind.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "secrets",
                &self
                    .secrets
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
