//! Property tests: the reader never panics, what the writer writes the
//! reader reads back, field diffs agree with equality, matching ignores key
//! order, and field paths print as they parse.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use proptest::prelude::*;
use sandbar_redact::Redactor;
use serde_json::{Map, Number, Value};

use crate::matching::{FieldPath, MatchOptions, PathSegment, Replayer, diff_values};
use crate::test_support::{header, numbered, text};
use crate::{Cassette, CassetteWriter, Interaction, Notification, RecordedOutcome};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        // Keys that need quoting in a path, and unicode.
        Just("a.b".to_owned()),
        Just("with space".to_owned()),
        Just("ü".to_owned()),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-1000i64..1000).prop_map(Value::from),
        (-1000i64..1000).prop_map(|n| Value::from(n as f64)),
        (-1.0e6f64..1.0e6).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<u64>().prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        "[a-z0-9 é\"\\\\]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json()), 0..4)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

fn outcome() -> impl Strategy<Value = RecordedOutcome> {
    prop_oneof![
        json().prop_map(RecordedOutcome::Result),
        (any::<i64>(), "[a-z ]{0,10}", prop::option::of(json())).prop_map(
            |(code, message, data)| RecordedOutcome::Error {
                code,
                message,
                data
            }
        ),
    ]
}

fn interaction() -> impl Strategy<Value = Interaction> {
    let method = prop_oneof![
        Just("tools/call".to_owned()),
        Just("resources/read".to_owned()),
        Just("ping".to_owned()),
        "[a-z]{1,5}/[a-z]{1,5}",
    ];
    let notification = prop_oneof![
        ("notifications/[a-z]{1,8}", json())
            .prop_map(|(method, params)| Notification::new(method, params)),
        ("[a-z]{1,8}/[a-z]{1,8}", json(), outcome()).prop_map(|(method, params, answer)| {
            Notification {
                method,
                params,
                answer: Some(answer),
            }
        }),
    ];
    (
        method,
        prop_oneof![Just(Value::Null), object()],
        prop::option::of("[a-z]{1,8}"),
        prop::collection::vec(notification, 0..3),
        outcome(),
    )
        .prop_map(
            |(method, params, upstream, notifications, outcome)| Interaction {
                seq: 0,
                method,
                params,
                upstream,
                virtual_time: "2026-01-15T09:00:01Z".to_owned(),
                notifications,
                outcome,
            },
        )
}

/// Canonical equality, written independently of the crate's normaliser:
/// objects as sets of keys, arrays in order, numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(i), Some(j), _, _) => i == j,
                (_, _, Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64() && (x.as_f64().is_some_and(|f| f.abs() < 9.0e15)),
            }
        }
        _ => a == b,
    }
}

/// The same value with every object's keys in reverse order.
fn reordered(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, item) in map.iter().rev() {
                out.insert(key.clone(), reordered(item));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(reordered).collect()),
        other => other.clone(),
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_strings(input in ".{0,200}") {
        let _ = Cassette::parse(&input, "p.jsonl", None);
        // Behind a valid header, so that interaction checks run too.
        let _ = Cassette::parse(&text(&[&input]), "p.jsonl", None);
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let input = String::from_utf8_lossy(&bytes);
        let _ = Cassette::parse(&input, "p.jsonl", None);
        let _ = Cassette::parse(&format!("{}{input}", text(&[])), "p.jsonl", None);
    }

    #[test]
    fn parse_never_panics_on_json_shapes(lines in prop::collection::vec(json(), 0..4)) {
        let lines: Vec<String> = lines.iter().map(|v| v.to_string()).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let _ = Cassette::parse(&text(&refs), "p.jsonl", None);
    }

    /// A cassette cut anywhere reads as its complete lines, or fails with a
    /// located error; never a panic, never a wrong interaction.
    #[test]
    fn cut_cassettes(interactions in prop::collection::vec(interaction(), 1..4), cut in any::<prop::sample::Index>()) {
        let cassette = Cassette { header: header(), interactions: numbered(interactions), path: None };
        let full = to_text(&cassette);
        let mut at = cut.index(full.len() + 1);
        while !full.is_char_boundary(at) {
            at -= 1;
        }
        match Cassette::parse(&full[..at], "p.jsonl", None) {
            Ok(read) => {
                let n = read.interactions.len();
                prop_assert_eq!(&read.interactions[..], &cassette.interactions[..n]);
            }
            Err(error) => prop_assert!(error.line().is_some(), "{}", error),
        }
    }

    #[test]
    fn write_then_load_round_trips(interactions in prop::collection::vec(interaction(), 0..5), threshold in 0usize..400) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        // No patterns and no secrets: the redactor leaves everything as is.
        let redactor = Arc::new(Redactor::builder().without_default_patterns().build());
        let mut writer = CassetteWriter::create(&path, header(), redactor).unwrap().with_blob_threshold(threshold);
        for interaction in &interactions {
            writer.append(interaction.clone()).unwrap();
        }
        writer.finish().unwrap();
        let loaded = Cassette::load(&path).unwrap();
        prop_assert_eq!(loaded.header, header());
        prop_assert_eq!(loaded.interactions, numbered(interactions));
    }

    #[test]
    fn diff_of_a_value_with_itself_is_empty(a in json()) {
        prop_assert!(diff_values(&a, &a).is_empty());
        prop_assert!(diff_values(&a, &reordered(&a)).is_empty());
    }

    #[test]
    fn diff_is_empty_exactly_when_equal(a in json(), b in json()) {
        let diffs = diff_values(&a, &b);
        prop_assert_eq!(diffs.is_empty(), same(&a, &b), "{:?}", diffs);
        // Both directions name the same fields.
        let there: Vec<String> = diffs.iter().map(|d| d.path.clone()).collect();
        let back: Vec<String> = diff_values(&b, &a).iter().map(|d| d.path.clone()).collect();
        prop_assert_eq!(there, back);
        // Every reported path parses back (the root is the empty path).
        for diff in &diffs {
            if !diff.path.is_empty() {
                prop_assert!(diff.path.parse::<FieldPath>().is_ok(), "{}", diff.path);
            }
        }
    }

    #[test]
    fn matching_ignores_key_order(arguments in object(), params in object()) {
        let options = MatchOptions::default();
        let call = serde_json::json!({"name": "t", "arguments": arguments});
        prop_assert_eq!(options.call_key("tools/call", &call), options.call_key("tools/call", &reordered(&call)));
        prop_assert_eq!(options.call_key("resources/read", &params), options.call_key("resources/read", &reordered(&params)));

        let recorded = Interaction::new("tools/call", call.clone(), "T", RecordedOutcome::Result(Value::Null));
        let cassette = Arc::new(Cassette { header: header(), interactions: numbered(vec![recorded]), path: None });
        let replayer = Replayer::new(cassette, options);
        prop_assert!(replayer.answer("tools/call", &reordered(&call)).is_ok());
    }

    #[test]
    fn paths_print_as_they_parse(segments in prop::collection::vec(prop_oneof![
        key().prop_map(PathSegment::Key),
        "[^\\x00]{0,4}".prop_map(PathSegment::Key),
        (0usize..50).prop_map(PathSegment::Index),
        Just(PathSegment::Any),
    ], 1..5)) {
        let path = FieldPath::from_segments(segments).unwrap();
        let shown = path.to_string();
        prop_assert_eq!(shown.parse::<FieldPath>(), Ok(path), "{}", shown);
    }

    #[test]
    fn path_parsing_never_panics(input in ".{0,30}") {
        let _ = input.parse::<FieldPath>();
    }
}

/// A cassette's text as the writer would produce it without blobs.
fn to_text(cassette: &Cassette) -> String {
    let mut out = serde_json::to_string(&cassette.header).unwrap();
    out.push('\n');
    for interaction in &cassette.interactions {
        out.push_str(&serde_json::to_string(interaction).unwrap());
        out.push('\n');
    }
    out
}
