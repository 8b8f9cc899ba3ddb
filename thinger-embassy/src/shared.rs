//! State shared by the client handles and the runner (one executor: no locks, a `RefCell`).

use core::cell::RefCell;
use core::task::{Context, Poll};

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_sync::waitqueue::MultiWakerRegistration;
use heapless::{Deque, Vec};
use thinger_core::pson::PsonRef;
use thinger_core::queue::{Answer, InFlight, Ring, Settled};
use thinger_core::session::{CallError, DisconnectReason, Event, RequestId, Session, SubscriptionId};

use crate::{ConnectError, Error, ServerMessage};

/// Cloud calls that can wait for their reply at the same time; more callers queue up.
pub const CALL_SLOTS: usize = 4;
/// Largest reply value (PSON bytes) a call can return, e.g. a property read; also the
/// largest subscription event kept.
pub const MAX_REPLY: usize = 128;
/// Subscriptions (events, property changes, MQTT topics, MQTT publishers) open at once.
pub const SUBSCRIPTIONS: usize = 4;
/// Deferred requests remembered for [`Client::next_deferred`](crate::Client::next_deferred).
pub const DEFERRED: usize = 4;
/// Queued writes in flight (sent, not yet answered) at once.
pub const QUEUE_WINDOW: usize = 4;
/// Tasks that can wait on the client at once without being woken spuriously.
const WAITERS: usize = 8;

/// The session type the adapter runs: it works in a caller-provided byte buffer.
pub(crate) type CoreSession<'d, const R: usize> = Session<'d, &'d mut [u8], R>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SlotState {
    Free,
    Claimed,
    Waiting(RequestId),
    /// Done; the reply value (if any) is in the slot's buffer.
    Done(Result<Option<usize>, Error>),
}

pub(crate) struct Slot {
    pub(crate) state: SlotState,
    pub(crate) reply: Vec<u8, MAX_REPLY>,
}

/// Where a subscription is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SubState {
    /// Slot unused.
    Free,
    /// Registered; the server has not answered yet (or the device is offline).
    Opening,
    /// The server accepted it.
    Open,
    /// The server refused it (or did not answer in time); the session retries it after
    /// the next reconnect.
    Failed(Error),
}

pub(crate) struct SubSlot {
    pub(crate) id: SubscriptionId,
    pub(crate) state: SubState,
    /// The newest unread event's payload (empty: an event without payload).
    pub(crate) data: Vec<u8, MAX_REPLY>,
    pub(crate) unread: bool,
    /// Events overwritten before they were read, or too large to keep.
    pub(crate) lost: u32,
}

/// A request a handler deferred ([`Call::defer`](thinger_core::resource::Call::defer)):
/// answer it with [`Client::reply`](crate::Client::reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Deferred {
    /// The server's request id, to pass to [`Client::reply`](crate::Client::reply).
    pub stream_id: u16,
    /// Index of the resource in the table.
    pub resource: usize,
}

/// What the client can see of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkState {
    /// Not connected; the runner is connecting or waiting to retry.
    Down,
    /// Transport up, CONNECT sent, waiting for the server.
    Authenticating,
    /// Authenticated: cloud calls can be made.
    Connected,
}

/// The offline queue and its bookkeeping.
pub(crate) struct Queue<'d> {
    pub(crate) ring: Ring<&'d mut [u8]>,
    /// Entries at the front of the ring sent on this connection, awaiting their answer.
    pub(crate) in_flight: InFlight<QUEUE_WINDOW>,
    /// With a store: entries below this sequence number are saved in it.
    pub(crate) saved_below: u64,
    /// With a store: entries that left the ring and must leave the store too.
    pub(crate) deletes: Deque<u64, 8>,
    /// Too many deletes piled up: the store must be rewritten from the ring.
    pub(crate) resync: bool,
    pub(crate) store: bool,
    /// Entries given up (malformed, or too large for a frame).
    pub(crate) discarded: u32,
}

pub(crate) struct Inner<'d, const R: usize> {
    pub(crate) session: CoreSession<'d, R>,
    pub(crate) slots: [Slot; CALL_SLOTS],
    pub(crate) subs: [SubSlot; SUBSCRIPTIONS],
    pub(crate) deferred: Deque<Deferred, DEFERRED>,
    pub(crate) queue: Queue<'d>,
    pub(crate) waiters: MultiWakerRegistration<WAITERS>,
    pub(crate) link: LinkState,
    /// Number of times the server accepted the credentials.
    pub(crate) connections: u32,
    pub(crate) last_error: Option<ConnectError>,
    pub(crate) last_disconnect: Option<DisconnectReason>,
}

pub(crate) struct Shared<'d, const R: usize> {
    pub(crate) inner: RefCell<Inner<'d, R>>,
    /// Client → runner: frames were queued, flush them.
    pub(crate) flush: Signal<NoopRawMutex, ()>,
    /// Runner's writer → reader: the session drained its queues and may take more input.
    pub(crate) room: Signal<NoopRawMutex, ()>,
    /// Client/runner → store task: the queue changed, save or delete records.
    pub(crate) persist: Signal<NoopRawMutex, ()>,
}

impl<'d, const R: usize> Shared<'d, R> {
    pub(crate) fn new(session: CoreSession<'d, R>, ring: Ring<&'d mut [u8]>) -> Self {
        Shared {
            inner: RefCell::new(Inner {
                session,
                slots: [const { Slot { state: SlotState::Free, reply: Vec::new() } }; CALL_SLOTS],
                subs: [const {
                    SubSlot { id: SubscriptionId(0), state: SubState::Free, data: Vec::new(), unread: false, lost: 0 }
                }; SUBSCRIPTIONS],
                deferred: Deque::new(),
                queue: Queue {
                    ring,
                    in_flight: InFlight::new(),
                    saved_below: 1,
                    deletes: Deque::new(),
                    resync: false,
                    store: false,
                    discarded: 0,
                },
                waiters: MultiWakerRegistration::new(),
                link: LinkState::Down,
                connections: 0,
                last_error: None,
                last_disconnect: None,
            }),
            flush: Signal::new(),
            room: Signal::new(),
            persist: Signal::new(),
        }
    }

    /// Runs `f` on the shared state; `Err(Busy)` if it is already borrowed (a client call
    /// from inside a resource handler, which runs while the runner holds the session).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Inner<'d, R>) -> T) -> Result<T, Error> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| Error::Busy)?;
        Ok(f(&mut inner))
    }

    /// Polls `f` until it is ready, registering the task to be woken on any state change.
    pub(crate) fn poll_with<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Inner<'d, R>) -> Poll<T>,
    ) -> Poll<Result<T, Error>> {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return Poll::Ready(Err(Error::Busy));
        };
        match f(&mut inner) {
            Poll::Ready(t) => Poll::Ready(Ok(t)),
            Poll::Pending => {
                inner.waiters.register(cx.waker());
                Poll::Pending
            }
        }
    }
}

/// Copies a borrowed PSON value into `out` (cleared first); false when it does not fit.
fn copy_value(value: Option<PsonRef<'_>>, out: &mut Vec<u8, MAX_REPLY>) -> bool {
    out.clear();
    let Some(value) = value else { return true };
    let _ = out.resize_default(MAX_REPLY);
    match thinger_core::pson::encode_to_slice(&value, out) {
        Ok(n) => {
            out.truncate(n);
            true
        }
        Err(_) => {
            out.clear();
            false
        }
    }
}

impl<const R: usize> Inner<'_, R> {
    /// Takes every queued session event and routes it: completions to the waiting calls
    /// and the offline queue, subscription data to its slot, deferred requests to their
    /// list, connection changes to the link state. Wakes the waiting tasks when anything
    /// changed.
    pub(crate) fn dispatch_events(&mut self) {
        let mut changed = false;
        while let Some(event) = self.session.poll_event() {
            changed = true;
            match event {
                Event::Connected => {
                    self.link = LinkState::Connected;
                    self.connections = self.connections.wrapping_add(1);
                    self.last_error = None;
                    // Everything in the queue goes out again, in order.
                    self.queue.in_flight.restart();
                }
                Event::AuthFailed(failure) => {
                    self.link = LinkState::Down;
                    self.last_error = Some(ConnectError::Auth(crate::AuthError::from(&failure)));
                }
                Event::Disconnected(reason) => {
                    self.link = LinkState::Down;
                    self.last_disconnect = Some(reason);
                    self.deferred.clear();
                    // The session opens every subscription again after the reconnect.
                    for sub in self.subs.iter_mut().filter(|s| s.state == SubState::Open) {
                        sub.state = SubState::Opening;
                    }
                }
                Event::CallCompleted { request, result } => {
                    if let Some(slot) = self.slots.iter_mut().find(|s| s.state == SlotState::Waiting(request)) {
                        let outcome = match result {
                            Ok(value) => {
                                // The reply borrows the session buffer until the next
                                // poll_event: copy it into the slot.
                                if copy_value(value, &mut slot.reply) {
                                    Ok(value.map(|_| slot.reply.len()))
                                } else {
                                    Err(Error::ReplyTooLarge)
                                }
                            }
                            Err(e) => Err(Error::from(&e)),
                        };
                        slot.state = SlotState::Done(outcome);
                    } else if let Some(Settled::Done(seq)) =
                        self.queue.in_flight.answered(request, Answer::from(&result))
                    {
                        // Answered (stored, or refused for good): it leaves the queue. A lost
                        // answer sends everything again from the front, in order.
                        self.queue.remove(seq);
                    }
                    // Otherwise its caller gave up waiting.
                }
                Event::Subscribed { subscription, initial } => {
                    if let Some(sub) = sub_mut(&mut self.subs, subscription) {
                        sub.state = SubState::Open;
                        if initial.is_some() {
                            sub.store(initial);
                        }
                    }
                }
                Event::SubscriptionFailed { subscription, error } => {
                    if let Some(sub) = sub_mut(&mut self.subs, subscription) {
                        sub.state = SubState::Failed(Error::from(&error));
                    }
                }
                Event::SubscriptionData { subscription, data } => {
                    if let Some(sub) = sub_mut(&mut self.subs, subscription) {
                        sub.store(data);
                    }
                }
                Event::Deferred { stream_id, resource } => {
                    if self.deferred.is_full() {
                        // Nobody is reading them: the oldest will time out in the session.
                        let _ = self.deferred.pop_front();
                    }
                    let _ = self.deferred.push_back(Deferred { stream_id, resource });
                }
                // Streams and dropped frames need nothing from the adapter.
                _ => {}
            }
        }
        if changed {
            self.waiters.wake();
        }
    }
}

fn sub_mut(subs: &mut [SubSlot], id: SubscriptionId) -> Option<&mut SubSlot> {
    subs.iter_mut().find(|s| s.id == id && s.state != SubState::Free)
}

impl SubSlot {
    fn store(&mut self, data: Option<PsonRef<'_>>) {
        if self.unread {
            self.lost = self.lost.saturating_add(1);
        }
        if copy_value(data, &mut self.data) {
            self.unread = true;
        } else {
            self.lost = self.lost.saturating_add(1);
            self.unread = false;
        }
    }
}

impl Queue<'_> {
    /// Takes entry `seq` out of the ring (and, with a store, schedules its delete).
    pub(crate) fn remove(&mut self, seq: u64) {
        if self.ring.remove(seq) {
            self.in_flight.forget(seq);
            self.forget(seq);
        }
    }

    /// Schedules the store's delete of `seq` (if it reached the store at all).
    pub(crate) fn forget(&mut self, seq: u64) {
        if self.store && seq < self.saved_below && self.deletes.push_back(seq).is_err() {
            self.resync = true;
        }
    }
}

impl From<&CallError<'_>> for Error {
    fn from(e: &CallError<'_>) -> Self {
        match e {
            CallError::Server { code, .. } => Error::Server { code: *code, message: ServerMessage::new(e.message()) },
            CallError::Timeout => Error::Timeout,
            CallError::Disconnected => Error::Disconnected,
            CallError::PayloadTooLarge => Error::ReplyTooLarge,
        }
    }
}
