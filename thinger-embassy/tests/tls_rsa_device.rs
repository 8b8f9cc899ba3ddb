//! The whole embassy client (embassy-net over a TAP device, embedded-tls, the adapter's
//! verifier with `tls-rsa`) against thinger-server presenting an RSA chain shaped like the
//! Thinger.io cloud's (generated at test time, see `rsa_pki`): connects with the right root,
//! is refused as a certificate error with a wrong root of the same name.
//!
//! Everything runs inside a network namespace the test creates (TAP device, server at
//! 192.168.70.1, device at 192.168.70.2), deleted at the end. It needs root, /dev/net/tun and
//! `ip`; without them it **fails**, naming what is missing (CI runs it as root).

mod rsa_pki;

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Duration, Timer, with_timeout};
use rand_core::{OsRng, RngCore};
use rsa_pki::{NAME, pki};
use thinger_core::dsl::{DigitalPin, Thing, VirtualPin, digital_pin};
use thinger_core::pson::Value;
use thinger_core::session::Config as SessionConfig;
use thinger_embassy::{Buffers, Client, Config, Runner, Tls};
use thinger_server::{Server, ServerConfig, TlsMode};

const CHILD_ENV: &str = "THINGER_EMBASSY_RSA_NETNS_CHILD";
const TEST_NAME: &str = "device_connects_to_a_server_with_an_rsa_chain";
const TAP: &str = "tap0";
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 70, 1);
const DEVICE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 70, 2);
const USER: &str = "rsa";
const DEVICE: &str = "rsa-device";

#[test]
fn device_connects_to_a_server_with_an_rsa_chain() {
    if std::env::var_os(CHILD_ENV).is_some() {
        inside_namespace();
        return;
    }
    let uid = Command::new("id").arg("-u").output().expect("cannot run `id`");
    assert_eq!(String::from_utf8_lossy(&uid.stdout).trim(), "0", "this test needs root (network namespace, TAP)");
    assert!(std::path::Path::new("/dev/net/tun").exists(), "this test needs /dev/net/tun");
    let netns = Netns::create(&format!("thinger-rsa-{}", std::process::id()));
    netns.exec(&["ip", "link", "set", "lo", "up"]);
    netns.exec(&["ip", "tuntap", "add", "name", TAP, "mode", "tap"]);
    netns.exec(&["ip", "addr", "add", &format!("{SERVER_IP}/24"), "dev", TAP]);
    netns.exec(&["ip", "link", "set", TAP, "up"]);
    let status = Command::new("ip")
        .args(["netns", "exec", &netns.0])
        .arg(std::env::current_exe().expect("test binary"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .status()
        .expect("ip netns exec");
    assert!(status.success(), "the run inside the namespace failed: {status}");
}

/// A network namespace, deleted (with its TAP device) when dropped.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Netns {
        let out = Command::new("ip").args(["netns", "add", name]).output().expect("this test needs `ip` (iproute2)");
        assert!(out.status.success(), "cannot create a network namespace: {}", String::from_utf8_lossy(&out.stderr));
        Netns(name.to_string())
    }

    fn exec(&self, args: &[&str]) {
        let out = Command::new("ip").args(["netns", "exec", &self.0]).args(args).output().expect("ip netns exec");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.0, "ip", "tuntap", "del", "name", TAP, "mode", "tap"])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[derive(Debug)]
struct Report {
    connected: bool,
    impostor_connected: bool,
    impostor_error: Option<String>,
    impostor_is_certificate_error: bool,
}

fn inside_namespace() {
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("thinger-rsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pki.chain_pem).expect("chain");
    std::fs::write(&key, &pki.leaf_key_pem).expect("key");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = ServerConfig::local().bind(SERVER_IP.into()).tls(TlsMode::Files { cert, key });
    let server = rt.block_on(Server::start(config)).expect("server with the RSA chain");
    let port = server.tls_addr().expect("TLS listener").port();
    let root: &'static [u8] = Box::leak(pki.root.clone().into_boxed_slice());
    let impostor: &'static [u8] = Box::leak(pki.impostor_root.clone().into_boxed_slice());

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
        executor.run(move |spawner| start_device(spawner, root, impostor, port, tx));
    });
    rt.block_on(async {
        assert!(server.wait_connected(USER, DEVICE, StdDuration::from_secs(60)).await, "no TLS connection");
        let reply = server.run_resource(USER, DEVICE, "led", Some(Value::Bool(true))).await.expect("led");
        assert!(matches!(reply.payload, None | Some(Value::Bool(true))), "led answered {reply:?}");
    });
    let report: Report = rx.recv_timeout(StdDuration::from_secs(60)).expect("no report from the device");
    println!("device report: {report:?}");
    assert!(report.connected);
    assert!(!report.impostor_connected, "a wrong root was accepted");
    assert!(report.impostor_is_certificate_error, "refused for another reason: {:?}", report.impostor_error);
    assert!(!server.is_connected(USER, "impostor"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task(pool_size = 2)]
async fn thinger_task(runner: Runner<'static, OsRng, 4>) -> ! {
    runner.run().await
}

fn client(stack: embassy_net::Stack<'static>, config: Config<'static>, spawner: Spawner) -> Client<'static, 4> {
    let led: &'static mut DigitalPin<VirtualPin> = Box::leak(Box::new(digital_pin(VirtualPin::new(false))));
    let mut thing: Thing<'static, 4> = Thing::new();
    thing["led"] <<= led;
    let buffers: &'static mut Buffers<'static, 4> = Box::leak(Box::new(Buffers::new()));
    let (client, runner) = thinger_embassy::new(stack, config, thing, buffers, OsRng);
    spawner.spawn(thinger_task(runner).unwrap());
    client
}

fn start_device(spawner: Spawner, root: &'static [u8], impostor: &'static [u8], port: u16, tx: mpsc::Sender<Report>) {
    let device = TunTapDevice::new(TAP).expect("TAP device");
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(DEVICE_IP, 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let resources: &'static mut StackResources<6> = Box::leak(Box::new(StackResources::new()));
    let (stack, net_runner) = embassy_net::new(device, net_config, resources, OsRng.next_u64());
    spawner.spawn(net_task(net_runner).unwrap());
    let host: &'static str = Box::leak(SERVER_IP.to_string().into_boxed_str());
    let backoff = (Duration::from_millis(200), Duration::from_secs(2));
    let good = Config::new(SessionConfig::new(USER, DEVICE, "secret"), host, Tls::new(NAME, root))
        .port(port)
        .backoff(backoff.0, backoff.1);
    let bad = Config::new(SessionConfig::new(USER, "impostor", "secret"), host, Tls::new(NAME, impostor))
        .port(port)
        .backoff(backoff.0, backoff.1);
    let good = client(stack, good, spawner);
    let bad = client(stack, bad, spawner);
    spawner.spawn(app_task(good, bad, tx).unwrap());
}

#[embassy_executor::task]
async fn app_task(good: Client<'static, 4>, bad: Client<'static, 4>, tx: mpsc::Sender<Report>) {
    let connected = with_timeout(Duration::from_secs(60), good.wait_connected()).await.is_ok();
    let mut waited = 0;
    while bad.last_error().is_none() && waited < 300 {
        Timer::after(Duration::from_millis(100)).await;
        waited += 1;
    }
    let error = bad.last_error();
    let _ = tx.send(Report {
        connected,
        impostor_connected: bad.is_connected(),
        impostor_error: error.map(|e| e.to_string()),
        impostor_is_certificate_error: error.is_some_and(|e| e.is_certificate_error()),
    });
}
