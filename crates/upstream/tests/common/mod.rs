//! What the upstream tests share: the real MCP servers CI installs with npm,
//! a Streamable HTTP server run as a child process, a client that records
//! what reaches it, and bounded waiting so nothing can hang.

#![allow(dead_code)] // Each test binary uses its own part of this.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use sandbar_engine::{
    Client, ClientError, Outcome, Upstream, UpstreamError, UpstreamRequest, UpstreamSession,
};
use sandbar_upstream::{McpUpstream, Transport, UpstreamConfig};

/// The bound on any single step of a test.
pub const STEP: Duration = Duration::from_secs(60);

/// Awaits `future`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(STEP, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what} did not finish within {STEP:?}"),
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The entry point of an npm-installed MCP server. A missing install fails
/// the test with the command that fixes it: these tests never skip.
pub fn server_script(package: &str, script: &str) -> PathBuf {
    let path = workspace_root()
        .join(".ci/node/node_modules/@modelcontextprotocol")
        .join(package)
        .join(script);
    assert!(
        path.is_file(),
        "{} is missing: run `npm ci --prefix .ci/node` in the workspace root",
        path.display()
    );
    path
}

pub fn everything_script() -> String {
    server_script("server-everything", "dist/index.js")
        .display()
        .to_string()
}

pub fn config(name: &str, transport: Transport) -> UpstreamConfig {
    UpstreamConfig {
        name: name.to_owned(),
        transport,
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(30),
    }
}

pub fn stdio(command: &str, args: &[&str], env: &[(&str, &str)]) -> Transport {
    Transport::Stdio {
        command: command.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        cwd: None,
    }
}

/// server-everything over stdio.
pub fn everything() -> Arc<McpUpstream> {
    McpUpstream::new(config(
        "everything",
        stdio("node", &[&everything_script(), "stdio"], &[]),
    ))
}

/// server-everything over stdio, started through `sh` so that the test
/// learns its pid (`exec` keeps the pid) from `pidfile`.
pub fn everything_with_pidfile(pidfile: &Path) -> Arc<McpUpstream> {
    let script = format!(
        "echo $$ > '{}'; exec node '{}' stdio",
        pidfile.display(),
        everything_script()
    );
    McpUpstream::new(config("everything", stdio("sh", &["-c", &script], &[])))
}

pub fn read_pid(pidfile: &Path) -> u32 {
    let text = std::fs::read_to_string(pidfile).unwrap_or_default();
    match text.trim().parse() {
        Ok(pid) => pid,
        Err(e) => panic!("no pid in {}: {e} ({text:?})", pidfile.display()),
    }
}

/// Whether a process with this pid exists, zombies included: a reaped
/// process has no `/proc` entry.
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

pub fn kill9(pid: u32) {
    let status = Command::new("kill").args(["-9", &pid.to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "could not kill {pid}");
}

pub async fn connect(upstream: &McpUpstream) -> Arc<dyn UpstreamSession> {
    match bounded("connect", upstream.connect()).await {
        Ok(session) => session,
        Err(e) => panic!("connect failed: {e}"),
    }
}

pub async fn connect_error(upstream: &McpUpstream) -> UpstreamError {
    match bounded("connect", upstream.connect()).await {
        Ok(session) => panic!("connect unexpectedly succeeded: {session:?}"),
        Err(e) => e,
    }
}

/// One request with the usual options: no progress token, never cancelled,
/// a generous timeout.
pub async fn request(
    session: &dyn UpstreamSession,
    client: &dyn Client,
    method: &str,
    params: Value,
) -> Result<Outcome, UpstreamError> {
    bounded(
        method,
        session.request(UpstreamRequest {
            method,
            params,
            progress_token: None,
            client,
            cancel: CancellationToken::new(),
            timeout: Duration::from_secs(30),
        }),
    )
    .await
}

pub async fn call_tool(
    session: &dyn UpstreamSession,
    client: &dyn Client,
    name: &str,
    arguments: Value,
) -> Value {
    match request(
        session,
        client,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )
    .await
    {
        Ok(Outcome::Result(result)) => result,
        other => panic!("tools/call {name}: {other:?}"),
    }
}

/// The text of a tool result's first content block.
pub fn first_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A client that records every notification and question that reaches it,
/// and answers questions with a fixed result.
#[derive(Debug, Default)]
pub struct Recorder {
    notifications: Mutex<Vec<(String, Value)>>,
    questions: Mutex<Vec<(String, Value)>>,
    capabilities: Vec<&'static str>,
    answer: Value,
}

impl Recorder {
    /// Supports `capabilities` and answers every question with `answer`.
    pub fn answering(capabilities: &[&'static str], answer: Value) -> Recorder {
        Recorder {
            capabilities: capabilities.to_vec(),
            answer,
            ..Recorder::default()
        }
    }

    pub fn notifications(&self) -> Vec<(String, Value)> {
        self.notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn notifications_named(&self, method: &str) -> Vec<Value> {
        self.notifications()
            .into_iter()
            .filter(|(m, _)| m == method)
            .map(|(_, params)| params)
            .collect()
    }

    pub fn questions(&self) -> Vec<(String, Value)> {
        self.questions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Client for Recorder {
    async fn notify(&self, method: &str, params: Value) -> Result<(), ClientError> {
        self.notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((method.to_owned(), params));
        Ok(())
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.questions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((method.to_owned(), params));
        Ok(self.answer.clone())
    }

    fn supports(&self, capability: &str) -> bool {
        self.capabilities.contains(&capability)
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free port: {e}"),
    }
}

/// server-everything serving Streamable HTTP, as a child process that is
/// killed and reaped when this is dropped.
pub struct HttpServer {
    child: Child,
    pub url: String,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        let port = free_port();
        let child = Command::new("node")
            .arg(everything_script())
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut server = match child {
            Ok(child) => HttpServer {
                child,
                url: format!("http://127.0.0.1:{port}/mcp"),
            },
            Err(e) => panic!("could not start node: {e}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the HTTP server exited ({status}) before listening on {port}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the HTTP server did not listen on {port} within 30s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn upstream(&self) -> Arc<McpUpstream> {
        McpUpstream::new(config(
            "web",
            Transport::Http {
                url: self.url.clone(),
                headers: BTreeMap::from([("X-Sandbar-Test".to_owned(), "1".to_owned())]),
            },
        ))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.kill();
    }
}
