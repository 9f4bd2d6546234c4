//! `serve -u` and `pipe udp-listen:`: a datagram listener that keeps a session per peer
//! address, each fed by a bounded queue, within a limit on sessions.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{DatagramEnd, Ending, InboundTx, Outbound};
use crate::event::{Event, Report};
use crate::streams::datagram::{UdpSocket, UnixDatagramSocket};
use crate::streams::listener::Admission;
use crate::streams::{Address, StreamError, UnreliableObjectReceiveStream};

/// A peer's session, started by [`serve`] for each new peer: it runs the job on the
/// datagram endpoint and says how it ended.
pub type Job = Arc<
    dyn Fn(
            DatagramEnd,
        )
            -> std::pin::Pin<Box<dyn Future<Output = (DatagramEnd, Result<Ending, StreamError>)> + Send>>
        + Send
        + Sync,
>;

/// How a datagram listener serves its peers.
pub struct ServeOptions {
    /// Many peers (`-k`, `fork`); without it, the first peer's session only, and the
    /// server ends with it.
    pub keep_open: bool,
    /// The most sessions at once.
    pub max_sessions: usize,
    /// One session for every peer (`serve -u` in stdio mode): its replies go to the peer
    /// heard from last.
    pub one_session: bool,
    /// Who may send (`--allow`, `--deny`); checked for each new peer.
    pub admission: Option<Arc<dyn Admission>>,
    /// How long the sessions are given to end at shutdown.
    pub grace: Duration,
}

/// A line at most this often for dropped or refused datagrams; the rest are counted.
const NOTICE_EVERY: Duration = Duration::from_secs(10);

struct Notices {
    last: Option<Instant>,
    quiet: u64,
}

impl Notices {
    fn say(&mut self, report: &dyn Report, line: impl FnOnce() -> String) {
        if self.last.is_some_and(|t| t.elapsed() < NOTICE_EVERY) {
            self.quiet += 1;
            return;
        }
        let more = std::mem::take(&mut self.quiet);
        let tail = if more > 0 { format!(" ({more} more since the last line)") } else { String::new() };
        report.notice(&format!("{}{tail}", line()));
        self.last = Some(Instant::now());
    }
}

/// A datagram listener's socket: UDP, or UNIX (its file removed when it is dropped).
pub enum ListenSocket {
    /// A UDP socket.
    Udp(UdpSocket),
    /// A UNIX datagram socket bound to a path.
    Unix(UnixDatagramSocket),
}

/// A peer of a datagram listener.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A UDP peer.
    Udp(SocketAddr),
    /// A UNIX datagram peer (an unnamed one cannot be answered).
    Unix(crate::streams::datagram::UnixPeer),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Udp(addr) => write!(f, "udp:{addr}"),
            Peer::Unix(peer) => write!(f, "unix-dgram:{peer}"),
        }
    }
}

impl Peer {
    fn address(&self) -> Address {
        match self {
            Peer::Udp(addr) => Address::Inet(*addr),
            Peer::Unix(crate::streams::datagram::UnixPeer::Path(path)) => Address::Unix(Some(path.clone())),
            Peer::Unix(_) => Address::Unix(None),
        }
    }
}

impl ListenSocket {
    /// Its address as the listening line names it (`udp:127.0.0.1:53`, `unix-dgram:PATH`).
    ///
    /// # Errors
    /// The OS's, for a socket that was closed.
    pub fn name(&self) -> Result<String, StreamError> {
        Ok(match self {
            ListenSocket::Udp(s) => format!("udp:{}", s.local_addr()?),
            ListenSocket::Unix(s) => format!("unix-dgram:{}", s.local_path()?.unwrap_or_default().display()),
        })
    }

    async fn receive(&mut self) -> Result<(Bytes, Peer), StreamError> {
        match self {
            ListenSocket::Udp(s) => s.receive().await.map(|(d, a)| (d, Peer::Udp(a))),
            ListenSocket::Unix(s) => s.receive_from().await.map(|(d, p)| (d, Peer::Unix(p))),
        }
    }

    fn outbound(shared: &Shared, peer: &Peer) -> Outbound {
        match (shared, peer) {
            (Shared::Udp(socket), Peer::Udp(addr)) => Outbound::Udp(socket.clone(), *addr, false),
            (Shared::Unix(replier), Peer::Unix(peer)) => Outbound::UnixTo(replier.clone(), peer.clone()),
            _ => Outbound::Nowhere,
        }
    }
}

/// A listening socket's handle, shared with the sessions that answer through it.
enum Shared {
    Udp(Arc<tokio::net::UdpSocket>),
    Unix(crate::streams::datagram::UnixReplier),
}

/// What a listener's sockets give: the next datagram, its peer and which socket.
async fn receive_any(sockets: &mut [ListenSocket]) -> (usize, Result<(Bytes, Peer), StreamError>) {
    // Each receive is cancel safe: the one not chosen takes nothing from its socket.
    match sockets {
        [one] => (0, one.receive().await),
        [a, b] => tokio::select! {
            r = a.receive() => (0, r),
            r = b.receive() => (1, r),
        },
        many => {
            let mut futures: Vec<_> = many.iter_mut().map(|s| Box::pin(s.receive())).collect();
            let (result, index, _) = futures_util::future::select_all(futures.iter_mut()).await;
            (index, result)
        }
    }
}

/// The sessions still running: each peer's session name, counters and start.
type Running = Arc<parking_lot::Mutex<HashMap<Peer, (String, Arc<super::Counters>, Instant)>>>;

struct Listener {
    sockets: Vec<Shared>,
    sessions: HashMap<Peer, InboundTx>,
    /// Every session still running: its name, counters and start (reported if it has not
    /// ended when the grace period is over).
    running: Running,
    /// The one session's queue and where its replies go (`one_session`).
    hub: Option<(InboundTx, super::LastPeer)>,
    started: usize,
    dropped: Notices,
    refused: Notices,
}

/// Serves datagrams on `sockets` until the sessions end (without `keep_open`) or
/// `shutdown` completes. Returns the first failed session's error without `keep_open`.
///
/// # Errors
/// A session's failure, without `keep_open`.
pub async fn serve(
    mut sockets: Vec<ListenSocket>,
    options: ServeOptions,
    job: Job,
    report: Arc<dyn Report>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StreamError> {
    let shared: Vec<_> = sockets
        .iter()
        .map(|s| match s {
            ListenSocket::Udp(s) => s.shared().map(Shared::Udp),
            ListenSocket::Unix(s) => s.replier().map(Shared::Unix),
        })
        .collect::<Result<_, _>>()?;
    let mut listener = Listener {
        sockets: shared,
        sessions: HashMap::new(),
        running: Arc::default(),
        hub: None,
        started: 0,
        dropped: Notices { last: None, quiet: 0 },
        refused: Notices { last: None, quiet: 0 },
    };
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Peer, Result<Ending, StreamError>)>();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (index, received) = receive_any(&mut sockets) => match received {
                Ok((datagram, peer)) => {
                    listener.dispatch(index, datagram, peer, &options, &job, &report, &done_tx);
                }
                Err(err) => listener.dropped.say(&*report, || format!("{err}: dropped")),
            },
            Some((peer, result)) = done_rx.recv() => {
                listener.sessions.remove(&peer);
                if let Err(err) = &result {
                    tracing::warn!(%peer, "{}", crate::streams::error::chain(err));
                }
                // With many peers, a session's failure is its own (logged above).
                if !options.keep_open {
                    return result.map(drop);
                }
            }
            () = &mut shutdown => break,
        }
    }
    // Closing the queues ends every session (Ending::Closed); they get the grace period.
    listener.sessions.clear();
    listener.hub = None;
    let deadline = tokio::time::Instant::now() + options.grace;
    while !listener.running.lock().is_empty() {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    // Sessions still running (a command that ignores its input's end, a stdout that
    // stopped reading) are reported as cut short; they end with the process.
    for (name, counters, started) in listener.running.lock().values() {
        super::command::report_counts(name, counters, "grace period over", *started, report.as_ref());
    }
    Ok(())
}

impl Listener {
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        index: usize,
        datagram: Bytes,
        peer: Peer,
        options: &ServeOptions,
        job: &Job,
        report: &Arc<dyn Report>,
        done: &mpsc::UnboundedSender<(Peer, Result<Ending, StreamError>)>,
    ) {
        let admit = |refused: &mut Notices| match &options.admission {
            Some(admission) => match admission.admit(&peer.address()) {
                Ok(()) => true,
                Err(why) => {
                    refused.say(report.as_ref(), || format!("refused datagrams from {peer}: {why}"));
                    false
                }
            },
            None => true,
        };
        if let Some((tx, last)) = &self.hub {
            // One session for every peer: the first only, or with -k all, the replies
            // going to the last heard from.
            if !(options.keep_open || self.sessions.contains_key(&peer)) {
                tx.drop_one();
                self.dropped.say(report.as_ref(), || {
                    format!("ignoring datagrams from {peer}: serving the first peer only (-k serves all)")
                });
            } else if admit(&mut self.refused) {
                *last.lock() = Some(ListenSocket::outbound(&self.sockets[index], &peer));
                tx.offer(datagram);
            }
            return;
        }
        if let Some(tx) = self.sessions.get(&peer) {
            if !tx.offer(datagram) {
                self.sessions.remove(&peer);
            }
            return;
        }
        if !admit(&mut self.refused) {
            return;
        }
        if !options.keep_open && self.started >= 1 {
            self.dropped.say(report.as_ref(), || {
                format!("ignoring datagrams from {peer}: serving the first peer only (-k serves many)")
            });
            return;
        }
        if self.sessions.len() >= options.max_sessions {
            let n = self.sessions.len();
            self.dropped.say(report.as_ref(), || {
                format!("dropped a datagram from {peer}: {n} sessions already (--max-conns)")
            });
            return;
        }
        report.emit(|| Event::Accept { peer: peer.to_string(), proxy: None });
        let direct = ListenSocket::outbound(&self.sockets[index], &peer);
        let outbound = match options.one_session {
            true => Outbound::Last(Arc::new(parking_lot::Mutex::new(Some(direct)))),
            false => direct,
        };
        let (tx, end) = DatagramEnd::session(peer.to_string(), outbound.clone());
        tx.offer(datagram);
        if let Outbound::Last(last) = outbound {
            self.hub = Some((tx.clone(), last));
        }
        self.sessions.insert(peer.clone(), tx);
        self.running.lock().insert(peer.clone(), (end.name.clone(), end.counters.clone(), Instant::now()));
        self.started += 1;
        let (job, done, report, running) = (job.clone(), done.clone(), report.clone(), self.running.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let (end, result) = job(end).await;
            let reason = match &result {
                Ok(ending) => ending.reason().to_string(),
                Err(err) => crate::streams::error::chain(err),
            };
            running.lock().remove(&peer);
            super::command::report_end(&end, &reason, started, report.as_ref());
            let _ = done.send((peer, result));
        });
    }
}
