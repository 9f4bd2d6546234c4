//! What `serve` and `connect` share: TLS settings from flags, shaping from flags,
//! certificate descriptions, and the stdio relay session.

use std::fmt::Display;
use std::fmt::Write as _;

use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::json;
use streamtool::certs;
use streamtool::relay::{Activity, Flow, FlowEnd, Meter, Shaping, Side, forward_metered};
use streamtool::splice::{SpliceSocket, transfer};
use streamtool::stdio_fd::StdioFd;
use streamtool::streams::encoding::{ErrorMode, TextEncoding};
use streamtool::streams::framing::FrameConfig;
use streamtool::streams::socket::FamilyPreference;
use streamtool::streams::tls::{self, ClientOptions, KeyLog, Pin, TlsStream, Trust, VersionRange};
use streamtool::streams::{Connection, IoReceiveStream, IoSendStream, RaggedEofPolicy, StreamError};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cli::{NetArgs, ShapeArgs, TlsArgs};
use crate::events::Events;
use crate::exit_codes::{Interrupted, Usage};

/// Any bidirectional transport, boxed once per connection.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A network stream with what is known about its TLS session.
pub struct NetStream {
    pub io: NetIo,
    /// TLS 1.2 cannot half-close: close_notify ends both directions.
    pub can_half_close: bool,
}

impl NetStream {
    /// A plain socket: stdio can be spliced to and from it.
    pub fn plain(socket: PlainSocket) -> Self {
        NetStream { io: NetIo::Plain(socket), can_half_close: true }
    }
}

/// A plain socket, kept whole so that stdio can be spliced to and from it.
pub enum PlainSocket {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
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

pub fn versions(args: &TlsArgs) -> VersionRange {
    let default = VersionRange::default();
    VersionRange { min: args.tls_min.unwrap_or(default.min), max: args.tls_max.unwrap_or(default.max) }
}

pub fn keylog(args: &TlsArgs) -> KeyLog {
    args.keylog.clone().map_or(KeyLog::FromEnv, KeyLog::File)
}

pub fn alpn(args: &TlsArgs) -> Vec<Vec<u8>> {
    args.alpn.iter().filter(|p| !p.is_empty()).map(|p| p.as_bytes().to_vec()).collect()
}

/// Client TLS settings from the flags.
pub fn client_options(args: &TlsArgs, insecure: bool) -> Result<ClientOptions> {
    let trust = match &args.ca {
        Some(path) => Trust::Certificates(certs::load_certs(path).context("cannot use --ca")?),
        None => Trust::System,
    };
    let identity = match &args.cert {
        Some(cert) => Some(
            certs::load_identity(cert, args.key.as_ref().unwrap_or(cert))
                .context("cannot use the client certificate")?,
        ),
        None => None,
    };
    if insecure {
        // Its own target, so that -q keeps it: skipping verification is never silent.
        tracing::warn!(
            target: "streamtool::insecure",
            "--insecure: the server's certificate is NOT verified; anyone on the path can read and change the data"
        );
    }
    Ok(ClientOptions {
        trust,
        pins: args.pin.clone(),
        insecure,
        alpn: alpn(args),
        no_sni: args.no_sni,
        versions: versions(args),
        identity,
        keylog: keylog(args),
    })
}

/// Whether text is decoded at all: with --encoding or --decode-errors.
fn text_checked(shape: &ShapeArgs) -> bool {
    shape.encoding.is_some() || shape.decode_errors.is_some()
}

fn mode(shape: &ShapeArgs) -> ErrorMode {
    shape.decode_errors.unwrap_or(ErrorMode::Strict)
}

/// The shaping of data coming from the network: frames, and decoding into UTF-8.
pub fn inbound(shape: &ShapeArgs) -> Shaping {
    Shaping {
        frames: shape.delimiter.as_ref().map(|d| {
            let mut config = FrameConfig::new(Bytes::from(d.0.clone()), shape.max_frame);
            config.on_oversize = shape.on_oversize;
            config
        }),
        out_delimiter: None,
        decode: text_checked(shape).then(|| {
            (shape.encoding.unwrap_or(TextEncoding::UTF_8), shape.decode_errors.unwrap_or(ErrorMode::Strict))
        }),
        encode: None,
        crlf: false,
    }
}

/// The shaping of data going to the network: encoding from UTF-8, CRLF.
pub fn outbound(shape: &ShapeArgs) -> Shaping {
    Shaping {
        frames: None,
        out_delimiter: None,
        decode: shape.encoding.filter(|e| !e.is_utf8()).map(|_| (TextEncoding::UTF_8, mode(shape))),
        encode: shape.encoding.filter(|e| !e.is_utf8()).map(|e| (e, mode(shape))),
        crlf: shape.crlf,
    }
}

/// A one-paragraph description of a certificate for `--show-cert` and logs.
pub fn describe_certificate(der: &[u8]) -> String {
    let mut out = String::new();
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let _ = writeln!(out, "  subject: {}", cert.subject());
            let _ = writeln!(out, "  issuer:  {}", cert.issuer());
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                let names: Vec<String> = san.value.general_names.iter().map(|n| n.to_string()).collect();
                let _ = writeln!(out, "  SANs:    {}", names.join(", "));
            }
            let _ =
                writeln!(out, "  valid:   {} to {}", cert.validity().not_before, cert.validity().not_after);
        }
        Err(_) => out.push_str("  (not a parsable X.509 certificate)\n"),
    }
    for line in pin_lines(der) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// The two pins of a certificate, one line each, named: the cert pin (SHA-256 of the
/// whole certificate) and the key pin (SHA-256 of its public key, SPKI, which a renewal
/// with the same key keeps). `--pin` takes either.
pub fn pin_lines(der: &[u8]) -> Vec<String> {
    let mut lines = vec![format!("cert pin: {} (the whole certificate)", Pin::of_certificate(der))];
    if let Ok(key) = Pin::of_public_key(der) {
        lines.push(format!("key pin:  {key} (its public key, SPKI; kept when renewed with the same key)"));
    }
    lines
}

/// What `serve --tls` (and a `tls-listen` endpoint) without a certificate prints for a
/// fresh self-signed one: its pins and the command that reaches it, pinned by key.
pub fn self_signed_banner(der: &[u8], target: &str) -> Vec<String> {
    let mut lines = pin_lines(der);
    let pin = Pin::of_public_key(der).unwrap_or_else(|_| Pin::of_certificate(der));
    lines.push(format!("connect with: streamtool connect --tls --pin {pin} {target}"));
    lines
}

/// The JSON view of a certificate for events.
pub fn certificate_json(der: &[u8]) -> serde_json::Value {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let sans: Vec<String> = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|s| s.value.general_names.iter().map(|n| n.to_string()).collect())
                .unwrap_or_default();
            json!({
                "subject": cert.subject().to_string(),
                "issuer": cert.issuer().to_string(),
                "sans": sans,
                "not_after": cert.validity().not_after.to_string(),
                "sha256": Pin::of_certificate(der).to_string(),
                "key_sha256": Pin::of_public_key(der).map(|p| p.to_string()).unwrap_or_default(),
            })
        }
        Err(_) => json!({ "sha256": Pin::of_certificate(der).to_string() }),
    }
}

/// Logs and emits what a handshake negotiated.
pub fn report_handshake<IO>(stream: &TlsStream<IO>, events: &Events, peer: &(impl Display + ?Sized))
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    let version = stream.protocol_version().map(|v| v.to_string()).unwrap_or_default();
    let cipher = stream.cipher_suite().unwrap_or_default();
    let alpn = stream.alpn_protocol().map(|p| String::from_utf8_lossy(&p).into_owned());
    tracing::info!(%peer, %version, %cipher, alpn = alpn.as_deref().unwrap_or("-"), "TLS handshake done");
    let certs = stream.peer_certificates();
    events.emit("handshake", || {
        json!({
            "peer": peer.to_string(),
            "tls_version": version,
            "cipher": cipher,
            "alpn": alpn,
            "sni": stream.server_name(),
            "peer_certificate": certs.first().map(|c| certificate_json(c.as_ref())),
        })
    });
}

/// Runs the server side of a TLS handshake with a client just accepted, within `limit`.
/// On failure, returns why, worded to follow `TLS handshake with PEER failed: `; a client
/// that does not speak TLS at all (plain HTTP, or anything else) is named as such.
pub async fn accept_tls(
    raw: Connection,
    config: std::sync::Arc<rustls::ServerConfig>,
    policy: RaggedEofPolicy,
    limit: Duration,
) -> std::result::Result<TlsStream<Connection>, String> {
    let mut first = [0u8; 8];
    let mut seen = 0;
    let handshake = async {
        // Look at (without taking) the client's first bytes: they tell a TLS client from
        // one that sent plain HTTP to this port.
        if let Connection::Tcp(tcp) = &raw
            && let Some(socket) = tcp.get_ref()
        {
            seen = socket.peek(&mut first).await.unwrap_or(0);
        }
        TlsStream::accept(raw, config, policy).await
    };
    let err = match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(tls)) => return Ok(tls),
        Ok(Err(err)) => err,
        Err(_) => StreamError::Timeout { phase: streamtool::streams::Phase::Handshake, after: limit },
    };
    let chain = |e: &dyn std::error::Error| streamtool::streams::error::chain(e);
    Err(match &err {
        // rustls' own words for a client that is not speaking TLS ("corrupt message of
        // type InvalidContentType") say less than its first bytes do.
        StreamError::Tls { source, .. } => not_tls(&first[..seen]).unwrap_or_else(|| chain(source.as_ref())),
        StreamError::Timeout { after, .. } => {
            format!("timed out after {}", streamtool::streams::error::format_duration(*after))
        }
        StreamError::EndOfStream => "the client closed the connection".to_string(),
        StreamError::Broken(Some(cause)) => chain(cause.as_ref()),
        other => chain(other),
    })
}

/// What a client that is not speaking TLS sent, from its first bytes; `None` if they
/// start a TLS handshake record (or nothing was seen). Go's crypto/tls looks for plain
/// HTTP the same way.
fn not_tls(first: &[u8]) -> Option<String> {
    const HTTP_METHODS: [&[u8]; 9] =
        [b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ", b"TRACE "];
    const HANDSHAKE_RECORD: u8 = 0x16;
    if first.first().is_none_or(|&b| b == HANDSHAKE_RECORD) {
        return None;
    }
    // A method (and its space), or as much of one as arrived in the first read.
    let http =
        first.len() >= 3 && HTTP_METHODS.iter().any(|m| m.starts_with(&first[..first.len().min(m.len())]));
    if http {
        return Some("the client sent plain HTTP, not TLS".to_string());
    }
    let hex: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("the client does not speak TLS (its first bytes: {})", hex.join(" ")))
}

/// The result of relaying one connection.
pub struct Session {
    pub up: Option<Flow>,
    pub down: Option<Flow>,
    /// Bytes sent to the peer, also when the up direction was stopped before its end.
    pub sent: u64,
    /// Bytes received from the peer.
    pub received: u64,
}

/// Whether stdin has bytes waiting to be read right now (a zero-timeout poll(2)): when
/// sending stops early, that is data the peer will not get. An idle terminal or pipe has
/// none, and stopping there loses nothing.
fn stdin_has_data_waiting() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// Whether stdin is a regular file: finite, never idle, so it is sent to its end even
/// after the peer ended its side (`serve < file` to `connect --recv-only`; `connect < file`
/// to a server whose stdin is /dev/null). DESIGN.md §4.2 stops sending when the peer ends
/// first because of an idle interactive stdin; a file is never that. A terminal or a pipe
/// keeps that rule (--keep-sending goes on), with a warning when stdin still had data.
fn stdin_is_a_file() -> bool {
    use std::os::fd::AsFd;
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata())
        .is_ok_and(|m| m.is_file())
}

/// How a stdio session runs.
pub struct SessionOptions {
    pub inbound: Shaping,
    pub outbound: Shaping,
    pub half_close: bool,
    /// Go on sending stdin after the peer ended its side (a regular file always does).
    pub keep_sending: bool,
    pub send_only: bool,
    pub recv_only: bool,
    pub idle_timeout: Option<Duration>,
    /// Show progress (`--progress`).
    pub progress: bool,
}

/// A sink that drops everything (`--send-only`'s view of the peer's data, `--discard`).
pub struct Discard;

impl streamtool::streams::AsyncResource for Discard {
    async fn aclose(&mut self) -> streamtool::streams::Result<()> {
        Ok(())
    }
}
impl streamtool::streams::TypedAttributeProvider for Discard {}
impl streamtool::streams::ByteSendStream for Discard {
    async fn send(&mut self, _data: Bytes) -> streamtool::streams::Result<()> {
        Ok(())
    }
}

/// Relays stdin to the peer and the peer to stdout until the peer's side ends (and, with
/// --keep-sending, stdin too), honouring half-close both ways (DESIGN.md §4.2). Whatever
/// ended the session, our sending side is closed properly before returning (FIN, or TLS
/// close_notify), so the peer never sees a truncated stream from us.
///
/// Over a plain socket, a direction with no shaping whose stdio end is a pipe, a regular
/// file or /dev/null moves with splice(2)/sendfile(2) in the event loop
/// (`streamtool::stdio_fd`); everything else goes through tokio's stdin and stdout.
pub async fn stdio_session(
    net: NetStream,
    options: SessionOptions,
    events: &Events,
    peer: &str,
) -> Result<Session> {
    let can_half_close = net.can_half_close;
    match net.io {
        NetIo::Plain(PlainSocket::Tcp(s)) => {
            session(SockRef(&s), SockRef(&s), Some(&s), can_half_close, options, events, peer).await
        }
        NetIo::Plain(PlainSocket::Unix(s)) => {
            session(SockRef(&s), SockRef(&s), Some(&s), can_half_close, options, events, peer).await
        }
        NetIo::Boxed(io) => {
            let (net_rx, net_tx) = tokio::io::split(io);
            let no_socket: Option<&tokio::net::TcpStream> = None;
            session(net_rx, net_tx, no_socket, can_half_close, options, events, peer).await
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

async fn session<R, W, S>(
    net_rx: R,
    net_tx: W,
    socket: Option<&S>,
    can_half_close: bool,
    options: SessionOptions,
    events: &Events,
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
    let half_close = options.half_close && can_half_close;
    // A regular file is sent whole whoever ends first; --keep-sending extends that to a
    // terminal or a pipe.
    let keep_sending = options.keep_sending || (!options.recv_only && stdin_is_a_file());
    if !can_half_close && options.half_close {
        tracing::debug!("TLS 1.2 cannot half-close: the connection stays open for writing after stdin ends");
    }
    // stdin and stdout in the event loop where they allow it; zero copy where, besides,
    // the socket is plain and the direction unshaped.
    let stdin_fd = if options.recv_only { None } else { StdioFd::stdin() };
    let stdout_fd = if options.send_only { None } else { StdioFd::stdout() };
    let zero_copy_up = socket.filter(|_| options.outbound.is_raw());
    let zero_copy_down = socket.filter(|_| options.inbound.is_raw());
    let mut session = Session { up: None, down: None, sent: 0, received: 0 };
    let (up_meter, down_meter) = (Meter::default(), Meter::default());
    let progress = options.progress.then(|| {
        crate::progress::Progress::start(
            [format!("stdin -> {peer}"), format!("{peer} -> stdout")],
            [up_meter.clone(), down_meter.clone()],
        )
    });
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
        let idle = async {
            match options.idle_timeout {
                Some(limit) => {
                    activity.idle_for(limit).await;
                    limit
                }
                None => std::future::pending().await,
            }
        };
        // When sending to the peer fails, the peer's reason (a TLS alert, a reset) is
        // usually waiting on the receiving side: the down direction gets a moment to
        // report it, so that the exit code names the cause rather than the broken pipe.
        let why = tokio::time::sleep(Duration::from_secs(1));
        let mut waiting_for_why = false;
        // One stream for the whole loop: a fresh `ctrl_c()` per turn would miss a SIGINT
        // that arrives between two turns.
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("cannot watch SIGINT")?;
        tokio::pin!(up, down, idle, why);
        loop {
            tokio::select! {
                flow = &mut down, if session.down.is_none() => {
                    report_direction(events, peer, "peer->stdout", &flow);
                    session.down = Some(flow);
                    if !keep_sending || session.up.is_some() {
                        break Ok(());
                    }
                }
                flow = &mut up, if session.up.is_none() => {
                    report_direction(events, peer, "stdin->peer", &flow);
                    let failed = matches!(flow.end, FlowEnd::Failed(..));
                    let sending_failed = matches!(flow.end, FlowEnd::Failed(Side::Sink, _));
                    session.up = Some(flow);
                    if session.down.is_some() || (failed && !sending_failed) {
                        break Ok(());
                    }
                    if sending_failed {
                        why.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(1));
                        waiting_for_why = true;
                    }
                }
                () = &mut why, if waiting_for_why => break Ok(()),
                limit = &mut idle => {
                    break Err(anyhow::Error::new(StreamError::Timeout { phase: streamtool::streams::Phase::Idle, after: limit })
                        .context(format!("no data moved to or from {peer}")));
                }
                _ = interrupt.recv() => break Err(Interrupted.into()),
            }
        }
    };
    if let Some(progress) = progress {
        progress.finish();
    }
    session.sent = session.up.as_ref().map_or_else(|| up_meter.get(), |f| f.bytes_out);
    session.received = session.down.as_ref().map_or_else(|| down_meter.get(), |f| f.bytes_in);
    if outcome.is_ok()
        && session.up.is_none()
        && !options.recv_only
        && !session_failed(&session)
        && stdin_has_data_waiting()
    {
        // Not silent: stdin had not ended, and what it still holds is not sent.
        tracing::warn!(
            "{peer} ended its side first: stopped sending stdin after {} bytes, before its end \
             (--keep-sending sends the rest)",
            session.sent
        );
    }
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
pub fn report_direction(events: &Events, peer: &(impl Display + ?Sized), direction: &str, flow: &Flow) {
    tracing::debug!(%peer, direction, bytes = flow.bytes_out, reason = %flow.reason(), "direction ended");
    events.emit("half_close", || {
        json!({
            "peer": peer.to_string(),
            "direction": direction,
            "bytes_in": flow.bytes_in,
            "bytes_out": flow.bytes_out,
            "frames": flow.frames,
            "frames_skipped": flow.frames_skipped,
            "reason": flow.reason(),
        })
    });
}

/// The error a finished session with `peer` should end with, if any, naming the side
/// that failed. A closed stdout (as with `| head`) is success; a peer that stopped reading
/// while we still had data for it is not.
pub fn session_error(session: Session, peer: &str) -> Result<()> {
    for (flow, sink_is_stdout) in [(session.down, true), (session.up, false)] {
        let Some(flow) = flow else { continue };
        if let FlowEnd::Failed(side, err) = flow.end {
            if side == Side::Sink && sink_is_stdout && is_broken_pipe(&err) {
                continue;
            }
            let what = match (side, sink_is_stdout) {
                (Side::Source, true) => format!("receiving from {peer} failed"),
                (Side::Sink, true) => "writing to stdout failed".to_string(),
                (Side::Source, false) => "reading stdin failed".to_string(),
                (Side::Sink, false) => format!("sending to {peer} failed"),
            };
            return Err(anyhow::Error::new(err).context(what));
        }
    }
    Ok(())
}

/// Whether a direction ended only because the peer went away after a complete exchange:
/// writing (or closing, as a TLS close_notify) toward it met a broken pipe or a reset,
/// with everything read passed on. A probe (`connect -z`), a health check, a client that
/// reads nothing: an ordinary end, not a warning. Data lost or refused (bytes read but not
/// written, a read error, a bad frame) is not this.
pub fn peer_left(flow: &Flow) -> bool {
    let gone = |err: &StreamError| {
        matches!(err, StreamError::Broken(Some(cause)) if cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
        }))
    };
    matches!(&flow.end, FlowEnd::Failed(Side::Sink, err) if gone(err)) && flow.bytes_out == flow.bytes_in
}

/// Whether a write failed because the reader went away (EPIPE).
pub fn is_broken_pipe(err: &StreamError) -> bool {
    match err {
        StreamError::Broken(Some(cause)) => {
            cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        }
        _ => false,
    }
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
        Ok(Signals { term, int })
    }
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
