//! The clients of `serve -k` in stdio mode and of `serve --broker`, and what they share
//! (a [`Hub`]): our stdin broadcast to every client, every client's data written to our
//! stdout (stdio mode) or sent to every other client (broker), `--max-lag`, and stopping
//! when stdout's reader is gone.

use crate::platform::OwnedSocketHandle as OwnedFd;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::streams::listener::Connection;
use crate::streams::memory::Capacity;
use crate::streams::{
    AsyncResource, ByteReceiveStream, ByteSendStream, IoReceiveStream, MemoryObjectReceiveStream,
    MemoryObjectSendStream, ObjectReceiveStream, TypedAttributeProvider, memory_object_stream,
};

/// What the clients of one server share: each one's queue of what is sent to it, our
/// stdout, and the signal that stdout's reader is gone.
pub struct Hub {
    /// Per-client outboxes: stdin broadcast (`-k`) or the broker.
    clients: Mutex<HashMap<u64, Outbox>>,
    next_id: AtomicU64,
    /// How far a client may fall behind the others before it is disconnected (--max-lag).
    max_lag: usize,
    /// Woken whenever a client takes something from its queue, joins or leaves.
    drained: Arc<Notify>,
    /// stdin has ended (stdio mode with -k): new clients get our end at once.
    stdin_done: AtomicBool,
    stdout: tokio::sync::Mutex<tokio::io::Stdout>,
    /// Cancelled when writing to stdout fails because its reader is gone (`| head`): a
    /// `-k` server then stops, rather than dropping every later client's data.
    stdout_gone: CancellationToken,
}

/// A client's queue of what the broadcast (stdin with -k) or the broker sends it.
struct Outbox {
    tx: MemoryObjectSendStream<Bytes>,
    client: Arc<Client>,
}

/// What the broadcast and the connection of one client share.
#[derive(Default)]
pub(crate) struct Client {
    /// Bytes queued and not yet taken by the client's connection.
    queued: AtomicUsize,
    /// Notified (a permit is kept) to disconnect a client that fell too far behind.
    pub(crate) kicked: Notify,
}

/// The receiving end of an [`Outbox`]: counts what the connection takes.
pub(crate) struct Inbox {
    rx: MemoryObjectReceiveStream<Bytes>,
    client: Arc<Client>,
    drained: Arc<Notify>,
}

impl AsyncResource for Inbox {
    async fn aclose(&mut self) -> crate::streams::Result<()> {
        self.rx.aclose().await
    }
}
impl TypedAttributeProvider for Inbox {}
impl ObjectReceiveStream<Bytes> for Inbox {
    async fn receive(&mut self) -> crate::streams::Result<Bytes> {
        let chunk = self.rx.receive().await?;
        self.client.queued.fetch_sub(chunk.len(), Ordering::AcqRel);
        self.drained.notify_waiters();
        Ok(chunk)
    }
}

impl Hub {
    /// No client yet; a client may fall `max_lag` bytes behind the others.
    pub fn new(max_lag: usize) -> Self {
        Hub {
            clients: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            max_lag,
            drained: Arc::new(Notify::new()),
            stdin_done: AtomicBool::new(false),
            stdout: tokio::sync::Mutex::new(tokio::io::stdout()),
            stdout_gone: CancellationToken::new(),
        }
    }

    /// Cancelled once writing to stdout failed because its reader is gone.
    pub fn stdout_gone(&self) -> &CancellationToken {
        &self.stdout_gone
    }

    /// The `--max-lag` limit, in bytes.
    pub fn max_lag(&self) -> usize {
        self.max_lag
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<u64, Outbox>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client to the broadcast or the broker, under a fresh id; once stdin has
    /// ended (stdio mode), a new client's queue is closed at once, so it gets our end
    /// straight away.
    pub(crate) fn join(&self, client: Arc<Client>) -> (u64, Inbox) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = memory_object_stream::<Bytes>(Capacity::Unbounded);
        let mut clients = self.clients();
        if !self.stdin_done.load(Ordering::Acquire) {
            clients.insert(id, Outbox { tx, client: Arc::clone(&client) });
            // The broadcast may be waiting for a first client.
            self.drained.notify_waiters();
        }
        (id, Inbox { rx, client, drained: Arc::clone(&self.drained) })
    }

    /// Removes a client (idempotent).
    pub(crate) fn leave(&self, id: u64) {
        self.clients().remove(&id);
        self.drained.notify_waiters();
    }

    /// Sends `data` to every client but `except`, at the pace of the fastest: it waits
    /// while even the emptiest queue has no room for it. A client whose queue would then
    /// grow past `--max-lag` is disconnected with a line naming it, so one client that
    /// never reads cannot stall the others, and memory stays bounded.
    pub(crate) async fn deliver(&self, except: Option<u64>, data: Bytes) {
        let len = data.len();
        let behind = |queued: usize| queued > 0 && queued + len > self.max_lag;
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            let emptiest = self
                .clients()
                .iter()
                .filter(|(id, _)| Some(**id) != except)
                .map(|(_, o)| o.client.queued.load(Ordering::Acquire))
                .min();
            match emptiest {
                Some(queued) if behind(queued) => drained.await,
                _ => break,
            }
        }
        let mut clients = self.clients();
        let mut kicked = Vec::new();
        for (id, outbox) in clients.iter().filter(|(id, _)| Some(**id) != except) {
            if behind(outbox.client.queued.load(Ordering::Acquire)) {
                kicked.push(*id);
                continue;
            }
            outbox.client.queued.fetch_add(len, Ordering::AcqRel);
            if outbox.tx.send_nowait(data.clone()).is_err() {
                outbox.client.queued.fetch_sub(len, Ordering::AcqRel);
            }
        }
        for id in kicked {
            if let Some(outbox) = clients.remove(&id) {
                outbox.client.kicked.notify_one();
            }
        }
    }

    /// Waits until at least one client is there.
    async fn someone_there(&self) {
        loop {
            let joined = self.drained.notified();
            tokio::pin!(joined);
            joined.as_mut().enable();
            if !self.clients().is_empty() {
                return;
            }
            joined.await;
        }
    }
}

/// `-k` stdio mode: stdin goes to every connected client; its end is every client's end
/// (a half-close, by --on-eof).
pub async fn broadcast_stdin(hub: Arc<Hub>) {
    let mut stdin = IoReceiveStream::new(tokio::io::stdin());
    let mut buf = bytes::BytesMut::new();
    loop {
        // stdin is read only while someone is there to get it: what it holds is never
        // dropped for want of a client.
        hub.someone_there().await;
        buf.clear();
        match stdin.receive_into(&mut buf, crate::relay::CHUNK).await {
            Ok(_) => hub.deliver(None, buf.split().freeze()).await,
            Err(_) => break,
        }
    }
    hub.stdin_done.store(true, Ordering::Release);
    // Dropping the queues' senders ends each client's stream after what it holds.
    hub.clients().clear();
}

/// Everything a client sends in `-k` stdio mode goes to our stdout, a chunk (or a whole
/// frame) at a time.
pub(crate) struct SharedStdout(pub(crate) Arc<Hub>);

impl AsyncResource for SharedStdout {
    async fn aclose(&mut self) -> crate::streams::Result<()> {
        Ok(())
    }
}
impl TypedAttributeProvider for SharedStdout {}
impl ByteSendStream for SharedStdout {
    async fn send(&mut self, data: Bytes) -> crate::streams::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut stdout = self.0.stdout.lock().await;
        let written = async {
            stdout.write_all(&data).await?;
            stdout.flush().await
        };
        if let Err(err) = written.await {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                // The server stops; this connection waits here to be dropped and reset
                // (`stop_when_stdout_gone`), rather than end in a way the client could
                // take for a clean end.
                self.0.stdout_gone.cancel();
                std::future::pending::<()>().await;
            }
            return Err(err.into());
        }
        Ok(())
    }
}

/// In `--broker` mode, a client's data goes to every other client.
pub(crate) struct BrokerSink {
    pub(crate) id: u64,
    pub(crate) hub: Arc<Hub>,
}

impl AsyncResource for BrokerSink {
    async fn aclose(&mut self) -> crate::streams::Result<()> {
        Ok(())
    }
}
impl TypedAttributeProvider for BrokerSink {}
impl ByteSendStream for BrokerSink {
    async fn send(&mut self, data: Bytes) -> crate::streams::Result<()> {
        self.hub.deliver(Some(self.id), data).await;
        Ok(())
    }
}

/// Once stdout's reader is gone (`serve -k ... | head -c 3`), a `-k` stdio server can
/// deliver nothing any client sends: it stops accepting (the listening socket closes, so
/// new clients are refused) and closes open connections at once, with a reset (see
/// [`ResetIf`]). The exit code is 0, as for any closed stdout (docs/cli.md).
pub async fn stop_when_stdout_gone(
    stdout_gone: CancellationToken,
    shutdown: CancellationToken,
    cut_short: CancellationToken,
) {
    stdout_gone.cancelled().await;
    tracing::warn!("stdout is closed: no longer accepting; resetting open connections");
    shutdown.cancel();
    // Established connections drop (and reset) at once on `stdout_gone` themselves; the
    // grace period is cut short a moment later for those still in a TLS handshake.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    cut_short.cancel();
}

/// A second descriptor of an accepted socket: when dropped after `when` was cancelled, it
/// sets SO_LINGER 0 first, so that the socket's last close sends a reset rather than a
/// clean end (a client must not take data that was never delivered for a success).
pub struct ResetIf {
    fd: Option<OwnedFd>,
    when: CancellationToken,
}

impl ResetIf {
    /// Watches `raw` (plain TCP or UNIX socket, before any TLS).
    pub fn new(raw: &Connection, when: CancellationToken) -> ResetIf {
        let fd = match raw {
            Connection::Tcp(s) => s.get_ref().and_then(|s| crate::platform::clone_socket(s).ok()),
            Connection::Unix(s) => s.get_ref().and_then(|s| crate::platform::clone_socket(s).ok()),
        };
        ResetIf { fd, when }
    }
}

impl Drop for ResetIf {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take()
            && self.when.is_cancelled()
        {
            let _ = socket2::SockRef::from(&fd).set_linger(Some(std::time::Duration::ZERO));
        }
    }
}
