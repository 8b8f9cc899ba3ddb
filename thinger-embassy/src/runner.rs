//! The runner: connects, serves the session, reconnects.

#[cfg(feature = "tls")]
use core::cell::RefCell;
use core::future::pending;

use embassy_futures::select::{Either, select};
use embassy_net::Stack;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::{TcpReader, TcpSocket};
use embassy_time::{Duration, Instant as EmbassyInstant, Timer, with_deadline, with_timeout};
use embedded_io_async::Write;
#[cfg(feature = "tls")]
use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsConnection, TlsContext, TlsReader};
use rand_core::{CryptoRng, RngCore};
use thinger_core::session::Phase;

use crate::config::{Config, Retry};
use crate::queue::{self, NoStore, QueueStore};
use crate::shared::{LinkState, Shared};
#[cfg(feature = "tls")]
use crate::tls::{Halves, SplitSocket, VerifyingProvider};
use crate::{ConnectError, now};

/// The task that keeps the device connected, made by [`new`](crate::new). Spawn it
/// (`spawner.spawn(task(runner))` with a task that calls [`Runner::run`]); it never returns.
///
/// Each connection: wait for the network configuration, resolve the host through the
/// embassy-net stack, connect TCP, run the TLS 1.3 handshake (certificate checked against
/// the configured CA for the configured server name), authenticate, then serve the
/// session — resources, keep-alives, stream intervals and the client's calls — until it
/// ends. Then it waits with exponential backoff and jitter and starts over.
pub struct Runner<'d, G, const R: usize, S = NoStore> {
    pub(crate) stack: Stack<'d>,
    pub(crate) shared: &'d Shared<'d, R>,
    pub(crate) config: Config<'d>,
    pub(crate) socket_rx: &'d mut [u8],
    pub(crate) socket_tx: &'d mut [u8],
    pub(crate) tls_read: &'d mut [u8],
    pub(crate) tls_write: &'d mut [u8],
    pub(crate) scratch: &'d mut [u8],
    pub(crate) rng: G,
    pub(crate) store: Option<S>,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The server accepted the device, and the connection later ended (server gone,
    /// keep-alive timeout, network loss).
    Served,
    /// The attempt failed before the device was authenticated.
    Failed(ConnectError),
}

impl<'d, G: RngCore + CryptoRng, const R: usize> Runner<'d, G, R> {
    /// Keeps the offline queue in `store` too (e.g. a [`FlashStore`](crate::FlashStore)):
    /// [`Runner::run`] first puts the stored entries back into the queue, then saves every
    /// queued entry and deletes every answered one, so a reboot loses none.
    pub fn with_store<S: QueueStore>(self, store: S) -> Runner<'d, G, R, S> {
        let Runner { stack, shared, config, socket_rx, socket_tx, tls_read, tls_write, scratch, rng, store: _ } = self;
        Runner { stack, shared, config, socket_rx, socket_tx, tls_read, tls_write, scratch, rng, store: Some(store) }
    }
}

impl<'d, G: RngCore + CryptoRng, const R: usize, S: QueueStore> Runner<'d, G, R, S> {
    /// Keeps the device connected, forever (and the store, if any, in step with the
    /// offline queue).
    pub async fn run(mut self) -> ! {
        let shared = self.shared;
        match self.store.take() {
            None => self.connect_forever().await,
            Some(mut store) => {
                queue::restore(shared, &mut store).await;
                match select(self.connect_forever(), queue::persist(shared, &mut store)).await {
                    Either::First(never) | Either::Second(never) => never,
                }
            }
        }
    }

    async fn connect_forever(&mut self) -> ! {
        let mut retry = Retry::new(&self.config);
        loop {
            let started = EmbassyInstant::now();
            let served = matches!(self.run_once().await, Outcome::Served);
            let delay = retry.after(started, served, self.rng.next_u32());
            Timer::after(delay).await;
        }
    }

    /// One connection, from DNS to its end; no retry. [`Runner::run`] calls it in a loop.
    pub async fn run_once(&mut self) -> Outcome {
        let before = self.shared.with(|inner| inner.connections).unwrap_or(0);
        let result = self.connect_and_serve().await;
        let _ = self.shared.with(|inner| {
            inner.link = LinkState::Down;
            if let Err(e) = result {
                // An authentication failure was recorded from the session's event.
                if inner.last_error.is_none() || !matches!(e, ConnectError::Closed) {
                    inner.last_error = Some(e);
                }
            }
            inner.waiters.wake();
        });
        let after = self.shared.with(|inner| (inner.connections, inner.last_error)).unwrap_or((0, None));
        match (after.0 != before, after.1) {
            (true, _) => Outcome::Served,
            (false, Some(e)) => Outcome::Failed(e),
            (false, None) => Outcome::Failed(result.err().unwrap_or(ConnectError::Closed)),
        }
    }

    async fn connect_and_serve(&mut self) -> Result<(), ConnectError> {
        let Runner { stack, shared, config, socket_rx, socket_tx, tls_read, tls_write, scratch, rng, store: _ } = self;
        let shared: &Shared<'d, R> = shared;
        stack.wait_config_up().await;
        let deadline = EmbassyInstant::now() + config.connect_timeout;
        let addresses = with_deadline(deadline, stack.dns_query(config.host, DnsQueryType::A))
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(|_| ConnectError::Dns)?;
        let address = *addresses.first().ok_or(ConnectError::Dns)?;

        let mut socket = TcpSocket::new(*stack, socket_rx, socket_tx);
        with_deadline(deadline, socket.connect((address, config.port)))
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(|_| ConnectError::Tcp)?;

        #[cfg(not(feature = "tls"))]
        let result = {
            let _ = (tls_read, tls_write, rng);
            let (reader, writer) = socket.split();
            serve(shared, reader, writer, scratch).await
        };
        #[cfg(feature = "tls")]
        let result = match config.tls {
            None => {
                let (reader, writer) = socket.split();
                serve(shared, reader, writer, scratch).await
            }
            Some(tls) => {
                let (reader, writer) = socket.split();
                let halves = Halves { reader: RefCell::new(reader), writer: RefCell::new(writer) };
                let io = SplitSocket(&halves);
                let mut connection: TlsConnection<'_, SplitSocket<'_, '_>, Aes128GcmSha256> =
                    TlsConnection::new(io, tls_read, tls_write);
                let tls_config = TlsConfig::new().with_server_name(tls.server_name);
                let provider = VerifyingProvider::new(rng, tls);
                with_deadline(deadline, connection.open(TlsContext::new(&tls_config, provider)))
                    .await
                    .map_err(|_| ConnectError::Timeout)?
                    .map_err(ConnectError::Tls)?;
                let (reader, writer) = connection.split();
                serve(shared, reader, writer, scratch).await
            }
        };
        // Close gracefully when the peer still listens, then make sure the socket is gone.
        socket.close();
        let _ = with_timeout(Duration::from_secs(1), socket.flush()).await;
        socket.abort();
        result
    }
}

/// Where received bytes come from: hands buffered bytes to `f`, which returns how many it
/// took; the rest stays buffered for the next call. Returns (offered, taken).
pub(crate) trait Input {
    async fn feed(&mut self, f: impl FnOnce(&[u8]) -> usize) -> Result<(usize, usize), ConnectError>;
}

impl Input for TcpReader<'_> {
    async fn feed(&mut self, f: impl FnOnce(&[u8]) -> usize) -> Result<(usize, usize), ConnectError> {
        self.read_with(|data| {
            let taken = f(data).min(data.len());
            (taken, (data.len(), taken))
        })
        .await
        .map_err(|_| ConnectError::Closed)
    }
}

#[cfg(feature = "tls")]
impl<'a, 'h: 'a, 's: 'a> Input for TlsReader<'a, SplitSocket<'h, 's>, Aes128GcmSha256> {
    async fn feed(&mut self, f: impl FnOnce(&[u8]) -> usize) -> Result<(usize, usize), ConnectError> {
        let mut buffer = self.read_buffered().await.map_err(|_| ConnectError::Closed)?;
        let data = buffer.peek_all();
        let taken = f(data).min(data.len());
        buffer.pop(taken);
        Ok((data.len(), taken))
    }
}

/// Serves one authenticated-or-authenticating session over a connected transport, until
/// the session or the transport ends.
///
/// Reading and writing run side by side (a TLS record read cannot be interrupted without
/// losing bytes, so it is never raced against a timer): the reader feeds the session, the
/// writer sends what the session queued, routes its events and wakes it at its deadlines.
pub(crate) async fn serve<const R: usize>(
    shared: &Shared<'_, R>,
    mut input: impl Input,
    mut output: impl Write,
    scratch: &mut [u8],
) -> Result<(), ConnectError> {
    shared
        .with(|inner| {
            inner.session.connect(now());
            inner.link = LinkState::Authenticating;
        })
        .map_err(busy)?;
    shared.flush.reset();
    shared.room.reset();

    let reader = async {
        loop {
            let fed = input.feed(|data| shared.with(|inner| inner.session.handle_input(now(), data)).unwrap_or(0));
            let (offered, taken) = match fed.await {
                Ok(counts) => counts,
                Err(e) => return Err::<(), ConnectError>(e),
            };
            shared.flush.signal(());
            if taken < offered {
                // Frames wait for room in the session: let the writer drain it first.
                shared.room.wait().await;
            }
        }
    };

    let writer = async {
        loop {
            loop {
                let polled = shared
                    .with(|inner| {
                        inner.dispatch_events();
                        inner.pump_queue();
                        inner.session.poll_transmit(scratch)
                    })
                    .map_err(busy)?;
                match polled {
                    Ok(0) => break,
                    Ok(n) => {
                        let bytes = scratch.get(..n).unwrap_or(&[]);
                        output.write_all(bytes).await.map_err(|_| ConnectError::Closed)?;
                    }
                    // The session's transmit region is never larger than the scratch buffer
                    // (see `new`), so a frame always fits.
                    Err(_) => return Err(ConnectError::FrameTooLarge),
                }
            }
            output.flush().await.map_err(|_| ConnectError::Closed)?;
            let (closed, deadline) = shared
                .with(|inner| {
                    inner.dispatch_events();
                    if !inner.queue.deletes.is_empty() || inner.queue.resync {
                        shared.persist.signal(());
                    }
                    inner.waiters.wake();
                    (inner.session.phase() == Phase::Closed, inner.session.poll_timeout())
                })
                .map_err(busy)?;
            shared.room.signal(());
            if closed {
                return Ok::<(), ConnectError>(());
            }
            let timer = async {
                match deadline {
                    Some(t) => Timer::at(EmbassyInstant::from_millis(t.as_millis())).await,
                    None => pending::<()>().await,
                }
            };
            if let Either::First(()) = select(timer, shared.flush.wait()).await {
                shared.with(|inner| inner.session.handle_timeout(now())).map_err(busy)?;
            }
        }
    };

    let result = match select(reader, writer).await {
        Either::First(r) | Either::Second(r) => r,
    };
    let _ = shared.with(|inner| {
        if matches!(inner.session.phase(), Phase::Connecting | Phase::Connected) {
            inner.session.handle_close(now());
        }
        inner.dispatch_events();
        inner.link = LinkState::Down;
    });
    result
}

/// The runner is the only task that holds the shared state across its own calls, and it
/// never awaits while holding it, so it always gets it; should that ever change, the
/// connection is dropped rather than the state corrupted.
fn busy(_: crate::Error) -> ConnectError {
    ConnectError::Closed
}
