//! Tests of the writer: the bytes it writes, round trips through the reader,
//! blobs, redaction of every sink file, and its refusals.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use sandbar_redact::Redactor;
use serde_json::{Value, json};

use crate::test_support::{call, header, numbered, redactor, request, write};
use crate::{
    Cassette, CassetteErrorKind, CassetteWriter, Interaction, Notification, RecordedOutcome,
    blob_dir_for,
};

fn sample() -> Vec<Interaction> {
    let mut lookup = call(
        "lookup_order",
        json!({"order_id": "o1"}),
        json!({"content": [{"type": "text", "text": "shipped"}]}),
    );
    lookup.upstream = Some("everything".into());
    lookup.notifications = vec![
        Notification::new("notifications/progress", json!({"progress": 1, "total": 2})),
        Notification::new(
            "notifications/message",
            json!({"level": "info", "data": "looking"}),
        ),
        Notification {
            method: "sampling/createMessage".into(),
            params: json!({"messages": [{"role": "user", "content": {"type": "text", "text": "Which carrier?"}}], "maxTokens": 20}),
            answer: Some(RecordedOutcome::Result(
                json!({"role": "assistant", "model": "m", "content": {"type": "text", "text": "DHL"}}),
            )),
        },
        Notification {
            method: "elicitation/create".into(),
            params: json!({"message": "Confirm?", "requestedSchema": {"type": "object"}}),
            answer: Some(RecordedOutcome::Error {
                code: -32601,
                message: "the client does not support elicitation".into(),
                data: None,
            }),
        },
    ];
    let mut refund = call(
        "refund",
        json!({"order_id": "o1", "amount": 12.5}),
        Value::Null,
    );
    refund.outcome = RecordedOutcome::Error {
        code: -32602,
        message: "amount too large".into(),
        data: Some(json!({"max": 10})),
    };
    vec![
        lookup,
        refund,
        request("ping", Value::Null, json!({})),
        request(
            "resources/read",
            json!({"uri": "file:///a"}),
            json!({"contents": []}),
        ),
    ]
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn writes_the_documented_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "run", sample()[..2].to_vec());
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(
        lines,
        [
            format!(r#"{{"format":"sandbar-cassette","version":"1.3","scenario":{{"name":"support-desk","hash":"{}"}},"seed":42,"clock_start":"2026-01-15T09:00:00Z","recorded_at":"2026-11-27T07:00:00Z"}}"#, "ab".repeat(32)).as_str(),
            r#"{"seq":1,"method":"tools/call","params":{"name":"lookup_order","arguments":{"order_id":"o1"}},"upstream":"everything","virtual_time":"2026-01-15T09:00:01Z","notifications":[{"method":"notifications/progress","params":{"progress":1,"total":2}},{"method":"notifications/message","params":{"level":"info","data":"looking"}},{"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"Which carrier?"}}],"maxTokens":20},"answer":{"result":{"role":"assistant","model":"m","content":{"type":"text","text":"DHL"}}}},{"method":"elicitation/create","params":{"message":"Confirm?","requestedSchema":{"type":"object"}},"answer":{"error":{"code":-32601,"message":"the client does not support elicitation"}}}],"outcome":{"result":{"content":[{"type":"text","text":"shipped"}]}}}"#,
            r#"{"seq":2,"method":"tools/call","params":{"name":"refund","arguments":{"order_id":"o1","amount":12.5}},"virtual_time":"2026-01-15T09:00:01Z","outcome":{"error":{"code":-32602,"message":"amount too large","data":{"max":10}}}}"#,
            "",
        ]
    );
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dirs/run.jsonl");
    let mut full_header = header();
    full_header.run_id = Some("run_1".into());
    full_header.server = Some(json!({"name": "sandbar", "version": "0.1.0"}));
    full_header.upstreams.insert("everything".into(), json!({"tools": [{"name": "echo"}], "resources": [], "resource_templates": [], "prompts": []}));
    let mut writer = CassetteWriter::create(&path, full_header.clone(), redactor()).unwrap();
    assert!(writer.is_empty());
    let mut seqs = Vec::new();
    for (i, mut interaction) in sample().into_iter().enumerate() {
        // The writer numbers interactions itself.
        interaction.seq = 100 + i as u64;
        seqs.push(writer.append(interaction).unwrap());
    }
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(writer.len(), 4);
    assert_eq!(writer.path(), path);
    assert_eq!(writer.finish().unwrap(), path);

    let cassette = Cassette::load(&path).unwrap();
    assert_eq!(cassette.header, full_header);
    assert_eq!(cassette.interactions, numbered(sample()));
    // No blob directory when no body was large.
    assert!(!blob_dir_for(&path).exists());
}

#[test]
fn meta_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut interaction = call("t", json!({}), json!({}));
    interaction.params["_meta"] = json!({"progressToken": 7});
    let path = write(dir.path(), "run", vec![interaction]);
    let cassette = Cassette::load(&path).unwrap();
    assert_eq!(
        cassette.interactions[0].params,
        json!({"name": "t", "arguments": {}})
    );
}

#[test]
fn refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "run", vec![]);
    let before = fs::read(&path).unwrap();
    let error = CassetteWriter::create(&path, header(), redactor())
        .err()
        .unwrap();
    assert_eq!(error.kind(), CassetteErrorKind::Exists);
    assert_eq!(
        error.to_string(),
        format!(
            "{}: the cassette already exists; choose another path or remove the file first",
            path.display()
        )
    );
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn large_bodies_go_to_shared_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let big = json!({"content": [{"type": "text", "text": "x".repeat(2000)}]});
    let big_args = json!({"query": "y".repeat(2000)});
    let mut writer = CassetteWriter::create(&path, header(), redactor())
        .unwrap()
        .with_blob_threshold(1000);
    writer
        .append(call("search", big_args.clone(), big.clone()))
        .unwrap();
    writer
        .append(call("small", json!({}), big.clone()))
        .unwrap();
    writer
        .append(call("small", json!({}), json!({"ok": true})))
        .unwrap();
    writer.finish().unwrap();

    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].contains(r#""params":{"$blob":"sha256:"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(r#""outcome":{"$blob":"sha256:"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(r#""outcome":{"$blob":"sha256:"#),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains(r#""outcome":{"result":{"ok":true}}"#),
        "{}",
        lines[3]
    );
    assert!(lines.iter().all(|line| line.len() < 1000));
    // Two blobs: the params, and one outcome shared by two interactions.
    let blobs = files(&blob_dir_for(&path));
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    for blob in &blobs {
        let name = blob.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(crate::json::sha256_hex(&fs::read(blob).unwrap()), name);
    }

    let cassette = Cassette::load(&path).unwrap();
    assert_eq!(
        cassette.interactions[0].params,
        json!({"name": "search", "arguments": big_args})
    );
    assert_eq!(
        cassette.interactions[0].outcome,
        RecordedOutcome::Result(big.clone())
    );
    assert_eq!(
        cassette.interactions[1].outcome,
        RecordedOutcome::Result(big)
    );
}

#[test]
fn damaged_or_missing_blobs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let mut writer = CassetteWriter::create(&path, header(), redactor())
        .unwrap()
        .with_blob_threshold(10);
    writer
        .append(call("t", json!({}), json!({"text": "a long enough body"})))
        .unwrap();
    writer.finish().unwrap();
    let blob = files(&blob_dir_for(&path)).pop().unwrap();
    let hex = blob.file_stem().unwrap().to_string_lossy().into_owned();

    fs::write(&blob, br#"{"result":{"text":"changed"}}"#).unwrap();
    let error = Cassette::load(&path).unwrap_err();
    assert_eq!(error.kind(), CassetteErrorKind::Blob);
    assert_eq!(error.line(), Some(2));
    let expected = format!(
        "{}:2: blob file {} does not match its name: its content hashes to sha256:",
        path.display(),
        blob.display()
    );
    assert!(error.to_string().starts_with(&expected), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("it was changed or damaged after recording"),
        "{error}"
    );

    fs::remove_file(&blob).unwrap();
    let error = Cassette::load(&path).unwrap_err();
    assert_eq!(error.kind(), CassetteErrorKind::Blob);
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2: blob sha256:{hex} is missing: expected the file {}",
            path.display(),
            blob.display()
        )
    );

    // A blob whose content is valid JSON under its own hash but not an
    // outcome.
    let body = br#"{"nothing":1}"#;
    let hex = crate::json::sha256_hex(body);
    fs::write(blob_dir_for(&path).join(format!("{hex}.json")), body).unwrap();
    let text = crate::test_support::text(&[&format!(
        r#"{{"seq":1,"method":"ping","virtual_time":"T","outcome":{{"$blob":"sha256:{hex}"}}}}"#
    )]);
    fs::write(&path, text).unwrap();
    let error = Cassette::load(&path).unwrap_err();
    assert!(error.to_string().ends_with("unknown field `nothing` in `outcome`; expected `result`, `error` or `cancelled` (in the outcome's blob file)"), "{error}");
}

#[test]
fn params_shaped_like_a_reference_survive() {
    let dir = tempfile::tempdir().unwrap();
    let tricky = request(
        "custom/method",
        json!({"$blob": "sha256:not-really"}),
        json!({}),
    );
    let path = write(dir.path(), "run", vec![tricky.clone()]);
    let cassette = Cassette::load(&path).unwrap();
    assert_eq!(cassette.interactions, numbered(vec![tricky]));
}

#[test]
fn deep_bodies_go_to_blobs_or_are_refused() {
    let nest = |levels: usize| {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!([value]);
        }
        value
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.jsonl");
    let mut writer = CassetteWriter::create(&path, header(), redactor()).unwrap();
    // 127 levels of result: 128 with `{"result":...}`, fine in a blob, one
    // too many inside the line.
    let deep = nest(127);
    assert_eq!(
        writer
            .append(request("a", json!({}), deep.clone()))
            .unwrap(),
        1
    );
    let error = writer
        .append(request("b", nest(200), json!({})))
        .unwrap_err();
    assert_eq!(error.kind(), CassetteErrorKind::TooLarge);
    assert_eq!(
        error.to_string(),
        format!(
            "{}: interaction 2's params nest deeper than 128 levels, which a cassette cannot hold",
            path.display()
        )
    );
    let mut noisy = request("c", json!({}), json!({}));
    noisy.notifications.push(Notification::new("n", nest(126)));
    assert_eq!(
        writer.append(noisy).unwrap_err().kind(),
        CassetteErrorKind::TooLarge
    );
    // Nothing was written for the refused ones; the numbering goes on.
    assert_eq!(
        writer.append(request("d", json!({}), json!({}))).unwrap(),
        2
    );
    writer.finish().unwrap();
    let cassette = Cassette::load(&path).unwrap();
    assert_eq!(cassette.interactions.len(), 2);
    assert_eq!(
        cassette.interactions[0].outcome,
        RecordedOutcome::Result(deep)
    );
}

#[test]
fn write_to_exports_a_whole_cassette() {
    let dir = tempfile::tempdir().unwrap();
    let mut interactions = sample();
    for interaction in &mut interactions {
        interaction.seq = 9;
    }
    let cassette = Cassette {
        header: header(),
        interactions,
        path: None,
    };
    let path = dir.path().join("exports/run.jsonl");
    cassette.write_to(&path, Redactor::new()).unwrap();
    let loaded = Cassette::load(&path).unwrap();
    assert_eq!(loaded.interactions, numbered(sample()));
    // Writing again replaces the file whole; no temporary file is left.
    let shorter = Cassette {
        header: header(),
        interactions: sample()[..1].to_vec(),
        path: None,
    };
    shorter.write_to(&path, Redactor::new()).unwrap();
    assert_eq!(Cassette::load(&path).unwrap().interactions.len(), 1);
    assert_eq!(files(dir.path()), [path]);
}

#[test]
fn no_secret_reaches_any_file() {
    const SECRET: &str = "s3cr3t/V@lue+42=Zq";
    let url_encoded = "s3cr3t%2FV%40lue%2B42%3DZq";
    let base64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let redactor = Arc::new(
        Redactor::builder()
            .secret("api_key", SECRET)
            .unwrap()
            .build(),
    );

    let mut planted = call(
        "fetch",
        json!({"url": format!("https://x.test/?key={url_encoded}"), "auth": format!("Basic {base64}"), "raw": SECRET}),
        json!({"content": [{"type": "text", "text": format!("key is {SECRET}")}], "echo": base64}),
    );
    planted.notifications.push(Notification::new(
        "notifications/message",
        json!({"data": format!("using {SECRET} and {url_encoded}")}),
    ));
    planted.notifications.push(Notification {
        method: "sampling/createMessage".into(),
        params: json!({"messages": [{"role": "user", "content": {"type": "text", "text": format!("is {SECRET} valid?")}}]}),
        answer: Some(RecordedOutcome::Result(json!({"content": {"type": "text", "text": format!("yes, {base64}")}}))),
    });
    let mut failed = call("fetch", json!({"raw": SECRET}), Value::Null);
    failed.outcome = RecordedOutcome::Error {
        code: 1,
        message: format!("bad key {SECRET}"),
        data: Some(json!({"key": base64})),
    };
    // A large body, so that a blob file is written too.
    let big = call(
        "dump",
        json!({}),
        json!({"text": format!("{}{SECRET}", "z".repeat(100_000))}),
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.jsonl");
    let mut secret_header = header();
    secret_header.server = Some(json!({"instructions": format!("use {SECRET}")}));
    let mut writer = CassetteWriter::create(&path, secret_header, Arc::clone(&redactor)).unwrap();
    for interaction in [planted, failed, big] {
        writer.append(interaction).unwrap();
    }
    writer.finish().unwrap();
    let export = dir.path().join("export.jsonl");
    Cassette::load(&path)
        .unwrap()
        .write_to(&export, Arc::clone(&redactor))
        .unwrap();

    let written = files(dir.path());
    // Two cassettes, each with its blob.
    assert_eq!(written.len(), 4, "{written:?}");
    let mut placeholders = 0;
    for file in &written {
        let bytes = fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for form in [SECRET, url_encoded, base64.as_str()] {
            assert!(!text.contains(form), "{} holds {form}", file.display());
        }
        placeholders += text.matches("[REDACTED:secret:api_key]").count();
    }
    assert!(placeholders >= 10, "{placeholders}");
    // What was written still loads, redacted.
    let cassette = Cassette::load(&path).unwrap();
    assert_eq!(
        cassette.interactions[0].params["arguments"]["raw"],
        json!("[REDACTED:secret:api_key]")
    );
}

#[test]
fn writer_is_send() {
    fn send<T: Send>() {}
    send::<CassetteWriter>();
}

#[test]
fn a_cancelled_call_is_marked_and_reads_back_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let mut hang = call("hang", json!({}), Value::Null);
    hang.outcome = RecordedOutcome::cancelled("tools/call was cancelled by the client");
    hang.notifications = vec![Notification::new(
        "notifications/progress",
        json!({"progress": 1}),
    )];
    let path = write(dir.path(), "cancelled", vec![hang]);
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(r#""outcome":{"cancelled":true,"error":{"code":-32800,"message":"tools/call was cancelled by the client"}}"#),
        "{text}"
    );
    let cassette = Cassette::load(&path).unwrap();
    assert!(cassette.interactions[0].outcome.is_cancelled());
    assert_eq!(cassette.interactions[0].notifications.len(), 1);
}
