//! The live route: a call forwarded to its upstream.
//!
//! A run opens one connection per upstream, on the first call that needs
//! it, so that everything the upstream sends during a call (progress, log
//! messages, sampling requests) belongs to that run. When the connection
//! dies (a stdio upstream crashed), the call gets a clear error and the
//! next call opens a new connection: that is the restart.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};

use sandbar_cassette::Notification;
use sandbar_store::{Direction, EventKind};

use crate::call::{Call, Outcome, ProtocolError};
use crate::client::{Client, ClientError};
use crate::privacy;
use crate::run::Run;
use crate::transcript;
use crate::upstream::{UpstreamError, UpstreamErrorKind, UpstreamRequest, UpstreamSession};

/// The client a call talks through: passes everything on to the agent's
/// client, keeps the notifications and the questions put to the client
/// (with its answers) for the run's cassette, and — for
/// traffic that comes from an upstream rather than from Sandbar's own stub
/// code — records it as events.
pub(crate) struct Relay<'a> {
    pub run: &'a Run,
    pub inner: &'a dyn Client,
    /// Record what passes as events (upstream traffic); the stub route
    /// records its own.
    pub record: bool,
    /// Mask what passes before the agent sees it, and restore pseudonyms
    /// in what the agent answers (upstream traffic whose tool masks).
    pub mask: bool,
    /// What passed to the client, in order, as the cassette keeps it.
    pub collected: Mutex<Vec<Notification>>,
    /// Hold list-changed notifications back (see `held`): an upstream's
    /// are, a replayed recording's are not, since the recording already
    /// has them where the agent got them.
    pub hold: bool,
    /// List-changed notifications from the upstream, held back until the
    /// offer has taken the new lists in (so an agent that lists again at
    /// once sees them), then passed on by [`Relay::release`].
    pub held: Mutex<Vec<(String, Value)>>,
}

/// The JSON-RPC error code a call the client cancelled ends with (the
/// stub route's too). The client gets no answer to a cancelled request,
/// and a cassette marks an outcome with this code as cancelled.
pub(crate) const CANCELLED: i32 = -32800;

/// What a call the client cancelled ends with.
pub(crate) fn cancelled() -> Outcome {
    Outcome::Error(ProtocolError::new(CANCELLED, "request cancelled"))
}

/// The notifications by which a server says one of its lists changed.
pub(crate) const LIST_CHANGED: [&str; 3] = [
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
];

impl<'a> Relay<'a> {
    pub fn new(run: &'a Run, inner: &'a dyn Client) -> Relay<'a> {
        Relay {
            run,
            inner,
            record: false,
            mask: false,
            collected: Mutex::new(Vec::new()),
            hold: false,
            held: Mutex::new(Vec::new()),
        }
    }

    /// A relay over this one for an upstream's traffic: records events,
    /// masks what passes when `mask` says so, and holds list-changed
    /// notifications back until [`Relay::release`].
    pub fn recording(&'a self, mask: bool) -> Relay<'a> {
        Relay {
            run: self.run,
            inner: self,
            record: true,
            mask,
            collected: Mutex::new(Vec::new()),
            hold: true,
            held: Mutex::new(Vec::new()),
        }
    }

    /// A relay over this one for a recording's traffic: records events
    /// and passes everything on at once, in the recorded order.
    pub fn replaying(&'a self) -> Relay<'a> {
        Relay {
            hold: false,
            ..self.recording(false)
        }
    }

    /// The held list-changed notifications.
    pub fn take_held(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Passes on a notification [`Relay::take_held`] gave back. It is
    /// recorded now, when the agent is sent it, so that the run's events
    /// keep the order the agent saw.
    pub async fn release(&self, method: &str, params: Value) -> Result<(), ClientError> {
        self.run.record(
            EventKind::Notification,
            Direction::ToClient,
            Some(method),
            None,
            params.clone(),
        );
        self.inner.notify(method, params).await
    }

    /// The notifications and questions that passed, in order.
    pub fn take_notifications(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.collected.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl Client for Relay<'_> {
    async fn notify(&self, method: &str, mut params: Value) -> Result<(), ClientError> {
        if self.mask {
            privacy::mask_value(self.run, &mut params);
        } else if self.record {
            privacy::redact_secrets(self.run, &mut params);
        }
        if self.hold && LIST_CHANGED.contains(&method) {
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((method.to_owned(), params));
            return Ok(());
        }
        if self.record {
            self.run.record(
                EventKind::Notification,
                Direction::ToClient,
                Some(method),
                None,
                params.clone(),
            );
        } else {
            self.collected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Notification::new(method, params.clone()));
        }
        self.inner.notify(method, params).await
    }

    async fn request(&self, method: &str, mut params: Value) -> Result<Value, ClientError> {
        if self.mask {
            privacy::mask_value(self.run, &mut params);
        } else if self.record {
            privacy::redact_secrets(self.run, &mut params);
        }
        // What is put to the model must not carry a canary either. Checked
        // once, by the relay every question passes last (a stub's own, or
        // the one under an upstream's recording relay).
        if method == "sampling/createMessage"
            && !self.record
            && let Some(refusal) =
                crate::canary::check(self.run, &params, "prompt", method, None, None)
        {
            return Err(ClientError::Rejected {
                code: ProtocolError::INVALID_PARAMS,
                message: refusal,
            });
        }
        if self.record {
            self.run.record(
                EventKind::Request,
                Direction::ToClient,
                Some(method),
                None,
                params.clone(),
            );
        }
        // The cassette keeps the question where the client got it, among
        // the notifications, and the answer once it comes; a call that ends
        // first (cancelled) leaves it unanswered.
        let slot = (!self.record).then(|| {
            let mut collected = self.collected.lock().unwrap_or_else(|p| p.into_inner());
            collected.push(Notification {
                method: method.to_owned(),
                params: params.clone(),
                answer: Some(transcript::unanswered(method)),
            });
            collected.len() - 1
        });
        let mut answer = self.inner.request(method, params).await;
        let given = transcript::answer_outcome(&answer);
        if self.record {
            let (kind, payload) = transcript::answer_event(&given);
            self.run
                .record(kind, Direction::ToServer, Some(method), None, payload);
        }
        if let Some(at) = slot
            && let Some(question) = self
                .collected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(at)
        {
            question.answer = Some(given);
        }
        if self.mask
            && let Ok(result) = &mut answer
        {
            privacy::restore(self.run, result);
        }
        answer
    }

    fn supports(&self, capability: &str) -> bool {
        self.inner.supports(capability)
    }
}

/// Forwards one request to upstream `index` and returns its answer, or an
/// error worded for the agent: a tool error for `tools/call` (so the
/// agent's model reads it), a JSON-RPC error otherwise. With `mask`, the
/// pseudonyms the run handed out are turned back into real values on the
/// way out, and the answer is masked on the way back (see `privacy.rs`).
pub(crate) async fn forward(
    run: &Run,
    index: usize,
    method: &str,
    mut params: Value,
    mask: bool,
    call: &Call,
    client: &Relay<'_>,
) -> Outcome {
    if let Err(refusal) = run.admit_upstream(index, method, call) {
        return if method == "tools/call" {
            Outcome::tool_error(refusal)
        } else {
            Outcome::Error(ProtocolError::forbidden(refusal))
        };
    }
    if mask {
        privacy::restore(run, &mut params);
    }
    // A tool's arguments were checked when the call came in.
    if method != "tools/call"
        && let Some(refusal) = crate::canary::check(
            run,
            &params,
            "upstream",
            method,
            None,
            call.request_id.clone(),
        )
    {
        return Outcome::Error(ProtocolError::invalid_params(refusal));
    }
    let outcome = match try_forward(run, index, method, params, mask, call, client).await {
        Ok(outcome) => outcome,
        Err(e) => {
            run.record(
                EventKind::Error,
                Direction::Internal,
                Some(method),
                call.request_id.clone(),
                json!({
                    "upstream": e.upstream,
                    "kind": e.kind.to_string(),
                    "message": e.message,
                }),
            );
            let message = e.to_string();
            if e.kind == UpstreamErrorKind::Cancelled {
                Outcome::Error(ProtocolError::new(CANCELLED, message))
            } else if method == "tools/call" {
                Outcome::tool_error(message)
            } else {
                Outcome::Error(ProtocolError::internal(message))
            }
        }
    };
    // The client cancelled: whatever came back, it is not answered (the
    // front drops a cancelled request's response), and the recording must
    // not say it was.
    let outcome = match outcome {
        Outcome::Error(e) if e.code == CANCELLED => Outcome::Error(e),
        _ if call.cancel.is_cancelled() => Outcome::Error(ProtocolError::new(
            CANCELLED,
            format!("{method} was cancelled by the client"),
        )),
        outcome => outcome,
    };
    if mask {
        privacy::mask_outcome(run, outcome)
    } else {
        privacy::redact_outcome_secrets(run, outcome)
    }
}

async fn try_forward(
    run: &Run,
    index: usize,
    method: &str,
    params: Value,
    mask: bool,
    call: &Call,
    client: &Relay<'_>,
) -> Result<Outcome, UpstreamError> {
    let engine = run.engine();
    let Some(upstream) = engine.upstreams.get(index) else {
        return Err(UpstreamError::new(
            "?",
            UpstreamErrorKind::Connect,
            "no such upstream",
        ));
    };
    let spec = &engine.scenario.upstreams[index];
    let session = session(run, index).await?;
    let recording = client.recording(mask);
    let result = session
        .request(UpstreamRequest {
            method,
            params,
            progress_token: call.progress_token.clone(),
            client: &recording,
            cancel: call.cancel.clone(),
            timeout: spec.timeout,
        })
        .await;
    // A list change reaches the agent once the offer has it; from a
    // connection that died meanwhile there is no new list to take in, so
    // it is not passed on (nor recorded as sent).
    let changed = recording.take_held();
    if !changed.is_empty() && !session.is_closed() {
        refresh(run, index, &session).await;
        for (method, params) in changed {
            let _ = recording.release(&method, params).await;
        }
    }
    if result.is_err() && session.is_closed() {
        // Drop the dead connection; the next call opens a new one.
        let mut sessions = run.upstream_sessions.lock().await;
        if let Some(current) = sessions.get(&index)
            && Arc::ptr_eq(current, &session)
        {
            sessions.remove(&index);
        }
        run.record(
            EventKind::Lifecycle,
            Direction::Internal,
            Some("upstream/closed"),
            None,
            json!({"upstream": upstream.name()}),
        );
    }
    result
}

/// Lists what upstream `index` offers now and rebuilds the engine's offer.
async fn refresh(run: &Run, index: usize, session: &Arc<dyn UpstreamSession>) {
    let engine = run.engine();
    let upstream = engine.upstreams[index].name().to_owned();
    let outcome = match session.catalog().await {
        Ok(catalog) => engine.refresh_catalog(index, catalog),
        Err(e) => Err(e.to_string()),
    };
    let payload = match outcome {
        Ok(()) => json!({"upstream": upstream}),
        Err(message) => json!({"upstream": upstream, "message": message}),
    };
    run.record(
        EventKind::Lifecycle,
        Direction::Internal,
        Some("upstream/catalog"),
        None,
        payload,
    );
}

/// The run's open connection to upstream `index`, opened if needed.
async fn session(run: &Run, index: usize) -> Result<Arc<dyn UpstreamSession>, UpstreamError> {
    let mut sessions = run.upstream_sessions.lock().await;
    if let Some(s) = sessions.get(&index) {
        if !s.is_closed() {
            return Ok(s.clone());
        }
        sessions.remove(&index);
    }
    let upstream = &run.engine().upstreams[index];
    let session = upstream.connect().await?;
    run.record(
        EventKind::Lifecycle,
        Direction::Internal,
        Some("upstream/connected"),
        None,
        json!({"upstream": upstream.name()}),
    );
    sessions.insert(index, session.clone());
    Ok(session)
}
