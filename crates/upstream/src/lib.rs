//! Connections to real MCP servers behind the sandbox ("upstreams"), on the
//! official Rust SDK.
//!
//! [`McpUpstream`] implements the engine's [`Upstream`]: `connect()` starts
//! a child process speaking MCP over stdin and stdout, or opens a
//! Streamable HTTP session, completes the `initialize` handshake, and
//! returns a session that lists the upstream's catalog and forwards
//! requests. What the upstream sends back during a request — progress, log
//! messages, resource and list changes, sampling and elicitation questions —
//! goes to that request's client. `README.md` next to this crate describes
//! the protocol details this relies on.
//!
//! Architecture invariant: this crate is the only place Sandbar spawns an
//! upstream process or opens a connection to an upstream; the engine
//! decides when.

#![forbid(unsafe_code)]

mod connect;
mod http;
mod process;
mod routing;
mod session;
mod shape;
mod wire;

pub use shape::{parse_result, result_problem};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sandbar_engine::{Upstream, UpstreamError, UpstreamSession};

/// How to reach one upstream (the CLI converts the scenario's declaration
/// into this).
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The upstream's name in the scenario; every error message starts
    /// with it.
    pub name: String,
    pub transport: Transport,
    /// How long a request waits for its answer unless the engine says
    /// otherwise; also bounds each page of the catalog.
    pub timeout: Duration,
    /// How long starting the process or reaching the endpoint, plus the
    /// `initialize` handshake, may take.
    pub connect_timeout: Duration,
}

/// How an upstream is reached.
#[derive(Debug, Clone)]
pub enum Transport {
    /// A child process speaking MCP over stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        /// Added to (not replacing) Sandbar's own environment.
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        url: String,
        /// Sent with every HTTP request of the session (credentials, for
        /// instance).
        headers: BTreeMap<String, String>,
    },
}

/// A real MCP server Sandbar can forward to.
#[derive(Debug)]
pub struct McpUpstream {
    config: UpstreamConfig,
}

impl McpUpstream {
    pub fn new(config: UpstreamConfig) -> Arc<McpUpstream> {
        Arc::new(McpUpstream { config })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }
}

#[async_trait]
impl Upstream for McpUpstream {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn connect(&self) -> Result<Arc<dyn UpstreamSession>, UpstreamError> {
        match &self.config.transport {
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let line = process::CommandLine {
                    command,
                    args,
                    env,
                    cwd: cwd.as_ref(),
                };
                connect::connect_stdio(&self.config, &line).await
            }
            Transport::Http { url, headers } => {
                connect::connect_http(&self.config, url, headers).await
            }
        }
    }

    /// Said once per outage, at the default log level: the operator
    /// started a sandbox that offers less than its scenario says.
    fn unavailable(&self, error: &UpstreamError) {
        let name = &self.config.name;
        let address = match &self.config.transport {
            Transport::Stdio { command, .. } => format!("`{command}`"),
            Transport::Http { url, .. } => url.clone(),
        };
        // An HTTP failure already names the address.
        let named = if error.message.contains(&address) {
            String::new()
        } else {
            format!(" ({address})")
        };
        tracing::warn!(target: "sandbar::upstream",
            "upstream {name}{named} is unavailable: {}; its tools, prompts and resources \
             are not offered until it answers (it is tried again each time a session starts)",
            error.message);
    }

    fn available_again(&self) {
        tracing::info!(target: "sandbar::upstream",
            "upstream {} answers again; its tools, prompts and resources are offered",
            self.config.name);
    }
}
