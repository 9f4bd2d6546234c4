//! Observing a byte stream: every chunk it receives and sends, and the end of each
//! direction, reported to an [`Observer`] as it passes (for traffic dumps, transcripts and
//! captures). An observer sees the bytes in the order the stream moved them; it cannot
//! change them, and it is called inline, so a slow observer slows the stream.
//!
//! Two ways in: [`Observed`] wraps any tokio I/O (the plaintext side of a connection),
//! and [`SocketStream::observe`](crate::streams::SocketStream::observe) hooks a socket
//! itself, below a TLS stream that keeps its type (the ciphertext side).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Received from the peer.
    In,
    /// Sent to the peer.
    Out,
}

/// What sees a stream's traffic.
pub trait Observer: Send + Sync {
    /// `data` moved `way` (never empty).
    fn chunk(&self, way: Way, data: &[u8]);
    /// That direction ended: the peer's end of stream was read (`In`), or ours was sent
    /// (`Out`, a half-close). Called once per direction at most.
    fn ended(&self, way: Way);

    /// The observer of the layer above on the same connection (the plaintext a TLS
    /// stream over this one carries), if there is one.
    fn above(&self) -> Option<Arc<dyn Observer>> {
        None
    }

    /// Something happened to the connection that is not a chunk: `name` (such as
    /// `handshake`) with its fields.
    fn event(&self, name: &str, fields: &[(&'static str, String)]) {
        let _ = (name, fields);
    }
}

/// Makes an observer for each connection a listener accepts
/// ([`SocketListener::observe_with`](crate::streams::SocketListener::observe_with)).
pub trait Observers: Send + Sync {
    /// The observer of a connection between `local` and `peer`, just accepted.
    fn connection(
        &self,
        local: &crate::streams::Address,
        peer: &crate::streams::Address,
    ) -> Arc<dyn Observer>;
}

/// Tracks what an observer was told, so that each end is said once.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Said {
    eof_in: bool,
    eof_out: bool,
}

impl Said {
    pub(crate) fn read(&mut self, observer: &dyn Observer, before: usize, buf: &ReadBuf<'_>) {
        let got = &buf.filled()[before..];
        if !got.is_empty() {
            observer.chunk(Way::In, got);
        } else if buf.remaining() > 0 && !std::mem::replace(&mut self.eof_in, true) {
            observer.ended(Way::In);
        }
    }

    pub(crate) fn shut(&mut self, observer: &dyn Observer) {
        if !std::mem::replace(&mut self.eof_out, true) {
            observer.ended(Way::Out);
        }
    }
}

/// The bytes of the first `n` of `bufs`, in order, to the observer.
pub(crate) fn written_vectored(observer: &dyn Observer, bufs: &[io::IoSlice<'_>], mut n: usize) {
    for buf in bufs {
        if n == 0 {
            break;
        }
        let take = n.min(buf.len());
        if take > 0 {
            observer.chunk(Way::Out, &buf[..take]);
        }
        n -= take;
    }
}

/// Tokio I/O whose traffic an [`Observer`] sees.
pub struct Observed<IO> {
    io: IO,
    observer: Arc<dyn Observer>,
    said: Said,
}

impl<IO> Observed<IO> {
    /// `io`, observed by `observer`.
    pub fn new(io: IO, observer: Arc<dyn Observer>) -> Self {
        Observed { io, observer, said: Said::default() }
    }

    /// The stream inside.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Observed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.said.read(this.observer.as_ref(), before, buf);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Observed<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.observer.chunk(Way::Out, &data[..n]);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            written_vectored(self.observer.as_ref(), bufs, n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_shutdown(cx);
        if let Poll::Ready(Ok(())) = polled {
            let this = &mut *self;
            this.said.shut(this.observer.as_ref());
        }
        polled
    }
}

/// A socket's optional observer and what it was told ([`SocketStream::observe`](crate::streams::SocketStream::observe)).
#[derive(Default)]
pub(crate) struct Slot {
    observer: Option<Arc<dyn Observer>>,
    said: Said,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.observer.is_some() { "Slot(observed)" } else { "Slot(none)" })
    }
}

impl Slot {
    pub(crate) fn set(&mut self, observer: Arc<dyn Observer>) {
        self.observer = Some(observer);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.observer.is_some()
    }

    pub(crate) fn get(&self) -> Option<Arc<dyn Observer>> {
        self.observer.clone()
    }

    pub(crate) fn read(&mut self, before: usize, buf: &ReadBuf<'_>) {
        if let Some(observer) = &self.observer {
            self.said.read(observer.as_ref(), before, buf);
        }
    }

    pub(crate) fn wrote(&self, data: &[u8], n: usize) {
        if let Some(observer) = &self.observer
            && n > 0
        {
            observer.chunk(Way::Out, &data[..n]);
        }
    }

    pub(crate) fn wrote_vectored(&self, bufs: &[io::IoSlice<'_>], n: usize) {
        if let Some(observer) = &self.observer {
            written_vectored(observer.as_ref(), bufs, n);
        }
    }

    pub(crate) fn shut(&mut self) {
        if let Some(observer) = &self.observer {
            self.said.shut(observer.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Default)]
    struct Log(Mutex<Vec<(Way, Vec<u8>)>>);

    impl Observer for Log {
        fn chunk(&self, way: Way, data: &[u8]) {
            self.0.lock().push((way, data.to_vec()));
        }
        fn ended(&self, way: Way) {
            self.0.lock().push((way, b"<eof>".to_vec()));
        }
    }

    /// Both directions, vectored writes, and each end once, in the order they happened.
    #[tokio::test]
    async fn an_observer_sees_each_chunk_and_each_end_once() {
        let (a, mut b) = tokio::io::duplex(64);
        let log = Arc::new(Log::default());
        let mut observed = Observed::new(a, log.clone());
        observed.write_all(b"hello").await.unwrap();
        let slices = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cd")];
        let n = observed.write_vectored(&slices).await.unwrap();
        b.write_all(b"reply").await.unwrap();
        drop(b);
        let mut got = Vec::new();
        observed.read_to_end(&mut got).await.unwrap();
        let mut again = [0u8; 4];
        assert_eq!(observed.read(&mut again).await.unwrap(), 0);
        observed.shutdown().await.unwrap();
        assert_eq!(got, b"reply");
        let log = log.0.lock().clone();
        let out: Vec<u8> = log
            .iter()
            .filter(|(w, d)| *w == Way::Out && d != b"<eof>")
            .flat_map(|(_, d)| d.clone())
            .collect();
        assert_eq!(out, [b"hello".as_slice(), &b"abcd"[..n]].concat());
        assert_eq!(log.iter().filter(|(w, d)| *w == Way::In && d == b"<eof>").count(), 1);
        assert_eq!(log.last().unwrap(), &(Way::Out, b"<eof>".to_vec()));
    }
}
