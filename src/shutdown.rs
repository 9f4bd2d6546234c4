//! Stopping a server by signals: the first SIGINT or SIGTERM starts a graceful shutdown,
//! a second ends the grace period; SIGHUP reloads a TLS server's certificates
//! ([`crate::stack::reload::on_sighup`]) and is otherwise logged and ignored.

use std::future::Future;
use std::time::Duration;

/// SIGTERM and SIGINT, watched from before the listening line is printed: a stop sent
/// right after that line never meets the default (fatal) action, and one streams keeps
/// each signal from being lost between two waits (tokio drops a signal nobody waits for).
pub struct Signals {
    /// SIGTERM (Ctrl-Break on Windows).
    pub term: crate::platform::TermSignal,
    /// SIGINT (Ctrl-C on Windows).
    pub int: crate::platform::IntSignal,
}

impl Signals {
    /// Watches SIGTERM and SIGINT, and SIGHUP (a TLS server's reload; ignored, and logged,
    /// when there is nothing to reload).
    ///
    /// # Errors
    /// A signal handler that cannot be installed.
    pub fn new() -> std::io::Result<Signals> {
        let term = crate::platform::term_signal()?;
        let int = crate::platform::int_signal()?;
        ignore_sighup()?;
        Ok(Signals { term, int })
    }
}

/// How a job run under [`Signals::run_with_grace`] ended.
#[derive(Debug)]
pub enum Ended<T> {
    /// On its own.
    Done(T),
    /// SIGTERM came and its grace period ran out (a service manager's stop: exit 0).
    GraceOver,
    /// SIGINT (Ctrl-C): stopped at once, also during the grace period (exit 130).
    Interrupted,
}

impl Signals {
    /// Runs `job` (one client's session, one relay: `what`, in the log) to its end. SIGINT
    /// stops it at once; SIGTERM lets it finish within `grace`, then drops it. Biased towards the job: one
    /// that handles SIGINT itself (the stdio session) ends on its own terms first.
    pub async fn run_with_grace<T>(
        &mut self,
        job: impl Future<Output = T>,
        grace: Duration,
        what: &str,
    ) -> Ended<T> {
        tokio::pin!(job);
        tokio::select! {
            biased;
            done = &mut job => return Ended::Done(done),
            _ = self.int.recv() => return Ended::Interrupted,
            _ = self.term.recv() => tracing::info!(?grace, "SIGTERM: letting the {what} finish"),
        }
        tokio::select! {
            biased;
            finished = tokio::time::timeout(grace, &mut job) => finished.map_or_else(|_| {
                tracing::warn!("grace period over; closing the {what}");
                Ended::GraceOver
            }, Ended::Done),
            _ = self.int.recv() => Ended::Interrupted,
        }
    }
}

/// SIGHUP (a closed terminal, a service manager's "reload") never ends serve and pipe:
/// its default action would end them at once, with no grace and a UNIX socket file left
/// behind. A TLS server loads its certificates again; anything else has nothing to reload,
/// so each one is only logged. tokio keeps its handler installed for the life of the
/// process. Windows has no SIGHUP (and no reload by signal).
#[cfg(unix)]
fn ignore_sighup() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if !crate::stack::reload::on_sighup() {
                tracing::info!("SIGHUP: ignored (nothing to reload; SIGTERM stops)");
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn ignore_sighup() -> std::io::Result<()> {
    Ok(())
}

/// A server's shutdown driven by signals ([`Signals::watch`]).
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// Fires at the first SIGINT or SIGTERM: stop accepting, let connections finish.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Fires at the second: close open connections at once.
    pub cut_short: tokio_util::sync::CancellationToken,
    interrupted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Shutdown {
    /// Whether a SIGINT came (the exit code is then 130).
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Signals {
    /// Watches the signals in a task of their own for a server ([`watch_signals`]).
    pub fn watch(self) -> Shutdown {
        let shutdown = Shutdown {
            shutdown: tokio_util::sync::CancellationToken::new(),
            cut_short: tokio_util::sync::CancellationToken::new(),
            interrupted: std::sync::Arc::default(),
        };
        let (token, cut, flag) = (
            shutdown.shutdown.clone(),
            shutdown.cut_short.clone(),
            std::sync::Arc::clone(&shutdown.interrupted),
        );
        tokio::spawn(watch_signals(self, token, cut, flag));
        shutdown
    }
}

/// The first SIGINT or SIGTERM starts a graceful shutdown (`shutdown`); a second one ends
/// the grace period at once (`cut_short`). Any SIGINT makes the exit code 130.
pub async fn watch_signals(
    mut signals: Signals,
    shutdown: tokio_util::sync::CancellationToken,
    cut_short: tokio_util::sync::CancellationToken,
    interrupted: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    for round in 0..2 {
        let name = tokio::select! {
            _ = signals.term.recv() => "SIGTERM",
            _ = signals.int.recv() => {
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                "SIGINT"
            }
        };
        if round == 0 {
            tracing::info!("{name}: stopping; a second signal closes open connections at once");
            shutdown.cancel();
        } else {
            tracing::warn!("{name} again: closing open connections now");
            cut_short.cancel();
        }
    }
}
