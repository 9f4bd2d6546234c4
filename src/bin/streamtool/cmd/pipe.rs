//! `streamtool pipe A B`: relay between two endpoints, with framing, re-encoding and TLS
//! per endpoint; a listening endpoint with `fork` serves each connection with a fresh
//! instance of the other endpoint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use streamtool::endpoint::{Endpoint, EndpointKind, EndpointOptions};
use streamtool::event::{Close, Event};
use streamtool::job::pipe::{End, EndError, RelayError, RelayOptions, relay};
use streamtool::relay::{Meter, OnEof};
use streamtool::server::{
    ConnectionContext, ServeOptions, ServerTls, accept_first, report_failed_handshake, report_handshake,
    serve,
};
use streamtool::stack::open::{Opened, PlainSocket};
use streamtool::stack::{Spelling, shaping};
use streamtool::streams::Phase;
use streamtool::streams::listener::{Connection, Listener, SocketListener};
use streamtool::streams::tls::{ClientOptions, ServerOptions};
use tokio_util::sync::CancellationToken;

use crate::cli::PipeArgs;
use crate::exit_codes::{Hint, Interrupted, Usage};
use crate::progress::Progress;
use crate::ui::Ui;

pub async fn run(args: Box<PipeArgs>, ui: Ui) -> Result<()> {
    let (a, b) = endpoints(&args)?;
    let shared = Arc::new(PipeShared {
        idle: streamtool::job::pipe::idle_limit(args.idle_timeout, &a, &b),
        a,
        b,
        ui,
        progress: crate::progress::enabled(args.progress),
        verbose: args.verbose_summary,
    });
    if shared.a.options.fork || shared.b.options.fork {
        let (listening, other_is_a) =
            if shared.a.options.fork { (shared.a.clone(), false) } else { (shared.b.clone(), true) };
        return serve_fork(listening, other_is_a, shared, args.max_conns, args.grace).await;
    }
    relay_once(&shared, args.grace).await
}

/// The two endpoints, `-k` given to the listening one, their combinations checked, and
/// every file their options name read before anything listens (a tls: endpoint's ca=,
/// cert= and key= would otherwise be read only when a client arrives).
fn endpoints(args: &PipeArgs) -> Result<(Endpoint, Endpoint)> {
    let (mut a, mut b) = (args.a.clone(), args.b.clone());
    if args.fork {
        match (a.is_listener(), b.is_listener()) {
            (true, _) => a.options.fork = true,
            (false, true) => b.options.fork = true,
            (false, false) => {
                let message = "-k/--fork needs a listening endpoint (tcp-listen, tls-listen, unix-listen)";
                return Err(Usage(message.into()).into());
            }
        }
    }
    if a.options.fork && b.options.fork {
        return Err(Usage("only one endpoint can fork".into()).into());
    }
    if args.max_conns.is_some() && !(a.options.fork || b.options.fork) {
        let message = "--max-conns needs fork (-k, or the fork option of a listening endpoint)";
        return Err(Usage(message.into()).into());
    }
    for endpoint in [&a, &b] {
        if matches!(endpoint.kind, EndpointKind::Tls(..)) {
            // (insecure's warning is printed once, when the endpoint opens)
            let options = EndpointOptions { insecure: false, ..endpoint.options.clone() };
            client_options(&options)?.build()?;
        }
    }
    Ok((a, b))
}

/// Without fork: listening endpoints accept one connection, A first, then the relay.
/// Ctrl-C stops at once (exit 130); a forking pipe instead shuts down gracefully. SIGTERM
/// (a service manager stopping us) ends the wait for the endpoints at once, and gives a
/// running relay `grace` to finish, as serve does its session; either way the exit is 0
/// and the socket file of a unix-listen endpoint is removed.
async fn relay_once(shared: &PipeShared, grace: Duration) -> Result<()> {
    let signals = crate::common::Signals::new()?;
    let (mut term, mut int) = (signals.term, signals.int);
    let both = async {
        let opened_a = open(&shared.a, &shared.ui).await?;
        let opened_b = open(&shared.b, &shared.ui).await?;
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
    let relay = relay_until_idle(opened_a, opened_b, shared, true);
    tokio::pin!(relay);
    tokio::select! {
        result = &mut relay => result,
        _ = int.recv() => Err(Interrupted.into()),
        _ = term.recv() => {
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
    let o = &listening.options;
    let tls = tls.map(|config| {
        Arc::new(ServerTls { config, policy: o.ragged_eof_policy(), handshake_timeout: o.handshake_limit() })
    });
    serve(listener, options, shutdown, move |raw: Connection, context: ConnectionContext| {
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        async move {
            let peer = context.peer.to_string();
            shared.ui.emit(|| Event::Accept { peer: peer.clone(), proxy: None });
            let accepted = match accepted(raw, tls.as_deref(), &peer, &shared.ui).await {
                Ok(Some(mut opened)) => {
                    if let Some(on_eof) = listening.options.on_eof {
                        opened.on_eof = on_eof;
                    }
                    opened
                }
                Ok(None) => return,
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

/// A connection a listening endpoint accepted, as an endpoint: with TLS, its handshake
/// run and reported (a failed one reported as serve reports it, and `None`).
async fn accepted(raw: Connection, tls: Option<&ServerTls>, peer: &str, ui: &Ui) -> Result<Option<End>> {
    let opened = match tls {
        None => Opened::Plain(PlainSocket::from_connection(raw)?),
        Some(tls) => match tls.accept(raw).await {
            Ok(stream) => {
                report_handshake(&stream, ui, peer);
                Opened::Tls(Box::new(stream))
            }
            Err(reason) => {
                report_failed_handshake(ui, peer, &reason);
                return Ok(None);
            }
        },
    };
    Ok(Some(end_of(peer, opened)))
}

/// An accepted connection as an endpoint (a TLS server half-closes at the end of its input).
fn end_of(peer: &str, opened: Opened) -> End {
    match opened {
        Opened::Plain(socket) => End::socket(peer.to_string(), socket),
        Opened::Tls(tls) => End::split(peer.to_string(), *tls, OnEof::HalfClose),
    }
}

/// Opens one endpoint; a listening one accepts its first connection (the first whose TLS
/// handshake succeeds). Its `on-eof=` option overrides the kind's default.
async fn open(endpoint: &Endpoint, ui: &Ui) -> Result<End> {
    let mut opened = open_kind(endpoint, ui).await?;
    if let Some(on_eof) = endpoint.options.on_eof {
        opened.on_eof = on_eof;
    }
    Ok(opened)
}

async fn open_kind(endpoint: &Endpoint, ui: &Ui) -> Result<End> {
    let opened = match End::open_local(endpoint).await {
        Some(opened) => opened,
        None => match End::connect(endpoint, ui).await {
            Some(opened) => opened,
            None => return open_listening(endpoint, ui).await,
        },
    };
    opened.map_err(|err| match err {
        EndError::Stream(err) => err.into(),
        EndError::Open(err) => crate::common::open_error(err),
        EndError::Options(err) => err.into(),
        // Without create, append or truncate, file: reads; a user writing to a new file
        // (socat's CREATE:, websocat's writefile:) needs to know how to say so.
        EndError::NoSuchFile(err) => {
            let path = match &endpoint.kind {
                EndpointKind::File(path) => path.display().to_string(),
                _ => String::new(),
            };
            let hint = format!(
                "file:{path} reads an existing file; to write a new one, use file:{path},create (or append, truncate)"
            );
            anyhow::Error::new(err).context(Hint(hint))
        }
    })
}

/// A listening endpoint: bound, announced, and its first connection accepted.
async fn open_listening(endpoint: &Endpoint, ui: &Ui) -> Result<End> {
    let o = &endpoint.options;
    let mut listener = bind(endpoint).await?;
    let tls = match endpoint.kind {
        EndpointKind::TlsListen(_) => Some(server_options(o, &listener, ui)?.build()?),
        _ => None,
    };
    announce(&listener, ui);
    let tls = tls.map(|config| ServerTls {
        config,
        policy: o.ragged_eof_policy(),
        handshake_timeout: o.handshake_limit(),
    });
    // The first connection whose handshake succeeds; handshakes run side by side, so a
    // client that connects and stays silent does not hold up the next one.
    let (opened, peer) = accept_first(&mut listener, tls.as_ref(), ui).await?;
    Ok(end_of(&peer, opened))
}

/// The relay ([`streamtool::job::pipe::relay`]) under the relay's idle limit: with no
/// byte moving either way for that long, it ends with a timeout naming both endpoints
/// (exit 6). Progress is shown when asked.
async fn relay_until_idle(a: End, b: End, shared: &PipeShared, announce_waits: bool) -> Result<()> {
    let (a_name, b_name) = (a.name.clone(), b.name.clone());
    let (ab, ba) = (Meter::default(), Meter::default());
    let progress = shared.progress.then(|| {
        Progress::start(
            [format!("{a_name} -> {b_name}"), format!("{b_name} -> {a_name}")],
            [ab.clone(), ba.clone()],
        )
    });
    let options = RelayOptions {
        shapings: [
            shaping(&shared.a.options, &shared.b.options),
            shaping(&shared.b.options, &shared.a.options),
        ],
        meters: [&ab, &ba],
        announce_waits,
        verbose: shared.verbose,
    };
    let relayed =
        streamtool::relay::unless_idle(relay(a, b, &options, &shared.ui), shared.idle, [&ab, &ba]).await;
    if let Some(progress) = progress {
        progress.finish();
    }
    match relayed {
        Some(result) => result.map_err(|err| match err {
            RelayError::Direction { what, source } => anyhow::Error::new(source).context(what),
            command @ RelayError::Command { .. } => command.into(),
        }),
        None => {
            let limit = shared.idle.unwrap_or_default();
            shared.ui.emit(|| Close::relay(&a_name, &b_name, "idle timeout", None));
            Err(anyhow::Error::new(streamtool::streams::StreamError::Timeout {
                phase: Phase::Idle,
                after: limit,
            })
            .context(format!("no data moved between {a_name} and {b_name}")))
        }
    }
}
