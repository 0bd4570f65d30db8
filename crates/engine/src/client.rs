//! The way back to the agent's client during a call: notifications it
//! should see (progress, log messages, resource updates) and questions it
//! must answer (sampling, elicitation). A front implements this for its
//! protocol; messages are MCP-shaped JSON so the engine stays independent
//! of any SDK, and so what is recorded is what was sent.

use async_trait::async_trait;
use serde_json::Value;

/// Why a message to the client failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The client did not declare the capability this needs.
    #[error("the client does not support {0}")]
    Unsupported(&'static str),
    /// The client answered with an error.
    #[error("the client answered with error {code}: {message}")]
    Rejected { code: i32, message: String },
    /// The connection is gone, or the message could not be delivered.
    #[error("could not reach the client: {0}")]
    Transport(String),
}

impl ClientError {
    /// The error as a JSON-RPC error: its code and message. A client's own
    /// error keeps its code and message; the others are worded here.
    pub fn code_and_message(&self) -> (i32, String) {
        use crate::call::ProtocolError;
        match self {
            ClientError::Unsupported(_) => (ProtocolError::METHOD_NOT_FOUND, self.to_string()),
            ClientError::Rejected { code, message } => (*code, message.clone()),
            ClientError::Transport(_) => (ProtocolError::INTERNAL_ERROR, self.to_string()),
        }
    }
}

/// The capability a client declares to be asked `method`, for the requests
/// a server may put to a client.
pub fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// A channel to the client of one request.
#[async_trait]
pub trait Client: Send + Sync {
    /// Sends a notification (`method` and `params` as in MCP).
    async fn notify(&self, method: &str, params: Value) -> Result<(), ClientError>;
    /// Sends a request and waits for the client's result.
    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError>;
    /// Whether the client declared this capability (`sampling`, `elicitation`).
    fn supports(&self, capability: &str) -> bool;
}

/// A client that accepts nothing: for calls made outside a live session,
/// such as the ones `sandbar` issues itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct DetachedClient;

#[async_trait]
impl Client for DetachedClient {
    async fn notify(&self, _method: &str, _params: Value) -> Result<(), ClientError> {
        Ok(())
    }
    async fn request(&self, method: &str, _params: Value) -> Result<Value, ClientError> {
        Err(ClientError::Transport(format!(
            "no client is attached to answer {method}"
        )))
    }
    fn supports(&self, _capability: &str) -> bool {
        false
    }
}
