//! `connect -u` and `serve -u`, composed from the endpoint's options: the binary checks
//! nothing itself (clap refuses the flags that do not apply) and calls [`connect`] or
//! [`serve`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::serve::{Job, ListenSocket, ServeOptions};
use super::{DatagramEnd, Ending, Framing, RelayOptions, echo, relay_bytes};
use crate::endpoint::{ConnectAddress, EndpointOptions, ListenAddress};
use crate::event::{Close, Event, Report};
use crate::job::pipe::{Reader, Writer};
use crate::job::serve::Mode;
use crate::stack::OptionsError;
use crate::streams::datagram::{
    ConnectedUnixDatagramSocket, UdpSocket, UnixDatagramSocket, create_connected_udp_socket,
};
use crate::streams::socket::resolve;
use crate::streams::{FamilyPreference, StreamError};

/// After stdin's end, how long `connect -u` waits for replies by default (each reply
/// restarts the wait).
pub const REPLY_WAIT: Duration = Duration::from_secs(2);

/// A peer's session of `serve -u` ends after this long without a datagram either way,
/// unless `--idle-timeout` says otherwise.
pub const SESSION_IDLE: Duration = Duration::from_secs(60);

/// The default limit on sessions of `serve -u -k` (`--max-conns`).
pub const MAX_SESSIONS: usize = 256;

/// The framing between datagrams and the byte side, from `delimiter=` and
/// `length-prefix`.
pub fn framing(options: &EndpointOptions, length_prefix: bool) -> Framing {
    Framing::of(options.delimiter.as_deref(), length_prefix)
}

fn stdio() -> (Reader, Writer) {
    (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
}

/// Reports a datagram endpoint's end: the `close` event, a line when datagrams were
/// dropped, the counts in the log (`-v`).
pub fn report_end(end: &DatagramEnd, reason: &str, started: Instant, report: &dyn Report) {
    report_counts(&end.name, &end.counters, reason, started, report);
}

/// [`report_end`] by the endpoint's name and counters.
pub fn report_counts(
    name: &str,
    counters: &super::Counters,
    reason: &str,
    started: Instant,
    report: &dyn Report,
) {
    let [received, sent, bytes_received, bytes_sent, dropped] = counters.snapshot();
    report.emit(|| Close::datagrams(name, reason, [sent, received], [bytes_sent, bytes_received], dropped));
    if dropped > 0 {
        let why = match reason {
            "output closed" => "after the output closed",
            _ => {
                "(the other side was slower and the queue full, an oversized one, or a peer that cannot be answered)"
            }
        };
        report.notice(&format!("{name}: dropped {dropped} datagrams {why}"));
    }
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    tracing::info!(
        peer = %name,
        "sent {sent} datagram{} ({bytes_sent} bytes), received {received} ({bytes_received} bytes), \
         dropped {dropped} in {:.3}s",
        plural(sent),
        started.elapsed().as_secs_f64()
    );
}

/// `connect -u ADDR`: stdin's lines (or frames) as datagrams to the peer, the peer's
/// datagrams to stdout; after stdin's end, replies until [`REPLY_WAIT`] (or the idle
/// time) passes without one.
///
/// # Errors
/// Resolving, binding or connecting; a refusal (ICMP port unreachable) while running;
/// an oversized line; a failing stdin.
pub async fn connect(
    addr: &ConnectAddress,
    options: &EndpointOptions,
    length_prefix: bool,
    family: FamilyPreference,
    report: &dyn Report,
) -> Result<(), StreamError> {
    let mut end = match addr {
        ConnectAddress::Tcp(host, port) => {
            let socket = create_connected_udp_socket(host, *port, family, options.source).await?;
            report.emit(|| Event::Connect {
                target: format!("udp:{}", crate::streams::socket::host_port(host, *port)),
                peer: Some(socket.peer().to_string()),
                proxy: None,
            });
            DatagramEnd::udp(socket)?
        }
        ConnectAddress::Unix(path) => DatagramEnd::unix(ConnectedUnixDatagramSocket::connect(path, None)?)?,
    };
    let idle = options.idle_timeout.and_then(|l| l.0);
    let relay = RelayOptions {
        framing: framing(options, length_prefix),
        idle,
        linger: Some(idle.unwrap_or(REPLY_WAIT)),
    };
    let started = Instant::now();
    let (mut reader, mut writer) = stdio();
    let result = relay_bytes(&mut end, &mut reader, &mut writer, &relay).await;
    let reason = match &result {
        Ok(ending) => ending.reason().to_string(),
        Err(err) => crate::streams::error::chain(err),
    };
    report_end(&end, &reason, started, report);
    match result {
        Ok(Ending::Idle) => Err(StreamError::Timeout {
            phase: crate::streams::Phase::Idle,
            after: idle.unwrap_or(REPLY_WAIT),
        }),
        other => other.map(drop),
    }
}

/// Binds `serve -u`'s sockets: a bare port on both loopback addresses, a host on each
/// of its addresses, a UNIX path as a datagram socket (a stale socket file replaced, the
/// file removed at the end).
///
/// # Errors
/// [`StreamError::Bind`]; [`StreamError::Unsupported`] for sockets passed by systemd.
pub async fn bind(
    addr: &ListenAddress,
    family: FamilyPreference,
    reuse_port: bool,
) -> Result<Vec<ListenSocket>, StreamError> {
    let v4 = |port| std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    let v6 = |port| std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    let udp = match (addr, family) {
        (ListenAddress::LoopbackPort(port), FamilyPreference::Any) => {
            UdpSocket::bind_loopback(*port, reuse_port)?
        }
        (ListenAddress::LoopbackPort(port), FamilyPreference::V4Only) => {
            vec![UdpSocket::bind(v4(*port), reuse_port)?]
        }
        (ListenAddress::LoopbackPort(port), FamilyPreference::V6Only) => {
            vec![UdpSocket::bind(v6(*port), reuse_port)?]
        }
        (ListenAddress::Socket(addr), _) => vec![UdpSocket::bind(*addr, reuse_port)?],
        (ListenAddress::Host(host, port), family) => resolve(host, *port, family)
            .await?
            .into_iter()
            .map(|a| UdpSocket::bind(a, reuse_port))
            .collect::<Result<_, _>>()?,
        (ListenAddress::Unix(path), _) => {
            return Ok(vec![ListenSocket::Unix(UnixDatagramSocket::bind_listener(path)?)]);
        }
        (ListenAddress::Systemd(_), _) => return Err(unsupported("sockets passed by systemd")),
    };
    Ok(udp.into_iter().map(ListenSocket::Udp).collect())
}

fn unsupported(what: &str) -> StreamError {
    StreamError::Unsupported(format!(
        "serve -u does not take {what}: give a UDP address or port, or a UNIX path"
    ))
}

/// What `serve -u` does with its peers: the job of each session, and whether one session
/// takes every peer (stdio mode).
pub struct Served {
    /// A session's job.
    pub job: Job,
    /// One session for every peer (stdio).
    pub one_session: bool,
}

/// What `serve -u` does with each peer's session, by mode.
///
/// # Errors
/// [`OptionsError::Usage`] for `--broker`.
pub fn job(mode: &Mode, options: &EndpointOptions, length_prefix: bool) -> Result<Served, OptionsError> {
    Ok(Served { job: session_job(mode, options, length_prefix)?, one_session: matches!(mode, Mode::Stdio) })
}

fn session_job(mode: &Mode, options: &EndpointOptions, length_prefix: bool) -> Result<Job, OptionsError> {
    let framing = framing(options, length_prefix);
    let idle = options.idle_timeout.and_then(|l| l.0);
    let session_idle = Some(idle.unwrap_or(SESSION_IDLE));
    Ok(match mode.clone() {
        Mode::Echo | Mode::Discard => {
            let back = matches!(mode, Mode::Echo);
            Arc::new(move |mut end: DatagramEnd| {
                Box::pin(async move {
                    let result = echo(&mut end, session_idle, back).await;
                    (end, result)
                })
            })
        }
        Mode::Stdio => {
            let relay = RelayOptions { framing, idle, linger: None };
            Arc::new(move |mut end: DatagramEnd| {
                let relay = relay.clone();
                Box::pin(async move {
                    let (mut reader, mut writer) = stdio();
                    let result = relay_bytes(&mut end, &mut reader, &mut writer, &relay).await;
                    (end, result)
                })
            })
        }
        Mode::Exec(_) | Mode::Shell(_) => {
            let relay = RelayOptions { framing, idle: session_idle, linger: Some(Duration::ZERO) };
            let mode = mode.clone();
            Arc::new(move |mut end: DatagramEnd| {
                let (relay, mode) = (relay.clone(), mode.clone());
                Box::pin(async move {
                    let result = run_command(&mut end, &mode, &relay).await;
                    (end, result)
                })
            })
        }
        Mode::Broker => {
            return Err(OptionsError::Usage(
                "--broker does not apply to -u/--udp: a datagram has no connection to relay to the others"
                    .into(),
            ));
        }
    })
}

/// A peer's command: spawned with the peer in its environment, relayed, then reaped.
async fn run_command(
    end: &mut DatagramEnd,
    mode: &Mode,
    relay: &RelayOptions,
) -> Result<Ending, StreamError> {
    let peer = end.name.trim_start_matches("udp:").to_string();
    let env = crate::job::serve::peer_env(&peer, &[]);
    let child = match mode {
        Mode::Exec(argv) => crate::streams::ChildStream::spawn_with(&argv[0], &argv[1..], &env)?,
        Mode::Shell(line) => crate::streams::ChildStream::shell_with(line, &env)?,
        _ => unreachable!("run_command is for --exec and --sh-exec"),
    };
    let (mut process, stdin, stdout) = child.into_parts();
    let mut reader: Reader = Box::new(stdout.into_inner().expect("a new child's stdout is open"));
    let mut writer: Writer = Box::new(stdin.into_inner().expect("a new child's stdin is open"));
    let result = relay_bytes(end, &mut reader, &mut writer, relay).await;
    drop((reader, writer));
    let status = crate::job::child::reap_child(&mut process, result.is_err()).await;
    tracing::info!(%peer, status = ?status, "command exited");
    result
}

/// `serve -u`: binds, announces (`listening on udp:…`, the `listen` event), and serves
/// until the session ends (without `keep_open`) or SIGINT/SIGTERM. `limits` are
/// `(keep_open, max_sessions, grace)`; `options.access` must be loaded. Returns whether
/// SIGINT stopped it.
///
/// # Errors
/// Binding; without `keep_open`, the session's failure.
pub async fn serve(
    addr: &ListenAddress,
    options: &EndpointOptions,
    served: Served,
    (keep_open, max_sessions, grace): (bool, Option<usize>, Duration),
    family: FamilyPreference,
    report: Arc<dyn Report>,
) -> Result<bool, StreamError> {
    let signals = crate::shutdown::Signals::new()?;
    let sockets = bind(addr, family, options.reuse_port).await?;
    if served.one_session {
        // A background job (`serve -u 5514 &` at a prompt) must not read the terminal: it
        // would be stopped (SIGTTIN). Its input is then empty.
        crate::stdio_fd::detach_background_stdin(report.as_ref())?;
    }
    let addresses: Vec<String> = sockets.iter().map(ListenSocket::name).collect::<Result<_, _>>()?;
    tracing::info!("listening on {}", addresses.join(", "));
    report.notice(&format!("listening on {}", addresses.join(", ")));
    report.as_ref().emit(|| Event::Listen { addresses, tls: None, cert_sha256: None, key_sha256: None });
    let admission: Option<Arc<dyn crate::streams::listener::Admission>> = match options.access.is_on() {
        true => Some(Arc::new(options.access.clone())),
        false => None,
    };
    let serve_options = ServeOptions {
        keep_open,
        max_sessions: max_sessions.unwrap_or(MAX_SESSIONS),
        one_session: served.one_session,
        admission,
        grace,
    };
    let stop = signals.watch();
    let stopping = stop.shutdown.clone();
    super::serve::serve(sockets, serve_options, served.job, report, stopping.cancelled_owned()).await?;
    Ok(stop.interrupted())
}
