//! Where log lines go: stderr, one write per line, control characters escaped, and never
//! a panic when stderr is gone.
//!
//! tracing-subscriber's own stderr writer reports a failed write with `eprintln!`, which
//! panics when stderr is a closed pipe (`2>&1 | grep -m1 ...`, a log collector that
//! restarted): a panic in the signal watcher left `serve -k` deaf to SIGTERM, and one in
//! the accept loop made serve exit 101. Here a line that cannot be written is dropped and
//! counted; the exit says how many (if stderr is back by then), and nothing else changes.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Log lines (and messages) that could not be written to stderr.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Counts a line that could not be written.
pub fn dropped() {
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// The `MakeWriter` of the log: a buffer per event, written out whole when dropped.
#[derive(Debug, Clone, Copy)]
pub struct StderrLog {
    /// Colour sequences are the logger's own (stderr is a terminal): keep them.
    pub keep_sgr: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrLog {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { keep_sgr: self.keep_sgr, buf: Vec::new() }
    }
}

/// One event's text; see [`StderrLog`].
pub struct LineWriter {
    keep_sgr: bool,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let line = streamtool::escape::escape_log_line(&text, self.keep_sgr);
        if std::io::stderr().lock().write_all(line.as_bytes()).is_err() {
            dropped();
        }
    }
}
