//! Opening a client's stack: a connection (TCP with Happy Eyeballs, or UNIX), and TLS on
//! it when asked. `connect` and `pipe`'s `tcp:`/`tls:`/`unix:` endpoints open theirs here.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::endpoint::EndpointOptions;
use crate::streams::error::within;
use crate::streams::listener::Connection;
use crate::streams::socket::{FamilyPreference, connect_tcp, connect_unix};
use crate::streams::tls::TlsStream;
use crate::streams::{Address, Phase, StreamError};

/// Where a client connects.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A host (name or address) and a port.
    Tcp(&'a str, u16),
    /// A UNIX socket's path.
    Unix(&'a Path),
}

/// A plain socket, kept whole: stdio or another socket can be spliced to and from it.
#[derive(Debug)]
pub enum PlainSocket {
    /// TCP.
    Tcp(tokio::net::TcpStream),
    /// A UNIX stream socket.
    Unix(crate::platform::net::UnixStream),
}

impl PlainSocket {
    /// The socket of an accepted or connected [`Connection`].
    ///
    /// # Errors
    /// [`StreamError::Closed`] if the connection was closed.
    pub fn from_connection(connection: Connection) -> Result<Self, StreamError> {
        Ok(match connection {
            Connection::Tcp(s) => PlainSocket::Tcp(s.into_inner()?),
            Connection::Unix(s) => PlainSocket::Unix(s.into_inner()?),
        })
    }
}

/// An opened connection.
pub enum Opened {
    /// No TLS.
    Plain(PlainSocket),
    /// A finished TLS handshake (boxed: a TLS session's state is large, a plain
    /// connection's is not).
    Tls(Box<TlsStream<Connection>>),
    /// No TLS, and its traffic observed ([`crate::tap`]): the socket stays inside the
    /// stream that observes it (no zero-copy path around it).
    Observed(Box<Connection>),
}

impl Opened {
    /// A connection without TLS: its socket kept whole for zero-copy, unless it is
    /// observed.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if the connection was closed.
    pub fn plain(connection: Connection) -> Result<Opened, StreamError> {
        if connection.observer().is_some() {
            return Ok(Opened::Observed(Box::new(connection)));
        }
        PlainSocket::from_connection(connection).map(Opened::Plain)
    }
}

/// A TLS stream as one boxed transport; its plaintext observed when its socket is
/// ([`Observer::above`](crate::streams::observe::Observer::above)).
pub fn tls_io(tls: TlsStream<Connection>) -> Box<dyn Io> {
    let Some(observer) = tls.get_ref().and_then(Connection::observer) else { return Box::new(tls) };
    let mut fields = vec![
        ("tls", tls.protocol_version().map(|v| v.to_string()).unwrap_or_default()),
        ("cipher", tls.cipher_suite().unwrap_or_default()),
    ];
    if let Some(sni) = tls.server_name() {
        fields.push(("sni", sni));
    }
    if let Some(alpn) = tls.alpn_protocol() {
        fields.push(("alpn", String::from_utf8_lossy(&alpn).into_owned()));
    }
    observer.event("handshake", &fields);
    match observer.above() {
        Some(above) => Box::new(crate::streams::observe::Observed::new(tls, above)),
        None => Box::new(tls),
    }
}

/// Any bidirectional transport, boxed once per connection.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection ready for a job: a plain socket kept whole (zero-copy capable), or
/// anything else (TLS) boxed once.
pub enum Net {
    /// A plain socket (zero-copy capable).
    Plain(PlainSocket),
    /// Anything else (TLS).
    Boxed(Box<dyn Io>),
}

impl Net {
    /// The transport as one boxed stream.
    pub fn into_boxed(self) -> Box<dyn Io> {
        match self {
            Net::Plain(PlainSocket::Tcp(s)) => Box::new(s),
            Net::Plain(PlainSocket::Unix(s)) => Box::new(s),
            Net::Boxed(io) => io,
        }
    }
}

impl From<Opened> for Net {
    fn from(opened: Opened) -> Self {
        match opened {
            Opened::Plain(socket) => Net::Plain(socket),
            Opened::Tls(tls) => Net::Boxed(tls_io(*tls)),
            Opened::Observed(connection) => Net::Boxed(connection),
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Resolving or connecting failed (or timed out).
    #[error(transparent)]
    Connect(StreamError),
    /// The TLS handshake with `target` failed (or timed out).
    #[error("TLS handshake with {target} failed")]
    Handshake {
        /// The target as given.
        target: String,
        /// Why.
        #[source]
        source: StreamError,
    },
    /// The STARTTLS negotiation with `target` failed (or timed out).
    #[error("STARTTLS ({protocol}) with {target} failed")]
    Starttls {
        /// The target as given.
        target: String,
        /// The protocol negotiated.
        protocol: crate::stack::starttls::Protocol,
        /// Why.
        #[source]
        source: crate::stack::starttls::StarttlsError,
    },
    /// Reaching `target` through `proxy` failed: connecting to the proxy, its answer
    /// (a [`ProxyRefusal`](super::proxy::ProxyRefusal) inside a [`StreamError::Connect`]),
    /// or the time limit of the whole exchange.
    #[error("cannot connect to {target} through proxy {proxy}")]
    Proxy {
        /// The target as given.
        target: String,
        /// The proxy, credentials redacted.
        proxy: String,
        /// Why.
        #[source]
        source: StreamError,
    },
}

/// Sends the PROXY header of `version` first on a connection just opened: the one
/// `options.proxy_origin` names (a client `pipe` accepted), else the socket's own source
/// and destination (a UNIX socket: LOCAL, or v1's UNKNOWN). Within the connect timeout.
async fn send_proxy_header(
    connection: &mut Connection,
    version: crate::proxy_protocol::Version,
    options: &EndpointOptions,
) -> Result<(), StreamError> {
    use crate::proxy_protocol::{Header, send};
    let header = match (&options.proxy_origin, &*connection) {
        (Some(origin), _) => origin.header(version),
        (None, Connection::Tcp(tcp)) => {
            let socket = tcp.get_ref();
            match socket.map(|s| (s.local_addr(), s.peer_addr())) {
                Some((Ok(local), Ok(peer))) => Header::proxied(version, local, peer),
                _ => Header::local(version),
            }
        }
        (None, Connection::Unix(_)) => Header::local(version),
    };
    let write = async { send(connection, &header).await.map_err(StreamError::from) };
    within(Phase::Connect, options.connect_timeout, write).await
}

/// The transport to `target` (a proxy's tunnel, TCP or UNIX); `connected` is told the
/// peer's address (none through a proxy, when the proxy is reached) once; with `retry=`,
/// failed attempts are said and tried again after a growing wait.
async fn transport_retried(
    target: Target<'_>,
    display: &str,
    options: &EndpointOptions,
    family: FamilyPreference,
    connected: &mut Option<impl FnOnce(Option<SocketAddr>)>,
) -> Result<Connection, OpenError> {
    let mut n = 0;
    loop {
        let err = match transport(target, display, options, family, connected).await {
            Ok(done) => return Ok(done),
            Err(err) => err,
        };
        n += 1;
        let Some(wait) = options.retry.and_then(|r| r.wait_before(n)) else { return Err(err) };
        let describe = options.retry.map(|r| r.describe(n)).unwrap_or_default();
        tracing::warn!(
            "{}; {describe} in {}",
            crate::words::one_line(&err),
            crate::streams::error::format_duration(wait)
        );
        tokio::time::sleep(wait).await;
    }
}

/// One attempt of [`transport_retried`].
async fn transport(
    target: Target<'_>,
    display: &str,
    options: &EndpointOptions,
    family: FamilyPreference,
    connected: &mut Option<impl FnOnce(Option<SocketAddr>)>,
) -> Result<Connection, OpenError> {
    let mut tell = |peer: Option<SocketAddr>| {
        if let Some(connected) = connected.take() {
            connected(peer);
        }
    };
    Ok(match (target, &options.proxy) {
        // Through a proxy: a tunnel to the target, then on as a direct connection.
        (Target::Tcp(host, port), Some(proxy)) => {
            let through = format!("{display} through proxy {proxy}");
            let reached = |address: Option<SocketAddr>| {
                match address {
                    Some(address) => tracing::info!("connected to the proxy {proxy} at {address}"),
                    None => tracing::info!("connected to the proxy {proxy}"),
                }
                tell(None);
            };
            let connect = options.connect_options(family);
            let stream =
                super::proxy::tunnel(proxy, host, port, connect, options.connect_timeout, &through, reached)
                    .await
                    .map_err(|source| OpenError::Proxy {
                        target: display.to_string(),
                        proxy: proxy.to_string(),
                        source,
                    })?;
            // Relays write in large batches; Nagle would only add latency (as connect_tcp).
            stream.set_nodelay(true).map_err(|e| OpenError::Connect(e.into()))?;
            if let Some(idle) = options.keepalive {
                crate::streams::socket::set_keepalive(&stream, idle)
                    .map_err(|e| OpenError::Connect(e.into()))?;
            }
            Connection::Tcp(crate::streams::socket::SocketStream::new(stream))
        }
        (Target::Tcp(host, port), None) => {
            let tcp =
                connect_tcp(host, port, options.connect_options(family)).await.map_err(OpenError::Connect)?;
            tell(tcp.get_ref().and_then(|s| s.peer_addr().ok()));
            Connection::Tcp(tcp)
        }
        (Target::Unix(path), _) => {
            let unix = within(Phase::Connect, options.connect_timeout, connect_unix(path))
                .await
                .map_err(OpenError::Connect)?;
            tell(None);
            Connection::Unix(unix)
        }
    })
}

/// Connects to `target` (`connected` is told the peer's address, before any handshake),
/// then, with `tls` (the client configuration and the name to verify), runs the TLS
/// handshake within the options' handshake limit; with `options.starttls`, the STARTTLS
/// negotiation ([`crate::stack::starttls`]) comes first, within a limit of its own.
///
/// # Errors
/// [`OpenError::Connect`], [`OpenError::Starttls`], [`OpenError::Handshake`]; `display`
/// names the target in the latter two.
pub async fn connect(
    target: Target<'_>,
    display: &str,
    options: &EndpointOptions,
    family: FamilyPreference,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    connected: impl FnOnce(Option<SocketAddr>),
) -> Result<Opened, OpenError> {
    // Mutable for what is said in plaintext first: the PROXY header, then STARTTLS.
    let mut connected = Some(connected);
    let mut connection = transport_retried(target, display, options, family, &mut connected).await?;
    if let Some(recorder) = &options.recorder {
        // Observed from here: what a proxy tunnel said before is not the target's traffic.
        let local = connection.local_address().unwrap_or(Address::Unix(None));
        let peer = connection.remote_address().unwrap_or(Address::Unix(None));
        connection.observe(Arc::new(crate::tap::SocketTap(recorder.0.connection(&local, &peer, false))));
    }
    if let Some(version) = options.proxy_protocol {
        send_proxy_header(&mut connection, version, options).await.map_err(OpenError::Connect)?;
    }
    let Some((config, name)) = tls else {
        return Opened::plain(connection).map_err(OpenError::Connect);
    };
    if let Some(protocol) = options.starttls {
        let host = match target {
            Target::Tcp(host, _) => host,
            Target::Unix(_) => "localhost",
        };
        let how = crate::stack::starttls::Negotiation {
            protocol,
            server_name: options.sni.as_deref().unwrap_or(host),
            ehlo: options.ehlo.as_deref(),
            limit: options.handshake_limit(),
        };
        crate::stack::starttls::negotiate(&mut connection, how)
            .await
            .map_err(|source| OpenError::Starttls { target: display.to_string(), protocol, source })?;
    }
    let handshake = TlsStream::connect(connection, config, name, options.ragged_eof_policy());
    match within(Phase::Handshake, Some(options.handshake_limit()), handshake).await {
        Ok(tls) => Ok(Opened::Tls(Box::new(tls))),
        Err(source) => Err(OpenError::Handshake { target: display.to_string(), source }),
    }
}
