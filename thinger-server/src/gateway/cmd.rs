//! `$cmd/:session`: a command's output as it comes, as newline-delimited JSON:
//! `{"out": text}`, `{"err": text}`, and last `{"exit": code, "timeout": bool}` (or
//! `{"error": reason}` when the stream ended otherwise).

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header;
use axum::response::Response;
use serde_json::json;
use thinger_core::pson::Value;

use super::{Gateway, session_name};
use crate::error::StreamError;
use crate::rest::{ApiError, ApiResult, json_body, read_body};
use crate::stream::StreamReceiver;

/// Decodes UTF-8 across chunk boundaries: what is complete of `carry` + `bytes` (invalid
/// sequences replaced), keeping an incomplete final character for the next chunk.
pub(crate) fn utf8_chunk(carry: &mut Vec<u8>, bytes: &[u8]) -> String {
    carry.extend_from_slice(bytes);
    let cut = match std::str::from_utf8(carry) {
        Ok(_) => carry.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => carry.len(),
    };
    let rest = carry.split_off(cut);
    let text = String::from_utf8_lossy(carry).into_owned();
    *carry = rest;
    text
}

struct Output {
    rx: StreamReceiver,
    out: Vec<u8>,
    err: Vec<u8>,
    done: bool,
}

fn line(v: serde_json::Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

/// `POST …/cmd/stream` with `{"cmd": "...", "timeout": seconds}`.
pub(super) async fn stream(
    State(gw): State<Gateway>,
    Path((user, device)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> ApiResult {
    let body = read_body(&gw.hub, body).await?;
    let body = json_body(&body)?.ok_or_else(|| ApiError::new(400, "missing {\"cmd\"}"))?;
    let cmd = body.get("cmd").and_then(Value::as_str).filter(|c| !c.is_empty());
    let cmd = cmd.ok_or_else(|| ApiError::new(400, "the body needs a \"cmd\""))?.to_owned();
    let mut params = vec![("cmd".to_owned(), Value::Str(cmd.clone()))];
    if let Some(t) = body.get("timeout").and_then(Value::as_u64) {
        params.push(("timeout".to_owned(), Value::Uint(t)));
    }
    let stream = gw.hub_open(&user, &device, &format!("$cmd/{}", session_name()), Value::Map(params)).await?;
    tracing::info!(%peer, %user, %device, %cmd, "streamed command started");
    let (_tx, rx) = stream.split();
    let state = Output { rx, out: Vec::new(), err: Vec::new(), done: false };
    let lines = futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            let v = match s.rx.recv().await {
                Ok(v) => v,
                Err(StreamError::Closed) => return None,
                Err(e) => {
                    s.done = true;
                    return Some((Ok::<_, std::io::Error>(line(json!({ "error": e.to_string() }))), s));
                }
            };
            let bytes = |key: &str| match v.get(key) {
                Some(Value::Bytes(b)) => Some(b.clone()),
                Some(Value::Str(t)) => Some(t.clone().into_bytes()),
                _ => None,
            };
            if let Some(b) = bytes("out") {
                let text = utf8_chunk(&mut s.out, &b);
                if !text.is_empty() {
                    return Some((Ok(line(json!({ "out": text }))), s));
                }
            } else if let Some(b) = bytes("err") {
                let text = utf8_chunk(&mut s.err, &b);
                if !text.is_empty() {
                    return Some((Ok(line(json!({ "err": text }))), s));
                }
            } else if let Some(code) = v.get("exit") {
                let code = serde_json::to_value(code).unwrap_or_default();
                let timeout = v.get("timeout").and_then(Value::as_bool).unwrap_or(false);
                s.done = true;
                return Some((Ok(line(json!({ "exit": code, "timeout": timeout }))), s));
            }
        }
    });
    let mut response = Response::new(Body::from_stream(lines));
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks() {
        let mut carry = Vec::new();
        let euro = "€".as_bytes();
        assert_eq!(utf8_chunk(&mut carry, &[b'a', euro[0]]), "a");
        assert_eq!(utf8_chunk(&mut carry, &euro[1..]), "€");
        assert!(carry.is_empty());
        assert_eq!(utf8_chunk(&mut carry, &[0xff, b'b']), "\u{fffd}b");
    }
}
