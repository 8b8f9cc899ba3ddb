//! Transfer rates of the device's gateway extensions over loopback, through the local
//! server: `fs` chunked upload and download (the REST routes, as `thinger-server fs put|get`
//! drive them) and a `proxy` tunnel to a local echo server.
//!
//! ```text
//! cargo bench -p thinger-std --features ext-fs,ext-proxy --bench gateway_ext -- [RUNS]
//! ```
//! Prints MiB/s (min / median / max over RUNS, default 3) per direction.

use std::time::{Duration, Instant};

use thinger_core::pson::Value;
use thinger_server::{Limits, Server, ServerConfig, TlsMode};
use thinger_std::ext::fs::FsConfig;
use thinger_std::ext::proxy::ProxyConfig;
use thinger_std::resources::Resources;
use thinger_std::{Client, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "bench";
const FILE: usize = 32 << 20;
const TUNNEL: usize = 64 << 20;

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

fn report(name: &str, bytes: usize, mut times: Vec<Duration>) {
    times.sort();
    let rate = |d: &Duration| bytes as f64 / (1 << 20) as f64 / d.as_secs_f64();
    let (min, med, max) = (rate(times.last().unwrap()), rate(&times[times.len() / 2]), rate(&times[0]));
    println!("{name:<32} {:>6} MiB  {min:8.1} / {med:8.1} / {max:8.1} MiB/s", bytes >> 20);
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let dir = std::env::temp_dir().join(format!("thinger-bench-ext-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = c.read(&mut buf).await {
                        if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let mut thing = Resources::new();
        FsConfig::new().root("r", &root).writable(true).max_upload(1 << 30).install(&mut thing).unwrap();
        ProxyConfig::allow([("127.0.0.1", port)]).install(&mut thing);
        // Frames of up to 32 KiB (the server's default) and a buffer that holds one.
        let limits = Limits { device_frame_limit: 32 * 1024, ..Limits::default() };
        let server =
            Server::start(ServerConfig::local().tls(TlsMode::Off).limits(limits).api_token("tok")).await.unwrap();
        let addr = server.tcp_addr();
        let client = Client::builder(USER, "dev", "secret")
            .host(addr.ip().to_string())
            .port(addr.port())
            .transport(Transport::Tcp)
            .buffer_size(160 * 1024)
            .resources(thing)
            .spawn()
            .unwrap();
        client.connected().await.unwrap();
        let data: Vec<u8> = (0..FILE as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let local = dir.join("in.bin");
        std::fs::write(&local, &data).unwrap();
        let base = |mut v: Vec<String>| {
            v.extend(["--user".into(), USER.into(), "--server".into(), format!("http://{}", server.http_addr())]);
            v.extend(["--token".into(), "tok".into()]);
            v.into_iter().map(std::ffi::OsString::from).collect::<Vec<_>>()
        };
        let ok = format!("{:?}", std::process::ExitCode::SUCCESS);
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let put =
                base(vec!["fs".into(), "put".into(), "dev".into(), local.display().to_string(), "r/f.bin".into()]);
            let t = Instant::now();
            assert_eq!(format!("{:?}", thinger_server::remote::fs_cli(put).await), ok);
            up.push(t.elapsed());
            let back = dir.join("out.bin");
            let get = base(vec!["fs".into(), "get".into(), "dev".into(), "r/f.bin".into(), back.display().to_string()]);
            let t = Instant::now();
            assert_eq!(format!("{:?}", thinger_server::remote::fs_cli(get).await), ok);
            down.push(t.elapsed());
            assert!(std::fs::read(&back).unwrap() == data);
        }
        report("fs upload (PUT /fs/upload)", FILE, up);
        report("fs download (GET /fs/download)", FILE, down);

        let params = map(&[
            ("protocol", Value::Str("tcp".into())),
            ("address", Value::Str("127.0.0.1".into())),
            ("port", Value::Uint(u64::from(port))),
            ("secure", Value::Bool(false)),
        ]);
        let block = vec![0x5au8; 256 * 1024];
        let mut round = Vec::new();
        for i in 0..runs {
            let s = server.open_stream(USER, "dev", &format!("$proxy/b{i}"), Some(params.clone())).await.unwrap();
            let (tx, mut rx) = s.split();
            let t = Instant::now();
            let b = block.clone();
            let writer = tokio::spawn(async move {
                for _ in 0..TUNNEL / b.len() {
                    tx.send_bytes(&b).await.unwrap();
                }
                tx
            });
            let mut got = 0;
            while got < TUNNEL {
                got += rx.recv_bytes().await.unwrap().len();
            }
            round.push(t.elapsed());
            drop(writer.await.unwrap());
        }
        report("proxy echo round trip", TUNNEL, round);
        client.shutdown().await;
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
