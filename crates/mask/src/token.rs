//! Tokens: reversible, format-preserving encryption of personal data under
//! the key. Each kind keeps its shape so that a token still reads as one:
//!
//! - card: the first six digits (the issuer identification number) stay,
//!   the digits between them and the check digit are encrypted with FF1,
//!   and the Luhn digit is recomputed;
//! - IBAN: the country stays, the BBAN's digits and letters are encrypted
//!   (digits as digits, letters as letters), the mod-97 check digits are
//!   recomputed;
//! - phone: `+`, the country code and the first digit of the national
//!   number (or the trunk `0` and the next digit) stay, the other digits
//!   are encrypted; North American numbers are cycle-walked until the area
//!   code and exchange follow the numbering plan again;
//! - SSN: the nine digits are encrypted, cycle-walked until they form a
//!   number the SSA could issue;
//! - email and name: letters are encrypted as letters (case kept where it
//!   was) and digits as digits; punctuation, the `@`, the top-level domain
//!   and letters outside A–Z stay in place;
//! - IP: IPv4 as its four bytes (FF1 over radix 256), IPv6 as its hex
//!   digits; MAC as its hex digits, in the case it was written in;
//! - date of birth: year and month stay, the day is permuted within the
//!   month;
//! - address: letters as letters, digits as digits.
//!
//! FF1 (NIST SP 800-38G, the `fpe` crate over AES-256) is used whenever the
//! encrypted characters span at least 10^6 values. Shorter runs (a
//! three-letter name, the day of a date) use a keyed Feistel permutation
//! over the exact domain with cycle-walking, since FF1 refuses domains that
//! small; such tokens protect the value but, like every deterministic
//! token, show when two values are equal.

use crate::detect::{self, PersonalKind, shapes};
use crate::error::MaskError;
use crate::key::{MaskKey, hmac};

/// FF1 needs at least this many values in its domain.
const FF1_MIN_DOMAIN: u64 = 1_000_000;
/// Rounds of the small-domain Feistel permutation.
const FEISTEL_ROUNDS: u8 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Encrypt,
    Decrypt,
}

/// Tokenizes or detokenizes `value`.
pub(crate) fn run(
    kind: PersonalKind,
    value: &str,
    key: &MaskKey,
    dir: Direction,
) -> Result<String, MaskError> {
    match kind {
        PersonalKind::PaymentCard => card(value, key, dir),
        PersonalKind::Iban => iban(value, key, dir),
        PersonalKind::Phone => phone(value, key, dir),
        PersonalKind::UsSsn => ssn(value, key, dir),
        PersonalKind::Email => email(value, key, dir),
        PersonalKind::PersonName => letters_and_digits(kind, value, key, dir, |_| true),
        PersonalKind::PostalAddress => letters_and_digits(kind, value, key, dir, |_| true),
        PersonalKind::IpAddress => ip(value, key, dir),
        PersonalKind::MacAddress => mac(value, key, dir),
        PersonalKind::DateOfBirth => date_of_birth(value, key, dir),
    }
}

// ---------------------------------------------------------------------------
// The permutations.

/// Permutes numerals of `radix` under `tweak`: FF1 when the domain allows,
/// the small-domain Feistel permutation otherwise.
fn permute(
    kind: PersonalKind,
    key: &MaskKey,
    radix: u32,
    tweak: &[u8],
    numerals: &[u16],
    dir: Direction,
) -> Result<Vec<u16>, MaskError> {
    if numerals.is_empty() {
        return Ok(Vec::new());
    }
    let domain = u64::from(radix).checked_pow(u32::try_from(numerals.len()).unwrap_or(u32::MAX));
    if domain.is_none_or(|d| d >= FF1_MIN_DOMAIN) {
        let ff1 = &key.material().ff1;
        let cipher = match radix {
            10 => &ff1.decimal,
            16 => &ff1.hex,
            26 => &ff1.letters,
            _ => &ff1.bytes,
        };
        let input = fpe::ff1::FlexibleNumeralString::from(numerals.to_vec());
        let output = match dir {
            Direction::Encrypt => cipher.encrypt(tweak, &input),
            Direction::Decrypt => cipher.decrypt(tweak, &input),
        };
        // The numerals are all below the radix and the length is within
        // FF1's limits (checked above and by the callers' length caps).
        return output.map(Vec::from).map_err(|_| MaskError::TooLong {
            kind,
            len: numerals.len(),
            max: 200,
        });
    }
    let n = domain.unwrap_or(1);
    let x = numerals
        .iter()
        .fold(0u64, |acc, &d| acc * u64::from(radix) + u64::from(d));
    let y = small_domain(key, tweak, n, x, dir);
    let mut out = vec![0u16; numerals.len()];
    let mut rest = y;
    for slot in out.iter_mut().rev() {
        *slot = u16::try_from(rest % u64::from(radix)).unwrap_or(0);
        rest /= u64::from(radix);
    }
    Ok(out)
}

/// A keyed permutation of `0..n` (n below 10^6): a balanced Feistel network
/// over `0..m*m` (m = ceil(sqrt(n))) with HMAC-SHA256 rounds, cycle-walked
/// back into `0..n`.
pub(crate) fn small_domain(key: &MaskKey, tweak: &[u8], n: u64, x: u64, dir: Direction) -> u64 {
    if n <= 1 {
        return x;
    }
    let mut m = 1u64;
    while m * m < n {
        m += 1;
    }
    let round = |r: u8, half: u64| -> u64 {
        let mac = hmac(
            &key.material().feistel,
            &[tweak, &[r], &half.to_be_bytes(), &n.to_be_bytes()],
        );
        u64::from_be_bytes([
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
        ]) % m
    };
    let once = |v: u64| -> u64 {
        let (mut l, mut r) = (v / m, v % m);
        match dir {
            Direction::Encrypt => {
                for i in 0..FEISTEL_ROUNDS {
                    let next = (l + round(i, r)) % m;
                    l = r;
                    r = next;
                }
            }
            Direction::Decrypt => {
                for i in (0..FEISTEL_ROUNDS).rev() {
                    let prev = (r + m - round(i, l)) % m;
                    r = l;
                    l = prev;
                }
            }
        }
        l * m + r
    };
    let mut v = once(x);
    // Cycle-walking: the permutation of 0..m*m restricted to 0..n. Each
    // step lands in 0..n with probability n/(m*m) > 1/2 (for n > 1).
    while v >= n {
        v = once(v);
    }
    v
}

/// Applies `permute` with cycle-walking until `valid` holds, which keeps
/// a permutation of the valid values when the input is valid.
fn permute_valid(
    kind: PersonalKind,
    key: &MaskKey,
    radix: u32,
    tweak: &[u8],
    numerals: &[u16],
    dir: Direction,
    valid: impl Fn(&[u16]) -> bool,
) -> Result<Vec<u16>, MaskError> {
    let mut out = permute(kind, key, radix, tweak, numerals, dir)?;
    // A valid input reaches a valid output; the bound is far above what
    // the densities used here need (each step succeeds with p > 1/4).
    for _ in 0..10_000 {
        if valid(&out) {
            return Ok(out);
        }
        out = permute(kind, key, radix, tweak, &out, dir)?;
    }
    Ok(out)
}

fn tweak(kind: PersonalKind, class: &str, extra: &[u8]) -> Vec<u8> {
    let mut t = kind.as_str().as_bytes().to_vec();
    t.push(0);
    t.extend_from_slice(class.as_bytes());
    t.push(0);
    t.extend_from_slice(extra);
    t
}

/// Encrypts the ASCII letters (as letters, case kept) and the digits (as
/// digits) of `value` whose character index `eligible` accepts.
fn letters_and_digits(
    kind: PersonalKind,
    value: &str,
    key: &MaskKey,
    dir: Direction,
    eligible: impl Fn(usize) -> bool,
) -> Result<String, MaskError> {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() > 200 {
        return Err(MaskError::TooLong {
            kind,
            len: chars.len(),
            max: 200,
        });
    }
    let mut out = chars.clone();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_ascii_alphabetic() && eligible(i))
        .collect();
    let digits: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_ascii_digit() && eligible(i))
        .collect();
    let numerals: Vec<u16> = letters
        .iter()
        .map(|&i| u16::from(chars[i].to_ascii_lowercase() as u8 - b'a'))
        .collect();
    let permuted = permute(kind, key, 26, &tweak(kind, "letters", &[]), &numerals, dir)?;
    for (&i, &v) in letters.iter().zip(permuted.iter()) {
        let c = char::from(b'a' + u8::try_from(v).unwrap_or(0));
        out[i] = if chars[i].is_ascii_uppercase() {
            c.to_ascii_uppercase()
        } else {
            c
        };
    }
    let numerals: Vec<u16> = digits
        .iter()
        .map(|&i| u16::from(chars[i] as u8 - b'0'))
        .collect();
    let permuted = permute(kind, key, 10, &tweak(kind, "digits", &[]), &numerals, dir)?;
    for (&i, &v) in digits.iter().zip(permuted.iter()) {
        out[i] = char::from(b'0' + u8::try_from(v).unwrap_or(0));
    }
    Ok(out.into_iter().collect())
}

fn to_numerals(digits: &[u8]) -> Vec<u16> {
    digits.iter().map(|&d| u16::from(d - b'0')).collect()
}

fn from_numerals(numerals: &[u16]) -> Vec<u8> {
    numerals
        .iter()
        .map(|&n| b'0' + u8::try_from(n).unwrap_or(0))
        .collect()
}

fn replace_digits(template: &str, digits: &[u8]) -> String {
    let mut next = digits.iter();
    template
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                next.next().map_or(c, |&d| char::from(d))
            } else {
                c
            }
        })
        .collect()
}

fn digits_of(value: &str) -> Vec<u8> {
    value.bytes().filter(u8::is_ascii_digit).collect()
}

// ---------------------------------------------------------------------------
// Kinds.

fn card(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let kind = PersonalKind::PaymentCard;
    let d = digits_of(value);
    if !(13..=19).contains(&d.len())
        || !value
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
    {
        return Err(MaskError::Malformed {
            kind,
            reason: "a card number has 13 to 19 digits",
        });
    }
    if !detect::luhn_ok(&d) {
        return Err(MaskError::Malformed {
            kind,
            reason: "the Luhn check fails",
        });
    }
    let body = &d[6..d.len() - 1];
    let permuted = permute(
        kind,
        key,
        10,
        &tweak(kind, "body", &d[..6]),
        &to_numerals(body),
        dir,
    )?;
    let mut out = d[..6].to_vec();
    out.extend_from_slice(&from_numerals(&permuted));
    out.push(detect::luhn_check_digit(&out));
    Ok(replace_digits(value, &out))
}

fn iban(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let kind = PersonalKind::Iban;
    let compact: Vec<u8> = value.bytes().filter(|b| *b != b' ').collect();
    let well_formed = compact.len() >= 5
        && compact
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && detect::iban_length(&compact[..2]) == Some(compact.len());
    if !well_formed {
        return Err(MaskError::Malformed {
            kind,
            reason: "an IBAN has a known country code and that country's length",
        });
    }
    if !detect::mod97_ok(&compact) {
        return Err(MaskError::Malformed {
            kind,
            reason: "the mod-97 check fails",
        });
    }
    let country = &compact[..2];
    let bban = &compact[4..];
    let digit_pos: Vec<usize> = (0..bban.len())
        .filter(|&i| bban[i].is_ascii_digit())
        .collect();
    let letter_pos: Vec<usize> = (0..bban.len())
        .filter(|&i| bban[i].is_ascii_uppercase())
        .collect();
    let mut out_bban = bban.to_vec();
    let digits: Vec<u16> = digit_pos
        .iter()
        .map(|&i| u16::from(bban[i] - b'0'))
        .collect();
    for (&i, &v) in digit_pos
        .iter()
        .zip(permute(kind, key, 10, &tweak(kind, "digits", country), &digits, dir)?.iter())
    {
        out_bban[i] = b'0' + u8::try_from(v).unwrap_or(0);
    }
    let letters: Vec<u16> = letter_pos
        .iter()
        .map(|&i| u16::from(bban[i] - b'A'))
        .collect();
    for (&i, &v) in letter_pos.iter().zip(
        permute(
            kind,
            key,
            26,
            &tweak(kind, "letters", country),
            &letters,
            dir,
        )?
        .iter(),
    ) {
        out_bban[i] = b'A' + u8::try_from(v).unwrap_or(0);
    }
    let mut out = country.to_vec();
    out.extend_from_slice(b"00");
    out.extend_from_slice(&out_bban);
    let cd = detect::iban_check_digits(&out);
    out[2] = cd[0];
    out[3] = cd[1];
    let mut next = out.iter();
    Ok(value
        .chars()
        .map(|c| {
            if c == ' ' {
                c
            } else {
                next.next().map_or(c, |&b| char::from(b))
            }
        })
        .collect())
}

fn phone(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let kind = PersonalKind::Phone;
    let Some((end, shape)) = shapes::read_phone(value.as_bytes(), 0) else {
        return Err(MaskError::Malformed {
            kind,
            reason: "no telephone number could be read",
        });
    };
    if end != value.len() || shape.digits.len() < 7 {
        return Err(MaskError::Malformed {
            kind,
            reason: "a telephone number is seven or more digits with separators",
        });
    }
    let d = shape.digits.as_slice();
    // What stays in clear, and whether the number follows the North
    // American plan (which the token must follow too). Both depend only on
    // what stays in clear and on the layout, so a token gets the same plan
    // as its number.
    let (keep, nanp_from) = if shape.plus {
        match detect::split_country(d) {
            Some((1, 1)) => (1, Some(1)),
            Some((_, cc_len)) => (cc_len + 1, None),
            None => (1, None),
        }
    } else if d.len() == 10 && d[0] != b'0' && shape.groups.as_slice() != [5, 5] {
        (0, Some(0))
    } else if d.len() == 11 && d[0] == b'1' {
        (1, Some(1))
    } else if d[0] == b'0' {
        (2, None)
    } else {
        (1, None)
    };
    if let Some(from) = nanp_from
        && !detect::nanp_digits_ok(&d[from..])
    {
        return Err(MaskError::Malformed {
            kind,
            reason: "a North American number has a valid area code and exchange",
        });
    }
    let kept = &d[..keep];
    let rest = to_numerals(&d[keep..]);
    let valid = |n: &[u16]| match nanp_from {
        Some(from) => {
            let mut all = kept.to_vec();
            all.extend_from_slice(&from_numerals(n));
            detect::nanp_digits_ok(&all[from..])
        }
        None => true,
    };
    let permuted = permute_valid(
        kind,
        key,
        10,
        &tweak(kind, "digits", kept),
        &rest,
        dir,
        valid,
    )?;
    let mut out = kept.to_vec();
    out.extend_from_slice(&from_numerals(&permuted));
    if shape.paren_trunk
        && let Some((_, cc_len)) = detect::split_country(d)
    {
        out.insert(cc_len.min(out.len()), b'0');
    }
    Ok(replace_digits(value, &out))
}

fn ssn(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let kind = PersonalKind::UsSsn;
    let Some([area, group, serial]) = shapes::ssn_parts(value) else {
        return Err(MaskError::Malformed {
            kind,
            reason: "an SSN has nine digits",
        });
    };
    if !shapes::ssn_parts_ok(area, group, serial) {
        return Err(MaskError::Malformed {
            kind,
            reason: "the SSA never issues this area, group or serial",
        });
    }
    let valid = |n: &[u16]| {
        let v = |r: std::ops::Range<usize>| n[r].iter().fold(0u64, |a, &d| a * 10 + u64::from(d));
        shapes::ssn_parts_ok(v(0..3), v(3..5), v(5..9))
    };
    let permuted = permute_valid(
        kind,
        key,
        10,
        &tweak(kind, "digits", &[]),
        &to_numerals(&digits_of(value)),
        dir,
        valid,
    )?;
    Ok(replace_digits(value, &from_numerals(&permuted)))
}

fn email(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let kind = PersonalKind::Email;
    if !shapes::is_email(value) {
        return Err(MaskError::Malformed {
            kind,
            reason: "an email address is a local part, `@` and a domain",
        });
    }
    // Everything but the top-level domain (after the last dot).
    let tld_start = value.rfind('.').unwrap_or(value.len());
    let tld_char = value[..tld_start].chars().count();
    letters_and_digits(kind, value, key, dir, |i| i < tld_char)
}

fn ip(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let kind = PersonalKind::IpAddress;
    if !shapes::is_ip(value) {
        return Err(MaskError::Malformed {
            kind,
            reason: "not an IPv4 or IPv6 address",
        });
    }
    if value.contains(':') {
        // IPv6: the hex digits, with an embedded IPv4 tail as IPv4.
        if let Some((head, tail)) = value.rsplit_once(':').filter(|(_, t)| t.contains('.')) {
            let tail = ipv4(tail, key, dir)?;
            return Ok(format!("{head}:{tail}"));
        }
        return hex_digits(kind, value, key, dir);
    }
    ipv4(value, key, dir)
}

fn ipv4(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let octets: Vec<u16> = value
        .split('.')
        .filter_map(|o| o.parse::<u16>().ok())
        .collect();
    if octets.len() != 4 || octets.iter().any(|&o| o > 255) {
        return Err(MaskError::Malformed {
            kind: PersonalKind::IpAddress,
            reason: "an IPv4 address has four octets",
        });
    }
    let kind = PersonalKind::IpAddress;
    let out = permute(kind, key, 256, &tweak(kind, "v4", &[]), &octets, dir)?;
    Ok(out.iter().map(u16::to_string).collect::<Vec<_>>().join("."))
}

/// Encrypts the hex digits of `value` in the case they are written in. A
/// value whose letters are all capitals gets a token with at least one
/// capital (cycle-walking over "has a letter"), so that its token shows
/// which case to decrypt in; mixed case is refused.
fn hex_digits(
    kind: PersonalKind,
    value: &str,
    key: &MaskKey,
    dir: Direction,
) -> Result<String, MaskError> {
    let upper = value.bytes().any(|b| b.is_ascii_uppercase());
    let lower = value.bytes().any(|b| matches!(b, b'a'..=b'f'));
    if upper && lower {
        return Err(MaskError::Malformed {
            kind,
            reason: "hex digits must be all upper or all lower case",
        });
    }
    let numerals: Vec<u16> = value
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|b| {
            u16::from(if b.is_ascii_digit() {
                b - b'0'
            } else {
                b.to_ascii_lowercase() - b'a' + 10
            })
        })
        .collect();
    let has_letter = |n: &[u16]| n.iter().any(|&v| v >= 10);
    let permuted = if upper {
        permute_valid(
            kind,
            key,
            16,
            &tweak(kind, "hex", &[]),
            &numerals,
            dir,
            has_letter,
        )?
    } else {
        permute(kind, key, 16, &tweak(kind, "hex", &[]), &numerals, dir)?
    };
    let mut next = permuted.iter();
    Ok(value
        .chars()
        .map(|c| {
            if !c.is_ascii_hexdigit() {
                return c;
            }
            let v = next.next().copied().unwrap_or(0);
            let h = char::from_digit(u32::from(v), 16).unwrap_or('0');
            if upper { h.to_ascii_uppercase() } else { h }
        })
        .collect())
}

fn mac(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let kind = PersonalKind::MacAddress;
    let hex = value.bytes().filter(u8::is_ascii_hexdigit).count();
    if hex != 12
        || !value
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'-' | b'.'))
    {
        return Err(MaskError::Malformed {
            kind,
            reason: "a MAC address has twelve hex digits",
        });
    }
    hex_digits(kind, value, key, dir)
}

fn date_of_birth(value: &str, key: &MaskKey, dir: Direction) -> Result<String, MaskError> {
    let kind = PersonalKind::DateOfBirth;
    let Some(m) = shapes::whole_date(value) else {
        return Err(MaskError::Malformed {
            kind,
            reason: "no date could be read",
        });
    };
    let (ds, de) = m.day_digits;
    let width = de - ds;
    let days_in_month = (28..=31)
        .rev()
        .find(|&d| valid_day(m.year, m.month, d))
        .unwrap_or(28);
    // One-digit days stay one digit (1-9), so the token's width tells which
    // domain to decrypt in. `13/02/1990` is read day first only because 13
    // is no month, so its day stays above 12.
    let day_first_slash = ds == 0 && value.as_bytes().get(de) == Some(&b'/');
    let (low, domain) = if width == 1 {
        (1, 9)
    } else if day_first_slash {
        (13, u64::from(days_in_month) - 12)
    } else {
        (1, u64::from(days_in_month))
    };
    let extra = format!("{:04}-{:02}-{width}-{low}", m.year, m.month);
    let day = small_domain(
        key,
        &tweak(kind, "day", extra.as_bytes()),
        domain,
        u64::from(m.day) - low,
        dir,
    ) + low;
    let day_text = if width == 1 {
        day.to_string()
    } else {
        format!("{day:02}")
    };
    let mut out = String::with_capacity(value.len());
    out.push_str(&value[..ds]);
    out.push_str(&day_text);
    match m.ordinal {
        Some((os, oe)) => {
            out.push_str(&value[de..os]);
            let suffix = match day {
                1 | 21 | 31 => "st",
                2 | 22 => "nd",
                3 | 23 => "rd",
                _ => "th",
            };
            let upper = value[os..oe].bytes().all(|b| b.is_ascii_uppercase());
            out.push_str(&if upper {
                suffix.to_ascii_uppercase()
            } else {
                suffix.to_owned()
            });
            out.push_str(&value[oe..]);
        }
        None => out.push_str(&value[de..]),
    }
    Ok(out)
}

fn valid_day(year: u32, month: u32, day: u32) -> bool {
    let dim = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    };
    day <= dim
}
