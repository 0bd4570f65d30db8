//! `sandbar mask INPUT... -o OUT`: turns files with real data (a production
//! export, a log) into files fit for a scenario: personal data replaced
//! (pseudonyms by default, consistent under the key), secrets redacted.
//!
//! JSON, JSONL, CSV and text are masked as they stream (a line, a record
//! or a row at a time; a JSON document is read whole), field names serving
//! as context. A progress line shows on stderr for large inputs, and a
//! summary of what was found per kind at the end.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde_json::Value;

use sandbar_mask::{Detector, Masker, Operator};
use sandbar_redact::{Redactor, SharedRedactor};

use crate::exit::ExitCode;
use crate::keys;

/// Inputs at least this large get a progress line.
const PROGRESS_FROM_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct MaskArgs {
    /// Files to mask (JSON, JSONL, CSV or text, by extension).
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write: a file for one input, a directory for several.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// What replaces personal data.
    #[arg(long, value_enum, default_value_t = OperatorArg::Pseudonymize)]
    operator: OperatorArg,
    /// The master masking key: a file holding 64 hex digits. Default: the
    /// SANDBAR_MASK_KEY variable (64 hex digits), else DATA/keys/mask.key,
    /// created on first use. Each tenant's key derives from it; the same
    /// key and tenant always give the same pseudonyms, the ones `serve`
    /// writes to its sinks.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The tenant whose key masks.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Treat every input as this format instead of guessing from its name.
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OperatorArg {
    /// A realistic value of the same kind, the same for the same input.
    Pseudonymize,
    /// `[REDACTED:kind]`.
    Redact,
    /// Keep the last characters, star the rest.
    Mask,
    /// A keyed hash (HMAC-SHA256, 16 hex digits).
    Hash,
    /// A reversible, format-preserving token (FF1).
    Tokenize,
}

impl OperatorArg {
    fn operator(self) -> Operator {
        match self {
            OperatorArg::Pseudonymize => Operator::Pseudonymize,
            OperatorArg::Redact => Operator::Redact,
            OperatorArg::Mask => Operator::Mask { keep: 4, char: '*' },
            OperatorArg::Hash => Operator::Hash { length: 16 },
            OperatorArg::Tokenize => Operator::Tokenize,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Jsonl,
    Csv,
    Text,
}

impl Format {
    fn of(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("jsonl" | "ndjson") => Format::Jsonl,
            Some("csv") => Format::Csv,
            _ => Format::Text,
        }
    }
}

/// Counts what was found, by kind.
#[derive(Default)]
struct Tally(BTreeMap<String, usize>);

impl Tally {
    fn add(&mut self, kind: &str) {
        *self.0.entry(kind.to_owned()).or_default() += 1;
    }
}

struct Job<'a> {
    masker: Masker,
    detector: Detector,
    redactor: &'a Redactor,
    tally: Tally,
}

impl Job<'_> {
    fn text(&mut self, field: Option<&str>, text: &str) -> String {
        for f in self.detector.find_in_field(field, text) {
            self.tally.add(f.kind.as_str());
        }
        let masked = self.masker.mask_field(field, text);
        let secrets = self.redactor.find(&masked);
        for s in &secrets {
            self.tally.add(&s.kind);
        }
        if secrets.is_empty() {
            masked
        } else {
            self.redactor.redact_str(&masked).into_owned()
        }
    }

    fn json(&mut self, value: &mut Value, path: &str) {
        match value {
            Value::String(s) => {
                let field = (!path.is_empty()).then_some(path);
                *s = self.text(field, s);
            }
            Value::Number(n) => {
                let digits = n.to_string();
                let field = (!path.is_empty()).then_some(path);
                let masked = self.text(field, &digits);
                if masked != digits {
                    *value = Value::String(masked);
                }
            }
            Value::Array(items) => {
                let path = format!("{path}[]");
                for item in items {
                    self.json(item, &path);
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    self.json(item, &path);
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
}

pub fn run(args: MaskArgs, data: &Path, redactor: &SharedRedactor) -> anyhow::Result<ExitCode> {
    let key = match keys::tenant_key(args.key_file.as_deref(), data, &args.tenant) {
        Ok(k) => k,
        Err(message) => {
            eprintln!("sandbar: {message}");
            return Ok(ExitCode::Failure);
        }
    };
    let several = args.inputs.len() > 1;
    if several {
        std::fs::create_dir_all(&args.output)
            .with_context(|| format!("cannot create {}", args.output.display()))?;
    } else if args.output.is_dir() {
        eprintln!(
            "sandbar: {} is a directory; give a file name for one input",
            args.output.display()
        );
        return Ok(ExitCode::Usage);
    }
    let current = redactor.current();
    let detector = Detector::new();
    let mut job = Job {
        masker: Masker::new(detector.clone(), key, args.operator.operator()),
        detector,
        redactor: &current,
        tally: Tally::default(),
    };
    for input in &args.inputs {
        let out_path = if several {
            let Some(name) = input.file_name() else {
                eprintln!("sandbar: {} has no file name", input.display());
                return Ok(ExitCode::Usage);
            };
            args.output.join(name)
        } else {
            args.output.clone()
        };
        if out_path.exists() && same_file(input, &out_path) {
            eprintln!(
                "sandbar: refusing to write {} over its own input",
                out_path.display()
            );
            return Ok(ExitCode::Usage);
        }
        let format = args.format.unwrap_or_else(|| Format::of(input));
        if let Err(e) = mask_file(&mut job, input, &out_path, format) {
            eprintln!("sandbar: {}: {e:#}", input.display());
            let _ = std::fs::remove_file(&out_path);
            return Ok(ExitCode::Failure);
        }
    }
    let total: usize = job.tally.0.values().sum();
    let kinds: Vec<String> = job
        .tally
        .0
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    out!(
        "masked {} file(s): {} value(s) found{}{}",
        args.inputs.len(),
        total,
        if kinds.is_empty() { "" } else { " — " },
        kinds.join(", ")
    );
    Ok(ExitCode::Success)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn mask_file(job: &mut Job<'_>, input: &Path, output: &Path, format: Format) -> anyhow::Result<()> {
    let size = std::fs::metadata(input)?.len();
    let reader = BufReader::new(std::fs::File::open(input)?);
    let mut out = BufWriter::new(
        std::fs::File::create(output)
            .with_context(|| format!("cannot create {}", output.display()))?,
    );
    let mut progress = Progress::new(input, size);
    match format {
        Format::Json => {
            let mut text = String::new();
            let mut reader = reader;
            std::io::Read::read_to_string(&mut reader, &mut text)?;
            progress.advance(text.len() as u64);
            let mut value: Value = serde_json::from_str(&text).context("not valid JSON")?;
            job.json(&mut value, "");
            serde_json::to_writer_pretty(&mut out, &value)?;
            writeln!(out)?;
        }
        Format::Jsonl => {
            for (n, line) in reader.lines().enumerate() {
                let line = line?;
                progress.advance(line.len() as u64 + 1);
                if line.trim().is_empty() {
                    writeln!(out)?;
                    continue;
                }
                let mut value: Value = serde_json::from_str(&line)
                    .with_context(|| format!("line {} is not valid JSON", n + 1))?;
                job.json(&mut value, "");
                writeln!(out, "{}", serde_json::to_string(&value)?)?;
            }
        }
        Format::Csv => {
            let mut csv_reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .from_reader(reader);
            let headers = csv_reader.headers()?.clone();
            let mut writer = csv::Writer::from_writer(&mut out);
            writer.write_record(&headers)?;
            for record in csv_reader.records() {
                let record = record?;
                progress.advance(record.as_slice().len() as u64 + record.len() as u64);
                let masked: Vec<String> = record
                    .iter()
                    .enumerate()
                    .map(|(i, cell)| job.text(headers.get(i), cell))
                    .collect();
                writer.write_record(&masked)?;
            }
            writer.flush()?;
        }
        Format::Text => {
            for line in reader.lines() {
                let line = line?;
                progress.advance(line.len() as u64 + 1);
                writeln!(out, "{}", job.text(None, &line))?;
            }
        }
    }
    out.flush()?;
    progress.done();
    Ok(())
}

/// A progress line on stderr for large inputs, when stderr is a terminal.
struct Progress {
    label: String,
    size: u64,
    done: u64,
    shown: bool,
    last: Instant,
}

impl Progress {
    fn new(input: &Path, size: u64) -> Progress {
        Progress {
            label: input.display().to_string(),
            size,
            done: 0,
            shown: size >= PROGRESS_FROM_BYTES && std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if self.shown && self.last.elapsed() >= Duration::from_millis(250) {
            self.last = Instant::now();
            let percent = (self.done * 100)
                .checked_div(self.size)
                .unwrap_or(100)
                .min(100);
            eprint!(
                "\rmasking {}: {percent:>3}% ({:.1} of {:.1} MB)",
                self.label,
                self.done as f64 / 1e6,
                self.size as f64 / 1e6
            );
        }
    }

    fn done(&mut self) {
        if self.shown {
            eprintln!("\rmasking {}: done{:30}", self.label, "");
        }
    }
}
