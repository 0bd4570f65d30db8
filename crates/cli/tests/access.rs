//! Tokens, scopes, policy and approvals, end to end: `sandbar serve --auth
//! required` in front of a real MCP server over Streamable HTTP that writes
//! down every message it receives. Every way out of a token's scope is
//! tried, and each is shown refused — with a reason the agent can read and
//! a `policy` event — while the upstream receives nothing of it.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use common::{CountingUpstream, Server, cli, write_scenario};

const UPSTREAM_KEY: &str = "billing-key-7Hq2vX9mLp4RtY8wZ3";

/// A scenario with two upstreams on the counting server — `billing` at
/// 127.0.0.1 with the vault's key injected in a header and in the query,
/// `other` at `localhost` — a
/// stubbed tool, and a policy.
fn setup(dir: &Path) -> (CountingUpstream, PathBuf, PathBuf) {
    let upstream = CountingUpstream::start(dir);
    let data = dir.join("data");
    let mut child = common::sandbar()
        .args(["secret", "set", "BILLING_KEY", "--data"])
        .arg(&data)
        .stdin(Stdio::piped())
        .spawn()
        .expect("secret set");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(UPSTREAM_KEY.as_bytes())
        .expect("write secret");
    assert!(child.wait().expect("secret set").success());
    let other = upstream.url.replace("127.0.0.1", "localhost");
    let scenario = write_scenario(
        dir,
        "access.yaml",
        &format!(
            r#"
version: 1
name: access-matrix
upstreams:
  - name: billing
    url: "{url}?key={{{{ secrets.BILLING_KEY }}}}"
    headers: {{Authorization: "Bearer {{{{ secrets.BILLING_KEY }}}}"}}
    mask: false
  - name: other
    url: "{other}"
    prefix: other_
    mask: false
tools:
  - name: lookup
    respond:
      - text: "found"
policy:
  approval_timeout: 5s
  rules:
    - deny: issue_refund
      when: "args.amount > 500"
      message: "refunds over 500 need a human"
      name: big-refunds
    - approve: send_email
      name: mail-needs-approval
"#,
            url = upstream.url,
        ),
    );
    (upstream, scenario, data)
}

/// Issues a token with `args` and returns (bearer, id).
fn issue(data: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["token", "issue", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = cli(data, &all);
    assert_eq!(code, 0, "token issue {args:?}: {err}");
    let record: Value = serde_json::from_str(&out).expect("token JSON");
    (
        record["token"].as_str().expect("token").to_owned(),
        record["id"].as_str().expect("id").to_owned(),
    )
}

/// A raw Streamable HTTP client holding one bearer token.
struct Agent {
    http: reqwest::Client,
    url: String,
    bearer: Option<String>,
    session: Option<String>,
    next_id: u64,
    /// The whole body of the last answer (an event stream keeps every
    /// message the call sent).
    last_body: String,
}

impl Agent {
    fn new(url: &str, bearer: Option<&str>) -> Agent {
        Agent {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            bearer: bearer.map(str::to_owned),
            session: None,
            next_id: 1,
            last_body: String::new(),
        }
    }

    /// Posts one message; returns the status and the JSON-RPC answer (from
    /// a JSON body or the event stream), or the raw body as a string.
    async fn post(&mut self, message: Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .body(message.to_string());
        if let Some(bearer) = &self.bearer {
            request = request.header("authorization", format!("Bearer {bearer}"));
        }
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        let response = request.send().await.expect("POST");
        let status = response.status().as_u16();
        if let Some(id) = response.headers().get("mcp-session-id") {
            self.session = Some(id.to_str().expect("session id").to_owned());
        }
        let body = response.text().await.expect("body");
        self.last_body = body.clone();
        let value = serde_json::from_str(&body).ok().or_else(|| {
            body.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|m| m.get("result").is_some() || m.get("error").is_some())
        });
        (status, value.unwrap_or(Value::String(body)))
    }

    /// Opens a session; returns the status of `initialize`.
    async fn open(&mut self) -> (u16, Value) {
        let (status, body) = self
            .post(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "matrix", "version": "1"}}}),
            )
            .await;
        if status == 200 {
            let (status, _) = self
                .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await;
            assert_eq!(status, 202);
        }
        (status, body)
    }

    async fn call(&mut self, tool: &str, args: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let (status, body) = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": tool, "arguments": args}}))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// The text of a tool answer and whether it is an error.
fn outcome(answer: &Value) -> (bool, String) {
    (
        answer["result"]["isError"] == true,
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn assert_refused(answer: &Value, reason: &str) {
    let (is_error, text) = outcome(answer);
    assert!(
        is_error,
        "expected a refusal mentioning {reason:?}, got {answer}"
    );
    assert!(
        text.starts_with("sandbar refused this call: ") && text.contains(reason),
        "expected a refusal mentioning {reason:?}, got {text:?}"
    );
}

fn assert_allowed(answer: &Value) {
    let (is_error, _) = outcome(answer);
    assert!(
        !is_error && answer.get("result").is_some(),
        "expected the call to go through: {answer}"
    );
}

/// Waits for the one pending approval of `tool` and returns its record.
fn pending_approval(data: &Path, tool: &str) -> Value {
    for _ in 0..200 {
        let (code, out, err) = cli(data, &["approvals", "--json"]);
        assert_eq!(code, 0, "{err}");
        let list: Value = serde_json::from_str(&out).expect("approvals JSON");
        if let Some(found) = list["approvals"].as_array().and_then(|a| {
            a.iter()
                .find(|a| a["tool"] == tool && a["status"] == "pending")
        }) {
            return found.clone();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("no approval for {tool} appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_out_of_a_scope_is_refused_and_never_reaches_the_upstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (upstream, scenario, data) = setup(dir.path());
    let server = Server::start(&scenario, &data, &["--auth", "required"]);
    let url = server.url.clone();

    // No token, a made-up token, a malformed header: no session at all.
    let (status, body) = Agent::new(&url, None).open().await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.to_string().contains("requires a bearer token"),
        "{body}"
    );
    let (status, _) = Agent::new(&url, Some("sbt_madeup000000000000000000000000000000000000"))
        .open()
        .await;
    assert_eq!(status, 401);

    // A token of another tenant, or for another scenario: no session.
    let (foreign, _) = issue(&data, &["--tenant", "other-team"]);
    let (status, body) = Agent::new(&url, Some(&foreign)).open().await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.to_string().contains("is for tenant `other-team`"),
        "{body}"
    );
    let (elsewhere, _) = issue(&data, &["--scenario", "another"]);
    assert_eq!(Agent::new(&url, Some(&elsewhere)).open().await.0, 403);

    // A token that may call `echo` and `lookup` only, on `billing` only.
    let (narrow, _) = issue(
        &data,
        &[
            "--name",
            "narrow",
            "--allow-tool",
            "echo",
            "--allow-tool",
            "lookup",
            "--allow-tool",
            "other_echo",
            "--arg-rule",
            "echo=size(args.message) < 12",
            "--upstream",
            "billing",
        ],
    );
    let mut agent = Agent::new(&url, Some(&narrow));
    assert_eq!(agent.open().await.0, 200);
    // The tool list shows only what the token may call.
    let (_, list) = agent
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .await;
    let mut names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["echo", "lookup", "other_echo"]);

    // Allowed: reaches the upstream once, with the injected credential.
    assert_allowed(
        &agent
            .call("echo", json!({"message": "hi", "case": "allowed"}))
            .await,
    );
    let received = upstream.calls_of("allowed");
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0]["authorization"],
        format!("Bearer {UPSTREAM_KEY}")
    );
    assert_eq!(received[0]["path"], format!("/mcp?key={UPSTREAM_KEY}"));

    // Tool not allowed.
    assert_refused(
        &agent
            .call("issue_refund", json!({"amount": 5, "case": "tool"}))
            .await,
        "does not allow the tool `issue_refund`",
    );
    // Argument outside its constraint.
    assert_refused(
        &agent
            .call(
                "echo",
                json!({"message": "far too long a message", "case": "args"}),
            )
            .await,
        "does not allow these arguments for `echo`",
    );
    // Upstream not allowed.
    assert_refused(
        &agent
            .call("other_echo", json!({"message": "hi", "case": "upstream"}))
            .await,
        "does not allow reaching the upstream `other`",
    );
    for case in ["tool", "args", "upstream"] {
        assert!(
            upstream.calls_of(case).is_empty(),
            "{case} reached the upstream"
        );
    }

    // Host not allowed: `other` is at localhost.
    let (hosted, _) = issue(&data, &["--host", "127.0.0.1"]);
    let mut agent = Agent::new(&url, Some(&hosted));
    agent.open().await;
    assert_refused(
        &agent
            .call("other_echo", json!({"message": "hi", "case": "host"}))
            .await,
        "does not allow reaching the host `localhost`",
    );
    assert_allowed(
        &agent
            .call("echo", json!({"message": "hi", "case": "host-ok"}))
            .await,
    );
    assert!(upstream.calls_of("host").is_empty());
    assert_eq!(upstream.calls_of("host-ok").len(), 1);

    // A JSON Schema on arguments.
    let schema = dir.path().join("refund.schema.json");
    std::fs::write(
        &schema,
        json!({"type": "object", "properties": {"amount": {"type": "number", "maximum": 100}},
               "required": ["amount"]})
        .to_string(),
    )
    .expect("schema");
    let (schemed, _) = issue(
        &data,
        &[
            "--arg-schema",
            &format!("issue_refund={}", schema.display()),
        ],
    );
    let mut agent = Agent::new(&url, Some(&schemed));
    agent.open().await;
    assert_refused(
        &agent
            .call("issue_refund", json!({"amount": 250, "case": "schema"}))
            .await,
        "does not allow these arguments for `issue_refund`",
    );
    assert_allowed(
        &agent
            .call("issue_refund", json!({"amount": 50, "case": "schema-ok"}))
            .await,
    );
    assert!(upstream.calls_of("schema").is_empty());
    assert_eq!(upstream.calls_of("schema-ok").len(), 1);

    // Over budget: two calls, then no more (refusals spend nothing).
    let (budgeted, budget_id) = issue(&data, &["--budget", "2"]);
    let mut agent = Agent::new(&url, Some(&budgeted));
    agent.open().await;
    assert_allowed(
        &agent
            .call("echo", json!({"message": "1", "case": "budget-ok"}))
            .await,
    );
    assert_allowed(
        &agent
            .call("echo", json!({"message": "2", "case": "budget-ok"}))
            .await,
    );
    assert_refused(
        &agent
            .call("echo", json!({"message": "3", "case": "budget"}))
            .await,
        "has used its whole call budget",
    );
    assert_eq!(upstream.calls_of("budget-ok").len(), 2);
    assert!(upstream.calls_of("budget").is_empty());
    let (_, out, _) = cli(&data, &["token", "list", "--json"]);
    let tokens: Value = serde_json::from_str(&out).expect("token list");
    let listed = tokens["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["id"] == budget_id.as_str())
        .expect("budgeted token listed");
    assert_eq!(listed["calls_used"], 2);
    assert_eq!(listed["state"], "spent");
    assert!(!out.contains(&budgeted), "token list shows a bearer value");

    // Over rate.
    let (rated, _) = issue(&data, &["--rate", "2/1h"]);
    let mut agent = Agent::new(&url, Some(&rated));
    agent.open().await;
    assert_allowed(&agent.call("lookup", json!({"case": "rate-ok"})).await);
    assert_allowed(
        &agent
            .call("echo", json!({"message": "r", "case": "rate-ok"}))
            .await,
    );
    assert_refused(
        &agent
            .call("echo", json!({"message": "r", "case": "rate"}))
            .await,
        "allows 2 calls per 1h",
    );
    assert!(upstream.calls_of("rate").is_empty());

    // Revoked: refused on the next call, and no new session opens.
    let (revocable, revocable_id) = issue(&data, &[]);
    let mut agent = Agent::new(&url, Some(&revocable));
    agent.open().await;
    assert_allowed(
        &agent
            .call("echo", json!({"message": "a", "case": "revoke-ok"}))
            .await,
    );
    let (code, _, err) = cli(&data, &["token", "revoke", &revocable_id]);
    assert_eq!(code, 0, "{err}");
    assert_refused(
        &agent
            .call("echo", json!({"message": "b", "case": "revoked"}))
            .await,
        "has been revoked",
    );
    assert!(upstream.calls_of("revoked").is_empty());
    assert_eq!(Agent::new(&url, Some(&revocable)).open().await.0, 401);

    // Expired: refused once its time is up, and no new session opens.
    // Issued to expire in 4s: long enough for one call on a busy machine.
    let (expiring, expiring_id) = issue(&data, &["--expires-in", "4s"]);
    let (_, listed, _) = cli(&data, &["token", "list", "--json"]);
    let listed: Value = serde_json::from_str(&listed).expect("token list");
    let expires_at = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["id"] == expiring_id.as_str())
        .and_then(|t| t["expires_at"].as_str())
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339"))
        .expect("an expiry");
    let mut agent = Agent::new(&url, Some(&expiring));
    agent.open().await;
    assert_allowed(
        &agent
            .call("echo", json!({"message": "a", "case": "expire-ok"}))
            .await,
    );
    let left = (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(300)).await;
    assert_refused(
        &agent
            .call("echo", json!({"message": "b", "case": "expired"}))
            .await,
        "has expired",
    );
    assert!(upstream.calls_of("expired").is_empty());
    assert_eq!(Agent::new(&url, Some(&expiring)).open().await.0, 401);

    // A session stays with its token.
    let (first, _) = issue(&data, &[]);
    let (second, _) = issue(&data, &[]);
    let mut agent = Agent::new(&url, Some(&first));
    agent.open().await;
    agent.bearer = Some(second);
    let (status, _) = agent
        .post(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .await;
    assert_eq!(status, 403);

    // The scenario's policy: a rule denies, with its message.
    let (open_token, _) = issue(&data, &[]);
    let mut agent = Agent::new(&url, Some(&open_token));
    agent.open().await;
    assert_refused(
        &agent
            .call("issue_refund", json!({"amount": 900, "case": "policy"}))
            .await,
        "refunds over 500 need a human",
    );
    assert_allowed(
        &agent
            .call("issue_refund", json!({"amount": 90, "case": "policy-ok"}))
            .await,
    );
    assert!(upstream.calls_of("policy").is_empty());

    // Approval denied.
    let waiting = {
        let mut agent = Agent::new(&url, Some(&open_token));
        agent.open().await;
        tokio::spawn(async move {
            agent
                .call(
                    "send_email",
                    json!({"to": "a@example.test", "case": "denied"}),
                )
                .await
        })
    };
    let approval = pending_approval(&data, "send_email");
    let id = approval["id"].as_str().expect("approval id");
    let (code, _, err) = cli(&data, &["deny", id, "--reason", "not today"]);
    assert_eq!(code, 0, "{err}");
    assert_refused(&waiting.await.expect("call"), "not today");
    assert!(upstream.calls_of("denied").is_empty());

    // Approval for other arguments than the call's.
    let waiting = {
        let mut agent = Agent::new(&url, Some(&open_token));
        agent.open().await;
        tokio::spawn(async move {
            agent
                .call(
                    "send_email",
                    json!({"to": "b@example.test", "case": "swapped"}),
                )
                .await
        })
    };
    let approval = pending_approval(&data, "send_email");
    let id = approval["id"].as_str().expect("approval id");
    let other_hash = "0".repeat(64);
    let (code, _, err) = cli(&data, &["approve", id, "--args-hash", &other_hash]);
    assert_eq!(code, 0, "{err}");
    assert_refused(&waiting.await.expect("call"), "given for other arguments");
    assert!(upstream.calls_of("swapped").is_empty());

    // Approval timed out (the scenario waits 5s).
    let mut agent = Agent::new(&url, Some(&open_token));
    agent.open().await;
    assert_refused(
        &agent
            .call(
                "send_email",
                json!({"to": "c@example.test", "case": "timeout"}),
            )
            .await,
        "none came within 5s",
    );
    assert!(upstream.calls_of("timeout").is_empty());

    // Approved: goes through, once.
    let waiting = {
        let mut agent = Agent::new(&url, Some(&open_token));
        agent.open().await;
        tokio::spawn(async move {
            let answer = agent
                .call(
                    "send_email",
                    json!({"to": "d@example.test", "case": "approved"}),
                )
                .await;
            (answer, agent.last_body)
        })
    };
    let approval = pending_approval(&data, "send_email");
    let id = approval["id"].as_str().expect("id").to_owned();
    let (code, _, err) = cli(&data, &["approve", &id]);
    assert_eq!(code, 0, "{err}");
    let (answer, stream) = waiting.await.expect("call");
    assert_allowed(&answer);
    // While it waited, the client was told why, and how to decide.
    assert!(
        stream.contains("waits for a person's approval")
            && stream.contains(&format!("sandbar approve {id}")),
        "{stream}"
    );
    assert_eq!(upstream.calls_of("approved").len(), 1);

    // The upstream echoes the injected credential in an error: the agent
    // does not see it.
    let answer = agent.call("leak_headers", json!({"case": "leak"})).await;
    let (is_error, text) = outcome(&answer);
    assert!(
        is_error && text.contains("rejected a request with headers"),
        "{answer}"
    );
    assert!(
        !answer.to_string().contains(UPSTREAM_KEY),
        "the agent saw the key: {answer}"
    );

    let stderr = server.stop();
    assert!(!stderr.contains(UPSTREAM_KEY), "the key reached the log");
    assert!(
        stderr.contains("authentication required"),
        "the server does not say it requires authentication: {stderr}"
    );
    // No sink holds the key or any bearer value.
    for entry in walk(&data) {
        let bytes = std::fs::read(&entry).expect("read sink");
        for needle in [
            UPSTREAM_KEY,
            narrow.as_str(),
            budgeted.as_str(),
            open_token.as_str(),
        ] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds a secret value",
                entry.display()
            );
        }
    }

    // Every decision is a policy event, with who, what, which rule, outcome.
    let (code, out, _) = cli(&data, &["runs", "list", "--json", "--limit", "100"]);
    assert_eq!(code, 0);
    let runs: Value = serde_json::from_str(&out).expect("runs");
    let mut decisions = Vec::new();
    for run in runs.as_array().expect("runs") {
        let (_, shown, _) = cli(
            &data,
            &["runs", "show", run["id"].as_str().expect("id"), "--json"],
        );
        let shown: Value = serde_json::from_str(&shown).expect("show");
        for event in shown["events"].as_array().expect("events") {
            if event["kind"] == "policy" {
                decisions.push(event["payload"].clone());
            }
        }
    }
    for code in [
        "tool_not_allowed",
        "arguments_not_allowed",
        "upstream_not_allowed",
        "host_not_allowed",
        "over_budget",
        "rate_limited",
        "revoked",
        "expired",
        "denied",
        "approval_denied",
        "approval_mismatch",
        "approval_timeout",
    ] {
        let found = decisions
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("no policy event with code {code}: {decisions:#?}"));
        assert_eq!(found["decision"], "deny");
        assert!(
            found["token"]
                .as_str()
                .is_some_and(|t| t.starts_with("tok_")),
            "{found}"
        );
        assert!(found["rule"].is_string(), "{found}");
    }
    assert!(
        decisions
            .iter()
            .any(|d| d["decision"] == "allow" && d["rule"] == "mail-needs-approval")
    );
    assert!(
        decisions
            .iter()
            .any(|d| d["decision"] == "approval_requested")
    );
    let (code, trail, _) = cli(&data, &["audit", "--json"]);
    assert_eq!(code, 0);
    for action in [
        "token.issue",
        "token.revoke",
        "approval.approve",
        "approval.deny",
    ] {
        assert!(trail.contains(action), "no {action} in the audit trail");
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs `sandbar serve --stdio` with `env`, sends `messages` (one per
/// line), closes its input and returns (exit code, answers, stderr).
fn stdio_session(
    scenario: &Path,
    data: &Path,
    env: &[(&str, &str)],
    messages: &[Value],
) -> (i32, Vec<Value>, String) {
    let mut command = common::sandbar();
    command
        .args(["serve", "--stdio", "--auth", "required", "--data"])
        .arg(data)
        .arg(scenario)
        .env_remove("SANDBAR_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn stdio server");
    let mut stdin = child.stdin.take().expect("stdin");
    for message in messages {
        // The server may have refused to start and closed its input.
        if writeln!(stdin, "{message}").is_err() {
            break;
        }
    }
    // Give the answers time to come before the input closes.
    std::thread::sleep(Duration::from_millis(800));
    drop(stdin);
    let output = child.wait_with_output().expect("stdio server output");
    let answers = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (
        output.status.code().unwrap_or(-1),
        answers,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_stdio_session_takes_its_token_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let scenario = write_scenario(
        dir.path(),
        "stdio.yaml",
        r#"
version: 1
name: stdio-access
tools:
  - name: lookup
    respond: [{text: "found"}]
  - name: delete_everything
    respond: [{text: "deleted"}]
"#,
    );
    let session = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "stdio", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "lookup", "arguments": {}}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
               "params": {"name": "delete_everything", "arguments": {}}}),
    ];

    // Required and absent: the server does not start.
    let (code, answers, stderr) = stdio_session(&scenario, &data, &[], &session);
    assert_ne!(code, 0);
    assert!(answers.is_empty());
    assert!(stderr.contains("set SANDBAR_TOKEN"), "{stderr}");

    // A token for another scenario: refused at start, with the reason.
    let (elsewhere, _) = issue(&data, &["--scenario", "another"]);
    let (code, _, stderr) =
        stdio_session(&scenario, &data, &[("SANDBAR_TOKEN", &elsewhere)], &session);
    assert_ne!(code, 0);
    assert!(stderr.contains("is for the scenario `another`"), "{stderr}");
    assert!(!stderr.contains(&elsewhere), "the token reached the log");

    // A token that may only look things up.
    let (token, id) = issue(
        &data,
        &["--allow-tool", "lookup", "--scenario", "stdio-access"],
    );
    let (code, answers, stderr) =
        stdio_session(&scenario, &data, &[("SANDBAR_TOKEN", &token)], &session);
    assert_eq!(code, 0, "{stderr}");
    let by_id = |id: u64| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id}: {answers:?}"))
    };
    let tools: Vec<&str> = by_id(2)["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tools, ["lookup"]);
    assert_eq!(by_id(3)["result"]["content"][0]["text"], "found");
    assert_refused(by_id(4), "does not allow the tool `delete_everything`");
    let run = common::newest_run(&data);
    assert_eq!(run["events"][0]["payload"]["token"], id.as_str());
    let (code, timeline, _) = cli(
        &data,
        &["runs", "show", run["run"]["id"].as_str().expect("id")],
    );
    assert_eq!(code, 0);
    assert!(
        timeline.contains("policy deny delete_everything by rule token scope")
            && timeline.contains("policy allow lookup"),
        "{timeline}"
    );

    // A token bound to one run: its first session is that run, and it
    // opens no other.
    let (bound, _) = issue(&data, &["--run", "ci-trial-1"]);
    let (code, answers, stderr) = stdio_session(
        &scenario,
        &data,
        &[("SANDBAR_TOKEN", &bound)],
        &session[..4],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(common::newest_run(&data)["run"]["id"], "ci-trial-1");
    let (_, answers, _) = stdio_session(
        &scenario,
        &data,
        &[("SANDBAR_TOKEN", &bound)],
        &session[..1],
    );
    let refused = answers
        .iter()
        .find(|a| a["id"] == 1)
        .unwrap_or_else(|| panic!("no answer to initialize: {answers:?}"));
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bound to run ci-trial-1, which has already been started")),
        "{refused}"
    );
}

#[test]
fn token_and_approval_commands_refuse_bad_input_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    for (args, code, says) in [
        (
            vec!["token", "issue", "--rate", "abc"],
            2,
            "--rate takes CALLS/DURATION",
        ),
        (
            vec!["token", "issue", "--rate", "0/1m"],
            2,
            "at least one call",
        ),
        (
            vec!["token", "issue", "--arg-schema", "foo"],
            2,
            "takes TOOL=FILE",
        ),
        (
            vec!["token", "issue", "--arg-rule", "echo=arg.amount > 1"],
            2,
            "did you mean `args`",
        ),
        (
            vec!["token", "issue", "--arg-rule", "echo=args.amount >"],
            2,
            "not a valid CEL expression",
        ),
        (
            vec!["token", "issue", "--expires-at", "soon"],
            2,
            "not an RFC 3339 time",
        ),
        (
            vec!["token", "issue", "--expires-in", "5parsecs"],
            2,
            "unknown duration unit",
        ),
        (vec!["token", "issue", "--budget", "0"], 2, "can do nothing"),
        (
            vec!["token", "issue", "--tenant", "a/b"],
            2,
            "is not a tenant id",
        ),
        (
            vec!["token", "revoke", "tok_nope"],
            1,
            "has no token tok_nope",
        ),
        (vec!["approve", "apr_nope"], 1, "has no approval apr_nope"),
        (
            vec!["approve", "apr_x", "--args-hash", "zz"],
            2,
            "64 hex digits",
        ),
        (
            vec!["deny", "apr_nope", "--reason", "no"],
            1,
            "has no approval apr_nope",
        ),
    ] {
        let (status, out, err) = cli(&data, &args);
        assert_eq!(status, code, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Nothing was issued by any of them.
    let (_, out, _) = cli(&data, &["token", "list", "--json"]);
    let tokens: Value = serde_json::from_str(&out).expect("token list");
    assert_eq!(tokens["tokens"], json!([]));
}

#[test]
fn what_token_list_prints_of_names_and_scopes_passes_the_redactor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_, _) = issue(
        &data,
        &[
            "--name",
            "agent of ada@realmail.net",
            "--arg-rule",
            "send_email=args.to != 'ada@realmail.net'",
        ],
    );
    for args in [&["token", "list"][..], &["token", "list", "--json"][..]] {
        let (code, out, err) = cli(&data, args);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("tok_"), "{out}");
        assert!(
            !out.contains("ada@realmail.net"),
            "{args:?} printed the address: {out}"
        );
    }
}
