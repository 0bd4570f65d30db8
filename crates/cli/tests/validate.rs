//! `sandbar validate` and `sandbar serve` on bad scenario files, end to end:
//! every mistake a scenario author can make is reported with the file, line
//! and column and what was expected; hostile files (alias bombs, deep
//! nesting, huge files) fail fast with a clear message instead of hanging or
//! exhausting memory; exit codes and the `--json` report are what the help
//! promises; and every example in `examples/` is valid.
//!
//! Every child process runs under an address-space limit and a generous
//! deadline enforced by killing it, so a regression shows up as a failed
//! assertion (a signal instead of an exit code, or "did not finish") rather
//! than as a hung or swapping test run.

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

/// Long enough for a debug build on a loaded 2-core machine; a hang is
/// anything beyond it.
const DEADLINE: Duration = Duration::from_secs(120);

/// Address space a child may map, in KiB (`ulimit -v`). Loading any scenario
/// needs a few hundred MiB at most; an alias bomb that slipped past the
/// budgets would need far more and abort instead of swapping the machine.
const ADDRESS_SPACE_KIB: u64 = 4 * 1024 * 1024;

/// What a finished child did.
#[derive(Debug)]
struct Finished {
    /// `None` when a signal ended it (an abort from the memory limit, a kill).
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `sandbar ARGS` under the memory limit; kills it at the deadline.
fn sandbar_bounded(args: &[&str]) -> Finished {
    // The limit is set by the shell that then becomes sandbar, so it applies
    // to sandbar alone. Fewer malloc arenas and runtime workers keep the
    // address space a normal run maps small on machines with many cores.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_sandbar"))
        .args(args)
        .env_remove("SANDBAR_DATA")
        .env_remove("SANDBAR_LOG")
        .env("MALLOC_ARENA_MAX", "2")
        .env("TOKIO_WORKER_THREADS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn sandbar");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sandbar") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sandbar {args:?} did not finish within {DEADLINE:?} (a hang); stderr so far: {}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Finished {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn validate(files: &[&Path], extra: &[&str]) -> Finished {
    let mut args: Vec<&str> = vec!["validate"];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(|f| f.to_str().expect("UTF-8 path")));
    sandbar_bounded(&args)
}

/// One bad scenario: its text (`{root}` stands for the test's temporary
/// directory), files next to it, and what validation must say. `{file}` in
/// a fragment stands for the scenario's path as given on the command line.
struct Case {
    name: &'static str,
    yaml: &'static str,
    /// Bytes written instead of `yaml`, for files that are not text.
    raw: Option<&'static [u8]>,
    files: &'static [(&'static str, &'static [u8])],
    /// Symlinks next to the scenario: (link name, target).
    links: &'static [(&'static str, &'static str)],
    fragments: &'static [&'static str],
    /// How many problems `--json` lists.
    problems: usize,
}

const fn case(name: &'static str, yaml: &'static str, fragments: &'static [&'static str]) -> Case {
    Case {
        name,
        yaml,
        raw: None,
        files: &[],
        links: &[],
        fragments,
        problems: 1,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "unknown top-level key",
            "version: 1\nname: x\ncolour: blue\n",
            &[
                "{file}:3:1",
                "unknown field `colour`",
                "expected one of version, name",
            ],
        ),
        case(
            "unknown key inside a tool's rule",
            "version: 1
name: x
tools:
  - name: t
    respond:
      - text: hi
        txet: oops
",
            &["{file}:7:9", "unknown field `txet`", "expected one of when"],
        ),
        case(
            "unknown key inside a matcher",
            "version: 1
name: x
tools:
  - name: t
    respond:
      - when: {n: {greater: 3}}
        text: hi
",
            &["{file}:6:20", "unknown field `greater`", "gt"],
        ),
        case(
            "duplicate key",
            "version: 1\nname: x\nseed: 1\nname: y\n",
            &[
                "{file}:4:1",
                "duplicate",
                "name",
                "each key may appear once",
            ],
        ),
        case(
            "duplicate key in a nested mapping",
            "version: 1
name: x
tools:
  - name: t
    respond:
      - text: a
        text: b
",
            &["{file}:7:9", "duplicate", "text"],
        ),
        case(
            "a string where a number is expected",
            "version: 1\nname: x\nseed: forty-two\n",
            &["{file}:3:7", "u64"],
        ),
        case(
            "a string where a count is expected, nested",
            "version: 1
name: x
tools:
  - name: t
    faults:
      - {every: three, error: boom}
",
            &["{file}:6:17", "u64"],
        ),
        case(
            "a list where a string is expected",
            "version: 1\nname: [a, b]\n",
            &["{file}:2:7", "string"],
        ),
        case(
            "unknown content kind",
            "version: 1
name: x
tools:
  - name: t
    respond:
      - content:
          - video: {data: AAAA}
",
            &[
                "{file}:7:13",
                "unknown variant `video`",
                "text, json, image, audio, resource, resource_link",
            ],
        ),
        case(
            "bad version",
            "version: 2\nname: x\n",
            &[
                "{file}:1:10",
                "version",
                "format version 2 is not supported",
            ],
        ),
        case(
            "invalid regex",
            "version: 1
name: x
tools:
  - name: t
    respond:
      - when: {code: {regex: \"([a-z\"}}
        text: hi
",
            &[
                "{file}:6:30",
                "tools[0].respond[0].when.code.regex",
                "invalid regular expression",
                "unclosed character class",
            ],
        ),
        case(
            "invalid JSON Schema in input_schema",
            "version: 1
name: x
tools:
  - name: t
    input_schema: {type: object, properties: {n: {type: 12}}}
",
            &[
                "{file}:5:19",
                "tools[0].input_schema",
                "invalid JSON Schema",
            ],
        ),
        case(
            "input_schema without type: object",
            "version: 1
name: x
tools:
  - name: t
    input_schema: {type: string}
",
            &["{file}:5:19", "tools[0].input_schema", "type: object"],
        ),
        case(
            "an example that violates the input schema",
            "version: 1
name: x
tools:
  - name: t
    input_schema: {type: object, properties: {n: {type: integer}}, required: [n]}
    examples:
      - {n: 1}
      - {n: five}
",
            &[
                "{file}:8:9",
                "tools[0].examples[1]",
                "does not fit the input schema",
                "\"five\" is not of type \"integer\"",
            ],
        ),
        case(
            "unclosed template expression",
            "version: 1
name: x
tools:
  - name: t
    respond:
      - text: \"hello {{ args.name \"
",
            &[
                "{file}:6:15",
                "tools[0].respond[0].text",
                "template does not parse",
            ],
        ),
        case(
            "unclosed template block",
            "version: 1
name: x
tools:
  - name: t
    respond:
      - text: \"{% for x in args.items %}{{ x }}\"
",
            &[
                "{file}:6:15",
                "tools[0].respond[0].text",
                "template does not parse",
            ],
        ),
        case(
            "broken guard expression",
            "version: 1
name: x
tools:
  - name: t
    respond:
      - if: \"args.n >\"
        text: hi
",
            &[
                "{file}:6:13",
                "tools[0].respond[0].if",
                "expression `args.n >` does not parse",
                "unexpected end of input",
            ],
        ),
        case(
            "in_table naming a missing table",
            "version: 1
name: x
data:
  orders: [{id: o1}]
tools:
  - name: t
    respond:
      - when: {id: {in_table: customers.id}}
        text: hi
",
            &[
                "{file}:8:31",
                "when.id.in_table",
                "there is no data table `customers`",
            ],
        ),
        case(
            "in_table naming a missing column",
            "version: 1
name: x
data:
  orders: [{id: o1, status: open}]
tools:
  - name: t
    respond:
      - when: {id: {in_table: orders.number}}
        text: hi
",
            &["{file}:8:31", "table `orders` has no column `number`"],
        ),
        case(
            "an effect on a missing table",
            "version: 1
name: x
data:
  orders: [{id: o1, status: open}]
tools:
  - name: t
    respond:
      - effect:
          - update: ordres
            where: {id: o1}
            set: {status: shipped}
        text: ok
",
            &[
                "{file}:9:13",
                "tools[0].respond[0].effect[0]",
                "there is no data table `ordres`",
            ],
        ),
        case(
            "a duplicate tool name",
            "version: 1
name: x
tools:
  - name: lookup
    respond: [{text: a}]
  - name: lookup
    respond: [{text: b}]
",
            &[
                "{file}:6:11",
                "tools[1].name",
                "a tool named `lookup` is already defined",
            ],
        ),
        case(
            "a side file path with ..",
            "version: 1\nname: x\ndata:\n  orders: {file: ../outside.csv}\n",
            &[
                "{file}:4:18",
                "data.orders.file",
                "must be a relative path inside the scenario's directory",
            ],
        ),
        case(
            "an absolute side file path",
            "version: 1\nname: x\ndata:\n  orders: {file: \"{root}/outside.csv\"}\n",
            &[
                "{file}:4:18",
                "data.orders.file",
                "must be a relative path inside the scenario's directory",
            ],
        ),
        Case {
            links: &[("orders.csv", "../outside.csv")],
            ..case(
                "a side file that is a symlink leading outside",
                "version: 1\nname: x\ndata:\n  orders: {file: orders.csv}\n",
                &[
                    "{file}:4:18",
                    "data.orders.file",
                    "resolves outside the scenario's directory",
                ],
            )
        },
        case(
            "a missing side file",
            "version: 1\nname: x\ndata:\n  orders: {file: orders.csv}\n",
            &["{file}:4:18", "cannot read `orders.csv`"],
        ),
        Case {
            files: &[("orders.csv", b"id,status\no1,open,extra\n")],
            ..case(
                "a CSV table with a ragged row",
                "version: 1\nname: x\ndata:\n  orders: {file: orders.csv}\n",
                &[
                    "{file}:4:18",
                    "cannot read table from `orders.csv`",
                    "3 fields",
                ],
            )
        },
        Case {
            files: &[("orders.json", b"[{\"id\": \"o1\"}, ")],
            ..case(
                "a truncated JSON table",
                "version: 1\nname: x\ndata:\n  orders: {file: orders.json}\n",
                &["{file}:4:18", "cannot read table from `orders.json`", "EOF"],
            )
        },
        Case {
            files: &[("orders.json", b"{\"id\": \"o1\"}")],
            ..case(
                "a JSON table that is not an array",
                "version: 1\nname: x\ndata:\n  orders: {file: orders.json}\n",
                &[
                    "{file}:4:18",
                    "cannot read table from `orders.json`",
                    "expected an array of objects",
                ],
            )
        },
        case(
            "a secret shorter than 4 bytes",
            "version: 1\nname: x\nsecrets:\n  api_key: abc\n",
            &["{file}:4:12", "secrets.api_key", "at least 4 bytes"],
        ),
        case(
            "a bad duration unit",
            "version: 1\nname: x\nclock: {start: 2026-01-15T09:00:00Z, step: 5 parsecs}\n",
            &[
                "{file}:3:44",
                "unknown duration unit `parsecs`",
                "expected ms, s, m or h",
            ],
        ),
        case(
            "a bad clock timestamp",
            "version: 1\nname: x\nclock: 2026-13-45T09:00:00Z\n",
            &[
                "{file}:3:8",
                "not an RFC 3339 timestamp",
                "2026-01-15T09:00:00Z",
            ],
        ),
        case(
            "a fault with probability 2",
            "version: 1
name: x
tools:
  - name: t
    faults:
      - {probability: 2, error: boom}
",
            &[
                "{file}:6:23",
                "tools[0].faults[0].probability",
                "between 0 and 1",
            ],
        ),
        Case {
            // A stray Latin-1 byte, as an editor set to the wrong encoding writes it.
            raw: Some(b"version: 1\nname: \"caf\xE9\"\n"),
            ..case("not UTF-8", "", &["{file}:2:11", "not UTF-8"])
        },
        case(
            "an upstream with neither command nor url",
            "version: 1
name: x
upstreams:
  - name: mailer
",
            &["{file}:4:5", "upstreams[0]", "needs `command`"],
        ),
        case(
            "an upstream with both command and url",
            "version: 1
name: x
upstreams:
  - name: mailer
    command: mail-server
    url: http://127.0.0.1:9/mcp
",
            &["upstreams[0]", "not both"],
        ),
        case(
            "an upstream URL that is not HTTP",
            "version: 1
name: x
upstreams:
  - name: mailer
    url: ftp://example.com/mcp
",
            &[
                "{file}:5:10",
                "upstreams[0].url",
                "not an http:// or https:// URL",
            ],
        ),
        case(
            "a header naming an undefined secret",
            "version: 1
name: x
upstreams:
  - name: mailer
    url: http://127.0.0.1:9/mcp
    headers: {Authorization: 'Bearer {{ secrets.mail_token }}'}
",
            &[
                "upstreams[0].headers.Authorization",
                "no secret named `mail_token`",
            ],
        ),
        case(
            "a tool linked to an undefined upstream",
            "version: 1
name: x
tools:
  - name: send
    upstream: mailer
",
            &[
                "{file}:5:15",
                "tools[0].upstream",
                "no upstream named `mailer`",
            ],
        ),
        case(
            "a live tool without an upstream",
            "version: 1
name: x
tools:
  - name: send
    mode: live
",
            &["{file}:5:11", "tools[0].mode", "needs `upstream`"],
        ),
        case(
            "an unknown mode",
            "version: 1
name: x
mode: playback
",
            &["{file}:3:7", "unknown variant `playback`", "stub"],
        ),
        case(
            "replay mode without a cassette",
            "version: 1
name: x
mode: replay
",
            &["replay.cassette", "need a cassette"],
        ),
        case(
            "a match path that is not a path",
            "version: 1
name: x
replay:
  cassette: c.jsonl
  match:
    ignore: ['items[x].id']
",
            &["{file}:6:14", "replay.match.ignore[0]", "not a field path"],
        ),
        case(
            "an unknown kind of personal data",
            "version: 1
name: x
privacy:
  kinds:
    e_mail: redact
",
            &[
                "{file}:5:13",
                "privacy.kinds.e_mail",
                "unknown kind",
                "email",
            ],
        ),
        case(
            "an unknown sink",
            "version: 1
name: x
privacy:
  sinks:
    webhook_body: {personal: redact}
",
            &[
                "{file}:5:19",
                "privacy.sinks.webhook_body",
                "unknown sink",
                "logs",
            ],
        ),
        case(
            "a setting of another operator",
            "version: 1
name: x
privacy:
  personal: {op: hash, keep: 4}
",
            &["privacy.personal", "`keep` is a setting of `mask` only"],
        ),
        case(
            "a hash too long",
            "version: 1
name: x
privacy:
  sinks:
    logs:
      kinds: {email: {op: hash, length: 65}}
",
            &["privacy.sinks.logs.kinds.email", "1 to 64"],
        ),
        case(
            "a mask character that is a space",
            "version: 1
name: x
privacy:
  personal: {op: mask, char: ' '}
",
            &["privacy.personal", "a mask `char` must be visible"],
        ),
        case("an empty file", "", &["{file}:1:1", "end of input"]),
        case(
            "two documents",
            "version: 1\nname: a\n---\nversion: 1\nname: b\n",
            &["{file}:3:1", "document"],
        ),
    ]
}

/// Writes a case into its own directory and returns the scenario's path.
fn materialize(root: &Path, index: usize, case: &Case) -> PathBuf {
    let dir = root.join(format!("case-{index:02}"));
    std::fs::create_dir_all(&dir).expect("case dir");
    let text = case.yaml.replace("{root}", &root.display().to_string());
    let path = dir.join("scenario.yaml");
    match case.raw {
        Some(bytes) => std::fs::write(&path, bytes),
        None => std::fs::write(&path, text),
    }
    .expect("write scenario");
    for (name, bytes) in case.files {
        std::fs::write(dir.join(name), bytes).expect("write side file");
    }
    for (name, target) in case.links {
        std::os::unix::fs::symlink(target, dir.join(name)).expect("symlink");
    }
    path
}

/// A table every side-file case can reach by escaping its directory: a
/// readable CSV, so refusals are about the path and not a missing file.
fn outside_file(root: &Path) {
    std::fs::write(root.join("outside.csv"), "id,status\no1,open\n").expect("outside file");
}

#[test]
fn every_mistake_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    outside_file(root);
    let mut failures = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let path = materialize(root, i, case);
        let file = path.display().to_string();
        let text = validate(&[&path], &[]);
        if text.code != Some(1) {
            failures.push(format!(
                "{}: exit {:?}, expected 1\n{}",
                case.name,
                text.code,
                text.output()
            ));
            continue;
        }
        let output = text.output();
        for fragment in case.fragments {
            let fragment = fragment.replace("{file}", &file);
            if !output.contains(&fragment) {
                failures.push(format!(
                    "{}: no {fragment:?} in the message:\n{output}",
                    case.name
                ));
            }
        }
        assert!(!output.contains("panicked"), "{}: {output}", case.name);

        let json = validate(&[&path], &["--json"]);
        let report: Value = match serde_json::from_str(&json.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "{}: --json is not JSON ({e}): {}",
                    case.name,
                    json.output()
                ));
                continue;
            }
        };
        let problems = report[0]["problems"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if problems.len() != case.problems {
            failures.push(format!(
                "{}: {} problems listed, expected {}: {problems:#?}",
                case.name,
                problems.len(),
                case.problems
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n\n")
    );
}

#[test]
fn serve_refuses_a_bad_scenario_with_the_same_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    outside_file(root);
    let data = root.join("data");
    let data = data.to_str().expect("UTF-8 path");
    for (i, case) in cases().iter().enumerate() {
        let path = materialize(root, i, case);
        let path = path.to_str().expect("UTF-8 path");
        let validated = validate(&[Path::new(path)], &[]);
        let served = sandbar_bounded(&["serve", path, "--listen", "127.0.0.1:0", "--data", data]);
        assert_eq!(
            served.code,
            Some(1),
            "{}: serve must refuse the scenario\n{}",
            case.name,
            served.output()
        );
        assert!(
            !served.stdout.contains("listening on"),
            "{}: serve listened on a bad scenario: {}",
            case.name,
            served.stdout
        );
        assert!(
            served.stderr.contains(validated.stdout.trim()),
            "{}: serve said\n{}\nbut validate said\n{}",
            case.name,
            served.stderr,
            validated.stdout
        );
    }
}

#[test]
fn several_problems_in_one_file_are_all_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(
        dir.path(),
        "many.yaml",
        "version: 1
name: many
secrets:
  k: abc
data:
  orders:
    - {id: o1, status: open}
tools:
  - name: t
    input_schema: {type: string}
    respond:
      - when: {id: {in_table: nope.id}}
        text: \"{{ args.x \"
      - error: no
    effect: {update: ghosts, where: {id: x}, set: {a: b}}
    faults:
      - {probability: 2, error: boom}
  - name: t
    respond: [{text: again}]
",
    );
    let file = path.display().to_string();
    let expected = [
        ("4:6", "secrets.k", "at least 4 bytes"),
        ("10:19", "tools[0].input_schema", "type: object"),
        (
            "12:31",
            "tools[0].respond[0].when.id.in_table",
            "no data table `nope`",
        ),
        (
            "13:15",
            "tools[0].respond[0].text",
            "template does not parse",
        ),
        ("15:13", "tools[0].effect[0]", "no data table `ghosts`"),
        ("17:23", "tools[0].faults[0].probability", "between 0 and 1"),
        ("18:11", "tools[1].name", "already defined"),
    ];

    let text = validate(&[&path], &[]);
    assert_eq!(text.code, Some(1), "{}", text.output());
    for (position, place, message) in expected {
        let line = format!("{file}:{position}: {place}: ");
        assert!(
            text.stdout
                .lines()
                .any(|l| l.starts_with(&line) && l.contains(message)),
            "no line {line}...{message} in\n{}",
            text.stdout
        );
    }

    let json = validate(&[&path], &["--json"]);
    assert_eq!(json.code, Some(1), "{}", json.output());
    let report: Value = serde_json::from_str(&json.stdout).expect("--json output");
    let problems = report[0]["problems"].as_array().expect("problems");
    let places: Vec<&str> = problems
        .iter()
        .map(|p| p["place"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        places,
        expected
            .iter()
            .map(|(_, place, _)| *place)
            .collect::<Vec<_>>()
    );
}

#[test]
fn json_report_has_one_entry_per_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_scenario(dir.path(), "good.yaml", "version: 1\nname: good\n");
    let bad = write_scenario(
        dir.path(),
        "bad.yaml",
        "version: 1\nname: bad\nsecrets: {k: abc}\nclock: never\n",
    );
    let broken = write_scenario(dir.path(), "broken.yaml", "version: 1\nname: x\nnmae: y\n");
    let missing = dir.path().join("missing.yaml");

    let out = validate(&[&good, &bad, &broken, &missing], &["--json"]);
    assert_eq!(out.code, Some(1), "{}", out.output());
    let report: Value = serde_json::from_str(&out.stdout).expect("--json output is JSON");
    let entries = report.as_array().expect("an array, one entry per file");
    assert_eq!(entries.len(), 4, "{report:#}");

    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["file"].as_str().expect("file"))
        .collect();
    let given: Vec<String> = [&good, &bad, &broken, &missing]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(names, given);
    let valid: Vec<bool> = entries
        .iter()
        .map(|e| e["valid"].as_bool().expect("valid"))
        .collect();
    assert_eq!(valid, [true, false, false, false]);
    assert_eq!(entries[0]["problems"], serde_json::json!([]));

    // Semantic problems: each with line, column, place and message.
    let bad_problems = entries[1]["problems"].as_array().expect("problems");
    assert_eq!(bad_problems.len(), 2, "{report:#}");
    for p in bad_problems {
        let mut keys: Vec<&str> = p
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["column", "line", "message", "place"], "{p}");
        assert!(p["line"].as_u64().is_some_and(|l| l >= 3), "{p}");
        assert!(p["column"].as_u64().is_some_and(|c| c >= 1), "{p}");
        assert!(p["place"].is_string(), "{p}");
        assert!(!p["message"].as_str().unwrap_or("").is_empty(), "{p}");
    }
    // A syntax error has a position but no place.
    let syntax = &entries[2]["problems"][0];
    assert_eq!(
        (syntax["line"].as_u64(), syntax["column"].as_u64()),
        (Some(3), Some(1)),
        "{syntax}"
    );
    assert!(syntax["place"].is_null(), "{syntax}");
    assert!(
        syntax["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown field `nmae`"),
        "{syntax}"
    );
    // A file that cannot be read says so.
    assert!(
        entries[3]["problems"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot read"),
        "{report:#}"
    );
    // Nothing but the report on stdout.
    assert!(out.stdout.trim_start().starts_with('['), "{}", out.stdout);
}

#[test]
fn hostile_files_fail_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");

    // Billion laughs: nine levels of ten aliases each, 10^9 strings if expanded.
    let mut laughs = String::from(
        "version: 1\nname: lol\ntools:\n  - name: t\n    respond:\n      - json:\n          a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    let levels = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in levels.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 10].join(", ");
        laughs.push_str(&format!("          {}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    let laughs = write_scenario(dir.path(), "laughs.yaml", &laughs);

    // One 4 MiB string, referenced two thousand times (8 GiB if expanded).
    let mut wide =
        String::from("version: 1\nname: wide\ntools:\n  - name: t\n    respond:\n      - json:\n");
    wide.push_str(&format!("          a: &s \"{}\"\n", "y".repeat(4 << 20)));
    wide.push_str(&format!("          b: [{}]\n", vec!["*s"; 2000].join(",")));
    let wide = write_scenario(dir.path(), "wide.yaml", &wide);

    // 10,000 nested flow sequences, and 200 nested block mappings.
    let depth = 10_000;
    let deep_flow = write_scenario(
        dir.path(),
        "flow.yaml",
        &format!(
            "version: 1\nname: deep\ntools:\n  - name: t\n    respond:\n      - json: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    );
    let mut block =
        String::from("version: 1\nname: deep\ntools:\n  - name: t\n    respond:\n      - json:\n");
    for level in 0..200 {
        block.push_str(&"  ".repeat(level + 5));
        block.push_str("k:\n");
    }
    let deep_block = write_scenario(dir.path(), "block.yaml", &block);

    // Just over the 8 MiB limit.
    let mut big = String::from("version: 1\nname: big\ndescription: \"");
    big.push_str(&"x".repeat(8 << 20));
    big.push_str("\"\n");
    let big = write_scenario(dir.path(), "big.yaml", &big);

    // Each message names the file, and says what is wrong in words a
    // scenario author knows (any one of the alternatives).
    let nesting: &[&str] = &["nest", "depth", "deep"];
    let mut failures = Vec::new();
    for (path, located, what) in [
        (&laughs, "", &["alias"][..]),
        (&wide, "", &["alias"][..]),
        (&deep_flow, ":6:", nesting),
        (&deep_block, "", nesting),
        (&big, "", &["8388608-byte limit", "8 MiB"][..]),
    ] {
        let file = path.display().to_string();
        let out = validate(&[path], &[]);
        let output = out.output();
        assert_eq!(
            out.code,
            Some(1),
            "{file}: a hostile file is an invalid file, not a crash\n{output}"
        );
        assert!(!output.contains("panicked"), "{output}");
        let mut issues = Vec::new();
        if !output.contains(&format!("{file}{located}")) {
            issues.push(format!("it does not name the file as {file}{located}"));
        }
        let words = output.replace(&file, "").to_lowercase();
        if !what.iter().any(|w| words.contains(w)) {
            issues.push(format!("it mentions none of {what:?}"));
        }
        // Sandbar's own words, not the parser's internals.
        for internal in [
            "budget breached",
            "Events {",
            "Depth {",
            "ScalarBytes {",
            "Aliases {",
        ] {
            if output.contains(internal) {
                issues.push(format!("it has internal wording {internal:?}"));
            }
        }
        if !issues.is_empty() {
            failures.push(format!("{file}: {}:\n{output}", issues.join("; ")));
        }

        // `serve` goes through the same loader and refuses just as fast.
        let data = dir.path().join("data");
        let served = sandbar_bounded(&[
            "serve",
            &file,
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().expect("UTF-8 path"),
        ]);
        assert_eq!(served.code, Some(1), "serve {file}:\n{}", served.output());
        assert!(!served.stdout.contains("listening on"), "{}", served.stdout);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_scenario(dir.path(), "good.yaml", "version: 1\nname: good\n");
    let good = good.to_str().expect("UTF-8 path");
    for args in [
        vec!["validate"],
        vec!["validate", "--json"],
        vec!["validate", "--frobnicate", good],
        vec!["validate", "--json=yes", good],
        vec!["serve"],
        vec!["serve", good, "--stdio", "--listen", "127.0.0.1:0"],
        vec!["serve", good, "--max-body", "lots"],
        vec!["no-such-command"],
    ] {
        let out = sandbar_bounded(&args);
        assert_eq!(out.code, Some(2), "{args:?}\n{}", out.output());
        assert!(out.stdout.is_empty(), "{args:?}: usage errors go to stderr");
        assert!(
            out.stderr.contains("Usage:") || out.stderr.contains("error:"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_log_filter_that_does_not_parse_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_scenario(dir.path(), "good.yaml", "version: 1\nname: good\n");
    let out = sandbar_bounded(&[
        "--log",
        "sandbar=loud",
        "validate",
        good.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.output());
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .starts_with("sandbar: invalid log filter \"sandbar=loud\" (--log or SANDBAR_LOG): "),
        "{}",
        out.stderr
    );
}

#[test]
fn a_valid_file_exits_0_and_says_ok() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(
        dir.path(),
        "fine.yaml",
        "version: 1
name: fine
data:
  orders: [{id: o1, status: open}]
tools:
  - name: lookup
    input_schema: {type: object, properties: {id: {type: string}}, required: [id]}
    examples: [{id: o1}]
    respond:
      - when: {id: {in_table: orders.id}}
        text: \"{{ orders[args.id].status }}\"
      - error: \"no order {{ args.id }}\"
",
    );
    let out = validate(&[&path], &[]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    assert!(
        out.stdout.starts_with(&format!("{}: ok", path.display())),
        "{}",
        out.stdout
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn every_example_validates_through_the_binary() {
    let mut scenarios: Vec<PathBuf> = Vec::new();
    let mut pending = vec![repo().join("examples")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read examples") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                scenarios.push(path);
            }
        }
    }
    scenarios.sort();
    assert!(scenarios.len() >= 4, "examples: {scenarios:?}");
    for path in &scenarios {
        let out = validate(&[path], &[]);
        assert_eq!(out.code, Some(0), "{}", out.output());
        assert!(out.stdout.contains(": ok"), "{}", out.stdout);
    }
    // All at once, too: one line each, in order.
    let all: Vec<&Path> = scenarios.iter().map(PathBuf::as_path).collect();
    let out = validate(&all, &[]);
    assert_eq!(out.code, Some(0), "{}", out.output());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), scenarios.len(), "{}", out.stdout);
    for (line, path) in lines.iter().zip(&scenarios) {
        assert!(
            line.starts_with(&format!("{}: ok", path.display())),
            "{line}"
        );
    }
}

#[test]
fn one_bad_file_among_good_ones_fails_the_run_and_all_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write_scenario(
        dir.path(),
        "bad.yaml",
        "version: 1\nname: x\ncolour: blue\n",
    );
    let good = example("support-desk");
    let out = validate(&[&good, &bad, &good], &[]);
    assert_eq!(out.code, Some(1), "{}", out.output());
    assert_eq!(out.stdout.matches(": ok").count(), 2, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("{}:3:1", bad.display())),
        "{}",
        out.stdout
    );
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // `sandbar validate --json *.yaml | head -1` closes the pipe early; the
    // command must stop quietly, as Unix tools do, not panic.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = sandbar()
        .arg("validate")
        .arg("--json")
        .arg(example("support-desk"))
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run sandbar");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

/// An error near a credential quotes the line it is on; the quote passes the
/// redactor like every other output, in text and in `--json`.
#[test]
fn problems_quoting_a_credential_do_not_print_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "ghp_R8sT4uV6wX8yZ0aB2cD4eF6gH8iJ0kL2mN4o";
    let file = write_scenario(
        dir.path(),
        "leaky.yaml",
        &format!(
            "version: 1\nname: x\nsecrets:\n  gh: {token}\ntools:\n  - name: t\n    bogus: {token}\n    respond:\n      - text: hi\n"
        ),
    );
    for args in [vec!["validate"], vec!["validate", "--json"]] {
        let out = sandbar().args(&args).arg(&file).output().expect("run");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(all.contains("unknown field `bogus`"), "{all}");
        assert!(!all.contains(token), "{args:?} printed the token: {all}");
    }
}
