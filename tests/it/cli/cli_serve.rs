//! `streamtool serve`, the real binary over loopback: the stdio relay with one client,
//! the seed's TLS workflow, the generated certificate and its `--pin` command, the modes
//! (`--exec`, `--sh-exec`, `--broker`, `--discard`, `-k` stdio), `--max-conns`, mTLS,
//! many clients (some resetting) without descriptor growth, and SIGTERM.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::support::certs::{PemPki, seed_certificate};
use crate::support::cli::{Input, Proc, STEP, Server, json_events, poll_until, read_all, s, streamtool};
use crate::support::run;

// ---- the stdio relay ----

#[test]
fn serve_without_keep_open_relays_one_client_and_exits_0_when_it_is_done() {
    run(async {
        let mut server = Server::start(&[]).await;
        server.proc.write(b"to the client\n").await;
        let mut client = Proc::streamtool(&["connect", &server.addr()], Input::Open);
        client.write(b"to the server\n").await;
        client.wait_stdout(b"to the client\n").await;
        server.proc.wait_stdout(b"to the server\n").await;
        // The client ends its side; the server goes on sending its stdin (a pipe) to its
        // end, which ends the client too.
        client.close_stdin();
        server.proc.write(b"after the client's end\n").await;
        server.proc.close_stdin();
        let client = client.finish().await;
        client.assert_code(0);
        assert_eq!(client.stdout, b"to the client\nafter the client's end\n");
        let server = server.proc.finish().await;
        server.assert_code(0);
        assert_eq!(server.stdout, b"to the server\n");
    });
}

#[test]
fn seed_tls_workflow_with_the_openssl_req_certificate() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = seed_certificate(dir.path());
        // streamtool serve --tls --cert cert.pem --key key.pem 0
        let server = Server::start(&["--tls", "--cert", s(&cert), "--key", s(&key), "0"]).await;
        // printf 'Client\n' | streamtool connect --tls --ca cert.pem localhost:PORT
        let target = server.localhost();
        let client = Proc::streamtool(
            &["connect", "--tls", "--ca", s(&cert), &target],
            Input::Bytes(b"Client\n".to_vec()),
        );
        // The client keeps its side open (TLS) and reads until the server is done: the
        // server's input ends (a person's Ctrl-D), which it tells the client.
        let mut server = server.proc;
        server.wait_stdout(b"Client\n").await;
        server.close_stdin();
        client.finish().await.assert_code(0);
        let server = server.finish().await;
        server.assert_code(0);
        assert_eq!(server.stdout, b"Client\n");
    });
}

#[test]
fn serve_tls_without_a_certificate_prints_a_pin_command_that_works() {
    run(async {
        let server = Server::start(&["--tls"]).await;
        let stderr = server.proc.stderr();
        assert!(stderr.contains("streamtool: cert pin: sha256:"), "the certificate's pin: {stderr}");
        assert!(stderr.contains("streamtool: key pin:  sha256:"), "the public key's pin: {stderr}");
        let command = stderr
            .lines()
            .find_map(|l| l.strip_prefix("streamtool: connect with: streamtool "))
            .unwrap_or_else(|| panic!("no connect command in:\n{stderr}"));
        let args: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(args[..2], ["connect", "--tls"], "{command}");
        let pin = args.iter().position(|a| *a == "--pin").map(|i| args[i + 1]).unwrap_or_default();
        assert!(pin.starts_with("sha256:") && pin.len() == "sha256:".len() + 64, "{command}");
        assert_eq!(args.last().copied(), Some(server.localhost().as_str()), "{command}");

        // Without the pin, the system store does not trust the fresh certificate.
        let untrusted =
            streamtool(&["connect", "--tls", "--on-eof", "half-close", &server.localhost()], b"x").await;
        untrusted.assert_code(4);
        // One line of error (hints, on lines of their own, may follow).
        let lines: Vec<&str> =
            untrusted.stderr.lines().filter(|l| !l.starts_with("streamtool: hint: ")).collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {:?}", untrusted.stderr);
        assert!(lines[0].contains(&server.localhost()), "it names the target: {}", lines[0]);

        // Exactly the printed command reaches it, verified; the server's input then ends
        // (close_notify), which ends the client.
        let pinned = Proc::streamtool(&args, Input::Bytes(b"pinned\n".to_vec()));
        let mut server = server.proc;
        server.wait_stdout(b"pinned\n").await;
        server.close_stdin();
        pinned.finish().await.assert_code(0);
        let server = server.finish().await;
        server.assert_code(0);
        assert_eq!(server.stdout, b"pinned\n");
    });
}

/// The pin after `label` in `text` (`cert pin: sha256:HEX ...`).
fn labelled_pin(text: &str, label: &str) -> String {
    let rest = text.split(label).nth(1).unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
    rest.split_whitespace().next().unwrap().to_string()
}

/// `sh -c SCRIPT`'s `openssl dgst -sha256` output as `sha256:HEX`.
fn openssl_digest(script: &str) -> String {
    let out = std::process::Command::new("sh").args(["-c", script]).output().expect("sh and openssl");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", text.split_whitespace().last().expect("a digest"))
}

/// Both pins are shown with their names, in --show-cert, the self-signed banner and the
/// events (issue 29); the key pin is the SHA-256 of the SPKI that openssl computes, the
/// printed connect command uses it, and --pin takes either pin (and the key pin in curl's
/// base64 form).
#[test]
fn cert_and_key_pins_are_labelled_and_the_key_pin_is_the_spki_digest() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let cert = s(&pki.server_cert);
        let spki = openssl_digest(&format!(
            "openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256"
        ));
        let whole = openssl_digest(&format!("openssl x509 -in '{cert}' -outform der | openssl dgst -sha256"));
        assert_ne!(spki, whole);
        let server = Server::start(&[
            "--events",
            "json",
            "-k",
            "--echo",
            "--tls",
            "--cert",
            cert,
            "--key",
            s(&pki.server_key),
        ])
        .await;
        let shown = streamtool(
            &["connect", "-z", "--tls", "--ca", s(&pki.ca), "--show-cert", &server.localhost()],
            b"",
        )
        .await;
        shown.assert_code(0);
        assert_eq!(labelled_pin(&shown.stderr, "cert pin:"), whole, "{}", shown.stderr);
        assert_eq!(labelled_pin(&shown.stderr, "key pin:"), spki, "{}", shown.stderr);
        let listen = json_events(&server.proc.stderr()).into_iter().find(|e| e["event"] == "listen").unwrap();
        assert_eq!(
            (listen["cert_sha256"].as_str(), listen["key_sha256"].as_str()),
            (Some(&*whole), Some(&*spki))
        );
        // Either pin verifies; the key pin also in curl's sha256//BASE64 form.
        let b64 = openssl_digest(&format!(
            "openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64"
        ));
        let curl_form = format!("sha256//{}", b64.trim_start_matches("sha256:"));
        for pin in [&whole, &spki, &curl_form] {
            streamtool(&["connect", "-z", "--tls", "--pin", pin, &server.localhost()], b"")
                .await
                .assert_code(0);
        }

        // The self-signed banner: both pins named, and the connect command pins the key.
        let fresh = Server::start(&["--tls"]).await;
        let banner = fresh.proc.wait_stderr("connect with:").await;
        let key_pin = labelled_pin(&banner, "key pin:");
        assert_ne!(labelled_pin(&banner, "cert pin:"), key_pin);
        assert_eq!(labelled_pin(&banner, "--pin "), key_pin, "the command uses the key pin:\n{banner}");
    });
}

// ---- modes ----

#[test]
fn exec_cat_serves_20_concurrent_clients_each_with_its_own_process() {
    run(async {
        let server = Server::start(&["--events", "json", "-k", "--exec", "cat"]).await;
        let addr = server.addr();
        let clients: Vec<JoinHandle<()>> = (0..20)
            .map(|i| {
                let addr = addr.clone();
                tokio::spawn(async move {
                    let data = format!("client {i} says hello; ").repeat(500).into_bytes();
                    let mut tcp = TcpStream::connect(&addr).await.unwrap();
                    tcp.write_all(&data).await.unwrap();
                    tcp.shutdown().await.unwrap();
                    let got = read_all(&mut tcp).await;
                    assert!(
                        got == data,
                        "client {i} got {} bytes back, not its own {}",
                        got.len(),
                        data.len()
                    );
                })
            })
            .collect();
        for client in clients {
            client.await.unwrap();
        }
        let processes =
            || json_events(&server.proc.stderr()).iter().filter(|e| e["event"] == "exec_exit").count();
        assert!(poll_until(STEP, || processes() == 20).await, "{} exec_exit events", processes());
        for event in json_events(&server.proc.stderr()).iter().filter(|e| e["event"] == "exec_exit") {
            assert_eq!(event["code"], 0, "{event}");
        }
    });
}

#[test]
fn sh_exec_runs_a_shell_command_per_connection() {
    run(async {
        let server = Server::start(&["-k", "--sh-exec", "tr a-z A-Z"]).await;
        for _ in 0..2 {
            let done = streamtool(&["connect", &server.addr()], b"hello, World\n").await;
            done.assert_code(0);
            assert_eq!(done.stdout, b"HELLO, WORLD\n");
        }
    });
}

/// A line-oriented client: what it receives is collected in the background.
struct LineClient {
    name: &'static str,
    tx: tokio::net::tcp::OwnedWriteHalf,
    lines: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

impl LineClient {
    async fn connect(addr: &str, name: &'static str) -> LineClient {
        let (rx, tx) = TcpStream::connect(addr).await.unwrap().into_split();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = tokio::spawn(async move {
            let mut rx = BufReader::new(rx).lines();
            while let Ok(Some(line)) = rx.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        LineClient { name, tx, lines, reader }
    }

    async fn send(&mut self, line: &str) {
        self.tx.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    fn has(&self, line: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l == line)
    }

    async fn wait_for(&self, line: &str) {
        let found = poll_until(STEP, || self.has(line)).await;
        assert!(found, "{} never got {line:?}; got {:?}", self.name, self.lines.lock().unwrap());
    }

    /// Ends our side and reads to EOF; returns every line received.
    async fn finish(mut self) -> Vec<String> {
        self.tx.shutdown().await.unwrap();
        tokio::time::timeout(STEP, &mut self.reader).await.expect("EOF after our end").unwrap();
        self.lines.lock().unwrap().clone()
    }
}

async fn broker_passes_lines_to_every_other_client(args: &[&str]) {
    let server = Server::start(args).await;
    let addr = server.addr();
    let mut a = LineClient::connect(&addr, "a").await;
    let mut b = LineClient::connect(&addr, "b").await;
    let mut c = LineClient::connect(&addr, "c").await;
    // c's lines reach a and b once all three are registered with the broker.
    for _ in 0..100 {
        c.send("sync").await;
        if poll_until(Duration::from_millis(50), || a.has("sync") && b.has("sync")).await {
            break;
        }
    }
    assert!(a.has("sync") && b.has("sync"), "the broker never passed c's lines on");
    a.send("from a").await;
    b.send("from b").await;
    c.send("from c").await;
    for (client, others) in
        [(&a, ["from b", "from c"]), (&b, ["from a", "from c"]), (&c, ["from a", "from b"])]
    {
        for line in others {
            client.wait_for(line).await;
        }
    }
    for (client, own) in [(a, "from a"), (b, "from b"), (c, "from c")] {
        let lines = client.finish().await;
        assert!(!lines.iter().any(|l| l == own), "the sender got its own line back: {lines:?}");
        assert!(!lines.iter().any(|l| own == "from c" && l == "sync"), "c got its own sync lines");
        let received: Vec<&String> = lines.iter().filter(|l| l.starts_with("from ")).collect();
        assert_eq!(received.len(), 2, "each other client's line exactly once: {lines:?}");
    }
}

#[test]
fn broker_with_delimiter_passes_each_line_to_every_other_client() {
    run(broker_passes_lines_to_every_other_client(&["--broker", "--delimiter", "\\n"]));
}

#[test]
fn broker_without_delimiter_passes_data_to_every_other_client() {
    run(broker_passes_lines_to_every_other_client(&["--broker"]));
}

#[test]
fn discard_reads_and_drops_everything() {
    run(async {
        let server = Server::start(&["-k", "--discard"]).await;
        let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
        tcp.write_all(&vec![b'x'; 1 << 20]).await.unwrap();
        tcp.shutdown().await.unwrap();
        assert_eq!(read_all(&mut tcp).await, b"", "nothing comes back");
        assert_eq!(server.proc.stdout(), b"", "nothing goes to stdout");
    });
}

/// Connects and checks the echo server answers.
async fn echoing_client(addr: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    tokio::time::timeout(STEP, tcp.read_exact(&mut got)).await.expect("echo timed out").unwrap();
    assert_eq!(&got, b"ping");
    tcp
}

#[test]
fn max_conns_2_closes_a_third_connection_at_once() {
    run(async {
        let server = Server::start(&["-k", "--echo", "--max-conns", "2"]).await;
        let addr = server.addr();
        let mut first = echoing_client(&addr).await;
        let _second = echoing_client(&addr).await;
        let mut third = TcpStream::connect(&addr).await.unwrap();
        let _ = third.write_all(b"ping").await;
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(3), third.read(&mut buf))
            .await
            .expect("the third connection is closed at once, not left hanging");
        assert!(matches!(read, Ok(0) | Err(_)), "the third connection got data: {read:?}");
        // When one of the two ends, there is room again.
        first.shutdown().await.unwrap();
        assert_eq!(read_all(&mut first).await, b"");
        let mut served = false;
        for _ in 0..100 {
            let mut next = TcpStream::connect(&addr).await.unwrap();
            next.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), next.read_exact(&mut got)).await {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(served, "a new connection is served once the first one has ended");
        server.proc.wait_stderr("connection limit").await;
    });
}

/// A client whose received bytes are collected in the background.
fn collecting_client(tcp: TcpStream) -> (tokio::net::tcp::OwnedWriteHalf, Arc<Mutex<Vec<u8>>>) {
    let (mut rx, tx) = tcp.into_split();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = rx.read(&mut buf).await {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (tx, got)
}

fn text_of(got: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&got.lock().unwrap()).into_owned()
}

#[test]
fn keep_open_stdio_sends_stdin_to_every_client_and_every_client_to_stdout() {
    run(async {
        let mut server = Server::start(&["-k"]).await;
        let (mut tx1, got1) = collecting_client(TcpStream::connect(server.addr()).await.unwrap());
        let (mut tx2, got2) = collecting_client(TcpStream::connect(server.addr()).await.unwrap());
        // stdin read before a client is registered goes to nobody: wait until both get it.
        let both = || text_of(&got1).contains("sync\n") && text_of(&got2).contains("sync\n");
        for _ in 0..100 {
            server.proc.write(b"sync\n").await;
            if poll_until(Duration::from_millis(50), both).await {
                break;
            }
        }
        assert!(both(), "stdin never reached both clients: {:?} {:?}", text_of(&got1), text_of(&got2));
        server.proc.write(b"to everyone\n").await;
        let everyone =
            || text_of(&got1).contains("to everyone\n") && text_of(&got2).contains("to everyone\n");
        assert!(poll_until(STEP, everyone).await, "{:?} {:?}", text_of(&got1), text_of(&got2));
        tx1.write_all(b"from one\n").await.unwrap();
        tx2.write_all(b"from two\n").await.unwrap();
        server.proc.wait_stdout(b"from one\n").await;
        server.proc.wait_stdout(b"from two\n").await;
    });
}

// ---- mTLS ----

#[test]
fn require_client_cert_accepts_a_client_certificate_and_refuses_none() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &["--client-ca", s(&pki.ca), "--require-client-cert"]).await;
        let with_cert = streamtool(
            &[
                "connect",
                "--on-eof",
                "half-close",
                "--tls",
                "--ca",
                s(&pki.ca),
                "--cert",
                s(&pki.client_cert),
                "--key",
                s(&pki.client_key),
                &server.localhost(),
            ],
            b"mutual\n",
        )
        .await;
        with_cert.assert_code(0);
        assert_eq!(with_cert.stdout, b"mutual\n");

        // stdin stays open, so the client's next step is reading the server's verdict.
        let anonymous = Proc::streamtool(
            &["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca), &server.localhost()],
            Input::Open,
        );
        let without = anonymous.finish().await;
        // Refused as a TLS failure (exit 4), by the alert that names the reason, with the
        // hint that says what to add.
        without.assert_code(4);
        let lines: Vec<&str> = without.stderr.lines().collect();
        assert!(
            lines.iter().any(|l| l.starts_with("streamtool: ")
                && l.contains(&format!(":{} failed: ", server.port))
                && l.ends_with("received fatal alert: CertificateRequired")),
            "a line names the server's reason (the certificate it requires): {lines:?}"
        );
        assert!(
            lines.contains(
                &"streamtool: hint: the server requires a client certificate: add --cert FILE --key FILE"
            ),
            "the hint says what to add: {lines:?}"
        );
        assert_eq!(without.stdout, b"", "nothing was echoed to an anonymous client");
        // The server says why it refused, and goes on serving.
        server.proc.wait_stderr("failed: peer sent no certificates").await;
    });
}

// ---- robustness ----

/// One client: sends `size` bytes and reads them back, or, with `reset`, sends and
/// resets the connection without reading.
async fn echo_client(addr: SocketAddr, size: usize, reset: bool) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let data = vec![b'e'; size];
    tcp.write_all(&data).await.unwrap();
    if reset {
        tcp.set_zero_linger().unwrap();
        drop(tcp);
        return;
    }
    let mut got = vec![0u8; size];
    tcp.read_exact(&mut got).await.unwrap();
    assert!(got == data);
    tcp.shutdown().await.unwrap();
    assert_eq!(read_all(&mut tcp).await, b"");
}

async fn concurrent_clients(addr: SocketAddr, count: usize) {
    let clients: Vec<JoinHandle<()>> =
        (0..count).map(|i| tokio::spawn(echo_client(addr, 4096 + i, i % 5 == 0))).collect();
    for client in clients {
        client.await.unwrap();
    }
}

#[test]
fn echo_server_survives_1000_sequential_and_200_concurrent_clients_without_fd_growth() {
    run(async {
        let server = Server::start(&["-k", "--echo"]).await;
        let addr: SocketAddr = server.addr().parse().unwrap();
        // The count before any client: what the first one leaves behind counts as growth
        // too (the 5 of slack cover descriptors made once, at the first connection).
        let fds_at_start = server.proc.open_fds();
        echo_client(addr, 16, false).await;
        // A first concurrent round warms the allocator up; memory is compared after it.
        concurrent_clients(addr, 200).await;
        let rss_warm = server.proc.rss_kib();
        for i in 0..1000 {
            echo_client(addr, 16 + i % 100, i % 10 == 0).await;
        }
        concurrent_clients(addr, 200).await;
        echo_client(addr, 16, false).await;
        let settled = poll_until(Duration::from_secs(5), || server.proc.open_fds() <= fds_at_start + 5).await;
        let rss_end = server.proc.rss_kib();
        eprintln!(
            "fds: {fds_at_start} at start, {} at the end; RSS {rss_warm} KiB warm, {rss_end} KiB at the end",
            server.proc.open_fds()
        );
        assert!(
            settled,
            "descriptors leaked: {} at start, {} at the end",
            fds_at_start,
            server.proc.open_fds()
        );
        assert!(rss_end <= rss_warm + 32 * 1024, "memory grew from {rss_warm} KiB to {rss_end} KiB");
    });
}

#[test]
fn sigterm_refuses_new_connections_and_lets_the_open_one_finish() {
    run(async {
        let mut server = Server::start(&["-k", "--echo"]).await;
        let addr: SocketAddr = server.addr().parse().unwrap();
        let mut open = echoing_client(&server.addr()).await;
        server.proc.signal("TERM");
        let refused = poll_until(STEP, || {
            matches!(
                std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
            )
        })
        .await;
        assert!(refused, "new connections are still accepted after SIGTERM");
        assert!(!server.proc.has_exited(), "the server waits for the open connection");
        open.write_all(b"still here\n").await.unwrap();
        let mut got = [0u8; 11];
        open.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"still here\n");
        open.shutdown().await.unwrap();
        assert_eq!(read_all(&mut open).await, b"");
        server.proc.finish().await.assert_code(0);
    });
}

// Without -k, SIGTERM during the one session used to be swallowed (tokio's handler, made
// while waiting for the client, stays installed): the server ran on. Now the session gets
// --grace to finish, as -k's connections do, and then the server exits 0.
#[test]
fn sigterm_during_the_single_session_lets_it_finish_then_ends_it() {
    run(async {
        let server = Server::start(&["--echo", "--grace", "300ms"]).await;
        let mut open = echoing_client(&server.addr()).await;
        server.proc.signal("TERM");
        // Within the grace period the session still works.
        open.write_all(b"still here\n").await.unwrap();
        let mut got = [0u8; 11];
        open.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"still here\n");
        // Then it is cut and the server exits 0, though the client never closed.
        server.proc.finish().await.assert_code(0);
    });
}

#[test]
fn progress_always_counts_all_clients() {
    run(async {
        let server = Server::start(&["-k", "--echo", "--progress=always"]).await;
        for _ in 0..3 {
            streamtool(&["connect", &server.addr()], b"12345").await.assert_code(0);
        }
        server.proc.signal("TERM");
        let stderr = server.proc.wait_stderr("clients -> server: 15 bytes").await;
        assert!(stderr.contains("server -> clients"), "{stderr}");
    });
}

#[test]
fn keep_open_stdio_shapes_what_goes_to_clients() {
    run(async {
        let server = Server::start(&["-k", "--crlf", "--events", "json"]).await;
        let mut client = Proc::streamtool(&["connect", &server.addr()], Input::Open);
        // The client is accepted (its event) before the server's stdin says anything; stdin
        // is read only while a client is connected (docs/cli.md), so nothing is dropped.
        server.proc.wait_stderr("\"event\":\"accept\"").await;
        let mut server = server;
        server.proc.write(b"hi\n").await;
        client.wait_stdout(b"hi\r\n").await;
        client.close_stdin();
        let done = client.finish().await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"hi\r\n", "LF became CRLF, and nothing else arrived");
    });
}

#[test]
fn tls12_exec_ends_the_connection_when_the_command_is_done() {
    run(async {
        let server = Server::start(&["-k", "--tls", "--tls-max", "1.2", "--sh-exec", "echo done"]).await;
        let stderr = server.proc.wait_stderr("connect with: ").await;
        let pin = stderr
            .split("--pin ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_string();
        // The client's stdin stays open while the command runs and exits: the server ends
        // the connection (close_notify, TLS 1.2 too) once the command is done, and the
        // client, whose stdin then ends, exits.
        let args = ["connect", "--tls", "--pin", &pin, &server.localhost()];
        let mut client = Proc::streamtool(&args, Input::Open);
        client.wait_stdout(b"done\n").await;
        client.close_stdin();
        let done = client.finish_within(STEP).await;
        done.assert_code(0);
    });
}

// ---- one client with TLS ----

#[test]
fn a_silent_connection_does_not_hold_up_the_single_tls_client() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        // No -k: the first client whose handshake succeeds is served. A long handshake
        // timeout: waiting it out would take the client past the test's own limit.
        let server = Server::start(&[
            "--echo",
            "--handshake-timeout",
            "120s",
            "--events",
            "json",
            "--tls",
            "--cert",
            s(&pki.server_cert),
            "--key",
            s(&pki.server_key),
        ])
        .await;
        let _silent = TcpStream::connect(server.addr()).await.unwrap();
        // The silent connection is accepted (its event) before the real client connects.
        server.proc.wait_stderr("\"event\":\"accept\"").await;
        let target = server.localhost();
        let args = ["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca), &target];
        let done = tokio::time::timeout(Duration::from_secs(20), streamtool(&args, b"hello\n"))
            .await
            .expect("the client waited for the silent connection's handshake to time out");
        done.assert_code(0);
        assert_eq!(done.stdout, b"hello\n");
    });
}

#[test]
fn without_k_a_command_that_fails_or_cannot_run_fails_serve_naming_it() {
    run(async {
        for (mode, name) in
            [(&["--sh-exec", "exit 3"][..], "exit 3"), (&["--exec", "/nonexistent/cmd"], "/nonexistent")]
        {
            let server = Server::start(mode).await;
            streamtool(&["connect", &server.addr()], b"").await.assert_code(0);
            let done = server.proc.finish().await;
            done.assert_code(1);
            let last = done.stderr.lines().last().unwrap_or_default();
            assert!(last.starts_with("streamtool: ") && last.contains(name), "{mode:?}: {}", done.stderr);
            assert_eq!(done.stderr.lines().count(), 2, "the listening line and one error: {}", done.stderr);
        }
        // With a command that succeeds, serve succeeds.
        let server = Server::start(&["--sh-exec", "true"]).await;
        streamtool(&["connect", &server.addr()], b"").await.assert_code(0);
        server.proc.finish().await.assert_code(0);
    });
}
