//! `sandbar validate FILE...`: loads each file through the same path
//! `serve` uses and reports every problem, including those of the cassette
//! it replays from (loaded and checked as `serve` loads it).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use sandbar_redact::SharedRedactor;
use sandbar_scenario::{
    LoadError, Mode, Place, PlaceSegment, Problem, Scenario, load_path_with_vault,
};

use crate::exit::ExitCode;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
}

/// Problems quote the scenario's own lines, which may hold credentials; the
/// report passes the redactor like every other output.
/// Secrets the data directory's vault holds count as defined (when its key
/// is at hand).
pub async fn run(
    args: ValidateArgs,
    data: &std::path::Path,
    redactor: &SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let vault = match super::secret::open_vault(data, crate::keys::DEFAULT_TENANT, redactor).await {
        Ok(vault) => vault,
        Err(e) => {
            eprintln!(
                "sandbar: warning: the vault in {} could not be opened ({e:#}); its secrets are not known to this check",
                data.display()
            );
            None
        }
    };
    let mut all_valid = true;
    let mut report = Vec::new();
    for file in &args.files {
        match load_path_with_vault(file, vault.as_ref()).and_then(|s| with_cassette(file, s)) {
            Ok(scenario) => {
                if !args.json {
                    out!(
                        "{}: ok ({} tools, {} resources, {} resource templates, {} prompts, {} tables)",
                        file.display(),
                        scenario.tools.len(),
                        scenario.resources.len(),
                        scenario.resource_templates.len(),
                        scenario.prompts.len(),
                        scenario.tables.len()
                    );
                }
                report.push(
                    json!({"file": file.display().to_string(), "valid": true, "problems": []}),
                );
            }
            Err(error) => {
                all_valid = false;
                if !args.json {
                    out!("{}", redactor.redact_str(&error.detailed()));
                }
                report.push(json!({"file": file.display().to_string(), "valid": false, "problems": problems(&error)}));
            }
        }
    }
    if args.json {
        let mut report = serde_json::Value::Array(report);
        redactor.redact_json(&mut report);
        out!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if all_valid {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// What `serve` would refuse about the cassette the scenario replays
/// from: one that cannot be loaded (missing, malformed, of a newer major
/// version), or that lacks the catalog of an upstream in `replay` mode.
fn cassette_problems(scenario: &Scenario) -> Vec<Problem> {
    let Some(path) = scenario
        .replay
        .cassette
        .as_ref()
        .filter(|_| scenario.uses_replay())
    else {
        return Vec::new();
    };
    let place = Place(vec![
        PlaceSegment::Key("replay".to_owned()),
        PlaceSegment::Key("cassette".to_owned()),
    ]);
    let problem = |message: String| Problem {
        place: place.clone(),
        message,
    };
    let cassette = match crate::wiring::load_cassette(path) {
        Ok(cassette) => cassette,
        Err(message) => return vec![problem(message)],
    };
    // An upstream's items are replayed when its mode, or else the
    // scenario's, is `replay` (as the engine's offer decides); the engine
    // then offers them from the cassette's catalog of it.
    scenario
        .upstreams
        .iter()
        .filter(|u| u.mode.or(scenario.mode) == Some(Mode::Replay))
        .filter_map(|u| match cassette.header.upstreams.get(&u.name) {
            None => Some(problem(format!(
                "{}: upstream {} is in replay mode but the cassette has no catalog of it; record a run with it first",
                path.display(),
                u.name
            ))),
            Some(catalog) => serde_json::from_value::<sandbar_engine::Catalog>(catalog.clone())
                .err()
                .map(|e| {
                    problem(format!(
                        "{}: the cassette's catalog of upstream {} is malformed: {e}",
                        path.display(),
                        u.name
                    ))
                }),
        })
        .collect()
}

/// The scenario, or the problems of the cassette it replays from, each
/// with its line and column in the scenario file.
fn with_cassette(file: &std::path::Path, scenario: Scenario) -> Result<Scenario, LoadError> {
    let problems = cassette_problems(&scenario);
    if problems.is_empty() {
        return Ok(scenario);
    }
    let text = std::fs::read_to_string(file).unwrap_or_default();
    Err(LoadError::Invalid {
        file: file.display().to_string(),
        problems: sandbar_scenario::locate(&text, problems),
    })
}

fn problems(error: &LoadError) -> Vec<serde_json::Value> {
    match error {
        LoadError::Syntax { line, column, message, .. } => {
            vec![json!({"line": line, "column": column, "place": null, "message": message})]
        }
        LoadError::Invalid { problems, .. } => problems
            .iter()
            .map(|p| json!({"line": p.line, "column": p.column, "place": p.place, "message": p.message}))
            .collect(),
        other => vec![json!({"line": null, "column": null, "place": null, "message": other.to_string()})],
    }
}
