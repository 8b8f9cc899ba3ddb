//! TLS plumbing: the verifying crypto provider and a cloneable socket for a split TLS
//! connection.

use core::cell::RefCell;

use embassy_net::tcp::{TcpReader, TcpWriter};
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use embedded_tls::pki::CertVerifier;
use embedded_tls::{Aes128GcmSha256, Certificate, CryptoProvider, NoClock, TlsError, TlsVerifier};
use rand_core::{CryptoRng, RngCore};

/// Largest server certificate (DER) the verifier keeps while it checks the handshake
/// signature.
pub const MAX_CERTIFICATE: usize = 4096;

/// A crypto provider that checks the server certificate against one trusted CA.
///
/// The clock is [`NoClock`]: a microcontroller has no trusted wall-clock time at boot, so
/// validity periods are not checked (see the crate documentation).
pub(crate) struct VerifyingProvider<'a, G> {
    pub(crate) rng: &'a mut G,
    pub(crate) verifier: CertVerifier<'a, Aes128GcmSha256, NoClock, MAX_CERTIFICATE>,
}

impl<'a, G: RngCore + CryptoRng> VerifyingProvider<'a, G> {
    pub(crate) fn new(rng: &'a mut G, ca_der: &'a [u8]) -> Self {
        VerifyingProvider { rng, verifier: CertVerifier::new(Certificate::X509(ca_der)) }
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
