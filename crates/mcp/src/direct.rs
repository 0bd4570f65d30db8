//! Answering `tools/call` in one piece.
//!
//! Inside a Streamable HTTP session, most tool calls talk to nobody but the
//! engine: no progress, no log message, no question to the client, no
//! waiting for a cancellation. For those, the HTTP guard hands the parsed
//! request here, and the answer goes back as a single `application/json`
//! response (which the transport allows whenever the client accepts JSON)
//! instead of through the SDK's per-session worker and an SSE stream. The
//! call walks the same pipeline (`Run::handle`) and its result takes the
//! same wire shape as on the SDK's path: it is parsed into the SDK's result
//! type and given the same version adjustments before it is serialized.
//!
//! A tool forwarded to an upstream (`live` or `record`) talks to the client
//! only if the upstream does. In a session whose client cannot be asked
//! anything (it declared no sampling, elicitation or roots), such a call
//! takes this path too, and the response's type is chosen by what comes
//! first: the answer makes it one JSON body; a notification (progress, a
//! log message) makes it an event stream carrying that notification, those
//! after it, and then the answer. A `notifications/cancelled` for the call
//! reaches it through [`Shared::cancel_direct`].
//!
//! Everything else — any other method, a tool with steps or a hang fault,
//! a session whose handler has not yet been seen, a client that can be
//! asked — goes to the SDK.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolResult, ServerResult};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use sandbar_engine::{Call, Client, ClientError, DetachedClient, Method, Outcome};

use crate::server::Shared;

/// What a forwarded call sends towards the client, in order.
enum Message {
    /// A notification, as a whole JSON-RPC message.
    Notify(Value),
    /// The response, as a whole serialized JSON-RPC message; always last.
    Done(String),
}

/// The way back to a client that cannot be asked anything: notifications
/// go to the call's response.
struct StreamClient {
    tx: mpsc::UnboundedSender<Message>,
}

#[async_trait]
impl Client for StreamClient {
    async fn notify(&self, method: &str, params: Value) -> Result<(), ClientError> {
        self.tx
            .send(Message::Notify(
                json!({"jsonrpc": "2.0", "method": method, "params": params}),
            ))
            .map_err(|_| ClientError::Transport("the client's response is closed".to_owned()))
    }

    async fn request(&self, method: &str, _params: Value) -> Result<Value, ClientError> {
        Err(ClientError::Transport(format!(
            "the client declared no capability to answer {method}"
        )))
    }

    fn supports(&self, _capability: &str) -> bool {
        false
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
    let accepts_json = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json") || v.contains("*/*"));
    if !accepts_json {
        return None;
    }
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())?;
    let run = shared.session_run(session)?;
    let params = message.get("params")?.as_object()?;
    let name = params.get("name")?.as_str()?;
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => return None,
    };
    let quiet = shared.engine().answers_without_client(name);
    let forwarded =
        !quiet && shared.engine().forwards(name) && !shared.session_client_answers(session);
    if !quiet && !forwarded {
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
    if forwarded {
        return Some(forward(shared, session, run, call, id).await);
    }
    let outcome = run.handle(call, &DetachedClient).await;
    Some(json_response(response_body(&id, outcome)))
}

/// A forwarded call: JSON if the answer comes first, else an event stream.
async fn forward(
    shared: &Arc<Shared>,
    session: &str,
    run: Arc<sandbar_engine::Run>,
    mut call: Call,
    id: Value,
) -> Response {
    let request_id = call.request_id.clone().unwrap_or_default();
    call.cancel = shared.track_direct(session, &request_id);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The call runs to its end whatever happens to the HTTP response: its
    // events are recorded and its upstream request completes or is
    // cancelled, never dropped half-way.
    tokio::spawn(async move {
        let client = StreamClient { tx: tx.clone() };
        let outcome = run.handle(call, &client).await;
        let _ = tx.send(Message::Done(response_body(&id, outcome)));
    });
    let first = rx.recv().await;
    let untrack = {
        let shared = shared.clone();
        let session = session.to_owned();
        move || shared.untrack_direct(&session, &request_id)
    };
    match first {
        Some(Message::Done(body)) => {
            untrack();
            json_response(body)
        }
        Some(Message::Notify(first)) => {
            let events = futures::stream::unfold(
                (Some(first), rx, Some(untrack)),
                |(pending, mut rx, mut untrack)| async move {
                    let (message, done) = match pending {
                        Some(n) => (n.to_string(), false),
                        None => match rx.recv().await? {
                            Message::Notify(n) => (n.to_string(), false),
                            Message::Done(body) => {
                                if let Some(untrack) = untrack.take() {
                                    untrack();
                                }
                                (body, true)
                            }
                        },
                    };
                    let event = format!("event: message\ndata: {message}\n\n");
                    // After the answer the stream ends.
                    let rx = if done { close(rx) } else { rx };
                    Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (None, rx, untrack),
                    ))
                },
            );
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
        None => {
            untrack();
            json_response(
                json!({"jsonrpc": "2.0", "id": Value::Null, "error": {"code": -32603, "message": "the call ended without an answer"}}).to_string(),
            )
        }
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
