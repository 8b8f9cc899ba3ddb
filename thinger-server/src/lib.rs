//! # thinger-server
//!
//! A local IOTMP server with a Thinger.io-style REST API, for offline development and for
//! end-to-end tests of the SDK over real sockets.
//!
//! * **Devices** connect over TCP, TLS (a CA generated at start, or your certificate files)
//!   or WebSocket (`ws://HOST:HTTP_PORT/iotmp`, subprotocol `iotmp`), authenticate against a
//!   credentials list (or any credentials with [`ServerConfig::allow_any`]), and get the
//!   cloud calls the Thinger.io server answers: properties, buckets, endpoints,
//!   device-to-device calls, sync locks, event and MQTT-topic subscriptions.
//! * **The REST API** uses the same routes as the cloud (`/v1/users/{user}/devices`,
//!   `/v3/users/{user}/devices/{device}/resources/{resource}`, …) with JSON bodies, so scripts
//!   written against the cloud run locally. See `docs/server.md` for the list.
//! * **Storage** is in memory, or in an embedded database with [`ServerConfig::data_dir`]
//!   (a bucket write is acknowledged only once it is committed to disk).
//!
//! ```
//! use thinger_server::{Server, ServerConfig};
//!
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! rt.block_on(async {
//!     // 127.0.0.1, ephemeral ports, any credentials, TLS with a generated CA.
//!     let server = Server::start(ServerConfig::local()).await.unwrap();
//!     assert_ne!(server.tcp_addr().port(), 0);
//!     assert!(server.tls_addr().is_some());
//!     assert!(server.ca_cert_pem().unwrap().contains("BEGIN CERTIFICATE"));
//!     assert_eq!(server.ws_url(), format!("ws://{}/iotmp", server.http_addr()));
//!     assert_eq!(server.connected_devices(), 0);
//!     server.shutdown().await;
//! });
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod api;
mod config;
mod conn;
mod error;
mod gateway;
mod guard;
mod http;
mod hub;
mod limits;
pub mod ota;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod remote;
mod rest;
mod store;
mod stream;
mod tls;
mod transport;
mod util;
mod vocab;
mod wire;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thinger_core::pson::Value;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use config::{
    Credential, DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT, DEFAULT_MAX_FRAME_SIZE, DEFAULT_TCP_PORT, DEFAULT_TLS_PORT,
    EndpointConfig, ServerConfig, TlsMode, UserToken, load_credentials, parse_credentials, parse_user_tokens,
};
pub use error::{DeviceError, ServerError, StreamError};
pub use limits::{DEFAULT_DEVICE_FRAME_LIMIT, Limits};
pub use stream::{DeviceStream, StreamReceiver, StreamSender};
pub use tls::GeneratedPki;

use crate::hub::{Hub, Lookup};
use crate::vocab::{Command, DeviceRequest};

/// `docs/server.md`, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/server.md")]
mod server_doc {}
use crate::store::{BucketQuery, Op, Store};

/// A device's successful reply to a request made through [`Server::run_resource`] or
/// [`Server::describe`].
///
/// ```
/// let reply = thinger_server::DeviceReply { code: None, payload: Some(3u32.into()) };
/// assert_eq!(reply.payload.unwrap(), 3u32);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReply {
    /// The OK's F2 code, if the handler set one.
    pub code: Option<u64>,
    /// The OK's F3 payload, if any.
    pub payload: Option<Value>,
}

/// One record of a bucket: the server timestamp (ms since the epoch) and the stored value.
///
/// ```
/// let r = thinger_server::BucketRecord { ts: 1, value: 2u32.into(), device: "dev1".into() };
/// assert_eq!(r.value, 2u32);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BucketRecord {
    /// Server timestamp in milliseconds since the Unix epoch.
    pub ts: u64,
    /// The value the device wrote.
    pub value: Value,
    /// The device that wrote it.
    pub device: String,
}

/// One endpoint call a device made.
///
/// ```
/// let c = thinger_server::EndpointCall { ts: 1, device: "d".into(), endpoint: "e".into(),
///                                        data: thinger_core::pson::Value::Null };
/// assert_eq!(c.endpoint, "e");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointCall {
    /// Server timestamp in milliseconds since the Unix epoch.
    pub ts: u64,
    /// The calling device.
    pub device: String,
    /// The endpoint id.
    pub endpoint: String,
    /// The data sent with the call (null when none).
    pub data: Value,
}

/// A running server. Dropping it stops the listeners and connections; call
/// [`Server::shutdown`] to also wait until everything (the database included) is closed.
///
/// ```
/// use thinger_server::{Server, ServerConfig, TlsMode};
///
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// rt.block_on(async {
///     let server = Server::start(ServerConfig::local().tls(TlsMode::Off)).await.unwrap();
///     assert!(server.tls_addr().is_none());
///     assert!(server.ca_cert_pem().is_none());
///     server.shutdown().await;
/// });
/// ```
pub struct Server {
    hub: Arc<Hub>,
    tcp_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    ca_pem: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds a listener with a deep accept queue: the default (128) drops the SYNs of a fleet
/// reconnecting at once, which then wait a full second for their retransmission.
fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, ServerError> {
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|e| ServerError::io(format!("cannot bind the {what} listener to {addr}"), e))
}

/// Accept queue length requested for every listener (the kernel may cap it).
const LISTEN_BACKLOG: u32 = 4096;

fn local_addr(l: &TcpListener) -> Result<SocketAddr, ServerError> {
    l.local_addr().map_err(|e| ServerError::io("cannot read a listener's address", e))
}

impl Server {
    /// Starts the listeners (IOTMP over TCP, TLS if enabled, HTTP with WebSocket IOTMP) and
    /// returns once they accept connections.
    ///
    /// Fails when a port cannot be bound, a credentials or TLS file cannot be read, or the
    /// database cannot be opened.
    ///
    /// ```
    /// use thinger_server::{Server, ServerConfig, ServerError};
    ///
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let bad = ServerConfig::local().credentials_file("/nonexistent/devices.toml");
    ///     assert!(matches!(Server::start(bad).await, Err(ServerError::Config(_))));
    /// });
    /// ```
    pub async fn start(mut config: ServerConfig) -> Result<Server, ServerError> {
        if let Some(path) = &config.credentials_file {
            let list = load_credentials(path)?;
            config.credentials.extend(list);
            let text = std::fs::read_to_string(path)
                .map_err(|e| ServerError::Config(format!("cannot read credentials file {}: {e}", path.display())))?;
            config.user_tokens.extend(parse_user_tokens(&text)?);
        }
        if config.max_frame_size < 16 {
            return Err(ServerError::Config("max_frame_size must be at least 16 bytes".into()));
        }
        if config.api_token.is_none() && config.user_tokens.is_empty() && !config.bind.is_loopback() {
            tracing::warn!(
                bind = %config.bind,
                "THE REST API IS OPEN: anyone who reaches {} can run every device's resources and read \
                 and write its data; set a token (--token or THINGER_SERVER_TOKEN) or bind to 127.0.0.1",
                config.bind
            );
        }
        if !config.allow_any && config.credentials.is_empty() {
            tracing::warn!("no credentials configured and allow_any is off: no device can connect");
        }
        let tls = tls::setup(&config.tls, config.data_dir.as_deref())?;
        let ca_pem = tls.as_ref().and_then(|t| t.ca_pem.clone());
        if let (Some(path), Some(pem)) = (&config.ca_out, &ca_pem) {
            std::fs::write(path, pem)
                .map_err(|e| ServerError::io(format!("cannot write the CA certificate to {}", path.display()), e))?;
        }

        let tcp = bind(SocketAddr::new(config.bind, config.tcp_port), "TCP")?;
        let tls_listener = match &tls {
            Some(_) => Some(bind(SocketAddr::new(config.bind, config.tls_port), "TLS")?),
            None => None,
        };
        let http = bind(SocketAddr::new(config.bind, config.http_port), "HTTP")?;
        let https = match &tls {
            Some(_) => Some(bind(SocketAddr::new(config.bind, config.https_port), "HTTPS")?),
            None => None,
        };
        let https_addr = https.as_ref().map(local_addr).transpose()?;
        let tcp_addr = local_addr(&tcp)?;
        let tls_addr = tls_listener.as_ref().map(local_addr).transpose()?;
        let http_addr = local_addr(&http)?;

        let (events_tx, mut events_rx) = mpsc::unbounded_channel();
        let store = Store::open(config.data_dir.as_deref(), events_tx)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let hub = Arc::new(Hub::new(config, store, shutdown_rx));

        let mut tasks = Vec::new();
        // Committed property changes reach the subscribed devices in commit order, each
        // before its writer is answered.
        let events_hub = Arc::downgrade(&hub);
        tasks.push(tokio::spawn(async move {
            while let Some(committed) = events_rx.recv().await {
                let Some(hub) = events_hub.upgrade() else {
                    committed.deliver(drop);
                    break;
                };
                committed.deliver(|event| hub.dispatch(event));
            }
        }));
        let handler: transport::Handler = {
            let hub = Arc::clone(&hub);
            Arc::new(move |reader, writer, peer, name| {
                Box::pin(conn::serve(Arc::clone(&hub), reader, writer, peer, name))
            })
        };
        tasks.push(tokio::spawn(transport::accept_tcp(tcp, Arc::clone(&handler), hub.shutdown.clone())));
        let router = api::router(Arc::clone(&hub), gateway::router(Arc::clone(&hub)));
        let settings = http::HttpSettings {
            header_timeout: hub.config.limits.http_header_timeout,
            max_connections: hub.config.limits.max_http_connections,
        };
        if let (Some(listener), Some(setup)) = (https, &tls) {
            let acceptor = Some(TlsAcceptor::from(Arc::clone(&setup.config)));
            let serve = http::serve(listener, acceptor, router.clone(), settings, hub.shutdown.clone());
            tasks.push(tokio::spawn(serve));
        }
        if let (Some(listener), Some(setup)) = (tls_listener, tls) {
            let acceptor = TlsAcceptor::from(setup.config);
            let timeout = hub.config.auth_timeout;
            let accept = transport::accept_tls(listener, acceptor, timeout, Arc::clone(&handler), hub.shutdown.clone());
            tasks.push(tokio::spawn(accept));
        }
        tasks.push(tokio::spawn(http::serve(http, None, router, settings, hub.shutdown.clone())));
        tracing::info!(%tcp_addr, tls_addr = ?tls_addr, %http_addr, https_addr = ?https_addr, "thinger-server listening");
        Ok(Server { hub, tcp_addr, tls_addr, http_addr, https_addr, ca_pem, shutdown, tasks })
    }

    /// Address of plain IOTMP over TCP.
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// let stream = tokio::net::TcpStream::connect(server.tcp_addr()).await.unwrap();
    /// # }
    /// ```
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// Address of IOTMP over TLS (`None` when TLS is off). The certificate is valid for
    /// `localhost` and `127.0.0.1`; trust [`Server::ca_cert_pem`].
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// let port = server.tls_addr().map(|a| a.port());
    /// # }
    /// ```
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Address of the REST API (and of WebSocket IOTMP at `/iotmp`).
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// let base = format!("http://{}/v1/users/user1/devices", server.http_addr());
    /// # }
    /// ```
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Address of HTTPS: the REST API and `wss://…/iotmp` (`None` when TLS is off).
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// let base = server.https_addr().map(|a| format!("https://localhost:{}", a.port()));
    /// # }
    /// ```
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The secure WebSocket IOTMP URL, `wss://localhost:{port}/iotmp` (`None` when TLS is off).
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// assert!(server.wss_url().unwrap().starts_with("wss://localhost:"));
    /// # }
    /// ```
    pub fn wss_url(&self) -> Option<String> {
        self.https_addr.map(|a| format!("wss://localhost:{}/iotmp", a.port()))
    }

    /// The WebSocket IOTMP URL, `ws://{http_addr}/iotmp`.
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// assert!(server.ws_url().ends_with("/iotmp"));
    /// # }
    /// ```
    pub fn ws_url(&self) -> String {
        format!("ws://{}/iotmp", self.http_addr)
    }

    /// The generated CA certificate (PEM) a TLS client should trust; `None` when TLS is off
    /// or uses certificate files.
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// std::fs::write("ca.pem", server.ca_cert_pem().unwrap()).unwrap();
    /// # }
    /// ```
    pub fn ca_cert_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Number of devices connected now.
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// println!("{} devices online", server.connected_devices());
    /// # }
    /// ```
    pub fn connected_devices(&self) -> usize {
        self.hub.connected()
    }

    /// Whether a device is connected now.
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// assert!(!server.is_connected("user1", "dev1"));
    /// # }
    /// ```
    pub fn is_connected(&self, user: &str, device: &str) -> bool {
        matches!(self.hub.lookup(user, device), Lookup::Live(_))
    }

    /// Waits until a device is connected, or `timeout` passes; returns whether it is.
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// use std::time::Duration;
    /// assert!(server.wait_connected("user1", "dev1", Duration::from_secs(5)).await);
    /// # }
    /// ```
    pub async fn wait_connected(&self, user: &str, device: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_connected(user, device) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends DISCONNECT to a connected device and closes its connection (to test reconnects).
    /// Returns false if it was not connected.
    ///
    /// ```no_run
    /// # fn f(server: thinger_server::Server) {
    /// server.disconnect_device("user1", "dev1");
    /// # }
    /// ```
    pub fn disconnect_device(&self, user: &str, device: &str) -> bool {
        match self.hub.lookup(user, device) {
            Lookup::Live(tx) => tx.send(Command::Disconnect { code: 0, reason: "disconnected by the server" }).is_ok(),
            _ => false,
        }
    }

    /// Runs a device resource (RUN), with an optional input, and returns the device's reply:
    /// what `GET`/`POST /v3/users/{user}/devices/{device}/resources/{resource}` does.
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// let reply = server.run_resource("user1", "dev1", "millis", None).await.unwrap();
    /// println!("{:?}", reply.payload);
    /// # }
    /// ```
    pub async fn run_resource(
        &self,
        user: &str,
        device: &str,
        resource: &str,
        input: Option<Value>,
    ) -> Result<DeviceReply, DeviceError> {
        let request = DeviceRequest::Run { resource: resource.to_owned(), input };
        into_reply(self.hub.request(user, device, request).await)
    }

    /// Opens a byte stream on a device resource: START_STREAM on `resource` (e.g.
    /// `$terminal/s1`, `$proxy/p1`, `$fs/download/d1`) with `params` in F2, and waits (up to
    /// the device timeout) for the device's OK. See [`DeviceStream`].
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// use thinger_core::pson;
    /// let params = pson!({"protocol": "tcp", "address": "127.0.0.1", "port": 22, "secure": false});
    /// let tunnel = server.open_stream("user1", "gw", "$proxy/p1", Some(params)).await.unwrap();
    /// # }
    /// ```
    pub async fn open_stream(
        &self,
        user: &str,
        device: &str,
        resource: &str,
        params: Option<Value>,
    ) -> Result<DeviceStream, StreamError> {
        stream::open(&self.hub, user, device, resource, params).await
    }

    /// Asks a device to describe its resources (or one resource) with DESCRIBE.
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// let api = server.describe("user1", "dev1", None).await.unwrap().payload.unwrap();
    /// # }
    /// ```
    pub async fn describe(&self, user: &str, device: &str, resource: Option<&str>) -> Result<DeviceReply, DeviceError> {
        let request = DeviceRequest::Describe { resource: resource.map(str::to_owned) };
        into_reply(self.hub.request(user, device, request).await)
    }

    /// A stored property of a device.
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// let cfg = server.property("user1", "dev1", "cfg").await;
    /// # }
    /// ```
    pub async fn property(&self, user: &str, device: &str, property: &str) -> Option<Value> {
        let (user, device, property) = (user.to_owned(), device.to_owned(), property.to_owned());
        self.hub.store.ask(|reply| Op::GetProperty { user, device, property, reply }).await.flatten().map(|r| r.value)
    }

    /// Stores a property of a device and notifies its subscribers (what `PUT …/properties/{p}` does).
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// server.set_property("user1", "dev1", "cfg", thinger_core::pson!({"rate": 5})).await.unwrap();
    /// # }
    /// ```
    pub async fn set_property(
        &self,
        user: &str,
        device: &str,
        property: &str,
        value: Value,
    ) -> Result<(), ServerError> {
        let (user, device, property) = (user.to_owned(), device.to_owned(), property.to_owned());
        match self.hub.store.ask(|reply| Op::SetProperty { user, device, property, value, reply }).await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(ServerError::Storage(e)),
            None => Err(ServerError::Storage("storage stopped".into())),
        }
    }

    /// Every record of a user's bucket, oldest first (empty for an unknown bucket).
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// for record in server.bucket_data("user1", "weather").await {
    ///     println!("{} {:?}", record.ts, record.value);
    /// }
    /// # }
    /// ```
    pub async fn bucket_data(&self, user: &str, bucket: &str) -> Vec<BucketRecord> {
        let (user, bucket) = (user.to_owned(), bucket.to_owned());
        let query = BucketQuery { items: usize::MAX, min_ts: None, max_ts: None, descending: false };
        let records = self.hub.store.ask(|reply| Op::ReadBucket { user, bucket, query, reply }).await.flatten();
        records
            .unwrap_or_default()
            .into_iter()
            .map(|r| BucketRecord { ts: r.ts, value: r.value, device: r.device })
            .collect()
    }

    /// Every endpoint call the devices of a user made, oldest first.
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// let calls = server.endpoint_calls("user1").await;
    /// # }
    /// ```
    pub async fn endpoint_calls(&self, user: &str) -> Vec<EndpointCall> {
        let user = user.to_owned();
        self.hub
            .store
            .ask(|reply| Op::ListEndpointCalls { user, reply })
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|c| EndpointCall { ts: c.ts, device: c.device, endpoint: c.endpoint, data: c.data })
            .collect()
    }

    /// Stops accepting, sends DISCONNECT to every device, waits for connections to close and
    /// for the database to be closed (so a new server can open the same `data_dir`).
    ///
    /// ```no_run
    /// # async fn f(server: thinger_server::Server) {
    /// server.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while self.hub.connected() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Closing the database also ends the task that relays its events.
        self.hub.store.shutdown().await;
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(3), task).await.is_err() {
                tracing::warn!("a server task did not stop in time");
            }
        }
        tracing::info!("thinger-server stopped");
    }
}

fn into_reply(r: Result<vocab::RawReply, DeviceError>) -> Result<DeviceReply, DeviceError> {
    let r = r?;
    if r.ok {
        Ok(DeviceReply { code: r.code, payload: r.payload })
    } else {
        Err(DeviceError::Failed { code: r.code, message: util::error_message(r.payload.as_ref()) })
    }
}
