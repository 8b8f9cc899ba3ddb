//! The pusher over a REST API (`RestDevice`) and the `thinger-server ota` command.

#[cfg(feature = "cli")]
use std::ffi::OsString;
#[cfg(feature = "cli")]
use std::path::PathBuf;
#[cfg(feature = "cli")]
use std::process::ExitCode;
use std::time::Duration;

use axum::body::Bytes;
#[cfg(feature = "cli")]
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use thinger_core::pson::Value;

use super::{DeviceLink, LinkError};
#[cfg(feature = "cli")]
use super::{PushOptions, push};

/// A device reached through a Thinger.io-style REST API over plain HTTP (the local
/// server's), with `Authorization: Bearer` when a token is given.
#[derive(Debug)]
pub struct RestDevice {
    authority: String,
    prefix: String,
    token: Option<String>,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl RestDevice {
    /// The device `user`/`device` on the API at `url` (`http://host:port`).
    ///
    /// ```
    /// let d = thinger_server::ota::RestDevice::new("http://127.0.0.1:8080", "u", "d").unwrap();
    /// assert!(thinger_server::ota::RestDevice::new("https://example.com", "u", "d").is_err());
    /// ```
    pub fn new(url: &str, user: &str, device: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or("only http:// URLs are supported")?;
        let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err("the URL has no host".into());
        }
        let base = base.trim_end_matches('/');
        let base = if base.is_empty() { String::new() } else { format!("/{base}") };
        Ok(RestDevice {
            authority: authority.to_owned(),
            prefix: format!("{base}/v3/users/{user}/devices/{device}/resources/"),
            token: None,
            timeout: Duration::from_secs(30),
            sender: None,
        })
    }

    /// Sends `Authorization: Bearer token`.
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, LinkError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(&self.authority)
                .await
                .map_err(|e| LinkError::Transient(format!("cannot connect to {}: {e}", self.authority)))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| LinkError::Transient(format!("HTTP handshake failed: {e}")))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| LinkError::Transient("no connection".into()))
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), LinkError> {
        let timeout = self.timeout;
        let sender = self.sender().await?;
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.sender = None;
                Err(LinkError::Transient(format!("HTTP request failed: {e:?}")))
            }
            Err(_) => {
                self.sender = None;
                Err(LinkError::Transient("HTTP request timed out".into()))
            }
        }
    }
}

impl DeviceLink for RestDevice {
    async fn call(&mut self, resource: &str, input: Option<Value>) -> Result<Value, LinkError> {
        let uri = format!("{}{resource}", self.prefix);
        let (method, content_type, body) = match input {
            None if resource.ends_with("/options") => (Method::GET, None, Bytes::new()),
            None => (Method::POST, None, Bytes::new()),
            Some(Value::Bytes(b)) => (Method::POST, Some("application/octet-stream"), Bytes::from(b)),
            Some(v) => {
                let json = serde_json::to_vec(&v).map_err(|e| LinkError::Fatal(format!("cannot encode input: {e}")))?;
                (Method::POST, Some("application/json"), Bytes::from(json))
            }
        };
        let mut request = Request::builder().method(method).uri(uri).header(hyper::header::HOST, &self.authority);
        if let Some(ct) = content_type {
            request = request.header(hyper::header::CONTENT_TYPE, ct);
        }
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body)).map_err(|e| LinkError::Fatal(format!("bad request: {e}")))?;
        let (status, body) = self.send(request).await?;
        let value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice::<Value>(&body).map_err(|e| LinkError::Fatal(format!("bad JSON reply: {e}")))?
        };
        if status.is_success() {
            return Ok(value);
        }
        let message = value.get("error").and_then(Value::as_str).unwrap_or(status.as_str()).to_owned();
        let message = format!("{resource}: {message} ({status})");
        match status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => Err(LinkError::Transient(message)),
            _ => Err(LinkError::Fatal(message)),
        }
    }
}

/// Pushes a firmware image to a device through a server's REST API, as the official tools
/// do (options, begin, write chunks, end, reboot), resuming after dropped links.
#[cfg(feature = "cli")]
#[derive(Parser, Debug)]
#[command(name = "thinger-server ota")]
struct OtaArgs {
    /// The image to push.
    file: PathBuf,
    /// The device's user.
    #[arg(long)]
    user: String,
    /// The device id.
    #[arg(long)]
    device: String,
    /// The REST API.
    #[arg(long, default_value_t = format!("http://127.0.0.1:{}", crate::DEFAULT_HTTP_PORT))]
    server: String,
    /// Bearer token of the REST API.
    #[arg(long, env = "THINGER_SERVER_TOKEN")]
    token: Option<String>,
    /// Firmware name sent in begin [default: the file name].
    #[arg(long)]
    firmware: Option<String>,
    /// Version sent in begin.
    #[arg(long, default_value = "")]
    version: String,
    /// Chunk size in bytes [default: the device's block_size].
    #[arg(long)]
    chunk_size: Option<usize>,
    /// Do not reboot the device after a successful update.
    #[arg(long)]
    no_reboot: bool,
    /// Seconds to wait for a dropped device to come back.
    #[arg(long, default_value_t = 120)]
    resume_timeout: u64,
}

/// `thinger-server ota …`: `args` starts with the `ota` word.
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub async fn cli(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    // Shown as the program name in usage and errors.
    let argv = std::iter::once(OsString::from("thinger-server ota")).chain(args.into_iter().skip(1));
    let args = match OtaArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let image = match std::fs::read(&args.file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("thinger-server ota: cannot read {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut link = match RestDevice::new(&args.server, &args.user, &args.device) {
        Ok(l) => l.token(args.token),
        Err(e) => {
            eprintln!("thinger-server ota: --server: {e}");
            return ExitCode::from(2);
        }
    };
    let firmware = args.firmware.unwrap_or_else(|| {
        args.file.file_name().map_or_else(|| "firmware".into(), |n| n.to_string_lossy().into_owned())
    });
    let options = PushOptions {
        firmware,
        version: args.version,
        chunk_size: args.chunk_size,
        reboot: !args.no_reboot,
        resume_timeout: Duration::from_secs(args.resume_timeout),
        ..PushOptions::default()
    };
    let bar = indicatif::ProgressBar::new(image.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = push(&mut link, &image, &options, |offset| bar.set_position(offset as u64)).await;
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            let secs = report.elapsed.as_secs_f64().max(1e-9);
            println!(
                "pushed {} bytes in {:.2} s ({:.0} KiB/s, chunks of {} bytes{})",
                report.size,
                secs,
                report.size as f64 / 1024.0 / secs,
                report.chunk_size,
                if report.resumed_at.is_empty() {
                    String::new()
                } else {
                    format!(", resumed at {:?}", report.resumed_at)
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("thinger-server ota: {e}");
            ExitCode::FAILURE
        }
    }
}
