//! Answering `tools/call` without the SDK's session worker.
//!
//! Inside a Streamable HTTP session, the HTTP guard hands every
//! `tools/call` here once the session's `notifications/initialized` has
//! been recorded. The call walks the same pipeline (`Run::handle`) as on
//! the SDK's path, and its result takes the same wire shape: it is parsed
//! into the SDK's result type and given the same version adjustments before
//! it is serialized.
//!
//! The response's type is chosen by what comes first. The answer makes it
//! one `application/json` body (which the transport allows whenever the
//! client accepts JSON): most calls talk to nobody but the engine. A
//! notification (progress, a log message, a list change) or a question to
//! the client (sampling, elicitation) makes it an event stream that carries
//! that message, those after it, and then the answer. Notifications go as
//! the engine wrote them, byte for byte what the run recorded and a
//! cassette keeps (the SDK's typed notifications would turn a progress of
//! `1` into `1.0`), and every message of a call rides the call's own
//! stream. A question gets an id of this session's own (`sandbar-N`, never
//! a number the SDK would use), and the client's answer, POSTed like any
//! response, is taken by the guard ([`SessionLink::answer`]) before the SDK
//! sees it. A `notifications/cancelled` for the call reaches it through
//! [`SessionLink::cancel`]; a session that ends cancels its calls and
//! the questions they wait on.
//!
//! Like the SDK's streams, a call's stream opens with a priming event (an
//! id and a `retry` hint, SEP-1699), gives every message an event id
//! (`sandbar-S-N`: the session's stream S, its N-th event), and sends an SSE
//! comment every 15 s while the call is quiet, so that nothing between the
//! two ends takes a long call for a dead connection. What a call sends is
//! kept until its answer has been sent (and for the session's last 16
//! streams after that, since an answer may be lost with the connection), or
//! the session ends: a client that lost the stream picks it up again with a
//! `GET` carrying `Last-Event-ID` ([`resume`]), from the event after that
//! one.
//!
//! Everything else — any other method, a session whose handler has not yet
//! been seen, a client that accepts no event stream for a call that may
//! need one — goes to the SDK.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolResult, ServerResult};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use sandbar_engine::{Call, Client, ClientError, DetachedClient, Method, Outcome, capability_for};

use crate::server::Shared;

/// How often a quiet call's stream carries an SSE comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The reconnection delay a stream's priming event suggests, in ms.
const RETRY_MS: u64 = 3000;

/// What the guard keeps of one HTTP session: what its client can be asked,
/// its calls in flight, the questions put to it that wait for an answer,
/// and what its calls' streams have to deliver.
#[derive(Debug, Default)]
pub(crate) struct SessionLink {
    sampling: bool,
    elicitation: bool,
    roots: bool,
    /// Calls that may wait (on an upstream, the client, a step), by request
    /// id, so that a `notifications/cancelled` or the session's end reaches
    /// them.
    calls: Mutex<HashMap<String, CancellationToken>>,
    next_question: AtomicU64,
    /// Questions waiting for the client's answer, by their id; `None` once
    /// the session has ended.
    waiting: Mutex<Option<HashMap<String, oneshot::Sender<Value>>>>,
    next_stream: AtomicU64,
    /// Calls' messages, by stream number.
    streams: Mutex<Streams>,
}

/// The streams of a session's calls that a client may pick up again: every
/// one whose answer no reader has reached yet, and the last
/// [`KEPT_DELIVERED`] whose answer one has (it may have been lost on the
/// way, with the connection).
#[derive(Debug, Default)]
struct Streams {
    sent: HashMap<u64, Arc<Sent>>,
    delivered: std::collections::VecDeque<u64>,
}

/// How many streams a session keeps after their answer was sent.
const KEPT_DELIVERED: usize = 16;

/// What one call has sent towards the client, in order, its answer last.
#[derive(Debug, Default)]
struct Sent {
    state: Mutex<SentState>,
    more: Notify,
}

#[derive(Debug, Default)]
struct SentState {
    messages: Vec<String>,
    /// The last message is the answer.
    done: bool,
}

impl Sent {
    /// Adds a message; nothing comes after the answer.
    fn push(&self, message: String, answer: bool) {
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.done {
                return;
            }
            state.messages.push(message);
            state.done = answer;
        }
        self.more.notify_waiters();
    }

    fn is_done(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).done
    }

    /// The message at `index` once there is one, and whether it is the
    /// answer.
    async fn message(&self, index: usize) -> (String, bool) {
        loop {
            let more = self.more.notified();
            {
                let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(message) = state.messages.get(index) {
                    return (
                        message.clone(),
                        state.done && index + 1 == state.messages.len(),
                    );
                }
            }
            more.await;
        }
    }
}

/// Answers the call with an internal error if it ends without an answer
/// (its task was dropped), so that no stream waits for ever.
struct Unanswered {
    sent: Arc<Sent>,
    id: Value,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if !self.sent.is_done() {
            let error = json!({"jsonrpc": "2.0", "id": self.id,
                "error": {"code": -32603, "message": "the call ended without an answer"}});
            self.sent.push(error.to_string(), true);
        }
    }
}

impl SessionLink {
    /// A session's link, from the capabilities its client declared.
    pub(crate) fn new(declared: impl Fn(&str) -> bool) -> SessionLink {
        SessionLink {
            sampling: declared("sampling"),
            elicitation: declared("elicitation"),
            roots: declared("roots"),
            waiting: Mutex::new(Some(HashMap::new())),
            ..SessionLink::default()
        }
    }

    fn supports(&self, capability: &str) -> bool {
        match capability {
            "sampling" => self.sampling,
            "elicitation" => self.elicitation,
            "roots" => self.roots,
            _ => false,
        }
    }

    /// Takes a client's JSON-RPC response if it answers one of this
    /// session's questions; false leaves it to the SDK.
    pub(crate) fn answer(&self, message: &Value) -> bool {
        let Some(id) = message.get("id").and_then(Value::as_str) else {
            return false;
        };
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .and_then(|waiting| waiting.remove(id));
        match waiting {
            Some(tx) => {
                // The call may have ended (cancelled) since it asked.
                let _ = tx.send(message.clone());
                true
            }
            None => false,
        }
    }

    /// Registers a call in flight; its cancellation.
    fn track(&self, request_id: &str) -> CancellationToken {
        let token = CancellationToken::new();
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request_id.to_owned(), token.clone());
        token
    }

    fn untrack(&self, request_id: &str) {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(request_id);
    }

    /// Whether a call of the session is in flight.
    pub(crate) fn busy(&self) -> bool {
        !self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Cancels the call with this request id, if it is in flight.
    pub(crate) fn cancel(&self, request_id: &str) {
        if let Some(token) = self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(request_id)
        {
            token.cancel();
        }
    }

    /// The session is over: its calls are cancelled (as the SDK cancels
    /// the requests it handles), then every wait ends and what was kept is
    /// let go. Cancelling first makes a call waiting on the client end
    /// cancelled rather than with a failed question.
    pub(crate) fn close(&self) {
        for token in self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            token.cancel();
        }
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        *self.streams.lock().unwrap_or_else(|p| p.into_inner()) = Streams::default();
    }

    /// A new stream for a call's messages.
    fn open_stream(&self) -> (u64, Arc<Sent>) {
        let number = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let sent = Arc::new(Sent::default());
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sent
            .insert(number, sent.clone());
        (number, sent)
    }

    fn stream(&self, number: u64) -> Option<Arc<Sent>> {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sent
            .get(&number)
            .cloned()
    }

    /// A stream whose answer a reader has sent: kept among the last few.
    fn delivered(&self, number: u64) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if streams.delivered.contains(&number) {
            return;
        }
        streams.delivered.push_back(number);
        while streams.delivered.len() > KEPT_DELIVERED {
            if let Some(oldest) = streams.delivered.pop_front() {
                streams.sent.remove(&oldest);
            }
        }
    }

    /// A stream never shown as one (its answer went as one JSON body).
    fn drop_stream(&self, number: u64) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sent
            .remove(&number);
    }

    /// Registers a question; its id, and where its answer will come.
    fn ask(&self) -> Option<(String, oneshot::Receiver<Value>)> {
        let id = format!(
            "sandbar-{}",
            self.next_question.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()?
            .insert(id.clone(), tx);
        Some((id, rx))
    }

    fn forget(&self, id: &str) {
        if let Some(waiting) = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            waiting.remove(id);
        }
    }
}

/// The way back to the client of one call: everything goes to the call's
/// response, in order.
struct StreamClient {
    sent: Arc<Sent>,
    link: Arc<SessionLink>,
}

/// Forgets a question whose call stopped waiting (cancelled), so a late
/// answer goes nowhere.
struct Pending<'a> {
    link: &'a SessionLink,
    id: &'a str,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.link.forget(self.id);
    }
}

#[async_trait]
impl Client for StreamClient {
    async fn notify(&self, method: &str, params: Value) -> Result<(), ClientError> {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.sent.push(message.to_string(), false);
        Ok(())
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        if capability_for(method).is_none_or(|c| !self.link.supports(c)) {
            return Err(ClientError::Transport(format!(
                "the client declared no capability to answer {method}"
            )));
        }
        let (id, answer) = self.link.ask().ok_or_else(|| {
            ClientError::Transport("the session ended before the question was put".to_owned())
        })?;
        let _pending = Pending {
            link: &self.link,
            id: &id,
        };
        let question = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.sent.push(question.to_string(), false);
        let reply = answer.await.map_err(|_| {
            ClientError::Transport(format!(
                "the session ended before the client answered {method}"
            ))
        })?;
        match (reply.get("result"), reply.get("error")) {
            (Some(result), _) => Ok(result.clone()),
            (None, Some(error)) => Err(ClientError::Rejected {
                code: error
                    .get("code")
                    .and_then(Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or(-32603),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the client answered with an error")
                    .to_owned(),
            }),
            (None, None) => Err(ClientError::Transport(format!(
                "the client answered {method} with neither a result nor an error"
            ))),
        }
    }

    fn supports(&self, capability: &str) -> bool {
        self.link.supports(capability)
    }
}

/// The answer to `message`, if it can be given directly.
pub(crate) async fn answer(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    message: &Value,
) -> Option<Response> {
    if message.get("method").and_then(Value::as_str) != Some("tools/call") {
        return None;
    }
    let id = message
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64())?
        .clone();
    let accepts = |kind: &str| {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains(kind) || v.contains("*/*"))
    };
    if !accepts("application/json") {
        return None;
    }
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())?;
    let (run, link) = shared.session_client(session)?;
    let params = message.get("params")?.as_object()?;
    let name = params.get("name")?.as_str()?;
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => return None,
    };
    let quiet = shared.engine().answers_without_client(name);
    // A call that may talk to the client needs a stream to do it on; a
    // client that accepts none is the SDK's to refuse.
    if !quiet && !accepts("text/event-stream") {
        return None;
    }
    let request_id = match &id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let call = Call {
        method: Method::CallTool {
            name: name.to_owned(),
            arguments,
        },
        request_id: Some(request_id),
        progress_token: params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .cloned(),
        // Nothing in a quiet call waits for cancellation; if the client goes
        // away, this future is dropped with the connection.
        cancel: CancellationToken::new(),
    };
    if !quiet {
        return Some(stream(run, link, call, id).await);
    }
    let outcome = run.handle(call, &DetachedClient).await;
    Some(json_response(response_body(&id, outcome)))
}

/// A call that may talk to the client: JSON if the answer comes first,
/// else an event stream.
async fn stream(
    run: Arc<sandbar_engine::Run>,
    link: Arc<SessionLink>,
    mut call: Call,
    id: Value,
) -> Response {
    let request_id = call.request_id.clone().unwrap_or_default();
    call.cancel = link.track(&request_id);
    let (number, sent) = link.open_stream();
    // The call runs to its end whatever happens to the HTTP response: its
    // events are recorded and its upstream request completes or is
    // cancelled, never dropped half-way.
    {
        let client = StreamClient {
            sent: sent.clone(),
            link: link.clone(),
        };
        tokio::spawn(async move {
            let unanswered = Unanswered {
                sent: client.sent.clone(),
                id: id.clone(),
            };
            let outcome = run.handle(call, &client).await;
            client.link.untrack(&request_id);
            unanswered.sent.push(response_body(&id, outcome), true);
        });
    }
    match sent.message(0).await {
        (body, true) => {
            link.drop_stream(number);
            json_response(body)
        }
        (_, false) => event_stream(link, number, sent, 0),
    }
}

/// The id of a stream's `index`-th event (0 is the priming event).
fn event_id(stream: u64, index: usize) -> String {
    format!("sandbar-{stream}-{index}")
}

/// The stream and index an event id of [`event_id`] names.
fn parse_event_id(id: &str) -> Option<(u64, usize)> {
    let (stream, index) = id.strip_prefix("sandbar-")?.split_once('-')?;
    Some((stream.parse().ok()?, index.parse().ok()?))
}

/// A call's messages from the `from`-th on as an event stream, which ends
/// with the answer. A fresh stream (`from` 0) opens with a priming event.
fn event_stream(link: Arc<SessionLink>, number: u64, sent: Arc<Sent>, from: usize) -> Response {
    struct Reader {
        link: Arc<SessionLink>,
        number: u64,
        sent: Arc<Sent>,
        next: usize,
        prime: bool,
        over: bool,
    }
    let reader = Reader {
        link,
        number,
        sent,
        next: from,
        prime: from == 0,
        over: false,
    };
    let events = futures::stream::unfold(reader, |mut r| async move {
        if r.over {
            return None;
        }
        if r.prime {
            r.prime = false;
            let priming = format!(
                "id: {}\nretry: {RETRY_MS}\ndata: \n\n",
                event_id(r.number, 0)
            );
            return Some((Ok::<_, std::convert::Infallible>(priming), r));
        }
        let (message, answer) = tokio::select! {
            got = r.sent.message(r.next) => got,
            () = tokio::time::sleep(KEEP_ALIVE) => {
                return Some((Ok(": keep-alive\n\n".to_owned()), r));
            }
        };
        r.next += 1;
        if answer {
            r.over = true;
            r.link.delivered(r.number);
        }
        let event = format!(
            "id: {}\nevent: message\ndata: {message}\n\n",
            event_id(r.number, r.next)
        );
        Some((Ok(event), r))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

/// A `GET` that picks up a call's stream again after the event its
/// `Last-Event-ID` names; `None` for anything that is not one of these
/// streams (the SDK's own, or a `GET` without the header).
pub(crate) fn resume(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let last = headers.get("last-event-id")?.to_str().ok()?;
    let (number, index) = parse_event_id(last)?;
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())?;
    let link = shared.session_link(session)?;
    Some(match link.stream(number) {
        Some(sent) => event_stream(link, number, sent, index),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "no stream to resume after event {last}: this session keeps no such stream (it never was, or many were answered since)"
            ),
        )
            .into_response(),
    })
}

/// The whole JSON-RPC response to a call, serialized.
fn response_body(id: &Value, outcome: Outcome) -> String {
    /// A response whose result is serialized straight from its type, in
    /// the order `json!` would give it, without a `Value` in between.
    #[derive(Serialize)]
    struct Answer<'a> {
        jsonrpc: &'static str,
        id: &'a Value,
        result: ServerResult,
    }
    let error = |error: Value| json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string();
    match outcome {
        Outcome::Result(value) => {
            match sandbar_upstream::parse_result::<CallToolResult>("tools/call", &value) {
                Ok(result) => {
                    // Sessions always speak a version before 2026-07-28; give the
                    // result the shape the SDK gives it for those peers.
                    let mut result = ServerResult::CallToolResult(result);
                    result.strip_result_type_for_legacy_peer();
                    result.strip_non_object_output_for_legacy_peer();
                    let answer = Answer {
                        jsonrpc: "2.0",
                        id,
                        result,
                    };
                    serde_json::to_string(&answer).unwrap_or_else(|e| {
                        error(json!({"code": -32603, "message": format!("sandbar could not serialize a result: {e}")}))
                    })
                }
                Err(e) => error(
                    json!({"code": -32603, "message": format!("sandbar produced a malformed result: {e}")}),
                ),
            }
        }
        Outcome::Error(e) => error(e.to_json()),
    }
}

fn json_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
// Tests fail by panicking; unwrapping is how they say so.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sandbar_engine::ProtocolError;

    /// The body as it was built before: the SDK's result turned into a
    /// `Value`, put in a `json!` envelope, and printed.
    fn through_a_value(id: &Value, result: &Value) -> String {
        let result =
            sandbar_upstream::parse_result::<CallToolResult>("tools/call", result).unwrap();
        let mut result = ServerResult::CallToolResult(result);
        result.strip_result_type_for_legacy_peer();
        result.strip_non_object_output_for_legacy_peer();
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
    }

    #[test]
    fn a_result_serialized_straight_has_the_bytes_it_had_through_a_value() {
        let results = [
            json!({"content": [{"type": "text", "text": "Echo: hi"}]}),
            json!({"content": [], "isError": true}),
            json!({
                "content": [
                    {"type": "text", "text": "ünïcode \"quoted\"\n", "annotations": {"audience": ["user"], "priority": 0.5}},
                    {"type": "image", "data": "aGk=", "mimeType": "image/png"},
                    {"type": "resource_link", "uri": "file:///a", "name": "a"}
                ],
                "structuredContent": {"z": 1, "a": [1.5, null, {"k": "v"}]},
                "_meta": {"trace": "t-1"}
            }),
            json!({"content": [{"type": "text", "text": "x"}], "structuredContent": [1, 2]}),
        ];
        for id in [json!(7), json!("req-1"), json!(u64::MAX)] {
            for result in &results {
                let straight = response_body(&id, Outcome::Result(result.clone()));
                assert_eq!(straight, through_a_value(&id, result), "{result}");
            }
        }
    }

    #[test]
    fn event_ids_name_their_stream_and_place_and_nothing_else_parses_as_one() {
        for (stream, index) in [(0, 0), (3, 17), (u64::MAX, usize::MAX)] {
            assert_eq!(
                parse_event_id(&event_id(stream, index)),
                Some((stream, index))
            );
        }
        for other in [
            "",
            "0/3",
            "sandbar-",
            "sandbar-1",
            "sandbar-x-1",
            "sandbar-1-",
            "sandbar--1-2",
            "other-1-2",
        ] {
            assert_eq!(parse_event_id(other), None, "{other:?}");
        }
    }

    #[tokio::test]
    async fn a_calls_messages_are_read_in_order_and_nothing_follows_its_answer() {
        let sent = Arc::new(Sent::default());
        let reader = {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for index in 0.. {
                    let (message, answer) = sent.message(index).await;
                    got.push(message);
                    if answer {
                        return got;
                    }
                }
                got
            })
        };
        sent.push("one".to_owned(), false);
        tokio::task::yield_now().await;
        sent.push("two".to_owned(), false);
        sent.push("answer".to_owned(), true);
        sent.push("late".to_owned(), false);
        assert_eq!(reader.await.unwrap(), ["one", "two", "answer"]);
        assert_eq!(sent.message(2).await, ("answer".to_owned(), true));
    }

    #[tokio::test]
    async fn a_call_dropped_without_an_answer_still_ends_its_stream() {
        let sent = Arc::new(Sent::default());
        sent.push("progress".to_owned(), false);
        drop(Unanswered {
            sent: sent.clone(),
            id: json!(4),
        });
        let (last, answer) = sent.message(1).await;
        assert!(answer);
        let last: Value = serde_json::from_str(&last).unwrap();
        assert_eq!(last["id"], 4);
        assert_eq!(last["error"]["code"], -32603);
    }

    #[test]
    fn answers_go_to_the_questions_the_session_asked_and_only_once() {
        let link = SessionLink::new(|c| c == "sampling");
        assert!(link.supports("sampling"));
        assert!(!link.supports("elicitation"));
        let (id, mut rx) = link.ask().unwrap();
        assert_eq!(id, "sandbar-0");
        assert!(
            !link.answer(&json!({"id": 0, "result": {}})),
            "a number is the SDK's"
        );
        assert!(!link.answer(&json!({"id": "sandbar-9", "result": {}})));
        assert!(link.answer(&json!({"id": "sandbar-0", "result": {"x": 1}})));
        assert_eq!(rx.try_recv().unwrap()["result"]["x"], 1);
        assert!(
            !link.answer(&json!({"id": "sandbar-0", "result": {}})),
            "answered once"
        );
        // Once the session is over, nothing waits and nothing is asked.
        let (_, mut waiting) = link.ask().unwrap();
        link.close();
        assert!(waiting.try_recv().is_err());
        assert!(link.ask().is_none());
    }

    #[test]
    fn a_session_keeps_its_unanswered_streams_and_its_last_answered_ones() {
        let link = SessionLink::new(|_| false);
        let numbers: Vec<u64> = (0..KEPT_DELIVERED + 5)
            .map(|_| link.open_stream().0)
            .collect();
        let open = link.open_stream().0;
        for &n in &numbers {
            link.delivered(n);
            link.delivered(n);
        }
        assert!(link.stream(open).is_some(), "an unanswered stream stays");
        for (i, &n) in numbers.iter().enumerate() {
            assert_eq!(link.stream(n).is_some(), i >= 5, "stream {n}");
        }
        link.drop_stream(open);
        assert!(link.stream(open).is_none());
        link.close();
        assert!(link.stream(numbers[10]).is_none());
    }

    #[test]
    fn errors_and_malformed_results_are_json_rpc_errors() {
        let id = json!(3);
        let body: Value = serde_json::from_str(&response_body(
            &id,
            Outcome::Error(ProtocolError::internal("boom")),
        ))
        .unwrap();
        assert_eq!(body["id"], id);
        assert_eq!(body["error"]["message"], "boom");
        let body: Value = serde_json::from_str(&response_body(
            &id,
            Outcome::Result(json!({"content": "not a list"})),
        ))
        .unwrap();
        assert_eq!(body["error"]["code"], -32603);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("malformed result"),
            "{body}"
        );
    }
}
