//! Results: what one invocation measured (as JSON and as a table), and the
//! side-by-side comparison of several invocations against a reference.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::load::ClientKind;

fn rmcp_client() -> ClientKind {
    ClientKind::Rmcp
}

/// Everything one invocation measured against one server.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// What the figures are called in comparisons.
    pub label: String,
    pub url: String,
    pub tool: String,
    pub arguments: Map<String, Value>,
    /// The protocol version the server agreed to.
    pub protocol_version: String,
    /// The server's name and version, as it gave them in `initialize`.
    pub server: String,
    /// The first text block of one answer, so that a reader can check that
    /// the servers compared did the same work.
    pub sample_text: String,
    /// Worker threads of the load generator's runtime.
    pub client_threads: usize,
    /// The client that drove the load (`--client`; reports written before
    /// the option existed were rmcp's).
    #[serde(default = "rmcp_client")]
    pub client: ClientKind,
    /// Whether TCP connections were reused between calls (`--keep-alive`,
    /// and always with the raw client).
    #[serde(default)]
    pub keep_alive: bool,
    pub results: Vec<LevelResult>,
}

/// How the load was applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every session sends its next call as soon as it has an answer.
    Closed,
    /// Calls go out on a fixed schedule.
    Rate,
}

/// One load level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelResult {
    pub mode: Mode,
    pub concurrency: usize,
    /// Fixed rate only: calls per second asked for.
    pub target_rate: Option<f64>,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Calls measured.
    pub calls: u64,
    /// Calls that failed (warm-up included).
    pub errors: u64,
    /// Fixed rate only: measured calls that went out late because their
    /// session was still waiting for the call before.
    pub held_back: u64,
    /// Fixed rate only: measured calls never sent.
    pub unsent: u64,
    /// Calls measured per second.
    pub throughput: f64,
    pub latency_us: Latency,
    /// Server CPU time (all threads) per measured call, in microseconds.
    pub server_cpu_us_per_call: Option<f64>,
    /// Server CPU use during the window, in cores (1.0 = one core busy).
    pub server_cores: Option<f64>,
    /// Load generator CPU time per measured call, in microseconds.
    pub client_cpu_us_per_call: Option<f64>,
    pub client_cores: Option<f64>,
    /// Server resident memory at the end of the window.
    pub server_rss_kib: Option<u64>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// From a histogram of nanoseconds.
    pub fn from_nanos(h: &Histogram<u64>) -> Latency {
        let us = |nanos: u64| nanos as f64 / 1000.0;
        if h.is_empty() {
            return Latency {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Latency {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

impl LevelResult {
    /// A short name for the load: `closed c=8` or `1000/s c=8`.
    pub fn load_name(&self) -> String {
        match (self.mode, self.target_rate) {
            (Mode::Rate, Some(rate)) => format!("{} calls/s, c={}", group(rate), self.concurrency),
            _ => format!("closed loop, c={}", self.concurrency),
        }
    }

    fn key(&self) -> (Mode, usize, Option<u64>) {
        (
            self.mode,
            self.concurrency,
            self.target_rate.map(|r| r.round() as u64),
        )
    }
}

/// The human table for one report.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} at {} — tools/call {} {} — server {} — protocol {} — {} client, threads {}, {}",
        report.label,
        report.url,
        report.tool,
        Value::Object(report.arguments.clone()),
        report.server,
        report.protocol_version,
        match report.client {
            ClientKind::Rmcp => "rmcp",
            ClientKind::Raw => "raw",
        },
        report.client_threads,
        if report.keep_alive {
            "connections reused"
        } else {
            "a new connection per call"
        }
    );
    let _ = writeln!(out, "sample answer: {:?}", report.sample_text);
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>12} {:>12}",
        "load",
        "calls/s",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "errors",
        "srv CPU µs",
        "cli CPU µs"
    );
    for r in &report.results {
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>7} {:>12} {:>12}",
            r.load_name(),
            group(r.throughput),
            r.latency_us.p50,
            r.latency_us.p90,
            r.latency_us.p99,
            r.latency_us.p999,
            r.latency_us.max,
            r.errors,
            optional(r.server_cpu_us_per_call, 1),
            optional(r.client_cpu_us_per_call, 1),
        );
        if r.held_back > 0 || r.unsent > 0 {
            let _ = writeln!(
                out,
                "{:<24} {} calls held back by the call before, {} never sent",
                "", r.held_back, r.unsent
            );
        }
    }
    out
}

/// A Markdown table of several reports side by side, every load level in
/// `reference`'s order, with each server's figures and its ratio to the
/// reference. Reports with the same label are one server's levels measured
/// in separate runs (a server restarted for every level, say): their levels
/// are taken together, in the order given.
pub fn compare(reports: &[Report], reference: &str) -> anyhow::Result<String> {
    let merged = merge_by_label(reports);
    let reports = &merged[..];
    let Some(base) = reports.iter().find(|r| r.label == reference) else {
        anyhow::bail!(
            "no report is labelled {reference:?} (labels: {:?})",
            reports.iter().map(|r| &r.label).collect::<Vec<_>>()
        );
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| load | server | calls/s | × {reference} calls/s | p50 µs | p90 µs | p99 µs | max µs | server CPU µs/call | × less server CPU/call | errors |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for level in &base.results {
        for report in reports {
            let Some(r) = report.results.iter().find(|r| r.key() == level.key()) else {
                continue;
            };
            // At a fixed rate every server that keeps up does the same
            // calls/s; the latency columns are the comparison there.
            let ratio = if level.throughput > 0.0 && r.mode == Mode::Closed {
                format!("{:.1}×", r.throughput / level.throughput)
            } else {
                "—".into()
            };
            let cpu_ratio = match (level.server_cpu_us_per_call, r.server_cpu_us_per_call) {
                (Some(b), Some(t)) if t > 0.0 => format!("{:.1}×", b / t),
                _ => "—".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
                r.load_name(),
                report.label,
                group(r.throughput),
                ratio,
                r.latency_us.p50,
                r.latency_us.p90,
                r.latency_us.p99,
                r.latency_us.max,
                optional(r.server_cpu_us_per_call, 1),
                cpu_ratio,
                r.errors,
            );
        }
    }
    Ok(out)
}

/// One report per label, in the order labels first appear, each with the
/// levels of every report of that label.
fn merge_by_label(reports: &[Report]) -> Vec<Report> {
    let mut merged: Vec<Report> = Vec::new();
    for report in reports {
        match merged.iter_mut().find(|m| m.label == report.label) {
            Some(m) => m.results.extend(report.results.iter().cloned()),
            None => merged.push(Report {
                label: report.label.clone(),
                url: report.url.clone(),
                tool: report.tool.clone(),
                arguments: report.arguments.clone(),
                protocol_version: report.protocol_version.clone(),
                server: report.server.clone(),
                sample_text: report.sample_text.clone(),
                client_threads: report.client_threads,
                client: report.client,
                keep_alive: report.keep_alive,
                results: report.results.clone(),
            }),
        }
    }
    merged
}

/// A Markdown table of what a proxy adds to latency: reports labelled
/// `base` (calls made directly) and `with` (the same calls through the
/// proxy), paired in the order given (the first `base` with the first
/// `with`, and so on: one pair per round), every load level of each pair on
/// a row of its own.
pub fn overhead(reports: &[Report], base: &str, with: &str) -> anyhow::Result<String> {
    let bases: Vec<&Report> = reports.iter().filter(|r| r.label == base).collect();
    let withs: Vec<&Report> = reports.iter().filter(|r| r.label == with).collect();
    if bases.is_empty() || bases.len() != withs.len() {
        anyhow::bail!(
            "need as many reports labelled {base:?} as {with:?}, at least one of each (got {} and {})",
            bases.len(),
            withs.len()
        );
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| load | client | round | {base} p50 µs | {with} p50 µs | overhead p50 µs | {base} p99 µs | {with} p99 µs | overhead p99 µs | {base} max µs | {with} max µs | {with} server CPU µs/call | errors |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for level in &bases[0].results {
        for (round, (b, w)) in bases.iter().zip(&withs).enumerate() {
            let (Some(x), Some(y)) = (
                b.results.iter().find(|r| r.key() == level.key()),
                w.results.iter().find(|r| r.key() == level.key()),
            ) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.0} | {:+.0} | {:.0} | {:.0} | {:+.0} | {:.0} | {:.0} | {} | {} |",
                x.load_name(),
                w.client_name(),
                round + 1,
                x.latency_us.p50,
                y.latency_us.p50,
                y.latency_us.p50 - x.latency_us.p50,
                x.latency_us.p99,
                y.latency_us.p99,
                y.latency_us.p99 - x.latency_us.p99,
                x.latency_us.max,
                y.latency_us.max,
                optional(y.server_cpu_us_per_call, 1),
                x.errors + y.errors,
            );
        }
    }
    Ok(out)
}

impl Report {
    /// `raw`, `rmcp` or `rmcp, new connection per call`.
    pub fn client_name(&self) -> &'static str {
        match (self.client, self.keep_alive) {
            (ClientKind::Raw, _) => "raw",
            (ClientKind::Rmcp, true) => "rmcp",
            (ClientKind::Rmcp, false) => "rmcp, new connection per call",
        }
    }
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

/// A whole number with thousands separators: `12,345`.
fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(
        mode: Mode,
        concurrency: usize,
        rate: Option<f64>,
        throughput: f64,
        cpu: f64,
    ) -> LevelResult {
        LevelResult {
            mode,
            concurrency,
            target_rate: rate,
            warmup_s: 1.0,
            duration_s: 10.0,
            calls: (throughput * 10.0) as u64,
            errors: 0,
            held_back: 0,
            unsent: 0,
            throughput,
            latency_us: Latency {
                p50: 100.0,
                p90: 200.0,
                p99: 300.0,
                p999: 400.0,
                max: 500.0,
                mean: 120.0,
            },
            server_cpu_us_per_call: Some(cpu),
            server_cores: Some(1.0),
            client_cpu_us_per_call: Some(10.0),
            client_cores: Some(0.5),
            server_rss_kib: Some(10_000),
        }
    }

    fn report(label: &str, results: Vec<LevelResult>) -> Report {
        Report {
            label: label.into(),
            url: "http://127.0.0.1:1/mcp".into(),
            tool: "echo".into(),
            arguments: Map::new(),
            protocol_version: "2025-11-25".into(),
            server: "x 1".into(),
            sample_text: "Echo: hi".into(),
            client_threads: 2,
            client: ClientKind::Rmcp,
            keep_alive: false,
            results,
        }
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        for (value, expected) in [
            (0.0, "0"),
            (999.4, "999"),
            (1000.0, "1,000"),
            (1_234_567.0, "1,234,567"),
            (-3.0, "0"),
        ] {
            assert_eq!(group(value), expected, "{value}");
        }
    }

    #[test]
    fn comparison_gives_ratios_against_the_reference() {
        let reference = report(
            "reference",
            vec![
                level(Mode::Closed, 8, None, 1000.0, 400.0),
                level(Mode::Rate, 8, Some(1000.0), 1000.0, 400.0),
            ],
        );
        let sandbar = report(
            "sandbar",
            vec![
                level(Mode::Closed, 8, None, 12_000.0, 40.0),
                level(Mode::Rate, 8, Some(1000.0), 1000.0, 50.0),
            ],
        );
        let table = compare(&[sandbar, reference], "reference").expect("compare");
        assert!(
            table.contains("| closed loop, c=8 | sandbar | 12,000 | 12.0× |"),
            "{table}"
        );
        assert!(table.contains("| 40.0 | 10.0× |"), "{table}");
        assert!(
            table.contains("| 1,000 calls/s, c=8 | sandbar | 1,000 | — |"),
            "{table}"
        );
        assert!(compare(&[], "reference").is_err());
    }

    #[test]
    fn reports_of_one_label_are_compared_together() {
        let reports = [
            report("peer", vec![level(Mode::Closed, 1, None, 100.0, 900.0)]),
            report("sandbar", vec![level(Mode::Closed, 1, None, 2000.0, 50.0)]),
            report("peer", vec![level(Mode::Closed, 8, None, 200.0, 900.0)]),
            report("sandbar", vec![level(Mode::Closed, 8, None, 5000.0, 45.0)]),
        ];
        let table = compare(&reports, "peer").expect("compare");
        assert!(
            table.contains("| closed loop, c=1 | sandbar | 2,000 | 20.0× |"),
            "{table}"
        );
        assert!(
            table.contains("| closed loop, c=8 | sandbar | 5,000 | 25.0× |"),
            "{table}"
        );
        let c1 = table.find("c=1 | sandbar").expect("c=1");
        let c8 = table.find("c=8 | peer").expect("c=8");
        assert!(c1 < c8, "levels in the reference's order: {table}");
    }

    #[test]
    fn overhead_pairs_rounds_in_order() {
        let mut direct1 = report("direct", vec![level(Mode::Closed, 1, None, 400.0, 900.0)]);
        let mut through1 = report("through", vec![level(Mode::Closed, 1, None, 380.0, 60.0)]);
        through1.results[0].latency_us.p50 = 160.0;
        through1.results[0].latency_us.p99 = 450.0;
        direct1.keep_alive = true;
        through1.keep_alive = true;
        let direct2 = report("direct", vec![level(Mode::Closed, 1, None, 400.0, 900.0)]);
        let through2 = report("through", vec![level(Mode::Closed, 1, None, 400.0, 70.0)]);
        let table = overhead(&[direct1, through1, direct2, through2], "direct", "through")
            .expect("overhead");
        assert!(
            table.contains("| closed loop, c=1 | rmcp | 1 | 100 | 160 | +60 | 300 | 450 | +150 |"),
            "{table}"
        );
        assert!(table.contains("| 2 | 100 | 100 | +0 |"), "{table}");
        assert!(overhead(&[report("direct", vec![])], "direct", "through").is_err());
    }

    #[test]
    fn latency_of_an_empty_histogram_is_zero() {
        let h = Histogram::<u64>::new(3).expect("histogram");
        assert_eq!(Latency::from_nanos(&h).p99, 0.0);
    }
}
