//! The names a certificate is for, classified as mkcert does: a DNS name, a one-level
//! wildcard, an IP address or an email address, told apart by their form.

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::DnsName;

/// One subject alternative name, in its canonical form (DNS names lower-case ASCII, IDNs
/// in Punycode, IPv6 compressed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectName {
    /// A host name (`example.com`, `localhost`).
    Dns(String),
    /// A wildcard over one level (`*.example.com`), kept with its `*.`.
    Wildcard(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// An email address (an rfc822Name SAN).
    Email(String),
}

impl SubjectName {
    /// The name as text (`*.example.com`, `::1`).
    pub fn as_text(&self) -> String {
        match self {
            SubjectName::Dns(s) | SubjectName::Wildcard(s) | SubjectName::Email(s) => s.clone(),
            SubjectName::Ip(ip) => ip.to_string(),
        }
    }

    /// The SAN kind as OpenSSL prints it: `DNS`, `IP Address` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            SubjectName::Dns(_) | SubjectName::Wildcard(_) => "DNS",
            SubjectName::Ip(_) => "IP Address",
            SubjectName::Email(_) => "email",
        }
    }

    /// Whether a TLS server can be reached by this name (not an email address).
    pub fn is_host(&self) -> bool {
        !matches!(self, SubjectName::Email(_))
    }

    /// Whether this is `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        match self {
            SubjectName::Dns(s) => s == "localhost" || s.ends_with(".localhost"),
            SubjectName::Ip(ip) => ip.is_loopback(),
            _ => false,
        }
    }

    pub(crate) fn to_san(&self) -> Result<rcgen::SanType, String> {
        Ok(match self {
            SubjectName::Dns(s) | SubjectName::Wildcard(s) => {
                rcgen::SanType::DnsName(s.as_str().try_into().map_err(|e: rcgen::Error| e.to_string())?)
            }
            SubjectName::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            SubjectName::Email(s) => {
                rcgen::SanType::Rfc822Name(s.as_str().try_into().map_err(|e: rcgen::Error| e.to_string())?)
            }
        })
    }
}

impl fmt::Display for SubjectName {
    /// `DNS:example.com`, `IP Address:::1`, `email:me@example.com`, as OpenSSL prints SANs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.as_text())
    }
}

/// A name that cannot go into a certificate, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The name as given.
    pub name: String,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid name {:?}: {}", self.name, self.reason)
    }
}

impl std::error::Error for NameError {}

/// Classifies and checks one name.
///
/// - contains `@`: an email address (`local@domain`, ASCII local part);
/// - parses as an IP address (IPv6 may be in brackets): an IP address;
/// - only digits and dots, or contains `:`: meant as an address, and refused if it is not one;
/// - starts with `*.`: a wildcard over one level (`*.example.com`); a `*` anywhere else is
///   refused (`*.*.example.com`, `a*.example.com`, `*`);
/// - otherwise a DNS name, lower-cased, IDNs turned into Punycode (IDNA 2008/UTS 46, as
///   the TLS client matches them); a trailing dot is dropped.
///
/// # Errors
/// [`NameError`] naming the name and the reason: empty, spaces or control characters,
/// an invalid address, a misplaced wildcard, a URL, a port, a bad label.
pub fn parse_name(name: &str) -> Result<SubjectName, NameError> {
    let fail = |reason: &str| NameError { name: name.to_string(), reason: reason.to_string() };
    if name.is_empty() {
        return Err(fail("a name cannot be empty"));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(fail("a name cannot contain spaces"));
    }
    if name.chars().any(char::is_control) {
        return Err(fail("a name cannot contain control characters"));
    }
    if name.contains("://") {
        return Err(fail("this is a URL; give the host name alone (URI SANs are not supported)"));
    }
    if name.contains('/') {
        return Err(fail("a name cannot contain '/' (give an address, not a network)"));
    }
    if let Some((local, domain)) = name.rsplit_once('@') {
        return parse_email(local, domain).map_err(|reason| fail(&reason));
    }
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SubjectName::Ip(ip));
    }
    if bare.contains('%') && bare.contains(':') {
        return Err(fail("an IPv6 zone (%...) cannot go into a certificate"));
    }
    if let Some((host, port)) = name.rsplit_once(':')
        && !host.contains(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(fail(&format!("certificates name hosts, not ports: give {host:?} without \":{port}\"")));
    }
    if bare.contains(':') {
        return Err(fail("not a valid IPv6 address"));
    }
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(fail("not a valid IPv4 address"));
    }
    if name.contains('*') {
        let Some(rest) = name.strip_prefix("*.") else {
            return Err(fail(if name == "*" {
                "a wildcard needs a domain: *.example.com"
            } else {
                "a wildcard must be the whole leftmost label, as in *.example.com"
            }));
        };
        if rest.contains('*') {
            return Err(fail("only one wildcard level is possible (*.example.com, not *.*.example.com)"));
        }
        let domain = dns_name(rest).map_err(|reason| fail(&reason))?;
        return Ok(SubjectName::Wildcard(format!("*.{domain}")));
    }
    dns_name(name).map(SubjectName::Dns).map_err(|reason| fail(&reason))
}

/// Parses every name, drops repeats (after canonicalisation) and keeps the order.
///
/// # Errors
/// The first [`NameError`].
pub fn parse_names<S: AsRef<str>>(names: &[S]) -> Result<Vec<SubjectName>, NameError> {
    let mut out: Vec<SubjectName> = Vec::new();
    for name in names {
        let parsed = parse_name(name.as_ref())?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

/// A DNS host name in canonical ASCII form.
fn dns_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("a host name cannot be empty".into());
    }
    if name.starts_with('.') || name.contains("..") {
        return Err("empty label (two dots in a row, or a leading dot)".into());
    }
    let ascii = idna::domain_to_ascii(name).map_err(|_| "not a valid host name (IDNA)".to_string())?;
    for label in ascii.split('.') {
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!("{c:?} is not allowed in a host name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    if ascii.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    if ascii.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err("the last label cannot be all digits (is it an IP address?)".into());
    }
    DnsName::try_from(ascii.as_str()).map_err(|_| "not a valid host name".to_string())?;
    Ok(ascii)
}

fn parse_email(local: &str, domain: &str) -> Result<SubjectName, String> {
    if local.is_empty() {
        return Err("an email address needs a local part before '@'".into());
    }
    if local.contains('@') {
        return Err("an email address has one '@'".into());
    }
    if local.len() > 64 {
        return Err("the local part of an email address is at most 64 characters".into());
    }
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~.-";
    if let Some(c) = local.chars().find(|c| !(c.is_ascii_alphanumeric() || SPECIALS.contains(*c))) {
        return Err(format!("{c:?} is not allowed in the local part of an email address"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("misplaced '.' in the local part of an email address".into());
    }
    if domain.is_empty() {
        return Err("an email address needs a domain after '@'".into());
    }
    if domain.contains('*') {
        return Err("an email domain cannot be a wildcard".into());
    }
    let domain = dns_name(domain).map_err(|why| format!("email domain: {why}"))?;
    Ok(SubjectName::Email(format!("{local}@{domain}")))
}

/// The note printed for a wildcard: what it covers and what it does not.
pub fn wildcard_note(wildcard: &str) -> Option<String> {
    let domain = wildcard.strip_prefix("*.")?;
    let mut note = format!(
        "{wildcard} covers one level only: a.{domain} but not {domain} itself nor a.b.{domain}; add {domain} if you need it"
    );
    if !domain.contains('.') {
        note.push_str(&format!(
            "; many clients (browsers among them) refuse a wildcard directly under a top-level name like {domain}"
        ));
    }
    Some(note)
}

/// The default file stem for a certificate, as mkcert names them: the first name with
/// `*` as `_wildcard` and `:` as `_`, `+N` for N more names, and `-client` for client
/// certificates (`example.com+3`, `_wildcard.example.com`, `__1`).
pub fn default_file_stem(names: &[SubjectName], client: bool) -> String {
    let mut stem = match names.first() {
        Some(first) => first.as_text().replace('*', "_wildcard").replace(':', "_"),
        None => "cert".to_string(),
    };
    if names.len() > 1 {
        stem.push_str(&format!("+{}", names.len() - 1));
    }
    if client {
        stem.push_str("-client");
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> SubjectName {
        parse_name(name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn err(name: &str) -> String {
        parse_name(name).expect_err(name).to_string()
    }

    #[test]
    fn names_are_classified_by_form() {
        assert_eq!(ok("Example.COM"), SubjectName::Dns("example.com".into()));
        assert_eq!(ok("localhost."), SubjectName::Dns("localhost".into()));
        assert_eq!(ok("faß.de"), SubjectName::Dns("xn--fa-hia.de".into()));
        assert_eq!(ok("_dmarc.example.com"), SubjectName::Dns("_dmarc.example.com".into()));
        assert_eq!(ok("127.0.0.1"), SubjectName::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(ok("::1"), SubjectName::Ip("::1".parse().unwrap()));
        assert_eq!(ok("[2001:db8::1]"), SubjectName::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(ok("*.Example.com"), SubjectName::Wildcard("*.example.com".into()));
        assert_eq!(ok("me+tag@Example.com"), SubjectName::Email("me+tag@example.com".into()));
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert!(err("").contains("empty"));
        assert!(err("my host").contains("spaces"));
        assert!(err("*.*.x").contains("one wildcard level"));
        assert!(err("a.*.example.com").contains("leftmost"));
        assert!(err("a*.example.com").contains("leftmost"));
        assert!(err("*").contains("needs a domain"));
        assert!(err("256.1.1.1").contains("IPv4"));
        assert!(err("1.2.3").contains("IPv4"));
        assert!(err("fe80::1::2").contains("IPv6"));
        assert!(err("fe80::1%eth0").contains("zone"));
        assert!(err("localhost:8443").contains("not ports"));
        assert!(err("https://example.com").contains("URL"));
        assert!(err("a..b").contains("empty label"));
        assert!(err("-a.com").contains("'-'"));
        assert!(err("a!.com").contains("not allowed"));
        assert!(err("@example.com").contains("local part"));
        assert!(err("me@").contains("domain"));
        assert!(err("me@*.example.com").contains("wildcard"));
        assert!(err("host.123").contains("all digits"));
        assert!(err(&"a".repeat(64)).contains("63"));
        assert!(err("my host").starts_with("invalid name \"my host\""));
    }

    #[test]
    fn repeats_are_dropped_and_order_kept() {
        let names = parse_names(&["b.com", "a.com", "B.com", "127.0.0.1", "[127.0.0.1]"]).unwrap();
        let texts: Vec<String> = names.iter().map(SubjectName::as_text).collect();
        assert_eq!(texts, ["b.com", "a.com", "127.0.0.1"]);
    }

    #[test]
    fn default_file_stems_follow_mkcert() {
        let stem = |names: &[&str], client| default_file_stem(&parse_names(names).unwrap(), client);
        assert_eq!(stem(&["example.com"], false), "example.com");
        assert_eq!(stem(&["example.com", "localhost", "::1"], false), "example.com+2");
        assert_eq!(stem(&["*.example.com"], false), "_wildcard.example.com");
        assert_eq!(stem(&["::1"], true), "__1-client");
    }
}
