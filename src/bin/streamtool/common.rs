//! What the commands share: the flag checks clap cannot express, the address family from
//! flags, how an opening error is reported, and the stdio session with progress and Ctrl-C.

use anyhow::{Context, Result};
use streamtool::relay::Meter;
use streamtool::streams::StreamError;
use streamtool::streams::socket::FamilyPreference;

use crate::cli::{NetArgs, TlsArgs};
use crate::exit_codes::{Interrupted, Usage};
use crate::ui::Ui;

use streamtool::job::stdio::{Session, SessionOptions};
use streamtool::stack::open::Net;

/// A library [`OpenError`](streamtool::stack::open::OpenError) as the binary reports it:
/// a failed handshake is marked [`HandshakeFailed`](crate::exit_codes::HandshakeFailed)
/// (exit 4) whatever its cause.
pub fn open_error(err: streamtool::stack::open::OpenError) -> anyhow::Error {
    use streamtool::stack::open::OpenError;
    match err {
        OpenError::Connect(err) => err.into(),
        err @ OpenError::Proxy { .. } => err.into(),
        OpenError::Handshake { target, source } => {
            anyhow::Error::new(source).context(crate::exit_codes::HandshakeFailed(target))
        }
        OpenError::Starttls { target, protocol, source } => anyhow::Error::new(source)
            .context(crate::exit_codes::HandshakeFailed(format!("STARTTLS ({protocol}) with {target}"))),
    }
}

pub fn family(net: &NetArgs) -> FamilyPreference {
    FamilyPreference::from_flags(net.ipv4, net.ipv6)
}

/// Relays stdin to the peer and the peer to stdout ([`streamtool::job::stdio`]), with
/// progress when asked; Ctrl-C stops it (exit 130), and so does the idle limit (exit 6,
/// naming the peer).
pub async fn stdio_session(
    net: Net,
    options: SessionOptions,
    progress: bool,
    ui: &Ui,
    peer: &str,
) -> Result<Session> {
    let (up, down) = (Meter::default(), Meter::default());
    let progress = progress.then(|| {
        crate::progress::Progress::start(
            [format!("stdin -> {peer}"), format!("{peer} -> stdout")],
            [up.clone(), down.clone()],
        )
    });
    // One stream for the whole session: a fresh `ctrl_c()` would miss a SIGINT that
    // arrives at the wrong moment.
    let mut interrupt = streamtool::platform::int_signal().context("cannot watch SIGINT")?;
    let stop = async {
        interrupt.recv().await;
    };
    let result = streamtool::job::stdio::run(net, &options, [&up, &down], ui, peer, stop).await;
    if let Some(progress) = progress {
        progress.finish();
    }
    result.map_err(|stopped| match stopped {
        streamtool::job::stdio::Stopped::Idle(limit) => {
            anyhow::Error::new(StreamError::Timeout { phase: streamtool::streams::Phase::Idle, after: limit })
                .context(format!("no data moved to or from {peer}"))
        }
        streamtool::job::stdio::Stopped::Stop => Interrupted.into(),
    })
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
