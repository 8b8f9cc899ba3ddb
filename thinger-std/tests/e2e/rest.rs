//! The REST API reaches the device's resources through the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thinger_std::Client;
use thinger_std::dsl::{HandlerError, input, input_output, output, run};
use thinger_std::resources::{Resources, async_input_output};

use crate::support::{USER, count_stream_samples, http, server, tcp_builder};

#[derive(Deserialize)]
struct Sum {
    a: i32,
    b: i32,
}

#[derive(Serialize)]
struct Total {
    sum: i32,
}

struct Device {
    led: Arc<AtomicBool>,
    reboots: Arc<AtomicU32>,
    samples: Arc<AtomicU32>,
}

fn resources() -> (Resources, Device) {
    let device = Device {
        led: Arc::new(AtomicBool::new(false)),
        reboots: Arc::new(AtomicU32::new(0)),
        samples: Arc::new(AtomicU32::new(0)),
    };
    let mut thing = Resources::new();
    let led = device.led.clone();
    thing["led"] <<= input(move |on: bool| led.store(on, Ordering::SeqCst));
    thing["temperature"] >>= output(|| 21.5f32);
    thing["sum"] >>= input_output(|v: Sum| Total { sum: v.a + v.b });
    let reboots = device.reboots.clone();
    thing["reboot"] <<= run(move || {
        reboots.fetch_add(1, Ordering::SeqCst);
    });
    let samples = device.samples.clone();
    thing["counter"] >>= output(move || samples.fetch_add(1, Ordering::SeqCst));
    thing["slow_double"] >>= async_input_output(|x: i64| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if x < 0 { Err(HandlerError::new(422, "negative")) } else { Ok(x * 2) }
    });
    (thing, device)
}

async fn connected_device(server: &thinger_server::Server, name: &str) -> (Client, Device) {
    let (thing, device) = resources();
    let client = tcp_builder(server.tcp_addr(), name).resources(thing).spawn().unwrap();
    client.connected().await.unwrap();
    assert!(server.wait_connected(USER, name, Duration::from_secs(5)).await);
    (client, device)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_get_reads_an_output_and_post_drives_an_input() {
    let server = server().await;
    let (client, device) = connected_device(&server, "rest1").await;
    let base = format!("/v3/users/{USER}/devices/rest1/resources");

    let r = http(server.http_addr(), "GET", &format!("{base}/temperature"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!(21.5));

    assert!(!device.led.load(Ordering::SeqCst));
    let r = http(server.http_addr(), "POST", &format!("{base}/led"), Some(r#"{"in": true}"#)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(device.led.load(Ordering::SeqCst), "the input handler did not see the POST");
    // The input reports its new state.
    let r = http(server.http_addr(), "GET", &format!("{base}/led"), None).await;
    assert_eq!(r.json(), serde_json::json!(true));

    let r = http(server.http_addr(), "POST", &format!("{base}/sum"), Some(r#"{"a": 2, "b": 40}"#)).await;
    assert_eq!(r.json(), serde_json::json!({"sum": 42}));
    let r = http(server.http_addr(), "POST", &format!("{base}/sum"), Some(r#""not a sum""#)).await;
    assert_eq!(r.status, 400, "{}", r.body);

    let r = http(server.http_addr(), "POST", &format!("{base}/reboot"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(device.reboots.load(Ordering::SeqCst), 1);

    // An async handler, answered through the core's deferred reply.
    let r = http(server.http_addr(), "POST", &format!("{base}/slow_double"), Some("21")).await;
    assert_eq!((r.status, r.json()), (200, serde_json::json!(42)));
    let r = http(server.http_addr(), "POST", &format!("{base}/slow_double"), Some("-1")).await;
    assert_eq!(r.status, 422, "{}", r.body);

    let r = http(server.http_addr(), "GET", &format!("{base}/missing"), None).await;
    assert_eq!(r.status, 404, "{}", r.body);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_lists_the_resources() {
    let server = server().await;
    let (client, _device) = connected_device(&server, "describe1").await;
    let r = http(server.http_addr(), "GET", &format!("/v3/users/{USER}/devices/describe1/resources"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let api = r.json();
    let expected = serde_json::json!({
        "counter": {"fn": 3},
        "led": {"fn": 2},
        "reboot": {"fn": 1},
        "slow_double": {"fn": 4},
        "sum": {"fn": 4},
        "temperature": {"fn": 3},
    });
    assert_eq!(api, expected);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_stream_delivers_its_samples() {
    let server = server().await;
    let (client, device) = connected_device(&server, "stream1").await;
    let mut events = client.events();
    let path = format!("/v3/users/{USER}/devices/stream1/resources/counter?interval=250");
    let samples = count_stream_samples(server.http_addr(), &path, Duration::from_secs(3)).await;
    // One sample at the start, then one per 250 ms: 12 or 13 in 3 s on an idle machine.
    assert!((10..=14).contains(&samples.len()), "{} samples: {samples:?}", samples.len());
    // They are consecutive counter values.
    let values: Vec<u64> = samples.iter().map(|s| s.parse().unwrap()).collect();
    assert!(values.windows(2).all(|w| w[1] > w[0]), "{values:?}");
    assert!(device.samples.load(Ordering::SeqCst) as usize >= samples.len());
    let started = crate::support::wait_event(&mut events, "stream start", |e| {
        matches!(e, thinger_std::ClientEvent::StreamStarted { .. })
    })
    .await;
    assert_eq!(started, thinger_std::ClientEvent::StreamStarted { resource: "counter".into() });
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_firmware_version_is_served_as_the_version_resource() {
    let server = server().await;
    let client = tcp_builder(server.tcp_addr(), "versioned").firmware("1.4.2-rc1").spawn().unwrap();
    client.connected().await.unwrap();
    let path = format!("/v3/users/{USER}/devices/versioned/resources/version");
    let r = http(server.http_addr(), "GET", &path, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), serde_json::json!({"major": 1, "minor": 4, "patch": 2, "version": "1.4.2-rc1"}));
    client.shutdown().await;
    server.shutdown().await;
}
