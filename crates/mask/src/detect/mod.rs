//! Personal-data detection.
//!
//! [`Detector::find`] scans free text in two linear passes:
//!
//! 1. The *structural* pass walks the bytes once, stopping only at digits,
//!    `@` and `:` (a 256-entry table decides; everything else is skipped
//!    without a branch per kind). At each stop it backs up to the start of
//!    the token and runs the hand-written parsers of the kinds that can
//!    start there — IPv4, IPv6, MAC, card, IBAN, SSN, phone, and addresses
//!    that carry their own postcode — each of which reads a bounded number
//!    of bytes and then checks what it read in code (octet ranges, Luhn,
//!    issuer prefixes, mod-97, country lengths, numbering-plan rules).
//! 2. The *context* pass (`context.rs`) runs one Aho-Corasick automaton
//!    over the words that announce names, dates of birth and addresses,
//!    or that vouch for digits written together.
//!
//! There are no regular expressions: every parser is a bounded loop over
//! bytes, which is both faster than a byte regex and free of backtracking,
//! and lets look-behind (the byte before a number, the words before a
//! date) be done by hand. Candidates from both passes are resolved into
//! sorted, non-overlapping findings: the longest wins, then the more
//! specific kind.
//!
//! [`Detector::find_in_field`] adds what a JSON field name says: the value
//! of `first_name` is a name, of `dob` a date of birth, of `address` an
//! address, when the value has the right shape.

mod address;
mod card;
mod context;
pub use context::cue_words;
mod date;
mod email;
mod field;
mod iban;
mod name;
#[cfg(test)]
pub(crate) use name::is_not_name;
mod network;
mod phone;
mod scan;
mod ssn;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;

pub(crate) use card::{luhn_check_digit, luhn_ok};
pub(crate) use date::SAFE_DAYS;
pub(crate) use iban::{check_digits as iban_check_digits, length_for as iban_length, mod97_ok};
pub(crate) use phone::{Shape as PhoneShape, nanp_digits_ok, split_country};

use scan::{at, before, is_alnum, is_digit, is_hex};

/// A kind of personal data.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PersonalKind {
    /// An email address.
    Email,
    /// A telephone number.
    Phone,
    /// A payment card number.
    PaymentCard,
    /// An International Bank Account Number.
    Iban,
    /// A United States Social Security number.
    UsSsn,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A MAC (Ethernet hardware) address.
    MacAddress,
    /// A date of birth.
    DateOfBirth,
    /// A postal address.
    PostalAddress,
    /// A person's name.
    PersonName,
}

impl PersonalKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [PersonalKind] = &[
        PersonalKind::Email,
        PersonalKind::Phone,
        PersonalKind::PaymentCard,
        PersonalKind::Iban,
        PersonalKind::UsSsn,
        PersonalKind::IpAddress,
        PersonalKind::MacAddress,
        PersonalKind::DateOfBirth,
        PersonalKind::PostalAddress,
        PersonalKind::PersonName,
    ];

    /// The snake_case name used in placeholders and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonalKind::Email => "email",
            PersonalKind::Phone => "phone",
            PersonalKind::PaymentCard => "payment_card",
            PersonalKind::Iban => "iban",
            PersonalKind::UsSsn => "us_ssn",
            PersonalKind::IpAddress => "ip_address",
            PersonalKind::MacAddress => "mac_address",
            PersonalKind::DateOfBirth => "date_of_birth",
            PersonalKind::PostalAddress => "postal_address",
            PersonalKind::PersonName => "person_name",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// How specific a shape is, to break ties between candidates of equal
    /// length: a checksum beats a layout, a layout beats context.
    fn specificity(self) -> u8 {
        match self {
            PersonalKind::Iban => 9,
            PersonalKind::PaymentCard => 8,
            PersonalKind::Email => 8,
            PersonalKind::MacAddress => 7,
            PersonalKind::IpAddress => 6,
            PersonalKind::UsSsn => 5,
            PersonalKind::Phone => 4,
            PersonalKind::DateOfBirth => 3,
            PersonalKind::PostalAddress => 2,
            PersonalKind::PersonName => 1,
        }
    }
}

impl fmt::Display for PersonalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of personal data found in a text: its kind and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalFinding {
    /// What it is.
    pub kind: PersonalKind,
    /// The byte offset of its first byte.
    pub start: usize,
    /// The byte offset just past its last byte.
    pub end: usize,
}

/// A possible finding, before overlaps are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub kind: PersonalKind,
    pub start: usize,
    pub end: usize,
    /// How much the evidence vouches for it, beyond its kind: a whole field
    /// value ranks above a match inside it.
    pub rank: u8,
}

impl Candidate {
    pub(crate) fn new(kind: PersonalKind, start: usize, end: usize, rank: u8) -> Candidate {
        Candidate {
            kind,
            start,
            end,
            rank,
        }
    }
}

/// Finds personal data in text. Built once, cheap to clone and to share
/// between threads.
#[derive(Clone)]
pub struct Detector {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: [bool; PersonalKind::ALL.len()],
    cues: context::Cues,
    /// The characters a masker writes in place of letters: a key glued to
    /// one is what masking left of a longer word.
    mask_chars: Vec<char>,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("kinds", &self.kinds())
            .field("mask_chars", &self.inner.mask_chars)
            .finish()
    }
}

impl Default for Detector {
    fn default() -> Detector {
        Detector::new()
    }
}

/// Byte classes of the structural pass.
const SKIP: u8 = 0;
const DIGIT: u8 = 1;
const AT: u8 = 2;
const COLON: u8 = 3;

static CLASSES: [u8; 256] = {
    let mut table = [SKIP; 256];
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] = DIGIT;
        b += 1;
    }
    table[b'@' as usize] = AT;
    table[b':' as usize] = COLON;
    table
};

/// How far back from a digit the start of its token is looked for: the
/// longest compact IBAN.
const MAX_TOKEN_BACK: usize = 34;

impl Detector {
    /// A detector for every kind.
    pub fn new() -> Detector {
        Detector::with_kinds(PersonalKind::ALL)
    }

    /// A detector for the given kinds only.
    pub fn with_kinds(kinds: &[PersonalKind]) -> Detector {
        let mut enabled = [false; PersonalKind::ALL.len()];
        for kind in kinds {
            enabled[kind.index()] = true;
        }
        Detector {
            inner: Arc::new(Inner {
                enabled,
                cues: context::Cues::new(),
                mask_chars: vec![crate::operators::DEFAULT_MASK_CHAR],
            }),
        }
    }

    /// This detector, told which characters the masker whose output it may
    /// read again writes in place of letters (`*` unless told otherwise).
    /// A key glued to one of them (`######name:`, what masking left of
    /// `Streetname:`) is not read as a key, so that masking twice gives
    /// what masking once gave.
    pub fn with_mask_chars(&self, chars: &[char]) -> Detector {
        let mut mask_chars = chars.to_vec();
        mask_chars.sort_unstable();
        mask_chars.dedup();
        if mask_chars == self.inner.mask_chars {
            return self.clone();
        }
        Detector {
            inner: Arc::new(Inner {
                enabled: self.inner.enabled,
                cues: self.inner.cues.clone(),
                mask_chars,
            }),
        }
    }

    /// The characters set by [`Detector::with_mask_chars`].
    pub fn mask_chars(&self) -> &[char] {
        &self.inner.mask_chars
    }

    /// The kinds this detector reports.
    pub fn kinds(&self) -> Vec<PersonalKind> {
        PersonalKind::ALL
            .iter()
            .copied()
            .filter(|k| self.enabled(*k))
            .collect()
    }

    fn enabled(&self, kind: PersonalKind) -> bool {
        self.inner.enabled[kind.index()]
    }

    /// Findings in free text, sorted by start, non-overlapping (the longest
    /// and most specific candidate wins).
    pub fn find(&self, text: &str) -> Vec<PersonalFinding> {
        let mut candidates = Vec::new();
        let holes = holes(text);
        self.collect(text, &holes, None, &mut candidates);
        self.resolve(&holes, candidates)
    }

    /// [`Detector::find`], given every occurrence in `text` of every cue
    /// word of [`cue_words`] (ASCII case ignored; start, end, index), found
    /// by a pass that was reading `text` anyway: the same findings without
    /// a pass of its own for them.
    pub fn find_with_cues(
        &self,
        text: &str,
        cues: &[(usize, usize, usize)],
    ) -> Vec<PersonalFinding> {
        let mut candidates = Vec::new();
        let holes = holes(text);
        self.collect(text, &holes, Some(cues), &mut candidates);
        self.resolve(&holes, candidates)
    }

    /// Findings in one JSON string value, using its field name as context.
    ///
    /// `field` may be a bare key (`first_name`) or a path whose parent keys
    /// add context: `customer.name`, `/customer/name`, `$.customer.name`,
    /// `orders[0].customer.name`. `{"first_name": "Ada"}` is a person name,
    /// `{"dob": "1990-02-03"}` a date of birth, `{"address": "1 Main St"}` a
    /// postal address, while the same strings under unrelated keys are not;
    /// `product.name` is never a person, and a card number under a key that
    /// says test data is a test number.
    pub fn find_in_field(&self, field: Option<&str>, text: &str) -> Vec<PersonalFinding> {
        self.in_field(field, text, None)
    }

    /// [`Detector::find_in_field`], given the cue words' occurrences in
    /// `text` (see [`Detector::find_with_cues`]).
    pub fn find_in_field_with_cues(
        &self,
        field: Option<&str>,
        text: &str,
        cues: &[(usize, usize, usize)],
    ) -> Vec<PersonalFinding> {
        self.in_field(field, text, Some(cues))
    }

    fn in_field(
        &self,
        field: Option<&str>,
        text: &str,
        cues: Option<&[(usize, usize, usize)]>,
    ) -> Vec<PersonalFinding> {
        let mut candidates = Vec::new();
        let holes = holes(text);
        self.collect(text, &holes, cues, &mut candidates);
        if let Some(path) = field {
            let hint = field::classify(path);
            if hint.kind.is_some() {
                values::check(hint, text, 0, &mut candidates);
            }
            if hint.test {
                candidates.retain(|c| c.kind != PersonalKind::PaymentCard);
            }
            if hint.version {
                candidates.retain(|c| c.kind != PersonalKind::IpAddress);
            }
        }
        self.resolve(&holes, candidates)
    }

    /// The candidates of both passes: the structural one, and the context
    /// one over `cues` when another read found them, or over a search of
    /// its own.
    fn collect(
        &self,
        text: &str,
        holes: &[(usize, usize)],
        cues: Option<&[(usize, usize, usize)]>,
        out: &mut Vec<Candidate>,
    ) {
        self.structural(text.as_bytes(), out);
        match cues {
            Some(cues) => context::scan_found(text, cues, holes, &self.inner.mask_chars, out),
            None => self
                .inner
                .cues
                .scan(text, holes, &self.inner.mask_chars, out),
        }
    }

    /// The structural pass: see the module documentation.
    fn structural(&self, hay: &[u8], out: &mut Vec<Candidate>) {
        let n = hay.len();
        let mut i = 0;
        // The start of the last token whose parsers ran, so that the digits
        // and colons of one token run them once.
        let mut last_token: Option<usize> = None;
        while i < n {
            let class = CLASSES[hay[i] as usize];
            if class == SKIP {
                i = skip_boring(hay, i + 1);
                continue;
            }
            match class {
                DIGIT => {
                    let Some(s) = token_start(hay, i) else {
                        i = skip_word(hay, i);
                        continue;
                    };
                    if last_token == Some(s) {
                        i = skip_alnum(hay, i);
                        continue;
                    }
                    // `da-00-...`, `aabb.0011...`: a MAC address whose first
                    // group has no digit starts a token or two back.
                    if let Some(q) = hex_group_before(hay, s)
                        && last_token != Some(q)
                    {
                        self.network_at(hay, q, out);
                    }
                    last_token = Some(s);
                    let token_end = skip_alnum(hay, i);
                    let end = self.at_token(hay, s, token_end, out);
                    i = end.max(token_end).max(i + 1);
                }
                AT => {
                    if self.enabled(PersonalKind::Email)
                        && let Some((s, e)) = email::around(hay, i)
                    {
                        out.push(Candidate::new(PersonalKind::Email, s, e, 0));
                        i = e;
                        continue;
                    }
                    i += 1;
                }
                _ => {
                    // A colon: IPv6 or MAC written with letters only before
                    // it (`fe80::1`, `aa:bb:...`), or starting with `::`.
                    let s = if i > 0 && is_hex(hay[i - 1]) {
                        let mut s = i - 1;
                        while s > 0 && i - s < 4 && is_hex(hay[s - 1]) {
                            s -= 1;
                        }
                        s
                    } else if at(hay, i + 1) == Some(b':') {
                        i
                    } else {
                        i += 1;
                        continue;
                    };
                    // Not the end of a word, in any script (`straße::1`).
                    if last_token != Some(s)
                        && !before(hay, s).is_some_and(|b| is_alnum(b) || b >= 0x80)
                    {
                        last_token = Some(s);
                        if let Some(e) = self.network_at(hay, s, out) {
                            i = e;
                            continue;
                        }
                    }
                    i += 1;
                }
            }
        }
    }

    /// Runs the parsers of every kind that can start at token start `s`
    /// (the token's letters and digits end at `token_end`); returns how far
    /// the scan may skip.
    fn at_token(&self, hay: &[u8], s: usize, token_end: usize, out: &mut Vec<Candidate>) -> usize {
        let found_from = out.len();
        let first = hay[s];
        // The continuation of a number or word (`05` in `2024-05-01`, `1` in
        // `v1.2`): no kind starts there.
        if matches!(before(hay, s), Some(b'-' | b'.' | b':' | b'/'))
            && s >= 2
            && is_alnum(hay[s - 2])
        {
            return s;
        }
        let push =
            |kind: PersonalKind, start: usize, e: Option<usize>, out: &mut Vec<Candidate>| {
                if let Some(e) = e {
                    out.push(Candidate::new(kind, start, e, 0));
                }
            };
        if first.is_ascii_uppercase() && self.enabled(PersonalKind::Iban) {
            push(PersonalKind::Iban, s, iban::at_start(hay, s), out);
        }
        if is_hex(first) {
            self.network_at(hay, s, out);
        }
        if is_digit(first) {
            if self.enabled(PersonalKind::IpAddress) {
                push(
                    PersonalKind::IpAddress,
                    s,
                    network::personal_ipv4_at(hay, s),
                    out,
                );
            }
            if self.enabled(PersonalKind::PaymentCard) {
                push(PersonalKind::PaymentCard, s, card::at_start(hay, s), out);
            }
            if self.enabled(PersonalKind::UsSsn) {
                push(PersonalKind::UsSsn, s, ssn::separated_at(hay, s), out);
            }
            if self.enabled(PersonalKind::Phone) {
                // A number may open with `+` or `(` just before its first digit.
                let phone_start = match before(hay, s) {
                    Some(b'+' | b'(') => s - 1,
                    _ => s,
                };
                push(
                    PersonalKind::Phone,
                    phone_start,
                    phone::at_start(hay, phone_start, phone::Strictness::Prose),
                    out,
                );
            }
            if self.enabled(PersonalKind::PostalAddress)
                && street_may_follow(hay, token_end)
                && let Some(m) = address::at_start(hay, s)
                && m.postcode
                && m.typed
            {
                out.push(Candidate::new(PersonalKind::PostalAddress, s, m.end, 0));
            }
        }
        out[found_from..].iter().map(|c| c.end).max().unwrap_or(s)
    }

    /// IPv6 and MAC parsers at `s`; the end of what they found.
    fn network_at(&self, hay: &[u8], s: usize, out: &mut Vec<Candidate>) -> Option<usize> {
        let mut end = None;
        if self.enabled(PersonalKind::IpAddress)
            && let Some(e) = network::personal_ipv6_at(hay, s)
        {
            out.push(Candidate::new(PersonalKind::IpAddress, s, e, 0));
            end = Some(e);
        }
        if self.enabled(PersonalKind::MacAddress)
            && let Some(e) = network::mac_at(hay, s)
        {
            out.push(Candidate::new(PersonalKind::MacAddress, s, e, 0));
            end = Some(end.map_or(e, |x: usize| x.max(e)));
        }
        end
    }

    /// Keeps the enabled candidates that win their overlaps, in order.
    /// `holes` are the text's placeholders (see [`holes`]).
    fn resolve(
        &self,
        holes: &[(usize, usize)],
        mut candidates: Vec<Candidate>,
    ) -> Vec<PersonalFinding> {
        candidates.retain(|c| c.end > c.start && self.enabled(c.kind));
        // Nothing inside a placeholder (`[REDACTED:postal_address]`) is
        // personal data, whatever a field name says; nor anything glued to
        // one: in the text before redaction it was glued to the redacted
        // value, where it was not a finding.
        if !holes.is_empty() {
            candidates.retain(|c| !holes.iter().any(|&(s, e)| c.start <= e && s <= c.end));
        }
        if candidates.is_empty() {
            return Vec::new();
        }
        candidates.sort_by(|a, b| {
            (b.end - b.start)
                .cmp(&(a.end - a.start))
                .then(b.rank.cmp(&a.rank))
                .then(b.kind.specificity().cmp(&a.kind.specificity()))
                .then(a.start.cmp(&b.start))
        });
        let mut taken: BTreeMap<usize, (usize, PersonalKind)> = BTreeMap::new();
        for c in candidates {
            // The nearest taken span starting before c's end must end at or
            // before c's start.
            let clash = taken
                .range(..c.end)
                .next_back()
                .is_some_and(|(_, &(end, _))| end > c.start);
            if !clash {
                taken.insert(c.start, (c.end, c.kind));
            }
        }
        taken
            .into_iter()
            .map(|(start, (end, kind))| PersonalFinding { kind, start, end })
            .collect()
    }
}

/// The placeholders `text` holds, if any (most texts hold none).
fn holes(text: &str) -> Vec<(usize, usize)> {
    // One literal: the automaton searches with `memchr`'s vectorised
    // search, several times faster than `str::find` on text without it.
    static FINDER: LazyLock<AhoCorasick> = LazyLock::new(|| {
        AhoCorasick::new([PLACEHOLDER]).expect("one short literal builds an automaton")
    });
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(m) = FINDER.find(&text[from..]) {
        let start = from + m.start();
        let inner = start + PLACEHOLDER.len();
        let end = text[inner..]
            .bytes()
            .take(64)
            .position(|b| b == b']')
            .map_or(inner, |p| inner + p + 1);
        out.push((start, end));
        from = end.max(inner);
    }
    out
}

/// How a placeholder of the redactors starts.
pub(crate) const PLACEHOLDER: &str = "[REDACTED:";

/// The start of the token that contains the digit at `i`: back over letters
/// and digits. `None` when the token is longer than any parser reads, or
/// glued to a multi-byte character.
fn token_start(hay: &[u8], i: usize) -> Option<usize> {
    let lower = i.saturating_sub(MAX_TOKEN_BACK);
    let mut s = i;
    while s > lower && is_alnum(hay[s - 1]) {
        s -= 1;
    }
    if s == lower && before(hay, s).is_some_and(is_alnum) {
        return None;
    }
    if before(hay, s).is_some_and(|b| b >= 0x80 || b == b'_') {
        return None;
    }
    Some(s)
}

/// The first position at or after `i` holding a digit, `:` or `@`. Eight
/// bytes at a time: a word with none of them is skipped whole.
fn skip_boring(hay: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = hay.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let x = u64::from_le_bytes(bytes);
        // Bytes in 0x30..=0x3A (digits and `:`), for bytes below 0x80:
        // (x & 0x7f..) + (0x80 - 0x30) sets the high bit when >= 0x30, and
        // (x & 0x7f..) + (0x80 - 0x3B) sets it when >= 0x3B.
        let low = x & !HIGHS;
        let ge_30 = low.wrapping_add(ONES * (0x80 - 0x30));
        let ge_3b = low.wrapping_add(ONES * (0x80 - 0x3B));
        let in_range = ge_30 & !ge_3b & !x & HIGHS;
        // Bytes equal to `@`: zero bytes of x ^ 0x40.., found exactly by
        // checking the high bit of (low7(y) + 0x7f) | y per byte.
        let y = x ^ (ONES * 0x40);
        let nonzero = ((y & !HIGHS).wrapping_add(!HIGHS) | y) & HIGHS;
        let at_sign = !nonzero & HIGHS;
        if in_range | at_sign != 0 {
            break;
        }
        i += 8;
    }
    while i < hay.len() && CLASSES[hay[i] as usize] == SKIP {
        i += 1;
    }
    i
}

/// The start of the earliest of up to five groups of two (or four) hex
/// digits, each followed by the same `-` or `.`, that end just before `s`:
/// where a MAC address whose first groups have no digit starts.
fn hex_group_before(hay: &[u8], s: usize) -> Option<usize> {
    let sep = before(hay, s).filter(|b| matches!(b, b'-' | b'.'))?;
    let mut start = None;
    let mut end = s - 1;
    for _ in 0..5 {
        let mut q = end;
        while q > 0 && end - q < 5 && is_hex(hay[q - 1]) {
            q -= 1;
        }
        let len = end - q;
        if !(len == 2 || len == 4) {
            break;
        }
        start = Some(q);
        if q >= 1 && hay[q - 1] == sep {
            end = q - 1;
        } else {
            break;
        }
    }
    let q = start?;
    (!before(hay, q).is_some_and(|b| is_alnum(b) || matches!(b, b'-' | b'.' | b':'))).then_some(q)
}

/// Whether a street name may follow a number ending at `i`: a space, then
/// a letter or an ordinal (`5th Avenue`).
fn street_may_follow(hay: &[u8], i: usize) -> bool {
    if at(hay, i) != Some(b' ') {
        return false;
    }
    match at(hay, i + 1) {
        Some(b) if b.is_ascii_alphabetic() || b >= 0x80 => true,
        Some(b) if is_digit(b) => {
            (i + 2..i + 5).any(|j| at(hay, j).is_some_and(|b| b.is_ascii_alphabetic()))
        }
        _ => false,
    }
}

/// The end of the run of ASCII letters and digits at `i`. Eight bytes at a
/// time: the tokens it skips (hashes, ids, UUIDs) run to dozens of bytes.
fn skip_alnum(hay: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of 7-bit `x` whose value is in lo..=hi.
    let within = |x: u64, lo: u64, hi: u64| {
        let ge_lo = x.wrapping_add(ONES * (0x80 - lo));
        let gt_hi = x.wrapping_add(ONES * (0x7f - hi));
        ge_lo & !gt_hi & HIGHS
    };
    while let Some(chunk) = hay.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let x = u64::from_le_bytes(bytes);
        let low = x & !HIGHS;
        let digits = within(low, u64::from(b'0'), u64::from(b'9'));
        let letters = within(low | (ONES * 0x20), u64::from(b'a'), u64::from(b'z'));
        // Alphanumeric, and below 0x80.
        let alnum = (digits | letters) & !x;
        if alnum != HIGHS {
            let first_other = (!alnum & HIGHS).trailing_zeros() / 8;
            return i + first_other as usize;
        }
        i += 8;
    }
    while i < hay.len() && is_alnum(hay[i]) {
        i += 1;
    }
    i
}

fn skip_word(hay: &[u8], mut i: usize) -> usize {
    while i < hay.len() && (is_alnum(hay[i]) || hay[i] == b'_' || hay[i] >= 0x80) {
        i += 1;
    }
    i
}

/// For a field holding one word of a name: `Some(true)` for a given name
/// (`first_name`), `Some(false)` for a family name (`surname`).
pub(crate) fn field_name_part(path: &str) -> Option<bool> {
    field::name_part(path)
}

/// Whole-value checks used by the operators to validate input.
pub(crate) mod shapes {
    pub(crate) use super::address::{is_postcode, uk_postcode};
    pub(crate) use super::date::whole as whole_date;
    pub(crate) use super::email::is_email;
    pub(crate) use super::network::is_ip;
    pub(crate) use super::phone::read as read_phone;
    #[cfg(test)]
    pub(crate) use super::ssn::is_ssn;
    pub(crate) use super::ssn::{parts as ssn_parts, parts_ok as ssn_parts_ok};
}

#[cfg(test)]
mod tests;
