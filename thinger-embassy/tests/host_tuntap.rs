//! The adapter for real on a Linux host: embassy's std executor, embassy-net over a TAP
//! device (embassy-net-tuntap), against the local `thinger-server`, TLS verified against the
//! server's generated CA.
//!
//! Everything happens inside a network namespace the test creates (`ip netns add`): the
//! TAP device, its host-side address 192.168.69.1 where the server listens, and the
//! device's stack at 192.168.69.2. The test re-runs its own binary inside the namespace
//! (`ip netns exec`), and deletes the namespace at the end, also on failure. No packet
//! leaves it. Without root, /dev/net/tun or `ip` it fails when CI is set (CI must run
//! it) and is skipped with a loud message otherwise.
//!
//! It covers every row of the parity table in docs/embedded.md: resources, cloud calls
//! (buckets, properties, endpoints with their replies, another device's resource, sync
//! locks), server error messages, subscriptions (events, property changes, MQTT topics)
//! and MQTT publishing, deferred replies, disconnect reasons, keep-alive and reconnect,
//! and the offline queue (in a flash store) across a server restart with no write lost.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Duration, Timer, with_timeout};
use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use rand_core::{OsRng, RngCore};
use thinger_core::dsl::{DigitalPin, OutputValue, Thing, VirtualPin, digital_pin, output_value};
use thinger_core::pson::{PsonRef, Value};
use thinger_core::resource::{ResourceKind, handler};
use thinger_core::session::{Config as SessionConfig, DisconnectReason, Subscription as Def};
use thinger_embassy::{Buffers, Client, Config, FlashStore, Runner, Tls};
use thinger_server::{EndpointConfig, Server, ServerConfig, TlsMode};

const CHILD_ENV: &str = "THINGER_EMBASSY_NETNS_CHILD";
const TEST_NAME: &str = "host_run_against_local_server";
const TAP: &str = "tap0";
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
const SERVER_CIDR: &str = "192.168.69.1/24";
const DEVICE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 2);
/// A DNS name the generated server certificate carries (the device connects by address).
const SERVER_NAME: &str = "thinger.test";
const USER: &str = "embassy";
const DEVICE: &str = "tap-device";

#[test]
fn host_run_against_local_server() {
    if std::env::var_os(CHILD_ENV).is_some() {
        inside_namespace();
        return;
    }
    // It needs root, /dev/net/tun and `ip` to build its namespace: without them it fails,
    // naming what is missing (it never passes without having run).
    let cannot = |reason: String| -> ! { panic!("host_tuntap cannot run here: {reason}") };
    if let Err(reason) = can_run() {
        cannot(reason);
    }
    let name = format!("thinger-embassy-{}", std::process::id());
    let netns = match Netns::create(&name) {
        Ok(ns) => ns,
        Err(reason) => cannot(format!("cannot create a network namespace: {reason}")),
    };
    let setup = [
        vec!["ip", "link", "set", "lo", "up"],
        vec!["ip", "tuntap", "add", "name", TAP, "mode", "tap"],
        vec!["ip", "addr", "add", SERVER_CIDR, "dev", TAP],
        vec!["ip", "link", "set", TAP, "up"],
    ];
    for args in setup {
        if let Err(reason) = netns.exec(&args) {
            cannot(format!("cannot set up the TAP device in the namespace: {reason}"));
        }
    }

    let exe = std::env::current_exe().unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", &netns.0])
        .arg(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .status()
        .unwrap();
    assert!(status.success(), "the run inside the namespace failed: {status}");
}

/// Why the test cannot run here, if it cannot.
fn can_run() -> Result<(), String> {
    let uid = Command::new("id").arg("-u").output().map_err(|e| format!("cannot run `id`: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("needs root (network namespaces and TAP devices)".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("the `ip` tool (iproute2) is missing".into()),
    }
}

/// A network namespace, deleted (with its TAP device) when dropped.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Result<Netns, String> {
        let out = Command::new("ip").args(["netns", "add", name]).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Netns(name.to_string()))
    }

    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new("ip").args(["netns", "exec", &self.0]).args(args).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.exec(&["ip", "tuntap", "del", "name", TAP, "mode", "tap"]);
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// What the device's application task saw in the first phase.
#[derive(Debug)]
struct Report {
    connected: bool,
    write_bucket: Result<(), thinger_embassy::Error>,
    set_property: Result<(), thinger_embassy::Error>,
    read_property: Result<Option<u64>, thinger_embassy::Error>,
    call_endpoint: Result<(), thinger_embassy::Error>,
    endpoint_reply: Result<Option<u64>, thinger_embassy::Error>,
    unknown_endpoint: Result<(), thinger_embassy::Error>,
    call_device: Result<Option<u64>, thinger_embassy::Error>,
    lock: Result<(), thinger_embassy::Error>,
    initial_mode: Option<String>,
    changed_mode: Option<String>,
    mqtt: Option<(String, Option<u64>)>,
    state_event: Option<String>,
    disconnect: Option<DisconnectReason>,
    plain_connected: bool,
    wrong_name_error: Option<String>,
    wrong_name_is_certificate_error: bool,
    wrong_name_connected: bool,
}

/// Device → test: what happened, step by step.
#[derive(Debug)]
enum Msg {
    /// Subscribed to "mode" and read its current value: change it now.
    ChangeMode,
    /// Subscribed to device state events: disconnect the plain device now.
    DropPlain,
    /// Phase one done.
    Report(Box<Report>),
    /// Offline queue: this many writes queued so far.
    Queued(u32),
    /// Offline queue: every write queued and answered (or why not).
    Flushed(Result<(), thinger_embassy::Error>),
}

/// Writes the device queues across the server restart.
const QUEUED_WRITES: u32 = 40;

fn server_config(tcp: u16, tls: u16, http: u16, data: &std::path::Path) -> ServerConfig {
    ServerConfig::local()
        .bind(SERVER_IP.into())
        .ports(tcp, tls, http)
        .data_dir(data)
        .tls(TlsMode::Generate { names: vec![SERVER_NAME.to_string()] })
        .endpoint(EndpointConfig::new("hello"))
        .endpoint(EndpointConfig::new("answer").response(Value::Uint(42)))
}

/// The test proper, run inside the namespace.
fn inside_namespace() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = std::env::temp_dir().join(format!("thinger-embassy-tap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let mut server = rt.block_on(Server::start(server_config(0, 0, 0, &data))).unwrap();
    let tls_port = server.tls_addr().unwrap().port();
    let tcp_port = server.tcp_addr().port();
    let http_port = server.http_addr().port();
    let ca_pem = server.ca_cert_pem().unwrap();
    let ca_der = rustls_pemfile::certs(&mut ca_pem.as_bytes()).next().unwrap().unwrap().to_vec();
    let ca: &'static [u8] = Box::leak(ca_der.into_boxed_slice());
    println!("server: TLS on {SERVER_IP}:{tls_port}, TCP on {SERVER_IP}:{tcp_port}");
    rt.block_on(server.set_property(USER, DEVICE, "mode", Value::Str("eco".into()))).unwrap();

    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::spawn(move || {
        let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
        executor.run(move |spawner| start_device(spawner, ca, tls_port, tcp_port, tx));
    });
    let recv = |what: &str| {
        rx.recv_timeout(StdDuration::from_secs(60)).unwrap_or_else(|_| panic!("no {what} from the device"))
    };

    rt.block_on(async {
        assert!(
            server.wait_connected(USER, DEVICE, StdDuration::from_secs(30)).await,
            "the device did not connect over TLS"
        );
        // The server drives the device's resources.
        // An input answers a plain OK (as the official client does); asked without input it
        // reports its state.
        let reply = server.run_resource(USER, DEVICE, "led", Some(Value::Bool(true))).await.unwrap();
        assert!(matches!(reply.payload, None | Some(Value::Bool(true))), "led answered {reply:?}");
        let reply = server.run_resource(USER, DEVICE, "led", None).await.unwrap();
        assert_eq!(reply.payload, Some(Value::Bool(true)), "led did not take the new state");
        let reply = server.run_resource(USER, DEVICE, "millis", None).await.unwrap();
        let millis = match reply.payload {
            Some(Value::Uint(ms)) => ms,
            other => panic!("millis answered {other:?}"),
        };
        assert!(millis > 0);
        // A handler that defers is answered by the application later, not with 504.
        let reply = server.run_resource(USER, DEVICE, "slow", None).await;
        assert_eq!(reply.map(|r| r.payload).ok().flatten(), Some(Value::Uint(4242)), "deferred reply");
    });

    match recv("subscription step") {
        Msg::ChangeMode => rt.block_on(server.set_property(USER, DEVICE, "mode", Value::Str("boost".into()))).unwrap(),
        other => panic!("unexpected {other:?}"),
    }
    match recv("subscription step") {
        Msg::DropPlain => assert!(server.disconnect_device(USER, "plain-device"), "plain device not connected"),
        other => panic!("unexpected {other:?}"),
    }
    let report = match recv("report") {
        Msg::Report(r) => r,
        other => panic!("unexpected {other:?}"),
    };
    println!("device report: {report:?}");
    assert!(report.connected);
    assert_eq!(report.write_bucket, Ok(()));
    assert_eq!(report.set_property, Ok(()));
    assert_eq!(report.read_property, Ok(Some(7)));
    assert_eq!(report.call_endpoint, Ok(()));
    assert_eq!(report.endpoint_reply, Ok(Some(42)), "the endpoint's reply");
    let unknown = report.unknown_endpoint.unwrap_err();
    assert_eq!((unknown.code(), unknown.message()), (Some(404), Some("unknown endpoint")), "{unknown:?}");
    assert!(matches!(report.call_device, Ok(Some(ms)) if ms > 0), "call_device: {:?}", report.call_device);
    assert_eq!(report.lock, Ok(()), "lock_sync / unlock_sync");
    assert_eq!(report.initial_mode.as_deref(), Some("eco"), "property subscription, current value");
    assert_eq!(report.changed_mode.as_deref(), Some("boost"), "property subscription, change");
    assert_eq!(report.mqtt, Some(("home/kitchen/temp".to_string(), Some(21))), "MQTT message");
    assert!(
        report.state_event.as_deref().is_some_and(|e| e.contains("plain-device")),
        "state event: {:?}",
        report.state_event
    );
    assert!(
        matches!(report.disconnect, Some(DisconnectReason::ServerDisconnect(_) | DisconnectReason::TransportClosed)),
        "disconnect reason: {:?}",
        report.disconnect
    );
    assert!(report.plain_connected, "the plain TCP client did not connect");
    assert!(!report.wrong_name_connected, "a server name the certificate lacks was accepted");
    assert!(
        report.wrong_name_is_certificate_error,
        "the wrong server name failed for another reason: {:?}",
        report.wrong_name_error
    );

    rt.block_on(async {
        let records = server.bucket_data(USER, "readings").await;
        assert_eq!(records.len(), 1, "bucket records: {records:?}");
        // 21.5 is exact in f32, so PSON carries it as f32 (the official encoding rule).
        assert!(
            matches!(records[0].value, Value::F32(v) if v == 21.5) || records[0].value == Value::F64(21.5),
            "bucket record: {:?}",
            records[0].value
        );
        assert_eq!(server.property(USER, DEVICE, "cfg").await, Some(Value::Uint(7)));
        let calls = server.endpoint_calls(USER).await;
        assert!(calls.iter().any(|c| c.endpoint == "hello"), "endpoint calls: {calls:?}");

        // Keep-alives (2 s) keep the session up well past the server's device timeout.
        tokio::time::sleep(StdDuration::from_secs(5)).await;
        assert!(server.is_connected(USER, DEVICE), "the session did not survive 5 s of keep-alives");
        let reply = server.run_resource(USER, DEVICE, "led", None).await.unwrap();
        assert_eq!(reply.payload, Some(Value::Bool(true)), "state lost across the reconnect");
    });

    // The offline queue across a server restart: the plain device queues a write every
    // 100 ms; the server stops after the fifth and starts again (same ports and data) two
    // seconds later. Every write must be stored once it is back.
    loop {
        match recv("queue progress") {
            Msg::Queued(n) if n >= 5 => break,
            Msg::Queued(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    rt.block_on(server.shutdown());
    println!("server stopped");
    std::thread::sleep(StdDuration::from_secs(2));
    server = rt.block_on(Server::start(server_config(tcp_port, tls_port, http_port, &data))).unwrap();
    println!("server restarted");
    let flushed = loop {
        match recv("queue flush") {
            Msg::Flushed(r) => break r,
            Msg::Queued(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(flushed, Ok(()), "the queue did not drain after the restart");
    rt.block_on(async {
        let records = server.bucket_data(USER, "counter").await;
        let mut seen: Vec<u64> = records.iter().filter_map(|r| r.value.as_u64()).collect();
        seen.sort_unstable();
        seen.dedup();
        let lost: Vec<u64> = (0..u64::from(QUEUED_WRITES)).filter(|n| seen.binary_search(n).is_err()).collect();
        assert!(lost.is_empty(), "writes lost across the server restart: {lost:?} ({} records)", records.len());
        println!("offline queue: {} writes, {} records stored, 0 lost", QUEUED_WRITES, records.len());
        server.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&data);
    println!("host run: every capability row passed");
}

type DeviceRunner = Runner<'static, OsRng, 4>;
type StoreRunner = Runner<'static, OsRng, 4, FlashStore<RamFlash>>;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task(pool_size = 2)]
async fn thinger_task(runner: DeviceRunner) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn thinger_store_task(runner: StoreRunner) -> ! {
    runner.run().await
}

fn millis() -> u64 {
    embassy_time::Instant::now().as_millis()
}

/// NOR flash in RAM for the plain device's queue store: erase sets 0xff, writes clear bits.
struct RamFlash(Vec<u8>);

#[derive(Debug)]
struct FlashOutOfBounds;

impl NorFlashError for FlashOutOfBounds {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::OutOfBounds
    }
}
impl ErrorType for RamFlash {
    type Error = FlashOutOfBounds;
}
impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashOutOfBounds> {
        let src = self.0.get(offset as usize..offset as usize + bytes.len()).ok_or(FlashOutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}
impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashOutOfBounds> {
        self.0.get_mut(from as usize..to as usize).ok_or(FlashOutOfBounds)?.fill(0xff);
        Ok(())
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashOutOfBounds> {
        let dst = self.0.get_mut(offset as usize..offset as usize + bytes.len()).ok_or(FlashOutOfBounds)?;
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d &= *s;
        }
        Ok(())
    }
}
impl MultiwriteNorFlash for RamFlash {}

/// A client with its own resources and buffers, all leaked for `'static`.
fn client(
    stack: embassy_net::Stack<'static>,
    config: Config<'static>,
) -> (Client<'static, 4>, Runner<'static, OsRng, 4>) {
    let led: &'static mut DigitalPin<VirtualPin> = Box::leak(Box::new(digital_pin(VirtualPin::new(false))));
    let uptime: &'static mut OutputValue<fn() -> u64> = Box::leak(Box::new(output_value(millis as fn() -> u64)));
    // Answers later: the application replies through `Client::reply`.
    let slow: &'static mut _ = Box::leak(Box::new(handler(ResourceKind::Output, |call| {
        call.defer();
        Ok(())
    })));
    let mut thing: Thing<'static, 4> = Thing::new();
    thing["led"] <<= led;
    thing["millis"] >>= uptime;
    thing["slow"] >>= slow;
    let buffers: &'static mut Buffers<'static, 4> = Box::leak(Box::new(Buffers::new()));
    thinger_embassy::new(stack, config, thing, buffers, OsRng)
}

fn start_device(spawner: Spawner, ca: &'static [u8], tls_port: u16, tcp_port: u16, tx: mpsc::Sender<Msg>) {
    let device = TunTapDevice::new(TAP).unwrap();
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(DEVICE_IP, 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let resources: &'static mut StackResources<8> = Box::leak(Box::new(StackResources::new()));
    let (stack, net_runner) = embassy_net::new(device, net_config, resources, OsRng.next_u64());
    spawner.spawn(net_task(net_runner).unwrap());

    let host: &'static str = Box::leak(SERVER_IP.to_string().into_boxed_str());
    let backoff = (Duration::from_millis(200), Duration::from_secs(1));
    let session = SessionConfig::new(USER, DEVICE, "secret").keep_alive(thinger_core::time::Duration::from_secs(2));
    let tls = Config::new(session, host, Tls::new(SERVER_NAME, ca)).port(tls_port).backoff(backoff.0, backoff.1);
    let (main, runner) = client(stack, tls);
    spawner.spawn(thinger_task(runner).unwrap());

    // The plain device keeps its offline queue in (RAM-backed) flash too.
    let session =
        SessionConfig::new(USER, "plain-device", "secret").keep_alive(thinger_core::time::Duration::from_secs(2));
    let plain = Config::plain(session, host).port(tcp_port).backoff(backoff.0, backoff.1);
    let (plain, runner) = client(stack, plain);
    let store = FlashStore::try_new(RamFlash(vec![0xff; 4 * 4096]), 0..4 * 4096).unwrap();
    spawner.spawn(thinger_store_task(runner.with_store(store)).unwrap());

    let session = SessionConfig::new(USER, "wrong-name", "secret");
    let wrong = Config::new(session, host, Tls::new("not-in-the-certificate.test", ca))
        .port(tls_port)
        .backoff(backoff.0, backoff.1);
    let (wrong, runner) = client(stack, wrong);
    spawner.spawn(thinger_task(runner).unwrap());

    spawner.spawn(deferred_task(main).unwrap());
    spawner.spawn(app_task(main, plain, wrong, tx).unwrap());
}

/// Answers every deferred request of the main device after a moment.
#[embassy_executor::task]
async fn deferred_task(client: Client<'static, 4>) {
    loop {
        let Ok(request) = client.next_deferred().await else {
            Timer::after(Duration::from_millis(50)).await;
            continue;
        };
        Timer::after(Duration::from_millis(100)).await;
        let _ = client.reply(request.stream_id, Ok(Some(&4242u32))).await;
    }
}

fn decode_u64(buf: &[u8], r: Result<usize, thinger_embassy::Error>) -> Result<Option<u64>, thinger_embassy::Error> {
    r.map(|n| PsonRef::decode(&buf[..n]).ok().and_then(|v| v.as_u64()))
}

async fn next_str(sub: &mut thinger_embassy::Subscription<'static, 4>) -> Option<String> {
    let mut buf = [0u8; 128];
    let n = with_timeout(Duration::from_secs(10), sub.next(&mut buf)).await.ok()?.ok()?;
    let value = PsonRef::decode(&buf[..n]).ok()?;
    // A string, or a state event {"device": D, "state": S} as "D S".
    let field = |k: &str| value.get(k).and_then(|v| v.as_str()).unwrap_or("?");
    Some(value.as_str().map(str::to_string).unwrap_or_else(|| format!("{} {}", field("device"), field("state"))))
}

#[embassy_executor::task]
async fn app_task(
    client: Client<'static, 4>,
    plain: Client<'static, 4>,
    wrong: Client<'static, 4>,
    tx: mpsc::Sender<Msg>,
) {
    let connected = with_timeout(Duration::from_secs(30), client.wait_connected()).await.is_ok();
    let plain_connected = with_timeout(Duration::from_secs(20), plain.wait_connected()).await.is_ok();
    let write_bucket = client.write_bucket("readings", &21.5f64).await;
    let set_property = client.set_property("cfg", &7u32).await;
    let mut value = [0u8; 16];
    let read = client.read_property("cfg", &mut value).await;
    let read_property = decode_u64(&value, read);
    let call_endpoint = client.call_endpoint("hello", Some(&"from embassy")).await;
    let reply = client.call_endpoint_reply("answer", None, &mut value).await;
    let endpoint_reply = decode_u64(&value, reply);
    let unknown_endpoint = client.call_endpoint("nope", None).await;
    let called = client.call_device("plain-device", "millis", None, &mut value).await;
    let call_device = decode_u64(&value, called);
    let lock = match client.lock_sync("door", "holder-a", 1, 0).await {
        Ok(()) => client.unlock_sync("door", "holder-a").await,
        Err(e) => Err(e),
    };

    // Property changes: the current value first, then a change made on the server.
    let mut mode = client.subscribe_property("mode", true).unwrap();
    let initial_mode = next_str(&mut mode).await;
    tx.send(Msg::ChangeMode).unwrap();
    let changed_mode = next_str(&mut mode).await;

    // MQTT through the server's broker: the plain device publishes until it arrives.
    let mut topic = client.mqtt_subscribe("home/+/temp", 0).unwrap();
    let _ = with_timeout(Duration::from_secs(10), topic.wait_open()).await;
    let mut mqtt = None;
    let mut buf = [0u8; 128];
    for _ in 0..50 {
        let _ = with_timeout(Duration::from_secs(2), plain.mqtt_publish("home/kitchen/temp", &21u32)).await;
        if let Ok(Ok(n)) = with_timeout(Duration::from_millis(200), topic.next(&mut buf)).await {
            mqtt = PsonRef::decode(&buf[..n]).ok().and_then(|data| {
                let (name, payload) = Def::topic_message(data)?;
                Some((name.to_string(), payload.and_then(|p| p.as_u64())))
            });
            break;
        }
    }

    // Device state events: the plain device dropped by the server is seen.
    let mut states = client.subscribe_event("device_state_change").unwrap();
    let _ = with_timeout(Duration::from_secs(10), states.wait_open()).await;
    tx.send(Msg::DropPlain).unwrap();
    let mut state_event = None;
    for _ in 0..5 {
        match next_str(&mut states).await {
            Some(e) if e.contains("plain-device") => {
                state_event = Some(e);
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    // The plain device sees why it was dropped, and reconnects.
    let mut waited = 0;
    while plain.last_disconnect().is_none() && waited < 100 {
        Timer::after(Duration::from_millis(100)).await;
        waited += 1;
    }
    let disconnect = plain.last_disconnect();
    let _ = with_timeout(Duration::from_secs(20), plain.wait_connected()).await;

    // The wrong server name must fail the handshake, as a certificate error.
    let mut waited = 0;
    while wrong.last_error().is_none() && waited < 200 {
        Timer::after(Duration::from_millis(100)).await;
        waited += 1;
    }
    let error = wrong.last_error();
    tx.send(Msg::Report(Box::new(Report {
        connected,
        write_bucket,
        set_property,
        read_property,
        call_endpoint,
        endpoint_reply,
        unknown_endpoint,
        call_device,
        lock,
        initial_mode,
        changed_mode,
        mqtt,
        state_event,
        disconnect,
        plain_connected,
        wrong_name_error: error.map(|e| e.to_string()),
        wrong_name_is_certificate_error: error.is_some_and(|e| e.is_certificate_error()),
        wrong_name_connected: wrong.connections() > 0,
    })))
    .unwrap();
    drop((mode, topic, states));

    // The offline queue across the server's restart.
    for n in 0..QUEUED_WRITES {
        if let Err(e) = plain.queue_bucket_write("counter", &n).await {
            tx.send(Msg::Flushed(Err(e))).unwrap();
            return;
        }
        tx.send(Msg::Queued(n + 1)).unwrap();
        Timer::after(Duration::from_millis(100)).await;
    }
    let flushed = match with_timeout(Duration::from_secs(30), plain.flush()).await {
        Ok(r) => r,
        Err(_) => Err(thinger_embassy::Error::Timeout),
    };
    tx.send(Msg::Flushed(flushed)).unwrap();
}
