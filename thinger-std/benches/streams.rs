//! Byte-stream throughput end to end: the local server's `open_stream` (what its terminal,
//! proxy and file-transfer routes run on) to a `thinger-std` device's channel over loopback
//! TCP, each direction. The device side is a plain channel handler (a sink that counts, a
//! source that sends), so this is the transport's ceiling for the stream extensions.
//!
//! ```text
//! cargo bench -p thinger-std --bench streams            # 5 runs of each row
//! cargo bench -p thinger-std --bench streams -- 3       # runs per row
//! ```

use std::time::Instant;

mod gateway_common;
use gateway_common::{runs, runtime, server_and_device, stats};

use thinger_core::pson::Value;
use thinger_std::channel::channel;
use thinger_std::resources::Resources;

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

fn main() {
    let runs = runs();
    let rt = runtime();
    rt.block_on(async {
        let mut rows = Vec::new();
        for (frame, buffer) in [(16 * 1024usize, 128 * 1024usize), (32 * 1024, 256 * 1024)] {
            let (server, client) = server_and_device(thing(), frame, buffer).await;
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
