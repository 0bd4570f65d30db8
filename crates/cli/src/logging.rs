//! Logs go to stderr, and only through the redactor: the formatter writes
//! into a [`RedactingMakeWriter`], so a log line that mentions a secret
//! cannot print it. Stdout is left to command output (and, with
//! `serve --stdio`, to protocol frames alone).

use sandbar_redact::{RedactingMakeWriter, SharedRedactor};
use tracing_subscriber::EnvFilter;

/// Installs the stderr log. A filter that does not parse is refused with
/// the parser's reason rather than replaced by a default, so a typo in
/// `--log` or `SANDBAR_LOG` does not silently hide the messages asked for.
pub fn init(filter: &str, redactor: SharedRedactor) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| format!("invalid log filter {filter:?} (--log or SANDBAR_LOG): {e}"))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .with_writer(RedactingMakeWriter::new(std::io::stderr, redactor))
        .try_init();
    Ok(())
}
