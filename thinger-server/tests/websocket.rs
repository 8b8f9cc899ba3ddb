//! WebSocket IOTMP as the official Linux client speaks it: `wss://HOST/iotmp`, subprotocol
//! `iotmp`, IOTMP in TEXT frames whose bytes are not UTF-8, answered in TEXT frames; and the
//! generated CA kept in the data dir across restarts.

mod common;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use common::{connect_frame, enc, http, temp_dir};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage, parse_frame};
use thinger_core::pson::Value;
use thinger_server::{Server, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

async fn tls_stream(port: u16, ca_pem: &str) -> Box<dyn Stream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    Box::new(tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap())
}

/// A raw WebSocket client: it sends IOTMP in TEXT frames, as the official client does, and
/// reads frames without validating TEXT payloads.
struct RawWs {
    io: Box<dyn Stream>,
    buf: Vec<u8>,
}

impl RawWs {
    async fn open(mut io: Box<dyn Stream>) -> RawWs {
        let request = "GET /iotmp HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                       Sec-WebSocket-Protocol: iotmp\r\n\r\n";
        io.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let end = loop {
            let mut chunk = [0u8; 1024];
            let n = io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("sec-websocket-protocol: iotmp"), "{head}");
        assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
        buf.drain(..end);
        RawWs { io, buf }
    }

    async fn send(&mut self, opcode: Data, payload: &[u8]) {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let header = FrameHeader { opcode: OpCode::Data(opcode), mask: Some(mask), ..FrameHeader::default() };
        let mut out = Vec::new();
        header.format(payload.len() as u64, &mut out).unwrap();
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.io.write_all(&out).await.unwrap();
    }

    /// The next data frame: its opcode and the IOTMP frame it carries.
    async fn recv(&mut self) -> (OpCode, Vec<u8>) {
        loop {
            let mut cursor = Cursor::new(&self.buf);
            if let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() {
                let start = cursor.position() as usize;
                if self.buf.len() >= start + len as usize {
                    assert!(header.mask.is_none(), "server frames are not masked");
                    let payload = self.buf[start..start + len as usize].to_vec();
                    self.buf.drain(..start + len as usize);
                    return (header.opcode, payload);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.io.read(&mut chunk)).await.unwrap().unwrap();
            assert!(n > 0, "closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn kind(frame: &[u8]) -> (u32, u16) {
    let (raw, _) = parse_frame(frame, usize::MAX).unwrap().unwrap();
    (raw.msg_type, raw.message().unwrap().stream_id)
}

#[tokio::test]
async fn iotmp_in_text_frames_over_wss_is_authenticated_and_answered_in_text() {
    let server = Server::start(ServerConfig::local()).await.unwrap();
    let port = server.https_addr().unwrap().port();
    assert_eq!(server.wss_url().unwrap(), format!("wss://localhost:{port}/iotmp"));
    let mut ws = RawWs::open(tls_stream(port, &server.ca_cert_pem().unwrap()).await).await;
    let connect = connect_frame("user1", "official", "secret");
    assert!(std::str::from_utf8(&connect).is_err(), "the CONNECT must not be valid UTF-8");
    ws.send(Data::Text, &connect).await;
    let (opcode, ok) = ws.recv().await;
    assert_eq!(opcode, OpCode::Data(Data::Text));
    assert_eq!(kind(&ok), (MessageType::Ok as u32, 1));
    assert!(server.is_connected("user1", "official"));

    // A REST call reaches the device as RUN in a TEXT frame; its TEXT answer goes back.
    let addr = server.http_addr();
    let rest = tokio::spawn(async move {
        http(addr, "GET", "/v3/users/user1/devices/official/resources/millis", None, None).await
    });
    let (opcode, run) = ws.recv().await;
    assert_eq!(opcode, OpCode::Data(Data::Text));
    let (msg_type, sid) = kind(&run);
    assert_eq!(msg_type, MessageType::Run as u32);
    let answer = enc(OutgoingMessage::new(MessageType::Ok, sid).payload(OutField::Pson(&Value::Uint(3809))));
    ws.send(Data::Text, &answer).await;
    assert_eq!(rest.await.unwrap(), (200, serde_json::json!(3809)));

    // A device that switches to BINARY is answered in BINARY.
    ws.send(Data::Binary, &[0x05, 0x00]).await;
    let (opcode, keepalive) = ws.recv().await;
    assert_eq!((opcode, keepalive), (OpCode::Data(Data::Binary), vec![0x05, 0x00]));
    // The device list says how it is connected.
    let (_, device) = http(addr, "GET", "/v1/users/user1/devices/official", None, None).await;
    assert_eq!(device["connection"]["transport"], "wss");
    server.shutdown().await;
}

#[tokio::test]
async fn the_generated_ca_is_kept_in_the_data_dir_and_reused() {
    let dir = temp_dir("ca");
    let first = Server::start(ServerConfig::local().data_dir(&dir)).await.unwrap();
    let ca = first.ca_cert_pem().unwrap();
    first.shutdown().await;
    assert_eq!(std::fs::read_to_string(dir.join("ca.pem")).unwrap(), ca);
    let second = Server::start(ServerConfig::local().data_dir(&dir)).await.unwrap();
    assert_eq!(second.ca_cert_pem().unwrap(), ca);
    // A client that trusts the first run's CA reaches the second run over TLS.
    let port = second.https_addr().unwrap().port();
    let mut ws = RawWs::open(tls_stream(port, &ca).await).await;
    ws.send(Data::Binary, &connect_frame("u", "d", "c")).await;
    let (opcode, ok) = ws.recv().await;
    assert_eq!((opcode, kind(&ok).0), (OpCode::Data(Data::Binary), MessageType::Ok as u32));
    second.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
