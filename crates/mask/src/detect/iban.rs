//! International Bank Account Numbers: a country code, two check digits and
//! the country's basic bank account number, of the length the IBAN registry
//! gives for that country, written together or in groups of four separated
//! by single spaces, with the ISO 13616 mod-97 check equal to 1.

use super::scan::{at, before, is_alnum, is_digit};

/// IBAN lengths by country, from the IBAN registry: all SEPA countries and
/// the other countries that issue IBANs.
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// The IBAN length for a country code, if the country issues IBANs.
pub(crate) fn length_for(country: &[u8]) -> Option<usize> {
    LENGTHS
        .iter()
        .find(|(cc, _)| cc.as_slice() == country)
        .map(|&(_, len)| len)
}

fn is_bban(b: u8) -> bool {
    b.is_ascii_uppercase() || is_digit(b)
}

/// The IBAN starting at `s` (its country code), as its end.
pub(crate) fn at_start(hay: &[u8], s: usize) -> Option<usize> {
    let head = hay.get(s..s + 4)?;
    if !(head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && is_digit(head[2])
        && is_digit(head[3]))
    {
        return None;
    }
    if before(hay, s).is_some_and(|b| is_alnum(b) || matches!(b, b'_' | b'-' | b'/' | b'.')) {
        return None;
    }
    let len = length_for(&head[..2])?;
    let mut chars = Vec::with_capacity(len);
    chars.extend_from_slice(head);
    let mut i = s + 4;
    if at(hay, i).is_some_and(is_bban) {
        while chars.len() < len && at(hay, i).is_some_and(is_bban) {
            chars.push(hay[i]);
            i += 1;
        }
    } else {
        // Groups of four after single spaces, the last one shorter.
        while chars.len() < len && at(hay, i) == Some(b' ') && at(hay, i + 1).is_some_and(is_bban) {
            i += 1;
            let mut group = 0;
            while group < 4 && chars.len() < len && at(hay, i).is_some_and(is_bban) {
                chars.push(hay[i]);
                i += 1;
                group += 1;
            }
            if group < 4 && chars.len() < len {
                return None;
            }
        }
    }
    if chars.len() != len || at(hay, i).is_some_and(|b| is_alnum(b) || b == b'_') {
        return None;
    }
    if at(hay, i) == Some(b' ')
        && at(hay, i + 1).is_some_and(is_bban)
        && !at(hay, i + 2).is_some_and(|b| b.is_ascii_lowercase())
    {
        // More groups follow than the country allows.
        if at(hay, i + 1).is_some_and(is_digit) {
            return None;
        }
    }
    if !mod97_ok(&chars) {
        return None;
    }
    Some(i)
}

/// The ISO 7064 mod-97 remainder of an IBAN (compact, upper case) with its
/// first four characters moved to the end.
pub(crate) fn mod97(compact: &[u8]) -> u32 {
    let (head, tail) = compact.split_at(4.min(compact.len()));
    tail.iter().chain(head.iter()).fold(0u32, |rem, &b| {
        if is_digit(b) {
            (rem * 10 + u32::from(b - b'0')) % 97
        } else {
            let v = u32::from(b.to_ascii_uppercase().wrapping_sub(b'A')) + 10;
            (rem * 100 + v) % 97
        }
    })
}

/// Whether the compact IBAN passes the mod-97 check.
pub(crate) fn mod97_ok(compact: &[u8]) -> bool {
    compact.len() >= 5 && mod97(compact) == 1
}

/// The two check digits that make a compact IBAN (whose check digits may be
/// anything) pass the mod-97 check.
pub(crate) fn check_digits(compact: &[u8]) -> [u8; 2] {
    let mut zeroed = compact.to_vec();
    if zeroed.len() >= 4 {
        zeroed[2] = b'0';
        zeroed[3] = b'0';
    }
    let check = 98 - mod97(&zeroed);
    let tens = u8::try_from(check / 10).unwrap_or(0);
    let ones = u8::try_from(check % 10).unwrap_or(0);
    [b'0' + tens, b'0' + ones]
}
