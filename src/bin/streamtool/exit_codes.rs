//! The exit-code contract (DESIGN.md §4.8), documented in `--help`, the man page and the
//! README.

/// Every exit code streamtool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // Subcommands that produce the other codes come with later issues.
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
  4    TLS handshake or certificate verification failure
  5    truncated stream (TLS peer closed without close_notify, --ragged-eof strict)
  6    timeout
  7    oversized frame or text decode error
  130  interrupted (SIGINT)";
