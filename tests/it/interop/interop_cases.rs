//! The eleven numbered cases of issue 17, each reproduced as the issue describes it and
//! asserting the end-of-stream rule that replaces today's behaviour; items 6 and 7 of
//! issue 29 (a relay that strands its client, an `exec:` relay that hangs on a ragged TLS
//! client); and the leak test (200 clients that reset mid-transfer through `pipe ...,fork
//! exec:cat` and `serve -k --sh-exec cat`). The harness is `support::peers`.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::interop::interop_tls::{
    V, nginx_connect_get, nginx_through_tls_originator, reply_then_client_waits,
};
use crate::support::peers::{
    CLIENT_LIMIT, Done, Job, Lab, MIB, SERVER_LIMIT, Srv, Want, children, fd_count, need, wait_for,
};

/// A TLS server in Python that sends `argv[1]` bytes to each client, then closes the TCP
/// connection without close_notify (Python's ssl sends close_notify only on `unwrap()`).
const RAGGED_SERVER: &str = r#"
import os, socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.environ["CERT"], os.environ["KEY"])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(os.environ["N"])))
ls.listen(16)
while True:
    c, _ = ls.accept()
    t = ctx.wrap_socket(c, server_side=True)
    t.sendall(b"x" * int(sys.argv[1]))
    time.sleep(0.2)
    t.close()  # no unwrap(): a ragged close
    print("closed", flush=True)
"#;

/// A TLS client in Python that sends `argv[1]` bytes to `localhost:$P`, then closes the
/// TCP connection without close_notify.
const RAGGED_CLIENT: &str = r#"
import os, socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=os.environ["CA"])
c = socket.create_connection(("127.0.0.1", int(os.environ["P"])))
t = ctx.wrap_socket(c, server_hostname="localhost")
t.sendall(b"y" * int(sys.argv[1]))
time.sleep(0.3)
t.close()  # no unwrap(): a ragged close
print("closed", flush=True)
"#;

fn python_scripts(lab: &mut Lab) {
    std::fs::write(lab.path("ragged_server.py"), RAGGED_SERVER).unwrap();
    std::fs::write(lab.path("ragged_client.py"), RAGGED_CLIENT).unwrap();
}

/// Every process below `pid` (children, grandchildren, ...).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for child in children(p) {
            out.push(child);
            todo.push(child);
        }
    }
    out
}

/// Whether `pid` is alive (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// Waits at most `limit` for `job` to exit, noting every process that ran below it; then
/// returns how it ended and those of them still alive a second later.
fn wait_watching(mut job: Job, limit: Duration) -> (Done, Vec<u32>) {
    let pid = job.pid();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + limit;
    while job.running() && Instant::now() < deadline {
        seen.extend(descendants(pid));
        std::thread::sleep(Duration::from_millis(10));
    }
    let exited = !job.running();
    // Give reaping a moment; a child of a process that exited is reparented, so every one
    // seen is checked by pid. (If the job hung, the test's own kill ends them: the hang is
    // the failure reported.)
    let done = job.wait(Duration::ZERO);
    let left = if exited {
        std::thread::sleep(Duration::from_millis(1000));
        seen.into_iter().filter(|p| alive(*p)).collect()
    } else {
        Vec::new()
    };
    (done, left)
}

/// Accepts one connection on `listener` within `limit` (the thread never blocks for ever
/// when the process under test fails before connecting).
fn accept_within(listener: &TcpListener, limit: Duration) -> std::io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A loopback client that sends `line`, reads `read_back` bytes (if any), then resets the
/// connection (SO_LINGER 0).
fn reset_client(port: u16, send: &[u8], read_back: usize) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(send)?;
    let mut got = vec![0u8; read_back];
    stream.read_exact(&mut got)?;
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    drop(stream);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Case 1: uploads are lost

/// Case 1: `serve 127.0.0.1:P </dev/null > got.bin` and `cat 50M | connect 127.0.0.1:P`:
/// serve ends its side at once (FIN), which must not stop the upload: all 50 MiB arrive,
/// both exit 0.
#[test]
fn case01_upload_from_a_pipe_arrives_whole_although_the_peer_ended_its_side() {
    let mut lab = Lab::new("case 1: serve </dev/null / cat 50M | connect");
    let big = lab.big(50 * MIB);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve 127.0.0.1:$P < /dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "cat \"$BIG\" | \"$ST\" connect 127.0.0.1:$P",
        Want::Bytes(b""),
        0,
    );
}

/// Case 1 with `nc -N -l` (which half-closes at once) and with `ncat -l --recv-only`.
#[test]
fn case01_upload_from_a_pipe_into_nc_n_and_ncat_recv_only() {
    if !need(&["nc", "ncat"]) {
        return;
    }
    for (name, server) in [
        ("case 1: nc -N -l </dev/null / cat file | connect", "exec nc -N -l 127.0.0.1 $P < /dev/null"),
        ("case 1: ncat -l --recv-only / cat file | connect", "exec ncat -l 127.0.0.1 $P --recv-only"),
    ] {
        let mut lab = Lab::new(name);
        let big = lab.big(8 * MIB);
        lab.exchange(
            &[Srv { script: server, port: lab.p, code: Some(0), gets: Want::Bytes(&big) }],
            "cat \"$BIG\" | \"$ST\" connect 127.0.0.1:$P",
            Want::Bytes(b""),
            0,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Case 2: late replies are lost

/// Case 2: `(sleep 1; echo reply) | serve P` with a client that sends a line and
/// half-closes: the reply, a second late, reaches the client; serve gets the line; both
/// exit 0.
fn late_reply(name: &str, tool: &str, client: &str) {
    if !need(&[tool]) {
        return;
    }
    let lab = Lab::new(name);
    lab.exchange(
        &[Srv {
            script: "(sleep 1; echo reply) | exec \"$ST\" serve 127.0.0.1:$P",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b"q\n"),
        }],
        client,
        Want::Bytes(b"reply\n"),
        0,
    );
}

#[test]
fn case02_late_reply_reaches_nc_n() {
    late_reply("case 2: (sleep 1; echo reply) | serve / nc -N", "nc", "printf 'q\\n' | nc -N 127.0.0.1 $P");
}

#[test]
fn case02_late_reply_reaches_socat() {
    late_reply(
        "case 2: (sleep 1; echo reply) | serve / socat -t 5",
        "socat",
        "printf 'q\\n' | socat -t 5 - TCP:127.0.0.1:$P",
    );
}

#[test]
fn case02_late_reply_reaches_ncat() {
    late_reply("case 2: (sleep 1; echo reply) | serve / ncat", "ncat", "printf 'q\\n' | ncat 127.0.0.1 $P");
}

// ---------------------------------------------------------------------------------------
// Case 3: TLS half-close breaks real servers

/// Case 3: a TLS GET from nginx ends the request, which must not end the connection: the
/// whole 50 MiB body arrives, exit 0 (no early close_notify; nginx logged "client
/// prematurely closed connection").
#[test]
fn case03_tls_get_from_nginx_arrives_whole() {
    nginx_connect_get("case 3: nginx TLS 1.3 / connect --tls GET 50 MiB", V::Tls13);
}

/// Case 3: `printf x | connect --tls` against `ncat --ssl -l -c cat` printed nothing and
/// exited 0. Now the echo arrives and the client waits for the server, saying so.
#[test]
fn case03_ncat_ssl_exec_cat_echoes_and_the_client_waits() {
    if !need(&["ncat"]) {
        return;
    }
    let lab = Lab::new("case 3: ncat --ssl -l -c cat / printf x | connect --tls");
    reply_then_client_waits(
        &lab,
        "exec ncat --ssl --ssl-cert \"$CERT\" --ssl-key \"$KEY\" -l 127.0.0.1 $P -c cat",
        "printf x | exec \"$ST\" connect --tls --ca \"$CA\" localhost:$P",
        b"x",
    );
}

/// Case 3: a late reply from `openssl s_server` (TLS 1.3) was lost with exit 0. Now it
/// arrives and the client waits for the server, saying so.
#[test]
fn case03_openssl_s_server_late_reply_arrives() {
    if !need(&["openssl"]) {
        return;
    }
    let lab = Lab::new("case 3: (sleep 1; echo reply) | openssl s_server -tls1_3 / printf q | connect --tls");
    reply_then_client_waits(
        &lab,
        "(sleep 1; echo reply; sleep 30) | exec openssl s_server -quiet -naccept 1 -tls1_3 -accept 127.0.0.1:$P \
         -cert \"$CERT\" -key \"$KEY\"",
        "printf 'q\\n' | exec \"$ST\" connect --tls --ca \"$CA\" localhost:$P",
        b"reply\n",
    );
}

// ---------------------------------------------------------------------------------------
// Case 4: a relay passes truncation off as a clean end

/// Case 4: `pipe tcp-listen:P,fork tls:localhost:N` in front of nginx with `nc -N`: nc's
/// FIN is not passed on as an early close_notify, and the whole body arrives (it got 7.7
/// of 50 MB and a clean FIN).
#[test]
fn case04_relay_to_nginx_delivers_the_whole_body() {
    nginx_through_tls_originator("case 4: nginx TLS 1.3 / pipe tcp-listen,fork tls: / nc -N", V::Tls13);
}

/// Case 4, the truncation itself: a TLS server that ends without close_notify after 2 MiB,
/// behind `pipe tcp-listen:P,fork tls:...`: the plain client sees a reset, never a clean
/// FIN (under the default `--ragged-eof strict`).
#[test]
fn case04_relay_passes_a_ragged_close_on_as_a_reset() {
    if !need(&["python3"]) {
        return;
    }
    let mut lab = Lab::new("case 4: ragged TLS server / pipe tcp-listen,fork tls: / plain client");
    python_scripts(&mut lab);
    let mut server = lab.sh("server1", "exec python3 \"$D/ragged_server.py\" 2097152");
    lab.wait_listening(lab.n, &mut server);
    let mut pipe =
        lab.sh("server2", "exec \"$ST\" pipe tcp-listen:127.0.0.1:$P,fork tls:localhost:$N,ca=\"$CA\"");
    lab.wait_listening(lab.p, &mut pipe);
    let outcome = read_until_end(lab.p, Duration::from_secs(5));
    let pipe = pipe.stop();
    let server = server.stop();
    let mut check = lab.check();
    check.that(
        outcome.end == End::Reset,
        format!(
            "the client saw {:?} after {} bytes, expected a reset (the truncation passed on)",
            outcome.end, outcome.bytes
        ),
    );
    check.show(&pipe).show(&server).done();
}

/// How a plain read to the end ended.
#[derive(Debug, PartialEq)]
enum End {
    /// A clean FIN.
    Fin,
    /// A reset (ECONNRESET).
    Reset,
    /// Nothing more and no end within the limit: the client is stranded.
    Stranded,
    /// Another error.
    Other(String),
}

/// What a plain client that only reads saw.
struct Outcome {
    bytes: usize,
    end: End,
    /// Time from the last byte (or the connection) to the end.
    after_last_byte: Duration,
}

/// Connects to `port`, sends nothing, reads until the end (at most `limit` without data).
fn read_until_end(port: u16, limit: Duration) -> Outcome {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the relay");
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0;
    let mut last = Instant::now();
    let end = loop {
        match stream.read(&mut buf) {
            Ok(0) => break End::Fin,
            Ok(n) => {
                bytes += n;
                last = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break End::Reset,
            // A signal for the test process (another test's child ending) is not the
            // connection's end: read again, as std's read_to_end does.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break End::Stranded,
            Err(e) => break End::Other(e.to_string()),
        }
    };
    Outcome { bytes, end, after_last_byte: last.elapsed() }
}

// ---------------------------------------------------------------------------------------
// Case 5: exec relays hang and leak

/// Case 5: `pipe tcp-listen:P exec:cat` and a client that sends a line, reads the echo,
/// and resets: pipe ends within a few seconds with a non-zero code, and no `cat` is left.
#[test]
fn case05_one_shot_exec_relay_ends_when_the_client_resets() {
    let lab = Lab::new("case 5: pipe tcp-listen exec:cat / resetting client");
    let mut pipe = lab.sh("pipe", "exec \"$ST\" pipe tcp-listen:127.0.0.1:$P exec:cat");
    lab.wait_listening(lab.p, &mut pipe);
    let client = reset_client(lab.p, b"hello\n", 6);
    let (done, left) = wait_watching(pipe, Duration::from_secs(5));
    let mut check = lab.check();
    check.that(client.is_ok(), format!("the client's exchange failed: {client:?}"));
    check.that(!done.timed_out, "pipe did not end within 5 s of the client's reset (it hung)".to_string());
    check.that(
        done.timed_out || (done.code.is_some() && done.code != Some(0)),
        format!("pipe exited {:?} after a reset; expected a non-zero code", done.code),
    );
    check.that(left.is_empty(), format!("processes left behind: {left:?}"));
    check.show(&done).done();
}

/// Case 5 with fork: five clients that reset leave no `cat` and no fd behind.
#[test]
fn case05_forking_exec_relay_leaves_nothing_behind_after_resets() {
    let lab = Lab::new("case 5: pipe tcp-listen,fork exec:cat / 5 resetting clients");
    let mut pipe = lab.sh("pipe", "exec \"$ST\" pipe tcp-listen:127.0.0.1:$P,fork exec:cat");
    lab.wait_listening(lab.p, &mut pipe);
    let pid = pipe.pid();
    leak_check(&lab, pipe, pid, 5);
}

/// Case 5, the other way round: `pipe exec:cat tcp:127.0.0.1:N` whose server resets: pipe
/// ends within a few seconds with a non-zero code, and no `cat` is left.
#[test]
fn case05_exec_relay_ends_when_the_server_resets() {
    let lab = Lab::new("case 5: pipe exec:cat tcp: / resetting server");
    let listener = TcpListener::bind(("127.0.0.1", lab.n)).unwrap();
    let server = std::thread::spawn(move || {
        let mut stream = accept_within(&listener, Duration::from_secs(10))?;
        stream.write_all(b"hello\n")?;
        let mut buf = [0u8; 6];
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let _ = stream.read_exact(&mut buf);
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
        drop(stream);
        std::io::Result::Ok(buf)
    });
    let pipe = lab.sh("pipe", "exec \"$ST\" pipe exec:cat tcp:127.0.0.1:$N");
    let (done, left) = wait_watching(pipe, Duration::from_secs(8));
    let echoed = server.join().unwrap();
    let mut check = lab.check();
    check.that(echoed.is_ok(), format!("the server's exchange failed: {echoed:?}"));
    check.that(!done.timed_out, "pipe did not end within 8 s of the server's reset (it hung)".to_string());
    check.that(
        done.timed_out || (done.code.is_some() && done.code != Some(0)),
        format!("pipe exited {:?} after a reset; expected a non-zero code", done.code),
    );
    check.that(left.is_empty(), format!("processes left behind: {left:?}"));
    check.show(&done).done();
}

/// A warm-up exchange (so that lazily made fds exist), then `clients` resetting clients
/// (each sends 64 KiB, reads 16 KiB of the echo, resets), 8 at a time; then the server's
/// fd count and its descendants must come back to the warm baseline within 15 s.
fn leak_check(lab: &Lab, mut server: Job, pid: u32, clients: usize) {
    // Warm-up: a clean exchange.
    let warm = (|| -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", lab.p))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"warm\n")?;
        s.shutdown(std::net::Shutdown::Write)?;
        let mut back = Vec::new();
        s.read_to_end(&mut back)?;
        Ok(back)
    })();
    std::thread::sleep(Duration::from_millis(500));
    let base_fds = fd_count(pid);
    let base_children = descendants(pid).len();
    let started = Instant::now();
    let per_thread = clients.div_ceil(8);
    let port = lab.p;
    let workers: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let data = vec![b'z'; 64 * 1024];
                let mut failures = 0;
                for _ in (t * per_thread)..((t + 1) * per_thread).min(clients) {
                    if reset_client(port, &data, 16 * 1024).is_err() {
                        failures += 1;
                    }
                }
                failures
            })
        })
        .collect();
    let failures: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let sent_in = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut fds, mut kids) = (fd_count(pid), descendants(pid).len());
    while (fds > base_fds || kids > base_children) && Instant::now() < deadline && server.running() {
        std::thread::sleep(Duration::from_millis(50));
        fds = fd_count(pid);
        kids = descendants(pid).len();
    }
    let running = server.running();
    let done = server.stop();
    let mut check = lab.check();
    check.that(warm.as_deref().ok() == Some(b"warm\n"), format!("the warm-up exchange failed: {warm:?}"));
    check.that(running, "the server exited".to_string());
    check.that(failures == 0, format!("{failures} of {clients} clients could not complete their exchange"));
    check.that(
        fds <= base_fds,
        format!("fds: {base_fds} before {clients} resetting clients, still {fds} 15 s after (leak)"),
    );
    check.that(
        kids <= base_children,
        format!("child processes: {base_children} before, still {kids} 15 s after (leak)"),
    );
    check.note(format!("{clients} clients took {sent_in:.1?}"));
    // Only leaks are judged here (the wording of its messages is other cells' business).
    check.note(done.summary()).done();
}

/// The leak test: 200 clients that reset mid-transfer through
/// `pipe tcp-listen:P,fork exec:cat`; fds and children come back to the baseline.
#[test]
fn leak_200_resetting_clients_through_pipe_fork_exec_cat() {
    let lab = Lab::new("leak: pipe tcp-listen,fork exec:cat / 200 resetting clients");
    let mut pipe = lab.sh("pipe", "exec \"$ST\" pipe tcp-listen:127.0.0.1:$P,fork exec:cat");
    lab.wait_listening(lab.p, &mut pipe);
    let pid = pipe.pid();
    leak_check(&lab, pipe, pid, 200);
}

/// The leak test: 200 clients that reset mid-transfer through `serve -k --sh-exec cat`;
/// fds and children come back to the baseline.
#[test]
fn leak_200_resetting_clients_through_serve_k_sh_exec_cat() {
    let lab = Lab::new("leak: serve -k --sh-exec cat / 200 resetting clients");
    let mut serve = lab.sh("serve", "exec \"$ST\" serve -k --sh-exec cat 127.0.0.1:$P");
    lab.wait_listening(lab.p, &mut serve);
    let pid = serve.pid();
    leak_check(&lab, serve, pid, 200);
}

// ---------------------------------------------------------------------------------------
// Case 6: a truncated upload looks complete to a per-connection command

/// Case 6: `serve --tls --sh-exec 'cat > up.bin && echo clean > marker'` (no -k) and a TLS
/// client that closes without close_notify: the command is terminated rather than given a
/// clean end of input (no marker), serve exits 5, nothing is left behind.
#[test]
fn case06_ragged_tls_upload_to_a_per_connection_command_is_not_a_clean_end() {
    if !need(&["python3"]) {
        return;
    }
    let mut lab = Lab::new("case 6: serve --tls --sh-exec 'cat > up.bin' / ragged TLS client");
    python_scripts(&mut lab);
    let mut serve = lab.sh(
        "serve",
        "exec \"$ST\" serve --tls --cert \"$CERT\" --key \"$KEY\" \
         --sh-exec 'cat > \"$D/up.bin\" && echo clean-eof > \"$D/marker\"' 127.0.0.1:$P",
    );
    lab.wait_listening(lab.p, &mut serve);
    let client = lab.sh("client", "exec python3 \"$D/ragged_client.py\" 1048576").wait(CLIENT_LIMIT);
    let (done, left) = wait_watching(serve, SERVER_LIMIT);
    let mut check = lab.check();
    check.code(&client, 0);
    check.code(&done, 5);
    check.that(
        !lab.path("marker").exists(),
        "the command saw a clean end of input (its `&& echo clean-eof` ran) after a ragged close".to_string(),
    );
    check.that(left.is_empty(), format!("processes left behind: {left:?}"));
    check.show(&client).show(&done).done();
}

// ---------------------------------------------------------------------------------------
// Case 7: one client that never reads stalls everyone

/// Case 7: `head -c 300M /dev/zero | serve -k` with client A connected and never reading:
/// client B still gets data at full speed (at least 100 MiB within 15 s), and A, too far
/// behind, is disconnected with a line naming it.
#[test]
fn case07_a_client_that_never_reads_does_not_stall_broadcast() {
    let lab = Lab::new("case 7: head -c 300M /dev/zero | serve -k / A never reads, B reads");
    let mut serve = lab.sh("serve", "head -c 300M /dev/zero | exec \"$ST\" serve -k 127.0.0.1:$P");
    lab.wait_listening(lab.p, &mut serve);
    let a = TcpStream::connect(("127.0.0.1", lab.p)).unwrap();
    let a_port = a.local_addr().unwrap().port();
    std::thread::sleep(Duration::from_millis(200));
    let mut b = TcpStream::connect(("127.0.0.1", lab.p)).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let want = 100 * MIB;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = 0;
    let mut buf = vec![0u8; 256 * 1024];
    while got < want && Instant::now() < deadline {
        match b.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    // The line naming A may follow B's data a little.
    let named = wait_for(Duration::from_secs(3), || serve.stderr_now().contains(&format!(":{a_port}")));
    drop(a);
    let done = serve.stop();
    let mut check = lab.check();
    check
        .that(got >= want, format!("B got {got} bytes in 15 s while A never read; expected at least {want}"));
    check.that(named, format!("no line on serve's stderr naming the slow client A (port {a_port})"));
    check.show(&done).done();
}

/// Case 7 with `--broker`: A never reads; everything B sends reaches C.
#[test]
fn case07_a_client_that_never_reads_does_not_stall_the_broker() {
    let lab = Lab::new("case 7: serve -k --broker / A never reads, B sends 8 MiB, C reads");
    let mut serve = lab.sh("serve", "exec \"$ST\" serve -k --broker 127.0.0.1:$P");
    lab.wait_listening(lab.p, &mut serve);
    let a = TcpStream::connect(("127.0.0.1", lab.p)).unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", lab.p)).unwrap();
    let b = TcpStream::connect(("127.0.0.1", lab.p)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let want = 8 * MIB;
    b.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    let sender = std::thread::spawn(move || {
        let mut b = b;
        let data = vec![b'b'; want];
        let sent = b.write_all(&data);
        // B keeps its connection open until the test ends.
        (sent, b)
    });
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = 0;
    let mut buf = vec![0u8; 256 * 1024];
    while got < want && Instant::now() < deadline {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    drop(a);
    let done = serve.stop();
    let sent = sender.join().unwrap().0;
    let mut check = lab.check();
    check.that(sent.is_ok(), format!("B could not send: {sent:?}"));
    check.that(
        got >= want,
        format!("C got {got} of the {want} bytes B sent, within 15 s, while A never read"),
    );
    check.show(&done).done();
}

// ---------------------------------------------------------------------------------------
// Case 8: a TLS 1.2 renegotiation attempt hangs the server

/// Case 8: `openssl s_client -tls1_2` then `R` against `serve --tls --echo`: the server's
/// refusal (a no_renegotiation alert) reaches s_client within 3 s: s_client reports it or
/// ends. Today nothing comes until the server next writes.
#[test]
fn case08_renegotiation_attempt_from_openssl_is_answered_promptly() {
    if !need(&["openssl"]) {
        return;
    }
    let lab = Lab::new("case 8: serve --tls --echo / openssl s_client -tls1_2, R");
    let mut serve =
        lab.sh("serve", "exec \"$ST\" serve --tls --cert \"$CERT\" --key \"$KEY\" --echo 127.0.0.1:$P");
    lab.wait_listening(lab.p, &mut serve);
    let mut client = lab.sh(
        "client",
        "(printf 'R\\n'; sleep 20) | exec openssl s_client -tls1_2 -CAfile \"$CA\" -servername localhost \
         -connect 127.0.0.1:$P",
    );
    let answered = |c: &Job| {
        let err = c.stderr_now();
        let after = err.split("RENEGOTIATING").nth(1).unwrap_or("").to_lowercase();
        after.contains("alert") || after.contains("renegotiation") || after.contains("error")
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && client.running() && !answered(&client) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = !client.running() || answered(&client);
    let client = client.stop();
    let serve = serve.stop();
    let mut check = lab.check();
    check.that(client.err.contains("RENEGOTIATING"), "s_client never started the renegotiation".to_string());
    check.that(ok, "no answer to the renegotiation attempt within 3 s (s_client still waiting)".to_string());
    check.show(&client).show(&serve).done();
}

/// Case 8 with `gnutls-cli --rehandshake` (TLS 1.2): its rehandshake gets an answer (it
/// reports the rehandshake's result) within 3 s.
#[test]
fn case08_rehandshake_from_gnutls_is_answered_promptly() {
    if !need(&["gnutls-cli"]) {
        return;
    }
    let lab = Lab::new("case 8: serve --tls --echo / gnutls-cli --rehandshake TLS 1.2");
    let mut serve =
        lab.sh("serve", "exec \"$ST\" serve --tls --cert \"$CERT\" --key \"$KEY\" --echo 127.0.0.1:$P");
    lab.wait_listening(lab.p, &mut serve);
    let mut client = lab.sh(
        "client",
        "sleep 20 | exec gnutls-cli --priority NORMAL:-VERS-ALL:+VERS-TLS1.2 --rehandshake --x509cafile \"$CA\" \
         -p $P localhost",
    );
    let answered = |c: &Job| {
        let all = format!("{}{}", String::from_utf8_lossy(&c.stdout_now()), c.stderr_now());
        all.contains("ReHandshake") || all.contains("Rehandshake")
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && client.running() && !answered(&client) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = answered(&client) || !client.running();
    let client = client.stop();
    let serve = serve.stop();
    let mut check = lab.check();
    check.that(ok, "no answer to the rehandshake within 3 s (gnutls-cli still waiting)".to_string());
    check.show(&client).show(&serve).done();
}

// ---------------------------------------------------------------------------------------
// Case 9: a close or reset during the handshake exits 1, not 4

/// Case 9: `ncat -l --send-only </dev/null` closes at once; `connect -z --tls` exits 4 with
/// a message naming the handshake, and "the resource is broken" appears nowhere.
#[test]
fn case09_peer_closing_during_the_handshake_exits_4() {
    if !need(&["ncat"]) {
        return;
    }
    let lab = Lab::new("case 9: ncat -l --send-only </dev/null / connect -z --tls");
    let mut server = lab.sh("server1", "exec ncat -l 127.0.0.1 $P --send-only < /dev/null");
    lab.wait_listening(lab.p, &mut server);
    let client =
        lab.sh("client", "exec \"$ST\" connect -z --tls --ca \"$CA\" localhost:$P").wait(CLIENT_LIMIT);
    let server = server.wait(SERVER_LIMIT);
    let mut check = lab.check();
    check.code(&client, 4);
    check.that(client.err.contains("handshake"), "the message does not name the handshake".to_string());
    check.that(
        !client.err.contains("resource is broken"),
        "the message says \"the resource is broken\"".to_string(),
    );
    check.show(&client).show(&server).done();
}

/// Case 9 with a reset: a server that accepts and resets at once; `connect -z --tls`
/// exits 4, no "the resource is broken".
#[test]
fn case09_peer_resetting_during_the_handshake_exits_4() {
    let lab = Lab::new("case 9: resetting server / connect -z --tls");
    let listener = TcpListener::bind(("127.0.0.1", lab.p)).unwrap();
    let server = std::thread::spawn(move || {
        let stream = accept_within(&listener, Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_millis(100));
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
        drop(stream);
        std::io::Result::Ok(())
    });
    let client =
        lab.sh("client", "exec \"$ST\" connect -z --tls --ca \"$CA\" localhost:$P").wait(CLIENT_LIMIT);
    let _ = server.join();
    let mut check = lab.check();
    check.code(&client, 4);
    check.that(client.err.contains("handshake"), "the message does not name the handshake".to_string());
    check.that(
        !client.err.contains("resource is broken"),
        "the message says \"the resource is broken\"".to_string(),
    );
    check.show(&client).done();
}

// ---------------------------------------------------------------------------------------
// Case 10: TLS 1.2 stdio transfers never finish

/// Case 10: `connect --tls --tls-max 1.2 < file` to `serve --tls </dev/null`: every byte
/// arrives and both sides exit 0 (they waited for ever; killed, serve said 5).
#[test]
fn case10_tls12_stdio_transfer_finishes() {
    let mut lab = Lab::new("case 10: serve --tls </dev/null / connect --tls --tls-max 1.2 <file");
    let big = lab.big(8 * MIB);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve --tls --cert \"$CERT\" --key \"$KEY\" 127.0.0.1:$P < /dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "\"$ST\" connect --tls --tls-max 1.2 --ca \"$CA\" localhost:$P < \"$BIG\"",
        Want::Bytes(b""),
        0,
    );
}

// ---------------------------------------------------------------------------------------
// Case 11: ed25519 keys OpenSSL and GnuTLS cannot read

/// Case 11: `gen-cert --key-type ed25519` writes a key that `openssl pkey`, GnuTLS's
/// `certtool` and Python's `ssl.load_cert_chain` all read.
#[test]
fn case11_ed25519_key_is_readable_by_openssl_gnutls_and_python() {
    if !need(&["openssl", "certtool", "python3"]) {
        return;
    }
    let lab = Lab::new("case 11: gen-cert --key-type ed25519");
    let made = lab
        .sh(
            "gen-cert",
            "exec \"$ST\" gen-cert --self-signed --key-type ed25519 --cert-file \"$D/ed.pem\" \
             --key-file \"$D/ed-key.pem\" localhost",
        )
        .wait(CLIENT_LIMIT);
    let openssl = lab.sh("openssl", "exec openssl pkey -in \"$D/ed-key.pem\" -noout").wait(CLIENT_LIMIT);
    let certtool =
        lab.sh("certtool", "exec certtool --key-info --infile \"$D/ed-key.pem\"").wait(CLIENT_LIMIT);
    let python = lab
        .sh(
            "python",
            "exec python3 -c 'import ssl, sys; ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(sys.argv[1], \
             sys.argv[2]); print(\"loaded\")' \"$D/ed.pem\" \"$D/ed-key.pem\"",
        )
        .wait(CLIENT_LIMIT);
    let mut check = lab.check();
    check.code(&made, 0).code(&openssl, 0).code(&certtool, 0).code(&python, 0);
    check.show(&made).show(&openssl).show(&certtool).show(&python).done();
}

// ---------------------------------------------------------------------------------------
// Issue 29, items 6 and 7

/// Issue 29 item 6: one-shot `pipe tcp-listen:Q tls:localhost:N` whose TLS server closes
/// without close_notify while the client has not half-closed: the client sees a reset
/// within a second (not a FIN, not silence), and pipe exits 5.
#[test]
fn issue29_item6_one_shot_relay_resets_its_client_on_a_ragged_tls_close() {
    if !need(&["python3"]) {
        return;
    }
    let mut lab =
        Lab::new("issue 29 item 6: ragged TLS server / one-shot pipe tcp-listen tls: / plain client");
    python_scripts(&mut lab);
    let mut server = lab.sh("server1", "exec python3 \"$D/ragged_server.py\" 100000");
    lab.wait_listening(lab.n, &mut server);
    let mut pipe = lab.sh("pipe", "exec \"$ST\" pipe tcp-listen:127.0.0.1:$P tls:localhost:$N,ca=\"$CA\"");
    lab.wait_listening(lab.p, &mut pipe);
    let outcome = read_until_end(lab.p, Duration::from_secs(5));
    let pipe = pipe.wait(SERVER_LIMIT);
    let server = server.stop();
    let mut check = lab.check();
    check.that(
        outcome.end == End::Reset,
        format!(
            "the client saw {:?} {:.1?} after the last of {} bytes; expected a reset",
            outcome.end, outcome.after_last_byte, outcome.bytes
        ),
    );
    // The server closes 0.2 s after its last byte; a second more for the relay.
    check.that(
        outcome.after_last_byte <= Duration::from_millis(1200),
        format!(
            "the end came {:.1?} after the last byte; expected within a second of the server's close",
            outcome.after_last_byte
        ),
    );
    check.code(&pipe, 5);
    check.show(&pipe).show(&server).done();
}

/// Issue 29 item 7: `pipe tls-listen:P,cert=..,key=.. 'exec:cat > f'` and a TLS client
/// that closes without close_notify: pipe exits 5 in bounded time, the command is not
/// given a clean end, no child is left.
#[test]
fn issue29_item7_exec_relay_ends_on_a_ragged_tls_client() {
    if !need(&["python3"]) {
        return;
    }
    let mut lab = Lab::new("issue 29 item 7: pipe tls-listen 'exec:cat > f' / ragged TLS client");
    python_scripts(&mut lab);
    let mut pipe = lab.sh(
        "pipe",
        "exec \"$ST\" pipe tls-listen:127.0.0.1:$P,cert=\"$CERT\",key=\"$KEY\" \
         \"exec:cat > $D/f && echo clean-eof > $D/marker\"",
    );
    lab.wait_listening(lab.p, &mut pipe);
    let client = lab.sh("client", "exec python3 \"$D/ragged_client.py\" 100000").wait(CLIENT_LIMIT);
    let (done, left) = wait_watching(pipe, SERVER_LIMIT);
    let mut check = lab.check();
    check.code(&client, 0);
    check.code(&done, 5);
    check.that(
        !lab.path("marker").exists(),
        "the command saw a clean end of input (its `&& echo clean-eof` ran) after a ragged close".to_string(),
    );
    check.that(left.is_empty(), format!("processes left behind: {left:?}"));
    check.show(&client).show(&done).done();
}

// ---------------------------------------------------------------------------------------
// The explicit choice as a pipe endpoint option

/// `on-eof=half-close` on pipe's `tls:` endpoint: `nc -N` sends a file through
/// `pipe tcp-listen:P,fork tls:localhost:N,on-eof=half-close` to socat's TLS 1.3 echo
/// (`EXEC:cat`); nc's FIN becomes close_notify, cat ends, the echo comes back whole.
#[test]
fn pipe_tls_endpoint_on_eof_half_close_with_socat_echo() {
    if !need(&["socat", "nc"]) {
        return;
    }
    let mut lab =
        Lab::new("pipe tcp-listen,fork tls:,on-eof=half-close / socat OPENSSL-LISTEN EXEC:cat / nc -N");
    let big = lab.big(4 * MIB);
    lab.exchange(
        &[
            Srv {
                script: "exec socat -t 5 OPENSSL-LISTEN:$N,bind=127.0.0.1,reuseaddr,cert=\"$CERT\",key=\"$KEY\",verify=0 EXEC:cat",
                port: lab.n,
                code: Some(0),
                gets: Want::Bytes(b""),
            },
            Srv {
                script: "exec \"$ST\" pipe tcp-listen:127.0.0.1:$P,fork tls:localhost:$N,ca=\"$CA\",on-eof=half-close",
                port: lab.p,
                code: None,
                gets: Want::Bytes(b""),
            },
        ],
        "nc -N 127.0.0.1 $P < \"$BIG\"",
        Want::Bytes(&big),
        0,
    );
}

/// The explicit `--on-eof keep-open` on a plain connect: after its file, connect sends
/// no FIN. The server (Python) reads to the client's FIN and never ends its own side
/// (`ncat --recv-only` would not do: it sends its FIN at once), so 1.5 s later it has the
/// whole file and both are still running.
#[test]
fn connect_on_eof_keep_open_sends_no_fin() {
    if !need(&["python3"]) {
        return;
    }
    let mut lab = Lab::new("connect --on-eof keep-open / a server that reads to EOF");
    let big = lab.big(MIB);
    let reader = "import socket, sys\n\
                  listener = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n\
                  conn, _ = listener.accept()\n\
                  while data := conn.recv(65536):\n    sys.stdout.buffer.write(data)\n    sys.stdout.flush()\n";
    std::fs::write(lab.path("reader.py"), reader).unwrap();
    let mut server = lab.sh("server1", "exec python3 reader.py $P");
    lab.wait_listening(lab.p, &mut server);
    let mut client = lab.sh("client", "exec \"$ST\" connect --on-eof keep-open 127.0.0.1:$P < \"$BIG\"");
    std::thread::sleep(Duration::from_millis(1500));
    let (server_running, client_running) = (server.running(), client.running());
    let got = server.stdout_now();
    let client = client.stop();
    let server = server.stop();
    let mut check = lab.check();
    check.same("ncat received", &got, &big);
    check.that(
        server_running && client_running,
        format!(
            "after 1.5 s: ncat {}, connect {}; with keep-open no FIN is sent, so both should still run",
            if server_running { "running" } else { "ended" },
            if client_running { "running" } else { "ended" }
        ),
    );
    check.show(&client).show(&server).done();
}

// ---------------------------------------------------------------------------------------
// The other rules of issue 17

/// A loopback server that takes one connection, reads `read` bytes, then (after a pause)
/// resets it or just holds it for `hold`.
fn holding_server(port: u16, read: usize, reset: bool, hold: Duration) -> std::thread::JoinHandle<usize> {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let Ok(mut stream) = accept_within(&listener, Duration::from_secs(10)) else { return 0 };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut got = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while got < read {
            match stream.read(&mut buf[..(read - got).min(64 * 1024)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        if reset {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        } else {
            std::thread::sleep(hold);
        }
        drop(stream);
        got
    })
}

/// "If the peer goes away while input remains": `cat 50M | connect` to a server that
/// reads 1 MiB and resets: connect exits non-zero with a line that says how many bytes
/// were sent (a number and "sent").
#[test]
fn peer_gone_while_input_remains_is_reported_and_non_zero() {
    let mut lab = Lab::new("cat 50M | connect / server that reads 1 MiB and resets");
    lab.big(50 * MIB);
    let server = holding_server(lab.p, MIB, true, Duration::ZERO);
    let client = lab.sh("client", "cat \"$BIG\" | \"$ST\" connect 127.0.0.1:$P").wait(CLIENT_LIMIT);
    let read = server.join().unwrap();
    let mut check = lab.check();
    check.that(
        !client.timed_out && client.code.is_some() && client.code != Some(0),
        format!(
            "connect exited {:?} (timed out: {}) with input left; expected a non-zero code",
            client.code, client.timed_out
        ),
    );
    check.that(
        client.err.contains("sent") && client.err.chars().any(|c| c.is_ascii_digit()),
        "no line saying how many bytes were sent".to_string(),
    );
    check.note(format!("the server read {read} bytes, then reset"));
    check.show(&client).done();
}

/// "Say what it waits for": `printf x | connect` to a plain server that neither answers
/// nor ends: after about a second of quiet, one stderr line says what connect waits for
/// and names `--on-eof`; with `-q` no such line.
#[test]
fn connect_says_what_it_waits_for_after_a_quiet_second() {
    let lab = Lab::new("printf x | connect / silent server");
    let server = holding_server(lab.p, 1, false, Duration::from_secs(4));
    let client = lab.sh("client", "printf x | exec \"$ST\" connect 127.0.0.1:$P");
    let said = wait_for(Duration::from_millis(2500), || client.stderr_now().contains("--on-eof"));
    let client = client.stop();
    let _ = server.join();
    let quiet_server = holding_server(lab.q, 1, false, Duration::from_secs(3));
    let quiet = lab.sh("quiet", "printf x | exec \"$ST\" connect -q 127.0.0.1:$Q");
    std::thread::sleep(Duration::from_millis(2000));
    let quiet = quiet.stop();
    let _ = quiet_server.join();
    let mut check = lab.check();
    check.that(said, "no line within 2.5 s saying what connect waits for, naming --on-eof".to_string());
    check.that(!quiet.err.contains("--on-eof"), "with -q the waiting line still appears".to_string());
    check.show(&client).show(&quiet).done();
}

/// "Half-close on TLS 1.2 is a clear error or falls back as documented; never a silent
/// hang": `connect --tls --tls-max 1.2 --on-eof half-close` against gnutls-serv's TLS 1.2
/// echo either ends within 5 s or has said something on stderr by then.
#[test]
fn tls12_half_close_is_never_a_silent_hang() {
    if !need(&["gnutls-serv"]) {
        return;
    }
    let lab = Lab::new("gnutls-serv --echo TLS 1.2 / connect --tls-max 1.2 --on-eof half-close");
    let mut server = lab.sh(
        "server1",
        "exec gnutls-serv --echo --priority NORMAL:-VERS-ALL:+VERS-TLS1.2 -p $P --x509certfile \"$CERT\" \
         --x509keyfile \"$KEY\"",
    );
    lab.wait_listening(lab.p, &mut server);
    let mut client = lab.sh(
        "client",
        "printf 'hello\\n' | exec \"$ST\" connect --tls --tls-max 1.2 --on-eof half-close --ca \"$CA\" localhost:$P",
    );
    let spoke =
        wait_for(Duration::from_secs(5), || !client.running() || !client.stderr_now().trim().is_empty());
    let ended = !client.running();
    let client = client.stop();
    let server = server.stop();
    let mut check = lab.check();
    check.that(spoke, "after 5 s connect neither ended nor said anything (a silent hang)".to_string());
    check.that(client.code != Some(2), "--on-eof half-close is not accepted (usage error)".to_string());
    check.note(format!("connect {}", if ended { "ended" } else { "was still running (with a message)" }));
    check.show(&client).show(&server).done();
}
