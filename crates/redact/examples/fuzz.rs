//! A fuzzer for the redactor that runs on stable Rust:
//!
//! ```text
//! cargo run --release -p sandbar-redact --example fuzz -- [ITERATIONS] [SEED]
//! ```
//!
//! It grows inputs from a seed corpus of credential shapes, placeholders,
//! encodings and JSON fragments by random mutation (byte flips, inserts,
//! splices, repeats, truncation) and checks, for every input, that
//! redaction does not panic, is idempotent (`redact(redact(x)) ==
//! redact(x)`), leaves no registered secret in any of its encodings, and
//! takes time proportional to the input (the nanoseconds per byte of every
//! input over 4 KiB are compared with the median; the slowest are timed
//! again first, since the first text to trigger a rule also pays for
//! compiling its regex). It exits 1 with the
//! failing input (for the time check, the slowest one) written to
//! `fuzz-failure.txt` when a check fails. The
//! generator is a seeded xorshift, so a run is reproducible from its seed.

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use base64::Engine as _;
use sandbar_redact::Redactor;

const SECRET: &str = "fz-Sandbar-Fuzz-Secret-91c7e2";

const CORPUS: &[&str] = &[
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "AKIAZ7Q3XK2M4PLW6RT5",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "sk_live_51HsandbarDEMOkey000000000000000000",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "postgres://admin:hunter2hunter2@db.internal:5432/app",
    "password=\"correct-horse-battery-staple-42\"",
    "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
    "[REDACTED:github_token]",
    "[REDACTED:secret:fuzz]",
    "{\"api_key\": \"",
    "\\\"token\\\": \\\"",
    "%22secret%22%3A%22",
    "\u{1b}[32mpassword\u{1b}[0m=",
    "=",
    ":",
    "\"",
    "\\",
    "é日本",
    " ",
    "\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn encodings(secret: &str) -> Vec<String> {
    let standard = base64::engine::general_purpose::STANDARD.encode(secret);
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    vec![secret.to_owned(), standard, hex]
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pieces: &[Vec<u8>]) {
    match rng.below(7) {
        0 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] ^= 1 << rng.below(8);
        }
        1 => {
            let at = rng.below(input.len() + 1);
            input.insert(at, rng.below(256) as u8);
        }
        2 | 3 => {
            let piece = &pieces[rng.below(pieces.len())];
            let at = rng.below(input.len() + 1);
            input.splice(at..at, piece.iter().copied());
        }
        4 if !input.is_empty() => {
            let start = rng.below(input.len());
            let end = (start + 1 + rng.below(64)).min(input.len());
            let copy = input[start..end].to_vec();
            for _ in 0..1 + rng.below(64) {
                input.extend_from_slice(&copy);
            }
        }
        5 if !input.is_empty() => {
            let keep = rng.below(input.len());
            input.truncate(keep);
        }
        _ => input.extend_from_slice(&pieces[rng.below(pieces.len())]),
    }
    input.truncate(256 * 1024);
}

/// How many of the slowest inputs are timed again at the end.
const SLOWEST_KEPT: usize = 8;

/// The least nanoseconds per byte of three more redactions of `text`.
fn retime(redactor: &Redactor, text: &str) -> f64 {
    (0..3)
        .map(|_| {
            let timer = Instant::now();
            let _ = redactor.redact_str(text);
            timer.elapsed().as_nanos() as f64 / text.len().max(1) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn fail(what: &str, input: &str) -> ! {
    let _ = std::fs::write("fuzz-failure.txt", input);
    eprintln!("fuzz: {what}; the input is in fuzz-failure.txt");
    std::process::exit(1);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let seed: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0x5a5d_ba12);
    let redactor = match Redactor::builder().secret("fuzz", SECRET) {
        Ok(builder) => builder.build(),
        Err(e) => {
            eprintln!("fuzz: cannot register the secret: {e}");
            std::process::exit(2);
        }
    };
    let mut pieces: Vec<Vec<u8>> = CORPUS.iter().map(|p| p.as_bytes().to_vec()).collect();
    pieces.extend(encodings(SECRET).into_iter().map(String::into_bytes));
    let forbidden = encodings(SECRET);
    let mut rng = Rng(seed | 1);
    let mut input: Vec<u8> = Vec::new();
    let mut rates: Vec<f64> = Vec::new();
    // The inputs that cost the most per byte, timed again at the end: the
    // first text to trigger a rule pays for compiling its regex.
    let mut slowest: Vec<(f64, String)> = Vec::new();
    let started = Instant::now();
    for i in 0..iterations {
        if rng.below(64) == 0 {
            input.clear();
        }
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input, &pieces);
        }
        let text = String::from_utf8_lossy(&input).into_owned();
        let timer = Instant::now();
        let once = match catch_unwind(AssertUnwindSafe(|| redactor.redact_str(&text).into_owned()))
        {
            Ok(out) => out,
            Err(_) => fail(&format!("iteration {i} panicked"), &text),
        };
        let elapsed = timer.elapsed();
        if text.len() >= 4096 {
            let rate = elapsed.as_nanos() as f64 / text.len() as f64;
            rates.push(rate);
            if slowest.len() < SLOWEST_KEPT || rate > slowest[SLOWEST_KEPT - 1].0 {
                slowest.push((rate, text.clone()));
                slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
                slowest.truncate(SLOWEST_KEPT);
            }
        }
        let twice = redactor.redact_str(&once);
        if twice != once {
            fail(
                &format!("iteration {i}: redacting twice changed the text"),
                &text,
            );
        }
        for form in &forbidden {
            if once.contains(form.as_str()) {
                fail(&format!("iteration {i}: a secret form survived"), &text);
            }
        }
    }
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    let (worst, worst_input) = slowest
        .into_iter()
        .map(|(_, text)| (retime(&redactor, &text), text))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "fuzz: {iterations} inputs (seed {seed}) in {:.1}s; ns/byte on inputs over 4 KiB: median {median:.1}, worst {worst:.1} when timed again ({} inputs)",
        started.elapsed().as_secs_f64(),
        rates.len()
    );
    // Linear time: no input may cost far more per byte than the typical one.
    // The bound is generous because a shared machine pauses processes.
    if median > 0.0 && worst > median * 200.0 + 2_000.0 {
        fail(
            &format!("an input took {worst:.1} ns/byte against a median of {median:.1}"),
            &worst_input,
        );
    }
}
