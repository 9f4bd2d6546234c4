//! streamtool: socat, ncat, `openssl s_client` and mkcert in one binary, over one stream
//! library modelled on [AnyIO's streams](https://anyio.readthedocs.io/en/stable/streams.html).
//!
//! The binary (`src/bin/streamtool`) is a thin command-line layer; everything it does is a
//! stack of this library's layers: a transport, then optionally TLS, delimiter framing and
//! text decoding, then the job (relay, echo, exec, broker).
//!
//! # Layout
//! - [`streams`]: the AnyIO-style layer. Traits and the error type, memory object streams,
//!   stapled, buffered and text streams, delimiter framing, tokio interop. No clap, no
//!   anyhow, no sockets in its in-memory parts.
//!
//! Dependencies point one way: binary -> (endpoint, server, certs) -> streams.
//! `docs/architecture.md` has the module map.

pub mod certs;
pub mod endpoint;
pub mod relay;
pub mod server;
pub mod splice;
pub mod streams;
pub mod values;
