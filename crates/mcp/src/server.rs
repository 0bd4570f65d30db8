//! The MCP front's handler: translates each MCP request into a [`Call`],
//! hands it to the run's pipeline, and translates the [`Outcome`] back.
//! No behaviour lives here; anything a call does is decided by the engine.

// Logging, sampling and resource subscriptions are deprecated by the 2026-07-28
// revision (SEP-2577) but remain part of every earlier protocol version this
// front serves, so it keeps implementing them.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelledNotificationParam, CompleteRequestParams,
    CompleteResult, CustomNotification, CustomRequest, CustomResult, ErrorCode,
    GetPromptRequestParams, GetPromptResponse, Implementation, InitializeRequestParams,
    InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, ServerNotification, ServerRequest, SetLevelRequestParams,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use sandbar_engine::{
    Call, Client, ClientError, CompletionRef, Engine, EngineError, Method, Outcome, Principal, Run,
    RunOptions,
};
use sandbar_scenario::LogLevel;
use sandbar_store::RunStatus;

use crate::direct::SessionLink;

/// The header that names the shared run a stateless request belongs to.
pub const RUN_HEADER: &str = "x-sandbar-run";

/// What every handler of one server shares.
#[derive(Debug)]
pub struct Shared {
    engine: Arc<Engine>,
    transport: &'static str,
    /// Overrides the scenario's seed for every run.
    seed: Option<u64>,
    /// Runs of stateless requests, by the name in [`RUN_HEADER`].
    stateless_runs: tokio::sync::Mutex<HashMap<String, Arc<Run>>>,
    /// Every run this server started, so shutdown can end them all.
    live_runs: Mutex<Vec<Weak<Run>>>,
    /// HTTP session id to its run, for answering calls without the SDK
    /// (`direct.rs`), and what its client can be asked.
    session_runs: std::sync::RwLock<HashMap<Arc<str>, SessionEntry>>,
    /// Who may connect.
    access: Access,
    /// Whether the offered lists may change while a client is connected,
    /// so the server says it will tell (`listChanged`).
    lists_change: bool,
}

/// Who may connect, and as whom.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Refuse clients without a valid bearer token. Without it the server
    /// is open (the local single-user default), though a client that
    /// presents a token is still held to it.
    pub required: bool,
    /// The token of the one stdio client (from `SANDBAR_TOKEN`), resolved
    /// at start.
    pub stdio_principal: Option<Arc<Principal>>,
}

impl Shared {
    pub fn new(engine: Arc<Engine>, transport: &'static str, seed: Option<u64>) -> Arc<Shared> {
        Shared::with_access(engine, transport, seed, Access::default())
    }

    /// A server that authenticates its clients as `access` says.
    pub fn with_access(
        engine: Arc<Engine>,
        transport: &'static str,
        seed: Option<u64>,
        access: Access,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            access,
            lists_change: engine.lists_may_change(),
            engine,
            transport,
            seed,
            stateless_runs: tokio::sync::Mutex::new(HashMap::new()),
            live_runs: Mutex::new(Vec::new()),
            session_runs: std::sync::RwLock::new(HashMap::new()),
        })
    }

    /// Whether clients must authenticate.
    pub fn auth_required(&self) -> bool {
        self.access.required
    }

    async fn start_run(
        &self,
        label: Option<&str>,
        principal: Option<Arc<Principal>>,
    ) -> Result<Arc<Run>, McpError> {
        let mut options = RunOptions::new(self.transport);
        options.seed = self.seed;
        if let Some(label) = label {
            options.labels = json!({"stateless_run": label});
        }
        options.principal = principal;
        let run = self.engine.start_run(options).await.map_err(|e| match e {
            EngineError::RunTaken(_) => McpError::invalid_request(e.to_string(), None),
            e => McpError::internal_error(format!("sandbar could not start a run: {e}"), None),
        })?;
        let mut live = self.live_runs.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&run));
        Ok(run)
    }

    async fn stateless_run(
        &self,
        name: &str,
        principal: Option<Arc<Principal>>,
    ) -> Result<Arc<Run>, McpError> {
        // Each token has its own shared runs: a run never mixes callers.
        let key = match &principal {
            Some(p) => format!("{}\u{0}{name}", p.token_id),
            None => name.to_owned(),
        };
        let mut runs = self.stateless_runs.lock().await;
        if let Some(run) = runs.get(&key) {
            return Ok(run.clone());
        }
        let run = self.start_run(Some(name), principal).await?;
        runs.insert(key, run.clone());
        Ok(run)
    }

    /// Ends every run still open; used at shutdown.
    pub async fn finish_all(&self) {
        let runs: Vec<Arc<Run>> = {
            let live = self.live_runs.lock().unwrap_or_else(|p| p.into_inner());
            live.iter().filter_map(Weak::upgrade).collect()
        };
        for run in runs {
            if let Err(e) = run.finish(RunStatus::Completed).await {
                tracing::warn!(run = run.id(), "could not end run: {e}");
            }
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The run of an HTTP session, once its handler has seen the session id.
    pub fn session_run(&self, id: &str) -> Option<Arc<Run>> {
        let map = self.session_runs.read().unwrap_or_else(|p| p.into_inner());
        map.get(id).and_then(|entry| entry.run.upgrade())
    }

    /// The run of an HTTP session and what its client can be asked, once
    /// its handler has seen the session id.
    pub(crate) fn session_client(&self, id: &str) -> Option<(Arc<Run>, Arc<SessionLink>)> {
        let map = self.session_runs.read().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(id)?;
        Some((entry.run.upgrade()?, entry.link.clone()))
    }

    /// What the guard keeps of a session: what its client can be asked,
    /// the questions it has yet to answer, its calls' streams.
    pub(crate) fn session_link(&self, id: &str) -> Option<Arc<SessionLink>> {
        let map = self.session_runs.read().unwrap_or_else(|p| p.into_inner());
        map.get(id).map(|entry| entry.link.clone())
    }

    /// The token a session's run was started with, if it has one.
    pub fn session_principal(&self, id: &str) -> Option<Arc<Principal>> {
        self.session_run(id)
            .and_then(|run| run.principal().cloned())
    }

    /// The token a session was opened with: `None` when the session is
    /// not known yet, `Some(None)` when it was opened without one.
    pub fn session_token(&self, id: &str) -> Option<Option<String>> {
        let map = self.session_runs.read().unwrap_or_else(|p| p.into_inner());
        map.get(id).map(|entry| {
            entry
                .run
                .upgrade()
                .and_then(|run| run.principal().map(|p| p.token_id.clone()))
        })
    }

    fn bind_session(&self, id: Arc<str>, run: &Arc<Run>, link: SessionLink) {
        let mut map = self.session_runs.write().unwrap_or_else(|p| p.into_inner());
        map.insert(
            id,
            SessionEntry {
                run: Arc::downgrade(run),
                link: Arc::new(link),
            },
        );
    }

    /// The session is over: its calls are cancelled and its questions stop
    /// waiting ([`SessionLink::close`]).
    fn unbind_session(&self, id: &str) {
        let entry = self
            .session_runs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(entry) = entry {
            entry.link.close();
        }
    }
}

/// An HTTP session's run, and what the guard keeps of it.
#[derive(Debug)]
struct SessionEntry {
    run: Weak<Run>,
    link: Arc<SessionLink>,
}

/// One MCP handler. A session (stdio, or Streamable HTTP with
/// `Mcp-Session-Id`) gets one handler and one run; a stateless request gets
/// a fresh handler that joins the shared run named by its `X-Sandbar-Run`
/// header (`default` when absent).
pub struct SandbarServer {
    shared: Arc<Shared>,
    run: OnceCell<Arc<Run>>,
    /// Whether this handler's run is its own (ended when the handler goes).
    owns_run: std::sync::atomic::AtomicBool,
    /// The HTTP session id, once a request has carried it.
    session_id: std::sync::OnceLock<Arc<str>>,
}

impl SandbarServer {
    pub fn new(shared: Arc<Shared>) -> SandbarServer {
        SandbarServer {
            shared,
            run: OnceCell::new(),
            owns_run: std::sync::atomic::AtomicBool::new(false),
            session_id: std::sync::OnceLock::new(),
        }
    }

    /// Remembers which HTTP session this handler serves, so requests of the
    /// session can find its run without going through the SDK.
    fn learn_session(&self, extensions: &rmcp::model::Extensions, peer: &Peer<RoleServer>) {
        if self.session_id.get().is_some()
            || !self.owns_run.load(std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let Some(run) = self.run.get() else { return };
        let id = extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map(Arc::<str>::from);
        if let Some(id) = id
            && self.session_id.set(id.clone()).is_ok()
        {
            let client = PeerClient::new(peer.clone(), self.shared.transport);
            self.shared
                .bind_session(id, run, SessionLink::new(|c| client.supports(c)));
        }
    }

    /// The token the request was authenticated with: the HTTP guard's
    /// finding, or the stdio client's.
    fn principal(&self, extensions: &rmcp::model::Extensions) -> Option<Arc<Principal>> {
        extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Principal>>())
            .cloned()
            .or_else(|| self.shared.access.stdio_principal.clone())
    }

    async fn session_run(&self, principal: Option<Arc<Principal>>) -> Result<Arc<Run>, McpError> {
        self.run
            .get_or_try_init(|| async {
                let run = self.shared.start_run(None, principal).await?;
                self.owns_run
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, McpError>(run)
            })
            .await
            .cloned()
    }

    async fn run_for(&self, context: &RequestContext<RoleServer>) -> Result<Arc<Run>, McpError> {
        if let Some(run) = self.run.get() {
            return Ok(run.clone());
        }
        // No `initialize` reached this handler: the request is stateless.
        let name = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get(RUN_HEADER))
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .unwrap_or("default")
            .to_owned();
        let principal = self.principal(&context.extensions);
        let run = self.shared.stateless_run(&name, principal).await?;
        Ok(self.run.get_or_init(|| async { run }).await.clone())
    }

    async fn dispatch<T: DeserializeOwned>(
        &self,
        method: Method,
        context: RequestContext<RoleServer>,
    ) -> Result<T, McpError> {
        let run = self.run_for(&context).await?;
        self.learn_session(&context.extensions, &context.peer);
        let name = method.name();
        let call = Call {
            method,
            request_id: Some(request_id_text(&context)),
            progress_token: context
                .meta
                .get_progress_token()
                .and_then(|t| serde_json::to_value(t).ok()),
            cancel: context.ct.clone(),
        };
        let client = PeerClient::new(context.peer.clone(), self.shared.transport);
        into_result(name, run.handle(call, &client).await)
    }
}

impl Drop for SandbarServer {
    fn drop(&mut self) {
        if let Some(id) = self.session_id.get() {
            self.shared.unbind_session(id);
        }
        if !self.owns_run.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let (Some(run), Ok(handle)) = (
            self.run.get().cloned(),
            tokio::runtime::Handle::try_current(),
        ) {
            handle.spawn(async move {
                if let Err(e) = run.finish(RunStatus::Completed).await {
                    tracing::warn!(run = run.id(), "could not end run: {e}");
                }
            });
        }
    }
}

fn request_id_text(context: &RequestContext<RoleServer>) -> String {
    match serde_json::to_value(&context.id) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// For a method Sandbar serves, what is wrong with `params`; `None` for a
/// method it does not know.
fn params_problem(method: &str, params: Value) -> Option<String> {
    fn parse<T: DeserializeOwned>(params: Value) -> String {
        match serde_json::from_value::<T>(params) {
            Err(e) => e.to_string(),
            Ok(_) => "the params do not fit the method".to_owned(),
        }
    }
    Some(match method {
        "tools/call" => parse::<CallToolRequestParams>(params),
        "resources/read" => parse::<ReadResourceRequestParams>(params),
        "prompts/get" => parse::<GetPromptRequestParams>(params),
        "completion/complete" => parse::<CompleteRequestParams>(params),
        "logging/setLevel" => parse::<SetLevelRequestParams>(params),
        "resources/subscribe" | "resources/unsubscribe" => parse::<SubscribeRequestParams>(params),
        "initialize" => parse::<InitializeRequestParams>(params),
        "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list" => {
            parse::<Option<PaginatedRequestParams>>(params)
        }
        "ping" => "ping takes no params".to_owned(),
        _ => return None,
    })
}

/// Turns an outcome into the SDK's result type, or a JSON-RPC error. A
/// result is checked by the same rule `sandbar-upstream` applies to what
/// upstreams answer (`sandbar_upstream::parse_result`), so a forwarded
/// answer the front could not send was already refused, and recorded as
/// refused, before it got here.
fn into_result<T: DeserializeOwned>(method: &str, outcome: Outcome) -> Result<T, McpError> {
    match outcome {
        Outcome::Result(value) => sandbar_upstream::parse_result(method, &value).map_err(|e| {
            McpError::internal_error(format!("sandbar produced a malformed result: {e}"), None)
        }),
        Outcome::Error(e) => Err(McpError::new(ErrorCode(e.code), e.message, e.data)),
    }
}

impl ServerHandler for SandbarServer {
    fn get_info(&self) -> ServerConfig {
        let scenario = self.shared.engine.scenario();
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_prompts()
            .enable_logging()
            .enable_completions()
            .build();
        // The lists change only when an upstream's do (its list-changed
        // notifications are passed on once the offer has taken them in);
        // a replayed recording says what the recorded server said.
        let changes = self.shared.lists_change;
        if let Some(tools) = capabilities.tools.as_mut() {
            tools.list_changed = Some(changes);
        }
        if changes {
            if let Some(prompts) = capabilities.prompts.as_mut() {
                prompts.list_changed = Some(true);
            }
            if let Some(resources) = capabilities.resources.as_mut() {
                resources.list_changed = Some(true);
            }
        }
        let mut info = ServerConfig::new(capabilities);
        let version = scenario
            .server
            .version
            .clone()
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned());
        info.server_info = Implementation::new(scenario.server.name.clone(), version);
        info.instructions = scenario.server.instructions.clone();
        info
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        let result = self.negotiate_initialize(&request);
        let run = self
            .session_run(self.principal(&context.extensions))
            .await?;
        let outcome = match &result {
            Ok(r) => Outcome::Result(serde_json::to_value(r).unwrap_or_default()),
            Err(e) => Outcome::Error(sandbar_engine::ProtocolError {
                code: e.code.0,
                message: e.message.to_string(),
                data: e.data.clone(),
            }),
        };
        let params = serde_json::to_value(&request).unwrap_or_default();
        if let Outcome::Error(e) = run
            .record_exchange(
                "initialize",
                Some(request_id_text(&context)),
                params,
                outcome,
            )
            .await
            && result.is_ok()
        {
            return Err(McpError::internal_error(e.message, None));
        }
        result
    }

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), McpError> {
        self.dispatch::<Value>(Method::Ping, context)
            .await
            .map(|_| ())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.dispatch(Method::ListTools, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let method = Method::CallTool {
            name: request.name.into_owned(),
            arguments: request.arguments,
        };
        self.dispatch::<rmcp::model::CallToolResult>(method, context)
            .await
            .map(CallToolResponse::from)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.dispatch(Method::ListResources, context).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.dispatch(Method::ListResourceTemplates, context).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.dispatch::<rmcp::model::ReadResourceResult>(
            Method::ReadResource { uri: request.uri },
            context,
        )
        .await
        .map(ReadResourceResponse::from)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.dispatch(Method::ListPrompts, context).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let method = Method::GetPrompt {
            name: request.name,
            arguments: request.arguments.unwrap_or_default(),
        };
        self.dispatch::<rmcp::model::GetPromptResult>(method, context)
            .await
            .map(GetPromptResponse::from)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        // Read the reference through its JSON shape, which the specification
        // fixes, rather than through the SDK's enum layout.
        let params = serde_json::to_value(&request).unwrap_or_default();
        let text = |pointer: &str| {
            params
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let reference = match text("/ref/type").as_deref() {
            Some("ref/prompt") => CompletionRef::Prompt(text("/ref/name").unwrap_or_default()),
            Some("ref/resource") => {
                CompletionRef::ResourceTemplate(text("/ref/uri").unwrap_or_default())
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown completion reference type {other:?}"),
                    None,
                ));
            }
        };
        let method = Method::Complete {
            reference,
            argument: text("/argument/name").unwrap_or_default(),
            value: text("/argument/value").unwrap_or_default(),
        };
        self.dispatch(method, context).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let name = serde_json::to_value(request.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let level = LogLevel::parse(&name)
            .ok_or_else(|| McpError::invalid_params(format!("unknown log level {name}"), None))?;
        self.dispatch::<Value>(Method::SetLogLevel(level), context)
            .await
            .map(|_| ())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.dispatch::<Value>(Method::Subscribe { uri: request.uri }, context)
            .await
            .map(|_| ())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.dispatch::<Value>(Method::Unsubscribe { uri: request.uri }, context)
            .await
            .map(|_| ())
    }

    /// The SDK hands over requests it could not type: unknown methods, and
    /// known methods whose params do not fit their schema. The first are
    /// -32601, the second -32602 with what is wrong; both are recorded.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        let params = request.params.clone().unwrap_or(Value::Null);
        let error = match params_problem(&request.method, params.clone()) {
            Some(problem) => McpError::invalid_params(
                format!("invalid params for {}: {problem}", request.method),
                None,
            ),
            None => McpError::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("method not found: {}", request.method),
                None,
            ),
        };
        if let Ok(run) = self.run_for(&context).await {
            let outcome = Outcome::Error(sandbar_engine::ProtocolError {
                code: error.code.0,
                message: error.message.to_string(),
                data: None,
            });
            run.record_exchange(
                &request.method,
                Some(request_id_text(&context)),
                params,
                outcome,
            )
            .await;
        }
        Err(error)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Some(run) = self.run.get() {
            run.record_client_notification("notifications/initialized", json!({}));
        }
        // Only now may the session's calls bypass the SDK, so that they are
        // recorded after the notification that opened the session.
        self.learn_session(&context.extensions, &context.peer);
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        _context: NotificationContext<RoleServer>,
    ) {
        if let Some(run) = self.run.get() {
            run.record_client_notification(
                "notifications/cancelled",
                serde_json::to_value(notification).unwrap_or_default(),
            );
        }
    }

    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        if let Some(run) = self.run.get() {
            run.record_client_notification("notifications/roots/list_changed", json!({}));
        }
    }
}

/// The engine's way back to the client, over the SDK's peer. Messages come
/// in MCP's JSON shape and are parsed into the SDK's types here — except
/// notifications over stdio, which go as they are (see [`PeerClient::notify`]).
struct PeerClient {
    peer: Peer<RoleServer>,
    /// Send notifications as the engine wrote them rather than through the
    /// SDK's types.
    verbatim: bool,
}

impl PeerClient {
    fn new(peer: Peer<RoleServer>, transport: &str) -> PeerClient {
        PeerClient {
            peer,
            verbatim: transport == "stdio",
        }
    }
}

#[async_trait]
impl Client for PeerClient {
    /// The SDK's notification types would change what the agent is sent:
    /// they hold `progress` and `total` as floats (so the `1` an upstream
    /// sent, and the cassette keeps, would reach the agent as `1.0`) and
    /// drop fields they do not know. Over stdio there is one stream and
    /// nothing to route, so a notification goes as the engine wrote it,
    /// byte for byte what the run recorded; only a cancellation goes
    /// typed, since the SDK acts on it. Over Streamable HTTP the SDK's
    /// session routes a progress notification to its request's stream by
    /// its type, so notifications stay typed there.
    async fn notify(&self, method: &str, params: Value) -> Result<(), ClientError> {
        let notification: ServerNotification =
            if self.verbatim && method != "notifications/cancelled" {
                let params = (!params.is_null()).then_some(params);
                ServerNotification::CustomNotification(CustomNotification::new(method, params))
            } else {
                serde_json::from_value(json!({"method": method, "params": params})).map_err(
                    |e| ClientError::Transport(format!("malformed {method} notification: {e}")),
                )?
            };
        self.peer
            .send_notification(notification)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let request: ServerRequest =
            serde_json::from_value(json!({"method": method, "params": params}))
                .map_err(|e| ClientError::Transport(format!("malformed {method} request: {e}")))?;
        match self.peer.send_request(request).await {
            Ok(result) => {
                serde_json::to_value(result).map_err(|e| ClientError::Transport(e.to_string()))
            }
            Err(rmcp::service::ServiceError::McpError(e)) => Err(ClientError::Rejected {
                code: e.code.0,
                message: e.message.to_string(),
            }),
            Err(e) => Err(ClientError::Transport(e.to_string())),
        }
    }

    fn supports(&self, capability: &str) -> bool {
        let Some(info) = self.peer.peer_info() else {
            return false;
        };
        let capabilities = serde_json::to_value(&info.capabilities).unwrap_or_default();
        capabilities.get(capability).is_some_and(|v| !v.is_null())
    }
}
