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
    #[error("{}", .0.as_ref().map_or_else(|| "the connection is broken".to_string(), |c| c.to_string()))]
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
    /// The TLS peer closed the connection without close_notify under the strict
    /// ragged-EOF policy: the data may have been cut short by an attacker or a crash.
    /// (AnyIO reports this as `BrokenResourceError`; a variant of its own lets the CLI
    /// give it its documented exit code.)
    #[error("the TLS peer closed the connection without close_notify: the data may be truncated")]
    Truncated,
    /// A host name could not be resolved.
    #[error("cannot resolve {host}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// No connection could be made (refused, unreachable, ...).
    #[error("cannot connect to {target}")]
    Connect {
        /// What we tried to reach (`host:port`, `unix:/path`).
        target: String,
        /// The last attempt's error.
        #[source]
        source: io::Error,
    },
    /// An address could not be listened on.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file could not be opened.
    #[error("cannot open {path}")]
    Open {
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A child process could not be started.
    #[error("cannot run {command:?}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A network phase took longer than its limit.
    #[error("{phase} timed out after {}", crate::streams::error::format_duration(*.after))]
    Timeout {
        /// Which phase: connect, TLS handshake, idle, close.
        phase: Phase,
        /// The limit that expired.
        after: std::time::Duration,
    },
    /// The TLS handshake failed, or the peer's certificate was not accepted.
    #[error("TLS handshake failed{}", .peer.as_ref().map(|p| format!(" with {p}")).unwrap_or_default())]
    Tls {
        /// The peer, when known.
        peer: Option<String>,
        /// What rustls reported.
        #[source]
        source: BoxError,
    },
    /// TLS settings could not be put together (bad certificate, key, version range, ...).
    #[error("invalid TLS configuration: {0}")]
    TlsConfig(String),
    /// A typed attribute was asked for that the stream does not provide.
    #[error("attribute not found: {0}")]
    AttributeNotFound(&'static str),
    /// `receive` was called with a maximum of zero bytes.
    #[error("max_bytes must be a positive integer")]
    InvalidMaxBytes,
    /// The operation is not available on this stream (or this TLS version).
    #[error("{0}")]
    Unsupported(String),
    /// A datagram larger than the path takes: nothing of it was sent (or, received, it
    /// was dropped whole). Never cut to fit.
    #[error("datagram of {size} bytes is larger than the {max}-byte maximum{}", .peer.as_ref().map(|p| format!(" for {p}")).unwrap_or_default())]
    OversizedDatagram {
        /// Its length (for a received one: more than `max`).
        size: usize,
        /// The most this socket sends or receives in one datagram.
        max: usize,
        /// Where it went or came from, when known.
        peer: Option<String>,
    },
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

/// A network phase that has its own timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the connection (all addresses, Happy Eyeballs included).
    Connect,
    /// The TLS handshake.
    Handshake,
    /// A STARTTLS negotiation (the plaintext exchange before a TLS handshake).
    Starttls,
    /// Waiting for data with nothing moving in either direction.
    Idle,
    /// Closing: waiting for the peer's close_notify or for the child to exit.
    Close,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Handshake => "TLS handshake",
            Phase::Starttls => "STARTTLS negotiation",
            Phase::Idle => "idle timeout: the connection",
            Phase::Close => "close",
        })
    }
}

/// Runs `fut` within `limit` (if any); expiry is [`StreamError::Timeout`] naming `phase`.
///
/// # Errors
/// `fut`'s error, or the timeout.
pub async fn within<T>(
    phase: Phase,
    limit: Option<std::time::Duration>,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match limit {
        Some(after) => {
            tokio::time::timeout(after, fut).await.map_err(|_| StreamError::Timeout { phase, after })?
        }
        None => fut.await,
    }
}

/// An error and its causes on one line: `cannot connect to x:1: Connection refused`.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// `1.5s`, `250ms`, `2m`: how durations read in messages.
pub fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
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

    /// Whether `cause` (one error of a chain) is an idle timeout.
    pub fn is_idle_timeout_in(cause: &(dyn std::error::Error + 'static)) -> bool {
        matches!(cause.downcast_ref::<StreamError>(), Some(StreamError::Timeout { phase: Phase::Idle, .. }))
    }
}

impl From<io::Error> for StreamError {
    /// Transport failures are [`StreamError::Broken`], with the OS error as the cause
    /// (AnyIO turns `OSError` into `BrokenResourceError` the same way). An `io::Error`
    /// that carries a [`StreamError`] (from the `AsyncRead`/`AsyncWrite` adapters) gives it
    /// back unchanged.
    fn from(err: io::Error) -> Self {
        if err.get_ref().is_some_and(|inner| inner.is::<StreamError>()) {
            let inner = err.into_inner().expect("checked above");
            return *inner.downcast::<StreamError>().expect("checked above");
        }
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
