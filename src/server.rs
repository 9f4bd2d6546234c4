//! The accept loop: one task per connection, a connection limit, back-off on accept
//! errors, and graceful shutdown (mini-redis's `server::run` shape, with tokio-util's
//! `CancellationToken` and `TaskTracker`).
//!
//! The caller binds the listener (tests bind port 0) and owns the shutdown token:
//!
//! 1. `accept` is raced against shutdown; an accept error (EMFILE, ENFILE, ENOBUFS,
//!    ECONNABORTED, ...) is logged and retried after a back-off that doubles from 5 ms to
//!    1 s, so running out of descriptors slows the server down instead of ending it.
//! 2. Each connection runs in its own task; its failure is the handler's to log and never
//!    ends the server. Past the connection limit, new connections are closed at once (and
//!    logged), as ncat's `--max-conns` does.
//! 3. On shutdown the listener is closed first (new connections are refused), open
//!    connections get the grace period to finish (or until
//!    [`ServeOptions::cut_grace_short`] fires), and then each handler's
//!    [`ConnectionContext::closing`] token fires; handlers race their I/O against it.
//!
//! [`TlsListener::serve`] is the same loop with each connection's TLS handshake run first,
//! in the connection's own task: defined here, on the TLS listener of the stream layer,
//! because the accept loop builds on that layer and never the reverse.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::streams::Address;
use crate::streams::attrs::TypedAttributeProvider;
use crate::streams::listener::Listener;
use crate::streams::tls::{TlsListener, TlsStream};

/// Limits of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Open connections at most; more are closed on arrival.
    pub max_connections: Option<usize>,
    /// How long open connections may go on after shutdown starts.
    pub grace: Duration,
    /// Ends the grace period early when it fires (a second Ctrl-C): the open connections'
    /// `closing` tokens fire at once.
    pub cut_grace_short: Option<CancellationToken>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { max_connections: None, grace: Duration::from_secs(10), cut_grace_short: None }
    }
}

/// What a connection handler is given besides the stream.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    /// The peer's address.
    pub peer: Address,
    /// Fires when the grace period after shutdown has run out: stop now.
    pub closing: CancellationToken,
}

/// How a [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeSummary {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed on arrival because of the limit.
    pub rejected: u64,
    /// Connections still open when the grace period ran out.
    pub cut_short: usize,
}

const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long handlers get to stop once `closing` fires.
const FORCED_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Accepts connections until `shutdown` fires, running `handler` for each in its own task.
pub async fn serve<L, H, F>(
    mut listener: L,
    options: ServeOptions,
    shutdown: CancellationToken,
    handler: H,
) -> ServeSummary
where
    L: Listener,
    H: Fn(L::Stream, ConnectionContext) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let tracker = TaskTracker::new();
    let closing = CancellationToken::new();
    let open = Arc::new(AtomicUsize::new(0));
    let mut summary = ServeSummary { accepted: 0, rejected: 0, cut_short: 0 };
    let mut backoff = BACKOFF_MIN;

    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => {
                backoff = BACKOFF_MIN;
                connection
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?backoff, "accept failed; backing off");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if let Some(max) = options.max_connections
            && open.load(Ordering::Acquire) >= max
        {
            summary.rejected += 1;
            tracing::warn!(peer = %peer, max, "connection limit reached; closing the new connection");
            drop(stream);
            continue;
        }
        summary.accepted += 1;
        open.fetch_add(1, Ordering::AcqRel);
        let handler = Arc::clone(&handler);
        // The guard exists before the task does: a task dropped before its first poll still
        // gives its slot back.
        let guard = OpenGuard(Arc::clone(&open));
        let context = ConnectionContext { peer, closing: closing.clone() };
        tracker.spawn(async move {
            let _guard = guard;
            handler(stream, context).await;
        });
    }

    // Stop accepting: the listening sockets close here, so new connections are refused.
    drop(listener);
    tracker.close();
    let open_now = open.load(Ordering::Acquire);
    if open_now > 0 {
        tracing::info!(open = open_now, grace = ?options.grace, "shutting down; letting open connections finish");
    }
    let cut_short = async {
        match &options.cut_grace_short {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let finished = tokio::select! {
        finished = tokio::time::timeout(options.grace, tracker.wait()) => finished.is_ok(),
        () = cut_short => {
            tracing::info!("grace period cut short");
            false
        }
    };
    if !finished {
        summary.cut_short = open.load(Ordering::Acquire);
        tracing::warn!(open = summary.cut_short, "grace period over; closing the remaining connections");
        closing.cancel();
        // Handlers race their I/O against `closing`; one that does not is left behind
        // rather than holding the shutdown forever.
        if tokio::time::timeout(FORCED_CLOSE_WAIT, tracker.wait()).await.is_err() {
            tracing::error!("a connection handler ignored the shutdown; leaving it behind");
        }
    }
    summary
}

struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<L: Listener> TlsListener<L>
where
    L::Stream: AsyncRead + AsyncWrite + TypedAttributeProvider + Unpin + Send,
{
    /// Serves until `shutdown` fires: for each connection, the handshake, then `handler`.
    pub async fn serve<H, F>(
        self,
        options: ServeOptions,
        shutdown: CancellationToken,
        handler: H,
    ) -> ServeSummary
    where
        H: Fn(TlsStream<L::Stream>, ConnectionContext) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (inner, handshake) = self.into_parts();
        let handler = Arc::new(handler);
        serve(inner, options, shutdown, move |raw, context: ConnectionContext| {
            let handshake = handshake.clone();
            let handler = Arc::clone(&handler);
            async move {
                let stream = tokio::select! {
                    stream = handshake.run(raw, &context.peer) => stream,
                    () = context.closing.cancelled() => return,
                };
                if let Some(stream) = stream {
                    handler(stream, context).await;
                }
            }
        })
        .await
    }
}
