//! The encoded forms of a known secret: every spelling under which a
//! registered value can reach a sink, so that one exact-match pass over the
//! output finds it whichever way it was serialized on the way.
//!
//! Covered: raw; base64 (standard and URL-safe alphabets, padded and
//! unpadded, and the three byte alignments at which the value can sit inside
//! a longer base64 blob); URL encoding (RFC 3986, `encodeURIComponent`,
//! Python's `quote`, and the two `+`-for-space form encodings, each with upper-
//! and lower-case hex); JSON string escaping (minimal as serde and JavaScript
//! write it, with `\/`, with every non-ASCII character as `\uXXXX` as Python
//! and PHP write it, HTML-safe as Go writes it, and escaped twice for JSON
//! held inside a JSON string); Rust `Debug` escaping (what `tracing` prints for
//! a string field); HTML entities; hex (lower and upper case).

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Variants shorter than this are left out: a three-byte fragment occurs by
/// chance in ordinary text and base64 far too often to be evidence of
/// anything.
pub(crate) const MIN_VARIANT_LEN: usize = 4;

/// Returns the raw value first, then every distinct encoded form of it that
/// differs from the raw one and is at least [`MIN_VARIANT_LEN`] bytes long.
pub(crate) fn variants(value: &str) -> Vec<Vec<u8>> {
    let raw = value.as_bytes();
    let mut out: Vec<Vec<u8>> = vec![raw.to_vec()];
    let mut push = |variant: Vec<u8>| {
        if variant.len() >= MIN_VARIANT_LEN && !out.contains(&variant) {
            out.push(variant);
        }
    };

    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        push(engine.encode(raw).into_bytes());
    }
    for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        for prefix in 0..3 {
            if let Some(fragment) = base64_fragment(&engine, raw, prefix) {
                push(fragment);
            }
        }
    }

    for set in PercentSet::ALL {
        for upper in [true, false] {
            push(percent_encode(raw, set, upper).into_bytes());
        }
    }

    for slash in [false, true] {
        for non_ascii in [NonAscii::Raw, NonAscii::Lower, NonAscii::Upper] {
            for go_html in [false, true] {
                for upper_control in [false, true] {
                    let style = JsonStyle {
                        slash,
                        non_ascii,
                        go_html,
                        upper_control,
                    };
                    push(json_escape(value, style).into_bytes());
                }
            }
        }
    }
    // JSON text stored inside another JSON string (a recorded request body in
    // an event, for instance) escapes the escapes once more.
    let once = json_escape(value, JsonStyle::default());
    push(json_escape(&once, JsonStyle::default()).into_bytes());

    push(rust_debug(value).into_bytes());
    for apostrophe in ["&#39;", "&#x27;"] {
        push(html_escape(value, apostrophe).into_bytes());
    }
    push(hex(raw, false).into_bytes());
    push(hex(raw, true).into_bytes());
    out
}

/// The part of the base64 encoding of `value` that stays the same whatever
/// bytes surround it, when it starts `prefix` bytes (0, 1 or 2) after a
/// three-byte group boundary inside a longer blob.
///
/// The value occupies bits `8*prefix .. 8*(prefix + len)` of the encoded
/// stream; base64 character `k` covers bits `6k .. 6k+6`. A character is
/// determined by the value alone when its six bits all fall inside the
/// value's bits, so characters `ceil(8*prefix/6) .. floor(8*(prefix+len)/6)`
/// are kept and the boundary characters, which mix in the neighbours' bits,
/// are dropped.
pub(crate) fn base64_fragment(
    engine: &GeneralPurpose,
    value: &[u8],
    prefix: usize,
) -> Option<Vec<u8>> {
    let mut shifted = vec![0u8; prefix];
    shifted.extend_from_slice(value);
    let encoded = engine.encode(&shifted).into_bytes();
    let first = (8 * prefix).div_ceil(6);
    let last = (8 * (prefix + value.len())) / 6;
    encoded.get(first..last).map(<[u8]>::to_vec)
}

/// Which characters a URL encoder leaves alone, and how it writes a space.
#[derive(Clone, Copy, Debug)]
enum PercentSet {
    /// RFC 3986 unreserved characters: `A-Z a-z 0-9 - . _ ~`.
    Unreserved,
    /// JavaScript `encodeURIComponent`: unreserved plus `! * ' ( )`.
    UriComponent,
    /// Python `urllib.parse.quote` with its default `safe='/'`.
    PythonQuote,
    /// Python `quote_plus`: unreserved, space as `+`.
    PlusUnreserved,
    /// HTML forms, Java `URLEncoder`, JavaScript `URLSearchParams`:
    /// `A-Z a-z 0-9 * - . _`, space as `+`.
    PlusForm,
}

impl PercentSet {
    const ALL: [PercentSet; 5] = [
        PercentSet::Unreserved,
        PercentSet::UriComponent,
        PercentSet::PythonQuote,
        PercentSet::PlusUnreserved,
        PercentSet::PlusForm,
    ];

    fn keeps(self, byte: u8) -> bool {
        if byte.is_ascii_alphanumeric() {
            return true;
        }
        match self {
            PercentSet::Unreserved | PercentSet::PlusUnreserved => b"-._~".contains(&byte),
            PercentSet::UriComponent => b"-._~!*'()".contains(&byte),
            PercentSet::PythonQuote => b"-._~/".contains(&byte),
            PercentSet::PlusForm => b"*-._".contains(&byte),
        }
    }

    fn space_as_plus(self) -> bool {
        matches!(self, PercentSet::PlusUnreserved | PercentSet::PlusForm)
    }
}

fn percent_encode(value: &[u8], set: PercentSet, upper: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &byte in value {
        if set.keeps(byte) {
            out.push(char::from(byte));
        } else if byte == b' ' && set.space_as_plus() {
            out.push('+');
        } else {
            out.push('%');
            push_hex_byte(&mut out, byte, upper);
        }
    }
    out
}

/// How a JSON encoder writes characters beyond the ones it must escape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NonAscii {
    /// Written as UTF-8, as serde_json and JavaScript do.
    Raw,
    /// Written as `\uxxxx` (UTF-16 units, surrogate pairs above U+FFFF).
    Lower,
    /// Written as `\uXXXX`.
    Upper,
}

#[derive(Clone, Copy, Debug)]
struct JsonStyle {
    /// Escape `/` as `\/` (PHP's default).
    slash: bool,
    non_ascii: NonAscii,
    /// Escape `<`, `>`, `&`, U+2028 and U+2029 as `\u` sequences (Go's default).
    go_html: bool,
    /// Write the hex digits of `\u00XX` control escapes in upper case.
    upper_control: bool,
}

impl Default for JsonStyle {
    fn default() -> Self {
        JsonStyle {
            slash: false,
            non_ascii: NonAscii::Raw,
            go_html: false,
            upper_control: false,
        }
    }
}

/// The text of `value` as it appears between the quotes of a JSON string.
fn json_escape(value: &str, style: JsonStyle) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let unit = |out: &mut String, unit: u16, upper: bool| {
        out.push_str("\\u");
        let [hi, lo] = unit.to_be_bytes();
        push_hex_byte(out, hi, upper);
        push_hex_byte(out, lo, upper);
    };
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if style.slash => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => unit(&mut out, c as u16, style.upper_control),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if style.go_html => {
                unit(&mut out, c as u16, false);
            }
            c if !c.is_ascii() && style.non_ascii != NonAscii::Raw => {
                let mut units = [0u16; 2];
                for &u in c.encode_utf16(&mut units).iter() {
                    unit(&mut out, u, style.non_ascii == NonAscii::Upper);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The text of `value` as Rust's `Debug` prints it, without the quotes. This
/// is what `tracing` writes for a `&str` field, so it is what reaches logs.
fn rust_debug(value: &str) -> String {
    let quoted = format!("{value:?}");
    let inner = quoted
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'));
    inner.unwrap_or(&quoted).to_owned()
}

/// The text of `value` as an HTML report or the web UI would escape it.
fn html_escape(value: &str, apostrophe: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            c => out.push(c),
        }
    }
    out
}

fn hex(value: &[u8], upper: bool) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for &byte in value {
        push_hex_byte(&mut out, byte, upper);
    }
    out
}

fn push_hex_byte(out: &mut String, byte: u8, upper: bool) {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    out.push(char::from(digits[usize::from(byte >> 4)]));
    out.push(char::from(digits[usize::from(byte & 0x0f)]));
}
