//! Map keys encoded at compile time (`pson::Key`) and the serde serializer's struct path
//! (the header written with the first key, keys as merged pieces in `to_slice`'s roomy
//! sink): the same bytes as `Encoder::map_header` + `Encoder::str`, at every room; and a
//! differential test of an f32 payload written four ways (hand-written with `Key`s,
//! hand-written with `str`, serde, `Value`).

use proptest::prelude::*;
use serde::Serialize;
use serde::ser::SerializeStruct;
use thinger_core::pson::{self, EncodePson, Encoder, Error, Key, Sink, SliceSink, Value};

/// Names of every length up to 40 are prefixes of this (`&'static str`, as serde's field
/// names must be).
const NAMES: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";

fn name(len: usize) -> &'static str {
    &NAMES[..len]
}

/// `map_header(pairs)` (if any) and `str(name)` through the plain encoder.
fn by_str(pairs: Option<usize>, name: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let mut enc = Encoder::new(SliceSink::new(&mut buf));
    if let Some(pairs) = pairs {
        enc.map_header(pairs).unwrap();
    }
    enc.str(name).unwrap();
    enc.into_sink().as_written().to_vec()
}

/// `Encoder::key` through `encode_to_slice` (the roomy sink from 256 bytes on) at every
/// room: `BufferFull` below the size, the bytes and nothing past them from there on.
fn check_key_every_room(key: &Key, expected: &[u8]) {
    struct KeyOnly<'a>(&'a Key);
    impl EncodePson for KeyOnly<'_> {
        fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
            enc.key(self.0)
        }
    }
    check_rooms(expected, |buf| pson::encode_to_slice(&KeyOnly(key), buf));
}

fn check_rooms(expected: &[u8], encode: impl Fn(&mut [u8]) -> Result<usize, Error>) {
    let len = expected.len();
    for room in (0..len + 8).chain(250..len + 264) {
        let mut buf = vec![0xEEu8; room];
        let result = encode(&mut buf);
        if room < len {
            assert_eq!(result, Err(Error::BufferFull), "room {room} of {len}");
        } else {
            assert_eq!(result, Ok(len), "room {room}");
            assert_eq!(&buf[..len], expected, "room {room}");
            assert!(buf[len..].iter().all(|&b| b == 0xEE), "room {room}: written past the value");
        }
    }
}

#[test]
fn keys_are_the_bytes_of_str() {
    for len in 0..=30 {
        let key = Key::new(name(len));
        assert_eq!(key.as_bytes(), by_str(None, name(len)), "{len}");
        assert_eq!(key.name(), name(len));
        assert_eq!(Key::try_new(name(len)), Some(key));
        check_key_every_room(&key, &by_str(None, name(len)));
        for pairs in [1, 4, 17, 30] {
            let first = Key::after_map_header(pairs, name(len));
            assert_eq!(first.as_bytes(), by_str(Some(pairs), name(len)), "{pairs} {len}");
            assert_eq!(first.name(), name(len));
            check_key_every_room(&first, &by_str(Some(pairs), name(len)));
        }
    }
    // Multi-byte characters: the length in the tag is in bytes.
    for s in ["é", "año", "温度", "température", "ü".repeat(15).as_str()] {
        assert_eq!(Key::new(s).as_bytes(), by_str(None, s), "{s}");
        assert_eq!(Key::new(s).name(), s);
    }
}

#[test]
fn keys_refuse_what_the_short_form_cannot_hold() {
    assert_eq!(Key::try_new(name(31)), None);
    assert_eq!(Key::try_new(&"ü".repeat(16)), None); // 32 bytes
    assert_eq!(Key::try_after_map_header(0, "a"), None);
    assert_eq!(Key::try_after_map_header(31, "a"), None);
    assert_eq!(Key::try_after_map_header(1, name(31)), None);
    assert!(Key::try_after_map_header(30, name(30)).is_some());
}

/// A struct of `fields.len()` fields named `fields[i]`, each the value `i * 37` (a
/// hand-written `Serialize`, as `#[derive(Serialize)]` writes it).
struct Fields(Vec<&'static str>);

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Fields", self.0.len())?;
        for (i, &key) in self.0.iter().enumerate() {
            s.serialize_field(key, &(i as u32 * 37))?;
        }
        s.end()
    }
}

fn fields_by_encoder(fields: &[&str]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut enc = Encoder::new(SliceSink::new(&mut buf));
    enc.map_header(fields.len()).unwrap();
    for (i, key) in fields.iter().enumerate() {
        enc.str(key).unwrap();
        enc.u64(i as u64 * 37).unwrap();
    }
    enc.into_sink().as_written().to_vec()
}

#[test]
fn serde_struct_keys_of_every_length_at_every_room() {
    // One, two and three fields with names of 0 to 40 bytes (a header in the tag byte, so
    // it waits for the first key), and 30, 31 and 40 fields (31 and up: a two-byte header,
    // written at once).
    for len in 0..=40 {
        for count in 1..=3 {
            let fields = Fields((0..count).map(|i| name((len + i * 5) % 41)).collect());
            check_rooms(&fields_by_encoder(&fields.0), |buf| pson::to_slice(&fields, buf));
        }
    }
    for count in [30, 31, 40] {
        let fields = Fields((0..count).map(|i| name(i % 41)).collect());
        check_rooms(&fields_by_encoder(&fields.0), |buf| pson::to_slice(&fields, buf));
    }
    // An empty struct: the header alone.
    check_rooms(&[0xc0], |buf| pson::to_slice(&Fields(vec![]), buf));
}

#[test]
fn serde_struct_with_a_wrong_length_is_refused() {
    struct Short;
    impl Serialize for Short {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let s = serializer.serialize_struct("Short", 2)?;
            s.end() // declared 2, wrote none: the header never written either way
        }
    }
    let mut buf = vec![0u8; 512];
    assert_eq!(pson::to_slice(&Short, &mut buf), Err(Error::Custom));
    assert_eq!(pson::to_slice(&Short, &mut buf[..8]), Err(Error::Custom));
}

/// The benchmark payload's shape with an f32 temperature.
#[derive(Debug, Clone, Serialize)]
struct Payload {
    temperature: f32,
    humidity: u32,
    pressure: u32,
    label: String,
}

/// Hand-written with `Key`s (as `benches/pson-counts` does).
struct WithKeys<'a>(&'a Payload);

impl EncodePson for WithKeys<'_> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        const TEMPERATURE: Key = Key::after_map_header(4, "temperature");
        const HUMIDITY: Key = Key::new("humidity");
        const PRESSURE: Key = Key::new("pressure");
        const LABEL: Key = Key::new("label");
        enc.key(&TEMPERATURE)?;
        enc.f32(self.0.temperature)?;
        enc.key(&HUMIDITY)?;
        enc.u64(u64::from(self.0.humidity))?;
        enc.key(&PRESSURE)?;
        enc.u64(u64::from(self.0.pressure))?;
        enc.key(&LABEL)?;
        enc.str(&self.0.label)
    }
}

/// Hand-written with `map_header` and `str`.
struct WithStr<'a>(&'a Payload);

impl EncodePson for WithStr<'_> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.map_header(4)?;
        enc.str("temperature")?;
        enc.f32(self.0.temperature)?;
        enc.str("humidity")?;
        enc.u64(u64::from(self.0.humidity))?;
        enc.str("pressure")?;
        enc.u64(u64::from(self.0.pressure))?;
        enc.str("label")?;
        enc.str(&self.0.label)
    }
}

/// The float rule for an f32, by float arithmetic: a whole number in i64 range is an
/// integer, anything else (NaN with its bits) the f32 itself.
fn f32_oracle(f: f32) -> Value {
    let wide = f64::from(f);
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&wide) && wide.fract() == 0.0 {
        let i = wide as i64;
        return if i >= 0 { Value::Uint(i as u64) } else { Value::Int(i) };
    }
    Value::F32(f)
}

fn to_value(p: &Payload) -> Value {
    Value::Map(vec![
        ("temperature".into(), f32_oracle(p.temperature)),
        ("humidity".into(), Value::Uint(u64::from(p.humidity))),
        ("pressure".into(), Value::Uint(u64::from(p.pressure))),
        ("label".into(), Value::Str(p.label.clone())),
    ])
}

fn check_payload(p: &Payload) -> Result<(), TestCaseError> {
    let reference = to_value(p).encode_to_vec();
    // The roomy copy (512 bytes) and the checked one (the exact size).
    for room in [512, reference.len()] {
        let mut buf = vec![0u8; room];
        let n = pson::encode_to_slice(&WithKeys(p), &mut buf).unwrap();
        prop_assert_eq!(&buf[..n], &reference[..], "hand-written with keys, room {}", room);
        let n = pson::encode_to_slice(&WithStr(p), &mut buf).unwrap();
        prop_assert_eq!(&buf[..n], &reference[..], "hand-written with str, room {}", room);
        let n = pson::to_slice(p, &mut buf).unwrap();
        prop_assert_eq!(&buf[..n], &reference[..], "serde, room {}", room);
    }
    Ok(())
}

#[test]
fn the_benchmark_payload_four_ways() {
    let p = Payload { temperature: 23.5, humidity: 60, pressure: 1013, label: "outdoor".into() };
    check_payload(&p).unwrap();
    let mut buf = [0u8; 512];
    let n = pson::encode_to_slice(&WithKeys(&p), &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        b"\xc4\x8btemperature\x40\x00\x00\xbc\x41\x88humidity\x1f\x3c\x88pressure\x1f\xf5\x07\x85label\x87outdoor"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn four_encoders_agree_on_f32_payloads(
        bits in prop_oneof![
            any::<u32>(),
            (-3_000_000i32..3_000_000).prop_map(|i| (i as f32).to_bits()),
            (-3_000_000i32..3_000_000).prop_map(|i| (i as f32 / 8.0).to_bits()),
        ],
        humidity in prop_oneof![0u32..200, any::<u32>()],
        pressure in prop_oneof![0u32..0x5000, any::<u32>()],
        label in "[a-z]{0,12}|[a-zé]{0,40}",
    ) {
        let p = Payload { temperature: f32::from_bits(bits), humidity, pressure, label };
        check_payload(&p)?;
    }
}
