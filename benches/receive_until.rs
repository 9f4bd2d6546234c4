//! Line splitting throughput: streamtool's `BufferedByteStream::receive_until` and
//! `FramedStream` against tokio-util's `LinesCodec`, on the same 64 MiB of lines.
//!
//! The input is deterministic: lines of 1..=200 pseudo-random printable ASCII bytes, each
//! ended by `\n`. Every implementation reads it from the same source, a `&[u8]` (tokio's
//! `AsyncRead` for slices), on a current-thread runtime. Each run counts the lines and
//! adds up their lengths, and the totals are checked against each other before measuring.
//!
//! Run with `cargo bench --bench receive_until`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use streamtool::streams::{BufferedByteStream, FrameConfig, FramedStream, IoReceiveStream, StreamError};
use tokio::runtime::Runtime;
use tokio_util::codec::{FramedRead, LinesCodec};

/// The input size: 64 MiB.
const INPUT_LEN: usize = 64 * 1024 * 1024;
/// The line length limit given to every implementation.
const MAX_LINE: usize = 65536;

/// Lines seen and bytes in them (terminators excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    lines: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, len: usize) {
        self.lines += 1;
        self.bytes += len as u64;
    }
}

/// Exactly `INPUT_LEN` bytes of `\n`-terminated lines of 1..=200 printable ASCII bytes
/// (the last line is cut short to fit, and may be empty).
fn input() -> Vec<u8> {
    // xorshift64*: deterministic and dependency-free.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut data = Vec::with_capacity(INPUT_LEN + 256);
    while data.len() < INPUT_LEN {
        let len = 1 + (next() % 200) as usize;
        for _ in 0..len {
            data.push(b' ' + (next() % 95) as u8);
        }
        data.push(b'\n');
    }
    data.truncate(INPUT_LEN);
    *data.last_mut().expect("input is not empty") = b'\n';
    data
}

async fn streamtool_receive_until(data: &[u8]) -> Tally {
    let mut stream = BufferedByteStream::new(IoReceiveStream::new(data));
    let mut tally = Tally { lines: 0, bytes: 0 };
    loop {
        match stream.receive_until(b"\n", MAX_LINE).await {
            Ok(line) => tally.add(black_box(line).len()),
            Err(StreamError::IncompleteRead) => {
                assert!(stream.buffer().is_empty(), "the input ends with a newline");
                return tally;
            }
            Err(err) => panic!("receive_until: {err}"),
        }
    }
}

async fn streamtool_framed(data: &[u8]) -> Tally {
    let mut frames = FramedStream::new(IoReceiveStream::new(data), FrameConfig::lines(MAX_LINE));
    let mut tally = Tally { lines: 0, bytes: 0 };
    loop {
        match frames.receive().await {
            Ok(line) => tally.add(black_box(line).len()),
            Err(err) if err.is_end_of_stream() => return tally,
            Err(err) => panic!("FramedStream::receive: {err}"),
        }
    }
}

async fn tokio_util_lines(data: &[u8]) -> Tally {
    let mut lines = FramedRead::new(data, LinesCodec::new_with_max_length(MAX_LINE));
    let mut tally = Tally { lines: 0, bytes: 0 };
    while let Some(line) = lines.next().await {
        tally.add(black_box(line.expect("LinesCodec")).len());
    }
    tally
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn receive_until(c: &mut Criterion) {
    let data = input();
    let rt = runtime();

    let expected = Tally {
        lines: data.iter().filter(|&&b| b == b'\n').count() as u64,
        bytes: data.iter().filter(|&&b| b != b'\n').count() as u64,
    };
    assert_eq!(rt.block_on(streamtool_receive_until(&data)), expected, "receive_until");
    assert_eq!(rt.block_on(streamtool_framed(&data)), expected, "FramedStream");
    assert_eq!(rt.block_on(tokio_util_lines(&data)), expected, "LinesCodec");

    let mut group = c.benchmark_group("receive_until/64MiB_lines");
    group
        .throughput(Throughput::Bytes(INPUT_LEN as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sampling_mode(SamplingMode::Flat);
    group.bench_function("streamtool_receive_until", |b| {
        b.iter(|| rt.block_on(streamtool_receive_until(black_box(&data))))
    });
    group.bench_function("streamtool_framed_lines", |b| {
        b.iter(|| rt.block_on(streamtool_framed(black_box(&data))))
    });
    group.bench_function("tokio_util_lines_codec", |b| {
        b.iter(|| rt.block_on(tokio_util_lines(black_box(&data))))
    });
    group.finish();
}

criterion_group!(benches, receive_until);
criterion_main!(benches);
