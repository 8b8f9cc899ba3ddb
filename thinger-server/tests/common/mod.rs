//! Scripted IOTMP devices and a tiny HTTP client for the server's tests.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage, parse_frame};
use thinger_core::pson::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub mod gateway;

pub const TIMEOUT: Duration = Duration::from_secs(5);

pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

enum Io {
    Bytes(Box<dyn Stream>),
    Ws(Box<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>>),
}

/// Encodes a frame with thinger-core's encoder.
pub fn enc(msg: OutgoingMessage<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; msg.encoded_len()];
    let n = msg.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// `CONNECT F1=1 F3=[user, device, credential]`.
pub fn connect_frame(user: &str, device: &str, credential: &str) -> Vec<u8> {
    let creds = [user, device, credential];
    enc(OutgoingMessage::new(MessageType::Connect, 1).payload(OutField::Pson(&creds)))
}

/// A decoded frame with owned values.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u32,
    pub sid: u16,
    pub params: Option<Value>,
    pub payload: Option<Value>,
    pub resource: Option<Value>,
    pub raw: Vec<u8>,
}

impl Frame {
    pub fn is(&self, kind: MessageType) -> bool {
        self.kind == kind as u32
    }
}

/// A scripted device: writes frames with thinger-core's encoder, reads them with its decoder.
pub struct Device {
    io: Io,
    buf: Vec<u8>,
}

impl Device {
    pub async fn tcp(addr: SocketAddr) -> Device {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Device { io: Io::Bytes(Box::new(s)), buf: Vec::new() }
    }

    pub fn from_stream(s: TcpStream) -> Device {
        s.set_nodelay(true).unwrap();
        Device { io: Io::Bytes(Box::new(s)), buf: Vec::new() }
    }

    pub async fn tls(addr: SocketAddr, ca_pem: &str, name: &str) -> io::Result<Device> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
            let cert: rustls_pki_types::CertificateDer<'static> = cert.map_err(io::Error::other)?;
            roots.add(cert).map_err(io::Error::other)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await?;
        let server_name = rustls_pki_types::ServerName::try_from(name.to_owned()).map_err(io::Error::other)?;
        let tls = connector.connect(server_name, tcp).await?;
        Ok(Device { io: Io::Bytes(Box::new(tls)), buf: Vec::new() })
    }

    pub async fn ws(url: &str) -> Device {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "iotmp".parse().unwrap());
        let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.headers().get("sec-websocket-protocol").unwrap(), "iotmp");
        Device { io: Io::Ws(Box::new(ws)), buf: Vec::new() }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.io {
            Io::Bytes(s) => {
                s.write_all(bytes).await.unwrap();
                s.flush().await.unwrap();
            }
            Io::Ws(ws) => ws.send(WsMessage::Binary(bytes.to_vec().into())).await.unwrap(),
        }
    }

    /// Like `send_raw` but tolerates a connection the server already closed.
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        match &mut self.io {
            Io::Bytes(s) => s.write_all(bytes).await.is_ok() && s.flush().await.is_ok(),
            Io::Ws(ws) => ws.send(WsMessage::Binary(bytes.to_vec().into())).await.is_ok(),
        }
    }

    /// Sends an encoded frame (see [`enc`]; `OutgoingMessage` is not `Send`, so it is
    /// encoded before any await).
    pub async fn send(&mut self, frame: Vec<u8>) {
        self.send_raw(&frame).await;
    }

    fn take_frame(&mut self) -> Option<Frame> {
        let (raw, n) = parse_frame(&self.buf, usize::MAX).unwrap()?;
        let msg = raw.message().unwrap();
        let frame = Frame {
            kind: raw.msg_type,
            sid: msg.stream_id,
            params: msg.parameters.map(|f| Value::from_ref(f.as_pson())),
            payload: msg.payload.map(|f| Value::from_ref(f.as_pson())),
            resource: msg.resource.map(|f| Value::from_ref(f.as_pson())),
            raw: self.buf[..n].to_vec(),
        };
        self.buf.drain(..n);
        Some(frame)
    }

    /// Next frame; `Ok(None)` when the server closed the connection.
    pub async fn recv_within(&mut self, timeout: Duration) -> Result<Option<Frame>, tokio::time::error::Elapsed> {
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(f) = self.take_frame() {
                    return Some(f);
                }
                match &mut self.io {
                    Io::Bytes(s) => {
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return None,
                            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    Io::Ws(ws) => match ws.next().await {
                        Some(Ok(WsMessage::Binary(b))) => self.buf.extend_from_slice(&b),
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
                        Some(Ok(_)) => {}
                    },
                }
            }
        })
        .await
    }

    /// Next frame within 5 s (panics on timeout); `None` when the connection closed.
    pub async fn recv(&mut self) -> Option<Frame> {
        self.recv_within(TIMEOUT).await.expect("no frame from the server in time")
    }

    /// Next frame, which must exist.
    pub async fn frame(&mut self) -> Frame {
        self.recv().await.expect("connection closed")
    }

    /// Reads until the server closes; returns the frames seen on the way.
    pub async fn until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv().await {
            frames.push(f);
        }
        frames
    }

    /// Sends CONNECT (stream 1) and returns the server's answer.
    pub async fn connect(&mut self, user: &str, device: &str, credential: &str) -> Frame {
        let f = connect_frame(user, device, credential);
        self.send(f).await;
        self.frame().await
    }

    /// CONNECT with a keep-alive parameter (seconds).
    pub async fn connect_ka(&mut self, user: &str, device: &str, credential: &str, ka: u64) -> Frame {
        let creds = [user, device, credential];
        let params = thinger_core::pson!({"ka": ka});
        let f = enc(OutgoingMessage::new(MessageType::Connect, 1)
            .parameters(OutField::Pson(&params))
            .payload(OutField::Pson(&creds)));
        self.send(f).await;
        self.frame().await
    }

    /// A cloud call in the Linux placement (F4 = code, F2 = id) and its reply.
    pub async fn call(&mut self, sid: u16, code: u64, id: &Value, data: Option<&Value>) -> Frame {
        let f = {
            let mut msg = OutgoingMessage::new(MessageType::Run, sid)
                .parameters(OutField::Pson(id))
                .resource(OutField::Varint(code));
            if let Some(d) = data {
                msg = msg.payload(OutField::Pson(d));
            }
            enc(msg)
        };
        self.send(f).await;
        self.reply(sid).await
    }

    /// Waits for the OK/ERROR with this stream id, skipping anything else.
    pub async fn reply(&mut self, sid: u16) -> Frame {
        loop {
            let f = self.frame().await;
            if (f.is(MessageType::Ok) || f.is(MessageType::Error)) && f.sid == sid {
                return f;
            }
        }
    }

    /// Opens a subscription (START_STREAM F4 = 8) and returns the server's reply.
    pub async fn subscribe(&mut self, sid: u16, params: &Value) -> Frame {
        let f = enc(OutgoingMessage::new(MessageType::StartStream, sid)
            .parameters(OutField::Pson(params))
            .resource(OutField::Varint(8)));
        self.send(f).await;
        self.reply(sid).await
    }

    /// Answers one server request the way a device does: `RUN` of `resource` with `answer`
    /// (OK with that payload); returns the request.
    pub async fn answer_run(&mut self, answer: Option<&Value>) -> Frame {
        let req = self.frame().await;
        assert!(req.is(MessageType::Run), "expected RUN, got {req:?}");
        let f = {
            let mut msg = OutgoingMessage::new(MessageType::Ok, req.sid);
            if let Some(a) = answer {
                msg = msg.payload(OutField::Pson(a));
            }
            enc(msg)
        };
        self.send(f).await;
        req
    }
}

/// Starts a device over TCP and authenticates it (any credentials accepted by `local()`).
pub async fn online(addr: SocketAddr, user: &str, device: &str) -> Device {
    let mut d = Device::tcp(addr).await;
    let reply = d.connect(user, device, "secret").await;
    assert!(reply.is(MessageType::Ok), "CONNECT refused: {reply:?}");
    d
}

/// A minimal HTTP/1.1 request; returns the status and the body parsed as JSON (Null if empty).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut raw)).await.expect("HTTP timeout").unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").expect("no header end");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(rest) } else { rest.to_owned() };
    let json = if body.trim().is_empty() { serde_json::Value::Null } else { serde_json::from_str(&body).unwrap() };
    (status, json)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Opens a server-sent-events stream and collects its `data:` lines for `duration`.
/// Returns the HTTP status and the data lines.
pub async fn sse(addr: SocketAddr, path: &str, duration: Duration) -> (u16, Vec<String>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(duration, async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let data = text.lines().filter_map(|l| l.strip_prefix("data:")).map(|l| l.trim().to_owned()).collect();
    (status, data)
}

/// A unique temporary directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "thinger-server-test-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
