//! A pcapng writer: each connection as a synthetic TCP conversation, and TLS secrets in a
//! Decryption Secrets Block.
//!
//! streamtool sees byte streams, not packets; for `--pcap FILE` each connection is written as
//! the TCP conversation that would have carried those bytes, so that Wireshark and tshark
//! dissect it as if it had been captured (HTTP, TLS, follow stream, expert analysis).
//!
//! # Layout
//! - One Section Header Block (little-endian, version 1.0, section length unknown, option
//!   `shb_userappl` = `streamtool`), then one Interface Description Block with
//!   [`LINKTYPE_RAW`] (each packet is a bare IPv4 or IPv6 packet, no link-layer header),
//!   snap length [`SNAPLEN`] and the default timestamp resolution (microseconds).
//! - Enhanced Packet Blocks on interface 0, timestamps in microseconds since the Unix epoch
//!   (a time before the epoch is written as 0), captured length = original length = the IP
//!   packet's length.
//! - Decryption Secrets Blocks (TLS key log, NSS format) wherever [`PcapWriter::secrets`] is
//!   called: tshark uses them with no key-log option, for the packets *after* them, so the
//!   caller writes a session's secrets before its first encrypted packet.
//!
//! # The synthetic TCP
//! - [`PcapWriter::open`]: SYN, SYN-ACK, ACK. Initial sequence numbers come from the
//!   conversation's number (a fixed mix of it), so the same calls give the same bytes.
//! - [`PcapWriter::data`]: PSH|ACK segments of at most [`MAX_SEGMENT`] bytes (so that the IPv4
//!   total length and the IPv6 payload length fit in 16 bits), and **after each segment a bare
//!   ACK from the other side**: never more than one segment is unacknowledged, which keeps
//!   tshark's TCP analysis quiet (no window-full or unseen-segment notes) with a plain 65535
//!   window and no window-scale option. A chunk of 0 bytes writes nothing.
//! - [`PcapWriter::fin`]: FIN|ACK, and the other side's ACK. [`PcapWriter::reset`]: RST|ACK.
//! - Headers: IPv4 (IHL 5, DF, TTL 64, an ID counter per writer, header checksum) or IPv6
//!   (hop limit 64); TCP 20 bytes (no options, window 65535), checksum over the pseudo-header.
//!   Client and server of different families are both written as IPv6, the IPv4 one mapped
//!   (`::ffff:a.b.c.d`).
//! - A conversation's state is its addresses and two sequence numbers. It is forgotten after
//!   a reset or once both sides have sent FIN; a later call for it (or data from a side that
//!   sent FIN) writes nothing and is not an error: the capture never breaks a relay.
//!
//! # UNIX sockets and other streams without addresses
//! The caller passes synthetic addresses; [`synthetic_pair`] gives 127.0.0.1 (client) and
//! 127.0.0.2 (server), both on port `1 + n % 65534` for connection number `n`, so that
//! conversations stay apart. tshark picks dissectors by port: a caller that knows the protocol
//! may set the server port (443 for TLS, 80 for HTTP) with [`SocketAddr::set_port`].
//!
//! # The file holds secrets
//! With [`PcapWriter::secrets`] the file decrypts the TLS traffic in it: anyone who can read it
//! reads the plaintext. Create it as a secret file (0600, as the key log is).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// The most payload bytes in one TCP segment: 65535 - 20 (IPv4 header) - 20 (TCP header), so
/// the IPv4 total length fits 16 bits (IPv6 would allow 20 more; one size for both).
pub const MAX_SEGMENT: usize = 65_495;

/// The link type of the one interface: raw IP, each packet starts with its IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u16 = 101;

/// The snap length in the Interface Description Block (packets are never longer than 65535).
pub const SNAPLEN: u32 = 262_144;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const DSB: u32 = 0x0000_000A;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const SECRETS_TLS_KEY_LOG: u32 = 0x544C_534B;
const OPT_END: u16 = 0;
const SHB_USERAPPL: u16 = 4;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const WINDOW: u16 = 65_535;
const TTL: u8 = 64;
const PROTO_TCP: u8 = 6;
const CLIENT: usize = 0;
const SERVER: usize = 1;

/// One conversation of a [`PcapWriter`] (from [`PcapWriter::open`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvId(u64);

/// A conversation's state: the two ends (client first) and what each sends next.
#[derive(Clone, Copy, Debug)]
struct Conv {
    ip: [IpAddr; 2],
    port: [u16; 2],
    next_seq: [u32; 2],
    fin: [bool; 2],
}

/// Writes a pcapng file of synthetic TCP conversations (see the module documentation).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    convs: HashMap<ConvId, Conv>,
    next_conv: u64,
    ip_id: u16,
}

/// Synthetic addresses for connection number `conn` of a stream without IP addresses (a UNIX
/// socket, a pipe): client 127.0.0.1, server 127.0.0.2, both on port `1 + conn % 65534`.
pub fn synthetic_pair(conn: u64) -> (SocketAddr, SocketAddr) {
    // 1 + (0..=65533) is 1..=65534: never 0, always a u16.
    let port = u16::try_from(1 + conn % 65_534).unwrap_or(u16::MAX);
    (
        SocketAddr::new(Ipv4Addr::new(127, 0, 0, 1).into(), port),
        SocketAddr::new(Ipv4Addr::new(127, 0, 0, 2).into(), port),
    )
}

impl<W: Write> PcapWriter<W> {
    /// Writes the Section Header Block and the one Interface Description Block
    /// ([`LINKTYPE_RAW`], snap length [`SNAPLEN`], microsecond timestamps).
    ///
    /// # Errors
    /// Those of writing to `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&section_header())?;
        let mut idb = Vec::with_capacity(8);
        idb.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&SNAPLEN.to_le_bytes());
        out.write_all(&block(IDB, &idb))?;
        Ok(PcapWriter { out, convs: HashMap::new(), next_conv: 0, ip_id: 0 })
    }

    /// A new conversation from `client` to `server`, written as SYN, SYN-ACK and ACK at `at`.
    /// Addresses of different families are both written as IPv6 (the IPv4 one mapped).
    ///
    /// # Errors
    /// Those of writing to the output.
    pub fn open(&mut self, client: SocketAddr, server: SocketAddr, at: SystemTime) -> io::Result<ConvId> {
        let id = ConvId(self.next_conv);
        self.next_conv = self.next_conv.wrapping_add(1);
        let isn = splitmix64(id.0);
        let conv = Conv {
            ip: same_family(client.ip(), server.ip()),
            port: [client.port(), server.port()],
            // Truncation intended: the low and high halves of the mix.
            next_seq: [isn as u32, (isn >> 32) as u32],
            fin: [false; 2],
        };
        self.convs.insert(id, conv);
        self.send(id, CLIENT, SYN, &[], at)?;
        self.send(id, SERVER, SYN | ACK, &[], at)?;
        self.send(id, CLIENT, ACK, &[], at)?;
        Ok(id)
    }

    /// `bytes` sent by the client (`from_client`) or the server: PSH|ACK segments of at most
    /// [`MAX_SEGMENT`] bytes, each followed by the other side's bare ACK. Nothing for an empty
    /// chunk, an unknown or ended conversation, or a side that already sent FIN.
    ///
    /// # Errors
    /// Those of writing to the output.
    pub fn data(&mut self, conv: ConvId, from_client: bool, bytes: &[u8], at: SystemTime) -> io::Result<()> {
        let from = side(from_client);
        if !self.can_send(conv, from) {
            return Ok(());
        }
        for segment in bytes.chunks(MAX_SEGMENT) {
            self.send(conv, from, PSH | ACK, segment, at)?;
            self.send(conv, 1 - from, ACK, &[], at)?;
        }
        Ok(())
    }

    /// That side ended its sending: FIN|ACK, and the other side's ACK. Once both sides have
    /// sent FIN the conversation is forgotten. Nothing for an unknown conversation or a second
    /// FIN from the same side.
    ///
    /// # Errors
    /// Those of writing to the output.
    pub fn fin(&mut self, conv: ConvId, from_client: bool, at: SystemTime) -> io::Result<()> {
        let from = side(from_client);
        if !self.can_send(conv, from) {
            return Ok(());
        }
        self.send(conv, from, FIN | ACK, &[], at)?;
        self.send(conv, 1 - from, ACK, &[], at)?;
        if let Some(c) = self.convs.get_mut(&conv) {
            c.fin[from] = true;
            if c.fin == [true, true] {
                self.convs.remove(&conv);
            }
        }
        Ok(())
    }

    /// That side reset the connection: RST|ACK; the conversation is forgotten. Nothing for an
    /// unknown conversation.
    ///
    /// # Errors
    /// Those of writing to the output.
    pub fn reset(&mut self, conv: ConvId, from_client: bool, at: SystemTime) -> io::Result<()> {
        if !self.convs.contains_key(&conv) {
            return Ok(());
        }
        let sent = self.send(conv, side(from_client), RST | ACK, &[], at);
        self.convs.remove(&conv);
        sent
    }

    /// A Decryption Secrets Block with TLS key-log lines in the NSS format (`CLIENT_RANDOM …`,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET …`, each ending in a newline). tshark applies it to the
    /// packets after it, so it must be written before the first packet it decrypts. Nothing for
    /// an empty key log.
    ///
    /// # Errors
    /// Those of writing to the output, or `InvalidInput` for a key log of 4 GiB or more.
    pub fn secrets(&mut self, nss_key_log: &[u8]) -> io::Result<()> {
        if nss_key_log.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(nss_key_log.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "key log too long for one block"))?;
        let mut body = Vec::with_capacity(8 + nss_key_log.len());
        body.extend_from_slice(&SECRETS_TLS_KEY_LOG.to_le_bytes());
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(nss_key_log);
        self.out.write_all(&block(DSB, &body))
    }

    /// Flushes the output.
    ///
    /// # Errors
    /// Those of flushing the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The output, without flushing it.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Whether side `from` of `conv` is open and has not sent FIN.
    fn can_send(&self, conv: ConvId, from: usize) -> bool {
        self.convs.get(&conv).is_some_and(|c| !c.fin[from])
    }

    /// One packet from side `from` of `conv` with `flags` and `payload`; advances that side's
    /// sequence number by the payload and by one for SYN or FIN.
    fn send(
        &mut self,
        conv: ConvId,
        from: usize,
        flags: u8,
        payload: &[u8],
        at: SystemTime,
    ) -> io::Result<()> {
        let Some(c) = self.convs.get_mut(&conv) else {
            return Ok(());
        };
        let seq = c.next_seq[from];
        let ack = if flags & ACK != 0 { c.next_seq[1 - from] } else { 0 };
        let advance = payload.len() + usize::from(flags & (SYN | FIN) != 0);
        // Truncation intended: sequence numbers wrap (a payload is at most MAX_SEGMENT).
        c.next_seq[from] = seq.wrapping_add(advance as u32);
        let tcp = Tcp { src: c.port[from], dst: c.port[1 - from], seq, ack, flags };
        let (headers, len) = ip_tcp_headers(c.ip[from], c.ip[1 - from], self.ip_id, &tcp, payload);
        self.ip_id = self.ip_id.wrapping_add(1);
        write_enhanced_packet(&mut self.out, &headers[..len], payload, at)
    }
}

/// Index of the sending side.
fn side(from_client: bool) -> usize {
    if from_client { CLIENT } else { SERVER }
}

/// The two addresses in one family: as they are, or both IPv6 with the IPv4 one mapped.
fn same_family(client: IpAddr, server: IpAddr) -> [IpAddr; 2] {
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    };
    if client.is_ipv4() == server.is_ipv4() { [client, server] } else { [v6(client), v6(server)] }
}

/// A fixed 64-bit mix (SplitMix64's finalizer) for deterministic initial sequence numbers.
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A block: type, total length, the body padded to 32 bits, total length again.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().next_multiple_of(4);
    let total = 12 + padded;
    let mut out = Vec::with_capacity(total);
    // Bodies are at most an IP packet or a key log checked to fit u32 (minus a few bytes).
    let total32 = u32::try_from(total).unwrap_or(u32::MAX);
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total32.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out.extend_from_slice(&total32.to_le_bytes());
    out
}

/// The Section Header Block: byte-order magic, version 1.0, unknown section length, and the
/// application's name.
fn section_header() -> Vec<u8> {
    let mut body = Vec::with_capacity(40);
    body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    push_option(&mut body, SHB_USERAPPL, b"streamtool");
    push_option(&mut body, OPT_END, &[]);
    block(SHB, &body)
}

/// An option: code, length, value padded to 32 bits.
fn push_option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes());
    body.extend_from_slice(value);
    body.resize(body.len().next_multiple_of(4), 0);
}

/// An Enhanced Packet Block on interface 0 holding `headers` then `payload`, timestamped
/// in microseconds, written in place: no copy of the payload is made on the way.
fn write_enhanced_packet(
    out: &mut impl Write,
    headers: &[u8],
    payload: &[u8],
    at: SystemTime,
) -> io::Result<()> {
    let micros =
        at.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let packet_len = headers.len() + payload.len();
    let padded = packet_len.next_multiple_of(4);
    // A packet is at most 60 + MAX_SEGMENT bytes: both lengths fit u32.
    let len = u32::try_from(packet_len).unwrap_or(u32::MAX);
    let total = u32::try_from(12 + 20 + padded).unwrap_or(u32::MAX);
    let mut head = [0u8; 28];
    head[0..4].copy_from_slice(&EPB.to_le_bytes());
    head[4..8].copy_from_slice(&total.to_le_bytes());
    // head[8..12]: interface 0.
    head[12..16].copy_from_slice(&((micros >> 32) as u32).to_le_bytes());
    head[16..20].copy_from_slice(&(micros as u32).to_le_bytes());
    head[20..24].copy_from_slice(&len.to_le_bytes());
    head[24..28].copy_from_slice(&len.to_le_bytes());
    out.write_all(&head)?;
    out.write_all(headers)?;
    out.write_all(payload)?;
    out.write_all(&[0u8; 3][..padded - packet_len])?;
    out.write_all(&total.to_le_bytes())
}

/// The TCP header fields that vary.
struct Tcp {
    src: u16,
    dst: u16,
    seq: u32,
    ack: u32,
    flags: u8,
}

/// The IPv4 (20 bytes) or IPv6 (40 bytes) header and the TCP header (20 bytes) of a
/// segment carrying `payload`, checksums included (the TCP one over `payload` too, read in
/// place), and their length.
fn ip_tcp_headers(src: IpAddr, dst: IpAddr, ip_id: u16, tcp: &Tcp, payload: &[u8]) -> ([u8; 60], usize) {
    let tcp_len = 20 + payload.len();
    // At most 20 + MAX_SEGMENT, which fits u16 with the IPv4 header too.
    let tcp_len16 = u16::try_from(tcp_len).unwrap_or(u16::MAX);
    let mut headers = [0u8; 60];
    let (ip_len, pseudo) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let header = &mut headers[..20];
            header[0] = 0x45;
            header[2..4].copy_from_slice(&(tcp_len16.saturating_add(20)).to_be_bytes());
            header[4..6].copy_from_slice(&ip_id.to_be_bytes());
            header[6] = 0x40; // don't fragment
            header[8] = TTL;
            header[9] = PROTO_TCP;
            header[12..16].copy_from_slice(&s.octets());
            header[16..20].copy_from_slice(&d.octets());
            let sum = checksum(header, 0);
            header[10..12].copy_from_slice(&sum.to_be_bytes());
            (20, sum_words(&header[12..20], u32::from(PROTO_TCP) + u32::from(tcp_len16)))
        }
        _ => {
            let header = &mut headers[..40];
            header[0] = 0x60;
            header[4..6].copy_from_slice(&tcp_len16.to_be_bytes());
            header[6] = PROTO_TCP;
            header[7] = TTL;
            header[8..24].copy_from_slice(&v6_octets(src));
            header[24..40].copy_from_slice(&v6_octets(dst));
            (40, sum_words(&header[8..40], u32::from(PROTO_TCP) + u32::from(tcp_len16)))
        }
    };
    let header = &mut headers[ip_len..ip_len + 20];
    header[0..2].copy_from_slice(&tcp.src.to_be_bytes());
    header[2..4].copy_from_slice(&tcp.dst.to_be_bytes());
    header[4..8].copy_from_slice(&tcp.seq.to_be_bytes());
    header[8..12].copy_from_slice(&tcp.ack.to_be_bytes());
    header[12] = 5 << 4;
    header[13] = tcp.flags;
    header[14..16].copy_from_slice(&WINDOW.to_be_bytes());
    // The header has an even length, so the payload's words follow on from its own.
    let sum = checksum(payload, sum_words(header, pseudo));
    header[16..18].copy_from_slice(&sum.to_be_bytes());
    (headers, ip_len + 20)
}

/// An address's 16 bytes as IPv6 (an IPv4 one mapped; not reached, both ends share a family).
fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// `init` plus the big-endian 16-bit words of `data` (an odd last byte padded with zero),
/// not yet folded.
fn sum_words(data: &[u8], init: u32) -> u32 {
    let mut sum = u64::from(init);
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xFFFF_FFFF {
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
    }
    // Folded into 32 bits just above.
    sum as u32
}

/// The Internet checksum (RFC 1071) of `data` with a partial sum `init` (the pseudo-header).
fn checksum(data: &[u8], init: u32) -> u16 {
    let mut sum = sum_words(data, init);
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    // Folded into 16 bits just above.
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    const RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n";

    /// Whether tshark runs; if not, SKIPPED (and a failure under CI, as tests/it's `need`).
    fn need_tshark() -> bool {
        let ok = Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success());
        if ok {
            return true;
        }
        assert!(std::env::var_os("CI").is_none(), "tshark missing (CI is set: a failure, not a skip)");
        eprintln!("SKIPPED: tshark missing");
        false
    }

    /// A file in the temporary directory, unique to this process and call, removed on drop.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    impl std::ops::Deref for TempFile {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    /// A [`TempFile`] holding `bytes`.
    fn temp_file(name: &str, bytes: &[u8]) -> TempFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("streamtool-pcapng-{}-{n}-{name}.pcapng", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }

    /// tshark's standard output reading `file` with `args` (no name resolution); it must succeed.
    fn tshark(file: &Path, args: &[&str]) -> String {
        let out = Command::new("tshark").arg("-n").arg("-r").arg(file).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tshark {args:?} failed: {stderr}");
        assert!(!stderr.contains("appears to be damaged"), "{stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// The lines of `field` in the packets matching `filter`.
    fn fields(file: &Path, filter: &str, field: &str) -> Vec<String> {
        tshark(file, &["-Y", filter, "-T", "fields", "-e", field]).lines().map(str::to_owned).collect()
    }

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_000 + s * 1000)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A GET and its response, then FIN from both sides: 11 packets.
    fn http_capture(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let c = w.open(client, server, at(0)).unwrap();
        w.data(c, true, REQUEST, at(1)).unwrap();
        w.data(c, false, RESPONSE, at(2)).unwrap();
        w.fin(c, true, at(3)).unwrap();
        w.fin(c, false, at(4)).unwrap();
        w.into_inner()
    }

    /// tshark finds the request and the response, no TCP analysis note, no bad checksum.
    fn check_http(name: &str, client: &str, server: &str) {
        if !need_tshark() {
            return;
        }
        let f = temp_file(name, &http_capture(addr(client), addr(server)));
        assert_eq!(fields(&f, "http.request.method==GET", "http.request.uri"), ["/hello"]);
        assert_eq!(fields(&f, "http.response", "http.response.code"), ["200"]);
        assert_eq!(fields(&f, "http.response", "http.file_data"), ["hello\\n"]);
        assert_eq!(tshark(&f, &["-Y", "tcp.analysis.flags && !tcp.analysis.window_update"]), "");
        let expert = tshark(&f, &["-q", "-z", "expert,warn"]);
        assert!(!expert.contains("Warns"), "{expert}");
        let checked = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"];
        let bad = [&checked[..], &["-Y", "tcp.checksum.status!=1 || ip.checksum.status==2"]].concat();
        assert_eq!(tshark(&f, &bad), "");
        let good =
            [&checked[..], &["-Y", "tcp.checksum.status==1", "-T", "fields", "-e", "frame.number"]].concat();
        assert_eq!(tshark(&f, &good).lines().count(), 11);
    }

    #[test]
    fn http_over_ipv4_dissects_cleanly() {
        check_http("http4", "127.0.0.1:40000", "127.0.0.1:80");
    }

    #[test]
    fn http_over_ipv6_dissects_cleanly() {
        check_http("http6", "[::1]:40000", "[::1]:80");
    }

    /// Xorshift64: deterministic pseudo-random numbers.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            let mut out = Vec::with_capacity(len + 8);
            while out.len() < len {
                out.extend_from_slice(&self.next().to_le_bytes());
            }
            out.truncate(len);
            out
        }

        /// A chunk size: tiny, small, below a segment, or several segments.
        fn chunk(&mut self) -> usize {
            let r = usize::try_from(self.next() >> 8).unwrap();
            match self.next() % 4 {
                0 => r % 100,
                1 => r % 4096,
                2 => r % 65_536,
                _ => 65_536 + r % 300_000,
            }
        }
    }

    /// The bytes of each direction (client's, server's) from tshark's `follow,tcp,raw,0`.
    fn follow_raw(file: &Path) -> [Vec<u8>; 2] {
        let out = tshark(file, &["-q", "-z", "follow,tcp,raw,0"]);
        let mut dirs = [Vec::new(), Vec::new()];
        let body = out.lines().skip_while(|l| !l.starts_with("Node 1:")).skip(1);
        for line in body.take_while(|l| !l.starts_with("====")) {
            let (dir, hex) = match line.strip_prefix('\t') {
                Some(hex) => (1, hex),
                None => (0, line),
            };
            let hex = hex.trim().as_bytes();
            assert_eq!(hex.len() % 2, 0, "odd hex line");
            for pair in hex.chunks(2) {
                let byte = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
                dirs[dir].push(byte);
            }
        }
        dirs
    }

    fn sha256(bytes: &[u8]) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().to_vec()
    }

    /// 20 MiB up and 5 MiB down in chunks of varied sizes (some split into several segments,
    /// some empty), interleaved; tshark reassembles both directions byte for byte.
    #[test]
    fn large_transfer_reassembles_both_ways() {
        if !need_tshark() {
            return;
        }
        let mut rng = XorShift(0x5EED_1234_ABCD_0001);
        let sent = [rng.bytes(20 << 20), rng.bytes(5 << 20)];
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let c = w.open(addr("10.0.0.1:50000"), addr("10.0.0.2:40002"), at(0)).unwrap();
        let mut left = [&sent[0][..], &sent[1][..]];
        let fixed = [MAX_SEGMENT, MAX_SEGMENT + 1, 0, 1, 3 * 65_536];
        let mut sizes = fixed.into_iter();
        let mut t = 1;
        while left.iter().any(|l| !l.is_empty()) {
            for (dir, rest) in left.iter_mut().enumerate() {
                let n = sizes.next().unwrap_or_else(|| rng.chunk()).min(rest.len());
                w.data(c, dir == 0, &rest[..n], at(t)).unwrap();
                *rest = &rest[n..];
                t += 1;
            }
        }
        w.fin(c, true, at(t)).unwrap();
        w.fin(c, false, at(t + 1)).unwrap();
        let f = temp_file("large", &w.into_inner());
        let got = follow_raw(&f);
        for dir in 0..2 {
            assert_eq!(got[dir].len(), sent[dir].len(), "direction {dir}");
            assert_eq!(sha256(&got[dir]), sha256(&sent[dir]), "direction {dir}");
        }
        assert_eq!(tshark(&f, &["-Y", "tcp.analysis.flags && !tcp.analysis.window_update"]), "");
        let longest = fields(&f, "tcp.len > 0", "tcp.len").iter().map(|l| l.parse::<usize>().unwrap()).max();
        assert_eq!(longest, Some(MAX_SEGMENT));
    }

    /// Collects the NSS key-log lines of a TLS session.
    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<u8>>);

    impl rustls::KeyLog for Collect {
        fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
            let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
            self.0.lock().unwrap().extend_from_slice(line.as_bytes());
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A TLS 1.3 client and server (self-signed certificate for `localhost`, ALPN http/1.1),
    /// the client logging its secrets into the returned collector.
    fn tls_pair() -> (rustls::ClientConnection, rustls::ServerConnection, Arc<Collect>) {
        use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = crate::streams::tls::provider();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let log = Arc::new(Collect::default());
        client.key_log = log.clone();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let server = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        (client, server, log)
    }

    /// Moves what `from` has to send into `to`; the ciphertext moved.
    fn pump(from: &mut rustls::Connection, to: &mut rustls::Connection) -> Vec<u8> {
        let mut tls = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut tls).unwrap();
        }
        let mut rest = &tls[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets().unwrap();
        }
        tls
    }

    /// The plaintext `conn` has received so far, appended to `into`.
    fn read_plain(conn: &mut rustls::Connection, into: &mut Vec<u8>) {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = io::Read::read(&mut conn.reader(), &mut buf) {
            into.extend_from_slice(&buf[..n]);
        }
    }

    /// A TLS 1.3 session in memory carrying [`REQUEST`] and [`RESPONSE`]: its ciphertext as
    /// flights (from the client?, bytes) in order, and the client's NSS key log.
    fn tls_session() -> (Vec<(bool, Vec<u8>)>, Vec<u8>) {
        let (client, server, log) = tls_pair();
        let (mut client, mut server) = (rustls::Connection::from(client), rustls::Connection::from(server));
        client.writer().write_all(REQUEST).unwrap();
        let (mut flights, mut request, mut response, mut answered) =
            (Vec::new(), Vec::new(), Vec::new(), false);
        for _ in 0..10 {
            let up = pump(&mut client, &mut server);
            if !up.is_empty() {
                flights.push((true, up));
            }
            read_plain(&mut server, &mut request);
            if request == REQUEST && !answered {
                server.writer().write_all(RESPONSE).unwrap();
                answered = true;
            }
            let down = pump(&mut server, &mut client);
            if !down.is_empty() {
                flights.push((false, down));
            }
            read_plain(&mut client, &mut response);
            if response == RESPONSE && !client.wants_write() && !server.wants_write() {
                break;
            }
        }
        assert_eq!(response, RESPONSE);
        let log = log.0.lock().unwrap().clone();
        (flights, log)
    }

    /// The session's flights as one conversation to port 443, with the key log in a
    /// Decryption Secrets Block before the first data packet (`secrets`) or without one.
    fn tls_capture(flights: &[(bool, Vec<u8>)], secrets: Option<&[u8]>) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let c = w.open(addr("127.0.0.1:40443"), addr("127.0.0.1:443"), at(0)).unwrap();
        if let Some(log) = secrets {
            w.secrets(log).unwrap();
        }
        let mut t = 1;
        for (from_client, bytes) in flights {
            w.data(c, *from_client, bytes, at(t)).unwrap();
            t += 1;
        }
        w.fin(c, true, at(t)).unwrap();
        w.fin(c, false, at(t + 1)).unwrap();
        w.into_inner()
    }

    /// tshark decrypts a real TLS 1.3 session with the secrets from the file's Decryption
    /// Secrets Block (no key-log option), and sees no HTTP without that block.
    #[test]
    fn secrets_block_lets_tshark_decrypt_tls() {
        if !need_tshark() {
            return;
        }
        let (flights, log) = tls_session();
        let text = String::from_utf8(log.clone()).unwrap();
        assert!(
            text.contains("CLIENT_HANDSHAKE_TRAFFIC_SECRET ") && text.contains("SERVER_TRAFFIC_SECRET_0 "),
            "{text}"
        );
        let with = temp_file("tls", &tls_capture(&flights, Some(&log)));
        assert_eq!(fields(&with, "http.request", "http.request.uri"), ["/hello"]);
        assert_eq!(fields(&with, "http.response", "http.response.code"), ["200"]);
        let without = temp_file("tls-nodsb", &tls_capture(&flights, None));
        assert_eq!(fields(&without, "http", "http.request.uri"), Vec::<String>::new());
        assert_eq!(fields(&without, "tls.handshake.type==1", "tls.handshake.type"), ["1"]);
    }

    /// Every call of the API once, two conversations, one of each family.
    fn everything() -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.secrets(b"CLIENT_RANDOM 00 11\n").unwrap();
        let a = w.open(addr("127.0.0.1:1"), addr("127.0.0.2:1"), at(0)).unwrap();
        let b = w.open(addr("[::1]:2"), addr("[::1]:3"), at(1)).unwrap();
        w.data(a, true, &[7; 100_000], at(2)).unwrap();
        w.data(b, false, b"hi", at(3)).unwrap();
        w.reset(b, true, at(4)).unwrap();
        w.fin(a, false, at(5)).unwrap();
        w.flush().unwrap();
        w.into_inner()
    }

    #[test]
    fn the_same_calls_give_the_same_bytes() {
        assert_eq!(everything(), everything());
    }

    /// The blocks of a file: (type, body), checking each block's framing.
    fn blocks(mut file: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let mut out = Vec::new();
        while !file.is_empty() {
            let len = u32_at(file, 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(file, len - 4) as usize, len, "total length repeated");
            out.push((u32_at(file, 0), file[8..len - 4].to_vec()));
            file = &file[len..];
        }
        out
    }

    #[test]
    fn the_file_is_one_section_one_interface_then_packets() {
        let file = everything();
        let blocks = blocks(&file);
        let kinds: Vec<u32> = blocks.iter().map(|b| b.0).collect();
        assert_eq!(kinds[..3], [SHB, IDB, DSB]);
        assert!(kinds[3..].iter().all(|&k| k == EPB));
        assert_eq!(blocks[0].1[..4], BYTE_ORDER_MAGIC.to_le_bytes());
        assert_eq!(blocks[1].1[..2], LINKTYPE_RAW.to_le_bytes());
        let dsb = &blocks[2].1;
        assert_eq!(dsb[..8], [0x4B, 0x53, 0x4C, 0x54, 20, 0, 0, 0]);
        assert_eq!(&dsb[8..28], b"CLIENT_RANDOM 00 11\n");
        for (_, epb) in &blocks[3..] {
            let caplen = u32::from_le_bytes(epb[12..16].try_into().unwrap()) as usize;
            assert_eq!(epb[12..16], epb[16..20], "captured length = original length");
            let packet = &epb[20..20 + caplen];
            let ip_len = match packet[0] >> 4 {
                4 => usize::from(u16::from_be_bytes([packet[2], packet[3]])),
                6 => 40 + usize::from(u16::from_be_bytes([packet[4], packet[5]])),
                v => panic!("IP version {v}"),
            };
            assert_eq!(ip_len, caplen);
            assert!(caplen <= 40 + MAX_SEGMENT);
        }
    }

    #[test]
    fn nothing_is_written_for_empty_chunks_or_ended_conversations() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let c = w.open(addr("127.0.0.1:1"), addr("127.0.0.2:1"), at(0)).unwrap();
        let before = w.out.len();
        w.data(c, true, b"", at(1)).unwrap();
        w.secrets(b"").unwrap();
        w.data(ConvId(99), true, b"x", at(1)).unwrap();
        w.fin(ConvId(99), true, at(1)).unwrap();
        w.reset(ConvId(99), true, at(1)).unwrap();
        assert_eq!(w.out.len(), before);
        w.fin(c, true, at(2)).unwrap();
        let after_fin = w.out.len();
        w.data(c, true, b"late", at(3)).unwrap();
        w.fin(c, true, at(3)).unwrap();
        assert_eq!(w.out.len(), after_fin);
        w.reset(c, false, at(4)).unwrap();
        assert!(w.convs.is_empty());
        let after_reset = w.out.len();
        w.data(c, false, b"late", at(5)).unwrap();
        assert_eq!(w.out.len(), after_reset);
        // A time before the epoch is written as 0, not a panic.
        let d =
            w.open(addr("127.0.0.1:2"), addr("127.0.0.2:2"), UNIX_EPOCH - Duration::from_secs(1)).unwrap();
        w.data(d, true, b"x", UNIX_EPOCH - Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn synthetic_pairs_are_loopback_and_apart() {
        assert_eq!(synthetic_pair(0), (addr("127.0.0.1:1"), addr("127.0.0.2:1")));
        assert_eq!(synthetic_pair(65_533).0.port(), 65_534);
        assert_eq!(synthetic_pair(65_534).0.port(), 1);
        assert_eq!(synthetic_pair(u64::MAX).1.port(), u16::try_from(1 + u64::MAX % 65_534).unwrap());
    }

    #[test]
    fn the_internet_checksum_matches_rfc_1071s_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0), !0xddf2);
    }

    /// Families mixed: both ends written as IPv6, the IPv4 one mapped; a reset is the one
    /// expert warning tshark has, and the stream ends there.
    #[test]
    fn mixed_families_map_to_ipv6_and_a_reset_shows() {
        if !need_tshark() {
            return;
        }
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let server = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 80);
        let c = w.open(addr("127.0.0.1:40000"), server, at(0)).unwrap();
        w.data(c, true, REQUEST, at(1)).unwrap();
        w.reset(c, false, at(2)).unwrap();
        let f = temp_file("mixed", &w.into_inner());
        assert_eq!(fields(&f, "http.request", "ipv6.src"), ["::ffff:127.0.0.1"]);
        assert_eq!(fields(&f, "tcp.flags.reset==1", "tcp.srcport"), ["80"]);
        let expert = tshark(&f, &["-q", "-z", "expert,warn"]);
        assert!(expert.contains("Warns (1)") && expert.contains("Connection reset (RST)"), "{expert}");
        assert_eq!(tshark(&f, &["-Y", "tcp.analysis.flags && !tcp.analysis.window_update"]), "");
    }
}
