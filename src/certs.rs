//! Certificates and keys: loading PEM files with errors that name the file and the
//! problem, and making certificates with rcgen (what `streamtool gen-cert` does).
//!
//! Keys may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC). An encrypted key is refused with the
//! command that decrypts it, rather than a puzzling parse error.
//!
//! # Layout
//! - this file: loading PEM files, [`self_signed`] for `serve --tls` without a certificate;
//! - [`names`]: the names a certificate is for, classified mkcert-style;
//! - `constraints`: a CA's name constraints (`--permit`), written, read back and checked;
//! - `issue`: key types, a local CA, leaves, self-signed leaves, PKCS#12;
//! - `files`: atomic writes with the right mode, the CA directory, a leaf's files;
//! - [`make`]: what `gen-cert` does: the local CA opened or made, a leaf issued and
//!   written as one set of files (removed again on failure);
//! - [`trust`]: the local CA installed into the system trust store and removed again;
//! - [`stores`]: `--trust-stores`, the NSS databases (certutil), and the run over the
//!   chosen stores (all checked first, earlier changes undone on a failure);
//! - `report`: what `gen-cert` prints about it, as text or JSON;
//! - `inspect`: what a certificate says, as text or JSON;
//! - `describe`: a certificate described for `--show-cert`, events and the self-signed
//!   banner, with its pins.

mod constraints;
mod describe;
mod files;
mod inspect;
mod issue;
pub mod make;
pub mod names;
mod report;
pub mod stores;
pub mod trust;

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::streams::tls::{Identity, provider};

pub use constraints::{Constraints, DEFAULT_PERMITS, Permit};
pub use describe::{certificate_json, describe_certificate, pin_lines, self_signed_banner};
pub use files::{
    CA_CERT_FILE, CA_DIR_MODE, CA_KEY_FILE, CA_KEY_MODE, CERT_MODE, FileSet, KEY_MODE, LeafFiles,
    ca_dir_from, check_ca_dir, load_ca_dir, save_ca_dir, user_ca_dir, write_atomic,
};
pub use inspect::{CertInfo, expiry_phrase, format_time, general_name, inspect, inspect_file, rfc3339};
pub use issue::{CaSpec, CertAuthority, KeyType, LeafSpec, pem_certificate, pkcs12, self_signed_leaf};
pub use make::{CaMade, CertRequest, LeafMade, MakeError, StoreChoice};
pub use names::{NameError, SubjectName, parse_name, parse_names};
pub use report::{EXAMPLE_PORT, Report, expiring_within, inspect_report, shell_quote, trust_report};

/// What went wrong with a certificate or key file.
#[derive(Debug)]
#[non_exhaustive]
pub enum CertError {
    /// The file could not be read.
    Read(PathBuf, std::io::Error),
    /// The file has no PEM block of the expected kind.
    NoCertificate(PathBuf),
    /// The file has no private key.
    NoKey(PathBuf),
    /// The key is encrypted.
    EncryptedKey(PathBuf),
    /// A PEM block is malformed.
    Malformed(PathBuf, String),
    /// The key is not the certificate's.
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The key cannot be used (an unsupported algorithm).
    UnusableKey(PathBuf, String),
    /// rcgen could not make the certificate.
    Generate(String),
    /// The file exists and may not be replaced.
    Exists(PathBuf),
    /// The file could not be written.
    Write(PathBuf, std::io::Error),
    /// The file holds a private key where a certificate was expected.
    KeyNotCertificate(PathBuf),
    /// The certificate is not a CA's (no basic constraints CA:TRUE).
    NotCa(PathBuf),
    /// A block labelled CERTIFICATE in a chain does not hold a certificate (a key
    /// relabelled, garbage): it is never sent.
    NotCertificate {
        /// The file.
        path: PathBuf,
        /// The block's position among the file's CERTIFICATE blocks, from 1 (the leaf).
        position: usize,
        /// What is wrong with it.
        why: String,
    },
    /// An existing file or directory that would hold secrets is unsafe to use (owner,
    /// mode, a symbolic link).
    Unsafe(PathBuf, String),
    /// A CA directory holds only one of the certificate and the key.
    IncompleteCa {
        /// The CA directory.
        dir: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Read(p, e) => write!(f, "{}: cannot read: {e}", p.display()),
            CertError::NoCertificate(p) => {
                write!(
                    f,
                    "{}: no certificate found (expected a \"-----BEGIN CERTIFICATE-----\" block)",
                    p.display()
                )
            }
            CertError::NoKey(p) => write!(
                f,
                "{}: no private key found (expected a \"-----BEGIN PRIVATE KEY-----\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)",
                p.display()
            ),
            CertError::EncryptedKey(p) => write!(
                f,
                "{}: the private key is encrypted; decrypt it first: openssl pkey -in {0} -out key-decrypted.pem",
                p.display()
            ),
            CertError::Malformed(p, why) => write!(f, "{}: malformed PEM: {why}", p.display()),
            CertError::KeyMismatch { cert, key } => {
                write!(
                    f,
                    "the private key in {} does not match the certificate in {}",
                    key.display(),
                    cert.display()
                )
            }
            CertError::UnusableKey(p, why) => write!(f, "{}: unusable private key: {why}", p.display()),
            CertError::Generate(why) => write!(f, "cannot generate the certificate: {why}"),
            CertError::Exists(p) => write!(f, "{}: already exists; not replaced", p.display()),
            CertError::Write(p, e) => write!(f, "{}: cannot write: {e}", p.display()),
            CertError::KeyNotCertificate(p) => {
                write!(f, "{}: this file holds a private key, not a certificate", p.display())
            }
            CertError::NotCa(p) => {
                write!(f, "{}: not a CA certificate (no basic constraints CA:TRUE)", p.display())
            }
            CertError::NotCertificate { path, position, why } => write!(
                f,
                "{}: CERTIFICATE block {position} ({}) is not an X.509 certificate: {why}",
                path.display(),
                if *position == 1 { "the leaf" } else { "in the chain after the leaf" }
            ),
            CertError::Unsafe(p, why) => write!(f, "{}: refused: {why}", p.display()),
            CertError::IncompleteCa { dir, missing } => {
                write!(f, "the CA in {} is incomplete: {} is missing", dir.display(), missing.display())
            }
        }
    }
}

impl std::error::Error for CertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CertError::Read(_, e) | CertError::Write(_, e) => Some(e),
            _ => None,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|e| CertError::Read(path.to_path_buf(), e))
}

/// Every certificate in a PEM file (a bundle), in order.
///
/// # Errors
/// [`CertError`] naming the file: unreadable, malformed, or no certificate in it.
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let path = path.as_ref();
    certs_from_pem(&read(path)?, path)
}

/// Every certificate in PEM text, in order; `path` names the text in errors.
///
/// # Errors
/// [`CertError::Malformed`] or [`CertError::NoCertificate`] naming `path`.
pub fn certs_from_pem(data: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(data) {
        certs.push(item.map_err(|e| CertError::Malformed(path.to_path_buf(), pem_error(&e)))?);
    }
    if certs.is_empty() { Err(CertError::NoCertificate(path.to_path_buf())) } else { Ok(certs) }
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("missing end marker {:?}", String::from_utf8_lossy(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("bad section start {:?}", String::from_utf8_lossy(line))
        }
        pem::Error::Base64Decode(why) => format!("bad base64: {why}"),
        other => other.to_string(),
    }
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// [`CertError`] naming the file: unreadable, encrypted, malformed, or no key in it.
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, CertError> {
    let path = path.as_ref();
    private_key_from_pem(&read(path)?, path)
}

/// The first private key in PEM text; `path` names the text in errors.
///
/// # Errors
/// [`CertError::EncryptedKey`], [`CertError::Malformed`] or [`CertError::NoKey`] naming `path`.
pub fn private_key_from_pem(data: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let encrypted = |marker: &[u8]| memchr::memmem::find(data, marker).is_some();
    if encrypted(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || encrypted(b"Proc-Type: 4,ENCRYPTED") {
        return Err(CertError::EncryptedKey(path.to_path_buf()));
    }
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(data) {
        let (kind, der) = item.map_err(|e| CertError::Malformed(path.to_path_buf(), pem_error(&e)))?;
        let key = match kind {
            SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der.into()),
            SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der.into()),
            SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der.into()),
            _ => continue,
        };
        return Ok(key);
    }
    Err(CertError::NoKey(path.to_path_buf()))
}

/// A certificate chain and its key from two PEM files (which may be the same file),
/// checked to belong together.
///
/// # Errors
/// [`CertError`] naming the file and the problem, [`CertError::KeyMismatch`] included.
pub fn load_identity(cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<Identity, CertError> {
    let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
    let cert_pem = read(cert_path)?;
    let key_pem = if key_path == cert_path { cert_pem.clone() } else { read(key_path)? };
    identity_from_pem(&cert_pem, &key_pem, cert_path, key_path)
}

/// [`load_identity`] on PEM texts already read; the paths name them in errors.
///
/// # Errors
/// As [`load_identity`].
pub fn identity_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<Identity, CertError> {
    let chain = certs_from_pem(cert_pem, cert_path)?;
    check_chain_blocks(&chain, cert_path)?;
    let key = private_key_from_pem(key_pem, key_path)?;
    check_key_matches(&chain, &key, cert_path, key_path)?;
    Ok(Identity { chain, key })
}

/// Every block of a chain must be one whole X.509 certificate: whatever is sent as an
/// intermediate is sent in the clear over TLS 1.2, and a private key relabelled
/// CERTIFICATE would go out with it.
fn check_chain_blocks(chain: &[CertificateDer<'static>], path: &Path) -> Result<(), CertError> {
    for (i, der) in chain.iter().enumerate() {
        let why = match x509_parser::parse_x509_certificate(der.as_ref()) {
            Ok(([], _)) => continue,
            Ok((rest, _)) => format!("{} bytes follow the certificate", rest.len()),
            // x509-parser's text is its Debug shape (`Der(UnexpectedTag { .. })`).
            Err(_) => "its DER encoding does not parse as one".to_string(),
        };
        return Err(CertError::NotCertificate { path: path.to_path_buf(), position: i + 1, why });
    }
    Ok(())
}

fn check_key_matches(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), CertError> {
    let signing_key = provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| CertError::UnusableKey(key_path.to_path_buf(), e.to_string()))?;
    let certified = rustls::sign::CertifiedKey::new(chain.to_vec(), signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(_) => Err(CertError::KeyMismatch { cert: cert_path.to_path_buf(), key: key_path.to_path_buf() }),
    }
}

/// A fresh self-signed certificate for `names` (DNS names or IP addresses) with an
/// ECDSA P-256 key, valid from a minute ago for `days`; with its PEM texts.
///
/// # Errors
/// [`CertError::Generate`] for a name rcgen rejects.
pub fn self_signed(names: &[&str], days: u32) -> Result<GeneratedCert, CertError> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params =
        rcgen::CertificateParams::new(names.clone()).map_err(|e| CertError::Generate(e.to_string()))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, names.first().cloned().unwrap_or_else(|| "streamtool".into()));
    params.distinguished_name = dn;
    let now = time_now();
    params.not_before = now - rcgen_duration(60);
    params.not_after = now + rcgen_duration(i64::from(days) * 86_400);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| CertError::Generate(e.to_string()))?;
    Ok(GeneratedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    })
}

/// A certificate made here, as PEM and DER.
#[derive(Clone)]
pub struct GeneratedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl fmt::Debug for GeneratedCert {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedCert").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl GeneratedCert {
    /// The certificate and key as a TLS identity.
    pub fn identity(&self) -> Identity {
        Identity {
            chain: vec![self.cert_der.clone()],
            key: PrivateKeyDer::Pkcs8(self.key_der.clone().into()),
        }
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rcgen_duration(seconds: i64) -> time::Duration {
    time::Duration::seconds(seconds)
}

/// A period in the largest whole unit that states it exactly: `30 days`, `2 weeks`,
/// `12 hours`, `90 minutes`, `45 seconds`.
pub fn describe_period(period: std::time::Duration) -> String {
    let seconds = period.as_secs();
    let units = [(7 * 86_400, "week"), (86_400, "day"), (3600, "hour"), (60, "minute")];
    let (n, unit) = units
        .iter()
        .find(|(size, _)| seconds > 0 && seconds.is_multiple_of(*size))
        .map_or((seconds, "second"), |(size, unit)| (seconds / size, *unit));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
