//! A client with compact session tables (`Capacity::Compact`) against the local server:
//! everything works within its limits, more waits or gets a typed error.

use std::time::Duration;

use thinger_std::dsl::output;
use thinger_std::{Capacity, Error};

use crate::support::{USER, http, server, tcp_builder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_tables_serve_queue_the_excess_and_refuse_a_fifth_subscription() {
    let server = server().await;
    let client = tcp_builder(server.tcp_addr(), "compact")
        .capacity(Capacity::Compact)
        .buffer_size(4096)
        .resource("temperature", output(|| 21.5f32))
        .spawn()
        .unwrap();
    client.connected().await.unwrap();
    assert!(server.wait_connected(USER, "compact", Duration::from_secs(5)).await);

    // The server reaches the resource.
    let r =
        http(server.http_addr(), "GET", &format!("/v3/users/{USER}/devices/compact/resources/temperature"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!(21.5));

    // Four subscriptions fit; each delivers its property's current value.
    let mut subs = Vec::new();
    for i in 0..Capacity::Compact.streams() {
        let name = format!("p{i}");
        server.set_property(USER, "compact", &name, (i as i64).into()).await.unwrap();
        subs.push(client.subscribe_property::<i64>(&name, true).await.unwrap());
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        let first = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("no property value");
        assert_eq!(first.unwrap().unwrap(), i as i64);
    }
    // A fifth does not: its stream says why.
    let mut fifth = client.subscribe_property::<i64>("p9", true).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(5), fifth.next()).await.expect("no answer for the fifth");
    assert!(matches!(refused, Some(Err(Error::TooMany))), "{refused:?}");

    // Three times as many cloud calls at once as the table holds requests: the excess
    // waits in the client and every call is answered.
    let calls = 3 * Capacity::Compact.requests();
    for i in 0..calls {
        server.set_property(USER, "compact", &format!("q{i}"), (i as i64).into()).await.unwrap();
    }
    let reads = (0..calls).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { client.get_property::<i64>(&format!("q{i}")).await })
    });
    let mut answered = Vec::new();
    for read in reads.collect::<Vec<_>>() {
        answered.push(read.await.unwrap().unwrap());
    }
    assert_eq!(answered, (0..calls as i64).collect::<Vec<_>>());

    client.shutdown().await;
    server.shutdown().await;
}
