//! TLS on the device: the certificate verifier (trust-anchor bundle, SPKI pins, validity
//! dates), the shipped root certificates, time sources, and the socket plumbing of a split
//! TLS connection.
//!
//! The runner uses all of this through [`crate::Tls`]; [`VerifyingProvider`] is public
//! so that embedded-tls can be run with the same checks over another transport.

use core::cell::RefCell;

use embassy_net::tcp::{TcpReader, TcpWriter};
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use embedded_tls::{Aes128GcmSha256, CryptoProvider, TlsError, TlsVerifier};
use rand_core::{CryptoRng, RngCore};

mod cert;
pub mod roots;
mod time;
mod verify;

pub use time::{FixedTime, SyncedClock, TimeSource};
pub use verify::Verifier;

use crate::Tls;

/// Largest certificate chain (DER bytes, as the server sends it) the verifier keeps while
/// it checks the handshake signature. RSA chains are larger (a Sectigo leaf, intermediate
/// and cross-signed root take about 5 KB).
#[cfg(not(feature = "tls-rsa"))]
pub const MAX_CERTIFICATE: usize = 4096;
/// Largest certificate chain (DER bytes, as the server sends it) the verifier keeps while
/// it checks the handshake signature. RSA chains are larger (a Sectigo leaf, intermediate
/// and cross-signed root take about 5 KB).
#[cfg(feature = "tls-rsa")]
pub const MAX_CERTIFICATE: usize = 6144;

/// An embedded-tls crypto provider that checks the server as [`Tls`] says, with the
/// device's RNG.
///
/// ```
/// # fn check(rng: &mut rand_core::OsRng) {
/// use embedded_tls::{TlsConfig, TlsContext};
/// use thinger_embassy::Tls;
/// use thinger_embassy::tls::{VerifyingProvider, roots};
/// let tls = Tls::new("iot.thinger.io", roots::THINGER_CLOUD);
/// let config = TlsConfig::new().with_server_name(tls.server_name);
/// let context = TlsContext::new(&config, VerifyingProvider::new(rng, tls));
/// // connection.open(context).await? on a TlsConnection over any transport
/// # drop(context);
/// # }
/// ```
pub struct VerifyingProvider<'a, G> {
    rng: &'a mut G,
    verifier: Verifier<'a>,
}

impl<'a, G: RngCore + CryptoRng> VerifyingProvider<'a, G> {
    /// A provider for one handshake.
    pub fn new(rng: &'a mut G, tls: Tls<'a>) -> Self {
        VerifyingProvider { rng, verifier: Verifier::new(tls) }
    }
}

impl<G: RngCore + CryptoRng> CryptoProvider for VerifyingProvider<'_, G> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = &'static [u8];

    fn rng(&mut self) -> impl embedded_tls::CryptoRngCore {
        &mut *self.rng
    }

    // Without this the handshake would go on unverified.
    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Self::CipherSuite>, TlsError> {
        Ok(&mut self.verifier)
    }
}

/// The two halves of a TCP socket, each usable on its own.
pub(crate) struct Halves<'s> {
    pub(crate) reader: RefCell<TcpReader<'s>>,
    pub(crate) writer: RefCell<TcpWriter<'s>>,
}

/// A `Copy` handle on [`Halves`]: reads go to the reader half, writes to the writer half, so
/// the TLS reader and writer (which each own a copy) can run at the same time. Reading
/// twice at once (or writing twice at once) is refused with an error, never a panic.
#[derive(Clone, Copy)]
pub(crate) struct SplitSocket<'h, 's>(pub(crate) &'h Halves<'s>);

/// The socket is already used by another read (or write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketError(ErrorKind);

impl core::fmt::Display for SocketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "socket error: {:?}", self.0)
    }
}

impl core::error::Error for SocketError {}

impl embedded_io_async::Error for SocketError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

impl ErrorType for SplitSocket<'_, '_> {
    type Error = SocketError;
}

impl Read for SplitSocket<'_, '_> {
    #[allow(clippy::await_holding_refcell_ref)] // only this half's user borrows it
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        let mut reader = self.0.reader.try_borrow_mut().map_err(|_| SocketError(ErrorKind::Other))?;
        reader.read(buf).await.map_err(|e| SocketError(embedded_io_async::Error::kind(&e)))
    }
}

impl Write for SplitSocket<'_, '_> {
    #[allow(clippy::await_holding_refcell_ref)] // only this half's user borrows it
    async fn write(&mut self, buf: &[u8]) -> Result<usize, SocketError> {
        let mut writer = self.0.writer.try_borrow_mut().map_err(|_| SocketError(ErrorKind::Other))?;
        writer.write(buf).await.map_err(|e| SocketError(embedded_io_async::Error::kind(&e)))
    }

    #[allow(clippy::await_holding_refcell_ref)] // only this half's user borrows it
    async fn flush(&mut self) -> Result<(), SocketError> {
        let mut writer = self.0.writer.try_borrow_mut().map_err(|_| SocketError(ErrorKind::Other))?;
        writer.flush().await.map_err(|e| SocketError(embedded_io_async::Error::kind(&e)))
    }
}
