//! The client session: a sans-IO state machine for one IOTMP connection.
//!
//! The session never touches a socket or a clock. The adapter (tokio, embassy, a test)
//! feeds it and drains it:
//!
//! * [`Session::connect`] when the transport is up, then
//! * [`Session::handle_input`] with received bytes (it returns how many it took: the rest
//!   must be offered again after the transmit buffer is drained),
//! * [`Session::poll_transmit`] to get bytes to send,
//! * [`Session::poll_timeout`] / [`Session::handle_timeout`] for keep-alives, stream
//!   intervals and request timeouts,
//! * [`Session::poll_event`] for what happened,
//! * [`Session::handle_close`] when the transport closed.
//!
//! ```
//! use thinger_core::resource::{handler, ResourceKind, Thing};
//! use thinger_core::session::{Config, Event, Session};
//! use thinger_core::time::Instant;
//!
//! # struct Rng(u32);
//! # impl rand_core::RngCore for Rng {
//! #     fn next_u32(&mut self) -> u32 { self.0 = self.0.wrapping_mul(1664525).wrapping_add(1013904223); self.0 }
//! #     fn next_u64(&mut self) -> u64 { u64::from(self.next_u32()) }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u32() as u8 } }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
//! # }
//! # impl rand_core::CryptoRng for Rng {}
//! let mut millis = handler(ResourceKind::Output, |call| Ok(call.output().set(&3809u32)?));
//! let mut thing: Thing<'_, 4> = Thing::new();
//! thing["millis"] >>= &mut millis;
//!
//! let config = Config::new("user1", "dev1", "secret");
//! let mut session: Session<'_, [u8; 1024], 4> = Session::new(config, thing, [0u8; 1024], &mut Rng(1));
//! let mut now = Instant::from_millis(0);
//! session.connect(now);
//!
//! let mut wire = [0u8; 256];
//! let n = session.poll_transmit(&mut wire).unwrap();
//! assert_eq!(wire[0], 0x03); // CONNECT
//! # let id = thinger_core::iotmp::parse_frame(&wire[..n], 256).unwrap().unwrap().0.message().unwrap().stream_id;
//! # let ok = [0x01, 0x04, 0x08, (id as u8) | 0x80, (id >> 7) as u8 | 0x80, (id >> 14) as u8];
//! # let ok_len = thinger_core::varint::encode_u64(u64::from(id), &mut [0u8; 4]).unwrap();
//! # let mut frame = [0u8; 8]; frame[0] = 1; frame[1] = 1 + ok_len as u8; frame[2] = 0x08;
//! # thinger_core::varint::encode_u64(u64::from(id), &mut frame[3..]).unwrap();
//! # let _ = ok;
//! // ... the server answers OK to the CONNECT ...
//! # session.handle_input(now, &frame[..3 + ok_len]);
//! assert_eq!(session.poll_event(), Some(Event::Connected));
//!
//! // The server runs "millis" on stream 13.
//! session.handle_input(now, &[0x06, 0x0a, 0x08, 0x0d, 0x22, 0x86, b'm', b'i', b'l', b'l', b'i', b's']);
//! let n = session.poll_transmit(&mut wire).unwrap();
//! assert_eq!(&wire[..n], &[0x01, 0x05, 0x08, 0x0d, 0x18, 0xe1, 0x1d]); // OK F3=3809 as a varint
//! now = session.poll_timeout().unwrap(); // the next keep-alive
//! assert_eq!(now.as_millis(), 60_000);
//! ```

#[cfg(feature = "channels")]
mod channel;
mod cloud;
mod config;
mod event;
mod ids;
mod io;
mod oversized;
mod requests;
mod serve;
mod tables;
mod timers;

use tables::{keep_where, take_at};

pub use cloud::{CloudCall, Subscription};
pub use config::{Config, DEFAULT_KEEP_ALIVE};
pub use event::{
    AuthFailure, BufferTooSmall, CallError, DisconnectReason, Dropped, Error, Event, RequestId, SubscriptionId,
    error_message,
};

#[cfg(feature = "patterns")]
use heapless::String;
use heapless::{Deque, Vec};
use rand_core::{CryptoRng, RngCore};

use crate::iotmp::{self, MessageType, OutField, OutgoingMessage, RawFrame, parse_header};
use crate::log::{debug, trace, warn};
use crate::pson::{self, PsonRef};
use crate::resource::{HandlerError, ResourceKind, Thing};
use crate::time::{Instant, Tick};
#[cfg(feature = "cloud")]
use cloud::LockRequest;
use cloud::SUBSCRIBE_CODE;
use ids::IdGenerator;

/// Longest resource path a stream can be opened on (with the feature `patterns`, which
/// keeps each stream's path; without it any path of the table can be streamed).
pub const MAX_STREAM_PATH: usize = 64;
/// Events that can wait to be polled, by default (the `E` parameter of [`Session`]); input
/// is not processed while the queue is nearly full.
pub const EVENT_QUEUE: usize = 16;
/// Event slots kept free for what timers report (timeouts, disconnects); a queue must be
/// deeper than this (checked when a session is made).
pub const EVENT_RESERVE: usize = 4;
/// Cloud calls are compiled in (feature `cloud`): replies and call timeouts are handled.
const CLOUD: bool = cfg!(feature = "cloud");
/// Subscriptions are compiled in (feature `subscriptions`).
const SUBSCRIPTIONS: bool = cfg!(feature = "subscriptions");
/// Handlers may defer their answer (feature `deferred`).
const DEFERRED: bool = cfg!(feature = "deferred");
/// Something can wait in the pending table: a cloud call, a subscription's opening or a
/// deferred request. Without any of them every loop over the (then always empty) table is
/// compiled out: the optimizer cannot see that a table in a static stays empty.
const PENDING: bool = CLOUD || SUBSCRIPTIONS || DEFERRED;

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Phase {
    /// Not started: call [`Session::connect`].
    Idle,
    /// CONNECT sent, waiting for OK.
    Connecting,
    /// Authenticated.
    Connected,
    /// Ended: close the transport (after draining `poll_transmit`), then `connect` again.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingState {
    Waiting,
    TimedOut,
    Disconnected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingKind {
    /// A cloud call; `silent` ones report nothing (confirm = false).
    #[cfg_attr(not(feature = "cloud"), allow(dead_code))]
    Call { silent: bool },
    /// Opening subscription `n`.
    #[cfg_attr(not(feature = "subscriptions"), allow(dead_code))]
    Subscribe(u8),
    /// A server request a handler deferred.
    Deferred { resource: usize, kind: ResourceKind, report_state: bool },
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u16,
    kind: PendingKind,
    deadline: Tick,
    state: PendingState,
    /// Waits until the connection ends (a lock with no server timeout): the deadline is
    /// moved on when reached instead of timing the request out.
    forever: bool,
}

#[derive(Debug, Clone)]
struct OpenStream {
    id: u16,
    resource: usize,
    /// The path the server opened (a length byte: 64 fits). Kept only with `patterns`:
    /// without placeholders a resource has one path, its table entry's, and the index
    /// says it (65 B of RAM less per stream slot).
    #[cfg(feature = "patterns")]
    path: String<MAX_STREAM_PATH, u8>,
    /// Sampling interval in ms; zero for streams sampled only by `Session::stream` and
    /// echoes.
    interval: u32,
    next: Tick,
}

impl OpenStream {
    /// Whether the server opened this stream on `path` (which names resource `index`).
    fn serves(&self, index: usize, path: &str) -> bool {
        #[cfg(feature = "patterns")]
        {
            let _ = index;
            self.path.as_str() == path
        }
        #[cfg(not(feature = "patterns"))]
        {
            let _ = path;
            self.resource == index
        }
    }
}

#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "subscriptions"), allow(dead_code))]
struct SubEntry<'a> {
    def: Subscription<'a>,
    /// Stream id of the current connection's subscription, 0 when not open.
    id: u16,
    open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    None,
    /// This many bytes at the front of the event buffer (a `u32`: a payload is part of one
    /// frame body, whose size is a 32-bit varint; with it a record is 32 B on 64-bit targets
    /// too, not 40).
    Inbox(u32),
    TooLarge,
}

/// The [`AuthFailure`]s the session itself decides (kept small: records are queued).
#[derive(Debug, Clone, Copy)]
enum NoAnswer {
    Closed,
    Timeout,
    UnexpectedFrame,
}

/// A queued event; [`Session::poll_event`] turns it into its [`Event`].
///
/// Code size only: each kind that becomes the `Event` of the same name has that variant's
/// discriminant (`Event`'s declaration order) and its fields in the same order, so the
/// conversion of the kinds without a payload is one copy, not a jump table of moves (−56 /
/// −132 / −132 B on thumbv7em / thumbv6m / riscv32imc "z", docs/footprint-rounds-3.md).
/// Of the two kinds that become `CallCompleted`, `CallFailed` has its value and `Reply` one
/// after the last (−8 B on the cloud probe against the other way round). The values are not
/// relied on: the conversion matches by name.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum Record {
    Connected = 0,
    AuthRefused {
        code: Option<u64>,
        payload: Payload,
    } = 1,
    AuthFailed(NoAnswer) = 14,
    Disconnected(DisconnectReason) = 2,
    #[cfg(feature = "cloud")]
    Reply {
        id: u16,
        ok: bool,
        code: Option<u64>,
        payload: Payload,
    } = 15,
    /// A call that got no reply: it timed out (`true`) or the connection ended.
    #[cfg(feature = "cloud")]
    CallFailed {
        id: u16,
        timeout: bool,
    } = 3,
    /// A subscription that got no reply, like `CallFailed`.
    #[cfg(feature = "subscriptions")]
    SubscriptionError {
        sub: u8,
        timeout: bool,
    } = 16,
    #[cfg(feature = "subscriptions")]
    Subscribed {
        sub: u8,
        payload: Payload,
    } = 4,
    #[cfg(feature = "subscriptions")]
    SubscriptionFailed {
        sub: u8,
        code: Option<u64>,
        payload: Payload,
    } = 5,
    #[cfg(feature = "subscriptions")]
    SubscriptionData {
        sub: u8,
        payload: Payload,
    } = 6,
    Deferred {
        stream_id: u16,
        resource: usize,
    } = 7,
    StreamStarted {
        stream_id: u16,
        resource: usize,
    } = 8,
    StreamStopped {
        stream_id: u16,
    } = 9,
    #[cfg(feature = "channels")]
    ChannelOpened {
        stream_id: u16,
        resource: usize,
        /// The params (`params_len` bytes), then the path.
        payload: Payload,
        params_len: u16,
    } = 10,
    #[cfg(feature = "channels")]
    ChannelData {
        stream_id: u16,
        payload: Payload,
    } = 11,
    #[cfg(feature = "channels")]
    ChannelClosed {
        stream_id: u16,
    } = 12,
    Dropped(Dropped) = 13,
}

/// A FIFO of bytes inside one region of the session buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Fifo {
    start: usize,
    end: usize,
}

impl Fifo {
    fn len(&self) -> usize {
        self.end - self.start
    }
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
    fn clear(&mut self) {
        *self = Fifo::default();
    }
    /// Moves the content to the front of `region` and returns the free tail.
    fn compact<'r>(&mut self, region: &'r mut [u8]) -> &'r mut [u8] {
        if self.start > 0 {
            pson::copy_down(region, self.start, self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        region.get_mut(self.end..).unwrap_or(&mut [])
    }
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.clear();
        }
    }
}

/// The session's state, apart from its buffer (so that frames borrowed from the receive
/// region can be processed while the transmit region is written).
struct State<'a, const R: usize, const S: usize, const P: usize, const E: usize> {
    config: Config<'a>,
    thing: Thing<'a, R>,
    phase: Phase,
    connect_id: u16,
    /// The adapter's time at the last call (the high bits for `poll_timeout`); the session
    /// keeps its own times as 32-bit ticks of it (`time::Tick`).
    now: Instant,
    last_rx: Tick,
    last_tx: Tick,
    /// When the last KEEP_ALIVE went out: one per interval, even while no answer comes.
    last_keep_alive: Tick,
    /// The keep-alive interval and 1.15 × it (the watchdog), as tick spans: computed once
    /// (the configuration does not change after `Session::new`).
    keep_alive: u32,
    watchdog: u32,
    ids: IdGenerator,
    #[cfg(any(feature = "cloud", feature = "subscriptions", feature = "deferred"))]
    pending: Vec<Pending, P>,
    /// Without cloud calls, subscriptions and deferred answers nothing can wait for an
    /// answer: the table has no slots (`P` is then unused; 16 B of RAM per slot saved).
    #[cfg(not(any(feature = "cloud", feature = "subscriptions", feature = "deferred")))]
    pending: Vec<Pending, 0>,
    streams: Vec<OpenStream, S>,
    /// Server-opened channels (see `channel`).
    #[cfg(feature = "channels")]
    channels: channel::Channels<S>,
    subs: Vec<Option<SubEntry<'a>>, S>,
    events: Deque<Record, E>,
    tx: Fifo,
    inbox: Fifo,
    /// Inbox bytes of the event returned last, released at the next `poll_event`.
    release_on_poll: usize,
    /// Subscriptions still have to be (re)opened on this connection.
    resubscribe: bool,
}

/// A client session over one IOTMP connection, with a resource table of capacity `R`, up
/// to `S` open streams and subscriptions, `P` pending requests (cloud calls, subscriptions
/// being opened, deferred answers; without the features `cloud`, `subscriptions` and
/// `deferred` there are none and `P` is unused) and `E` events waiting to be
/// polled (more than [`EVENT_RESERVE`], checked when `Session::new` is compiled for that
/// `E`; 40 bytes each on 64-bit targets). `B` is the buffer the session works in (e.g.
/// `[u8; 2048]`, or a `Vec<u8>`), split into receive, transmit and event regions (see
/// [`Config::buffers`]).
///
/// See the [module documentation](self) for the call sequence and an example.
pub struct Session<'a, B, const R: usize, const S: usize = 8, const P: usize = 8, const E: usize = EVENT_QUEUE> {
    state: State<'a, R, S, P, E>,
    buf: B,
    rx: Fifo,
    rx_len: usize,
    tx_len: usize,
    /// Bytes of an oversized frame still to discard as they arrive: the rest of its body, a
    /// `u32` length, so a `usize` (no 64-bit arithmetic per input call on 32-bit targets).
    skip: usize,
}

/// Room left in front of a handler's output for the frame header and fields.
const OUT_OFFSET: usize = 16;

impl<'a, B, const R: usize, const S: usize, const P: usize, const E: usize> Session<'a, B, R, S, P, E>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A new session; `rng` seeds the stream-id generator (use the platform's
    /// cryptographic RNG: ids must not be predictable).
    ///
    /// On a microcontroller, build the session in its final place (e.g. a `StaticCell`'s
    /// `init_with`) with an empty `Thing::new()` and add the resources through
    /// [`Session::thing_mut`]: a table passed in is moved into place with a copy
    /// (`firmware/size-core` does this; 180 B less flash, docs/footprint.md).
    pub fn new<G: RngCore + CryptoRng>(config: Config<'a>, thing: Thing<'a, R>, buf: B, rng: &mut G) -> Self {
        const { assert!(E > EVENT_RESERVE, "the event queue must be deeper than EVENT_RESERVE") };
        let total = buf.as_ref().len();
        let rx_len = config.rx_buffer.unwrap_or(total / 8 * 3).min(total);
        let tx_len = config.tx_buffer.unwrap_or(total / 8 * 3).min(total - rx_len);
        let ka = crate::time::keep_alive_span(config.keep_alive);
        Session {
            state: State {
                config,
                thing,
                phase: Phase::Idle,
                connect_id: 0,
                now: Instant::ZERO,
                last_rx: Tick::default(),
                last_tx: Tick::default(),
                last_keep_alive: Tick::default(),
                keep_alive: ka,
                watchdog: timers::watchdog_span(ka),
                ids: IdGenerator::new(rng),
                pending: Vec::new(),
                streams: Vec::new(),
                #[cfg(feature = "channels")]
                channels: Vec::new(),
                subs: Vec::new(),
                events: Deque::new(),
                tx: Fifo::default(),
                // Code size only: adjacent constant zeros become a `memclr` call that nothing
                // else links (174 B); through `black_box` this one splits the run. With an
                // empty table built in place (a firmware's `Session::new(config, Thing::new(),
                // …)` in its static, resources added through `thing_mut`) the two empty FIFOs
                // and the table's length were such a run. (The start times went through
                // `black_box` for the same reason until this one made that unneeded: −8 B.)
                inbox: core::hint::black_box(Fifo::default()),
                release_on_poll: 0,
                resubscribe: false,
            },
            buf,
            rx: Fifo::default(),
            skip: 0,
            rx_len,
            tx_len,
        }
    }

    /// The resource table.
    pub fn thing(&self) -> &Thing<'a, R> {
        &self.state.thing
    }
    /// The resource table, to add or replace resources.
    pub fn thing_mut(&mut self) -> &mut Thing<'a, R> {
        &mut self.state.thing
    }
    /// Whether the buffer holds nothing the session still needs: no received bytes waiting
    /// to be processed, no frame waiting to be sent, no event payload waiting to be polled
    /// (the payload of the event returned last is released by the next
    /// [`Session::poll_event`], the one that returns `None` included).
    pub fn buffer_is_idle(&self) -> bool {
        self.rx.is_empty() && self.state.tx.is_empty() && self.state.inbox.is_empty()
    }

    /// The buffer the session works in (to look at, e.g. how much memory a lent buffer
    /// holds; see [`Session::idle_buffer_mut`]).
    pub fn buffer(&self) -> &B {
        &self.buf
    }

    /// The buffer, while [`Session::buffer_is_idle`]: its contents are then scratch, so a
    /// caller running many sessions may give its memory back and take some again when the
    /// session next uses it (what thinger-std does, so an idle connection holds no
    /// buffer). The length must stay the one the session was made with. `None` while the
    /// buffer holds data.
    pub fn idle_buffer_mut(&mut self) -> Option<&mut B> {
        self.buffer_is_idle().then_some(&mut self.buf)
    }

    /// The settings.
    pub fn config(&self) -> &Config<'a> {
        &self.state.config
    }
    /// Where the session is.
    pub fn phase(&self) -> Phase {
        self.state.phase
    }
    /// Whether the session is authenticated.
    pub fn is_connected(&self) -> bool {
        self.state.phase == Phase::Connected
    }
    /// Whether the transport should be closed (once `poll_transmit` returns 0).
    pub fn is_closed(&self) -> bool {
        self.state.phase == Phase::Closed
    }
    /// Largest frame accepted from the server.
    pub fn max_frame_size(&self) -> usize {
        self.state.config.max_frame_size.min(self.rx_len)
    }
}

/// Splits the session buffer into its receive, transmit and event regions.
// Inlined (a few instructions, called from most entry points): −36 B on thumbv7em "z".
#[inline(always)]
fn split_regions(buf: &mut [u8], rx_len: usize, tx_len: usize) -> (&mut [u8], &mut [u8], &mut [u8]) {
    let (rx, rest) = buf.split_at_mut(rx_len.min(buf.len()));
    let tx_len = tx_len.min(rest.len());
    let (tx, inbox) = rest.split_at_mut(tx_len);
    (rx, tx, inbox)
}

/// Whether a frame was used or must wait for room.
enum Flow {
    Consumed,
    Blocked,
}

impl<'a, const R: usize, const S: usize, const P: usize, const E: usize> State<'a, R, S, P, E> {
    #[cfg(feature = "channels")]
    fn channel_id_in_use(&self, id: u16) -> bool {
        self.channels.iter().any(|c| c.id == id)
    }

    #[cfg(not(feature = "channels"))]
    fn channel_id_in_use(&self, _id: u16) -> bool {
        false
    }

    fn id_in_use(&self, id: u16) -> bool {
        id == self.connect_id
            || (PENDING && self.pending.iter().any(|p| p.id == id))
            || self.streams.iter().any(|s| s.id == id)
            || self.channel_id_in_use(id)
            || (SUBSCRIPTIONS && self.subs.iter().flatten().any(|s| s.id == id))
    }

    /// The tick of the adapter's latest time.
    fn tick(&self) -> Tick {
        Tick::of(self.now)
    }

    fn fresh_id(&mut self) -> u16 {
        let mut ids = self.ids.clone();
        let id = ids.next_id(|id| self.id_in_use(id)).unwrap_or(1);
        self.ids = ids;
        id
    }

    /// Records an event. Input is taken only while `EVENT_RESERVE` slots are free, so the
    /// few events timers add always fit; should the queue still be full, the new record is
    /// dropped (never an older one: payloads in the event buffer follow queue order).
    #[inline(never)]
    fn push(&mut self, record: Record) {
        if self.events.push_back(record).is_err() {
            warn!("event queue full: event dropped");
        }
    }

    /// Whether a frame may be taken: replies need an empty transmit queue, events need room.
    // Inlined into the frame loop and `poll_timeout`: −12 B on thumbv7em "z".
    #[inline(always)]
    fn can_take_frame(&self) -> bool {
        self.tx.is_empty() && self.events.len() + EVENT_RESERVE <= E
    }

    /// Queues a frame; `TransmitBufferFull` when it does not fit.
    fn queue(&mut self, tx: &mut [u8], msg: &OutgoingMessage<'_>) -> Result<(), Error> {
        let capacity = tx.len();
        let free = self.tx.compact(tx);
        match msg.encode(free) {
            Ok(n) => {
                self.tx.end += n;
                self.last_tx = self.tick();
                Ok(())
            }
            Err(pson::Error::BufferFull) if msg.encoded_len() > capacity => Err(Error::TooLarge),
            Err(pson::Error::BufferFull) => Err(Error::TransmitBufferFull),
            Err(e) => Err(Error::Pson(e)),
        }
    }

    /// `ERROR F1=id F2=code F3={"error": message}`, built like every other answer by
    /// `emit_output`: the body goes to `OUT_OFFSET` of the free transmit space first.
    fn queue_handler_error(&mut self, tx: &mut [u8], id: u16, e: HandlerError) -> Result<(), Error> {
        let capacity = tx.len();
        let free = self.tx.compact(tx);
        let mut enc = pson::Encoder::new(pson::SliceSink::new(free.get_mut(OUT_OFFSET..).unwrap_or(&mut [])));
        // `{"error": …}`: map of 1, the 5-byte key, then the message.
        let body = enc.raw(&[0xc1, 0x85, b'e', b'r', b'r', b'o', b'r']).and_then(|()| enc.str(e.message));
        let len = enc.into_sink().written();
        match body {
            Ok(()) if self.emit_output(tx, MessageType::Error, id, Some(e.code), len) => Ok(()),
            Ok(()) => Err(Error::TransmitBufferFull),
            Err(_) if OUT_OFFSET + 8 + e.message.len() > capacity => Err(Error::TooLarge),
            Err(_) => Err(Error::TransmitBufferFull),
        }
    }

    /// With `Some(id)`, drops the deferred request `id` (the server reused its id); with
    /// `None`, keeps only the cloud calls that report their failure (a connection ended).
    /// One out-of-line copy of the table compaction for both.
    #[inline(never)]
    fn prune_pending(&mut self, deferred: Option<u16>) {
        if !PENDING {
            return;
        }
        keep_where(&mut self.pending, |p| match deferred {
            Some(id) => !(p.id == id && matches!(p.kind, PendingKind::Deferred { .. })),
            None => matches!(p.kind, PendingKind::Call { silent: false }),
        });
    }

    fn end_connection_state(&mut self) {
        self.streams.clear();
        #[cfg(feature = "channels")]
        self.channels.clear();
        if SUBSCRIPTIONS {
            for sub in self.subs.iter_mut().flatten() {
                sub.id = 0;
                sub.open = false;
            }
        }
        self.prune_pending(None);
        // What is left are cloud calls (none without `cloud`), failed when polled.
        for p in self.pending.iter_mut().filter(|_| CLOUD) {
            if p.state == PendingState::Waiting {
                p.state = PendingState::Disconnected;
            }
        }
        self.connect_id = 0;
    }

    fn end(&mut self, phase: Phase) {
        self.phase = phase;
        self.end_connection_state();
    }

    /// Ends the connection, queueing DISCONNECT when a transmit region is given.
    fn close(&mut self, reason: DisconnectReason, tx: Option<&mut [u8]>) {
        if let Some(tx) = tx {
            let _ = self.reply_status(tx, MessageType::Disconnect, 0);
        }
        let record = match self.phase {
            Phase::Connecting => Record::AuthFailed(match reason {
                DisconnectReason::Timeout => NoAnswer::Timeout,
                DisconnectReason::TransportClosed | DisconnectReason::ServerDisconnect(_) => NoAnswer::Closed,
                _ => NoAnswer::UnexpectedFrame,
            }),
            _ => Record::Disconnected(reason),
        };
        self.push(record);
        debug!("session closed");
        self.end(Phase::Closed);
    }

    fn protocol_error(&mut self, tx: &mut [u8], e: iotmp::FrameError) {
        self.close(DisconnectReason::Protocol(e), Some(tx));
    }
}
