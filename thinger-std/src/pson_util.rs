//! PSON helpers: serde values to owned bytes and back, and already-encoded PSON as a value.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thinger_core::pson::{self, EncodePson, Encoder, PsonRef, Sink, Value};

/// Encodes a serde value as PSON bytes.
pub(crate) fn to_pson<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, pson::Error> {
    let len = pson::serialized_len(value)?;
    let mut buf = vec![0u8; len];
    let n = pson::to_slice(value, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Decodes PSON bytes (or nothing, read as `null`) into a serde value.
pub(crate) fn from_pson<T: DeserializeOwned>(bytes: Option<&[u8]>) -> Result<T, pson::Error> {
    match bytes {
        Some(b) => pson::from_slice(b),
        None => pson::from_slice(&[0x62]), // null
    }
}

/// An owned copy of a borrowed PSON value, as bytes.
pub(crate) fn owned(value: PsonRef<'_>) -> Vec<u8> {
    Value::from_ref(value).encode_to_vec()
}

/// Bytes that already are one PSON value, written as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawPson<'a>(pub(crate) &'a [u8]);

impl EncodePson for RawPson<'_> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), pson::Error> {
        enc.raw(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let bytes = to_pson(&serde_json::json!({"a": [1, 2], "b": "x"})).unwrap();
        let back: serde_json::Value = from_pson(Some(&bytes)).unwrap();
        assert_eq!(back, serde_json::json!({"a": [1, 2], "b": "x"}));
        let none: Option<u8> = from_pson(None).unwrap();
        assert_eq!(none, None);
        let copy = owned(PsonRef::decode(&bytes).unwrap());
        assert_eq!(PsonRef::decode(&copy).unwrap().get("b").and_then(|v| v.as_str()), Some("x"));
        let mut out = [0u8; 32];
        let n = pson::encode_to_slice(&RawPson(&bytes), &mut out).unwrap();
        assert_eq!(&out[..n], &bytes[..]);
    }
}
