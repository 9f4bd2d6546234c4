//! Interoperation with tokio's `AsyncRead`/`AsyncWrite`, both ways.
//!
//! - [`IoStream`] makes any `AsyncRead + AsyncWrite` (a tokio `TcpStream`, `UnixStream`,
//!   a `DuplexStream`, a tokio-rustls stream) a [`ByteStream`]: `receive` reads straight
//!   into the caller's buffer, `send_eof` is `shutdown` (TCP `SHUT_WR`; TLS close_notify).
//!   [`IoReceiveStream`] and [`IoSendStream`] do the same for one direction (stdin, stdout).
//! - [`ByteStreamReader`] and [`ByteStreamWriter`] make a byte receive or send stream an
//!   `AsyncRead` or `AsyncWrite`, and [`ByteStreamIo`] joins a pair into one
//!   bidirectional `AsyncRead + AsyncWrite` (what tokio-rustls needs to run TLS over an
//!   in-memory transport). Each direction keeps its own operation in flight, so a pending
//!   read never blocks a write. The in-flight operation lives in one reusable allocation.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::sync::ReusableBoxFuture;

use super::abc::{AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream, DEFAULT_MAX_BYTES};
use super::attrs::TypedAttributeProvider;
use super::error::{Result, StreamError};
use super::stapled::StapledByteStream;

async fn read_into<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    max_bytes: usize,
) -> Result<usize> {
    if max_bytes == 0 {
        return Err(StreamError::InvalidMaxBytes);
    }
    buf.reserve(max_bytes);
    let n = reader.read_buf(&mut (&mut *buf).limit(max_bytes)).await?;
    if n == 0 {
        return Err(StreamError::EndOfStream);
    }
    Ok(n)
}

/// A byte stream over a tokio `AsyncRead + AsyncWrite`.
#[derive(Debug)]
pub struct IoStream<T> {
    io: T,
    closed: bool,
    eof_sent: bool,
}

impl<T> IoStream<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> Self {
        IoStream { io, closed: false, eof_sent: false }
    }

    /// The wrapped I/O object.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The wrapped I/O object, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Unwraps.
    pub fn into_inner(self) -> T {
        self.io
    }
}

impl<T: AsyncWrite + Unpin + Send> AsyncResource for IoStream<T> {
    /// Flushes, then marks the stream closed; the I/O object is released when dropped.
    async fn aclose(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        self.io.flush().await.map_err(StreamError::from)
    }
}

impl<T> TypedAttributeProvider for IoStream<T> {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteReceiveStream for IoStream<T> {
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        let mut buf = BytesMut::new();
        self.receive_into(&mut buf, max_bytes).await?;
        Ok(buf.freeze())
    }

    async fn receive_into(&mut self, buf: &mut BytesMut, max_bytes: usize) -> Result<usize> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        read_into(&mut self.io, buf, max_bytes).await
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteSendStream for IoStream<T> {
    async fn send(&mut self, data: Bytes) -> Result<()> {
        if self.closed || self.eof_sent {
            return Err(StreamError::Closed);
        }
        self.io.write_all(&data).await?;
        Ok(())
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for IoStream<T> {
    async fn send_eof(&mut self) -> Result<()> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        if !std::mem::replace(&mut self.eof_sent, true) {
            self.io.shutdown().await?;
        }
        Ok(())
    }
}

/// A byte receive stream over a tokio `AsyncRead` (stdin, a child's stdout, a file).
/// Closing it drops the reader, so that a pipe's writer sees it closed.
#[derive(Debug)]
pub struct IoReceiveStream<R> {
    /// `None` once closed.
    reader: Option<R>,
}

impl<R> IoReceiveStream<R> {
    /// Wraps `reader`.
    pub fn new(reader: R) -> Self {
        IoReceiveStream { reader: Some(reader) }
    }

    /// Unwraps; `None` if the stream was closed.
    pub fn into_inner(self) -> Option<R> {
        self.reader
    }
}

impl<R: Send> AsyncResource for IoReceiveStream<R> {
    async fn aclose(&mut self) -> Result<()> {
        self.reader = None;
        Ok(())
    }
}

impl<R> TypedAttributeProvider for IoReceiveStream<R> {}

impl<R: AsyncRead + Unpin + Send> ByteReceiveStream for IoReceiveStream<R> {
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        let mut buf = BytesMut::new();
        self.receive_into(&mut buf, max_bytes).await?;
        Ok(buf.freeze())
    }

    async fn receive_into(&mut self, buf: &mut BytesMut, max_bytes: usize) -> Result<usize> {
        let reader = self.reader.as_mut().ok_or(StreamError::Closed)?;
        read_into(reader, buf, max_bytes).await
    }
}

/// A byte send stream over a tokio `AsyncWrite` (stdout, a child's stdin, a file).
/// Closing it shuts the writer down and drops it: a TCP half sends its FIN, a pipe's
/// reader sees the end of its input, a file is flushed and closed.
#[derive(Debug)]
pub struct IoSendStream<W> {
    /// `None` once closed.
    writer: Option<W>,
}

impl<W> IoSendStream<W> {
    /// Wraps `writer`.
    pub fn new(writer: W) -> Self {
        IoSendStream { writer: Some(writer) }
    }

    /// Unwraps; `None` if the stream was closed.
    pub fn into_inner(self) -> Option<W> {
        self.writer
    }
}

impl<W: AsyncWrite + Unpin + Send> AsyncResource for IoSendStream<W> {
    async fn aclose(&mut self) -> Result<()> {
        match self.writer.take() {
            Some(mut writer) => writer.shutdown().await.map_err(StreamError::from),
            None => Ok(()),
        }
    }
}

impl<W> TypedAttributeProvider for IoSendStream<W> {}

impl<W: AsyncWrite + Unpin + Send> ByteSendStream for IoSendStream<W> {
    async fn send(&mut self, data: Bytes) -> Result<()> {
        let writer = self.writer.as_mut().ok_or(StreamError::Closed)?;
        writer.write_all(&data).await?;
        // Buffering writers (stdout, a TLS stream's records) must not sit on the data.
        writer.flush().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Our streams as tokio I/O

type ReadOp<R> = ReusableBoxFuture<'static, (R, Result<Bytes>)>;
type WriteOp<W> = ReusableBoxFuture<'static, (W, Result<()>)>;

async fn read_op<R: ByteReceiveStream + 'static>(mut stream: R) -> (R, Result<Bytes>) {
    let result = stream.receive(DEFAULT_MAX_BYTES).await;
    (stream, result)
}

enum WriteKind {
    Data(Bytes),
    Close,
}

async fn write_op<W: ByteSendStream + 'static>(mut stream: W, kind: WriteKind) -> (W, Result<()>) {
    let result = match kind {
        WriteKind::Data(data) => stream.send(data).await,
        WriteKind::Close => stream.aclose().await,
    };
    (stream, result)
}

/// An `AsyncRead` over a byte receive stream. End of stream reads as 0 bytes; other
/// errors as `io::Error`s that carry the [`StreamError`].
pub struct ByteStreamReader<R: 'static> {
    stream: Option<R>,
    op: Option<ReadOp<R>>,
    leftover: Bytes,
    eof: bool,
}

// The wrapped stream is moved into the operation's future, never pinned in place.
impl<R> Unpin for ByteStreamReader<R> {}

impl<R: ByteReceiveStream + 'static> ByteStreamReader<R> {
    /// Wraps `stream`.
    pub fn new(stream: R) -> Self {
        ByteStreamReader { stream: Some(stream), op: None, leftover: Bytes::new(), eof: false }
    }
}

impl<R: ByteReceiveStream + 'static> AsyncRead for ByteStreamReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.leftover.is_empty() && !this.eof {
            if let Some(stream) = this.stream.take() {
                match &mut this.op {
                    Some(op) => op.set(read_op(stream)),
                    None => this.op = Some(ReusableBoxFuture::new(read_op(stream))),
                }
            }
            let op = this.op.as_mut().expect("a read is in flight");
            let (stream, result) = ready!(op.poll(cx));
            this.stream = Some(stream);
            match result {
                Ok(chunk) => this.leftover = chunk,
                Err(StreamError::EndOfStream) => this.eof = true,
                Err(err) => return Poll::Ready(Err(err.into())),
            }
        }
        let n = this.leftover.len().min(buf.remaining());
        buf.put_slice(&this.leftover[..n]);
        this.leftover.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// An `AsyncWrite` over a byte send stream. `poll_write` accepts the data and sends it in
/// the background; `poll_flush` waits until it is sent; `poll_shutdown` closes the stream.
pub struct ByteStreamWriter<W: 'static> {
    stream: Option<W>,
    op: Option<WriteOp<W>>,
    in_flight: bool,
}

// The wrapped stream is moved into the operation's future, never pinned in place.
impl<W> Unpin for ByteStreamWriter<W> {}

impl<W: ByteSendStream + 'static> ByteStreamWriter<W> {
    /// Wraps `stream`.
    pub fn new(stream: W) -> Self {
        ByteStreamWriter { stream: Some(stream), op: None, in_flight: false }
    }

    fn start(&mut self, kind: WriteKind) {
        let stream = self.stream.take().expect("no write is in flight");
        match &mut self.op {
            Some(op) => op.set(write_op(stream, kind)),
            None => self.op = Some(ReusableBoxFuture::new(write_op(stream, kind))),
        }
        self.in_flight = true;
    }

    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.in_flight {
            return Poll::Ready(Ok(()));
        }
        let op = self.op.as_mut().expect("a write is in flight");
        let (stream, result) = ready!(op.poll(cx));
        self.stream = Some(stream);
        self.in_flight = false;
        Poll::Ready(result.map_err(io::Error::from))
    }
}

impl<W: ByteSendStream + 'static> AsyncWrite for ByteStreamWriter<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_in_flight(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.start(WriteKind::Data(Bytes::copy_from_slice(buf)));
        // Most sends complete at once (room in the buffer); driving the send now keeps
        // data from sitting in a future that a caller might drop without flushing.
        match self.poll_in_flight(cx) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            _ => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_in_flight(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_in_flight(cx))?;
        if self.stream.is_some() {
            self.start(WriteKind::Close);
        }
        self.poll_in_flight(cx)
    }
}

/// A bidirectional `AsyncRead + AsyncWrite` over a receive stream and a send stream.
pub struct ByteStreamIo<R: 'static, W: 'static> {
    reader: ByteStreamReader<R>,
    writer: ByteStreamWriter<W>,
}

impl<R: ByteReceiveStream + 'static, W: ByteSendStream + 'static> ByteStreamIo<R, W> {
    /// Joins `receive` and `send`.
    pub fn new(receive: R, send: W) -> Self {
        ByteStreamIo { reader: ByteStreamReader::new(receive), writer: ByteStreamWriter::new(send) }
    }

    /// Takes a stapled stream apart into its halves; `shutdown` then closes the send half,
    /// which is the stapled stream's `send_eof`.
    pub fn from_stapled(stream: StapledByteStream<W, R>) -> Self {
        let (send, receive) = stream.into_parts();
        Self::new(receive, send)
    }
}

impl<R: TypedAttributeProvider, W: TypedAttributeProvider> TypedAttributeProvider for ByteStreamIo<R, W> {
    /// The receive half's attributes, then the send half's (as a stapled stream).
    fn provide(&self, name: &'static str) -> Option<Result<super::attrs::AttributeValue>> {
        let reader = self.reader.stream.as_ref().and_then(|r| r.provide(name));
        reader.or_else(|| self.writer.stream.as_ref().and_then(|w| w.provide(name)))
    }
}

impl<R: ByteReceiveStream + 'static, W: 'static> AsyncRead for ByteStreamIo<R, W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl<R: 'static, W: ByteSendStream + 'static> AsyncWrite for ByteStreamIo<R, W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}
