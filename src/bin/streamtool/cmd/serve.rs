//! `streamtool serve`: listen, and relay stdio, echo, run a command, broker or discard
//! per connection. The jobs are the library's (`streamtool::job::serve`); this module
//! checks the flags, builds the settings and runs one client or many.

use std::sync::Arc;

use anyhow::{Context, Result};
use streamtool::endpoint::EndpointOptions;
use streamtool::event::{Close, Event};
use streamtool::job::serve::{Mode, Settings, Shared, serve_clients, serve_only};
use streamtool::server::{ServeOptions, ServedTls, ServerTls, ServerTlsError, accept_first_proxied};
use streamtool::shutdown::{Ended, Signals};
use streamtool::stack::Spelling;
use streamtool::stack::open::{Net, Opened};
use streamtool::streams::StreamError;
use streamtool::streams::listener::{Listener, SocketListener};

use crate::cli::ServeArgs;
use crate::common::{self, check_tls_flags, stdio_session};
use crate::exit_codes::{Interrupted, Usage};
use crate::ui::Ui;
use streamtool::job::stdio::SessionOptions;

pub async fn run(args: ServeArgs, ui: Ui) -> Result<()> {
    check_serve_flags(&args)?;
    let mode = mode(&args)?;
    let keep_open = args.keep_open || matches!(mode, Mode::Broker);
    if args.max_conns.is_some() && !keep_open {
        return Err(Usage("--max-conns needs -k (without it, serve serves one client)".into()).into());
    }
    if args.udp.udp {
        use streamtool::job::datagram::command as udp;
        let mut options = args.options();
        options.load_access()?;
        let served = udp::job(&mode, &options, args.udp.length_prefix)?;
        let limits = (keep_open, args.max_conns, args.grace);
        let family = common::family(&args.net);
        let interrupted = udp::serve(&args.addr, &options, served, limits, family, Arc::new(ui)).await?;
        return if interrupted { Err(Interrupted.into()) } else { Ok(()) };
    }
    let signals = Signals::new()?;
    let mut listener =
        args.addr.bind_with(common::family(&args.net), args.options().listen_options()).await?;
    let addresses: Vec<String> = listener.local_addresses().iter().map(|a| a.to_string()).collect();
    // Every file a flag names is read and checked (the key against the certificate, the
    // key log opened) before the banner and the listening line.
    let mut options = args.options();
    options.load_access()?;
    options.open_recorder(args.tls.tls, &ui)?;
    let tls = if args.tls.tls { Some(served_tls(&options, &args, &listener, &ui)?) } else { None };
    // A background job (`serve ... &` at a prompt) must not read the terminal: it would be
    // stopped (SIGTTIN) and never answer.
    if matches!(mode, Mode::Stdio) {
        streamtool::stdio_fd::detach_background_stdin(&ui)
            .context("cannot replace stdin, a background job's terminal, with /dev/null")?;
    }
    options.prepare_listener(&mut listener);
    tracing::info!("listening on {}", addresses.join(", "));
    ui.notice(&format!("listening on {}", addresses.join(", ")));
    ui.emit(|| Event::Listen {
        addresses,
        tls: Some(tls.is_some()),
        cert_sha256: tls.as_ref().map(|tls| tls.cert_pin.to_string()),
        key_sha256: tls.as_ref().map(|tls| tls.key_pin.as_ref().map(ToString::to_string)),
    });
    let tls = tls.map(|served| served.tls);
    let settings = Settings::new(mode, &options, keep_open, args.net.idle_timeout, args.max_lag);
    let shared = Shared::new(settings, Arc::new(ui.clone()));
    let progress = crate::progress::enabled(args.progress);
    if !keep_open {
        return serve_one(listener, tls, args.grace, signals, &shared, &ui, progress).await;
    }
    serve_many(listener, tls, &args, signals, shared, &ui, progress).await
}

/// With -k: every client, each in its own task, until SIGINT or SIGTERM (a second one
/// closes open connections at once) or, in stdio mode, until stdout's reader is gone.
async fn serve_many(
    listener: SocketListener,
    tls: Option<ServerTls>,
    args: &ServeArgs,
    signals: Signals,
    shared: Arc<Shared>,
    ui: &Ui,
    progress: bool,
) -> Result<()> {
    let stop = signals.watch();
    let labels = ["clients -> server".to_string(), "server -> clients".to_string()];
    let progress = progress.then(|| crate::progress::Progress::start(labels, shared.meters()));
    let options = ServeOptions {
        max_connections: args.max_conns,
        grace: args.grace,
        cut_grace_short: Some(stop.cut_short.clone()),
    };
    let summary = serve_clients(listener, tls, options, stop.shutdown.clone(), shared).await;
    if let Some(progress) = progress {
        progress.finish();
    }
    ui.emit(|| Event::Stopped {
        accepted: summary.accepted as u64,
        rejected: summary.rejected as u64,
        cut_short: summary.cut_short as u64,
    });
    if stop.interrupted() { Err(Interrupted.into()) } else { Ok(()) }
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
        streamtool::platform::Feature::Shell.check().map_err(Usage)?;
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
    args.net.service.check("serve").map_err(Usage)?;
    let client_flags = [
        // Refused with or without --tls: the file would never be read.
        (
            args.tls.ca.is_some(),
            "--ca is a client option (the CAs a client trusts for its server) and serve never reads it: \
             to verify client certificates, use --tls --client-ca FILE; to serve TLS, --tls",
        ),
        (!args.tls.pin.is_empty(), "--pin is a client option; a server presents its certificate"),
        (
            args.tls.sni.is_some() || args.tls.no_sni,
            "--sni and --no-sni are client options; serve answers any name",
        ),
        (
            args.net.connect_timeout.is_some(),
            "-w/--connect-timeout is a client option; serve connects nowhere (--idle-timeout and \
             --handshake-timeout apply to its connections)",
        ),
    ];
    if let Some((_, why)) = client_flags.iter().find(|(given, _)| *given) {
        return Err(Usage(why.to_string()).into());
    }
    check_tls_flags(
        &args.tls,
        &[
            ("--client-ca", args.client_ca.is_some()),
            ("--require-client-cert", args.require_client_cert),
            ("--starttls", args.starttls.is_some()),
        ],
    )
}

/// Builds serve's TLS before the banner and the listening line (every file read, the key
/// checked against the certificate, the key log opened; a fresh certificate announced when
/// no --cert was given).
fn served_tls(
    options: &EndpointOptions,
    args: &ServeArgs,
    listener: &SocketListener,
    ui: &Ui,
) -> Result<ServedTls> {
    let target = match listener.tcp_port() {
        Some(port) => format!("localhost:{port}"),
        None => args.addr.to_string(),
    };
    ServerTls::from_options(options, Spelling::Flags, &target, ui).map_err(|err| match err {
        ServerTlsError::Options(err) => err.into(),
        ServerTlsError::Build(err) => err.into(),
    })
}

/// Without -k: the first client (the first whose handshake succeeds, with TLS) is relayed,
/// then the server exits, as `nc -l` does.
async fn serve_one(
    mut listener: SocketListener,
    tls: Option<ServerTls>,
    grace: std::time::Duration,
    signals: Signals,
    shared: &Arc<Shared>,
    ui: &Ui,
    progress: bool,
) -> Result<()> {
    let mut signals = signals;
    // Waiting for the first client: SIGINT exits 130, SIGTERM exits 0.
    let (opened, peer) = tokio::select! {
        first = accept_first_proxied(&mut listener, tls.as_ref(), shared.settings().accept_proxy.as_ref(), ui) => first?,
        _ = signals.term.recv() => return Ok(()),
        _ = signals.int.recv() => return Err(Interrupted.into()),
    };
    drop(listener);
    // tokio's SIGTERM handler stays installed once made, so SIGTERM is watched during the
    // session too, or it would be swallowed. As with -k: the connection gets the grace
    // period to finish, then it is closed and the exit is 0. SIGINT stops at once (130).
    match signals.run_with_grace(session_one(opened, peer, shared, ui, progress), grace, "connection").await {
        Ended::Done(result) => result,
        Ended::GraceOver => Ok(()),
        Ended::Interrupted => Err(Interrupted.into()),
    }
}

/// The single client's session: the stdio session (a plain socket can be spliced), or
/// the mode's job.
async fn session_one(
    opened: Opened,
    peer: String,
    shared: &Arc<Shared>,
    ui: &Ui,
    progress: bool,
) -> Result<()> {
    let settings = shared.settings();
    if !matches!(settings.mode, Mode::Stdio) {
        return Ok(serve_only(opened, &peer, shared).await?);
    }
    let net = Net::from(opened);
    let options = SessionOptions {
        inbound: settings.inbound.clone(),
        outbound: settings.outbound.clone(),
        on_eof: settings.on_eof,
        keep_sending: false,
        send_only: false,
        recv_only: false,
        idle_timeout: settings.idle_timeout,
    };
    let session = match stdio_session(net, options, progress, ui, &peer).await {
        Ok(session) => session,
        Err(err) => {
            // The idle timeout (or Ctrl-C) ended it: a `close` event as in the other modes.
            let reason = if err.chain().any(StreamError::is_idle_timeout_in) {
                "idle timeout".to_string()
            } else {
                format!("{err:#}")
            };
            ui.emit(|| Close::served(&peer, reason));
            return Err(err);
        }
    };
    ui.emit(|| Close::served(&peer, "done"));
    Ok(session.result(&peer)?)
}
