//! Byte-level helpers shared by the detectors: classes of bytes, bounded
//! looks to the left and right, and case-insensitive comparisons. Every
//! helper looks at a bounded number of bytes, which is what keeps the whole
//! scan linear.

/// Whether `b` is an ASCII digit.
#[inline]
pub(crate) fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// Whether `b` is an ASCII letter or digit.
#[inline]
pub(crate) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether `b` is an ASCII hexadecimal digit.
#[inline]
pub(crate) fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// The byte at `i`, if any.
#[inline]
pub(crate) fn at(hay: &[u8], i: usize) -> Option<u8> {
    hay.get(i).copied()
}

/// The byte just before `i`, if any.
#[inline]
pub(crate) fn before(hay: &[u8], i: usize) -> Option<u8> {
    if i == 0 {
        None
    } else {
        hay.get(i - 1).copied()
    }
}

/// Whether the byte at `i` satisfies `f` (false past the end).
#[inline]
pub(crate) fn is_at(hay: &[u8], i: usize, f: impl Fn(u8) -> bool) -> bool {
    hay.get(i).is_some_and(|&b| f(b))
}

/// The number of consecutive digits starting at `i`, counting at most
/// `max + 1` of them (so a caller can tell "more than max").
#[inline]
pub(crate) fn digit_run(hay: &[u8], i: usize, max: usize) -> usize {
    let mut n = 0;
    while n <= max && is_at(hay, i + n, is_digit) {
        n += 1;
    }
    n
}

/// The number of consecutive hex digits starting at `i`, counting at most
/// `max + 1` of them.
#[inline]
pub(crate) fn hex_run(hay: &[u8], i: usize, max: usize) -> usize {
    let mut n = 0;
    while n <= max && is_at(hay, i + n, is_hex) {
        n += 1;
    }
    n
}

/// The value of the decimal digits in `hay[from..to]` (at most 18 of them).
pub(crate) fn number(hay: &[u8], from: usize, to: usize) -> u64 {
    hay.get(from..to)
        .unwrap_or_default()
        .iter()
        .fold(0u64, |acc, &b| {
            acc.saturating_mul(10)
                .saturating_add(u64::from(b.wrapping_sub(b'0')))
        })
}

/// Whether `hay[i..]` starts with `word`, ignoring ASCII case.
#[inline]
pub(crate) fn starts_with_ci(hay: &[u8], i: usize, word: &[u8]) -> bool {
    hay.get(i..i + word.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(word))
}

/// Whether `word` occurs in `hay[from..to]`, ignoring ASCII case, at the
/// start of a word (not preceded by a letter).
pub(crate) fn contains_word_start_ci(hay: &[u8], from: usize, to: usize, word: &[u8]) -> bool {
    let to = to.min(hay.len());
    if word.is_empty() || to < from + word.len() {
        return false;
    }
    (from..=to - word.len()).any(|i| {
        starts_with_ci(hay, i, word) && !before(hay, i).is_some_and(|b| b.is_ascii_alphabetic())
    })
}

/// Skips ASCII spaces and tabs from `i`, at most `max` of them.
#[inline]
pub(crate) fn skip_blanks(hay: &[u8], mut i: usize, max: usize) -> usize {
    let limit = i + max;
    while i < limit && matches!(at(hay, i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}
