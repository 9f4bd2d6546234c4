//! Outbound proxies: a client reaches its target through an HTTP proxy (`CONNECT`), a
//! SOCKS5 proxy (RFC 1928, user name and password by RFC 1929) or a SOCKS4a proxy.
//!
//! - [`ProxySpec`] is a proxy URL parsed (`socks5h://user:pass@host:1080`); its `Display`
//!   and `Debug` never show the user name or password (`socks5h://***@host:1080`).
//! - [`NoProxy`] is a `NO_PROXY`-style list of hosts reached directly.
//! - [`select`] decides which proxy a connection uses: the one given, else (only when
//!   asked) the environment's, unless the target is excluded.
//! - [`tunnel`] connects to the proxy and asks it for the target; what comes back is a
//!   TCP connection to the target, on which the caller runs TLS (verifying the target's
//!   name) exactly as on a direct connection.
//!
//! Replies are read with bounds: an HTTP reply's header block is at most
//! [`MAX_HTTP_REPLY`] bytes, and the whole exchange (connecting to the proxy and its
//! answer) runs within the connect timeout, or [`PROXY_TIMEOUT`] without one. The reply
//! parsers ([`parse_http_reply`], [`parse_socks5_reply`], [`parse_socks4_reply`]) are pure
//! functions over bytes, fuzzed by `fuzz/fuzz_targets/proxy_reply.rs`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::streams::socket::{ConnectOptions, FamilyPreference, connect_tcp, host_port, resolve};
use crate::streams::{Phase, StreamError};

/// The environment variable a proxy password is read from when the URL has a user name
/// and no password (so that it is neither on the command line nor in `ps`).
pub const PASSWORD_ENV: &str = "STREAMTOOL_PROXY_PASSWORD";

/// The largest HTTP reply header block read from a proxy (status line and headers).
pub const MAX_HTTP_REPLY: usize = 16 * 1024;

/// How long the exchange with a proxy may take when no connect timeout is set.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// A proxy's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`: HTTP `CONNECT`, with Basic authentication when a user is given.
    Http,
    /// `socks4a://`: SOCKS4a (the proxy resolves names; no password).
    Socks4a,
    /// `socks5://`: SOCKS5, the name resolved here and the address sent.
    Socks5,
    /// `socks5h://`: SOCKS5, the name sent for the proxy to resolve.
    Socks5h,
}

impl Scheme {
    /// The URL scheme.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Socks4a => "socks4a",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            _ => 1080,
        }
    }
}

/// A proxy, from its URL: `SCHEME://[USER[:PASSWORD]@]HOST[:PORT]`.
///
/// The user name and password are percent-decoded. `Display` and `Debug` show `***` in
/// their place, so a spec can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxySpec {
    /// The protocol.
    pub scheme: Scheme,
    /// The proxy's host (name or address, no brackets).
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// The user name, if any.
    pub user: Option<String>,
    /// The password, if any (without one and with a user, [`PASSWORD_ENV`] is read).
    pub password: Option<String>,
}

impl fmt::Display for ProxySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = if self.user.is_some() || self.password.is_some() { "***@" } else { "" };
        write!(f, "{}://{credentials}{}", self.scheme.name(), host_port(&self.host, self.port))
    }
}

impl fmt::Debug for ProxySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxySpec({self})")
    }
}

const FORMS: &str = "expected http://, socks5://, socks5h:// or socks4a://[USER[:PASSWORD]@]HOST[:PORT]";

impl FromStr for ProxySpec {
    type Err = String;

    /// Parses a proxy URL. Error messages never contain the user name or password.
    fn from_str(s: &str) -> Result<Self, String> {
        let shown = redact_url(s);
        let bad = |why: &str| format!("invalid proxy URL {shown:?}: {why}");
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad(FORMS))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            "socks4a" => Scheme::Socks4a,
            "https" => return Err(bad("TLS to the proxy (https://) is not supported; use http://")),
            "socks4" => return Err(bad("socks4:// is not supported; use socks4a:// (the proxy resolves)")),
            _ => return Err(bad(FORMS)),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path, query or fragment"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in the user name"))?;
                let password = match password {
                    Some(p) => Some(percent_decode(p).ok_or_else(|| bad("bad %-escape in the password"))?),
                    None => None,
                };
                if user.is_empty() && password.as_deref().is_none_or(str::is_empty) {
                    (None, None)
                } else {
                    (Some(user), password)
                }
            }
        };
        let (host, port) = split_host(hostport).map_err(|why| bad(&why))?;
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("invalid port"))?,
            None => scheme.default_port(),
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if scheme == Scheme::Socks4a && password.is_some() {
            return Err(bad("SOCKS4a has no passwords (a user name only)"));
        }
        if let Some(user) = &user
            && (user.len() > 255 || password.as_ref().is_some_and(|p| p.len() > 255))
            && matches!(scheme, Scheme::Socks5 | Scheme::Socks5h)
        {
            return Err(bad("SOCKS5 user names and passwords are at most 255 bytes"));
        }
        Ok(ProxySpec { scheme, host: host.to_string(), port, user, password })
    }
}

/// `HOST[:PORT]` or `[V6][:PORT]`.
fn split_host(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("missing ']'")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("only an IPv6 address goes in brackets".into());
        }
        return match after {
            "" => Ok((host, None)),
            _ => Ok((host, Some(after.strip_prefix(':').ok_or("expected :PORT after ']'")?))),
        };
    }
    match s.split_once(':') {
        Some((_, p)) if p.contains(':') => Err("write IPv6 addresses in brackets".into()),
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((s, None)),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `s` with the user information of every URL in it (between `://` and `@`) replaced by
/// `***`: for showing text that may hold a proxy URL (a `pipe` endpoint, an error echoing
/// its input).
pub fn redact_url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at a path, a query, a fragment, or (in an endpoint) a comma.
        let end = tail.find(['/', '?', '#', ',', ' ']).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(a) => {
                out.push_str("***");
                out.push_str(&tail[a..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// Which proxy

/// A `NO_PROXY`-style list: hosts reached directly. Entries are separated by commas or
/// white space: `*` (every host), a domain (`example.com` or `.example.com`: it and its
/// subdomains), an IP address, or a CIDR block (`10.0.0.0/8`, `fd00::/8`). Names are
/// compared without case, as given (never resolved); an IP address matches an address
/// entry or block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<String>,
}

impl FromStr for NoProxy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let entries: Vec<String> = s
            .split([',', ' ', '\t'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| e.trim_start_matches("*.").trim_start_matches('.').to_ascii_lowercase())
            .collect();
        for entry in &entries {
            if let Some((net, bits)) = entry.split_once('/') {
                let ok = match net.parse::<IpAddr>() {
                    Ok(IpAddr::V4(_)) => bits.parse::<u8>().is_ok_and(|b| b <= 32),
                    Ok(IpAddr::V6(_)) => bits.parse::<u8>().is_ok_and(|b| b <= 128),
                    Err(_) => false,
                };
                if !ok {
                    return Err(format!("invalid no-proxy entry {entry:?}: expected ADDRESS/BITS"));
                }
            }
        }
        Ok(NoProxy { entries })
    }
}

impl NoProxy {
    /// Whether `host` is reached directly.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some((net, bits)) = entry.split_once('/') {
                return match (ip, net.parse::<IpAddr>(), bits.parse::<u32>()) {
                    (Some(ip), Ok(net), Ok(bits)) => in_block(ip, net, bits),
                    _ => false,
                };
            }
            if let (Some(ip), Ok(entry_ip)) = (ip, entry.parse::<IpAddr>()) {
                return ip == entry_ip;
            }
            let entry = entry.trim_end_matches('.');
            host == entry || host.strip_suffix(entry).is_some_and(|h| h.ends_with('.'))
        })
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn in_block(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Where a proxy setting came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--proxy`/`proxy=`.
    Given,
    /// An environment variable, named.
    Env(&'static str),
}

/// The proxy a connection to `host` uses: `given` (`--proxy`), else with `from_env` the
/// environment's (`HTTPS_PROXY` then `ALL_PROXY` for a TLS client, `ALL_PROXY` for plain
/// TCP; lower-case names too), unless `host` is in `no_proxy` or, with `from_env`, in
/// `NO_PROXY`. Without `from_env` the environment is never read.
///
/// # Errors
/// A proxy URL or no-proxy list that does not parse (the message names the variable, and
/// never holds the credentials).
pub fn select(
    given: Option<&str>,
    from_env: bool,
    tls: bool,
    no_proxy: &NoProxy,
    host: &str,
) -> Result<Option<(ProxySpec, Origin)>, String> {
    let env = |name: &'static str| {
        std::env::var(name)
            .or_else(|_| std::env::var(name.to_ascii_lowercase()))
            .ok()
            .filter(|v| !v.trim().is_empty())
    };
    let (url, origin) = match given {
        Some(url) => (url.to_string(), Origin::Given),
        None if from_env => {
            let names: &[&'static str] = if tls { &["HTTPS_PROXY", "ALL_PROXY"] } else { &["ALL_PROXY"] };
            match names.iter().find_map(|n| env(n).map(|v| (v, Origin::Env(n)))) {
                Some(found) => found,
                None => {
                    tracing::info!("connecting to {host} directly (no proxy in the environment)");
                    return Ok(None);
                }
            }
        }
        None => return Ok(None),
    };
    let direct = || tracing::info!("connecting to {host} directly (excluded by --no-proxy or NO_PROXY)");
    if no_proxy.matches(host) {
        direct();
        return Ok(None);
    }
    if from_env && let Some(list) = env("NO_PROXY") {
        let list: NoProxy = list.parse().map_err(|e| format!("NO_PROXY: {e}"))?;
        if list.matches(host) {
            direct();
            return Ok(None);
        }
    }
    let spec = url.parse::<ProxySpec>().map_err(|e| match origin {
        Origin::Given => e,
        Origin::Env(name) => format!("{name}: {e}"),
    })?;
    match origin {
        Origin::Given => tracing::info!("using proxy {spec} from --proxy"),
        Origin::Env(name) => tracing::info!("using proxy {spec} from ${name} (--proxy-env)"),
    }
    Ok(Some((spec, origin)))
}

// ---------------------------------------------------------------------------------------
// The exchange

/// What a proxy answered instead of a tunnel (the proxy itself is named by the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyRefusal {
    /// An HTTP proxy's status was not 2xx.
    #[error("the proxy answered {status_line:?}{}", http_advice(*.status))]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The status line, control characters escaped.
        status_line: String,
    },
    /// A SOCKS5 proxy refused the request.
    #[error("the proxy refused: {} (SOCKS5 reply {code})", socks5_reply_words(*.code))]
    Socks5Reply {
        /// The reply code.
        code: u8,
    },
    /// A SOCKS5 proxy takes none of the authentication methods offered.
    #[error("the proxy accepts none of the authentication methods offered ({})", if *.offered_password { "none, user name/password" } else { "none: it may want a user name and password" })]
    Socks5NoMethod {
        /// Whether user name/password was offered.
        offered_password: bool,
    },
    /// A SOCKS5 proxy asks for a user name and password and none were given.
    #[error("the proxy asks for a user name and password; give them in the URL (and {PASSWORD_ENV})")]
    Socks5NeedsPassword,
    /// A SOCKS5 proxy rejected the user name and password.
    #[error("the proxy rejected the user name and password (authentication status {status})")]
    Socks5AuthFailed {
        /// The status byte.
        status: u8,
    },
    /// A SOCKS4a proxy refused the request.
    #[error("the proxy refused: {} (SOCKS4 reply {code})", socks4_reply_words(*.code))]
    Socks4Reply {
        /// The reply code.
        code: u8,
    },
    /// The proxy answered something that is not its protocol.
    #[error("the proxy's answer is not {protocol}: {what}")]
    Malformed {
        /// The protocol expected.
        protocol: &'static str,
        /// What was wrong.
        what: String,
    },
    /// The proxy closed the connection before answering in full.
    #[error("the proxy closed the connection before answering")]
    Closed,
    /// The target cannot be asked for with this protocol.
    #[error("{0}")]
    Unsupported(String),
}

fn http_advice(status: u16) -> &'static str {
    match status {
        407 => " (the proxy wants credentials: give USER:PASSWORD in the URL)",
        _ => "",
    }
}

/// A SOCKS5 reply code in words (RFC 1928 §6).
pub fn socks5_reply_words(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    }
}

/// A SOCKS4 reply code in words.
pub fn socks4_reply_words(code: u8) -> &'static str {
    match code {
        0x5a => "request granted",
        0x5b => "request rejected or failed",
        0x5c => "request failed: the proxy cannot reach our identd",
        0x5d => "request failed: identd reports a different user",
        _ => "unknown reply code",
    }
}

/// An HTTP proxy's reply: the status code and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The status line, control characters escaped.
    pub status_line: String,
}

/// The length of the header block at the start of `buf` (through the empty line that
/// ends it), or `None` if it has not ended yet.
pub fn http_head_len(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

/// Parses an HTTP reply's header block (status line and header lines; its ending empty
/// line may be included). A status other than 2xx is a [`ProxyRefusal::HttpStatus`].
///
/// # Errors
/// [`ProxyRefusal::Malformed`] or [`ProxyRefusal::HttpStatus`].
pub fn parse_http_reply(head: &[u8]) -> Result<HttpReply, ProxyRefusal> {
    let malformed = |what: &str| ProxyRefusal::Malformed { protocol: "HTTP", what: what.to_string() };
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = &head[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    let status_line = crate::escape::escape_control(&text).into_owned();
    let shown: String = status_line.chars().take(200).collect();
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(malformed(&format!("status line {shown:?}")));
    }
    let code = parts.next().unwrap_or_default();
    let status = match code.parse::<u16>() {
        Ok(s) if code.len() == 3 && (100..600).contains(&s) => s,
        _ => return Err(malformed(&format!("status line {shown:?}"))),
    };
    if !(200..300).contains(&status) {
        return Err(ProxyRefusal::HttpStatus { status, status_line: shown });
    }
    Ok(HttpReply { status, status_line: shown })
}

/// A SOCKS5 reply parsed: its length in bytes and the address the proxy bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks5Reply {
    /// How many bytes it took.
    pub len: usize,
    /// The bound address, as text.
    pub bound: String,
}

/// Parses a SOCKS5 reply at the start of `buf`: `Ok(None)` if more bytes are needed
/// (never more than 262 in all), `Ok(Some(reply))` for success.
///
/// # Errors
/// [`ProxyRefusal::Socks5Reply`] for a refusal, [`ProxyRefusal::Malformed`] otherwise.
pub fn parse_socks5_reply(buf: &[u8]) -> Result<Option<Socks5Reply>, ProxyRefusal> {
    let malformed = |what: String| ProxyRefusal::Malformed { protocol: "SOCKS5", what };
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] != 5 {
        return Err(malformed(format!("version {} in the reply", buf[0])));
    }
    if buf[1] != 0 {
        return Err(ProxyRefusal::Socks5Reply { code: buf[1] });
    }
    if buf.len() < 5 {
        return Ok(None);
    }
    let addr_len = match buf[3] {
        1 => 4,
        4 => 16,
        3 => 1 + usize::from(buf[4]),
        other => return Err(malformed(format!("address type {other}"))),
    };
    let len = 4 + addr_len + 2;
    if buf.len() < len {
        return Ok(None);
    }
    let addr = &buf[4..4 + addr_len];
    let port = u16::from_be_bytes([buf[len - 2], buf[len - 1]]);
    let host = match buf[3] {
        1 => Ipv4Addr::from(<[u8; 4]>::try_from(addr).expect("4 bytes")).to_string(),
        4 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(addr).expect("16 bytes")).to_string(),
        _ => crate::escape::escape_control(&String::from_utf8_lossy(&addr[1..])).into_owned(),
    };
    Ok(Some(Socks5Reply { len, bound: host_port(&host, port) }))
}

/// Parses a SOCKS4 reply (8 bytes): `Ok(None)` if more are needed.
///
/// # Errors
/// [`ProxyRefusal::Socks4Reply`] for a refusal, [`ProxyRefusal::Malformed`] otherwise.
pub fn parse_socks4_reply(buf: &[u8]) -> Result<Option<usize>, ProxyRefusal> {
    if buf.len() < 8 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err(ProxyRefusal::Malformed {
            protocol: "SOCKS4",
            what: format!("version {} in the reply", buf[0]),
        });
    }
    match buf[1] {
        0x5a => Ok(Some(8)),
        code => Err(ProxyRefusal::Socks4Reply { code }),
    }
}

/// Connects to `host:port` through `proxy`: connects to the proxy, asks it for the
/// target, and reads its answer, all within `limit` ([`PROXY_TIMEOUT`] if `None`).
/// `connected` is told the proxy's address once connected to it.
///
/// # Errors
/// [`StreamError::Resolve`]/[`StreamError::Connect`] for reaching the proxy (or, with
/// `socks5://`, resolving the target here); [`StreamError::Timeout`] with
/// [`Phase::Connect`] when the whole exchange took too long; [`StreamError::Connect`] with
/// a [`ProxyRefusal`] inside when the proxy said no (`target_name` names it).
pub async fn tunnel(
    proxy: &ProxySpec,
    host: &str,
    port: u16,
    connect: ConnectOptions,
    limit: Option<Duration>,
    target_name: &str,
    connected: impl FnOnce(Option<std::net::SocketAddr>),
) -> Result<TcpStream, StreamError> {
    let after = limit.unwrap_or(PROXY_TIMEOUT);
    let family = connect.family;
    let exchange = async {
        let socket =
            connect_tcp(&proxy.host, proxy.port, ConnectOptions { timeout: None, ..connect }).await?;
        let mut stream = socket.into_inner()?;
        connected(stream.peer_addr().ok());
        let refused = |refusal: ProxyRefusal| StreamError::Connect {
            target: target_name.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, refusal),
        };
        let io_error = |source: std::io::Error| StreamError::Connect {
            target: target_name.to_string(),
            source: if source.kind() == std::io::ErrorKind::UnexpectedEof {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, ProxyRefusal::Closed)
            } else {
                source
            },
        };
        let result = match proxy.scheme {
            Scheme::Http => http_connect(&mut stream, proxy, host, port).await,
            Scheme::Socks5 | Scheme::Socks5h => socks5_connect(&mut stream, proxy, host, port, family).await,
            Scheme::Socks4a => socks4a_connect(&mut stream, proxy, host, port).await,
        };
        match result {
            Ok(()) => Ok(stream),
            Err(Failure::Refused(r)) => Err(refused(r)),
            Err(Failure::Io(e)) => Err(io_error(e)),
            Err(Failure::Stream(e)) => Err(e),
        }
    };
    tokio::time::timeout(after, exchange)
        .await
        .map_err(|_| StreamError::Timeout { phase: Phase::Connect, after })?
}

enum Failure {
    Refused(ProxyRefusal),
    Io(std::io::Error),
    Stream(StreamError),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<ProxyRefusal> for Failure {
    fn from(r: ProxyRefusal) -> Self {
        Failure::Refused(r)
    }
}

fn password(proxy: &ProxySpec) -> Option<String> {
    proxy.password.clone().or_else(|| proxy.user.as_ref().and_then(|_| std::env::var(PASSWORD_ENV).ok()))
}

/// `user:password` in Base64, for `Proxy-Authorization: Basic`.
fn basic_credentials(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn http_connect(
    stream: &mut TcpStream,
    proxy: &ProxySpec,
    host: &str,
    port: u16,
) -> Result<(), Failure> {
    let authority = host_port(host, port);
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(user) = &proxy.user {
        let password = password(proxy).unwrap_or_default();
        request.push_str(&format!("Proxy-Authorization: Basic {}\r\n", basic_credentials(user, &password)));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    // One byte at a time: what follows the header block is the target's, and stays in
    // the socket (a plain socket is kept whole for zero-copy relaying).
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte).await? == 0 {
            if head.is_empty() {
                return Err(ProxyRefusal::Closed.into());
            }
            // A reply cut short: report its status line if it has one.
            parse_http_reply(&head)?;
            return Err(ProxyRefusal::Closed.into());
        }
        head.push(byte[0]);
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
        if head.len() >= MAX_HTTP_REPLY {
            parse_http_reply(&head)?;
            return Err(ProxyRefusal::Malformed {
                protocol: "HTTP",
                what: format!("its header block is longer than {MAX_HTTP_REPLY} bytes"),
            }
            .into());
        }
    }
    let reply = parse_http_reply(&head)?;
    tracing::debug!(status = reply.status, "proxy: {}", reply.status_line);
    Ok(())
}

async fn socks5_connect(
    stream: &mut TcpStream,
    proxy: &ProxySpec,
    host: &str,
    port: u16,
    family: FamilyPreference,
) -> Result<(), Failure> {
    let malformed = |what: String| ProxyRefusal::Malformed { protocol: "SOCKS5", what };
    let with_password = proxy.user.is_some();
    let greeting: &[u8] = if with_password { &[5, 2, 0, 2] } else { &[5, 1, 0] };
    stream.write_all(greeting).await?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await?;
    if choice[0] != 5 {
        return Err(malformed(format!("version {} in the method choice", choice[0])).into());
    }
    match choice[1] {
        0 => {}
        2 if with_password => {
            let user = proxy.user.as_deref().unwrap_or_default();
            let password = password(proxy).unwrap_or_default();
            if password.len() > 255 {
                return Err(ProxyRefusal::Unsupported(format!(
                    "the {PASSWORD_ENV} password is over 255 bytes"
                ))
                .into());
            }
            let mut auth = vec![1, user.len() as u8];
            auth.extend_from_slice(user.as_bytes());
            auth.push(password.len() as u8);
            auth.extend_from_slice(password.as_bytes());
            stream.write_all(&auth).await?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await?;
            if status[1] != 0 {
                return Err(ProxyRefusal::Socks5AuthFailed { status: status[1] }.into());
            }
        }
        2 => return Err(ProxyRefusal::Socks5NeedsPassword.into()),
        0xff => return Err(ProxyRefusal::Socks5NoMethod { offered_password: with_password }.into()),
        other => return Err(malformed(format!("it chose method {other}, which was not offered")).into()),
    }
    let mut request = vec![5, 1, 0];
    let literal = host.parse::<IpAddr>().ok();
    let address = match (literal, proxy.scheme) {
        (Some(ip), _) => Some(ip),
        (None, Scheme::Socks5) => {
            let addrs = resolve(host, port, family).await.map_err(Failure::Stream)?;
            let first = addrs.first().map(|a| a.ip());
            tracing::debug!(?first, "proxy: {host} resolved here (socks5://)");
            first
        }
        (None, _) => None,
    };
    match address {
        Some(IpAddr::V4(v4)) => {
            request.push(1);
            request.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            request.push(4);
            request.extend_from_slice(&v6.octets());
        }
        None => {
            if host.len() > 255 {
                return Err(
                    ProxyRefusal::Unsupported("a SOCKS5 host name is at most 255 bytes".into()).into()
                );
            }
            request.push(3);
            request.push(host.len() as u8);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await?;
    // Read exactly the reply: what follows is the target's.
    let mut reply = vec![0u8; 5];
    stream.read_exact(&mut reply).await?;
    loop {
        match parse_socks5_reply(&reply)? {
            Some(parsed) => {
                tracing::debug!(bound = %parsed.bound, "proxy: SOCKS5 tunnel open");
                return Ok(());
            }
            None => {
                let need = socks5_reply_needs(&reply);
                let have = reply.len();
                reply.resize(have + need, 0);
                stream.read_exact(&mut reply[have..]).await?;
            }
        }
    }
}

/// How many more bytes a SOCKS5 reply of at least 5 bytes needs.
fn socks5_reply_needs(buf: &[u8]) -> usize {
    let total = match buf.get(3) {
        Some(1) => 10,
        Some(4) => 22,
        Some(3) => 7 + usize::from(buf.get(4).copied().unwrap_or(0)),
        _ => buf.len() + 1,
    };
    total.saturating_sub(buf.len()).max(1)
}

async fn socks4a_connect(
    stream: &mut TcpStream,
    proxy: &ProxySpec,
    host: &str,
    port: u16,
) -> Result<(), Failure> {
    let mut request = vec![4, 1];
    request.extend_from_slice(&port.to_be_bytes());
    let literal = host.parse::<IpAddr>().ok();
    match literal {
        Some(IpAddr::V4(v4)) => request.extend_from_slice(&v4.octets()),
        Some(IpAddr::V6(_)) => {
            return Err(ProxyRefusal::Unsupported(
                "SOCKS4a cannot reach IPv6 addresses; use socks5h://".into(),
            )
            .into());
        }
        None => request.extend_from_slice(&[0, 0, 0, 1]),
    }
    request.extend_from_slice(proxy.user.as_deref().unwrap_or_default().as_bytes());
    request.push(0);
    if literal.is_none() {
        request.extend_from_slice(host.as_bytes());
        request.push(0);
    }
    stream.write_all(&request).await?;
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).await?;
    parse_socks4_reply(&reply)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_display_without_credentials() {
        let p: ProxySpec = "socks5h://al%40ice:s%3Acret@proxy.example:1081".parse().unwrap();
        assert_eq!(p.scheme, Scheme::Socks5h);
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 1081));
        assert_eq!(p.user.as_deref(), Some("al@ice"));
        assert_eq!(p.password.as_deref(), Some("s:cret"));
        assert_eq!(p.to_string(), "socks5h://***@proxy.example:1081");
        assert!(!format!("{p:?}").contains("cret"));
        let p: ProxySpec = "http://[::1]:3128/".parse().unwrap();
        assert_eq!((p.host.as_str(), p.port, p.user.clone()), ("::1", 3128, None));
        assert_eq!(p.to_string(), "http://[::1]:3128");
        assert_eq!("socks5://h".parse::<ProxySpec>().unwrap().port, 1080);
        assert_eq!("HTTP://h".parse::<ProxySpec>().unwrap().port, 80);
        for bad in [
            "h:1080",
            "ftp://h:1",
            "https://h:1",
            "socks5://h:0",
            "socks5://h:x",
            "socks5://:1",
            "socks5://u:secret@",
            "socks5://h:1/path",
            "socks4a://u:secret@h:1",
            "socks5://::1:1080",
            "socks5://u:%zzsecret@h:1",
        ] {
            let err = bad.parse::<ProxySpec>().unwrap_err();
            assert!(!err.contains("secret"), "{bad}: {err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn redaction_hides_user_information() {
        assert_eq!(
            redact_url("tcp:h:1,proxy=socks5h://u:pw@p:1080,crlf"),
            "tcp:h:1,proxy=socks5h://***@p:1080,crlf"
        );
        assert_eq!(redact_url("http://p:3128"), "http://p:3128");
        assert_eq!(redact_url("no url"), "no url");
    }

    #[test]
    fn no_proxy_lists_match_domains_addresses_and_blocks() {
        let list: NoProxy = "localhost, .internal.example,10.0.0.0/8 ::1 fd00::/8".parse().unwrap();
        for host in
            ["localhost", "LOCALHOST", "a.internal.example", "internal.example", "10.1.2.3", "::1", "fd00::5"]
        {
            assert!(list.matches(host), "{host}");
        }
        for host in ["example.com", "xinternal.example", "11.0.0.1", "::2", "localhost.evil"] {
            assert!(!list.matches(host), "{host}");
        }
        assert!("*".parse::<NoProxy>().unwrap().matches("anything"));
        assert!("10.0.0.0/33".parse::<NoProxy>().is_err());
    }

    #[test]
    fn selection_without_env_ignores_the_environment() {
        let none = NoProxy::default();
        assert_eq!(select(None, false, false, &none, "h").unwrap(), None);
        let (spec, origin) = select(Some("socks5h://p:1"), false, false, &none, "h").unwrap().unwrap();
        assert_eq!((spec.host.as_str(), origin), ("p", Origin::Given));
        let excluded: NoProxy = "h".parse().unwrap();
        assert_eq!(select(Some("socks5h://p:1"), false, false, &excluded, "h").unwrap(), None);
    }

    #[test]
    fn http_replies() {
        assert_eq!(parse_http_reply(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap().status, 200);
        assert_eq!(parse_http_reply(b"HTTP/1.0 200\r\n\r\n").unwrap().status, 200);
        let err = parse_http_reply(b"HTTP/1.1 403 Filtered\r\nServer: x\r\n\r\n").unwrap_err();
        assert_eq!(err.to_string(), "the proxy answered \"HTTP/1.1 403 Filtered\"");
        let err = parse_http_reply(b"HTTP/1.1 407 Auth\x1b[31m\r\n\r\n").unwrap_err();
        assert!(!err.to_string().contains('\x1b'), "{err}");
        assert!(err.to_string().contains("credentials"));
        assert!(matches!(parse_http_reply(b"SSH-2.0-x\r\n"), Err(ProxyRefusal::Malformed { .. })));
        assert!(matches!(parse_http_reply(b"HTTP/1.1 2000 x\r\n"), Err(ProxyRefusal::Malformed { .. })));
        assert_eq!(http_head_len(b"HTTP/1.1 200 OK\r\n\r\nrest"), Some(19));
    }

    #[test]
    fn socks_replies() {
        assert_eq!(parse_socks5_reply(&[5, 0, 0, 1, 127, 0, 0, 1]).unwrap(), None);
        let ok = parse_socks5_reply(&[5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 99]).unwrap().unwrap();
        assert_eq!((ok.len, ok.bound.as_str()), (10, "127.0.0.1:8080"));
        let named = parse_socks5_reply(&[5, 0, 0, 3, 1, b'h', 0, 80]).unwrap().unwrap();
        assert_eq!((named.len, named.bound.as_str()), (8, "h:80"));
        assert_eq!(
            parse_socks5_reply(&[5, 2]).unwrap_err().to_string(),
            "the proxy refused: connection not allowed by ruleset (SOCKS5 reply 2)"
        );
        assert!(matches!(parse_socks5_reply(&[4, 0]), Err(ProxyRefusal::Malformed { .. })));
        assert!(matches!(parse_socks5_reply(&[5, 0, 0, 9, 0]), Err(ProxyRefusal::Malformed { .. })));
        assert_eq!(parse_socks4_reply(&[0, 0x5a, 0, 0, 0, 0, 0, 0]).unwrap(), Some(8));
        assert!(
            parse_socks4_reply(&[0, 0x5b, 0, 0, 0, 0, 0, 0]).unwrap_err().to_string().contains("rejected")
        );
        assert_eq!(socks5_reply_needs(&[5, 0, 0, 3, 10]), 12);
    }

    /// A fake proxy on loopback that reads the request, then writes `reply`.
    async fn fake_proxy(reply: Vec<u8>) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 512];
            let n = socket.read(&mut request).await.unwrap();
            request.truncate(n);
            let _ = socket.write_all(&reply).await;
            // Hold the connection until the client is done.
            let mut rest = Vec::new();
            let _ = socket.read_to_end(&mut rest).await;
            request
        });
        (port, task)
    }

    async fn through(url: String) -> Result<TcpStream, StreamError> {
        let spec: ProxySpec = url.parse().unwrap();
        tunnel(&spec, "target.example", 443, Default::default(), Some(Duration::from_secs(5)), "t", |_| {})
            .await
    }

    #[tokio::test]
    async fn the_targets_first_bytes_stay_in_the_socket() {
        let (port, proxy) =
            fake_proxy(b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\nBANNER".to_vec()).await;
        let mut stream = through(format!("http://u:p@127.0.0.1:{port}")).await.unwrap();
        let mut banner = [0u8; 6];
        stream.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"BANNER");
        drop(stream);
        let request = String::from_utf8(proxy.await.unwrap()).unwrap();
        assert!(request.starts_with("CONNECT target.example:443 HTTP/1.1\r\nHost: target.example:443\r\n"));
        assert!(request.contains("Proxy-Authorization: Basic dTpw\r\n"), "{request}");

        let mut reply = vec![5, 0, 5, 0, 0, 3, 4];
        reply.extend_from_slice(b"name\x01\xbbBANNER");
        let (port, proxy) = fake_proxy(reply).await;
        let mut stream = through(format!("socks5h://127.0.0.1:{port}")).await.unwrap();
        stream.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"BANNER");
        drop(stream);
        // The greeting and the request came in one read or two; the name was sent.
        let _ = proxy.await.unwrap();
    }

    #[tokio::test]
    async fn an_endless_http_header_block_is_cut_at_the_limit() {
        let mut reply = b"HTTP/1.1 200 OK\r\n".to_vec();
        while reply.len() < MAX_HTTP_REPLY + 100 {
            reply.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let (port, _proxy) = fake_proxy(reply).await;
        let err = through(format!("http://127.0.0.1:{port}")).await.unwrap_err();
        let text = crate::streams::error::chain(&err);
        assert!(text.contains("longer than 16384 bytes"), "{text}");
        assert!(matches!(err, StreamError::Connect { .. }));
    }

    #[tokio::test]
    async fn a_silent_proxy_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let spec: ProxySpec = format!("socks5h://127.0.0.1:{port}").parse().unwrap();
        let err = tunnel(&spec, "t", 1, Default::default(), Some(Duration::from_millis(200)), "t", |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, StreamError::Timeout { phase: Phase::Connect, .. }), "{err}");
        drop(listener);
    }

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(basic_credentials("Aladdin", "open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic_credentials("a", "b"), "YTpi");
        assert_eq!(basic_credentials("ab", ""), "YWI6");
    }
}
