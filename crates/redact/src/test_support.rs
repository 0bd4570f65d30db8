//! Helpers shared by the tests: the `check` helper and generators of
//! realistic-looking fake credentials. The credentials are generated rather
//! than written out so that no token-shaped literal sits in the sources for
//! secret scanners to trip over.

use crate::{Finding, Redactor};

/// Asserts that `redactor` turns `input` into `expected`, and that:
/// redacting again changes nothing (idempotence); `find` reports exactly
/// the spans that were replaced; an unchanged input comes back borrowed.
#[track_caller]
pub(crate) fn check_with(redactor: &Redactor, input: &str, expected: &str) {
    let output = redactor.redact_str(input);
    assert_eq!(output, expected, "\ninput: {input:?}");
    let again = redactor.redact_str(&output);
    assert_eq!(again, output, "not idempotent for input {input:?}");
    if input == expected {
        assert!(
            matches!(output, std::borrow::Cow::Borrowed(_)),
            "unchanged input must not allocate: {input:?}"
        );
    }
    assert_eq!(
        render(input, &redactor.find(input)),
        expected,
        "find() disagrees with redact_str() for {input:?}"
    );
}

/// [`check_with`] against the default redactor.
#[track_caller]
pub(crate) fn check(input: &str, expected: &str) {
    check_with(&default_redactor(), input, expected);
}

/// Asserts that `input` passes the default redactor unchanged.
#[track_caller]
pub(crate) fn unchanged(input: &str) {
    check(input, input);
}

pub(crate) fn default_redactor() -> Redactor {
    Redactor::new()
}

/// Rebuilds the redacted text from findings, as a consumer of `find` would.
pub(crate) fn render(input: &str, findings: &[Finding]) -> String {
    let mut out = String::new();
    let mut last = 0;
    for f in findings {
        out.push_str(&input[last..f.start]);
        out.push_str(&format!("[REDACTED:{}]", f.kind));
        last = f.end;
    }
    out.push_str(&input[last..]);
    out
}

pub(crate) const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub(crate) const HEX: &str = "0123456789abcdef";
pub(crate) const UPPER_B32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `prefix` followed by `len` characters drawn deterministically from
/// `alphabet` (seeded by the prefix and the length), starting with `A`, `b`
/// and `3` when the alphabet has them, so that validators asking for mixed
/// classes are satisfied as a real random token would be; a token of a
/// format with a checksum ends in a valid one.
pub(crate) fn fake(prefix: &str, alphabet: &str, len: usize) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ (len as u64);
    for b in prefix.bytes() {
        state = state.wrapping_mul(0x100_0000_01b3) ^ u64::from(b);
    }
    let mut out = String::from(prefix);
    for seed in ['A', 'b', '3'] {
        if out.len() - prefix.len() < len && chars.contains(&seed) {
            out.push(seed);
        }
    }
    while out.len() - prefix.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(chars[(state % chars.len() as u64) as usize]);
    }
    // Real tokens of the formats with a checksum carry a valid one.
    if len == 36 && CHECKSUMMED.contains(&prefix) {
        let check = crate::validators::base62_checksum(&out.as_bytes()[prefix.len()..][..30]);
        out.truncate(out.len() - 6);
        out.push_str(std::str::from_utf8(&check).unwrap_or_default());
    }
    out
}

/// Prefixes of the token formats whose last 6 characters are the CRC-32 of
/// the 30 before them (GitHub's and npm's).
const CHECKSUMMED: &[&str] = &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "npm_"];
