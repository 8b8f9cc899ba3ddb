//! One device connection, from its first byte to its close.
//!
//! [`handshake`] reads and checks the CONNECT; [`state`] holds what a live connection
//! knows; the read loop here hands each frame to the concern that owns it: [`requests`]
//! (what the server asks of the device, and the streams it opens), [`cloud`] (the cloud
//! calls the device makes), [`sessions`] (byte streams opened for callers) and
//! [`subscriptions`] (the events the device subscribed to).

mod cloud;
mod handshake;
mod requests;
mod sessions;
mod state;
mod subscriptions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thinger_core::iotmp::{FrameError, MessageErrorKind, MessageType, RawFrame, parse_frame};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::guard::Refusal;
use crate::hub::{Hub, Live, RegisterError};
use crate::transport::{Reader, Writer, peer_string, spawn_writer};
use crate::util::{KEEP_ALIVE, disconnect, error, now_ms, ok, random_u64};
use crate::vocab::{
    Command, HubEvent, REASON_BUSY, REASON_PROTOCOL, REASON_SHUTDOWN, REASON_TIMEOUT, REFUSE_CREDENTIALS, REFUSE_FULL,
};
use handshake::{Authenticated, Refused, authenticate};
use state::{Conn, Flow};

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
    let out = spawn_writer(writer, MIN_OUTBOX_LIMIT.max(hub.config.max_frame_size.saturating_mul(16)));
    // Until it authenticates, a connection holds one of the few places for strangers.
    let permit = match hub.guard.admit(peer.ip()) {
        Ok(p) => p,
        Err(refusal) => {
            let reason = match refusal {
                Refusal::Busy => "too many connections waiting to authenticate".to_owned(),
                Refusal::LockedOut(d) => format!("too many failed authentications: retry in {} ms", d.as_millis()),
            };
            tracing::debug!(peer = %address, transport, "refused: {reason}");
            out.send(disconnect(REASON_BUSY, &reason));
            out.close();
            return;
        }
    };
    tracing::debug!(peer = %address, transport, "connection opened");
    let mut buf = Vec::new();
    let auth = tokio::time::timeout(hub.config.auth_timeout, authenticate(&hub, &mut reader, &mut buf, &out)).await;
    let session = match auth {
        Err(_) => {
            tracing::debug!(peer = %address, transport, "closed: no CONNECT in time");
            out.send(disconnect(REASON_TIMEOUT, "no CONNECT in time"));
            out.close();
            return;
        }
        Ok(Err(Refused::Credentials { sid, user, device })) => {
            // Wrong credentials: answered late when they keep coming for this device; the
            // attempt is logged in aggregate by the guard.
            let delay = hub.guard.failed(peer.ip(), &user, &device);
            tokio::time::sleep(delay.min(hub.config.auth_timeout)).await;
            out.send(error(sid, REFUSE_CREDENTIALS, "bad credentials"));
            out.close();
            return;
        }
        Ok(Err(Refused::Other(reason))) => {
            tracing::debug!(peer = %address, transport, "closed before authentication: {reason}");
            out.close();
            return;
        }
        Ok(Ok(s)) => s,
    };
    drop(permit);
    let Authenticated { sid, user, device, keepalive, consumed } = session;
    hub.guard.succeeded(&user, &device);
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

    let (event_tx, event_rx) = mpsc::channel(hub.config.limits.event_queue.max(1));
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
        sessions: HashMap::new(),
        drained: Arc::new(tokio::sync::Notify::new()),
        paused_since: None,
        next_sid: (random_u64() & 0xffff) as u16,
        frame_limit: hub.config.limits.device_frame_limit,
        events: event_tx,
        subscribed: false,
    };
    let reason = conn.run(reader, buf, cmd_rx, event_rx, keepalive).await;
    tracing::info!(peer = %address, transport, user = %conn.user, device = %conn.device, "disconnected: {reason}");
    conn.out.close();
    if conn.subscribed {
        hub.unsubscribe(&conn.user, conn_id);
    }
    hub.unregister(&conn.user, &conn.device, conn_id);
}

/// Sleeps until `at`, or forever without one.
async fn sleep_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Conn {
    async fn run(
        &mut self,
        mut reader: Reader,
        mut buf: Vec<u8>,
        mut cmd_rx: mpsc::UnboundedReceiver<Command>,
        mut event_rx: mpsc::Receiver<Arc<HubEvent>>,
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
            // A caller behind on a byte stream: stop reading from the device (TCP pushes
            // back on it) until the caller catches up, for at most the stall timeout.
            let paused = self.stream_backlogged();
            let stall = match (paused, self.paused_since) {
                (false, _) => {
                    self.paused_since = None;
                    None
                }
                (true, Some(t)) => Some(t),
                (true, None) => {
                    let t = Instant::now();
                    self.paused_since = Some(t);
                    Some(t)
                }
            };
            if paused {
                // Time paused is not the device's silence.
                deadline = Instant::now() + silence;
            }
            let stall_deadline = stall.map(|t| t + self.hub.config.limits.stream_stall_timeout);
            let drained = Arc::clone(&self.drained);
            tokio::select! {
                () = drained.notified(), if paused => {}
                () = sleep_or_never(stall_deadline) => self.stop_backlogged(),
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
                Some(event) = event_rx.recv() => self.on_event(&event),
                read = reader.read(&mut buf), if !paused => match read {
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
                if !self.on_session_stop(msg.stream_id) {
                    self.subs.remove(&msg.stream_id);
                }
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
}
