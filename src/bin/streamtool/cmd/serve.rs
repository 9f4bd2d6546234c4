//! `streamtool serve`: listen, and relay stdio, echo, run a command, broker or discard
//! per connection.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::Bytes;
use streamtool::endpoint::EndpointOptions;
use streamtool::event::{Close, Event};
use streamtool::relay::{
    Activity, Flow, FlowEnd, Meter, OnEof, PairEnd, PairRule, Shaping, forward_metered, run_pair,
};
use streamtool::server::{ConnectionContext, ServeOptions, serve};
use streamtool::stack::{Spelling, shaping};
use streamtool::streams::listener::{Connection, Listener, SocketListener};
use streamtool::streams::memory::Capacity;
use streamtool::streams::tls::{Pin, TlsStream};
use streamtool::streams::{
    AsyncResource, ByteSendStream, ChildStream, IoReceiveStream, IoSendStream, MemoryObjectReceiveStream,
    MemoryObjectSendStream, ObjectByteReceiveStream, ObjectReceiveStream, Phase, RaggedEofPolicy,
    StreamError, TypedAttributeProvider, memory_object_stream,
};
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::common::{
    self, NetStream, PlainSocket, SessionOptions, check_tls_flags, report_direction, report_handshake,
    stdio_session,
};
use crate::exit_codes::{Interrupted, Usage};
use crate::ui::Ui;

/// Everything a connection handler needs, shared by all connections.
struct Shared {
    mode: Mode,
    inbound: Shaping,
    outbound: Shaping,
    idle_timeout: Option<std::time::Duration>,
    ui: Ui,
    /// Per-client outboxes: stdin broadcast (`-k`) or the broker.
    clients: Mutex<HashMap<u64, Outbox>>,
    next_id: AtomicU64,
    stdout: tokio::sync::Mutex<tokio::io::Stdout>,
    /// Bytes from all clients, and to all clients (`--progress`).
    received: Meter,
    sent: Meter,
    progress: bool,
    /// Why the last `--exec`/`--sh-exec` command failed, if it did (without -k, serve
    /// exits 1 with it).
    command_failed: Mutex<Option<String>>,
    /// -k (or --broker): many clients, so a command's failure is only logged.
    keep_open: bool,
    /// What the end of our input does to a client's connection (--on-eof).
    on_eof: OnEof,
    /// How far a client may fall behind the others before it is disconnected (--max-lag).
    max_lag: usize,
    /// Woken whenever a client takes something from its queue, joins or leaves.
    drained: Arc<tokio::sync::Notify>,
    /// stdin has ended (stdio mode with -k): new clients get our end at once.
    stdin_done: AtomicBool,
    /// Cancelled when writing to stdout fails because its reader is gone (`| head`): a
    /// `-k` server then stops, rather than dropping every later client's data.
    stdout_gone: CancellationToken,
}

#[derive(Debug, Clone)]
enum Mode {
    Stdio,
    Echo,
    Exec(Vec<String>),
    Shell(String),
    Broker,
    Discard,
}

pub async fn run(args: ServeArgs, ui: Ui) -> Result<()> {
    check_serve_flags(&args)?;
    let mode = mode(&args)?;
    let keep_open = args.keep_open || matches!(mode, Mode::Broker);
    if args.max_conns.is_some() && !keep_open {
        return Err(Usage("--max-conns needs -k (without it, serve serves one client)".into()).into());
    }
    let signals = common::Signals::new()?;
    let listener = args.addr.bind(common::family(&args.net)).await?;
    let addresses: Vec<String> = listener.local_addresses().iter().map(|a| a.to_string()).collect();
    // Every file a flag names is read and checked (the key against the certificate, the
    // key log opened) before the banner and the listening line.
    let options = args.options();
    let tls = if args.tls.tls { Some(served_tls(&options, &args, &listener, &ui)?) } else { None };
    // A background job (`serve ... &` at a prompt) must not read the terminal: it would be
    // stopped (SIGTTIN) and never answer.
    if matches!(mode, Mode::Stdio) {
        crate::background::detach_background_stdin(&ui)?;
    }
    tracing::info!("listening on {}", addresses.join(", "));
    ui.notice(&format!("listening on {}", addresses.join(", ")));
    ui.emit(|| Event::Listen {
        addresses,
        tls: Some(tls.is_some()),
        cert_sha256: tls.as_ref().map(|tls| tls.cert_pin.to_string()),
        key_sha256: tls.as_ref().map(|tls| tls.key_pin.as_ref().map(ToString::to_string)),
    });
    let config = tls.map(|tls| tls.config);

    let stdio = EndpointOptions::default();
    let shared = Arc::new(Shared {
        mode,
        inbound: shaping(&options, &stdio),
        outbound: shaping(&stdio, &options),
        idle_timeout: args.net.idle_timeout,
        ui: ui.clone(),
        clients: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        stdout: tokio::sync::Mutex::new(tokio::io::stdout()),
        received: Meter::default(),
        sent: Meter::default(),
        progress: crate::progress::enabled(args.progress),
        command_failed: Mutex::new(None),
        keep_open,
        on_eof: options.on_eof.unwrap_or(OnEof::HalfClose),
        max_lag: args.max_lag,
        drained: Arc::new(tokio::sync::Notify::new()),
        stdin_done: AtomicBool::new(false),
        stdout_gone: CancellationToken::new(),
    });
    let policy = options.ragged_eof_policy();
    let handshake_timeout = options.handshake_limit();

    if !keep_open {
        return serve_one(listener, config, policy, handshake_timeout, args.grace, signals, shared).await;
    }

    if matches!(shared.mode, Mode::Stdio) {
        tokio::spawn(broadcast_stdin(Arc::clone(&shared)));
    }
    let (shutdown, cut_short) = (CancellationToken::new(), CancellationToken::new());
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(common::watch_signals(
        signals,
        shutdown.clone(),
        cut_short.clone(),
        Arc::clone(&interrupted),
    ));
    let progress = shared.progress.then(|| {
        crate::progress::Progress::start(
            ["clients -> server".to_string(), "server -> clients".to_string()],
            [shared.received.clone(), shared.sent.clone()],
        )
    });
    tokio::spawn(crate::hardening::stop_when_stdout_gone(
        shared.stdout_gone.clone(),
        shutdown.clone(),
        cut_short.clone(),
    ));
    let options =
        ServeOptions { max_connections: args.max_conns, grace: args.grace, cut_grace_short: Some(cut_short) };
    let summary = serve(listener, options, shutdown, move |raw, context: ConnectionContext| {
        let shared = Arc::clone(&shared);
        let config = config.clone();
        async move {
            // Formatted only where it is written: a log line or an event.
            let peer = &context.peer;
            shared.ui.emit(|| Event::Accept { peer: peer.to_string() });
            // Kept to reset the connection if the server stops because stdout is gone
            // (only the stdio mode writes clients' data there).
            let _reset = matches!(shared.mode, Mode::Stdio)
                .then(|| crate::hardening::ResetIf::new(&raw, shared.stdout_gone.clone()));
            let net = match config {
                // Boxed: the handshake's state would otherwise stay part of every
                // connection's future, plain or TLS, for its whole life.
                Some(config) => {
                    match Box::pin(common::accept_tls(raw, config, policy, handshake_timeout)).await {
                        Ok(tls) => tls_net(tls, &shared.ui, peer),
                        Err(reason) => {
                            tracing::warn!("TLS handshake with {peer} failed: {reason}");
                            shared.ui.emit(|| Close::served(peer, format!("handshake: {reason}")));
                            return;
                        }
                    }
                }
                None => NetStream::boxed(Box::new(raw)),
            };
            tokio::select! {
                // First: a connection is dropped (and reset) the moment stdout is gone,
                // before its relay can end it cleanly.
                biased;
                () = shared.stdout_gone.cancelled() => {}
                result = handle(net, peer, &shared) => {
                    if let Err(err) = result {
                        tracing::warn!(%peer, "{}", crate::one_line(&err));
                    }
                }
                () = context.closing.cancelled() => {
                    let reason = "server shutdown";
                    shared.ui.emit(|| Close::served(peer, reason));
                }
            }
        }
    })
    .await;
    if let Some(progress) = progress {
        progress.finish();
    }
    ui.emit(|| Event::Stopped {
        accepted: summary.accepted as u64,
        rejected: summary.rejected as u64,
        cut_short: summary.cut_short as u64,
    });
    if interrupted.load(Ordering::SeqCst) { Err(Interrupted.into()) } else { Ok(()) }
}

fn mode(args: &ServeArgs) -> Result<Mode> {
    let m = &args.mode;
    Ok(if m.echo {
        Mode::Echo
    } else if let Some(cmd) = &m.exec {
        let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            return Err(Usage("--exec needs a command".into()).into());
        }
        Mode::Exec(argv)
    } else if let Some(cmd) = &m.sh_exec {
        Mode::Shell(cmd.clone())
    } else if m.broker {
        Mode::Broker
    } else if m.discard {
        Mode::Discard
    } else {
        Mode::Stdio
    })
}

/// Flag combinations of `serve` that clap cannot express. No flag turns TLS on but
/// --tls, and the client's TLS flags are refused by name rather than ignored.
fn check_serve_flags(args: &ServeArgs) -> Result<()> {
    if args.tls.ca.is_some() {
        // Refused with or without --tls: the file would never be read.
        return Err(Usage(
            "--ca is a client option (the CAs a client trusts for its server) and serve never reads \
             it: to verify client certificates, use --tls --client-ca FILE; to serve TLS, --tls"
                .into(),
        )
        .into());
    }
    if !args.tls.pin.is_empty() {
        return Err(Usage("--pin is a client option; a server presents its certificate".into()).into());
    }
    if args.tls.sni.is_some() || args.tls.no_sni {
        return Err(Usage("--sni and --no-sni are client options; serve answers any name".into()).into());
    }
    if args.net.connect_timeout.is_some() {
        return Err(Usage(
            "-w/--connect-timeout is a client option; serve connects nowhere (--idle-timeout and \
             --handshake-timeout apply to its connections)"
                .into(),
        )
        .into());
    }
    check_tls_flags(
        &args.tls,
        &[("--client-ca", args.client_ca.is_some()), ("--require-client-cert", args.require_client_cert)],
    )
}

/// serve's TLS, ready to accept, and the pins of the certificate it presents.
struct ServedTls {
    config: Arc<rustls::ServerConfig>,
    /// The cert pin (SHA-256 of the whole certificate).
    cert_pin: Pin,
    /// The key pin (SHA-256 of its SPKI), if the certificate parses.
    key_pin: Option<Pin>,
}

/// Builds serve's TLS (every file read, the key checked against the certificate, the key
/// log opened), then prints the banner of a fresh certificate when no --cert was given
/// (its pins and the command that reaches it verified; docs/design.md §4.4).
fn served_tls(
    options: &EndpointOptions,
    args: &ServeArgs,
    listener: &SocketListener,
    ui: &Ui,
) -> Result<ServedTls> {
    let (server, generated) = options.server_options(Spelling::Flags)?;
    let config = server.build()?;
    if let Some(generated) = generated {
        let target = match listener.tcp_port() {
            Some(port) => format!("localhost:{port}"),
            None => args.addr.to_string(),
        };
        ui.say("no --cert given; serving a fresh self-signed certificate for localhost, 127.0.0.1, ::1");
        for line in common::self_signed_banner(generated.cert_der.as_ref(), &target) {
            ui.say(&line);
        }
    }
    let leaf = server.identity.chain.first().map(|c| c.as_ref()).unwrap_or_default();
    tracing::info!("serving a certificate with {}", common::pin_lines(leaf).join(", "));
    Ok(ServedTls { config, cert_pin: Pin::of_certificate(leaf), key_pin: Pin::of_public_key(leaf).ok() })
}

fn tls_net(tls: TlsStream<Connection>, ui: &Ui, peer: &(impl Display + ?Sized)) -> NetStream {
    report_handshake(&tls, ui, peer);
    // A failed TLS connection is dropped without close_notify: the client can tell.
    NetStream::boxed(Box::new(tls))
}

/// Without -k, TLS handshakes in progress at once at most; past that, accepting waits.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// Without -k: the first client (the first whose handshake succeeds, with TLS) is relayed,
/// then the server exits, as `nc -l` does.
async fn serve_one(
    mut listener: SocketListener,
    config: Option<Arc<rustls::ServerConfig>>,
    policy: RaggedEofPolicy,
    handshake_timeout: std::time::Duration,
    grace: std::time::Duration,
    signals: common::Signals,
    shared: Arc<Shared>,
) -> Result<()> {
    let stdio = matches!(shared.mode, Mode::Stdio);
    let common::Signals { mut term, mut int } = signals;
    // Handshakes run side by side: a client that connects and stays silent must not hold
    // up the next one for the whole handshake timeout (the first to finish is served).
    let first_client = async {
        let mut backoff = std::time::Duration::from_millis(5);
        let mut handshakes = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept(), if handshakes.len() < MAX_PENDING_HANDSHAKES => accepted,
                Some(done) = handshakes.join_next() => {
                    match done {
                        Ok((Ok(tls), peer)) => return Ok((tls_net(tls, &shared.ui, &peer), peer)),
                        Ok((Err(reason), peer)) => {
                            tracing::warn!("TLS handshake with {peer} failed: {reason}");
                            shared.ui.emit(|| Close::served(&peer, format!("handshake: {reason}")));
                        }
                        Err(err) => tracing::warn!("a TLS handshake task failed: {err}"),
                    }
                    continue;
                }
            };
            let (raw, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Running out of descriptors and the like: wait and try again.
                    tracing::warn!(error = %err, "accept failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                    continue;
                }
            };
            let peer = peer.to_string();
            shared.ui.emit(|| Event::Accept { peer: peer.clone() });
            let Some(config) = &config else {
                // A stdio session over a plain socket can splice it.
                let net = match raw {
                    Connection::Tcp(s) if stdio => NetStream::plain(PlainSocket::Tcp(s.into_inner()?)),
                    Connection::Unix(s) if stdio => NetStream::plain(PlainSocket::Unix(s.into_inner()?)),
                    raw => NetStream::boxed(Box::new(raw)),
                };
                return Ok::<_, anyhow::Error>((net, peer));
            };
            let config = config.clone();
            handshakes.spawn(async move {
                (common::accept_tls(raw, config, policy, handshake_timeout).await, peer)
            });
        }
    };
    // Waiting for the first client: SIGINT exits 130, SIGTERM exits 0.
    let (net, peer) = tokio::select! {
        first = first_client => first?,
        _ = term.recv() => return Ok(()),
        _ = int.recv() => return Err(Interrupted.into()),
    };
    drop(listener);
    // tokio's SIGTERM handler stays installed once made, so SIGTERM is watched during the
    // session too, or it would be swallowed. As with -k: the connection gets the grace
    // period to finish, then it is closed and the exit is 0. SIGINT stops at once (130),
    // also during the grace period.
    let session = session_one(net, peer, shared);
    tokio::pin!(session);
    // Biased: a session that handles SIGINT itself (stdio) ends on its own terms first.
    tokio::select! {
        biased;
        result = &mut session => result,
        _ = int.recv() => Err(Interrupted.into()),
        _ = term.recv() => {
            tracing::info!(?grace, "SIGTERM: letting the connection finish");
            tokio::select! {
                biased;
                finished = tokio::time::timeout(grace, &mut session) => finished.unwrap_or_else(|_| {
                    tracing::warn!("grace period over; closing the connection");
                    Ok(())
                }),
                _ = int.recv() => Err(Interrupted.into()),
            }
        }
    }
}

/// The single client's session, per mode.
async fn session_one(net: NetStream, peer: String, shared: Arc<Shared>) -> Result<()> {
    if matches!(shared.mode, Mode::Stdio) {
        let options = SessionOptions {
            inbound: shared.inbound.clone(),
            outbound: shared.outbound.clone(),
            on_eof: shared.on_eof,
            keep_sending: false,
            send_only: false,
            recv_only: false,
            idle_timeout: shared.idle_timeout,
        };
        let session = match stdio_session(net, options, shared.progress, &shared.ui, &peer).await {
            Ok(session) => session,
            Err(err) => {
                // The idle timeout (or Ctrl-C) ended it: a `close` event as in the other modes.
                let reason =
                    if is_idle_timeout(&err) { "idle timeout".to_string() } else { format!("{err:#}") };
                shared.ui.emit(|| Close::served(&peer, reason));
                return Err(err);
            }
        };
        shared.ui.emit(|| Close::served(&peer, "done"));
        return common::session_error(session, &peer);
    }
    let result = handle(net, &peer, &shared).await;
    // One client, one command: its failure is serve's (with -k it is only logged). A
    // broken connection comes first: a killed command's status says less.
    result?;
    match shared.command_failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// The error of an idle timeout with `peer`, worded as the stdio session words it.
fn idle_timeout(limit: std::time::Duration, peer: &str) -> anyhow::Error {
    anyhow::Error::new(StreamError::Timeout { phase: Phase::Idle, after: limit })
        .context(format!("no data moved to or from {peer}"))
}

/// Whether an idle timeout ended a session.
fn is_idle_timeout(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(c.downcast_ref::<StreamError>(), Some(StreamError::Timeout { phase: Phase::Idle, .. }))
    })
}

/// One connection, per mode. Returns how it ended: `Ok` for a clean end, the error
/// otherwise (a one-shot serve exits with it; with -k it is logged).
async fn handle(net: NetStream, peer: &(impl Display + Sync + ?Sized), shared: &Arc<Shared>) -> Result<()> {
    let (net_rx, net_tx) = tokio::io::split(net.io.into_boxed());
    let (net_rx, mut net_tx) = (IoReceiveStream::new(net_rx), IoSendStream::new(net_tx));
    let activity = Activity::default();
    let ended = serve_connection(net_rx, &mut net_tx, peer, shared, &activity).await;
    // A clean end closes our side properly (idempotent after a half-close); after an error
    // or a timeout the connection is dropped without close_notify, so that a TLS client can
    // tell. (No reset: what failed was this client's own stream, or our command's, and a
    // reset could make its kernel drop the frames delivered before bad data.)
    let clean = matches!(&ended, Ended::Flows(flows) if flows.iter().all(|f| f.error().is_none()));
    if clean {
        let _ = net_tx.aclose().await;
    }
    let flows = match ended {
        Ended::Flows(flows) => flows,
        Ended::Idle(limit) => {
            tracing::info!(%peer, "idle timeout");
            shared.ui.emit(|| Close::served(peer, "idle timeout"));
            return Err(idle_timeout(limit, &peer.to_string()));
        }
        Ended::Kicked(why) => {
            tracing::warn!(%peer, "{why}");
            shared.ui.emit(|| Close::served(peer, why.clone()));
            return Err(anyhow::anyhow!("{peer}: {why}"));
        }
    };
    let bytes_in: u64 = flows.iter().map(|f| f.bytes_in).sum();
    // Built only for a log line or an event that is on.
    let reasons = || flows.iter().map(Flow::reason).collect::<Vec<_>>().join("; ");
    shared.ui.emit(|| Close::served(peer, reasons()));
    // A peer that left after a complete exchange (a `-z` probe, a health check) is an
    // ordinary end: no warning, no failure. Warnings are for data lost or refused.
    let failed = !flows.iter().all(|f| f.error().is_none() || common::peer_left(f));
    if !failed {
        tracing::info!(%peer, bytes_in, reason = %reasons(), "closed");
    }
    match flows.into_iter().filter(|f| !common::peer_left(f)).find_map(|f| match f.end {
        FlowEnd::Failed(_, err) => Some(err),
        FlowEnd::Eof | FlowEnd::Abandoned => None,
    }) {
        Some(err) => Err(anyhow::Error::new(err).context(format!("the connection with {peer} failed"))),
        None => Ok(()),
    }
}

type NetRx = IoReceiveStream<tokio::io::ReadHalf<Box<dyn common::Io>>>;
type NetTx = IoSendStream<tokio::io::WriteHalf<Box<dyn common::Io>>>;

/// How a connection's job ended.
enum Ended {
    /// Each direction's flow.
    Flows(Vec<Flow>),
    /// The idle timeout expired.
    Idle(std::time::Duration),
    /// Disconnected by the server (a client that fell too far behind).
    Kicked(String),
}

/// Runs the mode's job on one connection.
async fn serve_connection(
    net_rx: NetRx,
    net_tx: &mut NetTx,
    peer: &(impl Display + Sync + ?Sized),
    shared: &Arc<Shared>,
    activity: &Activity,
) -> Ended {
    // Both pinned where they are made: a future moved into select! is stored twice, and
    // every idle connection holds this one.
    let idle = std::pin::pin!(async {
        match shared.idle_timeout {
            Some(limit) => {
                activity.idle_for(limit).await;
                limit
            }
            None => std::future::pending().await,
        }
    });
    let half_close = shared.on_eof == OnEof::HalfClose;
    // A client of the broadcast or the broker: its queue's count and the signal that
    // disconnects it (one allocation, made only in those modes).
    let client = matches!(shared.mode, Mode::Stdio | Mode::Broker).then(|| Arc::new(Client::default()));
    let work = std::pin::pin!(async {
        match &shared.mode {
            Mode::Echo => {
                let echo = Shaping { encode: shared.inbound.decode, ..shared.inbound.clone() };
                let flow =
                    forward_metered(net_rx, net_tx, &echo, activity, half_close, &shared.received).await;
                // What is echoed was received and sent.
                shared.sent.add(flow.bytes_out);
                report_direction(&shared.ui, peer, "echo", &flow);
                vec![flow]
            }
            Mode::Discard => {
                let flow = forward_metered(
                    net_rx,
                    common::Discard,
                    &shared.inbound,
                    activity,
                    false,
                    &shared.received,
                )
                .await;
                report_direction(&shared.ui, peer, "peer->discard", &flow);
                vec![flow]
            }
            // Boxed, as the TLS handshake is: a future is as large as its largest state, and
            // this one is three times the stdio relay's, which idle connections hold.
            Mode::Exec(argv) => {
                Box::pin(run_child(
                    ChildStream::spawn(&argv[0], &argv[1..]),
                    net_rx,
                    net_tx,
                    shared,
                    activity,
                    peer,
                ))
                .await
            }
            Mode::Shell(cmd) => {
                Box::pin(run_child(ChildStream::shell(cmd), net_rx, net_tx, shared, activity, peer)).await
            }
            Mode::Stdio | Mode::Broker => {
                let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                let client = Arc::clone(client.as_ref().expect("made for this mode"));
                let inbox = shared.register(id, client);
                // What goes to the peer is shaped for it (encoding, --crlf), as in the
                // other modes.
                // Pinned where they are made, and handed to run_pair by reference: a future
                // moved into another is stored twice, and idle connections hold these
                // (`bench/run.py --only idle`: 6.1 KiB per connection moved, 3.7 pinned).
                let to_peer = std::pin::pin!(forward_metered(
                    ObjectByteReceiveStream::new(inbox),
                    &mut *net_tx,
                    &shared.outbound,
                    activity,
                    half_close,
                    &shared.sent,
                ));
                let from_peer = std::pin::pin!(async {
                    let flow = if matches!(shared.mode, Mode::Broker) {
                        let sink = BrokerSink { id, shared: Arc::clone(shared) };
                        forward_metered(net_rx, sink, &shared.inbound, activity, false, &shared.received)
                            .await
                    } else {
                        let sink = SharedStdout(Arc::clone(shared));
                        forward_metered(net_rx, sink, &shared.inbound, activity, false, &shared.received)
                            .await
                    };
                    // A shared stream has no end of its own to wait for: a client that ended
                    // its side gets what is already queued for it, then our end. Otherwise
                    // every client that left (a health check, `nc` closing) would hold its
                    // connection, and its --max-conns slot, until the next write to it.
                    shared.unregister(id);
                    flow
                });
                let rules = [
                    PairRule { ends_relay: shared.on_eof == OnEof::Close, wait_for_cause: true },
                    PairRule::default(),
                ];
                let ([up, down], _) =
                    run_pair(to_peer, from_peer, rules, [&shared.sent, &shared.received], |_| {}).await;
                shared.unregister(id);
                let (up, down) = (up.unwrap_or_else(Flow::abandoned), down.unwrap_or_else(Flow::abandoned));
                report_direction(&shared.ui, peer, "peer->out", &down);
                vec![up, down]
            }
        }
    });
    tokio::select! {
        flows = work => Ended::Flows(flows),
        limit = idle => Ended::Idle(limit),
        () = async { client.as_ref().expect("checked in the guard").kicked.notified().await }, if client.is_some() => Ended::Kicked(format!(
            "fell more than {} behind the others; disconnected (--max-lag)",
            streamtool::values::format_size(shared.max_lag as u64)
        )),
    }
}

async fn run_child(
    child: streamtool::streams::Result<ChildStream>,
    net_rx: NetRx,
    net_tx: &mut NetTx,
    shared: &Arc<Shared>,
    activity: &Activity,
    peer: &(impl Display + Sync + ?Sized),
) -> Vec<Flow> {
    let child = match child {
        Ok(child) => child,
        Err(err) => {
            let why = streamtool::streams::error::chain(&err);
            // Without -k, serve ends with this as its one error line.
            if shared.keep_open {
                tracing::error!(%peer, "{why}");
            }
            *shared.command_failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
            return Vec::new();
        }
    };
    let command = child.command().to_string();
    let (mut process, mut stdin, stdout) = child.into_parts();
    let (to_meter, from_meter) = (Meter::default(), Meter::default());
    let half_close = shared.on_eof == OnEof::HalfClose;
    let to_child = async {
        let flow = common::until_exit(
            &mut process,
            forward_metered(net_rx, &mut stdin, &shared.inbound, activity, true, &to_meter),
            &to_meter,
        )
        .await;
        shared.received.add(flow.bytes_out);
        common::command_stopped_reading(flow)
    };
    let from_child = async {
        let flow =
            forward_metered(stdout, &mut *net_tx, &shared.outbound, activity, half_close, &from_meter).await;
        shared.sent.add(flow.bytes_out);
        flow
    };
    // No waiting for a cause after a failed write to the client: the other direction
    // feeds the command, which may be blocked writing output that is no longer read.
    let rules =
        [PairRule::default(), PairRule { ends_relay: shared.on_eof == OnEof::Close, ..Default::default() }];
    let ([up, down], end) = run_pair(to_child, from_child, rules, [&to_meter, &from_meter], |_| {}).await;
    let (up, down) = (up.unwrap_or_else(Flow::abandoned), down.unwrap_or_else(Flow::abandoned));
    report_direction(&shared.ui, peer, "peer->command", &up);
    report_direction(&shared.ui, peer, "command->peer", &down);
    // A relay that failed (a reset, a truncated TLS stream) must not look complete to the
    // command: it is killed before its stdin closes, rather than given a clean end of
    // input. Otherwise it gets a moment to exit, then is killed. Either way it is reaped.
    let failed = matches!(end, PairEnd::Failed(_));
    let status = common::reap_child(&mut process, failed).await;
    drop(stdin);
    tracing::info!(%peer, %command, status = ?status, "command exited");
    if !failed && let Some(status) = status.filter(|s| !s.success()) {
        *shared.command_failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(format!("the command {command:?} failed ({status})"));
    }
    shared.ui.emit(|| Event::ExecExit {
        peer: peer.to_string(),
        command: command.clone(),
        code: status.and_then(|s| s.code()),
    });
    vec![up, down]
}

/// Everything a client sends in `-k` stdio mode goes to our stdout, a chunk (or a whole
/// frame) at a time.
struct SharedStdout(Arc<Shared>);

impl AsyncResource for SharedStdout {
    async fn aclose(&mut self) -> streamtool::streams::Result<()> {
        Ok(())
    }
}
impl TypedAttributeProvider for SharedStdout {}
impl ByteSendStream for SharedStdout {
    async fn send(&mut self, data: Bytes) -> streamtool::streams::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut stdout = self.0.stdout.lock().await;
        let written = async {
            stdout.write_all(&data).await?;
            stdout.flush().await
        };
        if let Err(err) = written.await {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                // The server stops; this connection waits here to be dropped and reset
                // (`stop_when_stdout_gone`), rather than end in a way the client could
                // take for a clean end.
                self.0.stdout_gone.cancel();
                std::future::pending::<()>().await;
            }
            return Err(err.into());
        }
        Ok(())
    }
}

/// In `--broker` mode, a client's data goes to every other client.
struct BrokerSink {
    id: u64,
    shared: Arc<Shared>,
}

impl AsyncResource for BrokerSink {
    async fn aclose(&mut self) -> streamtool::streams::Result<()> {
        Ok(())
    }
}
impl TypedAttributeProvider for BrokerSink {}
impl ByteSendStream for BrokerSink {
    async fn send(&mut self, data: Bytes) -> streamtool::streams::Result<()> {
        deliver(&self.shared, Some(self.id), data).await;
        Ok(())
    }
}

/// A client's queue of what the broadcast (stdin with -k) or the broker sends it.
struct Outbox {
    tx: MemoryObjectSendStream<Bytes>,
    client: Arc<Client>,
}

/// What the broadcast and the connection of one client share.
#[derive(Default)]
struct Client {
    /// Bytes queued and not yet taken by the client's connection.
    queued: AtomicUsize,
    /// Notified (a permit is kept) to disconnect a client that fell too far behind.
    kicked: tokio::sync::Notify,
}

/// The receiving end of an [`Outbox`]: counts what the connection takes.
struct Inbox {
    rx: MemoryObjectReceiveStream<Bytes>,
    client: Arc<Client>,
    drained: Arc<tokio::sync::Notify>,
}

impl AsyncResource for Inbox {
    async fn aclose(&mut self) -> streamtool::streams::Result<()> {
        self.rx.aclose().await
    }
}
impl TypedAttributeProvider for Inbox {}
impl ObjectReceiveStream<Bytes> for Inbox {
    async fn receive(&mut self) -> streamtool::streams::Result<Bytes> {
        let chunk = self.rx.receive().await?;
        self.client.queued.fetch_sub(chunk.len(), Ordering::AcqRel);
        self.drained.notify_waiters();
        Ok(chunk)
    }
}

impl Shared {
    /// Adds a client to the broadcast or the broker; once stdin has ended (stdio mode),
    /// a new client's queue is closed at once, so it gets our end straight away.
    fn register(&self, id: u64, client: Arc<Client>) -> Inbox {
        let (tx, rx) = memory_object_stream::<Bytes>(Capacity::Unbounded);
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.stdin_done.load(Ordering::Acquire) {
            clients.insert(id, Outbox { tx, client: Arc::clone(&client) });
            // The broadcast may be waiting for a first client.
            self.drained.notify_waiters();
        }
        Inbox { rx, client, drained: Arc::clone(&self.drained) }
    }

    fn unregister(&self, id: u64) {
        self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        self.drained.notify_waiters();
    }
}

/// Sends `data` to every client but `except`, at the pace of the fastest: it waits while
/// even the emptiest queue has no room for it. A client whose queue would then grow past
/// `--max-lag` is disconnected with a line naming it, so one client that never reads
/// cannot stall the others, and memory stays bounded.
async fn deliver(shared: &Shared, except: Option<u64>, data: Bytes) {
    let len = data.len();
    loop {
        let drained = shared.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        let emptiest = {
            let clients = shared.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            clients
                .iter()
                .filter(|(id, _)| Some(**id) != except)
                .map(|(_, o)| o.client.queued.load(Ordering::Acquire))
                .min()
        };
        match emptiest {
            Some(queued) if queued > 0 && queued + len > shared.max_lag => drained.await,
            _ => break,
        }
    }
    let mut clients = shared.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut behind = Vec::new();
    for (id, outbox) in clients.iter().filter(|(id, _)| Some(**id) != except) {
        let queued = outbox.client.queued.load(Ordering::Acquire);
        if queued > 0 && queued + len > shared.max_lag {
            behind.push(*id);
            continue;
        }
        outbox.client.queued.fetch_add(len, Ordering::AcqRel);
        if outbox.tx.send_nowait(data.clone()).is_err() {
            outbox.client.queued.fetch_sub(len, Ordering::AcqRel);
        }
    }
    for id in behind {
        if let Some(outbox) = clients.remove(&id) {
            outbox.client.kicked.notify_one();
        }
    }
}

/// `-k` stdio mode: stdin goes to every connected client; its end is every client's end
/// (a half-close, by --on-eof).
async fn broadcast_stdin(shared: Arc<Shared>) {
    let mut stdin = IoReceiveStream::new(tokio::io::stdin());
    let mut buf = bytes::BytesMut::new();
    loop {
        use streamtool::streams::ByteReceiveStream;
        // stdin is read only while someone is there to get it: what it holds is never
        // dropped for want of a client.
        loop {
            let joined = shared.drained.notified();
            tokio::pin!(joined);
            joined.as_mut().enable();
            if !shared.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty() {
                break;
            }
            joined.await;
        }
        buf.clear();
        match stdin.receive_into(&mut buf, streamtool::relay::CHUNK).await {
            Ok(_) => {
                let chunk = buf.split().freeze();
                deliver(&shared, None, chunk).await;
            }
            Err(_) => break,
        }
    }
    shared.stdin_done.store(true, Ordering::Release);
    // Dropping the queues' senders ends each client's stream after what it holds.
    shared.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
}
