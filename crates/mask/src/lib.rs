//! Personal-data detection and the masking operators.
//!
//! Sandbar hands agents data that must be realistic but not real. This
//! crate finds personal data ([`Detector`]) and replaces it
//! ([`operators`]): by a placeholder, a partial mask, a keyed hash, a
//! realistic pseudonym of the same kind and format, or a reversible
//! format-preserving token. Everything keyed derives from one per-tenant
//! [`MaskKey`]. A [`Masker`] puts the two together and masks text and
//! JSON field values idempotently: masking already-masked text changes
//! nothing, because the masker recognises its own pseudonyms.
//!
//! Architecture invariant: this crate is a pure library. It does no I/O,
//! opens no socket, reads no clock and draws no randomness: every output is
//! a function of its input and the key.

#![forbid(unsafe_code)]

pub mod detect;
mod error;
mod key;
mod lists;
mod masker;
pub mod operators;
mod pseudonym;
mod token;

pub use detect::{Detector, PersonalFinding, PersonalKind, cue_words};
pub use error::MaskError;
pub use masker::{JsonReader, Masker, Seen};
pub use operators::{MaskKey, Operator, apply, detokenize, pseudonym, tokenize};

#[cfg(test)]
mod masker_tests;
#[cfg(test)]
mod operators_tests;
#[cfg(test)]
mod proptests;
