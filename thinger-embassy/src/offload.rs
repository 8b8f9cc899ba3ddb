//! The client over a connection made by something else: an AT-command Wi-Fi or cellular
//! module (ESP-AT, u-blox, SIMCom, Quectel, the MKR1000's WINC1500, ...) that runs TCP and
//! TLS itself and hands the firmware a byte stream.
//!
//! # The certificate check is the module's job
//!
//! **With [`new`], thinger-embassy does no TLS and checks no certificate.** Whatever the
//! module does is all the security the connection has: load the server's CA (the
//! USERTrust RSA root for the Thinger.io cloud, [`tls::roots::USERTRUST_RSA`](crate::tls::roots::USERTRUST_RSA)
//! when the `tls` feature is on) into the module, turn its server verification **on**
//! (many modules ship with it off, e.g. `AT+CIPSSLCCONF` on ESP-AT, `AT+USECPRF` on
//! u-blox, `AT+QSSLCFG="seclevel"` on Quectel), and connect to the TLS port (25206). A
//! module left at its defaults may encrypt to anyone who answers. With a plain-TCP
//! transport the credentials travel in clear text.
//!
//! ```
//! use embedded_io_async::{ErrorType, Read, Write};
//! use thinger_embassy::offload::Transport;
//!
//! /// A module's socket, after `AT+CIPSTART="SSL",...` succeeded (sketch).
//! struct Module;
//! struct Rx;
//! struct Tx;
//! # impl ErrorType for Rx { type Error = core::convert::Infallible; }
//! # impl ErrorType for Tx { type Error = core::convert::Infallible; }
//! # impl Read for Rx { async fn read(&mut self, _: &mut [u8]) -> Result<usize, Self::Error> { Ok(0) } }
//! # impl Write for Tx {
//! #     async fn write(&mut self, b: &[u8]) -> Result<usize, Self::Error> { Ok(b.len()) }
//! #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! impl Transport for Module {
//!     type Error = ();
//!     type Reader<'a> = Rx;
//!     type Writer<'a> = Tx;
//!     async fn connect(&mut self, host: &str, port: u16) -> Result<(Rx, Tx), ()> {
//!         // Send the module its "open a TLS socket to host:port" command, with the
//!         // certificate check switched on, and wait for its OK.
//! #       let _ = (host, port);
//!         Ok((Rx, Tx))
//!     }
//!     async fn close(&mut self) {}
//! }
//! ```

use embassy_time::{Duration, Instant as EmbassyInstant, Timer, with_timeout};
use embedded_io_async::{Read, Write};
use rand_core::{CryptoRng, RngCore};
use thinger_core::queue::Ring;
use thinger_core::resource::Thing;
use thinger_core::session::Session;

use crate::config::{Config, Retry};
use crate::runner::{Input, Outcome, serve};
use crate::shared::{LinkState, Shared};
use crate::{Buffers, Client, ConnectError, TX_SCRATCH};

/// A connection maker that does DNS, TCP and (usually) TLS itself: an AT-command module's
/// driver. See the [module documentation](self) for what it must check.
///
/// The two halves must work at the same time (the runner reads while it writes); a
/// driver on one UART usually shares it behind a mutex and demultiplexes.
#[allow(async_fn_in_trait)] // a device-local trait: no Send bound is needed on one executor
pub trait Transport {
    /// Why opening failed.
    type Error;
    /// The half the server's bytes come from.
    type Reader<'a>: Read
    where
        Self: 'a;
    /// The half the device's bytes go to.
    type Writer<'a>: Write
    where
        Self: 'a;

    /// Opens a connection to `host:port` (the module resolves the name, connects, and runs
    /// the TLS handshake with its certificate check) and returns its two halves.
    async fn connect(&mut self, host: &str, port: u16) -> Result<(Self::Reader<'_>, Self::Writer<'_>), Self::Error>;

    /// Closes the connection (called after every connection, also a failed one).
    async fn close(&mut self);
}

/// The runner of an offloaded connection (made by [`new`]): as [`Runner`](crate::Runner),
/// with the [`Transport`] in place of embassy-net and embedded-tls.
pub struct OffloadRunner<'d, T, G, const R: usize> {
    transport: T,
    shared: &'d Shared<'d, R>,
    config: Config<'d>,
    input: &'d mut [u8],
    scratch: &'d mut [u8],
    rng: G,
}

/// Builds a client and a runner that talk over `transport`.
///
/// `config` gives the host, port, timeouts and backoff (for example
/// `Config::plain(session, "iot.thinger.io").port(TLS_PORT)`); its `tls` setting is not used
/// (the module does TLS). Of `buffers`, the session, transmit scratch and one 1024-byte
/// socket buffer are used: give it TLS sizes of 0 (`Buffers<'_, R, 2048, 0, 0>`).
/// `rng` makes stream ids and backoff jitter.
pub fn new<
    'd,
    T,
    G,
    const R: usize,
    const SESSION: usize,
    const TLS_READ: usize,
    const TLS_WRITE: usize,
    const QUEUE: usize,
>(
    transport: T,
    config: Config<'d>,
    resources: Thing<'d, R>,
    buffers: &'d mut Buffers<'d, R, SESSION, TLS_READ, TLS_WRITE, QUEUE>,
    mut rng: G,
) -> (Client<'d, R>, OffloadRunner<'d, T, G, R>)
where
    T: Transport,
    G: RngCore + CryptoRng,
{
    let Buffers { session, scratch, socket_rx, queue, shared, .. } = buffers;
    let default_region = SESSION / 8 * 3;
    let rx = config.session.rx_buffer.unwrap_or(default_region);
    let tx = config.session.tx_buffer.unwrap_or(default_region).min(TX_SCRATCH);
    let core = Session::new(config.session.buffers(rx, tx), resources, &mut session[..], &mut rng);
    let ring = Ring::new(&mut queue[..], config.queue_capacity, config.queue_overflow);
    let shared: &'d Shared<'d, R> = shared.insert(Shared::new(core, ring));
    let runner = OffloadRunner { transport, shared, config, input: &mut socket_rx[..], scratch: &mut scratch[..], rng };
    (Client { shared }, runner)
}

impl<T: Transport, G: RngCore + CryptoRng, const R: usize> OffloadRunner<'_, T, G, R> {
    /// Keeps the device connected, forever.
    pub async fn run(mut self) -> ! {
        let mut retry = Retry::new(&self.config);
        loop {
            let started = EmbassyInstant::now();
            let served = matches!(self.run_once().await, Outcome::Served);
            let delay = retry.after(started, served, self.rng.next_u32());
            Timer::after(delay).await;
        }
    }

    /// One connection, from opening to its end; no retry.
    pub async fn run_once(&mut self) -> Outcome {
        let before = self.shared.with(|inner| inner.connections).unwrap_or(0);
        let result = self.connect_and_serve().await;
        self.transport.close().await;
        let _ = self.shared.with(|inner| {
            inner.link = LinkState::Down;
            if let Err(e) = result
                && (inner.last_error.is_none() || !matches!(e, ConnectError::Closed))
            {
                inner.last_error = Some(e);
            }
            inner.waiters.wake();
        });
        let (connections, last_error) =
            self.shared.with(|inner| (inner.connections, inner.last_error)).unwrap_or((0, None));
        match (connections != before, last_error) {
            (true, _) => Outcome::Served,
            (false, Some(e)) => Outcome::Failed(e),
            (false, None) => Outcome::Failed(result.err().unwrap_or(ConnectError::Closed)),
        }
    }

    async fn connect_and_serve(&mut self) -> Result<(), ConnectError> {
        let OffloadRunner { transport, shared, config, input, scratch, .. } = self;
        let deadline = EmbassyInstant::now() + config.connect_timeout;
        let wait = deadline.saturating_duration_since(EmbassyInstant::now()).max(Duration::from_millis(1));
        let (reader, writer) = with_timeout(wait, transport.connect(config.host, config.port))
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(|_| ConnectError::Transport)?;
        let buffered = Buffered { reader, buffer: input, start: 0, end: 0 };
        serve(shared, buffered, writer, scratch).await
    }
}

/// A reader with a buffer in front, so that bytes the session cannot take yet wait.
struct Buffered<'b, R> {
    reader: R,
    buffer: &'b mut [u8],
    start: usize,
    end: usize,
}

impl<R: Read> Input for Buffered<'_, R> {
    async fn feed(&mut self, f: impl FnOnce(&[u8]) -> usize) -> Result<(usize, usize), ConnectError> {
        if self.start >= self.end {
            let n = self.reader.read(self.buffer).await.map_err(|_| ConnectError::Closed)?;
            if n == 0 {
                return Err(ConnectError::Closed);
            }
            (self.start, self.end) = (0, n.min(self.buffer.len()));
        }
        let data = self.buffer.get(self.start..self.end).unwrap_or(&[]);
        let taken = f(data).min(data.len());
        self.start += taken;
        Ok((data.len(), taken))
    }
}
