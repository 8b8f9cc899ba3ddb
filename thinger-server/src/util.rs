//! Small helpers: clock, ids, frame encoding.

use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::RngCore;
use subtle::ConstantTimeEq;

use thinger_core::iotmp::{FieldValue, MessageType, OutField, OutgoingMessage};
use thinger_core::pson::Value;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An unpredictable 64-bit number, from the operating system's random source.
pub(crate) fn random_u64() -> u64 {
    rand_core::OsRng.next_u64()
}

/// Compares two secrets in time that does not depend on where they differ (`subtle`; only
/// the lengths are compared in variable time).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A field to encode.
#[derive(Clone, Copy)]
pub(crate) enum F<'a> {
    /// A varint.
    U(u64),
    /// A PSON value (a non-negative integer goes out as a varint, as the official encoder does).
    V(&'a Value),
    /// A PSON string.
    S(&'a str),
}

impl<'a> F<'a> {
    fn out(&'a self) -> OutField<'a> {
        match self {
            F::U(v) | F::V(Value::Uint(v)) => OutField::Varint(*v),
            F::V(v) => OutField::Pson(*v),
            F::S(s) => OutField::Pson(s),
        }
    }
}

/// Encodes a frame with fields in ascending id order.
pub(crate) fn encode(
    kind: MessageType,
    sid: u16,
    params: Option<F<'_>>,
    payload: Option<F<'_>>,
    resource: Option<F<'_>>,
) -> Vec<u8> {
    let mut msg = OutgoingMessage::new(kind, sid);
    if let Some(p) = params.as_ref() {
        msg = msg.parameters(p.out());
    }
    if let Some(p) = payload.as_ref() {
        msg = msg.payload(p.out());
    }
    if let Some(r) = resource.as_ref() {
        msg = msg.resource(r.out());
    }
    let mut buf = vec![0u8; msg.encoded_len()];
    match msg.encode(&mut buf) {
        Ok(n) => buf.truncate(n),
        // Cannot happen: the buffer has the counted size. Send nothing rather than garbage.
        Err(_) => buf.clear(),
    }
    buf
}

/// `KEEP_ALIVE`: `05 00`.
pub(crate) const KEEP_ALIVE: [u8; 2] = [0x05, 0x00];

/// `OK F1 [F2 code] [F3 payload]`.
pub(crate) fn ok(sid: u16, payload: Option<&Value>) -> Vec<u8> {
    encode(MessageType::Ok, sid, None, payload.map(F::V), None)
}

/// `ERROR F1 F2=code F3={"error": message}`.
pub(crate) fn error(sid: u16, code: u64, message: &str) -> Vec<u8> {
    let payload = error_payload(message);
    encode(MessageType::Error, sid, Some(F::U(code)), Some(F::V(&payload)), None)
}

/// `{"error": message}`.
pub(crate) fn error_payload(message: &str) -> Value {
    Value::Map(vec![("error".to_owned(), Value::Str(message.to_owned()))])
}

/// `DISCONNECT F2=code F3="reason"`.
pub(crate) fn disconnect(code: u64, reason: &str) -> Vec<u8> {
    encode(MessageType::Disconnect, 0, Some(F::U(code)), Some(F::S(reason)), None)
}

/// Size of the largest event frame a property change makes (a `device_property_update`
/// STREAM_DATA with device, property and value), to check it against a device's frame limit.
pub(crate) fn event_size(device: &str, property: &str, value: &Value) -> usize {
    let body = Value::Map(vec![
        ("device".to_owned(), Value::Str(device.to_owned())),
        ("property".to_owned(), Value::Str(property.to_owned())),
        ("value".to_owned(), value.clone()),
    ]);
    encode(MessageType::StreamData, u16::MAX, None, Some(F::V(&body)), None).len()
}

/// An owned copy of a field's value.
pub(crate) fn owned(field: Option<FieldValue<'_>>) -> Option<Value> {
    field.map(|f| Value::from_ref(f.as_pson()))
}

/// The `error` text of an ERROR payload, or the payload itself when it is a string.
pub(crate) fn error_message(payload: Option<&Value>) -> Option<String> {
    let p = payload?;
    p.get("error").and_then(Value::as_str).or_else(|| p.as_str()).map(str::to_owned)
}

/// A rough count of the memory a value holds, for the per-session buffer limit.
pub(crate) fn approx_size(v: &Value) -> usize {
    match v {
        Value::Bytes(b) => b.len().saturating_add(16),
        Value::Str(s) => s.len().saturating_add(16),
        Value::Array(items) => items.iter().fold(16usize, |n, i| n.saturating_add(approx_size(i))),
        Value::Map(entries) => {
            entries.iter().fold(16usize, |n, (k, i)| n.saturating_add(k.len()).saturating_add(approx_size(i)))
        }
        _ => 16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_contents() {
        assert_eq!(approx_size(&Value::Bytes(vec![0; 100])), 116);
        let m = Value::Map(vec![("ack".into(), Value::Uint(1)), ("bytes".into(), Value::Uint(2))]);
        assert_eq!(approx_size(&m), 16 + 3 + 16 + 5 + 16);
        assert_eq!(approx_size(&Value::Null), 16);
    }

    #[test]
    fn frames_match_vectors() {
        // OK for stream 1234 (vector `ok_empty`).
        assert_eq!(ok(1234, None), vec![0x01, 0x03, 0x08, 0xd2, 0x09]);
        // A non-negative integer payload travels as a varint (observed exchange #5).
        assert_eq!(ok(13, Some(&Value::Uint(3809))), vec![0x01, 0x05, 0x08, 0x0d, 0x18, 0xe1, 0x1d]);
        let e = error(18, 418, "teapot");
        assert_eq!(e[..6], [0x02, 0x14, 0x08, 0x12, 0x10, 0xa2]);
    }

    #[test]
    fn secrets_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
