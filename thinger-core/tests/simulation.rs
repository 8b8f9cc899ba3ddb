//! Deterministic simulation of the sans-IO session against a simulated server over a
//! simulated network, with a seeded RNG choosing the faults:
//!
//! * loss by connection drop (what was in flight either way is cut off),
//! * reorder across reconnects (frames of a dead connection reach the server late, after
//!   the device has reconnected and resent them),
//! * duplication of whole frames towards the server (which TCP would never do),
//! * clock jumps (a suspended device: request timeouts and keep-alive watchdogs fire),
//! * arbitrary splitting of the byte stream into the device's reads.
//!
//! The device model keeps the at-least-once bookkeeping the adapters keep (an outbox of
//! write ids: sent, in flight, acknowledged, resent after a failure) behind a small trait, so
//! the core's offline queue can replace it. After the faulty phase the network heals; every
//! seed then checks: 0 lost writes, nothing stored that was never written, every duplicate
//! explained by a resend or a network duplication, first arrivals in write order, every
//! acknowledged write stored, and the device connected again and answering RUN calls.
//!
//! `THINGER_SIM_SEED=N` replays one seed; `THINGER_SIM_SEEDS=N` runs N seeds (default 256).

mod support;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use support::TestRng;
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage, parse_frame};
use thinger_core::resource::{ResourceKind, Thing, handler};
use thinger_core::session::{Config, Error, Event, RequestId, Session};
use thinger_core::time::{Duration, Instant};

/// Simulated time with faults, then the healing phase's deadline.
const FAULTY_MS: u64 = 60_000;
const HEAL_MS: u64 = 120_000;
/// Writes the device keeps in flight at most.
const WINDOW: usize = 8;
const KEEP_ALIVE_S: u64 = 10;
/// The cloud-call code of a bucket write (F4 of its RUN).
const WRITE_BUCKET: u64 = 5;

/// SplitMix64: the simulation's only source of randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// In `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The fault mix of one seed.
#[derive(Debug, Clone, Copy)]
struct Faults {
    /// Per step (1..20 ms), the connection is cut.
    drop: f64,
    /// Of a cut connection's frames towards the server, the share that still arrives late.
    late: f64,
    /// Per frame towards the server, it is delivered twice.
    duplicate: f64,
    /// Per step, the device's clock jumps 1..40 s.
    jump: f64,
    /// Largest one-way latency, ms.
    latency: u64,
}

impl Faults {
    fn of(rng: &mut Rng) -> Faults {
        Faults {
            drop: rng.range(0, 3000) as f64 / 1e6,
            late: rng.range(0, 100) as f64 / 100.0,
            duplicate: rng.range(0, 30) as f64 / 1000.0,
            jump: rng.range(0, 500) as f64 / 1e6,
            latency: rng.range(1, 60),
        }
    }
}

/// The device's at-least-once bookkeeping, as an adapter (or the core queue) keeps it.
trait Outbox {
    /// A new write, in order.
    fn push(&mut self, id: u64);
    /// The next write to send, if the window has room.
    fn next_to_send(&self) -> Option<u64>;
    /// `id` went out as request `request`.
    fn sent(&mut self, request: RequestId, id: u64);
    /// The request finished: acknowledged, or to be sent again.
    fn completed(&mut self, request: RequestId, acknowledged: bool);
    /// The connection ended: everything in flight goes again.
    fn connection_lost(&mut self);
    /// Nothing left to deliver.
    fn is_empty(&self) -> bool;
    /// Entries waiting to be sent, and in flight.
    fn pending(&self) -> (usize, usize);
    /// Whether `id` was acknowledged.
    fn was_acknowledged(&self, id: u64) -> bool;
    /// Sends made in all (first sends and resends).
    fn sends(&self) -> u64;
}

/// The model: unsent ids in order, in-flight requests, acknowledged ids.
#[derive(Default)]
struct ModelOutbox {
    unsent: BTreeSet<u64>,
    in_flight: BTreeMap<RequestId, u64>,
    acknowledged: BTreeSet<u64>,
    sends: u64,
}

impl Outbox for ModelOutbox {
    fn push(&mut self, id: u64) {
        self.unsent.insert(id);
    }
    fn next_to_send(&self) -> Option<u64> {
        if self.in_flight.len() < WINDOW { self.unsent.first().copied() } else { None }
    }
    fn sent(&mut self, request: RequestId, id: u64) {
        self.unsent.remove(&id);
        self.in_flight.insert(request, id);
        self.sends += 1;
    }
    fn completed(&mut self, request: RequestId, acknowledged: bool) {
        if let Some(id) = self.in_flight.remove(&request) {
            if acknowledged {
                self.acknowledged.insert(id);
            } else {
                self.unsent.insert(id);
            }
        }
    }
    fn connection_lost(&mut self) {
        let ids: Vec<u64> = self.in_flight.values().copied().collect();
        self.in_flight.clear();
        self.unsent.extend(ids);
    }
    fn is_empty(&self) -> bool {
        self.unsent.is_empty() && self.in_flight.is_empty()
    }
    fn pending(&self) -> (usize, usize) {
        (self.unsent.len(), self.in_flight.len())
    }
    fn was_acknowledged(&self, id: u64) -> bool {
        self.acknowledged.contains(&id)
    }
    fn sends(&self) -> u64 {
        self.sends
    }
}

/// One transport connection: frames in flight each way with their delivery times.
struct Link {
    id: u32,
    /// Device bytes not yet a whole frame.
    up_partial: Vec<u8>,
    to_server: VecDeque<(u64, Vec<u8>)>,
    to_device: VecDeque<(u64, Vec<u8>)>,
    /// Bytes delivered to the device that the session has not taken yet.
    device_rx: Vec<u8>,
    last_up: u64,
    last_down: u64,
}

impl Link {
    fn new(id: u32) -> Link {
        Link {
            id,
            up_partial: Vec::new(),
            to_server: VecDeque::new(),
            to_device: VecDeque::new(),
            device_rx: Vec::new(),
            last_up: 0,
            last_down: 0,
        }
    }
}

/// The server: authenticates, stores bucket writes (acknowledging each), answers
/// keep-alives and sometimes runs the device's resource.
#[derive(Default)]
struct SimServer {
    stored: Vec<u64>,
    authenticated: BTreeSet<u32>,
    next_run: u16,
    runs_sent: BTreeSet<(u32, u16)>,
    runs_answered: u64,
}

fn encode(msg: &OutgoingMessage<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; msg.encoded_len()];
    msg.encode(&mut buf).unwrap();
    buf
}

impl SimServer {
    /// Handles one frame from link `link`; returns the frames it answers with.
    fn handle(&mut self, link: u32, frame: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let (parsed, _) = parse_frame(frame, usize::MAX).map_err(|e| format!("bad frame: {e:?}"))?.ok_or("partial")?;
        let m = parsed.message().map_err(|e| format!("bad message: {e:?}"))?;
        Ok(match m.kind {
            MessageType::Connect => {
                self.authenticated.insert(link);
                vec![encode(&OutgoingMessage::new(MessageType::Ok, m.stream_id))]
            }
            MessageType::KeepAlive => vec![vec![0x05, 0x00]],
            MessageType::Run if self.authenticated.contains(&link) => {
                let code = m.resource.and_then(|r| r.as_pson().as_u64());
                if code != Some(WRITE_BUCKET) {
                    return Err(format!("unexpected cloud call {code:?}"));
                }
                let id = m.payload.and_then(|p| p.as_pson().as_u64()).ok_or("a write without an id")?;
                self.stored.push(id);
                vec![encode(&OutgoingMessage::new(MessageType::Ok, m.stream_id))]
            }
            MessageType::Ok => {
                // A RUN answer; a duplicated one finds nothing.
                if self.runs_sent.remove(&(link, m.stream_id)) {
                    if m.payload.and_then(|p| p.as_pson().as_u64()) != Some(42) {
                        return Err("wrong RUN answer".into());
                    }
                    self.runs_answered += 1;
                }
                Vec::new()
            }
            other => return Err(format!("unexpected {other:?} from the device")),
        })
    }

    fn run(&mut self, link: u32) -> Vec<u8> {
        self.next_run = self.next_run.wrapping_add(1).max(1);
        self.runs_sent.insert((link, self.next_run));
        encode(&OutgoingMessage::new(MessageType::Run, self.next_run).resource(OutField::Pson(&"millis")))
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Summary {
    writes: u64,
    duplicates: u64,
    resends: u64,
    network_duplicates: u64,
    late_frames: u64,
    connections: u32,
    drops: u64,
    jumps: u64,
}

/// What the session reported, owned.
enum Happened {
    Connected,
    Ended,
    Call(RequestId, bool),
    Other,
}

type SimSession<'a> = Session<'a, Vec<u8>, 16, 8, 8>;

fn events(session: &mut SimSession<'_>) -> Vec<Happened> {
    let mut out = Vec::new();
    while let Some(e) = session.poll_event() {
        out.push(match e {
            Event::Connected => Happened::Connected,
            Event::Disconnected(_) | Event::AuthFailed(_) => Happened::Ended,
            Event::CallCompleted { request, result } => Happened::Call(request, result.is_ok()),
            _ => Happened::Other,
        });
    }
    out
}

fn simulate(seed: u64) -> Result<Summary, String> {
    simulate_with(seed, ModelOutbox::default())
}

/// One seed, with `outbox` keeping the device's books.
fn simulate_with(seed: u64, mut outbox: impl Outbox) -> Result<Summary, String> {
    let mut rng = Rng(seed);
    let faults = Faults::of(&mut rng);
    let mut millis = handler(ResourceKind::Output, |call| Ok(call.output().set(&42u32)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["millis"] >>= &mut millis;
    let config = Config::new("user", "dev", "pass")
        .keep_alive(Duration::from_secs(KEEP_ALIVE_S))
        .request_timeout(Duration::from_secs(3));
    let mut session: SimSession<'_> = Session::new(config, thing, vec![0u8; 4096], &mut TestRng(seed));
    let mut server = SimServer::default();
    let mut summary = Summary::default();
    let mut link: Option<Link> = None;
    // Cut connections whose frames towards the server still arrive.
    let mut late: Vec<Link> = Vec::new();
    let mut reconnect_at = Some(0u64);
    let mut now = 0u64;
    let mut next_write_at = 0u64;
    let mut connected = false;
    let mut answered_at_heal = None;
    let mut tx = vec![0u8; 8192];
    let mut net_write_dups = 0u64;

    loop {
        let faulty = now < FAULTY_MS;
        now += rng.range(1, 20);
        if faulty && rng.chance(faults.jump) {
            now += rng.range(1_000, 40_000);
            summary.jumps += 1;
        }
        if now > FAULTY_MS + HEAL_MS {
            let (unsent, in_flight) = outbox.pending();
            return Err(format!(
                "not drained {HEAL_MS} ms after the faults: {unsent} unsent, {in_flight} in flight, connected {connected}"
            ));
        }
        let t = Instant::from_millis(now);

        // The application writes every 50 ms while the faults go on.
        while faulty && next_write_at <= now {
            outbox.push(summary.writes);
            summary.writes += 1;
            next_write_at += 50;
        }

        // Reconnect after a backoff.
        if link.is_none() && reconnect_at.is_some_and(|at| at <= now) {
            summary.connections += 1;
            let mut l = Link::new(summary.connections);
            (l.last_up, l.last_down) = (now, now);
            link = Some(l);
            reconnect_at = None;
            session.connect(t);
        }

        // A cut: the device sees the close; the frames it sent may still arrive late.
        if faulty && link.is_some() && rng.chance(faults.drop) {
            summary.drops += 1;
            session.handle_close(t);
        }

        if session.poll_timeout().is_some_and(|at| at <= t) {
            session.handle_timeout(t);
        }

        // Device → network: sends from the outbox, then everything the session transmits.
        if connected {
            while let Some(id) = outbox.next_to_send() {
                match session.write_bucket(t, "ids", &id) {
                    Ok(request) => outbox.sent(request, id),
                    Err(Error::TransmitBufferFull | Error::TooManyPending | Error::NotConnected) => break,
                    Err(e) => return Err(format!("write_bucket: {e:?}")),
                }
            }
        }
        if let Some(l) = link.as_mut() {
            loop {
                let n = session.poll_transmit(&mut tx).map_err(|e| format!("{e:?}"))?;
                if n == 0 {
                    break;
                }
                l.up_partial.extend_from_slice(&tx[..n]);
            }
            while let Ok(Some((_, used))) = parse_frame(&l.up_partial, usize::MAX) {
                let frame: Vec<u8> = l.up_partial.drain(..used).collect();
                let at = (now + rng.range(0, faults.latency)).max(l.last_up);
                l.last_up = at;
                if faulty && rng.chance(faults.duplicate) {
                    if frame.first() == Some(&(MessageType::Run as u8)) {
                        net_write_dups += 1;
                    }
                    l.to_server.push_back((at, frame.clone()));
                }
                l.to_server.push_back((at, frame));
            }
        }

        // Network → server, late frames of cut connections included.
        let current = link.as_ref().map(|l| l.id);
        for l in late.iter_mut().chain(link.iter_mut()) {
            while l.to_server.front().is_some_and(|(at, _)| *at <= now) {
                let (_, frame) = l.to_server.pop_front().unwrap();
                if current.is_some_and(|c| c > l.id) {
                    // A dead connection's frame, after the device reconnected.
                    summary.late_frames += 1;
                }
                for answer in server.handle(l.id, &frame)? {
                    let at = (now + rng.range(0, faults.latency)).max(l.last_down);
                    l.last_down = at;
                    l.to_device.push_back((at, answer));
                }
            }
        }
        late.retain(|l| !l.to_server.is_empty());
        if let Some(l) = link.as_mut()
            && connected
            && rng.chance(if faulty { 0.005 } else { 0.02 })
        {
            let at = (now + rng.range(0, faults.latency)).max(l.last_down);
            l.last_down = at;
            l.to_device.push_back((at, server.run(l.id)));
        }

        // Network → device, in reads of random size.
        if let Some(l) = link.as_mut() {
            while l.to_device.front().is_some_and(|(at, _)| *at <= now) {
                let (_, frame) = l.to_device.pop_front().unwrap();
                l.device_rx.extend(frame);
            }
            let mut spins = 0;
            while !l.device_rx.is_empty() && spins < 4 {
                let chunk = (rng.range(1, 64) as usize).min(l.device_rx.len());
                let used = session.handle_input(t, &l.device_rx[..chunk]);
                l.device_rx.drain(..used);
                // Answers go out before more input is offered, as an adapter does.
                loop {
                    let n = session.poll_transmit(&mut tx).map_err(|e| format!("{e:?}"))?;
                    if n == 0 {
                        break;
                    }
                    l.up_partial.extend_from_slice(&tx[..n]);
                }
                if used == 0 {
                    spins += 1;
                    if session.is_closed() {
                        break;
                    }
                }
            }
        }

        // What the session reported.
        for happened in events(&mut session) {
            match happened {
                Happened::Connected => connected = true,
                Happened::Ended => {
                    connected = false;
                    outbox.connection_lost();
                    if let Some(mut l) = link.take() {
                        // Of what was in flight to the server, some arrives late, some never.
                        if rng.chance(faults.late) {
                            // Held up somewhere: it arrives after the device reconnected.
                            let until = now + rng.range(100, 5_000);
                            for (at, _) in l.to_server.iter_mut() {
                                *at = (*at).max(until);
                            }
                        } else {
                            l.to_server.clear();
                        }
                        l.to_device.clear();
                        if !l.to_server.is_empty() {
                            late.push(l);
                        }
                    }
                    reconnect_at = Some(now + rng.range(50, 2_000));
                }
                Happened::Call(request, ok) => outbox.completed(request, ok),
                Happened::Other => {}
            }
        }
        if link.is_some() && session.is_closed() && !connected && reconnect_at.is_none() {
            // Closed without an event (e.g. before authentication finished): start over.
            link = None;
            outbox.connection_lost();
            reconnect_at = Some(now + rng.range(50, 2_000));
        }

        if !faulty && answered_at_heal.is_none() {
            answered_at_heal = Some(server.runs_answered);
        }
        let current = link.as_ref().map(|l| l.id);
        let runs_pending = server.runs_sent.iter().any(|(l, _)| Some(*l) == current);
        let answered_since = answered_at_heal.is_some_and(|a| server.runs_answered > a);
        if !faulty && outbox.is_empty() && connected && late.is_empty() && answered_since && !runs_pending {
            break;
        }
    }

    // The books.
    let written: BTreeSet<u64> = (0..summary.writes).collect();
    let distinct: BTreeSet<u64> = server.stored.iter().copied().collect();
    let lost: Vec<u64> = written.difference(&distinct).copied().collect();
    if !lost.is_empty() {
        return Err(format!("lost writes {lost:?}"));
    }
    if let Some(x) = distinct.difference(&written).next() {
        return Err(format!("stored id {x} was never written"));
    }
    if let Some(x) = written.iter().find(|id| outbox.was_acknowledged(**id) && !distinct.contains(id)) {
        return Err(format!("id {x} acknowledged but not stored"));
    }
    summary.duplicates = (server.stored.len() - distinct.len()) as u64;
    summary.resends = outbox.sends() - summary.writes;
    summary.network_duplicates = net_write_dups;
    if summary.duplicates > summary.resends + net_write_dups {
        return Err(format!(
            "{} duplicates, more than {} resends + {net_write_dups} network duplicates",
            summary.duplicates, summary.resends
        ));
    }
    let mut seen = BTreeSet::new();
    let firsts: Vec<u64> = server.stored.iter().copied().filter(|id| seen.insert(*id)).collect();
    if let Some(w) = firsts.windows(2).find(|w| w[0] > w[1]) {
        return Err(format!("first arrivals out of order: {} before {}", w[0], w[1]));
    }
    if !session.is_connected() {
        return Err("not connected after the faults".into());
    }
    Ok(summary)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn run_seed(seed: u64) -> Summary {
    let outcome = std::panic::catch_unwind(|| simulate(seed));
    match outcome {
        Ok(Ok(summary)) => summary,
        Ok(Err(why)) => panic!(
            "simulation seed {seed} failed: {why}\nreplay: THINGER_SIM_SEED={seed} cargo test -p thinger-core --test simulation"
        ),
        Err(_) => panic!(
            "simulation seed {seed} panicked\nreplay: THINGER_SIM_SEED={seed} cargo test -p thinger-core --test simulation"
        ),
    }
}

#[test]
fn seeded_faults_lose_nothing_and_every_duplicate_is_explained() {
    let seeds: Vec<u64> = match env_u64("THINGER_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("THINGER_SIM_SEEDS").unwrap_or(256)).collect(),
    };
    let mut total = Summary::default();
    for &seed in &seeds {
        let s = run_seed(seed);
        total.writes += s.writes;
        total.duplicates += s.duplicates;
        total.resends += s.resends;
        total.network_duplicates += s.network_duplicates;
        total.late_frames += s.late_frames;
        total.connections += s.connections;
        total.drops += s.drops;
        total.jumps += s.jumps;
    }
    println!("{} seeds: {total:?}", seeds.len());
    // The mixes must actually exercise the faults.
    if seeds.len() >= 100 {
        assert!(
            total.drops > 0 && total.jumps > 0 && total.network_duplicates > 0 && total.duplicates > 0,
            "{total:?}"
        );
    }
}

#[test]
fn a_seed_replays_identically() {
    let a = simulate(7).unwrap();
    let b = simulate(7).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
