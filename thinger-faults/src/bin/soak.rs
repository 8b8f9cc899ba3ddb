//! Soak: a device queues bucket writes at a steady rate while its server is killed with
//! SIGKILL and restarted (a child process on the same port and data directory) again and
//! again; then every stored record is counted by id.
//!
//! ```text
//! cargo run -p thinger-faults --bin soak -- [--kills 1000] [--rate 50] [--max-seconds 900]
//! ```
//!
//! Prints kills, writes, lost, duplicated, out-of-order first arrivals and the reconnect
//! time (kill to re-authenticated, server restart included) p50/p99. Loopback only.
//! Not run in CI.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use thinger_server::{Server, ServerConfig, TlsMode};
use thinger_std::{Backoff, Client, ClientEvent, QueueConfig, Transport};

const USER: &str = "user1";

struct Options {
    kills: u32,
    rate: u32,
    max_seconds: u64,
}

fn options() -> Result<Options, String> {
    let mut o = Options { kills: 1000, rate: 50, max_seconds: 900 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--kills" => o.kills = value()?.parse().map_err(|e| format!("--kills: {e}"))?,
            "--rate" => o.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--max-seconds" => o.max_seconds = value()?.parse().map_err(|e| format!("--max-seconds: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    o.rate = o.rate.max(1);
    Ok(o)
}

/// A server child process: this binary with `--server-child DIR PORT`.
struct ServerChild {
    child: Child,
    port: u16,
}

impl ServerChild {
    fn start(dir: &Path, port: u16) -> ServerChild {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .arg("--server-child")
            .arg(dir)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the server child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines.next().and_then(Result::ok).expect("the server child ended before listening");
            if let Some(p) = line.strip_prefix("LISTENING ") {
                break p.trim().parse().expect("a port");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        ServerChild { child, port }
    }

    /// `kill -9`.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_child(dir: PathBuf, port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    rt.block_on(async move {
        let config = ServerConfig::local().tls(TlsMode::Off).data_dir(dir).ports(port, 0, 0);
        let server = match Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("server child: {e}");
                std::process::exit(1);
            }
        };
        println!("LISTENING {}", server.tcp_addr().port());
        // Runs until killed.
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--server-child") {
        let dir = PathBuf::from(args.get(2).expect("DIR"));
        let port = args.get(3).and_then(|p| p.parse().ok()).expect("PORT");
        server_child(dir, port);
        return;
    }
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}\nusage: soak [--kills N] [--rate WRITES_PER_S] [--max-seconds S]");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(soak(o));
}

async fn soak(o: Options) {
    let dir = std::env::temp_dir().join(format!("thinger-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("data dir");
    let first = ServerChild::start(&dir, 0);
    let port = first.port;
    let backoff =
        Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(200), multiplier: 2.0, jitter: 0.2 };
    let client = Client::builder(USER, "soak", "secret")
        .host("127.0.0.1")
        .port(port)
        .transport(Transport::Tcp)
        .keep_alive(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(5))
        .backoff(backoff)
        .queue(QueueConfig::new().capacity(1_000_000))
        .spawn()
        .expect("client");
    let mut events = client.events();
    client.with_timeout(Duration::from_secs(10)).connected().await.expect("first connection");

    // The writer: one write every 1/rate s, each carrying its id.
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, written, stop) = (client.clone(), written.clone(), stop.clone());
        let period = Duration::from_secs_f64(1.0 / f64::from(o.rate));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let id = written.load(Ordering::Relaxed);
                client.queue_bucket_write("soak", &serde_json::json!({ "id": id })).await.expect("queue");
                written.store(id + 1, Ordering::Relaxed);
            }
        })
    };

    let started = Instant::now();
    let mut server = Some(first);
    let mut reconnects = Vec::new();
    let mut restarts = Vec::new();
    let mut kills = 0u32;
    let mut seed = 0x50a4_u64;
    while kills < o.kills && started.elapsed() < Duration::from_secs(o.max_seconds) {
        // Up for 100..400 ms, then killed mid-stream.
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(100 + (seed >> 33) % 300)).await;
        let killed_at = Instant::now();
        if let Some(s) = server.take() {
            tokio::task::spawn_blocking(move || s.kill()).await.expect("kill");
        }
        kills += 1;
        let d = dir.clone();
        let spawned = Instant::now();
        server = Some(tokio::task::spawn_blocking(move || ServerChild::start(&d, port)).await.expect("restart"));
        restarts.push(spawned.elapsed());
        match tokio::time::timeout(Duration::from_secs(30), events.wait_for(|e| *e == ClientEvent::Connected)).await {
            Ok(Some(_)) => reconnects.push(killed_at.elapsed()),
            _ => {
                eprintln!("soak: no reconnect within 30 s after kill {kills}");
                break;
            }
        }
        if kills.is_multiple_of(100) {
            eprintln!("{kills} kills, {} writes, {:?}", written.load(Ordering::Relaxed), started.elapsed());
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let writes = written.load(Ordering::Relaxed);
    let flushed = client.with_timeout(Duration::from_secs(120)).flush().await;
    let stats = client.stats().await.expect("stats");
    client.shutdown().await;
    if let Some(s) = server.take() {
        s.kill();
    }
    let elapsed = started.elapsed();

    // Count what the last server stored, with the library on the same data directory.
    let reader = Server::start(ServerConfig::local().tls(TlsMode::Off).data_dir(dir.clone())).await.expect("reader");
    let stored: Vec<u64> = reader
        .bucket_data(USER, "soak")
        .await
        .iter()
        .map(|r| r.value.get("id").and_then(|v| v.as_u64()).expect("an id"))
        .collect();
    reader.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    let distinct: BTreeSet<u64> = stored.iter().copied().collect();
    let lost = (0..writes).filter(|id| !distinct.contains(id)).count();
    let duplicated = stored.len() - distinct.len();
    let mut seen = BTreeSet::new();
    let firsts: Vec<u64> = stored.iter().copied().filter(|id| seen.insert(*id)).collect();
    let out_of_order = firsts.windows(2).filter(|w| w[0] > w[1]).count();
    reconnects.sort();
    restarts.sort();
    println!("soak: {kills} server kills (SIGKILL, restart on the same port and data dir) in {elapsed:.1?}");
    println!(
        "writes {writes} at {}/s, stored {} ({} distinct), lost {lost}, duplicated {duplicated}, \
         out-of-order first arrivals {out_of_order}, flush {:?}",
        o.rate,
        stored.len(),
        distinct.len(),
        flushed.map(|_| "ok")
    );
    println!(
        "reconnect (kill to re-authenticated) p50 {:?} p99 {:?} max {:?}; server restart p50 {:?} p99 {:?}; \
         client sessions {}",
        percentile(&reconnects, 50),
        percentile(&reconnects, 99),
        reconnects.last().copied().unwrap_or_default(),
        percentile(&restarts, 50),
        percentile(&restarts, 99),
        stats.authentications
    );
    if lost > 0 {
        std::process::exit(1);
    }
}
