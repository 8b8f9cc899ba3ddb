//! REST and WebSocket routes that drive a device's gateway extensions (the official
//! IOTMP-Linux `$terminal`, `$proxy`, `$fs` transfer and `$cmd` stream sessions) through
//! [`crate::stream`] byte streams, so they can be tried without the cloud:
//!
//! | route | extension |
//! |---|---|
//! | `GET …/terminal?cols=&rows=&session=` (WebSocket) | `$terminal/:session` |
//! | `POST …/terminal/{session}/size` | `$terminal/:session/params` |
//! | `GET …/proxy?address=&port=` (WebSocket) | `$proxy/:session` |
//! | `POST`/`GET …/proxy/listeners`, `DELETE …/proxy/listeners/{id}` | `$proxy/:session` per accepted TCP connection |
//! | `GET …/fs/download/{*path}` | `$fs/info/*path`, then `$fs/download/:session` |
//! | `PUT …/fs/upload/{*path}` | `$fs/upload/:session` |
//! | `POST …/cmd/stream` | `$cmd/:session` |
//!
//! (`…` = `/v3/users/{user}/devices/{device}`.) They sit behind the same token check as
//! every other API route.

mod bridge;
mod cmd;
mod fs;
mod proxy;
mod terminal;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::error::StreamError;
use crate::hub::Hub;
use crate::rest::ApiError;
use crate::util::random_u64;

/// What the routes share: the hub and the proxy listeners they opened.
#[derive(Clone)]
pub(crate) struct Gateway {
    hub: Arc<Hub>,
    proxies: Arc<proxy::Listeners>,
}

/// The routes, for the API router.
pub(crate) fn router(hub: Arc<Hub>) -> Router<Arc<Hub>> {
    let state = Gateway { hub, proxies: Arc::new(proxy::Listeners::default()) };
    const D: &str = "/v3/users/{user}/devices/{device}";
    Router::new()
        .route(&format!("{D}/terminal"), get(terminal::websocket))
        .route(&format!("{D}/terminal/{{session}}/size"), post(terminal::resize))
        .route(&format!("{D}/proxy"), get(proxy::websocket))
        .route(&format!("{D}/proxy/listeners"), post(proxy::create).get(proxy::list))
        .route(&format!("{D}/proxy/listeners/{{id}}"), delete(proxy::remove))
        .route(&format!("{D}/fs/download/{{*path}}"), get(fs::download))
        .route(&format!("{D}/fs/upload/{{*path}}"), put(fs::upload))
        .route(&format!("{D}/cmd/stream"), post(cmd::stream))
        .with_state(state)
}

impl Gateway {
    /// Opens a stream with parameters, as the routes do.
    async fn hub_open(
        &self,
        user: &str,
        device: &str,
        resource: &str,
        params: thinger_core::pson::Value,
    ) -> Result<crate::stream::DeviceStream, StreamError> {
        crate::stream::open(&self.hub, user, device, resource, Some(params)).await
    }
}

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

/// A fresh session name for a stream resource (`$terminal/<name>`).
fn session_name() -> String {
    format!("{:016x}", random_u64())
}

/// A session name a caller chose: 1 to 64 of `[A-Za-z0-9_-]`.
fn valid_session(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names() {
        assert!(valid_session(&session_name()));
        assert!(valid_session("a-b_C9"));
        assert!(!valid_session(""));
        assert!(!valid_session("a/b"));
        assert!(!valid_session("../x"));
        assert!(!valid_session(&"a".repeat(65)));
    }
}
