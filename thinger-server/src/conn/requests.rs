//! What the server asks of the device (RUN, DESCRIBE), the streams it opens on a device
//! resource for REST clients, and the replies and stream data that come back.

use thinger_core::iotmp::{Message, MessageType};
use thinger_core::pson::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::state::{Conn, Flow, Pending, SharedStream, Subscription};
use crate::error::DeviceError;
use crate::util::{F, disconnect, encode, error_message, owned};
use crate::vocab::{Command, DeviceRequest, HubEvent, RawReply};

impl Conn {
    pub(super) fn alloc_sid(&mut self) -> Option<u16> {
        if self.pending.len() > 64 {
            let now = Instant::now();
            self.pending.retain(|_, p| !p.expired(now));
        }
        for _ in 0..=u16::MAX {
            self.next_sid = self.next_sid.wrapping_add(1);
            let sid = self.next_sid;
            if sid != 0
                && !self.pending.contains_key(&sid)
                && !self.stream_by_sid.contains_key(&sid)
                && !self.subs.contains_key(&sid)
                && !self.sessions.contains_key(&sid)
            {
                return Some(sid);
            }
        }
        None
    }

    pub(super) fn deadline(&self) -> Instant {
        Instant::now() + self.hub.device_timeout().saturating_mul(2)
    }

    pub(super) fn on_command(&mut self, cmd: Command) -> Flow {
        match cmd {
            Command::Request { request, reply } => {
                let Some(sid) = self.alloc_sid() else {
                    let _ = reply.send(Err(DeviceError::Unavailable));
                    return Flow::Continue;
                };
                let frame = match &request {
                    DeviceRequest::Run { resource, input } => {
                        encode(MessageType::Run, sid, None, input.as_ref().map(F::V), Some(F::S(resource)))
                    }
                    DeviceRequest::Describe { resource } => {
                        encode(MessageType::Describe, sid, None, None, resource.as_deref().map(F::S))
                    }
                };
                if frame.len() > self.frame_limit {
                    let _ = reply.send(Err(DeviceError::TooLarge { size: frame.len(), limit: self.frame_limit }));
                    return Flow::Continue;
                }
                let deadline = self.deadline();
                self.pending.insert(sid, Pending::Request { reply, deadline });
                self.out.send(frame);
            }
            Command::StartStream { resource, interval, sink_id, sink, reply } => {
                self.start_stream(resource, interval, sink_id, sink, reply);
            }
            Command::StopStream { resource, sink_id } => {
                if let Some(s) = self.streams.get_mut(&resource) {
                    s.sinks.retain(|(id, _)| *id != sink_id);
                }
                self.close_idle_stream(&resource);
            }
            Command::OpenSession { key, resource, params, sink, reply } => {
                self.open_session(key, resource, params, sink, reply);
            }
            Command::CloseSession { key } => self.close_session(key),
            Command::Disconnect { code, reason } => {
                self.out.send(disconnect(code, reason));
                return Flow::Close(reason.to_owned());
            }
        }
        Flow::Continue
    }

    pub(super) fn start_frame(sid: u16, resource: &str, interval: Option<u64>) -> Vec<u8> {
        let params = interval.map(|ms| Value::Map(vec![("interval".to_owned(), Value::Uint(ms))]));
        encode(MessageType::StartStream, sid, params.as_ref().map(F::V), None, Some(F::S(resource)))
    }

    pub(super) fn start_stream(
        &mut self,
        resource: String,
        interval: Option<u64>,
        sink_id: u64,
        sink: mpsc::Sender<Value>,
        reply: oneshot::Sender<Result<(), DeviceError>>,
    ) {
        let deadline = self.deadline();
        if let Some(s) = self.streams.get_mut(&resource) {
            if let Some(last) = &s.last {
                let _ = sink.try_send(last.clone());
            }
            s.sinks.push((sink_id, sink));
            let faster = match (interval, s.interval) {
                (Some(new), Some(cur)) => new < cur,
                (Some(_), None) => true,
                _ => false,
            };
            let sid = s.sid;
            if faster {
                // A new START_STREAM on the same id replaces the device's stream.
                s.interval = interval;
                self.out.send(Self::start_frame(sid, &resource, interval));
            } else if s.open {
                let _ = reply.send(Ok(()));
                return;
            }
            match self.pending.get_mut(&sid) {
                Some(Pending::Start { replies, .. }) => replies.push(reply),
                _ => {
                    self.pending.insert(sid, Pending::Start { resource, replies: vec![reply], deadline });
                }
            }
            return;
        }
        let Some(sid) = self.alloc_sid() else {
            let _ = reply.send(Err(DeviceError::Unavailable));
            return;
        };
        let frame = Self::start_frame(sid, &resource, interval);
        if frame.len() > self.frame_limit {
            let _ = reply.send(Err(DeviceError::TooLarge { size: frame.len(), limit: self.frame_limit }));
            return;
        }
        self.out.send(frame);
        self.stream_by_sid.insert(sid, resource.clone());
        self.streams.insert(
            resource.clone(),
            SharedStream { sid, interval, sinks: vec![(sink_id, sink)], last: None, open: false },
        );
        self.pending.insert(sid, Pending::Start { resource, replies: vec![reply], deadline });
    }

    /// Stops a server stream nobody listens to any more.
    pub(super) fn close_idle_stream(&mut self, resource: &str) {
        let idle = self.streams.get(resource).is_some_and(|s| s.sinks.iter().all(|(_, tx)| tx.is_closed()));
        if idle && let Some(s) = self.streams.remove(resource) {
            self.stream_by_sid.remove(&s.sid);
            let deadline = self.deadline();
            self.pending.insert(s.sid, Pending::Stop { deadline });
            self.out.send(encode(MessageType::StopStream, s.sid, None, None, None));
        }
    }

    pub(super) fn on_reply(&mut self, msg: &Message<'_>) {
        let is_ok = msg.kind == MessageType::Ok;
        let reply = RawReply { ok: is_ok, code: msg.parameters.and_then(|p| p.as_u64()), payload: owned(msg.payload) };
        match self.pending.remove(&msg.stream_id) {
            Some(Pending::Request { reply: tx, .. }) => {
                let _ = tx.send(Ok(reply));
            }
            Some(Pending::Start { resource, replies, .. }) => {
                if is_ok {
                    if let Some(s) = self.streams.get_mut(&resource) {
                        s.open = true;
                    }
                    for r in replies {
                        let _ = r.send(Ok(()));
                    }
                    self.close_idle_stream(&resource);
                } else {
                    if let Some(s) = self.streams.remove(&resource) {
                        self.stream_by_sid.remove(&s.sid);
                    }
                    let failure =
                        DeviceError::Failed { code: reply.code, message: error_message(reply.payload.as_ref()) };
                    for r in replies {
                        let _ = r.send(Err(failure.clone()));
                    }
                }
            }
            Some(Pending::Stop { .. }) => {}
            Some(Pending::Session { reply, .. }) => self.on_session_reply(msg, reply),
            None => {
                tracing::debug!(device = %self.device, sid = msg.stream_id, "dropped reply that matches no request")
            }
        }
    }

    pub(super) fn on_stream_data(&mut self, msg: &Message<'_>) {
        let sid = msg.stream_id;
        if let Some(Subscription::Publish { topic, retained }) = self.subs.get(&sid) {
            let payload = owned(msg.payload).unwrap_or_default();
            if *retained {
                self.hub.retain(&self.user, topic, &payload);
            }
            self.hub.dispatch(HubEvent::Topic { user: self.user.clone(), topic: topic.clone(), payload });
            return;
        }
        if self.sessions.contains_key(&sid) {
            self.on_session_data(sid, owned(msg.payload));
            return;
        }
        let Some(resource) = self.stream_by_sid.get(&sid).cloned() else {
            tracing::debug!(device = %self.device, sid, "dropped STREAM_DATA for no open stream");
            return;
        };
        let value = owned(msg.payload).unwrap_or_default();
        if let Some(s) = self.streams.get_mut(&resource) {
            s.sinks.retain(|(_, tx)| match tx.try_send(value.clone()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            s.last = Some(value);
        }
        self.close_idle_stream(&resource);
    }
}
