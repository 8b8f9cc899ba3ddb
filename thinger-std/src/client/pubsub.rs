//! Subscriptions of the handle (server events, properties, MQTT topics) and MQTT publishing.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::Client;
use crate::command::{Command, SubKind};
use crate::error::Error;
use crate::pson_util::to_pson;
use crate::streams::{MqttMessage, Subscription};

impl Client {
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
    /// use thinger_std::QoS;
    /// let mut temps = client.mqtt_subscribe::<f64>("home/+/temp", QoS::AtMostOnce).await.unwrap();
    /// # let _ = &mut temps;
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn mqtt_subscribe<T: DeserializeOwned>(
        &self,
        topic: &str,
        qos: QoS,
    ) -> Result<Subscription<MqttMessage<T>>, Error> {
        let qos = qos as u8;
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
        self.mqtt_publish_with(topic, payload, QoS::AtMostOnce, false).await
    }

    /// Publishes an MQTT message with a QoS and the retained flag.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// # let addr = server.tcp_addr();
    /// # let client = thinger_std::Client::builder("user1", "doc", "secret").host("127.0.0.1").port(addr.port())
    /// #     .transport(thinger_std::Transport::Tcp).spawn().unwrap();
    /// client.mqtt_publish_with("home/kitchen/setpoint", &20.0, thinger_std::QoS::AtLeastOnce, true).await.unwrap();
    /// # client.shutdown().await;
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn mqtt_publish_with<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        payload: &T,
        qos: QoS,
        retained: bool,
    ) -> Result<(), Error> {
        let qos = qos as u8;
        let payload = to_pson(payload).map_err(Error::Encode)?;
        let topic = topic.to_owned();
        self.request(|reply| Command::Publish { topic, qos, retained, payload, reply }).await?
    }
}

/// The MQTT quality of service asked of the server's broker.
///
/// ```
/// assert_eq!(thinger_std::QoS::AtLeastOnce as u8, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: delivered at most once, no acknowledgement.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: delivered at least once.
    AtLeastOnce = 1,
    /// QoS 2: delivered exactly once.
    ExactlyOnce = 2,
}
