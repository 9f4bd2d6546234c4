//! The end-of-stream interop matrix (issue 17) and the TLS interop with openssl: the real
//! binary or the library against peers nobody here wrote. `cargo test --test it interop::`
//! runs the area alone. The harness is `support::peers`.
//!
//! - `datagram`: UDP and UNIX datagrams (issue 21): `connect -u`, `serve -u` and pipe's
//!   `udp:`, `udp-listen:`, `unix-dgram:` with Python, ncat, socat and OpenBSD nc peers,
//!   the refusals, bounded memory under a flood.
//! - `knobs`: `--source`, `--keepalive`, `--reuse-port`, socket activation, `--retry`
//!   (issue 23) with ncat, ss and systemd-socket-activate.
//! - `mtls_allow`: client allow-lists for mTLS (issue 23): `--allow-cn`, `--allow-san`,
//!   `--allow-spki` and pipe's `allow-cn=` with s_client, curl and gnutls-cli client
//!   certificates, refusals, `STREAMTOOL_CLIENT_*`, a reload.
//! - `plain`: streamtool against itself, and ncat, socat and OpenBSD nc over plain TCP.
//! - `interop_tls`: the TLS peers (nginx, openssl, gnutls, ncat/socat over TLS).
//! - `interop_cases`: the numbered cases of issue 17, items 6 and 7 of issue 29, the leak
//!   test.
//! - `proxy`: connect --proxy and pipe's proxy= through microsocks and tinyproxy.
//! - `proxy_protocol`: the PROXY protocol (v1, v2) with haproxy, both ways, and its
//!   refusals.
//! - `service`: a TLS terminator as a service (issue 23): certificates chosen by SNI for
//!   openssl, gnutls-cli and curl, reloads on SIGHUP under a client loop, a broken key,
//!   `--keep-pin`, `reload-on-change`, the client CA reloaded, the `reload` event.
//! - `starttls`: connect --starttls, serve --starttls smtp and pipe's starttls= against
//!   aiosmtpd, dovecot, PostgreSQL, slapd, pyftpdlib, prosody, openssl and scripted peers.
//! - `tap`: `--pcap` read by tshark (plain HTTP with python's server, TLS 1.3 with
//!   s_server decrypted from the file alone, a pipe relay with curl, 100 MiB reassembled),
//!   `--dump` against hexdump -C, replay at a line server, the files' safety.
//! - `tls_interop`: the library's TLS client and server against `openssl s_server` and
//!   `s_client` with a seed certificate.

mod datagram;
mod interop_cases;
mod interop_tls;
mod knobs;
mod mtls_allow;
mod plain;
mod proxy;
mod proxy_protocol;
mod reload;
mod starttls;
mod tap;
mod tls_interop;
