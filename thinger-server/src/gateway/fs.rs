//! Large file transfers over the official chunked streams with an ack window:
//! `$fs/download/:session` (the device sends chunks, the server acks `{ack, bytes}`) and
//! `$fs/upload/:session` (the server sends chunks, the device acks). Memory per transfer is
//! bounded by the window, whatever the file's size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use sha2::Digest;
use thinger_core::pson::Value;

use super::{Gateway, session_name};
use crate::error::DeviceError;
use crate::rest::{ApiError, ApiResult};
use crate::stream::{StreamReceiver, StreamSender};
use crate::vocab::DeviceRequest;

/// Unacknowledged bytes the server lets a device send on a download (its `window_size`).
pub(crate) const DOWNLOAD_WINDOW: usize = 1024 * 1024;
/// Unacknowledged bytes the server sends on an upload. More than the official device's
/// largest ack threshold (1 MiB), so acks always come.
pub(crate) const UPLOAD_WINDOW: usize = 2 * 1024 * 1024;
/// Chunk size when the device does not announce one (the official default).
const DEFAULT_CHUNK: usize = 64 * 1024;

fn ack(n: u64, bytes: usize) -> Value {
    Value::Map(vec![("ack".to_owned(), Value::Uint(n)), ("bytes".to_owned(), Value::Uint(bytes as u64))])
}

/// A path from the URL, refused when it cannot mean a file (the device checks its roots).
fn file_path(path: &str) -> Result<String, ApiError> {
    if path.is_empty() || path.ends_with('/') || path.len() > 4096 || path.contains('\0') {
        return Err(ApiError::new(400, "the path must name a file"));
    }
    Ok(path.to_owned())
}

/// Waits for the next value, at most `timeout`.
async fn next(rx: &mut StreamReceiver, timeout: Duration) -> Result<Value, ApiError> {
    match tokio::time::timeout(timeout, rx.recv()).await {
        Err(_) => Err(DeviceError::Timeout.into()),
        Ok(r) => r.map_err(ApiError::from),
    }
}

/// `GET …/fs/download/{*path}`: the file's bytes, with its length.
pub(super) async fn download(
    State(gw): State<Gateway>,
    Path((user, device, path)): Path<(String, String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> ApiResult {
    let path = file_path(&path)?;
    let info = gw
        .hub
        .request(&user, &device, DeviceRequest::Run { resource: format!("$fs/info/{path}"), input: None })
        .await?;
    if !info.ok {
        let message = crate::util::error_message(info.payload.as_ref());
        return Err(DeviceError::Failed { code: info.code, message }.into());
    }
    let info = info.payload.unwrap_or_default();
    if info.get("type").and_then(Value::as_str).is_some_and(|t| t != "file") {
        return Err(ApiError::new(400, "not a regular file"));
    }
    let size = info
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::new(502, "the device did not give the file's size"))?;
    let params = Value::Map(vec![
        ("path".to_owned(), Value::Str(path.clone())),
        ("window_size".to_owned(), Value::Uint(DOWNLOAD_WINDOW as u64)),
    ]);
    let stream = gw.hub_open(&user, &device, &format!("$fs/download/{}", session_name()), params).await?;
    tracing::info!(%peer, %user, %device, %path, size, "file download started");
    let timeout = gw.hub.config.device_timeout.saturating_mul(3);
    let (tx, rx) = stream.split();
    struct Dl {
        tx: StreamSender,
        rx: StreamReceiver,
        got: u64,
        acks: u64,
    }
    let state = Dl { tx, rx, got: 0, acks: 0 };
    let body = futures_util::stream::unfold(Some(state), move |state| async move {
        let mut s = state?;
        if s.got >= size {
            return None;
        }
        let chunk = loop {
            match tokio::time::timeout(timeout, s.rx.recv()).await {
                Err(_) => return Some((Err(std::io::Error::other("the device stopped sending")), None)),
                Ok(Err(e)) => return Some((Err(std::io::Error::other(e.to_string())), None)),
                Ok(Ok(Value::Bytes(b))) => break b,
                Ok(Ok(_)) => continue,
            }
        };
        s.got = s.got.saturating_add(chunk.len() as u64);
        if s.got > size {
            return Some((Err(std::io::Error::other("the device sent more than the file's size")), None));
        }
        s.acks += 1;
        let _ = s.tx.send(ack(s.acks, chunk.len())).await;
        // After the last chunk the state is dropped: STOP_STREAM ends the session.
        let next = if s.got >= size { None } else { Some(s) };
        Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), next))
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(size));
    Ok(response)
}

/// `PUT …/fs/upload/{*path}?overwrite=true`: streams the body (its `Content-Length` is the
/// file's size) to the device; answers `{"success", "path", "size", "sha256"}` once the
/// device acknowledged every byte.
pub(super) async fn upload(
    State(gw): State<Gateway>,
    Path((user, device, path)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let path = file_path(&path)?;
    let size = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| ApiError::new(411, "Content-Length (the file's size) is required"))?;
    if size == 0 {
        return Err(ApiError::new(400, "an empty file has nothing to stream: use the $fs/put resource"));
    }
    let overwrite = query.get("overwrite").is_none_or(|v| v != "false");
    let params = Value::Map(vec![
        ("path".to_owned(), Value::Str(path.clone())),
        ("size".to_owned(), Value::Uint(size)),
        ("overwrite".to_owned(), Value::Bool(overwrite)),
    ]);
    let stream = gw.hub_open(&user, &device, &format!("$fs/upload/{}", session_name()), params).await?;
    tracing::info!(%peer, %user, %device, %path, size, "file upload started");
    let announced = stream
        .opened_params()
        .or(stream.opened())
        .and_then(|v| v.get("chunk_size"))
        .and_then(Value::as_u64)
        .map_or(DEFAULT_CHUNK, |c| usize::try_from(c).unwrap_or(DEFAULT_CHUNK));
    let (tx, mut rx) = stream.split();
    let chunk_size = announced.clamp(1, tx.max_chunk());
    let timeout = gw.hub.config.device_timeout.saturating_mul(3);
    let body_timeout = gw.hub.config.limits.http_body_timeout;
    let mut body = body.into_data_stream();
    let mut hash = sha2::Sha256::new();
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut pending: Vec<u8> = Vec::new();
    let mut body_done = false;
    while acked < size {
        // Send what the window allows.
        while !body_done && sent.saturating_sub(acked) < UPLOAD_WINDOW as u64 {
            if pending.len() >= chunk_size {
                let part: Vec<u8> = pending.drain(..chunk_size).collect();
                sent = sent.saturating_add(part.len() as u64);
                tx.send(Value::Bytes(part)).await?;
                continue;
            }
            match tokio::time::timeout(body_timeout, body.next()).await {
                Err(_) => return Err(ApiError::new(408, "request body not received in time")),
                Ok(None) => body_done = true,
                Ok(Some(Err(e))) => return Err(ApiError::new(400, format!("cannot read the request body: {e}"))),
                Ok(Some(Ok(b))) => {
                    hash.update(&b);
                    pending.extend_from_slice(&b);
                }
            }
        }
        if body_done {
            while !pending.is_empty() {
                let n = chunk_size.min(pending.len());
                let part: Vec<u8> = pending.drain(..n).collect();
                sent = sent.saturating_add(n as u64);
                tx.send(Value::Bytes(part)).await?;
            }
        }
        if sent > size {
            return Err(ApiError::new(400, "the body is longer than its Content-Length"));
        }
        if body_done && sent < size {
            return Err(ApiError::new(400, "the body is shorter than its Content-Length"));
        }
        // Wait for an ack.
        let v = next(&mut rx, timeout).await.map_err(|e| match e.0 {
            StatusCode::GONE => ApiError::new(502, "the device stopped the upload"),
            _ => e,
        })?;
        if let Some(bytes) = v.get("bytes").and_then(Value::as_u64) {
            acked = acked.saturating_add(bytes);
        }
    }
    drop(tx);
    drop(rx);
    let sha256: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    tracing::info!(%peer, %user, %device, %path, size, "file upload finished");
    Ok(Json(json!({ "success": true, "path": path, "size": size, "sha256": sha256 })).into_response())
}
