//! Datagram sockets as AnyIO's unreliable object streams: UDP ([`UdpSocket`],
//! [`ConnectedUdpSocket`]) and UNIX datagram sockets ([`UnixDatagramSocket`],
//! [`ConnectedUnixDatagramSocket`]).
//!
//! As in AnyIO: message boundaries are kept (one `send` is one datagram, one `receive`
//! one datagram), there is no end of stream (a peer's closing is never seen; closing is
//! local, and receiving or sending after it is [`StreamError::Closed`]), an unconnected
//! socket's items carry the peer's address, a connected socket's are the bytes alone.
//!
//! Where this differs from AnyIO (docs/streams.md, "Datagrams"):
//! - a datagram larger than the socket takes is refused before anything is sent, as
//!   [`StreamError::OversizedDatagram`] naming the size (AnyIO: the OS's `EMSGSIZE`);
//! - a received datagram longer than [`MAX_DATAGRAM`] (only UNIX sockets carry such) is
//!   dropped whole and reported as [`StreamError::OversizedDatagram`], never cut (AnyIO
//!   cuts it to 65,536 bytes silently); the socket stays usable;
//! - an ICMP port unreachable on a connected UDP socket is the next `receive`'s or
//!   `send`'s [`StreamError::Connect`] naming the peer ("Connection refused"), and the
//!   socket stays usable (AnyIO's trio backend raises `ConnectionRefusedError` alike);
//! - an unconnected UNIX datagram socket's items carry `None` for an unnamed sender.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::abc::{AsyncResource, UnreliableObjectReceiveStream, UnreliableObjectSendStream};
use super::attrs::{Address, AddressFamily, AttributeValue, TypedAttributeProvider, socket as keys};
use super::error::{Result, StreamError};
use super::socket::{FamilyPreference, resolve};

/// The largest datagram received or sent whole (64 KiB). UDP's own limits are lower:
/// [`max_udp_payload`].
pub const MAX_DATAGRAM: usize = 65_536;

/// The largest UDP payload for a destination: 65,507 bytes over IPv4, 65,527 over IPv6
/// (without jumbograms).
pub fn max_udp_payload(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 65_507,
        SocketAddr::V6(_) => 65_527,
    }
}

/// An unconnected UDP socket's item: the datagram and the peer's address.
pub type UdpPacket = (Bytes, SocketAddr);

/// An unconnected UNIX datagram socket's item: the datagram and the peer's path (`None`
/// for an unnamed or abstract sender).
pub type UnixDatagramPacket = (Bytes, Option<PathBuf>);

/// A receive buffer as large as the largest datagram plus one byte, so that a longer
/// one is seen as such instead of being cut silently.
fn receive_buffer() -> Box<[u8]> {
    vec![0u8; MAX_DATAGRAM + 1].into_boxed_slice()
}

/// `Ok(len)` when the datagram fits, else the oversize error.
fn whole(n: usize, peer: impl FnOnce() -> String) -> Result<usize> {
    if n > MAX_DATAGRAM {
        return Err(StreamError::OversizedDatagram { size: n, max: MAX_DATAGRAM, peer: Some(peer()) });
    }
    Ok(n)
}

/// The OS's "message too long".
#[cfg(unix)]
const EMSGSIZE: i32 = nix::libc::EMSGSIZE;
/// The OS's "message too long" (WSAEMSGSIZE).
#[cfg(windows)]
const EMSGSIZE: i32 = 10040;

/// An OS error of a send or receive, in the layer's terms: `EMSGSIZE` is an oversized
/// datagram, a refusal (ICMP port unreachable) names the peer.
fn os_error(err: io::Error, size: usize, peer: Option<String>) -> StreamError {
    if err.raw_os_error() == Some(EMSGSIZE) {
        return StreamError::OversizedDatagram { size, max: MAX_DATAGRAM.min(size.saturating_sub(1)), peer };
    }
    match (err.kind(), peer) {
        (io::ErrorKind::ConnectionRefused, Some(target)) => StreamError::Connect { target, source: err },
        _ => StreamError::from(err),
    }
}

fn family_of(addr: &SocketAddr) -> AddressFamily {
    if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 }
}

/// The keys an IP datagram socket answers: family, local address and port, and the
/// peer's when connected.
fn provide_inet(
    local: io::Result<SocketAddr>,
    remote: Option<SocketAddr>,
    name: &'static str,
) -> Option<Result<AttributeValue>> {
    let local = match local {
        Ok(a) => a,
        Err(e) => return Some(Err(e.into())),
    };
    match name {
        n if n == keys::FAMILY.name() => keys::FAMILY.answer(family_of(&local)),
        n if n == keys::LOCAL_ADDRESS.name() => keys::LOCAL_ADDRESS.answer(Address::Inet(local)),
        n if n == keys::LOCAL_PORT.name() => keys::LOCAL_PORT.answer(local.port()),
        n if n == keys::REMOTE_ADDRESS.name() => keys::REMOTE_ADDRESS.answer(Address::Inet(remote?)),
        n if n == keys::REMOTE_PORT.name() => keys::REMOTE_PORT.answer(remote?.port()),
        _ => None,
    }
}

/// Binds a UDP socket on `addr`, with SO_REUSEPORT when asked.
fn bind_udp(addr: SocketAddr, reuse_port: bool) -> Result<tokio::net::UdpSocket> {
    let bind_error = |source| StreamError::Bind { addr: format!("udp:{addr}"), source };
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .map_err(bind_error)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(bind_error)?;
    }
    if reuse_port {
        #[cfg(unix)]
        socket.set_reuse_port(true).map_err(bind_error)?;
    }
    socket.set_nonblocking(true).map_err(bind_error)?;
    socket.bind(&addr.into()).map_err(bind_error)?;
    tokio::net::UdpSocket::from_std(socket.into()).map_err(bind_error)
}

/// An unconnected UDP socket (AnyIO's `UDPSocket`): items are `(datagram, peer)`.
///
/// The socket can be shared ([`UdpSocket::shared`]) so that several tasks send from it,
/// as a server answering many peers does; closing drops this handle's share.
pub struct UdpSocket {
    socket: Option<Arc<tokio::net::UdpSocket>>,
    buf: Box<[u8]>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let local = self.socket.as_ref().and_then(|s| s.local_addr().ok());
        f.debug_struct("UdpSocket").field("local", &local).finish()
    }
}

impl UdpSocket {
    /// Wraps a tokio socket.
    pub fn new(socket: tokio::net::UdpSocket) -> Self {
        UdpSocket { socket: Some(Arc::new(socket)), buf: receive_buffer() }
    }

    /// Binds `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// [`StreamError::Bind`] naming the address.
    pub fn bind(addr: SocketAddr, reuse_port: bool) -> Result<Self> {
        bind_udp(addr, reuse_port).map(Self::new)
    }

    /// Binds `port` on the loopback addresses, `127.0.0.1` and `::1`, the same port on
    /// both (0 picks one free on both); IPv4 alone where the machine has no IPv6.
    ///
    /// # Errors
    /// [`StreamError::Bind`] naming the address that failed.
    pub fn bind_loopback(port: u16, reuse_port: bool) -> Result<Vec<Self>> {
        let mut last = None;
        for _ in 0..8 {
            let v4 = Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), reuse_port)?;
            let chosen = v4.local_addr()?.port();
            match bind_udp(SocketAddr::from((Ipv6Addr::LOCALHOST, chosen)), reuse_port) {
                Ok(v6) => return Ok(vec![v4, Self::new(v6)]),
                Err(StreamError::Bind { source, .. })
                    if matches!(
                        source.kind(),
                        io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
                    ) =>
                {
                    return Ok(vec![v4]);
                }
                Err(StreamError::Bind { source, addr })
                    if port == 0 && source.kind() == io::ErrorKind::AddrInUse =>
                {
                    last = Some(StreamError::Bind { source, addr });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(StreamError::Unsupported("no free port".into())))
    }

    /// The socket's own address.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after [`aclose`](AsyncResource::aclose).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.inner()?.local_addr()?)
    }

    /// The tokio socket, shared: another task may send from it (`send_to` takes `&self`).
    ///
    /// # Errors
    /// [`StreamError::Closed`] after [`aclose`](AsyncResource::aclose).
    pub fn shared(&self) -> Result<Arc<tokio::net::UdpSocket>> {
        self.inner().cloned()
    }

    /// Sends `data` to `host:port` (AnyIO's `sendto`), the host resolved first.
    ///
    /// # Errors
    /// [`StreamError::Resolve`]; as [`send`](UnreliableObjectSendStream::send).
    pub async fn sendto(&mut self, data: Bytes, host: &str, port: u16) -> Result<()> {
        let family = match self.local_addr()? {
            SocketAddr::V4(_) => FamilyPreference::V4Only,
            SocketAddr::V6(_) => FamilyPreference::V6Only,
        };
        let addr = resolve(host, port, family).await?[0];
        self.send((data, addr)).await
    }

    fn inner(&self) -> Result<&Arc<tokio::net::UdpSocket>> {
        self.socket.as_ref().ok_or(StreamError::Closed)
    }
}

/// Sends one datagram to `peer` from a shared UDP socket, refusing one larger than UDP
/// carries (nothing is sent then).
///
/// # Errors
/// [`StreamError::OversizedDatagram`]; the OS's error otherwise.
pub async fn send_to(socket: &tokio::net::UdpSocket, data: &[u8], peer: SocketAddr) -> Result<()> {
    let max = max_udp_payload(&peer);
    if data.len() > max {
        return Err(StreamError::OversizedDatagram { size: data.len(), max, peer: Some(peer.to_string()) });
    }
    socket.send_to(data, peer).await.map_err(|e| os_error(e, data.len(), Some(peer.to_string())))?;
    Ok(())
}

impl AsyncResource for UdpSocket {
    async fn aclose(&mut self) -> Result<()> {
        self.socket = None;
        Ok(())
    }
}

impl TypedAttributeProvider for UdpSocket {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        provide_inet(self.socket.as_ref()?.local_addr(), None, name)
    }
}

impl UnreliableObjectReceiveStream<UdpPacket> for UdpSocket {
    /// Cancel safe: a datagram is taken from the socket only when the call completes.
    async fn receive(&mut self) -> Result<UdpPacket> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        let (n, peer) = socket.recv_from(&mut self.buf).await.map_err(|e| os_error(e, 0, None))?;
        let n = whole(n, || peer.to_string())?;
        Ok((Bytes::copy_from_slice(&self.buf[..n]), peer))
    }
}

impl UnreliableObjectSendStream<UdpPacket> for UdpSocket {
    async fn send(&mut self, item: UdpPacket) -> Result<()> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        send_to(socket, &item.0, item.1).await
    }
}

/// A UDP socket connected to one peer (AnyIO's `ConnectedUDPSocket`): items are the
/// datagrams alone, and the kernel drops datagrams from any other address.
pub struct ConnectedUdpSocket {
    socket: Option<Arc<tokio::net::UdpSocket>>,
    peer: SocketAddr,
    buf: Box<[u8]>,
}

impl std::fmt::Debug for ConnectedUdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedUdpSocket").field("peer", &self.peer).finish()
    }
}

impl ConnectedUdpSocket {
    /// Connects to `peer` from `local` (`None`: any address of the peer's family, a free
    /// port).
    ///
    /// # Errors
    /// [`StreamError::Bind`] for `local`; [`StreamError::Connect`] naming the peer.
    pub async fn connect_addr(peer: SocketAddr, local: Option<SocketAddr>, reuse_port: bool) -> Result<Self> {
        let local = local.unwrap_or(match peer {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        });
        let socket = bind_udp(local, reuse_port)?;
        socket
            .connect(peer)
            .await
            .map_err(|source| StreamError::Connect { target: format!("udp:{peer}"), source })?;
        Ok(ConnectedUdpSocket { socket: Some(Arc::new(socket)), peer, buf: receive_buffer() })
    }

    /// The peer.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The socket's own address.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after [`aclose`](AsyncResource::aclose).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.socket.as_ref().ok_or(StreamError::Closed)?.local_addr()?)
    }

    /// The tokio socket, shared: one task may receive while another sends.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after [`aclose`](AsyncResource::aclose).
    pub fn shared(&self) -> Result<Arc<tokio::net::UdpSocket>> {
        self.socket.clone().ok_or(StreamError::Closed)
    }
}

/// Connects a UDP socket to `host:port` (AnyIO's `create_connected_udp_socket`): the
/// first address the name resolves to among the admitted families (no Happy Eyeballs: a
/// datagram socket has no handshake to race), from `local` if given.
///
/// # Errors
/// [`StreamError::Resolve`], [`StreamError::Bind`], [`StreamError::Connect`].
pub async fn create_connected_udp_socket(
    host: &str,
    port: u16,
    family: FamilyPreference,
    local: Option<SocketAddr>,
) -> Result<ConnectedUdpSocket> {
    let family = match (family, local) {
        (FamilyPreference::Any, Some(SocketAddr::V4(_))) => FamilyPreference::V4Only,
        (FamilyPreference::Any, Some(SocketAddr::V6(_))) => FamilyPreference::V6Only,
        (f, _) => f,
    };
    let addrs = resolve(host, port, family).await?;
    ConnectedUdpSocket::connect_addr(addrs[0], local, false).await
}

/// Binds an unconnected UDP socket (AnyIO's `create_udp_socket`) on `local_host:port`,
/// the host's first address among the admitted families.
///
/// # Errors
/// [`StreamError::Resolve`], [`StreamError::Bind`].
pub async fn create_udp_socket(
    local_host: &str,
    port: u16,
    family: FamilyPreference,
    reuse_port: bool,
) -> Result<UdpSocket> {
    let addrs = resolve(local_host, port, family).await?;
    UdpSocket::bind(addrs[0], reuse_port)
}

impl AsyncResource for ConnectedUdpSocket {
    async fn aclose(&mut self) -> Result<()> {
        self.socket = None;
        Ok(())
    }
}

impl TypedAttributeProvider for ConnectedUdpSocket {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        provide_inet(self.socket.as_ref()?.local_addr(), Some(self.peer), name)
    }
}

impl UnreliableObjectReceiveStream<Bytes> for ConnectedUdpSocket {
    /// Cancel safe.
    async fn receive(&mut self) -> Result<Bytes> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        let peer = format!("udp:{}", self.peer);
        let n = socket.recv(&mut self.buf).await.map_err(|e| os_error(e, 0, Some(peer.clone())))?;
        let n = whole(n, || peer)?;
        Ok(Bytes::copy_from_slice(&self.buf[..n]))
    }
}

impl UnreliableObjectSendStream<Bytes> for ConnectedUdpSocket {
    async fn send(&mut self, item: Bytes) -> Result<()> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        let max = max_udp_payload(&self.peer);
        let peer = format!("udp:{}", self.peer);
        if item.len() > max {
            return Err(StreamError::OversizedDatagram { size: item.len(), max, peer: Some(peer) });
        }
        socket.send(&item).await.map_err(|e| os_error(e, item.len(), Some(peer)))?;
        Ok(())
    }
}

/// A UNIX datagram peer's address: a path, an abstract name (Linux), or none (an unnamed
/// socket, which cannot be answered).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixPeer {
    /// A socket bound to a path.
    Path(PathBuf),
    /// A socket bound to an abstract name (Linux).
    Abstract(Vec<u8>),
    /// An unnamed socket.
    Unnamed,
}

impl std::fmt::Display for UnixPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnixPeer::Path(path) => write!(f, "{}", path.display()),
            UnixPeer::Abstract(name) => write!(f, "@{}", name.escape_ascii()),
            UnixPeer::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{ConnectedUnixDatagramSocket, UnixDatagramSocket, UnixReplier, UnixSender};
#[cfg(not(unix))]
mod unix_absent;
#[cfg(not(unix))]
pub use unix_absent::{ConnectedUnixDatagramSocket, UnixDatagramSocket, UnixReplier, UnixSender};
