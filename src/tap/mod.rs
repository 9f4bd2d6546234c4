//! Seeing the traffic: a tap on each connection of an endpoint (what it received and what
//! it sent, in order, with a timestamp), and what the taps feed: text and hex dumps
//! ([`dump`]), JSON-lines transcripts (read back by `replay:`), and pcapng captures
//! ([`pcapng`]).
//!
//! An endpoint's [`TapOptions`] (`--dump`, `--transcript`, `--pcap`, their endpoint
//! options in `pipe`) open one [`Recorder`] before anything listens or connects: its
//! files are created then (0600, never following a link, an existing file refused
//! without `--force`). The recorder makes a [`ConnTap`] for each connection as it is
//! born (a listener's accepted connection, a client's connected socket), which observes
//! the socket itself ([`crate::streams::observe`]): for a TLS endpoint that is the
//! ciphertext, and the plaintext is observed by the layer over the TLS stream
//! ([`Observer::above`]). Each sink takes the layer it is set to (`--dump-layer`,
//! `--pcap-layer`; the transcript is always plaintext).
//!
//! Writing is inline: a chunk is formatted and written before the stream moves on, so
//! a sink slower than the network slows the connection to its pace, and nothing is
//! dropped; `--dump-max` bounds a dump per connection. A sink that fails to write (a
//! full disk) is said once and switched off; the connection goes on.
//!
//! A TLS capture (`--pcap-layer tls`) holds a connection's packets back until its
//! handshake is done (at most [`HOLD_MAX`] bytes), then writes the secrets rustls
//! logged in a Decryption Secrets Block before them: Wireshark reads a pcapng file in
//! one pass and needs the secrets before the records they decrypt.

pub mod args;
pub mod dump;
pub mod pcapng;
pub mod replay;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::streams::Address;
use crate::streams::observe::{Observer, Observers, Way};

/// The most a TLS capture holds back per connection while its handshake runs.
pub const HOLD_MAX: usize = 1 << 20;

/// Which side of TLS a sink sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layer {
    /// The plaintext (the default).
    #[default]
    Plain,
    /// The TLS records on the wire (ciphertext).
    Tls,
}

impl std::str::FromStr for Layer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "plain" => Ok(Layer::Plain),
            "tls" => Ok(Layer::Tls),
            _ => Err(format!("'{s}' is not a layer: plain or tls")),
        }
    }
}

/// How a dump shows the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpStyle {
    /// Printable text as is, the rest escaped, line ends shown.
    Text,
    /// As `hexdump -C`.
    Hex,
}

impl std::str::FromStr for DumpStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(DumpStyle::Text),
            "hex" => Ok(DumpStyle::Hex),
            _ => Err(format!("'{s}' is not a dump style: text or hex")),
        }
    }
}

/// What an endpoint records of its traffic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TapOptions {
    /// `--dump text|hex`.
    pub dump: Option<DumpStyle>,
    /// `--dump-file FILE`: the dump goes there instead of stderr.
    pub dump_file: Option<PathBuf>,
    /// `--dump-layer plain|tls`.
    pub dump_layer: Layer,
    /// `--dump-max SIZE`: the most bytes dumped per connection (both directions).
    pub dump_max: Option<u64>,
    /// `--transcript FILE`: JSON lines, one per chunk and per event.
    pub transcript: Option<PathBuf>,
    /// `--pcap FILE`: pcapng.
    pub pcap: Option<PathBuf>,
    /// `--pcap-layer plain|tls`: the plaintext, or the TLS records with the secrets.
    pub pcap_layer: Layer,
    /// `--force`: replace an existing file.
    pub force: bool,
}

impl TapOptions {
    /// Whether anything is recorded.
    pub fn is_on(&self) -> bool {
        self.dump.is_some() || self.transcript.is_some() || self.pcap.is_some()
    }
}

/// A file a recorder could not create.
#[derive(Debug, thiserror::Error)]
#[error("cannot create {what} file {}: {reason}", path.display())]
pub struct TapError {
    /// Which: `dump`, `transcript`, `pcap`.
    pub what: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Creates a file for secrets and payloads: 0600, never through a symbolic link, an
/// existing one refused unless `force` (then it is replaced: removed and made anew, so
/// that a link planted there is removed, not followed).
fn create_private(what: &'static str, path: &Path, force: bool) -> Result<File, TapError> {
    use crate::platform::fs::OpenOptionsExt;
    let error = |reason: String| TapError { what, path: path.to_path_buf(), reason };
    if force && let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.is_dir() {
            return Err(error("it is a directory".into()));
        }
        std::fs::remove_file(path).map_err(|e| error(e.to_string()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(crate::platform::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => error("it exists (--force replaces it)".into()),
            _ => error(e.to_string()),
        })
}

/// A sink and whether it still works.
struct Sink<W> {
    out: W,
    what: &'static str,
    failed: bool,
}

impl<W> Sink<W> {
    fn new(out: W, what: &'static str) -> Self {
        Sink { out, what, failed: false }
    }

    /// Runs `write` unless the sink failed before; a failure is said once.
    fn write(&mut self, write: impl FnOnce(&mut W) -> std::io::Result<()>) {
        if self.failed {
            return;
        }
        if let Err(err) = write(&mut self.out) {
            self.failed = true;
            tracing::warn!("writing the {} failed, it stops here: {err}", self.what);
        }
    }
}

/// A packet operation held back until a TLS handshake is done.
enum Held {
    Data(bool, Vec<u8>, SystemTime),
    Fin(bool, SystemTime),
}

/// The pcap sink: the writer, the secrets not yet written, and what is held back.
struct Capture {
    sink: Sink<pcapng::PcapWriter<BufWriter<File>>>,
    secrets: Vec<u8>,
    held: HashMap<u64, (Vec<Held>, usize)>,
}

impl Capture {
    /// Writes the secrets so far, then what `conn` held back.
    fn release(&mut self, conn: u64, conv: pcapng::ConvId) {
        let Some((held, _)) = self.held.remove(&conn) else { return };
        let secrets = std::mem::take(&mut self.secrets);
        self.sink.write(|w| {
            if !secrets.is_empty() {
                w.secrets(&secrets)?;
            }
            for op in held {
                match op {
                    Held::Data(from_client, data, at) => w.data(conv, from_client, &data, at)?,
                    Held::Fin(from_client, at) => w.fin(conv, from_client, at)?,
                }
            }
            Ok(())
        });
    }

    fn op(&mut self, conn: u64, conv: pcapng::ConvId, op: Op<'_>) {
        if let Some((held, size)) = self.held.get_mut(&conn) {
            // Held while a TLS handshake runs (a few KiB): the only copy of the data.
            held.push(match op {
                Op::Data(from_client, data, at) => {
                    *size += data.len();
                    Held::Data(from_client, data.to_vec(), at)
                }
                Op::Fin(from_client, at) => Held::Fin(from_client, at),
            });
            if *size > HOLD_MAX {
                self.release(conn, conv);
            }
            return;
        }
        self.sink.write(|w| match op {
            Op::Data(from_client, data, at) => w.data(conv, from_client, data, at),
            Op::Fin(from_client, at) => w.fin(conv, from_client, at),
        });
    }
}

/// A packet operation as it happens (the data borrowed from the stream's buffer).
enum Op<'a> {
    Data(bool, &'a [u8], SystemTime),
    Fin(bool, SystemTime),
}

/// Everything a recorder writes to, behind one lock (chunks of all connections are
/// written in the order they passed).
struct Sinks {
    dump: Option<Sink<Box<dyn Write + Send>>>,
    transcript: Option<Sink<BufWriter<File>>>,
    capture: Option<Capture>,
}

/// One endpoint's recording: its files, opened once, shared by its connections.
pub struct Recorder {
    options: TapOptions,
    tls: bool,
    sinks: Mutex<Sinks>,
    next: AtomicU64,
}

/// A recorder shared by an endpoint's options (compared by identity).
#[derive(Clone)]
pub struct Shared(pub Arc<Recorder>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("options", &self.0.options).field("tls", &self.0.tls).finish()
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Recorder {
    /// Opens what `options` ask for, for an endpoint that is TLS or not; `None` when
    /// nothing is recorded.
    ///
    /// # Errors
    /// [`TapError`] naming the file that cannot be created.
    pub fn open(options: &TapOptions, tls: bool) -> Result<Option<Shared>, TapError> {
        if !options.is_on() {
            return Ok(None);
        }
        let dump = match (&options.dump, &options.dump_file) {
            (None, _) => None,
            (Some(_), None) => Some(Sink::new(Box::new(std::io::stderr()) as Box<dyn Write + Send>, "dump")),
            (Some(_), Some(path)) => Some(Sink::new(
                Box::new(BufWriter::new(create_private("dump", path, options.force)?))
                    as Box<dyn Write + Send>,
                "dump",
            )),
        };
        let transcript = match &options.transcript {
            Some(path) => Some(Sink::new(
                BufWriter::new(create_private("transcript", path, options.force)?),
                "transcript",
            )),
            None => None,
        };
        let capture = match &options.pcap {
            Some(path) => {
                let file = BufWriter::with_capacity(256 << 10, create_private("pcap", path, options.force)?);
                let error =
                    |e: std::io::Error| TapError { what: "pcap", path: path.clone(), reason: e.to_string() };
                let mut writer = pcapng::PcapWriter::new(file).map_err(error)?;
                // A valid (empty) capture from the start, even if the process ends before
                // any connection closes and flushes it.
                writer.flush().map_err(error)?;
                Some(Capture { sink: Sink::new(writer, "pcap"), secrets: Vec::new(), held: HashMap::new() })
            }
            None => None,
        };
        let sinks = Mutex::new(Sinks { dump, transcript, capture });
        Ok(Some(Shared(Arc::new(Recorder { options: options.clone(), tls, sinks, next: AtomicU64::new(1) }))))
    }

    /// The files it writes, with what each holds: for the events and the log.
    pub fn files(&self) -> Vec<(&'static str, PathBuf)> {
        let o = &self.options;
        [
            ("dump", o.dump.and(o.dump_file.clone())),
            ("transcript", o.transcript.clone()),
            ("pcap", o.pcap.clone()),
        ]
        .into_iter()
        .filter_map(|(what, path)| path.map(|p| (what, p)))
        .collect()
    }

    /// Whether TLS secrets must be collected (a TLS capture of a TLS endpoint).
    pub fn wants_secrets(&self) -> bool {
        self.tls && self.options.pcap.is_some() && self.options.pcap_layer == Layer::Tls
    }

    /// Where rustls logs the secrets of this endpoint's sessions, for the capture.
    pub fn key_log(self: &Arc<Self>) -> Arc<dyn rustls::KeyLog> {
        Arc::new(Secrets(Arc::downgrade(self)))
    }

    /// The tap of a new connection. `accepted`: the peer is the client (a listener's
    /// connection); otherwise we are.
    pub fn connection(self: &Arc<Self>, local: &Address, peer: &Address, accepted: bool) -> Arc<ConnTap> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (client, server) = match (local, peer) {
            (Address::Inet(l), Address::Inet(p)) if accepted => (*p, *l),
            (Address::Inet(l), Address::Inet(p)) => (*l, *p),
            _ => pcapng::synthetic_pair(id),
        };
        let now = SystemTime::now();
        let tap = ConnTap {
            recorder: Arc::clone(self),
            id,
            peer: crate::escape::escape_control(&peer.to_string()).into_owned(),
            accepted,
            state: Mutex::new(ConnState::default()),
        };
        let mut sinks = self.sinks.lock();
        if let Some(capture) = &mut sinks.capture {
            let mut conv = None;
            capture.sink.write(|w| {
                conv = Some(w.open(client, server, now)?);
                Ok(())
            });
            tap.state.lock().conv = conv;
            if self.wants_secrets() {
                capture.held.insert(id, (Vec::new(), 0));
            }
        }
        if let Some(t) = &mut sinks.transcript {
            let record =
                event_record(now, id, "connect", &[("peer", peer.to_string()), ("local", local.to_string())]);
            t.write(|w| w.write_all(dump::transcript_line(&record).as_bytes()));
        }
        drop(sinks);
        Arc::new(tap)
    }
}

/// Says which recording files were made: a `file-written` event each (kind `dump`,
/// `transcript` or `pcap`, mode 0600) and a log line; a capture of TLS records also
/// says, past `--quiet`, that the file holds the session secrets.
pub fn announce(files: &[(&'static str, PathBuf)], secrets: bool, report: &dyn crate::event::Report) {
    for (kind, path) in files {
        tracing::info!("writing the {kind} to {}", path.display());
        report.emit(|| crate::event::Event::FileWritten {
            path: path.display().to_string(),
            kind: (*kind).to_string(),
            mode: "0600".to_string(),
        });
        if secrets && *kind == "pcap" {
            report.say(&format!(
                "{} holds the TLS session secrets: anyone with the file can read the traffic",
                crate::escape::escape_control(&path.display().to_string())
            ));
        }
    }
}

/// Collects the secrets rustls logs for the capture's Decryption Secrets Block.
struct Secrets(std::sync::Weak<Recorder>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets")
    }
}

impl rustls::KeyLog for Secrets {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let Some(recorder) = self.0.upgrade() else { return };
        let hex = crate::streams::tls::hex;
        let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
        if let Some(capture) = &mut recorder.sinks.lock().capture {
            capture.secrets.extend_from_slice(line.as_bytes());
        }
    }
}

/// A recorder is the observer factory of its endpoint's listener.
impl Observers for Shared {
    fn connection(&self, local: &Address, peer: &Address) -> Arc<dyn Observer> {
        Arc::new(SocketTap(self.0.connection(local, peer, true)))
    }
}

/// What a connection's tap keeps between chunks.
#[derive(Default)]
struct ConnState {
    /// Bytes so far per layer (plain, tls) and way (in, out): a dump's offsets.
    offsets: [[u64; 2]; 2],
    /// Bytes dumped so far, and whether the limit was said.
    dumped: u64,
    capped: bool,
    /// The TLS records seen per way, for a dump of the TLS layer.
    records: [Option<dump::TlsRecords>; 2],
    /// The capture's conversation.
    conv: Option<pcapng::ConvId>,
    /// Whether each way's end was captured.
    fin: [bool; 2],
}

/// A transcript's event record.
fn event_record(time: SystemTime, conn: u64, event: &str, fields: &[(&str, String)]) -> dump::Record {
    let fields =
        fields.iter().map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone()))).collect();
    dump::Record::Event { time, conn, event: event.to_string(), fields }
}

/// One connection's tap: the observer of its socket (and, over TLS, of its plaintext).
pub struct ConnTap {
    recorder: Arc<Recorder>,
    id: u64,
    peer: String,
    accepted: bool,
    state: Mutex<ConnState>,
}

fn index(way: Way) -> usize {
    match way {
        Way::In => 0,
        Way::Out => 1,
    }
}

fn direction(way: Way) -> dump::Direction {
    match way {
        Way::In => dump::Direction::In,
        Way::Out => dump::Direction::Out,
    }
}

impl ConnTap {
    /// Its number in the recording (from 1).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The layer a raw chunk belongs to: the socket carries TLS records on a TLS
    /// endpoint, the plaintext otherwise.
    fn raw_layer(&self) -> Layer {
        if self.recorder.tls { Layer::Tls } else { Layer::Plain }
    }

    /// Whether bytes from this side come from the client (for the capture).
    fn sent_by_client(&self, way: Way) -> bool {
        (way == Way::In) == self.accepted
    }

    fn on_chunk(&self, layer: Layer, way: Way, data: &[u8]) {
        let at = SystemTime::now();
        let options = &self.recorder.options;
        let mut state = self.state.lock();
        let mut sinks = self.recorder.sinks.lock();
        let offset = state.offsets[usize::from(layer == Layer::Tls)][index(way)];
        state.offsets[usize::from(layer == Layer::Tls)][index(way)] += data.len() as u64;
        if layer == options.dump_layer || !self.recorder.tls {
            self.dump_chunk(&mut state, &mut sinks, layer, way, data, offset, at);
        }
        if layer == Layer::Plain
            && let Some(t) = &mut sinks.transcript
        {
            let record =
                dump::Record::Data { time: at, conn: self.id, dir: direction(way), data: data.to_vec() };
            t.write(|w| w.write_all(dump::transcript_line(&record).as_bytes()));
        }
        if let (Some(capture), Some(conv)) = (&mut sinks.capture, state.conv) {
            if layer == options.pcap_layer || !self.recorder.tls {
                capture.op(self.id, conv, Op::Data(self.sent_by_client(way), data, at));
            }
            if layer == Layer::Plain && self.recorder.tls {
                // The plaintext moves: the handshake is done, its secrets logged.
                capture.release(self.id, conv);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dump_chunk(
        &self,
        state: &mut ConnState,
        sinks: &mut Sinks,
        layer: Layer,
        way: Way,
        data: &[u8],
        offset: u64,
        at: SystemTime,
    ) {
        let options = &self.recorder.options;
        let (Some(style), Some(sink)) = (options.dump, &mut sinks.dump) else { return };
        let room = options.dump_max.map_or(u64::MAX, |max| max.saturating_sub(state.dumped));
        let shown = &data[..data.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        let mut text = String::new();
        if !shown.is_empty() {
            state.dumped += shown.len() as u64;
            dump::header(&mut text, self.id, &self.peer, direction(way), offset, shown.len(), at);
            if layer == Layer::Tls {
                let records = state.records[index(way)].get_or_insert_with(dump::TlsRecords::new);
                for record in records.feed(shown) {
                    text.push_str(&format!("  at +{}: {}\n", record.offset_in_chunk, record.describe()));
                }
            }
            match style {
                DumpStyle::Hex => dump::hex(&mut text, shown, offset),
                DumpStyle::Text => dump::text(&mut text, shown),
            }
        }
        if shown.len() < data.len() && !std::mem::replace(&mut state.capped, true) {
            text.push_str(&format!(
                "#{} {}: --dump-max reached after {} bytes; the rest of this connection is not shown\n",
                self.id, self.peer, state.dumped
            ));
        }
        if !text.is_empty() {
            sink.write(|w| w.write_all(text.as_bytes()));
        }
    }

    /// A handshake (or another event): a transcript record and a dump line; a TLS
    /// capture's held packets are written now, after the secrets.
    fn on_event(&self, name: &str, fields: &[(&'static str, String)]) {
        let at = SystemTime::now();
        let state = self.state.lock();
        let mut sinks = self.recorder.sinks.lock();
        if let Some(t) = &mut sinks.transcript {
            let record = event_record(at, self.id, name, fields);
            t.write(|w| w.write_all(dump::transcript_line(&record).as_bytes()));
        }
        if let Some(sink) = &mut sinks.dump
            && !state.capped
        {
            let said: Vec<String> =
                fields.iter().map(|(k, v)| format!("{k} {}", crate::escape::escape_control(v))).collect();
            let line = format!(
                "= {} #{} {} {name}: {}\n",
                dump::utc_micros(at),
                self.id,
                self.peer,
                said.join(", ")
            );
            sink.write(|w| w.write_all(line.as_bytes()));
        }
        if let (Some(capture), Some(conv)) = (&mut sinks.capture, state.conv)
            && name == "handshake"
        {
            capture.release(self.id, conv);
        }
    }

    fn on_end(&self, layer: Layer, way: Way) {
        let at = SystemTime::now();
        let options = &self.recorder.options;
        let mut state = self.state.lock();
        let mut sinks = self.recorder.sinks.lock();
        if (layer == options.dump_layer || !self.recorder.tls)
            && let Some(sink) = &mut sinks.dump
            && !state.capped
        {
            let dir = direction(way);
            let line = format!(
                "{} {} #{} {} {} end of stream\n",
                dir.marker(),
                dump::utc_micros(at),
                self.id,
                self.peer,
                dir.as_str()
            );
            sink.write(|w| w.write_all(line.as_bytes()));
        }
        if layer == Layer::Plain
            && let Some(t) = &mut sinks.transcript
        {
            let dir = match way {
                Way::In => "in",
                Way::Out => "out",
            };
            let record = event_record(at, self.id, "half-close", &[("dir", dir.to_string())]);
            t.write(|w| w.write_all(dump::transcript_line(&record).as_bytes()));
        }
        if let (Some(capture), Some(conv)) = (&mut sinks.capture, state.conv)
            && (layer == options.pcap_layer || !self.recorder.tls)
            && !std::mem::replace(&mut state.fin[index(way)], true)
        {
            capture.op(self.id, conv, Op::Fin(self.sent_by_client(way), at));
        }
    }
}

impl Drop for ConnTap {
    fn drop(&mut self) {
        let at = SystemTime::now();
        let state = self.state.get_mut();
        let mut sinks = self.recorder.sinks.lock();
        if let (Some(capture), Some(conv)) = (&mut sinks.capture, state.conv) {
            capture.release(self.id, conv);
            for way in [Way::In, Way::Out] {
                if !state.fin[index(way)] {
                    let from_client = (way == Way::In) == self.accepted;
                    capture.sink.write(|w| w.fin(conv, from_client, at));
                }
            }
            capture.sink.write(|w| w.flush());
        }
        if let Some(t) = &mut sinks.transcript {
            let record = event_record(at, self.id, "close", &[]);
            t.write(|w| {
                w.write_all(dump::transcript_line(&record).as_bytes())?;
                w.flush()
            });
        }
        if let Some(sink) = &mut sinks.dump {
            sink.write(|w| w.flush());
        }
    }
}

impl Observer for ConnTap {
    fn chunk(&self, way: Way, data: &[u8]) {
        self.on_chunk(self.raw_layer(), way, data);
    }

    fn event(&self, name: &str, fields: &[(&'static str, String)]) {
        self.on_event(name, fields);
    }

    fn ended(&self, way: Way) {
        self.on_end(self.raw_layer(), way);
    }

    fn above(&self) -> Option<Arc<dyn Observer>> {
        None
    }
}

/// The plaintext over a TLS connection's tap.
struct Plaintext(Arc<ConnTap>);

impl Observer for Plaintext {
    fn chunk(&self, way: Way, data: &[u8]) {
        self.0.on_chunk(Layer::Plain, way, data);
    }

    fn ended(&self, way: Way) {
        self.0.on_end(Layer::Plain, way);
    }
}

/// The observer of a connection's socket: its tap, which knows the plaintext observer
/// above it on a TLS endpoint.
pub struct SocketTap(pub Arc<ConnTap>);

impl Observer for SocketTap {
    fn chunk(&self, way: Way, data: &[u8]) {
        self.0.chunk(way, data);
    }

    fn ended(&self, way: Way) {
        self.0.ended(way);
    }

    fn event(&self, name: &str, fields: &[(&'static str, String)]) {
        self.0.on_event(name, fields);
    }

    fn above(&self) -> Option<Arc<dyn Observer>> {
        self.0.recorder.tls.then(|| Arc::new(Plaintext(Arc::clone(&self.0))) as Arc<dyn Observer>)
    }
}
