//! Buffered byte streams: spec §3, scenarios 30-40 and D1-D5, plus cancel safety.

use std::time::Duration;

use bytes::Bytes;
use streamtool::streams::*;

use crate::support::streams::{Loopback, MemRx, b};
use crate::support::{run, settle};

type MemTx = ObjectByteSendStream<MemoryObjectSendStream<Bytes>>;

fn buffered(capacity: usize) -> (MemoryObjectSendStream<Bytes>, BufferedByteStream<MemRx>) {
    let (tx, rx) = memory_object_stream::<Bytes>(capacity);
    (tx, BufferedByteStream::new(ObjectByteReceiveStream::new(rx)))
}

// scenario 30
#[test]
fn receive_exactly_joins_chunks() {
    run(async {
        let (tx, mut buffered) = buffered(2);
        tx.send(b(b"abcd")).await.unwrap();
        tx.send(b(b"efgh")).await.unwrap();
        assert_eq!(buffered.receive_exactly(8).await.unwrap(), &b"abcdefgh"[..]);
    });
}

// scenario 31
#[test]
fn receive_exactly_at_end_of_stream_is_incomplete_read_and_keeps_buffer() {
    run(async {
        let (tx, mut buffered) = buffered(1);
        tx.send(b(b"abcd")).await.unwrap();
        tx.close();
        let err = buffered.receive_exactly(8).await.unwrap_err();
        assert!(matches!(err, StreamError::IncompleteRead), "{err:?}");
        assert_eq!(err.to_string(), "the stream was closed before the read operation could be completed");
        assert_eq!(buffered.buffer(), b"abcd");
    });
}

// scenario 32
#[test]
fn receive_until_finds_delimiter_spanning_chunks_and_consumes_it() {
    run(async {
        let (tx, mut buffered) = buffered(2);
        tx.send(b(b"abcd")).await.unwrap();
        tx.send(b(b"efgh")).await.unwrap();
        assert_eq!(buffered.receive_until(b"de", 10).await.unwrap(), &b"abc"[..]);
        assert_eq!(buffered.receive_until(b"h", 10).await.unwrap(), &b"fg"[..]);
    });
}

// scenario 33
#[test]
fn receive_until_at_end_of_stream_is_incomplete_read_and_keeps_buffer() {
    run(async {
        let (tx, mut buffered) = buffered(1);
        tx.send(b(b"abcd")).await.unwrap();
        tx.close();
        let err = buffered.receive_until(b"de", 10).await.unwrap_err();
        assert!(matches!(err, StreamError::IncompleteRead), "{err:?}");
        assert_eq!(buffered.buffer(), b"abcd");
    });
}

fn stapled_buffered(
    capacity: usize,
) -> (
    MemoryObjectSendStream<Bytes>,
    MemoryObjectReceiveStream<Bytes>,
    BufferedByteStream<StapledByteStream<MemTx, MemRx>>,
) {
    let (tx, rx) = memory_object_stream::<Bytes>(capacity);
    let stapled = StapledByteStream::new(
        ObjectByteSendStream::new(tx.clone()),
        ObjectByteReceiveStream::new(rx.clone()),
    );
    (tx, rx, BufferedByteStream::new(stapled))
}

// scenario 34
#[test]
fn buffered_stream_send_eof_closes_send_half_and_aclose_closes_both() {
    run(async {
        let (tx, rx, mut buffered) = stapled_buffered(1);
        tx.send(b(b"abcd")).await.unwrap();
        assert_eq!(buffered.receive_exactly(2).await.unwrap(), &b"ab"[..]);
        assert_eq!(buffered.receive_exactly(2).await.unwrap(), &b"cd"[..]);
        buffered.send_eof().await.unwrap();
        // Our outside `tx` is still open; the buffered stream's own send clone is closed.
        let err = buffered.send(b(b"abc")).await.unwrap_err();
        assert!(matches!(err, StreamError::Closed), "{err:?}");
        tx.close();
        assert!(matches!(rx.receive_nowait(), Err(StreamError::EndOfStream)));
        buffered.aclose().await.unwrap();
        let err = buffered.receive(10).await.unwrap_err();
        assert!(matches!(err, StreamError::Closed), "{err:?}");
    });
}

// scenario 35
#[test]
fn buffered_connectable_wraps_connected_stream() {
    run(async {
        let mut stream = BufferedConnectable::new(Loopback).connect().await.unwrap();
        stream.send(b(b"abcd")).await.unwrap();
        assert_eq!(stream.receive_exactly(2).await.unwrap(), &b"ab"[..]);
        assert_eq!(stream.receive_exactly(2).await.unwrap(), &b"cd"[..]);
        stream.aclose().await.unwrap();
    });
}

// scenarios 36 and 37 (`-1` is not a usize: only 0 exists in Rust)
#[test]
fn buffered_receive_zero_max_bytes_is_invalid() {
    run(async {
        let (_tx, mut buffered) = buffered(1);
        let err = buffered.receive(0).await.unwrap_err();
        assert!(matches!(err, StreamError::InvalidMaxBytes));
        assert_eq!(err.to_string(), "max_bytes must be a positive integer");
    });
}

// scenarios 38 and 39
#[test]
fn buffered_stream_receive_zero_max_bytes_is_invalid() {
    run(async {
        let (_tx, _rx, mut buffered) = stapled_buffered(1);
        assert!(matches!(buffered.receive(0).await, Err(StreamError::InvalidMaxBytes)));
    });
}

// scenario 40
#[test]
fn fed_data_comes_before_data_still_in_the_stream() {
    run(async {
        let (tx, _rx, mut buffered) = stapled_buffered(1);
        tx.send_nowait(b(b"abcd")).unwrap();
        buffered.feed_data(b"xxx");
        buffered.feed_data(b"foo");
        assert_eq!(buffered.receive_exactly(10).await.unwrap(), &b"xxxfooabcd"[..]);
    });
}

// D1 (derived, not an AnyIO test)
#[test]
fn receive_until_delimiter_split_across_chunks() {
    run(async {
        let (tx, mut buffered) = buffered(2);
        tx.send(b(b"ab\r")).await.unwrap();
        tx.send(b(b"\ncd")).await.unwrap();
        assert_eq!(buffered.receive_until(b"\r\n", 100).await.unwrap(), &b"ab"[..]);
        assert_eq!(buffered.buffer(), b"cd");
    });
}

// D2 (derived)
#[test]
fn delimiter_not_found_within_max_bytes_reads_no_further() {
    run(async {
        let (tx, mut buffered) = buffered(2);
        tx.send(b(b"abcd")).await.unwrap();
        tx.send(b(b"ef")).await.unwrap();
        let err = buffered.receive_until(b"!", 4).await.unwrap_err();
        assert!(matches!(err, StreamError::DelimiterNotFound { max_bytes: 4 }), "{err:?}");
        assert_eq!(err.to_string(), "the delimiter was not found among the first 4 bytes");
        assert_eq!(buffered.buffer(), b"abcd");
        assert_eq!(tx.statistics().current_buffer_used, 1, "the second chunk was not read");
    });
}

// D3 (derived): the bounded policy of PR #1340, pinned for both chunkings.
#[test]
fn receive_until_bound_does_not_depend_on_chunking() {
    run(async {
        let (tx, mut one_chunk) = buffered(1);
        tx.send(b(b"abcde!")).await.unwrap();
        assert!(matches!(
            one_chunk.receive_until(b"!", 3).await,
            Err(StreamError::DelimiterNotFound { max_bytes: 3 })
        ));

        let (tx, mut two_chunks) = buffered(2);
        tx.send(b(b"abc")).await.unwrap();
        tx.send(b(b"de!")).await.unwrap();
        assert!(matches!(
            two_chunks.receive_until(b"!", 3).await,
            Err(StreamError::DelimiterNotFound { max_bytes: 3 })
        ));

        // A delimiter that ends exactly at the bound is accepted, however it arrived.
        let (tx, mut edge) = buffered(2);
        tx.send(b(b"ab")).await.unwrap();
        tx.send(b(b"!cd")).await.unwrap();
        assert_eq!(edge.receive_until(b"!", 3).await.unwrap(), &b"ab"[..]);
        let (tx, mut edge2) = buffered(2);
        tx.send(b(b"ab!")).await.unwrap();
        assert_eq!(edge2.receive_until(b"!", 3).await.unwrap(), &b"ab"[..]);
        // A multi-byte delimiter must end within the bound too.
        let (tx, mut multi) = buffered(2);
        tx.send(b(b"ab\r\n")).await.unwrap();
        assert!(matches!(multi.receive_until(b"\r\n", 3).await, Err(StreamError::DelimiterNotFound { .. })));
        assert_eq!(multi.receive_until(b"\r\n", 4).await.unwrap(), &b"ab"[..]);
    });
}

// D4 (derived)
#[test]
fn buffered_receive_respects_max_bytes_without_reading() {
    run(async {
        let (tx, mut buffered) = buffered(1);
        buffered.feed_data(b"abcdef");
        assert_eq!(buffered.receive(4).await.unwrap(), &b"abcd"[..]);
        assert_eq!(buffered.receive(4).await.unwrap(), &b"ef"[..]);
        tx.send_nowait(b(b"x")).unwrap();
        assert_eq!(tx.statistics().current_buffer_used, 1, "the transport was not read");
    });
}

// D5 (derived)
#[test]
fn object_stream_surplus_stays_in_buffer() {
    run(async {
        let (tx, mut buffered) = buffered(1);
        tx.send(b(b"abcdef")).await.unwrap();
        assert_eq!(buffered.receive(2).await.unwrap(), &b"ab"[..]);
        assert_eq!(buffered.buffer(), b"cdef");
    });
}

#[test]
fn receive_until_returns_empty_frame_for_back_to_back_delimiters() {
    run(async {
        let (tx, mut buffered) = buffered(1);
        tx.send(b(b"\r\n\r\nx\r\n")).await.unwrap();
        assert_eq!(buffered.receive_until(b"\r\n", 10).await.unwrap(), &b""[..]);
        assert_eq!(buffered.receive_until(b"\r\n", 10).await.unwrap(), &b""[..]);
        assert_eq!(buffered.receive_until(b"\r\n", 10).await.unwrap(), &b"x"[..]);
        assert_eq!(
            buffered.receive_until(b"", 10).await.unwrap(),
            &b""[..],
            "empty delimiter matches at once"
        );
    });
}

#[test]
fn receive_until_dropped_under_timeout_loses_nothing() {
    run(async {
        let (tx, mut buffered) = buffered(4);
        tx.send(b(b"hello, ")).await.unwrap();
        // The delimiter has not arrived: the read times out, its future is dropped.
        let timed_out =
            tokio::time::timeout(Duration::from_millis(20), buffered.receive_until(b"\n", 100)).await;
        assert!(timed_out.is_err());
        tx.send(b(b"wor")).await.unwrap();
        let timed_out =
            tokio::time::timeout(Duration::from_millis(20), buffered.receive_until(b"\n", 100)).await;
        assert!(timed_out.is_err());
        tx.send(b(b"ld\nnext")).await.unwrap();
        assert_eq!(buffered.receive_until(b"\n", 100).await.unwrap(), &b"hello, world"[..]);
        assert_eq!(buffered.buffer(), b"next");
    });
}

#[test]
fn receive_exactly_dropped_in_select_loses_nothing() {
    run(async {
        let (tx, mut buffered) = buffered(4);
        let sender = tokio::spawn(async move {
            for chunk in [&b"ab"[..], b"cd", b"ef", b"gh"] {
                tx.send(Bytes::from_static(chunk)).await.unwrap();
                settle().await;
            }
        });
        let mut cancelled = 0;
        let got = loop {
            tokio::select! {
                biased;
                got = buffered.receive_exactly(8) => break got.unwrap(),
                () = tokio::task::yield_now() => cancelled += 1,
            }
        };
        assert_eq!(got, &b"abcdefgh"[..]);
        assert!(cancelled > 0, "the read was interrupted at least once");
        sender.await.unwrap();
    });
}

#[test]
fn skip_until_discards_through_the_delimiter_with_bounded_memory() {
    run(async {
        let (tx, mut buffered) = buffered(16);
        let sender = tokio::spawn(async move {
            for _ in 0..100 {
                tx.send(Bytes::from(vec![b'x'; 10_000])).await.unwrap();
            }
            tx.send(b(b"x\r")).await.unwrap();
            tx.send(b(b"\nrest")).await.unwrap();
        });
        let skipped = buffered.skip_until(b"\r\n").await.unwrap();
        assert_eq!(skipped, 1_000_001);
        assert!(buffered.buffer().len() <= 65536);
        sender.await.unwrap();
        assert_eq!(buffered.receive(10).await.unwrap(), &b"rest"[..]);
    });
}

#[test]
fn buffered_stream_reports_wrapped_attributes() {
    let (tx, rx) = memory_object_stream::<Bytes>(1);
    let buffered = BufferedByteStream::new(ObjectByteReceiveStream::new(rx));
    assert!(matches!(
        buffered.extra(attrs::socket::LOCAL_ADDRESS),
        Err(StreamError::AttributeNotFound("socket.local_address"))
    ));
    drop(tx);
}
