//! The whole embassy client over an offloaded connection (`thinger_embassy::offload`), over
//! real loopback, against the local thinger-server with TLS. The "module" is a rustls
//! client (tokio-rustls) that does TCP, TLS and the certificate check, as an AT-command
//! Wi-Fi or cellular module would: the client sees only its byte stream.
//!
//! The device runs on embassy's std executor in its own thread; the module's tokio sockets
//! are driven by the server's multi-thread tokio runtime.

use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::time::Duration as StdDuration;

use embassy_executor::{Executor, Spawner};
use embassy_time::{Duration, Timer, with_timeout};
use embedded_io_adapters::tokio_1::FromTokio;
use rand_core::OsRng;
use rustls::pki_types::{CertificateDer, ServerName};
use thinger_core::dsl::{DigitalPin, OutputValue, Thing, VirtualPin, digital_pin, output_value};
use thinger_core::pson::Value;
use thinger_core::session::Config as SessionConfig;
use thinger_embassy::offload::{self, OffloadRunner, Transport};
use thinger_embassy::{Buffers, Client, Config};
use thinger_server::{Server, ServerConfig, TlsMode};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const SERVER_NAME: &str = "thinger.test";
const USER: &str = "offload";
const DEVICE: &str = "at-module";

/// A TLS "module": connects with rustls, the certificate checked against `ca`.
struct RustlsModule {
    connector: tokio_rustls::TlsConnector,
}

impl RustlsModule {
    fn new(ca: &[u8]) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca.to_vec())).expect("CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        RustlsModule { connector: tokio_rustls::TlsConnector::from(Arc::new(config)) }
    }
}

type Stream = TlsStream<TcpStream>;

impl Transport for RustlsModule {
    type Error = std::io::Error;
    type Reader<'a> = FromTokio<ReadHalf<Stream>>;
    type Writer<'a> = FromTokio<WriteHalf<Stream>>;

    async fn connect(&mut self, host: &str, port: u16) -> Result<(Self::Reader<'_>, Self::Writer<'_>), Self::Error> {
        let tcp = TcpStream::connect((host, port)).await?;
        let name = ServerName::try_from(SERVER_NAME).expect("name").to_owned();
        let tls = self.connector.connect(name, tcp).await?;
        let (reader, writer) = tokio::io::split(tls);
        Ok((FromTokio::new(reader), FromTokio::new(writer)))
    }

    async fn close(&mut self) {}
}

type DeviceRunner = OffloadRunner<'static, RustlsModule, OsRng, 4>;

#[embassy_executor::task(pool_size = 2)]
async fn runner_task(runner: DeviceRunner) -> ! {
    runner.run().await
}

fn millis() -> u64 {
    embassy_time::Instant::now().as_millis()
}

fn client(spawner: Spawner, module: RustlsModule, device: &'static str, port: u16) -> Client<'static, 4> {
    let led: &'static mut DigitalPin<VirtualPin> = Box::leak(Box::new(digital_pin(VirtualPin::new(false))));
    let uptime: &'static mut OutputValue<fn() -> u64> = Box::leak(Box::new(output_value(millis as fn() -> u64)));
    let mut thing: Thing<'static, 4> = Thing::new();
    thing["led"] <<= led;
    thing["millis"] >>= uptime;
    let buffers: &'static mut Buffers<'static, 4, 2048, 0, 0> = Box::leak(Box::new(Buffers::new()));
    let session = SessionConfig::new(USER, device, "secret");
    let config =
        Config::plain(session, "127.0.0.1").port(port).backoff(Duration::from_millis(200), Duration::from_secs(1));
    let (client, runner) = offload::new(module, config, thing, buffers, OsRng);
    spawner.spawn(runner_task(runner).unwrap());
    client
}

#[derive(Debug)]
struct Report {
    connected: bool,
    write_bucket: Result<(), thinger_embassy::Error>,
    wrong_ca_connected: bool,
    wrong_ca_error: Option<String>,
}

#[embassy_executor::task]
async fn app_task(good: Client<'static, 4>, wrong: Client<'static, 4>, tx: mpsc::Sender<Report>) {
    let connected = with_timeout(Duration::from_secs(20), good.wait_connected()).await.is_ok();
    let write_bucket = good.write_bucket("readings", &3u32).await;
    let mut waited = 0;
    while wrong.last_error().is_none() && waited < 100 {
        Timer::after(Duration::from_millis(100)).await;
        waited += 1;
    }
    let wrong_ca_connected = wrong.is_connected();
    let wrong_ca_error = wrong.last_error().map(|e| e.to_string());
    let _ = tx.send(Report { connected, write_bucket, wrong_ca_connected, wrong_ca_error });
}

#[test]
fn the_client_runs_over_an_offloaded_tls_connection() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = ServerConfig::local()
        .bind([127, 0, 0, 1].into())
        .tls(TlsMode::Generate { names: vec![SERVER_NAME.to_string()] });
    let server = rt.block_on(Server::start(config)).expect("server");
    let tls: SocketAddr = server.tls_addr().expect("TLS listener");
    let ca_pem = server.ca_cert_pem().expect("generated CA");
    let ca = rustls_pemfile::certs(&mut ca_pem.as_bytes()).next().expect("a CA").expect("PEM").to_vec();
    let other_ca = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()]).expect("other CA");

    let (tx, rx) = mpsc::channel();
    let handle = rt.handle().clone();
    let port = tls.port();
    let wrong_ca = other_ca.cert.der().to_vec();
    std::thread::spawn(move || {
        // The module's tokio sockets register with the server's runtime.
        let _guard = handle.enter();
        let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
        executor.run(move |spawner| {
            let good = client(spawner, RustlsModule::new(&ca), DEVICE, port);
            let wrong = client(spawner, RustlsModule::new(&wrong_ca), "wrong-ca", port);
            spawner.spawn(app_task(good, wrong, tx).unwrap());
        });
    });

    rt.block_on(async {
        assert!(server.wait_connected(USER, DEVICE, StdDuration::from_secs(20)).await, "no offloaded connection");
        let reply = server.run_resource(USER, DEVICE, "led", Some(Value::Bool(true))).await.expect("led");
        assert!(matches!(reply.payload, None | Some(Value::Bool(true))), "led answered {reply:?}");
        let reply = server.run_resource(USER, DEVICE, "led", None).await.expect("led state");
        assert_eq!(reply.payload, Some(Value::Bool(true)));
    });
    let report = rx.recv_timeout(StdDuration::from_secs(40)).expect("no report from the device");
    println!("device report: {report:?}");
    assert!(report.connected);
    assert_eq!(report.write_bucket, Ok(()));
    // The module refused the server: the client sees a failed connection, never a session.
    assert!(!report.wrong_ca_connected, "a module with the wrong CA connected");
    assert_eq!(report.wrong_ca_error.as_deref(), Some("the transport could not open the connection"));
    assert!(!server.is_connected(USER, "wrong-ca"));
    let records = rt.block_on(server.bucket_data(USER, "readings"));
    assert_eq!(records.len(), 1, "bucket records: {records:?}");
    drop(server);
}
