//! The REST routes added for Thinger.io parity: per-resource describe, property POST and
//! DELETE, bucket write, endpoint call, JSON 405, bearer scheme in any case, per-user tokens.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{enc, http, online};
use serde_json::json;
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson;
use thinger_core::pson::Value;
use thinger_server::{EndpointConfig, Server, ServerConfig, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(config: ServerConfig) -> Server {
    Server::start(config.tls(TlsMode::Off)).await.unwrap()
}

/// A GET with a literal Authorization header; returns the status.
async fn get_with_auth(addr: SocketAddr, path: &str, authorization: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw)).await.unwrap().unwrap();
    String::from_utf8_lossy(&raw).split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn describe_one_resource() {
    let server = start(ServerConfig::local()).await;
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let device = tokio::spawn(async move {
        let req = d.frame().await;
        assert!(req.is(MessageType::Describe));
        assert_eq!(req.resource, Some(Value::from("led")));
        let api = pson!({"fn": 2});
        d.send(enc(OutgoingMessage::new(MessageType::Ok, req.sid).payload(OutField::Pson(&api)))).await;
        d
    });
    let got = http(server.http_addr(), "GET", "/v3/users/u/devices/d/resources/led/api", None, None).await;
    assert_eq!(got, (200, json!({"fn": 2})));
    let _d = device.await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn property_post_and_delete_bucket_write_endpoint_call_and_405() {
    let config = ServerConfig::local().endpoint(EndpointConfig::new("hook").response(pson!({"sent": true})));
    let server = start(config).await;
    let addr = server.http_addr();
    let props = "/v3/users/u/devices/d/properties";
    let (status, p) = http(addr, "POST", props, Some(r#"{"property": "cfg", "value": {"rate": 2}}"#), None).await;
    assert_eq!((status, p["property"].clone(), p["value"].clone()), (200, json!("cfg"), json!({"rate": 2})));
    assert_eq!(http(addr, "POST", props, Some(r#"{"value": 1}"#), None).await.0, 400);
    let (status, body) = http(addr, "DELETE", &format!("{props}/cfg"), None, None).await;
    assert_eq!((status, body), (200, json!({"property": "cfg", "deleted": true})));
    assert_eq!(http(addr, "GET", &format!("{props}/cfg"), None, None).await.0, 404);
    let (status, body) = http(addr, "DELETE", &format!("{props}/cfg"), None, None).await;
    assert_eq!((status, body["error"].is_string()), (404, true));

    let (status, body) = http(addr, "POST", "/v1/users/u/buckets/b/data", Some(r#"[{"t": 1}, {"t": 2}]"#), None).await;
    assert_eq!((status, body["bucket"].clone()), (200, json!("b")));
    let (_, items) = http(addr, "GET", "/v1/users/u/buckets/b/data?sort=asc", None, None).await;
    let vals: Vec<_> = items.as_array().unwrap().iter().map(|i| i["val"].clone()).collect();
    assert_eq!(vals, vec![json!({"t": 1}), json!({"t": 2})]);

    let (status, body) = http(addr, "POST", "/v1/users/u/endpoints/hook/call", Some(r#"{"to": "me"}"#), None).await;
    assert_eq!((status, body), (200, json!({"sent": true})));
    assert_eq!(http(addr, "POST", "/v1/users/u/endpoints/nope/call", Some("{}"), None).await.0, 404);
    let calls = server.endpoint_calls("u").await;
    assert_eq!((calls.len(), calls[0].data.clone()), (1, pson!({"to": "me"})));

    let (status, body) = http(addr, "DELETE", "/v1/users/u/devices", None, None).await;
    assert_eq!((status, body["error"].is_string()), (405, true));
    server.shutdown().await;
}

#[tokio::test]
async fn bearer_in_any_case_and_per_user_tokens() {
    let config = ServerConfig::local().api_token("admin").user_token("alice", "a-token").user_token("bob", "b-token");
    let server = start(config).await;
    let addr = server.http_addr();
    for auth in ["Bearer admin", "bearer admin", "BEARER admin"] {
        assert_eq!(get_with_auth(addr, "/v1/users/alice/devices", auth).await, 200, "{auth}");
    }
    assert_eq!(get_with_auth(addr, "/v1/users/alice/devices", "Basic admin").await, 401);
    // A user token opens its own user's routes only; the admin token opens all.
    assert_eq!(http(addr, "GET", "/v1/users/alice/devices", None, Some("a-token")).await.0, 200);
    let (status, body) = http(addr, "GET", "/v1/users/bob/devices", None, Some("a-token")).await;
    assert_eq!((status, body["error"].is_string()), (403, true));
    assert_eq!(http(addr, "GET", "/v1/users/bob/devices", None, Some("b-token")).await.0, 200);
    assert_eq!(http(addr, "GET", "/v1/users/bob/devices", None, Some("admin")).await.0, 200);
    assert_eq!(http(addr, "GET", "/v1/users/bob/devices", None, Some("nope")).await.0, 401);
    server.shutdown().await;
}
