//! The load itself: MCP client sessions over Streamable HTTP and the two
//! ways of driving them.
//!
//! - *Closed loop* ([`closed_loop`]): every session sends its next
//!   `tools/call` as soon as the previous one is answered. The completed
//!   calls per second are the throughput the server sustains at that
//!   concurrency.
//! - *Fixed rate* ([`fixed_rate`]): calls are sent on a schedule, spread
//!   evenly over the sessions (wrk2's scheme: session `i` of `C` owns the
//!   send times `(i + kC) / rate`). A call that could not be sent on time
//!   because the session was still waiting for the call before it is timed
//!   from its *scheduled* send time, so a server stall is charged to every
//!   call it delayed rather than hidden (coordinated omission). A call sent
//!   late only because the client's timer woke late (tokio timers tick once
//!   a millisecond) is timed from its actual send time: that slack is the
//!   client's, not the server's.
//!
//! Every session initializes once, before any timing starts. A session is
//! either rmcp's client (the default) or the load generator's own minimal
//! client ([`crate::raw`], `--client raw`); both are driven the same way.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rmcp::ServiceExt as _;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::raw;

/// The longest latency the histograms hold; longer calls are clamped to it
/// (and still counted).
const MAX_TRACKED: Duration = Duration::from_secs(60);

/// How long past the end of the measured window a fixed-rate session keeps
/// sending calls it is behind on before it gives up on them.
const BACKLOG_GRACE: Duration = Duration::from_secs(5);

/// A session that errs this often stops early: the server is broken or gone,
/// and spinning on instant failures would only burn the CPU it shares.
const MAX_ERRORS_PER_SESSION: u64 = 100;

/// Which client speaks to the server.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// rmcp's client: a full MCP peer, the official Rust SDK's.
    Rmcp,
    /// The load generator's own: kept-alive HTTP/1.1, a pre-serialized
    /// call, a small share of the CPU (see `raw.rs`).
    Raw,
}

/// What every call sends, and where.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    pub tool: String,
    pub arguments: Map<String, Value>,
    pub protocol_version: ProtocolVersion,
    /// Reuse TCP connections between calls. rmcp's default client opens a
    /// new connection for every POST (it disables pooling to dodge
    /// delayed-ACK stalls after unread SSE bodies); this uses a pooling
    /// reqwest client instead, as HTTP clients usually do.
    pub keep_alive: bool,
    pub client: ClientKind,
    /// The raw client's endpoint and serialized call (`--client raw`).
    pub raw: Option<raw::Endpoint>,
    /// A call whose first text block is not this one fails.
    pub expect_text: Option<String>,
}

/// One initialized MCP client session.
#[derive(Debug)]
pub enum Session {
    Rmcp(RunningService<RoleClient, ClientConfig>),
    Raw(raw::Session),
}

/// Who the server said it is, and the protocol version it agreed to.
#[derive(Debug, Clone)]
pub struct Peer {
    pub server: String,
    pub protocol_version: String,
}

impl Session {
    pub fn peer(&self) -> anyhow::Result<Peer> {
        match self {
            Session::Rmcp(session) => {
                let info = session
                    .peer_info()
                    .context("the server sent no initialize result")?;
                Ok(Peer {
                    server: info.server_info.as_ref().map_or_else(
                        || "(unnamed server)".to_owned(),
                        |i| format!("{} {}", i.name, i.version),
                    ),
                    protocol_version: info.protocol_version.to_string(),
                })
            }
            Session::Raw(session) => Ok(Peer {
                server: session.info.server.clone(),
                protocol_version: session.info.protocol_version.clone(),
            }),
        }
    }

    async fn close(self, target: &Target) {
        match self {
            Session::Rmcp(session) => {
                let _ = session.cancel().await;
            }
            Session::Raw(session) => {
                if let Some(endpoint) = &target.raw {
                    session.close(endpoint).await;
                }
            }
        }
    }
}

/// Opens a session: connects and completes the `initialize` handshake.
pub async fn connect(target: &Target) -> anyhow::Result<Session> {
    match (target.client, &target.raw) {
        (ClientKind::Raw, Some(endpoint)) => raw::connect(endpoint)
            .await
            .map(Session::Raw)
            .with_context(|| format!("cannot open an MCP session with {}", target.url)),
        (ClientKind::Raw, None) => anyhow::bail!("the raw client has no endpoint"),
        (ClientKind::Rmcp, _) => connect_rmcp(target).await.map(Session::Rmcp),
    }
}

async fn connect_rmcp(target: &Target) -> anyhow::Result<RunningService<RoleClient, ClientConfig>> {
    let identity = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("sandbar-bench-mcp-load", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(target.protocol_version.clone());
    let transport = if target.keep_alive {
        let client = reqwest::Client::builder()
            .build()
            .context("cannot build an HTTP client")?;
        StreamableHttpClientTransport::with_client(
            client,
            StreamableHttpClientTransportConfig::with_uri(target.url.clone()),
        )
    } else {
        StreamableHttpClientTransport::from_uri(target.url.clone())
    };
    identity
        .serve(transport)
        .await
        .with_context(|| format!("cannot open an MCP session with {}", target.url))
}

/// Opens `count` sessions at once.
pub async fn connect_all(target: &Arc<Target>, count: usize) -> anyhow::Result<Vec<Arc<Session>>> {
    let mut pending = tokio::task::JoinSet::new();
    for index in 0..count {
        let target = target.clone();
        pending.spawn(async move { (index, connect(&target).await) });
    }
    let mut sessions: Vec<Option<Arc<Session>>> = (0..count).map(|_| None).collect();
    while let Some(joined) = pending.join_next().await {
        let (index, session) = joined.context("a connecting task panicked")?;
        sessions[index] = Some(Arc::new(session?));
    }
    Ok(sessions.into_iter().flatten().collect())
}

/// Closes sessions, so the server can release them before the next level.
pub async fn close_all(target: &Arc<Target>, sessions: Vec<Arc<Session>>) {
    let mut closing = tokio::task::JoinSet::new();
    for session in sessions {
        let target = target.clone();
        closing.spawn(async move {
            if let Ok(session) = Arc::try_unwrap(session) {
                session.close(&target).await;
            }
        });
    }
    while closing.join_next().await.is_some() {}
}

/// Makes one call; a transport failure, a JSON-RPC error, a tool error
/// (`isError`) or an answer other than `--expect-text` is an `Err` with its
/// message. On success, returns the first text block.
pub async fn call(session: &Session, target: &Target) -> Result<String, String> {
    let text = match session {
        Session::Rmcp(session) => call_rmcp(session, target).await?,
        Session::Raw(session) => match &target.raw {
            Some(endpoint) => session.call(endpoint).await?,
            None => return Err("the raw client has no endpoint".into()),
        },
    };
    match &target.expect_text {
        Some(expected) if &text != expected => Err(format!(
            "the server answered {text:?}, expected {expected:?}"
        )),
        _ => Ok(text),
    }
}

async fn call_rmcp(
    session: &RunningService<RoleClient, ClientConfig>,
    target: &Target,
) -> Result<String, String> {
    let request =
        CallToolRequestParams::new(target.tool.clone()).with_arguments(target.arguments.clone());
    match session.call_tool(request).await {
        Ok(result) if result.is_error == Some(true) => Err(format!(
            "the tool answered with an error: {}",
            first_text(&result)
        )),
        Ok(result) => Ok(first_text(&result)),
        Err(e) => Err(e.to_string()),
    }
}

fn first_text(result: &rmcp::model::CallToolResult) -> String {
    serde_json::to_value(result)
        .ok()
        .and_then(|v| {
            v.pointer("/content/0/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// When warm-up ends and measurement starts, and when measurement ends.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When the sessions start sending (the warm-up starts).
    pub begin: Instant,
    /// When the measured window starts.
    pub start: Instant,
    /// When the measured window ends.
    pub end: Instant,
}

/// What one session saw.
#[derive(Debug)]
pub struct Tally {
    /// Latency of every call measured, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Calls that failed anywhere (warm-up included).
    pub errors: u64,
    pub first_error: Option<String>,
    /// Fixed rate only: measured calls sent late because the session was
    /// still waiting for the call before.
    pub held_back: u64,
    /// Fixed rate only: scheduled calls never sent, because the session was
    /// still too far behind when the grace period ran out.
    pub unsent: u64,
}

impl Tally {
    pub fn new() -> anyhow::Result<Tally> {
        let max = u64::try_from(MAX_TRACKED.as_nanos()).unwrap_or(u64::MAX);
        Ok(Tally {
            latency: Histogram::new_with_bounds(1, max, 3).context("histogram bounds")?,
            errors: 0,
            first_error: None,
            held_back: 0,
            unsent: 0,
        })
    }

    fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(nanos);
    }

    fn failed(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }

    /// Adds another session's tally to this one.
    pub fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.latency
            .add(&other.latency)
            .context("merging histograms")?;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.held_back += other.held_back;
        self.unsent += other.unsent;
        Ok(())
    }
}

/// One endpoint a load task calls: a session with it, and what to send.
/// A task with two legs alternates its calls between them (`--paired-url`).
pub type Leg = (Arc<Session>, Arc<Target>);

/// Which leg a task's `k`-th call goes to: with two legs, calls alternate,
/// and each pair of calls starts with the other leg than the pair before
/// (A B, B A, A B, …), so neither leg always follows the other.
fn leg_of(k: u64, legs: usize) -> usize {
    let legs_u = legs as u64;
    let round = k / legs_u;
    ((k + round) % legs_u) as usize
}

/// Sends calls back to back from `window.begin` to `window.end`; measures
/// the calls that complete inside the measured window. One tally per leg.
pub async fn closed_loop(legs: Vec<Leg>, window: Window) -> anyhow::Result<Vec<Tally>> {
    let mut tallies = legs
        .iter()
        .map(|_| Tally::new())
        .collect::<anyhow::Result<Vec<_>>>()?;
    tokio::time::sleep_until(window.begin).await;
    let mut k = 0u64;
    loop {
        let sent = Instant::now();
        let errors: u64 = tallies.iter().map(|t| t.errors).sum();
        if sent >= window.end || errors >= MAX_ERRORS_PER_SESSION {
            break;
        }
        let leg = leg_of(k, legs.len());
        k += 1;
        let (session, target) = &legs[leg];
        let result = call(session, target).await;
        let done = Instant::now();
        let tally = &mut tallies[leg];
        match result {
            Ok(_) if done >= window.start && done <= window.end => tally.record(done - sent),
            Ok(_) => {}
            Err(message) => tally.failed(message),
        }
    }
    Ok(tallies)
}

/// Which share of a fixed-rate schedule one session sends.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Calls per second, over all sessions.
    pub rate: f64,
    /// This session's index.
    pub session: usize,
    /// How many sessions share the schedule.
    pub sessions: usize,
}

impl Schedule {
    /// The send time of this session's `k`-th call.
    fn send_time(&self, begin: Instant, k: u64) -> Instant {
        let slot = self.session as f64 + k as f64 * self.sessions as f64;
        begin + Duration::from_secs_f64(slot / self.rate)
    }
}

/// Sends this session's share of a fixed-rate schedule from `window.begin`
/// to `window.end`; measures the calls scheduled inside the measured window.
pub async fn fixed_rate(
    legs: Vec<Leg>,
    window: Window,
    schedule: Schedule,
) -> anyhow::Result<Vec<Tally>> {
    let mut tallies = legs
        .iter()
        .map(|_| Tally::new())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let give_up = window.end + BACKLOG_GRACE;
    let mut k = 0u64;
    loop {
        let scheduled = schedule.send_time(window.begin, k);
        if scheduled >= window.end {
            break;
        }
        let measured = scheduled >= window.start;
        let now = Instant::now();
        let errors: u64 = tallies.iter().map(|t| t.errors).sum();
        if now >= give_up || errors >= MAX_ERRORS_PER_SESSION {
            // Count what this session still owed inside the measured window.
            let mut owed = k;
            while schedule.send_time(window.begin, owed) < window.end {
                if schedule.send_time(window.begin, owed) >= window.start {
                    tallies[leg_of(owed, legs.len())].unsent += 1;
                }
                owed += 1;
            }
            break;
        }
        let leg = leg_of(k, legs.len());
        let (session, target) = &legs[leg];
        let tally = &mut tallies[leg];
        k += 1;
        let origin = if now > scheduled {
            // Still busy with the previous call when this one was due: time
            // it from when it should have gone out.
            if measured {
                tally.held_back += 1;
            }
            scheduled
        } else {
            tokio::time::sleep_until(scheduled).await;
            Instant::now()
        };
        let result = call(session, target).await;
        let done = Instant::now();
        match result {
            Ok(_) if measured => tally.record(done - origin),
            Ok(_) => {}
            Err(message) => tally.failed(message),
        }
    }
    Ok(tallies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_interleaves_sessions_evenly() {
        let begin = Instant::now();
        let at = |session, k| {
            let schedule = Schedule {
                rate: 1000.0,
                session,
                sessions: 4,
            };
            schedule.send_time(begin, k) - begin
        };
        assert_eq!(at(0, 0), Duration::ZERO);
        assert_eq!(at(1, 0), Duration::from_millis(1));
        assert_eq!(at(3, 0), Duration::from_millis(3));
        assert_eq!(at(0, 1), Duration::from_millis(4));
        assert_eq!(at(2, 10), Duration::from_millis(42));
    }

    #[test]
    fn paired_calls_alternate_and_each_pair_starts_with_the_other_leg() {
        let order: Vec<usize> = (0..8).map(|k| leg_of(k, 2)).collect();
        assert_eq!(order, [0, 1, 1, 0, 0, 1, 1, 0]);
        assert!((0..100).all(|k| leg_of(k, 1) == 0));
    }

    #[test]
    fn tallies_merge_counts_and_keep_the_first_error() {
        let mut a = Tally::new().expect("tally");
        let mut b = Tally::new().expect("tally");
        a.record(Duration::from_micros(100));
        b.record(Duration::from_micros(300));
        b.failed("boom".into());
        b.failed("later".into());
        b.held_back = 2;
        a.merge(b).expect("merge");
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.errors, 2);
        assert_eq!(a.first_error.as_deref(), Some("boom"));
        assert_eq!(a.held_back, 2);
        assert!(a.latency.max() >= 299_000);
    }
}
