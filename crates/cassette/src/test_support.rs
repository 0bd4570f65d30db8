//! Builders shared by the tests: headers, interactions, and cassettes
//! written to temporary directories.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sandbar_redact::Redactor;
use serde_json::{Value, json};

use crate::{CassetteWriter, Header, Interaction, RecordedOutcome, ScenarioRef};

pub(crate) fn header() -> Header {
    Header::new(
        ScenarioRef {
            name: "support-desk".into(),
            hash: "ab".repeat(32),
        },
        42,
        "2026-01-15T09:00:00Z".into(),
        "2026-11-27T07:00:00Z".into(),
    )
}

/// A `tools/call` of `tool` with `arguments`, answered with `result`.
pub(crate) fn call(tool: &str, arguments: Value, result: Value) -> Interaction {
    Interaction::new(
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
        "2026-01-15T09:00:01Z",
        RecordedOutcome::Result(result),
    )
}

/// A call of another method, answered with `result`.
pub(crate) fn request(method: &str, params: Value, result: Value) -> Interaction {
    Interaction::new(
        method,
        params,
        "2026-01-15T09:00:01Z",
        RecordedOutcome::Result(result),
    )
}

/// Numbers interactions 1, 2, 3... as a cassette holds them.
pub(crate) fn numbered(mut interactions: Vec<Interaction>) -> Vec<Interaction> {
    for (index, interaction) in interactions.iter_mut().enumerate() {
        interaction.seq = index as u64 + 1;
    }
    interactions
}

pub(crate) fn redactor() -> Arc<Redactor> {
    Arc::new(Redactor::new())
}

/// Writes `interactions` to `<dir>/<name>.jsonl` with the default redactor.
pub(crate) fn write(dir: &Path, name: &str, interactions: Vec<Interaction>) -> PathBuf {
    let path = dir.join(format!("{name}.jsonl"));
    let mut writer = CassetteWriter::create(&path, header(), redactor()).unwrap();
    for interaction in interactions {
        writer.append(interaction).unwrap();
    }
    writer.finish().unwrap()
}

/// A header line followed by `lines`, each ended by a newline.
pub(crate) fn text(lines: &[&str]) -> String {
    let mut out = serde_json::to_string(&header()).unwrap();
    out.push('\n');
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}
