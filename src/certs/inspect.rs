//! What a certificate says, for `gen-cert --inspect`: subject, names, validity, key type,
//! fingerprints, issuer; as text or JSON (after `step certificate inspect`).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use serde_json::json;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{self as oids, Oid};
use x509_parser::prelude::X509Certificate;

use super::CertError;
use crate::streams::tls::Pin;

/// The facts about one certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// The subject, as `CN=..., O=...`.
    pub subject: String,
    /// The issuer.
    pub issuer: String,
    /// The serial number, colon-separated hex.
    pub serial: String,
    /// Subject alternative names as OpenSSL prints them (`DNS:x`, `IP Address:1.2.3.4`,
    /// `email:a@b`, `URI:...`).
    pub names: Vec<String>,
    /// Valid from.
    pub not_before: OffsetDateTime,
    /// Valid until.
    pub not_after: OffsetDateTime,
    /// `ECDSA P-256`, `RSA 2048`, `Ed25519`, ...
    pub key_type: String,
    /// `ecdsa-with-SHA256`, `sha256WithRSAEncryption`, ...
    pub signature_algorithm: String,
    /// Basic constraints CA:TRUE.
    pub is_ca: bool,
    /// The CA's path length limit, if any.
    pub path_len: Option<u32>,
    /// Issued by itself (subject = issuer and its own key verifies the signature).
    pub self_signed: bool,
    /// Key usages (`Digital Signature`, `Certificate Sign`, ...).
    pub key_usage: Vec<String>,
    /// Extended key usages (`serverAuth`, `clientAuth`, ...).
    pub extended_key_usage: Vec<String>,
    /// SHA-256 of the whole certificate, as `--pin` takes it.
    pub sha256: Pin,
    /// SHA-256 of the public key (survives renewal with the same key), as `--pin` takes it.
    pub public_key_sha256: Option<Pin>,
}

/// The facts about the certificate `der`.
///
/// # Errors
/// A message if `der` is not an X.509 certificate.
pub fn inspect(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| "not a certificate: its DER encoding is malformed or cut short".to_string())?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().map(general_name).collect(),
        _ => Vec::new(),
    };
    let (is_ca, path_len) = match cert.basic_constraints() {
        Ok(Some(bc)) => (bc.value.ca, bc.value.path_len_constraint),
        _ => (false, None),
    };
    let key_usage = match cert.key_usage() {
        Ok(Some(ku)) => {
            let ku = ku.value;
            [
                (ku.digital_signature(), "Digital Signature"),
                (ku.non_repudiation(), "Non Repudiation"),
                (ku.key_encipherment(), "Key Encipherment"),
                (ku.data_encipherment(), "Data Encipherment"),
                (ku.key_agreement(), "Key Agreement"),
                (ku.key_cert_sign(), "Certificate Sign"),
                (ku.crl_sign(), "CRL Sign"),
                (ku.encipher_only(), "Encipher Only"),
                (ku.decipher_only(), "Decipher Only"),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name.to_string())
            .collect()
        }
        _ => Vec::new(),
    };
    let extended_key_usage = match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            let eku = eku.value;
            let mut out: Vec<String> = [
                (eku.any, "anyExtendedKeyUsage"),
                (eku.server_auth, "serverAuth"),
                (eku.client_auth, "clientAuth"),
                (eku.code_signing, "codeSigning"),
                (eku.email_protection, "emailProtection"),
                (eku.time_stamping, "timeStamping"),
                (eku.ocsp_signing, "OCSPSigning"),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name.to_string())
            .collect();
            out.extend(eku.other.iter().map(|oid| oid.to_id_string()));
            out
        }
        _ => Vec::new(),
    };
    let self_signed =
        cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        names,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        key_type: key_type(&cert),
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
        is_ca,
        path_len,
        self_signed,
        key_usage,
        extended_key_usage,
        sha256: Pin::of_certificate(der),
        public_key_sha256: Pin::of_public_key(der).ok(),
    })
}

/// Every certificate in a file: a PEM bundle, or one DER certificate.
///
/// # Errors
/// [`CertError`] naming the file: unreadable, a key rather than a certificate, malformed.
pub fn inspect_file(path: &Path) -> Result<Vec<CertInfo>, CertError> {
    let data = std::fs::read(path).map_err(|e| CertError::Read(path.to_path_buf(), e))?;
    let ders: Vec<Vec<u8>> = if data.windows(11).any(|w| w == b"-----BEGIN ") {
        match super::load_certs(path) {
            Ok(certs) => certs.iter().map(|c| c.as_ref().to_vec()).collect(),
            Err(CertError::NoCertificate(p))
                if String::from_utf8_lossy(&data).contains("PRIVATE KEY-----") =>
            {
                return Err(CertError::KeyNotCertificate(p));
            }
            Err(e) => return Err(e),
        }
    } else {
        vec![data]
    };
    ders.iter().map(|der| inspect(der).map_err(|why| CertError::Malformed(path.to_path_buf(), why))).collect()
}

impl CertInfo {
    /// The facts as text, one `label: value` line each, indented by `indent`.
    pub fn to_text(&self, indent: &str, now: OffsetDateTime) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: &str| {
            // Subject, issuer and names come from whoever made the certificate.
            let value = crate::escape::escape_control(value);
            let _ = writeln!(out, "{indent}{label:<16}{value}");
        };
        line("Subject:", &self.subject);
        line(
            "Issuer:",
            &if self.self_signed { format!("{} (self-signed)", self.issuer) } else { self.issuer.clone() },
        );
        line(
            "Names (SANs):",
            &if self.names.is_empty() { "(none)".to_string() } else { self.names.join(", ") },
        );
        line("Not before:", &format_time(self.not_before));
        line(
            "Not after:",
            &format!("{} ({})", format_time(self.not_after), expiry_phrase(self.not_after, now)),
        );
        line("Key type:", &self.key_type);
        line("Signature:", &self.signature_algorithm);
        let ca = match (self.is_ca, self.path_len) {
            (true, Some(len)) => format!("yes (path length {len})"),
            (true, None) => "yes".to_string(),
            (false, _) => "no".to_string(),
        };
        line("CA:", &ca);
        if !self.key_usage.is_empty() {
            line("Key usage:", &self.key_usage.join(", "));
        }
        if !self.extended_key_usage.is_empty() {
            line("Extended usage:", &self.extended_key_usage.join(", "));
        }
        line("Serial:", &self.serial);
        line("SHA-256:", &self.sha256.to_string());
        if let Some(pin) = self.public_key_sha256 {
            line("Public key pin:", &pin.to_string());
        }
        out
    }

    /// The facts as a JSON object (times in RFC 3339, UTC).
    pub fn to_json(&self, now: OffsetDateTime) -> serde_json::Value {
        json!({
            "subject": self.subject,
            "issuer": self.issuer,
            "self_signed": self.self_signed,
            "serial": self.serial,
            "sans": self.names,
            "not_before": rfc3339(self.not_before),
            "not_after": rfc3339(self.not_after),
            "expired": self.not_after < now,
            "key_type": self.key_type,
            "signature_algorithm": self.signature_algorithm,
            "is_ca": self.is_ca,
            "path_len": self.path_len,
            "key_usage": self.key_usage,
            "extended_key_usage": self.extended_key_usage,
            "sha256": self.sha256.to_string(),
            "public_key_sha256": self.public_key_sha256.map(|p| p.to_string()),
        })
    }
}

/// A subject alternative name as OpenSSL writes it: `DNS:localhost`, `IP Address:127.0.0.1`.
pub fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(s) => format!("DNS:{s}"),
        GeneralName::RFC822Name(s) => format!("email:{s}"),
        GeneralName::URI(s) => format!("URI:{s}"),
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                _ => None,
            };
            match ip {
                Some(ip) => format!("IP Address:{ip}"),
                None => format!("IP Address:<{} bytes>", bytes.len()),
            }
        }
        GeneralName::DirectoryName(dn) => format!("DirName:{dn}"),
        other => format!("{other}"),
    }
}

fn key_type(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == oids::OID_PKCS1_RSAENCRYPTION {
        let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
        return format!("RSA {bits}");
    }
    if *alg == oids::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == oids::OID_EC_P256 => "ECDSA P-256".into(),
            Some(c) if c == oids::OID_NIST_EC_P384 => "ECDSA P-384".into(),
            Some(c) if c == oids::OID_NIST_EC_P521 => "ECDSA P-521".into(),
            Some(c) => format!("EC ({})", oid_name(&c)),
            None => "EC".into(),
        };
    }
    if *alg == oids::OID_SIG_ED25519 {
        return "Ed25519".into();
    }
    if *alg == oids::OID_SIG_ED448 {
        return "Ed448".into();
    }
    oid_name(alg)
}

fn oid_name(oid: &Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

/// `2026-07-01 12:00:00 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2026-07-01T12:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `in 89 days`, `in 5 hours`, `expired 3 days ago`.
pub fn expiry_phrase(not_after: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = not_after - now;
    let span = |d: time::Duration| {
        if d.whole_days() >= 2 {
            format!("{} days", (d.whole_seconds() + 43_200) / 86_400)
        } else if d.whole_hours() >= 2 {
            format!("{} hours", d.whole_hours())
        } else {
            format!("{} minutes", d.whole_minutes().max(0))
        }
    };
    if left.is_negative() { format!("expired {} ago", span(-left)) } else { format!("in {}", span(left)) }
}
