//! United States Social Security numbers: `AAA-GG-SSSS` with dashes or
//! spaces anywhere, and nine digits written together only where the
//! context names them. Numbers the SSA never issues are refused: area 000,
//! 666 and 900–999, group 00, serial 0000, and the two numbers printed in
//! advertisements (078-05-1120 and 219-09-9999).

use super::scan::{at, before, digit_run, is_alnum, is_digit, number};

/// Whether the three parts form a number the SSA could have issued.
pub(crate) fn parts_ok(area: u64, group: u64, serial: u64) -> bool {
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !(area == 78 && group == 5 && serial == 1120)
        && !(area == 219 && group == 9 && serial == 9999)
}

fn left_ok(hay: &[u8], s: usize) -> bool {
    match before(hay, s) {
        None => true,
        Some(b) if is_alnum(b) || matches!(b, b'_' | b'/' | b'$' | b'#' | b'+' | b'\\') => false,
        Some(b'.' | b'-' | b',') => !before(hay, s - 1).is_some_and(is_alnum),
        Some(b' ') => !before(hay, s - 1).is_some_and(is_digit),
        Some(_) => true,
    }
}

fn right_ok(hay: &[u8], i: usize) -> bool {
    match at(hay, i) {
        None => true,
        Some(b) if is_alnum(b) || b == b'_' => false,
        Some(b'.' | b',' | b'-' | b'/' | b' ') => !at(hay, i + 1).is_some_and(is_digit),
        Some(_) => true,
    }
}

/// An SSN written with separators (`123-45-6789`, `123 45 6789`) at `s`.
pub(crate) fn separated_at(hay: &[u8], s: usize) -> Option<usize> {
    if !left_ok(hay, s) || digit_run(hay, s, 3) != 3 {
        return None;
    }
    let sep = at(hay, s + 3)?;
    if !matches!(sep, b'-' | b' ') || digit_run(hay, s + 4, 2) != 2 || at(hay, s + 6) != Some(sep) {
        return None;
    }
    if digit_run(hay, s + 7, 4) != 4 || !right_ok(hay, s + 11) {
        return None;
    }
    parts_ok(
        number(hay, s, s + 3),
        number(hay, s + 4, s + 6),
        number(hay, s + 7, s + 11),
    )
    .then_some(s + 11)
}

/// Nine digits together at `s` (only meaningful where the context says SSN).
pub(crate) fn bare_at(hay: &[u8], s: usize) -> Option<usize> {
    if !left_ok(hay, s) || digit_run(hay, s, 9) != 9 || !right_ok(hay, s + 9) {
        return None;
    }
    parts_ok(
        number(hay, s, s + 3),
        number(hay, s + 3, s + 5),
        number(hay, s + 5, s + 9),
    )
    .then_some(s + 9)
}

/// An SSN in any accepted spelling at `s`.
pub(crate) fn any_at(hay: &[u8], s: usize) -> Option<usize> {
    separated_at(hay, s).or_else(|| bare_at(hay, s))
}

/// Whether `value` as a whole is an SSN (for fields named for one).
pub(crate) fn is_ssn(value: &str) -> bool {
    let hay = value.as_bytes();
    any_at(hay, 0) == Some(hay.len())
}

/// The three parts of an SSN in any accepted spelling.
pub(crate) fn parts(value: &str) -> Option<[u64; 3]> {
    let digits: Vec<u8> = value.bytes().filter(|b| is_digit(*b)).collect();
    if digits.len() != 9 {
        return None;
    }
    Some([
        number(&digits, 0, 3),
        number(&digits, 3, 5),
        number(&digits, 5, 9),
    ])
}
