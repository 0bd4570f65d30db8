//! One open connection to an upstream, as the engine sees it: its catalog,
//! requests forwarded with their progress, questions, cancellation and
//! timeout, and the end of the connection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use rmcp::ServiceError;
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientRequest, ErrorCode, GetExtensions,
    GetMeta, JsonRpcMessage, ProgressToken, RequestId, ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient, RunningService};
use rmcp::transport::DynamicTransportError;
use sandbar_engine::{
    Catalog, Client, ClientError, Outcome, UpstreamError, UpstreamErrorKind, UpstreamRequest,
    UpstreamSession,
};
use tokio_util::sync::CancellationToken;

use crate::connect::{describe_http_failure, human};
use crate::http::{self, Broken, HttpLink, Step};
use crate::process::ChildProcess;
use crate::routing::{Inbound, Router, UpstreamHandler};
use crate::wire;

/// At most this many pages of one list are fetched for a catalog.
const MAX_PAGES: usize = 100;
/// How long `notifications/cancelled` may take to leave before the caller
/// is answered anyway.
const CANCEL_SEND_BOUND: Duration = Duration::from_secs(1);
/// How long a closed stdio connection waits for the process's exit status,
/// so the error can say how it ended.
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(1);
/// How long closing waits for the SDK to shut the connection down.
const CLOSE_BOUND: Duration = Duration::from_secs(5);
/// How long a process whose call timed out has to answer a `ping` before
/// it counts as wedged (at most the call's own timeout).
const PING_BOUND: Duration = Duration::from_secs(2);
/// After this many calls in a row without an answer, a process counts as
/// wedged whatever its answer to `ping`.
const MAX_TIMEOUTS_IN_A_ROW: u32 = 3;

/// What the connection runs over.
#[derive(Debug)]
pub(crate) enum Link {
    /// A child process; stopped and reaped when the session ends.
    Process(ChildProcess),
    /// A Streamable HTTP endpoint, and the lean way requests go to it.
    Http(Arc<HttpLink>),
}

/// An open connection to one upstream.
pub(crate) struct McpSession {
    upstream: String,
    peer: Peer<RoleClient>,
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, UpstreamHandler>>>,
    router: Arc<Router>,
    link: Link,
    /// For the catalog's list requests, which no agent request bounds.
    list_timeout: Duration,
    /// Calls in a row that got no answer within their timeout.
    timeouts: AtomicU32,
}

impl fmt::Debug for McpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpSession")
            .field("upstream", &self.upstream)
            .field("link", &self.link)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// How waiting for an answer ended.
enum Ending<A> {
    Answer(A),
    Cancelled,
    Timeout,
    /// The session was broken off (see `Router::break_off`).
    Broken(String),
}

/// What the SDK's request handle gives.
type SdkAnswer = Box<Result<Result<ServerResult, ServiceError>, oneshot::error::RecvError>>;

impl McpSession {
    pub fn new(
        upstream: &str,
        service: RunningService<RoleClient, UpstreamHandler>,
        router: Arc<Router>,
        link: Link,
        list_timeout: Duration,
    ) -> McpSession {
        McpSession {
            upstream: upstream.to_owned(),
            peer: service.peer().clone(),
            service: tokio::sync::Mutex::new(Some(service)),
            router,
            link,
            list_timeout,
            timeouts: AtomicU32::new(0),
        }
    }

    fn error(&self, kind: UpstreamErrorKind, message: impl Into<String>) -> UpstreamError {
        UpstreamError::new(&self.upstream, kind, message)
    }

    /// The connection is gone: says how, as precisely as is known.
    async fn closed_error(&self) -> UpstreamError {
        if let Some(reason) = self.router.broken() {
            return self.error(UpstreamErrorKind::Protocol, reason);
        }
        self.router.mark_closed();
        let message = match &self.link {
            Link::Process(process) => {
                let how = match process.exit(EXIT_STATUS_WAIT).await {
                    Some(how) => format!("the process {how}"),
                    None => "the process closed its stdout".to_owned(),
                };
                crate::connect::explain(how, process)
            }
            Link::Http(link) => format!("the connection to {} closed", link.url),
        };
        self.error(UpstreamErrorKind::Closed, message)
    }

    /// A request could not be written to the transport.
    async fn send_error(&self, error: &DynamicTransportError) -> UpstreamError {
        match &self.link {
            // A pipe that cannot be written means the process is gone.
            Link::Process(_) => self.closed_error().await,
            Link::Http(link) => {
                let failure = describe_http_failure(&link.url, error.error.as_ref());
                if failure.server_answered {
                    // The server is there and answered (HTTP 5xx, 429): the
                    // connection stays usable for the next call.
                    self.error(UpstreamErrorKind::Protocol, failure.message)
                } else {
                    self.router.mark_closed();
                    self.error(UpstreamErrorKind::Closed, failure.message)
                }
            }
        }
    }

    /// Everything but the upstream's own JSON-RPC error, which is an answer.
    async fn service_error(&self, error: ServiceError, method: &str) -> UpstreamError {
        match error {
            ServiceError::TransportClosed => self.closed_error().await,
            ServiceError::TransportSend(e) => self.send_error(&e).await,
            ServiceError::Timeout { timeout } => self.error(
                UpstreamErrorKind::Timeout,
                format!("no answer to {method} within {}", human(timeout)),
            ),
            ServiceError::Cancelled { reason } => self.error(
                UpstreamErrorKind::Cancelled,
                match reason {
                    Some(reason) => format!("{method} was cancelled: {reason}"),
                    None => format!("{method} was cancelled"),
                },
            ),
            ServiceError::McpError(e) => self.error(
                UpstreamErrorKind::Protocol,
                format!("{method} failed: {} ({})", e.message, e.code.0),
            ),
            other => self.error(UpstreamErrorKind::Protocol, format!("{method}: {other}")),
        }
    }

    /// Sends a request that no agent is waiting on (the catalog's lists),
    /// bounded by the upstream's default timeout.
    async fn send_plain(
        &self,
        request: ClientRequest,
    ) -> Result<Result<ServerResult, rmcp::ErrorData>, ServiceError> {
        let handle = self
            .peer
            .send_request_with_option(request, PeerRequestOptions::with_timeout(self.list_timeout))
            .await?;
        match handle.await_response().await {
            Ok(result) => Ok(Ok(result)),
            Err(ServiceError::McpError(e)) => Ok(Err(e)),
            Err(e) => Err(e),
        }
    }

    /// Every item of one list, following `nextCursor`. A server that does
    /// not know the method has an empty list.
    async fn list_all(&self, method: &'static str, key: &str) -> Result<Vec<Value>, UpstreamError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(cursor) => json!({ "cursor": cursor }),
                None => json!({}),
            };
            let request = wire::client_request(method, params)
                .map_err(|e| self.error(UpstreamErrorKind::Protocol, e.message))?;
            let result = match self.send_plain(request).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) if e.code == ErrorCode::METHOD_NOT_FOUND => return Ok(items),
                Ok(Err(e)) => {
                    return Err(self.error(
                        UpstreamErrorKind::Protocol,
                        format!("{method} failed: {} ({})", e.message, e.code.0),
                    ));
                }
                Err(e) => return Err(self.service_error(e, method).await),
            };
            let mut page = wire::result_json(&result).unwrap_or(Value::Null);
            let Some(Value::Array(list)) = page.get_mut(key).map(Value::take) else {
                return Err(self.error(
                    UpstreamErrorKind::Protocol,
                    format!("the answer to {method} has no `{key}` list"),
                ));
            };
            items.extend(list);
            match page.get("nextCursor").and_then(Value::as_str) {
                // A cursor that repeats would page forever.
                Some(next) if cursor.as_deref() != Some(next) => cursor = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
        tracing::warn!(target: "sandbar::upstream", upstream = %self.upstream, method,
            "stopped after {MAX_PAGES} pages; the rest of the list is left out");
        Ok(items)
    }
}

/// What every way of forwarding a request shares.
struct Forwarding<'a> {
    method: &'a str,
    client: &'a dyn Client,
    cancel: &'a CancellationToken,
    timeout: Duration,
    deadline: tokio::time::Instant,
}

/// The client's answer to a question the upstream asked, and where it goes.
type Question<'a> = Pin<
    Box<
        dyn Future<
                Output = (
                    oneshot::Sender<Result<Value, ClientError>>,
                    Result<Value, ClientError>,
                ),
            > + Send
            + 'a,
    >,
>;

impl McpSession {
    /// Passes on something the upstream sent for the request: a
    /// notification at once; a question to the client concurrently with
    /// everything else, so progress and cancellation keep flowing while the
    /// client thinks.
    async fn pass_on<'a>(
        &self,
        message: Inbound,
        client: &'a dyn Client,
        questions: &mut FuturesUnordered<Question<'a>>,
    ) {
        match message {
            Inbound::Notify { method, params } => {
                if let Err(e) = client.notify(method, params).await {
                    tracing::debug!(target: "sandbar::upstream", upstream = %self.upstream,
                        method, error = %e, "could not pass a notification on");
                }
            }
            Inbound::Ask {
                method,
                capability,
                params,
                reply,
            } => {
                if client.supports(capability) {
                    questions.push(Box::pin(async move {
                        (reply, client.request(method, params).await)
                    }));
                } else {
                    let _ = reply.send(Err(ClientError::Unsupported(capability)));
                }
            }
            // Taken by the caller before it gets here.
            Inbound::Broken(_) => {}
        }
    }

    /// The lean way over Streamable HTTP (see `http.rs`): the request is
    /// POSTed and its answer read here. `None` when the server no longer
    /// knows the session; nothing was done then, and the SDK takes over.
    async fn forward_over_http(
        &self,
        link: &Arc<HttpLink>,
        request: &mut ClientRequest,
        progress_token: Option<Value>,
        forwarding: &Forwarding<'_>,
    ) -> Option<Result<Outcome, UpstreamError>> {
        let Forwarding {
            method,
            client,
            cancel,
            timeout,
            deadline,
        } = *forwarding;
        let mut inflight = self.router.register(progress_token);
        let id = link.next_id();
        // The request's own id is its progress token too: unique on the
        // connection, as upstream tokens must be (see the README).
        let token = ProgressToken(id.clone());
        if self
            .router
            .bind(inflight.key(), id.clone(), Some(token.clone()))
        {
            request.get_meta_mut().set_progress_token(token);
        }
        let mut exchange = link.exchange(id.clone(), request);
        inflight.sent(self.peer.clone(), id.clone());

        let deadline = tokio::time::sleep_until(deadline);
        tokio::pin!(deadline);
        let mut questions: FuturesUnordered<Question<'_>> = FuturesUnordered::new();
        let ending = loop {
            tokio::select! {
                // Order matters, as in `forward_via_sdk`: what the upstream
                // sent before its answer is routed as it is read, and
                // delivered before the next read.
                biased;
                () = cancel.cancelled() => break Ending::Cancelled,
                Some(message) = inflight.inbound.recv() => match message {
                    Inbound::Broken(reason) => break Ending::Broken(reason),
                    message => self.pass_on(message, client, &mut questions).await,
                },
                step = exchange.next() => match step {
                    Ok(Step::Answer(answer)) => break Ending::Answer(Ok(answer)),
                    Ok(Step::Message(message)) => self.take(link, &id, message),
                    Err(broken) => break Ending::Answer(Err(broken)),
                },
                Some((reply, answer)) = questions.next(), if !questions.is_empty() => {
                    let _ = reply.send(answer);
                }
                () = &mut deadline => break Ending::Timeout,
            }
        };
        drop(questions);
        inflight.settled();
        let cancel_with = |reason: &'static str| {
            let notification = CancelledNotification::new(CancelledNotificationParam::new(
                Some(id.clone()),
                Some(reason.to_owned()),
            ));
            let peer = self.peer.clone();
            async move {
                let _ = tokio::time::timeout(
                    CANCEL_SEND_BOUND,
                    peer.send_notification(notification.into()),
                )
                .await;
            }
        };
        Some(match ending {
            Ending::Answer(Ok(answer)) => {
                self.timeouts.store(0, Ordering::Relaxed);
                exchange.finish();
                match answer {
                    Ok(result) => self.answer(method, &result),
                    Err(error) => Ok(Outcome::Error(wire::protocol_error(error))),
                }
            }
            Ending::Answer(Err(Broken::Expired)) => return None,
            Ending::Answer(Err(broken)) => Err(self.broken(link, broken)),
            Ending::Cancelled => {
                cancel_with("cancelled by the client").await;
                Err(self.error(
                    UpstreamErrorKind::Cancelled,
                    format!("{method} was cancelled by the client"),
                ))
            }
            Ending::Timeout => {
                cancel_with("timed out").await;
                Err(self.error(
                    UpstreamErrorKind::Timeout,
                    format!("no answer within {}", human(timeout)),
                ))
            }
            Ending::Broken(reason) => Err(self.error(UpstreamErrorKind::Protocol, reason)),
        })
    }

    /// Something the upstream sent on a request's answer stream before the
    /// answer: notifications are routed as the SDK's are; questions are
    /// answered on a task of their own.
    fn take(&self, link: &Arc<HttpLink>, origin: &RequestId, message: ServerJsonRpcMessage) {
        match message {
            JsonRpcMessage::Notification(notification) => {
                self.router.route(&notification.notification);
            }
            JsonRpcMessage::Request(question) => {
                http::answer_question(link, &self.router, origin, question.id, question.request);
            }
            JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_) => {}
        }
    }

    /// A lean exchange that ended without an answer, in the agent's terms,
    /// as the SDK's failures are worded.
    fn broken(&self, link: &HttpLink, broken: Broken) -> UpstreamError {
        match broken {
            Broken::Unreachable(e) => {
                let failure = describe_http_failure(&link.url, &e);
                if !failure.server_answered {
                    self.router.mark_closed();
                    return self.error(UpstreamErrorKind::Closed, failure.message);
                }
                self.error(UpstreamErrorKind::Protocol, failure.message)
            }
            Broken::Status(status) => self.error(
                UpstreamErrorKind::Protocol,
                format!("{} answered HTTP {}", link.url, status.as_u16()),
            ),
            Broken::Protocol(message) => self.error(UpstreamErrorKind::Protocol, message),
            Broken::Expired => self.error(
                UpstreamErrorKind::Protocol,
                format!("{} no longer knows the session", link.url),
            ),
        }
    }

    /// A result as the engine takes it. One that is not what `method`
    /// answers (`{"content": "text"}` for `tools/call`, or `null`) is the
    /// upstream's failure, worded for the agent, rather than a result the
    /// run records and the front then cannot send.
    fn answer(&self, method: &str, result: &ServerResult) -> Result<Outcome, UpstreamError> {
        let value = wire::result_json(result).map_err(|e| {
            self.error(
                UpstreamErrorKind::Protocol,
                format!("the answer to {method} cannot be represented: {e}"),
            )
        })?;
        if let Some(problem) = crate::shape::result_problem(method, &value) {
            return Err(self.error(
                UpstreamErrorKind::Protocol,
                format!("answered {method} with a malformed result: {problem}"),
            ));
        }
        Ok(Outcome::Result(value))
    }

    /// The SDK's way: the request goes through its service, and what the
    /// upstream sends is routed by `routing::Routed`.
    async fn forward_via_sdk(
        &self,
        mut sdk_request: ClientRequest,
        progress_token: Option<Value>,
        forwarding: &Forwarding<'_>,
    ) -> Result<Outcome, UpstreamError> {
        let Forwarding {
            method,
            client,
            cancel,
            timeout,
            deadline,
        } = *forwarding;
        let mut inflight = self.router.register(progress_token);
        sdk_request.extensions_mut().insert(inflight.key());
        let mut handle = match self
            .peer
            .send_cancellable_request(sdk_request, PeerRequestOptions::no_options())
            .await
        {
            Ok(handle) => handle,
            Err(e) => return Err(self.service_error(e, method).await),
        };
        inflight.sent(self.peer.clone(), handle.id.clone());

        let deadline = tokio::time::sleep_until(deadline);
        tokio::pin!(deadline);
        let mut questions: FuturesUnordered<Question<'_>> = FuturesUnordered::new();
        let ending: Ending<SdkAnswer> = loop {
            tokio::select! {
                // Order matters: a cancelled request ends at once; and
                // messages the upstream sent before its answer are already
                // queued when the answer arrives (see `routing::Routed`),
                // so draining them first keeps the upstream's order.
                biased;
                () = cancel.cancelled() => break Ending::Cancelled,
                Some(message) = inflight.inbound.recv() => match message {
                    Inbound::Broken(reason) => break Ending::Broken(reason),
                    message => self.pass_on(message, client, &mut questions).await,
                },
                answer = &mut handle.rx => break Ending::Answer(Box::new(answer)),
                Some((reply, answer)) = questions.next(), if !questions.is_empty() => {
                    let _ = reply.send(answer);
                }
                () = &mut deadline => break Ending::Timeout,
            }
        };
        // Questions still open are dropped with the loop: their replies
        // close, and the upstream is told its question went unanswered.
        drop(questions);

        match ending {
            Ending::Answer(answer) => {
                inflight.settled();
                self.timeouts.store(0, Ordering::Relaxed);
                match *answer {
                    Ok(Ok(result)) => self.answer(method, &result),
                    Ok(Err(ServiceError::McpError(e))) => {
                        Ok(Outcome::Error(wire::protocol_error(e)))
                    }
                    Ok(Err(e)) => Err(self.service_error(e, method).await),
                    // The SDK dropped the request unanswered: its connection ended.
                    Err(_) => Err(self.closed_error().await),
                }
            }
            Ending::Cancelled => {
                inflight.settled();
                cancel_upstream(handle, "cancelled by the client").await;
                Err(self.error(
                    UpstreamErrorKind::Cancelled,
                    format!("{method} was cancelled by the client"),
                ))
            }
            Ending::Timeout => {
                inflight.settled();
                cancel_upstream(handle, "timed out").await;
                let wedged = self.wedged(timeout).await.unwrap_or_default();
                Err(self.error(
                    UpstreamErrorKind::Timeout,
                    format!("no answer within {}{wedged}", human(timeout)),
                ))
            }
            Ending::Broken(reason) => {
                inflight.settled();
                Err(self.error(UpstreamErrorKind::Protocol, reason))
            }
        }
    }

    /// After a call to a process timed out: whether the process is wedged,
    /// and if so the rest of the call's error, saying why (the session is
    /// then broken off, so the engine starts the process again for the
    /// next call). It is wedged when it does not
    /// answer a `ping` within [`PING_BOUND`] (or the call's timeout, if
    /// shorter), or when this was the [`MAX_TIMEOUTS_IN_A_ROW`]th call in a
    /// row without an answer. Over HTTP a new session would not help a
    /// wedged server, so nothing is done.
    async fn wedged(&self, timeout: Duration) -> Option<String> {
        let Link::Process(_) = &self.link else {
            return None;
        };
        let in_a_row = self.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
        let why = if in_a_row >= MAX_TIMEOUTS_IN_A_ROW {
            format!("{in_a_row} calls in a row got no answer")
        } else {
            let bound = PING_BOUND.min(timeout);
            if self.answers_ping(bound).await {
                return None;
            }
            format!("nor did a ping within {}", human(bound))
        };
        const RESTART: &str = "the process is restarted for the next call";
        self.router
            .break_off(format!("it stopped answering ({why}); {RESTART}"));
        Some(format!(" ({why}); {RESTART}"))
    }

    /// Whether the upstream answers `ping` within `bound`. Any answer
    /// will do, an error too: a server that does not know `ping` is still
    /// reading what it is sent.
    async fn answers_ping(&self, bound: Duration) -> bool {
        let Ok(ping) = wire::client_request("ping", Value::Null) else {
            return false;
        };
        let answered = async {
            let Ok(handle) = self
                .peer
                .send_request_with_option(ping, PeerRequestOptions::with_timeout(bound))
                .await
            else {
                return false;
            };
            matches!(
                handle.await_response().await,
                Ok(_) | Err(ServiceError::McpError(_))
            )
        };
        tokio::time::timeout(bound, answered).await.unwrap_or(false)
    }
}

/// Tells the upstream a request is cancelled (the SDK's request handle
/// sends `notifications/cancelled`), without waiting long on a transport
/// that may be stuck.
async fn cancel_upstream(handle: rmcp::service::RequestHandle<RoleClient>, reason: &str) {
    let _ = tokio::time::timeout(CANCEL_SEND_BOUND, handle.cancel(Some(reason.to_owned()))).await;
}

#[async_trait]
impl UpstreamSession for McpSession {
    async fn catalog(&self) -> Result<Catalog, UpstreamError> {
        // Only what the server declared is asked for; a server that lists
        // nothing of a kind simply has none.
        let capabilities = self.peer.peer_info().map(|info| info.capabilities.clone());
        let declared =
            |f: fn(&rmcp::model::ServerCapabilities) -> bool| capabilities.as_ref().is_some_and(f);
        let mut catalog = Catalog::default();
        if declared(|c| c.tools.is_some()) {
            catalog.tools = self.list_all("tools/list", "tools").await?;
        }
        if declared(|c| c.resources.is_some()) {
            catalog.resources = self.list_all("resources/list", "resources").await?;
            catalog.resource_templates = self
                .list_all("resources/templates/list", "resourceTemplates")
                .await?;
        }
        if declared(|c| c.prompts.is_some()) {
            catalog.prompts = self.list_all("prompts/list", "prompts").await?;
        }
        Ok(catalog)
    }

    async fn request(&self, request: UpstreamRequest<'_>) -> Result<Outcome, UpstreamError> {
        let UpstreamRequest {
            method,
            params,
            progress_token,
            client,
            cancel,
            timeout,
        } = request;
        let mut sdk_request = match wire::client_request(method, params) {
            Ok(sdk_request) => sdk_request,
            Err(refused) => return Ok(Outcome::Error(refused)),
        };
        if self.is_closed() {
            return Err(self.closed_error().await);
        }
        if cancel.is_cancelled() {
            // Cancelled before it left: the upstream never hears of it.
            return Err(self.error(
                UpstreamErrorKind::Cancelled,
                format!("{method} was cancelled by the client"),
            ));
        }
        let forwarding = Forwarding {
            method,
            client,
            cancel: &cancel,
            timeout,
            deadline: tokio::time::Instant::now() + timeout,
        };
        if let Link::Http(link) = &self.link {
            match self
                .forward_over_http(link, &mut sdk_request, progress_token.clone(), &forwarding)
                .await
            {
                Some(outcome) => return outcome,
                // The server expired the session: the SDK re-initializes
                // it and sends the request again.
                None => tracing::debug!(target: "sandbar::upstream", upstream = %self.upstream,
                    "the session expired; the SDK opens a new one"),
            }
        }
        self.forward_via_sdk(sdk_request, progress_token, &forwarding)
            .await
    }

    fn is_closed(&self) -> bool {
        self.router.is_closed() || self.peer.is_transport_closed()
    }

    async fn close(&self) {
        self.router.mark_closed();
        let service = self.service.lock().await.take();
        if let Some(mut service) = service {
            // Closing the SDK service closes the transport: stdin for a
            // process (MCP's way of asking it to exit), the session for HTTP.
            let _ = service.close_with_timeout(CLOSE_BOUND).await;
        }
        if let Link::Process(process) = &self.link {
            process.stop().await;
        }
    }
}
