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
//! [`accept_first`] is the loop of a server that serves one client (`serve` without `-k`,
//! a listening endpoint of `pipe` without `fork`): it accepts until the first client is
//! ready, TLS handshakes side by side.
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

use std::fmt::Display;

use crate::endpoint::EndpointOptions;
use crate::event::{Close, Event, Report};
use crate::proxy_protocol::AcceptProxy;
use crate::stack::open::Opened;
use crate::stack::{OptionsError, Spelling};
use crate::streams::attrs::TypedAttributeProvider;
use crate::streams::listener::{Connection, Listener};
use crate::streams::tls::{Pin, RaggedEofPolicy, TlsListener, TlsStream, accept_tls};
use crate::streams::{Address, StreamError};

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

/// A server's TLS, as the tool runs it on each accepted connection: the settings, the
/// ragged-EOF policy of accepted streams and the handshake's time limit.
#[derive(Clone)]
pub struct ServerTls {
    /// The server's rustls settings, read by each handshake (a reload replaces them).
    pub config: crate::stack::reload::LiveConfig,
    /// What an end without close_notify means on accepted streams.
    pub policy: RaggedEofPolicy,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
    /// STARTTLS before the handshake (smtp only, [`crate::stack::starttls::serve_smtp`]),
    /// within the same time limit.
    pub starttls: Option<crate::stack::starttls::Protocol>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("policy", &self.policy)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Runs the handshake with a client just accepted ([`accept_tls`]); on failure, why,
    /// worded to follow `TLS handshake with PEER failed: `.
    pub async fn accept(&self, raw: Connection) -> Result<TlsStream<Connection>, String> {
        let mut raw = raw;
        if self.starttls.is_some() {
            crate::stack::starttls::serve_smtp(&mut raw, self.handshake_timeout)
                .await
                .map_err(|why| format!("STARTTLS (smtp): {why}"))?;
        }
        accept_tls(raw, self.config.current(), self.policy, self.handshake_timeout).await
    }
}

/// A server's TLS built from its options, with the pins of the certificate it presents.
#[derive(Debug)]
pub struct ServedTls {
    /// Ready to accept.
    pub tls: ServerTls,
    /// The cert pin (SHA-256 of the whole certificate).
    pub cert_pin: Pin,
    /// The key pin (SHA-256 of its SPKI), if the certificate parses.
    pub key_pin: Option<Pin>,
}

/// Why a server's TLS could not be built.
#[derive(Debug)]
pub enum ServerTlsError {
    /// A file an option names (certificate, key, client CAs).
    Options(OptionsError),
    /// The settings themselves (a key that does not match its certificate, the key log).
    Build(StreamError),
}

impl ServerTls {
    /// Builds a server's TLS from its options (`serve --tls` and a `tls-listen` endpoint):
    /// every file read, the key checked against the certificate, the key log opened.
    /// Without a certificate, a fresh self-signed one, announced with `report.say`: its
    /// pins and the command that reaches it at `target` (docs/design.md section 4.4).
    /// With certificate files, several are chosen by SNI, and the server is registered for
    /// reloads ([`crate::stack::reload::Reloader`]: SIGHUP, `reload-on-change`), which
    /// report to `report` when it can be kept ([`Report::shared`]).
    ///
    /// # Errors
    /// [`ServerTlsError`] naming the option (as `spelling` writes it) or the setting.
    pub fn from_options(
        options: &EndpointOptions,
        spelling: Spelling,
        target: &str,
        report: &dyn Report,
    ) -> Result<ServedTls, ServerTlsError> {
        let (server, generated, set) = options.server_options(spelling).map_err(ServerTlsError::Options)?;
        let config =
            crate::stack::reload::server_config(&server, set.as_ref()).map_err(ServerTlsError::Build)?;
        let config = crate::stack::reload::LiveConfig::new(config);
        match set {
            Some(set) => {
                let live = config.clone();
                crate::stack::reload::Reloader::register(options, spelling, live, set, report.shared());
            }
            None => crate::stack::reload::note_self_signed(),
        }
        if let Some(generated) = generated {
            report.say(&format!(
                "no {} given; serving a fresh self-signed certificate for localhost, 127.0.0.1, ::1",
                spelling.name("cert")
            ));
            for line in crate::certs::self_signed_banner(generated.cert_der.as_ref(), target) {
                report.say(&line);
            }
        }
        let leaf = server.identity.chain.first().map(|c| c.as_ref()).unwrap_or_default();
        tracing::info!("serving a certificate with {}", crate::certs::pin_lines(leaf).join(", "));
        let tls = ServerTls {
            config,
            policy: options.ragged_eof_policy(),
            handshake_timeout: options.handshake_limit(),
            starttls: options.starttls,
        };
        Ok(ServedTls { tls, cert_pin: Pin::of_certificate(leaf), key_pin: Pin::of_public_key(leaf).ok() })
    }
}

/// Logs and emits what a handshake with `peer` negotiated (the `handshake` event).
pub fn report_handshake<IO>(stream: &TlsStream<IO>, report: &dyn Report, peer: &(impl Display + ?Sized))
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    let version = stream.protocol_version().map(|v| v.to_string()).unwrap_or_default();
    let cipher = stream.cipher_suite().unwrap_or_default();
    let alpn = stream.alpn_protocol().map(|p| String::from_utf8_lossy(&p).into_owned());
    tracing::info!(%peer, %version, %cipher, alpn = alpn.as_deref().unwrap_or("-"), "TLS handshake done");
    let certs = stream.peer_certificates();
    report.emit(|| Event::Handshake {
        peer: peer.to_string(),
        tls_version: version,
        cipher,
        alpn,
        sni: stream.server_name(),
        peer_certificate: certs.first().map(|c| crate::certs::certificate_json(c.as_ref())),
    });
}

/// Logs a failed server-side handshake with `peer` (a warning: `TLS handshake with PEER
/// failed: REASON`) and emits its `close` event (`handshake: REASON`). Serving goes on.
pub fn report_failed_handshake(report: &dyn Report, peer: &(impl Display + ?Sized), reason: &str) {
    let reason = crate::words::plain_words(reason);
    tracing::warn!("TLS handshake with {peer} failed: {reason}");
    report.emit(|| Close::served(peer, format!("handshake: {reason}")));
}

/// Logs a connection refused for its PROXY header (a warning: `PROXY header from PEER
/// refused: REASON`, PEER being the connection's own peer) and emits its `accept` and
/// `close` events (`proxy: REASON`). Serving goes on.
pub fn report_failed_proxy(report: &dyn Report, peer: &(impl Display + ?Sized), reason: &str) {
    let reason = crate::words::plain_words(reason);
    tracing::warn!("PROXY header from {peer} refused: {reason}");
    report.emit(|| Event::Accept { peer: peer.to_string(), proxy: None });
    report.emit(|| Close::served(peer, format!("proxy: {reason}")));
}

/// TLS handshakes (and PROXY header reads) in progress at once at most in
/// [`accept_first`]; past that, accepting waits.
pub const MAX_PENDING_HANDSHAKES: usize = 64;

/// Accepts until the first client is ready: the first connection, or with `tls` the first
/// whose handshake succeeds (then logged and reported, [`report_handshake`]). Each
/// connection is reported (`accept`) as it arrives. Handshakes run side by side, at most
/// [`MAX_PENDING_HANDSHAKES`] at once: a client that connects and stays silent does not
/// hold up the next one for the whole handshake timeout. A failed handshake is logged
/// and reported ([`report_failed_handshake`]) and accepting goes on; an accept error
/// (running out of descriptors and the like) is logged and retried after a back-off, as
/// in [`serve`]. Returns the connection and the peer's address as text.
///
/// # Errors
/// [`StreamError::Closed`] if a plain connection was closed before it could be taken.
pub async fn accept_first<L>(
    listener: &mut L,
    tls: Option<&ServerTls>,
    report: &dyn Report,
) -> Result<(Opened, String), StreamError>
where
    L: Listener<Stream = Connection>,
{
    accept_first_proxied(listener, tls, None, report).await
}

/// Why a connection [`accept_first_proxied`] started on is not the first client.
enum NotReady {
    /// Its PROXY header was refused.
    Proxy(String),
    /// Its TLS handshake failed.
    Handshake(String),
}

/// One connection's way to being ready, in its own task: the PROXY header (when asked),
/// then the TLS handshake (when asked). Returns the connection, the client's address as
/// text, and, with a PROXY header, the proxy's; failures name the connection's peer.
async fn ready(
    mut raw: Connection,
    peer: Address,
    tls: Option<ServerTls>,
    proxy: Option<AcceptProxy>,
) -> (Result<Opened, NotReady>, String, Option<String>) {
    let (client, via) = match &proxy {
        Some(accept) => match accept.accept(&mut raw, &peer).await {
            Ok(proxied) => (proxied.client.to_string(), Some(proxied.proxy.to_string())),
            Err(reason) => return (Err(NotReady::Proxy(reason)), peer.to_string(), None),
        },
        None => (peer.to_string(), None),
    };
    let opened = match tls {
        Some(tls) => tls.accept(raw).await.map(|s| Opened::Tls(Box::new(s))).map_err(NotReady::Handshake),
        None => Opened::plain(raw).map_err(|e| NotReady::Handshake(e.to_string())),
    };
    (opened, client, via)
}

/// [`accept_first`], each connection's PROXY header read first with `proxy` (in the
/// connection's own task, side by side with the others, before its TLS handshake): the
/// `accept` event then names the client the header names, and the proxy; a refused
/// header is logged and reported ([`report_failed_proxy`]) and accepting goes on.
///
/// # Errors
/// [`StreamError::Closed`] if a plain connection was closed before it could be taken.
pub async fn accept_first_proxied<L>(
    listener: &mut L,
    tls: Option<&ServerTls>,
    proxy: Option<&AcceptProxy>,
    report: &dyn Report,
) -> Result<(Opened, String), StreamError>
where
    L: Listener<Stream = Connection>,
{
    let mut backoff = BACKOFF_MIN;
    let mut pending: tokio::task::JoinSet<(Result<Opened, NotReady>, String, Option<String>)> =
        tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept(), if pending.len() < MAX_PENDING_HANDSHAKES => accepted,
            Some(done) = pending.join_next() => {
                let (result, peer, via) = match done {
                    Ok(done) => done,
                    Err(err) => {
                        tracing::warn!("a connection's handshake task failed: {err}");
                        continue;
                    }
                };
                if proxy.is_some() && !matches!(result, Err(NotReady::Proxy(_))) {
                    report.emit(|| Event::Accept { peer: peer.clone(), proxy: via.clone() });
                }
                match result {
                    Ok(Opened::Tls(tls)) => {
                        report_handshake(&tls, report, &peer);
                        return Ok((Opened::Tls(tls), peer));
                    }
                    Ok(plain) => return Ok((plain, peer)),
                    Err(NotReady::Handshake(reason)) if tls.is_some() => report_failed_handshake(report, &peer, &reason),
                    Err(NotReady::Handshake(reason)) => tracing::warn!(%peer, "{reason}"),
                    Err(NotReady::Proxy(reason)) => report_failed_proxy(report, &peer, &reason),
                }
                continue;
            }
        };
        let (raw, peer) = match accepted {
            Ok(accepted) => {
                backoff = BACKOFF_MIN;
                accepted
            }
            Err(err) => {
                tracing::warn!(error = %err, "accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if proxy.is_none() {
            report.emit(|| Event::Accept { peer: peer.to_string(), proxy: None });
            if tls.is_none() {
                return Ok((Opened::plain(raw)?, peer.to_string()));
            }
        }
        pending.spawn(ready(raw, peer, tls.cloned(), proxy.cloned()));
    }
}
