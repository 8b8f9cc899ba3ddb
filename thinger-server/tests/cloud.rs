//! Cloud calls and subscriptions, as devices see them.

mod common;

use std::time::{Duration, Instant};

use common::{Device, enc, http, online};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson;
use thinger_core::pson::Value;
use thinger_server::{EndpointConfig, Server, ServerConfig, TlsMode};

async fn server_with(config: ServerConfig) -> Server {
    Server::start(config.tls(TlsMode::Off)).await.unwrap()
}

fn s(v: &str) -> Value {
    Value::from(v)
}

#[tokio::test]
async fn properties_read_set_and_both_placements() {
    let server = server_with(ServerConfig::local()).await;
    let mut d = online(server.tcp_addr(), "u", "d").await;

    let missing = d.call(10, 1, &s("cfg"), None).await;
    assert!(missing.is(MessageType::Error));
    assert_eq!(missing.params, Some(Value::Uint(404)));

    let set = d.call(11, 2, &s("cfg"), Some(&pson!({"rate": 5, "name": "x"}))).await;
    assert!(set.is(MessageType::Ok));
    assert_eq!(set.payload, None);

    let read = d.call(12, 1, &s("cfg"), None).await;
    assert!(read.is(MessageType::Ok));
    assert_eq!(read.payload, Some(pson!({"rate": 5, "name": "x"})));

    // Embedded placement: F2 = code (varint), F4 = id.
    let f = enc(OutgoingMessage::new(MessageType::Run, 13)
        .parameters(OutField::Varint(1))
        .resource(OutField::Pson(&"cfg")));
    d.send(f).await;
    let read = d.reply(13).await;
    assert!(read.is(MessageType::Ok));
    assert_eq!(read.payload.unwrap()["rate"], 5);

    // Not a cloud call at all.
    let f = enc(OutgoingMessage::new(MessageType::Run, 14).resource(OutField::Pson(&"led")));
    d.send(f).await;
    assert_eq!(d.reply(14).await.params, Some(Value::Uint(400)));
    // Unknown call code.
    assert_eq!(d.call(15, 42, &s("x"), None).await.params, Some(Value::Uint(400)));

    assert_eq!(server.property("u", "d", "cfg").await.unwrap()["name"], "x");
    server.shutdown().await;
}

#[tokio::test]
async fn property_changes_reach_subscribers() {
    let server = server_with(ServerConfig::local()).await;
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let sub = d.subscribe(20, &pson!({"event": "device_property_update", "filters": {"property": "cfg"}})).await;
    assert!(sub.is(MessageType::Ok));

    // Changed through the REST API (the cloud's {"value": ...} form).
    let (status, body) = http(
        server.http_addr(),
        "PUT",
        "/v3/users/u/devices/d/properties/cfg",
        Some(r#"{"value": {"on": true}}"#),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["value"]["on"], true);
    let event = d.frame().await;
    assert!(event.is(MessageType::StreamData));
    assert_eq!(event.sid, 20);
    assert_eq!(event.payload, Some(pson!({"on": true})));

    // Changed by the device itself; another property does not match the filter.
    d.call(21, 2, &s("other"), Some(&Value::Uint(1))).await;
    let f = enc(OutgoingMessage::new(MessageType::Run, 22)
        .parameters(OutField::Pson(&"cfg"))
        .payload(OutField::Varint(7))
        .resource(OutField::Varint(2)));
    d.send(f).await;
    // The OK and the change event may come in either order.
    let (x, y) = (d.frame().await, d.frame().await);
    let (ok, event) = if x.is(MessageType::Ok) { (x, y) } else { (y, x) };
    assert!(ok.is(MessageType::Ok) && ok.sid == 22, "{ok:?}");
    assert!(event.is(MessageType::StreamData));
    assert_eq!((event.sid, event.payload), (20, Some(Value::Uint(7))));

    // After STOP_STREAM nothing more arrives.
    d.send(enc(OutgoingMessage::new(MessageType::StopStream, 20))).await;
    assert!(d.reply(20).await.is(MessageType::Ok));
    server.set_property("u", "d", "cfg", Value::Uint(8)).await.unwrap();
    d.send_raw(&[0x05, 0x00]).await;
    assert_eq!(d.frame().await.raw, vec![0x05, 0x00], "no event after the stream stopped");
    server.shutdown().await;
}

#[tokio::test]
async fn bucket_writes_are_stored_with_server_timestamps() {
    let server = server_with(ServerConfig::local()).await;
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    for i in 0..3u64 {
        let r = d.call(30 + i as u16, 5, &s("weather"), Some(&pson!({"t": 20 + i}))).await;
        assert!(r.is(MessageType::Ok));
        assert_eq!(r.payload, None);
    }
    let records = server.bucket_data("u", "weather").await;
    assert_eq!(records.len(), 3);
    assert!(records.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert!(records[0].ts >= before);
    assert_eq!(records[2].value["t"], 22);
    assert_eq!(records[0].device, "d");

    let (status, list) = http(server.http_addr(), "GET", "/v1/users/u/buckets", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["bucket"], "weather");
    assert_eq!(list[0]["stats"]["count"], 3);
    let (status, data) = http(server.http_addr(), "GET", "/v1/users/u/buckets/weather/data?items=2", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(data.as_array().unwrap().len(), 2);
    assert_eq!(data[0]["val"]["t"], 22, "newest first by default");
    let (_, data) = http(server.http_addr(), "GET", "/v1/users/u/buckets/weather/data?sort=asc", None, None).await;
    assert_eq!(data[0]["val"]["t"], 20);
    let (status, _) = http(server.http_addr(), "GET", "/v1/users/u/buckets/nope/data", None, None).await;
    assert_eq!(status, 404);
    // Buckets belong to the user: another user does not see them.
    let (_, list) = http(server.http_addr(), "GET", "/v1/users/other/buckets", None, None).await;
    assert_eq!(list, serde_json::json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn endpoints_are_recorded_and_listed() {
    let server = server_with(ServerConfig::local()).await;
    let mut d = online(server.tcp_addr(), "u", "d").await;
    assert!(d.call(40, 4, &s("email"), Some(&pson!({"to": "me"}))).await.is(MessageType::Ok));
    assert!(d.call(41, 4, &s("hook"), None).await.is(MessageType::Ok));
    let calls = server.endpoint_calls("u").await;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].endpoint, "email");
    assert_eq!(calls[0].data["to"], "me");
    let (status, list) = http(server.http_addr(), "GET", "/v1/users/u/endpoints", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, calls) = http(server.http_addr(), "GET", "/v1/users/u/endpoints/email/calls", None, None).await;
    assert_eq!(calls[0]["device"], "d");
    assert_eq!(calls[0]["data"]["to"], "me");
    server.shutdown().await;

    // Declared endpoints: others are unknown (404); a declared one returns its response.
    let config = ServerConfig::local().endpoint(EndpointConfig::new("email").response(pson!({"sent": true})));
    let server = server_with(config).await;
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let r = d.call(42, 4, &s("email"), None).await;
    assert_eq!(r.payload, Some(pson!({"sent": true})));
    let r = d.call(43, 4, &s("nope"), None).await;
    assert!(r.is(MessageType::Error));
    assert_eq!(r.params, Some(Value::Uint(404)));
    server.shutdown().await;
}

#[tokio::test]
async fn device_to_device_calls() {
    let server = server_with(ServerConfig::local().device_timeout(Duration::from_millis(300))).await;
    let mut a = online(server.tcp_addr(), "u", "a").await;
    let mut b = online(server.tcp_addr(), "u", "b").await;

    // b answers a's call: the request carries the input, the reply comes back to a.
    let b_task = tokio::spawn(async move {
        let req = b.answer_run(Some(&pson!({"sum": 5}))).await;
        assert_eq!(req.resource, Some(Value::from("sum")));
        assert_eq!(req.payload, Some(pson!({"a": 2, "b": 3})));
        // Then a handler error, passed through as is.
        let req = b.frame().await;
        let f = enc(OutgoingMessage::new(MessageType::Error, req.sid)
            .parameters(OutField::Varint(418))
            .payload(OutField::Pson(&pson!({"error": "teapot"}))));
        b.send(f).await;
        // Then silence: a gets 504.
        let _ignored = b.frame().await;
        b
    });
    let target = pson!(["b", "sum"]);
    let r = a.call(50, 3, &target, Some(&pson!({"a": 2, "b": 3}))).await;
    assert!(r.is(MessageType::Ok));
    assert_eq!(r.payload, Some(pson!({"sum": 5})));
    let r = a.call(51, 3, &pson!(["b", "fail"]), None).await;
    assert!(r.is(MessageType::Error));
    assert_eq!(r.params, Some(Value::Uint(418)));
    assert_eq!(r.payload, Some(pson!({"error": "teapot"})));
    let start = Instant::now();
    let r = a.call(52, 3, &pson!(["b", "slow"]), None).await;
    assert_eq!(r.params, Some(Value::Uint(504)));
    assert!(start.elapsed() >= Duration::from_millis(300));
    let _b = b_task.await.unwrap();

    // Offline and never-seen devices: 503.
    let r = a.call(53, 3, &pson!(["ghost", "x"]), None).await;
    assert_eq!(r.params, Some(Value::Uint(503)));
    // Another user's device is not reachable.
    let _c = online(server.tcp_addr(), "other", "c").await;
    let r = a.call(54, 3, &pson!(["c", "x"]), None).await;
    assert_eq!(r.params, Some(Value::Uint(503)));
    server.shutdown().await;
}

#[tokio::test]
async fn mqtt_topics_between_devices() {
    let server = server_with(ServerConfig::local()).await;
    let mut publisher = online(server.tcp_addr(), "u", "pub").await;
    let mut subscriber = online(server.tcp_addr(), "u", "sub").await;
    let mut stranger = online(server.tcp_addr(), "someone-else", "sub").await;

    let ok = subscriber
        .subscribe(60, &pson!({"event": "device_topic_publish", "scope": "subscribe", "topic": "home/+"}))
        .await;
    assert!(ok.is(MessageType::Ok));
    assert!(
        stranger.subscribe(61, &pson!({"event": "device_topic_publish", "topic": "home/t"})).await.is(MessageType::Ok)
    );
    let ok =
        publisher.subscribe(70, &pson!({"event": "device_topic_publish", "scope": "publish", "topic": "home/t"})).await;
    assert!(ok.is(MessageType::Ok));

    publisher.send(enc(OutgoingMessage::new(MessageType::StreamData, 70).payload(OutField::Pson(&21.5f64)))).await;
    let msg = subscriber.frame().await;
    assert!(msg.is(MessageType::StreamData));
    assert_eq!(msg.sid, 60);
    let body = msg.payload.unwrap();
    assert_eq!(body["topic"], "home/t");
    assert!(body["payload"].value_eq(&Value::F64(21.5)));

    // A retained message reaches a later subscriber at once.
    let ok = publisher
        .subscribe(
            71,
            &pson!({"event": "device_topic_publish", "scope": "publish", "topic": "home/door", "retained": true}),
        )
        .await;
    assert!(ok.is(MessageType::Ok));
    publisher.send(enc(OutgoingMessage::new(MessageType::StreamData, 71).payload(OutField::Pson(&"open")))).await;
    assert_eq!(subscriber.frame().await.payload.unwrap()["payload"], "open");
    let mut late = online(server.tcp_addr(), "u", "late").await;
    assert!(late.subscribe(80, &pson!({"event": "device_topic_publish", "topic": "home/#"})).await.is(MessageType::Ok));
    let retained = late.frame().await;
    assert_eq!(retained.sid, 80);
    assert_eq!(retained.payload.unwrap(), pson!({"topic": "home/door", "payload": "open"}));

    // The other user's subscriber saw nothing.
    stranger.send_raw(&[0x05, 0x00]).await;
    assert_eq!(stranger.frame().await.raw, vec![0x05, 0x00]);
    server.shutdown().await;
}

#[tokio::test]
async fn sync_locks() {
    let server = server_with(ServerConfig::local()).await;
    let mut a = online(server.tcp_addr(), "u", "a").await;
    let mut b = online(server.tcp_addr(), "u", "b").await;
    let mut c = online(server.tcp_addr(), "u", "c").await;
    let door = s("door");

    assert!(a.call(1, 6, &door, Some(&pson!({"lock": "a"}))).await.is(MessageType::Ok));
    // Held: a 1 s timeout expires with 408.
    let start = Instant::now();
    let r = c.call(2, 6, &door, Some(&pson!({"lock": "c", "timeout": 1}))).await;
    assert_eq!(r.params, Some(Value::Uint(408)));
    assert!(start.elapsed() >= Duration::from_millis(950));
    // Unlocking a lock one does not hold: 409.
    assert_eq!(c.call(3, 7, &door, Some(&pson!({"lock": "c"}))).await.params, Some(Value::Uint(409)));

    // b waits; a unlocks; b gets the lock.
    let f = enc(OutgoingMessage::new(MessageType::Run, 4)
        .parameters(OutField::Pson(&door))
        .payload(OutField::Pson(&pson!({"lock": "b", "timeout": 5})))
        .resource(OutField::Varint(6)));
    b.send(f).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(a.call(5, 7, &door, Some(&pson!({"lock": "a"}))).await.is(MessageType::Ok));
    assert!(b.reply(4).await.is(MessageType::Ok));

    // b disconnects while holding it: a waiter (no timeout) is granted.
    let f = enc(OutgoingMessage::new(MessageType::Run, 6)
        .parameters(OutField::Pson(&door))
        .payload(OutField::Pson(&pson!({"lock": "a"})))
        .resource(OutField::Varint(6)));
    a.send(f).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(b);
    assert!(a.reply(6).await.is(MessageType::Ok));

    // Two slots: two holders at once.
    let pool = s("pool");
    assert!(a.call(7, 6, &pool, Some(&pson!({"lock": 1, "slots": 2}))).await.is(MessageType::Ok));
    assert!(c.call(8, 6, &pool, Some(&pson!({"lock": 2, "slots": 2}))).await.is(MessageType::Ok));
    let r = c.call(9, 6, &pool, Some(&pson!({"lock": 3, "slots": 2, "timeout": 1}))).await;
    assert_eq!(r.params, Some(Value::Uint(408)));
    server.shutdown().await;
}

#[tokio::test]
async fn device_state_events() {
    let server = server_with(ServerConfig::local()).await;
    let mut watcher = online(server.tcp_addr(), "u", "watcher").await;
    assert!(watcher.subscribe(90, &pson!({"event": "device_state_change"})).await.is(MessageType::Ok));
    assert!(
        watcher
            .subscribe(91, &pson!({"event": "device_state_change", "filters": {"device": "nobody"}}))
            .await
            .is(MessageType::Ok)
    );
    let other = online(server.tcp_addr(), "u", "other").await;
    let e = watcher.frame().await;
    assert_eq!(e.sid, 90);
    assert_eq!(e.payload, Some(pson!({"device": "other", "state": "connected"})));
    drop(other);
    let e = watcher.frame().await;
    assert_eq!(e.payload, Some(pson!({"device": "other", "state": "disconnected"})));
    // Subscription errors: no event, or an unknown stream resource.
    assert_eq!(watcher.subscribe(92, &pson!({"topic": "x"})).await.params, Some(Value::Uint(400)));
    let f = enc(OutgoingMessage::new(MessageType::StartStream, 93).resource(OutField::Pson(&"led")));
    watcher.send(f).await;
    assert_eq!(watcher.reply(93).await.params, Some(Value::Uint(404)));
    server.shutdown().await;
}

#[tokio::test]
async fn cloud_calls_over_websocket_too() {
    let server = server_with(ServerConfig::local()).await;
    let mut d = Device::ws(&server.ws_url()).await;
    assert!(d.connect("u", "ws", "x").await.is(MessageType::Ok));
    assert!(d.call(1, 5, &s("b"), Some(&Value::Uint(1))).await.is(MessageType::Ok));
    assert_eq!(server.bucket_data("u", "b").await.len(), 1);
    server.shutdown().await;
}
