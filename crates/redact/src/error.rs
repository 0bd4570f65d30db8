//! Errors raised while configuring a redactor. None of them ever carries a
//! secret value: a message may name the secret and give its length, or quote
//! a rule, nothing more, because error messages end up in logs.

/// Why a secret or a rule could not be added to a redactor.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedactError {
    /// The value is so short that redacting every occurrence of it would
    /// shred unrelated text.
    #[error(
        "secret {name:?} is too short to redact safely: it has {len} bytes and at least {min} are required"
    )]
    SecretTooShort {
        /// The name the secret was registered under.
        name: String,
        /// The length of the rejected value, in bytes.
        len: usize,
        /// The minimum length accepted, in bytes.
        min: usize,
    },
    /// The value is nothing but whitespace, which occurs everywhere.
    #[error("secret {name:?} consists only of whitespace and cannot be redacted safely")]
    SecretBlank {
        /// The name the secret was registered under.
        name: String,
    },
    /// The name cannot be used in a placeholder.
    #[error(
        "invalid secret name {name:?}: a name must be non-empty and use only ASCII letters, digits, '_', '.' and '-'"
    )]
    InvalidSecretName {
        /// The rejected name.
        name: String,
    },
    /// The redactor already holds as much secret material as it accepts.
    #[error(
        "cannot register secret {name:?}: the redactor would hold more than {limit} bytes of secret patterns"
    )]
    TooManySecrets {
        /// The name of the secret that did not fit.
        name: String,
        /// The limit on all encodings of all secrets, in bytes.
        limit: usize,
    },
    /// A user rule cannot be used: its kind, keywords or pattern are
    /// invalid, or its pattern could make a scan slower than linear.
    #[error("invalid redaction rule {kind:?}: {reason}")]
    InvalidRule {
        /// The kind the rule was given.
        kind: String,
        /// What is wrong with it.
        reason: String,
    },
}
