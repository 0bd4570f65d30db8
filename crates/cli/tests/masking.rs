//! `sandbar scan` and `sandbar mask`, end to end through the binary: what
//! scan reports (and its exit codes), and what mask leaves of real data in
//! JSON, JSONL, CSV and text — nothing, consistently under one key.

mod common;

use std::path::Path;

use serde_json::Value;

use common::*;

const KEY_A: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KEY_B: &str = "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0";

/// Real-looking personal data and a credential, in four formats.
fn write_inputs(dir: &Path) {
    std::fs::write(
        dir.join("customers.csv"),
        "first_name,last_name,email,phone,iban\n\
         Grace,Hopper,grace.hopper@navy-mail.com,+1 212 736 4412,DE89370400440532013000\n\
         Alan,Turing,alan.turing@bletchley-park.co.uk,+44 161 496 0123,GB82WEST12345698765432\n",
    )
    .expect("write csv");
    std::fs::write(
        dir.join("orders.jsonl"),
        "{\"order\":\"o-1\",\"customer\":{\"name\":\"Grace Hopper\",\"email\":\"grace.hopper@navy-mail.com\"},\"total\":120.5}\n\
         {\"order\":\"o-2\",\"customer\":{\"name\":\"Alan Turing\",\"email\":\"alan.turing@bletchley-park.co.uk\"},\"total\":80}\n",
    )
    .expect("write jsonl");
    std::fs::write(
        dir.join("account.json"),
        "{\"owner\": {\"full_name\": \"Grace Hopper\", \"dob\": \"1906-12-09\"}, \"card_number\": \"4539 1488 0343 6467\", \"server\": \"10.20.30.40\"}\n",
    )
    .expect("write json");
    std::fs::write(
        dir.join("ticket.txt"),
        "Customer wrote from grace.hopper@navy-mail.com about card 4539 1488 0343 6467.\n\
         Deploy key in the log: AKIAZ7Q3XK2M4PLW6RT5 (rotated since).\n",
    )
    .expect("write text");
}

const REAL_VALUES: &[&str] = &[
    "Grace",
    "Hopper",
    "grace.hopper@navy-mail.com",
    "alan.turing@bletchley-park.co.uk",
    "212 736 4412",
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "4539 1488 0343 6467",
    "1906-12-09",
    "10.20.30.40",
    "AKIAZ7Q3XK2M4PLW6RT5",
];

fn read_all(dir: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn scan_reports_kinds_places_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(dir.path());
    let (code, out, err) = cli(
        &dir.path().join("data"),
        &["scan", dir.path().to_str().expect("path"), "--json"],
    );
    assert_eq!(code, 1, "{err}");
    let report: Value = serde_json::from_str(&out).expect("scan JSON");
    let findings = report["findings"].as_array().expect("findings");
    let has = |file: &str, kind: &str| {
        findings
            .iter()
            .any(|f| f["path"].as_str().is_some_and(|p| p.ends_with(file)) && f["kind"] == kind)
    };
    for (file, kind) in [
        ("customers.csv", "person_name"),
        ("customers.csv", "email"),
        ("customers.csv", "phone"),
        ("customers.csv", "iban"),
        ("orders.jsonl", "person_name"),
        ("orders.jsonl", "email"),
        ("account.json", "date_of_birth"),
        ("account.json", "payment_card"),
        ("account.json", "ip_address"),
        ("ticket.txt", "email"),
        ("ticket.txt", "payment_card"),
        ("ticket.txt", "aws_access_key_id"),
    ] {
        assert!(has(file, kind), "no {kind} in {file}: {out}");
    }
    // Offsets, lines and columns point at the value; previews never show it.
    let text = std::fs::read_to_string(dir.path().join("ticket.txt")).expect("read");
    let key = findings
        .iter()
        .find(|f| f["kind"] == "aws_access_key_id")
        .expect("the key");
    let (start, end) = (
        key["start"].as_u64().expect("start") as usize,
        key["end"].as_u64().expect("end") as usize,
    );
    assert_eq!(&text[start..end], "AKIAZ7Q3XK2M4PLW6RT5");
    assert_eq!(
        (key["line"].as_u64(), key["column"].as_u64()),
        (Some(2), Some(24))
    );
    assert_eq!(key["category"], "secret");
    for value in REAL_VALUES {
        assert!(!out.contains(value), "the report shows {value}");
    }
    assert!(
        report["summary"]["by_kind"]["email"].as_u64() >= Some(4),
        "{out}"
    );

    // Text output: one line per finding; a clean file exits 0.
    let (code, out, _) = cli(
        &dir.path().join("data"),
        &[
            "scan",
            dir.path().join("ticket.txt").to_str().expect("path"),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("ticket.txt:2:24: aws_access_key_id (secret)"),
        "{out}"
    );
    std::fs::write(
        dir.path().join("clean.txt"),
        "nothing to see here, version 1.2.3\n",
    )
    .expect("write");
    let (code, out, err) = cli(
        &dir.path().join("data"),
        &["scan", dir.path().join("clean.txt").to_str().expect("path")],
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = cli(&dir.path().join("data"), &["scan", "/no/such/path"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn mask_leaves_no_real_value_and_is_consistent_under_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).expect("mkdir");
    write_inputs(&inputs);
    let key_a = dir.path().join("a.key");
    let key_b = dir.path().join("b.key");
    std::fs::write(&key_a, KEY_A).expect("key");
    std::fs::write(&key_b, KEY_B).expect("key");
    let files: Vec<String> = [
        "customers.csv",
        "orders.jsonl",
        "account.json",
        "ticket.txt",
    ]
    .iter()
    .map(|f| inputs.join(f).display().to_string())
    .collect();
    let mask = |key: &Path, out: &Path| {
        let mut args: Vec<&str> = vec!["mask"];
        args.extend(files.iter().map(String::as_str));
        args.extend([
            "-o",
            out.to_str().expect("path"),
            "--key-file",
            key.to_str().expect("path"),
        ]);
        cli(&dir.path().join("data"), &args)
    };
    let out_a = dir.path().join("out-a");
    let (code, summary, err) = mask(&key_a, &out_a);
    assert_eq!(code, 0, "{err}");
    assert!(
        summary.contains("email") && summary.contains("aws_access_key_id"),
        "{summary}"
    );
    let masked = read_all(&out_a);
    for value in REAL_VALUES {
        assert!(
            !masked.contains(value),
            "{value} survived masking:\n{masked}"
        );
    }
    // Still the same shape: valid JSON lines, the CSV header, the order ids.
    for line in std::fs::read_to_string(out_a.join("orders.jsonl"))
        .expect("read")
        .lines()
    {
        let record: Value = serde_json::from_str(line).expect("still JSON");
        assert!(
            record["customer"]["email"]
                .as_str()
                .is_some_and(|e| e.contains('@'))
        );
    }
    assert!(masked.contains("first_name,last_name,email,phone,iban"));
    assert!(masked.contains("o-1") && masked.contains("o-2"));

    // The same person gets the same pseudonym everywhere, and again with
    // the same key; another key gives other pseudonyms.
    let jsonl = std::fs::read_to_string(out_a.join("orders.jsonl")).expect("read");
    let first: Value = serde_json::from_str(jsonl.lines().next().expect("line")).expect("json");
    let email = first["customer"]["email"]
        .as_str()
        .expect("email")
        .to_owned();
    let csv = std::fs::read_to_string(out_a.join("customers.csv")).expect("read");
    assert!(csv.contains(&email), "{email} not in {csv}");
    let out_a2 = dir.path().join("out-a2");
    assert_eq!(mask(&key_a, &out_a2).0, 0);
    assert_eq!(read_all(&out_a), read_all(&out_a2));
    let out_b = dir.path().join("out-b");
    assert_eq!(mask(&key_b, &out_b).0, 0);
    assert!(!read_all(&out_b).contains(&email));

    // Masking what was masked changes nothing.
    let again = dir.path().join("again");
    let masked_files: Vec<String> = [
        "customers.csv",
        "orders.jsonl",
        "account.json",
        "ticket.txt",
    ]
    .iter()
    .map(|f| out_a.join(f).display().to_string())
    .collect();
    let mut args: Vec<&str> = vec!["mask"];
    args.extend(masked_files.iter().map(String::as_str));
    args.extend([
        "-o",
        again.to_str().expect("path"),
        "--key-file",
        key_a.to_str().expect("path"),
    ]);
    let (code, _, err) = cli(&dir.path().join("data"), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read_all(&out_a), read_all(&again));
}

#[test]
fn mask_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("bad.jsonl"), "{\"ok\": 1}\n{not json}\n").expect("write");
    let out = dir.path().join("out.jsonl");
    let (code, _, err) = cli(
        &data,
        &[
            "mask",
            dir.path().join("bad.jsonl").to_str().expect("path"),
            "-o",
            out.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(!out.exists(), "a failed mask leaves no half-written output");

    let input = dir.path().join("in.txt");
    std::fs::write(&input, "ada@example.org\n").expect("write");
    let (code, _, err) = cli(
        &data,
        &[
            "mask",
            input.to_str().expect("path"),
            "-o",
            input.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    std::fs::write(dir.path().join("short.key"), "abc").expect("write");
    let (code, _, err) = cli(
        &data,
        &[
            "mask",
            input.to_str().expect("path"),
            "-o",
            dir.path().join("o.txt").to_str().expect("path"),
            "--key-file",
            dir.path().join("short.key").to_str().expect("path"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("64 hexadecimal digits"), "{err}");
    // Without a key the data directory gets one, readable by its owner only.
    let (code, _, err) = cli(
        &data,
        &[
            "mask",
            input.to_str().expect("path"),
            "-o",
            dir.path().join("o2.txt").to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let key = data.join("keys/mask.key");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is readable by others");
    }
}

#[test]
fn unmask_reverses_tokens_only_with_a_reason_and_leaves_an_audit_trail_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let input = dir.path().join("contacts.txt");
    std::fs::write(&input, "write to grace.hopper@navy-mail.com today\n").expect("write");
    let out = dir.path().join("tokens.txt");
    let (code, _, err) = cli(
        &data,
        &[
            "mask",
            input.to_str().expect("path"),
            "-o",
            out.to_str().expect("path"),
            "--operator",
            "tokenize",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let masked = std::fs::read_to_string(&out).expect("masked");
    let token = masked
        .split_whitespace()
        .find(|w| w.contains('@'))
        .expect("a token")
        .to_owned();
    assert_ne!(token, "grace.hopper@navy-mail.com");

    // No reason, no unmask; a token of another kind or key reveals nothing.
    let (code, outp, err) = cli(
        &data,
        &["unmask", &token, "--kind", "email", "--reason", " "],
    );
    assert_eq!((code, outp.as_str()), (2, ""), "{err}");
    let (code, outp, err) = cli(
        &data,
        &["unmask", "not-a-token", "--kind", "iban", "--reason", "x"],
    );
    assert_eq!((code, outp.as_str()), (1, ""), "{err}");

    let (code, outp, err) = cli(
        &data,
        &[
            "unmask",
            &token,
            "--kind",
            "email",
            "--reason",
            "ticket SUP-1234",
            "--actor",
            "ops@acme",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(outp, "grace.hopper@navy-mail.com\n");

    // The trail has the one unmask that revealed something, never the value.
    let (code, trail, err) = cli(&data, &["audit", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(!trail.contains("grace.hopper"), "{trail}");
    let trail: Value = serde_json::from_str(&trail).expect("audit JSON");
    let entries = trail["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{trail}");
    assert_eq!(entries[0]["action"], "unmask");
    assert_eq!(entries[0]["detail"]["reason"], "ticket SUP-1234");
    assert_eq!(entries[0]["detail"]["count"], 1);
    assert_eq!(trail["broken_at"], Value::Null);
    let (code, text, _) = cli(&data, &["audit"]);
    assert_eq!(code, 0);
    assert!(text.contains("1 entries, chain intact"), "{text}");
}
