//! The integration test binary: one binary, a module per area.
//!
//! Tests that reproduce an AnyIO scenario say so in a comment with the scenario number
//! from `shared/spec/anyio-streams.md` §7 ("scenario 12", "D3"). Every test that could hang
//! runs under a timeout.

mod support;

mod buffered;
mod certs;
mod cli_connect;
mod cli_exit_codes;
mod cli_flags;
mod cli_serve;
mod cli_support;
mod endpoints;
mod faults;
mod framing;
mod fuzz_props;
mod gen_cert;
mod io_interop;
mod memory;
mod pipe;
mod props;
mod secrets;
mod server;
mod shell;
mod soak;
mod sockets;
mod stapled;
mod stdio_fast;
mod stress;
mod text;
mod tls;
mod tls_interop;
