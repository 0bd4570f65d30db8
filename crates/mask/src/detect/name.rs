//! Person names. A name is one to four capitalised words (with the
//! particles `van`, `de`, `von`, `da`, `al`... between them, initials such
//! as `J.`, hyphens, apostrophes as in `O'Brien`, and letters of any
//! script), and it is only ever looked for where something says a name
//! follows: a title (`Dr.`, `Ms`), a salutation (`Dear`), a closing
//! (`Sincerely,`), a role word (`customer`, `patient`), `name:` or a field
//! named for a name. Words that are capitalised for other reasons
//! (`Support`, `Team`, `Widget`, `Inc`) end a name or refuse it.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::lists;

/// How much the context vouches for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameMode {
    /// A title, salutation, closing or `name:` precedes it: one word is
    /// enough, and an all-capitals name is accepted.
    Strong,
    /// A role word precedes it (`customer Ada Lovelace`): two words, or one
    /// that is a known given name.
    Weak,
}

/// Lower-case particles that may stand between the words of a name.
const PARTICLES: &[&str] = &[
    "van", "von", "de", "der", "den", "del", "della", "di", "da", "du", "dos", "das", "la", "le",
    "ter", "ten", "bin", "binti", "ibn", "al", "el", "y", "zu", "af", "av", "st",
];

/// Capitalised words that are not names: pronouns, roles, departments,
/// greetings, placeholders, company and product words.
const NOT_NAMES: &[&str] = &[
    "the",
    "a",
    "an",
    "this",
    "that",
    "these",
    "those",
    "our",
    "your",
    "my",
    "his",
    "her",
    "their",
    "its",
    "we",
    "you",
    "they",
    "he",
    "she",
    "it",
    "i",
    "me",
    "us",
    "them",
    "all",
    "everyone",
    "everybody",
    "anyone",
    "someone",
    "sir",
    "madam",
    "madame",
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "dear",
    "hello",
    "hi",
    "hey",
    "thanks",
    "thank",
    "regards",
    "best",
    "sincerely",
    "cheers",
    "team",
    "support",
    "service",
    "services",
    "customer",
    "customers",
    "client",
    "clients",
    "user",
    "users",
    "admin",
    "administrator",
    "account",
    "accounts",
    "manager",
    "management",
    "department",
    "dept",
    "sales",
    "billing",
    "operations",
    "ops",
    "engineering",
    "staff",
    "friend",
    "friends",
    "colleague",
    "colleagues",
    "member",
    "members",
    "valued",
    "guest",
    "guests",
    "unknown",
    "none",
    "null",
    "nil",
    "n",
    "na",
    "anonymous",
    "test",
    "testing",
    "example",
    "sample",
    "demo",
    "name",
    "first",
    "last",
    "full",
    "company",
    "inc",
    "ltd",
    "llc",
    "llp",
    "plc",
    "corp",
    "corporation",
    "gmbh",
    "ag",
    "sa",
    "sarl",
    "bv",
    "co",
    "group",
    "holdings",
    "bank",
    "hospital",
    "clinic",
    "university",
    "school",
    "college",
    "center",
    "centre",
    "institute",
    "foundation",
    "association",
    "street",
    "avenue",
    "road",
    "yes",
    "no",
    "not",
    "please",
    "note",
    "notes",
    "id",
    "order",
    "orders",
    "invoice",
    "product",
    "products",
    "item",
    "items",
    "widget",
    "pro",
    "plus",
    "max",
    "mini",
    "ultra",
    "lite",
    "edition",
    "version",
    "model",
    "series",
    "premium",
    "standard",
    "basic",
    "free",
    "enterprise",
    "project",
    "app",
    "application",
    "system",
    "server",
    "database",
    "api",
    "data",
    "file",
    "report",
    "error",
    "warning",
    "info",
    "debug",
    "true",
    "false",
    "ok",
    "success",
    "failed",
    "pending",
    "active",
    "inactive",
    "new",
    "old",
    "other",
    "general",
    "public",
    "private",
    "internal",
    "external",
    "global",
    "local",
    "default",
    "primary",
    "secondary",
    "main",
    "home",
    "office",
    "work",
    "mobile",
    "phone",
    "email",
    "address",
    "contact",
    "details",
    "information",
    "portal",
    "desk",
    "help",
    "helpdesk",
    "care",
    "experience",
    "relations",
    "agent",
    "bot",
    "assistant",
    "robot",
    "ai",
    "owner",
    "patient",
    "employee",
    "recipient",
    "sender",
    "tenant",
    "is",
    "was",
    "has",
    "had",
    "will",
    "would",
    "can",
    "could",
    "should",
    "may",
    "might",
    "must",
    "and",
    "or",
    "but",
    "if",
    "on",
    "in",
    "at",
    "to",
    "for",
    "from",
    "with",
    "of",
    "by",
    "as",
    "via",
    "per",
    "about",
    "re",
    "fwd",
    "subject",
    "date",
    "time",
    "today",
    "tomorrow",
    "yesterday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "kit",
    "pack",
    "bundle",
    "set",
    "cable",
    "adapter",
    "charger",
    "case",
    "cover",
    "device",
    "tablet",
    "laptop",
    "router",
    "speaker",
    "camera",
    "watch",
    "card",
    "gift",
    "box",
    "deluxe",
    "classic",
    "original",
    "limited",
    "special",
    "essentials",
    "starter",
    "advanced",
    "smart",
    "wireless",
    "digital",
    "total",
    "amount",
    "price",
    "payment",
    "balance",
    "status",
    "type",
    "category",
    "unit",
    "department",
    "division",
    "office",
    "headquarters",
    "hq",
    "ceo",
    "cto",
    "cfo",
    "vp",
    "director",
    "lead",
    "head",
    "chief",
    "officer",
    "senior",
    "junior",
    "jr",
    "sr",
    "ii",
    "iii",
    "phd",
    "md",
    "esq",
    "redacted",
    "masked",
    "hidden",
    "private",
    "confidential",
    "tbd",
    "tba",
    "n/a",
    "various",
    "multiple",
    "several",
    "unassigned",
    "nobody",
    "noone",
    "everyone",
    "whom",
    "who",
    "what",
    "which",
    "where",
    "when",
    "why",
    "how",
    "there",
    "here",
    "then",
    "than",
    "so",
    "also",
    "just",
    "only",
    "very",
    "really",
    "please",
    "welcome",
    "good",
    "morning",
    "afternoon",
    "evening",
    "night",
    "day",
    "week",
    "month",
    "year",
    "january",
    "february",
    "march",
    "august",
    "september",
    "october",
    "november",
    "december",
    "inbox",
    "draft",
    "sent",
    "spam",
    "trash",
    "folder",
    "settings",
    "profile",
    "login",
    "logout",
    "signup",
    "sign",
    "register",
    "password",
    "username",
    "security",
    "privacy",
    "terms",
    "policy",
    "legal",
    "copyright",
    "reserved",
    "rights",
    "click",
    "here",
    "view",
    "open",
    "close",
    "submit",
    "cancel",
    "save",
    "delete",
    "edit",
    "update",
    "create",
];

static NOT_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NOT_NAMES.iter().copied().collect());

/// Whether `word` is a common word the detector never takes for a name.
pub(crate) fn is_not_name(word: &str) -> bool {
    let word = word.trim_end_matches('.');
    if word.len() <= 24 && word.is_ascii() {
        let mut buf = [0u8; 24];
        let lower = &mut buf[..word.len()];
        lower.copy_from_slice(word.as_bytes());
        lower.make_ascii_lowercase();
        return std::str::from_utf8(lower).is_ok_and(|w| NOT_NAME_SET.contains(w));
    }
    NOT_NAME_SET.contains(word.to_lowercase().as_str())
}

fn is_particle(word: &str) -> bool {
    PARTICLES.contains(&word)
}

/// How a word is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// `Ada`, `McDonald`, `O'Brien`, `Jean-Luc`.
    Capitalised,
    /// `ADA`.
    Capitals,
    /// `ada`.
    Lower,
    /// `J` or `J.`.
    Initial,
    /// Anything else (`iPhone`, `aDa`).
    Mixed,
}

#[derive(Debug, Clone, Copy)]
struct Word<'t> {
    text: &'t str,
    start: usize,
    /// The end of the word, after a trailing `.` for an initial.
    end: usize,
    case: Case,
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// The word of letters starting at `i`, with inner hyphens and apostrophes.
fn word_at(text: &str, i: usize) -> Option<Word<'_>> {
    let rest = text.get(i..)?;
    let mut chars = rest.char_indices().peekable();
    let mut end = 0;
    let mut letters = 0;
    while let Some(&(off, c)) = chars.peek() {
        if c.is_alphabetic() {
            letters += 1;
            end = off + c.len_utf8();
            chars.next();
        } else if (c == '-' || is_apostrophe(c)) && letters > 0 {
            let mut ahead = chars.clone();
            ahead.next();
            if ahead.peek().is_some_and(|&(_, n)| n.is_alphabetic()) {
                chars.next();
            } else {
                break;
            }
        } else {
            break;
        }
        if letters > 40 {
            return None;
        }
    }
    if letters == 0 {
        return None;
    }
    let word = &rest[..end];
    let mut abs_end = i + end;
    let first = word.chars().next()?;
    let case = if letters == 1 && first.is_uppercase() {
        if rest[end..].starts_with('.') {
            abs_end += 1;
        }
        Case::Initial
    } else if word
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(char::is_uppercase)
    {
        Case::Capitals
    } else if word
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(char::is_lowercase)
    {
        Case::Lower
    } else if first.is_uppercase() && capitalised_tail(word) {
        Case::Capitalised
    } else {
        Case::Mixed
    };
    Some(Word {
        text: word,
        start: i,
        end: abs_end,
        case,
    })
}

/// After the first letter, lower case, except a capital right after a
/// hyphen or apostrophe, or after `Mc`, `Mac`, `De`, `La`, `Di`, `Le` at
/// the start of the word or of one of its hyphenated parts
/// (`Owusu-MacLeod`).
fn capitalised_tail(word: &str) -> bool {
    let mut chars = word.char_indices();
    let Some((_, mut prev)) = chars.next() else {
        return false;
    };
    let mut lowers = 0;
    // Where the current hyphenated (or apostrophe-joined) part starts.
    let mut part = 0;
    for (off, c) in chars {
        let after_joint = prev == '-' || is_apostrophe(prev);
        if after_joint {
            part = off;
        }
        if c.is_lowercase() {
            lowers += 1;
        } else if c.is_uppercase() {
            let after_prefix = matches!(
                &word[part..off],
                "Mc" | "Mac" | "De" | "La" | "Di" | "Le" | "Van" | "Du"
            );
            if !(after_joint || after_prefix) {
                return false;
            }
        }
        prev = c;
    }
    lowers > 0
}

/// The name that starts at `s` in `text`, as its end.
pub(crate) fn at_start(text: &str, s: usize, mode: NameMode) -> Option<usize> {
    let words = read_words(text, s)?;
    let end = accept(&words, mode)?;
    Some(end)
}

/// Reads up to five name-like words separated by single spaces.
fn read_words(text: &str, s: usize) -> Option<Vec<Word<'_>>> {
    let mut words = Vec::with_capacity(4);
    let mut i = s;
    while let Some(word) = word_at(text, i) {
        words.push(word);
        if words.len() == 6 {
            break;
        }
        let bytes = text.as_bytes();
        let next = word.end;
        let gap = if bytes.get(next) == Some(&b' ') { 1 } else { 0 };
        if gap == 0
            || !bytes
                .get(next + 1)
                .is_some_and(|&b| b.is_ascii_alphabetic() || b >= 0x80)
        {
            break;
        }
        i = next + gap;
    }
    (!words.is_empty()).then_some(words)
}

/// Picks the longest acceptable name from the front of `words`.
fn accept(words: &[Word<'_>], mode: NameMode) -> Option<usize> {
    let all_caps = words.first().is_some_and(|w| w.case == Case::Capitals);
    if all_caps && mode == NameMode::Weak {
        return None;
    }
    let mut end = None;
    let mut names = 0usize;
    let mut initials = 0usize;
    let mut first_name_word: Option<&str> = None;
    for (k, word) in words.iter().enumerate() {
        let fits = match word.case {
            Case::Capitalised => !all_caps,
            Case::Capitals => all_caps,
            Case::Initial => true,
            Case::Lower => is_particle(word.text) && k > 0,
            Case::Mixed => false,
        };
        if !fits || is_not_name(word.text) {
            break;
        }
        match word.case {
            Case::Lower => continue,
            Case::Initial => initials += 1,
            _ => {
                names += 1;
                first_name_word.get_or_insert(word.text);
            }
        }
        end = Some(possessive_end(word));
        if names + initials == 4 {
            break;
        }
    }
    let end = end?;
    if names == 0 {
        return None;
    }
    match mode {
        NameMode::Strong => Some(end),
        NameMode::Weak if names >= 2 => Some(end),
        NameMode::Weak => first_name_word
            .filter(|w| lists::is_given_name(w))
            .map(|_| end),
    }
}

/// The end of a word without a possessive `'s`.
fn possessive_end(word: &Word<'_>) -> usize {
    for suffix in ["'s", "\u{2019}s"] {
        if word.text.len() > suffix.len() + 1 && word.text.ends_with(suffix) {
            return word.start + word.text.len() - suffix.len();
        }
    }
    word.end
}

/// Whether all of `value` is a person's name. A `definite` field (named
/// `first_name`, `surname`, `patient_name`...) accepts any name-shaped
/// value, in any case; an ambiguous one (`name`, `customer`, `owner`) wants
/// two or more capitalised words that are not product, company or role
/// words, or a single known given name.
pub(crate) fn is_name_value(value: &str, definite: bool) -> bool {
    let value = value.trim();
    if value.is_empty()
        || value.len() > 120
        || value.chars().any(|c| {
            c.is_ascii_digit()
                || matches!(
                    c,
                    '@' | '/'
                        | '\\'
                        | '_'
                        | ':'
                        | '='
                        | '#'
                        | '<'
                        | '>'
                        | '{'
                        | '}'
                        | '['
                        | ']'
                        | '|'
                        | '+'
                        | '*'
                )
        })
    {
        return false;
    }
    // "Lovelace, Ada" is a name written surname first.
    let parts: Vec<&str> = value.split(", ").collect();
    if parts.len() > 2 {
        return false;
    }
    let mut names = 0usize;
    let mut cases = Vec::new();
    for part in &parts {
        for raw in part.split(' ').filter(|w| !w.is_empty()) {
            let Some(word) = word_at(raw, 0) else {
                return false;
            };
            if word.end != raw.len() && !(word.case == Case::Initial && word.end == raw.len()) {
                return false;
            }
            if is_not_name(raw) {
                return false;
            }
            match word.case {
                Case::Lower if is_particle(raw) => {}
                Case::Mixed => return false,
                case => {
                    if case != Case::Initial {
                        names += 1;
                    }
                    cases.push(case);
                }
            }
        }
    }
    if names == 0 || names > 5 {
        return false;
    }
    if definite {
        return true;
    }
    let capitalised = cases
        .iter()
        .all(|&c| matches!(c, Case::Capitalised | Case::Initial))
        || cases
            .iter()
            .all(|&c| matches!(c, Case::Capitals | Case::Initial));
    if !capitalised || names > 4 {
        return false;
    }
    names >= 2 || lists::is_given_name(value)
}
