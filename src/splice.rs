//! Zero-copy relaying between two sockets with splice(2) (Linux): bytes go from one
//! socket into a kernel pipe and from the pipe into the other socket, never through user
//! memory. `pipe` uses it for plain TCP/UNIX to TCP/UNIX relays with no shaping.
//!
//! Safe code only: `nix` wraps the system calls, tokio's readiness drives them.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;

use crate::relay::Meter;

/// How much one splice call moves at most, and the pipe size asked for.
const SPLICE_CHUNK: usize = 1 << 20;

/// A socket splice can drive.
pub trait SpliceSocket: AsFd + Sync {
    /// Waits until the socket is ready for `interest`.
    fn ready_for(&self, interest: Interest) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Runs a non-blocking operation, clearing readiness on `WouldBlock`.
    fn try_with<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
    /// `shutdown(SHUT_WR)`.
    fn shutdown_write(&self) -> io::Result<()>;
}

macro_rules! splice_socket {
    ($t:ty) => {
        impl SpliceSocket for $t {
            async fn ready_for(&self, interest: Interest) -> io::Result<()> {
                self.ready(interest).await.map(drop)
            }
            fn try_with<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
                self.try_io(interest, f)
            }
            fn shutdown_write(&self) -> io::Result<()> {
                socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write)
            }
        }
    };
}
splice_socket!(tokio::net::TcpStream);
splice_socket!(tokio::net::UnixStream);

fn splice_once(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    splice(from, None, to, None, len, SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK)
        .map_err(io::Error::from)
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
pub async fn splice_direction<S: SpliceSocket, D: SpliceSocket>(
    src: &S,
    dst: &D,
    meter: &Meter,
) -> Result<u64, SpliceError> {
    let mut total = 0u64;
    let result = copy(src, dst, meter, &mut total).await;
    let shutdown = dst.shutdown_write();
    match result {
        Ok(()) => {
            shutdown.map(|()| total).map_err(|error| SpliceError { reading: false, error, bytes: total })
        }
        Err((reading, error)) => Err(SpliceError { reading, error, bytes: total }),
    }
}

async fn copy<S: SpliceSocket, D: SpliceSocket>(
    src: &S,
    dst: &D,
    meter: &Meter,
    total: &mut u64,
) -> Result<(), (bool, io::Error)> {
    let reading = |e| (true, e);
    let writing = |e| (false, e);
    let (pipe_read, pipe_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| reading(e.into()))?;
    // A bigger pipe means fewer round trips; the default (64 KiB) still works if refused.
    let _ = fcntl(&pipe_write, FcntlArg::F_SETPIPE_SZ(SPLICE_CHUNK as i32));
    loop {
        src.ready_for(Interest::READABLE).await.map_err(reading)?;
        // The pipe is empty here, so `WouldBlock` can only mean the socket has nothing.
        let filled = match src
            .try_with(Interest::READABLE, || splice_once(src.as_fd(), pipe_write.as_fd(), SPLICE_CHUNK))
        {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(reading(e)),
        };
        let mut left = filled;
        while left > 0 {
            dst.ready_for(Interest::WRITABLE).await.map_err(writing)?;
            match dst.try_with(Interest::WRITABLE, || splice_once(pipe_read.as_fd(), dst.as_fd(), left)) {
                Ok(n) => left -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(writing(e)),
            }
        }
        *total += filled as u64;
        meter.add(filled as u64);
    }
}
