//! The scenario file format, version 1, exactly as users write it.
//!
//! These types mirror the YAML one to one: every struct denies unknown
//! fields, so a typo is an error with a location rather than a silently
//! ignored key. They are deserialized by `serde-saphyr` and turned into the
//! compiled [`crate::Scenario`] by `crate::compile`; nothing else in Sandbar
//! reads them. The committed JSON Schema under `schema/` is generated from
//! these types, so a field added here shows up in editors at once.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::duration::DurationSpec;

/// A whole scenario file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Sandbar scenario",
    description = "A Sandbar scenario file (format version 1)."
)]
pub struct ScenarioFile {
    /// The format version. Only `1` exists today.
    pub version: u32,
    /// A short name for the scenario; it labels every run made from it.
    pub name: String,
    /// What the scenario simulates, for people reading it.
    #[serde(default)]
    pub description: Option<String>,
    /// Seed for everything random in a run: fault draws and template randomness.
    /// The same seed and scenario give byte-identical outcomes.
    #[serde(default)]
    pub seed: u64,
    /// The virtual clock every run starts from.
    #[serde(default)]
    pub clock: Option<ClockSpec>,
    /// How the sandbox introduces itself to MCP clients.
    #[serde(default)]
    pub server: Option<ServerSpec>,
    /// Named secret values. Templates read them as `secrets.NAME`; every one is
    /// redacted by exact match (and in its encoded forms) from every sink.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The stateful twin: named tables of rows that tools read and change.
    /// Every run starts from this seed data.
    #[serde(default)]
    pub data: BTreeMap<String, TableSpec>,
    /// The tools the agent may call.
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// Fixed resources the agent may read.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    /// Resource templates (RFC 6570 level 1: `{name}` segments).
    #[serde(default)]
    pub resource_templates: Vec<ResourceTemplateSpec>,
    /// Prompts the agent may fetch.
    #[serde(default)]
    pub prompts: Vec<PromptSpec>,
    /// The default mode of every tool that does not set its own (and of
    /// upstreams that do not set theirs). Without it, declared tools are
    /// stubbed and upstream tools are forwarded (`live`).
    #[serde(default)]
    pub mode: Option<ModeSpec>,
    /// Real MCP servers whose tools, resources and prompts are offered next
    /// to the stubbed ones.
    #[serde(default)]
    pub upstreams: Vec<UpstreamSpec>,
    /// Where tools in `replay` mode find their answers, and what happens
    /// when a call was not recorded.
    #[serde(default)]
    pub replay: Option<ReplaySpec>,
    /// Where runs with tools in `record` mode write their cassettes.
    #[serde(default)]
    pub record: Option<RecordSpec>,
    /// What happens to personal data: in what agents are shown of
    /// upstreams' answers, and in every sink (store, cassettes, logs,
    /// exports, reports).
    #[serde(default)]
    pub privacy: Option<PrivacySpec>,
    /// Canary values planted in the scenario's data: any of them in a tool's
    /// arguments, in a request to an upstream or in a prompt to the model is
    /// a leak.
    #[serde(default)]
    pub canaries: Option<CanarySpec>,
    /// Which tool calls are allowed, denied, held for a human's approval or
    /// rate limited. Rules are tried in order; the first that applies decides.
    #[serde(default)]
    pub policy: Option<PolicySpec>,
}

/// The policy: rules tried in order for every tool call, and what happens
/// when none decides.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// How long a call that needs approval waits for it before it is
    /// denied (default 60s).
    #[serde(default)]
    pub approval_timeout: Option<DurationSpec>,
    /// What happens to a call no rule decides: `allow` (default) or `deny`.
    #[serde(default)]
    pub default: Option<PolicyDefaultSpec>,
    /// The rules, tried in order.
    #[serde(default)]
    pub rules: Vec<PolicyRuleSpec>,
}

/// The policy's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyDefaultSpec {
    /// Calls no rule decides go on.
    Allow,
    /// Calls no rule decides are refused.
    Deny,
}

/// A policy rule: exactly one of `allow`, `deny`, `approve` and
/// `rate_limit`, each naming the tools it applies to with a pattern (`*`
/// stands for any run of characters, `?` for one character).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["allow"]},
    {"required": ["deny"]},
    {"required": ["approve"]},
    {"required": ["rate_limit", "calls", "per"]}
]))]
pub struct PolicyRuleSpec {
    /// Let calls of these tools go on; later rules are not tried.
    #[serde(default)]
    pub allow: Option<String>,
    /// Refuse calls of these tools.
    #[serde(default)]
    pub deny: Option<String>,
    /// Hold calls of these tools until a human approves them (denied after
    /// `approval_timeout`).
    #[serde(default)]
    pub approve: Option<String>,
    /// Allow at most `calls` calls of these tools in any window of `per`;
    /// calls under the limit go on to the next rules.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// A CEL expression that must be true for the rule to apply (default:
    /// always). It reads `tenant`, `token`, `tool`, `args`, `upstream`,
    /// `mode`, `calls` (earlier calls, each `{tool, args, error}`) and
    /// `counts` (earlier calls per tool), and may call `sum(list)`. A
    /// condition that cannot be evaluated (a missing argument, say) denies
    /// the call: test with `has(args.amount)` first.
    #[serde(default)]
    pub when: Option<String>,
    /// What the agent is told when the rule refuses, holds or limits a call.
    #[serde(default)]
    pub message: Option<String>,
    /// A name for the rule in events and messages (default `rule N`, its
    /// 1-based position).
    #[serde(default)]
    pub name: Option<String>,
    /// `rate_limit`: how many calls each window allows (at least 1).
    #[serde(default)]
    pub calls: Option<u32>,
    /// `rate_limit`: the window, e.g. `1m`.
    #[serde(default)]
    pub per: Option<DurationSpec>,
}

/// Canaries, and what a leak does.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanarySpec {
    /// Each canary by name: a fake credential or personal record value
    /// (at least 6 characters) planted in data or fixtures.
    pub values: BTreeMap<String, String>,
    /// `block` (default): the call is refused and never reaches a tool,
    /// an upstream or the model; `record`: it goes on, and the leak is
    /// recorded all the same.
    #[serde(default)]
    pub on_leak: Option<LeakSpec>,
}

/// What a leak does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeakSpec {
    /// Refuse the call.
    Block,
    /// Let it through; record the leak.
    Record,
}

/// Personal-data settings. Secrets are always redacted; personal data is
/// pseudonymized unless this says otherwise.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacySpec {
    /// Mask personal data (and redact secrets) in what upstreams answer
    /// before the agent sees it, for tools in `live` and `record` mode
    /// (default `true`). Upstreams and tools may set their own `mask`.
    #[serde(default)]
    pub mask_upstream: Option<bool>,
    /// The operator for every kind of personal data in every sink (default
    /// `pseudonymize`).
    #[serde(default)]
    pub personal: Option<OperatorSpec>,
    /// Operators per kind: `email`, `phone`, `payment_card`, `iban`,
    /// `us_ssn`, `ip_address`, `mac_address`, `date_of_birth`,
    /// `postal_address`, `person_name`.
    #[serde(default)]
    pub kinds: BTreeMap<String, OperatorSpec>,
    /// Per sink (`store`, `cassette`, `logs`, `export`, `report`, `agent`):
    /// its own operators.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkPrivacySpec>,
}

/// One sink's personal-data operators.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkPrivacySpec {
    /// For every kind in this sink.
    #[serde(default)]
    pub personal: Option<OperatorSpec>,
    /// Per kind in this sink.
    #[serde(default)]
    pub kinds: BTreeMap<String, OperatorSpec>,
}

/// A masking operator: its name (`redact`, `mask`, `hash`,
/// `pseudonymize`, `tokenize`), or a mapping with `op` and its settings
/// (`{op: mask, keep: 4, char: "*"}`, `{op: hash, length: 16}`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OperatorSpec {
    /// Just the name, with default settings.
    Name(OperatorName),
    /// The name and its settings.
    Detailed(OperatorDetail),
}

/// The masking operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperatorName {
    /// `[REDACTED:KIND]`.
    Redact,
    /// All but the last `keep` letters and digits replaced by `char`.
    Mask,
    /// A keyed HMAC-SHA256, `length` hex digits.
    Hash,
    /// A realistic value of the same kind, the same for the same value.
    Pseudonymize,
    /// A reversible format-preserving token.
    Tokenize,
}

/// An operator with its settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorDetail {
    /// Which operator.
    pub op: OperatorName,
    /// `mask`: how many letters and digits stay visible at the end (default 4).
    #[serde(default)]
    pub keep: Option<usize>,
    /// `mask`: the character that replaces the others (default `*`).
    #[serde(default)]
    pub char: Option<char>,
    /// `hash`: how many hex digits (1 to 64, default 16).
    #[serde(default)]
    pub length: Option<usize>,
}

/// How a tool (or an upstream's items) is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModeSpec {
    /// From the scenario's response rules.
    Stub,
    /// Forwarded to the upstream.
    Live,
    /// Forwarded to the upstream, and kept in the run's cassette.
    Record,
    /// Answered from a cassette; never reaches the upstream unless the miss
    /// policy is `live`.
    Replay,
}

/// What replay does with a call the cassette has no answer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissSpec {
    /// The agent gets a tool error (or a JSON-RPC error) and the run gets a
    /// divergence event with the closest recorded calls.
    Fail,
    /// Answer from the scenario's stub rules for the tool.
    Stub,
    /// Forward to the upstream (and keep the answer when recording).
    Live,
}

/// A real MCP server: a child process speaking MCP over stdio (`command`)
/// or a Streamable HTTP endpoint (`url`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    /// The upstream's name: letters, digits, `_` and `-`. It prefixes its
    /// items when their names collide with others.
    pub name: String,
    /// The program to start (looked up on `PATH`).
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables for the process. Values may name a
    /// scenario secret as `{{ secrets.NAME }}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The process's working directory, relative to the scenario file.
    #[serde(default)]
    pub cwd: Option<String>,
    /// The Streamable HTTP endpoint (`http://` or `https://`). Its query may
    /// name a secret as `{{ secrets.NAME }}`.
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP headers sent with every request. Values may name a scenario
    /// secret as `{{ secrets.NAME }}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long one request may take upstream (default 30s).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// How long starting and initializing the connection may take (default 10s).
    #[serde(default)]
    pub connect_timeout: Option<DurationSpec>,
    /// Offer every tool and prompt of this upstream as `PREFIX` + its name.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Tools and prompts not to offer: names, or patterns with `*`.
    #[serde(default)]
    pub hide: Vec<String>,
    /// Offer these tools and prompts under another name (`upstream name: offered name`).
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// The default mode of this upstream's items.
    #[serde(default)]
    pub mode: Option<ModeSpec>,
    /// Mask personal data (and redact secrets) in this upstream's answers
    /// before the agent sees them (default: `privacy.mask_upstream`).
    #[serde(default)]
    pub mask: Option<bool>,
}

/// Replay settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaySpec {
    /// The cassette (a `.jsonl` file, relative to the scenario) that tools in
    /// `replay` mode answer from.
    #[serde(default)]
    pub cassette: Option<String>,
    /// What to do with a call the cassette has no answer for (default `fail`).
    #[serde(default)]
    pub miss: Option<MissSpec>,
    /// Calls must come in the recorded order; any other call is a miss.
    #[serde(default)]
    pub strict_order: bool,
    /// When a call's recorded answers are used up, give the last one again
    /// instead of missing (the n-th call otherwise gets the n-th answer).
    #[serde(default)]
    pub repeat: bool,
    /// How calls are compared with recorded ones (for every tool).
    #[serde(default, rename = "match")]
    pub matching: Option<MatchSpec>,
}

/// How a call is compared with recorded calls. Paths are relative to the
/// tool's arguments: `timestamp`, `items[*].id`, `items[0]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// Paths whose values never matter (timestamps, generated ids).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Paths whose values match when both are strings matching this regex.
    #[serde(default)]
    pub regex: BTreeMap<String, String>,
    /// Paths whose values match when both have the same JSON type.
    #[serde(default)]
    pub same_type: Vec<String>,
}

/// Recording settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    /// The directory cassettes are written to, relative to the scenario
    /// (default: `cassettes` under the data directory).
    #[serde(default)]
    pub dir: Option<String>,
}

/// The virtual clock: a start instant, written either as a bare RFC 3339
/// timestamp or as a mapping with a step.
#[derive(Debug, Clone)]
pub struct ClockSpec {
    /// The instant a run starts at (RFC 3339).
    pub start: String,
    /// Virtual time that passes with each request the agent makes.
    pub step: Option<DurationSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockMap {
    start: String,
    #[serde(default)]
    step: Option<DurationSpec>,
}

impl<'de> Deserialize<'de> for ClockSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ClockVisitor;
        impl<'de> Visitor<'de> for ClockVisitor {
            type Value = ClockSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or a mapping with `start` and `step`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ClockSpec, E> {
                Ok(ClockSpec {
                    start: v.to_owned(),
                    step: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ClockSpec, A::Error> {
                let m = ClockMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ClockSpec {
                    start: m.start,
                    step: m.step,
                })
            }
        }
        deserializer.deserialize_any(ClockVisitor)
    }
}

impl JsonSchema for ClockSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ClockSpec".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let step = generator.subschema_for::<DurationSpec>();
        schemars::json_schema!({
            "description": "The virtual clock: an RFC 3339 timestamp, or {start, step} where step is the virtual time each request takes.",
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["start"],
                    "properties": {
                        "start": {"type": "string", "format": "date-time"},
                        "step": step
                    }
                }
            ]
        })
    }
}

/// How the server introduces itself in `initialize`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Server name reported to clients (defaults to the scenario name).
    #[serde(default)]
    pub name: Option<String>,
    /// Server version reported to clients (defaults to Sandbar's version).
    #[serde(default)]
    pub version: Option<String>,
    /// Instructions for the agent, sent in the `initialize` result.
    #[serde(default)]
    pub instructions: Option<String>,
}

/// A seeded table: either a list of rows, or a mapping that names a file or
/// carries rows with options.
#[derive(Debug)]
pub struct TableSpec {
    /// Inline rows (each a mapping of column to value).
    pub rows: Option<Vec<serde_json::Map<String, Value>>>,
    /// A CSV, JSON (an array of objects) or JSONL file next to the scenario.
    pub file: Option<String>,
    /// The column that identifies a row (`table[key]` in templates). Defaults
    /// to `id` when every row has one.
    pub key: Option<String>,
    /// Columns whose values are secrets: redacted everywhere by exact match.
    pub secret: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableMap {
    #[serde(default)]
    rows: Option<Vec<serde_json::Map<String, Value>>>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    secret: Vec<String>,
}

impl<'de> Deserialize<'de> for TableSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor;
        impl<'de> Visitor<'de> for TableVisitor {
            type Value = TableSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of rows, or a mapping with `rows` or `file` (and optional `key`, `secret`)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TableSpec, A::Error> {
                let rows = Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(TableSpec {
                    rows: Some(rows),
                    file: None,
                    key: None,
                    secret: Vec::new(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TableSpec, A::Error> {
                let m = TableMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TableSpec {
                    rows: m.rows,
                    file: m.file,
                    key: m.key,
                    secret: m.secret,
                })
            }
        }
        deserializer.deserialize_any(TableVisitor)
    }
}

impl JsonSchema for TableSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TableSpec".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A seeded table: a list of rows, or {rows | file, key, secret}.",
            "anyOf": [
                {"type": "array", "items": {"type": "object"}},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "rows": {"type": "array", "items": {"type": "object"}},
                        "file": {"type": "string", "description": "A .csv, .json or .jsonl file next to the scenario."},
                        "key": {"type": "string", "description": "The column that identifies a row."},
                        "secret": {"type": "array", "items": {"type": "string"}, "description": "Columns whose values are secrets."}
                    }
                }
            ]
        })
    }
}

/// One tool the agent can call.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// The tool name, as the agent calls it.
    pub name: String,
    /// A human-readable title.
    #[serde(default)]
    pub title: Option<String>,
    /// What the tool does, as the agent reads it.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments; calls are validated against it.
    /// Defaults to an object with any properties.
    #[serde(default)]
    pub input_schema: Option<Value>,
    /// JSON Schema of the structured result, if the tool returns one.
    #[serde(default)]
    pub output_schema: Option<Value>,
    /// Hints about the tool's behaviour, passed to clients as they are.
    #[serde(default)]
    pub annotations: Option<ToolAnnotationsSpec>,
    /// Ordered response rules: the first whose `when` matches answers.
    #[serde(default)]
    pub respond: Vec<RuleSpec>,
    /// Changes to the data tables made by every successful call.
    #[serde(default)]
    pub effect: OneOrMany<EffectSpec>,
    /// Faults injected into calls of this tool, drawn from the run's seed.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Example arguments: checked against the input schema when the scenario
    /// loads, and used by `sandbar demo` to drive the tool.
    #[serde(default)]
    pub examples: Vec<serde_json::Map<String, Value>>,
    /// How this tool is answered (default: the upstream's mode, then the
    /// scenario's, then `stub`).
    #[serde(default)]
    pub mode: Option<ModeSpec>,
    /// What replay does with a call the cassette has no answer for
    /// (default: the scenario's `replay.miss`).
    #[serde(default)]
    pub miss: Option<MissSpec>,
    /// How this tool's calls are compared with recorded ones, in addition
    /// to the scenario's `replay.match`.
    #[serde(default, rename = "match")]
    pub matching: Option<MatchSpec>,
    /// The upstream this tool forwards to in `live` and `record` mode; its
    /// stub rules answer in `stub` mode and on a `stub` miss.
    #[serde(default)]
    pub upstream: Option<String>,
    /// The tool's name on the upstream, when it differs from `name`.
    #[serde(default)]
    pub upstream_tool: Option<String>,
    /// Mask personal data (and redact secrets) in the upstream's answers to
    /// this tool before the agent sees them (default: the upstream's `mask`).
    #[serde(default)]
    pub mask: Option<bool>,
}

/// Tool annotations (MCP `ToolAnnotations`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolAnnotationsSpec {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub destructive: Option<bool>,
    #[serde(default)]
    pub idempotent: Option<bool>,
    #[serde(default)]
    pub open_world: Option<bool>,
}

/// One response rule. Exactly one of `text`, `json`, `content`, `error` or
/// `protocol_error` says what comes back; `steps` run before it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Conditions on the arguments, by path (`order_id`, `customer.address.city`,
    /// `items[0].sku`); all must hold. A rule without `when` always matches.
    #[serde(default)]
    pub when: Option<BTreeMap<String, MatcherSpec>>,
    /// A template expression that must also be true, for conditions on the
    /// twin's state: `orders[args.order_id].status != 'refunded'`.
    #[serde(default, rename = "if")]
    pub guard: Option<String>,
    /// Steps to run before answering: progress, log messages, waits, questions to the client.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Changes to the data tables made when this rule answers.
    #[serde(default)]
    pub effect: OneOrMany<EffectSpec>,
    /// A text result (a template).
    #[serde(default)]
    pub text: Option<String>,
    /// A structured result: sent as `structuredContent` and as its JSON text.
    /// Strings in it are templates; a string that is a single `{{ expr }}` keeps the expression's type.
    #[serde(default)]
    pub json: Option<Value>,
    /// A list of content blocks.
    #[serde(default)]
    pub content: Option<Vec<ContentSpec>>,
    /// Structured content sent next to `content` or `text`.
    #[serde(default)]
    pub structured: Option<Value>,
    /// A tool error the agent sees (`isError: true`), as a template.
    #[serde(default)]
    pub error: Option<String>,
    /// A JSON-RPC error instead of a result.
    #[serde(default)]
    pub protocol_error: Option<ProtocolErrorSpec>,
    /// Rules chosen after this rule's steps ran, so they can test the
    /// answers those steps got (`if: "answers.confirm.action == 'accept'"`).
    /// A rule with `then` gives no answer of its own.
    #[serde(default)]
    pub then: Option<Vec<RuleSpec>>,
}

/// A condition on one argument. A plain value means equality; a mapping
/// combines operators, all of which must hold.
#[derive(Debug, Clone)]
pub enum MatcherSpec {
    /// The argument equals this value.
    Equals(Value),
    /// Operators that must all hold.
    Ops(Box<MatcherOps>),
}

/// Matcher operators.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatcherOps {
    /// Equal to this value.
    #[serde(default)]
    pub eq: Option<Value>,
    /// Not equal to this value.
    #[serde(default)]
    pub ne: Option<Value>,
    /// A string matching this regular expression (Rust `regex` syntax, unanchored).
    #[serde(default)]
    pub regex: Option<String>,
    /// A number greater than this.
    #[serde(default)]
    pub gt: Option<f64>,
    /// A number greater than or equal to this.
    #[serde(default)]
    pub gte: Option<f64>,
    /// A number less than this.
    #[serde(default)]
    pub lt: Option<f64>,
    /// A number less than or equal to this.
    #[serde(default)]
    pub lte: Option<f64>,
    /// One of these values.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<Value>>,
    /// None of these values.
    #[serde(default)]
    pub not_in: Option<Vec<Value>>,
    /// A value present in a table column, written `table.column`.
    #[serde(default)]
    pub in_table: Option<String>,
    /// Whether the argument is present (true) or absent (false).
    #[serde(default)]
    pub present: Option<bool>,
    /// A string containing this substring, or an array containing this element.
    #[serde(default)]
    pub contains: Option<Value>,
    /// A string starting with this prefix.
    #[serde(default)]
    pub starts_with: Option<String>,
    /// A string ending with this suffix.
    #[serde(default)]
    pub ends_with: Option<String>,
}

impl MatcherOps {
    /// Whether no operator is given.
    pub fn is_empty(&self) -> bool {
        self.eq.is_none()
            && self.ne.is_none()
            && self.regex.is_none()
            && self.gt.is_none()
            && self.gte.is_none()
            && self.lt.is_none()
            && self.lte.is_none()
            && self.one_of.is_none()
            && self.not_in.is_none()
            && self.in_table.is_none()
            && self.present.is_none()
            && self.contains.is_none()
            && self.starts_with.is_none()
            && self.ends_with.is_none()
    }
}

impl<'de> Deserialize<'de> for MatcherSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MatcherVisitor;
        impl<'de> Visitor<'de> for MatcherVisitor {
            type Value = MatcherSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value to compare with, or a mapping of operators (eq, ne, regex, gt, gte, lt, lte, in, not_in, in_table, present, contains, starts_with, ends_with)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<MatcherSpec, E> {
                Ok(MatcherSpec::Equals(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MatcherSpec, E> {
                Ok(MatcherSpec::Equals(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MatcherSpec, E> {
                Ok(MatcherSpec::Equals(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MatcherSpec, E> {
                Ok(MatcherSpec::Equals(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MatcherSpec, E> {
                Ok(MatcherSpec::Equals(Value::from(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MatcherSpec, E> {
                Ok(MatcherSpec::Equals(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<MatcherSpec, E> {
                Ok(MatcherSpec::Equals(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MatcherSpec, A::Error> {
                let v = Vec::<Value>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(MatcherSpec::Equals(Value::Array(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MatcherSpec, A::Error> {
                let ops = MatcherOps::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(MatcherSpec::Ops(Box::new(ops)))
            }
        }
        deserializer.deserialize_any(MatcherVisitor)
    }
}

impl JsonSchema for MatcherSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MatcherSpec".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let ops = generator.subschema_for::<MatcherOps>();
        schemars::json_schema!({
            "description": "A value the argument must equal, or a mapping of operators that must all hold.",
            "anyOf": [
                {"type": ["string", "number", "integer", "boolean", "null", "array"]},
                ops
            ]
        })
    }
}

/// A content block of a tool result or prompt message.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ContentSpec {
    /// Text (a template).
    Text(String),
    /// A value serialized as JSON text (strings in it are templates).
    Json(Value),
    /// An image, inline (base64) or from a file next to the scenario.
    Image(BinarySpec),
    /// Audio, inline (base64) or from a file next to the scenario.
    Audio(BinarySpec),
    /// An embedded resource.
    Resource(EmbeddedResourceSpec),
    /// A link to a resource the client may read.
    ResourceLink(ResourceLinkSpec),
}

/// Binary content: `data` (base64) or `file`, with its MIME type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BinarySpec {
    /// Base64-encoded bytes.
    #[serde(default)]
    pub data: Option<String>,
    /// A file next to the scenario.
    #[serde(default)]
    pub file: Option<String>,
    /// The MIME type, e.g. `image/png`. Guessed from the file extension when omitted.
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// An embedded resource: a URI with text, base64 blob, JSON or file contents.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedResourceSpec {
    pub uri: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Text contents (a template).
    #[serde(default)]
    pub text: Option<String>,
    /// JSON contents, serialized as text (strings in it are templates).
    #[serde(default)]
    pub json: Option<Value>,
    /// Base64-encoded binary contents.
    #[serde(default)]
    pub blob: Option<String>,
    /// A file next to the scenario.
    #[serde(default)]
    pub file: Option<String>,
}

/// A resource link.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceLinkSpec {
    pub uri: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// A JSON-RPC error to answer with.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtocolErrorSpec {
    /// The JSON-RPC error code (default -32603, internal error).
    #[serde(default)]
    pub code: Option<i32>,
    /// The message (a template).
    pub message: String,
    /// Optional error data.
    #[serde(default)]
    pub data: Option<Value>,
}

/// One step of a response, run in order before the result is sent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum StepSpec {
    /// Send a progress notification (only when the client asked for progress).
    Progress(ProgressStepSpec),
    /// Send a log message (subject to the client's `logging/setLevel`).
    Log(LogStepSpec),
    /// Let virtual time pass.
    Wait(DurationSpec),
    /// Ask the client's model (`sampling/createMessage`); the answer is `answers.NAME`.
    Sample(SampleStepSpec),
    /// Ask the user through the client (`elicitation/create`); the answer is `answers.NAME`.
    Elicit(ElicitStepSpec),
    /// Tell subscribed clients that a resource changed.
    ResourceUpdated(String),
}

/// A progress notification.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressStepSpec {
    pub progress: f64,
    #[serde(default)]
    pub total: Option<f64>,
    /// A message (a template).
    #[serde(default)]
    pub message: Option<String>,
}

/// A log message.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogStepSpec {
    /// One of debug, info, notice, warning, error, critical, alert, emergency.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// The message (a template).
    pub message: String,
    /// The logger name.
    #[serde(default)]
    pub logger: Option<String>,
}

fn default_log_level() -> String {
    "info".to_owned()
}

/// A sampling request to the client.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleStepSpec {
    /// The name the answer is kept under (`answers.NAME`).
    #[serde(rename = "as")]
    pub save_as: String,
    /// The user message (a template).
    pub prompt: String,
    /// A system prompt (a template).
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
}

fn default_max_tokens() -> u32 {
    256
}

/// An elicitation request to the client.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElicitStepSpec {
    /// The name the answer is kept under (`answers.NAME`).
    #[serde(rename = "as")]
    pub save_as: String,
    /// What to ask (a template).
    pub message: String,
    /// The requested schema: a flat object of primitive properties.
    pub schema: Value,
}

/// A change to a data table. Exactly one of `insert`, `update`, `delete`
/// names the table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EffectSpec {
    /// Insert `row` into this table.
    #[serde(default)]
    pub insert: Option<String>,
    /// Update rows of this table that match `where`, setting `set`.
    #[serde(default)]
    pub update: Option<String>,
    /// Delete rows of this table that match `where`.
    #[serde(default)]
    pub delete: Option<String>,
    /// Column equalities that select rows (values are templates).
    #[serde(default, rename = "where")]
    pub filter: Option<BTreeMap<String, Value>>,
    /// Columns to set (values are templates).
    #[serde(default)]
    pub set: Option<serde_json::Map<String, Value>>,
    /// The row to insert (values are templates).
    #[serde(default)]
    pub row: Option<serde_json::Map<String, Value>>,
}

/// A fault: when it fires (all given conditions must hold; none means every
/// call) and what it does.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Fire with this probability (0..=1), drawn from the run's seed.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Fire on every n-th call of the tool (n, 2n, 3n, ...).
    #[serde(default)]
    pub every: Option<u64>,
    /// Fire on every call after the first n.
    #[serde(default)]
    pub after: Option<u64>,
    /// Fire on exactly these call numbers (1-based).
    #[serde(default)]
    pub on_calls: Option<Vec<u64>>,
    /// Fire only when these argument conditions hold.
    #[serde(default)]
    pub when: Option<BTreeMap<String, MatcherSpec>>,
    /// Answer with a tool error (a template).
    #[serde(default)]
    pub error: Option<String>,
    /// Answer with a JSON-RPC error.
    #[serde(default)]
    pub protocol_error: Option<ProtocolErrorSpec>,
    /// Delay the answer by this much (real time, and virtual time).
    #[serde(default)]
    pub latency: Option<DurationSpec>,
    /// Never answer: the call hangs until the client cancels it or disconnects.
    #[serde(default)]
    pub hang: bool,
}

/// A fixed resource.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    pub uri: String,
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Text contents (a template).
    #[serde(default)]
    pub text: Option<String>,
    /// JSON contents, serialized as text (strings in it are templates).
    #[serde(default)]
    pub json: Option<Value>,
    /// Base64-encoded binary contents.
    #[serde(default)]
    pub blob: Option<String>,
    /// A file next to the scenario.
    #[serde(default)]
    pub file: Option<String>,
}

/// A resource template.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceTemplateSpec {
    /// An RFC 6570 level-1 template, e.g. `orders://{order_id}`. Templates see `params.NAME`.
    pub uri_template: String,
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Text contents (a template).
    #[serde(default)]
    pub text: Option<String>,
    /// JSON contents, serialized as text (strings in it are templates).
    #[serde(default)]
    pub json: Option<Value>,
    /// Values offered by `completion/complete` for each parameter.
    #[serde(default)]
    pub completions: BTreeMap<String, Vec<String>>,
}

/// A prompt.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub arguments: Vec<PromptArgumentSpec>,
    /// The messages, in order. Templates see `args.NAME`.
    pub messages: Vec<PromptMessageSpec>,
}

/// A prompt argument.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptArgumentSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Values offered by `completion/complete`.
    #[serde(default)]
    pub completions: Vec<String>,
}

/// A prompt message: a role and exactly one kind of content.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptMessageSpec {
    /// `user` or `assistant`.
    pub role: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub json: Option<Value>,
    #[serde(default)]
    pub image: Option<BinarySpec>,
    #[serde(default)]
    pub audio: Option<BinarySpec>,
    #[serde(default)]
    pub resource: Option<EmbeddedResourceSpec>,
    #[serde(default)]
    pub resource_link: Option<ResourceLinkSpec>,
}

/// One item, or a list of them.
#[derive(Debug)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping or a list of mappings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Ok(OneOrMany(Vec::deserialize(
                    de::value::SeqAccessDeserializer::new(seq),
                )?))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Ok(OneOrMany(vec![T::deserialize(
                    de::value::MapAccessDeserializer::new(map),
                )?]))
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let item = generator.subschema_for::<T>();
        schemars::json_schema!({
            "anyOf": [item, {"type": "array", "items": item}]
        })
    }
}
