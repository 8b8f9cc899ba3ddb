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
/// assert_eq!(DeviceError::TooManyStreams { limit: 32 }.status(), 429);
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
    /// The device connection already has as many open byte streams as
    /// [`Limits::max_device_streams`](crate::Limits::max_device_streams) allows.
    TooManyStreams {
        /// The limit.
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
            DeviceError::TooManyStreams { .. } => 429,
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
            DeviceError::TooManyStreams { limit } => {
                write!(f, "the device already has {limit} open streams")
            }
            DeviceError::Failed { message: Some(m), .. } => f.write_str(m),
            DeviceError::Failed { code: None, message: None } => f.write_str("resource not found"),
            DeviceError::Failed { code: Some(c), message: None } => write!(f, "device error {c}"),
        }
    }
}

impl std::error::Error for DeviceError {}

/// Why a byte stream to a device resource ([`DeviceStream`](crate::DeviceStream)) could not
/// be opened, or ended.
///
/// ```
/// use thinger_server::{DeviceError, StreamError};
/// assert_eq!(StreamError::Open(DeviceError::Offline).status(), 503);
/// assert_eq!(StreamError::Overflow { limit: 10 }.status(), 507);
/// assert_eq!(StreamError::Closed.to_string(), "the stream was closed");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream could not be opened: unknown device, offline, no answer in time, refused
    /// by the device (`Failed`, its ERROR to START_STREAM), or too many streams open.
    Open(DeviceError),
    /// The stream was closed: the device sent STOP_STREAM, or this side closed it.
    Closed,
    /// The device's connection ended.
    Disconnected,
    /// The caller did not read: more than this many bytes from the device were waiting, so
    /// the stream was stopped (a device cannot make the server buffer without bound).
    Overflow {
        /// [`Limits::stream_buffer`](crate::Limits::stream_buffer).
        limit: usize,
    },
    /// A value to send would not fit the device's frame limit as one frame.
    TooLarge {
        /// The frame's size in bytes.
        size: usize,
        /// The device's frame limit in bytes.
        limit: usize,
    },
}

impl StreamError {
    /// The HTTP status the REST routes answer with: the [`DeviceError::status`] of an
    /// opening failure, 410 closed, 503 disconnected, 507 overflow, 413 too large.
    ///
    /// ```
    /// assert_eq!(thinger_server::StreamError::Disconnected.status(), 503);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            StreamError::Open(e) => e.status(),
            StreamError::Closed => 410,
            StreamError::Disconnected => 503,
            StreamError::Overflow { .. } => 507,
            StreamError::TooLarge { .. } => 413,
        }
    }
}

impl From<DeviceError> for StreamError {
    fn from(e: DeviceError) -> Self {
        StreamError::Open(e)
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Open(e) => write!(f, "cannot open the stream: {e}"),
            StreamError::Closed => f.write_str("the stream was closed"),
            StreamError::Disconnected => f.write_str("the device disconnected"),
            StreamError::Overflow { limit } => {
                write!(f, "more than {limit} bytes from the device were not read; the stream was stopped")
            }
            StreamError::TooLarge { size, limit } => {
                write!(f, "a frame of {size} bytes does not fit the device's frame limit of {limit} bytes")
            }
        }
    }
}

impl std::error::Error for StreamError {}
