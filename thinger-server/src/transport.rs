//! Transports: TCP and TLS listeners, the WebSocket adapter, and each connection's writer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio_rustls::TlsAcceptor;

use crate::ws::{WsReader, WsWriter};

use futures_util::future::BoxFuture;
use tokio::sync::watch;

/// What runs a device connection once its transport is up: given the two halves, the peer
/// address and the transport's name. The listeners are handed one instead of knowing it.
pub(crate) type Handler = Arc<dyn Fn(Reader, Writer, SocketAddr, &'static str) -> BoxFuture<'static, ()> + Send + Sync>;

/// A byte stream (TCP or TLS over TCP).
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

type BoxedStream = Box<dyn ByteStream>;

/// Longest a single write to a device may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The receiving half of a device connection.
pub(crate) enum Reader {
    Io(ReadHalf<BoxedStream>),
    Ws(WsReader),
}

impl Reader {
    /// Appends received bytes to `buf`; `Ok(0)` at the end of the stream. Cancel safe.
    pub(crate) async fn read(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Reader::Io(r) => {
                buf.reserve(8192);
                r.read_buf(buf).await
            }
            Reader::Ws(s) => s.read(buf).await,
        }
    }
}

/// The sending half of a device connection.
pub(crate) enum Writer {
    Io(WriteHalf<BoxedStream>),
    Ws(WsWriter),
}

enum Out {
    Frame(Vec<u8>),
    Close,
}

/// Queue of frames to a device, drained by the connection's writer task. Never blocks; a
/// device that stops reading overflows it and is dropped.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    overflow: Arc<AtomicBool>,
    limit: usize,
    /// Signalled by the writer after every write (for [`Outbox::send_paced`]).
    room: Arc<Notify>,
}

impl Outbox {
    /// Queues a frame; false if the connection is closing or its queue overflowed.
    pub(crate) fn send(&self, frame: Vec<u8>) -> bool {
        if frame.is_empty() || self.overflow.load(Ordering::Relaxed) {
            return false;
        }
        let total = self.queued.fetch_add(frame.len(), Ordering::Relaxed).saturating_add(frame.len());
        if total > self.limit {
            self.overflow.store(true, Ordering::Relaxed);
            return false;
        }
        self.tx.send(Out::Frame(frame)).is_ok()
    }

    /// Queues a frame once the queue holds at most half its limit, waiting for the writer
    /// to drain it first: bulk stream data waits for a slow device instead of overflowing
    /// its queue (the other half stays free for replies and keep-alives). False once the
    /// connection is closing.
    pub(crate) async fn send_paced(&self, frame: Vec<u8>) -> bool {
        let high_water = self.limit / 2;
        loop {
            if self.overflowed() || self.tx.is_closed() {
                return false;
            }
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.queued.load(Ordering::Relaxed).saturating_add(frame.len()) <= high_water {
                return self.send(frame);
            }
            // The timer only matters when the writer is gone (no more notifications).
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// Whether the device stopped reading long enough to overflow the queue.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflow.load(Ordering::Relaxed)
    }

    /// Sends what is queued, then closes the transport.
    pub(crate) fn close(&self) {
        let _ = self.tx.send(Out::Close);
    }
}

/// Starts the writer task of a connection.
pub(crate) fn spawn_writer(writer: Writer, limit: usize) -> Outbox {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let overflow = Arc::new(AtomicBool::new(false));
    let room = Arc::new(Notify::new());
    tokio::spawn(write_loop(writer, rx, Arc::clone(&queued), Arc::clone(&room)));
    Outbox { tx, queued, overflow, limit, room }
}

async fn write_loop(
    mut writer: Writer,
    mut rx: mpsc::UnboundedReceiver<Out>,
    queued: Arc<AtomicUsize>,
    room: Arc<Notify>,
) {
    let mut closing = false;
    while !closing {
        let Some(first) = rx.recv().await else { break };
        let Out::Frame(mut batch) = first else { break };
        let result = match &mut writer {
            Writer::Io(w) => {
                // Coalesce what is already queued into one write.
                while batch.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(Out::Frame(more)) => batch.extend_from_slice(&more),
                        Ok(Out::Close) => {
                            closing = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let len = batch.len();
                let r = tokio::time::timeout(WRITE_TIMEOUT, async {
                    w.write_all(&batch).await?;
                    w.flush().await
                })
                .await;
                queued.fetch_sub(len, Ordering::Relaxed);
                r
            }
            Writer::Ws(s) => {
                let len = batch.len();
                let r = tokio::time::timeout(WRITE_TIMEOUT, s.send(&batch)).await;
                queued.fetch_sub(len, Ordering::Relaxed);
                r
            }
        };
        room.notify_waiters();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write to device failed");
                break;
            }
            Err(_) => {
                tracing::debug!("write to device timed out");
                break;
            }
        }
    }
    rx.close();
    room.notify_waiters();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        match &mut writer {
            Writer::Io(w) => {
                let _ = w.shutdown().await;
            }
            Writer::Ws(s) => s.close().await,
        }
    })
    .await;
}

/// Splits a byte stream into a reader and a writer.
pub(crate) fn split_stream(stream: BoxedStream) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(stream);
    (Reader::Io(r), Writer::Io(w))
}

/// The halves of an upgraded WebSocket.
pub(crate) fn ws_halves(reader: WsReader, writer: WsWriter) -> (Reader, Writer) {
    (Reader::Ws(reader), Writer::Ws(writer))
}

/// Accepts plain TCP devices until shutdown.
pub(crate) async fn accept_tcp(listener: TcpListener, handler: Handler, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (reader, writer) = split_stream(Box::new(stream));
                    tokio::spawn(handler(reader, writer, peer, "tcp"));
                }
                Err(e) => accept_error(e).await,
            },
        }
    }
}

/// Accepts TLS devices until shutdown; a handshake must finish within `handshake_timeout`.
pub(crate) async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let handler = Arc::clone(&handler);
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => {
                                let (reader, writer) = split_stream(Box::new(tls));
                                handler(reader, writer, peer, "tls").await;
                            }
                            Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
                Err(e) => accept_error(e).await,
            },
        }
    }
}

async fn accept_error(e: io::Error) {
    // Typically out of file descriptors: back off instead of spinning.
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Formats a peer address for logs and the device list.
pub(crate) fn peer_string(peer: SocketAddr) -> String {
    peer.to_string()
}
