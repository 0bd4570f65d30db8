//! `Call` and `Outcome`: what every front hands the pipeline and gets back.
//!
//! A call is protocol-neutral in shape (a method and its parameters); the
//! outcome is the result object in MCP's JSON shape, because MCP's model of
//! tools, resources and prompts is Sandbar's native model. Keeping the
//! outcome as JSON means the exact bytes an agent received are what gets
//! recorded, and what a replay sends back.

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use sandbar_scenario::LogLevel;

/// One request from an agent, whatever door it came through.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// The protocol's request id, for correlating events.
    pub request_id: Option<String>,
    /// The client's progress token, when it asked for progress.
    pub progress_token: Option<Value>,
    /// Cancelled when the client cancels the request or goes away.
    pub cancel: CancellationToken,
}

impl Call {
    /// A call with no request id, progress token or cancellation.
    pub fn new(method: Method) -> Call {
        Call {
            method,
            request_id: None,
            progress_token: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// What is being asked.
#[derive(Debug, Clone)]
pub enum Method {
    Ping,
    ListTools,
    ListResources,
    ListResourceTemplates,
    ListPrompts,
    CallTool {
        name: String,
        arguments: Option<Map<String, Value>>,
    },
    ReadResource {
        uri: String,
    },
    GetPrompt {
        name: String,
        arguments: Map<String, Value>,
    },
    Complete {
        reference: CompletionRef,
        argument: String,
        value: String,
    },
    SetLogLevel(LogLevel),
    Subscribe {
        uri: String,
    },
    Unsubscribe {
        uri: String,
    },
}

/// What a completion request completes.
#[derive(Debug, Clone)]
pub enum CompletionRef {
    Prompt(String),
    ResourceTemplate(String),
}

impl Method {
    /// The MCP method name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Ping => "ping",
            Method::ListTools => "tools/list",
            Method::ListResources => "resources/list",
            Method::ListResourceTemplates => "resources/templates/list",
            Method::ListPrompts => "prompts/list",
            Method::CallTool { .. } => "tools/call",
            Method::ReadResource { .. } => "resources/read",
            Method::GetPrompt { .. } => "prompts/get",
            Method::Complete { .. } => "completion/complete",
            Method::SetLogLevel(_) => "logging/setLevel",
            Method::Subscribe { .. } => "resources/subscribe",
            Method::Unsubscribe { .. } => "resources/unsubscribe",
        }
    }

    /// The parameters in MCP's JSON shape, as recorded.
    pub fn params(&self) -> Value {
        match self {
            Method::Ping
            | Method::ListTools
            | Method::ListResources
            | Method::ListResourceTemplates
            | Method::ListPrompts => json!({}),
            Method::CallTool { name, arguments } => {
                // Built by hand: `json!` would copy the arguments through
                // the serializer, slower than a clone, on every call.
                let mut params = Map::new();
                params.insert("name".to_owned(), Value::String(name.clone()));
                if let Some(args) = arguments {
                    params.insert("arguments".to_owned(), Value::Object(args.clone()));
                }
                Value::Object(params)
            }
            Method::ReadResource { uri }
            | Method::Subscribe { uri }
            | Method::Unsubscribe { uri } => {
                json!({"uri": uri})
            }
            Method::GetPrompt { name, arguments } => json!({"name": name, "arguments": arguments}),
            Method::Complete {
                reference,
                argument,
                value,
            } => {
                let reference = match reference {
                    CompletionRef::Prompt(name) => json!({"type": "ref/prompt", "name": name}),
                    CompletionRef::ResourceTemplate(uri) => {
                        json!({"type": "ref/resource", "uri": uri})
                    }
                };
                json!({"ref": reference, "argument": {"name": argument, "value": value}})
            }
            Method::SetLogLevel(level) => json!({"level": level.as_str()}),
        }
    }
}

/// The answer to a call: an MCP result object, or a JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Result(Value),
    Error(ProtocolError),
}

impl Outcome {
    /// The empty result `{}`.
    pub fn empty() -> Outcome {
        Outcome::Result(json!({}))
    }

    /// A tool result that reports an error to the agent (`isError: true`).
    pub fn tool_error(message: impl Into<String>) -> Outcome {
        Outcome::Result(
            json!({"content": [{"type": "text", "text": message.into()}], "isError": true}),
        )
    }

    /// The outcome as recorded: `{"result": ...}` or `{"error": ...}`.
    pub fn to_record(&self) -> Value {
        match self {
            // By hand rather than with `json!`, which would copy the result
            // through the serializer.
            Outcome::Result(v) => Value::Object(Map::from_iter([("result".to_owned(), v.clone())])),
            Outcome::Error(e) => Value::Object(Map::from_iter([("error".to_owned(), e.to_json())])),
        }
    }
}

/// A JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolError {
    pub code: i32,
    pub message: String,
    pub data: Option<Value>,
}

impl ProtocolError {
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    /// MCP's "resource not found".
    pub const RESOURCE_NOT_FOUND: i32 = -32002;

    pub fn new(code: i32, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> ProtocolError {
        ProtocolError::new(Self::INVALID_PARAMS, message)
    }

    /// A request the caller's token or the scenario's policy does not
    /// allow (a server error code, -32001).
    pub fn forbidden(message: impl Into<String>) -> ProtocolError {
        ProtocolError::new(-32001, message)
    }

    pub fn internal(message: impl Into<String>) -> ProtocolError {
        ProtocolError::new(Self::INTERNAL_ERROR, message)
    }

    /// The error object in JSON-RPC shape.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), Value::from(self.code));
        m.insert("message".into(), Value::from(self.message.clone()));
        if let Some(d) = &self.data {
            m.insert("data".into(), d.clone());
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_records_its_name_then_its_arguments() {
        let mut arguments = Map::new();
        arguments.insert("message".to_owned(), json!("hi"));
        let call = Method::CallTool {
            name: "echo".to_owned(),
            arguments: Some(arguments),
        };
        let params = call.params();
        assert_eq!(
            params,
            json!({"name": "echo", "arguments": {"message": "hi"}})
        );
        assert_eq!(
            serde_json::to_string(&params).expect("JSON"),
            r#"{"name":"echo","arguments":{"message":"hi"}}"#
        );
        let bare = Method::CallTool {
            name: "echo".to_owned(),
            arguments: None,
        };
        assert_eq!(bare.params(), json!({"name": "echo"}));
    }

    #[test]
    fn an_outcome_is_recorded_under_result_or_error() {
        let result = Outcome::Result(json!({"content": [{"type": "text", "text": "x"}]}));
        assert_eq!(
            result.to_record(),
            json!({"result": {"content": [{"type": "text", "text": "x"}]}})
        );
        let error = Outcome::Error(ProtocolError::new(ProtocolError::INVALID_PARAMS, "bad"));
        assert_eq!(
            error.to_record(),
            json!({"error": {"code": -32602, "message": "bad"}})
        );
    }
}
