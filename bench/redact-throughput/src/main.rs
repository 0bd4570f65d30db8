//! `cargo run --release -p sandbar-bench-redact-throughput`: how fast the
//! `Redactor` with its full built-in rule set gets through four kinds of text
//! on one core — prose, logs, JSON documents and source code — generated here
//! from a seed (about 20 MB each by default), with credentials planted at a
//! realistic density among near misses (`token_count=`, `password reset`,
//! `${DB_PASSWORD}`, paths, hashes and ids).
//!
//! Each corpus is redacted twice: record by record, the way sinks call the
//! redactor (a paragraph, a log line, a JSON document, a source file), and
//! in 1 MiB chunks. The figure is the median of `--runs` passes, in MB/s
//! (10^6 bytes per second) of input, per second of CPU time the measuring
//! thread used (from `/proc/thread-self/schedstat`, or wall-clock time where
//! that is missing): time the thread spent waiting for a core that other
//! work held does not count, so figures taken on a busy machine stay
//! comparable.
//!
//! Options: `--mb N` (size of each corpus), `--seed N`, `--runs N`,
//! `--corpus prose,logs,json,code`, `--secrets N` (also register N known
//! secrets, as a server holding vault credentials would), `--kinds` (also
//! list what was found, by placeholder kind), `--personal` (redact as the
//! sinks do: the credential rules, then the personal-data detectors with
//! the default policy, pseudonymize, under a fixed key).

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use std::time::{Duration, Instant};

use std::sync::Arc;

use sandbar_redact::sandbar_mask::MaskKey;
use sandbar_redact::{Privacy, PrivacyPolicy, Redactor, SharedRedactor, Sink, SinkRedactor};

struct Options {
    mb: usize,
    seed: u64,
    runs: usize,
    corpora: Vec<String>,
    secrets: usize,
    kinds: bool,
    personal: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        mb: 20,
        seed: 42,
        runs: 3,
        corpora: ["prose", "logs", "json", "code"].map(String::from).to_vec(),
        secrets: 0,
        kinds: false,
        personal: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--mb" => options.mb = number(value()?)? as usize,
            "--seed" => options.seed = number(value()?)?,
            "--runs" => options.runs = (number(value()?)? as usize).max(1),
            "--secrets" => options.secrets = number(value()?)? as usize,
            "--kinds" => options.kinds = true,
            "--personal" => options.personal = true,
            "--corpus" => {
                options.corpora = value()?.split(',').map(str::to_owned).collect();
            }
            "-h" | "--help" => {
                return Err(
                    "usage: redact-throughput [--mb N] [--seed N] [--runs N] [--corpus prose,logs,json,code] [--secrets N] [--kinds] [--personal]"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn main() {
    let options = match options() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut builder = Redactor::builder();
    let mut rng = Rng::new(options.seed ^ 0x05ec_7e75);
    for i in 0..options.secrets {
        let value = format!("vault-{i}-{}", rng.string(ALNUM, 24));
        builder = match builder.secret(&format!("vault_{i}"), &value) {
            Ok(b) => b,
            Err(e) => panic!("bench secret refused: {e}"),
        };
    }
    let redactor: SinkRedactor = if options.personal {
        let shared = SharedRedactor::new(builder.build());
        shared.set_privacy(Some(Privacy::new(
            MaskKey::from_bytes([42; 32]),
            PrivacyPolicy::default(),
        )));
        shared.for_sink(Sink::Store).snapshot()
    } else {
        SinkRedactor::secrets_only(Arc::new(builder.build()), Sink::Store)
    };
    // Warm the rule set (parsed and compiled once per process) outside the
    // measurements, and report what that costs.
    let _ = redactor.redact_str("warm up");
    println!(
        "redactor ready in {:.1} ms (built-in rules, {} known secrets{}); one thread; MB/s per {} second",
        started.elapsed().as_secs_f64() * 1e3,
        options.secrets,
        if options.personal {
            ", personal data pseudonymized"
        } else {
            ""
        },
        if thread_cpu_ns().is_some() {
            "CPU"
        } else {
            "wall-clock"
        },
    );
    println!();
    println!(
        "| corpus | MB | records | avg record | findings | per record MB/s | 1 MiB chunks MB/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for name in &options.corpora {
        let target = options.mb * 1_000_000;
        let mut rng = Rng::new(options.seed.wrapping_add(name.len() as u64 * 7919));
        let records = match name.as_str() {
            "prose" => generate(target, || prose_paragraph(&mut rng)),
            "logs" => generate(target, || log_line(&mut rng)),
            "json" => generate(target, || json_document(&mut rng)),
            "code" => generate(target, || source_file(&mut rng)),
            other => {
                eprintln!("unknown corpus {other}");
                std::process::exit(2);
            }
        };
        let bytes: usize = records.iter().map(String::len).sum();
        let chunks = chunk(&records, 1 << 20);
        let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
        for r in &records {
            for f in redactor.secrets().find(r) {
                *by_kind.entry(f.kind).or_default() += 1;
            }
        }
        let findings: usize = by_kind.values().sum();
        if options.kinds {
            let list: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("{name}: {}", list.join(", "));
        }
        let per_record = median(options.runs, || {
            let t = Clock::start();
            let mut changed = 0usize;
            for r in &records {
                if let std::borrow::Cow::Owned(_) = redactor.redact_str(r) {
                    changed += 1;
                }
            }
            std::hint::black_box(changed);
            t.elapsed()
        });
        let chunked = median(options.runs, || {
            let t = Clock::start();
            for c in &chunks {
                std::hint::black_box(redactor.redact_str(c));
            }
            t.elapsed()
        });
        let mbps = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
        println!(
            "| {name} | {:.1} | {} | {} B | {findings} | {:.0} | {:.0} |",
            bytes as f64 / 1e6,
            records.len(),
            bytes / records.len().max(1),
            mbps(per_record),
            mbps(chunked),
        );
    }
}

fn generate(target: usize, mut next: impl FnMut() -> String) -> Vec<String> {
    let mut records = Vec::new();
    let mut total = 0;
    while total < target {
        let r = next();
        total += r.len();
        records.push(r);
    }
    records
}

/// The records joined with newlines into chunks of about `size` bytes.
fn chunk(records: &[String], size: usize) -> Vec<String> {
    let mut chunks = vec![String::new()];
    for r in records {
        let last = chunks.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + r.len() > size {
            chunks.push(String::new());
        }
        let last = chunks.last_mut().expect("never empty");
        last.push_str(r);
        last.push('\n');
    }
    chunks
}

/// CPU time of the current thread where Linux reports it, else wall time.
enum Clock {
    Cpu(u64),
    Wall(Instant),
}

impl Clock {
    fn start() -> Clock {
        match thread_cpu_ns() {
            Some(ns) => Clock::Cpu(ns),
            None => Clock::Wall(Instant::now()),
        }
    }

    fn elapsed(&self) -> Duration {
        match self {
            Clock::Cpu(start) => {
                Duration::from_nanos(thread_cpu_ns().unwrap_or(*start).saturating_sub(*start))
            }
            Clock::Wall(start) => start.elapsed(),
        }
    }
}

/// Nanoseconds this thread has run on a CPU: the first field of
/// `/proc/thread-self/schedstat`.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut samples: Vec<Duration> = (0..runs).map(|_| f()).collect();
    samples.sort();
    samples[samples.len() / 2]
}

// ---------------------------------------------------------------------------
// Randomness: SplitMix64, so every corpus is the same for the same seed.

struct Rng(u64);

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &str = "0123456789abcdef";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability 1 in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn string(&mut self, alphabet: &str, len: usize) -> String {
        let chars = alphabet.as_bytes();
        (0..len)
            .map(|_| char::from(chars[self.below(chars.len())]))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Planted credentials: a mix of service tokens, private keys, JWTs, URLs
// with passwords and assignments.

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                0xedb8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A token in GitHub's and npm's format: 30 base62 characters and their
/// CRC-32 in 6 base62 digits.
fn checksummed(prefix: &str, rng: &mut Rng) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let random = rng.string(ALNUM, 30);
    let mut n = crc32(random.as_bytes());
    let mut check = [b'0'; 6];
    for slot in check.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    format!("{prefix}{random}{}", String::from_utf8_lossy(&check))
}

fn jwt(rng: &mut Rng) -> String {
    // {"alg":"RS256","typ":"JWT"} and a small payload, base64url.
    format!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIx{}In0.{}",
        rng.string(B64URL, 40),
        rng.string(B64URL, 86)
    )
}

fn credential(rng: &mut Rng) -> String {
    match rng.below(16) {
        0 => checksummed("ghp_", rng),
        1 => format!("AKIA{}", rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
        2 => format!("sk_live_{}", rng.string(ALNUM, 24)),
        3 => format!(
            "xoxb-{}-{}-{}",
            rng.below(1 << 30),
            rng.below(1 << 30),
            rng.string(ALNUM, 24)
        ),
        4 => format!("sk-proj-{}", rng.string(B64URL, 120)),
        5 => format!("AIza{}", rng.string(B64URL, 35)),
        6 => jwt(rng),
        7 => format!("glpat-{}", rng.string(B64URL, 20)),
        8 => format!("SG.{}.{}", rng.string(B64URL, 22), rng.string(B64URL, 43)),
        9 => format!(
            "hf_{}",
            rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34)
        ),
        10 => format!("dop_v1_{}", rng.string(HEX, 64)),
        11 => format!("sk-ant-api03-{}AA", rng.string(B64URL, 93)),
        12 => checksummed("npm_", rng),
        13 => format!("hvs.{}", rng.string(B64URL, 90)),
        14 => format!("shpat_{}", rng.string(HEX, 32)),
        _ => format!("xai-{}", rng.string(ALNUM, 80)),
    }
}

fn private_key(rng: &mut Rng) -> String {
    let mut body = String::new();
    for _ in 0..12 {
        body.push_str(&rng.string(B64, 64));
        body.push('\n');
    }
    format!("-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----")
}

// ---------------------------------------------------------------------------
// Prose.

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "team",
    "agent",
    "model",
    "system",
    "request",
    "access",
    "account",
    "basic",
    "bearer",
    "task",
    "ask",
    "risk",
    "desk",
    "path",
    "pattern",
    "update",
    "secretary",
    "tokenizer",
    "passage",
    "keyboard",
    "monkey",
    "secret",
    "token",
    "password",
    "key",
    "keys",
    "session",
    "credential",
    "policy",
    "review",
    "deployment",
    "service",
    "customer",
    "order",
    "refund",
    "payment",
    "invoice",
    "report",
    "quarterly",
    "revenue",
    "growth",
    "market",
    "product",
    "design",
    "research",
    "evidence",
    "analysis",
    "history",
    "government",
    "national",
    "public",
    "private",
    "network",
    "cloud",
    "database",
    "server",
    "client",
    "protocol",
    "interface",
    "release",
    "version",
    "feature",
    "performance",
    "latency",
    "throughput",
    "reliability",
    "incident",
    "response",
    "security",
    "engineering",
    "production",
    "staging",
    "environment",
    "variable",
    "configuration",
    "settings",
    "dose",
    "patient",
    "doctor",
    "medicine",
    "river",
    "mountain",
    "village",
    "winter",
    "summer",
    "morning",
    "evening",
    "children",
    "family",
    "friends",
    "music",
    "language",
    "culture",
    "science",
    "history",
    "university",
    "student",
    "teacher",
    "school",
];

fn sentence(rng: &mut Rng) -> String {
    let len = 6 + rng.below(18);
    let mut s = String::new();
    for i in 0..len {
        let w = rng.pick(WORDS);
        if i == 0 {
            let mut c = w.chars();
            if let Some(first) = c.next() {
                s.extend(first.to_uppercase());
                s.push_str(c.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
        if i + 1 < len && rng.one_in(12) {
            s.push(',');
        }
    }
    s.push_str(rng.pick(&[".", ".", ".", "?", "!"]));
    s
}

fn prose_paragraph(rng: &mut Rng) -> String {
    let mut p = String::new();
    for i in 0..(3 + rng.below(6)) {
        if i > 0 {
            p.push(' ');
        }
        p.push_str(&sentence(rng));
        // Numbers, versions, URLs and near misses, as articles and chats have.
        match rng.below(40) {
            0 => p.push_str(&format!(
                " See https://docs.example.com/guide/{}.",
                rng.below(500)
            )),
            1 => p.push_str(&format!(
                " Version {}.{}.{} shipped.",
                rng.below(9),
                rng.below(30),
                rng.below(99)
            )),
            2 => p.push_str(" Reset your password from the account page."),
            3 => p.push_str(" The token count was 4096 and the key was rotated."),
            4 => p.push_str(&format!(
                " It cost ${}.{:02} in {}.",
                rng.below(900),
                rng.below(100),
                1990 + rng.below(35)
            )),
            _ => {}
        }
    }
    // About one paragraph in 60 (one per 50 KB or so) carries a credential.
    if rng.one_in(60) {
        p.push_str(&format!(" Use the key {} to sign in.", credential(rng)));
    }
    p
}

// ---------------------------------------------------------------------------
// Logs.

fn ipv4(rng: &mut Rng) -> String {
    format!(
        "10.{}.{}.{}",
        rng.below(256),
        rng.below(256),
        rng.below(256)
    )
}

fn uuid(rng: &mut Rng) -> String {
    let h = rng.string(HEX, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}

fn timestamp(rng: &mut Rng) -> String {
    format!(
        "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

fn log_line(rng: &mut Rng) -> String {
    let ts = timestamp(rng);
    let mut line = match rng.below(5) {
        0 => format!(
            "{} - - [27/Nov/2026:{:02}:{:02}:{:02} +0000] \"{} /api/v2/{}/{}?page={} HTTP/1.1\" {} {} \"https://app.example.com/{}\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36\"",
            ipv4(rng),
            rng.below(24),
            rng.below(60),
            rng.below(60),
            rng.pick(&["GET", "GET", "POST", "PUT", "DELETE"]),
            rng.pick(&["orders", "users", "items", "sessions", "reports"]),
            rng.below(100_000),
            rng.below(20),
            rng.pick(&["200", "200", "200", "201", "204", "304", "404", "500"]),
            rng.below(100_000),
            rng.pick(&["dashboard", "settings", "checkout", "search"]),
        ),
        1 => format!(
            "{ts} INFO sandbar_engine::run: call handled run_id={} tool={} request_id={} duration_ms={} status=ok",
            uuid(rng),
            rng.pick(&["lookup_order", "issue_refund", "send_email", "search_docs"]),
            rng.below(1_000_000),
            rng.below(900),
        ),
        2 => format!(
            "{ts} DEBUG hyper::client::pool: reuse idle connection for (\"https\", api.example.com) conn_id={} elapsed={}.{}ms",
            rng.below(10_000),
            rng.below(100),
            rng.below(1000),
        ),
        3 => format!(
            "{ts} WARN worker[{}]: retrying job {} after error: connection reset by peer (attempt {}/5), token_count={} max_tokens=4096",
            rng.below(16),
            uuid(rng),
            1 + rng.below(4),
            rng.below(4096),
        ),
        _ => format!(
            "{ts} INFO app.auth: user {}@example.com logged in from {} session={} sha={}",
            rng.string("abcdefghijklmnopqrstuvwxyz", 8),
            ipv4(rng),
            rng.string(HEX, 16),
            rng.string(HEX, 40),
        ),
    };
    // About one line in 35 (one per 5 KB or so) carries a credential.
    if rng.one_in(35) {
        let planted = match rng.below(5) {
            0 => format!(
                " headers={{\"authorization\": \"Bearer {}\"}}",
                credential(rng)
            ),
            1 => format!(" password={}", rng.string(ALNUM, 14)),
            2 => format!(
                " db=postgres://app:{}@db.internal:5432/app",
                rng.string(ALNUM, 16)
            ),
            3 => format!(" api_key={}", credential(rng)),
            _ => format!(" upstream token {}", credential(rng)),
        };
        line.push_str(&planted);
    }
    line
}

// ---------------------------------------------------------------------------
// JSON documents: MCP calls and results, and records.

fn json_string(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

fn json_document(rng: &mut Rng) -> String {
    let mut items = Vec::new();
    for _ in 0..(2 + rng.below(8)) {
        let note_words = 4 + rng.below(20);
        let mut fields = vec![
            format!("\"id\":\"o{}\"", rng.below(100_000)),
            format!("\"customer\":\"{}\"", uuid(rng)),
            format!("\"total\":{}.{:02}", rng.below(2000), rng.below(100)),
            format!(
                "\"status\":\"{}\"",
                rng.pick(&["delivered", "pending", "refunded", "shipped"])
            ),
            format!("\"note\":\"{}\"", json_string(rng, note_words)),
            format!("\"updated_at\":\"{}\"", timestamp(rng)),
            format!("\"tags\":[\"{}\",\"{}\"]", rng.pick(WORDS), rng.pick(WORDS)),
        ];
        if rng.one_in(4) {
            fields.push(format!(
                "\"usage\":{{\"prompt_tokens\":{},\"completion_tokens\":{}}}",
                rng.below(4000),
                rng.below(800)
            ));
        }
        if rng.one_in(5) {
            fields.push(format!("\"sha256\":\"{}\"", rng.string(HEX, 64)));
        }
        // About one item in 16 (one per 4 KB or so) carries a credential.
        if rng.one_in(16) {
            fields.push(match rng.below(4) {
                0 => format!("\"api_key\":\"{}\"", credential(rng)),
                1 => format!("\"password\":\"{}\"", rng.string(ALNUM, 12)),
                2 => format!("\"id_token\":\"{}\"", jwt(rng)),
                _ => format!("\"config\":\"{}\"", private_key(rng).replace('\n', "\\n")),
            });
        }
        items.push(format!("{{{}}}", fields.join(",")));
    }
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"{}\"}}],\"structuredContent\":{{\"orders\":[{}]}},\"isError\":false}}}}",
        rng.below(1_000_000),
        json_string(rng, 10),
        items.join(",")
    )
}

// ---------------------------------------------------------------------------
// Source code: Rust, Python, TypeScript and YAML configuration.

const IDENTS: &[&str] = &[
    "order",
    "customer",
    "request",
    "response",
    "handler",
    "config",
    "client",
    "session",
    "token_count",
    "max_tokens",
    "password_hash",
    "secret_name",
    "api_key_id",
    "access_level",
    "key_path",
    "path",
    "pattern",
    "update",
    "buffer",
    "index",
    "value",
    "result",
    "error",
    "items",
    "total",
    "status",
    "user",
    "account",
    "payload",
    "headers",
    "timeout",
    "retry",
];

fn ident(rng: &mut Rng) -> &'static str {
    IDENTS[rng.below(IDENTS.len())]
}

fn rust_function(rng: &mut Rng) -> String {
    let name = ident(rng);
    format!(
        "/// Handles the {name} of a {} and returns the {}.\npub fn handle_{name}(input: &{}, ctx: &mut Context) -> Result<{}, Error> {{\n    let {} = input.{}.clone();\n    if {}.len() > {} {{\n        return Err(Error::TooLong {{ len: {}.len() }});\n    }}\n    let path = format!(\"/v1/{}/{{}}\", {});\n    ctx.metrics.increment(\"{}\", 1);\n    Ok({}::new(path, {}))\n}}\n\n",
        ident(rng),
        ident(rng),
        "Request",
        "Response",
        ident(rng),
        ident(rng),
        name,
        rng.below(4096),
        name,
        ident(rng),
        name,
        ident(rng),
        "Response",
        name,
    )
}

fn python_function(rng: &mut Rng) -> String {
    let name = ident(rng);
    format!(
        "def {name}_{}(self, {}: dict, timeout: float = {}.0) -> Optional[str]:\n    \"\"\"Return the {} for the given {}.\"\"\"\n    token = os.environ[\"API_TOKEN\"]\n    password = os.getenv(\"DB_PASSWORD\")\n    url = f\"https://api.example.com/v2/{{self.{}}}\"\n    for item in {}.get(\"items\", []):\n        if item[\"status\"] == \"{}\":\n            self.log.info(\"skipping %s\", item[\"id\"])\n            continue\n    return requests.get(url, headers={{\"Authorization\": f\"Bearer {{token}}\"}}, timeout=timeout).text\n\n",
        rng.below(100),
        ident(rng),
        rng.below(60),
        ident(rng),
        ident(rng),
        ident(rng),
        ident(rng),
        rng.pick(&["pending", "done", "failed"]),
    )
}

fn typescript_function(rng: &mut Rng) -> String {
    let name = ident(rng);
    format!(
        "export async function fetch{}({}: string, options: RequestInit = {{}}): Promise<{}[]> {{\n  const apiKey = process.env.API_KEY;\n  const res = await fetch(`${{BASE_URL}}/v1/{}/${{{}}}`, {{ ...options, headers: {{ 'x-api-key': apiKey ?? '' }} }});\n  if (!res.ok) throw new Error(`request failed: ${{res.status}}`);\n  const body = await res.json();\n  return body.{}.map((x: any) => ({{ id: x.id, total: Number(x.total) * {} }}));\n}}\n\n",
        name.replace('_', ""),
        ident(rng),
        "Order",
        ident(rng),
        name,
        ident(rng),
        rng.below(100),
    )
}

fn yaml_config(rng: &mut Rng) -> String {
    format!(
        "service:\n  name: {}\n  replicas: {}\n  image: registry.example.com/{}:{}.{}.{}\n  env:\n    - name: DB_PASSWORD\n      valueFrom:\n        secretKeyRef: {{name: db, key: password}}\n    - name: LOG_LEVEL\n      value: info\n  database:\n    host: db.internal\n    user: app\n    password: ${{DB_PASSWORD}}\n    pool_size: {}\n\n",
        ident(rng),
        1 + rng.below(8),
        ident(rng),
        rng.below(5),
        rng.below(20),
        rng.below(50),
        rng.below(64),
    )
}

fn source_file(rng: &mut Rng) -> String {
    let mut file = String::new();
    let target = 4_000 + rng.below(12_000);
    let kind = rng.below(4);
    while file.len() < target {
        file.push_str(&match kind {
            0 => rust_function(rng),
            1 => python_function(rng),
            2 => typescript_function(rng),
            _ => yaml_config(rng),
        });
        // About one block in 40 (one per 16 KB or so) hard-codes a
        // credential, as leaked configuration and test fixtures do.
        if rng.one_in(40) {
            file.push_str(&match rng.below(4) {
                0 => format!("AWS_SECRET_ACCESS_KEY = \"{}\"\n", rng.string(B64, 40)),
                1 => format!("const STRIPE_KEY = \"{}\";\n", credential(rng)),
                2 => format!("{}\n", private_key(rng)),
                _ => format!("    password: \"{}\"\n", rng.string(ALNUM, 16)),
            });
        }
    }
    file
}
