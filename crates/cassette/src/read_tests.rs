//! Tests of the reader: every validation error with its line, versions and
//! forward compatibility, truncation, limits, and what valid files load as.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use crate::test_support::text;
use crate::{Cassette, CassetteErrorKind, RecordedOutcome};

const OK: &str = r#"{"seq":1,"method":"tools/call","params":{"name":"t","arguments":{}},"virtual_time":"T","outcome":{"result":{}}}"#;
const OK2: &str = r#"{"seq":2,"method":"ping","virtual_time":"T","outcome":{"result":{}}}"#;

/// A header line with `changes` merged into it (a `null` removes a field).
fn header_with(changes: Value) -> String {
    let mut header = serde_json::to_value(crate::test_support::header()).unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            header.as_object_mut().unwrap().shift_remove(key);
        } else {
            header[key] = value.clone();
        }
    }
    serde_json::to_string(&header).unwrap()
}

/// An interaction line (seq 1) with `changes` merged into it.
fn line_with(changes: Value) -> String {
    let mut line: Value = serde_json::from_str(OK).unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            line.as_object_mut().unwrap().shift_remove(key);
        } else {
            line[key] = value.clone();
        }
    }
    serde_json::to_string(&line).unwrap()
}

/// Asserts that `input` is refused with an error of `kind` whose message
/// (with its `file:line:` prefix) starts with `expect`.
#[track_caller]
fn check(input: &str, kind: CassetteErrorKind, expect: &str) {
    match Cassette::parse(input, "c.jsonl", None) {
        Ok(_) => panic!("accepted:\n{input}\nexpected: {expect}"),
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.starts_with(expect),
                "\n   got: {message}\nexpect: {expect}…"
            );
            assert_eq!(error.kind(), kind, "{message}");
        }
    }
}

#[test]
fn header_errors() {
    use CassetteErrorKind::{Format, NewerVersion};
    let h = header_with;
    check(
        "",
        Format,
        "c.jsonl:1: the file is empty; expected a cassette header",
    );
    check(
        "\n",
        Format,
        "c.jsonl:1: the first line is empty; expected the cassette header",
    );
    check(
        "[1]\n",
        Format,
        "c.jsonl:1: expected a cassette header (a JSON object with \"format\": \"sandbar-cassette\"), found an array",
    );
    check(
        &format!("{}\n", h(json!({"format": null}))),
        Format,
        "c.jsonl:1: expected a cassette header: `format` is missing; it should be \"sandbar-cassette\"",
    );
    check(
        &format!("{}\n", h(json!({"format": "other"}))),
        Format,
        "c.jsonl:1: not a Sandbar cassette: `format` is the string \"other\", expected \"sandbar-cassette\"",
    );
    check(
        &format!("{}\n", h(json!({"version": null}))),
        Format,
        "c.jsonl:1: `version` is missing from the header",
    );
    check(
        &format!("{}\n", h(json!({"version": "one"}))),
        Format,
        "c.jsonl:1: `version` must be a string \"MAJOR.MINOR\" such as \"1.0\", found the string \"one\"",
    );
    check(
        &format!("{}\n", h(json!({"version": 1}))),
        Format,
        "c.jsonl:1: `version` must be a string",
    );
    check(
        &format!("{}\n", h(json!({"version": "2.0"}))),
        NewerVersion,
        "c.jsonl: cassette format 2.0 is newer than this Sandbar reads (1.x); upgrade Sandbar to replay it",
    );
    check(
        &format!("{}\n", h(json!({"version": "0.9"}))),
        Format,
        "c.jsonl:1: cassette format 0.9 is not supported; this Sandbar reads 1.x",
    );
    check(
        &format!("{}\n", h(json!({"extra": 1}))),
        Format,
        "c.jsonl:1: unknown field `extra` in the header; expected one of `format`, `version`",
    );
    check(
        &format!("{}\n", h(json!({"seed": "x"}))),
        Format,
        "c.jsonl:1: `seed` must be a non-negative integer, found the string \"x\"",
    );
    check(
        &format!("{}\n", h(json!({"seed": -1}))),
        Format,
        "c.jsonl:1: `seed` must be a non-negative integer, found -1",
    );
    check(
        &format!("{}\n", h(json!({"scenario": null}))),
        Format,
        "c.jsonl:1: `scenario` is missing from the header; expected an object with `name` and `hash`",
    );
    check(
        &format!("{}\n", h(json!({"scenario": "s"}))),
        Format,
        "c.jsonl:1: `scenario` must be an object with `name` and `hash`",
    );
    check(
        &format!("{}\n", h(json!({"scenario": {"name": 1, "hash": "h"}}))),
        Format,
        "c.jsonl:1: `scenario.name` must be a string, found 1",
    );
    check(
        &format!("{}\n", h(json!({"scenario": {"name": "n"}}))),
        Format,
        "c.jsonl:1: `hash` is missing from `scenario`",
    );
    check(
        &format!(
            "{}\n",
            h(json!({"scenario": {"name": "n", "hash": "h", "x": 1}}))
        ),
        Format,
        "c.jsonl:1: unknown field `x` in `scenario`",
    );
    check(
        &format!("{}\n", h(json!({"clock_start": null}))),
        Format,
        "c.jsonl:1: `clock_start` is missing from the header",
    );
    check(
        &format!("{}\n", h(json!({"recorded_at": false}))),
        Format,
        "c.jsonl:1: `recorded_at` must be a string, found false",
    );
    check(
        &format!("{}\n", h(json!({"run_id": 5}))),
        Format,
        "c.jsonl:1: `run_id` must be a string or null, found 5",
    );
    check(
        &format!("{}\n", h(json!({"upstreams": []}))),
        Format,
        "c.jsonl:1: `upstreams` must be an object mapping each upstream's name to its catalog, found an array",
    );
}

#[test]
fn newer_major_has_no_line_and_its_own_kind() {
    let error = Cassette::parse(
        &format!("{}\n", header_with(json!({"version": "3.1"}))),
        "x/c.jsonl",
        None,
    )
    .unwrap_err();
    assert_eq!(error.kind(), CassetteErrorKind::NewerVersion);
    assert_eq!(error.line(), None);
    assert_eq!(
        error.to_string(),
        "x/c.jsonl: cassette format 3.1 is newer than this Sandbar reads (1.x); upgrade Sandbar to replay it"
    );
}

#[test]
fn interaction_errors() {
    use CassetteErrorKind::{Blob, Format};
    let l = line_with;
    let t = |lines: &[&str]| text(lines);
    check(
        &t(&["{"]),
        Format,
        "c.jsonl:2: invalid JSON at column 1: EOF while parsing an object",
    );
    check(
        &t(&["[]"]),
        Format,
        "c.jsonl:2: expected an interaction (a JSON object with `seq`, `method`, `params`, `virtual_time` and `outcome`), found an array",
    );
    check(&t(&["5"]), Format, "c.jsonl:2: expected an interaction");
    check(
        &t(&[&l(json!({"seq": 2}))]),
        Format,
        "c.jsonl:2: expected `seq` 1 (interactions are numbered from 1), found 2",
    );
    check(
        &t(&[OK, &l(json!({"seq": 3}))]),
        Format,
        "c.jsonl:3: expected `seq` 2 (one more than the line before), found 3",
    );
    check(
        &t(&[OK, OK]),
        Format,
        "c.jsonl:3: expected `seq` 2 (one more than the line before), found 1",
    );
    check(
        &t(&[&l(json!({"seq": "1"}))]),
        Format,
        "c.jsonl:2: `seq` must be a positive integer, found the string \"1\"",
    );
    check(
        &t(&[&l(json!({"seq": 0}))]),
        Format,
        "c.jsonl:2: `seq` must be a positive integer, found 0",
    );
    check(
        &t(&[&l(json!({"seq": 1.0}))]),
        Format,
        "c.jsonl:2: `seq` must be a positive integer, found 1.0",
    );
    check(
        &t(&[&l(json!({"seq": null}))]),
        Format,
        "c.jsonl:2: `seq` is missing from the interaction; expected 1",
    );
    check(
        &t(&[&l(json!({"method": ""}))]),
        Format,
        "c.jsonl:2: `method` must be a non-empty string, found the string \"\"",
    );
    check(
        &t(&[&l(json!({"method": 7}))]),
        Format,
        "c.jsonl:2: `method` must be a non-empty string, found 7",
    );
    check(
        &t(&[&l(json!({"method": null}))]),
        Format,
        "c.jsonl:2: `method` is missing from the interaction; expected the MCP method, such as \"tools/call\"",
    );
    check(
        &t(&[&l(json!({"virtual_time": null}))]),
        Format,
        "c.jsonl:2: `virtual_time` is missing from the interaction",
    );
    check(
        &t(&[&l(json!({"virtual_time": 5}))]),
        Format,
        "c.jsonl:2: `virtual_time` must be a string, found 5",
    );
    check(
        &t(&[&l(json!({"upstream": 5}))]),
        Format,
        "c.jsonl:2: `upstream` must be a string or null, found 5",
    );
    check(
        &t(&[&l(json!({"outcome": null}))]),
        Format,
        "c.jsonl:2: `outcome` is missing from the interaction; expected {\"result\": ...} or {\"error\": {...}}",
    );
    check(
        &t(&[&l(json!({"outcome": "ok"}))]),
        Format,
        "c.jsonl:2: `outcome` must be an object with either `result` or `error`, found the string \"ok\"",
    );
    check(
        &t(&[&l(
            json!({"outcome": {"result": 1, "error": {"code": 1, "message": "m"}}}),
        )]),
        Format,
        "c.jsonl:2: `outcome` must have exactly one of `result` or `error`, found both",
    );
    check(
        &t(&[&l(json!({"outcome": {}}))]),
        Format,
        "c.jsonl:2: `outcome` must have either `result` or `error`, found neither",
    );
    check(
        &t(&[&l(
            json!({"outcome": {"error": {"code": "x", "message": "m"}}}),
        )]),
        Format,
        "c.jsonl:2: `outcome.error.code` must be an integer, found the string \"x\"",
    );
    check(
        &t(&[&l(json!({"outcome": {"error": {"code": 1}}}))]),
        Format,
        "c.jsonl:2: `outcome.error.message` is missing; expected a string",
    );
    check(
        &t(&[&l(
            json!({"outcome": {"error": {"code": 1, "message": []}}}),
        )]),
        Format,
        "c.jsonl:2: `outcome.error.message` must be a string, found an array",
    );
    check(
        &t(&[&l(json!({"extra": 1}))]),
        Format,
        "c.jsonl:2: unknown field `extra` in the interaction; expected one of `seq`, `method`, `params`, `upstream`, `virtual_time`, `notifications`, `outcome`",
    );
    check(
        &t(&[&l(json!({"outcome": {"result": 1, "x": 2}}))]),
        Format,
        "c.jsonl:2: unknown field `x` in `outcome`; expected `result`, `error` or `cancelled`",
    );
    check(
        &t(&[&l(
            json!({"outcome": {"error": {"code": 1, "message": "m", "x": 2}}}),
        )]),
        Format,
        "c.jsonl:2: unknown field `x` in `outcome.error`",
    );
    check(
        &t(&[&l(json!({"notifications": {}}))]),
        Format,
        "c.jsonl:2: `notifications` must be an array, found an object",
    );
    check(
        &t(&[&l(json!({"notifications": [1]}))]),
        Format,
        "c.jsonl:2: `notifications[0]` must be an object with `method` and `params`, found 1",
    );
    check(
        &t(&[&l(
            json!({"notifications": [{"method": "a"}, {"params": {}}]}),
        )]),
        Format,
        "c.jsonl:2: `method` is missing from `notifications[1]`",
    );
    check(
        &t(&[&l(json!({"notifications": [{"method": ""}]}))]),
        Format,
        "c.jsonl:2: `notifications[0].method` must be a non-empty string",
    );
    check(
        &t(&[&l(json!({"notifications": [{"method": "a", "x": 1}]}))]),
        Format,
        "c.jsonl:2: unknown field `x` in `notifications[0]`; expected one of `method`, `params`, `answer`",
    );
    check(
        &t(&[&l(
            json!({"notifications": [{"method": "notifications/progress", "answer": {"result": {}}}]}),
        )]),
        Format,
        "c.jsonl:2: `notifications[0]` is a notification (notifications/progress) and has no `answer`; only a request to the client has one",
    );
    check(
        &t(&[&l(
            json!({"notifications": [{"method": "sampling/createMessage", "answer": 1}]}),
        )]),
        Format,
        "c.jsonl:2: `notifications[0].answer` must be an object with either `result` or `error`, found 1",
    );
    check(
        &t(&[&l(
            json!({"notifications": [{"method": "elicitation/create", "answer": {"error": {"code": 1}}}]}),
        )]),
        Format,
        "c.jsonl:2: `notifications[0].answer.error.message` is missing; expected a string",
    );
    check(
        &t(&[&l(json!({"params": {"$blob": "sha256:12"}}))]),
        Blob,
        "c.jsonl:2: invalid blob reference \"sha256:12\": expected \"sha256:\" followed by 64 lowercase hex digits",
    );
    let hex = "0".repeat(64);
    check(
        &t(&[&l(json!({"outcome": {"$blob": format!("sha256:{hex}")}}))]),
        Blob,
        &format!(
            "c.jsonl:2: refers to blob sha256:{hex}, but the cassette was not read from a file"
        ),
    );
}

#[test]
fn line_level_errors() {
    use CassetteErrorKind::{Format, TooLarge, Truncated};
    let header = header_with(json!({}));
    check(
        &format!("{header}\n\n{OK}\n"),
        Format,
        "c.jsonl:2: empty line; every line must hold one JSON object, and only a single newline may end the file",
    );
    check(
        &format!("{header}\n{OK}\n\n"),
        Format,
        "c.jsonl:3: empty line",
    );
    check(
        &format!("{header}\n{OK}\n  \n"),
        Format,
        "c.jsonl:3: empty line",
    );
    check(
        &format!("{header}\n{OK}\n  "),
        Format,
        "c.jsonl:3: the last line holds only whitespace",
    );
    // Cut off while writing: the last line has no newline and is not JSON.
    check(
        &format!("{header}\n{OK}\n{}", &OK2[..20]),
        Truncated,
        "c.jsonl:3: line 3 is truncated (the recording was cut off while writing)",
    );
    check(
        &header[..30],
        Truncated,
        "c.jsonl:1: line 1 is truncated (the recording was cut off while writing)",
    );
    // The same bytes with a newline are simply not JSON.
    check(
        &format!("{header}\n{OK}\n{}\n", &OK2[..20]),
        Format,
        "c.jsonl:3: invalid JSON at column 20: EOF while parsing a string",
    );
    let deep = format!(
        "{{\"seq\":1,\"params\":{}{}}}",
        "[".repeat(128),
        "]".repeat(128)
    );
    check(
        &format!("{header}\n{deep}\n"),
        TooLarge,
        "c.jsonl:2: JSON nested deeper than 128 levels (at column 146)",
    );
    let unbalanced = "[".repeat(200_000);
    check(
        &format!("{header}\n{unbalanced}\n"),
        TooLarge,
        "c.jsonl:2: JSON nested deeper than 128 levels",
    );
    let long = format!("\"{}\"", "x".repeat(crate::MAX_LINE_BYTES));
    check(
        &format!("{header}\n{long}\n"),
        TooLarge,
        "c.jsonl:2: the line has 67108866 bytes; lines over 64 MiB are refused",
    );
}

#[test]
fn valid_files() {
    let header = header_with(json!({}));
    // A header alone, with or without its newline.
    for input in [format!("{header}\n"), header.clone()] {
        let cassette = Cassette::parse(&input, "c.jsonl", None).unwrap();
        assert!(cassette.interactions.is_empty());
        assert_eq!(cassette.header, crate::test_support::header());
        assert_eq!(cassette.path, None);
    }
    // A last line without its newline is kept when it is complete.
    let cassette = Cassette::parse(&format!("{header}\n{OK}\n{OK2}"), "c.jsonl", None).unwrap();
    assert_eq!(cassette.interactions.len(), 2);
    let ping = &cassette.interactions[1];
    assert_eq!(ping.params, Value::Null);
    assert!(ping.notifications.is_empty());
    assert_eq!(ping.upstream, None);
    // CRLF line ends, as a Windows checkout may leave them.
    let crlf = format!("{header}\r\n{OK}\r\n{OK2}\r\n");
    assert_eq!(
        Cassette::parse(&crlf, "c.jsonl", None)
            .unwrap()
            .interactions
            .len(),
        2
    );
    // Everything optional, filled in.
    let full = line_with(json!({
        "upstream": "everything",
        "notifications": [{"method": "notifications/progress", "params": {"progress": 1}}, {"method": "notifications/message"}],
        "outcome": {"error": {"code": -32000, "message": "nope", "data": {"why": "x"}}},
    }));
    let cassette = Cassette::parse(&text(&[&full]), "c.jsonl", None).unwrap();
    let interaction = &cassette.interactions[0];
    assert_eq!(interaction.upstream.as_deref(), Some("everything"));
    assert_eq!(interaction.notifications.len(), 2);
    assert_eq!(interaction.notifications[1].params, Value::Null);
    assert_eq!(
        interaction.outcome,
        RecordedOutcome::Error {
            code: -32000,
            message: "nope".into(),
            data: Some(json!({"why": "x"}))
        }
    );
    let header = header_with(
        json!({"run_id": "run_1", "server": {"name": "sandbar"}, "upstreams": {"everything": {"tools": []}}}),
    );
    let cassette = Cassette::parse(&format!("{header}\n"), "c.jsonl", None).unwrap();
    assert_eq!(cassette.header.run_id.as_deref(), Some("run_1"));
    assert_eq!(cassette.header.server, Some(json!({"name": "sandbar"})));
    assert_eq!(
        cassette.header.upstreams.get("everything"),
        Some(&json!({"tools": []}))
    );
}

#[test]
fn newer_minor_versions_ignore_unknown_fields() {
    let header = header_with(json!({"version": "1.7", "compression": "none"}));
    let line = line_with(json!({
        "cost": 3,
        "notifications": [{"method": "n", "params": {}, "at": "T"}],
        "outcome": {"error": {"code": 1, "message": "m", "retryable": true}, "elapsed_ms": 5},
    }));
    let cassette = Cassette::parse(&format!("{header}\n{line}\n"), "c.jsonl", None).unwrap();
    assert_eq!(cassette.header.version, "1.7");
    assert_eq!(
        cassette.interactions[0].outcome,
        RecordedOutcome::Error {
            code: 1,
            message: "m".into(),
            data: None
        }
    );
    // The rest of the shape is still checked.
    let bad = line_with(json!({"cost": 3, "seq": 4}));
    check(
        &format!("{header}\n{bad}\n"),
        CassetteErrorKind::Format,
        "c.jsonl:2: expected `seq` 1",
    );
    // The same file in this crate's own minor version is strict.
    let header = header_with(json!({"version": "1.0"}));
    check(
        &format!("{header}\n{line}\n"),
        CassetteErrorKind::Format,
        "c.jsonl:2: unknown field `cost` in the interaction",
    );
}

#[test]
fn load_reads_files_and_reports_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let shown = path.display().to_string();

    let error = Cassette::load(&path).unwrap_err();
    assert_eq!(error.kind(), CassetteErrorKind::Io);
    assert!(
        error
            .to_string()
            .starts_with(&format!("{shown}: could not read the cassette: ")),
        "{error}"
    );

    let good = text(&[OK]);
    std::fs::write(&path, &good).unwrap();
    let cassette = Cassette::load(&path).unwrap();
    assert_eq!(cassette.path.as_deref(), Some(path.as_path()));
    assert_eq!(cassette.interactions.len(), 1);

    // Invalid UTF-8 in the middle of line 2.
    let mut bytes = good.clone().into_bytes();
    let at = bytes.len() - 10;
    bytes[at] = 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let error = Cassette::load(&path).unwrap_err();
    assert_eq!(error.kind(), CassetteErrorKind::Format);
    assert_eq!(
        error.to_string(),
        format!("{shown}:2: the line is not valid UTF-8; cassettes are UTF-8 text")
    );

    // Cut off inside a character.
    let mut bytes = good.into_bytes();
    bytes.extend_from_slice("{\"seq\":2,\"method\":\"é".as_bytes());
    bytes.pop();
    std::fs::write(&path, &bytes).unwrap();
    let error = Cassette::load(&path).unwrap_err();
    assert_eq!(error.kind(), CassetteErrorKind::Truncated);
    assert_eq!(error.line(), Some(3));
}
