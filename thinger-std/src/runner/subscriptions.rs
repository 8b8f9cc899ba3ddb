//! Subscription bookkeeping: what the client subscribed to (outliving connections) and
//! which of the session's subscription slots holds which subscription (one connection).

use std::collections::{HashSet, VecDeque};

use thinger_core::session::{self, Subscription, SubscriptionId};
use thinger_core::time::Instant;
use tokio::sync::mpsc;
use typed_arena::Arena;

use crate::command::{DoneReply, SubItem, SubKind};
use crate::error::Error;

use super::convert::session_error;
use super::session::Sess;

/// The core's subscription for `kind`, its strings copied into `arena`.
fn core_subscription<'a>(kind: &SubKind, arena: &'a Arena<String>) -> Subscription<'a> {
    let text = |s: &String| -> &'a str {
        let stored: &'a String = arena.alloc(s.clone());
        stored.as_str()
    };
    match kind {
        SubKind::Event { name } => Subscription::Event { name: text(name) },
        SubKind::Property { property, current } => {
            Subscription::Property { property: text(property), current: *current }
        }
        SubKind::Topic { topic, qos } => Subscription::TopicSubscribe { topic: text(topic), qos: *qos },
        SubKind::Publish { topic, qos, retained } => {
            Subscription::TopicPublish { topic: text(topic), qos: *qos, retained: *retained }
        }
    }
}

/// A subscription of the client, kept across connections.
pub(super) struct SubSpec {
    pub(super) key: u64,
    pub(super) kind: SubKind,
    /// Where its data goes (none for an MQTT publish stream).
    pub(super) data: Option<mpsc::Sender<SubItem>>,
    /// MQTT publishes waiting for the topic stream to open.
    pub(super) outbox: VecDeque<(Vec<u8>, DoneReply)>,
}

/// The outcome of registering a subscription with the session.
pub(super) enum Registered {
    Yes,
    /// Not now: drain the transmit buffer first.
    AfterFlush,
    /// Not now: the session's request table is full.
    Later,
}

/// The subscriptions registered with one session.
#[derive(Default)]
pub(super) struct Slots {
    /// The subscription key in each of the session's subscription slots (mirrors the
    /// session's slot allocation: first free slot, else a new one).
    slots: Vec<Option<u64>>,
    /// Subscriptions the server accepted on this connection.
    pub(super) open: HashSet<u64>,
}

impl Slots {
    pub(super) fn slot_of(&self, key: u64) -> Option<SubscriptionId> {
        let i = self.slots.iter().position(|s| *s == Some(key))?;
        u8::try_from(i).ok().map(SubscriptionId)
    }

    pub(super) fn key_of(&self, id: SubscriptionId) -> Option<u64> {
        self.slots.get(usize::from(id.0)).copied().flatten()
    }

    /// Registers a subscription with the session.
    pub(super) fn register<'a, const R: usize, const S: usize, const P: usize, const E: usize>(
        &mut self,
        session: &mut Sess<'a, R, S, P, E>,
        arena: &'a Arena<String>,
        now: Instant,
        spec: &SubSpec,
    ) -> Result<Registered, Error> {
        let predicted = self.slots.iter().position(Option::is_none).unwrap_or(self.slots.len());
        if predicted >= S {
            return Err(Error::TooMany);
        }
        let def = core_subscription(&spec.kind, arena);
        match session.subscribe(now, def) {
            Ok(id) => {
                let index = usize::from(id.0);
                if self.slots.len() <= index {
                    self.slots.resize(index + 1, None);
                }
                if let Some(slot) = self.slots.get_mut(index) {
                    *slot = Some(spec.key);
                }
                Ok(Registered::Yes)
            }
            Err(e @ (session::Error::TransmitBufferFull | session::Error::TooManyPending)) => {
                // The session kept the subscription but could not open it: take it back
                // and try again once there is room.
                if let Ok(id) = u8::try_from(predicted) {
                    let _ = session.unsubscribe(now, SubscriptionId(id));
                }
                Ok(if e == session::Error::TransmitBufferFull { Registered::AfterFlush } else { Registered::Later })
            }
            Err(e) => Err(session_error(e)),
        }
    }

    pub(super) fn unregister<const R: usize, const S: usize, const P: usize, const E: usize>(
        &mut self,
        session: &mut Sess<'_, R, S, P, E>,
        now: Instant,
        key: u64,
    ) {
        if let Some(id) = self.slot_of(key) {
            let _ = session.unsubscribe(now, id);
            if let Some(slot) = self.slots.get_mut(usize::from(id.0)) {
                *slot = None;
            }
        }
        self.open.remove(&key);
    }
}
