//! Extenders: code that continues a match past its regex's bounded
//! repetition, and that rules name in the rule file (`extend: value`).
//!
//! Each one runs only on an accepted match and scans forward from its end,
//! and the scanner never starts a new attempt of the same rule inside an
//! accepted match, so each extender visits each input byte at most once per
//! rule.

use crate::rules::{
    Extender, ExtenderFn, GROUP_DOUBLE_QUOTED, GROUP_ESCAPED_QUOTED, GROUP_SINGLE_QUOTED,
    GROUP_UNQUOTED, GROUP_XML, Hit, Named,
};

/// The extender of this name.
pub(crate) fn extender(name: &str) -> Option<Extender> {
    let f: ExtenderFn = match name {
        "value" => extend_value,
        "token68" => extend_token68,
        "base64" => extend_base64,
        "token" => extend_token,
        "pem" => extend_pem,
        "armor_body" => extend_armor_body,
        "prose_value" => extend_prose_value,
        _ => return None,
    };
    EXTENDERS
        .iter()
        .find(|n| *n == &name)
        .map(|n| Named { name: n, f })
}

/// Every extender name, for listings.
pub(crate) const EXTENDERS: &[&str] = &[
    "value",
    "token68",
    "base64",
    "token",
    "pem",
    "armor_body",
    "prose_value",
];

/// Continues an assignment value past the regex's 256-unit bound, with the
/// same units the regex uses for the value's form (see `value!`).
fn extend_value(hit: &Hit<'_>) -> Option<usize> {
    let hay = hit.hay;
    let mut i = hit.end;
    while let Some(len) = value_unit(hay, i, hit.group) {
        i += len;
    }
    count_extended(i - hit.end);
    Some(i)
}

/// The length of the value unit starting at `i` (1, or 2 for an escape pair),
/// or `None` where the value ends. Mirrors the character classes of `value!`
/// and `assignment_tail!` exactly; a test checks the two agree.
pub(crate) fn value_unit(hay: &[u8], i: usize, group: usize) -> Option<usize> {
    let &b = hay.get(i)?;
    let next = hay.get(i + 1).copied();
    let pair = |excluded: &[u8]| match next {
        Some(n) if !excluded.contains(&n) => Some(2),
        _ => None,
    };
    match group {
        GROUP_ESCAPED_QUOTED => match b {
            b'"' | b'\r' | b'\n' => None,
            b'\\' => pair(b"\"\r\n"),
            _ => Some(1),
        },
        GROUP_DOUBLE_QUOTED => match b {
            b'"' | b'\r' | b'\n' => None,
            b'\\' => pair(b"\r\n"),
            _ => Some(1),
        },
        GROUP_SINGLE_QUOTED => match b {
            b'\'' | b'"' | b'\r' | b'\n' => None,
            b'\\' => pair(b"\r\n"),
            _ => Some(1),
        },
        GROUP_XML => match b {
            b'<' | b'"' | b'\r' | b'\n' => None,
            b'\\' => pair(b"\r\n"),
            _ => Some(1),
        },
        GROUP_UNQUOTED => match b {
            b'\\' => pair(b"\t\n\x0b\x0c\r \"nrt"),
            b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | b' ' => None,
            b'"' | b'\'' | b'`' | b',' | b';' | b'&' | b'<' | b'>' | b')' | b']' | b'}' => None,
            _ => Some(1),
        },
        _ => None,
    }
}

/// Continues a value named in prose (`%{prose:N}`) over the bytes its regex
/// takes, then gives back the punctuation that ends a sentence.
fn extend_prose_value(hit: &Hit<'_>) -> Option<usize> {
    let mut end = run_end(hit.hay, hit.end, |b| {
        !b.is_ascii_whitespace() && b != b'\x0b' && !b"\"'`<>,;".contains(&b)
    });
    while end > hit.end && matches!(hit.hay[end - 1], b'.' | b'!' | b'?' | b')') {
        end -= 1;
    }
    count_extended(end - hit.end);
    Some(end)
}

/// RFC 7235 token68 characters, as in the bearer tail.
fn is_token68(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._~+/=-".contains(&byte)
}

fn extend_token68(hit: &Hit<'_>) -> Option<usize> {
    let end = run_end(hit.hay, hit.end, is_token68);
    count_extended(end - hit.end);
    Some(end)
}

/// Continues a token over base64url characters.
fn extend_token(hit: &Hit<'_>) -> Option<usize> {
    let end = run_end(hit.hay, hit.end, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
    });
    count_extended(end - hit.end);
    Some(end)
}

fn extend_base64(hit: &Hit<'_>) -> Option<usize> {
    if hit.secret().ends_with(b"=") {
        return Some(hit.end);
    }
    let mut end = run_end(hit.hay, hit.end, |b| {
        b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
    });
    for _ in 0..2 {
        if hit.hay.get(end) == Some(&b'=') {
            end += 1;
        }
    }
    count_extended(end - hit.end);
    Some(end)
}

fn run_end(hay: &[u8], from: usize, class: impl Fn(u8) -> bool) -> usize {
    let len = hay
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| class(b))
        .count();
    from + len
}

/// The longest a private key block may be; real ones are under 10 KiB.
const PEM_LIMIT: usize = 64 * 1024;

/// Walks a private key body from the end of the BEGIN line.
///
/// If the next `-----` within [`PEM_LIMIT`] starts a matching END line, the
/// block ends after it. Otherwise the block is truncated, and it ends after
/// the lines that look like a PEM body (base64 or `Name: value` headers).
///
/// Work: the first walk stops at the next `-----`, which is where the next
/// BEGIN line would start, so two blocks' walks never overlap.
fn extend_pem(hit: &Hit<'_>) -> Option<usize> {
    let hay = hit.hay;
    let from = hit.end;
    // A block never crosses a `"`: in JSON text that is the end of the
    // string the key sits in, and an END line after it belongs to another
    // string.
    let mut limit = hay.len().min(from.saturating_add(PEM_LIMIT));
    if let Some(quote) = hay
        .get(from..limit)
        .and_then(|w| w.iter().position(|&b| b == b'"'))
    {
        limit = from + quote;
    }
    let window = hay.get(from..limit).unwrap_or_default();
    let dashes = window
        .windows(5)
        .position(|w| w == b"-----")
        .map(|p| from + p);
    count_extended(dashes.unwrap_or(limit) - from);
    if let Some(at) = dashes
        && let Some(end) = pem_end_line(hay, at)
    {
        return Some(end);
    }
    Some(pem_body_end(hay, from, dashes.unwrap_or(limit)))
}

/// If an END line of a private key block starts at `at`, where it ends. The
/// label must name a private key (`RSA PRIVATE KEY`, `PGP PRIVATE KEY
/// BLOCK`) or an OpenVPN static key.
fn pem_end_line(hay: &[u8], at: usize) -> Option<usize> {
    let rest = hay.get(at..)?.strip_prefix(b"-----END ")?;
    const OPENVPN: &[u8] = b"OpenVPN Static key V1-----";
    if rest.starts_with(OPENVPN) {
        return Some(at + 9 + OPENVPN.len());
    }
    let label_len = rest
        .iter()
        .take(41)
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b' ')
        .count();
    let label = &rest[..label_len];
    let key_at = label.windows(11).position(|w| w == b"PRIVATE KEY")?;
    let mut after = &rest[key_at + 11..];
    if let Some(r) = after.strip_prefix(b" BLOCK") {
        after = r;
    }
    after.strip_prefix(b"-----")?;
    let consumed = rest.len() - after.len() + 5;
    Some(at + 9 + consumed)
}

/// The body lines after a match that ends a header line (PuTTY's
/// `Private-Lines: N`): base64 lines and `Name: value` lines, up to the first
/// other line, within [`PEM_LIMIT`] and never across a `"`.
fn extend_armor_body(hit: &Hit<'_>) -> Option<usize> {
    let hay = hit.hay;
    let from = hit.end;
    let mut limit = hay.len().min(from.saturating_add(PEM_LIMIT));
    if let Some(quote) = hay
        .get(from..limit)
        .and_then(|w| w.iter().position(|&b| b == b'"'))
    {
        limit = from + quote;
    }
    let end = pem_body_end(hay, from, limit);
    count_extended(end - from);
    Some(end)
}

/// The end of the PEM-looking lines from `from`, for a block without an END
/// line. The rest of the BEGIN line is taken while it looks like base64
/// (keys pasted on one line separate their parts with spaces); each later
/// line is taken whole if it is base64, a `Name: value` header or blank, and
/// the walk stops at the first line that is none of these. Lines end at real
/// or JSON-escaped line breaks.
fn pem_body_end(hay: &[u8], from: usize, limit: usize) -> usize {
    let line = hay.get(from..limit).unwrap_or_default();
    let first = line
        .iter()
        .take_while(|&&b| is_base64_byte(b) || b == b' ' || b == b'\t')
        .count();
    let mut i = from + first;
    if !at_line_break(hay, i, limit) {
        return i;
    }
    loop {
        // `i` is at a line break: step over it, then judge the next line.
        let Some(break_len) = line_break_len(hay, i, limit) else {
            return i;
        };
        let line_start = i + break_len;
        let mut end = line_start;
        while end < limit && line_break_len(hay, end, limit).is_none() && hay[end] != b'"' {
            end += 1;
        }
        let line = &hay[line_start..end];
        let body_like = line.iter().all(|&b| is_base64_byte(b));
        if !(body_like || pem_header_line(line)) {
            return i;
        }
        i = end;
        if !at_line_break(hay, i, limit) {
            return i;
        }
    }
}

fn is_base64_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=')
}

fn at_line_break(hay: &[u8], i: usize, limit: usize) -> bool {
    line_break_len(hay, i, limit).is_some()
}

/// The length of the line break at `i`: `\n`, `\r\n`, `\r`, or their
/// JSON-escaped spellings.
fn line_break_len(hay: &[u8], i: usize, limit: usize) -> Option<usize> {
    let rest = hay.get(i..limit)?;
    for brk in [&b"\r\n"[..], b"\n", b"\r", b"\\r\\n", b"\\n", b"\\r"] {
        if rest.starts_with(brk) {
            return Some(brk.len());
        }
    }
    None
}

/// `Proc-Type: 4,ENCRYPTED`, `DEK-Info: ...`, `Version: ...`, `Comment: ...`.
fn pem_header_line(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    name_len > 0 && line[0].is_ascii_alphabetic() && line.get(name_len) == Some(&b':')
}

// ---------------------------------------------------------------------------
// A test-only work counter, so that the linear-time tests can assert on the
// amount of work done instead of on wall-clock time.

#[cfg(test)]
thread_local! {
    pub(crate) static EXTENDED_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_extended(_bytes: usize) {
    #[cfg(test)]
    EXTENDED_BYTES.with(|c| c.set(c.get() + _bytes));
}
