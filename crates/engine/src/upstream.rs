//! The engine's side of a real MCP server behind the sandbox.
//!
//! The engine opens no socket and spawns no process: the wiring hands it an
//! [`Upstream`] per upstream the scenario declares (`sandbar-upstream`
//! implements them on the official SDK), and the engine decides, call by
//! call, whether to forward. That keeps "replay never opens a network
//! connection" a property of the routing code alone: in replay mode the
//! engine never calls [`Upstream::connect`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::call::Outcome;
use crate::client::Client;

/// What an upstream offers, as its list results return it (MCP JSON
/// objects, every page merged, names as the upstream spells them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub tools: Vec<Value>,
    #[serde(default)]
    pub resources: Vec<Value>,
    #[serde(default)]
    pub resource_templates: Vec<Value>,
    #[serde(default)]
    pub prompts: Vec<Value>,
}

/// Why an upstream could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// The process could not be started or the server could not be reached.
    Connect,
    /// The connection closed (the process exited, the server went away).
    Closed,
    /// No answer within the upstream's timeout.
    Timeout,
    /// The agent cancelled the call while it was upstream.
    Cancelled,
    /// The upstream sent something that is not MCP.
    Protocol,
}

impl fmt::Display for UpstreamErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpstreamErrorKind::Connect => "unreachable",
            UpstreamErrorKind::Closed => "closed",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Cancelled => "cancelled",
            UpstreamErrorKind::Protocol => "protocol",
        })
    }
}

/// An upstream failure, worded for the agent (it never contains a
/// credential: messages pass the redactor before any sink anyway).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream {upstream}: {message}")]
pub struct UpstreamError {
    /// The upstream's name in the scenario.
    pub upstream: String,
    pub kind: UpstreamErrorKind,
    pub message: String,
}

impl UpstreamError {
    pub fn new(upstream: &str, kind: UpstreamErrorKind, message: impl Into<String>) -> Self {
        UpstreamError {
            upstream: upstream.to_owned(),
            kind,
            message: message.into(),
        }
    }
}

/// A real MCP server the scenario declares: knows how to reach it.
#[async_trait]
pub trait Upstream: Send + Sync + fmt::Debug {
    /// The upstream's name in the scenario.
    fn name(&self) -> &str;

    /// Opens a connection (spawns the process, or opens the HTTP session)
    /// and completes the MCP handshake.
    async fn connect(&self) -> Result<Arc<dyn UpstreamSession>, UpstreamError>;

    /// Told that the upstream could not be listed (`error` says why), so
    /// what it offers is left out of the offer until a later listing
    /// succeeds; the engine tries again each time a run starts. Told once
    /// per outage, not at every failed attempt. The engine writes no log of
    /// its own: an implementation tells the operator where it tells them
    /// anything (`sandbar-upstream` warns on stderr).
    fn unavailable(&self, _error: &UpstreamError) {}

    /// Told that the upstream was listed again after being
    /// [`Upstream::unavailable`]: what it offers is offered again.
    fn available_again(&self) {}
}

/// One open connection to an upstream. A run holds one per upstream it
/// has forwarded to, so notifications the upstream sends belong to it.
#[async_trait]
pub trait UpstreamSession: Send + Sync + fmt::Debug {
    /// Everything the upstream lists (following `nextCursor` pages).
    async fn catalog(&self) -> Result<Catalog, UpstreamError>;

    /// Forwards one request and returns the upstream's answer as it came:
    /// its result, or its JSON-RPC error as `Outcome::Error`. `Err` means
    /// no answer arrived (see [`UpstreamErrorKind`]).
    async fn request(&self, request: UpstreamRequest<'_>) -> Result<Outcome, UpstreamError>;

    /// Whether the connection is gone; the next call then opens a new one.
    fn is_closed(&self) -> bool;

    /// Closes the connection (ends the process it started).
    async fn close(&self);
}

/// One request on its way to an upstream.
pub struct UpstreamRequest<'a> {
    /// The MCP method (`tools/call`, `resources/read`, `prompts/get`,
    /// `completion/complete`, `resources/subscribe`, ...).
    pub method: &'a str,
    /// Its parameters in MCP's JSON shape, names as the upstream knows
    /// them, without `_meta`.
    pub params: Value,
    /// The agent's progress token: progress the upstream reports for this
    /// request is passed to `client` under this token.
    pub progress_token: Option<Value>,
    /// Where the upstream's notifications (progress, log messages) and
    /// requests (sampling, elicitation) during this request go.
    pub client: &'a dyn Client,
    /// When cancelled, the upstream is told (`notifications/cancelled`)
    /// and the request ends with [`UpstreamErrorKind::Cancelled`].
    pub cancel: CancellationToken,
    /// How long to wait for the answer.
    pub timeout: Duration,
}

impl fmt::Debug for UpstreamRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("params", &self.params)
            .field("progress_token", &self.progress_token)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
