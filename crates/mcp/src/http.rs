//! Streamable HTTP: `POST/GET/DELETE /mcp` through the SDK's service, behind
//! Sandbar's own guard, plus `GET /healthz` for readiness probes.
//!
//! The guard runs before the SDK sees a request and answers, in order:
//! a `Host` outside the allowed list (403) and a browser `Origin` outside
//! the allowed list (403) — the DNS-rebinding checks; a body over the limit
//! (413); a body that is not JSON (400, JSON-RPC -32700) or not a single
//! JSON-RPC message (400, -32600); and a `DELETE` for a session that does
//! not exist (404). A `tools/call` inside a session is answered by the
//! guard (`direct.rs`), and so is the client's answer to a question such a
//! call put to it; everything else passes to the SDK unchanged. The guard
//! also expires idle sessions, since the SDK cannot see the requests
//! answered directly. See `README.md` next to this crate for why each
//! answer is what it is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::direct;
use crate::server::{SandbarServer, Shared};
use sandbar_engine::access::hash_bearer;
use sandbar_engine::{AuthError, Principal};

/// A session with no request for this long is closed.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How the HTTP front listens.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values accepted: a name matches any port, `name:port` only
    /// that port. Loopback names by default.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin` values accepted: `scheme://host` (the scheme's
    /// default port), `scheme://host:port`, or `scheme://host:*` (any port);
    /// `null` admits the opaque origin. Requests without `Origin` (every
    /// non-browser client) always pass. Loopback origins by default.
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Serve every request statelessly (no `Mcp-Session-Id`), with JSON
    /// responses where the call sends no notifications.
    pub stateless: bool,
    /// A session with no request for this long is closed (and its run ended).
    pub session_idle: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            allowed_origins: vec![
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "http://[::1]:*".into(),
                "https://localhost:*".into(),
                "https://127.0.0.1:*".into(),
                "https://[::1]:*".into(),
            ],
            max_body_bytes: 4 * 1024 * 1024,
            stateless: false,
            session_idle: SESSION_IDLE_TIMEOUT,
        }
    }
}

/// Serves until `shutdown` is cancelled, then ends every open run.
pub async fn serve_http(
    listener: TcpListener,
    shared: Arc<Shared>,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // The guard owns Host and Origin checks, so the SDK's are off: one
    // implementation, one set of rules.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_legacy_session_mode(!options.stateless)
        .with_json_response(options.stateless)
        .with_cancellation_token(shutdown.child_token());
    // Idle sessions are expired by the guard, which sees every request,
    // including the ones answered without the SDK.
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = None;
    let sessions = Arc::new(manager);
    let factory_shared = shared.clone();
    let service = StreamableHttpService::new(
        move || Ok(SandbarServer::new(factory_shared.clone())),
        sessions.clone(),
        config,
    );
    let guard = Arc::new(Guard {
        options,
        sessions,
        shared: shared.clone(),
        activity: Mutex::new(HashMap::new()),
    });
    tokio::spawn(expire_idle_sessions(guard.clone(), shutdown.clone()));
    let router = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(guard, guard_request))
        .route("/healthz", get(|| async { "ok\n" }));
    let stop = shutdown.clone();
    // Without TCP_NODELAY, an SSE response written in two pieces waits for
    // the client's delayed ACK (about 40 ms) on a kept-alive connection.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    shared.finish_all().await;
    Ok(())
}

struct Guard {
    options: HttpOptions,
    sessions: Arc<LocalSessionManager>,
    shared: Arc<Shared>,
    /// When each session was last used.
    activity: Mutex<HashMap<Arc<str>, Instant>>,
}

/// Closes sessions nobody has used for the idle timeout.
async fn expire_idle_sessions(guard: Arc<Guard>, shutdown: CancellationToken) {
    let idle_after = guard.options.session_idle;
    let mut tick = tokio::time::interval(
        (idle_after / 2).clamp(Duration::from_millis(100), Duration::from_secs(15)),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let idle: Vec<Arc<str>> = {
            let activity = guard.activity.lock().unwrap_or_else(|p| p.into_inner());
            activity
                .iter()
                .filter(|(_, seen)| seen.elapsed() > idle_after)
                .map(|(id, _)| id.clone())
                .collect()
        };
        // A session with a call still going (an upstream taking its time,
        // a person yet to answer an elicitation) is not idle.
        for id in idle.into_iter().filter(|id| {
            !guard
                .shared
                .session_link(id)
                .is_some_and(|link| link.busy())
        }) {
            tracing::info!(session = %id, "closing an idle session");
            let _ = guard.sessions.close_session(&id).await;
            guard
                .activity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
    }
}

async fn guard_request(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Some(refusal) = guard
        .check_host(headers)
        .or_else(|| guard.check_origin(headers))
    {
        return refusal;
    }
    let session: Option<Arc<str>> = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(Arc::from);
    let bound = session
        .as_ref()
        .and_then(|id| guard.shared.session_token(id));
    // A session's own token, presented again, is recognised by its hash
    // alone: the run checks revocation, expiry and budget at every call.
    let known = session
        .as_ref()
        .and_then(|id| guard.shared.session_principal(id))
        .filter(|p| bearer(headers).is_some_and(|b| hash_bearer(b) == p.hash));
    let authenticated = match known {
        Some(p) => Ok(Some(p)),
        None => guard.authenticate(headers).await,
    };
    let (principal, presented) = match authenticated {
        Ok(p) => {
            let id = p.as_ref().map(|p| p.token_id.clone());
            (p, id)
        }
        // A session's token revoked or expired since it opened: its
        // requests go on to the run, which refuses them with a reason the
        // agent reads and a policy event.
        Err(AuthFailure {
            lapsed: Some(lapsed),
            ..
        }) if bound
            .as_ref()
            .is_some_and(|b| b.as_deref() == Some(&lapsed)) =>
        {
            (None, Some(lapsed))
        }
        Err(failure) => return auth_refusal(failure.status, failure.message),
    };
    // A session stays with the token it was opened with.
    if let Some(bound) = bound
        && bound != presented
    {
        return auth_refusal(
            StatusCode::FORBIDDEN,
            match &bound {
                Some(token) => format!(
                    "this session was opened with token {token}; send that token with every request of the session"
                ),
                None => "this session was opened without a token; open a new session to use one"
                    .to_owned(),
            },
        );
    }
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    // Whether the session is open as far as the guard knows: it saw the
    // session start and has not seen it deleted or expired. Only then may a
    // call skip the SDK, which would otherwise refuse a closed session.
    let mut live = false;
    if let Some(id) = &session {
        let mut activity = guard.activity.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(seen) = activity.get_mut(id) {
            *seen = Instant::now();
            live = true;
        }
    }
    let method = request.method().clone();
    let response = match method {
        Method::POST => guard.check_post(request, next, live).await,
        Method::DELETE => {
            if let Some(id) = &session
                && !guard.sessions.has_session(id).await.unwrap_or(false)
            {
                return (StatusCode::NOT_FOUND, "session not found").into_response();
            }
            let response = next.run(request).await;
            if let Some(id) = &session {
                guard
                    .activity
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(id);
            }
            response
        }
        // A call's stream picked up again after a lost connection.
        Method::GET if live => match direct::resume(&guard.shared, request.headers()) {
            Some(response) => response,
            None => next.run(request).await,
        },
        _ => next.run(request).await,
    };
    // A new session shows its id on the answer to `initialize`.
    if let Some(id) = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        && session.is_none()
    {
        guard
            .activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(Arc::from(id), Instant::now());
    }
    response
}

impl Guard {
    /// The token a request carries, resolved; `Ok(None)` for a request
    /// without one on an open server. A refusal of a token that was good
    /// once (revoked or expired) names it.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Arc<Principal>>, AuthFailure> {
        let refuse = |status, message: String| {
            Err(AuthFailure {
                status,
                message,
                lapsed: None,
            })
        };
        let token = match (headers.get(header::AUTHORIZATION), bearer(headers)) {
            (None, _) if self.shared.auth_required() => {
                return refuse(StatusCode::UNAUTHORIZED, AuthError::Missing.to_string());
            }
            (None, _) => return Ok(None),
            (Some(_), Some(token)) => token,
            (Some(_), None) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "the Authorization header must be `Bearer TOKEN`".to_owned(),
                );
            }
        };
        match self.shared.engine().authenticate(token).await {
            Ok(principal) => Ok(Some(principal)),
            Err(e @ AuthError::Store(_)) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            Err(e @ (AuthError::WrongTenant { .. } | AuthError::WrongScenario { .. })) => {
                refuse(StatusCode::FORBIDDEN, e.to_string())
            }
            Err(e @ (AuthError::Revoked(_) | AuthError::Expired(_))) => {
                let id = match &e {
                    AuthError::Revoked(id) | AuthError::Expired(id) => Some(id.clone()),
                    _ => None,
                };
                Err(AuthFailure {
                    status: StatusCode::UNAUTHORIZED,
                    message: e.to_string(),
                    lapsed: id,
                })
            }
            Err(e) => refuse(StatusCode::UNAUTHORIZED, e.to_string()),
        }
    }

    fn check_host(&self, headers: &HeaderMap) -> Option<Response> {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (name, port) = split_host_port(host);
        let allowed = self.options.allowed_hosts.iter().any(|entry| {
            let (entry_name, entry_port) = split_host_port(entry);
            entry_name.eq_ignore_ascii_case(name) && (entry_port.is_none() || entry_port == port)
        });
        (!allowed).then(|| forbidden(&format!("Host `{host}` is not allowed (DNS rebinding protection); start sandbar with --allow-host to admit it")))
    }

    fn check_origin(&self, headers: &HeaderMap) -> Option<Response> {
        let origin = headers.get(header::ORIGIN)?;
        let origin = origin.to_str().unwrap_or("");
        let allowed = match parse_origin(origin) {
            None => self
                .options
                .allowed_origins
                .iter()
                .any(|e| e == "null" && origin == "null"),
            Some((scheme, host, port)) => self.options.allowed_origins.iter().any(|entry| {
                let Some((e_scheme, e_host, e_port)) = parse_origin_entry(entry) else {
                    return false;
                };
                e_scheme.eq_ignore_ascii_case(&scheme)
                    && e_host.eq_ignore_ascii_case(&host)
                    && e_port.is_none_or(|p| p == port)
            }),
        };
        (!allowed).then(|| {
            forbidden(&format!(
                "Origin `{origin}` is not allowed; start sandbar with --allow-origin to admit it"
            ))
        })
    }

    async fn check_post(&self, request: Request, next: Next, session_live: bool) -> Response {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !is_json {
            // The SDK answers a wrong Content-Type with 415.
            return next.run(request).await;
        }
        let (parts, body) = request.into_parts();
        let bytes: Bytes = match axum::body::to_bytes(body, self.options.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body is larger than {} bytes",
                        self.options.max_body_bytes
                    ),
                )
                    .into_response();
            }
        };
        let message: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => return rpc_error(-32700, &format!("parse error: {e}")),
        };
        if let Some(problem) = shape_problem(&message) {
            return rpc_error(-32600, &format!("invalid request: {problem}"));
        }
        if session_live
            && let Some(response) = direct::answer(&self.shared, &parts.headers, &message).await
        {
            return response;
        }
        let session = parts
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let link = session
            .as_deref()
            .filter(|_| session_live)
            .and_then(|s| self.shared.session_link(s));
        let method = message.get("method").and_then(Value::as_str);
        if let Some(link) = &link {
            // The client's answer to a question a call put to it without
            // the SDK (`direct.rs`) goes to that call; any other response
            // is the SDK's.
            if method.is_none() && link.answer(&message) {
                return StatusCode::ACCEPTED.into_response();
            }
            // A cancellation of a call the guard answers reaches it here;
            // the SDK, which does not know the call, still records the
            // notification.
            if method == Some("notifications/cancelled")
                && let Some(id) = message.pointer("/params/requestId")
            {
                link.cancel(&match id {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            }
        }
        let opens_session = method == Some("notifications/initialized");
        let response = next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
        // The SDK accepts `notifications/initialized` before its handler has
        // seen it, and only the handler binds the session to its run. Holding
        // the 202 until the binding exists (briefly, and never past a bound)
        // makes the session's next call take the one-piece path every time,
        // rather than depending on which task ran first.
        if opens_session
            && response.status() == StatusCode::ACCEPTED
            && let Some(session) = session
        {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
            while self.shared.session_run(&session).is_none()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        response
    }
}

/// Why a JSON value is not one JSON-RPC 2.0 message, if it is not.
fn shape_problem(message: &Value) -> Option<&'static str> {
    let Some(object) = message.as_object() else {
        return Some(if message.is_array() {
            "batches are not supported; send one message per request"
        } else {
            "a JSON-RPC message is a JSON object"
        });
    };
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return Some("`jsonrpc` must be \"2.0\"");
    }
    if let Some(id) = object.get("id")
        && !(id.is_string() || id.is_i64() || id.is_u64() || id.is_null())
    {
        return Some("`id` must be a string or an integer");
    }
    match object.get("method") {
        Some(Value::String(_)) => None,
        Some(_) => Some("`method` must be a string"),
        None if object.contains_key("result") || object.contains_key("error") => None,
        None => Some("a request or notification needs a `method`"),
    }
}

fn rpc_error(code: i32, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request
/// has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Why a request did not authenticate.
struct AuthFailure {
    status: StatusCode,
    message: String,
    /// The token, when it was good once (revoked or expired since).
    lapsed: Option<String>,
}

/// A refused authentication: the status, a `WWW-Authenticate` challenge
/// on 401, and a JSON-RPC error the client can show.
fn auth_refusal(status: StatusCode, message: String) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32001, "message": message}});
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"sandbar\""),
        );
    }
    response
}

fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, message.to_owned()).into_response()
}

/// `name[:port]` or `[v6]:port` into the name and the port.
fn split_host_port(host: &str) -> (&str, Option<u16>) {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => (
                &host[..=end],
                host[end + 1..]
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok()),
            ),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, port.parse().ok()),
        _ => (host, None),
    }
}

/// An `Origin` header as (scheme, host, port), the port defaulted by scheme.
fn parse_origin(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let (host, port) = split_host_port(rest);
    let port = port.or(default_port(scheme))?;
    (!host.is_empty()).then(|| (scheme.to_owned(), host.to_owned(), port))
}

/// An allowed-origin entry: like an origin, but `:*` means any port.
fn parse_origin_entry(entry: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = entry.split_once("://")?;
    if let Some(host) = rest.strip_suffix(":*") {
        return Some((scheme.to_owned(), host.to_owned(), None));
    }
    let (host, port) = split_host_port(rest);
    Some((
        scheme.to_owned(),
        host.to_owned(),
        Some(port.or(default_port(scheme))?),
    ))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_split() {
        assert_eq!(split_host_port("localhost:8080"), ("localhost", Some(8080)));
        assert_eq!(split_host_port("localhost"), ("localhost", None));
        assert_eq!(split_host_port("[::1]:9"), ("[::1]", Some(9)));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
    }

    #[test]
    fn origins_parse() {
        assert_eq!(
            parse_origin("https://a.test"),
            Some(("https".into(), "a.test".into(), 443))
        );
        assert_eq!(
            parse_origin("http://a.test:81"),
            Some(("http".into(), "a.test".into(), 81))
        );
        assert_eq!(parse_origin("null"), None);
        assert_eq!(
            parse_origin_entry("http://localhost:*"),
            Some(("http".into(), "localhost".into(), None))
        );
        assert_eq!(
            parse_origin_entry("https://app.test"),
            Some(("https".into(), "app.test".into(), Some(443)))
        );
    }

    #[test]
    fn message_shapes() {
        for (value, ok) in [
            (json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}), true),
            (
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                true,
            ),
            (json!({"jsonrpc": "2.0", "id": "a", "result": {}}), true),
            (json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}), false),
            (
                json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
                false,
            ),
            (json!({"jsonrpc": "2.0", "id": 1}), false),
            (
                json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
                false,
            ),
            (json!(42), false),
            (json!(null), false),
        ] {
            assert_eq!(shape_problem(&value).is_none(), ok, "{value}");
        }
    }
}
