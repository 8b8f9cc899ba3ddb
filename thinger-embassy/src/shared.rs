//! State shared by the client handles and the runner (one executor: no locks, a `RefCell`).

use core::cell::RefCell;
use core::task::{Context, Poll};

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_sync::waitqueue::MultiWakerRegistration;
use heapless::Vec;
use thinger_core::session::{CallError, Event, RequestId, Session};

use crate::{ConnectError, Error};

/// Cloud calls that can wait for their reply at the same time; more callers queue up.
pub const CALL_SLOTS: usize = 4;
/// Largest reply value (PSON bytes) a call can return, e.g. a property read.
pub const MAX_REPLY: usize = 128;
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

pub(crate) struct Inner<'d, const R: usize> {
    pub(crate) session: CoreSession<'d, R>,
    pub(crate) slots: [Slot; CALL_SLOTS],
    pub(crate) waiters: MultiWakerRegistration<WAITERS>,
    pub(crate) link: LinkState,
    /// Number of times the server accepted the credentials.
    pub(crate) connections: u32,
    pub(crate) last_error: Option<ConnectError>,
}

pub(crate) struct Shared<'d, const R: usize> {
    pub(crate) inner: RefCell<Inner<'d, R>>,
    /// Client → runner: frames were queued, flush them.
    pub(crate) flush: Signal<NoopRawMutex, ()>,
    /// Runner's writer → reader: the session drained its queues and may take more input.
    pub(crate) room: Signal<NoopRawMutex, ()>,
}

impl<'d, const R: usize> Shared<'d, R> {
    pub(crate) fn new(session: CoreSession<'d, R>) -> Self {
        Shared {
            inner: RefCell::new(Inner {
                session,
                slots: [const { Slot { state: SlotState::Free, reply: Vec::new() } }; CALL_SLOTS],
                waiters: MultiWakerRegistration::new(),
                link: LinkState::Down,
                connections: 0,
                last_error: None,
            }),
            flush: Signal::new(),
            room: Signal::new(),
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

impl<const R: usize> Inner<'_, R> {
    /// Takes every queued session event and routes it: completions to the waiting calls,
    /// connection changes to the link state. Wakes the waiting tasks when anything changed.
    pub(crate) fn dispatch_events(&mut self) {
        let mut changed = false;
        while let Some(event) = self.session.poll_event() {
            changed = true;
            match event {
                Event::Connected => {
                    self.link = LinkState::Connected;
                    self.connections = self.connections.wrapping_add(1);
                    self.last_error = None;
                }
                Event::AuthFailed(failure) => {
                    self.link = LinkState::Down;
                    self.last_error = Some(ConnectError::Auth(crate::AuthError::from(&failure)));
                }
                Event::Disconnected(_) => self.link = LinkState::Down,
                Event::CallCompleted { request, result } => {
                    let Some(slot) = self.slots.iter_mut().find(|s| s.state == SlotState::Waiting(request)) else {
                        continue; // its caller gave up waiting
                    };
                    slot.reply.clear();
                    let outcome = match result {
                        Ok(None) => Ok(None),
                        Ok(Some(value)) => {
                            // The reply borrows the session buffer until the next poll_event:
                            // copy it into the slot.
                            let _ = slot.reply.resize_default(MAX_REPLY);
                            match thinger_core::pson::encode_to_slice(&value, &mut slot.reply) {
                                Ok(n) => {
                                    slot.reply.truncate(n);
                                    Ok(Some(n))
                                }
                                Err(_) => {
                                    slot.reply.clear();
                                    Err(Error::ReplyTooLarge)
                                }
                            }
                        }
                        Err(e) => Err(Error::from(&e)),
                    };
                    slot.state = SlotState::Done(outcome);
                }
                // Streams, subscriptions and dropped frames need nothing from the adapter;
                // deferred replies are not used by this adapter's handlers.
                _ => {}
            }
        }
        if changed {
            self.waiters.wake();
        }
    }
}

impl From<&CallError<'_>> for Error {
    fn from(e: &CallError<'_>) -> Self {
        match e {
            CallError::Server { code, .. } => Error::Server { code: *code },
            CallError::Timeout => Error::Timeout,
            CallError::Disconnected => Error::Disconnected,
            CallError::PayloadTooLarge => Error::ReplyTooLarge,
        }
    }
}
