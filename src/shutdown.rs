//! Stopping a server by signals: the first SIGINT or SIGTERM starts a graceful shutdown,
//! a second ends the grace period; SIGHUP is logged and ignored.

/// SIGTERM and SIGINT, watched from before the listening line is printed: a stop sent
/// right after that line never meets the default (fatal) action, and one streams keeps
/// each signal from being lost between two waits (tokio drops a signal nobody waits for).
pub struct Signals {
    /// SIGTERM.
    pub term: tokio::signal::unix::Signal,
    /// SIGINT.
    pub int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Watches SIGTERM and SIGINT, and ignores SIGHUP (logged: there is nothing to reload).
    ///
    /// # Errors
    /// A signal handler that cannot be installed.
    pub fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        ignore_sighup()?;
        Ok(Signals { term, int })
    }
}

/// SIGHUP (a closed terminal, a service manager's "reload") is ignored by serve and pipe:
/// its default action would end them at once, with no grace and a UNIX socket file left
/// behind. There is no configuration to reload, so each one is only logged. tokio keeps
/// its handler installed for the life of the process.
fn ignore_sighup() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: ignored (nothing to reload; SIGTERM stops)");
        }
    });
    Ok(())
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
