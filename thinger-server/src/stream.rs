//! Byte streams to a device resource, for the gateway extensions (terminal, proxy, file
//! transfers, streamed commands): [`DeviceStream`], opened with
//! [`Server::open_stream`](crate::Server::open_stream).
//!
//! A stream is a START_STREAM the server sends on a resource path (`$terminal/abc`) with
//! parameters; once the device answers OK, STREAM_DATA flows both ways on its stream id
//! until either side sends STOP_STREAM. Sending waits while the device's send queue is half
//! full (a slow device slows its caller, never the server or another device); receiving
//! reads a per-stream buffer that the connection stops at
//! [`Limits::stream_buffer`](crate::Limits::stream_buffer) bytes, so a caller that does not
//! read costs bounded memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use thinger_core::iotmp::MessageType;
use thinger_core::pson::Value;
use tokio::sync::{mpsc, oneshot};

use crate::error::{DeviceError, StreamError};
use crate::hub::{Hub, Lookup};
use crate::transport::Outbox;
use crate::util::{F, approx_size, encode};
use crate::vocab::{Command, SessionEnd, SessionItem, SessionSink};

/// Bytes a STREAM_DATA frame adds around its payload (type, size, stream id, bytes header).
const FRAME_OVERHEAD: usize = 16;

/// Tells the connection to forget the session when the last handle goes.
struct Shared {
    key: u64,
    cmd: mpsc::UnboundedSender<Command>,
    out: Outbox,
    sid: u16,
    frame_limit: usize,
    ended: Arc<AtomicBool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.cmd.send(Command::CloseSession { key: self.key });
    }
}

/// An open byte stream to a device resource. Dropping it (or both halves of
/// [`DeviceStream::split`]) sends STOP_STREAM.
///
/// ```no_run
/// # async fn f(server: thinger_server::Server) -> Result<(), thinger_server::StreamError> {
/// use thinger_core::pson;
///
/// let mut term = server.open_stream("user1", "gw", "$terminal/s1", Some(pson!({"cols": 80, "rows": 24}))).await?;
/// term.send_bytes(b"echo hi\n").await?;
/// let output = term.recv_bytes().await?;
/// term.close();
/// # Ok(()) }
/// ```
pub struct DeviceStream {
    sender: StreamSender,
    receiver: StreamReceiver,
    params: Option<Value>,
    payload: Option<Value>,
}

/// The sending half of a [`DeviceStream`]; clones share the stream.
#[derive(Clone)]
pub struct StreamSender {
    shared: Arc<Shared>,
}

/// The receiving half of a [`DeviceStream`].
pub struct StreamReceiver {
    rx: mpsc::UnboundedReceiver<SessionItem>,
    buffered: Arc<AtomicUsize>,
    drained: Arc<tokio::sync::Notify>,
    end: Option<StreamError>,
    _shared: Arc<Shared>,
}

/// Closes a session whose opening the caller stopped waiting for.
struct OpenGuard {
    key: u64,
    cmd: Option<mpsc::UnboundedSender<Command>>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if let Some(cmd) = self.cmd.take() {
            let _ = cmd.send(Command::CloseSession { key: self.key });
        }
    }
}

/// Opens a stream (see [`Server::open_stream`](crate::Server::open_stream)).
pub(crate) async fn open(
    hub: &Hub,
    user: &str,
    device: &str,
    resource: &str,
    params: Option<Value>,
) -> Result<DeviceStream, StreamError> {
    let cmd = match hub.lookup(user, device) {
        Lookup::Unknown => return Err(DeviceError::UnknownDevice.into()),
        Lookup::Offline => return Err(DeviceError::Offline.into()),
        Lookup::Live(tx) => tx,
    };
    let key = hub.next_id();
    let (tx, rx) = mpsc::unbounded_channel();
    let buffered = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicBool::new(false));
    let limit = hub.config.limits.stream_buffer.max(1);
    let sink = SessionSink { tx, buffered: Arc::clone(&buffered), limit, ended: Arc::clone(&ended) };
    let (reply, wait) = oneshot::channel();
    let request = Command::OpenSession { key, resource: resource.to_owned(), params, sink, reply };
    cmd.send(request).map_err(|_| DeviceError::Offline)?;
    let mut guard = OpenGuard { key, cmd: Some(cmd.clone()) };
    let opened = match tokio::time::timeout(hub.config.device_timeout, wait).await {
        Err(_) => return Err(DeviceError::Timeout.into()),
        Ok(Err(_)) => return Err(DeviceError::Offline.into()),
        Ok(Ok(Err(e))) => return Err(e.into()),
        Ok(Ok(Ok(o))) => o,
    };
    guard.cmd = None;
    let drained = opened.drained;
    let shared =
        Arc::new(Shared { key, cmd, out: opened.out, sid: opened.sid, frame_limit: opened.frame_limit, ended });
    Ok(DeviceStream {
        sender: StreamSender { shared: Arc::clone(&shared) },
        receiver: StreamReceiver { rx, buffered, drained, end: None, _shared: shared },
        params: opened.params,
        payload: opened.payload,
    })
}

impl DeviceStream {
    /// The stream id the server chose.
    pub fn stream_id(&self) -> u16 {
        self.sender.shared.sid
    }

    /// The F3 payload of the device's OK (e.g. `{"chunk_size": 65536}` for a file transfer).
    pub fn opened(&self) -> Option<&Value> {
        self.payload.as_ref()
    }

    /// The F2 parameters of the device's OK.
    pub fn opened_params(&self) -> Option<&Value> {
        self.params.as_ref()
    }

    /// Sends one value as STREAM_DATA (see [`StreamSender::send`]).
    pub async fn send(&self, value: Value) -> Result<(), StreamError> {
        self.sender.send(value).await
    }

    /// Sends bytes as STREAM_DATA frames (see [`StreamSender::send_bytes`]).
    pub async fn send_bytes(&self, bytes: &[u8]) -> Result<(), StreamError> {
        self.sender.send_bytes(bytes).await
    }

    /// The next value from the device (see [`StreamReceiver::recv`]).
    pub async fn recv(&mut self) -> Result<Value, StreamError> {
        self.receiver.recv().await
    }

    /// The next bytes from the device (see [`StreamReceiver::recv_bytes`]).
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>, StreamError> {
        self.receiver.recv_bytes().await
    }

    /// Sends STOP_STREAM and forgets the stream.
    pub fn close(self) {
        self.sender.shared.ended.store(true, Ordering::Relaxed);
    }

    /// The two halves, to send and receive from different tasks.
    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.sender, self.receiver)
    }
}

impl StreamSender {
    /// Sends one value as a STREAM_DATA frame, waiting while the device's send queue is
    /// half full. [`StreamError::Closed`] once the stream ended, [`StreamError::TooLarge`]
    /// if the frame would not fit the device's frame limit.
    pub async fn send(&self, value: Value) -> Result<(), StreamError> {
        let s = &self.shared;
        if s.ended.load(Ordering::Relaxed) {
            return Err(StreamError::Closed);
        }
        let frame = encode(MessageType::StreamData, s.sid, None, Some(F::V(&value)), None);
        if frame.len() > s.frame_limit {
            return Err(StreamError::TooLarge { size: frame.len(), limit: s.frame_limit });
        }
        if !s.out.send_paced(frame).await {
            return Err(StreamError::Disconnected);
        }
        Ok(())
    }

    /// Sends bytes as PSON-bytes STREAM_DATA frames, as many as the device's frame limit
    /// needs (terminal input, proxy data, file chunks).
    pub async fn send_bytes(&self, bytes: &[u8]) -> Result<(), StreamError> {
        for chunk in bytes.chunks(self.max_chunk()) {
            self.send(Value::Bytes(chunk.to_vec())).await?;
        }
        Ok(())
    }

    /// The most bytes one [`StreamSender::send_bytes`] frame carries.
    pub fn max_chunk(&self) -> usize {
        self.shared.frame_limit.saturating_sub(FRAME_OVERHEAD).max(1)
    }

    /// Whether the stream ended (closed by either side, or the device disconnected).
    pub fn is_closed(&self) -> bool {
        self.shared.ended.load(Ordering::Relaxed) || self.shared.cmd.is_closed()
    }
}

impl StreamReceiver {
    /// The next STREAM_DATA payload from the device (null when it had none).
    /// [`StreamError::Closed`] after STOP_STREAM, [`StreamError::Disconnected`] when the
    /// connection ended, [`StreamError::Overflow`] when this side did not read in time;
    /// every later call returns the same error.
    pub async fn recv(&mut self) -> Result<Value, StreamError> {
        if let Some(e) = &self.end {
            return Err(e.clone());
        }
        let item = self.rx.recv().await;
        match item {
            Some(SessionItem::Data(v)) => {
                let size = approx_size(&v);
                self.buffered.fetch_sub(size.min(self.buffered.load(Ordering::Relaxed)), Ordering::Relaxed);
                self.drained.notify_one();
                Ok(v)
            }
            Some(SessionItem::End(end)) => {
                let e = match end {
                    SessionEnd::Closed => StreamError::Closed,
                    SessionEnd::Overflow(limit) => StreamError::Overflow { limit },
                };
                self.end = Some(e.clone());
                Err(e)
            }
            None => {
                self.end = Some(StreamError::Disconnected);
                Err(StreamError::Disconnected)
            }
        }
    }

    /// The next STREAM_DATA payload as bytes: PSON bytes as they are, a string as its
    /// UTF-8; other values are skipped.
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>, StreamError> {
        loop {
            match self.recv().await? {
                Value::Bytes(b) => return Ok(b),
                Value::Str(s) => return Ok(s.into_bytes()),
                other => tracing::debug!(?other, "skipped a non-bytes value on a byte stream"),
            }
        }
    }
}
