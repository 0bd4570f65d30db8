//! A run as a cassette, and a cassette as a run.
//!
//! The store keeps a run as events; a cassette keeps it as interactions
//! (a request, the notifications sent while it was answered, its outcome).
//! Converting between the two lets `runs show` and `runs diff` work on
//! both, and lets any recorded run be replayed.
//!
//! Pairing events into interactions: a request from the client opens an
//! interaction, the response or error with the same method and request id
//! closes it, and a notification to the client belongs to the most
//! recently opened interaction that is still open (calls answered
//! concurrently may therefore attribute a notification to a neighbour; the
//! store keeps the exact order either way). `initialize` is the protocol
//! SDK's handshake, not a call, so it is left out, as live recording does.
//!
//! What a cassette's header holds beyond the run's record comes from the
//! run's `run/start` event, which keeps what the run was offered when it
//! started ([`offered`]: the server's introduction and list results, each
//! upstream's catalog); which upstream answered a call comes from its
//! response event (an `upstream` beside the outcome). So a stored run
//! exports as the cassette the run would have recorded live.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use sandbar_cassette::{Cassette, Header, Interaction, Notification, RecordedOutcome, ScenarioRef};
use sandbar_store::{
    Direction, EventKind, EventRecord, NewEvent, NewRun, RunRecord, RunStatus, Store,
};

use crate::call::ProtocolError;
use crate::client::ClientError;
use crate::run::{DEFAULT_TENANT, Engine, format_time, new_run_id};

/// The key, beside `result` or `error` in a response event, that names the
/// upstream that answered the call.
pub(crate) const UPSTREAM_KEY: &str = "upstream";

/// What a run is offered as it starts, as a cassette header says it: how
/// the server introduces itself with its list results (`server`), and
/// each upstream's catalog by name (`upstreams`). The run's `run/start`
/// event keeps both, redacted like every event. The header of a cassette
/// recorded live (`replay::RunCassette::create`) holds the same.
pub(crate) fn offered(engine: &Engine) -> (Value, Value) {
    let scenario = engine.scenario();
    let current = engine.current();
    let server = json!({
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
    });
    let upstreams: Map<String, Value> = current
        .catalogs
        .iter()
        .zip(&scenario.upstreams)
        .map(|(catalog, spec)| {
            (
                spec.name.clone(),
                serde_json::to_value(catalog).unwrap_or_default(),
            )
        })
        .collect();
    (server, Value::Object(upstreams))
}

/// The answer of a question the call ended before the client answered (the
/// live recording's words).
pub(crate) fn unanswered(method: &str) -> RecordedOutcome {
    RecordedOutcome::Error {
        code: i64::from(ProtocolError::INTERNAL_ERROR),
        message: format!("the call ended before the client answered {method}"),
        data: None,
    }
}

/// What the client answered a question, as a cassette keeps it: its
/// result, or its error worded as a JSON-RPC error.
pub(crate) fn answer_outcome(answer: &Result<Value, ClientError>) -> RecordedOutcome {
    match answer {
        Ok(result) => RecordedOutcome::Result(result.clone()),
        Err(e) => {
            let (code, message) = e.code_and_message();
            RecordedOutcome::Error {
                code: i64::from(code),
                message,
                data: None,
            }
        }
    }
}

/// The event (to the server) a question's answer is recorded as: a
/// response with the result, or an error `{"code", "message"}`, which
/// [`client_error`] reads back.
pub(crate) fn answer_event(answer: &RecordedOutcome) -> (EventKind, Value) {
    match answer {
        RecordedOutcome::Result(result) => (EventKind::Response, result.clone()),
        RecordedOutcome::Error { code, message, .. } => {
            (EventKind::Error, json!({"code": code, "message": message}))
        }
    }
}

/// The error a client answered a question with, from its event's payload
/// (`{"code", "message"}`; runs recorded before the code was kept have the
/// message alone).
fn client_error(payload: &Value) -> RecordedOutcome {
    RecordedOutcome::Error {
        code: payload
            .get("code")
            .and_then(Value::as_i64)
            .unwrap_or(i64::from(ProtocolError::INTERNAL_ERROR)),
        message: payload
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        data: None,
    }
}

/// The interactions of a run's events.
pub fn interactions(events: &[EventRecord]) -> Vec<Interaction> {
    struct Open {
        method: String,
        request_id: Option<String>,
        interaction: Interaction,
        /// Questions put to the client that it has not answered yet
        /// (indexes into the notifications).
        asked: Vec<usize>,
    }
    let mut open: Vec<Open> = Vec::new();
    let mut done: Vec<Interaction> = Vec::new();
    for event in events {
        let method = event.method.clone().unwrap_or_default();
        match (event.kind, event.direction) {
            (EventKind::Request, Direction::ToServer) if method != "initialize" => {
                let mut params = event.payload.clone();
                if let Value::Object(m) = &mut params {
                    m.remove("_meta");
                }
                open.push(Open {
                    method: method.clone(),
                    request_id: event.request_id.clone(),
                    interaction: Interaction {
                        seq: 0,
                        method,
                        params,
                        upstream: None,
                        virtual_time: format_time(event.virtual_time),
                        notifications: Vec::new(),
                        outcome: RecordedOutcome::Result(json!({})),
                    },
                    asked: Vec::new(),
                });
            }
            (EventKind::Notification, Direction::ToClient) => {
                if let Some(last) = open.last_mut() {
                    last.interaction
                        .notifications
                        .push(Notification::new(method, event.payload.clone()));
                }
            }
            (EventKind::Request, Direction::ToClient) => {
                if let Some(last) = open.last_mut() {
                    last.asked.push(last.interaction.notifications.len());
                    last.interaction.notifications.push(Notification {
                        method: method.clone(),
                        params: event.payload.clone(),
                        answer: Some(unanswered(&method)),
                    });
                }
            }
            (EventKind::Response | EventKind::Error, Direction::ToServer) => {
                // The answer to the latest question of this method that is
                // still waiting for one.
                let waiting = open.iter_mut().rev().find_map(|o| {
                    let at = o
                        .asked
                        .iter()
                        .rposition(|&i| o.interaction.notifications[i].method == method)?;
                    Some((o, at))
                });
                if let Some((o, at)) = waiting {
                    let index = o.asked.remove(at);
                    o.interaction.notifications[index].answer =
                        Some(if event.kind == EventKind::Response {
                            RecordedOutcome::Result(event.payload.clone())
                        } else {
                            client_error(&event.payload)
                        });
                }
            }
            (EventKind::Response | EventKind::Error, Direction::ToClient) => {
                let Some(at) = open
                    .iter()
                    .rposition(|o| o.method == method && o.request_id == event.request_id)
                else {
                    continue;
                };
                let mut finished = open.remove(at).interaction;
                let (outcome, upstream) = recorded_outcome(&event.payload);
                finished.outcome = outcome;
                finished.upstream = upstream;
                done.push(finished);
            }
            _ => {}
        }
    }
    for (i, interaction) in done.iter_mut().enumerate() {
        interaction.seq = i as u64 + 1;
    }
    done
}

/// The outcome as the store keeps it (`{"result": ...}` or `{"error": ...}`),
/// and the upstream that answered, when the event names one.
fn recorded_outcome(payload: &Value) -> (RecordedOutcome, Option<String>) {
    let upstream = payload
        .get(UPSTREAM_KEY)
        .and_then(Value::as_str)
        .map(str::to_owned);
    let read = match payload {
        Value::Object(map) if map.contains_key(UPSTREAM_KEY) => {
            let mut outcome = map.clone();
            outcome.remove(UPSTREAM_KEY);
            RecordedOutcome::from_json(&Value::Object(outcome))
        }
        _ => RecordedOutcome::from_json(payload),
    };
    let outcome = read.unwrap_or_else(|message| RecordedOutcome::Error {
        code: i64::from(crate::call::ProtocolError::INTERNAL_ERROR),
        message: format!("unreadable recorded outcome: {message}"),
        data: None,
    });
    (outcome, upstream)
}

/// The payload of a run's `run/start` event, if it has one.
fn run_start(events: &[EventRecord]) -> Option<&Value> {
    events
        .iter()
        .find(|e| e.kind == EventKind::Lifecycle && e.method.as_deref() == Some("run/start"))
        .map(|e| &e.payload)
}

/// A stored run as a cassette: the header the run would have recorded
/// live (from its `run/start` event), and its interactions.
pub fn cassette_of_run(run: &RunRecord, events: &[EventRecord]) -> Cassette {
    let start = run_start(events);
    let started = |key: &str| start.and_then(|p| p.get(key)).filter(|v| !v.is_null());
    // A run imported from a cassette keeps when that was recorded.
    let recorded_at = started("recorded_at")
        .and_then(Value::as_str)
        .map_or_else(|| format_time(run.started_at), str::to_owned);
    let mut header = Header::new(
        ScenarioRef {
            name: run.scenario_name.clone(),
            hash: run.scenario_hash.clone(),
        },
        run.seed,
        format_time(run.clock_start),
        recorded_at,
    );
    header.run_id = Some(run.id.clone());
    let interactions = interactions(events);
    // Runs recorded before `run/start` kept what they were offered show it
    // only through what the agent asked for.
    header.server = Some(match started("server") {
        Some(server) => server.clone(),
        None => server_of_run(events, &interactions),
    });
    if let Some(Value::Object(upstreams)) = started("upstreams") {
        header.upstreams = upstreams
            .iter()
            .map(|(name, catalog)| (name.clone(), catalog.clone()))
            .collect();
    }
    Cassette {
        header,
        interactions,
        path: None,
    }
}

/// How the server introduced itself and what it listed, as far as the
/// events of a run without them in its `run/start` show it: the `initialize` answer, and the last answer to each list
/// method (a list the agent never asked for stays empty), so that serving
/// the exported cassette offers what the agent saw.
fn server_of_run(events: &[EventRecord], interactions: &[Interaction]) -> Value {
    let initialized = events.iter().rev().find(|e| {
        e.kind == EventKind::Response
            && e.direction == Direction::ToClient
            && e.method.as_deref() == Some("initialize")
    });
    let result = initialized.and_then(|e| e.payload.get("result"));
    let info = json!({
        "name": result.and_then(|r| r.pointer("/serverInfo/name")),
        "version": result.and_then(|r| r.pointer("/serverInfo/version")),
        "instructions": result.and_then(|r| r.get("instructions")),
    });
    let listed = |method: &str| {
        interactions
            .iter()
            .rev()
            .find(|i| i.method == method)
            .and_then(|i| match &i.outcome {
                RecordedOutcome::Result(v) => Some(v.clone()),
                RecordedOutcome::Error { .. } => None,
            })
    };
    json!({
        "info": info,
        "listings": {
            "tools": listed("tools/list"),
            "resources": listed("resources/list"),
            "resource_templates": listed("resources/templates/list"),
            "prompts": listed("prompts/list"),
        },
    })
}

/// A cassette as a run and its events, without storing them (what `runs
/// show` displays for a cassette file). Times that do not parse fall back
/// to the clock start.
pub fn run_of_cassette(cassette: &Cassette, label: &str) -> (RunRecord, Vec<EventRecord>) {
    let parse = |value: &str| {
        DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .ok()
    };
    let header = &cassette.header;
    let clock_start = parse(&header.clock_start).unwrap_or_default();
    let recorded_at = parse(&header.recorded_at).unwrap_or(clock_start);
    let id = header.run_id.clone().unwrap_or_else(|| label.to_owned());
    // The header's offer and catalogs as a `run/start` event, as a run
    // recorded live keeps them, so an imported cassette exports whole.
    let mut start = json!({
        "scenario": header.scenario.name,
        "scenario_hash": header.scenario.hash,
        "seed": header.seed,
        "clock_start": header.clock_start,
        "transport": "cassette",
        "recorded_at": header.recorded_at,
    });
    if let Value::Object(m) = &mut start {
        if let Some(server) = &header.server {
            m.insert("server".to_owned(), server.clone());
        }
        if !header.upstreams.is_empty() {
            let upstreams: Map<String, Value> = header
                .upstreams
                .iter()
                .map(|(name, catalog)| (name.clone(), catalog.clone()))
                .collect();
            m.insert("upstreams".to_owned(), Value::Object(upstreams));
        }
    }
    let mut events = vec![EventRecord {
        run_id: id.clone(),
        tenant: DEFAULT_TENANT.to_owned(),
        seq: 1,
        kind: EventKind::Lifecycle,
        direction: Direction::Internal,
        method: Some("run/start".to_owned()),
        request_id: None,
        virtual_time: clock_start,
        wall_time: recorded_at,
        payload: start,
    }];
    for i in &cassette.interactions {
        let at = parse(&i.virtual_time).unwrap_or(clock_start);
        let mut push = |kind, direction, method: &str, request_id: Option<String>, payload| {
            events.push(EventRecord {
                run_id: id.clone(),
                tenant: DEFAULT_TENANT.to_owned(),
                seq: events.len() as u64 + 1,
                kind,
                direction,
                method: Some(method.to_owned()),
                request_id,
                virtual_time: at,
                wall_time: recorded_at,
                payload,
            });
        };
        let request_id = Some(i.seq.to_string());
        push(
            EventKind::Request,
            Direction::ToServer,
            &i.method,
            request_id.clone(),
            i.params.clone(),
        );
        for n in &i.notifications {
            match &n.answer {
                None => push(
                    EventKind::Notification,
                    Direction::ToClient,
                    &n.method,
                    None,
                    n.params.clone(),
                ),
                // A question to the client and its answer, as the live run
                // recorded them.
                Some(answer) => {
                    push(
                        EventKind::Request,
                        Direction::ToClient,
                        &n.method,
                        None,
                        n.params.clone(),
                    );
                    let (kind, payload) = answer_event(answer);
                    push(kind, Direction::ToServer, &n.method, None, payload);
                }
            }
        }
        let kind = match i.outcome {
            RecordedOutcome::Result(_) => EventKind::Response,
            RecordedOutcome::Error { .. } => EventKind::Error,
        };
        let mut outcome = i.outcome.to_json();
        if let (Some(upstream), Value::Object(m)) = (&i.upstream, &mut outcome) {
            m.insert(UPSTREAM_KEY.to_owned(), Value::from(upstream.as_str()));
        }
        push(kind, Direction::ToClient, &i.method, request_id, outcome);
    }
    let run = RunRecord {
        id,
        tenant: DEFAULT_TENANT.to_owned(),
        scenario_name: header.scenario.name.clone(),
        scenario_hash: header.scenario.hash.clone(),
        seed: header.seed,
        clock_start,
        started_at: recorded_at,
        transport: "cassette".to_owned(),
        labels: json!({"cassette": label}),
        status: RunStatus::Completed,
        ended_at: None,
        event_count: events.len() as u64,
    };
    (run, events)
}

/// Why a cassette could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the cassette's {what} `{value}` is not an RFC 3339 time")]
    Time { what: &'static str, value: String },
    #[error(transparent)]
    Store(#[from] sandbar_store::StoreError),
}

/// Stores a cassette as a run (ended, `completed`), and returns its id.
pub async fn import_cassette(
    store: &Store,
    cassette: &Cassette,
    label: &str,
) -> Result<String, ImportError> {
    let parse = |what: &'static str, value: &str| -> Result<DateTime<Utc>, ImportError> {
        DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ImportError::Time {
                what,
                value: value.to_owned(),
            })
    };
    let header = &cassette.header;
    let clock_start = parse("clock start", &header.clock_start)?;
    let id = new_run_id();
    store
        .create_run(&NewRun {
            id: id.clone(),
            tenant: DEFAULT_TENANT.to_owned(),
            scenario_name: header.scenario.name.clone(),
            scenario_hash: header.scenario.hash.clone(),
            seed: header.seed,
            clock_start,
            started_at: Utc::now(),
            transport: "cassette".to_owned(),
            labels: json!({"imported_from": label}),
        })
        .await?;
    let (_, events) = run_of_cassette(cassette, label);
    let mut last = None;
    for event in events {
        last = Some(store.append(NewEvent {
            run_id: id.clone(),
            tenant: event.tenant,
            seq: event.seq,
            kind: event.kind,
            direction: event.direction,
            method: event.method,
            request_id: event.request_id,
            virtual_time: event.virtual_time,
            wall_time: Utc::now(),
            payload: event.payload,
        }));
    }
    if let Some(ticket) = last {
        store.durable(ticket).await?;
    }
    store.end_run(&id, RunStatus::Completed, Utc::now()).await?;
    Ok(id)
}
