//! Incremental text codecs: a named wire encoding, decoded to and encoded from UTF-8.
//!
//! The WHATWG encodings come from `encoding_rs`, with three deliberate differences from
//! WHATWG's label table, because a network tool must be byte-exact where a browser is
//! forgiving:
//! - `latin1`, `iso-8859-1` and their aliases are true ISO-8859-1 (every byte is the code
//!   point of the same value), as in Python and in RFCs. WHATWG maps them to
//!   windows-1252, which turns byte 0x80 into `€`. `windows-1252`/`cp1252` stay available.
//! - `ascii`/`us-ascii` are 7-bit ASCII: bytes from 0x80 are errors (WHATWG: windows-1252).
//! - UTF-16LE/BE can be encoded too (WHATWG only decodes them).
//!
//! No byte-order mark is added or removed: what comes off the wire is what is decoded.
//!
//! Errors: `strict` fails on the first malformed sequence (decoding) or unmappable character
//! (encoding); `replace` writes U+FFFD for each malformed sequence, and `?` for each
//! unmappable character (Python's rule; `encoding_rs` would write an HTML entity).
//! A character cut off by the end of the stream is malformed: an error under `strict`,
//! U+FFFD under `replace` (docs/design.md §4.7).

use std::fmt;
use std::str::FromStr;

use encoding_rs::{CoderResult, DecoderResult, EncoderResult, Encoding};

use super::error::{Result, StreamError};

/// What to do with bytes (or characters) that the encoding cannot represent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorMode {
    /// Fail with [`StreamError::Decode`] or [`StreamError::Encode`].
    #[default]
    Strict,
    /// Substitute U+FFFD when decoding, `?` when encoding.
    Replace,
}

impl FromStr for ErrorMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Ok(ErrorMode::Strict),
            "replace" => Ok(ErrorMode::Replace),
            _ => Err(format!("unknown error mode {s:?} (expected strict or replace)")),
        }
    }
}

/// A text encoding, found by label.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// An encoding of the WHATWG Encoding Standard.
    Whatwg(&'static Encoding),
    /// ISO-8859-1: byte n is U+00nn.
    Latin1,
    /// 7-bit US-ASCII.
    Ascii,
}

impl TextEncoding {
    /// UTF-8.
    pub const UTF_8: TextEncoding = TextEncoding::Whatwg(encoding_rs::UTF_8);

    /// Looks up an encoding by label (case-insensitive): `utf-8`, `latin1`, `utf-16le`,
    /// `shift_jis`, `windows-1252`, `euc-kr`, ...
    pub fn for_label(label: &str) -> Option<TextEncoding> {
        let label = label.trim().to_ascii_lowercase();
        match label.as_str() {
            "latin1" | "latin-1" | "l1" | "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "iso88591"
            | "iso-ir-100" | "cp819" | "ibm819" | "8859-1" => Some(TextEncoding::Latin1),
            "ascii" | "us-ascii" | "ansi_x3.4-1968" | "iso646-us" | "646" | "us" => Some(TextEncoding::Ascii),
            "utf8" => Some(TextEncoding::UTF_8),
            "utf16" | "utf16le" => Some(TextEncoding::Whatwg(encoding_rs::UTF_16LE)),
            "utf16be" => Some(TextEncoding::Whatwg(encoding_rs::UTF_16BE)),
            other => Encoding::for_label_no_replacement(other.as_bytes()).map(TextEncoding::Whatwg),
        }
    }

    /// The encoding's canonical name.
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Whatwg(enc) => enc.name(),
            TextEncoding::Latin1 => "ISO-8859-1",
            TextEncoding::Ascii => "US-ASCII",
        }
    }

    /// Whether this is UTF-8 (the terminal side's encoding: no conversion needed).
    pub fn is_utf8(self) -> bool {
        self == TextEncoding::UTF_8
    }

    /// A fresh incremental decoder.
    pub fn decoder(self, mode: ErrorMode) -> TextDecoder {
        let inner = match self {
            TextEncoding::Whatwg(enc) => Some(enc.new_decoder_without_bom_handling()),
            TextEncoding::Latin1 | TextEncoding::Ascii => None,
        };
        TextDecoder { encoding: self, mode, inner, consumed: 0 }
    }

    /// An encoder.
    pub fn encoder(self, mode: ErrorMode) -> TextEncoder {
        TextEncoder { encoding: self, mode }
    }
}

impl fmt::Debug for TextEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TextEncoding({})", self.name())
    }
}

impl fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TextEncoding {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        TextEncoding::for_label(s).ok_or_else(|| {
            format!("unknown encoding {s:?} (try utf-8, latin1, utf-16le, windows-1252, shift_jis)")
        })
    }
}

/// Decodes a byte stream chunk by chunk; a character split across chunks is kept until
/// its last byte arrives.
pub struct TextDecoder {
    encoding: TextEncoding,
    mode: ErrorMode,
    inner: Option<encoding_rs::Decoder>,
    /// Bytes consumed so far, to say where a malformed sequence was.
    consumed: u64,
}

impl fmt::Debug for TextDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextDecoder")
            .field("encoding", &self.encoding)
            .field("mode", &self.mode)
            .field("consumed", &self.consumed)
            .finish()
    }
}

impl TextDecoder {
    /// The encoding.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// Starts over, as a new decoder (after a `last` call, before decoding more). The byte
    /// count for error offsets goes on.
    pub fn reset(&mut self) {
        if let TextEncoding::Whatwg(enc) = self.encoding {
            self.inner = Some(enc.new_decoder_without_bom_handling());
        }
    }

    /// Decodes `input` and appends the text to `out`. With `last`, the input is the end of
    /// the stream, and a pending partial character is malformed.
    ///
    /// # Errors
    /// [`StreamError::Decode`] under [`ErrorMode::Strict`] on malformed input; what was
    /// decoded before it is in `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut String, last: bool) -> Result<()> {
        let Some(decoder) = self.inner.as_mut() else {
            return self.decode_single_byte(input, out);
        };
        // The end-of-stream call carries no bytes: anything malformed then is a character
        // cut off by the end of the stream.
        let finishing = last && input.is_empty();
        let mut input = input;
        loop {
            match self.mode {
                ErrorMode::Replace => {
                    let needed = decoder.max_utf8_buffer_length(input.len()).unwrap_or(input.len() * 3 + 16);
                    out.reserve(needed);
                    let (result, read, _) = decoder.decode_to_string(input, out, last);
                    self.consumed += read as u64;
                    input = &input[read..];
                    if result == CoderResult::InputEmpty {
                        return Ok(());
                    }
                }
                ErrorMode::Strict => {
                    let needed = decoder
                        .max_utf8_buffer_length_without_replacement(input.len())
                        .unwrap_or(input.len() * 3 + 16);
                    out.reserve(needed);
                    let (result, read) = decoder.decode_to_string_without_replacement(input, out, last);
                    match result {
                        DecoderResult::InputEmpty => {
                            self.consumed += read as u64;
                            return Ok(());
                        }
                        DecoderResult::OutputFull => {
                            self.consumed += read as u64;
                            input = &input[read..];
                        }
                        DecoderResult::Malformed(bad, extra) => {
                            let at_eof = finishing;
                            let offset = self.consumed + read as u64 - u64::from(extra) - u64::from(bad);
                            return Err(StreamError::Decode {
                                encoding: self.encoding.name(),
                                offset,
                                at_eof,
                            });
                        }
                    }
                }
            }
        }
    }

    fn decode_single_byte(&mut self, input: &[u8], out: &mut String) -> Result<()> {
        match self.encoding {
            TextEncoding::Latin1 => out.extend(input.iter().map(|&b| char::from(b))),
            _ => {
                for (i, &b) in input.iter().enumerate() {
                    if b.is_ascii() {
                        out.push(char::from(b));
                    } else if self.mode == ErrorMode::Replace {
                        out.push(char::REPLACEMENT_CHARACTER);
                    } else {
                        return Err(StreamError::Decode {
                            encoding: self.encoding.name(),
                            offset: self.consumed + i as u64,
                            at_eof: false,
                        });
                    }
                }
            }
        }
        self.consumed += input.len() as u64;
        Ok(())
    }
}

/// Encodes text for the wire. Each call encodes a complete piece of text: a stateful
/// encoding (ISO-2022-JP) returns to its initial state at the end of each call.
#[derive(Debug, Clone, Copy)]
pub struct TextEncoder {
    encoding: TextEncoding,
    mode: ErrorMode,
}

impl TextEncoder {
    /// The encoding.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// Encodes `text`, appending to `out`.
    ///
    /// # Errors
    /// [`StreamError::Encode`] under [`ErrorMode::Strict`] for a character the encoding
    /// cannot represent; what was encoded before it is in `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u8>) -> Result<()> {
        match self.encoding {
            TextEncoding::Whatwg(enc) if enc == encoding_rs::UTF_8 => {
                out.extend_from_slice(text.as_bytes());
                Ok(())
            }
            TextEncoding::Whatwg(enc) if enc == encoding_rs::UTF_16LE => {
                out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
                Ok(())
            }
            TextEncoding::Whatwg(enc) if enc == encoding_rs::UTF_16BE => {
                out.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
                Ok(())
            }
            TextEncoding::Whatwg(enc) => self.encode_whatwg(enc, text, out),
            TextEncoding::Latin1 => self.encode_single_byte(text, out, 0xFF),
            TextEncoding::Ascii => self.encode_single_byte(text, out, 0x7F),
        }
    }

    fn unmappable(&self, ch: char, out: &mut Vec<u8>) -> Result<()> {
        match self.mode {
            ErrorMode::Strict => Err(StreamError::Encode { encoding: self.encoding.name(), ch }),
            ErrorMode::Replace => {
                out.push(b'?');
                Ok(())
            }
        }
    }

    fn encode_single_byte(&self, text: &str, out: &mut Vec<u8>, max: u32) -> Result<()> {
        out.reserve(text.len());
        for ch in text.chars() {
            match u8::try_from(u32::from(ch)) {
                Ok(b) if u32::from(b) <= max => out.push(b),
                _ => self.unmappable(ch, out)?,
            }
        }
        Ok(())
    }

    fn encode_whatwg(&self, enc: &'static Encoding, text: &str, out: &mut Vec<u8>) -> Result<()> {
        let mut encoder = enc.new_encoder();
        let mut input = text;
        loop {
            let needed = encoder
                .max_buffer_length_from_utf8_without_replacement(input.len())
                .unwrap_or(input.len() * 4 + 16);
            out.reserve(needed);
            let (result, read) = encoder.encode_from_utf8_to_vec_without_replacement(input, out, true);
            input = &input[read..];
            match result {
                EncoderResult::InputEmpty => return Ok(()),
                EncoderResult::OutputFull => {}
                EncoderResult::Unmappable(ch) => self.unmappable(ch, out)?,
            }
        }
    }
}
