//! The process's stdin and stdout as one stapled byte stream (`connect`'s and `serve`'s
//! default, `pipe -`). `send_eof` closes stdout's writer; receiving reads stdin.

use tokio::io::{Stdin, Stdout};

use super::io::{IoReceiveStream, IoSendStream};
use super::stapled::StapledByteStream;

/// stdin and stdout, stapled.
pub type StdioStream = StapledByteStream<IoSendStream<Stdout>, IoReceiveStream<Stdin>>;

/// The process's stdin and stdout as one stream.
pub fn stdio() -> StdioStream {
    StapledByteStream::new(IoSendStream::new(tokio::io::stdout()), IoReceiveStream::new(tokio::io::stdin()))
}
