use core::fmt;

use crate::iotmp::{FrameError, MessageErrorKind};
use crate::pson::PsonRef;

/// Identifies a cloud call made by the device (its stream id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestId(pub u16);

/// Identifies a subscription registered with `Session::subscribe`; stable across reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubscriptionId(pub u8);

/// Why the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DisconnectReason {
    /// Nothing was received for 1.15 × the keep-alive interval.
    Timeout,
    /// The transport closed (reported with `Session::handle_close`).
    TransportClosed,
    /// The server sent DISCONNECT (with its F2 reason code, if any).
    ServerDisconnect(Option<u64>),
    /// The byte stream broke the framing rules; the session closed it.
    Protocol(FrameError),
    /// The server broke the protocol (e.g. a request before authentication).
    UnexpectedFrame,
    /// The application called `Session::close`.
    Local,
    /// The transport did not take our bytes in time (reported by the adapter, which owns
    /// the write timeout; the session only closes).
    WriteTimeout,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Timeout => f.write_str("keep-alive timeout"),
            DisconnectReason::TransportClosed => f.write_str("connection closed"),
            DisconnectReason::ServerDisconnect(Some(code)) => write!(f, "server disconnected (reason {code})"),
            DisconnectReason::ServerDisconnect(None) => f.write_str("server disconnected"),
            DisconnectReason::Protocol(e) => write!(f, "protocol error: {e}"),
            DisconnectReason::UnexpectedFrame => f.write_str("unexpected frame from server"),
            DisconnectReason::Local => f.write_str("closed by application"),
            DisconnectReason::WriteTimeout => f.write_str("write timed out"),
        }
    }
}

/// Why authentication failed.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AuthFailure<'e> {
    /// The server answered ERROR: its F2 code and F3 payload, as sent (the protocol names
    /// reasons 1 redirect, 2 bad credentials, 3 bad keep-alive, 4 bad encoding).
    Refused {
        /// F2 of the ERROR.
        code: Option<u64>,
        /// F3 of the ERROR.
        payload: Option<PsonRef<'e>>,
    },
    /// The transport closed before an answer.
    Closed,
    /// No answer within 1.15 × the keep-alive interval.
    Timeout,
    /// The server sent something other than OK/ERROR for our CONNECT.
    UnexpectedFrame,
}

/// Why a cloud call did not succeed.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallError<'e> {
    /// The server answered ERROR with this F2 code (e.g. 404) and F3 payload.
    Server {
        /// F2 of the ERROR (an HTTP-like status).
        code: Option<u64>,
        /// F3 of the ERROR.
        payload: Option<PsonRef<'e>>,
    },
    /// No reply within the request timeout.
    Timeout,
    /// The connection ended before the reply.
    Disconnected,
    /// The reply's payload is larger than the session's event buffer.
    PayloadTooLarge,
}

/// The message of a server ERROR payload: `{"error": message}` or a bare string, as the
/// Thinger.io server sends them.
///
/// ```
/// use thinger_core::pson::PsonRef;
/// use thinger_core::session::error_message;
/// let payload = PsonRef::decode(&[0xc1, 0x85, b'e', b'r', b'r', b'o', b'r', 0x82, b'n', b'o']).unwrap();
/// assert_eq!(error_message(Some(payload)), Some("no"));
/// assert_eq!(error_message(None), None);
/// ```
pub fn error_message<'e>(payload: Option<PsonRef<'e>>) -> Option<&'e str> {
    let payload = payload?;
    payload.get("error").and_then(|m| m.as_str()).or_else(|| payload.as_str())
}

impl<'e> CallError<'e> {
    /// The server's message, for [`CallError::Server`] (see [`error_message`]).
    pub fn message(&self) -> Option<&'e str> {
        match *self {
            CallError::Server { payload, .. } => error_message(payload),
            _ => None,
        }
    }
}

impl<'e> AuthFailure<'e> {
    /// The server's message, for [`AuthFailure::Refused`] (see [`error_message`]).
    pub fn message(&self) -> Option<&'e str> {
        match *self {
            AuthFailure::Refused { payload, .. } => error_message(payload),
            _ => None,
        }
    }
}

/// A frame the session could not use, reported and then dropped (the connection goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dropped {
    /// Unknown message type.
    UnknownType(u32),
    /// OK/ERROR for no pending request (e.g. it came after its request timed out).
    LateReply {
        /// Its stream id.
        stream_id: u16,
    },
    /// STREAM_DATA for no open stream or subscription.
    UnknownStream {
        /// Its stream id.
        stream_id: u16,
    },
    /// A body that could not be parsed (reserved wire type, legacy PSON, bad varint, bad
    /// PSON in a non-request); a request with bad PSON is also answered with ERROR.
    Malformed {
        /// Message type number.
        msg_type: u32,
        /// Stream id read before the problem (0 if none).
        stream_id: u16,
        /// What was wrong.
        kind: MessageErrorKind,
    },
    /// A frame type the device does not expect from a server (e.g. CONNECT).
    Unexpected {
        /// Message type number.
        msg_type: u32,
    },
    /// A frame larger than the receive buffer: its body was skipped unread (its length is
    /// known from the header) and the connection goes on. A request among them is answered
    /// with `ERROR` code 413; a reply completes its call with
    /// [`CallError::PayloadTooLarge`](super::CallError::PayloadTooLarge) instead.
    TooLarge {
        /// Message type number.
        msg_type: u32,
        /// Its stream id, when it came before the first PSON field (0 if not found).
        stream_id: u16,
        /// Frame size (header + body) the header announced.
        size: u64,
    },
    /// An interval stream sample did not fit the transmit buffer and was skipped.
    SampleTooLarge {
        /// The stream's id.
        stream_id: u16,
    },
}

/// What the session reports to the application. Payloads borrow the session's event buffer
/// and are valid until the next call to `poll_event`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<'e> {
    /// The server accepted the credentials.
    Connected,
    /// The server refused the credentials, or the connection ended before an answer.
    AuthFailed(AuthFailure<'e>),
    /// The connection ended; the adapter should close the transport and reconnect later.
    Disconnected(DisconnectReason),
    /// A cloud call finished.
    CallCompleted {
        /// The call.
        request: RequestId,
        /// The reply payload (`None` for a bare OK), or why it failed.
        result: Result<Option<PsonRef<'e>>, CallError<'e>>,
    },
    /// The server accepted a subscription (with initial data, e.g. a property's current
    /// value when asked for).
    Subscribed {
        /// The subscription.
        subscription: SubscriptionId,
        /// Initial data in the OK, if any.
        initial: Option<PsonRef<'e>>,
    },
    /// The server refused a subscription, or it timed out.
    SubscriptionFailed {
        /// The subscription.
        subscription: SubscriptionId,
        /// Why.
        error: CallError<'e>,
    },
    /// Data on a subscription (a server event, a property change, an MQTT message).
    SubscriptionData {
        /// The subscription.
        subscription: SubscriptionId,
        /// The event payload.
        data: Option<PsonRef<'e>>,
    },
    /// A handler deferred its reply: answer with `Session::reply(stream_id, …)`.
    Deferred {
        /// The server's request id to answer.
        stream_id: u16,
        /// Index of the resource in the table.
        resource: usize,
    },
    /// The server opened a stream on a resource.
    StreamStarted {
        /// The stream id.
        stream_id: u16,
        /// Index of the resource in the table.
        resource: usize,
    },
    /// The server closed a stream.
    StreamStopped {
        /// The stream id.
        stream_id: u16,
    },
    /// The server opened a channel on a resource that takes them
    /// (`Resource::channel`, feature `channels`): answer with
    /// `Session::accept_channel` or `Session::reject_channel`.
    ChannelOpened {
        /// The channel's stream id.
        stream_id: u16,
        /// Index of the resource in the table.
        resource: usize,
        /// The path the server opened (e.g. `$terminal/abc` on `$terminal/:session`).
        path: &'e str,
        /// The START_STREAM parameters (F2), e.g. `{"cols": 80, "rows": 24}`.
        params: Option<PsonRef<'e>>,
    },
    /// The server sent data on a channel (`STREAM_DATA` F3).
    ChannelData {
        /// The channel's stream id.
        stream_id: u16,
        /// The value (bytes for a terminal or proxy; `None` when the frame had none).
        data: Option<PsonRef<'e>>,
    },
    /// The channel ended from the server's side (STOP_STREAM), or because its data could
    /// not fit the event buffer (then the session sent STOP_STREAM itself).
    ChannelClosed {
        /// The channel's stream id.
        stream_id: u16,
    },
    /// A frame that could not be used was dropped.
    Dropped(Dropped),
}

/// Errors of the session's own API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The session is not connected and authenticated.
    NotConnected,
    /// The transmit buffer has no room: drain it with `poll_transmit` first.
    TransmitBufferFull,
    /// A value does not fit a frame even in an empty transmit buffer.
    TooLarge,
    /// The table of pending requests (or subscriptions, or streams) is full.
    TooManyPending,
    /// No pending request / deferred reply / subscription with that id.
    UnknownId,
    /// A PSON encoding error.
    Pson(crate::pson::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotConnected => f.write_str("session is not connected"),
            Error::TransmitBufferFull => f.write_str("transmit buffer is full"),
            Error::TooLarge => f.write_str("message does not fit the transmit buffer"),
            Error::TooManyPending => f.write_str("too many pending requests"),
            Error::UnknownId => f.write_str("unknown request or subscription id"),
            Error::Pson(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Error {}

/// `poll_transmit`'s buffer cannot hold the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// Bytes the next frame needs.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transmit buffer too small: {} bytes needed", self.needed)
    }
}

impl core::error::Error for BufferTooSmall {}
