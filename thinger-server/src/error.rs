//! Errors of the server's library API.

use std::fmt;

/// Why the server could not start, or why an in-process call failed.
///
/// ```
/// let e = thinger_server::ServerError::Config("bad port".into());
/// assert_eq!(e.to_string(), "configuration error: bad port");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid (or a file it names is).
    Config(String),
    /// A listener could not be bound or a file could not be written.
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TLS setup failed (certificate generation, PEM files).
    Tls(String),
    /// The embedded database failed.
    Storage(String),
}

impl ServerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ServerError::Io { context: context.into(), source }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Config(m) => write!(f, "configuration error: {m}"),
            ServerError::Io { context, source } => write!(f, "{context}: {source}"),
            ServerError::Tls(m) => write!(f, "TLS error: {m}"),
            ServerError::Storage(m) => write!(f, "storage error: {m}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a request to a device (a resource run, a describe, a stream) failed.
///
/// Each maps to an HTTP status in the REST API ([`DeviceError::status`]).
///
/// ```
/// use thinger_server::DeviceError;
/// assert_eq!(DeviceError::Offline.status(), 503);
/// assert_eq!(DeviceError::Timeout.status(), 504);
/// assert_eq!(DeviceError::TooLarge { size: 40_000, limit: 32_768 }.status(), 413);
/// assert_eq!(DeviceError::Failed { code: None, message: None }.status(), 404);
/// assert_eq!(DeviceError::Failed { code: Some(418), message: None }.status(), 418);
/// assert_eq!(DeviceError::Failed { code: Some(7), message: None }.status(), 500);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DeviceError {
    /// No such device for this user.
    UnknownDevice,
    /// The device is known but not connected.
    Offline,
    /// The device did not answer in time.
    Timeout,
    /// The device answered ERROR (a bare ERROR means an unknown resource).
    Failed {
        /// The ERROR's F2 code, if any.
        code: Option<u64>,
        /// The `error` text of its F3, if any.
        message: Option<String>,
    },
    /// The request could not be sent (the connection is going away or is saturated).
    Unavailable,
    /// The request, as a frame, would not fit the device's frame limit; it was not sent.
    TooLarge {
        /// The frame's size in bytes.
        size: usize,
        /// The device's frame limit in bytes.
        limit: usize,
    },
}

impl DeviceError {
    /// The HTTP status the REST API answers with: 404 unknown device or bare ERROR, 503
    /// offline, 504 timeout, a device ERROR code in 400..=599 as is, any other code 500.
    ///
    /// ```
    /// assert_eq!(thinger_server::DeviceError::UnknownDevice.status(), 404);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            DeviceError::UnknownDevice => 404,
            DeviceError::Offline | DeviceError::Unavailable => 503,
            DeviceError::Timeout => 504,
            DeviceError::TooLarge { .. } => 413,
            DeviceError::Failed { code: None, .. } => 404,
            DeviceError::Failed { code: Some(c), .. } => {
                u16::try_from(*c).ok().filter(|c| (400..=599).contains(c)).unwrap_or(500)
            }
        }
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::UnknownDevice => f.write_str("unknown device"),
            DeviceError::Offline => f.write_str("device offline"),
            DeviceError::Timeout => f.write_str("device did not answer in time"),
            DeviceError::Unavailable => f.write_str("device connection unavailable"),
            DeviceError::TooLarge { size, limit } => {
                write!(f, "request of {size} bytes does not fit the device's frame limit of {limit} bytes")
            }
            DeviceError::Failed { message: Some(m), .. } => f.write_str(m),
            DeviceError::Failed { code: None, message: None } => f.write_str("resource not found"),
            DeviceError::Failed { code: Some(c), message: None } => write!(f, "device error {c}"),
        }
    }
}

impl std::error::Error for DeviceError {}
