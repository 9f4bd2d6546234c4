//! `streamtool pipe A B` with the real binary: TLS terminator and originator with `fork`
//! under 50 concurrent clients, exec, stdio and files, re-framing, re-encoding, oversized
//! frames, half-close with a delayed reply, progress and summaries, usage errors, and
//! bounded memory behind a stalled reader.
//!
//! Loopback only, port 0 everywhere (the pipe's port is read from its `listening on` line),
//! every child killed on drop, every wait under a timeout.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::certs::PemPki;
use crate::support::cli::{Input, Proc, STEP, parse_port, s, streamtool};
use crate::support::data::{MIB, compare_bytes, payload, same_bytes};
use crate::support::run_threaded;

use streamtool::streams::socket::{ConnectOptions, connect_tcp};
use streamtool::streams::tls::{RaggedEofPolicy, TlsStream, server_name};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long a pipe test with one exchange may take in all (starting the processes, the
/// exchange, the exits); a test with more exchanges gets a multiple. Not `support::cli::STEP`
/// (one wait inside a test): this bounds the whole test.
const ONE_EXCHANGE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The process under test (support::cli's, killed on drop)

/// Starts `streamtool ARGS`; with `input`, stdin gets those bytes then EOF, without it
/// stdin ends at once.
fn start(args: &[&str], input: Option<&[u8]>) -> Proc {
    Proc::streamtool(args, Input::Bytes(input.unwrap_or_default().to_vec()))
}

/// Waits for the `listening on 127.0.0.1:PORT, [::1]:PORT` line; returns PORT.
async fn port(proc: &Proc) -> u16 {
    let stderr = proc.wait_stderr("streamtool: listening on ").await;
    parse_port(&stderr).unwrap_or_else(|| panic!("no port in:\n{stderr}"))
}

// ---------------------------------------------------------------------------------------
// Peers, payloads and certificates

/// Sends `data` on `io`, half-closes, and reads everything the peer sends back, at once
/// (an echo peer would block on a full socket buffer otherwise).
async fn send_and_receive<IO: AsyncRead + AsyncWrite + Send>(
    io: IO,
    data: &[u8],
) -> std::io::Result<Vec<u8>> {
    let (mut reader, mut writer) = tokio::io::split(io);
    let send = async {
        writer.write_all(data).await?;
        writer.shutdown().await
    };
    let receive = async {
        let mut back = Vec::with_capacity(data.len());
        reader.read_to_end(&mut back).await.map(|_| back)
    };
    let ((), back) = tokio::try_join!(send, receive)?;
    Ok(back)
}

/// A loopback TCP echo server for many clients: echoes until EOF, then closes. Counts
/// connections.
async fn tcp_echo_server() -> (u16, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (port, accepted, task)
}

/// Starts `pipe tls-listen:0,fork,cert=…,key=… tcp:127.0.0.1:BACKEND`; returns it and its port.
async fn forking_tls_terminator(pem: &PemPki, backend: u16) -> (Proc, u16) {
    let listen = format!("tls-listen:0,fork,cert={},key={}", s(&pem.server_cert), s(&pem.server_key));
    let pipe = start(&["pipe", &listen, &format!("tcp:127.0.0.1:{backend}")], None);
    let port = port(&pipe).await;
    (pipe, port)
}

// ---------------------------------------------------------------------------------------
// TLS terminator and originator with fork, 50 concurrent clients

const CLIENTS: usize = 50;

/// Runs `CLIENTS` concurrent clients (`client(i, payload)` returns what came back) and
/// checks each reply byte for byte; returns how long they took.
async fn concurrent_clients<F, Fut>(client: F) -> Duration
where
    F: Fn(usize, Arc<Vec<u8>>) -> Fut,
    Fut: Future<Output = std::io::Result<Vec<u8>>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let data = Arc::new(payload(i as u64 + 1, MIB));
            let reply = client(i, Arc::clone(&data));
            tokio::spawn(async move {
                let back = reply.await.map_err(|e| format!("client {i}: {e}"))?;
                compare_bytes(&format!("client {i}"), &back, &data)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(failure) = task.await.expect("client task") {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{} of {CLIENTS} clients failed:\n{}", failures.len(), failures.join("\n"));
    started.elapsed()
}

#[test]
fn tls_terminator_with_fork_serves_50_concurrent_clients_byte_exact() {
    run_threaded(Duration::from_secs(90), async {
        let pem = PemPki::new(&["localhost", "127.0.0.1"]);
        let (backend, backend_conns, _backend) = tcp_echo_server().await;
        let (mut pipe, port) = forking_tls_terminator(&pem, backend).await;
        let config = pem.client_options().build().unwrap();
        let took = concurrent_clients(|_, data| {
            let config = Arc::clone(&config);
            async move {
                let tcp = connect_tcp("127.0.0.1", port, ConnectOptions::default()).await?;
                let name = server_name("localhost")?;
                // Strict: a reply cut short without close_notify fails the client.
                let tls = TlsStream::connect(tcp, config, name, RaggedEofPolicy::Strict).await?;
                send_and_receive(tls, &data).await
            }
        })
        .await;
        eprintln!("tls terminator: {CLIENTS} x 1 MiB echoed in {took:?}");
        assert_eq!(backend_conns.load(Ordering::SeqCst), CLIENTS, "one backend connection per client");
        assert!(!pipe.has_exited(), "a forking pipe keeps listening; stderr:\n{}", pipe.stderr());
        drop(pem);
    });
}

#[test]
fn tls_originator_with_fork_serves_50_concurrent_clients_byte_exact() {
    run_threaded(Duration::from_secs(90), async {
        let pem = PemPki::new(&["localhost", "127.0.0.1"]);
        let echo = start(
            &[
                "serve",
                "-k",
                "--echo",
                "--tls",
                "--cert",
                s(&pem.server_cert),
                "--key",
                s(&pem.server_key),
                "0",
            ],
            None,
        );
        let echo_port = port(&echo).await;
        let target = format!("tls:localhost:{echo_port},ca={},on-eof=half-close", s(&pem.ca));
        let mut pipe = start(&["pipe", "tcp-listen:0,fork", &target], None);
        let port = port(&pipe).await;

        let took = concurrent_clients(|_, data| async move {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            send_and_receive(tcp, &data).await
        })
        .await;
        eprintln!("tls originator: {CLIENTS} x 1 MiB echoed in {took:?}");
        assert!(!pipe.has_exited(), "a forking pipe keeps listening; stderr:\n{}", pipe.stderr());
    });
}

// ---------------------------------------------------------------------------------------
// exec

#[test]
fn exec_endpoint_gets_the_half_close_and_replies() {
    run_threaded(ONE_EXCHANGE * 2, async {
        let pipe = start(&["pipe", "tcp-listen:0", "exec:tr a-z A-Z"], None);
        let port = port(&pipe).await;
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let back = send_and_receive(tcp, b"hello").await.unwrap();
        assert_eq!(back, b"HELLO");
        pipe.finish().await.assert_code(0);
    });
}

#[test]
fn exec_endpoint_with_fork_runs_a_process_per_connection() {
    run_threaded(ONE_EXCHANGE * 2, async {
        // Each instance says its process id, then upper-cases its input.
        let mut pipe = start(&["pipe", "tcp-listen:0,fork", "exec:echo $$; tr a-z A-Z"], None);
        let port = port(&pipe).await;
        // Both connections are open at once: the first waits while the second is served.
        let first = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut first_r, mut first_w) = first.into_split();
        first_w.write_all(b"one").await.unwrap();
        let second = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let second_back = send_and_receive(second, b"two").await.unwrap();
        first_w.shutdown().await.unwrap();
        let mut first_back = Vec::new();
        first_r.read_to_end(&mut first_back).await.unwrap();

        let parse = |back: &[u8]| -> (u32, String) {
            let text = String::from_utf8(back.to_vec()).unwrap();
            let (pid, rest) = text.split_once('\n').unwrap_or_else(|| panic!("no pid line in {text:?}"));
            (pid.parse().unwrap_or_else(|_| panic!("not a pid: {pid:?}")), rest.to_string())
        };
        let (pid1, text1) = parse(&first_back);
        let (pid2, text2) = parse(&second_back);
        assert_eq!((text1.as_str(), text2.as_str()), ("ONE", "TWO"));
        assert_ne!(pid1, pid2, "each connection gets its own process");
        assert!(!pipe.has_exited(), "a forking pipe keeps listening; stderr:\n{}", pipe.stderr());
    });
}

// ---------------------------------------------------------------------------------------
// stdio and files, framing, text

#[test]
fn stdio_to_file_creates_refuses_to_overwrite_and_appends() {
    run_threaded(ONE_EXCHANGE * 3, async {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        let create = format!("file:{},create", s(&out));
        streamtool(&["pipe", "-", &create], b"data\x00\xff").await.assert_code(0);
        assert_eq!(std::fs::read(&out).unwrap(), b"data\x00\xff");

        let again = streamtool(&["pipe", "-", &create], b"other").await;
        again.assert_code(1);
        assert!(again.stderr.contains("exists"), "stderr:\n{}", again.stderr);
        assert_eq!(std::fs::read(&out).unwrap(), b"data\x00\xff", "the file is left alone");

        streamtool(&["pipe", "-", &format!("file:{},append", s(&out))], b"+more").await.assert_code(0);
        assert_eq!(std::fs::read(&out).unwrap(), b"data\x00\xff+more");

        streamtool(&["pipe", "-", &format!("file:{},truncate", s(&out))], b"new").await.assert_code(0);
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
    });
}

/// `file:` without an option reads; on a missing file the error says how to write a new
/// one (issue 29): socat users type CREATE:, websocat users writefile:, which create.
#[test]
fn a_missing_file_endpoint_hints_at_create() {
    run_threaded(ONE_EXCHANGE, async {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        let done = streamtool(&["pipe", "-", &format!("file:{}", s(&out))], b"data").await;
        done.assert_code(1);
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "the error, then the hint:\n{}", done.stderr);
        assert!(lines[0].contains("cannot open") && !lines[0].contains("hint"), "{}", lines[0]);
        assert!(
            lines[1].starts_with("streamtool: hint: ")
                && lines[1].contains(&format!("file:{},create", s(&out))),
            "{}",
            lines[1]
        );
        assert!(!out.exists(), "nothing is created without create");
    });
}

#[test]
fn reframing_turns_lf_frames_into_crlf_frames() {
    run_threaded(ONE_EXCHANGE, async {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, b"a\nb\n").unwrap();
        let source = format!("file:{},delimiter=\\n", s(&input));
        let done = streamtool(&["pipe", &source, "-,delimiter=\\r\\n"], b"").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"a\r\nb\r\n");
    });
}

#[test]
fn latin1_is_reencoded_to_utf8_and_back() {
    run_threaded(ONE_EXCHANGE * 2, async {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("latin1.txt");
        std::fs::write(&input, [0x63, 0x61, 0x66, 0xe9]).unwrap();
        let done = streamtool(&["pipe", &format!("file:{},encoding=latin1", s(&input)), "-"], b"").await;
        done.assert_code(0);
        assert_eq!(done.stdout, "café".as_bytes());

        let output = dir.path().join("out.txt");
        let sink = format!("file:{},create,encoding=latin1", s(&output));
        streamtool(&["pipe", "-", &sink], "café".as_bytes()).await.assert_code(0);
        assert_eq!(std::fs::read(&output).unwrap(), [0x63, 0x61, 0x66, 0xe9]);
    });
}

#[test]
fn oversized_frame_exits_7_or_is_skipped() {
    run_threaded(ONE_EXCHANGE * 2, async {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("frames.txt");
        std::fs::write(&input, b"ok\n0123456789\nfine\n").unwrap();
        let source = format!("file:{},delimiter=\\n,max-frame=4", s(&input));
        let done = streamtool(&["pipe", &source, "-"], b"").await;
        done.assert_code(7);
        assert!(done.stderr.contains("longer than 4 bytes"), "stderr names the limit:\n{}", done.stderr);
        assert_eq!(done.stdout, b"ok\n", "frames before the oversized one are delivered");

        let skip = format!("{source},on-oversize=skip");
        let done = streamtool(&["pipe", &skip, "-"], b"").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"ok\nfine\n", "only the oversized frame is dropped");
    });
}

/// Bad data is not a stream cut short: through a socket relay, the frames before an
/// oversized one reach the other side, which then sees a clean end (FIN), not a reset (a
/// reset is for a truncated or reset stream, which it would otherwise seem complete).
#[test]
fn an_oversized_frame_ends_a_socket_relay_with_a_fin_after_the_frames_before_it() {
    run_threaded(ONE_EXCHANGE * 2, async {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = format!("tcp:127.0.0.1:{}", backend.local_addr().unwrap().port());
        let pipe = start(&["pipe", "tcp-listen:127.0.0.1:0,delimiter=\\n,max-frame=4", &target], None);
        let listen = port(&pipe).await;
        let mut client = TcpStream::connect(("127.0.0.1", listen)).await.unwrap();
        let (mut server, _) = backend.accept().await.unwrap();
        client.write_all(b"ok\n0123456789\n").await.unwrap();
        let done = pipe.finish().await;
        done.assert_code(7);
        // Read only now, after the relay closed: a reset would have arrived by then.
        let mut got = Vec::new();
        let end = server.read_to_end(&mut got).await;
        assert_eq!(got, b"ok\n", "the frame before the oversized one arrives");
        assert!(end.is_ok(), "the relay ended with a FIN, not a reset: {end:?}");
        let mut back = Vec::new();
        let end = client.read_to_end(&mut back).await;
        assert!(end.is_ok(), "the client sees a FIN too: {end:?}");
    });
}

// ---------------------------------------------------------------------------------------
// half-close

#[test]
fn half_close_carries_a_delayed_reply_through_the_pipe() {
    run_threaded(ONE_EXCHANGE * 2, async {
        // The server reads to EOF, then replies 1.5 s later.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            stream.read_to_end(&mut request).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let reply = format!("got {} bytes: {}", request.len(), String::from_utf8_lossy(&request));
            stream.write_all(reply.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
            request
        });
        let pipe = start(&["pipe", "tcp-listen:0", &format!("tcp:127.0.0.1:{server_port}")], None);
        let port = port(&pipe).await;
        let started = Instant::now();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let back = send_and_receive(tcp, b"hello").await.unwrap();
        assert_eq!(String::from_utf8_lossy(&back), "got 5 bytes: hello");
        assert!(started.elapsed() >= Duration::from_millis(1500));
        assert_eq!(server.await.unwrap(), b"hello");
        pipe.finish().await.assert_code(0);
    });
}

#[test]
fn half_close_from_the_far_side_lets_the_near_side_keep_sending() {
    run_threaded(ONE_EXCHANGE * 2, async {
        // The server speaks first and ends its side, then reads what the client sends.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"banner").await.unwrap();
            stream.shutdown().await.unwrap();
            let mut request = Vec::new();
            stream.read_to_end(&mut request).await.unwrap();
            request
        });
        let pipe = start(&["pipe", "tcp-listen:0", &format!("tcp:127.0.0.1:{server_port}")], None);
        let port = port(&pipe).await;
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut reader, mut writer) = tcp.into_split();
        let mut banner = Vec::new();
        reader.read_to_end(&mut banner).await.unwrap();
        assert_eq!(banner, b"banner");
        // Only after the EOF: this still has to reach the server.
        writer.write_all(b"sent after the server's EOF").await.unwrap();
        writer.shutdown().await.unwrap();
        assert_eq!(server.await.unwrap(), b"sent after the server's EOF");
        pipe.finish().await.assert_code(0);
    });
}

// ---------------------------------------------------------------------------------------
// progress, summaries, events, usage errors

#[test]
fn progress_always_prints_progress_lines_on_stderr() {
    run_threaded(ONE_EXCHANGE, async {
        let done = streamtool(&["pipe", "--progress=always", "exec:printf hello; sleep 0.6", "-"], b"").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"hello");
        assert!(done.stderr.contains("->"), "no progress on stderr:\n{}", done.stderr);
    });
}

#[test]
fn progress_is_off_by_default_and_with_never() {
    run_threaded(ONE_EXCHANGE, async {
        for args in [&["pipe", "-", "exec:cat"][..], &["pipe", "--progress=never", "-", "exec:cat"]] {
            let done = streamtool(args, b"hello").await;
            done.assert_code(0);
            assert_eq!(done.stdout, b"hello");
            assert!(!done.stderr.contains("->"), "{args:?}: unexpected progress:\n{}", done.stderr);
        }
    });
}

#[test]
fn verbose_prints_a_summary_per_direction() {
    run_threaded(ONE_EXCHANGE, async {
        let done = streamtool(&["pipe", "-v", "-", "exec:cat"], b"hello").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"hello");
        for line in ["stdio -> exec:cat: 5 bytes in ", "exec:cat -> stdio: 5 bytes in "] {
            let found = done.stderr.lines().find(|l| l.contains(line));
            let found = found.unwrap_or_else(|| panic!("no {line:?} summary:\n{}", done.stderr));
            assert!(found.ends_with(", eof"), "the close reason ends the summary: {found:?}");
        }
    });
}

#[test]
fn events_json_reports_each_direction_with_its_close_reason() {
    run_threaded(ONE_EXCHANGE, async {
        let done = streamtool(&["pipe", "--events", "json", "-", "exec:cat"], b"hello").await;
        done.assert_code(0);
        let events: Vec<serde_json::Value> = done
            .stderr
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let half_closes: Vec<_> = events.iter().filter(|e| e["event"] == "half_close").collect();
        assert_eq!(half_closes.len(), 2, "one half_close per direction:\n{}", done.stderr);
        for event in half_closes {
            assert_eq!(event["bytes_out"], 5, "{event}");
            assert_eq!(event["reason"], "eof", "{event}");
        }
        assert!(events.iter().any(|e| e["event"] == "close"), "a close event:\n{}", done.stderr);
    });
}

#[test]
fn unknown_endpoint_types_and_options_exit_2_with_a_suggestion() {
    run_threaded(ONE_EXCHANGE, async {
        for (a, b, suggestion) in [
            ("tcpp:127.0.0.1:1", "-", "did you mean tcp?"),
            ("-", "tcp-lsten:0", "did you mean tcp-listen?"),
            ("tcp:127.0.0.1:1,crt=x", "-", "did you mean cert?"),
            ("-", "file:x,craete=1", "did you mean create?"),
        ] {
            let done = streamtool(&["pipe", a, b], b"").await;
            done.assert_code(2);
            assert!(done.stderr.contains(suggestion), "pipe {a} {b}: stderr:\n{}", done.stderr);
            assert!(done.stdout.is_empty());
        }
        // Sound endpoints that do not fit together are usage errors too.
        let done = streamtool(&["pipe", "-k", "-", "exec:cat"], b"").await;
        done.assert_code(2);
        assert!(done.stderr.contains("listening endpoint"), "stderr:\n{}", done.stderr);
    });
}

// ---------------------------------------------------------------------------------------
// bounded memory

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Sends `total` bytes through `pipe tcp-listen:0 tcp:127.0.0.1:SINK{sink_options}` to a
/// sink that stalls 2 s before reading, and checks the pipe's peak RSS (`VmHWM`, read
/// while the pipe still runs) stays under 64 MiB. The payload has no `\n`, so options
/// such as `crlf` leave its bytes alone.
async fn stalled_reader_peak_rss(sink_options: &str, total: usize) {
    const LIMIT: usize = 64 * MIB;
    // The sink stalls, then reads everything; it closes only once the test has read the
    // pipe's peak RSS (the pipe exits once both directions have ended).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_port = listener.local_addr().unwrap().port();
    let (received_tx, received_rx) = tokio::sync::oneshot::channel::<usize>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut buf = vec![0u8; MIB];
        let mut received = 0;
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            received += n;
        }
        let _ = received_tx.send(received);
        let _ = release_rx.await;
    });
    let sink = format!("tcp:127.0.0.1:{sink_port}{sink_options}");
    let pipe = start(&["pipe", "tcp-listen:0", &sink], None);
    let port = port(&pipe).await;
    let pid = pipe.pid();
    let peak_rss = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let peak_rss = Arc::clone(&peak_rss);
        tokio::spawn(async move {
            while let Some(kib) = proc_status_kib(pid, "VmRSS:") {
                peak_rss.fetch_max(kib * 1024, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let started = Instant::now();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut reader, mut writer) = tcp.into_split();
    let mut chunk = payload(7, MIB);
    chunk.iter_mut().filter(|b| **b == b'\n').for_each(|b| *b = b'x');
    for _ in 0..total / MIB {
        writer.write_all(&chunk).await.unwrap();
    }
    writer.shutdown().await.unwrap();
    let received = received_rx.await.expect("the sink ended");
    let took = started.elapsed();
    let hwm = proc_status_kib(pid, "VmHWM:").expect("the pipe is still running") * 1024;
    sampler.abort();
    release_tx.send(()).unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await.unwrap();
    pipe.finish().await.assert_code(0);

    eprintln!(
        "{} MiB through `{sink}` in {took:?} (2 s stall included); VmHWM {} KiB, sampled VmRSS max {} KiB",
        total / MIB,
        hwm / 1024,
        peak_rss.load(Ordering::SeqCst) / 1024
    );
    assert_eq!(received, total, "every byte reached the sink");
    assert!(rest.is_empty());
    assert!(took >= Duration::from_secs(2), "the sink stalled");
    assert!(hwm < LIMIT, "the pipe's peak RSS was {} KiB (limit {} KiB)", hwm / 1024, LIMIT / 1024);
}

/// The plain socket-to-socket relay (splice(2) on Linux).
#[test]
fn a_stalled_reader_keeps_the_pipe_under_64_mib_for_a_1_gib_transfer() {
    run_threaded(Duration::from_secs(180), stalled_reader_peak_rss("", 1 << 30));
}

/// The same through the userspace buffers (`crlf` on the sink turns splice off). 128 MiB,
/// twice the limit, not 1 GiB: the per-byte CRLF pass takes ~50 s per GiB in debug builds.
#[test]
fn a_stalled_reader_keeps_a_shaping_pipe_under_64_mib_for_128_mib() {
    run_threaded(Duration::from_secs(120), stalled_reader_peak_rss(",crlf", 128 * MIB));
}

// ---------------------------------------------------------------------------------------
// Regressions found in review

#[test]
fn frames_in_a_multibyte_encoding_are_each_decoded_fresh() {
    run_threaded(ONE_EXCHANGE, async {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("sjis.txt");
        // "日本\n語\n" in Shift_JIS: more than one frame through an encoding_rs decoder
        // (which once panicked after its first frame).
        std::fs::write(&input, b"\x93\xfa\x96\x7b\n\x8c\xea\n").unwrap();
        let source = format!("file:{},delimiter=\\n,encoding=shift_jis", s(&input));
        let done = streamtool(&["pipe", &source, "-"], b"").await;
        done.assert_code(0);
        assert_eq!(String::from_utf8(done.stdout.clone()).unwrap(), "日本\n語\n");
    });
}

#[test]
fn crlf_applies_to_the_delimiter_and_an_unterminated_last_frame_stays_unterminated() {
    run_threaded(ONE_EXCHANGE, async {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
        std::fs::write(&input, b"a\nb").unwrap();
        let source = format!("file:{},delimiter=\\n", s(&input));
        let sink = format!("file:{},create,crlf", s(&output));
        streamtool(&["pipe", &source, &sink], b"").await.assert_code(0);
        assert_eq!(std::fs::read(&output).unwrap(), b"a\r\nb");
    });
}

#[test]
fn an_upload_to_a_write_only_file_is_not_cut_short() {
    run_threaded(ONE_EXCHANGE, async {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("recv.bin");
        let sink = format!("file:{},create", s(&output));
        let pipe = start(&["pipe", "tcp-listen:127.0.0.1:0", &sink], None);
        let port = port(&pipe).await;
        let data = payload(7, 3 * MIB);
        let upload = streamtool(&["connect", &format!("127.0.0.1:{port}")], &data).await;
        upload.assert_code(0);
        pipe.finish().await.assert_code(0);
        assert!(std::fs::read(&output).unwrap() == data, "the file holds exactly what was sent");
    });
}

// ---------------------------------------------------------------------------------------
// SIGTERM: what a service manager sends to stop the pipe

/// Whether a new TCP connection to `port` is refused (the listener is closed).
fn refused(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    matches!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Writes `line` and reads the same number of bytes back.
async fn echo_line<IO: AsyncRead + AsyncWrite + Unpin>(io: &mut IO, line: &[u8]) -> Vec<u8> {
    io.write_all(line).await.unwrap();
    io.flush().await.unwrap();
    let mut got = vec![0u8; line.len()];
    tokio::time::timeout(STEP, io.read_exact(&mut got)).await.expect("the echo in time").unwrap();
    got
}

// docs/security.md promises that on SIGTERM open transfers get the grace period and finish
// byte-exact. The forking pipe used to die at once (it watched only SIGINT).
#[test]
fn sigterm_with_fork_refuses_new_clients_and_lets_the_open_tls_relay_finish() {
    run_threaded(Duration::from_secs(60), async {
        let pem = PemPki::new(&["localhost", "127.0.0.1"]);
        let (backend, _, _backend) = tcp_echo_server().await;
        let (mut pipe, port) = forking_tls_terminator(&pem, backend).await;
        let config = pem.client_options().build().unwrap();
        let tcp = connect_tcp("127.0.0.1", port, ConnectOptions::default()).await.unwrap();
        // Strict: an end without close_notify fails the read below.
        let mut tls =
            TlsStream::connect(tcp, config, server_name("localhost").unwrap(), RaggedEofPolicy::Strict)
                .await
                .unwrap();
        assert_eq!(echo_line(&mut tls, b"before\n").await, b"before\n");

        pipe.signal("TERM");
        let closed = crate::support::cli::poll_until(STEP, || refused(port)).await;
        assert!(closed, "new connections are still accepted after SIGTERM; stderr:\n{}", pipe.stderr());
        assert!(!pipe.has_exited(), "the pipe waits for the open relay; stderr:\n{}", pipe.stderr());
        let data = payload(7, MIB);
        let back = send_and_receive(tls, &data).await.expect("the open relay still works");
        same_bytes("after SIGTERM", &back, &data);
        pipe.finish().await.assert_code(0);
    });
}

#[test]
fn sigterm_gives_a_single_relay_the_grace_period_then_exits_0() {
    run_threaded(Duration::from_secs(60), async {
        let (backend, _, _backend) = tcp_echo_server().await;
        let pipe =
            start(&["pipe", "--grace", "2s", "tcp-listen:0", &format!("tcp:127.0.0.1:{backend}")], None);
        let port = port(&pipe).await;
        let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        assert_eq!(echo_line(&mut client, b"before\n").await, b"before\n");
        let signalled = Instant::now();
        pipe.signal("TERM");
        // Within the grace period the relay still works...
        assert_eq!(echo_line(&mut client, b"during\n").await, b"during\n");
        // ...then it is cut and the pipe exits 0, though the client never closed: not
        // before the 2 s are over, and not long after (the wait's own limit is 30 s, so
        // the bound below is the one that can fail).
        let done = pipe.finish_within(Duration::from_secs(30)).await;
        let took = signalled.elapsed();
        done.assert_code(0);
        assert!(
            took >= Duration::from_millis(1900),
            "the relay was cut {took:?} after SIGTERM, before its 2 s grace"
        );
        assert!(
            took < Duration::from_secs(6),
            "the relay was cut {took:?} after SIGTERM, not at the end of its 2 s grace"
        );
        assert!(
            done.stderr.lines().any(|l| l.contains("grace period over; closing the relay")),
            "no line says the grace period ended the relay:\n{}",
            done.stderr
        );
        // The client sees its connection end (it never closed its own side).
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(STEP, client.read_to_end(&mut rest)).await.expect("the end in time");
        assert_eq!(rest, b"", "nothing more came after the echo");
    });
}

#[test]
fn sigterm_before_the_relay_starts_exits_0_and_removes_the_unix_socket_file() {
    run_threaded(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.sock");
        let listen = format!("unix-listen:{}", s(&path));
        let pipe = start(&["pipe", &listen, "tcp:127.0.0.1:9"], None);
        pipe.wait_stderr("listening on").await;
        assert!(path.exists(), "the socket file is there while listening");
        pipe.signal("TERM");
        pipe.finish().await.assert_code(0);
        assert!(!path.exists(), "the socket file is left behind after SIGTERM");
    });
}

// A second signal during the grace period closes the open relays at once: an operator's
// second Ctrl-C (or a supervisor's second TERM) is never ignored.
#[test]
fn a_second_signal_during_the_grace_period_closes_open_relays_at_once() {
    run_threaded(Duration::from_secs(60), async {
        let (backend, _, _backend) = tcp_echo_server().await;
        let pipe =
            start(&["pipe", "--grace", "1h", "tcp-listen:0,fork", &format!("tcp:127.0.0.1:{backend}")], None);
        let port = port(&pipe).await;
        let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        assert_eq!(echo_line(&mut client, b"before\n").await, b"before\n");
        pipe.signal("TERM");
        let closed = crate::support::cli::poll_until(STEP, || refused(port)).await;
        assert!(closed, "new connections are still accepted after SIGTERM; stderr:\n{}", pipe.stderr());
        assert_eq!(echo_line(&mut client, b"during\n").await, b"during\n");
        pipe.signal("INT");
        pipe.finish().await.assert_code(130);
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(STEP, client.read_to_end(&mut rest)).await.expect("the end in time");
    });
}

#[test]
fn a_command_that_fails_or_cannot_run_fails_the_pipe_naming_it() {
    run_threaded(Duration::from_secs(60), async {
        let ok = streamtool(&["pipe", "exec:echo hi", "-"], b"").await;
        ok.assert_code(0);
        assert_eq!(ok.stdout, b"hi\n");
        for (command, status) in [("exec:sh -c 'exit 3'", "exit status: 3"), ("exec:/nonexistent/cmd", "127")]
        {
            let done = streamtool(&["pipe", command, "-"], b"").await;
            done.assert_code(1);
            let last = done.stderr.lines().last().unwrap_or_default();
            assert!(
                last.starts_with("streamtool: ") && last.contains(command) && last.contains(status),
                "{command}: {}",
                done.stderr
            );
        }
    });
}
