//! Text streams: AnyIO's `TextReceiveStream`, `TextSendStream` and `TextStream`.
//!
//! Received bytes are decoded incrementally: a character split across chunks is returned
//! once its last byte arrives, and `receive` never returns an empty string. Sent text is
//! encoded whole and sent as one chunk. See [`super::encoding`] for encodings and error modes.
//!
//! # End of stream (spec D11, docs/design.md §4.7)
//! AnyIO drops a partial character pending at the end of the stream, even in strict mode.
//! Here it is an error under [`ErrorMode::Strict`] ([`StreamError::Decode`] with `at_eof`)
//! and a final U+FFFD under [`ErrorMode::Replace`]; the call after that reports the end of
//! the stream. No byte goes missing silently.

use bytes::{Bytes, BytesMut};

use super::abc::{
    AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream, DEFAULT_MAX_BYTES, ObjectReceiveStream,
    ObjectSendStream, ObjectStream, ObjectStreamConnectable,
};
use super::attrs::{AttributeValue, TypedAttributeProvider};
use super::encoding::{ErrorMode, TextDecoder, TextEncoder, TextEncoding};
use super::error::{Result, StreamError};

/// The receiving half of the text machinery, shared by the receive-only and the
/// bidirectional stream.
#[derive(Debug)]
struct Receiver {
    decoder: TextDecoder,
    chunk: BytesMut,
    /// The decoder was finished at the end of the stream.
    finished: bool,
}

impl Receiver {
    fn new(encoding: TextEncoding, mode: ErrorMode) -> Self {
        Receiver { decoder: encoding.decoder(mode), chunk: BytesMut::new(), finished: false }
    }

    async fn receive<S: ByteReceiveStream>(&mut self, transport: &mut S) -> Result<String> {
        let mut text = String::new();
        loop {
            if self.finished {
                return Err(StreamError::EndOfStream);
            }
            self.chunk.clear();
            match transport.receive_into(&mut self.chunk, DEFAULT_MAX_BYTES).await {
                Ok(_) => self.decoder.decode(&self.chunk, &mut text, false)?,
                Err(StreamError::EndOfStream) => {
                    self.finished = true;
                    self.decoder.decode(&[], &mut text, true)?;
                }
                Err(err) => return Err(err),
            }
            if !text.is_empty() {
                return Ok(text);
            }
        }
    }
}

/// Encodes `text` into one chunk.
fn encode(encoder: &TextEncoder, text: &str) -> Result<Bytes> {
    let mut out = Vec::with_capacity(text.len());
    encoder.encode(text, &mut out)?;
    Ok(Bytes::from(out))
}

/// Decodes a byte stream into strings.
///
/// # Examples
/// The seed's example: `"åäö"` goes out as UTF-8 and comes back as the same text.
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use bytes::Bytes;
/// use streamtool::streams::{
///     memory_object_stream, ErrorMode, ObjectByteReceiveStream, ObjectByteSendStream,
///     TextEncoding, TextReceiveStream, TextSendStream,
/// };
///
/// let (bytes_send, bytes_receive) = memory_object_stream::<Bytes>(1);
/// let mut text_send = TextSendStream::new(ObjectByteSendStream::new(bytes_send.clone()));
/// text_send.send("åäö").await.unwrap();
/// let result = bytes_receive.receive().await.unwrap();
/// assert_eq!(result, "åäö".as_bytes());
///
/// let mut text_receive = TextReceiveStream::new(ObjectByteReceiveStream::new(bytes_receive));
/// bytes_send.send(result).await.unwrap();
/// assert_eq!(text_receive.receive().await.unwrap(), "åäö");
/// # });
/// ```
#[derive(Debug)]
pub struct TextReceiveStream<S> {
    transport: S,
    receiver: Receiver,
}

impl<S> TextReceiveStream<S> {
    /// UTF-8, strict.
    pub fn new(transport: S) -> Self {
        Self::with_encoding(transport, TextEncoding::UTF_8, ErrorMode::Strict)
    }

    /// A given encoding and error mode.
    pub fn with_encoding(transport: S, encoding: TextEncoding, mode: ErrorMode) -> Self {
        TextReceiveStream { transport, receiver: Receiver::new(encoding, mode) }
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.transport
    }

    /// Unwraps.
    pub fn into_inner(self) -> S {
        self.transport
    }
}

impl<S: ByteReceiveStream> TextReceiveStream<S> {
    /// Receives the next piece of text (never empty).
    ///
    /// # Errors
    /// [`StreamError::Decode`] on malformed input under strict mode;
    /// [`StreamError::EndOfStream`] at the end; the transport's errors.
    ///
    /// # Cancel safety
    /// Cancel safe when the transport's `receive_into` is: decoder state lives in the struct.
    pub async fn receive(&mut self) -> Result<String> {
        self.receiver.receive(&mut self.transport).await
    }
}

impl<S: AsyncResource> AsyncResource for TextReceiveStream<S> {
    async fn aclose(&mut self) -> Result<()> {
        self.transport.aclose().await
    }
}

impl<S: TypedAttributeProvider> TypedAttributeProvider for TextReceiveStream<S> {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        self.transport.provide(name)
    }
}

impl<S: ByteReceiveStream> ObjectReceiveStream<String> for TextReceiveStream<S> {
    async fn receive(&mut self) -> Result<String> {
        TextReceiveStream::receive(self).await
    }
}

/// Encodes strings onto a byte stream.
#[derive(Debug)]
pub struct TextSendStream<S> {
    transport: S,
    encoder: TextEncoder,
}

impl<S> TextSendStream<S> {
    /// UTF-8, strict.
    pub fn new(transport: S) -> Self {
        Self::with_encoding(transport, TextEncoding::UTF_8, ErrorMode::Strict)
    }

    /// A given encoding and error mode.
    pub fn with_encoding(transport: S, encoding: TextEncoding, mode: ErrorMode) -> Self {
        TextSendStream { transport, encoder: encoding.encoder(mode) }
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.transport
    }

    /// Unwraps.
    pub fn into_inner(self) -> S {
        self.transport
    }
}

impl<S: ByteSendStream> TextSendStream<S> {
    /// Encodes `text` and sends it as one chunk.
    ///
    /// # Errors
    /// [`StreamError::Encode`] for an unmappable character under strict mode (nothing is
    /// sent); the transport's errors.
    pub async fn send(&mut self, text: &str) -> Result<()> {
        let chunk = encode(&self.encoder, text)?;
        self.transport.send(chunk).await
    }
}

impl<S: AsyncResource> AsyncResource for TextSendStream<S> {
    async fn aclose(&mut self) -> Result<()> {
        self.transport.aclose().await
    }
}

impl<S: TypedAttributeProvider> TypedAttributeProvider for TextSendStream<S> {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        self.transport.provide(name)
    }
}

impl<S: ByteSendStream> ObjectSendStream<String> for TextSendStream<S> {
    async fn send(&mut self, item: String) -> Result<()> {
        TextSendStream::send(self, &item).await
    }
}

/// A bidirectional text stream over one byte stream.
#[derive(Debug)]
pub struct TextStream<S> {
    transport: S,
    receiver: Receiver,
    encoder: TextEncoder,
}

impl<S> TextStream<S> {
    /// UTF-8, strict, both ways.
    pub fn new(transport: S) -> Self {
        Self::with_encoding(transport, TextEncoding::UTF_8, ErrorMode::Strict)
    }

    /// A given encoding and error mode, both ways.
    pub fn with_encoding(transport: S, encoding: TextEncoding, mode: ErrorMode) -> Self {
        TextStream { transport, receiver: Receiver::new(encoding, mode), encoder: encoding.encoder(mode) }
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.transport
    }

    /// Unwraps.
    pub fn into_inner(self) -> S {
        self.transport
    }
}

impl<S: ByteStream> TextStream<S> {
    /// As [`TextReceiveStream::receive`].
    ///
    /// # Errors
    /// As [`TextReceiveStream::receive`].
    pub async fn receive(&mut self) -> Result<String> {
        self.receiver.receive(&mut self.transport).await
    }

    /// As [`TextSendStream::send`].
    ///
    /// # Errors
    /// As [`TextSendStream::send`].
    pub async fn send(&mut self, text: &str) -> Result<()> {
        let chunk = encode(&self.encoder, text)?;
        self.transport.send(chunk).await
    }

    /// Half-closes the transport.
    ///
    /// # Errors
    /// The transport's.
    pub async fn send_eof(&mut self) -> Result<()> {
        self.transport.send_eof().await
    }
}

impl<S: AsyncResource> AsyncResource for TextStream<S> {
    async fn aclose(&mut self) -> Result<()> {
        self.transport.aclose().await
    }
}

impl<S: TypedAttributeProvider> TypedAttributeProvider for TextStream<S> {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        self.transport.provide(name)
    }
}

impl<S: ByteStream> ObjectReceiveStream<String> for TextStream<S> {
    async fn receive(&mut self) -> Result<String> {
        TextStream::receive(self).await
    }
}

impl<S: ByteStream> ObjectSendStream<String> for TextStream<S> {
    async fn send(&mut self, item: String) -> Result<()> {
        TextStream::send(self, &item).await
    }
}

impl<S: ByteStream> ObjectStream<String> for TextStream<S> {
    async fn send_eof(&mut self) -> Result<()> {
        TextStream::send_eof(self).await
    }
}

/// Wraps every stream another connectable opens in a [`TextStream`] (AnyIO's
/// `TextConnectable`).
#[derive(Debug, Clone)]
pub struct TextConnectable<C> {
    inner: C,
    encoding: TextEncoding,
    mode: ErrorMode,
}

impl<C> TextConnectable<C> {
    /// UTF-8, strict.
    pub fn new(inner: C) -> Self {
        Self::with_encoding(inner, TextEncoding::UTF_8, ErrorMode::Strict)
    }

    /// A given encoding and error mode.
    pub fn with_encoding(inner: C, encoding: TextEncoding, mode: ErrorMode) -> Self {
        TextConnectable { inner, encoding, mode }
    }
}

impl<C: super::abc::ByteStreamConnectable> ObjectStreamConnectable<String> for TextConnectable<C> {
    type Stream = TextStream<C::Stream>;

    async fn connect(&self) -> Result<Self::Stream> {
        Ok(TextStream::with_encoding(self.inner.connect().await?, self.encoding, self.mode))
    }
}
