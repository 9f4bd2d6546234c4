//! No secret reaches a log line or an event: private keys and TLS session secrets stay in
//! their files, even at the most verbose log level (`-vvv`, rustls' own logging included)
//! and in `--events json`. And `--insecure` and key logging always warn, `-q` or not.

use std::path::Path;

use crate::cli_support::*;
use crate::support::run;

/// Base64 runs of a PEM key's body, and the hex of its DER, as they could show up in a log.
fn key_fragments(key_pem: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(key_pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(body.len() > 64, "a key body to look for");
    let mut fragments: Vec<String> =
        body.as_bytes().chunks(24).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
    fragments.retain(|f| f.len() == 24);
    fragments
}

/// The secrets of an NSS key log (`LABEL CLIENT_RANDOM SECRET` lines), in hex.
fn keylog_secrets(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let secrets: Vec<String> =
        text.lines().filter_map(|l| l.split_whitespace().nth(2)).map(str::to_ascii_lowercase).collect();
    assert!(!secrets.is_empty(), "the key log has secrets:\n{text}");
    secrets
}

fn assert_no_secret(what: &str, output: &str, secrets: &[String]) {
    let lower = output.to_ascii_lowercase();
    for secret in secrets {
        let needle = secret.to_ascii_lowercase();
        // A 24-character prefix is enough to be sure it leaked and short enough to catch
        // a log that cuts long values.
        let needle = &needle[..needle.len().min(24)];
        assert!(!lower.contains(needle), "{what} contains a secret ({needle}):\n{output}");
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

        let mut secrets = key_fragments(&pki.server_key);
        secrets.extend(key_fragments(&pki.client_key));
        secrets.extend(keylog_secrets(&server_keylog));
        secrets.extend(keylog_secrets(&client_keylog));
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
        let server = Server::start(&[
            "-k",
            "--tls",
            "--cert",
            s(&pki.server_cert),
            "--key",
            s(&pki.server_key),
            "--echo",
        ])
        .await;
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
