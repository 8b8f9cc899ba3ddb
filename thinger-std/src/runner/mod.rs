//! The run loop: connect, drive the core session over the transport, back off, reconnect.
//!
//! Ownership: the [`Runner`] owns everything that outlives a connection (settings, handlers,
//! the offline queue, subscriptions, waiting calls). For each connection it creates a fresh
//! core `Session` that borrows the credential strings and the handlers from the runner, and
//! an arena (`typed_arena`) for the subscription strings of that connection; session and
//! arena are dropped when the connection ends, so nothing grows across reconnects and
//! nothing is leaked. Subscriptions are re-registered on every new session and the core
//! opens them right after authentication.
//!
//! The adapter only moves bytes and time: every protocol decision is the session's.

mod connection;
mod convert;
mod driver;
mod handlers;
mod link;
mod session;
mod subscriptions;

use thinger_core::backoff::Reconnect;
use tokio::sync::{broadcast, mpsc, watch};

use crate::backoff::Backoff;
use crate::command::{Command, Settings};
use crate::event::{ClientEvent, Status};
use crate::queue::OfflineQueue;
use crate::resources::Handler;
use crate::transport;

use connection::{Outcome, serve};
use driver::Driver;
use handlers::LastValue;
use session::Clock;

/// Drives one client's connection: made by [`ClientBuilder::build`](crate::ClientBuilder::build).
///
/// [`Runner::run`] returns a future that is not `Send` (the core session keeps its handlers
/// as `dyn Resource` trait objects): await it where you are (e.g. at the end of `main`),
/// inside a `tokio::task::LocalSet` (many runners on one thread, as a gateway does), or let
/// [`ClientBuilder::spawn`](crate::ClientBuilder::spawn) give it a thread of its own.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let (client, runner) = thinger_std::Client::builder("user", "device", "credential").build()?;
/// tokio::select! {
///     _ = runner.run() => {}
///     _ = tokio::signal::ctrl_c() => client.shutdown().await,
/// }
/// # Ok(()) }
/// ```
pub struct Runner {
    settings: Settings,
    handlers: Vec<(String, Handler)>,
    driver: Driver,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("address", &self.settings.target.address()).finish_non_exhaustive()
    }
}

impl Runner {
    pub(crate) fn new(
        settings: Settings,
        handlers: Vec<(String, Handler)>,
        cmd_rx: mpsc::Receiver<Command>,
        events: broadcast::Sender<ClientEvent>,
        status: watch::Sender<Status>,
        queue: OfflineQueue,
    ) -> Runner {
        let driver = Driver::new(cmd_rx, events, status, queue);
        Runner { settings, handlers, driver }
    }

    /// Connects, serves the device, and reconnects with backoff until the client is shut
    /// down or every [`Client`](crate::Client) handle is dropped.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let server = thinger_server::Server::start(thinger_server::ServerConfig::local()).await.unwrap();
    /// let (client, runner) = thinger_std::Client::builder("user1", "dev1", "secret")
    ///     .host("127.0.0.1")
    ///     .port(server.tcp_addr().port())
    ///     .transport(thinger_std::Transport::Tcp)
    ///     .build()
    ///     .unwrap();
    /// let stopper = async {
    ///     client.connected().await.unwrap();
    ///     client.shutdown().await;
    /// };
    /// // `run` ends once the client is shut down.
    /// tokio::join!(runner.run(), stopper);
    /// assert_eq!(client.status(), thinger_std::Status::Stopped);
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub async fn run(self) {
        let Runner { settings, mut handlers, mut driver } = self;
        let clock = Clock { start: tokio::time::Instant::now() };
        let lasts: Vec<Option<LastValue>> = handlers
            .iter()
            .map(|(_, h)| match h {
                Handler::Async(a) => Some(a.last_handle()),
                Handler::Sync(_) => None,
            })
            .collect();
        let paths: Vec<String> = handlers.iter().map(|(p, _)| p.clone()).collect();
        let address = settings.target.address();
        let mut reconnect = Reconnect::new(settings.backoff.core(), settings.healthy_after);
        loop {
            if driver.stop {
                break;
            }
            driver.set_status(Status::Connecting);
            driver.emit(ClientEvent::Connecting { address: address.clone(), attempt: reconnect.failures() });
            let Some(result) = driver.service_while(transport::connect(&settings.target)).await else { break };
            match result {
                Err(e) => {
                    tracing::warn!("connecting to {address}: {e}");
                    driver.emit(ClientEvent::ConnectFailed(e));
                }
                Ok(mut conn) => {
                    driver.stats.connections += 1;
                    let ended = serve(&settings, &mut handlers, &lasts, &paths, &mut driver, &mut conn, &clock).await;
                    if let Some(at) = ended.authenticated {
                        reconnect.connected(at);
                    }
                    reconnect.disconnected(clock.now());
                    match ended.outcome {
                        Outcome::AuthRefused => {}
                        Outcome::Ended(reason) => {
                            tracing::info!("disconnected from {address}: {reason}");
                            driver.emit(ClientEvent::Disconnected { reason, detail: ended.detail });
                        }
                    }
                }
            }
            if driver.stop {
                break;
            }
            driver.set_status(Status::Disconnected);
            let delay = reconnect.next_delay(Backoff::random());
            driver.emit(ClientEvent::Backoff { attempt: reconnect.failures(), delay });
            if driver.service_while(tokio::time::sleep(delay)).await.is_none() {
                break;
            }
        }
        driver.finish();
    }
}
