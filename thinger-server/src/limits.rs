//! The limits that keep one client from harming the server or another device: sizes,
//! timeouts and caps, with defaults safe for a LAN.

use std::time::Duration;

/// Default largest frame the server sends to a device (32 KiB: the default buffer of the
/// thinger-std and thinger-embassy clients; the official clients' CONNECT does not say theirs).
pub const DEFAULT_DEVICE_FRAME_LIMIT: usize = 32 * 1024;

/// Sizes, timeouts and caps. [`Limits::default`] is what the binary and
/// [`ServerConfig::local`](crate::ServerConfig::local) use.
///
/// ```
/// use std::time::Duration;
/// use thinger_server::Limits;
///
/// let l = Limits { http_header_timeout: Duration::from_secs(2), ..Limits::default() };
/// assert_eq!(l.device_frame_limit, thinger_server::DEFAULT_DEVICE_FRAME_LIMIT);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame the server sends to a device. A REST request, a property value or a
    /// reply that would not fit is refused (HTTP 413, or ERROR 413 to the device) instead of
    /// sent, so a REST caller never makes a device drop its session.
    pub device_frame_limit: usize,
    /// Largest REST request body, chunked bodies included (413 beyond).
    pub max_body_size: usize,
    /// How long an HTTP client may take to send a request's headers (from the connection's
    /// start, or from the end of the previous response on a kept-alive connection).
    pub http_header_timeout: Duration,
    /// How long an HTTP client may take to send a request's body.
    pub http_body_timeout: Duration,
    /// Most HTTP connections open at once; more wait in the accept queue. (An upgraded
    /// WebSocket leaves this count: it is then an IOTMP connection, under the caps below.)
    pub max_http_connections: usize,
    /// Most IOTMP connections (any transport) that have not authenticated yet.
    pub max_unauthenticated: usize,
    /// Most IOTMP connections not yet authenticated from one IP address.
    pub max_unauthenticated_per_address: usize,
    /// Wrong credentials allowed from one address (or for one device) before the next
    /// attempts are delayed (address: refused until the delay passes; device: answered late).
    pub auth_failures_allowed: u32,
    /// Longest delay after repeated wrong credentials (the delay doubles per failure).
    pub auth_max_delay: Duration,
    /// How often failed authentications are logged, one line per address with a count.
    pub auth_log_interval: Duration,
    /// Hub events (property changes, topic messages, state changes) queued to one connection;
    /// beyond it events to that connection are dropped and counted.
    pub event_queue: usize,
    /// Most byte streams (terminal, proxy, file transfer, streamed command sessions) the
    /// server keeps open to one device connection at once; more are refused
    /// ([`DeviceError::TooManyStreams`](crate::DeviceError::TooManyStreams), HTTP 429).
    pub max_device_streams: usize,
    /// Most bytes one such stream buffers from the device for its caller. Past half of it
    /// the server stops reading from that device (TCP pushes back on it) until the caller
    /// reads; past all of it, or when the caller has not caught up within
    /// `stream_stall_timeout`, the stream is stopped
    /// ([`StreamError::Overflow`](crate::StreamError::Overflow)).
    pub stream_buffer: usize,
    /// How long one backlogged stream may hold up reading from its device.
    pub stream_stall_timeout: Duration,
    /// Most server-side proxy listeners (`POST …/proxy`) open for one device.
    pub max_proxy_listeners: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            device_frame_limit: DEFAULT_DEVICE_FRAME_LIMIT,
            max_body_size: 1024 * 1024,
            http_header_timeout: Duration::from_secs(10),
            http_body_timeout: Duration::from_secs(30),
            max_http_connections: 4096,
            max_unauthenticated: 2048,
            max_unauthenticated_per_address: 256,
            auth_failures_allowed: 5,
            auth_max_delay: Duration::from_secs(60),
            auth_log_interval: Duration::from_secs(10),
            event_queue: 1024,
            max_device_streams: 32,
            stream_buffer: 4 * 1024 * 1024,
            stream_stall_timeout: Duration::from_secs(10),
            max_proxy_listeners: 8,
        }
    }
}
