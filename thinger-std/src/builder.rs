//! [`ClientBuilder`]: where to connect, how, and what the device offers; it makes the
//! [`Client`] handle and its [`Runner`].

use std::time::Duration;

use thinger_core::resource::Resource;

use crate::announce::Announcer;
use crate::backoff::Backoff;
use crate::capacity::Capacity;
use crate::client::Client;
use crate::command::Settings;
use crate::error::BuildError;
use crate::queue::{OfflineQueue, QueueConfig};
use crate::resources::{AsyncHandler, Handler, Resources};
use crate::runner::Runner;
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
///
/// `Debug` never prints the credential:
///
/// ```
/// let shown = format!("{:?}", thinger_std::Client::builder("user", "device", "s3cret"));
/// assert!(shown.contains("device") && !shown.contains("s3cret"));
/// ```
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
    healthy_after: Duration,
    queue: QueueConfig,
    queue_window: usize,
    buffer_size: usize,
    capacity: Capacity,
    firmware: Option<String>,
    resources: Resources,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("user", &self.user)
            .field("device", &self.device)
            .field("credential", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("transport", &self.transport)
            .field("tls", &self.tls)
            .field("keep_alive", &self.keep_alive)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("backoff", &self.backoff)
            .field("healthy_after", &self.healthy_after)
            .field("queue", &self.queue)
            .field("queue_window", &self.queue_window)
            .field("buffer_size", &self.buffer_size)
            .field("capacity", &self.capacity)
            .field("firmware", &self.firmware)
            .field("resources", &self.resources)
            .finish()
    }
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
            healthy_after: Duration::from_secs(30),
            queue: QueueConfig::default(),
            queue_window: 16,
            buffer_size: 32 * 1024,
            capacity: Capacity::Standard,
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
    /// How long a connection must stay authenticated before the reconnect delays start
    /// over from [`Backoff::initial`] (default 30 s). A server that accepts the device and
    /// then drops it sooner sees the delays keep growing.
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").healthy_after(std::time::Duration::from_secs(60));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn healthy_after(mut self, period: Duration) -> Self {
        self.healthy_after = period;
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
        self.queue_window = window.clamp(1, crate::command::MAX_QUEUE_WINDOW);
        self
    }
    /// The session buffer in bytes (default 32 KiB): 3/8 receive (the largest frame
    /// accepted), 3/8 transmit, 1/4 for answers waiting to be read. Gateways with many
    /// devices may use less (at least 1 KiB). The memory is held only while the session
    /// has data in it: a connection waiting with nothing buffered gives it back to its
    /// thread (which keeps a few for the next connection to use), so idle devices cost none.
    ///
    /// ```
    /// let b = thinger_std::Client::builder("u", "d", "c").buffer_size(4096);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        self.buffer_size = bytes.max(1024);
        self
    }
    /// The sizes of the session's tables (default [`Capacity::Standard`]): how many
    /// resources, streams, subscriptions and requests in flight the client holds.
    /// [`Capacity::Compact`] suits a gateway's many small virtual devices (2.0 KiB of
    /// tables instead of 6.3 KiB on a 64-bit host); building fails if more resources are
    /// registered than the capacity holds.
    ///
    /// ```
    /// use thinger_std::dsl::output;
    /// use thinger_std::Capacity;
    /// let b = thinger_std::Client::builder("u", "d", "c").capacity(Capacity::Compact).buffer_size(4096);
    /// assert!(b.resource("t", output(|| 1)).build().is_ok());
    /// let mut b = thinger_std::Client::builder("u", "d", "c").capacity(Capacity::Compact);
    /// for path in ["a", "b", "c", "d", "e", "f", "g", "h", "i"] {
    ///     b = b.resource(path, output(|| 1));
    /// }
    /// assert!(matches!(b.build(), Err(thinger_std::BuildError::Resources(_))));
    /// ```
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }
    /// The firmware version announced to the server. It is also served as the `version`
    /// resource (`{major, minor, patch, version}`, like the official Linux client), unless the
    /// resource table already has one.
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

    /// The client handle and the [`Runner`] that drives its connection. `tokio::spawn`
    /// [`Runner::run`] (a `Send` future), or await [`Runner::run_local`] in place; the
    /// handle can be cloned and moved to other tasks and threads.
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
    /// let task = tokio::spawn(runner.run());
    /// client.connected().await.unwrap();
    /// client.shutdown().await;
    /// task.await.unwrap();
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub fn build(mut self) -> Result<(Client, Runner), BuildError> {
        if let Some(firmware) = &self.firmware
            && !self.resources.contains(VERSION_PATH)
            && self.resources.len() < self.capacity.resources()
        {
            let version = FirmwareVersion::parse(firmware);
            *self.resources.entry(VERSION_PATH) >>= thinger_core::dsl::output(move || version.clone());
        }
        let most = self.capacity.resources();
        if self.resources.len() > most {
            return Err(BuildError::Resources(format!(
                "{} resources, at most {most} with {:?} capacity",
                self.resources.len(),
                self.capacity
            )));
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
        let (cmd_tx, cmd_rx) = crate::mailbox::channel(1024);
        let announcer = Announcer::new(EVENT_BUFFER);
        let settings = Settings {
            user: self.user,
            device: self.device,
            credential: self.credential,
            target,
            keep_alive: self.keep_alive,
            request_timeout: self.request_timeout,
            backoff: self.backoff,
            healthy_after: self.healthy_after,
            buffer_size: self.buffer_size,
            capacity: self.capacity,
            firmware: self.firmware,
            queue_window: self.queue_window,
        };
        let handlers: Vec<(String, Handler)> = handlers;
        let runner = Runner::new(settings, handlers, cmd_rx, announcer.clone(), queue);
        let client = Client::new(cmd_tx, announcer, self.request_timeout);
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
            .spawn(move || runtime.block_on(runner.run_local()))
            .map_err(BuildError::Runtime)?;
        Ok(client)
    }
}

/// Where the firmware version is served.
const VERSION_PATH: &str = thinger_core::ota::Version::PATH;

/// The `version` resource's value: the leading numbers of `MAJOR.MINOR.PATCH` (0 where
/// missing) and the string as given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct FirmwareVersion {
    major: u32,
    minor: u32,
    patch: u32,
    version: String,
}

impl FirmwareVersion {
    fn parse(version: &str) -> FirmwareVersion {
        let core = version.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
        let mut parts = core.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let mut next = || parts.next().unwrap_or(0);
        FirmwareVersion { major: next(), minor: next(), patch: next(), version: version.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::FirmwareVersion;

    #[test]
    fn firmware_versions_parse_like_the_core_version_resource() {
        for text in ["1.4.2-rc1", "2", "3.1", "", "v1.2.3", "10.20.30.40"] {
            let ours = FirmwareVersion::parse(text);
            let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
            let core = thinger_core::ota::Version::new(leaked);
            assert_eq!((ours.major, ours.minor, ours.patch), (core.major, core.minor, core.patch), "{text}");
            assert_eq!(ours.version, text);
        }
    }
}
