//! `--client raw`: a minimal Streamable HTTP client, written for the load
//! generator alone, so that the client's share of the machine is small next
//! to the server's.
//!
//! rmcp's client is a full MCP peer (a worker task per session, typed
//! messages, a reqwest stack, a new TCP connection per request by default);
//! it costs 80–300 µs of CPU per call, as much as the servers measured. This
//! client does only what a `tools/call` load needs, over one kept-alive
//! HTTP/1.1 connection per session (hyper's connection-level client, with
//! `TCP_NODELAY`):
//!
//! 1. `initialize` (keeping the `Mcp-Session-Id` the server gives, if any),
//!    then the `notifications/initialized` notification;
//! 2. per call, one POST of a body serialized once up front, in which only
//!    the JSON-RPC id changes, with the `Mcp-Session-Id` and
//!    `MCP-Protocol-Version` headers;
//! 3. the answer read either as `application/json` or as a
//!    `text/event-stream`, where the event carrying the response with our id
//!    is used and any other event (notifications, priming events) skipped;
//! 4. on close, a `DELETE` of the session, as the specification asks.
//!
//! A call is an error if the HTTP status is not a success, the body holds no
//! response with our id, the response is a JSON-RPC error, or the tool's
//! result has `isError: true`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const SESSION_ID: &str = "mcp-session-id";
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";
const JSON: &str = "application/json";

/// How long an answer's body may take to end after the response in it was
/// read, before the connection is given up and a new one opened. A server
/// that keeps a request's event stream open after answering would otherwise
/// hold the session forever.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Where the server is, and what every call sends.
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port`, for the socket and the `Host` header.
    authority: String,
    host: HeaderValue,
    /// The path (and query) POSTed to.
    path: Uri,
    /// The body of a call up to its JSON-RPC id, and from just after it.
    call_head: Vec<u8>,
    call_tail: Vec<u8>,
    protocol_version: String,
    /// `Bearer TOKEN`, sent with every request, when the server wants one.
    authorization: Option<HeaderValue>,
}

impl Endpoint {
    /// Checks the URL (plain `http` only) and serializes the call once.
    pub fn new(
        url: &str,
        tool: &str,
        arguments: &Map<String, Value>,
        protocol_version: &str,
    ) -> anyhow::Result<Endpoint> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("--client raw speaks plain http only, not {url:?}");
        }
        let authority = uri
            .authority()
            .with_context(|| format!("{url:?} has no host"))?;
        let authority = if authority.port().is_some() {
            authority.to_string()
        } else {
            format!("{}:80", authority.host())
        };
        let host = HeaderValue::from_str(uri.authority().map_or("", |a| a.as_str()))
            .context("the URL's host is not a valid header value")?;
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .context("the URL's path")?;
        // `{"jsonrpc":"2.0","id":<ID>,"method":"tools/call","params":{...}}`,
        // split around the id; the id is the only thing that changes.
        let params = serde_json::to_string(&json!({ "name": tool, "arguments": arguments }))?;
        let call_head = br#"{"jsonrpc":"2.0","id":"#.to_vec();
        let call_tail = format!(r#","method":"tools/call","params":{params}}}"#).into_bytes();
        Ok(Endpoint {
            authority,
            host,
            path,
            call_head,
            call_tail,
            protocol_version: protocol_version.to_owned(),
            authorization: None,
        })
    }

    /// Sends `Authorization: Bearer TOKEN` with every request.
    pub fn with_bearer(mut self, token: &str) -> anyhow::Result<Endpoint> {
        self.authorization = Some(
            HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the bearer token is not a valid header value")?,
        );
        Ok(self)
    }

    fn call_body(&self, id: u64) -> Bytes {
        let id = id.to_string();
        let mut body = Vec::with_capacity(self.call_head.len() + id.len() + self.call_tail.len());
        body.extend_from_slice(&self.call_head);
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(&self.call_tail);
        Bytes::from(body)
    }
}

/// What the server said about itself in `initialize`.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `name version`.
    pub server: String,
    /// The protocol version it agreed to.
    pub protocol_version: String,
}

/// One initialized session over one kept-alive connection.
#[derive(Debug)]
pub struct Session {
    /// The connection; a session sends one request at a time.
    connection: Mutex<http1::SendRequest<Full<Bytes>>>,
    session_id: Option<HeaderValue>,
    protocol_version: HeaderValue,
    next_id: AtomicU64,
    pub info: ServerInfo,
}

/// Opens a TCP connection with `TCP_NODELAY` and starts HTTP/1.1 on it.
async fn open(endpoint: &Endpoint) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(&endpoint.authority)
        .await
        .with_context(|| format!("cannot connect to {}", endpoint.authority))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        // Ends when the session drops its sender or the server hangs up.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Connects and completes the `initialize` handshake.
pub async fn connect(endpoint: &Endpoint) -> anyhow::Result<Session> {
    let mut sender = open(endpoint).await?;
    let initialize = json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": endpoint.protocol_version,
            "capabilities": {},
            "clientInfo": {"name": "sandbar-bench-mcp-load", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let request = post(endpoint, None, None, Bytes::from(initialize.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .context("initialize: no answer")?;
    let session_id = response.headers().get(SESSION_ID).cloned();
    let (message, rest) = answer(response, 0)
        .await
        .map_err(|e| anyhow::anyhow!("initialize: {e}"))?;
    finish(rest, &mut sender, endpoint)
        .await
        .map_err(|e| anyhow::anyhow!("initialize: {e}"))?;
    let result = message
        .get("result")
        .with_context(|| format!("initialize failed: {message}"))?;
    let agreed = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or(&endpoint.protocol_version)
        .to_owned();
    let server = match result.get("serverInfo") {
        Some(info) => format!(
            "{} {}",
            info.get("name")
                .and_then(Value::as_str)
                .unwrap_or("(unnamed server)"),
            info.get("version").and_then(Value::as_str).unwrap_or("")
        ),
        None => "(unnamed server)".to_owned(),
    };
    let protocol_version =
        HeaderValue::from_str(&agreed).context("the agreed protocol version is not a header")?;

    let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let request = post(
        endpoint,
        session_id.as_ref(),
        Some(&protocol_version),
        Bytes::from_static(initialized),
    )?;
    sender.ready().await.context("the connection closed")?;
    let response = sender
        .send_request(request)
        .await
        .context("notifications/initialized: no answer")?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        anyhow::bail!(
            "notifications/initialized: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(Session {
        connection: Mutex::new(sender),
        session_id,
        protocol_version,
        next_id: AtomicU64::new(1),
        info: ServerInfo {
            server,
            protocol_version: agreed,
        },
    })
}

impl Session {
    /// Makes one call. On success, returns the first text block.
    pub async fn call(&self, endpoint: &Endpoint) -> Result<String, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = post(
            endpoint,
            self.session_id.as_ref(),
            Some(&self.protocol_version),
            endpoint.call_body(id),
        )
        .map_err(|e| e.to_string())?;
        let mut sender = self.connection.lock().await;
        if sender.ready().await.is_err() {
            // The server closed the kept-alive connection between calls
            // (an idle timeout): open another one; the session lives on.
            *sender = open(endpoint).await.map_err(|e| format!("{e:#}"))?;
        }
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let (message, rest) = answer(response, id).await?;
        finish(rest, &mut sender, endpoint).await?;
        drop(sender);
        check(&message)
    }

    /// Ends the session on the server (`DELETE`), if it has one.
    pub async fn close(self, endpoint: &Endpoint) {
        let Some(session_id) = self.session_id else {
            return;
        };
        let mut sender = self.connection.into_inner();
        if sender.ready().await.is_err() {
            let Ok(fresh) = open(endpoint).await else {
                return;
            };
            sender = fresh;
        }
        let mut builder = Request::builder()
            .method(Method::DELETE)
            .uri(endpoint.path.clone())
            .header(HOST, endpoint.host.clone())
            .header(SESSION_ID, session_id)
            .header(PROTOCOL_VERSION, self.protocol_version);
        if let Some(authorization) = &endpoint.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let Ok(request) = builder.body(Full::new(Bytes::new())) else {
            return;
        };
        if let Ok(response) = sender.send_request(request).await {
            let _ = response.into_body().collect().await;
        }
    }
}

fn post(
    endpoint: &Endpoint,
    session_id: Option<&HeaderValue>,
    protocol_version: Option<&HeaderValue>,
    body: Bytes,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(endpoint.path.clone())
        .header(HOST, endpoint.host.clone())
        .header(ACCEPT, HeaderValue::from_static(ACCEPT_BOTH))
        .header(CONTENT_TYPE, HeaderValue::from_static(JSON));
    if let Some(id) = session_id {
        request = request.header(SESSION_ID, id.clone());
    }
    if let Some(version) = protocol_version {
        request = request.header(PROTOCOL_VERSION, version.clone());
    }
    if let Some(authorization) = &endpoint.authorization {
        request = request.header(AUTHORIZATION, authorization.clone());
    }
    Ok(request.body(Full::new(body))?)
}

/// Reads the JSON-RPC response with id `id` from an answer, as JSON or as an
/// event stream. For a stream, also returns the body, whose rest is still to
/// be read.
async fn answer(
    response: Response<Incoming>,
    id: u64,
) -> Result<(Value, Option<Incoming>), String> {
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut body = response.into_body();
    if status != StatusCode::OK {
        let text = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&text)));
    }
    if content_type.starts_with("text/event-stream") {
        let mut events = SseParser::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading the event stream: {e}"))?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            for data in events.push(&chunk) {
                if let Some(message) = response_with_id(&data, id) {
                    return Ok((message, Some(body)));
                }
            }
        }
        if let Some(data) = events.finish()
            && let Some(message) = response_with_id(&data, id)
        {
            return Ok((message, None));
        }
        Err(format!(
            "the event stream ended without a response to id {id}"
        ))
    } else if content_type.starts_with(JSON) {
        let bytes = body
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        response_with_id(&bytes, id)
            .map(|message| (message, None))
            .ok_or_else(|| {
                format!(
                    "the JSON answer is not a response to id {id}: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
    } else {
        Err(format!(
            "HTTP 200 with an unexpected content type {content_type:?}"
        ))
    }
}

/// The message in `data` if it is a JSON-RPC response (a result or an
/// error) with this id. A batch (an array) is searched too.
fn response_with_id(data: &[u8], id: u64) -> Option<Value> {
    let value: Value = serde_json::from_slice(data).ok()?;
    let matches = |m: &Value| {
        m.get("id").and_then(Value::as_u64) == Some(id)
            && (m.get("result").is_some() || m.get("error").is_some())
    };
    match value {
        Value::Array(items) => items.into_iter().find(matches),
        message => matches(&message).then_some(message),
    }
}

/// A `tools/call` response: its first text block, or why it is an error.
fn check(message: &Value) -> Result<String, String> {
    if let Some(error) = message.get("error") {
        return Err(format!("JSON-RPC error: {error}"));
    }
    let result = message.get("result").ok_or("a response without a result")?;
    let text = result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Err(format!("the tool answered with an error: {text}"));
    }
    Ok(text)
}

/// Once the answer is in hand, reads what is left of an event stream's body,
/// so that the connection can carry the next request; a body that does not
/// end in time, or ends in an error, costs the connection (a new one is
/// opened in its place).
async fn finish(
    rest: Option<Incoming>,
    sender: &mut http1::SendRequest<Full<Bytes>>,
    endpoint: &Endpoint,
) -> Result<(), String> {
    let Some(rest) = rest else {
        return Ok(());
    };
    if !matches!(
        tokio::time::timeout(DRAIN_LIMIT, drain(rest)).await,
        Ok(Ok(()))
    ) {
        *sender = open(endpoint).await.map_err(|e| format!("{e:#}"))?;
    }
    Ok(())
}

async fn drain(mut body: Incoming) -> Result<(), hyper::Error> {
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(())
}

/// An incremental `text/event-stream` parser that yields the data of each
/// complete event (its `data:` lines joined with newlines); other fields
/// (`event:`, `id:`, `retry:`) and comments are ignored, as are events
/// without data.
#[derive(Debug, Default)]
struct SseParser {
    /// Bytes of an incomplete line.
    line: Vec<u8>,
    /// The data of the event being read.
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(at);
            rest = &tail[1..];
            if self.line.is_empty() {
                self.line_done(head, &mut done);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.line_done(&line, &mut done);
            }
        }
        self.line.extend_from_slice(rest);
        done
    }

    /// The data of an event left unterminated when the stream ended.
    fn finish(&mut self) -> Option<Vec<u8>> {
        let mut done = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut done);
        }
        self.line_done(b"", &mut done);
        done.pop()
    }

    fn line_done(&mut self, line: &[u8], done: &mut Vec<Vec<u8>>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                done.push(std::mem::take(&mut self.data));
                self.has_data = false;
            }
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // a comment
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_body_differs_only_in_its_id() {
        let mut arguments = Map::new();
        arguments.insert("message".into(), json!("hi \"there\""));
        let endpoint = Endpoint::new("http://127.0.0.1:9/mcp", "echo", &arguments, "2025-11-25")
            .expect("endpoint");
        for id in [1u64, 42, u64::MAX] {
            let body: Value = serde_json::from_slice(&endpoint.call_body(id)).expect("JSON");
            assert_eq!(
                body,
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"message": "hi \"there\""}}})
            );
        }
        assert_eq!(endpoint.authority, "127.0.0.1:9");
        assert_eq!(endpoint.path, "/mcp");
        assert!(Endpoint::new("https://example.com/mcp", "echo", &arguments, "x").is_err());
        let default_port =
            Endpoint::new("http://localhost/", "echo", &arguments, "x").expect("endpoint");
        assert_eq!(default_port.authority, "localhost:80");
    }

    #[test]
    fn events_are_parsed_across_chunks_and_line_endings() {
        let mut parser = SseParser::default();
        let mut got = Vec::new();
        let stream = b": comment\r\nid: 1\r\ndata:\r\n\r\nevent: message\nid: 2\ndata: {\"a\":\ndata: 1}\n\nretry: 5\n\ndata: last";
        // Every split point, to cover lines and events cut between chunks.
        for split in 0..stream.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&stream[..split]);
            events.extend(parser.push(&stream[split..]));
            events.extend(parser.finish());
            assert_eq!(events.len(), 3, "split at {split}: {events:?}");
            assert_eq!(events[1], b"{\"a\":\n1}", "split at {split}");
        }
        got.extend(parser.push(stream));
        got.extend(parser.finish());
        assert_eq!(
            got,
            vec![b"".to_vec(), b"{\"a\":\n1}".to_vec(), b"last".to_vec()]
        );
    }

    #[test]
    fn only_a_response_with_our_id_is_taken() {
        let ok =
            br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"Echo: hi"}]}}"#;
        assert!(response_with_id(ok, 7).is_some());
        assert!(response_with_id(ok, 8).is_none());
        let notification = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#;
        assert!(response_with_id(notification, 7).is_none());
        let request = br#"{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage"}"#;
        assert!(
            response_with_id(request, 7).is_none(),
            "a request from the server is not an answer"
        );
        assert!(response_with_id(b"", 7).is_none());
        let batch = format!(
            "[{},{}]",
            String::from_utf8_lossy(notification),
            String::from_utf8_lossy(ok)
        );
        assert!(response_with_id(batch.as_bytes(), 7).is_some());
    }

    #[test]
    fn errors_and_tool_errors_fail_the_call() {
        let message = |text: &str| serde_json::from_str::<Value>(text).expect("JSON");
        assert_eq!(
            check(&message(
                r#"{"id":1,"result":{"content":[{"type":"text","text":"Echo: hi"}]}}"#
            )),
            Ok("Echo: hi".to_owned())
        );
        assert!(
            check(&message(
                r#"{"id":1,"error":{"code":-32602,"message":"bad"}}"#
            ))
            .is_err()
        );
        assert!(
            check(&message(
                r#"{"id":1,"result":{"isError":true,"content":[{"type":"text","text":"no"}]}}"#
            ))
            .is_err()
        );
    }
}
