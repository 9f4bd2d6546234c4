//! The integration test binary: one binary, a module per area.
//!
//! Tests that reproduce an AnyIO behaviour say so in a comment with its number in the
//! AnyIO behaviour specification the library was built against ("scenario 12", "D3"; see
//! docs/design.md §3). Every test that could hang runs under a timeout.
//!
//! The end-of-stream interop matrix against real peers (issue 17) is `interop`,
//! `interop_tls` and `interop_cases`: `cargo test --test it interop -- --skip io_interop
//! --skip tls_interop` runs it alone (about two minutes on two cores).

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
mod hardening;
mod interop;
mod interop_cases;
mod interop_tls;
mod io_interop;
mod layering;
mod memory;
mod newcomer;
mod pipe;
mod promises;
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
