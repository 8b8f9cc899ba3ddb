//! The state of one connection: the session and what is in flight on it.

use std::collections::{HashMap, VecDeque};

use thinger_core::queue::InFlight;
use thinger_core::session::SubscriptionId;
use typed_arena::Arena;

use crate::command::{CallReply, MAX_QUEUE_WINDOW};
use crate::error::Error;

use super::handlers::Answer;
use super::session::{Clock, Sess};
use super::subscriptions::{Registered, Slots, SubSpec};

/// The state of one connection.
pub(super) struct Link<'a, const R: usize, const S: usize, const P: usize, const E: usize> {
    pub(super) session: Sess<'a, R, S, P, E>,
    arena: &'a Arena<String>,
    pub(super) clock: &'a Clock,
    /// The client's subscriptions registered with this session.
    pub(super) subs: Slots,
    /// Direct calls in flight.
    pub(super) calls: HashMap<u16, CallReply>,
    /// Lock requests in flight (sync, lock): a grant nobody waits for any more is released.
    pub(super) locks: HashMap<u16, (String, String)>,
    /// Queued entries in flight (the first ones of the queue). Made when the offline queue
    /// first has something to send on this connection: a device that never queues a write
    /// does not hold its table (520 bytes on x86-64).
    pub(super) queued: Option<Box<InFlight<MAX_QUEUE_WINDOW>>>,
    /// Async handler answers waiting for room in the transmit buffer.
    pub(super) replies: VecDeque<(u16, Answer)>,
}

impl<'a, const R: usize, const S: usize, const P: usize, const E: usize> Link<'a, R, S, P, E> {
    pub(super) fn new(session: Sess<'a, R, S, P, E>, arena: &'a Arena<String>, clock: &'a Clock) -> Self {
        Link {
            session,
            arena,
            clock,
            subs: Slots::default(),
            calls: HashMap::new(),
            locks: HashMap::new(),
            queued: None,
            replies: VecDeque::new(),
        }
    }

    pub(super) fn slot_of(&self, key: u64) -> Option<SubscriptionId> {
        self.subs.slot_of(key)
    }

    pub(super) fn key_of(&self, id: SubscriptionId) -> Option<u64> {
        self.subs.key_of(id)
    }

    /// Registers a subscription with the session.
    pub(super) fn register(&mut self, spec: &SubSpec) -> Result<Registered, Error> {
        let now = self.clock.now();
        self.subs.register(&mut self.session, self.arena, now, spec)
    }

    pub(super) fn unregister(&mut self, key: u64) {
        let now = self.clock.now();
        self.subs.unregister(&mut self.session, now, key);
    }

    /// A queue entry was dropped by the overflow policy: forget it if it was in flight.
    pub(super) fn forget_queued(&mut self, seq: u64) {
        if let Some(queued) = &mut self.queued {
            queued.forget(seq);
        }
    }

    /// How many queued entries are in flight on this connection.
    pub(super) fn queued_in_flight(&self) -> usize {
        self.queued.as_ref().map_or(0, |q| q.len())
    }
}
