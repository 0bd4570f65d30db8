//! `mcp-floor-server`: the cheapest MCP server the Rust SDK allows, for
//! telling the SDK's cost from Sandbar's.
//!
//! It serves one tool, `echo`, answering `Echo: <message>` like Sandbar's
//! `bench/scenarios/echo.yaml` and the reference server's `echo`, over the
//! same rmcp Streamable HTTP service and session settings that
//! `sandbar serve` uses (sessions with SSE answers, or `--stateless` with
//! JSON answers), but with no pipeline behind it: no schema check, no
//! template, no recording. Whatever Sandbar costs above this floor is its
//! own; what this costs is the SDK's, hyper's and the kernel's.
//!
//! With `--record DIR` it also records every call through Sandbar's own
//! store and redactor (`sandbar-store`, `sandbar-redact`), the way
//! `Run::handle` does: a request event, then a response event, answering
//! once the response event is durable. That splits Sandbar's cost into
//! recording and the rest of its pipeline.
//!
//! With `--bare` it serves no SDK at all: a plain axum handler that answers
//! `initialize`, notifications and `tools/call` of `echo` with canned JSON
//! over HTTP/1.1. No MCP server can be cheaper over HTTP on the same
//! machine: it is the ceiling of what any server can reach with a given
//! load generator, and so tells whether a throughput target is reachable
//! at all.
//!
//! With `--bare --journal FILE` a call's two events are redacted with the
//! same redactor and appended to FILE as two JSON lines, with one `write`
//! under a lock, before the answer: durable against the process being
//! killed, as a SQLite commit in WAL mode with `synchronous=NORMAL` is. It
//! is the ceiling of any store whose point of durability is an append to a
//! file (with its database, if any, filled off the request path).
//!
//! The first line on stdout is `listening on http://HOST:PORT/mcp`, as with
//! `sandbar serve`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use clap::Parser;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, ServerHandler};
use sandbar_redact::{Redactor, SharedRedactor};
use sandbar_store::{Direction, EventKind, NewEvent, NewRun, Store, StoreOptions, Ticket};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The allocator `sandbar` uses, so that the floors differ from it only in
/// what they leave out.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    about = "An rmcp echo server with nothing behind it: the floor Sandbar is measured against."
)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Serve without sessions, with JSON answers (as `sandbar serve --stateless`).
    #[arg(long)]
    stateless: bool,
    /// Set TCP_NODELAY on accepted connections. Off by default, like
    /// `sandbar serve` today: `axum::serve` leaves Nagle's algorithm on.
    #[arg(long)]
    nodelay: bool,
    /// Record every call into a Sandbar store in this directory.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// No SDK: canned JSON answers from a plain HTTP handler (the ceiling).
    #[arg(long, conflicts_with = "stateless")]
    bare: bool,
    /// With `--bare`: spin this many microseconds on each call before it
    /// is recorded, standing in for a pipeline's work on the request path.
    #[arg(
        long,
        value_name = "MICROSECONDS",
        default_value_t = 0,
        requires = "bare"
    )]
    busy_us: u64,
    /// With `--bare`: append every call's two events, redacted, to this
    /// file (JSON lines) before answering, instead of recording them in a
    /// store.
    #[arg(
        long,
        value_name = "FILE",
        requires = "bare",
        conflicts_with = "record"
    )]
    journal: Option<PathBuf>,
}

/// `--bare`'s state: the recorder, the number of the next session, and the
/// work each call stands for (`--busy-us`).
#[derive(Clone)]
struct Bare {
    recorder: Option<Arc<Recorder>>,
    journal: Option<Arc<Journal>>,
    sessions: Arc<AtomicU64>,
    busy: std::time::Duration,
}

/// `--bare`: one POST handler, JSON in, JSON out; `initialize` opens a
/// session (with `--record`, its run), and a call's two events are recorded
/// in its session's run.
async fn bare(
    axum::extract::State(state): axum::extract::State<Bare>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse as _;
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let Some(id) = message.get("id") else {
        // A notification.
        return StatusCode::ACCEPTED.into_response();
    };
    let mut session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let result = match message.get("method").and_then(Value::as_str) {
        Some("initialize") => {
            session = format!("s{}", state.sessions.fetch_add(1, Ordering::Relaxed));
            if let Some(recorder) = &state.recorder
                && let Err(e) = recorder.start_run(&session).await
            {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("could not start a run: {e}"),
                )
                    .into_response();
            }
            json!({
            "protocolVersion": message.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-06-18")),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "mcp-floor-server-bare", "version": env!("CARGO_PKG_VERSION")},
            })
        }
        Some("tools/call") => {
            let text = message
                .pointer("/params/arguments/message")
                .and_then(Value::as_str)
                .unwrap_or("");
            let result = json!({"content": [{"type": "text", "text": format!("Echo: {text}")}], "isError": false});
            let began = std::time::Instant::now();
            while began.elapsed() < state.busy {
                std::hint::spin_loop();
            }
            if let Some(journal) = &state.journal {
                let params = message.get("params").cloned().unwrap_or_default();
                if let Err(e) = journal.append(&session, id, params, result.clone()) {
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("could not record this call: {e}"),
                    )
                        .into_response();
                }
            }
            if let Some(recorder) = &state.recorder {
                let request_id = id.to_string();
                let params = message.get("params").cloned().unwrap_or_default();
                recorder.record(
                    &session,
                    EventKind::Request,
                    Direction::ToServer,
                    &request_id,
                    params,
                );
                let ticket = recorder.record(
                    &session,
                    EventKind::Response,
                    Direction::ToClient,
                    &request_id,
                    result.clone(),
                );
                if let Some(ticket) = ticket
                    && let Err(e) = recorder.store.durable(ticket).await
                {
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("could not record this call: {e}"),
                    )
                        .into_response();
                }
            }
            result
        }
        _ => json!({}),
    };
    let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
    let mut response = axum::Json(answer).into_response();
    if let Ok(value) = HeaderValue::from_str(&session) {
        response.headers_mut().insert("mcp-session-id", value);
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Sandbar's recording alone: two events per call, one run per session
/// (`--bare`, as `sandbar serve` and `sandbar replay` do) or one run for
/// every session (behind the SDK, which does not say which session a call
/// is in).
struct Recorder {
    store: Store,
    /// Each run's id and last event number by session id (`""` for the
    /// SDK's calls). The lock is held while an event gets its number and is
    /// queued, as in `Run::record`.
    runs: Mutex<HashMap<String, (String, u64)>>,
}

impl Recorder {
    const TENANT: &str = "default";

    async fn open(dir: &std::path::Path) -> anyhow::Result<Recorder> {
        let redactor = SharedRedactor::new(Redactor::new());
        let store = Store::open(dir, redactor, StoreOptions::default())
            .await
            .with_context(|| format!("cannot open a store in {}", dir.display()))?;
        let recorder = Recorder {
            store,
            runs: Mutex::new(HashMap::new()),
        };
        recorder.start_run("").await?;
        Ok(recorder)
    }

    /// Creates the run of session `session`.
    async fn start_run(&self, session: &str) -> anyhow::Result<()> {
        let now = chrono::Utc::now();
        let run_id = format!("run_floor_{}_{session}", now.timestamp_millis());
        self.store
            .create_run(&NewRun {
                id: run_id.clone(),
                tenant: Self::TENANT.to_owned(),
                scenario_name: "mcp-floor-server".to_owned(),
                scenario_hash: String::new(),
                seed: 0,
                clock_start: now,
                started_at: now,
                transport: "http".to_owned(),
                labels: json!({}),
            })
            .await?;
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session.to_owned(), (run_id, 0));
        Ok(())
    }

    /// Queues one event of session `session`'s run (`None` if it has none).
    fn record(
        &self,
        session: &str,
        kind: EventKind,
        direction: Direction,
        request_id: &str,
        payload: Value,
    ) -> Option<Ticket> {
        let now = chrono::Utc::now();
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let (run_id, seq) = runs.get_mut(session)?;
        *seq += 1;
        Some(self.store.append(NewEvent {
            run_id: run_id.clone(),
            tenant: Self::TENANT.to_owned(),
            seq: *seq,
            kind,
            direction,
            method: Some("tools/call".to_owned()),
            request_id: Some(request_id.to_owned()),
            virtual_time: now,
            wall_time: now,
            payload,
        }))
    }
}

/// `--journal`: a call's events appended to one file, the append being the
/// point of durability.
struct Journal {
    redactor: Redactor,
    /// The file, and each session's last event number.
    file: Mutex<(std::fs::File, HashMap<String, u64>)>,
}

impl Journal {
    fn open(path: &std::path::Path) -> anyhow::Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Journal {
            redactor: Redactor::new(),
            file: Mutex::new((file, HashMap::new())),
        })
    }

    /// Redacts a call's request and response, and appends them as two
    /// lines with one `write`.
    fn append(
        &self,
        session: &str,
        id: &Value,
        mut params: Value,
        mut result: Value,
    ) -> std::io::Result<()> {
        self.redactor.redact_json(&mut params);
        self.redactor.redact_json(&mut result);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = |seq: u64, kind: &str, direction: &str, payload: &Value| {
            json!({
                "run": session, "tenant": Recorder::TENANT, "seq": seq, "kind": kind,
                "direction": direction, "method": "tools/call", "request_id": id,
                "virtual_time": now, "wall_time": now, "payload": payload,
            })
        };
        let mut guard = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let (file, sessions) = &mut *guard;
        let seq = sessions.entry(session.to_owned()).or_default();
        let mut bytes = Vec::with_capacity(512);
        for (kind, direction, payload) in [
            ("request", "to_server", &params),
            ("response", "to_client", &result),
        ] {
            *seq += 1;
            serde_json::to_writer(&mut bytes, &line(*seq, kind, direction, payload))?;
            bytes.push(b'\n');
        }
        file.write_all(&bytes)
    }
}

#[derive(Clone)]
struct Echo {
    tools: Arc<Vec<Tool>>,
    recorder: Option<Arc<Recorder>>,
}

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("mcp-floor-server", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let request_id = serde_json::to_string(&context.id).unwrap_or_default();
        if let Some(recorder) = &self.recorder {
            let params = json!({"name": request.name, "arguments": request.arguments});
            recorder.record(
                "",
                EventKind::Request,
                Direction::ToServer,
                &request_id,
                params,
            );
        }
        if request.name != "echo" {
            return Err(McpError::invalid_params(
                format!("unknown tool {}", request.name),
                None,
            ));
        }
        let message = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("message"))
            .and_then(Value::as_str)
            .ok_or_else(|| McpError::invalid_params("message must be a string", None))?;
        let result = CallToolResult::success(vec![ContentBlock::text(format!("Echo: {message}"))]);
        if let Some(recorder) = &self.recorder {
            let payload = serde_json::to_value(&result).unwrap_or_default();
            if let Some(ticket) = recorder.record(
                "",
                EventKind::Response,
                Direction::ToClient,
                &request_id,
                payload,
            ) {
                recorder.store.durable(ticket).await.map_err(|e| {
                    McpError::internal_error(format!("could not record this call: {e}"), None)
                })?;
            }
        }
        Ok(CallToolResponse::from(result))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let schema = json!({
        "type": "object",
        "properties": {"message": {"type": "string", "description": "Message to echo"}},
        "required": ["message"],
    });
    let Value::Object(schema) = schema else {
        anyhow::bail!("the schema is an object")
    };
    let recorder = match &cli.record {
        Some(dir) => Some(Arc::new(Recorder::open(dir).await?)),
        None => None,
    };
    let handler = Echo {
        tools: Arc::new(vec![Tool::new(
            "echo",
            "Echoes back the input string",
            schema,
        )]),
        recorder: recorder.clone(),
    };

    let stop = CancellationToken::new();
    // The same settings as Sandbar's HTTP front, so that only what stands
    // behind the handler differs.
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(["localhost", "127.0.0.1", "::1", "[::1]"])
        .with_allowed_origins(["http://localhost:*", "http://127.0.0.1:*"])
        .enforce_origin_validation()
        .with_legacy_session_mode(!cli.stateless)
        .with_json_response(cli.stateless)
        .with_cancellation_token(stop.child_token());
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = if cli.bare {
        axum::Router::new()
            .route(
                "/mcp",
                axum::routing::post(bare).delete(|| async { axum::http::StatusCode::OK }),
            )
            .with_state(Bare {
                recorder: recorder.clone(),
                journal: match &cli.journal {
                    Some(path) => Some(Arc::new(Journal::open(path)?)),
                    None => None,
                },
                sessions: Arc::new(AtomicU64::new(0)),
                busy: std::time::Duration::from_micros(cli.busy_us),
            })
    } else {
        axum::Router::new().nest_service("/mcp", service)
    };
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let address = listener.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{address}/mcp")?;
        stdout.flush()?;
    }
    let nodelay = cli.nodelay;
    let listener = listener.tap_io(move |tcp| {
        if nodelay && let Err(e) = tcp.set_nodelay(true) {
            eprintln!("mcp-floor-server: cannot set TCP_NODELAY: {e}");
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            // Ends the sessions' open streams, or shutdown would wait on them.
            stop.cancel();
        })
        .await?;
    if let Some(recorder) = recorder {
        recorder.store.flush().await?;
    }
    Ok(())
}
