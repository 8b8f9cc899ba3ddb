//! The state of one connection: the session and what is in flight on it.

use std::collections::{HashMap, VecDeque};

use thinger_core::session::SubscriptionId;
use typed_arena::Arena;

use crate::command::CallReply;
use crate::error::Error;

use super::handlers::Answer;
use super::session::{Clock, Sess};
use super::subscriptions::{Registered, Slots, SubSpec};

/// The state of one connection.
pub(super) struct Link<'a> {
    pub(super) session: Sess<'a>,
    arena: &'a Arena<String>,
    pub(super) clock: &'a Clock,
    /// The client's subscriptions registered with this session.
    pub(super) subs: Slots,
    /// Direct calls in flight.
    pub(super) calls: HashMap<u16, CallReply>,
    /// Lock requests in flight (sync, lock): a grant nobody waits for any more is released.
    pub(super) locks: HashMap<u16, (String, String)>,
    /// Queued entries in flight: request id → sequence number.
    pub(super) queued: HashMap<u16, u64>,
    /// Queue entries from the front that are in flight.
    pub(super) sent: usize,
    /// Async handler answers waiting for room in the transmit buffer.
    pub(super) replies: VecDeque<(u16, Answer)>,
}

impl<'a> Link<'a> {
    pub(super) fn new(session: Sess<'a>, arena: &'a Arena<String>, clock: &'a Clock) -> Self {
        Link {
            session,
            arena,
            clock,
            subs: Slots::default(),
            calls: HashMap::new(),
            locks: HashMap::new(),
            queued: HashMap::new(),
            sent: 0,
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
        let before = self.queued.len();
        self.queued.retain(|_, s| *s != seq);
        if self.queued.len() < before {
            self.sent = self.sent.saturating_sub(1);
        }
    }
}
