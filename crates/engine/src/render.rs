//! Renders a scenario's templates.
//!
//! Every template is compiled once, when the engine takes the scenario in.
//! A render sees a context built per call: the arguments, the twin's tables
//! (as lazy objects, so a template that reads one row of a large table does
//! not convert the whole table), the virtual clock, the secrets, answers
//! from earlier steps, and a `random` object that draws from the call's
//! deterministic stream.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Serde, Value as JValue};
use minijinja::{Environment, Error as JError, ErrorKind, State};
use serde_json::Value;

use sandbar_scenario::templates::{MAX_TEMPLATE_OUTPUT, base_environment};
use sandbar_scenario::{
    TemplateId, TemplateKind, TemplateSet, TextTemplate, ValueTemplate, key_text,
};

use crate::rng::Stream;
use crate::twin::{Table, Twin};

/// A template that failed to render, with where it lives in the scenario.
#[derive(Debug, Clone, thiserror::Error)]
#[error("template {place} failed: {message}")]
pub struct RenderError {
    pub place: String,
    pub message: String,
}

/// The compiled templates of one scenario.
pub struct Renderer {
    env: Environment<'static>,
    names: Vec<String>,
    places: Vec<String>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("templates", &self.names.len())
            .finish()
    }
}

impl Renderer {
    /// Compiles every template of the set.
    pub fn new(set: &TemplateSet) -> Result<Renderer, RenderError> {
        let mut env = base_environment();
        let mut names = Vec::with_capacity(set.entries.len());
        let mut places = Vec::with_capacity(set.entries.len());
        for (i, entry) in set.entries.iter().enumerate() {
            let name = format!("{}#{i}", entry.name);
            env.add_template_owned(name.clone(), entry.source.clone())
                .map_err(|e| RenderError {
                    place: entry.name.clone(),
                    message: e.to_string(),
                })?;
            debug_assert!(entry.kind == TemplateKind::Text || entry.source.starts_with("{{"));
            names.push(name);
            places.push(entry.name.clone());
        }
        Ok(Renderer { env, names, places })
    }

    fn render(&self, id: TemplateId, ctx: &JValue) -> Result<String, RenderError> {
        let i = id.0 as usize;
        let err = |message: String| RenderError {
            place: self.places[i].clone(),
            message,
        };
        let template = self
            .env
            .get_template(&self.names[i])
            .map_err(|e| err(e.to_string()))?;
        let out = template.render(ctx).map_err(|e| err(describe(&e)))?;
        if out.len() > MAX_TEMPLATE_OUTPUT {
            return Err(err(format!(
                "output of {} bytes is over the {MAX_TEMPLATE_OUTPUT}-byte limit",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Renders text.
    pub fn text(&self, template: &TextTemplate, ctx: &JValue) -> Result<String, RenderError> {
        match template {
            TextTemplate::Literal(s) => Ok(s.to_string()),
            TextTemplate::Template(id) => self.render(*id, ctx),
        }
    }

    /// Renders a value; expressions keep their type.
    pub fn value(&self, template: &ValueTemplate, ctx: &JValue) -> Result<Value, RenderError> {
        Ok(match template {
            ValueTemplate::Literal(v) => v.clone(),
            ValueTemplate::Text(id) => Value::String(self.render(*id, ctx)?),
            ValueTemplate::Expression(id) => {
                let json = self.render(*id, ctx)?;
                serde_json::from_str(&json).map_err(|e| RenderError {
                    place: self.places[id.0 as usize].clone(),
                    message: format!("the expression did not give a JSON value: {e}"),
                })?
            }
            ValueTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.value(i, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            ValueTemplate::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.value(v, ctx)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
        })
    }
}

fn describe(error: &JError) -> String {
    let mut text = error.kind().to_string();
    if let Some(detail) = error.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = error.line() {
        text.push_str(&format!(" (template line {line})"));
    }
    text
}

/// What a render can see. Built once per call and extended by steps.
///
/// Templates resolve names lazily through [`ScopeView`]: nothing is
/// converted for a template until it reads the name, so a call whose
/// template reads only `args` pays nothing for the tables or the secrets.
/// Cloning and taking a context are pointer copies.
#[derive(Debug, Clone)]
pub struct Scope(Arc<ScopeData>);

#[derive(Debug, Clone)]
struct ScopeData {
    tables: BTreeMap<String, Table>,
    now: String,
    seed: u64,
    secrets: Arc<BTreeMap<String, String>>,
    random: JValue,
    vars: BTreeMap<String, JValue>,
    answers: BTreeMap<String, Value>,
}

impl Scope {
    /// The names every template sees.
    pub fn new(
        twin: &Twin,
        now: &str,
        seed: u64,
        secrets: &Arc<BTreeMap<String, String>>,
        random: Stream,
    ) -> Scope {
        Scope(Arc::new(ScopeData {
            tables: twin.tables().clone(),
            now: now.to_owned(),
            seed,
            secrets: secrets.clone(),
            random: JValue::from_object(RandomObject(Mutex::new(random))),
            vars: BTreeMap::new(),
            answers: BTreeMap::new(),
        }))
    }

    fn data(&mut self) -> &mut ScopeData {
        Arc::make_mut(&mut self.0)
    }

    /// Sets a name to a JSON value.
    pub fn set(&mut self, name: &str, value: &Value) {
        self.data()
            .vars
            .insert(name.to_owned(), JValue::from(Serde(value)));
    }

    /// Sets the virtual time templates see as `now`.
    pub fn set_now(&mut self, now: String) {
        self.data().now = now;
    }

    /// Keeps a step's answer under `answers.NAME`.
    pub fn add_answer(&mut self, name: &str, answer: &Value) {
        let data = self.data();
        data.answers.insert(name.to_owned(), answer.clone());
        let all = JValue::from(Serde(&data.answers));
        data.vars.insert("answers".to_owned(), all);
    }

    /// Replaces the tables after the twin changed.
    pub fn refresh_tables(&mut self, twin: &Twin) {
        self.data().tables = twin.tables().clone();
    }

    /// The context value for a render.
    pub fn context(&self) -> JValue {
        JValue::from_object(ScopeView(self.0.clone()))
    }
}

/// The root object templates resolve names against.
#[derive(Debug)]
struct ScopeView(Arc<ScopeData>);

impl ScopeView {
    fn tables(&self) -> JValue {
        let map: BTreeMap<String, JValue> = self
            .0
            .tables
            .iter()
            .map(|(name, t)| (name.clone(), JValue::from_object(TableObject(t.clone()))))
            .collect();
        JValue::from_object(map)
    }
}

impl Object for ScopeView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let name = key.as_str()?;
        if let Some(v) = self.0.vars.get(name) {
            return Some(v.clone());
        }
        match name {
            "now" => Some(JValue::from(self.0.now.as_str())),
            "run" => Some(JValue::from_object(BTreeMap::from([(
                "seed".to_owned(),
                JValue::from(self.0.seed),
            )]))),
            "secrets" => Some(JValue::from(Serde(&*self.0.secrets))),
            "random" => Some(self.0.random.clone()),
            "answers" => Some(JValue::from_object(BTreeMap::<String, JValue>::new())),
            "data" => Some(self.tables()),
            table => self
                .0
                .tables
                .get(table)
                .map(|t| JValue::from_object(TableObject(t.clone()))),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut names: Vec<JValue> = ["now", "run", "secrets", "random", "answers", "data"]
            .into_iter()
            .map(JValue::from)
            .collect();
        names.extend(self.0.vars.keys().map(|k| JValue::from(k.as_str())));
        names.extend(self.0.tables.keys().map(|k| JValue::from(k.as_str())));
        Enumerator::Values(names)
    }
}

/// A table as templates see it: `orders[key]` finds a row by its key,
/// `orders[0]` by position, `for o in orders` iterates, `orders | length`
/// counts, and `orders | tojson` serializes every row.
#[derive(Debug)]
struct TableObject(Table);

impl Object for TableObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        if let Some(text) = key.as_str() {
            return self.0.get(text).map(|row| JValue::from(Serde(&**row)));
        }
        if let Ok(index) = usize::try_from(key.clone()) {
            return self
                .0
                .rows()
                .get(index)
                .map(|row| JValue::from(Serde(&**row)));
        }
        // Numeric keys look a row up by key text, so `orders[5]` works on
        // integer ids when there is no sixth row by position.
        let text = key_text(&serde_json::to_value(key).ok()?);
        self.0.get(&text).map(|row| JValue::from(Serde(&**row)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.rows().len())
    }
}

/// Seeded randomness for templates: `random.int(1, 6)`, `random.float()`,
/// `random.uuid()`, `random.choice(list)`, `random.hex(8)`,
/// `random.digits(6)`.
#[derive(Debug)]
struct RandomObject(Mutex<Stream>);

impl Object for RandomObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[JValue],
    ) -> Result<JValue, JError> {
        let mut stream = self
            .0
            .lock()
            .map_err(|_| JError::new(ErrorKind::InvalidOperation, "random source poisoned"))?;
        let int_arg = |i: usize, default: i64| -> Result<i64, JError> {
            match args.get(i) {
                None => Ok(default),
                Some(v) => i64::try_from(v.clone()).map_err(|_| {
                    JError::new(
                        ErrorKind::InvalidOperation,
                        format!("random.{method} takes integers"),
                    )
                }),
            }
        };
        match method {
            "int" => {
                let low = int_arg(0, 0)?;
                let high = int_arg(1, 100)?;
                Ok(JValue::from(stream.int_in(low, high)))
            }
            "float" => Ok(JValue::from(stream.next_f64())),
            "uuid" => Ok(JValue::from(stream.uuid())),
            "choice" => {
                let list = args.first().ok_or_else(|| {
                    JError::new(ErrorKind::MissingArgument, "random.choice needs a list")
                })?;
                let len = list.len().ok_or_else(|| {
                    JError::new(ErrorKind::InvalidOperation, "random.choice needs a list")
                })?;
                if len == 0 {
                    return Ok(JValue::UNDEFINED);
                }
                let i = stream.int_in(0, len as i64 - 1);
                list.get_item(&JValue::from(i))
            }
            "hex" | "digits" => {
                let n = int_arg(0, 8)?.clamp(0, 256) as usize;
                let alphabet: &[u8] = if method == "hex" {
                    b"0123456789abcdef"
                } else {
                    b"0123456789"
                };
                let s: String = (0..n)
                    .map(|_| alphabet[stream.int_in(0, alphabet.len() as i64 - 1) as usize] as char)
                    .collect();
                Ok(JValue::from(s))
            }
            _ => Err(JError::new(
                ErrorKind::UnknownMethod,
                format!("random has no method `{method}` (int, float, uuid, choice, hex, digits)"),
            )),
        }
    }
}
