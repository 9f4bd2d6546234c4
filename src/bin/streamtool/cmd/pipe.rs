//! `streamtool pipe A B`: relay between two endpoints, with framing, re-encoding and TLS
//! per endpoint; a listening endpoint with `fork` serves each connection with a fresh
//! instance of the other endpoint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use streamtool::endpoint::Endpoint;
use streamtool::job::pipe::{
    End, EndError, RelayError, RelayOptions, announce, bind, listener_tls, relay_unless_idle,
};
use streamtool::proxy_protocol::{AcceptProxy, Origin};
use streamtool::relay::Meter;
use streamtool::server::{ConnectionContext, ServeOptions, serve};
use streamtool::shutdown::{Ended, Signals};
use streamtool::stack::shaping;
use streamtool::streams::listener::Connection;

use crate::cli::PipeArgs;
use crate::exit_codes::{Hint, Interrupted};
use crate::progress::Progress;
use crate::ui::Ui;

pub async fn run(args: Box<PipeArgs>, ui: Ui) -> Result<()> {
    let (a, b) = streamtool::job::pipe::endpoints(&args.a, &args.b, args.fork, args.max_conns, &ui)
        .map_err(end_error)?;
    if streamtool::job::datagram::pipe::runs_here(&a, &b) {
        let idle = streamtool::job::pipe::idle_limit(args.idle_timeout, &a, &b);
        let run =
            streamtool::job::datagram::pipe::run(&a, &b, idle, (args.max_conns, args.grace), Arc::new(ui));
        return if run.await.map_err(end_error)? { Err(Interrupted.into()) } else { Ok(()) };
    }
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

/// Without fork: listening endpoints accept one connection, A first, then the relay.
/// Ctrl-C stops at once (exit 130); a forking pipe instead shuts down gracefully. SIGTERM
/// (a service manager stopping us) ends the wait for the endpoints at once, and gives a
/// running relay `grace` to finish, as serve does its session; either way the exit is 0
/// and the socket file of a unix-listen endpoint is removed.
async fn relay_once(shared: &PipeShared, grace: Duration) -> Result<()> {
    let mut signals = Signals::new()?;
    let both = async {
        let opened_a = open(&shared.a, None, &shared.ui).await?;
        let opened_b = open(&shared.b, opened_a.origin.as_ref(), &shared.ui).await?;
        Ok::<_, anyhow::Error>((opened_a, opened_b))
    };
    let (opened_a, opened_b) = tokio::select! {
        opened = both => opened?,
        _ = signals.int.recv() => return Err(Interrupted.into()),
        _ = signals.term.recv() => {
            tracing::info!("SIGTERM: stopping before the relay started");
            return Ok(());
        }
    };
    match signals.run_with_grace(relay_until_idle(opened_a, opened_b, shared, true), grace, "relay").await {
        Ended::Done(result) => result,
        Ended::GraceOver => Ok(()),
        Ended::Interrupted => Err(Interrupted.into()),
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
    let signals = Signals::new()?;
    let listener = bind(&listening).await?;
    // The certificate and key are read (and the banner printed) before the listening line.
    let tls = listener_tls(&listening, &listener, &shared.ui).map_err(end_error)?;
    announce(&listener, &shared.ui);
    let stop = signals.watch();
    let options =
        ServeOptions { max_connections: max_conns, grace, cut_grace_short: Some(stop.cut_short.clone()) };
    let tls = tls.map(Arc::new);
    let (proxy, on_eof) = (AcceptProxy::of(&listening.options).map(Arc::new), listening.options.on_eof);
    serve(listener, options, stop.shutdown.clone(), move |raw: Connection, context: ConnectionContext| {
        let shared = Arc::clone(&shared);
        let (tls, proxy) = (tls.clone(), proxy.clone());
        async move {
            let peer = context.peer.to_string();
            let accepted =
                End::accept_connection(raw, &context.peer, tls.as_deref(), proxy.as_deref(), &shared.ui);
            let accepted = match accepted.await {
                Ok(Some(opened)) => opened.with_on_eof(on_eof),
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(%peer, "{}", crate::one_line(&err.into()));
                    return;
                }
            };
            let other = if other_is_a { &shared.a } else { &shared.b };
            // With accept-proxy, the client its header named.
            let peer = accepted.name.clone();
            let fresh = match open(other, accepted.origin.as_ref(), &shared.ui).await {
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
    if stop.interrupted() { Err(Interrupted.into()) } else { Ok(()) }
}

/// Opens one endpoint ([`End::open_for`]: a PROXY header names `origin`'s client).
async fn open(endpoint: &Endpoint, origin: Option<&Origin>, ui: &Ui) -> Result<End> {
    End::open_for(endpoint, origin, ui).await.map_err(end_error)
}

/// Why an endpoint could not be opened, as the binary reports it.
fn end_error(err: EndError) -> anyhow::Error {
    use streamtool::job::checks::CheckError;
    let hint = err.hint();
    let error: anyhow::Error = match err {
        EndError::Stream(err) | EndError::NoSuchFile(_, err) => err.into(),
        EndError::Open(err) => crate::common::open_error(err),
        EndError::Options(err) => err.into(),
        EndError::Check(CheckError::Refused(why)) => crate::exit_codes::CheckFailed(why).into(),
        EndError::Check(CheckError::KnownHosts(err)) => err.into(),
        EndError::Replay(why) => anyhow::anyhow!(why),
        EndError::Tap(err) => err.into(),
    };
    match hint {
        Some(hint) => error.context(Hint(hint)),
        None => error,
    }
}

/// The relay under the relay's idle limit ([`relay_unless_idle`]: exit 6 naming both
/// endpoints when nothing moved for that long), with progress when asked.
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
    let relayed = relay_unless_idle(a, b, &options, &shared.ui, shared.idle).await;
    if let Some(progress) = progress {
        progress.finish();
    }
    relayed.map_err(|err| match err {
        RelayError::Direction { what, source } => anyhow::Error::new(source).context(what),
        other => other.into(),
    })
}
