//! The client handle: cloud calls, the offline queue, subscriptions and status, all sent
//! to the runner as [`Command`]s.

mod cloud;
mod pubsub;

pub use pubsub::QoS;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use thinger_core::resource::HandlerError;
use tokio::sync::{broadcast, oneshot};

use crate::announce::{Announcer, initial_event};
use crate::command::{CallSpec, Command, CommandTx};
use crate::error::Error;
use crate::event::Status;
use crate::pson_util::to_pson;
use crate::streams::Events;

#[derive(Debug)]
struct Shared {
    cmd: CommandTx,
    events: Announcer,
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
    pub(crate) fn new(cmd: CommandTx, events: Announcer, timeout: Duration) -> Client {
        Client { shared: Arc::new(Shared { cmd, events }), timeout }
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
        self.shared.events.status()
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
        let wait = self.shared.events.wait_for(|s| matches!(s, Status::Connected | Status::Stopped));
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(Some(Status::Connected)) => Ok(()),
            Ok(_) => Err(Error::Stopped),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Connection events (connecting, connected, auth failed, disconnected with the reason,
    /// backoff, ...). The stream starts with where the client already is when that is
    /// connected ([`ClientEvent::Connected`](crate::ClientEvent::Connected)) or stopped
    /// ([`ClientEvent::Stopped`](crate::ClientEvent::Stopped)), so a
    /// caller that subscribes after the connection came up still sees it; then every event
    /// from the moment of the call. A receiver that falls more than 32 events behind skips
    /// the oldest.
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
        let (rx, status) = self.shared.events.subscribe();
        let first = initial_event(status);
        let stream = futures_util::stream::unfold((rx, first), |(mut rx, first)| async move {
            if let Some(event) = first {
                return Some((event, (rx, None)));
            }
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, (rx, None))),
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
            self.shared.cmd.send(Box::new(cmd)).await.map_err(|_| Error::Stopped)?;
            rx.await.map_err(|_| Error::Stopped)
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| Error::Timeout)?
    }

    async fn call(&self, spec: CallSpec) -> Result<Option<Vec<u8>>, Error> {
        self.request(|reply| Command::Call { spec, reply }).await?
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
        if self.shared.cmd.send(Box::new(Command::Shutdown { reply: tx })).await.is_ok() {
            let _ = rx.await;
        }
        self.shared.events.wait_for(|s| s == Status::Stopped).await;
    }
}
