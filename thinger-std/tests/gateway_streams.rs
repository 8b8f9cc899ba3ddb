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

/// A handler that reads late: the server's values wait in the channel's queue and then in
/// the connection's backlog (the socket is not read meanwhile), and all arrive, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_reads_late_gets_every_value_in_order() {
    const VALUES: u8 = 3 * thinger_std::channel::INBOUND_ITEMS as u8;
    let mut thing = Resources::new();
    thing.entry("$late").set_channel(channel(|request| async move {
        let Ok(mut ch) = request.accept(None::<Value>).await else { return };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut got = Vec::new();
        while got.len() < usize::from(VALUES) {
            match ch.recv().await {
                Some(data) => got.extend_from_slice(data.bytes().unwrap_or_default()),
                None => return,
            }
        }
        let _ = ch.sender().send_bytes(&got).await;
    }));
    let (server, client) = device("late", thing).await;
    let mut s = server.open_stream(USER, "late", "$late", None).await.unwrap();
    for i in 0..VALUES {
        s.send_bytes(&[i]).await.unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(10), s.recv_bytes()).await.unwrap().unwrap();
    assert_eq!(got, (0..VALUES).collect::<Vec<u8>>());
    client.shutdown().await;
    server.shutdown().await;
}

// Used by the extensions' tests only (each behind its feature).
#[cfg(any(feature = "ext-terminal", feature = "ext-proxy", feature = "ext-fs", feature = "ext-cmd"))]
fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

/// Reads from `rx` until `needle` shows up in what came; returns all of it.
#[cfg(feature = "ext-terminal")]
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

#[cfg(feature = "ext-fs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_chunked_transfers_of_5_mib_round_trip_through_the_rest_routes() {
    use md5::{Digest, Md5};
    use thinger_std::ext::fs::FsConfig;
    let dir = std::env::temp_dir().join(format!("thinger-fs-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut thing = Resources::new();
    FsConfig::new().root("r", &root).writable(true).install(&mut thing).unwrap();
    let limits = Limits { device_frame_limit: FRAME, ..Limits::default() };
    let config = ServerConfig::local().tls(TlsMode::Off).limits(limits).api_token("tok");
    let server = Server::start(config).await.unwrap();
    let addr = server.tcp_addr();
    let client = Client::builder(USER, "fsdev", "secret")
        .host(addr.ip().to_string())
        .port(addr.port())
        .transport(Transport::Tcp)
        .buffer_size(BUFFER)
        .resources(thing)
        .spawn()
        .unwrap();
    client.connected().await.unwrap();

    let data: Vec<u8> = (0..5u32 * 1024 * 1024).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let local = dir.join("in.bin");
    std::fs::write(&local, &data).unwrap();
    let base = |mut v: Vec<String>| {
        v.extend(["--user".into(), USER.into(), "--server".into(), format!("http://{}", server.http_addr())]);
        v.extend(["--token".into(), "tok".into()]);
        v
    };
    let success = format!("{:?}", std::process::ExitCode::SUCCESS);
    // Upload through PUT /fs/upload, then the file is on the device's disk.
    let put = base(vec!["fs".into(), "put".into(), "fsdev".into(), local.display().to_string(), "r/sub/f.bin".into()]);
    let code = thinger_server::remote::fs_cli(put.iter().map(std::ffi::OsString::from)).await;
    assert_eq!(format!("{code:?}"), success, "upload failed");
    let on_disk = std::fs::read(root.join("sub/f.bin")).unwrap();
    assert_eq!(Md5::digest(&on_disk), Md5::digest(&data), "uploaded file differs");
    // No temporary file is left next to it.
    assert_eq!(std::fs::read_dir(root.join("sub")).unwrap().count(), 1);
    // Download through GET /fs/download.
    let back = dir.join("out.bin");
    let get = base(vec!["fs".into(), "get".into(), "fsdev".into(), "r/sub/f.bin".into(), back.display().to_string()]);
    let code = thinger_server::remote::fs_cli(get.iter().map(std::ffi::OsString::from)).await;
    assert_eq!(format!("{code:?}"), success, "download failed");
    assert_eq!(Md5::digest(std::fs::read(&back).unwrap()), Md5::digest(&data), "downloaded file differs");

    // Paths that leave the roots are refused on both channels, before any file is touched.
    std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
    let long = format!("r/{}", "a".repeat(5000));
    let bad = [
        "r/../in.bin",
        "r/./sub/f.bin",
        "/etc/passwd",
        "r\\..\\in.bin",
        "C:/windows",
        "r/a\0b",
        "r/a\u{1}b",
        "r//sub/f.bin",
        "r/%2e%2e/in.bin",
        long.as_str(),
        "nope/f.bin",
        "r/link/passwd",
        "r/sub/../../in.bin",
    ];
    for (i, path) in bad.iter().enumerate() {
        let dl = map(&[("path", Value::Str((*path).into())), ("window_size", Value::Uint(1 << 20))]);
        let ul =
            map(&[("path", Value::Str((*path).into())), ("size", Value::Uint(4)), ("overwrite", Value::Bool(true))]);
        for (resource, params) in [("download", dl), ("upload", ul)] {
            let opened = server.open_stream(USER, "fsdev", &format!("$fs/{resource}/t{i}"), Some(params)).await;
            match opened {
                Err(StreamError::Open(thinger_server::DeviceError::Failed { code, .. })) => {
                    assert!(matches!(code, Some(400 | 403 | 404 | 414)), "{resource} {path:?}: code {code:?}")
                }
                Err(e) => panic!("{resource} {path:?}: {e:?}"),
                Ok(_) => panic!("{resource} of {path:?} was accepted"),
            }
        }
    }
    // Nothing was created by the refused uploads.
    let mut names: Vec<String> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["link", "sub"]);
    client.shutdown().await;
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "ext-cmd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmd_streams_output_then_exit_and_honours_allow_list_and_timeout() {
    use thinger_std::ext::cmd::CmdConfig;
    let mut thing = Resources::new();
    CmdConfig::allow(["echo", "sleep"]).install(&mut thing);
    let (server, client) = device("cmdstream", thing).await;
    let req = |cmd: &str, timeout: f64| Some(map(&[("cmd", Value::Str(cmd.into())), ("timeout", Value::F64(timeout))]));
    // Every value until the device stops the stream.
    async fn all(mut s: thinger_server::DeviceStream) -> Vec<Value> {
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), s.recv()).await.expect("stream did not end") {
                Ok(v) => got.push(v),
                Err(StreamError::Closed) => return got,
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    let got = all(server.open_stream(USER, "cmdstream", "$cmd/s1", req("echo streamed out", 5.0)).await.unwrap()).await;
    let out: Vec<u8> = got.iter().filter_map(|v| v.get("out").and_then(Value::as_bytes)).flatten().copied().collect();
    assert_eq!(out, b"streamed out\n");
    assert_eq!(got.last().and_then(|v| v.get("exit")).and_then(Value::as_i64), Some(0), "{got:?}");

    let got = all(server.open_stream(USER, "cmdstream", "$cmd/s2", req("sleep 30", 0.3)).await.unwrap()).await;
    let end = got.last().expect("an exit frame");
    assert_eq!(end.get("timeout"), Some(&Value::Bool(true)), "{got:?}");
    assert_eq!(end.get("exit").and_then(Value::as_i64), Some(137));

    match server.open_stream(USER, "cmdstream", "$cmd/s3", req("rm -rf /tmp/x", 5.0)).await {
        Err(StreamError::Open(thinger_server::DeviceError::Failed { code, .. })) => assert_eq!(code, Some(403)),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("a command outside the allow-list ran"),
    }
    client.shutdown().await;
    server.shutdown().await;
}
