//! Byte-stream throughput end to end: the local server's `open_stream` (what its terminal,
//! proxy and file-transfer routes run on) to a `thinger-std` device's channel over loopback
//! TCP, each direction. The device side is a plain channel handler (a sink that counts, a
//! source that sends), so this is the transport's ceiling for the stream extensions.
//!
//! ```text
//! cargo bench -p thinger-std --bench streams            # 5 runs of each row
//! cargo bench -p thinger-std --bench streams -- 3       # runs per row
//! ```

use std::time::{Duration, Instant};

use thinger_core::pson::Value;
use thinger_server::{Limits, Server, ServerConfig, TlsMode};
use thinger_std::channel::channel;
use thinger_std::resources::Resources;
use thinger_std::{Client, Transport};

const TOTAL: usize = 64 * 1024 * 1024;

fn thing() -> Resources {
    let mut thing = Resources::new();
    // Counts what arrives; once `TOTAL` bytes are in, answers with the count.
    thing.entry("$sink/:session").set_channel(channel(|request| async move {
        let Ok(mut ch) = request.accept(None::<Value>).await else { return };
        let mut n = 0usize;
        while let Some(data) = ch.recv().await {
            n += data.bytes().map_or(0, <[u8]>::len);
            if n >= TOTAL {
                let _ = ch.sender().send(&(n as u64)).await;
            }
        }
    }));
    // Sends `TOTAL` bytes in the largest chunks it may, then closes.
    thing.entry("$source/:session").set_channel(channel(|request| async move {
        let Ok(ch) = request.accept(None::<Value>).await else { return };
        let tx = ch.sender();
        let chunk = vec![0x5au8; tx.max_chunk()];
        let mut sent = 0;
        while sent < TOTAL {
            let n = chunk.len().min(TOTAL - sent);
            if tx.send_bytes(&chunk[..n]).await.is_err() {
                return;
            }
            sent += n;
        }
        tx.close().await;
    }));
    thing
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut rows = Vec::new();
        for (frame, buffer) in [(16 * 1024usize, 128 * 1024usize), (32 * 1024, 256 * 1024)] {
            let limits = Limits { device_frame_limit: frame, ..Limits::default() };
            let server = Server::start(ServerConfig::local().tls(TlsMode::Off).limits(limits)).await.unwrap();
            let addr = server.tcp_addr();
            let client = Client::builder("u", "gw", "secret")
                .host(addr.ip().to_string())
                .port(addr.port())
                .transport(Transport::Tcp)
                .buffer_size(buffer)
                .resources(thing())
                .spawn()
                .unwrap();
            client.connected().await.unwrap();
            assert!(server.wait_connected("u", "gw", Duration::from_secs(5)).await);
            let (mut down, mut up) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let s = server.open_stream("u", "gw", "$sink/b", None).await.unwrap();
                let (tx, mut rx) = s.split();
                let chunk = vec![0xa5u8; 256 * 1024];
                let t = Instant::now();
                let writer = tokio::spawn(async move {
                    for _ in 0..TOTAL / chunk.len() {
                        tx.send_bytes(&chunk).await.unwrap();
                    }
                    tx
                });
                let count = rx.recv().await.unwrap();
                down.push(TOTAL as f64 / 1_048_576.0 / t.elapsed().as_secs_f64());
                assert_eq!(count.as_u64(), Some(TOTAL as u64));
                drop(writer.await.unwrap());

                let mut s = server.open_stream("u", "gw", "$source/b", None).await.unwrap();
                let t = Instant::now();
                let mut n = 0;
                while let Ok(b) = s.recv_bytes().await {
                    n += b.len();
                }
                up.push(TOTAL as f64 / 1_048_576.0 / t.elapsed().as_secs_f64());
                assert_eq!(n, TOTAL);
            }
            rows.push((format!("server -> device, {} KiB frames", frame / 1024), stats(down)));
            rows.push((format!("device -> server, {} KiB frames", frame / 1024), stats(up)));
            drop(client);
            server.shutdown().await;
        }
        println!("{runs} runs each, 64 MiB per run; MiB/s as min / median / max");
        for (name, (lo, mid, hi)) in rows {
            println!("{name:36} {lo:8.1} {mid:8.1} {hi:8.1}");
        }
    });
}
