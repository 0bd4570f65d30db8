//! What a well-formed MCP result looks like, by the SDK's typed model.
//!
//! One rule for both ends of Sandbar: an upstream's answer is checked here
//! before the engine records it (so a malformed one is recorded as the
//! error the agent gets, not as a result), and the MCP front parses what it
//! sends an agent through [`parse_result`]. The rule is the SDK's own
//! types; this module only words what is wrong for a person to read
//! ("content must be an array") where serde would say "invalid type:
//! string, expected a sequence".

use serde::de::DeserializeOwned;
use serde_json::Value;

use rmcp::model::{
    CallToolResult, CompleteResult, ContentBlock, GetPromptResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, Prompt, PromptMessage,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Tool,
};

/// What is wrong with `result` as the answer to `method`; `None` when it is
/// well-formed, or when `method` has no typed result (`ping`,
/// `logging/setLevel` and the subscriptions answer `{}`, and anything goes).
pub fn result_problem(method: &str, result: &Value) -> Option<String> {
    match method {
        "tools/call" => check::<CallToolResult>(method, result),
        "resources/read" => check::<ReadResourceResult>(method, result),
        "prompts/get" => check::<GetPromptResult>(method, result),
        "completion/complete" => check::<CompleteResult>(method, result),
        "tools/list" => check::<ListToolsResult>(method, result),
        "resources/list" => check::<ListResourcesResult>(method, result),
        "resources/templates/list" => check::<ListResourceTemplatesResult>(method, result),
        "prompts/list" => check::<ListPromptsResult>(method, result),
        _ => None,
    }
}

/// Parses `result`, the answer to `method`, into the SDK's type for it;
/// when it does not fit, says why in the words of [`result_problem`].
pub fn parse_result<T: DeserializeOwned>(method: &str, result: &Value) -> Result<T, String> {
    T::deserialize(result).map_err(|e| explain(method, result, &e))
}

fn check<T: DeserializeOwned>(method: &str, result: &Value) -> Option<String> {
    parse_result::<T>(method, result).err()
}

/// The JSON kind a field must have.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An array whose items the given check accepts.
    Array(fn(&Value) -> Result<(), serde_json::Error>, &'static str),
    Object,
    String,
    Bool,
}

fn item<T: DeserializeOwned>(value: &Value) -> Result<(), serde_json::Error> {
    T::deserialize(value).map(drop)
}

/// The fields of each result whose kind is worth naming, with what their
/// items are called.
fn fields(method: &str) -> &'static [(&'static str, Kind)] {
    match method {
        "tools/call" => &[
            (
                "content",
                Kind::Array(item::<ContentBlock>, "content block"),
            ),
            ("isError", Kind::Bool),
            ("_meta", Kind::Object),
        ],
        "resources/read" => &[(
            "contents",
            Kind::Array(item::<ResourceContents>, "resource content"),
        )],
        "prompts/get" => &[
            ("messages", Kind::Array(item::<PromptMessage>, "message")),
            ("description", Kind::String),
        ],
        "completion/complete" => &[("completion", Kind::Object)],
        "tools/list" => &[
            ("tools", Kind::Array(item::<Tool>, "tool")),
            ("nextCursor", Kind::String),
        ],
        "resources/list" => &[
            ("resources", Kind::Array(item::<Resource>, "resource")),
            ("nextCursor", Kind::String),
        ],
        "resources/templates/list" => &[
            (
                "resourceTemplates",
                Kind::Array(item::<ResourceTemplate>, "resource template"),
            ),
            ("nextCursor", Kind::String),
        ],
        "prompts/list" => &[
            ("prompts", Kind::Array(item::<Prompt>, "prompt")),
            ("nextCursor", Kind::String),
        ],
        _ => &[],
    }
}

/// Words `error` for a person: the first field of the wrong kind, or the
/// first item that is not what its list holds, else serde's own account.
fn explain(method: &str, result: &Value, error: &serde_json::Error) -> String {
    let Value::Object(map) = result else {
        return format!("the result must be an object, not {}", kind_of(result));
    };
    for (field, kind) in fields(method) {
        let Some(value) = map.get(*field) else {
            continue;
        };
        let wrong = |what: &str| format!("{field} must be {what}, not {}", kind_of(value));
        match (kind, value) {
            (Kind::Array(check, noun), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Err(e) = check(item) {
                        return format!("{field}[{i}] is not a valid {noun}: {e}");
                    }
                }
            }
            (Kind::Array(..), _) => return wrong("an array"),
            (Kind::Object, Value::Object(_))
            | (Kind::String, Value::String(_))
            | (Kind::Bool, Value::Bool(_)) => {}
            (Kind::Object, _) => return wrong("an object"),
            (Kind::String, _) => return wrong("a string"),
            (Kind::Bool, _) => return wrong("true or false"),
        }
    }
    error.to_string()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(method: &str, result: Value, expect: Option<&str>) {
        assert_eq!(
            result_problem(method, &result).as_deref(),
            expect,
            "{method}: {result}"
        );
    }

    #[test]
    fn well_formed_results_pass() {
        check(
            "tools/call",
            json!({"content": [{"type": "text", "text": "hi"}]}),
            None,
        );
        check(
            "tools/call",
            json!({"content": [], "isError": true, "structuredContent": null}),
            None,
        );
        check(
            "resources/read",
            json!({"contents": [{"uri": "a://b", "text": "x"}]}),
            None,
        );
        check(
            "prompts/get",
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]}),
            None,
        );
        check(
            "completion/complete",
            json!({"completion": {"values": ["a"]}}),
            None,
        );
        check(
            "tools/list",
            json!({"tools": [{"name": "t", "inputSchema": {"type": "object"}}]}),
            None,
        );
        // Methods without a typed result take anything.
        check("ping", json!({}), None);
        check("logging/setLevel", Value::Null, None);
    }

    #[test]
    fn malformed_results_are_worded_for_a_person() {
        check(
            "tools/call",
            json!({"content": "not-an-array"}),
            Some("content must be an array, not a string"),
        );
        check(
            "tools/call",
            Value::Null,
            Some("the result must be an object, not null"),
        );
        check(
            "tools/call",
            json!({"isError": "yes"}),
            Some("isError must be true or false, not a string"),
        );
        check(
            "resources/read",
            json!({"contents": {}}),
            Some("contents must be an array, not an object"),
        );
        check(
            "prompts/get",
            json!([]),
            Some("the result must be an object, not an array"),
        );
        let bad_block = result_problem(
            "tools/call",
            &json!({"content": [{"type": "text", "text": "ok"}, {"type": "text"}]}),
        )
        .unwrap_or_default();
        assert!(
            bad_block.starts_with("content[1] is not a valid content block: "),
            "{bad_block}"
        );
        // Nothing the SDK would accept: serde's own account.
        let empty = result_problem("tools/call", &json!({})).unwrap_or_default();
        assert!(empty.contains("content"), "{empty}");
    }

    #[test]
    fn parsing_gives_the_sdk_type_or_the_same_words() {
        let parsed = parse_result::<CallToolResult>(
            "tools/call",
            &json!({"content": [{"type": "text", "text": "hi"}]}),
        );
        assert!(parsed.is_ok());
        let refused =
            parse_result::<CallToolResult>("tools/call", &json!({"content": "not-an-array"}));
        assert_eq!(
            refused.err().as_deref(),
            Some("content must be an array, not a string")
        );
    }
}
