//! Proxy throughput end to end: a TCP client → the local server's proxy listener
//! (`POST …/proxy/listeners`) → `$proxy/:session` stream → a `thinger-std` device with
//! `ext-proxy` → a loopback TCP target, and back; 64 MiB each direction per run.
//!
//! ```text
//! cargo bench -p thinger-std --features ext-proxy --bench proxy            # 5 runs
//! cargo bench -p thinger-std --features ext-proxy --bench proxy -- 3       # runs per row
//! ```

use std::net::SocketAddr;
use std::time::Instant;

mod gateway_common;
use gateway_common::{runs, runtime, server_and_device, stats};

use thinger_std::ext::proxy::ProxyConfig;
use thinger_std::resources::Resources;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOTAL: usize = 64 * 1024 * 1024;

/// Accepts connections; each reads until `TOTAL` bytes are in, then answers one byte.
async fn sink() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut n = 0;
                while n < TOTAL {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                let _ = s.write_all(b"!").await;
            });
        }
    });
    addr
}

/// Accepts connections; sends each `TOTAL` bytes, then closes.
async fn source() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let chunk = vec![0x5au8; 256 * 1024];
                for _ in 0..TOTAL / chunk.len() {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// `POST …/proxy/listeners` on the server: the local address that tunnels to `target`.
async fn listener(http: SocketAddr, target: SocketAddr) -> SocketAddr {
    let body = format!(r#"{{"address":"127.0.0.1","port":{}}}"#, target.port());
    let mut s = TcpStream::connect(http).await.unwrap();
    let req = format!(
        "POST /v3/users/u/devices/gw/proxy/listeners HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    json["listen"].as_str().unwrap().parse().unwrap()
}

fn main() {
    let runs = runs();
    let rt = runtime();
    rt.block_on(async {
        let (to_sink, from_source) = (sink().await, source().await);
        let mut thing = Resources::new();
        ProxyConfig::allow([("127.0.0.1", to_sink.port()), ("127.0.0.1", from_source.port())]).install(&mut thing);
        let (server, client) = server_and_device(thing, 32 * 1024, 256 * 1024).await;
        let up_addr = listener(server.http_addr(), to_sink).await;
        let down_addr = listener(server.http_addr(), from_source).await;
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let mut c = TcpStream::connect(up_addr).await.unwrap();
            c.set_nodelay(true).unwrap();
            let chunk = vec![0xa5u8; 256 * 1024];
            let t = Instant::now();
            let (mut r, mut w) = c.split();
            let write = async {
                for _ in 0..TOTAL / chunk.len() {
                    w.write_all(&chunk).await.unwrap();
                }
            };
            let mut ack = [0u8; 1];
            let read = r.read_exact(&mut ack);
            let ((), got) = tokio::join!(write, read);
            got.unwrap();
            up.push(TOTAL as f64 / 1_048_576.0 / t.elapsed().as_secs_f64());

            let t = Instant::now();
            let mut c = TcpStream::connect(down_addr).await.unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let mut n = 0;
            while n < TOTAL {
                match c.read(&mut buf).await.unwrap() {
                    0 => break,
                    k => n += k,
                }
            }
            assert_eq!(n, TOTAL);
            down.push(TOTAL as f64 / 1_048_576.0 / t.elapsed().as_secs_f64());
        }
        println!("{runs} runs each, 64 MiB per run, 32 KiB frames; MiB/s as min / median / max");
        for (name, v) in [("proxy client -> target", up), ("proxy target -> client", down)] {
            let (lo, mid, hi) = stats(v);
            println!("{name:28} {lo:8.1} {mid:8.1} {hi:8.1}");
        }
        drop(client);
        server.shutdown().await;
    });
}
