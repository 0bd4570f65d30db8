//! Streamable HTTP: `POST/GET/DELETE /mcp` through the SDK's service, with
//! Host and Origin checks against DNS rebinding and a request body limit,
//! plus `GET /healthz` for readiness probes.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::{SandbarServer, Shared};

/// How the HTTP front listens.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values accepted (host or host:port). Loopback names by default.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted from browsers (scheme://host[:port|:*]).
    /// Loopback origins by default; requests without `Origin` always pass.
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Serve every request statelessly (no `Mcp-Session-Id`), with JSON
    /// responses where the call sends no notifications.
    pub stateless: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            allowed_hosts: vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
                "[::1]".into(),
            ],
            allowed_origins: vec![
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "http://[::1]:*".into(),
                "https://localhost:*".into(),
                "https://127.0.0.1:*".into(),
            ],
            max_body_bytes: 4 * 1024 * 1024,
            stateless: false,
        }
    }
}

/// Serves until `shutdown` is cancelled, then ends every open run.
pub async fn serve_http(
    listener: TcpListener,
    shared: Arc<Shared>,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts.clone())
        .with_allowed_origins(options.allowed_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_legacy_session_mode(!options.stateless)
        .with_json_response(options.stateless)
        .with_cancellation_token(shutdown.child_token());
    let factory_shared = shared.clone();
    let service = StreamableHttpService::new(
        move || Ok(SandbarServer::new(factory_shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .nest_service("/mcp", service);
    let stop = shutdown.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    shared.finish_all().await;
    Ok(())
}
