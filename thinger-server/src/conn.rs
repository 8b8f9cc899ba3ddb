//! One device connection: authentication, keep-alive, cloud calls, subscriptions, and the
//! requests and streams the server opens on the device.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thinger_core::iotmp::{FieldValue, FrameError, Message, MessageErrorKind, MessageType, RawFrame, parse_frame};
use thinger_core::pson::{PsonRef, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::DeviceError;
use crate::hub::{
    Command, DeviceRequest, Hub, HubEvent, Live, LockOutcome, RawReply, RegisterError, ReplyTx, topic_matches,
};
use crate::store::Op;
use crate::transport::{Outbox, Reader, Writer, peer_string, spawn_writer};
use crate::util::{F, KEEP_ALIVE, disconnect, encode, error, error_message, now_ms, ok, owned, random_u64};

/// ERROR to CONNECT, F2: bad credentials.
pub(crate) const REFUSE_CREDENTIALS: u64 = 2;
/// ERROR to CONNECT, F2: keep-alive out of range (1..=1800 s).
pub(crate) const REFUSE_KEEPALIVE: u64 = 3;
/// ERROR to CONNECT, F2: unsupported encoding (legacy PSON, `pv` other than 1).
pub(crate) const REFUSE_ENCODING: u64 = 4;
/// ERROR to CONNECT, F2: too many devices connected.
pub(crate) const REFUSE_FULL: u64 = 503;

/// DISCONNECT F2: protocol violation (bad framing, oversized frame, no CONNECT first).
pub(crate) const REASON_PROTOCOL: u64 = 4;
/// DISCONNECT F2: another connection of the same device replaced this one.
pub(crate) const REASON_REPLACED: u64 = 6;
/// DISCONNECT F2: the server is shutting down.
pub(crate) const REASON_SHUTDOWN: u64 = 7;
/// DISCONNECT F2: nothing received for 1.15 × keep-alive.
pub(crate) const REASON_TIMEOUT: u64 = 8;

/// The `F4` of a subscription START_STREAM, and the cloud-call code of subscribe.
const SUBSCRIBE_CODE: u64 = 8;
/// Most bytes queued to a device before it is considered stuck.
const MIN_OUTBOX_LIMIT: usize = 4 * 1024 * 1024;

/// Runs a connection from its first byte to its close.
pub(crate) async fn serve(
    hub: Arc<Hub>,
    mut reader: Reader,
    writer: Writer,
    peer: SocketAddr,
    transport: &'static str,
) {
    let address = peer_string(peer);
    tracing::info!(peer = %address, transport, "connection opened");
    let out = spawn_writer(writer, MIN_OUTBOX_LIMIT.max(hub.config.max_frame_size.saturating_mul(16)));
    let mut buf = Vec::new();
    let auth = tokio::time::timeout(hub.config.auth_timeout, authenticate(&hub, &mut reader, &mut buf, &out)).await;
    let session = match auth {
        Err(_) => {
            tracing::info!(peer = %address, transport, "closed: no CONNECT in time");
            out.close();
            return;
        }
        Ok(Err(reason)) => {
            tracing::info!(peer = %address, transport, "closed before authentication: {reason}");
            out.close();
            return;
        }
        Ok(Ok(s)) => s,
    };
    let Authenticated { sid, user, device, keepalive, consumed } = session;
    buf.drain(..consumed.min(buf.len()));

    let conn_id = hub.next_id();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let live = Live { conn_id, tx: cmd_tx, since: now_ms(), address: address.clone(), transport };
    if let Err(RegisterError::Full) = hub.register(&user, &device, live) {
        tracing::warn!(peer = %address, transport, %user, %device, "refused: too many devices connected");
        out.send(error(sid, REFUSE_FULL, "too many devices connected"));
        out.close();
        return;
    }
    out.send(ok(sid, None));
    tracing::info!(peer = %address, transport, %user, %device, keepalive_ms = keepalive.as_millis() as u64, "authenticated");

    let mut conn = Conn {
        hub: Arc::clone(&hub),
        conn_id,
        user,
        device,
        out,
        pending: HashMap::new(),
        streams: HashMap::new(),
        stream_by_sid: HashMap::new(),
        subs: HashMap::new(),
        next_sid: (random_u64() & 0xffff) as u16,
    };
    let reason = conn.run(reader, buf, cmd_rx, keepalive).await;
    tracing::info!(peer = %address, transport, user = %conn.user, device = %conn.device, "disconnected: {reason}");
    conn.out.close();
    hub.unregister(&conn.user, &conn.device, conn_id);
}

struct Authenticated {
    sid: u16,
    user: String,
    device: String,
    keepalive: Duration,
    consumed: usize,
}

/// Reads the first frame, which must be a CONNECT with good credentials (refusals are answered here).
async fn authenticate(
    hub: &Hub,
    reader: &mut Reader,
    buf: &mut Vec<u8>,
    out: &Outbox,
) -> Result<Authenticated, String> {
    loop {
        match parse_frame(buf, hub.config.max_frame_size) {
            Err(e) => {
                out.send(disconnect(REASON_PROTOCOL, &e.to_string()));
                return Err(format!("protocol error: {e}"));
            }
            Ok(Some((frame, consumed))) => return check_connect(hub, frame, consumed, out),
            Ok(None) => {}
        }
        match reader.read(buf).await {
            Ok(0) => return Err("connection closed".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read error: {e}")),
        }
    }
}

fn check_connect(hub: &Hub, frame: RawFrame<'_>, consumed: usize, out: &Outbox) -> Result<Authenticated, String> {
    if frame.msg_type != MessageType::Connect as u32 {
        out.send(disconnect(REASON_PROTOCOL, "the first frame must be CONNECT"));
        return Err(format!("first frame was of type {}, not CONNECT", frame.msg_type));
    }
    let msg = match frame.message() {
        Ok(m) => m,
        Err(e) => {
            out.send(error(e.stream_id, REFUSE_ENCODING, &e.to_string()));
            return Err(format!("bad CONNECT: {e}"));
        }
    };
    let sid = msg.stream_id;
    let creds: Option<Vec<&str>> = match msg.payload.map(|p| p.as_pson()) {
        Some(PsonRef::Array(a)) if a.len() == 3 => a.iter().map(|v| v.as_str()).collect(),
        _ => None,
    };
    let Some([user, device, credential]) = creds.as_deref().map(|c| <[&str; 3]>::try_from(c).ok()).unwrap_or(None)
    else {
        out.send(error(sid, REFUSE_CREDENTIALS, "CONNECT payload must be [user, device, credential]"));
        return Err("malformed CONNECT credentials".into());
    };
    let mut keepalive = hub.config.keepalive;
    if let Some(PsonRef::Map(params)) = msg.parameters.map(|p| p.as_pson()) {
        if let Some(ka) = params.get("ka") {
            match ka.as_u64() {
                Some(s @ 1..=1800) => keepalive = Duration::from_secs(s),
                _ => {
                    out.send(error(sid, REFUSE_KEEPALIVE, "keep-alive must be 1..=1800 seconds"));
                    return Err(format!("bad keep-alive from {user}/{device}"));
                }
            }
        }
        if let Some(pv) = params.get("pv")
            && pv.as_u64() != Some(1)
        {
            out.send(error(sid, REFUSE_ENCODING, "only protocol version 1 (PSON) is supported"));
            return Err(format!("unsupported protocol version from {user}/{device}"));
        }
    }
    if !hub.authenticate(user, device, credential) {
        out.send(error(sid, REFUSE_CREDENTIALS, "bad credentials"));
        return Err(format!("authentication refused for {user}/{device}"));
    }
    Ok(Authenticated { sid, user: user.to_owned(), device: device.to_owned(), keepalive, consumed })
}

/// A request the server sent to the device, waiting for its OK/ERROR.
enum Pending {
    Request { reply: ReplyTx, deadline: Instant },
    Start { resource: String, replies: Vec<oneshot::Sender<Result<(), DeviceError>>>, deadline: Instant },
    Stop { deadline: Instant },
}

impl Pending {
    fn expired(&self, now: Instant) -> bool {
        match self {
            Pending::Request { reply, deadline } => reply.is_closed() || *deadline < now,
            Pending::Start { deadline, .. } | Pending::Stop { deadline } => *deadline < now,
        }
    }
}

/// A stream the server opened on a device resource, shared by every REST client of it.
struct SharedStream {
    sid: u16,
    interval: Option<u64>,
    sinks: Vec<(u64, mpsc::Sender<Value>)>,
    last: Option<Value>,
    open: bool,
}

/// A subscription the device opened (START_STREAM F4=8).
enum Subscription {
    Publish { topic: String, retained: bool },
    Topic { filter: String },
    Property { device: String, property: Option<String> },
    Event { name: String, filters: Option<Value> },
}

struct Conn {
    hub: Arc<Hub>,
    conn_id: u64,
    user: String,
    device: String,
    out: Outbox,
    pending: HashMap<u16, Pending>,
    streams: HashMap<String, SharedStream>,
    stream_by_sid: HashMap<u16, String>,
    subs: HashMap<u16, Subscription>,
    next_sid: u16,
}

enum Flow {
    Continue,
    Close(String),
}

impl Conn {
    async fn run(
        &mut self,
        mut reader: Reader,
        mut buf: Vec<u8>,
        mut cmd_rx: mpsc::UnboundedReceiver<Command>,
        keepalive: Duration,
    ) -> String {
        let silence = keepalive.mul_f64(1.15);
        let mut deadline = Instant::now() + silence;
        let mut shutdown = self.hub.shutdown.clone();
        if *shutdown.borrow() {
            self.out.send(disconnect(REASON_SHUTDOWN, "server shutting down"));
            return "server shutting down".into();
        }
        loop {
            if let Flow::Close(reason) = self.drain_frames(&mut buf) {
                return reason;
            }
            if self.out.overflowed() {
                return "send queue overflow (device not reading)".into();
            }
            tokio::select! {
                _ = shutdown.changed() => {
                    self.out.send(disconnect(REASON_SHUTDOWN, "server shutting down"));
                    return "server shutting down".into();
                }
                cmd = cmd_rx.recv() => {
                    let Some(cmd) = cmd else { return "server dropped the connection".into() };
                    if let Flow::Close(reason) = self.on_command(cmd) {
                        return reason;
                    }
                }
                read = reader.read(&mut buf) => match read {
                    Ok(0) => {
                        if buf.is_empty() {
                            return "closed by device".into();
                        }
                        return format!("{}", FrameError::TruncatedAtClose { buffered: buf.len() });
                    }
                    Ok(_) => deadline = Instant::now() + silence,
                    Err(e) => {
                        if e.kind() == std::io::ErrorKind::InvalidData {
                            self.out.send(disconnect(REASON_PROTOCOL, &e.to_string()));
                        }
                        return format!("read error: {e}");
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    self.out.send(disconnect(REASON_TIMEOUT, "keep-alive timeout"));
                    return format!("keep-alive timeout (nothing received for {} ms)", silence.as_millis());
                }
            }
        }
    }

    /// Handles every complete frame in `buf` and removes them.
    fn drain_frames(&mut self, buf: &mut Vec<u8>) -> Flow {
        let mut start = 0usize;
        let flow = loop {
            let rest = buf.get(start..).unwrap_or(&[]);
            match parse_frame(rest, self.hub.config.max_frame_size) {
                Err(e) => {
                    self.out.send(disconnect(REASON_PROTOCOL, &e.to_string()));
                    break Flow::Close(format!("protocol error: {e}"));
                }
                Ok(None) => break Flow::Continue,
                Ok(Some((frame, n))) => {
                    start += n;
                    if let Flow::Close(reason) = self.on_frame(frame) {
                        break Flow::Close(reason);
                    }
                }
            }
        };
        buf.drain(..start.min(buf.len()));
        flow
    }

    fn on_frame(&mut self, frame: RawFrame<'_>) -> Flow {
        let msg = match frame.message() {
            Ok(m) => m,
            Err(e) => {
                match e.kind {
                    MessageErrorKind::UnknownType(t) => {
                        tracing::debug!(device = %self.device, "dropped frame of unknown type {t}")
                    }
                    _ => {
                        tracing::debug!(device = %self.device, error = %e, "undecodable frame");
                        let is_request = matches!(
                            MessageType::from_u32(e.msg_type),
                            Some(
                                MessageType::Run
                                    | MessageType::Describe
                                    | MessageType::StartStream
                                    | MessageType::StopStream
                            )
                        );
                        if is_request && e.stream_id != 0 {
                            self.out.send(error(e.stream_id, 400, &e.to_string()));
                        }
                    }
                }
                return Flow::Continue;
            }
        };
        match msg.kind {
            MessageType::KeepAlive => {
                self.out.send(KEEP_ALIVE.to_vec());
            }
            MessageType::Ok | MessageType::Error => self.on_reply(&msg),
            MessageType::StreamData => self.on_stream_data(&msg),
            MessageType::Run => self.on_cloud_call(&msg),
            MessageType::StartStream => self.on_subscribe(&msg),
            MessageType::StopStream => {
                self.subs.remove(&msg.stream_id);
                self.out.send(ok(msg.stream_id, None));
            }
            MessageType::Describe => {
                self.out.send(error(msg.stream_id, 404, "the server has no resources to describe"));
            }
            MessageType::Connect => {
                self.out.send(error(msg.stream_id, 409, "already authenticated"));
            }
            MessageType::Disconnect => return Flow::Close("device sent DISCONNECT".into()),
        }
        Flow::Continue
    }

    // ----- server requests -----

    fn alloc_sid(&mut self) -> Option<u16> {
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
            {
                return Some(sid);
            }
        }
        None
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.hub.device_timeout().saturating_mul(2)
    }

    fn on_command(&mut self, cmd: Command) -> Flow {
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
            Command::Event(event) => self.on_event(&event),
            Command::Disconnect { code, reason } => {
                self.out.send(disconnect(code, reason));
                return Flow::Close(reason.to_owned());
            }
        }
        Flow::Continue
    }

    fn start_frame(sid: u16, resource: &str, interval: Option<u64>) -> Vec<u8> {
        let params = interval.map(|ms| Value::Map(vec![("interval".to_owned(), Value::Uint(ms))]));
        encode(MessageType::StartStream, sid, params.as_ref().map(F::V), None, Some(F::S(resource)))
    }

    fn start_stream(
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
        self.out.send(Self::start_frame(sid, &resource, interval));
        self.stream_by_sid.insert(sid, resource.clone());
        self.streams.insert(
            resource.clone(),
            SharedStream { sid, interval, sinks: vec![(sink_id, sink)], last: None, open: false },
        );
        self.pending.insert(sid, Pending::Start { resource, replies: vec![reply], deadline });
    }

    /// Stops a server stream nobody listens to any more.
    fn close_idle_stream(&mut self, resource: &str) {
        let idle = self.streams.get(resource).is_some_and(|s| s.sinks.iter().all(|(_, tx)| tx.is_closed()));
        if idle && let Some(s) = self.streams.remove(resource) {
            self.stream_by_sid.remove(&s.sid);
            let deadline = self.deadline();
            self.pending.insert(s.sid, Pending::Stop { deadline });
            self.out.send(encode(MessageType::StopStream, s.sid, None, None, None));
        }
    }

    fn on_reply(&mut self, msg: &Message<'_>) {
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
            None => {
                tracing::debug!(device = %self.device, sid = msg.stream_id, "dropped reply that matches no request")
            }
        }
    }

    fn on_stream_data(&mut self, msg: &Message<'_>) {
        let sid = msg.stream_id;
        if let Some(Subscription::Publish { topic, retained }) = self.subs.get(&sid) {
            let payload = owned(msg.payload).unwrap_or_default();
            if *retained {
                self.hub.retain(&self.user, topic, &payload);
            }
            self.hub.dispatch(HubEvent::Topic { user: self.user.clone(), topic: topic.clone(), payload });
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

    // ----- cloud calls -----

    fn on_cloud_call(&mut self, msg: &Message<'_>) {
        let sid = msg.stream_id;
        // Linux placement: F4 = code, F2 = id. Embedded placement: F2 = code, F4 = id.
        let (code, id) = match (msg.resource.and_then(|r| r.as_u64()), msg.parameters.and_then(|p| p.as_u64())) {
            (Some(code), _) => (code, msg.parameters),
            (None, Some(code)) => (code, msg.resource),
            (None, None) => {
                self.out.send(error(sid, 400, "not a cloud call: no numeric call code in F4 or F2"));
                return;
            }
        };
        let data = owned(msg.payload);
        let name = id.and_then(|f| f.as_str()).map(str::to_owned);
        match (code, name) {
            (1, Some(property)) => self.read_property(sid, property),
            (2, Some(property)) => self.set_property(sid, property, data.unwrap_or_default()),
            (3, _) => self.call_device(sid, id, data),
            (4, Some(endpoint)) => self.call_endpoint(sid, endpoint, data.unwrap_or_default()),
            (5, Some(bucket)) => self.write_bucket(sid, bucket, data.unwrap_or_default()),
            (6, Some(sync)) => self.lock_sync(sid, sync, data),
            (7, Some(sync)) => self.unlock_sync(sid, sync, data),
            (1 | 2 | 4 | 5 | 6 | 7, None) => {
                self.out.send(error(sid, 400, "cloud call without an id"));
            }
            (SUBSCRIBE_CODE, _) => {
                self.out.send(error(sid, 400, "subscriptions use START_STREAM"));
            }
            (other, _) => {
                self.out.send(error(sid, 400, &format!("unknown cloud call {other}")));
            }
        }
    }

    /// Sends a storage operation and answers the device from a task once it is done.
    fn store_call<T: Send + 'static>(
        &self,
        sid: u16,
        make: impl FnOnce(oneshot::Sender<T>) -> Op,
        answer: impl FnOnce(T) -> Vec<u8> + Send + 'static,
    ) {
        let (tx, rx) = oneshot::channel();
        if !self.hub.store.send(make(tx)) {
            self.out.send(error(sid, 500, "storage unavailable"));
            return;
        }
        let out = self.out.clone();
        tokio::spawn(async move {
            let frame = match rx.await {
                Ok(result) => answer(result),
                Err(_) => error(sid, 500, "storage failure"),
            };
            out.send(frame);
        });
    }

    fn read_property(&self, sid: u16, property: String) {
        let (user, device) = (self.user.clone(), self.device.clone());
        self.store_call(
            sid,
            |reply| Op::GetProperty { user, device, property, reply },
            move |found| match found {
                Some(record) => ok(sid, Some(&record.value)),
                None => error(sid, 404, "unknown property"),
            },
        );
    }

    fn set_property(&self, sid: u16, property: String, value: Value) {
        let (user, device) = (self.user.clone(), self.device.clone());
        self.store_call(
            sid,
            |reply| Op::SetProperty { user, device, property, value, reply },
            move |r| match r {
                Ok(()) => ok(sid, None),
                Err(e) => error(sid, 500, &e),
            },
        );
    }

    fn write_bucket(&self, sid: u16, bucket: String, value: Value) {
        let (user, device) = (self.user.clone(), self.device.clone());
        self.store_call(
            sid,
            |reply| Op::AppendBucket { user, bucket, device, value, reply },
            move |r| match r {
                Ok(_) => ok(sid, None),
                Err(e) => error(sid, 500, &e),
            },
        );
    }

    fn call_endpoint(&self, sid: u16, endpoint: String, data: Value) {
        let endpoints = &self.hub.config.endpoints;
        let response = match endpoints.iter().find(|e| e.name == endpoint) {
            Some(e) => e.response.clone(),
            None if endpoints.is_empty() => None,
            None => {
                self.out.send(error(sid, 404, "unknown endpoint"));
                return;
            }
        };
        let (user, device) = (self.user.clone(), self.device.clone());
        self.store_call(
            sid,
            |reply| Op::LogEndpoint { user, device, endpoint, data, reply },
            move |r| match r {
                Ok(()) => ok(sid, response.as_ref()),
                Err(e) => error(sid, 500, &e),
            },
        );
    }

    fn call_device(&self, sid: u16, target: Option<FieldValue<'_>>, input: Option<Value>) {
        let pair: Option<(String, String)> = match target.map(|t| t.as_pson()) {
            Some(PsonRef::Array(a)) => match (a.get(0).and_then(|v| v.as_str()), a.get(1).and_then(|v| v.as_str())) {
                (Some(d), Some(r)) => Some((d.to_owned(), r.to_owned())),
                _ => None,
            },
            _ => None,
        };
        let Some((device, resource)) = pair else {
            self.out.send(error(sid, 400, "call device needs [device, resource]"));
            return;
        };
        let hub = Arc::clone(&self.hub);
        let out = self.out.clone();
        let user = self.user.clone();
        tokio::spawn(async move {
            let frame = match hub.request(&user, &device, DeviceRequest::Run { resource, input }).await {
                Ok(r) => {
                    let kind = if r.ok { MessageType::Ok } else { MessageType::Error };
                    encode(kind, sid, r.code.map(F::U), r.payload.as_ref().map(F::V), None)
                }
                Err(DeviceError::Timeout) => error(sid, 504, "device did not answer in time"),
                Err(_) => error(sid, 503, "device offline"),
            };
            out.send(frame);
        });
    }

    fn lock_name(&self, data: Option<&Value>) -> String {
        match data.and_then(|d| d.get("lock")) {
            Some(Value::Str(s)) => s.clone(),
            Some(v) if !v.is_null() => serde_json::to_string(v).unwrap_or_default(),
            _ => self.device.clone(),
        }
    }

    fn lock_sync(&self, sid: u16, sync: String, data: Option<Value>) {
        let name = self.lock_name(data.as_ref());
        let param = |key: &str| data.as_ref().and_then(|d| d.get(key)).and_then(Value::as_u64);
        let slots = usize::try_from(param("slots").unwrap_or(1)).unwrap_or(usize::MAX).max(1);
        let timeout = param("timeout").filter(|s| *s > 0).map(Duration::from_secs);
        match self.hub.lock_sync(&self.user, &sync, &name, slots, self.conn_id) {
            LockOutcome::Granted => {
                self.out.send(ok(sid, None));
            }
            LockOutcome::Wait { waiter, granted } => {
                let hub = Arc::clone(&self.hub);
                let out = self.out.clone();
                let user = self.user.clone();
                tokio::spawn(async move {
                    let result = match timeout {
                        Some(t) => tokio::time::timeout(t, granted).await,
                        None => Ok(granted.await),
                    };
                    match result {
                        Ok(Ok(())) => {
                            out.send(ok(sid, None));
                        }
                        // The connection went away: its wait was dropped.
                        Ok(Err(_)) => {}
                        Err(_) => {
                            if hub.cancel_wait(&user, &sync, waiter) {
                                out.send(error(sid, 408, "lock not granted in time"));
                            } else {
                                out.send(ok(sid, None));
                            }
                        }
                    }
                });
            }
        }
    }

    fn unlock_sync(&self, sid: u16, sync: String, data: Option<Value>) {
        let name = self.lock_name(data.as_ref());
        if self.hub.unlock_sync(&self.user, &sync, &name) {
            self.out.send(ok(sid, None));
        } else {
            self.out.send(error(sid, 409, "lock not held"));
        }
    }

    // ----- subscriptions -----

    fn on_subscribe(&mut self, msg: &Message<'_>) {
        let sid = msg.stream_id;
        let params = match (msg.resource.and_then(|r| r.as_u64()), msg.parameters.and_then(|p| p.as_u64())) {
            (Some(SUBSCRIBE_CODE), _) => msg.parameters,
            (None, Some(SUBSCRIBE_CODE)) => msg.resource,
            _ => {
                self.out.send(error(sid, 404, "unknown stream resource"));
                return;
            }
        };
        let params = owned(params).unwrap_or_default();
        let Some(event) = params.get("event").and_then(Value::as_str) else {
            self.out.send(error(sid, 400, "subscription without an event"));
            return;
        };
        let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
        match event {
            "device_topic_publish" => {
                let Some(topic) = text("topic") else {
                    self.out.send(error(sid, 400, "topic subscription without a topic"));
                    return;
                };
                if text("scope").as_deref() == Some("publish") {
                    let retained = params.get("retained").and_then(Value::as_bool).unwrap_or(false);
                    self.subs.insert(sid, Subscription::Publish { topic, retained });
                    self.out.send(ok(sid, None));
                } else {
                    let retained = self.hub.retained_matching(&self.user, &topic);
                    self.subs.insert(sid, Subscription::Topic { filter: topic });
                    self.out.send(ok(sid, None));
                    for (topic, payload) in retained {
                        self.out.send(topic_frame(sid, &topic, &payload));
                    }
                }
            }
            "device_property_update" => {
                let filters = params.get("filters");
                let filter = |key: &str| filters.and_then(|f| f.get(key)).and_then(Value::as_str).map(str::to_owned);
                let property = filter("property");
                let device = filter("device").unwrap_or_else(|| self.device.clone());
                let current = params.get("current").and_then(Value::as_bool).unwrap_or(false);
                self.subs.insert(sid, Subscription::Property { device: device.clone(), property: property.clone() });
                match property {
                    Some(property) if current => {
                        let user = self.user.clone();
                        self.store_call(
                            sid,
                            |reply| Op::GetProperty { user, device, property, reply },
                            move |found| ok(sid, found.as_ref().map(|r| &r.value)),
                        );
                    }
                    _ => {
                        self.out.send(ok(sid, None));
                    }
                }
            }
            name => {
                let filters = params.get("filters").cloned();
                self.subs.insert(sid, Subscription::Event { name: name.to_owned(), filters });
                self.out.send(ok(sid, None));
            }
        }
    }

    fn on_event(&mut self, event: &HubEvent) {
        let mut frames = Vec::new();
        for (sid, sub) in &self.subs {
            let payload = match (sub, event) {
                (Subscription::Topic { filter }, HubEvent::Topic { topic, payload, .. })
                    if topic_matches(filter, topic) =>
                {
                    frames.push(topic_frame(*sid, topic, payload));
                    continue;
                }
                (
                    Subscription::Property { device: d, property: p },
                    HubEvent::Property { device, property, value, .. },
                ) if d == device && p.as_ref().is_none_or(|p| p == property) => {
                    if p.is_some() {
                        value.clone()
                    } else {
                        pairs(&[("property", property.as_str().into()), ("value", value.clone())])
                    }
                }
                (Subscription::Event { name, filters }, HubEvent::Property { device, property, value, .. })
                    if name == "device_property_update" =>
                {
                    let body = pairs(&[
                        ("device", device.as_str().into()),
                        ("property", property.as_str().into()),
                        ("value", value.clone()),
                    ]);
                    if !filters_match(filters.as_ref(), &body) {
                        continue;
                    }
                    body
                }
                (Subscription::Event { name, filters }, HubEvent::State { device, connected, .. })
                    if name == "device_state_change" =>
                {
                    let state = if *connected { "connected" } else { "disconnected" };
                    let body = pairs(&[("device", device.as_str().into()), ("state", state.into())]);
                    if !filters_match(filters.as_ref(), &body) {
                        continue;
                    }
                    body
                }
                _ => continue,
            };
            frames.push(encode(MessageType::StreamData, *sid, None, Some(F::V(&payload)), None));
        }
        for f in frames {
            self.out.send(f);
        }
    }
}

fn pairs(items: &[(&str, Value)]) -> Value {
    Value::Map(items.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

/// `STREAM_DATA F1=sid F3={"topic": T, "payload": P}`.
fn topic_frame(sid: u16, topic: &str, payload: &Value) -> Vec<u8> {
    let body = pairs(&[("topic", topic.into()), ("payload", payload.clone())]);
    encode(MessageType::StreamData, sid, None, Some(F::V(&body)), None)
}

/// Every key of the subscription's `filters` map must equal the event's field.
fn filters_match(filters: Option<&Value>, body: &Value) -> bool {
    match filters.and_then(Value::as_map) {
        None => true,
        Some(pairs) => pairs.iter().all(|(k, v)| body.get(k).is_some_and(|b| b.value_eq(v))),
    }
}
