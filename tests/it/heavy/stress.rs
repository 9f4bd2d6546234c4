//! Stress test of the memory object stream's cancellation invariant (spec §2.6): "an item
//! is never lost or duplicated".
//!
//! Four producers and four consumers share one stream (each task has its own clone) on a
//! two-worker multi-thread runtime. Operations are cancelled at random points: futures are
//! dropped by zero or short timeouts and by `select!` against a few yields, and whole tasks
//! are aborted (and replaced) at random. A ledger records, per item, whether its send
//! reported success, failure (the item came back) or was cancelled, and how often any
//! consumer (or the final drain) received it. Then:
//! - no item is received twice;
//! - an item whose send returned `Ok` is received exactly once;
//! - an item whose send returned an error is never received;
//! - an item whose send was cancelled is received at most once (it may have been taken
//!   before the cancellation: that counts as delivered).
//!
//! Randomness comes from a seeded xorshift; set `STRESS_SEED` to replay other choices
//! (thread scheduling still varies from run to run).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use streamtool::streams::*;
use tokio::task::JoinHandle;

use crate::support::{TEST_TIMEOUT, run_on_workers};

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;
const ITEMS_PER_PRODUCER: u32 = 2_000;
const TOTAL: usize = PRODUCERS * ITEMS_PER_PRODUCER as usize;
/// Runs per capacity, each with its own seed and a fresh runtime.
const RUNS_PER_CAPACITY: u64 = 4;
/// How many times the controller aborts (and replaces) a task while producers run.
const ABORT_ROUNDS: usize = 60;
/// Upper bound on one consumer's loop iterations (it normally ends at end of stream).
const CONSUMER_STEPS: usize = 5_000_000;
const DEFAULT_SEED: u64 = 0x5eed_0fa1_1705;

// Per-item send status.
const NOT_ATTEMPTED: u8 = 0;
const IN_FLIGHT: u8 = 1;
const SENT: u8 = 2;
const FAILED: u8 = 3;
const CANCELLED: u8 = 4;

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Spread nearby seeds apart; never zero.
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One item; deliberately not `Clone` or `Copy`, so the test cannot duplicate it.
#[derive(PartialEq, Eq)]
struct Item {
    producer: u32,
    seq: u32,
}

impl Item {
    fn index(&self) -> usize {
        self.producer as usize * ITEMS_PER_PRODUCER as usize + self.seq as usize
    }
}

struct Ledger {
    status: Vec<AtomicU8>,
    received: Vec<AtomicU32>,
    /// Per producer: the next sequence number to send (shared by a producer's replacements).
    next_seq: Vec<AtomicU32>,
}

impl Ledger {
    /// Checks every item's fate and counts it in `summary`: sent items arrived exactly
    /// once, failed ones never, cancelled ones at most once. An item whose sender was
    /// aborted mid-send (`IN_FLIGHT`) counts as cancelled when `in_flight_ok`.
    fn tally(&self, summary: &mut Summary, in_flight_ok: bool, describe: impl Fn(usize) -> String) {
        for index in 0..self.status.len() {
            let status = self.status[index].load(Ordering::SeqCst);
            let count = self.received[index].load(Ordering::SeqCst);
            let what = describe(index);
            assert!(count <= 1, "{what}: received {count} times (status {status})");
            let cancelled = status == CANCELLED || (in_flight_ok && status == IN_FLIGHT);
            match status {
                SENT => {
                    assert_eq!(count, 1, "{what}: send returned Ok but the item was never received");
                    summary.sent += 1;
                }
                FAILED => {
                    assert_eq!(count, 0, "{what}: send returned the item in an error, yet it was received");
                    summary.failed += 1;
                }
                // A cancelled send (dropped future, or its task aborted mid-send): delivered
                // if a receiver had already taken the item, withdrawn otherwise.
                _ if cancelled && count == 1 => summary.cancelled_delivered += 1,
                _ if cancelled => summary.cancelled_withdrawn += 1,
                _ => panic!("{what}: unexpected status {status} (never attempted, or still in flight)"),
            }
        }
    }

    fn new() -> Self {
        Ledger {
            status: (0..TOTAL).map(|_| AtomicU8::new(NOT_ATTEMPTED)).collect(),
            received: (0..TOTAL).map(|_| AtomicU32::new(0)).collect(),
            next_seq: (0..PRODUCERS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn set(&self, index: usize, status: u8) {
        self.status[index].store(status, Ordering::SeqCst);
    }

    fn record_received(&self, item: &Item) {
        self.received[item.index()].fetch_add(1, Ordering::SeqCst);
    }
}

async fn yield_times(n: u64) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// Awaits `fut`, or cancels (drops) it at a random point. `None` = cancelled.
async fn maybe_cancel<F: Future>(rng: &mut Rng, fut: F) -> Option<F::Output> {
    match rng.below(8) {
        0..=2 => Some(fut.await),
        // Polled once, then dropped if still pending.
        3 => tokio::time::timeout(Duration::ZERO, fut).await.ok(),
        // Dropped after up to about a millisecond (the timer's granularity).
        4 => tokio::time::timeout(Duration::from_micros(rng.below(300)), fut).await.ok(),
        // Dropped after a few scheduler turns.
        _ => {
            let yields = rng.below(4);
            tokio::select! {
                biased;
                out = fut => Some(out),
                () = yield_times(yields) => None,
            }
        }
    }
}

async fn producer(id: usize, tx: MemoryObjectSendStream<Item>, ledger: Arc<Ledger>, seed: u64) {
    let mut rng = Rng::new(seed);
    for _ in 0..=ITEMS_PER_PRODUCER {
        let seq = ledger.next_seq[id].fetch_add(1, Ordering::SeqCst);
        if seq >= ITEMS_PER_PRODUCER {
            return;
        }
        let item = Item { producer: id as u32, seq };
        let index = item.index();
        // No await between claiming the number and this store: an abort cannot fall between.
        ledger.set(index, IN_FLIGHT);
        let status = if rng.below(6) == 0 {
            match tx.send_nowait(item) {
                Ok(()) => SENT,
                Err(err) => {
                    assert!(matches!(err.error, StreamError::WouldBlock), "send_nowait: {:?}", err.error);
                    assert_eq!(err.item.index(), index, "send_nowait returned another item");
                    FAILED
                }
            }
        } else {
            match maybe_cancel(&mut rng, tx.send(item)).await {
                Some(Ok(())) => SENT,
                Some(Err(err)) => panic!("send failed although a receiver is open: {:?}", err.error),
                None => CANCELLED,
            }
        };
        // Again no await between the send's outcome and recording it.
        ledger.set(index, status);
        if rng.below(64) == 0 {
            tokio::task::yield_now().await;
        }
    }
    panic!("producer {id} claimed more numbers than it has items");
}

async fn consumer(mut rx: MemoryObjectReceiveStream<Item>, ledger: Arc<Ledger>, seed: u64) {
    let mut rng = Rng::new(seed);
    for _ in 0..CONSUMER_STEPS {
        let outcome = match rng.below(10) {
            0 => match rx.receive_nowait() {
                Err(StreamError::WouldBlock) => {
                    tokio::task::yield_now().await;
                    continue;
                }
                other => Some(other),
            },
            // The `futures::Stream` impl, abandoned at random like the others.
            1 => match maybe_cancel(&mut rng, rx.next()).await {
                Some(Some(item)) => Some(Ok(item)),
                Some(None) => Some(Err(StreamError::EndOfStream)),
                None => None,
            },
            _ => maybe_cancel(&mut rng, rx.receive()).await,
        };
        match outcome {
            // No await between the receive completing and recording it.
            Some(Ok(item)) => ledger.record_received(&item),
            Some(Err(StreamError::EndOfStream)) => return,
            Some(Err(err)) => panic!("unexpected receive error: {err:?}"),
            None => {}
        }
        // Now and then a slow consumer, so that buffers fill and senders wait.
        if rng.below(50) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    panic!("consumer did not reach the end of the stream within {CONSUMER_STEPS} steps");
}

/// Awaits a task that may have been aborted; re-raises its panic if it panicked.
async fn join(handle: JoinHandle<()>) {
    match handle.await {
        Ok(()) => {}
        Err(err) if err.is_cancelled() => {}
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

fn seed() -> u64 {
    std::env::var("STRESS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED)
}

#[derive(Debug, Default)]
struct Summary {
    sent: usize,
    failed: usize,
    cancelled_delivered: usize,
    cancelled_withdrawn: usize,
    aborted_producers: usize,
    aborted_consumers: usize,
}

/// A capacity's contribution to a run's seed (a bounded capacity's own number, as before
/// unbounded capacities were stressed too).
fn capacity_seed(capacity: Capacity) -> u64 {
    match capacity {
        Capacity::Bounded(n) => n as u64,
        Capacity::Unbounded => u64::MAX,
    }
}

async fn stress_one(capacity: Capacity, seed: u64) -> Summary {
    let capacity_label = format!("{capacity:?}");
    let mut rng = Rng::new(seed ^ capacity_seed(capacity));
    let (tx, rx) = memory_object_stream::<Item>(capacity);
    let ledger = Arc::new(Ledger::new());
    let mut summary = Summary::default();

    let spawn_producer =
        |id: usize, rng: &mut Rng| tokio::spawn(producer(id, tx.clone(), Arc::clone(&ledger), rng.next()));
    let mut producers: Vec<JoinHandle<()>> = (0..PRODUCERS).map(|id| spawn_producer(id, &mut rng)).collect();
    let spawn_consumer = |rng: &mut Rng| tokio::spawn(consumer(rx.clone(), Arc::clone(&ledger), rng.next()));
    let mut consumers: Vec<JoinHandle<()>> = (0..CONSUMERS).map(|_| spawn_consumer(&mut rng)).collect();

    // Abort whole tasks at random points while the producers run, replacing each.
    for _ in 0..ABORT_ROUNDS {
        if rng.below(3) == 0 {
            yield_times(rng.below(20)).await;
        } else {
            tokio::time::sleep(Duration::from_micros(rng.below(1_500))).await;
        }
        if rng.below(2) == 0 {
            let id = rng.below(PRODUCERS as u64) as usize;
            producers[id].abort();
            let old = std::mem::replace(&mut producers[id], spawn_producer(id, &mut rng));
            join(old).await;
            summary.aborted_producers += 1;
        } else {
            let index = rng.below(CONSUMERS as u64) as usize;
            consumers[index].abort();
            let old = std::mem::replace(&mut consumers[index], spawn_consumer(&mut rng));
            join(old).await;
            summary.aborted_consumers += 1;
        }
    }

    // Close the original sender; the producers finish and drop their clones, which ends
    // the stream for the consumers once the buffer is drained.
    drop(tx);
    for handle in producers {
        join(handle).await;
    }
    for handle in consumers {
        join(handle).await;
    }
    // The final drain on the original receiver: nothing may be left behind anywhere.
    for _ in 0..=TOTAL {
        match rx.receive_nowait() {
            Ok(item) => ledger.record_received(&item),
            Err(StreamError::EndOfStream) => break,
            Err(err) => panic!("unexpected error in the final drain: {err:?}"),
        }
    }
    let stats = rx.statistics();
    let capacity = capacity_label;
    assert_eq!(stats.current_buffer_used, 0, "capacity {capacity}: {stats:?}");
    assert_eq!(stats.open_send_streams, 0, "capacity {capacity}: {stats:?}");
    assert_eq!(stats.open_receive_streams, 1, "capacity {capacity}: {stats:?}");
    assert_eq!(stats.tasks_waiting_send, 0, "capacity {capacity}: {stats:?}");
    assert_eq!(stats.tasks_waiting_receive, 0, "capacity {capacity}: {stats:?}");
    drop(rx);

    ledger.tally(&mut summary, true, |index| {
        let (producer, seq) = (index / ITEMS_PER_PRODUCER as usize, index % ITEMS_PER_PRODUCER as usize);
        format!("capacity {capacity}, seed {seed}, item ({producer}, {seq})")
    });
    summary
}

/// Runs [`RUNS_PER_CAPACITY`] rounds at `capacity`, each on a fresh two-worker runtime.
fn stress(capacity: impl Into<Capacity>) {
    let capacity: Capacity = capacity.into();
    // A send into a buffer with room completes on its first poll: only the coop budget
    // or an abort can cancel one, so a run may cancel none.
    let sends_can_wait = match capacity {
        Capacity::Bounded(n) => n < TOTAL,
        Capacity::Unbounded => false,
    };
    let base_seed = seed();
    let started = std::time::Instant::now();
    for run in 0..RUNS_PER_CAPACITY {
        let seed = base_seed.wrapping_add(run);
        let summary = run_on_workers(2, TEST_TIMEOUT, stress_one(capacity, seed));
        eprintln!("capacity {capacity:?}, seed {seed}: {summary:?}");
        assert!(summary.sent > 0, "capacity {capacity:?}, seed {seed}: nothing was sent successfully");
        assert!(
            !sends_can_wait || summary.cancelled_delivered + summary.cancelled_withdrawn > 0,
            "capacity {capacity:?}, seed {seed}: no send was cancelled; the run exercised nothing"
        );
        assert_eq!(summary.aborted_producers + summary.aborted_consumers, ABORT_ROUNDS);
    }
    eprintln!("capacity {capacity:?}: {RUNS_PER_CAPACITY} runs took {:?}", started.elapsed());
}

#[test]
fn rendezvous_stream_under_random_cancellation_loses_and_duplicates_nothing() {
    stress(0);
}

#[test]
fn capacity_one_stream_under_random_cancellation_loses_and_duplicates_nothing() {
    stress(1);
}

#[test]
fn capacity_64_stream_under_random_cancellation_loses_and_duplicates_nothing() {
    stress(64);
}

// The unbounded stream's lock-free paths (a send pushes without the lock unless a receiver
// waits; a receive pops without it) racing with registrations and requeued items.
#[test]
fn unbounded_stream_under_random_cancellation_loses_and_duplicates_nothing() {
    stress(Capacity::Unbounded);
}

// A bound too large to allocate up front: an unbounded queue whose limit senders check
// under the lock, while receives stay lock-free.
#[test]
fn large_bounded_stream_under_random_cancellation_loses_and_duplicates_nothing() {
    stress(100_000);
}

// ---------------------------------------------------------------------------------------
// Per-sender order

/// Receives until the end of the stream, checking that each producer's items arrive in the
/// order it sent them. No receive is cancelled here: a receive cancelled after the hand-off
/// puts its item back at the front, and another consumer may have taken a later item of
/// the same producer meanwhile, so order holds only for receives that complete.
async fn ordered_consumer(rx: MemoryObjectReceiveStream<Item>, ledger: Arc<Ledger>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut rx = rx;
    let mut last_seen: Vec<Option<u32>> = vec![None; PRODUCERS];
    for _ in 0..CONSUMER_STEPS {
        let outcome = match rng.below(8) {
            0 => match rx.receive_nowait() {
                Err(StreamError::WouldBlock) => {
                    tokio::task::yield_now().await;
                    continue;
                }
                other => other,
            },
            1 => rx.next().await.ok_or(StreamError::EndOfStream),
            _ => rx.receive().await,
        };
        match outcome {
            Ok(item) => {
                let last = &mut last_seen[item.producer as usize];
                assert!(
                    last.is_none_or(|last| last < item.seq),
                    "producer {}: item {} received after item {last:?}",
                    item.producer,
                    item.seq
                );
                *last = Some(item.seq);
                ledger.record_received(&item);
            }
            Err(StreamError::EndOfStream) => return,
            Err(err) => panic!("unexpected receive error: {err:?}"),
        }
        if rng.below(64) == 0 {
            tokio::task::yield_now().await;
        }
    }
    panic!("consumer did not reach the end of the stream within {CONSUMER_STEPS} steps");
}

/// Producers with randomly cancelled sends, consumers that never cancel: every item whose
/// send succeeded arrives exactly once, and each consumer sees each producer's items in
/// send order.
async fn ordered_one(capacity: Capacity, seed: u64) -> Summary {
    let mut rng = Rng::new(seed ^ capacity_seed(capacity));
    let (tx, rx) = memory_object_stream::<Item>(capacity);
    let ledger = Arc::new(Ledger::new());
    let producers: Vec<JoinHandle<()>> = (0..PRODUCERS)
        .map(|id| tokio::spawn(producer(id, tx.clone(), Arc::clone(&ledger), rng.next())))
        .collect();
    let consumers: Vec<JoinHandle<()>> = (0..CONSUMERS)
        .map(|_| tokio::spawn(ordered_consumer(rx.clone(), Arc::clone(&ledger), rng.next())))
        .collect();
    drop(tx);
    drop(rx);
    for handle in producers.into_iter().chain(consumers) {
        join(handle).await;
    }
    let mut summary = Summary::default();
    ledger.tally(&mut summary, false, |index| format!("capacity {capacity:?}, seed {seed}, item {index}"));
    summary
}

#[test]
fn per_sender_order_holds_under_random_send_cancellation() {
    let base_seed = seed();
    for capacity in [Capacity::Bounded(0), Capacity::Bounded(1), Capacity::Bounded(64), Capacity::Unbounded] {
        for run in 0..2 {
            let seed = base_seed.wrapping_add(run);
            let summary = run_on_workers(2, TEST_TIMEOUT, ordered_one(capacity, seed));
            eprintln!("ordered, capacity {capacity:?}, seed {seed}: {summary:?}");
            assert!(summary.sent > 0, "capacity {capacity:?}, seed {seed}: nothing was sent successfully");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lost wake-ups

/// Two tasks bounce a counter over two streams, so each item is the last one sent until
/// it is answered: a wake-up lost between a lock-free send and a receiver registering
/// would stall the exchange (and fail the timeout) instead of being rescued by later sends.
async fn ping_pong(capacity: Capacity, rounds: u32) {
    let (ping_tx, ping_rx) = memory_object_stream::<u32>(capacity);
    let (pong_tx, pong_rx) = memory_object_stream::<u32>(capacity);
    let echo = tokio::spawn(async move {
        while let Ok(n) = ping_rx.receive().await {
            pong_tx.send(n + 1).await.map_err(SendError::into_error).expect("pong");
        }
    });
    for i in 0..rounds {
        ping_tx.send(2 * i).await.map_err(SendError::into_error).expect("ping");
        assert_eq!(pong_rx.receive().await.expect("pong"), 2 * i + 1);
    }
    drop(ping_tx);
    join(echo).await;
}

#[test]
fn ping_pong_never_stalls() {
    for capacity in [Capacity::Unbounded, Capacity::Bounded(1), Capacity::Bounded(0)] {
        run_on_workers(2, TEST_TIMEOUT, ping_pong(capacity, 20_000));
    }
}
