//! Errors of the client's calls, of building a client, and of connection attempts.

use std::fmt;
use std::io;

use thinger_core::pson::{self, Value};

use crate::tls::settings::{TlsConfigError, TlsFailure};

/// Why a call on a [`Client`](crate::Client) failed.
///
/// Recoverable: [`Error::Timeout`], [`Error::Disconnected`] (retry later), [`Error::QueueFull`]
/// (retry once the queue drains). The others say the call itself cannot succeed as made.
///
/// ```
/// use thinger_std::Error;
/// let e = Error::Server { code: Some(404), payload: None };
/// assert_eq!(e.to_string(), "server answered ERROR 404");
/// assert_eq!(e.code(), Some(404));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// No answer within the call's timeout (see `Client::with_timeout`). A queued write that
    /// timed out stays queued and is still delivered.
    Timeout,
    /// The server answered ERROR, with its code (an HTTP-like status such as 404) and payload.
    Server {
        /// F2 of the ERROR.
        code: Option<u64>,
        /// F3 of the ERROR, e.g. `{"error": "…"}`.
        payload: Option<Value>,
    },
    /// The connection ended before the answer: the call may or may not have taken effect.
    Disconnected,
    /// The value could not be encoded as PSON.
    Encode(pson::Error),
    /// The answer did not deserialize into the requested type.
    Decode(pson::Error),
    /// The offline queue is full and its policy rejects new entries.
    QueueFull,
    /// The entry was dropped from the offline queue by its overflow policy.
    Dropped,
    /// The value does not fit one frame of the session buffer.
    TooLarge,
    /// The answer was larger than the session's event buffer.
    PayloadTooLarge,
    /// The session's tables are full (too many subscriptions).
    TooMany,
    /// The offline queue file could not be written.
    Storage(String),
    /// The client has stopped (shut down, or every handle was dropped).
    Stopped,
}

impl Error {
    /// The server's error code, for [`Error::Server`].
    ///
    /// ```
    /// assert_eq!(thinger_std::Error::Timeout.code(), None);
    /// ```
    pub fn code(&self) -> Option<u64> {
        match self {
            Error::Server { code, .. } => *code,
            _ => None,
        }
    }

    /// The server's `{"error": message}`, for [`Error::Server`].
    ///
    /// ```
    /// use thinger_core::pson::Value;
    /// use thinger_std::Error;
    /// let payload = Value::Map(vec![("error".into(), Value::Str("not found".into()))]);
    /// let e = Error::Server { code: Some(404), payload: Some(payload) };
    /// assert_eq!(e.message(), Some("not found"));
    /// ```
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Server { payload: Some(p), .. } => p.get("error").and_then(Value::as_str).or_else(|| p.as_str()),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => f.write_str("no answer within the timeout"),
            Error::Server { code, .. } => {
                f.write_str("server answered ERROR")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                if let Some(message) = self.message() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::Disconnected => f.write_str("connection lost before the answer"),
            // The PSON error is the source (see `source()`), not repeated here.
            Error::Encode(_) => f.write_str("cannot encode the value"),
            Error::Decode(_) => f.write_str("unexpected answer"),
            Error::QueueFull => f.write_str("offline queue is full"),
            Error::Dropped => f.write_str("dropped from the offline queue"),
            Error::TooLarge => f.write_str("value does not fit a frame"),
            Error::PayloadTooLarge => f.write_str("answer does not fit the session buffer"),
            Error::TooMany => f.write_str("too many subscriptions"),
            Error::Storage(e) => write!(f, "offline queue storage: {e}"),
            Error::Stopped => f.write_str("client stopped"),
        }
    }
}

/// The cause of an encode or decode failure is the PSON error:
///
/// ```
/// use std::error::Error as _;
/// let e = thinger_std::Error::Decode(thinger_core::pson::Error::InvalidUtf8);
/// assert_eq!(e.to_string(), "unexpected answer");
/// assert!(e.source().is_some());
/// ```
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Encode(e) | Error::Decode(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a client could not be built.
///
/// ```
/// let e = thinger_std::Client::builder("", "d", "c").build().unwrap_err();
/// assert!(matches!(e, thinger_std::BuildError::Config(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// The TLS settings cannot be used.
    Tls(TlsConfigError),
    /// More than [`MAX_RESOURCES`](crate::resources::MAX_RESOURCES) resources, or a path
    /// without a handler.
    Resources(String),
    /// The offline queue file could not be opened.
    Queue(io::Error),
    /// The background thread or its runtime could not be started (`spawn`).
    Runtime(io::Error),
    /// An invalid setting.
    Config(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Causes are `source()`, not repeated here.
            BuildError::Tls(_) => f.write_str("the TLS settings cannot be used"),
            BuildError::Resources(e) => write!(f, "resources: {e}"),
            BuildError::Queue(_) => f.write_str("the offline queue file cannot be opened"),
            BuildError::Runtime(_) => f.write_str("the client's runtime cannot be started"),
            BuildError::Config(e) => write!(f, "configuration: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Tls(e) => Some(e),
            BuildError::Queue(e) | BuildError::Runtime(e) => Some(e),
            BuildError::Resources(_) | BuildError::Config(_) => None,
        }
    }
}

impl From<TlsConfigError> for BuildError {
    fn from(e: TlsConfigError) -> Self {
        BuildError::Tls(e)
    }
}

/// Why a connection attempt failed before the IOTMP session started.
///
/// ```
/// use thinger_std::ConnectError;
/// assert!(ConnectError::Timeout.to_string().contains("timed out"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name did not resolve.
    Resolve(String),
    /// The TCP connection failed (refused, unreachable, ...).
    Io {
        /// The I/O error kind.
        kind: io::ErrorKind,
        /// Its message.
        message: String,
    },
    /// Connecting (TCP, TLS and WebSocket handshakes) took longer than the connect timeout.
    Timeout,
    /// The TLS handshake failed; [`TlsFailure::Certificate`] and [`TlsFailure::PinMismatch`]
    /// mean the server was not trusted.
    Tls(TlsFailure),
    /// The WebSocket upgrade failed.
    WebSocket(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Resolve(e) => write!(f, "cannot resolve host: {e}"),
            ConnectError::Io { message, .. } => write!(f, "cannot connect: {message}"),
            ConnectError::Timeout => f.write_str("connect timed out"),
            ConnectError::Tls(e) => write!(f, "{e}"),
            ConnectError::WebSocket(e) => write!(f, "WebSocket upgrade failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    /// Whether the server's certificate was refused (not trusted, or not the pinned one).
    ///
    /// ```
    /// use thinger_std::{ConnectError, tls::TlsFailure};
    /// assert!(ConnectError::Tls(TlsFailure::PinMismatch).is_certificate_error());
    /// assert!(!ConnectError::Timeout.is_certificate_error());
    /// ```
    pub fn is_certificate_error(&self) -> bool {
        matches!(self, ConnectError::Tls(TlsFailure::Certificate(_) | TlsFailure::PinMismatch))
    }

    pub(crate) fn from_io(e: &io::Error) -> ConnectError {
        if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return ConnectError::Tls(crate::tls::settings::classify(tls));
        }
        ConnectError::Io { kind: e.kind(), message: e.to_string() }
    }
}
