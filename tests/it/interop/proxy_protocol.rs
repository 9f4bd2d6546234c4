//! The PROXY protocol (v1 and v2) against real haproxy (Debian's `haproxy`): haproxy's
//! `send-proxy` and `send-proxy-v2` into `serve --accept-proxy` (the events name the
//! original client, the payload comes back byte-exact), streamtool's `--proxy-protocol`
//! and `proxy-protocol=` into haproxy's `bind ... accept-proxy` (haproxy's log shows the
//! client it believes), and the refusals: a garbage header, an untrusted source, a header
//! that stalls half-way (closed after the limit while other clients are served).

use std::time::Duration;

use streamtool::streams::tls::sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::cli::*;
use crate::support::data::payload;
use crate::support::{precondition, timeout};

/// haproxy's path: on PATH, or in /usr/sbin (not on every user's PATH).
fn haproxy_bin() -> Option<&'static str> {
    ["haproxy", "/usr/sbin/haproxy"]
        .into_iter()
        .find(|bin| std::process::Command::new(bin).arg("-v").output().is_ok_and(|o| o.status.success()))
}

fn have_haproxy() -> bool {
    precondition(haproxy_bin().is_some(), "haproxy is not installed (apt-get install haproxy)")
}

/// A haproxy in the foreground (`-db`) with its config in a temporary directory; killed
/// on drop.
struct Haproxy {
    proc: Proc,
    /// The frontend's port.
    port: u16,
    _dir: tempfile::TempDir,
}

/// Starts haproxy with a frontend on a fresh loopback port (`bind_extra` after its bind
/// line) whose backend is `server`, logging each connection's client (`client=IP:PORT`)
/// to stdout. Ready when a second frontend, bound in the same start-up and closing what
/// it accepts, takes a connection (a probe of the real frontend would reach the backend).
async fn haproxy(bind_extra: &str, server: &str) -> Haproxy {
    let dir = tempfile::tempdir().unwrap();
    let (port, ready) = (closed_port(), closed_port());
    let conf = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode tcp\n    log global\n    log-format \"client=%ci:%cp\"\n\
         \x20   timeout connect 5s\n    timeout client 20s\n    timeout server 20s\n\
         frontend fe\n    bind 127.0.0.1:{port}{bind_extra}\n    default_backend be\n\
         frontend ready\n    bind 127.0.0.1:{ready}\n    tcp-request connection reject\n\
         backend be\n    server s1 {server}\n"
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, conf).unwrap();
    let proc =
        Proc::spawn(haproxy_bin().expect("checked by have_haproxy"), &["-f", s(&path), "-db"], Input::Open);
    let started = poll_until(STEP, || std::net::TcpStream::connect(("127.0.0.1", ready)).is_ok()).await;
    assert!(started, "haproxy did not start; stderr:\n{}", proc.stderr());
    Haproxy { proc, port, _dir: dir }
}

/// Sends `data` on a new connection to `port`, half-closes, reads to the end; returns the
/// client socket's own address and what came back.
async fn round_trip(port: u16, data: &[u8]) -> (std::net::SocketAddr, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (mut rx, mut tx) = stream.split();
    let send = async {
        tx.write_all(data).await.unwrap();
        tx.shutdown().await.unwrap();
    };
    let (_, back) = tokio::join!(send, read_all(&mut rx));
    (local, back)
}

fn accept_events(stderr: &str) -> Vec<serde_json::Value> {
    json_events(stderr).into_iter().filter(|e| e["event"] == "accept").collect()
}

/// haproxy's `send-proxy` (v1) or `send-proxy-v2` in front of `serve -k --echo
/// --accept-proxy`: the accept event names the test's own client socket (not haproxy's
/// connection), with haproxy as the proxy; 1 MiB comes back byte-exact; serve exits 0 on
/// SIGTERM.
async fn haproxy_sends(send_proxy: &str) {
    if !have_haproxy() {
        return;
    }
    let server = Server::start(&["-k", "--echo", "--accept-proxy", "--events", "json", "127.0.0.1:0"]).await;
    let proxy = haproxy("", &format!("{} {send_proxy}", server.addr())).await;
    let data = payload(7, 1 << 20);
    let (client, back) = round_trip(proxy.port, &data).await;
    assert_eq!((back.len(), sha256(&back)), (data.len(), sha256(&data)), "the echo differs");
    let done = poll_until(STEP, || server.proc.stderr().contains("\"event\":\"close\"")).await;
    assert!(done, "no close event; stderr:\n{}", server.proc.stderr());
    let accepts = accept_events(&server.proc.stderr());
    assert_eq!(accepts.len(), 1, "{accepts:?}");
    assert_eq!(accepts[0]["peer"], client.to_string(), "the accept event's peer is the original client");
    let via = accepts[0]["proxy"].as_str().expect("the proxy's address").to_string();
    assert!(via.starts_with("127.0.0.1:") && via != client.to_string(), "proxy {via}");
    let close = json_events(&server.proc.stderr()).into_iter().find(|e| e["event"] == "close").unwrap();
    assert_eq!(close["peer"], client.to_string());
    server.proc.signal("TERM");
    server.proc.finish().await.assert_code(0);
    drop(proxy);
}

#[tokio::test]
async fn haproxy_send_proxy_v1_reaches_serve_accept_proxy() {
    timeout(haproxy_sends("send-proxy")).await;
}

#[tokio::test]
async fn haproxy_send_proxy_v2_reaches_serve_accept_proxy() {
    timeout(haproxy_sends("send-proxy-v2")).await;
}

/// `serve --tls --accept-proxy` behind haproxy's `send-proxy-v2` (haproxy passes the TLS
/// through): the header is read before the handshake, which then succeeds; the
/// handshake event names the original client.
#[tokio::test]
async fn haproxy_send_proxy_v2_before_a_tls_handshake() {
    if !have_haproxy() {
        return;
    }
    timeout(async {
        let server =
            Server::start(&["-k", "--echo", "--tls", "--accept-proxy", "--events", "json", "127.0.0.1:0"])
                .await;
        let proxy = haproxy("", &format!("{} send-proxy-v2", server.addr())).await;
        let target = format!("localhost:{}", proxy.port);
        let done =
            streamtool(&["connect", "--tls", "-k", "--on-eof", "half-close", &target], b"over tls\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"over tls\n");
        let ok = poll_until(STEP, || server.proc.stderr().contains("\"event\":\"handshake\"")).await;
        assert!(ok, "{}", server.proc.stderr());
        let accepts = accept_events(&server.proc.stderr());
        let handshake =
            json_events(&server.proc.stderr()).into_iter().find(|e| e["event"] == "handshake").unwrap();
        assert_eq!(handshake["peer"], accepts[0]["peer"]);
        assert!(accepts[0]["proxy"].is_string(), "{accepts:?}");
        server.proc.signal("TERM");
        server.proc.finish().await.assert_code(0);
        drop(proxy);
    })
    .await;
}

/// `connect --proxy-protocol v1|v2` to haproxy's `bind ... accept-proxy` (which refuses
/// a connection without a valid header): the echo behind it answers, and haproxy logs
/// connect's own source address as the client.
async fn connect_sends(version: &str) {
    if !have_haproxy() {
        return;
    }
    let backend = Server::start(&["-k", "--echo", "127.0.0.1:0"]).await;
    let proxy = haproxy(" accept-proxy", &backend.addr()).await;
    let target = format!("127.0.0.1:{}", proxy.port);
    let done = streamtool(&["connect", "--proxy-protocol", version, &target], b"hello haproxy\n").await;
    done.assert_code(0);
    assert_eq!(done.stdout, b"hello haproxy\n");
    let logged = poll_until(STEP, || String::from_utf8_lossy(&proxy.proc.stdout()).contains("client=")).await;
    let log = String::from_utf8_lossy(&proxy.proc.stdout()).into_owned();
    assert!(logged && log.contains("client=127.0.0.1:"), "haproxy's log:\n{log}\n{}", proxy.proc.stderr());
    // Without a header haproxy refuses the connection: the header is what let it in.
    let bare = streamtool(&["connect", &target], b"hello\n").await;
    assert_ne!(bare.code, Some(0), "haproxy took a connection without a PROXY header");
}

#[tokio::test]
async fn connect_proxy_protocol_v1_to_haproxy_accept_proxy() {
    timeout(connect_sends("v1")).await;
}

#[tokio::test]
async fn connect_proxy_protocol_v2_to_haproxy_accept_proxy() {
    timeout(connect_sends("v2")).await;
}

/// The line serve writes for a refused header, naming the connection's peer.
fn refused_line(stderr: &str, peer: &str) -> Option<String> {
    stderr.lines().find(|l| l.contains(&format!("PROXY header from {peer} refused"))).map(str::to_string)
}

/// A garbage header closes that connection with one line naming the peer; the next
/// client (a valid v1 header) is served.
#[tokio::test]
async fn a_garbage_header_is_refused_and_serving_goes_on() {
    timeout(async {
        let server = Server::start(&["-k", "--echo", "--accept-proxy", "127.0.0.1:0"]).await;
        let mut bad = TcpStream::connect(server.addr()).await.unwrap();
        let peer = bad.local_addr().unwrap().to_string();
        bad.write_all(b"GARBAGE\r\n").await.unwrap();
        let mut buf = Vec::new();
        // Closed by the server: EOF or a reset (the rest of the line was never read).
        let _ =
            tokio::time::timeout(STEP, bad.read_to_end(&mut buf)).await.expect("the connection stayed open");
        assert!(buf.is_empty());
        server.proc.wait_stderr(&format!("PROXY header from {peer} refused")).await;
        let line = refused_line(&server.proc.stderr(), &peer).unwrap();
        assert!(line.ends_with("not a PROXY protocol header"), "{line}");
        let mut good = TcpStream::connect(server.addr()).await.unwrap();
        good.write_all(b"PROXY TCP4 192.0.2.9 127.0.0.1 4242 80\r\nnext").await.unwrap();
        good.shutdown().await.unwrap();
        assert_eq!(read_all(&mut good).await, b"next");
    })
    .await;
}

/// A header from a source outside `--proxy-from` is refused unread, with a line naming the
/// source and the trusted list; from loopback without `--proxy-from`, it is trusted.
#[tokio::test]
async fn an_untrusted_source_is_refused() {
    timeout(async {
        let server = Server::start(&[
            "-k",
            "--echo",
            "--accept-proxy",
            "--proxy-from",
            "127.0.0.2",
            "--events",
            "json",
            "127.0.0.1:0",
        ])
        .await;
        let mut from_1 = TcpStream::connect(server.addr()).await.unwrap();
        let peer = from_1.local_addr().unwrap().to_string();
        from_1.write_all(b"PROXY TCP4 192.0.2.9 127.0.0.1 4242 80\r\nx").await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(STEP, from_1.read_to_end(&mut buf))
            .await
            .expect("the connection stayed open");
        assert!(buf.is_empty(), "an untrusted connection was served");
        server.proc.wait_stderr(&format!("PROXY header from {peer} refused")).await;
        // The close event follows the warning line.
        server.proc.wait_stderr("\"event\":\"close\"").await;
        let line = refused_line(&server.proc.stderr(), &peer).unwrap();
        assert!(line.ends_with("not a trusted proxy (trusted: 127.0.0.2/32)"), "{line}");
        let close = json_events(&server.proc.stderr()).into_iter().find(|e| e["event"] == "close").unwrap();
        assert_eq!(close["peer"], peer);
        assert!(close["reason"].as_str().unwrap().starts_with("proxy: not a trusted proxy"), "{close}");
        // From 127.0.0.2 it is trusted.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut from_2 = socket.connect(server.addr().parse().unwrap()).await.unwrap();
        from_2.write_all(b"PROXY TCP4 192.0.2.9 127.0.0.1 4242 80\r\nok").await.unwrap();
        from_2.shutdown().await.unwrap();
        assert_eq!(read_all(&mut from_2).await, b"ok");
        let ok = poll_until(STEP, || server.proc.stderr().contains("\"peer\":\"192.0.2.9:4242\"")).await;
        assert!(ok, "{}", server.proc.stderr());
    })
    .await;
}

/// A client that sends half a header and stalls is closed after the limit
/// (`--handshake-timeout 1s`), with a line naming it; meanwhile another client is served
/// at once.
#[tokio::test]
async fn a_stalled_header_is_closed_after_the_limit_and_others_are_served() {
    timeout(async {
        let server =
            Server::start(&["-k", "--echo", "--accept-proxy", "--handshake-timeout", "1s", "127.0.0.1:0"])
                .await;
        let mut stalled = TcpStream::connect(server.addr()).await.unwrap();
        let peer = stalled.local_addr().unwrap().to_string();
        stalled.write_all(b"PROXY TCP4 192.0.2.9 127.").await.unwrap();
        let started = std::time::Instant::now();
        // Another client is served while the first one stalls.
        let mut other = TcpStream::connect(server.addr()).await.unwrap();
        other.write_all(b"PROXY UNKNOWN\r\nmeanwhile").await.unwrap();
        other.shutdown().await.unwrap();
        assert_eq!(read_all(&mut other).await, b"meanwhile");
        assert!(started.elapsed() < Duration::from_secs(1), "the other client waited for the stalled one");
        let mut buf = Vec::new();
        let n = tokio::time::timeout(STEP, stalled.read_to_end(&mut buf)).await.expect("never closed");
        assert_eq!(n.unwrap(), 0);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
        let line = server.proc.wait_stderr(&format!("PROXY header from {peer} refused")).await;
        let line = refused_line(&line, &peer).unwrap();
        assert!(line.ends_with("no complete PROXY header within 1s"), "{line}");
    })
    .await;
}

/// `serve --accept-proxy` without -k: the one client is the one the header names.
#[tokio::test]
async fn one_client_serve_reads_the_header_too() {
    timeout(async {
        let server = Server::start(&["--echo", "--accept-proxy", "--events", "json", "127.0.0.1:0"]).await;
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client.write_all(b"PROXY TCP6 2001:db8::1 ::1 5000 80\r\nsix").await.unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(read_all(&mut client).await, b"six");
        let done = server.proc.finish().await;
        done.assert_code(0);
        let accepts = accept_events(&done.stderr);
        assert_eq!(accepts[0]["peer"], "[2001:db8::1]:5000", "{}", done.stderr);
    })
    .await;
}

/// `--exec`/`--sh-exec` behind `--accept-proxy`: the command's `STREAMTOOL_PEER`,
/// `STREAMTOOL_PEER_ADDR` and `STREAMTOOL_PEER_PORT` are the client the header names.
#[tokio::test]
async fn exec_sees_the_real_client() {
    timeout(async {
        let script = "echo \"$STREAMTOOL_PEER $STREAMTOOL_PEER_ADDR $STREAMTOOL_PEER_PORT\"";
        let server = Server::start(&["-k", "--sh-exec", script, "--accept-proxy", "127.0.0.1:0"]).await;
        for (header, expected) in [
            (
                &b"PROXY TCP4 192.0.2.9 127.0.0.1 4242 80\r\n"[..],
                "192.0.2.9:4242 192.0.2.9 4242\n".to_string(),
            ),
            (b"PROXY UNKNOWN\r\n", String::new()),
        ] {
            let mut client = TcpStream::connect(server.addr()).await.unwrap();
            let own = client.local_addr().unwrap();
            client.write_all(header).await.unwrap();
            client.shutdown().await.unwrap();
            let back = String::from_utf8(read_all(&mut client).await).unwrap();
            // UNKNOWN: the connection's own peer (the proxy) is the client.
            let expected =
                if expected.is_empty() { format!("{own} {} {}\n", own.ip(), own.port()) } else { expected };
            assert_eq!(back, expected);
        }
    })
    .await;
}

/// `pipe tcp-listen:0 tcp:HAPROXY,proxy-protocol=v1|v2` in front of haproxy's
/// `accept-proxy` bind: haproxy's log names the test's own client socket (accepted by
/// pipe), not pipe's outgoing connection; the echo behind haproxy answers byte-exact.
async fn pipe_sends(version: &str) {
    if !have_haproxy() {
        return;
    }
    let backend = Server::start(&["-k", "--echo", "127.0.0.1:0"]).await;
    let proxy = haproxy(" accept-proxy", &backend.addr()).await;
    let outgoing = format!("tcp:127.0.0.1:{},proxy-protocol={version}", proxy.port);
    let pipe =
        Server::listening(Proc::streamtool(&["pipe", "tcp-listen:127.0.0.1:0", &outgoing], Input::Open))
            .await;
    let data = payload(11, 256 * 1024);
    let (client, back) = round_trip(pipe.port, &data).await;
    assert_eq!((back.len(), sha256(&back)), (data.len(), sha256(&data)), "the echo differs");
    pipe.proc.finish().await.assert_code(0);
    let expected = format!("client={client}");
    let logged = poll_until(STEP, || String::from_utf8_lossy(&proxy.proc.stdout()).contains(&expected)).await;
    assert!(logged, "haproxy did not log {expected}:\n{}", String::from_utf8_lossy(&proxy.proc.stdout()));
}

#[tokio::test]
async fn pipe_proxy_protocol_v1_names_the_accepted_client_to_haproxy() {
    timeout(pipe_sends("v1")).await;
}

#[tokio::test]
async fn pipe_proxy_protocol_v2_names_the_accepted_client_to_haproxy() {
    timeout(pipe_sends("v2")).await;
}

/// A chain: haproxy (`send-proxy-v2`) -> `pipe tcp-listen:0,fork,accept-proxy
/// tcp:SERVE,proxy-protocol=v1` -> `serve --accept-proxy`: the client haproxy accepted
/// reaches the end of the chain as the peer of serve's events.
#[tokio::test]
async fn the_client_survives_a_chain_of_proxies() {
    if !have_haproxy() {
        return;
    }
    timeout(async {
        let server =
            Server::start(&["-k", "--echo", "--accept-proxy", "--events", "json", "127.0.0.1:0"]).await;
        let outgoing = format!("tcp:{},proxy-protocol=v1", server.addr());
        let pipe = Server::listening(Proc::streamtool(
            &["--events", "json", "pipe", "tcp-listen:127.0.0.1:0,fork,accept-proxy", &outgoing],
            Input::Open,
        ))
        .await;
        let proxy = haproxy("", &format!("{} send-proxy-v2", pipe.addr())).await;
        let (client, back) = round_trip(proxy.port, b"through two proxies").await;
        assert_eq!(back, b"through two proxies");
        let done = poll_until(STEP, || server.proc.stderr().contains("\"event\":\"close\"")).await;
        assert!(done, "{}", server.proc.stderr());
        assert_eq!(
            accept_events(&server.proc.stderr())[0]["peer"],
            client.to_string(),
            "{}",
            server.proc.stderr()
        );
        let ok = poll_until(STEP, || !accept_events(&pipe.proc.stderr()).is_empty()).await;
        assert!(ok);
        let at_pipe = &accept_events(&pipe.proc.stderr())[0];
        assert_eq!(at_pipe["peer"], client.to_string(), "{}", pipe.proc.stderr());
        assert!(at_pipe["proxy"].is_string(), "{at_pipe}");
    })
    .await;
}

/// `pipe tls-listen:0,fork tcp:BACKEND,proxy-protocol=v2`, a TLS terminator: the header
/// the backend reads (with the library's parser) names the TLS client, and carries
/// PP2_TYPE_SSL with the version and PP2_TYPE_AUTHORITY with the SNI; the data follows it
/// untouched.
#[tokio::test]
async fn a_tls_terminator_sends_the_version_and_sni_as_tlvs() {
    use streamtool::proxy_protocol::{PP2_TYPE_SSL, read_header};
    timeout(async {
        let (port, backend) = tcp_server(|mut stream| async move {
            let header = read_header(&mut stream, STEP).await.expect("a PROXY header");
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            (header, rest)
        })
        .await;
        let outgoing = format!("tcp:127.0.0.1:{port},proxy-protocol=v2");
        let pipe = Server::listening(Proc::streamtool(
            &["pipe", "tls-listen:127.0.0.1:0,fork", &outgoing],
            Input::Open,
        ))
        .await;
        let client = Proc::streamtool(
            &["connect", "--tls", "-k", "--on-eof", "half-close", "-v", &pipe.localhost()],
            Input::Bytes(b"after the header".to_vec()),
        );
        let (header, rest) = backend.await.unwrap();
        assert_eq!(rest, b"after the header");
        client.signal("TERM");
        let (source, destination) = header.addresses.expect("the client's addresses");
        assert!(source.ip().is_loopback() && source.port() != 0, "{source}");
        assert_eq!(destination.port(), pipe.port);
        assert_eq!(header.ssl_version().as_deref(), Some("TLSv1.3"));
        assert_eq!(header.authority().as_deref(), Some("localhost"));
        assert_eq!(header.tlv(PP2_TYPE_SSL).unwrap()[0], 1, "PP2_CLIENT_SSL");
        drop(client);
    })
    .await;
}

/// Misused PROXY options are usage errors (exit 2) with one line naming the option.
#[tokio::test]
async fn misused_proxy_options_are_usage_errors() {
    timeout(async {
        for (args, needle) in [
            (&["serve", "--proxy-from", "10.0.0.0/8"][..], "--accept-proxy"),
            (&["serve", "--accept-proxy", "--proxy-from", "10.0.0.0/33"], "invalid prefix length \"33\""),
            (&["serve", "--accept-proxy", "--proxy-from", "localhost"], "invalid address \"localhost\""),
            (&["connect", "--proxy-protocol", "v3", "127.0.0.1:1"], "expected v1 or v2"),
            (&["pipe", "tcp-listen:0,proxy-from=10.0.0.1", "-"], "proxy-from needs accept-proxy"),
            (&["pipe", "unix-listen:/tmp/x.sock,accept-proxy", "-"], "accept-proxy applies to tcp-listen"),
            (&["pipe", "-", "unix:/tmp/x.sock,proxy-protocol=v2"], "proxy-protocol applies to tcp: and tls:"),
            (&["pipe", "-", "tcp:127.0.0.1:1,proxy-protocol=v9"], "expected v1 or v2"),
        ] {
            let done = streamtool(args, b"").await;
            done.assert_code(2);
            assert!(done.stderr.contains(needle), "{args:?}: no {needle:?} in:\n{}", done.stderr);
        }
    })
    .await;
}

/// `connect --tls --proxy-protocol v1` to `serve --tls --accept-proxy`: the header goes
/// first, before the TLS handshake, and names connect's own socket (so the accept event's
/// peer and proxy are the same address).
#[tokio::test]
async fn connect_sends_the_header_before_its_tls_handshake() {
    timeout(async {
        let server =
            Server::start(&["--echo", "--tls", "--accept-proxy", "--events", "json", "127.0.0.1:0"]).await;
        let args = [
            "connect",
            "--tls",
            "-k",
            "--on-eof",
            "half-close",
            "--proxy-protocol",
            "v1",
            &server.localhost(),
        ];
        let done = streamtool(&args, b"tls after the header\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"tls after the header\n");
        let served = server.proc.finish().await;
        served.assert_code(0);
        let accept = accept_events(&served.stderr).remove(0);
        assert_eq!(accept["peer"], accept["proxy"], "{accept}");
        assert!(served.stderr.contains("\"event\":\"handshake\""), "{}", served.stderr);
    })
    .await;
}
