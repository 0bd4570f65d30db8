//! Cassettes: a run's recorded interactions in a versioned, append-only
//! file format that can be replayed, diffed and exported.
//!
//! A cassette is a JSONL file: a header line, then one line per request the
//! agent sent and the outcome it got (see `README.md` next to this crate for
//! the format). This crate holds:
//!
//! - the format's types ([`Header`], [`Interaction`], [`RecordedOutcome`]),
//! - the reader, which validates everything on load and resolves large
//!   bodies stored as content-addressed blobs ([`Cassette::load`]),
//! - the writer, which redacts every interaction before it touches the disk
//!   and appends one line per call ([`CassetteWriter`]),
//! - call matching for replay, with divergence reports when a call has no
//!   recording ([`matching`]),
//! - the side-by-side comparison of two runs ([`diff`]).
//!
//! Architecture invariant: the only I/O this crate does is reading and
//! writing cassette files and their blob directories. It opens no socket and
//! starts no process, and nothing reaches a cassette file without passing the
//! redactor.

#![forbid(unsafe_code)]

mod blob;
pub mod diff;
mod error;
mod json;
pub mod matching;
mod model;
mod read;
mod write;

pub use blob::blob_dir_for;
pub use diff::{DiffEntry, RunDiff, diff_runs};
pub use error::{CassetteError, CassetteErrorKind};
pub use matching::{
    Candidate, DivergenceReport, FieldDiff, FieldPath, MatchConfig, MatchOptions, Miss, PathMatch,
    PathRule, PathSegment, Replayer, diff_values,
};
pub use model::{
    CANCELLED_CODE, Cassette, Header, Interaction, Notification, RecordedOutcome, ScenarioRef,
    parse_version,
};
pub use read::{MAX_BLOB_BYTES, MAX_DEPTH, MAX_LINE_BYTES};
pub use write::{CassetteWriter, DEFAULT_BLOB_THRESHOLD};

/// The value of the header's `format` field.
pub const FORMAT: &str = "sandbar-cassette";
/// The major version this crate reads and writes. A file with a higher major
/// version is refused.
pub const VERSION_MAJOR: u32 = 1;
/// The minor version this crate writes. A file with a higher minor version
/// is read, ignoring the fields this version does not know.
pub const VERSION_MINOR: u32 = 3;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;
