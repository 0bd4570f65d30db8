//! `sandbar runs list | show | export | import | diff`: reads recorded runs
//! from the store (and cassettes, which `show` and `diff` accept in place of
//! a run).
//! Everything printed passes the redactor again on its way out, so an
//! export is safe even if a detector improved since the run was recorded.
//! Only `import` writes to the data directory (creating the store when
//! there is none yet); the others never create anything in it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use sandbar_engine::DEFAULT_TENANT;
use sandbar_redact::{SharedRedactor, Sink};
use sandbar_store::{RunRecord, Store, StoreOptions};

use crate::exit::ExitCode;
use crate::timeline;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List recorded runs, newest first.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show at most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one run (or a cassette file) as a readable timeline.
    Show {
        /// A run id, a unique prefix of at least 4 characters, or a cassette file.
        run: String,
        /// Print the run and its events as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export one run.
    Export {
        /// A run id, or a unique prefix of at least 4 characters.
        run: String,
        /// The export format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of stdout (required for `cassette`,
        /// whose large bodies are written next to it).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Store a cassette as a run, so `runs show` and `runs diff` see it
    /// (the data directory's store is created if there is none yet).
    Import {
        /// The cassette (`.jsonl`).
        cassette: PathBuf,
    },
    /// Compare two runs (or cassettes): align their calls, show the first
    /// divergence and every differing field.
    ///
    /// Exit status: 0 when the runs are the same, 1 when they differ.
    Diff {
        /// A run id (or unique prefix), or a cassette file.
        left: String,
        /// A run id (or unique prefix), or a cassette file.
        right: String,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
        /// Argument paths to leave out of the comparison (repeatable), e.g.
        /// `timestamp` or `items[*].id`.
        #[arg(long, value_name = "PATH")]
        ignore: Vec<String>,
    },
}

impl RunsCommand {
    /// Whether the command writes to the data directory (only `import`
    /// does; the others only read it, and create nothing there).
    pub fn writes_data(&self) -> bool {
        matches!(self, RunsCommand::Import { .. })
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// A header line with the run, then one event per line.
    Jsonl,
    /// A cassette: the run's interactions, replayable with `sandbar replay`.
    Cassette,
}

pub async fn run(
    command: RunsCommand,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let store_redactor = redactor.for_sink(Sink::Store);
    let report_redactor = redactor.for_sink(Sink::Report);
    let redactor = redactor.for_sink(Sink::Export);
    match command {
        RunsCommand::Import { cassette } => {
            import(&cassette, data, store_redactor, &redactor).await
        }
        RunsCommand::Diff {
            left,
            right,
            json,
            ignore,
        } => {
            let sides = Sides {
                data,
                store_redactor,
                redactor: &report_redactor,
            };
            diff(sides, &left, &right, json, &ignore).await
        }
        RunsCommand::Show { run, json } if names_a_file(&run) => {
            show_cassette(Path::new(&run), json, &redactor)
        }
        RunsCommand::Export {
            format: ExportFormat::Cassette,
            output: None,
            ..
        } => {
            eprintln!("sandbar: a cassette export needs `--output FILE.jsonl`");
            Ok(ExitCode::Usage)
        }
        command => read_store(command, data, store_redactor, &redactor).await,
    }
}

/// `list`, `show` and `export`: read the store, which they never create.
async fn read_store(
    command: RunsCommand,
    data: &Path,
    store_redactor: SharedRedactor,
    redactor: &SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let Some(store) = open_existing(data, store_redactor).await? else {
        return Ok(match command {
            RunsCommand::List { json: true, .. } => {
                out!("[]");
                ExitCode::Success
            }
            RunsCommand::List { .. } => {
                out!("no runs recorded in {} yet", data.display());
                ExitCode::Success
            }
            RunsCommand::Show { run, .. } | RunsCommand::Export { run, .. } => {
                eprintln!(
                    "sandbar: no run matches `{run}`: no runs are recorded in {} yet",
                    data.display()
                );
                ExitCode::Failure
            }
            RunsCommand::Import { .. } | RunsCommand::Diff { .. } => ExitCode::Usage,
        });
    };
    let code = match command {
        RunsCommand::List { json, limit } => {
            let runs = store.list_runs(DEFAULT_TENANT, Some(limit)).await?;
            if json {
                let mut value = serde_json::to_value(&runs)?;
                redactor.redact_json(&mut value);
                out!("{}", serde_json::to_string_pretty(&value)?);
            } else if runs.is_empty() {
                out!("no runs recorded in {} yet", data.display());
            } else {
                out_raw!("{}", redactor.redact_str(&timeline::run_table(&runs)));
            }
            ExitCode::Success
        }
        RunsCommand::Show { run, json } => match find(&store, &run).await? {
            None => ExitCode::Failure,
            Some(record) => {
                let events = store.events(&record.id).await?;
                if json {
                    let mut value = json!({"run": record, "events": events});
                    redactor.redact_json(&mut value);
                    out!("{}", serde_json::to_string_pretty(&value)?);
                } else {
                    out_raw!(
                        "{}",
                        redactor.redact_str(&timeline::render(&record, &events))
                    );
                }
                ExitCode::Success
            }
        },
        RunsCommand::Export {
            run,
            format: ExportFormat::Cassette,
            output: Some(output),
        } => match find(&store, &run).await? {
            None => ExitCode::Failure,
            Some(record) => {
                let events = store.events(&record.id).await?;
                export_cassette(&record, &events, &output, redactor)?
            }
        },
        RunsCommand::Export {
            run,
            format: ExportFormat::Jsonl,
            output,
        } => match find(&store, &run).await? {
            None => ExitCode::Failure,
            Some(record) => {
                let events = store.events(&record.id).await?;
                export_jsonl(&record, &events, output.as_deref(), redactor)?;
                ExitCode::Success
            }
        },
        // Handled before the store is opened.
        RunsCommand::Export { output: None, .. }
        | RunsCommand::Import { .. }
        | RunsCommand::Diff { .. } => ExitCode::Usage,
    };
    store.close().await?;
    Ok(code)
}

/// Opens the store in `data` if there is one; creates nothing.
async fn open_existing(
    data: &Path,
    store_redactor: SharedRedactor,
) -> anyhow::Result<Option<Store>> {
    if !data.join("sandbar.db").is_file() {
        return Ok(None);
    }
    let store = Store::open(data, store_redactor, StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    Ok(Some(store))
}

/// `import`: the cassette is read (and checked) first, so a cassette that
/// cannot be imported leaves the data directory as it was; the store is
/// created when there is none yet (a fresh CI checkout).
async fn import(
    cassette: &Path,
    data: &Path,
    store_redactor: SharedRedactor,
    redactor: &SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let loaded = match crate::wiring::load_cassette(cassette) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("sandbar: {}", redactor.redact_str(&message));
            return Ok(ExitCode::Failure);
        }
    };
    let store = Store::open(data, store_redactor, StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    let imported =
        sandbar_engine::import_cassette(&store, &loaded, &cassette.display().to_string()).await;
    store.close().await?;
    let id = imported?;
    out!("imported {} as run {id}", cassette.display());
    Ok(ExitCode::Success)
}

fn export_cassette(
    record: &RunRecord,
    events: &[sandbar_store::EventRecord],
    output: &Path,
    redactor: &SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let mut cassette = sandbar_engine::cassette_of_run(record, events);
    cassette.header.mask_key = redactor.privacy().map(|p| p.key().id());
    if let Err(e) = cassette.write_to(output, redactor.for_sink(Sink::Cassette).snapshot()) {
        eprintln!("sandbar: {}", redactor.redact_str(&e.to_string()));
        return Ok(ExitCode::Failure);
    }
    out!(
        "wrote {} interactions of run {} to {}",
        cassette.interactions.len(),
        record.id,
        output.display()
    );
    Ok(ExitCode::Success)
}

fn export_jsonl(
    record: &RunRecord,
    events: &[sandbar_store::EventRecord],
    output: Option<&Path>,
    redactor: &SharedRedactor,
) -> anyhow::Result<()> {
    let mut out: Box<dyn std::io::Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut header = json!({"format": "sandbar-run", "version": 1, "run": record});
    redactor.redact_json(&mut header);
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    for event in events {
        let mut value: Value = serde_json::to_value(event)?;
        redactor.redact_json(&mut value);
        writeln!(out, "{}", serde_json::to_string(&value)?)?;
    }
    out.flush()?;
    Ok(())
}

/// Whether `name` names a cassette file rather than a run: it is a file,
/// or it looks like a path (run ids hold no path separator and no
/// extension), so that a missing file is reported as one.
fn names_a_file(name: &str) -> bool {
    let path = Path::new(name);
    path.is_file()
        || name.contains('/')
        || name.contains(std::path::MAIN_SEPARATOR)
        || path.extension().is_some()
}

fn show_cassette(path: &Path, json: bool, redactor: &SharedRedactor) -> anyhow::Result<ExitCode> {
    let cassette = match crate::wiring::load_cassette(path) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("sandbar: {}", redactor.redact_str(&message));
            return Ok(ExitCode::Failure);
        }
    };
    let (record, events) = sandbar_engine::run_of_cassette(&cassette, &path.display().to_string());
    if json {
        let mut value = json!({"run": record, "events": events});
        redactor.redact_json(&mut value);
        out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        out_raw!(
            "{}",
            redactor.redact_str(&timeline::render(&record, &events))
        );
    }
    Ok(ExitCode::Success)
}

/// Where the two sides of a comparison come from.
struct Sides<'a> {
    data: &'a Path,
    store_redactor: SharedRedactor,
    /// For what is printed.
    redactor: &'a SharedRedactor,
}

/// One side of a comparison: a cassette file, or a stored run.
async fn side(
    sides: &Sides<'_>,
    store: Option<&Store>,
    name: &str,
) -> anyhow::Result<Option<Vec<sandbar_cassette::Interaction>>> {
    if names_a_file(name) {
        return match crate::wiring::load_cassette(Path::new(name)) {
            Ok(c) => Ok(Some(c.interactions.clone())),
            Err(message) => {
                eprintln!("sandbar: {}", sides.redactor.redact_str(&message));
                Ok(None)
            }
        };
    }
    let Some(store) = store else {
        eprintln!(
            "sandbar: `{name}` is neither a cassette file nor a recorded run (no runs are recorded in {} yet)",
            sides.data.display()
        );
        return Ok(None);
    };
    let Some(record) = find(store, name).await? else {
        return Ok(None);
    };
    let events = store.events(&record.id).await?;
    Ok(Some(sandbar_engine::interactions(&events)))
}

async fn diff(
    sides: Sides<'_>,
    left: &str,
    right: &str,
    json: bool,
    ignore: &[String],
) -> anyhow::Result<ExitCode> {
    let mut options = sandbar_cassette::MatchOptions::default();
    for path in ignore {
        match path.parse::<sandbar_cassette::FieldPath>() {
            Ok(path) => options.default.rules.push(sandbar_cassette::PathRule {
                path,
                how: sandbar_cassette::PathMatch::Ignore,
            }),
            Err(e) => {
                eprintln!("sandbar: `--ignore {path}` is not a field path: {e}");
                return Ok(ExitCode::Usage);
            }
        }
    }
    // Two cassette files need no store; a run needs one that exists.
    let store = if names_a_file(left) && names_a_file(right) {
        None
    } else {
        open_existing(sides.data, sides.store_redactor.clone()).await?
    };
    let a = side(&sides, store.as_ref(), left).await?;
    let b = side(&sides, store.as_ref(), right).await?;
    if let Some(store) = store {
        store.close().await?;
    }
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(ExitCode::Failure);
    };
    let report = sandbar_cassette::diff_runs(left, &a, right, &b, &options);
    let redactor = sides.redactor;
    if json {
        let mut value = serde_json::to_value(&report)?;
        name_sides(&mut value);
        redactor.redact_json(&mut value);
        out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let text = redactor.redact_str(&report.to_string());
        out!("{}", text.trim_end_matches('\n'));
    }
    Ok(if report.identical {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// A run diff's field differences name their sides `recorded` and
/// `received`, the words of a replay's divergence report; in a comparison
/// of two runs they are the `left` and the `right` run, as everywhere else
/// in the report (`left`, `left_seq`...).
fn name_sides(report: &mut Value) {
    let Some(entries) = report.get_mut("entries").and_then(Value::as_array_mut) else {
        return;
    };
    for entry in entries {
        for part in ["params", "outcome", "notifications"] {
            let Some(diffs) = entry.get_mut(part).and_then(Value::as_array_mut) else {
                continue;
            };
            for diff in diffs {
                if let Value::Object(fields) = diff {
                    // Rebuilt in order, so `path`, `left`, `right` read as before.
                    *fields = std::mem::take(fields)
                        .into_iter()
                        .map(|(key, value)| match key.as_str() {
                            "recorded" => ("left".to_owned(), value),
                            "received" => ("right".to_owned(), value),
                            _ => (key, value),
                        })
                        .collect();
                }
            }
        }
    }
}

/// The run `id` (or unique prefix) names, saying on stderr when there is none.
async fn find(store: &Store, id: &str) -> anyhow::Result<Option<RunRecord>> {
    match store.find_run(DEFAULT_TENANT, id).await {
        Ok(Some(r)) => Ok(Some(r)),
        Ok(None) => {
            eprintln!(
                "sandbar: no run matches `{id}`; `sandbar runs list` shows the recorded runs"
            );
            Ok(None)
        }
        Err(e) => {
            eprintln!("sandbar: {e}");
            Ok(None)
        }
    }
}
