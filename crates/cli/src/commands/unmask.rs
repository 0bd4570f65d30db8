//! `sandbar unmask TOKEN... --kind KIND --reason TEXT`: the explicit way
//! back from a token (the `tokenize` operator's output) to the value it
//! stands for, for holders of the key; and `sandbar audit`, the trail that
//! every unmask leaves first.
//!
//! An unmask is written to the tenant's audit trail (who, why, which kind,
//! which tokens; never the values) before any value is printed: when the
//! entry cannot be made durable, nothing is revealed.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use sandbar_mask::{PersonalKind, detokenize};
use sandbar_redact::{SharedRedactor, Sink};
use sandbar_store::NewAudit;

use crate::exit::ExitCode;
use crate::keys;

#[derive(Debug, Args)]
pub struct UnmaskArgs {
    /// Tokens to turn back into the values they stand for.
    #[arg(value_name = "TOKEN", required = true)]
    tokens: Vec<String>,
    /// What kind of value the tokens stand for (`email`, `phone`,
    /// `payment_card`, `iban`, `us_ssn`, `ip_address`, `mac_address`,
    /// `date_of_birth`, `postal_address`, `person_name`).
    #[arg(long)]
    kind: String,
    /// Why: written to the audit trail with the unmask.
    #[arg(long)]
    reason: String,
    /// Who asks (default `cli:` and the login name).
    #[arg(long)]
    actor: Option<String>,
    /// The tenant whose key made the tokens.
    #[arg(long, default_value = keys::DEFAULT_TENANT)]
    tenant: String,
    /// The master masking key file (default: SANDBAR_MASK_KEY, else
    /// DATA/keys/mask.key).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The tenant whose trail to show.
    #[arg(long, default_value = keys::DEFAULT_TENANT)]
    tenant: String,
    /// Print the entries as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn unmask(
    args: UnmaskArgs,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let Some(kind) = PersonalKind::ALL
        .iter()
        .copied()
        .find(|k| k.as_str() == args.kind)
    else {
        let names: Vec<&str> = PersonalKind::ALL.iter().map(|k| k.as_str()).collect();
        eprintln!(
            "sandbar: unknown kind `{}`; kinds are {}",
            args.kind,
            names.join(", ")
        );
        return Ok(ExitCode::Usage);
    };
    if args.reason.trim().is_empty() {
        eprintln!("sandbar: say why with --reason: it goes to the audit trail");
        return Ok(ExitCode::Usage);
    }
    let key = match keys::tenant_key(args.key_file.as_deref(), data, &args.tenant) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("sandbar: {message}");
            return Ok(ExitCode::Failure);
        }
    };
    // Every token first: one that does not decrypt reveals nothing else.
    let mut values = Vec::with_capacity(args.tokens.len());
    for token in &args.tokens {
        match detokenize(kind, token, &key) {
            Ok(value) => values.push(value),
            Err(e) => {
                eprintln!("sandbar: `{token}` is not a {} token: {e}", kind.as_str());
                return Ok(ExitCode::Failure);
            }
        }
    }
    let actor = args.actor.unwrap_or_else(super::actor);
    let store = crate::wiring::open_store(data, &redactor).await?;
    let written = store
        .audit(&NewAudit {
            tenant: args.tenant.clone(),
            actor,
            action: "unmask".to_owned(),
            detail: json!({
                "kind": kind.as_str(),
                "count": values.len(),
                "reason": args.reason,
                "key": key.id(),
            }),
        })
        .await;
    store.close().await?;
    if let Err(e) = written {
        eprintln!("sandbar: the unmask could not be audited, so nothing is shown: {e}");
        return Ok(ExitCode::Failure);
    }
    for value in values {
        out!("{value}");
    }
    Ok(ExitCode::Success)
}

pub async fn audit(
    args: AuditArgs,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    if !data.join(sandbar_store::DB_FILE).exists() {
        eprintln!("sandbar: no store in {} yet", data.display());
        return Ok(ExitCode::Failure);
    }
    let store = crate::wiring::open_store(data, &redactor).await?;
    let trail = store.audit_trail(&args.tenant).await;
    store.close().await?;
    let trail = trail?;
    let export = redactor.for_sink(Sink::Export);
    // The first entry whose hash or link is wrong: everything from there
    // on cannot be trusted.
    let mut broken = None;
    let mut prev = sandbar_store::AUDIT_GENESIS.to_owned();
    for entry in &trail {
        if entry.prev_hash != prev || entry.hash != entry.expected_hash() {
            broken = Some(entry.seq);
            break;
        }
        prev = entry.hash.clone();
    }
    if args.json {
        let mut value = json!({"tenant": args.tenant, "entries": trail, "broken_at": broken});
        export.redact_json(&mut value);
        out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for entry in &trail {
            let line = format!(
                "#{} {} {} {} {}",
                entry.seq,
                entry.at.format("%Y-%m-%dT%H:%M:%SZ"),
                entry.actor,
                entry.action,
                entry.detail
            );
            out!("{}", export.redact_str(&line));
        }
        match broken {
            Some(seq) => {
                out!("chain broken at entry #{seq}: it was changed or removed after it was written")
            }
            None => out!("{} entries, chain intact", trail.len()),
        }
    }
    Ok(if broken.is_some() {
        ExitCode::Failure
    } else {
        ExitCode::Success
    })
}
