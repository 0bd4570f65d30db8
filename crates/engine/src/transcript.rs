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

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use sandbar_cassette::{Cassette, Header, Interaction, Notification, RecordedOutcome, ScenarioRef};
use sandbar_store::{
    Direction, EventKind, EventRecord, NewEvent, NewRun, RunRecord, RunStatus, Store,
};

use crate::run::{DEFAULT_TENANT, format_time, new_run_id};

/// The interactions of a run's events.
pub fn interactions(events: &[EventRecord]) -> Vec<Interaction> {
    struct Open {
        method: String,
        request_id: Option<String>,
        interaction: Interaction,
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
                });
            }
            (EventKind::Notification, Direction::ToClient) => {
                if let Some(last) = open.last_mut() {
                    last.interaction.notifications.push(Notification {
                        method,
                        params: event.payload.clone(),
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
                finished.outcome = recorded_outcome(&event.payload);
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

/// The outcome as the store keeps it (`{"result": ...}` or `{"error": ...}`).
fn recorded_outcome(payload: &Value) -> RecordedOutcome {
    RecordedOutcome::from_json(payload).unwrap_or_else(|message| RecordedOutcome::Error {
        code: i64::from(crate::call::ProtocolError::INTERNAL_ERROR),
        message: format!("unreadable recorded outcome: {message}"),
        data: None,
    })
}

/// A stored run as a cassette.
pub fn cassette_of_run(run: &RunRecord, events: &[EventRecord]) -> Cassette {
    let mut header = Header::new(
        ScenarioRef {
            name: run.scenario_name.clone(),
            hash: run.scenario_hash.clone(),
        },
        run.seed,
        format_time(run.clock_start),
        format_time(run.started_at),
    );
    header.run_id = Some(run.id.clone());
    let interactions = interactions(events);
    header.server = Some(server_of_run(events, &interactions));
    Cassette {
        header,
        interactions,
        path: None,
    }
}

/// How the server introduced itself and what it listed, as far as the
/// run shows it: the `initialize` answer, and the last answer to each list
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
    let mut events = Vec::new();
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
            push(
                EventKind::Notification,
                Direction::ToClient,
                &n.method,
                None,
                n.params.clone(),
            );
        }
        let kind = match i.outcome {
            RecordedOutcome::Result(_) => EventKind::Response,
            RecordedOutcome::Error { .. } => EventKind::Error,
        };
        push(
            kind,
            Direction::ToClient,
            &i.method,
            request_id,
            i.outcome.to_json(),
        );
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
