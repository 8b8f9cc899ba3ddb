//! Outages: wrong credentials, dead peers, server kills and restarts, the offline queue.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use thinger_core::iotmp::{MessageType, OutgoingMessage, parse_frame};
use thinger_core::session::DisconnectReason;
use thinger_server::{Server, ServerConfig, TlsMode};
use thinger_std::dsl::output;
use thinger_std::{Backoff, ClientEvent, Error, Overflow, QueueConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{ChildServer, USER, count_stream_samples, http, tcp_builder, temp_dir, wait_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_authentication_and_back_off() {
    crate::support::logs();
    let config = ServerConfig::local().allow_any(false).credential(USER, "authdev", "right").tls(TlsMode::Off);
    let server = Server::start(config).await.unwrap();
    let backoff =
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(5), multiplier: 2.0, jitter: 0.0 };
    let (client, runner) = tcp_builder(server.tcp_addr(), "authdev").backoff(backoff).build().unwrap();
    let mut events = client.events();
    let handle = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(runner.run())
    });
    let start = Instant::now();
    let mut failures = 0;
    let mut delays = Vec::new();
    while start.elapsed() < Duration::from_millis(1600) {
        match tokio::time::timeout(Duration::from_millis(200), events.next()).await {
            Ok(Some(ClientEvent::AuthFailed { code, .. })) => {
                failures += 1;
                assert!(code.is_some(), "the server's refusal carries a code");
            }
            Ok(Some(ClientEvent::Backoff { delay, .. })) => delays.push(delay),
            Ok(Some(ClientEvent::Connected)) => panic!("connected with a wrong credential"),
            _ => {}
        }
    }
    // Attempts at 0, 0.1, 0.3, 0.7 and 1.5 s: a handful, not a hot loop.
    assert!((3..=6).contains(&failures), "{failures} authentication failures in 1.6 s");
    assert!(delays.windows(2).all(|w| w[1] > w[0]), "delays do not grow: {delays:?}");
    assert_eq!(client.status(), thinger_std::Status::Disconnected);
    // Calls wait for a connection that does not come, and time out.
    let impatient = client.with_timeout(Duration::from_millis(200));
    assert_eq!(impatient.get_property::<u8>("x").await, Err(Error::Timeout));
    client.shutdown().await;
    handle.join().unwrap();
    server.shutdown().await;
}

/// A peer that accepts the CONNECT and then never says anything again.
async fn silent_peer() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let id = loop {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed before CONNECT");
            buf.extend_from_slice(&chunk[..n]);
            if let Ok(Some((frame, _))) = parse_frame(&buf, 1 << 16) {
                let message = frame.message().unwrap();
                assert_eq!(message.kind, MessageType::Connect);
                break message.stream_id;
            }
        };
        let mut ok = [0u8; 16];
        let n = OutgoingMessage::new(MessageType::Ok, id).encode(&mut ok).unwrap();
        socket.write_all(&ok[..n]).await.unwrap();
        // Swallow keep-alives without answering; hold the socket open.
        while socket.read(&mut chunk).await.is_ok_and(|n| n > 0) {}
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_peer_is_detected_by_the_keep_alive_watchdog() {
    let (addr, peer) = silent_peer().await;
    let client = tcp_builder(addr, "dead").keep_alive(Duration::from_secs(1)).spawn().unwrap();
    let mut events = client.events();
    wait_event(&mut events, "connected", |e| *e == ClientEvent::Connected).await;
    let connected = Instant::now();
    let ended = wait_event(&mut events, "a disconnect", |e| matches!(e, ClientEvent::Disconnected { .. })).await;
    let elapsed = connected.elapsed();
    assert!(matches!(ended, ClientEvent::Disconnected { reason: DisconnectReason::Timeout, .. }), "{ended:?}");
    // The watchdog fires at 1.15 × the keep-alive interval.
    assert!(elapsed >= Duration::from_millis(1000) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    client.shutdown().await;
    peer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_kill_the_client_reconnects_and_its_streams_resume() {
    crate::support::logs();
    let dir = temp_dir("restart");
    let first = ChildServer::start(&dir, None);
    let samples = Arc::new(AtomicU32::new(0));
    let counter = samples.clone();
    let client = tcp_builder(first.tcp, "phoenix")
        .keep_alive(Duration::from_secs(5))
        .resource("counter", output(move || counter.fetch_add(1, Ordering::SeqCst)))
        .spawn()
        .unwrap();
    let mut events = client.events();
    client.connected().await.unwrap();
    let props = format!("/v3/users/{USER}/devices/phoenix/properties/mode");
    let mut mode = client.subscribe_property::<String>("mode", false).await.unwrap();
    // The subscription opens asynchronously: change the property until the change arrives.
    let mut first_value = None;
    for i in 0..50 {
        http(first.http, "PUT", &props, Some(&format!(r#"{{"value": "v{i}"}}"#))).await;
        if let Ok(Some(v)) = tokio::time::timeout(Duration::from_millis(100), mode.next()).await {
            first_value = Some(v.unwrap());
            break;
        }
    }
    assert!(first_value.is_some_and(|v| v.starts_with('v')));

    let ports = first.kill();
    let ended = wait_event(&mut events, "the disconnect", |e| matches!(e, ClientEvent::Disconnected { .. })).await;
    assert!(matches!(ended, ClientEvent::Disconnected { .. }));
    let dir2 = dir.clone();
    let second = tokio::task::spawn_blocking(move || ChildServer::start(&dir2, Some(ports))).await.unwrap();
    wait_event(&mut events, "the reconnect", |e| *e == ClientEvent::Connected).await;

    // The property subscription was renewed on the new connection.
    let mut renewed = false;
    for i in 0..50 {
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), mode.next()).await {}
        http(second.http, "PUT", &props, Some(&format!(r#"{{"value": "after{i}"}}"#))).await;
        if let Ok(Some(v)) = tokio::time::timeout(Duration::from_millis(100), mode.next()).await {
            renewed = v.unwrap().starts_with("after");
            break;
        }
    }
    assert!(renewed, "no property update after the restart");
    // Resource streams work again.
    let path = format!("/v3/users/{USER}/devices/phoenix/resources/counter?interval=200");
    let got = count_stream_samples(second.http, &path, Duration::from_millis(1100)).await;
    assert!(got.len() >= 4, "{got:?}");
    client.shutdown().await;
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bucket_writes_survive_two_server_kills() {
    crate::support::logs();
    let dir = temp_dir("thousand");
    let first = ChildServer::start(&dir, None);
    let ports = (first.tcp.port(), first.http.port());
    let client = tcp_builder(first.tcp, "writer")
        .queue(QueueConfig::new().capacity(2000))
        .request_timeout(Duration::from_secs(10))
        .spawn()
        .unwrap();
    client.connected().await.unwrap();
    let mut server = Some(first);
    let started = Instant::now();
    for n in 1..=1000u32 {
        client.queue_bucket_write("seq", &serde_json::json!({ "n": n })).await.unwrap();
        if n % 25 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if (n == 300 || n == 650)
            && let Some(s) = server.take()
        {
            s.kill();
        }
        if n == 400 || n == 750 {
            let dir = dir.clone();
            server = Some(tokio::task::spawn_blocking(move || ChildServer::start(&dir, Some(ports))).await.unwrap());
        }
    }
    client.with_timeout(Duration::from_secs(30)).flush().await.unwrap();
    let elapsed = started.elapsed();
    // Both kills cut the connection: three sessions authenticated in all.
    let stats = client.stats().await.unwrap();
    assert!(stats.authentications >= 3, "{stats:?}");
    let server = server.unwrap();
    let r = http(server.http, "GET", &format!("/v1/users/{USER}/buckets/seq/data?items=5000&sort=asc"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let values: Vec<u64> = r.json().as_array().unwrap().iter().map(|rec| rec["val"]["n"].as_u64().unwrap()).collect();
    let unique: BTreeSet<u64> = values.iter().copied().collect();
    assert_eq!(unique, (1..=1000).collect::<BTreeSet<u64>>(), "writes were lost");
    let duplicates = values.len() - unique.len();
    // Per-client order: the first arrival of each write comes in the order they were made.
    let mut seen = HashSet::new();
    let firsts: Vec<u64> = values.iter().copied().filter(|n| seen.insert(*n)).collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "order broken");
    println!(
        "1000 writes, 2 kill -9 restarts: {duplicates} duplicates, {} connections, {elapsed:?}",
        stats.connections
    );
    client.shutdown().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_persisted_queue_survives_a_client_restart() {
    let dir = temp_dir("persist");
    let path = dir.join("outbox.log");
    let port = free_port().await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Nothing listens yet: the writes wait in the queue file.
    let first = tcp_builder(addr, "persist").queue(QueueConfig::new().persist(&path)).spawn().unwrap();
    for n in 0..20u32 {
        first.queue_bucket_write("kept", &n).await.unwrap();
    }
    assert_eq!(first.stats().await.unwrap().queued, 20);
    first.shutdown().await;

    let server = Server::start(ServerConfig::local().tls(TlsMode::Off).ports(port, 0, 0)).await.unwrap();
    let second = tcp_builder(addr, "persist").queue(QueueConfig::new().persist(&path)).spawn().unwrap();
    second.flush().await.unwrap();
    let stored: Vec<u64> = server.bucket_data(USER, "kept").await.iter().map(|r| r.value.as_u64().unwrap()).collect();
    assert_eq!(stored, (0..20).collect::<Vec<u64>>());
    second.shutdown().await;
    // Acknowledged entries are gone from the file too.
    let third = tcp_builder(addr, "persist").queue(QueueConfig::new().persist(&path)).spawn().unwrap();
    assert_eq!(third.stats().await.unwrap().queued, 0);
    third.shutdown().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_overflow_policies_and_timeouts_while_offline() {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port().await).parse().unwrap();
    let reject = tcp_builder(addr, "full").queue(QueueConfig::new().capacity(3)).spawn().unwrap();
    for n in 0..3u8 {
        reject.queue_bucket_write("b", &n).await.unwrap();
    }
    assert_eq!(reject.queue_bucket_write("b", &3u8).await, Err(Error::QueueFull));
    // A call that needs the connection times out with a typed error.
    let quick = reject.with_timeout(Duration::from_millis(200));
    assert_eq!(quick.get_property::<u8>("p").await, Err(Error::Timeout));
    // A queued write that is not acknowledged in time is still queued.
    assert_eq!(quick.write_bucket("b", &9u8).await, Err(Error::QueueFull));
    reject.shutdown().await;
    assert_eq!(reject.stats().await, Err(Error::Stopped));

    let newest =
        tcp_builder(addr, "full").queue(QueueConfig::new().capacity(2).overflow(Overflow::DropNewest)).spawn().unwrap();
    newest.queue_bucket_write("b", &0u8).await.unwrap();
    newest.queue_bucket_write("b", &1u8).await.unwrap();
    assert_eq!(newest.queue_bucket_write("b", &2u8).await, Err(Error::Dropped));
    newest.shutdown().await;

    let oldest =
        tcp_builder(addr, "full").queue(QueueConfig::new().capacity(2).overflow(Overflow::DropOldest)).spawn().unwrap();
    let waiting = {
        let c = oldest.with_timeout(Duration::from_secs(5));
        tokio::spawn(async move { c.write_bucket("b", &0u8).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    oldest.queue_bucket_write("b", &1u8).await.unwrap();
    oldest.queue_bucket_write("b", &2u8).await.unwrap();
    assert_eq!(waiting.await.unwrap(), Err(Error::Dropped));
    assert_eq!(oldest.stats().await.unwrap().queued, 2);
    let timed_out = oldest.with_timeout(Duration::from_millis(150)).write_bucket("b", &3u8).await;
    assert_eq!(timed_out, Err(Error::Timeout));
    assert_eq!(oldest.stats().await.unwrap().queued, 2, "DropOldest keeps the newest two");
    oldest.shutdown().await;
}
