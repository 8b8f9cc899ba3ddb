//! The offline queue's cost per queued write, in memory and persisted to a file (one
//! `fsync` per added entry, with the removals written since the last one), measured through
//! the public client while it is offline (the server address refuses connections).
//!
//! ```text
//! cargo bench -p thinger-std --bench queue
//! ```
//! Set `QUEUE_BENCH_DIR` to measure on another file system (the default is the system's
//! temporary directory).

use std::time::{Duration, Instant};

use thinger_std::{Client, QueueConfig};

const WRITES: u32 = 500;

async fn per_write(queue: QueueConfig) -> Duration {
    let client = Client::builder("bench", "queue", "secret")
        .host("127.0.0.1")
        .port(1) // nothing listens: the client stays offline and the writes stay queued
        .queue(queue.capacity(WRITES as usize * 2))
        .spawn()
        .unwrap();
    let start = Instant::now();
    for n in 0..WRITES {
        client.queue_bucket_write("bench", &n).await.unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(client.stats().await.unwrap().queued, WRITES as usize);
    client.shutdown().await;
    elapsed / WRITES
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::var_os("QUEUE_BENCH_DIR").map(Into::into).unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("thinger-queue-bench-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let memory = rt.block_on(per_write(QueueConfig::new()));
    let file = rt.block_on(per_write(QueueConfig::new().persist(&path)));
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&path);
    println!("| offline queue, {WRITES} queued writes | per write |");
    println!("|---|---:|");
    println!("| in memory | {:.1} µs |", memory.as_secs_f64() * 1e6);
    println!("| persisted, fsync per entry ({}) | {:.1} µs |", dir.display(), file.as_secs_f64() * 1e6);
    println!("log file: {size} bytes for {WRITES} entries");
}
