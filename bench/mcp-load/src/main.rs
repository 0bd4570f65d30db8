//! `sandbar-bench-mcp-load`: drives `tools/call` load at an MCP server over
//! Streamable HTTP and reports throughput and latency.
//!
//! ```text
//! sandbar-bench-mcp-load --url http://127.0.0.1:7332/mcp --tool echo \
//!     --args '{"message":"hi"}' --concurrency 1,8,32 --duration 10s --warmup 3s
//! sandbar-bench-mcp-load --url ... --no-closed --rate 200,1000 --rate-sessions 8
//! sandbar-bench-mcp-load compare --reference server-everything a.json b.json
//! ```
//!
//! Each load level opens its sessions (each initializes once), warms up,
//! measures, and closes them. Pass `--server-pid` to also sample the
//! server's CPU time per call, the figure that stays meaningful when client
//! and server share the machine's cores. The default client is rmcp's,
//! which opens a new TCP connection for every request (`--keep-alive`
//! reuses connections instead); `--client raw` is this program's own
//! minimal Streamable HTTP client (`raw.rs`), which costs the shared cores
//! a fraction of rmcp's CPU per call.
//! `bench/mcp-throughput.sh` runs it against Sandbar and the reference
//! TypeScript server side by side; `mcp-floor-server`, in this package, is
//! the SDK-only baseline it also measures.

mod load;
mod procstat;
mod raw;
mod report;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use rmcp::model::ProtocolVersion;
use serde_json::{Map, Value};
use tokio::time::Instant;

use load::{ClientKind, Schedule, Session, Tally, Target, Window};
use procstat::Process;
use report::{Latency, LevelResult, Mode, Report};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Drives tools/call load at an MCP server over Streamable HTTP and reports throughput and latency."
)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints a Markdown table of several JSON reports side by side, with
    /// each one's ratio to the reference.
    Compare(CompareArgs),
    /// Prints a Markdown table of the latency a proxy adds: reports of calls
    /// made directly and through the proxy, paired round by round.
    Overhead(OverheadArgs),
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// The server's Streamable HTTP endpoint.
    #[arg(long, required = true)]
    url: Option<String>,
    /// The tool to call.
    #[arg(long, default_value = "echo")]
    tool: String,
    /// The tool's arguments, a JSON object.
    #[arg(
        long = "args",
        default_value = r#"{"message":"hello"}"#,
        value_name = "JSON"
    )]
    arguments: String,
    /// Closed-loop levels: concurrent sessions, each sending its next call
    /// as soon as it has an answer; one level per comma-separated value.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    concurrency: Vec<usize>,
    /// Skip the closed-loop levels (run only the `--rate` ones).
    #[arg(long)]
    no_closed: bool,
    /// Measured time per level (`10s`, `500ms`, `1m`, or seconds).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured time per level before the measured time.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: Duration,
    /// Fixed-rate levels, after the closed-loop ones: calls per second in
    /// total, sent on a schedule and timed from their scheduled send time;
    /// one level per comma-separated value.
    #[arg(long, value_delimiter = ',', value_name = "CALLS_PER_SECOND")]
    rate: Vec<f64>,
    /// Sessions that share each fixed-rate level's schedule.
    #[arg(long, default_value_t = 8)]
    rate_sessions: usize,
    /// The protocol version to ask for in `initialize`.
    #[arg(long, default_value = "2025-11-25")]
    protocol_version: String,
    /// Fail unless the first text block of an answer is exactly this.
    #[arg(long, value_name = "TEXT")]
    expect_text: Option<String>,
    /// The server's process id, to sample its CPU time and memory (Linux).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// What to call this server in reports (default: its name from `initialize`).
    #[arg(long)]
    label: Option<String>,
    /// Also write the report as JSON to this file (`-` for stdout, in
    /// place of the table).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// The client: `rmcp` (the official Rust SDK's) or `raw` (this
    /// program's own minimal Streamable HTTP client over kept-alive
    /// HTTP/1.1 connections, which leaves more of the cores to the server).
    #[arg(long, value_enum, default_value = "rmcp")]
    client: ClientKind,
    /// rmcp client: reuse TCP connections between calls (a pooling HTTP
    /// client) instead of rmcp's default of one new connection per request.
    /// The raw client always reuses them.
    #[arg(long)]
    keep_alive: bool,
    /// A bearer token to send with every request (`--client raw`), for
    /// servers that require one. From the environment, so it stays out of
    /// process lists.
    #[arg(long, env = "MCP_LOAD_BEARER", hide_env_values = true)]
    bearer: Option<String>,
    /// Worker threads of the load generator (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// A second endpoint, called with the same tool and arguments: every
    /// session of every level opens a session with both, and alternates
    /// its calls between them (A B, B A, A B, …), so both see the same
    /// machine at the same moments. Two reports come out: `--label` and
    /// `--json` for `--url`, `--paired-label` and `--paired-json` for this
    /// one. For the latency a proxy adds: `--url` the upstream, this the
    /// proxy in front of it.
    #[arg(long, value_name = "URL")]
    paired_url: Option<String>,
    /// What to call the second endpoint in reports.
    #[arg(long, default_value = "through", requires = "paired_url")]
    paired_label: String,
    /// The second endpoint's server process id, to sample its CPU time.
    #[arg(long, value_name = "PID", requires = "paired_url")]
    paired_server_pid: Option<u32>,
    /// Write the second endpoint's report as JSON to this file.
    #[arg(long, value_name = "PATH", requires = "paired_url")]
    paired_json: Option<PathBuf>,
    /// Apply no load: open one session, make this many calls one after the
    /// other, print each answer's text, and close it (to record a session
    /// through a recording proxy, for instance).
    #[arg(long, value_name = "N")]
    calls: Option<u64>,
}

#[derive(Debug, Args)]
struct OverheadArgs {
    /// The label of the reports of direct calls.
    #[arg(long, default_value = "direct")]
    base: String,
    /// The label of the reports of calls through the proxy.
    #[arg(long = "with", default_value = "through")]
    with: String,
    /// JSON reports written with `--json`; the n-th `base` report is paired
    /// with the n-th `with` report.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The label of the report the others are compared with.
    #[arg(long)]
    reference: String,
    /// JSON reports written with `--json`.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Compare(args)) => compare(&args),
        Some(Command::Overhead(args)) => overhead(&args),
        None => run_load(cli.load),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbar-bench-mcp-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    let reports = read_reports(&args.reports)?;
    let table = report::compare(&reports, &args.reference)?;
    write_stdout(&table)
}

fn read_reports(paths: &[PathBuf]) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let report: Report = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a report", path.display()))?;
        reports.push(report);
    }
    Ok(reports)
}

fn overhead(args: &OverheadArgs) -> anyhow::Result<()> {
    let reports = read_reports(&args.reports)?;
    let table = report::overhead(&reports, &args.base, &args.with)?;
    write_stdout(&table)
}

fn run_load(args: LoadArgs) -> anyhow::Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    if let Some(count) = args.calls {
        return runtime.block_on(session(&args, count));
    }
    let reports = runtime.block_on(measure(&args, threads))?;
    let paths = [args.json.as_deref(), args.paired_json.as_deref()];
    for (report, path) in reports.iter().zip(paths) {
        match path {
            Some(path) if path.as_os_str() == "-" => {
                write_stdout(&format!("{}\n", serde_json::to_string_pretty(report)?))?;
                eprint!("{}", report::table(report));
            }
            Some(path) => {
                std::fs::write(path, serde_json::to_string_pretty(report)? + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?;
                write_stdout(&report::table(report))?;
            }
            None => write_stdout(&report::table(report))?,
        }
    }
    let errors: u64 = reports
        .iter()
        .flat_map(|r| &r.results)
        .map(|r| r.errors)
        .sum();
    if errors > 0 {
        anyhow::bail!("{errors} calls failed; the figures above are not trustworthy");
    }
    Ok(())
}

/// What every call sends, and where, from the command line.
fn target(args: &LoadArgs, url: Option<&String>) -> anyhow::Result<Target> {
    let url = url.cloned().context("--url is required")?;
    let arguments: Map<String, Value> =
        serde_json::from_str(&args.arguments).context("--args must be a JSON object")?;
    let protocol_version: ProtocolVersion =
        serde_json::from_value(Value::String(args.protocol_version.clone()))
            .context("--protocol-version")?;
    let raw = match args.client {
        ClientKind::Raw => {
            let endpoint =
                raw::Endpoint::new(&url, &args.tool, &arguments, &args.protocol_version)?;
            Some(match &args.bearer {
                Some(token) => endpoint.with_bearer(token)?,
                None => endpoint,
            })
        }
        ClientKind::Rmcp if args.bearer.is_some() => {
            anyhow::bail!("a bearer token is sent by --client raw only")
        }
        ClientKind::Rmcp => None,
    };
    Ok(Target {
        url,
        tool: args.tool.clone(),
        arguments,
        protocol_version,
        keep_alive: args.keep_alive || args.client == ClientKind::Raw,
        client: args.client,
        raw,
        expect_text: args.expect_text.clone(),
    })
}

/// `--calls N`: one session, N calls, no load.
async fn session(args: &LoadArgs, count: u64) -> anyhow::Result<()> {
    let target = Arc::new(target(args, args.url.as_ref())?);
    let session = load::connect(&target).await?;
    let peer = session.peer()?;
    eprintln!(
        "session with {} (protocol {}) at {}",
        peer.server, peer.protocol_version, target.url
    );
    let mut failed = None;
    for n in 1..=count {
        match load::call(&session, &target).await {
            Ok(text) => write_stdout(&format!("{n}: {text}\n"))?,
            Err(e) => {
                failed = Some(format!("call {n} failed: {e}"));
                break;
            }
        }
    }
    load::close_all(&target, vec![Arc::new(session)]).await;
    match failed {
        Some(message) => anyhow::bail!(message),
        None => Ok(()),
    }
}

async fn measure(args: &LoadArgs, threads: usize) -> anyhow::Result<Vec<Report>> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        anyhow::bail!("--concurrency needs positive values");
    }
    if args.rate.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        anyhow::bail!("--rate needs positive numbers of calls per second");
    }
    if args.rate_sessions == 0 {
        anyhow::bail!("--rate-sessions must be positive");
    }
    let closed = if args.no_closed {
        &[][..]
    } else {
        &args.concurrency[..]
    };
    let levels: Vec<Level> = closed
        .iter()
        .map(|&concurrency| Level {
            concurrency,
            rate: None,
        })
        .chain(args.rate.iter().map(|&rate| Level {
            concurrency: args.rate_sessions,
            rate: Some(rate),
        }))
        .collect();
    if levels.is_empty() {
        anyhow::bail!("no load levels: give --concurrency or --rate");
    }
    let mut endpoints = vec![Endpoint {
        target: Arc::new(target(args, args.url.as_ref())?),
        label: args.label.clone(),
        server: args.server_pid.map(Process::pid),
    }];
    if let Some(url) = &args.paired_url {
        endpoints.push(Endpoint {
            target: Arc::new(target(args, Some(url))?),
            label: Some(args.paired_label.clone()),
            server: args.paired_server_pid.map(Process::pid),
        });
    }

    // One session with each endpoint first, to learn who the server is and
    // check its answer (every call is checked against --expect-text too).
    let mut reports = Vec::new();
    for endpoint in &endpoints {
        let target = &endpoint.target;
        let probe = load::connect(target).await?;
        let peer = probe.peer()?;
        let sample_text = load::call(&probe, target)
            .await
            .map_err(|e| anyhow::anyhow!("the first {} call failed: {e}", target.tool))?;
        load::close_all(target, vec![Arc::new(probe)]).await;
        reports.push(Report {
            label: endpoint
                .label
                .clone()
                .unwrap_or_else(|| peer.server.clone()),
            url: target.url.clone(),
            tool: target.tool.clone(),
            arguments: target.arguments.clone(),
            protocol_version: peer.protocol_version,
            server: peer.server,
            sample_text,
            client_threads: threads,
            client: args.client,
            keep_alive: target.keep_alive,
            results: Vec::new(),
        });
    }

    for level in levels {
        eprintln!(
            "{}: {} sessions, {}, {:?} warm-up + {:?} measured",
            reports
                .iter()
                .map(|r| r.label.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            level.concurrency,
            level
                .rate
                .map_or_else(|| "closed loop".to_owned(), |r| format!("{r} calls/s")),
            args.warmup,
            args.duration
        );
        let results = measure_level(&endpoints, level, args).await?;
        for ((result, first_error), report) in results.into_iter().zip(&mut reports) {
            if let Some(e) = &first_error {
                eprintln!("  first error ({}): {e}", report.label);
            }
            report.results.push(result);
        }
    }
    Ok(reports)
}

/// One endpoint under load, and what its reports are called.
struct Endpoint {
    target: Arc<Target>,
    label: Option<String>,
    server: Option<Process>,
}

/// One load level.
#[derive(Debug, Clone, Copy)]
struct Level {
    concurrency: usize,
    /// Calls per second, or `None` for a closed loop.
    rate: Option<f64>,
}

/// One level: connect, warm up, measure, close. Returns each endpoint's
/// result and first error.
async fn measure_level(
    endpoints: &[Endpoint],
    level: Level,
    args: &LoadArgs,
) -> anyhow::Result<Vec<(LevelResult, Option<String>)>> {
    let concurrency = level.concurrency;
    let mut sessions: Vec<Vec<Arc<Session>>> = Vec::new();
    for endpoint in endpoints {
        sessions.push(load::connect_all(&endpoint.target, concurrency).await?);
    }
    // Give every session a moment to finish connecting its side streams
    // before the clock starts.
    let begin = Instant::now() + Duration::from_millis(100);
    let window = Window {
        begin,
        start: begin + args.warmup,
        end: begin + args.warmup + args.duration,
    };

    let samplers: Vec<_> = endpoints
        .iter()
        .map(|e| tokio::spawn(sample_cpu(window, e.server.clone())))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..concurrency {
        let legs: Vec<load::Leg> = endpoints
            .iter()
            .zip(&sessions)
            .map(|(e, s)| (s[index].clone(), e.target.clone()))
            .collect();
        match level.rate {
            None => tasks.spawn(load::closed_loop(legs, window)),
            Some(rate) => {
                let schedule = Schedule {
                    rate,
                    session: index,
                    sessions: concurrency,
                };
                tasks.spawn(load::fixed_rate(legs, window, schedule))
            }
        };
    }
    let mut totals = endpoints
        .iter()
        .map(|_| Tally::new())
        .collect::<anyhow::Result<Vec<_>>>()?;
    while let Some(joined) = tasks.join_next().await {
        for (total, tally) in totals
            .iter_mut()
            .zip(joined.context("a load task panicked")??)
        {
            total.merge(tally)?;
        }
    }
    // The client's CPU is spread over the calls of every endpoint.
    let all_calls: u64 = totals.iter().map(|t| t.latency.len()).sum();
    let mut results = Vec::new();
    for ((endpoint, sampler), (total, sessions)) in endpoints
        .iter()
        .zip(samplers)
        .zip(totals.into_iter().zip(sessions))
    {
        let cpu = sampler.await.context("the CPU sampler panicked")?;
        let rss = endpoint.server.as_ref().and_then(Process::rss_kib);
        load::close_all(&endpoint.target, sessions).await;
        results.push((
            level_result(level, args, &total, &cpu, rss, all_calls),
            total.first_error,
        ));
    }
    Ok(results)
}

fn level_result(
    level: Level,
    args: &LoadArgs,
    total: &Tally,
    cpu: &CpuUse,
    rss: Option<u64>,
    all_calls: u64,
) -> LevelResult {
    let seconds = args.duration.as_secs_f64();
    let calls = total.latency.len();
    let per_call = |cpu_seconds: Option<f64>, calls: u64| {
        cpu_seconds
            .filter(|_| calls > 0)
            .map(|s| s * 1e6 / calls as f64)
    };
    LevelResult {
        mode: if level.rate.is_some() {
            Mode::Rate
        } else {
            Mode::Closed
        },
        concurrency: level.concurrency,
        target_rate: level.rate,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: seconds,
        calls,
        errors: total.errors,
        held_back: total.held_back,
        unsent: total.unsent,
        throughput: calls as f64 / seconds,
        latency_us: Latency::from_nanos(&total.latency),
        server_cpu_us_per_call: per_call(cpu.server, calls),
        server_cores: cpu.server.map(|s| s / seconds),
        client_cpu_us_per_call: per_call(cpu.client, all_calls),
        // Both endpoints' reports show the whole client.
        client_cores: cpu.client.map(|s| s / seconds),
        server_rss_kib: rss,
    }
}

/// CPU seconds spent by the server and by this process during the window.
struct CpuUse {
    server: Option<f64>,
    client: Option<f64>,
}

async fn sample_cpu(window: Window, server: Option<Process>) -> CpuUse {
    let client = Process::current();
    tokio::time::sleep_until(window.start).await;
    let before = (
        server.as_ref().and_then(Process::cpu_seconds),
        client.cpu_seconds(),
    );
    tokio::time::sleep_until(window.end).await;
    let after = (
        server.as_ref().and_then(Process::cpu_seconds),
        client.cpu_seconds(),
    );
    let spent = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    CpuUse {
        server: spent(before.0, after.0),
        client: spent(before.1, after.1),
    }
}

/// `10s`, `250ms`, `2m`, or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        let check = |text: &str, expected: Option<Duration>| {
            assert_eq!(parse_duration(text).ok(), expected, "{text}")
        };
        check("10s", Some(Duration::from_secs(10)));
        check("250ms", Some(Duration::from_millis(250)));
        check("2m", Some(Duration::from_secs(120)));
        check("1.5", Some(Duration::from_millis(1500)));
        check("10h", None);
        check("soon", None);
        check("-1s", None);
    }

    #[test]
    fn the_command_line_parses() {
        let cli = Cli::try_parse_from([
            "x",
            "--url",
            "http://127.0.0.1:1/mcp",
            "--concurrency",
            "1,8",
            "--rate",
            "200,1000",
        ])
        .expect("parse");
        assert_eq!(cli.load.concurrency, vec![1, 8]);
        assert_eq!(cli.load.rate, vec![200.0, 1000.0]);
        assert_eq!(cli.load.rate_sessions, 8);
        assert_eq!(
            cli.load.client,
            ClientKind::Rmcp,
            "rmcp is the default client"
        );
        let cli = Cli::try_parse_from(["x", "--url", "http://127.0.0.1:1/mcp", "--client", "raw"])
            .expect("parse --client raw");
        assert_eq!(cli.load.client, ClientKind::Raw);
        let cli = Cli::try_parse_from(["x", "compare", "--reference", "peer", "a.json"])
            .expect("parse compare");
        assert!(matches!(cli.command, Some(Command::Compare(_))));
        assert!(
            Cli::try_parse_from(["x", "--concurrency", "8"]).is_err(),
            "--url is required"
        );
    }
}
