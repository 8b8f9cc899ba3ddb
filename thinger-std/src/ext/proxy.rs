//! The `proxy` gateway extension: TCP tunnels over channels the server opens on
//! `$proxy/:session`, as the official IOTMP-Linux client has it.
//!
//! `START_STREAM $proxy/<session>` carries `{protocol: "tcp", address, port, secure}`; the
//! device connects to `address:port` and moves bytes both ways until either side ends (the
//! target closing stops the stream; the server's `STOP_STREAM` closes the connection).
//!
//! Only targets on the allow-list are reached (the address compared as written, host names
//! without regard to case, before any name resolution); anything else is refused with 403
//! and logged. `secure` (TLS from the device to the target) is refused with 501, other
//! protocols with 400. At most [`ProxyConfig::max_sessions`] tunnels at once.
//!
//! ```
//! use thinger_std::ext::proxy::ProxyConfig;
//! use thinger_std::resources::Resources;
//! let mut thing = Resources::new();
//! ProxyConfig::allow([("127.0.0.1", 8080)]).install(&mut thing);
//! assert!(thing.contains("$proxy/:session"));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use thinger_core::resource::HandlerError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::channel::{Channel, ChannelRequest, channel};
use crate::resources::Resources;

/// Tunnels at once, by default.
pub const DEFAULT_MAX_SESSIONS: usize = 8;

/// Which targets a tunnel may reach.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    allow: Vec<(String, u16)>,
    max_sessions: usize,
    connect_timeout: Duration,
}

#[derive(Debug, Deserialize)]
struct Target {
    #[serde(default)]
    protocol: Option<String>,
    address: String,
    port: u16,
    #[serde(default)]
    secure: bool,
}

impl ProxyConfig {
    /// Tunnels only to these `(host, port)` targets.
    pub fn allow<I, S>(targets: I) -> Self
    where
        I: IntoIterator<Item = (S, u16)>,
        S: Into<String>,
    {
        ProxyConfig {
            allow: targets.into_iter().map(|(h, p)| (h.into(), p)).collect(),
            max_sessions: DEFAULT_MAX_SESSIONS,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Tunnels at once; more are refused with 503.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// How long connecting to a target may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether `address:port` is on the allow-list.
    ///
    /// ```
    /// let c = thinger_std::ext::proxy::ProxyConfig::allow([("Example.local", 22)]);
    /// assert!(c.allows("example.local", 22));
    /// assert!(!c.allows("example.local", 23));
    /// assert!(!c.allows("10.0.0.1", 22));
    /// ```
    pub fn allows(&self, address: &str, port: u16) -> bool {
        self.allow.iter().any(|(h, p)| *p == port && h.eq_ignore_ascii_case(address))
    }

    /// Adds `$proxy/:session` to `thing`.
    pub fn install(self, thing: &mut Resources) {
        let config = Arc::new(self);
        let open = Arc::new(AtomicUsize::new(0));
        thing.entry("$proxy/:session").set_channel(channel(move |request| {
            let config = config.clone();
            let open = open.clone();
            async move { serve(request, &config, &open).await }
        }));
    }
}

/// Counts a tunnel while it lives.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve(request: ChannelRequest, config: &ProxyConfig, open: &AtomicUsize) {
    let session = request.session().to_owned();
    let target: Target = match request.params_as() {
        Ok(t) => t,
        Err(_) => {
            tracing::warn!("proxy {session}: refused, no target in the request");
            let _ = request.reject(HandlerError::new(400, "expected {protocol, address, port}")).await;
            return;
        }
    };
    let name = format!("{}:{}", target.address, target.port);
    let refuse = if target.protocol.as_deref().is_some_and(|p| !p.eq_ignore_ascii_case("tcp")) {
        Some(HandlerError::new(400, "only tcp is supported"))
    } else if target.secure {
        Some(HandlerError::new(501, "secure targets are not supported"))
    } else if !config.allows(&target.address, target.port) {
        Some(HandlerError::new(403, "target not allowed"))
    } else {
        None
    };
    if let Some(e) = refuse {
        tracing::warn!("proxy {session}: refused {name}: {}", e.message);
        let _ = request.reject(e).await;
        return;
    }
    if open.fetch_add(1, Ordering::AcqRel) >= config.max_sessions {
        open.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!("proxy {session}: refused {name}: too many tunnels");
        let _ = request.reject(HandlerError::new(503, "too many tunnels")).await;
        return;
    }
    let _slot = Slot(open);
    let connected =
        tokio::time::timeout(config.connect_timeout, TcpStream::connect((target.address.as_str(), target.port))).await;
    let stream = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!("proxy {session}: {name} unreachable: {e}");
            let _ = request.reject(HandlerError::new(502, "target unreachable")).await;
            return;
        }
        Err(_) => {
            tracing::warn!("proxy {session}: {name} connect timed out");
            let _ = request.reject(HandlerError::new(504, "target connect timed out")).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let Ok(channel) = request.accept(None::<()>).await else { return };
    tracing::info!("proxy {session}: tunnel to {name} open");
    let (up, down) = tunnel(channel, stream).await;
    tracing::info!("proxy {session}: tunnel to {name} closed ({up} bytes up, {down} down)");
}

/// Moves bytes until either side ends; returns (bytes to the target, bytes from it).
async fn tunnel(channel: Channel, stream: TcpStream) -> (u64, u64) {
    let (mut rd, mut wr) = stream.into_split();
    let (sender, mut receiver) = channel.split();
    let (mut up, mut down) = (0u64, 0u64);
    let mut buf = vec![0u8; sender.max_chunk().min(64 * 1024)];
    loop {
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    // The target closed: stop the stream.
                    sender.close().await;
                    break;
                }
                Ok(n) => {
                    down += n as u64;
                    if sender.send_bytes(buf.get(..n).unwrap_or(&[])).await.is_err() {
                        break;
                    }
                }
            },
            input = receiver.recv() => match input.as_ref().map(|d| d.bytes()) {
                Some(Some(bytes)) => {
                    up += bytes.len() as u64;
                    if wr.write_all(bytes).await.is_err() {
                        sender.close().await;
                        break;
                    }
                }
                Some(None) => {} // not bytes: ignored
                None => {
                    let _ = wr.shutdown().await;
                    break;
                }
            },
        }
    }
    (up, down)
}
