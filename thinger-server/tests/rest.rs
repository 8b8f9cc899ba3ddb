//! The REST API: resources round-trip to the device, errors, streams, properties, token.

mod common;

use std::time::Duration;

use common::{enc, http, online, sse};
use serde_json::json;
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson;
use thinger_core::pson::Value;
use thinger_server::{Server, ServerConfig, TlsMode};

async fn start(config: ServerConfig) -> Server {
    Server::start(config.tls(TlsMode::Off)).await.unwrap()
}

#[tokio::test]
async fn rest_reads_round_trip_to_a_device_resource() {
    let server = start(ServerConfig::local().device_timeout(Duration::from_millis(300))).await;
    let mut d = online(server.tcp_addr(), "user1", "dev1").await;
    let device = tokio::spawn(async move {
        // GET .../resources/millis → RUN with no input; answered as the official client does.
        let req = d.answer_run(Some(&Value::Uint(3809))).await;
        assert_eq!(req.resource, Some(Value::from("millis")));
        assert_eq!(req.payload, None);
        // POST {"in": {...}} → RUN with that input.
        let req = d.answer_run(Some(&pson!({"sum": 5}))).await;
        assert_eq!(req.resource, Some(Value::from("sum")));
        assert_eq!(req.payload, Some(pson!({"a": 2, "b": 3})));
        // POST with a bare value, on a path with a slash.
        let req = d.answer_run(None).await;
        assert_eq!(req.resource, Some(Value::from("sensors/7")));
        assert_eq!(req.payload, Some(Value::Bool(true)));
        // DESCRIBE.
        let req = d.frame().await;
        assert!(req.is(MessageType::Describe));
        assert_eq!(req.resource, None);
        let api = pson!({"led": {"fn": 2}, "millis": {"fn": 3}});
        d.send(enc(OutgoingMessage::new(MessageType::Ok, req.sid).payload(OutField::Pson(&api)))).await;
        // Errors: bare ERROR, a 4xx code with a message, a code outside HTTP's range.
        for code in [None, Some(418u64), Some(7)] {
            let req = d.frame().await;
            let mut msg = OutgoingMessage::new(MessageType::Error, req.sid);
            let payload = pson!({"error": "teapot"});
            if let Some(c) = code {
                msg = msg.parameters(OutField::Varint(c)).payload(OutField::Pson(&payload));
            }
            let f = enc(msg);
            d.send(f).await;
        }
        // No answer at all: 504.
        let _ = d.frame().await;
        d
    });
    let base = "/v3/users/user1/devices/dev1";
    let addr = server.http_addr();
    assert_eq!(http(addr, "GET", &format!("{base}/resources/millis"), None, None).await, (200, json!(3809)));
    let body = r#"{"in": {"a": 2, "b": 3}}"#;
    assert_eq!(http(addr, "POST", &format!("{base}/resources/sum"), Some(body), None).await, (200, json!({"sum": 5})));
    assert_eq!(
        http(addr, "POST", &format!("{base}/resources/sensors/7"), Some("true"), None).await,
        (200, json!(null))
    );
    let (status, api) = http(addr, "GET", &format!("{base}/resources"), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(api["millis"]["fn"], 3);
    let (status, err) = http(addr, "GET", &format!("{base}/resources/nope"), None, None).await;
    assert_eq!(status, 404);
    assert!(err["error"].is_string());
    assert_eq!(
        http(addr, "GET", &format!("{base}/resources/fail"), None, None).await,
        (418, json!({"error": "teapot"}))
    );
    let (status, _) = http(addr, "GET", &format!("{base}/resources/odd"), None, None).await;
    assert_eq!(status, 500);
    let (status, err) = http(addr, "GET", &format!("{base}/resources/slow"), None, None).await;
    assert_eq!(status, 504);
    assert!(err["error"].as_str().unwrap().contains("in time"));
    let d = device.await.unwrap();

    // Bad JSON body.
    let (status, _) = http(addr, "POST", &format!("{base}/resources/sum"), Some("{nope"), None).await;
    assert_eq!(status, 400);
    // Unknown device: 404. Known but offline: 503.
    let (status, _) = http(addr, "GET", "/v3/users/user1/devices/ghost/resources/x", None, None).await;
    assert_eq!(status, 404);
    drop(d);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, err) = http(addr, "GET", &format!("{base}/resources/millis"), None, None).await;
    assert_eq!((status, err), (503, json!({"error": "device offline"})));
    let (status, dev) = http(addr, "GET", "/v1/users/user1/devices/dev1", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(dev["connection"]["active"], false);
    server.shutdown().await;
}

#[tokio::test]
async fn stream_with_250_ms_interval_delivers_10_to_14_samples_in_3_s() {
    let server = start(ServerConfig::local()).await;
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let device = tokio::spawn(async move {
        let start = d.frame().await;
        assert!(start.is(MessageType::StartStream));
        assert_eq!(start.resource, Some(Value::from("millis")));
        assert_eq!(start.params, Some(pson!({"interval": 250})));
        let sid = start.sid;
        d.send(enc(OutgoingMessage::new(MessageType::Ok, sid))).await;
        // One sample at once, then one per interval, until STOP_STREAM.
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    n += 1;
                    let f = enc(OutgoingMessage::new(MessageType::StreamData, sid).payload(OutField::Varint(n)));
                    d.send(f).await;
                }
                f = d.recv_within(Duration::from_secs(10)) => {
                    let f = f.unwrap().unwrap();
                    assert!(f.is(MessageType::StopStream), "{f:?}");
                    assert_eq!(f.sid, sid);
                    d.send(enc(OutgoingMessage::new(MessageType::Ok, sid))).await;
                    return n;
                }
            }
        }
    });
    let (status, samples) =
        sse(server.http_addr(), "/v3/users/u/devices/d/resources/millis?interval=250", Duration::from_secs(3)).await;
    assert_eq!(status, 200);
    eprintln!("{} samples in 3 s: {samples:?}", samples.len());
    assert!((10..=14).contains(&samples.len()), "{} samples", samples.len());
    assert_eq!(samples[0], "1");
    // Closing the HTTP stream stops the device's stream.
    let sent = tokio::time::timeout(Duration::from_secs(5), device).await.unwrap().unwrap();
    assert!(sent >= samples.len() as u64);
    server.shutdown().await;
}

#[tokio::test]
async fn stream_errors() {
    let server = start(ServerConfig::local()).await;
    let (status, _) = sse(server.http_addr(), "/v3/users/u/devices/none/resources/x", Duration::from_secs(2)).await;
    assert_eq!(status, 404);
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let device = tokio::spawn(async move {
        let start = d.frame().await;
        d.send(enc(OutgoingMessage::new(MessageType::Error, start.sid))).await;
        d
    });
    let (status, _) = sse(server.http_addr(), "/v3/users/u/devices/d/resources/nope", Duration::from_secs(2)).await;
    assert_eq!(status, 404);
    let _d = device.await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn properties_and_device_list() {
    let server =
        start(ServerConfig::local().allow_any(false).credential("u", "d", "c").credential("u", "e", "c")).await;
    let addr = server.http_addr();
    let (status, list) = http(addr, "GET", "/v1/users/u/devices", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2, "configured devices are listed before they connect");
    assert_eq!(list[0]["connection"]["active"], false);

    let base = "/v3/users/u/devices/d/properties";
    assert_eq!(http(addr, "GET", &format!("{base}/cfg"), None, None).await.0, 404);
    let (status, p) = http(addr, "PUT", &format!("{base}/cfg"), Some(r#"{"value": {"rate": 5}}"#), None).await;
    assert_eq!(status, 200);
    assert_eq!(p["property"], "cfg");
    assert_eq!(p["value"], json!({"rate": 5}));
    // A body without "value" is the value itself.
    http(addr, "PUT", &format!("{base}/name"), Some(r#""kitchen""#), None).await;
    let (_, p) = http(addr, "GET", &format!("{base}/name"), None, None).await;
    assert_eq!(p["value"], "kitchen");
    let (_, all) = http(addr, "GET", base, None, None).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(http(addr, "PUT", &format!("{base}/cfg"), Some(""), None).await.0, 400);

    // The device reads what REST wrote.
    let mut dev = common::Device::tcp(server.tcp_addr()).await;
    assert!(dev.connect("u", "d", "c").await.is(MessageType::Ok));
    let r = dev.call(5, 1, &Value::from("cfg"), None).await;
    assert_eq!(r.payload, Some(pson!({"rate": 5})));
    let (_, list) = http(addr, "GET", "/v1/users/u/devices", None, None).await;
    assert_eq!(list[0]["device"], "d");
    assert_eq!(list[0]["connection"]["active"], true);
    assert_eq!(list[0]["connection"]["transport"], "tcp");
    assert_eq!(http(addr, "GET", "/v1/users/u/devices/zzz", None, None).await.0, 404);
    assert_eq!(http(addr, "GET", "/no/such/route", None, None).await.0, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn api_token_is_required_when_configured() {
    let server = start(ServerConfig::local().api_token("s3cret")).await;
    let addr = server.http_addr();
    assert_eq!(http(addr, "GET", "/v1/users/u/devices", None, None).await.0, 401);
    assert_eq!(http(addr, "GET", "/v1/users/u/devices", None, Some("wrong")).await.0, 401);
    assert_eq!(http(addr, "GET", "/v1/users/u/devices", None, Some("s3cret")).await.0, 200);
    assert_eq!(http(addr, "GET", "/v1/users/u/devices?authorization=s3cret", None, None).await.0, 200);
    let (status, health) = http(addr, "GET", "/health", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    server.shutdown().await;
}
