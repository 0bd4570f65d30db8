//! Payment card numbers: 13 to 19 digits, written together or in the usual
//! groups (fours, or 4-6-5 and 4-6-4 for American Express and Diners)
//! with one kind of separator, passing the Luhn check and starting with a
//! prefix a card scheme issues. A number whose surroundings call it a test
//! number (`test card 4111 1111 1111 1111`) is documentation, not a card.

use super::scan::{at, before, contains_word_start_ci, digit_run, is_alnum, is_digit};

/// How far around a card number the word "test" makes it a test number.
const TEST_WINDOW: usize = 40;

/// The card number starting at `s`, as its end.
pub(crate) fn at_start(hay: &[u8], s: usize) -> Option<usize> {
    if !left_ok(hay, s) {
        return None;
    }
    let mut digits = [0u8; 19];
    let mut n = 0usize;
    let mut groups = [0usize; 6];
    let mut g = 0usize;
    let mut sep: Option<u8> = None;
    let mut i = s;
    loop {
        let run = digit_run(hay, i, 19);
        if run == 0 || n + run > 19 {
            return None;
        }
        digits[n..n + run].copy_from_slice(&hay[i..i + run]);
        n += run;
        groups[g] = run;
        g += 1;
        i += run;
        if g == groups.len() {
            break;
        }
        match (at(hay, i), at(hay, i + 1)) {
            (Some(c @ (b' ' | b'-')), Some(d)) if is_digit(d) && sep.is_none_or(|s| s == c) => {
                sep = Some(c);
                i += 1;
            }
            _ => break,
        }
    }
    if !right_ok(hay, i) {
        return None;
    }
    let groups = &groups[..g];
    if !(13..=19).contains(&n) || !grouping_ok(groups) {
        return None;
    }
    let digits = &digits[..n];
    if !luhn_ok(digits) || scheme(digits).is_none() {
        return None;
    }
    if is_test_context(hay, s, i) {
        return None;
    }
    Some(i)
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
        Some(b'.' | b',' | b' ' | b'-' | b'/') => !at(hay, i + 1).is_some_and(is_digit),
        Some(_) => true,
    }
}

fn grouping_ok(groups: &[usize]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [head @ .., last] if head.len() >= 2 => {
            head.iter().all(|&g| g == 4) && (1..=4).contains(last)
        }
        _ => false,
    }
}

fn is_test_context(hay: &[u8], s: usize, e: usize) -> bool {
    let from = s.saturating_sub(TEST_WINDOW);
    let to = (e + TEST_WINDOW).min(hay.len());
    contains_word_start_ci(hay, from, to, b"test")
        || contains_word_start_ci(hay, from, to, b"sandbox card")
        || contains_word_start_ci(hay, from, to, b"dummy card")
}

/// Whether the ASCII digits pass the Luhn check.
pub(crate) fn luhn_ok(digits: &[u8]) -> bool {
    luhn_sum(digits).is_multiple_of(10)
}

fn luhn_sum(digits: &[u8]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b.wrapping_sub(b'0'));
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

/// The check digit that makes `body` (every digit but the last) pass Luhn.
pub(crate) fn luhn_check_digit(body: &[u8]) -> u8 {
    // With a trailing zero appended, every digit of `body` sits where it
    // will sit in the full number.
    let mut with_zero = body.to_vec();
    with_zero.push(b'0');
    let sum = luhn_sum(&with_zero);
    b'0' + u8::try_from((10 - sum % 10) % 10).unwrap_or(0)
}

/// A card scheme, named by the prefixes it issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Jcb,
    Diners,
    UnionPay,
    Maestro,
    Mir,
}

/// The scheme whose prefixes and lengths `digits` fits, if any.
pub(crate) fn scheme(digits: &[u8]) -> Option<Scheme> {
    let n = digits.len();
    let p = |k: usize| -> u32 {
        digits
            .iter()
            .take(k)
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b.wrapping_sub(b'0')))
    };
    let (p1, p2, p3, p4, p6) = (p(1), p(2), p(3), p(4), p(6));
    if p1 == 4 && matches!(n, 13 | 16 | 19) {
        return Some(Scheme::Visa);
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16 {
        return Some(Scheme::Mastercard);
    }
    if matches!(p2, 34 | 37) && n == 15 {
        return Some(Scheme::Amex);
    }
    if (2200..=2204).contains(&p4) && n == 16 {
        return Some(Scheme::Mir);
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
        && (16..=19).contains(&n)
    {
        return Some(Scheme::Discover);
    }
    if (3528..=3589).contains(&p4) && (16..=19).contains(&n) {
        return Some(Scheme::Jcb);
    }
    if ((300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39))
        && (14..=19).contains(&n)
    {
        return Some(Scheme::Diners);
    }
    if p2 == 62 && (16..=19).contains(&n) {
        return Some(Scheme::UnionPay);
    }
    if matches!(
        p4,
        5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763
    ) && (13..=19).contains(&n)
    {
        return Some(Scheme::Maestro);
    }
    None
}
