//! Addresses on the command line: what `serve` listens on and what `connect` reaches.
//! (`pipe`'s full endpoint grammar builds on these.)

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::streams::error::Result;
use crate::streams::listener::SocketListener;
use crate::streams::socket::{FamilyPreference, host_port, resolve};

const LISTEN_FORMS: &str = "expected PORT, HOST:PORT, [IPv6]:PORT or unix:PATH";
const CONNECT_FORMS: &str = "expected HOST:PORT, [IPv6]:PORT or unix:PATH";

/// Where `serve` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    /// A bare port: loopback only, IPv4 and IPv6 (DESIGN.md §4.5).
    LoopbackPort(u16),
    /// An IP address and port (`0.0.0.0:8080`, `[::]:8080`).
    Socket(SocketAddr),
    /// A host name and port: every address it resolves to.
    Host(String, u16),
    /// A UNIX socket path.
    Unix(PathBuf),
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
        return Ok((host, port));
    }
    let (host, port) =
        s.rsplit_once(':').ok_or_else(|| format!("invalid address {s:?}: missing :PORT ({forms})"))?;
    if host.contains(':') {
        return Err(format!("invalid address {s:?}: write IPv6 addresses in brackets, [{host}]:{port}"));
    }
    if host.is_empty() {
        return Err(format!("invalid address {s:?}: missing host ({forms})"));
    }
    Ok((host, port))
}

fn unix_path(s: &str) -> Option<std::result::Result<PathBuf, String>> {
    let path = s.strip_prefix("unix:")?;
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
        match self {
            ListenAddress::LoopbackPort(port) => match family {
                FamilyPreference::Any => SocketListener::bind_tcp_loopback(*port).await,
                FamilyPreference::V4Only => SocketListener::bind_tcp(([127, 0, 0, 1], *port).into()).await,
                FamilyPreference::V6Only => {
                    SocketListener::bind_tcp(SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), *port))
                        .await
                }
            },
            ListenAddress::Socket(addr) => SocketListener::bind_tcp(*addr).await,
            ListenAddress::Host(host, port) => {
                let mut listener: Option<SocketListener> = None;
                for addr in resolve(host, *port, family).await? {
                    let next = SocketListener::bind_tcp(addr).await?;
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
        for bad in ["", "70000", "host", "::1:80", "[::1]80", ":80", "unix:", "a:b"] {
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
