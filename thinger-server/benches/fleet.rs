//! Server fleet benchmark: many devices, the server's own memory.
//!
//! Every row starts a fresh server in a child process (this binary re-executed with
//! `--server-child`), so no row inherits another's connections or disconnect backlog, and
//! the RSS read from `/proc/PID/status` is the server's alone. The devices are scripted
//! IOTMP clients in this process.
//!
//! ```text
//! cargo bench -p thinger-server --bench fleet            # every row
//! cargo bench -p thinger-server --bench fleet -- 1000    # a smaller fleet
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_server::{Limits, Server, ServerConfig, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connections opened at once.
const CONCURRENCY: usize = 256;

fn connect_frame(user: &str, device: &str) -> Vec<u8> {
    let creds = [user, device, "secret"];
    let msg = OutgoingMessage::new(MessageType::Connect, 1).payload(OutField::Pson(&creds));
    let mut buf = vec![0u8; msg.encoded_len()];
    let n = msg.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// The server child: starts, prints its addresses, runs until stdin closes.
fn run_server_child() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Loopback fleet from one address: the per-address admission cap is lifted.
        let limits =
            Limits { max_unauthenticated: 100_000, max_unauthenticated_per_address: 100_000, ..Limits::default() };
        let config = ServerConfig::local()
            .tls(TlsMode::Off)
            .max_devices(100_000)
            .limits(limits)
            .auth_timeout(Duration::from_secs(120));
        let server = Server::start(config).await.unwrap();
        println!("LISTENING {} {}", server.tcp_addr(), server.http_addr());
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await
        .unwrap();
        server.shutdown().await;
    });
}

struct ServerChild {
    child: Child,
    tcp: SocketAddr,
    http: SocketAddr,
}

impl ServerChild {
    fn start() -> ServerChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--server-child")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace().skip(1);
        let tcp = parts.next().unwrap().parse().unwrap();
        let http = parts.next().unwrap().parse().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        ServerChild { child, tcp, http }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Connects `n` devices (`one_user`: all under one user) and keeps them open.
async fn fleet(tcp: SocketAddr, n: usize, one_user: bool) -> (Vec<TcpStream>, Duration) {
    let start = Instant::now();
    let mut all = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(CONCURRENCY) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let user = if one_user { "fleet".to_owned() } else { format!("user{i}") };
                let frame = connect_frame(&user, &format!("dev{i}"));
                tokio::spawn(async move {
                    let mut s = TcpStream::connect(tcp).await.unwrap();
                    s.write_all(&frame).await.unwrap();
                    let mut ok = [0u8; 5];
                    let n = s.read(&mut ok).await.unwrap();
                    assert!(n > 0 && ok[0] == MessageType::Ok as u8, "CONNECT refused");
                    s
                })
            })
            .collect();
        for t in tasks {
            all.push(t.await.unwrap());
        }
    }
    (all, start.elapsed())
}

async fn idle_ws(http: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(http).await.unwrap();
        let req = "GET /iotmp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Protocol: iotmp\r\n\r\n";
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 512];
        let got = s.read(&mut buf).await.unwrap();
        assert!(buf[..got].starts_with(b"HTTP/1.1 101"));
        all.push(s);
    }
    all
}

async fn idle_tcp(tcp: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(TcpStream::connect(tcp).await.unwrap());
    }
    all
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--server-child") {
        run_server_child();
        return;
    }
    let n: usize = args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("| scenario | devices | time to authenticate all | server RSS per device |");
    println!("|---|---|---|---|");
    for (label, one_user) in [("one user", true), ("a user per device", false)] {
        let server = ServerChild::start();
        let before = server.rss_kib();
        let (devices, took) = rt.block_on(fleet(server.tcp, n, one_user));
        std::thread::sleep(Duration::from_millis(500));
        let after = server.rss_kib();
        let per = (after.saturating_sub(before)) as f64 / n as f64;
        println!("| {label} | {n} | {:.2} s | {per:.1} KiB |", took.as_secs_f64());
        drop(devices);
    }
    let idle = n.min(3_000);
    println!();
    println!("| idle connections ({idle}, no CONNECT) | server RSS per connection open | after they close |");
    println!("|---|---|---|");
    for label in ["TCP", "WebSocket upgrade"] {
        let server = ServerChild::start();
        let before = server.rss_kib();
        let conns = rt.block_on(async {
            if label == "TCP" { idle_tcp(server.tcp, idle).await } else { idle_ws(server.http, idle).await }
        });
        std::thread::sleep(Duration::from_millis(500));
        let open = server.rss_kib();
        drop(conns);
        std::thread::sleep(Duration::from_millis(1500));
        let closed = server.rss_kib();
        let per = |kib: u64| kib.saturating_sub(before) as f64 / idle as f64;
        println!(
            "| {label} | {:.1} KiB | {:.1} KiB ({} KiB total above the fresh server) |",
            per(open),
            per(closed),
            closed.saturating_sub(before)
        );
    }
}
