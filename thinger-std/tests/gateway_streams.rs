//! Channels (server-opened streams) and the stream extensions, end to end: the local
//! server's `open_stream` over real loopback TCP to a `thinger-std` device.

use std::time::Duration;

use thinger_core::pson::Value;
use thinger_server::{Limits, Server, ServerConfig, StreamError, TlsMode};
use thinger_std::channel::channel;
use thinger_std::dsl::HandlerError;
use thinger_std::resources::Resources;
use thinger_std::{Client, Transport};

const USER: &str = "user1";
const BUFFER: usize = 128 * 1024;
const FRAME: usize = 16 * 1024;

async fn device(name: &str, thing: Resources) -> (Server, Client) {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    }
    // The device's 128 KiB buffer receives frames of up to 48 KiB and holds 32 KiB of event
    // data: the server keeps its frames to this device at 16 KiB.
    let limits = Limits { device_frame_limit: FRAME, ..Limits::default() };
    let server = Server::start(ServerConfig::local().tls(TlsMode::Off).limits(limits)).await.unwrap();
    let addr = server.tcp_addr();
    let client = Client::builder(USER, name, "secret")
        .host(addr.ip().to_string())
        .port(addr.port())
        .transport(Transport::Tcp)
        .buffer_size(BUFFER)
        .resources(thing)
        .spawn()
        .unwrap();
    client.connected().await.unwrap();
    assert!(server.wait_connected(USER, name, Duration::from_secs(5)).await);
    (server, client)
}

fn echo_thing() -> Resources {
    let mut thing = Resources::new();
    thing.entry("$echo/:session").set_channel(channel(|request| async move {
        if request.session() == "refuse" {
            let _ = request.reject(HandlerError::new(403, "refused")).await;
            return;
        }
        let Ok(mut ch) = request.accept(Some(Value::Str("hello".into()))).await else { return };
        let tx = ch.sender();
        while let Some(data) = ch.recv().await {
            if data.bytes() == Some(b"bye") {
                tx.close().await;
                return;
            }
            if tx.send_pson(data.raw().to_vec()).await.is_err() {
                return;
            }
        }
    }));
    thing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_echoes_bytes_both_ways_and_closes_from_either_side() {
    let (server, client) = device("echo", echo_thing()).await;
    let s = server.open_stream(USER, "echo", "$echo/one", None).await.unwrap();
    assert_eq!(s.opened(), Some(&Value::Str("hello".into())));
    // 1 MiB through the echo, in the server's frame-sized pieces.
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let (tx, mut rx) = s.split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        tx.send_bytes(&sent).await.unwrap();
        tx
    });
    let mut got = Vec::new();
    while got.len() < data.len() {
        got.extend(tokio::time::timeout(Duration::from_secs(20), rx.recv_bytes()).await.unwrap().unwrap());
    }
    assert!(got == data, "echoed bytes differ");
    let tx = writer.await.unwrap();
    // The device closes on "bye": the server sees the end.
    tx.send_bytes(b"bye").await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
    assert!(matches!(end, Err(StreamError::Closed)), "{end:?}");

    // Refused by the handler: the server gets the device's ERROR.
    match server.open_stream(USER, "echo", "$echo/refuse", None).await {
        Err(StreamError::Open(thinger_server::DeviceError::Failed { code, .. })) => assert_eq!(code, Some(403)),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("refused channel opened"),
    }
    // Closed by the server: a second channel still works afterwards.
    let s = server.open_stream(USER, "echo", "$echo/two", None).await.unwrap();
    s.close();
    let mut s = server.open_stream(USER, "echo", "$echo/three", None).await.unwrap();
    s.send_bytes(b"again").await.unwrap();
    assert_eq!(s.recv_bytes().await.unwrap(), b"again");
    client.shutdown().await;
    server.shutdown().await;
}
