//! What a subcommand builds on one endpoint, from one options value.
//!
//! `serve` and `connect` take flags, `pipe` takes `k=v` options on each endpoint; both are
//! turned into one [`EndpointOptions`](crate::endpoint::EndpointOptions), and everything
//! built from it (TLS settings, the shaping of each direction, timeouts) is built here,
//! once, with every default in [`options`].

pub mod open;
pub mod options;
pub mod proxy;
pub mod reload;
pub mod require;
pub mod service;
pub mod starttls;
pub mod tofu;

pub use options::{HANDSHAKE_TIMEOUT, MAX_FRAME, OptionsError, Spelling, shaping};
