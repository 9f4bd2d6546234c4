//! The jobs run on a connection once it is open: the building blocks every relay shares
//! (a command's life, cutting a connection short, how a direction ended, a discarding
//! sink). The two-direction engine is [`crate::relay::run_pair`].
//!
//! `serve`'s jobs per connection are in [`serve`] (echo, discard, a command, the
//! broadcast and the broker), with what the clients of one server share in [`broker`].

pub mod broker;
pub mod checks;
pub mod child;
pub mod cut;
pub mod datagram;
pub mod ends;
pub(crate) mod exec;
pub mod pipe;
pub mod serve;
pub mod stdio;

use bytes::Bytes;

/// A sink that drops everything (`--send-only`'s view of the peer's data, `--discard`).
pub struct Discard;

impl crate::streams::AsyncResource for Discard {
    async fn aclose(&mut self) -> crate::streams::Result<()> {
        Ok(())
    }
}
impl crate::streams::TypedAttributeProvider for Discard {}
impl crate::streams::ByteSendStream for Discard {
    async fn send(&mut self, _data: Bytes) -> crate::streams::Result<()> {
        Ok(())
    }
}

/// Logs and emits the end of one direction.
pub fn report_direction(
    report: &dyn crate::event::Report,
    peer: &(impl std::fmt::Display + ?Sized),
    direction: &str,
    flow: &crate::relay::Flow,
) {
    tracing::debug!(%peer, direction, bytes = flow.bytes_out, reason = %flow.reason(), "direction ended");
    report.emit(|| crate::event::Event::half_close(Some(peer.to_string()), direction, flow));
}

pub use crate::server::report_handshake;
