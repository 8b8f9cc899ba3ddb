//! Chunked file transfers of the `fs` extension, on channels the server opens, with the
//! shapes of the official IOTMP-Linux client:
//!
//! * `$fs/download/:session`, params `{path, window_size}`: the device answers
//!   `{chunk_size}`, then sends the file as bytes chunks, never more than `window_size`
//!   bytes ahead of the server's acks (`{ack: n, bytes: len}` per chunk received); the
//!   server stops the stream once it has the whole file.
//! * `$fs/upload/:session` (only when writable), params `{path, size, overwrite}`: the
//!   device answers `{chunk_size}`, writes the chunks to a temporary file next to the
//!   target and acks `{ack: n, bytes: since the last ack}` about every 1 % (clamped to
//!   [chunk size, 1 MiB]) and on the last byte; the file replaces the target only when all
//!   `size` bytes arrived.
//!
//! Paths are checked exactly as for the inline operations (roots, traversal, symlinks).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use thinger_core::resource::HandlerError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::channel::{Channel, ChannelRequest, channel};
use crate::resources::Resources;

/// The chunk size announced (smaller when the session's frames are).
pub const CHUNK_SIZE: usize = 64 * 1024;
/// The window used when the server names none, and the largest accepted.
const DEFAULT_WINDOW: u64 = 1024 * 1024;
const MAX_WINDOW: u64 = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct DownloadParams {
    path: String,
    #[serde(default)]
    window_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct UploadParams {
    path: String,
    size: u64,
    #[serde(default)]
    overwrite: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Ack {
    ack: u64,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct Opened {
    chunk_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

/// A path checked and resolved inside its root (by the `fs` module).
pub(super) struct Resolved {
    pub(super) full: std::path::PathBuf,
    pub(super) is_root: bool,
    pub(super) dir: bool,
}

/// Checks and resolves a requested path (`true`: it must exist).
pub(super) type Resolve = Box<dyn Fn(&str, bool) -> Result<Resolved, HandlerError> + Send + Sync>;

/// What the transfers need of the installed `fs` extension.
pub(super) struct Fs {
    pub(super) resolve: Resolve,
    pub(super) max_upload: u64,
}

pub(super) fn install(fs: &Arc<Fs>, writable: bool, thing: &mut Resources) {
    let dl = fs.clone();
    thing.entry("$fs/download/:session").set_channel(channel(move |request| {
        let fs = dl.clone();
        async move { download(request, &fs).await }
    }));
    if writable {
        let ul = fs.clone();
        thing.entry("$fs/upload/:session").set_channel(channel(move |request| {
            let fs = ul.clone();
            async move { upload(request, &fs).await }
        }));
    }
}

async fn refuse(request: ChannelRequest, op: &str, path: &str, e: HandlerError) {
    tracing::warn!(target: "thinger::ext::fs", op, path, code = e.code, reason = e.message, "server request refused");
    let _ = request.reject(e).await;
}

async fn download(request: ChannelRequest, fs: &Fs) {
    let Ok(params) = request.params_as::<DownloadParams>() else {
        return refuse(request, "download", "", HandlerError::new(400, "expected {path, window_size}")).await;
    };
    let path = params.path.as_str();
    let target = match (fs.resolve)(path, true) {
        Ok(t) => t,
        Err(e) => return refuse(request, "download", path, e).await,
    };
    let file = match tokio::fs::File::open(&target.full).await {
        Ok(f) => f,
        Err(_) => return refuse(request, "download", path, HandlerError::new(404, "cannot open file")).await,
    };
    let size = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return refuse(request, "download", path, HandlerError::new(400, "not a file")).await,
    };
    let window = params.window_size.unwrap_or(DEFAULT_WINDOW).clamp(1, MAX_WINDOW);
    let chunk = CHUNK_SIZE.min(request.max_chunk());
    let opened = Opened { chunk_size: chunk as u64, size: Some(size) };
    let Ok(ch) = request.accept(Some(opened)).await else { return };
    tracing::info!(target: "thinger::ext::fs", op = "download", path, size, "server request");
    match send_file(ch, file, size, chunk, window).await {
        Ok(()) => tracing::info!(target: "thinger::ext::fs", op = "download", path, size, "transfer done"),
        Err(why) => tracing::warn!(target: "thinger::ext::fs", op = "download", path, why, "transfer ended"),
    }
}

async fn send_file(
    ch: Channel,
    mut file: tokio::fs::File,
    size: u64,
    chunk: usize,
    window: u64,
) -> Result<(), &'static str> {
    let (tx, mut rx) = ch.split();
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut buf = vec![0u8; chunk];
    while sent < size {
        while sent.saturating_sub(acked) >= window {
            let data = rx.recv().await.ok_or("stopped by the server")?;
            if let Ok(a) = data.deserialize::<Ack>() {
                acked = acked.saturating_add(a.bytes);
            }
        }
        let n = file.read(&mut buf).await.map_err(|_| "read error")?;
        if n == 0 {
            tx.close().await;
            return Err("file shrank while sent");
        }
        let n = n.min(usize::try_from(size - sent).unwrap_or(n));
        tx.send_bytes(buf.get(..n).unwrap_or(&[])).await.map_err(|_| "disconnected")?;
        sent += n as u64;
    }
    // The server stops the stream once it has every byte; acks until then are ignored.
    while rx.recv().await.is_some() {}
    Ok(())
}

static UPLOADS: AtomicU64 = AtomicU64::new(0);

async fn upload(request: ChannelRequest, fs: &Fs) {
    let Ok(params) = request.params_as::<UploadParams>() else {
        return refuse(request, "upload", "", HandlerError::new(400, "expected {path, size, overwrite}")).await;
    };
    let path = params.path.as_str();
    let target = match (fs.resolve)(path, false) {
        Ok(t) => t,
        Err(e) => return refuse(request, "upload", path, e).await,
    };
    if target.is_root || target.dir {
        return refuse(request, "upload", path, HandlerError::new(400, "not a file path")).await;
    }
    if params.size > fs.max_upload {
        return refuse(request, "upload", path, HandlerError::new(413, "file larger than the upload limit")).await;
    }
    if let Ok(meta) = target.full.symlink_metadata() {
        if meta.is_dir() {
            return refuse(request, "upload", path, HandlerError::new(409, "a directory exists at this path")).await;
        }
        if !params.overwrite.unwrap_or(true) {
            return refuse(request, "upload", path, HandlerError::new(409, "file already exists (overwrite=false)"))
                .await;
        }
    }
    if let Some(parent) = target.full.parent()
        && tokio::fs::create_dir_all(parent).await.is_err()
    {
        return refuse(request, "upload", path, HandlerError::new(500, "cannot create the directory")).await;
    }
    let name = target.full.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let unique = UPLOADS.fetch_add(1, Ordering::Relaxed);
    let temp = target.full.with_file_name(format!(".{name}.thinger-{}-{unique}.part", std::process::id()));
    let file = match tokio::fs::OpenOptions::new().write(true).create_new(true).open(&temp).await {
        Ok(f) => f,
        Err(_) => return refuse(request, "upload", path, HandlerError::new(500, "cannot create the file")).await,
    };
    let chunk = CHUNK_SIZE.min(request.max_chunk());
    let Ok(ch) = request.accept(Some(Opened { chunk_size: chunk as u64, size: None })).await else {
        let _ = tokio::fs::remove_file(&temp).await;
        return;
    };
    tracing::info!(target: "thinger::ext::fs", op = "upload", path, size = params.size, "server request");
    let result = receive_file(ch, file, params.size, chunk, (&temp, &target.full)).await;
    match result {
        Ok(()) => tracing::info!(target: "thinger::ext::fs", op = "upload", path, size = params.size, "transfer done"),
        Err(why) => {
            let _ = tokio::fs::remove_file(&temp).await;
            tracing::warn!(target: "thinger::ext::fs", op = "upload", path, why, "transfer ended, file not written");
        }
    }
}

/// Receives `size` bytes into `file` (at `paths.0`) and moves it to `paths.1` before the
/// last ack.
async fn receive_file(
    ch: Channel,
    mut file: tokio::fs::File,
    size: u64,
    chunk: usize,
    paths: (&std::path::Path, &std::path::Path),
) -> Result<(), &'static str> {
    if size == 0 {
        return tokio::fs::rename(paths.0, paths.1).await.map_err(|_| "rename failed");
    }
    let (tx, mut rx) = ch.split();
    let every = (size / 100).clamp(chunk as u64, 1024 * 1024);
    let (mut got, mut unacked, mut acks) = (0u64, 0u64, 0u64);
    while got < size {
        let data = rx.recv().await.ok_or("stopped by the server before the end")?;
        let Some(bytes) = data.bytes() else { continue };
        got = got.saturating_add(bytes.len() as u64);
        if got > size {
            tx.close().await;
            return Err("more bytes than announced");
        }
        file.write_all(bytes).await.map_err(|_| "write error")?;
        unacked += bytes.len() as u64;
        if unacked >= every || got == size {
            if got == size {
                // In place before the last ack: the server reports success after it.
                file.sync_all().await.map_err(|_| "sync error")?;
                tokio::fs::rename(paths.0, paths.1).await.map_err(|_| "rename failed")?;
            }
            acks += 1;
            tx.send(&Ack { ack: acks, bytes: unacked }).await.map_err(|_| "disconnected")?;
            unacked = 0;
        }
    }
    Ok(())
}
