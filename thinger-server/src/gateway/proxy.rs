//! `$proxy/:session`: TCP tunnels through the device, as a WebSocket per tunnel or as a
//! loopback listener on the server whose every accepted connection is a tunnel.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::response::IntoResponse;
use serde_json::json;
use thinger_core::pson::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{Gateway, bridge, session_name};
use crate::hub::Hub;
use crate::rest::{ApiError, ApiResult, json_body, read_body};
use crate::stream::DeviceStream;

/// A listener opened by `POST …/proxy/listeners`.
struct Listener {
    user: String,
    device: String,
    listen: SocketAddr,
    target: (String, u16),
    task: JoinHandle<()>,
}

/// The open listeners, by id.
#[derive(Default)]
pub(super) struct Listeners {
    by_id: Mutex<BTreeMap<u64, Listener>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        let map = self.by_id.get_mut().unwrap_or_else(|p| p.into_inner());
        for l in map.values() {
            l.task.abort();
        }
    }
}

impl Listeners {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Listener>> {
        self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The official proxy parameters: `{protocol: "tcp", address, port, secure}`.
fn params(address: &str, port: u16, secure: bool) -> Value {
    Value::Map(vec![
        ("protocol".to_owned(), Value::Str("tcp".to_owned())),
        ("address".to_owned(), Value::Str(address.to_owned())),
        ("port".to_owned(), Value::Uint(u64::from(port))),
        ("secure".to_owned(), Value::Bool(secure)),
    ])
}

fn target(address: Option<&str>, port: Option<u64>) -> Result<(String, u16), ApiError> {
    let address =
        address.filter(|a| !a.is_empty() && a.len() <= 253).ok_or_else(|| ApiError::new(400, "address is required"))?;
    let port = port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| ApiError::new(400, "port must be 1 to 65535"))?;
    Ok((address.to_owned(), port))
}

/// `GET …/proxy?address=H&port=P`: WebSocket; BINARY frames are the tunnel's bytes.
pub(super) async fn websocket(
    State(gw): State<Gateway>,
    Path((user, device)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> ApiResult {
    let (response, on_upgrade) = bridge::upgrade(&mut request)?;
    let port = query.get("port").map(|p| p.parse::<u64>().unwrap_or(0));
    let (address, port) = target(query.get("address").map(String::as_str), port)?;
    let secure = query.get("secure").is_some_and(|s| s == "true");
    let session = session_name();
    let stream = gw.hub_open(&user, &device, &format!("$proxy/{session}"), params(&address, port, secure)).await?;
    tracing::info!(%peer, %user, %device, %session, %address, port, "proxy tunnel opened");
    bridge::spawn(on_upgrade, stream, |_| async { Err("the proxy takes BINARY frames only".to_owned()) });
    Ok(bridge::response(response, &session))
}

/// Copies bytes both ways between a TCP connection and a device stream until either ends.
pub(crate) async fn tunnel(socket: TcpStream, stream: DeviceStream) {
    let (mut r, mut w) = socket.into_split();
    let (tx, mut rx) = stream.split();
    let max = tx.max_chunk().min(64 * 1024);
    let up = async {
        let mut buf = vec![0u8; max];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send_bytes(buf.get(..n).unwrap_or_default()).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let down = async {
        while let Ok(b) = rx.recv_bytes().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

async fn accept_loop(hub: Arc<Hub>, listener: TcpListener, user: String, device: String, address: String, port: u16) {
    let mut shutdown = hub.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "proxy listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let (hub, user, device, address) = (Arc::clone(&hub), user.clone(), device.clone(), address.clone());
        tokio::spawn(async move {
            let session = session_name();
            let resource = format!("$proxy/{session}");
            match crate::stream::open(&hub, &user, &device, &resource, Some(params(&address, port, false))).await {
                Ok(stream) => {
                    tracing::info!(%peer, %user, %device, %session, %address, port, "proxy connection tunnelled");
                    tunnel(socket, stream).await;
                }
                Err(e) => tracing::info!(%peer, %user, %device, error = %e, "proxy connection refused"),
            }
        });
    }
}

/// `POST …/proxy/listeners` with `{"address": H, "port": P, "listen": "127.0.0.1:0"}`:
/// listens on a loopback address and tunnels every accepted connection to `H:P` through the
/// device. Answers `{"id", "listen"}`.
pub(super) async fn create(
    State(gw): State<Gateway>,
    Path((user, device)): Path<(String, String)>,
    body: axum::body::Body,
) -> ApiResult {
    let body = read_body(&gw.hub, body).await?;
    let body = json_body(&body)?.ok_or_else(|| ApiError::new(400, "missing {\"address\", \"port\"}"))?;
    let (address, port) =
        target(body.get("address").and_then(Value::as_str), body.get("port").and_then(Value::as_u64))?;
    let listen: SocketAddr = match body.get("listen").and_then(Value::as_str) {
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(s) => s.parse().map_err(|_| ApiError::new(400, "listen must be an IP:port"))?,
    };
    if !listen.ip().is_loopback() {
        return Err(ApiError::new(400, "proxy listeners bind to loopback addresses only"));
    }
    if gw.hub.device_info(&user, &device).is_none() {
        return Err(crate::error::DeviceError::UnknownDevice.into());
    }
    let max = gw.hub.config.limits.max_proxy_listeners;
    if gw.proxies.lock().values().filter(|l| l.user == user && l.device == device).count() >= max {
        return Err(ApiError::new(429, format!("the device already has {max} proxy listeners")));
    }
    let listener =
        TcpListener::bind(listen).await.map_err(|e| ApiError::new(409, format!("cannot listen on {listen}: {e}")))?;
    let listen = listener.local_addr().map_err(|e| ApiError::new(500, e.to_string()))?;
    let id = gw.hub.next_id();
    let task =
        tokio::spawn(accept_loop(Arc::clone(&gw.hub), listener, user.clone(), device.clone(), address.clone(), port));
    tracing::info!(%user, %device, %listen, %address, port, id, "proxy listener opened");
    gw.proxies.lock().insert(id, Listener { user, device, listen, target: (address.clone(), port), task });
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({ "id": id, "listen": listen.to_string(), "address": address, "port": port })),
    )
        .into_response())
}

/// `GET …/proxy/listeners`: the device's listeners.
pub(super) async fn list(State(gw): State<Gateway>, Path((user, device)): Path<(String, String)>) -> ApiResult {
    let items: Vec<_> = gw
        .proxies
        .lock()
        .iter()
        .filter(|(_, l)| l.user == user && l.device == device)
        .map(|(id, l)| json!({ "id": id, "listen": l.listen.to_string(), "address": l.target.0, "port": l.target.1 }))
        .collect();
    Ok(Json(items).into_response())
}

/// `DELETE …/proxy/listeners/{id}`: stops listening (open tunnels stay until they end).
pub(super) async fn remove(
    State(gw): State<Gateway>,
    Path((user, device, id)): Path<(String, String, u64)>,
) -> ApiResult {
    let mut map = gw.proxies.lock();
    match map.get(&id) {
        Some(l) if l.user == user && l.device == device => {
            if let Some(l) = map.remove(&id) {
                l.task.abort();
            }
            Ok(Json(json!({ "id": id, "deleted": true })).into_response())
        }
        _ => Err(ApiError::new(404, "unknown proxy listener")),
    }
}
