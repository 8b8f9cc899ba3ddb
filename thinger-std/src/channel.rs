//! Channels: streams the server opens on a device resource and that carry values (usually
//! bytes) both ways — what the terminal, proxy and chunked file transfers of the Linux
//! gateway run on.
//!
//! Bind a [`ChannelHandler`] to a path with
//! [`ResourceEntry::set_channel`](crate::resources::ResourceEntry::set_channel). Every `START_STREAM` the server sends on that path
//! calls it with a [`ChannelRequest`]; the handler's future runs next to the connection and
//! answers with [`ChannelRequest::accept`] (then reads and writes the [`Channel`]) or
//! [`ChannelRequest::reject`]. When the server stops the stream, [`Channel::recv`] returns
//! `None`; when the device is done it calls [`ChannelSender::close`] (dropping every sender
//! closes it too). A connection that ends drops the handler futures.
//!
//! Backpressure is bounded both ways: at most [`INBOUND_ITEMS`] values wait for the
//! handler to read them (then the client stops reading the socket, and the server stops
//! sending), and sends wait while [`OUTBOUND_ITEMS`] values of all channels wait for the
//! session's transmit buffer.
//!
//! ```
//! use thinger_std::channel::channel;
//! use thinger_std::resources::Resources;
//! let mut thing = Resources::new();
//! // An echo channel: every value the server sends comes back.
//! thing.entry("$echo/:session").set_channel(channel(|request| async move {
//!     let Ok(mut ch) = request.accept(None::<()>).await else { return };
//!     while let Some(data) = ch.recv().await {
//!         if ch.sender().send_pson(data.raw().to_vec()).await.is_err() {
//!             break;
//!         }
//!     }
//! }));
//! assert!(thing.contains("$echo/:session"));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use thinger_core::pson::{self, Bytes, PsonRef, Value};
use thinger_core::resource::HandlerError;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::pson_util::{from_pson, to_pson};

/// Values from the server that may wait, per channel, for the handler to read them.
pub const INBOUND_ITEMS: usize = 16;
/// Values of all channels of a connection that may wait for the transmit buffer.
pub const OUTBOUND_ITEMS: usize = 32;

/// What a channel's future is.
pub(crate) type ChannelFuture = Pin<Box<dyn Future<Output = ()>>>;
pub(crate) type Start = Arc<Mutex<dyn FnMut(ChannelRequest) -> ChannelFuture + Send>>;

/// A handler for server-opened channels: made by [`channel`].
pub struct ChannelHandler {
    pub(crate) start: Start,
}

impl std::fmt::Debug for ChannelHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelHandler")
    }
}

/// A [`ChannelHandler`] from an async closure, called once per opened channel.
///
/// ```
/// let handler = thinger_std::channel::channel(|request| async move {
///     let _ = request.reject(thinger_std::dsl::HandlerError::new(403, "no")).await;
/// });
/// # let _ = handler;
/// ```
pub fn channel<F, Fut>(mut f: F) -> ChannelHandler
where
    F: FnMut(ChannelRequest) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let start: Start = Arc::new(Mutex::new(move |request| Box::pin(f(request)) as ChannelFuture));
    ChannelHandler { start }
}

/// What a channel's handle asks of the connection.
#[derive(Debug)]
pub(crate) enum Out {
    Accept(Option<Vec<u8>>),
    Reject(HandlerError),
    Data(Vec<u8>),
    Close,
}

/// The runner's side of one channel's handles.
pub(crate) struct Wiring {
    pub(crate) id: u16,
    pub(crate) out: mpsc::Sender<(u16, Out)>,
    pub(crate) inbound: mpsc::Receiver<Vec<u8>>,
    /// Set when the channel is gone (server stop, disconnect, device close).
    pub(crate) closed: Arc<AtomicBool>,
    /// The largest PSON value one `STREAM_DATA` can carry.
    pub(crate) max_value: usize,
}

/// A channel the server asked to open; answer with [`accept`](ChannelRequest::accept) or
/// [`reject`](ChannelRequest::reject) (dropping it unanswered rejects it with 500).
pub struct ChannelRequest {
    path: String,
    params: Option<Value>,
    wiring: Option<Wiring>,
}

impl std::fmt::Debug for ChannelRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRequest").field("path", &self.path).field("params", &self.params).finish()
    }
}

impl ChannelRequest {
    pub(crate) fn new(path: String, params: Option<Value>, wiring: Wiring) -> Self {
        ChannelRequest { path, params, wiring: Some(wiring) }
    }

    /// The path the server opened (e.g. `$terminal/abc`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The last segment of the path (the session name of `$terminal/:session`).
    pub fn session(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    /// The most bytes one `STREAM_DATA` of this channel carries (see
    /// [`ChannelSender::max_chunk`]).
    pub fn max_chunk(&self) -> usize {
        self.wiring.as_ref().map_or(1, |w| w.max_value.saturating_sub(10).max(1))
    }

    /// The START_STREAM parameters, as sent.
    pub fn params(&self) -> Option<&Value> {
        self.params.as_ref()
    }

    /// The parameters as a serde type.
    pub fn params_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let bytes = self.params.as_ref().map(|v| v.encode_to_vec());
        from_pson(bytes.as_deref()).map_err(Error::Decode)
    }

    /// Accepts: the server gets `OK` (with `reply` as its payload, e.g. `{"chunk_size": n}`).
    pub async fn accept<T: Serialize>(mut self, reply: Option<T>) -> Result<Channel, Error> {
        let wiring = self.wiring.take().ok_or(Error::Disconnected)?;
        let reply = reply.map(|r| to_pson(&r)).transpose().map_err(Error::Encode)?;
        wiring.out.send((wiring.id, Out::Accept(reply))).await.map_err(|_| Error::Disconnected)?;
        let sender = ChannelSender {
            inner: Arc::new(SenderInner {
                id: wiring.id,
                out: wiring.out,
                closed: wiring.closed,
                max_value: wiring.max_value,
            }),
        };
        Ok(Channel { inbound: wiring.inbound, sender })
    }

    /// Refuses: the server gets `ERROR F2=code F3={"error": message}`.
    pub async fn reject(mut self, error: HandlerError) -> Result<(), Error> {
        let wiring = self.wiring.take().ok_or(Error::Disconnected)?;
        wiring.closed.store(true, Ordering::Release);
        wiring.out.send((wiring.id, Out::Reject(error))).await.map_err(|_| Error::Disconnected)
    }
}

impl Drop for ChannelRequest {
    fn drop(&mut self) {
        if let Some(w) = self.wiring.take() {
            w.closed.store(true, Ordering::Release);
            let _ = w.out.try_send((w.id, Out::Reject(HandlerError::new(500, "channel not answered"))));
        }
    }
}

/// One value the server sent on a channel (its PSON bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelData(pub(crate) Vec<u8>);

impl ChannelData {
    /// The value's PSON bytes.
    pub fn raw(&self) -> &[u8] {
        &self.0
    }
    /// The bytes of a bytes value, or of a string (what a terminal's or proxy's data is).
    ///
    /// ```
    /// let d = thinger_std::channel::ChannelData::from_bytes(b"hi");
    /// assert_eq!(d.bytes(), Some(&b"hi"[..]));
    /// ```
    pub fn bytes(&self) -> Option<&[u8]> {
        match PsonRef::decode(&self.0).ok()? {
            PsonRef::Bytes(b) => Some(b),
            PsonRef::Str(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
    /// The value, decoded.
    pub fn value(&self) -> Option<Value> {
        PsonRef::decode(&self.0).ok().map(Value::from_ref)
    }
    /// The value as a serde type.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_pson(Some(&self.0)).map_err(Error::Decode)
    }
    /// A bytes value (as the server's terminal and proxy send them).
    pub fn from_bytes(bytes: &[u8]) -> ChannelData {
        ChannelData(pson_bytes(bytes))
    }
}

/// `bytes` as one PSON bytes value.
fn pson_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; bytes.len() + 10];
    let n = pson::encode_to_slice(&Bytes(bytes), &mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}

/// An accepted channel: read what the server sends, write with its [`ChannelSender`].
#[derive(Debug)]
pub struct Channel {
    inbound: mpsc::Receiver<Vec<u8>>,
    sender: ChannelSender,
}

impl Channel {
    /// The next value from the server; `None` once the server stopped the stream or the
    /// connection ended.
    pub async fn recv(&mut self) -> Option<ChannelData> {
        self.inbound.recv().await.map(ChannelData)
    }
    /// A sender for this channel (clones share it; the channel closes when all are gone).
    pub fn sender(&self) -> ChannelSender {
        self.sender.clone()
    }
    /// Splits into the sender and a receiver, for full duplex in two tasks.
    pub fn split(self) -> (ChannelSender, ChannelReceiver) {
        (self.sender, ChannelReceiver { inbound: self.inbound })
    }
}

/// The receiving half of a [`Channel`].
#[derive(Debug)]
pub struct ChannelReceiver {
    inbound: mpsc::Receiver<Vec<u8>>,
}

impl ChannelReceiver {
    /// As [`Channel::recv`].
    pub async fn recv(&mut self) -> Option<ChannelData> {
        self.inbound.recv().await.map(ChannelData)
    }
}

#[derive(Debug)]
struct SenderInner {
    id: u16,
    out: mpsc::Sender<(u16, Out)>,
    closed: Arc<AtomicBool>,
    max_value: usize,
}

impl Drop for SenderInner {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.out.try_send((self.id, Out::Close));
        }
    }
}

/// Sends on a channel; cheap to clone.
#[derive(Debug, Clone)]
pub struct ChannelSender {
    inner: Arc<SenderInner>,
}

impl ChannelSender {
    /// The channel's stream id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }
    /// Whether the channel is gone (stopped by the server, closed, or disconnected).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
    /// The most bytes one [`send_bytes`](Self::send_bytes) frame carries; larger sends are
    /// split.
    pub fn max_chunk(&self) -> usize {
        self.inner.max_value.saturating_sub(10).max(1)
    }
    /// Sends bytes (as PSON bytes values, split to fit frames); waits while the outbound
    /// queue is full. `Disconnected` once the channel is gone.
    pub async fn send_bytes(&self, bytes: &[u8]) -> Result<(), Error> {
        for chunk in bytes.chunks(self.max_chunk()) {
            self.send_pson(pson_bytes(chunk)).await?;
        }
        Ok(())
    }
    /// Sends a serde value (e.g. `{"ack": n, "bytes": len}`).
    pub async fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.send_pson(to_pson(value).map_err(Error::Encode)?).await
    }
    /// Sends a value already encoded as PSON. `TooLarge` when it exceeds one frame.
    pub async fn send_pson(&self, pson: Vec<u8>) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Disconnected);
        }
        if pson.len() > self.inner.max_value {
            return Err(Error::TooLarge);
        }
        self.inner.out.send((self.inner.id, Out::Data(pson))).await.map_err(|_| Error::Disconnected)
    }
    /// Stops the stream (`STOP_STREAM`), after everything sent before.
    pub async fn close(&self) {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            let _ = self.inner.out.send((self.inner.id, Out::Close)).await;
        }
    }
}
