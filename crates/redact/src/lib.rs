//! The Redactor: the one gate that every Sandbar sink (event store, cassettes,
//! tracing logs, exports) writes through, so that no secret reaches any sink.
//!
//! Two kinds of things are redacted:
//!
//! - **Known secrets**: values Sandbar itself holds (vault secrets, scenario
//!   credentials), registered by name with [`RedactorBuilder::secret`] or
//!   [`SharedRedactor::add_secrets`]. They are matched exactly, together with
//!   the encodings they commonly travel in (base64 including fragments inside
//!   larger blobs, URL encoding, JSON and Rust-debug escaping, HTML entities,
//!   hex), and replaced by `[REDACTED:secret:NAME]`.
//! - **Credentials found by rules**: a data file of credential shapes
//!   (`rules/secrets.yaml`: the token formats of well over a hundred services,
//!   private key blocks, JWTs, authorization headers, passwords in URLs and
//!   connection strings, and assignments), each replaced by `[REDACTED:KIND]`.
//!   Where a rule matches `key = value`, only the value is replaced. Users add
//!   rules of their own with [`RedactorBuilder::rule`].
//!
//! Redaction is deterministic and idempotent: a placeholder never matches a
//! rule, and `redact(redact(x)) == redact(x)`. Every scan is linear in the
//! input: see `rules.rs` for how the keyword prefilter and the anchored
//! searches keep it so.
//!
//! Architecture invariant: this crate does no I/O of its own; the only writer
//! it touches is the one a caller hands to [`RedactingMakeWriter`].

#![forbid(unsafe_code)]

mod custom;
mod encodings;
mod error;
mod extenders;
mod keywords;
mod privacy;
mod redactor;
mod rule_file;
mod rules;
mod scan;
mod shared;
mod validators;
mod writer;

pub use custom::CustomRule;
pub use error::RedactError;
pub use privacy::{Privacy, PrivacyPolicy, Sink, SinkPolicy};
pub use redactor::{Finding, Redactor, RedactorBuilder};
/// The masking operators and kinds a [`PrivacyPolicy`] names.
pub use sandbar_mask;
pub use scan::generalize_placeholders;
pub use shared::{SharedRedactor, SinkRedactor};
pub use writer::{RedactingMakeWriter, RedactingWriter};

#[cfg(test)]
mod custom_tests;
#[cfg(test)]
mod encodings_tests;
#[cfg(test)]
mod keywords_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod redactor_tests;
#[cfg(test)]
mod rule_file_tests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod writer_tests;
