//! Gateway extension throughput through the local server: chunked file upload and download
//! over the REST routes, and proxy tunnels in each direction, against the scripted
//! IOTMP-Linux-shaped device of the tests (`tests/common/gateway.rs`; in-memory files, a real
//! TCP target for the proxy) over loopback TCP. It measures the server's side of each
//! extension (framing, ack windows, pacing, HTTP); a real device adds its own disk and PTY.
//!
//! ```text
//! cargo bench -p thinger-server --bench gateway            # 5 runs of each row
//! cargo bench -p thinger-server --bench gateway -- 3       # runs per row
//! ```

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::gateway;
use serde_json::json;
use thinger_server::{Limits, Server, ServerConfig, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FILE: usize = 32 * 1024 * 1024;
const TUNNEL: usize = 64 * 1024 * 1024;

/// Sends a request with a body and reads the whole response; returns the body length.
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::with_capacity(body.len().max(FILE) + 4096);
    s.read_to_end(&mut raw).await.unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&raw[9..12]).unwrap().parse().unwrap();
    (status, raw.len() - end - 4)
}

fn mib_s(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / 1_048_576.0 / t.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// A TCP target that counts what it receives and reports when `expect` bytes arrived.
async fn sink(expect: usize) -> (SocketAddr, tokio::sync::oneshot::Receiver<Instant>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        while n < expect {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        let _ = tx.send(Instant::now());
    });
    (addr, rx)
}

/// A TCP target that sends `total` bytes to whoever connects.
async fn source(total: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let chunk = vec![0x5au8; 256 * 1024];
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            if s.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            sent += n;
        }
        let _ = s.shutdown().await;
    });
    addr
}

async fn listener(server: &Server, target: SocketAddr) -> SocketAddr {
    let body = json!({"address": "127.0.0.1", "port": target.port()}).to_string();
    let (status, created) =
        common::http(server.http_addr(), "POST", "/v3/users/u/devices/gw/proxy/listeners", Some(&body), None).await;
    assert_eq!(status, 201);
    created["listen"].as_str().unwrap().parse().unwrap()
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let limits = Limits { max_proxy_listeners: 1000, ..Limits::default() };
        let server = Server::start(ServerConfig::local().tls(TlsMode::Off).limits(limits)).await.unwrap();
        let dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
        let file: Vec<u8> = (0..FILE as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let (mut up, mut down, mut p_up, mut p_down) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let head = format!("PUT /v3/users/u/devices/gw/fs/upload/bench.bin HTTP/1.1\r\nContent-Length: {FILE}");
            let t = Instant::now();
            let (status, _) = exchange(server.http_addr(), &head, &file).await;
            up.push(mib_s(FILE, t.elapsed()));
            assert_eq!(status, 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(dev.lock().unwrap().files.get("bench.bin").map(Vec::len), Some(FILE));

            let t = Instant::now();
            let (status, n) =
                exchange(server.http_addr(), "GET /v3/users/u/devices/gw/fs/download/bench.bin HTTP/1.1", b"").await;
            down.push(mib_s(FILE, t.elapsed()));
            assert_eq!((status, n), (200, FILE));

            // Proxy, client to target.
            let (target, done) = sink(TUNNEL).await;
            let local = listener(&server, target).await;
            let mut c = TcpStream::connect(local).await.unwrap();
            c.set_nodelay(true).unwrap();
            let chunk = vec![0xa5u8; 256 * 1024];
            let t = Instant::now();
            for _ in 0..TUNNEL / chunk.len() {
                c.write_all(&chunk).await.unwrap();
            }
            let end = done.await.unwrap();
            p_up.push(mib_s(TUNNEL, end - t));
            drop(c);

            // Proxy, target to client.
            let target = source(TUNNEL).await;
            let local = listener(&server, target).await;
            let t = Instant::now();
            let mut c = TcpStream::connect(local).await.unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let mut n = 0;
            while n < TUNNEL {
                match c.read(&mut buf).await.unwrap() {
                    0 => break,
                    k => n += k,
                }
            }
            assert_eq!(n, TUNNEL);
            p_down.push(mib_s(TUNNEL, t.elapsed()));
        }
        println!("{runs} runs each; MiB/s as min / median / max");
        for (name, v) in [
            ("fs upload (PUT …/fs/upload, 32 MiB)", up),
            ("fs download (GET …/fs/download, 32 MiB)", down),
            ("proxy client -> target (64 MiB)", p_up),
            ("proxy target -> client (64 MiB)", p_down),
        ] {
            let (lo, mid, hi) = median(v);
            println!("{name:45} {lo:8.1} {mid:8.1} {hi:8.1}");
        }
        server.shutdown().await;
    });
}
