//! The command line, as clap derive types. Doc comments are the help text; parsing only
//! validates, it never touches the network or the file system.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use streamtool::endpoint::{ConnectAddress, Endpoint, EndpointOptions, ListenAddress};
use streamtool::relay::OnEof;
use streamtool::stack::require::Requirement;
use streamtool::streams::encoding::{ErrorMode, TextEncoding};
use streamtool::streams::framing::Oversize;
use streamtool::streams::tls::{Pin, RaggedEofPolicy, TlsVersion};
use streamtool::values::{IdleLimit, parse_delimiter, parse_duration, parse_idle_limit, parse_size};

use crate::exit_codes::EXIT_CODES_HELP;

/// `--version`: the version and the TLS crypto provider it was built with (`-V`: the
/// version alone).
#[cfg(feature = "aws-lc")]
const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (TLS: rustls with aws-lc-rs)");
/// `--version`: the version and the TLS crypto provider it was built with (`-V`: the
/// version alone).
#[cfg(not(feature = "aws-lc"))]
const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (TLS: rustls with ring)");

/// Byte streams for the shell: TCP, UNIX and TLS connections, relays and test
/// certificates, with safe defaults (verification on, truncation detected, half-close
/// honoured).
#[derive(Debug, Parser)]
#[command(name = "streamtool", version, long_version = LONG_VERSION, about, long_about = None, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// More log output on stderr (-v: info and a summary, -vv: debug, -vvv: trace).
    /// RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true, help_heading = GLOBAL)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,

    /// Machine-readable events on stderr, one JSON object per line.
    #[arg(long, value_name = "FORMAT", global = true, help_heading = GLOBAL)]
    pub events: Option<EventFormat>,

    /// Threads that run connections: 1 (the default) runs everything on one thread, the
    /// least CPU and memory per connection and per handshake; 0 means one per CPU core,
    /// for a few bulk relays or a server whose many busy TLS connections need more than
    /// one core. At most 256.
    #[arg(long, value_name = "N", help_heading = GLOBAL, value_parser = clap::value_parser!(u16).range(0..=256))]
    pub threads: Option<u16>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The help heading of the flags every subcommand takes.
const GLOBAL: &str = "Global options";

/// serve's hidden flags: client options that `TlsArgs` and `NetArgs` share with connect.
/// serve refuses each by name (a usage error naming the flag it needs), so they are not
/// listed in its help.
const SERVE_HIDDEN: [&str; 5] = ["ca", "pin", "sni", "no_sni", "connect_timeout"];

/// Subcommands that run connections, where `--threads` means something. It is not a
/// global flag (gen-cert and completions run none): it is accepted before the subcommand
/// and, in these, after it.
const WITH_RUNTIME: [&str; 3] = ["serve", "connect", "pipe"];

/// The command line as parsed, shown in `--help` and turned into completions and man
/// pages: the derive's definition, with each subcommand's help listing only the flags
/// that apply to it.
pub fn command() -> clap::Command {
    let cmd = <Cli as clap::CommandFactory>::command();
    let threads = cmd.get_arguments().find(|a| a.get_id() == "threads").cloned().expect("--threads");
    cmd.mut_subcommands(|sub| {
        let sub = if WITH_RUNTIME.contains(&sub.get_name()) { sub.arg(threads.clone()) } else { sub };
        if sub.get_name() == "serve" {
            SERVE_HIDDEN.iter().fold(sub, |sub, id| sub.mut_arg(*id, |arg| arg.hide(true)))
        } else {
            sub
        }
    })
}

/// Parses the process's arguments with [`command`].
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let matches = command().try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let Some((_, sub)) = matches.subcommand()
        && let Ok(Some(threads)) = sub.try_get_one::<u16>("threads")
    {
        cli.threads = Some(*threads);
    }
    Ok(cli)
}

/// Formats of `--events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventFormat {
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Listen for connections (TCP or UNIX, plain or TLS) and relay stdio, echo, run a
    /// command per connection, or broker between clients.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Connect to a server (plain or TLS): stdin to the peer, the peer to stdout.
    #[command(after_help = CONNECT_EXAMPLES)]
    Connect(ConnectArgs),
    /// Relay between two endpoints: stdio, tcp, tcp-listen, tls, tls-listen, unix,
    /// unix-listen, exec, file, udp, udp-listen, unix-dgram, each with its own options.
    #[command(after_help = PIPE_EXAMPLES)]
    Pipe(Box<PipeArgs>),
    /// Make certificates for local and test TLS: a local CA and leaves signed by it, or a
    /// self-signed certificate.
    GenCert(crate::cmd::gen_cert::GenCertArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell or elvish) to stdout.
    Completions(crate::cmd::completions::CompletionsArgs),
}

const SERVE_EXAMPLES: &str = "\
Examples:
  streamtool serve 8080                          # one client, relayed to stdin/stdout (like nc -l)
  streamtool serve -k --echo 7000                # an echo server for many clients
  streamtool serve --tls 8443                    # TLS with a fresh certificate; prints its pins
  streamtool serve --tls --cert cert.pem --key key.pem --sh-exec 'tr a-z A-Z' 8443
  streamtool serve --broker --delimiter '\\n' 9000  # a line-based chat between clients

Exit codes: see `streamtool --help`.";

const CONNECT_EXAMPLES: &str = "\
Examples:
  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | streamtool connect example.com:80
  streamtool connect --tls --ca cert.pem localhost:8443
  streamtool connect --tls --pin sha256:3f2a... localhost:8443
  streamtool connect -z --tls --show-cert example.com:443   # handshake, show the certificate, exit
  streamtool connect --delimiter '\\r\\n' --max-frame 64KiB --encoding latin1 legacy:7000

Exit codes: see `streamtool --help`.";

const PIPE_EXAMPLES: &str = "\
Endpoints (options after commas, named as the serve/connect flags):
  -, stdio                 stdin and stdout
  tcp:HOST:PORT            tcp-listen:[HOST:]PORT (alias tcp-l)
  tls:HOST:PORT            tls-listen:[HOST:]PORT (alias tls-l)
  unix:PATH                unix-listen:PATH (alias unix-l)
  exec:CMD                 file:PATH
  udp:HOST:PORT            udp-listen:[HOST:]PORT (alias udp-l; fork: a session per peer)
  unix-dgram:PATH          (datagrams: docs/cli.md, \"Datagrams\")
Options:
  tls:         ca=F, pin=P, sni=N, no-sni, alpn=L, insecure, cert=F, key=F,
               tofu (trust on first use, as connect --tofu),
               starttls=PROTO (smtp, imap, ...), ehlo=NAME
  tls-listen:  cert=F, key=F (repeatable: by SNI), cert-dir=D, client-ca=F, alpn=L,
               require-client-cert, starttls=smtp, reload-on-change, keep-pin
  both TLS:    tls-min=V, tls-max=V, ragged-eof=P, keylog=F,
               handshake-timeout=DURATION (30s)
  listeners:   fork
  tcp-listen, tls-listen: accept-proxy, proxy-from=CIDR (PROXY protocol)
  connectors:  connect-timeout=DURATION
  tcp, tls:    proxy-protocol=v1|v2 (a PROXY header naming the accepted client)
  tcp:, tls:   proxy=URL (http://, socks5h://, socks5://, socks4a://)
  file:        create, append or truncate (writing)
  datagrams:   length-prefix (2-byte lengths instead of lines), delimiter=D, idle-timeout=D
  any:         delimiter=D, max-frame=SIZE, on-oversize=skip, encoding=NAME,
               decode-errors=MODE, crlf, on-eof=ACTION, idle-timeout=DURATION
Quote an endpoint with a backslash in it ('delimiter=\\r\\n'): the shell eats an
unquoted one.

Examples:
  streamtool pipe tls-listen:8443,fork,cert=c.pem,key=k.pem tcp:127.0.0.1:8080
  streamtool pipe tcp-listen:9000,fork tls:example.com:443
  streamtool pipe - file:out.bin,create
  streamtool pipe 'tcp-l:7000,delimiter=\\n' 'tcp:legacy:7001,delimiter=\\r\\n,encoding=latin1'
  streamtool pipe file:big.iso tcp:backup:9000 --progress

Exit codes: see `streamtool --help`.";

/// `streamtool pipe`.
#[derive(Debug, Args)]
pub struct PipeArgs {
    /// The first endpoint.
    #[arg(value_name = "A", allow_hyphen_values = true)]
    pub a: Endpoint,

    /// The second endpoint.
    #[arg(value_name = "B", allow_hyphen_values = true)]
    pub b: Endpoint,

    /// Fork: serve each connection of the listening endpoint with a fresh instance of the
    /// other (the `fork` endpoint option).
    #[arg(short = 'k', long)]
    pub fork: bool,

    /// With fork, at most N connections at once; more are closed on arrival.
    #[arg(long, value_name = "N", value_parser = streamtool::values::at_least_one)]
    pub max_conns: Option<usize>,

    /// Close a relay after this long with no data in either direction (exit 6 without
    /// fork); `none` for no limit. Default: 1h when an endpoint is tls-listen (a TLS
    /// terminator), else none. The idle-timeout= endpoint option sets it too.
    #[arg(long, value_name = "DURATION", value_parser = parse_idle_limit)]
    pub idle_timeout: Option<IdleLimit>,

    /// On SIGINT/SIGTERM with fork, let open connections finish for this long (a second
    /// signal closes them at once); SIGTERM gives a single relay as long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub grace: Duration,

    /// Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a
    /// terminal), always or never.
    #[arg(long, value_name = "WHEN", num_args = 0..=1, default_missing_value = "auto", require_equals = true)]
    pub progress: Option<ProgressWhen>,

    #[arg(skip)]
    pub verbose_summary: bool,
}

/// When `--progress` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressWhen {
    /// When stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// TLS settings shared by `serve`, `connect` and `pipe` endpoints.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Use TLS. The only flag that turns TLS on: every other TLS flag needs it.
    #[arg(long, alias = "ssl")]
    pub tls: bool,

    /// Certificate chain to present, PEM (for `connect`, a client certificate for mTLS). A
    /// server takes several, chosen by SNI: the FIRST is the default (no or unknown SNI). Needs --tls.
    #[arg(long, value_name = "FILE", alias = "ssl-cert")]
    pub cert: Vec<PathBuf>,

    /// Private key for --cert, PEM (PKCS#8, PKCS#1 or SEC1). Default: the --cert file.
    #[arg(long, value_name = "FILE", alias = "ssl-key", requires = "cert")]
    pub key: Vec<PathBuf>,

    /// Trust only these CA certificates (PEM bundle) instead of the system store, to verify
    /// the server (`connect`; `serve` verifies clients with --client-ca). A self-signed
    /// certificate listed here is trusted as itself. Needs --tls.
    #[arg(long, value_name = "FILE", visible_alias = "cacert", alias = "ssl-trustfile")]
    pub ca: Option<PathBuf>,

    /// Accept the server only if its certificate (cert pin) or public key (key pin) has this
    /// SHA-256 pin: sha256:HEX or sha256//BASE64. Without --ca the pin alone verifies.
    /// Repeatable. Needs --tls.
    #[arg(long, value_name = "sha256:HEX", value_parser = parsed::<Pin>)]
    pub pin: Vec<Pin>,

    /// Server name to send (SNI) and to verify; default: the host connected to.
    #[arg(long, value_name = "NAME", alias = "ssl-servername", conflicts_with = "no_sni", value_parser = streamtool::values::parse_sni)]
    pub sni: Option<String>,

    /// Send no SNI (the certificate is still verified against the host).
    #[arg(long)]
    pub no_sni: bool,

    /// ALPN protocols, comma-separated, most preferred first (e.g. h2,http/1.1).
    #[arg(long, value_name = "LIST", value_delimiter = ',', alias = "ssl-alpn", value_parser = streamtool::values::parse_alpn)]
    pub alpn: Vec<String>,

    /// Oldest TLS version to accept: 1.2 or 1.3.
    #[arg(long, value_name = "VERSION", value_parser = parsed::<TlsVersion>)]
    pub tls_min: Option<TlsVersion>,

    /// Newest TLS version to offer: 1.2 or 1.3.
    #[arg(long, value_name = "VERSION", value_parser = parsed::<TlsVersion>)]
    pub tls_max: Option<TlsVersion>,

    /// What a close without TLS close_notify means: strict (the default: an error, exit 5),
    /// warn, or ignore.
    #[arg(long, value_name = "POLICY", value_parser = parsed::<RaggedEofPolicy>)]
    pub ragged_eof: Option<RaggedEofPolicy>,

    /// Append TLS secrets to FILE for Wireshark (default: $SSLKEYLOGFILE if set).
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS flags of this group that were given, by name (each needs --tls).
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--cert", !self.cert.is_empty()),
            ("--key", !self.key.is_empty()),
            ("--ca", self.ca.is_some()),
            ("--pin", !self.pin.is_empty()),
            ("--sni", self.sni.is_some()),
            ("--no-sni", self.no_sni),
            ("--alpn", !self.alpn.is_empty()),
            ("--tls-min", self.tls_min.is_some()),
            ("--tls-max", self.tls_max.is_some()),
            ("--ragged-eof", self.ragged_eof.is_some()),
            ("--keylog", self.keylog.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// Framing and text settings shared by `serve`, `connect` and `pipe` endpoints.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Framing and text")]
pub struct ShapeArgs {
    /// Split incoming data into frames ending in D (escapes: \n, \r\n, \0, \xNN).
    #[arg(long, value_name = "D", value_parser = parse_delimiter_arg)]
    pub delimiter: Option<Delimiter>,

    /// Longest frame, delimiter excluded (e.g. 64KiB, 1M; default 1 MiB). Needs --delimiter.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "delimiter")]
    pub max_frame: Option<usize>,

    /// What to do with a longer frame: error (exit 7; the default) or skip it. Needs
    /// --delimiter.
    #[arg(long, value_name = "POLICY", value_parser = parse_oversize, requires = "delimiter")]
    pub on_oversize: Option<Oversize>,

    /// The peer's text encoding (utf-8, latin1, utf-16le, shift_jis, windows-1252, ...);
    /// the terminal side is UTF-8.
    #[arg(long, value_name = "NAME", value_parser = parsed::<TextEncoding>)]
    pub encoding: Option<TextEncoding>,

    /// Check the peer's text (UTF-8 unless --encoding says otherwise): strict (invalid
    /// text is an error, exit 7; the default with --encoding) or replace (with U+FFFD, and
    /// ? for characters the peer's encoding lacks).
    #[arg(long, value_name = "MODE", value_parser = parsed::<ErrorMode>)]
    pub decode_errors: Option<ErrorMode>,

    /// Turn LF into CRLF in what is sent to the peer.
    #[arg(long, short = 'C')]
    pub crlf: bool,

    #[command(flatten)]
    pub tap: streamtool::tap::args::TapArgs,
}

/// Timeouts and address families shared by `serve`, `connect` and `pipe`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Timeouts and addresses")]
pub struct NetArgs {
    /// Give up connecting after this long (e.g. 500ms, 5s, 2m).
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,

    /// Close a connection after this long with no data in either direction. connect, and
    /// serve without -k in every mode, then exit 6 with one line naming the peer and the
    /// timeout; serve -k closes only that connection.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Limit for the TLS handshake (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub handshake_timeout: Option<Duration>,

    /// IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,

    #[command(flatten)]
    pub service: streamtool::stack::service::ServiceArgs,
}

/// `streamtool connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Where to connect: HOST:PORT, [IPv6]:PORT or unix:PATH.
    #[arg(value_name = "ADDR")]
    pub addr: ConnectAddress,

    /// Skip certificate verification (a warning is printed). Needs --tls.
    #[arg(short = 'k', long, alias = "ssl-insecure")]
    pub insecure: bool,

    /// What the end of stdin does: half-close (TCP FIN; TLS close_notify, which nginx,
    /// ncat and OpenSSL servers take as the end of the whole connection), keep-open (send
    /// nothing, read until the peer ends, then close) or close (end and close, reading the
    /// peer's last bytes for at most 500ms). Default: half-close for TCP/UNIX, keep-open
    /// for TLS.
    #[arg(long, value_name = "ACTION", value_parser = parsed::<OnEof>, conflicts_with = "no_shutdown")]
    pub on_eof: Option<OnEof>,

    /// Same as --on-eof keep-open.
    #[arg(long)]
    pub no_shutdown: bool,

    /// Keep sending stdin after the peer ended its side also when stdin is a terminal (a
    /// pipe or a file is always sent to its end).
    #[arg(long, conflicts_with = "recv_only")]
    pub keep_sending: bool,

    /// Only send: what the peer sends is read and discarded.
    #[arg(long, conflicts_with = "recv_only")]
    pub send_only: bool,

    /// Only receive: stdin is not read, and the sending side is closed at once.
    #[arg(long)]
    pub recv_only: bool,

    /// Connect (and handshake, with TLS), report, and close.
    #[arg(short = 'z', long = "zero-io", conflicts_with_all = ["send_only", "recv_only", "keep_sending", "no_shutdown", "progress"])]
    pub zero_io: bool,

    /// Print the TLS version, cipher, key-exchange group, ALPN and the peer's certificates
    /// (with their cert and key pins) to stderr. Needs --tls.
    #[arg(long)]
    pub show_cert: bool,

    /// Trust on first use, as SSH does: record the server's key pin in the known-hosts file
    /// ($XDG_DATA_HOME/streamtool/known_hosts) on first contact, and refuse another key
    /// later (exit 4, both pins shown). With --ca the chain is verified too. Needs --tls.
    #[arg(long, conflicts_with_all = ["insecure", "pin"])]
    pub tofu: bool,

    /// Check the handshake before any data, and exit 4 naming each failed clause:
    /// tls>=1.3, tls=1.2, cipher=NAME, group=X25519, alpn=h2, expires>30d, key=rsa|ec|ed25519,
    /// key-bits>=2048, san=NAME, chain>=2, ocsp (an OCSP response stapled) (docs/tls.md,
    /// "Checks for scripts"). Repeatable; all must hold. Needs --tls.
    #[arg(long, value_name = "EXPR", value_parser = parsed::<Requirement>)]
    pub require: Vec<Requirement>,

    /// Negotiate TLS in the protocol's plaintext first (STARTTLS): smtp, lmtp, imap, pop3,
    /// ftp, xmpp, postgres or ldap; -v shows the exchange (docs/tls.md, "STARTTLS"). A
    /// server that does not offer it is exit 4. Needs --tls.
    #[arg(long, value_name = "PROTO", value_parser = parsed::<streamtool::stack::starttls::Protocol>)]
    pub starttls: Option<streamtool::stack::starttls::Protocol>,

    /// The name in SMTP's EHLO (LMTP's LHLO) [default: streamtool.localhost]. Needs
    /// --starttls smtp or lmtp.
    #[arg(long, value_name = "NAME", value_parser = parse_ehlo, requires = "starttls")]
    pub ehlo: Option<String>,

    /// Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a
    /// terminal), always or never.
    #[arg(long, value_name = "WHEN", num_args = 0..=1, default_missing_value = "auto", require_equals = true)]
    pub progress: Option<ProgressWhen>,

    /// Send a PROXY protocol header first (v1: the text line, v2: binary), naming this
    /// connection's own source and destination (a UNIX socket: LOCAL, or v1's UNKNOWN);
    /// docs/proxy-protocol.md.
    #[arg(long, value_name = "VERSION", value_parser = parsed::<streamtool::proxy_protocol::Version>)]
    pub proxy_protocol: Option<streamtool::proxy_protocol::Version>,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub shape: ShapeArgs,

    #[command(flatten)]
    pub net: NetArgs,

    #[command(flatten)]
    pub proxy: ProxyArgs,

    #[command(flatten)]
    pub udp: streamtool::job::datagram::args::ConnectDatagramArgs,
}

/// `connect`'s outbound proxy (streamtool::stack::proxy, docs/proxy.md).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Proxy")]
pub struct ProxyArgs {
    /// Connect through a proxy: http://[USER[:PASS]@]HOST:PORT (CONNECT), socks5h://...
    /// (the proxy resolves the name), socks5://... (resolved here) or socks4a://[USER@]...
    /// Without :PASS, the password is read from $STREAMTOOL_PROXY_PASSWORD. With --tls the
    /// TARGET's certificate and name are verified, never the proxy's. Credentials are never
    /// shown. The -w limit covers the whole proxy exchange (30s without -w).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Hosts reached directly, not through the proxy: a comma-separated list of names
    /// (each with its subdomains), addresses and CIDR blocks, or * for all.
    #[arg(long, value_name = "LIST", value_parser = parsed::<streamtool::stack::proxy::NoProxy>)]
    pub no_proxy: Option<streamtool::stack::proxy::NoProxy>,

    /// Take the proxy from the environment when --proxy is not given: $HTTPS_PROXY then
    /// $ALL_PROXY with --tls, $ALL_PROXY without (lower-case names too), excluding
    /// $NO_PROXY. Without this flag the environment is never read.
    #[arg(long)]
    pub proxy_env: bool,
}

fn parse_serve_starttls(s: &str) -> Result<streamtool::stack::starttls::Protocol, String> {
    match s.parse()? {
        streamtool::stack::starttls::Protocol::Smtp => Ok(streamtool::stack::starttls::Protocol::Smtp),
        other => Err(format!("serve speaks STARTTLS for smtp only, not {other}")),
    }
}

fn parse_ehlo(s: &str) -> Result<String, String> {
    streamtool::stack::starttls::check_ehlo_name(s).map(|()| s.to_string())
}

/// What `serve` does with each connection.
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
#[command(next_help_heading = "Mode (default: relay stdin/stdout)")]
pub struct ModeArgs {
    /// Send back what each client sends.
    #[arg(long)]
    pub echo: bool,

    /// Run CMD (no shell; split on spaces) per connection, wired to its stdin/stdout,
    /// with the client's address in STREAMTOOL_PEER (and STREAMTOOL_PEER_ADDR,
    /// STREAMTOOL_PEER_PORT); a TLS client's certificate in STREAMTOOL_CLIENT_SUBJECT,
    /// _CN, _SANS (comma-separated), _SPKI (its key pin).
    #[arg(long, short = 'e', value_name = "CMD")]
    pub exec: Option<String>,

    /// Run `sh -c CMD` per connection, wired to its stdin/stdout (environment as --exec).
    #[arg(long, short = 'c', value_name = "CMD")]
    pub sh_exec: Option<String>,

    /// Pass every client's data (whole frames with --delimiter) to every other client;
    /// serves many clients, as -k does.
    #[arg(long)]
    pub broker: bool,

    /// Read and drop everything.
    #[arg(long)]
    pub discard: bool,
}

/// `streamtool serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen: PORT (loopback only), HOST:PORT, [IPv6]:PORT, 0.0.0.0:PORT or
    /// unix:PATH. Default: a free port on loopback, printed on stderr.
    #[arg(value_name = "ADDR", default_value = "0")]
    pub addr: ListenAddress,

    /// Serve many clients at once instead of exiting after the first (stdin goes to all).
    #[arg(short = 'k', long)]
    pub keep_open: bool,

    #[command(flatten)]
    pub mode: ModeArgs,

    /// At most N connections at once; more are closed on arrival.
    #[arg(long, value_name = "N", value_parser = streamtool::values::at_least_one, alias = "max-conns")]
    pub max_conns: Option<usize>,

    /// Ask clients for a certificate and verify it against these CAs (PEM). Needs --tls.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,

    /// Refuse clients without a valid certificate. Needs --client-ca.
    #[arg(long, requires = "client_ca")]
    pub require_client_cert: bool,

    /// Speak SMTP until the client's STARTTLS, then TLS (smtp only; docs/tls.md,
    /// "STARTTLS"). Needs --tls.
    #[arg(long, value_name = "PROTO", value_parser = parse_serve_starttls)]
    pub starttls: Option<streamtool::stack::starttls::Protocol>,

    /// Show bytes, rate and elapsed time per direction on stderr: auto (when stderr is a
    /// terminal), always or never.
    #[arg(long, value_name = "WHEN", num_args = 0..=1, default_missing_value = "auto", require_equals = true)]
    pub progress: Option<ProgressWhen>,

    /// On SIGINT/SIGTERM, let open connections finish for this long (a second signal
    /// closes them at once).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub grace: Duration,

    /// What the end of stdin (or of a command's output) does to a client's connection:
    /// half-close (the default: TCP FIN, TLS close_notify), keep-open (send nothing, read
    /// until the client ends) or close.
    #[arg(long, value_name = "ACTION", value_parser = parsed::<OnEof>)]
    pub on_eof: Option<OnEof>,

    /// With -k (stdin to every client) or --broker: how far a client may fall behind the
    /// others (bytes queued for it) before it is disconnected, so that one client that
    /// does not read never stalls the rest. A single client is never cut: the sender
    /// waits for it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "4MiB")]
    pub max_lag: usize,

    /// Each connection starts with a PROXY protocol header (v1 or v2, as haproxy's
    /// send-proxy and send-proxy-v2 send it), read before any TLS handshake within
    /// --handshake-timeout; its client address is the peer of logs, events and --exec.
    /// Only from trusted proxies (--proxy-from; loopback by default); a connection from
    /// anywhere else, or with a malformed header, is closed with a line naming it.
    #[arg(long)]
    pub accept_proxy: bool,

    /// A proxy trusted to send PROXY headers: an address or ADDRESS/PREFIX (10.0.0.0/8).
    /// Repeatable; replaces the default (loopback). Needs --accept-proxy.
    #[arg(long, value_name = "CIDR", value_parser = parsed::<streamtool::proxy_protocol::Cidr>, requires = "accept_proxy")]
    pub proxy_from: Vec<streamtool::proxy_protocol::Cidr>,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub shape: ShapeArgs,

    #[command(flatten)]
    pub net: NetArgs,

    #[command(flatten)]
    pub reload: streamtool::stack::reload::ReloadArgs,

    #[command(flatten)]
    pub udp: streamtool::job::datagram::args::ServeDatagramArgs,
}

/// The one options value of a connection ([`EndpointOptions`], as `pipe` builds from an
/// endpoint's `k=v` options), from the flag groups `serve` and `connect` share. Defaults
/// are left unset: the library applies them (`streamtool::stack::options`).
fn endpoint_options(tls: &TlsArgs, shape: &ShapeArgs, net: &NetArgs) -> EndpointOptions {
    EndpointOptions {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        ca: tls.ca.clone(),
        pins: tls.pin.clone(),
        sni: tls.sni.clone(),
        no_sni: tls.no_sni,
        alpn: tls.alpn.clone(),
        tls_min: tls.tls_min,
        tls_max: tls.tls_max,
        ragged_eof: tls.ragged_eof,
        keylog: tls.keylog.clone(),
        delimiter: shape.delimiter.as_ref().map(|d| d.0.clone()),
        max_frame: shape.max_frame,
        on_oversize: shape.on_oversize,
        encoding: shape.encoding,
        decode_errors: shape.decode_errors,
        crlf: shape.crlf,
        connect_timeout: net.connect_timeout,
        handshake_timeout: net.handshake_timeout,
        idle_timeout: net.idle_timeout.map(|d| IdleLimit(Some(d))),
        tap: shape.tap.options(),
        ..net.service.options()
    }
}

impl ConnectArgs {
    /// The connection's options, from the flags.
    pub fn options(&self) -> EndpointOptions {
        EndpointOptions {
            insecure: self.insecure,
            proxy_protocol: self.proxy_protocol,
            starttls: self.starttls,
            ehlo: self.ehlo.clone(),
            ..endpoint_options(&self.tls, &self.shape, &self.net)
        }
    }
}

impl ServeArgs {
    /// Each connection's options, from the flags.
    pub fn options(&self) -> EndpointOptions {
        EndpointOptions {
            client_ca: self.client_ca.clone(),
            require_client_cert: self.require_client_cert,
            starttls: self.starttls,
            on_eof: self.on_eof,
            accept_proxy: self.accept_proxy,
            proxy_from: self.proxy_from.clone(),
            reload: self.reload.options(),
            ..endpoint_options(&self.tls, &self.shape, &self.net)
        }
    }
}

/// A parsed `--delimiter` (a newtype: clap would read a bare `Vec<u8>` as a list of bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delimiter(pub Vec<u8>);

fn parse_delimiter_arg(s: &str) -> Result<Delimiter, String> {
    parse_delimiter(s).map(Delimiter)
}

fn parse_oversize(s: &str) -> Result<Oversize, String> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Ok(Oversize::Error),
        "skip" => Ok(Oversize::Skip),
        _ => Err(format!("unknown policy {s:?} (expected error or skip)")),
    }
}

impl Cli {
    /// Logs go to stderr, never stdout (data only there). `RUST_LOG` wins over `-v`/`-q`.
    pub fn init_tracing(&self) {
        use tracing_subscriber::EnvFilter;
        // rustls logs what our own error message says again; keep it for -vv and up.
        let default = match (self.quiet, self.verbose) {
            (true, _) => "error,streamtool::insecure=warn",
            (false, 0) => "warn,rustls=error",
            (false, 1) => "info,rustls=error",
            (false, 2) => "debug",
            (false, _) => "trace",
        };
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            // Never fails, never panics: a closed stderr drops (and counts) log lines.
            .with_writer(crate::logwriter::StderrLog { keep_sgr: ansi })
            .with_target(false)
            .without_time()
            .with_ansi(ansi)
            .init();
    }
}

/// A value by its type's own parser (the library's `FromStr`, whose error says what is
/// wrong with it).
pub fn parsed<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
