//! Turns a parsed [`ScenarioFile`] into the checked [`Scenario`].
//!
//! Every check that does not need a call to make sense happens here, once:
//! regexes, JSON Schemas and templates compile, table references resolve,
//! files next to the scenario are read (and only files next to it). All
//! problems are collected, each with the place in the file it concerns, so
//! one `sandbar validate` shows every mistake at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::condition::compile_condition;
use crate::format::*;
use crate::glob::Glob;
use crate::model::*;
use crate::path::ArgPath;
use crate::templates;
use sandbar_redact::sandbar_mask::{Operator, PersonalKind};
use sandbar_redact::{PrivacyPolicy, Sink, SinkPolicy};

/// Largest file a scenario may read next to itself.
pub const MAX_SIDE_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// How long a call that needs approval waits when the policy does not say.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// One segment of a place in the scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceSegment {
    Key(String),
    Index(usize),
}

/// A place in the scenario file, e.g. `tools[2].respond[0].when.email`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place(pub Vec<PlaceSegment>);

impl Place {
    fn key(&self, key: &str) -> Place {
        let mut p = self.clone();
        p.0.push(PlaceSegment::Key(key.to_owned()));
        p
    }
    fn index(&self, index: usize) -> Place {
        let mut p = self.clone();
        p.0.push(PlaceSegment::Index(index));
        p
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PlaceSegment::Key(k) if i == 0 => write!(f, "{k}")?,
                PlaceSegment::Key(k) => write!(f, ".{k}")?,
                PlaceSegment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A semantic problem found while compiling.
#[derive(Debug, Clone)]
pub struct Problem {
    pub place: Place,
    pub message: String,
}

pub(crate) struct Compiler<'a> {
    base_dir: Option<&'a Path>,
    problems: Vec<Problem>,
    templates: TemplateSet,
    env: minijinja::Environment<'static>,
    hasher: Sha256,
    table_columns: BTreeMap<String, BTreeSet<String>>,
    /// Secrets from the vault, which `{{ secrets.NAME }}` may name too.
    vault: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Compiler<'a> {
    pub(crate) fn new(base_dir: Option<&'a Path>, source: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(source.as_bytes());
        Compiler {
            base_dir,
            problems: Vec::new(),
            templates: TemplateSet::default(),
            env: templates::base_environment(),
            hasher,
            table_columns: BTreeMap::new(),
            vault: None,
        }
    }

    /// Lets `{{ secrets.NAME }}` name the vault's secrets too (the
    /// scenario's own win).
    pub(crate) fn with_vault(mut self, vault: Option<&'a BTreeMap<String, String>>) -> Self {
        self.vault = vault;
        self
    }

    fn problem(&mut self, place: &Place, message: impl Into<String>) {
        self.problems.push(Problem {
            place: place.clone(),
            message: message.into(),
        });
    }

    pub(crate) fn compile(
        mut self,
        file: ScenarioFile,
        origin: String,
    ) -> Result<Scenario, Vec<Problem>> {
        let root = Place::default();
        if file.version != 1 {
            self.problem(
                &root.key("version"),
                format!(
                    "format version {} is not supported; this Sandbar reads version 1",
                    file.version
                ),
            );
        }
        if file.name.trim().is_empty() {
            self.problem(&root.key("name"), "the scenario name cannot be empty");
        }
        let clock = self.clock(file.clock.as_ref(), &root.key("clock"));
        let server = ServerIdentity {
            name: file
                .server
                .as_ref()
                .and_then(|s| s.name.clone())
                .unwrap_or_else(|| file.name.clone()),
            version: file.server.as_ref().and_then(|s| s.version.clone()),
            instructions: file.server.as_ref().and_then(|s| s.instructions.clone()),
        };

        let mut secrets = Vec::new();
        for (name, value) in &file.secrets {
            let place = root.key("secrets").key(name);
            if !valid_name(name) {
                self.problem(
                    &place,
                    "secret names may use letters, digits, `_`, `-` and `.` only",
                );
            }
            if value.len() < 4 {
                self.problem(
                    &place,
                    "a secret must be at least 4 bytes long to be redacted safely",
                );
            }
            secrets.push((name.clone(), value.clone()));
        }

        let mut tables = BTreeMap::new();
        for (name, spec) in file.data {
            let place = root.key("data").key(&name);
            if templates::RESERVED_NAMES.contains(&name.as_str()) {
                self.problem(
                    &place,
                    format!("`{name}` is a name templates already use; pick another table name"),
                );
            }
            if !valid_name(&name) || name.contains('.') {
                self.problem(
                    &place,
                    "table names may use letters, digits, `_` and `-` only",
                );
            }
            if let Some(seed) = self.table(&name, spec, &place, &mut secrets) {
                tables.insert(name, seed);
            }
        }

        let mut tools = Vec::with_capacity(file.tools.len());
        let mut tool_index = HashMap::new();
        for (i, spec) in file.tools.into_iter().enumerate() {
            let place = root.key("tools").index(i);
            if tool_index.insert(spec.name.clone(), i).is_some() {
                self.problem(
                    &place.key("name"),
                    format!("a tool named `{}` is already defined", spec.name),
                );
            }
            tools.push(self.tool(spec, &place));
        }

        let mut resources = Vec::new();
        let mut resource_index = HashMap::new();
        for (i, spec) in file.resources.into_iter().enumerate() {
            let place = root.key("resources").index(i);
            if resource_index.insert(spec.uri.clone(), i).is_some() {
                self.problem(
                    &place.key("uri"),
                    format!("a resource with URI `{}` is already defined", spec.uri),
                );
            }
            resources.push(self.resource(spec, &place));
        }

        let mut resource_templates = Vec::new();
        for (i, spec) in file.resource_templates.into_iter().enumerate() {
            let place = root.key("resource_templates").index(i);
            if let Some(t) = self.resource_template(spec, &place) {
                resource_templates.push(t);
            }
        }

        let mut prompts = Vec::new();
        let mut prompt_index = HashMap::new();
        for (i, spec) in file.prompts.into_iter().enumerate() {
            let place = root.key("prompts").index(i);
            if prompt_index.insert(spec.name.clone(), i).is_some() {
                self.problem(
                    &place.key("name"),
                    format!("a prompt named `{}` is already defined", spec.name),
                );
            }
            prompts.push(self.prompt(spec, &place));
        }

        let mode = file.mode.map(mode);
        let mut upstreams: Vec<Upstream> = Vec::new();
        for (i, spec) in file.upstreams.into_iter().enumerate() {
            let place = root.key("upstreams").index(i);
            if upstreams.iter().any(|u| u.name == spec.name) {
                self.problem(
                    &place.key("name"),
                    format!("an upstream named `{}` is already defined", spec.name),
                );
            }
            if let Some(u) = self.upstream(spec, &file.secrets, &place) {
                upstreams.push(u);
            }
        }
        for (i, tool) in tools.iter().enumerate() {
            if let Some(link) = &tool.upstream
                && !upstreams.iter().any(|u| u.name == link.upstream)
            {
                self.problem(
                    &root.key("tools").index(i).key("upstream"),
                    format!(
                        "no upstream named `{}` is defined under `upstreams`",
                        link.upstream
                    ),
                );
            }
        }
        let replay = match file.replay {
            Some(spec) => self.replay(spec, &root.key("replay")),
            None => Replay::default(),
        };
        let privacy = match file.privacy {
            Some(spec) => self.privacy(spec, &root.key("privacy")),
            None => Privacy::default(),
        };
        let mut canaries = Vec::new();
        let mut block_leaks = true;
        if let Some(spec) = file.canaries {
            let place = root.key("canaries");
            for (name, value) in spec.values {
                if value.chars().count() < 6 {
                    self.problem(
                        &place.key("values").key(&name),
                        "a canary needs at least 6 characters, or ordinary text would set it off",
                    );
                }
                canaries.push((name, value));
            }
            block_leaks = spec.on_leak != Some(LeakSpec::Record);
        }
        let policy = file
            .policy
            .map(|spec| self.policy(spec, &root.key("policy")));
        let record_dir = file
            .record
            .and_then(|r| r.dir)
            .map(|dir| self.relative_path(&dir));
        let replays = |m: Option<Mode>| m == Some(Mode::Replay);
        let any_replay = replays(mode)
            || upstreams.iter().any(|u| replays(u.mode))
            || tools.iter().any(|t| replays(t.mode));
        if any_replay && replay.cassette.is_none() {
            self.problem(
                &root.key("replay").key("cassette"),
                "items in `replay` mode need a cassette: set `replay.cassette` to a recorded `.jsonl` file",
            );
        }

        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        let hash = hex(&self.hasher.finalize());
        Ok(Scenario {
            name: file.name,
            description: file.description,
            hash,
            origin,
            seed: file.seed,
            clock,
            server,
            secrets,
            template_secrets: Arc::new(file.secrets),
            tables,
            tools,
            resources,
            resource_templates,
            prompts,
            templates: self.templates,
            mode,
            upstreams,
            replay,
            record_dir,
            privacy,
            canaries,
            block_leaks,
            policy,
            tool_index,
            prompt_index,
            resource_index,
        })
    }

    fn policy(&mut self, spec: PolicySpec, place: &Place) -> Policy {
        let approval_timeout = match spec.approval_timeout {
            Some(d) if d.0.is_zero() => {
                self.problem(
                    &place.key("approval_timeout"),
                    "an approval timeout of zero would deny every call that needs approval; give a duration such as 30s, or use `deny`",
                );
                DEFAULT_APPROVAL_TIMEOUT
            }
            Some(d) => d.0,
            None => DEFAULT_APPROVAL_TIMEOUT,
        };
        let default = match spec.default {
            Some(PolicyDefaultSpec::Deny) => PolicyDefault::Deny,
            Some(PolicyDefaultSpec::Allow) | None => PolicyDefault::Allow,
        };
        let mut rules: Vec<PolicyRule> = Vec::with_capacity(spec.rules.len());
        for (i, rule) in spec.rules.into_iter().enumerate() {
            let place = place.key("rules").index(i);
            let named = rule.name.is_some();
            let Some(rule) = self.policy_rule(i, rule, &place) else {
                continue;
            };
            if rules.iter().any(|r| r.name == rule.name) {
                let at = if named { place.key("name") } else { place };
                self.problem(
                    &at,
                    format!(
                        "another rule is already named `{}`; rule names must be unique",
                        rule.name
                    ),
                );
            }
            rules.push(rule);
        }
        Policy {
            approval_timeout,
            default,
            rules,
        }
    }

    fn policy_rule(
        &mut self,
        index: usize,
        spec: PolicyRuleSpec,
        place: &Place,
    ) -> Option<PolicyRule> {
        let given: Vec<(&'static str, String)> = [
            ("allow", spec.allow),
            ("deny", spec.deny),
            ("approve", spec.approve),
            ("rate_limit", spec.rate_limit),
        ]
        .into_iter()
        .filter_map(|(key, pattern)| pattern.map(|p| (key, p)))
        .collect();
        let (key, pattern) = match given.as_slice() {
            [] => {
                self.problem(
                    place,
                    "a rule needs one of `allow`, `deny`, `approve` or `rate_limit`, naming the tools it applies to",
                );
                return None;
            }
            [(key, pattern)] => (*key, pattern.clone()),
            [(first, _), (second, _), ..] => {
                self.problem(
                    &place.key(second),
                    format!(
                        "a rule has exactly one action, and this one already says `{first}`; write `{second}` as a rule of its own"
                    ),
                );
                return None;
            }
        };
        let tools = match Glob::new(&pattern) {
            Ok(glob) => Some(glob),
            Err(e) => {
                self.problem(&place.key(key), format!("no tool name to match: {e}"));
                None
            }
        };
        let when = spec
            .when
            .and_then(|source| match compile_condition(&source) {
                Ok(condition) => Some(condition),
                Err(e) => {
                    self.problem(&place.key("when"), e);
                    None
                }
            });
        let action = if key == "rate_limit" {
            let calls = match spec.calls {
                None => {
                    self.problem(
                        &place.key(key),
                        "`rate_limit` needs `calls`: how many calls each window allows",
                    );
                    None
                }
                Some(0) => {
                    self.problem(&place.key("calls"), "`calls` must be at least 1");
                    None
                }
                Some(n) => Some(n),
            };
            let per = match spec.per {
                None => {
                    self.problem(
                        &place.key(key),
                        "`rate_limit` needs `per`: the window the calls are counted in, e.g. 1m",
                    );
                    None
                }
                Some(d) if d.0.is_zero() => {
                    self.problem(&place.key("per"), "`per` must be longer than zero");
                    None
                }
                Some(d) => Some(d.0),
            };
            PolicyAction::RateLimit {
                calls: calls?,
                per: per?,
            }
        } else {
            for (field, present) in [("calls", spec.calls.is_some()), ("per", spec.per.is_some())] {
                if present {
                    self.problem(
                        &place.key(field),
                        format!("`{field}` belongs to `rate_limit` rules, not to `{key}` rules"),
                    );
                }
            }
            match key {
                "allow" => PolicyAction::Allow,
                "deny" => PolicyAction::Deny,
                _ => PolicyAction::Approve,
            }
        };
        let name = match spec.name {
            Some(name) if name.trim().is_empty() => {
                self.problem(&place.key("name"), "a rule name cannot be empty");
                name
            }
            Some(name) if name == "default" => {
                self.problem(
                    &place.key("name"),
                    "`default` stands for the policy's default in decisions; pick another rule name",
                );
                name
            }
            Some(name) => name,
            None => format!("rule {}", index + 1),
        };
        let message = spec
            .message
            .unwrap_or_else(|| default_policy_message(&name, action));
        Some(PolicyRule {
            name,
            tools: tools?,
            when,
            action,
            message,
        })
    }

    fn clock(&mut self, spec: Option<&ClockSpec>, place: &Place) -> Clock {
        let default_start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let Some(spec) = spec else {
            return Clock {
                start: default_start,
                step: Duration::ZERO,
            };
        };
        let start = match DateTime::parse_from_rfc3339(&spec.start) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                self.problem(
                    place,
                    format!(
                        "`{}` is not an RFC 3339 timestamp ({e}); write e.g. 2026-01-15T09:00:00Z",
                        spec.start
                    ),
                );
                default_start
            }
        };
        Clock {
            start,
            step: spec.step.map(|d| d.0).unwrap_or(Duration::ZERO),
        }
    }

    fn table(
        &mut self,
        name: &str,
        spec: TableSpec,
        place: &Place,
        secrets: &mut Vec<(String, String)>,
    ) -> Option<TableSeed> {
        let rows: Vec<Row> = match (spec.rows, spec.file) {
            (Some(rows), None) => rows,
            (None, Some(file)) => self.table_file(&file, &place.key("file"))?,
            (Some(_), Some(_)) => {
                self.problem(place, "give either `rows` or `file`, not both");
                return None;
            }
            (None, None) => Vec::new(),
        };
        let key = match spec.key {
            Some(key) => {
                if let Some(i) = rows.iter().position(|r| !r.contains_key(&key)) {
                    self.problem(&place.key("key"), format!("row {i} has no `{key}` column"));
                }
                Some(key)
            }
            None if !rows.is_empty() && rows.iter().all(|r| r.contains_key("id")) => {
                Some("id".to_owned())
            }
            None => None,
        };
        if let Some(key) = &key {
            let mut seen = BTreeSet::new();
            for (i, row) in rows.iter().enumerate() {
                if let Some(v) = row.get(key) {
                    let k = key_text(v);
                    if !seen.insert(k.clone()) {
                        self.problem(
                            place,
                            format!("row {i} repeats the key `{k}` of column `{key}`"),
                        );
                    }
                }
            }
        }
        let mut columns: BTreeSet<String> = BTreeSet::new();
        for row in &rows {
            columns.extend(row.keys().cloned());
        }
        for (i, column) in spec.secret.iter().enumerate() {
            if !columns.contains(column) && !rows.is_empty() {
                self.problem(
                    &place.key("secret").index(i),
                    format!("no row has a `{column}` column"),
                );
            }
            for row in &rows {
                if let Some(value) = row.get(column) {
                    let text = key_text(value);
                    if text.len() >= 4 {
                        secrets.push((format!("data.{name}.{column}"), text));
                    }
                }
            }
        }
        self.table_columns.insert(name.to_owned(), columns);
        Some(TableSeed {
            key,
            rows: Arc::new(rows.into_iter().map(Arc::new).collect()),
        })
    }

    fn table_file(&mut self, file: &str, place: &Place) -> Option<Vec<Row>> {
        let bytes = self.side_file(file, place)?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                self.problem(place, format!("`{file}` is not UTF-8 text"));
                return None;
            }
        };
        let lower = file.to_ascii_lowercase();
        let parsed: Result<Vec<Row>, String> = if lower.ends_with(".csv") {
            parse_csv(&text)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, l)| {
                    serde_json::from_str::<Row>(l).map_err(|e| {
                        format!("line {}: {e} (each line must be a JSON object)", n + 1)
                    })
                })
                .collect()
        } else if lower.ends_with(".json") {
            serde_json::from_str::<Vec<Row>>(&text)
                .map_err(|e| format!("{e} (expected an array of objects)"))
        } else {
            Err("unknown table file type; use .csv, .json or .jsonl".to_owned())
        };
        match parsed {
            Ok(rows) => Some(rows),
            Err(e) => {
                self.problem(place, format!("cannot read table from `{file}`: {e}"));
                None
            }
        }
    }

    /// Reads a file that must sit in the scenario's directory (or below it).
    /// Absolute paths, `..` and symlinks leading outside are refused: a
    /// scenario shared with a team must not be able to read arbitrary files.
    fn side_file(&mut self, file: &str, place: &Place) -> Option<Vec<u8>> {
        let Some(base) = self.base_dir else {
            self.problem(
                place,
                "files can only be read by a scenario loaded from a file",
            );
            return None;
        };
        let relative = Path::new(file);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            self.problem(
                place,
                format!("`{file}` must be a relative path inside the scenario's directory"),
            );
            return None;
        }
        let full: PathBuf = base.join(relative);
        let inside = match (full.canonicalize(), base.canonicalize()) {
            (Ok(f), Ok(b)) => f.starts_with(&b),
            (Err(e), _) => {
                self.problem(place, format!("cannot read `{file}`: {e}"));
                return None;
            }
            (_, Err(e)) => {
                self.problem(
                    place,
                    format!("cannot resolve the scenario's directory: {e}"),
                );
                return None;
            }
        };
        if !inside {
            self.problem(
                place,
                format!("`{file}` resolves outside the scenario's directory"),
            );
            return None;
        }
        match std::fs::metadata(&full) {
            Ok(m) if m.len() > MAX_SIDE_FILE_BYTES => {
                self.problem(
                    place,
                    format!(
                        "`{file}` is larger than the {} MiB limit",
                        MAX_SIDE_FILE_BYTES >> 20
                    ),
                );
                return None;
            }
            Ok(_) => {}
            Err(e) => {
                self.problem(place, format!("cannot read `{file}`: {e}"));
                return None;
            }
        }
        match std::fs::read(&full) {
            Ok(bytes) => {
                self.hasher.update(file.as_bytes());
                self.hasher.update(&bytes);
                Some(bytes)
            }
            Err(e) => {
                self.problem(place, format!("cannot read `{file}`: {e}"));
                None
            }
        }
    }

    fn tool(&mut self, spec: ToolSpec, place: &Place) -> Tool {
        let declares_schema = spec.input_schema.is_some();
        if !valid_tool_name(&spec.name) {
            self.problem(
                &place.key("name"),
                "tool names are 1 to 128 characters of letters, digits, `_`, `-` and `.`",
            );
        }
        let (input_schema, validator) = match spec.input_schema {
            None => {
                let mut m = Map::new();
                m.insert("type".into(), Value::from("object"));
                (Arc::new(m), None)
            }
            Some(schema) => self.schema(schema, &place.key("input_schema")),
        };
        let (output_schema, output_validator) = match spec.output_schema {
            Some(s) => {
                let (schema, validator) = self.schema(s, &place.key("output_schema"));
                (Some(schema), validator)
            }
            None => (None, None),
        };
        let annotations = spec.annotations.map(|a| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            };
            put("title", a.title.map(Value::from));
            put("readOnlyHint", a.read_only.map(Value::from));
            put("destructiveHint", a.destructive.map(Value::from));
            put("idempotentHint", a.idempotent.map(Value::from));
            put("openWorldHint", a.open_world.map(Value::from));
            m
        });
        let rules = spec
            .respond
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.rule(r, &place.key("respond").index(i)))
            .collect();
        let effects = self.effects(spec.effect.0, &place.key("effect"));
        let faults = spec
            .faults
            .into_iter()
            .enumerate()
            .map(|(i, f)| self.fault(i, f, &place.key("faults").index(i)))
            .collect();
        if let Some(validator) = &validator {
            for (i, example) in spec.examples.iter().enumerate() {
                let instance = Value::Object(example.clone());
                if let Some(e) = validator.iter_errors(&instance).next() {
                    self.problem(
                        &place.key("examples").index(i),
                        format!("this example does not fit the input schema: {e}"),
                    );
                }
            }
        }
        let matching = match spec.matching {
            Some(m) => self.match_rules(m, &place.key("match")),
            None => MatchRules::default(),
        };
        let upstream = spec.upstream.map(|upstream| UpstreamTool {
            upstream,
            tool: spec
                .upstream_tool
                .clone()
                .unwrap_or_else(|| spec.name.clone()),
        });
        if upstream.is_none() && spec.upstream_tool.is_some() {
            self.problem(
                &place.key("upstream_tool"),
                "`upstream_tool` needs `upstream`: name the upstream the tool lives on",
            );
        }
        let tool_mode = spec.mode.map(mode);
        if upstream.is_none() && spec.miss == Some(MissSpec::Live) {
            self.problem(
                &place.key("miss"),
                "a `live` miss policy needs `upstream`: name the upstream to ask",
            );
        }
        if upstream.is_none() && tool_mode.is_some_and(Mode::forwards) {
            self.problem(
                &place.key("mode"),
                "a tool in `live` or `record` mode needs `upstream`: name the upstream it forwards to",
            );
        }
        Tool {
            mode: tool_mode,
            miss: spec.miss.map(miss),
            matching,
            upstream,
            declares_schema,
            mask: spec.mask,
            name: spec.name,
            title: spec.title,
            description: spec.description,
            input_schema,
            output_schema,
            output_validator,
            annotations,
            validator,
            rules,
            effects,
            faults,
            examples: spec.examples,
        }
    }

    fn upstream(
        &mut self,
        spec: UpstreamSpec,
        secrets: &BTreeMap<String, String>,
        place: &Place,
    ) -> Option<Upstream> {
        if !valid_name(&spec.name) || spec.name.contains('.') {
            self.problem(
                &place.key("name"),
                "upstream names may use letters, digits, `_` and `-` only",
            );
        }
        let with_secrets = |this: &mut Self, values: BTreeMap<String, String>, key: &str| {
            values
                .into_iter()
                .map(|(k, v)| {
                    let v = this.fill_secrets(&v, secrets, &place.key(key).key(&k));
                    (k, v)
                })
                .collect::<BTreeMap<_, _>>()
        };
        let transport = match (spec.command, spec.url) {
            (Some(command), None) => {
                if !spec.headers.is_empty() {
                    self.problem(&place.key("headers"), "`headers` are for `url` upstreams");
                }
                if command.trim().is_empty() {
                    self.problem(&place.key("command"), "the command cannot be empty");
                }
                let env = with_secrets(self, spec.env, "env");
                UpstreamTransport::Stdio {
                    command,
                    args: spec.args,
                    env,
                    cwd: spec.cwd.map(|c| self.relative_path(&c)),
                }
            }
            (None, Some(url)) => {
                // A credential may travel in the query (`?api_key={{ secrets.K }}`).
                let url = if url.contains("{{") {
                    self.fill_secrets(&url, secrets, &place.key("url"))
                } else {
                    url
                };
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    self.problem(
                        &place.key("url"),
                        format!("`{url}` is not an http:// or https:// URL"),
                    );
                }
                if !spec.args.is_empty() || !spec.env.is_empty() || spec.cwd.is_some() {
                    self.problem(place, "`args`, `env` and `cwd` are for `command` upstreams");
                }
                let headers = with_secrets(self, spec.headers, "headers");
                UpstreamTransport::Http { url, headers }
            }
            (Some(_), Some(_)) => {
                self.problem(
                    place,
                    "an upstream has either `command` (a process) or `url` (Streamable HTTP), not both",
                );
                return None;
            }
            (None, None) => {
                self.problem(
                    place,
                    "an upstream needs `command` (a process speaking MCP on stdio) or `url` (a Streamable HTTP endpoint)",
                );
                return None;
            }
        };
        if spec.mode == Some(ModeSpec::Stub) {
            self.problem(
                &place.key("mode"),
                "an upstream's items cannot be stubbed as a whole; declare the tool under `tools` with `upstream:` and response rules",
            );
        }
        let hide = spec
            .hide
            .iter()
            .enumerate()
            .filter_map(|(i, pattern)| {
                let re = format!("^{}$", regex::escape(pattern).replace("\\*", ".*"));
                match regex::Regex::new(&re) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        self.problem(&place.key("hide").index(i), e.to_string());
                        None
                    }
                }
            })
            .collect();
        for (from, to) in &spec.rename {
            if !valid_tool_name(to) {
                self.problem(
                    &place.key("rename").key(from),
                    "tool names are 1 to 128 characters of letters, digits, `_`, `-` and `.`",
                );
            }
        }
        if let Some(prefix) = &spec.prefix
            && !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            self.problem(
                &place.key("prefix"),
                "a prefix may use letters, digits, `_`, `-` and `.` only",
            );
        }
        Some(Upstream {
            name: spec.name,
            transport,
            timeout: spec.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
            connect_timeout: spec
                .connect_timeout
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(10)),
            prefix: spec.prefix,
            hide,
            rename: spec.rename,
            mode: spec.mode.map(mode),
            mask: spec.mask,
        })
    }

    /// Replaces `{{ secrets.NAME }}` by the secret's value.
    fn fill_secrets(
        &mut self,
        text: &str,
        secrets: &BTreeMap<String, String>,
        place: &Place,
    ) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find("}}") else {
                self.problem(place, "`{{` without a closing `}}`");
                return out;
            };
            let inner = rest[start + 2..start + len].trim();
            match inner.strip_prefix("secrets.") {
                Some(name) => match secrets
                    .get(name)
                    .or_else(|| self.vault.and_then(|v| v.get(name)))
                {
                    Some(value) => out.push_str(value),
                    None if self.vault.is_some() => self.problem(
                        place,
                        format!(
                            "no secret named `{name}` is defined under `secrets` or stored in the vault (`sandbar secret set {name}`)"
                        ),
                    ),
                    None => self.problem(
                        place,
                        format!("no secret named `{name}` is defined under `secrets`"),
                    ),
                },
                None => self.problem(
                    place,
                    format!(
                        "only `{{{{ secrets.NAME }}}}` can be written here, not `{{{{ {inner} }}}}`"
                    ),
                ),
            }
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        out
    }

    fn privacy(&mut self, spec: PrivacySpec, place: &Place) -> Privacy {
        let mut policy = PrivacyPolicy::default();
        if let Some(op) = spec.personal {
            policy.personal = self.operator(op, &place.key("personal"));
        }
        policy.kinds = self.kind_operators(spec.kinds, &place.key("kinds"));
        for (name, sink_spec) in spec.sinks {
            let sink_place = place.key("sinks").key(&name);
            let sink = match name.parse::<Sink>() {
                Ok(sink) => sink,
                Err(e) => {
                    self.problem(&sink_place, e);
                    continue;
                }
            };
            let personal = sink_spec
                .personal
                .map(|op| self.operator(op, &sink_place.key("personal")));
            let kinds = self.kind_operators(sink_spec.kinds, &sink_place.key("kinds"));
            policy.sinks.push((sink, SinkPolicy { personal, kinds }));
        }
        Privacy {
            mask_upstream: spec.mask_upstream.unwrap_or(true),
            policy,
        }
    }

    fn kind_operators(
        &mut self,
        kinds: BTreeMap<String, OperatorSpec>,
        place: &Place,
    ) -> Vec<(PersonalKind, Operator)> {
        let mut out = Vec::new();
        for (name, op) in kinds {
            let kind_place = place.key(&name);
            let Some(kind) = PersonalKind::ALL.iter().find(|k| k.as_str() == name) else {
                let names: Vec<&str> = PersonalKind::ALL.iter().map(|k| k.as_str()).collect();
                self.problem(
                    &kind_place,
                    format!(
                        "unknown kind of personal data `{name}`; kinds are {}",
                        names.join(", ")
                    ),
                );
                continue;
            };
            let op = self.operator(op, &kind_place);
            out.push((*kind, op));
        }
        out
    }

    fn operator(&mut self, spec: OperatorSpec, place: &Place) -> Operator {
        let (name, keep, char, length) = match spec {
            OperatorSpec::Name(name) => (name, None, None, None),
            OperatorSpec::Detailed(d) => (d.op, d.keep, d.char, d.length),
        };
        let misplaced = |this: &mut Self, what: &str, op: &str| {
            this.problem(place, format!("`{what}` is a setting of `{op}` only"));
        };
        if name != OperatorName::Mask && (keep.is_some() || char.is_some()) {
            misplaced(self, if keep.is_some() { "keep" } else { "char" }, "mask");
        }
        if name != OperatorName::Hash && length.is_some() {
            misplaced(self, "length", "hash");
        }
        match name {
            OperatorName::Redact => Operator::Redact,
            OperatorName::Pseudonymize => Operator::Pseudonymize,
            OperatorName::Tokenize => Operator::Tokenize,
            OperatorName::Mask => {
                let char = char.unwrap_or('*');
                // A space or a control character in place of letters would
                // reshape the text (a masked word turned into blanks or a
                // line break) instead of hiding it.
                if char.is_whitespace() || char.is_control() {
                    self.problem(
                        place,
                        format!("a mask `char` must be visible, not {char:?}"),
                    );
                }
                Operator::Mask {
                    keep: keep.unwrap_or(4),
                    char,
                }
            }
            OperatorName::Hash => {
                let length = length.unwrap_or(16);
                if !(1..=64).contains(&length) {
                    self.problem(place, "a hash `length` is 1 to 64 hex digits");
                }
                Operator::Hash { length }
            }
        }
    }

    fn replay(&mut self, spec: ReplaySpec, place: &Place) -> Replay {
        Replay {
            cassette: spec.cassette.map(|c| self.relative_path(&c)),
            miss: spec.miss.map(miss).unwrap_or_default(),
            strict_order: spec.strict_order,
            repeat: spec.repeat,
            matching: match spec.matching {
                Some(m) => self.match_rules(m, &place.key("match")),
                None => MatchRules::default(),
            },
        }
    }

    fn match_rules(&mut self, spec: MatchSpec, place: &Place) -> MatchRules {
        let check = |this: &mut Self, path: &str, place: Place| {
            if let Err(e) = check_field_path(path) {
                this.problem(&place, format!("`{path}` is not a field path: {e}"));
            }
        };
        for (i, p) in spec.ignore.iter().enumerate() {
            check(self, p, place.key("ignore").index(i));
        }
        for (i, p) in spec.same_type.iter().enumerate() {
            check(self, p, place.key("same_type").index(i));
        }
        let mut regex = Vec::new();
        for (p, re) in spec.regex {
            check(self, &p, place.key("regex").key(&p));
            match regex::Regex::new(&re) {
                Ok(compiled) => regex.push((p, compiled)),
                Err(e) => self.problem(&place.key("regex").key(&p), e.to_string()),
            }
        }
        MatchRules {
            ignore: spec.ignore,
            regex,
            same_type: spec.same_type,
        }
    }

    /// A path the user wrote, relative to the scenario's directory (or to
    /// the working directory for a scenario given as text).
    fn relative_path(&self, path: &str) -> PathBuf {
        match self.base_dir {
            Some(base) => base.join(path),
            None => PathBuf::from(path),
        }
    }

    fn schema(
        &mut self,
        schema: Value,
        place: &Place,
    ) -> (Arc<Map<String, Value>>, Option<Arc<jsonschema::Validator>>) {
        let Value::Object(map) = schema else {
            self.problem(place, "a schema must be a mapping");
            return (Arc::new(Map::new()), None);
        };
        if map.get("type").and_then(Value::as_str) != Some("object") {
            self.problem(
                place,
                "MCP requires `type: object` at the top of tool schemas",
            );
        }
        let value = Value::Object(map.clone());
        let validator = match jsonschema::options().build(&value) {
            Ok(v) => Some(Arc::new(v)),
            Err(e) => {
                self.problem(place, format!("invalid JSON Schema: {e}"));
                None
            }
        };
        (Arc::new(map), validator)
    }

    fn rule(&mut self, spec: RuleSpec, place: &Place) -> Rule {
        let conditions = self.conditions(spec.when, &place.key("when"));
        let guard = spec.guard.and_then(|g| {
            let expr = templates::single_expression(&g)
                .map(str::to_owned)
                .unwrap_or(g);
            self.expression(&expr, &place.key("if"))
        });
        let steps = spec
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| self.step(s, &place.key("steps").index(i)))
            .collect();
        let effects = self.effects(spec.effect.0, &place.key("effect"));
        if let Some(branches) = spec.then {
            let p = place.key("then");
            let forms = [
                spec.text.is_some(),
                spec.json.is_some(),
                spec.content.is_some(),
                spec.error.is_some(),
                spec.protocol_error.is_some(),
                spec.structured.is_some(),
            ];
            if forms.iter().any(|f| *f) {
                self.problem(place, "a rule with `then` answers through its `then` rules; move text, json, content or errors into them");
            }
            if branches.is_empty() {
                self.problem(&p, "`then` needs at least one rule");
            }
            let rules = branches
                .into_iter()
                .enumerate()
                .map(|(i, r)| self.rule(r, &p.index(i)))
                .collect();
            return Rule {
                conditions,
                guard,
                steps,
                effects,
                response: Response::Then(rules),
            };
        }
        let given: Vec<&str> = [
            ("text", spec.text.is_some()),
            ("json", spec.json.is_some()),
            ("content", spec.content.is_some()),
            ("error", spec.error.is_some()),
            ("protocol_error", spec.protocol_error.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .collect();
        if given.len() > 1 {
            self.problem(
                place,
                format!(
                    "a rule answers one way only, but this one gives {}",
                    given.join(" and ")
                ),
            );
        }
        if spec.structured.is_some()
            && (spec.error.is_some() || spec.protocol_error.is_some() || spec.json.is_some())
        {
            self.problem(
                &place.key("structured"),
                "`structured` goes with `text` or `content`",
            );
        }
        let response = if let Some(text) = spec.error {
            Response::ToolError(self.text(&text, &place.key("error")))
        } else if let Some(pe) = spec.protocol_error {
            Response::ProtocolError(self.protocol_error(pe, &place.key("protocol_error")))
        } else if let Some(json) = spec.json {
            let p = place.key("json");
            let value = self.value(json, &p);
            Response::Result {
                content: vec![ContentTemplate::Json(value.clone())],
                structured: Some(value),
            }
        } else {
            let mut content = Vec::new();
            if let Some(text) = spec.text {
                content.push(ContentTemplate::Text(self.text(&text, &place.key("text"))));
            }
            if let Some(blocks) = spec.content {
                for (i, block) in blocks.into_iter().enumerate() {
                    if let Some(c) = self.content(block, &place.key("content").index(i)) {
                        content.push(c);
                    }
                }
            }
            let structured = spec
                .structured
                .map(|s| self.value(s, &place.key("structured")));
            if given.is_empty() {
                self.problem(place, "a rule must say what to answer: text, json, content, error, protocol_error or then");
            }
            Response::Result {
                content,
                structured,
            }
        };
        Rule {
            conditions,
            guard,
            steps,
            effects,
            response,
        }
    }

    fn conditions(
        &mut self,
        when: Option<BTreeMap<String, MatcherSpec>>,
        place: &Place,
    ) -> Vec<Condition> {
        let mut out = Vec::new();
        for (path_text, matcher) in when.unwrap_or_default() {
            let p = place.key(&path_text);
            let path = match ArgPath::parse(&path_text) {
                Ok(path) => path,
                Err(e) => {
                    self.problem(&p, e);
                    continue;
                }
            };
            match matcher {
                MatcherSpec::Equals(v) => out.push(Condition {
                    path,
                    test: Test::Equals(v),
                }),
                MatcherSpec::Ops(ops) => {
                    let empty = ops.is_empty();
                    let tests = self.tests(*ops, &p);
                    if empty {
                        self.problem(
                            &p,
                            "an empty mapping tests nothing; give at least one operator",
                        );
                    }
                    out.extend(tests.into_iter().map(|test| Condition {
                        path: path.clone(),
                        test,
                    }));
                }
            }
        }
        out
    }

    fn tests(&mut self, ops: MatcherOps, place: &Place) -> Vec<Test> {
        let mut tests = Vec::new();
        if let Some(v) = ops.eq {
            tests.push(Test::Equals(v));
        }
        if let Some(v) = ops.ne {
            tests.push(Test::NotEquals(v));
        }
        if let Some(pattern) = ops.regex {
            match regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
            {
                Ok(re) => tests.push(Test::Regex(re)),
                Err(e) => self.problem(
                    &place.key("regex"),
                    format!("invalid regular expression: {e}"),
                ),
            }
        }
        for (bound, make, key) in [
            (ops.gt, Test::GreaterThan as fn(f64) -> Test, "gt"),
            (ops.gte, Test::AtLeast, "gte"),
            (ops.lt, Test::LessThan, "lt"),
            (ops.lte, Test::AtMost, "lte"),
        ] {
            if let Some(b) = bound {
                if b.is_finite() {
                    tests.push(make(b));
                } else {
                    self.problem(&place.key(key), "bounds must be finite numbers");
                }
            }
        }
        if let Some(v) = ops.one_of {
            tests.push(Test::OneOf(v));
        }
        if let Some(v) = ops.not_in {
            tests.push(Test::NoneOf(v));
        }
        if let Some(reference) = ops.in_table {
            let p = place.key("in_table");
            match reference.split_once('.') {
                Some((table, column)) if !table.is_empty() && !column.is_empty() => {
                    match self.table_columns.get(table) {
                        None => self.problem(&p, format!("there is no data table `{table}`")),
                        Some(columns) if !columns.is_empty() && !columns.contains(column) => {
                            self.problem(&p, format!("table `{table}` has no column `{column}`"))
                        }
                        Some(_) => {}
                    }
                    tests.push(Test::InTable {
                        table: table.to_owned(),
                        column: column.to_owned(),
                    });
                }
                _ => self.problem(&p, "write the column as `table.column`"),
            }
        }
        if let Some(v) = ops.present {
            tests.push(Test::Present(v));
        }
        if let Some(v) = ops.contains {
            tests.push(Test::Contains(v));
        }
        if let Some(v) = ops.starts_with {
            tests.push(Test::StartsWith(v));
        }
        if let Some(v) = ops.ends_with {
            tests.push(Test::EndsWith(v));
        }
        tests
    }

    fn step(&mut self, spec: StepSpec, place: &Place) -> Step {
        match spec {
            StepSpec::Progress(p) => {
                let message = p
                    .message
                    .map(|m| self.text(&m, &place.key("progress").key("message")));
                if !p.progress.is_finite() || p.total.is_some_and(|t| !t.is_finite()) {
                    self.problem(
                        &place.key("progress"),
                        "progress values must be finite numbers",
                    );
                }
                Step::Progress {
                    progress: p.progress,
                    total: p.total,
                    message,
                }
            }
            StepSpec::Log(l) => {
                let p = place.key("log");
                let level = LogLevel::parse(&l.level).unwrap_or_else(|| {
                    self.problem(&p.key("level"), format!("`{}` is not a log level (debug, info, notice, warning, error, critical, alert, emergency)", l.level));
                    LogLevel::Info
                });
                Step::Log {
                    level,
                    message: self.text(&l.message, &p.key("message")),
                    logger: l.logger,
                }
            }
            StepSpec::Wait(d) => Step::Wait(d.0),
            StepSpec::Sample(s) => {
                let p = place.key("sample");
                self.answer_name(&s.save_as, &p.key("as"));
                Step::Sample {
                    prompt: self.text(&s.prompt, &p.key("prompt")),
                    system: s.system.map(|t| self.text(&t, &p.key("system"))),
                    save_as: s.save_as,
                    max_tokens: s.max_tokens,
                }
            }
            StepSpec::Elicit(e) => {
                let p = place.key("elicit");
                self.answer_name(&e.save_as, &p.key("as"));
                if e.schema.get("type").and_then(Value::as_str) != Some("object") {
                    self.problem(&p.key("schema"), "an elicitation schema is an object schema (`type: object` with `properties`)");
                }
                Step::Elicit {
                    message: self.text(&e.message, &p.key("message")),
                    schema: e.schema,
                    save_as: e.save_as,
                }
            }
            StepSpec::ResourceUpdated(uri) => {
                Step::ResourceUpdated(self.text(&uri, &place.key("resource_updated")))
            }
        }
    }

    fn answer_name(&mut self, name: &str, place: &Place) {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.problem(place, "answer names may use letters, digits and `_` only");
        }
    }

    fn effects(&mut self, specs: Vec<EffectSpec>, place: &Place) -> Vec<Effect> {
        let mut out = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let p = place.index(i);
            let kinds = [
                spec.insert.is_some(),
                spec.update.is_some(),
                spec.delete.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                self.problem(
                    &p,
                    "an effect names exactly one table with `insert`, `update` or `delete`",
                );
                continue;
            }
            let table = spec
                .insert
                .clone()
                .or(spec.update.clone())
                .or(spec.delete.clone())
                .unwrap_or_default();
            if !self.table_columns.contains_key(&table) {
                self.problem(&p, format!("there is no data table `{table}`"));
            }
            let filter = spec
                .filter
                .map(|f| self.columns(f.into_iter().collect(), &p.key("where")));
            let set = spec
                .set
                .map(|s| self.columns(s.into_iter().collect(), &p.key("set")));
            let row = spec
                .row
                .map(|r| self.columns(r.into_iter().collect(), &p.key("row")));
            let effect = if spec.insert.is_some() {
                if filter.is_some() || set.is_some() {
                    self.problem(&p, "`insert` takes a `row`, not `where` or `set`");
                }
                let Some(row) = row else {
                    self.problem(&p, "`insert` needs a `row`");
                    continue;
                };
                Effect::Insert { table, row }
            } else if spec.update.is_some() {
                if row.is_some() {
                    self.problem(&p, "`update` takes `where` and `set`, not `row`");
                }
                let (Some(filter), Some(set)) = (filter, set) else {
                    self.problem(&p, "`update` needs `where` and `set`");
                    continue;
                };
                Effect::Update { table, filter, set }
            } else {
                if row.is_some() || set.is_some() {
                    self.problem(&p, "`delete` takes only `where`");
                }
                let Some(filter) = filter else {
                    self.problem(&p, "`delete` needs `where`");
                    continue;
                };
                Effect::Delete { table, filter }
            };
            out.push(effect);
        }
        out
    }

    fn columns(
        &mut self,
        entries: Vec<(String, Value)>,
        place: &Place,
    ) -> Vec<(String, ValueTemplate)> {
        entries
            .into_iter()
            .map(|(k, v)| {
                let t = self.value(v, &place.key(&k));
                (k, t)
            })
            .collect()
    }

    fn fault(&mut self, index: usize, spec: FaultSpec, place: &Place) -> Fault {
        if let Some(p) = spec.probability
            && !(0.0..=1.0).contains(&p)
        {
            self.problem(
                &place.key("probability"),
                "a probability is between 0 and 1",
            );
        }
        if spec.every == Some(0) {
            self.problem(&place.key("every"), "`every` counts calls from 1");
        }
        let conditions = self.conditions(spec.when, &place.key("when"));
        let actions = [
            spec.error.is_some(),
            spec.protocol_error.is_some(),
            spec.hang,
        ];
        if actions.iter().filter(|a| **a).count() > 1 {
            self.problem(
                place,
                "a fault does one of `error`, `protocol_error` or `hang`",
            );
        }
        let action = if let Some(e) = spec.error {
            FaultAction::ToolError(self.text(&e, &place.key("error")))
        } else if let Some(pe) = spec.protocol_error {
            FaultAction::ProtocolError(self.protocol_error(pe, &place.key("protocol_error")))
        } else if spec.hang {
            FaultAction::Hang
        } else {
            if spec.latency.is_none() {
                self.problem(
                    place,
                    "a fault needs `error`, `protocol_error`, `hang` or `latency`",
                );
            }
            FaultAction::DelayOnly
        };
        Fault {
            index,
            probability: spec.probability,
            every: spec.every,
            after: spec.after,
            on_calls: spec.on_calls,
            conditions,
            latency: spec.latency.map(|d| d.0),
            action,
        }
    }

    fn protocol_error(&mut self, spec: ProtocolErrorSpec, place: &Place) -> ProtocolErrorTemplate {
        ProtocolErrorTemplate {
            code: spec.code.unwrap_or(-32603),
            message: self.text(&spec.message, &place.key("message")),
            data: spec.data,
        }
    }

    fn content(&mut self, spec: ContentSpec, place: &Place) -> Option<ContentTemplate> {
        Some(match spec {
            ContentSpec::Text(t) => ContentTemplate::Text(self.text(&t, &place.key("text"))),
            ContentSpec::Json(v) => ContentTemplate::Json(self.value(v, &place.key("json"))),
            ContentSpec::Image(b) => {
                let (data, mime_type) = self.binary(b, &place.key("image"), "image/png")?;
                ContentTemplate::Image { data, mime_type }
            }
            ContentSpec::Audio(b) => {
                let (data, mime_type) = self.binary(b, &place.key("audio"), "audio/wav")?;
                ContentTemplate::Audio { data, mime_type }
            }
            ContentSpec::Resource(r) => {
                let p = place.key("resource");
                let (body, mime) = self.body(r.text, r.json, r.blob, r.file, r.mime_type, &p)?;
                ContentTemplate::Resource {
                    uri: r.uri,
                    mime_type: mime,
                    body,
                }
            }
            ContentSpec::ResourceLink(l) => ContentTemplate::ResourceLink {
                uri: l.uri,
                name: l.name,
                description: l.description,
                mime_type: l.mime_type,
            },
        })
    }

    fn binary(
        &mut self,
        spec: BinarySpec,
        place: &Place,
        fallback_mime: &str,
    ) -> Option<(Arc<str>, String)> {
        let (data, guessed) = match (spec.data, spec.file) {
            (Some(data), None) => {
                let cleaned: String = data.split_whitespace().collect();
                if base64::engine::general_purpose::STANDARD
                    .decode(&cleaned)
                    .is_err()
                {
                    self.problem(&place.key("data"), "`data` is not valid base64");
                    return None;
                }
                (cleaned, None)
            }
            (None, Some(file)) => {
                let bytes = self.side_file(&file, &place.key("file"))?;
                (
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                    guess_mime(&file),
                )
            }
            _ => {
                self.problem(place, "give exactly one of `data` (base64) or `file`");
                return None;
            }
        };
        let mime = spec
            .mime_type
            .or(guessed.map(str::to_owned))
            .unwrap_or_else(|| fallback_mime.to_owned());
        Some((Arc::from(data), mime))
    }

    fn body(
        &mut self,
        text: Option<String>,
        json: Option<Value>,
        blob: Option<String>,
        file: Option<String>,
        mime_type: Option<String>,
        place: &Place,
    ) -> Option<(ResourceBody, Option<String>)> {
        let count = [
            text.is_some(),
            json.is_some(),
            blob.is_some(),
            file.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if count != 1 {
            self.problem(
                place,
                "give exactly one of `text`, `json`, `blob` or `file`",
            );
            return None;
        }
        if let Some(t) = text {
            return Some((
                ResourceBody::Text(self.text(&t, &place.key("text"))),
                mime_type.or(Some("text/plain".into())),
            ));
        }
        if let Some(j) = json {
            return Some((
                ResourceBody::Json(self.value(j, &place.key("json"))),
                mime_type.or(Some("application/json".into())),
            ));
        }
        if let Some(b) = blob {
            let cleaned: String = b.split_whitespace().collect();
            if base64::engine::general_purpose::STANDARD
                .decode(&cleaned)
                .is_err()
            {
                self.problem(&place.key("blob"), "`blob` is not valid base64");
                return None;
            }
            return Some((ResourceBody::Blob(Arc::from(cleaned)), mime_type));
        }
        let file = file?;
        let bytes = self.side_file(&file, &place.key("file"))?;
        let mime = mime_type.or(guess_mime(&file).map(str::to_owned));
        let textual = mime
            .as_deref()
            .is_some_and(|m| m.starts_with("text/") || m == "application/json");
        match (textual, String::from_utf8(bytes)) {
            (true, Ok(text)) => Some((
                ResourceBody::Text(TextTemplate::Literal(Arc::from(text))),
                mime,
            )),
            (_, Ok(text)) => Some((
                ResourceBody::Blob(Arc::from(
                    base64::engine::general_purpose::STANDARD.encode(text),
                )),
                mime,
            )),
            (_, Err(e)) => Some((
                ResourceBody::Blob(Arc::from(
                    base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                )),
                mime,
            )),
        }
    }

    fn resource(&mut self, spec: ResourceSpec, place: &Place) -> Resource {
        let (body, mime_type) = self
            .body(
                spec.text,
                spec.json,
                spec.blob,
                spec.file,
                spec.mime_type,
                place,
            )
            .unwrap_or((ResourceBody::Blob(Arc::from("")), None));
        Resource {
            uri: spec.uri,
            name: spec.name,
            title: spec.title,
            description: spec.description,
            mime_type,
            body,
        }
    }

    fn resource_template(
        &mut self,
        spec: ResourceTemplateSpec,
        place: &Place,
    ) -> Option<ResourceTemplate> {
        let uri = match parse_uri_template(&spec.uri_template) {
            Ok(u) => u,
            Err(e) => {
                self.problem(&place.key("uri_template"), e);
                return None;
            }
        };
        for param in spec.completions.keys() {
            if !uri.variables.contains(param) {
                self.problem(
                    &place.key("completions").key(param),
                    format!("the template has no `{{{param}}}` variable"),
                );
            }
        }
        let (body, mime_type) =
            self.body(spec.text, spec.json, None, None, spec.mime_type, place)?;
        Some(ResourceTemplate {
            uri,
            name: spec.name,
            title: spec.title,
            description: spec.description,
            mime_type,
            body,
            completions: spec.completions,
        })
    }

    fn prompt(&mut self, spec: PromptSpec, place: &Place) -> Prompt {
        let mut seen = BTreeSet::new();
        for (i, a) in spec.arguments.iter().enumerate() {
            if !seen.insert(a.name.clone()) {
                self.problem(
                    &place.key("arguments").index(i),
                    format!("argument `{}` is listed twice", a.name),
                );
            }
        }
        let mut messages = Vec::new();
        for (i, m) in spec.messages.into_iter().enumerate() {
            let p = place.key("messages").index(i);
            let role = match m.role.as_str() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    self.problem(
                        &p.key("role"),
                        format!("`{other}` is not a role; use `user` or `assistant`"),
                    );
                    Role::User
                }
            };
            let mut contents: Vec<ContentSpec> = Vec::new();
            if let Some(t) = m.text {
                contents.push(ContentSpec::Text(t));
            }
            if let Some(j) = m.json {
                contents.push(ContentSpec::Json(j));
            }
            if let Some(b) = m.image {
                contents.push(ContentSpec::Image(b));
            }
            if let Some(b) = m.audio {
                contents.push(ContentSpec::Audio(b));
            }
            if let Some(r) = m.resource {
                contents.push(ContentSpec::Resource(r));
            }
            if let Some(l) = m.resource_link {
                contents.push(ContentSpec::ResourceLink(l));
            }
            if contents.len() != 1 {
                self.problem(&p, "a prompt message has exactly one of text, json, image, audio, resource or resource_link");
                continue;
            }
            if let Some(content) = contents.pop().and_then(|c| self.content(c, &p)) {
                messages.push(PromptMessage { role, content });
            }
        }
        Prompt {
            name: spec.name,
            title: spec.title,
            description: spec.description,
            arguments: spec
                .arguments
                .into_iter()
                .map(|a| PromptArgument {
                    name: a.name,
                    description: a.description,
                    required: a.required,
                    completions: a.completions,
                })
                .collect(),
            messages,
        }
    }

    /// A text template, or a literal when the string has no template syntax.
    fn text(&mut self, text: &str, place: &Place) -> TextTemplate {
        if !templates::is_template(text) {
            return TextTemplate::Literal(Arc::from(text));
        }
        match self.template(text.to_owned(), TemplateKind::Text, place) {
            Some(id) => TextTemplate::Template(id),
            None => TextTemplate::Literal(Arc::from("")),
        }
    }

    /// A value template: literals stay literal; strings with template syntax
    /// render, and a lone `{{ expr }}` keeps its type.
    fn value(&mut self, value: Value, place: &Place) -> ValueTemplate {
        match value {
            Value::String(s) if templates::is_template(&s) => {
                if let Some(expr) = templates::single_expression(&s) {
                    match self.expression(expr, place) {
                        Some(id) => ValueTemplate::Expression(id),
                        None => ValueTemplate::Literal(Value::Null),
                    }
                } else {
                    match self.template(s, TemplateKind::Text, place) {
                        Some(id) => ValueTemplate::Text(id),
                        None => ValueTemplate::Literal(Value::Null),
                    }
                }
            }
            Value::Array(items) => {
                let parts: Vec<ValueTemplate> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.value(v, &place.index(i)))
                    .collect();
                if parts.iter().all(|p| matches!(p, ValueTemplate::Literal(_))) {
                    ValueTemplate::Literal(Value::Array(parts.into_iter().map(literal).collect()))
                } else {
                    ValueTemplate::Array(parts)
                }
            }
            Value::Object(map) => {
                let parts: Vec<(String, ValueTemplate)> = map
                    .into_iter()
                    .map(|(k, v)| {
                        let t = self.value(v, &place.key(&k));
                        (k, t)
                    })
                    .collect();
                if parts
                    .iter()
                    .all(|(_, p)| matches!(p, ValueTemplate::Literal(_)))
                {
                    ValueTemplate::Literal(Value::Object(
                        parts.into_iter().map(|(k, v)| (k, literal(v))).collect(),
                    ))
                } else {
                    ValueTemplate::Object(parts)
                }
            }
            other => ValueTemplate::Literal(other),
        }
    }

    /// An expression template. The bare expression is checked first, so a
    /// syntax error points at what the author wrote, not at the wrapper
    /// that turns its value into JSON.
    fn expression(&mut self, expr: &str, place: &Place) -> Option<TemplateId> {
        if let Err(e) = self.env.compile_expression(expr) {
            let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
            self.problem(
                place,
                format!("expression `{expr}` does not parse ({}{detail})", e.kind()),
            );
            return None;
        }
        self.template(
            templates::expression_source(expr),
            TemplateKind::Expression,
            place,
        )
    }

    fn template(
        &mut self,
        source: String,
        kind: TemplateKind,
        place: &Place,
    ) -> Option<TemplateId> {
        if let Err(e) = self.env.template_from_str(&source) {
            let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
            self.problem(
                place,
                format!("template does not parse ({}{detail})", e.kind()),
            );
            return None;
        }
        let id = TemplateId(self.templates.entries.len() as u32);
        self.templates.entries.push(TemplateEntry {
            name: place.to_string(),
            kind,
            source,
        });
        Some(id)
    }
}

/// What the agent is told when a rule without a `message` decides.
fn default_policy_message(rule: &str, action: PolicyAction) -> String {
    match action {
        PolicyAction::Allow => format!("allowed by the scenario's policy (rule `{rule}`)"),
        PolicyAction::Deny => format!("denied by the scenario's policy (rule `{rule}`)"),
        PolicyAction::Approve => {
            format!(
                "this call needs a human's approval under the scenario's policy (rule `{rule}`)"
            )
        }
        PolicyAction::RateLimit { calls, per } => format!(
            "rate limited by the scenario's policy: at most {calls} call{} per {} (rule `{rule}`)",
            if calls == 1 { "" } else { "s" },
            describe_duration(per)
        ),
    }
}

/// A duration the way authors write them: `1m`, `30s`, `200ms`.
fn describe_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{d:?}")
    } else if millis > 0 && millis.is_multiple_of(3_600_000) {
        format!("{}h", millis / 3_600_000)
    } else if millis > 0 && millis.is_multiple_of(60_000) {
        format!("{}m", millis / 60_000)
    } else if millis > 0 && millis.is_multiple_of(1_000) {
        format!("{}s", millis / 1_000)
    } else {
        format!("{millis}ms")
    }
}

fn mode(spec: ModeSpec) -> Mode {
    match spec {
        ModeSpec::Stub => Mode::Stub,
        ModeSpec::Live => Mode::Live,
        ModeSpec::Record => Mode::Record,
        ModeSpec::Replay => Mode::Replay,
    }
}

fn miss(spec: MissSpec) -> MissPolicy {
    match spec {
        MissSpec::Fail => MissPolicy::Fail,
        MissSpec::Stub => MissPolicy::Stub,
        MissSpec::Live => MissPolicy::Live,
    }
}

/// Checks the shape of a match path: `a.b`, `items[*].id`, `items[0]`,
/// `["key with.dots"]`.
fn check_field_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut chars = path.chars().peekable();
    let mut expect_segment = true;
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                let mut inner = String::new();
                let mut closed = false;
                let quoted = chars.peek() == Some(&'"');
                if quoted {
                    chars.next();
                    let mut escaped = false;
                    for c in chars.by_ref() {
                        if escaped {
                            inner.push(c);
                            escaped = false;
                        } else if c == '\\' {
                            escaped = true;
                        } else if c == '"' {
                            closed = true;
                            break;
                        } else {
                            inner.push(c);
                        }
                    }
                    if !closed || chars.next() != Some(']') {
                        return Err("a quoted key must end with `\"]`".to_owned());
                    }
                } else {
                    for c in chars.by_ref() {
                        if c == ']' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err("`[` without `]`".to_owned());
                    }
                    if inner != "*" && inner.parse::<usize>().is_err() {
                        return Err(format!("`[{inner}]` is not an index, `[*]` or `[\"key\"]`"));
                    }
                }
                expect_segment = false;
            }
            '.' => {
                if expect_segment {
                    return Err("an empty segment".to_owned());
                }
                expect_segment = true;
            }
            ']' => return Err("`]` without `[`".to_owned()),
            _ => expect_segment = false,
        }
    }
    if expect_segment {
        return Err("it ends with `.`".to_owned());
    }
    Ok(())
}

fn literal(t: ValueTemplate) -> Value {
    match t {
        ValueTemplate::Literal(v) => v,
        _ => Value::Null,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && valid_name(name)
}

/// A table key as text: strings as they are, other values as JSON.
pub fn key_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("record {}: {e}", n + 1))?;
        let mut row = Map::new();
        for (header, field) in headers.iter().zip(record.iter()) {
            row.insert(header.to_owned(), csv_value(field));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// CSV has no types; numbers and booleans that round-trip exactly become
/// JSON numbers and booleans, so `total: {gt: 100}` works on CSV tables.
/// Values with leading zeros (`007`, zip codes) stay strings.
fn csv_value(field: &str) -> Value {
    if field.is_empty() {
        return Value::Null;
    }
    match field {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let leading_zero = field.len() > 1 && field.starts_with('0') && !field.starts_with("0.");
    if !leading_zero {
        if let Ok(i) = field.parse::<i64>()
            && i.to_string() == field
        {
            return Value::from(i);
        }
        if let Ok(f) = field.parse::<f64>()
            && f.is_finite()
            && field
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        {
            return Value::from(f);
        }
    }
    Value::String(field.to_owned())
}

pub(crate) fn parse_uri_template(template: &str) -> Result<UriTemplate, String> {
    let mut pattern = String::from("^");
    let mut variables = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..open]));
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
        let name = &after[..close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`{{{name}}}` in `{template}`: variables are letters, digits and `_` (RFC 6570 level 1)"
            ));
        }
        if variables.iter().any(|v| v == name) {
            return Err(format!("variable `{name}` appears twice in `{template}`"));
        }
        variables.push(name.to_owned());
        pattern.push_str("([^/?#]+)");
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unmatched `}}` in `{template}`"));
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    if variables.is_empty() {
        return Err(format!(
            "`{template}` has no `{{variable}}`; declare it under `resources` instead"
        ));
    }
    let pattern = regex::Regex::new(&pattern).map_err(|e| e.to_string())?;
    Ok(UriTemplate {
        template: template.to_owned(),
        pattern,
        variables,
    })
}

fn guess_mime(file: &str) -> Option<&'static str> {
    let ext = Path::new(file).extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "json" => "application/json",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_templates() {
        let t = parse_uri_template("test://template/{id}/data").expect("valid");
        let params = t.matches("test://template/123/data").expect("matches");
        assert_eq!(params.get("id").map(String::as_str), Some("123"));
        assert!(t.matches("test://template/1/2/data").is_none());
        assert!(t.matches("test://template//data").is_none());
        for (bad, fragment) in [
            ("x://{a", "unclosed"),
            ("x://{a-b}", "variables are"),
            ("x://{a}/{a}", "twice"),
            ("x://plain", "no `{variable}`"),
            ("x://a}", "unmatched"),
        ] {
            let err = parse_uri_template(bad).expect_err(bad);
            assert!(err.contains(fragment), "{bad}: {err}");
        }
    }

    #[test]
    fn csv_values_keep_identifiers_as_text() {
        assert_eq!(csv_value("42"), Value::from(42));
        assert_eq!(csv_value("-3.5"), Value::from(-3.5));
        assert_eq!(csv_value("007"), Value::from("007"));
        assert_eq!(csv_value("true"), Value::from(true));
        assert_eq!(csv_value(""), Value::Null);
        assert_eq!(csv_value("1e5"), Value::from("1e5"));
        assert_eq!(csv_value("o-1"), Value::from("o-1"));
    }
}

#[cfg(test)]
mod vault_tests {
    use std::collections::BTreeMap;

    use crate::{UpstreamTransport, load_str, load_str_with_vault};

    const TEXT: &str = r#"
version: 1
name: v
secrets:
  own: "scenario-own-value"
upstreams:
  - name: api
    url: "https://api.example.test/mcp?key={{ secrets.query_key }}"
    headers: {Authorization: "Bearer {{ secrets.own }}", X-Vault: "{{ secrets.header_key }}"}
"#;

    #[test]
    fn upstream_credentials_come_from_the_scenario_or_the_vault() {
        let vault: BTreeMap<String, String> = [
            ("query_key".to_owned(), "vault-query-value".to_owned()),
            ("header_key".to_owned(), "vault-header-value".to_owned()),
            ("own".to_owned(), "the vault loses".to_owned()),
        ]
        .into();
        let scenario = load_str_with_vault(TEXT, "v.yaml", None, Some(&vault)).expect("loads");
        let UpstreamTransport::Http { url, headers } = &scenario.upstreams[0].transport else {
            panic!("an HTTP upstream");
        };
        assert_eq!(url, "https://api.example.test/mcp?key=vault-query-value");
        assert_eq!(headers["Authorization"], "Bearer scenario-own-value");
        assert_eq!(headers["X-Vault"], "vault-header-value");

        let missing = load_str_with_vault(TEXT, "v.yaml", None, Some(&BTreeMap::new()))
            .expect_err("the vault lacks them")
            .to_string();
        assert!(missing.contains("or stored in the vault"), "{missing}");
        let without = load_str(TEXT, "v.yaml", None)
            .expect_err("no vault")
            .to_string();
        assert!(without.contains("no secret named `query_key`"), "{without}");
    }
}
