//! How a client decides to trust a server's certificate.
//!
//! In order (see `docs/tls.md`):
//! 1. `--insecure`: anything goes (the CLI warns).
//! 2. Pins: the leaf's SHA-256 (of the whole certificate, or of its public key) must
//!    match a pin. With no `--ca`, that match is the whole verification (as an SSH
//!    known-hosts entry is); with `--ca`, the chain must verify too.
//! 3. WebPKI: the chain must lead to a trusted CA, be valid now, and name the host (DNS
//!    or IP SANs).
//! 4. Only when 3 fails: a leaf that is **byte-for-byte one of the certificates the user
//!    listed in `--ca`** is trusted as itself, provided it is valid now and names the host
//!    (in its SANs; only when it has no SANs at all, in its CN). This admits the
//!    `openssl req -x509 -subj /CN=localhost` certificate (CA:TRUE, no SAN) that webpki
//!    refuses as an end-entity, and nothing else: the system store never gets this leniency.
//!
//! Only a listed certificate that is a CA ([`is_ca`]: basicConstraints CA:TRUE and, when
//! keyUsage is present, keyCertSign) becomes a trust anchor in step 3, as OpenSSL decides.
//! A listed leaf (`gen-cert --self-signed`, CA:FALSE) is trusted as itself only (step 4),
//! never as the issuer of another certificate: whoever holds its key cannot sign a
//! certificate for any other name. Client certificates (`--client-ca`) follow the same
//! rule, in [`ClientVerifier`].
//!
//! The handshake's signatures are verified in every case but `--insecure`, so a pinned or
//! explicitly trusted certificate still proves that the peer holds its key.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::config::hex;

/// A SHA-256 pin of a certificate or of its public key (SubjectPublicKeyInfo).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The pin of a whole certificate.
    pub fn of_certificate(der: &[u8]) -> Pin {
        Pin(sha256(der))
    }

    /// The pin of a certificate's public key (stays the same when the certificate is
    /// renewed with the same key).
    ///
    /// # Errors
    /// A message if `der` is not a certificate.
    pub fn of_public_key(der: &[u8]) -> Result<Pin, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| "not a certificate: its DER encoding is malformed or cut short".to_string())?;
        Ok(Pin(sha256(cert.tbs_certificate.subject_pki.raw)))
    }

    /// Whether the certificate `der` or its public key has this pin.
    pub fn matches(&self, der: &[u8]) -> bool {
        *self == Pin::of_certificate(der) || Pin::of_public_key(der).is_ok_and(|p| p == *self)
    }

    /// The digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl fmt::Display for Pin {
    /// `sha256:` and 64 hex digits, the form `--pin` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex(&self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Pin {
    type Err = String;

    /// `sha256:` followed by 64 hex digits (colons allowed, as `openssl x509 -fingerprint`
    /// prints them) or by base64 (curl's `sha256//` form is accepted too).
    fn from_str(s: &str) -> Result<Self, String> {
        let value = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("sha256//"))
            .or_else(|| s.strip_prefix("SHA256:"))
            .ok_or_else(|| format!("pin {s:?} must start with sha256: (e.g. sha256:3f2a…, 64 hex digits)"))?;
        let hex_digits: String = value.chars().filter(|c| *c != ':').collect();
        let bytes = if hex_digits.len() == 64 && hex_digits.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&hex_digits[2 * i..2 * i + 2], 16).expect("hex digit"))
                .collect()
        } else {
            base64_decode(value)
                .ok_or_else(|| format!("pin {s:?}: expected 64 hex digits or base64 of 32 bytes"))?
        };
        let digest: [u8; 32] =
            bytes.try_into().map_err(|_| format!("pin {s:?}: a SHA-256 digest has 32 bytes"))?;
        Ok(Pin(digest))
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').chars() {
        let v = match c {
            'A'..='Z' => c as u32 - 'A' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 26,
            '0'..='9' => c as u32 - '0' as u32 + 52,
            '+' | '-' => 62,
            '/' | '_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

tokio::task_local! {
    /// The OCSP response the server stapled in the client handshake running on this task
    /// (empty: none). rustls hands it to the certificate verifier only, and a verifier is
    /// shared by every connection of its configuration, so [`super::TlsStream::connect`]
    /// gives each handshake a slot of its own for [`PeerVerifier`] to fill.
    pub(crate) static STAPLED_OCSP: std::cell::Cell<Vec<u8>>;
}

/// The server certificate verifier of [`super::ClientOptions`].
#[derive(Debug)]
pub(crate) struct PeerVerifier {
    pub(crate) webpki: Option<Arc<WebPkiServerVerifier>>,
    pub(crate) explicit: Vec<CertificateDer<'static>>,
    pub(crate) pins: Vec<Pin>,
    pub(crate) pins_only: bool,
    pub(crate) insecure: bool,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Recorded whatever the verification says (outside a connect, nowhere to record).
        let _ = STAPLED_OCSP.try_with(|slot| slot.set(ocsp_response.to_vec()));
        if self.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        if !self.pins.is_empty() {
            if !self.pins.iter().any(|pin| pin.matches(end_entity)) {
                return Err(rustls::Error::General(format!(
                    "the server's certificate matches no --pin (its certificate pin is {})",
                    Pin::of_certificate(end_entity)
                )));
            }
            if self.pins_only {
                return Ok(ServerCertVerified::assertion());
            }
        }
        let webpki_result = match &self.webpki {
            Some(webpki) => {
                webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        };
        match webpki_result {
            Ok(verified) => Ok(verified),
            Err(err) if self.explicit.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                tracing::debug!(error = %err, "chain verification failed; the certificate is explicitly trusted");
                check_explicit(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether a certificate may issue others, as OpenSSL and webpki decide: basicConstraints
/// CA:TRUE and, when keyUsage is present, keyCertSign. Only these become trust anchors;
/// any other listed certificate is trusted as itself only.
pub fn is_ca(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return false };
    let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let can_sign = match cert.key_usage() {
        Ok(Some(usage)) => usage.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    ca && can_sign
}

/// The verifier of client certificates of [`super::ServerOptions`]: webpki against the
/// listed CAs, and a listed certificate presented as itself (exact bytes, valid now).
#[derive(Debug)]
pub(crate) struct ClientVerifier {
    pub(crate) webpki: Option<Arc<dyn ClientCertVerifier>>,
    pub(crate) explicit: Vec<CertificateDer<'static>>,
    pub(crate) mandatory: bool,
    pub(crate) provider: Arc<CryptoProvider>,
    /// The allow-list, checked after the chain verified (empty: everyone verified).
    pub(crate) allow: super::ClientAllow,
}

impl ClientVerifier {
    /// The allow-list check of a verified client certificate. A refusal is
    /// `ApplicationVerificationFailure` (the client gets an `access_denied` alert); the
    /// presented identity goes beside it to the handshake's error ([`super::allow`]), so
    /// that the listener's one warning line names the peer and the identity.
    fn check_allowed(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if self.allow.is_empty() {
            return Ok(());
        }
        match super::ClientIdentity::of(end_entity) {
            Some(id) if self.allow.admits(&id) => Ok(()),
            Some(id) => {
                super::allow::note_refusal(format!(
                    "client certificate not on the allow-list: {}",
                    id.describe()
                ));
                Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
            }
            None => Err(rustls::Error::InvalidCertificate(CertificateError::BadEncoding)),
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.as_ref().map_or(&[], |v| v.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let webpki_result = match &self.webpki {
            Some(webpki) => webpki.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        };
        let verified = match webpki_result {
            Ok(verified) => verified,
            Err(err) if self.explicit.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                tracing::debug!(error = %err, "chain verification failed; the client certificate is explicitly trusted");
                let (_, cert) = x509_parser::parse_x509_certificate(end_entity)
                    .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
                check_validity(&cert, now)?;
                ClientCertVerified::assertion()
            }
            Err(err) => return Err(err),
        };
        self.check_allowed(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A certificate's dates against `now`.
fn check_validity(
    cert: &x509_parser::certificate::X509Certificate<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let bad = |e: CertificateError| rustls::Error::InvalidCertificate(e);
    let now_secs = now.as_secs() as i64;
    let validity = cert.validity();
    if now_secs < validity.not_before.timestamp() {
        return Err(bad(CertificateError::NotValidYet));
    }
    if now_secs > validity.not_after.timestamp() {
        return Err(bad(CertificateError::Expired));
    }
    Ok(())
}

/// Validity and host name of an explicitly trusted certificate.
fn check_explicit(
    der: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    use x509_parser::extensions::GeneralName;

    let bad = |e: CertificateError| rustls::Error::InvalidCertificate(e);
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| bad(CertificateError::BadEncoding))?;
    check_validity(&cert, now)?;
    let sans: Vec<GeneralName<'_>> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| ext.value.general_names.clone())
        .unwrap_or_default();
    let matches = match server_name {
        ServerName::DnsName(name) => {
            let name = name.as_ref();
            let dns: Vec<&str> = sans
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(d) => Some(*d),
                    _ => None,
                })
                .collect();
            if sans.is_empty() {
                cert.subject()
                    .iter_common_name()
                    .filter_map(|cn| cn.as_str().ok())
                    .any(|cn| dns_matches(cn, name))
            } else {
                dns.iter().any(|pattern| dns_matches(pattern, name))
            }
        }
        ServerName::IpAddress(ip) => {
            let ip: std::net::IpAddr = (*ip).into();
            sans.iter().any(|g| match g {
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).is_ok_and(|b| std::net::IpAddr::from(b) == ip),
                    16 => <[u8; 16]>::try_from(*bytes).is_ok_and(|b| std::net::IpAddr::from(b) == ip),
                    _ => false,
                },
                _ => false,
            })
        }
        _ => false,
    };
    if matches { Ok(()) } else { Err(bad(CertificateError::NotValidForName)) }
}

/// A DNS name against a certificate's name, with a wildcard only as the whole left-most
/// label (`*.example.com` matches `a.example.com`, not `example.com` or `a.b.example.com`).
fn dns_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name.split_once('.').is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_hex_with_colons_and_base64() {
        let hex = "sha256:".to_string() + &"ab".repeat(32);
        let pin: Pin = hex.parse().unwrap();
        assert_eq!(pin.to_string(), hex);
        let colons = "sha256:".to_string() + &vec!["AB"; 32].join(":");
        assert_eq!(colons.parse::<Pin>().unwrap(), pin);
        let b64 = "sha256//q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=";
        assert_eq!(b64.parse::<Pin>().unwrap(), pin);
        assert!("md5:abcd".parse::<Pin>().is_err());
        assert!("sha256:abcd".parse::<Pin>().is_err());
    }

    #[test]
    fn only_a_ca_that_may_sign_certificates_is_a_ca() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
        let make = |is_ca: IsCa, usages: Vec<KeyUsagePurpose>| {
            let mut params = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
            params.is_ca = is_ca;
            params.key_usages = usages;
            params.self_signed(&KeyPair::generate().unwrap()).unwrap().der().to_vec()
        };
        let ca = || IsCa::Ca(BasicConstraints::Unconstrained);
        assert!(is_ca(&make(ca(), vec![KeyUsagePurpose::KeyCertSign])));
        assert!(is_ca(&make(ca(), vec![])), "no keyUsage: basicConstraints decides");
        assert!(!is_ca(&make(ca(), vec![KeyUsagePurpose::DigitalSignature])), "CA:TRUE without keyCertSign");
        assert!(!is_ca(&make(IsCa::ExplicitNoCa, vec![KeyUsagePurpose::DigitalSignature])));
        assert!(!is_ca(&make(IsCa::NoCa, vec![])), "no basicConstraints");
        assert!(!is_ca(b"not a certificate"));
    }

    #[test]
    fn wildcards_cover_exactly_one_label() {
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(dns_matches("*.Example.com", "A.example.COM."));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(dns_matches("localhost", "LOCALHOST"));
    }
}
