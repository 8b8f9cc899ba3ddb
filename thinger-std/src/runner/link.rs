//! The state of one connection: the session and what is in flight on it.

use std::collections::{HashMap, VecDeque};

use thinger_core::queue::Window;
use thinger_core::session::SubscriptionId;
use typed_arena::Arena;

use crate::command::CallReply;
use crate::error::Error;

use super::handlers::Answer;
use super::session::{Clock, Sess};
use super::subscriptions::{Registered, Slots, SubSpec};

/// Largest offline-queue window (`ClientBuilder::queue_window` clamps to it).
const MAX_QUEUE_WINDOW: usize = 32;

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
    /// Offline-queue entries in flight (core's send window).
    pub(super) queue: Window<MAX_QUEUE_WINDOW>,
    /// Async handler answers waiting for room in the transmit buffer.
    pub(super) replies: VecDeque<(u16, Answer)>,
}

impl<'a> Link<'a> {
    pub(super) fn new(session: Sess<'a>, arena: &'a Arena<String>, clock: &'a Clock, queue_window: usize) -> Self {
        Link {
            session,
            arena,
            clock,
            subs: Slots::default(),
            calls: HashMap::new(),
            locks: HashMap::new(),
            queue: Window::new(queue_window),
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
}
