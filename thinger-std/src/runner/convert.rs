//! Translation between the core session's borrowed types and the runner's owned ones.

use thinger_core::iotmp::DynEncodePson;
use thinger_core::session::{
    self, AuthFailure, CallError, DisconnectReason, Dropped, Event, RequestId, SubscriptionId,
};
use thinger_core::time::Instant;

use crate::command::CallSpec;
use crate::error::Error;
use crate::pson_util::{RawPson, owned};
use crate::queue::Op;

use super::session::Sess;

pub(super) fn send_call<const R: usize, const S: usize, const P: usize, const E: usize>(
    session: &mut Sess<'_, R, S, P, E>,
    now: Instant,
    spec: &CallSpec,
) -> Result<RequestId, session::Error> {
    match spec {
        CallSpec::ReadProperty { property } => session.read_property(now, property),
        CallSpec::SetProperty { property, value } => session.set_property(now, property, &RawPson(value), true),
        CallSpec::CallDevice { device, resource, input } => {
            let raw = input.as_deref().map(RawPson);
            session.call_device(now, device, resource, raw.as_ref().map(|r| r as &dyn DynEncodePson))
        }
        CallSpec::CallEndpoint { endpoint, data } => {
            let raw = data.as_deref().map(RawPson);
            session.call_endpoint(now, endpoint, raw.as_ref().map(|r| r as &dyn DynEncodePson))
        }
        CallSpec::LockSync { sync, lock, slots, timeout_s } => session.lock_sync(now, sync, lock, *slots, *timeout_s),
        CallSpec::UnlockSync { sync, lock } => session.unlock_sync(now, sync, lock),
    }
}

pub(super) fn send_op<const R: usize, const S: usize, const P: usize, const E: usize>(
    session: &mut Sess<'_, R, S, P, E>,
    now: Instant,
    op: &Op,
) -> Result<RequestId, session::Error> {
    match op {
        Op::WriteBucket { bucket, record } => session.write_bucket(now, bucket, &RawPson(record)),
        Op::CallEndpoint { endpoint, data } => {
            let raw = data.as_deref().map(RawPson);
            session.call_endpoint(now, endpoint, raw.as_ref().map(|r| r as &dyn DynEncodePson))
        }
    }
}

/// How the answer to a queued entry came back, for the core's [`InFlight`](thinger_core::queue::InFlight).
pub(super) fn queue_answer<T>(result: &Result<T, Error>) -> thinger_core::queue::Answer {
    match result {
        Err(Error::Timeout | Error::Disconnected) => thinger_core::queue::Answer::Lost,
        _ => thinger_core::queue::Answer::Delivered,
    }
}

pub(super) fn session_error(e: session::Error) -> Error {
    match e {
        session::Error::NotConnected => Error::Disconnected,
        session::Error::TooLarge | session::Error::TransmitBufferFull => Error::TooLarge,
        session::Error::TooManyPending => Error::TooMany,
        session::Error::Pson(e) => Error::Encode(e),
        session::Error::UnknownId => Error::Disconnected,
    }
}

pub(super) fn call_error(e: CallError<'_>) -> Error {
    match e {
        CallError::Server { code, payload } => {
            Error::Server { code, payload: payload.map(thinger_core::pson::Value::from_ref) }
        }
        CallError::Timeout => Error::Timeout,
        CallError::Disconnected => Error::Disconnected,
        CallError::PayloadTooLarge => Error::PayloadTooLarge,
    }
}

/// An event, copied out of the session's buffer.
pub(super) enum Ev {
    Connected,
    AuthRefused {
        code: Option<u64>,
        message: Option<String>,
    },
    Ended(DisconnectReason),
    Call {
        id: u16,
        result: Result<Option<Vec<u8>>, Error>,
    },
    Subscribed {
        id: SubscriptionId,
        initial: Option<Vec<u8>>,
    },
    SubscriptionFailed {
        id: SubscriptionId,
        error: Error,
    },
    SubscriptionData {
        id: SubscriptionId,
        data: Option<Vec<u8>>,
    },
    /// A handler deferred its reply; its future carries the stream id (see `start_async_handlers`).
    Deferred,
    StreamStarted {
        resource: usize,
    },
    StreamStopped {
        stream_id: u16,
    },
    ChannelOpened {
        id: u16,
        resource: usize,
        path: String,
        params: Option<Vec<u8>>,
    },
    ChannelData {
        id: u16,
        data: Vec<u8>,
    },
    ChannelClosed {
        id: u16,
    },
    Dropped(Dropped),
}

pub(super) fn own(event: Event<'_>) -> Ev {
    match event {
        Event::Connected => Ev::Connected,
        Event::AuthFailed(AuthFailure::Refused { code, payload }) => {
            let message = payload.and_then(|p| p.as_str().or_else(|| p.get("error").and_then(|e| e.as_str())));
            Ev::AuthRefused { code, message: message.map(str::to_owned) }
        }
        Event::AuthFailed(AuthFailure::Closed) => Ev::Ended(DisconnectReason::TransportClosed),
        Event::AuthFailed(AuthFailure::Timeout) => Ev::Ended(DisconnectReason::Timeout),
        Event::AuthFailed(AuthFailure::UnexpectedFrame) => Ev::Ended(DisconnectReason::UnexpectedFrame),
        Event::Disconnected(reason) => Ev::Ended(reason),
        Event::CallCompleted { request, result } => {
            Ev::Call { id: request.0, result: result.map(|p| p.map(owned)).map_err(call_error) }
        }
        Event::Subscribed { subscription, initial } => Ev::Subscribed { id: subscription, initial: initial.map(owned) },
        Event::SubscriptionFailed { subscription, error } => {
            Ev::SubscriptionFailed { id: subscription, error: call_error(error) }
        }
        Event::SubscriptionData { subscription, data } => {
            Ev::SubscriptionData { id: subscription, data: data.map(owned) }
        }
        Event::Deferred { .. } => Ev::Deferred,
        Event::StreamStarted { resource, .. } => Ev::StreamStarted { resource },
        Event::StreamStopped { stream_id } => Ev::StreamStopped { stream_id },
        Event::ChannelOpened { stream_id, resource, path, params } => {
            Ev::ChannelOpened { id: stream_id, resource, path: path.to_owned(), params: params.map(owned) }
        }
        Event::ChannelData { stream_id, data } => Ev::ChannelData {
            id: stream_id,
            data: match data {
                // Bytes (terminal, proxy, file chunks) are copied once.
                Some(thinger_core::pson::PsonRef::Bytes(b)) => crate::channel::ChannelData::from_bytes(b).0,
                Some(other) => owned(other),
                None => vec![0x62], // null
            },
        },
        Event::ChannelClosed { stream_id } => Ev::ChannelClosed { id: stream_id },
        Event::Dropped(d) => Ev::Dropped(d),
    }
}
