//! `streamtool connect`: a client. stdin to the peer, the peer to stdout.

use std::time::Instant;

use anyhow::Result;
use streamtool::endpoint::{ConnectAddress, EndpointOptions};
use streamtool::event::{Close, Event};
use streamtool::job::checks::{self, CheckError, ClientChecks};
use streamtool::relay::OnEof;
use streamtool::stack::open::{self, Net, Opened, Target};
use streamtool::stack::tofu::{self, KnownHosts};

use crate::exit_codes::CheckFailed;
use streamtool::stack::{Spelling, shaping};
use streamtool::streams::tls::TlsStream;

use crate::cli::ConnectArgs;
use crate::common::{self, check_tls_flags, stdio_session};
use crate::exit_codes::Usage;
use crate::ui::Ui;
use streamtool::job::stdio::SessionOptions;

pub async fn run(args: ConnectArgs, ui: Ui, verbose: bool) -> Result<()> {
    check_flags(&args)?;
    if args.udp.udp {
        let (options, family) = (args.options(), common::family(&args.net));
        let udp = streamtool::job::datagram::command::connect(
            &args.addr,
            &options,
            args.udp.length_prefix,
            family,
            &ui,
        );
        return Ok(udp.await?);
    }
    let started = Instant::now();
    let (net, peer) = open_connection(&args, &ui).await?;
    if args.zero_io {
        return close_at_once(net, &peer, &ui).await;
    }
    let session =
        stdio_session(net, session_options(&args), crate::progress::enabled(args.progress), &ui, &peer)
            .await?;
    let (sent, received) = (session.sent, session.received);
    let elapsed = started.elapsed().as_secs_f64();
    let reason: Vec<String> =
        [&session.down, &session.up].into_iter().flatten().map(|f| f.reason()).collect();
    ui.emit(|| Close::client(&peer, reason.join("; "), sent, received, Some(elapsed)));
    if verbose {
        tracing::info!("{peer}: sent {sent} bytes, received {received} bytes in {elapsed:.3}s");
    }
    Ok(session.result(&peer)?)
}

/// Flag combinations clap cannot express.
fn check_flags(args: &ConnectArgs) -> Result<()> {
    args.net.service.check("connect").map_err(Usage)?;
    check_tls_flags(
        &args.tls,
        &[
            ("-k/--insecure", args.insecure),
            ("--show-cert", args.show_cert),
            ("--require", !args.require.is_empty()),
            ("--starttls", args.starttls.is_some()),
        ],
    )?;
    use streamtool::stack::starttls::Protocol;
    if args.ehlo.is_some() && !matches!(args.starttls, Some(Protocol::Smtp | Protocol::Lmtp)) {
        return Err(Usage("--ehlo needs --starttls smtp or --starttls lmtp".to_string()).into());
    }
    if args.insecure && (args.tls.ca.is_some() || !args.tls.pin.is_empty()) {
        let given = if args.tls.ca.is_some() { "--ca" } else { "--pin" };
        return Err(Usage(format!(
            "-k/--insecure skips verification, so {given} would do nothing: drop -k to verify with {given}"
        ))
        .into());
    }
    Ok(())
}

/// Connects (and with --tls, handshakes; every file a flag names is read first), and
/// names the peer by the address connected to.
async fn open_connection(args: &ConnectArgs, ui: &Ui) -> Result<(Net, String)> {
    let mut endpoint = args.options();
    endpoint.proxy = choose_proxy(args)?;
    endpoint.open_recorder(args.tls.tls, ui)?;
    let target = args.addr.to_string();
    let (stack_target, host) = match &args.addr {
        ConnectAddress::Tcp(host, port) => (Target::Tcp(host, *port), host.as_str()),
        // Over UNIX, the name to verify is --sni's, or localhost.
        ConnectAddress::Unix(path) => (Target::Unix(path), "localhost"),
    };
    let known_hosts = if args.tofu { Some(KnownHosts::for_user()?) } else { None };
    let tls = match args.tls.tls {
        true => {
            let mut options = endpoint.client_options(Spelling::Flags)?;
            if args.tofu {
                options = tofu::client_options(options);
            }
            Some((options.build()?, endpoint.verify_name(host).map_err(|e| Usage(format!("--sni: {e}")))?))
        }
        false => None,
    };
    let mut peer = target.clone();
    let connected = |address: Option<std::net::SocketAddr>| {
        if let Some(address) = address {
            peer = address.to_string();
            tracing::info!(%peer, "connected");
        }
        ui.emit(|| Event::Connect {
            target: target.clone(),
            peer: endpoint.proxy.is_none().then(|| peer.clone()),
            proxy: endpoint.proxy.as_ref().map(ToString::to_string),
        });
    };
    let opened = open::connect(stack_target, &target, &endpoint, common::family(&args.net), tls, connected)
        .await
        .map_err(common::open_error)?;
    let net = match opened {
        Opened::Tls(tls) => finish_tls(
            *tls,
            args,
            ui,
            &peer,
            known_hosts.as_ref().map(|k| (k, target.as_str(), Spelling::Flags)),
        )?,
        plain => Net::from(plain),
    };
    Ok((net, peer))
}

/// The proxy this connection goes through (`--proxy`, `--proxy-env`, `--no-proxy`;
/// [`streamtool::stack::proxy::select`]).
fn choose_proxy(args: &ConnectArgs) -> Result<Option<streamtool::stack::proxy::ProxySpec>> {
    let p = &args.proxy;
    if p.no_proxy.is_some() && p.proxy.is_none() && !p.proxy_env {
        return Err(Usage("--no-proxy needs --proxy or --proxy-env".into()).into());
    }
    let host = match &args.addr {
        ConnectAddress::Tcp(host, _) => host.as_str(),
        ConnectAddress::Unix(_) if p.proxy.is_some() => {
            return Err(Usage("--proxy applies to HOST:PORT targets, not unix:PATH".into()).into());
        }
        ConnectAddress::Unix(_) => return Ok(None),
    };
    let no_proxy = p.no_proxy.clone().unwrap_or_default();
    let chosen =
        streamtool::stack::proxy::select(p.proxy.as_deref(), p.proxy_env, args.tls.tls, &no_proxy, host);
    Ok(chosen.map_err(Usage)?.map(|(spec, _)| spec))
}

/// `-z`: close properly (FIN, and close_notify with TLS, so the peer sees a clean end).
async fn close_at_once(net: Net, peer: &str, ui: &Ui) -> Result<()> {
    tracing::info!("connected to {peer}");
    let mut io = net.into_boxed();
    if let Err(err) = tokio::io::AsyncWriteExt::shutdown(&mut io).await {
        tracing::debug!("closing: {err}");
    }
    ui.emit(|| Close::client(peer, "zero-io", 0, 0, None));
    Ok(())
}

/// How the session runs, from the flags. A TLS client keeps its side open by default:
/// servers built on OpenSSL (nginx, ncat, s_server) take a close_notify as the end of the
/// whole connection.
fn session_options(args: &ConnectArgs) -> SessionOptions {
    let on_eof = match (args.on_eof, args.no_shutdown) {
        (Some(on_eof), _) => on_eof,
        (None, true) => OnEof::KeepOpen,
        (None, false) if args.tls.tls => OnEof::KeepOpen,
        (None, false) => OnEof::HalfClose,
    };
    let (endpoint, stdio) = (args.options(), EndpointOptions::default());
    SessionOptions {
        inbound: shaping(&endpoint, &stdio),
        outbound: shaping(&stdio, &endpoint),
        on_eof,
        keep_sending: args.keep_sending,
        send_only: args.send_only,
        recv_only: args.recv_only,
        idle_timeout: args.net.idle_timeout,
    }
}

/// Reports a finished handshake, runs the checks ([`checks::after_handshake`]), and
/// boxes the stream.
fn finish_tls(
    tls: TlsStream<streamtool::streams::Connection>,
    args: &ConnectArgs,
    ui: &Ui,
    peer: &str,
    tofu: Option<(&KnownHosts, &str, Spelling)>,
) -> Result<Net> {
    let pinned = !args.tls.pin.is_empty();
    let verification = checks::verification(args.insecure, args.tofu, args.tls.ca.is_some(), pinned);
    let mut stderr = std::io::stderr();
    let show_cert = args.show_cert.then_some((verification, &mut stderr as &mut dyn std::io::Write));
    let checks = ClientChecks { tofu, show_cert, require: &args.require };
    match checks::after_handshake(&tls, checks, ui, peer) {
        Ok(()) => Ok(Net::from(Opened::Tls(Box::new(tls)))),
        Err(CheckError::Refused(why)) => Err(CheckFailed(why).into()),
        Err(CheckError::KnownHosts(err)) => Err(err.into()),
    }
}
