//! The fault-injecting TCP proxy.
//!
//! Each accepted connection gets its own upstream connection and two pumps, one per
//! direction. A pump is a reader and a writer joined by a queue of timed chunks: the reader
//! applies stall, black hole, corruption and the release time (latency + jitter, never
//! earlier than the chunk before, so order is kept); the writer waits for the release time
//! and writes in split-sized or rate-paced pieces. Faults are read from a `watch` channel
//! before every chunk, so a change takes effect mid-connection; one-shot actions (reset,
//! half-close) go to the live connections over a broadcast channel.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

use crate::rng::SplitMix64;

/// A direction of the proxied byte stream.
///
/// ```
/// assert_ne!(thinger_faults::Direction::ToServer, thinger_faults::Direction::ToClient);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client (device) to server.
    ToServer,
    /// Server to client (device).
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
}

/// The faults applied to every byte in both directions, from now on.
///
/// ```
/// use std::time::Duration;
/// let f = thinger_faults::Faults::new().latency(Duration::from_millis(20)).split(1);
/// assert_eq!(f.split, Some(1));
/// assert!(!f.stall);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Added to the delivery time of every chunk.
    pub latency: Duration,
    /// A further random delay in `0..=jitter` per chunk (order is still kept).
    pub jitter: Duration,
    /// Bytes per second at most.
    pub bandwidth: Option<u64>,
    /// Writes at most this many bytes per TCP segment (1 ms apart).
    pub split: Option<usize>,
    /// Nothing is read or written; the connection stays open. Held bytes go on when cleared.
    pub stall: bool,
    /// Bytes are read and discarded; the connection stays open.
    pub black_hole: bool,
}

impl Faults {
    /// No faults.
    ///
    /// ```
    /// assert_eq!(thinger_faults::Faults::new(), thinger_faults::Faults::default());
    /// ```
    pub fn new() -> Self {
        Faults::default()
    }
    /// Sets the latency.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(thinger_faults::Faults::new().latency(Duration::from_millis(5)).latency, Duration::from_millis(5));
    /// ```
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
    /// Sets the jitter.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(thinger_faults::Faults::new().jitter(Duration::from_millis(5)).jitter, Duration::from_millis(5));
    /// ```
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }
    /// Limits the rate to `bytes_per_second` (at least 1).
    ///
    /// ```
    /// assert_eq!(thinger_faults::Faults::new().bandwidth(0).bandwidth, Some(1));
    /// ```
    pub fn bandwidth(mut self, bytes_per_second: u64) -> Self {
        self.bandwidth = Some(bytes_per_second.max(1));
        self
    }
    /// Cuts the stream into segments of at most `bytes` (at least 1).
    ///
    /// ```
    /// assert_eq!(thinger_faults::Faults::new().split(0).split, Some(1));
    /// ```
    pub fn split(mut self, bytes: usize) -> Self {
        self.split = Some(bytes.max(1));
        self
    }
    /// Stalls (or resumes) the link.
    ///
    /// ```
    /// assert!(thinger_faults::Faults::new().stall(true).stall);
    /// ```
    pub fn stall(mut self, on: bool) -> Self {
        self.stall = on;
        self
    }
    /// Drops every byte silently (or stops doing so).
    ///
    /// ```
    /// assert!(thinger_faults::Faults::new().black_hole(true).black_hole);
    /// ```
    pub fn black_hole(mut self, on: bool) -> Self {
        self.black_hole = on;
        self
    }
}

/// Counters of what the proxy did.
///
/// ```
/// let s = thinger_faults::ProxyStats::default();
/// assert_eq!(s.connections, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: u64,
    /// Bytes handed to the receiving socket, per direction (`[to server, to client]`).
    pub forwarded: [u64; 2],
    /// Bytes thrown away by the black hole, per direction.
    pub dropped: [u64; 2],
    /// Writes made, per direction (one per segment when splitting).
    pub segments: [u64; 2],
    /// Bytes corrupted.
    pub corrupted: u64,
    /// Connections reset.
    pub resets: u64,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Reset,
    HalfClose(Direction),
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    forwarded: [AtomicU64; 2],
    dropped: [AtomicU64; 2],
    segments: [AtomicU64; 2],
    corrupted: AtomicU64,
    resets: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    faults: watch::Sender<Faults>,
    actions: broadcast::Sender<Action>,
    corrupt_pending: [AtomicU32; 2],
    rng: Mutex<SplitMix64>,
    counters: Counters,
    connections: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    fn random_below(&self, n: u64) -> u64 {
        self.rng.lock().map(|mut r| r.below(n)).unwrap_or(0)
    }

    /// Flips one byte of `chunk` if a corruption is pending for `dir`.
    fn maybe_corrupt(&self, dir: Direction, chunk: &mut [u8]) {
        let pending = &self.corrupt_pending[dir.index()];
        if chunk.is_empty() || pending.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            return;
        }
        let at = self.random_below(chunk.len() as u64) as usize;
        if let Some(byte) = chunk.get_mut(at) {
            // XOR with a non-zero mask always changes the byte.
            *byte ^= 1 << self.random_below(8);
            self.counters.corrupted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Switches faults on a running [`Proxy`]; cheap to clone, usable from any task.
#[derive(Clone)]
pub struct FaultHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultHandle").field("faults", &self.current()).finish()
    }
}

impl FaultHandle {
    /// Applies `faults` to every connection, existing and new, from the next chunk on.
    pub fn set(&self, faults: Faults) {
        self.shared.faults.send_replace(faults);
    }

    /// Removes every fault (held bytes of a stall go on).
    pub fn clear(&self) {
        self.set(Faults::default());
    }

    /// The faults in force.
    pub fn current(&self) -> Faults {
        *self.shared.faults.borrow()
    }

    /// Resets every open connection: both peers get a TCP RST.
    pub fn reset(&self) {
        let _ = self.shared.actions.send(Action::Reset);
    }

    /// Sends a FIN in `direction` on every open connection and stops forwarding that way;
    /// the other direction keeps working.
    pub fn half_close(&self, direction: Direction) {
        let _ = self.shared.actions.send(Action::HalfClose(direction));
    }

    /// Flips one bit of one byte (at a random position) of the next chunk in `direction`.
    pub fn corrupt(&self, direction: Direction) {
        self.shared.corrupt_pending[direction.index()].fetch_add(1, Ordering::SeqCst);
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        let pair = |a: &[AtomicU64; 2]| [a[0].load(Ordering::Relaxed), a[1].load(Ordering::Relaxed)];
        ProxyStats {
            connections: c.connections.load(Ordering::Relaxed),
            forwarded: pair(&c.forwarded),
            dropped: pair(&c.dropped),
            segments: pair(&c.segments),
            corrupted: c.corrupted.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
        }
    }
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`. Dropping it closes its listener and
/// every connection through it.
pub struct Proxy {
    addr: SocketAddr,
    handle: FaultHandle,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("addr", &self.addr).field("upstream", &self.handle.shared.upstream).finish()
    }
}

impl Proxy {
    /// Listens on an ephemeral port of 127.0.0.1, forwarding to `upstream`, without faults.
    pub async fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        Proxy::start_seeded(upstream, 0x5eed).await
    }

    /// Like [`Proxy::start`], with the seed of the jitter and corruption positions.
    pub async fn start_seeded(upstream: SocketAddr, seed: u64) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (faults, _) = watch::channel(Faults::default());
        let (actions, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            upstream,
            faults,
            actions,
            corrupt_pending: [AtomicU32::new(0), AtomicU32::new(0)],
            rng: Mutex::new(SplitMix64::new(seed)),
            counters: Counters::default(),
            connections: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy { addr, handle: FaultHandle { shared }, accept })
    }

    /// The address devices connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The handle that switches faults.
    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        if let Ok(mut connections) = self.handle.shared.connections.lock() {
            for c in connections.drain(..) {
                c.abort();
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        // Subscribe before spawning so an action sent right after accept reaches it.
        let actions = shared.actions.subscribe();
        let task = tokio::spawn(connection(client, shared.clone(), actions));
        if let Ok(mut connections) = shared.connections.lock() {
            connections.retain(|c| !c.is_finished());
            connections.push(task.abort_handle());
        }
    }
}

/// Aborts the tasks when dropped, so aborting a connection also ends its pumps.
struct AbortOnDrop(Vec<AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// A tokio stream and a second descriptor of the same socket, for socket options and
/// shutdown while the pumps own the halves.
fn with_control(stream: TcpStream) -> io::Result<(TcpStream, std::net::TcpStream)> {
    let _ = stream.set_nodelay(true);
    let std = stream.into_std()?;
    let control = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, control))
}

async fn connection(client: TcpStream, shared: Arc<Shared>, mut actions: broadcast::Receiver<Action>) {
    let Ok(server) = TcpStream::connect(shared.upstream).await else { return };
    let (Ok((client, client_ctl)), Ok((server, server_ctl))) = (with_control(client), with_control(server)) else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut up = tokio::spawn(pump(client_read, server_write, Direction::ToServer, shared.clone()));
    let mut down = tokio::spawn(pump(server_read, client_write, Direction::ToClient, shared.clone()));
    let _guard = AbortOnDrop(vec![up.abort_handle(), down.abort_handle()]);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            _ = &mut up, if !up_done => up_done = true,
            _ = &mut down, if !down_done => down_done = true,
            action = actions.recv() => match action {
                Ok(Action::Reset) => {
                    // Zero linger turns the close into an RST; the pumps hold the other
                    // descriptors, so end them first.
                    for ctl in [&client_ctl, &server_ctl] {
                        let _ = socket2::SockRef::from(ctl).set_linger(Some(Duration::ZERO));
                    }
                    up.abort();
                    down.abort();
                    let _ = (&mut up).await;
                    let _ = (&mut down).await;
                    shared.counters.resets.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Action::HalfClose(direction)) => {
                    let (task, done, ctl) = match direction {
                        Direction::ToServer => (&mut up, &mut up_done, &server_ctl),
                        Direction::ToClient => (&mut down, &mut down_done, &client_ctl),
                    };
                    task.abort();
                    let _ = task.await;
                    *done = true;
                    let _ = ctl.shutdown(std::net::Shutdown::Write);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// A write half that sends no FIN when dropped (tokio's does): a reset must reach the peer
/// as an RST alone, so FINs are only sent on purpose.
struct QuietWriteHalf(Option<OwnedWriteHalf>);

impl Drop for QuietWriteHalf {
    fn drop(&mut self) {
        if let Some(half) = self.0.take() {
            half.forget();
        }
    }
}

async fn pump(src: OwnedReadHalf, dst: OwnedWriteHalf, dir: Direction, shared: Arc<Shared>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let dst = QuietWriteHalf(Some(dst));
    tokio::join!(read_side(src, tx, dir, &shared), write_side(dst, rx, dir, &shared));
}

async fn read_side(
    mut src: OwnedReadHalf,
    tx: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    dir: Direction,
    shared: &Shared,
) {
    let mut faults = shared.faults.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_release = Instant::now();
    loop {
        // A stall stops reading: the sender's buffers fill as on a stalled link.
        if faults.wait_for(|f| !f.stall).await.is_err() {
            return;
        }
        let n = match src.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let f = *faults.borrow();
        if f.black_hole {
            shared.counters.dropped[dir.index()].fetch_add(n as u64, Ordering::Relaxed);
            continue;
        }
        let mut chunk = buf.get(..n).unwrap_or_default().to_vec();
        shared.maybe_corrupt(dir, &mut chunk);
        let jitter = shared.random_below(f.jitter.as_micros() as u64 + 1);
        let release = (Instant::now() + f.latency + Duration::from_micros(jitter)).max(last_release);
        last_release = release;
        if tx.send((release, chunk)).is_err() {
            return;
        }
    }
}

async fn write_side(
    mut quiet: QuietWriteHalf,
    mut rx: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    dir: Direction,
    shared: &Shared,
) {
    let Some(dst) = quiet.0.as_mut() else { return };
    let mut faults = shared.faults.subscribe();
    let counters = &shared.counters;
    while let Some((release, chunk)) = rx.recv().await {
        tokio::time::sleep_until(release).await;
        let mut rest = chunk.as_slice();
        while !rest.is_empty() {
            if faults.wait_for(|f| !f.stall).await.is_err() {
                return;
            }
            let f = *faults.borrow();
            let mut take = f.split.unwrap_or(usize::MAX).min(rest.len());
            // Pace in slices of 10 ms worth of bytes.
            if let Some(rate) = f.bandwidth {
                take = take.min((rate / 100).max(1) as usize);
            }
            let (piece, after) = rest.split_at(take);
            // Counted before the write, so a peer that has read the bytes sees them counted.
            counters.forwarded[dir.index()].fetch_add(take as u64, Ordering::Relaxed);
            counters.segments[dir.index()].fetch_add(1, Ordering::Relaxed);
            if dst.write_all(piece).await.is_err() {
                return;
            }
            rest = after;
            if let Some(rate) = f.bandwidth {
                tokio::time::sleep(Duration::from_secs_f64(take as f64 / rate as f64)).await;
            } else if f.split.is_some() && !rest.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    // The source ended: pass the FIN on.
    let _ = dst.shutdown().await;
}
