//! `thinger-server fs get|put`: large files over the device's chunked `$fs` streams.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use axum::body::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::Target;

/// File transfers with a device's `$fs` extension (paths are the device's, inside the
/// roots it allows).
#[derive(clap::Parser, Debug)]
#[command(name = "thinger-server fs")]
pub(super) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Downloads REMOTE from the device into LOCAL.
    Get {
        #[command(flatten)]
        target: Target,
        /// The file on the device.
        remote: String,
        /// Where to write it.
        local: PathBuf,
    },
    /// Uploads LOCAL to REMOTE on the device.
    Put {
        #[command(flatten)]
        target: Target,
        /// The file to send.
        local: PathBuf,
        /// Where the device writes it.
        remote: String,
        /// Fail if the file exists on the device.
        #[arg(long)]
        no_overwrite: bool,
    },
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

async fn send(target: &Target, request: Request<Body>) -> Result<hyper::Response<hyper::body::Incoming>, String> {
    let (authority, _) = target.authority()?;
    let stream =
        tokio::net::TcpStream::connect(&authority).await.map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(request).await.map_err(|e| format!("HTTP request failed: {e}"))
}

fn builder(target: &Target, method: Method, uri: String) -> Result<hyper::http::request::Builder, String> {
    let (authority, _) = target.authority()?;
    let mut b = Request::builder().method(method).uri(uri).header(hyper::header::HOST, authority);
    if let Some(t) = &target.token {
        b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    Ok(b)
}

/// The `{"error"}` of a failed response.
async fn failure(response: hyper::Response<hyper::body::Incoming>) -> String {
    let status = response.status();
    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|m| m.as_str()).map(str::to_owned));
    format!("{} ({status})", message.unwrap_or_else(|| "request failed".into()))
}

fn remote_path(remote: &str) -> String {
    remote.trim_start_matches('/').split('/').map(super::encode).collect::<Vec<_>>().join("/")
}

fn rate(bytes: u64, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    format!("{bytes} bytes in {secs:.2} s ({:.1} MiB/s)", bytes as f64 / 1_048_576.0 / secs)
}

pub(super) async fn run(args: Args) -> Result<(), String> {
    match args.command {
        Command::Get { target, remote, local } => {
            let uri = target.path(&format!("fs/download/{}", remote_path(&remote)))?;
            let request = builder(&target, Method::GET, uri)?
                .body(http_body_util::Empty::new().map_err(|e| match e {}).boxed())
                .map_err(|e| e.to_string())?;
            let started = Instant::now();
            let response = send(&target, request).await?;
            if !response.status().is_success() {
                return Err(failure(response).await);
            }
            let mut file =
                std::fs::File::create(&local).map_err(|e| format!("cannot create {}: {e}", local.display()))?;
            let mut body = response.into_body();
            let mut total = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("the download broke after {total} bytes: {e}"))?;
                if let Ok(data) = frame.into_data() {
                    file.write_all(&data).map_err(|e| format!("cannot write {}: {e}", local.display()))?;
                    total += data.len() as u64;
                }
            }
            println!("downloaded {}", rate(total, started));
            Ok(())
        }
        Command::Put { target, local, remote, no_overwrite } => {
            let mut file = std::fs::File::open(&local).map_err(|e| format!("cannot open {}: {e}", local.display()))?;
            let size = file.metadata().map_err(|e| e.to_string())?.len();
            let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let chunk = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                            if tx.blocking_send(Ok(Frame::data(chunk))).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            break;
                        }
                    }
                }
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
            let mut uri = target.path(&format!("fs/upload/{}", remote_path(&remote)))?;
            if no_overwrite {
                uri.push_str("?overwrite=false");
            }
            let request = builder(&target, Method::PUT, uri)?
                .header(hyper::header::CONTENT_LENGTH, size)
                .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
                .body(StreamBody::new(stream).boxed())
                .map_err(|e| e.to_string())?;
            let started = Instant::now();
            let response = send(&target, request).await?;
            if !response.status().is_success() {
                return Err(failure(response).await);
            }
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            let reply: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            println!(
                "uploaded {} sha256 {}",
                rate(size, started),
                reply.get("sha256").and_then(|v| v.as_str()).unwrap_or("?")
            );
            Ok(())
        }
    }
}
