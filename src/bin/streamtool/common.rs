//! What `serve` and `connect` share: TLS settings from flags, shaping from flags,
//! certificate descriptions, and the stdio relay session.

use std::fmt::Display;

use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result};
use streamtool::event::Event;
use streamtool::relay::{
    Activity, Flow, FlowEnd, Meter, OnEof, PairEnd, PairRule, Shaping, Side, forward_metered, run_pair,
};
use streamtool::splice::{SpliceSocket, transfer};
use streamtool::stdio_fd::StdioFd;
use streamtool::streams::socket::FamilyPreference;
use streamtool::streams::tls::{self, TlsStream};
use streamtool::streams::{IoReceiveStream, IoSendStream, StreamError};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cli::{NetArgs, TlsArgs};
use crate::exit_codes::{Interrupted, Usage};
use crate::ui::Ui;

/// Any bidirectional transport, boxed once per connection.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A network stream with what is known about its TLS session.
pub struct NetStream {
    pub io: NetIo,
}

impl NetStream {
    /// A plain socket: stdio can be spliced to and from it.
    pub fn plain(socket: PlainSocket) -> Self {
        NetStream { io: NetIo::Plain(socket) }
    }

    /// Anything else: TLS, or a connection kept whole.
    pub fn boxed(io: Box<dyn Io>) -> Self {
        NetStream { io: NetIo::Boxed(io) }
    }
}

pub use streamtool::job::Discard;
pub use streamtool::job::child::{command_stopped_reading, reap_child, until_exit};
pub use streamtool::job::cut::{CutFlag, Cuttable, cut, reset_on_close};
pub use streamtool::job::ends::{cut_short, is_broken_pipe, is_peer_gone, peer_left};
pub use streamtool::stack::open::PlainSocket;

/// A library [`OpenError`](streamtool::stack::open::OpenError) as the binary reports it:
/// a failed handshake is marked [`HandshakeFailed`](crate::exit_codes::HandshakeFailed)
/// (exit 4) whatever its cause.
pub fn open_error(err: streamtool::stack::open::OpenError) -> anyhow::Error {
    use streamtool::stack::open::OpenError;
    match err {
        OpenError::Connect(err) => err.into(),
        OpenError::Handshake { target, source } => {
            anyhow::Error::new(source).context(crate::exit_codes::HandshakeFailed(target))
        }
    }
}

/// A network stream's transport.
pub enum NetIo {
    /// A plain socket (zero-copy capable).
    Plain(PlainSocket),
    /// Anything else (TLS).
    Boxed(Box<dyn Io>),
}

impl NetIo {
    /// The transport as one boxed stream.
    pub fn into_boxed(self) -> Box<dyn Io> {
        match self {
            NetIo::Plain(PlainSocket::Tcp(s)) => Box::new(s),
            NetIo::Plain(PlainSocket::Unix(s)) => Box::new(s),
            NetIo::Boxed(io) => io,
        }
    }
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
sock_ref_io!(tokio::net::UnixStream);

pub fn family(net: &NetArgs) -> FamilyPreference {
    match (net.ipv4, net.ipv6) {
        (true, _) => FamilyPreference::V4Only,
        (_, true) => FamilyPreference::V6Only,
        _ => FamilyPreference::Any,
    }
}

/// Describing a certificate for `--show-cert`, events and the self-signed banner (moved to
/// the library: `streamtool::certs::describe`).
pub use streamtool::certs::{certificate_json, describe_certificate, pin_lines, self_signed_banner};

/// Logs and emits what a handshake negotiated.
pub fn report_handshake<IO>(stream: &TlsStream<IO>, ui: &Ui, peer: &(impl Display + ?Sized))
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    let version = stream.protocol_version().map(|v| v.to_string()).unwrap_or_default();
    let cipher = stream.cipher_suite().unwrap_or_default();
    let alpn = stream.alpn_protocol().map(|p| String::from_utf8_lossy(&p).into_owned());
    tracing::info!(%peer, %version, %cipher, alpn = alpn.as_deref().unwrap_or("-"), "TLS handshake done");
    let certs = stream.peer_certificates();
    ui.emit(|| Event::Handshake {
        peer: peer.to_string(),
        tls_version: version,
        cipher,
        alpn,
        sni: stream.server_name(),
        peer_certificate: certs.first().map(|c| certificate_json(c.as_ref())),
    });
}

/// The server side of a TLS handshake with the diagnosis of clients that do not speak TLS
/// (moved to the library: `streamtool::streams::tls::accept`).
pub use streamtool::streams::tls::accept_tls;

/// The result of relaying one connection.
pub struct Session {
    pub up: Option<Flow>,
    pub down: Option<Flow>,
    /// Bytes sent to the peer, also when the up direction was stopped before its end.
    pub sent: u64,
    /// Bytes received from the peer.
    pub received: u64,
    /// stdin was being read (not `--recv-only`).
    pub stdin_read: bool,
}

/// Whether stdin is a terminal: a person typing. Only then does the peer's end stop
/// sending (and `connect` exit); a pipe or a file is always sent to its end.
fn stdin_is_a_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// How a stdio session runs.
pub struct SessionOptions {
    pub inbound: Shaping,
    pub outbound: Shaping,
    /// What the end of stdin does to the connection.
    pub on_eof: OnEof,
    /// Go on sending stdin after the peer ended its side even when stdin is a terminal
    /// (a pipe or a file always is sent to its end).
    pub keep_sending: bool,
    pub send_only: bool,
    pub recv_only: bool,
    pub idle_timeout: Option<Duration>,
    /// Show progress (`--progress`).
    pub progress: bool,
}

/// Relays stdin to the peer and the peer to stdout by the end-of-stream rules
/// (docs/cli.md, "End of stream"; [`streamtool::relay::run_pair`]):
/// - stdin from a pipe or a file is sent to its end, whatever the peer does with its own
///   side; only a terminal stops when the peer ends (unless `keep_sending`);
/// - the end of stdin does what `on_eof` says (FIN or close_notify, nothing, or close);
/// - reading goes on until the peer ends;
/// - a session that ends cleanly closes our side properly (FIN, close_notify); one that
///   ends in an error, a timeout or Ctrl-C drops the connection without close_notify, so
///   that a TLS peer can tell the stream was cut short.
///
/// Over a plain socket, a direction with no shaping whose stdio end is a pipe, a regular
/// file or /dev/null moves with splice(2)/sendfile(2) in the event loop
/// (`streamtool::stdio_fd`); everything else goes through tokio's stdin and stdout.
pub async fn stdio_session(net: NetStream, options: SessionOptions, ui: &Ui, peer: &str) -> Result<Session> {
    match net.io {
        NetIo::Plain(PlainSocket::Tcp(s)) => {
            session(SockRef(&s), SockRef(&s), Some(&s), options, ui, peer).await
        }
        NetIo::Plain(PlainSocket::Unix(s)) => {
            session(SockRef(&s), SockRef(&s), Some(&s), options, ui, peer).await
        }
        NetIo::Boxed(io) => {
            let (net_rx, net_tx) = tokio::io::split(io);
            let no_socket: Option<&tokio::net::TcpStream> = None;
            session(net_rx, net_tx, no_socket, options, ui, peer).await
        }
    }
}

/// One direction moved by [`streamtool::splice::transfer`], as a [`Flow`].
fn spliced_flow(result: Result<u64, streamtool::splice::SpliceError>) -> Flow {
    let (bytes, end) = match result {
        Ok(n) => (n, FlowEnd::Eof),
        Err(e) => {
            (e.bytes, FlowEnd::Failed(if e.reading { Side::Source } else { Side::Sink }, e.error.into()))
        }
    };
    Flow { bytes_in: bytes, bytes_out: bytes, frames: 0, frames_skipped: 0, end }
}

/// The line that says what a session whose one direction ended is waiting for, and
/// which flag changes it (not with `-q`).
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

async fn session<R, W, S>(
    net_rx: R,
    net_tx: W,
    socket: Option<&S>,
    options: SessionOptions,
    ui: &Ui,
    peer: &str,
) -> Result<Session>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
    S: SpliceSocket,
{
    use streamtool::streams::AsyncResource;

    let (net_rx, mut net_tx) = (IoReceiveStream::new(net_rx), IoSendStream::new(net_tx));
    let activity = Activity::default();
    let half_close = options.on_eof == OnEof::HalfClose;
    // stdin and stdout in the event loop where they allow it; zero copy where, besides,
    // the socket is plain and the direction unshaped.
    let stdin_fd = if options.recv_only { None } else { StdioFd::stdin() };
    let stdout_fd = if options.send_only { None } else { StdioFd::stdout() };
    let zero_copy_up = socket.filter(|_| options.outbound.is_raw());
    let zero_copy_down = socket.filter(|_| options.inbound.is_raw());
    let mut session = Session { up: None, down: None, sent: 0, received: 0, stdin_read: !options.recv_only };
    let (up_meter, down_meter) = (Meter::default(), Meter::default());
    let progress = options.progress.then(|| {
        crate::progress::Progress::start(
            [format!("stdin -> {peer}"), format!("{peer} -> stdout")],
            [up_meter.clone(), down_meter.clone()],
        )
    });
    // A person typing stops when the peer ends; a pipe or a file never does. Without
    // stdin (--recv-only), the peer's end is the session's.
    let peer_end_ends_session =
        options.recv_only || (!options.keep_sending && !options.send_only && stdin_is_a_terminal());
    let outcome: Result<()> = {
        let up = async {
            if options.recv_only {
                if half_close {
                    let _ = net_tx.aclose().await;
                }
                std::future::pending::<Flow>().await
            } else if let (Some(socket), Some(stdin)) = (zero_copy_up, stdin_fd.as_ref()) {
                tracing::debug!("stdin -> {peer}: zero copy");
                let moved = |n| {
                    activity.touch();
                    up_meter.add(n);
                };
                let mut flow = spliced_flow(transfer(stdin, socket, &moved).await);
                if half_close
                    && matches!(flow.end, FlowEnd::Eof)
                    && let Err(err) = socket.shutdown_write()
                {
                    flow.end = FlowEnd::Failed(Side::Sink, err.into());
                }
                flow
            } else {
                // TLS or shaping: the bytes go through user space (stdin still in the event
                // loop when it allows it).
                let stdin: Box<dyn AsyncRead + Send + Unpin> = match stdin_fd {
                    Some(fd) => Box::new(fd),
                    None => Box::new(tokio::io::stdin()),
                };
                let stdin = IoReceiveStream::new(stdin);
                forward_metered(stdin, &mut net_tx, &options.outbound, &activity, half_close, &up_meter).await
            }
        };
        let down = async {
            if options.send_only {
                forward_metered(net_rx, Discard, &options.inbound, &activity, false, &down_meter).await
            } else if let (Some(socket), Some(stdout)) = (zero_copy_down, stdout_fd.as_ref()) {
                tracing::debug!("{peer} -> stdout: zero copy");
                let moved = |n| {
                    activity.touch();
                    down_meter.add(n);
                };
                spliced_flow(transfer(socket, stdout, &moved).await)
            } else {
                let stdout: Box<dyn AsyncWrite + Send + Unpin> = match stdout_fd {
                    Some(fd) => Box::new(fd),
                    None => Box::new(tokio::io::stdout()),
                };
                let stdout = IoSendStream::new(stdout);
                forward_metered(net_rx, stdout, &options.inbound, &activity, true, &down_meter).await
            }
        };
        let rules = [
            // stdin -> peer: its end ends the session only with --on-eof close.
            PairRule { ends_relay: options.on_eof == OnEof::Close, wait_for_cause: true },
            // peer -> stdout: a closed stdout (`| head`) ends the session at once.
            PairRule { ends_relay: peer_end_ends_session, wait_for_cause: false },
        ];
        let on_eof = options.on_eof;
        let waiting = |i: usize| {
            ui.notice(&waiting_line(i, on_eof, peer));
        };
        let pair = run_pair(up, down, rules, [&up_meter, &down_meter], waiting);
        let idle = async {
            match options.idle_timeout {
                Some(limit) => {
                    activity.idle_for(limit).await;
                    limit
                }
                None => std::future::pending().await,
            }
        };
        // One stream for the whole session: a fresh `ctrl_c()` would miss a SIGINT that
        // arrives at the wrong moment.
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("cannot watch SIGINT")?;
        tokio::select! {
            ([up, down], end) = pair => {
                if let Some(flow) = &up {
                    report_direction(ui, peer, "stdin->peer", flow);
                }
                if let Some(flow) = &down {
                    report_direction(ui, peer, "peer->stdout", flow);
                }
                if let PairEnd::Stopped(1) = end
                    && up.is_none()
                    && !options.recv_only
                {
                    tracing::info!("{peer} ended its side: stdin is a terminal, so sending stops too");
                }
                session.up = up;
                session.down = down;
                Ok(())
            }
            limit = idle => {
                Err(anyhow::Error::new(StreamError::Timeout { phase: streamtool::streams::Phase::Idle, after: limit })
                    .context(format!("no data moved to or from {peer}")))
            }
            _ = interrupt.recv() => Err(Interrupted.into()),
        }
    };
    if let Some(progress) = progress {
        progress.finish();
    }
    session.sent = session.up.as_ref().map_or_else(|| up_meter.get(), |f| f.bytes_out);
    session.received = session.down.as_ref().map_or_else(|| down_meter.get(), |f| f.bytes_in);
    // A clean end closes our side properly (FIN, close_notify; idempotent if stdin's end
    // already did). After an error, a timeout or Ctrl-C, the connection is dropped without
    // close_notify, so that a TLS peer can tell the stream was cut short.
    if outcome.is_ok()
        && !session_failed(&session)
        && let Err(err) = net_tx.aclose().await
    {
        tracing::debug!("closing the connection: {}", streamtool::streams::error::chain(&err));
    }
    outcome.map(|()| session)
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

/// Logs and emits the end of one direction.
pub fn report_direction(ui: &Ui, peer: &(impl Display + ?Sized), direction: &str, flow: &Flow) {
    tracing::debug!(%peer, direction, bytes = flow.bytes_out, reason = %flow.reason(), "direction ended");
    ui.emit(|| Event::half_close(Some(peer.to_string()), direction, flow));
}

/// The error a finished session with `peer` should end with, if any, naming the side
/// that failed. A closed stdout (as with `| head`) is success; a peer that stopped reading
/// while we still had data for it is not.
pub fn session_error(session: Session, peer: &str) -> Result<()> {
    let sent = session.sent;
    // stdin was still being sent when the peer went away (a reset seen first on the
    // receiving side): never silent about what did not go.
    let stdin_cut_off = session.up.is_none() && session.stdin_read;
    for (flow, sink_is_stdout) in [(session.down, true), (session.up, false)] {
        let Some(flow) = flow else { continue };
        if let FlowEnd::Failed(side, err) = flow.end {
            if side == Side::Sink && sink_is_stdout && is_broken_pipe(&err) {
                continue;
            }
            if side == Side::Source && sink_is_stdout && stdin_cut_off && is_peer_gone(&err) {
                return Err(anyhow::anyhow!(
                    "receiving from {peer} failed: {}; {sent} bytes of stdin were sent, the rest was not",
                    streamtool::streams::error::chain(&err)
                ));
            }
            let what = match (side, sink_is_stdout) {
                (Side::Source, true) => format!("receiving from {peer} failed"),
                (Side::Sink, true) => "writing to stdout failed".to_string(),
                (Side::Source, false) => "reading stdin failed".to_string(),
                // Never silent: the peer went away while stdin still had data for it.
                (Side::Sink, false) => {
                    format!("{peer} went away: {sent} bytes of stdin were sent, the rest was not")
                }
            };
            return Err(anyhow::Error::new(err).context(what));
        }
    }
    Ok(())
}

/// Checks flag combinations that clap cannot express. No flag turns TLS on but --tls:
/// every TLS flag given without it (the group's, and the subcommand's own in `extra`,
/// with whether each was given) is a usage error that names them.
pub fn check_tls_flags(tls: &TlsArgs, extra: &[(&'static str, bool)]) -> Result<()> {
    if !tls.tls {
        let mut given = tls.given();
        given.extend(extra.iter().filter(|(_, given)| *given).map(|(name, _)| *name));
        if !given.is_empty() {
            let verb = if given.len() == 1 { "needs" } else { "need" };
            return Err(Usage(format!(
                "{} {verb} --tls (no other flag turns TLS on; add --tls)",
                given.join(", ")
            ))
            .into());
        }
    }
    if let (Some(min), Some(max)) = (tls.tls_min, tls.tls_max)
        && min > max
    {
        return Err(Usage(format!("--tls-min {min} is above --tls-max {max}")).into());
    }
    Ok(())
}

/// The name to verify and send as SNI.
pub fn verify_name(tls: &TlsArgs, host: &str) -> Result<rustls_pki_types::ServerName<'static>> {
    let name = tls.sni.as_deref().unwrap_or(host);
    tls::server_name(name).map_err(|e| Usage(format!("--sni: {e}")).into())
}

/// SIGTERM and SIGINT, watched from before the listening line is printed: a stop sent
/// right after that line never meets the default (fatal) action, and one streams keeps
/// each signal from being lost between two waits (tokio drops a signal nobody waits for).
pub struct Signals {
    pub term: tokio::signal::unix::Signal,
    pub int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        ignore_sighup()?;
        Ok(Signals { term, int })
    }
}

/// SIGHUP (a closed terminal, a service manager's "reload") is ignored by serve and pipe:
/// its default action would end them at once, with no grace and a UNIX socket file left
/// behind. There is no configuration to reload, so each one is only logged. tokio keeps
/// its handler installed for the life of the process.
fn ignore_sighup() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: ignored (nothing to reload; SIGTERM stops)");
        }
    });
    Ok(())
}

/// The first SIGINT or SIGTERM starts a graceful shutdown (`shutdown`); a second one ends
/// the grace period at once (`cut_short`). Any SIGINT makes the exit code 130.
pub async fn watch_signals(
    mut signals: Signals,
    shutdown: tokio_util::sync::CancellationToken,
    cut_short: tokio_util::sync::CancellationToken,
    interrupted: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    for round in 0..2 {
        let name = tokio::select! {
            _ = signals.term.recv() => "SIGTERM",
            _ = signals.int.recv() => {
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                "SIGINT"
            }
        };
        if round == 0 {
            tracing::info!("{name}: stopping; a second signal closes open connections at once");
            shutdown.cancel();
        } else {
            tracing::warn!("{name} again: closing open connections now");
            cut_short.cancel();
        }
    }
}
