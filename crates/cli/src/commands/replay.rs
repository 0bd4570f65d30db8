//! `sandbar replay CASSETTE`: serves a recording alone, as an MCP server.
//! The engine gets an empty scenario named after the recording and answers
//! every call from the cassette; it is given no upstream, so nothing can be
//! forwarded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::Args;

use sandbar_engine::{Engine, EngineOptions};
use sandbar_redact::SharedRedactor;
use sandbar_scenario::Scenario;

use crate::commands::serve::{FrontArgs, Served, serve_engine};
use crate::exit::ExitCode;
use crate::wiring;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The cassette (`.jsonl`) to serve.
    #[arg(value_name = "CASSETTE")]
    cassette: PathBuf,
    /// Calls must come in the recorded order; any other call is a divergence.
    #[arg(long, conflicts_with = "repeat")]
    strict_order: bool,
    /// When a call's recorded answers are used up, give the last one again
    /// instead of an error (by default the n-th identical call gets the n-th
    /// recorded answer, and a call beyond them diverges).
    #[arg(long)]
    repeat: bool,
    #[command(flatten)]
    front: FrontArgs,
}

impl ReplayArgs {
    /// The file the command reads first: the cassette.
    pub fn input(&self) -> &std::path::Path {
        &self.cassette
    }
}

pub async fn run(
    args: ReplayArgs,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let cassette = match wiring::load_cassette(&args.cassette) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("sandbar: {}", redactor.redact_str(&message));
            return Ok(ExitCode::Failure);
        }
    };
    wiring::check_mask_key(&cassette, &args.cassette, &redactor);
    let header = &cassette.header;
    let clock_start = DateTime::parse_from_rfc3339(&header.clock_start)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let mut scenario = Scenario::empty(
        &header.scenario.name,
        &header.scenario.hash,
        header.seed,
        clock_start,
    );
    if let Some(info) = header.server.as_ref().and_then(|s| s.get("info")) {
        let text = |key: &str| info.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        if let Some(name) = text("name") {
            scenario.server.name = name;
        }
        scenario.server.version = text("version");
        scenario.server.instructions = text("instructions");
    }
    scenario.replay.strict_order = args.strict_order;
    scenario.replay.repeat = args.repeat;
    let store = crate::wiring::open_store(data, &redactor).await?;
    let options = EngineOptions {
        cassette: Some(cassette),
        replay_only: true,
        ..EngineOptions::default()
    };
    let engine = match Engine::build(Arc::new(scenario), store.clone(), &redactor, options).await {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("sandbar: {}", redactor.redact_str(&e.to_string()));
            store.close().await?;
            return Ok(ExitCode::Failure);
        }
    };
    let label = args.cassette.display().to_string();
    let served = Served {
        label: &label,
        data,
        cassettes: None,
    };
    serve_engine(engine, store, &args.front, None, served).await
}
