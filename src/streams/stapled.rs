//! Stapled streams: one send stream and one receive stream joined into a bidirectional
//! stream (AnyIO's `StapledByteStream` and `StapledObjectStream`).
//!
//! `send_eof` closes the send half only; receiving goes on. `aclose` closes the send half,
//! then the receive half. Typed attributes are the union of both halves' and the receive
//! half wins where both answer.

use bytes::Bytes;

use super::abc::{
    AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream, ObjectReceiveStream, ObjectSendStream,
    ObjectStream,
};
use super::attrs::{AttributeValue, TypedAttributeProvider};
use super::error::{Result, StreamError};

/// A byte stream made of a send stream and a receive stream.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use bytes::Bytes;
/// use streamtool::streams::{memory_byte_stream_pair, ByteReceiveStream, ByteSendStream, ByteStream};
///
/// let (mut a, mut b) = memory_byte_stream_pair(4);
/// a.send(Bytes::from_static(b"ping")).await.unwrap();
/// a.send_eof().await.unwrap();
/// assert_eq!(b.receive(64).await.unwrap(), "ping");
/// assert!(b.receive(64).await.unwrap_err().is_end_of_stream());
/// b.send(Bytes::from_static(b"pong")).await.unwrap(); // the other direction is still open
/// assert_eq!(a.receive(64).await.unwrap(), "pong");
/// # });
/// ```
#[derive(Debug)]
pub struct StapledByteStream<S, R> {
    /// The half that sends.
    pub send_stream: S,
    /// The half that receives.
    pub receive_stream: R,
}

impl<S, R> StapledByteStream<S, R> {
    /// Staples `send_stream` and `receive_stream` together.
    pub fn new(send_stream: S, receive_stream: R) -> Self {
        StapledByteStream { send_stream, receive_stream }
    }

    /// Takes the two halves apart again: `(send, receive)`.
    pub fn into_parts(self) -> (S, R) {
        (self.send_stream, self.receive_stream)
    }
}

impl<S: AsyncResource, R: AsyncResource> AsyncResource for StapledByteStream<S, R> {
    async fn aclose(&mut self) -> Result<()> {
        self.send_stream.aclose().await?;
        self.receive_stream.aclose().await
    }
}

impl<S: TypedAttributeProvider, R: TypedAttributeProvider> TypedAttributeProvider
    for StapledByteStream<S, R>
{
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        self.receive_stream.provide(name).or_else(|| self.send_stream.provide(name))
    }
}

impl<S: ByteSendStream, R: ByteReceiveStream> ByteReceiveStream for StapledByteStream<S, R> {
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        if max_bytes == 0 {
            return Err(StreamError::InvalidMaxBytes);
        }
        self.receive_stream.receive(max_bytes).await
    }

    async fn receive_into(&mut self, buf: &mut bytes::BytesMut, max_bytes: usize) -> Result<usize> {
        if max_bytes == 0 {
            return Err(StreamError::InvalidMaxBytes);
        }
        self.receive_stream.receive_into(buf, max_bytes).await
    }
}

impl<S: ByteSendStream, R: ByteReceiveStream> ByteSendStream for StapledByteStream<S, R> {
    async fn send(&mut self, data: Bytes) -> Result<()> {
        self.send_stream.send(data).await
    }
}

impl<S: ByteSendStream, R: ByteReceiveStream> ByteStream for StapledByteStream<S, R> {
    /// Closes the send half (idempotent); the receive half stays open.
    async fn send_eof(&mut self) -> Result<()> {
        self.send_stream.aclose().await
    }
}

/// An object stream made of a send stream and a receive stream.
#[derive(Debug)]
pub struct StapledObjectStream<S, R> {
    /// The half that sends.
    pub send_stream: S,
    /// The half that receives.
    pub receive_stream: R,
}

impl<S, R> StapledObjectStream<S, R> {
    /// Staples `send_stream` and `receive_stream` together.
    pub fn new(send_stream: S, receive_stream: R) -> Self {
        StapledObjectStream { send_stream, receive_stream }
    }

    /// Takes the two halves apart again: `(send, receive)`.
    pub fn into_parts(self) -> (S, R) {
        (self.send_stream, self.receive_stream)
    }
}

impl<S: AsyncResource, R: AsyncResource> AsyncResource for StapledObjectStream<S, R> {
    async fn aclose(&mut self) -> Result<()> {
        self.send_stream.aclose().await?;
        self.receive_stream.aclose().await
    }
}

impl<S: TypedAttributeProvider, R: TypedAttributeProvider> TypedAttributeProvider
    for StapledObjectStream<S, R>
{
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        self.receive_stream.provide(name).or_else(|| self.send_stream.provide(name))
    }
}

impl<T: Send, S, R> ObjectReceiveStream<T> for StapledObjectStream<S, R>
where
    S: AsyncResource + TypedAttributeProvider,
    R: ObjectReceiveStream<T>,
{
    async fn receive(&mut self) -> Result<T> {
        self.receive_stream.receive().await
    }
}

impl<T: Send, S, R> ObjectSendStream<T> for StapledObjectStream<S, R>
where
    S: ObjectSendStream<T>,
    R: AsyncResource + TypedAttributeProvider,
{
    async fn send(&mut self, item: T) -> Result<()> {
        self.send_stream.send(item).await
    }

    /// Delegates to the send half's `send_nowait`; where that half has none, its
    /// [`StreamError::Unsupported`] error names the half's type.
    fn send_nowait(&mut self, item: T) -> Result<()> {
        self.send_stream.send_nowait(item)
    }
}

impl<T: Send, S, R> ObjectStream<T> for StapledObjectStream<S, R>
where
    S: ObjectSendStream<T>,
    R: ObjectReceiveStream<T>,
{
    /// Closes the send half (idempotent); the receive half stays open.
    async fn send_eof(&mut self) -> Result<()> {
        self.send_stream.aclose().await
    }
}
