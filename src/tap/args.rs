//! The flags of a recording, shared by `connect` and `serve` (pipe's endpoints take the
//! same as options: `dump=hex`, `pcap=FILE`, ...).

use std::path::PathBuf;

use super::{DumpStyle, Layer, TapOptions};

fn size(s: &str) -> Result<u64, String> {
    crate::values::parse_size(s).map(|n| n as u64)
}

/// `--dump`, `--transcript`, `--pcap` and their settings.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Seeing the traffic")]
pub struct TapArgs {
    /// Show each chunk as it passes, per connection and direction, with its offset and a
    /// timestamp: text (non-printable bytes escaped, line ends shown) or hex (as
    /// hexdump -C). To stderr, or --dump-file.
    #[arg(long, value_name = "STYLE", value_parser = crate::values::from_str::<DumpStyle>)]
    pub dump: Option<DumpStyle>,

    /// Write the dump to this file (created 0600) instead of stderr.
    #[arg(long, value_name = "FILE", requires = "dump")]
    pub dump_file: Option<PathBuf>,

    /// Which side of TLS the dump shows: plain (the plaintext, default) or tls (the TLS
    /// records on the wire, each record's type, version and length named).
    #[arg(long, value_name = "LAYER", requires = "dump", value_parser = crate::values::from_str::<Layer>)]
    pub dump_layer: Option<Layer>,

    /// Dump at most this much of each connection (e.g. 64KiB); the rest is counted, not shown.
    #[arg(long, value_name = "SIZE", requires = "dump", value_parser = size)]
    pub dump_max: Option<u64>,

    /// Write every chunk and event as a JSON line to FILE (created 0600; docs/events.md,
    /// "Transcripts"); pipe's replay:FILE plays it back.
    #[arg(long, value_name = "FILE")]
    pub transcript: Option<PathBuf>,

    /// Write the traffic to FILE as pcapng (created 0600): each connection a TCP
    /// conversation Wireshark dissects as captured. The file holds what passed, and with
    /// --pcap-layer tls the session secrets too.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Which side of TLS the capture holds: plain (the plaintext, default) or tls (the TLS
    /// records, with the secrets in the file so Wireshark decrypts them with no key log).
    #[arg(long, value_name = "LAYER", requires = "pcap", value_parser = crate::values::from_str::<Layer>)]
    pub pcap_layer: Option<Layer>,

    /// Replace an existing --dump-file, --transcript or --pcap file.
    #[arg(long)]
    pub force: bool,
}

impl TapArgs {
    /// The options these flags ask for.
    pub fn options(&self) -> TapOptions {
        TapOptions {
            dump: self.dump,
            dump_file: self.dump_file.clone(),
            dump_layer: self.dump_layer.unwrap_or_default(),
            dump_max: self.dump_max,
            transcript: self.transcript.clone(),
            pcap: self.pcap.clone(),
            pcap_layer: self.pcap_layer.unwrap_or_default(),
            force: self.force,
        }
    }
}
