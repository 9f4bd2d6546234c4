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
use crate::streams::datagram::UdpSocket;
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

/// What a listener's sockets give: the next datagram, its peer and which socket.
async fn receive_any(sockets: &mut [UdpSocket]) -> (usize, Result<(Bytes, SocketAddr), StreamError>) {
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
type Running = Arc<parking_lot::Mutex<HashMap<SocketAddr, (String, Arc<super::Counters>, Instant)>>>;

struct Listener {
    sockets: Vec<Arc<tokio::net::UdpSocket>>,
    sessions: HashMap<SocketAddr, InboundTx>,
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
    mut sockets: Vec<UdpSocket>,
    options: ServeOptions,
    job: Job,
    report: Arc<dyn Report>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StreamError> {
    let shared: Vec<_> = sockets.iter().map(UdpSocket::shared).collect::<Result<_, _>>()?;
    let mut listener = Listener {
        sockets: shared,
        sessions: HashMap::new(),
        running: Arc::default(),
        hub: None,
        started: 0,
        dropped: Notices { last: None, quiet: 0 },
        refused: Notices { last: None, quiet: 0 },
    };
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(SocketAddr, Result<Ending, StreamError>)>();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (index, received) = receive_any(&mut sockets) => match received {
                Ok((datagram, peer)) => {
                    listener.dispatch(index, datagram, peer, &options, &job, &report, &done_tx);
                }
                Err(err) => listener.dropped.say(&*report, || format!("udp: {err}: dropped")),
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
        peer: SocketAddr,
        options: &ServeOptions,
        job: &Job,
        report: &Arc<dyn Report>,
        done: &mpsc::UnboundedSender<(SocketAddr, Result<Ending, StreamError>)>,
    ) {
        let admit = |refused: &mut Notices| match &options.admission {
            Some(admission) => match admission.admit(&Address::Inet(peer)) {
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
                *last.lock() = Some((self.sockets[index].clone(), peer));
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
        report.emit(|| Event::Accept { peer: format!("udp:{peer}"), proxy: None });
        let outbound = if options.one_session {
            let last = Arc::new(parking_lot::Mutex::new(Some((self.sockets[index].clone(), peer))));
            Outbound::Last(last.clone())
        } else {
            Outbound::Udp(self.sockets[index].clone(), peer, false)
        };
        let (tx, end) = DatagramEnd::session(format!("udp:{peer}"), outbound.clone());
        tx.offer(datagram);
        if let Outbound::Last(last) = outbound {
            self.hub = Some((tx.clone(), last));
        }
        self.sessions.insert(peer, tx);
        self.running.lock().insert(peer, (end.name.clone(), end.counters.clone(), Instant::now()));
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
