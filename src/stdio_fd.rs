//! stdin and stdout as descriptors the event loop drives itself, for the zero-copy stdio
//! path of `connect` and `serve` ([`crate::splice::transfer`]), instead of tokio's
//! blocking thread pool (a thread hand-off there and back for every chunk).
//!
//! The catch is O_NONBLOCK: it belongs to the open file description, which fd 0 and 1
//! share with the parent shell and every other process that inherited them. Setting it on
//! fd 0 would make the shell's next read fail with EAGAIN, and no exit path (a panic, a
//! signal, SIGKILL) can be trusted to put it back. So the inherited descriptions are never
//! changed:
//!
//! - A pipe or FIFO is reopened through `/proc/self/fd/N`, which gives a *new* open file
//!   description of the same pipe; O_NONBLOCK goes on that one only, and it is registered
//!   with the event loop (as a tokio `pipe::Receiver` or `pipe::Sender`). The reopened pipe
//!   is checked to be the same inode. The pipe is grown to 1 MiB (`grow_pipe` says why).
//! - A regular file, or one of the memory devices that never block (`/dev/null`,
//!   `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`), is always ready: a duplicate
//!   of the descriptor is used as it is, flags untouched, so the file offset stays shared
//!   (`(head -c 10 >/dev/null; streamtool connect ...) < file` carries on where `head`
//!   stopped) and O_APPEND is honoured.
//! - Anything else keeps the generic path: a terminal, a socket (reopening a socket through
//!   /proc fails, and splicing it without O_NONBLOCK could block the event loop), other
//!   devices, or a failure along the way (no /proc, no permission on the pipe, a FIFO with
//!   no reader for stdout).
//!
//! Reopening through `/proc` and growing the pipe are Linux's: elsewhere (macOS, FreeBSD)
//! a pipe keeps the generic path, and a regular file or memory device is used as above.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::stat::{FileStat, SFlag, fstat};
use std::pin::Pin;
use std::task::{Context, Poll};

use nix::errno::Errno;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::unix::pipe;

use crate::splice::SpliceEnd;

/// stdin or stdout, ready for [`crate::splice::transfer`].
#[derive(Debug)]
pub struct StdioFd {
    inner: Inner,
}

#[derive(Debug)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code, reason = "pipes are reopened on Linux only"))]
enum Inner {
    /// A new, non-blocking open file description of the pipe or FIFO on stdin.
    Reader(pipe::Receiver),
    /// The same for stdout.
    Writer(pipe::Sender),
    /// A duplicate of a regular file's or a memory device's descriptor.
    Always(OwnedFd),
}

/// Which of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Stdin,
    Stdout,
}

impl StdioFd {
    /// stdin, if it can be driven without the blocking pool. Needs a tokio runtime.
    pub fn stdin() -> Option<Self> {
        Self::open(io::stdin().as_fd(), End::Stdin)
    }

    /// stdout, if it can be driven without the blocking pool. Needs a tokio runtime.
    pub fn stdout() -> Option<Self> {
        Self::open(io::stdout().as_fd(), End::Stdout)
    }

    fn open(fd: BorrowedFd<'_>, end: End) -> Option<Self> {
        match Self::try_open(fd, end) {
            Ok(Some(fd)) => Some(fd),
            Ok(None) => {
                tracing::debug!(?end, "not a pipe, a file or /dev/null: the generic path");
                None
            }
            Err(err) => {
                tracing::debug!(?end, "cannot drive it directly ({err}): the generic path");
                None
            }
        }
    }

    fn try_open(fd: BorrowedFd<'_>, end: End) -> io::Result<Option<Self>> {
        use std::io::IsTerminal;
        let stat = fstat(fd)?;
        let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        let inner = if kind == SFlag::S_IFREG {
            Inner::Always(fd.try_clone_to_owned()?)
        } else if kind == SFlag::S_IFIFO {
            return reopen_pipe(end, &stat);
        } else if kind == SFlag::S_IFCHR && memory_device(&stat) && !fd.is_terminal() {
            Inner::Always(fd.try_clone_to_owned()?)
        } else {
            return Ok(None);
        };
        Ok(Some(StdioFd { inner }))
    }
}

/// A new, non-blocking open file description of the pipe or FIFO on stdin or stdout,
/// through `/proc/self/fd/N`; `None` if that path leads to another pipe.
#[cfg(target_os = "linux")]
fn reopen_pipe(end: End, stat: &FileStat) -> io::Result<Option<StdioFd>> {
    let number = if end == End::Stdin { 0 } else { 1 };
    let path = format!("/proc/self/fd/{number}");
    // Opened with O_NONBLOCK (and O_CLOEXEC) by tokio: a new description.
    let inner = match end {
        End::Stdin => Inner::Reader(pipe::OpenOptions::new().open_receiver(&path)?),
        End::Stdout => Inner::Writer(pipe::OpenOptions::new().open_sender(&path)?),
    };
    let reopened = match &inner {
        Inner::Reader(r) => fstat(r)?,
        Inner::Writer(w) => fstat(w)?,
        Inner::Always(_) => unreachable!("a pipe was opened"),
    };
    if (reopened.st_dev, reopened.st_ino) != (stat.st_dev, stat.st_ino) {
        return Ok(None);
    }
    let fd = StdioFd { inner };
    grow_pipe(&fd);
    Ok(Some(fd))
}

/// Elsewhere a pipe keeps the generic path: `/dev/fd/N` (macOS, FreeBSD) duplicates the
/// descriptor instead of opening a new description, so O_NONBLOCK would reach the shell's.
#[cfg(not(target_os = "linux"))]
fn reopen_pipe(_end: End, _stat: &FileStat) -> io::Result<Option<StdioFd>> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "a pipe is reopened through /proc on Linux only"))
}

/// `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random` or `/dev/urandom` (Linux's
/// numbers: major 1).
#[cfg(target_os = "linux")]
fn memory_device(stat: &FileStat) -> bool {
    use nix::sys::stat::{major, minor};
    major(stat.st_rdev) == 1 && matches!(minor(stat.st_rdev), 3 | 5 | 7 | 8 | 9)
}

/// `/dev/null`, `/dev/zero`, `/dev/random` or `/dev/urandom`, by their device numbers.
#[cfg(not(target_os = "linux"))]
fn memory_device(stat: &FileStat) -> bool {
    ["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"]
        .iter()
        .any(|path| nix::sys::stat::stat(*path).is_ok_and(|device| device.st_rdev == stat.st_rdev))
}

/// The pipe capacity asked for on stdio pipes.
#[cfg(target_os = "linux")]
const PIPE_SIZE: i32 = 1 << 20;

/// Grows a stdio pipe to [`PIPE_SIZE`] (never shrinks it): with the default 64 KiB, the
/// process at the other end and this one take turns every 64 KiB, two context switches
/// each time. The capacity is the pipe's, shared with that process; it changes no
/// behaviour but how far a writer can run ahead. Refusals (the per-user pipe quota) are
/// ignored.
#[cfg(target_os = "linux")]
fn grow_pipe(pipe: &impl AsFd) {
    use nix::fcntl::{FcntlArg, fcntl};
    if fcntl(pipe.as_fd(), FcntlArg::F_GETPIPE_SZ).is_ok_and(|size| size < PIPE_SIZE) {
        let _ = fcntl(pipe.as_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    }
}

impl AsFd for StdioFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::Reader(r) => r.as_fd(),
            Inner::Writer(w) => w.as_fd(),
            Inner::Always(fd) => fd.as_fd(),
        }
    }
}

impl SpliceEnd for StdioFd {
    async fn ready_for(&self, interest: Interest) -> io::Result<()> {
        match &self.inner {
            Inner::Reader(r) => r.ready(interest).await.map(drop),
            Inner::Writer(w) => w.ready(interest).await.map(drop),
            Inner::Always(_) => Ok(()),
        }
    }

    fn try_with<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        // A pipe end has one direction: its `try_io` clears that readiness.
        match &self.inner {
            Inner::Reader(r) if interest.is_readable() => r.try_io(f),
            Inner::Writer(w) if interest.is_writable() => w.try_io(f),
            Inner::Reader(_) | Inner::Writer(_) => Err(wrong_way()),
            Inner::Always(_) => f(),
        }
    }

    fn always_ready(&self) -> bool {
        matches!(self.inner, Inner::Always(_))
    }

    fn is_pipe(&self) -> bool {
        matches!(self.inner, Inner::Reader(_) | Inner::Writer(_))
    }
}

fn wrong_way() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a pipe end used the wrong way")
}

/// Retries a call that a signal interrupted.
fn restarting<R>(mut f: impl FnMut() -> nix::Result<R>) -> io::Result<R> {
    loop {
        match f() {
            Err(Errno::EINTR) => {}
            result => return result.map_err(io::Error::from),
        }
    }
}

/// For the paths that need the bytes in user space (TLS, shaping): a pipe is read in the
/// event loop; a file or device is read at once (it never waits for long).
impl AsyncRead for StdioFd {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Reader(r) => Pin::new(r).poll_read(cx, buf),
            Inner::Writer(_) => Poll::Ready(Err(wrong_way())),
            Inner::Always(fd) => {
                let n = restarting(|| nix::unistd::read(&*fd, buf.initialize_unfilled()))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// As [`AsyncRead`], for stdout.
impl AsyncWrite for StdioFd {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Writer(w) => Pin::new(w).poll_write(cx, data),
            Inner::Reader(_) => Poll::Ready(Err(wrong_way())),
            Inner::Always(fd) => Poll::Ready(restarting(|| nix::unistd::write(&*fd, data))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // stdout stays open (the process's fd 1 does anyway) until the process exits.
        Poll::Ready(Ok(()))
    }
}

// ---- A background job's terminal ----

// `serve ... &` typed into an interactive shell.
//
// A process that reads the terminal while it is not in the terminal's foreground process
// group gets SIGTTIN and is stopped by the shell ("Stopped (tty input)"), and a stopped
// server never answers: the README's Quick start would hang. So `serve` in stdio mode
// checks first; a background job does not read the terminal at all, says so once, and
// takes its input as empty: the end of its input half-closes each connection at once
// (close_notify and FIN), as `serve ... </dev/null &` would.

/// Whether stdin is a terminal of which this process is not in the foreground process
/// group (a background job).
fn stdin_is_background_terminal() -> bool {
    let stdin = std::io::stdin();
    if !std::io::IsTerminal::is_terminal(&stdin) {
        return false;
    }
    // Only our controlling terminal stops a reader in the background (SIGTTIN); another
    // session's terminal is read as any file is.
    let ours = match (nix::sys::termios::tcgetsid(&stdin), nix::unistd::getsid(None)) {
        (Ok(terminal), Ok(session)) => terminal == session,
        _ => false,
    };
    match nix::unistd::tcgetpgrp(&stdin) {
        Ok(foreground) => ours && foreground != nix::unistd::getpgrp(),
        // No foreground group: nobody types into it.
        Err(_) => false,
    }
}

/// If stdin is a terminal of a background job, replaces it with `/dev/null` (an empty
/// input) and says so once. Returns whether it did.
///
/// # Errors
/// `/dev/null` that cannot be opened, or stdin that cannot be replaced.
pub fn detach_background_stdin(report: &dyn crate::event::Report) -> std::io::Result<bool> {
    if !stdin_is_background_terminal() {
        return Ok(false);
    }
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null).map_err(std::io::Error::from)?;
    report.notice(
        "stdin is the terminal of a background job: not reading it (the shell would stop this \
         job); input is empty, so each connection is half-closed at once. Run in the \
         foreground to type to the client, or give input with < FILE or a pipe",
    );
    Ok(true)
}
