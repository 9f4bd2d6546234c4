//! `serve`'s job on each connection, by mode: echo, discard, a command (`exec`), the
//! stdio broadcast of `-k` or the broker ([`broker`](super::broker)). [`connection`] is
//! one connection of a `-k` server (its TLS handshake, then [`handle`]); a server without
//! `-k` takes its client from [`crate::server::accept_first`] and runs [`handle`] itself
//! (or, in stdio mode, the binary's stdio session).

use std::fmt::Display;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Discard;
use super::broker::{BrokerSink, Client, Hub, ResetIf, SharedStdout, broadcast_stdin, stop_when_stdout_gone};
use super::ends::peer_left;
use super::exec::run_child;
use crate::endpoint::EndpointOptions;
use crate::event::{Close, Event, Report};
use crate::relay::{Activity, Flow, FlowEnd, Meter, OnEof, PairRule, Shaping, forward_metered, run_pair};
use crate::server::{
    ConnectionContext, ServeOptions, ServeSummary, ServerTls, report_failed_handshake, report_failed_proxy,
    report_handshake, serve,
};
use crate::stack::open::{Opened, PlainSocket};
use crate::stack::shaping;
use crate::streams::listener::{Connection, SocketListener};
use crate::streams::{
    AsyncResource, ChildStream, IoReceiveStream, IoSendStream, ObjectByteReceiveStream, Phase, StreamError,
};

/// Any bidirectional transport (a plain socket, a TLS stream), boxed once per connection.
pub use crate::stack::open::Io as Transport;

pub(crate) type NetRx = IoReceiveStream<tokio::io::ReadHalf<Box<dyn Transport>>>;
pub(crate) type NetTx = IoSendStream<tokio::io::WriteHalf<Box<dyn Transport>>>;

/// What `serve` does with each connection.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Relay stdin and stdout (with `-k`: stdin to every client, every client to stdout).
    Stdio,
    /// Send back what the client sends.
    Echo,
    /// Run this command (program and arguments) per connection.
    Exec(Vec<String>),
    /// Run this shell command per connection.
    Shell(String),
    /// Send what each client sends to every other client.
    Broker,
    /// Read and drop what the client sends.
    Discard,
}

/// How a server's connections are served.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The job.
    pub mode: Mode,
    /// The shaping of what a client sends (framing, decoding).
    pub inbound: Shaping,
    /// The shaping of what goes to a client.
    pub outbound: Shaping,
    /// A connection that moves no byte for this long is closed (`--idle-timeout`).
    pub idle_timeout: Option<Duration>,
    /// Many clients (`-k` or `--broker`): a command's failure is only logged.
    pub keep_open: bool,
    /// What the end of our input does to a client's connection (`--on-eof`).
    pub on_eof: OnEof,
    /// How far a client may fall behind the others before it is disconnected
    /// (`--max-lag`, in bytes).
    pub max_lag: usize,
    /// Each connection starts with a PROXY header from a trusted proxy (`--accept-proxy`).
    pub accept_proxy: Option<crate::proxy_protocol::AcceptProxy>,
}

impl Settings {
    /// The settings of a server whose connections are shaped by `options` (the other end
    /// being our stdio, which takes the defaults), ending at our end of input as
    /// `options.on_eof` says (a half-close by default).
    pub fn new(
        mode: Mode,
        options: &EndpointOptions,
        keep_open: bool,
        idle_timeout: Option<Duration>,
        max_lag: usize,
    ) -> Self {
        let stdio = EndpointOptions::default();
        Settings {
            mode,
            inbound: shaping(options, &stdio),
            outbound: shaping(&stdio, options),
            idle_timeout,
            keep_open,
            on_eof: options.on_eof.unwrap_or(OnEof::HalfClose),
            max_lag,
            accept_proxy: crate::proxy_protocol::AcceptProxy::of(options),
        }
    }
}

/// Everything a connection's job needs, shared by all connections of one server.
pub struct Shared {
    pub(super) settings: Settings,
    pub(super) report: Arc<dyn Report>,
    hub: Arc<Hub>,
    /// Bytes from all clients, and to all clients (`--progress`).
    pub(super) received: Meter,
    pub(super) sent: Meter,
    /// Why the last command failed, if it did (without -k, serve exits 1 with it).
    pub(super) command_failed: Mutex<Option<String>>,
}

impl Shared {
    /// A server's shared state; events and notices go to `report`.
    pub fn new(settings: Settings, report: Arc<dyn Report>) -> Arc<Self> {
        Arc::new(Shared {
            hub: Arc::new(Hub::new(settings.max_lag)),
            settings,
            report,
            received: Meter::default(),
            sent: Meter::default(),
            command_failed: Mutex::new(None),
        })
    }

    /// How connections are served.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the clients share (the broadcast, the broker, stdout).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Bytes received from all clients, and sent to all clients.
    pub fn meters(&self) -> [Meter; 2] {
        [self.received.clone(), self.sent.clone()]
    }

    /// Why the last `--exec`/`--sh-exec` command failed (failing to start, or exiting with
    /// a failure status after a clean relay), if it did; taken.
    pub fn take_command_failure(&self) -> Option<String> {
        self.command_failed.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// How a connection ended, when not cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// No byte moved for the idle limit.
    #[error("no data moved to or from {peer}")]
    Idle {
        /// The client.
        peer: String,
        /// The timeout ([`Phase::Idle`]).
        source: StreamError,
    },
    /// The server disconnected a client that fell too far behind (`--max-lag`).
    #[error("{peer}: {why}")]
    Kicked {
        /// The client.
        peer: String,
        /// Why, in words.
        why: String,
    },
    /// The command of the only client failed to start, or exited with a failure status
    /// after a clean relay (why, in words).
    #[error("{0}")]
    Command(String),
    /// A direction failed (other than a peer that left after a complete exchange).
    #[error("the connection with {peer} failed")]
    Failed {
        /// The client.
        peer: String,
        /// The first direction's error.
        source: StreamError,
    },
}

pub use super::report_direction;

/// One connection of a `-k` server, in its own task: reported (`accept`), its TLS
/// handshake run with `tls` (a failure is logged and reported, and ends it), then
/// [`handle`]d; an error is logged. It ends at once, dropped, when stdout's reader is
/// gone (the socket then resets, in stdio mode), and with a `close` event when the
/// server's grace period runs out. (A function returning its future, as
/// the mode's job is, so that its arguments are not stored twice in it.)
#[allow(clippy::manual_async_fn)]
pub fn connection(
    raw: Connection,
    context: ConnectionContext,
    tls: Option<ServerTls>,
    shared: Arc<Shared>,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let mut raw = raw;
        // With --accept-proxy, the client is the one the PROXY header names (read first, in
        // this task, within its limit; a refused one ends the connection).
        let proxied = match &shared.settings.accept_proxy {
            Some(accept) => {
                let read = tokio::select! {
                    read = Box::pin(accept.accept(&mut raw, &context.peer)) => read,
                    () = context.closing.cancelled() => return,
                };
                match read {
                    Ok(proxied) => Some((proxied.client, proxied.proxy)),
                    Err(reason) => return report_failed_proxy(&*shared.report, &context.peer, &reason),
                }
            }
            None => None,
        };
        // Formatted only where it is written: a log line or an event.
        let peer = proxied.as_ref().map_or(&context.peer, |(client, _)| client);
        let via = proxied.as_ref().map(|(_, proxy)| proxy);
        shared.report.emit(|| Event::Accept { peer: peer.to_string(), proxy: via.map(ToString::to_string) });
        let stdout_gone = shared.hub.stdout_gone();
        // Kept to reset the connection if the server stops because stdout is gone (only the
        // stdio mode writes clients' data there).
        let _reset =
            matches!(shared.settings.mode, Mode::Stdio).then(|| ResetIf::new(&raw, stdout_gone.clone()));
        let mut client = Vec::new();
        let io: Box<dyn Transport> = match tls {
            // Boxed: the handshake's state would otherwise stay part of every connection's
            // future, plain or TLS, for its whole life.
            Some(tls) => match Box::pin(tls.accept(raw)).await {
                Ok(tls) => {
                    report_handshake(&tls, &*shared.report, peer);
                    client = client_env(&tls.peer_certificates());
                    // A failed TLS connection is dropped without close_notify: the client can tell.
                    crate::stack::open::tls_io(tls)
                }
                Err(reason) => return report_failed_handshake(&*shared.report, peer, &reason),
            },
            None => Box::new(raw),
        };
        tokio::select! {
            // First: a connection is dropped (and reset) the moment stdout is gone, before its
            // relay can end it cleanly.
            biased;
            () = stdout_gone.cancelled() => {}
            result = handle(io, peer, &client, &shared) => {
                if let Err(err) = result {
                    tracing::warn!(%peer, "{}", crate::words::one_line(&err));
                }
            }
            () = context.closing.cancelled() => shared.report.emit(|| Close::served(peer, "server shutdown")),
        }
    }
}

/// Serves clients with `listener` until `shutdown` fires ([`crate::server::serve`],
/// each in a [`connection`]), with the broadcast of stdin in stdio mode and, when
/// stdout's reader is gone, the stop of [`stop_when_stdout_gone`] (which cancels
/// `shutdown`, then cuts the grace period short).
pub async fn serve_clients(
    listener: SocketListener,
    tls: Option<ServerTls>,
    mut options: ServeOptions,
    shutdown: CancellationToken,
    shared: Arc<Shared>,
) -> ServeSummary {
    if matches!(shared.settings.mode, Mode::Stdio) {
        tokio::spawn(broadcast_stdin(Arc::clone(&shared.hub)));
    }
    let cut_short = options.cut_grace_short.get_or_insert_with(CancellationToken::new).clone();
    let stdout_gone = shared.hub.stdout_gone().clone();
    tokio::spawn(stop_when_stdout_gone(stdout_gone, shutdown.clone(), cut_short));
    serve(listener, options, shutdown, move |raw, context| {
        connection(raw, context, tls.clone(), Arc::clone(&shared))
    })
    .await
}

/// The only client of a server without `-k` ([`crate::server::accept_first`]), in any
/// mode but stdio: [`handle`], then the command's failure, if any (one client, one
/// command: its failure is the server's).
///
/// # Errors
/// [`handle`]'s first (a broken connection says more than a killed command's status),
/// else [`ConnectionError::Command`].
pub async fn serve_only(opened: Opened, peer: &str, shared: &Arc<Shared>) -> Result<(), ConnectionError> {
    let mut client = Vec::new();
    let io: Box<dyn Transport> = match opened {
        Opened::Plain(PlainSocket::Tcp(s)) => Box::new(s),
        Opened::Plain(PlainSocket::Unix(s)) => Box::new(s),
        Opened::Tls(tls) => {
            client = client_env(&tls.peer_certificates());
            crate::stack::open::tls_io(*tls)
        }
        Opened::Observed(connection) => connection,
    };
    handle(io, peer, &client, shared).await?;
    shared.take_command_failure().map_or(Ok(()), |why| Err(ConnectionError::Command(why)))
}

/// One connection, per mode: the job, then a `close` event and a log line. Returns how
/// it ended: `Ok` for a clean end (a peer that left after a complete exchange, a `-z`
/// probe or a health check, is one), the error otherwise (a one-client serve exits with
/// it; with -k it is logged).
///
/// # Errors
/// [`ConnectionError`]: the idle limit, a client disconnected for `--max-lag`, a failed
/// direction.
pub async fn handle(
    io: Box<dyn Transport>,
    peer: &(impl Display + Sync + ?Sized),
    client: &[(&'static str, String)],
    shared: &Arc<Shared>,
) -> Result<(), ConnectionError> {
    let (net_rx, net_tx) = tokio::io::split(io);
    let (net_rx, mut net_tx) = (IoReceiveStream::new(net_rx), IoSendStream::new(net_tx));
    let activity = Activity::default();
    let ended = serve_connection(net_rx, &mut net_tx, (peer, client), shared, &activity).await;
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
            shared.report.emit(|| Close::served(peer, "idle timeout"));
            let source = StreamError::Timeout { phase: Phase::Idle, after: limit };
            return Err(ConnectionError::Idle { peer: peer.to_string(), source });
        }
        Ended::Kicked(why) => {
            tracing::warn!(%peer, "{why}");
            shared.report.emit(|| Close::served(peer, why.clone()));
            return Err(ConnectionError::Kicked { peer: peer.to_string(), why });
        }
    };
    closed(flows, peer, &*shared.report)
}

/// The `close` event and log line of a connection whose directions ended, and its error.
fn closed(
    flows: Vec<Flow>,
    peer: &(impl Display + ?Sized),
    report: &dyn Report,
) -> Result<(), ConnectionError> {
    let bytes_in: u64 = flows.iter().map(|f| f.bytes_in).sum();
    // Built only for a log line or an event that is on.
    let reasons = || flows.iter().map(Flow::reason).collect::<Vec<_>>().join("; ");
    report.emit(|| Close::served(peer, reasons()));
    // A peer that left after a complete exchange (a `-z` probe, a health check) is an
    // ordinary end: no warning, no failure. Warnings are for data lost or refused.
    let failed = !flows.iter().all(|f| f.error().is_none() || peer_left(f));
    if !failed {
        tracing::info!(%peer, bytes_in, reason = %reasons(), "closed");
    }
    match flows.into_iter().filter(|f| !peer_left(f)).find_map(|f| match f.end {
        FlowEnd::Failed(_, err) => Some(err),
        FlowEnd::Eof | FlowEnd::Abandoned => None,
    }) {
        Some(source) => Err(ConnectionError::Failed { peer: peer.to_string(), source }),
        None => Ok(()),
    }
}

/// How a connection's job ended.
enum Ended {
    /// Each direction's flow.
    Flows(Vec<Flow>),
    /// The idle timeout expired.
    Idle(Duration),
    /// Disconnected by the server (a client that fell too far behind).
    Kicked(String),
}

/// Runs the mode's job on one connection, under the idle limit and, for a client of the
/// broadcast or the broker, `--max-lag`.
async fn serve_connection(
    net_rx: NetRx,
    net_tx: &mut NetTx,
    (peer, client_env): (&(impl Display + Sync + ?Sized), &[(&'static str, String)]),
    shared: &Arc<Shared>,
    activity: &Activity,
) -> Ended {
    // Both pinned where they are made: a future moved into select! is stored twice, and
    // every idle connection holds this one.
    let idle = std::pin::pin!(async {
        match shared.settings.idle_timeout {
            Some(limit) => {
                activity.idle_for(limit).await;
                limit
            }
            None => std::future::pending().await,
        }
    });
    // A client of the broadcast or the broker: its queue's count and the signal that
    // disconnects it (one allocation, made only in those modes).
    let client =
        matches!(shared.settings.mode, Mode::Stdio | Mode::Broker).then(|| Arc::new(Client::default()));
    let work =
        std::pin::pin!(run_mode(net_rx, net_tx, (peer, client_env), shared, activity, client.as_ref()));
    tokio::select! {
        flows = work => Ended::Flows(flows),
        limit = idle => Ended::Idle(limit),
        () = async { client.as_ref().expect("checked in the guard").kicked.notified().await }, if client.is_some() => Ended::Kicked(format!(
            "fell more than {} behind the others; disconnected (--max-lag)",
            crate::values::format_size(shared.hub.max_lag() as u64)
        )),
    }
}

/// The mode's job; each direction's flow. (A function returning its future, not an
/// `async fn`: the arguments of an `async fn` are stored twice in its future, and idle
/// connections hold this one.)
#[allow(clippy::manual_async_fn)]
fn run_mode(
    net_rx: NetRx,
    net_tx: &mut NetTx,
    (peer, client_env): (&(impl Display + Sync + ?Sized), &[(&'static str, String)]),
    shared: &Arc<Shared>,
    activity: &Activity,
    client: Option<&Arc<Client>>,
) -> impl Future<Output = Vec<Flow>> {
    async move {
        let settings = &shared.settings;
        let half_close = settings.on_eof == OnEof::HalfClose;
        let (inbound, received) = (&settings.inbound, &shared.received);
        match &settings.mode {
            Mode::Echo => {
                let echo = Shaping { encode: inbound.decode, ..inbound.clone() };
                let flow = forward_metered(net_rx, net_tx, &echo, activity, half_close, received).await;
                // What is echoed was received and sent.
                shared.sent.add(flow.bytes_out);
                report_direction(&*shared.report, peer, "echo", &flow);
                vec![flow]
            }
            Mode::Discard => {
                let flow = forward_metered(net_rx, Discard, inbound, activity, false, received).await;
                report_direction(&*shared.report, peer, "peer->discard", &flow);
                vec![flow]
            }
            // Boxed, as the TLS handshake is: a future is as large as its largest state,
            // and this one is three times the stdio relay's, which idle connections hold.
            Mode::Exec(argv) => {
                let child = ChildStream::spawn_with(&argv[0], &argv[1..], &peer_env(peer, client_env));
                Box::pin(run_child(child, net_rx, net_tx, shared, activity, peer)).await
            }
            Mode::Shell(cmd) => {
                let child = ChildStream::shell_with(cmd, &peer_env(peer, client_env));
                Box::pin(run_child(child, net_rx, net_tx, shared, activity, peer)).await
            }
            Mode::Stdio | Mode::Broker => {
                // A client of the broadcast or the broker: what is queued for it goes to
                // it, shaped for it (encoding, --crlf) as in the other modes; what it sends
                // goes to stdout or to the other clients.
                let (id, inbox) = shared.hub.join(Arc::clone(client.expect("made for this mode")));
                // Pinned where they are made, and handed to run_pair by reference: a
                // future moved into another is stored twice, and idle connections hold
                // these (`bench/run.py --only idle`: 6.1 KiB per connection moved, 3.7
                // pinned).
                let to_peer = std::pin::pin!(forward_metered(
                    ObjectByteReceiveStream::new(inbox),
                    &mut *net_tx,
                    &settings.outbound,
                    activity,
                    half_close,
                    &shared.sent,
                ));
                let from_peer = std::pin::pin!(async {
                    let flow = if matches!(settings.mode, Mode::Broker) {
                        let sink = BrokerSink { id, hub: Arc::clone(&shared.hub) };
                        forward_metered(net_rx, sink, inbound, activity, false, received).await
                    } else {
                        let sink = SharedStdout(Arc::clone(&shared.hub));
                        forward_metered(net_rx, sink, inbound, activity, false, received).await
                    };
                    // A shared stream has no end of its own to wait for: a client that
                    // ended its side gets what is already queued for it, then our end.
                    // Otherwise every client that left (a health check, `nc` closing)
                    // would hold its connection, and its --max-conns slot, until the next
                    // write to it.
                    shared.hub.leave(id);
                    flow
                });
                let rules = [
                    PairRule {
                        ends_relay: settings.on_eof == OnEof::Close,
                        wait_for_cause: true,
                        linger: None,
                    },
                    PairRule::default(),
                ];
                let (flows, _) =
                    run_pair(to_peer, from_peer, rules, [&shared.sent, &shared.received], |_| {}).await;
                shared.hub.leave(id);
                hub_end(flows, peer, &*shared.report)
            }
        }
    }
}

/// The environment of a connection's command: `STREAMTOOL_PEER` (the client's address as
/// events show it; with `--accept-proxy`, the client the PROXY header names), and for an
/// IP client `STREAMTOOL_PEER_ADDR` and `STREAMTOOL_PEER_PORT`; `client`: the TLS
/// client certificate's ([`client_env`]).
pub(crate) fn peer_env(
    peer: &(impl Display + ?Sized),
    client: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let text = peer.to_string();
    let mut env = client.to_vec();
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        env.push(("STREAMTOOL_PEER_ADDR", addr.ip().to_string()));
        env.push(("STREAMTOOL_PEER_PORT", addr.port().to_string()));
    }
    env.push(("STREAMTOOL_PEER", text));
    env
}

/// The environment naming a TLS client's certificate (leaf first in `chain`; nothing
/// without one): `STREAMTOOL_CLIENT_SUBJECT`, `STREAMTOOL_CLIENT_CN`,
/// `STREAMTOOL_CLIENT_SANS` (comma-separated, `DNS:a,IP:127.0.0.1`),
/// `STREAMTOOL_CLIENT_SPKI` (its key pin, `sha256:…`).
fn client_env(chain: &[rustls_pki_types::CertificateDer<'static>]) -> Vec<(&'static str, String)> {
    chain
        .first()
        .and_then(|leaf| crate::streams::tls::ClientIdentity::of(leaf.as_ref()))
        .map(|id| id.env())
        .unwrap_or_default()
}

/// The flows of a client of the broadcast or the broker, its end reported.
fn hub_end([up, down]: [Option<Flow>; 2], peer: &(impl Display + ?Sized), report: &dyn Report) -> Vec<Flow> {
    let (up, down) = (up.unwrap_or_else(Flow::abandoned), down.unwrap_or_else(Flow::abandoned));
    report_direction(report, peer, "peer->out", &down);
    vec![up, down]
}
