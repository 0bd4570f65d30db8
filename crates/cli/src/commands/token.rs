//! `sandbar token issue|list|revoke`: what agents hold instead of
//! credentials.
//!
//! A token is an opaque bearer value (`sbt_` and 43 random base62
//! characters), shown once when issued and stored only as its SHA-256. It
//! is bound to a tenant and optionally a scenario or a run, and carries a
//! scope: tools allowed and denied (globs), argument constraints per tool
//! (a JSON Schema or a CEL condition), upstreams and hosts reachable, a
//! call budget, a rate and an expiry. Revoking it takes effect on the next
//! call on every server sharing the store. Every issue and revoke is
//! written to the tenant's audit trail.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use sandbar_engine::access::{ArgConstraintSpec, RateSpec, ScopeSpec, TOKEN_PREFIX, hash_bearer};
use sandbar_redact::{SharedRedactor, Sink, SinkRedactor};
use sandbar_store::{NewAudit, Store, StoredToken};

use crate::exit::ExitCode;
use crate::keys;

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// The tenant the tokens belong to.
    #[arg(long, global = true, default_value = keys::DEFAULT_TENANT)]
    tenant: String,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a token and print it once (standard output); it cannot be
    /// shown again.
    Issue(Box<IssueArgs>),
    /// The tenant's tokens: id, name, binding, scope, use and state. Never
    /// the bearer values.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token; servers refuse its next call.
    Revoke { id: String },
}

#[derive(Debug, Args)]
struct IssueArgs {
    /// A label for people reading `token list`.
    #[arg(long, default_value = "")]
    name: String,
    /// Only valid for servers of the scenario with this name.
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
    /// Only valid for one run with this id: the first session that uses
    /// the token starts it, and the token opens no other.
    #[arg(long, value_name = "RUN_ID")]
    run: Option<String>,
    /// A tool name glob the token may call (repeatable; none = every tool).
    #[arg(long = "allow-tool", value_name = "GLOB")]
    allow_tools: Vec<String>,
    /// A tool name glob the token may never call (repeatable).
    #[arg(long = "deny-tool", value_name = "GLOB")]
    deny_tools: Vec<String>,
    /// TOOL_GLOB=FILE: the arguments of matching tools must satisfy the
    /// JSON Schema in FILE (repeatable).
    #[arg(long = "arg-schema", value_name = "TOOL=FILE")]
    arg_schemas: Vec<String>,
    /// TOOL_GLOB=CEL: a condition over the call (`args.amount <= 100`)
    /// that must hold for matching tools (repeatable).
    #[arg(long = "arg-rule", value_name = "TOOL=CEL")]
    arg_rules: Vec<String>,
    /// An upstream name glob the token's calls may reach (repeatable; none
    /// = every upstream).
    #[arg(long = "upstream", value_name = "GLOB")]
    upstreams: Vec<String>,
    /// Reach no upstream at all.
    #[arg(long, conflicts_with = "upstreams")]
    no_upstreams: bool,
    /// A host glob HTTP upstreams may be reached at (repeatable; none =
    /// every host).
    #[arg(long = "host", value_name = "GLOB")]
    hosts: Vec<String>,
    /// At most this many tool calls in the token's life.
    #[arg(long, value_name = "CALLS")]
    budget: Option<u64>,
    /// At most CALLS per DURATION, e.g. `10/1m` (per server).
    #[arg(long, value_name = "CALLS/DURATION")]
    rate: Option<String>,
    /// Expires this long after issue, e.g. `30m`, `8h`.
    #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
    expires_in: Option<String>,
    /// Expires at this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    expires_at: Option<String>,
    /// Print the token and its record as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(
    args: TokenArgs,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    if !super::valid_name(&args.tenant) {
        eprintln!(
            "sandbar: `{}` is not a tenant id (letters, digits, `_`, `-`, `.`)",
            args.tenant
        );
        return Ok(ExitCode::Usage);
    }
    // Everything about an issue is checked before the store is opened.
    let issue = match &args.command {
        TokenCommand::Issue(issue) => match scope_of(issue) {
            Ok(scope) => Some((issue, scope)),
            Err(message) => {
                eprintln!("sandbar: {}", redactor.redact_str(&message));
                return Ok(ExitCode::Usage);
            }
        },
        _ => None,
    };
    let store = crate::wiring::open_store(data, &redactor).await?;
    // Names and scopes are kept as given (configuration, like sealed
    // secrets); what is printed of them passes the redactor.
    let shown = redactor.for_sink(Sink::Export).snapshot();
    let result = match (&args.command, issue) {
        (TokenCommand::Issue(_), Some((issue, (scope, expires_at)))) => {
            issue_token(&store, &args.tenant, issue, scope, expires_at, &shown).await
        }
        (TokenCommand::List { json }, _) => list(&store, &args.tenant, *json, &shown).await,
        (TokenCommand::Revoke { id }, _) => revoke(&store, &args.tenant, id).await,
        (TokenCommand::Issue(_), None) => Ok(ExitCode::Usage),
    };
    store.close().await?;
    result
}

/// The scope and expiry an issue asks for, checked (globs, schemas and
/// conditions compile).
fn scope_of(args: &IssueArgs) -> Result<(ScopeSpec, Option<DateTime<Utc>>), String> {
    let mut constraints: BTreeMap<String, ArgConstraintSpec> = BTreeMap::new();
    for entry in &args.arg_schemas {
        let (tool, file) = entry
            .split_once('=')
            .ok_or_else(|| format!("--arg-schema takes TOOL=FILE, not `{entry}`"))?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read the argument schema {file}: {e}"))?;
        let schema: Value = serde_json::from_str(&text)
            .map_err(|e| format!("the argument schema {file} is not JSON: {e}"))?;
        constraints.entry(tool.to_owned()).or_default().schema = Some(schema);
    }
    for entry in &args.arg_rules {
        let (tool, rule) = entry
            .split_once('=')
            .ok_or_else(|| format!("--arg-rule takes TOOL=CEL, not `{entry}`"))?;
        let slot = &mut constraints.entry(tool.to_owned()).or_default().when;
        *slot = Some(match slot.take() {
            Some(earlier) => format!("({earlier}) && ({rule})"),
            None => rule.to_owned(),
        });
    }
    let rate = match &args.rate {
        Some(text) => {
            let (calls, per) = text
                .split_once('/')
                .ok_or_else(|| format!("--rate takes CALLS/DURATION, e.g. 10/1m, not `{text}`"))?;
            let calls: u32 = calls
                .trim()
                .parse()
                .map_err(|_| format!("--rate: `{calls}` is not a number of calls"))?;
            let per = sandbar_scenario::duration::parse_duration(per.trim())
                .map_err(|e| format!("--rate: {e}"))?;
            Some(RateSpec {
                calls,
                per_ms: u64::try_from(per.as_millis()).unwrap_or(u64::MAX),
            })
        }
        None => None,
    };
    let expires_at = match (&args.expires_in, &args.expires_at) {
        (Some(text), _) => {
            let d = sandbar_scenario::duration::parse_duration(text)
                .map_err(|e| format!("--expires-in: {e}"))?;
            Some(
                Utc::now()
                    + chrono::Duration::from_std(d).map_err(|e| format!("--expires-in: {e}"))?,
            )
        }
        (None, Some(text)) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|e| format!("--expires-at: `{text}` is not an RFC 3339 time: {e}"))?
                .with_timezone(&Utc),
        ),
        (None, None) => None,
    };
    if args.budget == Some(0) {
        return Err("--budget 0 would make a token that can do nothing".to_owned());
    }
    for id in args.run.iter().chain(args.scenario.iter()) {
        if id.is_empty() || id.len() > 128 {
            return Err(format!("`{id}` is not a valid run id or scenario name"));
        }
    }
    let scope = ScopeSpec {
        allow_tools: args.allow_tools.clone(),
        deny_tools: args.deny_tools.clone(),
        args: constraints,
        upstreams: if args.no_upstreams {
            Some(Vec::new())
        } else if args.upstreams.is_empty() {
            None
        } else {
            Some(args.upstreams.clone())
        },
        hosts: (!args.hosts.is_empty()).then(|| args.hosts.clone()),
        rate,
    };
    scope.compile()?;
    Ok((scope, expires_at))
}

async fn issue_token(
    store: &Store,
    tenant: &str,
    args: &IssueArgs,
    scope: ScopeSpec,
    expires_at: Option<DateTime<Utc>>,
    shown: &SinkRedactor,
) -> anyhow::Result<ExitCode> {
    let bearer = new_bearer()?;
    let id = format!("tok_{}", &uuid_hex()?[..16]);
    store.ensure_tenant(tenant, tenant).await?;
    let token = StoredToken {
        id: id.clone(),
        tenant: tenant.to_owned(),
        name: args.name.clone(),
        hash: hash_bearer(&bearer),
        scenario: args.scenario.clone(),
        run: args.run.clone(),
        scopes: serde_json::to_value(&scope)?,
        budget: args.budget,
        calls_used: 0,
        created_at: Utc::now(),
        expires_at,
        revoked_at: None,
    };
    store.put_token(token.clone()).await?;
    store
        .audit(&audit(
            tenant,
            "token.issue",
            json!({"token": id, "name": args.name, "scenario": args.scenario, "run": args.run,
                   "scope": scope, "budget": args.budget, "expires_at": expires_at}),
        ))
        .await?;
    if args.json {
        let mut record = describe(&token, shown);
        // The one place the bearer value is shown, once, on purpose.
        record["token"] = json!(bearer);
        out!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        out!("{bearer}");
        eprintln!(
            "sandbar: issued token {id} for tenant {tenant}; it is shown once. Give it to the agent as `Authorization: Bearer …` or SANDBAR_TOKEN."
        );
    }
    Ok(ExitCode::Success)
}

async fn list(
    store: &Store,
    tenant: &str,
    as_json: bool,
    shown: &SinkRedactor,
) -> anyhow::Result<ExitCode> {
    let tokens = store.tokens(tenant).await?;
    if as_json {
        let list: Vec<Value> = tokens.iter().map(|t| describe(t, shown)).collect();
        out!(
            "{}",
            serde_json::to_string_pretty(&json!({"tenant": tenant, "tokens": list}))?
        );
        return Ok(ExitCode::Success);
    }
    if tokens.is_empty() {
        out!("no tokens for tenant {tenant}");
        return Ok(ExitCode::Success);
    }
    out!(
        "{:<21} {:<9} {:<16} {:<11} {:<25} SCOPE",
        "ID",
        "STATE",
        "NAME",
        "CALLS",
        "EXPIRES"
    );
    for token in &tokens {
        let calls = match token.budget {
            Some(b) => format!("{}/{b}", token.calls_used),
            None => token.calls_used.to_string(),
        };
        let expires = token
            .expires_at
            .map_or_else(|| "never".to_owned(), sandbar_engine::format_time);
        out!(
            "{:<21} {:<9} {:<16} {:<11} {:<25} {}",
            token.id,
            state(token),
            shown.redact_str(&token.name),
            calls,
            expires,
            shown.redact_str(&summary(token))
        );
    }
    Ok(ExitCode::Success)
}

async fn revoke(store: &Store, tenant: &str, id: &str) -> anyhow::Result<ExitCode> {
    if !store.revoke_token(tenant, id, Utc::now()).await? {
        let known = store.token(tenant, id).await?;
        eprintln!(
            "sandbar: {}",
            match known {
                Some(_) => format!("token {id} was already revoked"),
                None => format!("tenant {tenant} has no token {id}"),
            }
        );
        return Ok(ExitCode::Failure);
    }
    store
        .audit(&audit(tenant, "token.revoke", json!({"token": id})))
        .await?;
    eprintln!("sandbar: token {id} revoked; its next call is refused");
    Ok(ExitCode::Success)
}

/// A token as `list --json` shows it: everything but the hash, redacted.
fn describe(token: &StoredToken, shown: &SinkRedactor) -> Value {
    let mut record = json!({
        "id": token.id,
        "tenant": token.tenant,
        "name": token.name,
        "state": state(token),
        "scenario": token.scenario,
        "run": token.run,
        "scope": token.scopes,
        "budget": token.budget,
        "calls_used": token.calls_used,
        "created_at": sandbar_engine::format_time(token.created_at),
        "expires_at": token.expires_at.map(sandbar_engine::format_time),
        "revoked_at": token.revoked_at.map(sandbar_engine::format_time),
    });
    shown.redact_json(&mut record);
    record
}

fn state(token: &StoredToken) -> &'static str {
    if token.revoked_at.is_some() {
        "revoked"
    } else if token.expires_at.is_some_and(|t| t <= Utc::now()) {
        "expired"
    } else if token.budget.is_some_and(|b| token.calls_used >= b) {
        "spent"
    } else {
        "active"
    }
}

/// One line about what a token may do.
fn summary(token: &StoredToken) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &token.scenario {
        parts.push(format!("scenario={s}"));
    }
    if let Some(r) = &token.run {
        parts.push(format!("run={r}"));
    }
    if let Ok(scope) = serde_json::from_value::<ScopeSpec>(token.scopes.clone()) {
        if !scope.allow_tools.is_empty() {
            parts.push(format!("tools={}", scope.allow_tools.join(",")));
        }
        if !scope.deny_tools.is_empty() {
            parts.push(format!("deny={}", scope.deny_tools.join(",")));
        }
        if !scope.args.is_empty() {
            parts.push(format!(
                "args:{}",
                scope.args.keys().cloned().collect::<Vec<_>>().join(",")
            ));
        }
        if let Some(u) = &scope.upstreams {
            parts.push(format!(
                "upstreams={}",
                if u.is_empty() {
                    "none".to_owned()
                } else {
                    u.join(",")
                }
            ));
        }
        if let Some(h) = &scope.hosts {
            parts.push(format!("hosts={}", h.join(",")));
        }
        if let Some(r) = scope.rate {
            parts.push(format!(
                "rate={}/{}",
                r.calls,
                sandbar_scenario::duration::format_duration(std::time::Duration::from_millis(
                    r.per_ms
                ))
            ));
        }
    }
    if parts.is_empty() {
        "everything".to_owned()
    } else {
        parts.join(" ")
    }
}

fn audit(tenant: &str, action: &str, detail: Value) -> NewAudit {
    NewAudit {
        tenant: tenant.to_owned(),
        actor: crate::commands::actor(),
        action: action.to_owned(),
        detail,
    }
}

/// `sbt_` and 43 base62 characters: 256 bits from the OS's generator.
fn new_bearer() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::from(TOKEN_PREFIX);
    let mut bytes = [0u8; 64];
    while out.len() < TOKEN_PREFIX.len() + 43 {
        getrandom::fill(&mut bytes)
            .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
        // Rejection sampling keeps every character equally likely.
        for b in bytes {
            if b < 248 && out.len() < TOKEN_PREFIX.len() + 43 {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

fn uuid_hex() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bearers_are_long_random_and_prefixed() {
        let a = new_bearer().unwrap();
        let b = new_bearer().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sbt_"));
        assert_eq!(a.len(), 4 + 43);
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
