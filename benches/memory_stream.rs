//! Items per second through streamtool's memory object stream against tokio's mpsc,
//! async-channel and flume, at equal capacity.
//!
//! One criterion group per (capacity, topology). Every iteration moves `N` `u64` items
//! from the producers to the consumers on one shared two-worker multi-thread runtime:
//! each producer and consumer is its own spawned task holding its own handle (a clone),
//! the original handles are dropped before the tasks are joined, and the consumers run
//! until the channel reports that every sender is gone. The item counts are checked.
//!
//! tokio's mpsc has a single receiver; in the 4:4 topology its four consumers share it
//! behind a `tokio::sync::Mutex` (the usual workaround), which the group name says.
//!
//! Run with `cargo bench --bench memory_stream`; a filter narrows it down, e.g.
//! `cargo bench --bench memory_stream -- 'cap=64/'`.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use streamtool::streams::{Capacity, memory_object_stream};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Items moved per iteration, split evenly among the producers.
const N: u64 = 100_000;

/// A channel capacity as the benchmark names it.
#[derive(Debug, Clone, Copy)]
enum Cap {
    Bounded(usize),
    Unbounded,
}

impl Cap {
    fn label(self) -> String {
        match self {
            Cap::Bounded(n) => format!("cap={n}"),
            Cap::Unbounded => "cap=unbounded".to_string(),
        }
    }
}

/// Producers and consumers.
#[derive(Debug, Clone, Copy)]
struct Topology {
    producers: u64,
    consumers: u64,
}

impl Topology {
    fn label(self) -> String {
        format!("{}p{}c", self.producers, self.consumers)
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Joins the producers, then sums what the consumers received and checks it is `N`.
async fn join_all(producers: Vec<JoinHandle<()>>, consumers: Vec<JoinHandle<u64>>) -> u64 {
    for p in producers {
        p.await.expect("producer task");
    }
    let mut received = 0;
    for c in consumers {
        received += c.await.expect("consumer task");
    }
    assert_eq!(received, N, "every item is received exactly once");
    received
}

/// Spawns one task per producer and per consumer; `make_producer(i, items)` and
/// `make_consumer(i)` build each task's future with its own handle.
fn spawn_all<P, C>(
    topo: Topology,
    mut make_producer: impl FnMut(u64, u64) -> P,
    mut make_consumer: impl FnMut(u64) -> C,
) -> (Vec<JoinHandle<()>>, Vec<JoinHandle<u64>>)
where
    P: Future<Output = ()> + Send + 'static,
    C: Future<Output = u64> + Send + 'static,
{
    let per_producer = N / topo.producers;
    assert_eq!(per_producer * topo.producers, N, "N splits evenly among the producers");
    let consumers = (0..topo.consumers).map(|i| tokio::spawn(make_consumer(i))).collect();
    let producers = (0..topo.producers).map(|i| tokio::spawn(make_producer(i, per_producer))).collect();
    (producers, consumers)
}

async fn run_streamtool(cap: Cap, topo: Topology) -> u64 {
    let capacity = match cap {
        Cap::Bounded(n) => Capacity::Bounded(n),
        Cap::Unbounded => Capacity::Unbounded,
    };
    let (tx, rx) = memory_object_stream::<u64>(capacity);
    let (producers, consumers) = spawn_all(
        topo,
        |_, items| {
            let tx = tx.clone();
            async move {
                for i in 0..items {
                    tx.send(i).await.expect("send");
                }
            }
        },
        |_| {
            let rx = rx.clone();
            async move {
                let mut count = 0u64;
                loop {
                    match rx.receive().await {
                        Ok(item) => {
                            black_box(item);
                            count += 1;
                        }
                        Err(err) if err.is_end_of_stream() => return count,
                        Err(err) => panic!("receive: {err}"),
                    }
                }
            }
        },
    );
    drop(tx);
    drop(rx);
    join_all(producers, consumers).await
}

async fn run_tokio_mpsc(cap: Cap, topo: Topology) -> u64 {
    use tokio::sync::{Mutex, mpsc};

    // Bounded and unbounded senders differ in type; erase the difference per producer.
    enum Tx {
        Bounded(mpsc::Sender<u64>),
        Unbounded(mpsc::UnboundedSender<u64>),
    }
    enum Rx {
        Bounded(mpsc::Receiver<u64>),
        Unbounded(mpsc::UnboundedReceiver<u64>),
    }
    impl Rx {
        async fn recv(&mut self) -> Option<u64> {
            match self {
                Rx::Bounded(rx) => rx.recv().await,
                Rx::Unbounded(rx) => rx.recv().await,
            }
        }
    }

    let (tx, rx) = match cap {
        Cap::Bounded(n) => {
            let (tx, rx) = mpsc::channel(n);
            (Tx::Bounded(tx), Rx::Bounded(rx))
        }
        Cap::Unbounded => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Tx::Unbounded(tx), Rx::Unbounded(rx))
        }
    };
    let single_consumer = topo.consumers == 1;
    let mut rx_single = Some(rx);
    let rx_shared = if single_consumer { None } else { Some(Arc::new(Mutex::new(rx_single.take()))) };
    let (producers, consumers) = spawn_all(
        topo,
        |_, items| {
            let tx = match &tx {
                Tx::Bounded(tx) => Tx::Bounded(tx.clone()),
                Tx::Unbounded(tx) => Tx::Unbounded(tx.clone()),
            };
            async move {
                match tx {
                    Tx::Bounded(tx) => {
                        for i in 0..items {
                            tx.send(i).await.expect("send");
                        }
                    }
                    Tx::Unbounded(tx) => {
                        for i in 0..items {
                            tx.send(i).expect("send");
                        }
                    }
                }
            }
        },
        |_| {
            let single = rx_single.take();
            let shared = rx_shared.clone();
            async move {
                let mut count = 0u64;
                if let Some(mut rx) = single {
                    while let Some(item) = rx.recv().await {
                        black_box(item);
                        count += 1;
                    }
                } else {
                    let shared = shared.expect("shared receiver");
                    loop {
                        let item = shared.lock().await.as_mut().expect("receiver").recv().await;
                        match item {
                            Some(item) => {
                                black_box(item);
                                count += 1;
                            }
                            None => break,
                        }
                    }
                }
                count
            }
        },
    );
    drop(tx);
    drop(rx_shared);
    join_all(producers, consumers).await
}

async fn run_async_channel(cap: Cap, topo: Topology) -> u64 {
    let (tx, rx) = match cap {
        Cap::Bounded(n) => async_channel::bounded::<u64>(n),
        Cap::Unbounded => async_channel::unbounded::<u64>(),
    };
    let (producers, consumers) = spawn_all(
        topo,
        |_, items| {
            let tx = tx.clone();
            async move {
                for i in 0..items {
                    tx.send(i).await.expect("send");
                }
            }
        },
        |_| {
            let rx = rx.clone();
            async move {
                let mut count = 0u64;
                while let Ok(item) = rx.recv().await {
                    black_box(item);
                    count += 1;
                }
                count
            }
        },
    );
    drop(tx);
    drop(rx);
    join_all(producers, consumers).await
}

async fn run_flume(cap: Cap, topo: Topology) -> u64 {
    let (tx, rx) = match cap {
        Cap::Bounded(n) => flume::bounded::<u64>(n),
        Cap::Unbounded => flume::unbounded::<u64>(),
    };
    let (producers, consumers) = spawn_all(
        topo,
        |_, items| {
            let tx = tx.clone();
            async move {
                for i in 0..items {
                    tx.send_async(i).await.expect("send");
                }
            }
        },
        |_| {
            let rx = rx.clone();
            async move {
                let mut count = 0u64;
                while let Ok(item) = rx.recv_async().await {
                    black_box(item);
                    count += 1;
                }
                count
            }
        },
    );
    drop(tx);
    drop(rx);
    join_all(producers, consumers).await
}

fn bench_one<F, Fut>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, name: &str, run: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = u64>,
{
    group.bench_function(name, |b| b.iter(|| black_box(rt.block_on(run()))));
}

fn memory_stream(c: &mut Criterion) {
    let rt = runtime();
    let caps = [Cap::Bounded(0), Cap::Bounded(1), Cap::Bounded(64), Cap::Bounded(1024), Cap::Unbounded];
    let topologies = [Topology { producers: 1, consumers: 1 }, Topology { producers: 4, consumers: 4 }];
    for topo in topologies {
        for cap in caps {
            let mut group = c.benchmark_group(format!("memory_stream/{}/{}", cap.label(), topo.label()));
            group
                .throughput(Throughput::Elements(N))
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3))
                .sampling_mode(SamplingMode::Flat);
            bench_one(&mut group, &rt, "streamtool", || run_streamtool(cap, topo));
            // tokio's mpsc and async-channel reject capacity 0: the rendezvous is
            // streamtool against flume only.
            if !matches!(cap, Cap::Bounded(0)) {
                let mpsc_name = if topo.consumers == 1 { "tokio_mpsc" } else { "tokio_mpsc_mutex_rx" };
                bench_one(&mut group, &rt, mpsc_name, || run_tokio_mpsc(cap, topo));
                bench_one(&mut group, &rt, "async_channel", || run_async_channel(cap, topo));
            }
            bench_one(&mut group, &rt, "flume", || run_flume(cap, topo));
            group.finish();
        }
    }
}

criterion_group!(benches, memory_stream);
criterion_main!(benches);
