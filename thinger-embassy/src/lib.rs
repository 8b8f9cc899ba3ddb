//! # thinger-embassy
//!
//! The Thinger.io device client for [embassy](https://embassy.dev): the sans-IO session of
//! [`thinger_core`] driven over an embassy-net TCP socket (or any [`offload::Transport`]), with TLS 1.3 from embedded-tls,
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
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | yes | TLS 1.3 through embedded-tls, ECDSA chains (about 60 KB of flash); without it only plain TCP |
//! | `flash` | yes | the offline queue kept in NOR flash (`FlashStore`, on embedded-storage-async) |
//! | `tls-rsa` | no | RSA certificate chains, as the Thinger.io cloud uses (needs a global allocator) |
//! | `defmt` | no | `defmt::Format` on public types |
//!
//! # TLS on a microcontroller: what is verified
//!
//! With [`Config::new`] (TLS, the default) the handshake is TLS 1.3 with
//! `TLS_AES_128_GCM_SHA256` and ECDHE on P-256 (embedded-tls speaks no TLS 1.2), and the
//! server is authenticated:
//!
//! * the chain the server sends must lead to one of the **trust anchors** in
//!   [`Tls::ca_der`] (one or more DER CA certificates, concatenated; the Thinger.io cloud's
//!   roots are in [`tls::roots`]), every link's signature checked: ECDSA P-256/SHA-256, and
//!   with the `tls-rsa` feature RSA-2048..4096 with PKCS#1 v1.5 (chain) and PSS
//!   (handshake) over SHA-256/384/512 (needs a global allocator);
//! * every certificate above the leaf must be a CA (basicConstraints);
//! * the leaf must carry the **DNS name** [`Tls::server_name`] (SAN, or CN without SANs;
//!   `*.` wildcards as usual). IP addresses are not matched: connect to an address with
//!   [`Config::host`] and keep a DNS name here;
//! * the server must prove it holds the leaf's key (CertificateVerify);
//! * with [`Tls::pins`], one certificate of the chain (or the anchor) must carry a pinned
//!   key (SHA-256 of its SubjectPublicKeyInfo);
//! * with [`Tls::time_source`], every certificate must be within its **validity dates**
//!   whenever the source knows the time ([`tls::SyncedClock`] set from SNTP, or an RTC).
//!
//! Not checked: validity dates without a time source (a microcontroller has no trusted
//! wall-clock time at boot), **revocation** (no CRL/OCSP), key usage, name and path-length
//! constraints.
//!
//! [`offload`] runs the client over a connection a Wi-Fi or cellular module secures itself;
//! then the module's certificate check is the only one.
//!
//! [`Config::plain`] turns TLS off (port 25204): credentials travel in clear text.
//!
//! # Memory
//!
//! [`Buffers`] holds everything: the session buffer (`SESSION`, default 2048 bytes: 3/8
//! receive, 3/8 transmit, 1/4 event payloads), a 1024-byte transmit scratch buffer, two
//! 1024-byte TCP socket buffers, and the TLS record buffers (`TLS_READ` 16,640 bytes — a
//! full TLS record, which the server may send — and `TLS_WRITE` 4,096 bytes), and the
//! offline queue's ring (`QUEUE`, 1,024 bytes). With plain TCP set both TLS sizes to 0.
//! See `docs/embedded.md`, which also has the table of what this client offers next to
//! thinger-std (subscriptions, sync locks, deferred replies, the offline queue in flash).
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(test)]
extern crate std;

/// The crate's README.md, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doc {}

mod client;
mod config;
#[cfg(feature = "flash")]
mod flash;
pub mod offload;
pub mod ota;
mod queue;
mod runner;
mod shared;
mod subscription;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
pub mod tls;

use core::fmt;

use embassy_net::Stack;
use rand_core::{CryptoRng, RngCore};
use thinger_core::queue::Ring;
use thinger_core::resource::Thing;
use thinger_core::session::{AuthFailure, Session};

pub use client::Client;
#[cfg(feature = "tls")]
pub use config::Tls;
pub use config::{Config, HEALTHY_AFTER, PLAIN_PORT, TLS_PORT, backoff_delay};
#[cfg(feature = "flash")]
pub use flash::FlashStore;
pub use queue::{MAX_QUEUED, NoStore, QueueStore};
pub use runner::{Outcome, Runner};
pub use shared::{CALL_SLOTS, DEFERRED, Deferred, LinkState, MAX_REPLY, QUEUE_WINDOW, SUBSCRIPTIONS};
pub use subscription::Subscription;
pub use thinger_core::queue::Overflow;
pub use thinger_core::session::DisconnectReason;
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
/// * `QUEUE`: the offline queue's ring ([`Client::queue_bucket_write`]); each entry takes
///   its bucket or endpoint name, its PSON payload and 24 bytes.
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
    const QUEUE: usize = 1024,
> {
    session: [u8; SESSION],
    scratch: [u8; TX_SCRATCH],
    socket_rx: [u8; SOCKET_BUFFER],
    socket_tx: [u8; SOCKET_BUFFER],
    tls_read: [u8; TLS_READ],
    tls_write: [u8; TLS_WRITE],
    queue: [u8; QUEUE],
    shared: Option<Shared<'d, R>>,
}

impl<const R: usize, const SESSION: usize, const TLS_READ: usize, const TLS_WRITE: usize, const QUEUE: usize> Default
    for Buffers<'_, R, SESSION, TLS_READ, TLS_WRITE, QUEUE>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const R: usize, const SESSION: usize, const TLS_READ: usize, const TLS_WRITE: usize, const QUEUE: usize>
    Buffers<'_, R, SESSION, TLS_READ, TLS_WRITE, QUEUE>
{
    /// Bytes of the session, socket and TLS buffers (without the queue and the shared
    /// state).
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
            queue: [0; QUEUE],
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
pub fn new<
    'd,
    G,
    const R: usize,
    const SESSION: usize,
    const TLS_READ: usize,
    const TLS_WRITE: usize,
    const QUEUE: usize,
>(
    stack: Stack<'d>,
    config: Config<'d>,
    resources: Thing<'d, R>,
    buffers: &'d mut Buffers<'d, R, SESSION, TLS_READ, TLS_WRITE, QUEUE>,
    mut rng: G,
) -> (Client<'d, R>, Runner<'d, G, R>)
where
    G: RngCore + CryptoRng,
{
    let Buffers { session, scratch, socket_rx, socket_tx, tls_read, tls_write, queue, shared } = buffers;
    let default_region = SESSION / 8 * 3;
    let rx = config.session.rx_buffer.unwrap_or(default_region);
    let tx = config.session.tx_buffer.unwrap_or(default_region).min(TX_SCRATCH);
    let session_config = config.session.buffers(rx, tx);
    let core = Session::new(session_config, resources, &mut session[..], &mut rng);
    let ring = Ring::new(&mut queue[..], config.queue_capacity, config.queue_overflow);
    let shared: &'d Shared<'d, R> = shared.insert(Shared::new(core, ring));
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
        store: None,
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
        /// The server's message (`{"error": …}`), as much of it as fits.
        message: ServerMessage,
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
    /// The offline queue is full and its policy rejects new entries.
    QueueFull,
    /// The entry was dropped by the queue's overflow policy.
    Dropped,
    /// The value is larger than [`MAX_QUEUED`] bytes (queue) or the ring.
    TooLarge,
    /// All [`SUBSCRIPTIONS`] subscription slots are taken.
    TooMany,
    /// No deferred request or publish stream with that id (answered already, timed out).
    UnknownId,
}

impl Error {
    /// The server's error code, for [`Error::Server`] (as in thinger-std).
    ///
    /// ```
    /// use thinger_embassy::{Error, ServerMessage};
    /// let e = Error::Server { code: Some(404), message: ServerMessage::new(Some("no such bucket")) };
    /// assert_eq!(e.code(), Some(404));
    /// assert_eq!(e.message(), Some("no such bucket"));
    /// assert_eq!(e.to_string(), "server error 404: no such bucket");
    /// ```
    pub fn code(&self) -> Option<u64> {
        match self {
            Error::Server { code, .. } => *code,
            _ => None,
        }
    }

    /// The server's message, for [`Error::Server`] (as in thinger-std).
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Server { message, .. } => message.as_str(),
            _ => None,
        }
    }
}

/// A server's error message, kept without a heap: its first [`ServerMessage::CAPACITY`]
/// bytes (cut at a character boundary).
///
/// ```
/// use thinger_embassy::ServerMessage;
/// assert_eq!(ServerMessage::new(Some("bad credentials")).as_str(), Some("bad credentials"));
/// assert_eq!(ServerMessage::new(None).as_str(), None);
/// let long = "é".repeat(40);
/// assert_eq!(ServerMessage::new(Some(&long)).as_str().unwrap().len(), 46);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ServerMessage {
    bytes: [u8; ServerMessage::CAPACITY],
    /// Length + 1; 0 when there is no message.
    len: u8,
}

impl ServerMessage {
    /// Bytes kept of a message.
    pub const CAPACITY: usize = 47;

    /// Keeps `message` (or its start).
    pub fn new(message: Option<&str>) -> Self {
        let mut out = ServerMessage { bytes: [0; Self::CAPACITY], len: 0 };
        if let Some(m) = message {
            let mut end = m.len().min(Self::CAPACITY);
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            let src = m.as_bytes().get(..end).unwrap_or(&[]);
            if let Some(dst) = out.bytes.get_mut(..end) {
                dst.copy_from_slice(src);
            }
            out.len = end as u8 + 1;
        }
        out
    }

    /// The message, if the server sent one.
    pub fn as_str(&self) -> Option<&str> {
        let len = usize::from(self.len.checked_sub(1)?);
        core::str::from_utf8(self.bytes.get(..len)?).ok()
    }
}

impl fmt::Debug for ServerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_str(), f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ServerMessage {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str().unwrap_or(""))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotConnected => f.write_str("not connected"),
            Error::Busy => f.write_str("client called from inside a resource handler"),
            Error::Session(e) => write!(f, "{e}"),
            Error::Server { code, message } => {
                f.write_str("server error")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                match message.as_str() {
                    Some(m) => write!(f, ": {m}"),
                    None => Ok(()),
                }
            }
            Error::Timeout => f.write_str("no reply in time"),
            Error::Disconnected => f.write_str("disconnected before the reply"),
            Error::ReplyTooLarge => f.write_str("reply too large"),
            Error::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} bytes needed"),
            Error::QueueFull => f.write_str("offline queue is full"),
            Error::Dropped => f.write_str("dropped from the offline queue"),
            Error::TooLarge => f.write_str("value too large for the queue"),
            Error::TooMany => f.write_str("too many subscriptions"),
            Error::UnknownId => f.write_str("no such deferred request or stream"),
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
        /// The server's message, if it sent one.
        message: ServerMessage,
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
            AuthFailure::Refused { code, .. } => {
                AuthError::Refused { code: *code, message: ServerMessage::new(f.message()) }
            }
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
    /// An [`offload::Transport`] could not open the connection (for a TLS module this
    /// includes a failed handshake or certificate check: the module's own error says which).
    Transport,
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
                T::InvalidCertificate
                    | T::InvalidCertificateEntry
                    | T::InvalidSignature
                    | T::InvalidSignatureScheme
                    | T::DecodeError
            )
        )
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Dns => f.write_str("DNS lookup failed"),
            ConnectError::Tcp => f.write_str("TCP connect failed"),
            ConnectError::Transport => f.write_str("the transport could not open the connection"),
            ConnectError::Timeout => f.write_str("connect timed out"),
            #[cfg(feature = "tls")]
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e:?}"),
            ConnectError::Auth(AuthError::Refused { code: Some(c), message }) => {
                write!(f, "credentials refused ({c})")?;
                match message.as_str() {
                    Some(m) => write!(f, ": {m}"),
                    None => Ok(()),
                }
            }
            ConnectError::Auth(e) => write!(f, "authentication failed: {e:?}"),
            ConnectError::Closed => f.write_str("connection closed"),
            ConnectError::FrameTooLarge => f.write_str("frame larger than the transmit scratch buffer"),
        }
    }
}

impl core::error::Error for ConnectError {}
