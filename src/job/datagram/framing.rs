//! How datagrams meet a byte stream: each datagram written to the byte side with its
//! framing, and the byte side cut into datagrams by the same rule.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::streams::StreamError;

/// The rule between datagrams and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Framing {
    /// The default: each line of the byte side (up to and including its LF) is one
    /// datagram; a datagram is written as it is.
    #[default]
    Lines,
    /// `--delimiter D`: each D-terminated frame is one datagram, without D; a datagram is
    /// written followed by D.
    Delimiter(Vec<u8>),
    /// `--length-prefix`: a 2-byte big-endian length before each datagram, both ways (as
    /// DNS over TCP frames its messages).
    LengthPrefix,
}

impl Framing {
    /// From the options' `delimiter` and `length-prefix`.
    pub fn of(delimiter: Option<&[u8]>, length_prefix: bool) -> Framing {
        match (delimiter, length_prefix) {
            (_, true) => Framing::LengthPrefix,
            (Some(d), false) => Framing::Delimiter(d.to_vec()),
            (None, false) => Framing::Lines,
        }
    }

    /// Appends `datagram`, framed, to `out`.
    pub fn encode(&self, datagram: &[u8], out: &mut BytesMut) {
        match self {
            Framing::Lines => out.put_slice(datagram),
            Framing::Delimiter(d) => {
                out.put_slice(datagram);
                out.put_slice(d);
            }
            Framing::LengthPrefix => {
                // A datagram never exceeds 65,535 bytes here: MAX_DATAGRAM is checked on
                // receipt, and a UDP payload is smaller.
                out.put_u16(u16::try_from(datagram.len()).unwrap_or(u16::MAX));
                out.put_slice(datagram);
            }
        }
    }
}

/// Cuts a byte stream into datagrams of at most `max` bytes.
#[derive(Debug)]
pub struct Splitter {
    framing: Framing,
    max: usize,
    buf: BytesMut,
    /// Where the search for the delimiter resumes.
    searched: usize,
    /// Inside a frame already longer than the maximum: the bytes of it dropped so far (it
    /// is read to its end, so that the error names its whole length).
    skipped: Option<usize>,
}

impl Splitter {
    /// A splitter by `framing`; a datagram over `max` bytes is an error, never cut.
    pub fn new(framing: Framing, max: usize) -> Self {
        Splitter { framing, max, buf: BytesMut::new(), searched: 0, skipped: None }
    }

    /// Bytes from the byte side.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole datagram, if one is complete.
    ///
    /// # Errors
    /// [`StreamError::OversizedDatagram`] when a datagram (or what is buffered without a
    /// delimiter) is longer than the maximum.
    pub fn next_datagram(&mut self) -> Result<Option<Bytes>, StreamError> {
        if let Some(skipped) = self.skipped {
            return self.skip(skipped);
        }
        let (len, skip) = match &self.framing {
            Framing::Lines => match memchr::memchr(b'\n', &self.buf[self.searched..]) {
                Some(i) => (self.searched + i + 1, 0),
                None => return self.wait(),
            },
            Framing::Delimiter(d) => {
                let from = self.searched.saturating_sub(d.len().saturating_sub(1));
                match memchr::memmem::find(&self.buf[from..], d) {
                    Some(i) => (from + i, d.len()),
                    None => return self.wait(),
                }
            }
            Framing::LengthPrefix => {
                if self.buf.len() < 2 {
                    return Ok(None);
                }
                let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
                if len > self.max {
                    return Err(self.oversized(len));
                }
                if self.buf.len() < 2 + len {
                    return Ok(None);
                }
                self.buf.advance(2);
                (len, 0)
            }
        };
        if len > self.max {
            return Err(self.oversized(len));
        }
        let datagram = self.buf.split_to(len).freeze();
        self.buf.advance(skip);
        self.searched = 0;
        Ok(Some(datagram))
    }

    /// At the end of the byte side: what is left is the last datagram (a length-prefixed
    /// frame cut short is an error).
    ///
    /// # Errors
    /// [`StreamError::OversizedDatagram`]; [`StreamError::IncompleteRead`] for a
    /// length-prefixed frame cut short.
    pub fn finish(&mut self) -> Result<Option<Bytes>, StreamError> {
        if let Some(skipped) = self.skipped {
            return Err(self.oversized(skipped + self.buf.len()));
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        if self.framing == Framing::LengthPrefix {
            return Err(StreamError::IncompleteRead);
        }
        if self.buf.len() > self.max {
            return Err(self.oversized(self.buf.len()));
        }
        self.searched = 0;
        Ok(Some(self.buf.split().freeze()))
    }

    fn wait(&mut self) -> Result<Option<Bytes>, StreamError> {
        self.searched = self.buf.len();
        if self.buf.len() > self.max {
            // Too long already: read to its end without keeping it, to name its length.
            return self.skip(0);
        }
        Ok(None)
    }

    /// Drops the oversized frame's bytes up to its delimiter, then reports it whole.
    fn skip(&mut self, skipped: usize) -> Result<Option<Bytes>, StreamError> {
        let (end, delimiter) = match &self.framing {
            Framing::Lines => (memchr::memchr(b'\n', &self.buf).map(|i| i + 1), 0),
            Framing::Delimiter(d) => (memchr::memmem::find(&self.buf, d), d.len()),
            Framing::LengthPrefix => (Some(self.buf.len()), 0),
        };
        self.searched = 0;
        match end {
            Some(end) => {
                self.buf.advance(end + delimiter);
                self.skipped = None;
                Err(self.oversized(skipped + end))
            }
            None => {
                // A delimiter may start in the last bytes: keep them for the next search.
                let keep = delimiter.saturating_sub(1).min(self.buf.len());
                let dropped = self.buf.len() - keep;
                self.buf.advance(dropped);
                self.skipped = Some(skipped + dropped);
                Ok(None)
            }
        }
    }

    fn oversized(&self, size: usize) -> StreamError {
        StreamError::OversizedDatagram { size, max: self.max, peer: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(framing: Framing, max: usize, input: &[&[u8]]) -> Result<Vec<Vec<u8>>, StreamError> {
        let mut s = Splitter::new(framing, max);
        let mut out = Vec::new();
        for chunk in input {
            s.push(chunk);
            while let Some(d) = s.next_datagram()? {
                out.push(d.to_vec());
            }
        }
        if let Some(d) = s.finish()? {
            out.push(d.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn lines_keep_their_newline_and_the_rest_is_the_last() {
        let got = all(Framing::Lines, 100, &[b"a\nb", b"c\n\nd"]).unwrap();
        assert_eq!(got, vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"\n".to_vec(), b"d".to_vec()]);
    }

    #[test]
    fn a_delimiter_split_across_reads_is_found_and_dropped() {
        let got = all(Framing::Delimiter(b"\r\n".to_vec()), 100, &[b"ab\r", b"\ncd\r\n"]).unwrap();
        assert_eq!(got, vec![b"ab".to_vec(), b"cd".to_vec()]);
    }

    #[test]
    fn length_prefixed_frames_round_trip() {
        let mut wire = BytesMut::new();
        Framing::LengthPrefix.encode(b"hello", &mut wire);
        Framing::LengthPrefix.encode(b"", &mut wire);
        let (a, b) = wire.split_at(3);
        let got = all(Framing::LengthPrefix, 100, &[a, b]).unwrap();
        assert_eq!(got, vec![b"hello".to_vec(), Vec::new()]);
        assert!(matches!(
            all(Framing::LengthPrefix, 100, &[&[0, 5, b'x']]),
            Err(StreamError::IncompleteRead)
        ));
    }

    #[test]
    fn a_datagram_over_the_maximum_is_an_error_never_cut() {
        assert!(matches!(
            all(Framing::Lines, 4, &[b"12345\n"]),
            Err(StreamError::OversizedDatagram { size: 6, max: 4, .. })
        ));
        assert!(matches!(
            all(Framing::Lines, 4, &[b"123456"]),
            Err(StreamError::OversizedDatagram { size: 6, .. })
        ));
        // Read to its end, across reads, to name its whole length.
        assert!(matches!(
            all(Framing::Lines, 4, &[b"12345", b"67", b"89\nok\n"]),
            Err(StreamError::OversizedDatagram { size: 10, .. })
        ));
        assert!(matches!(
            all(Framing::Delimiter(b"::".to_vec()), 4, &[b"123456:", b":next::"]),
            Err(StreamError::OversizedDatagram { size: 6, .. })
        ));
        assert!(matches!(
            all(Framing::LengthPrefix, 4, &[&[0, 9]]),
            Err(StreamError::OversizedDatagram { .. })
        ));
        assert_eq!(all(Framing::Lines, 4, &[b"123\n"]).unwrap(), vec![b"123\n".to_vec()]);
    }
}
