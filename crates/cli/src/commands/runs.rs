//! `sandbar runs list | show | export | import | diff`: reads recorded runs
//! from the store (and cassettes, which `show` and `diff` accept in place of
//! a run).
//! Everything printed passes the redactor again on its way out, so an
//! export is safe even if a detector improved since the run was recorded.

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
    /// Store a cassette as a run, so `runs show` and `runs diff` see it.
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
    if let RunsCommand::Diff {
        left,
        right,
        json,
        ignore,
    } = &command
        && !data.join("sandbar.db").exists()
        && Path::new(left).is_file()
        && Path::new(right).is_file()
    {
        return diff(None, left, right, *json, ignore, &report_redactor).await;
    }
    if let RunsCommand::Show { run, json } = &command
        && Path::new(run).is_file()
    {
        return show_cassette(Path::new(run), *json, &redactor);
    }
    if !data.join("sandbar.db").exists() {
        return match command {
            RunsCommand::List { json: true, .. } => {
                out!("[]");
                Ok(ExitCode::Success)
            }
            RunsCommand::List { .. } => {
                out!("no runs recorded in {} yet", data.display());
                Ok(ExitCode::Success)
            }
            _ => {
                eprintln!("sandbar: no runs recorded in {} yet", data.display());
                Ok(ExitCode::Failure)
            }
        };
    }
    let store = Store::open(data, store_redactor, StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
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
        RunsCommand::Show { run, json } => {
            let Some(record) = find(&store, &run).await? else {
                return Ok(ExitCode::Failure);
            };
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
        RunsCommand::Export {
            run,
            format: ExportFormat::Cassette,
            output,
        } => {
            let Some(output) = output else {
                eprintln!("sandbar: a cassette export needs `--output FILE.jsonl`");
                return Ok(ExitCode::Usage);
            };
            let Some(record) = find(&store, &run).await? else {
                return Ok(ExitCode::Failure);
            };
            let events = store.events(&record.id).await?;
            let mut cassette = sandbar_engine::cassette_of_run(&record, &events);
            cassette.header.mask_key = redactor.privacy().map(|p| p.key().id());
            if let Err(e) = cassette.write_to(&output, redactor.for_sink(Sink::Cassette).snapshot())
            {
                eprintln!("sandbar: {}", redactor.redact_str(&e.to_string()));
                return Ok(ExitCode::Failure);
            }
            out!(
                "wrote {} interactions of run {} to {}",
                cassette.interactions.len(),
                record.id,
                output.display()
            );
            ExitCode::Success
        }
        RunsCommand::Import { cassette } => {
            let loaded = match crate::wiring::load_cassette(&cassette) {
                Ok(c) => c,
                Err(message) => {
                    eprintln!("sandbar: {}", redactor.redact_str(&message));
                    return Ok(ExitCode::Failure);
                }
            };
            let id =
                sandbar_engine::import_cassette(&store, &loaded, &cassette.display().to_string())
                    .await?;
            out!("imported {} as run {id}", cassette.display());
            ExitCode::Success
        }
        RunsCommand::Diff {
            left,
            right,
            json,
            ignore,
        } => diff(Some(&store), &left, &right, json, &ignore, &report_redactor).await?,
        RunsCommand::Export {
            run,
            format: ExportFormat::Jsonl,
            output,
        } => {
            let Some(record) = find(&store, &run).await? else {
                return Ok(ExitCode::Failure);
            };
            let events = store.events(&record.id).await?;
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut header = json!({"format": "sandbar-run", "version": 1, "run": record});
            redactor.redact_json(&mut header);
            writeln!(out, "{}", serde_json::to_string(&header)?)?;
            for event in &events {
                let mut value: Value = serde_json::to_value(event)?;
                redactor.redact_json(&mut value);
                writeln!(out, "{}", serde_json::to_string(&value)?)?;
            }
            out.flush()?;
            ExitCode::Success
        }
    };
    store.close().await?;
    Ok(code)
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

/// One side of a comparison: a cassette file, or a stored run.
async fn side(
    store: Option<&Store>,
    name: &str,
) -> anyhow::Result<Option<Vec<sandbar_cassette::Interaction>>> {
    let path = Path::new(name);
    if path.is_file() {
        return match crate::wiring::load_cassette(path) {
            Ok(c) => Ok(Some(c.interactions.clone())),
            Err(message) => {
                eprintln!("sandbar: {message}");
                Ok(None)
            }
        };
    }
    let Some(store) = store else {
        eprintln!("sandbar: `{name}` is neither a cassette file nor a recorded run");
        return Ok(None);
    };
    let Some(record) = find(store, name).await? else {
        return Ok(None);
    };
    let events = store.events(&record.id).await?;
    Ok(Some(sandbar_engine::interactions(&events)))
}

async fn diff(
    store: Option<&Store>,
    left: &str,
    right: &str,
    json: bool,
    ignore: &[String],
    redactor: &SharedRedactor,
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
    let (Some(a), Some(b)) = (side(store, left).await?, side(store, right).await?) else {
        return Ok(ExitCode::Failure);
    };
    let report = sandbar_cassette::diff_runs(left, &a, right, &b, &options);
    if json {
        let mut value = serde_json::to_value(&report)?;
        redactor.redact_json(&mut value);
        out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        out_raw!("{}", redactor.redact_str(&report.to_string()));
    }
    Ok(if report.identical {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

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
