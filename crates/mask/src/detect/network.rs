//! Network addresses: IPv4 in dotted decimal (each octet at most 255, no
//! leading zeros, not part of a longer dotted number or a version string),
//! IPv6 in its full and `::`-compressed forms (with an embedded IPv4 tail),
//! and MAC addresses (six pairs of hex digits joined by `:` or `-`, or the
//! dotted `xxxx.xxxx.xxxx` form).
//!
//! Loopback and unspecified addresses (`127.0.0.0/8`, `0.0.0.0`, `::1`,
//! `::`) name no host and no one, so they are not personal data: an error
//! that says `cannot listen on 127.0.0.1:7332` keeps its address.

use super::scan::{
    at, before, digit_run, hex_run, is_alnum, is_digit, is_hex, number, starts_with_ci,
};

/// The IPv4 address starting at `s`, as its end.
pub(crate) fn ipv4_at(hay: &[u8], s: usize) -> Option<usize> {
    if before(hay, s).is_some_and(|b| is_alnum(b) || matches!(b, b'.' | b'_')) {
        return None;
    }
    let end = ipv4_body(hay, s)?;
    match at(hay, end) {
        Some(b'.') if at(hay, end + 1).is_some_and(is_alnum) => return None,
        Some(b) if is_alnum(b) || b == b'_' => return None,
        _ => {}
    }
    if is_version_context(hay, s) {
        return None;
    }
    Some(end)
}

/// The IPv4 address starting at `s` that is personal data (not a loopback
/// or unspecified one), as its end.
pub(crate) fn personal_ipv4_at(hay: &[u8], s: usize) -> Option<usize> {
    ipv4_at(hay, s).filter(|&end| !names_no_host(&hay[s..end]))
}

/// The IPv6 address starting at `s` that is personal data, as its end.
pub(crate) fn personal_ipv6_at(hay: &[u8], s: usize) -> Option<usize> {
    ipv6_at(hay, s).filter(|&end| !names_no_host(&hay[s..end]))
}

/// Whether an address is a loopback or unspecified one (see the top).
fn names_no_host(address: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(address) else {
        return false;
    };
    match text.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            let ip = ip.to_canonical();
            ip.is_loopback() || ip.is_unspecified()
        }
        Err(_) => false,
    }
}

/// Four octets from `s` with no boundary checks, as their end.
fn ipv4_body(hay: &[u8], s: usize) -> Option<usize> {
    let mut i = s;
    for octet in 0..4 {
        let run = digit_run(hay, i, 3);
        if run == 0 || run > 3 || (run > 1 && hay[i] == b'0') || number(hay, i, i + run) > 255 {
            return None;
        }
        i += run;
        if octet < 3 {
            if at(hay, i) != Some(b'.') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

/// Whether the words just before `s` make a dotted number a version.
fn is_version_context(hay: &[u8], s: usize) -> bool {
    // Every version word is followed by a space or dot before the number.
    if !matches!(before(hay, s), Some(b' ' | b'.')) {
        return false;
    }
    let from = s.saturating_sub(12);
    const WORDS: &[&[u8]] = &[
        b"version",
        b"ver ",
        b"ver.",
        b"release",
        b"build",
        b"firmware",
        b"section",
        b"sect.",
        b"chapter",
        b"clause",
        b"paragraph",
        b"figure",
        b"fig.",
        b"table",
        b"appendix",
        b"step",
        b"item",
        b"rule",
        b"\xc2\xa7",
    ];
    // Only at the word starts of the window, and only words that start
    // with the byte there.
    (from..s).any(|i| {
        let first = hay[i].to_ascii_lowercase();
        !before(hay, i).is_some_and(|b| b.is_ascii_alphabetic())
            && WORDS
                .iter()
                .any(|w| w[0] == first && i + w.len() <= s && starts_with_ci(hay, i, w))
    })
}

/// The IPv6 address starting at `s`, as its end.
pub(crate) fn ipv6_at(hay: &[u8], s: usize) -> Option<usize> {
    if before(hay, s).is_some_and(|b| is_alnum(b) || matches!(b, b':' | b'_' | b'.')) {
        return None;
    }
    let mut i = s;
    let mut groups = 0usize;
    let mut compressed = false;
    let mut digits_seen = false;
    if at(hay, i) == Some(b':') {
        if at(hay, i + 1) != Some(b':') {
            return None;
        }
        compressed = true;
        i += 2;
    }
    loop {
        let run = hex_run(hay, i, 4);
        if run == 0 {
            break;
        }
        if run > 4 {
            return None;
        }
        if at(hay, i + run) == Some(b'.') && groups <= 6 {
            // An embedded IPv4 address ends the address.
            let end = ipv4_body(hay, i)?;
            groups += 2;
            i = end;
            digits_seen = true;
            break;
        }
        digits_seen |= hay[i..i + run].iter().any(|b| is_digit(*b));
        groups += 1;
        i += run;
        if groups > 8 {
            return None;
        }
        if at(hay, i) != Some(b':') {
            break;
        }
        if at(hay, i + 1) == Some(b':') {
            if compressed {
                return None;
            }
            compressed = true;
            i += 2;
            continue;
        }
        if at(hay, i + 1).is_some_and(is_hex) {
            i += 1;
            continue;
        }
        break;
    }
    let shape_ok = if compressed {
        (1..=7).contains(&groups)
    } else {
        groups == 8
    };
    if !shape_ok || !digits_seen {
        return None;
    }
    if at(hay, i).is_some_and(|b| is_alnum(b) || b == b'_')
        || (at(hay, i) == Some(b'.') && at(hay, i + 1).is_some_and(is_digit))
    {
        return None;
    }
    // A lone `::` or `a::b` in code is too weak a shape, so a compressed
    // address needs two groups or digits after the `::` prefix.
    if compressed && groups == 1 && !(hay[s] == b':' && i > s + 2) {
        return None;
    }
    Some(i)
}

/// The MAC address starting at `s`, as its end.
pub(crate) fn mac_at(hay: &[u8], s: usize) -> Option<usize> {
    if before(hay, s).is_some_and(|b| is_alnum(b) || matches!(b, b':' | b'-' | b'.' | b'_')) {
        return None;
    }
    let end = six_pairs(hay, s).or_else(|| dotted_quads(hay, s))?;
    match (at(hay, end), at(hay, end + 1)) {
        (Some(b), _) if is_alnum(b) || b == b'_' => None,
        (Some(b':' | b'-' | b'.'), Some(n)) if is_hex(n) => None,
        _ => Some(end),
    }
}

fn six_pairs(hay: &[u8], s: usize) -> Option<usize> {
    let sep = at(hay, s + 2)?;
    if !matches!(sep, b':' | b'-') {
        return None;
    }
    let mut i = s;
    for pair in 0..6 {
        if hex_run(hay, i, 2) != 2 {
            return None;
        }
        i += 2;
        if pair < 5 {
            if at(hay, i) != Some(sep) {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

fn dotted_quads(hay: &[u8], s: usize) -> Option<usize> {
    let mut i = s;
    let mut digits = false;
    for quad in 0..3 {
        if hex_run(hay, i, 4) != 4 {
            return None;
        }
        digits |= hay[i..i + 4].iter().any(|b| is_digit(*b));
        i += 4;
        if quad < 2 {
            if at(hay, i) != Some(b'.') {
                return None;
            }
            i += 1;
        }
    }
    // Twelve decimal digits in dotted fours are far more often a number
    // than a MAC address; require a hex letter.
    let letters = hay[s..i].iter().any(|b| b.is_ascii_alphabetic());
    (digits && letters).then_some(i)
}

/// Whether `value` as a whole is an IP address (any: tokens of addresses
/// keep the shape, whichever address they land on).
pub(crate) fn is_ip(value: &str) -> bool {
    let hay = value.as_bytes();
    ipv4_at(hay, 0) == Some(hay.len()) || ipv6_at(hay, 0) == Some(hay.len())
}

/// Whether `value` as a whole is a MAC address.
pub(crate) fn is_mac(value: &str) -> bool {
    mac_at(value.as_bytes(), 0) == Some(value.len())
}
