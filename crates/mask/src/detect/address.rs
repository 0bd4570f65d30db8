//! Postal addresses. A street part in one of three shapes —
//!
//! - number first, street type last: `221B Baker Street`, `1600
//!   Pennsylvania Ave NW`, `350 Fifth Avenue, Suite 200`;
//! - number first, street type first: `12 rue de la Paix`, `5 Calle Mayor`,
//!   `3 Via Roma`;
//! - street then number, with a German or Dutch street word: `Hauptstraße
//!   5`, `Kaiser-Wilhelm-Str. 12a`, `Keizersgracht 123`;
//!
//! — followed by an optional locality: comma-separated towns, US states
//! with ZIP codes, UK postcodes, German and French postcodes before the
//! town, and country names. An address is reported where a context word or
//! a field name says one follows; a number-first street with a postcode in
//! its locality is reported anywhere, since that shape is its own context.

use super::scan::{at, before, digit_run, is_alnum, is_digit, starts_with_ci};

/// English street types, written after the street name (lower case,
/// without a trailing dot).
const EN_TYPES: &[&str] = &[
    "street",
    "st",
    "avenue",
    "ave",
    "av",
    "road",
    "rd",
    "lane",
    "ln",
    "drive",
    "dr",
    "boulevard",
    "blvd",
    "court",
    "ct",
    "place",
    "pl",
    "way",
    "terrace",
    "ter",
    "parkway",
    "pkwy",
    "highway",
    "hwy",
    "circle",
    "cir",
    "square",
    "sq",
    "close",
    "crescent",
    "cres",
    "grove",
    "gardens",
    "gdns",
    "row",
    "mews",
    "walk",
    "hill",
    "trail",
    "trl",
    "alley",
    "plaza",
    "loop",
    "pike",
    "broadway",
    "embankment",
    "parade",
    "esplanade",
    "wharf",
    "quay",
    "green",
    "rise",
    "vale",
    "wynd",
    "gate",
    "yard",
    "expressway",
    "expy",
    "freeway",
    "fwy",
    "turnpike",
    "tpke",
    "causeway",
    "point",
    "pt",
    "run",
    "path",
    "pass",
    "crossing",
    "xing",
];

/// The abbreviated street types, which may carry a dot.
const EN_ABBREVIATIONS: &[&str] = &[
    "st", "ave", "av", "rd", "ln", "dr", "blvd", "ct", "pl", "ter", "pkwy", "hwy", "cir", "sq",
    "cres", "gdns", "trl", "expy", "fwy", "tpke", "pt", "xing",
];

/// Street types written before the name (French, Spanish, Italian,
/// Portuguese).
const LATIN_TYPES: &[&str] = &[
    "rue",
    "avenue",
    "av.",
    "boulevard",
    "bd",
    "bld",
    "place",
    "pl.",
    "chemin",
    "impasse",
    "allée",
    "allee",
    "quai",
    "cours",
    "route",
    "rte",
    "passage",
    "voie",
    "square",
    "calle",
    "c/",
    "avenida",
    "avda",
    "paseo",
    "plaza",
    "camino",
    "carrera",
    "via",
    "viale",
    "piazza",
    "corso",
    "largo",
    "vicolo",
    "rua",
    "travessa",
    "praça",
];

/// German and Dutch street words, written at the end of the street name.
const GERMANIC_SUFFIXES: &[&str] = &[
    "straße",
    "strasse",
    "str.",
    "weg",
    "platz",
    "allee",
    "gasse",
    "ring",
    "damm",
    "ufer",
    "chaussee",
    "steig",
    "pfad",
    "promenade",
    "markt",
    "graben",
    "straat",
    "laan",
    "plein",
    "gracht",
    "kade",
    "singel",
    "dijk",
    "gata",
    "gatan",
    "vej",
    "vägen",
    "veien",
];

/// Unit designators after the street (`Apt 4B`, `Suite 200`, `Flat 2`).
const UNITS: &[&str] = &[
    "apt",
    "apartment",
    "suite",
    "ste",
    "unit",
    "flat",
    "fl",
    "floor",
    "room",
    "rm",
    "bldg",
    "building",
    "#",
    "no.",
    "dept",
    "po box",
];

/// Compass directions after US street names.
const DIRECTIONS: &[&str] = &[
    "N", "S", "E", "W", "NE", "NW", "SE", "SW", "N.", "S.", "E.", "W.", "N.E.", "N.W.", "S.E.",
    "S.W.",
];

/// Country names that may end an address.
const COUNTRIES: &[&str] = &[
    "USA",
    "U.S.A.",
    "US",
    "United States",
    "UK",
    "U.K.",
    "United Kingdom",
    "England",
    "Scotland",
    "Wales",
    "Ireland",
    "Germany",
    "Deutschland",
    "France",
    "Spain",
    "España",
    "Italy",
    "Italia",
    "Netherlands",
    "Nederland",
    "Belgium",
    "Switzerland",
    "Schweiz",
    "Austria",
    "Österreich",
    "Canada",
    "Australia",
    "India",
    "Portugal",
    "Sweden",
    "Norway",
    "Denmark",
    "Finland",
    "Poland",
];

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddressMatch {
    pub end: usize,
    /// Whether the locality held a postcode.
    pub postcode: bool,
    /// Whether the street part had a street type or suffix.
    pub typed: bool,
}

/// A word: letters (any script), inner hyphens and apostrophes, and a
/// trailing dot.
fn word_end(hay: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while j < hay.len()
        && (hay[j].is_ascii_alphabetic()
            || hay[j] >= 0x80
            || ((hay[j] == b'-' || hay[j] == b'\'')
                && j > i
                && at(hay, j + 1).is_some_and(|b| b.is_ascii_alphabetic() || b >= 0x80)))
    {
        j += 1;
        if j - i > 40 {
            return None;
        }
    }
    (j > i).then_some(j)
}

/// Whether `hay[from..to]` is one of `list` (ASCII case-insensitively,
/// ignoring a trailing dot).
fn in_list(hay: &[u8], from: usize, to: usize, list: &[&str]) -> bool {
    let word = &hay[from..to];
    let bare = word.strip_suffix(b".").unwrap_or(word);
    list.iter().any(|w| {
        let w = w.as_bytes();
        w.eq_ignore_ascii_case(word) || w.eq_ignore_ascii_case(bare)
    })
}

/// Whether `hay[from..to]` ends with one of `list`, ASCII case-insensitively.
fn ends_with_any(hay: &[u8], from: usize, to: usize, list: &[&str]) -> bool {
    let word = &hay[from..to];
    list.iter().any(|w| {
        let w = w.as_bytes();
        word.len() >= w.len() && word[word.len() - w.len()..].eq_ignore_ascii_case(w)
    })
}

const LATIN_PARTICLES: &[&str] = &[
    "de", "la", "le", "les", "du", "des", "del", "di", "da", "do", "dos", "das", "della", "y", "e",
];
const PLACE_PARTICLES: &[&str] = &[
    "am", "an", "der", "sur", "en", "de", "la", "le", "upon", "on", "im", "ob",
];

fn is_capitalised(hay: &[u8], i: usize) -> bool {
    at(hay, i).is_some_and(|b| b.is_ascii_uppercase() || (0xC3..=0xC5).contains(&b))
}

/// A house number at `i`: digits, an optional letter, an optional range.
fn house_number(hay: &[u8], i: usize) -> Option<usize> {
    let d = digit_run(hay, i, 5);
    if d == 0 || d > 5 {
        return None;
    }
    let mut j = i + d;
    if at(hay, j).is_some_and(|b| b.is_ascii_alphabetic())
        && !at(hay, j + 1).is_some_and(|b| b.is_ascii_alphabetic())
    {
        j += 1;
    }
    if at(hay, j) == Some(b'-') && at(hay, j + 1).is_some_and(is_digit) {
        let d2 = digit_run(hay, j + 1, 5);
        if d2 <= 5 {
            j += 1 + d2;
        }
    }
    if at(hay, j).is_some_and(|b| is_alnum(b) || b == b'_') {
        return None;
    }
    Some(j)
}

/// The address starting at `s`.
pub(crate) fn at_start(hay: &[u8], s: usize) -> Option<AddressMatch> {
    if before(hay, s).is_some_and(|b| is_alnum(b) || b == b'_' || b >= 0x80) {
        return None;
    }
    let (street_end, typed) = if at(hay, s).is_some_and(is_digit) {
        number_first(hay, s)?
    } else {
        (street_then_number(hay, s)?, true)
    };
    let street_end = unit(hay, street_end);
    let (end, postcode) = locality(hay, street_end);
    if !typed && !postcode {
        return None;
    }
    Some(AddressMatch {
        end,
        postcode,
        typed,
    })
}

/// `221B Baker Street`, `12 rue de la Paix`, `1600 Pennsylvania Ave NW`.
fn number_first(hay: &[u8], s: usize) -> Option<(usize, bool)> {
    let n_end = house_number(hay, s)?;
    let mut i = n_end;
    if at(hay, i) == Some(b',') {
        i += 1;
    }
    if at(hay, i) != Some(b' ') {
        return None;
    }
    i += 1;
    // A Latin street type first: `rue de la Paix`.
    if let Some(t_end) = word_end(hay, i).map(|e| if at(hay, e) == Some(b'.') { e + 1 } else { e })
        && in_list(hay, i, t_end, LATIN_TYPES)
    {
        let mut end = t_end;
        let mut j = t_end;
        let mut words = 0;
        while at(hay, j) == Some(b' ') && words < 6 {
            let Some(w_end) = word_end(hay, j + 1) else {
                break;
            };
            let particle = in_list(hay, j + 1, w_end, LATIN_PARTICLES);
            let elided = w_end > j + 3
                && matches!(hay[j + 1], b'd' | b'l' | b'D' | b'L')
                && hay[j + 2] == b'\'';
            if !(particle || elided || is_capitalised(hay, j + 1)) {
                break;
            }
            j = w_end;
            words += 1;
            if !particle {
                end = w_end;
            }
        }
        return (end > t_end).then_some((end, true));
    }
    // English order: capitalised name words, then a street type.
    let mut j = i;
    let mut words = 0;
    let mut last_end = None;
    let mut typed_end = None;
    while words < 5 {
        if !(is_capitalised(hay, j) || at(hay, j).is_some_and(is_digit)) {
            break;
        }
        // Ordinal street names: `5th Avenue`, `42nd Street`.
        let w_end = if at(hay, j).is_some_and(is_digit) {
            let d = digit_run(hay, j, 3);
            let e = j + d;
            if d == 0
                || d > 3
                || !(starts_with_ci(hay, e, b"st")
                    || starts_with_ci(hay, e, b"nd")
                    || starts_with_ci(hay, e, b"rd")
                    || starts_with_ci(hay, e, b"th"))
            {
                break;
            }
            e + 2
        } else {
            word_end(hay, j)?
        };
        let mut end = w_end;
        let bounded = !at(hay, w_end).is_some_and(|b| is_alnum(b) || b == b'_');
        if words > 0 && bounded && in_list(hay, j, w_end, EN_TYPES) {
            // `St.` keeps its dot; `Street.` ends a sentence.
            if at(hay, end) == Some(b'.') && in_list(hay, j, w_end, EN_ABBREVIATIONS) {
                end += 1;
            }
            typed_end = Some(end);
            last_end = Some(end);
            break;
        }
        last_end = Some(w_end);
        words += 1;
        if at(hay, w_end) != Some(b' ') {
            break;
        }
        j = w_end + 1;
    }
    if let Some(end) = typed_end {
        return Some((direction(hay, end), true));
    }
    // No street type: acceptable only when a postcode follows (checked by
    // the caller), as in `1600 Pennsylvania, Washington, DC 20500`.
    last_end.map(|end| (end, false))
}

/// A compass direction after a street type: ` NW`.
fn direction(hay: &[u8], end: usize) -> usize {
    if at(hay, end) != Some(b' ') {
        return end;
    }
    for d in DIRECTIONS {
        let d = d.as_bytes();
        if hay.get(end + 1..end + 1 + d.len()) == Some(d)
            && !at(hay, end + 1 + d.len()).is_some_and(|b| b.is_ascii_alphanumeric())
        {
            return end + 1 + d.len();
        }
    }
    end
}

/// `Hauptstraße 5`, `Kaiser-Wilhelm-Str. 12a`, `Keizersgracht 123`.
fn street_then_number(hay: &[u8], s: usize) -> Option<usize> {
    if !is_capitalised(hay, s) {
        return None;
    }
    let mut j = s;
    for _ in 0..3 {
        let mut w_end = word_end(hay, j)?;
        if at(hay, w_end) == Some(b'.') {
            w_end += 1;
        }
        let germanic = ends_with_any(hay, j, w_end, GERMANIC_SUFFIXES);
        if germanic && at(hay, w_end) == Some(b' ') {
            return house_number(hay, w_end + 1);
        }
        if at(hay, w_end) != Some(b' ') || !is_capitalised(hay, w_end + 1) {
            return None;
        }
        j = w_end + 1;
    }
    None
}

/// An optional unit after the street: `, Apt 4B`, ` Suite 200`, ` #5`.
fn unit(hay: &[u8], end: usize) -> usize {
    let mut i = end;
    if at(hay, i) == Some(b',') {
        i += 1;
    }
    if at(hay, i) != Some(b' ') {
        return end;
    }
    i += 1;
    for u in UNITS {
        let u = u.as_bytes();
        if starts_with_ci(hay, i, u) {
            let mut j = i + u.len();
            if at(hay, j) == Some(b'.') {
                j += 1;
            }
            if at(hay, j) == Some(b' ') {
                j += 1;
            }
            let start = j;
            while j < hay.len() && j - start < 6 && (is_alnum(hay[j]) || hay[j] == b'-') {
                j += 1;
            }
            if j > start
                && hay[start..j].iter().any(|b| is_digit(*b))
                && !at(hay, j).is_some_and(is_alnum)
            {
                return j;
            }
        }
    }
    end
}

/// Towns, states, postcodes and countries after the street, each after a
/// comma (a state's ZIP or a postcode may follow its town after a space).
fn locality(hay: &[u8], street_end: usize) -> (usize, bool) {
    let mut end = street_end;
    let mut postcode = false;
    for _ in 0..4 {
        let mut i = end;
        match (at(hay, i), at(hay, i + 1)) {
            (Some(b','), Some(b' ')) => i += 2,
            (Some(b','), Some(b'\n')) => i += 2,
            _ => break,
        }
        let Some((piece_end, has_postcode)) = locality_piece(hay, i) else {
            break;
        };
        end = piece_end;
        postcode |= has_postcode;
    }
    (end, postcode)
}

fn locality_piece(hay: &[u8], i: usize) -> Option<(usize, bool)> {
    // A postcode before the town: `10115 Berlin`, `D-10115 Berlin`, `75002 Paris`.
    let mut j = i;
    for prefix in [&b"D-"[..], b"F-", b"A-", b"CH-", b"NL-", b"B-", b"L-"] {
        if hay.get(j..j + prefix.len()) == Some(prefix)
            && at(hay, j + prefix.len()).is_some_and(is_digit)
        {
            j += prefix.len();
            break;
        }
    }
    let d = digit_run(hay, j, 5);
    if (4..=5).contains(&d) && at(hay, j + d) == Some(b' ') && is_capitalised(hay, j + d + 1) {
        let town_end = town(hay, j + d + 1)?;
        return Some((town_end, true));
    }
    if (4..=5).contains(&d) && !at(hay, j + d).is_some_and(is_alnum) {
        // A ZIP code alone, maybe with its +4.
        let mut e = j + d;
        if at(hay, e) == Some(b'-') && digit_run(hay, e + 1, 4) == 4 {
            e += 5;
        }
        return Some((e, true));
    }
    if let Some(e) = uk_postcode(hay, i) {
        return Some((e, true));
    }
    for country in COUNTRIES {
        let c = country.as_bytes();
        if hay.get(i..i + c.len()) == Some(c)
            && !at(hay, i + c.len()).is_some_and(|b| b.is_ascii_alphabetic())
        {
            return Some((i + c.len(), false));
        }
    }
    // A state with its ZIP: `DC 20500`, `CA 94107-1234`.
    if let Some(e) = state_zip(hay, i) {
        return Some((e, true));
    }
    if !is_capitalised(hay, i) {
        return None;
    }
    let town_end = town(hay, i)?;
    // `Washington DC 20500`, `London NW1 6XE`.
    if at(hay, town_end) == Some(b' ')
        && let Some(e) = state_zip(hay, town_end + 1).or_else(|| uk_postcode(hay, town_end + 1))
    {
        return Some((e, true));
    }
    Some((town_end, false))
}

/// One to three capitalised words, with the small words of place names
/// (`Frankfurt am Main`, `Stratford-upon-Avon`, `Saint-Denis`).
fn town(hay: &[u8], i: usize) -> Option<usize> {
    let mut end = word_end(hay, i)?;
    let mut words = 1;
    while words < 4 && at(hay, end) == Some(b' ') {
        let Some(w_end) = word_end(hay, end + 1) else {
            break;
        };
        if at(hay, w_end).is_some_and(is_digit) {
            // `Sheffield S9 1ZY`: a postcode, not part of the town.
            break;
        }
        let small = in_list(hay, end + 1, w_end, PLACE_PARTICLES);
        if small {
            if at(hay, w_end) == Some(b' ') && is_capitalised(hay, w_end + 1) {
                let Some(next) = word_end(hay, w_end + 1) else {
                    break;
                };
                end = next;
                words += 2;
                continue;
            }
            break;
        }
        // Two capital letters are a state, which `state_zip` reads.
        let len = w_end - end - 1;
        let state =
            (2..=3).contains(&len) && hay[end + 1..w_end].iter().all(u8::is_ascii_uppercase);
        if !is_capitalised(hay, end + 1) || state {
            break;
        }
        end = w_end;
        words += 1;
    }
    Some(end)
}

/// A state or territory with its postcode: `DC 20500`, `CA 94107-1234`,
/// `NSW 2000`.
fn state_zip(hay: &[u8], i: usize) -> Option<usize> {
    let mut caps = 0;
    while caps < 4 && at(hay, i + caps).is_some_and(|b| b.is_ascii_uppercase()) {
        caps += 1;
    }
    if !(2..=3).contains(&caps) || at(hay, i + caps) != Some(b' ') {
        return None;
    }
    let d = digit_run(hay, i + caps + 1, 5);
    if !(4..=5).contains(&d) {
        return None;
    }
    let mut e = i + caps + 1 + d;
    if d == 5 && at(hay, e) == Some(b'-') && digit_run(hay, e + 1, 4) == 4 {
        e += 5;
    }
    (!at(hay, e).is_some_and(is_alnum)).then_some(e)
}

/// A UK postcode: `NW1 6XE`, `SW1A 1AA`, `M1 1AE`, `EC1A 1BB`.
pub(crate) fn uk_postcode(hay: &[u8], i: usize) -> Option<usize> {
    let up = |k: usize| at(hay, k).is_some_and(|b| b.is_ascii_uppercase());
    let dg = |k: usize| at(hay, k).is_some_and(is_digit);
    let mut j = i;
    if !up(j) {
        return None;
    }
    j += 1;
    if up(j) {
        j += 1;
    }
    if !dg(j) {
        return None;
    }
    j += 1;
    if up(j) || dg(j) {
        j += 1;
    }
    if at(hay, j) != Some(b' ') || !dg(j + 1) || !up(j + 2) || !up(j + 3) {
        return None;
    }
    let e = j + 4;
    (!at(hay, e).is_some_and(is_alnum)).then_some(e)
}

/// Whether all of `value` is a postcode: a US ZIP (with its +4), a UK
/// postcode, a Canadian one, or four or five digits.
pub(crate) fn is_postcode(value: &str) -> bool {
    let hay = value.trim().as_bytes();
    let n = hay.len();
    let digits = hay.iter().all(|b| is_digit(*b));
    (digits && (4..=5).contains(&n))
        || (n == 10 && digit_run(hay, 0, 5) == 5 && hay[5] == b'-' && digit_run(hay, 6, 4) == 4)
        || uk_postcode(hay, 0) == Some(n)
        || (n == 7
            && hay[0].is_ascii_uppercase()
            && is_digit(hay[1])
            && hay[2].is_ascii_uppercase()
            && hay[3] == b' '
            && is_digit(hay[4])
            && hay[5].is_ascii_uppercase()
            && is_digit(hay[6]))
}

/// Whether all of `value` is, for a field named for an address, an
/// address: one the parser reads, or failing that, text with letters and a
/// number that is not an email, URL, IP or other identifier.
pub(crate) fn is_address_value(value: &str) -> bool {
    let v = value.trim();
    let hay = v.as_bytes();
    if v.len() < 6 || v.len() > 300 {
        return false;
    }
    if at_start(hay, 0).is_some_and(|m| m.end == hay.len()) {
        return true;
    }
    let has_letter = hay.iter().any(u8::is_ascii_alphabetic);
    let has_number = v
        .split(|c: char| c.is_whitespace() || c == ',')
        .any(is_number_word);
    let words = v.split_whitespace().count();
    let identifier = v.contains(['@', '=', '{', '}', '<', '>', '|', '\\', '[', ']'])
        || v.contains("://")
        || v.starts_with("0x")
        || super::network::is_ip(v)
        || super::network::is_mac(v)
        || (words == 1);
    has_letter && has_number && words >= 2 && !identifier
}

/// A word an address numbers something with: a house number (`221B`,
/// `12-14`), a flat (`4a`), a postcode part (`NW1`, `0B6`). A long run of
/// letters and digits (`3ae38f6fda690d01`, a hash) numbers nothing.
fn is_number_word(word: &str) -> bool {
    let letters = word.bytes().filter(u8::is_ascii_alphabetic).count();
    word.len() <= 10 && letters <= 3 && word.bytes().any(is_digit)
}

/// Whether all of `value` is a street line (for fields such as `street`
/// or `line1` under an address).
pub(crate) fn is_street_value(value: &str) -> bool {
    let v = value.trim();
    let letters = v.bytes().filter(u8::is_ascii_alphabetic).count();
    let has_digit = v.bytes().any(|b| b.is_ascii_digit());
    let words = v.split_whitespace().count();
    v.len() >= 4
        && v.len() <= 200
        && letters >= 2
        && (words >= 2 || (has_digit && at_start(v.as_bytes(), 0).is_some()))
        && !v.contains(['@', '=', '{', '}', '<', '>', '|', '\\', '[', ']'])
        && !v.contains("://")
}
