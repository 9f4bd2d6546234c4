//! stdin and stdout for the zero-copy path, where there is none (Windows): console and
//! pipe handles are not sockets, so stdio always takes the generic path (tokio's stdin
//! and stdout). The POSIX version is `stdio_fd.rs`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use crate::splice::SpliceEnd;

/// No value.
#[derive(Debug)]
enum Never {}

/// stdin or stdout driven directly: never available here.
#[derive(Debug)]
pub struct StdioFd(Never);

impl StdioFd {
    /// `None`: stdin takes the generic path.
    pub fn stdin() -> Option<Self> {
        None
    }

    /// `None`: stdout takes the generic path.
    pub fn stdout() -> Option<Self> {
        None
    }
}

impl std::os::windows::io::AsSocket for StdioFd {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        match self.0 {}
    }
}

impl SpliceEnd for StdioFd {
    async fn ready_for(&self, _interest: Interest) -> io::Result<()> {
        match self.0 {}
    }

    fn try_with<R>(&self, _interest: Interest, _f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self.0 {}
    }
}

impl AsyncRead for StdioFd {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.0 {}
    }
}

impl AsyncWrite for StdioFd {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, _data: &[u8]) -> Poll<io::Result<usize>> {
        match self.0 {}
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
}

/// A background job's terminal (SIGTTIN) is POSIX's: nothing to do here.
///
/// # Errors
/// None.
pub fn detach_background_stdin(_report: &dyn crate::event::Report) -> io::Result<bool> {
    Ok(false)
}
