//! The gateway extension routes (terminal and proxy WebSockets, proxy listeners, chunked
//! file transfers, streamed commands) against a scripted IOTMP-Linux-shaped device over real
//! loopback sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::gateway;
use common::http;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sha2::Digest;
use thinger_server::{Server, ServerConfig, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

async fn start() -> Server {
    Server::start(ServerConfig::local().tls(TlsMode::Off).device_timeout(Duration::from_secs(3))).await.unwrap()
}

/// A TCP echo server on loopback.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A raw HTTP/1.1 exchange with a binary body; returns status, headers (lowercase) and body.
pub async fn raw_http(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw)).await.unwrap().unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let headers = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[end + 4..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 4 + n..];
        }
        body = out;
    }
    (status, headers, body)
}

async fn ws(url: &str) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn next_binary(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> Vec<u8> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => return b.to_vec(),
            Some(Ok(Message::Close(c))) => panic!("closed: {c:?}"),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn terminal_websocket_echoes_resizes_and_stops_on_close() {
    let server = start().await;
    let dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let base = format!("ws://{}/v3/users/u/devices/gw", server.http_addr());
    let (mut t, response) =
        tokio_tungstenite::connect_async(format!("{base}/terminal?cols=100&rows=40&session=t1")).await.unwrap();
    assert_eq!(response.headers().get("x-thinger-session").unwrap(), "t1");
    assert_eq!(dev.lock().unwrap().sizes.get("t1"), Some(&(100, 40)));
    t.send(Message::Binary(b"echo hi\n".to_vec().into())).await.unwrap();
    assert_eq!(next_binary(&mut t).await, b"echo hi\n");
    // Resize by a control message, then by the REST route.
    t.send(Message::Text(json!({"resize": {"cols": 120, "rows": 50}}).to_string().into())).await.unwrap();
    t.send(Message::Binary(b"x".to_vec().into())).await.unwrap();
    assert_eq!(next_binary(&mut t).await, b"x");
    assert_eq!(dev.lock().unwrap().sizes.get("t1"), Some(&(120, 50)));
    let path = "/v3/users/u/devices/gw/terminal/t1/size";
    let (status, body) = http(server.http_addr(), "POST", path, Some(r#"{"cols":90,"rows":20}"#), None).await;
    assert_eq!((status, body["cols"].as_u64()), (200, Some(90)));
    assert_eq!(dev.lock().unwrap().sizes.get("t1"), Some(&(90, 20)));
    let (status, _) = http(server.http_addr(), "POST", path, Some(r#"{"cols":0,"rows":20}"#), None).await;
    assert_eq!(status, 400);
    let path = "/v3/users/u/devices/gw/terminal/nosuch/size";
    let (status, _) = http(server.http_addr(), "POST", path, Some(r#"{"cols":9,"rows":9}"#), None).await;
    assert_eq!(status, 404, "the device's code for a session it does not have");
    // A bad control message closes the socket with its reason.
    t.send(Message::Text("not json".into())).await.unwrap();
    let close = loop {
        match t.next().await {
            Some(Ok(Message::Close(c))) => break c,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert!(close.unwrap().reason.contains("JSON"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(dev.lock().unwrap().stopped.len(), 1, "closing the socket stops the stream");
    // Refusals come as HTTP statuses before the upgrade.
    let err =
        tokio_tungstenite::connect_async(format!("ws://{}/v3/users/u/devices/nobody/terminal", server.http_addr()))
            .await
            .err()
            .unwrap();
    let tokio_tungstenite::tungstenite::Error::Http(r) = err else { panic!("{err:?}") };
    assert_eq!(r.status(), 404);
    let err = tokio_tungstenite::connect_async(format!("{base}/terminal?cols=0")).await.err().unwrap();
    let tokio_tungstenite::tungstenite::Error::Http(r) = err else { panic!("{err:?}") };
    assert_eq!(r.status(), 400);
    server.shutdown().await;
}

#[tokio::test]
async fn proxy_websocket_and_listener_tunnel_to_an_echo_server() {
    let server = start().await;
    let dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let echo = echo_server().await;
    let base = format!("ws://{}/v3/users/u/devices/gw", server.http_addr());
    let mut p = ws(&format!("{base}/proxy?address=127.0.0.1&port={}", echo.port())).await;
    let opened = dev.lock().unwrap().opened.last().cloned().unwrap();
    assert!(opened.0.starts_with("$proxy/"));
    assert_eq!(opened.1.get("protocol").and_then(|v| v.as_str()), Some("tcp"));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    p.send(Message::Binary(data.clone().into())).await.unwrap();
    let mut got = Vec::new();
    while got.len() < data.len() {
        got.extend(next_binary(&mut p).await);
    }
    assert_eq!(got, data);
    // A target the device does not allow: 403 before the upgrade.
    let err = tokio_tungstenite::connect_async(format!("{base}/proxy?address=10.9.9.9&port=22")).await.err().unwrap();
    let tokio_tungstenite::tungstenite::Error::Http(r) = err else { panic!("{err:?}") };
    assert_eq!(r.status(), 403);

    // A listener on the server: every accepted connection is a tunnel.
    let api = "/v3/users/u/devices/gw/proxy/listeners";
    let body = json!({"address": "127.0.0.1", "port": echo.port()}).to_string();
    let (status, created) = http(server.http_addr(), "POST", api, Some(&body), None).await;
    assert_eq!(status, 201, "{created}");
    let listen: SocketAddr = created["listen"].as_str().unwrap().parse().unwrap();
    for round in 0..2u8 {
        let mut c = TcpStream::connect(listen).await.unwrap();
        c.write_all(&[round; 1000]).await.unwrap();
        let mut buf = vec![0u8; 1000];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut buf)).await.unwrap().unwrap();
        assert_eq!(buf, vec![round; 1000]);
    }
    let (status, list) = http(server.http_addr(), "GET", api, None, None).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    let body = json!({"address": "127.0.0.1", "port": 1, "listen": "0.0.0.0:0"}).to_string();
    assert_eq!(http(server.http_addr(), "POST", api, Some(&body), None).await.0, 400);
    let one = format!("{api}/{}", created["id"]);
    assert_eq!(http(server.http_addr(), "DELETE", &one, None, None).await.0, 200);
    assert_eq!(http(server.http_addr(), "DELETE", &one, None, None).await.0, 404);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(listen).await.is_err(), "the listener is closed");
    server.shutdown().await;
}

#[tokio::test]
async fn five_mib_upload_and_download_keep_their_hash() {
    let server = start().await;
    let dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let file: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let sha: String = sha2::Sha256::digest(&file).iter().map(|b| format!("{b:02x}")).collect();
    let head = format!("PUT /v3/users/u/devices/gw/fs/upload/data/big.bin HTTP/1.1\r\nContent-Length: {}", file.len());
    let (status, _, body) = raw_http(server.http_addr(), &head, &file).await;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sha256"], sha);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(dev.lock().unwrap().files.get("data/big.bin").map(|f| f.len()), Some(file.len()));
    let (status, headers, body) =
        raw_http(server.http_addr(), "GET /v3/users/u/devices/gw/fs/download/data/big.bin HTTP/1.1", b"").await;
    assert_eq!(status, 200);
    assert!(headers.contains(&format!("content-length: {}", file.len())), "{headers}");
    assert_eq!(body.len(), file.len());
    assert!(body == file, "downloaded bytes differ");
    // A missing file is the device's 404; a missing length 411.
    let (status, _, _) =
        raw_http(server.http_addr(), "GET /v3/users/u/devices/gw/fs/download/none HTTP/1.1", b"").await;
    assert_eq!(status, 404);
    let (status, _, _) = raw_http(
        server.http_addr(),
        "PUT /v3/users/u/devices/gw/fs/upload/x HTTP/1.1\r\nTransfer-Encoding: chunked",
        b"0\r\n\r\n",
    )
    .await;
    assert_eq!(status, 411);
    server.shutdown().await;
}

#[tokio::test]
async fn streamed_command_output_and_exit_code_as_ndjson() {
    let server = start().await;
    let _dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let body = r#"{"cmd":"make","timeout":5}"#;
    let head = format!(
        "POST /v3/users/u/devices/gw/cmd/stream HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
        body.len()
    );
    let (status, _, out) = raw_http(server.http_addr(), &head, body.as_bytes()).await;
    assert_eq!(status, 200);
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines,
        vec![json!({"out": "ran make\n"}), json!({"err": "warn\n"}), json!({"exit": 3, "timeout": false})]
    );
    let (status, _) = http(server.http_addr(), "POST", "/v3/users/u/devices/gw/cmd/stream", Some("{}"), None).await;
    assert_eq!(status, 400);
    server.shutdown().await;
}

#[tokio::test]
async fn routes_need_the_token() {
    let config = ServerConfig::local().tls(TlsMode::Off).api_token("sesame");
    let server = Server::start(config).await.unwrap();
    let _dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let url = format!("ws://{}/v3/users/u/devices/gw/terminal", server.http_addr());
    let err = tokio_tungstenite::connect_async(url.clone()).await.err().unwrap();
    let tokio_tungstenite::tungstenite::Error::Http(r) = err else { panic!("{err:?}") };
    assert_eq!(r.status(), 401);
    let mut t = ws(&format!("{url}?authorization=sesame")).await;
    t.send(Message::Binary(b"ok".to_vec().into())).await.unwrap();
    assert_eq!(next_binary(&mut t).await, b"ok");
    let (status, _) =
        http(server.http_addr(), "POST", "/v3/users/u/devices/gw/cmd/stream", Some(r#"{"cmd":"x"}"#), None).await;
    assert_eq!(status, 401);
    server.shutdown().await;
}

/// Hostile or broken peers of a transfer get typed errors and leave nothing open.
#[tokio::test]
async fn transfers_with_broken_peers_end_cleanly() {
    let config = ServerConfig::local().tls(TlsMode::Off).device_timeout(Duration::from_millis(300));
    let server = Server::start(config).await.unwrap();
    // A device that accepts an upload and never acknowledges: 504 after the ack wait.
    let mut mute = common::online(server.tcp_addr(), "u", "mute").await;
    let addr = server.http_addr();
    let upload = tokio::spawn(async move {
        let body = vec![9u8; 3 * 1024 * 1024];
        let head = format!("PUT /v3/users/u/devices/mute/fs/upload/f HTTP/1.1\r\nContent-Length: {}", body.len());
        raw_http(addr, &head, &body).await
    });
    let start = mute.frame().await;
    assert!(start.is(thinger_core::iotmp::MessageType::StartStream));
    assert_eq!(start.params.as_ref().and_then(|p| p.get("size")).and_then(|s| s.as_u64()), Some(3 * 1024 * 1024));
    let ok = thinger_core::pson!({"chunk_size": 65536u64});
    mute.send(common::enc(
        thinger_core::iotmp::OutgoingMessage::new(thinger_core::iotmp::MessageType::Ok, start.sid)
            .parameters(thinger_core::iotmp::OutField::Pson(&ok)),
    ))
    .await;
    // It gets at most the 2 MiB window (plus a chunk), then the stream is stopped.
    let mut got = 0usize;
    let stop = loop {
        let f = mute.frame().await;
        if f.is(thinger_core::iotmp::MessageType::StopStream) {
            break f;
        }
        if let Some(thinger_core::pson::Value::Bytes(b)) = &f.payload {
            got += b.len();
        }
    };
    assert_eq!(stop.sid, start.sid);
    assert!(got <= 2 * 1024 * 1024 + 64 * 1024, "{got}");
    let (status, _, _) = upload.await.unwrap();
    assert_eq!(status, 504);

    // A client whose body ends before its Content-Length: the stream is stopped.
    let dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v3/users/u/devices/gw/fs/upload/half HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[1u8; 100_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);
    let mut stopped = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if !dev.lock().unwrap().stopped.is_empty() {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the upload stream stays open after its client left");
    assert!(!dev.lock().unwrap().files.contains_key("half"));
    server.shutdown().await;
}
