//! Child processes that speak MCP over their stdin and stdout: spawning,
//! capturing stderr, noticing non-MCP output on stdout (harmless noise
//! before the handshake, a broken session after it), and reaping.
//!
//! The process is spawned here rather than by the SDK so that a failure can
//! be explained in the agent's terms: how the process ended and what it said
//! on stderr last. The SDK only frames JSON-RPC over the two pipes.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use sandbar_engine::{UpstreamError, UpstreamErrorKind};

/// How long a process may take to exit on its own once its stdin is closed,
/// and then once asked with SIGTERM, before it is killed (MCP's stdio
/// shutdown sequence).
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// Lines of stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 40;
/// Longest stderr or stdout line kept, in bytes; the rest is dropped.
const MAX_KEPT_LINE: usize = 2000;
/// Bytes of stdout read (and buffered for the SDK) at a time.
const STDOUT_BUFFER: usize = 64 * 1024;
/// Longest piece of non-MCP stdout quoted in an error, in bytes.
const MAX_QUOTED_NOISE: usize = 100;

/// The command line of a stdio upstream.
#[derive(Debug, Clone)]
pub(crate) struct CommandLine<'a> {
    pub command: &'a str,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a PathBuf>,
}

/// A spawned process and the two pipes the MCP transport uses.
pub(crate) struct Spawned {
    pub process: ChildProcess,
    /// The process's stdout, as copied by [`pump_stdout`].
    pub stdout: DuplexStream,
    pub stdin: ChildStdin,
}

/// A running (or exited) upstream process. Dropping it stops the process:
/// it is given [`EXIT_GRACE`] to exit after its stdin closes, then killed,
/// and always reaped.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    pid: Option<u32>,
    exit: watch::Receiver<Option<String>>,
    stderr: Arc<StderrTail>,
    stderr_done: watch::Receiver<bool>,
    stdout_done: watch::Receiver<bool>,
    noise: Arc<Mutex<Option<String>>>,
    /// Set once the handshake is done: from then on a stdout line that is
    /// not MCP is reported on `garbage`.
    strict: Arc<AtomicBool>,
    garbage: watch::Receiver<Option<String>>,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
}

/// Spawns `line` with stdin and stdout piped for MCP and stderr captured.
pub(crate) fn spawn(upstream: &str, line: &CommandLine<'_>) -> Result<Spawned, UpstreamError> {
    let mut command = Command::new(line.command);
    command
        .args(line.args)
        .envs(line.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A safety net for when the reaping task itself is torn down (the
        // runtime shutting down): the process must not outlive us.
        .kill_on_drop(true);
    // A group of its own, so that stopping it also stops what it started.
    #[cfg(unix)]
    command.process_group(0);
    if let Some(cwd) = line.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn().map_err(|e| {
        UpstreamError::new(
            upstream,
            UpstreamErrorKind::Connect,
            format!("could not start `{}`: {}", line.command, io_message(&e)),
        )
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        // Unreachable with all three piped, but a process we cannot talk to
        // must not be left running.
        let _ = child.start_kill();
        return Err(UpstreamError::new(
            upstream,
            UpstreamErrorKind::Connect,
            format!("could not open the pipes of `{}`", line.command),
        ));
    };
    let pid = child.id();

    let tail = Arc::new(StderrTail::default());
    let (stderr_done_tx, stderr_done) = watch::channel(false);
    tokio::spawn(read_stderr(
        upstream.to_owned(),
        stderr,
        Arc::clone(&tail),
        stderr_done_tx,
    ));

    let stop = CancellationToken::new();
    let (exit_tx, exit) = watch::channel(None);
    tokio::spawn(reap(upstream.to_owned(), child, stop.clone(), exit_tx));

    let noise = Arc::new(Mutex::new(None));
    let strict = Arc::new(AtomicBool::new(false));
    let (garbage_tx, garbage) = watch::channel(None);
    let (stdout_done_tx, stdout_done) = watch::channel(false);
    let (to_sdk, from_pump) = tokio::io::duplex(STDOUT_BUFFER);
    tokio::spawn(pump_stdout(
        upstream.to_owned(),
        stdout,
        to_sdk,
        Noise {
            last: Arc::clone(&noise),
            strict: Arc::clone(&strict),
            garbage: garbage_tx,
        },
        stdout_done_tx,
    ));

    Ok(Spawned {
        stdout: from_pump,
        stdin,
        process: ChildProcess {
            pid,
            exit,
            stderr: tail,
            stderr_done,
            stdout_done,
            noise,
            strict,
            garbage,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
        },
    })
}

/// Waits for the process to exit, or stops it when asked, and records how
/// it ended. Owning the `Child` here is what guarantees it is reaped.
async fn reap(
    upstream: String,
    mut child: Child,
    stop: CancellationToken,
    exit: watch::Sender<Option<String>>,
) {
    let pid = child.id();
    let status = tokio::select! {
        status = child.wait() => status,
        () = stop.cancelled() => {
            // By now the transport has closed stdin (or is about to), which
            // is how MCP asks a stdio server to exit. If it lingers it is
            // asked again with SIGTERM, then killed.
            match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    tracing::debug!(target: "sandbar::upstream", upstream = %upstream,
                        "process did not exit after stdin closed; terminating it");
                    signal_group(pid, Stop::Terminate);
                    match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                        Ok(status) => status,
                        Err(_) => {
                            signal_group(pid, Stop::Kill);
                            // `kill` sends SIGKILL and waits: nothing is left.
                            match child.kill().await {
                                Ok(()) => child.wait().await,
                                Err(e) => Err(e),
                            }
                        }
                    }
                }
            }
        }
    };
    let description = match status {
        Ok(status) => describe_status(status),
        Err(e) => format!("could not be waited for: {}", io_message(&e)),
    };
    tracing::debug!(target: "sandbar::upstream", upstream = %upstream, "process {description}");
    let _ = exit.send(Some(description));
    // Whatever the process started (a wrapper like `npx` or `sh` starts the
    // real server) must not outlive the session either.
    stop.cancelled().await;
    signal_group(pid, Stop::Kill);
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    Terminate,
    Kill,
}

/// Signals the process group the upstream leads (it was spawned as the
/// leader of a group of its own). A group that is already gone is fine.
fn signal_group(pid: Option<u32>, stop: Stop) {
    #[cfg(unix)]
    if let Some(group) = pid
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let signal = match stop {
            Stop::Terminate => rustix::process::Signal::TERM,
            Stop::Kill => rustix::process::Signal::KILL,
        };
        let _ = rustix::process::kill_process_group(group, signal);
    }
    #[cfg(not(unix))]
    let _ = (pid, stop);
}

/// "exited (status 1)", "was killed by signal 9".
fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited (status {code})");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    "exited".to_owned()
}

impl ChildProcess {
    /// The operating system's id for the process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How the process ended ("exited (status 1)"), waiting at most `wait`
    /// for it to end; `None` if it is still running. Once it has ended, its
    /// output is given a moment to drain so the last lines are complete.
    pub async fn exit(&self, wait: Duration) -> Option<String> {
        let mut exit = self.exit.clone();
        // The borrow of the watched value ends with this statement: it must
        // not be held across the wait below.
        let description = tokio::time::timeout(wait, exit.wait_for(Option::is_some))
            .await
            .ok()?
            .ok()?
            .clone()?;
        let mut stderr = self.stderr_done.clone();
        let mut stdout = self.stdout_done.clone();
        let drained = async {
            let _ = stderr.wait_for(|done| *done).await;
            let _ = stdout.wait_for(|done| *done).await;
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), drained).await;
        Some(description)
    }

    /// The stderr line that best explains a failure: the last one that
    /// mentions an error, else the last one.
    pub fn stderr_hint(&self) -> Option<String> {
        self.stderr.hint()
    }

    /// The last line the process wrote to stdout that is not JSON at all.
    pub fn stdout_noise(&self) -> Option<String> {
        self.noise
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// From now on a stdout line that is not MCP is not skipped but
    /// reported (see [`ChildProcess::garbage`]). Called once the handshake
    /// is done: a banner before it is common and harmless, while after it
    /// the process owes an answer to whatever it was asked, and output the
    /// SDK skips would leave the request waiting for its whole timeout.
    pub fn expect_only_mcp(&self) {
        self.strict.store(true, Ordering::SeqCst);
    }

    /// Resolves with the first stdout line that is not MCP written after
    /// [`ChildProcess::expect_only_mcp`] (its beginning), or `None` once
    /// stdout has ended without one.
    pub fn garbage(&self) -> impl Future<Output = Option<String>> + Send + 'static {
        let mut garbage = self.garbage.clone();
        async move {
            garbage
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|line| line.clone())
        }
    }

    /// Stops the process (stdin should already be closed) and waits until
    /// it has been reaped.
    pub async fn stop(&self) {
        self.stop.cancel();
        // The reaper kills after two graces; a little more covers the kill.
        let _ = self.exit(EXIT_GRACE * 2 + Duration::from_secs(2)).await;
    }
}

/// The last lines a process wrote to stderr.
#[derive(Debug, Default)]
struct StderrTail {
    lines: Mutex<VecDeque<String>>,
}

impl StderrTail {
    fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == STDERR_TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn hint(&self) -> Option<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .rev()
            .find(|l| l.to_ascii_lowercase().contains("error"))
            .or_else(|| lines.iter().rev().find(|l| !l.trim().is_empty()))
            .map(|l| l.trim().to_owned())
    }
}

/// Forwards each stderr line to the log and keeps the last few.
async fn read_stderr(
    upstream: String,
    mut stderr: ChildStderr,
    tail: Arc<StderrTail>,
    done: watch::Sender<bool>,
) {
    let mut chunk = [0u8; 4096];
    let mut line = Vec::new();
    let emit = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r').to_owned();
        line.clear();
        tracing::debug!(target: "sandbar::upstream", upstream = %upstream, stderr = %text);
        tail.push(text);
    };
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &byte in &chunk[..n] {
            if byte == b'\n' {
                emit(&mut line);
            } else if line.len() < MAX_KEPT_LINE {
                line.push(byte);
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line);
    }
    let _ = done.send(true);
}

/// Where the pump reports stdout lines that are not MCP.
struct Noise {
    /// The last one, quoted when connecting fails.
    last: Arc<Mutex<Option<String>>>,
    /// Whether the handshake is done (see [`ChildProcess::expect_only_mcp`]).
    strict: Arc<AtomicBool>,
    /// The first one after the handshake.
    garbage: watch::Sender<Option<String>>,
}

/// Copies the process's stdout to the SDK, watching for lines that cannot
/// be MCP messages (a banner, a stray `console.log`, a usage message, a
/// message cut short). The SDK skips those, as the other official SDKs do;
/// remembering the last one lets a failed handshake say why it got no
/// answer, and after the handshake the first one is reported so the
/// session can end at once. The copy goes on after the SDK stops reading,
/// so output written just before an exit is still seen.
async fn pump_stdout(
    upstream: String,
    mut stdout: ChildStdout,
    mut to_sdk: DuplexStream,
    noise: Noise,
    done: watch::Sender<bool>,
) {
    let mut scan = LineScan::default();
    let mut chunk = vec![0u8; STDOUT_BUFFER];
    let mut sdk_reading = true;
    loop {
        let n = match stdout.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for line in scan.feed(&chunk[..n]) {
            tracing::debug!(target: "sandbar::upstream", upstream = %upstream,
                stdout = %line, "a stdout line that is not JSON-RPC");
            if noise.strict.load(Ordering::SeqCst) {
                noise.garbage.send_if_modified(|first| {
                    let unset = first.is_none();
                    if unset {
                        *first = Some(line.clone());
                    }
                    unset
                });
            }
            *noise.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(line);
        }
        // Waiting for the SDK to read keeps its back-pressure on the process.
        if sdk_reading && to_sdk.write_all(&chunk[..n]).await.is_err() {
            sdk_reading = false;
        }
    }
    // Dropping the writer is the end of stdout for the SDK.
    drop(to_sdk);
    let _ = done.send(true);
}

/// Splits a byte stream into lines and picks out those that cannot be a
/// JSON-RPC message: their first non-blank character is neither `{` nor
/// `[`, or their last is neither `}` nor `]` (a message cut short). Lines
/// that pass are not parsed here (the SDK does that once); JSON that is
/// well-formed at both ends but not JSON-RPC is the SDK's to refuse.
#[derive(Debug, Default)]
struct LineScan {
    state: ScanState,
    /// The beginning of the current line.
    noise: Vec<u8>,
    /// The last non-blank byte of the current JSON line so far.
    last: u8,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    /// Only blanks (or a byte order mark) so far on this line.
    #[default]
    Start,
    /// The line looks like JSON: skip to its end.
    Json,
    /// The line is not JSON: keep its beginning.
    Noise,
}

impl LineScan {
    /// Feeds bytes and returns the noise lines they complete.
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        while let Some((&byte, rest)) = bytes.split_first() {
            match self.state {
                ScanState::Start => match byte {
                    b'\n' => {}
                    b'{' | b'[' => {
                        self.state = ScanState::Json;
                        self.noise.clear();
                        self.noise.push(byte);
                        self.last = byte;
                    }
                    // Blanks and the bytes of a UTF-8 byte order mark.
                    b' ' | b'\t' | b'\r' | 0xEF | 0xBB | 0xBF => {}
                    _ => {
                        self.state = ScanState::Noise;
                        self.noise.clear();
                        self.noise.push(byte);
                    }
                },
                ScanState::Json => {
                    // Skip to the end of a JSON line in one step, keeping
                    // only its beginning and its last non-blank byte.
                    let end = bytes.iter().position(|b| *b == b'\n');
                    let segment = &bytes[..end.unwrap_or(bytes.len())];
                    let room = MAX_QUOTED_NOISE.saturating_sub(self.noise.len());
                    self.noise
                        .extend_from_slice(&segment[..room.min(segment.len())]);
                    if let Some(&last) = segment.iter().rev().find(|b| !b.is_ascii_whitespace()) {
                        self.last = last;
                    }
                    match end {
                        Some(end) => {
                            if !matches!(self.last, b'}' | b']') {
                                let text = String::from_utf8_lossy(&self.noise);
                                found.push(text.trim_end().to_owned());
                            }
                            bytes = &bytes[end + 1..];
                            self.state = ScanState::Start;
                        }
                        None => bytes = &[],
                    }
                    continue;
                }
                ScanState::Noise => {
                    if byte == b'\n' {
                        let text = String::from_utf8_lossy(&self.noise);
                        found.push(text.trim_end().to_owned());
                        self.state = ScanState::Start;
                    } else if self.noise.len() < MAX_QUOTED_NOISE {
                        self.noise.push(byte);
                    }
                }
            }
            bytes = rest;
        }
        found
    }
}

/// An I/O error's message without the "(os error 2)" suffix, which tells
/// the agent nothing.
pub(crate) fn io_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_scan(chunks: &[&str], expect: &[&str]) {
        let mut scan = LineScan::default();
        let mut found = Vec::new();
        for chunk in chunks {
            found.extend(scan.feed(chunk.as_bytes()));
        }
        assert_eq!(found, expect, "chunks: {chunks:?}");
    }

    #[test]
    fn line_scan_picks_out_lines_that_are_not_json() {
        check_scan(&["{\"jsonrpc\":\"2.0\"}\n"], &[]);
        check_scan(&["hello world\n"], &["hello world"]);
        check_scan(&["  [1,2]\n\n\r\n"], &[]);
        check_scan(&["{\"a\":1}\nbanner v1\n{\"b\":2}\n"], &["banner v1"]);
        check_scan(&["ban", "ner\n{\"x\"", ":1}\nend\n"], &["banner", "end"]);
        check_scan(&["\u{feff}{\"a\":1}\n"], &[]);
        check_scan(&["no newline yet"], &[]);
        check_scan(&["{\"a\":\n", "oops\n"], &["{\"a\":", "oops"]);
        check_scan(&["{\"a\":1}\r\n", "[1,", "2]  \n"], &[]);
        check_scan(&["{\"half\":", "\n"], &["{\"half\":"]);
        check_scan(
            &["this is not json\n{\"half\":\n"],
            &["this is not json", "{\"half\":"],
        );
    }

    #[test]
    fn line_scan_quotes_only_the_beginning_of_long_noise() {
        let long = format!("{}\n", "x".repeat(5000));
        let mut scan = LineScan::default();
        let found = scan.feed(long.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].len(), MAX_QUOTED_NOISE);
    }

    #[test]
    fn stderr_hint_prefers_the_line_naming_an_error() {
        let tail = StderrTail::default();
        assert_eq!(tail.hint(), None);
        tail.push("starting".into());
        assert_eq!(tail.hint().as_deref(), Some("starting"));
        tail.push("Error: ENOENT: no such file".into());
        tail.push("    at Object.openSync (node:fs:573:18)".into());
        tail.push("".into());
        assert_eq!(tail.hint().as_deref(), Some("Error: ENOENT: no such file"));
    }

    #[test]
    fn io_messages_lose_the_os_error_number() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&e), "No such file or directory");
        let e = io::Error::other("plain");
        assert_eq!(io_message(&e), "plain");
    }
}
