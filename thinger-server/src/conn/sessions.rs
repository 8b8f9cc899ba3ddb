//! Byte streams the server opens on a device resource for a caller (terminal, proxy, file
//! transfers, streamed commands): START_STREAM with parameters, STREAM_DATA both ways,
//! STOP_STREAM from either side. Each session has its own bounded buffer toward the caller,
//! and a connection holds at most [`Limits::max_device_streams`](crate::Limits) of them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use thinger_core::iotmp::{Message, MessageType};
use thinger_core::pson::Value;
use tokio::sync::oneshot;

use super::state::{Conn, Pending, Session};
use crate::error::DeviceError;
use crate::util::{F, approx_size, encode, error_message, owned};
use crate::vocab::{Opened, SessionEnd, SessionItem, SessionSink};

impl Conn {
    pub(super) fn open_session(
        &mut self,
        key: u64,
        resource: String,
        params: Option<Value>,
        sink: SessionSink,
        reply: oneshot::Sender<Result<Opened, DeviceError>>,
    ) {
        let limit = self.hub.config.limits.max_device_streams;
        if self.sessions.len() >= limit {
            let _ = reply.send(Err(DeviceError::TooManyStreams { limit }));
            return;
        }
        let Some(sid) = self.alloc_sid() else {
            let _ = reply.send(Err(DeviceError::Unavailable));
            return;
        };
        let frame = encode(MessageType::StartStream, sid, params.as_ref().map(F::V), None, Some(F::S(&resource)));
        if frame.len() > self.frame_limit {
            let _ = reply.send(Err(DeviceError::TooLarge { size: frame.len(), limit: self.frame_limit }));
            return;
        }
        tracing::info!(user = %self.user, device = %self.device, %resource, sid, "opening stream");
        self.out.send(frame);
        let deadline = self.deadline();
        self.pending.insert(sid, Pending::Session { reply, deadline });
        self.sessions.insert(sid, Session { key, resource, sink });
    }

    /// The device answered a session's START_STREAM.
    pub(super) fn on_session_reply(&mut self, msg: &Message<'_>, reply: oneshot::Sender<Result<Opened, DeviceError>>) {
        let sid = msg.stream_id;
        let open = self.sessions.contains_key(&sid);
        if msg.kind == MessageType::Ok && open {
            let opened = Opened {
                sid,
                out: self.out.clone(),
                frame_limit: self.frame_limit,
                drained: Arc::clone(&self.drained),
                params: owned(msg.parameters),
                payload: owned(msg.payload),
            };
            if reply.send(Ok(opened)).is_err() {
                // The caller gave up waiting: stop the stream the device just opened.
                self.stop_session(sid, SessionEnd::Closed);
            }
        } else if msg.kind == MessageType::Ok {
            // Closed by the caller before the device accepted it.
            self.send_stop(sid);
        } else {
            if let Some(s) = self.sessions.remove(&sid) {
                s.sink.ended.store(true, Ordering::Relaxed);
                tracing::info!(device = %self.device, resource = %s.resource, sid, "stream refused by the device");
            }
            let payload = owned(msg.payload);
            let failure = DeviceError::Failed {
                code: msg.parameters.and_then(|p| p.as_u64()),
                message: error_message(payload.as_ref()),
            };
            let _ = reply.send(Err(failure));
        }
    }

    /// Whether a session's caller is more than half its buffer behind (the connection then
    /// stops reading from the device until it catches up).
    pub(super) fn stream_backlogged(&self) -> bool {
        self.sessions.values().any(|s| s.sink.buffered.load(Ordering::Relaxed) > s.sink.limit / 2)
    }

    /// Stops the sessions whose callers stayed behind for the whole stall timeout.
    pub(super) fn stop_backlogged(&mut self) {
        let behind: Vec<(u16, usize)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.sink.buffered.load(Ordering::Relaxed) > s.sink.limit / 2)
            .map(|(sid, s)| (*sid, s.sink.limit))
            .collect();
        for (sid, limit) in behind {
            tracing::info!(device = %self.device, sid, "stream stopped: the caller stopped reading");
            self.stop_session(sid, SessionEnd::Overflow(limit));
        }
        self.paused_since = None;
    }

    /// STREAM_DATA for a session; false if `sid` is no session.
    pub(super) fn on_session_data(&mut self, sid: u16, value: Option<Value>) -> bool {
        let Some(s) = self.sessions.get(&sid) else { return false };
        let value = value.unwrap_or_default();
        let size = approx_size(&value);
        let sink = &s.sink;
        let buffered = sink.buffered.fetch_add(size, Ordering::Relaxed).saturating_add(size);
        if buffered > sink.limit {
            let limit = sink.limit;
            tracing::info!(device = %self.device, resource = %s.resource, sid, limit, "stream stopped: the caller does not read");
            self.stop_session(sid, SessionEnd::Overflow(limit));
        } else if sink.tx.send(SessionItem::Data(value)).is_err() {
            self.stop_session(sid, SessionEnd::Closed);
        }
        true
    }

    /// The device sent STOP_STREAM; false if `sid` is no session.
    pub(super) fn on_session_stop(&mut self, sid: u16) -> bool {
        let Some(s) = self.sessions.remove(&sid) else { return false };
        tracing::info!(device = %self.device, resource = %s.resource, sid, "stream closed by the device");
        s.sink.ended.store(true, Ordering::Relaxed);
        let _ = s.sink.tx.send(SessionItem::End(SessionEnd::Closed));
        if let Some(Pending::Session { reply, .. }) = self.pending.remove(&sid) {
            let _ = reply.send(Err(DeviceError::Failed { code: None, message: Some("stream stopped".into()) }));
        }
        true
    }

    /// The caller closed (or dropped) the session with this key.
    pub(super) fn close_session(&mut self, key: u64) {
        let sid = self.sessions.iter().find(|(_, s)| s.key == key).map(|(sid, _)| *sid);
        if let Some(sid) = sid {
            let pending_open = matches!(self.pending.get(&sid), Some(Pending::Session { .. }));
            if pending_open {
                // Forget it now; its OK, when it comes, is answered with STOP_STREAM.
                if let Some(s) = self.sessions.remove(&sid) {
                    s.sink.ended.store(true, Ordering::Relaxed);
                }
            } else {
                self.stop_session(sid, SessionEnd::Closed);
            }
        }
    }

    /// Forgets a session, tells its caller why and the device STOP_STREAM.
    fn stop_session(&mut self, sid: u16, end: SessionEnd) {
        if let Some(s) = self.sessions.remove(&sid) {
            tracing::info!(device = %self.device, resource = %s.resource, sid, "stream stopped by the server");
            s.sink.ended.store(true, Ordering::Relaxed);
            let _ = s.sink.tx.send(SessionItem::End(end));
            self.send_stop(sid);
        }
    }

    fn send_stop(&mut self, sid: u16) {
        let deadline = self.deadline();
        self.pending.insert(sid, Pending::Stop { deadline });
        self.out.send(encode(MessageType::StopStream, sid, None, None, None));
    }
}
