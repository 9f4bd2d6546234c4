//! Helpers for the tests that run the real `streamtool` binary (the `cli` area, and the
//! `heavy` and `interop` tests that start it): processes with collected output and
//! timeouts, servers started on port 0 with the port read from stderr, in-test TCP and TLS
//! peers, and what `connect --tls` says when a certificate does not cover the name.
//!
//! The rules tests follow (exact outcomes, readiness by a signal with a bound, no vacuous
//! passes, skips that fail under CI) are in docs/testing.md.

use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamtool::streams::tls::{RaggedEofPolicy, TlsStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;

use super::certs::PemPki;
use super::data::contains;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_streamtool");

/// How long one step (a process exiting, a line appearing) may take before the test
/// fails as hung. Generous: the machine may be loaded by other tests.
pub const STEP: Duration = Duration::from_secs(10);

/// Output of a child collected by a background task.
#[derive(Default)]
struct Collected {
    data: Mutex<Vec<u8>>,
    closed: AtomicBool,
}

impl Collected {
    fn spawn_reader<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
        self: &Arc<Self>,
        mut reader: R,
    ) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => this.data.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
            this.closed.store(true, Ordering::SeqCst);
        })
    }

    fn bytes(&self) -> Vec<u8> {
        self.data.lock().unwrap().clone()
    }
}

/// What a child's stdin is.
pub enum Input {
    /// A pipe the test keeps (open until [`Proc::close_stdin`] or drop).
    Open,
    /// These bytes, then EOF (as `printf ... |`).
    Bytes(Vec<u8>),
}

/// Which of a child's outputs is a pipe closed at its reading end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Neither: both are collected.
    None,
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

/// A running `streamtool` (or other) process; killed on drop.
pub struct Proc {
    /// The child.
    pub child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Collected>,
    err: Arc<Collected>,
    readers: Vec<JoinHandle<()>>,
    label: String,
}

/// How a process ended, with everything it wrote.
#[derive(Debug)]
pub struct Finished {
    /// The exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: String,
    /// The command line.
    pub label: String,
}

impl Finished {
    /// Asserts the exit code, showing the output otherwise.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "`{}` exited with {:?}, expected {expected}\nstdout: {}\nstderr:\n{}",
            self.label,
            self.code,
            shown(&self.stdout),
            self.stderr
        );
        self
    }

    /// Stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Proc {
    /// Starts `streamtool ARGS`.
    pub fn streamtool(args: &[&str], input: Input) -> Proc {
        Proc::spawn(BIN, args, input)
    }

    /// Starts `program ARGS` with piped output.
    pub fn spawn(program: &str, args: &[&str], input: Input) -> Proc {
        Proc::spawn_closing(program, args, input, Closed::None)
    }

    /// Starts `streamtool ARGS` with stdout or stderr a pipe whose reading end is closed
    /// at once (as after `| head -c 3` or a log reader that went away): writes there fail
    /// with EPIPE, and nothing written there is collected.
    pub fn streamtool_closing(args: &[&str], input: Input, closed: Closed) -> Proc {
        Proc::spawn_closing(BIN, args, input, closed)
    }

    /// Starts `streamtool ARGS` with `env` added to its environment (which otherwise
    /// has neither `RUST_LOG` nor `SSLKEYLOGFILE`): a test of what such a variable does.
    pub fn streamtool_env(args: &[&str], input: Input, env: &[(&str, &std::ffi::OsStr)]) -> Proc {
        Proc::spawn_env(BIN, args, input, Closed::None, env)
    }

    fn spawn_closing(program: &str, args: &[&str], input: Input, closed: Closed) -> Proc {
        Proc::spawn_env(program, args, input, closed, &[])
    }

    fn spawn_env(
        program: &str,
        args: &[&str],
        input: Input,
        closed: Closed,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Proc {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("SSLKEYLOGFILE")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let out = Arc::new(Collected::default());
        let err = Arc::new(Collected::default());
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let mut readers = Vec::new();
        match closed {
            Closed::Stdout => drop(stdout),
            _ => readers.push(out.spawn_reader(stdout)),
        }
        match closed {
            Closed::Stderr => drop(stderr),
            _ => readers.push(err.spawn_reader(stderr)),
        }
        let mut stdin = child.stdin.take();
        if let Input::Bytes(data) = input {
            let mut pipe = stdin.take().unwrap();
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
                // Dropping the pipe is the EOF.
            });
        }
        let name = Path::new(program).file_name().unwrap().to_string_lossy().into_owned();
        let label = format!("{name} {}", args.join(" "));
        Proc { child, stdin, out, err, readers, label }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.out.bytes()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.bytes()).into_owned()
    }

    /// Writes to stdin (which must be [`Input::Open`]).
    pub async fn write(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(data).await.expect("writing to the child's stdin");
        stdin.flush().await.unwrap();
    }

    /// Closes stdin: the child reads EOF.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits until stdout contains `needle`.
    pub async fn wait_stdout(&self, needle: &[u8]) {
        let found = poll_until(STEP, || contains(&self.out.bytes(), needle)).await;
        assert!(
            found,
            "`{}`: stdout never showed {:?}; stdout: {:?}\nstderr:\n{}",
            self.label,
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&self.stdout()),
            self.stderr()
        );
    }

    /// Waits until stderr contains `needle`; returns all of stderr so far.
    pub async fn wait_stderr(&self, needle: &str) -> String {
        let found = poll_until(STEP, || self.stderr().contains(needle)).await;
        assert!(found, "`{}`: stderr never showed {needle:?}; stderr:\n{}", self.label, self.stderr());
        self.stderr()
    }

    /// Sends a signal with the `kill` command (`INT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("the kill command");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Whether the process has exited (without reaping output).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits (at most `limit`) for the process to exit and its output to end; kills it
    /// and fails the test if it does not. An open stdin stays open while waiting.
    pub async fn finish_within(mut self, limit: Duration) -> Finished {
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("waiting for the child"),
            Err(_) => {
                let _ = self.child.kill().await;
                // What it wrote before it was killed: its pipes end now (unless a
                // grandchild holds them).
                for reader in self.readers.drain(..) {
                    let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
                }
                panic!(
                    "`{}` did not exit within {limit:?}\nstdout: {}\nstderr:\n{}",
                    self.label,
                    shown(&self.stdout()),
                    self.stderr()
                );
            }
        };
        for reader in self.readers.drain(..) {
            // A grandchild (--exec) could hold the pipes open; do not wait for ever.
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        let finished = Finished {
            code: status.code(),
            stdout: self.out.bytes(),
            stderr: String::from_utf8_lossy(&self.err.bytes()).into_owned(),
            label: self.label.clone(),
        };
        // Every failure path the suite drives: what streamtool says is words, never Rust
        // Debug text (issue 19).
        if finished.label.starts_with("streamtool ")
            && let Some(debug) =
                crate::cli::newcomer::debug_shaped(&crate::cli::newcomer::messages(&finished.stderr))
        {
            panic!("`{}`: Debug text {debug:?} on stderr:\n{}", finished.label, finished.stderr);
        }
        finished
    }

    /// [`Proc::finish_within`] with the default step limit.
    pub async fn finish(self) -> Finished {
        self.finish_within(STEP).await
    }

    /// Open file descriptors of the process (`/proc/PID/fd`). Panics, with the reason, if
    /// they cannot be counted: a test of descriptor growth must not pass on a 0 it never
    /// measured.
    pub fn open_fds(&self) -> usize {
        let dir = format!("/proc/{}/fd", self.pid());
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "`{}`: cannot count its descriptors: {dir}: {e} (is /proc mounted and readable?)",
                self.label
            )
        });
        let count = entries.count();
        assert!(count > 0, "`{}`: {dir} lists no descriptors, not even stdin: not a real count", self.label);
        count
    }

    /// A `KiB` field of `/proc/PID/status`: `VmRSS` (resident memory now), `VmHWM` (its
    /// peak). Panics, with the reason, if the file or the field cannot be read: a memory
    /// test must not pass on a 0 it never measured.
    pub fn status_kib(&self, field: &str) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "`{}`: cannot read its memory use: {path}: {e} (is /proc mounted and readable?)",
                self.label
            )
        });
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("`{}`: no {field} field in {path}:\n{status}", self.label));
        assert!(kib > 0, "`{}`: {field} is 0 KiB in {path}: not a real measurement", self.label);
        kib
    }

    /// Whether the process has a handler installed for signal number `signal` (the
    /// `SigCgt` mask of `/proc/PID/status`): the readiness signal for a test that sends it
    /// a signal. Panics if the mask cannot be read.
    pub fn catches_signal(&self, signal: u32) -> bool {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("`{}`: cannot read {path}: {e}", self.label));
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("`{}`: no SigCgt mask in {path}:\n{status}", self.label));
        mask & (1 << (signal - 1)) != 0
    }

    /// Waits (at most [`STEP`]) until the process catches signal number `signal`, then
    /// returns; fails the test otherwise.
    pub async fn wait_catches_signal(&self, signal: u32) {
        let caught = poll_until(STEP, || self.catches_signal(signal)).await;
        assert!(
            caught,
            "`{}` never installed a handler for signal {signal}; stderr:\n{}",
            self.label,
            self.stderr()
        );
    }

    /// Writes to stdin (which must be [`Input::Open`]), returning the error instead of
    /// failing the test: for a child that may already have exited.
    pub async fn try_write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(data).await?;
        stdin.flush().await
    }

    /// Resident memory of the process in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }
}

/// Output for a failure message: all of it if short, else its length, its SHA-256 and its
/// first and last 200 bytes (a megabyte of stdout buries the reason).
pub fn shown(output: &[u8]) -> String {
    const EDGE: usize = 200;
    if output.len() <= 4 * EDGE {
        return format!("{:?}", String::from_utf8_lossy(output));
    }
    let digest: String =
        streamtool::streams::tls::sha256(output).iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{} bytes (sha256 {digest}): {:?} … {:?}",
        output.len(),
        String::from_utf8_lossy(&output[..EDGE]),
        String::from_utf8_lossy(&output[output.len() - EDGE..])
    )
}

/// Polls `check` every 10 ms until it holds or `limit` passes.
pub async fn poll_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `streamtool ARGS` with `input` on stdin (then EOF) to the end.
pub async fn streamtool(args: &[&str], input: &[u8]) -> Finished {
    Proc::streamtool(args, Input::Bytes(input.to_vec())).finish().await
}

/// A `streamtool serve` started on port 0.
pub struct Server {
    /// The process.
    pub proc: Proc,
    /// The TCP port it listens on (0 for UNIX sockets).
    pub port: u16,
}

impl Server {
    /// The pin that `serve --tls` without a certificate prints in its `connect with:` line.
    pub async fn printed_pin(&self) -> String {
        pin_in(&self.proc.wait_stderr("connect with:").await)
    }

    /// `serve -k --echo --tls` with `pki`'s server certificate and key, and `extra` flags.
    pub async fn tls_echo(pki: &PemPki, extra: &[&str]) -> Server {
        let mut args =
            vec!["-k", "--echo", "--tls", "--cert", s(&pki.server_cert), "--key", s(&pki.server_key)];
        args.extend_from_slice(extra);
        Server::start(&args).await
    }

    /// Starts `streamtool serve ARGS` (without an address, port 0 on loopback) with stdin
    /// an open pipe, and waits for its `listening on` line.
    pub async fn start(args: &[&str]) -> Server {
        let mut full = vec!["serve"];
        full.extend_from_slice(args);
        Server::listening(Proc::streamtool(&full, Input::Open)).await
    }

    /// Waits for the `listening on` line of a process already started: a `serve` started
    /// another way (under `bash -c 'ulimit ...; exec ...'`), or a `pipe` with a listening
    /// endpoint.
    pub async fn listening(proc: Proc) -> Server {
        // A line may be written in pieces: wait for all of it.
        let complete =
            || proc.stderr().split_inclusive('\n').any(|l| l.starts_with(LISTENING) && l.ends_with('\n'));
        let listening = poll_until(STEP, complete).await;
        assert!(listening, "`{}` never said where it listens; stderr:\n{}", proc.label, proc.stderr());
        let port = parse_port(&proc.stderr()).unwrap_or(0);
        Server { proc, port }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `localhost:PORT`.
    pub fn localhost(&self) -> String {
        format!("localhost:{}", self.port)
    }
}

const LISTENING: &str = "streamtool: listening on ";

/// The port in `streamtool: listening on 127.0.0.1:PORT, [::1]:PORT`.
pub fn parse_port(stderr: &str) -> Option<u16> {
    let line = stderr.lines().find(|l| l.starts_with(LISTENING))?;
    let rest = &line[line.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A loopback TCP listener on a fresh port; `handler` runs on its first connection.
pub async fn tcp_server<F, Fut>(handler: F) -> (u16, JoinHandle<Fut::Output>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        handler(stream).await
    });
    (port, task)
}

/// A loopback TLS server (the library's `TlsStream::accept`) with `pki`'s server
/// certificate; `handler` runs on its first connection after the handshake.
pub async fn tls_server<F, Fut>(
    pki: &PemPki,
    policy: RaggedEofPolicy,
    handler: F,
) -> (u16, JoinHandle<Fut::Output>)
where
    F: FnOnce(TlsStream<TcpStream>) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let config = pki.server_options().build().unwrap();
    tcp_server(move |tcp| async move {
        let tls = TlsStream::accept(tcp, config, policy).await.expect("the test server's handshake");
        handler(tls).await
    })
    .await
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    // Every test of this process gets ports no other test got: the kernel may hand the
    // same free port out twice while the first test has not bound it yet, and a test would
    // then talk to another test's server.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Reads from `reader` to EOF, with a limit.
pub async fn read_all<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(STEP, reader.read_to_end(&mut out))
        .await
        .expect("reading to EOF timed out")
        .expect("reading to EOF");
    out
}

/// A path as `&str`, for argument lists.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// The pin in serve's `connect with: streamtool connect --tls --pin sha256:… ADDR` line
/// (`serve --tls` without a certificate prints it).
fn pin_in(stderr: &str) -> String {
    let start = stderr.find("--pin sha256:").expect("serve --tls prints a --pin command") + "--pin ".len();
    stderr[start..].split_whitespace().next().unwrap().to_string()
}

/// The hint `connect --tls` gives after a name or address the certificate does not cover.
pub const NAME_HINT: &str = "streamtool: hint: the certificate is for other names: connect by one of them, or verify another name with --sni NAME";

/// Asserts that `connect --tls` to `target` was refused because the server's certificate
/// (made for `localhost` alone) does not cover `name`: exit 4, nothing on stdout, and on
/// stderr exactly the one-line reason and the hint.
#[track_caller]
pub fn assert_refused_for_name(done: &Finished, target: &str, name: &str) {
    done.assert_code(4);
    assert_eq!(done.stdout, b"", "nothing crossed");
    let reason = format!(
        "streamtool: {target}: TLS handshake failed: invalid peer certificate: certificate not valid for name \
         \"{name}\"; certificate is only valid for localhost"
    );
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines, [reason.as_str(), NAME_HINT], "{}", done.stderr);
}

/// Every stderr line that starts with `{`, parsed as JSON.
pub fn json_events(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}
