//! Test support: a local server (in this process, or in a child process that can be killed
//! with SIGKILL), a tiny HTTP client for the REST API, and client builders.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use thinger_server::{Server, ServerConfig, TlsMode};
use thinger_std::{Backoff, Client, ClientBuilder, ClientEvent, Events, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const USER: &str = "user1";

/// Logs to the test output when `RUST_LOG` is set.
pub fn logs() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    }
}

/// A local server in this process: 127.0.0.1, ephemeral ports, any credentials, TLS with a
/// generated CA.
pub async fn server() -> Server {
    logs();
    Server::start(ServerConfig::local()).await.unwrap()
}

/// Fast reconnects for tests.
pub fn quick_backoff() -> Backoff {
    Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(400), multiplier: 2.0, jitter: 0.2 }
}

/// A client builder for plain TCP to `addr`.
pub fn tcp_builder(addr: SocketAddr, device: &str) -> ClientBuilder {
    Client::builder(USER, device, "secret")
        .host(addr.ip().to_string())
        .port(addr.port())
        .transport(Transport::Tcp)
        .backoff(quick_backoff())
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(5))
}

/// Waits (up to 10 s) for an event matching `pred`.
pub async fn wait_event(events: &mut Events, what: &str, pred: impl FnMut(&ClientEvent) -> bool) -> ClientEvent {
    match tokio::time::timeout(Duration::from_secs(10), events.wait_for(pred)).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("client stopped while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The response of a REST call: status and body (de-chunked).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn request_text(addr: SocketAddr, method: &str, path: &str, body: &str, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// One REST call.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request_text(addr, method, path, body.unwrap_or(""), "").as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Response { status, body }
}

/// Opens an SSE stream on a device resource and counts the samples that arrive in `window`.
pub async fn count_stream_samples(addr: SocketAddr, path: &str, window: Duration) -> Vec<String> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = request_text(addr, "GET", path, "", "Accept: text/event-stream\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("SSE read: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "SSE refused: {text}");
    text.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.trim().to_owned()).collect()
}

/// A server in a child process (this test binary re-executed on its `server_child` test),
/// so that it can be killed with SIGKILL and restarted on the same ports and data directory.
pub struct ChildServer {
    child: Child,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
}

impl ChildServer {
    /// Starts a server child with storage in `data_dir`, on `ports` (tcp, http) or on free
    /// ports; returns once it listens.
    pub fn start(data_dir: &Path, ports: Option<(u16, u16)>) -> ChildServer {
        let (tcp, http) = ports.unwrap_or((0, 0));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["server_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("THINGER_CHILD_DATA_DIR", data_dir)
            .env("THINGER_CHILD_PORTS", format!("{tcp},{http}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut found = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            // The test harness prints "test server_child ... " in front of it.
            if let Some(rest) = line.split_once("LISTENING ").map(|(_, rest)| rest) {
                let mut parts = rest.split_whitespace();
                let tcp: SocketAddr = parts.next().unwrap().parse().unwrap();
                let http: SocketAddr = parts.next().unwrap().parse().unwrap();
                found = Some((tcp, http));
                break;
            }
        }
        let (tcp, http) = found.expect("server child did not start");
        // Keep reading its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ChildServer { child, tcp, http }
    }

    /// `kill -9`.
    pub fn kill(mut self) -> (u16, u16) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.tcp.port(), self.http.port())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Body of the `server_child` test: runs a server until killed (at most 120 s).
pub fn run_server_child() {
    let Ok(dir) = std::env::var("THINGER_CHILD_DATA_DIR") else {
        eprintln!("server_child only runs as a child process of the restart tests");
        return;
    };
    let ports = std::env::var("THINGER_CHILD_PORTS").unwrap_or_else(|_| "0,0".into());
    let (tcp, http) = ports.split_once(',').unwrap();
    let (tcp, http): (u16, u16) = (tcp.parse().unwrap(), http.parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let config = ServerConfig::local().tls(TlsMode::Off).data_dir(PathBuf::from(dir)).ports(tcp, 0, http);
        let server = Server::start(config).await.unwrap();
        println!("LISTENING {} {}", server.tcp_addr(), server.http_addr());
        tokio::time::sleep(Duration::from_secs(120)).await;
        drop(server);
    });
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("thinger-std-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
