//! The compiled scenario: the one internal representation the engine and
//! the fronts use. Everything here has been checked: regexes compiled,
//! schemas compiled, templates parsed, files read, table references
//! resolved. Nothing in it can fail to make sense at run time except a
//! template's output, which depends on the call.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::condition::CelCondition;
use crate::glob::Glob;
use crate::path::ArgPath;
use sandbar_redact::PrivacyPolicy;

/// A row of a data table.
pub type Row = Map<String, Value>;

/// A loaded, checked scenario.
#[derive(Debug)]
pub struct Scenario {
    /// The scenario's name.
    pub name: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// SHA-256 (hex) over the scenario file and every file it reads.
    pub hash: String,
    /// Where it was loaded from, for messages.
    pub origin: String,
    /// The default seed of its runs.
    pub seed: u64,
    /// The virtual clock its runs start from.
    pub clock: Clock,
    /// How the server introduces itself.
    pub server: ServerIdentity,
    /// Named secrets: the scenario's own, and every value of a secret column
    /// (named `data.TABLE.COLUMN`). All of them must be redacted everywhere.
    pub secrets: Vec<(String, String)>,
    /// The secrets templates may read (`secrets.NAME`).
    pub template_secrets: Arc<BTreeMap<String, String>>,
    /// Seed data of the stateful twin.
    pub tables: BTreeMap<String, TableSeed>,
    /// Tools, in file order.
    pub tools: Vec<Tool>,
    /// Fixed resources, in file order.
    pub resources: Vec<Resource>,
    /// Resource templates, in file order.
    pub resource_templates: Vec<ResourceTemplate>,
    /// Prompts, in file order.
    pub prompts: Vec<Prompt>,
    /// Every template in the scenario, by id.
    pub templates: TemplateSet,
    /// The scenario-wide default mode, if it sets one.
    pub mode: Option<Mode>,
    /// Real MCP servers behind the sandbox, in file order.
    pub upstreams: Vec<Upstream>,
    /// Replay settings.
    pub replay: Replay,
    /// Where runs with tools in `record` mode write their cassettes.
    pub record_dir: Option<PathBuf>,
    /// Personal data in what agents are shown and in every sink.
    pub privacy: Privacy,
    /// Canary values (name, value), and whether a leak blocks the call.
    pub canaries: Vec<(String, String)>,
    pub block_leaks: bool,
    /// Which calls are allowed, denied, held for approval or rate limited;
    /// `None` when the scenario has no `policy` (every call is allowed).
    pub policy: Option<Policy>,
    pub(crate) tool_index: HashMap<String, usize>,
    pub(crate) prompt_index: HashMap<String, usize>,
    pub(crate) resource_index: HashMap<String, usize>,
}

impl Scenario {
    /// A scenario with nothing in it but a name, a seed and a clock: what
    /// serving a cassette alone starts from.
    pub fn empty(name: &str, hash: &str, seed: u64, clock_start: DateTime<Utc>) -> Scenario {
        Scenario {
            name: name.to_owned(),
            description: None,
            hash: hash.to_owned(),
            origin: name.to_owned(),
            seed,
            clock: Clock {
                start: clock_start,
                step: Duration::ZERO,
            },
            server: ServerIdentity {
                name: name.to_owned(),
                version: None,
                instructions: None,
            },
            secrets: Vec::new(),
            template_secrets: Arc::default(),
            tables: BTreeMap::new(),
            tools: Vec::new(),
            resources: Vec::new(),
            resource_templates: Vec::new(),
            prompts: Vec::new(),
            templates: TemplateSet::default(),
            mode: None,
            upstreams: Vec::new(),
            replay: Replay::default(),
            record_dir: None,
            privacy: Privacy::default(),
            canaries: Vec::new(),
            block_leaks: true,
            policy: None,
            tool_index: HashMap::new(),
            prompt_index: HashMap::new(),
            resource_index: HashMap::new(),
        }
    }

    /// Whether anything in the scenario is in `replay` mode (and so needs
    /// its cassette).
    pub fn uses_replay(&self) -> bool {
        let replays = |m: Option<Mode>| m == Some(Mode::Replay);
        replays(self.mode)
            || self.upstreams.iter().any(|u| replays(u.mode))
            || self.tools.iter().any(|t| replays(t.mode))
    }

    /// The upstream with this name.
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// The tool with this name.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    /// The prompt with this name.
    pub fn prompt(&self, name: &str) -> Option<&Prompt> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }

    /// The fixed resource with this URI.
    pub fn resource(&self, uri: &str) -> Option<&Resource> {
        self.resource_index.get(uri).map(|&i| &self.resources[i])
    }

    /// The first resource template matching this URI, with its parameters.
    pub fn match_resource_template(
        &self,
        uri: &str,
    ) -> Option<(&ResourceTemplate, BTreeMap<String, String>)> {
        self.resource_templates
            .iter()
            .find_map(|t| t.uri.matches(uri).map(|params| (t, params)))
    }
}

/// The virtual clock of a run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The instant a run starts at.
    pub start: DateTime<Utc>,
    /// Virtual time that passes with each request.
    pub step: Duration,
}

/// Server name, version and instructions.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub name: String,
    pub version: Option<String>,
    pub instructions: Option<String>,
}

/// One seeded table. Rows are shared (`Arc`) so that a run's copy of the
/// twin costs one pointer per row and a reset costs one pointer per table.
#[derive(Debug, Clone)]
pub struct TableSeed {
    /// The identifying column, if the table has one.
    pub key: Option<String>,
    /// The rows, in file order.
    pub rows: Arc<Vec<Arc<Row>>>,
}

/// A tool.
#[derive(Debug)]
pub struct Tool {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The input schema as sent to clients.
    pub input_schema: Arc<Map<String, Value>>,
    /// The output schema as sent to clients.
    pub output_schema: Option<Arc<Map<String, Value>>>,
    /// Checks structured results against the output schema.
    pub output_validator: Option<Arc<jsonschema::Validator>>,
    /// Annotations as sent to clients (MCP field names).
    pub annotations: Option<Map<String, Value>>,
    /// Validates arguments; `None` when the schema accepts any object.
    pub validator: Option<Arc<jsonschema::Validator>>,
    /// Response rules in order.
    pub rules: Vec<Rule>,
    /// Effects of every successful call.
    pub effects: Vec<Effect>,
    /// Faults in order; the first that fires applies.
    pub faults: Vec<Fault>,
    /// Example arguments, valid against the input schema.
    pub examples: Vec<Map<String, Value>>,
    /// Its own mode, if it sets one.
    pub mode: Option<Mode>,
    /// Its own miss policy, if it sets one.
    pub miss: Option<MissPolicy>,
    /// How its calls are compared with recorded ones (added to the
    /// scenario's rules).
    pub matching: MatchRules,
    /// The upstream it forwards to, and the tool's name there.
    pub upstream: Option<UpstreamTool>,
    /// Whether the scenario gives its input schema (otherwise an upstream
    /// tool's own schema is offered).
    pub declares_schema: bool,
    /// Its own choice of masking upstream answers, if it makes one.
    pub mask: Option<bool>,
}

/// A declared tool's link to an upstream tool.
#[derive(Debug, Clone)]
pub struct UpstreamTool {
    pub upstream: String,
    pub tool: String,
}

/// How a tool, or an upstream's items, are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Stub,
    Live,
    Record,
    Replay,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Stub => "stub",
            Mode::Live => "live",
            Mode::Record => "record",
            Mode::Replay => "replay",
        }
    }

    /// Whether calls in this mode go to the upstream.
    pub fn forwards(self) -> bool {
        matches!(self, Mode::Live | Mode::Record)
    }
}

/// What replay does with a call the cassette has no answer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MissPolicy {
    #[default]
    Fail,
    Stub,
    Live,
}

impl MissPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MissPolicy::Fail => "fail",
            MissPolicy::Stub => "stub",
            MissPolicy::Live => "live",
        }
    }
}

/// How calls are compared with recorded ones: paths relative to a tool's
/// arguments, in the cassette's path syntax (checked when loaded).
#[derive(Debug, Clone, Default)]
pub struct MatchRules {
    pub ignore: Vec<String>,
    pub regex: Vec<(String, regex::Regex)>,
    pub same_type: Vec<String>,
}

impl MatchRules {
    pub fn is_empty(&self) -> bool {
        self.ignore.is_empty() && self.regex.is_empty() && self.same_type.is_empty()
    }
}

/// A real MCP server behind the sandbox.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub transport: UpstreamTransport,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub prefix: Option<String>,
    /// Names or `*` patterns of tools and prompts not offered.
    pub hide: Vec<regex::Regex>,
    /// Upstream name → offered name.
    pub rename: BTreeMap<String, String>,
    pub mode: Option<Mode>,
    /// Its own choice of masking its answers, if it makes one.
    pub mask: Option<bool>,
}

impl Upstream {
    /// Whether an item of this name is hidden.
    pub fn hides(&self, name: &str) -> bool {
        self.hide.iter().any(|re| re.is_match(name))
    }
}

/// How to reach an upstream.
#[derive(Debug, Clone)]
pub enum UpstreamTransport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// What happens to personal data.
#[derive(Debug, Clone)]
pub struct Privacy {
    /// Whether upstreams' answers are masked before the agent sees them,
    /// unless an upstream or tool says otherwise.
    pub mask_upstream: bool,
    /// The operators, per sink and kind.
    pub policy: PrivacyPolicy,
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy {
            mask_upstream: true,
            policy: PrivacyPolicy::default(),
        }
    }
}

/// The scenario's policy: rules tried in order for every tool call.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long a call that needs approval waits before it is denied.
    pub approval_timeout: Duration,
    /// What happens when no rule decides.
    pub default: PolicyDefault,
    /// The rules, in file order.
    pub rules: Vec<PolicyRule>,
}

/// The default policy: what happens to a call no rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDefault {
    /// The call goes on.
    Allow,
    /// The call is refused.
    Deny,
}

/// One policy rule.
#[derive(Debug, Clone)]
pub struct PolicyRule {
    /// Its name: the one given, or `rule N` (1-based position).
    pub name: String,
    /// The tools it applies to.
    pub tools: Glob,
    /// When it applies; `None`: whenever the tool matches.
    pub when: Option<CelCondition>,
    /// What it does.
    pub action: PolicyAction,
    /// What the agent is told when the rule denies, holds or limits a call
    /// (the author's, or one derived from the rule).
    pub message: String,
}

/// What a policy rule does with a call it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    /// The call goes on; later rules are not tried.
    Allow,
    /// The call is refused.
    Deny,
    /// The call waits for a human's approval (up to the policy's
    /// `approval_timeout`).
    Approve,
    /// At most `calls` calls in any window of `per`; a call under the limit
    /// is counted and the next rules decide, a call over it is refused.
    RateLimit {
        /// Calls allowed per window (at least 1).
        calls: u32,
        /// The window (longer than zero).
        per: Duration,
    },
}

impl PolicyAction {
    /// The key the action is written with.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyAction::Allow => "allow",
            PolicyAction::Deny => "deny",
            PolicyAction::Approve => "approve",
            PolicyAction::RateLimit { .. } => "rate_limit",
        }
    }
}

/// Replay settings.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// The cassette replayed tools answer from.
    pub cassette: Option<PathBuf>,
    pub miss: MissPolicy,
    pub strict_order: bool,
    /// Answer again with the last recording once a call's are used up.
    pub repeat: bool,
    /// Rules for every tool.
    pub matching: MatchRules,
}

/// A response rule.
#[derive(Debug)]
pub struct Rule {
    /// All must hold.
    pub conditions: Vec<Condition>,
    /// An expression that must be true as well (evaluated after `conditions`).
    pub guard: Option<TemplateId>,
    pub steps: Vec<Step>,
    pub effects: Vec<Effect>,
    pub response: Response,
}

/// One condition on an argument.
#[derive(Debug)]
pub struct Condition {
    pub path: ArgPath,
    pub test: Test,
}

/// What a condition tests.
#[derive(Debug)]
pub enum Test {
    Equals(Value),
    NotEquals(Value),
    Regex(regex::Regex),
    GreaterThan(f64),
    AtLeast(f64),
    LessThan(f64),
    AtMost(f64),
    OneOf(Vec<Value>),
    NoneOf(Vec<Value>),
    InTable { table: String, column: String },
    Present(bool),
    Contains(Value),
    StartsWith(String),
    EndsWith(String),
}

/// What a rule answers with.
#[derive(Debug)]
pub enum Response {
    /// A tool result: content blocks and optional structured content.
    Result {
        content: Vec<ContentTemplate>,
        structured: Option<ValueTemplate>,
    },
    /// A tool error (`isError: true`) with this text.
    ToolError(TextTemplate),
    /// A JSON-RPC error.
    ProtocolError(ProtocolErrorTemplate),
    /// Choose among these rules once the steps have run.
    Then(Vec<Rule>),
}

/// A JSON-RPC error to answer with.
#[derive(Debug, Clone)]
pub struct ProtocolErrorTemplate {
    pub code: i32,
    pub message: TextTemplate,
    pub data: Option<Value>,
}

/// A content block to render.
#[derive(Debug, Clone)]
pub enum ContentTemplate {
    Text(TextTemplate),
    /// A value rendered and serialized as JSON text.
    Json(ValueTemplate),
    Image {
        data: Arc<str>,
        mime_type: String,
    },
    Audio {
        data: Arc<str>,
        mime_type: String,
    },
    Resource {
        uri: String,
        mime_type: Option<String>,
        body: ResourceBody,
    },
    ResourceLink {
        uri: String,
        name: String,
        description: Option<String>,
        mime_type: Option<String>,
    },
}

/// The contents of a resource.
#[derive(Debug, Clone)]
pub enum ResourceBody {
    Text(TextTemplate),
    Json(ValueTemplate),
    /// Base64.
    Blob(Arc<str>),
}

/// Text that is either fixed or rendered by a template.
#[derive(Debug, Clone)]
pub enum TextTemplate {
    Literal(Arc<str>),
    Template(TemplateId),
}

/// A JSON value whose strings may be templates. A string that is exactly one
/// `{{ expression }}` keeps the expression's type (a number, a row, a list).
#[derive(Debug, Clone)]
pub enum ValueTemplate {
    Literal(Value),
    /// Evaluates to a JSON value.
    Expression(TemplateId),
    /// Renders to a string.
    Text(TemplateId),
    Array(Vec<ValueTemplate>),
    Object(Vec<(String, ValueTemplate)>),
}

/// One step before a response.
#[derive(Debug)]
pub enum Step {
    Progress {
        progress: f64,
        total: Option<f64>,
        message: Option<TextTemplate>,
    },
    Log {
        level: LogLevel,
        message: TextTemplate,
        logger: Option<String>,
    },
    Wait(Duration),
    Sample {
        save_as: String,
        prompt: TextTemplate,
        system: Option<TextTemplate>,
        max_tokens: u32,
    },
    Elicit {
        save_as: String,
        message: TextTemplate,
        schema: Value,
    },
    ResourceUpdated(TextTemplate),
}

/// MCP log levels, in increasing severity (RFC 5424 order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    /// All levels, least severe first.
    pub const ALL: [LogLevel; 8] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Notice,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
        LogLevel::Alert,
        LogLevel::Emergency,
    ];

    /// The level's MCP name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }

    /// Parses an MCP level name.
    pub fn parse(name: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// A change to a table.
#[derive(Debug)]
pub enum Effect {
    Insert {
        table: String,
        row: Vec<(String, ValueTemplate)>,
    },
    Update {
        table: String,
        filter: Vec<(String, ValueTemplate)>,
        set: Vec<(String, ValueTemplate)>,
    },
    Delete {
        table: String,
        filter: Vec<(String, ValueTemplate)>,
    },
}

/// A fault and when it fires.
#[derive(Debug)]
pub struct Fault {
    /// Its position in the tool's list; part of its random stream.
    pub index: usize,
    pub probability: Option<f64>,
    pub every: Option<u64>,
    pub after: Option<u64>,
    pub on_calls: Option<Vec<u64>>,
    pub conditions: Vec<Condition>,
    /// Delay before the answer (real and virtual time).
    pub latency: Option<Duration>,
    pub action: FaultAction,
}

/// What a fault does once its latency (if any) has passed.
#[derive(Debug)]
pub enum FaultAction {
    /// Nothing more: the normal response follows the delay.
    DelayOnly,
    ToolError(TextTemplate),
    ProtocolError(ProtocolErrorTemplate),
    /// No answer until the client cancels or disconnects.
    Hang,
}

/// A fixed resource.
#[derive(Debug)]
pub struct Resource {
    pub uri: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub body: ResourceBody,
}

/// A resource template.
#[derive(Debug)]
pub struct ResourceTemplate {
    pub uri: UriTemplate,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub body: ResourceBody,
    pub completions: BTreeMap<String, Vec<String>>,
}

/// An RFC 6570 level-1 URI template: literal text and `{name}` variables,
/// each matching one or more characters other than `/`, `?` and `#`.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    pub template: String,
    pub(crate) pattern: regex::Regex,
    pub variables: Vec<String>,
}

impl UriTemplate {
    /// Parses an RFC 6570 level 1 template (`file:///{path}`).
    pub fn parse(template: &str) -> Result<UriTemplate, String> {
        crate::compile::parse_uri_template(template)
    }

    /// The variables if `uri` matches.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        let caps = self.pattern.captures(uri)?;
        Some(
            self.variables
                .iter()
                .enumerate()
                .filter_map(|(i, name)| Some((name.clone(), caps.get(i + 1)?.as_str().to_owned())))
                .collect(),
        )
    }
}

/// A prompt.
#[derive(Debug)]
pub struct Prompt {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub arguments: Vec<PromptArgument>,
    pub messages: Vec<PromptMessage>,
}

/// A prompt argument.
#[derive(Debug)]
pub struct PromptArgument {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
    pub completions: Vec<String>,
}

/// A prompt message.
#[derive(Debug)]
pub struct PromptMessage {
    pub role: Role,
    pub content: ContentTemplate,
}

/// The speaker of a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// Identifies a template in the scenario's [`TemplateSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(pub u32);

/// Whether a template renders text or evaluates to a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// Renders to a string.
    Text,
    /// `source` is an expression; it evaluates to a value.
    Expression,
}

/// One template: where it came from (for messages) and its source.
#[derive(Debug, Clone)]
pub struct TemplateEntry {
    /// The place in the scenario, e.g. `tools[0].respond[1].text`.
    pub name: String,
    pub kind: TemplateKind,
    pub source: String,
}

/// Every template of a scenario. The engine compiles them once, with its own
/// functions, when it takes the scenario in.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    pub entries: Vec<TemplateEntry>,
}

impl TemplateSet {
    /// The entry with this id.
    pub fn get(&self, id: TemplateId) -> &TemplateEntry {
        &self.entries[id.0 as usize]
    }
}
