//! tokio `AsyncRead`/`AsyncWrite` interoperation, both ways.

use bytes::Bytes;
use streamtool::streams::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::run;

#[test]
fn tokio_duplex_is_a_byte_stream_with_half_close() {
    run(async {
        let (a, b) = tokio::io::duplex(64);
        let mut a = IoStream::new(a);
        let mut b = IoStream::new(b);
        a.send(Bytes::from_static(b"hello, ")).await.unwrap();
        a.send(Bytes::from_static(b"world\n")).await.unwrap();
        a.send_eof().await.unwrap();
        a.send_eof().await.unwrap(); // idempotent
        assert!(matches!(a.send(Bytes::from_static(b"x")).await, Err(StreamError::Closed)));
        let mut buffered = BufferedByteStream::new(b);
        let line = buffered.receive_until(b"\n", 100).await.unwrap();
        assert!(matches!(buffered.receive(10).await, Err(StreamError::EndOfStream)));
        let reply: Vec<u8> = line.iter().rev().copied().collect();
        buffered.send(Bytes::from(reply)).await.unwrap();
        b = buffered.into_parts().0;
        b.send_eof().await.unwrap();
        assert_eq!(a.receive(100).await.unwrap(), &b"dlrow ,olleh"[..]);
        assert!(matches!(a.receive(100).await, Err(StreamError::EndOfStream)));
        assert!(matches!(a.receive(0).await, Err(StreamError::InvalidMaxBytes)));
        a.aclose().await.unwrap();
        assert!(matches!(a.receive(1).await, Err(StreamError::Closed)));
    });
}

#[test]
fn receive_into_never_reads_more_than_max_bytes() {
    run(async {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"0123456789").await.unwrap();
        let mut b = IoStream::new(b);
        assert_eq!(b.receive(4).await.unwrap(), &b"0123"[..]);
        assert_eq!(b.receive(100).await.unwrap(), &b"456789"[..]);
    });
}

#[test]
fn memory_byte_streams_as_tokio_io_work_full_duplex() {
    run(async {
        let (a, b) = memory_byte_stream_pair(2);
        let a = ByteStreamIo::from_stapled(a);
        let b = ByteStreamIo::from_stapled(b);
        // Both sides write 1 MiB while reading: with one operation slot per direction
        // neither blocks the other.
        let payload: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
        let expected = payload.clone();
        let left = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(a);
            let writer = async {
                w.write_all(&payload).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let reader = async {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            };
            tokio::join!(writer, reader).1
        });
        let (mut r, mut w) = tokio::io::split(b);
        let mut echoed = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            echoed.extend_from_slice(&buf[..n]);
            w.write_all(&buf[..n]).await.unwrap();
        }
        w.shutdown().await.unwrap();
        assert_eq!(echoed, expected);
        assert_eq!(left.await.unwrap(), expected);
    });
}

#[test]
fn stream_errors_survive_the_trip_through_io_error() {
    run(async {
        let (tx, rx) = memory_object_stream::<Bytes>(1);
        let mut reader = ByteStreamReader::new(ObjectByteReceiveStream::new(rx));
        tx.send(Bytes::from_static(b"ab")).await.unwrap();
        drop(tx);
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ab");

        let (tx, rx) = memory_object_stream::<Bytes>(1);
        drop(rx);
        let mut writer = ByteStreamWriter::new(ObjectByteSendStream::new(tx));
        // The send is driven at once, so the failure surfaces on the write itself.
        let err = writer.write_all(b"lost?").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<StreamError>());
        assert!(matches!(inner, Some(StreamError::Broken(_))), "{err:?}");
    });
}
