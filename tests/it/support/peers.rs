//! The interop harness (issue 17): real peers nobody here wrote (nginx, openssl, gnutls,
//! ncat, socat, OpenBSD nc, curl, python's ssl) and streamtool itself as real processes on
//! loopback. Used by every module of the `interop` area and by the few CLI tests that need
//! a peer.
//!
//! Every cell runs shell commands as a user would type them (`sh -c` with `$ST` the binary
//! under test, `$P`/`$Q`/`$N` free ports, `$D` the cell's directory, `$CA`/`$CERT`/`$KEY`
//! certificates made at test time, `$BIG` a payload file), each in its own process group
//! killed when the cell ends. Every wait is bounded: a process that does not exit in time
//! is killed and reported as a failure with what it wrote. A cell asserts the SHA-256 of
//! what arrived on each side and both exit codes ([`Check`]), and reports all of them when
//! any is wrong.
//!
//! A peer that is not installed ([`need`]) skips its cells with a note, except under CI
//! (the `CI` environment variable set), where it fails them: `.ci/run` installs every peer.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use streamtool::streams::tls::sha256;

use crate::support::certs::PemPki;
use crate::support::cli::{BIN, closed_port, s};
use crate::support::data::{contains, payload};

pub(crate) use super::data::MIB;

/// How long a client may take for a transfer (50 MiB on loopback takes well under a
/// second; the machine may be loaded).
pub(crate) const CLIENT_LIMIT: Duration = Duration::from_secs(15);

/// How long a one-shot server may take to exit once its client has finished.
pub(crate) const SERVER_LIMIT: Duration = Duration::from_secs(8);

/// How long a server may take to start listening.
const LISTEN_LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Peers

/// Whether every tool in `tools` is installed. A missing one is a failure under CI (the
/// `CI` environment variable set) and a skip with a printed note elsewhere.
pub(crate) fn need(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !installed(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "interop peer(s) {missing:?} not installed; `.ci/run` installs them (CI is set: a missing \
         peer is a failure, not a skip)"
    );
    eprintln!("SKIPPED: interop peer(s) {missing:?} not installed (`.ci/run` installs them)");
    false
}

fn search_path() -> String {
    format!("{}:/usr/local/sbin:/usr/sbin:/sbin", std::env::var("PATH").unwrap_or_default())
}

fn installed(tool: &str) -> bool {
    search_path().split(':').any(|dir| !dir.is_empty() && Path::new(dir).join(tool).is_file())
}

// ---------------------------------------------------------------------------------------
// Processes in their own group, output to files

/// How a job ended, with everything it wrote.
#[derive(Debug)]
pub(crate) struct Done {
    /// The job's name in the cell and its command.
    pub label: String,
    /// The exit code; `None` if a signal ended it (or the test killed it).
    pub code: Option<i32>,
    /// Killed because it did not exit in time.
    pub timed_out: bool,
    /// Still running when the test stopped it on purpose (a server that keeps serving).
    pub stopped: bool,
    /// How long it ran.
    pub elapsed: Duration,
    /// Its stdout.
    pub out: Vec<u8>,
    /// Its stderr.
    pub err: String,
}

impl Done {
    /// One paragraph: how it ended, what it wrote.
    pub fn summary(&self) -> String {
        let ended = if self.stopped {
            format!("still running after {:.1?} (stopped by the test)", self.elapsed)
        } else if self.timed_out {
            format!("did NOT exit within {:.1?} (killed)", self.elapsed)
        } else {
            match self.code {
                Some(code) => format!("exited {code} after {:.1?}", self.elapsed),
                None => format!("ended by a signal after {:.1?}", self.elapsed),
            }
        };
        let err = tail(&self.err, 1500);
        format!("[{}] {ended}; stdout {}\n  stderr: {}", self.label, digest(&self.out), err.trim_end())
    }
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A `sh -c SCRIPT` in its own process group, stdout and stderr to files; the group is
/// killed on drop.
pub(crate) struct Job {
    child: Child,
    label: String,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
}

impl Job {
    /// The pid of the shell (the process itself when the script starts with `exec`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything on stdout so far.
    pub fn stdout_now(&self) -> Vec<u8> {
        std::fs::read(&self.out).unwrap_or_default()
    }

    /// Everything on stderr so far.
    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.err).unwrap_or_default()).into_owned()
    }

    /// Waits at most `limit` for `text` on stderr (a readiness line, such as serve's
    /// `listening on`, written after its banner) and returns stderr so far; panics
    /// naming the job if it exits or the time runs out first.
    pub fn wait_stderr(&mut self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let err = self.stderr_now();
            if err.contains(text) {
                return err;
            }
            if !self.running() || Instant::now() >= deadline {
                let how = if self.running() { "never wrote" } else { "exited without writing" };
                panic!("[{}] {how} {text:?} on stderr\n  stderr: {err}", self.label);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the job now (its group is killed): for a server that keeps serving, or a
    /// client whose state the test has already observed.
    pub fn stop(self) -> Done {
        let mut done = self.wait(Duration::ZERO);
        done.stopped = done.timed_out;
        done
    }

    /// Waits at most `limit` for the job to exit; kills its group if it does not.
    pub fn wait(mut self, limit: Duration) -> Done {
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                timed_out = true;
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = self.started.elapsed();
        self.kill_group();
        let status = status.or_else(|| self.child.wait().ok());
        Done {
            label: self.label.clone(),
            code: if timed_out { None } else { status.and_then(|s| s.code()) },
            timed_out,
            stopped: false,
            elapsed,
            out: std::fs::read(&self.out).unwrap_or_default(),
            err: self.stderr_now(),
        }
    }

    fn kill_group(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.kill_group();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// A cell's laboratory: a directory, ports, certificates, payloads, jobs

/// Everything one cell needs: its directory, three free ports (`$P`, `$Q`, `$N`), a PKI
/// (`$CA`, `$CERT`, `$KEY`: a CA and a server certificate for `localhost` and
/// `127.0.0.1`), and the environment its scripts see.
pub(crate) struct Lab {
    /// The cell's name (for messages).
    pub name: String,
    dir: tempfile::TempDir,
    pki: PemPki,
    vars: Vec<(String, String)>,
    /// Files whose end a failure message shows (a peer's log).
    attached: std::cell::RefCell<Vec<PathBuf>>,
    /// `$P`.
    pub p: u16,
    /// `$Q`.
    pub q: u16,
    /// `$N`.
    pub n: u16,
}

impl Lab {
    /// A lab for the cell `name`.
    pub fn new(name: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let pki = PemPki::new(&["localhost", "127.0.0.1"]);
        let (p, q, n) = (closed_port(), closed_port(), closed_port());
        let vars = vec![
            ("ST".to_string(), BIN.to_string()),
            ("D".to_string(), s(dir.path()).to_string()),
            ("CA".to_string(), s(&pki.ca).to_string()),
            ("CERT".to_string(), s(&pki.server_cert).to_string()),
            ("KEY".to_string(), s(&pki.server_key).to_string()),
            ("P".to_string(), p.to_string()),
            ("Q".to_string(), q.to_string()),
            ("N".to_string(), n.to_string()),
            ("PATH".to_string(), search_path()),
        ];
        Lab { name: name.to_string(), dir, pki, vars, attached: Default::default(), p, q, n }
    }

    /// The cell's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the cell's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server certificate (`$CERT`).
    pub fn cert(&self) -> &Path {
        &self.pki.server_cert
    }

    /// The server key (`$KEY`).
    pub fn key(&self) -> &Path {
        &self.pki.server_key
    }

    /// Shows the end of `$D/NAME` (a peer's log) in this cell's failure messages.
    pub fn attach(&self, name: &str) {
        self.attached.borrow_mut().push(self.path(name));
    }

    /// Sets `$NAME` for the scripts started after this.
    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.push((name.to_string(), value.to_string()));
    }

    /// Writes `len` reproducible pseudo-random bytes to `$D/big.bin`, sets `$BIG` to it, and
    /// returns them.
    pub fn big(&mut self, len: usize) -> Vec<u8> {
        let data = payload(0x17, len);
        let path = self.path("big.bin");
        std::fs::write(&path, &data).unwrap();
        let path = s(&path).to_string();
        self.set("BIG", &path);
        data
    }

    /// Starts `sh -c SCRIPT` (stdin /dev/null unless the script redirects it), named
    /// `name` in messages; its output goes to `$D/NAME.out` and `$D/NAME.err`.
    pub fn sh(&self, name: &str, script: &str) -> Job {
        self.spawn(name, "sh", script)
    }

    /// Starts `script`, a server that prints `listening on` on stderr, and waits for that
    /// line (after its banner: the self-signed pins, the reload settings).
    pub fn serve(&self, name: &str, script: &str) -> Job {
        let mut job = self.sh(name, script);
        job.wait_stderr("listening on", Duration::from_secs(60));
        job
    }

    /// Runs `bash -c script` (bounded by a `timeout` in the script, and 60 s), asserts
    /// exit 0, and returns its stdout.
    pub fn output(&self, script: &str) -> String {
        let done = self.bash("run", script).wait(Duration::from_secs(60));
        assert_eq!(done.code, Some(0), "{}", done.summary());
        String::from_utf8_lossy(&done.out).into_owned()
    }

    /// [`Lab::sh`] with bash (for `PIPESTATUS`).
    pub fn bash(&self, name: &str, script: &str) -> Job {
        self.spawn(name, "bash", script)
    }

    fn spawn(&self, name: &str, shell: &str, script: &str) -> Job {
        let out = self.path(&format!("{name}.out"));
        let err = self.path(&format!("{name}.err"));
        let mut command = Command::new(shell);
        command
            .arg("-c")
            .arg(script)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("SSLKEYLOGFILE")
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .process_group(0);
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {shell}: {e}"));
        Job { child, label: format!("{name}: {script}"), out, err, started: Instant::now() }
    }

    /// Waits until something listens on `port`; fails the cell with the job's output if
    /// not (or if the job exits first).
    pub fn wait_listening(&self, port: u16, job: &mut Job) {
        let deadline = Instant::now() + LISTEN_LIMIT;
        while !listening(port) {
            if !job.running() || Instant::now() >= deadline {
                let what = if job.running() { "never listened" } else { "exited before listening" };
                panic!(
                    "{}: [{}] {what} on port {port}\n  stdout: {}\n  stderr: {}",
                    self.name,
                    job.label,
                    digest(&job.stdout_now()),
                    job.stderr_now()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A check for this cell.
    pub fn check(&self) -> Check {
        Check {
            cell: self.name.clone(),
            problems: Vec::new(),
            context: Vec::new(),
            attached: self.attached.borrow().clone(),
        }
    }

    /// Runs the usual cell: the servers are started (each waited for on its port), then
    /// the client; the client must exit with `client_code` having received
    /// `client_gets`; each one-shot server must exit with its code having received what
    /// it should. Persistent servers (`code: None`) are killed at the end.
    pub fn exchange(&self, servers: &[Srv<'_>], client: &str, client_gets: Want<'_>, client_code: i32) {
        let mut jobs = Vec::new();
        for (i, server) in servers.iter().enumerate() {
            let mut job = self.sh(&format!("server{}", i + 1), server.script);
            self.wait_listening(server.port, &mut job);
            jobs.push(job);
        }
        let done = self.bash("client", client).wait(CLIENT_LIMIT);
        let mut check = self.check();
        check.code(&done, client_code);
        check.gets(&done, &client_gets);
        check.show(&done);
        for (server, job) in servers.iter().zip(jobs) {
            match server.code {
                Some(code) => {
                    let done = job.wait(SERVER_LIMIT);
                    check.code(&done, code);
                    check.gets(&done, &server.gets);
                    check.show(&done);
                }
                None => {
                    let mut job = job;
                    let alive = job.running();
                    // A persistent server's output is still worth showing.
                    let done = job.stop();
                    check.that(alive, format!("[{}] exited while it should keep serving", done.label));
                    check.gets(&done, &server.gets);
                    check.show(&done);
                }
            }
        }
        check.done();
    }
}

/// A server of [`Lab::exchange`]: its script, the port to wait for, its exit code (`None`:
/// it keeps serving and is killed at the end) and what its stdout must be.
pub(crate) struct Srv<'a> {
    /// The command.
    pub script: &'a str,
    /// The port it listens on.
    pub port: u16,
    /// Its exit code; `None` for a persistent server.
    pub code: Option<i32>,
    /// What must arrive on its stdout.
    pub gets: Want<'a>,
}

/// What must arrive on a job's stdout.
pub(crate) enum Want<'a> {
    /// Exactly these bytes.
    Bytes(&'a [u8]),
    /// An HTTP response whose body (after the headers) is exactly these bytes.
    Body(&'a [u8]),
    /// Output containing this.
    Contains(&'a [u8]),
    /// Anything.
    Anything,
}

/// The collected expectations of one cell; [`Check::done`] fails the test listing every
/// problem and every process's summary.
pub(crate) struct Check {
    cell: String,
    problems: Vec<String>,
    context: Vec<String>,
    attached: Vec<PathBuf>,
}

impl Check {
    /// The job exited with `want` (within its limit).
    pub fn code(&mut self, done: &Done, want: i32) -> &mut Self {
        if done.stopped {
            self.problems.push(format!(
                "[{}] still running after {:.1?}, expected exit {want}",
                done.label, done.elapsed
            ));
        } else if done.timed_out {
            self.problems.push(format!(
                "[{}] hung: no exit within {:.1?}, expected exit {want}",
                done.label, done.elapsed
            ));
        } else if done.code != Some(want) {
            self.problems.push(format!("[{}] exited {:?}, expected {want}", done.label, done.code));
        }
        self
    }

    /// The job's stdout is what `want` says.
    pub fn gets(&mut self, done: &Done, want: &Want<'_>) -> &mut Self {
        let what = format!("[{}] stdout", done.label);
        match want {
            Want::Bytes(expected) => self.same(&what, &done.out, expected),
            Want::Body(expected) => self.same(&format!("{what} (HTTP body)"), http_body(&done.out), expected),
            Want::Contains(needle) => self.that(
                contains(&done.out, needle),
                format!("{what} lacks {:?}: {}", String::from_utf8_lossy(needle), digest(&done.out)),
            ),
            Want::Anything => self,
        }
    }

    /// `got` is `expected`, by length and SHA-256.
    pub fn same(&mut self, what: &str, got: &[u8], expected: &[u8]) -> &mut Self {
        if got.len() != expected.len() || sha256(got) != sha256(expected) {
            self.problems.push(format!("{what}: got {}, expected {}", digest(got), digest(expected)));
        }
        self
    }

    /// `ok`, else `problem`.
    pub fn that(&mut self, ok: bool, problem: String) -> &mut Self {
        if !ok {
            self.problems.push(problem);
        }
        self
    }

    /// Adds a process's summary to the failure message. A streamtool message that says
    /// "the resource is broken" is a problem in itself (issue 17: no message says it).
    pub fn show(&mut self, done: &Done) -> &mut Self {
        if done.label.contains("\"$ST\"") && done.err.contains("the resource is broken") {
            self.problems.push(format!("[{}] says \"the resource is broken\" on stderr", done.label));
        }
        self.context.push(done.summary());
        self
    }

    /// Adds a line to the failure message.
    pub fn note(&mut self, line: String) -> &mut Self {
        self.context.push(line);
        self
    }

    /// Fails the test if anything was wrong.
    #[track_caller]
    pub fn done(&mut self) {
        if self.problems.is_empty() {
            return;
        }
        let mut message = format!("interop cell `{}` FAILED:\n", self.cell);
        for problem in &self.problems {
            let _ = writeln!(message, "  - {problem}");
        }
        message.push_str("what each process did:\n");
        for line in &self.context {
            let _ = writeln!(message, "  {line}");
        }
        for path in &self.attached {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let _ = writeln!(message, "  [{}] ends with:\n{}", path.display(), tail(&text, 1500).trim_end());
        }
        panic!("{message}");
    }
}

/// "N bytes, sha256 HEX" (or "nothing").
pub(crate) fn digest(data: &[u8]) -> String {
    if data.is_empty() {
        return "nothing (0 bytes)".to_string();
    }
    let hex: String = sha256(data).iter().map(|b| format!("{b:02x}")).collect();
    if data.len() <= 64 {
        format!("{} bytes {:?}, sha256 {}", data.len(), String::from_utf8_lossy(data), &hex[..16])
    } else {
        format!("{} bytes, sha256 {}", data.len(), &hex[..16])
    }
}

/// The body of an HTTP response (everything after the first blank line); empty without
/// one.
pub(crate) fn http_body(response: &[u8]) -> &[u8] {
    match response.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => &response[at + 4..],
        None => &[],
    }
}

/// Whether a socket listens on `port` (IPv4 or IPv6), from `/proc/net/tcp*`: no
/// connection is made, so a one-shot server is not used up by the check.
pub(crate) fn listening(port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).unwrap_or_default().lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 3 && cols[1].ends_with(&suffix) && cols[3] == "0A"
        })
    })
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
pub(crate) fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids whose parent is `pid`.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Open fds of `pid` (`/proc/PID/fd`).
pub(crate) fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// The usual request for nginx's 50 MiB file.
pub(crate) const GET_BIG: &str = r"printf 'GET /big.bin HTTP/1.0\r\nHost: localhost\r\n\r\n'";
/// 8 MiB, the size of transfers with peers: enough to fill every socket buffer on the way
/// several times over.
pub(crate) const PEER_BIG: usize = 8 * MIB;

/// A Python that has aiosmtpd (the SMTP peer of the STARTTLS tests and recipe): see
/// [`python_with`].
pub(crate) fn aiosmtpd_python() -> Option<&'static str> {
    python_with("aiosmtpd")
}

/// A Python that can import `module` (a peer packaged by Debian, as python3-aiosmtpd or
/// python3-pyftpdlib): Debian's `/usr/bin/python3`, where those install, else the first
/// `python3` on PATH (which may be another build, as pyenv's, without them).
pub(crate) fn python_with(module: &str) -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|python| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}
