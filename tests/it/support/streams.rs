//! The library's streams in-process: loopback sockets through `streamtool::streams`,
//! in-memory streams, and reading a stream to its end.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use streamtool::streams::*;

/// `Bytes` from a byte string literal.
pub fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

/// The receiving half of an in-memory byte stream (object stream of `Bytes` read as bytes).
pub type MemRx = ObjectByteReceiveStream<MemoryObjectReceiveStream<Bytes>>;

/// A connectable whose every connection is an in-memory stream looped back to itself:
/// what it sends, it receives.
pub struct Loopback;

impl ByteStreamConnectable for Loopback {
    type Stream = MemoryByteStream;

    async fn connect(&self) -> Result<MemoryByteStream> {
        let (tx, rx) = memory_object_stream::<Bytes>(1);
        Ok(StapledByteStream::new(ObjectByteSendStream::new(tx), ObjectByteReceiveStream::new(rx)))
    }
}

/// A TCP listener on `127.0.0.1`, port 0, and the port it got.
pub async fn loopback_listener() -> (SocketListener, u16) {
    let listener =
        SocketListener::bind_tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("bind 127.0.0.1:0");
    let port = listener.tcp_port().expect("a TCP port");
    (listener, port)
}

/// Connects to `127.0.0.1:port` (bounded: 5 s).
pub async fn connect_loopback(port: u16) -> Result<TcpStream> {
    connect_tcp(
        "127.0.0.1",
        port,
        ConnectOptions { timeout: Some(Duration::from_secs(5)), ..Default::default() },
    )
    .await
}

/// Receives until the end of the stream.
pub async fn receive_all<S: ByteReceiveStream>(stream: &mut S) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match stream.receive(DEFAULT_MAX_BYTES).await {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::EndOfStream) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}
