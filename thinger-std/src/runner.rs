//! The run loop: connect, drive the core session over the transport, back off, reconnect.
//!
//! Ownership: the [`Runner`] owns everything that outlives a connection (settings, handlers,
//! the offline queue, subscriptions, waiting calls). For each connection it creates a fresh
//! core `Session` that borrows the credential strings and the handlers from the runner, and
//! an arena (`typed_arena`) for the subscription strings of that connection; session and
//! arena are dropped when the connection ends, so nothing grows across reconnects and
//! nothing is leaked. Subscriptions are re-registered on every new session and the core
//! opens them right after authentication.
//!
//! The adapter only moves bytes and time: every protocol decision is the session's.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand_core::OsRng;
use thinger_core::iotmp::DynEncodePson;
use thinger_core::resource::{HandlerError, Thing};
use thinger_core::session::{
    self, AuthFailure, CallError, Config, DisconnectReason, Dropped, Event, RequestId, Session, Subscription,
    SubscriptionId,
};
use thinger_core::time::{Duration as CoreDuration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use typed_arena::Arena;

use crate::backoff::Backoff;
use crate::client::Stats;
use crate::error::Error;
use crate::event::{ClientEvent, Status};
use crate::pson_util::{RawPson, owned};
use crate::queue::{OfflineQueue, Op, Pushed};
use crate::resources::{AsyncProxy, Captured, Completed, Handler, MAX_RESOURCES};
use crate::transport::{self, Conn, Target};

/// Streams the server may open at once, and subscriptions the client may hold.
pub(crate) const MAX_STREAMS: usize = 16;
/// Requests waiting for an answer at once (calls, queued writes, subscriptions, deferred).
pub(crate) const MAX_PENDING: usize = 64;
/// Direct calls in flight at once (the rest wait in the runner).
const MAX_CALLS_IN_FLIGHT: usize = 16;
/// Publishes waiting for their topic stream to open, per topic.
const MAX_OUTBOX: usize = 256;

type Sess<'a> = Session<'a, Vec<u8>, MAX_RESOURCES, MAX_STREAMS, MAX_PENDING>;
type LastValue = Arc<Mutex<Option<Vec<u8>>>>;
type CallReply = oneshot::Sender<Result<Option<Vec<u8>>, Error>>;
type DoneReply = oneshot::Sender<Result<(), Error>>;
type Answer = Result<Option<Vec<u8>>, HandlerError>;
type Running = Pin<Box<dyn Future<Output = (u16, usize, Result<Completed, HandlerError>)>>>;

/// Everything the builder decided.
pub(crate) struct Settings {
    pub(crate) user: String,
    pub(crate) device: String,
    pub(crate) credential: String,
    pub(crate) target: Target,
    pub(crate) keep_alive: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) buffer_size: usize,
    pub(crate) firmware: Option<String>,
    pub(crate) queue_window: usize,
}

/// A cloud call that waits for the connection (not queued across outages).
#[derive(Debug)]
pub(crate) enum CallSpec {
    ReadProperty { property: String },
    SetProperty { property: String, value: Vec<u8> },
    CallDevice { device: String, resource: String, input: Option<Vec<u8>> },
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

impl SubKind {
    /// The core's subscription, its strings copied into `arena`.
    fn def<'a>(&self, arena: &'a Arena<String>) -> Subscription<'a> {
        let text = |s: &String| -> &'a str {
            let stored: &'a String = arena.alloc(s.clone());
            stored.as_str()
        };
        match self {
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
}

/// One item of a subscription stream: PSON bytes (none for an empty event), or an error.
pub(crate) type SubItem = Result<Option<Vec<u8>>, Error>;

/// What a [`Client`](crate::Client) asks of the runner.
pub(crate) enum Command {
    Call { spec: CallSpec, reply: oneshot::Sender<Result<Option<Vec<u8>>, Error>> },
    Enqueue { op: Op, queued: oneshot::Sender<Result<(), Error>>, ack: Option<oneshot::Sender<Result<(), Error>>> },
    Flush { reply: oneshot::Sender<Result<(), Error>> },
    Stats { reply: oneshot::Sender<Stats> },
    Subscribe { kind: SubKind, data: mpsc::Sender<SubItem>, reply: oneshot::Sender<Result<u64, Error>> },
    Unsubscribe { key: u64 },
    Publish { topic: String, qos: u8, retained: bool, payload: Vec<u8>, reply: oneshot::Sender<Result<(), Error>> },
    Stream { resource: String, reply: oneshot::Sender<bool> },
    Shutdown { reply: oneshot::Sender<()> },
}

/// Drives one client's connection: made by [`ClientBuilder::build`](crate::ClientBuilder::build).
///
/// [`Runner::run`] returns a future that is not `Send` (the core session keeps its handlers
/// as `dyn Resource` trait objects): await it where you are (e.g. at the end of `main`),
/// inside a `tokio::task::LocalSet` (many runners on one thread, as a gateway does), or let
/// [`ClientBuilder::spawn`](crate::ClientBuilder::spawn) give it a thread of its own.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let (client, runner) = thinger_std::Client::builder("user", "device", "credential").build()?;
/// tokio::select! {
///     _ = runner.run() => {}
///     _ = tokio::signal::ctrl_c() => client.shutdown().await,
/// }
/// # Ok(()) }
/// ```
pub struct Runner {
    settings: Settings,
    handlers: Vec<(String, Handler)>,
    driver: Driver,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("address", &self.settings.target.address()).finish_non_exhaustive()
    }
}

struct SubSpec {
    key: u64,
    kind: SubKind,
    data: Option<mpsc::Sender<SubItem>>,
    outbox: VecDeque<(Vec<u8>, DoneReply)>,
}

/// The runner's state that outlives connections.
struct Driver {
    cmd_rx: mpsc::Receiver<Command>,
    events: broadcast::Sender<ClientEvent>,
    status: watch::Sender<Status>,
    queue: OfflineQueue,
    acks: HashMap<u64, oneshot::Sender<Result<(), Error>>>,
    flushes: Vec<oneshot::Sender<Result<(), Error>>>,
    calls: VecDeque<(CallSpec, CallReply)>,
    subs: Vec<SubSpec>,
    next_key: u64,
    shutdown: Vec<oneshot::Sender<()>>,
    stop: bool,
    stats: Stats,
}

/// Milliseconds since the runner started, for the core.
struct Clock {
    start: tokio::time::Instant,
}

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
    fn at(&self, when: Instant) -> tokio::time::Instant {
        self.start
            .checked_add(Duration::from_millis(when.as_millis()))
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400))
    }
}

fn core_duration(d: Duration) -> CoreDuration {
    CoreDuration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Runner {
    pub(crate) fn new(
        settings: Settings,
        handlers: Vec<(String, Handler)>,
        cmd_rx: mpsc::Receiver<Command>,
        events: broadcast::Sender<ClientEvent>,
        status: watch::Sender<Status>,
        queue: OfflineQueue,
    ) -> Runner {
        let driver = Driver {
            cmd_rx,
            events,
            status,
            queue,
            acks: HashMap::new(),
            flushes: Vec::new(),
            calls: VecDeque::new(),
            subs: Vec::new(),
            next_key: 1,
            shutdown: Vec::new(),
            stop: false,
            stats: Stats::default(),
        };
        Runner { settings, handlers, driver }
    }

    /// Connects, serves the device, and reconnects with backoff until the client is shut
    /// down or every [`Client`](crate::Client) handle is dropped.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// let (client, runner) = thinger_std::Client::builder("user1", "dev1", "secret")
    ///     .host("127.0.0.1")
    ///     .port(server.tcp_addr().port())
    ///     .transport(thinger_std::Transport::Tcp)
    ///     .build()
    ///     .unwrap();
    /// let stopper = async {
    ///     client.connected().await.unwrap();
    ///     client.shutdown().await;
    /// };
    /// // `run` ends once the client is shut down.
    /// tokio::join!(runner.run(), stopper);
    /// assert_eq!(client.status(), thinger_std::Status::Stopped);
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn run(self) {
        let Runner { settings, mut handlers, mut driver } = self;
        let clock = Clock { start: tokio::time::Instant::now() };
        let lasts: Vec<Option<LastValue>> = handlers
            .iter()
            .map(|(_, h)| match h {
                Handler::Async(a) => Some(a.last_handle()),
                Handler::Sync(_) => None,
            })
            .collect();
        let paths: Vec<String> = handlers.iter().map(|(p, _)| p.clone()).collect();
        let address = settings.target.address();
        let mut attempt: u32 = 0;
        loop {
            if driver.stop {
                break;
            }
            driver.set_status(Status::Connecting);
            driver.emit(ClientEvent::Connecting { address: address.clone(), attempt });
            let Some(result) = driver.service_while(transport::connect(&settings.target)).await else { break };
            match result {
                Err(e) => {
                    tracing::warn!("connecting to {address}: {e}");
                    driver.emit(ClientEvent::ConnectFailed(e));
                }
                Ok(mut conn) => {
                    driver.stats.connections += 1;
                    let ended = serve(&settings, &mut handlers, &lasts, &paths, &mut driver, &mut conn, &clock).await;
                    if ended.authenticated {
                        attempt = 0;
                    }
                    match ended.outcome {
                        Outcome::AuthRefused => {}
                        Outcome::Ended(reason) => {
                            tracing::info!("disconnected from {address}: {reason}");
                            driver.emit(ClientEvent::Disconnected { reason, detail: ended.detail });
                        }
                    }
                }
            }
            if driver.stop {
                break;
            }
            driver.set_status(Status::Disconnected);
            let delay = settings.backoff.delay(attempt, Backoff::random());
            attempt = attempt.saturating_add(1);
            driver.emit(ClientEvent::Backoff { attempt, delay });
            if driver.service_while(tokio::time::sleep(delay)).await.is_none() {
                break;
            }
        }
        driver.finish();
    }
}

impl Driver {
    fn emit(&self, event: ClientEvent) {
        let _ = self.events.send(event);
    }

    fn set_status(&self, status: Status) {
        self.status.send_replace(status);
    }

    /// Runs `fut` while answering commands; `None` when the client is told to stop.
    async fn service_while<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        loop {
            if self.stop {
                return None;
            }
            tokio::select! {
                out = &mut fut => return Some(out),
                cmd = self.cmd_rx.recv() => self.on_command(cmd, None),
            }
        }
    }

    fn finish(&mut self) {
        self.set_status(Status::Stopped);
        self.emit(ClientEvent::Stopped);
        for (_, reply) in self.calls.drain(..) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for (_, ack) in self.acks.drain() {
            let _ = ack.send(Err(Error::Stopped));
        }
        for flush in self.flushes.drain(..) {
            let _ = flush.send(Err(Error::Stopped));
        }
        for spec in self.subs.drain(..) {
            for (_, reply) in spec.outbox {
                let _ = reply.send(Err(Error::Stopped));
            }
        }
        for waiter in self.shutdown.drain(..) {
            let _ = waiter.send(());
        }
    }

    fn on_command(&mut self, cmd: Option<Command>, mut link: Option<&mut Link<'_>>) {
        let Some(cmd) = cmd else {
            // Every client handle is gone.
            self.stop = true;
            return;
        };
        match cmd {
            Command::Call { spec, reply } => {
                self.calls.retain(|(_, r)| !r.is_closed());
                self.calls.push_back((spec, reply));
            }
            Command::Enqueue { op, queued, ack } => {
                let result = match self.queue.push(op) {
                    Ok(Pushed::Queued(seq)) => Ok(seq),
                    Ok(Pushed::QueuedDropping { seq, dropped }) => {
                        if let Some(l) = link.as_deref_mut() {
                            l.forget_queued(dropped);
                        }
                        if let Some(w) = self.acks.remove(&dropped) {
                            let _ = w.send(Err(Error::Dropped));
                        }
                        Ok(seq)
                    }
                    Ok(Pushed::Rejected) => Err(Error::QueueFull),
                    Ok(Pushed::Dropped) => Err(Error::Dropped),
                    Err(e) => Err(Error::Storage(e.to_string())),
                };
                match result {
                    Ok(seq) => {
                        if let Some(ack) = ack {
                            self.acks.insert(seq, ack);
                        }
                        let _ = queued.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = queued.send(Err(e));
                    }
                }
            }
            Command::Flush { reply } => {
                if self.queue.is_empty() {
                    let _ = reply.send(Ok(()));
                } else {
                    self.flushes.push(reply);
                }
            }
            Command::Stats { reply } => {
                let mut stats = self.stats;
                stats.queued = self.queue.len();
                stats.in_flight = link.map_or(0, |l| l.queued.len());
                let _ = reply.send(stats);
            }
            Command::Subscribe { kind, data, reply } => {
                let key = self.next_key;
                self.next_key += 1;
                self.subs.push(SubSpec { key, kind, data: Some(data), outbox: VecDeque::new() });
                let _ = reply.send(Ok(key));
            }
            Command::Unsubscribe { key } => {
                self.subs.retain(|s| s.key != key);
                if let Some(l) = link {
                    l.unregister(key);
                }
            }
            Command::Publish { topic, qos, retained, payload, reply } => {
                let kind = SubKind::Publish { topic, qos, retained };
                let index = match self.subs.iter().position(|s| s.kind == kind) {
                    Some(i) => i,
                    None => {
                        let key = self.next_key;
                        self.next_key += 1;
                        self.subs.push(SubSpec { key, kind, data: None, outbox: VecDeque::new() });
                        self.subs.len() - 1
                    }
                };
                match self.subs.get_mut(index) {
                    Some(spec) if spec.outbox.len() < MAX_OUTBOX => spec.outbox.push_back((payload, reply)),
                    _ => {
                        let _ = reply.send(Err(Error::QueueFull));
                    }
                }
            }
            Command::Stream { resource, reply } => {
                let sent = match link {
                    Some(l) => {
                        let now = l.clock.now();
                        l.session.stream(now, &resource)
                    }
                    None => false,
                };
                let _ = reply.send(sent);
            }
            Command::Shutdown { reply } => {
                self.shutdown.push(reply);
                self.stop = true;
            }
        }
    }

    /// A queued entry got its answer: remove it and tell its waiter.
    fn complete_queued(&mut self, seq: u64, result: Result<(), Error>) {
        if let Err(e) = self.queue.remove(seq) {
            tracing::error!("offline queue storage: {e}");
        }
        if let Some(w) = self.acks.remove(&seq) {
            let _ = w.send(result);
        }
        if self.queue.is_empty() {
            for f in self.flushes.drain(..) {
                let _ = f.send(Ok(()));
            }
        }
    }

    /// Moves waiting work into the session. Returns true when the transmit buffer must be
    /// drained first.
    fn pump(&mut self, link: &mut Link<'_>, window: usize) -> bool {
        let now = link.clock.now();
        // Answers of async handlers.
        while let Some((stream_id, result)) = link.replies.pop_front() {
            let raw = match &result {
                Ok(Some(bytes)) => Some(RawPson(bytes)),
                _ => None,
            };
            let answer: Result<Option<&dyn DynEncodePson>, HandlerError> = match &result {
                Ok(_) => Ok(raw.as_ref().map(|r| r as &dyn DynEncodePson)),
                Err(e) => Err(*e),
            };
            match link.session.reply(now, stream_id, answer) {
                Err(session::Error::TransmitBufferFull) => {
                    link.replies.push_front((stream_id, result));
                    return true;
                }
                Err(e) => tracing::debug!("deferred reply to {stream_id} not sent: {e}"),
                Ok(()) => {}
            }
        }
        // Subscriptions not registered with this session yet.
        let mut failed = Vec::new();
        for spec in &self.subs {
            if link.slot_of(spec.key).is_some() {
                continue;
            }
            match link.register(spec) {
                Ok(Registered::Yes) => {}
                Ok(Registered::AfterFlush) => return true,
                // The session's request table is full: try again after some answers.
                Ok(Registered::Later) => break,
                Err(e) => failed.push((spec.key, e)),
            }
        }
        for (key, error) in failed {
            if let Some(i) = self.subs.iter().position(|s| s.key == key) {
                let spec = self.subs.swap_remove(i);
                if let Some(data) = spec.data {
                    let _ = data.try_send(Err(error.clone()));
                }
                for (_, reply) in spec.outbox {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        // Direct calls.
        while link.calls.len() < MAX_CALLS_IN_FLIGHT {
            let Some((spec, reply)) = self.calls.front() else { break };
            if reply.is_closed() {
                self.calls.pop_front();
                continue;
            }
            match send_call(&mut link.session, now, spec) {
                Ok(id) => {
                    if let Some((_, reply)) = self.calls.pop_front() {
                        link.calls.insert(id.0, reply);
                    }
                }
                Err(session::Error::TransmitBufferFull) => return true,
                Err(session::Error::TooManyPending) => break,
                Err(e) => {
                    if let Some((_, reply)) = self.calls.pop_front() {
                        let _ = reply.send(Err(session_error(e)));
                    }
                }
            }
        }
        // Queued writes, in order, up to the window.
        while link.queued.len() < window {
            let Some(entry) = self.queue.get(link.sent) else { break };
            let seq = entry.seq;
            match send_op(&mut link.session, now, &entry.op) {
                Ok(id) => {
                    link.queued.insert(id.0, seq);
                    link.sent += 1;
                }
                Err(session::Error::TransmitBufferFull) => return true,
                Err(session::Error::TooManyPending) => break,
                Err(e) => self.complete_queued(seq, Err(session_error(e))),
            }
        }
        // MQTT publishes on open topic streams.
        for spec in &mut self.subs {
            if !matches!(spec.kind, SubKind::Publish { .. }) || !link.open.contains(&spec.key) {
                continue;
            }
            let Some(slot) = link.slot_of(spec.key) else { continue };
            while let Some((payload, _)) = spec.outbox.front() {
                match link.session.publish(now, slot, &RawPson(payload)) {
                    Ok(()) => {
                        if let Some((_, reply)) = spec.outbox.pop_front() {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Err(session::Error::TransmitBufferFull) => return true,
                    Err(session::Error::UnknownId) => {
                        link.open.remove(&spec.key);
                        break;
                    }
                    Err(e) => {
                        if let Some((_, reply)) = spec.outbox.pop_front() {
                            let _ = reply.send(Err(session_error(e)));
                        }
                    }
                }
            }
        }
        false
    }

    fn spec_mut(&mut self, key: u64) -> Option<&mut SubSpec> {
        self.subs.iter_mut().find(|s| s.key == key)
    }

    /// Hands subscription data to its stream; a stream that was dropped is unsubscribed.
    fn deliver(&mut self, link: &mut Link<'_>, key: u64, item: SubItem) {
        let Some(spec) = self.spec_mut(key) else { return };
        let Some(data) = &spec.data else { return };
        match data.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => tracing::warn!("subscription reader too slow: item dropped"),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.subs.retain(|s| s.key != key);
                link.unregister(key);
            }
        }
    }
}

/// The outcome of registering a subscription with the session.
enum Registered {
    Yes,
    /// Not now: drain the transmit buffer first.
    AfterFlush,
    /// Not now: the session's request table is full.
    Later,
}

/// The state of one connection.
struct Link<'a> {
    session: Sess<'a>,
    arena: &'a Arena<String>,
    clock: &'a Clock,
    /// The subscription key in each of the session's subscription slots (mirrors the
    /// session's slot allocation: first free slot, else a new one).
    slots: Vec<Option<u64>>,
    /// Subscriptions the server accepted on this connection.
    open: HashSet<u64>,
    /// Direct calls in flight.
    calls: HashMap<u16, CallReply>,
    /// Queued entries in flight: request id → sequence number.
    queued: HashMap<u16, u64>,
    /// Queue entries from the front that are in flight.
    sent: usize,
    /// Async handler answers waiting for room in the transmit buffer.
    replies: VecDeque<(u16, Answer)>,
}

impl Link<'_> {
    fn slot_of(&self, key: u64) -> Option<SubscriptionId> {
        let i = self.slots.iter().position(|s| *s == Some(key))?;
        u8::try_from(i).ok().map(SubscriptionId)
    }

    fn key_of(&self, id: SubscriptionId) -> Option<u64> {
        self.slots.get(usize::from(id.0)).copied().flatten()
    }

    /// Registers a subscription with the session.
    fn register(&mut self, spec: &SubSpec) -> Result<Registered, Error> {
        let now = self.clock.now();
        let predicted = self.slots.iter().position(Option::is_none).unwrap_or(self.slots.len());
        if predicted >= MAX_STREAMS {
            return Err(Error::TooMany);
        }
        let def = spec.kind.def(self.arena);
        match self.session.subscribe(now, def) {
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
                    let _ = self.session.unsubscribe(now, SubscriptionId(id));
                }
                Ok(if e == session::Error::TransmitBufferFull { Registered::AfterFlush } else { Registered::Later })
            }
            Err(e) => Err(session_error(e)),
        }
    }

    fn unregister(&mut self, key: u64) {
        if let Some(id) = self.slot_of(key) {
            let now = self.clock.now();
            let _ = self.session.unsubscribe(now, id);
            if let Some(slot) = self.slots.get_mut(usize::from(id.0)) {
                *slot = None;
            }
        }
        self.open.remove(&key);
    }

    /// A queue entry was dropped by the overflow policy: forget it if it was in flight.
    fn forget_queued(&mut self, seq: u64) {
        let before = self.queued.len();
        self.queued.retain(|_, s| *s != seq);
        if self.queued.len() < before {
            self.sent = self.sent.saturating_sub(1);
        }
    }
}

fn send_call(session: &mut Sess<'_>, now: Instant, spec: &CallSpec) -> Result<RequestId, session::Error> {
    match spec {
        CallSpec::ReadProperty { property } => session.read_property(now, property),
        CallSpec::SetProperty { property, value } => session.set_property(now, property, &RawPson(value), true),
        CallSpec::CallDevice { device, resource, input } => {
            let raw = input.as_deref().map(RawPson);
            session.call_device(now, device, resource, raw.as_ref().map(|r| r as &dyn DynEncodePson))
        }
        CallSpec::LockSync { sync, lock, slots, timeout_s } => session.lock_sync(now, sync, lock, *slots, *timeout_s),
        CallSpec::UnlockSync { sync, lock } => session.unlock_sync(now, sync, lock),
    }
}

fn send_op(session: &mut Sess<'_>, now: Instant, op: &Op) -> Result<RequestId, session::Error> {
    match op {
        Op::WriteBucket { bucket, record } => session.write_bucket(now, bucket, &RawPson(record)),
        Op::CallEndpoint { endpoint, data } => {
            let raw = data.as_deref().map(RawPson);
            session.call_endpoint(now, endpoint, raw.as_ref().map(|r| r as &dyn DynEncodePson))
        }
    }
}

fn session_error(e: session::Error) -> Error {
    match e {
        session::Error::NotConnected => Error::Disconnected,
        session::Error::TooLarge | session::Error::TransmitBufferFull => Error::TooLarge,
        session::Error::TooManyPending => Error::TooMany,
        session::Error::Pson(e) => Error::Encode(e),
        session::Error::UnknownId => Error::Disconnected,
    }
}

fn call_error(e: CallError<'_>) -> Error {
    match e {
        CallError::Server { code, payload } => {
            Error::Server { code, payload: payload.map(thinger_core::pson::Value::from_ref) }
        }
        CallError::Timeout => Error::Timeout,
        CallError::Disconnected => Error::Disconnected,
        CallError::PayloadTooLarge => Error::PayloadTooLarge,
    }
}

/// An event, copied out of the session's buffer.
enum Ev {
    Connected,
    AuthRefused {
        code: Option<u64>,
        message: Option<String>,
    },
    Ended(DisconnectReason),
    Call {
        id: u16,
        result: Result<Option<Vec<u8>>, Error>,
    },
    Subscribed {
        id: SubscriptionId,
        initial: Option<Vec<u8>>,
    },
    SubscriptionFailed {
        id: SubscriptionId,
        error: Error,
    },
    SubscriptionData {
        id: SubscriptionId,
        data: Option<Vec<u8>>,
    },
    /// A handler deferred its reply; its future carries the stream id (see `start_async_handlers`).
    Deferred,
    StreamStarted {
        resource: usize,
    },
    StreamStopped {
        stream_id: u16,
    },
    Dropped(Dropped),
}

fn own(event: Event<'_>) -> Ev {
    match event {
        Event::Connected => Ev::Connected,
        Event::AuthFailed(AuthFailure::Refused { code, payload }) => {
            let message = payload.and_then(|p| p.as_str().or_else(|| p.get("error").and_then(|e| e.as_str())));
            Ev::AuthRefused { code, message: message.map(str::to_owned) }
        }
        Event::AuthFailed(AuthFailure::Closed) => Ev::Ended(DisconnectReason::TransportClosed),
        Event::AuthFailed(AuthFailure::Timeout) => Ev::Ended(DisconnectReason::Timeout),
        Event::AuthFailed(AuthFailure::UnexpectedFrame) => Ev::Ended(DisconnectReason::UnexpectedFrame),
        Event::Disconnected(reason) => Ev::Ended(reason),
        Event::CallCompleted { request, result } => {
            Ev::Call { id: request.0, result: result.map(|p| p.map(owned)).map_err(call_error) }
        }
        Event::Subscribed { subscription, initial } => Ev::Subscribed { id: subscription, initial: initial.map(owned) },
        Event::SubscriptionFailed { subscription, error } => {
            Ev::SubscriptionFailed { id: subscription, error: call_error(error) }
        }
        Event::SubscriptionData { subscription, data } => {
            Ev::SubscriptionData { id: subscription, data: data.map(owned) }
        }
        Event::Deferred { .. } => Ev::Deferred,
        Event::StreamStarted { resource, .. } => Ev::StreamStarted { resource },
        Event::StreamStopped { stream_id } => Ev::StreamStopped { stream_id },
        Event::Dropped(d) => Ev::Dropped(d),
    }
}

enum Outcome {
    AuthRefused,
    Ended(DisconnectReason),
}

struct Ended {
    authenticated: bool,
    outcome: Outcome,
    detail: Option<String>,
}

/// Writes everything the session has queued.
async fn flush(session: &mut Sess<'_>, conn: &mut Conn, buf: &mut Vec<u8>, limit: Duration) -> io::Result<()> {
    loop {
        let n = match session.poll_transmit(buf) {
            Ok(n) => n,
            Err(too_small) => {
                buf.resize(too_small.needed, 0);
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
        tracing::trace!("sending {n} bytes");
        let chunk = buf.get(..n).unwrap_or(&[]);
        match tokio::time::timeout(limit, conn.write(chunk)).await {
            Ok(result) => result?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }
}

/// Serves one connection until it ends.
async fn serve(
    settings: &Settings,
    handlers: &mut [(String, Handler)],
    lasts: &[Option<LastValue>],
    paths: &[String],
    driver: &mut Driver,
    conn: &mut Conn,
    clock: &Clock,
) -> Ended {
    let arena: Arena<String> = Arena::new();
    let captured: RefCell<Vec<Captured>> = RefCell::new(Vec::new());
    let mut thing: Thing<'_, MAX_RESOURCES> = Thing::new();
    for (index, (path, handler)) in handlers.iter_mut().enumerate() {
        let added = match handler {
            Handler::Sync(resource) => thing.add(path.as_str(), &mut **resource),
            Handler::Async(handler) => {
                thing.add_owned(path.as_str(), AsyncProxy { handler, index, captured: &captured })
            }
        };
        if let Err(e) = added {
            tracing::error!("resource {path}: {e}");
        }
    }
    let mut config = Config::new(&settings.user, &settings.device, &settings.credential)
        .keep_alive(core_duration(settings.keep_alive))
        .request_timeout(core_duration(settings.request_timeout))
        .deferred_timeout(core_duration(settings.request_timeout));
    if let Some(firmware) = &settings.firmware {
        config = config.firmware(firmware);
    }
    let session: Sess<'_> = Session::new(config, thing, vec![0u8; settings.buffer_size], &mut OsRng);
    let mut link = Link {
        session,
        arena: &arena,
        clock,
        slots: Vec::new(),
        open: HashSet::new(),
        calls: HashMap::new(),
        queued: HashMap::new(),
        sent: 0,
        replies: VecDeque::new(),
    };
    // Subscriptions go in before CONNECT; the session opens them after authentication.
    for spec in &driver.subs {
        if let Err(e) = link.register(spec) {
            tracing::warn!("subscription not registered: {e}");
        }
    }
    let write_limit = settings.keep_alive + Duration::from_secs(5);
    // Grown on demand (up to the session's transmit region); reading takes a quarter of the
    // session buffer at a time.
    let mut txbuf = vec![0u8; settings.buffer_size.min(1024)];
    let read_chunk = (settings.buffer_size / 4).clamp(1024, 16 * 1024);
    let mut inbuf: Vec<u8> = Vec::new();
    let mut inpos = 0usize;
    let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
    let mut authenticated = false;
    let mut refused = false;
    let mut reason: Option<DisconnectReason> = None;
    let mut detail: Option<String> = None;
    let mut closing = false;
    let mut idle_spins = 0u32;

    link.session.connect(clock.now());
    loop {
        // 1. Send what the session queued.
        if let Err(e) = flush(&mut link.session, conn, &mut txbuf, write_limit).await {
            detail.get_or_insert_with(|| e.to_string());
            link.session.handle_close(clock.now());
        }
        // 2. Events, copied out, then acted on.
        let mut batch = Vec::new();
        while let Some(event) = link.session.poll_event() {
            batch.push(own(event));
        }
        let progressed = !batch.is_empty();
        start_async_handlers(&captured, &mut running);
        for event in batch {
            match event {
                Ev::Connected => {
                    authenticated = true;
                    driver.stats.authentications += 1;
                    driver.emit(ClientEvent::Connected);
                    driver.set_status(Status::Connected);
                    tracing::info!("connected to {}", settings.target.address());
                }
                Ev::AuthRefused { code, message } => {
                    refused = true;
                    tracing::warn!("authentication refused (code {code:?})");
                    driver.emit(ClientEvent::AuthFailed { code, message });
                }
                Ev::Ended(r) => {
                    reason.get_or_insert(r);
                }
                Ev::Call { id, result } => {
                    if let Some(reply) = link.calls.remove(&id) {
                        let _ = reply.send(result);
                    } else if let Some(seq) = link.queued.remove(&id) {
                        match result {
                            Err(Error::Disconnected) => {}
                            Err(Error::Timeout) => {
                                // Resend from the oldest unacknowledged entry, in order.
                                link.queued.clear();
                                link.sent = 0;
                            }
                            other => {
                                link.sent = link.sent.saturating_sub(1);
                                driver.complete_queued(seq, other.map(drop));
                            }
                        }
                    }
                }
                Ev::Subscribed { id, initial } => {
                    if let Some(key) = link.key_of(id) {
                        link.open.insert(key);
                        if let Some(initial) = initial {
                            driver.deliver(&mut link, key, Ok(Some(initial)));
                        }
                    }
                }
                Ev::SubscriptionFailed { id, error } => {
                    if let Some(key) = link.key_of(id) {
                        link.open.remove(&key);
                        if let Some(spec) = driver.spec_mut(key) {
                            for (_, reply) in spec.outbox.drain(..) {
                                let _ = reply.send(Err(error.clone()));
                            }
                        }
                        driver.deliver(&mut link, key, Err(error));
                    }
                }
                Ev::SubscriptionData { id, data } => {
                    if let Some(key) = link.key_of(id) {
                        driver.deliver(&mut link, key, Ok(data));
                    }
                }
                Ev::Deferred => {}
                Ev::StreamStarted { resource } => {
                    let path = paths.get(resource).cloned().unwrap_or_default();
                    driver.emit(ClientEvent::StreamStarted { resource: path });
                }
                Ev::StreamStopped { stream_id } => driver.emit(ClientEvent::StreamStopped { stream_id }),
                Ev::Dropped(d) => tracing::debug!("dropped frame: {d:?}"),
            }
        }
        // 3. The end.
        if link.session.is_closed() || link.session.phase() == session::Phase::Idle {
            let _ = flush(&mut link.session, conn, &mut txbuf, Duration::from_secs(1)).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
            // Completions of requests that were pending.
            while let Some(event) = link.session.poll_event() {
                if let Ev::Call { id, result } = own(event)
                    && let Some(reply) = link.calls.remove(&id)
                {
                    let _ = reply.send(result);
                }
            }
            for (_, reply) in link.calls.drain() {
                let _ = reply.send(Err(Error::Disconnected));
            }
            let outcome = if refused {
                Outcome::AuthRefused
            } else {
                Outcome::Ended(reason.unwrap_or(DisconnectReason::TransportClosed))
            };
            return Ended { authenticated, outcome, detail };
        }
        if driver.stop && !closing {
            closing = true;
            link.session.close(clock.now());
            continue;
        }
        // 4. Work for the session, sent right away.
        if link.session.is_connected() {
            let blocked = driver.pump(&mut link, settings.queue_window);
            if let Err(e) = flush(&mut link.session, conn, &mut txbuf, write_limit).await {
                detail.get_or_insert_with(|| e.to_string());
                link.session.handle_close(clock.now());
                continue;
            }
            if blocked {
                continue;
            }
        }
        // 5. Input that waited for room.
        if inpos < inbuf.len() {
            let taken = link.session.handle_input(clock.now(), inbuf.get(inpos..).unwrap_or(&[]));
            inpos += taken;
            if inpos >= inbuf.len() {
                inbuf.clear();
                inpos = 0;
            }
            if taken > 0 || progressed {
                idle_spins = 0;
                continue;
            }
            idle_spins += 1;
            if idle_spins > 1000 {
                detail.get_or_insert_with(|| "receive stalled".to_owned());
                link.session.handle_close(clock.now());
                continue;
            }
        }
        // 6. Wait for the socket, a command, an async handler or the next deadline.
        let now = clock.now();
        let deadline = link.session.poll_timeout();
        if let Some(d) = deadline
            && d <= now
        {
            link.session.handle_timeout(now);
            continue;
        }
        let sleep_until = deadline.map(|d| clock.at(d));
        let reading = inpos >= inbuf.len();
        tokio::select! {
            read = conn.read(&mut inbuf, read_chunk), if reading => {
                match read {
                    Ok(0) => {
                        detail.get_or_insert_with(|| "closed by the server".to_owned());
                        link.session.handle_close(clock.now());
                    }
                    Ok(_) => {
                        let taken = link.session.handle_input(clock.now(), inbuf.get(inpos..).unwrap_or(&[]));
                        inpos += taken;
                        if inpos >= inbuf.len() {
                            inbuf.clear();
                            inpos = 0;
                        }
                    }
                    Err(e) => {
                        detail.get_or_insert_with(|| e.to_string());
                        link.session.handle_close(clock.now());
                    }
                }
            }
            cmd = driver.cmd_rx.recv(), if !driver.stop => driver.on_command(cmd, Some(&mut link)),
            Some((stream_id, index, result)) = running.next(), if !running.is_empty() => {
                let (answer, state) = match result {
                    Ok(done) => (Ok(done.reply), done.state),
                    Err(e) => (Err(e), None),
                };
                if let (Some(state), Some(Some(last))) = (state, lasts.get(index)) {
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
                }
                // Stream id 0: stream data into an async input, which has no reply.
                if stream_id != 0 {
                    link.replies.push_back((stream_id, answer));
                }
            }
            () = sleep(sleep_until) => {
                link.session.handle_timeout(clock.now());
            }
        }
    }
}

/// Sleeps until `until`, or forever.
async fn sleep(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending::<()>().await,
    }
}

/// Starts the futures of async handlers called since the last batch. Each knows the
/// server request it answers (`Call::stream_id`), so replies can never be crossed; a future
/// started by stream data is run for its effect and answers nothing.
fn start_async_handlers(captured: &RefCell<Vec<Captured>>, running: &mut FuturesUnordered<Running>) {
    for c in std::mem::take(&mut *captured.borrow_mut()) {
        let (id, resource, future) = (c.stream_id.unwrap_or(0), c.index, c.future);
        running.push(Box::pin(async move { (id, resource, future.await) }));
    }
}
