//! UNIX sockets where tokio has none (Windows): types that cannot be made. Connecting and
//! binding fail with [`no_unix_sockets`]; every other method is unreachable, since no
//! value exists.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};

use crate::streams::platform::no_unix_sockets;

/// No value.
#[derive(Debug, Clone, Copy)]
enum Never {}

/// A UNIX socket connection: none can exist.
#[derive(Debug)]
pub struct UnixStream(Never);

/// A listening UNIX socket: none can exist.
#[derive(Debug)]
pub struct UnixListener(Never);

/// A UNIX socket address: none can exist.
#[derive(Debug)]
pub struct SocketAddr(Never);

impl SocketAddr {
    /// Unreachable.
    pub fn as_pathname(&self) -> Option<&Path> {
        match self.0 {}
    }
}

impl UnixStream {
    /// Fails: UNIX sockets are not available.
    ///
    /// # Errors
    /// Always [`no_unix_sockets`].
    pub async fn connect(_path: impl AsRef<Path>) -> io::Result<UnixStream> {
        Err(no_unix_sockets())
    }
    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.0 {}
    }
    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self.0 {}
    }
    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub async fn ready(&self, _interest: Interest) -> io::Result<Ready> {
        match self.0 {}
    }
    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub fn try_io<R>(&self, _interest: Interest, _f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self.0 {}
    }
    /// Unreachable.
    pub fn into_split(self) -> (UnixStream, UnixStream) {
        match self.0 {}
    }
    /// Unreachable.
    pub fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
    /// Unreachable.
    pub fn poll_write_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub fn try_read(&self, _buf: &mut [u8]) -> io::Result<usize> {
        match self.0 {}
    }
    /// Unreachable.
    ///
    /// # Errors
    /// None.
    pub fn try_write(&self, _buf: &[u8]) -> io::Result<usize> {
        match self.0 {}
    }
}

impl std::os::windows::io::AsSocket for UnixStream {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        match self.0 {}
    }
}

impl AsyncRead for UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.0 {}
    }
}

impl AsyncWrite for UnixStream {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, _buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.0 {}
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
}

impl UnixListener {
    /// Fails: UNIX sockets are not available.
    ///
    /// # Errors
    /// Always [`no_unix_sockets`].
    pub fn bind(_path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Err(no_unix_sockets())
    }
    /// Unreachable.
    pub fn poll_accept(&self, _cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        match self.0 {}
    }
}
