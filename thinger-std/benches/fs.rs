//! File transfer rate end to end: `PUT …/fs/upload` and `GET …/fs/download` on the local
//! server, over the chunked `$fs/upload` / `$fs/download` streams with their ack windows, to a
//! `thinger-std` device with `ext-fs` writing and reading a file in a temporary root; 32 MiB
//! per run.
//!
//! ```text
//! cargo bench -p thinger-std --features ext-fs --bench fs            # 5 runs
//! cargo bench -p thinger-std --features ext-fs --bench fs -- 3       # runs per row
//! ```

use std::net::SocketAddr;
use std::time::Instant;

mod gateway_common;
use gateway_common::{runs, runtime, server_and_device, stats};

use thinger_std::ext::fs::FsConfig;
use thinger_std::resources::Resources;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FILE: usize = 32 * 1024 * 1024;

/// One HTTP exchange with a raw body; the status and the response body's length.
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::with_capacity(FILE + 4096);
    s.read_to_end(&mut raw).await.unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&raw[9..12]).unwrap().parse().unwrap();
    (status, raw.len() - end - 4)
}

fn main() {
    let runs = runs();
    let rt = runtime();
    rt.block_on(async {
        let root = std::env::temp_dir().join(format!("thinger-fs-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut thing = Resources::new();
        FsConfig::new().root("r", &root).writable(true).install(&mut thing).unwrap();
        let (server, client) = server_and_device(thing, 32 * 1024, 256 * 1024).await;
        let file: Vec<u8> = (0..FILE as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let head = format!("PUT /v3/users/u/devices/gw/fs/upload/r/bench.bin HTTP/1.1\r\nContent-Length: {FILE}");
            let t = Instant::now();
            let (status, _) = exchange(server.http_addr(), &head, &file).await;
            up.push(FILE as f64 / 1_048_576.0 / t.elapsed().as_secs_f64());
            assert_eq!(status, 200);
            assert_eq!(std::fs::metadata(root.join("bench.bin")).unwrap().len(), FILE as u64);
            let t = Instant::now();
            let (status, n) =
                exchange(server.http_addr(), "GET /v3/users/u/devices/gw/fs/download/r/bench.bin HTTP/1.1", b"").await;
            down.push(FILE as f64 / 1_048_576.0 / t.elapsed().as_secs_f64());
            assert_eq!((status, n), (200, FILE));
        }
        println!("{runs} runs each, 32 MiB per run, 32 KiB frames; MiB/s as min / median / max");
        for (name, v) in [("fs upload (PUT …/fs/upload)", up), ("fs download (GET …/fs/download)", down)] {
            let (lo, mid, hi) = stats(v);
            println!("{name:34} {lo:8.1} {mid:8.1} {hi:8.1}");
        }
        drop(client);
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(&root);
    });
}
