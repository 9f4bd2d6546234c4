//! The one route to stderr: lines for people ([`Ui::say`], [`Ui::notice`]) and, with
//! `--events json`, one JSON object per line for programs ([`Ui::emit`]; the schema is
//! `docs/events.md`, the types `streamtool::event`). Every command gets a [`Ui`] from
//! `main`; logs go through `tracing` (`logwriter.rs`) to the same stderr. Each line is
//! written whole, in one write, and a stderr that is gone is counted, never a panic.

use std::io::Write;
use std::sync::Arc;

use streamtool::event::Event;

/// Where a command's messages and events go; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    events: bool,
    quiet: bool,
    lock: Arc<std::sync::Mutex<()>>,
}

impl Ui {
    /// Events on (`--events json`) or off; notices off with `--quiet`.
    pub fn new(events: bool, quiet: bool) -> Self {
        Ui { events, quiet, lock: Arc::default() }
    }

    /// A line that is written even with `--quiet`: an error, a hint, what a user must
    /// know to go on (the pins of a fresh certificate).
    pub fn say(&self, message: &str) {
        say(message);
    }

    /// A line for a person, unless `--quiet`.
    pub fn notice(&self, message: &str) {
        if !self.quiet {
            say(message);
        }
    }

    /// Writes one event, built only when events are on: a server pays nothing per
    /// connection for them otherwise.
    pub fn emit(&self, event: impl FnOnce() -> Event) {
        if !self.events {
            return;
        }
        let mut object = event().to_json();
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        object.insert("time".into(), serde_json::json!((time * 1000.0).round() / 1000.0));
        object.insert("version".into(), serde_json::json!(1));
        let line = format!("{}\n", serde_json::Value::Object(object));
        let _guard = self.lock.lock();
        if std::io::stderr().lock().write_all(line.as_bytes()).is_err() {
            crate::logwriter::dropped();
        }
    }
}

impl streamtool::event::Report for Ui {
    fn events_on(&self) -> bool {
        self.events
    }

    fn event(&self, event: Event) {
        self.emit(|| event);
    }

    fn notice(&self, line: &str) {
        Ui::notice(self, line);
    }

    fn say(&self, line: &str) {
        Ui::say(self, line);
    }
    fn shared(&self) -> Option<Arc<dyn streamtool::event::Report>> {
        Some(Arc::new(self.clone()))
    }
}

/// Writes `streamtool: <message>` and a newline to stderr in one write, so that a reader
/// of the pipe never sees half a line. Control characters in the message (a host or a
/// path from the command line, a peer's words) are escaped, so that no message can move
/// the cursor or forge a line. (`main` uses it before a [`Ui`] exists.)
pub fn say(message: &str) {
    let line = format!("streamtool: {}\n", streamtool::escape::escape_control(message));
    if std::io::stderr().lock().write_all(line.as_bytes()).is_err() {
        crate::logwriter::dropped();
    }
}

/// Writes `bytes` to stdout and flushes; a closed stdout (as in `| head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}
