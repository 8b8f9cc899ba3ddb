//! Property tests of the PSON codec through the owned `Value`.

mod common;

use common::{after_round_trip, any_value, same_bits};
use proptest::prelude::*;
use thinger_core::pson::{self, Error, PsonRef, Value};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, ..ProptestConfig::default() }
}

/// Encodes `value` and mutates the bytes: flip one byte, cut the end, or insert a byte.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (any_value(), any::<prop::sample::Index>(), any::<u8>(), 0u8..3).prop_map(|(value, at, byte, how)| {
        let mut bytes = value.encode_to_vec();
        let i = at.index(bytes.len() + 1);
        match how {
            0 if i < bytes.len() => bytes[i] ^= byte | 1,
            1 => bytes.truncate(i),
            _ => bytes.insert(i, byte),
        }
        bytes
    })
}

/// Whatever decoded from arbitrary input converts to a `Value` that survives another
/// round trip by value, and whose encoding is then stable.
fn check_decoded(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(view) = PsonRef::decode(bytes) else {
        return Ok(());
    };
    let value = Value::from_ref(view);
    prop_assert!(same_bits(&Value::decode(bytes).unwrap(), &value));
    let encoded = value.encode_to_vec();
    let again = Value::decode(&encoded).unwrap();
    prop_assert!(again.value_eq(&value), "{:?} vs {:?}", again, value);
    prop_assert_eq!(again.encode_to_vec(), encoded);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn round_trip(value in any_value()) {
        let bytes = value.encode_to_vec();
        let decoded = Value::decode(&bytes).unwrap();
        // Exact representation, NaN bits included: F32 stays F32, F64 follows the float rules.
        let expected = after_round_trip(&value);
        prop_assert!(same_bits(&decoded, &expected), "decoded {:?}\nexpected {:?}", decoded, expected);
        prop_assert!(decoded.value_eq(&value));
        // The borrowed view agrees, and re-encodes to the same bytes.
        let view = PsonRef::decode(&bytes).unwrap();
        prop_assert!(same_bits(&Value::from_ref(view), &decoded));
        let mut again = vec![0u8; bytes.len()];
        prop_assert_eq!(pson::encode_to_slice(&view, &mut again), Ok(bytes.len()));
        prop_assert_eq!(&again, &bytes);
        prop_assert_eq!(decoded.encode_to_vec(), bytes);
    }

    #[test]
    fn serde_impls_agree_with_the_codec(value in any_value()) {
        // Value's Serialize through the PSON serializer: same value back.
        let len = pson::serialized_len(&value).unwrap();
        let mut buf = vec![0u8; len];
        prop_assert_eq!(pson::to_slice(&value, &mut buf), Ok(len));
        let back = Value::decode(&buf).unwrap();
        prop_assert!(back.value_eq(&value), "{:?} vs {:?}", back, value);
        // Value's Deserialize through the PSON deserializer: same as Value::decode.
        let bytes = value.encode_to_vec();
        let via_serde: Value = pson::from_slice(&bytes).unwrap();
        let decoded = Value::decode(&bytes).unwrap();
        prop_assert!(same_bits(&via_serde, &decoded), "{:?} vs {:?}", via_serde, decoded);
    }

    #[test]
    fn encoded_len_is_bytes_written(value in any_value()) {
        let len = pson::encoded_len(&value);
        let mut buf = vec![0u8; len + 8];
        prop_assert_eq!(pson::encode_to_slice(&value, &mut buf), Ok(len));
        prop_assert_eq!(value.encode_to_vec().len(), len);
        prop_assert_eq!(&buf[..len], &value.encode_to_vec()[..]);
    }

    #[test]
    fn every_short_buffer_is_buffer_full(value in any_value()) {
        let len = pson::encoded_len(&value);
        let mut buf = vec![0u8; len];
        for cut in 0..len {
            prop_assert_eq!(pson::encode_to_slice(&value, &mut buf[..cut]), Err(Error::BufferFull), "cut {}", cut);
        }
        prop_assert_eq!(pson::encode_to_slice(&value, &mut buf), Ok(len));
    }

    #[test]
    fn any_bytes_decode_or_error(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        check_decoded(&bytes)?;
    }

    #[test]
    fn decoded_f64_may_grow_when_reencoded(f in common::any_f64()) {
        // An f64 on the wire is 9 bytes; a whole one is re-encoded as an integer of up to
        // 11 bytes. Decoding it must still give the same number back.
        let mut wire = vec![0x41];
        wire.extend_from_slice(&f.to_le_bytes());
        check_decoded(&wire)?;
    }

    #[test]
    fn mutated_encodings_decode_or_error(bytes in mutated()) {
        check_decoded(&bytes)?;
    }
}

/// The value strategy reaches the cases the codec treats specially.
#[test]
fn strategy_covers_edge_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn depth(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            Value::Map(m) => 1 + m.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
            _ => 0,
        }
    }
    fn any_node(v: &Value, f: &dyn Fn(&Value) -> bool) -> bool {
        f(v) || match v {
            Value::Array(a) => a.iter().any(|v| any_node(v, f)),
            Value::Map(m) => m.iter().any(|(_, v)| any_node(v, f)),
            _ => false,
        }
    }

    let mut runner = TestRunner::deterministic();
    let strategy = any_value();
    let values: Vec<Value> = (0..256).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect();
    let seen = |f: &dyn Fn(&Value) -> bool| values.iter().any(|v| any_node(v, f));
    assert!(values.iter().any(|v| depth(v) >= 3), "no nesting");
    assert!(seen(&|v| v.as_array().is_some_and(|a| a.len() > 30)), "no long array");
    assert!(seen(&|v| v.as_map().is_some_and(|m| m.len() > 1)), "no map");
    assert!(seen(&|v| matches!(v, Value::F64(f) if f.is_nan())), "no f64 NaN");
    assert!(seen(&|v| matches!(v, Value::F32(f) if f.is_nan())), "no f32 NaN");
    assert!(seen(&|v| matches!(v, Value::F64(f) if *f != 0.0 && (*f as i64) as f64 == *f)), "no whole f64");
    assert!(seen(&|v| v.as_str().is_some_and(|s| s.len() > 30)), "no long string");
    assert!(seen(&|v| matches!(v, Value::Int(_))), "no negative integer");
}
