//! Servers that misbehave after authenticating: the client must survive them and not
//! hammer them.

use std::time::Duration;

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
    let handle = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(runner.run())
    });
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
    handle.join().unwrap();
}
