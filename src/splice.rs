//! Zero-copy relaying with splice(2) (Linux): bytes go from one end into a kernel pipe and
//! from the pipe into the other end, never through user memory. `pipe` uses it for plain
//! TCP/UNIX to TCP/UNIX relays with no shaping; `connect` and `serve` for stdin and stdout
//! against a plain socket (see [`crate::stdio_fd`]).
//!
//! A regular file (or a device that is always ready) going to a socket or pipe is sent with
//! sendfile(2) instead, one system call per piece. When the kernel refuses splice or
//! sendfile for a descriptor (EINVAL: a file opened with O_APPEND, a device without splice
//! support), the copy carries on through a user-space buffer, without losing what was
//! already in the kernel pipe.
//!
//! Elsewhere (macOS, FreeBSD) the same API copies through a user-space buffer with read(2)
//! and write(2), chosen at compile time: splice(2) and pipe sizing are Linux's, and the BSD
//! sendfile(2) (file to socket only) has not been measured to pay against that copy.
//!
//! Safe code only: `nix` wraps the system calls, tokio's readiness drives them.
//!
//! Which path ran is observable at debug level (`-vv`, or `RUST_LOG=streamtool::splice=debug`):
//! each transfer says `splice: sending fd X to fd Y with sendfile(2)`, `splice: relaying
//! fd X to fd Y with splice(2)` (straight across, or through a kernel pipe) once the first
//! bytes have gone that way, and `splice(2) refused; copying through user space` when it
//! falls back. A direct splice also ends with a count of its calls and of how often each end
//! was not ready.

use crate::platform::AsSocketHandle as AsFd;
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, BorrowedFd};

#[cfg(target_os = "linux")]
use nix::errno::Errno;
#[cfg(target_os = "linux")]
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;

use crate::relay::Meter;

#[cfg(target_os = "linux")]
/// How much one splice call moves at most, and the pipe size asked for.
const SPLICE_CHUNK: usize = 1 << 20;

#[cfg(target_os = "linux")]
/// How much one sendfile call offers at most (it returns early when the socket is full).
const SENDFILE_CHUNK: usize = 4 << 20;

/// The buffer of the user-space fallback.
const USER_CHUNK: usize = 256 * 1024;

/// One end splice can drive: a non-blocking socket or pipe registered with the event loop,
/// or a descriptor that is always ready (a regular file, /dev/null).
pub trait SpliceEnd: AsFd + Sync {
    /// Waits until the end is ready for `interest`.
    fn ready_for(&self, interest: Interest) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Runs a non-blocking operation, clearing readiness on `WouldBlock`.
    fn try_with<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
    /// Whether the end never waits (a regular file): such a source is sent with sendfile(2).
    fn always_ready(&self) -> bool {
        false
    }
    /// Whether the end is a pipe or FIFO: then one splice(2) call moves bytes straight
    /// between the two ends, with no pipe of our own in between.
    fn is_pipe(&self) -> bool {
        false
    }
}

/// A socket splice can drive and half-close.
pub trait SpliceSocket: SpliceEnd {
    /// `shutdown(SHUT_WR)`.
    fn shutdown_write(&self) -> io::Result<()>;
}

macro_rules! splice_socket {
    ($t:ty) => {
        impl SpliceEnd for $t {
            async fn ready_for(&self, interest: Interest) -> io::Result<()> {
                self.ready(interest).await.map(drop)
            }
            fn try_with<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
                self.try_io(interest, f)
            }
        }
        impl SpliceSocket for $t {
            fn shutdown_write(&self) -> io::Result<()> {
                socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write)
            }
        }
    };
}
splice_socket!(tokio::net::TcpStream);
splice_socket!(crate::platform::net::UnixStream);

#[cfg(target_os = "linux")]
fn splice_once(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    splice(from, None, to, None, len, SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK)
        .map_err(io::Error::from)
}

#[cfg(target_os = "linux")]
/// Whether the kernel refuses the operation for this kind of descriptor, so that a plain
/// read/write copy should take over.
fn unsupported(err: &io::Error) -> bool {
    matches!(err.raw_os_error().map(Errno::from_raw), Some(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP))
}

/// Whether to try again at once (a signal interrupted the call) or after readiness.
fn retry(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// Why a splice direction stopped early.
#[derive(Debug)]
pub struct SpliceError {
    /// Whether reading the source failed (else writing the destination did).
    pub reading: bool,
    /// The OS error.
    pub error: io::Error,
    /// Bytes moved before it.
    pub bytes: u64,
}

/// Moves everything `src` sends to `dst`, then half-closes `dst`; on an error `dst` is
/// half-closed too, so that the peer does not wait for data that will never come. Returns
/// the byte count.
///
/// # Errors
/// The sockets' errors (a reset, a broken pipe), or the pipe's creation failing.
pub async fn splice_direction<S: SpliceEnd, D: SpliceSocket>(
    src: &S,
    dst: &D,
    meter: &Meter,
) -> Result<u64, SpliceError> {
    let result = transfer(src, dst, &|n| meter.add(n)).await;
    let shutdown = dst.shutdown_write();
    let total = result?;
    shutdown.map(|()| total).map_err(|error| SpliceError { reading: false, error, bytes: total })
}

/// Moves everything `src` sends to `dst` until `src` ends, calling `moved` with each piece
/// once it is written; closes nothing. Returns the byte count.
///
/// # Errors
/// Either end's error (a reset, a broken pipe), or the pipe's creation failing.
pub async fn transfer<S: SpliceEnd, D: SpliceEnd>(
    src: &S,
    dst: &D,
    moved: &(dyn Fn(u64) + Sync),
) -> Result<u64, SpliceError> {
    let mut total = 0u64;
    let counted = |n: usize, total: &mut u64| {
        *total += n as u64;
        moved(n as u64);
    };
    #[cfg(not(target_os = "linux"))]
    let result = copy_user(src, dst, Vec::new(), &mut total, &counted).await;
    #[cfg(target_os = "linux")]
    let result = async {
        if src.always_ready() && !dst.always_ready() && send_file(src, dst, &mut total, &counted).await? {
            return Ok(());
        }
        if (src.is_pipe() || dst.is_pipe()) && splice_direct(src, dst, &mut total, &counted).await? {
            return Ok(());
        }
        let pending = match splice_all(src, dst, &mut total, &counted).await? {
            None => return Ok(()),
            Some(pending) => pending,
        };
        tracing::debug!("splice(2) refused; copying through user space");
        copy_user(src, dst, pending, &mut total, &counted).await
    }
    .await;
    result.map(|()| total).map_err(|(reading, error)| SpliceError { reading, error, bytes: total })
}

type Failure = (bool, io::Error);

fn reading(e: io::Error) -> Failure {
    (true, e)
}

fn writing(e: io::Error) -> Failure {
    (false, e)
}

#[cfg(target_os = "linux")]
/// sendfile(2) from an always-ready source until its end. `Ok(false)`: the kernel refused
/// it before anything moved.
async fn send_file<S: SpliceEnd, D: SpliceEnd>(
    src: &S,
    dst: &D,
    total: &mut u64,
    counted: &impl Fn(usize, &mut u64),
) -> Result<bool, Failure> {
    loop {
        dst.ready_for(Interest::WRITABLE).await.map_err(writing)?;
        let sent = dst.try_with(Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile(dst.as_fd(), src.as_fd(), None, SENDFILE_CHUNK)
                .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => return Ok(true),
            Ok(n) => {
                if *total == 0 {
                    tracing::debug!("splice: sending {} with sendfile(2)", fds(src, dst));
                }
                counted(n, total);
            }
            Err(e) if retry(&e) => {}
            Err(e) if *total == 0 && unsupported(&e) => return Ok(false),
            // The file's errors are I/O errors; everything else is the destination's.
            Err(e) if e.raw_os_error() == Some(Errno::EIO as i32) => return Err(reading(e)),
            Err(e) => return Err(writing(e)),
        }
    }
}

#[cfg(target_os = "linux")]
/// src -> dst with splice(2) straight from one to the other (one of them is a pipe) until
/// src ends. `Ok(false)`: the kernel refused it before anything moved.
///
/// A non-blocking splice that fails with EAGAIN does not say which end was not ready, so
/// a zero-timeout poll(2) of both asks, and only that end's readiness is cleared. The call
/// runs inside both ends' `try_with`, which take their readiness snapshot before it: a
/// readiness event that arrives meanwhile (another worker thread runs the event loop) is
/// newer than the snapshot and survives the clearing, so no wake-up is lost.
async fn splice_direct<S: SpliceEnd, D: SpliceEnd>(
    src: &S,
    dst: &D,
    total: &mut u64,
    counted: &impl Fn(usize, &mut u64),
) -> Result<bool, Failure> {
    /// What one attempt found, besides an error.
    enum Step {
        Moved(usize),
        /// EAGAIN with room in dst: src had nothing (its readiness is cleared by the
        /// outer `try_with`, which sees this as WouldBlock).
        SourceEmpty,
        /// dst was full (its readiness cleared by the inner `try_with`) or not ready.
        DestinationFull,
        /// EAGAIN, but both ends were ready by the time poll(2) looked.
        Retry,
    }
    let mut both_ready = 0u32;
    // For the debug line at the end: splice calls, and how often each end was not ready.
    let (mut calls, mut source_empty, mut destination_full) = (0u64, 0u64, 0u64);
    loop {
        // Immediate when the cached readiness says so.
        src.ready_for(Interest::READABLE).await.map_err(reading)?;
        dst.ready_for(Interest::WRITABLE).await.map_err(writing)?;
        let attempt = src.try_with(Interest::READABLE, || {
            let inner = dst.try_with(Interest::WRITABLE, || {
                match splice_once(src.as_fd(), dst.as_fd(), SPLICE_CHUNK) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let (readable, writable) = readiness(src, dst)?;
                        if !writable {
                            Err(e)
                        } else if !readable {
                            Ok(Step::SourceEmpty)
                        } else {
                            Ok(Step::Retry)
                        }
                    }
                    result => result.map(Step::Moved),
                }
            });
            match inner {
                Ok(Step::SourceEmpty) => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::DestinationFull),
                other => other,
            }
        });
        calls += 1;
        match &attempt {
            Ok(Step::DestinationFull) => destination_full += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => source_empty += 1,
            _ => {}
        }
        match attempt {
            Ok(Step::Moved(0)) => {
                tracing::debug!(
                    "splice: {} done: {} bytes in {calls} splice(2) attempts; the source was empty \
                     {source_empty} times, the destination full {destination_full} times",
                    fds(src, dst),
                    *total
                );
                return Ok(true);
            }
            Ok(Step::Retry) => {
                both_ready += 1;
                if both_ready > 2 {
                    // Never spin on a readiness poll(2) keeps reporting.
                    tokio::task::yield_now().await;
                }
            }
            Ok(Step::Moved(n)) => {
                both_ready = 0;
                if *total == 0 {
                    tracing::debug!("splice: relaying {} with splice(2), straight across", fds(src, dst));
                }
                counted(n, total);
            }
            // The next round waits for whichever end was found not ready.
            Ok(Step::DestinationFull) | Ok(Step::SourceEmpty) => {}
            Err(e) if retry(&e) => {}
            Err(e) if *total == 0 && unsupported(&e) => return Ok(false),
            // EPIPE is the destination's; otherwise blame the end that is not a pipe (a
            // socket's reset or timeout), or the destination if both are pipes.
            Err(e) if e.raw_os_error() == Some(Errno::EPIPE as i32) || src.is_pipe() => {
                return Err(writing(e));
            }
            Err(e) => return Err(reading(e)),
        }
    }
}

#[cfg(target_os = "linux")]
/// `fd X to fd Y`, for the debug lines.
fn fds<S: SpliceEnd, D: SpliceEnd>(src: &S, dst: &D) -> String {
    format!("fd {} to fd {}", src.as_fd().as_raw_fd(), dst.as_fd().as_raw_fd())
}

#[cfg(target_os = "linux")]
/// Whether src has something to read and dst room to write, right now (an always-ready
/// end counts as ready).
fn readiness<S: SpliceEnd, D: SpliceEnd>(src: &S, dst: &D) -> io::Result<(bool, bool)> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // In this order: src's entry (unless always ready), then dst's.
    let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2);
    if !src.always_ready() {
        fds.push(PollFd::new(src.as_fd(), PollFlags::POLLIN));
    }
    if !dst.always_ready() {
        fds.push(PollFd::new(dst.as_fd(), PollFlags::POLLOUT));
    }
    loop {
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => break,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Errors and hang-ups count as ready: the next splice reports them.
    let ready = |fd: &PollFd<'_>, flags: PollFlags| {
        fd.revents().is_some_and(|r| r.intersects(flags | PollFlags::POLLERR | PollFlags::POLLHUP))
    };
    let mut it = fds.iter();
    let readable = src.always_ready() || it.next().is_some_and(|fd| ready(fd, PollFlags::POLLIN));
    let writable = dst.always_ready() || it.next().is_some_and(|fd| ready(fd, PollFlags::POLLOUT));
    Ok((readable, writable))
}

#[cfg(target_os = "linux")]
/// src -> kernel pipe -> dst until src ends. `Ok(Some(bytes))`: the kernel refused splice
/// for one of the ends; `bytes` were taken from src but not written yet.
async fn splice_all<S: SpliceEnd, D: SpliceEnd>(
    src: &S,
    dst: &D,
    total: &mut u64,
    counted: &impl Fn(usize, &mut u64),
) -> Result<Option<Vec<u8>>, Failure> {
    let (pipe_read, pipe_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| reading(e.into()))?;
    // A bigger pipe means fewer round trips; the default (64 KiB) still works if refused.
    let _ = fcntl(&pipe_write, FcntlArg::F_SETPIPE_SZ(SPLICE_CHUNK as i32));
    let mut announced = false;
    loop {
        src.ready_for(Interest::READABLE).await.map_err(reading)?;
        // The pipe is empty here, so `WouldBlock` can only mean the source has nothing.
        let filled = match src
            .try_with(Interest::READABLE, || splice_once(src.as_fd(), pipe_write.as_fd(), SPLICE_CHUNK))
        {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if retry(&e) => continue,
            Err(e) if unsupported(&e) => return Ok(Some(Vec::new())),
            Err(e) => return Err(reading(e)),
        };
        let mut left = filled;
        while left > 0 {
            dst.ready_for(Interest::WRITABLE).await.map_err(writing)?;
            match dst.try_with(Interest::WRITABLE, || splice_once(pipe_read.as_fd(), dst.as_fd(), left)) {
                Ok(0) => return Err(writing(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    if !announced {
                        announced = true;
                        tracing::debug!(
                            "splice: relaying {} with splice(2) through a kernel pipe",
                            fds(src, dst)
                        );
                    }
                    left -= n;
                    // Counted as it goes out: a slow reader still shows progress (and
                    // activity, for the idle timeout).
                    counted(n, total);
                }
                Err(e) if retry(&e) => {}
                Err(e) if unsupported(&e) => {
                    // Everything in the pipe is there already: read it back out.
                    let mut pending = vec![0; left];
                    let mut got = 0;
                    while got < left {
                        match nix::unistd::read(&pipe_read, &mut pending[got..]) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(Errno::EINTR) => {}
                            Err(e) => return Err(reading(e.into())),
                        }
                    }
                    pending.truncate(got);
                    return Ok(Some(pending));
                }
                Err(e) => return Err(writing(e)),
            }
        }
    }
}

/// The fallback: read(2) and write(2) through a buffer, `pending` first.
async fn copy_user<S: SpliceEnd, D: SpliceEnd>(
    src: &S,
    dst: &D,
    pending: Vec<u8>,
    total: &mut u64,
    counted: &impl Fn(usize, &mut u64),
) -> Result<(), Failure> {
    write_all(dst, &pending).await?;
    counted(pending.len(), total);
    let mut buf = pending;
    buf.resize(USER_CHUNK, 0);
    loop {
        src.ready_for(Interest::READABLE).await.map_err(reading)?;
        let n = match src.try_with(Interest::READABLE, || read_end(src, &mut buf)) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if retry(&e) => continue,
            Err(e) => return Err(reading(e)),
        };
        write_all(dst, &buf[..n]).await?;
        counted(n, total);
    }
}

/// read(2) from an end; on Windows (sockets only) the socket's recv.
fn read_end<S: SpliceEnd>(src: &S, buf: &mut [u8]) -> io::Result<usize> {
    #[cfg(unix)]
    return nix::unistd::read(src.as_fd(), buf).map_err(io::Error::from);
    #[cfg(not(unix))]
    std::io::Read::read(&mut &*socket2::SockRef::from(src), buf)
}

/// write(2) to an end; on Windows (sockets only) the socket's send.
fn write_end<D: SpliceEnd>(dst: &D, data: &[u8]) -> io::Result<usize> {
    #[cfg(unix)]
    return nix::unistd::write(dst.as_fd(), data).map_err(io::Error::from);
    #[cfg(not(unix))]
    std::io::Write::write(&mut &*socket2::SockRef::from(dst), data)
}

async fn write_all<D: SpliceEnd>(dst: &D, mut data: &[u8]) -> Result<(), Failure> {
    while !data.is_empty() {
        dst.ready_for(Interest::WRITABLE).await.map_err(writing)?;
        match dst.try_with(Interest::WRITABLE, || write_end(dst, data)) {
            Ok(0) => return Err(writing(io::ErrorKind::WriteZero.into())),
            Ok(n) => data = &data[n..],
            Err(e) if retry(&e) => {}
            Err(e) => return Err(writing(e)),
        }
    }
    Ok(())
}
