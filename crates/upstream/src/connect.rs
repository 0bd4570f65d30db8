//! Opening a connection: spawning the process or reaching the endpoint,
//! the MCP handshake within the connect timeout, and failures worded for
//! the agent.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::service::ClientInitializeError;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::streamable_http_client::{
    HttpStatusError, StreamableHttpClientTransportConfig, StreamableHttpError,
};
use sandbar_engine::{UpstreamError, UpstreamErrorKind, UpstreamSession};

use crate::UpstreamConfig;
use crate::http::{HttpLink, NotingClient, SessionId};
use crate::process::{self, ChildProcess, CommandLine, Spawned, io_message};
use crate::routing::{Routed, Router, UpstreamHandler};
use crate::session::{Link, McpSession};

/// How long a failed handshake waits for the process's exit status.
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(1);

/// Headers the Streamable HTTP transport sets itself.
const RESERVED_HEADERS: &[&str] = &["accept", "mcp-session-id", "last-event-id"];

pub(crate) async fn connect_stdio(
    config: &UpstreamConfig,
    line: &CommandLine<'_>,
) -> Result<Arc<dyn UpstreamSession>, UpstreamError> {
    let name = config.name.as_str();
    let fail = |message: String| UpstreamError::new(name, UpstreamErrorKind::Connect, message);
    let Spawned {
        process,
        stdout,
        stdin,
    } = process::spawn(name, line)?;
    tracing::debug!(target: "sandbar::upstream", upstream = name, pid = ?process.pid(),
        command = line.command, "started");
    let router = Router::new(name);
    let transport = Routed::new(
        AsyncRwTransport::new_client(stdout, stdin),
        Arc::clone(&router),
    );
    let handshake = UpstreamHandler::new(Arc::clone(&router)).serve(transport);
    match tokio::time::timeout(config.connect_timeout, handshake).await {
        Ok(Ok(service)) => {
            // From here on stdout carries answers the session waits for:
            // output that is not MCP breaks the session off at once, rather
            // than leave a request waiting out its timeout for an answer
            // that went astray.
            process.expect_only_mcp();
            let garbage = process.garbage();
            let broken = Arc::clone(&router);
            tokio::spawn(async move {
                if let Some(line) = garbage.await {
                    broken.break_off(format!(
                        "the process wrote something that is not MCP to stdout: `{line}`; \
                         it is restarted for the next call"
                    ));
                }
            });
            Ok(Arc::new(McpSession::new(
                name,
                service,
                router,
                Link::Process(process),
                config.timeout,
            )))
        }
        Ok(Err(error)) => match process.exit(EXIT_STATUS_WAIT).await {
            Some(how) => Err(fail(explain(
                format!("the process {how} before answering initialize"),
                &process,
            ))),
            None => {
                let message = explain(handshake_failure(&error, None), &process);
                process.stop().await;
                Err(fail(message))
            }
        },
        Err(_elapsed) => {
            // Dropping the handshake closed the process's stdin.
            let message = explain(
                format!(
                    "no answer to initialize within {}",
                    human(config.connect_timeout)
                ),
                &process,
            );
            process.stop().await;
            Err(fail(message))
        }
    }
}

/// The HTTP client of one upstream session. The SDK's default turns
/// connection pooling off (it avoids delayed-ACK stalls when a response body
/// was left unread), which makes every forwarded call a new TCP connection;
/// with `TCP_NODELAY` on, reusing connections is both safe from those stalls
/// and far cheaper. Redirects are not followed: a redirected POST would lose
/// its body or carry the upstream's headers to another host.
fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(std::time::Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

pub(crate) async fn connect_http(
    config: &UpstreamConfig,
    url: &str,
    headers: &BTreeMap<String, String>,
) -> Result<Arc<dyn UpstreamSession>, UpstreamError> {
    let name = config.name.as_str();
    let fail = |message: String| UpstreamError::new(name, UpstreamErrorKind::Connect, message);
    let headers = header_map(headers).map_err(fail)?;
    reachable(url, config.connect_timeout).await.map_err(fail)?;
    let router = Router::new(name);
    let client = http_client().map_err(fail)?;
    let session_id = Arc::new(SessionId::default());
    let transport = Routed::new(
        StreamableHttpClientTransport::with_client(
            NotingClient::new(client.clone(), Arc::clone(&session_id)),
            StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers.clone()),
        ),
        Arc::clone(&router),
    );
    let handshake = UpstreamHandler::new(Arc::clone(&router)).serve(transport);
    match tokio::time::timeout(config.connect_timeout, handshake).await {
        Ok(Ok(service)) => {
            let version = service
                .peer()
                .peer_info()
                .map(|info| info.protocol_version.to_string())
                .unwrap_or_default();
            let link = HttpLink::new(url, client, &headers, &version, session_id);
            Ok(Arc::new(McpSession::new(
                name,
                service,
                router,
                Link::Http(Arc::new(link)),
                config.timeout,
            )))
        }
        Ok(Err(error)) => Err(fail(handshake_failure(&error, Some(url)))),
        Err(_elapsed) => Err(fail(format!(
            "no answer to initialize from {url} within {}",
            human(config.connect_timeout)
        ))),
    }
}

/// Whether the endpoint's host takes a TCP connection, tried before the
/// SDK's handshake. An endpoint that is down is the common failure, and the
/// SDK's transport worker logs its failure to send `initialize` as an error
/// of its own (the HTTP client's whole debug output, at the default log
/// level) besides returning it; found out here, the failure is only ever
/// reported in the agent's words. Skipped when a proxy is configured (the
/// HTTP client would go through it, not to the host) and for URLs this
/// cannot read, which the SDK then reports.
async fn reachable(url: &str, bound: Duration) -> Result<(), String> {
    const PROXY_VARIABLES: [&str; 6] = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    if PROXY_VARIABLES
        .iter()
        .any(|v| std::env::var_os(v).is_some())
    {
        return Ok(());
    }
    let Ok(uri) = url.parse::<http::Uri>() else {
        return Ok(());
    };
    let Some(host) = uri.host() else {
        return Ok(());
    };
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, _) => 80,
    };
    // `[::1]` in a URL is `::1` to the resolver.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match tokio::time::timeout(bound, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(format!("connection refused at {url}"))
        }
        Ok(Err(e)) => Err(format!("could not reach {url}: {}", io_message(&e))),
        Err(_) => Err(format!("connecting to {url} timed out")),
    }
}

/// The configured headers, sent with every HTTP request of the session.
fn header_map(
    headers: &BTreeMap<String, String>,
) -> Result<HashMap<HeaderName, HeaderValue>, String> {
    let mut map = HashMap::new();
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid HTTP header name"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(format!(
                "the `{name}` header is set by the MCP transport and cannot be configured"
            ));
        }
        // The value is left out of the message: headers carry credentials.
        let value = HeaderValue::from_str(value).map_err(|_| {
            format!("the value of header `{name}` is not a valid HTTP header value")
        })?;
        map.insert(header, value);
    }
    Ok(map)
}

/// Why the handshake failed, when the process (if any) is still running.
fn handshake_failure(error: &ClientInitializeError, url: Option<&str>) -> String {
    match error {
        ClientInitializeError::JsonRpcError(e) => {
            format!(
                "the server refused initialize: {} ({})",
                e.message, e.code.0
            )
        }
        ClientInitializeError::ConnectionClosed(_) => {
            "the connection closed before the server answered initialize".to_owned()
        }
        ClientInitializeError::TransportError { error, .. } => match url {
            Some(url) => describe_http_failure(url, error.error.as_ref()).message,
            None => format!(
                "could not send initialize: {}",
                innermost(error.error.as_ref())
            ),
        },
        other => format!("the handshake failed: {other}"),
    }
}

/// Appends what the process said: the telling stderr line, and stdout
/// output that is not MCP at all (a common misconfiguration: a server that
/// prints a banner to stdout).
pub(crate) fn explain(mut message: String, process: &ChildProcess) -> String {
    if let Some(line) = process.stderr_hint() {
        message.push_str(": ");
        message.push_str(&line);
    }
    if let Some(noise) = process.stdout_noise() {
        message.push_str(&format!(
            " (it wrote to stdout something that is not MCP: `{noise}`)"
        ));
    }
    message
}

/// An HTTP failure in the agent's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpFailure {
    pub message: String,
    /// The server was reached and answered with an HTTP error status.
    pub server_answered: bool,
}

/// Walks an HTTP client error down to what the agent needs to hear:
/// refused, unreachable, or the status the server answered.
pub(crate) fn describe_http_failure(url: &str, error: &(dyn Error + 'static)) -> HttpFailure {
    let unreachable = |message: String| HttpFailure {
        message,
        server_answered: false,
    };
    let mut current = Some(error);
    let mut detail = error.to_string();
    while let Some(e) = current {
        if let Some(status) = e.downcast_ref::<HttpStatusError>() {
            return HttpFailure {
                message: format!("{url} answered HTTP {}", status.status),
                server_answered: true,
            };
        }
        // The SDK's error does not name the HTTP client's error as its
        // source; step into it by hand.
        if let Some(StreamableHttpError::Client(inner)) =
            e.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            current = Some(inner);
            continue;
        }
        match e.downcast_ref::<io::Error>() {
            Some(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                return unreachable(format!("connection refused at {url}"));
            }
            Some(io) if io.kind() == io::ErrorKind::TimedOut => {
                return unreachable(format!("connecting to {url} timed out"));
            }
            Some(io) => {
                detail = io_message(io);
                // An I/O error wrapping another error hides it from
                // `source()`: look inside.
                if let Some(inner) = io.get_ref() {
                    current = Some(inner);
                    continue;
                }
            }
            None => detail = e.to_string(),
        }
        current = e.source();
    }
    // The innermost cause says the most (a DNS failure, a TLS problem).
    unreachable(format!("could not reach {url}: {detail}"))
}

fn innermost(error: &(dyn Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    match current.downcast_ref::<io::Error>() {
        Some(io) => io_message(io),
        None => current.to_string(),
    }
}

/// "2s", "250ms", "1.5s".
pub(crate) fn human(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (Duration::from_secs(2), "2s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(0), "0s"),
        ];
        for (duration, expect) in cases {
            assert_eq!(human(duration), expect);
        }
    }

    #[test]
    fn headers_are_checked_and_reserved_ones_refused() {
        let ok = BTreeMap::from([("Authorization".to_owned(), "Bearer x".to_owned())]);
        assert_eq!(header_map(&ok).map(|m| m.len()), Ok(1));
        for (name, value) in [("Mcp-Session-Id", "x"), ("bad name", "x"), ("X-Ok", "a\nb")] {
            let headers = BTreeMap::from([(name.to_owned(), value.to_owned())]);
            match header_map(&headers) {
                Ok(_) => panic!("{name} accepted"),
                Err(message) => assert!(!message.contains("a\nb"), "values stay out of messages"),
            }
        }
    }

    #[test]
    fn http_failures_name_the_cause() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let wrapped = io::Error::other(refused);
        assert_eq!(
            describe_http_failure("http://h/mcp", &wrapped),
            HttpFailure {
                message: "connection refused at http://h/mcp".to_owned(),
                server_answered: false
            }
        );
        let status = HttpStatusError::new(503, None);
        let failure = describe_http_failure("http://h/mcp", &status);
        assert_eq!(failure.message, "http://h/mcp answered HTTP 503");
        assert!(failure.server_answered);
    }
}
