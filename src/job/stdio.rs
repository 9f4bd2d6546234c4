//! The stdio session of `connect` and one-shot `serve`: stdin to the peer and the peer to
//! stdout, by the end-of-stream rules (docs/cli.md, "End of stream";
//! [`crate::relay::run_pair`]):
//!
//! - stdin from a pipe or a file is sent to its end, whatever the peer does with its own
//!   side; only a terminal stops when the peer ends (unless `keep_sending`);
//! - the end of stdin does what `on_eof` says (FIN or close_notify, nothing, or close);
//! - reading goes on until the peer ends;
//! - a session that ends cleanly closes our side properly (FIN, close_notify); one that
//!   ends in an error, a timeout or a stop drops the connection without close_notify, so
//!   that a TLS peer can tell the stream was cut short.
//!
//! Over a plain socket, a direction with no shaping whose stdio end is a pipe, a regular
//! file or /dev/null moves with splice(2)/sendfile(2) in the event loop
//! ([`crate::stdio_fd`]); everything else goes through the library's stream layers
//! (`IoReceiveStream`/`IoSendStream` over the socket or TLS, framing and text by
//! [`crate::relay::forward_metered`]).

use std::future::Future;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::event::Report;
use crate::relay::{
    Activity, Flow, FlowEnd, Meter, OnEof, PairEnd, PairRule, Shaping, Side, forward_metered, run_pair,
};
use crate::splice::{SpliceSocket, transfer};
use crate::stack::open::{Net, PlainSocket};
use crate::stdio_fd::StdioFd;
use crate::streams::{AsyncResource, IoReceiveStream, IoSendStream};

use super::Discard;
use super::ends::is_broken_pipe;

/// How a stdio session runs.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// The shaping of what comes from the peer.
    pub inbound: Shaping,
    /// The shaping of what goes to the peer.
    pub outbound: Shaping,
    /// What the end of stdin does to the connection.
    pub on_eof: OnEof,
    /// Go on sending stdin after the peer ended its side even when stdin is a terminal
    /// (a pipe or a file always is sent to its end).
    pub keep_sending: bool,
    /// Only send: what the peer sends is read and dropped.
    pub send_only: bool,
    /// Only receive: stdin is not read.
    pub recv_only: bool,
    /// End after this long with no byte moving either way.
    pub idle_timeout: Option<Duration>,
}

/// The result of relaying one connection.
#[derive(Debug)]
pub struct Session {
    /// stdin to the peer (`None`: abandoned).
    pub up: Option<Flow>,
    /// The peer to stdout (`None`: abandoned).
    pub down: Option<Flow>,
    /// Bytes sent to the peer, also when the up direction was stopped before its end.
    pub sent: u64,
    /// Bytes received from the peer.
    pub received: u64,
    /// stdin was being read (not `recv_only`).
    pub stdin_read: bool,
}

/// How a finished session failed, naming the side that did.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// One direction failed: `what` names it (`receiving from PEER failed`, `writing to
    /// stdout failed`, `reading stdin failed`, `PEER went away: N bytes of stdin were
    /// sent, the rest was not`).
    #[error("{what}")]
    Failed {
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: crate::streams::StreamError,
    },
    /// The peer went away (a reset seen first on the receiving side) while stdin was
    /// still being sent: never silent about what did not go.
    #[error("receiving from {peer} failed: {why}; {sent} bytes of stdin were sent, the rest was not")]
    CutOff {
        /// The peer.
        peer: String,
        /// Why receiving failed, in words.
        why: String,
        /// Bytes of stdin sent.
        sent: u64,
    },
}

impl Session {
    /// The error a finished session with `peer` should end with, if any. A closed stdout
    /// (as with `| head`) is success; a peer that stopped reading while stdin still had
    /// data for it is not.
    ///
    /// # Errors
    /// [`SessionError`] for the first direction that failed.
    pub fn result(self, peer: &str) -> Result<(), SessionError> {
        use crate::relay::{FlowEnd, Side};
        let sent = self.sent;
        let stdin_cut_off = self.up.is_none() && self.stdin_read;
        for (flow, sink_is_stdout) in [(self.down, true), (self.up, false)] {
            let Some(flow) = flow else { continue };
            let FlowEnd::Failed(side, source) = flow.end else { continue };
            if side == Side::Sink && sink_is_stdout && is_broken_pipe(&source) {
                continue;
            }
            if side == Side::Source && sink_is_stdout && stdin_cut_off && super::ends::is_peer_gone(&source) {
                let why = crate::streams::error::chain(&source);
                return Err(SessionError::CutOff { peer: peer.to_string(), why, sent });
            }
            let what = match (side, sink_is_stdout) {
                (Side::Source, true) => format!("receiving from {peer} failed"),
                (Side::Sink, true) => "writing to stdout failed".to_string(),
                (Side::Source, false) => "reading stdin failed".to_string(),
                (Side::Sink, false) => {
                    format!("{peer} went away: {sent} bytes of stdin were sent, the rest was not")
                }
            };
            return Err(SessionError::Failed { what, source });
        }
        Ok(())
    }
}

/// Why a session ended before its directions did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing moved either way for this long.
    Idle(Duration),
    /// The caller's `stop` came first (Ctrl-C).
    Stop,
}

/// Whether stdin is a terminal: a person typing. Only then does the peer's end stop
/// sending; a pipe or a file is always sent to its end.
fn stdin_is_a_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// Relays stdin to the peer and the peer to stdout (see the module's doc) until both
/// directions end by the rules, nothing moved for the idle limit, or `stop` resolves.
/// `meters` count each direction's bytes as they move (for progress and the idle limit's
/// callers); `report` gets each direction's end and the line that says what a half-ended
/// session waits for.
///
/// # Errors
/// [`Stopped`]: the idle limit, or `stop`. The connection is then dropped without a
/// clean close.
pub async fn run(
    net: Net,
    options: &SessionOptions,
    meters: [&Meter; 2],
    report: &dyn Report,
    peer: &str,
    stop: impl Future<Output = ()>,
) -> Result<Session, Stopped> {
    let context = Context { options, meters, report, peer };
    match net {
        Net::Plain(PlainSocket::Tcp(s)) => context.session(SockRef(&s), SockRef(&s), Some(&s), stop).await,
        Net::Plain(PlainSocket::Unix(s)) => context.session(SockRef(&s), SockRef(&s), Some(&s), stop).await,
        Net::Boxed(io) => {
            let (net_rx, net_tx) = tokio::io::split(io);
            let no_socket: Option<&tokio::net::TcpStream> = None;
            context.session(net_rx, net_tx, no_socket, stop).await
        }
    }
}

/// What every part of one session reads.
struct Context<'a> {
    options: &'a SessionOptions,
    meters: [&'a Meter; 2],
    report: &'a dyn Report,
    peer: &'a str,
}

impl Context<'_> {
    async fn session<R, W, S>(
        &self,
        net_rx: R,
        net_tx: W,
        socket: Option<&S>,
        stop: impl Future<Output = ()>,
    ) -> Result<Session, Stopped>
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
        S: SpliceSocket,
    {
        let (options, peer) = (self.options, self.peer);
        let (net_rx, mut net_tx) = (IoReceiveStream::new(net_rx), IoSendStream::new(net_tx));
        let activity = Activity::default();
        let mut session =
            Session { up: None, down: None, sent: 0, received: 0, stdin_read: !options.recv_only };
        // A person typing stops when the peer ends; a pipe or a file never does. Without
        // stdin (recv_only), the peer's end is the session's.
        let peer_end_ends_session =
            options.recv_only || (!options.keep_sending && !options.send_only && stdin_is_a_terminal());
        let outcome = {
            let up = self.up(&mut net_tx, socket.filter(|_| options.outbound.is_raw()), &activity);
            let down = self.down(net_rx, socket.filter(|_| options.inbound.is_raw()), &activity);
            let rules = [
                // stdin -> peer: its end ends the session only with on_eof close, after a
                // lingering close (the peer's last bytes read, so no reset loses ours).
                PairRule {
                    ends_relay: options.on_eof == OnEof::Close,
                    wait_for_cause: true,
                    linger: Some(crate::relay::CLOSE_LINGER),
                },
                // peer -> stdout: a closed stdout (`| head`) ends the session at once.
                PairRule { ends_relay: peer_end_ends_session, wait_for_cause: false, linger: None },
            ];
            let waiting = |i: usize| self.report.notice(&waiting_line(i, options.on_eof, peer));
            let pair = run_pair(up, down, rules, self.meters, waiting);
            let idle = async {
                match options.idle_timeout {
                    Some(limit) => {
                        activity.idle_for(limit).await;
                        limit
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ([up, down], end) = pair => {
                    for (flow, direction) in [(&up, "stdin->peer"), (&down, "peer->stdout")] {
                        if let Some(flow) = flow {
                            super::report_direction(self.report, peer, direction, flow);
                        }
                    }
                    if let PairEnd::Stopped(1) = end && up.is_none() && !options.recv_only {
                        tracing::info!("{peer} ended its side: stdin is a terminal, so sending stops too");
                    }
                    session.up = up;
                    session.down = down;
                    Ok(())
                }
                limit = idle => Err(Stopped::Idle(limit)),
                () = stop => Err(Stopped::Stop),
            }
        };
        session.sent = session.up.as_ref().map_or_else(|| self.meters[0].get(), |f| f.bytes_out);
        session.received = session.down.as_ref().map_or_else(|| self.meters[1].get(), |f| f.bytes_in);
        // A clean end closes our side properly (FIN, close_notify; idempotent if stdin's
        // end already did). After an error, a timeout or a stop, the connection is dropped
        // without close_notify, so that a TLS peer can tell the stream was cut short.
        if outcome.is_ok()
            && !session_failed(&session)
            && let Err(err) = net_tx.aclose().await
        {
            tracing::debug!("closing the connection: {}", crate::streams::error::chain(&err));
        }
        outcome.map(|()| session)
    }

    /// stdin to the peer: nothing with recv_only (our side closed at once by
    /// on_eof), zero copy over a plain socket, otherwise through the stream layers.
    async fn up<W, S>(&self, net_tx: &mut IoSendStream<W>, zero_copy: Option<&S>, activity: &Activity) -> Flow
    where
        W: AsyncWrite + Unpin + Send,
        S: SpliceSocket,
    {
        let options = self.options;
        let half_close = options.on_eof == OnEof::HalfClose;
        if options.recv_only {
            if half_close {
                let _ = net_tx.aclose().await;
            }
            return std::future::pending::<Flow>().await;
        }
        // stdin in the event loop where it allows it.
        let stdin_fd = StdioFd::stdin();
        if let (Some(socket), Some(stdin)) = (zero_copy, stdin_fd.as_ref()) {
            tracing::debug!("stdin -> {}: zero copy", self.peer);
            let moved = |n| {
                activity.touch();
                self.meters[0].add(n);
            };
            let mut flow = spliced_flow(transfer(stdin, socket, &moved).await);
            if half_close
                && matches!(flow.end, FlowEnd::Eof)
                && let Err(err) = socket.shutdown_write()
            {
                flow.end = FlowEnd::Failed(Side::Sink, err.into());
            }
            return flow;
        }
        // TLS or shaping: the bytes go through user space.
        let stdin: Box<dyn AsyncRead + Send + Unpin> = match stdin_fd {
            Some(fd) => Box::new(fd),
            None => Box::new(tokio::io::stdin()),
        };
        let stdin = IoReceiveStream::new(stdin);
        forward_metered(stdin, net_tx, &options.outbound, activity, half_close, self.meters[0]).await
    }

    /// The peer to stdout (or dropped with send_only): zero copy over a plain socket,
    /// otherwise through the stream layers.
    async fn down<R, S>(&self, net_rx: IoReceiveStream<R>, zero_copy: Option<&S>, activity: &Activity) -> Flow
    where
        R: AsyncRead + Unpin + Send,
        S: SpliceSocket,
    {
        let options = self.options;
        if options.send_only {
            return forward_metered(net_rx, Discard, &options.inbound, activity, false, self.meters[1]).await;
        }
        let stdout_fd = StdioFd::stdout();
        if let (Some(socket), Some(stdout)) = (zero_copy, stdout_fd.as_ref()) {
            tracing::debug!("{} -> stdout: zero copy", self.peer);
            let moved = |n| {
                activity.touch();
                self.meters[1].add(n);
            };
            return spliced_flow(transfer(socket, stdout, &moved).await);
        }
        let stdout: Box<dyn AsyncWrite + Send + Unpin> = match stdout_fd {
            Some(fd) => Box::new(fd),
            None => Box::new(tokio::io::stdout()),
        };
        let stdout = IoSendStream::new(stdout);
        forward_metered(net_rx, stdout, &options.inbound, activity, true, self.meters[1]).await
    }
}

/// One direction moved by [`transfer`], as a [`Flow`].
pub fn spliced_flow(result: Result<u64, crate::splice::SpliceError>) -> Flow {
    let (bytes, end) = match result {
        Ok(n) => (n, FlowEnd::Eof),
        Err(e) => {
            (e.bytes, FlowEnd::Failed(if e.reading { Side::Source } else { Side::Sink }, e.error.into()))
        }
    };
    Flow { bytes_in: bytes, bytes_out: bytes, frames: 0, frames_skipped: 0, end }
}

/// The line that says what a session whose one direction ended is waiting for, and
/// which flag changes it.
fn waiting_line(waited_for: usize, on_eof: OnEof, peer: &str) -> String {
    let flag = "--on-eof";
    if waited_for == 0 {
        return format!(
            "{peer} has ended its side; still sending stdin until it ends (Ctrl-D at a terminal, \
             or close the pipe)"
        );
    }
    match on_eof {
        OnEof::KeepOpen => format!(
            "stdin has ended; the connection stays open and streamtool waits for {peer} to finish. \
             A server that waits for our end first needs {flag} half-close (TLS: close_notify)"
        ),
        OnEof::HalfClose => format!(
            "stdin has ended and {peer} was told (half-close); waiting for it to end its side. \
             Ctrl-C or --idle-timeout stop waiting; {flag} close stops at the end of stdin"
        ),
        OnEof::Close => format!("stdin has ended; closing the connection to {peer} ({flag} close)"),
    }
}

/// Whether a direction of the session ended in an error that is not a closed stdout.
fn session_failed(session: &Session) -> bool {
    [(&session.down, true), (&session.up, false)].into_iter().any(|(flow, sink_is_stdout)| match flow {
        Some(Flow { end: FlowEnd::Failed(side, err), .. }) => {
            !(*side == Side::Sink && sink_is_stdout && is_broken_pipe(err))
        }
        _ => false,
    })
}

/// A shared reference to a plain socket as `AsyncRead` and `AsyncWrite`: one direction of
/// a session can take the generic path while the other splices the same socket.
struct SockRef<'a, S>(&'a S);

macro_rules! sock_ref_io {
    ($t:ty) => {
        impl AsyncRead for SockRef<'_, $t> {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut TaskContext<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<std::io::Result<()>> {
                loop {
                    std::task::ready!(self.0.poll_read_ready(cx))?;
                    match self.0.try_read(buf.initialize_unfilled()) {
                        Ok(n) => {
                            buf.advance(n);
                            return Poll::Ready(Ok(()));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
            }
        }

        impl AsyncWrite for SockRef<'_, $t> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut TaskContext<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                loop {
                    std::task::ready!(self.0.poll_write_ready(cx))?;
                    match self.0.try_write(buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        result => return Poll::Ready(result),
                    }
                }
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut TaskContext<'_>,
            ) -> Poll<std::io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut TaskContext<'_>,
            ) -> Poll<std::io::Result<()>> {
                Poll::Ready(self.0.shutdown_write())
            }
        }
    };
}
sock_ref_io!(tokio::net::TcpStream);
sock_ref_io!(crate::platform::net::UnixStream);
