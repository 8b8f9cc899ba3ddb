//! A scripted IOTMP server peer over a real socket: accepts one client, answers its CONNECT,
//! then sends and receives frames as a test (or the benchmark) says.
#![allow(dead_code)]

use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage, parse_frame};
use thinger_core::pson::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A received frame, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub kind: MessageType,
    pub id: u16,
    pub params: Option<Value>,
    pub payload: Option<Value>,
    pub resource: Option<Value>,
    /// Its size on the wire.
    pub len: usize,
}

pub struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Peer {
    /// Accepts a client and authenticates it (OK to its CONNECT).
    pub async fn accept(listener: &TcpListener) -> (Peer, Frame) {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut peer = Peer { stream, buf: Vec::new(), out: Vec::new() };
        let connect = peer.recv().await.expect("CONNECT");
        assert_eq!(connect.kind, MessageType::Connect);
        peer.send(OutgoingMessage::new(MessageType::Ok, connect.id)).await;
        (peer, connect)
    }

    /// Encodes a frame into the output buffer (sent by `flush`).
    pub fn queue(&mut self, msg: OutgoingMessage<'_>) {
        let mut frame = vec![0u8; msg.encoded_len()];
        let n = msg.encode(&mut frame).unwrap();
        self.out.extend_from_slice(&frame[..n]);
    }

    /// Frames queued and not yet flushed.
    pub fn out_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// The socket.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub async fn flush(&mut self) {
        self.stream.write_all(&self.out).await.unwrap();
        self.out.clear();
    }

    pub async fn send(&mut self, msg: OutgoingMessage<'_>) {
        self.queue(msg);
        self.flush().await;
    }

    /// `RUN F1=id F4=path [F3=input]`.
    pub fn queue_run(&mut self, id: u16, path: &str, input: Option<&[u8]>) {
        let path = thinger_core::pson::Value::Str(path.to_owned()).encode_to_vec();
        let mut msg = OutgoingMessage::new(MessageType::Run, id).resource(OutField::RawPson(&path));
        if let Some(input) = input {
            msg = msg.payload(OutField::RawPson(input));
        }
        self.queue(msg);
    }

    /// `START_STREAM F1=id F4=path [F2={"interval": ms}]`.
    pub fn queue_start_stream(&mut self, id: u16, path: &str, interval_ms: Option<u64>) {
        let path = Value::Str(path.to_owned()).encode_to_vec();
        let params = interval_ms.map(|ms| Value::Map(vec![("interval".into(), Value::Uint(ms))]).encode_to_vec());
        let mut msg = OutgoingMessage::new(MessageType::StartStream, id).resource(OutField::RawPson(&path));
        if let Some(p) = &params {
            msg = msg.parameters(OutField::RawPson(p));
        }
        self.queue(msg);
    }

    /// The next frame from the client; `None` when it closed.
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf, 1 << 20).unwrap() {
                let m = frame.message().unwrap();
                let field = |f: Option<thinger_core::iotmp::FieldValue<'_>>| f.map(|v| Value::from_ref(v.as_pson()));
                let out = Frame {
                    kind: m.kind,
                    id: m.stream_id,
                    params: field(m.parameters),
                    payload: field(m.payload),
                    resource: field(m.resource),
                    len: used,
                };
                self.buf.drain(..used);
                return Some(out);
            }
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next frame that is not a KEEP_ALIVE.
    pub async fn recv_skipping_keepalives(&mut self) -> Option<Frame> {
        loop {
            let f = self.recv().await?;
            if f.kind != MessageType::KeepAlive {
                return Some(f);
            }
        }
    }
}
