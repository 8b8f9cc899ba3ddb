//! Shared helpers for the examples: where to connect (Thinger.io when credentials are in the
//! environment, otherwise a local `thinger-server` started in this process), logging, and
//! how long to run.
//!
//! ```
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! rt.block_on(async {
//!     let target = thinger_examples::Target::local("doc-device").await.unwrap();
//!     assert!(target.local.is_some());
//!     assert!(target.builder.address().starts_with("localhost:"));
//! });
//! ```

use std::time::Duration;

use thinger_server::{Server, ServerConfig};
use thinger_std::tls::TlsConfig;
use thinger_std::{Client, ClientBuilder};

/// The account the local server's devices belong to.
pub const LOCAL_USER: &str = "demo";

/// Where an example connects.
pub struct Target {
    /// A client builder for the device (resources still to be added).
    pub builder: ClientBuilder,
    /// The in-process server, when there are no credentials in the environment.
    pub local: Option<Local>,
}

/// A local server started by an example.
pub struct Local {
    /// The server.
    pub server: Server,
    /// The REST API base, e.g. `http://127.0.0.1:8080`.
    pub http: String,
    ca: String,
}

impl Local {
    /// A builder for another device `device` on this server (TLS with its CA).
    pub fn builder(&self, device: &str) -> Result<ClientBuilder, Box<dyn std::error::Error>> {
        let tls_port = self.server.tls_addr().ok_or("the local server has no TLS listener")?.port();
        Ok(Client::builder(LOCAL_USER, device, "demo-credential")
            .host("localhost")
            .port(tls_port)
            .tls(TlsConfig::new().with_ca_pem(&self.ca)?))
    }
}

impl Target {
    /// `THINGER_USER`, `THINGER_DEVICE` and `THINGER_CREDENTIAL` (and optionally
    /// `THINGER_HOST`, `THINGER_PORT`, `THINGER_TRANSPORT` and `THINGER_CA`) when set;
    /// otherwise a local server and device `device` of user [`LOCAL_USER`], over TLS with the
    /// server's generated CA.
    ///
    /// `THINGER_CA` is the path of a PEM file with the CA to trust instead of the public roots:
    /// the `thinger-server-ca.pem` a standalone `thinger-server` writes, for example.
    /// `THINGER_TRANSPORT=tcp` (with `THINGER_PORT=25204`) connects without TLS.
    pub async fn from_env_or_local(device: &str) -> Result<Target, Box<dyn std::error::Error>> {
        match ClientBuilder::from_env() {
            Some(builder) => Ok(Target { builder: with_env_ca(builder)?, local: None }),
            None => Target::local(device).await,
        }
    }

    /// Always a local server (see [`Target::from_env_or_local`]).
    pub async fn local(device: &str) -> Result<Target, Box<dyn std::error::Error>> {
        Target::local_with(device, ServerConfig::local()).await
    }

    /// A local server that keeps its data, its CA and its TLS key in `data_dir`, so the CA
    /// and the server's public-key pin stay the same from one run to the next.
    pub async fn local_in(device: &str, data_dir: &std::path::Path) -> Result<Target, Box<dyn std::error::Error>> {
        Target::local_with(device, ServerConfig::local().data_dir(data_dir)).await
    }

    async fn local_with(device: &str, config: ServerConfig) -> Result<Target, Box<dyn std::error::Error>> {
        let server = Server::start(config).await?;
        let ca = server.ca_cert_pem().ok_or("the local server has no generated CA")?;
        let http = format!("http://{}", server.http_addr());
        let local = Local { server, http, ca };
        let builder = local.builder(device)?;
        Ok(Target { builder, local: Some(local) })
    }
}

/// Trusts the CA in the PEM file named by `THINGER_CA`, when that variable is set.
fn with_env_ca(builder: ClientBuilder) -> Result<ClientBuilder, Box<dyn std::error::Error>> {
    let Some(path) = std::env::var_os("THINGER_CA").filter(|p| !p.is_empty()) else {
        return Ok(builder);
    };
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| format!("THINGER_CA={}: cannot read it: {e}", std::path::Path::new(&path).display()))?;
    let tls = TlsConfig::new()
        .with_ca_pem(&pem)
        .map_err(|e| format!("THINGER_CA={}: {e}", std::path::Path::new(&path).display()))?;
    Ok(builder.tls(tls))
}

/// Logs at `info` (or what `RUST_LOG` says) to stderr, in colour only when stderr is a
/// terminal (so a log piped to a file or a CI log has no escape codes).
///
/// ```
/// thinger_examples::init_logging();
/// ```
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,thinger_server=warn"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// How long to run: the seconds in environment variable `var` when set (for CI), else until
/// Ctrl-C.
///
/// ```
/// assert_eq!(thinger_examples::run_limit("THINGER_DOC_UNSET_VARIABLE"), None);
/// ```
pub fn run_limit(var: &str) -> Option<Duration> {
    std::env::var(var).ok().and_then(|s| s.trim().parse::<f64>().ok()).and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Waits for Ctrl-C, or for `limit` when given.
pub async fn wait_for_stop(limit: Option<Duration>) {
    let timer = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("\nCtrl-C: stopping"),
        _ = timer => println!("time is up: stopping"),
    }
}
