//! The words every part of the server shares: refusal and disconnect codes, requests to a
//! device and its replies, hub events, and the commands a connection obeys. A leaf: it
//! imports nothing of the crate but the error types
//! and the refusal codes of [`crate::wire`].

use std::sync::Arc;

use thinger_core::pson::Value;
use tokio::sync::{mpsc, oneshot};

use crate::error::DeviceError;

pub(crate) use crate::wire::{REFUSE_CREDENTIALS, REFUSE_ENCODING};

/// ERROR to CONNECT, F2: too many devices connected.
pub(crate) const REFUSE_FULL: u64 = 503;

/// DISCONNECT F2: protocol violation (bad framing, oversized frame, no CONNECT first).
pub(crate) const REASON_PROTOCOL: u64 = 4;
/// DISCONNECT F2: not let in now (too many connections waiting to authenticate, or too
/// many wrong credentials from this address); retry later.
pub(crate) const REASON_BUSY: u64 = 9;
/// DISCONNECT F2: another connection of the same device replaced this one.
pub(crate) const REASON_REPLACED: u64 = 6;
/// DISCONNECT F2: the server is shutting down.
pub(crate) const REASON_SHUTDOWN: u64 = 7;
/// DISCONNECT F2: nothing received for 1.15 × keep-alive.
pub(crate) const REASON_TIMEOUT: u64 = 8;

/// Something devices may be subscribed to. Delivered to the connections of `user` that
/// subscribed to anything; each matches it against its own subscriptions.
#[derive(Debug, Clone)]
pub(crate) enum HubEvent {
    /// A property was stored (by a device or the REST API).
    Property { user: String, device: String, property: String, value: Value },
    /// A device published on an MQTT topic.
    Topic { user: String, topic: String, payload: Value },
    /// A device connected or disconnected.
    State { user: String, device: String, connected: bool },
}

impl HubEvent {
    pub(crate) fn user(&self) -> &str {
        match self {
            HubEvent::Property { user, .. } | HubEvent::Topic { user, .. } | HubEvent::State { user, .. } => user,
        }
    }
}

/// The bounded queue of events to one subscribed connection.
pub(crate) type EventTx = mpsc::Sender<Arc<HubEvent>>;

/// A device's reply to a server request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawReply {
    pub ok: bool,
    pub code: Option<u64>,
    pub payload: Option<Value>,
}

/// A request the server sends to a device.
#[derive(Debug, Clone)]
pub(crate) enum DeviceRequest {
    Run { resource: String, input: Option<Value> },
    Describe { resource: Option<String> },
}

pub(crate) type ReplyTx = oneshot::Sender<Result<RawReply, DeviceError>>;

/// What other parts of the server ask of one connection.
pub(crate) enum Command {
    Request {
        request: DeviceRequest,
        reply: ReplyTx,
    },
    StartStream {
        resource: String,
        interval: Option<u64>,
        sink_id: u64,
        sink: mpsc::Sender<Value>,
        reply: oneshot::Sender<Result<(), DeviceError>>,
    },
    StopStream {
        resource: String,
        sink_id: u64,
    },
    Disconnect {
        code: u64,
        reason: &'static str,
    },
}
