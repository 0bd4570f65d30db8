//! Logs go to stderr, and only through the redactor: the formatter writes
//! into a [`RedactingMakeWriter`], so a log line that mentions a secret
//! cannot print it. Stdout is left to command output (and, with
//! `serve --stdio`, to protocol frames alone).

use sandbar_redact::{RedactingMakeWriter, SharedRedactor};
use tracing_subscriber::EnvFilter;

pub fn init(filter: &str, redactor: SharedRedactor) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .with_writer(RedactingMakeWriter::new(std::io::stderr, redactor))
        .try_init();
}
