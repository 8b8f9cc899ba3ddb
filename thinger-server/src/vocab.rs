//! The words every part of the server shares: refusal and disconnect codes, requests to a
//! device and its replies, hub events, and the commands a connection obeys. A leaf: it
//! imports nothing of the crate but the error types, the refusal codes of [`crate::wire`]
//! and the connection's send queue ([`Outbox`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use thinger_core::pson::Value;
use tokio::sync::{mpsc, oneshot};

use crate::error::DeviceError;
use crate::transport::Outbox;

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
    /// Open a byte stream (a session) on a device resource: START_STREAM with parameters.
    OpenSession {
        /// The caller's key for this session (to close it before or after it opens).
        key: u64,
        resource: String,
        params: Option<Value>,
        sink: SessionSink,
        reply: oneshot::Sender<Result<Opened, DeviceError>>,
    },
    /// Close the session opened with this key (STOP_STREAM if it is open).
    CloseSession {
        key: u64,
    },
    Disconnect {
        code: u64,
        reason: &'static str,
    },
}

/// How a session ended, as its receiver learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The device sent STOP_STREAM (or the caller closed it).
    Closed,
    /// The caller did not read: the buffer passed this many bytes.
    Overflow(usize),
}

/// What the connection hands a session's receiver.
#[derive(Debug)]
pub(crate) enum SessionItem {
    Data(Value),
    End(SessionEnd),
}

/// The device-to-caller half of a session: an unbounded queue whose bytes are counted, so
/// the connection stops the session instead of buffering past `limit`.
pub(crate) struct SessionSink {
    pub tx: mpsc::UnboundedSender<SessionItem>,
    pub buffered: Arc<AtomicUsize>,
    pub limit: usize,
    /// Set once the connection forgets the session (the sender refuses to send after it).
    pub ended: Arc<AtomicBool>,
}

/// A session the device accepted.
pub(crate) struct Opened {
    pub sid: u16,
    pub out: Outbox,
    pub frame_limit: usize,
    /// To signal the connection when the caller took something from the buffer.
    pub drained: Arc<tokio::sync::Notify>,
    /// The OK's F2 and F3.
    pub params: Option<Value>,
    pub payload: Option<Value>,
}
