//! `sandbar scan PATH...`: reports the secrets and personal data in files
//! (kind, file, line, column, a redacted preview), so it can guard a
//! pipeline: exit 1 when something is found.
//!
//! Secrets come from the redactor's rules and known secrets; personal data
//! from the masking crate's detector. In JSON and JSONL files every string
//! value is also checked with its key path as context (`"first_name":
//! "Ada"` is a name), as the detector is meant to be used on structured
//! data; offsets stay byte offsets into the file.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use serde_json::json;

use sandbar_mask::{Detector, PersonalFinding, PersonalKind};
use sandbar_redact::SharedRedactor;

use crate::exit::ExitCode;

/// Files larger than this are scanned in full anyway, but a directory walk
/// skips them unless named on the command line.
const MAX_WALKED_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories (walked recursively; hidden entries skipped).
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// Print one JSON document: every finding and a summary.
    #[arg(long)]
    json: bool,
}

/// One thing found.
#[derive(Debug, Serialize)]
pub struct ScanFinding {
    pub path: String,
    pub kind: String,
    pub category: &'static str,
    /// Byte offsets in the file.
    pub start: usize,
    pub end: usize,
    /// 1-based line, and 1-based column in bytes.
    pub line: usize,
    pub column: usize,
    pub preview: String,
}

pub fn run(args: ScanArgs, redactor: &SharedRedactor) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.paths {
        if path.is_dir() {
            walk(path, &mut files);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            eprintln!("sandbar: {} is not a file or a directory", path.display());
            return Ok(ExitCode::Usage);
        }
    }
    let detector = Detector::new();
    let redactor = redactor.current();
    let mut findings = Vec::new();
    let mut bytes = 0u64;
    let mut unreadable = 0;
    for file in &files {
        let data = match std::fs::read(file) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("sandbar: cannot read {}: {e}", file.display());
                unreadable += 1;
                continue;
            }
        };
        bytes += data.len() as u64;
        // Binary files (a NUL byte in the first 8 KiB) are not text to scan.
        if data.iter().take(8192).any(|&b| b == 0) {
            continue;
        }
        let text = String::from_utf8_lossy(&data);
        let label = file.display().to_string();
        let csv = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let mut found = scan_text(&label, &text, csv, &detector, &redactor);
        findings.append(&mut found);
    }
    findings.sort_by(|a, b| (&a.path, a.start, a.end).cmp(&(&b.path, b.start, b.end)));
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for f in &findings {
        *by_kind.entry(f.kind.clone()).or_default() += 1;
    }
    if args.json {
        let report = json!({
            "findings": findings,
            "summary": {"files": files.len(), "bytes": bytes, "by_kind": by_kind},
        });
        out!("{}", serde_json::to_string(&report)?);
    } else {
        for f in &findings {
            out!(
                "{}:{}:{}: {} ({}) {}",
                f.path,
                f.line,
                f.column,
                f.kind,
                f.category,
                f.preview
            );
        }
        let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        eprintln!(
            "sandbar: {} findings in {} files ({} bytes){}{}",
            findings.len(),
            files.len(),
            bytes,
            if kinds.is_empty() { "" } else { ": " },
            kinds.join(", ")
        );
    }
    Ok(if unreadable > 0 || !findings.is_empty() {
        ExitCode::Failure
    } else {
        ExitCode::Success
    })
}

/// Every finding in one file's text.
pub fn scan_text(
    label: &str,
    text: &str,
    csv: bool,
    detector: &Detector,
    redactor: &sandbar_redact::Redactor,
) -> Vec<ScanFinding> {
    let mut personal: Vec<PersonalFinding> = detector.find(text);
    // Structured data: string values with their key path (or CSV column)
    // as context.
    let fields = if csv {
        csv_cells(text)
    } else {
        json_strings(text)
    };
    for (field, start, end) in fields {
        for f in detector.find_in_field(Some(&field), &text[start..end]) {
            personal.push(PersonalFinding {
                kind: f.kind,
                start: start + f.start,
                end: start + f.end,
            });
        }
    }
    personal.sort_by_key(|f| (f.start, f.end));
    personal.dedup_by(|b, a| a.kind == b.kind && a.start == b.start && a.end == b.end);
    let lines = LineIndex::new(text);
    let mut out: Vec<ScanFinding> = redactor
        .find(text)
        .into_iter()
        .map(|f| {
            let (line, column) = lines.position(f.start);
            ScanFinding {
                path: label.to_owned(),
                preview: format!("[REDACTED:{}]", f.kind),
                kind: f.kind,
                category: "secret",
                start: f.start,
                end: f.end,
                line,
                column,
            }
        })
        .collect();
    for f in personal {
        // A finding inside a secret (an email in a connection string) is
        // reported once, as the secret.
        if out
            .iter()
            .any(|s| s.category == "secret" && s.start <= f.start && f.end <= s.end)
        {
            continue;
        }
        let (line, column) = lines.position(f.start);
        out.push(ScanFinding {
            path: label.to_owned(),
            kind: f.kind.as_str().to_owned(),
            category: "personal",
            start: f.start,
            end: f.end,
            line,
            column,
            preview: preview(f.kind, &text[f.start..f.end]),
        });
    }
    out
}

/// A preview that shows the kind and at most the last two characters.
fn preview(kind: PersonalKind, value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let keep = if chars.len() >= 8 { 2 } else { 0 };
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("[{}:…{}]", kind.as_str(), tail)
}

/// Files under a directory, hidden entries and huge files skipped, in a
/// stable order.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("sandbar: cannot read directory {}", dir.display());
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, out);
        } else if meta.is_file() && meta.len() <= MAX_WALKED_FILE_BYTES {
            out.push(path);
        }
    }
}

/// Byte offset → 1-based line and column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line.saturating_sub(1)];
        (line, offset - start + 1)
    }
}

/// The cells of CSV text with their column names and byte ranges (cells
/// after the header row; a quoted cell's range covers its contents).
pub fn csv_cells(text: &str) -> Vec<(String, usize, usize)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    while let Ok(true) = reader.read_record(&mut record) {
        let Some(position) = record.position() else {
            continue;
        };
        // Find each cell in the record's own bytes, in order.
        let mut at = usize::try_from(position.byte()).unwrap_or(usize::MAX);
        for (i, cell) in record.iter().enumerate() {
            if cell.is_empty() || at >= text.len() {
                continue;
            }
            let Some(found) = text[at..].find(cell) else {
                continue;
            };
            let start = at + found;
            let end = start + cell.len();
            let column = headers.get(i).cloned().unwrap_or_default();
            out.push((column, start, end));
            at = end;
        }
    }
    out
}

/// The string values of JSON text (a document, or JSON lines), each with
/// its key path (`customer.name`, `orders[].email`) and the byte range of
/// its raw contents. Text that is not JSON yields what it can up to the
/// point it stops looking like JSON; nothing is allocated per byte.
pub fn json_strings(text: &str) -> Vec<(String, usize, usize)> {
    let bytes = text.as_bytes();
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if !matches!(first.map(|i| bytes[i]), Some(b'{') | Some(b'[')) {
        return Vec::new();
    }
    enum Frame {
        Object { key: Option<String> },
        Array,
    }
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    let path = |stack: &Vec<Frame>| -> String {
        let mut p = String::new();
        for f in stack {
            match f {
                Frame::Object { key: Some(k) } => {
                    if !p.is_empty() {
                        p.push('.');
                    }
                    p.push_str(k);
                }
                Frame::Object { key: None } => {}
                Frame::Array => p.push_str("[]"),
            }
        }
        p
    };
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                stack.push(Frame::Object { key: None });
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array);
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    if bytes[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                if j >= bytes.len() {
                    break;
                }
                let end = j;
                let mut k = j + 1;
                while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                    k += 1;
                }
                let is_key = matches!(stack.last(), Some(Frame::Object { .. }))
                    && k < bytes.len()
                    && bytes[k] == b':';
                if is_key {
                    if let Some(Frame::Object { key }) = stack.last_mut() {
                        *key = Some(text[start..end].to_owned());
                    }
                } else if text.is_char_boundary(start) && text.is_char_boundary(end) {
                    out.push((path(&stack), start, end));
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_carry_their_key_paths() {
        let text = r#"{"customer": {"name": "Ada Lovelace", "tags": ["a", "b"]}, "note": "x \"y\""}
{"email": "ada@example.org"}"#;
        let found: Vec<(String, &str)> = json_strings(text)
            .into_iter()
            .map(|(p, s, e)| (p, &text[s..e]))
            .collect();
        assert_eq!(
            found,
            vec![
                ("customer.name".to_owned(), "Ada Lovelace"),
                ("customer.tags[]".to_owned(), "a"),
                ("customer.tags[]".to_owned(), "b"),
                ("note".to_owned(), r#"x \"y\""#),
                ("email".to_owned(), "ada@example.org"),
            ]
        );
        assert!(json_strings("plain text with \"quotes\"").is_empty());
    }

    #[test]
    fn csv_cells_carry_their_columns() {
        let text = "first_name,email\nAda,ada@example.org\n\"Grace, Rear Admiral\",g@example.org\n";
        let found: Vec<(String, &str)> = csv_cells(text)
            .into_iter()
            .map(|(c, s, e)| (c, &text[s..e]))
            .collect();
        assert_eq!(
            found,
            vec![
                ("first_name".to_owned(), "Ada"),
                ("email".to_owned(), "ada@example.org"),
                ("first_name".to_owned(), "Grace, Rear Admiral"),
                ("email".to_owned(), "g@example.org"),
            ]
        );
    }

    #[test]
    fn positions_are_one_based() {
        let index = LineIndex::new("ab\ncd\n");
        assert_eq!(index.position(0), (1, 1));
        assert_eq!(index.position(1), (1, 2));
        assert_eq!(index.position(3), (2, 1));
        assert_eq!(index.position(4), (2, 2));
    }
}
