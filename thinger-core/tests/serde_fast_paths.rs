//! serde decode: the deserializer's in-line fast paths (hosts) against the general read.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use thinger_core::pson::{PsonRef, from_slice, to_slice};

fn ser<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let n = to_slice(value, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// What a narrow unsigned type, `f64`, `f32` and `&str` read from one PSON value, by the rules
/// of the general read (`PsonRef::decode`): the deserializer's in-line fast paths
/// (hosts) must give the same.
fn expected_u64(value: PsonRef<'_>, max: u64) -> Option<u64> {
    value.as_u64().filter(|&v| v <= max)
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Two<'a> {
    n: u16,
    s: &'a str,
}

fn check_fast_paths(bytes: &[u8]) {
    let decoded = PsonRef::decode(bytes);
    let value = decoded.ok();
    assert_eq!(
        from_slice::<u8>(bytes).ok().map(u64::from),
        value.and_then(|v| expected_u64(v, u8::MAX.into())),
        "{bytes:02x?}"
    );
    assert_eq!(
        from_slice::<u16>(bytes).ok().map(u64::from),
        value.and_then(|v| expected_u64(v, u16::MAX.into())),
        "{bytes:02x?}"
    );
    assert_eq!(
        from_slice::<u32>(bytes).ok().map(u64::from),
        value.and_then(|v| expected_u64(v, u32::MAX.into())),
        "{bytes:02x?}"
    );
    let f = value.and_then(|v| match v {
        PsonRef::Uint(v) => Some(v as f64),
        PsonRef::Int(v) => Some(v as f64),
        PsonRef::F32(f) => Some(f64::from(f)),
        PsonRef::F64(f) => Some(f),
        _ => None,
    });
    assert_eq!(from_slice::<f64>(bytes).ok().map(f64::to_bits), f.map(f64::to_bits), "{bytes:02x?}");
    // `f32`: integers converted, an f32 as it is, an f64 narrowed (serde's f32 visitor).
    let f32_expected = value.and_then(|v| match v {
        PsonRef::Uint(v) => Some(v as f32),
        PsonRef::Int(v) => Some(v as f32),
        PsonRef::F32(f) => Some(f),
        PsonRef::F64(f) => Some(f as f32),
        _ => None,
    });
    assert_eq!(from_slice::<f32>(bytes).ok().map(f32::to_bits), f32_expected.map(f32::to_bits), "{bytes:02x?}");
    // serde's `&str` takes UTF-8 byte strings too.
    let s = value.and_then(|v| match v {
        PsonRef::Str(s) => Some(s),
        PsonRef::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    });
    assert_eq!(from_slice::<&str>(bytes).ok(), s, "{bytes:02x?}");
    if let Ok(two) = from_slice::<Two<'_>>(bytes) {
        let map = value.and_then(|v| v.as_map()).expect("a struct comes from a map");
        assert_eq!(map.len(), 2, "{bytes:02x?}");
        assert_eq!(
            value.and_then(|v| v.get("n")).and_then(|n| expected_u64(n, u16::MAX.into())),
            Some(u64::from(two.n))
        );
        assert_eq!(value.and_then(|v| v.get("s")).and_then(|s| s.as_str()), Some(two.s));
    } else if let Some(map) = value.and_then(|v| v.as_map()) {
        // A map of exactly the two fields, each of the right type, must read.
        let fields: Vec<_> = map.iter().collect();
        let good = fields.len() == 2
            && fields.iter().any(|(k, v)| *k == "n" && expected_u64(*v, u16::MAX.into()).is_some())
            && fields.iter().any(|(k, v)| *k == "s" && v.as_str().is_some());
        assert!(!good, "{bytes:02x?}");
    }
}

#[test]
fn fast_paths_agree_with_the_general_read_on_every_short_form() {
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for tag in 0..=255u8 {
        for after in [&[][..], &[0x01], &[0x80, 0x01], &[0xff, 0xff, 0x01], &[0xe8, 0x07], &[0xc3, 0xa9, 0x41, 0x42]] {
            let mut bytes = vec![tag];
            bytes.extend_from_slice(after);
            cases.push(bytes);
        }
    }
    for value in [0u64, 30, 31, 255, 256, 65_535, 65_536, 0x1f_ffff, 0x20_0000, u64::from(u32::MAX), u64::MAX] {
        cases.push(ser(&value));
    }
    for s in ["", "a", "outdoor", "ünïcode", "x".repeat(30).as_str(), "y".repeat(31).as_str()] {
        cases.push(ser(s));
    }
    cases.push(ser(&Two { n: 7, s: "ok" }));
    for bytes in &cases {
        for cut in 0..=bytes.len() {
            check_fast_paths(&bytes[..cut]);
        }
    }
}

proptest! {
    #[test]
    fn fast_paths_agree_with_the_general_read(bytes in proptest::collection::vec(any::<u8>(), 0..24), tag in prop_oneof![0x00u8..0x20, 0x40u8..0x42, 0x80u8..0xa0, 0xc0u8..0xc4, any::<u8>()]) {
        let mut bytes = bytes;
        if let Some(first) = bytes.first_mut() {
            *first = tag;
        }
        check_fast_paths(&bytes);
    }
}
