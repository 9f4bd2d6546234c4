//! Moving bytes from a receive stream to a send stream: the "job" layer that `connect`,
//! `serve` and `pipe` share.
//!
//! [`forward`] runs one direction. With no [`Shaping`] it is a copy loop over one reusable
//! 64 KiB buffer: each chunk is read straight into it, frozen and handed to the sink, and
//! the allocation comes back once the sink is done (no per-chunk allocation). With shaping
//! it frames the input (delimiter and maximum length), decodes it from one encoding and
//! encodes it into another, turns LF into CRLF, and re-delimits frames.
//!
//! At the end of the input the sink is closed when `half_close` says so: for a TCP half
//! that sends the FIN, for TLS 1.3 a close_notify, for a child's stdin its EOF. The
//! direction's [`Flow`] says how many bytes moved and why it ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::streams::encoding::{ErrorMode, TextDecoder, TextEncoder, TextEncoding};
use crate::streams::error::StreamError;
use crate::streams::framing::{FrameConfig, FramedStream};
use crate::streams::{ByteReceiveStream, ByteSendStream};

/// The read size of the copy loop.
pub const CHUNK: usize = 64 * 1024;

/// The first read of a raw copy: small, so that idle connections stay cheap.
const FIRST_READ: usize = 512;

/// How long a raw copy's source may stay silent before the copy gives its full-size
/// buffer back and starts over at [`FIRST_READ`].
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// What happens to data on its way through one direction.
#[derive(Debug, Clone, Default)]
pub struct Shaping {
    /// Split the input into frames.
    pub frames: Option<FrameConfig>,
    /// Put this after each frame on output; `None` keeps the input's delimiter.
    pub out_delimiter: Option<Bytes>,
    /// Decode the input from this encoding.
    pub decode: Option<(TextEncoding, ErrorMode)>,
    /// Encode the output into this encoding (UTF-8 when only `decode` is set).
    pub encode: Option<(TextEncoding, ErrorMode)>,
    /// Turn LF into CRLF on output (an LF already preceded by CR is left alone).
    pub crlf: bool,
}

impl Shaping {
    /// Whether data passes through untouched.
    pub fn is_raw(&self) -> bool {
        self.frames.is_none() && self.decode.is_none() && self.encode.is_none() && !self.crlf
    }
}

/// Which end of a direction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Reading.
    Source,
    /// Writing.
    Sink,
}

/// Why a direction ended.
#[derive(Debug)]
pub enum FlowEnd {
    /// The source ended cleanly and everything was written.
    Eof,
    /// A stream failed.
    Failed(Side, StreamError),
    /// Stopped unfinished because the relay ended (the other direction ended and the
    /// connection cannot half-close, as with TLS 1.2).
    Abandoned,
}

/// One direction's outcome.
#[derive(Debug)]
pub struct Flow {
    /// Bytes read from the source.
    pub bytes_in: u64,
    /// Bytes written to the sink.
    pub bytes_out: u64,
    /// Frames passed on (framing only).
    pub frames: u64,
    /// Oversized frames skipped (framing only).
    pub frames_skipped: u64,
    /// How it ended.
    pub end: FlowEnd,
}

impl Flow {
    /// A direction that moved nothing and was stopped.
    pub fn abandoned() -> Self {
        Flow { end: FlowEnd::Abandoned, ..Flow::new() }
    }

    fn new() -> Self {
        Flow { bytes_in: 0, bytes_out: 0, frames: 0, frames_skipped: 0, end: FlowEnd::Eof }
    }

    /// The error that ended it, if any.
    pub fn error(&self) -> Option<&StreamError> {
        match &self.end {
            FlowEnd::Failed(_, err) => Some(err),
            FlowEnd::Eof | FlowEnd::Abandoned => None,
        }
    }

    /// A short reason for logs and events: `eof`, `source: …`, `sink: …`.
    pub fn reason(&self) -> String {
        match &self.end {
            FlowEnd::Eof => "eof".to_string(),
            FlowEnd::Abandoned => "abandoned: the other direction ended".to_string(),
            FlowEnd::Failed(Side::Source, err) => format!("read: {}", crate::streams::error::chain(err)),
            FlowEnd::Failed(Side::Sink, err) => format!("write: {}", crate::streams::error::chain(err)),
        }
    }
}

/// When data last moved, in either direction, for the idle timeout.
#[derive(Debug, Clone)]
pub struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
    /// The byte counter of the direction this handle belongs to, if any.
    meter: Option<Meter>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity { start: Instant::now(), last_ms: Arc::new(AtomicU64::new(0)), meter: None }
    }
}

impl Activity {
    /// Records that data moved now.
    pub fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Records that `n` bytes were written.
    fn wrote(&self, n: u64) {
        self.touch();
        if let Some(meter) = &self.meter {
            meter.add(n);
        }
    }

    /// Completes once nothing has moved for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = self.start + last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// Copies `source` to `sink` with `shaping`; closes the sink at the end of the input when
/// `half_close` is set.
///
/// A raw copy that goes quiet after a burst gives its 64 KiB buffer back after a second
/// of silence, which takes a timer.
///
/// # Panics
/// On a tokio runtime without the time driver (`enable_time`), once a raw copy has grown
/// its buffer to full size.
///
/// # Cancel safety
/// Not cancel safe: a chunk read but not yet written is lost if the future is dropped.
/// Callers drop it only to abandon the direction.
pub async fn forward<R, W>(
    source: R,
    sink: W,
    shaping: &Shaping,
    activity: &Activity,
    half_close: bool,
) -> Flow
where
    R: ByteReceiveStream,
    W: ByteSendStream,
{
    forward_metered(source, sink, shaping, activity, half_close, &Meter::default()).await
}

/// A live count of the bytes a direction has written, for progress displays.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<AtomicU64>);

impl Meter {
    /// Bytes written so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts `n` more bytes.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a side of a relay does when the data going *to* it ends (our input is done):
/// the end-of-stream choice of socat's `shut-down`/`shut-none`/`shut-close` and nc's `-N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnEof {
    /// Tell the peer: a TCP FIN, a TLS close_notify, a child's stdin closed. Reading goes
    /// on until the peer ends too.
    #[default]
    HalfClose,
    /// Say nothing and keep reading until the peer ends; then close. What a TLS client
    /// does by default: nginx, ncat and OpenSSL-based servers take a close_notify as the
    /// end of the whole connection and drop the reply.
    KeepOpen,
    /// Close the whole connection: what is still coming from the peer is not read.
    Close,
}

impl OnEof {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OnEof::HalfClose => "half-close",
            OnEof::KeepOpen => "keep-open",
            OnEof::Close => "close",
        }
    }
}

impl std::fmt::Display for OnEof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OnEof {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "half-close" | "shutdown" | "shut-down" => Ok(OnEof::HalfClose),
            "keep-open" | "none" | "shut-none" => Ok(OnEof::KeepOpen),
            "close" | "shut-close" => Ok(OnEof::Close),
            _ => Err(format!("unknown end-of-input action {s:?} (expected half-close, keep-open or close)")),
        }
    }
}

/// How a relay of two directions ended (see [`run_pair`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairEnd {
    /// Both directions reached their end.
    Both,
    /// Direction `0` or `1` ended cleanly and that ends the relay (`OnEof::Close` on its
    /// sink, or an interactive terminal that stops when the peer ends); the other was
    /// abandoned.
    Stopped(usize),
    /// Direction `0` or `1` failed; the other was abandoned (or finished within the
    /// moment it was given to report the cause).
    Failed(usize),
}

/// The rules of one direction in [`run_pair`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PairRule {
    /// A clean end of this direction ends the whole relay.
    pub ends_relay: bool,
    /// When writing fails, the relay waits for the other direction to end before it
    /// ends: a peer's reason (a TLS alert, a reset) is waiting on the receiving side, and
    /// it names the cause better than the broken pipe does. No timer decides it: set this
    /// only where the other direction reads from the connection whose write failed, so
    /// that its end is the kernel's next word (never where it feeds a command, which
    /// could be blocked writing output nobody reads any more).
    pub wait_for_cause: bool,
    /// With `ends_relay`: the other direction still gets this long to reach its own end
    /// (a lingering close). Closing a socket while the peer's last bytes are still on
    /// their way makes the kernel answer them with a reset, and a reset makes the peer's
    /// kernel discard what it had received but not yet read: the data just sent.
    pub linger: Option<Duration>,
}

/// How long a lingering close ([`PairRule::linger`]) waits for the peer's end: long enough
/// for its last bytes in flight on a local or nearby peer, short enough not to be noticed.
pub const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// How long a direction may stay silent after the other ended before `run_pair` says
/// what it is waiting for.
pub const WAITING_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// How often a waiting `run_pair` looks at the silent direction's byte count: the line
/// comes between 1 and 1.25 s into a silence.
const NOTICE_TICK: Duration = Duration::from_millis(250);

/// Runs the two directions of a relay by the end-of-stream rules (docs/cli.md, "End of
/// stream"), the one place every subcommand takes them from:
///
/// - a direction that ends cleanly leaves the other running (a peer's end means it sends
///   no more, never "stop sending"), unless its rule says it ends the relay;
/// - a direction that fails ends the relay at once (or, when `wait_for_cause`, once the
///   other direction, reading from the same broken connection, has reported the cause):
///   nothing keeps waiting on a dead peer, so the caller can drop both sides abortively
///   and reap any child;
/// - while one direction has ended and the other moves nothing for
///   [`WAITING_NOTICE_AFTER`], `waiting(i)` is called once with the index of the
///   direction being waited for (a message, not a timer: nothing is closed).
///
/// Returns each direction's flow (`None` for one that was abandoned) and how it ended.
/// Dropping the returned future abandons both directions.
pub async fn run_pair<A, B>(
    a: A,
    b: B,
    rules: [PairRule; 2],
    meters: [&Meter; 2],
    mut waiting: impl FnMut(usize),
) -> ([Option<Flow>; 2], PairEnd)
where
    A: Future<Output = Flow>,
    B: Future<Output = Flow>,
{
    tokio::pin!(a, b);
    // Boxed: an idle connection holds this future for its whole life, and a direction's
    // outcome exists only once it has ended.
    let mut flows: [Option<Box<Flow>>; 2] = [None, None];
    let mut wait = Wait::Nothing;
    // One timer, for the notice, made only when needed: a connection that never
    // half-ends carries none.
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let arm = |timer: &mut Option<Pin<Box<tokio::time::Sleep>>>, after: Duration| {
        let deadline = tokio::time::Instant::now() + after;
        match timer {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => *timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    };
    let done = |flows: [Option<Box<Flow>>; 2], end| (flows.map(|f| f.map(|f| *f)), end);
    loop {
        let event = tokio::select! {
            flow = &mut a, if flows[0].is_none() => Some((0, flow)),
            flow = &mut b, if flows[1].is_none() => Some((1, flow)),
            () = async {
                match timer.as_mut() {
                    Some(sleep) => sleep.as_mut().await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        let Some((i, flow)) = event else {
            match wait {
                Wait::Notice(other, seen, since) => {
                    let count = meters[other].get();
                    let now = tokio::time::Instant::now();
                    if count != seen {
                        wait = Wait::Notice(other, count, now);
                        arm(&mut timer, NOTICE_TICK);
                    } else if now.duration_since(since) >= WAITING_NOTICE_AFTER {
                        waiting(other);
                        wait = Wait::Nothing;
                        timer = None;
                    } else {
                        arm(&mut timer, NOTICE_TICK);
                    }
                }
                Wait::Linger(first) => return done(flows, PairEnd::Stopped(first)),
                Wait::Nothing | Wait::Cause(_) => timer = None,
            }
            continue;
        };
        let other = 1 - i;
        let failed = matches!(flow.end, FlowEnd::Failed(..));
        let sink_failed = matches!(flow.end, FlowEnd::Failed(Side::Sink, _));
        flows[i] = Some(Box::new(flow));
        let waiting_for_cause = match wait {
            Wait::Cause(first) => Some(first),
            _ => None,
        };
        if flows[other].is_some() {
            // Both are done. After a failed write, the other direction's error (the
            // peer's reason) names the cause better.
            let end = match waiting_for_cause {
                Some(first) if failed && first != i => PairEnd::Failed(i),
                Some(first) => PairEnd::Failed(first),
                None if failed => PairEnd::Failed(i),
                None => PairEnd::Both,
            };
            return done(flows, end);
        }
        if failed {
            if sink_failed && rules[i].wait_for_cause {
                // The other direction reads from the connection that just failed: its
                // end (an alert, a reset, an end of stream) comes next.
                wait = Wait::Cause(i);
                timer = None;
                continue;
            }
            return done(flows, PairEnd::Failed(i));
        }
        if rules[i].ends_relay {
            match rules[i].linger {
                Some(linger) => {
                    wait = Wait::Linger(i);
                    arm(&mut timer, linger);
                    continue;
                }
                None => return done(flows, PairEnd::Stopped(i)),
            }
        }
        if waiting_for_cause.is_none() {
            wait = Wait::Notice(other, meters[other].get(), tokio::time::Instant::now());
            arm(&mut timer, NOTICE_TICK);
        }
    }
}

/// What [`run_pair`]'s timer is for.
#[derive(Clone, Copy)]
enum Wait {
    Nothing,
    /// A write of direction `.0` failed: the other, reading from the same connection,
    /// reports why when it ends.
    Cause(usize),
    /// Direction `.0` is waited for; it has moved `.1` bytes, the last of them seen
    /// moving at `.2` (or the wait began then).
    Notice(usize, u64, tokio::time::Instant),
    /// Direction `.0` ended the relay; the other has until the timer to end too.
    Linger(usize),
}

/// [`forward`], counting the bytes written in `meter` as they go.
///
/// # Panics
/// As [`forward`]: without the runtime's time driver.
pub async fn forward_metered<R, W>(
    source: R,
    mut sink: W,
    shaping: &Shaping,
    activity: &Activity,
    half_close: bool,
    meter: &Meter,
) -> Flow
where
    R: ByteReceiveStream,
    W: ByteSendStream,
{
    let activity = &Activity { meter: Some(meter.clone()), ..activity.clone() };
    let mut flow = Flow::new();
    let result = if shaping.is_raw() {
        copy_raw(source, &mut sink, activity, &mut flow).await
    } else {
        // Boxed: its state (decoders, framers) is three times the raw loop's, and a future
        // is as large as its largest branch; `serve -k` holds one per idle connection.
        Box::pin(copy_shaped(source, &mut sink, shaping, activity, &mut flow)).await
    };
    flow.end = match result {
        Ok(()) => {
            if half_close {
                match sink.aclose().await {
                    Ok(()) => FlowEnd::Eof,
                    Err(err) => FlowEnd::Failed(Side::Sink, err),
                }
            } else {
                FlowEnd::Eof
            }
        }
        Err(end) => end,
    };
    flow
}

async fn copy_raw<R: ByteReceiveStream, W: ByteSendStream>(
    mut source: R,
    sink: &mut W,
    activity: &Activity,
    flow: &mut Flow,
) -> Result<(), FlowEnd> {
    // Start small and grow to CHUNK once a read fills the buffer: an idle connection then
    // holds FIRST_READ bytes per direction instead of CHUNK, and a busy one reaches full
    // size on its first full read. The source reserves the room itself: a transport before
    // it reads, a source of whole chunks (a memory stream of `Bytes`) only when one
    // arrives, so an idle one holds no buffer at all. A connection that goes quiet after a
    // burst gives the full-size buffer back after RELEASE_AFTER (receives are cancel safe),
    // so it costs an idle connection's memory again, not CHUNK per direction.
    let mut want = FIRST_READ;
    let mut buf = BytesMut::new();
    loop {
        let received = {
            let read = source.receive_into(&mut buf, want);
            if want < CHUNK {
                Some(read.await)
            } else {
                tokio::pin!(read);
                // Biased: a read that is ready at once never arms the timer. Boxed: a
                // pointer in every connection's future rather than a whole timer entry.
                // (Making the timer only after a first `Pending`, in a `poll_fn`, measured
                // about 7% more server CPU for a TLS transfer: 519-680 against 488-581 ms
                // task-clock per GiB, seven runs each.)
                tokio::select! {
                    biased;
                    received = &mut read => Some(received),
                    () = Box::pin(tokio::time::sleep(RELEASE_AFTER)) => None,
                }
            }
        };
        let Some(received) = received else {
            buf = BytesMut::new();
            want = FIRST_READ;
            continue;
        };
        match received {
            Ok(n) => {
                if n >= want {
                    want = CHUNK;
                }
                activity.touch();
                flow.bytes_in += n as u64;
                let chunk = buf.split().freeze();
                sink.send(chunk).await.map_err(|e| FlowEnd::Failed(Side::Sink, e))?;
                flow.bytes_out += n as u64;
                activity.wrote(n as u64);
            }
            Err(StreamError::EndOfStream) => return Ok(()),
            Err(err) => return Err(FlowEnd::Failed(Side::Source, err)),
        }
    }
}

/// The text and line-ending part of shaping, applied to a piece of data.
struct Recoder {
    decoder: Option<TextDecoder>,
    encoder: Option<TextEncoder>,
    crlf: bool,
    /// The last byte written had been a CR (for CRLF across chunks).
    after_cr: bool,
    text: String,
    encoded: Vec<u8>,
}

impl Recoder {
    fn new(shaping: &Shaping) -> Self {
        let decoder = shaping.decode.map(|(enc, mode)| enc.decoder(mode));
        let encoder = match (shaping.decode, shaping.encode) {
            (_, Some((enc, mode))) => Some(enc.encoder(mode)),
            (Some(_), None) => Some(TextEncoding::UTF_8.encoder(ErrorMode::Strict)),
            (None, None) => None,
        };
        let decoder = match (decoder, &encoder) {
            (None, Some(_)) => Some(TextEncoding::UTF_8.decoder(ErrorMode::Strict)),
            (d, _) => d,
        };
        Recoder {
            decoder,
            encoder,
            crlf: shaping.crlf,
            after_cr: false,
            text: String::new(),
            encoded: Vec::new(),
        }
    }

    /// Recodes `input` (with `last`, the end of a unit: a frame or the stream) into `out`.
    /// On malformed input, the text decoded before it is still recoded into `out`, then
    /// the error is returned.
    fn apply(&mut self, input: &[u8], last: bool, out: &mut BytesMut) -> Result<(), StreamError> {
        match (&mut self.decoder, &self.encoder) {
            (Some(decoder), Some(encoder)) => {
                self.text.clear();
                let decoded = decoder.decode(input, &mut self.text, last);
                if let Err(err) = decoded {
                    let mut encoded = Vec::new();
                    if encoder.encode(&self.text, &mut encoded).is_ok() {
                        self.push(&encoded, out);
                    }
                    return Err(err);
                }
                if last {
                    // A unit (a frame) is complete: the next one starts a fresh decode.
                    decoder.reset();
                }
                let mut encoded = std::mem::take(&mut self.encoded);
                encoded.clear();
                encoder.encode(&self.text, &mut encoded)?;
                self.push(&encoded, out);
                self.encoded = encoded;
            }
            _ => self.push(input, out),
        }
        Ok(())
    }

    /// Appends bytes that are already in the output encoding, applying LF -> CRLF.
    fn push(&mut self, bytes: &[u8], out: &mut BytesMut) {
        if !self.crlf {
            out.extend_from_slice(bytes);
            return;
        }
        // Copy the runs between LFs whole; only the LFs themselves need a look.
        let mut start = 0;
        for lf in memchr::memchr_iter(b'\n', bytes) {
            let preceded_by_cr = if lf > 0 { bytes[lf - 1] == b'\r' } else { self.after_cr };
            out.extend_from_slice(&bytes[start..lf]);
            out.extend_from_slice(if preceded_by_cr { b"\n" } else { b"\r\n" });
            start = lf + 1;
        }
        out.extend_from_slice(&bytes[start..]);
        if let Some(&last) = bytes.last() {
            self.after_cr = last == b'\r';
        }
    }
}

async fn copy_shaped<R: ByteReceiveStream, W: ByteSendStream>(
    source: R,
    sink: &mut W,
    shaping: &Shaping,
    activity: &Activity,
    flow: &mut Flow,
) -> Result<(), FlowEnd> {
    let mut recoder = Recoder::new(shaping);
    // The loop's own buffers grow with the data, as copy_raw's does (the framing layer
    // below still reserves its full read).
    let mut out = BytesMut::new();
    let source_error = |e| FlowEnd::Failed(Side::Source, e);
    if let Some(config) = &shaping.frames {
        let delimiter = shaping.out_delimiter.clone().unwrap_or_else(|| config.delimiter.clone());
        let mut framed = FramedStream::new(source, config.clone());
        let result = loop {
            // Frames that are already here go out together, in one send of up to CHUNK;
            // the batch is sent as soon as the next frame has to wait for input, so no
            // frame is held back waiting for the next one.
            let received = {
                let next = framed.receive();
                tokio::pin!(next);
                match std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await {
                    Poll::Ready(received) => received,
                    Poll::Pending => {
                        if let Err(end) = flush(sink, &mut out, flow, activity).await {
                            break Err(end);
                        }
                        next.await
                    }
                }
            };
            let frame = match received {
                Ok(frame) => frame,
                Err(StreamError::EndOfStream) => break flush(sink, &mut out, flow, activity).await,
                // The frames before the bad one still go out first.
                Err(err) => break flush(sink, &mut out, flow, activity).await.and(Err(source_error(err))),
            };
            activity.touch();
            // The last frame of a stream may have had no delimiter: none is added to it.
            let terminated = !framed.at_end();
            flow.bytes_in += (frame.len() + if terminated { config.delimiter.len() } else { 0 }) as u64;
            flow.frames += 1;
            let whole_frames = out.len();
            if let Err(err) = recoder.apply(&frame, true, &mut out) {
                // As for a bad frame: the good ones before it go out first, but nothing of
                // the bad one (a frame is delivered whole or not at all).
                out.truncate(whole_frames);
                break flush(sink, &mut out, flow, activity).await.and(Err(source_error(err)));
            }
            if terminated {
                recoder.push(&delimiter, &mut out);
            }
            if out.len() >= CHUNK
                && let Err(end) = flush(sink, &mut out, flow, activity).await
            {
                break Err(end);
            }
        };
        flow.frames_skipped = framed.frames_skipped();
        return result;
    }
    let mut source = source;
    let mut want = FIRST_READ;
    let mut buf = BytesMut::new();
    loop {
        buf.clear();
        let last = match source.receive_into(&mut buf, want).await {
            Ok(n) => {
                if n >= want {
                    want = CHUNK;
                }
                flow.bytes_in += n as u64;
                false
            }
            Err(StreamError::EndOfStream) => true,
            Err(err) => return Err(source_error(err)),
        };
        activity.touch();
        if let Err(err) = recoder.apply(&buf, last, &mut out) {
            // The text before the malformed bytes is delivered, then the error.
            return flush(sink, &mut out, flow, activity).await.and(Err(source_error(err)));
        }
        flush(sink, &mut out, flow, activity).await?;
        if last {
            return Ok(());
        }
    }
}

/// Sends what `out` holds, if anything, and counts it.
async fn flush<W: ByteSendStream>(
    sink: &mut W,
    out: &mut BytesMut,
    flow: &mut Flow,
    activity: &Activity,
) -> Result<(), FlowEnd> {
    if out.is_empty() {
        return Ok(());
    }
    let chunk = out.split().freeze();
    let n = chunk.len() as u64;
    sink.send(chunk).await.map_err(|e| FlowEnd::Failed(Side::Sink, e))?;
    flow.bytes_out += n;
    activity.wrote(n);
    Ok(())
}

/// Runs `work` unless no byte moves through `meters` for `limit`; `None` if that came
/// first. Meters count spliced bytes too, so this holds for every relay path.
pub async fn unless_idle<T>(
    work: impl std::future::Future<Output = T>,
    limit: Option<std::time::Duration>,
    meters: [&Meter; 2],
) -> Option<T> {
    let Some(limit) = limit else { return Some(work.await) };
    let idle = async {
        // A sixteenth of the limit (at most a minute): the end comes at most that late, and
        // a thousand idle relays under the hour-long default wake a few times a minute.
        let step =
            (limit / 16).clamp(std::time::Duration::from_millis(10), std::time::Duration::from_secs(60));
        let total = || meters.iter().map(|m| m.get()).sum::<u64>();
        let (mut last, mut since) = (total(), tokio::time::Instant::now());
        loop {
            tokio::time::sleep(step).await;
            let now = total();
            if now != last {
                (last, since) = (now, tokio::time::Instant::now());
            } else if since.elapsed() >= limit {
                return;
            }
        }
    };
    tokio::select! {
        out = work => Some(out),
        () = idle => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::mpsc;

    use super::*;
    use crate::streams::{AsyncResource, TypedAttributeProvider};

    /// A source fed through a channel that records each receive in its [`Calls`].
    struct Recording {
        rx: mpsc::Receiver<Bytes>,
        pending: Bytes,
        calls: Calls,
    }

    impl AsyncResource for Recording {
        async fn aclose(&mut self) -> crate::streams::Result<()> {
            Ok(())
        }
    }

    impl TypedAttributeProvider for Recording {}

    impl ByteReceiveStream for Recording {
        async fn receive(&mut self, max_bytes: usize) -> crate::streams::Result<Bytes> {
            let mut buf = BytesMut::new();
            self.receive_into(&mut buf, max_bytes).await?;
            Ok(buf.freeze())
        }

        async fn receive_into(
            &mut self,
            buf: &mut BytesMut,
            max_bytes: usize,
        ) -> crate::streams::Result<usize> {
            self.calls.lock().unwrap().push((max_bytes, buf.capacity()));
            if self.pending.is_empty() {
                // Cancel safe: a message is either received here or still queued.
                self.pending = self.rx.recv().await.ok_or(StreamError::EndOfStream)?;
            }
            let n = max_bytes.min(self.pending.len());
            buf.extend_from_slice(&self.pending.split_to(n));
            Ok(n)
        }
    }

    /// A sink that keeps every chunk sent to it, where the test can look.
    #[derive(Default, Clone)]
    struct Collect(Arc<Mutex<Vec<Bytes>>>);

    impl Collect {
        fn bytes(&self) -> Vec<u8> {
            self.0.lock().unwrap().concat()
        }

        fn sends(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    impl AsyncResource for Collect {
        async fn aclose(&mut self) -> crate::streams::Result<()> {
            Ok(())
        }
    }

    impl TypedAttributeProvider for Collect {}

    impl ByteSendStream for Collect {
        async fn send(&mut self, data: Bytes) -> crate::streams::Result<()> {
            self.0.lock().unwrap().push(data);
            Ok(())
        }
    }

    /// What [`Recording`] saw: for each receive, the size asked for and the capacity of
    /// the buffer it was handed.
    type Calls = Arc<Mutex<Vec<(usize, usize)>>>;

    /// A channel-fed source and its sender.
    fn recording() -> (mpsc::Sender<Bytes>, Recording, Calls) {
        let (tx, rx) = mpsc::channel(64);
        let calls = Arc::new(Mutex::new(Vec::new()));
        (tx, Recording { rx, pending: Bytes::new(), calls: Arc::clone(&calls) }, calls)
    }

    /// Starts `forward` from a fresh channel-fed source to a fresh [`Collect`] with
    /// `shaping`; returns the source's sender, what it recorded, the sink and the copy.
    fn start(shaping: Shaping) -> (mpsc::Sender<Bytes>, Calls, Collect, tokio::task::JoinHandle<Flow>) {
        let (tx, source, calls) = recording();
        let sink = Collect::default();
        let copy = {
            let sink = sink.clone();
            tokio::spawn(async move { forward(source, sink, &shaping, &Activity::default(), false).await })
        };
        (tx, calls, sink, copy)
    }

    fn lines(max_frame: usize) -> Shaping {
        Shaping { frames: Some(FrameConfig::lines(max_frame)), ..Shaping::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_source_gets_a_small_buffer_again_after_a_burst() {
        let (tx, calls, sink, copy) = start(Shaping::default());
        // A burst: enough for full-size reads.
        let burst: Vec<u8> = (0..4 * CHUNK).map(|i| (i % 251) as u8).collect();
        tx.send(Bytes::from(burst.clone())).await.unwrap();
        tokio::time::sleep(RELEASE_AFTER / 2).await;
        let during = calls.lock().unwrap().last().copied().unwrap();
        assert_eq!(during.0, CHUNK, "a busy copy reads full size");
        // Quiet for longer than RELEASE_AFTER (paused time: no real waiting).
        tokio::time::sleep(RELEASE_AFTER * 2).await;
        let after = calls.lock().unwrap().last().copied().unwrap();
        assert_eq!(after, (FIRST_READ, 0), "the quiet copy waits with a fresh small buffer");
        // The next burst still arrives whole, and grows the reads again.
        tx.send(Bytes::from(burst.clone())).await.unwrap();
        drop(tx);
        let flow = copy.await.unwrap();
        let got = sink.bytes();
        assert!(matches!(flow.end, FlowEnd::Eof), "{:?}", flow.end);
        assert_eq!(got.len(), 2 * burst.len());
        assert!(got.chunks(burst.len()).all(|half| half == burst.as_slice()), "the bytes changed on the way");
        let max = calls.lock().unwrap().iter().rev().map(|c| c.0).max().unwrap();
        assert_eq!(max, CHUNK, "the second burst is read full size again");
    }

    #[tokio::test(start_paused = true)]
    async fn frames_already_here_go_out_in_one_send_and_none_waits_for_the_next() {
        let (tx, _, sink, copy) = start(lines(1024));
        // A thousand short frames arrive at once: far fewer sends than frames.
        let many: Vec<u8> = (0..1000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        tx.send(Bytes::from(many.clone())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(sink.bytes(), many, "every frame is out while the source is still open");
        assert!(sink.sends() <= many.len().div_ceil(CHUNK) + 1, "{} sends for 1000 frames", sink.sends());
        // One frame, then silence: it goes out without waiting for another.
        let before = sink.sends();
        tx.send(Bytes::from_static(b"alone\n")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(sink.sends(), before + 1);
        assert!(sink.bytes().ends_with(b"alone\n"));
        drop(tx);
        let flow = copy.await.unwrap();
        assert!(matches!(flow.end, FlowEnd::Eof), "{:?}", flow.end);
        assert_eq!(flow.frames, 1001);
        assert_eq!(flow.bytes_out, many.len() as u64 + 6);
    }

    #[tokio::test(start_paused = true)]
    async fn the_frames_before_an_oversized_one_are_delivered_before_the_error() {
        let (tx, _, sink, copy) = start(lines(8));
        tx.send(Bytes::from_static(b"one\ntwo\nthis one is far too long\nnever\n")).await.unwrap();
        drop(tx);
        let flow = copy.await.unwrap();
        assert!(
            matches!(flow.end, FlowEnd::Failed(Side::Source, StreamError::OversizedFrame { .. })),
            "{:?}",
            flow.end
        );
        assert_eq!(sink.bytes(), b"one\ntwo\n");
        assert_eq!(flow.bytes_out, 8);
    }

    #[tokio::test(start_paused = true)]
    async fn the_frames_before_one_that_cannot_be_decoded_are_delivered_before_the_error() {
        let shaping = Shaping { decode: Some((TextEncoding::UTF_8, ErrorMode::Strict)), ..lines(64) };
        let (tx, _, sink, copy) = start(shaping);
        tx.send(Bytes::from_static(b"good\nalso good\n\xff\nnever\n")).await.unwrap();
        drop(tx);
        let flow = copy.await.unwrap();
        assert!(
            matches!(flow.end, FlowEnd::Failed(Side::Source, StreamError::Decode { .. })),
            "{:?}",
            flow.end
        );
        assert_eq!(sink.bytes(), b"good\nalso good\n");
        assert_eq!(flow.bytes_out, 15);
    }

    #[tokio::test(start_paused = true)]
    async fn the_text_before_malformed_bytes_is_delivered_before_the_error() {
        let shaping =
            Shaping { decode: Some((TextEncoding::UTF_8, ErrorMode::Strict)), ..Shaping::default() };
        let (tx, _, sink, copy) = start(shaping);
        tx.send(Bytes::from_static(b"good line\nbad \xff\xfe here\n")).await.unwrap();
        drop(tx);
        let flow = copy.await.unwrap();
        assert!(
            matches!(flow.end, FlowEnd::Failed(Side::Source, StreamError::Decode { offset: 14, .. })),
            "{:?}",
            flow.end
        );
        assert_eq!(sink.bytes(), b"good line\nbad ");
        assert_eq!(flow.bytes_out, 14);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_that_cannot_be_decoded_is_not_delivered_in_part() {
        let shaping = Shaping { decode: Some((TextEncoding::UTF_8, ErrorMode::Strict)), ..lines(64) };
        let (tx, _, sink, copy) = start(shaping);
        tx.send(Bytes::from_static(b"ok\nab\xffcd\n")).await.unwrap();
        drop(tx);
        let flow = copy.await.unwrap();
        assert!(matches!(flow.end, FlowEnd::Failed(Side::Source, StreamError::Decode { .. })));
        assert_eq!(sink.bytes(), b"ok\n");
    }

    /// A direction that ends after `after` with `end`, counting `bytes` on `meter`.
    async fn direction(after: Duration, bytes: u64, meter: &Meter, end: FlowEnd) -> Flow {
        tokio::time::sleep(after).await;
        meter.add(bytes);
        Flow { bytes_in: bytes, bytes_out: bytes, frames: 0, frames_skipped: 0, end }
    }

    fn broken() -> StreamError {
        StreamError::broken(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_end_leaves_the_other_direction_running_to_its_end() {
        let (ma, mb) = (Meter::default(), Meter::default());
        let a = direction(Duration::from_millis(10), 5, &ma, FlowEnd::Eof);
        // The other goes on for a minute: the peer's end never means "stop sending".
        let b = direction(Duration::from_secs(60), 7, &mb, FlowEnd::Eof);
        let ([fa, fb], end) = run_pair(a, b, [PairRule::default(); 2], [&ma, &mb], |_| {}).await;
        assert_eq!(end, PairEnd::Both);
        assert_eq!((fa.unwrap().bytes_out, fb.unwrap().bytes_out), (5, 7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_ends_the_pair_at_once_and_abandons_the_other() {
        let (ma, mb) = (Meter::default(), Meter::default());
        let a = direction(Duration::from_millis(10), 0, &ma, FlowEnd::Failed(Side::Source, broken()));
        let b = std::future::pending::<Flow>();
        let started = tokio::time::Instant::now();
        let ([fa, fb], end) = run_pair(a, b, [PairRule::default(); 2], [&ma, &mb], |_| {}).await;
        assert_eq!(end, PairEnd::Failed(0));
        assert!(fa.is_some() && fb.is_none());
        assert!(started.elapsed() < Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_write_waits_for_the_peers_reason_however_long_it_takes() {
        let (ma, mb) = (Meter::default(), Meter::default());
        let rules = [PairRule { ends_relay: false, wait_for_cause: true, linger: None }, PairRule::default()];
        // The receiving side reports the peer's reason 500 ms or 5 s later: either way it
        // is the one named (what happened decides, not when).
        for after in [Duration::from_millis(500), Duration::from_secs(5)] {
            let a = direction(Duration::from_millis(10), 0, &ma, FlowEnd::Failed(Side::Sink, broken()));
            let b = direction(after, 0, &mb, FlowEnd::Failed(Side::Source, StreamError::Truncated));
            let ([_, fb], end) = run_pair(a, b, rules, [&ma, &mb], |_| {}).await;
            assert_eq!(end, PairEnd::Failed(1), "reason reported after {after:?}");
            assert!(matches!(fb.unwrap().end, FlowEnd::Failed(Side::Source, StreamError::Truncated)));
        }
        // A receiving side that ends cleanly (the peer's FIN came before its reset): the
        // failed write is the error.
        let a = direction(Duration::from_millis(10), 0, &ma, FlowEnd::Failed(Side::Sink, broken()));
        let b = direction(Duration::from_secs(3), 4, &mb, FlowEnd::Eof);
        let ([_, fb], end) = run_pair(a, b, rules, [&ma, &mb], |_| {}).await;
        assert_eq!(end, PairEnd::Failed(0));
        assert_eq!(fb.unwrap().bytes_out, 4, "what the peer sent before it went is delivered");
        // Without the rule, a failed write ends the pair at once.
        let a = direction(Duration::from_millis(10), 0, &ma, FlowEnd::Failed(Side::Sink, broken()));
        let started = tokio::time::Instant::now();
        let (_, end) =
            run_pair(a, std::future::pending::<Flow>(), [PairRule::default(); 2], [&ma, &mb], |_| {}).await;
        assert_eq!(end, PairEnd::Failed(0));
        assert!(started.elapsed() < Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn ends_relay_stops_the_pair_when_that_direction_ends() {
        let (ma, mb) = (Meter::default(), Meter::default());
        let rules = [PairRule { ends_relay: true, wait_for_cause: false, linger: None }, PairRule::default()];
        let a = direction(Duration::from_millis(10), 3, &ma, FlowEnd::Eof);
        let ([fa, fb], end) = run_pair(a, std::future::pending::<Flow>(), rules, [&ma, &mb], |_| {}).await;
        assert_eq!(end, PairEnd::Stopped(0));
        assert!(fa.is_some() && fb.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lingering_close_lets_the_other_direction_end_within_the_linger_and_no_longer() {
        let (ma, mb) = (Meter::default(), Meter::default());
        let linger = Duration::from_millis(500);
        let rules =
            [PairRule { ends_relay: true, wait_for_cause: false, linger: Some(linger) }, PairRule::default()];
        // The peer's end comes 200 ms after ours: read, both directions complete.
        let a = direction(Duration::from_millis(10), 3, &ma, FlowEnd::Eof);
        let b = direction(Duration::from_millis(210), 2, &mb, FlowEnd::Eof);
        let ([fa, fb], end) = run_pair(a, b, rules, [&ma, &mb], |_| {}).await;
        assert_eq!(end, PairEnd::Both);
        assert!(fa.is_some() && fb.is_some());
        // A peer that never ends: the relay stops when the linger is over, not later.
        let a = direction(Duration::from_millis(10), 3, &ma, FlowEnd::Eof);
        let started = tokio::time::Instant::now();
        let ([fa, fb], end) = run_pair(a, std::future::pending::<Flow>(), rules, [&ma, &mb], |_| {}).await;
        assert_eq!(end, PairEnd::Stopped(0));
        assert!(fa.is_some() && fb.is_none());
        let took = started.elapsed();
        assert!(took >= linger && took < linger + Duration::from_millis(50), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_waiting_notice_comes_once_after_a_quiet_second_and_not_while_data_moves() {
        let (ma, mb) = (Meter::default(), Meter::default());
        let said = Arc::new(Mutex::new(Vec::new()));
        // b moves a byte every 400 ms for 2 s, then stays quiet for 5 s more, then ends.
        let b = async {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(400)).await;
                mb.add(1);
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            Flow { bytes_in: 5, bytes_out: 5, frames: 0, frames_skipped: 0, end: FlowEnd::Eof }
        };
        let a = direction(Duration::ZERO, 0, &ma, FlowEnd::Eof);
        let started = tokio::time::Instant::now();
        let log = Arc::clone(&said);
        let (_, end) = run_pair(a, b, [PairRule::default(); 2], [&ma, &mb], move |i| {
            log.lock().unwrap().push((i, started.elapsed()));
        })
        .await;
        assert_eq!(end, PairEnd::Both);
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "said once: {said:?}");
        assert_eq!(said[0].0, 1, "waiting for direction 1");
        // Not while bytes moved (until 2 s), and 1 to 1.25 s into the quiet.
        assert!(said[0].1 >= Duration::from_secs(3) && said[0].1 <= Duration::from_millis(3300), "{said:?}");
    }
}
