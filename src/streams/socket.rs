//! Socket byte streams: TCP and UNIX (AnyIO's `SocketStream`, `connect_tcp`,
//! `connect_unix`).
//!
//! Both are [`SocketStream<T>`] over the tokio socket type, with `send_eof` as
//! `shutdown(SHUT_WR)` and the socket attributes (family, local and remote address and
//! port) computed when looked up.
//!
//! [`connect_tcp`] resolves the name, tries every address, and races IPv6 and IPv4 as
//! RFC 8305 (Happy Eyeballs v2) describes: addresses alternate between the families, a new
//! attempt starts every 250 ms while earlier ones are pending (or at once when one fails),
//! and the first connection wins. One timeout bounds the whole phase and names it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::abc::{AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream};
use super::attrs::{Address, AddressFamily, AttributeValue, TypedAttributeProvider, socket};
use super::error::{Phase, Result, StreamError};
use super::io::{IoReceiveStream, IoSendStream};

/// RFC 8305's recommended Connection Attempt Delay.
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// What a socket type tells about its addresses.
pub trait SocketIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// This side's address.
    fn local_address(&self) -> io::Result<Address>;
    /// The peer's address.
    fn remote_address(&self) -> io::Result<Address>;
}

impl SocketIo for tokio::net::TcpStream {
    fn local_address(&self) -> io::Result<Address> {
        self.local_addr().map(Address::Inet)
    }
    fn remote_address(&self) -> io::Result<Address> {
        self.peer_addr().map(Address::Inet)
    }
}

impl SocketIo for crate::streams::platform::net::UnixStream {
    fn local_address(&self) -> io::Result<Address> {
        self.local_addr().map(|a| Address::Unix(a.as_pathname().map(Path::to_path_buf)))
    }
    fn remote_address(&self) -> io::Result<Address> {
        self.peer_addr().map(|a| Address::Unix(a.as_pathname().map(Path::to_path_buf)))
    }
}

/// A connected socket as a byte stream.
#[derive(Debug)]
pub struct SocketStream<T> {
    /// `None` once closed.
    io: Option<T>,
    eof_sent: bool,
    observer: crate::streams::observe::Slot,
}

/// A TCP connection.
pub type TcpStream = SocketStream<tokio::net::TcpStream>;
/// A UNIX domain socket connection.
pub type UnixStream = SocketStream<crate::streams::platform::net::UnixStream>;

impl<T: SocketIo> SocketStream<T> {
    /// Wraps a connected socket.
    pub fn new(io: T) -> Self {
        SocketStream { io: Some(io), eof_sent: false, observer: Default::default() }
    }

    /// From now on, every chunk this socket receives and sends, and the end of each
    /// direction, are reported to `observer` (below a TLS stream: the ciphertext).
    pub fn observe(&mut self, observer: std::sync::Arc<dyn crate::streams::observe::Observer>) {
        self.observer.set(observer);
    }

    /// Whether an observer is set: such a socket must stay inside this stream (handing
    /// the socket itself to a zero-copy path would bypass the observer).
    pub fn is_observed(&self) -> bool {
        self.observer.is_set()
    }

    /// The observer set by [`observe`](Self::observe).
    pub fn observer(&self) -> Option<std::sync::Arc<dyn crate::streams::observe::Observer>> {
        self.observer.get()
    }

    /// The socket, unless closed.
    pub fn get_ref(&self) -> Option<&T> {
        self.io.as_ref()
    }

    /// The socket, for layers that drive it directly (TLS, splice).
    ///
    /// # Errors
    /// [`StreamError::Closed`] if the stream was closed.
    pub fn into_inner(self) -> Result<T> {
        self.io.ok_or(StreamError::Closed)
    }

    fn io(&mut self) -> Result<&mut T> {
        self.io.as_mut().ok_or(StreamError::Closed)
    }
}

impl TcpStream {
    /// Splits into independently owned halves, for a full-duplex relay. Closing the send
    /// half sends the FIN.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if the stream was closed.
    pub fn into_split(
        self,
    ) -> Result<(
        IoReceiveStream<tokio::net::tcp::OwnedReadHalf>,
        IoSendStream<tokio::net::tcp::OwnedWriteHalf>,
    )> {
        let (r, w) = self.into_inner()?.into_split();
        Ok((IoReceiveStream::new(r), IoSendStream::new(w)))
    }
}

impl<T: SocketIo> AsyncResource for SocketStream<T> {
    /// Closes the socket (the kernel sends FIN, or RST if unread data is pending).
    async fn aclose(&mut self) -> Result<()> {
        self.io = None;
        Ok(())
    }
}

impl<T: SocketIo> TypedAttributeProvider for SocketStream<T> {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        let io = self.io.as_ref()?;
        let boxed = |r: io::Result<Address>| -> Result<AttributeValue> {
            r.map(|a| Box::new(a) as AttributeValue).map_err(StreamError::from)
        };
        let port = |r: io::Result<Address>| -> Option<Result<AttributeValue>> {
            match r {
                Ok(Address::Inet(a)) => Some(Ok(Box::new(a.port()))),
                Ok(Address::Unix(_)) => None,
                Err(e) => Some(Err(e.into())),
            }
        };
        match name {
            n if n == socket::FAMILY.name() => {
                let family = match io.local_address() {
                    Ok(Address::Inet(SocketAddr::V4(_))) => AddressFamily::Inet,
                    Ok(Address::Inet(SocketAddr::V6(_))) => AddressFamily::Inet6,
                    Ok(Address::Unix(_)) => AddressFamily::Unix,
                    Err(e) => return Some(Err(e.into())),
                };
                socket::FAMILY.answer(family)
            }
            n if n == socket::LOCAL_ADDRESS.name() => Some(boxed(io.local_address())),
            n if n == socket::REMOTE_ADDRESS.name() => Some(boxed(io.remote_address())),
            n if n == socket::LOCAL_PORT.name() => port(io.local_address()),
            n if n == socket::REMOTE_PORT.name() => port(io.remote_address()),
            _ => None,
        }
    }
}

impl<T: SocketIo> ByteReceiveStream for SocketStream<T> {
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        let mut buf = BytesMut::new();
        self.receive_into(&mut buf, max_bytes).await?;
        Ok(buf.freeze())
    }

    async fn receive_into(&mut self, buf: &mut BytesMut, max_bytes: usize) -> Result<usize> {
        if max_bytes == 0 {
            return Err(StreamError::InvalidMaxBytes);
        }
        self.io()?;
        buf.reserve(max_bytes);
        // Through this stream's own tokio I/O, which an observer sees.
        let n = self.read_buf(&mut bytes::BufMut::limit(&mut *buf, max_bytes)).await?;
        if n == 0 {
            return Err(StreamError::EndOfStream);
        }
        Ok(n)
    }
}

impl<T: SocketIo> ByteSendStream for SocketStream<T> {
    async fn send(&mut self, data: Bytes) -> Result<()> {
        let eof_sent = self.eof_sent;
        self.io()?;
        if eof_sent {
            return Err(StreamError::Closed);
        }
        self.write_all(&data).await?;
        Ok(())
    }
}

impl<T: SocketIo> ByteStream for SocketStream<T> {
    /// `shutdown(SHUT_WR)`: the peer reads the end of the stream; we keep receiving.
    async fn send_eof(&mut self) -> Result<()> {
        let eof_sent = std::mem::replace(&mut self.eof_sent, true);
        self.io()?;
        if !eof_sent {
            self.shutdown().await?;
        }
        Ok(())
    }
}

/// Which address families a connection may use (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FamilyPreference {
    /// Both, IPv6 first (RFC 8305).
    #[default]
    Any,
    /// IPv4 only.
    V4Only,
    /// IPv6 only.
    V6Only,
}

impl FamilyPreference {
    /// From `-4` and `-6` (clap keeps them exclusive).
    pub fn from_flags(ipv4: bool, ipv6: bool) -> Self {
        match (ipv4, ipv6) {
            (true, _) => FamilyPreference::V4Only,
            (_, true) => FamilyPreference::V6Only,
            _ => FamilyPreference::Any,
        }
    }

    pub(crate) fn admits(self, addr: &SocketAddr) -> bool {
        match self {
            FamilyPreference::Any => true,
            FamilyPreference::V4Only => addr.is_ipv4(),
            FamilyPreference::V6Only => addr.is_ipv6(),
        }
    }
}

/// Resolves `host` (a name or an IP literal, without brackets) for `port`.
///
/// # Errors
/// [`StreamError::Resolve`] if the name does not resolve, or to no address of the
/// admitted families.
pub async fn resolve(host: &str, port: u16, family: FamilyPreference) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) if !is_valid_host_name(host) => {
            return Err(StreamError::Resolve {
                host: host.to_string(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a valid host name"),
            });
        }
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| StreamError::Resolve { host: host.to_string(), source })?
            .collect(),
    };
    let admitted: Vec<SocketAddr> = addrs.into_iter().filter(|a| family.admits(a)).collect();
    if admitted.is_empty() {
        let what = match family {
            FamilyPreference::Any => "no address",
            FamilyPreference::V4Only => "no IPv4 address",
            FamilyPreference::V6Only => "no IPv6 address",
        };
        return Err(StreamError::Resolve { host: host.to_string(), source: io::Error::other(what) });
    }
    Ok(admitted)
}

/// Whether `host` can be a DNS name at all (after IDNA conversion): labels of 1 to 63
/// letters, digits, `-` or `_`, 253 characters at most. Checked before asking the resolver,
/// so that a mistyped name fails at once and sends no query.
pub fn is_valid_host_name(host: &str) -> bool {
    let Ok(ascii) = idna::domain_to_ascii(host) else { return false };
    let ascii = ascii.strip_suffix('.').unwrap_or(&ascii);
    !ascii.is_empty()
        && ascii.len() <= 253
        && ascii.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Orders addresses as RFC 8305 §4 asks: alternate families, starting with the family
/// of the first address the resolver returned (IPv6 when the system prefers it).
pub fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut first, mut second): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    first.reverse();
    second.reverse();
    let mut out = Vec::with_capacity(first.len() + second.len());
    loop {
        match (first.pop(), second.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Options of [`connect_tcp`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// Admitted families.
    pub family: FamilyPreference,
    /// The limit for resolving and connecting together; `None` waits as long as the OS does.
    pub timeout: Option<Duration>,
    /// The local address (and port, unless 0) to connect from (`nc -s -p`, socat's
    /// `bind=`): only the target's addresses of its family are tried, one at a time.
    pub source: Option<SocketAddr>,
    /// TCP keepalive: probes after this long idle.
    pub keepalive: Option<Duration>,
}

/// Turns TCP keepalive on for `socket`: the first probe after `idle` without traffic.
///
/// # Errors
/// The socket option's.
pub fn set_keepalive(
    socket: impl crate::streams::platform::AsSocketHandle,
    idle: Duration,
) -> io::Result<()> {
    let keepalive =
        socket2::TcpKeepalive::new().with_time(idle).with_interval(idle.min(Duration::from_secs(75)));
    socket2::SockRef::from(&socket).set_tcp_keepalive(&keepalive)
}

/// One connection attempt from `source` to `addr`.
async fn connect_from(addr: SocketAddr, source: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if source.port() != 0 {
        // A fixed port is often reused at once (nc -p): TIME_WAIT must not refuse it.
        socket.set_reuseaddr(true)?;
    }
    socket
        .bind(source)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind the source address {source}: {e}")))?;
    socket.connect(addr).await
}

/// The addresses tried from `source`, one at a time.
async fn connect_sequentially(addrs: &[SocketAddr], source: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    let mut last_error = None;
    for addr in addrs.iter().filter(|a| a.is_ipv4() == source.is_ipv4()) {
        match connect_from(*addr, source).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last_error = Some(err),
        }
    }
    let family = if source.is_ipv4() { "IPv4" } else { "IPv6" };
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("no {family} address to connect to from {source}"),
        )
    }))
}

/// Connects to `host:port`, trying every address with Happy Eyeballs.
///
/// # Errors
/// [`StreamError::Resolve`]; [`StreamError::Connect`] with the last attempt's error when
/// every address failed; [`StreamError::Timeout`] with [`Phase::Connect`].
pub async fn connect_tcp(host: &str, port: u16, options: ConnectOptions) -> Result<TcpStream> {
    let attempt = async {
        let addrs = interleave_families(resolve(host, port, options.family).await?);
        let connected = match options.source {
            Some(from) => connect_sequentially(&addrs, from).await,
            None => race_connect(&addrs).await,
        };
        connected.map_err(|source| StreamError::Connect { target: host_port(host, port), source })
    };
    let io = match options.timeout {
        Some(limit) => tokio::time::timeout(limit, attempt)
            .await
            .map_err(|_| StreamError::Timeout { phase: Phase::Connect, after: limit })??,
        None => attempt.await?,
    };
    // Relays write in large batches; Nagle would only add latency to the last segment.
    io.set_nodelay(true)?;
    if let Some(idle) = options.keepalive {
        set_keepalive(&io, idle)?;
    }
    Ok(SocketStream::new(io))
}

/// `host:port`, with brackets around an IPv6 literal.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

async fn race_connect(addrs: &[SocketAddr]) -> io::Result<tokio::net::TcpStream> {
    let mut pending = addrs.iter();
    let mut attempts = FuturesUnordered::new();
    let mut last_error = None;
    if let Some(addr) = pending.next() {
        attempts.push(tokio::net::TcpStream::connect(*addr));
    }
    while !attempts.is_empty() {
        let delay = tokio::time::sleep(CONNECTION_ATTEMPT_DELAY);
        tokio::pin!(delay);
        tokio::select! {
            Some(result) = attempts.next() => match result {
                Ok(stream) => return Ok(stream),
                Err(err) => {
                    tracing::debug!(error = %err, "connection attempt failed");
                    last_error = Some(err);
                    // A failure starts the next attempt at once.
                    if let Some(addr) = pending.next() {
                        attempts.push(tokio::net::TcpStream::connect(*addr));
                    }
                }
            },
            () = &mut delay => {
                if let Some(addr) = pending.next() {
                    attempts.push(tokio::net::TcpStream::connect(*addr));
                }
            }
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no address to connect to")))
}

/// Connects to the UNIX socket at `path`.
///
/// # Errors
/// [`StreamError::Connect`] naming the path.
pub async fn connect_unix(path: impl AsRef<Path>) -> Result<UnixStream> {
    let path = path.as_ref();
    let io = crate::streams::platform::net::UnixStream::connect(path)
        .await
        .map_err(|source| StreamError::Connect { target: format!("unix:{}", path.display()), source })?;
    Ok(SocketStream::new(io))
}

/// A UNIX socket path that is removed when the listener that created it is dropped, but
/// only if it is still the socket bound then (same device and inode): a file put there
/// since, or another server's socket that replaced ours, is left alone.
#[derive(Debug)]
pub(crate) struct SocketFile {
    pub(crate) path: PathBuf,
    /// Device and inode of the socket file just after `bind`.
    id: Option<(u64, u64)>,
}

impl SocketFile {
    /// A socket someone else bound and passed to us: its file is theirs to remove.
    #[cfg_attr(not(unix), allow(dead_code, reason = "no socket activation on Windows"))]
    pub(crate) fn passed() -> SocketFile {
        SocketFile { path: PathBuf::new(), id: None }
    }

    /// The socket file just bound at `path`.
    pub(crate) fn bound(path: PathBuf) -> SocketFile {
        let id = file_id(&path).filter(|(_, is_socket)| *is_socket).map(|(id, _)| id);
        SocketFile { path, id }
    }
}

/// Device and inode of `path` (not following a symbolic link), and whether it is a socket.
fn file_id(path: &std::path::Path) -> Option<((u64, u64), bool)> {
    use crate::streams::platform::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some(((meta.dev(), meta.ino()), meta.file_type().is_socket()))
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match (self.id, file_id(&self.path)) {
            (Some(ours), Some((now, true))) if ours == now => {
                let _ = std::fs::remove_file(&self.path);
            }
            (_, None) => {}
            _ => {
                tracing::debug!(path = %self.path.display(), "the socket path is no longer ours; left alone")
            }
        }
    }
}

fn closed_io() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, StreamError::Closed)
}

/// Socket streams are tokio I/O too, so that TLS runs straight over the socket while the
/// socket's attributes stay reachable through the TLS stream.
impl<T: SocketIo> AsyncRead for SocketStream<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = match this.io.as_mut() {
            Some(io) => std::pin::Pin::new(io).poll_read(cx, buf),
            None => return std::task::Poll::Ready(Err(closed_io())),
        };
        if let std::task::Poll::Ready(Ok(())) = polled {
            this.observer.read(before, buf);
        }
        polled
    }
}

impl<T: SocketIo> AsyncWrite for SocketStream<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let polled = match self.io.as_mut() {
            Some(io) => std::pin::Pin::new(io).poll_write(cx, buf),
            None => return std::task::Poll::Ready(Err(closed_io())),
        };
        if let std::task::Poll::Ready(Ok(n)) = polled {
            self.observer.wrote(buf, n);
        }
        polled
    }

    /// Passed through, so that TLS writes its queued records with one `writev`.
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        let polled = match self.io.as_mut() {
            Some(io) => std::pin::Pin::new(io).poll_write_vectored(cx, bufs),
            None => return std::task::Poll::Ready(Err(closed_io())),
        };
        if let std::task::Poll::Ready(Ok(n)) = polled {
            self.observer.wrote_vectored(bufs, n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.io.as_mut() {
            Some(io) => std::pin::Pin::new(io).poll_flush(cx),
            None => std::task::Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let polled = match self.io.as_mut() {
            Some(io) => std::pin::Pin::new(io).poll_shutdown(cx),
            None => return std::task::Poll::Ready(Ok(())),
        };
        if let std::task::Poll::Ready(Ok(())) = polled {
            self.observer.shut();
        }
        polled
    }
}
