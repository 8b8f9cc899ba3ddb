//! Hostile and careless clients: oversized REST requests, idle HTTP sockets, endless
//! chunked bodies, crowds of unauthenticated connections and wrong credentials.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Device, http, online};
use serde_json::json;
use thinger_core::iotmp::MessageType;
use thinger_core::pson::Value;
use thinger_server::{Limits, Server, ServerConfig, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn start(config: ServerConfig) -> Server {
    Server::start(config.tls(TlsMode::Off)).await.unwrap()
}

/// Sends raw bytes over HTTP and returns the status and the JSON body.
async fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await.expect("HTTP timeout").unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("no header end");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn oversized_rest_requests_get_413_and_the_device_keeps_its_session() {
    let limits = Limits { http_body_timeout: Duration::from_millis(500), ..Limits::default() };
    let server = start(ServerConfig::local().limits(limits)).await;
    let mut d = online(server.tcp_addr(), "user1", "dev1").await;
    let addr = server.http_addr();
    let base = "/v3/users/user1/devices/dev1";

    // A 200 kB body: fits the HTTP body limit, not the device's 32 KiB frame.
    let big = format!("\"{}\"", "x".repeat(200_000));
    let (status, body) = http(addr, "POST", &format!("{base}/resources/echo"), Some(&big), None).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("frame limit"), "{body}");
    // A 60,000-character resource path.
    let path = format!("{base}/resources/{}", "p".repeat(60_000));
    let (status, body) = http(addr, "GET", &path, None, None).await;
    assert_eq!((status, body["error"].is_string()), (413, true));
    // A 20,000-character property the device may be subscribed to: refused before it is stored.
    let value = format!("{{\"value\": \"{}\"}}", "v".repeat(40_000));
    let (status, _) = http(addr, "PUT", &format!("{base}/properties/cfg"), Some(&value), None).await;
    assert_eq!(status, 413);
    assert_eq!(server.property("user1", "dev1", "cfg").await, None);
    // A body over the HTTP limit (1 MiB): 413 with a JSON error, not read whole.
    let huge = format!("\"{}\"", "y".repeat(1_100_000));
    let (status, body) = http(addr, "POST", &format!("{base}/resources/echo"), Some(&huge), None).await;
    assert_eq!((status, body["error"].is_string()), (413, true), "{body}");
    // A chunked body announcing 2^64-1 bytes and sending none: answered, not hung.
    let chunked = format!(
        "POST {base}/resources/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Content-Type: application/json\r\n\r\nffffffffffffffff\r\nabc"
    );
    let (status, body) = raw_http(addr, chunked.as_bytes()).await;
    assert!([400, 408, 413].contains(&status), "status {status}");
    assert!(body["error"].is_string());

    // The device saw none of it: the same session answers the next request.
    assert!(server.is_connected("user1", "dev1"));
    let device = tokio::spawn(async move {
        let req = d.answer_run(Some(&Value::Uint(7))).await;
        assert_eq!(req.resource, Some(Value::from("small")));
        d
    });
    assert_eq!(http(addr, "GET", &format!("{base}/resources/small"), None, None).await, (200, json!(7)));
    let _d = device.await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn idle_http_connections_are_closed_while_devices_still_connect() {
    let limits = Limits { http_header_timeout: Duration::from_millis(700), ..Limits::default() };
    let server = start(ServerConfig::local().limits(limits)).await;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(server.http_addr()).await.unwrap());
    }
    // While they are open, a device connects and /health answers.
    let _d = online(server.tcp_addr(), "user1", "dev1").await;
    let (status, health) = http(server.http_addr(), "GET", "/health", None, None).await;
    assert_eq!((status, health["devices"].as_u64()), (200, Some(1)));
    // A kept-alive connection that goes quiet after a request is closed too.
    let mut kept = TcpStream::connect(server.http_addr()).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut response = [0u8; 512];
    assert!(kept.read(&mut response).await.unwrap() > 0);
    idle.push(kept);
    // Every idle one is closed by the server (read returns end of stream or a reset).
    let mut buf = [0u8; 64];
    for mut s in idle {
        let r =
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("idle connection kept open");
        assert!(!matches!(r, Ok(n) if n > 0));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_connections_are_capped_per_address_and_closed_with_a_reason() {
    let limits = Limits { max_unauthenticated_per_address: 3, ..Limits::default() };
    let config = ServerConfig::local().limits(limits).auth_timeout(Duration::from_millis(400));
    let server = start(config).await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(Device::tcp(server.tcp_addr()).await);
    }
    // The fourth is refused at once with DISCONNECT "busy".
    let mut fourth = Device::tcp(server.tcp_addr()).await;
    let f = fourth.recv_within(Duration::from_secs(2)).await.unwrap().expect("DISCONNECT");
    assert!(f.is(MessageType::Disconnect));
    assert_eq!(f.params, Some(Value::Uint(9)));
    // The three that never send CONNECT are closed by the auth timeout, with DISCONNECT 8.
    for mut d in waiting {
        let f = d.recv_within(Duration::from_secs(3)).await.unwrap().expect("DISCONNECT");
        assert!(f.is(MessageType::Disconnect));
        assert_eq!(f.params, Some(Value::Uint(8)));
    }
    // Places are given back: a device authenticates again.
    let _d = online(server.tcp_addr(), "user1", "dev1").await;
    server.shutdown().await;
}

/// A TCP device whose connection comes from another loopback address.
async fn device_from(local: [u8; 4], server: SocketAddr) -> Device {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((local, 0))).unwrap();
    let stream = socket.connect(server).await.unwrap();
    Device::from_stream(stream)
}

#[tokio::test]
async fn wrong_credentials_are_throttled_and_other_addresses_still_connect() {
    let config = ServerConfig::local().allow_any(false).credential("user1", "good", "secret");
    let server = start(config).await;
    let addr = server.tcp_addr();
    let attack = tokio::spawn(async move {
        let (mut answered, mut refused) = (0u32, 0u32);
        for _ in 0..10_000 {
            let mut d = Device::tcp(addr).await;
            if !d.try_send_raw(&common::connect_frame("user1", "good", "wrong")).await {
                refused += 1;
                continue;
            }
            match d.recv_within(Duration::from_secs(5)).await.unwrap() {
                Some(f) if f.is(MessageType::Error) => answered += 1,
                _ => refused += 1,
            }
        }
        (answered, refused)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // During the attack, the good device from another address is let in within a second.
    let mut good = device_from([127, 0, 0, 2], addr).await;
    let reply = tokio::time::timeout(Duration::from_secs(1), good.connect("user1", "good", "secret")).await;
    assert!(reply.expect("good device not answered within 1 s").is(MessageType::Ok));
    let (answered, refused) = attack.await.unwrap();
    println!("10,000 wrong CONNECTs: {answered} answered with ERROR, {refused} refused while locked out");
    assert_eq!(answered + refused, 10_000);
    assert!(answered < 100, "{answered} wrong CONNECTs were checked");
    server.shutdown().await;
}

#[tokio::test]
async fn state_events_go_only_to_subscribers_and_a_slow_one_loses_events_not_the_server() {
    let limits = Limits { event_queue: 8, ..Limits::default() };
    let server = start(ServerConfig::local().limits(limits)).await;
    let tcp = server.tcp_addr();
    let mut watcher = online(tcp, "fleet", "watcher").await;
    let sub = watcher.subscribe(3, &thinger_core::pson!({"event": "device_state_change"})).await;
    assert!(sub.is(MessageType::Ok));
    let mut quiet = online(tcp, "fleet", "quiet").await;
    // 50 devices of the same user connect (after "quiet"): the subscriber hears of all 51,
    // the device that did not subscribe of none.
    let mut fleet = Vec::new();
    for i in 0..50 {
        fleet.push(online(tcp, "fleet", &format!("d{i}")).await);
    }
    let mut heard = 0;
    while let Ok(Some(f)) = watcher.recv_within(Duration::from_millis(300)).await {
        assert!(f.is(MessageType::StreamData) && f.sid == 3);
        assert_eq!(f.payload.as_ref().unwrap()["state"], "connected");
        heard += 1;
    }
    assert!(quiet.recv_within(Duration::from_millis(100)).await.is_err(), "a non-subscriber got an event");
    // The watcher read as they came, so it heard of (nearly) all; a queue of 8 may drop some
    // under load, and those are counted.
    let (_, health) = http(server.http_addr(), "GET", "/health", None, None).await;
    let dropped = health["dropped_events"].as_u64().unwrap();
    assert_eq!(heard + dropped, 51, "heard {heard}, dropped {dropped}");
    // A subscriber that never reads: 50 more connect and it is not disconnected.
    let mut later = Vec::new();
    for i in 0..50 {
        later.push(online(tcp, "fleet", &format!("e{i}")).await);
    }
    assert!(server.is_connected("fleet", "watcher"));
    assert_eq!(server.connected_devices(), 102);
    drop((fleet, later));
    server.shutdown().await;
}

/// Collects what the server logs (a current-thread test runtime runs every server task on the
/// test's thread, where this subscriber is set).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn failures_are_logged_in_aggregate_and_a_guessed_device_is_answered_late() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let config = ServerConfig::local().allow_any(false).credential("u", "target", "secret");
    let server = start(config).await;
    // Wrong credentials for one device from 8 addresses (each under the address limit).
    let mut last = Duration::ZERO;
    for i in 0..8u8 {
        let mut d = device_from([127, 0, 0, 10 + i], server.tcp_addr()).await;
        let started = std::time::Instant::now();
        assert!(d.connect("u", "target", "guess").await.is(MessageType::Error));
        last = started.elapsed();
    }
    // The device's own counter delays the answer once its failures pile up.
    assert!(last >= Duration::from_millis(100), "the 8th wrong guess was answered in {last:?}");
    // One warning per address (each failed once), never one per attempt plus an INFO line.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("failed authentications from this address").count(), 8, "{text}");
    let mut d = device_from([127, 0, 0, 10], server.tcp_addr()).await;
    for _ in 0..3 {
        assert!(d.connect("u", "other", "x").await.is(MessageType::Error));
        d = device_from([127, 0, 0, 10], server.tcp_addr()).await;
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("failed authentications from this address").count(), 8, "aggregated within 10 s");
    assert_eq!(text.matches("INFO").count(), text.matches("thinger-server listening").count());
    server.shutdown().await;
}
