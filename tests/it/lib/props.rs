//! Property tests: for random data and random chunkings, `receive_until`,
//! `receive_exactly`, framing and text decoding give the same result as for one chunk
//! (and, for `receive_until`, the result of a straightforward reference model).

use bytes::Bytes;
use proptest::prelude::*;
use streamtool::fuzzing::{chunk, source};
use streamtool::streams::*;

fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(fut)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Frame(Vec<u8>),
    NotFound,
    Incomplete,
    End,
}

fn outcome(result: Result<Bytes>) -> Outcome {
    match result {
        Ok(b) => Outcome::Frame(b.to_vec()),
        Err(StreamError::DelimiterNotFound { .. }) => Outcome::NotFound,
        Err(StreamError::IncompleteRead) => Outcome::Incomplete,
        Err(StreamError::EndOfStream) => Outcome::End,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn receive_until_all(chunks: Vec<Bytes>, delimiter: &[u8], max_bytes: usize) -> Vec<Outcome> {
    block_on(async {
        let mut buffered = BufferedByteStream::new(source(chunks));
        let mut out = Vec::new();
        loop {
            let o = outcome(buffered.receive_until(delimiter, max_bytes).await);
            let stop = !matches!(o, Outcome::Frame(_));
            out.push(o);
            if stop || out.len() > 10_000 {
                return out;
            }
        }
    })
}

/// The reference: the delimiter must end within the first `max_bytes` bytes.
fn receive_until_model(data: &[u8], delimiter: &[u8], max_bytes: usize) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let window = &rest[..rest.len().min(max_bytes)];
        let found = (0..=window.len().saturating_sub(delimiter.len()))
            .find(|&i| window.len() >= delimiter.len() && &window[i..i + delimiter.len()] == delimiter);
        match found {
            Some(i) => {
                out.push(Outcome::Frame(rest[..i].to_vec()));
                rest = &rest[i + delimiter.len()..];
            }
            None if rest.len() >= max_bytes => {
                out.push(Outcome::NotFound);
                return out;
            }
            None => {
                out.push(Outcome::Incomplete);
                return out;
            }
        }
    }
}

fn line_data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'\r', b'\n', b'x']), 0..200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn receive_until_is_chunking_independent(
        data in line_data(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        delimiter in prop::sample::select(vec![&b"\n"[..], b"\r\n", b"ab", b"\r\n\r\n"]),
        max_bytes in 1usize..40,
    ) {
        let whole = receive_until_all(vec![Bytes::from(data.clone())], delimiter, max_bytes);
        let chunked = receive_until_all(chunk(&data, &cuts), delimiter, max_bytes);
        prop_assert_eq!(&whole, &chunked);
        prop_assert_eq!(&whole, &receive_until_model(&data, delimiter, max_bytes));
    }

    #[test]
    fn receive_exactly_is_chunking_independent(
        data in prop::collection::vec(any::<u8>(), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        sizes in prop::collection::vec(0usize..50, 1..20),
    ) {
        let run = |chunks: Vec<Bytes>| block_on(async {
            let mut buffered = BufferedByteStream::new(source(chunks));
            let mut out = Vec::new();
            for &n in &sizes {
                match buffered.receive_exactly(n).await {
                    Ok(b) => out.push(Some(b.to_vec())),
                    Err(StreamError::IncompleteRead) => { out.push(None); break; }
                    Err(e) => panic!("{e:?}"),
                }
            }
            // What stays buffered after a success depends on the chunking (a whole chunk
            // is read at once); after a short read it is everything that was left.
            let rest = if out.last() == Some(&None) { buffered.buffer().to_vec() } else { Vec::new() };
            (out, rest)
        });
        let whole = run(vec![Bytes::from(data.clone())]);
        let chunked = run(chunk(&data, &cuts));
        prop_assert_eq!(&whole, &chunked);
        // Reference: consecutive slices; a short read keeps the remainder buffered.
        let mut pos = 0;
        for (got, &n) in whole.0.iter().zip(&sizes) {
            match got {
                Some(b) => { prop_assert_eq!(&b[..], &data[pos..pos + n]); pos += n; }
                None => prop_assert_eq!(&whole.1[..], &data[pos..]),
            }
        }
    }

    #[test]
    fn framing_is_chunking_independent(
        data in line_data(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        max_frame in 1usize..30,
        skip in any::<bool>(),
    ) {
        let run = |chunks: Vec<Bytes>| block_on(async {
            let mut config = FrameConfig::new(&b"\r\n"[..], max_frame);
            if skip { config.on_oversize = Oversize::Skip; }
            let mut framed = FramedStream::new(source(chunks), config);
            let mut out = Vec::new();
            loop {
                let o = match framed.receive().await {
                    Ok(b) => { prop_assert!(b.len() <= max_frame); Outcome::Frame(b.to_vec()) }
                    Err(StreamError::EndOfStream) => Outcome::End,
                    Err(StreamError::OversizedFrame { .. }) => Outcome::NotFound,
                    Err(e) => panic!("{e:?}"),
                };
                let stop = !matches!(o, Outcome::Frame(_));
                out.push(o);
                if stop { break; }
            }
            Ok((out, framed.frames_skipped()))
        });
        let whole = run(vec![Bytes::from(data.clone())])?;
        let chunked = run(chunk(&data, &cuts))?;
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn text_decoding_is_chunking_independent(
        text in "\\PC{0,60}",
        garbage in prop::collection::vec(any::<u8>(), 0..8),
        garbage_at in any::<usize>(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        label in prop::sample::select(vec!["utf-8", "utf-16le", "utf-16be", "shift_jis", "latin1", "euc-kr"]),
        replace in any::<bool>(),
    ) {
        let encoding = TextEncoding::for_label(label).unwrap();
        let mode = if replace { ErrorMode::Replace } else { ErrorMode::Strict };
        let mut wire = Vec::new();
        encoding.encoder(ErrorMode::Replace).encode(&text, &mut wire).unwrap();
        let at = if wire.is_empty() { 0 } else { garbage_at % wire.len() };
        wire.splice(at..at, garbage.iter().copied());
        let run = |chunks: Vec<Bytes>| block_on(async {
            let mut stream = TextReceiveStream::with_encoding(source(chunks), encoding, mode);
            let mut out = String::new();
            loop {
                match stream.receive().await {
                    Ok(s) => { assert!(!s.is_empty()); out.push_str(&s) }
                    Err(StreamError::EndOfStream) => return (out, None),
                    Err(StreamError::Decode { offset, at_eof, .. }) => return (out, Some((offset, at_eof))),
                    Err(e) => panic!("{e:?}"),
                }
            }
        });
        let whole = run(vec![Bytes::from(wire.clone())]);
        let chunked = run(chunk(&wire, &cuts));
        // The error is the same; text before it may be returned in smaller pieces, and
        // under strict mode a chunk's text before the error is not returned, so compare
        // the whole output only when there was no error.
        prop_assert_eq!(&whole.1, &chunked.1);
        if whole.1.is_none() {
            prop_assert_eq!(&whole.0, &chunked.0);
        }
        if garbage.is_empty() {
            let mut expected = String::new();
            encoding.decoder(ErrorMode::Replace).decode(&wire, &mut expected, true).unwrap();
            prop_assert_eq!(&whole.0, &expected);
        }
    }
}
