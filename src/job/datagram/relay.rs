//! Relaying datagrams: to and from a byte stream, between two datagram endpoints, back
//! to their sender (echo) or nowhere (discard).

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Counters, DatagramEnd, Framing, Inbound, Outbound, Splitter};
use crate::job::pipe::{Reader, Writer};
use crate::relay::Activity;
use crate::streams::StreamError;

/// How a datagram relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Between datagrams and the byte side.
    pub framing: Framing,
    /// No datagram and no byte either way for this long ends the relay.
    pub idle: Option<Duration>,
    /// After the byte side's end: how long replies are still awaited (the wait restarts
    /// with each datagram); `None`: until the idle time, or for ever.
    pub linger: Option<Duration>,
}

/// How a datagram relay ended (its errors are returned instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The byte side ended and no datagram came for the linger time after it.
    Done,
    /// Nothing moved for the idle time.
    Idle,
    /// The byte side stopped taking data (a closed stdout, a command that exited) and
    /// its output ended.
    OutputClosed,
    /// The server ended the session (shutdown).
    Closed,
}

impl Ending {
    /// In words, for events.
    pub fn reason(self) -> &'static str {
        match self {
            Ending::Done => "done",
            Ending::Idle => "idle timeout",
            Ending::OutputClosed => "output closed",
            Ending::Closed => "server shutdown",
        }
    }
}

async fn send_counted(outbound: &Outbound, counters: &Counters, datagram: &[u8]) -> Result<(), StreamError> {
    outbound.send(datagram).await?;
    Counters::add(&counters.sent, 1);
    Counters::add(&counters.bytes_sent, datagram.len() as u64);
    Ok(())
}

/// A send whose failure drops the datagram (counted, with a warning) unless the peer is
/// gone for good (a refusal), which is returned.
async fn send_or_drop(outbound: &Outbound, counters: &Counters, datagram: &[u8]) -> Result<(), StreamError> {
    match send_counted(outbound, counters, datagram).await {
        Err(err @ StreamError::Connect { .. }) => Err(err),
        Err(err) => {
            tracing::warn!("{err}: dropped");
            Counters::add(&counters.dropped, 1);
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

fn is_closed_output(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
}

/// Relays between `end` and a byte stream (`reader`, `writer`): each datagram written
/// framed, the bytes read cut into datagrams by `options.framing`. The byte side stays
/// the caller's (to close after recording why the relay ended).
///
/// # Errors
/// The byte side's read error; an oversized datagram from the byte side (never cut); the
/// datagram socket's failure (a refusal).
pub async fn relay_bytes(
    end: &mut DatagramEnd,
    reader: &mut Reader,
    writer: &mut Writer,
    options: &RelayOptions,
) -> Result<Ending, StreamError> {
    let activity = Activity::default();
    let DatagramEnd { inbound, outbound, counters, failure, .. } = end;
    let (outbound, counters) = (&*outbound, &**counters);
    let down = write_datagrams(inbound, writer, &options.framing, &activity);
    let up = read_datagrams(reader, outbound, counters, &options.framing, &activity);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    loop {
        let wait = match (up_done || down_done, options.idle, options.linger) {
            (true, Some(idle), Some(linger)) => Some(idle.min(linger)),
            (true, None, Some(linger)) => Some(linger),
            (_, idle, _) => idle,
        };
        tokio::select! {
            result = &mut up, if !up_done => {
                result?;
                up_done = true;
                if down_done {
                    return Ok(Ending::OutputClosed);
                }
            }
            result = &mut down, if !down_done => {
                down_done = true;
                if let Some(err) = failure.lock().take() {
                    return Err(err);
                }
                match result {
                    Ok(()) if !up_done => return Ok(Ending::Closed),
                    Ok(()) => return Ok(Ending::Done),
                    Err(err) if is_closed_output(&err) => {
                        if up_done {
                            return Ok(Ending::OutputClosed);
                        }
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            () = idle_for(&activity, wait) => {
                return Ok(if up_done || down_done { Ending::Done } else { Ending::Idle });
            }
        }
    }
}

async fn idle_for(activity: &Activity, limit: Option<Duration>) {
    match limit {
        Some(limit) => activity.idle_for(limit).await,
        None => std::future::pending().await,
    }
}

/// Sends each datagram back to its sender (`back`), or drops it (`serve -u --discard`),
/// until nothing comes for `idle`.
///
/// # Errors
/// A refusal (the peer's port closed).
pub async fn echo(end: &mut DatagramEnd, idle: Option<Duration>, back: bool) -> Result<Ending, StreamError> {
    let DatagramEnd { inbound, outbound, counters, .. } = end;
    loop {
        let next = match idle {
            Some(idle) => match tokio::time::timeout(idle, inbound.recv()).await {
                Ok(next) => next,
                Err(_) => return Ok(Ending::Idle),
            },
            None => inbound.recv().await,
        };
        let Some(datagram) = next else { return Ok(Ending::Closed) };
        if back {
            send_or_drop(outbound, counters, &datagram).await?;
        }
    }
}

/// Relays whole datagrams between `a` and `b`, both ways, until nothing moves for
/// `idle` (or either socket fails).
///
/// # Errors
/// Either socket's failure (a refusal).
pub async fn relay_datagrams(
    a: &mut DatagramEnd,
    b: &mut DatagramEnd,
    idle: Option<Duration>,
) -> Result<Ending, StreamError> {
    let activity = Activity::default();
    let result = tokio::select! {
        r = one_way(&mut a.inbound, &b.outbound, &b.counters, &activity) => r.map(|()| Ending::Closed),
        r = one_way(&mut b.inbound, &a.outbound, &a.counters, &activity) => r.map(|()| Ending::Closed),
        () = idle_for(&activity, idle) => Ok(Ending::Idle),
    };
    for end in [&*a, &*b] {
        if let Some(err) = end.take_failure() {
            return Err(err);
        }
    }
    result
}

async fn one_way(
    from: &mut Inbound,
    to: &Outbound,
    counters: &Counters,
    activity: &Activity,
) -> Result<(), StreamError> {
    while let Some(datagram) = from.recv().await {
        activity.touch();
        send_or_drop(to, counters, &datagram).await?;
    }
    Ok(())
}

/// The datagrams of `inbound`, framed, to the byte side; closes it at the end.
async fn write_datagrams(
    inbound: &mut Inbound,
    writer: &mut Writer,
    framing: &Framing,
    activity: &Activity,
) -> io::Result<()> {
    let mut out = BytesMut::new();
    while let Some(datagram) = inbound.recv().await {
        activity.touch();
        out.clear();
        framing.encode(&datagram, &mut out);
        writer.write_all(&out).await?;
        writer.flush().await?;
    }
    let _ = writer.shutdown().await;
    Ok(())
}

/// The byte side cut into datagrams by `framing` and sent, the rest at its end.
async fn read_datagrams(
    reader: &mut Reader,
    outbound: &Outbound,
    counters: &Counters,
    framing: &Framing,
    activity: &Activity,
) -> Result<(), StreamError> {
    let mut splitter = Splitter::new(framing.clone(), outbound.max());
    let mut buf = vec![0u8; 64 * 1024];
    let name = |err| match err {
        StreamError::OversizedDatagram { size, max, .. } => {
            StreamError::OversizedDatagram { size, max, peer: Some(outbound.peer()) }
        }
        other => other,
    };
    loop {
        let n = reader.read(&mut buf).await?;
        activity.touch();
        if n == 0 {
            if let Some(datagram) = splitter.finish().map_err(name)? {
                send_counted(outbound, counters, &datagram).await?;
            }
            return Ok(());
        }
        splitter.push(&buf[..n]);
        while let Some(datagram) = splitter.next_datagram().map_err(name)? {
            send_counted(outbound, counters, &datagram).await?;
        }
    }
}
