//! Client allow-lists for mTLS (`--allow-cn`, `--allow-san`, `--allow-spki`): which of
//! the client certificates that chain to the client CAs get in. Checked by the server's
//! client verifier right after the chain verified; docs/tls.md, "Who may connect: client
//! allow-lists".

use std::cell::RefCell;
use std::net::IpAddr;

use x509_parser::extensions::GeneralName;

use super::verify::Pin;

/// The client identities a server admits; empty admits every verified certificate. Any
/// one match admits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAllow {
    /// Subject common names (`--allow-cn`), exact.
    pub cns: Vec<String>,
    /// Subject alternative names (`--allow-san`): a DNS name or an email address (case
    /// does not matter), a URI (exact), or an IP address (compared as an address).
    pub sans: Vec<String>,
    /// Key pins (`--allow-spki sha256:…`): SHA-256 of the certificate's public key.
    pub spki: Vec<Pin>,
}

/// One subject alternative name of a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// `DNS:name`.
    Dns(String),
    /// `URI:uri`.
    Uri(String),
    /// `email:address`.
    Email(String),
    /// `IP:address`.
    Ip(IpAddr),
}

impl std::fmt::Display for San {
    /// `DNS:x`, `URI:x`, `email:x`, `IP:x`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(v) => write!(f, "DNS:{v}"),
            San::Uri(v) => write!(f, "URI:{v}"),
            San::Email(v) => write!(f, "email:{v}"),
            San::Ip(v) => write!(f, "IP:{v}"),
        }
    }
}

/// What a client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject, as `openssl x509 -subject` writes it in RFC 4514 order (`CN=alice`).
    pub subject: String,
    /// The subject's first common name.
    pub cn: Option<String>,
    /// Its DNS, URI, email and IP subject alternative names.
    pub sans: Vec<San>,
    /// Its key pin (`sha256:…` of the public key), as `--pin` takes it.
    pub key_pin: Pin,
}

impl ClientIdentity {
    /// The identity in the certificate `der`, `None` if it does not parse.
    pub fn of(der: &[u8]) -> Option<ClientIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let cn = cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_string);
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(v) => sans.push(San::Dns(v.to_string())),
                    GeneralName::URI(v) => sans.push(San::Uri(v.to_string())),
                    GeneralName::RFC822Name(v) => sans.push(San::Email(v.to_string())),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_of(b) {
                            sans.push(San::Ip(ip));
                        }
                    }
                    _ => {}
                }
            }
        }
        let key_pin = Pin::of_public_key(der).ok()?;
        Some(ClientIdentity { subject: cert.subject().to_string(), cn, sans, key_pin })
    }

    /// The SANs, comma-separated (`DNS:a,IP:127.0.0.1`).
    pub fn sans_text(&self) -> String {
        self.sans.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }

    /// One line for logs: `subject CN=…, SANs …, key sha256:…`. Not escaped here (this
    /// layer knows no terminal): the log writer escapes every line it writes
    /// (`escape::escape_log_line`).
    pub fn describe(&self) -> String {
        let sans = if self.sans.is_empty() { "none".to_string() } else { self.sans_text() };
        format!("subject {}, SANs {}, key {}", self.subject, sans, self.key_pin)
    }

    /// The environment of an `--exec` command: `STREAMTOOL_CLIENT_SUBJECT`,
    /// `STREAMTOOL_CLIENT_CN` (when there is one), `STREAMTOOL_CLIENT_SANS`
    /// (comma-separated, `DNS:a,IP:127.0.0.1`), `STREAMTOOL_CLIENT_SPKI` (`sha256:…`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("STREAMTOOL_CLIENT_SUBJECT", self.subject.clone())];
        if let Some(cn) = &self.cn {
            env.push(("STREAMTOOL_CLIENT_CN", cn.clone()));
        }
        env.push(("STREAMTOOL_CLIENT_SANS", self.sans_text()));
        env.push(("STREAMTOOL_CLIENT_SPKI", self.key_pin.to_string()));
        env
    }
}

thread_local! {
    /// The refusal the client verifier last made on this thread, for the handshake's
    /// error: rustls sends `access_denied` only for an error without text. The verifier
    /// runs inside the poll of the handshake that then fails, in the same task and on the
    /// same thread, so [`take_refusal`] in that handshake's error path finds its own.
    static REFUSED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Notes why the verifier refused a client certificate (see [`REFUSED`]).
pub(crate) fn note_refusal(why: String) {
    REFUSED.with(|r| *r.borrow_mut() = Some(why));
}

/// The refusal noted on this thread, taken.
pub(crate) fn take_refusal() -> Option<String> {
    REFUSED.with(|r| r.borrow_mut().take())
}

/// A client certificate not on the allow-list (the source of the handshake's error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refused(pub(crate) String);

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

impl ClientAllow {
    /// Whether no allow-list was given (every verified certificate gets in).
    pub fn is_empty(&self) -> bool {
        self.cns.is_empty() && self.sans.is_empty() && self.spki.is_empty()
    }

    /// Whether `id` matches one entry.
    pub fn admits(&self, id: &ClientIdentity) -> bool {
        self.cns.iter().any(|cn| id.cn.as_deref() == Some(cn.as_str()))
            || self.spki.contains(&id.key_pin)
            || self.sans.iter().any(|want| id.sans.iter().any(|san| san_matches(want, san)))
    }
}

fn san_matches(want: &str, san: &San) -> bool {
    match san {
        San::Dns(v) | San::Email(v) => v.eq_ignore_ascii_case(want),
        San::Uri(v) => v == want,
        San::Ip(ip) => {
            want.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|w| w == *ip)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ClientIdentity {
        let mut params =
            rcgen::CertificateParams::new(vec!["Alice.example".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "Alice.example");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        ClientIdentity::of(cert.der().as_ref()).unwrap()
    }

    #[test]
    fn names_and_pin_are_read() {
        let id = identity();
        assert_eq!(id.cn.as_deref(), Some("Alice.example"));
        assert_eq!(id.sans_text(), "DNS:Alice.example,IP:127.0.0.1");
        assert!(id.describe().contains(&id.key_pin.to_string()));
    }

    #[test]
    fn any_entry_admits() {
        let id = identity();
        let none = ClientAllow::default();
        assert!(none.is_empty() && !none.admits(&id));
        let by_cn = ClientAllow { cns: vec!["Alice.example".into()], ..Default::default() };
        assert!(by_cn.admits(&id));
        let wrong_case_cn = ClientAllow { cns: vec!["alice.example".into()], ..Default::default() };
        assert!(!wrong_case_cn.admits(&id));
        let by_dns = ClientAllow { sans: vec!["ALICE.example".into()], ..Default::default() };
        assert!(by_dns.admits(&id));
        let by_ip = ClientAllow { sans: vec!["127.0.0.1".into()], ..Default::default() };
        assert!(by_ip.admits(&id));
        let by_pin = ClientAllow { spki: vec![id.key_pin], ..Default::default() };
        assert!(by_pin.admits(&id));
        let other = ClientAllow { cns: vec!["bob".into()], sans: vec!["bob.example".into()], spki: vec![] };
        assert!(!other.admits(&id));
    }
}
