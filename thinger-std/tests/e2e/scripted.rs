//! The adapter against a scripted IOTMP peer: byte-level edge cases the real server does not
//! produce on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson::Value;
use thinger_std::dsl::output;
use thinger_std::resources::async_input_output;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::peer::Peer;
use crate::support::tcp_builder;

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_split_into_single_bytes_and_large_bursts_are_all_answered() {
    let (listener, addr) = listener().await;
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let client = tcp_builder(addr, "bytes")
        .resource("n", output(move || counter.fetch_add(1, Ordering::SeqCst)))
        .spawn()
        .unwrap();
    let (mut peer, connect) = Peer::accept(&listener).await;
    assert_eq!(connect.payload, Some(Value::Array(vec!["user1".into(), "bytes".into(), "secret".into()])));

    // One RUN, one byte per write.
    peer.queue_run(7, "n", None);
    let bytes = std::mem::take(peer.out_buffer());
    for b in bytes {
        peer.stream().write_all(&[b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let reply = peer.recv_skipping_keepalives().await.unwrap();
    assert_eq!((reply.kind, reply.id, reply.payload), (MessageType::Ok, 7, Some(Value::Uint(0))));

    // 500 RUNs in one write: more than the session's receive buffer holds at once.
    for id in 1000..1500u16 {
        peer.queue_run(id, "n", None);
    }
    peer.flush().await;
    let mut ids = Vec::new();
    while ids.len() < 500 {
        let f = tokio::time::timeout(Duration::from_secs(5), peer.recv_skipping_keepalives()).await.unwrap().unwrap();
        assert_eq!(f.kind, MessageType::Ok);
        ids.push(f.id);
    }
    assert_eq!(ids, (1000..1500).collect::<Vec<u16>>(), "answers out of order or missing");
    assert_eq!(calls.load(Ordering::SeqCst), 501);
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_handlers_never_answer_a_request_with_another_requests_result() {
    let (listener, addr) = listener().await;
    let ran_with = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = ran_with.clone();
    let handler = async_input_output(move |x: u64| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(x);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(x * 10)
        }
    });
    let client = tcp_builder(addr, "pairing").async_resource("times10", handler).spawn().unwrap();
    let (mut peer, _) = Peer::accept(&listener).await;

    // A stream into the resource, then in the same write stream data (which the session does
    // not defer) and a RUN (which it does).
    peer.queue_start_stream(100, "times10", None);
    peer.flush().await;
    let ok = peer.recv_skipping_keepalives().await.unwrap();
    assert_eq!((ok.kind, ok.id), (MessageType::Ok, 100));
    peer.queue(OutgoingMessage::new(MessageType::StreamData, 100).payload(OutField::Varint(5)));
    peer.queue_run(200, "times10", Some(&[0x07]));
    peer.flush().await;
    let reply = loop {
        let f = peer.recv_skipping_keepalives().await.unwrap();
        if f.id == 200 {
            break f;
        }
    };
    // Each future carries the id of the request it answers: the RUN gets its own result,
    // whatever else arrived in the same read.
    assert_eq!((reply.kind, reply.payload), (MessageType::Ok, Some(Value::Uint(70))));
    // A RUN on its own is answered with its own result.
    peer.queue_run(201, "times10", Some(&[0x09]));
    peer.flush().await;
    let reply = loop {
        let f = peer.recv_skipping_keepalives().await.unwrap();
        if f.id == 201 {
            break f;
        }
    };
    assert_eq!((reply.kind, reply.payload), (MessageType::Ok, Some(Value::Uint(90))));
    // The stream data was applied too (its future ran, unanswered, as stream data has no reply).
    assert!(ran_with.lock().unwrap().contains(&5), "{:?}", ran_with.lock().unwrap());
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_write_the_server_refuses_is_reported_and_leaves_the_queue() {
    let (listener, addr) = listener().await;
    let client = tcp_builder(addr, "refused").spawn().unwrap();
    let (mut peer, _) = Peer::accept(&listener).await;
    client.connected().await.unwrap();
    let mut events = client.events();

    // Nobody awaits this write: only the event can tell that the server refused it.
    client.queue_bucket_write("readings", &1u8).await.unwrap();
    let call = tokio::time::timeout(Duration::from_secs(5), peer.recv_skipping_keepalives()).await.unwrap().unwrap();
    peer.send(OutgoingMessage::new(MessageType::Error, call.id)).await;
    let event = crate::support::wait_event(&mut events, "the refused write", |e| {
        matches!(e, thinger_std::ClientEvent::QueuedWriteFailed { .. })
    })
    .await;
    let thinger_std::ClientEvent::QueuedWriteFailed { target, endpoint, error } = event else { unreachable!() };
    assert_eq!((target.as_str(), endpoint), ("readings", false), "{error}");
    assert_eq!(client.stats().await.unwrap().queued, 0, "a refused entry is not resent");

    // An endpoint call refused the same way names the endpoint.
    client.queue_endpoint_call("alert", Some(&"hot")).await.unwrap();
    let call = tokio::time::timeout(Duration::from_secs(5), peer.recv_skipping_keepalives()).await.unwrap().unwrap();
    peer.send(OutgoingMessage::new(MessageType::Error, call.id)).await;
    let event = crate::support::wait_event(&mut events, "the refused endpoint call", |e| {
        matches!(e, thinger_std::ClientEvent::QueuedWriteFailed { .. })
    })
    .await;
    assert!(
        matches!(&event, thinger_std::ClientEvent::QueuedWriteFailed { target, endpoint: true, .. } if target == "alert"),
        "{event:?}"
    );
    client.shutdown().await;
}

/// Polls the client's stats (up to 5 s) until `pred` holds; returns them.
async fn stats_until(client: &thinger_std::Client, pred: impl Fn(&thinger_std::Stats) -> bool) -> thinger_std::Stats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = client.stats().await.unwrap();
        if pred(&stats) || tokio::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_holds_no_session_buffer() {
    let (listener, addr) = listener().await;
    let client = tcp_builder(addr, "idle").buffer_size(4096).resource("n", output(|| 5u32)).spawn().unwrap();
    let (mut peer, _) = Peer::accept(&listener).await;
    let connected = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.status() != thinger_std::Status::Connected && tokio::time::Instant::now() < connected {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(client.status(), thinger_std::Status::Connected);
    // Authenticated and waiting with nothing buffered: the buffer went back to the thread.
    assert_eq!(stats_until(&client, |s| s.session_buffer == 0).await.session_buffer, 0);

    // Half a RUN waits in the session buffer, which is then held.
    peer.queue_run(7, "n", None);
    let bytes = std::mem::take(peer.out_buffer());
    peer.stream().write_all(&bytes[..3]).await.unwrap();
    assert_eq!(stats_until(&client, |s| s.session_buffer > 0).await.session_buffer, 4096);
    // The rest: answered, and the buffer goes back again.
    peer.stream().write_all(&bytes[3..]).await.unwrap();
    let reply = peer.recv_skipping_keepalives().await.unwrap();
    assert_eq!((reply.kind, reply.id, reply.payload), (MessageType::Ok, 7, Some(Value::Uint(5))));
    assert_eq!(stats_until(&client, |s| s.session_buffer == 0).await.session_buffer, 0);
    client.shutdown().await;
}
