//! Name constraints of a CA (RFC 5280 §4.2.1.10): the names a constrained CA may sign
//! for, given as `--permit NAME` (a DNS name and every name under it, or an IP range), put
//! in the CA certificate as a critical NameConstraints extension, read back from a CA
//! certificate, and checked before a leaf is issued. Defaults and decisions are in
//! `docs/gen-cert.md`.

use std::fmt;
use std::net::IpAddr;

use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};

use super::names::SubjectName;

/// One permitted (or excluded) subtree that gen-cert understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    /// A DNS name, lower-case, without a leading dot: it and every name under it.
    Dns(String),
    /// An IP range: the network address and the prefix length.
    Ip(IpAddr, u8),
}

/// The names a new local CA may sign for when none are given (`--permit`) and the CA is
/// not made with `--any-name`: what a developer names on one machine or a private network.
pub const DEFAULT_PERMITS: [&str; 12] = [
    "localhost",
    ".localhost",
    ".test",
    ".internal",
    ".local",
    ".home.arpa",
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
];

impl Permit {
    /// Parses `--permit`'s value: `localhost`, `.test` (the leading dot is optional: a DNS
    /// name always covers the names under it), `127.0.0.0/8`, `::1/128`, or a bare IP
    /// address (that address alone).
    ///
    /// # Errors
    /// Why the value is not a DNS name or an IP range, for a one-line usage error.
    pub fn parse(text: &str) -> Result<Permit, String> {
        let bad = |why: &str| Err(format!("--permit {text:?}: {why}"));
        if let Some((addr, prefix)) = text.split_once('/') {
            let Ok(addr) = addr.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
                return bad("not an IP range (expected ADDRESS/PREFIX, like 127.0.0.0/8)");
            };
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let Ok(prefix) = prefix.parse::<u8>() else {
                return bad("the prefix length is not a number");
            };
            if prefix > max {
                return bad(&format!("the prefix length is more than {max}"));
            }
            let network = mask(addr, prefix);
            if network != addr {
                return bad(&format!("has host bits set (the range is {network}/{prefix})"));
            }
            return Ok(Permit::Ip(network, prefix));
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(addr) = bare.parse::<IpAddr>() {
            return Ok(Permit::Ip(addr, if addr.is_ipv4() { 32 } else { 128 }));
        }
        let dns = text.strip_prefix('.').unwrap_or(text);
        if dns.starts_with("*.") {
            return bad("a wildcard is not needed: a name covers every name under it (.example.com)");
        }
        match super::names::parse_name(dns) {
            Ok(SubjectName::Dns(name)) => Ok(Permit::Dns(name)),
            Ok(_) => bad("expected a DNS name or an IP range"),
            Err(err) => bad(&err.to_string()),
        }
    }

    /// Whether `name` is inside this subtree (`None` when it is of another kind, which
    /// this subtree does not constrain).
    fn covers(&self, name: &SubjectName) -> Option<bool> {
        match (self, name) {
            (Permit::Dns(base), SubjectName::Dns(host)) => Some(dns_under(host, base)),
            (Permit::Dns(base), SubjectName::Wildcard(w)) => {
                Some(dns_under(w.strip_prefix("*.").unwrap_or(w), base))
            }
            (Permit::Ip(net, prefix), SubjectName::Ip(ip)) => {
                Some(net.is_ipv4() == ip.is_ipv4() && mask(*ip, *prefix) == *net)
            }
            _ => None,
        }
    }

    fn to_subtree(&self) -> GeneralSubtree {
        match self {
            Permit::Dns(name) => GeneralSubtree::DnsName(name.clone()),
            Permit::Ip(addr, prefix) => {
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(*addr, *prefix))
            }
        }
    }
}

impl fmt::Display for Permit {
    /// `localhost`, `.test`, `.example.com` (a name with a dot before it: it and the names
    /// under it), `127.0.0.0/8`, `::1/128`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permit::Dns(name) if name == "localhost" => f.write_str(name),
            Permit::Dns(name) => write!(f, ".{name}"),
            Permit::Ip(addr, prefix) => write!(f, "{addr}/{prefix}"),
        }
    }
}

fn dns_under(host: &str, base: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == base || host.ends_with(&format!(".{base}"))
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// A CA's name constraints, as far as gen-cert checks them (DNS names and IP ranges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// Permitted subtrees: a name of a kind listed here must be inside one of them.
    pub permitted: Vec<Permit>,
    /// Excluded subtrees: no name may be inside one of them.
    pub excluded: Vec<Permit>,
}

impl Constraints {
    /// The constraints from `--permit` values (the defaults when there are none).
    ///
    /// # Errors
    /// The first value that is not a DNS name or an IP range.
    pub fn permitting<S: AsRef<str>>(values: &[S]) -> Result<Constraints, String> {
        let mut permitted: Vec<Permit> = Vec::new();
        let defaults: Vec<&str> = DEFAULT_PERMITS.to_vec();
        let values: Vec<&str> =
            if values.is_empty() { defaults } else { values.iter().map(AsRef::as_ref).collect() };
        for value in values {
            let permit = Permit::parse(value)?;
            if !permitted.contains(&permit) {
                permitted.push(permit);
            }
        }
        Ok(Constraints { permitted, excluded: Vec::new() })
    }

    /// The extension rcgen writes (critical, as RFC 5280 requires).
    pub fn to_rcgen(&self) -> NameConstraints {
        NameConstraints {
            permitted_subtrees: self.permitted.iter().map(Permit::to_subtree).collect(),
            excluded_subtrees: self.excluded.iter().map(Permit::to_subtree).collect(),
        }
    }

    /// The DNS and IP constraints of a parsed CA certificate; `None` when it has no
    /// NameConstraints extension (other kinds of subtree are left to clients).
    ///
    /// # Errors
    /// A malformed extension.
    pub fn of_certificate(
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> Result<Option<Constraints>, String> {
        let Some(ext) = cert.name_constraints().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let convert = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
            let mut out = Vec::new();
            for subtree in subtrees.iter().flatten() {
                match &subtree.base {
                    x509_parser::extensions::GeneralName::DNSName(name) => {
                        let name = name.trim_start_matches('.').to_ascii_lowercase();
                        out.push(Permit::Dns(name));
                    }
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                        8 => {
                            let addr: [u8; 4] = bytes[..4].try_into().unwrap_or_default();
                            let m: [u8; 4] = bytes[4..].try_into().unwrap_or_default();
                            out.push(Permit::Ip(
                                IpAddr::from(addr),
                                u32::from_be_bytes(m).count_ones() as u8,
                            ));
                        }
                        32 => {
                            let addr: [u8; 16] = bytes[..16].try_into().unwrap_or_default();
                            let m: [u8; 16] = bytes[16..].try_into().unwrap_or_default();
                            out.push(Permit::Ip(
                                IpAddr::from(addr),
                                u128::from_be_bytes(m).count_ones() as u8,
                            ));
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
            out
        };
        Ok(Some(Constraints {
            permitted: convert(&ext.value.permitted_subtrees),
            excluded: convert(&ext.value.excluded_subtrees),
        }))
    }

    /// Whether the CA may sign for `name`: not in an excluded subtree, and inside a
    /// permitted one when there are permitted subtrees of its kind.
    pub fn allows(&self, name: &SubjectName) -> bool {
        if self.excluded.iter().any(|p| p.covers(name) == Some(true)) {
            return false;
        }
        let verdicts: Vec<bool> = self.permitted.iter().filter_map(|p| p.covers(name)).collect();
        verdicts.is_empty() || verdicts.contains(&true)
    }

    /// The permitted subtrees for people: `localhost, .test, 127.0.0.0/8`.
    pub fn permitted_text(&self) -> String {
        self.permitted.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::parse_name;

    #[test]
    fn permits_parse_and_cover_what_they_say() {
        let c = Constraints::permitting::<&str>(&[]).unwrap();
        for inside in [
            "localhost",
            "a.localhost",
            "x.test",
            "test",
            "*.app.test",
            "db.internal",
            "127.0.0.1",
            "10.1.2.3",
            "::1",
            "fd00::5",
            "me@example.com",
        ] {
            assert!(c.allows(&parse_name(inside).unwrap()), "{inside}");
        }
        for outside in [
            "example.com",
            "*.example.com",
            "localhost.com",
            "evil-test",
            "8.8.8.8",
            "2001:db8::1",
            "172.32.0.1",
        ] {
            assert!(!c.allows(&parse_name(outside).unwrap()), "{outside}");
        }
        assert_eq!(Permit::parse(".Test").unwrap(), Permit::Dns("test".into()));
        assert_eq!(Permit::parse("127.0.0.1").unwrap(), Permit::Ip("127.0.0.1".parse().unwrap(), 32));
        assert!(Permit::parse("127.0.0.1/8").unwrap_err().contains("host bits"));
        assert!(Permit::parse("10.0.0.0/33").unwrap_err().contains("more than 32"));
        assert!(Permit::parse("*.test").unwrap_err().contains("wildcard"));
        assert!(Permit::parse("a b").is_err());
        assert_eq!(c.permitted_text().split(", ").next(), Some("localhost"));
    }
}
