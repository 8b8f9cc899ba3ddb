//! The client handle, its builder, and the streams it hands out.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thinger_core::resource::Resource;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::backoff::Backoff;
use crate::error::{BuildError, Error};
use crate::event::{ClientEvent, Status};
use crate::pson_util::{from_pson, to_pson};
use crate::queue::{OfflineQueue, Op, QueueConfig};
use crate::resources::{AsyncHandler, Handler, MAX_RESOURCES, Resources};
use crate::runner::{CallSpec, Command, Runner, Settings, SubItem, SubKind};
use crate::tls::TlsConfig;
use crate::transport::{Target, Transport};

/// Connection events buffered per [`Client::events`] receiver.
const EVENT_BUFFER: usize = 32;

/// The public Thinger.io server.
///
/// ```
/// assert_eq!(thinger_std::DEFAULT_HOST, "iot.thinger.io");
/// ```
pub const DEFAULT_HOST: &str = "iot.thinger.io";

/// Builds a [`Client`]: where to connect, how, and what the device offers.
///
/// ```
/// use std::time::Duration;
/// use thinger_std::{Client, Transport};
/// use thinger_std::dsl::output;
///
/// let builder = Client::builder("user", "device", "credential")
///     .host("127.0.0.1")
///     .port(25204)
///     .transport(Transport::Tcp)
///     .keep_alive(Duration::from_secs(30))
///     .resource("uptime", output(|| 42u32));
/// assert_eq!(builder.address(), "127.0.0.1:25204");
/// ```
#[derive(Debug)]
pub struct ClientBuilder {
    user: String,
    device: String,
    credential: String,
    host: String,
    port: Option<u16>,
    transport: Transport,
    tls: TlsConfig,
    keep_alive: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
    backoff: Backoff,
    queue: QueueConfig,
    queue_window: usize,
    buffer_size: usize,
    firmware: Option<String>,
    resources: Resources,
}

impl ClientBuilder {
    /// A builder for device `device` of account `user`.
    ///
    /// ```
    /// let builder = thinger_std::ClientBuilder::new("user", "device", "credential");
    /// assert_eq!(builder.address(), "iot.thinger.io:25206");
    /// ```
    pub fn new(user: impl Into<String>, device: impl Into<String>, credential: impl Into<String>) -> Self {
        ClientBuilder {
            user: user.into(),
            device: device.into(),
            credential: credential.into(),
            host: DEFAULT_HOST.to_owned(),
            port: None,
            transport: Transport::Tls,
            tls: TlsConfig::new(),
            keep_alive: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            queue: QueueConfig::default(),
            queue_window: 16,
            buffer_size: 32 * 1024,
            firmware: None,
            resources: Resources::new(),
        }
    }

    /// A builder from `THINGER_USER`, `THINGER_DEVICE` and `THINGER_CREDENTIAL` (all three
    /// needed), with `THINGER_HOST`, `THINGER_PORT` and `THINGER_TRANSPORT` (`tls`, `tcp`,
    /// `wss`, `ws`) when set. `None` when a credential variable is missing.
    ///
    /// ```
    /// // In a test environment without the variables:
    /// if std::env::var("THINGER_USER").is_err() {
    ///     assert!(thinger_std::ClientBuilder::from_env().is_none());
    /// }
    /// ```
    pub fn from_env() -> Option<ClientBuilder> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut builder = ClientBuilder::new(var("THINGER_USER")?, var("THINGER_DEVICE")?, var("THINGER_CREDENTIAL")?);
        if let Some(host) = var("THINGER_HOST") {
            builder = builder.host(host);
        }
        if let Some(port) = var("THINGER_PORT").and_then(|p| p.parse().ok()) {
            builder = builder.port(port);
        }
        match var("THINGER_TRANSPORT").as_deref() {
            Some("tcp") => builder = builder.transport(Transport::Tcp),
            Some("wss") => builder = builder.transport(Transport::websocket()),
            Some("ws") => builder = builder.transport(Transport::websocket_plain()),
            _ => {}
        }
        Some(builder)
    }

    /// The server host name or address (default `iot.thinger.io`).
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").host("thinger.example.com");
    /// assert_eq!(b.address(), "thinger.example.com:25206");
    /// ```
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }
    /// The server port (default: the transport's, 25206 for TLS).
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").port(4443);
    /// assert_eq!(b.address(), "iot.thinger.io:4443");
    /// ```
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// The transport (default TLS).
    ///
    /// ```
    /// use thinger_std::{Client, Transport};
    /// let b = Client::builder("u", "d", "c").transport(Transport::websocket());
    /// assert_eq!(b.address(), "iot.thinger.io:443");
    /// ```
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }
    /// Certificate checking (default: public roots and host name).
    ///
    /// ```
    /// use thinger_std::tls::TlsConfig;
    /// let pem = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem();
    /// let b = thinger_std::Client::builder("u", "d", "c").tls(TlsConfig::new().with_ca_pem(&pem).unwrap());
    /// assert!(b.build().is_ok());
    /// ```
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }
    /// The keep-alive interval (default 60 s, 1 s to 30 min): a KEEP_ALIVE goes out after
    /// this much quiet, and a peer silent for 1.15 × this long is taken as dead.
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").keep_alive(std::time::Duration::from_secs(20));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }
    /// How long a connection attempt (TCP, TLS and WebSocket handshakes) may take
    /// (default 15 s).
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").connect_timeout(std::time::Duration::from_secs(5));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// The default timeout of every call, and how long the server may take to answer a
    /// request (default 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (client, _runner) = thinger_std::Client::builder("u", "d", "c").request_timeout(Duration::from_secs(5)).build().unwrap();
    /// assert_eq!(client.timeout(), Duration::from_secs(5));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Reconnect delays.
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = thinger_std::Backoff { initial: Duration::from_millis(500), ..Default::default() };
    /// let b = thinger_std::Client::builder("u", "d", "c").backoff(backoff);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
    /// The offline queue for bucket writes and endpoint calls.
    ///
    /// ```
    /// use thinger_std::{Overflow, QueueConfig};
    /// let b = thinger_std::Client::builder("u", "d", "c").queue(QueueConfig::new().capacity(50).overflow(Overflow::DropOldest));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn queue(mut self, queue: QueueConfig) -> Self {
        self.queue = queue;
        self
    }
    /// Queued writes sent ahead of their acknowledgements (1 to 32, default 16).
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").queue_window(4);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn queue_window(mut self, window: usize) -> Self {
        self.queue_window = window.clamp(1, 32);
        self
    }
    /// The session buffer in bytes (default 32 KiB): 3/8 receive (the largest frame
    /// accepted), 3/8 transmit, 1/4 for answers waiting to be read. Gateways with many
    /// devices may use less (at least 1 KiB).
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").buffer_size(4096);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        self.buffer_size = bytes.max(1024);
        self
    }
    /// The firmware version announced to the server.
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").firmware(env!("CARGO_PKG_VERSION"));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn firmware(mut self, version: impl Into<String>) -> Self {
        self.firmware = Some(version.into());
        self
    }
    /// The resource table (replaces resources added before).
    ///
    /// ```
    /// use thinger_std::dsl::output;
    /// use thinger_std::resources::Resources;
    /// let mut thing = Resources::new();
    /// thing["uptime"] >>= output(|| 42u64);
    /// let b = thinger_std::Client::builder("u", "d", "c").resources(thing);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = resources;
        self
    }
    /// Adds one resource with a sync handler (same as `thing[path] <<= handler`).
    ///
    /// ```
    /// use thinger_std::dsl::run;
    /// let b = thinger_std::Client::builder("u", "d", "c").resource("reboot", run(|| println!("rebooting")));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn resource<R: Resource + Send + 'static>(mut self, path: &str, handler: R) -> Self {
        self.resources.entry(path).set(handler);
        self
    }
    /// Adds one resource with an async handler.
    ///
    /// ```
    /// use thinger_std::resources::async_output;
    /// let b = thinger_std::Client::builder("u", "d", "c").async_resource("weather", async_output(|| async { Ok(21.5) }));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn async_resource(mut self, path: &str, handler: AsyncHandler) -> Self {
        self.resources.entry(path).set_async(handler);
        self
    }

    /// `host:port` the client will connect to.
    ///
    /// ```
    /// assert_eq!(thinger_std::Client::builder("u", "d", "c").host("::1").port(1).address(), "[::1]:1");
    /// ```
    pub fn address(&self) -> String {
        let port = self.port.unwrap_or_else(|| self.transport.default_port());
        if self.host.contains(':') { format!("[{}]:{port}", self.host) } else { format!("{}:{port}", self.host) }
    }

    /// The client handle and the [`Runner`] that drives its connection. Await
    /// [`Runner::run`] (on any tokio runtime, in a `LocalSet`, or from `main`); the handle
    /// can be cloned and moved to other tasks and threads.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// use thinger_std::{Client, Transport};
    /// let (client, runner) = Client::builder("user1", "dev1", "secret")
    ///     .host("127.0.0.1")
    ///     .port(server.tcp_addr().port())
    ///     .transport(Transport::Tcp)
    ///     .build()
    ///     .unwrap();
    /// let local = tokio::task::LocalSet::new();
    /// local.spawn_local(runner.run());
    /// local
    ///     .run_until(async {
    ///         client.connected().await.unwrap();
    ///         client.shutdown().await;
    ///     })
    ///     .await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub fn build(self) -> Result<(Client, Runner), BuildError> {
        if self.resources.len() > MAX_RESOURCES {
            return Err(BuildError::Resources(format!("{} resources, at most {MAX_RESOURCES}", self.resources.len())));
        }
        let mut handlers = Vec::with_capacity(self.resources.len());
        for entry in self.resources.entries {
            match entry.handler {
                Some(h) => handlers.push((entry.path, h)),
                None => return Err(BuildError::Resources(format!("resource {:?} has no handler", entry.path))),
            }
        }
        if self.user.is_empty() || self.device.is_empty() {
            return Err(BuildError::Config("user and device must not be empty".into()));
        }
        let port = self.port.unwrap_or_else(|| self.transport.default_port());
        let target = Target::new(&self.host, port, self.transport, &self.tls, self.connect_timeout)?;
        let queue = OfflineQueue::open(&self.queue).map_err(BuildError::Queue)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (events_tx, _) = broadcast::channel(EVENT_BUFFER);
        let (status_tx, status_rx) = watch::channel(Status::Connecting);
        let settings = Settings {
            user: self.user,
            device: self.device,
            credential: self.credential,
            target,
            keep_alive: self.keep_alive,
            request_timeout: self.request_timeout,
            backoff: self.backoff,
            buffer_size: self.buffer_size,
            firmware: self.firmware,
            queue_window: self.queue_window,
        };
        let handlers: Vec<(String, Handler)> = handlers;
        let runner = Runner::new(settings, handlers, cmd_rx, events_tx.clone(), status_tx, queue);
        let client = Client {
            shared: Arc::new(Shared { cmd: cmd_tx, status: status_rx, events: events_tx }),
            timeout: self.request_timeout,
        };
        Ok((client, runner))
    }

    /// Builds the client and runs it on a thread of its own (a single-threaded tokio
    /// runtime); returns the handle. It stops on [`Client::shutdown`] or when every handle
    /// is dropped.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// use thinger_std::tls::TlsConfig;
    /// let ca = server.ca_cert_pem().unwrap();
    /// let client = thinger_std::Client::builder("user1", "dev1", "secret")
    ///     .host("localhost")
    ///     .port(server.tls_addr().unwrap().port())
    ///     .tls(TlsConfig::new().with_ca_pem(&ca).unwrap())
    ///     .spawn()
    ///     .unwrap();
    /// client.connected().await.unwrap();
    /// assert!(client.is_connected());
    /// client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub fn spawn(self) -> Result<Client, BuildError> {
        let (client, runner) = self.build()?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(BuildError::Runtime)?;
        std::thread::Builder::new()
            .name("thinger-client".into())
            .spawn(move || runtime.block_on(runner.run()))
            .map_err(BuildError::Runtime)?;
        Ok(client)
    }
}

#[derive(Debug)]
struct Shared {
    cmd: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    events: broadcast::Sender<ClientEvent>,
}

/// A handle to a running client: cheap to clone, usable from any task or thread.
///
/// Every call has a timeout (the builder's request timeout, or [`Client::with_timeout`]);
/// calls made while disconnected wait for the connection within that time, except queued
/// writes, which wait in the offline queue however long it takes.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use thinger_server::{Server, ServerConfig};
/// use thinger_std::dsl::output;
/// use thinger_std::{Client, Transport};
///
/// let server = Server::start(ServerConfig::local()).await.unwrap();
/// let client = Client::builder("user1", "thermostat", "secret")
///     .host("127.0.0.1")
///     .port(server.tcp_addr().port())
///     .transport(Transport::Tcp)
///     .resource("temperature", output(|| 21.5f32))
///     .spawn()
///     .unwrap();
/// client.connected().await.unwrap();
/// // The server reaches the resource through the client...
/// let reply = server.run_resource("user1", "thermostat", "temperature", None).await.unwrap();
/// assert_eq!(reply.payload.unwrap().as_f64(), Some(21.5));
/// // ...and the client makes cloud calls.
/// client.write_bucket("log", &"hello").await.unwrap();
/// client.shutdown().await;
/// server.shutdown().await;
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
    timeout: Duration,
}

/// Counters of a running client.
///
/// ```
/// let stats = thinger_std::Stats::default();
/// assert_eq!((stats.queued, stats.connections), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Entries in the offline queue.
    pub queued: usize,
    /// Queued entries sent and not yet acknowledged.
    pub in_flight: usize,
    /// Transport connections opened so far.
    pub connections: u64,
    /// Successful authentications so far.
    pub authentications: u64,
}

/// An MQTT message received on a topic subscription.
///
/// ```
/// let m: thinger_std::MqttMessage<f64> = serde_json::from_str(r#"{"topic": "t/1", "payload": 2.5}"#).unwrap();
/// assert_eq!((m.topic.as_str(), m.payload), ("t/1", 2.5));
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MqttMessage<T> {
    /// The topic it was published on.
    pub topic: String,
    /// Its payload.
    pub payload: T,
}

impl Client {
    /// Starts a [`ClientBuilder`].
    ///
    /// ```
    /// let builder = thinger_std::Client::builder("user", "device", "credential");
    /// # let _ = builder;
    /// ```
    pub fn builder(user: impl Into<String>, device: impl Into<String>, credential: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(user, device, credential)
    }

    /// A handle whose calls use `timeout` instead.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// use std::time::Duration;
    /// client.connected().await.unwrap();
    /// let impatient = client.with_timeout(Duration::from_millis(300));
    /// assert_eq!(impatient.timeout(), Duration::from_millis(300));
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client { shared: self.shared.clone(), timeout }
    }

    /// The call timeout of this handle.
    ///
    /// ```
    /// let (client, _runner) = thinger_std::Client::builder("u", "d", "c").build().unwrap();
    /// assert_eq!(client.timeout(), std::time::Duration::from_secs(30));
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The current connection status.
    ///
    /// ```
    /// let (client, _runner) = thinger_std::Client::builder("u", "d", "c").build().unwrap();
    /// assert_eq!(client.status(), thinger_std::Status::Connecting);
    /// ```
    pub fn status(&self) -> Status {
        *self.shared.status.borrow()
    }

    /// Whether the client is authenticated right now.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.connected().await.unwrap();
    /// assert!(client.is_connected());
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub fn is_connected(&self) -> bool {
        self.status() == Status::Connected
    }

    /// Waits until the client is authenticated (within the call timeout).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.connected().await.unwrap();
    /// assert_eq!(client.status(), thinger_std::Status::Connected);
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn connected(&self) -> Result<(), Error> {
        let mut status = self.shared.status.clone();
        let wait = async move {
            loop {
                match *status.borrow_and_update() {
                    Status::Connected => return Ok(()),
                    Status::Stopped => return Err(Error::Stopped),
                    _ => {}
                }
                if status.changed().await.is_err() {
                    return Err(Error::Stopped);
                }
            }
        };
        tokio::time::timeout(self.timeout, wait).await.map_err(|_| Error::Timeout)?
    }

    /// Connection events from now on (connecting, connected, auth failed, disconnected
    /// with the reason, backoff, ...). A receiver that falls more than 32 events behind
    /// skips the oldest.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// use thinger_std::ClientEvent;
    /// let mut events = client.events();
    /// client.shutdown().await;
    /// assert_eq!(events.wait_for(|e| *e == ClientEvent::Stopped).await, Some(ClientEvent::Stopped));
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub fn events(&self) -> Events {
        let rx = self.shared.events.subscribe();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::debug!("event receiver skipped {n} events"),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Events(Box::pin(stream))
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        let cmd = make(tx);
        let exchange = async {
            self.shared.cmd.send(cmd).await.map_err(|_| Error::Stopped)?;
            rx.await.map_err(|_| Error::Stopped)
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| Error::Timeout)?
    }

    async fn call(&self, spec: CallSpec) -> Result<Option<Vec<u8>>, Error> {
        self.request(|reply| Command::Call { spec, reply }).await?
    }

    /// Reads a device property and deserializes it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1")
    /// #     .port(server.tcp_addr().port()).transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct Calibration { offset: f64 }
    /// client.set_property("calibration", &Calibration { offset: -0.5 }).await.unwrap();
    /// let cal: Calibration = client.get_property("calibration").await.unwrap();
    /// assert_eq!(cal, Calibration { offset: -0.5 });
    /// // A property that does not exist is the server's 404.
    /// assert_eq!(client.get_property::<f64>("nope").await.unwrap_err().code(), Some(404));
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn get_property<T: DeserializeOwned>(&self, property: &str) -> Result<T, Error> {
        let reply = self.call(CallSpec::ReadProperty { property: property.to_owned() }).await?;
        from_pson(reply.as_deref()).map_err(Error::Decode)
    }

    /// Sets a device property.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.set_property("config", &serde_json::json!({"rate": 5})).await.unwrap();
    /// let rate: serde_json::Value = client.get_property("config").await.unwrap();
    /// assert_eq!(rate["rate"], 5);
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn set_property<T: Serialize + ?Sized>(&self, property: &str, value: &T) -> Result<(), Error> {
        let value = to_pson(value).map_err(Error::Encode)?;
        self.call(CallSpec::SetProperty { property: property.to_owned(), value }).await.map(drop)
    }

    /// Runs `resource` on another device of the account and deserializes its output.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// use thinger_std::dsl::input_output;
    /// let other = thinger_std::Client::builder("user1", "other", "secret").host("127.0.0.1").port(addr.port())
    ///     .transport(thinger_std::Transport::Tcp).resource("double", input_output(|x: i32| x * 2)).spawn().unwrap();
    /// other.connected().await.unwrap();
    /// let doubled: i32 = client.call_device("other", "double", Some(&21)).await.unwrap();
    /// assert_eq!(doubled, 42);
    /// other.shutdown().await;
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn call_device<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        device: &str,
        resource: &str,
        input: Option<&I>,
    ) -> Result<O, Error> {
        let input = input.map(to_pson).transpose().map_err(Error::Encode)?;
        let reply =
            self.call(CallSpec::CallDevice { device: device.to_owned(), resource: resource.to_owned(), input }).await?;
        from_pson(reply.as_deref()).map_err(Error::Decode)
    }

    /// Takes sync lock `lock` on `sync` (at most `slots` holders; the server waits up to
    /// `timeout_s` seconds for a slot, 0 = as long as needed). The call's own timeout still
    /// applies.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.lock_sync("printer", "me", 1, 0).await.unwrap();
    /// // ... use the shared resource ...
    /// client.unlock_sync("printer", "me").await.unwrap();
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn lock_sync(&self, sync: &str, lock: &str, slots: u32, timeout_s: u32) -> Result<(), Error> {
        self.call(CallSpec::LockSync { sync: sync.to_owned(), lock: lock.to_owned(), slots, timeout_s }).await.map(drop)
    }

    /// Releases a sync lock.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.lock_sync("door", "me", 1, 0).await.unwrap();
    /// client.unlock_sync("door", "me").await.unwrap();
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn unlock_sync(&self, sync: &str, lock: &str) -> Result<(), Error> {
        self.call(CallSpec::UnlockSync { sync: sync.to_owned(), lock: lock.to_owned() }).await.map(drop)
    }

    async fn enqueue(&self, op: Op, wait_ack: bool) -> Result<(), Error> {
        let (queued_tx, queued_rx) = oneshot::channel();
        let (ack_tx, ack_rx) = oneshot::channel();
        let ack = wait_ack.then_some(ack_tx);
        let exchange = async {
            self.shared.cmd.send(Command::Enqueue { op, queued: queued_tx, ack }).await.map_err(|_| Error::Stopped)?;
            queued_rx.await.map_err(|_| Error::Stopped)??;
            if wait_ack { ack_rx.await.map_err(|_| Error::Stopped)? } else { Ok(()) }
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| Error::Timeout)?
    }

    /// Appends a record to a data bucket and waits for the server's acknowledgement. The
    /// write goes through the offline queue: while disconnected it waits there (a
    /// [`Error::Timeout`] then means "still queued", not "lost").
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.write_bucket("readings", &serde_json::json!({"t": 21.5})).await.unwrap();
    /// assert_eq!(server.bucket_data("user1", "readings").await.len(), 1);
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn write_bucket<T: Serialize + ?Sized>(&self, bucket: &str, record: &T) -> Result<(), Error> {
        let record = to_pson(record).map_err(Error::Encode)?;
        self.enqueue(Op::WriteBucket { bucket: bucket.to_owned(), record }, true).await
    }

    /// Queues a bucket write and returns once it is queued (and persisted, when the queue
    /// has a file). [`Client::flush`] waits for the queue to empty.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// for n in 0..10u32 {
    ///     client.queue_bucket_write("counts", &n).await.unwrap();
    /// }
    /// client.flush().await.unwrap();
    /// assert_eq!(server.bucket_data("user1", "counts").await.len(), 10);
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn queue_bucket_write<T: Serialize + ?Sized>(&self, bucket: &str, record: &T) -> Result<(), Error> {
        let record = to_pson(record).map_err(Error::Encode)?;
        self.enqueue(Op::WriteBucket { bucket: bucket.to_owned(), record }, false).await
    }

    /// Calls an endpoint (with `data`, if any) and waits for the acknowledgement; queued
    /// like [`Client::write_bucket`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.call_endpoint("alarm", Some(&serde_json::json!({"level": 2}))).await.unwrap();
    /// assert_eq!(server.endpoint_calls("user1").await[0].endpoint, "alarm");
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn call_endpoint<T: Serialize + ?Sized>(&self, endpoint: &str, data: Option<&T>) -> Result<(), Error> {
        let data = data.map(to_pson).transpose().map_err(Error::Encode)?;
        self.enqueue(Op::CallEndpoint { endpoint: endpoint.to_owned(), data }, true).await
    }

    /// Queues an endpoint call and returns once it is queued.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.queue_endpoint_call::<()>("ping", None).await.unwrap();
    /// client.flush().await.unwrap();
    /// assert_eq!(server.endpoint_calls("user1").await.len(), 1);
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn queue_endpoint_call<T: Serialize + ?Sized>(
        &self,
        endpoint: &str,
        data: Option<&T>,
    ) -> Result<(), Error> {
        let data = data.map(to_pson).transpose().map_err(Error::Encode)?;
        self.enqueue(Op::CallEndpoint { endpoint: endpoint.to_owned(), data }, false).await
    }

    /// Waits until the offline queue is empty (every entry acknowledged).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.queue_bucket_write("b", &1u8).await.unwrap();
    /// client.flush().await.unwrap();
    /// assert_eq!(client.stats().await.unwrap().queued, 0);
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn flush(&self) -> Result<(), Error> {
        self.request(|reply| Command::Flush { reply }).await?
    }

    /// Counters: queue length, connections, ...
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.connected().await.unwrap();
    /// let stats = client.stats().await.unwrap();
    /// assert_eq!((stats.connections, stats.authentications, stats.queued), (1, 1, 0));
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.request(|reply| Command::Stats { reply }).await
    }

    async fn subscribe<T>(&self, kind: SubKind) -> Result<Subscription<T>, Error> {
        let (data_tx, data_rx) = mpsc::channel(256);
        let key = self.request(|reply| Command::Subscribe { kind, data: data_tx, reply }).await??;
        Ok(Subscription { rx: data_rx, key, cmd: self.shared.cmd.clone(), item: PhantomData })
    }

    /// Server events by name (e.g. `device_state_change`), as an async stream. The
    /// subscription is renewed after every reconnect; dropping the stream ends it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// let mut states = client.subscribe_event::<serde_json::Value>("device_state_change").await.unwrap();
    /// # let _ = &mut states;
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn subscribe_event<T: DeserializeOwned>(&self, name: &str) -> Result<Subscription<T>, Error> {
        self.subscribe(SubKind::Event { name: name.to_owned() }).await
    }

    /// Changes of a device property; with `current` the first item is its present value.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// server.set_property("user1", "doc", "mode", "eco".into()).await.unwrap();
    /// let mut mode = client.subscribe_property::<String>("mode", true).await.unwrap();
    /// assert_eq!(mode.next().await.unwrap().unwrap(), "eco");
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn subscribe_property<T: DeserializeOwned>(
        &self,
        property: &str,
        current: bool,
    ) -> Result<Subscription<T>, Error> {
        self.subscribe(SubKind::Property { property: property.to_owned(), current }).await
    }

    /// MQTT messages on a topic (filter), through the server's broker.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// let mut temps = client.mqtt_subscribe::<f64>("home/+/temp", 0).await.unwrap();
    /// # let _ = &mut temps;
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn mqtt_subscribe<T: DeserializeOwned>(
        &self,
        topic: &str,
        qos: u8,
    ) -> Result<Subscription<MqttMessage<T>>, Error> {
        self.subscribe(SubKind::Topic { topic: topic.to_owned(), qos }).await
    }

    /// Publishes an MQTT message (QoS 0, not retained); waits until it is written to the
    /// connection.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.mqtt_publish("home/kitchen/temp", &21.5).await.unwrap();
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn mqtt_publish<T: Serialize + ?Sized>(&self, topic: &str, payload: &T) -> Result<(), Error> {
        self.mqtt_publish_with(topic, payload, 0, false).await
    }

    /// Publishes an MQTT message with a QoS and the retained flag.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.mqtt_publish_with("home/kitchen/setpoint", &20.0, 1, true).await.unwrap();
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn mqtt_publish_with<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        payload: &T,
        qos: u8,
        retained: bool,
    ) -> Result<(), Error> {
        let payload = to_pson(payload).map_err(Error::Encode)?;
        let topic = topic.to_owned();
        self.request(|reply| Command::Publish { topic, qos, retained, payload, reply }).await?
    }

    /// Sends a sample of `resource` on every stream the server has open on it now (for
    /// event-driven streams). Returns whether any stream took it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.connected().await.unwrap();
    /// // Nobody streams "temperature" yet.
    /// assert!(!client.stream("temperature").await.unwrap());
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn stream(&self, resource: &str) -> Result<bool, Error> {
        let resource = resource.to_owned();
        self.request(|reply| Command::Stream { resource, reply }).await
    }

    /// Disconnects politely and stops the client; returns when it has stopped. Queued
    /// entries not yet acknowledged stay in the queue file, when there is one.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.connected().await.unwrap();
    /// client.shutdown().await;
    /// assert_eq!(client.status(), thinger_std::Status::Stopped);
    /// assert_eq!(client.stats().await, Err(thinger_std::Error::Stopped));
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.shared.cmd.send(Command::Shutdown { reply: tx }).await.is_ok() {
            let _ = rx.await;
        }
        let mut status = self.shared.status.clone();
        while *status.borrow_and_update() != Status::Stopped {
            if status.changed().await.is_err() {
                break;
            }
        }
    }
}

/// Connection events as an async stream (see [`Client::events`]).
///
/// ```
/// use futures_util::StreamExt;
/// let (client, _runner) = thinger_std::Client::builder("u", "d", "c").build().unwrap();
/// let events = client.events();
/// drop(client);
/// drop(_runner);
/// // The stream ends once the client is gone.
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let all: Vec<_> = rt.block_on(events.collect());
/// assert!(all.is_empty());
/// ```
pub struct Events(Pin<Box<dyn Stream<Item = ClientEvent> + Send>>);

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl Events {
    /// The next event; `None` once the client is gone.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// let mut events = client.events();
    /// let stopper = client.clone();
    /// tokio::spawn(async move { stopper.shutdown().await });
    /// assert!(events.next().await.is_some());
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.0.next().await
    }

    /// Waits for an event matching `pred` (skipping others); `None` if the client ends.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// let mut events = client.events();
    /// client.shutdown().await;
    /// assert!(events.wait_for(|e| *e == thinger_std::ClientEvent::Stopped).await.is_some());
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn wait_for(&mut self, mut pred: impl FnMut(&ClientEvent) -> bool) -> Option<ClientEvent> {
        while let Some(e) = self.next().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    }
}

impl Stream for Events {
    type Item = ClientEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.0.as_mut().poll_next(cx)
    }
}

/// An async stream of subscription data, deserialized into `T`. Ended by dropping it.
///
/// See [`Client::subscribe_property`] for an example.
///
/// A refused subscription yields an `Err` item ([`Error::Server`]) and is retried after the
/// next reconnect. Items are buffered (256); if the reader falls further behind, new items
/// are dropped and logged.
pub struct Subscription<T> {
    rx: mpsc::Receiver<SubItem>,
    key: u64,
    cmd: mpsc::Sender<Command>,
    item: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("key", &self.key).finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Subscription<T> {
    /// The next item; `None` once the client stopped.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// server.set_property("user1", "doc", "level", 3u32.into()).await.unwrap();
    /// let mut level = client.subscribe_property::<u32>("level", true).await.unwrap();
    /// assert_eq!(level.next().await, Some(Ok(3)));
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn next(&mut self) -> Option<Result<T, Error>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|item| item.and_then(|bytes| from_pson(bytes.as_deref()).map_err(Error::Decode))))
    }
}

impl<T: DeserializeOwned> Stream for Subscription<T> {
    type Item = Result<T, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        let _ = self.cmd.try_send(Command::Unsubscribe { key: self.key });
    }
}
