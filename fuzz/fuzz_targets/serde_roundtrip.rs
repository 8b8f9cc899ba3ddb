//! Serde over PSON with arbitrary bytes.
//!
//! The input is deserialized into a derived struct and into the owned `pson::Value`. Whatever
//! decodes is serialized again with `pson::to_slice`, and decoding that must give the same
//! value back (numbers compared by value, NaN by bits). The bytes written for a `Value` must
//! also be valid for the zero-copy reader, and `Value`'s own `EncodePson` must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use thinger_core::pson::{self, PsonRef, Value};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Kind {
    Indoor,
    Outdoor,
    Probe(u8),
    Range { low: i32, high: i32 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    on: bool,
    level: Option<i64>,
    ratio: f32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    temperature: f64,
    humidity: u32,
    #[serde(default)]
    label: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default)]
    inner: Option<Inner>,
    #[serde(default)]
    pair: Option<(u16, i8)>,
}

const MAX_OUT: usize = 8192;

/// Serializes, deserializes again and hands back the bytes and the new value.
fn round_trip<T>(value: &T, buf: &mut [u8]) -> (usize, T)
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    let n = pson::to_slice(value, buf).expect("a decoded value serializes");
    let again: T = pson::from_slice(&buf[..n]).expect("serialized value deserializes");
    (n, again)
}

fn reading_eq(a: &Reading, b: &Reading) -> bool {
    let inner_eq = match (&a.inner, &b.inner) {
        (Some(x), Some(y)) => x.on == y.on && x.level == y.level && x.ratio.to_bits() == y.ratio.to_bits(),
        (None, None) => true,
        _ => false,
    };
    // `-0.0` is written as the integer 0 (a whole number), so it comes back as `0.0`.
    let temp_eq = a.temperature.to_bits() == b.temperature.to_bits() || a.temperature == b.temperature;
    temp_eq
        && inner_eq
        && a.humidity == b.humidity
        && a.label == b.label
        && a.tags == b.tags
        && a.kind == b.kind
        && a.pair == b.pair
}

fuzz_target!(|data: &[u8]| {
    let mut buf = vec![0u8; MAX_OUT];

    if let Ok(reading) = pson::from_slice::<Reading>(data) {
        let (_, again) = round_trip(&reading, &mut buf);
        assert!(reading_eq(&reading, &again), "{reading:?} != {again:?}");
    }

    if let Ok(value) = pson::from_slice::<Value>(data) {
        let (n, again) = round_trip(&value, &mut buf);
        assert!(value.value_eq(&again), "{value:?} != {again:?}");
        // What serde wrote is plain PSON for the zero-copy reader and the size-only pass.
        assert!(PsonRef::decode(&buf[..n]).is_ok());
        assert_eq!(pson::serialized_len(&value), Ok(n));
        // Value's own EncodePson (F32 kept raw) agrees by value with the serde path.
        let m = pson::encode_to_slice(&value, &mut buf).expect("EncodePson of a decoded value");
        assert_eq!(m, pson::encoded_len(&value));
        let direct = Value::decode(&buf[..m]).expect("EncodePson output decodes");
        assert!(direct.value_eq(&value), "{direct:?} != {value:?}");
    }
});
