//! Promises made at the command line that no other test held the binary to (issue 27),
//! each checked through the real `streamtool` against real peers on loopback:
//!
//! - the default `--max-frame` (1 MiB, docs/cli.md "Framing and text"): a frame of exactly
//!   1 MiB passes, one byte more is exit 7 with its line;
//! - a TLS stream cut short (TCP FIN, no close_notify) is exit 5 for `serve --tls`,
//!   `pipe tls:` and `pipe tls-listen:` (docs/cli.md "End of stream"), against Python's
//!   `ssl` module as the peer;
//! - `serve PORT` binds loopback only (docs/cli.md "serve"): what `ss` shows, and a
//!   connection to the machine's other addresses is refused, with `0.0.0.0:PORT` as the
//!   control that the same connection does reach a server bound there;
//! - `SSLKEYLOGFILE` (docs/tls.md "Key logging", docs/security.md promise 6): the warning
//!   line, and the file written 0600 with the NSS lines both ends agree on;
//! - the default 30 s handshake timeout (docs/cli.md "Timeouts and addresses"), for `serve
//!   --tls` and `connect --tls`;
//! - gen-cert's key writes (docs/security.md promise 16): a key created 0600 at its
//!   `open(2)` whatever the umask, and `--force` replacing a key by rename, never in place.
//!
//! The rules these tests follow are in docs/testing.md.

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::certs::PemPki;
use crate::support::cli::{Finished, Input, Proc, Server, closed_port, s, tcp_server};
use crate::support::data::same_bytes;
use crate::support::peers::need;
use crate::support::run_threaded;

/// The one line of `done`'s stderr, failing the test if there are more or none.
#[track_caller]
fn only_line(done: &Finished) -> &str {
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "`{}`: one line on stderr, got:\n{}", done.label, done.stderr);
    lines[0]
}

// ---------------------------------------------------------------------------------------
// The default --max-frame

/// docs/cli.md: "`--max-frame` (default 1 MiB, needs `--delimiter`)".
const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// `connect --delimiter '\n'` (no `--max-frame`) to a server that sends one frame of `len`
/// bytes, its delimiter and its end.
async fn receive_one_frame(len: usize) -> (Finished, Vec<u8>, String) {
    let frame: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    let sent = frame.clone();
    let (port, _server) = tcp_server(move |mut tcp| async move {
        // The client may give up mid-frame: errors here are the client's business.
        let _ = tcp.write_all(&sent).await;
        let _ = tcp.write_all(b"\n").await;
        let _ = tcp.shutdown().await;
        let _ = tcp.read_to_end(&mut Vec::new()).await;
    })
    .await;
    let target = format!("127.0.0.1:{port}");
    let done = Proc::streamtool(&["connect", "--delimiter", "\\n", &target], Input::Bytes(Vec::new()))
        .finish_within(Duration::from_secs(30))
        .await;
    (done, frame, target)
}

#[test]
fn the_default_max_frame_passes_1_mib_and_refuses_one_byte_more_with_exit_7() {
    run_threaded(Duration::from_secs(90), async {
        for len in [DEFAULT_MAX_FRAME - 1, DEFAULT_MAX_FRAME] {
            let (done, frame, _) = receive_one_frame(len).await;
            done.assert_code(0);
            let mut expected = frame;
            expected.push(b'\n');
            same_bytes(&format!("a frame of {len} bytes"), &done.stdout, &expected);
        }
        let (done, _, target) = receive_one_frame(DEFAULT_MAX_FRAME + 1).await;
        done.assert_code(7);
        assert_eq!(done.stdout, b"", "no part of the oversized frame reaches stdout");
        assert_eq!(
            only_line(&done),
            format!(
                "streamtool: receiving from {target} failed: frame longer than {DEFAULT_MAX_FRAME} bytes \
                 (no delimiter within the limit)"
            )
        );
    });
}

// ---------------------------------------------------------------------------------------
// A truncated TLS stream: exit 5

/// A Python TLS client: handshake (trusting the CA in argv[2]) with 127.0.0.1:argv[1] as
/// `localhost`, send `partial\n`, then end the TCP stream without close_notify
/// (`SSLSocket.shutdown` drops the TLS state, then shuts the socket down: a bare FIN),
/// and read until the server closes (so that no unread data turns the close into a RST).
const CUTTING_CLIENT: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
tls.sendall(b"partial\n")
tls.shutdown(socket.SHUT_WR)
print("cut", flush=True)
tls.settimeout(20)
try:
    while tls.recv(65536):
        pass
except OSError:
    pass
"#;

/// A Python TLS server for one client on a fresh loopback port (printed first): handshake
/// with the certificate and key in argv[1] and argv[2], send `partial\n`, then end the TCP
/// stream without close_notify, and read until the client closes.
const CUTTING_SERVER: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
tcp, _ = listener.accept()
tls = ctx.wrap_socket(tcp, server_side=True)
tls.sendall(b"partial\n")
tls.shutdown(socket.SHUT_WR)
print("cut", flush=True)
tls.settimeout(20)
try:
    while tls.recv(65536):
        pass
except OSError:
    pass
"#;

/// Writes a Python script into `dir`.
fn script(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    s(&path).to_string()
}

/// The line docs/cli.md's exit 5 comes with, for the peer `peer`.
fn truncated_line(peer: &str) -> String {
    format!(
        "streamtool: receiving from {peer} failed: the TLS peer closed the connection without close_notify: \
         the data may be truncated"
    )
}

/// Checks a listening `streamtool` (serve or pipe) that `CUTTING_CLIENT` cut short: exit 5,
/// the bytes before the cut on stdout, and the line naming the client.
async fn listener_is_cut_short(server: Server, pki: &PemPki, dir: &Path) {
    let client_script = script(dir, "cutting_client.py", CUTTING_CLIENT);
    let port = server.port.to_string();
    let client = Proc::spawn("python3", &[&client_script, &port, s(&pki.ca)], Input::Bytes(Vec::new()));
    client.wait_stdout(b"cut\n").await;
    let done = server.proc.finish().await;
    done.assert_code(5);
    assert_eq!(done.stdout, b"partial\n", "what came before the cut is delivered");
    let last = done.stderr.lines().last().unwrap_or_default();
    let expected = truncated_line("127.0.0.1:");
    let (head, tail) = expected.split_at(expected.find(" failed: ").unwrap());
    assert!(
        last.starts_with(head) && last.ends_with(tail),
        "the last line says the stream was truncated: {last:?}\nstderr:\n{}",
        done.stderr
    );
    client.finish().await.assert_code(0);
}

#[test]
fn serve_tls_exits_5_when_the_client_ends_without_close_notify() {
    if !need(&["python3"]) {
        return;
    }
    run_threaded(Duration::from_secs(60), async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        // stdin stays open: the server sends nothing and waits for the client's end.
        let server =
            Server::start(&["--tls", "--cert", s(&pki.server_cert), "--key", s(&pki.server_key)]).await;
        listener_is_cut_short(server, &pki, dir.path()).await;
    });
}

#[test]
fn pipe_tls_listen_exits_5_when_the_client_ends_without_close_notify() {
    if !need(&["python3"]) {
        return;
    }
    run_threaded(Duration::from_secs(60), async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let listen = format!("tls-listen:0,cert={},key={}", s(&pki.server_cert), s(&pki.server_key));
        let server = Server::listening(Proc::streamtool(&["pipe", &listen, "-"], Input::Open)).await;
        listener_is_cut_short(server, &pki, dir.path()).await;
    });
}

#[test]
fn pipe_tls_exits_5_when_the_server_ends_without_close_notify() {
    if !need(&["python3"]) {
        return;
    }
    run_threaded(Duration::from_secs(60), async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let server_script = script(dir.path(), "cutting_server.py", CUTTING_SERVER);
        let server = Proc::spawn(
            "python3",
            &[&server_script, s(&pki.server_cert), s(&pki.server_key)],
            Input::Bytes(Vec::new()),
        );
        server.wait_stdout(b"\n").await;
        let port: u16 = String::from_utf8_lossy(&server.stdout()).trim().parse().expect("the server's port");
        let peer = format!("localhost:{port}");
        let endpoint = format!("tls:{peer},ca={}", s(&pki.ca));
        // stdin stays open: the relay ends because of the server alone.
        let done = Proc::streamtool(&["pipe", &endpoint, "-"], Input::Open).finish().await;
        done.assert_code(5);
        assert_eq!(done.stdout, b"partial\n", "what came before the cut is delivered");
        assert_eq!(done.stderr.lines().last().unwrap_or_default(), truncated_line(&peer), "{}", done.stderr);
        server.finish().await.assert_code(0);
    });
}

// ---------------------------------------------------------------------------------------
// A bare port binds loopback only

/// The local addresses `ss` shows listening on TCP port `port`.
fn listening_addresses(port: u16) -> Vec<String> {
    let output = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("running ss");
    assert!(output.status.success(), "ss failed: {}", String::from_utf8_lossy(&output.stderr));
    let mut found: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect();
    found.sort();
    found
}

/// This machine's addresses other than loopback and link-local (`ip -o addr`).
fn other_local_addresses() -> Vec<std::net::IpAddr> {
    let output = std::process::Command::new("ip").args(["-o", "addr", "show"]).output().expect("running ip");
    assert!(output.status.success(), "ip failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next()?.split('/').next()?.parse::<std::net::IpAddr>().ok()
        })
        .filter(|ip| match ip {
            std::net::IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
            std::net::IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
        })
        .collect()
}

fn connect_error(ip: std::net::IpAddr, port: u16) -> Option<std::io::ErrorKind> {
    std::net::TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2)).err().map(|e| e.kind())
}

#[test]
fn serve_with_a_bare_port_listens_on_loopback_only() {
    if !need(&["ss", "ip"]) {
        return;
    }
    run_threaded(Duration::from_secs(60), async {
        let port = closed_port();
        let server = Server::start(&["-k", "--echo", &port.to_string()]).await;
        assert_eq!(server.port, port);
        // What it says...
        let line = server.proc.stderr().lines().next().unwrap_or_default().to_string();
        let said = line.strip_prefix("streamtool: listening on ").expect("the listening line first");
        let mut said: Vec<String> = said.split(", ").map(str::to_string).collect();
        said.sort();
        assert!(said.contains(&format!("127.0.0.1:{port}")), "{line}");
        for address in &said {
            assert!(
                address == &format!("127.0.0.1:{port}") || address == &format!("[::1]:{port}"),
                "a bare port listens on {address}: {line}"
            );
        }
        // ...is what the kernel has: no socket on any other address of the port.
        assert_eq!(listening_addresses(port), said, "`ss -ltn` for port {port}");
        // It answers on loopback...
        let done = crate::support::cli::streamtool(&["connect", &server.addr()], b"loopback\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"loopback\n");
        // ...and refuses the machine's other addresses.
        let others = other_local_addresses();
        if others.is_empty() {
            eprintln!("NOTE: no address but loopback on this machine: only the bound addresses were checked");
        }
        for &ip in &others {
            assert_eq!(
                connect_error(ip, port),
                Some(std::io::ErrorKind::ConnectionRefused),
                "a connection to {ip}:{port} is not refused"
            );
        }
        // Gone before the control binds the same port.
        let mut server = server;
        server.proc.close_stdin();
        server.proc.signal("TERM");
        server.proc.finish().await.assert_code(0);
        // The control: bound to 0.0.0.0, the same connection reaches it, so the refusals
        // above came from the bare port's binding and not from the network.
        if let Some(&ip) = others.iter().find(|ip| ip.is_ipv4()) {
            let all = Server::start(&["-k", "--echo", &format!("0.0.0.0:{port}")]).await;
            assert_eq!(connect_error(ip, port), None, "0.0.0.0:{port} is not reachable at {ip}");
            drop(all);
        }
    });
}

// ---------------------------------------------------------------------------------------
// SSLKEYLOGFILE

const KEYLOG_WARNING: &str = "logging TLS secrets: anyone with this file can decrypt the traffic";

/// The NSS key-log lines of `path` as (label, client random, secret), checking each line's
/// form (64 hex digits of client random, a secret of 32 to 64 bytes in hex) and the mode.
fn keylog_lines(path: &Path) -> Vec<(String, String, String)> {
    let mode =
        std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{} has mode {:o}", path.display(), mode & 0o777);
    let text = std::fs::read_to_string(path).unwrap();
    let is_hex = |w: &str| w.bytes().all(|b| b.is_ascii_hexdigit());
    text.lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            assert!(
                words.len() == 3
                    && words[1].len() == 64
                    && is_hex(words[1])
                    && (64..=128).contains(&words[2].len())
                    && is_hex(words[2]),
                "not an NSS key-log line in {}: {line:?}",
                path.display()
            );
            (words[0].to_string(), words[1].to_string(), words[2].to_string())
        })
        .collect()
}

fn labels(lines: &[(String, String, String)]) -> Vec<&str> {
    let mut labels: Vec<&str> = lines.iter().map(|(label, _, _)| label.as_str()).collect();
    labels.sort();
    labels
}

#[track_caller]
fn warns_about(stderr: &str, path: &Path) {
    assert!(
        stderr.lines().any(|l| l.contains(KEYLOG_WARNING) && l.contains(&format!("path={}", path.display()))),
        "no key-log warning naming {} on stderr:\n{stderr}",
        path.display()
    );
}

#[test]
fn sslkeylogfile_warns_and_writes_the_secrets_both_ends_agree_on() {
    run_threaded(Duration::from_secs(60), async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let server_log = dir.path().join("server.keys");
        let (tls13_log, tls12_log) = (dir.path().join("tls13.keys"), dir.path().join("tls12.keys"));
        let serve = Proc::streamtool_env(
            &["serve", "-k", "--echo", "--tls", "--cert", s(&pki.server_cert), "--key", s(&pki.server_key)],
            Input::Open,
            &[("SSLKEYLOGFILE", server_log.as_os_str())],
        );
        let server = Server::listening(serve).await;
        warns_about(&server.proc.stderr(), &server_log);
        // TLS 1.3, and TLS 1.2 under -q: the warning is there either way.
        for (log, extra) in [(&tls13_log, &[][..]), (&tls12_log, &["-q", "--tls-max", "1.2"][..])] {
            let mut args = vec!["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca)];
            args.extend_from_slice(extra);
            let target = server.localhost();
            args.push(&target);
            let env: [(&str, &OsStr); 1] = [("SSLKEYLOGFILE", log.as_os_str())];
            let done = Proc::streamtool_env(&args, Input::Bytes(b"secret\n".to_vec()), &env).finish().await;
            done.assert_code(0);
            assert_eq!(done.stdout, b"secret\n");
            warns_about(&done.stderr, log);
        }
        let tls13 = keylog_lines(&tls13_log);
        assert_eq!(
            labels(&tls13),
            [
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0",
                "EXPORTER_SECRET",
                "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "SERVER_TRAFFIC_SECRET_0"
            ],
            "one TLS 1.3 handshake's secrets"
        );
        let tls12 = keylog_lines(&tls12_log);
        assert_eq!(labels(&tls12), ["CLIENT_RANDOM"], "one TLS 1.2 handshake's master secret");
        assert_eq!(tls12[0].2.len(), 96, "a 48-byte master secret");
        // The server logged the same secrets for the same two handshakes: they are real.
        let mut server_lines = keylog_lines(&server_log);
        let mut client_lines = [tls13, tls12].concat();
        server_lines.sort();
        client_lines.sort();
        assert_eq!(server_lines, client_lines, "the server's key log matches the clients'");
    });
}

// ---------------------------------------------------------------------------------------
// The default handshake timeout: 30 s

/// docs/cli.md: "`--handshake-timeout` (default 30 s)".
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long after the default timeout it may take to be seen, on a loaded machine.
const SLACK: Duration = Duration::from_secs(15);

#[track_caller]
fn about_the_default_timeout(took: Duration, what: &str) {
    assert!(
        took >= DEFAULT_HANDSHAKE_TIMEOUT - Duration::from_millis(500),
        "{what} after {took:?}, before the default handshake timeout of {DEFAULT_HANDSHAKE_TIMEOUT:?}"
    );
    assert!(
        took < DEFAULT_HANDSHAKE_TIMEOUT + SLACK,
        "{what} after {took:?}, long after the default handshake timeout of {DEFAULT_HANDSHAKE_TIMEOUT:?}"
    );
}

#[test]
fn serve_tls_closes_a_client_silent_for_the_default_30_s_handshake_timeout() {
    run_threaded(Duration::from_secs(90), async {
        let server = Server::start(&["--tls"]).await;
        let mut silent = TcpStream::connect(server.addr()).await.unwrap();
        let started = Instant::now();
        let local = silent.local_addr().unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(DEFAULT_HANDSHAKE_TIMEOUT + SLACK, silent.read(&mut buf))
            .await
            .expect("the server never closed a client that sent no ClientHello");
        let took = started.elapsed();
        assert!(matches!(read, Ok(0) | Err(_)), "the server sent something to a silent client: {read:?}");
        about_the_default_timeout(took, "the silent client was closed");
        server.proc.wait_stderr(&format!("TLS handshake with {local} failed: timed out after 30s")).await;
        // Without -k, a failed handshake is skipped: the server is still there.
        let mut server = server;
        assert!(!server.proc.has_exited(), "serve exited; stderr:\n{}", server.proc.stderr());
    });
}

#[test]
fn connect_tls_to_a_server_that_never_answers_exits_6_after_the_default_30_s() {
    run_threaded(Duration::from_secs(90), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and holds the connection, answering nothing, until the client goes.
        let _silent = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let _ = tcp.read_to_end(&mut Vec::new()).await;
        });
        let target = format!("127.0.0.1:{port}");
        let started = Instant::now();
        let done = Proc::streamtool(&["connect", "--tls", &target], Input::Open)
            .finish_within(DEFAULT_HANDSHAKE_TIMEOUT + SLACK)
            .await;
        about_the_default_timeout(started.elapsed(), "connect gave up");
        done.assert_code(6);
        assert_eq!(only_line(&done), format!("streamtool: {target}: TLS handshake timed out after 30s"));
    });
}

// ---------------------------------------------------------------------------------------
// gen-cert's key writes

/// `streamtool gen-cert ARGS` in `dir` under `umask`, with the CA directory and HOME in
/// `dir` too; with `trace`, under `strace -f -o TRACE` for the calls that create, rename
/// and change the mode of files.
async fn gen_cert(dir: &Path, umask: &str, trace: Option<&Path>, args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new("sh");
    let mut line = vec![crate::support::cli::BIN, "gen-cert"];
    line.extend_from_slice(args);
    let traced;
    if let Some(trace) = trace {
        traced = [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,creat,chmod,fchmod,fchmodat,rename,renameat,renameat2,link,linkat",
            "-o",
            s(trace),
        ];
        line.splice(0..0, traced);
    }
    command
        .arg("-c")
        .arg("umask \"$0\" && exec \"$@\"")
        .arg(umask)
        .args(&line)
        .current_dir(dir.join("work"))
        .env("STREAMTOOL_CA_DIR", dir.join("ca"))
        .env("HOME", dir.join("home"))
        .env("XDG_DATA_HOME", dir.join("home"))
        .env_remove("RUST_LOG")
        .env_remove("SSLKEYLOGFILE")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("gen-cert within 60 s")
        .expect("running gen-cert");
    assert!(
        output.status.success(),
        "umask {umask}; gen-cert {args:?}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    std::fs::create_dir(dir.path().join("home")).unwrap();
    dir
}

fn file_mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn gen_cert_creates_a_key_0600_at_its_open_whatever_the_umask() {
    if !need(&["strace"]) {
        return;
    }
    run_threaded(Duration::from_secs(90), async {
        let dir = sandbox();
        let trace = dir.path().join("trace.txt");
        // umask 000 takes nothing away: a key created 0666 and chmod-ed later would show.
        gen_cert(dir.path(), "000", Some(&trace), &["localhost"]).await;
        let work = dir.path().join("work");
        assert_eq!(file_mode(&work.join("localhost-key.pem")), 0o600, "the key under umask 000");
        assert_eq!(file_mode(&work.join("localhost.pem")), 0o644, "the certificate under umask 000");
        let trace = std::fs::read_to_string(&trace).unwrap();
        // The key's temporary file is created new (O_EXCL) with 0600 in the same call...
        let creations: Vec<&str> =
            trace.lines().filter(|l| l.contains("localhost-key.pem") && l.contains("O_CREAT")).collect();
        assert!(!creations.is_empty(), "no creation of the key file in the trace:\n{trace}");
        for call in &creations {
            assert!(call.contains("O_EXCL") && call.contains(", 0600)"), "the key was created as: {call}");
        }
        // ...and no mode is changed afterwards: it was never readable by others.
        let chmods: Vec<&str> = trace.lines().filter(|l| l.contains("chmod")).collect();
        assert!(chmods.is_empty(), "modes were changed after creation: {chmods:#?}");
        // The same under a strict umask: the key's mode does not come from the umask.
        let strict = sandbox();
        gen_cert(strict.path(), "077", None, &["localhost"]).await;
        assert_eq!(
            file_mode(&strict.path().join("work/localhost-key.pem")),
            0o600,
            "the key under umask 077"
        );
    });
}

#[test]
fn gen_cert_force_replaces_a_key_by_rename_never_in_place() {
    run_threaded(Duration::from_secs(90), async {
        let dir = sandbox();
        let key = dir.path().join("work/localhost-key.pem");
        gen_cert(dir.path(), "022", None, &["localhost"]).await;
        let old_content = std::fs::read(&key).unwrap();
        // A reader that has the old key open (a server loading it, a backup).
        let old = std::fs::File::open(&key).unwrap();
        let old_inode = old.metadata().unwrap().ino();
        gen_cert(dir.path(), "022", None, &["--force", "localhost"]).await;
        let new = std::fs::metadata(&key).unwrap();
        assert_ne!(new.ino(), old_inode, "the key was rewritten in place, not replaced by a new file");
        assert_eq!(new.permissions().mode() & 0o777, 0o600);
        let new_content = std::fs::read(&key).unwrap();
        assert_ne!(new_content, old_content, "--force made a new key");
        // The old file was never truncated or written: what its reader sees is intact.
        let mut seen = Vec::new();
        std::io::Read::read_to_end(&mut &old, &mut seen).unwrap();
        assert_eq!(seen, old_content, "the old key's content changed under its reader");
        assert_eq!(
            old.metadata().unwrap().nlink(),
            0,
            "the old key is unlinked, not kept under another name"
        );
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("work"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["localhost-key.pem", "localhost.pem"], "no temporary file is left");
        streamtool::certs::load_identity(dir.path().join("work/localhost.pem"), &key).unwrap();
    });
}

/// The defaults live in the library (`streamtool::stack::options`); `connect --help`
/// states them, and must state the same.
#[test]
fn help_states_the_librarys_defaults() {
    use streamtool::stack::{HANDSHAKE_TIMEOUT, MAX_FRAME};
    crate::support::run(async {
        let out = crate::support::cli::streamtool(&["connect", "--help"], b"").await;
        out.assert_code(0);
        let help = String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
        let timeout = streamtool::streams::error::format_duration(HANDSHAKE_TIMEOUT);
        assert!(help.contains(&format!("Limit for the TLS handshake (default {timeout})")), "{help}");
        let frame = streamtool::values::format_size(MAX_FRAME as u64);
        assert!(help.contains(&format!("default {frame})")), "{frame} not in {help}");
    });
}
