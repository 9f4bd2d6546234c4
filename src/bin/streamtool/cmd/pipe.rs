//! `streamtool pipe A B`: relay between two endpoints, with framing, re-encoding and TLS
//! per endpoint; a listening endpoint with `fork` serves each connection with a fresh
//! instance of the other endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use streamtool::endpoint::{Endpoint, EndpointKind, EndpointOptions};
use streamtool::event::{Close, Event};
use streamtool::relay::{
    Activity, Flow, FlowEnd, Meter, OnEof, PairEnd, PairRule, Shaping, Side, forward_metered, run_pair,
};
use streamtool::server::{ConnectionContext, ServeOptions, serve};
use streamtool::stack::open::{self, PlainSocket, Target};
use streamtool::stack::{Spelling, shaping};
use streamtool::streams::file::{open_read, open_write};
use streamtool::streams::listener::{Connection, Listener, SocketListener};
use streamtool::streams::tls::{ClientOptions, ServerOptions, TlsStream};
use streamtool::streams::{
    AsyncResource, ByteSendStream, ChildStream, IoReceiveStream, IoSendStream, Phase, RaggedEofPolicy,
    TypedAttributeProvider,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::cli::PipeArgs;
use crate::common::{CutFlag, Cuttable};
use crate::exit_codes::{Hint, Interrupted, Usage};
use crate::progress::Progress;
use crate::ui::Ui;

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// An endpoint's transport.
enum Io {
    Socket(PlainSocket),
    Split(Reader, Writer),
}

impl Io {
    /// The two directions, and for a TCP socket the flag that cuts it with a reset.
    fn into_split(self) -> (Reader, Writer, Option<CutFlag>) {
        match self {
            Io::Split(r, w) => (r, w, None),
            Io::Socket(PlainSocket::Tcp(s)) => {
                let (io, flag) = Cuttable::new(s, crate::common::reset_on_close);
                let (r, w) = tokio::io::split(io);
                (Box::new(r), Box::new(w), Some(flag))
            }
            Io::Socket(PlainSocket::Unix(s)) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w), None)
            }
        }
    }
}

/// An opened endpoint: its two directions, and what to wait for when done.
struct Opened {
    name: String,
    io: Io,
    /// What the end of the data going to it does (`on-eof=`).
    on_eof: OnEof,
    /// A read-only file: what the other side sends is dropped, with a warning.
    read_only: bool,
    /// A write-only file: it has nothing to send, and must not end the other side early.
    write_only: bool,
    /// stdin/stdout: a closed stdout (as in `| head`) is success.
    is_stdio: bool,
    child: Option<tokio::process::Child>,
}

pub async fn run(args: Box<PipeArgs>, ui: Ui) -> Result<()> {
    let (mut a, mut b) = (args.a.clone(), args.b.clone());
    if args.fork {
        match (a.is_listener(), b.is_listener()) {
            (true, _) => a.options.fork = true,
            (false, true) => b.options.fork = true,
            (false, false) => {
                return Err(Usage(
                    "-k/--fork needs a listening endpoint (tcp-listen, tls-listen, unix-listen)".into(),
                )
                .into());
            }
        }
    }
    if a.options.fork && b.options.fork {
        return Err(Usage("only one endpoint can fork".into()).into());
    }
    if args.max_conns.is_some() && !(a.options.fork || b.options.fork) {
        return Err(
            Usage("--max-conns needs fork (-k, or the fork option of a listening endpoint)".into()).into()
        );
    }
    // Every file an option names is read and checked before anything listens: a tls:
    // endpoint's ca=, cert= and key= would otherwise be read only when a client arrives.
    for endpoint in [&a, &b] {
        if matches!(endpoint.kind, EndpointKind::Tls(..)) {
            // (insecure's warning is printed once, when the endpoint opens)
            let options = EndpointOptions { insecure: false, ..endpoint.options.clone() };
            client_options(&options)?.build()?;
        }
    }
    let progress = crate::progress::enabled(args.progress);
    let idle = crate::hardening::pipe_idle_timeout(args.idle_timeout, &a, &b);
    let shared = Arc::new(PipeShared {
        a: a.clone(),
        b: b.clone(),
        ui: ui.clone(),
        progress,
        verbose: args.verbose_summary,
        idle,
    });

    if a.options.fork || b.options.fork {
        let (listening, other_is_a) = if a.options.fork { (a, false) } else { (b, true) };
        return serve_fork(listening, other_is_a, shared, args.max_conns, args.grace).await;
    }
    let signals = crate::common::Signals::new()?;
    let (mut term, mut int) = (signals.term, signals.int);
    // Listening endpoints accept one connection, A first. Ctrl-C stops at once (exit 130);
    // a forking pipe instead shuts down gracefully. SIGTERM (a service manager stopping us)
    // ends the wait for the endpoints at once, and gives a running relay --grace to finish,
    // as serve does its session; either way the exit is 0 and the socket file of a
    // unix-listen endpoint is removed.
    let both = async {
        let opened_a = open(&a, &ui).await?;
        let opened_b = open(&b, &ui).await?;
        Ok::<_, anyhow::Error>((opened_a, opened_b))
    };
    let (opened_a, opened_b) = tokio::select! {
        opened = both => opened?,
        _ = int.recv() => return Err(Interrupted.into()),
        _ = term.recv() => {
            tracing::info!("SIGTERM: stopping before the relay started");
            return Ok(());
        }
    };
    let relay = relay_until_idle(opened_a, opened_b, &shared, true);
    tokio::pin!(relay);
    tokio::select! {
        result = &mut relay => result,
        _ = int.recv() => Err(Interrupted.into()),
        _ = term.recv() => {
            let grace = args.grace;
            tracing::info!(?grace, "SIGTERM: letting the relay finish");
            tokio::select! {
                finished = tokio::time::timeout(grace, &mut relay) => finished.unwrap_or_else(|_| {
                    tracing::warn!("grace period over; closing the relay");
                    Ok(())
                }),
                _ = int.recv() => Err(Interrupted.into()),
            }
        }
    }
}

struct PipeShared {
    a: Endpoint,
    b: Endpoint,
    ui: Ui,
    progress: bool,
    verbose: bool,
    /// The relay's idle limit (`--idle-timeout`, `idle-timeout=`, the TLS terminator's default).
    idle: Option<Duration>,
}

/// Serves each connection of the forking endpoint with a fresh instance of the other.
async fn serve_fork(
    listening: Endpoint,
    other_is_a: bool,
    shared: Arc<PipeShared>,
    max_conns: Option<usize>,
    grace: Duration,
) -> Result<()> {
    let signals = crate::common::Signals::new()?;
    let listener = bind(&listening).await?;
    // The certificate and key are read (and the banner printed) before the listening line.
    let tls = match &listening.kind {
        EndpointKind::TlsListen(_) => {
            Some(server_options(&listening.options, &listener, &shared.ui)?.build()?)
        }
        _ => None,
    };
    announce(&listener, &shared.ui);
    let shutdown = CancellationToken::new();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cut_short = CancellationToken::new();
    tokio::spawn(crate::common::watch_signals(
        signals,
        shutdown.clone(),
        cut_short.clone(),
        Arc::clone(&interrupted),
    ));
    let options = ServeOptions { max_connections: max_conns, grace, cut_grace_short: Some(cut_short) };
    let policy = listening.options.ragged_eof.unwrap_or_default();
    let handshake_timeout = listening.options.handshake_limit();
    serve(listener, options, shutdown, move |raw: Connection, context: ConnectionContext| {
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        async move {
            let peer = context.peer.to_string();
            shared.ui.emit(|| Event::Accept { peer: peer.clone() });
            let accepted = match accept_conn(raw, tls, policy, handshake_timeout, &peer, &shared.ui).await {
                Ok(mut opened) => {
                    if let Some(on_eof) = listening.options.on_eof {
                        opened.on_eof = on_eof;
                    }
                    opened
                }
                Err(err) => {
                    tracing::warn!(%peer, "{}", crate::one_line(&err));
                    return;
                }
            };
            let other = if other_is_a { &shared.a } else { &shared.b };
            let fresh = match open(other, &shared.ui).await {
                Ok(opened) => opened,
                Err(err) => {
                    tracing::warn!(%peer, "cannot open the other endpoint: {}", crate::one_line(&err));
                    return;
                }
            };
            let (a, b) = if other_is_a { (fresh, accepted) } else { (accepted, fresh) };
            tokio::select! {
                result = relay_until_idle(a, b, &shared, false) => {
                    if let Err(err) = result {
                        tracing::warn!(%peer, "{}", crate::one_line(&err));
                    }
                }
                () = context.closing.cancelled() => {}
            }
        }
    })
    .await;
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) { Err(Interrupted.into()) } else { Ok(()) }
}

async fn bind(endpoint: &Endpoint) -> Result<SocketListener> {
    let listener = match &endpoint.kind {
        EndpointKind::TcpListen(addr) | EndpointKind::TlsListen(addr) => {
            addr.bind(streamtool::streams::FamilyPreference::Any).await?
        }
        EndpointKind::UnixListen(path) => SocketListener::bind_unix(path).await?,
        _ => unreachable!("only listeners are bound"),
    };
    Ok(listener)
}

fn announce(listener: &SocketListener, ui: &Ui) {
    let addresses: Vec<String> = listener.local_addresses().iter().map(|a| a.to_string()).collect();
    ui.notice(&format!("listening on {}", addresses.join(", ")));
    ui.emit(|| Event::Listen { addresses, tls: None, cert_sha256: None, key_sha256: None });
}

/// A `tls-listen` endpoint's server settings; without `cert=`, a fresh self-signed
/// certificate, whose pins and the command that reaches it are printed.
fn server_options(o: &EndpointOptions, listener: &SocketListener, ui: &Ui) -> Result<ServerOptions> {
    let (server, generated) = o.server_options(Spelling::Endpoint)?;
    if let Some(generated) = generated {
        ui.say("no cert= given; serving a fresh self-signed certificate for localhost, 127.0.0.1, ::1");
        let target = match listener.tcp_port() {
            Some(port) => format!("localhost:{port}"),
            None => "ADDR".to_string(),
        };
        for line in crate::common::self_signed_banner(generated.cert_der.as_ref(), &target) {
            ui.say(&line);
        }
    }
    Ok(server)
}

fn client_options(o: &EndpointOptions) -> Result<ClientOptions> {
    Ok(o.client_options(Spelling::Endpoint)?)
}

impl Opened {
    /// A socket or a TLS stream: reading it after a failed write to it reports why.
    fn is_connection(&self) -> bool {
        // Not stdio, a command or a file: a plain socket, or a TLS stream.
        matches!(self.io, Io::Socket(_))
            || !(self.is_stdio || self.child.is_some() || self.read_only || self.write_only)
    }
}

fn split<IO: AsyncRead + AsyncWrite + Send + Unpin + 'static>(name: String, io: IO, on_eof: OnEof) -> Opened {
    let (reader, writer) = tokio::io::split(io);
    Opened {
        name,
        io: Io::Split(Box::new(reader), Box::new(writer)),
        on_eof,
        read_only: false,
        write_only: false,
        is_stdio: false,
        child: None,
    }
}

fn socket(name: String, socket: PlainSocket) -> Opened {
    Opened {
        name,
        io: Io::Socket(socket),
        on_eof: OnEof::HalfClose,
        read_only: false,
        write_only: false,
        is_stdio: false,
        child: None,
    }
}

fn tls_opened<IO>(name: String, tls: TlsStream<IO>, ui: &Ui) -> Opened
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + TypedAttributeProvider + 'static,
{
    crate::common::report_handshake(&tls, ui, &name);
    // A TLS client keeps its side open when its input ends (servers built on OpenSSL take
    // a close_notify for the end of the whole connection); a TLS server half-closes.
    let on_eof = if tls.is_server() { OnEof::HalfClose } else { OnEof::KeepOpen };
    split(name, tls, on_eof)
}

async fn accept_conn(
    raw: Connection,
    tls: Option<Arc<rustls::ServerConfig>>,
    policy: RaggedEofPolicy,
    handshake_timeout: Duration,
    peer: &str,
    ui: &Ui,
) -> Result<Opened> {
    match tls {
        None => Ok(socket(peer.to_string(), PlainSocket::from_connection(raw)?)),
        Some(config) => {
            let tls = crate::common::accept_tls(raw, config, policy, handshake_timeout)
                .await
                .map_err(|reason| anyhow::anyhow!("TLS handshake with {peer} failed: {reason}"))?;
            Ok(tls_opened(peer.to_string(), tls, ui))
        }
    }
}

/// Opens one endpoint; a listening one accepts its first connection (the first whose TLS
/// handshake succeeds). Its `on-eof=` option overrides the kind's default.
async fn open(endpoint: &Endpoint, ui: &Ui) -> Result<Opened> {
    let mut opened = open_kind(endpoint, ui).await?;
    if let Some(on_eof) = endpoint.options.on_eof {
        opened.on_eof = on_eof;
    }
    Ok(opened)
}

async fn open_kind(endpoint: &Endpoint, ui: &Ui) -> Result<Opened> {
    let o = &endpoint.options;
    match &endpoint.kind {
        EndpointKind::Stdio => Ok(Opened {
            name: "stdio".into(),
            io: Io::Split(Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout())),
            on_eof: OnEof::HalfClose,
            read_only: false,
            write_only: false,
            is_stdio: true,
            child: None,
        }),
        EndpointKind::Tcp(host, port) | EndpointKind::Tls(host, port) => {
            let name = streamtool::streams::socket::host_port(host, *port);
            let tls = match endpoint.kind {
                EndpointKind::Tls(..) => Some((client_options(o)?.build()?, o.verify_name(host)?)),
                _ => None,
            };
            let connected = |_| ui.emit(|| Event::Connect { target: name.clone(), peer: None });
            let opened =
                open::connect(Target::Tcp(host, *port), &name, o, Default::default(), tls, connected)
                    .await
                    .map_err(crate::common::open_error)?;
            Ok(match opened {
                open::Opened::Plain(plain) => socket(name, plain),
                open::Opened::Tls(tls) => tls_opened(name, *tls, ui),
            })
        }
        EndpointKind::Unix(path) => {
            let name = format!("unix:{}", path.display());
            let opened = open::connect(Target::Unix(path), &name, o, Default::default(), None, |_| {})
                .await
                .map_err(crate::common::open_error)?;
            match opened {
                open::Opened::Plain(plain) => Ok(socket(name, plain)),
                open::Opened::Tls(_) => unreachable!("unix: has no TLS"),
            }
        }
        EndpointKind::TcpListen(_) | EndpointKind::TlsListen(_) | EndpointKind::UnixListen(_) => {
            let mut listener = bind(endpoint).await?;
            let tls = match endpoint.kind {
                EndpointKind::TlsListen(_) => Some(server_options(o, &listener, ui)?.build()?),
                _ => None,
            };
            announce(&listener, ui);
            let timeout = o.handshake_limit();
            accept_first(&mut listener, tls, o.ragged_eof.unwrap_or_default(), timeout, ui).await
        }
        EndpointKind::Exec(command) => {
            let child = ChildStream::shell(command)?;
            let (process, stdin, stdout) = child.into_parts();
            Ok(Opened {
                name: format!("exec:{command}"),
                io: Io::Split(
                    Box::new(stdout.into_inner().expect("a new child's stdout is open")),
                    Box::new(stdin.into_inner().expect("a new child's stdin is open")),
                ),
                on_eof: OnEof::HalfClose,
                read_only: false,
                write_only: false,
                is_stdio: false,
                child: Some(process),
            })
        }
        EndpointKind::File(path) => {
            let name = format!("file:{}", path.display());
            match o.write_mode {
                Some(mode) => {
                    let file = open_write(path, mode).await?.into_inner().expect("a new file is open");
                    Ok(Opened {
                        name,
                        io: Io::Split(Box::new(tokio::io::empty()), Box::new(file)),
                        on_eof: OnEof::HalfClose,
                        read_only: false,
                        write_only: true,
                        is_stdio: false,
                        child: None,
                    })
                }
                None => {
                    let file = match open_read(path).await {
                        Ok(file) => file.into_inner().expect("a new file is open"),
                        // Without create, append or truncate, file: reads; a user writing
                        // to a new file (socat's CREATE:, websocat's writefile:) needs to
                        // know how to say so.
                        Err(err @ streamtool::streams::StreamError::Open { .. })
                            if std::error::Error::source(&err)
                                .and_then(|e| e.downcast_ref::<std::io::Error>())
                                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
                        {
                            let hint = format!(
                                "file:{0} reads an existing file; to write a new one, use file:{0},create \
                                 (or append, truncate)",
                                path.display()
                            );
                            return Err(anyhow::Error::new(err).context(Hint(hint)));
                        }
                        Err(err) => return Err(err.into()),
                    };
                    Ok(Opened {
                        name,
                        io: Io::Split(Box::new(file), Box::new(tokio::io::sink())),
                        on_eof: OnEof::HalfClose,
                        read_only: true,
                        write_only: false,
                        is_stdio: false,
                        child: None,
                    })
                }
            }
        }
    }
}

/// Without fork: the first connection, the first whose TLS handshake succeeds. Handshakes
/// run side by side (as serve's do), so a client that connects and stays silent does not
/// hold up the next one for the whole handshake timeout.
async fn accept_first(
    listener: &mut SocketListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    policy: RaggedEofPolicy,
    timeout: Duration,
    ui: &Ui,
) -> Result<Opened> {
    /// TLS handshakes in progress at once at most; past that, accepting waits.
    const MAX_PENDING_HANDSHAKES: usize = 64;
    let mut handshakes = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept(), if handshakes.len() < MAX_PENDING_HANDSHAKES => accepted,
            Some(done) = handshakes.join_next() => {
                match done {
                    Ok(Ok(opened)) => return Ok(opened),
                    Ok(Err(err)) => tracing::warn!("{}", crate::one_line(&err)),
                    Err(err) => tracing::warn!("a TLS handshake task failed: {err}"),
                }
                continue;
            }
        };
        let (raw, peer) = accepted.context("accept failed")?;
        let peer = peer.to_string();
        ui.emit(|| Event::Accept { peer: peer.clone() });
        let Some(config) = &tls else {
            return accept_conn(raw, None, policy, timeout, &peer, ui).await;
        };
        let (config, ui) = (Arc::clone(config), ui.clone());
        handshakes.spawn(async move { accept_conn(raw, Some(config), policy, timeout, &peer, &ui).await });
    }
}

/// A sink for a read-only file endpoint: drops data, warning once.
struct ReadOnlySink {
    name: String,
    warned: bool,
}

impl AsyncResource for ReadOnlySink {
    async fn aclose(&mut self) -> streamtool::streams::Result<()> {
        Ok(())
    }
}
impl TypedAttributeProvider for ReadOnlySink {}
impl ByteSendStream for ReadOnlySink {
    async fn send(&mut self, data: Bytes) -> streamtool::streams::Result<()> {
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(
                "{} is read-only: dropping {} bytes and more from the other side (add create, append or truncate to write to a file)",
                self.name,
                data.len()
            );
        }
        Ok(())
    }
}

/// [`relay`] under the relay's idle limit: with no byte moving either way for that long,
/// it ends with a timeout naming both endpoints (exit 6).
async fn relay_until_idle(a: Opened, b: Opened, shared: &PipeShared, announce_waits: bool) -> Result<()> {
    let (a_name, b_name) = (a.name.clone(), b.name.clone());
    let meters = (Meter::default(), Meter::default());
    let watched = [&meters.0, &meters.1];
    let relayed = crate::hardening::unless_idle(
        relay(a, b, shared, announce_waits, meters.clone()),
        shared.idle,
        watched,
    )
    .await;
    relayed.unwrap_or_else(|| {
        let limit = shared.idle.unwrap_or_default();
        shared.ui.emit(|| Close::relay(&a_name, &b_name, "idle timeout", None));
        Err(anyhow::Error::new(streamtool::streams::StreamError::Timeout {
            phase: Phase::Idle,
            after: limit,
        })
        .context(format!("no data moved between {a_name} and {b_name}")))
    })
}

/// Relays both directions by the end-of-stream rules ([`run_pair`]), and reports each.
/// A relay that fails is cut on both sides: a reset on a plain TCP side, no close_notify
/// on a TLS one, and an `exec:` command is killed before its input closes; so a
/// truncated stream on one side never reaches the other as a clean end.
async fn relay(
    a: Opened,
    b: Opened,
    shared: &PipeShared,
    announce_waits: bool,
    (ab_meter, ba_meter): (Meter, Meter),
) -> Result<()> {
    let started = Instant::now();
    let activity = Activity::default();
    let ab_shaping = shaping(&shared.a.options, &shared.b.options);
    let ba_shaping = shaping(&shared.b.options, &shared.a.options);
    let (a_name, b_name) = (a.name.clone(), b.name.clone());
    let progress = shared.progress.then(|| {
        Progress::start(
            [format!("{a_name} -> {b_name}"), format!("{b_name} -> {a_name}")],
            [ab_meter.clone(), ba_meter.clone()],
        )
    });
    // After a failed write to a connection, its reason is read from the same connection
    // by the other direction: wait for that, unless the other direction feeds a command
    // (which could be blocked writing output that is no longer read).
    let (a_connection, b_connection) = (a.is_connection(), b.is_connection());
    let rules = [
        PairRule { ends_relay: b.on_eof == OnEof::Close, wait_for_cause: b_connection && a.child.is_none() },
        PairRule { ends_relay: a.on_eof == OnEof::Close, wait_for_cause: a_connection && b.child.is_none() },
    ];
    let waiting = |waited_for: usize| {
        let (from, to) = if waited_for == 0 { (&a_name, &b_name) } else { (&b_name, &a_name) };
        let message = format!(
            "waiting for {from} to end (what goes to {to} is still open); on-eof=half-close|keep-open|close \
             on an endpoint says what the end of its input does"
        );
        if announce_waits && !shared.ui.quiet() {
            shared.ui.say(&message);
        } else {
            tracing::debug!("{message}");
        }
    };
    // splice(2) counts only the bytes it moved, so its flows cannot tell a peer that left
    // after a complete exchange from one that cut a transfer short.
    let spliced = matches!((&a.io, &b.io), (Io::Socket(_), Io::Socket(_)))
        && ab_shaping.is_raw()
        && ba_shaping.is_raw()
        && a.on_eof == OnEof::HalfClose
        && b.on_eof == OnEof::HalfClose;
    let (mut a_child, mut b_child) = (a.child, b.child);
    let (ab, ba, failed) = match (a.io, b.io) {
        // Plain sockets on both sides, nothing to transform and the usual half-close: zero
        // copy.
        (Io::Socket(sa), Io::Socket(sb))
            if ab_shaping.is_raw()
                && ba_shaping.is_raw()
                && a.on_eof == OnEof::HalfClose
                && b.on_eof == OnEof::HalfClose =>
        {
            tracing::debug!("relaying with splice(2)");
            splice_both(sa, sb, &ab_meter, &ba_meter, rules, waiting).await
        }
        (io_a, io_b) => {
            let ((a_reader, a_writer, a_cut), (b_reader, b_writer, b_cut)) =
                (io_a.into_split(), io_b.into_split());
            let (mut a_sink, mut b_sink) = (IoSendStream::new(a_writer), IoSendStream::new(b_writer));
            let ab = Direction {
                source_write_only: a.write_only,
                sink_read_only: b.read_only,
                sink_name: &b_name,
                sink_is_command: b_child.is_some(),
            };
            let ba = Direction {
                source_write_only: b.write_only,
                sink_read_only: a.read_only,
                sink_name: &a_name,
                sink_is_command: a_child.is_some(),
            };
            let ([ab, ba], end) = {
                let (b_half, a_half) = (b.on_eof == OnEof::HalfClose, a.on_eof == OnEof::HalfClose);
                let ab_run = ab.run(a_reader, &mut b_sink, &ab_shaping, &activity, b_half, &ab_meter);
                let ba_run = ba.run(b_reader, &mut a_sink, &ba_shaping, &activity, a_half, &ba_meter);
                // Feeding a command ends when it exits, too (it takes no more).
                let ab_run = async {
                    match b_child.as_mut() {
                        Some(child) => crate::common::until_exit(child, ab_run, &ab_meter).await,
                        None => ab_run.await,
                    }
                };
                let ba_run = async {
                    match a_child.as_mut() {
                        Some(child) => crate::common::until_exit(child, ba_run, &ba_meter).await,
                        None => ba_run.await,
                    }
                };
                run_pair(ab_run, ba_run, rules, [&ab_meter, &ba_meter], waiting).await
            };
            let failed = matches!(end, PairEnd::Failed(_));
            if failed {
                // Commands die before their stdin closes (the sinks drop after this): a
                // failed relay never hands them a clean end of input.
                for child in [&mut a_child, &mut b_child].into_iter().flatten() {
                    crate::common::reap_child(child, true).await;
                }
                // A stream cut short is passed on cut short: a reset on a plain side.
                if cut_short(end, [&ab, &ba]) {
                    crate::common::cut(&a_cut);
                    crate::common::cut(&b_cut);
                }
            } else {
                // Whatever is still open closes now: a keep-open side's FIN or close_notify,
                // a file's flush.
                let _ = a_sink.aclose().await;
                let _ = b_sink.aclose().await;
            }
            (ab.unwrap_or_else(Flow::abandoned), ba.unwrap_or_else(Flow::abandoned), failed)
        }
    };
    if let Some(progress) = progress {
        progress.finish();
    }
    // A command that fails (or cannot run: `sh` exits 127) fails the relay, as a broken
    // stream does; one that had to be killed after the relay is not counted.
    let mut command_failed = None;
    for (child, name) in [(a_child, &a_name), (b_child, &b_name)]
        .into_iter()
        .filter_map(|(child, name)| child.map(|c| (c, name)))
    {
        let mut child = child;
        let status = crate::common::reap_child(&mut child, failed).await;
        tracing::info!(status = ?status, "command exited");
        if let Some(status) = status.filter(|s| !s.success()) {
            command_failed.get_or_insert(anyhow::anyhow!("{name}: the command failed ({status})"));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    for (label, flow) in [(format!("{a_name} -> {b_name}"), &ab), (format!("{b_name} -> {a_name}"), &ba)] {
        shared.ui.emit(|| Event::half_close(None, label.clone(), flow));
        if shared.verbose {
            tracing::info!("{label}: {} bytes in {elapsed:.3}s, {}", flow.bytes_out, flow.reason());
        }
    }
    let reason = format!("{}; {}", ab.reason(), ba.reason());
    shared.ui.emit(|| Close::relay(&a_name, &b_name, reason, Some(elapsed)));
    first_error([(ab, &a_name, &b_name, b.is_stdio), (ba, &b_name, &a_name, a.is_stdio)], spliced)?;
    command_failed.map_or(Ok(()), Err)
}

/// One direction of the generic (non-splice) relay.
struct Direction<'a> {
    /// The source is a write-only file: nothing comes from it.
    source_write_only: bool,
    /// The sink is a read-only file: what arrives is dropped, with a warning.
    sink_read_only: bool,
    sink_name: &'a str,
    /// The sink is an `exec:` command's stdin: a command that stops reading is not a
    /// failure of the relay.
    sink_is_command: bool,
}

impl Direction<'_> {
    async fn run(
        &self,
        reader: Reader,
        sink: &mut IoSendStream<Writer>,
        shaping: &Shaping,
        activity: &Activity,
        half_close: bool,
        meter: &Meter,
    ) -> Flow {
        if self.source_write_only {
            // No data, and no early end for the other side: it is closed when the whole
            // relay is done, so a client uploading to a file is not cut off.
            return Flow { bytes_in: 0, bytes_out: 0, frames: 0, frames_skipped: 0, end: FlowEnd::Eof };
        }
        let source = IoReceiveStream::new(reader);
        if self.sink_read_only {
            let sink = ReadOnlySink { name: self.sink_name.to_string(), warned: false };
            return forward_metered(source, sink, shaping, activity, true, meter).await;
        }
        let flow = forward_metered(source, sink, shaping, activity, half_close, meter).await;
        if self.sink_is_command { crate::common::command_stopped_reading(flow) } else { flow }
    }
}

/// The error the relay ends with, if any, naming the endpoint that failed; each flow
/// comes with its source's and sink's names and whether its sink is stdout, where a closed
/// pipe (as in `| head`) counts as success, and so does a peer that left after a complete
/// exchange (a probe, a health check), where the flows can tell (not `spliced`).
fn first_error(flows: [(Flow, &str, &str, bool); 2], spliced: bool) -> Result<()> {
    for (flow, source, sink, sink_is_stdout) in flows {
        if !spliced && crate::common::peer_left(&flow) {
            // A probe or a health check that left after a complete exchange.
            continue;
        }
        if let FlowEnd::Failed(side, err) = flow.end {
            if side == Side::Sink && sink_is_stdout && crate::common::is_broken_pipe(&err) {
                continue;
            }
            let what = match side {
                Side::Source => format!("receiving from {source} failed"),
                Side::Sink => format!("sending to {sink} failed"),
            };
            return Err(anyhow::Error::new(err).context(what));
        }
    }
    Ok(())
}

/// Whether the relay failed because a stream was cut short (see [`crate::common::cut_short`]).
fn cut_short(end: PairEnd, flows: [&Option<Flow>; 2]) -> bool {
    matches!(end, PairEnd::Failed(i) if flows[i].as_ref().is_some_and(crate::common::cut_short))
}

/// Both directions between two plain sockets, with splice(2), by the same rules as the
/// generic relay: a relay cut short resets both TCP sides.
async fn splice_both(
    a: PlainSocket,
    b: PlainSocket,
    ab_meter: &Meter,
    ba_meter: &Meter,
    rules: [PairRule; 2],
    waiting: impl FnMut(usize),
) -> (Flow, Flow, bool) {
    use streamtool::splice::{SpliceSocket, transfer};
    fn flow(result: Result<u64, streamtool::splice::SpliceError>) -> Flow {
        let (bytes, end) = match result {
            Ok(n) => (n, FlowEnd::Eof),
            Err(e) => {
                (e.bytes, FlowEnd::Failed(if e.reading { Side::Source } else { Side::Sink }, e.error.into()))
            }
        };
        Flow { bytes_in: bytes, bytes_out: bytes, frames: 0, frames_skipped: 0, end }
    }
    async fn one<S: SpliceSocket, D: SpliceSocket>(src: &S, dst: &D, meter: &Meter) -> Flow {
        let mut flow = flow(transfer(src, dst, &|n| meter.add(n)).await);
        if matches!(flow.end, FlowEnd::Eof)
            && let Err(err) = dst.shutdown_write()
        {
            flow.end = FlowEnd::Failed(Side::Sink, err.into());
        }
        flow
    }
    let (flows, end) = match (&a, &b) {
        (PlainSocket::Tcp(a), PlainSocket::Tcp(b)) => {
            run_pair(one(a, b, ab_meter), one(b, a, ba_meter), rules, [ab_meter, ba_meter], waiting).await
        }
        (PlainSocket::Tcp(a), PlainSocket::Unix(b)) => {
            run_pair(one(a, b, ab_meter), one(b, a, ba_meter), rules, [ab_meter, ba_meter], waiting).await
        }
        (PlainSocket::Unix(a), PlainSocket::Tcp(b)) => {
            run_pair(one(a, b, ab_meter), one(b, a, ba_meter), rules, [ab_meter, ba_meter], waiting).await
        }
        (PlainSocket::Unix(a), PlainSocket::Unix(b)) => {
            run_pair(one(a, b, ab_meter), one(b, a, ba_meter), rules, [ab_meter, ba_meter], waiting).await
        }
    };
    let failed = matches!(end, PairEnd::Failed(_));
    if cut_short(end, [&flows[0], &flows[1]]) {
        for socket in [&a, &b] {
            if let PlainSocket::Tcp(tcp) = socket {
                crate::common::reset_on_close(tcp);
            }
        }
    }
    let [ab, ba] = flows;
    (ab.unwrap_or_else(Flow::abandoned), ba.unwrap_or_else(Flow::abandoned), failed)
}
