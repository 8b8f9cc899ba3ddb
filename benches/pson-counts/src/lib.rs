//! The workloads of thinger-core's PSON bench, shared by the criterion bench
//! (`benches/pson_counts.rs`) and the instruction counter (`src/bin/pson_count.rs`, the
//! loop in [`count`]).
//!
//! They are the Rust side of the comparison with the official C codec (docs/benchmarks.md):
//! the same input values and output bytes as the C driver, and on decode every key and value
//! folded into the same checksum. The C side is built and counted outside this repository.

use serde::{Deserialize, Serialize};
use thinger_core::pson::{self, EncodePson, Encoder, Error, Key, PsonRef, Sink};

pub mod count;
pub mod rounds;

/// The benchmark payload `{"temperature": 23.5, "humidity": 60, "pressure": 1013,
/// "label": "outdoor"}`, with the label borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Payload<'a> {
    /// 23.5, an `f32` as in the official suite's `main.c` (`pson_encode_float` takes a C
    /// `float`): the encoder's whole-number test, then the f32 as is. (Before the ninth
    /// round an `f64`, which also paid the f64 -> f32 exactness test.)
    pub temperature: f32,
    /// 60.
    pub humidity: u32,
    /// 1013.
    pub pressure: u32,
    /// "outdoor".
    pub label: &'a str,
}

/// The payload's values.
pub const PAYLOAD: Payload<'static> = Payload { temperature: 23.5, humidity: 60, pressure: 1013, label: "outdoor" };

/// [`PAYLOAD`] on the wire (55 bytes), as both encoders write it (the tests check it). The
/// decode rows read these bytes: made by a second call of an encoder, they would give that
/// encoder two callers in the counter, which then keeps it out of line for the encode row.
pub const PAYLOAD_BYTES: [u8; 55] = *b"\xc4\
    \x8btemperature\x40\x00\x00\xbc\x41\
    \x88humidity\x1f\x3c\
    \x88pressure\x1f\xf5\x07\
    \x85label\x87outdoor";

// The payload's keys encoded once, the map header with the first (`pson::Key`), for both
// hand-written encoders.
const TEMPERATURE: Key = Key::after_map_header(4, "temperature");
const HUMIDITY: Key = Key::new("humidity");
const PRESSURE: Key = Key::new("pressure");
const LABEL: Key = Key::new("label");

impl EncodePson for Payload<'_> {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.key(&TEMPERATURE)?;
        enc.f32(self.temperature)?;
        enc.key(&HUMIDITY)?;
        enc.u64(u64::from(self.humidity))?;
        enc.key(&PRESSURE)?;
        enc.u64(u64::from(self.pressure))?;
        enc.key(&LABEL)?;
        enc.str(self.label)
    }
}

/// [`Payload`] with the temperature as an `f64`, as the payload rows had it before the
/// ninth round (the `payload/encode/hand-f64` row): the float rules then also test whether
/// the double is exact as f32. Same bytes on the wire. (No serde row of it: a second
/// struct through `to_slice` gives serde's `u32::serialize` four callers, and the compiler
/// then keeps it out of line for both, the `serde` row included: 77 -> 127 instructions.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PayloadF64<'a> {
    /// 23.5.
    pub temperature: f64,
    /// 60.
    pub humidity: u32,
    /// 1013.
    pub pressure: u32,
    /// "outdoor".
    pub label: &'a str,
}

/// [`PAYLOAD`]'s values with an `f64` temperature.
pub const PAYLOAD_F64: PayloadF64<'static> =
    PayloadF64 { temperature: 23.5, humidity: 60, pressure: 1013, label: "outdoor" };

impl EncodePson for PayloadF64<'_> {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.key(&TEMPERATURE)?;
        enc.f64(self.temperature)?;
        enc.key(&HUMIDITY)?;
        enc.u64(u64::from(self.humidity))?;
        enc.key(&PRESSURE)?;
        enc.u64(u64::from(self.pressure))?;
        enc.key(&LABEL)?;
        enc.str(self.label)
    }
}

/// The checksum rule of the C driver's `fold`: what a reader gets out of one value, as one
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

/// [`encode_hand`] of [`PayloadF64`].
#[inline]
pub fn encode_hand_f64(payload: &PayloadF64<'_>, buf: &mut [u8]) -> Result<usize, Error> {
    pson::encode_to_slice(payload, buf)
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
    Ok(u64::from(p.humidity) + u64::from(p.pressure) + u64::from(p.temperature.to_bits()) + p.label.len() as u64)
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

/// The sizes of the map and array rows.
pub const SCALING_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encoders_write_payload_bytes() {
        let mut buf = [0u8; 64];
        let n = encode_hand(&PAYLOAD, &mut buf).unwrap();
        assert_eq!(buf[..n], PAYLOAD_BYTES, "hand-written");
        let mut buf = [0u8; 64];
        let n = encode_serde(&PAYLOAD, &mut buf).unwrap();
        assert_eq!(buf[..n], PAYLOAD_BYTES, "serde");
        let mut buf = [0u8; 64];
        let n = encode_hand_f64(&PAYLOAD_F64, &mut buf).unwrap();
        assert_eq!(buf[..n], PAYLOAD_BYTES, "hand-written, f64");
    }

    #[test]
    fn decoders_agree_on_payload_bytes() {
        let sum = read_map(&PAYLOAD_BYTES).unwrap();
        assert_eq!(decode_map_walk(&PAYLOAD_BYTES).unwrap(), sum);
        // Key lengths 11 + 8 + 8 + 5, the temperature as the f32 on the wire.
        assert_eq!(sum, 32 + u64::from(23.5f32.to_bits()) + 60 + 1013 + 7);
        // serde folds the values only, the temperature as the f32 it reads.
        assert_eq!(decode_serde(&PAYLOAD_BYTES).unwrap(), u64::from(23.5f32.to_bits()) + 60 + 1013 + 7);
        assert_eq!(decode_validate(&PAYLOAD_BYTES).unwrap(), 4);
    }
}
