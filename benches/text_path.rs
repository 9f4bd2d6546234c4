//! The relay's text path against the library's text streams: re-encoding 32 MiB of
//! Latin-1 text into UTF-8 (what `connect --encoding latin1` does to what it receives).
//!
//! - `relay_forward`: `streamtool::relay::forward` with a decoding `Shaping` (its
//!   `Recoder` holds one `TextDecoder` and reuses its buffers; bytes in, bytes out);
//! - `text_receive_stream`: `TextReceiveStream` over the same source, one `String` per
//!   chunk handed to the sink as bytes (the AnyIO-shaped layer: text objects out).
//!
//! Both read the same `&[u8]` through `IoReceiveStream` and write into a sink that counts
//! bytes; the outputs are checked against each other before measuring. The decision it
//! informs is in docs/architecture.md ("The data path").
//!
//! Run with `cargo bench --bench text_path`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use streamtool::relay::{Activity, FlowEnd, Shaping, forward};
use streamtool::streams::encoding::{ErrorMode, TextEncoding};
use streamtool::streams::text::TextReceiveStream;
use streamtool::streams::{AsyncResource, ByteSendStream, IoReceiveStream, TypedAttributeProvider};
use tokio::runtime::Runtime;

/// The input size: 32 MiB.
const INPUT_LEN: usize = 32 * 1024 * 1024;

/// Latin-1 text: printable ASCII with one byte in eight above 0x9f (é, ü, ß ...).
fn input() -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..INPUT_LEN)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            if r.is_multiple_of(8) { 0xa0 + (r >> 8) as u8 % 0x60 } else { b' ' + (r >> 8) as u8 % 95 }
        })
        .collect()
}

/// A sink that counts what it is sent and keeps a checksum of it.
#[derive(Default)]
struct Counter {
    bytes: u64,
    sum: u64,
}

impl AsyncResource for Counter {
    async fn aclose(&mut self) -> streamtool::streams::Result<()> {
        Ok(())
    }
}
impl TypedAttributeProvider for Counter {}
impl ByteSendStream for Counter {
    async fn send(&mut self, data: Bytes) -> streamtool::streams::Result<()> {
        self.bytes += data.len() as u64;
        self.sum = data.iter().fold(self.sum, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
        Ok(())
    }
}

fn latin1() -> TextEncoding {
    TextEncoding::for_label("latin1").expect("latin1 is known")
}

async fn relay_forward(data: &[u8]) -> (u64, u64) {
    let shaping = Shaping { decode: Some((latin1(), ErrorMode::Strict)), ..Shaping::default() };
    let mut sink = Counter::default();
    let flow = forward(IoReceiveStream::new(data), &mut sink, &shaping, &Activity::default(), false).await;
    assert!(matches!(flow.end, FlowEnd::Eof), "{}", flow.reason());
    (sink.bytes, sink.sum)
}

async fn text_receive_stream(data: &[u8]) -> (u64, u64) {
    let mut text = TextReceiveStream::with_encoding(IoReceiveStream::new(data), latin1(), ErrorMode::Strict);
    let mut sink = Counter::default();
    loop {
        match text.receive().await {
            Ok(chunk) => sink.send(Bytes::from(chunk.into_bytes())).await.expect("counting"),
            Err(err) if err.is_end_of_stream() => return (sink.bytes, sink.sum),
            Err(err) => panic!("TextReceiveStream: {err}"),
        }
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn text_path(c: &mut Criterion) {
    let data = input();
    let rt = runtime();
    let expected = rt.block_on(relay_forward(&data));
    assert_eq!(rt.block_on(text_receive_stream(&data)), expected, "the same UTF-8 out");
    let mut group = c.benchmark_group("text_path/32MiB_latin1_to_utf8");
    group
        .throughput(Throughput::Bytes(INPUT_LEN as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sampling_mode(SamplingMode::Flat);
    group.bench_function("relay_forward", |b| b.iter(|| rt.block_on(relay_forward(black_box(&data)))));
    group.bench_function("text_receive_stream", |b| {
        b.iter(|| rt.block_on(text_receive_stream(black_box(&data))))
    });
    group.finish();
}

criterion_group!(benches, text_path);
criterion_main!(benches);
