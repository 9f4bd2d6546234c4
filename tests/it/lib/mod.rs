//! The library, in-process: streams and their layers, sockets, the accept loop, TLS,
//! certificates, endpoints, property tests, and the layering rule.

mod buffered;
mod certs;
mod datagram;
mod endpoints;
mod framing;
mod fuzz_props;
mod layering;
mod memory;
mod props;
mod server;
mod sockets;
mod stapled;
mod text;
mod tls;
mod tokio_io;
