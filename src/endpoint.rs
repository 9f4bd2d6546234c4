//! Addresses on the command line: what `serve` listens on and what `connect` reaches.
//! (`pipe`'s full endpoint grammar builds on these.)

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::streams::error::Result;
use crate::streams::listener::{ListenOptions, SocketListener};
use crate::streams::socket::{FamilyPreference, host_port, resolve};

const LISTEN_FORMS: &str = "expected PORT, HOST:PORT, [IPv6]:PORT or unix:PATH";
const CONNECT_FORMS: &str = "expected HOST:PORT, [IPv6]:PORT or unix:PATH";

/// Where `serve` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    /// A bare port: loopback only, IPv4 and IPv6 (docs/design.md §4.5).
    LoopbackPort(u16),
    /// An IP address and port (`0.0.0.0:8080`, `[::]:8080`).
    Socket(SocketAddr),
    /// A host name and port: every address it resolves to.
    Host(String, u16),
    /// A UNIX socket path.
    Unix(PathBuf),
    /// The sockets a service manager passed (`systemd`, or `systemd:NAME` for those named
    /// NAME by `FileDescriptorName=`): socket activation.
    Systemd(Option<String>),
}

/// Where `connect` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectAddress {
    /// A host (name or IP literal, without brackets) and port.
    Tcp(String, u16),
    /// A UNIX socket path.
    Unix(PathBuf),
}

fn parse_port(s: &str, whole: &str, forms: &str) -> std::result::Result<u16, String> {
    s.parse::<u16>().map_err(|_| format!("invalid port {s:?} in {whole:?} ({forms})"))
}

/// Splits `HOST:PORT` / `[V6]:PORT` into host (brackets removed) and port text.
fn split_host_port<'a>(s: &'a str, forms: &str) -> std::result::Result<(&'a str, &'a str), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) =
            rest.split_once(']').ok_or_else(|| format!("invalid address {s:?}: missing ']' ({forms})"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("invalid address {s:?}: missing :PORT ({forms})"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("invalid address {s:?}: only an IPv6 address goes in brackets ({forms})"));
        }
        return Ok((host, port));
    }
    let (host, port) =
        s.rsplit_once(':').ok_or_else(|| format!("invalid address {s:?}: missing :PORT ({forms})"))?;
    if host.contains(':') {
        // Suggest the bracketed form only when it would be right (and is safe to print
        // unquoted): an IPv6 literal and a numeric port.
        let v6 = host.parse::<std::net::Ipv6Addr>().is_ok() && port.bytes().all(|b| b.is_ascii_digit());
        return Err(if v6 {
            format!("invalid address {s:?}: write IPv6 addresses in brackets, [{host}]:{port}")
        } else {
            format!("invalid address {s:?}: a host cannot contain ':' ({forms})")
        });
    }
    if host.is_empty() {
        return Err(format!("invalid address {s:?}: missing host ({forms})"));
    }
    Ok((host, port))
}

fn unix_path(s: &str) -> Option<std::result::Result<PathBuf, String>> {
    let path = s.strip_prefix("unix:")?;
    if let Err(refused) = crate::platform::Feature::UnixSockets.check() {
        return Some(Err(refused));
    }
    Some(if path.is_empty() {
        Err("unix: needs a path, as in unix:/tmp/app.sock".to_string())
    } else {
        Ok(PathBuf::from(path))
    })
}

impl FromStr for ListenAddress {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(path) = unix_path(s) {
            return path.map(ListenAddress::Unix);
        }
        if s == "systemd" || s.starts_with("systemd:") {
            crate::platform::Feature::SocketActivation.check()?;
        }
        if s == "systemd" {
            return Ok(ListenAddress::Systemd(None));
        }
        if let Some(name) = s.strip_prefix("systemd:") {
            if name.is_empty() || name.contains(':') {
                return Err(format!(
                    "invalid address {s:?}: systemd:NAME names the sockets of FileDescriptorName=NAME"
                ));
            }
            return Ok(ListenAddress::Systemd(Some(name.to_string())));
        }
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
            return parse_port(s, s, LISTEN_FORMS).map(ListenAddress::LoopbackPort);
        }
        let (host, port) = split_host_port(s, LISTEN_FORMS)?;
        let port = parse_port(port, s, LISTEN_FORMS)?;
        Ok(match host.parse::<IpAddr>() {
            Ok(ip) => ListenAddress::Socket(SocketAddr::new(ip, port)),
            Err(_) => ListenAddress::Host(host.to_string(), port),
        })
    }
}

impl FromStr for ConnectAddress {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(path) = unix_path(s) {
            return path.map(ConnectAddress::Unix);
        }
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
            // `connect 8080`: a port with no host (a listener's bare PORT is loopback; a
            // client names where it goes).
            return Err(format!(
                "invalid address {s:?}: missing host: name where to connect, as in localhost:{s} \
                 or 127.0.0.1:{s} ({CONNECT_FORMS})"
            ));
        }
        let (host, port) = split_host_port(s, CONNECT_FORMS)?;
        let port = parse_port(port, s, CONNECT_FORMS)?;
        if port == 0 {
            return Err(format!("invalid address {s:?}: port 0 cannot be connected to"));
        }
        Ok(ConnectAddress::Tcp(host.to_string(), port))
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddress::LoopbackPort(port) => write!(f, "localhost:{port}"),
            ListenAddress::Socket(addr) => write!(f, "{addr}"),
            ListenAddress::Host(host, port) => f.write_str(&host_port(host, *port)),
            ListenAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            ListenAddress::Systemd(None) => f.write_str("systemd"),
            ListenAddress::Systemd(Some(name)) => write!(f, "systemd:{name}"),
        }
    }
}

impl fmt::Display for ConnectAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectAddress::Tcp(host, port) => f.write_str(&host_port(host, *port)),
            ConnectAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl ListenAddress {
    /// Binds it.
    ///
    /// # Errors
    /// [`crate::streams::StreamError::Bind`] or [`crate::streams::StreamError::Resolve`].
    pub async fn bind(&self, family: FamilyPreference) -> Result<SocketListener> {
        self.bind_with(family, ListenOptions::default()).await
    }

    /// [`bind`](Self::bind) with the TCP sockets set up by `options` (passed sockets are
    /// taken as they are).
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub async fn bind_with(
        &self,
        family: FamilyPreference,
        options: ListenOptions,
    ) -> Result<SocketListener> {
        match self {
            ListenAddress::LoopbackPort(port) => match family {
                FamilyPreference::Any => SocketListener::bind_tcp_loopback_with(*port, options).await,
                FamilyPreference::V4Only => {
                    SocketListener::bind_tcp_with(([127, 0, 0, 1], *port).into(), options).await
                }
                FamilyPreference::V6Only => {
                    let addr = SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), *port);
                    SocketListener::bind_tcp_with(addr, options).await
                }
            },
            ListenAddress::Systemd(name) => SocketListener::from_systemd(name.as_deref()),
            ListenAddress::Socket(addr) => {
                // `-4 [::1]:0` or `-6 0.0.0.0:0`: the address contradicts the family asked for.
                if !family.admits(addr) {
                    let asked = if addr.is_ipv4() { "-6 asks for IPv6" } else { "-4 asks for IPv4" };
                    return Err(crate::streams::StreamError::Bind {
                        addr: addr.to_string(),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, asked),
                    });
                }
                SocketListener::bind_tcp_with(*addr, options).await
            }
            ListenAddress::Host(host, port) => {
                let mut listener: Option<SocketListener> = None;
                for addr in resolve(host, *port, family).await? {
                    let next = SocketListener::bind_tcp_with(addr, options).await?;
                    listener = Some(match listener {
                        Some(l) => l.merge(next),
                        None => next,
                    });
                }
                Ok(listener.expect("resolve returns at least one address"))
            }
            ListenAddress::Unix(path) => SocketListener::bind_unix(path).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!("8080".parse(), Ok(ListenAddress::LoopbackPort(8080)));
        assert_eq!("0".parse(), Ok(ListenAddress::LoopbackPort(0)));
        assert_eq!("0.0.0.0:80".parse(), Ok(ListenAddress::Socket("0.0.0.0:80".parse().unwrap())));
        assert_eq!("[::]:80".parse(), Ok(ListenAddress::Socket("[::]:80".parse().unwrap())));
        assert_eq!("localhost:80".parse(), Ok(ListenAddress::Host("localhost".into(), 80)));
        assert_eq!("unix:/tmp/s".parse(), Ok(ListenAddress::Unix("/tmp/s".into())));
        for bad in
            ["", "70000", "host", "::1:80", "[::1]80", ":80", "unix:", "a:b", "[[81]:80", "[127.0.0.1]:80"]
        {
            assert!(bad.parse::<ListenAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_addresses() {
        assert_eq!("example.com:443".parse(), Ok(ConnectAddress::Tcp("example.com".into(), 443)));
        assert_eq!("[::1]:8443".parse(), Ok(ConnectAddress::Tcp("::1".into(), 8443)));
        assert_eq!("unix:/run/x.sock".parse(), Ok(ConnectAddress::Unix("/run/x.sock".into())));
        for bad in ["443", "host:0", "host:", "::1:80", "host:http"] {
            let err = bad.parse::<ConnectAddress>().unwrap_err();
            assert!(err.contains(bad) || err.contains("port"), "{bad}: {err}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// `pipe` endpoints

/// The kinds of `pipe` endpoint: a closed set, as socat's and websocat's address types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointKind {
    /// `-` or `stdio`: stdin and stdout.
    Stdio,
    /// `tcp:HOST:PORT`.
    Tcp(String, u16),
    /// `tcp-listen:[HOST:]PORT` (alias `tcp-l`).
    TcpListen(ListenAddress),
    /// `tls:HOST:PORT`.
    Tls(String, u16),
    /// `tls-listen:[HOST:]PORT` (alias `tls-l`).
    TlsListen(ListenAddress),
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `unix-listen:PATH` (alias `unix-l`).
    UnixListen(PathBuf),
    /// `exec:CMD`, run with `sh -c`.
    Exec(String),
    /// `file:PATH`: read from it, or with `create`/`append`/`truncate`, write to it.
    File(PathBuf),
    /// `replay:FILE`: one direction of a transcript played back ([`crate::tap::replay`]).
    Replay(PathBuf),
    /// `udp:HOST:PORT`: a connected UDP socket.
    Udp(String, u16),
    /// `udp-listen:[HOST:]PORT` (alias `udp-l`): a session per peer with `fork`, else the
    /// first peer only.
    UdpListen(ListenAddress),
    /// `unix-dgram:PATH`: a UNIX datagram socket connected to PATH.
    UnixDgram(PathBuf),
}

/// Per-endpoint options, named as the `serve`/`connect` flags are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointOptions {
    /// `fork`: serve each accepted connection with a fresh instance of the other endpoint.
    pub fork: bool,
    /// `cert=FILE` (repeatable on a server: chosen by SNI, the first the default).
    pub cert: Vec<PathBuf>,
    /// `key=FILE` (repeatable: one per `cert=`, in order).
    pub key: Vec<PathBuf>,
    /// `ca=FILE` (alias `cacert`).
    pub ca: Option<PathBuf>,
    /// `pin=sha256:HEX` (repeatable).
    pub pins: Vec<crate::streams::tls::Pin>,
    /// `sni=NAME`.
    pub sni: Option<String>,
    /// `no-sni`.
    pub no_sni: bool,
    /// `alpn=P1,P2` (further protocols after commas belong to the list).
    pub alpn: Vec<String>,
    /// `tls-min=1.2`.
    pub tls_min: Option<crate::streams::tls::TlsVersion>,
    /// `tls-max=1.3`.
    pub tls_max: Option<crate::streams::tls::TlsVersion>,
    /// `ragged-eof=strict|warn|ignore`.
    pub ragged_eof: Option<crate::streams::tls::RaggedEofPolicy>,
    /// `keylog=FILE`.
    pub keylog: Option<PathBuf>,
    /// `insecure`.
    pub insecure: bool,
    /// `tofu` (`connect --tofu`): trust on first use, by the known-hosts file
    /// ([`crate::stack::tofu`]).
    pub tofu: bool,
    /// `client-ca=FILE`.
    pub client_ca: Option<PathBuf>,
    /// `require-client-cert`.
    pub require_client_cert: bool,
    /// `delimiter=D` (escapes as `--delimiter`).
    pub delimiter: Option<Vec<u8>>,
    /// `max-frame=SIZE`.
    pub max_frame: Option<usize>,
    /// `on-oversize=error|skip`.
    pub on_oversize: Option<crate::streams::framing::Oversize>,
    /// `encoding=NAME`.
    pub encoding: Option<crate::streams::encoding::TextEncoding>,
    /// `decode-errors=strict|replace`.
    pub decode_errors: Option<crate::streams::encoding::ErrorMode>,
    /// `crlf`.
    pub crlf: bool,
    /// `connect-timeout=DURATION`.
    pub connect_timeout: Option<std::time::Duration>,
    /// `handshake-timeout=DURATION`.
    pub handshake_timeout: Option<std::time::Duration>,
    /// `idle-timeout=DURATION|none`: the relay's idle limit (either endpoint may set it).
    pub idle_timeout: Option<crate::values::IdleLimit>,
    /// `create`, `append` or `truncate` (file sinks).
    pub write_mode: Option<crate::streams::file::WriteMode>,
    /// `on-eof=half-close|keep-open|close`: what the end of the data going to this
    /// endpoint does (default: half-close; keep-open for `tls:`).
    pub on_eof: Option<crate::relay::OnEof>,
    /// `proxy-protocol=v1|v2` (`--proxy-protocol`): a PROXY protocol header is sent first
    /// on the connection opened (docs/proxy-protocol.md).
    pub proxy_protocol: Option<crate::proxy_protocol::Version>,
    /// The connection that header names: set by `pipe` for each accepted client; without
    /// it, the opened socket's own source and destination.
    pub proxy_origin: Option<crate::proxy_protocol::Origin>,
    /// `accept-proxy` (`--accept-proxy`): each accepted connection starts with a PROXY
    /// header (v1 or v2), from a trusted proxy only.
    pub accept_proxy: bool,
    /// `proxy-from=CIDR` (`--proxy-from`, repeatable): the proxies trusted to send it;
    /// none given: loopback only.
    pub proxy_from: Vec<crate::proxy_protocol::Cidr>,
    /// `starttls=PROTO` (`--starttls`): negotiate TLS in the protocol's plaintext first.
    pub starttls: Option<crate::stack::starttls::Protocol>,
    /// `ehlo=NAME` (`--ehlo`): the name in SMTP's EHLO and LMTP's LHLO.
    pub ehlo: Option<String>,
    /// `proxy=URL` (`connect --proxy`): reach a TCP target through this proxy
    /// ([`crate::stack::proxy`]).
    pub proxy: Option<crate::stack::proxy::ProxySpec>,
    /// `dump=`, `dump-file=`, `dump-layer=`, `dump-max=`, `transcript=`, `pcap=`,
    /// `pcap-layer=`, `force` (`--dump` and the others): what is recorded of the traffic
    /// ([`crate::tap`]).
    pub tap: crate::tap::TapOptions,
    /// The recording those options opened ([`EndpointOptions::open_recorder`]), shared
    /// by every connection of the endpoint.
    pub recorder: Option<crate::tap::Shared>,
    /// `conn=N`, `dir=in|out`, `timing=original|fast` (`replay:` endpoints).
    pub replay: crate::tap::replay::ReplayOptions,
    /// `source=ADDR[:PORT]` (`connect --source`): the local address a client connects from.
    pub source: Option<std::net::SocketAddr>,
    /// `keepalive[=IDLE]` (`--keepalive`): TCP keepalive, probing after IDLE (default 60 s).
    pub keepalive: Option<std::time::Duration>,
    /// `reuse-port` (`serve --reuse-port`): SO_REUSEPORT on the listening sockets, so that
    /// several processes serve one port.
    pub reuse_port: bool,
    /// `retry=N|forever`, `retry-delay=DURATION` (`connect --retry`): attempts after a
    /// failed connect.
    pub retry: Option<crate::stack::service::Retry>,
    /// `allow=CIDR`, `deny=CIDR`, `allow-file=`, `deny-file=` (`serve --allow` and the
    /// others): who may connect to a listening endpoint.
    pub access: crate::stack::service::AccessList,
    /// `cert-dir=DIR`, `reload-on-change`, `keep-pin` (`tls-listen:`; serve's
    /// `--cert-dir` and the others): [`crate::stack::reload`].
    pub reload: crate::stack::reload::ReloadOptions,
    /// `length-prefix` (`-u --length-prefix`): datagrams meet the byte side with a 2-byte
    /// big-endian length each, instead of lines ([`crate::job::datagram`]).
    pub length_prefix: bool,
}

impl EndpointOptions {
    /// The first option set that datagrams do not use (TLS, STARTTLS, proxies, text,
    /// CRLF, frame limits, on-eof, keepalive, retries, recordings), by its name.
    pub fn datagram_misfit(&self) -> Option<&'static str> {
        let o = self;
        let tls = !o.cert.is_empty() || o.ca.is_some() || !o.pins.is_empty() || o.client_ca.is_some();
        [
            ("tls (cert, ca, pin, client-ca)", tls || o.sni.is_some() || o.insecure || o.tofu),
            ("starttls", o.starttls.is_some()),
            ("proxy", o.proxy.is_some()),
            ("proxy-protocol", o.proxy_protocol.is_some()),
            ("accept-proxy", o.accept_proxy),
            ("encoding", o.encoding.is_some() || o.decode_errors.is_some()),
            ("crlf", o.crlf),
            ("max-frame", o.max_frame.is_some() || o.on_oversize.is_some()),
            ("on-eof", o.on_eof.is_some()),
            ("keepalive", o.keepalive.is_some()),
            ("retry", o.retry.is_some()),
            ("dump, transcript and pcap", o.tap.is_on()),
            ("create, append and truncate", o.write_mode.is_some()),
        ]
        .into_iter()
        .find_map(|(name, on)| on.then_some(name))
    }
}

/// One side of `pipe`: a kind and its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// What it is.
    pub kind: EndpointKind,
    /// How it is set up.
    pub options: EndpointOptions,
}

const TYPES: &[&str] = &[
    "stdio",
    "tcp",
    "tcp-listen",
    "tcp-l",
    "tls",
    "tls-listen",
    "tls-l",
    "unix",
    "unix-listen",
    "unix-l",
    "exec",
    "file",
    "replay",
    "udp",
    "udp-listen",
    "udp-l",
    "unix-dgram",
];

/// Options that take a value, and flags.
const VALUE_OPTIONS: &[&str] = &[
    "cert",
    "key",
    "cert-dir",
    "ca",
    "cacert",
    "pin",
    "sni",
    "alpn",
    "tls-min",
    "tls-max",
    "ragged-eof",
    "keylog",
    "client-ca",
    "allow-cn",
    "allow-san",
    "allow-spki",
    "delimiter",
    "max-frame",
    "on-oversize",
    "encoding",
    "decode-errors",
    "connect-timeout",
    "handshake-timeout",
    "on-eof",
    "idle-timeout",
    "proxy-protocol",
    "proxy-from",
    "starttls",
    "ehlo",
    "proxy",
    "dump",
    "dump-file",
    "dump-layer",
    "dump-max",
    "transcript",
    "pcap",
    "pcap-layer",
    "conn",
    "dir",
    "timing",
    "source",
    "retry",
    "retry-delay",
    "allow",
    "deny",
    "allow-file",
    "deny-file",
];
const FLAG_OPTIONS: &[&str] = &[
    "fork",
    "no-sni",
    "insecure",
    "tofu",
    "require-client-cert",
    "crlf",
    "create",
    "append",
    "truncate",
    "accept-proxy",
    "force",
    "keepalive",
    "reuse-port",
    "reload-on-change",
    "keep-pin",
    "length-prefix",
];

/// The edit distance between two short words, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn suggestion(word: &str, candidates: &[&str]) -> String {
    match nearest(word, candidates) {
        Some(near) => format!(" (did you mean {near}?)"),
        None => String::new(),
    }
}

/// Whether a comma-separated piece is an option: a known flag, or `name=value` with a
/// name made of letters, digits and dashes (unknown names are then reported, with a
/// suggestion, instead of silently joining the address).
fn is_option_token(token: &str) -> bool {
    match token.split_once('=') {
        Some((name, _)) => {
            let name = name.trim();
            name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !name.contains(' ')
        }
        None => FLAG_OPTIONS.contains(&token.trim().to_ascii_lowercase().as_str()),
    }
}

/// Splits `body,opt,opt=value` into the body and the options.
///
/// A comma-separated piece is an option when it is `name=value`, a known flag, or the
/// bare name of a value option (reported as missing its value). Other pieces continue
/// an `alpn=` list (`alpn=h2,http/1.1`); where the body may hold commas (`exec:sort -t,
/// -k2`, file and UNIX paths) and no option has been seen yet, they continue the body;
/// anywhere else they are unknown options, reported with a suggestion (`frok`).
fn split_options(rest: &str, body_may_have_commas: bool) -> (String, Vec<String>) {
    let mut pieces = rest.split(',');
    let mut body = pieces.next().unwrap_or_default().to_string();
    let mut options: Vec<String> = Vec::new();
    for piece in pieces {
        let bare = piece.trim().to_ascii_lowercase();
        let continues_alpn =
            options.last().is_some_and(|last| last.to_ascii_lowercase().starts_with("alpn="));
        if is_option_token(piece) || VALUE_OPTIONS.contains(&bare.as_str()) {
            options.push(piece.to_string());
        } else if continues_alpn {
            let last = options.last_mut().expect("checked above");
            last.push(',');
            last.push_str(piece);
        } else if body_may_have_commas && options.is_empty() {
            body.push(',');
            body.push_str(piece);
        } else {
            options.push(piece.to_string());
        }
    }
    (body, options)
}

fn tcp_target(body: &str, whole: &str) -> std::result::Result<(String, u16), String> {
    match body.parse::<ConnectAddress>() {
        Ok(ConnectAddress::Tcp(host, port)) => Ok((host, port)),
        Ok(ConnectAddress::Unix(_)) => {
            Err(format!("endpoint {whole:?}: expected HOST:PORT after the type, as in tcp:127.0.0.1:8080"))
        }
        Err(e) => Err(format!("endpoint {whole:?}: {e}")),
    }
}

impl FromStr for Endpoint {
    type Err = String;

    /// Parses an endpoint; an error message never shows a proxy URL's credentials.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Endpoint::parse(s).map_err(|e| crate::stack::proxy::redact_url(&e))
    }
}

impl Endpoint {
    fn parse(s: &str) -> std::result::Result<Self, String> {
        if let Some(rest) = s.strip_prefix('-').filter(|r| r.is_empty() || r.starts_with(',')) {
            return format!("stdio{rest}").parse();
        }
        let (kind_name, rest) = match s.split_once(':') {
            Some((k, r)) if !k.contains(',') => (k.to_ascii_lowercase(), r),
            _ => {
                let (k, r) = s.split_once(',').unwrap_or((s, ""));
                (k.to_ascii_lowercase(), if r.is_empty() { "" } else { &s[k.len()..] })
            }
        };
        let body_may_have_commas =
            matches!(kind_name.as_str(), "exec" | "file" | "unix" | "unix-listen" | "unix-l" | "unix-dgram");
        let (body, options) = split_options(rest, body_may_have_commas);
        if kind_name == "stdio" && !body.is_empty() {
            return Err(format!(
                "endpoint {s:?}: stdio takes no address (options go after a comma: stdio,crlf)"
            ));
        }
        let need_body = |what: &str| -> std::result::Result<(), String> {
            if body.is_empty() { Err(format!("endpoint {s:?}: {kind_name} needs {what}")) } else { Ok(()) }
        };
        let kind = match kind_name.as_str() {
            "stdio" => EndpointKind::Stdio,
            "tcp" => {
                let (h, p) = tcp_target(&body, s)?;
                EndpointKind::Tcp(h, p)
            }
            "tls" | "ssl" => {
                let (h, p) = tcp_target(&body, s)?;
                EndpointKind::Tls(h, p)
            }
            "tcp-listen" | "tcp-l" | "tls-listen" | "tls-l" | "ssl-listen" | "ssl-l" => {
                need_body("[HOST:]PORT")?;
                let addr: ListenAddress = body.parse().map_err(|e| format!("endpoint {s:?}: {e}"))?;
                if matches!(addr, ListenAddress::Unix(_)) {
                    return Err(format!("endpoint {s:?}: use unix-listen:PATH for UNIX sockets"));
                }
                if kind_name.starts_with("tcp") {
                    EndpointKind::TcpListen(addr)
                } else {
                    EndpointKind::TlsListen(addr)
                }
            }
            "unix" => {
                crate::platform::Feature::UnixSockets.check()?;
                need_body("a path")?;
                EndpointKind::Unix(PathBuf::from(&body))
            }
            "unix-listen" | "unix-l" => {
                crate::platform::Feature::UnixSockets.check()?;
                need_body("a path")?;
                EndpointKind::UnixListen(PathBuf::from(&body))
            }
            "exec" => {
                crate::platform::Feature::Shell.check()?;
                need_body("a command")?;
                EndpointKind::Exec(body.clone())
            }
            "file" => {
                need_body("a path")?;
                EndpointKind::File(PathBuf::from(&body))
            }
            "replay" => {
                need_body("a transcript file")?;
                EndpointKind::Replay(PathBuf::from(&body))
            }
            "udp" => {
                let (h, p) = tcp_target(&body, s)?;
                EndpointKind::Udp(h, p)
            }
            "udp-listen" | "udp-l" => {
                need_body("[HOST:]PORT")?;
                match body.parse().map_err(|e| format!("endpoint {s:?}: {e}"))? {
                    ListenAddress::Unix(_) => return Err(format!("endpoint {s:?}: expected [HOST:]PORT")),
                    addr => EndpointKind::UdpListen(addr),
                }
            }
            "unix-dgram" => {
                crate::platform::Feature::UnixSockets.check()?;
                need_body("a path")?;
                EndpointKind::UnixDgram(PathBuf::from(&body))
            }
            other => {
                return Err(format!(
                    "unknown endpoint type {other:?} in {s:?}{} (types: -, stdio, tcp, tcp-listen, tls, tls-listen, unix, unix-listen, exec, file, replay, udp, udp-listen, unix-dgram)",
                    suggestion(other, TYPES)
                ));
            }
        };
        let mut endpoint = Endpoint { kind, options: EndpointOptions::default() };
        for option in options {
            endpoint.apply_option(&option).map_err(|e| format!("endpoint {s:?}: {e}"))?;
        }
        endpoint.check().map_err(|e| format!("endpoint {s:?}: {e}"))?;
        Ok(endpoint)
    }
}

impl Endpoint {
    fn apply_option(&mut self, option: &str) -> std::result::Result<(), String> {
        use crate::values::{parse_delimiter, parse_duration, parse_size};
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v)),
            None => (option.trim().to_ascii_lowercase(), None),
        };
        let o = &mut self.options;
        let value_of = |what: &str| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("option {name} needs a value ({name}={what})"))
        };
        match name.as_str() {
            "fork" => o.fork = true,
            "no-sni" => o.no_sni = true,
            "insecure" => o.insecure = true,
            "tofu" => o.tofu = true,
            "require-client-cert" => o.require_client_cert = true,
            "crlf" => o.crlf = true,
            "create" => o.write_mode = Some(crate::streams::file::WriteMode::CreateNew),
            "append" => o.write_mode = Some(crate::streams::file::WriteMode::Append),
            "truncate" => o.write_mode = Some(crate::streams::file::WriteMode::Truncate),
            "cert" => o.cert.push(value_of("FILE")?.into()),
            "key" => o.key.push(value_of("FILE")?.into()),
            "cert-dir" => o.reload.cert_dir = Some(value_of("DIR")?.into()),
            "reload-on-change" => o.reload.reload_on_change = true,
            "keep-pin" => o.reload.keep_pin = true,
            "length-prefix" => o.length_prefix = true,
            "allow-cn" => o.reload.allow.cns.push(value_of("NAME")?.to_string()),
            "allow-san" => o.reload.allow.sans.push(value_of("VALUE")?.to_string()),
            "allow-spki" => o.reload.allow.spki.push(value_of("sha256:HEX")?.parse()?),
            "ca" | "cacert" => o.ca = Some(value_of("FILE")?.into()),
            "client-ca" => o.client_ca = Some(value_of("FILE")?.into()),
            "keylog" => o.keylog = Some(value_of("FILE")?.into()),
            "pin" => o.pins.push(value_of("sha256:HEX")?.parse()?),
            "sni" => {
                let name = value_of("NAME")?;
                crate::streams::tls::server_name(name).map_err(|e| format!("sni: {e}"))?;
                o.sni = Some(name.to_string())
            }
            "alpn" => {
                o.alpn =
                    value_of("h2,http/1.1")?.split(',').filter(|p| !p.is_empty()).map(String::from).collect();
                // RFC 7301: each protocol name is 1 to 255 bytes, and the list is not empty.
                if o.alpn.is_empty() {
                    return Err("option alpn needs at least one protocol name (alpn=h2,http/1.1)".to_string());
                }
                if let Some(long) = o.alpn.iter().find(|p| p.len() > 255) {
                    return Err(format!("an ALPN protocol name is {} bytes; at most 255", long.len()));
                }
            }
            "tls-min" => o.tls_min = Some(value_of("1.2")?.parse()?),
            "tls-max" => o.tls_max = Some(value_of("1.3")?.parse()?),
            "ragged-eof" => o.ragged_eof = Some(value_of("strict")?.parse()?),
            "delimiter" => o.delimiter = Some(parse_delimiter(value_of("\\n")?)?),
            "max-frame" => o.max_frame = Some(parse_size(value_of("64KiB")?)?),
            "on-oversize" => {
                o.on_oversize = Some(match value_of("error")?.to_ascii_lowercase().as_str() {
                    "error" => crate::streams::framing::Oversize::Error,
                    "skip" => crate::streams::framing::Oversize::Skip,
                    v => return Err(format!("on-oversize={v:?}: expected error or skip")),
                })
            }
            "encoding" => o.encoding = Some(value_of("latin1")?.parse()?),
            "decode-errors" => o.decode_errors = Some(value_of("strict")?.parse()?),
            "connect-timeout" => o.connect_timeout = Some(parse_duration(value_of("5s")?)?),
            "handshake-timeout" => o.handshake_timeout = Some(parse_duration(value_of("10s")?)?),
            "on-eof" => o.on_eof = Some(value_of("half-close")?.parse()?),
            "idle-timeout" => o.idle_timeout = Some(crate::values::parse_idle_limit(value_of("5m")?)?),
            "proxy-protocol" => o.proxy_protocol = Some(value_of("v2")?.parse()?),
            "accept-proxy" => o.accept_proxy = true,
            "proxy-from" => o.proxy_from.push(value_of("10.0.0.0/8")?.parse()?),
            "starttls" => o.starttls = Some(value_of("smtp")?.parse()?),
            "ehlo" => {
                let name = value_of("NAME")?;
                crate::stack::starttls::check_ehlo_name(name)?;
                o.ehlo = Some(name.to_string())
            }
            "proxy" => o.proxy = Some(value_of("socks5h://HOST:PORT")?.parse()?),
            "dump" => o.tap.dump = Some(value_of("hex")?.parse()?),
            "dump-file" => o.tap.dump_file = Some(value_of("FILE")?.into()),
            "dump-layer" => o.tap.dump_layer = value_of("tls")?.parse()?,
            "dump-max" => o.tap.dump_max = Some(parse_size(value_of("SIZE")?)? as u64),
            "transcript" => o.tap.transcript = Some(value_of("FILE")?.into()),
            "pcap" => o.tap.pcap = Some(value_of("FILE")?.into()),
            "pcap-layer" => o.tap.pcap_layer = value_of("tls")?.parse()?,
            "force" => o.tap.force = true,
            "source" => o.source = Some(crate::stack::service::parse_source(value_of("ADDR[:PORT]")?)?),
            "keepalive" => o.keepalive = Some(crate::stack::service::parse_keepalive(value)?),
            "reuse-port" => {
                crate::platform::Feature::ReusePort.check()?;
                o.reuse_port = true
            }
            "allow" => o.access.allow.push(value_of("CIDR")?.parse()?),
            "deny" => o.access.deny.push(value_of("CIDR")?.parse()?),
            "allow-file" => o.access.allow_files.push(value_of("FILE")?.into()),
            "deny-file" => o.access.deny_files.push(value_of("FILE")?.into()),
            "retry" => {
                let delay = o.retry.map(|r| r.delay);
                o.retry = Some(crate::stack::service::Retry::parse(value_of("N")?, delay)?)
            }
            "retry-delay" => {
                let delay = parse_duration(value_of("DURATION")?)?;
                o.retry = Some(crate::stack::service::Retry { delay, ..o.retry.unwrap_or_default() })
            }
            "conn" => {
                o.replay.conn =
                    Some(value_of("N")?.parse().map_err(|_| {
                        format!("conn={} is not a connection number", value.unwrap_or_default())
                    })?)
            }
            "dir" => {
                o.replay.dir = Some(match value_of("out")? {
                    "in" => crate::tap::dump::Direction::In,
                    "out" => crate::tap::dump::Direction::Out,
                    other => return Err(format!("dir={other}: in or out")),
                })
            }
            "timing" => {
                o.replay.fast = match value_of("fast")? {
                    "original" => false,
                    "fast" => true,
                    other => return Err(format!("timing={other}: original or fast")),
                }
            }
            other => {
                let all: Vec<&str> = VALUE_OPTIONS.iter().chain(FLAG_OPTIONS).copied().collect();
                return Err(format!("unknown option {other:?}{}", suggestion(other, &all)));
            }
        }
        if value.is_some() && FLAG_OPTIONS.contains(&name.as_str()) && name != "keepalive" {
            return Err(format!("option {name} takes no value"));
        }
        Ok(())
    }

    /// Options that make no sense for the kind.
    fn check(&self) -> std::result::Result<(), String> {
        let o = &self.options;
        if self.is_datagram() {
            let listening = matches!(self.kind, EndpointKind::UdpListen(_));
            if (o.fork || o.access.is_on() || o.reuse_port) && !listening {
                return Err(
                    "fork, allow, deny and reuse-port apply to udp-listen: among datagram endpoints".into()
                );
            }
            if o.source.is_some() && !matches!(self.kind, EndpointKind::Udp(..)) {
                return Err("source applies to udp: among datagram endpoints".into());
            }
            return match o.datagram_misfit() {
                Some(name) => {
                    Err(format!("{name} does not apply to datagram endpoints (udp, udp-listen, unix-dgram)"))
                }
                None => Ok(()),
            };
        }
        if o.length_prefix {
            return Err("length-prefix applies to datagram endpoints (udp, udp-listen, unix-dgram)".into());
        }
        let listening = self.is_listener();
        let tls_client = matches!(self.kind, EndpointKind::Tls(..));
        let tls_server = matches!(self.kind, EndpointKind::TlsListen(_));
        let network = tls_client
            || tls_server
            || matches!(self.kind, EndpointKind::Tcp(..) | EndpointKind::Unix(_))
            || listening;
        if o.tap.is_on() && !network {
            return Err("dump, transcript and pcap apply to network endpoints (tcp, tls, unix and their -listen forms)".into());
        }
        let t = &o.tap;
        if (t.dump_file.is_some() || t.dump_max.is_some() || t.dump_layer != Default::default())
            && t.dump.is_none()
        {
            return Err("dump-file, dump-max and dump-layer need dump=text|hex".into());
        }
        if t.pcap_layer != Default::default() && t.pcap.is_none() {
            return Err("pcap-layer needs pcap=FILE".into());
        }
        if o.replay != Default::default() && !matches!(self.kind, EndpointKind::Replay(_)) {
            return Err("conn, dir and timing apply to replay: endpoints".into());
        }
        let client =
            matches!(self.kind, EndpointKind::Tcp(..) | EndpointKind::Tls(..) | EndpointKind::Unix(_));
        if (o.source.is_some() || o.retry.is_some()) && !client {
            return Err("source, retry and retry-delay apply to tcp:, tls: and unix: endpoints".into());
        }
        if o.source.is_some() && matches!(self.kind, EndpointKind::Unix(_)) {
            return Err("source applies to tcp: and tls: endpoints".into());
        }
        if o.access.is_on() && !matches!(self.kind, EndpointKind::TcpListen(_) | EndpointKind::TlsListen(_)) {
            return Err(
                "allow, deny, allow-file and deny-file apply to tcp-listen: and tls-listen: endpoints".into(),
            );
        }
        if o.reuse_port && !matches!(self.kind, EndpointKind::TcpListen(_) | EndpointKind::TlsListen(_)) {
            return Err("reuse-port applies to tcp-listen: and tls-listen: endpoints".into());
        }
        if o.keepalive.is_some()
            && matches!(
                self.kind,
                EndpointKind::Stdio
                    | EndpointKind::Exec(_)
                    | EndpointKind::File(_)
                    | EndpointKind::Replay(_)
                    | EndpointKind::Unix(_)
                    | EndpointKind::UnixListen(_)
            )
        {
            return Err("keepalive applies to TCP endpoints (tcp, tls and their -listen forms)".into());
        }
        if o.fork && !listening {
            return Err("fork applies to listening endpoints (tcp-listen, tls-listen, unix-listen)".into());
        }
        let client_only = o.ca.is_some() || !o.pins.is_empty() || o.sni.is_some() || o.no_sni || o.insecure;
        if client_only && !tls_client {
            return Err("ca, pin, sni, no-sni and insecure apply to tls: endpoints".into());
        }
        if o.tofu && !tls_client {
            return Err("tofu applies to tls: endpoints".into());
        }
        if o.tofu && (o.insecure || !o.pins.is_empty()) {
            let other = if o.insecure { "insecure" } else { "pin" };
            return Err(format!(
                "tofu cannot be combined with {other} (tofu verifies the server by its key pin in the known-hosts file)"
            ));
        }
        let server_only = o.client_ca.is_some() || o.require_client_cert;
        if server_only && !tls_server {
            return Err("client-ca and require-client-cert apply to tls-listen: endpoints".into());
        }
        if o.reload != Default::default() && !tls_server {
            return Err("cert-dir, reload-on-change, keep-pin and allow-cn, allow-san, allow-spki apply to \
                        tls-listen: endpoints"
                .into());
        }
        if !o.reload.allow.is_empty() && o.client_ca.is_none() {
            return Err("allow-cn, allow-san and allow-spki need client-ca=FILE".into());
        }
        let tls_any = !o.cert.is_empty()
            || !o.key.is_empty()
            || !o.alpn.is_empty()
            || o.tls_min.is_some()
            || o.tls_max.is_some()
            || o.ragged_eof.is_some()
            || o.keylog.is_some()
            // (The handshake timeout also bounds an accepted connection's PROXY header.)
            || (o.handshake_timeout.is_some() && !o.accept_proxy);
        if tls_any && !(tls_client || tls_server) {
            return Err("TLS options apply to tls: and tls-listen: endpoints".into());
        }
        if o.starttls.is_some() && !tls_client && !tls_server {
            return Err(
                "starttls applies to tls: and tls-listen: endpoints (it runs before their TLS handshake)"
                    .into(),
            );
        }
        if tls_server && o.starttls.is_some_and(|p| p != crate::stack::starttls::Protocol::Smtp) {
            return Err("a tls-listen: endpoint speaks STARTTLS for smtp only (starttls=smtp)".into());
        }
        if o.ehlo.is_some() && !tls_client {
            return Err("ehlo applies to tls: endpoints (the name a client sends)".into());
        }
        if o.ehlo.is_some()
            && !matches!(
                o.starttls,
                Some(crate::stack::starttls::Protocol::Smtp | crate::stack::starttls::Protocol::Lmtp)
            )
        {
            return Err("ehlo needs starttls=smtp or starttls=lmtp".into());
        }
        if o.require_client_cert && o.client_ca.is_none() {
            return Err("require-client-cert needs client-ca=FILE".into());
        }
        if o.max_frame.is_some() && o.delimiter.is_none() {
            return Err("max-frame needs delimiter=D".into());
        }
        if o.write_mode.is_some() && !matches!(self.kind, EndpointKind::File(_)) {
            return Err("create, append and truncate apply to file: endpoints".into());
        }
        if o.connect_timeout.is_some()
            && !matches!(self.kind, EndpointKind::Tcp(..) | EndpointKind::Tls(..) | EndpointKind::Unix(_))
        {
            return Err("connect-timeout applies to tcp:, tls: and unix: endpoints".into());
        }
        if o.proxy_protocol.is_some() && !matches!(self.kind, EndpointKind::Tcp(..) | EndpointKind::Tls(..)) {
            return Err("proxy-protocol applies to tcp: and tls: endpoints".into());
        }
        if o.accept_proxy && !matches!(self.kind, EndpointKind::TcpListen(_) | EndpointKind::TlsListen(_)) {
            return Err("accept-proxy applies to tcp-listen: and tls-listen: endpoints".into());
        }
        if !o.proxy_from.is_empty() && !o.accept_proxy {
            return Err("proxy-from needs accept-proxy".into());
        }
        if o.proxy.is_some() && !matches!(self.kind, EndpointKind::Tcp(..) | EndpointKind::Tls(..)) {
            return Err("proxy applies to tcp: and tls: endpoints".into());
        }
        Ok(())
    }

    /// Whether it accepts connections.
    /// Whether it is a datagram endpoint (`udp:`, `udp-listen:`, `unix-dgram:`).
    pub fn is_datagram(&self) -> bool {
        matches!(self.kind, EndpointKind::Udp(..) | EndpointKind::UdpListen(_) | EndpointKind::UnixDgram(_))
    }

    /// Whether it is a listening endpoint.
    pub fn is_listener(&self) -> bool {
        matches!(
            self.kind,
            EndpointKind::TcpListen(_)
                | EndpointKind::TlsListen(_)
                | EndpointKind::UnixListen(_)
                | EndpointKind::UdpListen(_)
        )
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;

    #[test]
    fn option_pieces_that_are_not_options_stay_with_their_value() {
        let (body, options) = split_options("sort -t, -k2,crlf", true);
        assert_eq!(body, "sort -t, -k2");
        assert_eq!(options, ["crlf"]);
        let (_, options) = split_options("8443,alpn=h2,http/1.1,cert=c.pem", false);
        assert_eq!(options, ["alpn=h2,http/1.1", "cert=c.pem"]);
    }

    #[test]
    fn suggestions_find_near_misses() {
        assert_eq!(nearest("tcp-lsten", TYPES), Some("tcp-listen"));
        assert_eq!(nearest("crt", &["cert", "key"]), Some("cert"));
        assert_eq!(nearest("zzzzzz", TYPES), None);
    }
}
