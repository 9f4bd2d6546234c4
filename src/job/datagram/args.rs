//! The datagram flags of `connect` and `serve`: `-u/--udp` and `--length-prefix`. Every
//! flag datagrams do not use is refused by clap, naming both (exit 2).

/// `connect -u`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Datagrams")]
pub struct ConnectDatagramArgs {
    /// UDP instead of TCP (with a UNIX path: a datagram socket). Each line of stdin is one
    /// datagram (with --delimiter, each frame without it), each datagram received goes to
    /// stdout; after stdin's end, replies are awaited until 2s pass without one
    /// (--idle-timeout sets the wait). The first address the name resolves to (-4/-6).
    #[arg(short = 'u', long, conflicts_with_all = CONNECT_CONFLICTS)]
    pub udp: bool,

    /// With -u: a 2-byte big-endian length before each datagram on stdin and stdout
    /// (DNS over TCP's framing), instead of lines.
    #[arg(long, requires = "udp", conflicts_with = "delimiter")]
    pub length_prefix: bool,
}

/// `serve -u`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Datagrams")]
pub struct ServeDatagramArgs {
    /// UDP instead of TCP (unix:PATH: a UNIX datagram socket): a session per peer
    /// (--echo, --exec, --sh-exec and --discard per peer; stdio mode serves the first
    /// peer, with -k every peer, answering the one heard from last). A session ends after
    /// 60s without a datagram (--idle-timeout); -k serves up to 256 at once (--max-conns).
    #[arg(short = 'u', long, conflicts_with_all = SERVE_CONFLICTS)]
    pub udp: bool,

    /// With -u: a 2-byte big-endian length before each datagram on the byte side (stdio or
    /// the command's), instead of lines.
    #[arg(long, requires = "udp", conflicts_with = "delimiter")]
    pub length_prefix: bool,
}

/// Flags of both commands that datagrams do not use.
macro_rules! common_conflicts {
    ($($more:literal),*) => {
        &[
            "tls", "cert", "key", "ca", "pin", "sni", "no_sni", "alpn", "tls_min", "tls_max",
            "ragged_eof", "keylog", "starttls", "encoding", "decode_errors", "crlf", "max_frame",
            "on_oversize", "on_eof", "keepalive", "progress", "dump", "dump_file", "transcript",
            "pcap", $($more),*
        ]
    };
}

const CONNECT_CONFLICTS: &[&str] = common_conflicts!(
    "zero_io",
    "show_cert",
    "tofu",
    "require",
    "insecure",
    "send_only",
    "recv_only",
    "keep_sending",
    "no_shutdown",
    "proxy",
    "proxy_env",
    "proxy_protocol",
    "retry"
);

const SERVE_CONFLICTS: &[&str] = common_conflicts!(
    "broker",
    "accept_proxy",
    "client_ca",
    "require_client_cert",
    "cert_dir",
    "reload_on_change",
    "max_lag"
);
