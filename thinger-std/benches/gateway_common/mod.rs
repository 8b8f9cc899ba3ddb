//! What the gateway-extension benches share: the run count, the runtime, min/median/max, and
//! a local server with one `thinger-std` device (`u`/`gw`) on loopback TCP.

use std::time::Duration;

use thinger_server::{Limits, Server, ServerConfig, TlsMode};
use thinger_std::resources::Resources;
use thinger_std::{Client, Transport};

/// Runs per row: the first number on the command line (`cargo bench ... -- 3`), else 5.
pub fn runs() -> usize {
    std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5).max(1)
}

/// A two-worker runtime, as a small gateway has.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// (min, median, max).
pub fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// A plain-TCP local server sending device frames up to `frame_limit` bytes, and device
/// `u`/`gw` with `thing` and a session buffer of `buffer` bytes, connected.
pub async fn server_and_device(thing: Resources, frame_limit: usize, buffer: usize) -> (Server, Client) {
    let limits = Limits { device_frame_limit: frame_limit, ..Limits::default() };
    let server = Server::start(ServerConfig::local().tls(TlsMode::Off).limits(limits)).await.unwrap();
    let addr = server.tcp_addr();
    let client = Client::builder("u", "gw", "secret")
        .host(addr.ip().to_string())
        .port(addr.port())
        .transport(Transport::Tcp)
        .buffer_size(buffer)
        .resources(thing)
        .spawn()
        .unwrap();
    client.connected().await.unwrap();
    assert!(server.wait_connected("u", "gw", Duration::from_secs(5)).await);
    (server, client)
}
