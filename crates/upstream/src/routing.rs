//! Where what an upstream sends us goes: the registry of requests in
//! flight, the transport wrapper that routes notifications in wire order,
//! and the SDK client handler that carries the upstream's questions
//! (sampling, elicitation) to the agent's client.
//!
//! The agent's [`Client`](sandbar_engine::Client) is only borrowed by
//! `request()`, while the SDK delivers messages on tasks of its own. So a
//! request in flight registers a channel here; notifications and questions
//! for it are pushed into that channel, and `request()` hands them to the
//! borrowed client itself. The borrow never leaves `request()`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

// Sampling and roots are deprecated in the SDK's newest protocol version,
// but Sandbar speaks 2025-11-25 to upstreams, where they are how a server
// asks its client for things.
#[allow(deprecated)]
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientCapabilities, ClientConfig,
    ClientRequest, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, ElicitationCapability, ErrorCode, GetExtensions, GetMeta, Implementation,
    JsonRpcMessage, JsonRpcRequest, ListRootsResult, ProgressToken, ProtocolVersion, RequestId,
    RequestMetaObject, RootsCapabilities, SamplingCapability, ServerNotification,
};
use rmcp::service::{
    InboundStreamOrigin, Peer, RequestContext, RoleClient, RxJsonRpcMessage, TxJsonRpcMessage,
};
use rmcp::{ClientHandler, ErrorData};
use sandbar_engine::ClientError;

use crate::wire;

/// Something the upstream sent that the agent's client should see.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A notification, `params` in MCP's JSON shape.
    Notify { method: &'static str, params: Value },
    /// A question (`sampling/createMessage`, `elicitation/create`) and where
    /// the client's answer goes.
    Ask {
        method: &'static str,
        capability: &'static str,
        params: Value,
        reply: oneshot::Sender<Result<Value, ClientError>>,
    },
    /// The session broke (see [`Router::break_off`]): the request ends with
    /// this reason instead of waiting for an answer.
    Broken(String),
}

/// Names one request in flight. It travels in the SDK request's extensions
/// (never on the wire), which is how the transport learns the JSON-RPC id
/// and progress token the SDK gave it before the upstream can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct InFlightKey(u64);

#[derive(Debug)]
struct Entry {
    inbound: mpsc::UnboundedSender<Inbound>,
    /// The agent's progress token; `None` when the agent asked for no
    /// progress, and then the upstream is not asked for any either.
    agent_token: Option<Value>,
    rpc_id: Option<RequestId>,
    upstream_token: Option<ProgressToken>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// Ordered by registration: the last entry is the most recent request.
    inflight: BTreeMap<InFlightKey, Entry>,
    by_token: HashMap<ProgressToken, InFlightKey>,
    by_id: HashMap<RequestId, InFlightKey>,
    /// Questions read from a request's own answer stream (see `http.rs`),
    /// by the upstream's JSON-RPC id: how to learn that it withdrew one.
    questions: HashMap<RequestId, CancellationToken>,
    closed: bool,
    /// Why the session was broken off, if it was.
    broken: Option<String>,
}

/// The registry of requests in flight on one connection.
#[derive(Debug)]
pub(crate) struct Router {
    upstream: String,
    state: Mutex<State>,
}

impl Router {
    pub fn new(upstream: &str) -> Arc<Router> {
        Arc::new(Router {
            upstream: upstream.to_owned(),
            state: Mutex::new(State::default()),
        })
    }

    // The lock is never held across an await, and a panic while holding it
    // leaves the maps consistent (each update is a single insert or remove),
    // so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a request about to be sent. Messages for it arrive on the
    /// returned guard's channel until the guard is dropped.
    pub fn register(self: &Arc<Self>, agent_token: Option<Value>) -> InFlight {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.lock();
        let key = InFlightKey(state.next);
        state.next += 1;
        state.inflight.insert(
            key,
            Entry {
                inbound: tx,
                agent_token,
                rpc_id: None,
                upstream_token: None,
            },
        );
        InFlight {
            router: Arc::clone(self),
            key,
            inbound: rx,
            cancel_on_drop: None,
        }
    }

    fn remove(&self, key: InFlightKey) {
        let mut state = self.lock();
        if let Some(entry) = state.inflight.remove(&key) {
            if let Some(token) = entry.upstream_token {
                state.by_token.remove(&token);
            }
            if let Some(id) = entry.rpc_id {
                state.by_id.remove(&id);
            }
        }
    }

    /// Called as a request leaves for the upstream: binds its JSON-RPC id
    /// and the SDK's progress token to the request in flight. The SDK puts
    /// a progress token of its own on every request; when the agent asked
    /// for no progress it is taken off again, so the upstream is asked for
    /// progress exactly when the agent asked.
    fn on_send(&self, request: &mut JsonRpcRequest<ClientRequest>) {
        let Some(key) = request.request.extensions().get::<InFlightKey>().copied() else {
            return;
        };
        let token = request.request.get_meta().get_progress_token();
        if !self.bind(key, request.id.clone(), token) {
            let meta = request.request.get_meta_mut();
            meta.0.0.remove("progressToken");
            if meta.0.0.is_empty() {
                request
                    .request
                    .extensions_mut()
                    .remove::<RequestMetaObject>();
            }
        }
    }

    /// Binds a request's JSON-RPC id, and the progress token it is about to
    /// carry, to its entry. Returns whether the token is to be sent: only
    /// when the agent asked for progress.
    pub fn bind(&self, key: InFlightKey, id: RequestId, token: Option<ProgressToken>) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(entry) = state.inflight.get_mut(&key) else {
            return true;
        };
        entry.rpc_id = Some(id.clone());
        state.by_id.insert(id, key);
        match (&entry.agent_token, token) {
            (Some(_), Some(token)) => {
                entry.upstream_token = Some(token.clone());
                state.by_token.insert(token, key);
                true
            }
            (None, Some(_)) => false,
            (_, None) => true,
        }
    }

    /// Routes one notification from the upstream. Progress goes to the
    /// request whose token it carries, relabelled with the agent's token;
    /// log messages and resource and list changes go to the most recent
    /// request in flight. With no request to take them, they are dropped.
    pub fn route(&self, notification: &ServerNotification) {
        let method = match notification {
            ServerNotification::CancelledNotification(cancelled) => {
                if let Some(id) = &cancelled.params.request_id {
                    self.withdraw(id);
                }
                return;
            }
            ServerNotification::ProgressNotification(progress) => {
                self.route_progress(notification, &progress.params.progress_token);
                return;
            }
            ServerNotification::LoggingMessageNotification(_) => "notifications/message",
            ServerNotification::ResourceUpdatedNotification(_) => "notifications/resources/updated",
            ServerNotification::ResourceListChangedNotification(_) => {
                "notifications/resources/list_changed"
            }
            ServerNotification::ToolListChangedNotification(_) => {
                "notifications/tools/list_changed"
            }
            ServerNotification::PromptListChangedNotification(_) => {
                "notifications/prompts/list_changed"
            }
            // Cancelling questions the SDK asked is its business; the rest (task status,
            // subscription acknowledgements, custom methods) has no place
            // in what Sandbar forwards.
            _ => return,
        };
        let state = self.lock();
        match state.inflight.values().next_back() {
            Some(entry) => {
                let _ = entry.inbound.send(Inbound::Notify {
                    method,
                    params: wire::notification_params(notification),
                });
            }
            None => tracing::debug!(target: "sandbar::upstream", upstream = %self.upstream,
                method, "notification with no request in flight dropped"),
        }
    }

    fn route_progress(&self, notification: &ServerNotification, token: &ProgressToken) {
        let state = self.lock();
        let target = state
            .by_token
            .get(token)
            .and_then(|key| state.inflight.get(key))
            .and_then(|entry| Some((&entry.inbound, entry.agent_token.as_ref()?)));
        match target {
            Some((inbound, agent_token)) => {
                let _ = inbound.send(Inbound::Notify {
                    method: "notifications/progress",
                    params: wire::progress_params(notification, agent_token),
                });
            }
            None => tracing::debug!(target: "sandbar::upstream", upstream = %self.upstream,
                "progress for no request in flight dropped"),
        }
    }

    /// Where a question from the upstream goes: the request whose response
    /// stream it arrived on (Streamable HTTP tells), else the most recent
    /// request in flight.
    pub fn question_target(
        &self,
        origin: Option<&RequestId>,
    ) -> Option<mpsc::UnboundedSender<Inbound>> {
        let state = self.lock();
        let associated = origin
            .and_then(|id| state.by_id.get(id))
            .and_then(|key| state.inflight.get(key));
        associated
            .or_else(|| state.inflight.values().next_back())
            .map(|entry| entry.inbound.clone())
    }

    /// Notes a question the upstream may withdraw; the token fires when it
    /// does, until [`Router::forget_question`].
    pub fn question(&self, id: RequestId) -> CancellationToken {
        let token = CancellationToken::new();
        self.lock().questions.insert(id, token.clone());
        token
    }

    pub fn forget_question(&self, id: &RequestId) {
        self.lock().questions.remove(id);
    }

    fn withdraw(&self, id: &RequestId) {
        if let Some(token) = self.lock().questions.remove(id) {
            token.cancel();
        }
    }

    /// Records that the connection is gone.
    pub fn mark_closed(&self) {
        self.lock().closed = true;
    }

    /// Ends the session while its transport is still open, because the
    /// upstream can no longer be trusted to answer (it wrote something
    /// that is not MCP, or stopped answering): every request in flight ends
    /// now with `reason`, and the session counts as closed, so the engine
    /// opens a new one (a new process) for the next call. The first reason
    /// stands.
    pub fn break_off(&self, reason: String) {
        let mut state = self.lock();
        state.closed = true;
        if state.broken.is_some() {
            return;
        }
        for entry in state.inflight.values() {
            let _ = entry.inbound.send(Inbound::Broken(reason.clone()));
        }
        state.broken = Some(reason);
    }

    /// Why the session was broken off, if it was.
    pub fn broken(&self) -> Option<String> {
        self.lock().broken.clone()
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// A request in flight. Dropping it deregisters the request, and, if the
/// request was neither answered nor cancelled (the caller gave up on it),
/// tells the upstream it is cancelled.
#[derive(Debug)]
pub(crate) struct InFlight {
    router: Arc<Router>,
    key: InFlightKey,
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    cancel_on_drop: Option<(Peer<RoleClient>, RequestId)>,
}

impl InFlight {
    pub fn key(&self) -> InFlightKey {
        self.key
    }

    /// Arms the cancellation sent if this guard is dropped before
    /// [`InFlight::settled`].
    pub fn sent(&mut self, peer: Peer<RoleClient>, id: RequestId) {
        self.cancel_on_drop = Some((peer, id));
    }

    /// The request was answered, or its cancellation sent: nothing is left
    /// to tell the upstream.
    pub fn settled(&mut self) {
        self.cancel_on_drop = None;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.router.remove(self.key);
        if let Some((peer, id)) = self.cancel_on_drop.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let notification = CancelledNotification::new(CancelledNotificationParam::new(
                Some(id),
                Some("the request was abandoned".to_owned()),
            ));
            runtime.spawn(async move {
                let _ = peer.send_notification(notification.into()).await;
            });
        }
    }
}

/// The SDK transport, watched on its way in and out: outgoing requests are
/// bound to their entry in the registry, incoming notifications are routed
/// in the order they arrive, and the end of the stream marks the
/// connection closed.
///
/// Routing here rather than in the client handler matters: the SDK handles
/// each notification on a task of its own, so from the handler a progress
/// notification could overtake the one before it or the result it preceded.
/// Here each is routed before the SDK sees the next message, so everything
/// the upstream sent before its answer is in the request's channel by the
/// time the answer is.
pub(crate) struct Routed<T> {
    inner: T,
    router: Arc<Router>,
}

impl<T> Routed<T> {
    pub fn new(inner: T, router: Arc<Router>) -> Self {
        Routed { inner, router }
    }
}

impl<T> rmcp::transport::Transport<RoleClient> for Routed<T>
where
    T: rmcp::transport::Transport<RoleClient>,
{
    type Error = T::Error;

    fn send(
        &mut self,
        mut item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let JsonRpcMessage::Request(request) = &mut item {
            self.router.on_send(request);
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await;
        match &message {
            Some(JsonRpcMessage::Notification(n)) => self.router.route(&n.notification),
            Some(_) => {}
            None => self.router.mark_closed(),
        }
        message
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.router.mark_closed();
        self.inner.close().await
    }
}

/// The SDK client handler: who Sandbar says it is, and answers to the
/// upstream's questions.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamHandler {
    router: Arc<Router>,
}

impl UpstreamHandler {
    pub fn new(router: Arc<Router>) -> Self {
        UpstreamHandler { router }
    }

    /// Takes a question to the agent's client through the request in
    /// flight, and its answer back.
    async fn ask(
        &self,
        method: &'static str,
        capability: &'static str,
        params: Value,
        context: &RequestContext<RoleClient>,
    ) -> Result<Value, ErrorData> {
        let origin = match context.extensions.get::<InboundStreamOrigin>() {
            Some(InboundStreamOrigin::OutboundRequest(id)) => Some(id),
            _ => None,
        };
        let target = self.router.question_target(origin);
        ask(target, method, capability, params, &context.ct).await
    }
}

/// Takes a question to the agent's client through `target`, the channel of
/// the request in flight it belongs to, and brings its answer back, or an
/// error for the upstream: no request in flight, the client cannot answer
/// or refused, or the request ended first. If `withdrawn` fires (the
/// upstream withdrew its question), the answer is not waited for.
pub(crate) async fn ask(
    target: Option<mpsc::UnboundedSender<Inbound>>,
    method: &'static str,
    capability: &'static str,
    params: Value,
    withdrawn: &CancellationToken,
) -> Result<Value, ErrorData> {
    let Some(target) = target else {
        return Err(ErrorData::new(
            ErrorCode::INVALID_REQUEST,
            format!("{method} is only answered during a request from the client"),
            None,
        ));
    };
    let (reply, answer) = oneshot::channel();
    let ended = || {
        ErrorData::new(
            ErrorCode::INTERNAL_ERROR,
            format!("the request {method} belonged to has ended"),
            None,
        )
    };
    target
        .send(Inbound::Ask {
            method,
            capability,
            params,
            reply,
        })
        .map_err(|_| ended())?;
    let answer = tokio::select! {
        answer = answer => answer.map_err(|_| ended())?,
        // The upstream withdrew its question; whatever would have been
        // answered is discarded.
        () = withdrawn.cancelled() => return Err(ended()),
    };
    answer.map_err(|e| match e {
        ClientError::Unsupported(capability) => ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("the client does not support {capability}"),
            None,
        ),
        ClientError::Rejected { code, message } => ErrorData::new(ErrorCode(code), message, None),
        ClientError::Transport(message) => ErrorData::new(ErrorCode::INTERNAL_ERROR, message, None),
    })
}

pub(crate) fn malformed_answer(method: &str, error: &serde_json::Error) -> ErrorData {
    ErrorData::new(
        ErrorCode::INTERNAL_ERROR,
        format!("the client's answer to {method} is malformed: {error}"),
        None,
    )
}

#[allow(deprecated)] // See the note on the imports.
impl ClientHandler for UpstreamHandler {
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        const METHOD: &str = "sampling/createMessage";
        let params = serde_json::to_value(params).map_err(|e| malformed_answer(METHOD, &e))?;
        let answer = self.ask(METHOD, "sampling", params, &context).await?;
        serde_json::from_value(answer).map_err(|e| malformed_answer(METHOD, &e))
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        const METHOD: &str = "elicitation/create";
        let params = serde_json::to_value(params).map_err(|e| malformed_answer(METHOD, &e))?;
        let answer = self.ask(METHOD, "elicitation", params, &context).await?;
        serde_json::from_value(answer).map_err(|e| malformed_answer(METHOD, &e))
    }

    /// No roots: what the sandboxed upstream may see is the scenario's
    /// business, not the agent's filesystem. Servers that take their
    /// directories from roots (server-filesystem) keep the ones they were
    /// started with when the list is empty.
    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::default())
    }

    fn get_info(&self) -> ClientConfig {
        client_config()
    }
}

/// What Sandbar declares in `initialize`: its name and version, and the
/// capabilities whose requests it can pass on (sampling, elicitation) or
/// answer (roots). The protocol version is the newest with an `initialize`
/// handshake, so sessions, notifications and server-to-client requests work
/// as every current server expects.
#[allow(deprecated)]
pub(crate) fn client_config() -> ClientConfig {
    let mut capabilities = ClientCapabilities::default();
    capabilities.roots = Some(RootsCapabilities::default());
    capabilities.sampling = Some(SamplingCapability::default());
    capabilities.elicitation = Some(ElicitationCapability::default());
    ClientConfig::new(
        capabilities,
        Implementation::new("sandbar", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn declares_sampling_elicitation_and_roots() {
        let config = serde_json::to_value(client_config()).unwrap_or_default();
        assert_eq!(config["clientInfo"]["name"], "sandbar");
        assert_eq!(config["clientInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(config["protocolVersion"], "2025-11-25");
        let capabilities = &config["capabilities"];
        for capability in ["sampling", "elicitation", "roots"] {
            assert!(capabilities[capability].is_object(), "{capabilities}");
        }
    }

    #[test]
    #[allow(deprecated)]
    fn roots_are_an_empty_list() {
        let roots = serde_json::to_value(ListRootsResult::default()).unwrap_or_default();
        assert_eq!(roots, json!({"roots": []}));
    }

    fn notification(value: Value) -> ServerNotification {
        match serde_json::from_value(value) {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn notifications_go_to_the_most_recent_request_and_progress_to_its_own() {
        let router = Router::new("t");
        let mut first = router.register(Some(json!("agent-1")));
        let mut second = router.register(None);
        {
            let mut state = router.lock();
            let state = &mut *state;
            let token = ProgressToken(rmcp::model::NumberOrString::Number(41));
            if let Some(entry) = state.inflight.get_mut(&first.key()) {
                entry.upstream_token = Some(token.clone());
            }
            state.by_token.insert(token, first.key());
        }
        router.route(&notification(json!({
            "method": "notifications/progress",
            "params": {"progressToken": 41, "progress": 1, "total": 2}
        })));
        router.route(&notification(json!({
            "method": "notifications/message",
            "params": {"level": "info", "data": "x"}
        })));
        match first.inbound.try_recv() {
            Ok(Inbound::Notify { method, params }) => {
                assert_eq!(method, "notifications/progress");
                assert_eq!(
                    params,
                    json!({"progressToken": "agent-1", "progress": 1, "total": 2})
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(first.inbound.try_recv().is_err());
        match second.inbound.try_recv() {
            Ok(Inbound::Notify { method, .. }) => assert_eq!(method, "notifications/message"),
            other => panic!("{other:?}"),
        }
        drop(second);
        router.route(&notification(
            json!({"method": "notifications/tools/list_changed"}),
        ));
        match first.inbound.try_recv() {
            Ok(Inbound::Notify { method, params }) => {
                assert_eq!(method, "notifications/tools/list_changed");
                assert_eq!(params, json!({}));
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(router.lock().inflight.is_empty());
        assert!(router.lock().by_token.is_empty());
    }
}
