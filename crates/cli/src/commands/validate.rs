//! `sandbar validate FILE...`: loads each file through the same path
//! `serve` uses and reports every problem.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use sandbar_redact::SharedRedactor;
use sandbar_scenario::{LoadError, load_path_with_vault};

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
        match load_path_with_vault(file, vault.as_ref()) {
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
