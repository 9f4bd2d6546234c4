//! Datagrams (issue 21) against peers nobody here wrote: `connect -u` with a Python UDP
//! echo server, `ncat -u -l --exec /bin/cat` and `socat UDP-RECVFROM:…,fork EXEC:cat`;
//! `serve -u -k --echo` with OpenBSD `nc -u`, `ncat -u`, `socat - UDP:` and a Python
//! client at once; `serve -u --sh-exec` and its peer environment; `pipe` between
//! `udp-listen:`, `tcp:`, `tcp-listen:` and `udp:` with ncat, nc and Python; UNIX datagram
//! sockets with a Python `AF_UNIX`/`SOCK_DGRAM` server; the refusals (a closed port, an
//! oversized line, flags that do not apply, a path that is no socket); and memory that
//! stays bounded while a Python peer floods a client whose stdout is not read.
//!
//! Readiness: a Python peer prints its port once bound, a streamtool listener its
//! `listening on` line, a UDP peer on a fixed port its socket in `/proc/net/udp`, a TCP
//! peer its listening socket. A client whose stdin must stay open until its reply (ncat
//! and socat end at stdin's end, nc one second later) holds it open until the reply is
//! in its output file.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{BIN, json_events, parse_port, s};
use crate::support::peers::{Done, Job, Lab, digest, need, wait_for};

/// The bound on one client or one server's end.
const LIMIT: Duration = Duration::from_secs(30);

/// A UDP echo server: prints its port, then for each datagram `SRCPORT LEN HEX` (after
/// echoing it); ends after 30 s without one.
const UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(30)
while True:
    try:
        data, peer = s.recvfrom(70000)
    except socket.timeout:
        break
    s.sendto(data, peer)
    print(peer[1], len(data), data.hex(), flush=True)
"#;

/// A UNIX datagram echo server bound at argv[1]: prints `ready`, then for each datagram
/// `ADDRHEX LEN HEX` (the client's address in hex: an abstract one starts with 00).
const UNIX_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
s.settimeout(30)
while True:
    try:
        data, peer = s.recvfrom(70000)
    except socket.timeout:
        break
    s.sendto(data, peer)
    addr = peer if isinstance(peer, bytes) else peer.encode()
    print(addr.hex() or "-", len(data), data.hex(), flush=True)
"#;

/// A UDP client: `PORT OUT COUNT DATAGRAM...`. Binds 127.0.0.1:0 and prints its port,
/// sends each DATAGRAM (`@FILE`: the file's bytes; else the text with `\n` made a
/// newline), receives COUNT datagrams (0: until as many bytes as it sent), writes them
/// to OUT and prints their lengths (`lens 1400,4`). A wait over 10 s is a failure.
const UDP_CLIENT: &str = r#"
import socket, sys
port, out, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def datagram(arg):
    if arg.startswith("@"):
        return open(arg[1:], "rb").read()
    return arg.replace("\\n", "\n").encode()
datagrams = [datagram(a) for a in sys.argv[4:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(10)
print(s.getsockname()[1], flush=True)
for d in datagrams:
    s.sendto(d, ("127.0.0.1", port))
got, want = [], sum(len(d) for d in datagrams)
while (len(got) < count) if count else (sum(map(len, got)) < want):
    got.append(s.recvfrom(70000)[0])
open(out, "wb").write(b"".join(got))
print("lens", ",".join(str(len(d)) for d in got), flush=True)
"#;

/// A UDP flooder: prints its port; at the first datagram, sends its sender 20,000
/// datagrams of 1,000 bytes (`%08d` sequence number, 991 `x`, LF) or as many as 10 s
/// allow, then prints `sent N`.
const UDP_FLOOD: &str = r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(30)
data, peer = s.recvfrom(70000)
start, sent = time.monotonic(), 0
while sent < 20000 and time.monotonic() - start < 10:
    s.sendto(b"%08d" % sent + b"x" * 991 + b"\n", peer)
    sent += 1
print("sent", sent, flush=True)
"#;

// ---------------------------------------------------------------------------------------
// Local helpers

/// Writes `text` to `$D/NAME` (a Python peer).
fn script(lab: &Lab, name: &str, text: &str) {
    std::fs::write(lab.path(name), text).unwrap();
}

/// Waits until `job`'s stdout has a complete first line and returns it.
fn first_line(job: &mut Job) -> String {
    let mut line = None;
    let ok = wait_for(LIMIT, || {
        let out = String::from_utf8_lossy(&job.stdout_now()).into_owned();
        line = out.split_inclusive('\n').next().filter(|l| l.ends_with('\n')).map(|l| l.trim().to_string());
        line.is_some() || !job.running()
    });
    match line {
        Some(line) if ok => line,
        _ => panic!("no first line on stdout: {}\n  stderr: {}", digest(&job.stdout_now()), job.stderr_now()),
    }
}

/// The Python UDP echo server (`$D/udp_echo.py`), and its port.
fn udp_echo(lab: &Lab, name: &str) -> (Job, u16) {
    script(lab, "udp_echo.py", UDP_ECHO);
    let mut job = lab.sh(name, "exec python3 \"$D/udp_echo.py\"");
    let port = first_line(&mut job).parse().expect("the echo server prints its port");
    (job, port)
}

/// The datagrams a [`UDP_ECHO`] server logged: (source port, bytes).
fn echoed(job: &Job) -> Vec<(u16, Vec<u8>)> {
    let out = String::from_utf8_lossy(&job.stdout_now()).into_owned();
    out.lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split(' ');
            let port = cols.next()?.parse().ok()?;
            let _len = cols.next()?;
            Some((port, unhex(cols.next().unwrap_or(""))))
        })
        .collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// Whether a UDP socket is bound to `port` (`/proc/net/udp`, `udp6`).
fn udp_bound(port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|line| line.split_whitespace().nth(1).is_some_and(|local| local.ends_with(&suffix)))
    })
}

/// Starts `script`, a UDP server on `port`, and waits until its socket is bound.
fn start_udp(lab: &Lab, name: &str, script: &str, port: u16) -> Job {
    let mut job = lab.sh(name, script);
    let bound = wait_for(LIMIT, || udp_bound(port) || !job.running());
    assert!(bound && job.running(), "never bound udp port {port}: {}", job.stop().summary());
    job
}

/// Starts a streamtool listener (`exec "$ST" ...`) and returns it with the port of its
/// complete `listening on` line.
fn listener(lab: &Lab, name: &str, script: &str) -> (Job, u16) {
    let mut job = lab.sh(name, script);
    job.wait_stderr("listening on", LIMIT);
    let mut port = None;
    let complete = wait_for(LIMIT, || {
        let err = job.stderr_now();
        let line = err.lines().find(|l| l.contains("listening on")).unwrap_or("");
        port = err.contains(&format!("{line}\n")).then(|| parse_port(&err)).flatten();
        port.is_some()
    });
    assert!(complete, "no port in the listening line: {}", job.stderr_now());
    (job, port.unwrap())
}

/// A shell line: `client` (a UDP client reading its stdin) gets `payload` as one line,
/// its stdin held open until the payload is back in `$D/NAME.out` (the job's stdout) or
/// 10 s pass.
fn held(name: &str, payload: &str, client: &str) -> String {
    format!(
        "{{ printf '%s\\n' '{payload}'; n=0; until grep -qxF '{payload}' \"$D/{name}.out\" || [ $n -ge 500 ]; \
         do n=$((n+1)); sleep 0.02; done; }} | {client}"
    )
}

/// Sends SIGTERM to `job` (a `exec "$ST" ...` script) and waits for it to exit.
fn terminate(job: Job) -> Done {
    let status = Command::new("kill").args(["-TERM", &job.pid().to_string()]).status().unwrap();
    assert!(status.success());
    job.wait(LIMIT)
}

/// Asserts exit `code`, showing the job otherwise.
#[track_caller]
fn exited(done: &Done, code: i32) {
    assert_eq!(done.code, Some(code), "{}", done.summary());
}

/// The `close` events in `stderr`.
fn closes(stderr: &str) -> Vec<serde_json::Value> {
    json_events(stderr).into_iter().filter(|e| e["event"] == "close").collect()
}

// ---------------------------------------------------------------------------------------
// 1. connect -u

/// `connect -u` sends each stdin line as one datagram and writes the replies: the
/// Python echo server logs three datagrams, one per line, and the close event counts
/// three each way; with ncat (`-u -l -k --exec /bin/cat`) and socat
/// (`UDP-RECVFROM:PORT,fork EXEC:cat`, a `cat` per datagram, so in any order) the lines
/// come back. Every client exits 0.
#[test]
fn connect_u_exchanges_lines_as_datagrams_with_python_ncat_and_socat() {
    if !need(&["python3", "ncat", "socat"]) {
        return;
    }
    let lab = Lab::new("connect -u / python echo, ncat -u --exec cat, socat UDP-RECVFROM EXEC:cat");
    let (server, port) = udp_echo(&lab, "python-echo");
    let lines = "one\ntwo\nthree\n";
    let client = lab
        .sh(
            "connect-python",
            &format!(
                "printf 'one\\ntwo\\nthree\\n' | exec \"$ST\" connect -u --events json 127.0.0.1:{port}"
            ),
        )
        .wait(LIMIT);
    exited(&client, 0);
    assert_eq!(client.out, lines.as_bytes(), "{}", client.summary());
    let got: Vec<Vec<u8>> = echoed(&server).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, [&b"one\n"[..], b"two\n", b"three\n"], "one datagram per line");
    let close = closes(&client.err);
    assert_eq!(close.len(), 1, "{}", client.err);
    assert_eq!(
        (close[0]["datagrams_sent"].as_u64(), close[0]["datagrams_received"].as_u64()),
        (Some(3), Some(3))
    );
    // The default reply wait is 2 s after stdin's end.
    assert!(client.elapsed >= Duration::from_secs(2), "{}", client.summary());

    let (ncat_port, socat_port) = (closed_udp_port(), closed_udp_port());
    let ncat = format!("exec ncat -u -l -k 127.0.0.1 {ncat_port} --exec /bin/cat");
    let _ncat = start_udp(&lab, "ncat", &ncat, ncat_port);
    let socat = format!("exec socat UDP-RECVFROM:{socat_port},bind=127.0.0.1,fork EXEC:cat");
    let _socat = start_udp(&lab, "socat", &socat, socat_port);
    for (name, port) in [("connect-ncat", ncat_port), ("connect-socat", socat_port)] {
        let script = format!(
            "printf 'one\\ntwo\\nthree\\n' | exec \"$ST\" connect -u --idle-timeout 1s 127.0.0.1:{port}"
        );
        let done = lab.sh(name, &script).wait(LIMIT);
        exited(&done, 0);
        // socat forks a `cat` per datagram: the replies may cross.
        let mut got: Vec<&[u8]> = done.out.split_inclusive(|b| *b == b'\n').collect();
        got.sort_unstable();
        assert_eq!(got, [&b"one\n"[..], b"three\n", b"two\n"], "{}", done.summary());
    }
}

// ---------------------------------------------------------------------------------------
// 2. and 3. serve -u

/// `serve -u -k --echo` serves four peers started together, OpenBSD `nc -u -w1`,
/// `ncat -u`, `socat - UDP:` and a Python client: each gets back exactly its own payload
/// and exits 0; after SIGTERM (exit 0) there is one close event per peer, each counting
/// one datagram and the payload's bytes each way.
#[test]
fn serve_u_k_echo_serves_nc_ncat_socat_and_python_at_once() {
    if !need(&["python3", "ncat", "socat", "nc"]) {
        return;
    }
    let lab = Lab::new("serve -u -k --echo / nc -u, ncat -u, socat UDP:, python at once");
    script(&lab, "client.py", UDP_CLIENT);
    let (server, port) = listener(&lab, "serve", "exec \"$ST\" serve -u -k --echo --events json 0");
    let clients = [
        ("nc", "payload-of-nc", format!("nc -u -w1 127.0.0.1 {port}")),
        ("ncat", "payload-of-ncat", format!("ncat -u 127.0.0.1 {port}")),
        ("socat", "payload-of-socat", format!("socat - UDP:127.0.0.1:{port}")),
    ];
    let mut jobs: Vec<(Job, &str)> = clients
        .iter()
        .map(|(name, payload, cmd)| (lab.sh(name, &held(name, payload, cmd)), *payload))
        .collect();
    let python = lab.sh(
        "python",
        &format!("exec python3 \"$D/client.py\" {port} \"$D/python.got\" 1 'payload-of-python\\n'"),
    );
    for (job, payload) in jobs.drain(..) {
        let done = job.wait(LIMIT);
        exited(&done, 0);
        assert_eq!(done.out, format!("{payload}\n").as_bytes(), "{}", done.summary());
    }
    let python = python.wait(LIMIT);
    exited(&python, 0);
    assert_eq!(
        std::fs::read(lab.path("python.got")).unwrap(),
        b"payload-of-python\n",
        "{}",
        python.summary()
    );
    let done = terminate(server);
    exited(&done, 0);
    let close = closes(&done.err);
    assert_eq!(close.len(), 4, "one close event per peer: {}", done.err);
    let mut lengths: Vec<u64> = close
        .iter()
        .map(|c| {
            assert_eq!(c["datagrams_received"], 1, "{c}");
            assert_eq!(c["datagrams_sent"], 1, "{c}");
            assert_eq!(c["bytes_received"], c["bytes_sent"], "{c}");
            c["bytes_received"].as_u64().unwrap()
        })
        .collect();
    lengths.sort_unstable();
    let mut want: Vec<u64> =
        ["nc", "ncat", "socat", "python"].map(|p| format!("payload-of-{p}\n").len() as u64).to_vec();
    want.sort_unstable();
    assert_eq!(lengths, want, "each peer's payload: {}", done.err);
    let mut peers: Vec<&str> = close.iter().map(|c| c["peer"].as_str().unwrap()).collect();
    peers.sort_unstable();
    peers.dedup();
    assert_eq!(peers.len(), 4, "four peers: {peers:?}");
}

/// `serve -u -k --sh-exec` runs a command per peer with the peer in its environment:
/// three Python clients at once each get `127.0.0.1 THEIR_PORT THEIR_LINE` back, the
/// port being the one each client bound.
#[test]
fn serve_u_sh_exec_tells_each_peer_its_own_port() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("serve -u -k --sh-exec STREAMTOOL_PEER_PORT / python clients");
    script(&lab, "client.py", UDP_CLIENT);
    let (server, port) = listener(
        &lab,
        "serve",
        "exec \"$ST\" serve -u -k --sh-exec 'read line; echo \"$STREAMTOOL_PEER_ADDR $STREAMTOOL_PEER_PORT $line\"' 0",
    );
    let jobs: Vec<Job> = (0..3)
        .map(|i| {
            let cmd = format!("exec python3 \"$D/client.py\" {port} \"$D/c{i}.got\" 1 'hello-{i}\\n'");
            lab.sh(&format!("client-{i}"), &cmd)
        })
        .collect();
    for (i, job) in jobs.into_iter().enumerate() {
        let done = job.wait(LIMIT);
        exited(&done, 0);
        let own = String::from_utf8_lossy(&done.out).lines().next().unwrap_or("").to_string();
        let got = std::fs::read(lab.path(&format!("c{i}.got"))).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            format!("127.0.0.1 {own} hello-{i}\n"),
            "client {i} bound port {own}: {}",
            done.summary()
        );
    }
    exited(&terminate(server), 0);
}

// ---------------------------------------------------------------------------------------
// 4. and 5. pipe

/// `pipe udp-listen:127.0.0.1:0,fork tcp:` to `ncat -l -k --exec /bin/cat`: three UDP
/// clients (nc, ncat, socat) each get their line back through a TCP connection of their
/// own; the pipe keeps serving and exits 0 at SIGTERM.
#[test]
fn pipe_udp_listen_fork_to_tcp_serves_three_udp_clients() {
    if !need(&["ncat", "socat", "nc"]) {
        return;
    }
    let lab = Lab::new("pipe udp-listen:,fork tcp: / ncat --exec cat; nc, ncat, socat UDP clients");
    let mut backend = lab.sh("backend", "exec ncat -l -k 127.0.0.1 $N --exec /bin/cat");
    lab.wait_listening(lab.n, &mut backend);
    let (mut pipe, port) =
        listener(&lab, "pipe", "exec \"$ST\" pipe udp-listen:127.0.0.1:0,fork tcp:127.0.0.1:$N");
    let clients = [
        ("nc", "line-via-nc", format!("nc -u -w1 127.0.0.1 {port}")),
        ("ncat", "line-via-ncat", format!("ncat -u 127.0.0.1 {port}")),
        ("socat", "line-via-socat", format!("socat - UDP:127.0.0.1:{port}")),
    ];
    let jobs: Vec<(Job, &str)> = clients
        .iter()
        .map(|(name, payload, cmd)| (lab.sh(name, &held(name, payload, cmd)), *payload))
        .collect();
    for (job, payload) in jobs {
        let done = job.wait(LIMIT);
        exited(&done, 0);
        assert_eq!(done.out, format!("{payload}\n").as_bytes(), "{}", done.summary());
    }
    assert!(pipe.running() && backend.running(), "{}", pipe.stderr_now());
    exited(&terminate(pipe), 0);
}

/// `pipe tcp-listen:127.0.0.1:0,fork udp:` to the Python echo server, driven by `nc -N`
/// and ncat: each gets its lines back and exits 0; the server saw one datagram per line,
/// from a fresh UDP socket (another source port) for each TCP connection.
#[test]
fn pipe_tcp_listen_fork_to_udp_frames_lines_for_nc_and_ncat() {
    if !need(&["python3", "ncat", "nc"]) {
        return;
    }
    let lab = Lab::new("pipe tcp-listen:,fork udp: / python echo; nc -N, ncat");
    let (echo, echo_port) = udp_echo(&lab, "python-echo");
    let (pipe, port) = listener(
        &lab,
        "pipe",
        &format!("exec \"$ST\" pipe tcp-listen:127.0.0.1:0,fork udp:127.0.0.1:{echo_port}"),
    );
    let nc = lab.sh("nc", &format!("printf 'nc-1\\nnc-2\\n' | exec nc -N 127.0.0.1 {port}")).wait(LIMIT);
    exited(&nc, 0);
    assert_eq!(nc.out, b"nc-1\nnc-2\n", "{}", nc.summary());
    let ncat =
        lab.sh("ncat", &format!("printf 'ncat-1\\nncat-2\\n' | exec ncat 127.0.0.1 {port}")).wait(LIMIT);
    exited(&ncat, 0);
    assert_eq!(ncat.out, b"ncat-1\nncat-2\n", "{}", ncat.summary());
    let seen = echoed(&echo);
    let data: Vec<&[u8]> = seen.iter().map(|(_, d)| d.as_slice()).collect();
    assert_eq!(data, [&b"nc-1\n"[..], b"nc-2\n", b"ncat-1\n", b"ncat-2\n"], "one datagram per line");
    assert!(seen[0].0 == seen[1].0 && seen[2].0 == seen[3].0 && seen[0].0 != seen[2].0, "{seen:?}");
    exited(&terminate(pipe), 0);
}

/// `pipe udp-listen:127.0.0.1:0,fork udp:` relays datagram for datagram: a 1,400-byte
/// binary datagram (newlines inside, none at its end) and a two-line datagram reach the
/// Python echo server whole and come back whole (SHA-256 of what the client received,
/// two datagrams of 1400 and 10 bytes).
#[test]
fn pipe_udp_listen_fork_to_udp_relays_datagram_for_datagram() {
    if !need(&["python3"]) {
        return;
    }
    let mut lab = Lab::new("pipe udp-listen:,fork udp: / python echo, python client");
    let big = lab.big(1400);
    assert!(big.contains(&b'\n') && big.last() != Some(&b'\n'), "the payload tests what it says");
    script(&lab, "client.py", UDP_CLIENT);
    let (echo, echo_port) = udp_echo(&lab, "python-echo");
    let (pipe, port) = listener(
        &lab,
        "pipe",
        &format!("exec \"$ST\" pipe udp-listen:127.0.0.1:0,fork udp:127.0.0.1:{echo_port}"),
    );
    let client = lab
        .sh(
            "client",
            &format!("exec python3 \"$D/client.py\" {port} \"$D/got.bin\" 2 \"@$BIG\" 'two\\nlines\\n'"),
        )
        .wait(LIMIT);
    exited(&client, 0);
    assert!(String::from_utf8_lossy(&client.out).contains("lens 1400,10\n"), "{}", client.summary());
    let mut want = big.clone();
    want.extend_from_slice(b"two\nlines\n");
    let got = std::fs::read(lab.path("got.bin")).unwrap();
    assert!(got == want, "received {}, sent {}", digest(&got), digest(&want));
    let seen: Vec<Vec<u8>> = echoed(&echo).into_iter().map(|(_, d)| d).collect();
    assert!(seen.len() == 2 && seen[0] == big && seen[1] == b"two\nlines\n", "the server saw {seen:?}");
    exited(&terminate(pipe), 0);
}

// ---------------------------------------------------------------------------------------
// 6. Refusals

/// A UDP port nobody has bound (bound, then released).
fn closed_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `connect -u` to a closed UDP port: ICMP port unreachable is exit 3 and one line
/// naming `udp:127.0.0.1:PORT` and the refusal.
#[test]
fn connect_u_to_a_closed_port_is_exit_3_naming_it() {
    let lab = Lab::new("connect -u to a closed port");
    let port = closed_udp_port();
    let done =
        lab.sh("connect", &format!("printf 'x\\n' | exec \"$ST\" connect -u 127.0.0.1:{port}")).wait(LIMIT);
    exited(&done, 3);
    assert_eq!(
        done.err,
        format!("streamtool: cannot connect to udp:127.0.0.1:{port}: Connection refused (os error 111)\n"),
        "{}",
        done.summary()
    );
    assert!(done.out.is_empty(), "{}", done.summary());
}

/// A 70,000-byte line: exit 7 with one line naming the 65,507-byte maximum and the
/// peer, and the Python peer receives nothing (a marker datagram sent afterwards is the
/// first thing it logs).
#[test]
fn connect_u_refuses_an_oversized_line_and_sends_nothing() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("connect -u with a 70,000-byte line / python echo");
    let (echo, port) = udp_echo(&lab, "python-echo");
    let done = oversized_line(&lab, port);
    exited(&done, 7);
    let lines: Vec<&str> = done.err.lines().collect();
    assert_eq!(lines.len(), 1, "{}", done.summary());
    let tail = format!(" bytes is larger than the 65507-byte maximum for udp:127.0.0.1:{port}");
    assert!(
        lines[0].starts_with("streamtool: datagram of ") && lines[0].ends_with(&tail),
        "{}",
        done.summary()
    );
    let marker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    marker.send_to(b"marker\n", ("127.0.0.1", port)).unwrap();
    assert!(wait_for(LIMIT, || !echoed(&echo).is_empty()), "the marker never arrived");
    let seen: Vec<Vec<u8>> = echoed(&echo).into_iter().map(|(_, d)| d).collect();
    assert_eq!(seen, [b"marker\n".to_vec()], "the peer received something before the marker");
}

/// Runs `connect -u` to `port` with one 70,000-byte line (69,999 `a` and LF) on stdin.
fn oversized_line(lab: &Lab, port: u16) -> Done {
    let mut line = vec![b'a'; 69_999];
    line.push(b'\n');
    std::fs::write(lab.path("long.txt"), &line).unwrap();
    lab.sh("connect", &format!("exec \"$ST\" connect -u 127.0.0.1:{port} < \"$D/long.txt\"")).wait(LIMIT)
}

/// The oversized line's message names the line's size (70000 bytes).
#[test]
fn connect_u_oversized_line_message_names_the_line_size() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("connect -u with a 70,000-byte line: the size named");
    let (_echo, port) = udp_echo(&lab, "python-echo");
    let done = oversized_line(&lab, port);
    exited(&done, 7);
    assert_eq!(
        done.err,
        format!(
            "streamtool: datagram of 70000 bytes is larger than the 65507-byte maximum for udp:127.0.0.1:{port}\n"
        ),
        "{}",
        done.summary()
    );
}

/// Flags and options that do not apply to datagrams are usage errors (exit 2) naming
/// them: `connect -u --tls` names both flags, `pipe udp:…,crlf` names crlf; nothing is
/// sent (the port is 1).
#[test]
fn datagram_misfits_are_exit_2_naming_them() {
    let lab = Lab::new("connect -u --tls, pipe udp:,crlf");
    let tls = lab.sh("tls", "exec \"$ST\" connect -u --tls 127.0.0.1:1 < /dev/null").wait(LIMIT);
    exited(&tls, 2);
    assert_eq!(
        tls.err,
        "streamtool: the argument '--udp' cannot be used with '--tls'; see `streamtool connect --help`\n",
        "{}",
        tls.summary()
    );
    let crlf = lab.sh("crlf", "exec \"$ST\" pipe udp:127.0.0.1:1,crlf stdio < /dev/null").wait(LIMIT);
    exited(&crlf, 2);
    assert_eq!(crlf.err.lines().count(), 1, "{}", crlf.summary());
    assert!(
        crlf.err.contains(
            "endpoint \"udp:127.0.0.1:1,crlf\": crlf does not apply to datagram endpoints (udp, udp-listen, unix-dgram)"
        ),
        "{}",
        crlf.summary()
    );
}

/// `unix-dgram:` to a regular file and to a missing path, and `connect -u unix:` to the
/// file: exit 3, one line naming `unix-dgram:PATH` and why.
#[test]
fn unix_dgram_to_a_path_that_is_no_socket_is_exit_3_naming_it() {
    let lab = Lab::new("unix-dgram: to a regular file, a missing path");
    let file = lab.path("plain-file");
    std::fs::write(&file, "not a socket\n").unwrap();
    let missing = lab.path("missing");
    let cases = [
        (
            "pipe-file",
            format!("pipe stdio unix-dgram:{}", s(&file)),
            &file,
            "Connection refused (os error 111)",
        ),
        ("connect-file", format!("connect -u unix:{}", s(&file)), &file, "Connection refused (os error 111)"),
        (
            "pipe-missing",
            format!("pipe stdio unix-dgram:{}", s(&missing)),
            &missing,
            "No such file or directory (os error 2)",
        ),
    ];
    for (name, args, path, why) in cases {
        let done = lab.sh(name, &format!("exec \"$ST\" {args} < /dev/null")).wait(LIMIT);
        exited(&done, 3);
        assert_eq!(
            done.err,
            format!("streamtool: cannot connect to unix-dgram:{}: {why}\n", s(path)),
            "{}",
            done.summary()
        );
    }
}

// ---------------------------------------------------------------------------------------
// 7. UNIX datagram sockets

/// A Python `AF_UNIX`/`SOCK_DGRAM` echo server bound in the lab's directory:
/// `pipe stdio unix-dgram:PATH` and `connect -u unix:PATH` get their lines back and exit
/// 0; the server saw one datagram per line, each client from an abstract address (the
/// client binds one on Linux so that replies can reach it), a different one per client.
#[test]
fn unix_dgram_pipe_and_connect_with_a_python_server() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("pipe unix-dgram:, connect -u unix: / python AF_UNIX SOCK_DGRAM echo");
    script(&lab, "unix_echo.py", UNIX_ECHO);
    let mut server = lab.sh("python-echo", "exec python3 \"$D/unix_echo.py\" \"$D/echo.sock\"");
    assert_eq!(first_line(&mut server), "ready");
    let pipe = lab
        .sh(
            "pipe",
            "printf 'p-1\\np-2\\n' | exec \"$ST\" pipe stdio unix-dgram:\"$D/echo.sock\",idle-timeout=1s",
        )
        .wait(LIMIT);
    exited(&pipe, 0);
    assert_eq!(pipe.out, b"p-1\np-2\n", "{}", pipe.summary());
    let connect = lab
        .sh(
            "connect",
            "printf 'c-1\\nc-2\\n' | exec \"$ST\" connect -u --idle-timeout 1s unix:\"$D/echo.sock\"",
        )
        .wait(LIMIT);
    exited(&connect, 0);
    assert_eq!(connect.out, b"c-1\nc-2\n", "{}", connect.summary());
    let log = String::from_utf8_lossy(&server.stdout_now()).into_owned();
    let seen: Vec<(&str, Vec<u8>)> = log
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split(' ').collect();
            (cols[0], unhex(cols.get(2).copied().unwrap_or("")))
        })
        .collect();
    let data: Vec<&[u8]> = seen.iter().map(|(_, d)| d.as_slice()).collect();
    assert_eq!(data, [&b"p-1\n"[..], b"p-2\n", b"c-1\n", b"c-2\n"], "one datagram per line: {log}");
    assert!(
        seen.iter().all(|(addr, _)| addr.starts_with("00") && addr.len() > 2),
        "abstract addresses: {log}"
    );
    assert!(seen[0].0 == seen[1].0 && seen[2].0 == seen[3].0 && seen[0].0 != seen[2].0, "{log}");
}

/// A Python client bound to a path, talking to `serve -u` on a UNIX path.
const UNIX_CLIENT: &str = r#"
import socket, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.bind(sys.argv[2])
c.settimeout(10)
c.sendto(sys.argv[3].encode(), sys.argv[1])
sys.stdout.write(c.recv(65536).decode())
"#;

/// `serve -u -k --sh-exec` on a UNIX path: a Python client bound to a path and
/// `connect -u unix:` (an abstract name) each get their command's answer; an unnamed
/// sender cannot be answered and is said to be; SIGTERM ends it with exit 0 and removes
/// the socket file, which a stale one left before did not prevent.
#[test]
fn serve_u_on_a_unix_path_answers_named_and_abstract_peers() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("serve -u on a UNIX path / python AF_UNIX client, connect -u");
    script(&lab, "unix_client.py", UNIX_CLIENT);
    let path = lab.path("srv.sock");
    drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap()); // a stale file
    let mut server = lab.sh(
        "serve",
        "exec \"$ST\" serve -u -k --sh-exec 'while read -r l; do echo \"$l\" | tr a-z A-Z; done' \
         --events json unix:\"$D/srv.sock\"",
    );
    server.wait_stderr("listening on unix-dgram:", LIMIT);
    let python = lab
        .sh("python", "exec python3 \"$D/unix_client.py\" \"$D/srv.sock\" \"$D/cli.sock\" 'named\n'")
        .wait(LIMIT);
    exited(&python, 0);
    assert_eq!(python.out, b"NAMED\n", "{}", python.summary());
    let connect = lab
        .sh(
            "connect",
            "printf 'abstract\\n' | exec \"$ST\" connect -u --idle-timeout 1s unix:\"$D/srv.sock\"",
        )
        .wait(LIMIT);
    exited(&connect, 0);
    assert_eq!(connect.out, b"ABSTRACT\n", "{}", connect.summary());
    std::os::unix::net::UnixDatagram::unbound().unwrap().send_to(b"anonymous\n", &path).unwrap();
    server.wait_stderr("cannot be answered", LIMIT);
    let done = terminate(server);
    exited(&done, 0);
    assert!(!path.exists(), "the socket file is removed at the end");
    let peers: Vec<String> =
        closes(&done.err).iter().map(|c| c["peer"].as_str().unwrap_or_default().to_string()).collect();
    assert!(peers.iter().any(|p| p.ends_with("/cli.sock")), "{peers:?}");
    assert!(peers.iter().any(|p| p.starts_with("unix-dgram:@streamtool-")), "{peers:?}");
    assert!(peers.contains(&"unix-dgram:(unnamed)".to_string()), "{peers:?}");
}

// ---------------------------------------------------------------------------------------
// 8. Bounded memory

/// The most resident memory `connect -u` may use while flooded (VmHWM).
const FLOOD_RSS_KIB: u64 = 64 * 1024;

/// The peak resident memory (VmHWM, KiB) of a running process; `None` once it is gone.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// A Python peer floods `connect -u` (20,000 datagrams of 1,000 bytes at its one
/// request) while nobody reads its stdout (a pipe): it exits 0, its peak RSS stays
/// under 64 MiB, it says `dropped N datagrams` with N > 0, and the lines on stdout plus
/// the dropped datagrams are the datagrams received (its close event), each line whole
/// and in the order sent.
#[test]
fn connect_u_memory_stays_bounded_when_stdout_is_slow() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("connect -u flooded by python, stdout not read");
    script(&lab, "flood.py", UDP_FLOOD);
    let mut flood = lab.sh("flood", "exec python3 \"$D/flood.py\"");
    let port: u16 = first_line(&mut flood).parse().unwrap();
    let stderr = std::fs::File::create(lab.path("connect.err")).unwrap();
    let mut child = Command::new(BIN)
        .args(["connect", "-u", "--events", "json", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let pid = child.id();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }
    let mut peak = 0;
    let mut samples = 0;
    let mut sample = |peak: &mut u64| {
        if let Some(kib) = vm_hwm(pid) {
            *peak = (*peak).max(kib);
            samples += 1;
        }
    };
    let flooded = wait_for(LIMIT, || {
        sample(&mut peak);
        String::from_utf8_lossy(&flood.stdout_now()).contains("sent ")
    });
    assert!(flooded, "the flood never ended: {}", flood.stop().summary());
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let started = Instant::now();
    let status = loop {
        sample(&mut peak);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("connect -u did not exit within {LIMIT:?} after the flood");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = reader.join().unwrap().unwrap();
    let err = std::fs::read_to_string(lab.path("connect.err")).unwrap();
    let flood = flood.wait(LIMIT);
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(samples > 0, "VmHWM was never read");
    assert!(peak < FLOOD_RSS_KIB, "peak RSS {peak} KiB, over {FLOOD_RSS_KIB} KiB");
    check_flood_counts(&out, &err, port, &flood);
}

/// Lines on stdout + dropped == received, each line whole, in order; the `dropped N
/// datagrams` line agrees with the close event.
fn check_flood_counts(out: &[u8], err: &str, port: u16, flood: &Done) {
    let close = closes(err);
    assert_eq!(close.len(), 1, "{err}");
    let received = close[0]["datagrams_received"].as_u64().unwrap();
    let dropped = close[0]["datagrams_dropped"].as_u64().unwrap();
    let sent: u64 = String::from_utf8_lossy(&flood.out)
        .lines()
        .find_map(|l| l.strip_prefix("sent "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", flood.summary()));
    let lines: Vec<&[u8]> = out.split_inclusive(|b| *b == b'\n').collect();
    assert!(dropped > 0 && received <= sent, "received {received} of {sent}, dropped {dropped}");
    assert_eq!(lines.len() as u64 + dropped, received, "lines written + dropped == received: {err}");
    let mut last = None;
    for line in &lines {
        assert!(line.len() == 1000 && line.ends_with(b"\n"), "a cut line: {}", digest(line));
        let seq: u64 = String::from_utf8_lossy(&line[..8]).parse().unwrap();
        assert!(last.is_none_or(|l| seq > l), "out of order: {seq} after {last:?}");
        last = Some(seq);
    }
    let said = format!(
        "streamtool: udp:127.0.0.1:{port}: dropped {dropped} datagrams (the other side was slower and the queue full, an oversized one, or a peer that cannot be answered)"
    );
    assert!(err.lines().any(|l| l == said), "no {said:?} in:\n{err}");
}

/// `pipe stdio udp:` with a 70,000-byte line, ten times: each run is exit 7 with one
/// line naming the endpoint it was sent to, the line's size, the 65,507-byte maximum and
/// the peer.
#[test]
fn pipe_stdio_udp_refuses_an_oversized_line_with_exit_7_every_time() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("pipe stdio udp: with a 70,000-byte line / python echo");
    let (_echo, port) = udp_echo(&lab, "python-echo");
    let mut line = vec![b'a'; 69_999];
    line.push(b'\n');
    std::fs::write(lab.path("long.txt"), &line).unwrap();
    let tail = format!(" is larger than the 65507-byte maximum for udp:127.0.0.1:{port}");
    for i in 0..10 {
        let script = format!("exec \"$ST\" pipe stdio udp:127.0.0.1:{port} < \"$D/long.txt\"");
        let done = lab.sh(&format!("pipe-{i}"), &script).wait(LIMIT);
        exited(&done, 7);
        let lines: Vec<&str> = done.err.lines().collect();
        assert_eq!(lines.len(), 1, "{}", done.summary());
        let head = format!("streamtool: sending to udp:127.0.0.1:{port} failed: datagram of 70000 bytes");
        assert!(lines[0].starts_with(&head) && lines[0].ends_with(&tail), "run {i}: {}", done.summary());
    }
}

/// `serve -u --echo` without `-k` serves the first peer only (a Python client, echoed);
/// a second peer's datagram is dropped with a line naming it and never answered; when
/// the first peer's session ends (idle 1 s) serve exits 0, with one close event.
#[test]
fn serve_u_without_k_serves_the_first_peer_only() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("serve -u --echo without -k / two peers");
    script(&lab, "client.py", UDP_CLIENT);
    let (mut server, port) =
        listener(&lab, "serve", "exec \"$ST\" serve -u --echo --idle-timeout 1s --events json 0");
    let second = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let second_port = second.local_addr().unwrap().port();
    let first = lab
        .sh("first", &format!("exec python3 \"$D/client.py\" {port} \"$D/first.got\" 1 'first\\n'"))
        .wait(LIMIT);
    exited(&first, 0);
    assert_eq!(std::fs::read(lab.path("first.got")).unwrap(), b"first\n");
    second.send_to(b"second\n", ("127.0.0.1", port)).unwrap();
    let dropped = format!("ignoring datagrams from udp:127.0.0.1:{second_port}");
    server.wait_stderr(&dropped, LIMIT);
    second.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let answer = second.recv(&mut buf);
    assert!(
        answer.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the second peer was answered: {answer:?}"
    );
    let done = server.wait(LIMIT);
    exited(&done, 0);
    let close = closes(&done.err);
    assert_eq!(close.len(), 1, "{}", done.err);
    assert_eq!(close[0]["datagrams_received"], 1, "{}", done.err);
}

/// Without `-k`, the line for a second peer says why: only the first peer is served
/// (`-k` serves all), as stdio mode says it; `--max-conns` does not apply there.
#[test]
fn serve_u_without_k_says_that_it_serves_the_first_peer_only() {
    let lab = Lab::new("serve -u --echo without -k / the second peer's line");
    let (mut server, port) = listener(&lab, "serve", "exec \"$ST\" serve -u --echo 0");
    let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    first.set_read_timeout(Some(LIMIT)).unwrap();
    first.send_to(b"first\n", ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(first.recv(&mut buf).unwrap(), 6, "the first peer is echoed");
    let second = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let second_port = second.local_addr().unwrap().port();
    second.send_to(b"second\n", ("127.0.0.1", port)).unwrap();
    let err = server.wait_stderr(&format!("127.0.0.1:{second_port}"), LIMIT);
    let line = err.lines().find(|l| l.contains(&format!("127.0.0.1:{second_port}"))).unwrap();
    assert!(line.contains("-k") && !line.contains("--max-conns"), "{line}");
}
