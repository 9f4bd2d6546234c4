//! The floor of a tokio server's cost per connection, for `bench/conn_floor.py`.
//!
//! `accept_floor PORT task` is the smallest tokio server that does what `serve -k --discard`
//! does with each connection: accept it on a current-thread runtime, spawn a task, read to
//! the end, half-close, close. `accept_floor PORT inline` skips what tokio adds per
//! connection: it reads on the accept task at once and registers a connection with the
//! reactor (and spawns a task) only if the read would wait. `accept_floor PORT late` is in
//! between: a task per connection, registered with the reactor only if a read would wait.
//! None is useful for anything but measuring; none prints.

use std::io::Read;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn finish(mut stream: tokio::net::TcpStream) {
    let mut buf = [0u8; 512];
    while let Ok(1..) = stream.read(&mut buf).await {}
    let _ = stream.shutdown().await;
}

async fn with_a_task_each(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(finish(stream));
    }
}

/// Reads what is there without the reactor; `None` when the connection is done with.
fn read_ahead(stream: &mut std::net::TcpStream, buf: &mut [u8]) -> Option<()> {
    loop {
        match stream.read(buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(()),
            Err(_) => return None,
        }
    }
}

async fn finish_lazily(mut stream: std::net::TcpStream) {
    let mut buf = [0u8; 512];
    if read_ahead(&mut stream, &mut buf).is_none() {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    } else if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
        finish(stream).await;
    }
}

async fn accept_std(listener: &AsyncFd<std::net::TcpListener>) -> std::io::Result<std::net::TcpStream> {
    loop {
        let mut ready = listener.readable().await?;
        if let Ok(accepted) = ready.try_io(|l| l.get_ref().accept()) {
            let (stream, _) = accepted?;
            stream.set_nonblocking(true)?;
            return Ok(stream);
        }
    }
}

fn std_listener(port: u16) -> std::io::Result<AsyncFd<std::net::TcpListener>> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    // `AsyncFd::new` is deprecated for fds it cannot own; this one owns its listener, which
    // keeps the descriptor open for as long as it is registered (what `register` asks).
    #[allow(deprecated)]
    AsyncFd::new(listener)
}

async fn with_a_task_each_registered_late(port: u16) -> std::io::Result<()> {
    let listener = std_listener(port)?;
    loop {
        tokio::spawn(finish_lazily(accept_std(&listener).await?));
    }
}

async fn inline(port: u16) -> std::io::Result<()> {
    let listener = std_listener(port)?;
    let mut buf = [0u8; 512];
    loop {
        let mut stream = accept_std(&listener).await?;
        if read_ahead(&mut stream, &mut buf).is_none() {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        } else {
            tokio::spawn(finish(tokio::net::TcpStream::from_std(stream)?));
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let how = args.next().unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match how.as_str() {
            "inline" => inline(port).await,
            "late" => with_a_task_each_registered_late(port).await,
            _ => with_a_task_each(port).await,
        }
    })
}
