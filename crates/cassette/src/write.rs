//! The writer: appends a run's interactions to a cassette file as the run
//! goes on, each through the redactor first, and writes whole cassettes for
//! exports.
//!
//! Each interaction is one `write_all` of one complete line, so a crash
//! leaves at most one partial line at the end, which the reader reports as
//! truncated. Bodies larger than the blob threshold go to content-addressed
//! blob files, which are synced and renamed into place before the line that
//! refers to them is written.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sandbar_redact::SinkRedactor;
use serde_json::Value;

use crate::blob::{BlobWriter, blob_dir_for, looks_like_reference, reference, temp_name};
use crate::error::{CassetteError, CassetteErrorKind};
use crate::json::depth;
use crate::model::{Cassette, Header, Interaction, Notification, RecordedOutcome};
use crate::read::{MAX_DEPTH, MAX_LINE_BYTES};
use crate::{FORMAT, VERSION_MAJOR, VERSION_MINOR};

/// Bodies (an interaction's `params` or `outcome`) whose JSON is larger than
/// this many bytes are stored as blobs unless the writer is told otherwise.
pub const DEFAULT_BLOB_THRESHOLD: usize = 64 * 1024;

/// Appends interactions to a cassette file as a run goes on.
///
/// The writer is `Send`, and every call blocks on the file system: callers
/// in async code put it on a thread of its own.
pub struct CassetteWriter {
    lines: LineWriter,
    redactor: SinkRedactor,
}

impl CassetteWriter {
    /// Creates the file (refusing to overwrite an existing one; creating its
    /// parent directories), redacts and writes the header, and flushes.
    /// The header is written in this crate's format version, whatever its
    /// `format` and `version` fields say.
    pub fn create(
        path: &Path,
        header: Header,
        redactor: impl Into<SinkRedactor>,
    ) -> Result<CassetteWriter, CassetteError> {
        let redactor = redactor.into();
        create_parent(path)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|error| {
                if error.kind() == std::io::ErrorKind::AlreadyExists {
                    CassetteError::new(
                        CassetteErrorKind::Exists,
                        "the cassette already exists; choose another path or remove the file first",
                    )
                    .in_file(path.display().to_string())
                } else {
                    CassetteError::io("could not create the cassette", error)
                        .in_file(path.display().to_string())
                }
            })?;
        let mut lines = LineWriter {
            file,
            path: path.to_path_buf(),
            blobs: BlobWriter::new(blob_dir_for(path)),
            threshold: DEFAULT_BLOB_THRESHOLD,
            next_seq: 1,
            broken: false,
        };
        if let Err(error) = lines.header(header, &redactor) {
            // Nothing useful was written; leave no file that would make the
            // next attempt fail as "already exists".
            drop(lines);
            let _ = fs::remove_file(path);
            return Err(error);
        }
        Ok(CassetteWriter { lines, redactor })
    }

    /// Stores `params` and `outcome` bodies larger than `bytes` as blobs
    /// (the default is [`DEFAULT_BLOB_THRESHOLD`]).
    pub fn with_blob_threshold(mut self, bytes: usize) -> Self {
        self.lines.threshold = bytes;
        self
    }

    /// Redacts the interaction (every string of its params, notifications
    /// and outcome), drops a `_meta` from its params, and appends it as one
    /// line, then hands the line to the OS. The writer numbers interactions
    /// 1, 2, 3...: the `seq` given is ignored and the one assigned returned.
    ///
    /// After a failed write the file may end in a partial line, so every
    /// later call fails too.
    pub fn append(&mut self, interaction: Interaction) -> Result<u64, CassetteError> {
        self.lines.append(interaction, &self.redactor)
    }

    /// Syncs the file (and the directory entries) to disk and closes it.
    pub fn finish(self) -> Result<PathBuf, CassetteError> {
        self.lines.finish()
    }

    /// The cassette's path.
    pub fn path(&self) -> &Path {
        &self.lines.path
    }

    /// How many interactions have been appended.
    pub fn len(&self) -> u64 {
        self.lines.next_seq - 1
    }

    /// Whether no interaction has been appended yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Cassette {
    /// Writes the whole cassette to `path` through `redactor`, with blobs
    /// next to it; used to export a run as a cassette. Interactions are
    /// numbered 1, 2, 3... in order. The file is written under a temporary
    /// name and renamed into place, so an existing cassette at `path` is
    /// replaced whole or not at all.
    pub fn write_to(
        &self,
        path: &Path,
        redactor: impl Into<SinkRedactor>,
    ) -> Result<(), CassetteError> {
        let redactor = &redactor.into();
        let origin = path.display().to_string();
        create_parent(path)?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| {
                CassetteError::new(CassetteErrorKind::Io, "the path does not name a file")
                    .in_file(&origin)
            })?;
        let temp = path.with_file_name(temp_name(&name));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|error| {
                CassetteError::io(
                    format_args!("could not create the temporary file {}", temp.display()),
                    error,
                )
                .in_file(&origin)
            })?;
        let mut lines = LineWriter {
            file,
            path: temp.clone(),
            blobs: BlobWriter::new(blob_dir_for(path)),
            threshold: DEFAULT_BLOB_THRESHOLD,
            next_seq: 1,
            broken: false,
        };
        let written = (|| {
            lines.header(self.header.clone(), redactor)?;
            for interaction in &self.interactions {
                lines.append(interaction.clone(), redactor)?;
            }
            lines.finish()?;
            fs::rename(&temp, path).map_err(|error| {
                CassetteError::io("could not move the finished cassette into place", error)
            })?;
            sync_dir(path);
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(|error: CassetteError| {
            if error.file().is_some() {
                error
            } else {
                error.in_file(&origin)
            }
        })
    }
}

fn create_parent(path: &Path) -> Result<(), CassetteError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        fs::create_dir_all(parent).map_err(|error| {
            CassetteError::io(
                format_args!("could not create the directory {}", parent.display()),
                error,
            )
            .in_file(path.display().to_string())
        })?;
    }
    Ok(())
}

/// Makes a new or renamed directory entry durable: syncs the directory
/// holding `path`.
fn sync_dir(path: &Path) {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_directory(parent),
        _ => sync_directory(Path::new(".")),
    }
}

/// Syncs a directory. Best effort: where the platform cannot open a
/// directory this does nothing.
pub(crate) fn sync_directory(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The file, its blobs and the numbering: what both the appending writer
/// and whole-cassette writes need.
struct LineWriter {
    file: File,
    path: PathBuf,
    blobs: BlobWriter,
    threshold: usize,
    next_seq: u64,
    broken: bool,
}

impl LineWriter {
    fn fail(&self, error: CassetteError) -> CassetteError {
        error.in_file(self.path.display().to_string())
    }

    fn header(&mut self, mut header: Header, redactor: &SinkRedactor) -> Result<(), CassetteError> {
        header.format = FORMAT.to_owned();
        header.version = format!("{VERSION_MAJOR}.{VERSION_MINOR}");
        redact_header(&mut header, redactor);
        let too_deep = header
            .server
            .as_ref()
            .is_some_and(|s| depth(s, MAX_DEPTH) + 1 > MAX_DEPTH)
            || header
                .upstreams
                .values()
                .any(|u| depth(u, MAX_DEPTH) + 2 > MAX_DEPTH);
        if too_deep {
            return Err(self.fail(CassetteError::new(
                CassetteErrorKind::TooLarge,
                format!(
                    "the header's server or upstream catalogs nest deeper than {MAX_DEPTH} levels"
                ),
            )));
        }
        let line = serde_json::to_vec(&header).map_err(|error| {
            self.fail(CassetteError::new(
                CassetteErrorKind::Format,
                format!("could not encode the header: {error}"),
            ))
        })?;
        self.write_line(line)
    }

    fn append(
        &mut self,
        mut interaction: Interaction,
        redactor: &SinkRedactor,
    ) -> Result<u64, CassetteError> {
        if self.broken {
            return Err(self.fail(CassetteError::new(
                CassetteErrorKind::Io,
                "an earlier write to this cassette failed and the file may end in a partial line, so nothing more is appended",
            )));
        }
        let seq = self.next_seq;
        interaction.seq = seq;
        if let Value::Object(params) = &mut interaction.params {
            params.shift_remove("_meta");
        }
        redact_interaction(&mut interaction, redactor);
        let line = self.encode(interaction).map_err(|error| self.fail(error))?;
        self.write_line(line)?;
        self.next_seq += 1;
        Ok(seq)
    }

    /// The line for one (redacted) interaction, with large or deep bodies
    /// moved to blobs.
    fn encode(&mut self, interaction: Interaction) -> Result<Vec<u8>, CassetteError> {
        let Interaction {
            seq,
            method,
            params,
            upstream,
            virtual_time,
            notifications,
            outcome,
        } = interaction;
        let seq_for = |what: &str| format!("interaction {seq}'s {what}");

        // Nesting first: serializing a value recurses, so a value too deep
        // for the reader must be caught before it is serialized.
        let notifications_depth = notifications
            .iter()
            .map(|n| depth(&n.params, MAX_DEPTH).max(n.answer.as_ref().map_or(0, outcome_depth)))
            .max()
            .unwrap_or(0);
        if notifications_depth + 3 > MAX_DEPTH {
            return Err(too_deep(&seq_for("notifications")));
        }
        let params_depth = depth(&params, MAX_DEPTH);
        if params_depth > MAX_DEPTH {
            return Err(too_deep(&seq_for("params")));
        }
        let outcome_depth = outcome_depth(&outcome);
        if outcome_depth > MAX_DEPTH {
            return Err(too_deep(&seq_for("outcome")));
        }
        let outcome = outcome.to_json();

        let mut params = Body::new(params, params_depth);
        let mut outcome = Body::new(outcome, outcome_depth);
        // A params value shaped like a blob reference is always stored as a
        // blob, so that the reader never mistakes it for one.
        if looks_like_reference(&params.value) || params.must_move(self.threshold)? {
            params.move_to(&mut self.blobs)?;
        }
        if outcome.must_move(self.threshold)? {
            outcome.move_to(&mut self.blobs)?;
        }
        let notifications = notifications_json(notifications);
        let mut line = build_line(
            seq,
            &method,
            &params.value,
            upstream.as_deref(),
            &virtual_time,
            &notifications,
            &outcome.value,
        )?;
        if line.len() > MAX_LINE_BYTES && !(params.moved && outcome.moved) {
            params.move_to(&mut self.blobs)?;
            outcome.move_to(&mut self.blobs)?;
            line = build_line(
                seq,
                &method,
                &params.value,
                upstream.as_deref(),
                &virtual_time,
                &notifications,
                &outcome.value,
            )?;
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(CassetteError::new(
                CassetteErrorKind::TooLarge,
                format!(
                    "interaction {seq} takes {} bytes on one line even with its params and outcome in blob files; lines over {} MiB are refused",
                    line.len(),
                    MAX_LINE_BYTES >> 20
                ),
            ));
        }
        Ok(line)
    }

    fn write_line(&mut self, mut line: Vec<u8>) -> Result<(), CassetteError> {
        line.push(b'\n');
        let written = self.file.write_all(&line).and_then(|()| self.file.flush());
        if let Err(error) = written {
            self.broken = true;
            return Err(self.fail(CassetteError::io("could not write to the cassette", error)));
        }
        Ok(())
    }

    fn finish(self) -> Result<PathBuf, CassetteError> {
        if let Err(error) = self.file.sync_all() {
            return Err(self.fail(CassetteError::io(
                "could not sync the cassette to disk",
                error,
            )));
        }
        sync_dir(&self.path);
        self.blobs.sync();
        Ok(self.path)
    }
}

fn too_deep(what: &str) -> CassetteError {
    CassetteError::new(
        CassetteErrorKind::TooLarge,
        format!("{what} nest deeper than {MAX_DEPTH} levels, which a cassette cannot hold"),
    )
}

/// A body that may be written inline or moved to a blob.
struct Body {
    value: Value,
    depth: usize,
    bytes: Option<Vec<u8>>,
    moved: bool,
}

impl Body {
    fn new(value: Value, depth: usize) -> Body {
        Body {
            value,
            depth,
            bytes: None,
            moved: false,
        }
    }

    fn bytes(&mut self) -> Result<&[u8], CassetteError> {
        if self.bytes.is_none() {
            let bytes = serde_json::to_vec(&self.value).map_err(|error| {
                CassetteError::new(
                    CassetteErrorKind::Format,
                    format!("could not encode a body: {error}"),
                )
            })?;
            self.bytes = Some(bytes);
        }
        Ok(self.bytes.as_deref().unwrap_or_default())
    }

    /// Whether the body is too large for the threshold or too deep to sit
    /// inside the line (which adds one level around it).
    fn must_move(&mut self, threshold: usize) -> Result<bool, CassetteError> {
        Ok(self.depth + 1 > MAX_DEPTH || self.bytes()?.len() > threshold)
    }

    fn move_to(&mut self, blobs: &mut BlobWriter) -> Result<(), CassetteError> {
        if self.moved {
            return Ok(());
        }
        let hex = blobs.store(self.bytes()?)?;
        self.value = reference(&hex);
        self.moved = true;
        Ok(())
    }
}

/// How deep an outcome's JSON nests: it wraps the result in one object, the
/// error's data in two.
fn outcome_depth(outcome: &RecordedOutcome) -> usize {
    match outcome {
        RecordedOutcome::Result(result) => depth(result, MAX_DEPTH) + 1,
        RecordedOutcome::Error { data, .. } => {
            data.as_ref().map_or(0, |data| depth(data, MAX_DEPTH)) + 2
        }
    }
}

fn notifications_json(notifications: Vec<Notification>) -> Value {
    Value::Array(
        notifications
            .into_iter()
            .map(|notification| {
                let mut map = serde_json::Map::new();
                map.insert("method".to_owned(), Value::String(notification.method));
                map.insert("params".to_owned(), notification.params);
                if let Some(answer) = notification.answer {
                    map.insert("answer".to_owned(), answer.to_json());
                }
                Value::Object(map)
            })
            .collect(),
    )
}

/// One interaction line, keys in the format's order, empty optional fields
/// left out.
fn build_line(
    seq: u64,
    method: &str,
    params: &Value,
    upstream: Option<&str>,
    virtual_time: &str,
    notifications: &Value,
    outcome: &Value,
) -> Result<Vec<u8>, CassetteError> {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        seq: u64,
        method: &'a str,
        params: &'a Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        upstream: Option<&'a str>,
        virtual_time: &'a str,
        #[serde(skip_serializing_if = "is_empty_array")]
        notifications: &'a Value,
        outcome: &'a Value,
    }
    fn is_empty_array(value: &&Value) -> bool {
        value.as_array().is_some_and(Vec::is_empty)
    }
    serde_json::to_vec(&Line {
        seq,
        method,
        params,
        upstream,
        virtual_time,
        notifications,
        outcome,
    })
    .map_err(|error| {
        CassetteError::new(
            CassetteErrorKind::Format,
            format!("could not encode interaction {seq}: {error}"),
        )
    })
}

fn redact_string(text: &mut String, redactor: &SinkRedactor) {
    if let std::borrow::Cow::Owned(redacted) = redactor.redact_str(text) {
        *text = redacted;
    }
}

/// Redacts every string of the header. The seed, a number Sandbar chose,
/// is left as it is: redacting digits would turn it into a string.
fn redact_header(header: &mut Header, redactor: &SinkRedactor) {
    redact_string(&mut header.scenario.name, redactor);
    redact_string(&mut header.scenario.hash, redactor);
    redact_string(&mut header.clock_start, redactor);
    redact_string(&mut header.recorded_at, redactor);
    if let Some(run_id) = &mut header.run_id {
        redact_string(run_id, redactor);
    }
    if let Some(server) = &mut header.server {
        redactor.redact_json(server);
    }
    if !header.upstreams.is_empty() {
        // Through one JSON object, so that names are redacted (and kept
        // apart) the way the redactor treats any object's keys.
        let mut upstreams =
            Value::Object(std::mem::take(&mut header.upstreams).into_iter().collect());
        redactor.redact_json(&mut upstreams);
        if let Value::Object(map) = upstreams {
            header.upstreams = map.into_iter().collect();
        }
    }
}

fn redact_interaction(interaction: &mut Interaction, redactor: &SinkRedactor) {
    redact_string(&mut interaction.method, redactor);
    redactor.redact_json(&mut interaction.params);
    if let Some(upstream) = &mut interaction.upstream {
        redact_string(upstream, redactor);
    }
    redact_string(&mut interaction.virtual_time, redactor);
    for notification in &mut interaction.notifications {
        redact_string(&mut notification.method, redactor);
        redactor.redact_json(&mut notification.params);
        if let Some(answer) = &mut notification.answer {
            redact_outcome(answer, redactor);
        }
    }
    redact_outcome(&mut interaction.outcome, redactor);
}

fn redact_outcome(outcome: &mut RecordedOutcome, redactor: &SinkRedactor) {
    match outcome {
        RecordedOutcome::Result(value) => redactor.redact_json(value),
        RecordedOutcome::Error { message, data, .. } => {
            redact_string(message, redactor);
            if let Some(data) = data {
                redactor.redact_json(data);
            }
        }
    }
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
