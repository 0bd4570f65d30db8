//! Between MCP's JSON shape, which the engine speaks, and the SDK's types:
//! requests built from a method name and JSON parameters, results and
//! notifications serialized back to the JSON the upstream sent.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use rmcp::ErrorData;
// Logging and resource subscriptions are deprecated in the SDK's newest
// protocol version; Sandbar speaks 2025-11-25 to upstreams, where they are
// ordinary requests.
#[allow(deprecated)]
use rmcp::model::{
    CallToolRequest, ClientRequest, CompleteRequest, GetPromptRequest, ListPromptsRequest,
    ListResourceTemplatesRequest, ListResourcesRequest, ListToolsRequest, PingRequest,
    ReadResourceRequest, ServerNotification, ServerResult, SetLevelRequest, SubscribeRequest,
    UnsubscribeRequest,
};
use sandbar_engine::ProtocolError;

/// Builds the SDK request for `method` with `params` (MCP's JSON shape).
///
/// Only the methods a client sends to a server in the course of a session
/// are accepted; anything else (an unknown method, `initialize`, a
/// notification) is refused here, without reaching the upstream, as
/// method-not-found. Parameters that do not fit the method are refused as
/// invalid params, with serde's account of what is wrong.
#[allow(deprecated)] // See the note on the imports.
pub(crate) fn client_request(method: &str, params: Value) -> Result<ClientRequest, ProtocolError> {
    let message = json!({"method": method, "params": params});
    match method {
        "ping" => parse::<PingRequest>(method, message),
        "tools/list" => parse::<ListToolsRequest>(method, message),
        "tools/call" => parse::<CallToolRequest>(method, message),
        "resources/list" => parse::<ListResourcesRequest>(method, message),
        "resources/templates/list" => parse::<ListResourceTemplatesRequest>(method, message),
        "resources/read" => parse::<ReadResourceRequest>(method, message),
        "resources/subscribe" => parse::<SubscribeRequest>(method, message),
        "resources/unsubscribe" => parse::<UnsubscribeRequest>(method, message),
        "prompts/list" => parse::<ListPromptsRequest>(method, message),
        "prompts/get" => parse::<GetPromptRequest>(method, message),
        "completion/complete" => parse::<CompleteRequest>(method, message),
        "logging/setLevel" => parse::<SetLevelRequest>(method, message),
        _ => Err(ProtocolError::new(
            ProtocolError::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    }
}

// Each request type is parsed on its own rather than through the
// `ClientRequest` union: the union is untagged and ends in a catch-all
// custom request, so bad parameters would silently become a custom request
// instead of an error.
fn parse<T>(method: &str, message: Value) -> Result<ClientRequest, ProtocolError>
where
    T: DeserializeOwned + Into<ClientRequest>,
{
    serde_json::from_value::<T>(message)
        .map(Into::into)
        .map_err(|e| ProtocolError::invalid_params(format!("invalid params for {method}: {e}")))
}

/// The result object as the upstream sent it. The SDK's result union is
/// untagged, so serializing it writes the inner result (`{"content": [...]}`
/// for `tools/call`); optional fields the upstream left out stay out.
pub(crate) fn result_json(result: &ServerResult) -> Result<Value, serde_json::Error> {
    serde_json::to_value(result)
}

/// The upstream's JSON-RPC error, as the engine's protocol error.
pub(crate) fn protocol_error(error: ErrorData) -> ProtocolError {
    ProtocolError {
        code: error.code.0,
        message: error.message.into_owned(),
        data: error.data,
    }
}

/// A notification's parameters in MCP's JSON shape, `_meta` included;
/// `{}` for notifications without parameters (the list-changed ones).
pub(crate) fn notification_params(notification: &ServerNotification) -> Value {
    let mut value = serde_json::to_value(notification).unwrap_or(Value::Null);
    match value.get_mut("params").map(Value::take) {
        Some(params @ Value::Object(_)) => params,
        _ => json!({}),
    }
}

/// Progress parameters relabelled with the agent's token. The SDK holds
/// `progress` and `total` as floats, which would turn the `3` a server sent
/// into `3.0`; whole numbers are written back as integers.
pub(crate) fn progress_params(notification: &ServerNotification, agent_token: &Value) -> Value {
    let mut params = notification_params(notification);
    if let Value::Object(map) = &mut params {
        map.insert("progressToken".to_owned(), agent_token.clone());
        for field in ["progress", "total"] {
            if let Some(number) = map.get_mut(field) {
                write_whole_as_integer(number);
            }
        }
    }
    params
}

fn write_whole_as_integer(number: &mut Value) {
    // 2^53: beyond it an f64 no longer holds every integer exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if let Some(float) = number.as_f64().filter(|_| number.is_f64())
        && float.fract() == 0.0
        && float.abs() <= EXACT
    {
        *number = Value::from(float as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_json(method: &str, params: Value) -> Value {
        match client_request(method, params) {
            Ok(request) => serde_json::to_value(&request).unwrap_or(Value::Null),
            Err(e) => json!({"error": e.code, "message": e.message}),
        }
    }

    #[test]
    fn requests_keep_their_json_shape() {
        let cases = [
            (
                "tools/call",
                json!({"name": "echo", "arguments": {"message": "hi"}}),
                json!({"method": "tools/call", "params": {"name": "echo", "arguments": {"message": "hi"}}}),
            ),
            (
                "resources/read",
                json!({"uri": "demo://x"}),
                json!({"method": "resources/read", "params": {"uri": "demo://x"}}),
            ),
            (
                "prompts/get",
                json!({"name": "p", "arguments": {"a": "1"}}),
                json!({"method": "prompts/get", "params": {"name": "p", "arguments": {"a": "1"}}}),
            ),
            ("ping", json!({}), json!({"method": "ping"})),
            ("ping", Value::Null, json!({"method": "ping"})),
        ];
        for (method, params, expect) in cases {
            assert_eq!(request_json(method, params), expect, "{method}");
        }
        let list = request_json("tools/list", json!({}));
        assert_eq!(list["method"], "tools/list");
        let page = request_json("tools/list", json!({"cursor": "c2"}));
        assert_eq!(page["params"]["cursor"], "c2");
    }

    #[test]
    fn unknown_methods_and_bad_params_are_refused_before_sending() {
        for method in [
            "tools/frobnicate",
            "initialize",
            "notifications/cancelled",
            "",
        ] {
            let refused = request_json(method, json!({}));
            assert_eq!(
                refused["error"],
                ProtocolError::METHOD_NOT_FOUND,
                "{method}"
            );
        }
        let refused = request_json("tools/call", json!({"arguments": {}}));
        assert_eq!(refused["error"], ProtocolError::INVALID_PARAMS);
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(message.contains("tools/call"), "{message}");
        let refused = request_json("resources/read", json!({"uri": 7}));
        assert_eq!(refused["error"], ProtocolError::INVALID_PARAMS);
    }

    #[test]
    fn results_serialize_as_the_upstream_sent_them() {
        let cases = [
            json!({"content": [{"type": "text", "text": "Echo: hi"}]}),
            json!({"content": [{"type": "text", "text": "no"}], "isError": true}),
            json!({"content": [], "structuredContent": {"sum": 3}}),
            json!({"contents": [{"uri": "demo://a", "mimeType": "text/plain", "text": "A"}]}),
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]}),
            json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}], "nextCursor": "2"}),
            json!({}),
        ];
        for wire in cases {
            let parsed: ServerResult = match serde_json::from_value(wire.clone()) {
                Ok(parsed) => parsed,
                Err(e) => panic!("{wire}: {e}"),
            };
            assert_eq!(result_json(&parsed).ok(), Some(wire));
        }
    }

    #[test]
    fn progress_is_relabelled_and_whole_numbers_stay_integers() {
        let wire = json!({
            "method": "notifications/progress",
            "params": {"progressToken": 7, "progress": 2, "total": 5, "message": "half"}
        });
        let notification: ServerNotification = match serde_json::from_value(wire) {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        };
        let params = progress_params(&notification, &json!("agent-token"));
        assert_eq!(
            params,
            json!({"progressToken": "agent-token", "progress": 2, "total": 5, "message": "half"})
        );
        let fractional: ServerNotification = match serde_json::from_value(json!({
            "method": "notifications/progress",
            "params": {"progressToken": 7, "progress": 0.5}
        })) {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            progress_params(&fractional, &json!(1)),
            json!({"progressToken": 1, "progress": 0.5})
        );
    }

    #[test]
    fn notifications_without_params_give_an_empty_object() {
        let notification: ServerNotification =
            match serde_json::from_value(json!({"method": "notifications/tools/list_changed"})) {
                Ok(n) => n,
                Err(e) => panic!("{e}"),
            };
        assert_eq!(notification_params(&notification), json!({}));
        let log: ServerNotification = match serde_json::from_value(json!({
            "method": "notifications/message",
            "params": {"level": "info", "logger": "x", "data": "hello", "_meta": {"k": 1}}
        })) {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            notification_params(&log),
            json!({"level": "info", "logger": "x", "data": "hello", "_meta": {"k": 1}})
        );
    }
}
