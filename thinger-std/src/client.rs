//! The client handle: cloud calls, the offline queue, subscriptions and status, all sent
//! to the runner as [`Command`]s.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thinger_core::resource::HandlerError;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::command::{CallSpec, Command, Stats, SubKind};
use crate::error::Error;
use crate::event::{ClientEvent, Status};
use crate::pson_util::{from_pson, to_pson};
use crate::queue::Op;
use crate::streams::{Events, MqttMessage, Subscription};

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

impl Client {
    /// The handle of the runner listening on `cmd`.
    pub(crate) fn new(
        cmd: mpsc::Sender<Command>,
        status: watch::Receiver<Status>,
        events: broadcast::Sender<ClientEvent>,
        timeout: Duration,
    ) -> Client {
        Client { shared: Arc::new(Shared { cmd, status, events }), timeout }
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
    /// `timeout_s` seconds for a slot, 0 = as long as needed). The call waits that long on
    /// top of its own timeout; a grant that comes after its caller gave up is released.
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
        let spec = CallSpec::LockSync { sync: sync.to_owned(), lock: lock.to_owned(), slots, timeout_s };
        // As long as the server may wait, on top of the call's own timeout.
        let patient = match timeout_s {
            0 => self.with_timeout(Duration::MAX),
            s => self.with_timeout(self.timeout.saturating_add(Duration::from_secs(u64::from(s)))),
        };
        patient.call(spec).await.map(drop)
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

    /// Calls an endpoint (with `data`, if any) and returns its reply, deserialized (use
    /// `()` or `serde_json::Value` when it has none or any). Not queued: it waits for the
    /// connection within the call's timeout, like [`Client::call_device`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use thinger_server::{EndpointConfig, Server, ServerConfig};
    /// let config = ServerConfig::local().endpoint(EndpointConfig::new("quote").response(42u32.into()));
    /// let server = Server::start(config).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// let price: u32 = client.call_endpoint_with_reply("quote", Some(&"EURUSD")).await.unwrap();
    /// assert_eq!(price, 42);
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn call_endpoint_with_reply<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        endpoint: &str,
        data: Option<&I>,
    ) -> Result<O, Error> {
        let data = data.map(to_pson).transpose().map_err(Error::Encode)?;
        let reply = self.call(CallSpec::CallEndpoint { endpoint: endpoint.to_owned(), data }).await?;
        from_pson(reply.as_deref()).map_err(Error::Decode)
    }

    /// Calls an endpoint (with `data`, if any) and waits for the acknowledgement; queued
    /// like [`Client::write_bucket`] (its reply, if any, is not kept: see
    /// [`Client::call_endpoint_with_reply`]).
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
        Ok(Subscription::new(data_rx, key, self.shared.cmd.clone()))
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

    /// Answers a request that a sync handler deferred with `call.defer()`: `stream_id` is
    /// that call's `stream_id()`, `result` the output (or the error) to send. Fails with
    /// [`Error::Disconnected`] when the connection the request came on is gone; a deferred
    /// request nobody answers gets `ERROR` 504 after the request timeout.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// use thinger_std::core::resource::{handler, ResourceKind};
    /// let (ids_tx, ids_rx) = std::sync::mpsc::channel();
    /// let slow = handler(ResourceKind::Output, move |call| {
    ///     let _ = ids_tx.send(call.stream_id());
    ///     call.defer();
    ///     Ok(())
    /// });
    /// let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1")
    ///     .port(server.tcp_addr().port()).transport(thinger_std::Transport::Tcp)
    ///     .resource("slow", slow).spawn().unwrap();
    /// client.connected().await.unwrap();
    /// let answerer = client.clone();
    /// tokio::spawn(async move {
    ///     let id = tokio::task::spawn_blocking(move || ids_rx.recv().unwrap()).await.unwrap().unwrap();
    ///     answerer.answer(id, Ok(Some(&7u8))).await.unwrap();
    /// });
    /// let reply = server.run_resource("user1", "doc", "slow", None).await.unwrap();
    /// assert_eq!(reply.payload.unwrap().as_u64(), Some(7));
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn answer<T: Serialize + ?Sized>(
        &self,
        stream_id: u16,
        result: Result<Option<&T>, HandlerError>,
    ) -> Result<(), Error> {
        let answer = match result {
            Ok(output) => Ok(output.map(to_pson).transpose().map_err(Error::Encode)?),
            Err(e) => Err(e),
        };
        self.request(|reply| Command::Answer { stream_id, answer, reply }).await?
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
