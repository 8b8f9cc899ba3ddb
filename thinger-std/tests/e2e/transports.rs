//! TLS (generated CA, wrong CA, pinning) and WebSocket against the local server.

use std::time::Duration;

use thinger_std::dsl::output;
use thinger_std::tls::{Pin, TlsConfig, TlsFailure, fetch_server_certificate};
use thinger_std::{Client, ClientEvent, ConnectError, Transport};

use crate::support::{USER, http, quick_backoff, server, wait_event};

fn tls_builder(addr: std::net::SocketAddr, device: &str, tls: TlsConfig) -> thinger_std::ClientBuilder {
    Client::builder(USER, device, "secret")
        .host("localhost")
        .port(addr.port())
        .transport(Transport::Tls)
        .tls(tls)
        .backoff(quick_backoff())
        .connect_timeout(Duration::from_secs(3))
        .resource("answer", output(|| 42u8))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_generated_ca_connects_and_a_wrong_ca_is_refused() {
    let server = server().await;
    let tls_addr = server.tls_addr().unwrap();
    let ca = server.ca_cert_pem().unwrap();

    let client = tls_builder(tls_addr, "tls_ok", TlsConfig::new().with_ca_pem(&ca).unwrap()).spawn().unwrap();
    client.connected().await.unwrap();
    let r = http(server.http_addr(), "GET", &format!("/v3/users/{USER}/devices/tls_ok/resources/answer"), None).await;
    assert_eq!(r.json(), serde_json::json!(42));
    client.shutdown().await;

    // Another CA: the server's certificate must be refused, as a certificate error.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap().cert.pem();
    let client = tls_builder(tls_addr, "tls_bad", TlsConfig::new().with_ca_pem(&other).unwrap()).spawn().unwrap();
    let mut events = client.events();
    let failed = wait_event(&mut events, "a certificate error", |e| matches!(e, ClientEvent::ConnectFailed(_))).await;
    let ClientEvent::ConnectFailed(error) = failed else { unreachable!() };
    assert!(error.is_certificate_error(), "{error:?}");
    assert!(!server.is_connected(USER, "tls_bad"));
    // The public roots do not know the local CA either.
    let public = fetch_server_certificate("localhost", tls_addr.port(), &TlsConfig::new()).await.unwrap_err();
    assert!(public.is_certificate_error(), "{public:?}");
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_pinning() {
    let server = server().await;
    let tls_addr = server.tls_addr().unwrap();
    let ca = server.ca_cert_pem().unwrap();
    // Trust on first use: fetch the certificate with the CA, pin its key.
    let der = fetch_server_certificate("localhost", tls_addr.port(), &TlsConfig::new().with_ca_pem(&ca).unwrap())
        .await
        .unwrap();
    let pin = Pin::spki_of_certificate(&der).unwrap();

    // CA and pin.
    let tls = TlsConfig::new().with_ca_pem(&ca).unwrap().pin(pin);
    let client = tls_builder(tls_addr, "pinned", tls).spawn().unwrap();
    client.connected().await.unwrap();
    client.shutdown().await;

    // Pin only (no CA), also for an address the certificate does not name.
    let tls = TlsConfig::new().pin(Pin::of_certificate(&der)).pin_only();
    let client = tls_builder(tls_addr, "pin_only", tls).host("127.0.0.1").spawn().unwrap();
    client.connected().await.unwrap();
    client.shutdown().await;

    // A wrong pin is refused even though the CA is trusted.
    let tls = TlsConfig::new().with_ca_pem(&ca).unwrap().pin(Pin::Spki([7; 32]));
    let result = fetch_server_certificate("localhost", tls_addr.port(), &tls).await;
    assert_eq!(result.unwrap_err(), ConnectError::Tls(TlsFailure::PinMismatch));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_transport() {
    let server = server().await;
    let client = Client::builder(USER, "ws1", "secret")
        .host("127.0.0.1")
        .port(server.http_addr().port())
        .transport(Transport::websocket_plain())
        .resource("answer", output(|| 42u8))
        .spawn()
        .unwrap();
    client.connected().await.unwrap();
    let r = http(server.http_addr(), "GET", &format!("/v3/users/{USER}/devices/ws1/resources/answer"), None).await;
    assert_eq!(r.json(), serde_json::json!(42));
    client.write_bucket("ws", &1u8).await.unwrap();
    assert_eq!(server.bucket_data(USER, "ws").await.len(), 1);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_websocket_transport_on_the_https_port() {
    let server = server().await;
    let https = server.https_addr().unwrap();
    let tls = TlsConfig::new().with_ca_pem(&server.ca_cert_pem().unwrap()).unwrap();
    let client = Client::builder(USER, "wss1", "secret")
        .host("localhost")
        .port(https.port())
        .transport(Transport::websocket())
        .tls(tls)
        .connect_timeout(Duration::from_secs(3))
        .resource("answer", output(|| 42u8))
        .spawn()
        .unwrap();
    client.connected().await.unwrap();
    let r = http(server.http_addr(), "GET", &format!("/v3/users/{USER}/devices/wss1/resources/answer"), None).await;
    assert_eq!(r.json(), serde_json::json!(42));
    let device = http(server.http_addr(), "GET", &format!("/v1/users/{USER}/devices/wss1"), None).await;
    assert_eq!(device.json()["connection"]["transport"], "wss");
    client.shutdown().await;
    server.shutdown().await;
}
