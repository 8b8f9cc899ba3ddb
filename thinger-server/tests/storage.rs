//! `--data-dir`: what was acknowledged survives a restart, a clean one and `kill -9`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::{Device, enc, http, online};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson;
use thinger_core::pson::Value;
use thinger_server::{Server, ServerConfig, TlsMode};

/// Sends `n` bucket writes back to back, then collects their `n` OKs.
async fn write_bucket(d: &mut Device, bucket: &str, n: u16) {
    for i in 0..n {
        let data = pson!({"i": i, "t": 20.5});
        let f = enc(OutgoingMessage::new(MessageType::Run, 100 + i)
            .parameters(OutField::Pson(&bucket))
            .payload(OutField::Pson(&data))
            .resource(OutField::Varint(5)));
        d.send(f).await;
    }
    let mut acked = 0;
    while acked < n {
        let f = d.frame().await;
        assert!(f.is(MessageType::Ok), "{f:?}");
        acked += 1;
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_a_restart() {
    let dir = common::temp_dir("restart");
    let config = ServerConfig::local().tls(TlsMode::Off).data_dir(&dir);
    let server = Server::start(config.clone()).await.unwrap();
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let start = Instant::now();
    write_bucket(&mut d, "log", 100).await;
    eprintln!("100 pipelined durable bucket writes acknowledged in {:?}", start.elapsed());
    assert!(d.call(1, 2, &Value::from("cfg"), Some(&pson!({"rate": 5}))).await.is(MessageType::Ok));
    assert!(d.call(2, 4, &Value::from("hook"), Some(&Value::Uint(1))).await.is(MessageType::Ok));
    drop(d);
    server.shutdown().await;

    let server = Server::start(config).await.unwrap();
    let records = server.bucket_data("u", "log").await;
    assert_eq!(records.len(), 100);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.value["i"], i as u64);
    }
    assert_eq!(server.property("u", "d", "cfg").await, Some(pson!({"rate": 5})));
    assert_eq!(server.endpoint_calls("u").await.len(), 1);
    // More writes append after the old ones.
    let mut d = online(server.tcp_addr(), "u", "d").await;
    write_bucket(&mut d, "log", 1).await;
    let (_, list) = http(server.http_addr(), "GET", "/v1/users/u/buckets", None, None).await;
    assert_eq!(list[0]["stats"]["count"], 101);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

struct Running {
    child: Child,
    tcp: SocketAddr,
    http: SocketAddr,
}

/// Starts the binary on ephemeral ports and reads its addresses from stdout.
fn spawn_binary(dir: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_thinger-server"))
        .args(["--allow-any", "--no-tls", "--tcp-port", "0", "--http-port", "0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut tcp, mut http) = (None, None);
    while tcp.is_none() || http.is_none() {
        let line = lines.next().expect("binary exited").unwrap();
        let addr = line.split_whitespace().last().unwrap().trim_start_matches("http://").to_owned();
        if line.starts_with("IOTMP over TCP") {
            tcp = Some(addr.parse().unwrap());
        } else if line.starts_with("REST API") {
            http = Some(addr.parse().unwrap());
        }
    }
    Running { child, tcp: tcp.unwrap(), http: http.unwrap() }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = common::temp_dir("kill9");
    let mut first = spawn_binary(&dir);
    let mut d = online(first.tcp, "u", "d").await;
    write_bucket(&mut d, "log", 100).await;
    // SIGKILL right after the last acknowledgement: no chance to flush or close anything.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    drop(d);

    let mut second = spawn_binary(&dir);
    let (status, data) = http(second.http, "GET", "/v1/users/u/buckets/log/data?items=1000&sort=asc", None, None).await;
    assert_eq!(status, 200);
    let items = data.as_array().unwrap();
    assert_eq!(items.len(), 100);
    assert!(items.iter().enumerate().all(|(i, r)| r["val"]["i"] == i as u64));
    assert!(items.windows(2).all(|w| w[0]["ts"].as_u64() <= w[1]["ts"].as_u64()));
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
