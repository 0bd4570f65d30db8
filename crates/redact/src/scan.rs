//! One scan of a text: collects every candidate span (known secrets and rule
//! matches), then turns them into the sorted, non-overlapping spans that get
//! replaced, each one safe to cut at (char boundaries, whole JSON escapes,
//! never inside a placeholder).

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input};

use crate::keywords::Occurrence;
use crate::rules::{Hit, MAX_GROUPS, PLACEHOLDER_PREFIX, RuleSet, runs_may_begin};
use crate::validators::shannon_entropy;

/// What a span is, which decides its placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// A registered secret, by index in the redactor's list.
    Secret(usize),
    /// A rule match, by index in the rule set.
    Rule(usize),
}

/// A byte range of the scanned text and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub label: Label,
}

impl Span {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// Everything one scan needs, borrowed from a redactor.
pub(crate) struct Scanner<'r> {
    pub rules: &'r RuleSet,
    /// All encodings of all known secrets, or `None` when there is none.
    pub secrets: Option<&'r AhoCorasick>,
    /// For each pattern of `secrets`, the index of the secret it encodes.
    pub secret_owner: &'r [usize],
    /// The text between `[REDACTED:` and `]` of every placeholder this
    /// redactor can produce.
    pub placeholders: &'r HashSet<Vec<u8>>,
    /// The longest entry of `placeholders`.
    pub max_placeholder: usize,
    /// The longest pattern of `secrets`, in bytes.
    pub longest_secret: usize,
}

impl Scanner<'_> {
    /// Returns the spans to replace in `text`: sorted, non-overlapping, on
    /// char boundaries, and outside every placeholder the text already holds.
    /// Allocates nothing when nothing is found.
    #[cfg(test)]
    pub(crate) fn scan(&self, text: &str) -> Vec<Span> {
        self.scan_within(text, None, None)
    }

    /// [`Scanner::scan`], also collecting the personal-data cue words'
    /// occurrences into `cues`, when given (see `RuleSet::cue_of`).
    pub(crate) fn scan_with_cues(
        &self,
        text: &str,
        cues: Option<&mut Vec<(usize, usize, usize)>>,
    ) -> Vec<Span> {
        self.scan_within(text, None, cues)
    }

    /// Like [`Scanner::scan`], but tries rules only at keywords that start
    /// inside `windows` (sorted, non-overlapping); known secrets and
    /// placeholders are still looked for everywhere. The redactor rescans its
    /// output this way: a match that replacing a span could have created must
    /// start within a rule's reach before the placeholder, or just after it.
    pub(crate) fn scan_windows(&self, text: &str, windows: &[Range<usize>]) -> Vec<Span> {
        self.scan_within(text, Some(windows), None)
    }

    fn scan_within(
        &self,
        text: &str,
        windows: Option<&[Range<usize>]>,
        cues: Option<&mut Vec<(usize, usize, usize)>>,
    ) -> Vec<Span> {
        let hay = text.as_bytes();
        let mut candidates = Vec::new();
        let mut protected = Protected::default();
        if let Some(secrets) = self.secrets {
            let mut push = |m: aho_corasick::Match| {
                let owner = self.secret_owner.get(m.pattern().as_usize()).copied();
                if let Some(owner) = owner {
                    candidates.push(Span {
                        start: m.start(),
                        end: m.end(),
                        label: Label::Secret(owner),
                    });
                }
            };
            match windows {
                None => secrets.find_overlapping_iter(hay).for_each(&mut push),
                // A secret that replacing a span could have revealed overlaps
                // that span's placeholder, so it lies within the longest
                // secret's length of it; anywhere else the text is as it was.
                Some(windows) => {
                    for span in widen(windows, self.longest_secret, hay.len()) {
                        let input = aho_corasick::Input::new(hay).span(span);
                        secrets.find_overlapping_iter(input).for_each(&mut push);
                    }
                }
            }
        }
        self.find_rule_matches(text, &mut candidates, &mut protected, windows, cues);
        if candidates.is_empty() {
            return candidates;
        }
        let pieces = if protected.any.is_empty() {
            candidates
        } else {
            let (secrets, rules): (Vec<Span>, Vec<Span>) = candidates
                .into_iter()
                .partition(|c| matches!(c.label, Label::Secret(_)));
            let mut pieces = clip(secrets, &protected.ours);
            pieces.extend(clip(rules, &protected.any));
            pieces
        };
        let resolved = resolve(pieces);
        let adjusted = resolved
            .into_iter()
            .map(|span| {
                let safe = cut_safe(text, span);
                if overlaps_any(&safe, &protected.any) {
                    span
                } else {
                    safe
                }
            })
            .collect();
        resolve(adjusted)
    }

    /// Runs the keyword prefilter, and every rule of every keyword occurrence
    /// anchored at it (see `rules.rs` for why this is complete and linear).
    /// Also records the placeholders already in the text (the placeholder
    /// prefix is one of the automaton's patterns) before any attempt, so
    /// that every attempt can stop at the next one.
    ///
    /// With `windows` (a rescan of the redactor's output), only keywords
    /// starting inside them are tried, from the last to the first; an attempt
    /// that fails is tried again on the text cut where a span this scan has
    /// just found begins, which is the text the next rescan would see there.
    /// A window grows backwards when a span found in it starts close enough
    /// to its start for keywords before it to reach that span. So a chain of
    /// matches that each appear only once the next one is replaced
    /// (`secret:a..secret:b..secret:c`, where the value after each `secret:`
    /// passes only when it ends at a placeholder) is found in one rescan, not
    /// one link per pass.
    fn find_rule_matches(
        &self,
        text: &str,
        out: &mut Vec<Span>,
        protected: &mut Protected,
        windows: Option<&[Range<usize>]>,
        mut cues: Option<&mut Vec<(usize, usize, usize)>>,
    ) {
        let set = self.rules;
        let hay = text.as_bytes();
        // Per rule, the last match it accepted (keyword start, match end); a
        // later occurrence inside it is not tried again. Sized on the first
        // accepted match so that a clean text allocates nothing.
        let mut accepted: Vec<(usize, usize)> = Vec::new();
        let Some(windows) = windows else {
            let automaton = if cues.is_some() {
                &set.with_cues
            } else {
                &set.keywords
            };
            let mut occurrences = Vec::new();
            automaton.find_all(hay, &mut occurrences);
            // The placeholder prefix is one of the keywords.
            for &(start, _, pattern) in &occurrences {
                if pattern == set.marker {
                    self.record_placeholder(hay, start, protected);
                }
            }
            for occurrence in occurrences {
                let (start, end, pattern) = occurrence;
                if let Some(cue) = set.cue_of.get(pattern).copied().flatten()
                    && let Some(cues) = cues.as_deref_mut()
                {
                    // A cue word of the personal-data detector, found for it.
                    cues.push((start, end, cue as usize));
                }
                if pattern != set.marker && !set.triggers[pattern].is_empty() {
                    let limit = next_start(&protected.any, start, hay.len());
                    self.try_keyword(hay, limit, occurrence, out, protected, &mut accepted);
                }
            }
            return;
        };
        for at in placeholder_prefixes(hay) {
            self.record_placeholder(hay, at, protected);
        }
        // Where the spans found in this scan will start once they are cut
        // safely: the known secrets found already, and the rule matches as
        // they are found.
        let mut fresh: BTreeSet<usize> =
            out.iter().map(|span| cut_safe(text, *span).start).collect();
        // How far before a span a keyword whose attempt reaches it can start.
        let reach = set.max_attempt + RESCAN_MARGIN;
        let mut floor = hay.len();
        let mut occurrences: Vec<Occurrence> = Vec::new();
        for window in windows.iter().rev() {
            let mut hi = window.end.min(floor);
            let mut lo = window.start.min(hi);
            while lo < hi {
                let end = hay.len().min(hi + set.longest_keyword);
                occurrences.clear();
                set.keywords.find_in(hay, lo, end, &mut occurrences);
                occurrences.retain(|&(start, _, pattern)| {
                    pattern != set.marker && !set.triggers[pattern].is_empty() && start < hi
                });
                occurrences.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
                // The earliest start of a span found in this stretch.
                let mut lowest = usize::MAX;
                for &m in &occurrences {
                    let at = m.0;
                    let limit = next_start(&protected.any, at, hay.len());
                    let before = out.len();
                    self.try_keyword(hay, limit, m, out, protected, &mut accepted);
                    if out.len() == before {
                        // The text the next rescan sees here ends where the
                        // first span found after this keyword begins.
                        if let Some(&cut) = fresh.range(at + 1..).next()
                            && cut < limit
                        {
                            self.try_keyword(hay, cut, m, out, protected, &mut accepted);
                        }
                    }
                    for span in &out[before..] {
                        let start = cut_safe(text, *span).start;
                        fresh.insert(start);
                        lowest = lowest.min(start);
                    }
                }
                // Keywords before this stretch whose attempts reach a span
                // found in it are tried next; with no such span, the window
                // is done.
                floor = lo;
                hi = lo;
                lo = lo.min(lowest.saturating_sub(reach));
            }
        }
    }

    fn record_placeholder(&self, hay: &[u8], at: usize, protected: &mut Protected) {
        match self.placeholder_at(hay, at) {
            Some((end, true)) => {
                protected.ours.push(at..end);
                protected.any.push(at..end);
            }
            Some((end, false)) => protected.any.push(at..end),
            None => {}
        }
    }

    /// Tries the rules of one keyword occurrence on `hay[..limit]`: an
    /// attempt stops at the next placeholder, so that neither the bytes of a
    /// placeholder nor what follows it decide whether the text before it is
    /// a credential (the text before a placeholder reads the same in every
    /// pass, which is what lets rescanning settle).
    fn try_keyword(
        &self,
        hay: &[u8],
        limit: usize,
        occurrence: Occurrence,
        out: &mut Vec<Span>,
        protected: &Protected,
        accepted: &mut Vec<(usize, usize)>,
    ) {
        let set = self.rules;
        let (at, _, pattern) = occurrence;
        if pattern == set.marker || inside(&protected.any, at) {
            return;
        }
        let hay = &hay[..limit.clamp(at, hay.len())];
        {
            let Some(triggers) = set.triggers.get(pattern) else {
                return;
            };
            let rest = &hay[at..];
            for trigger in triggers {
                // Cheap checks first: each one only rejects occurrences at
                // which the regex could not match. The automaton found the
                // start of a keyword; the whole keyword must be there.
                let mut keyword_end = None;
                for keyword in &trigger.keywords {
                    let here = rest.get(..keyword.len()).is_some_and(|t| {
                        if trigger.case_insensitive {
                            t.eq_ignore_ascii_case(keyword)
                        } else {
                            t == &**keyword
                        }
                    });
                    if here {
                        // Two keywords of the rule here: the regex decides
                        // which, and the first-byte check is skipped.
                        keyword_end = match keyword_end {
                            None => Some(Some(at + keyword.len())),
                            Some(_) => Some(None),
                        };
                    }
                }
                let Some(keyword_end) = keyword_end else {
                    continue;
                };
                let id = trigger.rule;
                let Some(compiled) = set.rules.get(id) else {
                    continue;
                };
                if let (Some(first), Some(&next)) = (
                    &compiled.first_bytes,
                    keyword_end.and_then(|end| hay.get(end)),
                ) && !first[usize::from(next)]
                {
                    continue;
                }
                if let Some(end) = keyword_end
                    && !runs_may_begin(&compiled.leading_runs, &hay[end.min(hay.len())..])
                {
                    continue;
                }
                if let Some(&[next, after]) = keyword_end.and_then(|end| hay.get(end..end + 2))
                    && !compiled.tail_may_begin(next, after)
                {
                    continue;
                }
                let rule = &compiled.rule;
                let lead_start = match rule.lead {
                    Some(lead) => {
                        let len = hay[..at]
                            .iter()
                            .rev()
                            .take(lead.max + 1)
                            .take_while(|&&b| lead.class.run(b))
                            .count();
                        if len < lead.min || len > lead.max {
                            continue;
                        }
                        at - len
                    }
                    None => at,
                };
                if let Some(excluded) = rule.not_after
                    && lead_start > 0
                    && excluded.run(hay[lead_start - 1])
                    && !after_ansi_sequence(hay, lead_start)
                {
                    continue;
                }
                if let Some(&(start, end)) = accepted.get(id)
                    && start <= at
                    && at < end
                {
                    continue;
                }
                count_attempt();
                let input = Input::new(hay).range(at..).anchored(Anchored::Yes);
                let mut slots: [Option<NonMaxUsize>; 2 * MAX_GROUPS] = [None; 2 * MAX_GROUPS];
                let slots = &mut slots[..compiled.slots.min(2 * MAX_GROUPS)];
                if compiled.regex().search_slots(&input, slots).is_none() {
                    continue;
                }
                let Some(mut hit) = hit_from_slots(hay, at, slots) else {
                    continue;
                };
                if hit.group == 0 {
                    hit.start = lead_start;
                }
                if let Some(excluded) = rule.not_followed_by
                    && hay.get(hit.match_end).is_some_and(|&b| excluded.run(b))
                {
                    continue;
                }
                if let Some(validator) = rule.validator
                    && !(validator.f)(&hit)
                {
                    continue;
                }
                if let Some(min) = rule.min_entropy
                    && shannon_entropy(hit.secret()) < min
                {
                    continue;
                }
                let end = match rule.extend {
                    Some(extend) => match (extend.f)(&hit) {
                        Some(end) => end.max(hit.end),
                        None => continue,
                    },
                    None => hit.end,
                };
                if accepted.is_empty() {
                    accepted.resize(set.rules.len(), (0, 0));
                }
                if let Some(slot) = accepted.get_mut(id) {
                    *slot = (at, end.max(hit.match_end));
                }
                let end = before_unescaped_quote(hay, hit.start, end);
                if end > hit.start {
                    out.push(Span {
                        start: hit.start,
                        end,
                        label: Label::Rule(id),
                    });
                }
            }
        }
    }

    /// If a placeholder starts at `at`: where it ends, and whether this
    /// redactor could have produced it (a kind of its rules, or a secret it
    /// holds) rather than only having the shape of one (`[REDACTED:KIND]`, or
    /// `[REDACTED:secret:NAME]` for a secret another process registered).
    fn placeholder_at(&self, hay: &[u8], at: usize) -> Option<(usize, bool)> {
        let prefix = PLACEHOLDER_PREFIX.as_bytes();
        if !hay.get(at..)?.starts_with(prefix) {
            return None;
        }
        let inner_start = at + prefix.len();
        let limit = hay
            .len()
            .min(inner_start + self.max_placeholder.max(MAX_FOREIGN_PLACEHOLDER) + 1);
        let window = hay.get(inner_start..limit)?;
        let close = window.iter().position(|&b| b == b']')?;
        let inner = &window[..close];
        let end = inner_start + close + 1;
        if self.placeholders.contains(inner) {
            Some((end, true))
        } else if is_placeholder_shape(inner) {
            Some((end, false))
        } else {
            None
        }
    }
}

/// The placeholders already in a scanned text, sorted and non-overlapping
/// (a placeholder cannot contain `[` or `]`).
#[derive(Default)]
struct Protected {
    /// Placeholders this redactor produces. Nothing is matched inside them,
    /// which is what makes rescanning the output terminate.
    ours: Vec<Range<usize>>,
    /// Those, plus anything shaped like a placeholder: text redacted earlier
    /// by a redactor that knew other secrets. Rules do not match inside them
    /// (`[REDACTED:secret:prod_db]` is not an assignment to `secret`), but
    /// known secrets still do, so that placeholder syntax cannot hide a
    /// registered value.
    any: Vec<Range<usize>>,
}

/// The `windows` widened by `by` bytes on each side and merged.
fn widen(windows: &[Range<usize>], by: usize, len: usize) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::with_capacity(windows.len());
    for w in windows {
        let wide = w.start.saturating_sub(by)..len.min(w.end.saturating_add(by));
        match out.last_mut() {
            Some(last) if wide.start <= last.end => last.end = last.end.max(wide.end),
            _ => out.push(wide),
        }
    }
    out
}

/// Whether `at` lies inside one of the sorted, non-overlapping `ranges`.
fn inside(ranges: &[Range<usize>], at: usize) -> bool {
    let i = ranges.partition_point(|r| r.end <= at);
    ranges.get(i).is_some_and(|r| r.start <= at)
}

/// Where every `[REDACTED:` of `hay` starts, in order. A single-literal
/// automaton searches with `memchr`'s vectorised search, so a text without
/// placeholders costs a small fraction of the keyword scan.
fn placeholder_prefixes(hay: &[u8]) -> impl Iterator<Item = usize> + '_ {
    static FINDER: OnceLock<AhoCorasick> = OnceLock::new();
    let finder = FINDER.get_or_init(|| {
        AhoCorasick::new([PLACEHOLDER_PREFIX]).expect("one short literal builds an automaton")
    });
    finder.find_iter(hay).map(|m| m.start())
}

/// The start of the first of the sorted, non-overlapping `ranges` that
/// begins after `at`, or `len`.
fn next_start(ranges: &[Range<usize>], at: usize, len: usize) -> usize {
    let i = ranges.partition_point(|r| r.start <= at);
    ranges.get(i).map_or(len, |r| r.start)
}

/// How far past a placeholder a rescan looks for keywords (`not_after`, a
/// lead or an ANSI sequence look a few bytes back from a keyword), and how
/// far beyond the longest bounded attempt it looks before one (validators
/// peek a few bytes past a match).
pub(crate) const RESCAN_MARGIN: usize = 128;

/// The longest placeholder body recognised by shape alone.
const MAX_FOREIGN_PLACEHOLDER: usize = 160;

/// `kind` (`[a-z0-9_]+`) or `secret:NAME` (`NAME` as `RedactorBuilder::secret`
/// accepts it).
/// `text` with every placeholder (`[REDACTED:KIND]`,
/// `[REDACTED:secret:NAME]`) written as `[REDACTED]`: what is left when
/// two redactions of one call are compared by where something was
/// redacted, not by which redactor knew which secret. Replay matches calls
/// this way, since a cassette recorded with a scenario's secrets may be
/// replayed by a redactor that only detects them (`[REDACTED:token]`).
pub fn generalize_placeholders(text: &str) -> std::borrow::Cow<'_, str> {
    let prefix = PLACEHOLDER_PREFIX;
    if !text.contains(prefix) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let inner_start = at + prefix.len();
        let close = rest[inner_start..].find(']');
        match close {
            Some(close)
                if is_placeholder_shape(&rest.as_bytes()[inner_start..inner_start + close]) =>
            {
                out.push_str(&rest[..at]);
                out.push_str("[REDACTED]");
                rest = &rest[inner_start + close + 1..];
            }
            _ => {
                out.push_str(&rest[..inner_start]);
                rest = &rest[inner_start..];
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn is_placeholder_shape(inner: &[u8]) -> bool {
    if let Some(name) = inner.strip_prefix(b"secret:") {
        return !name.is_empty()
            && name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    }
    !inner.is_empty()
        && inner
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// Whether an ANSI colour sequence (`ESC [ 0-9;* m`) ends right before `at`.
/// With colours on, `tracing` prints `field=` followed by such a sequence and
/// then the value, and the sequence's final `m` must not count as a letter
/// glued to a token.
fn after_ansi_sequence(hay: &[u8], at: usize) -> bool {
    let before = hay.get(..at).unwrap_or_default();
    let Some(rest) = before.strip_suffix(b"m") else {
        return false;
    };
    let params = rest
        .iter()
        .rev()
        .take(16)
        .take_while(|b| b.is_ascii_digit() || **b == b';')
        .count();
    rest[..rest.len() - params].ends_with(b"\x1b[")
}

/// Reads a match out of the capture slots: the part to replace is the first
/// capture group that took part in the match, or the whole match.
fn hit_from_slots<'h>(
    hay: &'h [u8],
    keyword_start: usize,
    slots: &[Option<NonMaxUsize>],
) -> Option<Hit<'h>> {
    let match_start = slots.first().copied().flatten()?.get();
    let match_end = slots.get(1).copied().flatten()?.get();
    let mut hit = Hit {
        hay,
        keyword_start,
        match_end,
        start: match_start,
        end: match_end,
        group: 0,
    };
    for group in 1..slots.len() / 2 {
        if let (Some(start), Some(end)) = (slots[2 * group], slots[2 * group + 1]) {
            hit.start = start.get();
            hit.end = end.get();
            hit.group = group;
            break;
        }
    }
    (hit.end > hit.start).then_some(hit)
}

/// Where a rule's span must end so that it contains no unescaped `"`.
///
/// In JSON text an unescaped `"` ends a string; a span running past it would
/// cut JSON structure out and leave invalid JSON. The rule tails are written
/// not to cross one; this guard keeps that true for every rule, present and
/// future. The cost is the span's length, and spans of one rule do not
/// overlap (see `find_rule_matches`), so the scan stays linear.
fn before_unescaped_quote(hay: &[u8], start: usize, end: usize) -> usize {
    let mut i = start;
    while i < end {
        match hay[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    end
}

/// Removes from each candidate the parts that lie inside a placeholder, so
/// that a placeholder is never cut or nested. `protected` is sorted and its
/// ranges do not overlap (a placeholder cannot contain `[` or `]`).
fn clip(candidates: Vec<Span>, protected: &[Range<usize>]) -> Vec<Span> {
    if protected.is_empty() {
        return candidates;
    }
    let mut out = Vec::with_capacity(candidates.len());
    for span in candidates {
        let mut start = span.start;
        let mut i = protected.partition_point(|p| p.end <= start);
        while start < span.end {
            match protected.get(i) {
                Some(p) if p.start < span.end => {
                    if p.start > start {
                        out.push(Span {
                            start,
                            end: p.start,
                            ..span
                        });
                    }
                    start = start.max(p.end);
                    i += 1;
                }
                _ => {
                    out.push(Span { start, ..span });
                    break;
                }
            }
        }
    }
    out
}

fn overlaps_any(span: &Span, protected: &[Range<usize>]) -> bool {
    let i = protected.partition_point(|p| p.end <= span.start);
    protected.get(i).is_some_and(|p| p.start < span.end)
}

/// Merges overlapping spans into one each, named after the best of them:
/// the longest, then a known secret over a rule, then the earlier rule or
/// secret. Spans that only touch stay separate.
pub(crate) fn resolve(mut spans: Vec<Span>) -> Vec<Span> {
    if spans.len() <= 1 {
        return spans;
    }
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    let mut iter = spans.into_iter();
    let Some(mut current) = iter.next() else {
        return out;
    };
    let mut best = current;
    for span in iter {
        if span.start < current.end {
            current.end = current.end.max(span.end);
            if better(&span, &best) {
                best = span;
            }
        } else {
            current.label = best.label;
            out.push(current);
            current = span;
            best = span;
        }
    }
    current.label = best.label;
    out.push(current);
    out
}

fn better(a: &Span, b: &Span) -> bool {
    let rank = |s: &Span| match s.label {
        Label::Secret(i) => (0usize, i),
        Label::Rule(i) => (1usize, i),
    };
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => (rank(a), a.start) < (rank(b), b.start),
    }
}

/// Widens a span so that cutting it out cannot break the text around it:
/// its ends move onto char boundaries, and outward over any JSON escape
/// (`\"`, `\\`, `\n`, `\u00e9`, a `\ud83d\ude00` surrogate pair) they would
/// otherwise split. A placeholder contains no backslash or quote, so a JSON
/// document stays valid JSON after redaction.
fn cut_safe(text: &str, mut span: Span) -> Span {
    let hay = text.as_bytes();
    // Start: if the first byte is escaped, take the backslash too; if the
    // start falls inside a `\uXXXX`, start at its backslash.
    if escaped_at(hay, span.start) {
        span.start -= 1;
    } else {
        for back in 2..=5 {
            let Some(b) = span.start.checked_sub(back) else {
                break;
            };
            if hay[b] == b'\\' && !escaped_at(hay, b) {
                if unicode_escape(hay, b).is_some() {
                    span.start = b;
                }
                break;
            }
        }
    }
    // A low surrogate whose high half sits just before the span.
    if let Some(low) = unicode_escape(hay, span.start)
        && (0xdc00..0xe000).contains(&low)
        && span.start >= 6
    {
        let b = span.start - 6;
        if unicode_escape(hay, b).is_some_and(|h| (0xd800..0xdc00).contains(&h))
            && !escaped_at(hay, b)
        {
            span.start = b;
        }
    }
    // End: the nearest unescaped backslash within the last five bytes starts
    // an escape that must end inside the span.
    for back in 1..=5 {
        let Some(b) = span.end.checked_sub(back) else {
            break;
        };
        if b < span.start {
            break;
        }
        if hay[b] == b'\\' && !escaped_at(hay, b) {
            let len = if unicode_escape(hay, b).is_some() {
                6
            } else {
                2
            };
            span.end = span.end.max((b + len).min(hay.len()));
            break;
        }
    }
    // A high surrogate at the end whose low half follows.
    if span.end >= 6 {
        let b = span.end - 6;
        if b >= span.start
            && unicode_escape(hay, b).is_some_and(|h| (0xd800..0xdc00).contains(&h))
            && unicode_escape(hay, span.end).is_some_and(|l| (0xdc00..0xe000).contains(&l))
        {
            span.end += 6;
        }
    }
    while span.start > 0 && !text.is_char_boundary(span.start) {
        span.start -= 1;
    }
    while span.end < hay.len() && !text.is_char_boundary(span.end) {
        span.end += 1;
    }
    span
}

/// Whether the byte at `pos` is escaped: an odd number of backslashes
/// directly precede it.
fn escaped_at(hay: &[u8], pos: usize) -> bool {
    let before = hay.get(..pos).unwrap_or_default();
    before.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// If `\uXXXX` starts at `at`, its code unit.
fn unicode_escape(hay: &[u8], at: usize) -> Option<u32> {
    let seq = hay.get(at..at.checked_add(6)?)?;
    if seq[0] != b'\\' || seq[1] != b'u' {
        return None;
    }
    seq[2..].iter().try_fold(0u32, |acc, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some(acc * 16 + digit)
    })
}

#[cfg(test)]
thread_local! {
    /// Anchored regex attempts made on this thread (test-only work counter).
    pub(crate) static ATTEMPTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_attempt() {
    #[cfg(test)]
    ATTEMPTS.with(|c| c.set(c.get() + 1));
}

#[cfg(test)]
mod generalize_tests {
    use super::generalize_placeholders;

    #[test]
    fn every_placeholder_becomes_the_same_and_nothing_else_changes() {
        assert_eq!(
            generalize_placeholders("a [REDACTED:secret:search_token] b [REDACTED:token] c"),
            "a [REDACTED] b [REDACTED] c"
        );
        for same in [
            "",
            "no placeholder",
            "[REDACTED:",
            "[REDACTED:Not A Kind] x",
            "[REDACTED:secret:] y",
            "[REDACTED:[REDACTED:",
            "[REDACTED]",
        ] {
            assert_eq!(generalize_placeholders(same), same);
        }
        assert_eq!(
            generalize_placeholders("[REDACTED:bad kind][REDACTED:email]é"),
            "[REDACTED:bad kind][REDACTED]é"
        );
    }
}
