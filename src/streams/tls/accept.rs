//! The server side of a TLS handshake with a client just accepted, for the command line:
//! one failure, one reason, worded to follow `TLS handshake with PEER failed: `. A client
//! that does not speak TLS at all (plain HTTP, another protocol, a TLS record other than a
//! ClientHello) is named as such from its first bytes, which say more than rustls' words
//! for them ("corrupt message of type InvalidContentType").

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use super::{RaggedEofPolicy, TlsStream};
use crate::streams::error::{self, Phase, StreamError};
use crate::streams::listener::Connection;

/// Runs the server side of a TLS handshake with a client just accepted, within `limit`.
/// On failure, returns why, worded to follow `TLS handshake with PEER failed: `; a client
/// that does not speak TLS at all (plain HTTP, or anything else) is named as such.
pub async fn accept_tls(
    raw: Connection,
    config: Arc<ServerConfig>,
    policy: RaggedEofPolicy,
    limit: Duration,
) -> std::result::Result<TlsStream<Connection>, String> {
    let mut first = [0u8; 8];
    let mut seen = 0;
    let handshake = async {
        // Look at (without taking) the client's first bytes: they tell a TLS client from
        // one that sent plain HTTP to this port.
        if let Connection::Tcp(tcp) = &raw
            && let Some(socket) = tcp.get_ref()
        {
            seen = socket.peek(&mut first).await.unwrap_or(0);
        }
        TlsStream::accept(raw, config, policy).await
    };
    let err = match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(tls)) => return Ok(tls),
        Ok(Err(err)) => err,
        Err(_) => StreamError::Timeout { phase: Phase::Handshake, after: limit },
    };
    let chain = |e: &dyn std::error::Error| error::chain(e);
    Err(match &err {
        // rustls' own words for a client that is not speaking TLS ("corrupt message of
        // type InvalidContentType") say less than its first bytes do.
        StreamError::Tls { source, .. } => not_tls(&first[..seen]).unwrap_or_else(|| chain(source.as_ref())),
        StreamError::Timeout { after, .. } => {
            format!("timed out after {}", error::format_duration(*after))
        }
        StreamError::EndOfStream => "the client closed the connection".to_string(),
        StreamError::Broken(Some(cause)) => chain(cause.as_ref()),
        other => chain(other),
    })
}

/// What a client that is not speaking TLS sent, from its first bytes; `None` if they
/// start a TLS handshake record (or nothing was seen). Go's crypto/tls looks for plain
/// HTTP the same way.
fn not_tls(first: &[u8]) -> Option<String> {
    const HTTP_METHODS: [&[u8]; 9] =
        [b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ", b"TRACE "];
    const HANDSHAKE_RECORD: u8 = 0x16;
    if first.first().is_none_or(|&b| b == HANDSHAKE_RECORD) {
        return None;
    }
    if let Some(record) = tls_record_kind(first) {
        return Some(record);
    }
    // A method (and its space), or as much of one as arrived in the first read.
    let http =
        first.len() >= 3 && HTTP_METHODS.iter().any(|m| m.starts_with(&first[..first.len().min(m.len())]));
    if http {
        return Some("the client sent plain HTTP, not TLS".to_string());
    }
    let hex: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("the client does not speak TLS (its first bytes: {})", hex.join(" ")))
}

/// A TLS record other than a handshake as a client's first bytes (an alert, a
/// ChangeCipherSpec, application data): a TLS peer, but one that did not start with a
/// ClientHello. Named as what it is, not as "does not speak TLS".
fn tls_record_kind(first: &[u8]) -> Option<String> {
    let (&kind, rest) = first.split_first()?;
    // Record header: type, version 3.x, length.
    if rest.first().is_some_and(|&major| major != 3) {
        return None;
    }
    Some(match kind {
        0x15 => match first.get(5..7) {
            Some(&[level, description]) => format!(
                "the client sent a TLS alert ({} {}) instead of a ClientHello",
                if level == 2 { "fatal" } else { "warning" },
                alert_name(description)
            ),
            _ => "the client sent a TLS alert instead of a ClientHello".to_string(),
        },
        0x14 => "the client sent a TLS ChangeCipherSpec record instead of a ClientHello".to_string(),
        0x17 => "the client sent TLS application data before any handshake".to_string(),
        _ => return None,
    })
}

/// An alert description's name (RFC 8446 §6), or its number.
fn alert_name(description: u8) -> String {
    let name = match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        46 => "certificate_unknown",
        48 => "unknown_ca",
        50 => "decode_error",
        70 => "protocol_version",
        80 => "internal_error",
        90 => "user_canceled",
        112 => "unrecognized_name",
        _ => return format!("alert {description}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_hello_or_nothing_is_not_diagnosed() {
        assert_eq!(not_tls(b""), None);
        assert_eq!(not_tls(&[0x16, 3, 1, 0, 0xc8]), None);
    }

    #[test]
    fn plain_http_is_named_even_from_a_partial_method() {
        let http = Some("the client sent plain HTTP, not TLS".to_string());
        assert_eq!(not_tls(b"GET / HT"), http);
        assert_eq!(not_tls(b"OPTIONS "), http);
        assert_eq!(not_tls(b"DEL"), http);
        assert_eq!(
            not_tls(b"GE"),
            Some("the client does not speak TLS (its first bytes: 47 45)".to_string())
        );
    }

    #[test]
    fn other_bytes_are_shown_in_hex() {
        assert_eq!(
            not_tls(b"SSH-2.0-"),
            Some("the client does not speak TLS (its first bytes: 53 53 48 2d 32 2e 30 2d)".to_string())
        );
    }

    #[test]
    fn tls_records_other_than_a_handshake_are_named() {
        assert_eq!(
            not_tls(&[0x15, 3, 3, 0, 2, 2, 40]),
            Some(
                "the client sent a TLS alert (fatal handshake_failure) instead of a ClientHello".to_string()
            )
        );
        assert_eq!(
            not_tls(&[0x15, 3, 3, 0, 2, 1, 0]),
            Some("the client sent a TLS alert (warning close_notify) instead of a ClientHello".to_string())
        );
        assert_eq!(
            not_tls(&[0x15, 3, 3]),
            Some("the client sent a TLS alert instead of a ClientHello".to_string())
        );
        assert_eq!(
            not_tls(&[0x14, 3, 3, 0, 1, 1]),
            Some("the client sent a TLS ChangeCipherSpec record instead of a ClientHello".to_string())
        );
        assert_eq!(
            not_tls(&[0x17, 3, 3, 0, 5]),
            Some("the client sent TLS application data before any handshake".to_string())
        );
        // The same first byte without a TLS version after it is not a record.
        assert_eq!(tls_record_kind(&[0x15, 0x41]), None);
    }

    #[test]
    fn alerts_are_named_or_numbered() {
        assert_eq!(alert_name(48), "unknown_ca");
        assert_eq!(alert_name(201), "alert 201");
    }
}
