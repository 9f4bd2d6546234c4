//! Memory object streams: AnyIO's `create_memory_object_stream` and its two handle types.
//!
//! A pair of handles shares one state: a FIFO buffer of up to `capacity` items, the
//! receivers waiting for an item, and the senders waiting for room. Capacity 0 is a
//! rendezvous: a send completes only when a receiver takes the item.
//!
//! # Rules (spec §2)
//! - Each item goes to exactly one receiver; clones distribute, they do not broadcast.
//! - Waiting receivers are served oldest first, waiting senders drained oldest first,
//!   and items come out in the order they were sent.
//! - A handle's end counts as closed only when all its clones are closed. Closing the
//!   last sender ends the stream for receivers once the buffer is drained; closing the
//!   last receiver makes every send fail with [`StreamError::Broken`].
//! - Dropping a handle closes it (AnyIO only warns about an unclosed handle; a dropped
//!   handle that stayed "open" would hang its peers).
//! - The checks of one handle come before the state of the other side: a closed handle
//!   reports [`StreamError::Closed`] before the peer's absence is looked at.
//!
//! # Cancellation (spec §2.6)
//! A future is cancelled by dropping it, at any `.await`. For every item exactly one of
//! these holds: a receiver returned it, it is in the buffer, or its `send` reported that it
//! was not sent (an error carrying the item back, or the send future dropped before a
//! receiver took the item). A receive future dropped after an item was handed to it puts
//! the item back at the front (to the next waiting receiver, or the head of the buffer),
//! so it is neither lost nor reordered. A send future dropped after a receiver took its
//! item counts as delivered: the item is never delivered twice.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use futures_core::Stream;
use tokio::task::coop;

use super::abc::{AsyncResource, ObjectReceiveStream, ObjectSendStream};
use super::attrs::TypedAttributeProvider;
use super::error::{Result, SendError, StreamError};

/// How many items a memory object stream holds before `send` waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    /// Up to this many items; 0 is a rendezvous.
    Bounded(usize),
    /// No bound (AnyIO's `math.inf`): memory grows with a slow receiver.
    Unbounded,
}

impl From<usize> for Capacity {
    fn from(n: usize) -> Self {
        Capacity::Bounded(n)
    }
}

impl Capacity {
    fn limit(self) -> usize {
        match self {
            Capacity::Bounded(n) => n,
            Capacity::Unbounded => usize::MAX,
        }
    }
}

/// A snapshot of a memory object stream's shared state (AnyIO's
/// `MemoryObjectStreamStatistics`); the same from either handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryObjectStreamStatistics {
    /// Items in the buffer.
    pub current_buffer_used: usize,
    /// The capacity.
    pub max_buffer_size: Capacity,
    /// Open send handles.
    pub open_send_streams: usize,
    /// Open receive handles.
    pub open_receive_streams: usize,
    /// Senders waiting for room (including those woken by the last receiver closing
    /// that have not yet resumed).
    pub tasks_waiting_send: usize,
    /// Receivers waiting for an item.
    pub tasks_waiting_receive: usize,
}

/// Creates a memory object stream and returns its two handles.
///
/// # Examples
/// ```
/// # tokio_test_block_on(async {
/// use streamtool::streams::memory_object_stream;
///
/// let (tx, rx) = memory_object_stream::<String>(1);
/// tx.send("hello".to_string()).await.unwrap();
/// drop(tx);
/// assert_eq!(rx.receive().await.unwrap(), "hello");
/// assert!(rx.receive().await.unwrap_err().is_end_of_stream());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub fn memory_object_stream<T>(
    capacity: impl Into<Capacity>,
) -> (MemoryObjectSendStream<T>, MemoryObjectReceiveStream<T>) {
    let capacity = capacity.into();
    let shared = Arc::new(Shared {
        capacity,
        out: (capacity == Capacity::Unbounded).then(|| Box::new(CacheLine(Mutex::new(VecDeque::new())))),
        state: Mutex::new(State {
            buffer: VecDeque::new(),
            limit: capacity.limit(),
            open_send: 1,
            open_receive: 1,
            waiting_receivers: VecDeque::new(),
            handed: Vec::new(),
            waiting_senders: VecDeque::new(),
            next_id: 0,
        }),
    });
    (
        MemoryObjectSendStream { shared: Arc::clone(&shared), closed: false },
        MemoryObjectReceiveStream { shared, closed: false, pending: AtomicU64::new(0) },
    )
}

struct Shared<T> {
    capacity: Capacity,
    /// The receivers' end of an unbounded stream's buffer, the oldest items. A receiver
    /// that finds it empty takes the state's lock and swaps the whole buffer in, so a busy
    /// receiver takes the lock senders use once per batch instead of once per item (the
    /// "two-lock queue"). `None` for a bounded stream, whose senders must see every
    /// buffered item to respect the capacity.
    ///
    /// Lock order: `out` before `state`. Invariant: a receiver waits only while `out` and
    /// the buffer are both empty; items reach `out` only with both locks held.
    out: Option<Box<CacheLine<Mutex<VecDeque<T>>>>>,
    state: Mutex<State<T>>,
}

/// Keeps its content on cache lines of its own, so that the receivers' lock does not
/// bounce between cores with the senders' (128 bytes: adjacent-line prefetch pairs lines).
/// Boxed, so that bounded streams (one per connection in `serve -k`) do not pay for it.
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // parking_lot's lock spins briefly before parking: under contention (several
        // senders and receivers on a few cores) that halves the cost of std's, which
        // parks at once. It has no poisoning, which suits us: no path panics holding it.
        self.state.lock()
    }

    /// The receivers' end of the buffer, for an unbounded stream; `None` for a bounded one.
    fn lock_out(&self) -> Option<MutexGuard<'_, VecDeque<T>>> {
        self.out.as_ref().map(|out| out.0.lock())
    }

    /// Receives without waiting, after the handle's own closed check.
    fn try_receive(&self) -> std::result::Result<(T, Option<Waker>), StreamError> {
        let mut out = self.lock_out();
        if let Some(item) = out.as_mut().and_then(|out| out.pop_front()) {
            return Ok((item, None));
        }
        self.lock().try_receive(out.as_deref_mut())
    }

    fn statistics(&self) -> MemoryObjectStreamStatistics {
        let out = self.lock_out();
        let mut stats = self.lock().statistics(self.capacity);
        stats.current_buffer_used += out.map_or(0, |out| out.len());
        stats
    }
}

struct Waiter {
    id: u64,
    waker: Waker,
}

struct SendWaiter<T> {
    id: u64,
    waker: Waker,
    item: T,
}

struct State<T> {
    buffer: VecDeque<T>,
    limit: usize,
    open_send: usize,
    open_receive: usize,
    /// Receivers waiting for an item, oldest first.
    waiting_receivers: VecDeque<Waiter>,
    /// Items handed to a waiting receiver that has not picked them up yet.
    handed: Vec<(u64, T)>,
    /// Senders waiting for room, oldest first, each with its item.
    waiting_senders: VecDeque<SendWaiter<T>>,
    next_id: u64,
}

impl<T> State<T> {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// `send_nowait` after the handle's own closed check (spec §2.2, steps 2-5).
    fn try_send(&mut self, item: T) -> std::result::Result<Option<Waker>, (StreamError, T)> {
        if self.open_receive == 0 {
            return Err((StreamError::Broken(None), item));
        }
        // Receivers whose future was dropped have already left the queue, so the oldest
        // waiter is always a live one (the Rust form of AnyIO's fix for #728).
        if let Some(waiter) = self.waiting_receivers.pop_front() {
            self.handed.push((waiter.id, item));
            return Ok(Some(waiter.waker));
        }
        if self.buffer.len() < self.limit {
            self.buffer.push_back(item);
            return Ok(None);
        }
        Err((StreamError::WouldBlock, item))
    }

    /// `receive_nowait` after the handle's own closed check (spec §2.4, steps 2-5), with
    /// an unbounded stream's empty `out` (the whole buffer moves there).
    fn try_receive(
        &mut self,
        out: Option<&mut VecDeque<T>>,
    ) -> std::result::Result<(T, Option<Waker>), StreamError> {
        let mut woken = None;
        if let Some(sender) = self.waiting_senders.pop_front() {
            // The oldest waiting sender's item joins the tail: items already buffered were
            // sent earlier. Its `send` succeeds (AnyIO #143).
            self.buffer.push_back(sender.item);
            woken = Some(sender.waker);
        }
        let next = match out {
            Some(out) => {
                debug_assert!(out.is_empty(), "out is drained before the buffer");
                std::mem::swap(out, &mut self.buffer);
                out.pop_front()
            }
            None => self.buffer.pop_front(),
        };
        match next {
            Some(item) => Ok((item, woken)),
            None if self.open_send == 0 => Err(StreamError::EndOfStream),
            None => Err(StreamError::WouldBlock),
        }
    }

    /// Puts back an item whose receiver went away before returning it: to the next
    /// waiting receiver, else to the head of the buffer (it is older than anything there),
    /// which is `out` for an unbounded stream.
    fn requeue_front(&mut self, item: T, out: Option<&mut VecDeque<T>>) -> Option<Waker> {
        if let Some(waiter) = self.waiting_receivers.pop_front() {
            self.handed.push((waiter.id, item));
            Some(waiter.waker)
        } else {
            out.unwrap_or(&mut self.buffer).push_front(item);
            None
        }
    }

    fn statistics(&self, capacity: Capacity) -> MemoryObjectStreamStatistics {
        MemoryObjectStreamStatistics {
            current_buffer_used: self.buffer.len(),
            max_buffer_size: capacity,
            open_send_streams: self.open_send,
            open_receive_streams: self.open_receive,
            tasks_waiting_send: self.waiting_senders.len(),
            tasks_waiting_receive: self.waiting_receivers.len(),
        }
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn update_waker(slot: &mut Waker, cx: &Context<'_>) {
    if !slot.will_wake(cx.waker()) {
        slot.clone_from(cx.waker());
    }
}

// ---------------------------------------------------------------------------------------
// Send side

/// The sending handle of a memory object stream (AnyIO's `MemoryObjectSendStream`).
///
/// Methods take `&self`: one handle may be shared by tasks, though the usual pattern is a
/// clone per task.
pub struct MemoryObjectSendStream<T> {
    shared: Arc<Shared<T>>,
    closed: bool,
}

impl<T> MemoryObjectSendStream<T> {
    /// Sends `item` without waiting.
    ///
    /// # Errors
    /// In this order: [`StreamError::Closed`] if this handle is closed;
    /// [`StreamError::Broken`] if every receive handle is closed; [`StreamError::WouldBlock`]
    /// if no receiver is waiting and the buffer is full. The item comes back in the error.
    pub fn send_nowait(&self, item: T) -> std::result::Result<(), SendError<T>> {
        if self.closed {
            return Err(SendError { error: StreamError::Closed, item });
        }
        let result = self.shared.lock().try_send(item);
        match result {
            Ok(waker) => {
                wake(waker);
                Ok(())
            }
            Err((error, item)) => Err(SendError { error, item }),
        }
    }

    /// Alias of [`MemoryObjectSendStream::send_nowait`] in tokio's vocabulary.
    ///
    /// # Errors
    /// As [`MemoryObjectSendStream::send_nowait`].
    pub fn try_send(&self, item: T) -> std::result::Result<(), SendError<T>> {
        self.send_nowait(item)
    }

    /// Sends `item`, waiting for a receiver (capacity 0) or for room in the buffer.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if this handle is closed; [`StreamError::Broken`] if every
    /// receive handle is closed, before or while waiting. The item comes back in the error.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes withdraws the item unless a receiver has
    /// already taken it, in which case the item counts as delivered. Either way it is
    /// delivered at most once.
    pub fn send(&self, item: T) -> Send<'_, T> {
        Send { handle: self, item: Some(item), id: None }
    }

    /// A new handle on the same stream.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if this handle is closed.
    pub fn try_clone(&self) -> Result<Self> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.shared.lock().open_send += 1;
        Ok(MemoryObjectSendStream { shared: Arc::clone(&self.shared), closed: false })
    }

    /// Closes this handle (dropping it does the same).
    pub fn close(mut self) {
        self.close_handle();
    }

    /// Whether this handle was closed with [`AsyncResource::aclose`].
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The shared state's counters.
    pub fn statistics(&self) -> MemoryObjectStreamStatistics {
        self.shared.statistics()
    }

    fn close_handle(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let wakers: Vec<Waker> = {
            let mut state = self.shared.lock();
            state.open_send -= 1;
            if state.open_send == 0 {
                // Every waiting receiver is removed and woken: it finds the buffer empty
                // and no sender left, and reports the end of the stream.
                state.waiting_receivers.drain(..).map(|w| w.waker).collect()
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl<T> Clone for MemoryObjectSendStream<T> {
    /// As [`MemoryObjectSendStream::try_clone`]; cloning a closed handle gives another
    /// closed handle instead of an error.
    fn clone(&self) -> Self {
        self.try_clone()
            .unwrap_or_else(|_| MemoryObjectSendStream { shared: Arc::clone(&self.shared), closed: true })
    }
}

impl<T> Drop for MemoryObjectSendStream<T> {
    fn drop(&mut self) {
        self.close_handle();
    }
}

impl<T> fmt::Debug for MemoryObjectSendStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryObjectSendStream")
            .field("closed", &self.closed)
            .field("statistics", &self.statistics())
            .finish()
    }
}

/// The future of [`MemoryObjectSendStream::send`].
#[must_use = "futures do nothing unless polled"]
pub struct Send<'a, T> {
    handle: &'a MemoryObjectSendStream<T>,
    /// The item until it is handed to the shared state.
    item: Option<T>,
    /// Our place in the waiting-senders queue, while we wait.
    id: Option<u64>,
}

impl<T> Unpin for Send<'_, T> {}

impl<T> Future for Send<'_, T> {
    type Output = std::result::Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(id) = this.id {
            let mut state = this.handle.shared.lock();
            return match state.waiting_senders.iter().position(|w| w.id == id) {
                // Taken out of the queue by a receiver: delivered.
                None => {
                    this.id = None;
                    Poll::Ready(Ok(()))
                }
                Some(pos) if state.open_receive == 0 => {
                    this.id = None;
                    let waiter = state.waiting_senders.remove(pos).expect("position is valid");
                    Poll::Ready(Err(SendError { error: StreamError::Broken(None), item: waiter.item }))
                }
                Some(pos) => {
                    update_waker(&mut state.waiting_senders[pos].waker, cx);
                    Poll::Pending
                }
            };
        }
        // The checkpoint: a task out of budget yields before anything is sent. A send to an
        // unbounded stream never waits, so, like tokio's `UnboundedSender::send`, it takes
        // no budget: the receiving side's checkpoint is the one that keeps a busy pipeline
        // from starving other tasks (and this one was a third of its cost).
        let coop = match this.handle.shared.capacity {
            Capacity::Unbounded => None,
            _ => Some(ready!(coop::poll_proceed(cx))),
        };
        let item = this.item.take().expect("Send polled after completion");
        if this.handle.closed {
            return Poll::Ready(Err(SendError { error: StreamError::Closed, item }));
        }
        let mut state = this.handle.shared.lock();
        match state.try_send(item) {
            Ok(waker) => {
                drop(state);
                if let Some(coop) = coop {
                    coop.made_progress();
                }
                wake(waker);
                Poll::Ready(Ok(()))
            }
            Err((StreamError::WouldBlock, item)) => {
                let id = state.next_id();
                state.waiting_senders.push_back(SendWaiter { id, waker: cx.waker().clone(), item });
                this.id = Some(id);
                Poll::Pending
            }
            Err((error, item)) => Poll::Ready(Err(SendError { error, item })),
        }
    }
}

impl<T> Drop for Send<'_, T> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // Still queued: withdraw the item, it is never delivered. Already taken: delivered.
            let mut state = self.handle.shared.lock();
            if let Some(pos) = state.waiting_senders.iter().position(|w| w.id == id) {
                let waiter = state.waiting_senders.remove(pos);
                drop(state);
                drop(waiter);
            }
        }
    }
}

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send")
            .field("has_item", &self.item.is_some())
            .field("waiting", &self.id.is_some())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// Receive side

/// The receiving handle of a memory object stream (AnyIO's `MemoryObjectReceiveStream`).
///
/// Also a [`futures_core::Stream`] of items that ends when every sender is closed and the
/// buffer is drained.
pub struct MemoryObjectReceiveStream<T> {
    shared: Arc<Shared<T>>,
    closed: bool,
    /// The registration of an unfinished `poll_next` (0: none). Atomic so that the
    /// handle stays `Sync` for the `&self` methods.
    pending: AtomicU64,
}

/// One receive in progress: registration in the waiting queue and the hand-off slot.
fn poll_receive<T>(
    shared: &Shared<T>,
    closed: bool,
    id: &mut Option<u64>,
    cx: &mut Context<'_>,
) -> Poll<Result<T>> {
    if let Some(my_id) = *id {
        let mut state = shared.lock();
        if let Some(pos) = state.handed.iter().position(|(i, _)| *i == my_id) {
            *id = None;
            return Poll::Ready(Ok(state.handed.swap_remove(pos).1));
        }
        if let Some(waiter) = state.waiting_receivers.iter_mut().find(|w| w.id == my_id) {
            update_waker(&mut waiter.waker, cx);
            return Poll::Pending;
        }
        // Removed without an item: the last sender closed. Look again below, in case an
        // item was put back meanwhile.
        *id = None;
    }
    let coop = ready!(coop::poll_proceed(cx));
    if closed {
        return Poll::Ready(Err(StreamError::Closed));
    }
    // `out` stays locked until we are registered: an item put back meanwhile would
    // otherwise sit in `out` while we wait.
    let mut out = shared.lock_out();
    if let Some(item) = out.as_mut().and_then(|out| out.pop_front()) {
        drop(out);
        coop.made_progress();
        return Poll::Ready(Ok(item));
    }
    let mut state = shared.lock();
    match state.try_receive(out.as_deref_mut()) {
        Ok((item, waker)) => {
            drop(state);
            drop(out);
            coop.made_progress();
            wake(waker);
            Poll::Ready(Ok(item))
        }
        Err(StreamError::WouldBlock) => {
            let my_id = state.next_id();
            state.waiting_receivers.push_back(Waiter { id: my_id, waker: cx.waker().clone() });
            *id = Some(my_id);
            Poll::Pending
        }
        Err(err) => Poll::Ready(Err(err)),
    }
}

/// Withdraws a receive in progress; an item already handed to it is put back in front.
fn cancel_receive<T>(shared: &Shared<T>, id: u64) {
    let mut out = shared.lock_out();
    let mut state = shared.lock();
    let waker = if let Some(pos) = state.handed.iter().position(|(i, _)| *i == id) {
        let item = state.handed.swap_remove(pos).1;
        state.requeue_front(item, out.as_deref_mut())
    } else {
        if let Some(pos) = state.waiting_receivers.iter().position(|w| w.id == id) {
            state.waiting_receivers.remove(pos);
        }
        None
    };
    drop(state);
    drop(out);
    wake(waker);
}

impl<T> MemoryObjectReceiveStream<T> {
    /// Receives an item without waiting.
    ///
    /// If senders are waiting, the oldest one's item joins the buffer and that sender
    /// completes.
    ///
    /// # Errors
    /// In this order: [`StreamError::Closed`] if this handle is closed; otherwise
    /// [`StreamError::EndOfStream`] if the buffer is empty and every sender is closed;
    /// [`StreamError::WouldBlock`] if it is empty and senders remain.
    pub fn receive_nowait(&self) -> Result<T> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.withdraw_pending();
        let result = self.shared.try_receive();
        result.map(|(item, waker)| {
            wake(waker);
            item
        })
    }

    /// Alias of [`MemoryObjectReceiveStream::receive_nowait`] in tokio's vocabulary.
    ///
    /// # Errors
    /// As [`MemoryObjectReceiveStream::receive_nowait`].
    pub fn try_receive(&self) -> Result<T> {
        self.receive_nowait()
    }

    /// Receives the next item, waiting for one.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if this handle is closed; [`StreamError::EndOfStream`] once
    /// every sender is closed and the buffer is drained.
    ///
    /// # Cancel safety
    /// Cancel safe: an item handed to a dropped future goes back to the front of the stream.
    pub fn receive(&self) -> Receive<'_, T> {
        Receive { handle: self, id: None }
    }

    /// A new handle on the same stream.
    ///
    /// # Errors
    /// [`StreamError::Closed`] if this handle is closed.
    pub fn try_clone(&self) -> Result<Self> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.shared.lock().open_receive += 1;
        Ok(MemoryObjectReceiveStream {
            shared: Arc::clone(&self.shared),
            closed: false,
            pending: AtomicU64::new(0),
        })
    }

    /// Closes this handle (dropping it does the same).
    pub fn close(mut self) {
        self.close_handle();
    }

    /// Whether this handle was closed with [`AsyncResource::aclose`].
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The shared state's counters.
    pub fn statistics(&self) -> MemoryObjectStreamStatistics {
        self.shared.statistics()
    }

    /// Withdraws the registration left by an unfinished `poll_next`, so that an item
    /// handed to it goes back to the front instead of waiting for a poll that may not come.
    fn withdraw_pending(&self) {
        // A plain load first: the swap is a locked instruction, and almost always there is
        // nothing to withdraw.
        if self.pending.load(Ordering::Relaxed) == 0 {
            return;
        }
        let id = self.pending.swap(0, Ordering::Relaxed);
        if id != 0 {
            cancel_receive(&self.shared, id);
        }
    }

    fn close_handle(&mut self) {
        self.withdraw_pending();
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let wakers: Vec<Waker> = {
            let mut state = self.shared.lock();
            state.open_receive -= 1;
            if state.open_receive == 0 {
                // Waiting senders are woken but stay queued: each then finds no receiver
                // and fails with Broken, getting its item back (AnyIO #440: by design).
                // Buffered items stay counted but can no longer be received.
                state.waiting_senders.iter().map(|w| w.waker.clone()).collect()
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl<T> Clone for MemoryObjectReceiveStream<T> {
    /// As [`MemoryObjectReceiveStream::try_clone`]; cloning a closed handle gives another
    /// closed handle instead of an error.
    fn clone(&self) -> Self {
        self.try_clone().unwrap_or_else(|_| MemoryObjectReceiveStream {
            shared: Arc::clone(&self.shared),
            closed: true,
            pending: AtomicU64::new(0),
        })
    }
}

impl<T> Drop for MemoryObjectReceiveStream<T> {
    fn drop(&mut self) {
        self.close_handle();
    }
}

impl<T> fmt::Debug for MemoryObjectReceiveStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryObjectReceiveStream")
            .field("closed", &self.closed)
            .field("statistics", &self.statistics())
            .finish()
    }
}

impl<T> Stream for MemoryObjectReceiveStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        let mut id = match *this.pending.get_mut() {
            0 => None,
            id => Some(id),
        };
        let poll = poll_receive(&this.shared, this.closed, &mut id, cx);
        *this.pending.get_mut() = id.unwrap_or(0);
        poll.map(Result::ok)
    }
}

/// The future of [`MemoryObjectReceiveStream::receive`].
#[must_use = "futures do nothing unless polled"]
pub struct Receive<'a, T> {
    handle: &'a MemoryObjectReceiveStream<T>,
    /// Our place in the waiting-receivers queue (or the hand-off slot), while we wait.
    id: Option<u64>,
}

impl<T> Future for Receive<'_, T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = &mut *self;
        if this.id.is_none() {
            this.handle.withdraw_pending();
        }
        poll_receive(&this.handle.shared, this.handle.closed, &mut this.id, cx)
    }
}

impl<T> Drop for Receive<'_, T> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            cancel_receive(&self.handle.shared, id);
        }
    }
}

impl<T> fmt::Debug for Receive<'_, T> {
    /// Works whether or not an item has been handed over (AnyIO scenario 29).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handed = self.id.is_some_and(|id| self.handle.shared.lock().handed.iter().any(|(i, _)| *i == id));
        f.debug_struct("Receive").field("waiting", &self.id.is_some()).field("item_handed", &handed).finish()
    }
}

// ---------------------------------------------------------------------------------------
// The generic stream traits

impl<T: std::marker::Send> AsyncResource for MemoryObjectSendStream<T> {
    async fn aclose(&mut self) -> Result<()> {
        self.close_handle();
        Ok(())
    }
}

impl<T> TypedAttributeProvider for MemoryObjectSendStream<T> {}

impl<T: std::marker::Send> ObjectSendStream<T> for MemoryObjectSendStream<T> {
    async fn send(&mut self, item: T) -> Result<()> {
        MemoryObjectSendStream::send(self, item).await.map_err(SendError::into_error)
    }

    fn send_nowait(&mut self, item: T) -> Result<()> {
        MemoryObjectSendStream::send_nowait(self, item).map_err(SendError::into_error)
    }
}

impl<T: std::marker::Send> AsyncResource for MemoryObjectReceiveStream<T> {
    async fn aclose(&mut self) -> Result<()> {
        self.close_handle();
        Ok(())
    }
}

impl<T> TypedAttributeProvider for MemoryObjectReceiveStream<T> {}

impl<T: std::marker::Send> ObjectReceiveStream<T> for MemoryObjectReceiveStream<T> {
    async fn receive(&mut self) -> Result<T> {
        MemoryObjectReceiveStream::receive(self).await
    }
}
