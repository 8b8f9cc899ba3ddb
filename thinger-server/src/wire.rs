//! Pure parsing of what clients send: a device's CONNECT and cloud calls, and REST JSON
//! bodies turned into PSON. No I/O and no server state, and nothing of this crate is
//! imported, so the fuzz targets compile this file on its own (`fuzz/fuzz_targets/server_*.rs`
//! include it by path) without the server's network and storage stack.

use thinger_core::iotmp::{FieldValue, Message};
use thinger_core::pson::{DEFAULT_MAX_DEPTH, PsonRef, Value};

/// ERROR to CONNECT, F2: bad credentials (also: a malformed credentials payload).
pub(crate) const REFUSE_CREDENTIALS: u64 = 2;
/// ERROR to CONNECT, F2: keep-alive out of range (1..=1800 s).
pub(crate) const REFUSE_KEEPALIVE: u64 = 3;
/// ERROR to CONNECT, F2: unsupported encoding (legacy PSON, `pv` other than 1).
pub(crate) const REFUSE_ENCODING: u64 = 4;

/// A well-formed CONNECT (its credentials not checked yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectRequest<'a> {
    pub sid: u16,
    pub user: &'a str,
    pub device: &'a str,
    pub credential: &'a str,
    /// The `ka` parameter (seconds, 1..=1800), if sent.
    pub keepalive_s: Option<u64>,
}

/// Why a CONNECT is refused: the ERROR's code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectRefusal {
    pub code: u64,
    pub message: &'static str,
}

/// Reads a CONNECT message: `F3 = [user, device, credential]`, optional `F2 = {ka, pv}`.
pub(crate) fn parse_connect<'a>(msg: &Message<'a>) -> Result<ConnectRequest<'a>, ConnectRefusal> {
    let creds: Option<Vec<&str>> = match msg.payload.map(|p| p.as_pson()) {
        Some(PsonRef::Array(a)) if a.len() == 3 => a.iter().map(|v| v.as_str()).collect(),
        _ => None,
    };
    let Some([user, device, credential]) = creds.as_deref().map(|c| <[&str; 3]>::try_from(c).ok()).unwrap_or(None)
    else {
        return Err(ConnectRefusal {
            code: REFUSE_CREDENTIALS,
            message: "CONNECT payload must be [user, device, credential]",
        });
    };
    let mut keepalive_s = None;
    if let Some(PsonRef::Map(params)) = msg.parameters.map(|p| p.as_pson()) {
        if let Some(ka) = params.get("ka") {
            match ka.as_u64() {
                Some(s @ 1..=1800) => keepalive_s = Some(s),
                _ => {
                    return Err(ConnectRefusal {
                        code: REFUSE_KEEPALIVE,
                        message: "keep-alive must be 1..=1800 seconds",
                    });
                }
            }
        }
        if let Some(pv) = params.get("pv")
            && pv.as_u64() != Some(1)
        {
            return Err(ConnectRefusal {
                code: REFUSE_ENCODING,
                message: "only protocol version 1 (PSON) is supported",
            });
        }
    }
    Ok(ConnectRequest { sid: msg.stream_id, user, device, credential, keepalive_s })
}

/// The call code and id of a cloud call (RUN from the device). Linux placement: F4 = code,
/// F2 = id; embedded placement: F2 = code, F4 = id. `None`: no numeric code in either.
pub(crate) fn cloud_call<'a>(msg: &Message<'a>) -> Option<(u64, Option<FieldValue<'a>>)> {
    match (msg.resource.and_then(|r| r.as_u64()), msg.parameters.and_then(|p| p.as_u64())) {
        (Some(code), _) => Some((code, msg.parameters)),
        (None, Some(code)) => Some((code, msg.resource)),
        (None, None) => None,
    }
}

/// The `[device, resource]` target of a device-to-device call.
pub(crate) fn call_target(target: Option<FieldValue<'_>>) -> Option<(String, String)> {
    match target.map(|t| t.as_pson()) {
        Some(PsonRef::Array(a)) => match (a.get(0).and_then(|v| v.as_str()), a.get(1).and_then(|v| v.as_str())) {
            (Some(d), Some(r)) => Some((d.to_owned(), r.to_owned())),
            _ => None,
        },
        _ => None,
    }
}

/// A REST JSON body as a PSON value (`None` for an empty body). Nesting deeper than a
/// device's PSON decoder accepts ([`DEFAULT_MAX_DEPTH`]) is refused here, not by the device.
pub(crate) fn json_to_pson(body: &[u8]) -> Result<Option<Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value = serde_json::from_slice::<Value>(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    if depth(&value) > DEFAULT_MAX_DEPTH {
        return Err(format!("JSON body nested deeper than {DEFAULT_MAX_DEPTH} levels"));
    }
    Ok(Some(value))
}

/// Containers nested in a value (a scalar is 0, `[]` is 1).
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Map(pairs) => 1 + pairs.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

/// A resource's input from a REST body: `{"in": value}` is the cloud's form; anything else
/// is the value itself.
pub(crate) fn resource_input(body: Value) -> Value {
    match body {
        Value::Map(mut pairs) if pairs.len() == 1 && pairs.first().is_some_and(|(k, _)| k == "in") => {
            pairs.pop().map(|(_, v)| v).unwrap_or_default()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies() {
        assert_eq!(json_to_pson(b"  ").unwrap(), None);
        assert_eq!(json_to_pson(br#"{"in": 3}"#).unwrap().map(resource_input), Some(Value::Uint(3)));
        assert!(json_to_pson(b"{").is_err());
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(json_to_pson(deep.as_bytes()).unwrap_err().contains("deeper"));
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(json_to_pson(ok.as_bytes()).is_ok());
    }
}
