//! The crate's one error type. A message names the file and, where there is
//! one, the 1-based line, and says in plain words what was expected, so that
//! a user can open the file at that line and fix it.

use std::fmt;

/// What kind of thing went wrong, for callers that react differently to
/// each (exit codes, retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CassetteErrorKind {
    /// Reading or writing a file failed, or a writer was used after one of
    /// its writes failed.
    Io,
    /// The file is not a well-formed cassette: a line is not JSON, has the
    /// wrong shape, or breaks the sequence.
    Format,
    /// The cassette was written in a newer major version of the format.
    NewerVersion,
    /// The last line was cut off while it was being written.
    Truncated,
    /// A blob is missing, unreadable, or does not match its hash.
    Blob,
    /// The file to create already exists.
    Exists,
    /// A line, a blob or a nesting depth is over the format's limits.
    TooLarge,
}

/// An error reading or writing a cassette.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", Location(.file.as_deref(), *.line))]
pub struct CassetteError {
    kind: CassetteErrorKind,
    file: Option<String>,
    line: Option<usize>,
    message: String,
    #[source]
    source: Option<std::io::Error>,
}

impl CassetteError {
    pub(crate) fn new(kind: CassetteErrorKind, message: impl Into<String>) -> CassetteError {
        CassetteError {
            kind,
            file: None,
            line: None,
            message: message.into(),
            source: None,
        }
    }

    /// An I/O failure: `doing` says what was being done ("could not read
    /// the cassette"); the OS's words follow it.
    pub(crate) fn io(doing: impl fmt::Display, source: std::io::Error) -> CassetteError {
        CassetteError {
            kind: CassetteErrorKind::Io,
            file: None,
            line: None,
            message: format!("{doing}: {source}"),
            source: Some(source),
        }
    }

    pub(crate) fn in_file(mut self, file: impl Into<String>) -> CassetteError {
        self.file = Some(file.into());
        self
    }

    pub(crate) fn at_line(mut self, line: usize) -> CassetteError {
        self.line = Some(line);
        self
    }

    pub(crate) fn with_kind(mut self, kind: CassetteErrorKind) -> CassetteError {
        self.kind = kind;
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> CassetteErrorKind {
        self.kind
    }

    /// The file concerned, as it was named to the reader or writer.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The 1-based line concerned, when the error is about one line.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The message without the file and line in front of it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// `file:line: `, `file: ` or nothing, in front of a message.
struct Location<'a>(Option<&'a str>, Option<usize>);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: "),
            (Some(file), None) => write!(f, "{file}: "),
            (None, Some(line)) => write!(f, "line {line}: "),
            (None, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_the_location_first() {
        let error = CassetteError::new(CassetteErrorKind::Format, "expected a JSON object")
            .in_file("tests/cassettes/a.jsonl")
            .at_line(7);
        assert_eq!(
            error.to_string(),
            "tests/cassettes/a.jsonl:7: expected a JSON object"
        );
        assert_eq!(error.kind(), CassetteErrorKind::Format);
        assert_eq!(error.line(), Some(7));
        assert_eq!(error.file(), Some("tests/cassettes/a.jsonl"));
        assert_eq!(error.message(), "expected a JSON object");

        let error = CassetteError::new(CassetteErrorKind::Exists, "already exists").in_file("a");
        assert_eq!(error.to_string(), "a: already exists");
        let error = CassetteError::new(CassetteErrorKind::Io, "failed");
        assert_eq!(error.to_string(), "failed");
    }

    #[test]
    fn io_errors_keep_their_source() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let error = CassetteError::io("could not read the cassette", source).in_file("x.jsonl");
        assert_eq!(
            error.to_string(),
            "x.jsonl: could not read the cassette: gone"
        );
        assert!(std::error::Error::source(&error).is_some());
    }
}
