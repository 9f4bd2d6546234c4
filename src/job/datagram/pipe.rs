//! `pipe`'s datagram endpoints: `udp:`, `udp-listen:`, `unix-dgram:`.
//!
//! A connected one (`udp:`, `unix-dgram:`) facing a byte endpoint opens as an ordinary
//! [`End`] whose bytes are bridged to datagrams by its framing ([`open`]), so every relay
//! of `pipe` (fork included) takes it as it is. A `udp-listen:` endpoint, or two datagram
//! endpoints, run here instead ([`run`]): a session per peer, each with a fresh instance of
//! the other endpoint.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::command::{REPLY_WAIT, SESSION_IDLE, bind, framing, report_end};
use super::serve::{Job, ServeOptions};
use super::{DatagramEnd, Ending, RelayOptions, relay_bytes, relay_datagrams};
use crate::endpoint::{Endpoint, EndpointKind};
use crate::event::{Event, Report};
use crate::job::pipe::{End, EndError, Io};
use crate::relay::OnEof;
use crate::streams::datagram::{ConnectedUnixDatagramSocket, create_connected_udp_socket};
use crate::streams::{FamilyPreference, StreamError};

/// Opens a connected datagram endpoint (`udp:`, `unix-dgram:`), reporting `connect`.
///
/// # Errors
/// Resolving, binding, connecting.
pub async fn connect(endpoint: &Endpoint, report: &dyn Report) -> Result<DatagramEnd, StreamError> {
    match &endpoint.kind {
        EndpointKind::Udp(host, port) => {
            let socket =
                create_connected_udp_socket(host, *port, FamilyPreference::Any, endpoint.options.source)
                    .await?;
            report.emit(|| Event::Connect {
                target: format!("udp:{}", crate::streams::socket::host_port(host, *port)),
                peer: Some(socket.peer().to_string()),
                proxy: None,
            });
            DatagramEnd::udp(socket)
        }
        EndpointKind::UnixDgram(path) => DatagramEnd::unix(ConnectedUnixDatagramSocket::connect(path, None)?),
        _ => Err(StreamError::Unsupported("not a connected datagram endpoint".into())),
    }
}

/// A connected datagram endpoint opened for a byte relay (`None` for other kinds): its
/// datagrams bridged to bytes by the endpoint's framing; after the byte side's end,
/// replies are awaited for 2 s (or `idle-timeout=`). A failure of the datagram side (a
/// refusal, an oversized line) is what reading the end gives, never a quiet end.
pub async fn open(endpoint: &Endpoint, report: &dyn Report) -> Option<Result<End, EndError>> {
    if !matches!(endpoint.kind, EndpointKind::Udp(..) | EndpointKind::UnixDgram(_)) {
        return None;
    }
    let mut end = match connect(endpoint, report).await {
        Ok(end) => end,
        Err(err) => return Some(Err(EndError::Stream(err))),
    };
    let idle = endpoint.options.idle_timeout.and_then(|l| l.0);
    let relay = RelayOptions {
        framing: framing(&endpoint.options, endpoint.options.length_prefix),
        idle,
        linger: Some(idle.unwrap_or(REPLY_WAIT)),
    };
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (reader, writer) = tokio::io::split(ours);
    let failure = Arc::new(parking_lot::Mutex::new(None));
    let slot = failure.clone();
    let name = end.name.clone();
    let shared = report.shared();
    tokio::spawn(async move {
        let started = Instant::now();
        let (mut reader, mut writer): (crate::job::pipe::Reader, crate::job::pipe::Writer) =
            (Box::new(reader), Box::new(writer));
        let result = relay_bytes(&mut end, &mut reader, &mut writer, &relay).await;
        let reason = match &result {
            Ok(ending) => ending.reason().to_string(),
            Err(err) => crate::streams::error::chain(err),
        };
        if let Some(report) = shared {
            report_end(&end, &reason, started, &*report);
        }
        // Recorded before the byte side closes, so that whichever side of the relay sees
        // the close first finds why.
        if let Err(err) = result {
            *slot.lock() = Some(err);
        }
        drop((reader, writer));
    });
    let (read, write) = tokio::io::split(theirs);
    let (read, write) =
        (Bridged { inner: read, failure: failure.clone() }, Bridged { inner: write, failure });
    Some(Ok(End::new(name, Io::Split(Box::new(read), Box::new(write)), OnEof::HalfClose)))
}

/// A side of a bridged datagram endpoint: the end of its reading, or a failed write,
/// carries the datagram side's failure if it had one (an oversized line is then exit 7
/// whichever direction notices first).
struct Bridged<R> {
    inner: R,
    failure: Arc<parking_lot::Mutex<Option<StreamError>>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Bridged<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() == before
            && let Some(err) = self.failure.lock().take()
        {
            return Poll::Ready(Err(err.into()));
        }
        polled
    }
}

impl<W: AsyncWrite + Unpin> Bridged<W> {
    fn why(&self, polled: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        match polled {
            Poll::Ready(Err(err)) => Poll::Ready(Err(self.failure.lock().take().map_or(err, Into::into))),
            other => other,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Bridged<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.why(polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx).map_ok(|()| 0);
        self.why(polled).map_ok(drop)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx).map_ok(|()| 0);
        self.why(polled).map_ok(drop)
    }
}

/// Whether `pipe A B` runs here: either endpoint is `udp-listen:`, or both are datagram
/// endpoints.
pub fn runs_here(a: &Endpoint, b: &Endpoint) -> bool {
    let listens = |e: &Endpoint| matches!(e.kind, EndpointKind::UdpListen(_));
    listens(a) || listens(b) || (a.is_datagram() && b.is_datagram())
}

/// Runs `pipe A B` when [`runs_here`]: a `udp-listen:` endpoint serves each peer (with
/// `fork` many, else the first) with a fresh instance of the other endpoint; two
/// connected datagram endpoints are relayed whole, datagram for datagram. Returns whether
/// SIGINT stopped it.
///
/// # Errors
/// Binding or opening; without `fork`, the session's failure.
pub async fn run(
    a: &Endpoint,
    b: &Endpoint,
    idle: Option<Duration>,
    (max_conns, grace): (Option<usize>, Duration),
    report: Arc<dyn Report>,
) -> Result<bool, EndError> {
    let signals = crate::shutdown::Signals::new().map_err(|e| EndError::Stream(e.into()))?;
    let (listening, other) = match (&a.kind, &b.kind) {
        (EndpointKind::UdpListen(_), _) => (a, b),
        (_, EndpointKind::UdpListen(_)) => (b, a),
        _ => {
            let (mut x, mut y) = (connect(a, &*report).await, connect(b, &*report).await);
            let (x, y) = (x.as_mut().map_err(take)?, y.as_mut().map_err(take)?);
            let stop = signals.watch();
            tokio::select! {
                result = relay_datagrams(x, y, idle) => { result.map_err(EndError::Stream)?; }
                () = stop.shutdown.cancelled() => {}
            }
            return Ok(stop.interrupted());
        }
    };
    if other.is_listener() {
        return Err(EndError::Stream(StreamError::Unsupported(
            "udp-listen: relays to an endpoint that connects or runs (tcp:, udp:, exec:, stdio, ...), \
             not to another listening one"
                .into(),
        )));
    }
    let EndpointKind::UdpListen(addr) = &listening.kind else { unreachable!("chosen above") };
    let sockets =
        bind(addr, FamilyPreference::Any, listening.options.reuse_port).await.map_err(EndError::Stream)?;
    let addresses: Vec<String> = sockets
        .iter()
        .map(super::serve::ListenSocket::name)
        .collect::<Result<_, _>>()
        .map_err(EndError::Stream)?;
    report.notice(&format!("listening on {}", addresses.join(", ")));
    report.as_ref().emit(|| Event::Listen { addresses, tls: None, cert_sha256: None, key_sha256: None });
    let mut access = listening.options.access.clone();
    access = access.loaded().map_err(|e| EndError::Options(crate::stack::OptionsError::Setting(e)))?;
    let options = ServeOptions {
        keep_open: listening.options.fork,
        max_sessions: max_conns.unwrap_or(super::command::MAX_SESSIONS),
        one_session: false,
        admission: access.is_on().then(|| Arc::new(access) as Arc<dyn crate::streams::listener::Admission>),
        grace,
    };
    let job = session_job(listening, other, idle, report.clone());
    let stop = signals.watch();
    let stopping = stop.shutdown.clone();
    super::serve::serve(sockets, options, job, report, stopping.cancelled_owned())
        .await
        .map_err(EndError::Stream)?;
    Ok(stop.interrupted())
}

fn take(err: &mut StreamError) -> EndError {
    EndError::Stream(std::mem::replace(err, StreamError::Closed))
}

/// Each peer's session: a fresh instance of `other`, relayed datagram for datagram (a
/// datagram endpoint) or through the listening endpoint's framing (any other).
fn session_job(
    listening: &Endpoint,
    other: &Endpoint,
    idle: Option<Duration>,
    report: Arc<dyn Report>,
) -> Job {
    let other = Arc::new(other.clone());
    let session_idle = Some(idle.unwrap_or(SESSION_IDLE));
    // When the other endpoint ends (a backend that closed its connection), the session
    // ends with it, and the peer's next datagram opens a fresh one.
    let relay = RelayOptions {
        framing: framing(&listening.options, listening.options.length_prefix),
        idle: session_idle,
        linger: Some(Duration::ZERO),
    };
    Arc::new(move |mut end: DatagramEnd| {
        let (other, report, relay) = (other.clone(), report.clone(), relay.clone());
        Box::pin(async move {
            let result = session(&mut end, &other, &relay, &*report).await;
            (end, result)
        })
    })
}

async fn session(
    end: &mut DatagramEnd,
    other: &Endpoint,
    relay: &RelayOptions,
    report: &dyn Report,
) -> Result<Ending, StreamError> {
    if other.is_datagram() {
        let mut fresh = connect(other, report).await?;
        return relay_datagrams(end, &mut fresh, relay.idle).await;
    }
    let opened = End::open(other, report).await.map_err(|e| match e {
        EndError::Stream(err) | EndError::Open(crate::stack::open::OpenError::Connect(err)) => err,
        EndError::Open(err) => StreamError::broken(err),
        EndError::Options(err) => StreamError::broken(err),
        other => StreamError::Unsupported(format!("cannot open the other endpoint: {other:?}")),
    })?;
    let (mut reader, mut writer, _) = opened.io.into_split();
    let result = relay_bytes(end, &mut reader, &mut writer, relay).await;
    drop((reader, writer));
    if let Some(mut child) = opened.child {
        crate::job::child::reap_child(&mut child, result.is_err()).await;
    }
    result
}
