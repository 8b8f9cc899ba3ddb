//! Servers that misbehave after authenticating: the client must survive them and not
//! hammer them.

use std::time::Duration;

use thinger_core::iotmp::MessageType;
use thinger_core::pson::Value;
use thinger_core::session::DisconnectReason;
use thinger_std::dsl::input_output;
use thinger_std::resources::async_output;
use thinger_std::{Backoff, ClientEvent};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::peer::Peer;
use crate::support::{tcp_builder, wait_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_authenticates_then_sends_garbage_sees_growing_delays() {
    crate::support::logs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backoff =
        Backoff { initial: Duration::from_millis(10), max: Duration::from_secs(5), multiplier: 1.2, jitter: 0.0 };
    let (client, runner) = tcp_builder(addr, "garbage").backoff(backoff).build().unwrap();
    let mut events = client.events();
    let handle = tokio::spawn(runner.run());
    let mut collector = tokio::spawn(async move {
        let (mut delays, mut connected) = (Vec::new(), 0);
        while delays.len() < 20 {
            let wanted = |e: &ClientEvent| matches!(e, ClientEvent::Backoff { .. } | ClientEvent::Connected);
            match wait_event(&mut events, "a reconnect", wanted).await {
                ClientEvent::Backoff { delay, .. } => delays.push(delay),
                _ => connected += 1,
            }
        }
        (delays, connected)
    });
    let (delays, connected) = loop {
        tokio::select! {
            done = &mut collector => break done.unwrap(),
            (mut peer, _) = Peer::accept(&listener) => {
                // A malformed frame header: a protocol error right after a good CONNECT.
                let _ = peer.stream().write_all(&[0xff; 8]).await;
                // Hold the socket until the client hangs up.
                while peer.recv().await.is_some() {}
            }
        }
    };
    assert!(connected >= 19, "authenticated {connected} times");
    assert!(delays.windows(2).all(|w| w[1] > w[0]), "delays do not grow: {delays:?}");
    client.shutdown().await;
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_larger_than_the_buffer_is_refused_and_the_connection_kept() {
    crate::support::logs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tcp_builder(addr, "small")
        .buffer_size(12 * 1024)
        .resource("echo", input_output(|text: String| text.len() as u64))
        .spawn()
        .unwrap();
    let mut events = client.events();
    let (mut peer, _) = Peer::accept(&listener).await;
    // 100 kB of input: far more than the 4.5 kB receive region of a 12 kB session buffer.
    let big = Value::Str("x".repeat(100_000)).encode_to_vec();
    peer.queue_run(41, "echo", Some(&big));
    peer.flush().await;
    let reply = peer.recv_skipping_keepalives().await.expect("an answer to the big RUN");
    assert_eq!((reply.kind, reply.id), (MessageType::Error, 41));
    assert_eq!(reply.params, Some(Value::Uint(413)));
    let skipped = wait_event(&mut events, "FrameSkipped", |e| matches!(e, ClientEvent::FrameSkipped { .. })).await;
    assert!(matches!(skipped, ClientEvent::FrameSkipped { size, stream_id: 41 } if size > 100_000), "{skipped:?}");
    // Same connection: the next RUN is answered.
    let small = Value::Str("hello".into()).encode_to_vec();
    peer.queue_run(42, "echo", Some(&small));
    peer.flush().await;
    let reply = peer.recv_skipping_keepalives().await.expect("an answer to the next RUN");
    assert_eq!((reply.kind, reply.id, reply.payload), (MessageType::Ok, 42, Some(Value::Uint(5))));
    assert!(client.is_connected());
    assert_eq!(client.stats().await.unwrap().connections, 1);
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_ends_in_a_write_timeout() {
    crate::support::logs();
    // A tiny receive buffer on the accepted socket, and the peer never reads after CONNECT.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(8).unwrap();
    // A keep-alive long enough that, on a loaded machine, the dead-peer watchdog (1.15 ×
    // keep-alive without input) cannot beat the write timeout (keep-alive + 5 s) while the
    // runner is still writing its way into the full socket.
    let (client, runner) = tcp_builder(addr, "stuck")
        .keep_alive(Duration::from_secs(5))
        .buffer_size(256 * 1024)
        .queue_window(32)
        .build()
        .unwrap();
    let mut events = client.events();
    let task = tokio::spawn(runner.run());
    let (mut peer, _) = Peer::accept(&listener).await;
    // Keep-alives from the peer keep the dead-peer watchdog quiet.
    let quiet = tokio::spawn(async move {
        loop {
            if peer.stream().write_all(&[0x05, 0x00]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    client.connected().await.unwrap();
    let blob = "x".repeat(90_000);
    // Until the runner is stuck in a write (it then takes no more commands).
    let quick = client.with_timeout(Duration::from_millis(500));
    for _ in 0..200 {
        if quick.queue_bucket_write("b", &blob).await.is_err() {
            break;
        }
    }
    let ended = tokio::time::timeout(
        Duration::from_secs(30),
        events.wait_for(|e| matches!(e, ClientEvent::Disconnected { .. })),
    )
    .await
    .expect("no Disconnected within 30 s")
    .expect("the client stopped");
    assert!(matches!(ended, ClientEvent::Disconnected { reason: DisconnectReason::WriteTimeout, .. }), "{ended:?}");
    client.shutdown().await;
    task.await.unwrap();
    quiet.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_granted_after_the_request_timeout_is_still_taken() {
    crate::support::logs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tcp_builder(addr, "locker").request_timeout(Duration::from_secs(1)).spawn().unwrap();
    let (mut peer, _) = Peer::accept(&listener).await;
    let locker = client.clone();
    let call = tokio::spawn(async move { locker.lock_sync("door", "me", 1, Some(Duration::from_secs(3))).await });
    let request = peer.recv_skipping_keepalives().await.unwrap();
    assert_eq!(request.kind, MessageType::Run);
    // The server's wait (3 s) is longer than the request timeout (1 s): grant after 1.5 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    peer.send(thinger_core::iotmp::OutgoingMessage::new(MessageType::Ok, request.id)).await;
    assert_eq!(call.await.unwrap(), Ok(()));
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_output_streams_values_without_ever_being_run() {
    crate::support::logs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client =
        tcp_builder(addr, "streamer").async_resource("weather", async_output(|| async { Ok(21u32) })).spawn().unwrap();
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.queue_start_stream(9, "weather", Some(100));
    peer.flush().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut values = Vec::new();
    while tokio::time::Instant::now() < deadline && values.len() < 3 {
        let Ok(Some(f)) = tokio::time::timeout_at(deadline, peer.recv_skipping_keepalives()).await else { break };
        if f.kind == MessageType::StreamData && f.id == 9 {
            values.extend(f.payload);
        }
    }
    assert!(values.len() >= 3 && values.iter().all(|v| *v == Value::Uint(21)), "{values:?}");
    client.shutdown().await;
}
