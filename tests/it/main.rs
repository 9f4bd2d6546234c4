//! The integration test binary: one binary, a module per area.
//!
//! Tests that reproduce an AnyIO scenario say so in a comment with the scenario number
//! from `shared/spec/anyio-streams.md` §7 ("scenario 12", "D3"). Every test that could hang
//! runs under a timeout.

mod support;

mod buffered;
mod certs;
mod framing;
mod io_interop;
mod memory;
mod props;
mod server;
mod sockets;
mod stapled;
mod stress;
mod text;
mod tls;
mod tls_interop;
