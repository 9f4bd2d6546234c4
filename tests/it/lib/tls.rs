//! TLS streams and the TLS listener: spec §6 and scenarios 57-77, D8-D10, the ragged-EOF
//! matrix in both directions under all three policies, TLS 1.3 half-close, pins, the
//! explicit-trust rule, and a hostile-client test. Real TLS handshakes, over real TCP on
//! loopback (port 0) or over in-memory transports.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::CertificateError;
use streamtool::server::{ConnectionContext, ServeOptions};
use streamtool::streams::tls::{
    self, ClientAuth, ClientOptions, KeyLog, Pin, RaggedEofPolicy, ServerOptions, TlsStream, TlsVersion,
    Trust, VersionRange, attributes,
};
use streamtool::streams::*;
use tokio_util::sync::CancellationToken;

use crate::support::certs::{TestPki, certificate_error, rustls_error};
use crate::support::streams::{b, connect_loopback, loopback_listener};
use crate::support::{run, settle};

type TcpTls = TlsStream<TcpStream>;

/// Accepts one TCP connection and runs the server handshake on it.
async fn accept_one(
    mut listener: SocketListener,
    options: ServerOptions,
    policy: RaggedEofPolicy,
) -> TlsStream<Connection> {
    let (raw, _) = listener.accept().await.unwrap();
    TlsStream::accept(raw, options.build().unwrap(), policy).await.unwrap()
}

/// A client connection to `port` verified for `name`.
async fn client(port: u16, options: &ClientOptions, name: &str, policy: RaggedEofPolicy) -> Result<TcpTls> {
    TlsStream::connect(
        connect_loopback(port).await.unwrap(),
        options.build()?,
        tls::server_name(name)?,
        policy,
    )
    .await
}

/// A connected (client, server) pair over TCP.
async fn pair_with(
    pki: &TestPki,
    client_options: ClientOptions,
    server_options: ServerOptions,
    client_policy: RaggedEofPolicy,
    server_policy: RaggedEofPolicy,
) -> (TcpTls, TlsStream<Connection>) {
    let (listener, port) = loopback_listener().await;
    let server = tokio::spawn(accept_one(listener, server_options, server_policy));
    let client = client(port, &client_options, "localhost", client_policy).await.unwrap();
    let _ = pki;
    (client, server.await.unwrap())
}

async fn pair(pki: &TestPki) -> (TcpTls, TlsStream<Connection>) {
    pair_with(
        pki,
        pki.client_options(),
        pki.server_options(),
        RaggedEofPolicy::Strict,
        RaggedEofPolicy::Strict,
    )
    .await
}

fn is_verification_error(err: &StreamError) -> bool {
    matches!(err, StreamError::Tls { source, .. }
        if matches!(source.downcast_ref::<rustls::Error>(), Some(rustls::Error::InvalidCertificate(_))))
}

/// The handshake failed because the certificate does not name the host (or address), and
/// the message says so.
fn assert_name_mismatch(err: &StreamError, name: &str) {
    assert!(is_verification_error(err), "{err:?}");
    let reason = certificate_error(err);
    assert!(
        matches!(
            reason,
            Some(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })
        ),
        "not a name mismatch: {err:?}"
    );
    let text = streamtool::streams::error::chain(err);
    assert!(text.contains("not valid for name") && text.contains(name), "{text}");
}

/// The handshake failed because the certificate's issuer is not trusted.
fn assert_unknown_issuer(err: &StreamError) {
    assert!(is_verification_error(err), "{err:?}");
    assert!(
        matches!(certificate_error(err), Some(CertificateError::UnknownIssuer)),
        "not an unknown issuer: {err:?}"
    );
}

// scenario 57
#[test]
fn tls_echo_reverse_over_tcp() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let (mut client, mut server) = pair(&pki).await;
        let echo = tokio::spawn(async move {
            let data = server.receive(10).await.unwrap();
            server.send(Bytes::from(data.iter().rev().copied().collect::<Vec<u8>>())).await.unwrap();
            // A strict close waits for the client's close_notify.
            server.aclose().await.unwrap();
        });
        client.send(b(b"hello")).await.unwrap();
        assert_eq!(client.receive(DEFAULT_MAX_BYTES).await.unwrap(), &b"olleh"[..]);
        client.aclose().await.unwrap();
        echo.await.unwrap();
    });
}

/// Two TLS ends over cross-connected in-memory transports.
type MemIo = ByteStreamIo<
    ObjectByteReceiveStream<MemoryObjectReceiveStream<Bytes>>,
    ObjectByteSendStream<MemoryObjectSendStream<Bytes>>,
>;

async fn memory_pair(
    client_options: &ClientOptions,
    server_options: &ServerOptions,
    name: &str,
) -> Result<(TlsStream<MemIo>, TlsStream<MemIo>)> {
    let (a, b) = memory_byte_stream_pair(4);
    let server_config = server_options.build()?;
    let server = tokio::spawn(async move {
        TlsStream::accept(ByteStreamIo::from_stapled(b), server_config, RaggedEofPolicy::Strict).await
    });
    let client = TlsStream::connect(
        ByteStreamIo::from_stapled(a),
        client_options.build()?,
        tls::server_name(name)?,
        RaggedEofPolicy::Strict,
    )
    .await;
    let server = server.await.unwrap();
    Ok((client?, server?))
}

// scenario 58
#[test]
fn unicode_host_name_is_matched_with_idna_2008() {
    run(async {
        assert_eq!(
            format!("{:?}", tls::server_name("faß.de").unwrap()),
            format!("{:?}", tls::server_name("xn--fa-hia.de").unwrap())
        );
        let pki = TestPki::new(&["xn--fa-hia.de"]);
        let (mut client, mut server) =
            memory_pair(&pki.client_options(), &pki.server_options(), "faß.de").await.unwrap();
        client.send(b(b"hello")).await.unwrap();
        let got = server.receive(10).await.unwrap();
        server.send(Bytes::from(got.iter().rev().copied().collect::<Vec<u8>>())).await.unwrap();
        assert_eq!(client.receive(10).await.unwrap(), &b"olleh"[..]);
        // IDNA 2003 would have mapped ß to ss: a certificate for fass.de must not match.
        let wrong = TestPki::new(&["fass.de"]);
        let err = memory_pair(&wrong.client_options(), &wrong.server_options(), "faß.de").await.unwrap_err();
        assert_name_mismatch(&err, "xn--fa-hia.de");
    });
}

// scenario 59 (0 only: -1 is not a usize)
#[test]
fn tls_receive_zero_max_bytes_is_invalid() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let (mut client, _server) =
            memory_pair(&pki.client_options(), &pki.server_options(), "localhost").await.unwrap();
        let err = client.receive(0).await.unwrap_err();
        assert_eq!(err.to_string(), "max_bytes must be a positive integer");
    });
}

// scenario 60
#[test]
fn tls_stream_attributes_include_the_sockets() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let mut client_options = pki.client_options();
        client_options.alpn = vec![b"h2".to_vec()];
        let mut server_options = pki.server_options();
        server_options.alpn = vec![b"h2".to_vec()];
        let (mut client, mut server) =
            pair_with(&pki, client_options, server_options, RaggedEofPolicy::Strict, RaggedEofPolicy::Strict)
                .await;
        let raw = client.get_ref().unwrap();
        for attr in [attrs::socket::LOCAL_ADDRESS, attrs::socket::REMOTE_ADDRESS] {
            assert_eq!(client.extra(attr).unwrap(), raw.extra(attr).unwrap());
        }
        assert_eq!(
            client.extra(attrs::socket::REMOTE_PORT).unwrap(),
            raw.extra(attrs::socket::REMOTE_PORT).unwrap()
        );
        assert_eq!(client.extra(attrs::socket::FAMILY).unwrap(), AddressFamily::Inet);
        assert_eq!(client.extra(attributes::ALPN_PROTOCOL).unwrap(), Some(b"h2".to_vec()));
        assert_eq!(client.extra(attributes::CHANNEL_BINDING).unwrap().len(), 32);
        assert_eq!(
            client.extra(attributes::CHANNEL_BINDING).unwrap(),
            server.extra(attributes::CHANNEL_BINDING).unwrap(),
            "both ends export the same binding"
        );
        assert!(client.extra(attributes::CIPHER).unwrap().starts_with("TLS13_"));
        let chain = client.extra(attributes::PEER_CERTIFICATES).unwrap();
        assert_eq!(chain[0], pki.server.chain[0].as_ref());
        assert!(!client.extra(attributes::SERVER_SIDE).unwrap());
        assert!(server.extra(attributes::SERVER_SIDE).unwrap());
        assert_eq!(client.extra(attributes::RAGGED_EOF_POLICY).unwrap(), RaggedEofPolicy::Strict);
        assert_eq!(client.extra(attributes::VERSION).unwrap().to_string(), "TLSv1.3");
        assert_eq!(server.extra(attributes::SERVER_NAME).unwrap().as_deref(), Some("localhost"));
        // The server's clean close is seen by the client as the end of the stream; the
        // server's strict close waits for the client's close_notify.
        let (server_closed, (received, client_closed)) = tokio::join!(server.aclose(), async {
            let received = client.receive(10).await;
            (received, client.aclose().await)
        });
        assert!(matches!(received, Err(StreamError::EndOfStream)), "{received:?}");
        server_closed.unwrap();
        client_closed.unwrap();
    });
}

// scenario 61: not applicable. AnyIO's `unwrap()` returns the raw transport and the
// plaintext bytes that followed close_notify. rustls has no API for the raw bytes it has
// already buffered past close_notify, so a faithful unwrap cannot be built on it; streamtool
// has no STARTTLS-style downgrade that would need one.

// scenario 62
#[test]
fn alpn_picks_the_servers_preference_among_the_clients() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let mut client_options = pki.client_options();
        client_options.alpn = vec![b"dummy2".to_vec(), b"dummy3".to_vec()];
        let mut server_options = pki.server_options();
        server_options.alpn = vec![b"dummy1".to_vec(), b"dummy2".to_vec()];
        let (client, server) = memory_pair(&client_options, &server_options, "localhost").await.unwrap();
        assert_eq!(client.alpn_protocol().as_deref(), Some(&b"dummy2"[..]));
        assert_eq!(server.alpn_protocol().as_deref(), Some(&b"dummy2"[..]));
    });
}

/// How the sending side ends in the ragged-EOF matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    CloseNotify,
    Ragged,
}

/// Sends "hello" from `sender` and ends as told; returns what the receiver saw on its second
/// receive, and what its `aclose` returned.
async fn ragged_case<A, B>(mut sender: A, mut receiver: B, ending: Ending) -> (Result<Bytes>, Result<()>)
where
    A: ByteStream + 'static,
    B: ByteStream,
{
    sender.send(b(b"hello")).await.unwrap();
    match ending {
        Ending::CloseNotify => sender.aclose().await.unwrap_or(()),
        Ending::Ragged => drop(sender),
    }
    assert_eq!(receiver.receive(10).await.unwrap(), &b"hello"[..]);
    let second = receiver.receive(10).await;
    let close = receiver.aclose().await;
    (second, close)
}

// scenarios 63-68 and 71, and the ragged-EOF matrix of spec §6.4 in both directions, on
// real TCP, for all three policies.
#[test]
fn ragged_eof_matrix_both_directions_all_policies() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        for policy in [RaggedEofPolicy::Strict, RaggedEofPolicy::Warn, RaggedEofPolicy::Ignore] {
            for ending in [Ending::CloseNotify, Ending::Ragged] {
                // server -> client
                let (client, mut server) = pair_with(
                    &pki,
                    pki.client_options(),
                    pki.server_options(),
                    policy,
                    RaggedEofPolicy::Ignore,
                )
                .await;
                server.set_close_timeout(Some(Duration::from_secs(2)));
                let (second, close) = ragged_case(server, client, ending).await;
                check_matrix("server->client", policy, ending, second, close);
                // client -> server
                let (client, server) = pair_with(
                    &pki,
                    pki.client_options(),
                    pki.server_options(),
                    RaggedEofPolicy::Ignore,
                    policy,
                )
                .await;
                let (second, close) = ragged_case(client, server, ending).await;
                check_matrix("client->server", policy, ending, second, close);
            }
        }
    });
}

fn check_matrix(
    direction: &str,
    policy: RaggedEofPolicy,
    ending: Ending,
    second: Result<Bytes>,
    close: Result<()>,
) {
    let case = format!("{direction}, receiver {policy:?}, sender {ending:?}");
    match (policy, ending) {
        // scenario 63/68: close_notify is a clean end everywhere.
        (_, Ending::CloseNotify) => {
            assert!(matches!(second, Err(StreamError::EndOfStream)), "{case}: {second:?}");
            assert!(close.is_ok(), "{case}: {close:?}");
        }
        // scenarios 65 and 71: truncation is an error under the default (strict) policy.
        (RaggedEofPolicy::Strict, Ending::Ragged) => {
            assert!(matches!(second, Err(StreamError::Truncated)), "{case}: {second:?}");
            assert!(matches!(close, Err(StreamError::Truncated)), "{case}: {close:?}");
        }
        // scenarios 66 and 67: the lenient policies report the end of the stream.
        (_, Ending::Ragged) => {
            assert!(matches!(second, Err(StreamError::EndOfStream)), "{case}: {second:?}");
            assert!(close.is_ok(), "{case}: {close:?}");
        }
    }
}

// A read takes every record that has already arrived (up to its limit), not one record per
// call (tokio-rustls does this; the relays' syscall count depends on it), and an end found
// behind them (close_notify, or a ragged end under each policy) is reported by the next
// read, after all the data.
#[test]
fn one_read_takes_the_records_already_here_and_the_end_behind_them_comes_next() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let payload: Bytes = (0..100 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
        for policy in [RaggedEofPolicy::Strict, RaggedEofPolicy::Warn, RaggedEofPolicy::Ignore] {
            for ending in [Ending::CloseNotify, Ending::Ragged] {
                let case = format!("receiver {policy:?}, sender {ending:?}");
                let (mut client, mut server) = pair_with(
                    &pki,
                    pki.client_options(),
                    pki.server_options(),
                    policy,
                    RaggedEofPolicy::Ignore,
                )
                .await;
                // Room for all of it in the client's socket, whatever the default buffers.
                let raw = client.get_ref().unwrap().get_ref().expect("the TCP socket");
                socket2::SockRef::from(raw).set_recv_buffer_size(1 << 20).unwrap();
                server.set_close_timeout(Some(Duration::from_secs(2)));
                server.send(payload.clone()).await.unwrap();
                match ending {
                    Ending::CloseNotify => server.aclose().await.unwrap_or(()),
                    Ending::Ragged => drop(server),
                }
                // Every record (7 of them) and the ending are in the client's socket once
                // the server's FIN is (it follows them: aclose shuts the socket down, a
                // drop closes it). Waited for, not slept for; then one read takes it all.
                let raw = client.get_ref().unwrap().get_ref().expect("the TCP socket");
                crate::support::peer_fin_arrived(raw).await;
                let mut got = Vec::new();
                let first = client.receive(1 << 20).await.unwrap();
                assert_eq!(first.len(), payload.len(), "{case}: the first read took {} bytes", first.len());
                got.extend_from_slice(&first);
                let end = loop {
                    match client.receive(1 << 20).await {
                        Ok(chunk) => got.extend_from_slice(&chunk),
                        Err(err) => break err,
                    }
                };
                assert_eq!(got.len(), payload.len(), "{case}");
                assert!(got == payload[..], "{case}: the data differs");
                match (policy, ending) {
                    (RaggedEofPolicy::Strict, Ending::Ragged) => {
                        assert!(matches!(end, StreamError::Truncated), "{case}: {end:?}")
                    }
                    _ => assert!(matches!(end, StreamError::EndOfStream), "{case}: {end:?}"),
                }
            }
        }
    });
}

// scenario 65: truncation detected at close, before any further receive.
#[test]
fn strict_close_detects_truncation_while_waiting_for_close_notify() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let (mut client, mut server) = pair(&pki).await;
        server.send(b(b"hello")).await.unwrap();
        drop(server);
        assert_eq!(client.receive(10).await.unwrap(), &b"hello"[..]);
        assert!(matches!(client.aclose().await, Err(StreamError::Truncated)));
        // After closing, everything reports Closed.
        assert!(matches!(client.receive(1).await, Err(StreamError::Closed)));
        assert!(matches!(client.send(b(b"x")).await, Err(StreamError::Closed)));
    });
}

// scenario 64, adapted: a lenient receiver still sends close_notify when it closes (a
// deliberate difference from AnyIO, see docs/tls.md), so the strict server's close is clean.
#[test]
fn lenient_client_still_sends_close_notify() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let (mut client, mut server) = pair_with(
            &pki,
            pki.client_options(),
            pki.server_options(),
            RaggedEofPolicy::Ignore,
            RaggedEofPolicy::Strict,
        )
        .await;
        server.send(b(b"hello")).await.unwrap();
        assert_eq!(client.receive(10).await.unwrap(), &b"hello"[..]);
        client.aclose().await.unwrap();
        assert!(server.aclose().await.is_ok());
    });
}

// scenario 69, adapted: TLS 1.3 half-close is implemented (AnyIO raises NotImplementedError).
#[test]
fn tls13_half_close_lets_the_peer_reply_after_our_eof() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let (mut client, mut server) = pair(&pki).await;
        let reply = tokio::spawn(async move {
            let mut request = Vec::new();
            loop {
                match server.receive(DEFAULT_MAX_BYTES).await {
                    Ok(chunk) => request.extend_from_slice(&chunk),
                    Err(StreamError::EndOfStream) => break,
                    Err(err) => panic!("{err:?}"),
                }
            }
            let reversed: Vec<u8> = request.iter().rev().copied().collect();
            for chunk in reversed.chunks(1000) {
                server.send(Bytes::copy_from_slice(chunk)).await.unwrap();
            }
            server.aclose().await.unwrap();
            request.len()
        });
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        client.send(Bytes::from(payload.clone())).await.unwrap();
        client.send_eof().await.unwrap();
        client.send_eof().await.unwrap(); // idempotent
        assert!(matches!(client.send(b(b"late")).await, Err(StreamError::Closed)));
        let mut got = Vec::new();
        loop {
            match client.receive(DEFAULT_MAX_BYTES).await {
                Ok(chunk) => got.extend_from_slice(&chunk),
                Err(StreamError::EndOfStream) => break,
                Err(err) => panic!("{err:?}"),
            }
        }
        assert_eq!(reply.await.unwrap(), payload.len());
        assert_eq!(got, payload.iter().rev().copied().collect::<Vec<u8>>());
        client.aclose().await.unwrap();
    });
}

// scenario 70
#[test]
fn tls12_send_eof_is_unsupported() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let mut client_options = pki.client_options();
        client_options.versions = VersionRange { min: TlsVersion::V1_2, max: TlsVersion::V1_2 };
        let (mut client, _server) =
            memory_pair(&client_options, &pki.server_options(), "localhost").await.unwrap();
        assert_eq!(client.protocol_version(), Some(TlsVersion::V1_2));
        let err = client.send_eof().await.unwrap_err();
        assert!(matches!(err, StreamError::Unsupported(_)));
        assert_eq!(err.to_string(), "send_eof() requires at least TLSv1.3; current session uses TLSv1.2");
    });
}

// scenario 72
#[test]
fn untrusted_ca_fails_with_a_verification_error_and_the_server_sees_a_handshake_error() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let other = TestPki::new(&["localhost"]);
        let (listener, port) = loopback_listener().await;
        let server_options = pki.server_options();
        let server = tokio::spawn(async move {
            let mut listener = listener;
            let (raw, _) = listener.accept().await.unwrap();
            TlsStream::accept(raw, server_options.build().unwrap(), RaggedEofPolicy::Strict).await
        });
        let err =
            client(port, &other.client_options(), "localhost", RaggedEofPolicy::Strict).await.unwrap_err();
        // Both test CAs are named "streamtool test CA": the trusted one is found as the
        // issuer by name, and its key did not sign this chain.
        assert!(is_verification_error(&err), "{err:?}");
        assert!(matches!(certificate_error(&err), Some(CertificateError::BadSignature)), "{err:?}");
        assert!(err.to_string().starts_with("TLS handshake failed"), "{err}");
        let server_err = server.await.unwrap().unwrap_err();
        // The client told the server why: a bad signature is a decrypt_error alert.
        assert!(
            matches!(
                rustls_error(&server_err),
                Some(rustls::Error::AlertReceived(rustls::AlertDescription::DecryptError))
            ),
            "{server_err:?}"
        );
    });
}

/// A TLS listener on port 0 whose handshake failures are recorded.
struct TlsServer {
    port: u16,
    shutdown: CancellationToken,
    failures: Arc<Mutex<Vec<String>>>,
    handled: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<streamtool::server::ServeSummary>,
}

async fn tls_echo_server(options: ServerOptions, handshake_timeout: Duration) -> TlsServer {
    let (listener, port) = loopback_listener().await;
    let failures = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&failures);
    let tls_listener = TlsListener::new(listener, options.build().unwrap(), RaggedEofPolicy::Strict)
        .handshake_timeout(handshake_timeout)
        .on_handshake_error(Arc::new(move |_peer, err| recorded.lock().unwrap().push(format!("{err:?}"))));
    let shutdown = CancellationToken::new();
    let handled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&handled);
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        tls_listener
            .serve(ServeOptions::default(), token, move |mut stream, _ctx: ConnectionContext| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    while let Ok(chunk) = stream.receive(DEFAULT_MAX_BYTES).await {
                        if stream.send(chunk).await.is_err() {
                            return;
                        }
                    }
                    let _ = stream.aclose().await;
                }
            })
            .await
    });
    TlsServer { port, shutdown, failures, handled, task }
}

// scenario 73
#[test]
fn listener_logs_a_failed_handshake_once_and_never_calls_the_handler() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let server = tls_echo_server(pki.server_options(), Duration::from_secs(5)).await;
        drop(tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap());
        // Wait for the failure to be recorded (bounded: 10 s), then let anything else run.
        for _ in 0..1000 {
            if !server.failures.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        settle().await;
        let failures = server.failures.lock().unwrap().clone();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].starts_with("Broken"), "{failures:?}");
        assert_eq!(server.handled.load(std::sync::atomic::Ordering::SeqCst), 0);
        server.shutdown.cancel();
        server.task.await.unwrap();
    });
}

// scenario 74
#[test]
fn mutual_tls_with_alpn_exposes_the_client_certificate_to_the_handler() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let mut server_options = pki.server_options();
        server_options.client_auth = ClientAuth::Required(vec![pki.ca.clone()]);
        server_options.alpn = vec![b"h2".to_vec()];
        let mut client_options = pki.client_options();
        client_options.identity = Some(pki.client.clone());
        client_options.alpn = vec![b"h2".to_vec()];
        let (mut client, mut server) =
            pair_with(&pki, client_options, server_options, RaggedEofPolicy::Strict, RaggedEofPolicy::Strict)
                .await;
        assert_eq!(server.extra(attributes::ALPN_PROTOCOL).unwrap(), Some(b"h2".to_vec()));
        assert_eq!(server.extra(attributes::PEER_CERTIFICATES).unwrap()[0], pki.client.chain[0].as_ref());
        assert!(server.extra(attributes::SERVER_SIDE).unwrap());
        server.send(b(b"\x00")).await.unwrap();
        assert_eq!(client.receive(1).await.unwrap(), &b"\x00"[..]);
        let closing = tokio::spawn(async move { server.aclose().await });
        client.aclose().await.unwrap();
        closing.await.unwrap().unwrap();
    });
}

#[test]
fn required_client_certificate_refuses_a_client_without_one() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let mut server_options = pki.server_options();
        server_options.client_auth = ClientAuth::Required(vec![pki.ca.clone()]);
        let (listener, port) = loopback_listener().await;
        let server = tokio::spawn(async move {
            let mut listener = listener;
            let (raw, _) = listener.accept().await.unwrap();
            TlsStream::accept(raw, server_options.build().unwrap(), RaggedEofPolicy::Strict).await
        });
        // In TLS 1.3 the client learns of the refusal on its first read.
        let outcome = async {
            let mut c = client(port, &pki.client_options(), "localhost", RaggedEofPolicy::Strict).await?;
            c.send(b(b"x")).await?;
            c.receive(10).await
        }
        .await;
        // The client learns why: the server's certificate_required alert.
        let client_err = outcome.expect_err("the server refused the client");
        assert!(
            matches!(
                rustls_error(&client_err),
                Some(rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired))
            ),
            "{client_err:?}"
        );
        // The server refused it for presenting no certificate.
        let err = server.await.unwrap().unwrap_err();
        assert!(matches!(err, StreamError::Tls { .. }), "{err:?}");
        assert!(matches!(rustls_error(&err), Some(rustls::Error::NoCertificatesPresented)), "{err:?}");
    });
}

struct MemoryConnectable {
    server_options: ServerOptions,
}

impl ByteStreamConnectable for MemoryConnectable {
    type Stream = MemoryByteStream;

    async fn connect(&self) -> Result<MemoryByteStream> {
        let (a, b) = memory_byte_stream_pair(4);
        let config = self.server_options.build()?;
        tokio::spawn(async move {
            let mut server =
                TlsStream::accept(ByteStreamIo::from_stapled(b), config, RaggedEofPolicy::Strict)
                    .await
                    .unwrap();
            let name = server.receive(100).await.unwrap();
            let mut reply = b"hello, ".to_vec();
            reply.extend_from_slice(&name);
            server.send(Bytes::from(reply)).await.unwrap();
            server.aclose().await.unwrap();
        });
        Ok(a)
    }
}

// scenario 75
#[test]
fn tls_over_a_connectables_memory_transport() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let raw = MemoryConnectable { server_options: pki.server_options() }.connect().await.unwrap();
        let mut client = TlsStream::connect(
            ByteStreamIo::from_stapled(raw),
            pki.client_options().build().unwrap(),
            tls::server_name("localhost").unwrap(),
            RaggedEofPolicy::Strict,
        )
        .await
        .unwrap();
        client.send(b(b"world")).await.unwrap();
        assert_eq!(client.receive(100).await.unwrap(), &b"hello, world"[..]);
    });
}

// scenario 76
#[test]
fn connect_tcp_then_tls_echo_reverse() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let (listener, port) = loopback_listener().await;
        let server_options = pki.server_options();
        tokio::spawn(async move {
            let mut server = accept_one(listener, server_options, RaggedEofPolicy::Strict).await;
            let data = server.receive(100).await.unwrap();
            server.send(Bytes::from(data.iter().rev().copied().collect::<Vec<u8>>())).await.unwrap();
            server.aclose().await.unwrap();
        });
        let raw = connect_tcp("localhost", port, ConnectOptions::default()).await.unwrap();
        let mut client = TlsStream::connect(
            raw,
            pki.client_options().build().unwrap(),
            tls::server_name("localhost").unwrap(),
            RaggedEofPolicy::Strict,
        )
        .await
        .unwrap();
        client.send(b(b"hello")).await.unwrap();
        assert_eq!(client.receive(100).await.unwrap(), &b"olleh"[..]);
    });
}

// scenario 77
#[test]
fn system_trust_store_rejects_the_test_ca() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let (listener, port) = loopback_listener().await;
        let server_options = pki.server_options();
        tokio::spawn(async move {
            let mut listener = listener;
            let (raw, _) = listener.accept().await.unwrap();
            let _ = TlsStream::accept(raw, server_options.build().unwrap(), RaggedEofPolicy::Strict).await;
        });
        // Without a system store there is nothing to test: a skip that says so (a failure
        // under CI), not a pass.
        if !crate::support::system_trust_store() {
            return;
        }
        let options = ClientOptions { trust: Trust::System, keylog: KeyLog::Off, ..Default::default() };
        match client(port, &options, "localhost", RaggedEofPolicy::Strict).await {
            Err(err) => assert_unknown_issuer(&err),
            Ok(_) => panic!("the system store must not trust a test CA"),
        }
    });
}

// D8 (derived, not an AnyIO test)
#[test]
fn host_name_mismatch_is_a_verification_error() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let err = memory_pair(&pki.client_options(), &pki.server_options(), "example.com").await.unwrap_err();
        assert_name_mismatch(&err, "example.com");
        let source = match &err {
            StreamError::Tls { source, .. } => source.to_string(),
            _ => unreachable!(),
        };
        assert!(source.contains("not valid for name"), "{source}");
    });
}

// The address-mismatch counterpart, over TCP: a certificate for a DNS name only, reached
// by its address.
#[test]
fn address_not_in_the_certificate_is_a_name_mismatch() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let (listener, port) = loopback_listener().await;
        let server_options = pki.server_options();
        let server = tokio::spawn(async move {
            let mut listener = listener;
            let (raw, _) = listener.accept().await.unwrap();
            TlsStream::accept(raw, server_options.build().unwrap(), RaggedEofPolicy::Strict).await.map(drop)
        });
        let err =
            client(port, &pki.client_options(), "127.0.0.1", RaggedEofPolicy::Strict).await.unwrap_err();
        assert_name_mismatch(&err, "127.0.0.1");
        // The server sees the client's alert.
        let server_err = server.await.unwrap().unwrap_err();
        assert!(
            matches!(
                rustls_error(&server_err),
                Some(rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate))
            ),
            "{server_err:?}"
        );
    });
}

// D9 (derived), and the hostile-client test: 200 silent TCP clients do not keep a proper
// TLS client from being served within 2 s, and all 200 are closed after the timeout.
#[test]
fn silent_clients_time_out_without_stalling_the_listener() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let handshake_timeout = Duration::from_secs(2);
        let server = tls_echo_server(pki.server_options(), handshake_timeout).await;
        let mut silent = Vec::new();
        for _ in 0..200 {
            silent.push(tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap());
        }
        let started = Instant::now();
        let mut proper =
            client(server.port, &pki.client_options(), "localhost", RaggedEofPolicy::Strict).await.unwrap();
        proper.send(b(b"ping")).await.unwrap();
        assert_eq!(proper.receive(10).await.unwrap(), &b"ping"[..]);
        let served_in = started.elapsed();
        assert!(served_in < Duration::from_secs(2), "served after {served_in:?}");
        // Every silent client is closed by the server once its handshake times out.
        let deadline = Instant::now() + handshake_timeout + Duration::from_secs(5);
        for (i, mut conn) in silent.into_iter().enumerate() {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 64];
            let left = deadline.saturating_duration_since(Instant::now());
            let read = tokio::time::timeout(left, conn.read(&mut buf)).await;
            assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "silent client {i} still open: {read:?}");
        }
        let failures = server.failures.lock().unwrap().clone();
        assert_eq!(failures.len(), 200);
        assert!(failures.iter().all(|f| f.starts_with("Timeout")), "{:?}", &failures[..3]);
        assert_eq!(server.handled.load(std::sync::atomic::Ordering::SeqCst), 1);
        proper.aclose().await.unwrap();
        server.shutdown.cancel();
        server.task.await.unwrap();
    });
}

// D10 (derived)
#[test]
fn peer_closing_during_the_handshake_depends_on_the_policy() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        for (policy, strict) in [(RaggedEofPolicy::Strict, true), (RaggedEofPolicy::Ignore, false)] {
            let (mut listener, port) = loopback_listener().await;
            let peer = tokio::spawn(async move {
                let (raw, _) = listener.accept().await.unwrap();
                drop(raw);
            });
            let err = client(port, &pki.client_options(), "localhost", policy).await.unwrap_err();
            if strict {
                assert!(matches!(err, StreamError::Broken(_)), "{err:?}");
            } else {
                assert!(matches!(err, StreamError::EndOfStream), "{err:?}");
            }
            peer.await.unwrap();
        }
    });
}

#[test]
fn ip_address_san_verifies_a_connection_by_ip() {
    run(async {
        let pki = TestPki::new(&["127.0.0.1"]);
        let (listener, port) = loopback_listener().await;
        let server = tokio::spawn(accept_one(listener, pki.server_options(), RaggedEofPolicy::Strict));
        let client = client(port, &pki.client_options(), "127.0.0.1", RaggedEofPolicy::Strict).await.unwrap();
        assert_eq!(client.protocol_version(), Some(TlsVersion::V1_3));
        server.await.unwrap();
        // The same certificate does not cover a DNS name.
        let err = memory_pair(&pki.client_options(), &pki.server_options(), "localhost").await.unwrap_err();
        assert_name_mismatch(&err, "localhost");
    });
}

#[test]
fn pins_of_certificate_or_public_key_replace_ca_verification() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let leaf = pki.server.chain[0].as_ref();
        for pin in [Pin::of_certificate(leaf), Pin::of_public_key(leaf).unwrap()] {
            let options = ClientOptions { pins: vec![pin], keylog: KeyLog::Off, ..Default::default() };
            memory_pair(&options, &pki.server_options(), "localhost").await.unwrap();
            // A pin holds whatever name is used: it names the key, not the host.
            memory_pair(&options, &pki.server_options(), "other.example").await.unwrap();
        }
        let wrong: Pin = format!("sha256:{}", "00".repeat(32)).parse().unwrap();
        let options = ClientOptions { pins: vec![wrong], keylog: KeyLog::Off, ..Default::default() };
        let err = memory_pair(&options, &pki.server_options(), "localhost").await.unwrap_err();
        let text = streamtool::streams::error::chain(&err);
        assert!(text.contains("matches no --pin"), "{text}");
        assert!(
            text.contains(&Pin::of_certificate(leaf).to_string()),
            "the message shows the right pin: {text}"
        );
        // With a CA file too, both the pin and the chain must hold.
        let mut both = pki.client_options();
        both.pins = vec![Pin::of_certificate(leaf)];
        memory_pair(&both, &pki.server_options(), "localhost").await.unwrap();
        let err = memory_pair(&both, &pki.server_options(), "example.com").await.unwrap_err();
        assert_name_mismatch(&err, "example.com");
    });
}

// What `insecure` accepts (an untrusted CA, a wrong name); that the command line says so
// ("weakening is never silent") is `cli::insecure_warns_on_stderr_at_the_command_line`.
#[test]
fn insecure_accepts_any_certificate() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let options = ClientOptions { insecure: true, keylog: KeyLog::Off, ..Default::default() };
        memory_pair(&options, &pki.server_options(), "wrong.name").await.unwrap();
    });
}

#[test]
fn version_ranges_are_honoured_and_disjoint_ranges_fail() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let mut server_options = pki.server_options();
        server_options.versions = VersionRange { min: TlsVersion::V1_2, max: TlsVersion::V1_2 };
        let (client, _) = memory_pair(&pki.client_options(), &server_options, "localhost").await.unwrap();
        assert_eq!(client.protocol_version(), Some(TlsVersion::V1_2));
        let mut client_options = pki.client_options();
        client_options.versions = VersionRange { min: TlsVersion::V1_3, max: TlsVersion::V1_3 };
        let err = memory_pair(&client_options, &server_options, "localhost").await.unwrap_err();
        assert!(matches!(err, StreamError::Tls { .. }), "{err:?}");
        // The server had no version in common: its protocol_version alert.
        assert!(
            matches!(
                rustls_error(&err),
                Some(rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion))
            ),
            "{err:?}"
        );
        let backwards = VersionRange { min: TlsVersion::V1_3, max: TlsVersion::V1_2 };
        let err = ClientOptions { versions: backwards, ..pki.client_options() }.build().unwrap_err();
        assert!(
            err.to_string().contains("minimum TLS version (TLSv1.3) is above the maximum (TLSv1.2)"),
            "{err}"
        );
        for spelling in ["1.2", "TLS1.2", "TLSv1.2", "tlsv1_2"] {
            assert_eq!(spelling.parse::<TlsVersion>().unwrap(), TlsVersion::V1_2);
        }
        assert!("1.1".parse::<TlsVersion>().unwrap_err().contains("not supported"));
    });
}

#[test]
fn keylog_file_gets_the_secrets_and_is_private() {
    run(async {
        use std::os::unix::fs::PermissionsExt;
        let pki = TestPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        let mut options = pki.client_options();
        options.keylog = KeyLog::File(path.clone());
        memory_pair(&options, &pki.server_options(), "localhost").await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().any(|l| l.starts_with("CLIENT_HANDSHAKE_TRAFFIC_SECRET ")), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    });
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_refused() {
    let pki = TestPki::new(&["localhost"]);
    let other = TestPki::new(&["localhost"]);
    let mismatched = tls::Identity { chain: pki.server.chain.clone(), key: other.server.key.clone_key() };
    let err = ServerOptions::new(mismatched).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid TLS configuration: the private key does not match the certificate");
}

#[test]
fn no_sni_sends_no_server_name_but_still_verifies_the_host() {
    run(async {
        let pki = TestPki::new(&["localhost"]);
        let mut options = pki.client_options();
        options.no_sni = true;
        let (_client, server) = memory_pair(&options, &pki.server_options(), "localhost").await.unwrap();
        assert_eq!(server.server_name(), None);
        let err = memory_pair(&options, &pki.server_options(), "example.com").await.unwrap_err();
        assert_name_mismatch(&err, "example.com");
    });
}
