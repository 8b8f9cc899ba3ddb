//! TLS settings: which certificates the client trusts, certificate pinning, and the explicit
//! (and loudly logged) way to turn verification off.
//!
//! By default the server certificate is checked against the Mozilla root store
//! (`webpki-roots`) and the host name. [`TlsConfig::with_ca_pem`] trusts a private CA
//! instead (e.g. the local `thinger-server`'s generated CA); [`TlsConfig::pin`] additionally
//! requires the server's end-entity certificate (or its public key) to match a SHA-256
//! fingerprint; [`TlsConfig::pin_only`] accepts a certificate on its pin alone (for
//! self-signed servers), still checking the handshake signature made with its key.
//!
//! ```
//! use thinger_std::tls::{Pin, TlsConfig};
//!
//! let pin: Pin = "spki-sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".parse().unwrap();
//! let tls = TlsConfig::new().pin(pin);
//! assert_eq!(tls.pins().len(), 1);
//! assert!(tls.client_config().is_ok());
//! ```

pub(crate) mod settings;

pub use settings::{Pin, PinParseError, TlsConfig, TlsConfigError, TlsFailure};

#[cfg(feature = "tokio")]
pub use crate::transport::fetch_server_certificate;
