//! Sandbar scenario files: the format users write, strict loading with
//! errors that point at a line and column, and the compiled [`Scenario`]
//! the rest of Sandbar runs.
//!
//! Architecture invariant: this crate reads the scenario file and files in
//! its directory, and nothing else; it writes nothing and opens no socket.

#![forbid(unsafe_code)]

mod compile;
mod condition;
pub mod duration;
pub mod format;
pub mod glob;
mod load;
pub mod model;
pub mod path;
pub mod templates;

pub use compile::{Place, PlaceSegment, Problem, key_text};
pub use condition::{CelCondition, ConditionVariable, compile_condition};
pub use load::{
    LoadError, LocatedProblem, MAX_SCENARIO_BYTES, load_path, load_path_with_vault, load_str,
    load_str_with_vault, locate,
};
pub use model::*;

/// The JSON Schema of the scenario format, generated from the Rust types.
/// `schema/scenario.schema.json` in the repository is this value.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<format::ScenarioFile>();
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
