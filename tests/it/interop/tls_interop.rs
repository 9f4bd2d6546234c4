//! Interop with the real `openssl` binary, with certificates from the seed's own command:
//! `openssl req -x509 -newkey rsa:2048 -subj '/CN=localhost' -keyout key.pem -out cert.pem
//! -nodes -days 365` (CA:TRUE, no SAN, only a CN). Our client against `openssl s_server`,
//! and `openssl s_client -verify_return_error -verify_hostname localhost` against our server.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use streamtool::certs;
use streamtool::streams::tls::{self, ClientOptions, KeyLog, RaggedEofPolicy, ServerOptions, Trust};
use streamtool::streams::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::support::certs::{certificate_error, seed_certificate};
use crate::support::cli::closed_port;
use crate::support::run;

#[test]
fn our_client_verifies_openssl_s_server_with_the_seed_certificate() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = seed_certificate(dir.path());
        let port = closed_port();
        let mut server = Command::new("openssl")
            .args(["s_server", "-rev", "-accept", &port.to_string(), "-naccept", "1"])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("ACCEPT") {
                break;
            }
        }
        let options = ClientOptions {
            trust: Trust::Certificates(certs::load_certs(&cert).unwrap()),
            keylog: KeyLog::Off,
            ..Default::default()
        };
        let raw = connect_tcp("localhost", port, ConnectOptions::default()).await.unwrap();
        let mut client = TlsStream::connect(
            raw,
            options.build().unwrap(),
            tls::server_name("localhost").unwrap(),
            RaggedEofPolicy::Strict,
        )
        .await
        .expect("the seed's certificate, given as --ca, verifies");
        client.send(Bytes::from_static(b"hello\n")).await.unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"\n") {
            got.extend_from_slice(&client.receive(100).await.unwrap());
        }
        assert_eq!(got, b"olleh\n");
        server.kill().await.ok();
    });
}

/// Why a refused handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refusal {
    /// The certificate does not name the host.
    Name,
    /// Checked against the system store, the seed's certificate (CA:TRUE, self-signed) is
    /// refused as a CA certificate used as a server's (webpki's `CaUsedAsEndEntity`),
    /// before any issuer is looked for.
    CaAsServer,
}

#[test]
fn seed_certificate_is_trusted_only_for_its_name_and_only_when_listed() {
    run(async {
        use rustls::CertificateError;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = seed_certificate(dir.path());
        let identity = certs::load_identity(&cert, &key).unwrap();
        let mut server_options = ServerOptions::new(identity);
        server_options.keylog = KeyLog::Off;
        let listed = ClientOptions {
            trust: Trust::Certificates(certs::load_certs(&cert).unwrap()),
            keylog: KeyLog::Off,
            ..Default::default()
        };
        let system = ClientOptions { trust: Trust::System, keylog: KeyLog::Off, ..Default::default() };
        let mut cases =
            vec![(listed.clone(), "localhost", None), (listed.clone(), "example.com", Some(Refusal::Name))];
        // The system store case needs a system store: without one it is a skip that says
        // so (a failure under CI).
        if crate::support::system_trust_store() {
            cases.push((system, "localhost", Some(Refusal::CaAsServer)));
        }
        for (options, name, refusal) in cases {
            let (a, b) = memory_byte_stream_pair(4);
            let config = server_options.build().unwrap();
            let server = tokio::spawn(async move {
                TlsStream::accept(ByteStreamIo::from_stapled(b), config, RaggedEofPolicy::Strict)
                    .await
                    .map(drop)
            });
            let client = TlsStream::connect(
                ByteStreamIo::from_stapled(a),
                options.build().unwrap(),
                tls::server_name(name).unwrap(),
                RaggedEofPolicy::Strict,
            )
            .await;
            match (refusal, client) {
                (None, Ok(_)) => {}
                (None, Err(err)) => panic!("{name}: refused: {err:?}"),
                (Some(refusal), Ok(_)) => panic!("{name}: accepted, expected {refusal:?}"),
                (Some(refusal), Err(err)) => {
                    let reason = certificate_error(&err);
                    match refusal {
                        Refusal::Name => assert!(
                            matches!(
                                reason,
                                Some(
                                    CertificateError::NotValidForName
                                        | CertificateError::NotValidForNameContext { .. }
                                )
                            ),
                            "{name}: not a name mismatch: {err:?}"
                        ),
                        Refusal::CaAsServer => assert!(
                            matches!(reason, Some(CertificateError::Other(other))
                                if format!("{other:?}").contains("CaUsedAsEndEntity")),
                            "{name}: not refused as a CA used as a server's certificate: {err:?}"
                        ),
                    }
                }
            }
            let _ = server.await;
        }
    });
}

#[test]
fn openssl_s_client_verifies_our_server_with_the_seed_certificate() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = seed_certificate(dir.path());
        let mut server_options = ServerOptions::new(certs::load_identity(&cert, &key).unwrap());
        server_options.keylog = KeyLog::Off;
        let mut listener = SocketListener::bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = listener.tcp_port().unwrap();
        let config = server_options.build().unwrap();
        let server = tokio::spawn(async move {
            let (raw, _) = listener.accept().await.unwrap();
            let mut tls = TlsStream::accept(raw, config, RaggedEofPolicy::Ignore).await.unwrap();
            let line = tls.receive(100).await.unwrap();
            tls.send(line).await.unwrap();
            tls.set_close_timeout(Some(Duration::from_millis(200)));
            let _ = tls.aclose().await;
        });
        let mut client = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost"])
            .args(["-verify_return_error", "-verify_hostname", "localhost", "-quiet"])
            .arg("-CAfile")
            .arg(&cert)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        client.stdin.as_mut().unwrap().write_all(b"ping\n").await.unwrap();
        let mut out = Vec::new();
        client.stdout.take().unwrap().read_to_end(&mut out).await.unwrap();
        let mut err = String::new();
        client.stderr.take().unwrap().read_to_string(&mut err).await.unwrap();
        let status = client.wait().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out), "ping\n", "stderr: {err}");
        assert!(status.success(), "s_client failed: {err}");
        assert!(err.contains("verify return:1"), "{err}");
        server.await.unwrap();
    });
}
