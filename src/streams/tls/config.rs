//! TLS settings for clients and servers, built into rustls configurations.
//!
//! Only TLS 1.2 and 1.3 exist here (rustls has nothing older). The crypto provider is
//! aws-lc-rs (the default `aws-lc` feature), or `ring` when built with
//! `--no-default-features --features ring`; aws-lc-rs wins when both features are on, and
//! `streamtool --version` names the one built in.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::verify::{ClientVerifier, PeerVerifier, Pin, is_ca};
use crate::streams::error::{Result, StreamError};

#[cfg(not(any(feature = "ring", feature = "aws-lc")))]
compile_error!("streamtool needs a rustls crypto provider: enable the `ring` or the `aws-lc` feature");

/// The crypto provider used everywhere.
#[cfg(feature = "aws-lc")]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The crypto provider used everywhere.
#[cfg(all(feature = "ring", not(feature = "aws-lc")))]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

impl TlsVersion {
    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        }
    }

    /// From what rustls negotiated.
    pub fn from_rustls(version: rustls::ProtocolVersion) -> Option<Self> {
        match version {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::V1_2),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::V1_3),
            _ => None,
        }
    }
}

impl fmt::Display for TlsVersion {
    /// `TLSv1.2` / `TLSv1.3`, as AnyIO's `tls_version` and OpenSSL print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::V1_2 => "TLSv1.2",
            TlsVersion::V1_3 => "TLSv1.3",
        })
    }
}

impl FromStr for TlsVersion {
    type Err = String;

    /// Accepts `1.2`, `TLS1.2`, `TLSv1.2`, `tls1_2`, `TLSv1_3` and the like.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase().replace('_', ".");
        let bare = lower.strip_prefix("tlsv").or_else(|| lower.strip_prefix("tls")).unwrap_or(&lower);
        match bare {
            "1.2" | "12" => Ok(TlsVersion::V1_2),
            "1.3" | "13" => Ok(TlsVersion::V1_3),
            "1.0" | "1.1" | "1" | "10" | "11" => {
                Err(format!("TLS version {s:?} is not supported: TLS 1.2 is the oldest streamtool speaks"))
            }
            _ => Err(format!("unknown TLS version {s:?} (expected 1.2 or 1.3)")),
        }
    }
}

/// The admitted range of versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// The oldest version offered or accepted.
    pub min: TlsVersion,
    /// The newest.
    pub max: TlsVersion,
}

impl Default for VersionRange {
    fn default() -> Self {
        VersionRange { min: TlsVersion::V1_2, max: TlsVersion::V1_3 }
    }
}

impl VersionRange {
    fn versions(&self) -> Result<Vec<&'static SupportedProtocolVersion>> {
        if self.min > self.max {
            return Err(StreamError::TlsConfig(format!(
                "the minimum TLS version ({}) is above the maximum ({})",
                self.min, self.max
            )));
        }
        Ok([TlsVersion::V1_2, TlsVersion::V1_3]
            .into_iter()
            .filter(|v| *v >= self.min && *v <= self.max)
            .map(TlsVersion::rustls)
            .collect())
    }
}

/// Where TLS secrets are logged for Wireshark (NSS key log format).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyLog {
    /// Nowhere.
    Off,
    /// The file named by `SSLKEYLOGFILE`, if that is set (as curl and browsers do).
    #[default]
    FromEnv,
    /// This file (`--keylog`), created 0600 and appended to; see [`open_secret_append`].
    File(PathBuf),
    /// Where the first says, and to this one too (a capture's secrets).
    Also(Box<KeyLog>, KeySink),
}

/// A key log of the caller's (compared by identity).
#[derive(Clone)]
pub struct KeySink(pub Arc<dyn rustls::KeyLog>);

impl fmt::Debug for KeySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySink")
    }
}

impl PartialEq for KeySink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for KeySink {}

/// Both key logs.
#[derive(Debug)]
struct Tee(Arc<dyn rustls::KeyLog>, Arc<dyn rustls::KeyLog>);

impl rustls::KeyLog for Tee {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.0.log(label, client_random, secret);
        self.1.log(label, client_random, secret);
    }
}

/// Writes key log lines to a file.
struct KeyLogWriter {
    file: Mutex<File>,
}

impl fmt::Debug for KeyLogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyLogWriter")
    }
}

impl rustls::KeyLog for KeyLogWriter {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
        if let Ok(mut file) = self.file.lock() {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl KeyLog {
    fn build(&self) -> Result<Option<Arc<dyn rustls::KeyLog>>> {
        match self {
            KeyLog::Off => Ok(None),
            KeyLog::FromEnv => match std::env::var_os("SSLKEYLOGFILE") {
                Some(path) if !path.is_empty() => KeyLog::File(PathBuf::from(path)).build(),
                _ => Ok(None),
            },
            KeyLog::File(path) => {
                let file = open_secret_append(path).map_err(|e| {
                    StreamError::TlsConfig(format!("cannot use key log file {}: {e}", path.display()))
                })?;
                tracing::warn!(target: "streamtool::insecure", path = %path.display(), "logging TLS secrets: anyone with this file can decrypt the traffic");
                Ok(Some(Arc::new(KeyLogWriter { file: Mutex::new(file) })))
            }
            KeyLog::Also(first, sink) => Ok(Some(match first.build()? {
                Some(first) => Arc::new(Tee(first, Arc::clone(&sink.0))),
                None => Arc::clone(&sink.0),
            })),
        }
    }
}

/// Opens a file that secrets are appended to (the key log), never following a symbolic
/// link (`O_NOFOLLOW`). A new file is created 0600; an existing one is used only if it is
/// a regular file owned by this user with no permissions for group or others, so that
/// nobody else can read the secrets or have planted the file (docs/design.md §4.3, issue 26).
///
/// # Errors
/// The OS error, or one saying which rule the file breaks.
pub fn open_secret_append(path: &std::path::Path) -> std::io::Result<File> {
    use crate::streams::platform::fs::{MetadataExt, OpenOptionsExt};
    use std::io::{Error, ErrorKind};
    #[cfg(unix)]
    let flags = (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits();
    #[cfg(not(unix))]
    let flags = 0;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            #[cfg(unix)]
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => {
                Error::new(ErrorKind::InvalidInput, "it is a symbolic link (not followed for secrets)")
            }
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let me = crate::streams::platform::euid();
    if meta.uid() != me {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("owned by uid {}, not by you (uid {me}); remove it or use another file", meta.uid()),
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("its mode {mode:04o} lets group or others in; chmod 600 it, or remove it"),
        ));
    }
    Ok(file)
}

/// Which certificates a client trusts.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// The system's store.
    #[default]
    System,
    /// Exactly these (a `--ca` PEM bundle). A self-signed certificate listed here is also
    /// trusted as itself when it is the server's certificate; see `docs/tls.md`.
    Certificates(Vec<CertificateDer<'static>>),
}

/// A certificate chain with its private key.
#[derive(Debug)]
pub struct Identity {
    /// The leaf first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

/// Settings of a TLS client.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// The trusted certificates.
    pub trust: Trust,
    /// SHA-256 pins: the server's certificate or public key must match one. Without a
    /// `--ca` (that is, with [`Trust::System`]), a matching pin is the whole verification.
    pub pins: Vec<Pin>,
    /// Skip verification altogether (`--insecure`).
    pub insecure: bool,
    /// ALPN protocols to offer, most preferred first.
    pub alpn: Vec<Vec<u8>>,
    /// Send SNI (the default); `--no-sni` turns it off.
    pub no_sni: bool,
    /// The version range.
    pub versions: VersionRange,
    /// A client certificate for servers that ask for one (mTLS).
    pub identity: Option<Identity>,
    /// Key logging.
    pub keylog: KeyLog,
}

impl ClientOptions {
    /// Builds the rustls configuration.
    ///
    /// # Errors
    /// [`StreamError::TlsConfig`]: a bad version range, an unreadable key log file, a
    /// client key that does not fit its certificate, no usable trusted certificate.
    pub fn build(&self) -> Result<Arc<ClientConfig>> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&self.versions.versions()?)
            .map_err(|e| StreamError::TlsConfig(e.to_string()))?;
        let (roots, explicit) = match &self.trust {
            Trust::System => (system_roots(), Vec::new()),
            Trust::Certificates(certs) => {
                // Only CAs become anchors; every listed certificate (a self-signed leaf
                // included) may still be trusted as an exact match; see `PeerVerifier`.
                (anchors(certs), certs.clone())
            }
        };
        let webpki = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| StreamError::TlsConfig(e.to_string()))?,
            )
        };
        let pins_only = !self.pins.is_empty() && matches!(self.trust, Trust::System);
        if webpki.is_none() && explicit.is_empty() && !pins_only && !self.insecure {
            return Err(StreamError::TlsConfig(
                "no trusted certificate: the CA file or system store is empty".into(),
            ));
        }
        let verifier = PeerVerifier {
            webpki,
            explicit,
            pins: self.pins.clone(),
            pins_only,
            insecure: self.insecure,
            provider: Arc::clone(&provider),
        };
        let builder = builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier));
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|e| StreamError::TlsConfig(format!("client certificate: {e}")))?,
        };
        config.alpn_protocols = self.alpn.clone();
        config.enable_sni = !self.no_sni;
        if let Some(keylog) = self.keylog.build()? {
            config.key_log = keylog;
        }
        Ok(Arc::new(config))
    }
}

/// The trust anchors among listed certificates: those that are CAs ([`is_ca`]). A
/// certificate that is not a CA never issues (OpenSSL: "invalid CA certificate").
fn anchors(certs: &[CertificateDer<'static>]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        if !is_ca(cert.as_ref()) {
            tracing::debug!("a listed certificate is not a CA: trusted as itself only");
            continue;
        }
        if let Err(err) = roots.add(cert.clone()) {
            tracing::debug!(error = %err, "CA certificate not usable as a trust anchor");
        }
    }
    roots
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::debug!(error = %err, "while loading the system's trusted certificates");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system trust store loaded");
    roots
}

/// Whether and how a server asks clients for certificates.
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    /// Not asked for.
    #[default]
    None,
    /// Asked for and verified against these CAs when given; clients without one get in.
    Optional(Vec<CertificateDer<'static>>),
    /// Required and verified against these CAs (`--require-client-cert`).
    Required(Vec<CertificateDer<'static>>),
}

/// Settings of a TLS server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The server's certificate and key.
    pub identity: Identity,
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// Which verified client certificates get in (`--allow-cn`, `--allow-san`,
    /// `--allow-spki`); when not empty, a client certificate is required.
    pub allow: super::ClientAllow,
    /// ALPN protocols accepted, in the server's order of preference.
    pub alpn: Vec<Vec<u8>>,
    /// The version range.
    pub versions: VersionRange,
    /// Key logging.
    pub keylog: KeyLog,
}

impl ServerOptions {
    /// Options with defaults for everything but the identity.
    pub fn new(identity: Identity) -> Self {
        ServerOptions {
            identity,
            client_auth: ClientAuth::None,
            allow: super::ClientAllow::default(),
            alpn: Vec::new(),
            versions: VersionRange::default(),
            keylog: KeyLog::FromEnv,
        }
    }

    /// Builds the rustls configuration.
    ///
    /// # Errors
    /// [`StreamError::TlsConfig`]: the key does not match the certificate, a bad version
    /// range, an empty client CA list, an unreadable key log file.
    pub fn build(&self) -> Result<Arc<ServerConfig>> {
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&self.versions.versions()?)
            .map_err(|e| StreamError::TlsConfig(e.to_string()))?;
        let builder = match &self.client_auth {
            ClientAuth::None if !self.allow.is_empty() => {
                return Err(StreamError::TlsConfig("a client allow-list needs client CAs".into()));
            }
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(cas) | ClientAuth::Required(cas) => {
                let mandatory = matches!(self.client_auth, ClientAuth::Required(_)) || !self.allow.is_empty();
                if cas.is_empty() {
                    return Err(StreamError::TlsConfig("client CA: no certificate".into()));
                }
                // As for servers: only CAs issue; a listed leaf is trusted as itself only.
                let roots = anchors(cas);
                let webpki = if roots.is_empty() {
                    None
                } else {
                    let verifier =
                        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
                    let verifier = if mandatory { verifier } else { verifier.allow_unauthenticated() };
                    Some(verifier.build().map_err(|e| StreamError::TlsConfig(format!("client CA: {e}")))?)
                };
                builder.with_client_cert_verifier(Arc::new(ClientVerifier {
                    webpki,
                    explicit: cas.clone(),
                    mandatory,
                    provider: Arc::clone(&provider),
                    allow: self.allow.clone(),
                }))
            }
        };
        let mut config = builder
            .with_single_cert(self.identity.chain.clone(), self.identity.key.clone_key())
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => {
                    StreamError::TlsConfig("the private key does not match the certificate".into())
                }
                other => StreamError::TlsConfig(format!("server certificate: {other}")),
            })?;
        config.alpn_protocols = self.alpn.clone();
        // No TLS 1.3 session tickets: a client that only sends (`ncat --ssl --send-only`,
        // an upload) never reads them, so they sit in its receive buffer and its close
        // becomes a reset, which destroys the end of its upload still in flight to us
        // (seen with ncat 7.93: 8,355,840 of 8,388,608 bytes). Nothing here resumes
        // sessions, so the tickets bought nothing.
        config.send_tls13_tickets = 0;
        if let Some(keylog) = self.keylog.build()? {
            config.key_log = keylog;
        }
        Ok(Arc::new(config))
    }
}

/// The name to verify the server's certificate against (and to send as SNI): an IP
/// literal (with or without brackets) as an IP address, anything else as a DNS name
/// converted with IDNA 2008 / UTS #46 (`faß.de` becomes `xn--fa-hia.de`, not `fass.de`).
///
/// # Errors
/// [`StreamError::TlsConfig`] for a name that is neither.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    let ascii = idna::domain_to_ascii(bare)
        .map_err(|_| StreamError::TlsConfig(format!("{host:?} is not a valid host name")))?;
    ServerName::try_from(ascii)
        .map_err(|_| StreamError::TlsConfig(format!("{host:?} is not a valid host name")))
}
