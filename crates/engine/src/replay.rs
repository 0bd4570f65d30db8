//! The replay route and the run's cassette.
//!
//! Replay answers a call from the engine's cassette: the call is redacted
//! exactly as recordings are (so a recorded placeholder matches the value
//! it stands for), matched by the run's [`Replayer`], and answered with the
//! recorded outcome and notifications, byte for byte: the notifications
//! in the order the agent got them, list-changed ones included, and a call
//! the recorded agent cancelled is not answered until this one cancels it
//! too. A call the cassette cannot answer is a divergence: an event with
//! the closest recorded calls, then whatever the miss policy says.
//!
//! A run that records writes one cassette: every interaction the agent had
//! with the sandbox when recording everything (`serve --record`), or those
//! of items in `record` mode otherwise.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Value, json};

use sandbar_cassette::{
    CassetteWriter, Header, Interaction, Miss, Notification, RecordedOutcome, ScenarioRef,
};
use sandbar_redact::Sink;
use sandbar_store::{Direction, EventKind};

use crate::call::{Call, Outcome, ProtocolError};
use crate::client::{Client as _, capability_for};
use crate::forward::{LIST_CHANGED, Relay};
use crate::run::{Engine, Run, format_time};

/// The JSON-RPC error code for a non-tool call the recording cannot answer
/// (in the range JSON-RPC leaves to servers).
pub const NOT_RECORDED: i32 = -32010;

/// A run's replayer (the cassette crate's, shown by its progress only).
pub(crate) struct RunReplayer(pub sandbar_cassette::Replayer);

impl std::fmt::Debug for RunReplayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunReplayer")
            .field("steps", &self.0.steps())
            .finish_non_exhaustive()
    }
}

/// What replay made of a call.
pub(crate) enum Replayed {
    Hit(Outcome),
    Miss(Box<Miss>),
    /// The run has no cassette (the engine was given none).
    NoCassette,
}

/// Answers a call (its parameters, which are redacted here) from the
/// cassette, if the run has one and it matches.
pub(crate) async fn answer(
    run: &Run,
    method: &str,
    mut subject: Value,
    client: &Relay<'_>,
    call: &Call,
) -> Replayed {
    let Some(replayer) = &run.replayer else {
        return Replayed::NoCassette;
    };
    // Redacted as the cassette's calls were written, so the two compare.
    run.engine()
        .redactor
        .for_sink(Sink::Cassette)
        .redact_json(&mut subject);
    match replayer.0.answer(method, &subject) {
        Ok(interaction) => {
            // The recording holds the notifications where the agent got
            // them (list-changed ones after the upstream's lists were taken
            // in), so they are sent as they come, none held back.
            let recording = client.replaying();
            for n in &interaction.notifications {
                if n.is_request() {
                    // A question the recorded server put to the client is
                    // put to this one, in the same place (unless it did not
                    // declare the capability, as the recorded server would
                    // not have asked it then); its answer is recorded, and
                    // the recorded outcome stands whatever it says.
                    if capability_for(&n.method).is_some_and(|c| !recording.supports(c)) {
                        continue;
                    }
                    tokio::select! {
                        _ = recording.request(&n.method, n.params.clone()) => {}
                        () = call.cancel.cancelled() => {
                            return Replayed::Hit(crate::forward::cancelled());
                        }
                    }
                    continue;
                }
                let mut params = n.params.clone();
                if n.method == "notifications/progress" {
                    // Progress goes to the token the replaying client asked
                    // with; a client that asked for none gets none.
                    let Some(token) = &call.progress_token else {
                        continue;
                    };
                    if let Value::Object(m) = &mut params {
                        m.insert("progressToken".to_owned(), token.clone());
                    }
                }
                let _ = recording.notify(&n.method, params).await;
            }
            // The recorded agent cancelled this call and got no answer: this
            // one gets none either until it cancels too (or goes away).
            if interaction.outcome.is_cancelled() {
                call.cancel.cancelled().await;
            }
            Replayed::Hit(match &interaction.outcome {
                RecordedOutcome::Result(v) => Outcome::Result(v.clone()),
                RecordedOutcome::Error {
                    code,
                    message,
                    data,
                } => Outcome::Error(ProtocolError {
                    code: i32::try_from(*code).unwrap_or(ProtocolError::INTERNAL_ERROR),
                    message: message.clone(),
                    data: data.clone(),
                }),
            })
        }
        Err(miss) => Replayed::Miss(Box::new(miss)),
    }
}

impl Engine {
    /// Whether the offered lists may change during a session, so that a
    /// server says it will tell (`listChanged`): with upstreams, whose
    /// lists may change; and when replaying a recording whose server had
    /// upstreams, or whose agent was told a list changed, since a replay
    /// says what the recorded server said.
    pub fn lists_may_change(&self) -> bool {
        self.has_upstreams()
            || self.cassette.as_ref().is_some_and(|cassette| {
                !cassette.header.upstreams.is_empty()
                    || cassette.interactions.iter().any(|i| {
                        i.upstream.is_some()
                            || i.notifications
                                .iter()
                                .any(|n| LIST_CHANGED.contains(&n.method.as_str()))
                    })
            })
    }
}

/// Records a divergence and returns the answer the `fail` policy gives.
pub(crate) fn diverge(run: &Run, miss: &Miss, policy: &str, request_id: Option<String>) -> Outcome {
    let mut payload = serde_json::to_value(&miss.report).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut payload {
        m.insert("policy".to_owned(), Value::from(policy));
    }
    run.record(
        EventKind::Divergence,
        Direction::Internal,
        Some(miss.report.method.as_str()),
        request_id,
        payload,
    );
    let text = format!(
        "this call is not in the recording Sandbar replays.\n{}",
        miss.report
    );
    if miss.report.method == "tools/call" {
        Outcome::tool_error(text)
    } else {
        Outcome::Error(ProtocolError {
            code: NOT_RECORDED,
            message: text,
            data: None,
        })
    }
}

/// The cassette a run writes.
pub(crate) struct RunCassette {
    pub writer: Mutex<Option<CassetteWriter>>,
    /// Keep every interaction, not only those of items in `record` mode.
    pub everything: bool,
}

impl std::fmt::Debug for RunCassette {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCassette")
            .field("everything", &self.everything)
            .finish_non_exhaustive()
    }
}

impl RunCassette {
    /// Opens `DIR/RUN_ID.jsonl` with the run's header.
    pub fn create(
        engine: &Engine,
        dir: &std::path::Path,
        everything: bool,
        run_id: &str,
        seed: u64,
    ) -> Result<RunCassette, String> {
        let scenario = engine.scenario();
        let mut header = Header::new(
            ScenarioRef {
                name: scenario.name.clone(),
                hash: scenario.hash.clone(),
            },
            seed,
            format_time(scenario.clock.start),
            format_time(chrono::Utc::now()),
        );
        header.run_id = Some(run_id.to_owned());
        header.mask_key = engine.redactor.privacy().map(|p| p.key().id());
        let current = engine.current();
        header.server = Some(json!({
            "info": {
                "name": scenario.server.name,
                "version": scenario.server.version,
                "instructions": scenario.server.instructions,
            },
            "listings": {
                "tools": current.listings.tools,
                "resources": current.listings.resources,
                "resource_templates": current.listings.resource_templates,
                "prompts": current.listings.prompts,
            },
        }));
        for (u, catalog) in current.catalogs.iter().enumerate() {
            header.upstreams.insert(
                scenario.upstreams[u].name.clone(),
                serde_json::to_value(catalog).unwrap_or_default(),
            );
        }
        let path: PathBuf = dir.join(format!("{run_id}.jsonl"));
        let writer = CassetteWriter::create(
            &path,
            header,
            engine.redactor.for_sink(Sink::Cassette).snapshot(),
        )
        .map_err(|e| e.to_string())?;
        Ok(RunCassette {
            writer: Mutex::new(Some(writer)),
            everything,
        })
    }

    /// Appends one interaction; a failure is reported as an event, never
    /// to the agent (its call was answered).
    pub fn append(&self, run: &Run, interaction: Interaction) {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = writer.as_mut()
            && let Err(e) = w.append(interaction)
        {
            run.record(
                EventKind::Error,
                Direction::Internal,
                Some("cassette/append"),
                None,
                json!({"message": e.to_string()}),
            );
        }
    }

    /// Flushes and closes the cassette; returns its path.
    pub fn finish(&self) -> Option<Result<PathBuf, String>> {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        Some(writer.finish().map_err(|e| e.to_string()))
    }
}

/// An interaction as the cassette keeps it.
pub(crate) fn interaction(
    method: &str,
    params: Value,
    upstream: Option<String>,
    virtual_time: String,
    notifications: Vec<Notification>,
    outcome: &Outcome,
) -> Interaction {
    Interaction {
        seq: 0,
        method: method.to_owned(),
        params,
        upstream,
        virtual_time,
        notifications,
        outcome: match outcome {
            Outcome::Result(v) => RecordedOutcome::Result(v.clone()),
            Outcome::Error(e) => RecordedOutcome::Error {
                code: i64::from(e.code),
                message: e.message.clone(),
                data: e.data.clone(),
            },
        },
    }
}
