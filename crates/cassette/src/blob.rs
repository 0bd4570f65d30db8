//! Content-addressed blobs: large bodies stored next to a cassette, in
//! `<dir>/<stem>.blobs/<sha256 hex>.json`, and referenced from the cassette
//! line as `{"$blob":"sha256:<hex>"}`.
//!
//! A blob file holds the compact JSON of the value it replaces; its name is
//! the SHA-256 of its bytes, so identical bodies share one file and the
//! reader can tell when a file was changed.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::error::{CassetteError, CassetteErrorKind};
use crate::json::{ParseProblem, parse_limited, sha256_hex};
use crate::read::{MAX_BLOB_BYTES, MAX_DEPTH};

/// The key of a blob reference.
pub(crate) const BLOB_KEY: &str = "$blob";
const BLOB_PREFIX: &str = "sha256:";

/// The directory holding the blobs of the cassette at `path`:
/// `<dir>/<stem>.blobs` for `<dir>/<stem>.jsonl`.
pub fn blob_dir_for(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.blobs"))
}

/// The reference written in place of a value stored as blob `hex`.
pub(crate) fn reference(hex: &str) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(
        BLOB_KEY.to_owned(),
        Value::String(format!("{BLOB_PREFIX}{hex}")),
    );
    Value::Object(map)
}

/// Whether `value` has the shape of a blob reference (an object whose only
/// key is `$blob`). Such a value is always stored as a blob by the writer,
/// so that the reader never mistakes a body for a reference.
pub(crate) fn looks_like_reference(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.len() == 1 && map.contains_key(BLOB_KEY))
}

/// The hash a reference names: `None` when `value` is not a reference,
/// an error when it is one but malformed.
pub(crate) fn referenced_hash(value: &Value) -> Option<Result<&str, String>> {
    if !looks_like_reference(value) {
        return None;
    }
    let target = value.get(BLOB_KEY)?;
    let hex = target
        .as_str()
        .and_then(|text| text.strip_prefix(BLOB_PREFIX))
        .filter(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
    Some(hex.ok_or_else(|| {
        format!(
            "invalid blob reference {}: expected \"sha256:\" followed by 64 lowercase hex digits",
            crate::json::compact(target, 80)
        )
    }))
}

/// Reads blobs for one load, each file at most once.
pub(crate) struct BlobReader<'a> {
    dir: Option<&'a Path>,
    cache: HashMap<String, Value>,
}

impl<'a> BlobReader<'a> {
    pub(crate) fn new(dir: Option<&'a Path>) -> BlobReader<'a> {
        BlobReader {
            dir,
            cache: HashMap::new(),
        }
    }

    /// The value stored as blob `hex`, verified against its name. Errors
    /// have no location; the caller adds the cassette's file and line.
    pub(crate) fn resolve(&mut self, hex: &str) -> Result<Value, CassetteError> {
        if let Some(value) = self.cache.get(hex) {
            return Ok(value.clone());
        }
        let Some(dir) = self.dir else {
            return Err(CassetteError::new(
                CassetteErrorKind::Blob,
                format!(
                    "refers to blob sha256:{hex}, but the cassette was not read from a file, so there is no blob directory to find it in"
                ),
            ));
        };
        let path = dir.join(format!("{hex}.json"));
        let blob_error = |message: String| CassetteError::new(CassetteErrorKind::Blob, message);
        let size = match fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(blob_error(format!(
                    "blob sha256:{hex} is missing: expected the file {}",
                    path.display()
                )));
            }
            Err(error) => {
                return Err(CassetteError::io(
                    format_args!("could not read blob file {}", path.display()),
                    error,
                )
                .with_kind(CassetteErrorKind::Blob));
            }
        };
        if size > MAX_BLOB_BYTES as u64 {
            return Err(CassetteError::new(
                CassetteErrorKind::TooLarge,
                format!(
                    "blob file {} has {size} bytes; blobs over {} MiB are refused",
                    path.display(),
                    MAX_BLOB_BYTES >> 20
                ),
            ));
        }
        let bytes = fs::read(&path).map_err(|error| {
            CassetteError::io(
                format_args!("could not read blob file {}", path.display()),
                error,
            )
            .with_kind(CassetteErrorKind::Blob)
        })?;
        let actual = sha256_hex(&bytes);
        if actual != hex {
            return Err(blob_error(format!(
                "blob file {} does not match its name: its content hashes to sha256:{actual}; it was changed or damaged after recording",
                path.display()
            )));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| blob_error(format!("blob file {} is not valid UTF-8", path.display())))?;
        let value = parse_limited(text, MAX_DEPTH).map_err(|problem| match problem {
            ParseProblem::TooDeep { .. } => CassetteError::new(
                CassetteErrorKind::TooLarge,
                format!(
                    "blob file {} nests JSON deeper than {MAX_DEPTH} levels",
                    path.display()
                ),
            ),
            ParseProblem::Syntax { message, column } => blob_error(format!(
                "blob file {} is not valid JSON (column {column}): {message}",
                path.display()
            )),
        })?;
        self.cache.insert(hex.to_owned(), value.clone());
        Ok(value)
    }
}

/// Writes blobs for one cassette.
pub(crate) struct BlobWriter {
    dir: PathBuf,
    dir_ready: bool,
}

/// Distinguishes the temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh name for a temporary file next to `name`.
pub(crate) fn temp_name(name: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.{}.{n}.tmp", std::process::id())
}

impl BlobWriter {
    pub(crate) fn new(dir: PathBuf) -> BlobWriter {
        BlobWriter {
            dir,
            dir_ready: false,
        }
    }

    /// Stores `bytes` (compact JSON) and returns its hash. An existing file
    /// with the right content is kept; the file is written whole, synced,
    /// and renamed into place, so a crash never leaves a partial blob under
    /// a blob's name.
    pub(crate) fn store(&mut self, bytes: &[u8]) -> Result<String, CassetteError> {
        if bytes.len() > MAX_BLOB_BYTES {
            return Err(CassetteError::new(
                CassetteErrorKind::TooLarge,
                format!(
                    "a body of {} bytes is too large to record; blobs over {} MiB are refused",
                    bytes.len(),
                    MAX_BLOB_BYTES >> 20
                ),
            ));
        }
        let hex = sha256_hex(bytes);
        if !self.dir_ready {
            fs::create_dir_all(&self.dir).map_err(|error| {
                CassetteError::io(
                    format_args!("could not create the blob directory {}", self.dir.display()),
                    error,
                )
            })?;
            self.dir_ready = true;
        }
        let target = self.dir.join(format!("{hex}.json"));
        if let Ok(existing) = fs::read(&target)
            && sha256_hex(&existing) == hex
        {
            return Ok(hex);
        }
        let temp = self.dir.join(temp_name(&hex));
        let written = write_synced(&temp, bytes).and_then(|()| fs::rename(&temp, &target));
        if let Err(error) = written {
            let _ = fs::remove_file(&temp);
            return Err(CassetteError::io(
                format_args!("could not write blob file {}", target.display()),
                error,
            ));
        }
        Ok(hex)
    }

    /// Makes the names of the blobs written so far durable.
    pub(crate) fn sync(&self) {
        if self.dir_ready {
            crate::write::sync_directory(&self.dir);
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blob_dirs_sit_next_to_the_cassette() {
        assert_eq!(
            blob_dir_for(Path::new("tests/cassettes/a.jsonl")),
            Path::new("tests/cassettes/a.blobs")
        );
        assert_eq!(blob_dir_for(Path::new("a.b.jsonl")), Path::new("a.b.blobs"));
        assert_eq!(blob_dir_for(Path::new("plain")), Path::new("plain.blobs"));
    }

    #[test]
    fn references() {
        let hex = "a".repeat(64);
        assert_eq!(referenced_hash(&reference(&hex)), Some(Ok(hex.as_str())));
        assert_eq!(referenced_hash(&json!({"a": 1})), None);
        assert_eq!(referenced_hash(&json!({"$blob": "x", "b": 1})), None);
        assert_eq!(referenced_hash(&json!("sha256:aa")), None);
        for bad in [
            json!({"$blob": "sha256:abc"}),
            json!({"$blob": 5}),
            json!({"$blob": format!("md5:{hex}")}),
            json!({"$blob": format!("sha256:{}", "A".repeat(64))}),
        ] {
            match referenced_hash(&bad) {
                Some(Err(message)) => {
                    assert!(message.starts_with("invalid blob reference"), "{message}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn store_then_resolve() -> Result<(), CassetteError> {
        let dir = tempfile::tempdir().map_err(|e| CassetteError::io("tempdir", e))?;
        let blobs = dir.path().join("x.blobs");
        let mut writer = BlobWriter::new(blobs.clone());
        let hex = writer.store(br#"{"a":1}"#)?;
        assert_eq!(writer.store(br#"{"a":1}"#)?, hex);
        let mut reader = BlobReader::new(Some(&blobs));
        assert_eq!(reader.resolve(&hex)?, json!({"a": 1}));
        // Only the blob itself is left in the directory: no temporary files.
        let names: Vec<_> = fs::read_dir(&blobs)
            .map_err(|e| CassetteError::io("list", e))?
            .filter_map(|entry| entry.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names.len(), 1);

        let mut without_dir = BlobReader::new(None);
        let error = without_dir.resolve(&hex).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("not read from a file")));
        Ok(())
    }
}
