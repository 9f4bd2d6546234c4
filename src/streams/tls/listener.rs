//! A TLS listener: accepts on any [`Listener`] and runs each handshake in the
//! connection's own task, under a handshake timeout (AnyIO's `TLSListener`, issue #125).
//! A silent or hostile client only ever holds up its own task; each failure is logged
//! once, with the peer's address and the reason, and serving goes on.
//!
//! This module holds the listener's settings and one connection's handshake
//! ([`TlsHandshake`]); the accept loop that runs it in each connection's task,
//! `TlsListener::serve`, is defined with the accept loop itself, in the `server` module,
//! which builds on this layer (the layer imports nothing outside itself).

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{RaggedEofPolicy, TlsStream};
use crate::streams::attrs::{Address, TypedAttributeProvider};
use crate::streams::error::{Phase, StreamError, within};
use crate::streams::listener::Listener;

/// Called with each failed handshake, after it was logged (tests and `--events` use it).
pub type HandshakeErrorHook = Arc<dyn Fn(&Address, &StreamError) + Send + Sync>;

/// Accepts TLS connections.
pub struct TlsListener<L> {
    inner: L,
    config: Arc<ServerConfig>,
    policy: RaggedEofPolicy,
    handshake_timeout: Duration,
    on_error: Option<HandshakeErrorHook>,
}

impl<L> std::fmt::Debug for TlsListener<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("policy", &self.policy)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// AnyIO's default handshake timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

impl<L: Listener> TlsListener<L>
where
    L::Stream: AsyncRead + AsyncWrite + TypedAttributeProvider + Unpin + Send,
{
    /// TLS over `inner`'s connections, with the default 30 s handshake timeout.
    pub fn new(inner: L, config: Arc<ServerConfig>, policy: RaggedEofPolicy) -> Self {
        TlsListener { inner, config, policy, handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT, on_error: None }
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, limit: Duration) -> Self {
        self.handshake_timeout = limit;
        self
    }

    /// Sets a hook called for each failed handshake.
    pub fn on_handshake_error(mut self, hook: HandshakeErrorHook) -> Self {
        self.on_error = Some(hook);
        self
    }

    /// The addresses listened on.
    pub fn local_addresses(&self) -> Vec<Address> {
        self.inner.local_addresses()
    }

    /// The ragged-EOF policy of accepted streams (the only attribute AnyIO's listener has).
    pub fn ragged_eof_policy(&self) -> RaggedEofPolicy {
        self.policy
    }

    /// Splits the listener into the plain listener and the handshake to run on each
    /// connection it accepts (what `TlsListener::serve` does in each connection's task).
    pub fn into_parts(self) -> (L, TlsHandshake) {
        let TlsListener { inner, config, policy, handshake_timeout, on_error } = self;
        (inner, TlsHandshake { config, policy, handshake_timeout, on_error })
    }
}

/// The server side of the TLS handshake a [`TlsListener`] runs on each accepted
/// connection: its settings, the timeout and the failure hook. Cheap to clone (one per
/// connection task).
#[derive(Clone)]
pub struct TlsHandshake {
    config: Arc<ServerConfig>,
    policy: RaggedEofPolicy,
    handshake_timeout: Duration,
    on_error: Option<HandshakeErrorHook>,
}

impl std::fmt::Debug for TlsHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsHandshake")
            .field("policy", &self.policy)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsHandshake {
    /// Runs the handshake with `peer` over `raw` under the handshake timeout. A failure is
    /// logged once (with the peer's address and the reason), passed to the hook, and
    /// gives `None`. Dropping the future (the connection is being closed) logs nothing.
    pub async fn run<S>(&self, raw: S, peer: &Address) -> Option<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + TypedAttributeProvider + Unpin + Send,
    {
        let handshake = within(
            Phase::Handshake,
            Some(self.handshake_timeout),
            TlsStream::accept(raw, Arc::clone(&self.config), self.policy),
        );
        match handshake.await {
            Ok(stream) => Some(stream),
            Err(err) => {
                tracing::warn!(peer = %peer, error = %crate::streams::error::chain(&err), "TLS handshake failed");
                if let Some(hook) = &self.on_error {
                    hook(peer, &err);
                }
                None
            }
        }
    }
}
