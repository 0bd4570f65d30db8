//! Tests of the replayer: answers in order, misses and their reports, strict
//! order, skipped methods, and the report's text.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::{Value, json};

use crate::matching::{MatchConfig, MatchOptions, PathMatch, Replayer};
use crate::test_support::{call, header, numbered, request};
use crate::{Cassette, FieldDiff, Interaction};

fn cassette(interactions: Vec<Interaction>) -> Arc<Cassette> {
    Arc::new(Cassette {
        header: header(),
        interactions: numbered(interactions),
        path: None,
    })
}

fn args(tool: &str, arguments: Value) -> Value {
    json!({"name": tool, "arguments": arguments})
}

fn result_text(interaction: &Interaction) -> Value {
    interaction.outcome.to_json()["result"]["text"].clone()
}

#[test]
fn nth_call_gets_nth_answer_then_misses() {
    let replayer = Replayer::new(
        cassette(vec![
            call("roll", json!({}), json!({"text": "first"})),
            call("other", json!({}), json!({"text": "other"})),
            call("roll", json!({}), json!({"text": "second"})),
        ]),
        MatchOptions::default(),
    );
    let first = replayer
        .answer("tools/call", &args("roll", json!({})))
        .unwrap();
    assert_eq!((first.seq, result_text(&first)), (1, json!("first")));
    let second = replayer
        .answer("tools/call", &args("roll", json!({})))
        .unwrap();
    assert_eq!((second.seq, result_text(&second)), (3, json!("second")));
    let miss = replayer
        .answer("tools/call", &args("roll", json!({})))
        .unwrap_err();
    assert_eq!(miss.report.reason, "recorded 2 times; this is call 3");
    assert_eq!(miss.report.step, 3);
    assert_eq!(miss.report.expected, None);
    // The used-up recordings are still shown, identical.
    assert_eq!(miss.report.candidates[0].seq, 1);
    assert_eq!(miss.report.candidates[0].score, 1.0);
    assert!(miss.report.candidates[0].diffs.is_empty());
    assert_eq!(replayer.steps(), 3);
    assert_eq!(replayer.unused(), [2]);

    let once = Replayer::new(
        cassette(vec![call("a", json!({}), json!({}))]),
        MatchOptions::default(),
    );
    once.answer("tools/call", &args("a", json!({}))).unwrap();
    let miss = once
        .answer("tools/call", &args("a", json!({})))
        .unwrap_err();
    assert_eq!(miss.report.reason, "recorded 1 time; this is call 2");
}

#[test]
fn matching_ignores_key_order_numbers_and_meta() {
    let replayer = Replayer::new(
        cassette(vec![call(
            "t",
            json!({"a": 1, "b": {"c": [1.0, 2]}}),
            json!({}),
        )]),
        MatchOptions::default(),
    );
    let mut params = args("t", json!({"b": {"c": [1, 2.0]}, "a": 1.0}));
    params["_meta"] = json!({"progressToken": "p1"});
    assert_eq!(replayer.answer("tools/call", &params).unwrap().seq, 1);
}

#[test]
fn misses_rank_the_closest_call_first() {
    let replayer = Replayer::new(
        cassette(vec![
            request(
                "resources/read",
                json!({"uri": "file:///orders/o2"}),
                json!({}),
            ),
            call("search", json!({"order_id": "o2"}), json!({})),
            call(
                "lookup_order",
                json!({"order_id": "o3", "verbose": true}),
                json!({}),
            ),
            call(
                "lookup_order",
                json!({"order_id": "o1", "verbose": false}),
                json!({}),
            ),
        ]),
        MatchOptions::default(),
    );
    let miss = replayer
        .answer(
            "tools/call",
            &args("lookup_order", json!({"order_id": "o2", "verbose": false})),
        )
        .unwrap_err();
    let report = &miss.report;
    assert_eq!(report.reason, "no recorded call matches");
    assert_eq!(report.method, "tools/call");
    assert_eq!(report.tool.as_deref(), Some("lookup_order"));
    assert_eq!(
        report.received,
        args("lookup_order", json!({"order_id": "o2", "verbose": false}))
    );
    let seqs: Vec<u64> = report.candidates.iter().map(|c| c.seq).collect();
    // Same tool first, the one differing in one field before the one
    // differing in two; then another tool of the same method.
    assert_eq!(seqs, [4, 3, 2]);
    assert_eq!(
        report.candidates[0].diffs,
        [FieldDiff {
            path: "arguments.order_id".into(),
            recorded: Some(json!("o1")),
            received: Some(json!("o2")),
        }]
    );
    assert_eq!(report.candidates[0].tool.as_deref(), Some("lookup_order"));
    assert!(report.candidates[0].score > report.candidates[1].score);
    let paths: Vec<&str> = report.candidates[1]
        .diffs
        .iter()
        .map(|d| d.path.as_str())
        .collect();
    assert_eq!(paths, ["arguments.order_id", "arguments.verbose"]);
    // Nothing was used up by the miss.
    assert_eq!(replayer.unused(), [1, 2, 3, 4]);
}

#[test]
fn report_text() {
    let replayer = Replayer::new(
        cassette(vec![
            call("lookup_order", json!({"order_id": "o1"}), json!({})),
            call("refund", json!({"order_id": "o1", "amount": 5}), json!({})),
        ]),
        MatchOptions::default(),
    );
    let miss = replayer
        .answer(
            "tools/call",
            &args("lookup_order", json!({"order_id": "o2"})),
        )
        .unwrap_err();
    let text = miss.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            r#"step 1: tools/call lookup_order {"order_id":"o2"}"#,
            "reason: no recorded call matches",
            "closest recorded calls:",
            r#"  #1 tools/call lookup_order {"order_id":"o1"}, score 0.50"#,
            r#"    arguments.order_id: recorded "o1", received "o2""#,
        ]
    );
    // A call of another tool is listed when it shares something with the
    // call, never to fill the list.
    let miss = replayer
        .answer("tools/call", &args("lookup_order", json!({"amount": 5})))
        .unwrap_err();
    let listed: Vec<(Option<&str>, f64)> = miss
        .report
        .candidates
        .iter()
        .map(|c| (c.tool.as_deref(), c.score))
        .collect();
    assert_eq!(listed[0].0, Some("lookup_order"));
    assert_eq!(listed[1].0, Some("refund"));
    assert!(listed[1].1 > 0.0);
    let miss = replayer.answer("ping", &Value::Null).unwrap_err();
    assert!(miss.report.candidates.is_empty());
    assert!(
        miss.to_string().ends_with(
            "closest recorded calls: none alike (no recorded call of ping shares a field with it; the cassette holds 2 interactions)"
        ),
        "{miss}"
    );
    let empty = Replayer::new(cassette(vec![]), MatchOptions::default());
    let miss = empty.answer("ping", &Value::Null).unwrap_err();
    assert_eq!(
        miss.to_string(),
        "step 1: ping {}\nreason: no recorded call matches\nclosest recorded calls: none (the cassette holds no interactions)"
    );
    // The report serializes for events and JSON output.
    let json = serde_json::to_value(&miss.report).unwrap();
    assert_eq!(json["reason"], "no recorded call matches");
    assert_eq!(json["candidates"], json!([]));
}

#[test]
fn ignored_fields_are_not_reported() {
    let options = MatchOptions {
        default: MatchConfig::new()
            .with_rule("timestamp", PathMatch::Ignore)
            .unwrap(),
        ..MatchOptions::default()
    };
    let replayer = Replayer::new(
        cassette(vec![call(
            "t",
            json!({"q": "a", "timestamp": 1}),
            json!({}),
        )]),
        options,
    );
    assert!(
        replayer
            .answer("tools/call", &args("t", json!({"q": "a", "timestamp": 2})))
            .is_ok()
    );
    let miss = replayer
        .answer("tools/call", &args("t", json!({"q": "b", "timestamp": 3})))
        .unwrap_err();
    let paths: Vec<&str> = miss.report.candidates[0]
        .diffs
        .iter()
        .map(|d| d.path.as_str())
        .collect();
    assert_eq!(paths, ["arguments.q"]);
}

#[test]
fn per_tool_rules_apply_by_tool_name() {
    let mut options = MatchOptions::default();
    options.per_tool.insert(
        "search".into(),
        MatchConfig::new()
            .with_rule("session", PathMatch::SameType)
            .unwrap(),
    );
    let replayer = Replayer::new(
        cassette(vec![
            call("search", json!({"q": "x", "session": "s1"}), json!({})),
            call("lookup", json!({"q": "x", "session": "s1"}), json!({})),
        ]),
        options,
    );
    assert_eq!(
        replayer
            .answer(
                "tools/call",
                &args("search", json!({"q": "x", "session": "s2"}))
            )
            .unwrap()
            .seq,
        1
    );
    assert!(
        replayer
            .answer(
                "tools/call",
                &args("lookup", json!({"q": "x", "session": "s2"}))
            )
            .is_err()
    );
}

#[test]
fn repeat_last_answers_again_with_the_last_recording() {
    let replayer = Replayer::new(
        cassette(vec![
            call("roll", json!({}), json!({"text": "first"})),
            call("roll", json!({}), json!({"text": "second"})),
        ]),
        MatchOptions {
            repeat_last: true,
            ..MatchOptions::default()
        },
    );
    let texts: Vec<Value> = (0..4)
        .map(|_| {
            let answer = replayer
                .answer("tools/call", &args("roll", json!({})))
                .unwrap();
            result_text(&answer)
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            json!("first"),
            json!("second"),
            json!("second"),
            json!("second")
        ]
    );
    // An unrecorded call is still a miss.
    assert!(
        replayer
            .answer("tools/call", &args("other", json!({})))
            .is_err()
    );
}

#[test]
fn strict_order() {
    let options = MatchOptions {
        strict_order: true,
        ..MatchOptions::default()
    };
    let replayer = Replayer::new(
        cassette(vec![
            request("tools/list", json!({}), json!({"tools": []})),
            call("a", json!({}), json!({})),
            request("ping", Value::Null, json!({})),
            call("search", json!({"q": 1}), json!({})),
            call("a", json!({}), json!({})),
        ]),
        options,
    )
    .skip_methods(&["tools/list", "ping"]);

    let miss = replayer
        .answer("tools/call", &args("search", json!({"q": 1})))
        .unwrap_err();
    assert_eq!(
        miss.report.reason,
        "strict order: expected call #2 (tools/call a) next"
    );
    assert_eq!(miss.report.expected, Some(2));
    assert_eq!(
        replayer
            .answer("tools/call", &args("a", json!({})))
            .unwrap()
            .seq,
        2
    );
    // Skipped methods match in any order and do not move the cursor.
    assert_eq!(replayer.answer("ping", &Value::Null).unwrap().seq, 3);
    let miss = replayer
        .answer("tools/call", &args("a", json!({})))
        .unwrap_err();
    assert_eq!(
        miss.report.reason,
        "strict order: expected call #4 (tools/call search) next"
    );
    assert_eq!(miss.report.expected, Some(4));
    assert_eq!(
        replayer
            .answer("tools/call", &args("search", json!({"q": 1})))
            .unwrap()
            .seq,
        4
    );
    assert_eq!(replayer.unused(), [5]);
    assert_eq!(
        replayer
            .answer("tools/call", &args("a", json!({})))
            .unwrap()
            .seq,
        5
    );
    // Recorded calls of skipped methods never count as unused.
    assert!(replayer.unused().is_empty());
    let miss = replayer
        .answer("tools/call", &args("a", json!({})))
        .unwrap_err();
    assert_eq!(miss.report.reason, "recorded 2 times; this is call 3");
    let miss = replayer
        .answer("tools/call", &args("new", json!({})))
        .unwrap_err();
    assert_eq!(
        miss.report.reason,
        "no recorded call matches, and every recorded call has been used"
    );
    assert_eq!(replayer.steps(), 8);
}

#[test]
fn shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Replayer>();
    let replayer = Arc::new(Replayer::new(
        cassette(
            (0..40)
                .map(|i| call("t", json!({"i": i % 4}), json!({})))
                .collect(),
        ),
        MatchOptions::default(),
    ));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let replayer = Arc::clone(&replayer);
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| {
                        replayer
                            .answer("tools/call", &args("t", json!({"i": i})))
                            .unwrap()
                            .seq
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seen: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<u64>>());
    assert_eq!(replayer.steps(), 40);
}
