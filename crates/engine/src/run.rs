//! The engine and its runs: the pipeline every call walks.
//!
//! ```text
//! front ─► Run::handle(call) ─► clock ─► record request ─► route (stub) ─► record outcome ─► durable ─► front
//! ```
//!
//! An [`Engine`] holds one loaded scenario with its compiled templates and
//! the store; a [`Run`] is one session of an agent against it, with its own
//! twin state, virtual clock, counters and event sequence. A call's outcome
//! is handed back only once its events are durable, so anything an agent
//! was told is on disk.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use sandbar_redact::SharedRedactor;
use sandbar_scenario::{LogLevel, Scenario};
use sandbar_store::{Direction, EventKind, NewEvent, NewRun, RunStatus, Store, Ticket};

use crate::call::{Call, Method, Outcome, ProtocolError};
use crate::client::Client;
use crate::listing::Listings;
use crate::render::{RenderError, Renderer};
use crate::stub;
use crate::twin::Twin;

/// The tenant every run belongs to until tenants arrive.
pub const DEFAULT_TENANT: &str = "default";

/// Why the engine could not do something.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the scenario's templates do not compile: {0}")]
    Templates(#[from] RenderError),
    #[error("a scenario secret cannot be registered for redaction: {0}")]
    Secret(String),
    #[error("the store failed: {0}")]
    Store(#[from] sandbar_store::StoreError),
}

/// One loaded scenario, ready to run.
#[derive(Debug)]
pub struct Engine {
    pub(crate) scenario: Arc<Scenario>,
    pub(crate) renderer: Renderer,
    pub(crate) listings: Listings,
    /// The twin at its seed state; runs start from (and reset to) a clone,
    /// which shares its rows and its key indexes.
    seed_twin: Twin,
    /// Tools whose calls never talk to the client (no steps, no hang).
    quiet_tools: std::collections::HashSet<String>,
    store: Store,
    tenant: String,
}

impl Engine {
    /// Takes a scenario in: registers its secrets with the redactor (before
    /// anything about it can reach a sink) and compiles its templates.
    pub fn new(
        scenario: Arc<Scenario>,
        store: Store,
        redactor: &SharedRedactor,
    ) -> Result<Arc<Engine>, EngineError> {
        redactor
            .add_secrets(
                scenario
                    .secrets
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
            .map_err(|e| EngineError::Secret(e.to_string()))?;
        let renderer = Renderer::new(&scenario.templates)?;
        let listings = Listings::new(&scenario);
        let seed_twin = Twin::from_seed(&scenario.tables);
        let quiet_tools = scenario
            .tools
            .iter()
            .filter(|t| {
                !t.faults
                    .iter()
                    .any(|f| matches!(f.action, sandbar_scenario::FaultAction::Hang))
                    && t.rules.iter().all(rule_is_quiet)
            })
            .map(|t| t.name.clone())
            .collect();
        Ok(Arc::new(Engine {
            seed_twin,
            quiet_tools,
            scenario,
            renderer,
            listings,
            store,
            tenant: DEFAULT_TENANT.to_owned(),
        }))
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Whether every call of this tool is answered without a message to the
    /// client in between (no steps) and without waiting for the client to
    /// cancel (no hang fault). A front may then answer it in one piece.
    pub fn answers_without_client(&self, tool: &str) -> bool {
        self.quiet_tools.contains(tool)
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts a run; it is in the store when this returns.
    pub async fn start_run(self: &Arc<Self>, options: RunOptions) -> Result<Arc<Run>, EngineError> {
        let id = new_run_id();
        let seed = options.seed.unwrap_or(self.scenario.seed);
        let clock_start = self.scenario.clock.start;
        self.store
            .create_run(&NewRun {
                id: id.clone(),
                tenant: self.tenant.clone(),
                scenario_name: self.scenario.name.clone(),
                scenario_hash: self.scenario.hash.clone(),
                seed,
                clock_start,
                started_at: Utc::now(),
                transport: options.transport.clone(),
                labels: options.labels.clone(),
            })
            .await?;
        let run = Arc::new(Run {
            id,
            engine: self.clone(),
            seed,
            state: Mutex::new(RunState {
                now: clock_start,
                twin: self.seed_twin.clone(),
                tool_calls: HashMap::new(),
                log_level: None,
                subscriptions: BTreeSet::new(),
            }),
            sequence: Mutex::new(0),
            ended: AtomicBool::new(false),
        });
        run.record(
            EventKind::Lifecycle,
            Direction::Internal,
            Some("run/start"),
            None,
            json!({
                "scenario": self.scenario.name,
                "scenario_hash": self.scenario.hash,
                "seed": seed,
                "clock_start": format_time(clock_start),
                "transport": options.transport,
            }),
        );
        Ok(run)
    }
}

/// How a run starts.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `stdio` or `http`.
    pub transport: String,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Free-form labels kept with the run.
    pub labels: Value,
}

impl RunOptions {
    pub fn new(transport: &str) -> RunOptions {
        RunOptions {
            transport: transport.to_owned(),
            seed: None,
            labels: json!({}),
        }
    }
}

/// One session of an agent against a scenario.
#[derive(Debug)]
pub struct Run {
    id: String,
    pub(crate) engine: Arc<Engine>,
    pub(crate) seed: u64,
    state: Mutex<RunState>,
    /// Held while an event gets its number and enters the store's queue, so
    /// queue order is sequence order.
    sequence: Mutex<u64>,
    ended: AtomicBool,
}

/// What changes as a run goes on.
#[derive(Debug)]
pub(crate) struct RunState {
    pub now: DateTime<Utc>,
    pub twin: Twin,
    pub tool_calls: HashMap<String, u64>,
    pub log_level: Option<LogLevel>,
    pub subscriptions: BTreeSet<String>,
}

impl Run {
    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The seed this run draws from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The engine (and scenario) this run belongs to.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, RunState> {
        // A panic while holding the lock cannot leave the state half-written
        // in a way later calls would misread (writes are whole-value swaps),
        // so a poisoned lock is taken over rather than propagated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current virtual time.
    pub fn now(&self) -> DateTime<Utc> {
        self.state().now
    }

    /// The twin's tables as JSON.
    pub fn state_json(&self) -> Value {
        self.state().twin.to_json()
    }

    /// Puts the twin back to the scenario's seed data.
    pub fn reset(&self) {
        let twin = self.engine.seed_twin.clone();
        self.state().twin = twin;
        self.record(
            EventKind::Lifecycle,
            Direction::Internal,
            Some("run/reset"),
            None,
            json!({}),
        );
    }

    /// Walks a call through the pipeline and returns its outcome once the
    /// outcome is durable.
    pub async fn handle(&self, call: Call, client: &dyn Client) -> Outcome {
        {
            let step = self.engine.scenario.clock.step;
            let mut state = self.state();
            state.now += chrono::Duration::from_std(step).unwrap_or_default();
        }
        let method = call.method.name();
        let request_id = call.request_id.clone();
        let mut params = call.method.params();
        if let (Some(token), Value::Object(map)) = (&call.progress_token, &mut params) {
            map.insert("_meta".to_owned(), json!({"progressToken": token}));
        }
        self.record(
            EventKind::Request,
            Direction::ToServer,
            Some(method),
            request_id.clone(),
            params,
        );
        let outcome = self.route(&call, client).await;
        self.respond(method, request_id, outcome).await
    }

    /// Records an exchange a front answered itself (for example
    /// `initialize`, whose version negotiation belongs to the protocol SDK).
    pub async fn record_exchange(
        &self,
        method: &str,
        request_id: Option<String>,
        params: Value,
        outcome: Outcome,
    ) -> Outcome {
        self.record(
            EventKind::Request,
            Direction::ToServer,
            Some(method),
            request_id.clone(),
            params,
        );
        self.respond(method, request_id, outcome).await
    }

    /// Records a notification the client sent.
    pub fn record_client_notification(&self, method: &str, params: Value) {
        self.record(
            EventKind::Notification,
            Direction::ToServer,
            Some(method),
            None,
            params,
        );
    }

    async fn respond(&self, method: &str, request_id: Option<String>, outcome: Outcome) -> Outcome {
        let kind = match &outcome {
            Outcome::Result(_) => EventKind::Response,
            Outcome::Error(_) => EventKind::Error,
        };
        let ticket = self.record(
            kind,
            Direction::ToClient,
            Some(method),
            request_id,
            outcome.to_record(),
        );
        match self.engine.store.durable(ticket).await {
            Ok(()) => outcome,
            // Telling the agent something that is not on disk would break the
            // promise that every acknowledged event survives; say so instead.
            Err(e) => Outcome::Error(ProtocolError::internal(format!(
                "sandbar could not record this call: {e}"
            ))),
        }
    }

    async fn route(&self, call: &Call, client: &dyn Client) -> Outcome {
        {
            match &call.method {
                Method::Ping => Outcome::empty(),
                Method::ListTools => Outcome::Result(self.engine.listings.tools.clone()),
                Method::ListResources => Outcome::Result(self.engine.listings.resources.clone()),
                Method::ListResourceTemplates => {
                    Outcome::Result(self.engine.listings.resource_templates.clone())
                }
                Method::ListPrompts => Outcome::Result(self.engine.listings.prompts.clone()),
                Method::SetLogLevel(level) => {
                    self.state().log_level = Some(*level);
                    Outcome::empty()
                }
                Method::CallTool { name, arguments } => {
                    stub::call_tool(self, name, arguments.as_ref(), call, client).await
                }
                Method::ReadResource { uri } => stub::read_resource(self, uri),
                Method::GetPrompt { name, arguments } => stub::get_prompt(self, name, arguments),
                Method::Complete {
                    reference,
                    argument,
                    value,
                } => stub::complete(self, reference, argument, value),
                Method::Subscribe { uri } => {
                    if self.engine.scenario.resource(uri).is_none()
                        && self.engine.scenario.match_resource_template(uri).is_none()
                    {
                        return resource_not_found(uri);
                    }
                    self.state().subscriptions.insert(uri.clone());
                    Outcome::empty()
                }
                Method::Unsubscribe { uri } => {
                    self.state().subscriptions.remove(uri);
                    Outcome::empty()
                }
            }
        }
    }

    /// Appends an event; returns the ticket to wait on for durability.
    pub(crate) fn record(
        &self,
        kind: EventKind,
        direction: Direction,
        method: Option<&str>,
        request_id: Option<String>,
        payload: Value,
    ) -> Ticket {
        let virtual_time = self.now();
        let mut seq = self.sequence.lock().unwrap_or_else(|p| p.into_inner());
        *seq += 1;
        self.engine.store.append(NewEvent {
            run_id: self.id.clone(),
            tenant: self.engine.tenant.clone(),
            seq: *seq,
            kind,
            direction,
            method: method.map(str::to_owned),
            request_id,
            virtual_time,
            wall_time: Utc::now(),
            payload,
        })
    }

    /// Ends the run: records the end and marks it in the store. Calling it
    /// again does nothing.
    pub async fn finish(&self, status: RunStatus) -> Result<(), EngineError> {
        if self.ended.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let ticket = self.record(
            EventKind::Lifecycle,
            Direction::Internal,
            Some("run/end"),
            None,
            json!({"status": status.to_string()}),
        );
        self.engine.store.durable(ticket).await?;
        self.engine
            .store
            .end_run(&self.id, status, Utc::now())
            .await?;
        Ok(())
    }

    /// Whether [`Run::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }
}

/// A rule (and every branch under it) without steps.
fn rule_is_quiet(rule: &sandbar_scenario::Rule) -> bool {
    rule.steps.is_empty()
        && match &rule.response {
            sandbar_scenario::Response::Then(branches) => branches.iter().all(rule_is_quiet),
            _ => true,
        }
}

pub(crate) fn resource_not_found(uri: &str) -> Outcome {
    Outcome::Error(ProtocolError {
        code: ProtocolError::RESOURCE_NOT_FOUND,
        message: format!("resource not found: {uri}"),
        data: Some(json!({"uri": uri})),
    })
}

/// Virtual time as templates and events show it: RFC 3339 in UTC, with
/// fractional seconds only when there are some.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn new_run_id() -> String {
    // Time-ordered prefix so ids sort by start, random suffix so two nodes
    // never collide.
    let millis = Utc::now().timestamp_millis();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("run_{millis:012x}{}", &random[..12])
}
