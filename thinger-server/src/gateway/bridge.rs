//! A WebSocket joined to a device byte stream: BINARY frames from the caller become
//! STREAM_DATA bytes, the device's bytes go back as BINARY frames, TEXT frames from the
//! caller are control messages handed to the route. Either side's end closes the other,
//! with a close code and reason that say why.

use std::future::Future;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::error::StreamError;
use crate::rest::ApiError;
use crate::stream::DeviceStream;

/// Largest WebSocket message or frame a caller may send (the device gets it in frames that
/// fit its limit).
const MAX_MESSAGE: usize = 1024 * 1024;

/// Checks the upgrade request before the stream is opened (so a refusal is an HTTP status).
pub(super) fn check(headers: &HeaderMap) -> Result<Response, ApiError> {
    crate::ws::handshake(headers).map_err(|e| ApiError::new(400, e))
}

/// Checks a WebSocket upgrade request and takes its upgrade: the 101 answer to send and the
/// connection to come.
pub(super) fn upgrade(request: &mut axum::extract::Request) -> Result<(Response, OnUpgrade), ApiError> {
    let response = check(request.headers())?;
    let on_upgrade = request
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or_else(|| ApiError::new(400, "connection cannot be upgraded"))?;
    Ok((response, on_upgrade))
}

/// Answers the upgrade and runs the bridge in a task; `on_text` handles control messages
/// (an error closes the socket with that reason).
pub(super) fn spawn<C, F>(on_upgrade: OnUpgrade, stream: DeviceStream, on_text: C)
where
    C: FnMut(String) -> F + Send + 'static,
    F: Future<Output = Result<(), String>> + Send,
{
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(io) => TokioIo::new(io),
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        run(ws, stream, on_text).await;
    });
}

/// The upgrade's response, with a header naming the session.
pub(super) fn response(mut response: Response, session: &str) -> Response {
    if let Ok(v) = session.parse() {
        response.headers_mut().insert("x-thinger-session", v);
    }
    response.into_response()
}

async fn run<S, C, F>(ws: WebSocketStream<S>, stream: DeviceStream, mut on_text: C)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    C: FnMut(String) -> F,
    F: Future<Output = Result<(), String>>,
{
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = stream.split();
    let up = async {
        while let Some(msg) = source.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    if let Err(e) = tx.send_bytes(&b).await {
                        return Some(e.to_string());
                    }
                }
                Ok(Message::Text(t)) => {
                    if let Err(e) = on_text(t.as_str().to_owned()).await {
                        return Some(e);
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    };
    let down = async {
        loop {
            match rx.recv_bytes().await {
                Ok(b) => {
                    if sink.send(Message::Binary(b.into())).await.is_err() {
                        return None;
                    }
                }
                Err(e) => return Some(e),
            }
        }
    };
    let (code, reason) = tokio::select! {
        why = up => match why {
            None => (CloseCode::Normal, String::new()),
            Some(reason) => (CloseCode::Policy, reason),
        },
        end = down => match end {
            Some(StreamError::Closed) | None => (CloseCode::Normal, "the device closed the stream".to_owned()),
            Some(e @ StreamError::Disconnected) => (CloseCode::Away, e.to_string()),
            Some(e) => (CloseCode::Error, e.to_string()),
        },
    };
    // Reunite the halves only to send the close frame; the stream is dropped (STOP_STREAM).
    drop(tx);
    drop(rx);
    let mut reason = reason;
    reason.truncate(120);
    let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    if let Ok(mut ws) = sink.reunite(source) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), ws.send(close)).await;
    }
}
