//! The reader: loads a cassette and validates every line, so that replay
//! and diff work only on well-formed recordings.
//!
//! Each line is checked field by field rather than through serde derive, so
//! that every message names the field and says what was expected. The
//! header decides how strict the rest is: a file in this crate's minor
//! version (or an older one) may hold no field the format does not define,
//! while a file in a newer minor version may, and those fields are ignored
//! (minor versions only add fields).

use std::fs;
use std::path::Path;

use serde_json::{Map, Value};

use crate::blob::{BlobReader, blob_dir_for, referenced_hash};
use crate::error::{CassetteError, CassetteErrorKind};
use crate::json::{ParseProblem, describe, parse_limited};
use crate::model::{
    Cassette, Header, Interaction, Notification, ScenarioRef, outcome_from_json, parse_version,
};
use crate::{FORMAT, VERSION_MAJOR, VERSION_MINOR};

/// The longest line the reader accepts, in bytes (64 MiB). The writer moves
/// large bodies to blobs, so real lines stay far below it.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// The deepest nesting of objects and arrays accepted on one line or in one
/// blob.
pub const MAX_DEPTH: usize = 128;
/// The largest blob file the reader accepts, in bytes (1 GiB).
pub const MAX_BLOB_BYTES: usize = 1 << 30;

const HEADER_FIELDS: &[&str] = &[
    "format",
    "version",
    "scenario",
    "seed",
    "clock_start",
    "recorded_at",
    "run_id",
    "server",
    "upstreams",
    "mask_key",
];
const SCENARIO_FIELDS: &[&str] = &["name", "hash"];
const INTERACTION_FIELDS: &[&str] = &[
    "seq",
    "method",
    "params",
    "upstream",
    "virtual_time",
    "notifications",
    "outcome",
];
const NOTIFICATION_FIELDS: &[&str] = &["method", "params", "answer"];

impl Cassette {
    /// Reads and validates the cassette at `path`, resolving blobs from the
    /// directory next to it (see [`blob_dir_for`]).
    pub fn load(path: &Path) -> Result<Cassette, CassetteError> {
        let origin = path.display().to_string();
        let bytes = fs::read(path).map_err(|error| {
            CassetteError::io("could not read the cassette", error).in_file(&origin)
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|error| {
            let valid = error.valid_up_to();
            let line = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
            let error = if error.error_len().is_none() {
                // The bytes end inside a character: the write was cut off.
                truncated(line)
            } else {
                CassetteError::new(
                    CassetteErrorKind::Format,
                    "the line is not valid UTF-8; cassettes are UTF-8 text",
                )
            };
            error.in_file(&origin).at_line(line)
        })?;
        let blob_dir = blob_dir_for(path);
        let mut cassette = Cassette::parse(text, &origin, Some(&blob_dir))?;
        cassette.path = Some(path.to_path_buf());
        Ok(cassette)
    }

    /// Validates a cassette held in memory. `origin` names it in error
    /// messages; `blob_dir` is the directory holding its blobs (for a file,
    /// [`blob_dir_for`] of its path), if it has one.
    pub fn parse(
        text: &str,
        origin: &str,
        blob_dir: Option<&Path>,
    ) -> Result<Cassette, CassetteError> {
        let locate = |line: usize| move |error: CassetteError| error.in_file(origin).at_line(line);
        let mut lines = text
            .split_inclusive('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l));
        let Some((_, first)) = lines.next() else {
            return Err(CassetteError::new(
                CassetteErrorKind::Format,
                "the file is empty; expected a cassette header on the first line",
            )
            .in_file(origin)
            .at_line(1));
        };
        let header_value = parse_line(first, 1).map_err(locate(1))?;
        let (header, strict) = read_header(header_value).map_err(|error| {
            if error.kind() == CassetteErrorKind::NewerVersion {
                error.in_file(origin)
            } else {
                error.in_file(origin).at_line(1)
            }
        })?;
        let mut blobs = BlobReader::new(blob_dir);
        let mut interactions = Vec::new();
        for (number, line) in lines {
            let expected_seq = interactions.len() as u64 + 1;
            let value = parse_line(line, number).map_err(locate(number))?;
            let interaction = read_interaction(value, expected_seq, strict, &mut blobs)
                .map_err(locate(number))?;
            interactions.push(interaction);
        }
        Ok(Cassette {
            header,
            interactions,
            path: None,
        })
    }
}

fn truncated(line: usize) -> CassetteError {
    CassetteError::new(
        CassetteErrorKind::Truncated,
        format!(
            "line {line} is truncated (the recording was cut off while writing); delete that line to keep the interactions before it"
        ),
    )
}

fn format_error(message: impl Into<String>) -> CassetteError {
    CassetteError::new(CassetteErrorKind::Format, message)
}

/// One line (with its `\n`, if it has one) parsed as JSON within the limits.
fn parse_line(line: &str, number: usize) -> Result<Value, CassetteError> {
    let terminated = line.ends_with('\n');
    let body = line.strip_suffix('\n').unwrap_or(line);
    // A `\r` before the newline is JSON whitespace; files that went through
    // a CRLF checkout still read.
    if body.len() > MAX_LINE_BYTES {
        return Err(CassetteError::new(
            CassetteErrorKind::TooLarge,
            format!(
                "the line has {} bytes; lines over {} MiB are refused (large bodies belong in blob files)",
                body.len(),
                MAX_LINE_BYTES >> 20
            ),
        ));
    }
    if body.trim().is_empty() {
        let message = if number == 1 {
            "the first line is empty; expected the cassette header".to_owned()
        } else if terminated {
            "empty line; every line must hold one JSON object, and only a single newline may end the file".to_owned()
        } else {
            "the last line holds only whitespace; every line must hold one JSON object".to_owned()
        };
        return Err(format_error(message));
    }
    parse_limited(body, MAX_DEPTH).map_err(|problem| match problem {
        ParseProblem::TooDeep { column } => CassetteError::new(
            CassetteErrorKind::TooLarge,
            format!("JSON nested deeper than {MAX_DEPTH} levels (at column {column})"),
        ),
        ParseProblem::Syntax { .. } if !terminated => truncated(number),
        ParseProblem::Syntax { message, column } => {
            format_error(format!("invalid JSON at column {column}: {message}"))
        }
    })
}

/// The fields of one JSON object being read; `what` names it in messages
/// ("the header", "`scenario`").
struct Fields {
    map: Map<String, Value>,
    what: String,
}

impl Fields {
    /// Takes the object apart, refusing unknown fields when `strict`.
    fn new(
        map: Map<String, Value>,
        what: String,
        known: &[&str],
        strict: bool,
    ) -> Result<Fields, CassetteError> {
        if strict && let Some(key) = map.keys().find(|key| !known.contains(&key.as_str())) {
            let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            return Err(format_error(format!(
                "unknown field `{key}` in {what}; expected one of {}",
                expected.join(", ")
            )));
        }
        Ok(Fields { map, what })
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn required(&mut self, key: &str, expected: &str) -> Result<Value, CassetteError> {
        self.take(key).ok_or_else(|| {
            format_error(format!(
                "`{key}` is missing from {}; expected {expected}",
                self.what
            ))
        })
    }

    fn string(&mut self, key: &str, label: &str) -> Result<String, CassetteError> {
        match self.required(key, "a string")? {
            Value::String(text) => Ok(text),
            other => Err(format_error(format!(
                "`{label}` must be a string, found {}",
                describe(&other)
            ))),
        }
    }

    fn non_empty_string(
        &mut self,
        key: &str,
        label: &str,
        expected: &str,
    ) -> Result<String, CassetteError> {
        match self.required(key, expected)? {
            Value::String(text) if !text.is_empty() => Ok(text),
            other => Err(format_error(format!(
                "`{label}` must be a non-empty string, found {}",
                describe(&other)
            ))),
        }
    }

    fn optional_string(&mut self, key: &str, label: &str) -> Result<Option<String>, CassetteError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format_error(format!(
                "`{label}` must be a string or null, found {}",
                describe(&other)
            ))),
        }
    }
}

/// The header, and whether unknown fields are errors in this file.
fn read_header(value: Value) -> Result<(Header, bool), CassetteError> {
    let Value::Object(map) = value else {
        return Err(format_error(format!(
            "expected a cassette header (a JSON object with \"format\": \"{FORMAT}\"), found {}",
            describe(&value)
        )));
    };
    match map.get("format") {
        Some(Value::String(format)) if format == FORMAT => {}
        None => {
            return Err(format_error(format!(
                "expected a cassette header: `format` is missing; it should be \"{FORMAT}\""
            )));
        }
        Some(other) => {
            return Err(format_error(format!(
                "not a Sandbar cassette: `format` is {}, expected \"{FORMAT}\"",
                describe(other)
            )));
        }
    }
    let version = match map.get("version") {
        None => {
            return Err(format_error(
                "`version` is missing from the header; expected \"MAJOR.MINOR\" such as \"1.0\"",
            ));
        }
        Some(Value::String(text)) if parse_version(text).is_some() => text.clone(),
        Some(other) => {
            return Err(format_error(format!(
                "`version` must be a string \"MAJOR.MINOR\" such as \"1.0\", found {}",
                describe(other)
            )));
        }
    };
    let (major, minor) = parse_version(&version).unwrap_or((0, 0));
    if major > VERSION_MAJOR {
        return Err(CassetteError::new(
            CassetteErrorKind::NewerVersion,
            format!(
                "cassette format {version} is newer than this Sandbar reads ({VERSION_MAJOR}.x); upgrade Sandbar to replay it"
            ),
        ));
    }
    if major < VERSION_MAJOR {
        return Err(format_error(format!(
            "cassette format {version} is not supported; this Sandbar reads {VERSION_MAJOR}.x"
        )));
    }
    // Always true while this crate writes minor version 0; written for the
    // minor versions to come.
    #[allow(clippy::absurd_extreme_comparisons)]
    let strict = minor <= VERSION_MINOR;

    let mut fields = Fields::new(map, "the header".to_owned(), HEADER_FIELDS, strict)?;
    let format = fields.string("format", "format")?;
    fields.take("version");
    let scenario = match fields.required("scenario", "an object with `name` and `hash`")? {
        Value::Object(map) => {
            let mut scenario = Fields::new(map, "`scenario`".to_owned(), SCENARIO_FIELDS, strict)?;
            ScenarioRef {
                name: scenario.string("name", "scenario.name")?,
                hash: scenario.string("hash", "scenario.hash")?,
            }
        }
        other => {
            return Err(format_error(format!(
                "`scenario` must be an object with `name` and `hash`, found {}",
                describe(&other)
            )));
        }
    };
    let seed = match fields.required("seed", "a non-negative integer")? {
        Value::Number(n) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
        other => {
            return Err(format_error(format!(
                "`seed` must be a non-negative integer, found {}",
                describe(&other)
            )));
        }
    };
    let clock_start = fields.string("clock_start", "clock_start")?;
    let recorded_at = fields.string("recorded_at", "recorded_at")?;
    let run_id = fields.optional_string("run_id", "run_id")?;
    let mask_key = fields.optional_string("mask_key", "mask_key")?;
    let server = match fields.take("server") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value),
    };
    let upstreams = match fields.take("upstreams") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(map)) => map.into_iter().collect(),
        Some(other) => {
            return Err(format_error(format!(
                "`upstreams` must be an object mapping each upstream's name to its catalog, found {}",
                describe(&other)
            )));
        }
    };
    let header = Header {
        format,
        version,
        scenario,
        seed,
        clock_start,
        recorded_at,
        run_id,
        server,
        upstreams,
        mask_key,
    };
    Ok((header, strict))
}

fn read_interaction(
    value: Value,
    expected_seq: u64,
    strict: bool,
    blobs: &mut BlobReader<'_>,
) -> Result<Interaction, CassetteError> {
    let Value::Object(map) = value else {
        return Err(format_error(format!(
            "expected an interaction (a JSON object with `seq`, `method`, `params`, `virtual_time` and `outcome`), found {}",
            describe(&value)
        )));
    };
    let mut fields = Fields::new(
        map,
        "the interaction".to_owned(),
        INTERACTION_FIELDS,
        strict,
    )?;
    let seq = match fields.required("seq", &format!("{expected_seq}"))? {
        Value::Number(n) if n.as_u64().is_some_and(|seq| seq > 0) => n.as_u64().unwrap_or_default(),
        other => {
            return Err(format_error(format!(
                "`seq` must be a positive integer, found {}",
                describe(&other)
            )));
        }
    };
    if seq != expected_seq {
        let why = if expected_seq == 1 {
            "interactions are numbered from 1"
        } else {
            "one more than the line before"
        };
        return Err(format_error(format!(
            "expected `seq` {expected_seq} ({why}), found {seq}"
        )));
    }
    let method =
        fields.non_empty_string("method", "method", "the MCP method, such as \"tools/call\"")?;
    let params = match fields.take("params") {
        None => Value::Null,
        Some(params) => resolve(params, blobs)?,
    };
    let upstream = fields.optional_string("upstream", "upstream")?;
    let virtual_time = fields.string("virtual_time", "virtual_time")?;
    let notifications = match fields.take("notifications") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| read_notification(item, index, strict))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format_error(format!(
                "`notifications` must be an array, found {}",
                describe(&other)
            )));
        }
    };
    let outcome_value = fields.required("outcome", "{\"result\": ...} or {\"error\": {...}}")?;
    let from_blob = referenced_hash(&outcome_value).is_some();
    let outcome_value = resolve(outcome_value, blobs)?;
    let outcome = outcome_from_json(&outcome_value, "outcome", strict).map_err(|message| {
        if from_blob {
            format_error(format!("{message} (in the outcome's blob file)"))
        } else {
            format_error(message)
        }
    })?;
    Ok(Interaction {
        seq,
        method,
        params,
        upstream,
        virtual_time,
        notifications,
        outcome,
    })
}

/// `value`, or the value its blob reference names.
fn resolve(value: Value, blobs: &mut BlobReader<'_>) -> Result<Value, CassetteError> {
    match referenced_hash(&value) {
        None => Ok(value),
        Some(Err(message)) => Err(CassetteError::new(CassetteErrorKind::Blob, message)),
        Some(Ok(hex)) => blobs.resolve(hex),
    }
}

fn read_notification(
    value: Value,
    index: usize,
    strict: bool,
) -> Result<Notification, CassetteError> {
    let label = format!("notifications[{index}]");
    let Value::Object(map) = value else {
        return Err(format_error(format!(
            "`{label}` must be an object with `method` and `params`, found {}",
            describe(&value)
        )));
    };
    let mut fields = Fields::new(map, format!("`{label}`"), NOTIFICATION_FIELDS, strict)?;
    let method = fields.non_empty_string(
        "method",
        &format!("{label}.method"),
        "the notification's method, such as \"notifications/progress\"",
    )?;
    let params = fields.take("params").unwrap_or(Value::Null);
    let answer = match fields.take("answer") {
        None => None,
        // A notification gets no answer: replaying one with an answer would
        // send the client a request by a notification's name.
        Some(_) if method.starts_with("notifications/") => {
            return Err(format_error(format!(
                "`{label}` is a notification ({method}) and has no `answer`; only a request to the client has one"
            )));
        }
        Some(answer) => Some(
            outcome_from_json(&answer, &format!("{label}.answer"), strict).map_err(format_error)?,
        ),
    };
    Ok(Notification {
        method,
        params,
        answer,
    })
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
