//! The exit-code contract (docs/design.md §4.8), documented in `--help`, the man page and the
//! README.

/// Every exit code streamtool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success (a broken pipe on stdout also counts).
    Ok,
    /// Any other failure.
    Failure,
    /// Bad command line.
    Usage,
    /// Connect, bind or resolve failure.
    Connect,
    /// TLS handshake or verification failure.
    Tls,
    /// Truncated stream: TLS ended without close_notify under `--ragged-eof strict`.
    Truncated,
    /// A timeout expired.
    Timeout,
    /// An oversized frame or a decode error.
    Data,
    /// Interrupted by SIGINT.
    Interrupted,
    /// `connect` ended by SIGTERM.
    Terminated,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Connect => 3,
            Exit::Tls => 4,
            Exit::Truncated => 5,
            Exit::Timeout => 6,
            Exit::Data => 7,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }
}

/// The table printed at the end of `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success (a closed stdout, as in `| head`, counts as success)
  1    other failure
  2    usage error
  3    connect, bind or name resolution failure
  4    TLS handshake or certificate verification failure, or a failed check
       (connect --require, gen-cert --check)
  5    truncated stream (TLS peer closed without close_notify, --ragged-eof strict)
  6    timeout
  7    oversized frame or text decode error
  130  interrupted (SIGINT)
  143  connect ended by SIGTERM (serve and pipe shut down gracefully and exit 0)";

/// The user pressed Ctrl-C (exit 130).
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// `connect` got SIGTERM (exit 143, 128 + 15, as a shell reports a process it killed).
#[derive(Debug, thiserror::Error)]
#[error("terminated by SIGTERM; the connection was closed")]
pub struct Terminated;

/// Marks an error met during a TLS handshake with the named peer (exit 4), whatever its kind (a peer that
/// closed or a reset during the handshake is a handshake failure too).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandshakeFailed(pub String);

/// A check a script asked for failed (`connect --require`, `gen-cert --check`): exit 4,
/// as a failed verification, with the line that says which check and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

/// Advice attached to an error: printed as its own `streamtool: hint: …` line after the
/// error line, and left out of that line. It has no exit code of its own: the error it is
/// attached to decides.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Hint(pub String);

/// A usage error found after parsing (a file that cannot be combined with a flag, ...).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The rustls error in the chain, directly or inside an `io::Error` (an alert received
/// after the handshake arrives as an I/O error from the read that met it).
pub fn tls_error(err: &anyhow::Error) -> Option<&rustls::Error> {
    err.chain().find_map(|cause| {
        cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref())
        })
    })
}

/// The exit code for an error: the first cause in the chain that has one decides.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    use streamtool::streams::StreamError;
    if let Some(rustls::Error::AlertReceived(_) | rustls::Error::InvalidCertificate(_)) = tls_error(err) {
        return Exit::Tls;
    }
    // A context (as `HandshakeFailed` is) is reachable by `downcast_ref`, not by the chain.
    if err.downcast_ref::<HandshakeFailed>().is_some() {
        // A timeout during the handshake is still a timeout.
        let timed_out =
            err.chain().any(|c| matches!(c.downcast_ref::<StreamError>(), Some(StreamError::Timeout { .. })));
        return if timed_out { Exit::Timeout } else { Exit::Tls };
    }
    for cause in err.chain() {
        if cause.is::<Interrupted>() {
            return Exit::Interrupted;
        }
        if cause.is::<Terminated>() {
            return Exit::Terminated;
        }
        if cause.is::<Usage>()
            || matches!(cause.downcast_ref(), Some(streamtool::stack::OptionsError::Usage(_)))
        {
            return Exit::Usage;
        }
        if cause.is::<CheckFailed>() {
            return Exit::Tls;
        }
        if cause.is::<HandshakeFailed>() {
            // A timeout during the handshake is still a timeout.
            let timed_out = err
                .chain()
                .any(|c| matches!(c.downcast_ref::<StreamError>(), Some(StreamError::Timeout { .. })));
            return if timed_out { Exit::Timeout } else { Exit::Tls };
        }
        if let Some(stream_error) = cause.downcast_ref::<StreamError>() {
            return match stream_error {
                StreamError::Resolve { .. } | StreamError::Connect { .. } | StreamError::Bind { .. } => {
                    Exit::Connect
                }
                StreamError::Tls { .. } => Exit::Tls,
                StreamError::Truncated => Exit::Truncated,
                StreamError::Timeout { .. } => Exit::Timeout,
                StreamError::OversizedFrame { .. }
                | StreamError::DelimiterNotFound { .. }
                | StreamError::Decode { .. }
                | StreamError::Encode { .. }
                | StreamError::DelimiterInFrame
                | StreamError::OversizedDatagram { .. } => Exit::Data,
                _ => continue,
            };
        }
    }
    Exit::Failure
}
