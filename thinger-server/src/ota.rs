//! Pushing firmware to a device over its `$ota` resources, as the official tools do:
//! `options` → `begin` → `write` chunks → `end` → `reboot`.
//!
//! [`push`] drives one update over a [`DeviceLink`]: [`LocalDevice`] calls the device
//! through a [`Server`] in the same process, [`RestDevice`] through the REST API of a running
//! server (or any Thinger.io-style API). When the link drops mid-transfer, `push` waits for
//! the device to come back and sends `begin` again; a device running this SDK answers with
//! the offset it already has, and the push continues from there.
//!
//! `thinger-server ota FILE --user U --device D` is the command-line form (see
//! [`cli`]), with a progress bar. The route `POST
//! /v3/users/{user}/devices/{device}/resources/$ota/write` takes the chunk as
//! `application/octet-stream`, as the VS Code extension sends it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::Digest;
use thinger_core::pson::Value;

use crate::hub::Hub;
use crate::vocab::DeviceRequest;
use crate::{DeviceError, Server};

/// A failure of one call over a [`DeviceLink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// The device is offline or did not answer: worth waiting and resuming.
    Transient(String),
    /// Anything else (unknown device, bad request, refused by the server).
    Fatal(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Transient(m) | LinkError::Fatal(m) => f.write_str(m),
        }
    }
}

impl From<DeviceError> for LinkError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::Offline | DeviceError::Timeout | DeviceError::Unavailable => {
                LinkError::Transient(e.to_string())
            }
            other => LinkError::Fatal(other.to_string()),
        }
    }
}

/// How the pusher reaches a device's resources.
pub trait DeviceLink {
    /// Runs `resource` with `input` and returns the device's output (null when none).
    fn call(&mut self, resource: &str, input: Option<Value>) -> impl Future<Output = Result<Value, LinkError>>;
}

/// A device connected to a [`Server`] in this process.
#[derive(Clone, Copy)]
pub struct LocalDevice<'a> {
    /// The server.
    pub server: &'a Server,
    /// The device's user.
    pub user: &'a str,
    /// The device id.
    pub device: &'a str,
}

impl DeviceLink for LocalDevice<'_> {
    async fn call(&mut self, resource: &str, input: Option<Value>) -> Result<Value, LinkError> {
        let reply = self.server.run_resource(self.user, self.device, resource, input).await?;
        Ok(reply.payload.unwrap_or_default())
    }
}

/// What to push and how.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The `firmware` name sent in `begin` (identifies the image for resuming).
    pub firmware: String,
    /// The `version` sent in `begin`.
    pub version: String,
    /// Chunk size; `None` uses the device's `block_size` (the official behaviour). Never
    /// more than `block_size`.
    pub chunk_size: Option<usize>,
    /// Also send a SHA-256 when the device announces support for it.
    pub sha256: bool,
    /// Call `$ota/reboot` after a successful `end`.
    pub reboot: bool,
    /// How long to wait for a dropped device to come back before giving up.
    pub resume_timeout: Duration,
    /// How many times a dropped link is resumed.
    pub max_resumes: u32,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            firmware: "firmware".into(),
            version: String::new(),
            chunk_size: None,
            sha256: true,
            reboot: true,
            resume_timeout: Duration::from_secs(60),
            max_resumes: 10,
        }
    }
}

/// Why a push failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// The device has OTA disabled.
    Disabled,
    /// The device refused a step (`{"success": false, "error": …}`).
    Refused {
        /// `begin`, `write`, `end` or `reboot`.
        step: &'static str,
        /// The device's reason.
        error: String,
    },
    /// The link failed for good (or did not come back in time).
    Link(LinkError),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Disabled => f.write_str("the device has OTA disabled"),
            PushError::Refused { step, error } => write!(f, "the device refused {step}: {error}"),
            PushError::Link(e) => write!(f, "link failed: {e}"),
        }
    }
}

impl std::error::Error for PushError {}

impl From<LinkError> for PushError {
    fn from(e: LinkError) -> Self {
        PushError::Link(e)
    }
}

/// What a successful push did.
#[derive(Debug, Clone, PartialEq)]
pub struct PushReport {
    /// Image size.
    pub size: usize,
    /// Chunk size used.
    pub chunk_size: usize,
    /// Bytes actually sent (more than `size` only if chunks were re-sent after a drop).
    pub sent: usize,
    /// The offsets the device resumed at (the first `begin` included when it was not 0).
    pub resumed_at: Vec<usize>,
    /// Time from `options` to the end of `end`.
    pub elapsed: Duration,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn number(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn refused(step: &'static str, out: &Value) -> PushError {
    let error = out.get("error").and_then(Value::as_str).unwrap_or("no reason given").to_owned();
    PushError::Refused { step, error }
}

/// Pushes `image` over `link`; `progress` gets the device's offset after every chunk.
pub async fn push<L: DeviceLink>(
    link: &mut L,
    image: &[u8],
    options: &PushOptions,
    mut progress: impl FnMut(usize),
) -> Result<PushReport, PushError> {
    let started = Instant::now();
    let device = link.call("$ota/options", None).await?;
    if !flag(&device, "enabled") {
        return Err(PushError::Disabled);
    }
    let block = number(&device, "block_size").map_or(8192, |b| b as usize).max(1);
    let chunk_size = options.chunk_size.unwrap_or(block).clamp(1, block);
    let mut begin = vec![
        ("firmware".to_owned(), Value::from(options.firmware.as_str())),
        ("version".to_owned(), Value::from(options.version.as_str())),
        ("size".to_owned(), Value::from(image.len() as u64)),
        ("chunk_size".to_owned(), Value::from(chunk_size as u64)),
        ("checksum".to_owned(), Value::from(hex(&md5::Md5::digest(image)).as_str())),
        // Continue an interrupted transfer of this image (devices without resume ignore it).
        ("resume".to_owned(), Value::Bool(true)),
    ];
    if options.sha256 && flag(&device, "sha256") {
        begin.push(("sha256".to_owned(), Value::from(hex(&sha2::Sha256::digest(image)).as_str())));
    }
    let begin = Value::Map(begin);

    let mut report =
        PushReport { size: image.len(), chunk_size, sent: 0, resumed_at: Vec::new(), elapsed: Duration::ZERO };
    let mut offset = start(link, &begin, image.len()).await?;
    if offset > 0 {
        report.resumed_at.push(offset);
    }
    progress(offset);
    let mut resumes = 0;
    while offset < image.len() {
        let end = (offset + chunk_size).min(image.len());
        let chunk = image.get(offset..end).unwrap_or_default();
        match link.call("$ota/write", Some(Value::Bytes(chunk.to_vec()))).await {
            Ok(out) if flag(&out, "success") => {
                report.sent += chunk.len();
                offset = number(&out, "offset").map_or(end, |o| o as usize);
                progress(offset);
            }
            Ok(out) => return Err(refused("write", &out)),
            Err(LinkError::Transient(e)) if resumes < options.max_resumes => {
                resumes += 1;
                tracing::info!(error = %e, offset, "OTA link dropped; waiting for the device to resume");
                offset = resume(link, &begin, image.len(), options.resume_timeout).await?;
                report.resumed_at.push(offset);
                progress(offset);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let out = link.call("$ota/end", None).await?;
    if !flag(&out, "success") {
        return Err(refused("end", &out));
    }
    report.elapsed = started.elapsed();
    if options.reboot {
        link.call("$ota/reboot", None).await?;
    }
    Ok(report)
}

/// `begin`; the offset the device continues at (0 for a device that does not report one).
async fn start<L: DeviceLink>(link: &mut L, begin: &Value, size: usize) -> Result<usize, PushError> {
    let out = link.call("$ota/begin", Some(begin.clone())).await?;
    if !flag(&out, "success") {
        return Err(refused("begin", &out));
    }
    Ok(number(&out, "offset").map_or(0, |o| o as usize).min(size))
}

/// Waits until the device answers again, then sends `begin` for the same image.
async fn resume<L: DeviceLink>(
    link: &mut L,
    begin: &Value,
    size: usize,
    timeout: Duration,
) -> Result<usize, PushError> {
    let deadline = Instant::now() + timeout;
    loop {
        match start(link, begin, size).await {
            Err(PushError::Link(LinkError::Transient(e))) => {
                if Instant::now() >= deadline {
                    return Err(PushError::Link(LinkError::Transient(format!("device did not come back: {e}"))));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

/// `POST …/resources/$ota/write` with the chunk as the raw body (what the VS Code extension
/// sends); other `$ota` resources take JSON on the generic resource route.
pub(crate) async fn write_route(
    State(hub): State<Arc<Hub>>,
    Path((user, device)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let request = DeviceRequest::Run { resource: "$ota/write".into(), input: Some(Value::Bytes(body.to_vec())) };
    match hub.request(&user, &device, request).await {
        Ok(r) if r.ok => Json(r.payload.unwrap_or_default()).into_response(),
        Ok(r) => {
            let e = DeviceError::Failed {
                code: r.code,
                message: r.payload.as_ref().and_then(|p| p.get("error")).and_then(Value::as_str).map(str::to_owned),
            };
            error_response(&e)
        }
        Err(e) => error_response(&e),
    }
}

fn error_response(e: &DeviceError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

mod rest;
pub use rest::RestDevice;
#[cfg(feature = "cli")]
pub use rest::cli;
