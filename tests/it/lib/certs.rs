//! Loading certificates and keys: every key format, and errors that name the file and the
//! problem.

use std::path::{Path, PathBuf};

use streamtool::certs::{self, CertError};

use crate::support::certs::openssl;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn pkcs8_pkcs1_and_sec1_keys_load_and_match_their_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa8.pem"], d);
    openssl(&["rsa", "-in", "rsa8.pem", "-traditional", "-out", "rsa1.pem"], d);
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec1.pem"], d);
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", "ec1.pem", "-out", "ec8.pem"], d);
    for (key, cert) in [("rsa8.pem", "rsa.crt"), ("ec1.pem", "ec.crt")] {
        openssl(&["req", "-x509", "-key", key, "-subj", "/CN=localhost", "-days", "1", "-out", cert], d);
    }
    for (cert, key, first_line) in [
        ("rsa.crt", "rsa8.pem", "-----BEGIN PRIVATE KEY-----"),
        ("rsa.crt", "rsa1.pem", "-----BEGIN RSA PRIVATE KEY-----"),
        ("ec.crt", "ec1.pem", "-----BEGIN EC PRIVATE KEY-----"),
        ("ec.crt", "ec8.pem", "-----BEGIN PRIVATE KEY-----"),
    ] {
        let text = std::fs::read_to_string(d.join(key)).unwrap();
        assert!(text.starts_with(first_line), "{key} is in the format under test");
        certs::load_identity(d.join(cert), d.join(key)).unwrap_or_else(|e| panic!("{cert} + {key}: {e}"));
    }
    let err = certs::load_identity(d.join("rsa.crt"), d.join("ec1.pem")).unwrap_err();
    assert!(matches!(err, CertError::KeyMismatch { .. }));
    assert!(err.to_string().contains("does not match the certificate"), "{err}");
}

#[test]
fn bad_files_get_errors_that_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing.pem");
    let err = certs::load_certs(&missing).unwrap_err();
    assert!(err.to_string().starts_with(&format!("{}: cannot read", missing.display())), "{err}");

    let empty = write(d, "empty.pem", "just some text\n");
    let err = certs::load_certs(&empty).unwrap_err();
    assert!(matches!(err, CertError::NoCertificate(_)), "{err:?}");
    assert!(err.to_string().contains("no certificate found"), "{err}");
    let err = certs::load_private_key(&empty).unwrap_err();
    assert!(matches!(err, CertError::NoKey(_)), "{err:?}");

    let broken = write(
        d,
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n",
    );
    let err = certs::load_certs(&broken).unwrap_err();
    assert!(matches!(err, CertError::Malformed(..)), "{err:?}");
    assert!(err.to_string().contains("broken.pem: malformed PEM"), "{err}");

    let truncated = write(d, "truncated.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    assert!(matches!(certs::load_certs(&truncated), Err(CertError::Malformed(..))));

    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes-128-cbc",
            "-pass",
            "pass:x",
            "-out",
            "enc.pem",
        ],
        d,
    );
    let err = certs::load_private_key(d.join("enc.pem")).unwrap_err();
    assert!(matches!(err, CertError::EncryptedKey(_)), "{err:?}");
    assert!(err.to_string().contains("encrypted; decrypt it first"), "{err}");

    // A certificate file given as the key.
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=x",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
        ],
        d,
    );
    assert!(matches!(certs::load_private_key(d.join("c.pem")), Err(CertError::NoKey(_))));
    // A bundle keeps every certificate, in order.
    let bundle = std::fs::read_to_string(d.join("c.pem")).unwrap().repeat(2);
    let bundle = write(d, "bundle.pem", &bundle);
    assert_eq!(certs::load_certs(&bundle).unwrap().len(), 2);
}

#[test]
fn generated_self_signed_certificate_works_as_a_server_identity() {
    let cert = certs::self_signed(&["localhost", "127.0.0.1"], 1).unwrap();
    assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!format!("{cert:?}").contains("PRIVATE KEY"), "Debug never shows the key");
    streamtool::streams::tls::ServerOptions::new(cert.identity()).build().unwrap();
}
