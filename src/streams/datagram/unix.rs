//! UNIX datagram sockets (AnyIO's `UNIXDatagramSocket` and
//! `ConnectedUNIXDatagramSocket`); on a platform without them, `unix_absent.rs` gives
//! the same names, which cannot be made.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{MAX_DATAGRAM, UnixDatagramPacket, UnixPeer, os_error, receive_buffer, whole};
use crate::streams::abc::{AsyncResource, UnreliableObjectReceiveStream, UnreliableObjectSendStream};
use crate::streams::attrs::{Address, AddressFamily, AttributeValue, TypedAttributeProvider, socket as keys};
use crate::streams::error::{Result, StreamError};

/// A peer's address as [`UnixPeer`].
fn peer_of(addr: &tokio::net::unix::SocketAddr) -> UnixPeer {
    if let Some(path) = addr.as_pathname() {
        return UnixPeer::Path(path.to_path_buf());
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = addr.as_abstract_name() {
        return UnixPeer::Abstract(name.to_vec());
    }
    UnixPeer::Unnamed
}

/// The keys a UNIX datagram socket answers.
fn provide_unix(
    local: io::Result<tokio::net::unix::SocketAddr>,
    remote: Option<&Path>,
    name: &'static str,
) -> Option<Result<AttributeValue>> {
    let local = match local {
        Ok(a) => a.as_pathname().map(Path::to_path_buf),
        Err(e) => return Some(Err(e.into())),
    };
    match name {
        n if n == keys::FAMILY.name() => keys::FAMILY.answer(AddressFamily::Unix),
        n if n == keys::LOCAL_ADDRESS.name() => keys::LOCAL_ADDRESS.answer(Address::Unix(local)),
        n if n == keys::REMOTE_ADDRESS.name() => {
            keys::REMOTE_ADDRESS.answer(Address::Unix(Some(remote?.to_path_buf())))
        }
        _ => None,
    }
}

/// An unconnected UNIX datagram socket (AnyIO's `UNIXDatagramSocket`): items are
/// `(datagram, sender's path)`.
pub struct UnixDatagramSocket {
    socket: Option<Arc<tokio::net::UnixDatagram>>,
    buf: Box<[u8]>,
    /// The socket file this socket made as a listener, removed when it is dropped.
    owned_file: Option<PathBuf>,
}

impl Drop for UnixDatagramSocket {
    fn drop(&mut self) {
        if let Some(path) = &self.owned_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl std::fmt::Debug for UnixDatagramSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixDatagramSocket").finish_non_exhaustive()
    }
}

fn unix_bind_error(path: &Path, source: io::Error) -> StreamError {
    StreamError::Bind { addr: format!("unix-dgram:{}", path.display()), source }
}

/// A UNIX datagram socket bound to `local`, or, with `None`, to a fresh abstract name on
/// Linux (so that replies can reach it) and unbound elsewhere.
fn unix_socket(local: Option<&Path>) -> Result<tokio::net::UnixDatagram> {
    match local {
        Some(path) => tokio::net::UnixDatagram::bind(path).map_err(|e| unix_bind_error(path, e)),
        None => autobound(),
    }
}

#[cfg(target_os = "linux")]
fn autobound() -> Result<tokio::net::UnixDatagram> {
    use std::os::linux::net::SocketAddrExt;
    let mut last = None;
    for _ in 0..4 {
        let name = format!("streamtool-{}-{:016x}", std::process::id(), rand_u64());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        match std::os::unix::net::UnixDatagram::bind_addr(&addr) {
            Ok(socket) => {
                socket.set_nonblocking(true)?;
                return Ok(tokio::net::UnixDatagram::from_std(socket)?);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(StreamError::Closed, StreamError::from))
}

#[cfg(not(target_os = "linux"))]
fn autobound() -> Result<tokio::net::UnixDatagram> {
    Ok(tokio::net::UnixDatagram::unbound()?)
}

#[cfg(target_os = "linux")]
fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // ring's system random; a name nobody can guess, so nobody can squat it.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes)
}

impl UnixDatagramSocket {
    /// Binds `path` (AnyIO's `create_unix_datagram_socket`); `None` for an unnamed
    /// socket (an abstract name on Linux).
    ///
    /// # Errors
    /// [`StreamError::Bind`] naming the path.
    pub fn bind(path: Option<&Path>) -> Result<Self> {
        Ok(UnixDatagramSocket {
            socket: Some(Arc::new(unix_socket(path)?)),
            buf: receive_buffer(),
            owned_file: None,
        })
    }

    /// Binds `path` as a server does: a stale socket file (nobody bound to it: a send is
    /// refused) is replaced; a live one, or a file that is not a socket, is an error. The
    /// socket file is removed when this socket is dropped.
    ///
    /// # Errors
    /// [`StreamError::Bind`] naming the path and why.
    pub fn bind_listener(path: &Path) -> Result<Self> {
        let socket = match tokio::net::UnixDatagram::bind(path) {
            Ok(socket) => socket,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                use std::os::unix::fs::FileTypeExt;
                let is_socket =
                    std::fs::symlink_metadata(path).map(|m| m.file_type().is_socket()).unwrap_or(false);
                if !is_socket {
                    return Err(unix_bind_error(
                        path,
                        io::Error::new(e.kind(), "the path exists and is not a socket"),
                    ));
                }
                // Only a refusal proves nobody is bound there.
                let probe = std::os::unix::net::UnixDatagram::unbound().and_then(|p| p.connect(path));
                match probe {
                    Ok(()) => {
                        return Err(unix_bind_error(
                            path,
                            io::Error::new(e.kind(), "another server is bound there"),
                        ));
                    }
                    Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                        tracing::info!(path = %path.display(), "removing stale socket file");
                        std::fs::remove_file(path).map_err(|e| unix_bind_error(path, e))?;
                        tokio::net::UnixDatagram::bind(path).map_err(|e| unix_bind_error(path, e))?
                    }
                    Err(err) => return Err(unix_bind_error(path, err)),
                }
            }
            Err(e) => return Err(unix_bind_error(path, e)),
        };
        Ok(UnixDatagramSocket {
            socket: Some(Arc::new(socket)),
            buf: receive_buffer(),
            owned_file: Some(path.to_path_buf()),
        })
    }

    /// The socket's own path (`None` when unnamed or abstract).
    ///
    /// # Errors
    /// [`StreamError::Closed`] after [`aclose`](AsyncResource::aclose).
    pub fn local_path(&self) -> Result<Option<PathBuf>> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        Ok(socket.local_addr()?.as_pathname().map(Path::to_path_buf))
    }

    /// The tokio socket, shared.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after [`aclose`](AsyncResource::aclose).
    pub fn shared(&self) -> Result<Arc<tokio::net::UnixDatagram>> {
        self.socket.clone().ok_or(StreamError::Closed)
    }
}

impl AsyncResource for UnixDatagramSocket {
    async fn aclose(&mut self) -> Result<()> {
        self.socket = None;
        Ok(())
    }
}

impl TypedAttributeProvider for UnixDatagramSocket {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        provide_unix(self.socket.as_ref()?.local_addr(), None, name)
    }
}

impl UnreliableObjectReceiveStream<UnixDatagramPacket> for UnixDatagramSocket {
    /// Cancel safe.
    async fn receive(&mut self) -> Result<UnixDatagramPacket> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        let (n, peer) = socket.recv_from(&mut self.buf).await?;
        let path = peer.as_pathname().map(Path::to_path_buf);
        let n = whole(n, || {
            path.as_ref().map_or("an unnamed socket".into(), |p| format!("unix:{}", p.display()))
        })?;
        Ok((Bytes::copy_from_slice(&self.buf[..n]), path))
    }
}

impl UnreliableObjectSendStream<UnixDatagramPacket> for UnixDatagramSocket {
    async fn send(&mut self, item: UnixDatagramPacket) -> Result<()> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        let Some(path) = item.1 else {
            return Err(StreamError::Unsupported("cannot send to an unnamed UNIX socket".into()));
        };
        let peer = format!("unix-dgram:{}", path.display());
        if item.0.len() > MAX_DATAGRAM {
            return Err(StreamError::OversizedDatagram {
                size: item.0.len(),
                max: MAX_DATAGRAM,
                peer: Some(peer),
            });
        }
        socket.send_to(&item.0, &path).await.map_err(|e| os_error(e, item.0.len(), Some(peer)))?;
        Ok(())
    }
}

/// Sends from a UNIX datagram socket to any peer it heard from, an abstract name
/// included (which tokio's `send_to` cannot address): a server's replies.
#[derive(Debug, Clone)]
pub struct UnixReplier {
    socket: Arc<tokio::net::UnixDatagram>,
    /// The same socket as std's, which can address an abstract name (Linux).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    raw: Arc<std::os::unix::net::UnixDatagram>,
}

impl UnixReplier {
    /// Sends `data` to `peer`.
    ///
    /// # Errors
    /// [`StreamError::OversizedDatagram`]; [`StreamError::Unsupported`] for an unnamed
    /// peer; [`StreamError::Connect`] naming a peer that is gone; the OS's error.
    pub async fn send_to(&self, data: &[u8], peer: &UnixPeer) -> Result<()> {
        let name = format!("unix-dgram:{peer}");
        if data.len() > MAX_DATAGRAM {
            return Err(StreamError::OversizedDatagram {
                size: data.len(),
                max: MAX_DATAGRAM,
                peer: Some(name),
            });
        }
        let sent = match peer {
            UnixPeer::Path(path) => self.socket.send_to(data, path).await,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            UnixPeer::Abstract(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
                self.socket
                    .async_io(tokio::io::Interest::WRITABLE, || self.raw.send_to_addr(data, &addr))
                    .await
            }
            _ => {
                return Err(StreamError::Unsupported(format!(
                    "{name} cannot be answered: an unnamed UNIX socket (bind the client to a path)"
                )));
            }
        };
        sent.map(drop).map_err(|e| match e.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
                StreamError::Connect { target: name, source: e }
            }
            _ => os_error(e, data.len(), None),
        })
    }
}

impl UnixDatagramSocket {
    /// Receives a datagram with its sender's whole address (an abstract name included),
    /// for a server that answers it ([`UnixReplier`]). Cancel safe.
    ///
    /// # Errors
    /// As [`receive`](UnreliableObjectReceiveStream::receive).
    pub async fn receive_from(&mut self) -> Result<(Bytes, UnixPeer)> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        let (n, addr) = socket.recv_from(&mut self.buf).await?;
        let peer = peer_of(&addr);
        let n = whole(n, || format!("unix-dgram:{peer}"))?;
        Ok((Bytes::copy_from_slice(&self.buf[..n]), peer))
    }

    /// A handle that sends from this socket to its peers.
    ///
    /// # Errors
    /// [`StreamError::Closed`]; the OS's error duplicating the descriptor.
    pub fn replier(&self) -> Result<UnixReplier> {
        let socket = self.socket.clone().ok_or(StreamError::Closed)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::AsFd;
            let raw = std::os::unix::net::UnixDatagram::from(socket.as_fd().try_clone_to_owned()?);
            Ok(UnixReplier { socket, raw: Arc::new(raw) })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Ok(UnixReplier { socket })
    }
}

/// A UNIX datagram socket connected to a path (AnyIO's `ConnectedUNIXDatagramSocket`).
pub struct ConnectedUnixDatagramSocket {
    socket: Option<Arc<tokio::net::UnixDatagram>>,
    peer: PathBuf,
    buf: Box<[u8]>,
}

/// A connected UNIX datagram socket's sending side, shared with the task that receives.
#[derive(Debug, Clone)]
pub struct UnixSender(Arc<tokio::net::UnixDatagram>);

impl UnixSender {
    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    /// The OS's.
    pub async fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.0.send(data).await
    }
}

impl std::fmt::Debug for ConnectedUnixDatagramSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedUnixDatagramSocket").field("peer", &self.peer).finish()
    }
}

impl ConnectedUnixDatagramSocket {
    /// Connects to `peer` (AnyIO's `create_connected_unix_datagram_socket`), bound to
    /// `local` (`None`: an abstract name on Linux, so replies come back; unbound
    /// elsewhere, which can only send).
    ///
    /// # Errors
    /// [`StreamError::Bind`] for `local`; [`StreamError::Connect`] naming the peer (no
    /// such socket, or not a datagram one).
    pub fn connect(peer: &Path, local: Option<&Path>) -> Result<Self> {
        let socket = unix_socket(local)?;
        socket.connect(peer).map_err(|source| StreamError::Connect {
            target: format!("unix-dgram:{}", peer.display()),
            source,
        })?;
        Ok(ConnectedUnixDatagramSocket {
            socket: Some(Arc::new(socket)),
            peer: peer.to_path_buf(),
            buf: receive_buffer(),
        })
    }

    /// Its sending side, shared: one task may receive while another sends.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after [`aclose`](AsyncResource::aclose).
    pub fn sender(&self) -> Result<UnixSender> {
        self.socket.clone().map(UnixSender).ok_or(StreamError::Closed)
    }

    /// The peer's path.
    pub fn peer(&self) -> &Path {
        &self.peer
    }

    /// The tokio socket, shared.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after [`aclose`](AsyncResource::aclose).
    pub fn shared(&self) -> Result<Arc<tokio::net::UnixDatagram>> {
        self.socket.clone().ok_or(StreamError::Closed)
    }
}

impl AsyncResource for ConnectedUnixDatagramSocket {
    async fn aclose(&mut self) -> Result<()> {
        self.socket = None;
        Ok(())
    }
}

impl TypedAttributeProvider for ConnectedUnixDatagramSocket {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        provide_unix(self.socket.as_ref()?.local_addr(), Some(&self.peer), name)
    }
}

impl UnreliableObjectReceiveStream<Bytes> for ConnectedUnixDatagramSocket {
    /// Cancel safe.
    async fn receive(&mut self) -> Result<Bytes> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        let n = socket.recv(&mut self.buf).await?;
        let n = whole(n, || format!("unix-dgram:{}", self.peer.display()))?;
        Ok(Bytes::copy_from_slice(&self.buf[..n]))
    }
}

impl UnreliableObjectSendStream<Bytes> for ConnectedUnixDatagramSocket {
    async fn send(&mut self, item: Bytes) -> Result<()> {
        let socket = self.socket.as_ref().ok_or(StreamError::Closed)?;
        let peer = format!("unix-dgram:{}", self.peer.display());
        if item.len() > MAX_DATAGRAM {
            return Err(StreamError::OversizedDatagram {
                size: item.len(),
                max: MAX_DATAGRAM,
                peer: Some(peer),
            });
        }
        socket.send(&item).await.map_err(|e| os_error(e, item.len(), Some(peer)))?;
        Ok(())
    }
}
