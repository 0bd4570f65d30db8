//! Calendar dates, for dates of birth: `1990-02-03` (and with `/` or `.`),
//! `03/02/1990`, `02/03/1990`, `03.02.1990`, `03-02-1990`, two-digit years
//! after a birth word, `3 February 1990`, `3rd of Feb 1990`, `3. Februar
//! 1990`, `3 février 1990`, `February 3, 1990` and `Feb. 3rd 1990`, with
//! month names in English, German, French and Spanish. A date is personal
//! data only where a birth word or a field name says so; see `context.rs`.

use super::scan::{at, before, digit_run, is_alnum, is_digit, number, skip_blanks, starts_with_ci};

/// A date found in text, with where its day is written (the part a
/// pseudonym changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateMatch {
    pub end: usize,
    pub year: u32,
    pub month: u32,
    pub day: u32,
    /// The byte range of the day's digits.
    pub day_digits: (usize, usize),
    /// The byte range of an ordinal suffix after the day (`rd` in `3rd`).
    pub ordinal: Option<(usize, usize)>,
}

/// Month names and abbreviations, lower case, with their month number.
/// Longer spellings come before their prefixes.
const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("januar", 1),
    ("janvier", 1),
    ("jänner", 1),
    ("enero", 1),
    ("jan", 1),
    ("february", 2),
    ("februar", 2),
    ("février", 2),
    ("fevrier", 2),
    ("febrero", 2),
    ("feb", 2),
    ("fév", 2),
    ("fev", 2),
    ("march", 3),
    ("märz", 3),
    ("maerz", 3),
    ("mars", 3),
    ("marzo", 3),
    ("mar", 3),
    ("mär", 3),
    ("april", 4),
    ("avril", 4),
    ("abril", 4),
    ("apr", 4),
    ("avr", 4),
    ("abr", 4),
    ("may", 5),
    ("mai", 5),
    ("mayo", 5),
    ("june", 6),
    ("juni", 6),
    ("juin", 6),
    ("junio", 6),
    ("jun", 6),
    ("july", 7),
    ("juli", 7),
    ("juillet", 7),
    ("julio", 7),
    ("jul", 7),
    ("juil", 7),
    ("august", 8),
    ("août", 8),
    ("aout", 8),
    ("agosto", 8),
    ("aug", 8),
    ("ago", 8),
    ("september", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("sept", 9),
    ("sep", 9),
    ("october", 10),
    ("oktober", 10),
    ("octobre", 10),
    ("octubre", 10),
    ("oct", 10),
    ("okt", 10),
    ("november", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("nov", 11),
    ("december", 12),
    ("dezember", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("diciembre", 12),
    ("dec", 12),
    ("dez", 12),
    ("déc", 12),
    ("dic", 12),
];

/// The earliest and latest years accepted for a date of birth.
const YEARS: std::ops::RangeInclusive<u32> = 1900..=2030;

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

fn valid(year: u32, month: u32, day: u32) -> bool {
    (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)
}

/// A month name at `i`: its number and end.
fn month_at(hay: &[u8], i: usize) -> Option<(u32, usize)> {
    for &(name, month) in MONTHS {
        let name = name.as_bytes();
        if starts_with_ci(hay, i, name) {
            let mut end = i + name.len();
            if at(hay, end).is_some_and(|b| b.is_ascii_alphabetic() || b >= 0x80) {
                continue;
            }
            if at(hay, end) == Some(b'.') {
                end += 1;
            }
            return Some((month, end));
        }
    }
    None
}

fn ordinal_at(hay: &[u8], i: usize) -> Option<usize> {
    for suffix in [b"st", b"nd", b"rd", b"th"] {
        if starts_with_ci(hay, i, suffix)
            && !at(hay, i + 2).is_some_and(|b| b.is_ascii_alphabetic())
        {
            return Some(i + 2);
        }
    }
    None
}

fn boundary_after(hay: &[u8], i: usize) -> bool {
    let glued = at(hay, i).is_some_and(|b| is_alnum(b) || b == b'_');
    let continued =
        matches!(at(hay, i), Some(b'.' | b'/' | b'-')) && at(hay, i + 1).is_some_and(is_digit);
    !glued && !continued
}

/// The date starting at `s`. `two_digit_years` allows `03/02/90`.
pub(crate) fn at_start(hay: &[u8], s: usize, two_digit_years: bool) -> Option<DateMatch> {
    if before(hay, s).is_some_and(|b| is_alnum(b) || b == b'_') {
        return None;
    }
    match at(hay, s) {
        Some(b) if is_digit(b) => {
            numeric(hay, s, two_digit_years).or_else(|| day_first_words(hay, s))
        }
        Some(b) if b.is_ascii_alphabetic() => month_first(hay, s),
        _ => None,
    }
}

fn numeric(hay: &[u8], s: usize, two_digit_years: bool) -> Option<DateMatch> {
    let a = digit_run(hay, s, 4);
    let sep = at(hay, s + a)?;
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    let b_start = s + a + 1;
    let b = digit_run(hay, b_start, 2);
    if b == 0 || b > 2 || at(hay, b_start + b) != Some(sep) {
        return None;
    }
    let c_start = b_start + b + 1;
    let c = digit_run(hay, c_start, 4);
    let end = c_start + c;
    // An ISO date may carry a time (`1990-02-03T04:05:06Z`); the date ends
    // before the `T`.
    let iso_time = a == 4
        && sep == b'-'
        && matches!(at(hay, end), Some(b'T' | b't'))
        && at(hay, end + 1).is_some_and(is_digit);
    if !iso_time && !boundary_after(hay, end) {
        return None;
    }
    let (na, nb, nc) = (
        number(hay, s, s + a),
        number(hay, b_start, b_start + b),
        number(hay, c_start, end),
    );
    let narrow = |v: u64| u32::try_from(v).unwrap_or(0);
    let (na, nb, nc) = (narrow(na), narrow(nb), narrow(nc));
    if a == 4 && (1..=2).contains(&c) {
        // Year first: Y-M-D.
        return (YEARS.contains(&na) && valid(na, nb, nc)).then_some(DateMatch {
            end,
            year: na,
            month: nb,
            day: nc,
            day_digits: (c_start, end),
            ordinal: None,
        });
    }
    if !(1..=2).contains(&a) {
        return None;
    }
    let year = match c {
        4 if YEARS.contains(&nc) => nc,
        2 if two_digit_years => {
            if nc <= 30 {
                2000 + nc
            } else {
                1900 + nc
            }
        }
        _ => return None,
    };
    // Day first unless that is impossible, except with `/`, where the
    // American month-first order is taken when both readings are dates.
    let day_first = valid(year, nb, na);
    let month_first = valid(year, na, nb);
    let take_month_first = month_first && (!day_first || sep == b'/');
    if take_month_first {
        Some(DateMatch {
            end,
            year,
            month: na,
            day: nb,
            day_digits: (b_start, b_start + b),
            ordinal: None,
        })
    } else if day_first {
        Some(DateMatch {
            end,
            year,
            month: nb,
            day: na,
            day_digits: (s, s + a),
            ordinal: None,
        })
    } else {
        None
    }
}

/// `3 February 1990`, `3rd of Feb 1990`, `3. Februar 1990`.
fn day_first_words(hay: &[u8], s: usize) -> Option<DateMatch> {
    let d = digit_run(hay, s, 2);
    if d == 0 || d > 2 {
        return None;
    }
    let day = u32::try_from(number(hay, s, s + d)).ok()?;
    let mut i = s + d;
    let ordinal = ordinal_at(hay, i).map(|end| (i, end));
    if let Some((_, end)) = ordinal {
        i = end;
    } else if at(hay, i) == Some(b'.') {
        i += 1;
    }
    let after_day = skip_blanks(hay, i, 2);
    if after_day == i {
        return None;
    }
    i = after_day;
    if starts_with_ci(hay, i, b"of ") {
        i = skip_blanks(hay, i + 3, 2);
    }
    let (month, month_end) = month_at(hay, i)?;
    i = month_end;
    if at(hay, i) == Some(b',') {
        i += 1;
    }
    let year_start = skip_blanks(hay, i, 2);
    if year_start == i {
        return None;
    }
    let (year, end) = year_at(hay, year_start)?;
    valid(year, month, day).then_some(DateMatch {
        end,
        year,
        month,
        day,
        day_digits: (s, s + d),
        ordinal,
    })
}

/// `February 3, 1990`, `Feb. 3rd 1990`.
fn month_first(hay: &[u8], s: usize) -> Option<DateMatch> {
    let (month, month_end) = month_at(hay, s)?;
    let day_start = skip_blanks(hay, month_end, 2);
    if day_start == month_end {
        return None;
    }
    let d = digit_run(hay, day_start, 2);
    if d == 0 || d > 2 {
        return None;
    }
    let day = u32::try_from(number(hay, day_start, day_start + d)).ok()?;
    let mut i = day_start + d;
    let ordinal = ordinal_at(hay, i).map(|end| (i, end));
    if let Some((_, end)) = ordinal {
        i = end;
    }
    if at(hay, i) == Some(b',') {
        i += 1;
    }
    let year_start = skip_blanks(hay, i, 2);
    if year_start == i {
        return None;
    }
    let (year, end) = year_at(hay, year_start)?;
    valid(year, month, day).then_some(DateMatch {
        end,
        year,
        month,
        day,
        day_digits: (day_start, day_start + d),
        ordinal,
    })
}

fn year_at(hay: &[u8], i: usize) -> Option<(u32, usize)> {
    if digit_run(hay, i, 4) != 4 || !boundary_after(hay, i + 4) {
        return None;
    }
    let year = u32::try_from(number(hay, i, i + 4)).ok()?;
    YEARS.contains(&year).then_some((year, i + 4))
}

/// The date that makes up all of `value` (an ISO date may carry a time,
/// which is not part of the match), for fields named for a birth date.
pub(crate) fn whole(value: &str) -> Option<DateMatch> {
    let hay = value.as_bytes();
    let m = at_start(hay, 0, true)?;
    let rest = &hay[m.end..];
    let time_ok = rest.is_empty()
        || (matches!(rest[0], b'T' | b't' | b' ')
            && rest[1..]
                .iter()
                .all(|&b| is_digit(b) || matches!(b, b':' | b'.' | b'Z' | b'z' | b'+' | b'-')));
    time_ok.then_some(m)
}

/// The day a date can be moved to without becoming ambiguous: 13 to 28
/// exist in every month and are never read as a month.
pub(crate) const SAFE_DAYS: std::ops::RangeInclusive<u32> = 13..=28;
