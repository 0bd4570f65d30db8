//! Requests over Streamable HTTP without the SDK's client worker.
//!
//! The SDK keeps the session: the handshake, the catalog, the standalone GET
//! stream, re-initializing a session the server expired, and closing it. A
//! forwarded request takes a shorter way: the task that forwards it POSTs
//! it on the session's pooled connections and reads the answer itself —
//! one JSON body, or an event stream carrying the upstream's notifications
//! and questions before the answer. Through the SDK the same request would
//! cross its service loop, its transport worker and a task per response
//! stream, a channel hop (and often a thread wake-up) at each.
//!
//! What arrives on the stream is routed exactly as what the SDK receives:
//! notifications through the same [`Router`], questions to the request whose
//! stream they arrived on, answered by a POST of their own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use http::{HeaderName, HeaderValue};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use rmcp::ErrorData;
// Sampling and roots are deprecated in the SDK's newest protocol version;
// see the note in `routing.rs`.
#[allow(deprecated)]
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ClientResult, CreateMessageResult, ElicitResult,
    ErrorCode, JsonRpcRequest, ListRootsResult, RequestId, ServerJsonRpcMessage, ServerRequest,
    ServerResult,
};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::routing::{self, Router};

/// Largest event (or JSON body) read, as the SDK's default.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// POSTs that may wait for their response to begin at once, as the SDK's
/// default; later requests queue, their timeout running.
const MAX_WAITING_POSTS: usize = 16;
/// Times an answer stream that broke off is resumed (`Last-Event-ID`)
/// without a new event in between.
const MAX_RESUMES: u32 = 3;
/// JSON-RPC ids (and progress tokens) of requests sent here start above
/// any the SDK hands out on the same session (it counts in 32 bits), so
/// the two never collide.
const FIRST_ID: i64 = 1 << 32;
/// How long the rest of an answer's stream is waited for, so that its
/// connection can be reused.
const DRAIN_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// The session id the SDK holds, as it goes by.
#[derive(Debug, Default)]
pub(crate) struct SessionId(Mutex<Option<Arc<str>>>);

impl SessionId {
    fn get(&self) -> Option<Arc<str>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, id: &str) {
        let mut current = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_deref() != Some(id) {
            *current = Some(Arc::from(id));
        }
    }
}

/// reqwest's client as the SDK uses it, noting the session id each answer
/// to `initialize` hands out (the first, and any after the SDK
/// re-initialized an expired session).
#[derive(Debug, Clone)]
pub(crate) struct NotingClient {
    client: reqwest::Client,
    session: Arc<SessionId>,
}

impl NotingClient {
    pub fn new(client: reqwest::Client, session: Arc<SessionId>) -> Self {
        NotingClient { client, session }
    }

    fn note(
        &self,
        response: Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>> {
        if let Ok(
            StreamableHttpPostResponse::Json(_, Some(id))
            | StreamableHttpPostResponse::Sse(_, Some(id)),
        ) = &response
        {
            self.session.set(id);
        }
        response
    }
}

type PostResult = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;
type SseStream = futures::stream::BoxStream<'static, Result<Sse, SseError>>;

impl StreamableHttpClient for NotingClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> PostResult {
        let response = self
            .client
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await;
        self.note(response)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> PostResult {
        let response = self
            .client
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.note(response)
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> PostResult {
        let response = self
            .client
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await;
        self.note(response)
    }

    fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> impl Future<Output = Result<(), StreamableHttpError<reqwest::Error>>> + Send + '_ {
        self.client
            .delete_session(uri, session_id, auth_header, custom_headers)
    }

    fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> impl Future<Output = Result<SseStream, StreamableHttpError<reqwest::Error>>> + Send + '_
    {
        self.client
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
    }

    fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> impl Future<Output = Result<SseStream, StreamableHttpError<reqwest::Error>>> + Send + '_
    {
        self.client.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            max_sse_event_size,
        )
    }
}

/// The way requests go out on one session.
#[derive(Debug)]
pub(crate) struct HttpLink {
    pub url: String,
    client: reqwest::Client,
    /// Accept, Content-Type, the negotiated protocol version and the
    /// configured headers; the session id is added per request.
    headers: HeaderMap,
    session: Arc<SessionId>,
    next_id: AtomicI64,
    waiting_posts: Arc<Semaphore>,
}

/// Why an exchange ended without an answer.
#[derive(Debug)]
pub(crate) enum Broken {
    /// The request could not be sent, or its answer stream broke off and
    /// could not be resumed: the server is gone.
    Unreachable(reqwest::Error),
    /// The server answered with an HTTP error status.
    Status(StatusCode),
    /// The server no longer knows the session (HTTP 404 to a request
    /// carrying its id); the SDK re-initializes it.
    Expired,
    /// Anything else the server did that is not MCP.
    Protocol(String),
}

/// One step of an exchange.
#[derive(Debug)]
pub(crate) enum Step {
    /// The upstream's answer: its result or its JSON-RPC error.
    Answer(Result<ServerResult, ErrorData>),
    /// Something else it sent on the answer's stream first.
    Message(ServerJsonRpcMessage),
}

type Sending =
    Pin<Box<dyn Future<Output = (Result<reqwest::Response, reqwest::Error>, bool)> + Send>>;

enum State {
    /// The POST (or a GET resuming its stream) waits for its response.
    Sending(Sending),
    /// An event stream is being read.
    Events {
        response: reqwest::Response,
        events: EventParser,
    },
    /// A JSON body is being read.
    Json {
        response: reqwest::Response,
        body: Vec<u8>,
        status: StatusCode,
    },
    Done,
}

/// One request and its answer. [`Exchange::next`] is cancel-safe: what has
/// been read stays here between calls.
pub(crate) struct Exchange {
    link: Arc<HttpLink>,
    id: RequestId,
    state: State,
    last_event_id: Option<String>,
    resumes: u32,
}

impl HttpLink {
    pub fn new(
        url: &str,
        client: reqwest::Client,
        configured: &HashMap<HeaderName, HeaderValue>,
        protocol_version: &str,
        session: Arc<SessionId>,
    ) -> HttpLink {
        let mut headers = HeaderMap::new();
        for (name, value) in configured {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream, application/json"),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(version) = HeaderValue::from_str(protocol_version) {
            headers.insert(HeaderName::from_static("mcp-protocol-version"), version);
        }
        HttpLink {
            url: url.to_owned(),
            client,
            headers,
            session,
            next_id: AtomicI64::new(FIRST_ID),
            waiting_posts: Arc::new(Semaphore::new(MAX_WAITING_POSTS)),
        }
    }

    /// A JSON-RPC id of this session's own, also used as the request's
    /// progress token.
    pub fn next_id(&self) -> RequestId {
        RequestId::Number(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The headers of a request now: the session id as of this moment.
    fn headers(&self) -> (HeaderMap, bool) {
        let mut headers = self.headers.clone();
        let session = self.session.get();
        if let Some(id) = &session
            && let Ok(value) = HeaderValue::from_str(id)
        {
            headers.insert(HeaderName::from_static("mcp-session-id"), value);
        }
        (headers, session.is_some())
    }

    /// Starts a request: `id` is the JSON-RPC id `request` goes with.
    pub fn exchange(self: &Arc<Self>, id: RequestId, request: &ClientRequest) -> Exchange {
        let body =
            serde_json::to_vec(&JsonRpcRequest::new(id.clone(), request)).unwrap_or_default();
        let (headers, with_session) = self.headers();
        let post = self.client.post(&self.url).headers(headers).body(body);
        Exchange {
            link: Arc::clone(self),
            id,
            state: State::Sending(self.waiting(post, with_session)),
            last_event_id: None,
            resumes: 0,
        }
    }

    /// Sends `request` once a place among the POSTs waiting for their
    /// response is free; the place is given up as the response begins.
    fn waiting(&self, request: reqwest::RequestBuilder, with_session: bool) -> Sending {
        let places = Arc::clone(&self.waiting_posts);
        Box::pin(async move {
            let _place: Option<OwnedSemaphorePermit> = places.acquire_owned().await.ok();
            (request.send().await, with_session)
        })
    }

    /// POSTs a message that expects no answer (the answer to a question);
    /// failures are logged, as the SDK does.
    pub async fn post_message(&self, message: &ClientJsonRpcMessage) {
        let body = serde_json::to_vec(message).unwrap_or_default();
        let (headers, _) = self.headers();
        let sent = self
            .client
            .post(&self.url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                // Read what little there is, so the connection can be reused.
                let _ = response.bytes().await;
            }
            Ok(response) => {
                tracing::debug!(target: "sandbar::upstream", url = %self.url,
                    status = %response.status(), "the upstream refused an answer to its question");
            }
            Err(e) => tracing::debug!(target: "sandbar::upstream", url = %self.url,
                error = %e, "could not send an answer to the upstream's question"),
        }
    }
}

fn content_type(response: &reqwest::Response) -> &[u8] {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default()
}

/// Whether a Content-Type names this media type (parameters aside).
fn media_type_is(content_type: &[u8], media_type: &str) -> bool {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(media_type.as_bytes())
}

impl Exchange {
    /// The next thing the upstream sent for this request: a message on the
    /// way, or the answer (after which there is nothing more).
    pub async fn next(&mut self) -> Result<Step, Broken> {
        loop {
            match &mut self.state {
                State::Sending(sending) => {
                    let (response, with_session) = sending.as_mut().await;
                    self.state = State::Done;
                    self.state =
                        self.begin(response.map_err(Broken::Unreachable)?, with_session)?;
                }
                State::Events { response, events } => {
                    let event = events.next_event().map_err(Broken::Protocol)?;
                    if let Some(id) = events.last_event_id.take() {
                        self.last_event_id = Some(id);
                        self.resumes = 0;
                    }
                    if let Some(data) = event {
                        // Priming events (an id, empty data) carry no message.
                        if data.trim_ascii().is_empty() {
                            continue;
                        }
                        if let Some(step) = self.read(&data)? {
                            return Ok(step);
                        }
                        continue;
                    }
                    match response.chunk().await {
                        Ok(Some(chunk)) => events.feed(&chunk),
                        Ok(None) => {
                            events.end();
                            if events.has_pending() {
                                continue;
                            }
                            self.resume(None)?;
                        }
                        Err(e) => self.resume(Some(e))?,
                    }
                }
                State::Json {
                    response,
                    body,
                    status,
                } => match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > MAX_MESSAGE {
                            return Err(Broken::Protocol(format!(
                                "the answer is larger than {MAX_MESSAGE} bytes"
                            )));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => {
                        let (body, status) = (std::mem::take(body), *status);
                        self.state = State::Done;
                        return match self.read(&body) {
                            Ok(Some(step @ Step::Answer(_))) => Ok(step),
                            // An HTTP error without a JSON-RPC error in it
                            // is the status.
                            _ if !status.is_success() => Err(Broken::Status(status)),
                            Ok(_) => Err(Broken::Protocol(format!(
                                "{} answered with JSON that is not the answer to the request",
                                self.link.url
                            ))),
                            Err(e) => Err(e),
                        };
                    }
                    Err(e) => return Err(Broken::Unreachable(e)),
                },
                State::Done => {
                    return Err(Broken::Protocol("the exchange is over".to_owned()));
                }
            }
        }
    }

    /// After the answer: reads what is left of the stream (usually just its
    /// end, already here) so the connection goes back to the pool; if more
    /// is still to come, a task of its own waits for it, for a while.
    pub fn finish(self) {
        let State::Events { mut response, .. } = self.state else {
            return;
        };
        loop {
            match response.chunk().now_or_never() {
                Some(Ok(Some(_))) => continue,
                Some(_) => return,
                None => break,
            }
        }
        tokio::spawn(async move {
            let _ = tokio::time::timeout(DRAIN_BOUND, async {
                while let Ok(Some(_)) = response.chunk().await {}
            })
            .await;
        });
    }

    /// What the response's status and type say to do next.
    fn begin(&self, response: reqwest::Response, with_session: bool) -> Result<State, Broken> {
        let status = response.status();
        if status == StatusCode::NOT_FOUND && with_session {
            return Err(Broken::Expired);
        }
        let json = media_type_is(content_type(&response), "application/json");
        if !status.is_success() {
            // A JSON-RPC error in a JSON body is the upstream's answer (the
            // SDK reads it the same way); other failures are the status.
            if json && status != StatusCode::TOO_MANY_REQUESTS {
                return Ok(State::Json {
                    response,
                    body: Vec::new(),
                    status,
                });
            }
            return Err(Broken::Status(status));
        }
        if media_type_is(content_type(&response), "text/event-stream") {
            Ok(State::Events {
                response,
                events: EventParser::default(),
            })
        } else if json {
            Ok(State::Json {
                response,
                body: Vec::new(),
                status,
            })
        } else if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            Err(Broken::Protocol(format!(
                "{} answered HTTP {status} to a request, with no answer",
                self.link.url
            )))
        } else {
            Err(Broken::Protocol(format!(
                "{} answered with an unexpected content type: {}",
                self.link.url,
                String::from_utf8_lossy(content_type(&response))
            )))
        }
    }

    /// The stream ended (or broke off) before the answer: resumes it from
    /// the last event the server numbered, if it numbered any.
    fn resume(&mut self, error: Option<reqwest::Error>) -> Result<(), Broken> {
        let Some(last) = self
            .last_event_id
            .clone()
            .filter(|_| self.resumes < MAX_RESUMES)
        else {
            self.state = State::Done;
            return Err(match error {
                Some(e) => Broken::Unreachable(e),
                None => Broken::Protocol(format!(
                    "{} ended the answer's event stream without the answer",
                    self.link.url
                )),
            });
        };
        self.resumes += 1;
        let (mut headers, with_session) = self.link.headers();
        headers.remove(header::CONTENT_TYPE);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        if let Ok(value) = HeaderValue::from_str(&last) {
            headers.insert(HeaderName::from_static("last-event-id"), value);
        }
        let get = self.link.client.get(&self.link.url).headers(headers);
        self.state = State::Sending(self.link.waiting(get, with_session));
        Ok(())
    }

    /// One JSON-RPC message from the upstream; `None` for what is not ours
    /// to handle (an answer to another request).
    fn read(&mut self, data: &[u8]) -> Result<Option<Step>, Broken> {
        let message: ServerJsonRpcMessage = serde_json::from_slice(data).map_err(|e| {
            Broken::Protocol(format!("the upstream sent a message that is not MCP: {e}"))
        })?;
        match message {
            ServerJsonRpcMessage::Response(response) if response.id == self.id => {
                Ok(Some(Step::Answer(Ok(response.result))))
            }
            // An error without an id is one the server could not tie to a
            // request; on this request's own answer it is the answer.
            ServerJsonRpcMessage::Error(error)
                if error.id.is_none() || error.id.as_ref() == Some(&self.id) =>
            {
                Ok(Some(Step::Answer(Err(error.error))))
            }
            ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_) => {
                tracing::debug!(target: "sandbar::upstream", url = %self.link.url,
                    "an answer to another request on this request's stream ignored");
                Ok(None)
            }
            message => Ok(Some(Step::Message(message))),
        }
    }
}

/// Answers a question the upstream asked on a request's stream, on a task
/// of its own (the request goes on meanwhile): sampling and elicitation go
/// to the agent's client through the request in flight, roots and ping are
/// answered here, anything else is method-not-found. A question the
/// upstream withdraws is not answered.
#[allow(deprecated)] // Sampling and roots: see the note in `routing.rs`.
pub(crate) fn answer_question(
    link: &Arc<HttpLink>,
    router: &Arc<Router>,
    origin: &RequestId,
    id: RequestId,
    question: ServerRequest,
) {
    let link = Arc::clone(link);
    let router = Arc::clone(router);
    let target = router.question_target(Some(origin));
    let withdrawn = router.question(id.clone());
    tokio::spawn(async move {
        let answer: Result<ClientResult, ErrorData> = match question {
            ServerRequest::PingRequest(_) => Ok(ClientResult::empty(())),
            ServerRequest::ListRootsRequest(_) => {
                Ok(ClientResult::ListRootsResult(ListRootsResult::default()))
            }
            ServerRequest::CreateMessageRequest(request) => {
                const METHOD: &str = "sampling/createMessage";
                match serde_json::to_value(request.params) {
                    Ok(params) => routing::ask(target, METHOD, "sampling", params, &withdrawn)
                        .await
                        .and_then(|answer| {
                            serde_json::from_value::<CreateMessageResult>(answer)
                                .map_err(|e| routing::malformed_answer(METHOD, &e))
                        })
                        .map(|result| ClientResult::CreateMessageResult(Box::new(result))),
                    Err(e) => Err(routing::malformed_answer(METHOD, &e)),
                }
            }
            ServerRequest::ElicitRequest(request) => {
                const METHOD: &str = "elicitation/create";
                match serde_json::to_value(request.params) {
                    Ok(params) => routing::ask(target, METHOD, "elicitation", params, &withdrawn)
                        .await
                        .and_then(|answer| {
                            serde_json::from_value::<ElicitResult>(answer)
                                .map_err(|e| routing::malformed_answer(METHOD, &e))
                        })
                        .map(ClientResult::ElicitResult),
                    Err(e) => Err(routing::malformed_answer(METHOD, &e)),
                }
            }
            ServerRequest::CustomRequest(request) => Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                request.method,
                None,
            )),
            _ => Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                "method not found",
                None,
            )),
        };
        router.forget_question(&id);
        if withdrawn.is_cancelled() {
            return;
        }
        let message = match answer {
            Ok(result) => ClientJsonRpcMessage::response(result, id),
            Err(error) => ClientJsonRpcMessage::error(error, Some(id)),
        };
        link.post_message(&message).await;
    });
}

/// A reader of `text/event-stream`: bytes in, the data of each event out.
/// Events of a type other than `message` are skipped; an event's `id` is
/// kept for resuming the stream.
#[derive(Debug, Default)]
struct EventParser {
    buffer: Vec<u8>,
    /// Where the unread part of `buffer` starts.
    read: usize,
    data: Vec<u8>,
    has_data: bool,
    kind_is_message: Option<bool>,
    id: Option<String>,
    /// The id of the last event dispatched, until taken.
    last_event_id: Option<String>,
    ended: bool,
}

impl EventParser {
    fn feed(&mut self, bytes: &[u8]) {
        if self.read > 0 && self.read == self.buffer.len() {
            self.buffer.clear();
            self.read = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The stream ended: a last line without its line break still counts.
    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            if self.read < self.buffer.len() {
                self.buffer.extend_from_slice(b"\n\n");
            } else if self.has_data {
                self.buffer.extend_from_slice(b"\n");
            }
        }
    }

    fn has_pending(&self) -> bool {
        self.read < self.buffer.len()
    }

    /// The data of the next complete `message` event, if one is buffered.
    fn next_event(&mut self) -> Result<Option<Vec<u8>>, String> {
        while let Some((line_end, next)) = self.line() {
            let start = self.read;
            self.read = next;
            if line_end == start {
                // A blank line dispatches the event.
                if let Some(id) = self.id.take() {
                    self.last_event_id = Some(id);
                }
                let is_message = self.kind_is_message.take().unwrap_or(true);
                let has_data = std::mem::take(&mut self.has_data);
                let data = std::mem::take(&mut self.data);
                if has_data && is_message {
                    return Ok(Some(data));
                }
                continue;
            }
            let line = &self.buffer[start..line_end];
            let (field, value) = match line.iter().position(|b| *b == b':') {
                Some(0) => continue, // a comment
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            match field {
                b"data" => {
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                    if self.data.len() > MAX_MESSAGE {
                        return Err(format!("an event is larger than {MAX_MESSAGE} bytes"));
                    }
                }
                b"event" => self.kind_is_message = Some(value == b"message"),
                b"id" if !value.contains(&0) => {
                    self.id = Some(String::from_utf8_lossy(value).into_owned());
                }
                _ => {}
            }
        }
        if self.buffer.len() - self.read > MAX_MESSAGE + 64 {
            return Err(format!("an event is larger than {MAX_MESSAGE} bytes"));
        }
        Ok(None)
    }

    /// The next complete line: where it ends and where the one after
    /// starts. A lone CR at the end of what arrived so far may be the first
    /// half of a CRLF, so it waits for more (or for the end).
    fn line(&self) -> Option<(usize, usize)> {
        let rest = &self.buffer[self.read..];
        let at = rest.iter().position(|b| *b == b'\n' || *b == b'\r')?;
        let end = self.read + at;
        match rest[at] {
            b'\r' if at + 1 == rest.len() && !self.ended => None,
            b'\r' if rest.get(at + 1) == Some(&b'\n') => Some((end, end + 2)),
            _ => Some((end, end + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events `chunks` make, fed one after another.
    fn events(chunks: &[&str]) -> (Vec<String>, Option<String>) {
        let mut parser = EventParser::default();
        let mut out = Vec::new();
        let mut last_id = None;
        let mut drain = |parser: &mut EventParser, out: &mut Vec<String>| {
            while let Ok(Some(data)) = parser.next_event() {
                out.push(String::from_utf8_lossy(&data).into_owned());
            }
            if let Some(id) = parser.last_event_id.take() {
                last_id = Some(id);
            }
        };
        for chunk in chunks {
            parser.feed(chunk.as_bytes());
            drain(&mut parser, &mut out);
        }
        parser.end();
        drain(&mut parser, &mut out);
        (out, last_id)
    }

    #[test]
    fn event_streams_are_read_as_the_spec_says() {
        let cases: &[(&[&str], &[&str], Option<&str>)] = &[
            (
                &["event: message\ndata: {\"a\":1}\n\n"],
                &["{\"a\":1}"],
                None,
            ),
            (
                &["data: x\r\n\r\ndata: y\r\rdata: z\n\n"],
                &["x", "y", "z"],
                None,
            ),
            (&["data: a\r", "\ndata: b\n\n"], &["a\nb"], None),
            (&["da", "ta:no space\n", "\n"], &["no space"], None),
            (&[": comment\nid: 7\ndata: 1\n\n"], &["1"], Some("7")),
            // A priming event: an id and no data.
            (&["id: p1\ndata:\n\n", "id: p2\n\n"], &[""], Some("p2")),
            (
                &["event: ping\ndata: skipped\n\ndata: kept\n\n"],
                &["kept"],
                None,
            ),
            (&["data: unterminated"], &["unterminated"], None),
            (&["retry: 100\nfield-unknown\ndata: {}\n\n"], &["{}"], None),
        ];
        for (chunks, expect, id) in cases {
            let (out, last_id) = events(chunks);
            assert_eq!(out, *expect, "{chunks:?}");
            assert_eq!(last_id.as_deref(), *id, "{chunks:?}");
        }
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert!(media_type_is(b"application/json", "application/json"));
        assert!(media_type_is(
            b"Application/JSON; charset=utf-8",
            "application/json"
        ));
        assert!(media_type_is(b"text/event-stream", "text/event-stream"));
        assert!(!media_type_is(b"text/plain", "application/json"));
        assert!(!media_type_is(b"", "application/json"));
    }
}
