//! The cassette format's types: the header, one interaction per request, the
//! notifications received while it was answered, and its outcome.
//!
//! Serialization follows the field order of the structs, which is the order
//! of keys in the file. Optional fields are left out when empty so that
//! lines stay short and diffs small. The reader (`read.rs`) does not go
//! through these serde impls: it checks each line field by field so that
//! its messages can say exactly what is wrong.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::json::describe;
use crate::{FORMAT, VERSION_MAJOR, VERSION_MINOR};

/// The first line of a cassette: what was recorded, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// `MAJOR.MINOR` of the format the file was written in.
    pub version: String,
    /// The scenario the run was played against.
    pub scenario: ScenarioRef,
    /// The run's seed.
    pub seed: u64,
    /// Where the run's virtual clock started (RFC 3339).
    pub clock_start: String,
    /// When the recording was made (RFC 3339, wall clock).
    pub recorded_at: String,
    /// The recorded run's id, when it came from the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// How the server introduced itself to the agent (opaque JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Value>,
    /// Each real upstream server's catalog at recording time, by name
    /// (opaque JSON: tools, resources, resource templates, prompts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upstreams: BTreeMap<String, Value>,
    /// The public id of the masking key that pseudonymized the personal
    /// data in this cassette (never the key). Replaying under another key
    /// masks new calls differently, so calls that carry personal data no
    /// longer match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_key: Option<String>,
}

impl Header {
    /// A header in the current format version, with no run id, no server
    /// and no upstreams.
    pub fn new(
        scenario: ScenarioRef,
        seed: u64,
        clock_start: String,
        recorded_at: String,
    ) -> Header {
        Header {
            format: FORMAT.to_owned(),
            version: format!("{VERSION_MAJOR}.{VERSION_MINOR}"),
            scenario,
            seed,
            clock_start,
            recorded_at,
            run_id: None,
            server: None,
            upstreams: BTreeMap::new(),
            mask_key: None,
        }
    }

    /// The version as `(major, minor)`, when it is well formed.
    pub fn version_parts(&self) -> Option<(u32, u32)> {
        parse_version(&self.version)
    }
}

/// Parses `MAJOR.MINOR` (two decimal numbers, nothing else).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    let number = |part: &str| {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            part.parse::<u32>().ok()
        }
    };
    Some((number(major)?, number(minor)?))
}

/// Which scenario a cassette was recorded against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRef {
    /// The scenario's name.
    pub name: String,
    /// The hex SHA-256 of the scenario as loaded.
    pub hash: String,
}

/// One request the agent sent and what it got back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// 1-based position in the cassette.
    pub seq: u64,
    /// The MCP method: `tools/call`, `resources/read`, `ping`...
    pub method: String,
    /// The request's params as the agent sent them, without `_meta`
    /// (`null` when it sent none).
    #[serde(default)]
    pub params: Value,
    /// The real upstream server that answered, if one did; absent when a
    /// stub or Sandbar itself answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The run's virtual time when the request arrived (RFC 3339).
    pub virtual_time: String,
    /// Notifications the agent received while the request was answered,
    /// in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
    /// The result or error the agent got.
    pub outcome: RecordedOutcome,
}

impl Interaction {
    /// An interaction with no upstream and no notifications; the writer
    /// assigns `seq`.
    pub fn new(
        method: &str,
        params: Value,
        virtual_time: &str,
        outcome: RecordedOutcome,
    ) -> Interaction {
        Interaction {
            seq: 0,
            method: method.to_owned(),
            params,
            upstream: None,
            virtual_time: virtual_time.to_owned(),
            notifications: Vec::new(),
            outcome,
        }
    }

    /// The tool's name, for a `tools/call`.
    pub fn tool(&self) -> Option<&str> {
        tool_of(&self.method, &self.params)
    }
}

/// The tool named by a call's params, when the method is `tools/call`.
pub(crate) fn tool_of<'a>(method: &str, params: &'a Value) -> Option<&'a str> {
    if method == "tools/call" {
        params.get("name")?.as_str()
    } else {
        None
    }
}

/// A message the agent received while a request was answered: a
/// notification, or (format 1.3) a request the server put to the agent's
/// client — a question for its model or its user (`sampling/createMessage`,
/// `elicitation/create`) — with the answer it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `notifications/progress`, `notifications/message`,
    /// `sampling/createMessage`...
    pub method: String,
    /// Its params (`null` when it had none).
    #[serde(default)]
    pub params: Value,
    /// For a request to the client, what the client answered (an error when
    /// it could not or would not); `None` for a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<RecordedOutcome>,
}

impl Notification {
    /// A notification.
    pub fn new(method: impl Into<String>, params: Value) -> Notification {
        Notification {
            method: method.into(),
            params,
            answer: None,
        }
    }

    /// Whether this is a request the client answered rather than a
    /// notification.
    pub fn is_request(&self) -> bool {
        self.answer.is_some()
    }
}

/// The error code of a call the client cancelled (JSON-RPC's
/// `RequestCancelled`): the client got no answer, and the error's message
/// says how the call ended. The file marks such an outcome
/// `"cancelled": true` (format 1.2).
pub const CANCELLED_CODE: i64 = -32800;

/// What a request got: a result, or a JSON-RPC error — or, for an error
/// with [`CANCELLED_CODE`], nothing, because the client cancelled it.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordedOutcome {
    /// The `result` of the response.
    Result(Value),
    /// The `error` of the response.
    Error {
        /// The JSON-RPC error code.
        code: i64,
        /// The error's message.
        message: String,
        /// The error's `data`, when it had one.
        data: Option<Value>,
    },
}

impl RecordedOutcome {
    /// A call the client cancelled; `message` says how it ended.
    pub fn cancelled(message: impl Into<String>) -> RecordedOutcome {
        RecordedOutcome::Error {
            code: CANCELLED_CODE,
            message: message.into(),
            data: None,
        }
    }

    /// `{"result": ...}`, `{"error": {"code": ..., "message": ..., "data": ...}}`,
    /// or for a cancelled call `{"cancelled": true, "error": {...}}`.
    pub fn to_json(&self) -> Value {
        let mut outer = Map::new();
        match self {
            RecordedOutcome::Result(value) => {
                outer.insert("result".to_owned(), value.clone());
            }
            RecordedOutcome::Error {
                code,
                message,
                data,
            } => {
                if *code == CANCELLED_CODE {
                    outer.insert("cancelled".to_owned(), Value::Bool(true));
                }
                let mut error = Map::new();
                error.insert("code".to_owned(), Value::from(*code));
                error.insert("message".to_owned(), Value::from(message.as_str()));
                if let Some(data) = data {
                    error.insert("data".to_owned(), data.clone());
                }
                outer.insert("error".to_owned(), Value::Object(error));
            }
        }
        Value::Object(outer)
    }

    /// Reads `{"result": ...}` or `{"error": {...}}`, refusing fields the
    /// format does not define. The message says what was expected.
    pub fn from_json(value: &Value) -> Result<RecordedOutcome, String> {
        outcome_from_json(value, "outcome", true)
    }

    /// Whether this is a result rather than an error.
    pub fn is_result(&self) -> bool {
        matches!(self, RecordedOutcome::Result(_))
    }

    /// Whether the client cancelled the call (and so got no answer).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RecordedOutcome::Error { code, .. } if *code == CANCELLED_CODE)
    }
}

/// Reads an outcome; `label` names it in messages (`outcome`), `strict`
/// refuses unknown fields.
pub(crate) fn outcome_from_json(
    value: &Value,
    label: &str,
    strict: bool,
) -> Result<RecordedOutcome, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "`{label}` must be an object with either `result` or `error`, found {}",
            describe(value)
        ));
    };
    if strict
        && let Some(key) = map
            .keys()
            .find(|key| !matches!(key.as_str(), "result" | "error" | "cancelled"))
    {
        return Err(format!(
            "unknown field `{key}` in `{label}`; expected `result`, `error` or `cancelled`"
        ));
    }
    let outcome = match (map.get("result"), map.get("error")) {
        (Some(_), Some(_)) => Err(format!(
            "`{label}` must have exactly one of `result` or `error`, found both"
        )),
        (None, None) => Err(format!(
            "`{label}` must have either `result` or `error`, found neither"
        )),
        (Some(result), None) => Ok(RecordedOutcome::Result(result.clone())),
        (None, Some(error)) => error_from_json(error, &format!("{label}.error"), strict),
    }?;
    // The mark names what the code means; a line where they disagree was
    // edited by hand, and replaying it would have to guess. (Files before
    // 1.2 carry the code alone, and mean the same by it.) A newer minor
    // version may say more here; the code is what this reader goes by.
    match map.get("cancelled") {
        None => Ok(outcome),
        Some(_) if !strict => Ok(outcome),
        Some(Value::Bool(true)) if outcome.is_cancelled() => Ok(outcome),
        Some(Value::Bool(true)) => Err(format!(
            "`{label}.cancelled` is true, so `{label}` must be an error with code {CANCELLED_CODE}"
        )),
        Some(other) => Err(format!(
            "`{label}.cancelled` must be `true` when present, found {}",
            describe(other)
        )),
    }
}

fn error_from_json(value: &Value, label: &str, strict: bool) -> Result<RecordedOutcome, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "`{label}` must be an object with `code` and `message`, found {}",
            describe(value)
        ));
    };
    if strict
        && let Some(key) = map
            .keys()
            .find(|key| !matches!(key.as_str(), "code" | "message" | "data"))
    {
        return Err(format!(
            "unknown field `{key}` in `{label}`; expected `code`, `message` or `data`"
        ));
    }
    let code = match map.get("code") {
        None => return Err(format!("`{label}.code` is missing; expected an integer")),
        Some(code) => code.as_i64().ok_or_else(|| {
            format!(
                "`{label}.code` must be an integer, found {}",
                describe(code)
            )
        })?,
    };
    let message = match map.get("message") {
        None => return Err(format!("`{label}.message` is missing; expected a string")),
        Some(Value::String(message)) => message.clone(),
        Some(other) => {
            return Err(format!(
                "`{label}.message` must be a string, found {}",
                describe(other)
            ));
        }
    };
    Ok(RecordedOutcome::Error {
        code,
        message,
        data: map.get("data").cloned(),
    })
}

impl Serialize for RecordedOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RecordedOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        RecordedOutcome::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// A loaded, validated cassette (blobs resolved).
#[derive(Debug, Clone)]
pub struct Cassette {
    /// The header line.
    pub header: Header,
    /// The interactions, in file order; `seq` is 1, 2, 3...
    pub interactions: Vec<Interaction>,
    /// The file it was loaded from, if any.
    pub path: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check_outcome(input: Value, expect: Result<RecordedOutcome, &str>) {
        let got = RecordedOutcome::from_json(&input);
        match (&got, &expect) {
            (Ok(got), Ok(expect)) => assert_eq!(got, expect),
            (Err(got), Err(expect)) => assert!(got.contains(expect), "{got}\nlacks: {expect}"),
            _ => panic!("for {input}: got {got:?}, expected {expect:?}"),
        }
        if let Ok(outcome) = got {
            assert_eq!(RecordedOutcome::from_json(&outcome.to_json()), Ok(outcome));
        }
    }

    #[test]
    fn outcomes() {
        check_outcome(
            json!({"result": {"a": 1}}),
            Ok(RecordedOutcome::Result(json!({"a": 1}))),
        );
        check_outcome(
            json!({"result": null}),
            Ok(RecordedOutcome::Result(Value::Null)),
        );
        check_outcome(
            json!({"error": {"code": -32602, "message": "bad"}}),
            Ok(RecordedOutcome::Error {
                code: -32602,
                message: "bad".into(),
                data: None,
            }),
        );
        check_outcome(
            json!({"error": {"code": 1, "message": "m", "data": null}}),
            Ok(RecordedOutcome::Error {
                code: 1,
                message: "m".into(),
                data: Some(Value::Null),
            }),
        );
        check_outcome(
            json!({"result": 1, "error": {}}),
            Err("exactly one of `result` or `error`, found both"),
        );
        check_outcome(json!({}), Err("found neither"));
        check_outcome(
            json!([]),
            Err("`outcome` must be an object with either `result` or `error`, found an array"),
        );
        check_outcome(
            json!({"error": "x"}),
            Err(
                "`outcome.error` must be an object with `code` and `message`, found the string \"x\"",
            ),
        );
        check_outcome(
            json!({"error": {"code": 1.5, "message": "m"}}),
            Err("`outcome.error.code` must be an integer, found 1.5"),
        );
        check_outcome(
            json!({"error": {"message": "m"}}),
            Err("`outcome.error.code` is missing"),
        );
        check_outcome(
            json!({"error": {"code": 1, "message": 2}}),
            Err("`outcome.error.message` must be a string, found 2"),
        );
        check_outcome(
            json!({"error": {"code": 1}}),
            Err("`outcome.error.message` is missing"),
        );
        check_outcome(
            json!({"result": 1, "extra": 2}),
            Err("unknown field `extra` in `outcome`"),
        );
        check_outcome(
            json!({"error": {"code": 1, "message": "m", "x": 0}}),
            Err("unknown field `x` in `outcome.error`"),
        );
    }

    #[test]
    fn cancelled_outcomes() {
        let cancelled = RecordedOutcome::cancelled("tools/call was cancelled by the client");
        assert!(cancelled.is_cancelled());
        assert!(!RecordedOutcome::Result(json!({})).is_cancelled());
        assert_eq!(
            cancelled.to_json().to_string(),
            r#"{"cancelled":true,"error":{"code":-32800,"message":"tools/call was cancelled by the client"}}"#
        );
        check_outcome(
            json!({"cancelled": true, "error": {"code": -32800, "message": "m"}}),
            Ok(RecordedOutcome::cancelled("m")),
        );
        // Before 1.2 the code alone said it.
        check_outcome(
            json!({"error": {"code": -32800, "message": "m"}}),
            Ok(RecordedOutcome::cancelled("m")),
        );
        check_outcome(
            json!({"cancelled": true, "result": {}}),
            Err("`outcome.cancelled` is true, so `outcome` must be an error with code -32800"),
        );
        check_outcome(
            json!({"cancelled": true, "error": {"code": -32603, "message": "m"}}),
            Err("must be an error with code -32800"),
        );
        check_outcome(
            json!({"cancelled": false, "error": {"code": -32800, "message": "m"}}),
            Err("`outcome.cancelled` must be `true` when present, found false"),
        );
        // A newer minor version may say more; the code decides.
        assert_eq!(
            outcome_from_json(
                &json!({"cancelled": {"by": "client"}, "error": {"code": -32800, "message": "m"}}),
                "outcome",
                false,
            ),
            Ok(RecordedOutcome::cancelled("m"))
        );
    }

    #[test]
    fn serde_shapes() {
        let outcome = RecordedOutcome::Error {
            code: 7,
            message: "m".into(),
            data: None,
        };
        assert_eq!(
            serde_json::to_string(&outcome).ok().as_deref(),
            Some(r#"{"error":{"code":7,"message":"m"}}"#)
        );
        let back: Result<RecordedOutcome, _> = serde_json::from_str(r#"{"result":[1]}"#);
        assert_eq!(back.ok(), Some(RecordedOutcome::Result(json!([1]))));
        let bad: Result<RecordedOutcome, _> = serde_json::from_str(r#"{"nope":1}"#);
        assert!(bad.is_err());

        let mut interaction = Interaction::new(
            "tools/call",
            json!({"name": "t"}),
            "2026-01-15T09:00:01Z",
            RecordedOutcome::Result(json!({})),
        );
        interaction.seq = 1;
        assert_eq!(
            serde_json::to_string(&interaction).ok().as_deref(),
            Some(
                r#"{"seq":1,"method":"tools/call","params":{"name":"t"},"virtual_time":"2026-01-15T09:00:01Z","outcome":{"result":{}}}"#
            )
        );
        assert_eq!(interaction.tool(), Some("t"));
        interaction.method = "prompts/get".into();
        assert_eq!(interaction.tool(), None);
    }

    #[test]
    fn versions() {
        for (text, expect) in [
            ("1.0", Some((1, 0))),
            ("12.34", Some((12, 34))),
            ("1", None),
            ("1.", None),
            (".1", None),
            ("1.0.0", None),
            ("+1.0", None),
            ("1.x", None),
            ("99999999999.0", None),
        ] {
            assert_eq!(parse_version(text), expect, "{text}");
        }
        let header = Header::new(
            ScenarioRef {
                name: "s".into(),
                hash: "h".into(),
            },
            1,
            "a".into(),
            "b".into(),
        );
        assert_eq!(header.version_parts(), Some((VERSION_MAJOR, VERSION_MINOR)));
        assert_eq!(header.format, FORMAT);
    }
}
