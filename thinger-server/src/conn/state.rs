//! What a live connection knows: its device, its queue out, the requests it waits on, the
//! streams the server opened and the subscriptions the device opened.

use std::collections::HashMap;
use std::sync::Arc;

use thinger_core::pson::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::DeviceError;
use crate::hub::Hub;
use crate::transport::Outbox;
use crate::vocab::{EventTx, Opened, ReplyTx, SessionSink};

/// A request the server sent to the device, waiting for its OK/ERROR.
pub(super) enum Pending {
    Request { reply: ReplyTx, deadline: Instant },
    Start { resource: String, replies: Vec<oneshot::Sender<Result<(), DeviceError>>>, deadline: Instant },
    Stop { deadline: Instant },
    Session { reply: oneshot::Sender<Result<Opened, DeviceError>>, deadline: Instant },
}

impl Pending {
    pub(super) fn expired(&self, now: Instant) -> bool {
        match self {
            Pending::Request { reply, deadline } => reply.is_closed() || *deadline < now,
            Pending::Start { deadline, .. } | Pending::Stop { deadline } => *deadline < now,
            Pending::Session { reply, deadline } => reply.is_closed() || *deadline < now,
        }
    }
}

/// A stream the server opened on a device resource, shared by every REST client of it.
pub(super) struct SharedStream {
    pub(super) sid: u16,
    pub(super) interval: Option<u64>,
    pub(super) sinks: Vec<(u64, mpsc::Sender<Value>)>,
    pub(super) last: Option<Value>,
    pub(super) open: bool,
}

/// A byte stream the server opened for a caller (see `sessions`).
pub(super) struct Session {
    pub(super) key: u64,
    pub(super) resource: String,
    pub(super) sink: SessionSink,
}

/// A subscription the device opened (START_STREAM F4=8).
pub(super) enum Subscription {
    Publish { topic: String, retained: bool },
    Topic { filter: String },
    Property { device: String, property: Option<String> },
    Event { name: String, filters: Option<Value> },
}

pub(super) struct Conn {
    pub(super) hub: Arc<Hub>,
    pub(super) conn_id: u64,
    pub(super) user: String,
    pub(super) device: String,
    pub(super) out: Outbox,
    pub(super) pending: HashMap<u16, Pending>,
    pub(super) streams: HashMap<String, SharedStream>,
    pub(super) stream_by_sid: HashMap<u16, String>,
    pub(super) subs: HashMap<u16, Subscription>,
    /// Byte streams opened for callers, by stream id.
    pub(super) sessions: HashMap<u16, Session>,
    /// Signalled by a session's receiver when it took something from its buffer.
    pub(super) drained: Arc<tokio::sync::Notify>,
    /// Since when reading from the device has been paused for a backlogged session.
    pub(super) paused_since: Option<Instant>,
    pub(super) next_sid: u16,
    /// This connection's event queue, handed to the hub once it subscribes to something.
    pub(super) events: EventTx,
    pub(super) subscribed: bool,
    /// Largest frame sent to this device.
    pub(super) frame_limit: usize,
}

pub(super) enum Flow {
    Continue,
    Close(String),
}
