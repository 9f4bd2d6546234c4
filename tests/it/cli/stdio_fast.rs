//! `connect` and `serve` with stdin and stdout as regular files, pipes and /dev/null: the
//! zero-copy stdio path (`streamtool::stdio_fd`, splice(2)/sendfile(2)) must deliver every
//! byte, keep half-close and exit codes, count bytes for `--events`, and leave the
//! inherited descriptors' flags alone (no O_NONBLOCK on a pipe the parent shares).
//!
//! Plain threads and blocking sockets: the binary runs with real descriptors set up here.
//! Every blocking step is bounded ([`LIMIT`]): a process that does not exit, a read that
//! does not end, a thread that does not finish fails the test instead of hanging it.
//!
//! Which path moved the bytes is observable: the children run with the `streamtool::splice`
//! debug lines on ([`SPLICE_LOG`]), and the tests named for splice(2) or sendfile(2) assert
//! the line saying so (the fallback test asserts its own line and no splice line).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use crate::support::cli::{BIN, json_events};
use crate::support::data::payload;

const SIZE: usize = 32 << 20;

/// How long one blocking step (a process exiting, a read to the end, a thread finishing,
/// the listening line) may take before the test fails as hung. Generous: 32 MiB in a debug
/// build on a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

/// `RUST_LOG` for the children: what `-q` shows, plus the debug lines of
/// `streamtool::splice` that say which path moved the bytes (`RUST_LOG` wins over `-q`).
const SPLICE_LOG: &str = "error,streamtool::insecure=warn,streamtool::splice=debug";

/// Waits for `child`, failing (and killing it) after [`LIMIT`].
fn wait(mut child: Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            return (status.code(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("streamtool did not exit within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Joins `handle`, failing the test if the thread has not finished within [`LIMIT`] (it
/// is then left behind, blocked); a panic in the thread is passed on.
fn joined<T>(handle: JoinHandle<T>, what: &str) -> T {
    let deadline = Instant::now() + LIMIT;
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "{what} did not finish within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs `f` on a thread and waits at most [`LIMIT`] for its result.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    joined(std::thread::spawn(f), what)
}

/// Reads a pipe to its end, within [`LIMIT`].
fn read_pipe(fd: OwnedFd) -> Vec<u8> {
    bounded("reading a pipe to its end", move || {
        let mut out = Vec::new();
        File::from(fd).read_to_end(&mut out).unwrap();
        out
    })
}

/// The debug lines of `streamtool::splice` in `stderr`.
fn splice_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("splice: ") || l.contains("splice(2) refused")).collect()
}

/// Asserts that a direct splice(2) (one end a pipe) moved exactly `bytes` bytes: the line
/// announcing it, and its closing count. Returns (times the source was empty, times the
/// destination was full), from that count.
fn assert_spliced_straight_across(stderr: &str, bytes: usize) -> (u64, u64) {
    let lines = splice_lines(stderr);
    assert!(
        lines.iter().any(|l| l.contains("with splice(2), straight across")),
        "no line says splice(2) moved the bytes: {lines:#?}\n{stderr}"
    );
    let done = format!(" done: {bytes} bytes in ");
    let summary = lines
        .iter()
        .find(|l| l.contains(&done))
        .unwrap_or_else(|| panic!("no splice(2) count of {bytes} bytes: {lines:#?}\n{stderr}"));
    let number_before = |tail: &str| -> u64 {
        let head = &summary[..summary.find(tail).unwrap_or_else(|| panic!("{tail:?} in {summary}"))];
        head.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (number_before(" times, the destination"), number_before_end(summary))
}

/// The number before the final ` times` of a splice count line.
fn number_before_end(summary: &str) -> u64 {
    let head = summary.trim_end().strip_suffix(" times").expect("a count line ends with `times`");
    head.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A pipe that other tests' children do not inherit (they run in parallel threads): a
/// leaked end would keep a reader or writer alive and hide EOF or EPIPE.
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap()
}

fn nonblocking(fd: impl AsFd) -> bool {
    OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap()).contains(OFlag::O_NONBLOCK)
}

/// A peer that reads everything until EOF, then sends `reply` and closes.
fn peer(reply: Vec<u8>) -> (u16, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        stream.write_all(&reply).unwrap();
        got
    });
    (port, task)
}

fn connect(port: u16, extra: &[&str], stdin: impl Into<Stdio>, stdout: impl Into<Stdio>) -> Child {
    Command::new(BIN)
        .args(["connect", "-q", "--events", "json"])
        .args(extra)
        .arg(format!("127.0.0.1:{port}"))
        .env("RUST_LOG", SPLICE_LOG)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The `close` event's byte counts.
fn counted(stderr: &str) -> (u64, u64) {
    let close = json_events(stderr).into_iter().find(|e| e["event"] == "close").expect("a close event");
    (close["bytes_sent"].as_u64().unwrap(), close["bytes_received"].as_u64().unwrap())
}

fn temp_file(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn connect_sends_a_regular_file_and_writes_the_reply_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (data, reply) = (payload(1, SIZE), payload(2, SIZE / 2 + 12345));
    let input = temp_file(&dir, "in", &data);
    let output = dir.path().join("out");
    // The reply only comes after our EOF: the half-close must reach the peer.
    let (port, peer) = peer(reply.clone());
    let child = connect(port, &[], File::open(&input).unwrap(), File::create(&output).unwrap());
    let (code, stderr) = wait(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(joined(peer, "the peer thread") == data, "the peer got different bytes");
    assert!(std::fs::read(&output).unwrap() == reply, "stdout got different bytes");
    assert_eq!(counted(&stderr), (data.len() as u64, reply.len() as u64));
    // Zero copy both ways: sendfile(2) from the file, splice(2) into the file.
    let lines = splice_lines(&stderr);
    assert!(lines.iter().any(|l| l.contains("with sendfile(2)")), "no sendfile(2) line: {lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("with splice(2) through a kernel pipe")),
        "no splice(2) line: {lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("refused")), "a fallback ran: {lines:#?}");
}

#[test]
fn connect_sends_from_the_file_offset_it_inherits() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(3, 1 << 20);
    let mut file = File::open(temp_file(&dir, "in", &data)).unwrap();
    file.seek(SeekFrom::Start(1000)).unwrap();
    let (port, peer) = peer(Vec::new());
    let (code, stderr) = wait(connect(port, &[], file, Stdio::null()));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(joined(peer, "the peer thread") == data[1000..], "the peer got different bytes");
}

#[test]
fn connect_sends_a_pipe_and_leaves_its_flags_alone() {
    let data = payload(4, SIZE);
    let (read_end, write_end) = pipe();
    let our_read_end = read_end.try_clone().unwrap();
    let (port, peer) = peer(b"bye".to_vec());
    let (out_read, out_write) = pipe();
    let child = connect(port, &[], read_end, out_write);
    let feeder = {
        let data = data.clone();
        std::thread::spawn(move || {
            let mut w = File::from(write_end);
            w.write_all(&data).unwrap();
            // Still blocking after streamtool opened the pipe: it must not have set
            // O_NONBLOCK on the description we share.
            assert!(!nonblocking(&w), "O_NONBLOCK appeared on the writer's end");
        })
    };
    let out = read_pipe(out_read);
    let (code, stderr) = wait(child);
    joined(feeder, "the feeder thread");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(joined(peer, "the peer thread") == data, "the peer got different bytes");
    assert_eq!(out, b"bye");
    assert!(!nonblocking(&our_read_end), "O_NONBLOCK left on the shared read end");
}

#[test]
fn connect_with_stdin_from_dev_null_receives_into_a_pipe() {
    let reply = payload(5, SIZE);
    let (port, peer) = peer(reply.clone());
    let (out_read, out_write) = pipe();
    let our_write_end = out_write.try_clone().unwrap();
    let child = connect(port, &[], Stdio::null(), out_write);
    let reader = std::thread::spawn(move || read_pipe(out_read));
    let (code, stderr) = wait(child);
    assert!(!nonblocking(&our_write_end), "O_NONBLOCK left on the shared write end");
    drop(our_write_end);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(joined(peer, "the peer thread").is_empty());
    assert!(joined(reader, "the reader thread") == reply, "stdout got different bytes");
    assert_eq!(counted(&stderr), (0, reply.len() as u64));
}

#[test]
fn connect_counts_what_it_drops_into_dev_null() {
    let reply = payload(6, SIZE);
    let (port, peer) = peer(reply.clone());
    let (code, stderr) = wait(connect(port, &[], Stdio::null(), Stdio::null()));
    assert_eq!(code, Some(0), "{stderr}");
    joined(peer, "the peer thread");
    assert_eq!(counted(&stderr), (0, reply.len() as u64));
}

#[test]
fn connect_appends_to_a_file_opened_for_appending() {
    // splice(2) refuses O_APPEND files (EINVAL): the copy must carry on without a gap.
    let dir = tempfile::tempdir().unwrap();
    let reply = payload(7, SIZE / 4);
    let output = temp_file(&dir, "out", b"first line\n");
    let (port, peer) = peer(reply.clone());
    let stdout = std::fs::OpenOptions::new().append(true).open(&output).unwrap();
    let (code, stderr) = wait(connect(port, &[], Stdio::null(), stdout));
    assert_eq!(code, Some(0), "{stderr}");
    joined(peer, "the peer thread");
    let mut expected = b"first line\n".to_vec();
    expected.extend_from_slice(&reply);
    assert!(std::fs::read(&output).unwrap() == expected, "the file is not the old line plus the reply");
    // The fallback ran, and splice(2) delivered nothing.
    let lines = splice_lines(&stderr);
    assert!(
        lines.iter().any(|l| l.contains("splice(2) refused; copying through user space")),
        "no line says the copy fell back to user space: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("with splice(2)")),
        "splice(2) claims to have moved bytes: {lines:#?}"
    );
}

#[test]
fn connect_exits_0_when_stdout_is_closed_early() {
    let reply = payload(8, SIZE);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // The client may be gone before everything is written: that is the point.
        let _ = stream.write_all(&reply);
    });
    let (out_read, out_write) = pipe();
    let child = connect(port, &[], Stdio::null(), out_write);
    bounded("reading 1 MiB of stdout", move || {
        let mut head = vec![0; 1 << 20];
        File::from(out_read).read_exact(&mut head).unwrap();
    });
    // The read end is closed here, as `| head -c 1M` does.
    let (code, stderr) = wait(child);
    joined(server, "the server thread");
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn connect_no_shutdown_keeps_the_sending_side_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(9, 1 << 20);
    let input = temp_file(&dir, "in", &data);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut got = vec![0; 1 << 20];
        stream.read_exact(&mut got).unwrap();
        // No FIN follows the data.
        stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut more = [0u8; 1];
        let after = stream.read(&mut more);
        assert!(after.is_err(), "expected no EOF with --no-shutdown, got {after:?}");
        stream.write_all(b"done").unwrap();
        stream.shutdown(Shutdown::Both).unwrap();
        got
    });
    let (out_read, out_write) = pipe();
    let child = connect(port, &["--no-shutdown"], File::open(&input).unwrap(), out_write);
    let out = read_pipe(out_read);
    let (code, stderr) = wait(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(joined(server, "the server thread") == data);
    assert_eq!(out, b"done");
}

#[test]
fn connect_send_only_uploads_a_pipe() {
    let data = payload(10, SIZE / 4);
    let (read_end, write_end) = pipe();
    let (port, peer) = peer(b"ignored".to_vec());
    let child = connect(port, &["--send-only"], read_end, Stdio::piped());
    let feeder = {
        let data = data.clone();
        std::thread::spawn(move || File::from(write_end).write_all(&data).unwrap())
    };
    let mut child = child;
    let mut stdout = child.stdout.take().unwrap();
    let out = bounded("reading stdout to its end", move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).unwrap();
        out
    });
    let (code, stderr) = wait(child);
    joined(feeder, "the feeder thread");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(joined(peer, "the peer thread") == data);
    assert!(out.is_empty(), "--send-only printed {} bytes", out.len());
}

#[test]
fn serve_relays_a_file_both_ways_with_stdout_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (to_client, from_client) = (payload(11, SIZE), payload(12, SIZE));
    let input = temp_file(&dir, "in", &to_client);
    let output = dir.path().join("out");
    let server = serve(&[], File::open(&input).unwrap(), File::create(&output).unwrap());
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let sender = {
        let mut stream = stream.try_clone().unwrap();
        let data = from_client.clone();
        std::thread::spawn(move || stream.write_all(&data).unwrap())
    };
    // serve's stdin ends first (a FIN after the file); our end would end the session.
    let mut got = Vec::new();
    (&stream).read_to_end(&mut got).unwrap();
    joined(sender, "the sender thread");
    stream.shutdown(Shutdown::Write).unwrap();
    let (code, err) = server.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(got == to_client, "the client got different bytes");
    assert!(std::fs::read(&output).unwrap() == from_client, "serve's stdout got different bytes");
}

#[test]
fn serve_writes_a_client_into_a_pipe() {
    let from_client = payload(13, SIZE);
    let (out_read, out_write) = pipe();
    let server = serve(&[], Stdio::null(), out_write);
    let reader = std::thread::spawn(move || read_pipe(out_read));
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.set_write_timeout(Some(LIMIT)).unwrap();
    stream.write_all(&from_client).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let (code, err) = server.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(rest.is_empty());
    assert!(joined(reader, "the reader thread") == from_client, "serve's stdout got different bytes");
}

/// Writes `data` in 64 KiB pieces with a pause after every 512 KiB, so that the reader
/// keeps finding its pipe empty.
fn write_in_bursts(w: &mut impl Write, data: &[u8]) {
    for (i, piece) in data.chunks(64 << 10).enumerate() {
        w.write_all(piece).unwrap();
        if i % 8 == 7 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Reads to EOF in 16 KiB reads with a pause after every 256 KiB, so that the writer keeps
/// finding the way out full.
fn read_slowly(r: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0; 16 << 10];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() % (256 << 10) < n {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

// stdin a pipe and a socket: one splice(2) moves the bytes straight across, and its EAGAIN
// does not say which end was not ready. A bursty writer (empty pipe) and a slow reader
// (full socket) make both likely (the test prints how often each happened; an empty pipe
// does nearly every run, a full socket only in some); waiting on the wrong end would hang
// (the limit in `wait`) and a lost or repeated piece would show in the bytes. The debug
// lines show that splice(2) moved every byte, straight across.
#[test]
fn connect_splices_a_bursty_pipe_to_a_slow_peer() {
    connect_splices_bursty_to_slow(&[]);
}

// With two worker threads the event loop runs beside the splice: a readiness event that
// arrives between the failed call and the clearing of that end's readiness must survive.
// (A lost one hung `bench/run.py --only plain` with --threads 0 in 3 runs of 3 before the
// fix; these smaller debug-build runs do not hit that window reliably, they keep the
// multi-thread path covered.)
#[test]
fn connect_splices_a_bursty_pipe_to_a_slow_peer_on_two_threads() {
    connect_splices_bursty_to_slow(&["--threads", "2"]);
}

fn connect_splices_bursty_to_slow(extra: &[&str]) {
    let data = payload(21, 8 << 20);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        read_slowly(&mut stream)
    });
    let (read_end, write_end) = pipe();
    let child = connect(port, extra, read_end, Stdio::null());
    let feeder = {
        let data = data.clone();
        std::thread::spawn(move || write_in_bursts(&mut File::from(write_end), &data))
    };
    let (code, stderr) = wait(child);
    joined(feeder, "the feeder thread");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(joined(peer, "the peer thread") == data, "the peer got different bytes");
    assert_eq!(counted(&stderr).0, data.len() as u64, "bytes_sent");
    // splice(2) moved all of it. How often it waited for each end is printed, not asserted:
    // the bursts and the slow reader make it likely, the machine's load decides.
    let (source_empty, destination_full) = assert_spliced_straight_across(&stderr, data.len());
    eprintln!("splice waited for the pipe {source_empty} times, for the socket {destination_full} times");
}

// The other way: a socket spliced straight into stdout, a pipe read slowly, from a client
// that sends in bursts.
#[test]
fn serve_splices_a_bursty_client_into_a_slowly_read_pipe() {
    serve_splices_bursty_to_slow(&[]);
}

#[test]
fn serve_splices_a_bursty_client_into_a_slowly_read_pipe_on_two_threads() {
    serve_splices_bursty_to_slow(&["--threads", "2"]);
}

fn serve_splices_bursty_to_slow(extra: &[&str]) {
    let data = payload(22, 8 << 20);
    let (out_read, out_write) = pipe();
    let server = serve(extra, Stdio::null(), out_write);
    let reader = std::thread::spawn(move || read_slowly(&mut File::from(out_read)));
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write_in_bursts(&mut stream, &data);
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let (code, err) = server.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(rest.is_empty());
    assert!(joined(reader, "the reader thread") == data, "serve's stdout got different bytes");
    let (source_empty, destination_full) = assert_spliced_straight_across(&err, data.len());
    eprintln!("splice waited for the socket {source_empty} times, for the pipe {destination_full} times");
}

/// A `serve` child, its port, and its stderr as collected so far (a thread drains it, so
/// that the server never blocks on it).
struct Served {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
    drain: JoinHandle<()>,
}

impl Served {
    /// Waits for the server to exit (within [`LIMIT`]); its exit code and all of stderr.
    fn wait(self) -> (Option<i32>, String) {
        let (code, _) = wait(self.child);
        joined(self.drain, "reading serve's stderr to its end");
        let stderr = self.stderr.lock().unwrap().clone();
        (code, stderr)
    }
}

/// `serve` with these arguments and stdio (default log level, plus the splice debug
/// lines), once it says where it listens (within [`LIMIT`]).
fn serve(args: &[&str], stdin: impl Into<Stdio>, stdout: impl Into<Stdio>) -> Served {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "warn,rustls=error,streamtool::splice=debug")
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let drain = {
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let stderr = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.contains("listening on")
                    && let Some(port) = crate::support::cli::parse_port(&line)
                {
                    let _ = port_tx.send(port);
                }
                stderr.lock().unwrap().push_str(&line);
                line.clear();
            }
        })
    };
    let port = match port_rx.recv_timeout(LIMIT) {
        Ok(port) => port,
        Err(RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            panic!("serve did not say where it listens within {LIMIT:?}: {}", stderr.lock().unwrap())
        }
        Err(RecvTimeoutError::Disconnected) => {
            panic!("serve ended its stderr before listening: {}", stderr.lock().unwrap())
        }
    };
    Served { child, port, stderr, drain }
}

// TLS needs the bytes in user space; stdin and stdout are still read and written in the
// event loop when they are pipes or files.
#[test]
fn tls_connect_uploads_a_regular_file_to_serve_writing_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(14, SIZE);
    let input = temp_file(&dir, "in", &data);
    let (out_read, out_write) = pipe();
    let server = serve(&["--tls"], Stdio::null(), out_write);
    let reader = std::thread::spawn(move || read_pipe(out_read));
    let client = connect(
        server.port,
        &["--tls", "--insecure", "--keep-sending"],
        File::open(&input).unwrap(),
        Stdio::null(),
    );
    let (code, stderr) = wait(client);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(counted(&stderr), (data.len() as u64, 0));
    let (code, _) = server.wait();
    assert_eq!(code, Some(0));
    assert!(joined(reader, "the reader thread") == data, "serve's stdout got different bytes");
}

#[test]
fn tls_serve_sends_a_regular_file_to_connect_writing_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(15, SIZE);
    let input = temp_file(&dir, "in", &data);
    let server = serve(&["--tls"], File::open(&input).unwrap(), Stdio::null());
    // stdin is a pipe that ends at once: a TLS client keeps its side open until the
    // server is done, then exits.
    let (in_read, in_write) = pipe();
    let (out_read, out_write) = pipe();
    let client = connect(server.port, &["--tls", "--insecure"], in_read, out_write);
    drop(in_write);
    let out = read_pipe(out_read);
    let (code, stderr) = wait(client);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _) = server.wait();
    assert_eq!(code, Some(0));
    assert!(out == data, "connect's stdout got different bytes");
}

// ---- the peer ends its side first (docs/design.md §4.2; a regular file is still sent whole) ----

#[test]
fn serve_sends_all_of_a_file_to_a_client_that_ended_its_side_at_once() {
    for tls in [&[][..], &["--tls"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let data = payload(31, SIZE);
        let input = temp_file(&dir, "in", &data);
        let server = serve(tls, File::open(&input).unwrap(), Stdio::null());
        let (out_read, out_write) = pipe();
        let mut extra = vec!["--recv-only"];
        if !tls.is_empty() {
            extra.extend(["--tls", "--insecure"]);
        }
        let client = connect(server.port, &extra, Stdio::null(), out_write);
        let out = read_pipe(out_read);
        let (code, stderr) = wait(client);
        assert_eq!(code, Some(0), "{tls:?}: {stderr}");
        let (code, stderr) = server.wait();
        assert_eq!(code, Some(0), "{tls:?}: {stderr}");
        assert!(out == data, "{tls:?}: {} bytes of {} arrived", out.len(), data.len());
    }
}

/// A peer that half-closes as soon as it accepts, then reads everything; with `reads`
/// false it reads nothing and closes after 3 s.
fn half_closing_peer(reads: bool) -> (u16, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        if reads {
            stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            stream.read_to_end(&mut got).unwrap();
        } else {
            std::thread::sleep(Duration::from_secs(3));
        }
        got
    });
    (port, task)
}

#[test]
fn connect_sends_all_of_a_file_to_a_peer_that_half_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(32, SIZE);
    let input = temp_file(&dir, "in", &data);
    let (port, peer) = half_closing_peer(true);
    let client = connect(port, &[], File::open(&input).unwrap(), Stdio::null());
    let (code, stderr) = wait(client);
    assert_eq!(code, Some(0), "{stderr}");
    let got = joined(peer, "the peer thread");
    assert!(got == data, "{} bytes of {} arrived", got.len(), data.len());
    assert_eq!(counted(&stderr).0, data.len() as u64, "the close event counts what was sent");
}

/// Writes `chunks` chunks of 64 KiB into a pipe on a thread; returns connect's stdin end.
fn pipe_fed(chunks: usize) -> (std::os::fd::OwnedFd, JoinHandle<()>) {
    let (in_read, in_write) = pipe();
    let writer = std::thread::spawn(move || {
        let mut input = File::from(in_write);
        let chunk = vec![7u8; 1 << 16];
        // Ends early with EPIPE if connect is gone; bounded in any case.
        for _ in 0..chunks {
            if input.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    (in_read, writer)
}

#[test]
fn connect_sends_all_of_a_pipe_to_a_peer_that_half_closed_at_once() {
    // The peer ends its side at once and reads on: a FIN means it sends no more, not
    // "stop sending". The whole pipe goes (the old rule stopped here, losing the rest).
    let (port, peer) = half_closing_peer(true);
    let (stdin, writer) = pipe_fed(256);
    let client = connect(port, &[], stdin, Stdio::null());
    let (code, stderr) = wait(client);
    assert_eq!(code, Some(0), "{stderr}");
    joined(writer, "the writer thread");
    let got = joined(peer, "the peer thread");
    assert_eq!(got.len(), 256 << 16, "all of the pipe arrived");
}

#[test]
fn connect_says_how_much_went_when_the_peer_goes_away_with_input_left() {
    // The peer ends its side, never reads, and closes after 3 s: the rest of stdin cannot
    // go. One line says how many bytes did, and the exit is not 0.
    let (port, peer) = half_closing_peer(false);
    let (stdin, writer) = pipe_fed(1024);
    let client = Command::new(BIN)
        .args(["connect", &format!("127.0.0.1:{port}")])
        .env_remove("RUST_LOG")
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, stderr) = wait(client);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("bytes of stdin were sent, the rest was not"),
        "no line saying what was sent: {stderr}"
    );
    joined(writer, "the writer thread");
    joined(peer, "the peer thread");
}
