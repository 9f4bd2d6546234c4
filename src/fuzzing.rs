//! Fuzz properties: each function takes arbitrary bytes, drives one parser or stream layer
//! with them, and panics when a property the rest of streamtool relies on does not hold.
//!
//! The cargo-fuzz targets under `fuzz/` call these functions, and so do the proptests and
//! the corpus replay in `tests/it/fuzz_props.rs`: one set of properties, run by both.
//! Not a stable API; hidden from the documentation. Compiled only with the test-only
//! `fuzzing` feature, which `fuzz/` enables and `cargo test` enables through the crate's
//! dev-dependency on itself; a normal build of the library leaves it out.
//!
//! The properties, beyond "no panic, no hang":
//! - every error message is one non-empty line (it goes to stderr as `streamtool: …`);
//! - parsers round-trip what they accept (`Display` then parse gives the same value);
//! - `receive_until`, framing and text decoding give the same result however the bytes
//!   are chunked, and `receive_until` agrees with a reference model;
//! - frames never exceed the maximum and never contain the delimiter; without skipped
//!   frames, joining them with the delimiter gives back the input (no byte lost or added);
//! - replacement-mode decoding never fails; strict UTF-8 decoding fails exactly when the
//!   input is not UTF-8;
//! - a TLS server or client fed arbitrary bytes ends its handshake with an error (it can't
//!   succeed without the keys) and does not hang.

use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use rustls::{ClientConfig, ServerConfig};

use crate::certs;
use crate::endpoint::{ConnectAddress, Endpoint, ListenAddress};
use crate::streams::tls::{self, ClientOptions, ServerOptions, TlsVersion, Trust};
use crate::streams::{
    AsyncResource, BufferedByteStream, ByteReceiveStream, ByteSendStream, ByteStreamIo, Capacity, ErrorMode,
    FrameConfig, FramedStream, MemoryObjectReceiveStream, ObjectByteReceiveStream, Oversize, RaggedEofPolicy,
    StreamError, TextEncoding, TextReceiveStream, Trailing, memory_byte_stream_pair, memory_object_stream,
};
use crate::values;

/// Reads parameters off the front of the fuzz input; past its end, every byte is zero.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// Up to `max` cut points, each a byte.
    fn cuts(&mut self, max: u8) -> Vec<usize> {
        let n = self.byte() % (max + 1);
        (0..n).map(|_| usize::from(self.byte())).collect()
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

fn assert_one_line(what: &str, message: &str) {
    assert!(!message.is_empty(), "{what}: empty error message");
    assert!(!message.contains(['\n', '\r']), "{what}: error message is not one line: {message:?}");
}

/// What a parser accepts, it shows in a form that it accepts again and shows the same way
/// (a fixed point: `8080` may show as `localhost:8080`, but that must stay put).
fn check_round_trip<T>(what: &str, text: &str)
where
    T: FromStr + Display,
    T::Err: Display,
{
    match text.parse::<T>() {
        Ok(value) => {
            let shown = value.to_string();
            match shown.parse::<T>() {
                Ok(again) => {
                    assert_eq!(
                        again.to_string(),
                        shown,
                        "{what}: {text:?} shows as {shown:?}, which does not stay put"
                    )
                }
                Err(e) => panic!("{what}: {text:?} shows as {shown:?}, which does not parse: {e}"),
            }
        }
        Err(e) => assert_one_line(what, &e.to_string()),
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

/// Splits `data` at the cut points (modulo its length).
pub fn chunk(data: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut points: Vec<usize> =
        cuts.iter().map(|c| if data.is_empty() { 0 } else { c % data.len() }).collect();
    points.extend([0, data.len()]);
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]])).collect()
}

/// A byte stream that yields exactly these chunks and then ends.
pub fn source(chunks: Vec<Bytes>) -> ObjectByteReceiveStream<MemoryObjectReceiveStream<Bytes>> {
    let (tx, rx) = memory_object_stream::<Bytes>(Capacity::Unbounded);
    for c in chunks {
        tx.send_nowait(c).expect("an unbounded stream takes every item");
    }
    ObjectByteReceiveStream::new(rx)
}

// ---------------------------------------------------------------------------------------
// Parsers

/// PROXY protocol headers (`crate::proxy_protocol`): no panic; a header accepted took no
/// more bytes than given, every shorter prefix of it asked for more without reaching
/// past it (the read never consumes payload), encoding it and parsing again gives it
/// back; an error is one line.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy_protocol::{Parse, encode, parse};
    match parse(data) {
        Ok(Parse::Done(header, used)) => {
            assert!(used <= data.len() && used >= 15, "{used} bytes used of {}", data.len());
            // Every prefix (or, for long headers, a few) asks for more, within the header.
            let cuts: Vec<usize> =
                if used <= 256 { (0..used).collect() } else { vec![0, 5, 15, 16, used - 1] };
            for cut in cuts {
                match parse(&data[..cut]) {
                    Ok(Parse::NeedMore(n)) => {
                        assert!(n >= 1 && cut + n <= used, "cut {cut}: {n} more of {used}")
                    }
                    other => panic!("the prefix of {cut} bytes of a {used}-byte header: {other:?}"),
                }
            }
            let again = encode(&header);
            assert_eq!(parse(&again), Ok(Parse::Done(header, again.len())), "re-encoded");
        }
        Ok(Parse::NeedMore(n)) => assert!(n >= 1),
        Err(err) => assert_one_line("proxy header", &err.to_string()),
    }
}

/// `pipe` endpoints and `serve`/`connect` addresses.
pub fn endpoint(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match text.parse::<Endpoint>() {
        Ok(endpoint) => {
            if let crate::endpoint::EndpointKind::Tcp(host, _) | crate::endpoint::EndpointKind::Tls(host, _) =
                &endpoint.kind
            {
                assert!(!host.is_empty(), "endpoint {text:?}: empty host accepted");
            }
        }
        Err(e) => assert_one_line("endpoint", &e),
    }
    check_round_trip::<ListenAddress>("listen address", &text);
    check_round_trip::<ConnectAddress>("connect address", &text);
}

/// Option values: sizes, durations, delimiters, versions, encodings, pins, names.
pub fn option_values(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match values::parse_size(&text) {
        Ok(n) => {
            assert!(n >= 1, "size {text:?} parsed as 0");
            assert_eq!(values::parse_size(&n.to_string()), Ok(n), "size {n} does not round-trip");
        }
        Err(e) => assert_one_line("size", &e),
    }
    match values::parse_duration(&text) {
        Ok(d) => assert!(
            d >= Duration::from_millis(1) && d <= Duration::from_secs(366 * 86_400),
            "duration {text:?} parsed as {d:?}"
        ),
        Err(e) => assert_one_line("duration", &e),
    }
    match values::parse_delimiter(&text) {
        Ok(bytes) => {
            assert!(!bytes.is_empty(), "delimiter {text:?} parsed as empty");
            if !text.contains('\\') {
                assert_eq!(bytes, text.as_bytes(), "delimiter {text:?} without escapes changed");
            }
        }
        Err(e) => assert_one_line("delimiter", &e),
    }
    // Every byte string can be written with `\xNN` escapes, and reads back as itself.
    if !data.is_empty() {
        let escaped: String = data.iter().map(|b| format!("\\x{b:02x}")).collect();
        assert_eq!(values::parse_delimiter(&escaped).as_deref(), Ok(data), "escaped delimiter {escaped:?}");
    }
    check_round_trip::<TlsVersion>("TLS version", &text);
    check_round_trip::<tls::Pin>("pin", &text);
    if let Err(e) = text.parse::<TextEncoding>() {
        assert_one_line("encoding", &e.to_string());
    }
    if let Err(e) = text.parse::<ErrorMode>() {
        assert_one_line("decode-errors", &e.to_string());
    }
    if let Err(e) = text.parse::<certs::KeyType>() {
        assert_one_line("key type", &e.to_string());
    }
    if let Err(e) = certs::parse_name(&text) {
        assert_one_line("gen-cert name", &e.to_string());
    }
}

// ---------------------------------------------------------------------------------------
// Proxy replies and URLs

/// What an outbound proxy answers (`stack::proxy`), and proxy URLs.
///
/// Input: a selector byte, then the bytes. Properties: no panic; every error message is
/// one line; an HTTP status line is shown with its control characters escaped; a SOCKS5
/// reply parses the same from exactly its own bytes, asks for more from fewer (never
/// more than 262 bytes in all); a proxy URL shows no credentials and, without any, shows
/// in a form that parses back to itself.
pub fn proxy_reply(data: &[u8]) {
    use crate::stack::proxy::{self, NoProxy, ProxySpec};
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 4 {
        0 => {
            match proxy::parse_http_reply(rest) {
                Ok(reply) => assert!((200..300).contains(&reply.status), "status {} accepted", reply.status),
                Err(e) => {
                    let message = e.to_string();
                    assert_one_line("HTTP proxy reply", &message);
                    assert!(!message.chars().any(|c| c.is_control()), "control character shown: {message:?}");
                }
            }
            if let Some(len) = proxy::http_head_len(rest) {
                assert!(rest[..len].ends_with(b"\r\n\r\n"), "head length {len} does not end the head");
                assert!(proxy::http_head_len(&rest[..len - 1]).is_none(), "an earlier end was missed");
            }
        }
        1 => match proxy::parse_socks5_reply(rest) {
            Ok(Some(reply)) => {
                assert!(reply.len <= rest.len() && reply.len <= 262, "reply length {}", reply.len);
                assert_eq!(proxy::parse_socks5_reply(&rest[..reply.len]).ok().flatten(), Some(reply.clone()));
                assert_eq!(proxy::parse_socks5_reply(&rest[..reply.len - 1]).ok().flatten(), None);
                assert!(!reply.bound.chars().any(|c| c.is_control()), "bound address {:?}", reply.bound);
            }
            Ok(None) => assert!(rest.len() < 262, "{} bytes and still incomplete", rest.len()),
            Err(e) => assert_one_line("SOCKS5 reply", &e.to_string()),
        },
        2 => match proxy::parse_socks4_reply(rest) {
            Ok(Some(len)) => assert_eq!(len, 8),
            Ok(None) => assert!(rest.len() < 8),
            Err(e) => assert_one_line("SOCKS4 reply", &e.to_string()),
        },
        _ => {
            let text = String::from_utf8_lossy(rest);
            match text.parse::<ProxySpec>() {
                Ok(spec) => {
                    let shown = spec.to_string();
                    for secret in [&spec.user, &spec.password].into_iter().flatten() {
                        if secret.len() >= 4 && !spec.host.contains(secret.as_str()) {
                            assert!(!shown.contains(secret.as_str()), "{shown:?} shows a credential");
                        }
                    }
                    if spec.user.is_none() && spec.password.is_none() {
                        assert_eq!(
                            shown.parse::<ProxySpec>().as_ref(),
                            Ok(&spec),
                            "{shown:?} does not round-trip"
                        );
                    }
                }
                Err(e) => assert_one_line("proxy URL", &e),
            }
            match text.parse::<NoProxy>() {
                Ok(list) => {
                    let _ = list.matches(&text);
                }
                Err(e) => assert_one_line("no-proxy list", &e),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Buffered receive and framing

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Frame(Vec<u8>),
    NotFound,
    Incomplete,
    Oversized,
    End,
}

fn outcome(result: crate::streams::Result<Bytes>) -> Outcome {
    match result {
        Ok(b) => Outcome::Frame(b.to_vec()),
        Err(StreamError::DelimiterNotFound { .. }) => Outcome::NotFound,
        Err(StreamError::IncompleteRead) => Outcome::Incomplete,
        Err(StreamError::OversizedFrame { .. }) => Outcome::Oversized,
        Err(StreamError::EndOfStream) => Outcome::End,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// The reference for `receive_until`: the delimiter must end within the first
/// `max_bytes` bytes; the stream's end before a delimiter is an incomplete read.
fn receive_until_model(data: &[u8], delimiter: &[u8], max_bytes: usize) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let window = &rest[..rest.len().min(max_bytes)];
        match memchr::memmem::find(window, delimiter) {
            Some(i) => {
                out.push(Outcome::Frame(rest[..i].to_vec()));
                rest = &rest[i + delimiter.len()..];
            }
            None if rest.len() >= max_bytes => return [out, vec![Outcome::NotFound]].concat(),
            None => return [out, vec![Outcome::Incomplete]].concat(),
        }
    }
}

/// `receive_until` and `receive_exactly` over arbitrary chunkings.
///
/// Input: delimiter length and bytes, `max_bytes`, cut points, then the stream's bytes.
pub fn receive_until(data: &[u8]) {
    let mut input = Input(data);
    let delimiter_len = usize::from(input.byte() % 4) + 1;
    let mut delimiter = input.take(delimiter_len).to_vec();
    delimiter.resize(delimiter_len, b'\n');
    let max_bytes = usize::from(input.byte()) + 1;
    let exactly = usize::from(input.byte() % 32);
    let cuts = input.cuts(16);
    let payload = input.rest();

    let run = |chunks: Vec<Bytes>| {
        block_on(async {
            let mut buffered = BufferedByteStream::new(source(chunks));
            let mut out = Vec::new();
            loop {
                let o = outcome(buffered.receive_until(&delimiter, max_bytes).await);
                let stop = !matches!(o, Outcome::Frame(_));
                out.push(o);
                if stop {
                    return out;
                }
            }
        })
    };
    let whole = run(vec![Bytes::copy_from_slice(payload)]);
    assert_eq!(whole, run(chunk(payload, &cuts)), "receive_until depends on the chunking");
    assert_eq!(
        whole,
        receive_until_model(payload, &delimiter, max_bytes),
        "receive_until differs from the model"
    );

    // receive_exactly(n) repeatedly: consecutive slices, then a short read that keeps the rest.
    let exactly_run = |chunks: Vec<Bytes>| {
        block_on(async {
            let mut buffered = BufferedByteStream::new(source(chunks));
            let mut got = Vec::new();
            loop {
                match buffered.receive_exactly(exactly).await {
                    Ok(b) if exactly == 0 => return (vec![b.to_vec()], buffered.buffer().len()),
                    Ok(b) => got.push(b.to_vec()),
                    Err(StreamError::IncompleteRead) => return (got, buffered.buffer().len()),
                    Err(e) => panic!("receive_exactly: unexpected error {e:?}"),
                }
            }
        })
    };
    let (slices, left) = exactly_run(chunk(payload, &cuts));
    if let Some(whole_slices) = payload.len().checked_div(exactly) {
        assert_eq!(slices.len(), whole_slices, "receive_exactly slice count");
        assert_eq!(
            slices.concat(),
            payload[..slices.len() * exactly],
            "receive_exactly lost or changed bytes"
        );
        assert_eq!(left, payload.len() % exactly, "receive_exactly did not keep the short remainder");
    } else {
        assert_eq!(slices, vec![Vec::<u8>::new()], "receive_exactly(0)");
    }
}

/// Delimiter framing over arbitrary chunkings, with both oversize and trailing policies.
///
/// Input: delimiter, `max_frame`, policy bits, cut points, then the stream's bytes.
pub fn framing(data: &[u8]) {
    let mut input = Input(data);
    let delimiter_len = usize::from(input.byte() % 3) + 1;
    let mut delimiter = input.take(delimiter_len).to_vec();
    delimiter.resize(delimiter_len, b'\n');
    let max_frame = usize::from(input.byte() % 64);
    let policy = input.byte();
    let cuts = input.cuts(16);
    let payload = input.rest();

    let mut config = FrameConfig::new(Bytes::from(delimiter.clone()), max_frame);
    if policy & 1 == 1 {
        config.on_oversize = Oversize::Skip;
    }
    if policy & 2 == 2 {
        config.trailing = Trailing::Error;
    }
    let run = |chunks: Vec<Bytes>| {
        block_on(async {
            let mut framed = FramedStream::new(source(chunks), config.clone());
            let mut out = Vec::new();
            loop {
                let o = outcome(framed.receive().await);
                let stop = !matches!(o, Outcome::Frame(_));
                out.push(o);
                if stop || out.len() > payload.len() + 2 {
                    return (out, framed.frames_skipped());
                }
            }
        })
    };
    let (whole, skipped) = run(vec![Bytes::copy_from_slice(payload)]);
    assert_eq!((whole.clone(), skipped), run(chunk(payload, &cuts)), "framing depends on the chunking");

    let frames: Vec<&[u8]> =
        whole.iter().filter_map(|o| if let Outcome::Frame(f) = o { Some(&f[..]) } else { None }).collect();
    for f in &frames {
        assert!(f.len() <= max_frame, "frame of {} bytes over the maximum {max_frame}", f.len());
        assert!(memchr::memmem::find(f, &delimiter).is_none(), "frame {f:?} contains the delimiter");
    }
    let end = whole.last().expect("at least one outcome");
    if skipped == 0 && *end == Outcome::End {
        // Every byte is in a frame: each frame ends in the delimiter, except perhaps the last.
        let terminated: Vec<u8> = frames.iter().flat_map(|f| [*f, &delimiter[..]].concat()).collect();
        let mut unterminated = terminated.clone();
        if !frames.is_empty() {
            unterminated.truncate(terminated.len() - delimiter.len());
        }
        assert!(
            payload == terminated || (payload == unterminated && config.trailing == Trailing::Deliver),
            "frames {frames:?} do not add up to the input {payload:?}"
        );
    }
    if config.on_oversize == Oversize::Error {
        assert_eq!(skipped, 0, "frames skipped under on-oversize=error");
    }
}

// ---------------------------------------------------------------------------------------
// Text decoding

const LABELS: &[&str] = &[
    "utf-8",
    "utf-16le",
    "utf-16be",
    "latin1",
    "ascii",
    "windows-1252",
    "shift_jis",
    "euc-jp",
    "iso-2022-jp",
    "euc-kr",
    "gb18030",
    "big5",
    "koi8-r",
];

/// Text decoding in strict and replace mode over arbitrary chunkings.
///
/// Input: encoding, mode, cut points, then the encoded bytes.
pub fn text_decoder(data: &[u8]) {
    let mut input = Input(data);
    let label = LABELS[usize::from(input.byte()) % LABELS.len()];
    let encoding = TextEncoding::for_label(label).expect("a known label");
    let mode = if input.byte() & 1 == 1 { ErrorMode::Replace } else { ErrorMode::Strict };
    let cuts = input.cuts(16);
    let wire = input.rest();

    let run = |chunks: Vec<Bytes>| {
        block_on(async {
            let mut stream = TextReceiveStream::with_encoding(source(chunks), encoding, mode);
            let mut out = String::new();
            loop {
                match stream.receive().await {
                    Ok(s) => {
                        assert!(!s.is_empty(), "{label}: an empty string received");
                        out.push_str(&s);
                    }
                    Err(StreamError::EndOfStream) => return (out, None),
                    Err(e @ StreamError::Decode { offset, at_eof, .. }) => {
                        assert_one_line("decode error", &e.to_string());
                        assert!(offset <= wire.len() as u64, "{label}: error offset {offset} past the end");
                        return (out, Some((offset, at_eof)));
                    }
                    Err(e) => panic!("{label}: unexpected error {e:?}"),
                }
            }
        })
    };
    let whole = run(vec![Bytes::copy_from_slice(wire)]);
    let chunked = run(chunk(wire, &cuts));
    assert_eq!(whole.1, chunked.1, "{label}: the decode error depends on the chunking");
    if whole.1.is_none() {
        assert_eq!(whole.0, chunked.0, "{label}: the text depends on the chunking");
    }
    if mode == ErrorMode::Replace {
        assert!(whole.1.is_none(), "{label}: replace mode failed");
    }
    if encoding.is_utf8() {
        match std::str::from_utf8(wire) {
            Ok(s) => {
                assert_eq!(whole, (s.to_string(), None), "valid UTF-8 decoded differently");
            }
            Err(e) if mode == ErrorMode::Strict => {
                let (offset, _) = whole.1.expect("invalid UTF-8 accepted in strict mode");
                assert_eq!(offset, e.valid_up_to() as u64, "UTF-8 error at the wrong offset");
            }
            Err(_) => assert_eq!(whole.0, String::from_utf8_lossy(wire), "lossy UTF-8 differs from std"),
        }
    }

    // The decoder itself, fed one piece at a time, then reset and reused.
    let mut decoder = encoding.decoder(ErrorMode::Replace);
    let mut pieces = String::new();
    for piece in chunk(wire, &cuts) {
        decoder.decode(&piece, &mut pieces, false).expect("replace mode never fails");
    }
    decoder.decode(&[], &mut pieces, true).expect("replace mode never fails");
    let mut again = String::new();
    decoder.reset();
    decoder.decode(wire, &mut again, true).expect("replace mode never fails");
    assert_eq!(pieces, again, "{label}: decoder output depends on the pieces or on reset");
}

// ---------------------------------------------------------------------------------------
// PEM and certificates

/// PEM certificate and key loading, the key-match check, and certificate inspection.
///
/// Input: a mode byte, a split point, then the text (certificate PEM, key PEM). Mode 3
/// puts the text after a real leaf as its chain, with the leaf's key: a loaded identity's
/// every block is a whole X.509 certificate, or the error names the file.
pub fn pem(data: &[u8]) {
    let mut input = Input(data);
    let mode = input.byte();
    let split = usize::from(input.byte());
    let text = input.rest();
    let (cert_path, key_path) = (Path::new("fuzz-cert.pem"), Path::new("fuzz-key.pem"));
    match mode % 4 {
        0 => match certs::certs_from_pem(text, cert_path) {
            Ok(chain) => {
                for cert in chain {
                    inspect(&cert);
                }
            }
            Err(e) => assert_error_names(&e, cert_path),
        },
        1 => inspect(text),
        3 => {
            let leaf = leaf_pem();
            let cert_pem = [leaf.cert_pem.as_bytes(), b"\n", text].concat();
            match certs::identity_from_pem(&cert_pem, leaf.key_pem.as_bytes(), cert_path, key_path) {
                Ok(identity) => {
                    for der in &identity.chain {
                        let parsed = x509_parser::parse_x509_certificate(der.as_ref());
                        assert!(
                            parsed.is_ok_and(|(rest, _)| rest.is_empty()),
                            "a chain block that is not a certificate was accepted"
                        );
                    }
                }
                Err(e) => assert_error_names(&e, cert_path),
            }
        }
        _ => {
            let split = if text.is_empty() { 0 } else { split * text.len() / 256 };
            let (cert_pem, key_pem) = text.split_at(split);
            match certs::identity_from_pem(cert_pem, key_pem, cert_path, key_path) {
                Ok(identity) => {
                    if let Err(e) = ServerOptions::new(identity).build() {
                        assert_one_line("server options", &e.to_string());
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    assert_one_line("identity", &message);
                    assert!(message.contains("fuzz-"), "identity error names no file: {message}");
                }
            }
        }
    }
}

/// One self-signed leaf for the whole run (mode 3 of [`pem`]).
fn leaf_pem() -> &'static certs::GeneratedCert {
    static LEAF: OnceLock<certs::GeneratedCert> = OnceLock::new();
    LEAF.get_or_init(|| certs::self_signed(&["localhost"], 30).expect("a test certificate"))
}

fn assert_error_names(e: &certs::CertError, path: &Path) {
    let message = e.to_string();
    assert_one_line("PEM", &message);
    assert!(message.contains(&*path.to_string_lossy()), "PEM error names no file: {message}");
}

fn inspect(der: &[u8]) {
    match certs::inspect(der) {
        Ok(info) => {
            let now = time::OffsetDateTime::UNIX_EPOCH;
            let _ = info.to_text("  ", now);
            let _ = info.to_json(now).to_string();
        }
        Err(e) => assert_one_line("inspect", &e),
    }
}

// ---------------------------------------------------------------------------------------
// TLS

struct Configs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let generated = certs::self_signed(&["localhost"], 30).expect("a test certificate");
        let identity = certs::identity_from_pem(
            generated.cert_pem.as_bytes(),
            generated.key_pem.as_bytes(),
            Path::new("cert"),
            Path::new("key"),
        )
        .expect("the generated identity loads");
        let server = ServerOptions::new(identity).build().expect("server config");
        let client = ClientOptions {
            trust: Trust::Certificates(vec![generated.cert_der.clone()]),
            ..ClientOptions::default()
        }
        .build()
        .expect("client config");
        Configs { server, client }
    })
}

/// A TLS server (or, by the first bit, a client) whose peer sends arbitrary bytes through
/// a memory transport, in chunks of a fuzzed size, then closes.
pub fn tls_peer(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.byte();
    let chunk_size = usize::from(input.byte()) + 1;
    let wire = input.rest();
    let policy = if flags & 2 == 2 { RaggedEofPolicy::Strict } else { RaggedEofPolicy::Ignore };
    let configs = configs();

    let result = block_on(async {
        let (ours, theirs) = memory_byte_stream_pair(4);
        let (mut peer_tx, mut peer_rx) = theirs.into_parts();
        let feed = async move {
            for piece in wire.chunks(chunk_size) {
                if peer_tx.send(Bytes::copy_from_slice(piece)).await.is_err() {
                    return;
                }
            }
            let _ = peer_tx.aclose().await;
        };
        let drain = async move { while peer_rx.receive(65_536).await.is_ok() {} };
        let io = ByteStreamIo::from_stapled(ours);
        let handshake = async move {
            if flags & 1 == 0 {
                tls::TlsStream::accept(io, configs.server.clone(), policy).await.map(drop)
            } else {
                let name = tls::server_name("localhost").expect("a valid name");
                tls::TlsStream::connect(io, configs.client.clone(), name, policy).await.map(drop)
            }
        };
        let all = async { tokio::join!(handshake, feed, drain).0 };
        tokio::time::timeout(Duration::from_secs(10), all).await
    });
    match result {
        Err(_) => panic!("the TLS handshake hung on {} bytes of input", wire.len()),
        Ok(Ok(())) => panic!("a TLS handshake succeeded against arbitrary bytes"),
        Ok(Err(e)) => assert_one_line("TLS handshake", &e.to_string()),
    }
}

/// STARTTLS ([`crate::stack::starttls`]): the first byte picks a protocol (with its high
/// bit, the SMTP server side instead, the rest being what the client sends), the next the
/// size of each read, the rest is what the server sends (then the end of the stream).
/// The negotiation ends (never hangs, never panics); its error message is one line with
/// no control character (the server's words are quoted and escaped); success leaves
/// nothing read and unused (a byte read past the go-ahead is refused). The reply
/// parsers take the same bytes: offsets they return are inside the input, and a quote
/// of any bytes has no control character.
pub fn starttls_reply(data: &[u8]) {
    use crate::stack::starttls::{self, Negotiation, Protocol, XmppScan};
    let mut input = Input(data);
    let first = input.byte();
    let protocol = Protocol::ALL[usize::from(first & 0x7f) % Protocol::ALL.len()];
    let chunk = usize::from(input.byte()) + 1;
    let wire = input.rest();

    let quoted = starttls::quote(wire);
    assert!(!quoted.chars().any(crate::escape::needs_escape), "a quote has a control character: {quoted:?}");
    let _ = starttls::parse_reply_line(wire);
    let _ = starttls::parse_imap_line(wire);
    let _ = starttls::imap_offers_starttls(wire);
    let _ = starttls::capa_offers_stls(wire);
    for scan in [starttls::xmpp_features(wire), starttls::xmpp_proceed(wire)] {
        if let XmppScan::Done { end, .. } = scan {
            assert!(end <= wire.len(), "an XMPP scan ends past its input");
        }
    }
    if let Ok(Some((_, header, _))) = starttls::ber_header(wire) {
        assert!(header <= wire.len());
    }
    let _ = starttls::parse_ldap_response(wire);

    /// The server: `wire` in reads of at most `chunk` bytes, then the end; what the client
    /// writes is dropped.
    struct Server<'a> {
        wire: &'a [u8],
        chunk: usize,
    }
    impl tokio::io::AsyncRead for Server<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self.chunk.min(buf.remaining()).min(self.wire.len());
            buf.put_slice(&self.wire[..n]);
            self.wire = &self.wire[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }
    impl tokio::io::AsyncWrite for Server<'_> {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }
    // With the high bit: the bytes are a client's, to the SMTP server side.
    if first & 0x80 != 0 {
        let mut client = Server { wire, chunk };
        if let Err(message) = block_on(starttls::serve_smtp(&mut client, Duration::from_secs(10))) {
            assert_one_line("STARTTLS server", &message);
            assert!(!message.chars().any(crate::escape::needs_escape), "a control character in {message:?}");
            assert!(!message.starts_with("no STARTTLS"), "the server side hung: {message}");
        }
        return;
    }
    let mut server = Server { wire, chunk };
    let how = Negotiation { protocol, server_name: "localhost", ehlo: None, limit: Duration::from_secs(10) };
    let result = block_on(starttls::negotiate(&mut server, how));
    match result {
        // What the server sends after a read that ended with the go-ahead goes to TLS.
        Ok(()) => {}
        Err(e) => {
            let message = e.to_string();
            assert_one_line("STARTTLS", &message);
            assert!(!message.chars().any(crate::escape::needs_escape), "a control character in {message:?}");
            assert!(!matches!(e, starttls::StarttlsError::Timeout { .. }), "the negotiation hung: {message}");
        }
    }
}
