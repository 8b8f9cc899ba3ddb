//! A subscriber never misses "connected": the event stream starts with the status the client
//! is already in. 50 clients per round, 20 rounds: half subscribe right after the runner
//! starts (racing the connection), half only once the client is connected.

use std::time::Duration;

use thinger_std::ClientEvent;

use crate::support::{server, tcp_builder};

const CLIENTS: usize = 50;
const ROUNDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_sees_connected_50_clients_20_rounds() {
    let server = server().await;
    let addr = server.tcp_addr();
    for round in 0..ROUNDS {
        let mut waits = Vec::new();
        for i in 0..CLIENTS {
            let device = format!("events-{round}-{i}");
            let (client, runner) = tcp_builder(addr, &device).build().unwrap();
            tokio::spawn(runner.run());
            waits.push(tokio::spawn(async move {
                let late = i % 2 == 1;
                if late {
                    // Subscribe only after the connection is up: the stream must still
                    // start with Connected.
                    client.connected().await.unwrap();
                }
                let mut events = client.events();
                let ok = if late {
                    // Already connected: the very first event is Connected.
                    let first = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
                    matches!(first, Ok(Some(ClientEvent::Connected)))
                } else {
                    let seen = tokio::time::timeout(
                        Duration::from_secs(20),
                        events.wait_for(|e| matches!(e, ClientEvent::Connected)),
                    )
                    .await;
                    matches!(seen, Ok(Some(ClientEvent::Connected)))
                };
                client.shutdown().await;
                (device, late, ok)
            }));
        }
        for wait in waits {
            let (device, late, ok) = wait.await.unwrap();
            assert!(
                ok,
                "round {round}: {device} (subscribed {}) never saw Connected",
                if late { "late" } else { "early" }
            );
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_late_subscriber_starts_with_connected_then_sees_stopped() {
    let server = server().await;
    let (client, runner) = tcp_builder(server.tcp_addr(), "events-late").build().unwrap();
    tokio::spawn(runner.run());
    client.connected().await.unwrap();
    let mut events = client.events();
    let first = tokio::time::timeout(Duration::from_secs(1), events.next()).await.unwrap();
    assert_eq!(first, Some(ClientEvent::Connected));
    client.shutdown().await;
    let mut after = client.events();
    let first = tokio::time::timeout(Duration::from_secs(1), after.next()).await.unwrap();
    assert_eq!(first, Some(ClientEvent::Stopped), "a subscriber after shutdown starts with Stopped");
    server.shutdown().await;
}
