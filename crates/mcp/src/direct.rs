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
//! response, is taken by the guard ([`Asker::answer`]) before the SDK sees
//! it. A `notifications/cancelled` for the call reaches it through
//! [`Shared::cancel_direct`]; a session that ends cancels its calls and
//! the questions they wait on.
//!
//! Everything else — any other method, a session whose handler has not yet
//! been seen, a client that accepts no event stream for a call that may
//! need one — goes to the SDK.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolResult, ServerResult};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use sandbar_engine::{Call, Client, ClientError, DetachedClient, Method, Outcome, capability_for};

use crate::server::Shared;

/// What a call sends towards the client, in order.
enum Message {
    /// A notification or a request, as a whole JSON-RPC message.
    Send(Value),
    /// The response, as a whole serialized JSON-RPC message; always last.
    Done(String),
}

/// What one HTTP session's client can be asked, and the questions put to
/// it that wait for an answer.
#[derive(Debug, Default)]
pub(crate) struct Asker {
    sampling: bool,
    elicitation: bool,
    roots: bool,
    next_id: AtomicU64,
    /// Questions waiting for the client's answer, by their id; `None` once
    /// the session has ended.
    waiting: Mutex<Option<HashMap<String, oneshot::Sender<Value>>>>,
}

impl Asker {
    /// A session's asker, from the capabilities its client declared.
    pub(crate) fn new(declared: impl Fn(&str) -> bool) -> Asker {
        Asker {
            sampling: declared("sampling"),
            elicitation: declared("elicitation"),
            roots: declared("roots"),
            next_id: AtomicU64::new(0),
            waiting: Mutex::new(Some(HashMap::new())),
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

    /// Ends every wait: the session is over.
    pub(crate) fn close(&self) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// Registers a question; its id, and where its answer will come.
    fn ask(&self) -> Option<(String, oneshot::Receiver<Value>)> {
        let id = format!("sandbar-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
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
    tx: mpsc::UnboundedSender<Message>,
    asker: Arc<Asker>,
}

impl StreamClient {
    fn send(&self, message: Value) -> Result<(), ClientError> {
        self.tx
            .send(Message::Send(message))
            .map_err(|_| ClientError::Transport("the client's response is closed".to_owned()))
    }
}

/// Forgets a question whose call stopped waiting (cancelled), so a late
/// answer goes nowhere.
struct Pending<'a> {
    asker: &'a Asker,
    id: &'a str,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.asker.forget(self.id);
    }
}

#[async_trait]
impl Client for StreamClient {
    async fn notify(&self, method: &str, params: Value) -> Result<(), ClientError> {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        if capability_for(method).is_none_or(|c| !self.asker.supports(c)) {
            return Err(ClientError::Transport(format!(
                "the client declared no capability to answer {method}"
            )));
        }
        let (id, answer) = self.asker.ask().ok_or_else(|| {
            ClientError::Transport("the session ended before the question was put".to_owned())
        })?;
        let _pending = Pending {
            asker: &self.asker,
            id: &id,
        };
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
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
        self.asker.supports(capability)
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
    let (run, asker) = shared.session_client(session)?;
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
        return Some(stream(shared, session, run, asker, call, id).await);
    }
    let outcome = run.handle(call, &DetachedClient).await;
    Some(json_response(response_body(&id, outcome)))
}

/// A call that may talk to the client: JSON if the answer comes first,
/// else an event stream.
async fn stream(
    shared: &Arc<Shared>,
    session: &str,
    run: Arc<sandbar_engine::Run>,
    asker: Arc<Asker>,
    mut call: Call,
    id: Value,
) -> Response {
    let request_id = call.request_id.clone().unwrap_or_default();
    call.cancel = shared.track_direct(session, &request_id);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The call runs to its end whatever happens to the HTTP response: its
    // events are recorded and its upstream request completes or is
    // cancelled, never dropped half-way.
    let shared = shared.clone();
    let session = session.to_owned();
    tokio::spawn(async move {
        let client = StreamClient {
            tx: tx.clone(),
            asker,
        };
        let outcome = run.handle(call, &client).await;
        shared.untrack_direct(&session, &request_id);
        let _ = tx.send(Message::Done(response_body(&id, outcome)));
    });
    match rx.recv().await {
        Some(Message::Done(body)) => json_response(body),
        Some(Message::Send(first)) => {
            let events = futures::stream::unfold((Some(first), rx), |(pending, mut rx)| async move {
                let (message, done) = match pending {
                    Some(n) => (n.to_string(), false),
                    None => match rx.recv().await? {
                        Message::Send(n) => (n.to_string(), false),
                        Message::Done(body) => (body, true),
                    },
                };
                let event = format!("event: message\ndata: {message}\n\n");
                // After the answer the stream ends.
                let rx = if done { close(rx) } else { rx };
                Some((Ok::<_, std::convert::Infallible>(event), (None, rx)))
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
        None => json_response(
            json!({"jsonrpc": "2.0", "id": Value::Null, "error": {"code": -32603, "message": "the call ended without an answer"}}).to_string(),
        ),
    }
}

/// A receiver that yields nothing more.
fn close(mut rx: mpsc::UnboundedReceiver<Message>) -> mpsc::UnboundedReceiver<Message> {
    rx.close();
    while rx.try_recv().is_ok() {}
    rx
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
