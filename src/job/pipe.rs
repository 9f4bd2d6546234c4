//! `pipe`'s relay between two opened endpoints ([`End`]), by the end-of-stream rules
//! ([`run_pair`]): splice(2) between two plain sockets with nothing to transform, the
//! library's stream layers (framing, text, TLS) otherwise. A relay that fails is cut on
//! both sides: a reset on a plain TCP side, no close_notify on a TLS one, and an `exec:`
//! command is killed before its input closes; so a truncated stream on one side never
//! reaches the other as a clean end.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::endpoint::{Endpoint, EndpointKind};
use crate::event::{Close, Event, Report};
use crate::proxy_protocol::{AcceptProxy, Origin};
use crate::relay::{
    Activity, Flow, FlowEnd, Meter, OnEof, PairEnd, PairRule, Shaping, Side, forward_metered, run_pair,
};
use crate::server::{
    ServerTls, ServerTlsError, accept_first_proxied, report_failed_handshake, report_failed_proxy,
};
use crate::splice::{SpliceSocket, transfer};
use crate::stack::Spelling;
use crate::stack::open::{self, Opened, PlainSocket, Target};
use crate::streams::ChildStream;
use crate::streams::file::{open_read, open_write};
use crate::streams::listener::{Connection, Listener, SocketListener};
use crate::streams::socket::{FamilyPreference, host_port};
use crate::streams::tls::TlsStream;
use crate::streams::{
    Address, AsyncResource, ByteSendStream, IoReceiveStream, IoSendStream, StreamError,
    TypedAttributeProvider,
};

use super::child::{command_stopped_reading, reap_child, until_exit};
use super::cut::{CutFlag, Cuttable, cut, reset_on_close};
use super::ends::{cut_short as flow_cut_short, is_broken_pipe, peer_left};
use super::stdio::spliced_flow;

/// One direction of an endpoint, read.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// One direction of an endpoint, written.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// An endpoint's transport.
pub enum Io {
    /// A plain socket, kept whole for splice(2).
    Socket(PlainSocket),
    /// Anything else, as its two directions.
    Split(Reader, Writer),
}

impl Io {
    /// The two directions, and for a TCP socket the flag that cuts it with a reset.
    pub fn into_split(self) -> (Reader, Writer, Option<CutFlag>) {
        match self {
            Io::Split(r, w) => (r, w, None),
            Io::Socket(PlainSocket::Tcp(s)) => {
                let (io, flag) = Cuttable::new(s, reset_on_close);
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
pub struct End {
    /// Its name in messages and events (`stdio`, `file:PATH`, `HOST:PORT`, a peer).
    pub name: String,
    /// Its transport.
    pub io: Io,
    /// What the end of the data going to it does (`on-eof=`).
    pub on_eof: OnEof,
    /// A read-only file: what the other side sends is dropped, with a warning.
    pub read_only: bool,
    /// A write-only file: it has nothing to send, and must not end the other side early.
    pub write_only: bool,
    /// stdin/stdout: a closed stdout (as in `| head`) is success.
    pub is_stdio: bool,
    /// An `exec:` command, reaped when the relay is done.
    pub child: Option<tokio::process::Child>,
    /// An accepted connection's client, the address it reached and the TLS terminated:
    /// what a PROXY header on the relay's other endpoint names ([`End::open_for`]).
    pub origin: Option<Origin>,
}

impl End {
    /// Any two-way stream (split in two), ending its input by `on_eof`.
    pub fn split<IO>(name: String, io: IO, on_eof: OnEof) -> End
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (reader, writer) = tokio::io::split(io);
        End::new(name, Io::Split(Box::new(reader), Box::new(writer)), on_eof)
    }

    /// A plain socket (half-closed when its input ends).
    pub fn socket(name: String, socket: PlainSocket) -> End {
        End::new(name, Io::Socket(socket), OnEof::HalfClose)
    }

    /// A TLS stream, its handshake reported. A TLS client keeps its side open when its
    /// input ends (servers built on OpenSSL take a close_notify for the end of the whole
    /// connection); a TLS server half-closes.
    pub fn tls(name: String, tls: TlsStream<Connection>, report: &dyn Report) -> End {
        super::report_handshake(&tls, report, &name);
        let on_eof = if tls.is_server() { OnEof::HalfClose } else { OnEof::KeepOpen };
        End::split(name, crate::stack::open::tls_io(tls), on_eof)
    }

    /// An endpoint with the given transport and nothing special about it.
    pub fn new(name: String, io: Io, on_eof: OnEof) -> End {
        End {
            name,
            io,
            on_eof,
            read_only: false,
            write_only: false,
            is_stdio: false,
            child: None,
            origin: None,
        }
    }

    /// A socket or a TLS stream: reading it after a failed write to it reports why.
    fn is_connection(&self) -> bool {
        // Not stdio, a command or a file: a plain socket, or a TLS stream.
        matches!(self.io, Io::Socket(_))
            || !(self.is_stdio || self.child.is_some() || self.read_only || self.write_only)
    }
}

/// Why an endpoint could not be opened.
#[derive(Debug)]
pub enum EndError {
    /// A stream error (spawning a command, opening a file).
    Stream(StreamError),
    /// Connecting or the TLS handshake.
    Open(crate::stack::open::OpenError),
    /// A file its options name.
    Options(crate::stack::OptionsError),
    /// `tofu`: the server's key changed ([`super::checks::CheckError::Refused`], exit 4),
    /// or the known-hosts file could not be used.
    Check(super::checks::CheckError),
    /// `file:PATH` without `create`, `append` or `truncate` reads a file, and this one
    /// does not exist.
    NoSuchFile(std::path::PathBuf, StreamError),
    /// `replay:FILE`: the transcript cannot be read or has nothing to play.
    Replay(String),
    /// A recording's file (`dump-file=`, `transcript=`, `pcap=`).
    Tap(crate::tap::TapError),
}

/// What is done for an endpoint before anything opens: a `replay:` transcript read (a
/// bad one is said before anything listens), the access files read, a recording's files
/// created and announced.
///
/// # Errors
/// [`EndError::Replay`], [`EndError::Options`] (an access file), [`EndError::Tap`].
pub fn prepare(endpoint: &mut Endpoint, report: &dyn Report) -> Result<(), EndError> {
    if let EndpointKind::Replay(path) = &endpoint.kind {
        crate::tap::replay::load(path, &endpoint.options.replay).map_err(EndError::Replay)?;
    }
    endpoint.options.load_access().map_err(EndError::Options)?;
    let tls = matches!(endpoint.kind, EndpointKind::Tls(..) | EndpointKind::TlsListen(_));
    endpoint.options.open_recorder(tls, report).map_err(EndError::Tap)
}

impl EndError {
    /// Advice for the user, beside the error: a user writing to a new file (socat's
    /// `CREATE:`, websocat's `writefile:`) needs to know how to say so.
    pub fn hint(&self) -> Option<String> {
        let EndError::NoSuchFile(path, _) = self else { return None };
        let path = path.display();
        Some(format!(
            "file:{path} reads an existing file; to write a new one, use file:{path},create (or append, truncate)"
        ))
    }
}

impl End {
    /// Opens an endpoint that neither listens nor connects: `stdio`, `exec:` (run by
    /// `sh -c`, in a process group of its own) and `file:`. `None` for the others.
    ///
    /// # Errors
    /// [`EndError::Stream`] for a command that cannot start or a file that cannot be
    /// opened; [`EndError::NoSuchFile`] for a missing file to read.
    pub async fn open_local(endpoint: &Endpoint) -> Option<Result<End, EndError>> {
        Some(match &endpoint.kind {
            EndpointKind::Stdio => {
                let io = Io::Split(Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()));
                Ok(End { is_stdio: true, ..End::new("stdio".into(), io, OnEof::HalfClose) })
            }
            EndpointKind::Exec(command) => End::exec(command),
            EndpointKind::File(path) => End::file(path, endpoint.options.write_mode).await,
            EndpointKind::Replay(path) => End::replay(path, &endpoint.options.replay),
            _ => return None,
        })
    }

    /// Connects a `tcp:`, `tls:` or `unix:` endpoint (`None` for the others), reporting
    /// the `connect` event and the TLS handshake.
    ///
    /// # Errors
    /// [`EndError::Options`] for a file a TLS option names, [`EndError::Stream`] for a
    /// bad name to verify, [`EndError::Open`] for connecting and the handshake.
    pub async fn connect(endpoint: &Endpoint, report: &dyn Report) -> Option<Result<End, EndError>> {
        let o = &endpoint.options;
        let (target, name, tls) = match &endpoint.kind {
            EndpointKind::Tcp(host, port) => (Target::Tcp(host, *port), host_port(host, *port), false),
            EndpointKind::Tls(host, port) => (Target::Tcp(host, *port), host_port(host, *port), true),
            EndpointKind::Unix(path) => (Target::Unix(path), format!("unix:{}", path.display()), false),
            _ => return None,
        };
        let connect = async {
            let known_hosts = match tls && o.tofu {
                true => Some(
                    crate::stack::tofu::KnownHosts::for_user()
                        .map_err(|e| EndError::Check(super::checks::CheckError::KnownHosts(e)))?,
                ),
                false => None,
            };
            let tls = match (tls, target) {
                (true, Target::Tcp(host, _)) => {
                    let mut options = o.client_options(Spelling::Endpoint).map_err(EndError::Options)?;
                    if o.tofu {
                        options = crate::stack::tofu::client_options(options);
                    }
                    let config = options.build();
                    Some((config.map_err(EndError::Stream)?, o.verify_name(host).map_err(EndError::Stream)?))
                }
                _ => None,
            };
            let connected = |_| {
                if matches!(target, Target::Tcp(..)) {
                    report.emit(|| Event::Connect {
                        target: name.clone(),
                        peer: None,
                        proxy: o.proxy.as_ref().map(ToString::to_string),
                    });
                }
            };
            match open::connect(target, &name, o, Default::default(), tls, connected).await {
                Ok(Opened::Plain(plain)) => Ok(End::socket(name.clone(), plain)),
                Ok(Opened::Observed(connection)) => {
                    Ok(End::split(name.clone(), *connection, OnEof::HalfClose))
                }
                Ok(Opened::Tls(tls)) => match &known_hosts {
                    None => Ok(End::tls(name.clone(), *tls, report)),
                    // `tofu`: the handshake reported, then the key pin checked against
                    // the known-hosts file before any data, as `connect --tofu` does.
                    Some(known_hosts) => {
                        let checks = super::checks::ClientChecks {
                            tofu: Some((known_hosts, &name, Spelling::Endpoint)),
                            show_cert: None,
                            require: &[],
                        };
                        super::checks::after_handshake(&*tls, checks, report, &name)
                            .map_err(EndError::Check)?;
                        Ok(End::split(name.clone(), crate::stack::open::tls_io(*tls), OnEof::KeepOpen))
                    }
                },
                Err(err) => Err(EndError::Open(err)),
            }
        };
        Some(connect.await)
    }

    /// Opens an endpoint of any kind: [`End::open_local`], [`End::connect`], or a
    /// listening one's first connection ([`End::listen_first`]). Its `on-eof=` option
    /// overrides the kind's default.
    ///
    /// # Errors
    /// As those do.
    pub async fn open(endpoint: &Endpoint, report: &dyn Report) -> Result<End, EndError> {
        let opened = match End::open_local(endpoint).await {
            Some(opened) => opened,
            None if endpoint.is_datagram() => match super::datagram::pipe::open(endpoint, report).await {
                Some(opened) => opened,
                None => unreachable!("udp-listen: pipes run in job::datagram::pipe"),
            },
            None => match End::connect(endpoint, report).await {
                Some(opened) => opened,
                None => End::listen_first(endpoint, report).await,
            },
        };
        Ok(opened?.with_on_eof(endpoint.options.on_eof))
    }

    /// [`End::open`], for a relay whose other end was accepted from `origin` (its
    /// [`End::origin`]): a `proxy-protocol=` endpoint's header then names that client
    /// (else the opened socket's own addresses).
    ///
    /// # Errors
    /// As [`End::open`].
    pub async fn open_for(
        endpoint: &Endpoint,
        origin: Option<&Origin>,
        report: &dyn Report,
    ) -> Result<End, EndError> {
        match origin {
            Some(origin) if endpoint.options.proxy_protocol.is_some() => {
                let mut endpoint = endpoint.clone();
                endpoint.options.proxy_origin = Some(origin.clone());
                End::open(&endpoint, report).await
            }
            _ => End::open(endpoint, report).await,
        }
    }

    /// This end with its input's end overridden by `on-eof=`, if given.
    pub fn with_on_eof(mut self, on_eof: Option<OnEof>) -> End {
        if let Some(on_eof) = on_eof {
            self.on_eof = on_eof;
        }
        self
    }

    /// A listening endpoint (`tcp-listen`, `tls-listen`, `unix-listen`): bound, its TLS
    /// built ([`listener_tls`]), announced, and its first connection accepted, the first
    /// whose handshake succeeds ([`accept_first_proxied`], with `accept-proxy` each
    /// connection's PROXY header read first: handshakes run side by side, so a client
    /// that connects and stays silent does not hold up the next one).
    ///
    /// # Errors
    /// [`EndError::Stream`] for binding, [`EndError::Options`] for the TLS files.
    pub async fn listen_first(endpoint: &Endpoint, report: &dyn Report) -> Result<End, EndError> {
        let mut listener = bind(endpoint).await.map_err(EndError::Stream)?;
        let tls = listener_tls(endpoint, &listener, report)?;
        announce(&listener, report);
        let proxy = AcceptProxy::of(&endpoint.options);
        let (opened, peer) = accept_first_proxied(&mut listener, tls.as_ref(), proxy.as_ref(), report)
            .await
            .map_err(EndError::Stream)?;
        Ok(End::accepted(peer, opened))
    }

    /// A connection a forking listening endpoint accepted (from `peer`): reported
    /// (`accept`), with `proxy` (`accept-proxy`) its PROXY header read first (the client
    /// it names is the end's name; a refused one is reported and gives `None`), then
    /// [`End::accept`].
    ///
    /// # Errors
    /// As [`End::accept`].
    pub async fn accept_connection(
        mut raw: Connection,
        peer: &Address,
        tls: Option<&ServerTls>,
        proxy: Option<&AcceptProxy>,
        report: &dyn Report,
    ) -> Result<Option<End>, StreamError> {
        let (client, via) = match proxy {
            Some(accept) => match accept.accept(&mut raw, peer).await {
                Ok(proxied) => (proxied.client.to_string(), Some(proxied.proxy.to_string())),
                Err(reason) => {
                    report_failed_proxy(report, peer, &reason);
                    return Ok(None);
                }
            },
            None => (peer.to_string(), None),
        };
        report.emit(|| Event::Accept { peer: client.clone(), proxy: via });
        End::accept(raw, tls, &client, report).await
    }

    /// A connection a listening endpoint accepted, with TLS its handshake run and
    /// reported; `None` when the handshake failed (reported as serve reports it).
    ///
    /// # Errors
    /// [`StreamError::Closed`] if the connection was closed before it could be taken.
    pub async fn accept(
        raw: Connection,
        tls: Option<&ServerTls>,
        peer: &str,
        report: &dyn Report,
    ) -> Result<Option<End>, StreamError> {
        let opened = match tls {
            None => Opened::plain(raw)?,
            Some(tls) => match tls.accept(raw).await {
                Ok(stream) => {
                    super::report_handshake(&stream, report, peer);
                    Opened::Tls(Box::new(stream))
                }
                Err(reason) => {
                    report_failed_handshake(report, peer, &reason);
                    return Ok(None);
                }
            },
        };
        Ok(Some(End::accepted(peer.to_string(), opened)))
    }

    /// An accepted connection (a TLS server half-closes at the end of its input).
    fn accepted(peer: String, opened: Opened) -> End {
        let origin = origin_of(&peer, &opened);
        let end = match opened {
            Opened::Plain(socket) => End::socket(peer, socket),
            Opened::Tls(tls) => End::split(peer, crate::stack::open::tls_io(*tls), OnEof::HalfClose),
            Opened::Observed(connection) => End::split(peer, *connection, OnEof::HalfClose),
        };
        End { origin, ..end }
    }

    fn exec(command: &str) -> Result<End, EndError> {
        let (process, stdin, stdout) = ChildStream::shell(command).map_err(EndError::Stream)?.into_parts();
        let io = Io::Split(
            Box::new(stdout.into_inner().expect("a new child's stdout is open")),
            Box::new(stdin.into_inner().expect("a new child's stdin is open")),
        );
        Ok(End { child: Some(process), ..End::new(format!("exec:{command}"), io, OnEof::HalfClose) })
    }

    /// `replay:FILE`: the transcript's direction played; what comes back is dropped.
    fn replay(path: &Path, options: &crate::tap::replay::ReplayOptions) -> Result<End, EndError> {
        let plan = crate::tap::replay::load(path, options).map_err(EndError::Replay)?;
        let io =
            Io::Split(Box::new(crate::tap::replay::play(plan, options.fast)), Box::new(tokio::io::sink()));
        Ok(End::new(format!("replay:{}", path.display()), io, OnEof::HalfClose))
    }

    async fn file(path: &Path, write_mode: Option<crate::streams::file::WriteMode>) -> Result<End, EndError> {
        let name = format!("file:{}", path.display());
        if let Some(mode) = write_mode {
            let file = open_write(path, mode).await.map_err(EndError::Stream)?;
            let io = Io::Split(
                Box::new(tokio::io::empty()),
                Box::new(file.into_inner().expect("a new file is open")),
            );
            return Ok(End { write_only: true, ..End::new(name, io, OnEof::HalfClose) });
        }
        let file = match open_read(path).await {
            Ok(file) => file.into_inner().expect("a new file is open"),
            Err(err @ StreamError::Open { .. })
                if std::error::Error::source(&err)
                    .and_then(|e| e.downcast_ref::<std::io::Error>())
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                return Err(EndError::NoSuchFile(path.to_path_buf(), err));
            }
            Err(err) => return Err(EndError::Stream(err)),
        };
        let io = Io::Split(Box::new(file), Box::new(tokio::io::sink()));
        Ok(End { read_only: true, ..End::new(name, io, OnEof::HalfClose) })
    }
}

/// What a PROXY header names for the connection accepted from `peer` (the client's
/// address as text; with `accept-proxy`, the client its header named): the client, our
/// socket's own address it reached, and the TLS version and SNI when we terminated TLS.
/// `None` for a UNIX socket's client (the other endpoint's header then names its own
/// socket).
fn origin_of(peer: &str, opened: &Opened) -> Option<Origin> {
    let client: std::net::SocketAddr = peer.parse().ok()?;
    let tcp_local = |c: &Connection| match c {
        Connection::Tcp(s) => s.get_ref().and_then(|t| t.local_addr().ok()),
        Connection::Unix(_) => None,
    };
    let (local, tls) = match opened {
        Opened::Plain(PlainSocket::Tcp(s)) => (s.local_addr().ok(), None),
        Opened::Plain(PlainSocket::Unix(_)) => return None,
        Opened::Observed(connection) => (tcp_local(connection), None),
        Opened::Tls(tls) => {
            let version = tls.protocol_version().map(|v| v.to_string()).unwrap_or_default();
            (tls.get_ref().and_then(tcp_local), Some((version, tls.server_name())))
        }
    };
    Some(Origin { addresses: local.map(|local| (client, local)), tls })
}

/// `pipe`'s two endpoints, `-k` (`fork`) given to the listening one, their combinations
/// checked, and every file their options name read before anything listens (a tls:
/// endpoint's ca=, cert= and key= would otherwise be read only when a client arrives).
///
/// # Errors
/// [`EndError::Options`] with [`OptionsError::Usage`](crate::stack::OptionsError::Usage)
/// for combinations that do not fit; the files' errors.
pub fn endpoints(
    a: &Endpoint,
    b: &Endpoint,
    fork: bool,
    max_conns: Option<usize>,
    report: &dyn Report,
) -> Result<(Endpoint, Endpoint), EndError> {
    let usage = |m: &str| EndError::Options(crate::stack::OptionsError::Usage(m.to_string()));
    let (mut a, mut b) = (a.clone(), b.clone());
    if fork {
        match (a.is_listener(), b.is_listener()) {
            (true, _) => a.options.fork = true,
            (false, true) => b.options.fork = true,
            (false, false) => {
                return Err(usage(
                    "-k/--fork needs a listening endpoint (tcp-listen, tls-listen, unix-listen, udp-listen)",
                ));
            }
        }
    }
    if a.options.fork && b.options.fork {
        return Err(usage("only one endpoint can fork"));
    }
    if max_conns.is_some() && !(a.options.fork || b.options.fork) {
        return Err(usage("--max-conns needs fork (-k, or the fork option of a listening endpoint)"));
    }
    for endpoint in [&a, &b] {
        if matches!(endpoint.kind, EndpointKind::Tls(..)) {
            // (insecure's warning is printed once, when the endpoint opens)
            let options = crate::endpoint::EndpointOptions { insecure: false, ..endpoint.options.clone() };
            options
                .client_options(Spelling::Endpoint)
                .map_err(EndError::Options)?
                .build()
                .map_err(EndError::Stream)?;
        }
    }
    [&mut a, &mut b].into_iter().try_for_each(|e| prepare(e, report))?;
    Ok((a, b))
}

/// Binds a listening endpoint.
///
/// # Errors
/// [`StreamError::Bind`] (and the like) naming the address.
pub async fn bind(endpoint: &Endpoint) -> Result<SocketListener, StreamError> {
    let mut listener = match &endpoint.kind {
        EndpointKind::TcpListen(addr) | EndpointKind::TlsListen(addr) => {
            addr.bind_with(FamilyPreference::Any, endpoint.options.listen_options()).await?
        }
        EndpointKind::UnixListen(path) => SocketListener::bind_unix(path).await?,
        _ => unreachable!("only listeners are bound"),
    };
    endpoint.options.prepare_listener(&mut listener);
    Ok(listener)
}

/// A `tls-listen` endpoint's TLS ([`ServerTls::from_options`]; without `cert=`, a fresh
/// self-signed certificate, announced with the command that reaches it); `None` for the
/// other kinds.
///
/// # Errors
/// [`EndError::Options`] for a file its options name, [`EndError::Stream`] for the rest.
pub fn listener_tls(
    endpoint: &Endpoint,
    listener: &SocketListener,
    report: &dyn Report,
) -> Result<Option<ServerTls>, EndError> {
    if !matches!(endpoint.kind, EndpointKind::TlsListen(_)) {
        return Ok(None);
    }
    let target = match listener.tcp_port() {
        Some(port) => format!("localhost:{port}"),
        None => "ADDR".to_string(),
    };
    match ServerTls::from_options(&endpoint.options, Spelling::Endpoint, &target, report) {
        Ok(served) => Ok(Some(served.tls)),
        Err(ServerTlsError::Options(err)) => Err(EndError::Options(err)),
        Err(ServerTlsError::Build(err)) => Err(EndError::Stream(err)),
    }
}

/// The `listening on` line and the `listen` event of a listening endpoint.
pub fn announce(listener: &SocketListener, report: &dyn Report) {
    let addresses: Vec<String> = listener.local_addresses().iter().map(ToString::to_string).collect();
    report.notice(&format!("listening on {}", addresses.join(", ")));
    report.emit(|| Event::Listen { addresses, tls: None, cert_sha256: None, key_sha256: None });
}

/// A pipe's idle limit: `--idle-timeout`, else an endpoint's `idle-timeout=` (the shorter
/// if both set one), else [`TLS_TERMINATOR_IDLE`](crate::stack::options::TLS_TERMINATOR_IDLE) with a `tls-listen` endpoint, else none.
pub fn idle_limit(
    flag: Option<crate::values::IdleLimit>,
    a: &crate::endpoint::Endpoint,
    b: &crate::endpoint::Endpoint,
) -> Option<std::time::Duration> {
    use crate::endpoint::EndpointKind;
    if let Some(limit) = flag {
        return limit.0;
    }
    let set: Vec<Option<std::time::Duration>> =
        [a, b].iter().filter_map(|e| e.options.idle_timeout.map(|l| l.0)).collect();
    if !set.is_empty() {
        return set.into_iter().flatten().min();
    }
    let terminator = [a, b].iter().any(|e| matches!(e.kind, EndpointKind::TlsListen(_)));
    terminator.then_some(crate::stack::options::TLS_TERMINATOR_IDLE)
}

/// How a relay between two endpoints runs.
pub struct RelayOptions<'a> {
    /// The shaping of A -> B and of B -> A.
    pub shapings: [Shaping; 2],
    /// Bytes moved A -> B and B -> A, counted as they move (progress, the idle limit).
    pub meters: [&'a Meter; 2],
    /// Say what a half-ended relay waits for as a notice (else a debug log line).
    pub announce_waits: bool,
    /// Log each direction's bytes and reason at the end.
    pub verbose: bool,
}

/// Why a relay failed, naming the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A direction failed (`what`: "receiving from A failed", "sending to B failed").
    #[error("{what}")]
    Direction {
        /// What failed, naming the endpoint.
        what: String,
        /// Why.
        #[source]
        source: StreamError,
    },
    /// An `exec:` command failed.
    #[error("{name}: the command failed ({status})")]
    Command {
        /// The endpoint.
        name: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// No byte moved either way for the idle limit ([`relay_unless_idle`]).
    #[error("no data moved between {a} and {b}")]
    Idle {
        /// Endpoint A.
        a: String,
        /// Endpoint B.
        b: String,
        /// The timeout ([`StreamError::Timeout`], phase idle).
        #[source]
        source: StreamError,
    },
}

/// [`relay`] under an idle limit: with no byte moving either way for `idle`, the relay
/// ends with its `close` event (`idle timeout`) and [`RelayError::Idle`].
///
/// # Errors
/// As [`relay`], and [`RelayError::Idle`].
pub async fn relay_unless_idle(
    a: End,
    b: End,
    options: &RelayOptions<'_>,
    report: &dyn Report,
    idle: Option<std::time::Duration>,
) -> Result<(), RelayError> {
    let (a_name, b_name) = (a.name.clone(), b.name.clone());
    match crate::relay::unless_idle(relay(a, b, options, report), idle, options.meters).await {
        Some(result) => result,
        None => {
            report.emit(|| Close::relay(&a_name, &b_name, "idle timeout", None));
            let after = idle.unwrap_or_default();
            let source = StreamError::Timeout { phase: crate::streams::Phase::Idle, after };
            Err(RelayError::Idle { a: a_name, b: b_name, source })
        }
    }
}

/// Relays both directions between `a` and `b` by the end-of-stream rules, reaps any
/// command, and reports each direction's end and the relay's close.
///
/// # Errors
/// The first direction that failed (a closed stdout and a peer that left after a
/// complete exchange are not failures), else a command that failed.
pub async fn relay(
    mut a: End,
    mut b: End,
    options: &RelayOptions<'_>,
    report: &dyn Report,
) -> Result<(), RelayError> {
    let started = Instant::now();
    let (a_name, b_name) = (a.name.clone(), b.name.clone());
    // After a failed write to a connection, its reason is read from the same connection
    // by the other direction: wait for that, unless the other direction feeds a command
    // (which could be blocked writing output that is no longer read).
    let rules = [
        PairRule {
            ends_relay: b.on_eof == OnEof::Close,
            wait_for_cause: b.is_connection() && a.child.is_none(),
            linger: None,
        },
        PairRule {
            ends_relay: a.on_eof == OnEof::Close,
            wait_for_cause: a.is_connection() && b.child.is_none(),
            linger: None,
        },
    ];
    let waiting = |waited_for: usize| {
        let (from, to) = if waited_for == 0 { (&a_name, &b_name) } else { (&b_name, &a_name) };
        let message = format!(
            "waiting for {from} to end (what goes to {to} is still open); on-eof=half-close|keep-open|close \
             on an endpoint says what the end of its input does"
        );
        if options.announce_waits { report.notice(&message) } else { tracing::debug!("{message}") }
    };
    // splice(2) counts only the bytes it moved, so its flows cannot tell a peer that left
    // after a complete exchange from one that cut a transfer short.
    let spliced = matches!((&a.io, &b.io), (Io::Socket(_), Io::Socket(_)))
        && options.shapings.iter().all(Shaping::is_raw)
        && a.on_eof == OnEof::HalfClose
        && b.on_eof == OnEof::HalfClose;
    let (a_stdio, b_stdio) = (a.is_stdio, b.is_stdio);
    let (mut a_child, mut b_child) = (a.child.take(), b.child.take());
    let (ab, ba, failed) = if spliced {
        let (Io::Socket(sa), Io::Socket(sb)) = (a.io, b.io) else { unreachable!("checked above") };
        tracing::debug!("relaying with splice(2)");
        splice_both(sa, sb, options.meters, rules, waiting).await
    } else {
        let children = [&mut a_child, &mut b_child];
        generic(a, b, children, options, rules, waiting).await
    };
    // A command that fails (or cannot run: `sh` exits 127) fails the relay, as a broken
    // stream does; one that had to be killed after the relay is not counted.
    let mut command_failed = None;
    for (child, name) in [(a_child, &a_name), (b_child, &b_name)] {
        let Some(mut child) = child else { continue };
        let status = reap_child(&mut child, failed).await;
        tracing::info!(status = ?status, "command exited");
        if let Some(status) = status.filter(|s| !s.success()) {
            command_failed.get_or_insert(RelayError::Command { name: name.clone(), status });
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    for (label, flow) in [(format!("{a_name} -> {b_name}"), &ab), (format!("{b_name} -> {a_name}"), &ba)] {
        report.emit(|| Event::half_close(None, label.clone(), flow));
        if options.verbose {
            tracing::info!("{label}: {} bytes in {elapsed:.3}s, {}", flow.bytes_out, flow.reason());
        }
    }
    let reason = format!("{}; {}", ab.reason(), ba.reason());
    report.emit(|| Close::relay(&a_name, &b_name, reason, Some(elapsed)));
    first_error([(ab, &a_name, &b_name, b_stdio), (ba, &b_name, &a_name, a_stdio)], spliced)?;
    command_failed.map_or(Ok(()), Err)
}

/// The relay through user space (anything but two plain sockets with nothing to do):
/// the two directions, and whether the relay failed. On failure, commands are killed
/// before their input closes and a stream cut short is passed on as a reset.
async fn generic(
    a: End,
    b: End,
    [a_child, b_child]: [&mut Option<tokio::process::Child>; 2],
    options: &RelayOptions<'_>,
    rules: [PairRule; 2],
    waiting: impl FnMut(usize),
) -> (Flow, Flow, bool) {
    let activity = Activity::default();
    let [ab_meter, ba_meter] = options.meters;
    let [ab_shaping, ba_shaping] = &options.shapings;
    let ((a_reader, a_writer, a_cut), (b_reader, b_writer, b_cut)) = (a.io.into_split(), b.io.into_split());
    let (mut a_sink, mut b_sink) = (IoSendStream::new(a_writer), IoSendStream::new(b_writer));
    let ab = Direction {
        source_write_only: a.write_only,
        sink_read_only: b.read_only,
        sink_name: &b.name,
        sink_is_command: b_child.is_some(),
    };
    let ba = Direction {
        source_write_only: b.write_only,
        sink_read_only: a.read_only,
        sink_name: &a.name,
        sink_is_command: a_child.is_some(),
    };
    let ([ab, ba], end) = {
        let (b_half, a_half) = (b.on_eof == OnEof::HalfClose, a.on_eof == OnEof::HalfClose);
        let ab_run = ab.run(a_reader, &mut b_sink, ab_shaping, &activity, b_half, ab_meter);
        let ba_run = ba.run(b_reader, &mut a_sink, ba_shaping, &activity, a_half, ba_meter);
        // Feeding a command ends when it exits, too (it takes no more).
        let ab_run = async {
            match b_child.as_mut() {
                Some(child) => until_exit(child, ab_run, ab_meter).await,
                None => ab_run.await,
            }
        };
        let ba_run = async {
            match a_child.as_mut() {
                Some(child) => until_exit(child, ba_run, ba_meter).await,
                None => ba_run.await,
            }
        };
        run_pair(ab_run, ba_run, rules, options.meters, waiting).await
    };
    let failed = matches!(end, PairEnd::Failed(_));
    if failed {
        // Commands die before their stdin closes (the sinks drop after this): a failed
        // relay never hands them a clean end of input.
        for child in [a_child, b_child].into_iter().flatten() {
            reap_child(child, true).await;
        }
        // A stream cut short is passed on cut short: a reset on a plain side.
        if cut_short(end, [&ab, &ba]) {
            cut(&a_cut);
            cut(&b_cut);
        }
    } else {
        // Whatever is still open closes now: a keep-open side's FIN or close_notify, a
        // file's flush.
        let _ = a_sink.aclose().await;
        let _ = b_sink.aclose().await;
    }
    (ab.unwrap_or_else(Flow::abandoned), ba.unwrap_or_else(Flow::abandoned), failed)
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
        if self.sink_is_command { command_stopped_reading(flow) } else { flow }
    }
}

/// The error the relay ends with, if any, naming the endpoint that failed; each flow
/// comes with its source's and sink's names and whether its sink is stdout, where a closed
/// pipe (as in `| head`) counts as success, and so does a peer that left after a complete
/// exchange (a probe, a health check), where the flows can tell (not `spliced`).
fn first_error(flows: [(Flow, &String, &String, bool); 2], spliced: bool) -> Result<(), RelayError> {
    for (flow, source, sink, sink_is_stdout) in flows {
        if !spliced && peer_left(&flow) {
            continue;
        }
        if let FlowEnd::Failed(side, err) = flow.end {
            if side == Side::Sink && sink_is_stdout && is_broken_pipe(&err) {
                continue;
            }
            let what = match (side, &err) {
                // A datagram too large for a datagram endpoint is refused on its way there,
                // whichever direction of the bridge noticed first.
                (Side::Source, StreamError::OversizedDatagram { .. }) => {
                    format!("sending to {source} failed")
                }
                (Side::Source, _) => format!("receiving from {source} failed"),
                (Side::Sink, _) => format!("sending to {sink} failed"),
            };
            return Err(RelayError::Direction { what, source: err });
        }
    }
    Ok(())
}

/// Whether the relay failed because a stream was cut short ([`flow_cut_short`]).
fn cut_short(end: PairEnd, flows: [&Option<Flow>; 2]) -> bool {
    matches!(end, PairEnd::Failed(i) if flows[i].as_ref().is_some_and(flow_cut_short))
}

/// Both directions between two plain sockets, with splice(2), by the same rules as the
/// generic relay: a relay cut short resets both TCP sides.
async fn splice_both(
    a: PlainSocket,
    b: PlainSocket,
    meters: [&Meter; 2],
    rules: [PairRule; 2],
    waiting: impl FnMut(usize),
) -> (Flow, Flow, bool) {
    async fn one<S: SpliceSocket, D: SpliceSocket>(src: &S, dst: &D, meter: &Meter) -> Flow {
        let mut flow = spliced_flow(transfer(src, dst, &|n| meter.add(n)).await);
        if matches!(flow.end, FlowEnd::Eof)
            && let Err(err) = dst.shutdown_write()
        {
            flow.end = FlowEnd::Failed(Side::Sink, err.into());
        }
        flow
    }
    let [ab_meter, ba_meter] = meters;
    let (flows, end) = match (&a, &b) {
        (PlainSocket::Tcp(a), PlainSocket::Tcp(b)) => {
            run_pair(one(a, b, ab_meter), one(b, a, ba_meter), rules, meters, waiting).await
        }
        (PlainSocket::Tcp(a), PlainSocket::Unix(b)) => {
            run_pair(one(a, b, ab_meter), one(b, a, ba_meter), rules, meters, waiting).await
        }
        (PlainSocket::Unix(a), PlainSocket::Tcp(b)) => {
            run_pair(one(a, b, ab_meter), one(b, a, ba_meter), rules, meters, waiting).await
        }
        (PlainSocket::Unix(a), PlainSocket::Unix(b)) => {
            run_pair(one(a, b, ab_meter), one(b, a, ba_meter), rules, meters, waiting).await
        }
    };
    let failed = matches!(end, PairEnd::Failed(_));
    if cut_short(end, [&flows[0], &flows[1]]) {
        for socket in [&a, &b] {
            if let PlainSocket::Tcp(tcp) = socket {
                reset_on_close(tcp);
            }
        }
    }
    let [ab, ba] = flows;
    (ab.unwrap_or_else(Flow::abandoned), ba.unwrap_or_else(Flow::abandoned), failed)
}

/// A sink for a read-only file endpoint: drops data, warning once.
struct ReadOnlySink {
    name: String,
    warned: bool,
}

impl AsyncResource for ReadOnlySink {
    async fn aclose(&mut self) -> crate::streams::Result<()> {
        Ok(())
    }
}
impl TypedAttributeProvider for ReadOnlySink {}
impl ByteSendStream for ReadOnlySink {
    async fn send(&mut self, data: Bytes) -> crate::streams::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::IdleLimit;

    fn endpoint(s: &str) -> Endpoint {
        s.parse().expect("an endpoint")
    }

    #[test]
    fn a_tls_terminator_gets_an_idle_limit_by_default_and_flags_win() {
        let (tls, tcp, stdio) =
            (endpoint("tls-listen:127.0.0.1:0"), endpoint("tcp:127.0.0.1:1"), endpoint("stdio"));
        assert_eq!(idle_limit(None, &tls, &tcp), Some(crate::stack::options::TLS_TERMINATOR_IDLE));
        assert_eq!(idle_limit(None, &stdio, &tcp), None);
        let five = std::time::Duration::from_secs(5);
        assert_eq!(idle_limit(Some(IdleLimit(None)), &tls, &tcp), None);
        assert_eq!(idle_limit(Some(IdleLimit(Some(five))), &stdio, &tcp), Some(five));
        let option = endpoint("tls-listen:127.0.0.1:0,idle-timeout=none");
        assert_eq!(idle_limit(None, &option, &tcp), None);
        let option = endpoint("tcp:127.0.0.1:1,idle-timeout=5s");
        assert_eq!(idle_limit(None, &tls, &option), Some(five));
    }
}
