//! The real binary (`CARGO_BIN_EXE_streamtool`), run as a user runs it: flags, exit codes,
//! messages, `serve`, `connect`, `pipe`, `gen-cert`, the documented recipes, signals,
//! hostile peers, secrets, the fast stdio paths. Helpers: `support::cli`.

mod checks;
mod cli_connect;
mod cli_exit_codes;
mod cli_flags;
mod cli_serve;
mod cli_tls;
mod faults;
mod gen_cert;
mod gen_cert_ca;
mod gen_cert_clients;
mod hardening;
pub(crate) mod newcomer;
mod pipe;
mod promises;
mod secrets;
mod shell;
mod static_build;
// splice(2), sendfile(2) and the /proc reopening: Linux's fast paths.
#[cfg(target_os = "linux")]
mod stdio_fast;
