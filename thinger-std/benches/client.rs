//! Client benchmarks over loopback: RUN round trips (raw IOTMP and REST → server → device),
//! STREAM_DATA throughput, and memory per connected device in one gateway process.
//!
//! ```text
//! cargo bench -p thinger-std --bench client            # full run, prints a Markdown table
//! BENCH_QUICK=1 cargo bench -p thinger-std --bench client
//! BENCH_ONLY=memory cargo bench -p thinger-std --bench client   # only the devices-in-one-process rows
//! ```
//!
//! The memory scenarios run the local server in a child process (this binary re-executed
//! with `--server-child`) so that only the client side is measured.

#[path = "../tests/e2e/peer.rs"]
mod peer;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use thinger_core::iotmp::MessageType;
use thinger_server::{Server, ServerConfig, TlsMode};
use thinger_std::dsl::output;
use thinger_std::tls::TlsConfig;
use thinger_std::{Backoff, Capacity, Client, ClientBuilder, Status, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use peer::Peer;

struct Row {
    scenario: String,
    result: String,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn latency_row(name: &str, mut samples: Vec<Duration>, total: Duration) -> Row {
    samples.sort();
    let rate = samples.len() as f64 / total.as_secs_f64();
    Row {
        scenario: name.to_owned(),
        result: format!(
            "{:.0} round trips/s, p50 {:.1} µs, p99 {:.1} µs ({} samples)",
            rate,
            percentile(&samples, 0.50).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6,
            samples.len()
        ),
    }
}

fn quick_backoff() -> Backoff {
    Backoff { initial: Duration::from_millis(50), max: Duration::from_secs(2), multiplier: 2.0, jitter: 0.5 }
}

fn tcp_client(addr: SocketAddr, device: &str) -> ClientBuilder {
    Client::builder("bench", device, "secret")
        .host(addr.ip().to_string())
        .port(addr.port())
        .transport(Transport::Tcp)
        .backoff(quick_backoff())
}

/// RUN round trips between a scripted peer and the client: one at a time, then 32 in flight.
async fn raw_run(n: usize) -> Vec<Row> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let c = counter.clone();
    let client =
        tcp_client(addr, "raw").resource("n", output(move || c.fetch_add(1, Ordering::Relaxed))).spawn().unwrap();
    let (mut peer, _) = Peer::accept(&listener).await;
    // Warm up.
    for id in 1..=100u16 {
        peer.queue_run(id, "n", None);
        peer.flush().await;
        peer.recv_skipping_keepalives().await.unwrap();
    }
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let id = (i % 60_000) as u16 + 1;
        let t = Instant::now();
        peer.queue_run(id, "n", None);
        peer.flush().await;
        let reply = peer.recv_skipping_keepalives().await.unwrap();
        assert_eq!((reply.kind, reply.id), (MessageType::Ok, id));
        samples.push(t.elapsed());
    }
    let sequential =
        latency_row("RUN round trip, raw IOTMP (scripted peer ↔ client, 1 in flight)", samples, start.elapsed());

    // Pipelined: keep 32 requests outstanding.
    let window = 32usize;
    let start = Instant::now();
    let mut sent = 0usize;
    let mut received = 0usize;
    let total = n * 2;
    while received < total {
        while sent < total && sent - received < window {
            peer.queue_run((sent % 60_000) as u16 + 1, "n", None);
            sent += 1;
        }
        peer.flush().await;
        let reply = peer.recv_skipping_keepalives().await.unwrap();
        assert_eq!(reply.kind, MessageType::Ok);
        received += 1;
    }
    let elapsed = start.elapsed();
    let pipelined = Row {
        scenario: "RUN throughput, raw IOTMP (32 in flight)".into(),
        result: format!("{:.0} round trips/s ({total} requests)", total as f64 / elapsed.as_secs_f64()),
    };
    client.shutdown().await;
    vec![sequential, pipelined]
}

/// One HTTP/1.1 keep-alive GET; returns the body.
async fn http_get(stream: &mut TcpStream, buf: &mut Vec<u8>, path: &str) -> Vec<u8> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let len: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse().unwrap()).unwrap();
        while buf.len() < end + 4 + len {
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        return buf[end + 4..end + 4 + len].to_vec();
    }
}

/// REST GET → server → device → back, one request at a time on a keep-alive connection.
async fn rest_run(n: usize) -> Row {
    let server = Server::start(ServerConfig::local().tls(TlsMode::Off)).await.unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let c = counter.clone();
    let client = tcp_client(server.tcp_addr(), "rest")
        .resource("n", output(move || c.fetch_add(1, Ordering::Relaxed)))
        .spawn()
        .unwrap();
    client.connected().await.unwrap();
    assert!(server.wait_connected("bench", "rest", Duration::from_secs(5)).await);
    let mut stream = TcpStream::connect(server.http_addr()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let path = "/v3/users/bench/devices/rest/resources/n";
    let mut buf = Vec::new();
    for _ in 0..100 {
        http_get(&mut stream, &mut buf, path).await;
    }
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let body = http_get(&mut stream, &mut buf, path).await;
        samples.push(t.elapsed());
        assert!(!body.is_empty());
    }
    let row = latency_row("RUN round trip, REST GET → server → device → back (1 in flight)", samples, start.elapsed());
    client.shutdown().await;
    server.shutdown().await;
    row
}

/// STREAM_DATA from `Client::stream` calls (8 tasks) to a scripted peer, for `window`.
async fn stream_throughput(window: Duration) -> Row {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seq = Arc::new(AtomicU64::new(0));
    let s = seq.clone();
    let client = tcp_client(addr, "streamer")
        .resource("sample", output(move || serde_json::json!({"seq": s.fetch_add(1, Ordering::Relaxed), "t": 21.5})))
        .spawn()
        .unwrap();
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.queue_start_stream(77, "sample", None);
    peer.flush().await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut pushers = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        let stop = stop.clone();
        pushers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client.stream("sample").await.unwrap();
            }
        }));
    }
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let deadline = Instant::now() + window;
    let start = Instant::now();
    while Instant::now() < deadline {
        let f = peer.recv().await.unwrap();
        if f.kind == MessageType::StreamData && f.id == 77 {
            frames += 1;
            bytes += f.len as u64;
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for p in pushers {
        let _ = p.await;
    }
    client.shutdown().await;
    Row {
        scenario: "STREAM_DATA throughput (`Client::stream`, 8 tasks, ~20-byte samples)".into(),
        result: format!(
            "{:.0} frames/s, {:.1} MB/s of frames",
            frames as f64 / elapsed.as_secs_f64(),
            bytes as f64 / elapsed.as_secs_f64() / 1e6
        ),
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The server in a child process; it exits when our end of its stdin closes.
struct ServerChild {
    child: Child,
    tcp: SocketAddr,
    tls: SocketAddr,
    http: SocketAddr,
    ca: String,
}

impl ServerChild {
    fn start() -> ServerChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--server-child")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().unwrap().unwrap();
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("LISTENING"));
        let tcp = parts.next().unwrap().parse().unwrap();
        let tls = parts.next().unwrap().parse().unwrap();
        let http = parts.next().unwrap().parse().unwrap();
        let ca: String = lines.map_while(Result::ok).take_while(|l| l != "END").collect::<Vec<_>>().join("\n");
        ServerChild { child, tcp, tls, http, ca }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn run_server_child() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let server = Server::start(ServerConfig::local().max_devices(50_000)).await.unwrap();
        println!("LISTENING {} {} {}", server.tcp_addr(), server.tls_addr().unwrap(), server.http_addr());
        println!("{}\nEND", server.ca_cert_pem().unwrap().trim());
        // Until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
        server.shutdown().await;
    });
}

/// Where the memory scenarios connect.
struct Target {
    tcp: SocketAddr,
    tls: SocketAddr,
    http: SocketAddr,
    ca: String,
}

/// Runs one memory scenario in a fresh process (so earlier scenarios do not skew its RSS).
fn memory_in_child(server: &ServerChild, n: usize, tls: bool, buffer: usize, compact: bool) -> Row {
    let ca_path = std::env::temp_dir().join(format!("thinger-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_path, &server.ca).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--memory", &n.to_string(), &tls.to_string(), &buffer.to_string(), &compact.to_string()])
        .arg(server.tcp.to_string())
        .arg(server.tls.to_string())
        .arg(&ca_path)
        .arg(server.http.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("ROW ")).unwrap_or("failed | see the log");
    let (scenario, result) = line.split_once(" | ").unwrap_or((line, ""));
    Row { scenario: scenario.to_owned(), result: result.to_owned() }
}

fn run_memory_child(args: &[String]) {
    let n: usize = args[0].parse().unwrap();
    let tls: bool = args[1].parse().unwrap();
    let buffer: usize = args[2].parse().unwrap();
    let capacity = if args[3].parse().unwrap() { Capacity::Compact } else { Capacity::Standard };
    let target = Target {
        tcp: args[4].parse().unwrap(),
        tls: args[5].parse().unwrap(),
        ca: std::fs::read_to_string(&args[6]).unwrap(),
        http: args[7].parse().unwrap(),
    };
    let row = memory(&target, n, tls, buffer, capacity);
    println!("ROW {} | {}", row.scenario, row.result);
}

/// RSS growth per device for `n` devices, each runner `tokio::spawn`ed on the
/// multi-threaded runtime; then REST round trips to one of them while all are connected.
fn memory(server: &Target, n: usize, tls: bool, buffer: usize, capacity: Capacity) -> Row {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let before = rss_kib();
    let (up, elapsed, after, rest) = rt.block_on(async {
        let mut clients = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        let start = Instant::now();
        for i in 0..n {
            let builder = if tls {
                Client::builder("bench", format!("gw{i}"), "secret")
                    .host("localhost")
                    .port(server.tls.port())
                    .tls(TlsConfig::new().with_ca_pem(&server.ca).unwrap())
                    .backoff(quick_backoff())
            } else {
                tcp_client(server.tcp, &format!("gw{i}"))
            };
            let (client, runner) = builder
                .buffer_size(buffer)
                .capacity(capacity)
                .connect_timeout(Duration::from_secs(60))
                .resource("temperature", output(move || 20.0 + (i % 10) as f64))
                .build()
                .unwrap();
            tasks.push(tokio::spawn(runner.run()));
            clients.push(client);
            // Ramp up in steps of 500 (as a gateway would): 10,000 simultaneous SYNs overflow
            // the server's listen backlog and the retries (1 s, 2 s, 4 s, …) dominate.
            if clients.len() % 500 == 0 || clients.len() == n {
                let ramp = Instant::now();
                while clients.iter().any(|c| c.status() != Status::Connected)
                    && ramp.elapsed() < Duration::from_secs(60)
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let elapsed = start.elapsed();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let up = clients.iter().filter(|c| c.status() == Status::Connected).count();
        let after = rss_kib();
        let rest = rest_rate(server.http, "gw0", Duration::from_secs(3)).await;
        for c in &clients {
            c.shutdown().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        (up, elapsed, after, rest)
    });
    assert_eq!(up, n, "not every device connected");
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    Row {
        scenario: format!(
            "{n} devices, {}, {} KiB session buffer, {capacity:?} tables",
            if tls { "TLS" } else { "TCP" },
            buffer / 1024
        ),
        result: format!(
            "{:.1} KiB/device (RSS {} → {} MiB; {up}/{n} connected in {:.1} s); REST GET to one device: {rest:.0} round trips/s",
            per / 1024.0,
            before / 1024,
            after / 1024,
            elapsed.as_secs_f64()
        ),
    }
}

/// REST GETs of `device`'s `temperature` through the server, one at a time, for `window`.
async fn rest_rate(http: SocketAddr, device: &str, window: Duration) -> f64 {
    let mut stream = TcpStream::connect(http).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let path = format!("/v3/users/bench/devices/{device}/resources/temperature");
    let mut buf = Vec::new();
    for _ in 0..50 {
        http_get(&mut stream, &mut buf, &path).await;
    }
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < window {
        assert!(!http_get(&mut stream, &mut buf, &path).await.is_empty());
        done += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--server-child") {
        run_server_child();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--memory") {
        run_memory_child(&args[i + 1..]);
        return;
    }
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let memory_only = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "memory");
    let mut rows = Vec::new();
    if !memory_only {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            rows.extend(raw_run(if quick { 2_000 } else { 20_000 }).await);
            rows.push(rest_run(if quick { 1_000 } else { 5_000 }).await);
            rows.push(stream_throughput(Duration::from_secs(if quick { 1 } else { 3 })).await);
        });
    }
    let server = ServerChild::start();
    // (devices, TLS, session buffer, compact tables)
    let sizes: &[(usize, bool, usize, bool)] = if quick {
        &[(1, false, 4096, true), (100, false, 4096, true), (1_000, false, 4096, true)]
    } else {
        &[
            (1, false, 4096, true),
            (100, false, 4096, true),
            (1_000, false, 4096, true),
            (10_000, false, 4096, true),
            (10_000, false, 4096, false),
            (10_000, false, 2048, true),
            (1_000, false, 32 * 1024, false),
            (1_000, true, 4096, true),
        ]
    };
    for &(n, tls, buffer, compact) in sizes {
        rows.push(memory_in_child(&server, n, tls, buffer, compact));
    }
    drop(server);

    println!("\n| scenario | result |\n|---|---|");
    for row in rows {
        println!("| {} | {} |", row.scenario, row.result);
    }
}
