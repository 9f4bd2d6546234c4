//! Fault tests of the real binary on loopback (issue 8): peers that reset mid-transfer,
//! stop reading, never finish the TLS handshake, send plain HTTP or garbage to a TLS port,
//! end TLS without close_notify; descriptor exhaustion under `ulimit -n 64`; SIGTERM
//! during 20 in-flight transfers.
//!
//! Every process is a [`Proc`] (killed on drop, so also when an assertion fails), every
//! wait is bounded ([`STEP`], and the whole test by `support::run`'s limit), and every
//! address is 127.0.0.1.

use std::io::{ErrorKind, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::support::certs::PemPki;
use crate::support::cli::{
    BIN, Input, Proc, STEP, Server, json_events, poll_until, read_all, s, streamtool, tcp_server,
};
use crate::support::data::{KIB, MIB, payload};
use crate::support::run;

/// Sends `data` to an echo server (writing and reading at once, so that large payloads
/// cannot deadlock), ends our side, and checks the reply byte for byte.
async fn echo_exact(addr: &str, data: &[u8]) {
    let tcp = tokio::time::timeout(STEP, TcpStream::connect(addr)).await.expect("connect timed out").unwrap();
    let (mut rx, mut tx) = tcp.into_split();
    let sent = data.to_vec();
    let writer = tokio::spawn(async move {
        tx.write_all(&sent).await.unwrap();
        tx.shutdown().await.unwrap();
    });
    let back = read_all(&mut rx).await;
    writer.await.unwrap();
    assert!(back.len() == data.len(), "{} bytes came back of {} sent to {addr}", back.len(), data.len());
    let first_difference = back.iter().zip(data).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "the echo from {addr} differs at this offset");
}

/// The lines of `text` that contain `needle`.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// Asserts that the process is still running and never panicked.
#[track_caller]
fn assert_alive(proc: &mut Proc) {
    assert!(!proc.has_exited(), "the server exited; stderr:\n{}", proc.stderr());
    assert!(!proc.stderr().contains("panicked"), "the server panicked; stderr:\n{}", proc.stderr());
}

/// Connects, sends `head`, reads part of the echo (the transfer is under way), sends more
/// that is never read, and resets the connection (SO_LINGER 0). Returns the client's
/// address as the server names it.
async fn reset_mid_echo(addr: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let peer = tcp.local_addr().unwrap().to_string();
    let data = payload(1, 192 * KIB);
    tcp.write_all(&data[..64 * KIB]).await.unwrap();
    let mut first = vec![0u8; 16 * KIB];
    tokio::time::timeout(STEP, tcp.read_exact(&mut first)).await.expect("the echo started").unwrap();
    assert!(first == data[..16 * KIB], "the start of the echo");
    tcp.write_all(&data[64 * KIB..]).await.unwrap();
    tcp.set_zero_linger().unwrap();
    drop(tcp);
    peer
}

// ---- 1. a peer resets mid-transfer ----

#[test]
fn a_client_resetting_mid_echo_is_logged_by_address_and_serve_k_goes_on_byte_exact() {
    run(async {
        let mut server = Server::start(&["-k", "--echo"]).await;
        let peer = reset_mid_echo(&server.addr()).await;
        let stderr = server.proc.wait_stderr(&format!("peer={peer}")).await;
        let lines = lines_with(&stderr, &peer);
        assert_eq!(lines.len(), 1, "one line about the reset client:\n{stderr}");
        assert!(
            lines[0].contains("WARN") && lines[0].contains("Connection reset by peer"),
            "a warning that says what happened: {}",
            lines[0]
        );
        // The next clients are served, byte-exact, by the same process.
        echo_exact(&server.addr(), &payload(2, MIB)).await;
        echo_exact(&server.addr(), b"and one more").await;
        assert_alive(&mut server.proc);
    });
}

#[test]
fn a_client_resetting_serve_without_k_exits_1_naming_it_after_writing_out_what_it_sent() {
    run(async {
        let server = Server::start(&[]).await;
        let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
        let peer = tcp.local_addr().unwrap().to_string();
        let data = payload(3, 200_000);
        tcp.write_all(&data).await.unwrap();
        let arrived = poll_until(STEP, || server.proc.stdout().len() >= data.len()).await;
        assert!(arrived, "{} of {} bytes on stdout", server.proc.stdout().len(), data.len());
        tcp.set_zero_linger().unwrap();
        drop(tcp);
        let done = server.proc.finish().await;
        done.assert_code(1);
        assert!(done.stdout == data, "stdout: {} bytes, not the {} sent", done.stdout.len(), data.len());
        let errors: Vec<&str> = done.stderr.lines().filter(|l| !l.contains("listening on")).collect();
        assert_eq!(errors.len(), 1, "one line of error: {}", done.stderr);
        assert!(
            errors[0].starts_with(&format!("streamtool: receiving from {peer} failed: "))
                && errors[0].contains("Connection reset by peer"),
            "names the peer and the reset: {}",
            errors[0]
        );
    });
}

#[test]
fn a_client_resetting_a_pipe_relay_exits_1_naming_it_and_a_forking_relay_goes_on() {
    run(async {
        let mut backend = Server::start(&["-k", "--echo"]).await;
        let target = format!("tcp:{}", backend.addr());

        // One connection: the relay ends with the reset, naming the client.
        let pipe = Server::listening(Proc::streamtool(&["pipe", "tcp-listen:0", &target], Input::Open)).await;
        let peer = reset_mid_echo(&pipe.addr()).await;
        let done = pipe.proc.finish().await;
        done.assert_code(1);
        let error = done.stderr.lines().last().unwrap_or_default();
        assert!(
            (error.starts_with(&format!("streamtool: receiving from {peer} failed: "))
                || error.starts_with(&format!("streamtool: sending to {peer} failed: ")))
                && (error.contains("Connection reset by peer") || error.contains("Broken pipe")),
            "names the client and the reset: {}",
            done.stderr
        );

        // With fork, the reset is a warning naming the client, and the next one is relayed.
        let mut pipe =
            Server::listening(Proc::streamtool(&["pipe", "tcp-listen:0,fork", &target], Input::Open)).await;
        let peer = reset_mid_echo(&pipe.addr()).await;
        let stderr = pipe.proc.wait_stderr(&format!("peer={peer}")).await;
        let lines = lines_with(&stderr, &format!("peer={peer}"));
        assert!(
            lines.len() == 1 && lines[0].contains("WARN") && lines[0].contains(&format!("{peer} failed")),
            "one warning naming the client:\n{stderr}"
        );
        echo_exact(&pipe.addr(), &payload(4, MIB)).await;
        assert_alive(&mut pipe.proc);
        assert_alive(&mut backend.proc);
    });
}

#[test]
fn connect_exits_1_naming_the_server_when_it_resets_after_a_partial_reply() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            let mut request = [0u8; 5];
            tcp.read_exact(&mut request).await.unwrap();
            tcp.write_all(b"partial reply").await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            tcp.set_zero_linger().unwrap();
        })
        .await;
        let mut client = Proc::streamtool(&["connect", &format!("127.0.0.1:{port}")], Input::Open);
        client.write(b"hello").await;
        let done = client.finish().await;
        server.await.unwrap();
        done.assert_code(1);
        assert_eq!(done.stdout, b"partial reply", "what came before the reset is written out");
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {}", done.stderr);
        assert!(
            lines[0].starts_with(&format!("streamtool: receiving from 127.0.0.1:{port} failed: "))
                && lines[0].contains("Connection reset by peer"),
            "names the server and the reset: {}",
            lines[0]
        );
    });
}

// ---- 2. a peer that stops reading ----

/// A client that sends as much as it can for a while (never reading) on a blocking socket
/// in a thread.
struct StalledWriter {
    thread: std::thread::JoinHandle<Stalled>,
    peer: String,
}

/// How a [`StalledWriter`] ended.
struct Stalled {
    /// Bytes the network took.
    sent: usize,
    /// The error that ended it, if any, and when it came.
    error: Option<(ErrorKind, Duration)>,
    /// The connection, still open unless the error closed it.
    tcp: std::net::TcpStream,
}

impl StalledWriter {
    fn start(addr: &str, limit: Duration) -> StalledWriter {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        let peer = tcp.local_addr().unwrap().to_string();
        tcp.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
        let thread = std::thread::spawn(move || {
            let chunk = payload(5, 256 * KIB);
            let started = Instant::now();
            let mut sent = 0;
            // 256 MiB is the attempt; the network takes a few MiB, then writes block.
            while sent < 256 * MIB && started.elapsed() < limit {
                match tcp.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => return Stalled { sent, error: Some((e.kind(), started.elapsed())), tcp },
                }
            }
            Stalled { sent, error: None, tcp }
        });
        StalledWriter { thread, peer }
    }

    /// Waits for the thread (it ends by its own limit).
    async fn join(self) -> Stalled {
        let thread = self.thread;
        let joined = poll_until(STEP, || thread.is_finished()).await;
        assert!(joined, "the writer thread did not stop");
        thread.join().expect("the writer thread")
    }
}

#[test]
fn a_client_that_never_reads_keeps_serve_echo_memory_bounded_and_others_are_served() {
    run(async {
        let mut server = Server::start(&["-k", "--echo"]).await;
        echo_exact(&server.addr(), &payload(6, MIB)).await;
        let baseline = server.proc.rss_kib();
        let writer = StalledWriter::start(&server.addr(), Duration::from_secs(4));
        // While it is stalled, others are served, and memory stays flat.
        let mut peak = baseline;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            peak = peak.max(server.proc.rss_kib());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        echo_exact(&server.addr(), &payload(7, MIB)).await;
        let Stalled { sent, error, tcp } = writer.join().await;
        peak = peak.max(server.proc.rss_kib());
        eprintln!(
            "stalled client: the network took {} KiB; server RSS {baseline} KiB -> peak {peak} KiB",
            sent / KIB
        );
        assert_eq!(error, None, "without --idle-timeout the stalled connection stays open");
        assert!(sent < 64 * MIB, "the server read {} MiB from a client that reads nothing", sent / MIB);
        assert!(peak < baseline + 16 * 1024, "server RSS grew from {baseline} KiB to {peak} KiB");
        drop(tcp);
        echo_exact(&server.addr(), b"after the stalled client left").await;
        assert_alive(&mut server.proc);
    });
}

#[test]
fn idle_timeout_1s_closes_a_client_that_never_reads_and_serving_goes_on() {
    run(async {
        let mut server = Server::start(&["-k", "--echo", "--idle-timeout", "1s", "--events", "json"]).await;
        let baseline = server.proc.rss_kib();
        let writer = StalledWriter::start(&server.addr(), Duration::from_secs(8));
        let peer = writer.peer.clone();
        let Stalled { sent, error, tcp: _tcp } = writer.join().await;
        let peak = server.proc.status_kib("VmHWM");
        eprintln!(
            "stalled client: {} KiB taken, ended by {error:?}; server RSS {baseline} KiB, peak {peak} KiB",
            sent / KIB
        );
        let (kind, after) = error.expect("the server closed the stalled connection");
        assert!(
            matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
            "the client saw the connection end: {kind:?}"
        );
        assert!(
            after < Duration::from_secs(5),
            "closed {after:?} after the client started, with a 1 s limit"
        );
        assert!(sent < 64 * MIB, "the server read {} MiB from a client that reads nothing", sent / MIB);
        let closed = || {
            json_events(&server.proc.stderr())
                .iter()
                .any(|e| e["event"] == "close" && e["peer"] == peer.as_str() && e["reason"] == "idle timeout")
        };
        assert!(
            poll_until(STEP, closed).await,
            "no idle-timeout close event for {peer}:\n{}",
            server.proc.stderr()
        );
        echo_exact(&server.addr(), &payload(8, MIB)).await;
        assert_alive(&mut server.proc);
    });
}

// ---- 3. a TLS client that never finishes the handshake ----

/// A proper TLS client (`streamtool connect --tls --ca`) gets its line echoed.
async fn tls_echo_works(pki: &PemPki, server: &Server) {
    let done = streamtool(
        &["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca), &server.localhost()],
        b"hello over TLS\n",
    )
    .await;
    done.assert_code(0);
    assert_eq!(done.stdout, b"hello over TLS\n");
}

/// Reads until the server ends the connection; returns what came and when.
async fn until_closed(tcp: &mut TcpStream, started: Instant) -> (Vec<u8>, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(STEP, tcp.read(&mut buf)).await.expect("the server never closed") {
            Ok(0) | Err(_) => return (got, started.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn tls_clients_that_never_finish_the_handshake_are_dropped_after_handshake_timeout() {
    run(async {
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let mut server = Server::tls_echo(&pki, &["--handshake-timeout", "1s"]).await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(server.addr()).await.unwrap();
        let mut partial = TcpStream::connect(server.addr()).await.unwrap();
        // A handshake record that announces 512 bytes of ClientHello and sends 26.
        let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
        hello.extend_from_slice(&[0u8; 15]);
        partial.write_all(&hello).await.unwrap();
        // A proper client is served meanwhile: the silent ones hold up only themselves.
        tls_echo_works(&pki, &server).await;
        for (name, tcp) in [("silent", &mut silent), ("partial ClientHello", &mut partial)] {
            let peer = tcp.local_addr().unwrap().to_string();
            let (got, after) = until_closed(tcp, started).await;
            assert!(got.is_empty(), "{name}: the server sent {got:?}");
            assert!(
                after >= Duration::from_millis(900) && after < Duration::from_secs(5),
                "{name}: dropped after {after:?} with a 1 s handshake limit"
            );
            let stderr = server.proc.wait_stderr(&format!("TLS handshake with {peer} failed")).await;
            let lines = lines_with(&stderr, &peer);
            assert_eq!(
                lines,
                [format!(" WARN TLS handshake with {peer} failed: timed out after 1s")],
                "{name}"
            );
        }
        tls_echo_works(&pki, &server).await;
        assert_alive(&mut server.proc);
    });
}

#[test]
fn connect_tls_to_a_server_that_never_answers_exits_6_after_handshake_timeout() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move { read_all(&mut tcp).await }).await;
        let started = Instant::now();
        let target = format!("127.0.0.1:{port}");
        let args = ["connect", "--tls", "--on-eof", "half-close", "--handshake-timeout", "1s", &target];
        let done = Proc::streamtool(&args, Input::Open).finish().await;
        let took = started.elapsed();
        done.assert_code(6);
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "exited after {took:?}");
        assert_eq!(done.stderr, format!("streamtool: {target}: TLS handshake timed out after 1s\n"));
        let hello = server.await.unwrap();
        assert_eq!(hello.first(), Some(&0x16), "the client did send its ClientHello");
    });
}

// ---- 4. garbage and plain HTTP on a TLS port ----

#[test]
fn plain_http_and_garbage_sent_to_a_tls_port_are_named_as_not_tls_and_serving_goes_on() {
    run(async {
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let mut server = Server::tls_echo(&pki, &[]).await;
        let mut garbage = vec![0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
        garbage.extend_from_slice(&payload(9, 300));
        let cases: [(&str, &[u8], &str); 2] = [
            ("plain HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "the client sent plain HTTP, not TLS"),
            ("garbage", &garbage, "the client does not speak TLS (its first bytes: 00 01 02 03 04 05 06 07)"),
        ];
        for (name, request, why) in cases {
            let started = Instant::now();
            let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
            let peer = tcp.local_addr().unwrap().to_string();
            tcp.write_all(request).await.unwrap();
            let (got, after) = until_closed(&mut tcp, started).await;
            // At most a TLS alert record, never an echo.
            assert!(got.is_empty() || got[0] == 0x15, "{name}: the server answered {got:?}");
            assert!(after < Duration::from_secs(3), "{name}: closed only after {after:?}");
            let stderr = server.proc.wait_stderr(&format!("TLS handshake with {peer} failed")).await;
            assert_eq!(
                lines_with(&stderr, &peer),
                [format!(" WARN TLS handshake with {peer} failed: {why}")]
            );
        }
        tls_echo_works(&pki, &server).await;
        assert_alive(&mut server.proc);
    });
}

#[test]
fn connect_tls_to_a_plain_http_server_exits_4_saying_it_does_not_speak_tls() {
    run(async {
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let (port, server) = tcp_server(|mut tcp| async move {
            let mut hello = [0u8; 5];
            tcp.read_exact(&mut hello).await.unwrap();
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
            let _ = tcp.shutdown().await;
            // The client may go with our answer unread: a reset is fine here.
            let _ = tokio::time::timeout(STEP, tcp.read_to_end(&mut Vec::new())).await;
        })
        .await;
        let target = format!("127.0.0.1:{port}");
        let done = Proc::streamtool(
            &["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca), &target],
            Input::Open,
        )
        .finish()
        .await;
        server.await.unwrap();
        done.assert_code(4);
        assert_eq!(done.stdout, b"", "nothing of the HTTP answer reaches stdout");
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "the error and a hint: {}", done.stderr);
        assert!(
            lines[0].starts_with(&format!("streamtool: {target}: TLS handshake failed: ")),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "streamtool: hint: the peer does not seem to speak TLS on this port");
    });
}

#[test]
fn connect_without_a_client_certificate_exits_4_with_the_hint_even_when_sending_fails_first() {
    run(async {
        // TLS 1.3: the client's handshake is done before the server checks for a client
        // certificate; the server's alert and reset race the client's upload. Whatever the
        // upload met (a broken pipe, a reset), the alert still waiting to be read is the reason.
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let mut server = Server::tls_echo(&pki, &["--client-ca", s(&pki.ca), "--require-client-cert"]).await;
        for seed in 0..3 {
            let upload = payload(30 + seed, 4 * MIB);
            let done = streamtool(
                &["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca), &server.localhost()],
                &upload,
            )
            .await;
            done.assert_code(4);
            assert_eq!(done.stdout, b"", "nothing was echoed to a client without a certificate");
            let lines: Vec<&str> = done.stderr.lines().collect();
            assert!(
                lines.len() == 2
                    && lines[0]
                        .starts_with(&format!("streamtool: receiving from {} failed: ", server.addr()))
                    && lines[0].contains("CertificateRequired"),
                "the server's alert is the reason: {}",
                done.stderr
            );
            assert_eq!(
                lines[1],
                "streamtool: hint: the server requires a client certificate: add --cert FILE --key FILE"
            );
        }
        assert_alive(&mut server.proc);
    });
}

// ---- 5. TLS without close_notify (ragged EOF) ----

/// A TLS server (tokio-rustls, not streamtool) that sends `data`, then ends TCP with a FIN
/// and no close_notify, and reads what the client sends until it goes.
async fn ragged_tls_server(pki: &PemPki, data: Arc<Vec<u8>>) -> (u16, JoinHandle<()>) {
    let config = pki.server_options().build().unwrap();
    tcp_server(move |tcp| async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let mut tls = acceptor.accept(tcp).await.expect("the test server's handshake");
        tls.write_all(&data).await.unwrap();
        tls.flush().await.unwrap();
        let (tcp, _) = tls.get_mut();
        tcp.shutdown().await.unwrap();
        let _ = tokio::time::timeout(STEP, tcp.read_to_end(&mut Vec::new())).await;
    })
    .await
}

#[test]
fn ragged_eof_after_a_mib_writes_it_all_out_then_strict_and_the_default_exit_5_saying_truncated() {
    run(async {
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let data = Arc::new(payload(10, MIB + 123));
        // The default policy is strict (docs/tls.md).
        for policy in [&["--ragged-eof", "strict"][..], &[]] {
            let (port, server) = ragged_tls_server(&pki, Arc::clone(&data)).await;
            let target = format!("127.0.0.1:{port}");
            let mut args = vec!["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca)];
            args.extend_from_slice(policy);
            args.push(&target);
            let done = Proc::streamtool(&args, Input::Bytes(Vec::new())).finish().await;
            server.await.unwrap();
            done.assert_code(5);
            assert!(
                done.stdout == *data,
                "{policy:?}: {} bytes written out of {}",
                done.stdout.len(),
                data.len()
            );
            assert_eq!(
                done.stderr,
                format!(
                    "streamtool: receiving from {target} failed: the TLS peer closed the connection without \
                     close_notify: the data may be truncated\n"
                ),
                "{policy:?}"
            );
        }
        // warn: the same data, success, and one warning.
        let (port, server) = ragged_tls_server(&pki, Arc::clone(&data)).await;
        let target = format!("127.0.0.1:{port}");
        let args = [
            "connect",
            "--tls",
            "--on-eof",
            "half-close",
            "--ca",
            s(&pki.ca),
            "--ragged-eof",
            "warn",
            &target,
        ];
        let done = Proc::streamtool(&args, Input::Bytes(Vec::new())).finish().await;
        server.await.unwrap();
        done.assert_code(0);
        assert!(done.stdout == *data, "warn: {} bytes written out of {}", done.stdout.len(), data.len());
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert!(lines.len() == 1 && lines[0].contains("close_notify"), "one warning: {}", done.stderr);
    });
}

// ---- 6. running out of file descriptors ----

#[test]
fn serve_under_ulimit_n_64_survives_200_held_connections_backs_off_and_recovers() {
    run(async {
        let script = r#"ulimit -n 64 && exec "$0" "$@""#;
        let proc = Proc::spawn("bash", &["-c", script, BIN, "serve", "-k", "--echo"], Input::Open);
        let mut server = Server::listening(proc).await;
        let addr: SocketAddr = server.addr().parse().unwrap();
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.proc.pid())).unwrap();
        let nofile = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default();
        assert!(nofile.split_whitespace().nth(3) == Some("64"), "not running under ulimit -n 64: {nofile}");

        // 200 connections at once, all held open.
        let connects: Vec<JoinHandle<Option<TcpStream>>> = (0..200)
            .map(|_| {
                tokio::spawn(
                    async move { tokio::time::timeout(STEP, TcpStream::connect(addr)).await.ok()?.ok() },
                )
            })
            .collect();
        let mut held = Vec::new();
        for connect in connects {
            held.extend(connect.await.unwrap());
        }
        assert!(held.len() >= 150, "only {} of 200 connections were made", held.len());
        let exhausted = poll_until(STEP, || server.proc.open_fds() >= 60).await;
        assert!(exhausted, "the server holds only {} descriptors", server.proc.open_fds());
        server.proc.wait_stderr("accept failed; backing off").await;

        // The connections it could accept are served; the others wait in the queue.
        let served = Arc::new(AtomicUsize::new(0));
        let probes: Vec<JoinHandle<()>> = held
            .drain(..)
            .enumerate()
            .map(|(i, mut tcp)| {
                let served = Arc::clone(&served);
                tokio::spawn(async move {
                    let ping = format!("ping {i:03}");
                    let mut got = [0u8; 8];
                    if tcp.write_all(ping.as_bytes()).await.is_ok()
                        && let Ok(Ok(_)) =
                            tokio::time::timeout(Duration::from_secs(2), tcp.read_exact(&mut got)).await
                    {
                        assert_eq!(&got[..], ping.as_bytes(), "another client's echo");
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    // Held until the probes are done: the descriptors stay used.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                })
            })
            .collect();
        for probe in probes {
            probe.await.unwrap();
        }
        let served = served.load(Ordering::SeqCst);
        assert!(
            (30..150).contains(&served),
            "{served} held connections were served (at most ~50 fit in 64 fds)"
        );
        assert_alive(&mut server.proc);

        // All held connections are closed now: new clients are served again, byte-exact.
        for seed in 0..5 {
            echo_exact(&server.addr(), &payload(20 + seed, 64 * KIB)).await;
        }
        let stderr = server.proc.stderr();
        let backoffs = lines_with(&stderr, "accept failed; backing off");
        assert!(
            backoffs.iter().all(|l| l.contains("Too many open files")),
            "the accept error is named: {backoffs:?}"
        );
        // Backing off (5 ms doubling to 1 s) keeps this to a few lines a second.
        assert!(backoffs.len() < 40, "{} accept-failure lines in a few seconds", backoffs.len());
        assert_alive(&mut server.proc);
    });
}

// ---- 7. SIGTERM during 20 in-flight transfers ----

const TRANSFERS: usize = 20;

/// Starts `serve ARGS` (an echoing mode), runs 20 paced clients of 4 MiB and more each,
/// sends SIGTERM once all are in flight, and checks: new connections are refused, every
/// transfer completes byte-exact, and the server exits 0 once they are done.
async fn sigterm_during_transfers(args: &[&str]) {
    let server = Server::start(args).await;
    let addr: SocketAddr = server.addr().parse().unwrap();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let clients: Vec<JoinHandle<()>> = (0..TRANSFERS)
        .map(|i| {
            let (in_flight, finished) = (Arc::clone(&in_flight), Arc::clone(&finished));
            tokio::spawn(async move {
                let data = payload(100 + i as u64, 4 * MIB + i * 64 * KIB);
                let (mut rx, mut tx) = TcpStream::connect(addr).await.unwrap().into_split();
                let sent = data.clone();
                let writer = tokio::spawn(async move {
                    // 64 KiB every 25 ms: about two seconds per transfer.
                    for chunk in sent.chunks(64 * KIB) {
                        tx.write_all(chunk).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                    tx.shutdown().await.unwrap();
                });
                let mut back = vec![0u8; 1];
                rx.read_exact(&mut back).await.unwrap();
                in_flight.fetch_add(1, Ordering::SeqCst);
                rx.read_to_end(&mut back).await.unwrap();
                writer.await.unwrap();
                assert!(
                    back.len() == data.len(),
                    "transfer {i}: {} bytes back of {}",
                    back.len(),
                    data.len()
                );
                assert!(back == data, "transfer {i}: the echo differs");
                finished.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let all_started = poll_until(STEP, || in_flight.load(Ordering::SeqCst) == TRANSFERS).await;
    assert!(all_started, "{} of {TRANSFERS} transfers started", in_flight.load(Ordering::SeqCst));
    assert_eq!(finished.load(Ordering::SeqCst), 0, "a transfer finished before SIGTERM");
    server.proc.signal("TERM");
    let refused = poll_until(STEP, || {
        matches!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused
        )
    })
    .await;
    assert!(refused, "new connections are still accepted after SIGTERM");
    assert!(finished.load(Ordering::SeqCst) < TRANSFERS, "the transfers were over before the check");
    let mut server = server;
    assert!(!server.proc.has_exited(), "the server exited with transfers in flight");
    for client in clients {
        tokio::time::timeout(STEP, client).await.expect("a transfer hung after SIGTERM").unwrap();
    }
    let done = server.proc.finish_within(Duration::from_secs(5)).await;
    done.assert_code(0);
    assert!(!done.stderr.contains("grace period over"), "transfers were cut short:\n{}", done.stderr);
}

#[test]
fn sigterm_during_20_echo_transfers_refuses_new_ones_finishes_them_byte_exact_and_exits_0() {
    run(sigterm_during_transfers(&["-k", "--echo", "--grace", "15s"]));
}

#[test]
fn sigterm_during_20_exec_cat_transfers_refuses_new_ones_finishes_them_byte_exact_and_exits_0() {
    run(sigterm_during_transfers(&["-k", "--exec", "cat", "--grace", "15s"]));
}
