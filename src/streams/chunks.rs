//! Object streams of byte chunks used as byte streams.
//!
//! AnyIO's wrappers accept "any bytes-oriented stream": a byte stream, or an object stream
//! of `bytes` carrying one chunk per item. Rust needs the second case spelled out, as these
//! adapters. [`memory_byte_stream_pair`] builds the in-memory transport used by tests
//! (TLS over memory included).

use bytes::{Bytes, BytesMut};

use super::abc::{AsyncResource, ByteReceiveStream, ByteSendStream, ObjectReceiveStream, ObjectSendStream};
use super::attrs::{AttributeValue, TypedAttributeProvider};
use super::error::{Result, StreamError};
use super::memory::{Capacity, MemoryObjectReceiveStream, MemoryObjectSendStream, memory_object_stream};
use super::stapled::StapledByteStream;

/// A byte receive stream over an object stream of chunks.
///
/// `receive(max_bytes)` keeps the part of a chunk beyond `max_bytes` for the next call;
/// `receive_into` appends whole chunks, so a buffering wrapper holds the surplus (as in
/// AnyIO, scenario D5). Empty chunks are skipped, never returned.
#[derive(Debug)]
pub struct ObjectByteReceiveStream<R> {
    inner: R,
    surplus: Bytes,
}

impl<R> ObjectByteReceiveStream<R> {
    /// Wraps an object stream of byte chunks.
    pub fn new(inner: R) -> Self {
        ObjectByteReceiveStream { inner, surplus: Bytes::new() }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Unwraps, losing any surplus of a chunk larger than the last `receive`.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: ObjectReceiveStream<Bytes>> ObjectByteReceiveStream<R> {
    async fn next_chunk(&mut self) -> Result<Bytes> {
        if !self.surplus.is_empty() {
            return Ok(std::mem::take(&mut self.surplus));
        }
        loop {
            let chunk = self.inner.receive().await?;
            if !chunk.is_empty() {
                return Ok(chunk);
            }
        }
    }
}

impl<R: AsyncResource> AsyncResource for ObjectByteReceiveStream<R> {
    async fn aclose(&mut self) -> Result<()> {
        self.inner.aclose().await
    }
}

impl<R: TypedAttributeProvider> TypedAttributeProvider for ObjectByteReceiveStream<R> {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        self.inner.provide(name)
    }
}

impl<R: ObjectReceiveStream<Bytes>> ByteReceiveStream for ObjectByteReceiveStream<R> {
    async fn receive(&mut self, max_bytes: usize) -> Result<Bytes> {
        if max_bytes == 0 {
            return Err(StreamError::InvalidMaxBytes);
        }
        let mut chunk = self.next_chunk().await?;
        if chunk.len() > max_bytes {
            self.surplus = chunk.split_off(max_bytes);
        }
        Ok(chunk)
    }

    async fn receive_into(&mut self, buf: &mut BytesMut, max_bytes: usize) -> Result<usize> {
        if max_bytes == 0 {
            return Err(StreamError::InvalidMaxBytes);
        }
        let chunk = self.next_chunk().await?;
        buf.extend_from_slice(&chunk);
        Ok(chunk.len())
    }
}

/// A byte send stream over an object stream: each `send` is one chunk.
#[derive(Debug)]
pub struct ObjectByteSendStream<S> {
    inner: S,
}

impl<S> ObjectByteSendStream<S> {
    /// Wraps an object stream of byte chunks.
    pub fn new(inner: S) -> Self {
        ObjectByteSendStream { inner }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncResource> AsyncResource for ObjectByteSendStream<S> {
    async fn aclose(&mut self) -> Result<()> {
        self.inner.aclose().await
    }
}

impl<S: TypedAttributeProvider> TypedAttributeProvider for ObjectByteSendStream<S> {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        self.inner.provide(name)
    }
}

impl<S: ObjectSendStream<Bytes>> ByteSendStream for ObjectByteSendStream<S> {
    async fn send(&mut self, data: Bytes) -> Result<()> {
        self.inner.send(data).await
    }
}

/// One end of an in-memory, bidirectional byte transport.
pub type MemoryByteStream = StapledByteStream<
    ObjectByteSendStream<MemoryObjectSendStream<Bytes>>,
    ObjectByteReceiveStream<MemoryObjectReceiveStream<Bytes>>,
>;

/// Two cross-connected in-memory byte streams: what one sends, the other receives.
/// `capacity` chunks are buffered per direction. Half-close works as on TCP.
pub fn memory_byte_stream_pair(capacity: impl Into<Capacity>) -> (MemoryByteStream, MemoryByteStream) {
    let capacity = capacity.into();
    let (a_tx, b_rx) = memory_object_stream::<Bytes>(capacity);
    let (b_tx, a_rx) = memory_object_stream::<Bytes>(capacity);
    (
        StapledByteStream::new(ObjectByteSendStream::new(a_tx), ObjectByteReceiveStream::new(a_rx)),
        StapledByteStream::new(ObjectByteSendStream::new(b_tx), ObjectByteReceiveStream::new(b_rx)),
    )
}
