//! The REST API (Thinger.io routes, JSON at the edge) and WebSocket IOTMP at `/iotmp`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use thinger_core::pson::Value;
use tokio::sync::{mpsc, oneshot};

use crate::error::DeviceError;
use crate::hub::{DeviceInfo, Hub, Lookup};
use crate::rest::{ApiError, ApiResult, json_body, read_body};
use crate::store::{BucketQuery, Op};
use crate::transport::ws_halves;
use crate::util::{constant_time_eq, error_message};
use crate::vocab::{Command, DeviceRequest, RawReply};

type Shared = State<Arc<Hub>>;

/// Builds the router.
/// `extensions` are more authenticated routes (the gateway extension routes).
pub(crate) fn router(hub: Arc<Hub>, extensions: Router<Arc<Hub>>) -> Router {
    let api = Router::new()
        .route("/v1/users/{user}/devices", get(list_devices))
        .route("/v1/users/{user}/devices/{device}", get(get_device))
        .route("/v3/users/{user}/devices/{device}/resources", get(describe))
        .route("/v3/users/{user}/devices/{device}/resources/{*resource}", get(read_resource).post(write_resource))
        .route("/v3/users/{user}/devices/{device}/resources/$ota/write", axum::routing::post(crate::ota::write_route))
        .route("/v3/users/{user}/devices/{device}/properties", get(list_properties).post(create_property))
        .route(
            "/v3/users/{user}/devices/{device}/properties/{property}",
            get(get_property).put(put_property).delete(delete_property),
        )
        .route("/v1/users/{user}/buckets", get(list_buckets))
        .route("/v1/users/{user}/buckets/{bucket}/data", get(read_bucket).post(write_bucket))
        .route("/v1/users/{user}/endpoints", get(list_endpoints))
        .route("/v1/users/{user}/endpoints/{endpoint}/call", post(call_endpoint))
        .route("/v1/users/{user}/endpoints/{endpoint}/calls", get(endpoint_calls))
        .merge(extensions)
        .route_layer(middleware::from_fn_with_state(Arc::clone(&hub), require_token));
    Router::new()
        .merge(api)
        .route("/health", get(health))
        .route("/iotmp", get(websocket))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(hub)
}

/// The token of `Authorization: Bearer T` (scheme in any case) or `?authorization=T`.
fn presented_token(request: &Request) -> Option<&str> {
    let bearer = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    bearer.or_else(|| request.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("authorization="))))
}

/// The admin token opens every route; a user token only `/v*/users/{its user}/…`.
async fn require_token(State(hub): Shared, request: Request, next: Next) -> Response {
    let config = &hub.config;
    if config.api_token.is_none() && config.user_tokens.is_empty() {
        return next.run(request).await;
    }
    let Some(token) = presented_token(&request) else {
        return ApiError::new(401, "missing or invalid access token").into_response();
    };
    let eq = |expected: &str| constant_time_eq(token.as_bytes(), expected.as_bytes());
    if config.api_token.as_deref().is_some_and(eq) {
        return next.run(request).await;
    }
    // Compare with every user token (no early exit on a match) so timing says nothing.
    let mut owner = None;
    for t in &config.user_tokens {
        if eq(&t.token) {
            owner = Some(t.user.as_str());
        }
    }
    let Some(owner) = owner else {
        return ApiError::new(401, "missing or invalid access token").into_response();
    };
    let path_user = request.uri().path().split('/').nth(3);
    if path_user != Some(owner) {
        return ApiError::new(403, "this token is not valid for this user").into_response();
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::new(404, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(405, "method not allowed on this route")
}

async fn health(State(hub): Shared) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "devices": hub.connected(), "dropped_events": hub.dropped_events(),
                "refused_connections": hub.guard.refused() }))
}

/// `GET /iotmp`: WebSocket IOTMP (TEXT or BINARY frames, see [`crate::ws`]).
async fn websocket(State(hub): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, mut request: Request) -> Response {
    let response = match crate::ws::handshake(request.headers()) {
        Ok(r) => r,
        Err(e) => return ApiError::new(400, e).into_response(),
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return ApiError::new(400, "connection cannot be upgraded").into_response();
    };
    // An IOTMP frame plus the WebSocket framing; a bigger WebSocket frame closes the socket.
    let max = hub.config.max_frame_size.saturating_add(64);
    let secure = request.extensions().get::<crate::http::Secure>().is_some_and(|s| s.0);
    let transport = if secure { "wss" } else { "ws" };
    tokio::spawn(async move {
        match crate::ws::upgraded(on_upgrade, max).await {
            Ok((r, w)) => {
                let (reader, writer) = ws_halves(r, w);
                crate::conn::serve(hub, reader, writer, peer, transport).await;
            }
            Err(e) => tracing::debug!(%peer, error = %e, "WebSocket upgrade failed"),
        }
    });
    response
}

fn device_json(d: &DeviceInfo) -> serde_json::Value {
    json!({
        "device": d.device,
        "name": d.device,
        "type": "Generic",
        "connection": {
            "active": d.connected,
            "ts": d.ts,
            "address": d.address,
            "transport": d.transport,
        },
    })
}

async fn list_devices(State(hub): Shared, Path(user): Path<String>) -> Json<serde_json::Value> {
    Json(serde_json::Value::Array(hub.list_devices(&user).iter().map(device_json).collect()))
}

async fn get_device(State(hub): Shared, Path((user, device)): Path<(String, String)>) -> ApiResult {
    match hub.device_info(&user, &device) {
        Some(d) => Ok(Json(device_json(&d)).into_response()),
        None => Err(DeviceError::UnknownDevice.into()),
    }
}

/// The HTTP answer for a device's reply.
fn reply_response(reply: Result<RawReply, DeviceError>) -> ApiResult {
    let r = reply?;
    if !r.ok {
        return Err(DeviceError::Failed { code: r.code, message: error_message(r.payload.as_ref()) }.into());
    }
    let status = r
        .code
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (200..300).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    Ok((status, Json(r.payload.unwrap_or_default())).into_response())
}

async fn describe(State(hub): Shared, Path((user, device)): Path<(String, String)>) -> ApiResult {
    reply_response(hub.request(&user, &device, DeviceRequest::Describe { resource: None }).await)
}

fn wants_sse(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"))
}

async fn read_resource(
    State(hub): Shared,
    Path((user, device, resource)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    if wants_sse(&headers) {
        let interval = match query.get("interval") {
            None => None,
            Some(ms) => Some(ms.parse::<u64>().map_err(|_| ApiError::new(400, "interval must be milliseconds"))?),
        };
        return stream_resource(hub, user, device, resource, interval).await;
    }
    // `…/resources/NAME/api` describes one resource, as on Thinger.io.
    if let Some(name) = resource.strip_suffix("/api") {
        let request = DeviceRequest::Describe { resource: Some(name.to_owned()) };
        return reply_response(hub.request(&user, &device, request).await);
    }
    reply_response(hub.request(&user, &device, DeviceRequest::Run { resource, input: None }).await)
}

/// Refuses (413) a property value that, delivered as an event, would not fit the device's
/// frame limit: it is checked before it is stored, so no subscriber is ever sent it.
fn check_property_size(hub: &Hub, device: &str, property: &str, value: &Value) -> Result<(), ApiError> {
    let limit = hub.config.limits.device_frame_limit;
    let size = crate::util::event_size(device, property, value);
    if size > limit {
        return Err(ApiError::new(
            413,
            format!("property value of {size} bytes as a frame does not fit the device's frame limit of {limit} bytes"),
        ));
    }
    Ok(())
}

async fn write_resource(
    State(hub): Shared,
    Path((user, device, resource)): Path<(String, String, String)>,
    body: Body,
) -> ApiResult {
    let body = read_body(&hub, body).await?;
    let input = json_body(&body)?.map(crate::wire::resource_input);
    reply_response(hub.request(&user, &device, DeviceRequest::Run { resource, input }).await)
}

/// Tells the device's connection to drop a stream sink when the HTTP stream ends.
struct StopGuard {
    tx: mpsc::UnboundedSender<Command>,
    resource: String,
    sink_id: u64,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let _ =
            self.tx.send(Command::StopStream { resource: std::mem::take(&mut self.resource), sink_id: self.sink_id });
    }
}

async fn stream_resource(
    hub: Arc<Hub>,
    user: String,
    device: String,
    resource: String,
    interval: Option<u64>,
) -> ApiResult {
    let tx = match hub.lookup(&user, &device) {
        Lookup::Unknown => return Err(DeviceError::UnknownDevice.into()),
        Lookup::Offline => return Err(DeviceError::Offline.into()),
        Lookup::Live(tx) => tx,
    };
    let (sink, samples) = mpsc::channel(256);
    let sink_id = hub.next_id();
    let (reply, wait) = oneshot::channel();
    let start = Command::StartStream { resource: resource.clone(), interval, sink_id, sink, reply };
    tx.send(start).map_err(|_| ApiError::from(DeviceError::Offline))?;
    let guard = StopGuard { tx, resource, sink_id };
    match tokio::time::timeout(hub.config.device_timeout, wait).await {
        Err(_) => return Err(DeviceError::Timeout.into()),
        Ok(Err(_)) => return Err(DeviceError::Offline.into()),
        Ok(Ok(Err(e))) => return Err(e.into()),
        Ok(Ok(Ok(()))) => {}
    }
    let shutdown = hub.shutdown.clone();
    let events =
        futures_util::stream::unfold((samples, guard, shutdown), |(mut samples, guard, mut shutdown)| async move {
            let next = tokio::select! {
                v = samples.recv() => v,
                _ = shutdown.changed() => None,
            };
            let value = next?;
            let data = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned());
            Some((Ok::<_, Infallible>(Event::default().data(data)), (samples, guard, shutdown)))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

fn property_json(property: &str, value: &Value, created: u64, modified: u64) -> serde_json::Value {
    json!({ "property": property, "value": value, "created": created, "modified": modified })
}

async fn list_properties(State(hub): Shared, Path((user, device)): Path<(String, String)>) -> ApiResult {
    let list = hub
        .store
        .ask(|reply| Op::ListProperties { user, device, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?;
    let items: Vec<_> = list.iter().map(|(p, r)| property_json(p, &r.value, r.created, r.modified)).collect();
    Ok(Json(items).into_response())
}

async fn get_property(State(hub): Shared, Path((user, device, property)): Path<(String, String, String)>) -> ApiResult {
    let name = property.clone();
    let found = hub
        .store
        .ask(|reply| Op::GetProperty { user, device, property, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?;
    match found {
        Some(r) => Ok(Json(property_json(&name, &r.value, r.created, r.modified)).into_response()),
        None => Err(ApiError::new(404, "unknown property")),
    }
}

async fn put_property(
    State(hub): Shared,
    Path((user, device, property)): Path<(String, String, String)>,
    body: Body,
) -> ApiResult {
    let body = read_body(&hub, body).await?;
    let body = json_body(&body)?.ok_or_else(|| ApiError::new(400, "missing property value"))?;
    // The cloud's form is {"value": ...}; a body without "value" is the value itself.
    let value = match body.get("value") {
        Some(v) if body.as_map().is_some() => v.clone(),
        _ => body,
    };
    store_property(hub, user, device, property, value).await
}

/// Stores a property (refused with 413 when it would not fit a device frame) and answers
/// with its JSON.
async fn store_property(hub: Arc<Hub>, user: String, device: String, property: String, value: Value) -> ApiResult {
    check_property_size(&hub, &device, &property, &value)?;
    let (u, d, p) = (user.clone(), device.clone(), property.clone());
    hub.store
        .ask(|reply| Op::SetProperty { user: u, device: d, property: p, value, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?
        .map_err(|e| ApiError::new(500, e))?;
    get_property(State(hub), Path((user, device, property))).await
}

/// `POST …/properties` with `{"property": NAME, "value": V}`: creates (or replaces) it.
async fn create_property(State(hub): Shared, Path((user, device)): Path<(String, String)>, body: Body) -> ApiResult {
    let body = read_body(&hub, body).await?;
    let body = json_body(&body)?.ok_or_else(|| ApiError::new(400, "missing property"))?;
    let Some(property) = body.get("property").and_then(Value::as_str).map(str::to_owned) else {
        return Err(ApiError::new(400, "the body needs a \"property\" name"));
    };
    let value = body.get("value").cloned().unwrap_or_default();
    store_property(hub, user, device, property, value).await
}

async fn delete_property(
    State(hub): Shared,
    Path((user, device, property)): Path<(String, String, String)>,
) -> ApiResult {
    let name = property.clone();
    let existed = hub
        .store
        .ask(|reply| Op::DeleteProperty { user, device, property, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?
        .map_err(|e| ApiError::new(500, e))?;
    if !existed {
        return Err(ApiError::new(404, "unknown property"));
    }
    Ok(Json(json!({ "property": name, "deleted": true })).into_response())
}

/// `POST …/buckets/B/data`: appends the JSON body (an array: each element) as records.
async fn write_bucket(State(hub): Shared, Path((user, bucket)): Path<(String, String)>, body: Body) -> ApiResult {
    let body = read_body(&hub, body).await?;
    let value = json_body(&body)?.ok_or_else(|| ApiError::new(400, "missing record"))?;
    let values = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    let mut last = 0;
    for value in values {
        let (user, bucket) = (user.clone(), bucket.clone());
        last = hub
            .store
            .ask(|reply| Op::AppendBucket { user, bucket, device: String::new(), value, reply })
            .await
            .ok_or_else(|| ApiError::new(500, "storage unavailable"))?
            .map_err(|e| ApiError::new(500, e))?;
    }
    Ok(Json(json!({ "bucket": bucket, "ts": last })).into_response())
}

/// `POST …/endpoints/E/call`: records the call and answers with the endpoint's response.
async fn call_endpoint(State(hub): Shared, Path((user, endpoint)): Path<(String, String)>, body: Body) -> ApiResult {
    let body = read_body(&hub, body).await?;
    let data = json_body(&body)?.unwrap_or_default();
    let endpoints = &hub.config.endpoints;
    let response = match endpoints.iter().find(|e| e.name == endpoint) {
        Some(e) => e.response.clone(),
        None if endpoints.is_empty() => None,
        None => return Err(ApiError::new(404, "unknown endpoint")),
    };
    hub.store
        .ask(|reply| Op::LogEndpoint { user, device: String::new(), endpoint, data, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?
        .map_err(|e| ApiError::new(500, e))?;
    Ok(Json(response.unwrap_or_else(|| Value::Map(Vec::new()))).into_response())
}

async fn list_buckets(State(hub): Shared, Path(user): Path<String>) -> ApiResult {
    let list = hub
        .store
        .ask(|reply| Op::ListBuckets { user, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?;
    let items: Vec<_> = list
        .iter()
        .map(|b| {
            json!({
                "bucket": b.bucket,
                "name": b.bucket,
                "enabled": true,
                "source": { "type": "device", "device": b.device },
                "created": b.created,
                "stats": { "count": b.count, "last_ts": b.last_ts },
            })
        })
        .collect();
    Ok(Json(items).into_response())
}

fn number(query: &HashMap<String, String>, key: &str) -> Result<Option<u64>, ApiError> {
    match query.get(key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ApiError::new(400, format!("{key} must be a non-negative integer"))),
    }
}

async fn read_bucket(
    State(hub): Shared,
    Path((user, bucket)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let items = number(&query, "items")?.unwrap_or(100);
    let descending = match query.get("sort").map(String::as_str) {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::new(400, "sort must be asc or desc")),
    };
    let q = BucketQuery {
        items: usize::try_from(items).unwrap_or(usize::MAX),
        min_ts: number(&query, "min_ts")?,
        max_ts: number(&query, "max_ts")?,
        descending,
    };
    let found = hub
        .store
        .ask(|reply| Op::ReadBucket { user, bucket, query: q, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?;
    let records = found.ok_or_else(|| ApiError::new(404, "unknown bucket"))?;
    let items: Vec<_> = records.iter().map(|r| json!({ "ts": r.ts, "val": r.value })).collect();
    Ok(Json(items).into_response())
}

async fn list_endpoints(State(hub): Shared, Path(user): Path<String>) -> ApiResult {
    let calls = hub
        .store
        .ask(|reply| Op::ListEndpointCalls { user, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?;
    let mut summary: BTreeMap<String, (u64, u64)> =
        hub.config.endpoints.iter().map(|e| (e.name.clone(), (0, 0))).collect();
    for c in &calls {
        let entry = summary.entry(c.endpoint.clone()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(c.ts);
    }
    let items: Vec<_> =
        summary.iter().map(|(name, (n, last))| json!({ "endpoint": name, "calls": n, "last_ts": last })).collect();
    Ok(Json(items).into_response())
}

async fn endpoint_calls(State(hub): Shared, Path((user, endpoint)): Path<(String, String)>) -> ApiResult {
    let calls = hub
        .store
        .ask(|reply| Op::ListEndpointCalls { user, reply })
        .await
        .ok_or_else(|| ApiError::new(500, "storage unavailable"))?;
    let items: Vec<_> = calls
        .iter()
        .filter(|c| c.endpoint == endpoint)
        .map(|c| json!({ "ts": c.ts, "device": c.device, "endpoint": c.endpoint, "data": c.data }))
        .collect();
    Ok(Json(items).into_response())
}
