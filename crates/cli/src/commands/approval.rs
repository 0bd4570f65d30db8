//! `sandbar approvals`, `sandbar approve ID`, `sandbar deny ID`: a person's
//! decision on calls that a scenario's policy holds for approval.
//!
//! A waiting call is in the store with the hash of its exact arguments; a
//! decision is recorded against that hash (or, with `--args-hash`, against
//! the hash the approver reviewed elsewhere), and the server lets the call
//! through only when the two agree. Every decision is written to the
//! tenant's audit trail. Works across processes: the server waiting on the
//! call reads the decision from the shared store.

use std::path::Path;

use clap::Args;
use serde_json::json;

use sandbar_redact::SharedRedactor;
use sandbar_store::{ApprovalDecision, ApprovalRecord, ApprovalStatus, Decided, NewAudit};

use crate::exit::ExitCode;
use crate::keys;

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// The tenant whose approvals to list.
    #[arg(long, default_value = keys::DEFAULT_TENANT)]
    tenant: String,
    /// Decided and expired ones too, not only those waiting.
    #[arg(long)]
    all: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The approval's id (`apr_…`), as `sandbar approvals` lists it.
    id: String,
    /// Why; kept with the decision and shown to the agent on a denial.
    #[arg(long)]
    reason: Option<String>,
    /// The arguments' hash the decision is for, when it was reviewed
    /// elsewhere; a call whose arguments hash differently is not let through.
    #[arg(long, value_name = "SHA256")]
    args_hash: Option<String>,
    /// The tenant the approval belongs to.
    #[arg(long, default_value = keys::DEFAULT_TENANT)]
    tenant: String,
}

pub async fn list(
    args: ApprovalsArgs,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let store = crate::wiring::open_store(data, &redactor).await?;
    let approvals = store.approvals(&args.tenant, !args.all).await;
    store.close().await?;
    // A call whose server went away leaves its approval pending past its
    // time: nobody can let it through any more, so it is not waiting.
    let now = chrono::Utc::now();
    let mut approvals = approvals?;
    if !args.all {
        approvals.retain(|a| a.expires_at > now);
    }
    if args.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&json!({"tenant": args.tenant, "approvals": approvals}))?
        );
        return Ok(ExitCode::Success);
    }
    if approvals.is_empty() {
        out!(
            "no {}approvals for tenant {}",
            if args.all { "" } else { "pending " },
            args.tenant
        );
    }
    for a in &approvals {
        out!("{}", line(a));
    }
    Ok(ExitCode::Success)
}

fn line(a: &ApprovalRecord) -> String {
    format!(
        "{}  {:<8}  run {}  tool {}  rule {}  by {}  until {}\n    arguments {}\n    args hash {}{}",
        a.id,
        if a.status == ApprovalStatus::Pending && a.expires_at <= chrono::Utc::now() {
            "expired"
        } else {
            a.status.as_str()
        },
        a.run_id,
        a.tool,
        a.rule,
        a.requested_by,
        sandbar_engine::format_time(a.expires_at),
        a.arguments,
        a.args_hash,
        match (&a.decided_by, &a.reason) {
            (Some(by), Some(reason)) => format!("\n    decided by {by}: {reason}"),
            (Some(by), None) => format!("\n    decided by {by}"),
            _ => String::new(),
        }
    )
}

pub async fn decide(
    args: DecideArgs,
    approve: bool,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    if let Some(hash) = &args.args_hash
        && (hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()))
    {
        eprintln!("sandbar: --args-hash takes the 64 hex digits `sandbar approvals` shows");
        return Ok(ExitCode::Usage);
    }
    let store = crate::wiring::open_store(data, &redactor).await?;
    let result = async {
        let Some(request) = store
            .approval(&args.id)
            .await?
            .filter(|a| a.tenant == args.tenant)
        else {
            eprintln!("sandbar: tenant {} has no approval {}", args.tenant, args.id);
            return Ok(ExitCode::Failure);
        };
        let by = super::actor();
        let args_hash = args
            .args_hash
            .as_deref()
            .map_or_else(|| request.args_hash.clone(), str::to_ascii_lowercase);
        let decided = store
            .decide_approval(
                &args.tenant,
                &args.id,
                ApprovalDecision {
                    approve,
                    by: by.clone(),
                    args_hash: args_hash.clone(),
                    reason: args.reason.clone(),
                },
                chrono::Utc::now(),
            )
            .await?;
        let verb = if approve { "approved" } else { "denied" };
        match decided {
            Decided::Recorded(_) => {
                store
                    .audit(&NewAudit {
                        tenant: args.tenant.clone(),
                        actor: by,
                        action: format!("approval.{}", if approve { "approve" } else { "deny" }),
                        detail: json!({
                            "approval": args.id,
                            "run": request.run_id,
                            "tool": request.tool,
                            "rule": request.rule,
                            "args_hash": args_hash,
                            "matches_request": args_hash == request.args_hash,
                            "reason": args.reason,
                        }),
                    })
                    .await?;
                if args_hash != request.args_hash {
                    eprintln!(
                        "sandbar: {} {verb} for arguments hashing to {args_hash}, which are not the waiting call's ({}); that call will not go through",
                        args.id, request.args_hash
                    );
                } else {
                    eprintln!("sandbar: {} {verb}: {} in run {}", args.id, request.tool, request.run_id);
                }
                Ok(ExitCode::Success)
            }
            Decided::NotFound => {
                eprintln!("sandbar: tenant {} has no approval {}", args.tenant, args.id);
                Ok(ExitCode::Failure)
            }
            Decided::AlreadyDecided(status) => {
                eprintln!("sandbar: {} was already {}", args.id, status.as_str());
                Ok(ExitCode::Failure)
            }
            Decided::Expired => {
                eprintln!(
                    "sandbar: {} expired before this decision; the call was refused",
                    args.id
                );
                Ok(ExitCode::Failure)
            }
        }
    }
    .await;
    store.close().await?;
    result
}
