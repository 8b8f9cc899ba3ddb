//! Helpers shared by the integration tests (each test file uses a subset).
#![allow(dead_code, unreachable_pub)]

use proptest::prelude::*;
use thinger_core::pson::Value;

/// Parses lowercase or uppercase hex (no separators).
pub fn hex(text: &str) -> Vec<u8> {
    let text = text.trim();
    assert!(text.len().is_multiple_of(2), "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {text}")))
        .collect()
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Structural equality where floats compare by bit pattern (so NaN equals the same NaN and
/// 0.0 differs from -0.0).
pub fn same_bits(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_bits(p, q)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kp, p), (kq, q))| kp == kq && same_bits(p, q))
        }
        _ => a == b,
    }
}

/// What decoding the encoding of `value` yields, written independently of the encoder: the
/// protocol's float rules applied to every `F64` (whole in i64 range → integer; exact as
/// f32 → f32; else f64, NaN bits kept). Everything else decodes as itself.
pub fn after_round_trip(value: &Value) -> Value {
    match value {
        Value::F64(f) => {
            let f = *f;
            let i64_range = -9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0;
            if i64_range.contains(&f) && (f as i64) as f64 == f {
                let i = f as i64;
                if i < 0 { Value::Int(i) } else { Value::Uint(i as u64) }
            } else if !f.is_nan() && f64::from(f as f32) == f {
                Value::F32(f as f32)
            } else {
                Value::F64(f)
            }
        }
        Value::Int(i) if *i >= 0 => Value::Uint(*i as u64),
        Value::Array(items) => Value::Array(items.iter().map(after_round_trip).collect()),
        Value::Map(pairs) => Value::Map(pairs.iter().map(|(k, v)| (k.clone(), after_round_trip(v))).collect()),
        other => other.clone(),
    }
}

/// Any `f64`, with extra weight on the cases the encoder treats specially: whole numbers,
/// values exact as f32, and arbitrary bit patterns (every kind of NaN).
pub fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::num::f64::ANY,
        any::<i64>().prop_map(|i| i as f64),
        any::<i32>().prop_map(f64::from),
        any::<f32>().prop_map(f64::from),
        any::<u64>().prop_map(f64::from_bits),
        Just(9_223_372_036_854_775_808.0),
        Just(-9_223_372_036_854_775_808.0),
        Just(-0.0),
    ]
}

/// Any `f32`, NaN payloads included.
pub fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![proptest::num::f32::ANY, any::<u32>().prop_map(f32::from_bits)]
}

/// Strings from empty to past the 31-byte inline length, any Unicode.
pub fn any_string() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z]{0,8}", proptest::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),]
}

/// A leaf (non-container) value.
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::Uint),
        (0u64..64).prop_map(Value::Uint),
        (i64::MIN..0).prop_map(Value::Int),
        (-64i64..0).prop_map(Value::Int),
        any_f32().prop_map(Value::F32),
        any_f64().prop_map(Value::F64),
        any_string().prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
    ]
}

/// Any value: nesting up to 5 levels, about 48 nodes, small containers plus arrays of 28 to
/// 40 leaves (so counts above 30 use the extended tag).
pub fn any_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            3 => proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            1 => proptest::collection::vec(leaf(), 28..40).prop_map(Value::Array),
            3 => proptest::collection::vec((any_string(), inner), 0..6).prop_map(Value::Map),
        ]
    })
}
