//! Measures detection throughput on one core: about 20 MB each of
//! generated prose, logs, JSON and source code with personal data sprinkled
//! in, scanned with `Detector::find`, and the JSON also value by value with
//! `find_in_field`. Run with
//! `cargo run --release -p sandbar-mask --example throughput [MB] [prose|logs|json|code]`.

#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use sandbar_mask::Detector;

/// A small deterministic generator (xorshift64*), so every run scans the
/// same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "the",
    "customer",
    "order",
    "was",
    "shipped",
    "yesterday",
    "and",
    "our",
    "team",
    "will",
    "follow",
    "up",
    "with",
    "a",
    "refund",
    "if",
    "needed",
    "please",
    "note",
    "that",
    "account",
    "balance",
    "is",
    "updated",
    "every",
    "night",
    "user",
    "name",
    "contact",
    "address",
    "phone",
    "meeting",
    "agenda",
    "project",
    "deadline",
    "report",
    "quarterly",
    "results",
    "improved",
    "service",
    "support",
    "ticket",
    "resolved",
    "after",
    "review",
    "by",
    "manager",
    "owner",
    "Monday",
    "London",
    "Berlin",
    "Paris",
    "version",
    "release",
    "notes",
    "for",
    "in",
    "on",
    "of",
    "to",
    "from",
    "this",
    "that",
    "it",
    "be",
    "are",
    "have",
    "has",
    "been",
    "were",
];

const PII: &[&str] = &[
    "ada.lovelace@example.com",
    "(415) 555-0132",
    "+44 20 7946 0958",
    "4539 1488 0343 6467",
    "DE89 3704 0044 0532 0130 00",
    "SSN 123-45-6789",
    "192.168.1.20",
    "2001:db8::8a2e:370:7334",
    "00:1A:2B:3C:4D:5E",
    "born on 3 February 1990",
    "Dear Ada Lovelace,",
    "lives at 221B Baker Street, London NW1 6XE",
    "Dr. Grace Hopper",
];

fn prose(rng: &mut Rng, size: usize) -> String {
    let mut s = String::with_capacity(size + 200);
    while s.len() < size {
        let n = 8 + rng.below(12);
        for k in 0..n {
            let w = rng.pick(WORDS);
            if k == 0 {
                let mut c = w.chars();
                if let Some(f) = c.next() {
                    s.extend(f.to_uppercase());
                    s.push_str(c.as_str());
                }
            } else {
                s.push(' ');
                s.push_str(w);
            }
            if rng.below(120) == 0 {
                s.push(' ');
                s.push_str(rng.pick(PII));
            }
        }
        s.push_str(if rng.below(6) == 0 { ".\n\n" } else { ". " });
    }
    s
}

fn logs(rng: &mut Rng, size: usize) -> String {
    let mut s = String::with_capacity(size + 300);
    let levels = ["INFO", "WARN", "DEBUG", "ERROR"];
    let paths = [
        "/api/v1/orders",
        "/api/v1/users/42",
        "/healthz",
        "/static/app.js",
        "/login",
    ];
    while s.len() < size {
        let t = rng.below(86_400);
        s.push_str(&format!(
            "2024-05-{:02}T{:02}:{:02}:{:02}.{:03}Z {} [req-{:016x}] {} {} {} {}ms ip=10.{}.{}.{} user_id={} ",
            1 + rng.below(28), t / 3600, (t / 60) % 60, t % 60, rng.below(1000),
            rng.pick(&levels), rng.next(), rng.pick(&["GET", "POST", "PUT"]), rng.pick(&paths),
            rng.pick(&["200", "201", "404", "500"]), rng.below(900),
            rng.below(256), rng.below(256), rng.below(256), rng.below(100_000),
        ));
        if rng.below(15) == 0 {
            s.push_str("email=");
            s.push_str(rng.pick(&["ada@example.com", "grace.hopper@navy.example"]));
            s.push_str(" phone=+1-415-555-0132");
        } else {
            s.push_str(&format!(
                "trace_id={:032x} span={:08x}",
                u128::from(rng.next()) << 64 | u128::from(rng.next()),
                rng.next() as u32
            ));
        }
        s.push('\n');
    }
    s
}

fn json(rng: &mut Rng, size: usize) -> (String, Vec<(String, String)>) {
    let mut s = String::with_capacity(size + 400);
    let mut fields = Vec::new();
    s.push('[');
    let mut id = 0u64;
    while s.len() < size {
        id += 1;
        let record = [
            ("id", format!("{id}")),
            (
                "uuid",
                format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    rng.next() as u32,
                    rng.below(65536),
                    rng.below(4096),
                    rng.below(4096),
                    rng.next() & 0xffff_ffff_ffff
                ),
            ),
            (
                "first_name",
                rng.pick(&["Ada", "Grace", "Alan", "Ngozi", "José"])
                    .to_string(),
            ),
            (
                "last_name",
                rng.pick(&["Lovelace", "Hopper", "Turing", "Okafor", "Núñez"])
                    .to_string(),
            ),
            ("email", "ada.lovelace@example.com".to_string()),
            ("phone", "+1 415 555 0132".to_string()),
            (
                "dob",
                format!(
                    "19{}-0{}-1{}",
                    50 + rng.below(50),
                    1 + rng.below(9),
                    rng.below(10)
                ),
            ),
            ("address", "221B Baker Street, London NW1 6XE".to_string()),
            (
                "product_name",
                rng.pick(&["Widget Pro", "Gadget Max", "Sprocket"])
                    .to_string(),
            ),
            (
                "status",
                rng.pick(&["active", "pending", "closed"]).to_string(),
            ),
            ("created_at", "2024-05-01T12:30:45Z".to_string()),
            (
                "notes",
                "Customer asked for a callback about the invoice.".to_string(),
            ),
        ];
        s.push_str(if id == 1 { "\n  {" } else { ",\n  {" });
        for (k, (key, value)) in record.iter().enumerate() {
            if k > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("\"{key}\": \"{value}\""));
            fields.push(((*key).to_string(), value.clone()));
        }
        s.push('}');
    }
    s.push_str("\n]\n");
    (s, fields)
}

fn code(rng: &mut Rng, size: usize) -> String {
    let lines = [
        "    let mut buffer = Vec::with_capacity(1024);",
        "    for (index, item) in items.iter().enumerate() {",
        "        if item.len() > MAX_LEN { return Err(Error::TooLong(index)); }",
        "    }",
        "fn parse_header(input: &[u8]) -> Result<Header, ParseError> {",
        "    // Parse the version (1.2.3) and the flags.",
        "    let version = u32::from_be_bytes([input[0], input[1], input[2], input[3]]);",
        "    assert_eq!(hash, \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\");",
        "    const TIMEOUT_MS: u64 = 30_000;",
        "    let user = User { name: name.to_string(), email: email.clone(), id: 42 };",
        "    map.insert(\"key\".into(), std::time::Duration::from_secs(5));",
        "}",
        "",
        "    let addr: SocketAddr = \"127.0.0.1:8080\".parse()?;",
        "    // See https://example.com/docs/v2/api#section-3.1 for details.",
    ];
    let mut s = String::with_capacity(size + 200);
    while s.len() < size {
        s.push_str(rng.pick(&lines));
        s.push('\n');
    }
    s
}

fn measure(label: &str, bytes: usize, mut run: impl FnMut() -> usize) {
    // One warm-up run, then the best of three.
    black_box(run());
    let mut best = f64::INFINITY;
    let mut found = 0;
    for _ in 0..3 {
        let start = Instant::now();
        found = black_box(run());
        best = best.min(start.elapsed().as_secs_f64());
    }
    let mb = bytes as f64 / 1_000_000.0;
    println!(
        "{label:<24} {mb:>7.1} MB {:>9.1} MB/s {found:>9} findings",
        mb / best
    );
}

fn main() {
    let size_mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let size = size_mb * 1_000_000;
    let detector = Detector::new();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let prose = prose(&mut rng, size);
    let logs = logs(&mut rng, size);
    let (json, fields) = json(&mut rng, size);
    let code = code(&mut rng, size);
    let only = std::env::args().nth(2).unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only == name;
    if wanted("prose") {
        measure("prose", prose.len(), || detector.find(&prose).len());
    }
    if wanted("logs") {
        measure("logs", logs.len(), || detector.find(&logs).len());
    }
    if wanted("json") {
        measure("json (as text)", json.len(), || detector.find(&json).len());
        let field_bytes: usize = fields.iter().map(|(_, v)| v.len()).sum();
        measure("json (field by field)", field_bytes, || {
            fields
                .iter()
                .map(|(k, v)| detector.find_in_field(Some(k), v).len())
                .sum()
        });
    }
    if wanted("code") {
        measure("code", code.len(), || detector.find(&code).len());
    }
}
