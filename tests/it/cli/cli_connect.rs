//! `streamtool connect`, the real binary over loopback: round trips, half-close, every
//! exit code of the contract (docs/design.md §4.8), framing and text flags, `-z`,
//! `--show-cert`, `--send-only`/`--recv-only`/`--no-shutdown` and `--events json`.
//! Peers are `streamtool serve` or servers written here (tokio, and the library's
//! `TlsStream::accept` where a misbehaving TLS peer is needed).

use std::time::{Duration, Instant};

use streamtool::streams::tls::RaggedEofPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::certs::PemPki;
use crate::support::cli::{
    Input, Proc, Server, assert_refused_for_name, closed_port, json_events, read_all, s, streamtool,
    tcp_server, tls_server,
};
use crate::support::run;

// ---- basics ----

#[test]
fn connect_round_trips_through_serve_echo_over_tcp() {
    run(async {
        let server = Server::start(&["-k", "--echo"]).await;
        let done = streamtool(&["connect", &server.addr()], b"hello over tcp\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"hello over tcp\n");
    });
}

#[test]
fn connect_round_trips_through_serve_echo_over_a_unix_socket() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:{}", s(&dir.path().join("echo.sock")));
        let _server = Server::start(&[&address, "--echo", "-k"]).await;
        let done = streamtool(&["connect", &address], b"hello over unix\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"hello over unix\n");
    });
}

// ---- half-close (docs/design.md §4.2) ----

/// 200 KB of recognisable bytes.
fn big_reply() -> Vec<u8> {
    (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn connect_prints_the_whole_reply_sent_1_5_s_after_its_half_close() {
    run(async {
        let reply = big_reply();
        let sent = reply.clone();
        let (port, server) = tcp_server(move |mut tcp| async move {
            let got = read_all(&mut tcp).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            tcp.write_all(&sent).await.unwrap();
            tcp.shutdown().await.unwrap();
            got
        })
        .await;
        let started = Instant::now();
        let done = streamtool(&["connect", &format!("127.0.0.1:{port}")], b"hello").await;
        done.assert_code(0);
        assert_eq!(server.await.unwrap(), b"hello", "the server saw stdin, then EOF");
        assert!(done.stdout == reply, "got {} of {} reply bytes", done.stdout.len(), reply.len());
        assert!(started.elapsed() >= Duration::from_millis(1400));
    });
}

#[test]
fn connect_prints_the_whole_reply_sent_1_5_s_after_its_tls13_close_notify() {
    run(async {
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let reply = big_reply();
        let sent = reply.clone();
        let (port, server) = tls_server(&pki, RaggedEofPolicy::Strict, move |mut tls| async move {
            // close_notify from the client reads as a clean EOF while we can still write.
            let got = read_all(&mut tls).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            tls.write_all(&sent).await.unwrap();
            tls.shutdown().await.unwrap();
            got
        })
        .await;
        // A TLS client keeps its side open by default; --on-eof half-close sends close_notify.
        let args =
            ["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca), &format!("127.0.0.1:{port}")];
        let started = Instant::now();
        let done = streamtool(&args, b"hello").await;
        done.assert_code(0);
        assert_eq!(server.await.unwrap(), b"hello");
        assert!(done.stdout == reply, "got {} of {} reply bytes", done.stdout.len(), reply.len());
        // The reply really came 1.5 s after the close_notify (the case this test names).
        assert!(started.elapsed() >= Duration::from_millis(1400));
    });
}

#[test]
fn connect_with_a_terminal_on_stdin_exits_when_the_peer_ends() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            tcp.write_all(b"bye\n").await.unwrap();
            tcp.shutdown().await.unwrap();
            // Hold the socket until the client has gone: only our FIN ends it.
            read_all(&mut tcp).await
        })
        .await;
        let started = Instant::now();
        // script(1) gives connect a terminal on stdin, which nobody types into.
        let command = format!("{} connect 127.0.0.1:{port}", crate::support::cli::BIN);
        let client = Proc::spawn("script", &["-qec", &command, "/dev/null"], Input::Open);
        let done = client.finish_within(Duration::from_secs(5)).await;
        done.assert_code(0);
        assert!(done.stdout_text().contains("bye"), "{:?}", done.stdout_text());
        assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
        assert_eq!(server.await.unwrap(), b"", "the client sent nothing");
    });
}

#[test]
fn connect_keeps_sending_a_pipe_after_the_peer_ended_and_says_so() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            tcp.write_all(b"bye\n").await.unwrap();
            tcp.shutdown().await.unwrap();
            read_all(&mut tcp).await
        })
        .await;
        // stdin is a pipe: it is sent to its end, however long it takes.
        let mut client = Proc::streamtool(&["connect", &format!("127.0.0.1:{port}")], Input::Open);
        client.wait_stdout(b"bye\n").await;
        client.wait_stderr("still sending stdin").await;
        client.write(b"late\n").await;
        client.close_stdin();
        let done = client.finish_within(Duration::from_secs(5)).await;
        done.assert_code(0);
        assert_eq!(server.await.unwrap(), b"late\n", "what stdin held after the peer's end arrived");
    });
}

// ---- exit codes (docs/design.md §4.8) ----

#[test]
fn exit_3_when_the_port_refuses() {
    run(async {
        let target = format!("127.0.0.1:{}", closed_port());
        let done = streamtool(&["connect", &target], b"").await;
        done.assert_code(3);
        assert!(done.stderr.contains(&target), "the message names the target: {}", done.stderr);
    });
}

/// A name that cannot exist fails before any DNS query: this machine's resolver is not on
/// loopback, and tests send traffic to loopback only. (A well-formed name that does not
/// resolve takes the same error path, after the resolver answers.)
#[test]
fn exit_3_when_the_host_name_cannot_resolve() {
    run(async {
        for name in ["no..such.host", "bad host", "x_-%.invalid"] {
            let target = format!("{name}:80");
            let done = streamtool(&["connect", "-w", "3s", &target], b"").await;
            done.assert_code(3);
            assert!(done.stderr.contains(&format!("cannot resolve {name}")), "{}", done.stderr);
            assert!(done.stderr.contains("not a valid host name"), "{}", done.stderr);
        }
    });
}

#[test]
fn exit_4_when_the_certificate_is_not_trusted() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let other = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &[]).await;
        let done = streamtool(&["connect", "--tls", "--ca", s(&other.ca), &server.localhost()], b"x").await;
        done.assert_code(4);
        assert!(done.stderr.contains(&server.localhost()), "{}", done.stderr);
    });
}

#[test]
fn exit_4_when_the_sni_name_does_not_match_the_certificate() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &[]).await;
        let target = server.localhost();
        let args = ["connect", "--tls", "--ca", s(&pki.ca), "--sni", "wrong.example", &target];
        let done = streamtool(&args, b"x").await;
        assert_refused_for_name(&done, &target, "wrong.example");
    });
}

#[test]
fn exit_4_when_the_address_is_not_named_in_the_certificate() {
    run(async {
        // The certificate names localhost only, not the IP address connected to.
        let pki = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &[]).await;
        let target = server.addr();
        let done = streamtool(&["connect", "--tls", "--ca", s(&pki.ca), &target], b"x").await;
        assert_refused_for_name(&done, &target, "127.0.0.1");
    });
}

/// A TLS server that sends `data\n` and drops the connection without close_notify.
async fn ragged_server(pki: &PemPki) -> (u16, tokio::task::JoinHandle<()>) {
    tls_server(pki, RaggedEofPolicy::Ignore, |mut tls| async move {
        tls.write_all(b"data\n").await.unwrap();
        tls.flush().await.unwrap();
        drop(tls);
    })
    .await
}

pub(crate) async fn connect_to_ragged_server(policy: &str) -> crate::support::cli::Finished {
    let pki = PemPki::new(&["localhost", "127.0.0.1"]);
    let (port, server) = ragged_server(&pki).await;
    let target = format!("127.0.0.1:{port}");
    let client = Proc::streamtool(
        &["connect", "--tls", "--ca", s(&pki.ca), "--ragged-eof", policy, &target],
        Input::Bytes(Vec::new()),
    );
    let done = client.finish().await;
    server.await.unwrap();
    assert_eq!(done.stdout, b"data\n", "what arrived before the truncation is written out");
    done
}

#[test]
fn exit_5_for_a_truncated_tls_stream_under_ragged_eof_strict() {
    run(async {
        let done = connect_to_ragged_server("strict").await;
        done.assert_code(5);
        assert!(done.stderr.contains("close_notify"), "{}", done.stderr);
    });
}

#[test]
fn truncated_tls_stream_under_ragged_eof_warn_exits_0_with_a_warning() {
    run(async {
        let done = connect_to_ragged_server("warn").await;
        done.assert_code(0);
        assert!(done.stderr.contains("close_notify"), "a warning on stderr: {:?}", done.stderr);
    });
}

#[test]
fn truncated_tls_stream_under_ragged_eof_ignore_exits_0_silently() {
    run(async {
        let done = connect_to_ragged_server("ignore").await;
        done.assert_code(0);
        assert!(!done.stderr.contains("close_notify"), "no warning: {:?}", done.stderr);
    });
}

#[test]
fn exit_6_when_connecting_times_out() {
    run(async {
        // A listener with a full accept queue: Linux drops further SYNs, so connecting
        // hangs (retrying after 1 s) until the -w limit.
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        while let Ok(stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fillers.push(stream);
            assert!(fillers.len() < 64, "the accept queue never filled up");
        }
        let started = Instant::now();
        let done = streamtool(&["connect", "-w", "500ms", &addr.to_string()], b"").await;
        done.assert_code(6);
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(socket);
    });
}

#[test]
fn exit_6_when_the_tls_handshake_times_out() {
    run(async {
        // Accepts TCP and never says a word of TLS.
        let (port, server) = tcp_server(|mut tcp| async move { read_all(&mut tcp).await }).await;
        let started = Instant::now();
        let args = ["connect", "--tls", "--handshake-timeout", "500ms", &format!("127.0.0.1:{port}")];
        let done = Proc::streamtool(&args, Input::Open).finish().await;
        done.assert_code(6);
        assert!(started.elapsed() < Duration::from_secs(5));
        server.await.unwrap();
    });
}

#[test]
fn exit_6_when_the_connection_is_idle_too_long() {
    run(async {
        // Sends nothing and keeps the connection open until the client goes.
        let (port, server) = tcp_server(|mut tcp| async move { read_all(&mut tcp).await }).await;
        let started = Instant::now();
        let args = ["connect", "--idle-timeout", "300ms", &format!("127.0.0.1:{port}")];
        let done = Proc::streamtool(&args, Input::Open).finish().await;
        done.assert_code(6);
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(started.elapsed() < Duration::from_secs(5));
        server.await.unwrap();
    });
}

/// A server that sends `data`, ends its side, and waits for the client to go.
async fn sending_server(data: &'static [u8]) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    tcp_server(move |mut tcp| async move {
        tcp.write_all(data).await.unwrap();
        tcp.shutdown().await.unwrap();
        read_all(&mut tcp).await
    })
    .await
}

#[test]
fn exit_7_for_an_oversized_frame() {
    run(async {
        let (port, _server) = sending_server(b"0123456789abcdefghi\n").await;
        let args = ["connect", "--delimiter", "\\n", "--max-frame", "8", &format!("127.0.0.1:{port}")];
        let done = Proc::streamtool(&args, Input::Open).finish().await;
        done.assert_code(7);
        assert_eq!(done.stdout, b"");
    });
}

#[test]
fn exit_7_for_invalid_utf8_under_decode_errors_strict() {
    run(async {
        let (port, _server) = sending_server(b"ok\n\xff\n").await;
        let args = ["connect", "--decode-errors", "strict", &format!("127.0.0.1:{port}")];
        let done = Proc::streamtool(&args, Input::Open).finish().await;
        done.assert_code(7);
        assert!(!done.stdout.contains(&0xff), "invalid bytes never reach stdout");
    });
}

#[test]
fn exit_7_for_invalid_utf8_with_encoding_utf8() {
    run(async {
        let (port, _server) = sending_server(b"\xff\n").await;
        let args = ["connect", "--encoding", "utf-8", &format!("127.0.0.1:{port}")];
        let done = Proc::streamtool(&args, Input::Open).finish().await;
        done.assert_code(7);
    });
}

#[test]
fn invalid_utf8_under_decode_errors_replace_becomes_u_fffd() {
    run(async {
        let (port, _server) = sending_server(b"a\xffb\n").await;
        let args = ["connect", "--decode-errors", "replace", &format!("127.0.0.1:{port}")];
        let done = Proc::streamtool(&args, Input::Bytes(Vec::new())).finish().await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "a\u{FFFD}b\n");
    });
}

#[test]
fn exit_2_without_an_address() {
    run(async {
        streamtool(&["connect"], b"").await.assert_code(2);
    });
}

#[test]
fn exit_2_for_a_port_that_is_not_a_number() {
    run(async {
        streamtool(&["connect", "localhost:notaport"], b"").await.assert_code(2);
    });
}

#[test]
fn exit_2_for_max_frame_without_delimiter() {
    run(async {
        let target = format!("127.0.0.1:{}", closed_port());
        streamtool(&["connect", "--max-frame", "8", &target], b"").await.assert_code(2);
    });
}

#[test]
fn exit_2_for_tls_min_above_tls_max() {
    run(async {
        let target = format!("127.0.0.1:{}", closed_port());
        let done =
            streamtool(&["connect", "--tls", "--tls-min", "1.3", "--tls-max", "1.2", &target], b"").await;
        done.assert_code(2);
    });
}

#[test]
fn exit_130_on_sigint() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            tcp.write_all(b"ready\n").await.unwrap();
            read_all(&mut tcp).await
        })
        .await;
        let client = Proc::streamtool(&["connect", &format!("127.0.0.1:{port}")], Input::Open);
        client.wait_stdout(b"ready\n").await;
        // The session is running (it wrote to stdout) and catches SIGINT (its SigCgt mask
        // says so): the signal meets the handler, not the default action.
        client.wait_catches_signal(2).await;
        client.signal("INT");
        let done = client.finish().await;
        done.assert_code(130);
        server.await.unwrap();
    });
}

#[test]
fn exit_1_when_sending_to_the_peer_fails_with_a_broken_pipe() {
    run(async {
        // The server ends and closes at once; with --keep-sending the client goes on
        // sending stdin. A write after the close draws a reset (EPIPE in CLOSE_WAIT), so
        // stdin is not delivered. Keep writing until the client gives up (its stdin pipe
        // then fails), bounded: no fixed pause decides whether the reset has arrived.
        let (port, server) = tcp_server(|tcp| async move { drop(tcp) }).await;
        let target = format!("127.0.0.1:{port}");
        let mut client = Proc::streamtool(&["connect", "--keep-sending", &target], Input::Open);
        server.await.unwrap();
        let deadline = Instant::now() + crate::support::cli::STEP;
        while !client.has_exited() && Instant::now() < deadline {
            if client.try_write(b"more of stdin, not delivered\n").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let done = client.finish().await;
        // docs/cli.md, "a write to the peer fails (EPIPE, reset)": one line says how many
        // bytes of stdin were sent and that the rest was not; exit 1.
        done.assert_code(1);
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {:?}", done.stderr);
        assert!(
            lines[0].starts_with("streamtool: ")
                && lines[0].contains(&target)
                && lines[0].contains(" bytes of stdin were sent, the rest was not"),
            "the line says how much of stdin was sent: {:?}",
            lines[0]
        );
    });
}

// ---- framing and text ----

#[test]
fn delimiter_crlf_with_on_oversize_skip_drops_only_the_long_frame() {
    run(async {
        let (port, _server) = sending_server(b"one\r\nthis-frame-is-too-long\r\ntwo\r\n").await;
        let args = [
            "connect",
            "--delimiter",
            "\\r\\n",
            "--max-frame",
            "8",
            "--on-oversize",
            "skip",
            &format!("127.0.0.1:{port}"),
        ];
        let done = streamtool(&args, b"").await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "one\r\ntwo\r\n");
    });
}

#[test]
fn encoding_latin1_decodes_the_peer_and_encodes_stdin() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            tcp.write_all(b"caf\xe9\n").await.unwrap();
            let got = read_all(&mut tcp).await;
            tcp.shutdown().await.unwrap();
            got
        })
        .await;
        let done = streamtool(
            &["connect", "--encoding", "latin1", &format!("127.0.0.1:{port}")],
            "été\n".as_bytes(),
        )
        .await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "café\n");
        assert_eq!(server.await.unwrap(), b"\xe9t\xe9\n");
    });
}

#[test]
fn crlf_turns_lf_into_crlf_on_the_way_out() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            let got = read_all(&mut tcp).await;
            tcp.shutdown().await.unwrap();
            got
        })
        .await;
        let done = streamtool(&["connect", "--crlf", &format!("127.0.0.1:{port}")], b"a\nb\r\nc\n").await;
        done.assert_code(0);
        assert_eq!(server.await.unwrap(), b"a\r\nb\r\nc\r\n");
    });
}

// ---- -z, --show-cert, directions ----

#[test]
fn zero_io_connects_sends_nothing_and_exits_0() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move { read_all(&mut tcp).await }).await;
        let done = streamtool(&["connect", "-z", &format!("127.0.0.1:{port}")], b"not sent").await;
        done.assert_code(0);
        assert_eq!(server.await.unwrap(), b"");
        assert_eq!(done.stdout, b"");
    });
}

#[test]
fn zero_io_with_tls_handshakes_sends_nothing_and_exits_0() {
    run(async {
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let (port, server) = tls_server(&pki, RaggedEofPolicy::Ignore, |mut tls| async move {
            let mut got = Vec::new();
            let _ = tls.read_to_end(&mut got).await;
            got
        })
        .await;
        let args = ["connect", "-z", "--tls", "--ca", s(&pki.ca), &format!("127.0.0.1:{port}")];
        let done = streamtool(&args, b"not sent").await;
        done.assert_code(0);
        assert_eq!(server.await.unwrap(), b"", "the handshake happened and no data followed");
    });
}

#[test]
fn zero_io_with_tls_closes_with_close_notify() {
    run(async {
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let (port, server) = tls_server(&pki, RaggedEofPolicy::Strict, |mut tls| async move {
            let mut got = Vec::new();
            tls.read_to_end(&mut got).await.map(|_| got).map_err(|e| e.to_string())
        })
        .await;
        let args = ["connect", "-z", "--tls", "--ca", s(&pki.ca), &format!("127.0.0.1:{port}")];
        streamtool(&args, b"").await.assert_code(0);
        assert_eq!(server.await.unwrap(), Ok(Vec::new()), "a clean TLS close, not a truncation");
    });
}

#[test]
fn show_cert_prints_version_cipher_and_subject_to_stderr() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &[]).await;
        let done = streamtool(
            &["connect", "-z", "--tls", "--show-cert", "--ca", s(&pki.ca), &server.localhost()],
            b"",
        )
        .await;
        done.assert_code(0);
        assert!(done.stderr.contains("Protocol version: TLSv1.3"), "{}", done.stderr);
        assert!(done.stderr.contains("Ciphersuite: TLS13_"), "{}", done.stderr);
        assert!(done.stderr.contains("CN=localhost"), "the subject: {}", done.stderr);
        assert_eq!(done.stdout, b"", "nothing on stdout");
    });
}

#[test]
fn send_only_sends_stdin_and_discards_what_the_peer_sends() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            tcp.write_all(b"not for stdout\n").await.unwrap();
            let got = read_all(&mut tcp).await;
            tcp.shutdown().await.unwrap();
            got
        })
        .await;
        let done = streamtool(&["connect", "--send-only", &format!("127.0.0.1:{port}")], b"payload").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"");
        assert_eq!(server.await.unwrap(), b"payload");
    });
}

#[test]
fn recv_only_closes_the_sending_side_at_once_and_prints_the_peer() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            // EOF arrives at once, though the client's stdin has data and stays open.
            let got = read_all(&mut tcp).await;
            tcp.write_all(b"hello\n").await.unwrap();
            tcp.shutdown().await.unwrap();
            got
        })
        .await;
        let mut client =
            Proc::streamtool(&["connect", "--recv-only", &format!("127.0.0.1:{port}")], Input::Open);
        client.write(b"never sent\n").await;
        let done = client.finish().await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"hello\n");
        assert_eq!(server.await.unwrap(), b"");
    });
}

#[test]
fn no_shutdown_keeps_the_sending_side_open_after_stdin_ends() {
    run(async {
        let (port, server) = tcp_server(|mut tcp| async move {
            let mut got = [0u8; 3];
            tcp.read_exact(&mut got).await.unwrap();
            // stdin has ended by now; with --no-shutdown no EOF may follow.
            let mut more = [0u8; 16];
            let eof = tokio::time::timeout(Duration::from_millis(700), tcp.read(&mut more)).await;
            tcp.write_all(b"bye\n").await.unwrap();
            tcp.shutdown().await.unwrap();
            (got, eof.is_ok())
        })
        .await;
        let done = streamtool(&["connect", "--no-shutdown", &format!("127.0.0.1:{port}")], b"abc").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"bye\n");
        let (got, saw_eof) = server.await.unwrap();
        assert_eq!(&got, b"abc");
        assert!(!saw_eof, "the server saw EOF (or data) although --no-shutdown was given");
    });
}

// ---- --events json ----

#[test]
fn events_json_for_a_tls_connect() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &[]).await;
        let args = [
            "--events",
            "json",
            "connect",
            "--tls",
            "--on-eof",
            "half-close",
            "--ca",
            s(&pki.ca),
            &server.localhost(),
        ];
        let done = streamtool(&args, b"hi\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"hi\n");
        let events = json_events(&done.stderr);
        for event in &events {
            assert!(event["event"].is_string(), "{event}");
            assert!(event["time"].is_number(), "{event}");
        }
        let named = |name: &str| events.iter().find(|e| e["event"] == name).cloned();
        for name in ["connect", "handshake", "half_close", "close", "exit"] {
            assert!(named(name).is_some(), "no {name} event in:\n{}", done.stderr);
        }
        let handshake = named("handshake").unwrap();
        assert_eq!(handshake["tls_version"], "TLSv1.3", "{handshake}");
        assert!(handshake["cipher"].as_str().is_some_and(|c| !c.is_empty()), "{handshake}");
        let pin = handshake["peer_certificate"]["sha256"].as_str().unwrap_or_default();
        assert!(pin.starts_with("sha256:"), "{handshake}");
        assert_eq!(named("exit").unwrap()["code"], 0);
        let order: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
        let at = |name: &str| order.iter().position(|e| *e == name).unwrap();
        assert!(at("connect") < at("handshake") && at("handshake") < at("close") && at("close") < at("exit"));
    });
}

#[test]
fn progress_always_reports_both_directions_on_stderr() {
    run(async {
        let server = Server::start(&["-k", "--echo"]).await;
        let done = streamtool(&["connect", "--progress=always", &server.addr()], b"hello").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"hello", "progress never mixes into the data");
        assert!(done.stderr.contains("stdin -> 127.0.0.1:"), "{}", done.stderr);
        assert!(done.stderr.contains("-> stdout: 5 bytes"), "{}", done.stderr);
        let quiet = streamtool(&["connect", "--progress=never", &server.addr()], b"hello").await;
        assert!(!quiet.stderr.contains("-> stdout"), "{}", quiet.stderr);
    });
}
