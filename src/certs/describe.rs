//! Describing a certificate for people and for events: the paragraph `--show-cert` and the
//! logs print, its two pins, the banner of a fresh self-signed certificate, and the JSON
//! view `--events json` carries. Text the certificate controls is escaped for a terminal;
//! the JSON keeps it raw (serde_json escapes it).

use std::fmt::Write as _;

use serde_json::json;

use super::general_name;
use crate::escape::escape_control as esc;
use crate::streams::tls::Pin;

/// A one-paragraph description of a certificate for `--show-cert` and logs.
pub fn describe_certificate(der: &[u8]) -> String {
    let mut out = String::new();
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let _ = writeln!(out, "  subject: {}", esc(&cert.subject().to_string()));
            let _ = writeln!(out, "  issuer:  {}", esc(&cert.issuer().to_string()));
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                let names: Vec<String> = san.value.general_names.iter().map(general_name).collect();
                let _ = writeln!(out, "  SANs:    {}", esc(&names.join(", ")));
            }
            let _ =
                writeln!(out, "  valid:   {} to {}", cert.validity().not_before, cert.validity().not_after);
        }
        Err(_) => out.push_str("  (not a parsable X.509 certificate)\n"),
    }
    for line in pin_lines(der) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// The two pins of a certificate, one line each, named: the cert pin (SHA-256 of the
/// whole certificate) and the key pin (SHA-256 of its public key, SPKI, which a renewal
/// with the same key keeps). `--pin` takes either.
pub fn pin_lines(der: &[u8]) -> Vec<String> {
    let mut lines = vec![format!("cert pin: {} (the whole certificate)", Pin::of_certificate(der))];
    if let Ok(key) = Pin::of_public_key(der) {
        lines.push(format!("key pin:  {key} (its public key, SPKI; kept when renewed with the same key)"));
    }
    lines
}

/// What `serve --tls` (and a `tls-listen` endpoint) without a certificate prints for a
/// fresh self-signed one: its pins and the command that reaches it, pinned by key.
pub fn self_signed_banner(der: &[u8], target: &str) -> Vec<String> {
    let mut lines = pin_lines(der);
    let pin = Pin::of_public_key(der).unwrap_or_else(|_| Pin::of_certificate(der));
    lines.push(format!("connect with: streamtool connect --tls --pin {pin} {target}"));
    lines
}

/// The JSON view of a certificate for events.
pub fn certificate_json(der: &[u8]) -> serde_json::Value {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let sans: Vec<String> = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|s| s.value.general_names.iter().map(general_name).collect())
                .unwrap_or_default();
            json!({
                "subject": cert.subject().to_string(),
                "issuer": cert.issuer().to_string(),
                "sans": sans,
                "not_after": cert.validity().not_after.to_string(),
                "sha256": Pin::of_certificate(der).to_string(),
                "key_sha256": Pin::of_public_key(der).map(|p| p.to_string()).unwrap_or_default(),
            })
        }
        Err(_) => json!({ "sha256": Pin::of_certificate(der).to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_described_with_its_names_and_both_pins() {
        let generated = crate::certs::self_signed(&["localhost", "127.0.0.1"], 1).unwrap();
        let der = generated.cert_der.as_ref();
        let text = describe_certificate(der);
        assert!(text.starts_with("  subject: CN=localhost\n"), "{text}");
        assert!(text.contains("  SANs:    DNS:localhost, IP Address:127.0.0.1\n"), "{text}");
        let pins = pin_lines(der);
        assert_eq!(pins.len(), 2);
        assert!(text.ends_with(&format!("  {}\n  {}\n", pins[0], pins[1])), "{text}");
        let banner = self_signed_banner(der, "localhost:8443");
        let key_pin = Pin::of_public_key(der).unwrap();
        assert_eq!(
            banner.last().unwrap(),
            &format!("connect with: streamtool connect --tls --pin {key_pin} localhost:8443")
        );
        let json = certificate_json(der);
        assert_eq!(json["key_sha256"], key_pin.to_string());
        assert_eq!(json["sans"][1], "IP Address:127.0.0.1");
    }

    #[test]
    fn bytes_that_are_not_a_certificate_still_get_a_pin() {
        assert!(
            describe_certificate(b"junk").starts_with("  (not a parsable X.509 certificate)\n  cert pin: ")
        );
        assert_eq!(pin_lines(b"junk").len(), 1);
        assert_eq!(certificate_json(b"junk").as_object().unwrap().len(), 1);
    }
}
