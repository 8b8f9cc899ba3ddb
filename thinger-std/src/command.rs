//! The messages between the [`Client`](crate::Client) handle and the
//! [`Runner`](crate::Runner): what the builder decided ([`Settings`]), what a handle asks
//! ([`Command`]) and what comes back ([`Stats`], [`SubItem`]). Both sides import this
//! module; neither imports the other's internals.

use std::time::Duration;

use thinger_core::resource::HandlerError;
use tokio::sync::{mpsc, oneshot};

use crate::backoff::Backoff;
use crate::capacity::Capacity;
use crate::error::Error;
use crate::queue::Op;
use crate::transport::Target;

/// Everything the builder decided.
/// Largest offline-queue window ([`ClientBuilder::queue_window`](crate::ClientBuilder::queue_window)).
pub(crate) const MAX_QUEUE_WINDOW: usize = 32;

pub(crate) struct Settings {
    pub(crate) user: String,
    pub(crate) device: String,
    pub(crate) credential: String,
    pub(crate) target: Target,
    pub(crate) keep_alive: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) backoff: Backoff,
    /// How long a connection must stay authenticated before the backoff starts over.
    pub(crate) healthy_after: Duration,
    pub(crate) buffer_size: usize,
    pub(crate) capacity: Capacity,
    pub(crate) firmware: Option<String>,
    pub(crate) queue_window: usize,
}

/// A cloud call that waits for the connection (not queued across outages).
#[derive(Debug)]
pub(crate) enum CallSpec {
    ReadProperty { property: String },
    SetProperty { property: String, value: Vec<u8> },
    CallDevice { device: String, resource: String, input: Option<Vec<u8>> },
    CallEndpoint { endpoint: String, data: Option<Vec<u8>> },
    LockSync { sync: String, lock: String, slots: u32, timeout_s: u32 },
    UnlockSync { sync: String, lock: String },
}

/// A subscription, with owned strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubKind {
    Event { name: String },
    Property { property: String, current: bool },
    Topic { topic: String, qos: u8 },
    Publish { topic: String, qos: u8, retained: bool },
}

/// One item of a subscription stream: PSON bytes (none for an empty event), or an error.
pub(crate) type SubItem = Result<Option<Vec<u8>>, Error>;

/// Where the answer of a direct call goes.
pub(crate) type CallReply = oneshot::Sender<Result<Option<Vec<u8>>, Error>>;
/// Where "done" (or why not) goes.
pub(crate) type DoneReply = oneshot::Sender<Result<(), Error>>;

/// The handles' side of the command channel. Commands travel boxed: a queue slot is 8
/// bytes instead of a whole `Command` (88 bytes).
pub(crate) type CommandTx = crate::mailbox::Sender<Box<Command>>;
/// The runner's side of the command channel.
pub(crate) type CommandRx = crate::mailbox::Receiver<Box<Command>>;

/// What a [`Client`](crate::Client) asks of the runner.
pub(crate) enum Command {
    Call {
        spec: CallSpec,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, Error>>,
    },
    Enqueue {
        op: Op,
        queued: oneshot::Sender<Result<(), Error>>,
        ack: Option<oneshot::Sender<Result<(), Error>>>,
    },
    Flush {
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Stats {
        reply: oneshot::Sender<Stats>,
    },
    Subscribe {
        kind: SubKind,
        data: mpsc::Sender<SubItem>,
        reply: oneshot::Sender<Result<u64, Error>>,
    },
    Unsubscribe {
        key: u64,
    },
    Publish {
        topic: String,
        qos: u8,
        retained: bool,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Stream {
        resource: String,
        reply: oneshot::Sender<bool>,
    },
    /// The answer to a request a sync handler deferred.
    Answer {
        stream_id: u16,
        answer: Result<Option<Vec<u8>>, HandlerError>,
        reply: DoneReply,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Counters of a running client.
///
/// ```
/// let stats = thinger_std::Stats::default();
/// assert_eq!((stats.queued, stats.connections), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Entries in the offline queue.
    pub queued: usize,
    /// Queued entries sent and not yet acknowledged.
    pub in_flight: usize,
    /// Transport connections opened so far.
    pub connections: u64,
    /// Successful authentications so far.
    pub authentications: u64,
    /// Bytes of session buffer the connection holds now: 0 while it waits with nothing
    /// buffered (an idle connection gives its buffer back, see
    /// [`ClientBuilder::buffer_size`](crate::ClientBuilder::buffer_size)) or is not connected.
    pub session_buffer: usize,
}
