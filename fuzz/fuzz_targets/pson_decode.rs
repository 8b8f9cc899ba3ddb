//! PSON decoding of arbitrary bytes.
//!
//! For every input that decodes: walk the whole value through the map/array iterators,
//! re-encode it element by element, and check that
//! * the re-encoding decodes to a structurally equal value (floats compared bit for bit),
//! * it is never longer than the input (our tags are minimal, the input's may not be),
//! * `encoded_len` agrees with the bytes written,
//! * the nesting depth we count is exactly the smallest `max_depth` that accepts the input,
//! * lookups by key find the first pair with that key (inputs up to 512 bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_core::pson::{DecodeOptions, EncodePson, Encoder, Error, PsonRef, Sink, SliceSink, encoded_len};

/// A re-encoder that goes through the iterators instead of copying container bodies.
struct Walked<'a>(PsonRef<'a>);

impl EncodePson for Walked<'_> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        match self.0 {
            PsonRef::Null => enc.null(),
            PsonRef::Bool(b) => enc.bool(b),
            PsonRef::Uint(v) => enc.u64(v),
            PsonRef::Int(v) => enc.i64(v),
            PsonRef::F32(f) => enc.f32_raw(f),
            PsonRef::F64(f) => enc.f64_raw(f),
            PsonRef::Str(s) => enc.str(s),
            PsonRef::Bytes(b) => enc.bytes(b),
            PsonRef::Map(m) => {
                enc.map_header(m.len())?;
                let mut pairs = 0;
                for (key, value) in m.iter() {
                    enc.str(key)?;
                    Walked(value).encode_pson(enc)?;
                    pairs += 1;
                }
                assert_eq!(pairs, m.len(), "map iterator ended early");
                Ok(())
            }
            PsonRef::Array(a) => {
                enc.array_header(a.len())?;
                let mut items = 0;
                for value in a.iter() {
                    Walked(value).encode_pson(enc)?;
                    items += 1;
                }
                assert_eq!(items, a.len(), "array iterator ended early");
                Ok(())
            }
        }
    }
}

/// Structural equality; floats by bit pattern so NaN payloads count.
fn same(a: PsonRef<'_>, b: PsonRef<'_>) -> bool {
    match (a, b) {
        (PsonRef::F32(x), PsonRef::F32(y)) => x.to_bits() == y.to_bits(),
        (PsonRef::F64(x), PsonRef::F64(y)) => x.to_bits() == y.to_bits(),
        // A negative-integer tag with magnitude 0 (`0x20`) decodes as `Int(0)` and is
        // re-encoded canonically as `Uint(0)`: same number.
        (PsonRef::Int(x), PsonRef::Uint(y)) | (PsonRef::Uint(y), PsonRef::Int(x)) => u64::try_from(x) == Ok(y),
        (PsonRef::Map(x), PsonRef::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (PsonRef::Array(x), PsonRef::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(va, vb)| same(va, vb))
        }
        (PsonRef::Map(_) | PsonRef::Array(_), _) | (_, PsonRef::Map(_) | PsonRef::Array(_)) => false,
        (PsonRef::F32(_) | PsonRef::F64(_), _) | (_, PsonRef::F32(_) | PsonRef::F64(_)) => false,
        _ => a == b,
    }
}

/// Containers nested inside each other, the outermost counting as one.
fn depth(v: PsonRef<'_>) -> usize {
    match v {
        PsonRef::Map(m) => 1 + m.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        PsonRef::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Every key of every map resolves through `get` to the first pair with that key, and
/// every array index through `get` to its element. Quadratic, so only for small containers.
fn check_lookups(v: PsonRef<'_>) {
    const SMALL: usize = 32;
    match v {
        PsonRef::Map(m) if m.len() <= SMALL => {
            for (key, value) in m.iter() {
                let first = m.iter().find(|(k, _)| *k == key).map(|(_, v)| v).unwrap();
                assert!(same(m.get(key).expect("key present"), first));
                check_lookups(value);
            }
        }
        PsonRef::Array(a) if a.len() <= SMALL => {
            for (i, value) in a.iter().enumerate() {
                assert!(same(a.get(i).expect("index in range"), value));
                check_lookups(value);
            }
            assert!(a.get(a.len()).is_none());
        }
        PsonRef::Map(m) => m.iter().for_each(|(_, value)| check_lookups(value)),
        PsonRef::Array(a) => a.iter().for_each(check_lookups),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let options = DecodeOptions::new();
    let Ok(value) = PsonRef::decode_with(data, &options) else {
        return;
    };

    // Re-encode by walking; the result can only be shorter (minimal tags) or equal.
    let mut buf = vec![0u8; data.len()];
    let mut enc = Encoder::new(SliceSink::new(&mut buf));
    Walked(value).encode_pson(&mut enc).expect("re-encoding fits in the input's length");
    let written = enc.into_sink().written();
    assert_eq!(written, encoded_len(&Walked(value)));
    let again = PsonRef::decode_with(&buf[..written], &options).expect("re-encoded value decodes");
    assert!(same(value, again), "re-encoded value differs: {value:?} vs {again:?}");

    // The crate's own EncodePson for PsonRef (copies container bodies) agrees too.
    let mut copy = vec![0u8; data.len()];
    let n = thinger_core::pson::encode_to_slice(&value, &mut copy).expect("copy fits");
    let copied = PsonRef::decode_with(&copy[..n], &options).expect("copied value decodes");
    assert!(same(value, copied));

    // The depth limit is exact.
    let d = depth(value);
    assert!(d <= options.max_depth);
    assert!(PsonRef::decode_with(data, &DecodeOptions::new().max_depth(d)).is_ok());
    if d > 0 {
        assert_eq!(PsonRef::decode_with(data, &DecodeOptions::new().max_depth(d - 1)), Err(Error::DepthLimitExceeded));
    }

    // Lookups are quadratic in the container size: check them on inputs small enough to
    // keep the fuzzer fast (most interesting shapes fit).
    if data.len() <= 512 {
        check_lookups(value);
    }
});
