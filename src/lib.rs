//! streamtool: socat, ncat, `openssl s_client` and mkcert in one binary, over one stream
//! library modelled on [AnyIO's streams](https://anyio.readthedocs.io/en/stable/streams.html).
//!
//! The binary (`src/bin/streamtool`) is a thin command-line layer; everything it does is a
//! stack of this library's layers: a transport, then optionally TLS, delimiter framing and
//! text decoding, then the job (relay, echo, exec, broker).
//!
//! # Layout
//! - [`streams`]: the AnyIO-style layer. Traits and the error type, memory object streams,
//!   stapled, buffered and text streams, delimiter framing, tokio interop (no sockets in
//!   these), and the transports: TCP, UNIX, TLS, child processes, files, stdio.
//! - [`stack`]: one options value per endpoint and what is built from it (TLS settings,
//!   shaping, defaults); opening a client's connection.
//! - [`job`]: what runs on an open connection: the stdio session, `pipe`'s relay, `serve`'s
//!   modes (echo, exec, broker, discard).
//! - [`server`]: the accept loop with limits, back-off and graceful shutdown; the first
//!   client's accept; [`shutdown`]: signals for a graceful stop.
//! - [`event`]: the typed `--events json` schema and the `Report` jobs send it through.
//! - [`relay`]: one direction of a relay, raw or shaped; [`splice`]: the zero-copy path;
//!   [`stdio_fd`]: stdin and stdout for it, off tokio's blocking pool.
//! - [`endpoint`]: command-line addresses and `pipe`'s endpoint grammar.
//! - [`certs`]: loading PEM files, making certificates.
//! - [`values`]: parsers for sizes, durations, idle limits and delimiters.
//! - [`escape`]: escaping control characters of text a peer or a certificate controls;
//!   [`words`]: dependencies' Debug-shaped error text (and clap's usage errors) put into
//!   words; [`manpage`]: man pages from the clap definition.
//! - [`platform`] (in `streams`, the bottom layer, re-exported here): what differs between Linux, macOS, FreeBSD and Windows (helpers, the
//!   features a platform lacks and their one-line refusals); `docs/platforms.md`.
//!
//! Dependencies point one way: binary -> job -> server -> stack -> (relay, splice, event,
//! certs, endpoint, ...) -> streams.
//! `docs/architecture.md` has the module map.

pub mod certs;
pub mod endpoint;
pub mod escape;
pub mod event;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod job;
pub mod manpage;
pub use streams::platform;
pub mod proxy_protocol;
pub mod relay;
pub mod server;
pub mod shutdown;
pub mod splice;
pub mod stack;
#[cfg(unix)]
pub mod stdio_fd;
#[cfg(not(unix))]
#[path = "stdio_fd_absent.rs"]
pub mod stdio_fd;
pub mod streams;
pub mod tap;
pub mod values;
pub mod words;
