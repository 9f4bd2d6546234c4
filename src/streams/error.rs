//! The one error type of the stream layer, mirroring AnyIO's exception classes.
//!
//! | AnyIO | [`StreamError`] |
//! |---|---|
//! | `EndOfStream` | [`StreamError::EndOfStream`] |
//! | `ClosedResourceError` | [`StreamError::Closed`] |
//! | `BrokenResourceError` | [`StreamError::Broken`] |
//! | `WouldBlock` | [`StreamError::WouldBlock`] |
//! | `BusyResourceError(action)` | [`StreamError::Busy`] |
//! | `IncompleteRead` | [`StreamError::IncompleteRead`] |
//! | `DelimiterNotFound(max_bytes)` | [`StreamError::DelimiterNotFound`] |
//! | `TypedAttributeLookupError` | [`StreamError::AttributeNotFound`] |
//! | `ValueError("max_bytes must be a positive integer")` | [`StreamError::InvalidMaxBytes`] |
//! | `NotImplementedError` | [`StreamError::Unsupported`] |
//! | `UnicodeDecodeError` / `UnicodeEncodeError` | [`StreamError::Decode`] / [`StreamError::Encode`] |
//!
//! A failed send on a memory object stream hands the item back inside a
//! [`SendError`], which converts into a [`StreamError`] when the item is not wanted.

use std::fmt;
use std::io;

/// A boxed cause, kept so that `anyhow`'s error chain can print it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias of the stream layer.
pub type Result<T, E = StreamError> = std::result::Result<T, E>;

/// What a task was doing when it met another task on a single-consumer resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyAction {
    /// Another task is receiving.
    Reading,
    /// Another task is sending.
    Writing,
    /// Another task is accepting connections.
    Accepting,
}

impl fmt::Display for BusyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BusyAction::Reading => "reading from",
            BusyAction::Writing => "writing to",
            BusyAction::Accepting => "accepting connections from",
        })
    }
}

/// Everything that can go wrong on a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer closed its sending side cleanly: no more data will come.
    #[error("end of stream")]
    EndOfStream,
    /// This side closed the resource and then used it.
    #[error("the resource was closed by this side")]
    Closed,
    /// The resource is unusable for an external reason: the peer is gone, every
    /// receiver was closed, the transport failed, or a TLS stream was truncated.
    #[error("the resource is broken{}", .0.as_ref().map(|c| format!(": {c}")).unwrap_or_default())]
    Broken(#[source] Option<BoxError>),
    /// A non-blocking call would have had to wait.
    #[error("the operation would block")]
    WouldBlock,
    /// Two tasks used a single-consumer resource at once.
    #[error("another task is already {0} this resource")]
    Busy(BusyAction),
    /// The stream ended before `receive_exactly` or `receive_until` could finish.
    #[error("the stream was closed before the read operation could be completed")]
    IncompleteRead,
    /// `receive_until` saw `max_bytes` bytes without the delimiter ending among them.
    #[error("the delimiter was not found among the first {max_bytes} bytes")]
    DelimiterNotFound {
        /// The bound that was reached.
        max_bytes: usize,
    },
    /// A frame grew beyond the maximum frame length without a delimiter.
    #[error("frame longer than {max_frame} bytes (no delimiter within the limit)")]
    OversizedFrame {
        /// The maximum frame length, delimiter excluded.
        max_frame: usize,
    },
    /// A frame to send contains the delimiter, so the peer would read it as two frames.
    #[error("the frame contains the delimiter")]
    DelimiterInFrame,
    /// A typed attribute was asked for that the stream does not provide.
    #[error("attribute not found: {0}")]
    AttributeNotFound(&'static str),
    /// `receive` was called with a maximum of zero bytes.
    #[error("max_bytes must be a positive integer")]
    InvalidMaxBytes,
    /// The operation is not available on this stream (or this TLS version).
    #[error("{0}")]
    Unsupported(String),
    /// Received bytes are not valid in the stream's encoding.
    #[error("invalid {encoding} data at byte {offset}{}", if *.at_eof { " (incomplete character at end of stream)" } else { "" })]
    Decode {
        /// The encoding's name.
        encoding: &'static str,
        /// Where the malformed sequence starts, counted from the start of the stream.
        offset: u64,
        /// Whether the bad bytes were a partial character cut off by the end of the stream.
        at_eof: bool,
    },
    /// A character cannot be represented in the stream's encoding.
    #[error("character {ch:?} (U+{:04X}) cannot be encoded in {encoding}", u32::from(*.ch))]
    Encode {
        /// The encoding's name.
        encoding: &'static str,
        /// The character that has no representation.
        ch: char,
    },
}

impl StreamError {
    /// A [`StreamError::Broken`] caused by `cause`.
    pub fn broken(cause: impl Into<BoxError>) -> Self {
        StreamError::Broken(Some(cause.into()))
    }

    /// Whether this is the clean end of the stream.
    pub fn is_end_of_stream(&self) -> bool {
        matches!(self, StreamError::EndOfStream)
    }
}

impl From<io::Error> for StreamError {
    /// Transport failures are [`StreamError::Broken`], with the OS error as the cause
    /// (AnyIO turns `OSError` into `BrokenResourceError` the same way).
    fn from(err: io::Error) -> Self {
        StreamError::Broken(Some(Box::new(err)))
    }
}

impl From<StreamError> for io::Error {
    /// For the `AsyncRead`/`AsyncWrite` adapters. The [`StreamError`] stays reachable
    /// with `io::Error::get_ref` and `downcast_ref`.
    fn from(err: StreamError) -> Self {
        let kind = match &err {
            StreamError::EndOfStream | StreamError::IncompleteRead => io::ErrorKind::UnexpectedEof,
            StreamError::Closed => io::ErrorKind::NotConnected,
            StreamError::Broken(_) => io::ErrorKind::BrokenPipe,
            StreamError::WouldBlock => io::ErrorKind::WouldBlock,
            StreamError::Busy(_) => io::ErrorKind::ResourceBusy,
            StreamError::InvalidMaxBytes => io::ErrorKind::InvalidInput,
            StreamError::Unsupported(_) => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}

/// A failed send: the error and the item that was not sent, handed back.
pub struct SendError<T> {
    /// Why the item was not sent: [`StreamError::Closed`], [`StreamError::Broken`]
    /// or [`StreamError::WouldBlock`].
    pub error: StreamError,
    /// The item, returned to the caller.
    pub item: T,
}

impl<T> SendError<T> {
    /// Drops the item and keeps the error.
    pub fn into_error(self) -> StreamError {
        self.error
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError").field("error", &self.error).finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<T> std::error::Error for SendError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl<T> From<SendError<T>> for StreamError {
    fn from(err: SendError<T>) -> Self {
        err.error
    }
}
