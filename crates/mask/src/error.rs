//! Errors of the masking operators. None of them carries the value being
//! masked: error messages end up in logs, and the value is personal data.

use crate::detect::PersonalKind;

/// Why a value could not be tokenized or detokenized.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaskError {
    /// The value does not have the shape the kind requires (a card number
    /// that fails the Luhn check, an IBAN of the wrong length, ...).
    #[error("the value is not a well-formed {kind}: {reason}")]
    Malformed {
        /// The kind the value was given as.
        kind: PersonalKind,
        /// What is wrong with it, without quoting it.
        reason: &'static str,
    },
    /// The value has too few characters that can be encrypted to make a
    /// token that keeps its format.
    #[error(
        "the {kind} is too short to tokenize: it has {len} characters that can be encrypted and at least {min} are required"
    )]
    TooShort {
        /// The kind the value was given as.
        kind: PersonalKind,
        /// How many characters could be encrypted.
        len: usize,
        /// How many are needed.
        min: usize,
    },
    /// The value is longer than a token of its kind can be.
    #[error(
        "the {kind} is too long to tokenize: it has {len} characters and at most {max} are accepted"
    )]
    TooLong {
        /// The kind the value was given as.
        kind: PersonalKind,
        /// The length of the value, in characters.
        len: usize,
        /// The longest value accepted.
        max: usize,
    },
    /// This kind has no reversible token form.
    #[error("{kind} values cannot be tokenized; use pseudonymize, hash, mask or redact")]
    NotTokenizable {
        /// The kind asked for.
        kind: PersonalKind,
    },
}
