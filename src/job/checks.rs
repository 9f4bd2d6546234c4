//! What a client does right after its TLS handshake, in this order: the `handshake` event,
//! `--tofu`'s known-hosts check ([`tofu::check`]), `--show-cert`'s description (what
//! `openssl s_client -brief` shows), and `--require`'s clauses ([`require::check_all`]).

use tokio::io::{AsyncRead, AsyncWrite};

use crate::event::Report;
use crate::stack::require::{self, Requirement};
use crate::stack::tofu::{self, KnownHosts, TofuError};
use crate::streams::tls::TlsStream;

/// The checks a client runs after its handshake.
pub struct ClientChecks<'a> {
    /// `--tofu`: the known-hosts file, the target (`host:port`) its line is for, and how
    /// the option was spelt (`--tofu`, or `pipe`'s `tofu`) for the lines that name it.
    pub tofu: Option<(&'a KnownHosts, &'a str, crate::stack::Spelling)>,
    /// `--show-cert`: how the server was verified, in words, and where the description
    /// goes (stderr).
    pub show_cert: Option<(&'a str, &'a mut dyn std::io::Write)>,
    /// `--require`'s clauses.
    pub require: &'a [Requirement],
}

/// Why a client refuses the connection it made.
#[derive(Debug)]
pub enum CheckError {
    /// A check failed: the known key changed, or `--require` clauses did not hold (each
    /// line but the last is said first; this is the last).
    Refused(String),
    /// The known-hosts file could not be used.
    KnownHosts(TofuError),
}

/// Reports the handshake with `peer` and runs the checks.
///
/// # Errors
/// [`CheckError`] for the first check that refuses the server.
pub fn after_handshake<IO>(
    tls: &TlsStream<IO>,
    checks: ClientChecks<'_>,
    report: &dyn Report,
    peer: &str,
) -> Result<(), CheckError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    crate::server::report_handshake(tls, report, peer);
    if let Some((known_hosts, target, spelling)) = checks.tofu {
        tofu::check(tls, known_hosts, target, spelling, report)
            .map_err(CheckError::KnownHosts)?
            .map_err(CheckError::Refused)?;
    }
    if let Some((verification, out)) = checks.show_cert {
        // A closed stderr loses the description, not the connection.
        let _ = out.write_all(certificate_text(tls, verification).as_bytes());
    }
    let failed = require::check_all(tls, checks.require, report);
    match crate::event::say_all_but_last(report, failed) {
        None => Ok(()),
        Some(last) => Err(CheckError::Refused(last)),
    }
}

/// How a client verified its server, in `--show-cert`'s words: not at all (`--insecure`),
/// by the key pin in the known-hosts file (`--tofu`, with or without CAs), by `--pin`
/// alone, or by CAs.
pub fn verification(insecure: bool, tofu: bool, ca: bool, pinned: bool) -> &'static str {
    match (insecure, tofu, ca, pinned) {
        (true, ..) => "skipped (--insecure)",
        (false, true, false, _) => "OK (key pin in the known-hosts file, --tofu)",
        (false, true, true, _) => "OK (and key pin in the known-hosts file, --tofu)",
        (false, false, false, true) => "OK (pinned)",
        _ => "OK",
    }
}

/// `--show-cert`'s description of a session: protocol, cipher suite, key exchange, ALPN,
/// how the server was verified, and each certificate it sent.
pub fn certificate_text<IO>(tls: &TlsStream<IO>, verification: &str) -> String
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    let version = tls.protocol_version().map(|v| v.to_string()).unwrap_or_default();
    let alpn = tls.alpn_protocol().map(|p| String::from_utf8_lossy(&p).into_owned());
    let mut text = format!(
        "Protocol version: {version}\nCiphersuite: {}\nKey exchange: {}\nALPN protocol: {}\nVerification: {verification}\n",
        tls.cipher_suite().unwrap_or_default(),
        tls.key_exchange_group().as_deref().unwrap_or("none"),
        alpn.as_deref().unwrap_or("none"),
    );
    for (i, cert) in tls.peer_certificates().iter().enumerate() {
        text.push_str(&format!("Certificate {i}:\n{}", crate::certs::describe_certificate(cert.as_ref())));
    }
    text
}
