//! Memory object streams: spec §2, scenarios 1-29 (AnyIO's `tests/streams/test_memory.py`)
//! and the derived scenarios D6 and D7, plus the Rust-specific surface (drop-cancellation,
//! the `futures::Stream` impl, `try_clone` vs `Clone`, the generic traits).
//!
//! Cancellation is future drop: a pending operation is cancelled by dropping its future or
//! by aborting the task that awaits it. "settle" is [`settle`] on the current-thread runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use streamtool::streams::*;

use crate::support::{run, settle, timeout};

/// Polls `fut` exactly once with the current task's waker.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// Polls `stream` for its next item exactly once with the current task's waker.
async fn poll_next_once<S: futures_core::Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *stream).poll_next(cx))).await
}

/// A select whose first branch is already complete: the operation is created but never
/// polled, like AnyIO's "call inside an already-cancelled scope".
macro_rules! already_cancelled {
    ($op:expr) => {
        tokio::select! {
            biased;
            () = std::future::ready(()) => None,
            r = $op => Some(r),
        }
    };
}

fn stats<T>(
    tx: &MemoryObjectSendStream<T>,
    rx: &MemoryObjectReceiveStream<T>,
) -> MemoryObjectStreamStatistics {
    let s = tx.statistics();
    assert_eq!(s, rx.statistics(), "both handles must report the same snapshot");
    s
}

// ---------------------------------------------------------------------------------------
// Construction (scenarios 1, 2: Python's ValueErrors are unrepresentable in Rust)

// scenario 1 (adapted: a float capacity cannot be written; only `Bounded(usize)` and
// `Unbounded` exist, and a bounded 0 is a rendezvous)
#[test]
fn capacity_is_bounded_usize_or_unbounded_and_zero_is_rendezvous() {
    // An exhaustive match without a wildcard: compiles only while these are the variants.
    fn describe(c: Capacity) -> &'static str {
        match c {
            Capacity::Bounded(0) => "rendezvous",
            Capacity::Bounded(_) => "bounded",
            Capacity::Unbounded => "unbounded",
        }
    }
    assert_eq!(Capacity::from(0usize), Capacity::Bounded(0));
    assert_eq!(describe(Capacity::from(0usize)), "rendezvous");
    assert_eq!(describe(Capacity::from(3usize)), "bounded");
    assert_eq!(describe(Capacity::Unbounded), "unbounded");

    let (tx, rx) = memory_object_stream::<&str>(Capacity::from(0usize));
    assert_eq!(stats(&tx, &rx).max_buffer_size, Capacity::Bounded(0));
    // No receiver waiting and no room: a rendezvous stream never buffers.
    let err = tx.send_nowait("hello").unwrap_err();
    assert!(matches!(err.error, StreamError::WouldBlock));
    assert_eq!(err.item, "hello");
    assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));
}

// scenario 2 (adapted: a negative capacity cannot be written with `usize`; the unbounded
// capacity, AnyIO's `math.inf`, never blocks)
#[test]
fn unbounded_capacity_accepts_ten_thousand_items_without_blocking() {
    let (tx, rx) = memory_object_stream::<u32>(Capacity::Unbounded);
    for i in 0..10_000 {
        tx.send_nowait(i).unwrap();
    }
    let s = stats(&tx, &rx);
    assert_eq!(s.current_buffer_used, 10_000);
    assert_eq!(s.max_buffer_size, Capacity::Unbounded);
    // The async send does not block either (it completes on its first poll).
    assert!(matches!(tx.send(10_000).now_or_never(), Some(Ok(()))));
    for i in 0..=10_000 {
        assert_eq!(rx.receive_nowait().unwrap(), i);
    }
    assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));
}

// ---------------------------------------------------------------------------------------
// Hand-off and buffering

// scenario 3
#[test]
fn send_to_waiting_receiver_delivers_in_order() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let receiver = tokio::spawn(async move {
            let first = rx.receive().await.unwrap();
            let second = rx.receive().await.unwrap();
            vec![first, second]
        });
        settle().await;
        tx.send("hello").await.unwrap();
        tx.send("anyio").await.unwrap();
        assert_eq!(timeout(receiver).await.unwrap(), ["hello", "anyio"]);
    });
}

// scenario 4
#[test]
fn send_nowait_hands_items_directly_to_waiting_receivers() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let rx = Arc::new(rx);
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let rx = Arc::clone(&rx);
                tokio::spawn(async move { rx.receive().await.unwrap() })
            })
            .collect();
        settle().await;
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 2);
        tx.send_nowait("hello").unwrap();
        tx.send_nowait("anyio").unwrap();
        // Direct hand-off: the buffer (capacity 0) was bypassed.
        assert_eq!(stats(&tx, &rx).current_buffer_used, 0);
        let mut received = Vec::new();
        for receiver in receivers {
            received.push(timeout(receiver).await.unwrap());
        }
        received.sort_unstable();
        assert_eq!(received, ["anyio", "hello"]);
    });
}

// scenario 5
#[test]
fn receive_nowait_takes_item_from_waiting_sender() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let sender = tokio::spawn(async move { tx.send("hello").await.map_err(SendError::into_error) });
        settle().await;
        assert!(!sender.is_finished());
        assert_eq!(rx.receive_nowait().unwrap(), "hello");
        timeout(sender).await.unwrap().unwrap();
    });
}

// scenario 6 (AnyIO #143)
#[test]
fn send_blocks_until_receive_nowait_frees_room() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(1);
        tx.send_nowait("hello").unwrap();
        let tx2 = tx.clone();
        let sender = tokio::spawn(async move { tx2.send("anyio").await.map_err(SendError::into_error) });
        settle().await;
        assert!(!sender.is_finished());
        assert_eq!(stats(&tx, &rx).tasks_waiting_send, 1);
        assert_eq!(rx.receive_nowait().unwrap(), "hello");
        // The waiting sender's item moved into the freed room; the sender completes.
        tokio::time::timeout(Duration::from_secs(1), sender)
            .await
            .expect("the sender stayed blocked")
            .unwrap()
            .unwrap();
        assert_eq!(rx.receive_nowait().unwrap(), "anyio");
    });
}

// scenario 7
#[test]
fn send_nowait_then_receive_nowait_is_fifo() {
    let (tx, rx) = memory_object_stream::<&str>(2);
    tx.send_nowait("hello").unwrap();
    tx.send_nowait("anyio").unwrap();
    assert_eq!(rx.receive_nowait().unwrap(), "hello");
    assert_eq!(rx.receive_nowait().unwrap(), "anyio");
}

// scenario 8
#[test]
fn iteration_ends_when_sender_closes() {
    run(async {
        let (mut tx, rx) = memory_object_stream::<&'static str>(0);
        let collector = tokio::spawn(rx.collect::<Vec<_>>());
        tx.send("hello").await.unwrap();
        tx.send("anyio").await.unwrap();
        tx.aclose().await.unwrap();
        assert_eq!(timeout(collector).await.unwrap(), ["hello", "anyio"]);
    });
}

// ---------------------------------------------------------------------------------------
// Closed handles

// scenario 9
#[test]
fn closed_send_stream_ends_receiver_and_rejects_send() {
    run(async {
        let (mut tx, rx) = memory_object_stream::<&'static str>(0);
        tx.aclose().await.unwrap();
        assert!(matches!(rx.receive_nowait(), Err(StreamError::EndOfStream)));
        assert!(matches!(rx.receive().await, Err(StreamError::EndOfStream)));
        let err = tx.send("x").await.unwrap_err();
        assert!(matches!(err.error, StreamError::Closed));
        assert_eq!(err.item, "x");
        let err = tx.send_nowait("y").unwrap_err();
        assert!(matches!(err.error, StreamError::Closed));
        assert_eq!(err.item, "y");
    });
}

// scenario 10
#[test]
fn closed_receive_stream_rejects_receive_and_breaks_sender() {
    run(async {
        let (tx, mut rx) = memory_object_stream::<&'static str>(0);
        rx.aclose().await.unwrap();
        assert!(matches!(rx.receive_nowait(), Err(StreamError::Closed)));
        assert!(matches!(rx.receive().await, Err(StreamError::Closed)));
        let err = tx.send("x").await.unwrap_err();
        assert!(matches!(err.error, StreamError::Broken(_)));
        assert_eq!(err.item, "x");
        let err = tx.send_nowait("y").unwrap_err();
        assert!(matches!(err.error, StreamError::Broken(_)));
        assert_eq!(err.item, "y");
    });
}

// Closed is checked before the other side's absence (spec §1.1 precedence).
#[test]
fn closed_handle_reports_closed_before_peer_absence() {
    run(async {
        let (mut tx, mut rx) = memory_object_stream::<u8>(1);
        tx.aclose().await.unwrap();
        rx.aclose().await.unwrap();
        assert!(matches!(tx.send_nowait(1).unwrap_err().error, StreamError::Closed));
        assert!(matches!(tx.send(1).await.unwrap_err().error, StreamError::Closed));
        assert!(matches!(rx.receive_nowait(), Err(StreamError::Closed)));
        assert!(matches!(rx.receive().await, Err(StreamError::Closed)));
    });
}

// ---------------------------------------------------------------------------------------
// Cancellation

// scenario 11
#[test]
fn cancelled_receive_is_deregistered() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let rx2 = rx.clone();
        let receiver = tokio::spawn(async move { rx2.receive().await.map_err(drop) });
        settle().await;
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 1);
        receiver.abort();
        assert!(timeout(receiver).await.unwrap_err().is_cancelled());
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 0);
        let err = tx.send_nowait("hello").unwrap_err();
        assert!(matches!(err.error, StreamError::WouldBlock));
        assert_eq!(err.item, "hello");
    });
}

// scenario 11 (the same with a locally dropped future)
#[test]
fn dropped_receive_future_is_deregistered() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let mut fut = rx.receive();
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 1);
        drop(fut);
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 0);
        assert!(matches!(tx.send_nowait("hello").unwrap_err().error, StreamError::WouldBlock));
    });
}

// scenario 12
#[test]
fn cancelled_send_withdraws_its_item() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let tx2 = tx.clone();
        let sender = tokio::spawn(async move { tx2.send("hello").await.map_err(SendError::into_error) });
        settle().await;
        assert_eq!(stats(&tx, &rx).tasks_waiting_send, 1);
        sender.abort();
        assert!(timeout(sender).await.unwrap_err().is_cancelled());
        assert_eq!(stats(&tx, &rx).tasks_waiting_send, 0);
        assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));
    });
}

// spec §2.6 / AnyIO #536 (not an AnyIO test): a send future dropped after a receiver took
// its item counts as delivered
#[test]
fn send_future_dropped_after_hand_off_counts_as_delivered() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let mut fut = tx.send("hello");
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(rx.receive_nowait().unwrap(), "hello");
        drop(fut);
        // Not withdrawn, not delivered a second time.
        assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));
        assert_eq!(stats(&tx, &rx).tasks_waiting_send, 0);

        // Polled instead of dropped, the same future reports success.
        let mut fut = tx.send("anyio");
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(rx.receive_nowait().unwrap(), "anyio");
        assert!(matches!(poll_once(&mut fut).await, Poll::Ready(Ok(()))));
    });
}

// ---------------------------------------------------------------------------------------
// Clones

// scenario 13
#[test]
fn clones_keep_the_stream_open_after_originals_close() {
    run(async {
        let (mut tx, mut rx) = memory_object_stream::<&'static str>(1);
        let mut tx2 = tx.clone();
        let mut rx2 = rx.clone();
        assert_eq!(stats(&tx2, &rx2).open_send_streams, 2);
        assert_eq!(stats(&tx2, &rx2).open_receive_streams, 2);
        tx.aclose().await.unwrap();
        rx.aclose().await.unwrap();
        tx2.send_nowait("hello").unwrap();
        assert_eq!(rx2.receive_nowait().unwrap(), "hello");
        // Closing again is a no-op: the counts do not move.
        tx.aclose().await.unwrap();
        rx.aclose().await.unwrap();
        let s = stats(&tx2, &rx2);
        assert_eq!((s.open_send_streams, s.open_receive_streams), (1, 1));
        tx2.aclose().await.unwrap();
        tx2.aclose().await.unwrap();
        assert!(matches!(rx2.receive_nowait(), Err(StreamError::EndOfStream)));
        rx2.aclose().await.unwrap();
        rx2.aclose().await.unwrap();
        assert_eq!(rx2.statistics().open_receive_streams, 0);
    });
}

// scenario 14
#[test]
fn try_clone_of_closed_handle_is_closed_error() {
    run(async {
        let (mut tx, mut rx) = memory_object_stream::<&'static str>(1);
        tx.aclose().await.unwrap();
        rx.aclose().await.unwrap();
        assert!(matches!(tx.try_clone(), Err(StreamError::Closed)));
        assert!(matches!(rx.try_clone(), Err(StreamError::Closed)));
    });
}

// `Clone` of a closed handle gives a closed handle (where `try_clone` errs), and that
// handle is not counted as open, neither when made nor when dropped.
#[test]
fn clone_of_closed_handle_is_closed_and_uncounted() {
    run(async {
        let (mut tx, mut rx) = memory_object_stream::<u8>(1);
        let tx_keep = tx.clone();
        let rx_keep = rx.clone();
        tx.aclose().await.unwrap();
        rx.aclose().await.unwrap();
        assert_eq!(stats(&tx_keep, &rx_keep).open_send_streams, 1);

        let tx_closed = tx.clone();
        let rx_closed = rx.clone();
        assert!(tx_closed.is_closed());
        assert!(rx_closed.is_closed());
        let s = stats(&tx_keep, &rx_keep);
        assert_eq!((s.open_send_streams, s.open_receive_streams), (1, 1));
        assert!(matches!(tx_closed.send_nowait(7).unwrap_err().error, StreamError::Closed));
        assert!(matches!(rx_closed.receive_nowait(), Err(StreamError::Closed)));
        assert!(matches!(tx_closed.try_clone(), Err(StreamError::Closed)));
        drop(tx_closed);
        drop(rx_closed);
        let s = stats(&tx_keep, &rx_keep);
        assert_eq!((s.open_send_streams, s.open_receive_streams), (1, 1));
        // The open clones still work: the drops above closed nothing.
        tx_keep.send_nowait(1).unwrap();
        assert_eq!(rx_keep.receive_nowait().unwrap(), 1);
        assert!(matches!(rx_keep.receive_nowait(), Err(StreamError::WouldBlock)));

        // An open handle's `Clone` and `try_clone` both count.
        let a = tx_keep.clone();
        let b = tx_keep.try_clone().unwrap();
        assert!(!a.is_closed() && !b.is_closed());
        assert_eq!(tx_keep.statistics().open_send_streams, 3);
    });
}

// Closing a non-last clone has no effect on waiters (spec §2.7).
#[test]
fn closing_non_last_clone_leaves_waiters_alone() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let mut tx2 = tx.clone();
        let rx_task = rx.clone();
        let receiver = tokio::spawn(async move { rx_task.receive().await.map_err(|e| format!("{e:?}")) });
        settle().await;
        tx2.aclose().await.unwrap();
        settle().await;
        assert!(!receiver.is_finished());
        tx.send("hello").await.unwrap();
        assert_eq!(timeout(receiver).await.unwrap().unwrap(), "hello");
    });
}

// ---------------------------------------------------------------------------------------
// Closing while the other side waits

// scenario 15
#[test]
fn closing_sender_ends_waiting_receiver() {
    run(async {
        let (mut tx, rx) = memory_object_stream::<&'static str>(1);
        let receiver = tokio::spawn(async move { rx.receive().await });
        settle().await;
        tx.aclose().await.unwrap();
        let result = timeout(receiver).await.unwrap();
        assert!(matches!(result, Err(StreamError::EndOfStream)));
    });
}

// scenario 16 (AnyIO #731: a "falsy" item, here `None`)
#[test]
fn closing_receiver_breaks_waiting_sender_with_falsy_item() {
    run(async {
        let (tx, mut rx) = memory_object_stream::<Option<u8>>(0);
        let sender = tokio::spawn(async move { tx.send(None).await });
        settle().await;
        rx.aclose().await.unwrap();
        let err = timeout(sender).await.unwrap().unwrap_err();
        assert!(matches!(err.error, StreamError::Broken(_)));
        assert_eq!(err.item, None);
    });
}

// scenario 16 (every waiting sender fails, each with its own item)
#[test]
fn closing_last_receiver_breaks_every_waiting_sender() {
    run(async {
        let (tx, rx) = memory_object_stream::<u32>(1);
        tx.send_nowait(0).unwrap();
        let tx = Arc::new(tx);
        let senders: Vec<_> = (1..=3)
            .map(|i| {
                let tx = Arc::clone(&tx);
                tokio::spawn(async move {
                    tx.send(i).await.map_err(|e| (matches!(e.error, StreamError::Broken(_)), e.item))
                })
            })
            .collect();
        settle().await;
        assert_eq!(tx.statistics().tasks_waiting_send, 3);
        drop(rx);
        for (i, sender) in (1..=3).zip(senders) {
            assert_eq!(timeout(sender).await.unwrap(), Err((true, i)));
        }
        let s = tx.statistics();
        assert_eq!((s.tasks_waiting_send, s.current_buffer_used), (0, 1));
    });
}

// scenario 17
#[test]
fn buffered_item_survives_sender_close() {
    run(async {
        let (mut tx, rx) = memory_object_stream::<&'static str>(1);
        tx.send("hello").await.unwrap();
        tx.aclose().await.unwrap();
        assert_eq!(rx.receive().await.unwrap(), "hello");
        assert!(matches!(rx.receive().await, Err(StreamError::EndOfStream)));
    });
}

// scenario 18
#[test]
fn receive_cancelled_before_first_poll_consumes_nothing() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let tx = Arc::new(tx);
        let tx1 = Arc::clone(&tx);
        let hello = tokio::spawn(async move { tx1.send("hello").await.map_err(SendError::into_error) });
        settle().await;
        let tx2 = Arc::clone(&tx);
        let world = tokio::spawn(async move { tx2.send("world").await.map_err(SendError::into_error) });
        settle().await;
        assert_eq!(tx.statistics().tasks_waiting_send, 2);

        assert!(already_cancelled!(rx.receive()).is_none());
        assert_eq!(tx.statistics().tasks_waiting_send, 2);

        assert_eq!(rx.receive().await.unwrap(), "hello");
        assert_eq!(rx.receive().await.unwrap(), "world");
        timeout(hello).await.unwrap().unwrap();
        timeout(world).await.unwrap().unwrap();
    });
}

// scenario 19
#[test]
fn send_cancelled_before_first_poll_sends_nothing() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let rx = Arc::new(rx);
        let rx_task = Arc::clone(&rx);
        let receiver = tokio::spawn(async move { rx_task.receive().await.unwrap() });
        settle().await;

        assert!(already_cancelled!(tx.send("hello")).is_none());
        assert_eq!(tx.statistics().tasks_waiting_receive, 1);

        tx.send("world").await.unwrap();
        assert_eq!(timeout(receiver).await.unwrap(), "world");
        assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));
    });
}

// scenario 20 (Rust: a receive future dropped after the hand-off puts the item back)
#[test]
fn item_handed_to_cancelled_receive_is_not_lost() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let rx2 = rx.clone();
        let receiver = tokio::spawn(async move { rx2.receive().await.map_err(drop) });
        settle().await;
        tx.send_nowait("hello").unwrap();
        // Handed over: neither buffered nor waiting any more.
        let s = stats(&tx, &rx);
        assert_eq!((s.current_buffer_used, s.tasks_waiting_receive), (0, 0));
        // Cancel before the receiver task has run again: its future is dropped holding
        // the item.
        receiver.abort();
        assert!(timeout(receiver).await.unwrap_err().is_cancelled());
        let s = stats(&tx, &rx);
        assert_eq!((s.current_buffer_used, s.tasks_waiting_receive), (1, 0));
        assert_eq!(rx.receive_nowait().unwrap(), "hello");
        assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));
    });
}

// scenario 20 (the item goes back to the *front*, ahead of later items)
#[test]
fn item_handed_to_dropped_receive_goes_back_to_the_front() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(2);
        let mut fut = rx.receive();
        assert!(poll_once(&mut fut).await.is_pending());
        tx.send_nowait("first").unwrap();
        tx.send_nowait("second").unwrap();
        assert_eq!(rx.statistics().current_buffer_used, 1);
        drop(fut);
        assert_eq!(rx.receive_nowait().unwrap(), "first");
        assert_eq!(rx.receive_nowait().unwrap(), "second");
    });
}

// scenario 20 (with another receiver waiting, the item goes to it)
#[test]
fn item_handed_to_dropped_receive_goes_to_next_waiting_receiver() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let mut first = rx.receive();
        let mut second = rx.receive();
        assert!(poll_once(&mut first).await.is_pending());
        assert!(poll_once(&mut second).await.is_pending());
        tx.send_nowait("hello").unwrap();
        drop(first);
        assert_eq!(rx.statistics().current_buffer_used, 0);
        assert!(matches!(poll_once(&mut second).await, Poll::Ready(Ok("hello"))));
    });
}

// scenario 20 (polled after the hand-off instead, the future returns the item)
#[test]
fn receive_polled_after_hand_off_returns_item_even_after_sender_closes() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let mut fut = rx.receive();
        assert!(poll_once(&mut fut).await.is_pending());
        tx.send_nowait("hello").unwrap();
        drop(tx);
        assert!(matches!(poll_once(&mut fut).await, Poll::Ready(Ok("hello"))));
        assert!(matches!(rx.receive_nowait(), Err(StreamError::EndOfStream)));
    });
}

// scenario 21 (the receiver's task is aborted but not yet dropped when the item is sent)
#[test]
fn item_sent_to_aborted_receiver_is_kept() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(1);
        let rx2 = rx.clone();
        let receiver = tokio::spawn(async move { rx2.receive().await.map_err(drop) });
        settle().await;
        receiver.abort();
        // The cancellation is pending: whether the item is handed to the dying receiver
        // (and put back when its future is dropped) or buffered, it is not lost.
        tx.send_nowait("item").unwrap();
        assert!(timeout(receiver).await.unwrap_err().is_cancelled());
        assert_eq!(rx.receive_nowait().unwrap(), "item");
        assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));
    });
}

// scenario 22 (AnyIO #186)
#[test]
fn closing_receiver_right_after_receive_does_not_break_sender() {
    run(async {
        for sender_first in [true, false] {
            let (mut tx, mut rx) = memory_object_stream::<&'static str>(0);
            let a = async move {
                tx.send("test").await.map_err(SendError::into_error)?;
                tx.aclose().await
            };
            let b = async move {
                let item = rx.receive().await?;
                rx.aclose().await?;
                Ok::<_, StreamError>(item)
            };
            let (ra, rb) = if sender_first {
                tokio::join!(a, b)
            } else {
                let (rb, ra) = tokio::join!(b, a);
                (ra, rb)
            };
            ra.unwrap();
            assert_eq!(rb.unwrap(), "test");
        }
    });
}

// scenario 23
#[test]
fn statistics_track_buffer_and_waiters() {
    run(async {
        let (tx, rx) = memory_object_stream::<u32>(1);
        let (tx, rx) = (Arc::new(tx), Arc::new(rx));
        let s = stats(&tx, &rx);
        assert_eq!(s.max_buffer_size, Capacity::Bounded(1));
        assert_eq!(s.current_buffer_used, 0);
        assert_eq!((s.open_send_streams, s.open_receive_streams), (1, 1));
        assert_eq!((s.tasks_waiting_send, s.tasks_waiting_receive), (0, 0));

        // AnyIO runs this round once per handle; `stats` reads both handles every time.
        for round in 0..2 {
            let base = round * 10;
            tx.send_nowait(base + 1).unwrap();
            assert_eq!(stats(&tx, &rx).current_buffer_used, 1);

            let tx2 = Arc::clone(&tx);
            let sender = tokio::spawn(async move { tx2.send(base + 2).await.is_ok() });
            settle().await;
            let s = stats(&tx, &rx);
            assert_eq!((s.current_buffer_used, s.tasks_waiting_send), (1, 1));

            assert_eq!(rx.receive_nowait().unwrap(), base + 1);
            let s = stats(&tx, &rx);
            assert_eq!((s.current_buffer_used, s.tasks_waiting_send), (1, 0));
            assert_eq!(rx.receive_nowait().unwrap(), base + 2);
            assert_eq!(stats(&tx, &rx).current_buffer_used, 0);
            assert!(timeout(sender).await.unwrap());

            let rx2 = Arc::clone(&rx);
            let receiver = tokio::spawn(async move { rx2.receive().await.unwrap() });
            settle().await;
            assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 1);
            tx.send_nowait(base + 3).unwrap();
            assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 0);
            assert_eq!(timeout(receiver).await.unwrap(), base + 3);
        }

        tx.send_nowait(100).unwrap();
        assert_eq!(stats(&tx, &rx).tasks_waiting_send, 0);
        let mut senders = Vec::new();
        for i in 101..=103 {
            let tx2 = Arc::clone(&tx);
            senders.push(tokio::spawn(async move { tx2.send(i).await.is_ok() }));
            settle().await;
        }
        assert_eq!(stats(&tx, &rx).tasks_waiting_send, 3);
        for (expected_item, expected_waiting) in [(100, 2), (101, 1), (102, 0)] {
            assert_eq!(rx.receive_nowait().unwrap(), expected_item);
            assert_eq!(stats(&tx, &rx).tasks_waiting_send, expected_waiting);
        }
        assert_eq!(rx.receive_nowait().unwrap(), 103);
        let s = stats(&tx, &rx);
        assert_eq!((s.current_buffer_used, s.tasks_waiting_send, s.tasks_waiting_receive), (0, 0, 0));
        for sender in senders {
            assert!(timeout(sender).await.unwrap());
        }
    });
}

// scenario 24 (adapted: closing needs no waiting, so `aclose` completes on its first poll;
// `close(self)` is the consuming synchronous form)
#[test]
fn sync_close_closes_both_handles() {
    let (mut tx, mut rx) = memory_object_stream::<&str>(1);
    assert!(matches!(tx.aclose().now_or_never(), Some(Ok(()))));
    assert!(matches!(rx.aclose().now_or_never(), Some(Ok(()))));
    assert!(tx.is_closed() && rx.is_closed());
    assert!(matches!(tx.send_nowait("x").unwrap_err().error, StreamError::Closed));
    assert!(matches!(rx.receive_nowait(), Err(StreamError::Closed)));

    let (tx, rx) = memory_object_stream::<&str>(1);
    let (tx2, rx2) = (tx.clone(), rx.clone());
    tx.close();
    rx.close();
    let s = stats(&tx2, &rx2);
    assert_eq!((s.open_send_streams, s.open_receive_streams), (1, 1));
    tx2.close();
    assert!(matches!(rx2.receive_nowait(), Err(StreamError::EndOfStream)));
}

// scenario 25 (Rust: the pending receive is dropped first, then `send_nowait` buffers)
#[test]
fn send_nowait_after_receiver_task_aborted_buffers_item() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(1);
        let rx2 = rx.clone();
        let receiver = tokio::spawn(async move { rx2.receive().await.map_err(drop) });
        settle().await;
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 1);
        receiver.abort();
        settle().await;
        assert!(receiver.is_finished());
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 0);
        tx.send_nowait("hello").unwrap();
        assert_eq!(stats(&tx, &rx).current_buffer_used, 1);
        assert!(timeout(receiver).await.unwrap_err().is_cancelled());
        assert_eq!(rx.receive_nowait().unwrap(), "hello");
    });
}

// scenario 26 (adapted: dropping an unclosed handle closes it instead of warning)
#[test]
fn dropping_a_handle_closes_it() {
    let (tx, rx) = memory_object_stream::<&str>(1);
    let tx2 = tx.clone();
    drop(tx);
    // A remaining clone keeps the send side open.
    assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));
    drop(tx2);
    assert!(matches!(rx.receive_nowait(), Err(StreamError::EndOfStream)));

    let (tx, rx) = memory_object_stream::<&str>(1);
    drop(rx);
    let err = tx.send_nowait("hello").unwrap_err();
    assert!(matches!(err.error, StreamError::Broken(_)));
    assert_eq!(err.item, "hello");
    assert_eq!(tx.statistics().open_receive_streams, 0);
}

// scenario 26 (dropping the last sender wakes a waiting receiver with the end of stream)
#[test]
fn dropping_last_sender_ends_waiting_receiver() {
    run(async {
        let (tx, rx) = memory_object_stream::<u8>(0);
        let receiver = tokio::spawn(async move { rx.receive().await });
        settle().await;
        drop(tx);
        assert!(matches!(timeout(receiver).await.unwrap(), Err(StreamError::EndOfStream)));
    });
}

/// Neither `Clone` nor `Debug`; counts its drops.
struct Opaque {
    value: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Opaque {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

// scenario 27 (adapted: the handles are generic over any `Send` item; no `Clone` or
// `Debug` bound, and the handles and futures are `Send + Sync` / `Send`)
#[test]
fn generic_over_non_clone_non_debug_items() {
    fn assert_send_sync<X: Send + Sync>(_: &X) {}
    fn assert_send<X: Send>(_: &X) {}
    run(async {
        let drops = Arc::new(AtomicUsize::new(0));
        let opaque = |value| Opaque { value, drops: Arc::clone(&drops) };
        let (tx, rx) = memory_object_stream::<Opaque>(1);
        assert_send_sync(&tx);
        assert_send_sync(&rx);
        {
            let send = tx.send(opaque(0));
            let receive = rx.receive();
            assert_send(&send);
            assert_send(&receive);
        }
        tx.send(opaque(1)).await.unwrap();
        assert_eq!(rx.receive().await.unwrap().value, 1);
        tx.send_nowait(opaque(2)).unwrap();
        let err = tx.send_nowait(opaque(3)).unwrap_err();
        // `SendError<T>` is `Debug` without `T: Debug`.
        assert!(format!("{err:?}").contains("WouldBlock"));
        assert_eq!(err.item.value, 3);
        drop(err);
        // Dropped so far: 0 (never sent), 1 (received), 3 (returned in the error).
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        // Item 2 is still buffered; dropping both handles frees it.
        drop(tx);
        drop(rx);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    });
}

// scenario 28: test_deprecated_item_type_parameter is Python-only (the deprecated
// `item_type=` argument); the Rust API has no such argument. Not applicable.

// scenario 29 (adapted: `Debug` of a pending receive works with and without an item
// handed to it)
#[test]
fn pending_receive_future_debug_before_and_after_hand_off() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let mut fut = rx.receive();
        let fresh = format!("{fut:?}");
        assert!(fresh.contains("Receive"), "{fresh}");
        assert!(poll_once(&mut fut).await.is_pending());
        let waiting = format!("{fut:?}");
        assert!(waiting.contains("item_handed: false"), "{waiting}");
        tx.send_nowait("hello").unwrap();
        let handed = format!("{fut:?}");
        assert!(handed.contains("item_handed: true"), "{handed}");
        assert!(matches!(poll_once(&mut fut).await, Poll::Ready(Ok("hello"))));
        let done = format!("{fut:?}");
        assert!(done.contains("item_handed: false"), "{done}");
        // The handles and the send future format too.
        assert!(format!("{tx:?}").contains("MemoryObjectSendStream"));
        assert!(format!("{rx:?}").contains("MemoryObjectReceiveStream"));
        assert!(format!("{:?}", tx.send("x")).contains("Send"));
    });
}

// ---------------------------------------------------------------------------------------
// Derived scenarios (from source; not AnyIO tests)

// D6 (derived, not an AnyIO test)
#[test]
fn closing_receivers_keeps_buffered_items_and_breaks_sends() {
    run(async {
        let (tx, mut rx) = memory_object_stream::<&'static str>(2);
        tx.send("a").await.unwrap();
        tx.send("b").await.unwrap();
        rx.aclose().await.unwrap();
        let s = stats(&tx, &rx);
        assert_eq!(s.current_buffer_used, 2);
        assert_eq!(s.open_receive_streams, 0);
        let err = tx.send_nowait("c").unwrap_err();
        assert!(matches!(err.error, StreamError::Broken(_)));
        assert_eq!(err.item, "c");
    });
}

// D7 (derived, not an AnyIO test)
#[test]
fn waiting_receivers_are_served_first_come_first_served() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let rx = Arc::new(rx);
        let rx1 = Arc::clone(&rx);
        let r1 = tokio::spawn(async move { rx1.receive().await.unwrap() });
        settle().await;
        let rx2 = Arc::clone(&rx);
        let r2 = tokio::spawn(async move { rx2.receive().await.unwrap() });
        settle().await;
        tx.send_nowait("a").unwrap();
        tx.send_nowait("b").unwrap();
        assert_eq!(timeout(r1).await.unwrap(), "a");
        assert_eq!(timeout(r2).await.unwrap(), "b");
    });
}

// spec §2.8 (not an AnyIO test): waiting senders are drained oldest first, after the buffer
#[test]
fn waiting_senders_are_drained_in_order_after_the_buffer() {
    run(async {
        let (tx, rx) = memory_object_stream::<u32>(2);
        tx.send_nowait(0).unwrap();
        tx.send_nowait(1).unwrap();
        let tx = Arc::new(tx);
        let mut senders = Vec::new();
        for i in 2..6 {
            let tx2 = Arc::clone(&tx);
            senders.push(tokio::spawn(async move { tx2.send(i).await.is_ok() }));
            settle().await;
        }
        let received: Vec<u32> = (0..6).map(|_| rx.receive_nowait().unwrap()).collect();
        assert_eq!(received, [0, 1, 2, 3, 4, 5]);
        for sender in senders {
            assert!(timeout(sender).await.unwrap());
        }
    });
}

// ---------------------------------------------------------------------------------------
// The `futures::Stream` impl of the receiver

#[test]
fn stream_impl_yields_items_until_senders_close() {
    run(async {
        let (tx, mut rx) = memory_object_stream::<u32>(4);
        let tx2 = tx.clone();
        let producer = tokio::spawn(async move {
            for i in 0..10 {
                tx2.send(i).await.unwrap();
            }
        });
        assert_eq!(rx.next().await, Some(0));
        drop(tx);
        let rest: Vec<u32> = timeout(rx.by_ref().collect()).await;
        assert_eq!(rest, (1..10).collect::<Vec<_>>());
        timeout(producer).await.unwrap();
        // Ended streams stay ended.
        assert_eq!(rx.next().await, None);
    });
}

#[test]
fn stream_impl_on_closed_handle_ends() {
    run(async {
        let (tx, mut rx) = memory_object_stream::<u32>(1);
        tx.send_nowait(1).unwrap();
        rx.aclose().await.unwrap();
        assert_eq!(rx.next().await, None);
    });
}

// An item handed to a `poll_next` that is not polled again is taken back by the handle's
// next `receive_nowait` (or `receive`), not lost.
#[test]
fn stream_registration_is_withdrawn_by_receive_nowait_and_receive() {
    run(async {
        let (tx, mut rx) = memory_object_stream::<&'static str>(0);
        assert!(poll_next_once(&mut rx).await.is_pending());
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 1);
        tx.send_nowait("a").unwrap();
        assert_eq!(rx.receive_nowait().unwrap(), "a");
        assert!(matches!(rx.receive_nowait(), Err(StreamError::WouldBlock)));

        assert!(poll_next_once(&mut rx).await.is_pending());
        tx.send_nowait("b").unwrap();
        assert_eq!(rx.receive().await.unwrap(), "b");

        // Polled again, the stream returns the handed item itself.
        assert!(poll_next_once(&mut rx).await.is_pending());
        tx.send_nowait("c").unwrap();
        assert!(matches!(poll_next_once(&mut rx).await, Poll::Ready(Some("c"))));
        assert_eq!(stats(&tx, &rx).tasks_waiting_receive, 0);
    });
}

// An abandoned `next()` (e.g. the losing branch of a select) leaves its registration in
// the handle; dropping the handle puts a handed item back for the other receivers.
#[test]
fn item_handed_to_abandoned_stream_poll_is_recovered_when_handle_drops() {
    run(async {
        let (tx, rx) = memory_object_stream::<&'static str>(0);
        let mut rx_stream = rx.clone();
        let outcome = tokio::select! {
            biased;
            item = rx_stream.next() => Some(item),
            () = std::future::ready(()) => None,
        };
        assert!(outcome.is_none());
        tx.send_nowait("hello").unwrap();
        drop(rx_stream);
        assert_eq!(rx.receive_nowait().unwrap(), "hello");
    });
}

// ---------------------------------------------------------------------------------------
// The generic traits behave like the inherent methods

#[test]
fn trait_methods_match_inherent_methods() {
    run(async {
        let (mut tx, mut rx) = memory_object_stream::<u32>(1);
        ObjectSendStream::send(&mut tx, 1).await.unwrap();
        assert_eq!(ObjectReceiveStream::receive(&mut rx).await.unwrap(), 1);
        ObjectSendStream::send_nowait(&mut tx, 2).unwrap();
        assert!(matches!(ObjectSendStream::send_nowait(&mut tx, 3), Err(StreamError::WouldBlock)));
        assert_eq!(rx.receive_nowait().unwrap(), 2);

        // Through a generic function, as other layers use them.
        async fn pump<S: ObjectSendStream<u32>, R: ObjectReceiveStream<u32>>(s: &mut S, r: &mut R) -> u32 {
            s.send(41).await.unwrap();
            r.receive().await.unwrap() + 1
        }
        assert_eq!(pump(&mut tx, &mut rx).await, 42);

        // `aclose` through the trait, then every operation reports Closed, through the
        // trait and inherently; a second `aclose` is a no-op.
        AsyncResource::aclose(&mut tx).await.unwrap();
        AsyncResource::aclose(&mut rx).await.unwrap();
        AsyncResource::aclose(&mut tx).await.unwrap();
        AsyncResource::aclose(&mut rx).await.unwrap();
        assert!(tx.is_closed() && rx.is_closed());
        assert!(matches!(ObjectSendStream::send(&mut tx, 4).await, Err(StreamError::Closed)));
        assert!(matches!(ObjectSendStream::send_nowait(&mut tx, 5), Err(StreamError::Closed)));
        assert!(matches!(ObjectReceiveStream::receive(&mut rx).await, Err(StreamError::Closed)));
        assert!(matches!(tx.send(6).await.unwrap_err().error, StreamError::Closed));
        assert!(matches!(tx.try_send(7).unwrap_err().error, StreamError::Closed));
        assert!(matches!(rx.receive().await, Err(StreamError::Closed)));
        assert!(matches!(rx.try_receive(), Err(StreamError::Closed)));
        assert!(matches!(tx.try_clone(), Err(StreamError::Closed)));
        assert!(matches!(rx.try_clone(), Err(StreamError::Closed)));
    });
}

#[test]
fn trait_errors_match_inherent_errors() {
    run(async {
        let (mut tx, mut rx) = memory_object_stream::<u32>(0);
        assert!(matches!(ObjectSendStream::send_nowait(&mut tx, 1), Err(StreamError::WouldBlock)));
        drop(tx);
        assert!(matches!(ObjectReceiveStream::receive(&mut rx).await, Err(StreamError::EndOfStream)));

        let (mut tx, rx) = memory_object_stream::<u32>(0);
        drop(rx);
        assert!(matches!(ObjectSendStream::send(&mut tx, 1).await, Err(StreamError::Broken(_))));
        assert!(matches!(ObjectSendStream::send_nowait(&mut tx, 1), Err(StreamError::Broken(_))));
        // Memory streams provide no typed attributes.
        assert!(matches!(
            tx.extra(streamtool::streams::attrs::socket::LOCAL_ADDRESS),
            Err(StreamError::AttributeNotFound(_))
        ));
    });
}
