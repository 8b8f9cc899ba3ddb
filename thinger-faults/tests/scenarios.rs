//! Every proxy fault in the middle of a device's work, with exact accounting.
//!
//! A thinger-std client (the device) talks to a thinger-server (a library in this process)
//! through the fault proxy. It queues a bucket write every 10 ms, each carrying an id, answers
//! RUN calls on `echo` and holds a property subscription. Each scenario applies one fault
//! mid-stream, holds it, clears it, and then checks by id: every write the device queued is
//! stored (0 lost), duplicates stay within what the device had in flight when a connection
//! died, first arrivals keep the write order, and after the fault the device is connected
//! again, answers RUN calls and receives property changes.
//! A last scenario resets the link five times in two seconds (a flapping link).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thinger_core::pson::Value;
use thinger_faults::{Direction, FaultHandle, Faults, Proxy};
use thinger_server::{Server, ServerConfig, TlsMode};
use thinger_std::dsl::input_output;
use thinger_std::tls::TlsConfig;
use thinger_std::{Backoff, Client, QueueConfig, Subscription, Transport};

const USER: &str = "user1";
/// Queued writes in flight at most (the client's window).
const WINDOW: usize = 8;
/// Keep-alive of the device: a dead peer is detected after 1.15 × this.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

struct Rig {
    server: Server,
    proxy: Proxy,
    faults: FaultHandle,
    client: Client,
    device: String,
    mode: Subscription<u64>,
    next_id: u64,
    property_round: u64,
}

impl Rig {
    async fn start(device: &str, tls: bool) -> Rig {
        let config =
            ServerConfig::local().tls(if tls { TlsMode::Generate { names: Vec::new() } } else { TlsMode::Off });
        let server = Server::start(config).await.unwrap();
        let upstream: SocketAddr = if tls { server.tls_addr().unwrap() } else { server.tcp_addr() };
        let proxy = Proxy::start(upstream).await.unwrap();
        let backoff = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(300),
            multiplier: 2.0,
            jitter: 0.2,
        };
        let mut builder = Client::builder(USER, device, "secret")
            .host(if tls { "localhost".to_owned() } else { proxy.addr().ip().to_string() })
            .port(proxy.addr().port())
            .transport(if tls { Transport::Tls } else { Transport::Tcp })
            .keep_alive(KEEP_ALIVE)
            .connect_timeout(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(2))
            .backoff(backoff)
            .queue(QueueConfig::new().capacity(10_000))
            .queue_window(WINDOW)
            .resource("echo", input_output(|x: u64| x));
        if tls {
            builder = builder.tls(TlsConfig::new().with_ca_pem(&server.ca_cert_pem().unwrap()).unwrap());
        }
        let client = builder.spawn().unwrap();
        client.with_timeout(Duration::from_secs(10)).connected().await.unwrap();
        let mode = client.subscribe_property::<u64>("mode", false).await.unwrap();
        let faults = proxy.handle();
        let mut rig =
            Rig { server, proxy, faults, client, device: device.to_owned(), mode, next_id: 0, property_round: 0 };
        rig.property_reaches_the_device(Duration::from_secs(5)).await;
        rig
    }

    /// Queues one write every 10 ms for `duration`.
    async fn write_for(&mut self, duration: Duration) {
        write_for(&self.client, &mut self.next_id, duration).await;
    }

    /// A RUN call through the server reaches the device and comes back.
    async fn run_call(&self) -> bool {
        let n = self.next_id;
        match self.server.run_resource(USER, &self.device, "echo", Some(Value::from(n))).await {
            Ok(reply) => reply.payload == Some(Value::from(n)),
            Err(_) => false,
        }
    }

    /// Changes the property until the subscription delivers the change (it is renewed
    /// asynchronously after a reconnect).
    async fn property_reaches_the_device(&mut self, within: Duration) {
        let end = Instant::now() + within;
        while Instant::now() < end {
            self.property_round += 1;
            let value = self.property_round;
            self.server.set_property(USER, &self.device, "mode", Value::from(value)).await.unwrap();
            let wait = tokio::time::timeout(Duration::from_millis(200), async {
                while let Some(got) = self.mode.next().await {
                    if got == Ok(value) {
                        return true;
                    }
                }
                false
            });
            if wait.await == Ok(true) {
                return;
            }
        }
        panic!("{}: property changes do not reach the device", self.device);
    }

    /// Clears faults, waits for the device to be connected and for its queue to drain,
    /// checks RUN calls and the subscription, and counts the stored writes by id.
    async fn recover_and_count(mut self, label: &str) -> Outcome {
        self.faults.clear();
        let cleared = Instant::now();
        self.write_for(Duration::from_millis(300)).await;
        self.client.with_timeout(Duration::from_secs(10)).connected().await.unwrap();
        self.client.with_timeout(Duration::from_secs(20)).flush().await.unwrap();
        let recovered = cleared.elapsed();
        let mut run_ok = false;
        for _ in 0..20 {
            if self.run_call().await {
                run_ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(run_ok, "{label}: RUN calls fail after the fault");
        self.property_reaches_the_device(Duration::from_secs(5)).await;

        let stats = self.client.stats().await.unwrap();
        let stored: Vec<u64> = self
            .server
            .bucket_data(USER, "ids")
            .await
            .iter()
            .map(|r| r.value.get("id").and_then(|v| v.as_u64()).expect("an id in every record"))
            .collect();
        let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
        for id in &stored {
            *copies.entry(*id).or_default() += 1;
        }
        let written: BTreeSet<u64> = (0..self.next_id).collect();
        let distinct: BTreeSet<u64> = copies.keys().copied().collect();
        let lost: Vec<u64> = written.difference(&distinct).copied().collect();
        let unknown: Vec<u64> = distinct.difference(&written).copied().collect();
        let duplicates = stored.len() - distinct.len();
        let mut seen = BTreeSet::new();
        let firsts: Vec<u64> = stored.iter().copied().filter(|id| seen.insert(*id)).collect();
        let in_order = firsts.windows(2).all(|w| w[0] < w[1]);
        let outcome = Outcome {
            written: self.next_id,
            lost,
            unknown,
            duplicates,
            in_order,
            sessions: stats.authentications,
            recovered,
            proxy: self.faults.stats(),
        };
        println!("{label}: {outcome:?}");
        self.client.shutdown().await;
        drop(self.proxy);
        self.server.shutdown().await;
        outcome
    }
}

/// Queues one write (carrying the next id) every 10 ms for `duration`.
async fn write_for(client: &Client, next_id: &mut u64, duration: Duration) {
    let end = Instant::now() + duration;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while Instant::now() < end {
        tick.tick().await;
        client.queue_bucket_write("ids", &serde_json::json!({ "id": *next_id })).await.unwrap();
        *next_id += 1;
    }
}

#[derive(Debug)]
#[allow(dead_code)] // Printed for the record.
struct Outcome {
    written: u64,
    lost: Vec<u64>,
    unknown: Vec<u64>,
    duplicates: usize,
    in_order: bool,
    sessions: u64,
    recovered: Duration,
    proxy: thinger_faults::ProxyStats,
}

impl Outcome {
    /// 0 lost, nothing invented, first arrivals in order, duplicates bounded by the window
    /// per lost connection, and the number of sessions the fault should have caused.
    fn check(&self, label: &str, sessions: std::ops::RangeInclusive<u64>) {
        assert!(self.lost.is_empty(), "{label}: lost writes {:?}", self.lost);
        assert!(self.unknown.is_empty(), "{label}: stored ids never written {:?}", self.unknown);
        assert!(self.in_order, "{label}: first arrivals out of order");
        assert!(sessions.contains(&self.sessions), "{label}: {} sessions, expected {sessions:?}", self.sessions);
        let bound = WINDOW * (self.sessions as usize - 1);
        assert!(self.duplicates <= bound, "{label}: {} duplicates > {bound}", self.duplicates);
    }
}

/// One scenario: healthy writes, the fault for `hold` (writes and RUN calls going on), then
/// recovery and the count.
async fn scenario(device: &str, tls: bool, hold: Duration, apply: impl FnOnce(&FaultHandle)) -> Outcome {
    let mut rig = Rig::start(device, tls).await;
    rig.write_for(Duration::from_millis(300)).await;
    assert!(rig.run_call().await, "{device}: RUN fails before the fault");
    apply(&rig.faults);
    // RUN calls during the fault may fail; they must not break anything.
    let calls = async {
        let end = Instant::now() + hold;
        while Instant::now() < end {
            let call = rig.server.run_resource(USER, device, "echo", Some(Value::from(1u64)));
            let _ = tokio::time::timeout(end - Instant::now(), call).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::join!(write_for(&rig.client, &mut rig.next_id, hold), calls);
    rig.recover_and_count(device).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_jitter() {
    let hold = Duration::from_millis(1500);
    let outcome = scenario("latency", false, hold, |f| {
        f.set(Faults::new().latency(Duration::from_millis(200)).jitter(Duration::from_millis(100)))
    })
    .await;
    outcome.check("latency", 1..=1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limit() {
    let outcome =
        scenario("bandwidth", false, Duration::from_millis(1500), |f| f.set(Faults::new().bandwidth(4_000))).await;
    outcome.check("bandwidth", 1..=1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_level_split() {
    let outcome = scenario("split", false, Duration::from_millis(1500), |f| f.set(Faults::new().split(1))).await;
    outcome.check("split", 1..=1);
    // One byte per segment (1 ms apart) while the fault held: hundreds of them.
    assert!(outcome.proxy.segments[0] >= 300, "{:?}", outcome.proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_longer_than_the_dead_peer_timeout() {
    let outcome = scenario("stall", false, Duration::from_millis(2500), |f| f.set(Faults::new().stall(true))).await;
    outcome.check("stall", 2..=4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_drop_black_hole() {
    let outcome =
        scenario("blackhole", false, Duration::from_millis(2500), |f| f.set(Faults::new().black_hole(true))).await;
    outcome.check("blackhole", 2..=4);
    assert!(outcome.proxy.dropped[0] > 0, "{:?}", outcome.proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_towards_the_device() {
    let outcome =
        scenario("halfclose_dev", false, Duration::from_millis(800), |f| f.half_close(Direction::ToClient)).await;
    outcome.check("halfclose_dev", 2..=3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_towards_the_server() {
    let outcome =
        scenario("halfclose_srv", false, Duration::from_millis(800), |f| f.half_close(Direction::ToServer)).await;
    outcome.check("halfclose_srv", 2..=3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset() {
    let outcome = scenario("reset", false, Duration::from_millis(800), |f| f.reset()).await;
    outcome.check("reset", 2..=3);
    assert_eq!(outcome.proxy.resets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_bytes_over_tls_are_detected_and_retried() {
    // Plain TCP has only its own checksum; over TLS a flipped bit fails the record's MAC,
    // the connection is dropped and the device replays what was not acknowledged.
    let outcome = scenario("corrupt", true, Duration::from_millis(800), |f| {
        f.corrupt(Direction::ToServer);
        f.corrupt(Direction::ToClient);
    })
    .await;
    outcome.check("corrupt", 2..=4);
    assert_eq!(outcome.proxy.corrupted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_link_reset_five_times() {
    let mut rig = Rig::start("flapping", false).await;
    rig.write_for(Duration::from_millis(300)).await;
    let faults = rig.faults.clone();
    let flaps = async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            faults.reset();
        }
    };
    tokio::join!(write_for(&rig.client, &mut rig.next_id, Duration::from_millis(2200)), flaps);
    let outcome = rig.recover_and_count("flapping").await;
    // A reset between two connections finds nothing to cut: most of the five must hit.
    outcome.check("flapping", 4..=6);
}
