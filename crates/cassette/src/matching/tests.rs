//! Tests of call identity (normalisation and rules), field diffs and the
//! similarity score.

#![allow(clippy::unwrap_used)]

use regex::Regex;
use serde_json::{Value, json};

use super::*;

fn options(rules: &[(&str, PathMatch)]) -> MatchOptions {
    let mut config = MatchConfig::new();
    for (path, how) in rules {
        config = config.with_rule(path, how.clone()).unwrap();
    }
    MatchOptions {
        default: config,
        ..MatchOptions::default()
    }
}

fn tool(name: &str, arguments: Value) -> (&'static str, Value) {
    ("tools/call", json!({"name": name, "arguments": arguments}))
}

/// Asserts whether two calls are the same under `options`.
#[track_caller]
fn check(options: &MatchOptions, a: (&str, Value), b: (&str, Value), same: bool) {
    let key_a = options.call_key(a.0, &a.1);
    let key_b = options.call_key(b.0, &b.1);
    assert_eq!(key_a == key_b, same, "\n{} {}\n{} {}", a.0, a.1, b.0, b.1);
    // The rules' diff agrees: no reported difference exactly when the
    // calls match (for calls of the same method and tool).
    if a.0 == b.0 && tool_of(a.0, &a.1) == tool_of(b.0, &b.1) {
        let scope = options.scope(b.0, &b.1);
        let diffs = diff_with_rules(
            &comparable_params(a.0, &a.1),
            &comparable_params(b.0, &b.1),
            &scope,
        );
        assert_eq!(diffs.is_empty(), same, "diffs: {diffs:?}");
    }
}

#[test]
fn plain_equality() {
    let o = MatchOptions::default();
    check(
        &o,
        tool("t", json!({"a": 1})),
        tool("t", json!({"a": 1})),
        true,
    );
    check(
        &o,
        tool("t", json!({"a": 1, "b": [1, {"x": 2, "y": 3}]})),
        tool("t", json!({"b": [1, {"y": 3, "x": 2}], "a": 1})),
        true,
    );
    check(
        &o,
        tool("t", json!({"a": 1})),
        tool("t", json!({"a": 1.0})),
        true,
    );
    check(
        &o,
        tool("t", json!({"a": -0.0})),
        tool("t", json!({"a": 0})),
        true,
    );
    check(
        &o,
        tool("t", json!({"a": 1})),
        tool("t", json!({"a": 1.5})),
        false,
    );
    check(
        &o,
        tool("t", json!({"a": 1})),
        tool("t", json!({"a": "1"})),
        false,
    );
    check(
        &o,
        tool("t", json!({"a": 1})),
        tool("t", json!({"a": 1, "b": null})),
        false,
    );
    check(
        &o,
        tool("t", json!({"a": [1, 2]})),
        tool("t", json!({"a": [2, 1]})),
        false,
    );
    check(&o, tool("t", json!({})), tool("u", json!({})), false);
    check(
        &o,
        tool("t", json!({})),
        ("tools/call", json!({"name": "t"})),
        true,
    );
    check(
        &o,
        tool("t", Value::Null),
        ("tools/call", json!({"name": "t"})),
        true,
    );
    check(&o, ("ping", Value::Null), ("ping", json!({})), true);
    check(
        &o,
        ("ping", json!({"_meta": {"progressToken": 1}})),
        ("ping", json!({})),
        true,
    );
    check(
        &o,
        ("resources/read", json!({"uri": "a"})),
        ("prompts/get", json!({"uri": "a"})),
        false,
    );
    // Fields of the params besides the arguments do not count for a tool.
    check(
        &o,
        tool("t", json!({})),
        (
            "tools/call",
            json!({"name": "t", "arguments": {}, "_meta": {"x": 1}}),
        ),
        true,
    );
}

#[test]
fn ignored_paths() {
    let o = options(&[
        ("timestamp", PathMatch::Ignore),
        ("items[*].id", PathMatch::Ignore),
        ("rows[0]", PathMatch::Ignore),
    ]);
    check(
        &o,
        tool("t", json!({"q": 1, "timestamp": "a"})),
        tool("t", json!({"q": 1, "timestamp": "b"})),
        true,
    );
    check(
        &o,
        tool("t", json!({"q": 1, "timestamp": "a"})),
        tool("t", json!({"q": 1})),
        true,
    );
    check(
        &o,
        tool("t", json!({"q": 1, "timestamp": "a"})),
        tool("t", json!({"q": 2, "timestamp": "a"})),
        false,
    );
    check(
        &o,
        tool(
            "t",
            json!({"items": [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}]}),
        ),
        tool("t", json!({"items": [{"id": 7, "n": "a"}, {"n": "b"}]})),
        true,
    );
    check(
        &o,
        tool("t", json!({"items": [{"id": 1, "n": "a"}]})),
        tool("t", json!({"items": [{"id": 1, "n": "z"}]})),
        false,
    );
    check(
        &o,
        tool("t", json!({"items": [{"id": 1}]})),
        tool("t", json!({"items": [{"id": 1}, {"id": 2}]})),
        false,
    );
    check(
        &o,
        tool("t", json!({"rows": [1, 2]})),
        tool("t", json!({"rows": [9, 2]})),
        true,
    );
    // An ignored element still takes its place.
    check(
        &o,
        tool("t", json!({"rows": [1, 2]})),
        tool("t", json!({"rows": [2]})),
        false,
    );
    check(
        &o,
        tool("t", json!({"rows": [1]})),
        tool("t", json!({"rows": []})),
        false,
    );
    // Paths are relative to the arguments for tools, to the params otherwise.
    check(
        &o,
        ("resources/read", json!({"uri": "a", "timestamp": 1})),
        ("resources/read", json!({"uri": "a", "timestamp": 2})),
        true,
    );
    check(
        &o,
        (
            "tools/call",
            json!({"name": "t", "arguments": {}, "timestamp": 1}),
        ),
        (
            "tools/call",
            json!({"name": "t", "arguments": {}, "timestamp": 2}),
        ),
        true,
    );
}

#[test]
fn regex_and_same_type() {
    let o = options(&[
        (
            "request_id",
            PathMatch::Regex(Regex::new(r"^req-\d+$").unwrap()),
        ),
        ("limit", PathMatch::SameType),
        ("filter", PathMatch::SameType),
    ]);
    check(
        &o,
        tool("t", json!({"request_id": "req-1"})),
        tool("t", json!({"request_id": "req-22"})),
        true,
    );
    check(
        &o,
        tool("t", json!({"request_id": "req-1"})),
        tool("t", json!({"request_id": "other"})),
        false,
    );
    check(
        &o,
        tool("t", json!({"request_id": "other"})),
        tool("t", json!({"request_id": "other"})),
        true,
    );
    check(
        &o,
        tool("t", json!({"request_id": "x"})),
        tool("t", json!({"request_id": "y"})),
        false,
    );
    check(
        &o,
        tool("t", json!({"request_id": 1})),
        tool("t", json!({"request_id": 1.0})),
        true,
    );
    check(
        &o,
        tool("t", json!({"request_id": "req-1"})),
        tool("t", json!({})),
        false,
    );
    check(
        &o,
        tool("t", json!({"limit": 5})),
        tool("t", json!({"limit": 10.5})),
        true,
    );
    check(
        &o,
        tool("t", json!({"limit": 5})),
        tool("t", json!({"limit": "5"})),
        false,
    );
    check(
        &o,
        tool("t", json!({"limit": 5})),
        tool("t", json!({})),
        false,
    );
    check(
        &o,
        tool("t", json!({"filter": {"a": 1}})),
        tool("t", json!({"filter": {"b": [2]}})),
        true,
    );
    check(
        &o,
        tool("t", json!({"filter": {"a": 1}})),
        tool("t", json!({"filter": [1]})),
        false,
    );
}

#[test]
fn first_rule_decides() {
    let o = options(&[
        ("x", PathMatch::Regex(Regex::new("^a").unwrap())),
        ("x", PathMatch::Ignore),
    ]);
    check(
        &o,
        tool("t", json!({"x": "ab"})),
        tool("t", json!({"x": "ac"})),
        true,
    );
    check(
        &o,
        tool("t", json!({"x": "b"})),
        tool("t", json!({"x": "c"})),
        false,
    );
}

#[test]
fn per_tool_rules_add_to_the_default() {
    let mut o = options(&[("trace", PathMatch::Ignore)]);
    o.per_tool.insert(
        "search".into(),
        MatchConfig::new()
            .with_rule("query", PathMatch::Ignore)
            .unwrap(),
    );
    check(
        &o,
        tool("search", json!({"query": "a", "trace": 1})),
        tool("search", json!({"query": "b", "trace": 2})),
        true,
    );
    check(
        &o,
        tool("lookup", json!({"query": "a"})),
        tool("lookup", json!({"query": "b"})),
        false,
    );
    check(
        &o,
        tool("lookup", json!({"trace": 1})),
        tool("lookup", json!({"trace": 2})),
        true,
    );
}

fn d(path: &str, recorded: Option<Value>, received: Option<Value>) -> FieldDiff {
    FieldDiff {
        path: path.into(),
        recorded,
        received,
    }
}

#[track_caller]
fn check_diff(a: Value, b: Value, expect: &[FieldDiff]) {
    assert_eq!(diff_values(&a, &b), expect, "\n{a}\n{b}");
}

#[test]
fn field_diffs() {
    check_diff(json!({"a": 1}), json!({"a": 1}), &[]);
    check_diff(json!({"a": 1, "b": 2}), json!({"b": 2.0, "a": 1}), &[]);
    check_diff(
        json!({"a": 1}),
        json!({"a": 2}),
        &[d("a", Some(json!(1)), Some(json!(2)))],
    );
    check_diff(
        json!({"arguments": {"items": [{"id": 1}, {"id": 2}, {"id": 3}]}}),
        json!({"arguments": {"items": [{"id": 1}, {"id": 2}, {"id": 4}]}}),
        &[d("arguments.items[2].id", Some(json!(3)), Some(json!(4)))],
    );
    check_diff(
        json!([1]),
        json!([1, {"x": 1}]),
        &[d("[1]", None, Some(json!({"x": 1})))],
    );
    check_diff(
        json!({"a": 1, "b": 2}),
        json!({"a": 1}),
        &[d("b", Some(json!(2)), None)],
    );
    check_diff(
        json!({"a": {"x": 1}}),
        json!({"a": [1]}),
        &[d("a", Some(json!({"x": 1})), Some(json!([1])))],
    );
    check_diff(
        json!("x"),
        json!("y"),
        &[d("", Some(json!("x")), Some(json!("y")))],
    );
    check_diff(
        json!({"a.b": 1, "c d": 2}),
        json!({"a.b": 2, "c d": 3}),
        &[
            d(r#"["a.b"]"#, Some(json!(1)), Some(json!(2))),
            d(r#"["c d"]"#, Some(json!(2)), Some(json!(3))),
        ],
    );
    // Keys in sorted order, whatever their order in either value.
    check_diff(
        json!({"z": 1, "a": 1, "m": 1}),
        json!({"m": 2, "z": 2, "a": 2}),
        &[
            d("a", Some(json!(1)), Some(json!(2))),
            d("m", Some(json!(1)), Some(json!(2))),
            d("z", Some(json!(1)), Some(json!(2))),
        ],
    );
    check_diff(
        json!(null),
        json!(false),
        &[d("", Some(Value::Null), Some(json!(false)))],
    );
}

#[test]
fn diff_lines() {
    assert_eq!(
        d("arguments.order_id", Some(json!("o1")), Some(json!("o2"))).to_string(),
        r#"arguments.order_id: recorded "o1", received "o2""#
    );
    assert_eq!(
        d("a", None, Some(json!([1]))).to_string(),
        "a: recorded (absent), received [1]"
    );
    assert_eq!(
        d("", Some(json!(1)), None).line("left", "right"),
        "(whole value): left 1, right (absent)"
    );
}

#[test]
fn similarity_scores() {
    let s = |a: Value, b: Value| similarity(&a, &b);
    assert_eq!(s(json!({"a": 1, "b": 2}), json!({"a": 1, "b": 2})), 1.0);
    assert_eq!(s(json!({"a": 1, "b": 2}), json!({"a": 1, "b": 3})), 0.5);
    assert_eq!(s(json!({"a": 1}), json!({"a": 1, "b": 3})), 0.5);
    assert_eq!(s(json!({}), json!({})), 1.0);
    assert_eq!(s(json!({}), json!({"a": 1})), 0.0);
    assert_eq!(
        s(json!({"a": [1, 2, 3, 4]}), json!({"a": [1, 2, 3, 5]})),
        0.75
    );
    // An object key that looks like an index is still a different leaf.
    assert_eq!(s(json!({"a": [1]}), json!({"a": {"0": 1}})), 0.0);
}

#[test]
fn very_deep_values_do_not_overflow() {
    // Built and taken apart by hand: `json!` and `Drop` would recurse.
    let mut a = json!(1);
    let mut b = json!(2);
    for _ in 0..5000 {
        a = Value::Array(vec![a]);
        b = Value::Array(vec![b]);
    }
    let o = MatchOptions::default();
    // Past the comparison depth the values are not told apart.
    assert_eq!(o.call_key("x", &a), o.call_key("x", &b));
    assert!(diff_values(&a, &b).is_empty());
    for value in [a, b] {
        let mut current = value;
        while let Value::Array(mut items) = current {
            current = items.pop().unwrap_or(Value::Null);
        }
    }
}

#[test]
fn a_redaction_placeholder_matches_any_other_but_not_a_value() {
    let o = options(&[]);
    let said = |text: &str| tool("echo", json!({"message": format!("my token is {text} ok")}));
    check(
        &o,
        said("[REDACTED:secret:search_token]"),
        said("[REDACTED:token]"),
        true,
    );
    check(
        &o,
        said("[REDACTED:email]"),
        said("[REDACTED:secret:a]"),
        true,
    );
    check(&o, said("[REDACTED:token]"), said("st_live_0123"), false);
    check(
        &o,
        said("[REDACTED:token]"),
        said("[REDACTED:Not A Kind]"),
        false,
    );
    check(
        &o,
        tool("echo", json!({"a": "[REDACTED:token]", "b": 1})),
        tool("echo", json!({"a": "[REDACTED:token]", "b": 2})),
        false,
    );
}
