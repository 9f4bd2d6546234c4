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
//! (`not a TLS record (type 0x47, version 0x4554, length 8224): no more annotation`) and the
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
    let _ = write!(out, "{at:08x}  ");
    for i in 0..16 {
        if i == 8 {
            out.push(' ');
        }
        match row.get(i) {
            Some(b) => {
                let _ = write!(out, "{b:02x} ");
            }
            None => out.push_str("   "),
        }
    }
    out.push_str(" |");
    out.extend(row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }));
    out.push_str("|\n");
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
    /// a malformed header `not a TLS record (type 0x47, version 0x4554, length 8224): no
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
