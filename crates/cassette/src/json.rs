//! JSON plumbing shared by the reader, the writer and the matcher: parsing
//! with a nesting budget, measuring nesting without recursion, canonical
//! numbers, short descriptions of values for error messages, and hashing.
//!
//! Nesting is measured before anything recursive touches a value: parsing
//! text after a linear scan of its brackets, serializing an in-memory value
//! after an iterative walk. That is what keeps deep input an error instead of
//! a stack overflow.

use serde::Deserialize;
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

/// Why a piece of JSON text could not be parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParseProblem {
    /// Nested deeper than allowed; the 1-based column where the limit was
    /// crossed.
    TooDeep { column: usize },
    /// Not valid JSON: serde_json's words and the 1-based column.
    Syntax { message: String, column: usize },
}

/// Parses one JSON value from `text`, refusing nesting deeper than
/// `max_depth` levels (an object or array is one level).
pub(crate) fn parse_limited(text: &str, max_depth: usize) -> Result<Value, ParseProblem> {
    if let Some(offset) = depth_exceeded_at(text.as_bytes(), max_depth) {
        return Err(ParseProblem::TooDeep {
            column: column_of(text, offset),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // The scan above bounds the nesting, so serde_json's recursion stays
    // within `max_depth` frames.
    deserializer.disable_recursion_limit();
    let value = Value::deserialize(&mut deserializer).map_err(syntax)?;
    deserializer.end().map_err(syntax)?;
    Ok(value)
}

fn syntax(error: serde_json::Error) -> ParseProblem {
    let text = error.to_string();
    // serde_json appends " at line L column C"; the column is reported on
    // its own and the line is always 1 here.
    let message = match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    };
    ParseProblem::Syntax {
        message,
        column: error.column(),
    }
}

/// The byte offset of the bracket that takes `bytes` past `max_depth`
/// levels of nesting, if one does. Brackets inside strings do not count.
pub(crate) fn depth_exceeded_at(bytes: &[u8], max_depth: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, &byte) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Some(offset);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The 1-based column (in characters) of a byte offset.
fn column_of(text: &str, offset: usize) -> usize {
    let mut cut = offset.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].chars().count() + 1
}

/// How deeply `value` nests (a scalar is 0, `[]` is 1, `[[1]]` is 2),
/// counting no further than `cap`; iterative, so any value can be measured.
pub(crate) fn depth(value: &Value, cap: usize) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        let level = level + 1;
        deepest = deepest.max(level);
        if deepest > cap {
            return deepest;
        }
        stack.extend(children.map(|child| (child, level)));
    }
    deepest
}

/// "a string", "an object"...: the kind of a value, for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON type of a value in one word, as `SameType` compares it.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value described for an error message: scalars are shown (shortened),
/// containers named.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("the string {}", shorten(&quote(s), 60)),
        Value::Array(_) | Value::Object(_) => kind_of(value).to_owned(),
    }
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A number in its canonical form, so that numbers equal in value compare
/// equal: an integral float within the range of a 64-bit integer becomes
/// that integer (`1.0` is `1`, `-0.0` is `0`).
pub(crate) fn canonical_number(number: &Number) -> Number {
    if number.is_i64() || number.is_u64() {
        return number.clone();
    }
    let Some(float) = number.as_f64() else {
        return number.clone();
    };
    // 2^63 and 2^64, exactly representable as f64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if float.is_finite() && float.fract() == 0.0 {
        if (-TWO_63..TWO_63).contains(&float) {
            // Exact: the float is integral and within range.
            #[allow(clippy::cast_possible_truncation)]
            return Number::from(float as i64);
        }
        if (0.0..TWO_64).contains(&float) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return Number::from(float as u64);
        }
    }
    number.clone()
}

/// The lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A copy of `value` that stops `max_depth` levels down, where deeper
/// containers are replaced by a string saying so. Used wherever a value of
/// unknown depth is copied into a report.
pub(crate) fn clone_bounded(value: &Value, max_depth: usize) -> Value {
    match value {
        Value::Array(_) | Value::Object(_) if max_depth == 0 => {
            Value::String(format!("({} nested too deeply to show)", kind_of(value)))
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| clone_bounded(item, max_depth - 1))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), clone_bounded(item, max_depth - 1)))
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

/// Compact JSON text of `value`, at most `max` characters.
pub(crate) fn compact(value: &Value, max: usize) -> String {
    let bounded = clone_bounded(value, crate::read::MAX_DEPTH);
    let text = serde_json::to_string(&bounded).unwrap_or_default();
    shorten(&text, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check_depth(text: &str, max: usize, expect: Option<usize>) {
        assert_eq!(depth_exceeded_at(text.as_bytes(), max), expect, "{text}");
    }

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        check_depth("[[1]]", 2, None);
        check_depth("[[1]]", 1, Some(1));
        check_depth(r#"{"a":"[[[[\"[["}"#, 1, None);
        check_depth(r#"{"a":"\\","b":[[]]}"#, 2, Some(15));
        check_depth("", 0, None);
    }

    #[test]
    fn parse_limited_allows_exactly_the_limit() {
        let at_limit = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(parse_limited(&at_limit, 128).is_ok());
        let over = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert_eq!(
            parse_limited(&over, 128),
            Err(ParseProblem::TooDeep { column: 129 })
        );
        // Far too deep, unbalanced: refused by the scan, no recursion.
        let deep = "[".repeat(1_000_000);
        assert!(matches!(
            parse_limited(&deep, 128),
            Err(ParseProblem::TooDeep { .. })
        ));
    }

    #[test]
    fn syntax_errors_carry_a_column() {
        match parse_limited(r#"{"a":1"#, 128) {
            Err(ParseProblem::Syntax { message, column }) => {
                assert_eq!(message, "EOF while parsing an object");
                assert_eq!(column, 6);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse_limited("{} {}", 128),
            Err(ParseProblem::Syntax { .. })
        ));
    }

    #[test]
    fn depth_of_values() {
        assert_eq!(depth(&json!(1), 10), 0);
        assert_eq!(depth(&json!([]), 10), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": []}]}), 10), 4);
        let mut deep = json!(null);
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(depth(&deep, 128), 129);
        // Dropping a value this deep recurses; unwind it by hand.
        let mut current = deep;
        while let Value::Array(mut items) = current {
            current = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn canonical_numbers() {
        let n = |v: Value| match v {
            Value::Number(n) => canonical_number(&n),
            _ => Number::from(0),
        };
        assert_eq!(n(json!(1.0)), Number::from(1));
        assert_eq!(n(json!(-0.0)), Number::from(0));
        assert_eq!(n(json!(1.5)).as_f64(), Some(1.5));
        assert_eq!(n(json!(1e19)), Number::from(10_000_000_000_000_000_000u64));
        assert_eq!(n(json!(1e30)).as_f64(), Some(1e30));
        assert_eq!(n(json!(u64::MAX)), Number::from(u64::MAX));
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn descriptions_and_shortening() {
        assert_eq!(describe(&json!("x")), "the string \"x\"");
        assert_eq!(describe(&json!(1.5)), "1.5");
        assert_eq!(describe(&json!([1])), "an array");
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hé", 2), "hé");
        assert_eq!(
            clone_bounded(&json!({"a": [[1]]}), 2),
            json!({"a": ["(an array nested too deeply to show)"]})
        );
    }
}
