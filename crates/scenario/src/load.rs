//! Reading a scenario: size and structure budgets, strict parsing, and
//! errors that name the file, line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use serde_saphyr::budget::Budget;
use serde_saphyr::options::{DuplicateKeyPolicy, Options};

use crate::compile::{Compiler, Place, PlaceSegment, Problem};
use crate::format::ScenarioFile;
use crate::model::Scenario;

/// The largest scenario file accepted. Real scenarios are kilobytes; big
/// data belongs in table files next to them.
pub const MAX_SCENARIO_BYTES: usize = 8 * 1024 * 1024;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is over the size limit.
    #[error("{file}: {size} bytes is over the {limit}-byte limit for scenario files")]
    TooLarge {
        file: String,
        size: usize,
        limit: usize,
    },
    /// The YAML does not parse, or does not fit the format.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: u64,
        column: u64,
        message: String,
        snippet: String,
    },
    /// The file fits the format but says something that cannot work.
    #[error("{}", render_problems(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<LocatedProblem>,
    },
}

impl LoadError {
    /// A rendering with source snippets, for terminals.
    pub fn detailed(&self) -> String {
        match self {
            LoadError::Syntax { file, snippet, .. }
                if !snippet.is_empty() && snippet.contains(file.as_str()) =>
            {
                snippet.clone()
            }
            other => other.to_string(),
        }
    }
}

/// A semantic problem with its position in the file.
#[derive(Debug, Clone)]
pub struct LocatedProblem {
    pub line: u64,
    pub column: u64,
    /// Where in the scenario's structure, e.g. `tools[0].respond[1].when.email.regex`.
    pub place: String,
    pub message: String,
}

fn render_problems(file: &str, problems: &[LocatedProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}:{}:{}: {}: {}", p.line, p.column, p.place, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads and compiles a scenario file. Files it refers to are read relative
/// to its directory.
pub fn load_path(path: &Path) -> Result<Scenario, LoadError> {
    load_path_with_vault(path, None)
}

/// [`load_path`], where `{{ secrets.NAME }}` in upstream headers and
/// environments may also name a secret of `vault` (secrets already opened
/// from Sandbar's vault; the scenario's own `secrets` win).
pub fn load_path_with_vault(
    path: &Path,
    vault: Option<&BTreeMap<String, String>>,
) -> Result<Scenario, LoadError> {
    let file = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|source| LoadError::Io {
        file: file.clone(),
        source,
    })?;
    if metadata.len() > MAX_SCENARIO_BYTES as u64 {
        return Err(LoadError::TooLarge {
            file,
            size: metadata.len() as usize,
            limit: MAX_SCENARIO_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        file: file.clone(),
        source,
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let column = valid.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
            return Err(LoadError::Syntax {
                file: file.clone(),
                line,
                column,
                message: "the file is not UTF-8 text (invalid byte here)".to_owned(),
                snippet: String::new(),
            });
        }
    };
    let base = path.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    load_str_with_vault(&text, &file, base, vault)
}

/// Loads and compiles scenario text. `file` names it in messages; `base_dir`
/// is where side files are read from (`None`: side files are refused).
pub fn load_str(text: &str, file: &str, base_dir: Option<&Path>) -> Result<Scenario, LoadError> {
    load_str_with_vault(text, file, base_dir, None)
}

/// [`load_str`] with the vault's secrets (see [`load_path_with_vault`]).
pub fn load_str_with_vault(
    text: &str,
    file: &str,
    base_dir: Option<&Path>,
    vault: Option<&BTreeMap<String, String>>,
) -> Result<Scenario, LoadError> {
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(LoadError::TooLarge {
            file: file.to_owned(),
            size: text.len(),
            limit: MAX_SCENARIO_BYTES,
        });
    }
    let parsed: ScenarioFile =
        serde_saphyr::from_str_with_options(text, options()).map_err(|e| syntax_error(&e, file))?;
    Compiler::new(base_dir, text)
        .with_vault(vault)
        .compile(parsed, file.to_owned())
        .map_err(|problems| LoadError::Invalid {
            file: file.to_owned(),
            problems: locate(text, problems),
        })
}

/// Budgets that keep a hostile file from exhausting memory or time: a
/// bounded depth, node count, scalar volume and alias expansion, and
/// duplicate keys as errors.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_depth = 64;
    budget.max_nodes = 2_000_000;
    budget.max_total_scalar_bytes = MAX_SCENARIO_BYTES;
    budget.max_documents = 1;
    budget.max_aliases = 10_000;
    budget.max_anchors = 10_000;
    let mut options = Options::default();
    options.budget = Some(budget);
    // Aliases in hand-written scenarios are few and small; a document that
    // replays more than this is an alias bomb.
    options.alias_limits.max_total_replayed_events = 100_000;
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    // YAML 1.2 booleans only: `y`, `no` and `off` stay strings, so a list of
    // country codes or options means what it says.
    options.strict_booleans = true;
    options
}

fn syntax_error(error: &serde_saphyr::Error, file: &str) -> LoadError {
    let (line, column) = error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let plain = error.without_snippet().to_string();
    let message = plain_words(error.without_snippet()).unwrap_or_else(|| {
        // serde-saphyr suggests an option of its own for duplicate keys;
        // users of Sandbar cannot set that, so say what they can do.
        strip_location_prefix(&plain).replace(
            ", set DuplicateKeyPolicy in Options if acceptable",
            " (each key may appear once)",
        )
    });
    let snippet = match plain_words(error.without_snippet()) {
        Some(_) => String::new(),
        None => error
            .render_with_options(serde_saphyr::render_options! { source_name: Some(file) })
            .replace(
                ", set DuplicateKeyPolicy in Options if acceptable",
                " (each key may appear once)",
            ),
    };
    LoadError::Syntax {
        file: file.to_owned(),
        line,
        column,
        message,
        snippet,
    }
}

/// Budget breaches in words a scenario author can act on, instead of the
/// parser's internal names.
fn plain_words(mut error: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::budget::BudgetBreach as B;
    // Look through the wrappers that add a snippet or the anchor an aliased
    // value came from.
    while let serde_saphyr::Error::AliasError { error: inner, .. }
    | serde_saphyr::Error::WithSnippet { error: inner, .. } = error
    {
        error = inner;
    }
    let text = match error {
        serde_saphyr::Error::Budget { breach, .. } => match breach {
            B::Events { .. } | B::Nodes { .. } => {
                "the document is too large once YAML aliases (`*name`) are expanded; scenarios may hold up to 2 million values".to_owned()
            }
            B::Aliases { .. } | B::Anchors { .. } => {
                "the document uses too many YAML anchors or aliases (at most 10,000 each)".to_owned()
            }
            B::Depth { .. } => "the document nests deeper than 64 levels".to_owned(),
            B::Documents { .. } => "a scenario file holds exactly one YAML document".to_owned(),
            B::ScalarBytes { .. } => format!(
                "the document's text adds up to more than {} MiB once YAML aliases are expanded",
                MAX_SCENARIO_BYTES >> 20
            ),
            other => format!("the document is over a size limit ({other:?})"),
        },
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } => {
            "the document expands YAML aliases (`*name`) too far: it looks like an alias bomb".to_owned()
        }
        other => {
            let text = other.to_string();
            if text.contains("recursion limit exceeded") {
                "the document nests deeper than 64 levels".to_owned()
            } else {
                return None;
            }
        }
    };
    Some(text)
}

fn strip_location_prefix(message: &str) -> String {
    let trimmed = message.trim_start_matches("error: ");
    if let Some(rest) = trimmed.strip_prefix("line ")
        && let Some(idx) = rest.find(": ")
    {
        return rest[idx + 2..]
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
    }
    trimmed.lines().next().unwrap_or_default().to_owned()
}

/// Finds line and column for each problem by walking a position-annotated
/// copy of the document. This second parse only happens when something is
/// wrong, so the happy path pays nothing for it. Public for problems found
/// after loading, with what the scenario refers to (`sandbar validate`
/// checks the cassette it replays).
pub fn locate(text: &str, problems: Vec<Problem>) -> Vec<LocatedProblem> {
    let tree: Option<Spanned<Node>> = serde_saphyr::from_str_with_options(text, options()).ok();
    problems
        .into_iter()
        .map(|p| {
            let (line, column) = tree
                .as_ref()
                .map(|t| position(t, &p.place))
                .unwrap_or((1, 1));
            LocatedProblem {
                line,
                column,
                place: p.place.to_string(),
                message: p.message,
            }
        })
        .collect()
}

fn position(root: &Spanned<Node>, place: &Place) -> (u64, u64) {
    let mut current = root;
    for segment in &place.0 {
        let next = match (segment, &current.value) {
            (PlaceSegment::Key(k), Node::Map(entries)) => entries
                .iter()
                .find(|(name, _)| name.value == *k)
                .map(|(_, value)| value),
            (PlaceSegment::Index(i), Node::Seq(items)) => items.get(*i),
            _ => None,
        };
        match next {
            Some(n) => current = n,
            None => break,
        }
    }
    (
        current.referenced.line().max(1),
        current.referenced.column().max(1),
    )
}

/// A YAML document with positions, used only to locate problems.
#[derive(Debug)]
enum Node {
    Leaf,
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
                    let value = map.next_value()?;
                    entries.push((
                        Spanned::new(key.value.0, key.referenced, key.defined),
                        value,
                    ));
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// A mapping key of any scalar type, as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_owned()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}
