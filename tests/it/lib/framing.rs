//! Delimiter framing over byte streams.

use bytes::Bytes;
use streamtool::streams::*;

use crate::support::run;

/// Frames `input`, sent in the given chunks and then closed, and collects the outcome.
async fn frames_of(chunks: &[&'static [u8]], config: FrameConfig) -> (Vec<Bytes>, Option<StreamError>) {
    let (mut a, b) = memory_byte_stream_pair(chunks.len().max(1));
    for chunk in chunks {
        a.send(Bytes::from_static(chunk)).await.unwrap();
    }
    a.send_eof().await.unwrap();
    let mut framed = FramedStream::new(b, config);
    let mut frames = Vec::new();
    for _ in 0..1000 {
        match framed.receive().await {
            Ok(frame) => frames.push(frame),
            Err(StreamError::EndOfStream) => return (frames, None),
            Err(err) => return (frames, Some(err)),
        }
    }
    panic!("too many frames");
}

#[test]
fn max_frame_counts_payload_without_delimiter() {
    run(async {
        let (frames, err) = frames_of(&[b"abcd\r\nabcde\r\n"], FrameConfig::new(&b"\r\n"[..], 4)).await;
        assert_eq!(frames, [&b"abcd"[..]]);
        assert!(matches!(err, Some(StreamError::OversizedFrame { max_frame: 4 })), "{err:?}");
        assert_eq!(err.unwrap().to_string(), "frame longer than 4 bytes (no delimiter within the limit)");
    });
}

#[test]
fn oversized_frame_detected_however_it_was_chunked() {
    run(async {
        for chunks in
            [&[&b"abcdefgh\n"[..]][..], &[b"abc", b"defgh", b"\n"], &[b"a", b"b", b"c", b"d", b"e\n"]]
        {
            let (frames, err) = frames_of(chunks, FrameConfig::lines(3)).await;
            assert!(frames.is_empty());
            assert!(matches!(err, Some(StreamError::OversizedFrame { .. })), "{chunks:?}: {err:?}");
        }
    });
}

#[test]
fn skip_policy_discards_oversized_frames_and_counts_them() {
    run(async {
        let (mut a, b) = memory_byte_stream_pair(8);
        let mut config = FrameConfig::lines(3);
        config.on_oversize = Oversize::Skip;
        let mut framed = FramedStream::new(b, config);
        for chunk in [&b"ok\ntoo long"[..], b" still\nyes\n", b"x"] {
            a.send(Bytes::from_static(chunk)).await.unwrap();
        }
        a.send_eof().await.unwrap();
        assert_eq!(framed.receive().await.unwrap(), "ok");
        assert_eq!(framed.receive().await.unwrap(), "yes");
        assert_eq!(framed.receive().await.unwrap(), "x");
        assert!(matches!(framed.receive().await, Err(StreamError::EndOfStream)));
        assert_eq!(framed.frames_skipped(), 1);
    });
}

#[test]
fn unterminated_last_frame_is_delivered_by_default() {
    run(async {
        let (frames, err) = frames_of(&[b"a\nb"], FrameConfig::lines(10)).await;
        assert_eq!(frames, [&b"a"[..], &b"b"[..]]);
        assert!(err.is_none());
        // A clean end on a boundary gives no empty extra frame.
        let (frames, err) = frames_of(&[b"a\n"], FrameConfig::lines(10)).await;
        assert_eq!(frames, [&b"a"[..]]);
        assert!(err.is_none());
    });
}

#[test]
fn unterminated_last_frame_is_an_error_when_asked() {
    run(async {
        let mut config = FrameConfig::lines(10);
        config.trailing = Trailing::Error;
        let (frames, err) = frames_of(&[b"a\nb"], config).await;
        assert_eq!(frames, [&b"a"[..]]);
        assert!(matches!(err, Some(StreamError::IncompleteRead)));
    });
}

#[test]
fn unterminated_last_frame_over_the_limit_is_oversized() {
    run(async {
        // 4 bytes fit under the receive_until bound (3 + 2) but not in a 3-byte frame.
        let (frames, err) = frames_of(&[b"abcd"], FrameConfig::new(&b"\r\n"[..], 3)).await;
        assert!(frames.is_empty());
        assert!(matches!(err, Some(StreamError::OversizedFrame { max_frame: 3 })));
    });
}

#[test]
fn sent_frames_carry_the_delimiter_and_frames_with_it_are_refused() {
    run(async {
        let (a, b) = memory_byte_stream_pair(4);
        let mut framed = FramedStream::new(a, FrameConfig::new(&b"\0"[..], 100));
        framed.send(b"one").await.unwrap();
        framed.send(b"").await.unwrap();
        let err = framed.send(b"t\0wo").await.unwrap_err();
        assert!(matches!(err, StreamError::DelimiterInFrame));
        ObjectStream::<Bytes>::send_eof(&mut framed).await.unwrap();
        let mut raw = BufferedByteStream::new(b);
        assert_eq!(raw.receive_exactly(5).await.unwrap(), &b"one\0\0"[..]);
        assert!(matches!(raw.receive(10).await, Err(StreamError::EndOfStream)));
    });
}

#[test]
fn reframing_lines_to_nul_frames() {
    run(async {
        let (mut src, src_peer) = memory_byte_stream_pair(4);
        let (dst_peer, dst) = memory_byte_stream_pair(4);
        src.send(Bytes::from_static(b"alpha\nbe")).await.unwrap();
        src.send(Bytes::from_static(b"ta\n")).await.unwrap();
        src.send_eof().await.unwrap();
        let mut input = FramedStream::new(src_peer, FrameConfig::lines(64));
        let mut output = FramedStream::new(dst_peer, FrameConfig::new(&b"\0"[..], 64));
        while let Ok(frame) = input.receive().await {
            output.send(&frame).await.unwrap();
        }
        ObjectStream::<Bytes>::send_eof(&mut output).await.unwrap();
        let mut check = BufferedByteStream::new(dst);
        assert_eq!(check.receive_exactly(11).await.unwrap(), &b"alpha\0beta\0"[..]);
    });
}
