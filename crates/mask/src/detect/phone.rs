//! Telephone numbers. International numbers start with `+` and a country
//! code from the ITU list, and their national significant number must have
//! a length that country uses (with the stricter national rules below for
//! the countries that have them). National numbers are recognised by shape:
//!
//! - North America (NANP): `(415) 555-0132`, `415-555-0132`,
//!   `415.555.0132`, `415 555 0132`, optionally after `1-`/`1 `; the area
//!   code and exchange never start with 0 or 1 and are never N11.
//! - Trunk-prefixed numbers (United Kingdom, Germany, France, India and
//!   most of Europe and Asia): a leading `0` and a non-zero digit, 10 to 12
//!   digits in two to five groups of at least two digits (`020 7946 0958`,
//!   `07700 900123`, `030 12345678`, `030/12345678`, `01 23 45 67 89`,
//!   `098765 43210`).
//! - Indian mobiles without the trunk prefix: `98765 43210`.
//!
//! Digits written together without a `+` are a phone number only where the
//! context says so (a field named for a phone, or a word such as "phone"
//! or "tel" just before); elsewhere they are IDs. Dates, times, versions,
//! ISBNs and numbers glued to words never match.

use super::scan::{at, before, is_alnum, is_digit};

/// The most digits a number may have, trunk prefix and country code
/// included (E.164 allows 15 after the country code's `+`).
const MAX_DIGITS: usize = 16;
/// The most groups a written number may have.
const MAX_GROUPS: usize = 7;

/// A short list on the stack (the parsers run at every number in a text,
/// and must not allocate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Small<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Small<T, N> {
    fn new() -> Self {
        Small {
            items: [T::default(); N],
            len: 0,
        }
    }
    /// Appends `item`; false when full.
    fn push(&mut self, item: T) -> bool {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = item;
                self.len += 1;
                true
            }
            None => false,
        }
    }
    fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
    fn len(&self) -> usize {
        self.len
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Copy + Default, const N: usize> std::ops::Deref for Small<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

/// The written shape of a number: its digits, the sizes of the digit
/// groups, which separators joined them and whether it began with `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub plus: bool,
    pub digits: Small<u8, MAX_DIGITS>,
    pub groups: Small<usize, 8>,
    /// Whether the first group was in parentheses (`(415) 555-0132`).
    pub paren_first: bool,
    /// Whether a `(0)` trunk group followed the country code.
    pub paren_trunk: bool,
    pub separators: Small<u8, 8>,
}

/// Where a number was found, which decides how strict the check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Free text without a phone word nearby.
    Prose,
    /// A phone word just before it, or a field named for a phone: digits
    /// written together are accepted.
    Context,
}

/// The phone number starting at `s` (a digit, `+` or `(`), as its end.
pub(crate) fn at_start(hay: &[u8], s: usize, strictness: Strictness) -> Option<usize> {
    if !left_ok(hay, s) {
        return None;
    }
    // In prose a number without `+` has seven digits or more (ten in every
    // national plan read here; `00`, a country code and four in the
    // shortest international one): a date, a time or an IPv4 address
    // with fewer is turned away before it is read.
    if strictness == Strictness::Prose && at(hay, s) != Some(b'+') && digits_ahead(hay, s) < 7 {
        return None;
    }
    number_at(hay, s, strictness)
}

/// [`at_start`] after its checks of the byte before and of the count of
/// digits.
fn number_at(hay: &[u8], s: usize, strictness: Strictness) -> Option<usize> {
    let (end, shape) = read(hay, s)?;
    let end = extension(hay, end).unwrap_or(end);
    if !right_ok(hay, end) {
        return None;
    }
    valid(&shape, strictness).then_some(end)
}

/// The digits among the digits and separators that start at `s`, or
/// `usize::MAX` past 40 bytes of them.
fn digits_ahead(hay: &[u8], s: usize) -> usize {
    let mut digits = 0;
    for (k, &b) in hay.get(s..).unwrap_or_default().iter().enumerate() {
        if k == 40 {
            return usize::MAX;
        }
        match b {
            b'0'..=b'9' => digits += 1,
            b' ' | b'-' | b'.' | b'/' | b'(' | b')' => {}
            _ => break,
        }
    }
    digits
}

/// An extension after a number (`x123`, ` ext. 4567`, ` ext 89`), as the
/// end of the number with it.
fn extension(hay: &[u8], end: usize) -> Option<usize> {
    let mut i = end;
    if at(hay, i) == Some(b' ') {
        i += 1;
    }
    let marker = [&b"ext."[..], b"ext", b"x"].into_iter().find(|m| {
        hay.get(i..i + m.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(m))
    })?;
    if marker == b"x" && i != end {
        return None;
    }
    i += marker.len();
    if marker != b"x" && at(hay, i) == Some(b' ') {
        i += 1;
    }
    let digits = (0..6)
        .take_while(|k| at(hay, i + k).is_some_and(is_digit))
        .count();
    ((1..=5).contains(&digits)).then_some(i + digits)
}

fn left_ok(hay: &[u8], s: usize) -> bool {
    match before(hay, s) {
        None => true,
        Some(b)
            if is_alnum(b)
                || matches!(
                    b,
                    b'_' | b'/' | b'$' | b'#' | b'+' | b'\\' | b'@' | b'%' | b'^' | b'*' | b'~'
                ) =>
        {
            false
        }
        Some(b'.' | b'-' | b',') => !before(hay, s - 1).is_some_and(is_alnum),
        // A group of a longer digit sequence (`DE89 3704 0044 0532 0130`).
        Some(b' ') => !before(hay, s - 1).is_some_and(is_digit),
        Some(_) => true,
    }
}

fn right_ok(hay: &[u8], end: usize) -> bool {
    match at(hay, end) {
        None => true,
        Some(b) if is_alnum(b) || matches!(b, b'_' | b'@' | b'%') => false,
        Some(b'.' | b',' | b'-' | b'/' | b' ' | b':' | b')') => {
            !at(hay, end + 1).is_some_and(is_digit)
        }
        Some(_) => true,
    }
}

/// Reads the digit groups of a number from `s`: `+`, parentheses around the
/// first group or a `(0)` trunk group, and single separators between groups.
pub(crate) fn read(hay: &[u8], s: usize) -> Option<(usize, Shape)> {
    let mut i = s;
    let mut shape = Shape {
        plus: false,
        digits: Small::new(),
        groups: Small::new(),
        paren_first: false,
        paren_trunk: false,
        separators: Small::new(),
    };
    if at(hay, i) == Some(b'+') {
        shape.plus = true;
        i += 1;
    }
    loop {
        let mut in_paren = false;
        if at(hay, i) == Some(b'(') {
            in_paren = true;
            i += 1;
        }
        let group_start = i;
        while at(hay, i).is_some_and(is_digit) {
            if !shape.digits.push(hay[i]) {
                return None;
            }
            i += 1;
        }
        let len = i - group_start;
        if len == 0 {
            return None;
        }
        if in_paren {
            if at(hay, i) != Some(b')') {
                return None;
            }
            i += 1;
            let is_trunk =
                shape.plus && shape.groups.len() == 1 && len == 1 && hay[group_start] == b'0';
            if is_trunk {
                shape.paren_trunk = true;
                // The trunk zero is not dialled from abroad.
                shape.digits.pop();
            } else if shape.groups.is_empty() {
                shape.paren_first = true;
            } else if !(shape.plus && shape.groups.len() == 1) {
                // Only the area code may stand in parentheses, first or
                // right after the country code (`+1 (415) 555-0132`).
                return None;
            }
        }
        let trunk_group = in_paren && shape.paren_trunk && len == 1;
        if !trunk_group && !shape.groups.push(len) {
            return None;
        }
        if shape.groups.len() > MAX_GROUPS {
            return None;
        }
        // A separator, or a closing parenthesis followed by one, then a digit.
        let closed_paren = in_paren && at(hay, i).is_some_and(is_digit);
        let (sep, next) = match (at(hay, i), at(hay, i + 1), at(hay, i + 2)) {
            // `(415)555-0132`, `+44 (0)20 7946 0958`: digits right after `)`.
            _ if closed_paren => (b')', i),
            (Some(c @ (b' ' | b'-' | b'.' | b'/')), Some(d), _) if is_digit(d) => (c, i + 1),
            (Some(c @ (b' ' | b'-')), Some(b'('), Some(d)) if is_digit(d) && shape.plus => {
                (c, i + 1)
            }
            (Some(b'('), Some(d), _) if is_digit(d) && shape.plus && shape.groups.len() == 1 => {
                (b'(', i)
            }
            _ => break,
        };
        if !shape.separators.push(sep) {
            return None;
        }
        i = next;
    }
    Some((i, shape))
}

/// Whether a read shape is a telephone number.
pub(crate) fn valid(shape: &Shape, strictness: Strictness) -> bool {
    if shape.plus {
        return international_ok(shape);
    }
    // `001-415-555-0132`, `0044 20 7946 0958`: the international prefix
    // dialled instead of `+`.
    if shape.digits.starts_with(b"00")
        && shape.groups.len() > 1
        && shape.groups.first().is_some_and(|&g| g >= 3)
    {
        let mut international = *shape;
        let mut digits = Small::new();
        for &d in &shape.digits[2..] {
            digits.push(d);
        }
        international.digits = digits;
        let mut groups = Small::new();
        groups.push(shape.groups[0] - 2);
        for &g in &shape.groups[1..] {
            groups.push(g);
        }
        international.groups = groups;
        international.plus = true;
        return international_ok(&international);
    }
    if shape.paren_trunk {
        return false;
    }
    let seps = shape.separators.as_slice();
    let together = shape.groups.len() == 1;
    if together && strictness == Strictness::Prose {
        return false;
    }
    let dots = seps.contains(&b'.');
    if dots && !seps.iter().all(|&c| c == b'.') {
        return false;
    }
    let slash = seps.iter().position(|&c| c == b'/');
    if slash.is_some_and(|p| p != 0) || seps.iter().filter(|&&c| c == b'/').count() > 1 {
        return false;
    }
    nanp_ok(shape, dots, slash.is_some())
        || trunk_ok(shape, dots)
        || india_mobile_ok(shape, dots, slash.is_some())
}

fn nanp_ok(shape: &Shape, dots: bool, slash: bool) -> bool {
    if slash {
        return false;
    }
    let d = &shape.digits;
    let (national, groups) = match (d.len(), shape.groups.as_slice()) {
        (10, [3, 3, 4] | [10]) => (&d[..], shape.groups.as_slice()),
        (11, [1, 3, 3, 4] | [11]) if d[0] == b'1' => (&d[1..], &shape.groups[1..]),
        _ => return false,
    };
    if dots && groups != [3, 3, 4] {
        return false;
    }
    if shape.paren_first && shape.groups.first() != Some(&3) {
        return false;
    }
    nanp_digits_ok(national)
}

/// Whether ten digits follow the North American numbering plan.
pub(crate) fn nanp_digits_ok(d: &[u8]) -> bool {
    d.len() == 10
        && (b'2'..=b'9').contains(&d[0])
        && (b'2'..=b'9').contains(&d[3])
        && !(d[1] == b'1' && d[2] == b'1')
        && !(d[4] == b'1' && d[5] == b'1')
        // Area codes 37X and 96X are reserved; 555 is not a geographic one.
        && !(d[0] == b'3' && d[1] == b'7')
        && !(d[0] == b'9' && d[1] == b'6')
}

fn trunk_ok(shape: &Shape, dots: bool) -> bool {
    let d = &shape.digits;
    if d.len() < 10 || d.len() > 12 || d[0] != b'0' || d[1] == b'0' {
        return false;
    }
    let groups = shape.groups.as_slice();
    if groups.len() == 1 {
        return true;
    }
    if groups.len() > 5 || groups.iter().any(|&g| g < 2) || groups[0] > 6 {
        return false;
    }
    if dots {
        // Dotted numbers are only the French 2-2-2-2-2 form; other dotted
        // digit runs are versions and addresses.
        return groups == [2, 2, 2, 2, 2];
    }
    // Five groups of two are French; otherwise the first group is the trunk
    // zero with an area code (two to five digits after the zero).
    groups == [2, 2, 2, 2, 2] || groups[0] >= 3
}

fn india_mobile_ok(shape: &Shape, dots: bool, slash: bool) -> bool {
    let d = &shape.digits;
    !dots
        && !slash
        && d.len() == 10
        && (b'6'..=b'9').contains(&d[0])
        && matches!(shape.groups.as_slice(), [5, 5] | [10])
        && !(shape.groups.len() == 1 && nanp_digits_ok(d))
}

/// National significant number lengths by country code. Countries missing
/// from the table but present in [`COUNTRY_CODES`] accept 6 to 12 digits.
const NSN_LENGTHS: &[(u16, u8, u8)] = &[
    (1, 10, 10),
    (7, 10, 10),
    (20, 9, 10),
    (27, 9, 9),
    (30, 10, 10),
    (31, 9, 9),
    (32, 8, 9),
    (33, 9, 9),
    (34, 9, 9),
    (36, 8, 9),
    (39, 6, 11),
    (40, 9, 9),
    (41, 9, 9),
    (43, 4, 13),
    (44, 9, 10),
    (45, 8, 8),
    (46, 7, 13),
    (47, 8, 8),
    (48, 9, 9),
    (49, 6, 13),
    (51, 8, 11),
    (52, 10, 10),
    (53, 8, 8),
    (54, 10, 11),
    (55, 10, 11),
    (56, 9, 9),
    (57, 10, 10),
    (58, 10, 10),
    (60, 8, 10),
    (61, 9, 9),
    (62, 8, 12),
    (63, 10, 10),
    (64, 8, 10),
    (65, 8, 8),
    (66, 8, 9),
    (81, 9, 10),
    (82, 8, 10),
    (84, 9, 10),
    (86, 10, 11),
    (90, 10, 10),
    (91, 10, 10),
    (92, 9, 10),
    (93, 9, 9),
    (94, 9, 9),
    (95, 7, 10),
    (98, 10, 10),
    (212, 9, 9),
    (213, 9, 9),
    (216, 8, 8),
    (234, 8, 10),
    (254, 9, 9),
    (255, 9, 9),
    (256, 9, 9),
    (351, 9, 9),
    (352, 6, 11),
    (353, 7, 9),
    (354, 7, 9),
    (358, 6, 12),
    (359, 7, 9),
    (370, 8, 8),
    (371, 8, 8),
    (372, 7, 8),
    (380, 9, 9),
    (381, 8, 9),
    (385, 8, 9),
    (386, 8, 8),
    (420, 9, 9),
    (421, 9, 9),
    (852, 8, 8),
    (886, 8, 9),
    (966, 9, 9),
    (971, 8, 9),
    (972, 8, 9),
    (974, 8, 8),
];

/// Country calling codes in use (ITU-T E.164 assignments), besides `1`
/// and `7`, which have one digit.
const COUNTRY_CODES: &[u16] = &[
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56,
    57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211, 212, 213,
    216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236,
    237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 248, 249, 250, 251, 252, 253, 254, 255, 256,
    257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298, 299, 350, 351,
    352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377, 378, 380, 381,
    382, 383, 385, 386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509,
    590, 591, 592, 593, 594, 595, 596, 597, 598, 599, 670, 672, 673, 674, 675, 676, 677, 678, 679,
    680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692, 850, 852, 853, 855, 856, 880, 886,
    960, 961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974, 975, 976, 977, 992, 993,
    994, 995, 996, 998,
];

/// Splits the digits of an international number into its country code and
/// national significant number.
pub(crate) fn split_country(digits: &[u8]) -> Option<(u16, usize)> {
    let value = |k: usize| -> u16 {
        digits
            .iter()
            .take(k)
            .fold(0u16, |acc, &b| acc * 10 + u16::from(b - b'0'))
    };
    if digits.is_empty() {
        return None;
    }
    if matches!(digits[0], b'1' | b'7') {
        return Some((value(1), 1));
    }
    for k in [2usize, 3] {
        if digits.len() > k && COUNTRY_CODES.contains(&value(k)) {
            return Some((value(k), k));
        }
    }
    None
}

fn international_ok(shape: &Shape) -> bool {
    let Some((cc, cc_len)) = split_country(&shape.digits) else {
        return false;
    };
    // The country code must stand as its own group or start the only one.
    let first = shape.groups.first().copied().unwrap_or(0);
    if shape.groups.len() > 1 && first != cc_len {
        return false;
    }
    if shape.paren_first {
        return false;
    }
    let nsn = &shape.digits[cc_len..];
    if nsn.first() == Some(&b'0') && !shape.paren_trunk {
        return false;
    }
    let (min, max) = NSN_LENGTHS
        .iter()
        .find(|&&(code, _, _)| code == cc)
        .map_or((6, 12), |&(_, lo, hi)| (usize::from(lo), usize::from(hi)));
    if nsn.len() < min || nsn.len() > max {
        return false;
    }
    match cc {
        1 => nanp_digits_ok(nsn),
        44 => matches!(nsn[0], b'1' | b'2' | b'3' | b'5' | b'7' | b'8' | b'9'),
        91 => (b'1'..=b'9').contains(&nsn[0]),
        _ => true,
    }
}

/// Whether `value` as a whole is a telephone number, with the looser rules
/// for a field named for one.
pub(crate) fn is_phone(value: &str) -> bool {
    let hay = value.as_bytes();
    at_start(hay, 0, Strictness::Context) == Some(hay.len())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Strictness, at_start, left_ok, number_at};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// Counting digits first turns away only what reading would.
        #[test]
        fn the_digit_count_turns_away_no_number(text in "[(+]?[0-9]{1,4}([ .()/-]{1,2}[0-9]{1,5}){0,5}( ?x[0-9]{1,3})?[ .a]?") {
            let hay = text.as_bytes();
            for s in 0..hay.len().min(3) {
                let read_whole = if left_ok(hay, s) { number_at(hay, s, Strictness::Prose) } else { None };
                prop_assert_eq!(
                    at_start(hay, s, Strictness::Prose),
                    read_whole,
                    "{:?} at {}", text, s
                );
            }
        }
    }

    #[test]
    fn numbers_are_read_and_dates_turned_away() {
        assert_eq!(at_start(b"415-555-0132 ", 0, Strictness::Prose), Some(12));
        assert_eq!(
            at_start(b"0044 20 7946 0958", 0, Strictness::Prose),
            Some(17)
        );
        assert_eq!(at_start(b"2026-11-27T14:03", 0, Strictness::Prose), None);
        assert_eq!(at_start(b"10.0.3.7 ", 0, Strictness::Prose), None);
    }
}
