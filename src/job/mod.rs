//! The jobs run on a connection once it is open: the building blocks every relay shares
//! (a command's life, cutting a connection short, how a direction ended, a discarding
//! sink). The two-direction engine is [`crate::relay::run_pair`].

pub mod child;
pub mod cut;
pub mod ends;
pub mod pipe;
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

/// Logs and emits what a TLS handshake negotiated.
pub fn report_handshake<IO>(
    stream: &crate::streams::tls::TlsStream<IO>,
    report: &dyn crate::event::Report,
    peer: &(impl std::fmt::Display + ?Sized),
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let version = stream.protocol_version().map(|v| v.to_string()).unwrap_or_default();
    let cipher = stream.cipher_suite().unwrap_or_default();
    let alpn = stream.alpn_protocol().map(|p| String::from_utf8_lossy(&p).into_owned());
    tracing::info!(%peer, %version, %cipher, alpn = alpn.as_deref().unwrap_or("-"), "TLS handshake done");
    let certs = stream.peer_certificates();
    report.emit(|| crate::event::Event::Handshake {
        peer: peer.to_string(),
        tls_version: version,
        cipher,
        alpn,
        sni: stream.server_name(),
        peer_certificate: certs.first().map(|c| crate::certs::certificate_json(c.as_ref())),
    });
}
