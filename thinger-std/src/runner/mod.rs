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

mod buffer;
mod channels;
mod connection;
mod convert;
mod driver;
mod handlers;
mod link;
mod pool;
mod session;
#[cfg(test)]
mod sizes;
mod subscriptions;

use thinger_core::backoff::Reconnect;
use tokio::sync::oneshot;

use crate::announce::Announcer;
use crate::backoff::Backoff;
use crate::capacity::{Capacity, tables};
use crate::command::{CommandRx, Settings};
use crate::event::{ClientEvent, Status};
use crate::queue::OfflineQueue;
use crate::resources::Handler;
use crate::transport;

use connection::{Outcome, serve};
use driver::Driver;
use handlers::last_values;
use session::Clock;

/// Drives one client's connection: made by [`ClientBuilder::build`](crate::ClientBuilder::build).
///
/// [`Runner::run`] is a `Send` future: `tokio::spawn` it on any runtime, as many as you
/// like (a gateway of virtual devices). The connection itself runs on a small pool of
/// threads (one per core) because the core session keeps its handlers as `dyn Resource`
/// trait objects, which stay on one thread; `run` waits for it, and dropping `run` stops
/// it. [`Runner::run_local`] is the same loop in place, on the caller's thread (for a
/// `LocalSet`, or a current-thread runtime with paused time).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let (client, runner) = thinger_std::Client::builder("user", "device", "credential").build()?;
/// let task = tokio::spawn(runner.run());
/// tokio::signal::ctrl_c().await?;
/// client.shutdown().await;
/// task.await?;
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
        cmd_rx: CommandRx,
        events: Announcer,
        queue: OfflineQueue,
    ) -> Runner {
        let driver = Driver::new(cmd_rx, events, queue);
        Runner { settings, handlers, driver }
    }

    /// Connects, serves the device, and reconnects with backoff until the client is shut
    /// down or every [`Client`](crate::Client) handle is dropped. The future is `Send`; the
    /// connection runs on the runner pool (see [`Runner`]) and stops when this future is
    /// dropped.
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
    /// let task = tokio::spawn(runner.run());
    /// client.connected().await.unwrap();
    /// client.shutdown().await;
    /// task.await.unwrap();
    /// assert_eq!(client.status(), thinger_std::Status::Stopped);
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub fn run(self) -> impl std::future::Future<Output = ()> + Send + 'static {
        // The pool task says "done" through it; dropping this future (the receiver) tells
        // the pool task to stop.
        let (mut done_tx, done_rx) = oneshot::channel::<()>();
        let job: pool::Job = Box::new(move || {
            // Boxed as it is, so that the task holds the runner once (an `async` block that
            // moved `self` into `run_local` would keep both).
            let running = Box::pin(self.run_local());
            Box::pin(async move {
                tokio::select! {
                    () = running => {}
                    () = done_tx.closed() => {}
                }
                let _ = done_tx.send(());
            })
        });
        let spawned = pool::spawn(job);
        async move {
            match spawned {
                Ok(()) => {
                    let _ = done_rx.await;
                }
                Err(_) => tracing::error!("no runner thread could be started: the client does not run"),
            }
        }
    }

    /// [`Runner::run`] in place, on the caller's thread: the future is not `Send` (await it
    /// from `main`, in a `tokio::task::LocalSet`, or with `tokio::join!`).
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
    /// tokio::join!(runner.run_local(), stopper);
    /// assert_eq!(client.status(), thinger_std::Status::Stopped);
    /// # server.shutdown().await;
    /// # });
    /// ```
    pub fn run_local(self) -> impl std::future::Future<Output = ()> + 'static {
        // Every log line of this client names its device (a gateway runs thousands).
        let span = tracing::info_span!("thinger", user = %self.settings.user, device = %self.settings.device);
        tracing::Instrument::instrument(self.reconnect_loop(), span)
    }

    /// Connects, serves, backs off and connects again until the client is stopped.
    ///
    /// Not an `async fn`: one would keep the runner twice in its state (the argument and
    /// the fields taken out of it). The connection's future is boxed, sized for the
    /// session tables the client was built with, and freed when the connection ends; so is
    /// the connect future.
    fn reconnect_loop(self) -> impl std::future::Future<Output = ()> + 'static {
        let Runner { settings, mut handlers, mut driver } = self;
        async move {
            let clock = Clock { start: tokio::time::Instant::now() };
            let lasts = last_values(&handlers);
            let paths: Vec<String> = handlers.iter().map(|(p, _)| p.clone()).collect();
            let address = settings.target.address();
            let mut reconnect = Reconnect::new(settings.backoff.core(), settings.healthy_after);
            loop {
                if driver.stop {
                    break;
                }
                driver.transition(
                    Status::Connecting,
                    ClientEvent::Connecting { address: address.clone(), attempt: reconnect.failures() },
                );
                let Some(result) = driver.service_while(Box::pin(transport::connect(&settings.target))).await else {
                    break;
                };
                match result {
                    Err(e) => {
                        tracing::warn!("connecting to {address}: {e}");
                        driver.emit(ClientEvent::ConnectFailed(e));
                    }
                    Ok(mut conn) => {
                        driver.stats.connections += 1;
                        let (s, h, l, p, d, c, k) =
                            (&settings, &mut handlers, &lasts, &paths, &mut driver, &mut conn, &clock);
                        let ended = match settings.capacity {
                            Capacity::Standard => {
                                use tables::{STANDARD_E, STANDARD_P, STANDARD_R, STANDARD_S};
                                Box::pin(serve::<STANDARD_R, STANDARD_S, STANDARD_P, STANDARD_E>(s, h, l, p, d, c, k))
                                    .await
                            }
                            Capacity::Compact => {
                                use tables::{COMPACT_E, COMPACT_P, COMPACT_R, COMPACT_S};
                                Box::pin(serve::<COMPACT_R, COMPACT_S, COMPACT_P, COMPACT_E>(s, h, l, p, d, c, k)).await
                            }
                        };
                        if let Some(at) = ended.authenticated {
                            reconnect.connected(at);
                        }
                        reconnect.disconnected(clock.now());
                        match ended.outcome {
                            Outcome::AuthRefused => {}
                            Outcome::Ended(reason) => {
                                tracing::info!("disconnected from {address}: {reason}");
                                driver.transition(
                                    Status::Disconnected,
                                    ClientEvent::Disconnected { reason, detail: ended.detail },
                                );
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
                // Boxed like the connect future: the loop holds neither between uses.
                if driver.service_while(Box::pin(tokio::time::sleep(delay))).await.is_none() {
                    break;
                }
            }
            driver.finish();
        }
    }
}
