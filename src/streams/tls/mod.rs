//! TLS streams over any byte transport, with rustls (AnyIO's `TLSStream`, `TLSListener`).
//!
//! [`TlsStream::connect`] and [`TlsStream::accept`] run the handshake and return only once
//! it is done. The transport is any tokio `AsyncRead + AsyncWrite` that also answers
//! attribute lookups: a [`SocketStream`](super::SocketStream), an accepted
//! [`Connection`](super::Connection), or [`ByteStreamIo`](super::ByteStreamIo) over an
//! in-memory pair for tests. The socket's attributes stay visible through the TLS stream.
//!
//! # Ragged EOF (spec §6.4, docs/design.md §4.1)
//! A peer that closes TCP without close_notify may have been cut short. The policy says
//! what a receive then reports:
//!
//! | peer's ending | `Strict` (default) | `Warn` | `Ignore` |
//! |---|---|---|---|
//! | close_notify, then FIN | end of stream | end of stream | end of stream |
//! | FIN without close_notify | [`StreamError::Truncated`] | end of stream, one warning logged | end of stream |
//! | FIN during the handshake | [`StreamError::Broken`] | end of stream (D10) | end of stream (D10) |
//!
//! `aclose` sends close_notify (always: unlike AnyIO's `standard_compatible=False`, a
//! lenient policy here only forgives the *peer's* missing close_notify; sending ours
//! never hurts). Under `Strict` it then waits, up to the close timeout, for the peer's
//! close_notify if it has not arrived yet, and reports a ragged end as truncation (AnyIO's
//! `unwrap` on `aclose`, scenario 65). Dropping a stream closes it abruptly, without
//! close_notify (AnyIO's `aclose_forcefully`).
//!
//! # Half-close
//! `send_eof` on TLS 1.3 sends close_notify and shuts down the transport's write side
//! while receiving goes on (RFC 8446 §6.1 allows it; AnyIO raises `NotImplementedError`).
//! On TLS 1.2 a close_notify closes both directions, so `send_eof` fails with
//! [`StreamError::Unsupported`] and AnyIO's message.

mod accept;
mod allow;
mod config;
mod listener;
mod verify;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

pub use accept::accept_tls;
pub use allow::{ClientAllow, ClientIdentity, San};
pub use config::{
    ClientAuth, ClientOptions, Identity, KeyLog, KeySink, ServerOptions, TlsVersion, Trust, VersionRange,
    hex, open_secret_append, provider, server_name,
};
pub use listener::{HandshakeErrorHook, TlsHandshake, TlsListener};
pub use verify::{Pin, is_ca, sha256};

use super::abc::{AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream};
use super::attrs::{AttributeValue, TypedAttribute, TypedAttributeProvider};
use super::error::{Phase, Result, StreamError};

/// What a receive reports when the peer closes without close_notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RaggedEofPolicy {
    /// An error, [`StreamError::Truncated`] (AnyIO's `standard_compatible=True`).
    #[default]
    Strict,
    /// The end of the stream, with a warning in the log.
    Warn,
    /// The end of the stream (AnyIO's `standard_compatible=False`).
    Ignore,
}

impl std::str::FromStr for RaggedEofPolicy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Ok(RaggedEofPolicy::Strict),
            "warn" => Ok(RaggedEofPolicy::Warn),
            "ignore" => Ok(RaggedEofPolicy::Ignore),
            _ => Err(format!("unknown ragged-EOF policy {s:?} (expected strict, warn or ignore)")),
        }
    }
}

/// The default limit for waiting on the peer's close_notify in `aclose`.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Typed attributes of TLS streams (AnyIO's `TLSAttribute`).
pub mod attributes {
    use super::{RaggedEofPolicy, TlsVersion, TypedAttribute};

    /// The negotiated version.
    pub const VERSION: TypedAttribute<TlsVersion> = TypedAttribute::new("tls.version");
    /// The cipher suite, as rustls names it (`TLS13_AES_256_GCM_SHA384`).
    pub const CIPHER: TypedAttribute<String> = TypedAttribute::new("tls.cipher");
    /// The negotiated ALPN protocol, if any.
    pub const ALPN_PROTOCOL: TypedAttribute<Option<Vec<u8>>> = TypedAttribute::new("tls.alpn_protocol");
    /// The server name the client asked for (SNI), on the server side.
    pub const SERVER_NAME: TypedAttribute<Option<String>> = TypedAttribute::new("tls.server_name");
    /// The peer's certificate chain, DER, leaf first (empty if none was presented).
    pub const PEER_CERTIFICATES: TypedAttribute<Vec<Vec<u8>>> = TypedAttribute::new("tls.peer_certificates");
    /// Whether this is the server side.
    pub const SERVER_SIDE: TypedAttribute<bool> = TypedAttribute::new("tls.server_side");
    /// The ragged-EOF policy (AnyIO's `standard_compatible`).
    pub const RAGGED_EOF_POLICY: TypedAttribute<RaggedEofPolicy> =
        TypedAttribute::new("tls.ragged_eof_policy");
    /// RFC 9266 `tls-exporter` channel binding (32 bytes). rustls has no `tls-unique`.
    pub const CHANNEL_BINDING: TypedAttribute<Vec<u8>> = TypedAttribute::new("tls.channel_binding");
}

/// A TLS connection over the transport `IO`.
pub struct TlsStream<IO> {
    /// `None` once closed.
    inner: Option<tokio_rustls::TlsStream<IO>>,
    policy: RaggedEofPolicy,
    close_timeout: Option<Duration>,
    /// The peer's end was seen (close_notify, or a forgiven ragged end).
    peer_eof: bool,
    /// The peer's end was ragged, under the strict policy.
    truncated: bool,
    eof_sent: bool,
    /// On the client side, the OCSP response the server stapled (status_request; rustls
    /// always asks for one).
    stapled_ocsp: Option<Vec<u8>>,
}

impl<IO> std::fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("policy", &self.policy)
            .field("closed", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

/// Writes out what a read left queued: an alert (a refused renegotiation), a close_notify
/// in reply. rustls queues them and tokio-rustls sends them only with the next write, so a
/// peer that waits for the answer before it writes again would wait forever. Never waits:
/// what the transport cannot take now goes with the next flush.
fn flush_pending<IO: AsyncRead + AsyncWrite + Unpin>(
    inner: &mut tokio_rustls::TlsStream<IO>,
    cx: &mut std::task::Context<'_>,
) {
    let wants_write = match &*inner {
        tokio_rustls::TlsStream::Client(s) => s.get_ref().1.wants_write(),
        tokio_rustls::TlsStream::Server(s) => s.get_ref().1.wants_write(),
    };
    if wants_write {
        let _ = std::pin::Pin::new(inner).poll_flush(cx);
    }
}

/// The transport ended without close_notify: a clean FIN, or a reset.
fn is_ragged(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset)
        && err.get_ref().is_none_or(|inner| inner.downcast_ref::<rustls::Error>().is_none())
}

fn handshake_error(err: io::Error, policy: RaggedEofPolicy) -> StreamError {
    let rustls_error = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()).cloned();
    match rustls_error {
        Some(source) => StreamError::Tls { peer: None, source: Box::new(source) },
        None if is_ragged(&err) => match policy {
            RaggedEofPolicy::Strict => StreamError::broken(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection during the TLS handshake",
            )),
            _ => StreamError::EndOfStream,
        },
        None => StreamError::from(err),
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> TlsStream<IO> {
    /// Runs the client handshake over `io`, verifying the server as `config` says, for
    /// `name` (SNI and certificate name; see [`server_name`]).
    ///
    /// # Errors
    /// [`StreamError::Tls`] for a handshake or verification failure (with rustls' error
    /// as the source); [`StreamError::Broken`] / [`StreamError::EndOfStream`] if the peer
    /// closed during the handshake (per policy); transport errors.
    pub async fn connect(
        io: IO,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        policy: RaggedEofPolicy,
    ) -> Result<Self> {
        let handshake = async {
            let stream = tokio_rustls::TlsConnector::from(config).connect(name, io).await;
            (stream, verify::STAPLED_OCSP.with(std::cell::Cell::take))
        };
        let (stream, ocsp) = verify::STAPLED_OCSP.scope(std::cell::Cell::new(Vec::new()), handshake).await;
        let stream = stream.map_err(|e| handshake_error(e, policy))?;
        let mut tls = Self::new(tokio_rustls::TlsStream::Client(stream), policy);
        tls.stapled_ocsp = (!ocsp.is_empty()).then_some(ocsp);
        Ok(tls)
    }

    /// Runs the server handshake over `io`.
    ///
    /// # Errors
    /// As [`TlsStream::connect`].
    pub async fn accept(io: IO, config: Arc<ServerConfig>, policy: RaggedEofPolicy) -> Result<Self> {
        let stream = tokio_rustls::TlsAcceptor::from(config).accept(io).await.map_err(|e| {
            let denied =
                rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure);
            let refusal = if e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) == Some(&denied) {
                allow::take_refusal()
            } else {
                None
            };
            match refusal {
                Some(why) => StreamError::Tls { peer: None, source: Box::new(allow::Refused(why)) },
                None => handshake_error(e, policy),
            }
        })?;
        Ok(Self::new(tokio_rustls::TlsStream::Server(stream), policy))
    }

    fn new(inner: tokio_rustls::TlsStream<IO>, policy: RaggedEofPolicy) -> Self {
        TlsStream {
            inner: Some(inner),
            policy,
            close_timeout: Some(DEFAULT_CLOSE_TIMEOUT),
            peer_eof: false,
            truncated: false,
            eof_sent: false,
            stapled_ocsp: None,
        }
    }

    /// Sets how long `aclose` waits for the peer's close_notify (strict policy only);
    /// `None` waits as long as it takes.
    pub fn set_close_timeout(&mut self, limit: Option<Duration>) {
        self.close_timeout = limit;
    }

    fn inner(&mut self) -> Result<&mut tokio_rustls::TlsStream<IO>> {
        self.inner.as_mut().ok_or(StreamError::Closed)
    }

    /// One read; `Ok(0)` is the peer's end (after policy), errors mapped.
    async fn read_some(&mut self, buf: &mut BytesMut, max_bytes: usize) -> Result<usize> {
        self.inner()?;
        if self.truncated {
            return Err(StreamError::Truncated);
        }
        if self.peer_eof {
            return Ok(0);
        }
        let policy = self.policy;
        buf.reserve(max_bytes);
        let inner = self.inner()?;
        let mut limited = (&mut *buf).limit(max_bytes);
        let result = std::future::poll_fn(|cx| {
            let read = tokio_util::io::poll_read_buf(std::pin::Pin::new(&mut *inner), cx, &mut limited);
            flush_pending(inner, cx);
            read
        })
        .await;
        match result {
            Ok(0) => {
                self.peer_eof = true;
                Ok(0)
            }
            Ok(n) => Ok(n),
            // A reset is a ragged end too: a peer that closes with unread data (a TLS 1.3
            // session ticket it never read, say) makes its kernel send RST instead of FIN.
            Err(err) if is_ragged(&err) => match policy {
                RaggedEofPolicy::Strict => {
                    self.truncated = true;
                    Err(StreamError::Truncated)
                }
                RaggedEofPolicy::Warn => {
                    tracing::warn!(
                        "the TLS peer closed the connection without close_notify; the data may be truncated"
                    );
                    self.peer_eof = true;
                    Ok(0)
                }
                RaggedEofPolicy::Ignore => {
                    self.peer_eof = true;
                    Ok(0)
                }
            },
            Err(err) => Err(StreamError::from(err)),
        }
    }

    fn common(&self) -> Option<&rustls::CommonState> {
        self.inner.as_ref().map(|s| s.get_ref().1)
    }

    /// The transport, unless closed.
    pub fn get_ref(&self) -> Option<&IO> {
        self.inner.as_ref().map(|s| s.get_ref().0)
    }

    /// The negotiated version.
    pub fn protocol_version(&self) -> Option<TlsVersion> {
        self.common().and_then(|c| c.protocol_version()).and_then(TlsVersion::from_rustls)
    }

    /// The negotiated cipher suite's name.
    pub fn cipher_suite(&self) -> Option<String> {
        self.common().and_then(|c| c.negotiated_cipher_suite()).map(|s| format!("{:?}", s.suite()))
    }

    /// The negotiated key-exchange group, as rustls names it (`X25519`, `secp256r1`,
    /// `X25519MLKEM768`).
    pub fn key_exchange_group(&self) -> Option<String> {
        self.common().and_then(|c| c.negotiated_key_exchange_group()).map(|g| format!("{:?}", g.name()))
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.common().and_then(|c| c.alpn_protocol()).map(<[u8]>::to_vec)
    }

    /// The peer's certificate chain, leaf first.
    pub fn peer_certificates(&self) -> Vec<CertificateDer<'static>> {
        self.common()
            .and_then(|c| c.peer_certificates())
            .map(<[CertificateDer<'static>]>::to_vec)
            .unwrap_or_default()
    }

    /// On the client side, the OCSP response (DER) the server stapled to its certificate
    /// in this handshake, as received: rustls always asks for one (the status_request
    /// extension) and does not check it. `None` when the server stapled none, on the
    /// server side, and on a resumed session (no certificate is sent then).
    pub fn stapled_ocsp(&self) -> Option<&[u8]> {
        self.stapled_ocsp.as_deref()
    }

    /// Whether this is the server side.
    pub fn is_server(&self) -> bool {
        matches!(self.inner, Some(tokio_rustls::TlsStream::Server(_)))
    }

    /// On the server side, the name the client sent as SNI.
    pub fn server_name(&self) -> Option<String> {
        match &self.inner {
            Some(tokio_rustls::TlsStream::Server(s)) => s.get_ref().1.server_name().map(str::to_string),
            _ => None,
        }
    }

    /// The RFC 9266 `tls-exporter` channel binding.
    pub fn channel_binding(&self) -> Option<Vec<u8>> {
        let mut out = vec![0u8; 32];
        let label = b"EXPORTER-Channel-Binding";
        let done = match self.inner.as_ref()? {
            tokio_rustls::TlsStream::Client(s) => {
                s.get_ref().1.export_keying_material(&mut out, label, None).is_ok()
            }
            tokio_rustls::TlsStream::Server(s) => {
                s.get_ref().1.export_keying_material(&mut out, label, None).is_ok()
            }
        };
        done.then_some(out)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> AsyncResource for TlsStream<IO> {
    /// Sends close_notify; under the strict policy, waits (up to the close timeout) for the
    /// peer's and reports a ragged end as [`StreamError::Truncated`]. Then closes the
    /// transport. Idempotent.
    async fn aclose(&mut self) -> Result<()> {
        if self.inner.is_none() {
            return Ok(());
        }
        let result = self.close_gracefully().await;
        self.inner = None;
        result
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> TlsStream<IO> {
    async fn close_gracefully(&mut self) -> Result<()> {
        if !std::mem::replace(&mut self.eof_sent, true) {
            // A peer that is already gone cannot take our close_notify; that is not an error.
            if let Err(err) = self.inner()?.shutdown().await {
                tracing::debug!(error = %err, "sending close_notify failed");
            }
        }
        if self.policy != RaggedEofPolicy::Strict || self.peer_eof || self.truncated {
            return if self.truncated { Err(StreamError::Truncated) } else { Ok(()) };
        }
        let limit = self.close_timeout;
        let drain = async {
            let mut scratch = BytesMut::new();
            loop {
                scratch.clear();
                match self.read_some(&mut scratch, 16 * 1024).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(StreamError::Broken(_)) => return Ok(()),
                    Err(err) => return Err(err),
                }
            }
        };
        super::error::within(Phase::Close, limit, drain).await
    }
}

impl<IO> TypedAttributeProvider for TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + TypedAttributeProvider,
{
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        use attributes as a;
        fn answer<T: Send + 'static>(key: TypedAttribute<T>, value: T) -> Option<Result<AttributeValue>> {
            key.answer(value)
        }
        match name {
            n if n == a::VERSION.name() => self.protocol_version().and_then(|v| answer(a::VERSION, v)),
            n if n == a::CIPHER.name() => self.cipher_suite().and_then(|c| answer(a::CIPHER, c)),
            n if n == a::ALPN_PROTOCOL.name() => answer(a::ALPN_PROTOCOL, self.alpn_protocol()),
            n if n == a::SERVER_NAME.name() => answer(a::SERVER_NAME, self.server_name()),
            n if n == a::PEER_CERTIFICATES.name() => answer(
                a::PEER_CERTIFICATES,
                self.peer_certificates().iter().map(|c| c.as_ref().to_vec()).collect(),
            ),
            n if n == a::SERVER_SIDE.name() => answer(a::SERVER_SIDE, self.is_server()),
            n if n == a::RAGGED_EOF_POLICY.name() => answer(a::RAGGED_EOF_POLICY, self.policy),
            n if n == a::CHANNEL_BINDING.name() => {
                self.channel_binding().and_then(|c| answer(a::CHANNEL_BINDING, c))
            }
            _ => self.get_ref().and_then(|io| io.provide(name)),
        }
    }
}

impl<IO> ByteReceiveStream for TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + TypedAttributeProvider,
{
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        let mut buf = BytesMut::new();
        self.receive_into(&mut buf, max_bytes).await?;
        Ok(buf.freeze())
    }

    async fn receive_into(&mut self, buf: &mut BytesMut, max_bytes: usize) -> Result<usize> {
        if max_bytes == 0 {
            return Err(StreamError::InvalidMaxBytes);
        }
        match self.read_some(buf, max_bytes).await? {
            0 => Err(StreamError::EndOfStream),
            n => Ok(n),
        }
    }
}

impl<IO> ByteSendStream for TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + TypedAttributeProvider,
{
    /// Encrypts and sends all of `data`, flushing the records to the transport.
    async fn send(&mut self, data: Bytes) -> Result<()> {
        let eof_sent = self.eof_sent;
        let inner = self.inner()?;
        if eof_sent {
            return Err(StreamError::Closed);
        }
        inner.write_all(&data).await?;
        inner.flush().await?;
        Ok(())
    }
}

impl<IO> ByteStream for TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + TypedAttributeProvider,
{
    async fn send_eof(&mut self) -> Result<()> {
        match self.protocol_version() {
            Some(TlsVersion::V1_3) => {}
            version => {
                let version = version.map_or("an unknown version".to_string(), |v| v.to_string());
                return Err(StreamError::Unsupported(format!(
                    "send_eof() requires at least TLSv1.3; current session uses {version}"
                )));
            }
        }
        if !std::mem::replace(&mut self.eof_sent, true) {
            self.inner()?.shutdown().await?;
        }
        Ok(())
    }
}

/// TLS streams are tokio I/O too, with the ragged-EOF policy applied: under `Strict` a
/// ragged end reads as an `UnexpectedEof` error carrying [`StreamError::Truncated`], under
/// the lenient policies as the end of the stream. `poll_shutdown` sends close_notify (the
/// half-close of `send_eof`). This is what the relays split into halves.
impl<IO: AsyncRead + AsyncWrite + Unpin + Send> AsyncRead for TlsStream<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = &mut *self;
        if this.truncated {
            return std::task::Poll::Ready(Err(StreamError::Truncated.into()));
        }
        if this.peer_eof {
            return std::task::Poll::Ready(Ok(()));
        }
        let Some(inner) = this.inner.as_mut() else {
            return std::task::Poll::Ready(Err(StreamError::Closed.into()));
        };
        let before = buf.filled().len();
        let read = std::pin::Pin::new(&mut *inner).poll_read(cx, buf);
        // Also when the read has to wait: a record that asked for an answer (a refused
        // renegotiation) is answered now, not with our next write.
        flush_pending(inner, cx);
        match std::task::ready!(read) {
            Ok(()) => {
                if buf.filled().len() == before {
                    this.peer_eof = true;
                }
                std::task::Poll::Ready(Ok(()))
            }
            Err(err) if is_ragged(&err) => match this.policy {
                RaggedEofPolicy::Strict => {
                    this.truncated = true;
                    std::task::Poll::Ready(Err(StreamError::Truncated.into()))
                }
                policy => {
                    if policy == RaggedEofPolicy::Warn {
                        tracing::warn!(
                            "the TLS peer closed the connection without close_notify; the data may be truncated"
                        );
                    }
                    this.peer_eof = true;
                    std::task::Poll::Ready(Ok(()))
                }
            },
            Err(err) => std::task::Poll::Ready(Err(err)),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.inner.as_mut() {
            Some(inner) => std::pin::Pin::new(inner).poll_write(cx, buf),
            None => std::task::Poll::Ready(Err(StreamError::Closed.into())),
        }
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.inner.as_mut() {
            Some(inner) => std::pin::Pin::new(inner).poll_write_vectored(cx, bufs),
            None => std::task::Poll::Ready(Err(StreamError::Closed.into())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|inner| inner.is_write_vectored())
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(inner) => std::pin::Pin::new(inner).poll_flush(cx),
            None => std::task::Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        self.eof_sent = true;
        match self.inner.as_mut() {
            Some(inner) => std::pin::Pin::new(inner).poll_shutdown(cx),
            None => std::task::Poll::Ready(Ok(())),
        }
    }
}
