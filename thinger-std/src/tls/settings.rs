//! The TLS settings themselves (a leaf: the transport and the errors build on it).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// A SHA-256 fingerprint the server's end-entity certificate must match.
///
/// Written as `cert-sha256:<hex>` (hash of the whole certificate, DER) or `spki-sha256:<hex>`
/// (hash of its SubjectPublicKeyInfo, which survives a certificate renewal with the same
/// key). `openssl x509 -in cert.pem -outform der | sha256sum` gives the first form.
///
/// ```
/// use thinger_std::tls::Pin;
/// let der = b"not really a certificate";
/// let pin = Pin::of_certificate(der);
/// assert_eq!(pin.to_string().len(), "cert-sha256:".len() + 64);
/// assert_eq!(pin.to_string().parse::<Pin>().unwrap(), pin);
/// assert!("sha256:12".parse::<Pin>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pin {
    /// SHA-256 of the certificate's DER encoding.
    Certificate([u8; 32]),
    /// SHA-256 of the certificate's DER SubjectPublicKeyInfo.
    Spki([u8; 32]),
}

impl Pin {
    /// The certificate pin of a DER certificate.
    ///
    /// ```
    /// use thinger_std::tls::Pin;
    /// assert!(matches!(Pin::of_certificate(b"der bytes"), Pin::Certificate(_)));
    /// ```
    pub fn of_certificate(der: &[u8]) -> Pin {
        Pin::Certificate(sha256(der))
    }

    /// The public-key pin of a DER certificate; `None` when it cannot be parsed.
    ///
    /// ```
    /// use thinger_std::tls::Pin;
    /// assert_eq!(Pin::spki_of_certificate(b"garbage"), None);
    /// ```
    pub fn spki_of_certificate(der: &[u8]) -> Option<Pin> {
        let cert = CertificateDer::from(der);
        let parsed = webpki::EndEntityCert::try_from(&cert).ok()?;
        let spki = parsed.subject_public_key_info();
        Some(Pin::Spki(sha256(spki.as_ref())))
    }

    /// The pins (certificate and public key) of every certificate in a PEM text, e.g. to
    /// pin a certificate file you have.
    ///
    /// ```
    /// use thinger_std::tls::Pin;
    /// assert!(Pin::from_pem("no certificates here").is_empty());
    /// ```
    pub fn from_pem(pem: &str) -> Vec<Pin> {
        let mut pins = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            pins.push(Pin::of_certificate(cert.as_ref()));
            if let Some(spki) = Pin::spki_of_certificate(cert.as_ref()) {
                pins.push(spki);
            }
        }
        pins
    }

    /// Whether `cert` matches this pin.
    ///
    /// ```
    /// use thinger_std::tls::Pin;
    /// assert!(Pin::of_certificate(b"abc").matches(b"abc"));
    /// assert!(!Pin::of_certificate(b"abc").matches(b"abd"));
    /// ```
    pub fn matches(&self, cert: &[u8]) -> bool {
        match self {
            Pin::Certificate(hash) => sha256(cert) == *hash,
            Pin::Spki(hash) => Pin::spki_of_certificate(cert) == Some(Pin::Spki(*hash)),
        }
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(digest.as_ref()) {
        *o = *b;
    }
    out
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, hash) = match self {
            Pin::Certificate(h) => ("cert-sha256:", h),
            Pin::Spki(h) => ("spki-sha256:", h),
        };
        f.write_str(prefix)?;
        for b in hash {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A pin string that is not `cert-sha256:<64 hex>` or `spki-sha256:<64 hex>`.
///
/// ```
/// assert_eq!("md5:00".parse::<thinger_std::tls::Pin>(), Err(thinger_std::tls::PinParseError));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinParseError;

impl fmt::Display for PinParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pin is cert-sha256:<64 hex digits> or spki-sha256:<64 hex digits>")
    }
}

impl std::error::Error for PinParseError {}

impl FromStr for Pin {
    type Err = PinParseError;
    fn from_str(s: &str) -> Result<Pin, PinParseError> {
        let s = s.trim();
        let (spki, hex) = if let Some(h) = s.strip_prefix("cert-sha256:") {
            (false, h)
        } else if let Some(h) = s.strip_prefix("spki-sha256:") {
            (true, h)
        } else {
            return Err(PinParseError);
        };
        let hex: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
        if hex.len() != 64 {
            return Err(PinParseError);
        }
        let mut hash = [0u8; 32];
        for (out, pair) in hash.iter_mut().zip(hex.chunks(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| PinParseError)?;
            *out = u8::from_str_radix(text, 16).map_err(|_| PinParseError)?;
        }
        Ok(if spki { Pin::Spki(hash) } else { Pin::Certificate(hash) })
    }
}

/// Which certificate authorities are trusted.
#[derive(Debug, Clone)]
enum Roots {
    /// The Mozilla root store.
    WebPki,
    /// Only these CAs (DER).
    Custom(Vec<CertificateDer<'static>>),
}

/// A TLS setting that cannot be used.
///
/// ```
/// use thinger_std::tls::{TlsConfig, TlsConfigError};
/// assert_eq!(TlsConfig::new().with_ca_pem("").unwrap_err(), TlsConfigError::NoCertificates);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfigError {
    /// The PEM text holds no certificate.
    NoCertificates,
    /// A CA certificate was refused by the root store.
    BadCertificate(String),
    /// [`TlsConfig::pin_only`] without any pin.
    PinOnlyWithoutPins,
    /// rustls refused the configuration.
    Rustls(String),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::NoCertificates => f.write_str("no certificate in the PEM text"),
            TlsConfigError::BadCertificate(e) => write!(f, "CA certificate refused: {e}"),
            TlsConfigError::PinOnlyWithoutPins => f.write_str("pin_only() needs at least one pin"),
            TlsConfigError::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// How the client checks the server's certificate. See the [module docs](crate::tls).
///
/// ```
/// use thinger_std::tls::TlsConfig;
/// // Default: Mozilla roots and host-name check.
/// assert!(TlsConfig::new().client_config().is_ok());
/// // A private CA from a PEM text.
/// assert!(TlsConfig::new().with_ca_pem("not a certificate").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct TlsConfig {
    roots: Roots,
    pins: Vec<Pin>,
    pin_only: bool,
    accept_invalid: bool,
    server_name: Option<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::new()
    }
}

impl TlsConfig {
    /// Verify against the Mozilla root store (`webpki-roots`) and the host name.
    ///
    /// ```
    /// let tls = thinger_std::tls::TlsConfig::new();
    /// assert!(tls.pins().is_empty() && !tls.accepts_invalid_certs());
    /// ```
    pub fn new() -> Self {
        TlsConfig { roots: Roots::WebPki, pins: Vec::new(), pin_only: false, accept_invalid: false, server_name: None }
    }

    /// Trust only the CA certificates in `pem` (instead of the public roots).
    ///
    /// ```
    /// let pem = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem();
    /// let tls = thinger_std::tls::TlsConfig::new().with_ca_pem(&pem).unwrap();
    /// assert!(tls.client_config().is_ok());
    /// ```
    pub fn with_ca_pem(mut self, pem: &str) -> Result<Self, TlsConfigError> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok).collect();
        if certs.is_empty() {
            return Err(TlsConfigError::NoCertificates);
        }
        let mut store = RootCertStore::empty();
        for cert in &certs {
            store.add(cert.clone()).map_err(|e| TlsConfigError::BadCertificate(e.to_string()))?;
        }
        self.roots = Roots::Custom(certs);
        Ok(self)
    }

    /// Trust only this CA certificate (DER).
    ///
    /// ```
    /// let der = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.der().to_vec();
    /// assert!(thinger_std::tls::TlsConfig::new().with_ca_der(der).is_ok());
    /// assert!(thinger_std::tls::TlsConfig::new().with_ca_der(vec![1, 2, 3]).is_err());
    /// ```
    pub fn with_ca_der(mut self, der: Vec<u8>) -> Result<Self, TlsConfigError> {
        let cert = CertificateDer::from(der);
        let mut store = RootCertStore::empty();
        store.add(cert.clone()).map_err(|e| TlsConfigError::BadCertificate(e.to_string()))?;
        self.roots = Roots::Custom(vec![cert]);
        Ok(self)
    }

    /// Also require the server's end-entity certificate to match `pin` (any of the pins
    /// given, when several: add the next certificate's pin before you rotate it).
    ///
    /// ```
    /// use thinger_std::tls::{Pin, TlsConfig};
    /// let tls = TlsConfig::new().pin(Pin::Spki([1; 32])).pin(Pin::Spki([2; 32]));
    /// assert_eq!(tls.pins().len(), 2);
    /// ```
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pins.push(pin);
        self
    }

    /// Accept a certificate on its pin alone, without a chain to a trusted CA and without
    /// the host-name check (for self-signed servers). The handshake signature is still
    /// checked against the pinned certificate's key.
    ///
    /// ```
    /// use thinger_std::tls::{Pin, TlsConfig};
    /// assert!(TlsConfig::new().pin(Pin::Spki([1; 32])).pin_only().client_config().is_ok());
    /// ```
    pub fn pin_only(mut self) -> Self {
        self.pin_only = true;
        self
    }

    /// The name to verify the certificate for and to send as SNI, when it differs from the
    /// host connected to (e.g. connecting to an IP address).
    ///
    /// ```
    /// let tls = thinger_std::tls::TlsConfig::new().server_name("iot.example.com");
    /// assert_eq!(tls.server_name_override(), Some("iot.example.com"));
    /// ```
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Turns certificate verification off**: any certificate is accepted, so anyone on
    /// the path can read and change the traffic, credentials included. Only for a test
    /// bench you control. Every connection made with it logs a warning.
    ///
    /// ```
    /// let tls = thinger_std::tls::TlsConfig::new().danger_accept_invalid_certs();
    /// assert!(tls.accepts_invalid_certs());
    /// ```
    pub fn danger_accept_invalid_certs(mut self) -> Self {
        tracing::warn!("TLS certificate verification is DISABLED (danger_accept_invalid_certs)");
        self.accept_invalid = true;
        self
    }

    /// The pins set.
    ///
    /// ```
    /// assert!(thinger_std::tls::TlsConfig::new().pins().is_empty());
    /// ```
    pub fn pins(&self) -> &[Pin] {
        &self.pins
    }

    /// Whether verification was turned off with [`TlsConfig::danger_accept_invalid_certs`].
    ///
    /// ```
    /// assert!(!thinger_std::tls::TlsConfig::new().accepts_invalid_certs());
    /// ```
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid
    }

    /// The name override set with [`TlsConfig::server_name`].
    ///
    /// ```
    /// assert_eq!(thinger_std::tls::TlsConfig::new().server_name_override(), None);
    /// ```
    pub fn server_name_override(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The rustls client configuration (ring provider, TLS 1.2 and 1.3, no client
    /// certificate).
    ///
    /// ```
    /// let config = thinger_std::tls::TlsConfig::new().client_config().unwrap();
    /// assert!(config.alpn_protocols.is_empty());
    /// ```
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if self.pin_only && self.pins.is_empty() && !self.accept_invalid {
            return Err(TlsConfigError::PinOnlyWithoutPins);
        }
        let chain = if self.pin_only || self.accept_invalid {
            None
        } else {
            let mut store = RootCertStore::empty();
            match &self.roots {
                Roots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                Roots::Custom(certs) => {
                    for cert in certs {
                        store.add(cert.clone()).map_err(|e| TlsConfigError::BadCertificate(e.to_string()))?;
                    }
                }
            }
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
            Some(verifier)
        };
        let verifier = Verifier { chain, pins: self.pins.clone(), accept_invalid: self.accept_invalid, provider };
        let config = ClientConfig::builder_with_provider(verifier.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// The error a pin mismatch is reported with inside rustls.
#[derive(Debug)]
pub(crate) struct PinMismatch;

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("server certificate does not match any pin")
    }
}

impl std::error::Error for PinMismatch {}

/// Chain and name check (unless pin-only or disabled), then the pins.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    pins: Vec<Pin>,
    accept_invalid: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept_invalid {
            tracing::warn!("accepting the server certificate WITHOUT verification (danger_accept_invalid_certs)");
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(chain) = &self.chain {
            chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        if !self.pins.is_empty() && !self.pins.iter().any(|p| p.matches(end_entity.as_ref())) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
                PinMismatch,
            )))));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        None
    }
}

/// What went wrong in a TLS handshake, as far as the client can tell.
///
/// ```
/// use thinger_std::tls::TlsFailure;
/// assert_eq!(TlsFailure::PinMismatch.to_string(), "server certificate does not match the pin");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate was refused (unknown issuer, expired, wrong name, ...).
    Certificate(String),
    /// The certificate is valid but matches none of the pins.
    PinMismatch,
    /// Any other handshake failure (protocol, alert from the server, ...).
    Handshake(String),
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::Certificate(e) => write!(f, "server certificate refused: {e}"),
            TlsFailure::PinMismatch => f.write_str("server certificate does not match the pin"),
            TlsFailure::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

/// Classifies a rustls error.
pub(crate) fn classify(error: &rustls::Error) -> TlsFailure {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) if other.0.is::<PinMismatch>() => {
            TlsFailure::PinMismatch
        }
        rustls::Error::InvalidCertificate(e) => TlsFailure::Certificate(format!("{e:?}")),
        other => TlsFailure::Handshake(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, Vec<u8>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        (cert.cert.pem(), cert.cert.der().to_vec())
    }

    #[test]
    fn pins_parse_and_print() {
        let pin = Pin::Spki([0xab; 32]);
        let text = pin.to_string();
        assert!(text.starts_with("spki-sha256:abab"));
        assert_eq!(text.parse::<Pin>().unwrap(), pin);
        // Colon-separated hex, as `openssl x509 -fingerprint` prints it.
        let colons = format!("cert-sha256:{}", vec!["0f"; 32].join(":"));
        assert_eq!(colons.parse::<Pin>().unwrap(), Pin::Certificate([0x0f; 32]));
        assert!("cert-sha256:zz".parse::<Pin>().is_err());
        assert!(format!("cert-sha256:{}", "g".repeat(64)).parse::<Pin>().is_err());
    }

    #[test]
    fn spki_pin_of_a_real_certificate() {
        let (pem, der) = self_signed();
        let spki = Pin::spki_of_certificate(&der).unwrap();
        assert!(spki.matches(&der));
        assert!(Pin::of_certificate(&der).matches(&der));
        let pins = Pin::from_pem(&pem);
        assert_eq!(pins, vec![Pin::of_certificate(&der), spki]);
        let (_, other) = self_signed();
        assert!(!spki.matches(&other));
    }

    #[test]
    fn configs_build() {
        let (pem, der) = self_signed();
        assert!(TlsConfig::new().with_ca_pem(&pem).unwrap().client_config().is_ok());
        assert!(TlsConfig::new().with_ca_der(der.clone()).unwrap().client_config().is_ok());
        assert_eq!(TlsConfig::new().pin_only().client_config().unwrap_err(), TlsConfigError::PinOnlyWithoutPins);
        assert!(TlsConfig::new().pin(Pin::of_certificate(&der)).pin_only().client_config().is_ok());
        assert!(TlsConfig::new().danger_accept_invalid_certs().client_config().is_ok());
        assert_eq!(TlsConfig::new().with_ca_pem("").unwrap_err(), TlsConfigError::NoCertificates);
    }

    #[test]
    fn pin_mismatch_is_classified() {
        let e = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch))));
        assert_eq!(classify(&e), TlsFailure::PinMismatch);
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(matches!(classify(&e), TlsFailure::Certificate(_)));
        assert!(matches!(classify(&rustls::Error::DecryptError), TlsFailure::Handshake(_)));
    }
}
