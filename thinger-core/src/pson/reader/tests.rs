//! Tests of the validating decoder and its views.

use super::*;
use proptest::prelude::*;

#[test]
fn hostile_lengths_are_refused_before_use() {
    // A string claiming 4 GiB with 1 byte of input.
    assert_eq!(PsonRef::decode(&[0x9f, 0xff, 0xff, 0xff, 0xff, 0x0f, b'a']), Err(Error::LengthExceedsInput));
    // A map claiming u64::MAX pairs.
    let mut m = std::vec![0xdf];
    m.extend_from_slice(&[0xff; 9]);
    m.push(0x01);
    assert_eq!(PsonRef::decode(&m), Err(Error::LengthExceedsInput));
    assert_eq!(PsonRef::decode(&[0xe5, 0x01]), Err(Error::LengthExceedsInput));
    assert_eq!(PsonRef::decode(&[]), Err(Error::Truncated));
    assert_eq!(PsonRef::decode(&[0x85]), Err(Error::Truncated));
}

#[test]
fn bad_tags_and_keys() {
    assert_eq!(PsonRef::decode(&[0x42]), Err(Error::InvalidTag(0x42)));
    assert_eq!(PsonRef::decode(&[0x63]), Err(Error::InvalidTag(0x63)));
    assert_eq!(PsonRef::decode(&[0xc1, 0x01, 0x01]), Err(Error::NonStringKey));
    assert_eq!(PsonRef::decode(&[0x82, 0xff, 0xfe]), Err(Error::InvalidUtf8));
    assert_eq!(PsonRef::decode(&[0xc1, 0x82, 0xff, 0xfe, 0x01]), Err(Error::InvalidUtf8));
    assert_eq!(PsonRef::decode(&[0x40, 0, 0]), Err(Error::LengthExceedsInput));
    assert_eq!(PsonRef::decode(&[0x1f, 0x80]), Err(Error::Truncated));
    assert_eq!(
        PsonRef::decode(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        Err(Error::VarintOverflow)
    );
}

#[test]
fn negative_zero_is_zero() {
    assert_eq!(PsonRef::decode(&[0x20]).unwrap().as_u64(), Some(0));
    assert_eq!(PsonRef::decode(&[0x20]).unwrap().as_i64(), Some(0));
}

#[test]
fn negative_range() {
    let mut min = std::vec![0x3f];
    min.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    assert_eq!(PsonRef::decode(&min), Ok(PsonRef::Int(i64::MIN)));
    let mut over = std::vec![0x3f];
    over.extend_from_slice(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    assert_eq!(PsonRef::decode(&over), Err(Error::IntegerOverflow));
}

#[test]
fn depth_limit_exact() {
    let mut nested = std::vec![0xe1; DEFAULT_MAX_DEPTH - 1];
    nested.push(0xe0);
    assert!(PsonRef::decode(&nested).is_ok());
    let mut deeper = std::vec![0xe1; DEFAULT_MAX_DEPTH];
    deeper.push(0xe0);
    assert_eq!(PsonRef::decode(&deeper), Err(Error::DepthLimitExceeded));
    // Maps count too.
    let mut maps = std::vec::Vec::new();
    for _ in 0..=DEFAULT_MAX_DEPTH {
        maps.extend_from_slice(&[0xc1, 0x81, b'k']);
    }
    maps.push(0x00);
    assert_eq!(PsonRef::decode(&maps), Err(Error::DepthLimitExceeded));
    assert!(PsonRef::decode_with(&maps, &DecodeOptions::new().max_depth(DEFAULT_MAX_DEPTH + 1)).is_ok());
    assert_eq!(PsonRef::decode_with(&[0x01], &DecodeOptions::new().max_depth(0)), Ok(PsonRef::Uint(1)));
}

proptest! {
    #[test]
    fn any_bytes_decode_or_error(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(v) = PsonRef::decode(&bytes) {
            // A decoded value re-encodes to the same length or shorter (non-minimal tags).
            let mut buf = std::vec![0u8; bytes.len()];
            let n = crate::pson::encode_to_slice(&v, &mut buf).unwrap();
            prop_assert!(n <= bytes.len());
            walk(v);
        }
    }
}

fn walk(v: PsonRef<'_>) {
    match v {
        PsonRef::Map(m) => m.iter().for_each(|(_, v)| walk(v)),
        PsonRef::Array(a) => a.iter().for_each(walk),
        _ => {}
    }
}

/// `decode_prefix_with` (with the hosts' top-level container path) against the general
/// `Cursor::value`: same value, same error, same length, at depth limits 0 to 3.
fn same_as_general(bytes: &[u8]) {
    for depth in 0..4 {
        let options = DecodeOptions::new().max_depth(depth);
        let mut general = Cursor::new(bytes);
        let want = general.value(options.depth_limit(), true).map(|v| (v, general.position()));
        // Floats compared by their bits (a NaN is not equal to itself).
        match (PsonRef::decode_prefix_with(bytes, &options), want) {
            (Ok((PsonRef::F32(a), n)), Ok((PsonRef::F32(b), m))) => {
                assert_eq!((a.to_bits(), n), (b.to_bits(), m), "{bytes:02x?} {depth}")
            }
            (Ok((PsonRef::F64(a), n)), Ok((PsonRef::F64(b), m))) => {
                assert_eq!((a.to_bits(), n), (b.to_bits(), m), "{bytes:02x?} {depth}")
            }
            (got, want) => assert_eq!(got, want, "{bytes:02x?} {depth}"),
        }
    }
}

#[test]
fn top_level_containers_agree_with_the_general_path() {
    // Every map and array header byte, with bodies cut at every length.
    let body = [0x81, b'k', 0x1f, 0xac, 0x02, 0x81, b'k', 0xe1, 0x01, 0x81, b'k', 0x40, 0, 0, 0x80, 0x3e];
    for header in 0xc0..=0xffu8 {
        for cut in 0..=body.len() {
            let mut bytes = std::vec![header];
            bytes.extend_from_slice(&body[..cut]);
            same_as_general(&bytes);
        }
    }
}

proptest! {
    #[test]
    fn decode_prefix_agrees_with_the_general_path(tail in proptest::collection::vec(any::<u8>(), 0..48), header in 0xc0..=0xffu8) {
        let mut bytes = std::vec![header];
        bytes.extend_from_slice(&tail);
        same_as_general(&bytes);
        same_as_general(&tail);
    }
}

/// The readers are shared borrows of the input: they can cross threads like `&[u8]` (the
/// hosts' two-pointer cursor must not take that away). A compile-time check.
#[test]
fn pson_readers_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PsonRef<'static>>();
    send_sync::<crate::pson::MapRef<'static>>();
    send_sync::<crate::pson::ArrayRef<'static>>();
    send_sync::<crate::pson::MapIter<'static>>();
    send_sync::<crate::pson::ArrayIter<'static>>();
    send_sync::<crate::pson::MapReader<'static>>();
    send_sync::<crate::pson::ArrayReader<'static>>();
    #[cfg(feature = "serde")]
    send_sync::<crate::pson::Deserializer<'static>>();
}
