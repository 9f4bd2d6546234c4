//! Listeners: TCP and UNIX sockets that accept connections (AnyIO's `SocketListener`,
//! `MultiListener`, `create_tcp_listener`, `create_unix_listener`).
//!
//! One [`SocketListener`] may listen on several sockets at once (AnyIO's `MultiListener`):
//! a bare port binds `127.0.0.1` and `::1` (docs/design.md §4.5), and TCP and UNIX sockets can
//! be merged. `accept` takes whichever connection comes first, in turn across sockets.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::task::Poll;

use bytes::{Bytes, BytesMut};

use super::abc::{AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream};
use super::attrs::{Address, AttributeValue, TypedAttributeProvider};
use super::error::{Result, StreamError};
use super::socket::{SocketFile, SocketStream, TcpStream, UnixStream};

/// Something that accepts connections.
pub trait Listener: Send + 'static {
    /// What a connection gives.
    type Stream: Send + 'static;

    /// Waits for the next connection and returns it with the peer's address.
    ///
    /// # Errors
    /// The OS error of `accept(2)`; the caller decides whether it is transient.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, Address)>> + Send;

    /// The addresses listened on.
    fn local_addresses(&self) -> Vec<Address>;
}

enum RawListener {
    Tcp(tokio::net::TcpListener),
    Unix(crate::streams::platform::net::UnixListener, SocketFile),
}

/// A connection accepted by a [`SocketListener`].
#[derive(Debug)]
pub enum Connection {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over a UNIX socket.
    Unix(UnixStream),
}

/// Listens on one or more TCP and UNIX sockets.
pub struct SocketListener {
    sockets: Vec<RawListener>,
    next: usize,
    observers: Option<std::sync::Arc<dyn crate::streams::observe::Observers>>,
    admission: Option<std::sync::Arc<dyn Admission>>,
    refusals: Refusals,
}

/// Who may connect: asked for each accepted connection before anything is read from it
/// or written to it ([`SocketListener::admit_with`]).
pub trait Admission: Send + Sync {
    /// `Ok` to serve a connection from `peer`; otherwise why not (it is closed at once).
    ///
    /// # Errors
    /// The reason, for the log line.
    fn admit(&self, peer: &Address) -> std::result::Result<(), String>;
}

/// Refusals said in a row before they are only counted, per [`REFUSAL_WINDOW`].
const REFUSALS_SAID: u32 = 10;
/// The window of [`REFUSALS_SAID`]: a flood of refused clients is a few lines, not one each.
const REFUSAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Rate-limited lines for refused connections.
#[derive(Debug, Default)]
struct Refusals {
    since: Option<std::time::Instant>,
    said: u32,
    hushed: u64,
}

impl Refusals {
    fn note(&mut self, peer: &Address, why: &str) {
        let now = std::time::Instant::now();
        if self.since.is_none_or(|since| now.duration_since(since) >= REFUSAL_WINDOW) {
            if self.hushed > 0 {
                tracing::warn!(
                    "{} more connections refused in the last {}s",
                    self.hushed,
                    REFUSAL_WINDOW.as_secs()
                );
            }
            *self = Refusals { since: Some(now), said: 0, hushed: 0 };
        }
        if self.said < REFUSALS_SAID {
            self.said += 1;
            tracing::warn!("refused a connection from {peer}: {why}");
            if self.said == REFUSALS_SAID {
                tracing::warn!(
                    "more refusals in the next {}s are counted, not shown",
                    REFUSAL_WINDOW.as_secs()
                );
            }
        } else {
            self.hushed += 1;
        }
    }
}

impl std::fmt::Debug for SocketListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketListener").field("addresses", &self.local_addresses()).finish()
    }
}

fn bind_error(addr: impl std::fmt::Display, source: io::Error) -> StreamError {
    StreamError::Bind { addr: addr.to_string(), source }
}

impl SocketListener {
    /// Listens on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// [`StreamError::Bind`] naming the address.
    pub async fn bind_tcp(addr: SocketAddr) -> Result<Self> {
        Self::bind_tcp_with(addr, ListenOptions::default()).await
    }

    /// [`bind_tcp`](Self::bind_tcp) with `options`.
    ///
    /// # Errors
    /// [`StreamError::Bind`] naming the address.
    pub async fn bind_tcp_with(addr: SocketAddr, options: ListenOptions) -> Result<Self> {
        let listener = bind_tcp_socket_with(addr, options).map_err(|e| bind_error(addr, e))?;
        Ok(SocketListener {
            sockets: vec![RawListener::Tcp(listener)],
            next: 0,
            observers: None,
            admission: None,
            refusals: Refusals::default(),
        })
    }

    /// Listens on `port` on the loopback addresses, `127.0.0.1` and `::1`, with the same
    /// port on both (port 0 picks one free on both). A machine without IPv6 gets IPv4 only.
    ///
    /// # Errors
    /// [`StreamError::Bind`] if IPv4 loopback cannot be bound, or `::1` exists but the
    /// port is taken there.
    pub async fn bind_tcp_loopback(port: u16) -> Result<Self> {
        Self::bind_tcp_loopback_with(port, ListenOptions::default()).await
    }

    /// [`bind_tcp_loopback`](Self::bind_tcp_loopback) with `options`.
    ///
    /// # Errors
    /// As [`bind_tcp_loopback`](Self::bind_tcp_loopback).
    pub async fn bind_tcp_loopback_with(port: u16, options: ListenOptions) -> Result<Self> {
        // With port 0, the port the kernel picks for IPv4 may be taken on IPv6: retry a few times.
        let mut last = None;
        for _ in 0..8 {
            let v4_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let v4 = bind_tcp_socket_with(v4_addr, options).map_err(|e| bind_error(v4_addr, e))?;
            let chosen = v4.local_addr()?.port();
            let v6_addr = SocketAddr::from((Ipv6Addr::LOCALHOST, chosen));
            match bind_tcp_socket_with(v6_addr, options) {
                Ok(v6) => {
                    return Ok(SocketListener {
                        sockets: vec![RawListener::Tcp(v4), RawListener::Tcp(v6)],
                        next: 0,
                        observers: None,
                        admission: None,
                        refusals: Refusals::default(),
                    });
                }
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported) =>
                {
                    tracing::debug!(error = %e, "no IPv6 loopback; listening on IPv4 only");
                    return Ok(SocketListener {
                        sockets: vec![RawListener::Tcp(v4)],
                        next: 0,
                        observers: None,
                        admission: None,
                        refusals: Refusals::default(),
                    });
                }
                Err(e) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                Err(e) => return Err(bind_error(v6_addr, e)),
            }
        }
        Err(bind_error(format!("[::1]:{port}"), last.unwrap_or_else(|| io::Error::other("no free port"))))
    }

    /// Listens on the UNIX socket `path`. A stale socket file left by a dead server is
    /// replaced; a live one (something accepts on it) or a file that is not a socket is
    /// an error. The socket file is removed when the listener is dropped.
    ///
    /// # Errors
    /// [`StreamError::Bind`] naming the path.
    pub async fn bind_unix(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = || format!("unix:{}", path.display());
        let listener = match crate::streams::platform::net::UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                use crate::streams::platform::fs::FileTypeExt;
                let is_socket =
                    std::fs::symlink_metadata(path).map(|m| m.file_type().is_socket()).unwrap_or(false);
                if !is_socket {
                    return Err(bind_error(
                        name(),
                        io::Error::new(e.kind(), "the path exists and is not a socket"),
                    ));
                }
                // Only a refused connection proves nobody listens. A full accept queue
                // (EAGAIN), a timeout or a permission error say nothing of the kind: the
                // socket may be a live server's, and is never removed then.
                let probe = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    crate::streams::platform::net::UnixStream::connect(path),
                )
                .await;
                match probe {
                    Ok(Ok(_)) => {
                        return Err(bind_error(
                            name(),
                            io::Error::new(e.kind(), "another server is listening there"),
                        ));
                    }
                    Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionRefused => {
                        tracing::info!(path = %path.display(), "removing stale socket file");
                        std::fs::remove_file(path).map_err(|e| bind_error(name(), e))?;
                        crate::streams::platform::net::UnixListener::bind(path)
                            .map_err(|e| bind_error(name(), e))?
                    }
                    Ok(Err(err)) => {
                        return Err(bind_error(
                            name(),
                            io::Error::new(
                                e.kind(),
                                format!(
                                    "a socket file is there and connecting to it failed ({err}), not refused: \
                                     it may be a live server's, so it is not removed"
                                ),
                            ),
                        ));
                    }
                    Err(_) => {
                        return Err(bind_error(
                            name(),
                            io::Error::new(
                                e.kind(),
                                "a socket file is there and connecting to it timed out: it may be a busy \
                                 live server's, so it is not removed",
                            ),
                        ));
                    }
                }
            }
            Err(e) => return Err(bind_error(name(), e)),
        };
        Ok(SocketListener {
            sockets: vec![RawListener::Unix(listener, SocketFile::bound(PathBuf::from(path)))],
            next: 0,
            observers: None,
            admission: None,
            refusals: Refusals::default(),
        })
    }

    /// The listening sockets a service manager passed (systemd's socket activation:
    /// `LISTEN_FDS` sockets from descriptor 3, for this process by `LISTEN_PID`, named by
    /// `LISTEN_FDNAMES`); with `name`, only those of that name. `LISTEN_PID` and
    /// `LISTEN_FDS` are removed, so that a command run later does not take them for its own.
    ///
    /// # Errors
    /// [`StreamError::Bind`] naming `systemd` when there is none (or none of that name),
    /// or a descriptor is not a listening stream socket.
    pub fn from_systemd(name: Option<&str>) -> Result<Self> {
        let what = name.map_or_else(|| "systemd".to_string(), |n| format!("systemd:{n}"));
        let fail = |why: String| bind_error(&what, io::Error::new(io::ErrorKind::NotFound, why));
        let names: Vec<String> =
            std::env::var("LISTEN_FDNAMES").unwrap_or_default().split(':').map(str::to_string).collect();
        let mut passed = listenfd::ListenFd::from_env();
        if passed.len() == 0 {
            return Err(fail(
                "no socket was passed (LISTEN_FDS and LISTEN_PID do not name this process)".into(),
            ));
        }
        let mut sockets = Vec::new();
        for i in 0..passed.len() {
            if name.is_some_and(|n| names.get(i).map(String::as_str) != Some(n)) {
                continue;
            }
            let fd = i + 3;
            sockets.push(
                passed_socket(&mut passed, i)
                    .map_err(|e| bind_error(format!("{what} (descriptor {fd})"), e))?,
            );
        }
        if sockets.is_empty() {
            let count = passed.len();
            return Err(fail(format!(
                "none of the {count} passed sockets is named {:?} (LISTEN_FDNAMES={})",
                name.unwrap_or_default(),
                names.join(":")
            )));
        }
        Ok(SocketListener {
            sockets,
            next: 0,
            observers: None,
            admission: None,
            refusals: Refusals::default(),
        })
    }

    /// Joins another listener's sockets to this one (AnyIO's `MultiListener`).
    pub fn merge(mut self, other: SocketListener) -> Self {
        self.sockets.extend(other.sockets);
        self
    }

    /// Every connection accepted from now on is first shown to `admission`: one it
    /// refuses is closed at once (a reset: nothing was read or written), with a warning
    /// line naming the peer (at most 10 per 10 s; the rest are counted).
    pub fn admit_with(&mut self, admission: std::sync::Arc<dyn Admission>) {
        self.admission = Some(admission);
    }

    /// Every connection accepted from now on is observed from its first byte by an
    /// observer `observers` makes for it ([`Connection::observe`]).
    pub fn observe_with(&mut self, observers: std::sync::Arc<dyn crate::streams::observe::Observers>) {
        self.observers = Some(observers);
    }

    /// The TCP port listened on (the first TCP socket's), if any.
    pub fn tcp_port(&self) -> Option<u16> {
        self.sockets.iter().find_map(|s| match s {
            RawListener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            RawListener::Unix(..) => None,
        })
    }
}

/// The `i`th socket a service manager passed, as a listener (listenfd checks its kind
/// and marks it close-on-exec); it must be listening.
#[cfg(unix)]
fn passed_socket(passed: &mut listenfd::ListenFd, i: usize) -> io::Result<RawListener> {
    // SO_ACCEPTCONN, where socket2 reads it; on macOS a socket that is not listening fails
    // at its first accept instead.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let listening = |fd: std::os::fd::BorrowedFd<'_>| -> io::Result<()> {
        match socket2::SockRef::from(&fd).is_listener()? {
            true => Ok(()),
            false => Err(io::Error::new(io::ErrorKind::InvalidInput, "the socket is not listening")),
        }
    };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let listening = |_: std::os::fd::BorrowedFd<'_>| -> io::Result<()> { Ok(()) };
    if let Ok(Some(tcp)) = passed.take_tcp_listener(i) {
        use std::os::fd::AsFd;
        listening(tcp.as_fd())?;
        tcp.set_nonblocking(true)?;
        return Ok(RawListener::Tcp(tokio::net::TcpListener::from_std(tcp)?));
    }
    match passed.take_unix_listener(i)? {
        Some(unix) => {
            use std::os::fd::AsFd;
            listening(unix.as_fd())?;
            unix.set_nonblocking(true)?;
            Ok(RawListener::Unix(
                crate::streams::platform::net::UnixListener::from_std(unix)?,
                SocketFile::passed(),
            ))
        }
        None => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a stream socket")),
    }
}

/// Socket activation is POSIX's (`LISTEN_FDS`): refused on Windows.
#[cfg(not(unix))]
fn passed_socket(_passed: &mut listenfd::ListenFd, _i: usize) -> io::Result<RawListener> {
    Err(crate::streams::platform::Feature::SocketActivation.refusal())
}

/// How a listening TCP socket is set up beyond its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenOptions {
    /// SO_REUSEPORT: other processes may listen on the same port (the kernel spreads the
    /// connections between them).
    pub reuse_port: bool,
    /// TCP keepalive on every accepted connection, probing after this long idle (set on
    /// the listening socket; Linux passes it to each accepted one).
    pub keepalive: Option<std::time::Duration>,
}

fn bind_tcp_socket_with(addr: SocketAddr, options: ListenOptions) -> io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => {
            let s = tokio::net::TcpSocket::new_v6()?;
            // `[::]:port` means IPv6 only; `0.0.0.0:port` is asked for separately.
            socket2::SockRef::from(&s).set_only_v6(true)?;
            s
        }
    };
    socket.set_reuseaddr(true)?;
    if options.reuse_port {
        #[cfg(not(unix))]
        return Err(crate::streams::platform::Feature::ReusePort.refusal());
        #[cfg(unix)]
        socket.set_reuseport(true)?;
        // FreeBSD spreads connections between the sockets only with SO_REUSEPORT_LB (as
        // Linux does with SO_REUSEPORT); macOS does not spread them (docs/platforms.md).
        #[cfg(target_os = "freebsd")]
        socket2::SockRef::from(&socket).set_reuse_port_lb(true)?;
    }
    if let Some(idle) = options.keepalive {
        crate::streams::socket::set_keepalive(&socket, idle)?;
    }
    // Relays write in large batches; Nagle only delays the last segment. Linux copies
    // TCP_NODELAY from the listening socket to each accepted one, which saves a
    // setsockopt per connection; elsewhere `accept` sets it.
    #[cfg(target_os = "linux")]
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl SocketListener {
    /// The next connection from any of the sockets, taken in turn.
    async fn accept_raw(&mut self) -> io::Result<(Connection, Address)> {
        std::future::poll_fn(|cx| {
            let n = self.sockets.len();
            for i in 0..n {
                let index = (self.next + i) % n;
                let polled = match &self.sockets[index] {
                    RawListener::Tcp(l) => l.poll_accept(cx).map_ok(|(s, peer)| {
                        #[cfg(not(target_os = "linux"))]
                        let _ = s.set_nodelay(true);
                        (Connection::Tcp(SocketStream::new(s)), Address::Inet(peer))
                    }),
                    RawListener::Unix(l, _) => l.poll_accept(cx).map_ok(|(s, peer)| {
                        let peer = Address::Unix(peer.as_pathname().map(Path::to_path_buf));
                        (Connection::Unix(SocketStream::new(s)), peer)
                    }),
                };
                if let Poll::Ready(result) = polled {
                    self.next = (index + 1) % n;
                    return Poll::Ready(result);
                }
            }
            Poll::Pending
        })
        .await
    }
}

impl Listener for SocketListener {
    type Stream = Connection;

    async fn accept(&mut self) -> io::Result<(Connection, Address)> {
        loop {
            let (mut connection, peer) = self.accept_raw().await?;
            if let Some(admission) = &self.admission
                && let Err(why) = admission.admit(&peer)
            {
                // A reset, not a FIN: the client learns at once that it is not served.
                if let Connection::Tcp(s) = &connection
                    && let Some(tcp) = s.get_ref()
                {
                    let _ = socket2::SockRef::from(tcp).set_linger(Some(std::time::Duration::ZERO));
                }
                drop(connection);
                self.refusals.note(&peer, &why);
                continue;
            }
            if let Some(observers) = &self.observers {
                let local = connection.local_address().unwrap_or(Address::Unix(None));
                connection.observe(observers.connection(&local, &peer));
            }
            return Ok((connection, peer));
        }
    }

    fn local_addresses(&self) -> Vec<Address> {
        self.sockets
            .iter()
            .filter_map(|s| match s {
                RawListener::Tcp(l) => l.local_addr().ok().map(Address::Inet),
                RawListener::Unix(_, file) => Some(Address::Unix(Some(file.path.clone()))),
            })
            .collect()
    }
}

macro_rules! each_connection {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Connection::Tcp($s) => $body,
            Connection::Unix($s) => $body,
        }
    };
}

impl Connection {
    /// From now on, its traffic is reported to `observer` ([`SocketStream::observe`]).
    pub fn observe(&mut self, observer: std::sync::Arc<dyn crate::streams::observe::Observer>) {
        each_connection!(self, s => s.observe(observer))
    }

    /// Its observer, if one is set.
    pub fn observer(&self) -> Option<std::sync::Arc<dyn crate::streams::observe::Observer>> {
        each_connection!(self, s => s.observer())
    }

    /// Its own address.
    ///
    /// # Errors
    /// The socket's error, or [`StreamError::Closed`].
    pub fn local_address(&self) -> Result<Address> {
        each_connection!(self, s => Ok(crate::streams::socket::SocketIo::local_address(s.get_ref().ok_or(StreamError::Closed)?)?))
    }

    /// The peer's address.
    ///
    /// # Errors
    /// The socket's error, or [`StreamError::Closed`].
    pub fn remote_address(&self) -> Result<Address> {
        each_connection!(self, s => Ok(crate::streams::socket::SocketIo::remote_address(s.get_ref().ok_or(StreamError::Closed)?)?))
    }
}

impl AsyncResource for Connection {
    async fn aclose(&mut self) -> Result<()> {
        each_connection!(self, s => s.aclose().await)
    }
}

impl TypedAttributeProvider for Connection {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        each_connection!(self, s => s.provide(name))
    }
}

impl ByteReceiveStream for Connection {
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        each_connection!(self, s => s.receive(max_bytes).await)
    }

    async fn receive_into(&mut self, buf: &mut BytesMut, max_bytes: usize) -> Result<usize> {
        each_connection!(self, s => s.receive_into(buf, max_bytes).await)
    }
}

impl ByteSendStream for Connection {
    async fn send(&mut self, data: Bytes) -> Result<()> {
        each_connection!(self, s => s.send(data).await)
    }
}

impl ByteStream for Connection {
    async fn send_eof(&mut self) -> Result<()> {
        each_connection!(self, s => s.send_eof().await)
    }
}

impl tokio::io::AsyncRead for Connection {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each_connection!(self.get_mut(), s => std::pin::Pin::new(s).poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for Connection {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each_connection!(self.get_mut(), s => std::pin::Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each_connection!(self.get_mut(), s => std::pin::Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each_connection!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        each_connection!(self.get_mut(), s => std::pin::Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        each_connection!(self.get_mut(), s => std::pin::Pin::new(s).poll_shutdown(cx))
    }
}
