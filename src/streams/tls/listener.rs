//! A TLS listener: accepts on any [`Listener`] and runs each handshake in the
//! connection's own task, under a handshake timeout (AnyIO's `TLSListener`, issue #125).
//! A silent or hostile client only ever holds up its own task; each failure is logged
//! once, with the peer's address and the reason, and serving goes on.

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::{RaggedEofPolicy, TlsStream};
use crate::server::{ConnectionContext, ServeOptions, ServeSummary, serve};
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

    /// Serves until `shutdown` fires: for each connection, the handshake, then `handler`.
    pub async fn serve<H, F>(
        self,
        options: ServeOptions,
        shutdown: CancellationToken,
        handler: H,
    ) -> ServeSummary
    where
        H: Fn(TlsStream<L::Stream>, ConnectionContext) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let TlsListener { inner, config, policy, handshake_timeout, on_error } = self;
        let handler = Arc::new(handler);
        serve(inner, options, shutdown, move |raw, context: ConnectionContext| {
            let config = Arc::clone(&config);
            let handler = Arc::clone(&handler);
            let on_error = on_error.clone();
            async move {
                let handshake = within(Phase::Handshake, Some(handshake_timeout), TlsStream::accept(raw, config, policy));
                let result = tokio::select! {
                    result = handshake => result,
                    () = context.closing.cancelled() => return,
                };
                match result {
                    Ok(stream) => handler(stream, context).await,
                    Err(err) => {
                        tracing::warn!(peer = %context.peer, error = %crate::streams::error::chain(&err), "TLS handshake failed");
                        if let Some(hook) = on_error {
                            hook(&context.peer, &err);
                        }
                    }
                }
            }
        })
        .await
    }
}
