//! The context pass: one Aho-Corasick scan (ASCII case-insensitive) for the
//! words that announce personal data that has no shape of its own — names,
//! dates of birth, addresses — and for the words that vouch for numbers
//! written without separators (`SSN 123456789`, `tel 4155550132`).
//!
//! Each hit is read in one of two ways. Inside a key followed by `:` or `=`
//! (`first_name=Ada`, `"dob": "1990-02-03"`, `Date of birth: 3 Feb 1990`)
//! the key is classified like a JSON field name and its value is checked
//! like that field's value. Otherwise the word is prose (`Dear Ada`, `born
//! on 3 February 1990`, `lives at 12 rue de la Paix`) and what follows it is
//! read within a short window. Every look is bounded, so the pass is linear.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use super::field::{self, FieldHint};
use super::name::NameMode;
use super::scan::{at, before, is_alnum, is_digit, skip_blanks};
use super::{Candidate, PersonalKind, address, date, name, phone, ssn, values};

/// What a context word announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cue {
    /// A title written before a name: `Dr.`, `Ms`, `Herr`.
    Title,
    /// A salutation: `Dear`.
    Salutation,
    /// A closing followed by a comma: `Sincerely,`.
    Closing,
    /// `name is`, `named`, `called`.
    NameIs,
    /// A role: `customer`, `patient`.
    Role,
    /// Only meaningful as part of a key (`first_name:`): `name`, `first`.
    KeyOnly,
    Birth,
    Address,
    Ssn,
    Phone,
}

const CUES: &[(&str, Cue)] = &[
    ("mr", Cue::Title),
    ("mrs", Cue::Title),
    ("ms", Cue::Title),
    ("miss", Cue::Title),
    ("mx", Cue::Title),
    ("dr", Cue::Title),
    ("prof", Cue::Title),
    ("sir", Cue::Title),
    ("dame", Cue::Title),
    ("herr", Cue::Title),
    ("frau", Cue::Title),
    ("mme", Cue::Title),
    ("mlle", Cue::Title),
    ("monsieur", Cue::Title),
    ("madame", Cue::Title),
    ("señor", Cue::Title),
    ("señora", Cue::Title),
    ("sr", Cue::Title),
    ("sra", Cue::Title),
    ("srta", Cue::Title),
    ("lady", Cue::Title),
    ("lord", Cue::Title),
    ("dear", Cue::Salutation),
    ("liebe", Cue::Salutation),
    ("lieber", Cue::Salutation),
    ("sincerely", Cue::Closing),
    ("regards", Cue::Closing),
    ("signed", Cue::Closing),
    ("best wishes", Cue::Closing),
    ("yours truly", Cue::Closing),
    ("yours faithfully", Cue::Closing),
    ("cordially", Cue::Closing),
    ("respectfully", Cue::Closing),
    ("thanks", Cue::Closing),
    ("thank you", Cue::Closing),
    ("cheers", Cue::Closing),
    ("best", Cue::Closing),
    ("grüße", Cue::Closing),
    ("cordialement", Cue::Closing),
    ("saludos", Cue::Closing),
    ("name is", Cue::NameIs),
    ("named", Cue::NameIs),
    ("called", Cue::NameIs),
    ("customer", Cue::Role),
    ("patient", Cue::Role),
    ("employee", Cue::Role),
    ("contact", Cue::Role),
    ("owner", Cue::Role),
    ("user", Cue::Role),
    ("recipient", Cue::Role),
    ("cardholder", Cue::Role),
    ("card holder", Cue::Role),
    ("account holder", Cue::Role),
    ("client", Cue::Role),
    ("member", Cue::Role),
    ("passenger", Cue::Role),
    ("guest", Cue::Role),
    ("applicant", Cue::Role),
    ("beneficiary", Cue::Role),
    ("tenant", Cue::Role),
    ("sender", Cue::Role),
    ("assignee", Cue::Role),
    ("reporter", Cue::Role),
    ("candidate", Cue::Role),
    ("student", Cue::Role),
    ("driver", Cue::Role),
    ("caller", Cue::Role),
    ("requester", Cue::Role),
    ("subscriber", Cue::Role),
    ("policyholder", Cue::Role),
    ("buyer", Cue::Role),
    ("seller", Cue::Role),
    ("author", Cue::Role),
    ("spouse", Cue::Role),
    ("name", Cue::KeyOnly),
    ("first", Cue::KeyOnly),
    ("last", Cue::KeyOnly),
    ("surname", Cue::KeyOnly),
    ("given", Cue::KeyOnly),
    ("family", Cue::KeyOnly),
    ("full", Cue::KeyOnly),
    ("forename", Cue::KeyOnly),
    ("holder", Cue::KeyOnly),
    ("person", Cue::KeyOnly),
    ("zip", Cue::KeyOnly),
    ("postcode", Cue::KeyOnly),
    ("postal", Cue::KeyOnly),
    ("line1", Cue::KeyOnly),
    ("line2", Cue::KeyOnly),
    ("dob", Cue::Birth),
    ("d.o.b", Cue::Birth),
    ("date of birth", Cue::Birth),
    ("birth date", Cue::Birth),
    ("birthdate", Cue::Birth),
    ("birthday", Cue::Birth),
    ("born", Cue::Birth),
    ("birth", Cue::Birth),
    ("geboren", Cue::Birth),
    ("geb.", Cue::Birth),
    ("geburtsdatum", Cue::Birth),
    ("né le", Cue::Birth),
    ("née le", Cue::Birth),
    ("né", Cue::Birth),
    ("née", Cue::Birth),
    ("naissance", Cue::Birth),
    ("nacimiento", Cue::Birth),
    ("nacido", Cue::Birth),
    ("nacida", Cue::Birth),
    ("address", Cue::Address),
    ("addr", Cue::Address),
    ("adresse", Cue::Address),
    ("anschrift", Cue::Address),
    ("street", Cue::Address),
    ("ship to", Cue::Address),
    ("shipping to", Cue::Address),
    ("deliver to", Cue::Address),
    ("delivery to", Cue::Address),
    ("lives at", Cue::Address),
    ("living at", Cue::Address),
    ("lives on", Cue::Address),
    ("resides at", Cue::Address),
    ("residing at", Cue::Address),
    ("reside at", Cue::Address),
    ("located at", Cue::Address),
    ("domicile", Cue::Address),
    ("wohnhaft", Cue::Address),
    ("wohnt in der", Cue::Address),
    ("dirección", Cue::Address),
    ("direccion", Cue::Address),
    ("billing", Cue::Address),
    ("shipping", Cue::Address),
    ("mailing", Cue::Address),
    ("ssn", Cue::Ssn),
    ("social security", Cue::Ssn),
    ("soc sec", Cue::Ssn),
    ("ss#", Cue::Ssn),
    ("phone", Cue::Phone),
    ("tel", Cue::Phone),
    ("telephone", Cue::Phone),
    ("mobile", Cue::Phone),
    ("mob", Cue::Phone),
    ("cell", Cue::Phone),
    ("fax", Cue::Phone),
    ("call", Cue::Phone),
    ("ph", Cue::Phone),
    ("whatsapp", Cue::Phone),
    ("sms", Cue::Phone),
    ("text me", Cue::Phone),
    ("telefon", Cue::Phone),
    ("téléphone", Cue::Phone),
    ("handy", Cue::Phone),
];

/// How far after a cue the thing it announces may start.
const BIRTH_WINDOW: usize = 48;
const ADDRESS_WINDOW: usize = 40;
const NUMBER_WINDOW: usize = 24;
/// The longest key read back from a cue, and the longest unquoted value.
const MAX_KEY: usize = 40;
const MAX_VALUE: usize = 300;

/// The compiled cue automaton (cheap to clone: the automaton is shared).
#[derive(Clone)]
pub(crate) struct Cues {
    automaton: AhoCorasick,
}

impl Cues {
    pub(crate) fn new() -> Cues {
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(CUES.iter().map(|(word, _)| word.as_bytes()))
            .expect("the fixed cue words always compile into an automaton");
        Cues { automaton }
    }

    /// Runs the context pass over `text`, adding candidates to `out`.
    pub(crate) fn scan(
        &self,
        text: &str,
        holes: &[(usize, usize)],
        mask_chars: &[char],
        out: &mut Vec<Candidate>,
    ) {
        let found = self
            .automaton
            .find_iter(text.as_bytes())
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()));
        scan_matches(text, found, holes, mask_chars, out);
    }
}

/// The cue words, in the order their indexes refer to: what another pass
/// over the same text may look for on this pass's behalf (see
/// [`crate::Detector::find_with_cues`]).
pub fn cue_words() -> impl ExactSizeIterator<Item = &'static str> {
    CUES.iter().map(|(word, _)| *word)
}

/// Every occurrence of every cue word (ASCII case ignored), in any order,
/// reduced to what a leftmost-longest search finds: by start, the longest
/// at each start, none overlapping the one taken before it.
pub(crate) fn leftmost_longest(mut all: Vec<(usize, usize, usize)>) -> Vec<(usize, usize, usize)> {
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut taken = Vec::with_capacity(all.len());
    let mut end = 0;
    for m in all {
        if m.0 >= end {
            end = m.1;
            taken.push(m);
        }
    }
    taken
}

/// The context pass over `text`, given its cue matches (start, end, index
/// into the cue words) as a leftmost-longest search finds them. A cue that
/// overlaps a placeholder (`holes`: `[REDACTED:postal_address]`) is no
/// context: the placeholder's kind says what was there, not what follows.
/// `mask_chars` are the characters a masker writes in place of letters (see
/// [`key_value`]).
fn scan_matches(
    text: &str,
    found: impl Iterator<Item = (usize, usize, usize)>,
    holes: &[(usize, usize)],
    mask_chars: &[char],
    out: &mut Vec<Candidate>,
) {
    let hay = text.as_bytes();
    // The end of the last key whose value was read: cues inside it, or
    // inside that value, were handled with it.
    let mut handled_to = 0usize;
    for (start, end, index) in found {
        if start < handled_to || holes.iter().any(|&(s, e)| start < e && s < end) {
            continue;
        }
        let Some(&(_, cue)) = CUES.get(index) else {
            continue;
        };
        if let Some(done) = key_value(text, start, end, mask_chars, out) {
            handled_to = done;
            continue;
        }
        if !word_bounded(hay, start, end) {
            continue;
        }
        prose(text, cue, start, end, mask_chars, out);
    }
}

/// [`Cues::scan`] with the cue matches already found by another pass.
pub(crate) fn scan_found(
    text: &str,
    found: &[(usize, usize, usize)],
    holes: &[(usize, usize)],
    mask_chars: &[char],
    out: &mut Vec<Candidate>,
) {
    scan_matches(
        text,
        leftmost_longest(found.to_vec()).into_iter(),
        holes,
        mask_chars,
        out,
    );
}

fn word_bounded(hay: &[u8], start: usize, end: usize) -> bool {
    !before(hay, start).is_some_and(|b| b.is_ascii_alphanumeric() || b >= 0x80)
        && !at(hay, end).is_some_and(|b| b.is_ascii_alphanumeric() || b >= 0x80)
}

/// How many asterisks, up to four, start at `i`: Markdown bold is two (or
/// three with italics); more is not emphasis.
fn stars(hay: &[u8], i: usize) -> usize {
    hay.get(i..).map_or(0, |rest| {
        rest.iter().take(4).take_while(|&&b| b == b'*').count()
    })
}

fn is_key_byte(b: u8) -> bool {
    is_alnum(b) || matches!(b, b'_' | b'-' | b'.') || b >= 0x80
}

/// A quote at `i`, possibly escaped (`"`, `\"`, `\\\"`: JSON held in a
/// JSON string, or printed by a debug formatter): where it ends, and which
/// quote it is.
fn quote_at(hay: &[u8], i: usize) -> Option<(usize, u8)> {
    let mut j = i;
    while j < hay.len() && j - i < 3 && hay[j] == b'\\' {
        j += 1;
    }
    match at(hay, j) {
        Some(q @ (b'"' | b'\'')) => Some((j + 1, q)),
        _ => None,
    }
}

/// If the cue is part of a key followed by `:` or `=`, classifies the key
/// and checks its value; returns where the value ends.
///
/// A key in Markdown bold (`**Name:** Ada`, `**Name**: Ada`) is a key. A key
/// glued to a character a masker writes (`******name:`, `######name:`,
/// `______name:`) is what masking left of a longer word (`Streetname:`), not
/// a key: read as one, it would mask on a second masking what the first
/// left alone. The two meet when the mask character is `*`: bold is one to
/// three asterisks before the key closed by as many after it, and masking a
/// key that was bold adds asterisks before it, so that the runs differ.
fn key_value(
    text: &str,
    start: usize,
    end: usize,
    mask_chars: &[char],
    out: &mut Vec<Candidate>,
) -> Option<usize> {
    let hay = text.as_bytes();
    // Forward over the rest of the key first: in prose no `:` or `=`
    // follows, and that is seen before anything else is read.
    let mut ke = end;
    while ke < hay.len() && ke - end < MAX_KEY && is_key_byte(hay[ke]) {
        ke += 1;
    }
    let bold_inside = stars(hay, ke);
    let mut probe = ke + bold_inside;
    if let Some((after, _)) = quote_at(hay, probe) {
        probe = after;
    }
    probe = skip_blanks(hay, probe, 2);
    if !matches!(at(hay, probe), Some(b':' | b'=')) {
        return None;
    }
    let bold_after = if bold_inside == 0 {
        stars(hay, probe + 1)
    } else {
        0
    };
    // The key: back over key bytes, then over up to two more words of
    // letters before it (`Date of birth`, `Customer name`).
    let lower = start.saturating_sub(MAX_KEY);
    let mut ks = start;
    while ks > lower && is_key_byte(hay[ks - 1]) {
        ks -= 1;
    }
    for _ in 0..2 {
        if ks < 2 || hay[ks - 1] != b' ' || !hay[ks - 2].is_ascii_alphabetic() {
            break;
        }
        let mut w = ks - 1;
        while w > lower && hay[w - 1].is_ascii_alphabetic() {
            w -= 1;
        }
        if w > 0 && is_key_byte(hay[w - 1]) && hay[w - 1] != b' ' {
            break;
        }
        // A capitalised word after another word is not the start of a
        // key but, as often as not, a name that ends a phrase (`Dear Ssn
        // customer name:`), and one after a title or a salutation is a
        // name (`Dr. Assn name:`): were it taken into the key, masking the
        // name would change what the key says on a second masking.
        let capitalised = hay[w..ks - 1].iter().any(u8::is_ascii_uppercase);
        if capitalised
            && w >= 2
            && hay[w - 1] == b' '
            && (hay[w - 2].is_ascii_alphabetic() || announces_name(hay, w - 1))
        {
            break;
        }
        ks = w;
    }
    let mut bold_before = 0;
    while bold_before < ks && hay[ks - 1 - bold_before] == b'*' {
        bold_before += 1;
    }
    let bold = (1..=3).contains(&bold_before) && bold_before == bold_inside.max(bold_after);
    if bold_inside > 0 && !bold {
        return None;
    }
    // `ks` may fall inside a character where the look back stopped.
    let glued = text
        .get(..ks)
        .and_then(|head| head.chars().next_back())
        .is_some_and(|c| mask_chars.contains(&c))
        || text
            .get(ks..)
            .and_then(|tail| tail.chars().next())
            .is_some_and(|c| mask_chars.contains(&c));
    if glued && !bold {
        return None;
    }
    let mut i = ke + bold_inside;
    if let Some((after, _)) = quote_at(hay, i) {
        i = after;
    }
    i = skip_blanks(hay, i, 2);
    match at(hay, i) {
        Some(b':') if at(hay, i + 1) != Some(b':') => i += 1,
        Some(b'=') if at(hay, i + 1) != Some(b'=') => {
            i += 1;
            if at(hay, i) == Some(b'>') {
                i += 1;
            }
        }
        _ => return None,
    }
    if bold {
        i += bold_after;
    }
    i = skip_blanks(hay, i, 4);
    let quote = match quote_at(hay, i) {
        Some((after, q)) => {
            i = after;
            Some(q)
        }
        None => None,
    };
    let value_start = i;
    let key = text.get(ks..ke)?;
    let hint = field::classify(key);
    let Some(kind) = hint.kind else {
        return Some(value_start.max(end));
    };
    // The key's value is what a masker wrote in its place: handled, and
    // not a reason to read on as prose (which, on a second masking, would
    // find what the value's first reading took the cue away from).
    if quote.is_none() && masker_output_at(text, value_start, mask_chars) {
        return Some(value_start.max(end));
    }
    let limit = (value_start + MAX_VALUE).min(hay.len());
    let found_from = out.len();
    match quote {
        Some(q) => {
            let mut j = value_start;
            while j < limit && hay[j] != q && hay[j] != b'\n' && hay[j] != b'\\' {
                j += 1;
            }
            let value = text.get(value_start..j)?;
            values::check(hint, value, value_start, out);
        }
        None => unquoted(text, hint, kind, value_start, limit, out),
    }
    if out.len() == found_from && quote.is_none() {
        // Nothing where the key said: let the cue be read as prose.
        return None;
    }
    Some(value_start.max(end))
}

/// Whether what starts at `i` is a masker's output: a placeholder
/// (`[REDACTED:postal_address]`), a mask character (`****4539`), or a word
/// of eight or more lower-case hex digits, letters and digits both (a
/// hash).
fn masker_output_at(text: &str, i: usize, mask_chars: &[char]) -> bool {
    let Some(rest) = text.get(i..) else {
        return false;
    };
    if rest.starts_with(super::PLACEHOLDER)
        || rest.chars().next().is_some_and(|c| mask_chars.contains(&c))
    {
        return true;
    }
    // Digits and letters both: a number or a date is no hash.
    let word = &rest.as_bytes()[..rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        .count()];
    word.len() >= 8
        && word.iter().any(u8::is_ascii_digit)
        && word.iter().any(u8::is_ascii_lowercase)
        && !rest
            .as_bytes()
            .get(word.len())
            .is_some_and(|&b| is_alnum(b) || b >= 0x80)
}

/// Reads an unquoted value (`name=Ada Lovelace email=...`, `DOB: 3 Feb
/// 1990, London`): the kind's own parser decides where it ends, since
/// commas and spaces may belong to it or to what follows.
fn unquoted(
    text: &str,
    hint: FieldHint,
    kind: PersonalKind,
    start: usize,
    limit: usize,
    out: &mut Vec<Candidate>,
) {
    let hay = text.as_bytes();
    let line_end = (start..limit)
        .find(|&j| {
            matches!(
                hay[j],
                b'\n' | b'\r' | b';' | b'&' | b'|' | b'"' | b'\t' | b'}' | b']'
            )
        })
        .unwrap_or(limit);
    let mut token_end = start;
    while token_end < line_end && !matches!(hay[token_end], b' ' | b',') {
        token_end += 1;
    }
    match kind {
        PersonalKind::DateOfBirth => {
            if let Some(m) = date::at_start(hay, start, true) {
                out.push(Candidate::new(kind, start, m.end, 4));
            }
        }
        PersonalKind::PostalAddress => {
            // Unquoted, only a street the parser reads: the loose checks of
            // whole field values would take in whatever follows.
            if let Some(m) = address::at_start(hay, start) {
                out.push(Candidate::new(kind, start, m.end, 4));
            } else if hint.component == Some(super::field::Component::Postcode)
                && let Some(value) = text.get(start..token_end)
            {
                values::check(hint, value, start, out);
            }
        }
        PersonalKind::PersonName => {
            if let Some(end) = name::at_start(text, start, NameMode::Strong)
                && let Some(value) = text.get(start..end)
            {
                values::check(hint, value, start, out);
            }
        }
        PersonalKind::Phone => {
            if let Some(end) = phone::at_start(hay, start, phone::Strictness::Context) {
                out.push(Candidate::new(kind, start, end, 4));
            }
        }
        PersonalKind::UsSsn => {
            if let Some(end) = ssn::any_at(hay, start) {
                out.push(Candidate::new(kind, start, end, 4));
            }
        }
        _ => {
            if let Some(value) = text.get(start..token_end) {
                values::check(hint, value, start, out);
            }
        }
    }
}

/// Reads what a prose cue announces.
fn prose(
    text: &str,
    cue: Cue,
    start: usize,
    end: usize,
    mask_chars: &[char],
    out: &mut Vec<Candidate>,
) {
    let hay = text.as_bytes();
    match cue {
        Cue::Title => {
            // Titles are written with a capital: `Dr. Ada`, not `dr ada`.
            if !hay[start].is_ascii_uppercase() {
                return;
            }
            let mut i = end;
            if at(hay, i) == Some(b'.') {
                i += 1;
            }
            if at(hay, i) != Some(b' ') {
                return;
            }
            name_after(text, i + 1, NameMode::Strong, out);
        }
        Cue::Salutation => {
            if at(hay, end) == Some(b' ') {
                name_after(text, end + 1, NameMode::Strong, out);
            }
        }
        Cue::Closing => {
            if at(hay, end) != Some(b',') {
                return;
            }
            let mut i = end + 1;
            while i < hay.len() && i < end + 6 && matches!(hay[i], b' ' | b'\n' | b'\r' | b'\t') {
                i += 1;
            }
            if i > end + 1 {
                name_after(text, i, NameMode::Strong, out);
            }
        }
        Cue::NameIs => {
            if at(hay, end) == Some(b' ') {
                name_after(text, end + 1, NameMode::Strong, out);
            }
        }
        Cue::Role => {
            if at(hay, end) == Some(b' ') {
                name_after(text, end + 1, NameMode::Weak, out);
            }
        }
        Cue::KeyOnly => {}
        Cue::Birth => within(
            text,
            mask_chars,
            end,
            BIRTH_WINDOW,
            |j| {
                date::at_start(hay, j, true)
                    .map(|m| Candidate::new(PersonalKind::DateOfBirth, j, m.end, 2))
            },
            out,
        ),
        Cue::Address => {
            // `IP address`, `email address`, `MAC address` are not postal.
            let word_before = previous_word(hay, start);
            if matches!(
                word_before.as_str(),
                "ip" | "email"
                    | "e-mail"
                    | "mac"
                    | "web"
                    | "wallet"
                    | "server"
                    | "memory"
                    | "return"
                    | "bitcoin"
                    | "hardware"
                    | "physical"
                    | "remote"
                    | "local"
            ) {
                return;
            }
            within(
                text,
                mask_chars,
                end,
                ADDRESS_WINDOW,
                |j| {
                    address::at_start(hay, j)
                        .map(|m| Candidate::new(PersonalKind::PostalAddress, j, m.end, 1))
                },
                out,
            );
        }
        Cue::Ssn => within(
            text,
            mask_chars,
            end,
            NUMBER_WINDOW,
            |j| ssn::any_at(hay, j).map(|e| Candidate::new(PersonalKind::UsSsn, j, e, 3)),
            out,
        ),
        Cue::Phone => within(
            text,
            mask_chars,
            end,
            NUMBER_WINDOW,
            |j| {
                phone::at_start(hay, j, phone::Strictness::Context)
                    .map(|e| Candidate::new(PersonalKind::Phone, j, e, 2))
            },
            out,
        ),
    }
}

/// Whether the word that ends just before `end` (a `.` or `,` after it
/// allowed) is a title, salutation, closing or `name is` (its last word),
/// after which a capitalised word is read as a name.
fn announces_name(hay: &[u8], end: usize) -> bool {
    let end = if matches!(before(hay, end), Some(b'.' | b',')) {
        end - 1
    } else {
        end
    };
    let mut start = end;
    while start > 0 && end - start < 16 && hay[start - 1].is_ascii_alphabetic() {
        start -= 1;
    }
    let word = &hay[start..end];
    !word.is_empty()
        && CUES.iter().any(|&(cue_word, cue)| {
            matches!(
                cue,
                Cue::Title | Cue::Salutation | Cue::Closing | Cue::NameIs
            ) && cue_word
                .rsplit(' ')
                .next()
                .is_some_and(|last| last.as_bytes().eq_ignore_ascii_case(word))
        })
}

fn previous_word(hay: &[u8], start: usize) -> String {
    let mut e = start;
    while e > 0 && hay[e - 1] == b' ' && start - e < 2 {
        e -= 1;
    }
    let mut s = e;
    while s > 0 && e - s < 12 && (hay[s - 1].is_ascii_alphabetic() || hay[s - 1] == b'-') {
        s -= 1;
    }
    String::from_utf8_lossy(&hay[s..e]).to_ascii_lowercase()
}

fn name_after(text: &str, i: usize, mode: NameMode, out: &mut Vec<Candidate>) {
    // Names start with a capital (or a letter outside ASCII).
    if !text
        .as_bytes()
        .get(i)
        .is_some_and(|&b| b.is_ascii_uppercase() || b >= 0x80)
    {
        return;
    }
    if let Some(e) = name::at_start(text, i, mode) {
        out.push(Candidate::new(PersonalKind::PersonName, i, e, 1));
    }
}

/// Tries `find` at every token start in the words after `from` — as many
/// words as a `window` of bytes holds at five bytes a word, and at most
/// three times that many bytes — and keeps the first thing found.
///
/// The reach is counted in words, not bytes, so that masking a text does
/// not change what a second masking finds: a pseudonym has as many words
/// as what it replaced, not as many bytes (`phone born Dear Streetcustomer
/// 2002000000` and `phone born Dear Sven 2002000000` are read alike).
///
/// The search stops at a masker's output (see [`masker_output_at`]): what
/// the cue announced was found and masked there by an earlier masking, and
/// reading past it would find something else on a second one.
fn within(
    text: &str,
    mask_chars: &[char],
    from: usize,
    window: usize,
    find: impl Fn(usize) -> Option<Candidate>,
    out: &mut Vec<Candidate>,
) {
    let hay = text.as_bytes();
    let limit = (from + window * 3).min(hay.len());
    let max_words = window / 5;
    let mut words = 0;
    let mut j = from;
    while j < limit {
        let b = hay[j];
        let word_start = !b.is_ascii_whitespace()
            && (j == from || before(hay, j).is_some_and(|p| p.is_ascii_whitespace()));
        if word_start && masker_output_at(text, j, mask_chars) {
            return;
        }
        if !b.is_ascii_whitespace() && before(hay, j).is_some_and(|p| p.is_ascii_whitespace()) {
            words += 1;
            if words > max_words {
                return;
            }
        }
        let starts = (is_alnum(b) || b == b'+' || b == b'(')
            && !before(hay, j).is_some_and(|p| is_alnum(p) || p >= 0x80);
        if starts
            && (is_digit(b)
                || b.is_ascii_uppercase()
                || b == b'+'
                || b == b'('
                || b.is_ascii_lowercase())
            && let Some(c) = find(j)
        {
            out.push(c);
            return;
        }
        if b == b'\n' && j > from + 2 {
            // A cue at the end of a line may announce the next line, but not
            // the one after.
            if hay
                .get(from..j)
                .is_some_and(|s| s.iter().any(u8::is_ascii_alphanumeric))
            {
                return;
            }
        }
        j += 1;
    }
}
