//! The async cloud API against the local server.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thinger_std::dsl::input_output;
use thinger_std::resources::Resources;
use thinger_std::{Error, MqttMessage};

use crate::support::{USER, http, server, tcp_builder};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    n: u32,
    temperature: f64,
    label: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_writes_and_properties_round_trip() {
    let server = server().await;
    let client = tcp_builder(server.tcp_addr(), "cloud1").spawn().unwrap();
    client.connected().await.unwrap();

    for n in 0..5 {
        let reading = Reading { n, temperature: 20.5 + f64::from(n), label: format!("r{n}") };
        client.write_bucket("readings", &reading).await.unwrap();
    }
    let stored = server.bucket_data(USER, "readings").await;
    assert_eq!(stored.len(), 5);
    let back: Vec<Reading> =
        stored.iter().map(|r| serde_json::from_value(serde_json::to_value(&r.value).unwrap()).unwrap()).collect();
    assert_eq!(back[3], Reading { n: 3, temperature: 23.5, label: "r3".into() });
    // The REST API sees the same records.
    let r = http(server.http_addr(), "GET", &format!("/v1/users/{USER}/buckets/readings/data?sort=asc"), None).await;
    assert_eq!(r.json()[0]["val"]["label"], "r0");

    let config = serde_json::json!({"rate": 5, "unit": "C"});
    client.set_property("config", &config).await.unwrap();
    let read: serde_json::Value = client.get_property("config").await.unwrap();
    assert_eq!(read, config);
    // Typed.
    #[derive(Deserialize, PartialEq, Debug)]
    struct Config {
        rate: u32,
        unit: String,
    }
    let typed: Config = client.get_property("config").await.unwrap();
    assert_eq!(typed, Config { rate: 5, unit: "C".into() });
    // The wrong type is a decode error, a missing property the server's 404.
    assert!(matches!(client.get_property::<Vec<u8>>("config").await, Err(Error::Decode(_))));
    let missing = client.get_property::<u32>("nope").await.unwrap_err();
    assert_eq!(missing.code(), Some(404), "{missing:?}");

    // Endpoint calls are recorded by the server.
    client.call_endpoint("alarm", Some(&serde_json::json!({"level": 3}))).await.unwrap();
    client.call_endpoint::<()>("ping", None).await.unwrap();
    let calls = server.endpoint_calls(USER).await;
    assert_eq!(calls.iter().map(|c| c.endpoint.as_str()).collect::<Vec<_>>(), vec!["alarm", "ping"]);
    assert_eq!(client.stats().await.unwrap().queued, 0);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_calls_another_device() {
    let server = server().await;
    let mut thing = Resources::new();
    thing["double"] >>= input_output(|x: i64| x * 2);
    let callee = tcp_builder(server.tcp_addr(), "callee").resources(thing).spawn().unwrap();
    let caller = tcp_builder(server.tcp_addr(), "caller").spawn().unwrap();
    callee.connected().await.unwrap();
    caller.connected().await.unwrap();
    let out: i64 = caller.call_device("callee", "double", Some(&21i64)).await.unwrap();
    assert_eq!(out, 42);
    let err = caller.call_device::<i64, i64>("callee", "missing", Some(&1)).await.unwrap_err();
    assert!(matches!(err, Error::Server { .. }), "{err:?}");
    let err = caller.call_device::<i64, i64>("nobody", "double", Some(&1)).await.unwrap_err();
    assert!(matches!(err, Error::Server { .. }), "{err:?}");
    callee.shutdown().await;
    caller.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_mqtt_and_locks() {
    let server = server().await;
    let a = tcp_builder(server.tcp_addr(), "sub_a").spawn().unwrap();
    let b = tcp_builder(server.tcp_addr(), "sub_b").spawn().unwrap();
    a.connected().await.unwrap();
    b.connected().await.unwrap();

    // Property changes made through the server reach the device.
    server.set_property(USER, "sub_a", "mode", thinger_core_value("eco")).await.unwrap();
    let mut mode = a.subscribe_property::<String>("mode", true).await.unwrap();
    assert_eq!(next(&mut mode).await, "eco");
    let r = http(
        server.http_addr(),
        "PUT",
        &format!("/v3/users/{USER}/devices/sub_a/properties/mode"),
        Some(r#"{"value": "boost"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(next(&mut mode).await, "boost");

    // MQTT through the server's broker.
    let mut messages =
        a.mqtt_subscribe::<serde_json::Value>("home/+/temp", thinger_std::QoS::AtMostOnce).await.unwrap();
    // The subscription opens asynchronously: publish until it arrives.
    let mut got = None;
    for _ in 0..50 {
        b.mqtt_publish("home/kitchen/temp", &serde_json::json!({"c": 21})).await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
            got = Some(m.unwrap());
            break;
        }
    }
    let got: MqttMessage<serde_json::Value> = got.expect("no MQTT message arrived");
    assert_eq!(got.topic, "home/kitchen/temp");
    assert_eq!(got.payload, serde_json::json!({"c": 21}));

    // Device state events: b disconnecting is seen by a.
    let mut states = a.subscribe_event::<serde_json::Value>("device_state_change").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.shutdown().await;
    let event = tokio::time::timeout(Duration::from_secs(5), states.next()).await.unwrap().unwrap().unwrap();
    assert!(event.to_string().contains("sub_b"), "{event}");

    // A sync lock with one slot.
    a.lock_sync("door", "holder-a", 1, None).await.unwrap();
    a.unlock_sync("door", "holder-a").await.unwrap();
    a.shutdown().await;
    server.shutdown().await;
}

fn thinger_core_value(s: &str) -> thinger_std::core::pson::Value {
    thinger_std::core::pson::Value::Str(s.to_owned())
}

async fn next<T: serde::de::DeserializeOwned>(sub: &mut thinger_std::Subscription<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("no subscription data").unwrap().unwrap()
}
