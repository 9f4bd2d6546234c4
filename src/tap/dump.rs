//! Text and hex dumps of a connection's chunks, TLS record annotation, and the
//! JSON-lines transcript format with its reader (for `replay:`).
//!
//! Everything here is pure and synchronous: it formats bytes a tap has already seen. The
//! formats are below, exactly; none of them keeps state across chunks except
//! [`TlsRecords`].
//!
//! # A chunk's header line ([`header`])
//!
//! ```text
//! > 2026-12-06T01:02:03.123456Z #3 127.0.0.1:5000 out 12 bytes at 0
//! < 2026-12-06T01:02:03.125001Z #3 127.0.0.1:5000 in 1 byte at 0
//! ```
//!
//! Fields, separated by one space: the marker (`>` for bytes sent to the peer, `<` for
//! bytes received from it, as `socat -v`), the UTC time with microseconds
//! (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, see [`utc_micros`]), `#` and the connection id, the peer
//! (control characters escaped by [`crate::escape::escape_control`]; it may hold spaces, so
//! read the fields after it from the end), the direction word (`out` or `in`), the length
//! with `byte` or `bytes`, `at` and the offset of the chunk's first byte in that direction of
//! the connection (0 for the first chunk; the sum of the earlier chunks' lengths). The line
//! ends with `\n`. A header line starts with `>` or `<`; no dump line does.
//!
//! # Hex dump ([`hex`])
//!
//! Byte for byte what `hexdump -C -s OFFSET -n LEN FILE` (util-linux) prints for the chunk,
//! where FILE holds that direction's whole stream and OFFSET is the chunk's offset in it:
//!
//! ```text
//! 00000005  78 a2 74 23 e2 d4 a3 00  8f 98 16 50 7b 42 36 3d  |x.t#.......P{B6=|
//! *
//! 00000025  db 16 d3 ef a1 be 48 95                           |......H.|
//! 0000002d
//! ```
//!
//! Rows of 16 bytes start at the chunk's offset (not at a multiple of 16). A row: the offset
//! of its first byte in lowercase hex, at least 8 digits; two spaces; 16 columns of two
//! lowercase hex digits and a space, with one more space after the 8th column (a short last
//! row pads the missing columns with spaces, so its `|` lines up); a space; `|`, the bytes
//! 0x20 to 0x7e as themselves and every other byte as `.`, and `|`. A full row equal to the
//! previous full row is not printed: the first of a run of them becomes a line `*`. The
//! last line is the offset just past the chunk. An empty chunk prints nothing.
//!
//! # Text dump ([`text`])
//!
//! Every line starts with two spaces. Bytes 0x20 to 0x7e are themselves, except `\`, which
//! is `\\`. A tab is `\t`, a carriage return `\r`, a line feed `\n` followed by a real line
//! break. A valid UTF-8 character beyond ASCII is itself unless a terminal could be misled
//! by it: control characters (C1 included), the bidirectional overrides, isolates and
//! marks, zero-width and invisible format characters, the line and paragraph separators
//! and the tag characters are `\u{hex}` (lowercase, no padding, as
//! [`crate::escape::escape_control`]). Every other byte (the other C0 controls, DEL, bytes
//! that are not valid UTF-8, including a character cut in two by the chunk boundary) is
//! `\xNN` in lowercase hex. So the dump is unambiguous: the bytes can be recovered from it.
//! The last line ends with a line break even when the chunk does not end with a line feed;
//! no marker is added for that, because a data line feed is always shown as `\n`: a line
//! without a trailing `\n` is the chunk's end. An empty chunk prints nothing.
//!
//! ```text
//!   GET / HTTP/1.1\r\n
//!   Host: example.com\r\n
//!   \x1b[2J\u{202e}café \\o/
//! ```
//!
//! # TLS record annotation ([`TlsRecords`])
//!
//! Fed one direction's raw (ciphertext) bytes chunk by chunk, it reports every record
//! header as its 5 bytes complete; [`RecordInfo::describe`] gives the text, for example
//! `TLS record: handshake, TLS 1.0, 512 bytes`. The version is the record layer's (TLS 1.3
//! records say TLS 1.2 there, as the protocol requires). A header whose version is not
//! 0x03xx or whose length is beyond 2^14 + 2048 is not TLS: it is reported once
//! (`not a TLS record (type 0x47, version 0x4554, length 8239): no more annotation`) and the
//! stream is not annotated further.
//!
//! # Transcript ([`transcript_line`], [`read_transcript`])
//!
//! JSON lines, one record a line, keys in this order:
//!
//! ```text
//! {"time":"2026-12-06T01:02:03.123456Z","conn":3,"dir":"out","len":5,"data":"aGVsbG8="}
//! {"time":"2026-12-06T01:02:03.100000Z","conn":3,"event":"connect","local":"127.0.0.1:40000","peer":"127.0.0.1:5000"}
//! {"time":"...","conn":3,"event":"handshake","cipher":"TLS13_AES_128_GCM_SHA256","sni":"example.com","tls":"TLSv1.3"}
//! {"time":"...","conn":3,"event":"half-close","dir":"out"}
//! {"time":"...","conn":3,"event":"close","reason":"reset by peer"}
//! ```
//!
//! `time` is UTC with microseconds (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, exactly that shape),
//! `conn` the connection id. A data line has `dir` (`out`: sent to the peer, `in`: received
//! from it), `len` (the byte count) and `data` (standard base64 with padding, RFC 4648). An
//! event line has `event` and the event's own fields after it in key order; `time`, `conn`
//! and `event` are reserved (an event field of that name is not written). The reader takes
//! any line with `event` as an event (unknown event names are kept, so older readers accept
//! newer files), any other as data, ignores unknown keys and blank lines, and rejects a line
//! that is not a JSON object, lacks a field, has a field of the wrong type, a time not in
//! the shape above, a `dir` other than `in`/`out`, `data` that is not base64, or a `len`
//! other than the decoded length, naming the line number (from 1).

use std::fmt::Write as _;
use std::io::BufRead;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::escape::{escape_control, needs_escape};

/// Which way a chunk went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received from the peer.
    In,
    /// Sent to the peer.
    Out,
}

impl Direction {
    /// `in` or `out`, as in the header line and the transcript.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    /// The header line's marker: `<` for in, `>` for out.
    pub fn marker(self) -> char {
        match self {
            Direction::In => '<',
            Direction::Out => '>',
        }
    }
}

/// How a dump shows a chunk's bytes (`--dump text|hex`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Escaped text, see [`text`].
    Text,
    /// `hexdump -C` rows, see [`hex`].
    Hex,
}

impl Style {
    /// The chunk's body in this style: [`text`] or [`hex`] (`offset` matters to hex only).
    pub fn body(self, out: &mut String, data: &[u8], offset: u64) {
        match self {
            Style::Text => text(out, data),
            Style::Hex => hex(out, data, offset),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Time

/// `at` as UTC with microseconds, `2026-12-06T01:02:03.123456Z` (truncated, not rounded,
/// to the microsecond). A time outside the years -9999 to 9999 (never a real clock's) is
/// `@SECONDS.MICROS` since the Unix epoch instead.
pub fn utc_micros(at: SystemTime) -> String {
    let nanos: i128 = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let micros = nanos.div_euclid(1000);
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let Some(t) = i64::try_from(secs).ok().and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
    else {
        return format!("@{secs}.{frac:06}");
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The inverse of [`utc_micros`] for its usual shape, `YYYY-MM-DDTHH:MM:SS.ffffffZ`
/// exactly (four-digit year, six fraction digits, `Z`); anything else is `None`.
pub fn parse_utc_micros(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 27 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b'.' || b[26] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(num(0..4)?).ok()?, month, num(8..10)? as u8).ok()?;
    let (h, m, sec) = (num(11..13)? as u8, num(14..16)? as u8, num(17..19)? as u8);
    let clock = time::Time::from_hms_micro(h, m, sec, num(20..26)?).ok()?;
    let secs = time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp();
    let frac = Duration::from_micros(u64::from(num(20..26)?));
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64) + frac)
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?.checked_add(frac)
    }
}

// ---------------------------------------------------------------------------------------
// Dumps

/// Appends one chunk's header line (see the module): marker, time, `#conn`, `peer`
/// (escaped), direction, `len` bytes, `at` the chunk's `offset` in that direction; ends
/// with `\n`.
pub fn header(
    out: &mut String,
    conn: u64,
    peer: &str,
    dir: Direction,
    offset: u64,
    len: usize,
    at: SystemTime,
) {
    let unit = if len == 1 { "byte" } else { "bytes" };
    let _ = writeln!(
        out,
        "{} {} #{conn} {} {} {len} {unit} at {offset}",
        dir.marker(),
        utc_micros(at),
        escape_control(peer),
        dir.as_str()
    );
}

/// Appends the `hexdump -C` rows of `data`, whose first byte is at `offset` in its
/// direction's stream: exactly `hexdump -C -s OFFSET -n LEN` on that stream's file (see the
/// module), nothing for an empty chunk.
pub fn hex(out: &mut String, data: &[u8], offset: u64) {
    if data.is_empty() {
        return;
    }
    let mut previous: Option<&[u8]> = None;
    let mut squeezed = false;
    for (i, row) in data.chunks(16).enumerate() {
        if row.len() == 16 && previous == Some(row) {
            if !squeezed {
                out.push_str("*\n");
                squeezed = true;
            }
            continue;
        }
        squeezed = false;
        previous = Some(row);
        hex_row(out, row, offset.wrapping_add(16 * i as u64));
    }
    let _ = writeln!(out, "{:08x}", offset.wrapping_add(data.len() as u64));
}

fn hex_row(out: &mut String, row: &[u8], at: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Built as bytes, then pushed once: formatting each byte with `write!` cost most of a
    // dump's time (docs/performance.md, "Recording the traffic").
    let mut line = [b' '; 8 + 2 + 16 * 3 + 1 + 2 + 16 + 2];
    let mut n = 0;
    if at > 0xffff_ffff {
        let _ = write!(out, "{at:08x}");
    } else {
        for shift in (0..8).rev() {
            line[n] = DIGITS[((at >> (shift * 4)) & 0xf) as usize];
            n += 1;
        }
    }
    n += 2;
    for i in 0..16 {
        if i == 8 {
            n += 1;
        }
        if let Some(&b) = row.get(i) {
            line[n] = DIGITS[usize::from(b >> 4)];
            line[n + 1] = DIGITS[usize::from(b & 0xf)];
        }
        n += 3;
    }
    n += 1;
    line[n] = b'|';
    n += 1;
    for &b in row {
        line[n] = if (0x20..0x7f).contains(&b) { b } else { b'.' };
        n += 1;
    }
    line[n] = b'|';
    line[n + 1] = b'\n';
    n += 2;
    // Every byte written above is ASCII.
    out.push_str(std::str::from_utf8(&line[..n]).unwrap_or_default());
}

/// Appends `data` as escaped text lines, each starting with two spaces, the last one ended
/// by a line break whatever the chunk ends with (see the module); nothing for an empty
/// chunk.
pub fn text(out: &mut String, data: &[u8]) {
    let mut line_start = true;
    for piece in data.utf8_chunks() {
        for c in piece.valid().chars() {
            if line_start {
                out.push_str("  ");
            }
            line_start = !push_text_char(out, c);
        }
        for b in piece.invalid() {
            if line_start {
                out.push_str("  ");
            }
            let _ = write!(out, "\\x{b:02x}");
            line_start = false;
        }
    }
    if !line_start {
        out.push('\n');
    }
}

/// Appends one character of a text dump; false when it ended the line (a line feed).
fn push_text_char(out: &mut String, c: char) -> bool {
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => {
            out.push_str("\\n\n");
            return false;
        }
        ' '..='~' => out.push(c),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if hidden(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
    true
}

/// Whether a character beyond ASCII is escaped in a text dump: what
/// [`crate::escape::needs_escape`] escapes, and the invisible or reordering format
/// characters and separators besides.
fn hidden(c: char) -> bool {
    needs_escape(c)
        || matches!(
            c,
            '\u{ad}'
                | '\u{61c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

// ---------------------------------------------------------------------------------------
// TLS records

/// The largest record length accepted as TLS: a TLS 1.2 ciphertext's limit, 2^14 + 2048.
const MAX_RECORD: u16 = 16384 + 2048;

/// Follows one direction's TLS records across chunks (see the module).
#[derive(Debug, Default, Clone)]
pub struct TlsRecords {
    /// The header bytes seen so far (up to 5).
    header: Vec<u8>,
    /// The stream offset of the header being collected.
    header_start: u64,
    /// Body bytes of the current record still to pass over.
    body_left: u64,
    /// Bytes fed so far.
    fed: u64,
    /// Set once a header was not TLS: nothing more is reported.
    stopped: bool,
}

/// One record header, as [`TlsRecords::feed`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// Where the header's first byte is in the chunk that completed it; 0 when the header
    /// began in an earlier chunk (then `stream_offset` is before this chunk).
    pub offset_in_chunk: usize,
    /// Where the header's first byte is in the direction's stream (bytes fed before it).
    pub stream_offset: u64,
    /// The record's content type (22 handshake, 23 application data, ...).
    pub content_type: u8,
    /// The record layer's protocol version (0x0303 is TLS 1.2).
    pub version: u16,
    /// The record's length, without its 5-byte header.
    pub length: u16,
    /// The header is not TLS (see the module): this is the last report of its stream.
    pub malformed: bool,
}

impl TlsRecords {
    /// A follower at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the stream's next chunk; returns the record headers that completed in it, in
    /// order (with a malformed one last, and nothing from then on).
    pub fn feed(&mut self, data: &[u8]) -> Vec<RecordInfo> {
        let chunk_start = self.fed;
        self.fed = self.fed.wrapping_add(data.len() as u64);
        let mut found = Vec::new();
        let mut i = 0;
        while i < data.len() && !self.stopped {
            if self.body_left > 0 {
                let skip = self.body_left.min((data.len() - i) as u64);
                self.body_left -= skip;
                i += skip as usize;
                continue;
            }
            if self.header.is_empty() {
                self.header_start = chunk_start.wrapping_add(i as u64);
            }
            let take = (5 - self.header.len()).min(data.len() - i);
            self.header.extend_from_slice(&data[i..i + take]);
            i += take;
            if self.header.len() == 5 {
                let info = self.complete(chunk_start);
                found.push(info);
            }
        }
        found
    }

    /// The record whose 5 header bytes are in `self.header`; starts its body.
    fn complete(&mut self, chunk_start: u64) -> RecordInfo {
        let h = std::mem::take(&mut self.header);
        let version = u16::from_be_bytes([h[1], h[2]]);
        let length = u16::from_be_bytes([h[3], h[4]]);
        let malformed = h[1] != 3 || length > MAX_RECORD;
        self.stopped = malformed;
        self.body_left = u64::from(length);
        RecordInfo {
            offset_in_chunk: usize::try_from(self.header_start.saturating_sub(chunk_start)).unwrap_or(0),
            stream_offset: self.header_start,
            content_type: h[0],
            version,
            length,
            malformed,
        }
    }
}

impl RecordInfo {
    /// The content type's name: `handshake`, `application_data`, ..., or `unknown(N)`.
    pub fn type_name(&self) -> String {
        match self.content_type {
            20 => "change_cipher_spec".into(),
            21 => "alert".into(),
            22 => "handshake".into(),
            23 => "application_data".into(),
            24 => "heartbeat".into(),
            n => format!("unknown({n})"),
        }
    }

    /// The version's name: `SSL 3.0`, `TLS 1.0` to `TLS 1.3`, or `0xNNNN`.
    pub fn version_name(&self) -> String {
        match self.version {
            0x0300 => "SSL 3.0".into(),
            0x0301 => "TLS 1.0".into(),
            0x0302 => "TLS 1.1".into(),
            0x0303 => "TLS 1.2".into(),
            0x0304 => "TLS 1.3".into(),
            v => format!("0x{v:04x}"),
        }
    }

    /// One line without its line break: `TLS record: handshake, TLS 1.2, 512 bytes`, or for
    /// a malformed header `not a TLS record (type 0x47, version 0x4554, length 8239): no
    /// more annotation`.
    pub fn describe(&self) -> String {
        if self.malformed {
            return format!(
                "not a TLS record (type 0x{:02x}, version 0x{:04x}, length {}): no more annotation",
                self.content_type, self.version, self.length
            );
        }
        let unit = if self.length == 1 { "byte" } else { "bytes" };
        format!("TLS record: {}, {}, {} {unit}", self.type_name(), self.version_name(), self.length)
    }
}

// ---------------------------------------------------------------------------------------
// Transcripts

/// One line of a transcript (see the module).
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A chunk of data.
    Data {
        /// When it was seen.
        time: SystemTime,
        /// The connection's id.
        conn: u64,
        /// Which way it went.
        dir: Direction,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Something that happened to a connection: `connect` (fields `peer`, `local`),
    /// `handshake` (`tls`, `cipher`, `sni`), `half-close` (`dir`), `close` (`reason`,
    /// optional), or a name this version does not know.
    Event {
        /// When it happened.
        time: SystemTime,
        /// The connection's id.
        conn: u64,
        /// The event's name.
        event: String,
        /// Its other fields (`time`, `conn` and `event` are not written from here).
        fields: Map<String, Value>,
    },
}

impl Record {
    /// An event record from its name and fields, for example
    /// `Record::event(now, 3, "half-close", [("dir", "out".into())])`.
    pub fn event<'a>(
        time: SystemTime,
        conn: u64,
        event: &str,
        fields: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Self {
        let fields = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Record::Event { time, conn, event: event.to_owned(), fields }
    }

    /// The record's connection id.
    pub fn conn(&self) -> u64 {
        match self {
            Record::Data { conn, .. } | Record::Event { conn, .. } => *conn,
        }
    }

    /// The record's time.
    pub fn time(&self) -> SystemTime {
        match self {
            Record::Data { time, .. } | Record::Event { time, .. } => *time,
        }
    }
}

/// Why a transcript cannot be read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// A line is not a transcript record.
    #[error("transcript line {line}: {what}")]
    Line {
        /// Its number, from 1.
        line: usize,
        /// What is wrong with it.
        what: String,
    },
    /// Reading failed.
    #[error("reading the transcript after line {line}: {source}")]
    Io {
        /// The last line read whole.
        line: usize,
        /// The error.
        source: std::io::Error,
    },
    /// The transcript has no record at all (nothing to replay).
    #[error("the transcript has no records")]
    Empty,
    /// The connection asked for is not in the transcript.
    #[error("the transcript has no connection #{0}")]
    NoConnection(u64),
}

#[derive(serde::Serialize)]
struct DataLine<'a> {
    time: &'a str,
    conn: u64,
    dir: Direction,
    len: usize,
    data: &'a str,
}

#[derive(serde::Serialize)]
struct EventLine<'a> {
    time: &'a str,
    conn: u64,
    event: &'a str,
    #[serde(flatten)]
    fields: &'a Map<String, Value>,
}

const RESERVED: [&str; 3] = ["time", "conn", "event"];

/// The transcript line of `record` (see the module), ending with `\n`.
pub fn transcript_line(record: &Record) -> String {
    let mut line = match record {
        Record::Data { time, conn, dir, data } => {
            let (time, data_b64) = (utc_micros(*time), data_encoding::BASE64.encode(data));
            let line = DataLine { time: &time, conn: *conn, dir: *dir, len: data.len(), data: &data_b64 };
            serde_json::to_string(&line)
        }
        Record::Event { time, conn, event, fields } => {
            let time = utc_micros(*time);
            let kept;
            let fields = if RESERVED.iter().any(|k| fields.contains_key(*k)) {
                kept = fields
                    .iter()
                    .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                &kept
            } else {
                fields
            };
            serde_json::to_string(&EventLine { time: &time, conn: *conn, event, fields })
        }
    }
    .expect("strings, numbers and JSON values serialize");
    line.push('\n');
    line
}

/// Reads a whole transcript: every non-blank line must be a record (see the module); the
/// first bad one is an error naming its line number.
pub fn read_transcript(mut reader: impl BufRead) -> Result<Vec<Record>, TranscriptError> {
    let mut records = Vec::new();
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return Ok(records),
            Ok(_) => number += 1,
            Err(source) => return Err(TranscriptError::Io { line: number, source }),
        }
        let bad = |what: String| TranscriptError::Line { line: number, what };
        let line = std::str::from_utf8(&buf).map_err(|_| bad("not UTF-8".into()))?;
        if line.trim().is_empty() {
            continue;
        }
        records.push(parse_record(line).map_err(bad)?);
    }
}

/// One transcript line as a record, or what is wrong with it.
fn parse_record(line: &str) -> Result<Record, String> {
    let mut object: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let time_text = field_str(&object, "time")?;
    let time = parse_utc_micros(time_text).ok_or_else(|| {
        format!("\"time\" is {time_text:?}, not a UTC time like 2026-12-06T01:02:03.123456Z")
    })?;
    let conn =
        field(&object, "conn")?.as_u64().ok_or("\"conn\" is not a connection number (an integer from 0)")?;
    if object.contains_key("event") {
        let event = field_str(&object, "event")?.to_owned();
        for key in RESERVED {
            object.remove(key);
        }
        return Ok(Record::Event { time, conn, event, fields: object });
    }
    let dir = match field_str(&object, "dir")? {
        "in" => Direction::In,
        "out" => Direction::Out,
        other => return Err(format!("\"dir\" is {other:?}, not \"in\" or \"out\"")),
    };
    let len = field(&object, "len")?.as_u64().ok_or("\"len\" is not a byte count (an integer from 0)")?;
    let data = data_encoding::BASE64
        .decode(field_str(&object, "data")?.as_bytes())
        .map_err(|e| format!("\"data\" is not base64: {e}"))?;
    if data.len() as u64 != len {
        return Err(format!("\"len\" is {len} but \"data\" holds {} bytes", data.len()));
    }
    Ok(Record::Data { time, conn, dir, data })
}

fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a Value, String> {
    object.get(key).ok_or_else(|| format!("no \"{key}\" field"))
}

fn field_str<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    field(object, key)?.as_str().ok_or_else(|| format!("\"{key}\" is not a string"))
}

/// What a replay sends: the data of connection `conn` (the first record's connection when
/// `None`) in direction `dir`, in order, each with the time since the previous chunk of
/// that direction (the first: since the connection's first record, usually its `connect`
/// event; a clock that went back gives zero). Empty when that direction has no data.
pub fn replay_plan(
    records: &[Record],
    conn: Option<u64>,
    dir: Direction,
) -> Result<Vec<(Duration, Vec<u8>)>, TranscriptError> {
    let first = records.first().ok_or(TranscriptError::Empty)?;
    let conn = conn.unwrap_or(first.conn());
    let mut mine = records.iter().filter(|r| r.conn() == conn).peekable();
    let mut last = mine.peek().ok_or(TranscriptError::NoConnection(conn))?.time();
    let mut plan = Vec::new();
    for record in mine {
        if let Record::Data { time, dir: d, data, .. } = record
            && *d == dir
        {
            plan.push((time.duration_since(last).unwrap_or(Duration::ZERO), data.clone()));
            last = *time;
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;
    use std::process::Command;

    /// A xorshift64 generator: reproducible pseudo-random bytes without a crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// Whether `tool` is on PATH; when not, a skip with a note, or a failure under CI.
    fn need(tool: &str) -> bool {
        let path = std::env::var("PATH").unwrap_or_default();
        if path.split(':').any(|dir| !dir.is_empty() && Path::new(dir).join(tool).is_file()) {
            return true;
        }
        assert!(std::env::var_os("CI").is_none(), "{tool} missing (CI is set: a failure, not a skip)");
        eprintln!("SKIPPED: {tool} missing");
        false
    }

    /// What `hexdump -C -s offset -n len file` prints.
    fn hexdump(file: &Path, offset: usize, len: usize) -> String {
        let output = Command::new("hexdump")
            .env("LC_ALL", "C")
            .args(["-C", "-s", &offset.to_string(), "-n", &len.to_string()])
            .arg(file)
            .output()
            .expect("run hexdump");
        assert!(output.status.success(), "hexdump failed: {output:?}");
        String::from_utf8(output.stdout).expect("hexdump prints ASCII")
    }

    /// Checks `hex` against hexdump for each (offset, len) of `stream`.
    fn check_against_hexdump(stream: &[u8], chunks: &[(usize, usize)]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("stream");
        std::fs::write(&file, stream).expect("write the stream");
        for &(offset, len) in chunks {
            let mut ours = String::new();
            hex(&mut ours, &stream[offset..offset + len], offset as u64);
            let theirs = hexdump(&file, offset, len);
            assert_eq!(ours, theirs, "chunk at {offset}, {len} bytes");
        }
    }

    #[test]
    fn hex_is_hexdump_on_random_chunks() {
        if !need("hexdump") {
            return;
        }
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let stream = rng.bytes(10 * 1024);
        let mut special = vec![16, 4096, 0, 17, 15, 1].into_iter();
        let (mut chunks, mut at) = (Vec::new(), 0);
        while at < stream.len() {
            let want = if chunks.len() % 6 == 1 { special.next() } else { None };
            let len = want.unwrap_or_else(|| 1 + rng.below(400)).min(stream.len() - at);
            chunks.push((at, len));
            at += len;
        }
        assert!((30..=50).contains(&chunks.len()), "{} chunks", chunks.len());
        for len in [1, 15, 16, 17, 4096, 0] {
            assert!(chunks.iter().any(|c| c.1 == len), "no chunk of {len} bytes");
        }
        check_against_hexdump(&stream, &chunks);
    }

    #[test]
    fn hex_is_hexdump_on_repeated_rows() {
        if !need("hexdump") {
            return;
        }
        let mut rng = XorShift(7);
        let mut stream = rng.bytes(7);
        for (byte, run) in [(0, 100), (0xaa, 48), (0, 33), (1, 20), (0, 16), (0, 31), (0x41, 64)] {
            stream.extend(std::iter::repeat_n(byte, run));
            stream.extend(rng.bytes(3));
        }
        let mut chunks = vec![(0, stream.len())];
        for offset in [0, 1, 3, 7, 8, 15, 16, 23, 40, 107] {
            for len in [16, 32, 47, 48, 49, 100, 200] {
                chunks.push((offset, len.min(stream.len() - offset)));
            }
        }
        chunks.push((5, 0));
        check_against_hexdump(&stream, &chunks);
    }

    #[test]
    fn hex_offsets_grow_past_eight_digits_and_empty_chunks_print_nothing() {
        // `hexdump -C -s 4294967290 -n 40` on a sparse file with "hi" at 4294967300.
        let mut data = vec![0; 40];
        data[10..12].copy_from_slice(b"hi");
        let mut out = String::new();
        hex(&mut out, &data, 4_294_967_290);
        assert_eq!(
            out,
            "fffffffa  00 00 00 00 00 00 00 00  00 00 68 69 00 00 00 00  |..........hi....|\n\
             10000000a  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n\
             10000001a  00 00 00 00 00 00 00 00                           |........|\n\
             100000022\n"
        );
        let mut out = String::new();
        hex(&mut out, &[], 12);
        text(&mut out, &[]);
        assert_eq!(out, "");
    }

    fn text_of(data: &[u8]) -> String {
        let mut out = String::new();
        text(&mut out, data);
        out
    }

    #[test]
    fn text_escapes_controls_and_keeps_printable_text() {
        assert_eq!(
            text_of(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            "  GET / HTTP/1.1\\r\\n\n  Host: x\\r\\n\n  \\r\\n\n"
        );
        assert_eq!(text_of(b"a\tb\\c\0\x07\x7f"), "  a\\tb\\\\c\\x00\\x07\\x7f\n");
        assert_eq!(text_of(b"\x1b[2J\x1b]0;title\x07"), "  \\x1b[2J\\x1b]0;title\\x07\n");
        assert_eq!(text_of(b"no newline"), "  no newline\n");
        assert_eq!(text_of(b"\n\n"), "  \\n\n  \\n\n");
        assert_eq!(text_of(b"x\\x41"), "  x\\\\x41\n");
    }

    #[test]
    fn text_passes_utf8_letters_and_escapes_what_misleads_a_terminal() {
        assert_eq!(text_of("café ✓ 日本\n".as_bytes()), "  café ✓ 日本\\n\n");
        // Bidi override, C1 CSI and NEL as UTF-8, zero-width space, line separator, BOM.
        let tricky = "a\u{202e}b\u{9b}c\u{85}d\u{200b}e\u{2028}f\u{feff}g\u{2066}";
        assert_eq!(
            text_of(tricky.as_bytes()),
            "  a\\u{202e}b\\u{9b}c\\u{85}d\\u{200b}e\\u{2028}f\\u{feff}g\\u{2066}\n"
        );
        // Invalid UTF-8: lone C1 bytes, a cut character, an overlong encoding, 0xff.
        assert_eq!(text_of(b"\x9b\x85 \xe2\x80 \xc0\xaf \xff"), "  \\x9b\\x85 \\xe2\\x80 \\xc0\\xaf \\xff\n");
        assert_eq!(text_of(b"\xe2\x80\xae"), "  \\u{202e}\n");
    }

    /// The bytes a text dump shows (the dump is unambiguous).
    fn decode_text(dump: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        for line in dump.lines() {
            let mut rest = line.strip_prefix("  ").expect("every line starts with two spaces");
            while let Some(c) = rest.chars().next() {
                rest = &rest[c.len_utf8()..];
                if c != '\\' {
                    bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
                let e = rest.chars().next().expect("an escape");
                rest = &rest[1..];
                match e {
                    '\\' | 't' | 'r' | 'n' => bytes.push(match e {
                        't' => b'\t',
                        'r' => b'\r',
                        'n' => b'\n',
                        _ => b'\\',
                    }),
                    'x' => {
                        bytes.push(u8::from_str_radix(&rest[..2], 16).expect("hex"));
                        rest = &rest[2..];
                    }
                    'u' => {
                        let end = rest.find('}').expect("}");
                        let c = char::from_u32(u32::from_str_radix(&rest[1..end], 16).expect("hex"));
                        bytes.extend_from_slice(c.expect("a char").encode_utf8(&mut [0; 4]).as_bytes());
                        rest = &rest[end + 1..];
                    }
                    other => panic!("unknown escape \\{other}"),
                }
            }
        }
        bytes
    }

    #[test]
    fn header_lines_have_every_field() {
        let at = UNIX_EPOCH + Duration::from_micros(1_796_518_923_123_456);
        let mut out = String::new();
        header(&mut out, 3, "127.0.0.1:5000", Direction::Out, 0, 12, at);
        header(&mut out, 3, "evil\x1b[2J\u{202e}", Direction::In, 4096, 1, at + Duration::from_nanos(999));
        assert_eq!(
            out,
            "> 2026-12-06T01:02:03.123456Z #3 127.0.0.1:5000 out 12 bytes at 0\n\
             < 2026-12-06T01:02:03.123456Z #3 evil\\x1b[2J\\u{202e} in 1 byte at 4096\n"
        );
        assert_eq!(utc_micros(UNIX_EPOCH - Duration::from_millis(1500)), "1969-12-31T23:59:58.500000Z");
        assert_eq!(utc_micros(UNIX_EPOCH - Duration::from_nanos(1)), "1969-12-31T23:59:59.999999Z");
        let far = UNIX_EPOCH.checked_add(Duration::from_secs(1 << 40)).expect("a far time");
        assert_eq!(utc_micros(far), "@1099511627776.000000");
        for t in
            [at, UNIX_EPOCH, UNIX_EPOCH - Duration::from_millis(1500), UNIX_EPOCH + Duration::from_micros(1)]
        {
            assert_eq!(parse_utc_micros(&utc_micros(t)), Some(t));
        }
        for bad in
            ["2026-12-06T01:02:03.123456", "2026-12-06 01:02:03.123456Z", "2026-13-06T01:02:03.123456Z"]
        {
            assert_eq!(parse_utc_micros(bad), None, "{bad}");
        }
        assert_eq!(parse_utc_micros("2026-12-06T01:02:03.12345+Z"), None);
        assert_eq!(parse_utc_micros("2026-02-30T01:02:03.123456Z"), None);
    }

    /// A record header as the tests compare them: stream offset, type, version, length.
    type Seen = (u64, u8, u16, u16);

    /// A ClientHello-like record, a change_cipher_spec, application data, an alert.
    fn tls_stream() -> (Vec<u8>, Vec<Seen>) {
        let mut s = vec![22, 3, 1, 0, 45, 1, 0, 0, 41, 3, 3];
        s.extend([0x5a; 39]);
        s.extend([20, 3, 3, 0, 1, 1]);
        s.extend([23, 3, 3, 0, 32]);
        s.extend([0xc3; 32]);
        s.extend([21, 3, 3, 0, 2, 1, 0]);
        s.extend([23, 3, 3, 0, 0]);
        let records = vec![
            (0, 22, 0x0301, 45),
            (50, 20, 0x0303, 1),
            (56, 23, 0x0303, 32),
            (93, 21, 0x0303, 2),
            (100, 23, 0x0303, 0),
        ];
        (s, records)
    }

    fn feed_in(records: &mut TlsRecords, chunks: &[&[u8]]) -> Vec<Seen> {
        let mut seen = Vec::new();
        let mut start = 0u64;
        for chunk in chunks {
            for info in records.feed(chunk) {
                let expected = info.stream_offset.saturating_sub(start) as usize;
                assert_eq!(info.offset_in_chunk, expected, "{info:?} in a chunk at {start}");
                assert!(!info.malformed, "{info:?}");
                seen.push((info.stream_offset, info.content_type, info.version, info.length));
            }
            start += chunk.len() as u64;
        }
        seen
    }

    #[test]
    fn tls_records_are_found_across_every_split() {
        let (s, expected) = tls_stream();
        assert_eq!(feed_in(&mut TlsRecords::new(), &[&s]), expected);
        for i in 0..=s.len() {
            assert_eq!(feed_in(&mut TlsRecords::new(), &[&s[..i], &s[i..]]), expected, "split at {i}");
            for j in i..=s.len() {
                let seen = feed_in(&mut TlsRecords::new(), &[&s[..i], &s[i..j], &s[j..]]);
                assert_eq!(seen, expected, "split at {i} and {j}");
            }
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(feed_in(&mut TlsRecords::new(), &bytes), expected);
    }

    #[test]
    fn tls_records_describe_themselves() {
        let info = |content_type, version, length| RecordInfo {
            offset_in_chunk: 0,
            stream_offset: 0,
            content_type,
            version,
            length,
            malformed: false,
        };
        assert_eq!(info(22, 0x0301, 512).describe(), "TLS record: handshake, TLS 1.0, 512 bytes");
        assert_eq!(info(23, 0x0303, 1).describe(), "TLS record: application_data, TLS 1.2, 1 byte");
        assert_eq!(info(20, 0x0300, 1).type_name(), "change_cipher_spec");
        assert_eq!(info(21, 0x0302, 2).describe(), "TLS record: alert, TLS 1.1, 2 bytes");
        assert_eq!(info(24, 0x0304, 3).describe(), "TLS record: heartbeat, TLS 1.3, 3 bytes");
        assert_eq!(info(99, 0x0305, 0).describe(), "TLS record: unknown(99), 0x0305, 0 bytes");
    }

    #[test]
    fn garbage_is_reported_once_then_annotation_stops() {
        let mut records = TlsRecords::new();
        let found = records.feed(b"GET / HTTP/1.1\r\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].malformed);
        assert_eq!(
            found[0].describe(),
            "not a TLS record (type 0x47, version 0x4554, length 8239): no more annotation"
        );
        assert!(records.feed(&tls_stream().0).is_empty());
        // Valid records, then a length beyond TLS's limit.
        let mut records = TlsRecords::new();
        let mut s = vec![23, 3, 3, 0, 2, 9, 9, 23, 3, 3, 0x48, 1];
        s.extend([0; 20]);
        let found = records.feed(&s);
        assert_eq!(found.len(), 2);
        assert!(!found[0].malformed && found[1].malformed, "{found:?}");
        assert_eq!((found[1].offset_in_chunk, found[1].length), (7, 0x4801));
        assert!(records.feed(&s).is_empty());
    }

    fn t(micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(1_796_518_923_000_000 + micros)
    }

    fn event(time: SystemTime, conn: u64, name: &str, fields: Value) -> Record {
        let Value::Object(fields) = fields else { panic!("fields are an object") };
        Record::Event { time, conn, event: name.into(), fields }
    }

    fn data(time: SystemTime, conn: u64, dir: Direction, bytes: &[u8]) -> Record {
        Record::Data { time, conn, dir, data: bytes.to_vec() }
    }

    fn sample() -> Vec<Record> {
        use serde_json::json;
        vec![
            event(t(0), 1, "connect", json!({"peer": "127.0.0.1:5000", "local": "127.0.0.1:40000"})),
            event(t(1_000), 2, "connect", json!({"peer": "[::1]:5000", "local": "[::1]:40001"})),
            event(
                t(5_000),
                1,
                "handshake",
                json!({"tls": "TLSv1.3", "cipher": "TLS13_AES_128_GCM_SHA256", "sni": "x"}),
            ),
            data(t(10_000), 1, Direction::Out, b"a"),
            data(t(20_000), 1, Direction::In, b"\x00\xff binary \x1b"),
            data(t(25_000), 2, Direction::Out, b"other connection"),
            data(t(50_000), 1, Direction::Out, b"c"),
            data(t(40_000), 1, Direction::Out, b""),
            Record::event(t(60_000), 1, "half-close", [("dir", "out".into())]),
            event(t(70_000), 1, "close", json!({})),
            event(t(70_001), 2, "close", json!({"reason": "reset by peer"})),
            event(t(80_000), 2, "from-the-future", json!({"x": [1, {"y": null}]})),
        ]
    }

    #[test]
    fn transcripts_round_trip_with_the_documented_lines() {
        let records = sample();
        let file: String = records.iter().map(transcript_line).collect();
        assert_eq!(file.lines().count(), records.len());
        assert_eq!(
            transcript_line(&data(t(123_456), 3, Direction::Out, b"hello")),
            "{\"time\":\"2026-12-06T01:02:03.123456Z\",\"conn\":3,\"dir\":\"out\",\"len\":5,\"data\":\"aGVsbG8=\"}\n"
        );
        assert_eq!(
            transcript_line(&records[0]),
            "{\"time\":\"2026-12-06T01:02:03.000000Z\",\"conn\":1,\"event\":\"connect\",\
             \"local\":\"127.0.0.1:40000\",\"peer\":\"127.0.0.1:5000\"}\n"
        );
        let back = read_transcript(file.as_bytes()).expect("read back");
        assert_eq!(back, records);
        // Reserved names in an event's fields are not written twice; blank lines are skipped.
        let odd =
            event(t(0), 1, "connect", serde_json::json!({"time": 1, "conn": 2, "event": 3, "peer": "p"}));
        let line = transcript_line(&odd);
        assert_eq!(
            line,
            "{\"time\":\"2026-12-06T01:02:03.000000Z\",\"conn\":1,\"event\":\"connect\",\"peer\":\"p\"}\n"
        );
        let with_blanks = format!("\n{line}  \r\n{line}");
        assert_eq!(read_transcript(with_blanks.as_bytes()).expect("read").len(), 2);
    }

    #[test]
    fn every_bad_line_is_an_error_naming_its_line() {
        let good = transcript_line(&data(t(0), 1, Direction::In, b"ok"));
        let time = "\"time\":\"2026-12-06T01:02:03.000000Z\"";
        let cases: Vec<(String, &str)> = vec![
            ("{not json".into(), "not a JSON object"),
            ("[1, 2]".into(), "not a JSON object"),
            ("{\"conn\":1,\"dir\":\"in\",\"len\":0,\"data\":\"\"}".into(), "no \"time\" field"),
            ("{\"time\":\"yesterday\",\"conn\":1,\"event\":\"close\"}".into(), "not a UTC time"),
            ("{\"time\":5,\"conn\":1,\"event\":\"close\"}".into(), "\"time\" is not a string"),
            (format!("{{{time},\"dir\":\"in\",\"len\":0,\"data\":\"\"}}"), "no \"conn\" field"),
            (format!("{{{time},\"conn\":-1,\"dir\":\"in\",\"len\":0,\"data\":\"\"}}"), "\"conn\" is not"),
            (format!("{{{time},\"conn\":\"1\",\"event\":\"close\"}}"), "\"conn\" is not"),
            (format!("{{{time},\"conn\":1,\"event\":7}}"), "\"event\" is not a string"),
            (format!("{{{time},\"conn\":1,\"len\":0,\"data\":\"\"}}"), "no \"dir\" field"),
            (
                format!("{{{time},\"conn\":1,\"dir\":\"up\",\"len\":0,\"data\":\"\"}}"),
                "not \"in\" or \"out\"",
            ),
            (format!("{{{time},\"conn\":1,\"dir\":\"in\",\"data\":\"\"}}"), "no \"len\" field"),
            (format!("{{{time},\"conn\":1,\"dir\":\"in\",\"len\":1.5,\"data\":\"\"}}"), "\"len\" is not"),
            (format!("{{{time},\"conn\":1,\"dir\":\"in\",\"len\":0}}"), "no \"data\" field"),
            (format!("{{{time},\"conn\":1,\"dir\":\"in\",\"len\":1,\"data\":\"!!\"}}"), "not base64"),
            (
                format!("{{{time},\"conn\":1,\"dir\":\"in\",\"len\":3,\"data\":\"aGVsbG8=\"}}"),
                "holds 5 bytes",
            ),
            ("\u{0}".into(), "not a JSON object"),
        ];
        for (bad, what) in cases {
            let file = format!("{good}\n{bad}\n{good}");
            let err = read_transcript(file.as_bytes()).expect_err(&bad).to_string();
            assert!(err.starts_with("transcript line 3: "), "{bad}: {err}");
            assert!(err.contains(what), "{bad}: {err}");
        }
        let mut file = good.clone().into_bytes();
        file.extend(b"{\"time\":\"\xff\"}\n");
        let err = read_transcript(&file[..]).expect_err("not UTF-8").to_string();
        assert_eq!(err, "transcript line 2: not UTF-8");
    }

    #[test]
    fn replay_plans_take_one_connection_and_direction_with_delays() {
        let records = sample();
        let ms = Duration::from_millis;
        let plan = replay_plan(&records, None, Direction::Out).expect("plan");
        assert_eq!(plan, vec![(ms(10), b"a".to_vec()), (ms(40), b"c".to_vec()), (ms(0), Vec::new())]);
        let plan = replay_plan(&records, None, Direction::In).expect("plan");
        assert_eq!(plan, vec![(ms(20), b"\x00\xff binary \x1b".to_vec())]);
        let plan = replay_plan(&records, Some(2), Direction::Out).expect("plan");
        assert_eq!(plan, vec![(ms(24), b"other connection".to_vec())]);
        assert_eq!(replay_plan(&records, Some(2), Direction::In).expect("plan"), vec![]);
        let err = replay_plan(&records, Some(9), Direction::Out).expect_err("no #9");
        assert_eq!(err.to_string(), "the transcript has no connection #9");
        let err = replay_plan(&[], None, Direction::Out).expect_err("empty");
        assert_eq!(err.to_string(), "the transcript has no records");
    }

    proptest! {
        #[test]
        fn dumps_never_panic_and_text_is_unambiguous(data in proptest::collection::vec(any::<u8>(), 0..400), offset in any::<u64>()) {
            let mut out = String::new();
            hex(&mut out, &data, offset);
            let mut shown = String::new();
            text(&mut shown, &data);
            prop_assert_eq!(decode_text(&shown), data.clone());
            prop_assert!(shown.lines().all(|l| l.starts_with("  ")));
            prop_assert!(data.is_empty() || shown.ends_with('\n'));
            header(&mut out, offset, &String::from_utf8_lossy(&data), Direction::In, offset, data.len(), UNIX_EPOCH);
        }

        #[test]
        fn tls_records_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400), cut in any::<usize>()) {
            let mut records = TlsRecords::new();
            let cut = cut % (data.len() + 1);
            let found: Vec<RecordInfo> = records.feed(&data[..cut]).into_iter().chain(records.feed(&data[cut..])).collect();
            prop_assert!(found.iter().filter(|r| r.malformed).count() <= 1);
            prop_assert!(found.iter().rev().skip(1).all(|r| !r.malformed));
            for r in &found {
                let _ = r.describe();
            }
        }

        #[test]
        fn transcripts_never_panic(seed in any::<u64>(), flips in 1usize..8, junk in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = read_transcript(&junk[..]);
            let mut file: Vec<u8> = sample().iter().map(transcript_line).collect::<String>().into_bytes();
            let mut rng = XorShift(seed | 1);
            for _ in 0..flips {
                let at = rng.below(file.len());
                let alphabet = b"{}\":,0123456789aZT-.\\\n x";
                file[at] = alphabet[rng.below(alphabet.len())];
            }
            if let Ok(records) = read_transcript(&file[..]) {
                for dir in [Direction::In, Direction::Out] {
                    let _ = replay_plan(&records, None, dir);
                }
            }
            let time: String = (0..27).map(|_| b"0123456789-T:.Z"[rng.below(15)] as char).collect();
            let _ = parse_utc_micros(&time);
        }
    }
}
