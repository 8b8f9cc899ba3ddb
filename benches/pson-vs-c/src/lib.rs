//! The workloads of the PSON-against-C bench, shared by the criterion bench
//! (`benches/pson_vs_c.rs`) and the instruction counter (`src/bin/pson_count.rs`).
//!
//! Every Rust workload does the work of its C counterpart in `c/driver.c`: the same input
//! values, the same output bytes, and on decode every key and value folded into the same
//! checksum. The C side is only there when the crate was built with `THINGER_C_PSON_DIR`
//! (see `build.rs`); [`C_CODEC`] says whether it was.

use serde::{Deserialize, Serialize};
use thinger_core::pson::{self, EncodePson, Encoder, Error, PsonRef, Sink};

/// Whether this build contains the C codec.
pub const C_CODEC: bool = cfg!(c_pson);

/// The benchmark payload `{"temperature": 23.5, "humidity": 60, "pressure": 1013,
/// "label": "outdoor"}`, with the label borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Payload<'a> {
    /// 23.5 (an `f64` that the float rules write as f32).
    pub temperature: f64,
    /// 60.
    pub humidity: u32,
    /// 1013.
    pub pressure: u32,
    /// "outdoor".
    pub label: &'a str,
}

/// The payload's values.
pub const PAYLOAD: Payload<'static> = Payload { temperature: 23.5, humidity: 60, pressure: 1013, label: "outdoor" };

impl EncodePson for Payload<'_> {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.map_header(4)?;
        enc.str("temperature")?;
        enc.f64(self.temperature)?;
        enc.str("humidity")?;
        enc.u64(u64::from(self.humidity))?;
        enc.str("pressure")?;
        enc.u64(u64::from(self.pressure))?;
        enc.str("label")?;
        enc.str(self.label)
    }
}

/// The checksum rule of `c/driver.c`'s `fold`: what a reader gets out of one value, as one
/// number.
#[inline]
pub fn fold(value: PsonRef<'_>) -> u64 {
    match value {
        PsonRef::Uint(v) => v,
        PsonRef::Int(v) => v as u64,
        PsonRef::F32(f) => u64::from(f.to_bits()),
        PsonRef::F64(f) => f.to_bits(),
        PsonRef::Bool(b) => u64::from(b),
        PsonRef::Null => 0,
        PsonRef::Str(s) => s.len() as u64,
        PsonRef::Bytes(b) => b.len() as u64,
        PsonRef::Map(m) => m.len() as u64,
        PsonRef::Array(a) => a.len() as u64,
    }
}

/// Encodes the payload with the hand-written [`EncodePson`] impl.
#[inline]
pub fn encode_hand(payload: &Payload<'_>, buf: &mut [u8]) -> Result<usize, Error> {
    pson::encode_to_slice(payload, buf)
}

/// Encodes the payload through serde.
#[inline]
pub fn encode_serde(payload: &Payload<'_>, buf: &mut [u8]) -> Result<usize, Error> {
    pson::to_slice(payload, buf)
}

/// Validates a flat map with [`PsonRef::decode`] and folds every key and value.
#[inline]
pub fn decode_map_walk(bytes: &[u8]) -> Result<u64, Error> {
    let map = PsonRef::decode(bytes)?.as_map().ok_or(Error::UnexpectedType)?;
    Ok(map.iter().fold(0u64, |acc, (key, value)| acc.wrapping_add(key.len() as u64).wrapping_add(fold(value))))
}

/// Validates a flat array with [`PsonRef::decode`] and folds every element.
#[inline]
pub fn decode_array_walk(bytes: &[u8]) -> Result<u64, Error> {
    let array = PsonRef::decode(bytes)?.as_array().ok_or(Error::UnexpectedType)?;
    Ok(array.iter().fold(0u64, |acc, value| acc.wrapping_add(fold(value))))
}

/// Reads a flat map in one pass with [`pson::MapReader`] and folds every key and value.
#[inline]
pub fn read_map(bytes: &[u8]) -> Result<u64, Error> {
    let mut acc = 0u64;
    for pair in pson::MapReader::new(bytes)? {
        let (key, value) = pair?;
        acc = acc.wrapping_add(key.len() as u64).wrapping_add(fold(value));
    }
    Ok(acc)
}

/// Reads a flat array in one pass with [`pson::ArrayReader`] and folds every element.
#[inline]
pub fn read_array(bytes: &[u8]) -> Result<u64, Error> {
    let mut acc = 0u64;
    for value in pson::ArrayReader::new(bytes)? {
        acc = acc.wrapping_add(fold(value?));
    }
    Ok(acc)
}

/// Decodes the payload through serde, label borrowed, and folds it like the walk.
#[inline]
pub fn decode_serde(bytes: &[u8]) -> Result<u64, Error> {
    let p: Payload<'_> = pson::from_slice(bytes)?;
    Ok(u64::from(p.humidity) + u64::from(p.pressure) + p.temperature.to_bits() + p.label.len() as u64)
}

/// [`PsonRef::decode`] alone: the validating pass.
#[inline]
pub fn decode_validate(bytes: &[u8]) -> Result<usize, Error> {
    PsonRef::decode(bytes).map(|v| v.as_map().map_or(0, |m| m.len()))
}

/// The keys and values of the map rows: `"sensor_0": 0`, `"sensor_1": 37`, …
#[derive(Debug, Clone)]
pub struct MapData {
    /// `sensor_{i}`.
    pub keys: Vec<String>,
    /// `i * 37`: one to three bytes each on the wire.
    pub values: Vec<u64>,
}

impl MapData {
    /// `n` entries.
    pub fn new(n: usize) -> Self {
        MapData {
            keys: (0..n).map(|i| format!("sensor_{i}")).collect(),
            values: (0..n as u64).map(|i| i * 37).collect(),
        }
    }
}

/// Encodes the map rows' map with [`Encoder`].
#[inline]
pub fn encode_map(data: &MapData, buf: &mut [u8]) -> Result<usize, Error> {
    let mut enc = Encoder::new(pson::SliceSink::new(buf));
    enc.map_header(data.keys.len())?;
    for (key, value) in data.keys.iter().zip(&data.values) {
        enc.str(key)?;
        enc.u64(*value)?;
    }
    Ok(enc.into_sink().written())
}

/// Encodes the array rows' array with [`Encoder`].
#[inline]
pub fn encode_array(values: &[u64], buf: &mut [u8]) -> Result<usize, Error> {
    let mut enc = Encoder::new(pson::SliceSink::new(buf));
    enc.array_header(values.len())?;
    for value in values {
        enc.u64(*value)?;
    }
    Ok(enc.into_sink().written())
}

/// The C codec, when built in.
#[cfg(c_pson)]
pub mod c {
    use super::{MapData, Payload};
    use core::ffi::c_char;

    unsafe extern "C" {
        fn c_encode_payload(
            buf: *mut u8,
            cap: usize,
            temperature: f32,
            humidity: u64,
            pressure: u64,
            label: *const c_char,
            label_len: usize,
        ) -> usize;
        fn c_encode_map(
            buf: *mut u8,
            cap: usize,
            keys: *const *const c_char,
            key_lens: *const usize,
            values: *const u64,
            n: usize,
        ) -> usize;
        fn c_encode_array(buf: *mut u8, cap: usize, values: *const u64, n: usize) -> usize;
        fn c_decode_map_walk(buf: *const u8, len: usize, sum: *mut u64) -> i32;
        fn c_decode_array_walk(buf: *const u8, len: usize, sum: *mut u64) -> i32;
    }

    /// `c_encode_payload` (the official main.c encodes the temperature as a C `float`).
    #[inline]
    pub fn encode_payload(payload: &Payload<'_>, buf: &mut [u8]) -> Option<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes and the label for reads of
        // its length; the C code stays within both (it checks `cap` before every write).
        let n = unsafe {
            c_encode_payload(
                buf.as_mut_ptr(),
                buf.len(),
                payload.temperature as f32,
                u64::from(payload.humidity),
                u64::from(payload.pressure),
                payload.label.as_ptr().cast(),
                payload.label.len(),
            )
        };
        (n != 0).then_some(n)
    }

    /// Pointers and lengths of the map rows' keys, made once outside the timed loop.
    #[derive(Debug)]
    pub struct CKeys {
        ptrs: Vec<*const c_char>,
        lens: Vec<usize>,
    }

    impl CKeys {
        /// Borrows the keys of `data` (which must outlive the result's use).
        pub fn new(data: &MapData) -> Self {
            CKeys {
                ptrs: data.keys.iter().map(|k| k.as_ptr().cast()).collect(),
                lens: data.keys.iter().map(String::len).collect(),
            }
        }
    }

    /// `c_encode_map`.
    #[inline]
    pub fn encode_map(data: &MapData, keys: &CKeys, buf: &mut [u8]) -> Option<usize> {
        assert_eq!(keys.ptrs.len(), data.values.len());
        // SAFETY: the three arrays have `n` entries, each key pointer is valid for its length
        // (`CKeys::new` took them from `data`, which is borrowed for this call), `buf` as above.
        let n = unsafe {
            c_encode_map(
                buf.as_mut_ptr(),
                buf.len(),
                keys.ptrs.as_ptr(),
                keys.lens.as_ptr(),
                data.values.as_ptr(),
                data.values.len(),
            )
        };
        (n != 0).then_some(n)
    }

    /// `c_encode_array`.
    #[inline]
    pub fn encode_array(values: &[u64], buf: &mut [u8]) -> Option<usize> {
        // SAFETY: `values` has `values.len()` entries; `buf` as above.
        let n = unsafe { c_encode_array(buf.as_mut_ptr(), buf.len(), values.as_ptr(), values.len()) };
        (n != 0).then_some(n)
    }

    /// `c_decode_map_walk`: the checksum, or `None` when the C decoder refuses the input.
    #[inline]
    pub fn decode_map_walk(bytes: &[u8]) -> Option<u64> {
        let mut sum = 0;
        // SAFETY: `bytes` is valid for reads of its length; the C decoder checks `len`
        // before every read; `sum` is a valid `u64`.
        let rc = unsafe { c_decode_map_walk(bytes.as_ptr(), bytes.len(), &mut sum) };
        (rc == 0).then_some(sum)
    }

    /// `c_decode_array_walk`.
    #[inline]
    pub fn decode_array_walk(bytes: &[u8]) -> Option<u64> {
        let mut sum = 0;
        // SAFETY: as for `decode_map_walk`.
        let rc = unsafe { c_decode_array_walk(bytes.as_ptr(), bytes.len(), &mut sum) };
        (rc == 0).then_some(sum)
    }
}

/// The sizes of the map and array rows.
pub const SCALING_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
