//! Cutting a relay short: a TCP side that ends with a reset (SO_LINGER 0) instead of a
//! FIN, so that a stream cut short on one side never reaches the other as a clean end.

use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// Set once a connection failed: its TCP socket then ends with a reset.
pub type CutFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// Marks a connection to end with a reset when it is dropped.
pub fn cut(flag: &Option<CutFlag>) {
    if let Some(flag) = flag {
        flag.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Makes a TCP socket end with a reset (SO_LINGER 0) when it is closed: a relay whose
/// other side was cut short (a reset, a TLS stream without close_notify) must not pass
/// that on as a clean FIN.
pub fn reset_on_close(socket: &tokio::net::TcpStream) {
    if let Err(err) = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO)) {
        tracing::debug!("cannot set SO_LINGER 0: {err}");
    }
}

/// A transport that ends with a reset instead of a FIN when its [`CutFlag`] was set
/// before it is dropped.
pub struct Cuttable<T> {
    inner: T,
    flag: CutFlag,
    on_cut: fn(&T),
}

impl<T> Cuttable<T> {
    /// Wraps `inner`; `on_cut` runs on it when dropped after the returned flag was set.
    pub fn new(inner: T, on_cut: fn(&T)) -> (Self, CutFlag) {
        let flag = CutFlag::default();
        (Cuttable { inner, flag: flag.clone(), on_cut }, flag)
    }
}

impl<T> Drop for Cuttable<T> {
    fn drop(&mut self) {
        if self.flag.load(std::sync::atomic::Ordering::Acquire) {
            (self.on_cut)(&self.inner);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Cuttable<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Cuttable<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
