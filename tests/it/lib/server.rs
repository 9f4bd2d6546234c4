//! The accept loop (`server::serve`): a task per connection, failure isolation, the
//! connection limit and graceful shutdown. Not AnyIO scenarios: AnyIO's `Listener.serve`
//! has no limit or grace period (spec §1.3); these pin streamtool's own accept loop.
//!
//! Not covered here: the back-off after accept errors (EMFILE and friends). Provoking one
//! portably needs a tiny RLIMIT_NOFILE in a child process; that belongs to a later issue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use streamtool::server::*;
use streamtool::streams::*;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::streams::{connect_loopback, loopback_listener, receive_all};
use crate::support::{run, settle};

/// Echoes until the client's EOF, then closes.
async fn echo(mut stream: Connection, _ctx: ConnectionContext) {
    while let Ok(chunk) = stream.receive(DEFAULT_MAX_BYTES).await {
        if stream.send(chunk).await.is_err() {
            break;
        }
    }
    let _ = stream.aclose().await;
}

/// Sends `payload` and reads the echo at the same time (a large payload would otherwise
/// fill both socket buffers), then returns what came back.
async fn echo_exchange(stream: TcpStream, payload: Vec<u8>) -> Vec<u8> {
    let (mut rx, mut tx) = stream.into_split().expect("split");
    let send = async move {
        for chunk in payload.chunks(8 * 1024) {
            tx.send(Bytes::copy_from_slice(chunk)).await.expect("send");
        }
        tx.aclose().await.expect("send FIN");
    };
    let ((), echoed) = tokio::join!(send, async { receive_all(&mut rx).await.expect("receive the echo") });
    echoed
}

/// Connection refused, or accepted and then closed at once (EOF or reset).
fn is_closed_at_once(result: &Result<Bytes>) -> bool {
    matches!(result, Err(StreamError::EndOfStream | StreamError::Broken(_)))
}

fn spawn_server<H, F>(
    listener: SocketListener,
    options: ServeOptions,
    shutdown: &CancellationToken,
    handler: H,
) -> JoinHandle<ServeSummary>
where
    H: Fn(Connection, ConnectionContext) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(serve(listener, options, shutdown.clone(), handler))
}

#[test]
fn each_connection_runs_in_its_own_task_twenty_concurrent_echo_clients() {
    run(async {
        let (listener, port) = loopback_listener().await;
        let shutdown = CancellationToken::new();
        let server = spawn_server(listener, ServeOptions::default(), &shutdown, echo);

        let clients: Vec<_> = (0..20u32)
            .map(|i| {
                tokio::spawn(async move {
                    // Distinct content and length per client, so crossed wires would show.
                    let payload: Vec<u8> = (0..50_000 + i * 1_000)
                        .map(|j| (j.wrapping_mul(31).wrapping_add(i * 7) % 256) as u8)
                        .collect();
                    let stream = connect_loopback(port).await.expect("connect");
                    let echoed = echo_exchange(stream, payload.clone()).await;
                    assert_eq!(echoed.len(), payload.len(), "client {i}");
                    assert!(echoed == payload, "client {i} got someone else's bytes");
                })
            })
            .collect();
        for client in clients {
            client.await.expect("client task");
        }

        shutdown.cancel();
        let summary = server.await.unwrap();
        assert_eq!(summary, ServeSummary { accepted: 20, rejected: 0, cut_short: 0 });
    });
}

#[test]
fn a_panicking_handler_does_not_stop_the_server() {
    run(async {
        let (listener, port) = loopback_listener().await;
        let shutdown = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let handler = {
            let calls = Arc::clone(&calls);
            move |stream: Connection, ctx: ConnectionContext| {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if call == 0 {
                        panic!("handler failure provoked by the test (expected in the output)");
                    }
                    echo(stream, ctx).await;
                }
            }
        };
        let server = spawn_server(listener, ServeOptions::default(), &shutdown, handler);

        // The first connection's handler panics: the stream is dropped during unwinding.
        let mut first = connect_loopback(port).await.unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), first.receive(DEFAULT_MAX_BYTES))
            .await
            .expect("the failed connection is closed");
        assert!(is_closed_at_once(&result), "got {result:?}");

        // The next client is served as usual.
        let second = connect_loopback(port).await.expect("the server still accepts");
        assert_eq!(echo_exchange(second, b"still here".to_vec()).await, b"still here");

        assert!(!server.is_finished());
        shutdown.cancel();
        let summary = server.await.expect("serve itself did not panic");
        assert_eq!(summary.accepted, 2);
        assert_eq!(summary.cut_short, 0);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn past_max_connections_a_new_connection_is_closed_at_once() {
    run(async {
        let (listener, port) = loopback_listener().await;
        let shutdown = CancellationToken::new();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        // Greets, then holds the connection until the client closes it.
        let handler = move |mut stream: Connection, _ctx: ConnectionContext| {
            let done_tx = done_tx.clone();
            async move {
                let _ = stream.send(Bytes::from_static(b"hi")).await;
                let _ = receive_all(&mut stream).await;
                let _ = stream.aclose().await;
                // Last statement: on this current-thread runtime the task ends (and its
                // slot is freed) before the test task runs again.
                let _ = done_tx.send(());
            }
        };
        let options =
            ServeOptions { max_connections: Some(2), grace: Duration::from_secs(5), cut_grace_short: None };
        let server = spawn_server(listener, options, &shutdown, handler);

        let mut held = Vec::new();
        for _ in 0..2 {
            let mut client = connect_loopback(port).await.unwrap();
            // The greeting proves the connection was accepted and counts as open.
            assert_eq!(client.receive(DEFAULT_MAX_BYTES).await.unwrap(), Bytes::from_static(b"hi"));
            held.push(client);
        }

        let mut third = connect_loopback(port).await.expect("the kernel still completes the handshake");
        let result = tokio::time::timeout(Duration::from_secs(2), third.receive(DEFAULT_MAX_BYTES))
            .await
            .expect("the third connection is closed at once");
        assert!(is_closed_at_once(&result), "got {result:?}");

        // Closing one held connection frees a slot for the next client.
        let mut first = held.remove(0);
        first.aclose().await.unwrap();
        done_rx.recv().await.expect("the first handler finished");
        settle().await;
        let mut fourth = connect_loopback(port).await.unwrap();
        assert_eq!(fourth.receive(DEFAULT_MAX_BYTES).await.unwrap(), Bytes::from_static(b"hi"));

        for mut client in held.into_iter().chain([fourth]) {
            client.aclose().await.unwrap();
        }
        shutdown.cancel();
        let summary = server.await.unwrap();
        assert_eq!(summary, ServeSummary { accepted: 3, rejected: 1, cut_short: 0 });
    });
}

/// After shutdown, tries to connect until refused; a connection that slipped into the
/// backlog before the listener closed is dropped and the attempt repeated.
async fn assert_refused_soon(port: u16) {
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match connect_loopback(port).await {
                Err(StreamError::Connect { .. }) => return,
                Err(other) => panic!("expected a connect error, got {other:?}"),
                Ok(stream) => {
                    drop(stream);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
    .await;
    assert!(refused.is_ok(), "new connections were still accepted 2 s after shutdown");
}

#[test]
fn graceful_shutdown_refuses_new_connections_and_lets_open_ones_finish() {
    run(async {
        let (listener, port) = loopback_listener().await;
        let shutdown = CancellationToken::new();
        let options =
            ServeOptions { max_connections: None, grace: Duration::from_secs(10), cut_grace_short: None };
        let server = spawn_server(listener, options, &shutdown, echo);

        // One connection, mid-transfer.
        let mut client = connect_loopback(port).await.unwrap();
        client.send(Bytes::from_static(b"first")).await.unwrap();
        assert_eq!(client.receive(DEFAULT_MAX_BYTES).await.unwrap(), Bytes::from_static(b"first"));

        shutdown.cancel();
        assert_refused_soon(port).await;
        assert!(!server.is_finished(), "serve returned while a connection was still open");

        // The open connection finishes its exchange.
        client.send(Bytes::from_static(b"second")).await.expect("send after shutdown started");
        client.send_eof().await.unwrap();
        assert_eq!(receive_all(&mut client).await.unwrap(), b"second");
        client.aclose().await.unwrap();

        let summary = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns once the last connection is done, well within the grace period")
            .unwrap();
        assert_eq!(summary, ServeSummary { accepted: 1, rejected: 0, cut_short: 0 });
    });
}

#[test]
fn graceful_shutdown_fires_closing_after_the_grace_period() {
    run(async {
        let (listener, port) = loopback_listener().await;
        let shutdown = CancellationToken::new();
        let told_to_close = Arc::new(AtomicBool::new(false));
        let handler = {
            let told_to_close = Arc::clone(&told_to_close);
            move |mut stream: Connection, ctx: ConnectionContext| {
                let told_to_close = Arc::clone(&told_to_close);
                async move {
                    stream.send(Bytes::from_static(b"ready")).await.unwrap();
                    // Work that never ends, raced against `closing`.
                    tokio::select! {
                        () = ctx.closing.cancelled() => told_to_close.store(true, Ordering::SeqCst),
                        () = std::future::pending::<()>() => unreachable!(),
                    }
                    let _ = stream.aclose().await;
                }
            }
        };
        let grace = Duration::from_millis(200);
        let server =
            spawn_server(listener, ServeOptions { grace, ..ServeOptions::default() }, &shutdown, handler);

        let mut client = connect_loopback(port).await.unwrap();
        assert_eq!(client.receive(DEFAULT_MAX_BYTES).await.unwrap(), Bytes::from_static(b"ready"));

        let started = Instant::now();
        shutdown.cancel();
        let summary = server.await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(summary, ServeSummary { accepted: 1, rejected: 0, cut_short: 1 });
        assert!(told_to_close.load(Ordering::SeqCst), "the handler's closing token never fired");
        assert!(
            elapsed >= grace - Duration::from_millis(10),
            "serve returned before the grace period: {elapsed:?}"
        );
        assert!(elapsed < Duration::from_secs(5), "serve took {elapsed:?}");

        // The handler closed its stream when told to.
        let result = client.receive(DEFAULT_MAX_BYTES).await;
        assert!(is_closed_at_once(&result), "got {result:?}");
    });
}

#[test]
fn cut_grace_short_closes_open_connections_before_the_grace_period_ends() {
    run(async {
        let (listener, port) = loopback_listener().await;
        let shutdown = CancellationToken::new();
        let cut = CancellationToken::new();
        let handler = move |mut stream: Connection, ctx: ConnectionContext| async move {
            stream.send(Bytes::from_static(b"ready")).await.unwrap();
            ctx.closing.cancelled().await;
            let _ = stream.aclose().await;
        };
        // A grace period far longer than the test's own limit: only the cut can end it.
        let options = ServeOptions {
            grace: Duration::from_secs(3600),
            cut_grace_short: Some(cut.clone()),
            ..ServeOptions::default()
        };
        let server = spawn_server(listener, options, &shutdown, handler);
        let mut client = connect_loopback(port).await.unwrap();
        assert_eq!(client.receive(DEFAULT_MAX_BYTES).await.unwrap(), Bytes::from_static(b"ready"));

        shutdown.cancel();
        assert_refused_soon(port).await;
        assert!(!server.is_finished(), "serve waits for the open connection");
        cut.cancel();
        let summary = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns soon after the cut")
            .unwrap();
        assert_eq!(summary, ServeSummary { accepted: 1, rejected: 0, cut_short: 1 });
        let result = client.receive(DEFAULT_MAX_BYTES).await;
        assert!(is_closed_at_once(&result), "got {result:?}");
    });
}

#[test]
fn the_handler_gets_the_peer_address() {
    run(async {
        let (listener, port) = loopback_listener().await;
        let shutdown = CancellationToken::new();
        let (peer_tx, mut peer_rx) = tokio::sync::mpsc::unbounded_channel::<Address>();
        let handler = move |mut stream: Connection, ctx: ConnectionContext| {
            let peer_tx = peer_tx.clone();
            async move {
                let _ = peer_tx.send(ctx.peer.clone());
                let _ = stream.aclose().await;
            }
        };
        let server = spawn_server(listener, ServeOptions::default(), &shutdown, handler);
        let client = connect_loopback(port).await.unwrap();
        let peer = peer_rx.recv().await.unwrap();
        assert_eq!(peer, client.extra(attrs::socket::LOCAL_ADDRESS).unwrap());
        shutdown.cancel();
        assert_eq!(server.await.unwrap().accepted, 1);
    });
}
