//! The REST API's edge: errors answered as `{"error": message}` with their status, and
//! request bodies read with a size and time limit. Shared by [`crate::api`] and
//! [`crate::gateway`].

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thinger_core::pson::Value;

use crate::error::DeviceError;
use crate::hub::Hub;

/// An error answered as `{"error": message}`.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl ApiError {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), message.into())
    }
}

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// Reads a request body, at most `max_body_size` bytes (chunked included) within the body
/// timeout; 413 beyond the size, 408 past the time.
pub(crate) async fn read_body(hub: &Hub, body: Body) -> Result<Bytes, ApiError> {
    let limits = &hub.config.limits;
    match tokio::time::timeout(limits.http_body_timeout, axum::body::to_bytes(body, limits.max_body_size)).await {
        Err(_) => Err(ApiError::new(408, "request body not received in time")),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            let mut too_large = false;
            while let Some(s) = source {
                too_large |= s.is::<http_body_util::LengthLimitError>();
                source = s.source();
            }
            if too_large {
                Err(ApiError::new(413, format!("request body larger than {} bytes", limits.max_body_size)))
            } else {
                Err(ApiError::new(400, format!("cannot read the request body: {e}")))
            }
        }
    }
}

/// Parses a JSON request body into a PSON value (`None` for an empty body).
pub(crate) fn json_body(body: &Bytes) -> Result<Option<Value>, ApiError> {
    crate::wire::json_to_pson(body).map_err(|e| ApiError::new(400, e))
}
