//! `thinger-server`: a local IOTMP server with a Thinger.io-style REST API.
//!
//! ```text
//! cargo run -p thinger-server -- --allow-any
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use thinger_server::{Limits, Server, ServerConfig, TlsMode};
use tracing_subscriber::EnvFilter;

/// Local IOTMP server (TCP, TLS, WebSocket) with a Thinger.io-style REST API.
///
/// Devices connect with IOTMP on --tcp-port (plain), --tls-port (TLS) or
/// ws://HOST:HTTP_PORT/iotmp (WebSocket). The REST API is on --http-port, e.g.
/// `curl http://127.0.0.1:8080/v1/users/USER/devices`. Logs: RUST_LOG=debug for more.
///
/// Other commands (each with --help): `ota` pushes firmware; `terminal DEVICE` attaches
/// this terminal to a device's shell; `proxy DEVICE --to HOST:PORT` tunnels a local port
/// through a device; `fs get|put` transfers files; all through a running server's API.
#[derive(Parser, Debug)]
#[command(name = "thinger-server", version)]
struct Args {
    /// Address to listen on (0.0.0.0 to accept devices from the network).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port of plain IOTMP over TCP (0 = any free port).
    #[arg(long, default_value_t = thinger_server::DEFAULT_TCP_PORT)]
    tcp_port: u16,
    /// Port of IOTMP over TLS (0 = any free port).
    #[arg(long, default_value_t = thinger_server::DEFAULT_TLS_PORT)]
    tls_port: u16,
    /// Port of the REST API and of WebSocket IOTMP at /iotmp (0 = any free port).
    #[arg(long, default_value_t = thinger_server::DEFAULT_HTTP_PORT)]
    http_port: u16,
    /// Port of HTTPS: the REST API and wss://HOST/iotmp, with the TLS certificate
    /// [default: 443 as root, else 8443; 0 = any free port].
    #[arg(long)]
    https_port: Option<u16>,
    /// Accept any user/device/credential.
    #[arg(long)]
    allow_any: bool,
    /// TOML file of allowed devices: [[device]] tables with user, device, credential.
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// No TLS listener.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_name"])]
    no_tls: bool,
    /// TLS certificate chain (PEM); needs --tls-key. Without it a CA is generated.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra name (DNS or IP) for the generated server certificate; repeatable.
    #[arg(long = "tls-name", value_name = "NAME")]
    tls_name: Vec<String>,
    /// Where to write the generated CA certificate [default: DATA_DIR/ca.pem, or
    /// thinger-server-ca.pem in the temporary directory].
    #[arg(long, value_name = "FILE")]
    ca_out: Option<PathBuf>,
    /// Keep buckets, properties and the endpoint log in a database in this directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on the REST API.
    #[arg(long, value_name = "TOKEN", env = "THINGER_SERVER_TOKEN")]
    token: Option<String>,
    /// Largest IOTMP frame accepted from a device, in bytes.
    #[arg(long, default_value_t = thinger_server::DEFAULT_MAX_FRAME_SIZE)]
    max_frame_size: usize,
    /// Largest frame sent to a device; bigger REST requests and property values get 413.
    #[arg(long, default_value_t = thinger_server::DEFAULT_DEVICE_FRAME_LIMIT)]
    device_frame_limit: usize,
    /// Largest REST request body in bytes (413 beyond).
    #[arg(long, default_value_t = Limits::default().max_body_size)]
    max_body_size: usize,
    /// Most devices connected at once.
    #[arg(long, default_value_t = 10_000)]
    max_devices: usize,
    /// Seconds the REST API waits for a device's reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    device_timeout: f64,
    /// Keep-alive (seconds) assumed for devices whose CONNECT has none.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    keepalive: f64,
}

fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{name} must be a non-negative number of seconds"))
}

fn config(args: Args) -> Result<ServerConfig, String> {
    let tls = if args.no_tls {
        TlsMode::Off
    } else if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        TlsMode::Files { cert, key }
    } else {
        TlsMode::Generate { names: args.tls_name }
    };
    let ca_out = match (&tls, args.ca_out) {
        (TlsMode::Generate { .. }, Some(path)) => Some(path),
        (TlsMode::Generate { .. }, None) => Some(match &args.data_dir {
            Some(dir) => dir.join("ca.pem"),
            None => std::env::temp_dir().join("thinger-server-ca.pem"),
        }),
        _ => None,
    };
    if let (Some(dir), Some(_)) = (&args.data_dir, &ca_out) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    Ok(ServerConfig {
        bind: args.bind,
        tcp_port: args.tcp_port,
        tls_port: args.tls_port,
        http_port: args.http_port,
        https_port: args.https_port.unwrap_or(ServerConfig::default().https_port),
        credentials: Vec::new(),
        credentials_file: args.credentials,
        allow_any: args.allow_any,
        tls,
        ca_out,
        data_dir: args.data_dir,
        max_frame_size: args.max_frame_size,
        max_devices: args.max_devices,
        api_token: args.token,
        device_timeout: seconds("device-timeout", args.device_timeout)?,
        keepalive: seconds("keepalive", args.keepalive)?,
        limits: Limits {
            device_frame_limit: args.device_frame_limit,
            max_body_size: args.max_body_size,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr, so stdout carries only the addresses printed below.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match std::env::args_os().nth(1).as_ref().and_then(|a| a.to_str()) {
        Some("ota") => return thinger_server::ota::cli(std::env::args_os().skip(1)).await,
        Some("terminal") => return thinger_server::remote::terminal_cli(std::env::args_os().skip(1)).await,
        Some("proxy") => return thinger_server::remote::proxy_cli(std::env::args_os().skip(1)).await,
        Some("fs") => return thinger_server::remote::fs_cli(std::env::args_os().skip(1)).await,
        _ => {}
    }
    let args = Args::parse();
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("thinger-server: {e}");
            return ExitCode::from(2);
        }
    };
    let ca_out = config.ca_out.clone();
    let server = match Server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("thinger-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("IOTMP over TCP  {}", server.tcp_addr());
    if let Some(addr) = server.tls_addr() {
        println!("IOTMP over TLS  {addr}");
    }
    println!("WebSocket IOTMP {}", server.ws_url());
    println!("REST API        http://{}", server.http_addr());
    if let (Some(addr), Some(wss)) = (server.https_addr(), server.wss_url()) {
        println!("HTTPS REST API  https://{addr}");
        println!("WebSocket (TLS) {wss}");
    }
    if let (Some(path), Some(_)) = (ca_out, server.ca_cert_pem()) {
        println!("CA certificate  {}", path.display());
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("thinger-server: cannot listen for Ctrl-C: {e}");
    }
    println!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}
