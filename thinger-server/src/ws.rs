//! WebSocket IOTMP as the official clients speak it.
//!
//! The official Linux client sends IOTMP in TEXT frames whose bytes are not UTF-8, and
//! tungstenite (under axum's and tokio-tungstenite's WebSocket) validates every TEXT message
//! with no option to turn it off. So the upgrade is answered here and the frames are read
//! with tungstenite's public frame codec ([`FrameHeader`]), taking every data frame's payload
//! as raw bytes: IOTMP is a byte stream, so TEXT, BINARY and continuation frames all append
//! to it. Replies go out in the frame type the device used last. Buffers grow only with what
//! arrives (no fixed 128 KiB read buffer per socket).

use std::io::{self, Cursor};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Mutex;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

type Io = TokioIo<Upgraded>;

/// Checks an upgrade request; the 101 answer (with subprotocol `iotmp` when asked for).
pub(crate) fn handshake(headers: &HeaderMap) -> Result<Response, String> {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err("not a WebSocket upgrade".into());
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err("unsupported WebSocket version (13 expected)".into());
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or("missing Sec-WebSocket-Key")?;
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|e| e.to_string())?;
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if has(header::SEC_WEBSOCKET_PROTOCOL, "iotmp") {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("iotmp"));
    }
    Ok(response)
}

/// Waits for the upgrade to finish and splits the socket.
pub(crate) async fn upgraded(on_upgrade: OnUpgrade, max_frame: usize) -> io::Result<(WsReader, WsWriter)> {
    let io = TokioIo::new(on_upgrade.await.map_err(io::Error::other)?);
    let (r, w) = tokio::io::split(io);
    let text = Arc::new(AtomicBool::new(false));
    let w = Arc::new(Mutex::new(w));
    let reader =
        WsReader { io: r, buf: Vec::new(), max_frame, text: Arc::clone(&text), writer: Arc::clone(&w), closed: false };
    Ok((reader, WsWriter { io: w, text }))
}

/// The receiving half: appends the payload of every data frame to the IOTMP byte stream.
pub(crate) struct WsReader {
    io: ReadHalf<Io>,
    buf: Vec<u8>,
    max_frame: usize,
    /// Whether the device's last data frame was TEXT (the writer answers in kind).
    text: Arc<AtomicBool>,
    /// To answer PING with PONG.
    writer: Arc<Mutex<WriteHalf<Io>>>,
    closed: bool,
}

impl WsReader {
    /// Appends received IOTMP bytes to `out`; `Ok(0)` at a close frame or the end of the stream.
    /// Cancel safe: partial frames stay in the reader's own buffer.
    pub(crate) async fn read(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            if self.closed {
                return Ok(0);
            }
            if let Some(n) = self.take_frame(out).await? {
                if n > 0 {
                    return Ok(n);
                }
                continue;
            }
            self.buf.reserve(4096);
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(0);
            }
        }
    }

    /// Handles one complete frame from the buffer: `Some(bytes added)`, `None` if incomplete.
    async fn take_frame(&mut self, out: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let mut cursor = Cursor::new(&self.buf);
        let Some((header, len)) = FrameHeader::parse(&mut cursor).map_err(invalid)? else { return Ok(None) };
        let start = usize::try_from(cursor.position()).map_err(invalid)?;
        let len = usize::try_from(len).map_err(invalid)?;
        if len > self.max_frame {
            return Err(invalid(format!("WebSocket frame of {len} bytes exceeds the limit of {}", self.max_frame)));
        }
        let end = start.saturating_add(len);
        if self.buf.len() < end {
            return Ok(None);
        }
        let mut payload: Vec<u8> = self.buf.drain(..end).skip(start).collect();
        if let Some(mask) = header.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask.get(i % 4).copied().unwrap_or(0);
            }
        }
        match header.opcode {
            OpCode::Data(kind @ (Data::Text | Data::Binary | Data::Continue)) => {
                match kind {
                    Data::Text => self.text.store(true, Ordering::Relaxed),
                    Data::Binary => self.text.store(false, Ordering::Relaxed),
                    _ => {}
                }
                out.extend_from_slice(&payload);
                Ok(Some(payload.len()))
            }
            OpCode::Control(Control::Ping) => {
                let frame = encode(OpCode::Control(Control::Pong), &payload);
                let mut w = self.writer.lock().await;
                w.write_all(&frame).await?;
                w.flush().await?;
                Ok(Some(0))
            }
            OpCode::Control(Control::Pong) => Ok(Some(0)),
            OpCode::Control(Control::Close) => {
                self.buf.clear();
                self.closed = true;
                Ok(Some(0))
            }
            other => Err(invalid(format!("unsupported WebSocket opcode {other}"))),
        }
    }
}

/// The sending half: one WebSocket frame per IOTMP frame, TEXT or BINARY as the device uses.
pub(crate) struct WsWriter {
    io: Arc<Mutex<WriteHalf<Io>>>,
    text: Arc<AtomicBool>,
}

impl WsWriter {
    /// Sends IOTMP bytes as one data frame.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let kind = if self.text.load(Ordering::Relaxed) { Data::Text } else { Data::Binary };
        let frame = encode(OpCode::Data(kind), bytes);
        let mut w = self.io.lock().await;
        w.write_all(&frame).await?;
        w.flush().await
    }

    /// Sends a close frame and shuts the socket down.
    pub(crate) async fn close(&mut self) {
        let frame = encode(OpCode::Control(Control::Close), &[]);
        let mut w = self.io.lock().await;
        let _ = w.write_all(&frame).await;
        let _ = w.shutdown().await;
    }
}

/// An unmasked (server to client) frame.
fn encode(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader { opcode, ..FrameHeader::default() };
    let len = payload.len() as u64;
    let mut out = Vec::with_capacity(header.len(len) + payload.len());
    // Writing to a Vec cannot fail.
    let _ = header.format(len, &mut out);
    out.extend_from_slice(payload);
    out
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_unmasked_server_frames() {
        assert_eq!(encode(OpCode::Data(Data::Text), &[0x03, 0x18]), vec![0x81, 0x02, 0x03, 0x18]);
        assert_eq!(encode(OpCode::Data(Data::Binary), &[]), vec![0x82, 0x00]);
        assert_eq!(encode(OpCode::Data(Data::Binary), &[0; 200])[..4], [0x82, 126, 0, 200]);
    }
}
