//! No secret reaches a log line or an event: private keys and TLS session secrets stay in
//! their files, even at the most verbose log level (`-vvv`, rustls' own logging included)
//! and in `--events json`. And `--insecure` and key logging always warn, `-q` or not.

use std::path::Path;

use crate::support::certs::PemPki;
use crate::support::cli::*;
use crate::support::data::hex;
use crate::support::run;

/// What a key (`key_pem`, its certificate `cert_pem`) could look like in a log: 24-character
/// runs of the PEM body's base64, and 24-byte windows of its DER in hex, lower and upper
/// case. The windows start every 8 bytes, so any 32 bytes of the key (a private scalar)
/// logged in hex contain one. Windows that also occur in the certificate are left out: they
/// are public (the key's algorithm, its public half), and a certificate may be logged.
fn key_fragments(key_pem: &Path, cert_pem: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(key_pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(body.len() > 64, "a key body to look for");
    let mut fragments: Vec<String> =
        body.as_bytes().chunks(24).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
    fragments.retain(|f| f.len() == 24);
    let base64 = fragments.len();

    let identity = streamtool::certs::load_identity(cert_pem, key_pem).unwrap();
    let der = identity.key.secret_der();
    let cert_hex = hex(identity.chain[0].as_ref());
    let mut windows = 0;
    for start in (0..der.len().saturating_sub(24)).step_by(8) {
        let window = hex(&der[start..start + 24]);
        if cert_hex.contains(&window) {
            continue;
        }
        fragments.push(window.to_ascii_uppercase());
        fragments.push(window);
        windows += 1;
    }
    assert!(
        base64 >= 4 && windows >= 4,
        "{base64} base64 runs and {windows} hex windows of a key to look for"
    );
    fragments
}

/// The secrets of an NSS key log (`LABEL CLIENT_RANDOM SECRET` lines): the first 24 hex
/// digits of each (enough to be sure it leaked, short enough to catch a log that cuts long
/// values), lower and upper case.
fn keylog_secrets(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let secrets: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .flat_map(|secret| {
            let prefix = secret.to_ascii_lowercase()[..secret.len().min(24)].to_string();
            [prefix.to_ascii_uppercase(), prefix]
        })
        .collect();
    assert!(!secrets.is_empty(), "the key log has secrets:\n{text}");
    secrets
}

/// The first secret fragment found in `output` (exact match: each hex fragment is listed
/// in both cases).
fn leaked<'a>(output: &str, secrets: &'a [String]) -> Option<&'a str> {
    secrets.iter().map(String::as_str).find(|secret| output.contains(secret))
}

fn assert_no_secret(what: &str, output: &str, secrets: &[String]) {
    if let Some(secret) = leaked(output, secrets) {
        panic!("{what} contains a secret ({secret}):\n{output}");
    }
}

/// The search finds a key however it is written: its PEM body, its DER in hex (either
/// case, whole or only the private part), and a key log secret in either case.
fn assert_the_search_finds_leaks(key_pem: &Path, cert_pem: &Path, keylog: &Path, secrets: &[String]) {
    let identity = streamtool::certs::load_identity(cert_pem, key_pem).unwrap();
    let der = identity.key.secret_der().to_vec();
    let pem = std::fs::read_to_string(key_pem).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let whole = hex(&der);
    // The private scalar of a P-256 PKCS#8 key (rcgen's default): the 32 bytes after
    // `04 20`, an OCTET STRING of 32 bytes.
    let cert = identity.chain[0].as_ref();
    let private: Vec<u8> = der
        .windows(34)
        .find(|w| w[0] == 0x04 && w[1] == 0x20)
        .map(|w| w[2..].to_vec())
        .expect("a P-256 PKCS#8 key, whose private scalar follows 04 20");
    assert!(!cert.windows(32).any(|w| w == private), "the private part is not in the certificate");
    let key_log_text = std::fs::read_to_string(keylog).unwrap();
    let session_secret = key_log_text.lines().find_map(|l| l.split_whitespace().nth(2)).unwrap().to_string();
    for (how, text) in [
        ("the PEM body", format!("DEBUG key loaded: {body}")),
        ("the PEM with its line breaks", format!("key:\n{pem}")),
        ("the DER in lower-case hex", format!("key={whole}")),
        ("the DER in upper-case hex", format!("key={}", whole.to_ascii_uppercase())),
        ("the private scalar in hex", format!("d={}", hex(&private))),
        ("the private scalar in upper-case hex", format!("d={}", hex(&private).to_ascii_uppercase())),
        ("a session secret", format!("secret {}", session_secret.to_ascii_lowercase())),
        ("a session secret in upper case", format!("secret {}", session_secret.to_ascii_uppercase())),
    ] {
        assert!(leaked(&text, secrets).is_some(), "the search misses a key written as {how}: {text}");
    }
}

#[test]
fn no_key_or_session_secret_reaches_logs_or_events() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let (server_keylog, client_keylog) = (dir.path().join("server.keys"), dir.path().join("client.keys"));
        let server = Server::start(&[
            "-vvv",
            "--tls",
            "--cert",
            s(&pki.server_cert),
            "--key",
            s(&pki.server_key),
            "--client-ca",
            s(&pki.ca),
            "--keylog",
            s(&server_keylog),
            "--echo",
            "-k",
        ])
        .await;
        let addr = server.localhost();
        // An mTLS client with a key log: every secret it has is in play.
        let mtls = |first: &[&'static str], last: &'static str| {
            let mut args: Vec<String> = first.iter().map(|a| a.to_string()).collect();
            for (flag, path) in [
                ("--ca", &pki.ca),
                ("--cert", &pki.client_cert),
                ("--key", &pki.client_key),
                ("--keylog", &client_keylog),
            ] {
                args.extend([flag.to_string(), s(path).to_string()]);
            }
            args.extend([last.to_string(), addr.clone()]);
            args
        };
        let run_client = |args: Vec<String>| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            streamtool(&args, b"hello\n").await
        };
        let verbose =
            run_client(mtls(&["-vvv", "connect", "--tls", "--on-eof", "half-close"], "--show-cert")).await;
        verbose.assert_code(0);
        let events =
            run_client(mtls(&["--events", "json", "connect", "--tls", "--on-eof", "half-close"], "-v")).await;
        events.assert_code(0);
        assert!(!json_events(&events.stderr).is_empty(), "events were written:\n{}", events.stderr);
        server.proc.signal("TERM");
        let server = server.proc.finish().await;
        // The logs are verbose enough to be worth searching: the handshake is in them.
        assert!(verbose.stderr.to_ascii_lowercase().contains("tls"), "{}", verbose.stderr);

        let mut secrets = key_fragments(&pki.server_key, &pki.server_cert);
        secrets.extend(key_fragments(&pki.client_key, &pki.client_cert));
        secrets.extend(keylog_secrets(&server_keylog));
        secrets.extend(keylog_secrets(&client_keylog));
        assert_the_search_finds_leaks(&pki.server_key, &pki.server_cert, &server_keylog, &secrets);
        assert_the_search_finds_leaks(&pki.client_key, &pki.client_cert, &client_keylog, &secrets);
        assert_no_secret("server log (-vvv)", &server.stderr, &secrets);
        assert_no_secret("client log (-vvv)", &verbose.stderr, &secrets);
        assert_no_secret("client events", &events.stderr, &secrets);
        assert_no_secret("client stdout", &String::from_utf8_lossy(&verbose.stdout), &secrets);
    });
}

#[test]
fn insecure_and_keylog_warn_even_when_quiet() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let keylog = dir.path().join("keys");
        let server = Server::tls_echo(&pki, &[]).await;
        let runs: [(&[&str], &str); 2] = [
            (&["-q", "connect", "--tls", "--insecure", "--on-eof", "half-close"], "NOT verified"),
            (
                &[
                    "-q",
                    "connect",
                    "--tls",
                    "--on-eof",
                    "half-close",
                    "--ca",
                    s(&pki.ca),
                    "--keylog",
                    s(&keylog),
                ],
                "logging TLS secrets",
            ),
        ];
        for (args, warning) in runs {
            let mut full = args.to_vec();
            let addr = server.localhost();
            full.push(&addr);
            let client = streamtool(&full, b"hi\n").await;
            client.assert_code(0);
            assert_eq!(client.stdout, b"hi\n");
            let lines: Vec<&str> = client.stderr.lines().collect();
            assert!(
                lines.len() == 1 && lines[0].contains(warning),
                "{args:?}: exactly the warning under -q:\n{}",
                client.stderr
            );
        }
        server.proc.signal("TERM");
        server.proc.finish().await.assert_code(0);
    });
}
