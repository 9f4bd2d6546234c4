//! STARTTLS: the plaintext negotiation some protocols run on a fresh TCP connection
//! before the TLS handshake (`connect --tls --starttls PROTO`, `pipe`'s
//! `tls:HOST:PORT,starttls=PROTO`).
//!
//! What is sent and what is checked, per protocol (docs/tls.md, "STARTTLS"):
//!
//! | protocol | greeting | asks | offered when | go-ahead |
//! | --- | --- | --- | --- | --- |
//! | smtp, lmtp | `220` | `EHLO name` / `LHLO name` | a `250` line `STARTTLS` | `STARTTLS` → `220` |
//! | imap | `* OK` | `a1 CAPABILITY` | `STARTTLS` in `* CAPABILITY` | `a2 STARTTLS` → `a2 OK` |
//! | pop3 | `+OK` | `CAPA` | a line `STLS` (a `-ERR` to CAPA: tried anyway) | `STLS` → `+OK` |
//! | ftp | `220` | – | – | `AUTH TLS` → `234` |
//! | xmpp | – | a stream header to the server's name | `<starttls` in the features | `<starttls/>` → `<proceed/>` |
//! | postgres | – | – | – | SSLRequest → `S` (`N`: TLS is off) |
//! | ldap | – | – | – | StartTLS extended request → resultCode 0 |
//!
//! Every line and reply is read with a size limit ([`MAX_LINE`], and [`MAX_TOTAL`] for the
//! whole negotiation), and the whole negotiation within one time limit (the endpoint's
//! handshake timeout; the TLS handshake after it has its own). Bytes the server sends after
//! its go-ahead, before the TLS handshake, are refused: they would be read as if they had
//! come over TLS (the STARTTLS injection of CVE-2011-0411 and its kin).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::streams::{Phase, StreamError};

/// The longest line (or single reply, for the binary protocols) read before TLS.
pub const MAX_LINE: usize = 8 * 1024;

/// The most a server may send during the whole negotiation.
pub const MAX_TOTAL: usize = 64 * 1024;

/// The most lines of one reply.
const MAX_LINES: usize = 1000;

/// The name sent in SMTP's `EHLO` and LMTP's `LHLO` when none is given (`--ehlo`): a
/// reserved name (RFC 6761) that says what the client is and reveals nothing of the host.
pub const DEFAULT_EHLO: &str = "streamtool.localhost";

/// A protocol that can switch to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP (RFC 3207).
    Smtp,
    /// LMTP (RFC 2033, with SMTP's STARTTLS).
    Lmtp,
    /// IMAP (RFC 3501 §6.2.1).
    Imap,
    /// POP3 (RFC 2595 §4).
    Pop3,
    /// FTP (RFC 4217).
    Ftp,
    /// XMPP client streams (RFC 6120 §5).
    Xmpp,
    /// PostgreSQL's SSLRequest.
    Postgres,
    /// LDAP's StartTLS extended operation (RFC 4511 §4.14).
    Ldap,
}

impl Protocol {
    /// Every protocol, in the order the help lists them.
    pub const ALL: [Protocol; 8] = [
        Protocol::Smtp,
        Protocol::Lmtp,
        Protocol::Imap,
        Protocol::Pop3,
        Protocol::Ftp,
        Protocol::Xmpp,
        Protocol::Postgres,
        Protocol::Ldap,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Lmtp => "lmtp",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Ftp => "ftp",
            Protocol::Xmpp => "xmpp",
            Protocol::Postgres => "postgres",
            Protocol::Ldap => "ldap",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "postgresql" | "pgsql" => "postgres",
            "pop" => "pop3",
            other => other,
        };
        Protocol::ALL.into_iter().find(|p| p.name() == alias).ok_or_else(|| {
            let names: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
            format!(
                "unknown STARTTLS protocol {:?} (expected one of {})",
                crate::escape::escape_control(s),
                names.join(", ")
            )
        })
    }
}

/// Checks a name for `EHLO`/`LHLO`: a domain (letters, digits, dots, dashes) or an
/// address literal in brackets (`[127.0.0.1]`, `[IPv6:::1]`); never a space or a line
/// break, which would inject a command.
///
/// # Errors
/// A line that says what is wrong.
pub fn check_ehlo_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':');
    if name.is_empty() || name.len() > 255 || !name.chars().all(ok_char) {
        return Err(format!(
            "invalid EHLO name {:?}: expected a domain or an address literal such as [127.0.0.1]",
            crate::escape::escape_control(name)
        ));
    }
    Ok(())
}

/// Why a STARTTLS negotiation failed. The server's words are quoted and escaped.
#[derive(Debug, thiserror::Error)]
pub enum StarttlsError {
    /// The server does not offer STARTTLS (or TLS at all).
    #[error("the server does not offer STARTTLS: {said}")]
    NotOffered {
        /// What it answered, quoted and escaped.
        said: String,
    },
    /// The server refused the request to start TLS.
    #[error("the server refused STARTTLS: {said}")]
    Refused {
        /// What it answered, quoted and escaped.
        said: String,
    },
    /// A reply that is not what the protocol expects at this point.
    #[error("unexpected answer to {step}: {said}")]
    Unexpected {
        /// What the answer was to (the greeting, EHLO, ...).
        step: String,
        /// What the server said, quoted and escaped.
        said: String,
    },
    /// The server sent bytes after its go-ahead, before the TLS handshake.
    #[error(
        "the server sent {count} bytes after its go-ahead and before the TLS handshake: {said} \
         (refused: such bytes would be taken as if they came over TLS)"
    )]
    Injected {
        /// How many.
        count: usize,
        /// The first of them, quoted and escaped.
        said: String,
    },
    /// A line or reply over the limits.
    #[error(
        "the server's answer to {step} is too long (over {limit}){}",
        if .said.is_empty() { String::new() } else { format!(": {}", .said) }
    )]
    TooLong {
        /// What the answer was to.
        step: String,
        /// The limit, with its unit ("8192 bytes", "1000 lines").
        limit: String,
        /// Its beginning, quoted and escaped (empty: not shown).
        said: String,
    },
    /// The connection ended during the negotiation.
    #[error("the server closed the connection while {step}{}", if .said.is_empty() { String::new() } else { format!(", after {}", .said) })]
    Closed {
        /// What was being waited for.
        step: String,
        /// What it had sent of that answer, quoted and escaped (empty: nothing).
        said: String,
    },
    /// The time limit ran out.
    #[error("no answer while {step}")]
    Timeout {
        /// What was being waited for.
        step: String,
        /// The timeout ([`Phase::Starttls`]).
        #[source]
        source: StreamError,
    },
    /// Reading or writing failed.
    #[error("the connection failed while {step}")]
    Io {
        /// What was being done.
        step: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The longest quote of a peer's words in a message or log line.
pub const QUOTE_MAX: usize = 200;

/// `bytes` as a quoted, escaped string for a message: CR and LF as `\r` and `\n`, other
/// control characters as `\xNN`, cut at [`QUOTE_MAX`] characters.
pub fn quote(bytes: &[u8]) -> String {
    quote_at_most(bytes, QUOTE_MAX)
}

/// The longest quote in a `-v` line (a line is at most [`MAX_LINE`] bytes).
const LOG_QUOTE_MAX: usize = 2000;

fn quote_at_most(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    let mut shown = 0;
    'chunks: for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if shown == max {
                out.push_str("...");
                break 'chunks;
            }
            shown += 1;
            match c {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '"' => out.push_str("\\\""),
                c => out.push_str(&crate::escape::escape_control(c.encode_utf8(&mut [0; 4]))),
            }
        }
        for b in chunk.invalid() {
            if shown == max {
                out.push_str("...");
                break 'chunks;
            }
            shown += 1;
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// One line of an SMTP, LMTP or FTP reply: `250-text` (more follow) or `250 text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    /// The three-digit code.
    pub code: u16,
    /// Whether this is the reply's last line (a space or nothing after the code).
    pub last: bool,
    /// The text after the code and its separator, without the line break.
    pub text: &'a [u8],
}

/// Parses one line of an SMTP-style reply; `None` if it does not start with a code.
pub fn parse_reply_line(line: &[u8]) -> Option<ReplyLine<'_>> {
    let line = trim_eol(line);
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
        return None;
    }
    let code = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &line[3..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return None,
    };
    Some(ReplyLine { code, last, text })
}

/// Whether an EHLO/LHLO reply's lines (the texts, the first being the server's name)
/// announce STARTTLS.
pub fn ehlo_offers_starttls<'a>(texts: impl IntoIterator<Item = &'a [u8]>) -> bool {
    texts.into_iter().skip(1).any(|t| first_word(t).eq_ignore_ascii_case(b"STARTTLS"))
}

/// Whether a POP3 CAPA line announces STLS.
pub fn capa_offers_stls(line: &[u8]) -> bool {
    first_word(trim_eol(line)).eq_ignore_ascii_case(b"STLS")
}

/// An IMAP response line, as far as STARTTLS needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapLine<'a> {
    /// `* ...`: the words after the star.
    Untagged(&'a [u8]),
    /// `TAG STATUS text`.
    Tagged {
        /// The tag.
        tag: &'a [u8],
        /// OK, NO or BAD (as sent).
        status: &'a [u8],
    },
    /// Anything else (`+ ...`, garbage).
    Other,
}

/// Parses an IMAP response line.
pub fn parse_imap_line(line: &[u8]) -> ImapLine<'_> {
    let line = trim_eol(line);
    if let Some(rest) = line.strip_prefix(b"* ") {
        return ImapLine::Untagged(rest);
    }
    let mut words = line.splitn(3, |&b| b == b' ');
    match (words.next(), words.next()) {
        (Some(tag), Some(status)) if !tag.is_empty() && !status.is_empty() => {
            ImapLine::Tagged { tag, status }
        }
        _ => ImapLine::Other,
    }
}

/// Whether an untagged IMAP response (after `* `) is a CAPABILITY listing STARTTLS, or a
/// status response with a `[CAPABILITY ...]` code listing it.
pub fn imap_offers_starttls(untagged: &[u8]) -> bool {
    let words: Vec<&[u8]> =
        untagged.split(|&b| b == b' ' || b == b'[' || b == b']').filter(|w| !w.is_empty()).collect();
    let Some(at) = words.iter().position(|w| w.eq_ignore_ascii_case(b"CAPABILITY")) else {
        return false;
    };
    words[at + 1..].iter().any(|w| w.eq_ignore_ascii_case(b"STARTTLS"))
}

/// What the XMPP server sent so far, after our stream header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmppScan {
    /// Not yet the end of what is awaited.
    Incomplete,
    /// The awaited element ends at this offset; `offered` tells whether the features list
    /// `<starttls` (for the go-ahead: whether it is `<proceed`).
    Done {
        /// The offset just past the element.
        end: usize,
        /// STARTTLS offered (features) or the go-ahead given (proceed).
        yes: bool,
    },
    /// A stream error.
    Error,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Scans for the end of the stream features (`</stream:features>`, or an empty
/// `<stream:features/>`) and whether they offer `<starttls`.
pub fn xmpp_features(buf: &[u8]) -> XmppScan {
    if find(buf, b"<stream:error").is_some() {
        return XmppScan::Error;
    }
    let end = match (find(buf, b"</stream:features>"), find(buf, b"<stream:features/>")) {
        (Some(at), _) => at + b"</stream:features>".len(),
        (None, Some(at)) => at + b"<stream:features/>".len(),
        (None, None) => return XmppScan::Incomplete,
    };
    XmppScan::Done { end, yes: find(&buf[..end], b"<starttls").is_some() }
}

/// Scans for the answer to `<starttls/>`: `<proceed .../>` (or `<proceed ...></proceed>`),
/// else `<failure`.
pub fn xmpp_proceed(buf: &[u8]) -> XmppScan {
    if find(buf, b"<stream:error").is_some() {
        return XmppScan::Error;
    }
    let start = match (find(buf, b"<proceed"), find(buf, b"<failure")) {
        (Some(p), Some(f)) if f < p => return failure_end(buf, f),
        (Some(p), _) => p,
        (None, Some(f)) => return failure_end(buf, f),
        (None, None) => return XmppScan::Incomplete,
    };
    let Some(close) = find(&buf[start..], b">").map(|i| start + i) else {
        return XmppScan::Incomplete;
    };
    if buf[close - 1] == b'/' {
        return XmppScan::Done { end: close + 1, yes: true };
    }
    match find(&buf[close..], b"</proceed>") {
        Some(i) => XmppScan::Done { end: close + i + b"</proceed>".len(), yes: true },
        None => XmppScan::Incomplete,
    }
}

fn failure_end(buf: &[u8], start: usize) -> XmppScan {
    match find(&buf[start..], b">") {
        Some(i) => XmppScan::Done { end: start + i + 1, yes: false },
        None => XmppScan::Incomplete,
    }
}

/// One BER element's header: (tag, header length, content length); `Ok(None)` when more
/// bytes are needed.
///
/// # Errors
/// A length form this reader does not take (indefinite, or over 4 bytes).
pub fn ber_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, String> {
    let (Some(&tag), Some(&first)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some((tag, 2, usize::from(first))));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Err(format!("a BER length of form 0x{first:02x}"));
    }
    let Some(bytes) = buf.get(2..2 + n) else {
        return Ok(None);
    };
    let len = bytes.iter().fold(0usize, |l, &b| (l << 8) | usize::from(b));
    Ok(Some((tag, 2 + n, len)))
}

/// An LDAP ExtendedResponse: its result code and diagnostic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapResult {
    /// The message ID.
    pub message_id: u32,
    /// resultCode (0: success).
    pub code: u32,
    /// diagnosticMessage.
    pub diagnostic: Vec<u8>,
}

/// The StartTLS ExtendedRequest (message ID 1): RFC 4511 §4.14.1.
pub const LDAP_STARTTLS_REQUEST: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16\x31\x2e\x33\x2e\x36\x2e\x31\x2e\x34\x2e\x31\x2e\x31\x34\x36\x36\x2e\x32\x30\x30\x33\x37";

/// PostgreSQL's SSLRequest: length 8, code 80877103.
pub const POSTGRES_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

fn ber_element(buf: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (tag, header, len) = ber_header(buf)?.ok_or("a truncated BER element")?;
    let content = buf.get(header..header + len).ok_or("a truncated BER element")?;
    Ok((tag, content, &buf[header + len..]))
}

fn ber_uint(content: &[u8]) -> Result<u32, String> {
    if content.is_empty() || content.len() > 4 {
        return Err("an integer of a bad size".into());
    }
    Ok(content.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)))
}

/// Parses one whole LDAPMessage holding an ExtendedResponse.
///
/// # Errors
/// A line saying what is not as expected.
pub fn parse_ldap_response(message: &[u8]) -> Result<LdapResult, String> {
    let (tag, body, _) = ber_element(message)?;
    if tag != 0x30 {
        return Err(format!("an LDAP message starts with tag 0x{tag:02x}"));
    }
    let (tag, id, rest) = ber_element(body)?;
    if tag != 0x02 {
        return Err("no message ID".into());
    }
    let message_id = ber_uint(id)?;
    let (tag, op, _) = ber_element(rest)?;
    // [APPLICATION 24] ExtendedResponse.
    if tag != 0x78 {
        return Err(format!("not an ExtendedResponse (tag 0x{tag:02x})"));
    }
    let (tag, code, rest) = ber_element(op)?;
    if tag != 0x0a {
        return Err("no resultCode".into());
    }
    let code = ber_uint(code)?;
    let (_, _matched, rest) = ber_element(rest)?;
    let diagnostic = ber_element(rest).map(|(_, d, _)| d.to_vec()).unwrap_or_default();
    Ok(LdapResult { message_id, code, diagnostic })
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn first_word(text: &[u8]) -> &[u8] {
    text.split(|&b| b == b' ' || b == b'\t').next().unwrap_or_default()
}

fn starts_with_ci(line: &[u8], prefix: &[u8]) -> bool {
    line.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// What a client sends and verifies, besides the protocol.
#[derive(Debug, Clone, Copy)]
pub struct Negotiation<'a> {
    /// The protocol.
    pub protocol: Protocol,
    /// The server's name: XMPP's `to=`.
    pub server_name: &'a str,
    /// SMTP's EHLO (LMTP's LHLO) name; [`DEFAULT_EHLO`] when `None`.
    pub ehlo: Option<&'a str>,
    /// The time the whole negotiation may take.
    pub limit: Duration,
}

/// Runs the negotiation on `io`, a fresh connection; on success the next bytes on it are
/// the TLS handshake's. Each line either side sends is logged at info level (`-v`),
/// escaped.
///
/// # Errors
/// [`StarttlsError`], the server's words quoted and escaped.
pub async fn negotiate<S>(io: &mut S, how: Negotiation<'_>) -> Result<(), StarttlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut step = String::from("waiting for the greeting");
    let run = async {
        let mut wire =
            Wire { serving: false, io, buf: Vec::new(), total: 0, step: &mut step, protocol: how.protocol };
        match how.protocol {
            Protocol::Smtp | Protocol::Lmtp => smtp(&mut wire, how).await?,
            Protocol::Imap => imap(&mut wire).await?,
            Protocol::Pop3 => pop3(&mut wire).await?,
            Protocol::Ftp => ftp(&mut wire).await?,
            Protocol::Xmpp => xmpp(&mut wire, how.server_name).await?,
            Protocol::Postgres => postgres(&mut wire).await?,
            Protocol::Ldap => ldap(&mut wire).await?,
        }
        wire.finish()
    };
    match tokio::time::timeout(how.limit, run).await {
        Ok(result) => result,
        Err(_) => Err(StarttlsError::Timeout {
            step,
            source: StreamError::Timeout { phase: Phase::Starttls, after: how.limit },
        }),
    }
}

/// The plain connection during the negotiation: what was read and not yet used.
struct Wire<'a, S> {
    /// We are the server (log labels flip).
    serving: bool,
    io: &'a mut S,
    buf: Vec<u8>,
    total: usize,
    step: &'a mut String,
    protocol: Protocol,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<'_, S> {
    fn set_step(&mut self, step: impl Into<String>) {
        *self.step = step.into();
    }

    fn step(&self) -> String {
        self.step.clone()
    }

    /// Reads more; `false` at the end of the stream.
    async fn fill(&mut self) -> Result<bool, StarttlsError> {
        let mut chunk = [0u8; 4096];
        let room = (MAX_TOTAL - self.total).min(chunk.len());
        if room == 0 {
            return Err(StarttlsError::TooLong {
                step: self.answer_to(),
                limit: format!("{MAX_TOTAL} bytes"),
                said: quote(&self.buf),
            });
        }
        let n = self
            .io
            .read(&mut chunk[..room])
            .await
            .map_err(|source| StarttlsError::Io { step: self.step(), source })?;
        self.total += n;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn closed(&self) -> StarttlsError {
        StarttlsError::Closed {
            step: self.step(),
            said: if self.buf.is_empty() { String::new() } else { quote(&self.buf) },
        }
    }

    /// One line, with its line break.
    async fn line(&mut self) -> Result<Vec<u8>, StarttlsError> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                self.log_in(&line);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(StarttlsError::TooLong {
                    step: self.answer_to(),
                    limit: format!("{MAX_LINE} bytes"),
                    said: quote(&self.buf[..QUOTE_MAX.min(self.buf.len())]),
                });
            }
            if !self.fill().await? {
                return Err(self.closed());
            }
        }
    }

    /// Exactly `n` bytes.
    async fn take(&mut self, n: usize) -> Result<Vec<u8>, StarttlsError> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(self.closed());
            }
        }
        let bytes: Vec<u8> = self.buf.drain(..n).collect();
        self.log_in(&bytes);
        Ok(bytes)
    }

    async fn send(&mut self, data: &[u8]) -> Result<(), StarttlsError> {
        let us = if self.serving { "S" } else { "C" };
        tracing::info!("STARTTLS ({}) {us}: {}", self.protocol, quote_at_most(data, LOG_QUOTE_MAX));
        let step = self.step();
        self.io.write_all(data).await.map_err(|source| StarttlsError::Io { step: step.clone(), source })?;
        self.io.flush().await.map_err(|source| StarttlsError::Io { step, source })
    }

    fn log_in(&self, data: &[u8]) {
        let them = if self.serving { "C" } else { "S" };
        tracing::info!("STARTTLS ({}) {them}: {}", self.protocol, quote_at_most(data, LOG_QUOTE_MAX));
    }

    /// An SMTP-style reply: its code and lines. With `ftp`, lines between the first and
    /// the last need not carry the code (RFC 959 §4.2).
    async fn reply(&mut self, ftp: bool) -> Result<(u16, Vec<Vec<u8>>), StarttlsError> {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut code = None;
        loop {
            let line = self.line().await?;
            let parsed = parse_reply_line(&line);
            match (parsed, code) {
                (Some(p), None) => {
                    code = Some(p.code);
                    let last = p.last;
                    lines.push(line);
                    if last {
                        break;
                    }
                }
                (Some(p), Some(c)) if p.code == c => {
                    let last = p.last;
                    lines.push(line);
                    if last {
                        break;
                    }
                }
                (_, Some(_)) if ftp => lines.push(line),
                _ => {
                    lines.push(line);
                    return Err(StarttlsError::Unexpected {
                        step: self.answer_to(),
                        said: quote(&lines.concat()),
                    });
                }
            }
            if lines.len() > MAX_LINES {
                return Err(StarttlsError::TooLong {
                    step: self.answer_to(),
                    limit: format!("{MAX_LINES} lines"),
                    said: quote(&lines[0]),
                });
            }
        }
        Ok((code.unwrap_or_default(), lines))
    }

    /// "the greeting" / "EHLO" from "waiting for the greeting" / "waiting for the reply to EHLO".
    fn answer_to(&self) -> String {
        let s = self.step.as_str();
        s.strip_prefix("waiting for the reply to ")
            .or_else(|| s.strip_prefix("waiting for "))
            .unwrap_or(s)
            .to_string()
    }

    /// Success only if the server sent nothing past its go-ahead.
    fn finish(self) -> Result<(), StarttlsError> {
        if self.buf.is_empty() {
            tracing::info!("STARTTLS ({}): the server agreed; starting the TLS handshake", self.protocol);
            return Ok(());
        }
        Err(StarttlsError::Injected { count: self.buf.len(), said: quote(&self.buf) })
    }
}

fn texts(lines: &[Vec<u8>]) -> Vec<&[u8]> {
    lines.iter().filter_map(|l| parse_reply_line(l)).map(|p| p.text).collect()
}

/// The server side of SMTP's STARTTLS (`serve --tls --starttls smtp`, `pipe`'s
/// `tls-listen:...,starttls=smtp`), on a connection just accepted: greets (`220`), answers
/// `EHLO` with `STARTTLS` offered, `HELO`, `NOOP` and `RSET`, refuses every other command
/// with `530` until `STARTTLS`, then answers `220`. A client that sends anything after its
/// `STARTTLS` before the TLS handshake is refused (CVE-2011-0411: those bytes would be
/// taken as commands sent over TLS). The whole exchange runs within `limit`.
///
/// # Errors
/// Why, in words: the client quit or closed, sent a command too long or bytes after
/// STARTTLS, or took longer than `limit`.
pub async fn serve_smtp<S>(io: &mut S, limit: Duration) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut step = String::from("waiting for STARTTLS");
    let run = async {
        let mut wire =
            Wire { serving: true, io, buf: Vec::new(), total: 0, step: &mut step, protocol: Protocol::Smtp };
        let said = |e: StarttlsError| match e {
            StarttlsError::Closed { .. } => "the client closed the connection before STARTTLS".to_string(),
            StarttlsError::TooLong { limit, .. } => format!("the client sent a command over {limit}"),
            other => other.to_string(),
        };
        wire.send(b"220 streamtool ESMTP\r\n").await.map_err(said)?;
        for _ in 0..MAX_LINES {
            let line = wire.line().await.map_err(said)?;
            let verb = first_word(trim_eol(&line)).to_ascii_uppercase();
            let reply: &[u8] = match verb.as_slice() {
                b"EHLO" => b"250-streamtool\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
                b"HELO" => b"250 streamtool\r\n",
                b"NOOP" | b"RSET" => b"250 2.0.0 OK\r\n",
                b"QUIT" => {
                    wire.send(b"221 2.0.0 Bye\r\n").await.map_err(said)?;
                    return Err("the client quit before STARTTLS".to_string());
                }
                b"STARTTLS" if !wire.buf.is_empty() => {
                    // Postfix answers so too, and closes.
                    let count = wire.buf.len();
                    let _ = wire.send(b"554 5.5.1 Error: command pipelined after STARTTLS\r\n").await;
                    return Err(format!(
                        "the client sent {count} bytes after STARTTLS, before the TLS handshake: {} \
                         (refused: they would be taken as sent over TLS)",
                        quote(&wire.buf)
                    ));
                }
                b"STARTTLS" => {
                    wire.send(b"220 2.0.0 Ready to start TLS\r\n").await.map_err(said)?;
                    return Ok(());
                }
                _ => b"530 5.7.0 Must issue a STARTTLS command first\r\n",
            };
            wire.send(reply).await.map_err(said)?;
        }
        Err(format!("the client sent over {MAX_LINES} commands before STARTTLS"))
    };
    match tokio::time::timeout(limit, run).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no STARTTLS from the client within {}",
            crate::streams::error::format_duration(limit)
        )),
    }
}

async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<'_, S>,
    how: Negotiation<'_>,
) -> Result<(), StarttlsError> {
    let (code, lines) = wire.reply(false).await?;
    match code {
        220 => {}
        554 | 421 => {
            return Err(StarttlsError::Refused {
                said: format!("its greeting was {}", quote(&lines.concat())),
            });
        }
        _ => {
            return Err(StarttlsError::Unexpected {
                step: "the greeting".into(),
                said: quote(&lines.concat()),
            });
        }
    }
    let verb = if how.protocol == Protocol::Lmtp { "LHLO" } else { "EHLO" };
    wire.set_step(format!("waiting for the reply to {verb}"));
    wire.send(format!("{verb} {}\r\n", how.ehlo.unwrap_or(DEFAULT_EHLO)).as_bytes()).await?;
    let (code, lines) = wire.reply(false).await?;
    // 5xx: a server without the extensions (RFC 5321 §4.1.4), so without STARTTLS.
    if (500..600).contains(&code) {
        return Err(StarttlsError::NotOffered {
            said: format!("its {verb} reply was {}", quote(&lines.concat())),
        });
    }
    if code != 250 {
        return Err(StarttlsError::Unexpected { step: verb.into(), said: quote(&lines.concat()) });
    }
    if !ehlo_offers_starttls(texts(&lines)) {
        return Err(StarttlsError::NotOffered {
            said: format!("its {verb} reply was {}", quote(&lines.concat())),
        });
    }
    wire.set_step("waiting for the reply to STARTTLS");
    wire.send(b"STARTTLS\r\n").await?;
    let (code, lines) = wire.reply(false).await?;
    if code != 220 {
        return Err(StarttlsError::Refused { said: quote(&lines.concat()) });
    }
    Ok(())
}

async fn ftp<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<'_, S>) -> Result<(), StarttlsError> {
    let (mut code, mut lines) = wire.reply(true).await?;
    // 120: "ready in n minutes", then the real greeting.
    if code == 120 {
        (code, lines) = wire.reply(true).await?;
    }
    match code {
        220 => {}
        421 => return Err(StarttlsError::Refused { said: quote(&lines.concat()) }),
        _ => {
            return Err(StarttlsError::Unexpected {
                step: "the greeting".into(),
                said: quote(&lines.concat()),
            });
        }
    }
    wire.set_step("waiting for the reply to AUTH TLS");
    wire.send(b"AUTH TLS\r\n").await?;
    let (code, lines) = wire.reply(true).await?;
    match code {
        234 => Ok(()),
        500 | 502 | 504 => {
            Err(StarttlsError::NotOffered { said: format!("AUTH TLS: {}", quote(&lines.concat())) })
        }
        _ => Err(StarttlsError::Refused { said: quote(&lines.concat()) }),
    }
}

async fn imap<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<'_, S>) -> Result<(), StarttlsError> {
    let greeting = wire.line().await?;
    let body = match parse_imap_line(&greeting) {
        ImapLine::Untagged(body) => body,
        _ => return Err(StarttlsError::Unexpected { step: "the greeting".into(), said: quote(&greeting) }),
    };
    if starts_with_ci(body, b"PREAUTH") {
        return Err(StarttlsError::Unexpected {
            step: "the greeting (PREAUTH: already logged in, STARTTLS is not allowed)".into(),
            said: quote(&greeting),
        });
    }
    if !starts_with_ci(body, b"OK") {
        return Err(StarttlsError::Refused { said: quote(&greeting) });
    }
    wire.set_step("waiting for the reply to CAPABILITY");
    wire.send(b"a1 CAPABILITY\r\n").await?;
    let mut offered = false;
    let mut said = Vec::new();
    imap_until_tagged(wire, b"a1", |untagged, line| {
        if imap_offers_starttls(untagged) {
            offered = true;
        }
        if starts_with_ci(untagged, b"CAPABILITY") {
            said.extend_from_slice(line);
        }
    })
    .await?;
    if !offered {
        return Err(StarttlsError::NotOffered { said: format!("its capabilities are {}", quote(&said)) });
    }
    wire.set_step("waiting for the reply to STARTTLS");
    wire.send(b"a2 STARTTLS\r\n").await?;
    imap_until_tagged(wire, b"a2", |_, _| {}).await
}

/// Reads lines until the one tagged `tag`; it must be OK (NO or BAD: refused).
async fn imap_until_tagged<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<'_, S>,
    tag: &[u8],
    mut untagged: impl FnMut(&[u8], &[u8]),
) -> Result<(), StarttlsError> {
    for _ in 0..MAX_LINES {
        let line = wire.line().await?;
        match parse_imap_line(&line) {
            ImapLine::Untagged(body) => untagged(body, &line),
            ImapLine::Tagged { tag: t, status } if t == tag => {
                return if status.eq_ignore_ascii_case(b"OK") {
                    Ok(())
                } else {
                    Err(StarttlsError::Refused { said: quote(&line) })
                };
            }
            _ => return Err(StarttlsError::Unexpected { step: wire.answer_to(), said: quote(&line) }),
        }
    }
    Err(StarttlsError::TooLong {
        step: wire.answer_to(),
        limit: format!("{MAX_LINES} lines"),
        said: String::new(),
    })
}

async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<'_, S>) -> Result<(), StarttlsError> {
    let greeting = wire.line().await?;
    if starts_with_ci(&greeting, b"-ERR") {
        return Err(StarttlsError::Refused { said: quote(&greeting) });
    }
    if !starts_with_ci(&greeting, b"+OK") {
        return Err(StarttlsError::Unexpected { step: "the greeting".into(), said: quote(&greeting) });
    }
    wire.set_step("waiting for the reply to CAPA");
    wire.send(b"CAPA\r\n").await?;
    let first = wire.line().await?;
    if starts_with_ci(&first, b"+OK") {
        let mut offered = false;
        let mut said = first.clone();
        for _ in 0..MAX_LINES {
            let line = wire.line().await?;
            if trim_eol(&line) == b"." {
                break;
            }
            offered |= capa_offers_stls(&line);
            said.extend_from_slice(&line);
        }
        if !offered {
            return Err(StarttlsError::NotOffered { said: format!("its CAPA reply was {}", quote(&said)) });
        }
    } else if !starts_with_ci(&first, b"-ERR") {
        return Err(StarttlsError::Unexpected { step: "CAPA".into(), said: quote(&first) });
    }
    wire.set_step("waiting for the reply to STLS");
    wire.send(b"STLS\r\n").await?;
    let reply = wire.line().await?;
    if starts_with_ci(&reply, b"+OK") { Ok(()) } else { Err(StarttlsError::Refused { said: quote(&reply) }) }
}

/// Escapes `'`, `<`, `>`, `&` and `"` for an XML attribute.
fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn xmpp<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<'_, S>,
    to: &str,
) -> Result<(), StarttlsError> {
    wire.set_step("waiting for the stream features");
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams'>",
        xml_attr(to)
    );
    wire.send(header.as_bytes()).await?;
    let offered = xmpp_read(wire, xmpp_features).await?;
    if !offered {
        return Err(StarttlsError::NotOffered { said: "its stream features have no <starttls>".into() });
    }
    wire.set_step("waiting for the reply to <starttls/>");
    wire.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await?;
    if !xmpp_read(wire, xmpp_proceed).await? {
        return Err(StarttlsError::Refused { said: "it answered <failure/>".into() });
    }
    Ok(())
}

/// Reads until `scan` finds its element; consumes it and says its `yes`.
async fn xmpp_read<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<'_, S>,
    scan: fn(&[u8]) -> XmppScan,
) -> Result<bool, StarttlsError> {
    let mut logged = 0;
    loop {
        match scan(&wire.buf) {
            XmppScan::Done { end, yes } => {
                wire.log_in(&wire.buf[logged.min(end)..end]);
                wire.buf.drain(..end);
                return Ok(yes);
            }
            XmppScan::Error => {
                return Err(StarttlsError::Refused { said: quote(&wire.buf) });
            }
            XmppScan::Incomplete => {}
        }
        if wire.buf.len() > logged {
            wire.log_in(&wire.buf[logged..]);
            logged = wire.buf.len();
        }
        if !wire.fill().await? {
            return Err(wire.closed());
        }
    }
}

async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<'_, S>) -> Result<(), StarttlsError> {
    wire.set_step("waiting for the reply to SSLRequest");
    wire.send(&POSTGRES_SSL_REQUEST).await?;
    let answer = wire.take(1).await?;
    match answer[0] {
        b'S' => Ok(()),
        b'N' => {
            Err(StarttlsError::NotOffered { said: "it answered \"N\" to SSLRequest (TLS is off)".into() })
        }
        _ => Err(StarttlsError::Unexpected { step: "SSLRequest".into(), said: quote(&answer) }),
    }
}

async fn ldap<S: AsyncRead + AsyncWrite + Unpin>(wire: &mut Wire<'_, S>) -> Result<(), StarttlsError> {
    wire.set_step("waiting for the reply to the StartTLS extended request");
    wire.send(LDAP_STARTTLS_REQUEST).await?;
    let (header, len) = loop {
        match ber_header(&wire.buf) {
            Ok(Some((_, header, len))) => break (header, len),
            Ok(None) => {}
            Err(e) => return Err(StarttlsError::Unexpected { step: wire.answer_to(), said: e }),
        }
        if !wire.fill().await? {
            return Err(wire.closed());
        }
    };
    if header + len > MAX_LINE {
        return Err(StarttlsError::TooLong {
            step: wire.answer_to(),
            limit: format!("{MAX_LINE} bytes"),
            said: String::new(),
        });
    }
    let message = wire.take(header + len).await?;
    let result = parse_ldap_response(&message).map_err(|e| StarttlsError::Unexpected {
        step: wire.answer_to(),
        said: format!("{e}: {}", quote(&message)),
    })?;
    match result.code {
        0 => Ok(()),
        // protocolError: the server does not know the operation.
        2 => Err(StarttlsError::NotOffered {
            said: format!("resultCode 2 (protocolError) {}", quote(&result.diagnostic)),
        }),
        code => {
            Err(StarttlsError::Refused { said: format!("resultCode {code} {}", quote(&result.diagnostic)) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line(b"250-STARTTLS\r\n"),
            Some(ReplyLine { code: 250, last: false, text: b"STARTTLS" })
        );
        assert_eq!(parse_reply_line(b"220 ok\n"), Some(ReplyLine { code: 220, last: true, text: b"ok" }));
        assert_eq!(parse_reply_line(b"250\r\n").map(|l| l.last), Some(true));
        assert_eq!(parse_reply_line(b"25x ok"), None);
        assert_eq!(parse_reply_line(b"2500"), None);
        assert!(ehlo_offers_starttls([&b"mail.example"[..], b"PIPELINING", b"starttls"]));
        assert!(!ehlo_offers_starttls([&b"STARTTLS"[..], b"SIZE 100"]));
    }

    #[test]
    fn imap_lines() {
        assert!(imap_offers_starttls(b"CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED"));
        assert!(imap_offers_starttls(b"OK [CAPABILITY IMAP4rev1 STARTTLS] ready"));
        assert!(!imap_offers_starttls(b"OK STARTTLS"));
        assert_eq!(parse_imap_line(b"a2 OK Begin TLS\r\n"), ImapLine::Tagged { tag: b"a2", status: b"OK" });
    }

    #[test]
    fn xmpp_scans() {
        let f = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
        assert_eq!(xmpp_features(f), XmppScan::Done { end: f.len(), yes: true });
        assert_eq!(xmpp_features(b"<stream:features>"), XmppScan::Incomplete);
        let p = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
        assert_eq!(xmpp_proceed(p), XmppScan::Done { end: p.len(), yes: true });
        assert!(matches!(xmpp_proceed(b"<failure xmlns='x'/>"), XmppScan::Done { yes: false, .. }));
    }

    #[test]
    fn ldap_request_and_response() {
        assert_eq!(ber_header(LDAP_STARTTLS_REQUEST), Ok(Some((0x30, 2, LDAP_STARTTLS_REQUEST.len() - 2))));
        assert_eq!(&LDAP_STARTTLS_REQUEST[9..], b"1.3.6.1.4.1.1466.20037");
        // OpenLDAP's success: 30 0c 02 01 01 78 07 0a 01 00 04 00 04 00
        let ok = b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x00\x04\x00\x04\x00";
        assert_eq!(parse_ldap_response(ok), Ok(LdapResult { message_id: 1, code: 0, diagnostic: vec![] }));
        assert!(parse_ldap_response(b"\x30\x03\x02\x01").is_err());
    }

    #[test]
    fn quotes_escape_and_cut() {
        assert_eq!(quote(b"220 hi\r\n"), "\"220 hi\\r\\n\"");
        assert_eq!(quote(b"\x1b[31m"), "\"\\x1b[31m\"");
        assert!(quote(&[b'a'; 1000]).ends_with("...\""));
        assert_eq!(quote(&POSTGRES_SSL_REQUEST), "\"\\x00\\x00\\x00\\x08\\x04\\xd2\\x16/\"");
    }

    #[test]
    fn names() {
        for p in Protocol::ALL {
            assert_eq!(p.name().parse::<Protocol>(), Ok(p));
        }
        assert_eq!("PostgreSQL".parse::<Protocol>(), Ok(Protocol::Postgres));
        assert!("smtps".parse::<Protocol>().unwrap_err().contains("smtp, lmtp"));
        assert!(check_ehlo_name("mail.example").is_ok());
        assert!(check_ehlo_name("[IPv6:::1]").is_ok());
        assert!(check_ehlo_name("a\r\nRCPT").is_err());
        assert!(check_ehlo_name("a b").is_err());
    }

    /// A server whose every reply is there at once (then the end of the stream); what the
    /// client writes is kept.
    struct Canned {
        replies: std::io::Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl AsyncRead for Canned {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.replies).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Canned {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.written.extend_from_slice(buf);
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

    /// Negotiates `protocol` against `replies`: the outcome (the error's message) and what
    /// the client sent.
    fn against(protocol: Protocol, replies: &[u8]) -> (Result<(), String>, String) {
        let mut server = Canned { replies: std::io::Cursor::new(replies.to_vec()), written: Vec::new() };
        let how =
            Negotiation { protocol, server_name: "localhost", ehlo: None, limit: Duration::from_secs(5) };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let result = runtime.block_on(negotiate(&mut server, how)).map_err(|e| e.to_string());
        (result, String::from_utf8_lossy(&server.written).into_owned())
    }

    #[test]
    fn each_protocols_branches() {
        // SMTP: a 5xx to EHLO is a server without extensions; a 554 greeting a refusal.
        let (r, sent) = against(Protocol::Smtp, b"220 old\r\n502 what?\r\n");
        assert_eq!(
            r.unwrap_err(),
            r#"the server does not offer STARTTLS: its EHLO reply was "502 what?\r\n""#
        );
        assert_eq!(sent, "EHLO streamtool.localhost\r\n");
        let (r, _) = against(Protocol::Smtp, b"554 go away\r\n");
        assert_eq!(r.unwrap_err(), r#"the server refused STARTTLS: its greeting was "554 go away\r\n""#);
        let (r, _) = against(Protocol::Smtp, b"220 a\r\n250-a\r\n250 STARTTLS\r\n454 TLS not available\r\n");
        assert_eq!(r.unwrap_err(), r#"the server refused STARTTLS: "454 TLS not available\r\n""#);
        // A reply whose lines change code is out of turn.
        let (r, _) = against(Protocol::Smtp, b"220-a\r\n221 b\r\n");
        assert!(r.unwrap_err().starts_with("unexpected answer to the greeting: "));
        // IMAP: PREAUTH forbids STARTTLS; NO refuses it.
        let (r, _) = against(Protocol::Imap, b"* PREAUTH hi\r\n");
        assert!(r.unwrap_err().contains("PREAUTH"));
        let (r, sent) = against(
            Protocol::Imap,
            b"* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK\r\na2 NO later\r\n",
        );
        assert_eq!(r.unwrap_err(), r#"the server refused STARTTLS: "a2 NO later\r\n""#);
        assert_eq!(sent, "a1 CAPABILITY\r\na2 STARTTLS\r\n");
        let (r, _) = against(Protocol::Imap, b"* OK hi\r\n* CAPABILITY IMAP4rev1\r\na1 OK\r\n");
        assert_eq!(
            r.unwrap_err(),
            r#"the server does not offer STARTTLS: its capabilities are "* CAPABILITY IMAP4rev1\r\n""#
        );
        // POP3: a server without CAPA is asked anyway.
        let (r, sent) = against(Protocol::Pop3, b"+OK hi\r\n-ERR no CAPA\r\n+OK go\r\n");
        assert_eq!(r, Ok(()));
        assert_eq!(sent, "CAPA\r\nSTLS\r\n");
        // FTP: a 120 first, then the greeting; 502 to AUTH TLS is not offered.
        let (r, _) = against(Protocol::Ftp, b"120 wait\r\n220 ready\r\n234 go\r\n");
        assert_eq!(r, Ok(()));
        let (r, _) = against(Protocol::Ftp, b"220 ready\r\n502 no\r\n");
        assert!(r.unwrap_err().starts_with("the server does not offer STARTTLS: AUTH TLS: "));
        // XMPP: no <starttls> in the features; <failure/>; a stream error.
        let (r, _) = against(Protocol::Xmpp, b"<stream:stream><stream:features><bind/></stream:features>");
        assert_eq!(
            r.unwrap_err(),
            "the server does not offer STARTTLS: its stream features have no <starttls>"
        );
        let (r, _) = against(
            Protocol::Xmpp,
            b"<stream:stream><stream:features><starttls/></stream:features><failure xmlns='x'/>",
        );
        assert_eq!(r.unwrap_err(), "the server refused STARTTLS: it answered <failure/>");
        let (r, _) = against(Protocol::Xmpp, b"<stream:stream><stream:error><host-unknown/></stream:error>");
        assert!(r.unwrap_err().starts_with("the server refused STARTTLS: \"<stream:stream><stream:error>"));
        // LDAP: protocolError is not offered; another code a refusal with its message.
        let (r, _) = against(Protocol::Ldap, b"\x30\x0f\x02\x01\x01\x78\x0a\x0a\x01\x02\x04\x00\x04\x03bad");
        assert_eq!(
            r.unwrap_err(),
            r#"the server does not offer STARTTLS: resultCode 2 (protocolError) "bad""#
        );
        let (r, _) = against(Protocol::Ldap, b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x34\x04\x00\x04\x00");
        assert_eq!(r.unwrap_err(), r#"the server refused STARTTLS: resultCode 52 """#);
        // Postgres: anything but S or N is out of turn.
        let (r, _) = against(Protocol::Postgres, b"E");
        assert_eq!(r.unwrap_err(), r#"unexpected answer to SSLRequest: "E""#);
    }

    #[test]
    fn limits_and_the_end_of_the_stream() {
        let long = [b"220 ".as_slice(), &[b'a'; MAX_LINE + 10]].concat();
        let (r, _) = against(Protocol::Smtp, &long);
        assert!(
            r.unwrap_err().starts_with("the server's answer to the greeting is too long (over 8192 bytes): ")
        );
        let many: Vec<u8> = [b"* OK hi\r\n".as_slice(), &b"* x\r\n".repeat(MAX_LINES + 1)].concat();
        let (r, _) = against(Protocol::Imap, &many);
        assert_eq!(r.unwrap_err(), "the server's answer to CAPABILITY is too long (over 1000 lines)");
        let (r, _) = against(Protocol::Smtp, b"220 hi\r\n250-a");
        assert_eq!(
            r.unwrap_err(),
            r#"the server closed the connection while waiting for the reply to EHLO, after "250-a""#
        );
        let (r, _) = against(Protocol::Postgres, b"");
        assert_eq!(
            r.unwrap_err(),
            "the server closed the connection while waiting for the reply to SSLRequest"
        );
        // The go-ahead with more behind it, in one read.
        let (r, _) = against(Protocol::Pop3, b"+OK\r\n+OK\r\nSTLS\r\n.\r\n+OK go\r\n+OK fake\r\n");
        assert!(r.unwrap_err().starts_with("the server sent 10 bytes after its go-ahead"));
    }
}
