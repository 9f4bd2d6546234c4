//! How a direction ended, in the words the jobs decide by: a peer that left, a stream
//! cut short, a reader that went away.

use crate::relay::{Flow, FlowEnd, Side};
use crate::streams::StreamError;

/// Whether a flow ended because its stream was cut short: a TLS stream without
/// close_notify, or a peer that went away (a reset, a broken pipe). A relay passes that on
/// to a plain other side as a reset, never as a FIN. Bad data (an oversized frame, invalid
/// text) is not cut short: the frames before it were delivered, and a reset could make
/// the other side's kernel drop them unread.
pub fn cut_short(flow: &Flow) -> bool {
    matches!(&flow.end, FlowEnd::Failed(_, err) if matches!(err, StreamError::Truncated) || is_peer_gone(err))
}

/// Whether a direction ended only because the peer went away after a complete exchange:
/// writing (or closing, as a TLS close_notify) toward it met a broken pipe or a reset,
/// with everything read passed on. A probe (`connect -z`), a health check, a client that
/// reads nothing: an ordinary end, not a warning. Data lost or refused (bytes read but not
/// written, a read error, a bad frame) is not this.
pub fn peer_left(flow: &Flow) -> bool {
    let gone = |err: &StreamError| {
        matches!(err, StreamError::Broken(Some(cause)) if cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
        }))
    };
    matches!(&flow.end, FlowEnd::Failed(Side::Sink, err) if gone(err)) && flow.bytes_out == flow.bytes_in
}

/// Whether the peer went away (a reset, a broken pipe), as opposed to a TLS alert or bad data.
pub fn is_peer_gone(err: &StreamError) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    match err {
        StreamError::Broken(Some(cause)) => cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(e.kind(), ConnectionReset | BrokenPipe | ConnectionAborted) && e.get_ref().is_none()
        }),
        _ => false,
    }
}

/// Whether a write failed because the reader went away (EPIPE).
pub fn is_broken_pipe(err: &StreamError) -> bool {
    match err {
        StreamError::Broken(Some(cause)) => {
            cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        }
        _ => false,
    }
}
