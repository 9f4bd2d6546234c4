//! HAProxy's PROXY protocol (v1, the text line, and v2, the binary header with TLVs):
//! a pure parser and encoder, the trust rule of a listener that accepts it, and the
//! bounded read of one header from a connection just accepted.
//!
//! The parser never asks for a byte past the header: [`parse`] answers
//! [`Parse::NeedMore`] with a count that can be read without touching the payload that
//! follows, so [`read_header`] reads exactly the header and leaves the connection's data
//! (a TLS ClientHello, the client's bytes) where it was. Specification:
//! <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::streams::Address;

/// How long an accepted connection's PROXY header may take to arrive unless the handshake
/// timeout says otherwise: the TLS handshake's default, 30 s (a header is one packet from
/// a proxy nearby; a connection that sends none in this long is not a proxy's).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The v2 signature, the first 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included (the specification's 107 bytes).
pub const V1_MAX: usize = 107;
/// The most TLV bytes a v2 header may carry here (the format allows 64 KiB; haproxy sends
/// far less). A header announcing more is refused before its body is read.
pub const MAX_TLV_BYTES: usize = 4096;

/// PP2_TYPE_ALPN.
pub const PP2_TYPE_ALPN: u8 = 0x01;
/// PP2_TYPE_AUTHORITY: the host name the client asked for (its TLS SNI).
pub const PP2_TYPE_AUTHORITY: u8 = 0x02;
/// PP2_TYPE_SSL: how the client connected over TLS, with sub-TLVs.
pub const PP2_TYPE_SSL: u8 = 0x20;
/// PP2_SUBTYPE_SSL_VERSION, within PP2_TYPE_SSL: `TLSv1.3`.
pub const PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
/// PP2_CLIENT_SSL: the client connected over TLS.
pub const PP2_CLIENT_SSL: u8 = 0x01;

/// A version of the protocol, to send (`--proxy-protocol v1|v2`, `proxy-protocol=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The text line.
    V1,
    /// The binary header (with TLVs).
    V2,
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "v1" | "1" => Ok(Version::V1),
            "v2" | "2" => Ok(Version::V2),
            _ => Err(format!("invalid PROXY protocol version {s:?}: expected v1 or v2")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// One v2 TLV (type, value); unknown types are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    /// Its type (`PP2_TYPE_*`).
    pub kind: u8,
    /// Its value.
    pub value: Vec<u8>,
}

/// One PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Which version it was (or is to be) sent as.
    pub version: Version,
    /// The original connection's source (the client) and destination, or `None`: a v2
    /// LOCAL command (a proxy's health check), a v1 `PROXY UNKNOWN`, or an address family
    /// other than IPv4 and IPv6. Then the connection's own addresses apply.
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// The v2 TLVs (v1 has none; encoding v1 leaves them out).
    pub tlvs: Vec<Tlv>,
}

impl Header {
    /// A header naming a connection from `source` to `destination`, without TLVs.
    pub fn proxied(version: Version, source: SocketAddr, destination: SocketAddr) -> Self {
        Header { version, addresses: Some((source, destination)), tlvs: Vec::new() }
    }

    /// A header that names no connection (v2 LOCAL, v1 `PROXY UNKNOWN`).
    pub fn local(version: Version) -> Self {
        Header { version, addresses: None, tlvs: Vec::new() }
    }

    /// The client's address, when the header names one.
    pub fn source(&self) -> Option<SocketAddr> {
        self.addresses.map(|(source, _)| source)
    }

    /// The value of the first TLV of type `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs.iter().find(|t| t.kind == kind).map(|t| t.value.as_slice())
    }

    /// The authority (SNI) TLV, as text.
    pub fn authority(&self) -> Option<String> {
        self.tlv(PP2_TYPE_AUTHORITY).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The TLS version of the PP2_TYPE_SSL TLV's PP2_SUBTYPE_SSL_VERSION, as text.
    pub fn ssl_version(&self) -> Option<String> {
        let ssl = self.tlv(PP2_TYPE_SSL)?;
        // client (1), verify (4), then sub-TLVs.
        let mut rest = ssl.get(5..)?;
        while rest.len() >= 3 {
            let (kind, len) = (rest[0], u16::from_be_bytes([rest[1], rest[2]]) as usize);
            let value = rest.get(3..3 + len)?;
            if kind == PP2_SUBTYPE_SSL_VERSION {
                return Some(String::from_utf8_lossy(value).into_owned());
            }
            rest = &rest[3 + len..];
        }
        None
    }

    /// Adds what a TLS terminator knows of the client's TLS: PP2_TYPE_SSL (client
    /// connected over TLS, its certificate if any verified, the version as
    /// PP2_SUBTYPE_SSL_VERSION) and PP2_TYPE_AUTHORITY for the SNI.
    pub fn with_tls(mut self, version: &str, sni: Option<&str>) -> Self {
        let mut ssl = vec![PP2_CLIENT_SSL, 0, 0, 0, 0];
        ssl.push(PP2_SUBTYPE_SSL_VERSION);
        ssl.extend_from_slice(&(version.len() as u16).to_be_bytes());
        ssl.extend_from_slice(version.as_bytes());
        self.tlvs.push(Tlv { kind: PP2_TYPE_SSL, value: ssl });
        if let Some(sni) = sni {
            self.tlvs.push(Tlv { kind: PP2_TYPE_AUTHORITY, value: sni.as_bytes().to_vec() });
        }
        self
    }
}

/// What [`parse`] made of the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// A whole header, and how many bytes it took (the payload starts there).
    Done(Header, usize),
    /// At least this many more bytes are needed; reading exactly this many never reads
    /// past the header.
    NeedMore(usize),
}

/// Why bytes are not a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn bad(why: impl Into<String>) -> ParseError {
    ParseError(why.into())
}

const V1_PREFIX: &[u8] = b"PROXY ";
/// Both signatures are at least this long, and no header is shorter than 15 bytes.
const PREFIX_LEN: usize = 6;

/// Parses a header at the start of `buf` (v1 or v2, told by the first bytes).
///
/// # Errors
/// [`ParseError`] for bytes that are no PROXY header, a malformed one, a v1 line over
/// 107 bytes or a v2 header announcing more than [`MAX_TLV_BYTES`] of TLVs.
pub fn parse(buf: &[u8]) -> Result<Parse, ParseError> {
    let head = &buf[..buf.len().min(PREFIX_LEN)];
    let v1 = V1_PREFIX.starts_with(head);
    let v2 = V2_SIGNATURE.starts_with(head);
    if !v1 && !v2 {
        return Err(bad("not a PROXY protocol header"));
    }
    if buf.len() < PREFIX_LEN {
        return Ok(Parse::NeedMore(PREFIX_LEN - buf.len()));
    }
    if v1 { parse_v1(buf) } else { parse_v2(buf) }
}

fn parse_v1(buf: &[u8]) -> Result<Parse, ParseError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX {
            return Err(bad(format!("a v1 header longer than {V1_MAX} bytes")));
        }
        if buf.iter().any(|&b| b == b'\n' || !(b == b'\r' || (0x20..0x7f).contains(&b))) {
            return Err(bad("a v1 header with a byte that is not printable ASCII"));
        }
        return v1_need_more(buf).map(|n| Parse::NeedMore(n.min(V1_MAX - buf.len())));
    };
    let line = std::str::from_utf8(&buf[..end])
        .ok()
        .filter(|l| l.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .ok_or_else(|| bad("a v1 header with a byte that is not printable ASCII"))?;
    let words: Vec<&str> = line.split(' ').collect();
    let header = match words.get(1).copied() {
        // Anything may follow UNKNOWN; the receiver ignores it.
        Some("UNKNOWN") => Header::local(Version::V1),
        Some(family @ ("TCP4" | "TCP6")) => {
            let [_, _, src, dst, sport, dport] = words[..] else {
                return Err(bad(format!(
                    "a v1 header with {} fields: expected PROXY {family} SRC DST SPORT DPORT",
                    words.len()
                )));
            };
            let ip = |s: &str| -> Result<IpAddr, ParseError> {
                let ip = if family == "TCP4" {
                    s.parse::<Ipv4Addr>().map(IpAddr::V4).ok()
                } else {
                    s.parse::<Ipv6Addr>().map(IpAddr::V6).ok()
                };
                ip.ok_or_else(|| bad(format!("a v1 header with an invalid {family} address")))
            };
            let port = |s: &str| -> Result<u16, ParseError> {
                let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
                let canonical = s == "0" || !s.starts_with('0');
                digits
                    .then(|| s.parse::<u16>().ok())
                    .flatten()
                    .filter(|_| canonical)
                    .ok_or_else(|| bad("a v1 header with an invalid port"))
            };
            let source = SocketAddr::new(ip(src)?, port(sport)?);
            let destination = SocketAddr::new(ip(dst)?, port(dport)?);
            Header::proxied(Version::V1, source, destination)
        }
        _ => return Err(bad("a v1 header with an unknown protocol (expected TCP4, TCP6 or UNKNOWN)")),
    };
    Ok(Parse::Done(header, end + 2))
}

/// How many more bytes an unfinished v1 line needs at least: the shortest way its fields
/// can still be completed (an IPv4 address is at least 7 characters, an IPv6 one 2, a
/// port 1, then CRLF), so that a header is read in a few reads rather than a byte at a
/// time, and never past its end.
fn v1_need_more(buf: &[u8]) -> Result<usize, ParseError> {
    if buf.ends_with(b"\r") {
        return Ok(1);
    }
    let words: Vec<&[u8]> = buf.split(|&b| b == b' ').collect();
    if words.len() <= 2 {
        // The protocol word is still coming: `PROXY UNKNOWN\r\n` is the shortest line.
        return Ok(15usize.saturating_sub(buf.len()).max(1));
    }
    let mins: &[usize] = match words[1] {
        b"TCP4" => &[5, 4, 7, 7, 1, 1],
        b"TCP6" => &[5, 4, 2, 2, 1, 1],
        // Anything may follow UNKNOWN, up to CRLF.
        b"UNKNOWN" => return Ok(2),
        _ => return Err(bad("a v1 header with an unknown protocol (expected TCP4, TCP6 or UNKNOWN)")),
    };
    let current = words.len() - 1;
    let Some(&min) = mins.get(current) else {
        // Too many fields: the line is refused at its CRLF.
        return Ok(1);
    };
    let this = min.saturating_sub(words[current].len());
    let rest: usize = mins[current + 1..].iter().map(|m| m + 1).sum();
    Ok(this + rest + 2)
}

fn parse_v2(buf: &[u8]) -> Result<Parse, ParseError> {
    if buf.len() < 16 {
        return Ok(Parse::NeedMore(16 - buf.len()));
    }
    if buf[..12] != V2_SIGNATURE {
        return Err(bad("not a PROXY protocol header"));
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Err(bad(format!("a v2 header of version {version}")));
    }
    let local = match command {
        0 => true,
        1 => false,
        other => return Err(bad(format!("a v2 header with the unknown command {other}"))),
    };
    let (family, transport) = (buf[13] >> 4, buf[13] & 0x0f);
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let address_len = match family {
        0 => 0,
        1 => 12,
        2 => 36,
        3 => 216,
        other => return Err(bad(format!("a v2 header with the unknown address family {other}"))),
    };
    if !local && family != 0 && transport != 1 {
        return Err(bad("a v2 header for a datagram or unknown transport (a stream was expected)"));
    }
    if len < address_len {
        return Err(bad(format!("a v2 header of {len} bytes, too short for its addresses")));
    }
    if len - address_len > MAX_TLV_BYTES {
        return Err(bad(format!(
            "a v2 header with {} bytes of TLVs (at most {MAX_TLV_BYTES})",
            len - address_len
        )));
    }
    let total = 16 + len;
    if buf.len() < total {
        return Ok(Parse::NeedMore(total - buf.len()));
    }
    let body = &buf[16..total];
    let addresses = match family {
        _ if local => None,
        1 => {
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(body[i], body[i + 1], body[i + 2], body[i + 3]));
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            Some((SocketAddr::new(ip(0), port(8)), SocketAddr::new(ip(4), port(10))))
        }
        2 => {
            let ip = |i: usize| {
                IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&body[i..i + 16]).expect("16 bytes")))
            };
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            Some((SocketAddr::new(ip(0), port(32)), SocketAddr::new(ip(16), port(34))))
        }
        // UNSPEC, or UNIX addresses: no IP connection to name.
        _ => None,
    };
    let mut tlvs = Vec::new();
    let mut rest = &body[address_len..];
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err(bad("a v2 header with a truncated TLV"));
        }
        let (kind, len) = (rest[0], u16::from_be_bytes([rest[1], rest[2]]) as usize);
        let Some(value) = rest.get(3..3 + len) else {
            return Err(bad("a v2 header with a TLV longer than the header"));
        };
        tlvs.push(Tlv { kind, value: value.to_vec() });
        rest = &rest[3 + len..];
    }
    Ok(Parse::Done(Header { version: Version::V2, addresses, tlvs }, total))
}

/// The header as bytes, in its version. v1 carries no TLVs (they are left out); a source
/// and destination of different families are both sent as IPv6 (IPv4-mapped).
pub fn encode(header: &Header) -> Vec<u8> {
    let addresses = header.addresses.map(|(s, d)| match (s, d) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => (s, d),
        _ => (as_v6(s), as_v6(d)),
    });
    match header.version {
        Version::V1 => match addresses {
            None => b"PROXY UNKNOWN\r\n".to_vec(),
            Some((s, d)) => {
                let family = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                format!("PROXY {family} {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port()).into_bytes()
            }
        },
        Version::V2 => {
            let mut body = Vec::new();
            let (command, family) = match addresses {
                None => (0x20, 0x00),
                Some((s, d)) => {
                    match (s.ip(), d.ip()) {
                        (IpAddr::V4(a), IpAddr::V4(b)) => {
                            body.extend_from_slice(&a.octets());
                            body.extend_from_slice(&b.octets());
                        }
                        (a, b) => {
                            body.extend_from_slice(&v6(a).octets());
                            body.extend_from_slice(&v6(b).octets());
                        }
                    }
                    body.extend_from_slice(&s.port().to_be_bytes());
                    body.extend_from_slice(&d.port().to_be_bytes());
                    (0x21, if s.is_ipv4() { 0x11 } else { 0x21 })
                }
            };
            for tlv in &header.tlvs {
                let len = tlv.value.len().min(u16::MAX as usize);
                body.push(tlv.kind);
                body.extend_from_slice(&(len as u16).to_be_bytes());
                body.extend_from_slice(&tlv.value[..len]);
            }
            let mut out = V2_SIGNATURE.to_vec();
            out.push(command);
            out.push(family);
            out.extend_from_slice(&(body.len().min(u16::MAX as usize) as u16).to_be_bytes());
            out.extend_from_slice(&body);
            out
        }
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn as_v6(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(v6(addr.ip())), addr.port())
}

// ---------------------------------------------------------------------------------------
// Trust

/// An address block (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr =
            ip.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| {
                format!("invalid address {ip:?} in {s:?} (expected ADDRESS or ADDRESS/PREFIX)")
            })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid prefix length {p:?} in {s:?} (0 to {max})"))?,
        };
        Ok(Cidr { network: network.to_canonical(), prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies trusted when none is named: loopback (`127.0.0.0/8`, `::1`).
pub fn default_trusted() -> Vec<Cidr> {
    vec![
        Cidr { network: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), prefix: 8 },
        Cidr { network: IpAddr::V6(Ipv6Addr::LOCALHOST), prefix: 128 },
    ]
}

/// A listener's PROXY settings (`--accept-proxy`, `accept-proxy`): whom it trusts and
/// how long a header may take to arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptProxy {
    /// The proxies allowed to send a header (`--proxy-from`); empty: loopback only.
    pub trusted: Vec<Cidr>,
    /// How long the header may take (the handshake timeout).
    pub timeout: Duration,
}

/// A connection whose PROXY header was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxied {
    /// The client's address: the header's source, or, for a LOCAL or UNKNOWN header, the
    /// connection's own peer (the proxy itself, as for a health check).
    pub client: Address,
    /// The proxy's address (the connection's peer).
    pub proxy: Address,
    /// The header as read.
    pub header: Header,
}

impl AcceptProxy {
    /// The settings of a listener with `options` (`accept_proxy`, `proxy_from`, the
    /// handshake limit), if it accepts PROXY headers.
    pub fn of(options: &crate::endpoint::EndpointOptions) -> Option<Self> {
        options.accept_proxy.then(|| AcceptProxy {
            trusted: options.proxy_from.clone(),
            timeout: options.handshake_timeout.unwrap_or(HEADER_TIMEOUT),
        })
    }

    /// Whether a proxy at `ip` may send a header.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        if self.trusted.is_empty() {
            default_trusted().iter().any(|c| c.contains(ip))
        } else {
            self.trusted.iter().any(|c| c.contains(ip))
        }
    }

    /// Checks that `proxy` (the connection's peer) is trusted, then reads its header from
    /// `io` within the limit. A UNIX socket's peer is trusted: who may connect is the
    /// socket file's permissions' to say.
    ///
    /// # Errors
    /// Why the connection is refused, in words that follow `PROXY header from PEER: `.
    pub async fn accept<IO: AsyncRead + Unpin>(
        &self,
        io: &mut IO,
        proxy: &Address,
    ) -> Result<Proxied, String> {
        if let Address::Inet(addr) = proxy
            && !self.trusts(addr.ip())
        {
            let trusted = if self.trusted.is_empty() {
                "only loopback is, without --proxy-from".to_string()
            } else {
                format!(
                    "trusted: {}",
                    self.trusted.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                )
            };
            return Err(format!("not a trusted proxy ({trusted})"));
        }
        let header = read_header(io, self.timeout).await?;
        let client = header.source().map_or_else(|| proxy.clone(), Address::Inet);
        Ok(Proxied { client, proxy: proxy.clone(), header })
    }
}

/// Reads one header from `io`, exactly its bytes, within `limit`.
///
/// # Errors
/// Why, in words: a malformed header, the end of the connection before it, the limit.
pub async fn read_header<IO: AsyncRead + Unpin>(io: &mut IO, limit: Duration) -> Result<Header, String> {
    let read = async {
        let mut buf = Vec::with_capacity(64);
        loop {
            match parse(&buf).map_err(|e| e.to_string())? {
                Parse::Done(header, _) => return Ok(header),
                Parse::NeedMore(n) => {
                    let (mut filled, target) = (buf.len(), buf.len() + n);
                    buf.resize(target, 0);
                    while filled < target {
                        match io.read(&mut buf[filled..target]).await {
                            Ok(0) => {
                                return Err(format!(
                                    "the connection ended after {filled} bytes of a PROXY header"
                                ));
                            }
                            Ok(read) => filled += read,
                            Err(e) => return Err(format!("reading the PROXY header failed: {e}")),
                        }
                    }
                }
            }
        }
    };
    match tokio::time::timeout(limit, read).await {
        Ok(result) => result,
        Err(_) => Err(format!("no complete PROXY header within {limit:?}")),
    }
}

/// Writes `header` to `io` (a connection just opened, before anything else).
///
/// # Errors
/// The write's.
pub async fn send<IO: AsyncWrite + Unpin>(io: &mut IO, header: &Header) -> std::io::Result<()> {
    io.write_all(&encode(header)).await?;
    io.flush().await
}

/// What a connection opened for a client of ours carries as its PROXY header: the
/// accepted client's and our listening side's addresses, and the TLS it terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The client (source) and the address it reached (destination).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// The TLS version the client used and the name it asked for, when we terminated TLS.
    pub tls: Option<(String, Option<String>)>,
}

impl Origin {
    /// The header to send in `version`.
    pub fn header(&self, version: Version) -> Header {
        let header = Header { version, addresses: self.addresses, tlvs: Vec::new() };
        match (&self.tls, version) {
            (Some((tls_version, sni)), Version::V2) => header.with_tls(tls_version, sni.as_deref()),
            _ => header,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn done(buf: &[u8]) -> (Header, usize) {
        match parse(buf).unwrap() {
            Parse::Done(h, n) => (h, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v1_lines() {
        let (h, n) = done(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /");
        assert_eq!(n, 45);
        assert_eq!(
            h.addresses,
            Some(("192.0.2.1:56324".parse().unwrap(), "198.51.100.2:443".parse().unwrap()))
        );
        let (h, _) = done(b"PROXY TCP6 ::1 2001:db8::2 1 65535\r\n");
        assert_eq!(h.source(), Some("[::1]:1".parse().unwrap()));
        assert_eq!(done(b"PROXY UNKNOWN\r\n").0, Header::local(Version::V1));
        assert_eq!(done(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").1, 35);
        for bad in [
            &b"GARBAGE\r\n"[..],
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
            b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4\n",
            b"PROXY \xff",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b"PROXY ".as_slice(), &[b'A'; 101]].concat();
        assert!(parse(&long).is_err());
        assert_eq!(parse(&long[..106]), Ok(Parse::NeedMore(1)));
        // A few reads, not a byte at a time.
        assert_eq!(parse(b"PROXY "), Ok(Parse::NeedMore(9)));
        assert_eq!(parse(b"PROXY TCP4 "), Ok(Parse::NeedMore(7 + 8 + 2 + 2 + 2)));
        assert_eq!(parse(b"PROXY TCP4 192.0.2.1 1"), Ok(Parse::NeedMore(6 + 2 + 2 + 2)));
        assert_eq!(parse(b"PROXY UNKNOWN "), Ok(Parse::NeedMore(2)));
        assert_eq!(parse(b"PROXY TCP4 1.1.1.1 1.1.1.1 1 1\r"), Ok(Parse::NeedMore(1)));
        assert!(parse(b"PROXY UDP4 ").is_err());
    }

    #[test]
    fn need_more_never_reaches_past_the_header() {
        for header in [
            encode(&Header::local(Version::V1)),
            encode(&Header::local(Version::V2)),
            encode(&Header::proxied(Version::V1, "1.2.3.4:5".parse().unwrap(), "5.6.7.8:9".parse().unwrap())),
            encode(
                &Header::proxied(Version::V2, "[::1]:5".parse().unwrap(), "[::2]:9".parse().unwrap())
                    .with_tls("TLSv1.3", Some("example.com")),
            ),
        ] {
            let mut buf = Vec::new();
            loop {
                match parse(&buf).unwrap() {
                    Parse::NeedMore(n) => {
                        assert!(buf.len() + n <= header.len(), "asked past the end");
                        buf.extend_from_slice(&header[buf.len()..buf.len() + n]);
                    }
                    Parse::Done(_, used) => {
                        assert_eq!(used, header.len());
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn v2_headers() {
        // haproxy's send-proxy-v2 for 127.0.0.1:40000 -> 127.0.0.1:8080, no TLVs.
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0x21, 0x11, 0, 12, 127, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40, 0x1f, 0x90]);
        bytes.extend_from_slice(b"payload");
        let (h, n) = done(&bytes);
        assert_eq!(n, 28);
        assert_eq!(h.source(), Some("127.0.0.1:40000".parse().unwrap()));
        // LOCAL with addresses: they are ignored.
        bytes[12] = 0x20;
        assert_eq!(done(&bytes).0.addresses, None);
        bytes[12] = 0x22;
        assert!(parse(&bytes).is_err(), "unknown command");
        bytes[12] = 0x31;
        assert!(parse(&bytes).is_err(), "version 3");
        bytes[12] = 0x21;
        bytes[13] = 0x12;
        assert!(parse(&bytes).is_err(), "UDP");
        bytes[13] = 0x21;
        assert!(parse(&bytes).is_err(), "IPv6 in 12 bytes");
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(parse(&huge).is_err(), "64 KiB of TLVs");
        let mut truncated = V2_SIGNATURE.to_vec();
        truncated.extend_from_slice(&[0x21, 0x00, 0, 2, 1, 0]);
        assert!(parse(&truncated).is_err(), "truncated TLV");
        let tls = Header::proxied(Version::V2, "1.2.3.4:5".parse().unwrap(), "5.6.7.8:9".parse().unwrap())
            .with_tls("TLSv1.3", Some("example.com"));
        let (parsed, _) = done(&encode(&tls));
        assert_eq!(parsed.ssl_version().as_deref(), Some("TLSv1.3"));
        assert_eq!(parsed.authority().as_deref(), Some("example.com"));
    }

    #[test]
    fn trust() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.0".parse().unwrap()));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("1.2.3.4".parse().unwrap()));
        let host: Cidr = "::1".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()) && !host.contains("::2".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "::/129", "1.2.3.4/"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let default = AcceptProxy { trusted: Vec::new(), timeout: Duration::from_secs(1) };
        assert!(default.trusts("127.0.0.2".parse().unwrap()) && default.trusts("::1".parse().unwrap()));
        assert!(!default.trusts("192.0.2.1".parse().unwrap()));
    }

    fn addr(v6: bool) -> impl Strategy<Value = SocketAddr> {
        (any::<[u8; 16]>(), any::<u16>()).prop_map(move |(b, port)| {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(b))
            } else {
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            };
            SocketAddr::new(ip, port)
        })
    }

    fn header() -> impl Strategy<Value = Header> {
        let tlvs = proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(kind, value)| Tlv { kind, value }),
            0..8,
        );
        (any::<bool>(), any::<bool>(), any::<bool>(), tlvs).prop_flat_map(|(v2, v6, local, tlvs)| {
            (addr(v6), addr(v6)).prop_map(move |(s, d)| Header {
                version: if v2 { Version::V2 } else { Version::V1 },
                addresses: (!local).then_some((s, d)),
                tlvs: if v2 { tlvs.clone() } else { Vec::new() },
            })
        })
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(header in header(), tail in proptest::collection::vec(any::<u8>(), 0..32)) {
            let bytes = encode(&header);
            let with_tail = [bytes.clone(), tail].concat();
            prop_assert_eq!(parse(&with_tail), Ok(Parse::Done(header, bytes.len())));
        }
    }

    #[tokio::test]
    async fn read_header_leaves_the_payload() {
        let header = Header::proxied(Version::V1, "1.2.3.4:5".parse().unwrap(), "5.6.7.8:9".parse().unwrap());
        let bytes = [encode(&header), b"\x16\x03\x01rest".to_vec()].concat();
        let mut io = &bytes[..];
        assert_eq!(read_header(&mut io, Duration::from_secs(1)).await, Ok(header));
        assert_eq!(io, b"\x16\x03\x01rest");
        let mut short = &b"PROXY TCP4 1.2"[..];
        assert!(
            read_header(&mut short, Duration::from_secs(1)).await.unwrap_err().contains("ended after 14")
        );
    }
}
