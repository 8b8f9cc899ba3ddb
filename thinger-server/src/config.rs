//! Server configuration: addresses, credentials, TLS, storage and limits.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thinger_core::pson::Value;

use crate::error::ServerError;
use crate::limits::Limits;

/// Default port of plain IOTMP over TCP (the Thinger.io port).
pub const DEFAULT_TCP_PORT: u16 = 25204;
/// Default port of IOTMP over TLS (the Thinger.io port).
pub const DEFAULT_TLS_PORT: u16 = 25206;
/// Default port of the REST API and of WebSocket IOTMP (`ws://HOST:8080/iotmp`).
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// Default port of HTTPS (REST and `wss://HOST/iotmp`) when not run as root; as root it is
/// 443, the port the official clients' WebSocket transport always uses.
pub const DEFAULT_HTTPS_PORT: u16 = 8443;

/// 443 when the process runs as root (it may bind it), else [`DEFAULT_HTTPS_PORT`].
fn default_https_port() -> u16 {
    let root = std::fs::read_to_string("/proc/self/status").ok().is_some_and(|s| {
        s.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0")
    });
    if root { 443 } else { DEFAULT_HTTPS_PORT }
}

/// Default largest IOTMP frame accepted from a device (256 KiB, as the official Linux client).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 256 * 1024;

/// One device allowed to connect: the three strings of its CONNECT frame.
///
/// ```
/// use thinger_server::Credential;
/// let c = Credential::new("user1", "dev1", "secret");
/// assert_eq!(c.device, "dev1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Credential {
    /// The account (user) the device belongs to.
    pub user: String,
    /// The device id.
    pub device: String,
    /// The device credential (its password).
    pub credential: String,
}

impl Credential {
    /// A credential from its three parts.
    ///
    /// ```
    /// let c = thinger_server::Credential::new("u", "d", "c");
    /// assert_eq!((c.user.as_str(), c.credential.as_str()), ("u", "c"));
    /// ```
    pub fn new(user: impl Into<String>, device: impl Into<String>, credential: impl Into<String>) -> Self {
        Credential { user: user.into(), device: device.into(), credential: credential.into() }
    }
}

/// A REST API token that sees only its own user's devices and data.
///
/// ```
/// let t = thinger_server::UserToken::new("user1", "s3cret-token");
/// assert_eq!(t.user, "user1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserToken {
    /// The user whose routes (`/v*/users/{user}/…`) the token opens.
    pub user: String,
    /// The bearer token.
    pub token: String,
}

impl UserToken {
    /// A token for one user.
    ///
    /// ```
    /// assert_eq!(thinger_server::UserToken::new("u", "t").token, "t");
    /// ```
    pub fn new(user: impl Into<String>, token: impl Into<String>) -> Self {
        UserToken { user: user.into(), token: token.into() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    device: Vec<Credential>,
    #[serde(default)]
    token: Vec<UserToken>,
}

/// Parses the `[[token]]` tables (user, token) of a credentials file: per-user REST tokens.
///
/// ```
/// let text = "[[token]]\nuser = 'user1'\ntoken = 'abc'\n";
/// let list = thinger_server::parse_user_tokens(text).unwrap();
/// assert_eq!(list, vec![thinger_server::UserToken::new("user1", "abc")]);
/// ```
pub fn parse_user_tokens(text: &str) -> Result<Vec<UserToken>, ServerError> {
    let file: CredentialsFile =
        toml::from_str(text).map_err(|e| ServerError::Config(format!("credentials file: {e}")))?;
    Ok(file.token)
}

/// Parses a credentials file: a TOML document with one `[[device]]` table per device.
///
/// ```
/// let text = r#"
/// [[device]]
/// user = "user1"
/// device = "dev1"
/// credential = "secret"
/// "#;
/// let list = thinger_server::parse_credentials(text).unwrap();
/// assert_eq!(list, vec![thinger_server::Credential::new("user1", "dev1", "secret")]);
/// assert!(thinger_server::parse_credentials("[[device]]\nuser = 1").is_err());
/// ```
pub fn parse_credentials(text: &str) -> Result<Vec<Credential>, ServerError> {
    let file: CredentialsFile =
        toml::from_str(text).map_err(|e| ServerError::Config(format!("credentials file: {e}")))?;
    Ok(file.device)
}

/// Reads and parses a credentials file (see [`parse_credentials`]).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("thinger-cred-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("devices.toml");
/// std::fs::write(&path, "[[device]]\nuser='u'\ndevice='d'\ncredential='c'\n").unwrap();
/// assert_eq!(thinger_server::load_credentials(&path).unwrap().len(), 1);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn load_credentials(path: &Path) -> Result<Vec<Credential>, ServerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Config(format!("cannot read credentials file {}: {e}", path.display())))?;
    parse_credentials(&text)
}

/// How the TLS listener gets its certificate.
///
/// ```
/// use thinger_server::TlsMode;
/// let mode = TlsMode::Generate { names: vec!["my-laptop.local".into()] };
/// assert!(mode.is_enabled());
/// assert!(!TlsMode::Off.is_enabled());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS listener.
    Off,
    /// Generate a CA and a server certificate at start (ECDSA P-256) for `localhost`,
    /// `127.0.0.1`, `::1` and these extra names (DNS names or IP addresses).
    Generate {
        /// Extra names for the server certificate.
        names: Vec<String>,
    },
    /// Use a certificate chain and a private key from PEM files.
    Files {
        /// PEM file with the certificate chain, leaf first.
        cert: PathBuf,
        /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

impl TlsMode {
    /// Whether a TLS listener is started.
    ///
    /// ```
    /// assert!(thinger_server::TlsMode::Generate { names: vec![] }.is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        !matches!(self, TlsMode::Off)
    }
}

/// An endpoint a device may call (cloud call 4) and what it answers.
///
/// ```
/// use thinger_server::EndpointConfig;
/// let e = EndpointConfig::new("email").response(thinger_core::pson!({"sent": true}));
/// assert_eq!(e.name, "email");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Endpoint id, as the device names it.
    pub name: String,
    /// Payload of the OK reply, if any.
    pub response: Option<Value>,
}

impl EndpointConfig {
    /// An endpoint that answers OK with no payload.
    ///
    /// ```
    /// assert!(thinger_server::EndpointConfig::new("hook").response.is_none());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        EndpointConfig { name: name.into(), response: None }
    }

    /// Sets the payload returned to the device.
    ///
    /// ```
    /// let e = thinger_server::EndpointConfig::new("hook").response(42u32.into());
    /// assert_eq!(e.response, Some(42u32.into()));
    /// ```
    pub fn response(mut self, value: Value) -> Self {
        self.response = Some(value);
        self
    }
}

/// Everything the server needs to start.
///
/// Fields are public; the builder methods are shortcuts. [`ServerConfig::default`] is what
/// the binary uses (fixed ports, credentials required); [`ServerConfig::local`] is what tests
/// and examples use (ephemeral ports, any credentials accepted).
///
/// ```
/// use std::time::Duration;
/// use thinger_server::{ServerConfig, TlsMode};
///
/// let config = ServerConfig::local()
///     .allow_any(false)
///     .credential("user1", "dev1", "secret")
///     .api_token("letmein")
///     .device_timeout(Duration::from_secs(2))
///     .tls(TlsMode::Off);
/// assert_eq!(config.tcp_port, 0);
/// assert_eq!(config.credentials.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address every listener binds to.
    pub bind: IpAddr,
    /// Port of plain IOTMP (0 = ephemeral).
    pub tcp_port: u16,
    /// Port of IOTMP over TLS (0 = ephemeral); unused when [`ServerConfig::tls`] is `Off`.
    pub tls_port: u16,
    /// Port of the REST API and of WebSocket IOTMP at `/iotmp` (0 = ephemeral).
    pub http_port: u16,
    /// Port of HTTPS: the REST API and WebSocket IOTMP (`wss://HOST/iotmp`) with the TLS
    /// certificate (0 = ephemeral); unused when [`ServerConfig::tls`] is `Off`.
    pub https_port: u16,
    /// Devices allowed to connect.
    pub credentials: Vec<Credential>,
    /// A TOML credentials file read at start (added to [`ServerConfig::credentials`]).
    pub credentials_file: Option<PathBuf>,
    /// Accept any user/device/credential (a device's first connection registers it).
    pub allow_any: bool,
    /// TLS listener mode.
    pub tls: TlsMode,
    /// Where to write the generated CA certificate (PEM), for clients to trust.
    pub ca_out: Option<PathBuf>,
    /// Directory of the embedded database; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Largest IOTMP frame accepted from a device; a bigger one is refused by its header.
    pub max_frame_size: usize,
    /// Most devices connected at once; more are refused at CONNECT.
    pub max_devices: usize,
    /// Per-user REST tokens (also read from the credentials file's `[[token]]` tables).
    pub user_tokens: Vec<UserToken>,
    /// Admin bearer token the REST API requires (it opens every user's routes); `None` and no
    /// [`ServerConfig::user_tokens`] leave the API open.
    pub api_token: Option<String>,
    /// How long a REST request or a device-to-device call waits for a device's reply.
    pub device_timeout: Duration,
    /// Keep-alive interval assumed when a device's CONNECT has no `ka` (the device is dropped
    /// after 1.15 × this of silence).
    pub keepalive: Duration,
    /// How long a new connection may take to send its CONNECT (and finish TLS).
    pub auth_timeout: Duration,
    /// Sizes, timeouts and caps that protect the server and its devices from hostile or
    /// careless clients (see `docs/server.md`, "Security").
    pub limits: Limits,
    /// Endpoints devices may call. Empty: every endpoint name is accepted (and recorded);
    /// otherwise unknown ones get ERROR 404.
    pub endpoints: Vec<EndpointConfig>,
}

impl Default for ServerConfig {
    /// 127.0.0.1, the Thinger.io ports (25204, 25206) and 8080 for HTTP, credentials
    /// required, TLS with a generated CA, in-memory storage.
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            tcp_port: DEFAULT_TCP_PORT,
            tls_port: DEFAULT_TLS_PORT,
            http_port: DEFAULT_HTTP_PORT,
            https_port: default_https_port(),
            credentials: Vec::new(),
            credentials_file: None,
            allow_any: false,
            tls: TlsMode::Generate { names: Vec::new() },
            ca_out: None,
            data_dir: None,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            limits: Limits::default(),
            max_devices: 10_000,
            api_token: None,
            user_tokens: Vec::new(),
            device_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            endpoints: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The defaults of [`ServerConfig::default`].
    ///
    /// ```
    /// assert_eq!(thinger_server::ServerConfig::new().tcp_port, 25204);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// For tests and examples: 127.0.0.1, ephemeral ports, any credentials, TLS with a
    /// generated CA, in-memory storage.
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::local();
    /// assert!(c.allow_any);
    /// assert_eq!((c.tcp_port, c.tls_port, c.http_port, c.https_port), (0, 0, 0, 0));
    /// ```
    pub fn local() -> Self {
        ServerConfig { tcp_port: 0, tls_port: 0, http_port: 0, https_port: 0, allow_any: true, ..Self::default() }
    }

    /// Sets the bind address.
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::local().bind([0, 0, 0, 0].into());
    /// assert!(c.bind.is_unspecified());
    /// ```
    pub fn bind(mut self, addr: IpAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Sets the TCP, TLS and HTTP ports (0 = ephemeral).
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::local().ports(1, 2, 3);
    /// assert_eq!((c.tcp_port, c.tls_port, c.http_port), (1, 2, 3));
    /// ```
    pub fn ports(mut self, tcp: u16, tls: u16, http: u16) -> Self {
        self.tcp_port = tcp;
        self.tls_port = tls;
        self.http_port = http;
        self
    }

    /// Sets the HTTPS port (REST and `wss://HOST/iotmp`; 0 = ephemeral).
    ///
    /// ```
    /// assert_eq!(thinger_server::ServerConfig::local().https_port(443).https_port, 443);
    /// ```
    pub fn https_port(mut self, port: u16) -> Self {
        self.https_port = port;
        self
    }

    /// Accept any credentials (or not).
    ///
    /// ```
    /// assert!(!thinger_server::ServerConfig::local().allow_any(false).allow_any);
    /// ```
    pub fn allow_any(mut self, yes: bool) -> Self {
        self.allow_any = yes;
        self
    }

    /// Adds one allowed device.
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::new().credential("u", "d", "c");
    /// assert_eq!(c.credentials[0].user, "u");
    /// ```
    pub fn credential(mut self, user: &str, device: &str, credential: &str) -> Self {
        self.credentials.push(Credential::new(user, device, credential));
        self
    }

    /// Reads allowed devices from a TOML file at start (see [`parse_credentials`]).
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::new().credentials_file("devices.toml");
    /// assert!(c.credentials_file.is_some());
    /// ```
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Sets the TLS mode.
    ///
    /// ```
    /// use thinger_server::{ServerConfig, TlsMode};
    /// assert_eq!(ServerConfig::local().tls(TlsMode::Off).tls, TlsMode::Off);
    /// ```
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.tls = mode;
        self
    }

    /// Writes the generated CA certificate to this file.
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::local().ca_out("/tmp/ca.pem");
    /// assert!(c.ca_out.is_some());
    /// ```
    pub fn ca_out(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_out = Some(path.into());
        self
    }

    /// Keeps buckets, properties and the endpoint log in an embedded database in `dir`.
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::local().data_dir("/tmp/thinger-data");
    /// assert!(c.data_dir.is_some());
    /// ```
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets the largest frame accepted from a device.
    ///
    /// ```
    /// assert_eq!(thinger_server::ServerConfig::local().max_frame_size(1024).max_frame_size, 1024);
    /// ```
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets the most devices connected at once.
    ///
    /// ```
    /// assert_eq!(thinger_server::ServerConfig::local().max_devices(5).max_devices, 5);
    /// ```
    pub fn max_devices(mut self, n: usize) -> Self {
        self.max_devices = n;
        self
    }

    /// Requires `Authorization: Bearer <token>` (or `?authorization=<token>`) on the REST API.
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::local().api_token("t0k3n");
    /// assert_eq!(c.api_token.as_deref(), Some("t0k3n"));
    /// ```
    pub fn api_token(mut self, token: impl Into<String>) -> Self {
        self.api_token = Some(token.into());
        self
    }

    /// Adds a per-user REST token: it opens only `user`'s routes.
    ///
    /// ```
    /// let c = thinger_server::ServerConfig::local().user_token("user1", "t1");
    /// assert_eq!(c.user_tokens[0].user, "user1");
    /// ```
    pub fn user_token(mut self, user: &str, token: &str) -> Self {
        self.user_tokens.push(UserToken::new(user, token));
        self
    }

    /// Sets how long the server waits for a device's reply.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = thinger_server::ServerConfig::local().device_timeout(Duration::from_millis(500));
    /// assert_eq!(c.device_timeout, Duration::from_millis(500));
    /// ```
    pub fn device_timeout(mut self, timeout: Duration) -> Self {
        self.device_timeout = timeout;
        self
    }

    /// Sets the keep-alive assumed for devices that send no `ka` in CONNECT.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = thinger_server::ServerConfig::local().keepalive(Duration::from_millis(300));
    /// assert_eq!(c.keepalive, Duration::from_millis(300));
    /// ```
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self
    }

    /// Sets the limits (sizes, timeouts, caps).
    ///
    /// ```
    /// use thinger_server::{Limits, ServerConfig};
    /// let c = ServerConfig::local().limits(Limits { device_frame_limit: 4096, ..Limits::default() });
    /// assert_eq!(c.limits.device_frame_limit, 4096);
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how long a new connection may take to authenticate.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = thinger_server::ServerConfig::local().auth_timeout(Duration::from_secs(1));
    /// assert_eq!(c.auth_timeout, Duration::from_secs(1));
    /// ```
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.auth_timeout = timeout;
        self
    }

    /// Declares an endpoint (once any is declared, calls to others get ERROR 404).
    ///
    /// ```
    /// use thinger_server::{EndpointConfig, ServerConfig};
    /// let c = ServerConfig::local().endpoint(EndpointConfig::new("email"));
    /// assert_eq!(c.endpoints.len(), 1);
    /// ```
    pub fn endpoint(mut self, endpoint: EndpointConfig) -> Self {
        self.endpoints.push(endpoint);
        self
    }
}
