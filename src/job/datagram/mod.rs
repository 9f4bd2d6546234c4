//! Datagram endpoints in the tool: `connect -u`, `serve -u` and `pipe`'s `udp:`,
//! `udp-listen:` and `unix-dgram:` (docs/cli.md, "Datagrams").
//!
//! A datagram endpoint ([`DatagramEnd`]) is its datagrams coming in (a bounded queue,
//! [`Inbound`]) and a way to send them ([`Outbound`]). A relay moves whole datagrams
//! between two such endpoints, or meets a byte stream through a [`Framing`]. Everything
//! is bounded: a queue holds at most [`QUEUE_DATAGRAMS`] datagrams and
//! [`QUEUE_BYTES`] bytes, what does not fit is dropped and counted ([`Counters`]).

pub mod args;
pub mod command;
mod framing;
pub mod pipe;
mod relay;
pub mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

pub use framing::{Framing, Splitter};
pub use relay::{Ending, RelayOptions, echo, relay_bytes, relay_datagrams};

use crate::streams::datagram::{
    ConnectedUdpSocket, ConnectedUnixDatagramSocket, MAX_DATAGRAM, max_udp_payload, send_to,
};
use crate::streams::{StreamError, UnreliableObjectReceiveStream};

/// The most datagrams one endpoint's queue holds.
pub const QUEUE_DATAGRAMS: usize = 256;
/// The most bytes one endpoint's queue holds.
pub const QUEUE_BYTES: usize = 256 * 1024;

/// What one datagram endpoint moved and dropped.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams received from the network.
    pub received: AtomicU64,
    /// Datagrams sent to the network.
    pub sent: AtomicU64,
    /// Bytes received.
    pub bytes_received: AtomicU64,
    /// Bytes sent.
    pub bytes_sent: AtomicU64,
    /// Datagrams dropped: the queue was full (the other side too slow), or oversized.
    pub dropped: AtomicU64,
}

impl Counters {
    /// A snapshot: (received, sent, bytes received, bytes sent, dropped).
    pub fn snapshot(&self) -> [u64; 5] {
        [&self.received, &self.sent, &self.bytes_received, &self.bytes_sent, &self.dropped]
            .map(|c| c.load(Ordering::Relaxed))
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The sending half of an endpoint's queue: the socket's reader offers datagrams to it.
#[derive(Debug, Clone)]
pub struct InboundTx {
    tx: mpsc::Sender<Bytes>,
    queued: Arc<AtomicUsize>,
    counters: Arc<Counters>,
}

impl InboundTx {
    /// Queues `datagram`, or drops and counts it if the queue is full. `false` once the
    /// receiving side is gone.
    pub fn offer(&self, datagram: Bytes) -> bool {
        Counters::add(&self.counters.received, 1);
        Counters::add(&self.counters.bytes_received, datagram.len() as u64);
        let len = datagram.len();
        if self.queued.load(Ordering::Relaxed) + len > QUEUE_BYTES {
            Counters::add(&self.counters.dropped, 1);
            return !self.tx.is_closed();
        }
        match self.tx.try_send(datagram) {
            Ok(()) => {
                self.queued.fetch_add(len, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::add(&self.counters.dropped, 1);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Counts a datagram dropped before it reached the queue.
    pub fn drop_one(&self) {
        Counters::add(&self.counters.dropped, 1);
    }
}

/// The receiving half of an endpoint's queue.
#[derive(Debug)]
pub struct Inbound {
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Inbound {
    /// The next datagram; `None` once every sender is gone (the socket failed, or the
    /// server ended the session).
    pub async fn recv(&mut self) -> Option<Bytes> {
        let datagram = self.rx.recv().await?;
        self.queued.fetch_sub(datagram.len(), Ordering::Relaxed);
        Some(datagram)
    }
}

/// A bounded queue for one endpoint, counting into `counters`.
pub fn queue(counters: Arc<Counters>) -> (InboundTx, Inbound) {
    let (tx, rx) = mpsc::channel(QUEUE_DATAGRAMS);
    let queued = Arc::new(AtomicUsize::new(0));
    (InboundTx { tx, queued: queued.clone(), counters }, Inbound { rx, queued })
}

/// Where the replies of a session shared by every peer go: the peer heard from last
/// (`serve -u -k` in stdio mode).
pub type LastPeer = Arc<parking_lot::Mutex<Option<Outbound>>>;

/// Where an endpoint's datagrams go.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A UDP socket: connected (`true`), or shared by a server and sending to a peer.
    Udp(Arc<tokio::net::UdpSocket>, SocketAddr, bool),
    /// A connected UNIX datagram socket.
    Unix(crate::streams::datagram::UnixSender, PathBuf),
    /// A UNIX datagram server's socket, answering a peer.
    UnixTo(crate::streams::datagram::UnixReplier, crate::streams::datagram::UnixPeer),
    /// The peer heard from last, through the socket it used; nothing is sent before a
    /// peer has been heard from.
    Last(LastPeer),
    /// A sender that cannot be answered (an unnamed UNIX socket): every send fails.
    Nowhere,
}

impl Outbound {
    /// The largest datagram this path takes.
    pub fn max(&self) -> usize {
        match self {
            Outbound::Udp(_, peer, _) => max_udp_payload(peer),
            Outbound::Last(last) => last.lock().as_ref().map_or(MAX_DATAGRAM, Outbound::max),
            Outbound::Unix(..) | Outbound::UnixTo(..) | Outbound::Nowhere => MAX_DATAGRAM,
        }
    }

    /// The peer's name in messages.
    pub fn peer(&self) -> String {
        match self {
            Outbound::Udp(_, peer, _) => format!("udp:{peer}"),
            Outbound::Unix(_, path) => format!("unix-dgram:{}", path.display()),
            Outbound::UnixTo(_, peer) => format!("unix-dgram:{peer}"),
            Outbound::Last(last) => last.lock().as_ref().map_or("no peer yet".into(), Outbound::peer),
            Outbound::Nowhere => "an unnamed UNIX socket".into(),
        }
    }

    /// Sends one datagram.
    ///
    /// # Errors
    /// [`StreamError::OversizedDatagram`] (nothing sent); [`StreamError::Connect`] for a
    /// refusal (ICMP port unreachable, a UNIX peer gone) on a connected socket; the OS's
    /// error otherwise.
    pub async fn send(&self, datagram: &[u8]) -> Result<(), StreamError> {
        if datagram.len() > self.max() {
            return Err(StreamError::OversizedDatagram {
                size: datagram.len(),
                max: self.max(),
                peer: Some(self.peer()),
            });
        }
        let refused = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => StreamError::Connect { target: self.peer(), source: e },
            _ => StreamError::from(e),
        };
        match self {
            Outbound::Udp(socket, peer, false) => send_to(socket, datagram, *peer).await,
            Outbound::Udp(socket, _, true) => socket.send(datagram).await.map(drop).map_err(refused),
            Outbound::Unix(socket, _) => socket.send(datagram).await.map(drop).map_err(refused),
            Outbound::UnixTo(replier, peer) => replier.send_to(datagram, peer).await,
            Outbound::Last(last) => {
                let target = last.lock().clone();
                match target {
                    Some(target) => Box::pin(target.send(datagram)).await,
                    None => Err(StreamError::Unsupported("no peer has sent a datagram yet".into())),
                }
            }
            Outbound::Nowhere => Err(StreamError::Unsupported(
                "an unnamed UNIX socket cannot be answered (bind the client to a path)".into(),
            )),
        }
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An opened datagram endpoint: datagrams in, datagrams out.
#[derive(Debug)]
pub struct DatagramEnd {
    /// Its name in messages and events (`udp:127.0.0.1:53`, a peer).
    pub name: String,
    /// What arrives.
    pub inbound: Inbound,
    /// Where datagrams go.
    pub outbound: Outbound,
    /// What it moved and dropped.
    pub counters: Arc<Counters>,
    /// The error that ended its socket's reader (a refusal), if one did.
    pub failure: Arc<parking_lot::Mutex<Option<StreamError>>>,
    /// The socket's reader (for a connected socket; a server's sessions have none).
    pub reader: Option<AbortOnDrop>,
}

impl DatagramEnd {
    /// A session of a server: fed by the server, sending through `outbound`.
    pub fn session(name: String, outbound: Outbound) -> (InboundTx, DatagramEnd) {
        let counters = Arc::new(Counters::default());
        let (tx, inbound) = queue(counters.clone());
        let end =
            DatagramEnd { name, inbound, outbound, counters, failure: Default::default(), reader: None };
        (tx, end)
    }

    /// A connected UDP socket, its reader started.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if it was closed.
    pub fn udp(socket: ConnectedUdpSocket) -> Result<DatagramEnd, StreamError> {
        let outbound = Outbound::Udp(socket.shared()?, socket.peer(), true);
        Ok(Self::with_reader(outbound.peer(), outbound, socket))
    }

    /// A connected UNIX datagram socket, its reader started.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if it was closed.
    pub fn unix(socket: ConnectedUnixDatagramSocket) -> Result<DatagramEnd, StreamError> {
        let outbound = Outbound::Unix(socket.sender()?, socket.peer().to_path_buf());
        Ok(Self::with_reader(outbound.peer(), outbound, socket))
    }

    fn with_reader<S>(name: String, outbound: Outbound, mut socket: S) -> DatagramEnd
    where
        S: UnreliableObjectReceiveStream<Bytes> + Sync + 'static,
    {
        let (tx, mut end) = Self::session(name, outbound);
        let failure = end.failure.clone();
        end.reader = Some(AbortOnDrop(tokio::spawn(async move {
            loop {
                match socket.receive().await {
                    Ok(datagram) => {
                        if !tx.offer(datagram) {
                            return;
                        }
                    }
                    Err(err @ StreamError::OversizedDatagram { .. }) => {
                        tracing::warn!("{err}: dropped");
                        tx.drop_one();
                    }
                    Err(err) => {
                        *failure.lock() = Some(err);
                        return;
                    }
                }
            }
        })));
        end
    }

    /// Sends one datagram and counts it.
    ///
    /// # Errors
    /// As [`Outbound::send`].
    pub async fn send(&self, datagram: &[u8]) -> Result<(), StreamError> {
        self.outbound.send(datagram).await?;
        Counters::add(&self.counters.sent, 1);
        Counters::add(&self.counters.bytes_sent, datagram.len() as u64);
        Ok(())
    }

    /// The error that ended the reader, taken.
    pub fn take_failure(&self) -> Option<StreamError> {
        self.failure.lock().take()
    }
}
