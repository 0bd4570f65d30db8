//! The engine and its runs: the pipeline every call walks.
//!
//! ```text
//! front ─► Run::handle(call) ─► clock ─► record request ─► route ─► record outcome ─► durable ─► front
//!                                                          stub | live | record | replay
//! ```
//!
//! An [`Engine`] holds one loaded scenario with its compiled templates and
//! the store; a [`Run`] is one session of an agent against it, with its own
//! twin state, virtual clock, counters and event sequence. A call's outcome
//! is handed back only once its events are durable, so anything an agent
//! was told is on disk.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use sandbar_cassette::{Cassette, Replayer};
use sandbar_redact::SharedRedactor;
use sandbar_scenario::{LogLevel, MissPolicy, Mode, Scenario};
use sandbar_store::{Direction, EventKind, NewEvent, NewRun, RunStatus, Store, Ticket};

use crate::access::{AuthError, Principal};
use crate::call::{Call, CompletionRef, Method, Outcome, ProtocolError};
use crate::client::Client;
use crate::forward::{self, Relay};
use crate::listing::Listings;
use crate::offer::{self, ItemRoute, Offer};
use crate::privacy;
use crate::render::{RenderError, Renderer};
use crate::replay::{self, Replayed, RunCassette};
use crate::stub;
use crate::twin::Twin;
use crate::upstream::{Catalog, Upstream, UpstreamError, UpstreamSession};

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
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    Setup(String),
    #[error(
        "the token is bound to run {0}, which has already been started; issue a new token for a new run"
    )]
    RunTaken(String),
}

/// What an engine is given besides its scenario.
#[derive(Debug, Default, Clone)]
pub struct EngineOptions {
    /// One per upstream the scenario declares, in its order.
    pub upstreams: Vec<Arc<dyn Upstream>>,
    /// The recording replayed items answer from (and, in replay-only
    /// mode, every call).
    pub cassette: Option<Arc<Cassette>>,
    /// Answer every call from the cassette: serving a recording alone.
    pub replay_only: bool,
    /// Where runs write their cassettes, when they record.
    pub record_dir: Option<PathBuf>,
    /// Record every interaction of every run (not only items in `record`
    /// mode).
    pub record_everything: bool,
}

/// One loaded scenario, ready to run.
#[derive(Debug)]
pub struct Engine {
    pub(crate) scenario: Arc<Scenario>,
    pub(crate) renderer: Renderer,
    /// What is offered now; rebuilt when an upstream's lists change.
    current: std::sync::RwLock<Arc<Current>>,
    pub(crate) upstreams: Vec<Arc<dyn Upstream>>,
    pub(crate) cassette: Option<Arc<Cassette>>,
    replay_only: bool,
    record_dir: Option<PathBuf>,
    record_everything: bool,
    /// Whether runs write a cassette.
    records: bool,
    pub(crate) redactor: SharedRedactor,
    /// The twin at its seed state; runs start from (and reset to) a clone,
    /// which shares its rows and its key indexes.
    seed_twin: Twin,
    /// Tools whose calls never talk to the client (no steps, no hang).
    quiet_tools: std::collections::HashSet<String>,
    /// The scenario's canaries, if it plants any.
    pub(crate) canaries: Option<crate::canary::Canaries>,
    store: Store,
    tenant: String,
    /// Recent calls of each token, for token rates.
    pub(crate) token_rates: crate::access::TokenRates,
    /// Upstreams left out of the offer because they could not be listed,
    /// by index, each with the attempt to list it again under way, if one
    /// is (it says `true` when it ends).
    down: Mutex<HashMap<usize, Option<tokio::sync::watch::Receiver<bool>>>>,
}

/// How long a run that starts waits for upstreams that were down to be
/// listed again; an attempt still going then goes on, and its upstream's
/// items are offered from when it succeeds.
const RELIST_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl Engine {
    /// Takes a scenario without upstreams in: registers its secrets with
    /// the redactor (before anything about it can reach a sink) and
    /// compiles its templates.
    pub fn new(
        scenario: Arc<Scenario>,
        store: Store,
        redactor: &SharedRedactor,
    ) -> Result<Arc<Engine>, EngineError> {
        if !scenario.upstreams.is_empty() {
            return Err(EngineError::Setup(
                "this scenario declares upstreams; build its engine with Engine::build".to_owned(),
            ));
        }
        Engine::assemble(
            scenario,
            store,
            redactor,
            EngineOptions::default(),
            Vec::new(),
        )
    }

    /// Takes a scenario in with its upstreams: lists what each upstream
    /// offers (from the cassette for upstreams in `replay` mode, which are
    /// never contacted), then builds the engine.
    pub async fn build(
        scenario: Arc<Scenario>,
        store: Store,
        redactor: &SharedRedactor,
        options: EngineOptions,
    ) -> Result<Arc<Engine>, EngineError> {
        // Secrets first: upstream errors may quote a header.
        register_secrets(&scenario, redactor)?;
        if options.upstreams.len() != scenario.upstreams.len() {
            return Err(EngineError::Setup(format!(
                "the scenario declares {} upstreams but {} were given",
                scenario.upstreams.len(),
                options.upstreams.len()
            )));
        }
        let mut catalogs = Vec::with_capacity(scenario.upstreams.len());
        // Upstreams that cannot be listed now are left out of the offer
        // rather than stopping the whole sandbox; each run that starts
        // tries them again (see `list_upstreams_down`).
        let mut down = Vec::new();
        for (i, spec) in scenario.upstreams.iter().enumerate() {
            let catalog = if options.replay_only
                || offer::upstream_mode(&scenario, i) == Mode::Replay
            {
                let recorded = options
                    .cassette
                    .as_ref()
                    .and_then(|c| c.header.upstreams.get(&spec.name));
                match recorded {
                    Some(v) => serde_json::from_value::<Catalog>(v.clone()).map_err(|e| {
                        EngineError::Setup(format!(
                            "the cassette's catalog of upstream {} is malformed: {e}",
                            spec.name
                        ))
                    })?,
                    None => {
                        return Err(EngineError::Setup(format!(
                            "upstream {} is in replay mode but the cassette has no catalog of it; record a run with it first",
                            spec.name
                        )));
                    }
                }
            } else {
                match list_upstream(options.upstreams[i].as_ref()).await {
                    Ok(catalog) => catalog,
                    Err(e) => {
                        down.push((i, e));
                        Catalog::default()
                    }
                }
            };
            catalogs.push(catalog);
        }
        let engine = Engine::assemble(scenario, store, redactor, options, catalogs)?;
        if down.is_empty() {
            return Ok(engine);
        }
        let offer = &engine.current().offer;
        if offer.tools.is_empty()
            && offer.prompts.is_empty()
            && offer.resources.is_empty()
            && offer.resource_templates.is_empty()
        {
            let reasons: Vec<String> = down.iter().map(|(_, e)| e.to_string()).collect();
            return Err(EngineError::Setup(format!(
                "{}; the scenario offers nothing else, so there is nothing to serve",
                reasons.join("; ")
            )));
        }
        let mut left_out = engine.down.lock().unwrap_or_else(|p| p.into_inner());
        for (i, error) in down {
            engine.upstreams[i].unavailable(&error);
            left_out.insert(i, None);
        }
        drop(left_out);
        Ok(engine)
    }

    /// Tries again to list the upstreams that could not be listed, and
    /// offers the items of those that answer. One attempt per upstream at a
    /// time, shared by the runs that start meanwhile; the run waits for it
    /// at most [`RELIST_WAIT`].
    async fn list_upstreams_down(self: &Arc<Self>) {
        let attempts: Vec<tokio::sync::watch::Receiver<bool>> = {
            let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
            if down.is_empty() {
                return;
            }
            down.iter_mut()
                .map(|(&index, attempt)| {
                    attempt
                        .get_or_insert_with(|| self.list_again(index))
                        .clone()
                })
                .collect()
        };
        let ended = async {
            for mut attempt in attempts {
                let _ = attempt.wait_for(|ended| *ended).await;
            }
        };
        let _ = tokio::time::timeout(RELIST_WAIT, ended).await;
    }

    /// Starts listing upstream `index` again; the receiver says when the
    /// attempt has ended.
    fn list_again(self: &Arc<Self>, index: usize) -> tokio::sync::watch::Receiver<bool> {
        let (ended, receiver) = tokio::sync::watch::channel(false);
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let upstream = &engine.upstreams[index];
            let listed = match list_upstream(upstream.as_ref()).await {
                Ok(catalog) => engine.refresh_catalog(index, catalog).map_err(|message| {
                    UpstreamError::new(
                        upstream.name(),
                        crate::upstream::UpstreamErrorKind::Protocol,
                        message,
                    )
                }),
                Err(e) => Err(e),
            };
            let mut down = engine.down.lock().unwrap_or_else(|p| p.into_inner());
            match listed {
                Ok(()) => {
                    down.remove(&index);
                    upstream.available_again();
                }
                // Still down; the next run to start tries again.
                Err(_) => {
                    if let Some(attempt) = down.get_mut(&index) {
                        *attempt = None;
                    }
                }
            }
            drop(down);
            let _ = ended.send(true);
        });
        receiver
    }

    fn assemble(
        scenario: Arc<Scenario>,
        store: Store,
        redactor: &SharedRedactor,
        options: EngineOptions,
        catalogs: Vec<Catalog>,
    ) -> Result<Arc<Engine>, EngineError> {
        register_secrets(&scenario, redactor)?;
        let renderer = Renderer::new(&scenario.templates)?;
        let offer =
            Offer::new(&scenario, &catalogs).map_err(|e| EngineError::Setup(e.to_string()))?;
        let listings = match (&options.cassette, options.replay_only) {
            (Some(cassette), true) => Listings::recorded(cassette),
            _ => offer.listings.clone(),
        };
        let records = options.record_everything || offer.any_recorded();
        let seed_twin = Twin::from_seed(&scenario.tables);
        // Tools whose calls never talk to the client: stubs without steps or
        // hang faults, and replayed tools whose recordings carry no
        // notifications nor a cancelled call (which waits for the client's
        // cancel) and whose misses fail (a miss is a tool error).
        let talks_in_recording = |name: &str| {
            options.cassette.as_ref().is_none_or(|c| {
                c.interactions.iter().any(|i| {
                    i.tool() == Some(name)
                        && (!i.notifications.is_empty() || i.outcome.is_cancelled())
                })
            })
        };
        let mut quiet_tools: std::collections::HashSet<String> = offer
            .tools
            .iter()
            .filter(|(name, route)| {
                if options.replay_only {
                    return !talks_in_recording(name);
                }
                match route.mode {
                    Mode::Stub => scenario.tool(name).is_some_and(|t| {
                        !t.faults
                            .iter()
                            .any(|f| matches!(f.action, sandbar_scenario::FaultAction::Hang))
                            && t.rules.iter().all(rule_is_quiet)
                    }),
                    Mode::Replay => route.miss == MissPolicy::Fail && !talks_in_recording(name),
                    Mode::Live | Mode::Record => false,
                }
            })
            .map(|(name, _)| name.clone())
            .collect();
        if options.replay_only
            && let Some(tools) = listings.tools.get("tools").and_then(Value::as_array)
        {
            quiet_tools.extend(
                tools
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .filter(|name| !talks_in_recording(name))
                    .map(str::to_owned),
            );
        }
        // A call that may wait for a person's approval tells the client so.
        if let Some(policy) = &scenario.policy {
            quiet_tools.retain(|tool| {
                !policy.rules.iter().any(|rule| {
                    matches!(rule.action, sandbar_scenario::PolicyAction::Approve)
                        && rule.tools.matches(tool)
                })
            });
        }
        let canaries = crate::canary::Canaries::new(&scenario.canaries, scenario.block_leaks);
        Ok(Arc::new(Engine {
            seed_twin,
            quiet_tools,
            canaries,
            scenario,
            renderer,
            current: std::sync::RwLock::new(Arc::new(Current {
                offer,
                listings,
                catalogs,
            })),
            records,
            upstreams: options.upstreams,
            cassette: options.cassette,
            replay_only: options.replay_only,
            record_dir: options.record_dir,
            record_everything: options.record_everything,
            redactor: redactor.clone(),
            store,
            tenant: DEFAULT_TENANT.to_owned(),
            token_rates: crate::access::TokenRates::default(),
            down: Mutex::new(HashMap::new()),
        }))
    }

    /// What is offered now.
    pub(crate) fn current(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes in what an upstream lists now (after it said its lists
    /// changed) and rebuilds the offer. Modes and routes of declared items
    /// do not change; upstream items come and go.
    pub(crate) fn refresh_catalog(&self, index: usize, catalog: Catalog) -> Result<(), String> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut catalogs = current.catalogs.clone();
        let Some(slot) = catalogs.get_mut(index) else {
            return Err(format!("no upstream number {index}"));
        };
        if *slot == catalog {
            return Ok(());
        }
        *slot = catalog;
        let offer = Offer::new(&self.scenario, &catalogs).map_err(|e| e.to_string())?;
        let listings = if self.replay_only {
            current.listings.clone()
        } else {
            offer.listings.clone()
        };
        *current = Arc::new(Current {
            offer,
            listings,
            catalogs,
        });
        Ok(())
    }

    /// Whether the scenario has upstreams (whose lists may change).
    pub fn has_upstreams(&self) -> bool {
        !self.scenario.upstreams.is_empty()
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

    /// Whether a call of `tool` goes to its upstream (`live` or `record`
    /// mode): it then talks to the client only if the upstream does.
    pub fn forwards(&self, tool: &str) -> bool {
        self.current()
            .offer
            .tools
            .get(tool)
            .is_some_and(|route| route.upstream.is_some() && route.mode.forwards())
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The tenant this engine's runs belong to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Resolves a bearer value to the token it stands for: known, not
    /// revoked, not expired, and issued for this tenant and scenario.
    pub async fn authenticate(&self, bearer: &str) -> Result<Arc<Principal>, AuthError> {
        crate::access::authenticate(&self.store, &self.tenant, &self.scenario.name, bearer)
            .await
            .map(Arc::new)
    }

    /// Starts a run; it is in the store when this returns.
    pub async fn start_run(self: &Arc<Self>, options: RunOptions) -> Result<Arc<Run>, EngineError> {
        self.list_upstreams_down().await;
        // A token bound to one run names it; its first session starts it.
        let bound = options.principal.as_ref().and_then(|p| p.run.clone());
        let id = bound.clone().unwrap_or_else(new_run_id);
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
            .await
            .map_err(|e| match (e, bound) {
                // The store keeps run ids unique, on every node.
                (sandbar_store::StoreError::DuplicateRun { .. }, Some(run)) => {
                    EngineError::RunTaken(run)
                }
                (e, _) => EngineError::Store(e),
            })?;
        let matching = self.current().offer.matching.clone();
        let replayer = self.cassette.as_ref().map(|c| {
            replay::RunReplayer(
                Replayer::new(c.clone(), matching.clone()).skip_methods(&LOCAL_METHODS),
            )
        });
        let cassette = match (&self.record_dir, self.records) {
            (Some(dir), true) => Some(
                RunCassette::create(self, dir, self.record_everything, &id, seed).map_err(|e| {
                    EngineError::Setup(format!("cannot start the run's cassette: {e}"))
                })?,
            ),
            _ => None,
        };
        let run = Arc::new(Run {
            replayer,
            cassette,
            upstream_sessions: tokio::sync::Mutex::new(HashMap::new()),
            pseudonyms: Mutex::new(privacy::Pseudonyms::default()),
            policy: self
                .scenario
                .policy
                .clone()
                .map(crate::policy::PolicyState::new),
            history: Mutex::new(crate::policy::History::default()),
            principal: options.principal.clone(),
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
            finishing: tokio::sync::Mutex::new(false),
            in_flight: Mutex::new(InFlight::default()),
            settled: tokio::sync::Notify::new(),
        });
        // What the run is offered, as its cassette's header says it, so
        // that the stored run exports as that cassette (`transcript.rs`).
        let (server, upstreams) = crate::transcript::offered(self);
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
                "token": run.principal.as_ref().map(|p| &p.token_id),
                "server": server,
                "upstreams": upstreams,
            }),
        );
        Ok(run)
    }
}

/// The offer, its list results and the catalogs it was built from.
#[derive(Debug)]
pub(crate) struct Current {
    pub offer: Offer,
    /// The list results agents read (the offer's, or a recording's).
    pub listings: Listings,
    /// What each upstream listed (or listed when it was recorded).
    pub catalogs: Vec<Catalog>,
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
    /// The token the run's agent authenticated with, if it did.
    pub principal: Option<Arc<Principal>>,
}

impl RunOptions {
    pub fn new(transport: &str) -> RunOptions {
        RunOptions {
            transport: transport.to_owned(),
            seed: None,
            labels: json!({}),
            principal: None,
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
    /// Held while the run is being ended; true once it has been.
    finishing: tokio::sync::Mutex<bool>,
    /// The calls being handled, so that ending the run can cancel them and
    /// wait for their last events (see [`Run::finish`]).
    in_flight: Mutex<InFlight>,
    /// Told when the last call in flight has ended.
    settled: tokio::sync::Notify,
    /// Hands out recorded answers, when the engine has a cassette.
    pub(crate) replayer: Option<replay::RunReplayer>,
    /// The cassette this run writes, when it records.
    cassette: Option<RunCassette>,
    /// Open upstream connections, by upstream index.
    pub(crate) upstream_sessions: tokio::sync::Mutex<HashMap<usize, Arc<dyn UpstreamSession>>>,
    /// The pseudonyms this run showed the agent, and what they stand for.
    pseudonyms: Mutex<privacy::Pseudonyms>,
    /// The token the agent authenticated with, if it did.
    pub(crate) principal: Option<Arc<Principal>>,
    /// The scenario's policy with this run's rate windows, if it has one.
    pub(crate) policy: Option<crate::policy::PolicyState>,
    /// The run's earlier tool calls, as policies see them.
    pub(crate) history: Mutex<crate::policy::History>,
}

/// Methods Sandbar always answers itself, even when serving a recording.
const LOCAL_METHODS: [&str; 9] = [
    "initialize",
    "ping",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "prompts/list",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

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

    /// The token the run's agent authenticated with, if it did.
    pub fn principal(&self) -> Option<&Arc<Principal>> {
        self.principal.as_ref()
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
        let _in_flight = InFlightCall::enter(self, &call.cancel);
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
        let relay = Relay::new(self, client);
        let blocked = match &call.method {
            Method::CallTool {
                name,
                arguments: Some(arguments),
            } if self.engine.canaries.is_some() => crate::canary::check(
                self,
                &Value::Object(arguments.clone()),
                "arguments",
                method,
                Some(name),
                request_id.clone(),
            ),
            _ => None,
        };
        let blocked = match (blocked, &call.method) {
            (None, Method::CallTool { name, arguments }) if self.gated() => self
                .admit_call(name, arguments.as_ref(), &call, client)
                .await
                .err(),
            (None, _) => match &self.principal {
                // Requests that are not tool calls spend no budget, but a
                // revoked or expired token gets nothing more.
                Some(principal) => self.token_alive(principal).await.err(),
                None => None,
            },
            (blocked, _) => blocked,
        };
        let admitted = blocked.is_none();
        let routed = match blocked {
            Some(refusal) if matches!(call.method, Method::CallTool { .. }) => {
                Routed::local(Outcome::tool_error(refusal))
            }
            Some(refusal) => Routed::local(Outcome::Error(ProtocolError::forbidden(refusal))),
            None => self.route(&call, &relay).await,
        };
        if let Method::CallTool { name, arguments } = &call.method
            && self.policy.is_some()
            && admitted
        {
            let error = match &routed.outcome {
                Outcome::Error(_) => true,
                Outcome::Result(v) => v.get("isError") == Some(&Value::Bool(true)),
            };
            let empty = serde_json::Map::new();
            self.history.lock().unwrap_or_else(|p| p.into_inner()).push(
                name,
                arguments.as_ref().unwrap_or(&empty),
                error,
            );
        }
        if let Some(cassette) = &self.cassette
            && (cassette.everything || routed.mode == Some(Mode::Record))
        {
            cassette.append(
                self,
                replay::interaction(
                    method,
                    call.method.params(),
                    routed.upstream.clone(),
                    format_time(self.now()),
                    relay.take_notifications(),
                    &routed.outcome,
                ),
            );
        }
        self.respond(
            method,
            request_id,
            routed.outcome,
            routed.upstream.as_deref(),
        )
        .await
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
        self.respond(method, request_id, outcome, None).await
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

    /// Records the outcome (with the upstream that answered, if one did)
    /// and returns it once it is durable.
    async fn respond(
        &self,
        method: &str,
        request_id: Option<String>,
        outcome: Outcome,
        upstream: Option<&str>,
    ) -> Outcome {
        let kind = match &outcome {
            Outcome::Result(_) => EventKind::Response,
            Outcome::Error(_) => EventKind::Error,
        };
        let mut payload = outcome.to_record();
        if let (Some(upstream), Value::Object(m)) = (upstream, &mut payload) {
            m.insert(
                crate::transcript::UPSTREAM_KEY.to_owned(),
                Value::from(upstream),
            );
        }
        let store = &self.engine.store;
        let waiting = self.append_with(
            kind,
            Direction::ToClient,
            Some(method),
            request_id,
            payload,
            |event| store.append_waited(event),
        );
        match waiting.durable().await {
            Ok(()) => outcome,
            // Telling the agent something that is not on disk would break the
            // promise that every acknowledged event survives; say so instead.
            Err(e) => Outcome::Error(ProtocolError::internal(format!(
                "sandbar could not record this call: {e}"
            ))),
        }
    }

    async fn route(&self, call: &Call, client: &Relay<'_>) -> Routed {
        let engine = &self.engine;
        let current = engine.current();
        let local = |outcome| Routed::local(outcome);
        match &call.method {
            Method::Ping => local(Outcome::empty()),
            Method::ListTools => {
                local(Outcome::Result(self.visible_tools(&current.listings.tools)))
            }
            Method::ListResources => local(Outcome::Result(current.listings.resources.clone())),
            Method::ListResourceTemplates => {
                local(Outcome::Result(current.listings.resource_templates.clone()))
            }
            Method::ListPrompts => local(Outcome::Result(current.listings.prompts.clone())),
            Method::SetLogLevel(level) => {
                self.state().log_level = Some(*level);
                local(Outcome::empty())
            }
            _ if engine.replay_only => {
                let outcome = self
                    .replay_or(call, client, MissPolicy::Fail, || async {
                        Outcome::empty()
                    })
                    .await;
                Routed::with_mode(outcome, Mode::Replay, None)
            }
            Method::CallTool { name, arguments } => {
                self.call_tool(name, arguments.as_ref(), call, client).await
            }
            Method::ReadResource { uri } => {
                if engine.scenario.resource(uri).is_some()
                    || engine.scenario.match_resource_template(uri).is_some()
                {
                    return local(stub::read_resource(self, uri));
                }
                match current.offer.resource_route(uri) {
                    Some(route) => {
                        let params = json!({"uri": uri});
                        self.upstream_item(call, client, route, "resources/read", params)
                            .await
                    }
                    None => local(resource_not_found(uri)),
                }
            }
            Method::GetPrompt { name, arguments } => {
                if engine.scenario.prompt(name).is_some() {
                    return local(stub::get_prompt(self, name, arguments));
                }
                match current.offer.prompts.get(name) {
                    Some(route) => {
                        let params = json!({"name": route.name, "arguments": arguments});
                        self.upstream_item(call, client, route, "prompts/get", params)
                            .await
                    }
                    None => local(stub::get_prompt(self, name, arguments)),
                }
            }
            Method::Complete {
                reference,
                argument,
                value,
            } => {
                let upstream_ref = match reference {
                    CompletionRef::Prompt(name) if engine.scenario.prompt(name).is_none() => {
                        current
                            .offer
                            .prompts
                            .get(name)
                            .map(|r| (r, json!({"type": "ref/prompt", "name": r.name})))
                    }
                    CompletionRef::ResourceTemplate(uri)
                        if !engine
                            .scenario
                            .resource_templates
                            .iter()
                            .any(|t| &t.uri.template == uri) =>
                    {
                        current
                            .offer
                            .resource_templates
                            .iter()
                            .find(|(_, r)| &r.name == uri)
                            .map(|(_, r)| (r, json!({"type": "ref/resource", "uri": uri})))
                    }
                    _ => None,
                };
                match upstream_ref {
                    Some((route, reference)) => {
                        let params = json!({
                            "ref": reference,
                            "argument": {"name": argument, "value": value},
                        });
                        self.upstream_item(call, client, route, "completion/complete", params)
                            .await
                    }
                    None => local(stub::complete(self, reference, argument, value)),
                }
            }
            Method::Subscribe { uri } => {
                if engine.scenario.resource(uri).is_none()
                    && engine.scenario.match_resource_template(uri).is_none()
                {
                    if let Some(route) = current.offer.resource_route(uri)
                        && route.mode.forwards()
                    {
                        let routed = self
                            .upstream_item(
                                call,
                                client,
                                route,
                                "resources/subscribe",
                                json!({"uri": uri}),
                            )
                            .await;
                        if matches!(routed.outcome, Outcome::Result(_)) {
                            self.state().subscriptions.insert(uri.clone());
                        }
                        return routed;
                    }
                    if current.offer.resource_route(uri).is_none() {
                        return local(resource_not_found(uri));
                    }
                }
                self.state().subscriptions.insert(uri.clone());
                local(Outcome::empty())
            }
            Method::Unsubscribe { uri } => {
                let was = self.state().subscriptions.remove(uri);
                if was
                    && let Some(route) = current.offer.resource_route(uri)
                    && route.mode.forwards()
                    && engine.scenario.resource(uri).is_none()
                {
                    return self
                        .upstream_item(
                            call,
                            client,
                            route,
                            "resources/unsubscribe",
                            json!({"uri": uri}),
                        )
                        .await;
                }
                local(Outcome::empty())
            }
        }
    }

    async fn call_tool(
        &self,
        name: &str,
        arguments: Option<&serde_json::Map<String, Value>>,
        call: &Call,
        client: &Relay<'_>,
    ) -> Routed {
        let current = self.engine.current();
        let Some(route) = current.offer.tools.get(name) else {
            return Routed::local(Outcome::Error(ProtocolError::invalid_params(format!(
                "unknown tool: {name}"
            ))));
        };
        let upstream_name = route
            .upstream
            .as_ref()
            .map(|(u, _)| self.engine.scenario.upstreams[*u].name.clone());
        let forward = || async {
            match &route.upstream {
                Some((u, tool)) => {
                    let mut params = json!({"name": tool});
                    if let Some(args) = arguments {
                        params["arguments"] = Value::Object(args.clone());
                    }
                    forward::forward(self, *u, "tools/call", params, route.mask, call, client).await
                }
                None => Outcome::tool_error(format!("tool {name} has no upstream to forward to")),
            }
        };
        let stub = || async {
            if route.declared {
                stub::call_tool(self, name, arguments, call, client).await
            } else {
                Outcome::tool_error(format!(
                    "tool {name} has no stub: declare it under `tools` to answer it without its upstream"
                ))
            }
        };
        let outcome = match route.mode {
            Mode::Stub => stub().await,
            Mode::Live | Mode::Record => forward().await,
            Mode::Replay => match route.miss {
                MissPolicy::Fail => {
                    self.replay_or(call, client, MissPolicy::Fail, || async {
                        Outcome::empty()
                    })
                    .await
                }
                MissPolicy::Stub => self.replay_or(call, client, MissPolicy::Stub, stub).await,
                MissPolicy::Live => {
                    self.replay_or(call, client, MissPolicy::Live, forward)
                        .await
                }
            },
        };
        let upstream = match route.mode {
            Mode::Stub => None,
            _ => upstream_name,
        };
        Routed::with_mode(outcome, route.mode, upstream)
    }

    /// A call to an upstream's resource, prompt or completion, in its mode.
    async fn upstream_item(
        &self,
        call: &Call,
        client: &Relay<'_>,
        route: &ItemRoute,
        method: &str,
        params: Value,
    ) -> Routed {
        let (upstream, mode, mask) = (route.upstream, route.mode, route.mask);
        let name = self.engine.scenario.upstreams[upstream].name.clone();
        let forward =
            || forward::forward(self, upstream, method, params.clone(), mask, call, client);
        let outcome = match mode {
            Mode::Replay => {
                let miss = self.engine.scenario.replay.miss;
                match miss {
                    MissPolicy::Live => self.replay_or(call, client, miss, forward).await,
                    _ => {
                        self.replay_or(call, client, MissPolicy::Fail, || async {
                            Outcome::empty()
                        })
                        .await
                    }
                }
            }
            _ => forward().await,
        };
        Routed::with_mode(outcome, mode, Some(name))
    }

    /// Answers from the cassette; on a miss records the divergence and
    /// applies the policy (`fallback` answers for `stub` and `live`).
    async fn replay_or<F, Fut>(
        &self,
        call: &Call,
        client: &Relay<'_>,
        policy: MissPolicy,
        fallback: F,
    ) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Outcome>,
    {
        let method = call.method.name();
        let params = call.method.params();
        match replay::answer(self, method, params, client, call).await {
            Replayed::Hit(outcome) => outcome,
            Replayed::NoCassette => Outcome::Error(ProtocolError::internal(
                "this call is in replay mode but Sandbar was given no cassette",
            )),
            Replayed::Miss(miss) => {
                let failed = replay::diverge(self, &miss, policy.as_str(), call.request_id.clone());
                match policy {
                    MissPolicy::Fail => failed,
                    MissPolicy::Stub | MissPolicy::Live => fallback().await,
                }
            }
        }
    }

    pub(crate) fn pseudonyms(&self) -> std::sync::MutexGuard<'_, privacy::Pseudonyms> {
        self.pseudonyms.lock().unwrap_or_else(|p| p.into_inner())
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
        let store = &self.engine.store;
        self.append_with(kind, direction, method, request_id, payload, |event| {
            store.append(event)
        })
    }

    /// Numbers and stamps the run's next event and hands it to `append`,
    /// still under the lock that numbers events, so that the store queues
    /// a run's events in the order of their numbers.
    fn append_with<T>(
        &self,
        kind: EventKind,
        direction: Direction,
        method: Option<&str>,
        request_id: Option<String>,
        payload: Value,
        append: impl FnOnce(NewEvent) -> T,
    ) -> T {
        let virtual_time = self.now();
        let mut seq = self.sequence.lock().unwrap_or_else(|p| p.into_inner());
        *seq += 1;
        append(NewEvent {
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
        // A second caller waits until the first has finished, so "finish
        // returned" always means "the run is ended and on disk" (a front's
        // shutdown and a session's drop may both end the same run).
        let mut finished = self.finishing.lock().await;
        if *finished {
            return Ok(());
        }
        *finished = true;
        self.ended.store(true, Ordering::SeqCst);
        self.settle().await;
        let ticket = self.record(
            EventKind::Lifecycle,
            Direction::Internal,
            Some("run/end"),
            None,
            json!({"status": status.to_string()}),
        );
        if let Some(cassette) = &self.cassette
            && let Some(result) = cassette.finish()
        {
            let payload = match result {
                Ok(path) => json!({"path": path.display().to_string()}),
                Err(message) => json!({"message": message}),
            };
            self.record(
                EventKind::Lifecycle,
                Direction::Internal,
                Some("cassette/written"),
                None,
                payload,
            );
        }
        let sessions: Vec<_> = self.upstream_sessions.lock().await.drain().collect();
        for (_, session) in sessions {
            session.close().await;
        }
        self.engine.store.durable(ticket).await?;
        self.engine
            .store
            .end_run(&self.id, status, Utc::now())
            .await?;
        Ok(())
    }

    /// The path of the cassette this run writes, if it records.
    pub fn cassette_path(&self) -> Option<PathBuf> {
        let cassette = self.cassette.as_ref()?;
        let writer = cassette.writer.lock().unwrap_or_else(|p| p.into_inner());
        writer.as_ref().map(|w| w.path().to_path_buf())
    }

    /// Whether [`Run::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Cancels the calls still in flight and waits until they have recorded
    /// how they ended, so that `run/end` is the run's last event. Calls
    /// that do not end within [`SETTLE_LIMIT`] of their cancellation are
    /// not waited for longer (ending the run never hangs); a `run/unsettled`
    /// event says how many were left.
    async fn settle(&self) {
        let settled = self.settled.notified();
        let calls: Vec<tokio_util::sync::CancellationToken> = {
            let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if in_flight.calls.is_empty() {
                return;
            }
            in_flight.calls.values().cloned().collect()
        };
        for call in calls {
            call.cancel();
        }
        if tokio::time::timeout(SETTLE_LIMIT, settled).await.is_err() {
            // Said in the run, just before its end.
            let left = self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .calls
                .len();
            self.record(
                EventKind::Lifecycle,
                Direction::Internal,
                Some("run/unsettled"),
                None,
                json!({"calls": left, "waited_ms": SETTLE_LIMIT.as_millis()}),
            );
        }
    }
}

/// How long ending a run waits for the calls it cancelled to end.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The calls a run is handling, each by a number of its own, with its
/// cancellation.
#[derive(Debug, Default)]
struct InFlight {
    next: u64,
    calls: HashMap<u64, tokio_util::sync::CancellationToken>,
}

/// One call in flight, for as long as it is handled.
struct InFlightCall<'a> {
    run: &'a Run,
    number: u64,
}

impl<'a> InFlightCall<'a> {
    fn enter(run: &'a Run, cancel: &tokio_util::sync::CancellationToken) -> InFlightCall<'a> {
        let mut in_flight = run.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let number = in_flight.next;
        in_flight.next += 1;
        in_flight.calls.insert(number, cancel.clone());
        InFlightCall { run, number }
    }
}

impl Drop for InFlightCall<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.run.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        in_flight.calls.remove(&self.number);
        if in_flight.calls.is_empty() {
            self.run.settled.notify_waiters();
        }
    }
}

/// A routed call's outcome, with what the cassette keeps of its route.
struct Routed {
    outcome: Outcome,
    mode: Option<Mode>,
    upstream: Option<String>,
}

impl Routed {
    fn local(outcome: Outcome) -> Routed {
        Routed {
            outcome,
            mode: None,
            upstream: None,
        }
    }

    fn with_mode(outcome: Outcome, mode: Mode, upstream: Option<String>) -> Routed {
        Routed {
            outcome,
            mode: Some(mode),
            upstream,
        }
    }
}

/// What an upstream offers now: a connection opened for the listing and
/// closed after it.
async fn list_upstream(upstream: &dyn Upstream) -> Result<Catalog, UpstreamError> {
    let session = upstream.connect().await?;
    let catalog = session.catalog().await;
    session.close().await;
    catalog
}

fn register_secrets(scenario: &Scenario, redactor: &SharedRedactor) -> Result<(), EngineError> {
    redactor
        .add_secrets(
            scenario
                .secrets
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        )
        .map_err(|e| EngineError::Secret(e.to_string()))
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

pub(crate) fn new_run_id() -> String {
    // Time-ordered prefix so ids sort by start, random suffix so two nodes
    // never collide.
    let millis = Utc::now().timestamp_millis();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("run_{millis:012x}{}", &random[..12])
}
