//! Certificates made at test time: [`TestPki`] (DER, for the library's TLS options) and
//! [`PemPki`] (PEM files, for the binary's flags), both from one issuer ([`issue`]: a CA, a
//! server certificate for the given names, a clientAuth client certificate); the seed's
//! self-signed certificate made by the real `openssl` ([`seed_certificate`]); and what a
//! refused handshake's error says about the certificate ([`certificate_error`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use streamtool::certs;
use streamtool::streams::StreamError;
use streamtool::streams::tls::{ClientOptions, Identity, KeyLog, ServerOptions, Trust};

/// What [`issue`] makes: the CA and two leaves with their keys.
struct Issued {
    ca: rcgen::Certificate,
    server: (rcgen::Certificate, rcgen::KeyPair),
    client: (rcgen::Certificate, rcgen::KeyPair),
}

/// A CA ("streamtool test CA"; every CA made here has that name, so that a CA made for
/// another test is found as the issuer by name and refused for its key), a server
/// certificate for `names` (DNS names and IP addresses; serverAuth) and a client
/// certificate for `client.test` (clientAuth), both signed by the CA.
fn issue(names: &[&str]) -> Issued {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "streamtool test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert, key)
    };
    let server = leaf(names.iter().map(|n| n.to_string()).collect(), ExtendedKeyUsagePurpose::ServerAuth);
    let client = leaf(vec!["client.test".to_string()], ExtendedKeyUsagePurpose::ClientAuth);
    Issued { ca, server, client }
}

/// A test PKI made with rcgen at test time: a CA, a server certificate for the given
/// names (DNS names and IP addresses) and a client certificate (clientAuth), all signed by
/// the CA.
pub struct TestPki {
    /// The CA certificate.
    pub ca: CertificateDer<'static>,
    /// The server's chain and key.
    pub server: Identity,
    /// The client's chain and key.
    pub client: Identity,
}

impl TestPki {
    /// A PKI whose server certificate names `names`.
    pub fn new(names: &[&str]) -> TestPki {
        let issued = issue(names);
        let identity = |(cert, key): &(rcgen::Certificate, rcgen::KeyPair)| Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        };
        TestPki {
            ca: issued.ca.der().clone(),
            server: identity(&issued.server),
            client: identity(&issued.client),
        }
    }

    /// Client options that trust this CA.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            trust: Trust::Certificates(vec![self.ca.clone()]),
            keylog: KeyLog::Off,
            ..Default::default()
        }
    }

    /// Server options with the server certificate.
    pub fn server_options(&self) -> ServerOptions {
        let mut options = ServerOptions::new(self.server.clone());
        options.keylog = KeyLog::Off;
        options
    }
}

/// A test PKI as PEM files in a temporary directory: a CA, a server certificate for the
/// given names, and a client certificate (clientAuth), both signed by the CA.
pub struct PemPki {
    _dir: tempfile::TempDir,
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// The client's certificate.
    pub client_cert: PathBuf,
    /// The client's key.
    pub client_key: PathBuf,
}

impl PemPki {
    /// A PKI whose server certificate names `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> PemPki {
        let issued = issue(names);
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let ca = write("ca.pem", issued.ca.pem());
        let server_cert = write("server.pem", issued.server.0.pem());
        let server_key = write("server-key.pem", issued.server.1.serialize_pem());
        let client_cert = write("client.pem", issued.client.0.pem());
        let client_key = write("client-key.pem", issued.client.1.serialize_pem());
        PemPki { _dir: dir, ca, server_cert, server_key, client_cert, client_key }
    }

    /// Client options that trust this CA, for in-test TLS clients.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            trust: Trust::Certificates(certs::load_certs(&self.ca).expect("the CA PEM")),
            keylog: KeyLog::Off,
            ..Default::default()
        }
    }

    /// Server options with the server certificate, for in-test TLS servers.
    pub fn server_options(&self) -> ServerOptions {
        let mut options =
            ServerOptions::new(certs::load_identity(&self.server_cert, &self.server_key).unwrap());
        options.keylog = KeyLog::Off;
        options
    }
}

/// Makes the seed's certificate in `dir` with the real `openssl` binary:
/// `openssl req -x509 -newkey rsa:2048 -subj '/CN=localhost' -keyout key.pem -out cert.pem
/// -nodes -days 365`. Returns (cert.pem, key.pem).
pub fn seed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-nodes", "-days", "365"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the openssl binary is installed");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

/// The rustls error behind `err`, wherever it is in the chain of sources (an `io::Error`
/// wrapping one included).
pub fn rustls_error(err: &StreamError) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref())
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Why the certificate was refused, if it was.
pub fn certificate_error(err: &StreamError) -> Option<&rustls::CertificateError> {
    match rustls_error(err) {
        Some(rustls::Error::InvalidCertificate(reason)) => Some(reason),
        _ => None,
    }
}

/// Runs the real `openssl ARGS` in `dir`, failing the test unless it succeeds; returns its
/// output.
pub fn openssl(args: &[&str], dir: &Path) -> Output {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl binary is installed (.ci/run installs it)");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Runs the real `openssl ARGS` to its end, for a verdict that may be a refusal: whether it
/// succeeded, and its stdout and stderr together.
pub fn openssl_verdict(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl binary is installed (.ci/run installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
