//! `RedactingMakeWriter`: a `tracing_subscriber` writer factory whose writers
//! pass every byte through the redactor before the real writer sees it, so
//! nothing a log line prints bypasses redaction.
//!
//! Why buffering per writer is enough to never split a secret: the `fmt`
//! layer formats one event into a buffer, asks the `MakeWriter` for a fresh
//! writer, writes the whole event with one `write_all` and drops the writer
//! (tracing-subscriber 0.3, `fmt_layer.rs`, `on_event`). `RedactingWriter`
//! does not rely on that single call: it keeps everything written to it and
//! redacts it as one text when it is flushed or dropped, so however a caller
//! splits its writes, one event is always one redaction pass.

use std::io::{self, Write};
use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

use crate::shared::{SharedRedactor, SinkRedactor};

/// Wraps a `MakeWriter` so that everything written through it is redacted.
///
/// ```
/// use sandbar_redact::{RedactingMakeWriter, SharedRedactor};
/// let redactor = SharedRedactor::default();
/// let subscriber = tracing_subscriber::fmt()
///     .with_writer(RedactingMakeWriter::new(std::io::stderr, redactor))
///     .finish();
/// # drop(subscriber);
/// ```
#[derive(Clone, Debug)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: SharedRedactor,
}

impl<M> RedactingMakeWriter<M> {
    /// Redacts with whatever `redactor` holds when each event is written.
    pub fn new(inner: M, redactor: SharedRedactor) -> Self {
        RedactingMakeWriter { inner, redactor }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer(), self.redactor.snapshot())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer_for(meta), self.redactor.snapshot())
    }
}

/// The writer [`RedactingMakeWriter`] hands out: it buffers what is written
/// and passes it, redacted, to the inner writer on `flush` and on drop.
///
/// A writer is meant to live for one event, as `tracing` uses it; a caller
/// that keeps one for longer should flush it at record boundaries.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: SinkRedactor,
    buffer: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    /// Redacts everything written to it with `redactor` before `inner` sees it.
    pub fn new(inner: W, redactor: SinkRedactor) -> Self {
        RedactingWriter {
            inner,
            redactor,
            buffer: Vec::new(),
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut self.buffer);
        // tracing writes UTF-8; anything else is replaced rather than passed
        // through unredacted.
        let text = String::from_utf8_lossy(&buffer);
        let redacted = self.redactor.redact_str(&text);
        self.inner.write_all(redacted.as_bytes())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        // Drop cannot report an error; the fmt layer ignores write errors
        // too unless it was asked to print them.
        let _ = self.write_out();
        let _ = self.inner.flush();
    }
}

impl<W: Write> std::fmt::Debug for RedactingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactingWriter")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}
