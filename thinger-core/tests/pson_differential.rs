//! Differential tests: the three PSON encoders (hand-written `EncodePson`, serde, the owned
//! `Value`) write the same bytes for the same data, and the four readers (single-pass
//! `MapReader`, `PsonRef::decode` + iteration, serde, `Value::decode`) read the same data
//! back. The float rules are checked against an independent oracle written with float
//! arithmetic.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use thinger_core::pson::{self, EncodePson, Encoder, Error, MapReader, PsonRef, Sink, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    temperature: f64,
    humidity: u32,
    offset: i64,
    label: String,
    on: bool,
    samples: Vec<u16>,
    note: Option<String>,
}

impl EncodePson for Reading {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.map_header(7)?;
        enc.str("temperature")?;
        enc.f64(self.temperature)?;
        enc.str("humidity")?;
        enc.u64(u64::from(self.humidity))?;
        enc.str("offset")?;
        enc.i64(self.offset)?;
        enc.str("label")?;
        enc.str(&self.label)?;
        enc.str("on")?;
        enc.bool(self.on)?;
        enc.str("samples")?;
        self.samples.as_slice().encode_pson(enc)?;
        enc.str("note")?;
        match &self.note {
            Some(note) => enc.str(note),
            None => enc.null(),
        }
    }
}

/// The official float rule, with float arithmetic: whole numbers in i64 range are
/// integers, else f32 when exact, else f64.
fn float_oracle(f: f64) -> Value {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) && (f as i64) as f64 == f {
        let i = f as i64;
        return if i >= 0 { Value::Uint(i as u64) } else { Value::Int(i) };
    }
    let narrow = f as f32;
    if f64::from(narrow) == f { Value::F32(narrow) } else { Value::F64(f) }
}

fn int_value(i: i64) -> Value {
    if i >= 0 { Value::Uint(i as u64) } else { Value::Int(i) }
}

fn to_value(r: &Reading) -> Value {
    Value::Map(vec![
        ("temperature".into(), float_oracle(r.temperature)),
        ("humidity".into(), Value::Uint(u64::from(r.humidity))),
        ("offset".into(), int_value(r.offset)),
        ("label".into(), Value::Str(r.label.clone())),
        ("on".into(), Value::Bool(r.on)),
        ("samples".into(), Value::Array(r.samples.iter().map(|&s| Value::Uint(u64::from(s))).collect())),
        ("note".into(), r.note.clone().map_or(Value::Null, Value::Str)),
    ])
}

#[derive(Default)]
struct Fields {
    temperature: Option<f64>,
    humidity: Option<u32>,
    offset: Option<i64>,
    label: Option<String>,
    on: Option<bool>,
    samples: Option<Vec<u16>>,
    note: Option<Option<String>>,
}

impl Fields {
    fn set(&mut self, key: &str, v: PsonRef<'_>) -> Result<(), Error> {
        let bad = || Error::UnexpectedType;
        match key {
            "temperature" => self.temperature = Some(v.as_f64().ok_or_else(bad)?),
            "humidity" => self.humidity = Some(v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?),
            "offset" => self.offset = Some(v.as_i64().ok_or_else(bad)?),
            "label" => self.label = Some(v.as_str().ok_or_else(bad)?.to_owned()),
            "on" => self.on = Some(v.as_bool().ok_or_else(bad)?),
            "samples" => {
                let array = v.as_array().ok_or_else(bad)?;
                let samples = array.iter().map(|e| e.as_u64().and_then(|n| u16::try_from(n).ok()).ok_or_else(bad));
                self.samples = Some(samples.collect::<Result<_, _>>()?);
            }
            "note" => self.note = Some(if v.is_null() { None } else { Some(v.as_str().ok_or_else(bad)?.to_owned()) }),
            _ => return Err(bad()),
        }
        Ok(())
    }

    fn finish(self) -> Result<Reading, Error> {
        Ok(Reading {
            temperature: self.temperature.ok_or(Error::UnexpectedType)?,
            humidity: self.humidity.ok_or(Error::UnexpectedType)?,
            offset: self.offset.ok_or(Error::UnexpectedType)?,
            label: self.label.ok_or(Error::UnexpectedType)?,
            on: self.on.ok_or(Error::UnexpectedType)?,
            samples: self.samples.ok_or(Error::UnexpectedType)?,
            note: self.note.ok_or(Error::UnexpectedType)?,
        })
    }
}

fn read_one_pass(bytes: &[u8]) -> Result<Reading, Error> {
    let mut fields = Fields::default();
    for pair in MapReader::new(bytes)? {
        let (key, value) = pair?;
        fields.set(key, value)?;
    }
    fields.finish()
}

fn read_two_pass(bytes: &[u8]) -> Result<Reading, Error> {
    let mut fields = Fields::default();
    let map = PsonRef::decode(bytes)?.as_map().ok_or(Error::UnexpectedType)?;
    for (key, value) in map.iter() {
        fields.set(key, value)?;
    }
    fields.finish()
}

fn read_value(bytes: &[u8]) -> Result<Reading, Error> {
    let value = Value::decode(bytes)?;
    let reencoded = value.encode_to_vec();
    // The owned value keeps integer and float widths: its bytes are the input's.
    assert_eq!(reencoded, bytes);
    read_two_pass(&reencoded)
}

fn reading() -> impl Strategy<Value = Reading> {
    let temperature = prop_oneof![
        any::<f64>().prop_filter("not NaN", |f| !f.is_nan()),
        (-1000i32..1000).prop_map(|t| f64::from(t) / 2.0),
        any::<i32>().prop_map(f64::from),
        any::<f32>().prop_filter("not NaN", |f| !f.is_nan()).prop_map(f64::from),
    ];
    (
        temperature,
        any::<u32>(),
        any::<i64>(),
        "\\PC{0,40}",
        any::<bool>(),
        proptest::collection::vec(any::<u16>(), 0..40),
        proptest::option::of("[a-z ]{0,50}"),
    )
        .prop_map(|(temperature, humidity, offset, label, on, samples, note)| Reading {
            temperature,
            humidity,
            offset,
            label,
            on,
            samples,
            note,
        })
}

fn check(r: &Reading) -> Result<(), TestCaseError> {
    let mut buf = vec![0u8; 4096];
    let n = pson::encode_to_slice(r, &mut buf).unwrap();
    let hand = buf[..n].to_vec();
    prop_assert_eq!(pson::encoded_len(r), n);
    let n = pson::to_slice(r, &mut buf).unwrap();
    prop_assert_eq!(&buf[..n], &hand[..], "serde and hand-written bytes differ");
    prop_assert_eq!(pson::serialized_len(r).unwrap(), n);
    prop_assert_eq!(to_value(r).encode_to_vec(), hand.clone(), "Value and hand-written bytes differ");

    let expected = Ok(r.clone());
    prop_assert_eq!(read_one_pass(&hand), expected.clone());
    prop_assert_eq!(read_two_pass(&hand), expected.clone());
    prop_assert_eq!(pson::from_slice::<Reading>(&hand), expected.clone());
    prop_assert_eq!(read_value(&hand), expected);

    // Every cut of the bytes: all readers refuse it (the one-pass reader may have handed
    // out pairs before the error; here it must end in one).
    for cut in 0..hand.len() {
        let short = &hand[..cut];
        prop_assert!(read_one_pass(short).is_err());
        prop_assert!(read_two_pass(short).is_err());
        prop_assert!(pson::from_slice::<Reading>(short).is_err());
        prop_assert!(Value::decode(short).is_err());
    }
    // A byte after the map: all refuse it.
    let mut long = hand.clone();
    long.push(0x00);
    prop_assert_eq!(read_one_pass(&long), Err(Error::TrailingBytes));
    prop_assert_eq!(read_two_pass(&long), Err(Error::TrailingBytes));
    prop_assert_eq!(pson::from_slice::<Reading>(&long), Err(Error::TrailingBytes));
    prop_assert_eq!(Value::decode(&long), Err(Error::TrailingBytes));
    Ok(())
}

#[test]
fn the_benchmark_payload() {
    let r = Reading {
        temperature: 23.5,
        humidity: 60,
        offset: -3,
        label: "outdoor".into(),
        on: true,
        samples: vec![1, 300, 65535],
        note: None,
    };
    check(&r).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encoders_agree_and_readers_agree(r in reading()) {
        check(&r)?;
    }
}
