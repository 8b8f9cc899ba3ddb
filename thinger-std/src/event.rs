//! What the client reports about its connection.

use std::fmt;
use std::time::Duration;

use thinger_core::session::DisconnectReason;

use crate::error::{ConnectError, Error};

/// Where the client's connection is.
///
/// ```
/// use thinger_std::Status;
/// assert_eq!(Status::Connected.to_string(), "connected");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Opening the transport or waiting for the server to accept the credentials.
    Connecting,
    /// Authenticated: resources are served, calls go out.
    Connected,
    /// Waiting before the next attempt.
    Disconnected,
    /// Stopped for good.
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Connecting => "connecting",
            Status::Connected => "connected",
            Status::Disconnected => "disconnected",
            Status::Stopped => "stopped",
        })
    }
}

/// A change in the client's connection, with its reason.
///
/// ```
/// use std::time::Duration;
/// use thinger_std::ClientEvent;
/// let e = ClientEvent::Backoff { attempt: 2, delay: Duration::from_millis(1500) };
/// assert_eq!(e.to_string(), "reconnecting in 1.5s (attempt 2)");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Connecting to `address` (host:port), attempt number `attempt` since the last success.
    Connecting {
        /// `host:port`.
        address: String,
        /// Failed attempts since the last connection that stayed healthy, from 0.
        attempt: u32,
    },
    /// The transport could not be opened.
    ConnectFailed(ConnectError),
    /// The server accepted the credentials.
    Connected,
    /// The server refused the credentials (`code` is its ERROR code, usually 2 for bad
    /// credentials). The client backs off and tries again.
    AuthFailed {
        /// F2 of the ERROR.
        code: Option<u64>,
        /// The server's message, when it sent one.
        message: Option<String>,
    },
    /// The connection ended.
    Disconnected {
        /// Why (keep-alive timeout = dead peer, transport closed, server DISCONNECT, ...).
        reason: DisconnectReason,
        /// The transport error behind it, if any.
        detail: Option<String>,
    },
    /// Waiting `delay` before attempt `attempt`.
    Backoff {
        /// The attempt that follows.
        attempt: u32,
        /// How long the client waits.
        delay: Duration,
    },
    /// The server opened a stream on a resource.
    StreamStarted {
        /// The resource path.
        resource: String,
    },
    /// The server closed a stream.
    StreamStopped {
        /// The stream's id.
        stream_id: u16,
    },
    /// A frame larger than the session buffer arrived: its body was skipped, a request among
    /// them was answered with `ERROR` 413, and the connection goes on.
    FrameSkipped {
        /// Frame size the header announced.
        size: u64,
        /// Its stream id (0 if it could not be read).
        stream_id: u16,
    },
    /// The server answered a queued write (a bucket write or an endpoint call from the
    /// offline queue) with an error, or it could not be sent at all: the entry left the
    /// queue, since sending it again would fail again. Reported whether or not a caller
    /// awaits the write ([`Client::write_bucket`](crate::Client::write_bucket) also returns
    /// the error; [`Client::queue_bucket_write`](crate::Client::queue_bucket_write) has
    /// only this event).
    QueuedWriteFailed {
        /// The bucket written, or the endpoint called.
        target: String,
        /// Whether `target` is an endpoint (else a bucket).
        endpoint: bool,
        /// Why.
        error: Error,
    },
    /// The client stopped (shutdown, or all handles dropped).
    Stopped,
}

impl fmt::Display for ClientEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientEvent::FrameSkipped { size, stream_id } => {
                write!(f, "skipped a frame of {size} bytes (stream {stream_id}): larger than the buffer")
            }
            ClientEvent::Connecting { address, attempt } => write!(f, "connecting to {address} (attempt {attempt})"),
            ClientEvent::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            ClientEvent::Connected => f.write_str("connected"),
            ClientEvent::AuthFailed { code, message } => {
                f.write_str("authentication failed")?;
                if let Some(code) = code {
                    write!(f, " (code {code})")?;
                }
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
            ClientEvent::Disconnected { reason, detail } => {
                write!(f, "disconnected: {reason}")?;
                if let Some(d) = detail {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            ClientEvent::Backoff { attempt, delay } => write!(f, "reconnecting in {delay:?} (attempt {attempt})"),
            ClientEvent::StreamStarted { resource } => write!(f, "stream started on {resource}"),
            ClientEvent::StreamStopped { stream_id } => write!(f, "stream {stream_id} stopped"),
            ClientEvent::QueuedWriteFailed { target, endpoint, error } => {
                let what = if *endpoint { "endpoint call" } else { "bucket write" };
                write!(f, "queued {what} to {target} dropped: {error}")
            }
            ClientEvent::Stopped => f.write_str("stopped"),
        }
    }
}
