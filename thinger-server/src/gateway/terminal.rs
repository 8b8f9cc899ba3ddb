//! `$terminal/:session`: a WebSocket attached to the device's PTY stream, and resizes.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::response::IntoResponse;
use serde_json::json;
use thinger_core::pson::Value;

use super::{Gateway, bridge, session_name, valid_session};
use crate::error::DeviceError;
use crate::hub::Hub;
use crate::rest::{ApiError, ApiResult, json_body, read_body};
use crate::vocab::DeviceRequest;

fn size(query: &HashMap<String, String>, key: &str, default: u64) -> Result<u64, ApiError> {
    match query.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| ApiError::new(400, format!("{key} must be a number from 1 to 10000"))),
    }
}

fn size_value(cols: u64, rows: u64) -> Value {
    Value::Map(vec![(
        "size".to_owned(),
        Value::Map(vec![("cols".to_owned(), Value::Uint(cols)), ("rows".to_owned(), Value::Uint(rows))]),
    )])
}

/// RUN `$terminal/{session}/params` with `{size: {cols, rows}}`.
async fn set_size(hub: &Hub, user: &str, device: &str, session: &str, cols: u64, rows: u64) -> Result<(), ApiError> {
    if cols == 0 || rows == 0 || cols > 10_000 || rows > 10_000 {
        return Err(ApiError::new(400, "cols and rows must be numbers from 1 to 10000"));
    }
    let request =
        DeviceRequest::Run { resource: format!("$terminal/{session}/params"), input: Some(size_value(cols, rows)) };
    let reply = hub.request(user, device, request).await?;
    if !reply.ok {
        let message = crate::util::error_message(reply.payload.as_ref());
        return Err(DeviceError::Failed { code: reply.code, message }.into());
    }
    // The official client answers a refused resize with an OK whose payload has `error`.
    if let Some(e) = reply.payload.as_ref().and_then(|p| p.get("error")).and_then(Value::as_str) {
        return Err(ApiError::new(400, e));
    }
    Ok(())
}

/// `GET …/terminal?cols=80&rows=24&session=NAME`: WebSocket. BINARY frames are terminal
/// bytes both ways; a TEXT frame from the caller is `{"resize": {"cols": C, "rows": R}}`.
pub(super) async fn websocket(
    State(gw): State<Gateway>,
    Path((user, device)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> ApiResult {
    let (response, on_upgrade) = bridge::upgrade(&mut request)?;
    let (cols, rows) = (size(&query, "cols", 80)?, size(&query, "rows", 24)?);
    let session = match query.get("session") {
        Some(s) if valid_session(s) => s.clone(),
        Some(_) => return Err(ApiError::new(400, "session must be 1 to 64 of A-Z a-z 0-9 _ -")),
        None => session_name(),
    };
    let params = Value::Map(vec![("cols".to_owned(), Value::Uint(cols)), ("rows".to_owned(), Value::Uint(rows))]);
    let stream = gw.hub_open(&user, &device, &format!("$terminal/{session}"), params).await?;
    tracing::info!(%peer, %user, %device, %session, cols, rows, "terminal session opened");
    let hub = gw.hub.clone();
    let name = session.clone();
    bridge::spawn(on_upgrade, stream, move |text| {
        let (hub, user, device, name) = (hub.clone(), user.clone(), device.clone(), name.clone());
        async move {
            let control: serde_json::Value =
                serde_json::from_str(&text).map_err(|_| "TEXT frames must be JSON control messages".to_owned())?;
            let size = control.get("resize").ok_or_else(|| "unknown control message (expected resize)".to_owned())?;
            let dim = |k: &str| size.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            set_size(&hub, &user, &device, &name, dim("cols"), dim("rows")).await.map_err(|e| e.1)
        }
    });
    Ok(bridge::response(response, &session))
}

/// `POST …/terminal/{session}/size` with `{"cols": C, "rows": R}`.
pub(super) async fn resize(
    State(gw): State<Gateway>,
    Path((user, device, session)): Path<(String, String, String)>,
    body: axum::body::Body,
) -> ApiResult {
    if !valid_session(&session) {
        return Err(ApiError::new(400, "invalid session name"));
    }
    let body = read_body(&gw.hub, body).await?;
    let body = json_body(&body)?.ok_or_else(|| ApiError::new(400, "missing {\"cols\", \"rows\"}"))?;
    let dim = |k: &str| body.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (cols, rows) = (dim("cols"), dim("rows"));
    set_size(&gw.hub, &user, &device, &session, cols, rows).await?;
    Ok(Json(json!({ "session": session, "cols": cols, "rows": rows })).into_response())
}
