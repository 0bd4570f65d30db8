//! Pseudonyms: realistic values of the same kind and format, chosen by the
//! key from the value (the same value and key always give the same
//! pseudonym; another key gives another), and recognisable as this key's
//! own, so that masking masked text changes nothing.
//!
//! How each kind is made, and how it is recognised:
//!
//! | kind | pseudonym | recognised by |
//! |---|---|---|
//! | email | `given.family@example.com` and other styles, at a domain reserved for documentation (`example.com/.net/.org`, `*.example`) | the reserved domain |
//! | phone | same country, same digit count, same separators: NANP `AAA-555-01XX`; UK `07700 900XXX`, `020 7946 0XXX`; Germany the Bundesnetzagentur drama ranges (`030 23125 XXX`...); others keep their prefix and end in four keyed check digits | the fiction ranges, or the check digits |
//! | card | same first four digits, length and separators; four keyed check digits before a recomputed Luhn digit | the check digits |
//! | IBAN | same country, length and letter/digit layout; the last six BBAN digits are keyed check digits; mod-97 check digits recomputed | the check digits |
//! | SSN | area 773–899 (never issued before 2011), any group, a serial whose last three digits are keyed check digits | area range and check digits |
//! | IP | IPv4 in 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24; IPv6 in 2001:db8::/32 | the documentation ranges |
//! | MAC | locally administered unicast, the last three bytes keyed check bytes | the check bytes |
//! | date of birth | the same date with the day moved to 13–28, chosen by the key from year and month | needs none: the result is its own pseudonym |
//! | address | a street from the built-in list, same country style and locality shape; a keyed tag (1 in 64) on the street line | list street and tag |
//! | name | given and family names from the built-in lists, same number of words, initials, particles and case; a keyed tag (1 in 64; 1 in 16 for one word) | list names and tag |

use crate::detect::{self, PersonalKind, shapes};
use crate::key::{MaskKey, Stream, hmac};
use crate::lists;

/// What a lone name word is, when a field name says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameHint {
    Given,
    Family,
    Unknown,
}

/// The pseudonym of `value`, a `kind`.
pub(crate) fn make(kind: PersonalKind, value: &str, key: &MaskKey, hint: NameHint) -> String {
    match kind {
        PersonalKind::Email => email(value, key),
        PersonalKind::Phone => phone(value, key),
        PersonalKind::PaymentCard => card(value, key),
        PersonalKind::Iban => iban(value, key),
        PersonalKind::UsSsn => ssn(value, key),
        PersonalKind::IpAddress => ip(value, key),
        PersonalKind::MacAddress => mac(value, key),
        PersonalKind::DateOfBirth => date_of_birth(value, key),
        PersonalKind::PostalAddress => address(value, key),
        PersonalKind::PersonName => name(value, key, hint),
    }
}

/// Whether `value` is a pseudonym this key makes for `kind`.
pub(crate) fn is_own(kind: PersonalKind, value: &str, key: &MaskKey) -> bool {
    match kind {
        PersonalKind::Email => own_email(value),
        PersonalKind::Phone => own_phone(value, key),
        PersonalKind::PaymentCard => own_card(value, key),
        PersonalKind::Iban => own_iban(value, key),
        PersonalKind::UsSsn => own_ssn(value, key),
        PersonalKind::IpAddress => own_ip(value),
        PersonalKind::MacAddress => own_mac(value, key),
        // A pseudonymous date is its own pseudonym: see `date_of_birth`.
        PersonalKind::DateOfBirth => false,
        PersonalKind::PostalAddress => own_address(value, key),
        PersonalKind::PersonName => own_name(value, key),
    }
}

// ---------------------------------------------------------------------------
// Shared pieces.

fn stream<'k>(key: &'k MaskKey, kind: PersonalKind, value: &str, round: u64) -> Stream<'k> {
    Stream::new(
        &key.material().pseudonym,
        &[
            kind.as_str().as_bytes(),
            value.as_bytes(),
            &round.to_be_bytes(),
        ],
    )
}

/// `n` keyed check digits over `parts`.
fn check_digits(key: &MaskKey, kind: PersonalKind, parts: &[&[u8]], n: usize) -> Vec<u8> {
    let mut all: Vec<&[u8]> = vec![kind.as_str().as_bytes()];
    all.extend_from_slice(parts);
    let mac = hmac(&key.material().mark, &all);
    let mut x = u64::from_be_bytes([
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
    ]);
    let mut out = vec![b'0'; n];
    for slot in out.iter_mut().rev() {
        *slot = b'0' + u8::try_from(x % 10).unwrap_or(0);
        x /= 10;
    }
    out
}

/// Whether the keyed tag of `canonical` is 0 modulo `modulus`.
fn tag_ok(key: &MaskKey, kind: PersonalKind, canonical: &str, modulus: u64) -> bool {
    let mac = hmac(
        &key.material().mark,
        &[kind.as_str().as_bytes(), b"tag", canonical.as_bytes()],
    );
    let x = u64::from_be_bytes([
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
    ]);
    x.is_multiple_of(modulus)
}

/// `template` with its ASCII digits replaced, in order, by `digits`.
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

/// The ASCII spelling of a name: accents dropped, other letters removed.
fn ascii_fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        let folded = match c {
            'a'..='z' | 'A'..='Z' => {
                out.push(c);
                continue;
            }
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ą' => "a",
            'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => "A",
            'ç' | 'č' | 'ć' => "c",
            'Ç' | 'Č' => "C",
            'é' | 'è' | 'ê' | 'ë' | 'ę' | 'ě' => "e",
            'É' | 'È' => "E",
            'í' | 'ì' | 'î' | 'ï' | 'ı' => "i",
            'ñ' | 'ń' => "n",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'ő' => "o",
            'Ó' | 'Ö' | 'Ø' => "O",
            'ú' | 'ù' | 'û' | 'ü' | 'ű' | 'ů' => "u",
            'Ü' | 'Ú' => "U",
            'ý' | 'ÿ' => "y",
            'ß' => "ss",
            'ł' => "l",
            'Ł' => "L",
            'ś' | 'š' | 'ş' => "s",
            'Ś' | 'Š' | 'Ş' => "S",
            'ź' | 'ż' | 'ž' => "z",
            'Ż' | 'Ž' => "Z",
            'ř' => "r",
            'ğ' => "g",
            'æ' => "ae",
            'œ' => "oe",
            'Æ' => "AE",
            'ð' => "d",
            'þ' => "th",
            _ => "",
        };
        out.push_str(folded);
    }
    out
}

// ---------------------------------------------------------------------------
// Email.

fn email(value: &str, key: &MaskKey) -> String {
    let mut s = stream(key, PersonalKind::Email, &value.to_lowercase(), 0);
    let given = ascii_fold(s.pick(lists::GIVEN_NAMES)).to_lowercase();
    let family = ascii_fold(s.pick(lists::FAMILY_NAMES)).to_lowercase();
    let initial = given.chars().next().unwrap_or('a');
    let number = 10 + s.below(90);
    let local = match s.below(7) {
        0 => format!("{given}.{family}"),
        1 => format!("{given}{family}"),
        2 => format!("{given}_{family}"),
        3 => format!("{given}.{family}{number}"),
        4 => format!("{initial}{family}"),
        5 => format!("{family}.{given}"),
        _ => format!("{given}{number}"),
    };
    let domain = s.pick(lists::EMAIL_DOMAINS);
    format!("{local}@{domain}")
}

/// Whether the domain of an address is reserved for documentation.
fn own_email(value: &str) -> bool {
    let Some((_, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    ["example.com", "example.net", "example.org"]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
        || domain.ends_with(".example")
        || domain == "example"
}

// ---------------------------------------------------------------------------
// Phone.

/// Drama and fiction ranges: national significant numbers that start with
/// these digits are never assigned to a subscriber.
const UK_FICTION: &[&str] = &[
    "7700900", "2079460", "1134960", "1144960", "1154960", "1164960", "1174960", "1184960",
    "1214960", "1314960", "1414960", "1514960", "1614960", "1914980", "1632960",
];
const DE_FICTION: &[&str] = &["3023125", "6990009", "4066969", "2214710", "8999998"];

/// How a number's digits are planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhonePlan {
    /// North America: `prefix` digits before the ten-digit number.
    Nanp {
        prefix: usize,
    },
    /// A UK mobile or geographic number: `prefix` digits (country code or
    /// trunk zero) before a ten-digit national number.
    UkMobile {
        prefix: usize,
    },
    UkGeographic {
        prefix: usize,
    },
    /// A German ten-digit national number after `prefix` digits.
    Germany {
        prefix: usize,
    },
    /// Anything else: keep `keep` leading digits.
    Generic {
        keep: usize,
    },
}

fn phone_plan(shape: &detect::PhoneShape) -> PhonePlan {
    phone_plan_of(shape, shape.digits.as_slice())
}

/// The plan of a number written as `shape` but with the digits `d`.
fn phone_plan_of(shape: &detect::PhoneShape, d: &[u8]) -> PhonePlan {
    if shape.plus {
        let Some((cc, cc_len)) = detect::split_country(d) else {
            return PhonePlan::Generic {
                keep: 2.min(d.len()),
            };
        };
        let nsn = &d[cc_len..];
        return match (cc, nsn.len()) {
            (1, 10) if detect::nanp_digits_ok(nsn) => PhonePlan::Nanp { prefix: cc_len },
            (44, 10) if nsn[0] == b'7' => PhonePlan::UkMobile { prefix: cc_len },
            (44, 10) if matches!(nsn[0], b'1' | b'2') => PhonePlan::UkGeographic { prefix: cc_len },
            (49, 10) => PhonePlan::Germany { prefix: cc_len },
            _ => PhonePlan::Generic {
                keep: (cc_len + 1).min(d.len()),
            },
        };
    }
    match d.len() {
        10 if detect::nanp_digits_ok(d) && shape.groups.len() != 2 => PhonePlan::Nanp { prefix: 0 },
        11 if d[0] == b'1' && detect::nanp_digits_ok(&d[1..]) => PhonePlan::Nanp { prefix: 1 },
        11 if d[0] == b'0' && d[1] == b'7' && shape.groups.as_slice() != [6, 5] => {
            PhonePlan::UkMobile { prefix: 1 }
        }
        11 if d[0] == b'0' && matches!(d[1], b'1' | b'2') => PhonePlan::UkGeographic { prefix: 1 },
        11 if d[0] == b'0'
            && (b'3'..=b'9').contains(&d[1])
            && shape.groups.as_slice() != [6, 5] =>
        {
            PhonePlan::Germany { prefix: 1 }
        }
        _ if d.first() == Some(&b'0') => PhonePlan::Generic {
            keep: 2.min(d.len()),
        },
        _ => PhonePlan::Generic {
            keep: 1.min(d.len()),
        },
    }
}

/// How many keyed check digits a generic number of `len` digits that keeps
/// `keep` of them carries.
fn phone_check_len(len: usize, keep: usize) -> usize {
    4.min(len.saturating_sub(keep + 2))
}

fn phone(value: &str, key: &MaskKey) -> String {
    let Some((_, shape)) = shapes::read_phone(value.as_bytes(), 0) else {
        return replace_digits(value, &fallback_digits(key, PersonalKind::Phone, value));
    };
    let d = shape.digits.as_slice();
    let mut s = stream(key, PersonalKind::Phone, &String::from_utf8_lossy(d), 0);
    let mut out: Vec<u8> = Vec::with_capacity(d.len());
    match phone_plan(&shape) {
        PhonePlan::Nanp { prefix } => {
            out.extend_from_slice(&d[..prefix]);
            out.extend_from_slice(s.pick(lists::NANP_AREA_CODES).as_bytes());
            out.extend_from_slice(b"55501");
            out.push(s.digit());
            out.push(s.digit());
        }
        PhonePlan::UkMobile { prefix } => {
            out.extend_from_slice(&d[..prefix]);
            out.extend_from_slice(b"7700900");
            (0..3).for_each(|_| out.push(s.digit()));
        }
        PhonePlan::UkGeographic { prefix } => {
            out.extend_from_slice(&d[..prefix]);
            out.extend_from_slice(s.pick(UK_FICTION[1..].as_ref()).as_bytes());
            (0..3).for_each(|_| out.push(s.digit()));
        }
        PhonePlan::Germany { prefix } => {
            out.extend_from_slice(&d[..prefix]);
            // Written nationally, `0221 4710` (Cologne) would read as a UK
            // number starting `02`; the other ranges cannot.
            let ranges: Vec<&str> = if shape.plus {
                DE_FICTION.to_vec()
            } else {
                DE_FICTION
                    .iter()
                    .copied()
                    .filter(|r| !r.starts_with('2'))
                    .collect()
            };
            out.extend_from_slice(s.pick(&ranges).as_bytes());
            (0..3).for_each(|_| out.push(s.digit()));
        }
        PhonePlan::Generic { keep } => {
            let checks = phone_check_len(d.len(), keep);
            out.extend_from_slice(&d[..keep]);
            while out.len() < d.len() - checks {
                out.push(s.digit());
            }
            // Drawn digits could make a North American number (`710 000
            // 2520` drawn as `762 464 2480`), which a second masking would
            // read under that plan and not recognise as a pseudonym. The
            // check digits do not take part (NANP reads the first six of
            // the national number), so the body decides: an exchange that
            // starts with 1 is none.
            let mut whole = out.clone();
            whole.resize(d.len(), b'0');
            if let PhonePlan::Nanp { prefix } = phone_plan_of(&shape, &whole)
                && let Some(digit) = out.get_mut(prefix + 3)
                && prefix + 3 >= keep
            {
                *digit = b'1';
            }
            let check = check_digits(key, PersonalKind::Phone, &[&out], checks);
            out.extend_from_slice(&check);
        }
    }
    // A `(0)` trunk after the country code is written but not dialled.
    if shape.paren_trunk
        && let Some((_, cc_len)) = detect::split_country(d)
    {
        out.insert(cc_len.min(out.len()), b'0');
    }
    replace_digits(value, &out)
}

fn own_phone(value: &str, key: &MaskKey) -> bool {
    let Some((_, shape)) = shapes::read_phone(value.as_bytes(), 0) else {
        return false;
    };
    let d = shape.digits.as_slice();
    let starts = |prefix: usize, list: &[&str]| {
        list.iter()
            .any(|p| d.get(prefix..).is_some_and(|n| n.starts_with(p.as_bytes())))
    };
    match phone_plan(&shape) {
        PhonePlan::Nanp { prefix } => d.get(prefix + 3..prefix + 8) == Some(b"55501".as_slice()),
        PhonePlan::UkMobile { prefix } | PhonePlan::UkGeographic { prefix } => {
            starts(prefix, UK_FICTION)
        }
        PhonePlan::Germany { prefix } => starts(prefix, DE_FICTION),
        PhonePlan::Generic { keep } => {
            let checks = phone_check_len(d.len(), keep);
            checks > 0 && {
                let (body, check) = d.split_at(d.len() - checks);
                check_digits(key, PersonalKind::Phone, &[body], checks) == check
            }
        }
    }
}

/// Keyed digits for a value whose shape could not be read: one per digit.
fn fallback_digits(key: &MaskKey, kind: PersonalKind, value: &str) -> Vec<u8> {
    let mut s = stream(key, kind, value, 99);
    digits_of(value).iter().map(|_| s.digit()).collect()
}

// ---------------------------------------------------------------------------
// Payment card.

/// The issuer prefix a card pseudonym keeps.
const CARD_KEEP: usize = 4;

fn card_check_len(len: usize) -> usize {
    4.min(len.saturating_sub(CARD_KEEP + 1 + 2))
}

fn card(value: &str, key: &MaskKey) -> String {
    let d = digits_of(value);
    if d.len() < CARD_KEEP + 4 {
        return replace_digits(
            value,
            &fallback_digits(key, PersonalKind::PaymentCard, value),
        );
    }
    let mut s = stream(
        key,
        PersonalKind::PaymentCard,
        &String::from_utf8_lossy(&d),
        0,
    );
    let checks = card_check_len(d.len());
    let mut out = d[..CARD_KEEP].to_vec();
    while out.len() < d.len() - 1 - checks {
        out.push(s.digit());
    }
    let check = check_digits(key, PersonalKind::PaymentCard, &[&out], checks);
    out.extend_from_slice(&check);
    out.push(detect::luhn_check_digit(&out));
    replace_digits(value, &out)
}

fn own_card(value: &str, key: &MaskKey) -> bool {
    let d = digits_of(value);
    if d.len() < CARD_KEEP + 4 || !detect::luhn_ok(&d) {
        return false;
    }
    let checks = card_check_len(d.len());
    let body_end = d.len() - 1;
    let (body, check) = d[..body_end].split_at(body_end - checks);
    checks > 0 && check_digits(key, PersonalKind::PaymentCard, &[body], checks) == check
}

// ---------------------------------------------------------------------------
// IBAN.

const IBAN_CHECKS: usize = 6;

/// The positions in a compact IBAN's BBAN (from index 4) that carry keyed
/// check digits: the last six digit positions.
fn iban_check_positions(compact: &[u8]) -> Vec<usize> {
    let mut positions: Vec<usize> = (4..compact.len())
        .filter(|&i| compact[i].is_ascii_digit())
        .collect();
    let keep_from = positions.len().saturating_sub(IBAN_CHECKS);
    positions.drain(..keep_from);
    positions
}

fn iban_check_input(compact: &[u8], positions: &[usize]) -> Vec<u8> {
    compact
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 2 || (*i >= 4 && !positions.contains(i)))
        .map(|(_, &b)| b)
        .collect()
}

fn iban(value: &str, key: &MaskKey) -> String {
    let compact: Vec<u8> = value
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() < 8 {
        return value.to_owned();
    }
    let mut s = stream(
        key,
        PersonalKind::Iban,
        &String::from_utf8_lossy(&compact),
        0,
    );
    let mut out = compact.clone();
    for b in out.iter_mut().skip(4) {
        *b = if b.is_ascii_digit() {
            s.digit()
        } else {
            b'A' + u8::try_from(s.below(26)).unwrap_or(0)
        };
    }
    let positions = iban_check_positions(&out);
    let check = check_digits(
        key,
        PersonalKind::Iban,
        &[&iban_check_input(&out, &positions)],
        positions.len(),
    );
    for (&p, &c) in positions.iter().zip(check.iter()) {
        out[p] = c;
    }
    let cd = detect::iban_check_digits(&out);
    out[2] = cd[0];
    out[3] = cd[1];
    // Lay the compact form into the written one (spaces kept).
    let mut next = out.iter();
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                next.next().map_or(c, |&b| char::from(b))
            } else {
                c
            }
        })
        .collect()
}

fn own_iban(value: &str, key: &MaskKey) -> bool {
    let compact: Vec<u8> = value
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if compact.len() < 8 || !detect::mod97_ok(&compact) {
        return false;
    }
    let positions = iban_check_positions(&compact);
    let check = check_digits(
        key,
        PersonalKind::Iban,
        &[&iban_check_input(&compact, &positions)],
        positions.len(),
    );
    !positions.is_empty()
        && positions
            .iter()
            .zip(check.iter())
            .all(|(&p, &c)| compact[p] == c)
}

// ---------------------------------------------------------------------------
// SSN.

/// Pseudonymous SSNs use areas 773–899, which the SSA had not issued when
/// it stopped assigning areas by state in 2011.
const SSN_AREAS: std::ops::RangeInclusive<u64> = 773..=899;

fn ssn(value: &str, key: &MaskKey) -> String {
    let d = digits_of(value);
    let mut s = stream(key, PersonalKind::UsSsn, &String::from_utf8_lossy(&d), 0);
    let area = SSN_AREAS.start() + s.below(SSN_AREAS.end() - SSN_AREAS.start() + 1);
    let group = 1 + s.below(99);
    let lead = 1 + s.below(9);
    let head = format!("{area:03}{group:02}{lead}");
    let check = check_digits(key, PersonalKind::UsSsn, &[head.as_bytes()], 3);
    let mut out = head.into_bytes();
    out.extend_from_slice(&check);
    if d.len() == 9 {
        replace_digits(value, &out)
    } else {
        format!(
            "{}-{}-{}",
            &String::from_utf8_lossy(&out[..3]),
            &String::from_utf8_lossy(&out[3..5]),
            &String::from_utf8_lossy(&out[5..])
        )
    }
}

fn own_ssn(value: &str, key: &MaskKey) -> bool {
    let d = digits_of(value);
    if d.len() != 9 {
        return false;
    }
    let area = d[..3]
        .iter()
        .fold(0u64, |a, &b| a * 10 + u64::from(b - b'0'));
    SSN_AREAS.contains(&area)
        && d[5] != b'0'
        && check_digits(key, PersonalKind::UsSsn, &[&d[..6]], 3) == d[6..]
}

// ---------------------------------------------------------------------------
// IP addresses.

const DOC_NETS: &[&str] = &["192.0.2.", "198.51.100.", "203.0.113."];

fn ip(value: &str, key: &MaskKey) -> String {
    let mut s = stream(key, PersonalKind::IpAddress, &value.to_ascii_lowercase(), 0);
    let v4 = format!("{}{}", s.pick(DOC_NETS), 1 + s.below(254));
    if !value.contains(':') {
        return v4;
    }
    if value.contains('.') {
        return format!("::ffff:{v4}");
    }
    let upper = value.bytes().any(|b| b.is_ascii_uppercase());
    let groups: Vec<String> = (0..6).map(|_| format!("{:x}", s.below(0x1_0000))).collect();
    let text = format!("2001:db8:{}", groups.join(":"));
    if upper {
        text.to_ascii_uppercase()
    } else {
        text
    }
}

fn own_ip(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let v4 = lower.rsplit(':').next().unwrap_or(&lower);
    lower.starts_with("2001:db8:")
        || lower.starts_with("2001:0db8:")
        || lower == "2001:db8::"
        || DOC_NETS.iter().any(|net| {
            v4.starts_with(net)
                && v4.len() > net.len()
                && v4[net.len()..].bytes().all(|b| b.is_ascii_digit())
        })
}

// ---------------------------------------------------------------------------
// MAC addresses.

fn mac_bytes(value: &str) -> Option<[u8; 6]> {
    let hex: Vec<u8> = value.bytes().filter(u8::is_ascii_hexdigit).collect();
    if hex.len() != 12 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn mac_check(key: &MaskKey, head: &[u8]) -> [u8; 3] {
    let mac = hmac(&key.material().mark, &[b"mac_address", head]);
    [mac[0], mac[1], mac[2]]
}

fn mac(value: &str, key: &MaskKey) -> String {
    let upper = value.bytes().any(|b| b.is_ascii_uppercase())
        && !value.bytes().any(|b| b.is_ascii_lowercase());
    let dotted = value.contains('.');
    let mut rendered = String::new();
    for round in 0..32 {
        let mut s = stream(
            key,
            PersonalKind::MacAddress,
            &value.to_ascii_lowercase(),
            round,
        );
        let b0 = (u8::try_from(s.below(256)).unwrap_or(0) & 0xFC) | 0x02;
        let head = [
            b0,
            u8::try_from(s.below(256)).unwrap_or(0),
            u8::try_from(s.below(256)).unwrap_or(0),
        ];
        let check = mac_check(key, &head);
        let hex: String = head
            .iter()
            .chain(check.iter())
            .map(|b| format!("{b:02x}"))
            .collect();
        let hex = if upper { hex.to_ascii_uppercase() } else { hex };
        let mut next = hex.chars();
        rendered = value
            .chars()
            .map(|c| {
                if c.is_ascii_hexdigit() {
                    next.next().unwrap_or(c)
                } else {
                    c
                }
            })
            .collect();
        // The dotted form is only read as a MAC with a letter and a digit.
        let letters = hex.bytes().any(|b| b.is_ascii_alphabetic());
        let digits = hex.bytes().any(|b| b.is_ascii_digit());
        if !dotted || (letters && digits) {
            break;
        }
    }
    rendered
}

fn own_mac(value: &str, key: &MaskKey) -> bool {
    mac_bytes(value)
        .is_some_and(|b| b[0] & 0x03 == 0x02 && mac_check(key, &b[..3]) == [b[3], b[4], b[5]])
}

// ---------------------------------------------------------------------------
// Date of birth.

/// The same date with its day moved to one of 13–28 chosen from the year
/// and month. Only the day changes, so the result has the same year and
/// month and is its own pseudonym (`f(f(x)) == f(x)`): masking twice is
/// masking once. Days 13–28 exist in every month and never read as a
/// month, so the reading of `DD/MM` against `MM/DD` does not change.
fn date_of_birth(value: &str, key: &MaskKey) -> String {
    let Some(m) = shapes::whole_date(value) else {
        return replace_digits(
            value,
            &fallback_digits(key, PersonalKind::DateOfBirth, value),
        );
    };
    let ym = format!("{:04}-{:02}", m.year, m.month);
    let mut s = stream(key, PersonalKind::DateOfBirth, &ym, 0);
    let days = detect::SAFE_DAYS;
    let day = days.start()
        + u32::try_from(s.below(u64::from(days.end() - days.start() + 1))).unwrap_or(0);
    let (ds, de) = m.day_digits;
    let mut out = String::with_capacity(value.len() + 1);
    out.push_str(&value[..ds]);
    out.push_str(&format!("{day:02}"));
    match m.ordinal {
        Some((os, oe)) => {
            out.push_str(&value[de..os]);
            let suffix = match day {
                21 => "st",
                22 => "nd",
                23 => "rd",
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
    out
}

// ---------------------------------------------------------------------------
// Postal address.

/// One in this many street lines carries this key's tag.
const ADDRESS_TAG: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressStyle {
    English,
    French,
    German,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Locality {
    None,
    Us,
    Uk,
    Postcode,
}

fn address_style(value: &str) -> AddressStyle {
    let lower = value.to_lowercase();
    let first_line = lower.split(',').next().unwrap_or("");
    if !first_line.starts_with(|c: char| c.is_ascii_digit()) {
        return AddressStyle::German;
    }
    let second_word = first_line.split_whitespace().nth(1).unwrap_or("");
    if lists::FR_STREET_TYPES.contains(&second_word)
        || matches!(
            second_word,
            "calle" | "via" | "rua" | "avenida" | "bd" | "av."
        )
    {
        AddressStyle::French
    } else {
        AddressStyle::English
    }
}

fn address_locality(value: &str) -> Locality {
    let bytes = value.as_bytes();
    let has_uk = (0..bytes.len())
        .any(|i| (i == 0 || bytes[i - 1] == b' ') && shapes::uk_postcode(bytes, i).is_some());
    let words: Vec<&str> = value.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let has_state_zip = words.windows(2).any(|w| {
        w[0].len() == 2
            && w[0].bytes().all(|b| b.is_ascii_uppercase())
            && shapes::is_postcode(w[1])
            && w[1].len() >= 5
    });
    let has_postcode = words
        .iter()
        .skip(1)
        .any(|w| w.len() >= 4 && w.len() <= 5 && w.bytes().all(|b| b.is_ascii_digit()));
    if has_uk {
        Locality::Uk
    } else if has_state_zip {
        Locality::Us
    } else if has_postcode {
        Locality::Postcode
    } else {
        Locality::None
    }
}

fn house_number(value: &str, s: &mut Stream<'_>) -> String {
    let original = value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("1");
    let width = original
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count()
        .clamp(1, 4);
    let mut n = String::new();
    n.push(char::from(b'1' + u8::try_from(s.below(9)).unwrap_or(0)));
    while n.len() < width {
        n.push(char::from(s.digit()));
    }
    if original
        .bytes()
        .last()
        .is_some_and(|b| b.is_ascii_alphabetic())
    {
        n.push(char::from(b'A' + u8::try_from(s.below(6)).unwrap_or(0)));
    }
    n
}

fn address_candidate(value: &str, s: &mut Stream<'_>) -> String {
    let number = house_number(value, s);
    let locality = address_locality(value);
    match address_style(value) {
        AddressStyle::English => {
            let (street_type, _) = s.pick(lists::EN_STREET_TYPES);
            let mut out = format!("{number} {} {street_type}", s.pick(lists::STREET_NAMES));
            match locality {
                Locality::Us | Locality::Postcode
                    if locality == Locality::Us || !value.contains("straße") =>
                {
                    let (town, state, zip) = s.pick(lists::US_TOWNS);
                    out.push_str(&format!(
                        ", {town}, {state} {zip}{}{}",
                        char::from(s.digit()),
                        char::from(s.digit())
                    ));
                }
                Locality::Uk => {
                    let (town, area) = s.pick(lists::UK_TOWNS);
                    const LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
                    let l1 = char::from(s.pick(LETTERS));
                    let l2 = char::from(s.pick(LETTERS));
                    out.push_str(&format!(
                        ", {town} {area}{} {}{l1}{l2}",
                        1 + s.below(9),
                        s.below(10)
                    ));
                }
                _ => {}
            }
            out
        }
        AddressStyle::French => {
            let mut out = format!(
                "{number} {} {}",
                s.pick(lists::FR_STREET_TYPES),
                s.pick(lists::FR_STREET_NAMES)
            );
            if locality != Locality::None {
                let (town, prefix) = s.pick(lists::FR_TOWNS);
                out.push_str(&format!(
                    ", {prefix}{}{}{} {town}",
                    s.digit() - b'0',
                    s.digit() - b'0',
                    s.digit() - b'0'
                ));
            }
            out
        }
        AddressStyle::German => {
            let mut out = format!(
                "{}{} {number}",
                s.pick(lists::DE_STREET_NAMES),
                s.pick(lists::DE_STREET_SUFFIXES)
            );
            if locality != Locality::None {
                let (town, prefix) = s.pick(lists::DE_TOWNS);
                out.push_str(&format!(
                    ", {prefix}{}{}{} {town}",
                    s.digit() - b'0',
                    s.digit() - b'0',
                    s.digit() - b'0'
                ));
            }
            out
        }
    }
}

fn street_line(value: &str) -> String {
    value
        .split(',')
        .next()
        .unwrap_or(value)
        .trim()
        .to_lowercase()
}

fn address(value: &str, key: &MaskKey) -> String {
    let mut candidate = String::new();
    let mut s = stream(key, PersonalKind::PostalAddress, value, 0);
    for _ in 0..4096 {
        candidate = address_candidate(value, &mut s);
        if tag_ok(
            key,
            PersonalKind::PostalAddress,
            &street_line(&candidate),
            ADDRESS_TAG,
        ) {
            break;
        }
    }
    candidate
}

fn own_address(value: &str, key: &MaskKey) -> bool {
    let line = street_line(value);
    let listed = lists::STREET_NAMES
        .iter()
        .any(|n| line.contains(&n.to_lowercase()))
        || lists::DE_STREET_NAMES
            .iter()
            .any(|n| line.contains(&n.to_lowercase()))
        || lists::FR_STREET_NAMES
            .iter()
            .any(|n| line.contains(&n.to_lowercase()));
    listed && tag_ok(key, PersonalKind::PostalAddress, &line, ADDRESS_TAG)
}

// ---------------------------------------------------------------------------
// Person name.

const PARTICLES: &[&str] = &[
    "van", "von", "de", "der", "den", "del", "della", "di", "da", "du", "dos", "das", "la", "le",
    "ter", "ten", "bin", "binti", "ibn", "al", "el", "y", "zu", "af", "av",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordCase {
    Capitalised,
    Upper,
    Lower,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text kept as it is: particles, separators.
    Keep(String),
    /// An initial, with its trailing dot if any.
    Initial { dot: bool },
    /// A name word (maybe hyphenated), its role and case.
    Word {
        given: bool,
        parts: usize,
        case: WordCase,
    },
}

fn word_case(word: &str) -> WordCase {
    let letters = || word.chars().filter(|c| c.is_alphabetic());
    if letters().count() > 1 && letters().all(char::is_uppercase) {
        WordCase::Upper
    } else if letters().all(char::is_lowercase) {
        WordCase::Lower
    } else {
        WordCase::Capitalised
    }
}

/// Splits a name into pieces and gives each name word its role.
fn name_pieces(value: &str, hint: NameHint) -> Vec<Piece> {
    let (family_first, rest) = match value.split_once(", ") {
        Some((family, given)) => (Some(family), given),
        None => (None, value),
    };
    let mut pieces = Vec::new();
    let push_words = |text: &str, all_family: bool, all_given: bool, pieces: &mut Vec<Piece>| {
        let words: Vec<&str> = text.split(' ').collect();
        let name_words: Vec<usize> = words
            .iter()
            .enumerate()
            .filter(|(_, w)| !w.is_empty() && !PARTICLES.contains(w) && !is_initial(w))
            .map(|(i, _)| i)
            .collect();
        let last = name_words.last().copied();
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Keep(" ".into()));
            }
            if w.is_empty() || PARTICLES.contains(w) {
                pieces.push(Piece::Keep((*w).into()));
            } else if is_initial(w) {
                pieces.push(Piece::Initial {
                    dot: w.ends_with('.'),
                });
            } else {
                let given = if all_family {
                    false
                } else if all_given {
                    true
                } else if name_words.len() == 1 {
                    match hint {
                        NameHint::Family => false,
                        NameHint::Given => true,
                        NameHint::Unknown => {
                            lists::is_given_name(w) || lists::family_index(w).is_none()
                        }
                    }
                } else {
                    Some(i) != last
                };
                pieces.push(Piece::Word {
                    given,
                    parts: w.split('-').count().min(3),
                    case: word_case(w),
                });
            }
        }
    };
    if let Some(family) = family_first {
        push_words(family, true, false, &mut pieces);
        pieces.push(Piece::Keep(", ".into()));
        push_words(rest, false, true, &mut pieces);
    } else {
        push_words(rest, false, false, &mut pieces);
    }
    pieces
}

fn is_initial(word: &str) -> bool {
    let mut chars = word.chars();
    matches!((chars.next(), chars.next(), chars.next()), (Some(c), None, None) | (Some(c), Some('.'), None) if c.is_uppercase())
}

fn apply_case(word: &str, case: WordCase) -> String {
    match case {
        WordCase::Capitalised => word.to_owned(),
        WordCase::Upper => word.to_uppercase(),
        WordCase::Lower => word.to_lowercase(),
    }
}

/// The names of a pseudonym, lower case and joined, which the tag covers.
fn name_canonical(value: &str) -> Option<String> {
    let mut names = Vec::new();
    for word in value.split([' ', ',']).filter(|w| !w.is_empty()) {
        if PARTICLES.contains(&word) || is_initial(word) {
            continue;
        }
        for part in word.split('-') {
            if lists::given_index(part).is_none() && lists::family_index(part).is_none() {
                return None;
            }
            names.push(part.to_lowercase());
        }
    }
    (!names.is_empty()).then(|| names.join(" "))
}

/// One in this many names carries the key's tag: the rate at which a real
/// name made only of list words is taken for a pseudonym (and left as it
/// is), against how many pseudonyms a key has. Full names have the space
/// for one in 64. A lone word (a CSV's `first_name` column) is drawn from
/// one list of 348–422 names, and every key must tag some of them, or its
/// pseudonyms would not be recognised again: one in 16 leaves 22–26 tagged
/// names per list (a key with none: about 1 in 10⁹), where one in 64 left
/// some keys with none.
fn name_tag(word_count: usize) -> u64 {
    if word_count <= 1 { 16 } else { 64 }
}

fn name(value: &str, key: &MaskKey, hint: NameHint) -> String {
    let pieces = name_pieces(value.trim(), hint);
    let words = pieces
        .iter()
        .filter(|p| matches!(p, Piece::Word { .. }))
        .count();
    let mut candidate = String::new();
    let mut s = stream(
        key,
        PersonalKind::PersonName,
        &value.trim().to_lowercase(),
        0,
    );
    for _ in 0..4096 {
        candidate.clear();
        for piece in &pieces {
            match piece {
                Piece::Keep(text) => candidate.push_str(text),
                Piece::Initial { dot } => {
                    candidate.push(char::from(s.pick(b"ABCDEFGHJKLMNPRSTW")));
                    if *dot {
                        candidate.push('.');
                    }
                }
                Piece::Word { given, parts, case } => {
                    let list = if *given {
                        lists::GIVEN_NAMES
                    } else {
                        lists::FAMILY_NAMES
                    };
                    let word: Vec<&str> = (0..*parts).map(|_| s.pick(list)).collect();
                    candidate.push_str(&apply_case(&word.join("-"), *case));
                }
            }
        }
        if words == 0 {
            break;
        }
        if name_canonical(&candidate)
            .is_some_and(|c| tag_ok(key, PersonalKind::PersonName, &c, name_tag(words)))
        {
            break;
        }
    }
    candidate
}

fn own_name(value: &str, key: &MaskKey) -> bool {
    let words = value
        .split([' ', ','])
        .filter(|w| !w.is_empty() && !PARTICLES.contains(w) && !is_initial(w))
        .count();
    name_canonical(value)
        .is_some_and(|c| tag_ok(key, PersonalKind::PersonName, &c, name_tag(words)))
}
