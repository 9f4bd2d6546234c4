//! Shared test helpers: one copy of each helper more than one test module uses
//! (docs/testing.md, "Layout", lists them). Here: runtimes and bounds, preconditions, the
//! FIN wait. By topic: `cli` (the real binary: processes, servers, in-test peers), `certs`
//! (test PKIs, the seed certificate, openssl, certificate errors), `data` (payloads, hex,
//! byte comparisons), `streams` (the library in-process: loopback sockets, in-memory
//! streams), `peers` (the interop harness: real peers, cells, jobs).
//!
//! The rules every test here follows (issue 27, "tests that prove what they name"):
//!
//! - Check the exact outcome the name promises: the exact exit code, the message line (not
//!   "some error"), the bytes by comparison. A rejection asserts the specific error (the
//!   error variant, the alert, the certificate error, or the line that names the reason).
//! - Nothing passes vacuously: an input that is missing (a corpus, `/proc`) fails with a
//!   reason; a precondition the machine may lack (a system trust store, IPv6 on loopback, an
//!   interop peer) goes through [`precondition`]: `SKIPPED: <what>` on stderr, and a failure
//!   under CI.
//! - Readiness by a signal, never by a sleep: a line on stderr or stdout, a socket state
//!   ([`peer_fin_arrived`], a successful connect), a file appearing; each wait bounded
//!   ([`TEST_TIMEOUT`], `cli::STEP`). A sleep may create a situation (a slow peer)
//!   only if the test then checks that the situation happened.
//! - Everything that can hang has a bound; real sockets on loopback and real peers, no
//!   mocked network.
//! - A test named for a mechanism shows that the mechanism ran (the splice tests assert
//!   `streamtool::splice`'s debug lines), and fails when it is broken: break the code once,
//!   see the test fail, restore.

pub mod certs;
pub mod cli;
pub mod data;
pub mod peers;
pub mod streams;

use std::future::Future;
use std::time::Duration;

/// How long any single test may take before it is failed as hung.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `fut` under [`TEST_TIMEOUT`], failing the test if it hangs.
pub async fn timeout<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, fut).await.expect("the test timed out (hung?)")
}

/// Lets every other task on a current-thread runtime run until it blocks (AnyIO's
/// `wait_all_tasks_blocked`): yields often enough for spawned tasks to reach their await.
pub async fn settle() {
    for _ in 0..32 {
        tokio::task::yield_now().await;
    }
}

/// A multi-thread runtime (four workers) test body, failed as hung after `limit`: for tests
/// whose clients and servers must run in parallel (many concurrent TLS clients, a child
/// process relaying while the test reads).
pub fn run_threaded<F: Future>(limit: Duration, fut: F) -> F::Output {
    run_on_workers(4, limit, fut)
}

/// A multi-thread runtime with `workers` worker threads, failed as hung after `limit` (the
/// stress and soak tests use two, as many as the machine has cores).
pub fn run_on_workers<F: Future>(workers: usize, limit: Duration, fut: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { tokio::time::timeout(limit, fut).await.expect("the test timed out (hung?)") })
}

/// A current-thread runtime test body, under the test timeout.
pub fn run<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { timeout(fut).await })
}

/// Whether a precondition this machine may lack holds (a system trust store, IPv6 on
/// loopback), with the convention of `peers::need` for missing peers: when it does not,
/// the test fails under CI (the `CI` environment variable set: `.ci/run` sets it) and is
/// otherwise skipped with a line on stderr that says so (`SKIPPED: <what>`), never passed
/// silently. The caller returns at once when this is false.
pub fn precondition(met: bool, what: &str) -> bool {
    if met {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} (CI is set: a missing precondition is a failure, not a skip)"
    );
    eprintln!("SKIPPED: {what}");
    false
}

/// Whether the system trust store has certificates ([`streamtool::streams::tls::Trust::System`]
/// builds a client configuration); see [`precondition`].
pub fn system_trust_store() -> bool {
    use streamtool::streams::tls::{ClientOptions, KeyLog, Trust};
    let options = ClientOptions { trust: Trust::System, keylog: KeyLog::Off, ..Default::default() };
    match options.build() {
        Ok(_) => true,
        Err(err) => precondition(false, &format!("no system trust store on this machine ({err})")),
    }
}

/// Whether `::1` can be bound (IPv6 on loopback); see [`precondition`].
pub fn ipv6_loopback() -> bool {
    let bound = std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0));
    match bound {
        Ok(_) => true,
        Err(err) => {
            precondition(false, &format!("::1 cannot be bound on this machine ({err}): the IPv6 part"))
        }
    }
}

/// How long [`peer_fin_arrived`] waits.
pub const FIN_LIMIT: Duration = Duration::from_secs(10);

/// Waits until the peer's FIN has reached `socket` (poll(2) reports POLLRDHUP), failing the
/// test after [`FIN_LIMIT`]. TCP delivers in order, so everything the peer sent before its
/// FIN is then in the socket's receive queue. Reads nothing and leaves the event loop's
/// readiness alone (a zero-timeout poll(2) of its own).
pub async fn peer_fin_arrived(socket: &impl std::os::fd::AsFd) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // POLLRDHUP (Linux, 0x2000 on every architecture but SPARC): nix does not name it, and
    // its `revents()` is `None` when the kernel reports a flag it does not know. Asked for
    // POLLRDHUP alone, the kernel can report only it, POLLHUP, POLLERR or POLLNVAL.
    let rdhup = PollFlags::from_bits_retain(0x2000);
    let deadline = tokio::time::Instant::now() + FIN_LIMIT;
    loop {
        let mut fds = [PollFd::new(socket.as_fd(), rdhup)];
        let ready = poll(&mut fds, PollTimeout::ZERO).expect("poll(2)");
        let reported = fds[0].revents();
        assert!(!reported.is_some_and(|r| r.contains(PollFlags::POLLNVAL)), "not an open descriptor");
        if ready > 0 && reported.is_none_or(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the peer's FIN did not arrive within {FIN_LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
