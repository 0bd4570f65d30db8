//! The masking operators: what a piece of personal data is replaced by.
//!
//! | operator | output for `ada@example.org` | keyed | reversible |
//! |---|---|---|---|
//! | `Redact` | `[REDACTED:email]` | no | no |
//! | `Mask { keep: 4, char: '*' }` | `***@*******.org` (letters and digits but the last `keep`, at most half, replaced; punctuation kept) | no | no |
//! | `Hash { length: 16 }` | 16 hex digits of HMAC-SHA256 under the key | yes | no |
//! | `Pseudonymize` | a realistic value of the same kind and format (see `pseudonym.rs`) | yes | no |
//! | `Tokenize` | a format-preserving encryption of the value (see `token.rs`) | yes | with [`detokenize`] |
//!
//! Every output is a function of the operator, the kind, the value and the
//! key: nothing random, no clock, no state.

pub use crate::key::MaskKey;

use crate::detect::PersonalKind;
use crate::error::MaskError;
use crate::key::hmac;
use crate::pseudonym::{self, NameHint};
use crate::token::{self, Direction};

/// What personal data is replaced by. In configuration it is written with
/// an `op` tag: `{"op": "redact"}`, `{"op": "mask", "keep": 4, "char":
/// "*"}`, `{"op": "hash", "length": 16}`, `{"op": "pseudonymize"}`,
/// `{"op": "tokenize"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Operator {
    /// `[REDACTED:KIND]`.
    Redact,
    /// Every letter and digit but the last `keep` (and never more than half
    /// of them) replaced by `char`; punctuation and spacing kept.
    Mask {
        /// How many letters and digits at the end stay (4 keeps the last
        /// four digits of a card).
        #[serde(default = "default_keep")]
        keep: usize,
        /// The character that replaces the others.
        #[serde(default = "default_char")]
        char: char,
    },
    /// The first `length` hex digits of HMAC-SHA256 of the kind and value
    /// under the key.
    Hash {
        /// How many hex digits (1 to 64).
        #[serde(default = "default_length")]
        length: usize,
    },
    /// A realistic value of the same kind and format, the same for the same
    /// value and key.
    Pseudonymize,
    /// A reversible, format-preserving token; [`detokenize`] recovers the
    /// value. A value that cannot be tokenized is redacted instead.
    Tokenize,
}

fn default_keep() -> usize {
    4
}
/// The character [`Operator::Mask`] writes unless told another.
pub(crate) const DEFAULT_MASK_CHAR: char = '*';

fn default_char() -> char {
    DEFAULT_MASK_CHAR
}
fn default_length() -> usize {
    16
}

/// Applies `op` to `value`, a `kind`.
pub fn apply(op: &Operator, kind: PersonalKind, value: &str, key: &MaskKey) -> String {
    match op {
        Operator::Redact => redact(kind),
        Operator::Mask { keep, char } => mask(value, *keep, *char),
        Operator::Hash { length } => hash(kind, value, *length, key),
        Operator::Pseudonymize => pseudonym(kind, value, key),
        Operator::Tokenize => tokenize(kind, value, key).unwrap_or_else(|_| redact(kind)),
    }
}

fn redact(kind: PersonalKind) -> String {
    format!("[REDACTED:{}]", kind.as_str())
}

fn mask(value: &str, keep: usize, with: char) -> String {
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    // Never show more than half of a value, however short it is.
    let keep = keep.min(total / 2);
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if !c.is_alphanumeric() {
                return c;
            }
            seen += 1;
            if seen + keep > total { c } else { with }
        })
        .collect()
}

fn hash(kind: PersonalKind, value: &str, length: usize, key: &MaskKey) -> String {
    let mac = hmac(
        &key.material().hash,
        &[kind.as_str().as_bytes(), value.as_bytes()],
    );
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    hex[..length.clamp(1, hex.len())].to_owned()
}

/// A realistic pseudonym of `value`, of the same kind and format, chosen by
/// the key: the same value and key always give the same pseudonym, another
/// key another one. See the crate README for each kind's format.
pub fn pseudonym(kind: PersonalKind, value: &str, key: &MaskKey) -> String {
    pseudonym::make(kind, value, key, NameHint::Unknown)
}

/// Whether `value` is a pseudonym `key` makes for `kind` (or, for dates of
/// birth, its own pseudonym): what keeps masking idempotent.
pub fn is_pseudonym(kind: PersonalKind, value: &str, key: &MaskKey) -> bool {
    if kind == PersonalKind::DateOfBirth {
        return pseudonym(kind, value, key) == value;
    }
    pseudonym::is_own(kind, value, key)
}

/// A reversible, format-preserving token for `value`.
pub fn tokenize(kind: PersonalKind, value: &str, key: &MaskKey) -> Result<String, MaskError> {
    token::run(kind, value, key, Direction::Encrypt)
}

/// The value a token was made from: the explicit unmask, which callers
/// audit.
pub fn detokenize(kind: PersonalKind, token: &str, key: &MaskKey) -> Result<String, MaskError> {
    token::run(kind, token, key, Direction::Decrypt)
}
