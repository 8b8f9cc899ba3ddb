//! The `terminal`, `proxy` and `fs` commands of the binary against an in-process server and
//! a scripted IOTMP-Linux-shaped device, over real loopback sockets.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::gateway;
use thinger_server::{Server, ServerConfig, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_thinger-server");

async fn start() -> Server {
    let config = ServerConfig::local().tls(TlsMode::Off).api_token("tok");
    Server::start(config).await.unwrap()
}

fn base(server: &Server) -> Vec<String> {
    vec![
        "--user".into(),
        "u".into(),
        "--server".into(),
        format!("http://{}", server.http_addr()),
        "--token".into(),
        "tok".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_with_piped_input_prints_the_device_output() {
    let server = start().await;
    let dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let mut args = vec![
        "terminal".to_owned(),
        "gw".to_owned(),
        "--linger".into(),
        "300".into(),
        "--session".into(),
        "cli1".into(),
    ];
    args.extend(base(&server));
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN).args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"echo hi\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"echo hi\n");
    // Not a terminal: the size is the default, the session the one asked for.
    assert_eq!(dev.lock().unwrap().sizes.get("cli1"), Some(&(80, 24)));
    // A wrong token is a clear error.
    let mut args = vec!["terminal".to_owned(), "gw".to_owned()];
    args.extend(base(&server));
    *args.last_mut().unwrap() = "bad".into();
    let out = tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).stdin(Stdio::null()).output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{out:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_command_tunnels_a_local_port() {
    let server = start().await;
    let _dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let mut args = vec!["proxy".to_owned(), "gw".to_owned(), "--to".into(), echo_addr.to_string()];
    args.extend(base(&server));
    let mut child = Command::new(BIN).args(&args).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let listen = line.split_whitespace().nth(2).unwrap().trim_end_matches(',').to_owned();
    let mut c = tokio::net::TcpStream::connect(&listen).await.unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    c.write_all(&data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut back)).await.unwrap().unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(back == data, "tunnelled bytes differ");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_put_then_get_round_trips_a_file() {
    let server = start().await;
    let dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let dir = common::temp_dir("cli-fs");
    let local = dir.join("in.bin");
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let back = dir.join("out.bin");
    let mut put = vec!["fs".to_owned(), "put".into(), "gw".into(), local.display().to_string(), "/up/f.bin".into()];
    put.extend(base(&server));
    let mut get = vec!["fs".to_owned(), "get".into(), "gw".into(), "up/f.bin".into(), back.display().to_string()];
    get.extend(base(&server));
    let (p, g) = tokio::task::spawn_blocking(move || {
        let p = Command::new(BIN).args(&put).output().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let g = Command::new(BIN).args(&get).output().unwrap();
        (p, g)
    })
    .await
    .unwrap();
    assert!(p.status.success(), "{p:?}");
    assert!(String::from_utf8_lossy(&p.stdout).starts_with("uploaded 1500000 bytes"), "{p:?}");
    assert_eq!(dev.lock().unwrap().files.get("up/f.bin").map(Vec::len), Some(data.len()));
    assert!(g.status.success(), "{g:?}");
    assert!(std::fs::read(&back).unwrap() == data);
    std::fs::remove_dir_all(&dir).unwrap();
    server.shutdown().await;
}
