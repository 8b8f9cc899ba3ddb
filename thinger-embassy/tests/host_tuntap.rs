//! The adapter for real on a Linux host: embassy's std executor, embassy-net over a TAP
//! device (embassy-net-tuntap), against the local `thinger-server`, TLS verified against the
//! server's generated CA.
//!
//! Everything happens inside a network namespace the test creates (`ip netns add`): the
//! TAP device, its host-side address 192.168.69.1 where the server listens, and the
//! device's stack at 192.168.69.2. The test re-runs its own binary inside the namespace
//! (`ip netns exec`), and deletes the namespace at the end, also on failure. No packet
//! leaves it. Without root, /dev/net/tun or `ip`, the test is skipped with a message.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Duration, Timer, with_timeout};
use rand_core::{OsRng, RngCore};
use thinger_core::dsl::{DigitalPin, OutputValue, Thing, VirtualPin, digital_pin, output_value};
use thinger_core::pson::{PsonRef, Value};
use thinger_core::session::Config as SessionConfig;
use thinger_embassy::{Buffers, Client, Config, Runner, Tls};
use thinger_server::{EndpointConfig, Server, ServerConfig, TlsMode};

const CHILD_ENV: &str = "THINGER_EMBASSY_NETNS_CHILD";
const TEST_NAME: &str = "host_run_against_local_server";
const TAP: &str = "tap0";
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
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
    if let Err(reason) = can_run() {
        println!("SKIPPED host_run_against_local_server: {reason}");
        return;
    }
    let name = format!("thinger-embassy-{}", std::process::id());
    let netns = match Netns::create(&name) {
        Ok(ns) => ns,
        Err(reason) => {
            println!("SKIPPED host_run_against_local_server: cannot create a network namespace: {reason}");
            return;
        }
    };
    netns.exec(&["ip", "link", "set", "lo", "up"]).unwrap();
    netns.exec(&["ip", "tuntap", "add", "name", TAP, "mode", "tap"]).unwrap();
    netns.exec(&["ip", "addr", "add", &format!("{SERVER_IP}/24"), "dev", TAP]).unwrap();
    netns.exec(&["ip", "link", "set", TAP, "up"]).unwrap();

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

/// What the device's application task saw.
#[derive(Debug)]
struct Report {
    connected: bool,
    write_bucket: Result<(), thinger_embassy::Error>,
    set_property: Result<(), thinger_embassy::Error>,
    read_property: Result<Option<u64>, thinger_embassy::Error>,
    call_endpoint: Result<(), thinger_embassy::Error>,
    plain_connected: bool,
    wrong_name_error: Option<String>,
    wrong_name_is_certificate_error: bool,
    wrong_name_connected: bool,
}

/// The test proper, run inside the namespace.
fn inside_namespace() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = ServerConfig::local()
        .bind(SERVER_IP.into())
        .tls(TlsMode::Generate { names: vec![SERVER_NAME.to_string()] })
        .endpoint(EndpointConfig::new("hello"));
    let server = rt.block_on(Server::start(config)).unwrap();
    let tls_port = server.tls_addr().unwrap().port();
    let tcp_port = server.tcp_addr().port();
    let ca_pem = server.ca_cert_pem().unwrap();
    let ca_der = rustls_pemfile::certs(&mut ca_pem.as_bytes()).next().unwrap().unwrap().to_vec();
    let ca: &'static [u8] = Box::leak(ca_der.into_boxed_slice());
    println!("server: TLS on {SERVER_IP}:{tls_port}, TCP on {SERVER_IP}:{tcp_port}");

    let (tx, rx) = mpsc::channel::<Report>();
    std::thread::spawn(move || {
        let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
        executor.run(move |spawner| start_device(spawner, ca, tls_port, tcp_port, tx));
    });

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
    });

    let report = rx.recv_timeout(StdDuration::from_secs(60)).expect("no report from the device");
    println!("device report: {report:?}");
    assert!(report.connected);
    assert_eq!(report.write_bucket, Ok(()));
    assert_eq!(report.set_property, Ok(()));
    assert_eq!(report.read_property, Ok(Some(7)));
    assert_eq!(report.call_endpoint, Ok(()));
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
        assert_eq!(calls.len(), 1, "endpoint calls: {calls:?}");
        assert_eq!(calls[0].endpoint, "hello");

        // Keep-alives (2 s) keep the session up well past the server's device timeout.
        tokio::time::sleep(StdDuration::from_secs(5)).await;
        assert!(server.is_connected(USER, DEVICE), "the session did not survive 5 s of keep-alives");

        // The runner reconnects (backoff starts at 200 ms) when the server drops the device.
        assert!(server.disconnect_device(USER, DEVICE));
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        assert!(server.wait_connected(USER, DEVICE, StdDuration::from_secs(20)).await, "no reconnect");
        let reply = server.run_resource(USER, DEVICE, "led", None).await.unwrap();
        assert_eq!(reply.payload, Some(Value::Bool(true)), "state lost across the reconnect");
    });
    println!("host run: TLS connect, resources, cloud calls, keep-alive and reconnect all passed");
}

type DeviceRunner = Runner<'static, OsRng, 4>;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task(pool_size = 3)]
async fn thinger_task(runner: DeviceRunner) -> ! {
    runner.run().await
}

fn millis() -> u64 {
    embassy_time::Instant::now().as_millis()
}

/// A client with its own resources and buffers, all leaked for `'static`.
fn client(stack: embassy_net::Stack<'static>, config: Config<'static>, spawner: Spawner) -> Client<'static, 4> {
    let led: &'static mut DigitalPin<VirtualPin> = Box::leak(Box::new(digital_pin(VirtualPin::new(false))));
    let uptime: &'static mut OutputValue<fn() -> u64> = Box::leak(Box::new(output_value(millis as fn() -> u64)));
    let mut thing: Thing<'static, 4> = Thing::new();
    thing["led"] <<= led;
    thing["millis"] >>= uptime;
    let buffers: &'static mut Buffers<'static, 4> = Box::leak(Box::new(Buffers::new()));
    let (client, runner) = thinger_embassy::new(stack, config, thing, buffers, OsRng);
    spawner.spawn(thinger_task(runner).unwrap());
    client
}

fn start_device(spawner: Spawner, ca: &'static [u8], tls_port: u16, tcp_port: u16, tx: mpsc::Sender<Report>) {
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
    let backoff = (Duration::from_millis(200), Duration::from_secs(2));
    let session = SessionConfig::new(USER, DEVICE, "secret").keep_alive(thinger_core::time::Duration::from_secs(2));
    let tls = Config::new(session, host, Tls::new(SERVER_NAME, ca)).port(tls_port).backoff(backoff.0, backoff.1);
    let main = client(stack, tls, spawner);

    let session = SessionConfig::new(USER, "plain-device", "secret");
    let plain = Config::plain(session, host).port(tcp_port).backoff(backoff.0, backoff.1);
    let plain = client(stack, plain, spawner);

    let session = SessionConfig::new(USER, "wrong-name", "secret");
    let wrong = Config::new(session, host, Tls::new("not-in-the-certificate.test", ca))
        .port(tls_port)
        .backoff(backoff.0, backoff.1);
    let wrong = client(stack, wrong, spawner);

    spawner.spawn(app_task(main, plain, wrong, tx).unwrap());
}

#[embassy_executor::task]
async fn app_task(
    client: Client<'static, 4>,
    plain: Client<'static, 4>,
    wrong: Client<'static, 4>,
    tx: mpsc::Sender<Report>,
) {
    let connected = with_timeout(Duration::from_secs(30), client.wait_connected()).await.is_ok();
    let write_bucket = client.write_bucket("readings", &21.5f64).await;
    let set_property = client.set_property("cfg", &7u32).await;
    let mut value = [0u8; 16];
    let read_property = client
        .read_property("cfg", &mut value)
        .await
        .map(|n| PsonRef::decode(&value[..n]).ok().and_then(|v| v.as_u64()));
    let call_endpoint = client.call_endpoint("hello", Some(&"from embassy")).await;
    let plain_connected = with_timeout(Duration::from_secs(20), plain.wait_connected()).await.is_ok();

    // The wrong server name must fail the handshake, as a certificate error.
    let mut waited = 0;
    while wrong.last_error().is_none() && waited < 200 {
        Timer::after(Duration::from_millis(100)).await;
        waited += 1;
    }
    let error = wrong.last_error();
    tx.send(Report {
        connected,
        write_bucket,
        set_property,
        read_property,
        call_endpoint,
        plain_connected,
        wrong_name_error: error.map(|e| e.to_string()),
        wrong_name_is_certificate_error: error.is_some_and(|e| e.is_certificate_error()),
        wrong_name_connected: wrong.connections() > 0,
    })
    .unwrap();
}
