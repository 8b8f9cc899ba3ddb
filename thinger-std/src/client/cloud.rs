//! Cloud calls of the handle: properties, other devices, sync locks, buckets and endpoints
//! (direct or through the offline queue).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::Client;
use crate::command::{CallSpec, Command, Stats};
use crate::error::Error;
use crate::pson_util::{from_pson, to_pson};
use crate::queue::Op;

impl Client {
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

    /// Takes sync lock `lock` on `sync` (at most `slots` holders). The server waits up to
    /// `wait` for a slot (`None`: as long as needed; the protocol counts whole seconds, so a
    /// wait is rounded up to the next second). The call waits that long on top of its own
    /// timeout; a grant that comes after its caller gave up is released.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.lock_sync("printer", "me", 1, None).await.unwrap();
    /// // ... use the shared resource ...
    /// client.unlock_sync("printer", "me").await.unwrap();
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn lock_sync(&self, sync: &str, lock: &str, slots: u32, wait: Option<Duration>) -> Result<(), Error> {
        let timeout_s = match wait {
            None => 0,
            // Whole seconds, rounded up: the server must wait at least as long as asked.
            Some(d) => u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX).max(1),
        };
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
    /// client.lock_sync("door", "me", 1, None).await.unwrap();
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
            self.shared
                .cmd
                .send(Box::new(Command::Enqueue { op, queued: queued_tx, ack }))
                .await
                .map_err(|_| Error::Stopped)?;
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
}
