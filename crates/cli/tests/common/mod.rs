//! Shared pieces of the end-to-end tests: start the real `sandbar` binary,
//! connect a real MCP client (rmcp) to it over HTTP or stdio, and read what
//! it recorded.

#![allow(dead_code)] // Each test binary uses a different subset.
#![allow(deprecated)] // Sampling and logging are deprecated in 2026-07-28 but tested for earlier versions.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
    CreateMessageResult, ElicitRequestParams, ElicitResult, Implementation,
    LoggingMessageNotificationParam, ProgressNotificationParam, ResourceUpdatedNotificationParam,
    SamplingMessage,
};
use rmcp::service::{NotificationContext, RequestContext, RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ErrorData as McpError, ServiceExt};
use serde_json::{Value, json};

/// The binary under test.
pub fn sandbar() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandbar"));
    cmd.env_remove("SANDBAR_DATA").env_remove("SANDBAR_LOG");
    cmd
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An example scenario by directory name.
pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name).join("scenario.yaml")
}

/// Writes a scenario into `dir` and returns its path.
pub fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// A `sandbar serve` process over HTTP; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub stderr_path: PathBuf,
}

impl Server {
    /// Starts `sandbar serve SCENARIO --listen 127.0.0.1:0 --data DATA ARGS...`
    /// and waits for its endpoint.
    pub fn start(scenario: &Path, data: &Path, args: &[&str]) -> Server {
        let scenario = scenario.to_str().expect("UTF-8 path");
        Server::start_command("serve", scenario, data, args)
    }

    /// Starts `sandbar COMMAND TARGET --listen 127.0.0.1:0 --data DATA ARGS...`
    /// (`serve SCENARIO` or `replay CASSETTE`) and waits for its endpoint.
    pub fn start_command(command: &str, target: &str, data: &Path, args: &[&str]) -> Server {
        let stderr_path = data.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = sandbar()
            .arg(command)
            .arg(target)
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn sandbar serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read endpoint line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; stderr: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            })
            .to_owned();
        Server {
            child,
            url,
            stderr_path,
        }
    }

    /// The base `http://host:port` without `/mcp`.
    pub fn base(&self) -> String {
        self.url.trim_end_matches("/mcp").to_owned()
    }

    /// Stops the server with SIGTERM and waits for it, so it ends its runs.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the test client was sent, as MCP JSON.
#[derive(Clone, Default)]
pub struct Inbox(pub Arc<Mutex<Vec<Value>>>);

impl Inbox {
    pub fn all(&self) -> Vec<Value> {
        self.0.lock().expect("inbox").clone()
    }
    pub fn of(&self, method: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|m| m["method"] == method)
            .map(|m| m["params"].clone())
            .collect()
    }
    fn push(&self, method: &str, params: Value) {
        self.0
            .lock()
            .expect("inbox")
            .push(json!({"method": method, "params": params}));
    }
}

/// A client that declares sampling and elicitation, answers them with
/// fixed replies, and keeps every notification it receives.
#[derive(Clone)]
pub struct TestClient {
    pub inbox: Inbox,
    pub sampling_reply: String,
    pub elicitation_reply: Value,
}

impl Default for TestClient {
    fn default() -> Self {
        TestClient {
            inbox: Inbox::default(),
            sampling_reply: "a reply from the model".into(),
            elicitation_reply: json!({"action": "accept", "content": {"username": "ada", "email": "ada@example.com", "send": true}}),
        }
    }
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        let capabilities = ClientCapabilities::builder()
            .enable_sampling()
            .enable_elicitation()
            .build();
        ClientConfig::new(capabilities, Implementation::new("sandbar-tests", "1.0.0"))
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        self.inbox.push(
            "sampling/createMessage",
            serde_json::to_value(&params).unwrap_or_default(),
        );
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(self.sampling_reply.clone()),
            "test-model".into(),
        ))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        self.inbox.push(
            "elicitation/create",
            serde_json::to_value(&request).unwrap_or_default(),
        );
        serde_json::from_value(self.elicitation_reply.clone())
            .map_err(|e| McpError::internal_error(e.to_string(), None))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.inbox.push(
            "notifications/progress",
            serde_json::to_value(&params).unwrap_or_default(),
        );
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.inbox.push(
            "notifications/message",
            serde_json::to_value(&params).unwrap_or_default(),
        );
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.inbox.push(
            "notifications/resources/updated",
            serde_json::to_value(&params).unwrap_or_default(),
        );
    }
}

pub type Session = RunningService<RoleClient, TestClient>;

/// Connects a test client over Streamable HTTP.
pub async fn connect_http(url: &str, client: TestClient) -> Session {
    client
        .serve(StreamableHttpClientTransport::from_uri(url.to_owned()))
        .await
        .expect("connect over HTTP")
}

/// Starts `sandbar serve SCENARIO --stdio` as a child and connects to it.
pub async fn connect_stdio(scenario: &Path, data: &Path, client: TestClient) -> Session {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sandbar"));
    cmd.arg("serve")
        .arg(scenario)
        .arg("--stdio")
        .arg("--data")
        .arg(data)
        .env_remove("SANDBAR_LOG");
    client
        .serve(TokioChildProcess::new(cmd).expect("spawn stdio server"))
        .await
        .expect("connect over stdio")
}

/// Starts `PROGRAM ARGS...` (a `sandbar` command line, possibly wrapped,
/// e.g. in `unshare`) as a child speaking MCP on stdio and connects to it.
pub async fn connect_command(program: &str, args: &[String], client: TestClient) -> Session {
    client
        .serve(TokioChildProcess::new(stdio_command(program, args)).expect("spawn stdio server"))
        .await
        .expect("connect over stdio")
}

/// `PROGRAM ARGS...` as a command to run as an MCP server on stdio, without
/// the environment of the test's own shell.
pub fn stdio_command(program: &str, args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_remove("SANDBAR_LOG")
        .env_remove("SANDBAR_DATA");
    cmd
}

/// The path of the `sandbar` binary under test.
pub fn sandbar_path() -> String {
    env!("CARGO_BIN_EXE_sandbar").to_owned()
}

/// A file inside the Node packages CI installs (`npm ci --prefix .ci/node`);
/// fails the test, with the command to run, when they are missing.
pub fn node_module(relative: &str) -> PathBuf {
    let path = repo().join(".ci/node/node_modules").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `npm ci --prefix .ci/node` in the repository first",
        path.display()
    );
    path
}

/// Calls a tool and returns the whole result as JSON (errors as
/// `{"error": {...}}`).
pub async fn call(session: &Session, tool: &str, args: Value) -> Value {
    let mut request = CallToolRequestParams::new(tool.to_owned());
    if let Value::Object(map) = args {
        request = request.with_arguments(map);
    }
    match session.call_tool(request).await {
        Ok(result) => serde_json::to_value(result).expect("result as JSON"),
        Err(rmcp::ServiceError::McpError(e)) => {
            json!({"error": {"code": e.code.0, "message": e.message, "data": e.data}})
        }
        Err(e) => json!({"error": {"transport": e.to_string()}}),
    }
}

/// The text of the first content block of a tool result.
pub fn text(result: &Value) -> String {
    result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Runs `sandbar ARGS --data DATA` and returns (exit code, stdout, stderr).
pub fn cli(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = sandbar()
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run sandbar");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The events of the newest run, via `sandbar runs show --json`.
pub fn newest_run(data: &Path) -> Value {
    let (code, out, err) = cli(data, &["runs", "list", "--json", "--limit", "1"]);
    assert_eq!(code, 0, "runs list failed: {err}");
    let runs: Value = serde_json::from_str(&out).expect("runs list JSON");
    let id = runs[0]["id"].as_str().expect("a run").to_owned();
    let (code, out, err) = cli(data, &["runs", "show", &id, "--json"]);
    assert_eq!(code, 0, "runs show failed: {err}");
    serde_json::from_str(&out).expect("runs show JSON")
}

/// `servers/counting_http.cjs`: a real MCP server over Streamable HTTP that
/// writes down every message it receives; killed when dropped.
pub struct CountingUpstream {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl CountingUpstream {
    /// Starts it with its log in `dir`.
    pub fn start(dir: &Path) -> CountingUpstream {
        let log = dir.join("received.jsonl");
        let mut child = Command::new("node")
            .arg(repo().join("crates/cli/tests/servers/counting_http.cjs"))
            .env("RECEIVED_LOG", &log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("endpoint line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        CountingUpstream { child, url, log }
    }

    /// Every message received, in order.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect()
    }

    /// The tool calls received that carry `case` in their arguments.
    pub fn calls_of(&self, case: &str) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|m| m["method"] == "tools/call" && m["arguments"]["case"] == case)
            .collect()
    }
}

impl Drop for CountingUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
