//! `sandbar runs list | show | export`: reads recorded runs from the store.
//! Everything printed passes the redactor again on its way out, so an
//! export is safe even if a detector improved since the run was recorded.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use sandbar_engine::DEFAULT_TENANT;
use sandbar_redact::SharedRedactor;
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
    /// Show one run as a readable timeline.
    Show {
        /// A run id, or a unique prefix of at least 4 characters.
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
        /// Write to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// A header line with the run, then one event per line.
    Jsonl,
}

pub async fn run(
    command: RunsCommand,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
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
    let store = Store::open(data, redactor.clone(), StoreOptions::default())
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
