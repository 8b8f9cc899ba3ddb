//! The proxy itself, one fault at a time, with both ends of the connection held by the test.

use std::time::{Duration, Instant};

use thinger_faults::{Direction, Faults, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy in front of a listener, and one connection through it: (client end, server end).
async fn pair() -> (Proxy, TcpStream, TcpStream, TcpListener) {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = Proxy::start(upstream.local_addr().unwrap()).await.unwrap();
    let client = TcpStream::connect(proxy.addr()).await.unwrap();
    let (server, _) = upstream.accept().await.unwrap();
    (proxy, client, server, upstream)
}

/// Reads exactly `n` bytes within `within`; `None` if they did not come.
async fn read_n(stream: &mut TcpStream, n: usize, within: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; n];
    match tokio::time::timeout(within, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Some(buf),
        _ => None,
    }
}

/// Reads whatever comes within `within` (empty when nothing did).
async fn read_some(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_both_ways_without_faults() {
    let (proxy, mut client, mut server, _l) = pair().await;
    client.write_all(b"hello").await.unwrap();
    assert_eq!(read_n(&mut server, 5, Duration::from_secs(5)).await.unwrap(), b"hello");
    server.write_all(b"world!").await.unwrap();
    assert_eq!(read_n(&mut client, 6, Duration::from_secs(5)).await.unwrap(), b"world!");
    let stats = proxy.handle().stats();
    assert_eq!((stats.connections, stats.forwarded), (1, [5, 6]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_jitter_delay_every_chunk_in_order() {
    let (proxy, mut client, mut server, _l) = pair().await;
    proxy.handle().set(Faults::new().latency(Duration::from_millis(150)).jitter(Duration::from_millis(50)));
    let start = Instant::now();
    for i in 0..20u8 {
        client.write_all(&[i]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let got = read_n(&mut server, 20, Duration::from_secs(5)).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
    assert_eq!(got, (0..20).collect::<Vec<u8>>(), "order kept under jitter");
    // Cleared mid-connection: the next byte is prompt again.
    proxy.handle().clear();
    let start = Instant::now();
    client.write_all(b"x").await.unwrap();
    read_n(&mut server, 1, Duration::from_secs(5)).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(150), "{:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_paces_the_bytes() {
    let (proxy, mut client, mut server, _l) = pair().await;
    proxy.handle().set(Faults::new().bandwidth(20_000));
    let data = vec![7u8; 10_000];
    let start = Instant::now();
    client.write_all(&data).await.unwrap();
    let got = read_n(&mut server, data.len(), Duration::from_secs(10)).await.unwrap();
    // 10 kB at 20 kB/s: half a second, less the first slice.
    assert!(start.elapsed() >= Duration::from_millis(450), "{:?}", start.elapsed());
    assert_eq!(got, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_cuts_chunks_into_tiny_segments() {
    let (proxy, mut client, mut server, _l) = pair().await;
    let faults = proxy.handle();
    faults.set(Faults::new().split(3));
    let data: Vec<u8> = (0..30).collect();
    server.write_all(&data).await.unwrap();
    let mut reads = 0;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < data.len() {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert_eq!(got, data);
    assert!(reads > 1, "one read: nothing was split");
    assert_eq!(faults.stats().segments[1], 10, "30 bytes in segments of 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_holds_bytes_and_the_connection_then_releases_them() {
    let (proxy, mut client, mut server, _l) = pair().await;
    let faults = proxy.handle();
    faults.set(Faults::new().stall(true));
    client.write_all(b"held").await.unwrap();
    server.write_all(b"back").await.unwrap();
    assert!(read_some(&mut server, Duration::from_millis(300)).await.is_empty(), "bytes passed a stall");
    assert!(read_some(&mut client, Duration::from_millis(10)).await.is_empty(), "bytes passed a stall");
    faults.clear();
    assert_eq!(read_n(&mut server, 4, Duration::from_secs(5)).await.unwrap(), b"held");
    assert_eq!(read_n(&mut client, 4, Duration::from_secs(5)).await.unwrap(), b"back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_drops_silently_and_keeps_the_connection() {
    let (proxy, mut client, mut server, _l) = pair().await;
    let faults = proxy.handle();
    faults.set(Faults::new().black_hole(true));
    client.write_all(b"lost").await.unwrap();
    // No bytes and no EOF: the connection looks alive.
    assert!(read_some(&mut server, Duration::from_millis(300)).await.is_empty());
    faults.clear();
    client.write_all(b"after").await.unwrap();
    assert_eq!(read_n(&mut server, 5, Duration::from_secs(5)).await.unwrap(), b"after");
    assert_eq!(faults.stats().dropped[0], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_ends_one_direction_only() {
    let (proxy, mut client, mut server, _l) = pair().await;
    proxy.handle().half_close(Direction::ToClient);
    // The client reads EOF ...
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(n, 0, "no FIN towards the client");
    // ... while what it writes still reaches the server.
    client.write_all(b"still").await.unwrap();
    assert_eq!(read_n(&mut server, 5, Duration::from_secs(5)).await.unwrap(), b"still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_sends_rst_to_both_peers() {
    let (proxy, mut client, mut server, upstream) = pair().await;
    client.write_all(b"a").await.unwrap();
    read_n(&mut server, 1, Duration::from_secs(5)).await.unwrap();
    proxy.handle().reset();
    let mut buf = [0u8; 8];
    for end in [&mut client, &mut server] {
        let r = tokio::time::timeout(Duration::from_secs(5), end.read(&mut buf)).await.unwrap();
        let e = r.expect_err("a reset reads as an error, not as EOF");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
    }
    assert_eq!(proxy.handle().stats().resets, 1);
    // New connections go through again.
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    let (mut second, _) = upstream.accept().await.unwrap();
    again.write_all(b"z").await.unwrap();
    assert_eq!(read_n(&mut second, 1, Duration::from_secs(5)).await.unwrap(), b"z");
    assert_eq!(proxy.handle().stats().connections, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_flips_exactly_one_byte_of_the_next_chunk() {
    let (proxy, mut client, mut server, _l) = pair().await;
    let data: Vec<u8> = (0..64).collect();
    proxy.handle().corrupt(Direction::ToServer);
    client.write_all(&data).await.unwrap();
    let got = read_n(&mut server, data.len(), Duration::from_secs(5)).await.unwrap();
    let differing: Vec<usize> = (0..data.len()).filter(|&i| got[i] != data[i]).collect();
    assert_eq!(differing.len(), 1, "{differing:?}");
    let i = differing[0];
    assert_eq!((got[i] ^ data[i]).count_ones(), 1, "one bit flipped");
    // One-shot: the next chunk is intact.
    client.write_all(&data).await.unwrap();
    assert_eq!(read_n(&mut server, data.len(), Duration::from_secs(5)).await.unwrap(), data);
    assert_eq!(proxy.handle().stats().corrupted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_proxy_closes_its_connections() {
    let (proxy, mut client, _server, _l) = pair().await;
    drop(proxy);
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}
