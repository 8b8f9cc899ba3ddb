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

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

/// Reads from `rx` until `needle` shows up in what came; returns all of it.
async fn read_until(s: &mut thinger_server::DeviceStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if text.contains(needle) {
            return text;
        }
        match tokio::time::timeout_at(deadline, s.recv_bytes()).await {
            Ok(Ok(bytes)) => seen.extend(bytes),
            Ok(Err(e)) => panic!("stream ended before {needle:?}: {e:?}; got {text:?}"),
            Err(_) => panic!("no {needle:?} in {text:?}"),
        }
    }
}

#[cfg(feature = "ext-terminal")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_runs_commands_resizes_and_dies_with_its_stream() {
    use thinger_std::ext::terminal::TerminalConfig;
    let mut thing = Resources::new();
    TerminalConfig::program("/bin/sh").max_sessions(2).install(&mut thing);
    let (server, client) = device("term", thing).await;
    let size = |cols: u64, rows: u64| map(&[("cols", Value::Uint(cols)), ("rows", Value::Uint(rows))]);

    let mut s = server.open_stream(USER, "term", "$terminal/t1", Some(size(80, 24))).await.unwrap();
    // The arithmetic shows the shell ran it (the typed line itself is echoed back as typed).
    s.send_bytes(b"echo out-$((6*7))\n").await.unwrap();
    read_until(&mut s, "out-42").await;
    s.send_bytes(b"echo size-$(stty size)-end\n").await.unwrap();
    read_until(&mut s, "size-24 80-end").await;
    // Resize as the server's REST route does.
    let params = map(&[("size", size(100, 30))]);
    server.run_resource(USER, "term", "$terminal/t1/params", Some(params)).await.unwrap();
    s.send_bytes(b"echo size-$(stty size)-end\n").await.unwrap();
    read_until(&mut s, "size-30 100-end").await;
    // Resizing a session that does not exist is a 404.
    let params = map(&[("size", size(10, 10))]);
    match server.run_resource(USER, "term", "$terminal/nope/params", Some(params)).await {
        Err(thinger_server::DeviceError::Failed { code, .. }) => assert_eq!(code, Some(404)),
        other => panic!("{other:?}"),
    }
    // Its pid, then the stream closes: the shell must be gone.
    // (The quotes keep the typed line from matching.)
    s.send_bytes(b"echo pid-$$-end''ok\n").await.unwrap();
    let text = read_until(&mut s, "-endok").await;
    let pid: u32 = text
        .split("pid-")
        .filter_map(|t| t.split("-endok").next())
        .find_map(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"));
    let proc = format!("/proc/{pid}");
    assert!(std::path::Path::new(&proc).exists());
    s.close();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&proc).exists() {
        assert!(std::time::Instant::now() < deadline, "shell {pid} still runs after the stream closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The program exiting stops the stream.
    let mut s = server.open_stream(USER, "term", "$terminal/t2", Some(size(80, 24))).await.unwrap();
    s.send_bytes(b"exit\n").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, s.recv()).await.expect("stream not stopped after exit") {
            Ok(_) => continue,
            Err(e) => {
                assert!(matches!(e, StreamError::Closed), "{e:?}");
                break;
            }
        }
    }
    client.shutdown().await;
    server.shutdown().await;
}

#[cfg(feature = "ext-proxy")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_tunnels_to_allowed_targets_only() {
    use thinger_std::ext::proxy::ProxyConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A local echo server as the target.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = target.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut thing = Resources::new();
    ProxyConfig::allow([("127.0.0.1", port)]).install(&mut thing);
    let (server, client) = device("proxy", thing).await;
    let params = |address: &str, port: u16| {
        Some(map(&[
            ("protocol", Value::Str("tcp".into())),
            ("address", Value::Str(address.into())),
            ("port", Value::Uint(u64::from(port))),
            ("secure", Value::Bool(false)),
        ]))
    };
    let s = server.open_stream(USER, "proxy", "$proxy/p1", params("127.0.0.1", port)).await.unwrap();
    let data: Vec<u8> = (0..256 * 1024).map(|i: u32| (i % 253) as u8).collect();
    let (tx, mut rx) = s.split();
    let sent = data.clone();
    let writer = tokio::spawn(async move { tx.send_bytes(&sent).await.map(|()| tx) });
    let mut got = Vec::new();
    while got.len() < data.len() {
        got.extend(tokio::time::timeout(Duration::from_secs(20), rx.recv_bytes()).await.unwrap().unwrap());
    }
    assert!(got == data, "tunnelled bytes differ");
    drop(writer.await.unwrap().unwrap());

    // Not on the allow-list: another port, another host, TLS, another protocol.
    let refused = |r: Result<thinger_server::DeviceStream, StreamError>| match r {
        Err(StreamError::Open(thinger_server::DeviceError::Failed { code, .. })) => code,
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("tunnel opened to a target outside the allow-list"),
    };
    assert_eq!(refused(server.open_stream(USER, "proxy", "$proxy/p2", params("127.0.0.1", port + 1)).await), Some(403));
    assert_eq!(refused(server.open_stream(USER, "proxy", "$proxy/p3", params("localhost", port)).await), Some(403));
    let tls = map(&[
        ("protocol", Value::Str("tcp".into())),
        ("address", Value::Str("127.0.0.1".into())),
        ("port", Value::Uint(u64::from(port))),
        ("secure", Value::Bool(true)),
    ]);
    assert_eq!(refused(server.open_stream(USER, "proxy", "$proxy/p4", Some(tls)).await), Some(501));
    assert_eq!(refused(server.open_stream(USER, "proxy", "$proxy/p5", None).await), Some(400));
    client.shutdown().await;
    server.shutdown().await;
}
