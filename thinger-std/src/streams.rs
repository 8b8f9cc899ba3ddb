//! [`Streams`](futures_util::Stream) a [`Client`](crate::Client) hands out: connection
//! events and subscription data.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::command::{Command, CommandTx, SubItem};
use crate::error::Error;
use crate::event::ClientEvent;
use crate::pson_util::from_pson;

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

/// Connection events as an async stream (see [`Client::events`](crate::Client::events)).
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
pub struct Events(pub(crate) Pin<Box<dyn Stream<Item = ClientEvent> + Send>>);

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
/// See [`Client::subscribe_property`](crate::Client::subscribe_property) for an example.
///
/// A refused subscription yields an `Err` item ([`Error::Server`]) and is retried after the
/// next reconnect. Items are buffered (256); if the reader falls further behind, new items
/// are dropped and logged.
pub struct Subscription<T> {
    rx: mpsc::Receiver<SubItem>,
    key: u64,
    cmd: CommandTx,
    item: PhantomData<fn() -> T>,
}

impl<T> Subscription<T> {
    /// The stream of subscription `key`, fed through `rx`; dropping it unsubscribes.
    pub(crate) fn new(rx: mpsc::Receiver<SubItem>, key: u64, cmd: CommandTx) -> Self {
        Subscription { rx, key, cmd, item: PhantomData }
    }
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
        let _ = self.cmd.try_send(Box::new(Command::Unsubscribe { key: self.key }));
    }
}
