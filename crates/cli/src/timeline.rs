//! Human-readable views of runs: the `runs list` table and the `runs show`
//! timeline.

use std::fmt::Write as _;

use serde_json::Value;

use sandbar_store::{Direction, EventKind, EventRecord, RunRecord};

/// Longest excerpt of a payload shown on one timeline line.
const EXCERPT: usize = 120;

/// The `runs list` table.
pub fn run_table(runs: &[RunRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:<20} {:<11} {:>6}  {:<9} STARTED",
        "RUN", "SCENARIO", "STATUS", "EVENTS", "TRANSPORT"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:<30} {:<20} {:<11} {:>6}  {:<9} {}",
            r.id,
            truncate(&r.scenario_name, 20),
            r.status.to_string(),
            r.event_count,
            r.transport,
            r.started_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    out
}

/// The `runs show` timeline.
pub fn render(run: &RunRecord, events: &[EventRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} · scenario {} ({}) · seed {} · {} · {}",
        run.id,
        run.scenario_name,
        &run.scenario_hash[..run.scenario_hash.len().min(12)],
        run.seed,
        run.transport,
        run.status
    );
    let _ = writeln!(
        out,
        "started {} · virtual clock from {} · {} events\n",
        run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        run.clock_start.format("%Y-%m-%dT%H:%M:%SZ"),
        events.len()
    );
    for e in events {
        let arrow = match (e.direction, e.kind) {
            (_, EventKind::Fault | EventKind::Divergence | EventKind::Leak) => "!",
            (_, EventKind::Policy) if e.payload.get("decision") == Some(&Value::from("deny")) => {
                "!"
            }
            (Direction::ToServer, _) => "→",
            (Direction::ToClient, _) => "←",
            (Direction::Internal, _) => "·",
        };
        let method = e.method.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "{:>4}  {}  {}  {:<26} {}",
            e.seq,
            e.virtual_time.format("%H:%M:%S%.3f"),
            arrow,
            method,
            summary(e)
        );
    }
    out
}

fn summary(e: &EventRecord) -> String {
    let p = &e.payload;
    let text = match (e.kind, e.method.as_deref()) {
        (EventKind::Request, Some("tools/call")) => format!(
            "{} {}",
            p.get("name").and_then(Value::as_str).unwrap_or("?"),
            p.get("arguments").map(compact).unwrap_or_default()
        ),
        (EventKind::Request, Some("initialize")) => format!(
            "client {} {} · protocol {}",
            p.pointer("/clientInfo/name")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            p.pointer("/clientInfo/version")
                .and_then(Value::as_str)
                .unwrap_or(""),
            p.get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
        (EventKind::Response, Some("tools/call")) => {
            let result = p.get("result").unwrap_or(p);
            let is_error = result
                .get("isError")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let body = result
                .get("structuredContent")
                .map(compact)
                .or_else(|| {
                    result
                        .pointer("/content/0/text")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| compact(result));
            format!("{} {}", if is_error { "tool error:" } else { "ok:" }, body)
        }
        (EventKind::Response, Some("initialize")) => format!(
            "ok · protocol {}",
            p.pointer("/result/protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
        (EventKind::Response, _) => match p.get("result") {
            Some(r) if r.as_object().is_some_and(|m| m.is_empty()) => "ok".to_owned(),
            Some(r) => format!("ok: {}", compact(r)),
            None => compact(p),
        },
        (EventKind::Error, _) => format!(
            "error {}: {}",
            p.pointer("/error/code").map(compact).unwrap_or_default(),
            p.pointer("/error/message")
                .and_then(Value::as_str)
                .or(p.get("message").and_then(Value::as_str))
                .unwrap_or("")
        ),
        (EventKind::Fault, _) => format!(
            "fault on {} call {}: {}{}",
            p.get("tool").and_then(Value::as_str).unwrap_or("?"),
            p.get("call").map(compact).unwrap_or_default(),
            p.get("action").and_then(Value::as_str).unwrap_or("?"),
            p.get("latency_ms")
                .and_then(Value::as_u64)
                .map(|ms| format!(" after {ms}ms"))
                .unwrap_or_default()
        ),
        (EventKind::Divergence, _) => format!(
            "divergence ({}): {}{}",
            p.get("policy").and_then(Value::as_str).unwrap_or("fail"),
            p.get("reason").and_then(Value::as_str).unwrap_or("?"),
            p.pointer("/candidates/0/seq")
                .map(|seq| format!(" · closest recorded call #{seq}"))
                .unwrap_or_default()
        ),
        (EventKind::Leak, _) => format!(
            "leak: canary `{}` in {}{}{}",
            p.get("canary").and_then(Value::as_str).unwrap_or("?"),
            p.get("where").and_then(Value::as_str).unwrap_or("?"),
            p.get("subject")
                .and_then(Value::as_str)
                .map(|s| format!(" of {s}"))
                .unwrap_or_default(),
            if p.get("blocked").and_then(Value::as_bool) == Some(true) {
                " · blocked"
            } else {
                " · let through"
            }
        ),
        (EventKind::Policy, _) => policy_summary(p),
        _ => compact(p),
    };
    truncate(&text, EXCERPT)
}

/// `policy allow lookup_order (token tok_…)`, `policy deny issue_refund by
/// rule big-refunds: refunds over 500 need a human`, `policy approval
/// apr_… requested for send_email by rule mail`.
fn policy_summary(p: &Value) -> String {
    let text = |key: &str| p.get(key).and_then(Value::as_str);
    let subject = text("tool")
        .map(str::to_owned)
        .or_else(|| text("upstream").map(|u| format!("upstream {u}")))
        .unwrap_or_else(|| "?".to_owned());
    let rule = text("rule")
        .map(|r| format!(" by rule {r}"))
        .unwrap_or_default();
    let token = text("token")
        .map(|t| format!(" (token {t})"))
        .unwrap_or_default();
    match text("decision") {
        Some("approval_requested") => format!(
            "policy approval {} requested for {subject}{rule}",
            text("approval").unwrap_or("?")
        ),
        Some("deny") => format!(
            "policy deny {subject}{rule}{token}: {}",
            text("message").unwrap_or("")
        ),
        Some(decision) => format!("policy {decision} {subject}{rule}{token}"),
        None => compact(p),
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}
