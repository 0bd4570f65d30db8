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
//! Everything else — any other method, a tool with steps or a hang fault,
//! a session whose handler has not yet been seen — goes to the SDK.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolResult, ServerResult};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use sandbar_engine::{Call, DetachedClient, Method, Outcome};

use crate::server::Shared;

/// The answer to `message`, if it can be given directly.
pub(crate) async fn answer(
    shared: &Shared,
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
    if !shared.engine().answers_without_client(name) {
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
    let outcome = run.handle(call, &DetachedClient).await;
    let body = match outcome {
        Outcome::Result(value) => match serde_json::from_value::<CallToolResult>(value) {
            Ok(result) => {
                // Sessions always speak a version before 2026-07-28; give the
                // result the shape the SDK gives it for those peers.
                let mut result = ServerResult::CallToolResult(result);
                result.strip_result_type_for_legacy_peer();
                result.strip_non_object_output_for_legacy_peer();
                json!({"jsonrpc": "2.0", "id": id, "result": result})
            }
            Err(e) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": format!("sandbar produced a malformed result: {e}")}})
            }
        },
        Outcome::Error(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_json()}),
    };
    Some(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
    )
}
