//! Delimiter framing: an object stream of frames over a byte stream (the layer that
//! `--delimiter` and `--max-frame` switch on), built on
//! [`BufferedByteStream::receive_until`].
//!
//! - A frame is the bytes before a delimiter; the delimiter is not part of it.
//! - `max_frame` bounds a frame's length, delimiter excluded: a 64 KiB limit admits a
//!   64 KiB line. A longer frame is [`StreamError::OversizedFrame`], or, with
//!   [`Oversize::Skip`], discarded up to its delimiter and counted.
//! - At the end of the stream, bytes after the last delimiter are a final, unterminated
//!   frame ([`Trailing::Deliver`], the default: `printf 'a\nb'` is two frames, as with
//!   tokio-util's `LinesCodec`), or [`StreamError::IncompleteRead`] with
//!   [`Trailing::Error`]. Either way nothing is dropped silently.
//! - Sending a frame writes it and the delimiter in one chunk. A frame that contains the
//!   delimiter is refused ([`StreamError::DelimiterInFrame`]): the peer would read two frames.

use bytes::{Bytes, BytesMut};
use memchr::memmem;

use super::abc::{
    AsyncResource, ByteReceiveStream, ByteSendStream, ByteStream, ObjectReceiveStream, ObjectSendStream,
    ObjectStream,
};
use super::attrs::{AttributeValue, TypedAttributeProvider};
use super::buffered::BufferedByteStream;
use super::error::{Result, StreamError};

/// What to do with a frame longer than the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Oversize {
    /// Fail with [`StreamError::OversizedFrame`].
    #[default]
    Error,
    /// Discard it up to and including its delimiter, count it, and go on.
    Skip,
}

/// What to do with bytes after the last delimiter when the stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trailing {
    /// Return them as a last frame.
    #[default]
    Deliver,
    /// Fail with [`StreamError::IncompleteRead`].
    Error,
}

/// How frames are delimited and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameConfig {
    /// The delimiter (not empty).
    pub delimiter: Bytes,
    /// The longest frame accepted, delimiter excluded.
    pub max_frame: usize,
    /// The oversize policy.
    pub on_oversize: Oversize,
    /// The policy for an unterminated last frame.
    pub trailing: Trailing,
}

impl FrameConfig {
    /// Frames ending in `delimiter`, at most `max_frame` bytes each.
    ///
    /// # Panics
    /// If `delimiter` is empty: every position would be a frame boundary.
    pub fn new(delimiter: impl Into<Bytes>, max_frame: usize) -> Self {
        let delimiter = delimiter.into();
        assert!(!delimiter.is_empty(), "the frame delimiter must not be empty");
        FrameConfig { delimiter, max_frame, on_oversize: Oversize::Error, trailing: Trailing::Deliver }
    }

    /// Lines ending in `\n`, at most `max_frame` bytes each.
    pub fn lines(max_frame: usize) -> Self {
        Self::new(Bytes::from_static(b"\n"), max_frame)
    }
}

/// An object stream of frames over a byte stream.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use bytes::Bytes;
/// use streamtool::streams::{memory_byte_stream_pair, ByteSendStream, ByteStream, FrameConfig, FramedStream};
///
/// let (mut a, b) = memory_byte_stream_pair(4);
/// let mut frames = FramedStream::new(b, FrameConfig::lines(1024));
/// a.send(Bytes::from_static(b"one\ntw")).await.unwrap();
/// a.send(Bytes::from_static(b"o\nthree")).await.unwrap();
/// a.send_eof().await.unwrap();
/// assert_eq!(frames.receive().await.unwrap(), "one");
/// assert_eq!(frames.receive().await.unwrap(), "two");
/// assert_eq!(frames.receive().await.unwrap(), "three");
/// assert!(frames.receive().await.unwrap_err().is_end_of_stream());
/// # });
/// ```
#[derive(Debug)]
pub struct FramedStream<S> {
    inner: BufferedByteStream<S>,
    config: FrameConfig,
    skipped: SkipReport,
    ended: bool,
    /// Discarding an oversized frame is under way (kept across cancellation).
    skipping: bool,
    write_buf: BytesMut,
}

/// How many frames [`Oversize::Skip`] dropped, never silently: a warning for each of the
/// first [`SkipReport::WARN_EACH`], then one summary line when the stream is dropped.
#[derive(Debug)]
struct SkipReport {
    count: u64,
    max_frame: usize,
}

impl SkipReport {
    /// Skipped frames that get a warning of their own.
    const WARN_EACH: u64 = 3;

    fn skip(&mut self) {
        self.count += 1;
        if self.count <= Self::WARN_EACH {
            let more = if self.count == Self::WARN_EACH {
                "; further ones are counted, and the total reported at the end"
            } else {
                ""
            };
            tracing::warn!(
                "skipped an oversized frame (longer than {} bytes, on-oversize skip): {} so far{more}",
                self.max_frame,
                self.count
            );
        }
    }
}

impl Drop for SkipReport {
    fn drop(&mut self) {
        if self.count > Self::WARN_EACH {
            tracing::warn!(
                "skipped {} oversized frames in all (longer than {} bytes, on-oversize skip)",
                self.count,
                self.max_frame
            );
        }
    }
}

impl<S> FramedStream<S> {
    /// Frames `inner` as `config` says.
    pub fn new(inner: S, config: FrameConfig) -> Self {
        Self::from_buffered(BufferedByteStream::new(inner), config)
    }

    /// Frames an already buffered stream, keeping what it has buffered.
    pub fn from_buffered(inner: BufferedByteStream<S>, config: FrameConfig) -> Self {
        let skipped = SkipReport { count: 0, max_frame: config.max_frame };
        FramedStream { inner, config, skipped, ended: false, skipping: false, write_buf: BytesMut::new() }
    }

    /// The configuration.
    pub fn config(&self) -> &FrameConfig {
        &self.config
    }

    /// How many oversized frames were skipped under [`Oversize::Skip`].
    pub fn frames_skipped(&self) -> u64 {
        self.skipped.count
    }

    /// Whether the stream has ended: after `receive` returned the unterminated last frame,
    /// or reported the end.
    pub fn at_end(&self) -> bool {
        self.ended
    }

    /// The buffered stream underneath.
    pub fn get_ref(&self) -> &BufferedByteStream<S> {
        &self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> BufferedByteStream<S> {
        self.inner
    }
}

impl<S: ByteReceiveStream> FramedStream<S> {
    /// Receives the next frame.
    ///
    /// # Errors
    /// [`StreamError::EndOfStream`] after the last frame; [`StreamError::OversizedFrame`]
    /// under [`Oversize::Error`]; [`StreamError::IncompleteRead`] under [`Trailing::Error`];
    /// the transport's errors.
    ///
    /// # Cancel safety
    /// Cancel safe: partial frames stay buffered.
    pub async fn receive(&mut self) -> Result<Bytes> {
        let max_frame = self.config.max_frame;
        let bound = max_frame.saturating_add(self.config.delimiter.len());
        loop {
            if self.ended {
                return Err(StreamError::EndOfStream);
            }
            if self.skipping {
                match self.inner.skip_until(&self.config.delimiter).await {
                    Ok(_) => self.skipping = false,
                    Err(StreamError::EndOfStream) => {
                        self.skipping = false;
                        self.ended = true;
                    }
                    Err(err) => return Err(err),
                }
                continue;
            }
            match self.inner.receive_until(&self.config.delimiter, bound).await {
                Ok(frame) => return Ok(frame),
                Err(StreamError::DelimiterNotFound { .. }) => match self.config.on_oversize {
                    Oversize::Error => return Err(StreamError::OversizedFrame { max_frame }),
                    Oversize::Skip => {
                        // The skip itself happens at the top of the loop, so that a receive
                        // cancelled in the middle of it goes on skipping next time.
                        self.skipped.skip();
                        self.skipping = true;
                    }
                },
                Err(StreamError::IncompleteRead) => {
                    self.ended = true;
                    let rest = self.inner.buffer().len();
                    if rest == 0 {
                        return Err(StreamError::EndOfStream);
                    }
                    if self.config.trailing == Trailing::Error {
                        return Err(StreamError::IncompleteRead);
                    }
                    // The bound was not reached, so the tail fits in a frame (its last bytes
                    // may be a delimiter's prefix; they are data all the same).
                    let frame = self.inner.receive_exactly(rest).await?;
                    if frame.len() > max_frame {
                        if self.config.on_oversize == Oversize::Skip {
                            self.skipped.skip();
                            return Err(StreamError::EndOfStream);
                        }
                        return Err(StreamError::OversizedFrame { max_frame });
                    }
                    return Ok(frame);
                }
                Err(err) => return Err(err),
            }
        }
    }
}

impl<S: ByteSendStream> FramedStream<S> {
    /// Sends `frame` followed by the delimiter, as one chunk.
    ///
    /// # Errors
    /// [`StreamError::DelimiterInFrame`] if the frame contains the delimiter (nothing is
    /// sent); the transport's errors.
    pub async fn send(&mut self, frame: &[u8]) -> Result<()> {
        if memmem::find(frame, &self.config.delimiter).is_some() {
            return Err(StreamError::DelimiterInFrame);
        }
        self.write_buf.reserve(frame.len() + self.config.delimiter.len());
        self.write_buf.extend_from_slice(frame);
        self.write_buf.extend_from_slice(&self.config.delimiter);
        let chunk = self.write_buf.split().freeze();
        self.inner.get_mut().send(chunk).await
    }
}

impl<S: AsyncResource> AsyncResource for FramedStream<S> {
    async fn aclose(&mut self) -> Result<()> {
        self.inner.aclose().await
    }
}

impl<S: TypedAttributeProvider> TypedAttributeProvider for FramedStream<S> {
    fn provide(&self, name: &'static str) -> Option<Result<AttributeValue>> {
        self.inner.provide(name)
    }
}

impl<S: ByteReceiveStream> ObjectReceiveStream<Bytes> for FramedStream<S> {
    async fn receive(&mut self) -> Result<Bytes> {
        FramedStream::receive(self).await
    }
}

impl<S: ByteSendStream> ObjectSendStream<Bytes> for FramedStream<S> {
    async fn send(&mut self, item: Bytes) -> Result<()> {
        FramedStream::send(self, &item).await
    }
}

impl<S: ByteStream> ObjectStream<Bytes> for FramedStream<S> {
    async fn send_eof(&mut self) -> Result<()> {
        self.inner.send_eof().await
    }
}
