//! Power loss in the middle of a queue write: the persisted offline queue of thinger-std
//! (`QueueConfig::persist`) is cut at every byte offset of its last record, the device
//! restarts on the cut file and replays it to a real server.
//!
//! The file format used to find the last record is the documented one (records behind a
//! 4-byte little-endian length); the queue itself is used only through the client's API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thinger_server::{Server, ServerConfig, TlsMode};
use thinger_std::{Backoff, Client, QueueConfig, Transport};

const USER: &str = "user1";
const WRITES: u64 = 5;

fn client(addr: SocketAddr, device: &str, path: &Path) -> Client {
    Client::builder(USER, device, "secret")
        .host(addr.ip().to_string())
        .port(addr.port())
        .transport(Transport::Tcp)
        .backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            multiplier: 2.0,
            jitter: 0.0,
        })
        .connect_timeout(Duration::from_secs(1))
        .queue(QueueConfig::new().persist(path))
        .spawn()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("thinger-faults-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Where the last record of a queue file starts (thinger-core's queue record format: entry
/// records and removal marks, see `thinger_core::queue::record`).
fn last_record_start(bytes: &[u8]) -> usize {
    use thinger_core::queue::record;
    let mut pos = 0;
    let mut last = 0;
    while pos < bytes.len() {
        let len = match bytes[pos] {
            record::MAGIC => record::peek_len(&bytes[pos..]).expect("an entry record"),
            record::REMOVAL_MAGIC => record::REMOVAL_LEN,
            other => panic!("byte {pos} of the intact file starts no record ({other:#04x})"),
        };
        assert!(pos + len <= bytes.len(), "the intact file has a torn record");
        last = pos;
        pos += len;
    }
    last
}

/// An address where nothing listens: queued writes stay queued.
fn nowhere() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Ids stored by `device` in the `ids` bucket, in arrival order.
async fn stored_by(server: &Server, device: &str) -> Vec<u64> {
    server
        .bucket_data(USER, "ids")
        .await
        .iter()
        .filter(|r| r.device == device)
        .map(|r| r.value.as_u64().unwrap())
        .collect()
}

/// Restarts a device on `file` cut to `cut` bytes: returns what it had queued on opening,
/// what the server stored from it, and what a second restart still had queued.
async fn restart_on_cut(
    server: &Server,
    dir: &Path,
    file: &[u8],
    cut: usize,
    device: &str,
) -> (usize, Vec<u64>, usize) {
    let path = dir.join(format!("{device}.log"));
    std::fs::write(&path, &file[..cut]).unwrap();
    // Opened offline first, to read what the replay found.
    let offline = client(nowhere(), device, &path);
    let queued = offline.stats().await.unwrap().queued;
    offline.shutdown().await;
    let online = client(server.tcp_addr(), device, &path);
    online.with_timeout(Duration::from_secs(10)).flush().await.unwrap();
    online.shutdown().await;
    let stored = stored_by(server, device).await;
    // Nothing is replayed a second time.
    let again = client(nowhere(), device, &path);
    let left = again.stats().await.unwrap().queued;
    again.shutdown().await;
    (queued, stored, left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_while_queueing_a_write_loses_only_that_write() {
    let dir = temp_dir("torn-add");
    let server = Server::start(ServerConfig::local().tls(TlsMode::Off)).await.unwrap();
    let path = dir.join("outbox.log");
    // Offline: WRITES entries queued, their records the whole file.
    let device = client(nowhere(), "origin", &path);
    for id in 0..WRITES {
        device.queue_bucket_write("ids", &id).await.unwrap();
    }
    device.shutdown().await;
    let file = std::fs::read(&path).unwrap();
    let start = last_record_start(&file);
    assert!(file.len() - start > 4, "the last record has a body");
    println!("last record: bytes {start}..{} of the file", file.len());
    for cut in start..=file.len() {
        let name = format!("add{cut}");
        let (queued, stored, left) = restart_on_cut(&server, &dir, &file, cut, &name).await;
        // Everything committed before the last record is kept; the torn one is gone whole.
        let expect: Vec<u64> = if cut == file.len() { (0..WRITES).collect() } else { (0..WRITES - 1).collect() };
        assert_eq!(queued, expect.len(), "cut at {cut} of {}", file.len());
        assert_eq!(stored, expect, "cut at {cut} of {}: stored once each, in order", file.len());
        assert_eq!(left, 0, "cut at {cut}: replayed again after a second restart");
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_while_recording_an_acknowledgement_replays_that_write_once() {
    let dir = temp_dir("torn-remove");
    let server = Server::start(ServerConfig::local().tls(TlsMode::Off)).await.unwrap();
    let path = dir.join("outbox.log");
    let device = client(nowhere(), "origin", &path);
    for id in 0..WRITES {
        device.queue_bucket_write("ids", &id).await.unwrap();
    }
    device.shutdown().await;
    // Delivered: the file now ends with the acknowledgements' removal records.
    let device = client(server.tcp_addr(), "origin", &path);
    device.with_timeout(Duration::from_secs(10)).flush().await.unwrap();
    device.shutdown().await;
    assert_eq!(stored_by(&server, "origin").await, (0..WRITES).collect::<Vec<u64>>());
    let file = std::fs::read(&path).unwrap();
    let start = last_record_start(&file);
    println!("last record: bytes {start}..{} of the file", file.len());
    for cut in start..=file.len() {
        let name = format!("remove{cut}");
        let (queued, stored, left) = restart_on_cut(&server, &dir, &file, cut, &name).await;
        if cut == file.len() {
            assert_eq!((queued, stored.len()), (0, 0), "an intact file replays nothing");
        } else {
            // The acknowledgement was lost with the power: that one write goes again, once.
            assert_eq!(queued, 1, "cut at {cut} of {}", file.len());
            assert_eq!(stored.len(), 1, "cut at {cut}: {stored:?}");
            assert!(stored[0] < WRITES);
        }
        assert_eq!(left, 0, "cut at {cut}: replayed again after a second restart");
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
