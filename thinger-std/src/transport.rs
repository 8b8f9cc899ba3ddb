//! Transports: TCP, TLS over TCP, and WebSocket (over either). They only move bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::error::ConnectError;
use crate::tls::settings::{TlsConfig, TlsFailure};

/// How the client reaches the server.
///
/// ```
/// use thinger_std::Transport;
/// assert_eq!(Transport::Tls.default_port(), 25206);
/// assert_eq!(Transport::Tcp.default_port(), 25204);
/// assert_eq!(Transport::websocket().default_port(), 443);
/// assert!(Transport::websocket().is_secure());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Transport {
    /// Plain TCP (port 25204): credentials travel in clear text. For a local server only.
    Tcp,
    /// TLS over TCP (port 25206), the default.
    #[default]
    Tls,
    /// IOTMP in binary WebSocket messages (subprotocol `iotmp`), for networks that only let
    /// HTTP(S) out.
    WebSocket {
        /// `wss://` (TLS, port 443) or `ws://` (port 80).
        secure: bool,
        /// The URL path, `/iotmp` on Thinger.io.
        path: String,
    },
}

impl Transport {
    /// `wss://…/iotmp`.
    ///
    /// ```
    /// assert_eq!(thinger_std::Transport::websocket(), thinger_std::Transport::WebSocket { secure: true, path: "/iotmp".into() });
    /// ```
    pub fn websocket() -> Transport {
        Transport::WebSocket { secure: true, path: "/iotmp".to_owned() }
    }

    /// `ws://…/iotmp` (no TLS).
    ///
    /// ```
    /// assert!(!thinger_std::Transport::websocket_plain().is_secure());
    /// ```
    pub fn websocket_plain() -> Transport {
        Transport::WebSocket { secure: false, path: "/iotmp".to_owned() }
    }

    /// Whether the transport runs over TLS.
    ///
    /// ```
    /// assert!(thinger_std::Transport::Tls.is_secure() && !thinger_std::Transport::Tcp.is_secure());
    /// ```
    pub fn is_secure(&self) -> bool {
        match self {
            Transport::Tcp => false,
            Transport::Tls => true,
            Transport::WebSocket { secure, .. } => *secure,
        }
    }

    /// The port used when none is set.
    ///
    /// ```
    /// assert_eq!(thinger_std::Transport::websocket_plain().default_port(), 80);
    /// ```
    pub fn default_port(&self) -> u16 {
        match self {
            Transport::Tcp => 25204,
            Transport::Tls => 25206,
            Transport::WebSocket { secure: true, .. } => 443,
            Transport::WebSocket { secure: false, .. } => 80,
        }
    }
}

/// A byte stream: TCP or TLS over TCP.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// An open connection.
pub(crate) enum Conn {
    Stream(Stream),
    Ws(Box<WebSocketStream<Stream>>),
}

impl Conn {
    /// Appends received bytes to `buf` (reading up to `chunk` bytes from a byte stream);
    /// 0 means the peer closed. Cancel safe: when dropped before completion, nothing was
    /// consumed.
    ///
    /// A byte stream is read into a buffer of the thread's (see [`read_scratch`]) and only
    /// what arrived is copied to `buf`: a connection waiting for input holds no read
    /// buffer of its own.
    pub(crate) async fn read(&mut self, buf: &mut Vec<u8>, chunk: usize) -> io::Result<usize> {
        match self {
            Conn::Stream(s) => std::future::poll_fn(|cx| read_scratch(cx, s, buf, chunk)).await,
            Conn::Ws(ws) => loop {
                match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(0),
                    Some(Ok(Message::Binary(data))) if !data.is_empty() => {
                        buf.extend_from_slice(&data);
                        return Ok(data.len());
                    }
                    Some(Ok(Message::Text(_))) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "text message on an IOTMP WebSocket"));
                    }
                    // Pings are answered by tungstenite; send the pong out now.
                    Some(Ok(Message::Ping(_))) => ws.flush().await.map_err(io::Error::other)?,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(io::Error::other(e)),
                }
            },
        }
    }

    /// Sends bytes (whole IOTMP frames).
    pub(crate) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Stream(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Conn::Ws(ws) => ws.send(Message::Binary(Bytes::copy_from_slice(data))).await.map_err(io::Error::other),
        }
    }

    /// Closes the connection politely (bounded in time by the caller).
    pub(crate) async fn close(&mut self) {
        match self {
            Conn::Stream(s) => {
                let _ = s.shutdown().await;
            }
            Conn::Ws(ws) => {
                let _ = ws.close(None).await;
            }
        }
    }

    /// The server's end-entity certificate (DER), on TLS connections.
    pub(crate) fn peer_certificate(&self) -> Option<Vec<u8>> {
        let stream = match self {
            Conn::Stream(s) => s,
            Conn::Ws(ws) => ws.get_ref(),
        };
        match stream {
            Stream::Tls(tls) => tls.get_ref().1.peer_certificates()?.first().map(|c| c.as_ref().to_vec()),
            Stream::Tcp(_) => None,
        }
    }
}

thread_local! {
    /// The read buffer the connections polled on this thread share (one poll at a time).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One read of up to `chunk` bytes into the thread's scratch buffer, appended to `buf`.
fn read_scratch(cx: &mut Context<'_>, s: &mut Stream, buf: &mut Vec<u8>, chunk: usize) -> Poll<io::Result<usize>> {
    let chunk = chunk.max(1);
    let mut read = |scratch: &mut Vec<u8>| {
        if scratch.len() < chunk {
            scratch.resize(chunk, 0);
        }
        let mut rb = ReadBuf::new(scratch.get_mut(..chunk).unwrap_or(&mut []));
        match Pin::new(&mut *s).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                buf.extend_from_slice(rb.filled());
                Poll::Ready(Ok(rb.filled().len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    };
    SCRATCH
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => read(&mut scratch),
            // Never while a poll is in progress on this thread; but if so, a buffer of its own.
            Err(_) => read(&mut Vec::new()),
        })
        // The thread is exiting: a buffer of its own.
        .unwrap_or_else(|_| read(&mut Vec::new()))
}

/// Where and how to connect.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) transport: Transport,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    pub(crate) server_name: Option<ServerName<'static>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) insecure: bool,
}

impl Target {
    pub(crate) fn new(
        host: &str,
        port: u16,
        transport: Transport,
        tls: &TlsConfig,
        connect_timeout: Duration,
    ) -> Result<Target, crate::BuildError> {
        let (config, server_name) = if transport.is_secure() {
            let name = tls.server_name_override().unwrap_or(host).to_owned();
            let server_name = ServerName::try_from(name)
                .map_err(|e| crate::BuildError::Config(format!("invalid TLS server name: {e}")))?;
            (Some(tls.client_config()?), Some(server_name))
        } else {
            (None, None)
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            transport,
            tls: config,
            server_name,
            connect_timeout,
            insecure: tls.accepts_invalid_certs(),
        })
    }

    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Opens the transport (TCP, then TLS, then the WebSocket upgrade) within the connect timeout.
pub(crate) async fn connect(target: &Target) -> Result<Conn, ConnectError> {
    match tokio::time::timeout(target.connect_timeout, connect_inner(target)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout),
    }
}

async fn connect_inner(target: &Target) -> Result<Conn, ConnectError> {
    let addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| ConnectError::Resolve(e.to_string()))?;
    let mut last_error = None;
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let tcp = match (tcp, last_error) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(ConnectError::from_io(&e)),
        (None, None) => return Err(ConnectError::Resolve(format!("{}: no address", target.host))),
    };
    let _ = tcp.set_nodelay(true);
    let stream = match (&target.tls, &target.server_name) {
        (Some(config), Some(name)) => {
            if target.insecure {
                tracing::warn!("connecting to {} WITHOUT certificate verification", target.address());
            }
            let tls = TlsConnector::from(config.clone())
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| ConnectError::from_io(&e))?;
            Stream::Tls(Box::new(tls))
        }
        _ => Stream::Tcp(tcp),
    };
    match &target.transport {
        Transport::WebSocket { secure, path } => {
            let scheme = if *secure { "wss" } else { "ws" };
            let url = format!("{scheme}://{}{path}", target.address());
            let mut request = url.into_client_request().map_err(|e| ConnectError::WebSocket(e.to_string()))?;
            request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("iotmp"));
            let (ws, _response) = tokio_tungstenite::client_async_with_config(request, stream, None)
                .await
                .map_err(|e| ConnectError::WebSocket(e.to_string()))?;
            Ok(Conn::Ws(Box::new(ws)))
        }
        Transport::Tcp | Transport::Tls => Ok(Conn::Stream(stream)),
    }
}

/// Connects with `tls` and returns the server's end-entity certificate (DER), e.g. to
/// compute a [`Pin`](crate::tls::Pin) on first use. The certificate is only as trusted as
/// `tls` made it.
///
/// ```no_run
/// # async fn demo() -> Result<(), thinger_std::ConnectError> {
/// use thinger_std::tls::{fetch_server_certificate, Pin, TlsConfig};
/// let der = fetch_server_certificate("iot.thinger.io", 25206, &TlsConfig::new()).await?;
/// println!("pin: {}", Pin::spki_of_certificate(&der).unwrap());
/// # Ok(()) }
/// ```
pub async fn fetch_server_certificate(host: &str, port: u16, tls: &TlsConfig) -> Result<Vec<u8>, ConnectError> {
    let target = Target::new(host, port, Transport::Tls, tls, Duration::from_secs(10))
        .map_err(|e| ConnectError::Tls(TlsFailure::Handshake(e.to_string())))?;
    let mut conn = connect(&target).await?;
    let cert = conn.peer_certificate();
    conn.close().await;
    cert.ok_or_else(|| ConnectError::Tls(TlsFailure::Handshake("no certificate presented".into())))
}
