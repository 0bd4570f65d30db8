//! Tests of `RedactingMakeWriter`: a real `tracing` subscriber writing into
//! an in-memory buffer must never let a registered secret or a credential
//! through, whether it sits in the message, a field or a span.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use crate::test_support::{ALNUM, fake};
use crate::{RedactingMakeWriter, RedactingWriter, Redactor, SharedRedactor, Sink, SinkRedactor};

/// An in-memory sink shared between the test and the subscriber.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn log_with(redactor: SharedRedactor, ansi: bool, log: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let sink = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(RedactingMakeWriter::new(move || sink.clone(), redactor))
        .with_ansi(ansi)
        .finish();
    tracing::subscriber::with_default(subscriber, log);
    buffer.text()
}

#[test]
fn log_lines_never_carry_secrets() {
    let secret = "vault-db-password-9f8e";
    let token = fake("ghp_", ALNUM, 36);
    let redactor = SharedRedactor::new(
        Redactor::builder()
            .secret("db_password", secret)
            .expect("valid")
            .build(),
    );
    for ansi in [false, true] {
        let output = log_with(redactor.clone(), ansi, || {
            let span = tracing::info_span!("call", credential = %secret);
            let _entered = span.enter();
            tracing::info!(password = secret, github = %token, "connecting with {secret} and {token}");
            tracing::warn!(debug_field = ?secret, "quoted \"{}\"", secret);
            tracing::error!("header Authorization: Bearer {token}");
        });
        assert!(
            !output.contains(secret),
            "secret leaked (ansi {ansi}):\n{output}"
        );
        assert!(
            !output.contains(&token),
            "token leaked (ansi {ansi}):\n{output}"
        );
        assert!(output.contains("[REDACTED:secret:db_password]"), "{output}");
        assert!(output.contains("[REDACTED:github_token]"), "{output}");
        assert_eq!(output.lines().count(), 3, "one line per event:\n{output}");
    }
}

#[test]
fn debug_escaped_secrets_in_fields_are_redacted() {
    // tracing prints `&str` fields with Debug, which escapes quotes and
    // backslashes: the escaped spelling must be caught too.
    let secret = "we\"ird\\pass\nword";
    let redactor = SharedRedactor::new(
        Redactor::builder()
            .secret("odd", secret)
            .expect("valid")
            .build(),
    );
    let output = log_with(redactor, false, || {
        tracing::info!(value = secret, "plain {secret}");
    });
    let debug = format!("{secret:?}");
    assert!(!output.contains(&debug[1..debug.len() - 1]), "{output}");
    assert!(!output.contains(secret), "{output}");
}

#[test]
fn secrets_added_later_reach_existing_subscribers() {
    let redactor = SharedRedactor::new(Redactor::new());
    let buffer = Buffer::default();
    let sink = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(RedactingMakeWriter::new(
            move || sink.clone(),
            redactor.clone(),
        ))
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before: late-secret-value");
        redactor
            .add_secrets([("late", "late-secret-value")])
            .expect("valid");
        tracing::info!("after: late-secret-value");
    });
    let output = buffer.text();
    assert!(output.contains("before: late-secret-value"), "{output}");
    assert!(output.contains("after: [REDACTED:secret:late]"), "{output}");
}

#[test]
fn writes_split_across_calls_are_redacted_as_one() {
    let redactor = SinkRedactor::secrets_only(
        Arc::new(
            Redactor::builder()
                .without_default_patterns()
                .secret("s", "split-me-secret")
                .expect("valid")
                .build(),
        ),
        Sink::Logs,
    );
    let buffer = Buffer::default();
    {
        let mut writer = RedactingWriter::new(buffer.clone(), redactor.clone());
        for piece in ["x split-", "me-", "secret y\n"] {
            writer.write_all(piece.as_bytes()).expect("buffered");
        }
    }
    assert_eq!(buffer.text(), "x [REDACTED:secret:s] y\n");

    let mut writer = RedactingWriter::new(buffer.clone(), redactor);
    writer.write_all(b"again split-me-").expect("buffered");
    writer.write_all(b"secret\n").expect("buffered");
    writer.flush().expect("flushed");
    assert!(buffer.text().ends_with("again [REDACTED:secret:s]\n"));
}
