//! The stream interfaces: AnyIO's `abc/_streams.py` and `abc/_resources.py`.
//!
//! | AnyIO | here |
//! |---|---|
//! | `AsyncResource.aclose()` | [`AsyncResource::aclose`] |
//! | `ByteReceiveStream` / `ByteSendStream` / `ByteStream` | [`ByteReceiveStream`] / [`ByteSendStream`] / [`ByteStream`] |
//! | `ObjectReceiveStream[T]` / `ObjectSendStream[T]` / `ObjectStream[T]` | [`ObjectReceiveStream`] / [`ObjectSendStream`] / [`ObjectStream`] |
//!
//! Methods take `&mut self`: two tasks cannot receive (or send) on one stream at the
//! same time, which AnyIO reports at run time as `BusyResourceError` (scenarios 81-82) and
//! Rust rejects at compile time. Every future returned here is `Send`, so streams can move
//! between the tasks of a multi-threaded runtime.
//!
//! ```compile_fail,E0499
//! # async fn busy(mut stream: streamtool::streams::MemoryByteStream) {
//! use streamtool::streams::ByteReceiveStream;
//! // Two receives in flight on one stream: error[E0499], the stream is borrowed twice.
//! let first = stream.receive(10);
//! let second = stream.receive(10);
//! let _ = futures_util::future::join(first, second).await;
//! # }
//! ```
//!
//! Full-duplex use goes through halves that each own one direction (a stapled stream's
//! fields, `TcpStream::into_split`).
//!
//! Byte data travels as [`Bytes`]: a relay reads into one reusable `BytesMut`, freezes the
//! filled part and sends it, and the allocation comes back when the sender is done with it.

use std::future::Future;

use bytes::{Bytes, BytesMut};

use super::attrs::TypedAttributeProvider;
use super::error::{Result, StreamError};

/// The default and largest chunk a byte stream hands out at once (AnyIO's 65536).
pub const DEFAULT_MAX_BYTES: usize = 65536;

/// A resource that must be closed (AnyIO's `AsyncResource`).
pub trait AsyncResource: Send {
    /// Closes the resource. Idempotent: a second call does nothing.
    ///
    /// After closing, the resource's operations fail with [`StreamError::Closed`].
    fn aclose(&mut self) -> impl Future<Output = Result<()>> + Send;
}

/// A stream that receives bytes, with no regard for how the sender chunked them.
pub trait ByteReceiveStream: AsyncResource + TypedAttributeProvider {
    /// Receives at least one and at most `max_bytes` bytes. Never returns an empty chunk.
    ///
    /// # Errors
    /// [`StreamError::InvalidMaxBytes`] if `max_bytes` is 0; [`StreamError::EndOfStream`]
    /// once the peer has closed its side; [`StreamError::Closed`] after [`AsyncResource::aclose`];
    /// [`StreamError::Broken`] when the transport failed.
    ///
    /// # Cancel safety
    /// Implementations in this crate are cancel safe: dropping the future loses no data.
    fn receive(&mut self, max_bytes: usize) -> impl Future<Output = Result<Bytes>> + Send;

    /// Receives into the end of `buf` and returns how many bytes were appended (at least one).
    ///
    /// `max_bytes` bounds a byte stream's read. A stream that carries whole chunks (an
    /// object stream of bytes behind [`ObjectByteReceiveStream`](super::ObjectByteReceiveStream))
    /// may append a whole chunk, so that a buffering wrapper keeps the surplus itself
    /// (AnyIO's `BufferedByteReceiveStream` does the same).
    ///
    /// The default calls [`ByteReceiveStream::receive`] and copies; transports override it
    /// to read straight into `buf`.
    ///
    /// # Errors
    /// As [`ByteReceiveStream::receive`].
    ///
    /// # Cancel safety
    /// Cancel safe when `receive` is: nothing is appended unless the future completes.
    fn receive_into(
        &mut self,
        buf: &mut BytesMut,
        max_bytes: usize,
    ) -> impl Future<Output = Result<usize>> + Send {
        async move {
            let chunk = self.receive(max_bytes).await?;
            buf.extend_from_slice(&chunk);
            Ok(chunk.len())
        }
    }
}

/// A stream that sends bytes.
pub trait ByteSendStream: AsyncResource + TypedAttributeProvider {
    /// Sends all of `data`.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after this side closed; [`StreamError::Broken`] when the
    /// peer is gone or the transport failed.
    ///
    /// # Cancel safety
    /// Not cancel safe: if the future is dropped, an unknown prefix of `data` was sent.
    fn send(&mut self, data: Bytes) -> impl Future<Output = Result<()>> + Send;
}

/// A bidirectional byte stream that can end its sending side alone (half-close).
pub trait ByteStream: ByteReceiveStream + ByteSendStream {
    /// Tells the peer that nothing more will be sent, while receiving goes on.
    /// Idempotent. Sending afterwards fails.
    ///
    /// # Errors
    /// [`StreamError::Unsupported`] where the transport cannot half-close (TLS 1.2);
    /// [`StreamError::Broken`] when the transport failed.
    fn send_eof(&mut self) -> impl Future<Output = Result<()>> + Send;
}

/// A stream that receives whole objects, in order and without loss.
pub trait ObjectReceiveStream<T: Send>: AsyncResource + TypedAttributeProvider {
    /// Receives the next item.
    ///
    /// # Errors
    /// [`StreamError::EndOfStream`] when every sender is gone and nothing is left;
    /// [`StreamError::Closed`] after this side closed; [`StreamError::Broken`] on failure.
    fn receive(&mut self) -> impl Future<Output = Result<T>> + Send;
}

/// A stream that sends whole objects.
pub trait ObjectSendStream<T: Send>: AsyncResource + TypedAttributeProvider {
    /// Sends `item`.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after this side closed; [`StreamError::Broken`] when no
    /// receiver is left or the transport failed.
    fn send(&mut self, item: T) -> impl Future<Output = Result<()>> + Send;

    /// Sends `item` without waiting (AnyIO's `send_nowait`, PR #1241).
    ///
    /// # Errors
    /// [`StreamError::WouldBlock`] if sending would have to wait; the default is
    /// [`StreamError::Unsupported`] naming the type, for streams that cannot do it.
    fn send_nowait(&mut self, item: T) -> Result<()> {
        drop(item);
        Err(StreamError::Unsupported(format!(
            "'send_nowait' method not implemented in {}",
            std::any::type_name::<Self>()
        )))
    }
}

/// A bidirectional object stream with half-close.
pub trait ObjectStream<T: Send>: ObjectReceiveStream<T> + ObjectSendStream<T> {
    /// Tells the peer that nothing more will be sent. Idempotent.
    ///
    /// # Errors
    /// As [`ByteStream::send_eof`].
    fn send_eof(&mut self) -> impl Future<Output = Result<()>> + Send;
}

/// A stream of objects that may be lost, duplicated or reordered on the way, with no end
/// of stream (AnyIO's `UnreliableObjectReceiveStream`): a datagram socket's receiving side.
pub trait UnreliableObjectReceiveStream<T: Send>: AsyncResource + TypedAttributeProvider {
    /// Receives the next item. There is no end of stream: a peer's closing is not seen.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after this side closed; others by the transport (see the
    /// implementing type).
    fn receive(&mut self) -> impl Future<Output = Result<T>> + Send;
}

/// A stream that sends objects without a promise of delivery (AnyIO's
/// `UnreliableObjectSendStream`): a datagram socket's sending side.
pub trait UnreliableObjectSendStream<T: Send>: AsyncResource + TypedAttributeProvider {
    /// Sends `item`; success says it left this side, not that it arrived.
    ///
    /// # Errors
    /// [`StreamError::Closed`] after this side closed; others by the transport.
    fn send(&mut self, item: T) -> impl Future<Output = Result<()>> + Send;
}

/// Both directions of an unreliable object stream (AnyIO's `UnreliableObjectStream`).
pub trait UnreliableObjectStream<T: Send>:
    UnreliableObjectReceiveStream<T> + UnreliableObjectSendStream<T>
{
}

impl<T: Send, S: UnreliableObjectReceiveStream<T> + UnreliableObjectSendStream<T>> UnreliableObjectStream<T>
    for S
{
}

/// Something that opens byte streams (AnyIO's `ByteStreamConnectable`): a TCP address, a
/// UNIX socket path, or a wrapper that adds a layer to what another connectable opens.
pub trait ByteStreamConnectable: Send + Sync {
    /// The stream a connection gives.
    type Stream: ByteStream;

    /// Opens a new connection.
    ///
    /// # Errors
    /// The transport's or the layer's connect errors.
    fn connect(&self) -> impl Future<Output = Result<Self::Stream>> + Send;
}

/// Something that opens object streams (AnyIO's `ObjectStreamConnectable`).
pub trait ObjectStreamConnectable<T: Send>: Send + Sync {
    /// The stream a connection gives.
    type Stream: ObjectStream<T>;

    /// Opens a new connection.
    ///
    /// # Errors
    /// The transport's or the layer's connect errors.
    fn connect(&self) -> impl Future<Output = Result<Self::Stream>> + Send;
}

// A borrowed stream is a stream: layers and relays can work on `&mut S` while the caller
// keeps the stream (to close it gracefully afterwards, for instance).
impl<T: AsyncResource + ?Sized> AsyncResource for &mut T {
    fn aclose(&mut self) -> impl Future<Output = Result<()>> + Send {
        (**self).aclose()
    }
}

impl<T: ByteReceiveStream + ?Sized> ByteReceiveStream for &mut T {
    fn receive(&mut self, max_bytes: usize) -> impl Future<Output = Result<Bytes>> + Send {
        (**self).receive(max_bytes)
    }

    fn receive_into(
        &mut self,
        buf: &mut BytesMut,
        max_bytes: usize,
    ) -> impl Future<Output = Result<usize>> + Send {
        (**self).receive_into(buf, max_bytes)
    }
}

impl<T: ByteSendStream + ?Sized> ByteSendStream for &mut T {
    fn send(&mut self, data: Bytes) -> impl Future<Output = Result<()>> + Send {
        (**self).send(data)
    }
}
