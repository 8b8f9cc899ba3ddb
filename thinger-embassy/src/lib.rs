//! # thinger-embassy
//!
//! The Thinger.io device client for [embassy](https://embassy.dev): the sans-IO session of
//! [`thinger_core`] driven over an embassy-net TCP socket, with TLS 1.3 from embedded-tls,
//! DNS through the embassy-net stack, keep-alives and stream intervals on embassy-time,
//! and reconnects with exponential backoff and jitter. `#![no_std]`, no heap: every
//! buffer is in [`Buffers`], which the firmware places in a static.
//!
//! The API is the embassy-net one: [`new`] returns a [`Client`] and a [`Runner`]; spawn a
//! task that runs the runner, and use the client (it is `Copy`) from other tasks for cloud
//! calls.
//!
//! ```no_run
//! # // Compiled on the host against embassy-net-tuntap; on a board the stack comes from
//! # // its network driver (cyw43, an Ethernet MAC, ...).
//! use embassy_executor::Spawner;
//! use static_cell::StaticCell;
//! use thinger_core::dsl::*;
//! use thinger_core::session::Config as SessionConfig;
//! use thinger_embassy::{Buffers, Client, Config, Runner, Tls};
//!
//! # #[derive(Default)] struct Rng(u64);
//! # impl rand_core::RngCore for Rng {
//! #     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
//! #     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); self.0 }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u32() as u8 } }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
//! # }
//! # impl rand_core::CryptoRng for Rng {}
//! static CA: &[u8] = include_bytes!("../tests/data/example-ca.der"); // your CA, DER
//!
//! #[embassy_executor::task]
//! async fn thinger(runner: Runner<'static, Rng, 4>) -> ! {
//!     runner.run().await
//! }
//!
//! async fn start(spawner: Spawner, stack: embassy_net::Stack<'static>) -> Client<'static, 4> {
//!     static LED: StaticCell<DigitalPin<VirtualPin>> = StaticCell::new();
//!     static BUFFERS: StaticCell<Buffers<'static, 4>> = StaticCell::new();
//!
//!     let led = LED.init(digital_pin(VirtualPin::new(false))); // your HAL's output pin
//!     let mut thing: Thing<'static, 4> = Thing::new();
//!     thing["led"] <<= led;
//!
//!     let session = SessionConfig::new("user", "device", "credential");
//!     let config = Config::new(session, "iot.example.com", Tls::new("iot.example.com", CA));
//!     let (client, runner) = thinger_embassy::new(stack, config, thing, BUFFERS.init(Buffers::new()), Rng::default());
//!     spawner.spawn(thinger(runner).unwrap());
//!     client
//! }
//! # fn main() {}
//! ```
//!
//! # TLS on a microcontroller: what is verified
//!
//! With [`Config::new`] (TLS, the default) the handshake is TLS 1.3 with
//! `TLS_AES_128_GCM_SHA256` and ECDHE on P-256, and the server is authenticated:
//!
//! * the certificate chain the server sends must lead to the **one CA certificate** given in
//!   [`Tls::ca_der`], every link's signature checked (ECDSA P-256/SHA-256; P-384 and
//!   Ed25519 need embedded-tls features, RSA needs a heap and is not supported here);
//! * the server certificate must carry the **DNS name** [`Tls::server_name`] (SAN, or CN
//!   without SANs; `*.` wildcards as usual). IP addresses are not matched: connect to an
//!   address with [`Config::host`] and keep a DNS name here;
//! * the server must prove it holds the certificate's key (CertificateVerify signature over
//!   the handshake transcript).
//!
//! Not checked: **validity dates** (no trusted wall-clock time at boot; the verifier runs
//! without a clock, so an expired or not-yet-valid certificate is accepted), **revocation**
//! (no CRL/OCSP), key usage and path-length constraints. Pin a CA that only signs your
//! servers and rotate it rather than rely on expiry.
//!
//! [`Config::plain`] turns TLS off (port 25204): credentials travel in clear text.
//!
//! # Memory
//!
//! [`Buffers`] holds everything: the session buffer (`SESSION`, default 2048 bytes: 3/8
//! receive, 3/8 transmit, 1/4 event payloads), a 1024-byte transmit scratch buffer, two
//! 1024-byte TCP socket buffers, and the TLS record buffers (`TLS_READ` 16,640 bytes — a
//! full TLS record, which the server may send — and `TLS_WRITE` 4,096 bytes). With plain
//! TCP set both TLS sizes to 0. See `docs/embedded.md`.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(test)]
extern crate std;

/// `docs/embedded.md`, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/embedded.md")]
mod embedded_doc {}

mod client;
mod config;
pub mod ota;
mod runner;
mod shared;
#[cfg(feature = "tls")]
mod tls;

use core::fmt;

use embassy_net::Stack;
use rand_core::{CryptoRng, RngCore};
use thinger_core::resource::Thing;
use thinger_core::session::{AuthFailure, Session};

pub use client::Client;
#[cfg(feature = "tls")]
pub use config::Tls;
pub use config::{Config, PLAIN_PORT, TLS_PORT, backoff_delay};
pub use runner::{Outcome, Runner};
pub use shared::{CALL_SLOTS, LinkState, MAX_REPLY};
#[cfg(feature = "tls")]
pub use tls::MAX_CERTIFICATE;

use shared::Shared;

/// Size of the buffer the runner copies outgoing frames through; the session's transmit
/// region is capped to it, so it bounds the largest frame the device sends.
pub const TX_SCRATCH: usize = 1024;
/// Size of each of the TCP socket's receive and transmit buffers.
pub const SOCKET_BUFFER: usize = 1024;

/// All the memory of one client: session, socket and TLS buffers, and the state the
/// [`Client`] and the [`Runner`] share. Put it in a `static` (`StaticCell`), and hand
/// it to [`new`].
///
/// * `R`: capacity of the resource table ([`Thing`]).
/// * `SESSION`: the session buffer (frames in, frames out, event payloads).
/// * `TLS_READ` / `TLS_WRITE`: TLS record buffers; 0 for plain TCP.
///
/// ```
/// use thinger_embassy::Buffers;
/// let buffers: Buffers<'_, 4> = Buffers::new();
/// assert_eq!(Buffers::<'_, 4>::SIZE_TLS, 2048 + 1024 + 2 * 1024 + 16_640 + 4_096);
/// # drop(buffers);
/// ```
pub struct Buffers<
    'd,
    const R: usize,
    const SESSION: usize = 2048,
    const TLS_READ: usize = 16640,
    const TLS_WRITE: usize = 4096,
> {
    session: [u8; SESSION],
    scratch: [u8; TX_SCRATCH],
    socket_rx: [u8; SOCKET_BUFFER],
    socket_tx: [u8; SOCKET_BUFFER],
    tls_read: [u8; TLS_READ],
    tls_write: [u8; TLS_WRITE],
    shared: Option<Shared<'d, R>>,
}

impl<const R: usize, const SESSION: usize, const TLS_READ: usize, const TLS_WRITE: usize> Default
    for Buffers<'_, R, SESSION, TLS_READ, TLS_WRITE>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const R: usize, const SESSION: usize, const TLS_READ: usize, const TLS_WRITE: usize>
    Buffers<'_, R, SESSION, TLS_READ, TLS_WRITE>
{
    /// Bytes of all the buffers (without the shared state).
    pub const SIZE_TLS: usize = SESSION + TX_SCRATCH + 2 * SOCKET_BUFFER + TLS_READ + TLS_WRITE;

    /// Zeroed buffers (a `const fn`, so they can be built in a static).
    pub const fn new() -> Self {
        Buffers {
            session: [0; SESSION],
            scratch: [0; TX_SCRATCH],
            socket_rx: [0; SOCKET_BUFFER],
            socket_tx: [0; SOCKET_BUFFER],
            tls_read: [0; TLS_READ],
            tls_write: [0; TLS_WRITE],
            shared: None,
        }
    }
}

/// Builds the client and its runner.
///
/// * `stack`: the embassy-net stack (its runner must be spawned too).
/// * `config`: credentials, server, TLS, backoff ([`Config`]).
/// * `resources`: the device's resource table ([`Thing`], built with the DSL).
/// * `buffers`: all the memory ([`Buffers`]), usually from a `StaticCell`.
/// * `rng`: a cryptographic RNG (the chip's TRNG): TLS key exchange, stream ids, backoff
///   jitter.
///
/// The session's transmit region is capped to [`TX_SCRATCH`] bytes.
pub fn new<'d, G, const R: usize, const SESSION: usize, const TLS_READ: usize, const TLS_WRITE: usize>(
    stack: Stack<'d>,
    config: Config<'d>,
    resources: Thing<'d, R>,
    buffers: &'d mut Buffers<'d, R, SESSION, TLS_READ, TLS_WRITE>,
    mut rng: G,
) -> (Client<'d, R>, Runner<'d, G, R>)
where
    G: RngCore + CryptoRng,
{
    let Buffers { session, scratch, socket_rx, socket_tx, tls_read, tls_write, shared } = buffers;
    let default_region = SESSION / 8 * 3;
    let rx = config.session.rx_buffer.unwrap_or(default_region);
    let tx = config.session.tx_buffer.unwrap_or(default_region).min(TX_SCRATCH);
    let session_config = config.session.buffers(rx, tx);
    let core = Session::new(session_config, resources, &mut session[..], &mut rng);
    let shared: &'d Shared<'d, R> = shared.insert(Shared::new(core));
    let client = Client { shared };
    let runner = Runner {
        stack,
        shared,
        config,
        socket_rx: &mut socket_rx[..],
        socket_tx: &mut socket_tx[..],
        tls_read: &mut tls_read[..],
        tls_write: &mut tls_write[..],
        scratch: &mut scratch[..],
        rng,
    };
    (client, runner)
}

/// The session's clock: embassy-time milliseconds since boot.
pub(crate) fn now() -> thinger_core::time::Instant {
    thinger_core::time::Instant::from_millis(embassy_time::Instant::now().as_millis())
}

/// Why a cloud call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The device is not connected (see [`Client::wait_connected`]).
    NotConnected,
    /// Called from inside a resource handler, while the runner holds the session.
    Busy,
    /// The session refused the call (e.g. the value does not fit a frame).
    Session(thinger_core::session::Error),
    /// The server answered with an error (an HTTP-like status such as 404).
    Server {
        /// The server's code, if it sent one.
        code: Option<u64>,
    },
    /// No reply within the session's request timeout.
    Timeout,
    /// The connection ended before the reply.
    Disconnected,
    /// The reply value is larger than [`MAX_REPLY`] bytes (or the session's event buffer).
    ReplyTooLarge,
    /// The caller's buffer cannot hold the reply value.
    BufferTooSmall {
        /// Bytes the reply needs.
        needed: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotConnected => f.write_str("not connected"),
            Error::Busy => f.write_str("client called from inside a resource handler"),
            Error::Session(e) => write!(f, "{e}"),
            Error::Server { code: Some(code) } => write!(f, "server error {code}"),
            Error::Server { code: None } => f.write_str("server error"),
            Error::Timeout => f.write_str("no reply in time"),
            Error::Disconnected => f.write_str("disconnected before the reply"),
            Error::ReplyTooLarge => f.write_str("reply too large"),
            Error::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} bytes needed"),
        }
    }
}

impl core::error::Error for Error {}

/// Why the server refused the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AuthError {
    /// The server answered ERROR (e.g. bad credentials), with its reason code.
    Refused {
        /// The server's code.
        code: Option<u64>,
    },
    /// The connection closed before an answer.
    Closed,
    /// No answer in time.
    Timeout,
    /// The server answered with an unexpected frame.
    UnexpectedFrame,
}

impl From<&AuthFailure<'_>> for AuthError {
    fn from(f: &AuthFailure<'_>) -> Self {
        match f {
            AuthFailure::Refused { code, .. } => AuthError::Refused { code: *code },
            AuthFailure::Closed => AuthError::Closed,
            AuthFailure::Timeout => AuthError::Timeout,
            AuthFailure::UnexpectedFrame => AuthError::UnexpectedFrame,
        }
    }
}

/// Why a connection attempt failed or a connection ended.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name could not be resolved.
    Dns,
    /// The TCP connection was refused or reset.
    Tcp,
    /// DNS, TCP connect and TLS handshake took longer than [`Config::connect_timeout`].
    Timeout,
    /// The TLS handshake failed; `InvalidCertificate` / `InvalidSignature` mean the server
    /// could not be verified against the configured CA and name.
    #[cfg(feature = "tls")]
    Tls(embedded_tls::TlsError),
    /// The server refused the credentials.
    Auth(AuthError),
    /// The transport closed or failed.
    Closed,
    /// A frame larger than [`TX_SCRATCH`] was queued (cannot happen with the transmit
    /// region capped by [`new`]).
    FrameTooLarge,
}

impl ConnectError {
    /// Whether the server's certificate was refused (wrong CA, wrong name, bad signature).
    ///
    /// ```
    /// use thinger_embassy::ConnectError;
    /// use embedded_tls::TlsError;
    /// assert!(ConnectError::Tls(TlsError::InvalidCertificate).is_certificate_error());
    /// assert!(!ConnectError::Dns.is_certificate_error());
    /// ```
    #[cfg(feature = "tls")]
    pub fn is_certificate_error(&self) -> bool {
        use embedded_tls::TlsError as T;
        matches!(
            self,
            ConnectError::Tls(
                T::InvalidCertificate | T::InvalidCertificateEntry | T::InvalidSignature | T::DecodeError
            )
        )
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Dns => f.write_str("DNS lookup failed"),
            ConnectError::Tcp => f.write_str("TCP connect failed"),
            ConnectError::Timeout => f.write_str("connect timed out"),
            #[cfg(feature = "tls")]
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e:?}"),
            ConnectError::Auth(AuthError::Refused { code: Some(c) }) => write!(f, "credentials refused ({c})"),
            ConnectError::Auth(e) => write!(f, "authentication failed: {e:?}"),
            ConnectError::Closed => f.write_str("connection closed"),
            ConnectError::FrameTooLarge => f.write_str("frame larger than the transmit scratch buffer"),
        }
    }
}

impl core::error::Error for ConnectError {}
