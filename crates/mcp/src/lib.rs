//! Sandbar's MCP front: serves a scenario to MCP clients over stdio and
//! Streamable HTTP. It translates protocol messages into calls and outcomes
//! and nothing more; see `README.md` next to this crate for the protocol
//! details it relies on.
//!
//! Architecture invariant: no behaviour lives in the front. A feature added
//! to the engine works for every front without a change here.

#![forbid(unsafe_code)]

mod direct;
mod http;
mod server;

pub use http::{HttpOptions, serve_http};
pub use server::{Access, RUN_HEADER, SandbarServer, Shared};

use std::sync::Arc;

use rmcp::ServiceExt;

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the MCP session could not start: {0}")]
    Session(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves one client over this process's stdin and stdout until it
/// disconnects. Stdout carries protocol frames only.
pub async fn serve_stdio(shared: Arc<Shared>) -> Result<(), ServeError> {
    let service = SandbarServer::new(shared.clone())
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Session(e.to_string()))?;
    let _ = service.waiting().await;
    shared.finish_all().await;
    Ok(())
}
