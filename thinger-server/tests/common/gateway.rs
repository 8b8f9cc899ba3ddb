//! A scripted gateway device that speaks the official IOTMP-Linux extension shapes over a
//! real socket: `$terminal/:session` echoes its input (like `cat` on a PTY) and takes
//! resizes at `$terminal/:session/params`; `$proxy/:session` really connects to its
//! `address:port` (127.0.0.1 only); `$fs/info`, `$fs/download/:session`,
//! `$fs/upload/:session` work on in-memory files with the ack window; `$cmd/:session`
//! streams `{out}`, `{err}`, `{exit}` then STOP_STREAM. Its decoder and encoder are core's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage, parse_frame};
use thinger_core::pson;
use thinger_core::pson::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::{connect_frame, enc};

/// Chunk size the emulated device announces and uses for downloads.
pub const CHUNK: usize = 64 * 1024;

/// What the test can see of the emulated device.
#[derive(Default)]
pub struct State {
    pub files: HashMap<String, Vec<u8>>,
    /// Terminal sizes by session, as last set.
    pub sizes: HashMap<String, (u64, u64)>,
    /// START_STREAM resources and their parameters, in order.
    pub opened: Vec<(String, Value)>,
    /// Stream ids the server stopped.
    pub stopped: Vec<u16>,
}

pub type Shared = Arc<Mutex<State>>;

enum Kind {
    Terminal,
    Proxy(mpsc::UnboundedSender<Vec<u8>>),
    Download { data: Vec<u8>, offset: usize, in_flight: usize, window: usize },
    Upload { path: String, size: usize, data: Vec<u8>, since_ack: usize, threshold: usize, acks: u64 },
    Cmd,
}

fn frame(kind: MessageType, sid: u16, params: Option<&Value>, payload: Option<&Value>) -> Vec<u8> {
    let mut m = OutgoingMessage::new(kind, sid);
    if let Some(p) = params {
        m = m.parameters(OutField::Pson(p));
    }
    if let Some(p) = payload {
        m = m.payload(OutField::Pson(p));
    }
    enc(m)
}

fn error(sid: u16, code: u64, message: &str) -> Vec<u8> {
    let payload = pson!({"error": message});
    enc(OutgoingMessage::new(MessageType::Error, sid)
        .parameters(OutField::Varint(code))
        .payload(OutField::Pson(&payload)))
}

fn data(sid: u16, v: &Value) -> Vec<u8> {
    frame(MessageType::StreamData, sid, None, Some(v))
}

/// Connects as `user`/`device` and serves until the server closes the connection.
pub async fn spawn(addr: SocketAddr, user: &str, device: &str) -> Shared {
    let state: Shared = Arc::new(Mutex::new(State::default()));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&connect_frame(user, device, "secret")).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if w.write_all(&f).await.is_err() {
                break;
            }
        }
    });
    // Wait for the CONNECT's OK before returning.
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = r.read(&mut chunk).await.unwrap();
        assert!(n > 0, "server closed before CONNECT was answered");
        buf.extend_from_slice(&chunk[..n]);
        if let Some((raw, n)) = parse_frame(&buf, usize::MAX).unwrap() {
            assert_eq!(raw.msg_type, MessageType::Ok as u32, "CONNECT refused");
            buf.drain(..n);
            break;
        }
    }
    let st = Arc::clone(&state);
    tokio::spawn(async move {
        let mut streams: HashMap<u16, Kind> = HashMap::new();
        loop {
            while let Some((raw, n)) = parse_frame(&buf, usize::MAX).unwrap() {
                let msg = raw.message().unwrap();
                let sid = msg.stream_id;
                let params = msg.parameters.map(|f| Value::from_ref(f.as_pson()));
                let payload = msg.payload.map(|f| Value::from_ref(f.as_pson()));
                let resource = msg.resource.map(|f| Value::from_ref(f.as_pson()));
                let kind = MessageType::from_u32(raw.msg_type);
                buf.drain(..n);
                let resource = resource.and_then(|r| r.as_str().map(str::to_owned)).unwrap_or_default();
                match kind {
                    Some(MessageType::StartStream) => {
                        let p = params.unwrap_or_default();
                        st.lock().unwrap().opened.push((resource.clone(), p.clone()));
                        start(&st, &out_tx, &mut streams, sid, &resource, &p).await;
                    }
                    Some(MessageType::StreamData) => {
                        on_data(&st, &out_tx, &mut streams, sid, payload.unwrap_or_default());
                    }
                    Some(MessageType::StopStream) => {
                        st.lock().unwrap().stopped.push(sid);
                        if let Some(Kind::Upload { path, size, data, .. }) = streams.remove(&sid)
                            && data.len() == size
                        {
                            st.lock().unwrap().files.insert(path, data);
                        }
                        let _ = out_tx.send(frame(MessageType::Ok, sid, None, None));
                    }
                    Some(MessageType::Run) => run(&st, &out_tx, sid, &resource, payload),
                    _ => {}
                }
            }
            let mut chunk = vec![0u8; 64 * 1024];
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    state
}

fn run(st: &Shared, out: &mpsc::UnboundedSender<Vec<u8>>, sid: u16, resource: &str, input: Option<Value>) {
    if let Some(path) = resource.strip_prefix("$fs/info/") {
        let size = st.lock().unwrap().files.get(path).map(Vec::len);
        let _ = out.send(match size {
            Some(n) => {
                frame(MessageType::Ok, sid, None, Some(&pson!({"name": path, "type": "file", "size": n as u64})))
            }
            None => error(sid, 404, "Path does not exist"),
        });
    } else if let Some(session) = resource.strip_prefix("$terminal/").and_then(|r| r.strip_suffix("/params")) {
        let input = input.unwrap_or_default();
        let size = input.get("size");
        let cols = size.and_then(|s| s.get("cols")).and_then(Value::as_u64).unwrap_or(0);
        let rows = size.and_then(|s| s.get("rows")).and_then(Value::as_u64).unwrap_or(0);
        if !st.lock().unwrap().sizes.contains_key(session) {
            let _ = out.send(error(sid, 404, "no such terminal session"));
        } else if cols == 0 || rows == 0 {
            let _ = out.send(error(sid, 400, "rows and cols must be greater than 0"));
        } else {
            st.lock().unwrap().sizes.insert(session.to_owned(), (cols, rows));
            let _ = out.send(frame(MessageType::Ok, sid, None, None));
        }
    } else {
        let _ = out.send(frame(MessageType::Error, sid, None, None));
    }
}

async fn start(
    st: &Shared,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    streams: &mut HashMap<u16, Kind>,
    sid: u16,
    resource: &str,
    p: &Value,
) {
    let num = |k: &str| p.get(k).and_then(Value::as_u64);
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(session) = resource.strip_prefix("$terminal/") {
        let (cols, rows) = (num("cols").unwrap_or(80), num("rows").unwrap_or(24));
        st.lock().unwrap().sizes.insert(session.to_owned(), (cols, rows));
        streams.insert(sid, Kind::Terminal);
        let _ = out.send(frame(MessageType::Ok, sid, None, None));
    } else if resource.starts_with("$proxy/") {
        let (address, port) = (text("address").unwrap_or_default(), num("port").unwrap_or(0));
        if text("protocol").as_deref() != Some("tcp") || address != "127.0.0.1" || port == 0 {
            let _ = out.send(error(sid, 403, "target not allowed"));
            return;
        }
        let Ok(target) = TcpStream::connect((address.as_str(), port as u16)).await else {
            let _ = out.send(error(sid, 502, "cannot connect"));
            return;
        };
        let _ = target.set_nodelay(true);
        let (mut tr, mut tw) = target.into_split();
        let (to_target, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if tw.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
        streams.insert(sid, Kind::Proxy(to_target));
        let _ = out.send(frame(MessageType::Ok, sid, None, None));
        let out = out.clone();
        tokio::spawn(async move {
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                match tr.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let _ = out.send(data(sid, &Value::Bytes(chunk[..n].to_vec())));
                    }
                }
            }
            let _ = out.send(frame(MessageType::StopStream, sid, None, None));
        });
    } else if resource.starts_with("$fs/download/") {
        let path = text("path").unwrap_or_default();
        let Some(file) = st.lock().unwrap().files.get(&path).cloned() else {
            let _ = out.send(error(sid, 404, "File not found"));
            return;
        };
        let window = num("window_size").map_or(2 * 1024 * 1024, |w| w as usize);
        let ok = pson!({"chunk_size": CHUNK as u64});
        let _ = out.send(frame(MessageType::Ok, sid, Some(&ok), Some(&ok)));
        let mut k = Kind::Download { data: file, offset: 0, in_flight: 0, window };
        pump(out, sid, &mut k);
        streams.insert(sid, k);
    } else if resource.starts_with("$fs/upload/") {
        let (path, size) = (text("path").unwrap_or_default(), num("size").unwrap_or(0) as usize);
        if path.is_empty() || size == 0 {
            let _ = out.send(frame(MessageType::Error, sid, None, None));
            return;
        }
        let threshold = (size / 100).clamp(CHUNK, 1024 * 1024);
        let ok = pson!({"chunk_size": CHUNK as u64});
        let _ = out.send(frame(MessageType::Ok, sid, Some(&ok), Some(&ok)));
        streams.insert(sid, Kind::Upload { path, size, data: Vec::new(), since_ack: 0, threshold, acks: 0 });
    } else if resource.starts_with("$cmd/") {
        let cmd = text("cmd").unwrap_or_default();
        if cmd.is_empty() {
            let _ = out.send(error(sid, 400, "no command provided"));
            return;
        }
        streams.insert(sid, Kind::Cmd);
        let _ = out.send(frame(MessageType::Ok, sid, None, None));
        let _ = out.send(data(sid, &pson!({"out": Value::Bytes(format!("ran {cmd}\n").into_bytes())})));
        let _ = out.send(data(sid, &pson!({"err": Value::Bytes(b"warn\n".to_vec())})));
        let _ = out.send(data(sid, &pson!({"exit": 3u64})));
        let _ = out.send(frame(MessageType::StopStream, sid, None, None));
        streams.remove(&sid);
    } else {
        let _ = out.send(frame(MessageType::Error, sid, None, None));
    }
}

/// Sends download chunks while the window has room.
fn pump(out: &mpsc::UnboundedSender<Vec<u8>>, sid: u16, k: &mut Kind) {
    if let Kind::Download { data: file, offset, in_flight, window } = k {
        while *in_flight < *window && *offset < file.len() {
            let end = (*offset + CHUNK).min(file.len());
            let _ = out.send(data(sid, &Value::Bytes(file[*offset..end].to_vec())));
            *in_flight += end - *offset;
            *offset = end;
        }
    }
}

fn on_data(_st: &Shared, out: &mpsc::UnboundedSender<Vec<u8>>, streams: &mut HashMap<u16, Kind>, sid: u16, v: Value) {
    let Some(k) = streams.get_mut(&sid) else { return };
    match k {
        Kind::Terminal => {
            if let Value::Bytes(_) | Value::Str(_) = v {
                let _ = out.send(data(sid, &v));
            }
        }
        Kind::Proxy(to_target) => {
            if let Value::Bytes(b) = v {
                let _ = to_target.send(b);
            }
        }
        Kind::Download { in_flight, .. } => {
            let acked = v.get("bytes").and_then(Value::as_u64).unwrap_or(CHUNK as u64) as usize;
            *in_flight = in_flight.saturating_sub(acked);
            pump(out, sid, k);
        }
        Kind::Upload { size, data: file, since_ack, threshold, acks, .. } => {
            if let Value::Bytes(b) = v {
                file.extend_from_slice(&b);
                *since_ack += b.len();
                let last = file.len() >= *size;
                if *since_ack >= *threshold || last {
                    *acks += 1;
                    let _ = out.send(data(sid, &pson!({"ack": *acks, "bytes": *since_ack as u64})));
                    *since_ack = 0;
                }
            }
        }
        Kind::Cmd => {}
    }
}
