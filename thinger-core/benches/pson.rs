//! PSON against serde_json, postcard and ciborium on the same data, in the same run.
//!
//! Run with `cargo bench -p thinger-core --bench pson` (results and the method are in
//! `docs/benchmarks.md`). Two data sets:
//!
//! * `payload`: `{"temperature": 23.5, "humidity": 60, "pressure": 1013, "label": "outdoor"}`;
//! * `batch100`: an array of 100 maps `{"temperature": 22.0 + (i % 30) * 0.1,
//!   "humidity": 55 + (i % 20)}`.
//!
//! PSON is measured two ways: hand-written (`EncodePson` to encode, `PsonRef` to decode) and
//! through serde (`pson::to_slice` / `pson::from_slice` with the same derived structs the
//! other formats use). Decoding produces the owned struct for every format; `pson_ref_walk`
//! is the zero-copy read: validate with `PsonRef::decode` and visit every field, borrowing
//! strings and allocating nothing; `pson_validate` is `PsonRef::decode` alone (the
//! validating pass every PSON read starts with). Every encoder writes into a buffer reused across
//! iterations. Before measuring, the bench checks that every format decodes what it encoded
//! and prints the bytes on the wire.

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use serde::{Deserialize, Serialize};
use thinger_core::pson::{self, EncodePson, Encoder, Error, PsonRef, Sink};

/// The single-reading payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payload {
    temperature: f64,
    humidity: u32,
    pressure: u32,
    label: String,
}

/// One sample of the stream batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Sample {
    temperature: f64,
    humidity: u32,
}

fn payload() -> Payload {
    Payload { temperature: 23.5, humidity: 60, pressure: 1013, label: "outdoor".to_owned() }
}

fn batch() -> Vec<Sample> {
    (0..100u32).map(|i| Sample { temperature: 22.0 + f64::from(i % 30) * 0.1, humidity: 55 + (i % 20) }).collect()
}

// ---- PSON, hand-written ------------------------------------------------------------------

impl EncodePson for Payload {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.map_header(4)?;
        enc.str("temperature")?;
        enc.f64(self.temperature)?;
        enc.str("humidity")?;
        enc.u64(u64::from(self.humidity))?;
        enc.str("pressure")?;
        enc.u64(u64::from(self.pressure))?;
        enc.str("label")?;
        enc.str(&self.label)
    }
}

impl EncodePson for Sample {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.map_header(2)?;
        enc.str("temperature")?;
        enc.f64(self.temperature)?;
        enc.str("humidity")?;
        enc.u64(u64::from(self.humidity))
    }
}

fn as_u32(v: PsonRef<'_>) -> Result<u32, Error> {
    v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or(Error::UnexpectedType)
}

/// The payload with its label borrowed from the input: what a zero-copy reader produces.
#[derive(Debug, PartialEq)]
struct PayloadRef<'a> {
    temperature: f64,
    humidity: u32,
    pressure: u32,
    label: &'a str,
}

fn read_payload<'a>(bytes: &'a [u8]) -> Result<PayloadRef<'a>, Error> {
    let doc = PsonRef::decode(bytes)?;
    let map = doc.as_map().ok_or(Error::UnexpectedType)?;
    let (mut temperature, mut humidity, mut pressure, mut label) = (None, None, None, None);
    for (key, value) in map.iter() {
        match key {
            "temperature" => temperature = Some(value.as_f64().ok_or(Error::UnexpectedType)?),
            "humidity" => humidity = Some(as_u32(value)?),
            "pressure" => pressure = Some(as_u32(value)?),
            "label" => label = Some(value.as_str().ok_or(Error::UnexpectedType)?),
            _ => {}
        }
    }
    match (temperature, humidity, pressure, label) {
        (Some(temperature), Some(humidity), Some(pressure), Some(label)) => {
            Ok(PayloadRef { temperature, humidity, pressure, label })
        }
        _ => Err(Error::UnexpectedType),
    }
}

fn decode_payload_hand(bytes: &[u8]) -> Result<Payload, Error> {
    let r = read_payload(bytes)?;
    Ok(Payload { temperature: r.temperature, humidity: r.humidity, pressure: r.pressure, label: r.label.to_owned() })
}

fn read_sample(value: PsonRef<'_>) -> Result<Sample, Error> {
    let map = value.as_map().ok_or(Error::UnexpectedType)?;
    let (mut temperature, mut humidity) = (None, None);
    for (key, value) in map.iter() {
        match key {
            "temperature" => temperature = Some(value.as_f64().ok_or(Error::UnexpectedType)?),
            "humidity" => humidity = Some(as_u32(value)?),
            _ => {}
        }
    }
    match (temperature, humidity) {
        (Some(temperature), Some(humidity)) => Ok(Sample { temperature, humidity }),
        _ => Err(Error::UnexpectedType),
    }
}

fn decode_batch_hand(bytes: &[u8]) -> Result<Vec<Sample>, Error> {
    let doc = PsonRef::decode(bytes)?;
    let array = doc.as_array().ok_or(Error::UnexpectedType)?;
    let mut out = Vec::with_capacity(array.len());
    for value in array.iter() {
        out.push(read_sample(value)?);
    }
    Ok(out)
}

/// Zero-copy: validates once, then reads every sample without building a `Vec`.
fn walk_batch(bytes: &[u8]) -> Result<(f64, u64), Error> {
    let doc = PsonRef::decode(bytes)?;
    let array = doc.as_array().ok_or(Error::UnexpectedType)?;
    let (mut temperature, mut humidity) = (0.0, 0u64);
    for value in array.iter() {
        let s = read_sample(value)?;
        temperature += s.temperature;
        humidity += u64::from(s.humidity);
    }
    Ok((temperature, humidity))
}

// ---- the other formats -------------------------------------------------------------------

fn json_encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> usize {
    out.clear();
    serde_json::to_writer(&mut *out, value).unwrap();
    out.len()
}

fn cbor_encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> usize {
    out.clear();
    ciborium::into_writer(value, &mut *out).unwrap();
    out.len()
}

fn cbor_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    ciborium::from_reader(bytes).unwrap()
}

// ---- sizes and correctness ---------------------------------------------------------------

struct Encoded {
    pson_hand: Vec<u8>,
    pson_serde: Vec<u8>,
    json: Vec<u8>,
    postcard: Vec<u8>,
    cbor: Vec<u8>,
}

fn encode_all<T: EncodePson + Serialize + ?Sized>(value: &T) -> Encoded {
    let mut buf = vec![0u8; 8192];
    let n = pson::encode_to_slice(value, &mut buf).unwrap();
    let pson_hand = buf[..n].to_vec();
    let n = pson::to_slice(value, &mut buf).unwrap();
    let pson_serde = buf[..n].to_vec();
    let mut json = Vec::new();
    json_encode(value, &mut json);
    let postcard = postcard::to_allocvec(value).unwrap();
    let mut cbor = Vec::new();
    cbor_encode(value, &mut cbor);
    Encoded { pson_hand, pson_serde, json, postcard, cbor }
}

fn print_sizes(name: &str, e: &Encoded) {
    let pson = e.pson_hand.len() as f64;
    println!("wire size of {name}:");
    for (format, len) in [
        ("pson (hand-written)", e.pson_hand.len()),
        ("pson (serde)", e.pson_serde.len()),
        ("serde_json", e.json.len()),
        ("postcard", e.postcard.len()),
        ("ciborium (CBOR)", e.cbor.len()),
    ] {
        println!("  {format:<20} {len:>6} bytes  ({:.2}x PSON)", len as f64 / pson);
    }
}

/// Checks that every decoder gives back what was encoded and prints the sizes.
fn check_and_print_sizes() {
    let p = payload();
    let e = encode_all(&p);
    assert_eq!(e.pson_hand.len(), 55, "the payload must be 55 bytes of PSON");
    assert_eq!(e.pson_serde.len(), 55);
    assert_eq!(decode_payload_hand(&e.pson_hand).unwrap(), p);
    assert_eq!(read_payload(&e.pson_hand).unwrap().label, "outdoor");
    assert_eq!(pson::from_slice::<Payload>(&e.pson_serde).unwrap(), p);
    assert_eq!(serde_json::from_slice::<Payload>(&e.json).unwrap(), p);
    assert_eq!(postcard::from_bytes::<Payload>(&e.postcard).unwrap(), p);
    assert_eq!(cbor_decode::<Payload>(&e.cbor), p);
    print_sizes("payload", &e);

    let b = batch();
    let eb = encode_all(b.as_slice());
    assert_eq!(eb.pson_hand, eb.pson_serde, "hand-written and serde PSON agree byte for byte");
    assert_eq!(decode_batch_hand(&eb.pson_hand).unwrap(), b);
    let (t, h) = walk_batch(&eb.pson_hand).unwrap();
    assert_eq!(h, b.iter().map(|s| u64::from(s.humidity)).sum::<u64>());
    assert!((t - b.iter().map(|s| s.temperature).sum::<f64>()).abs() < 1e-9);
    assert_eq!(pson::from_slice::<Vec<Sample>>(&eb.pson_serde).unwrap(), b);
    assert_eq!(serde_json::from_slice::<Vec<Sample>>(&eb.json).unwrap(), b);
    assert_eq!(postcard::from_bytes::<Vec<Sample>>(&eb.postcard).unwrap(), b);
    assert_eq!(cbor_decode::<Vec<Sample>>(&eb.cbor), b);
    print_sizes("batch100", &eb);
}

// ---- benchmarks --------------------------------------------------------------------------

fn bench_encode<T: EncodePson + Serialize + ?Sized>(c: &mut Criterion, group: &str, value: &T) {
    let mut g = c.benchmark_group(group);
    let mut buf = vec![0u8; 8192];
    let mut out = Vec::with_capacity(8192);
    g.bench_function("pson_hand", |b| b.iter(|| pson::encode_to_slice(black_box(value), &mut buf).unwrap()));
    g.bench_function("pson_serde", |b| b.iter(|| pson::to_slice(black_box(value), &mut buf).unwrap()));
    g.bench_function("serde_json", |b| b.iter(|| json_encode(black_box(value), &mut out)));
    g.bench_function("postcard", |b| b.iter(|| postcard::to_slice(black_box(value), &mut buf).unwrap().len()));
    g.bench_function("ciborium", |b| b.iter(|| cbor_encode(black_box(value), &mut out)));
    g.finish();
}

fn payload_benches(c: &mut Criterion) {
    let p = payload();
    let e = encode_all(&p);
    bench_encode(c, "payload/encode", &p);

    let mut g = c.benchmark_group("payload/decode");
    g.bench_function("pson_validate", |b| b.iter(|| PsonRef::decode(black_box(&e.pson_hand)).unwrap()));
    g.bench_function("pson_ref_walk", |b| b.iter(|| read_payload(black_box(&e.pson_hand)).unwrap().humidity));
    g.bench_function("pson_hand", |b| b.iter(|| decode_payload_hand(black_box(&e.pson_hand)).unwrap()));
    g.bench_function("pson_serde", |b| b.iter(|| pson::from_slice::<Payload>(black_box(&e.pson_serde)).unwrap()));
    g.bench_function("serde_json", |b| b.iter(|| serde_json::from_slice::<Payload>(black_box(&e.json)).unwrap()));
    g.bench_function("postcard", |b| b.iter(|| postcard::from_bytes::<Payload>(black_box(&e.postcard)).unwrap()));
    g.bench_function("ciborium", |b| b.iter(|| cbor_decode::<Payload>(black_box(&e.cbor))));
    g.finish();

    // Encode then decode into the struct, as a device answering a request would.
    let mut g = c.benchmark_group("payload/roundtrip");
    let mut buf = vec![0u8; 8192];
    let mut out = Vec::with_capacity(8192);
    g.bench_function("pson_hand", |b| {
        b.iter(|| {
            let n = pson::encode_to_slice(black_box(&p), &mut buf).unwrap();
            decode_payload_hand(&buf[..n]).unwrap()
        })
    });
    g.bench_function("pson_serde", |b| {
        b.iter(|| {
            let n = pson::to_slice(black_box(&p), &mut buf).unwrap();
            pson::from_slice::<Payload>(&buf[..n]).unwrap()
        })
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            json_encode(black_box(&p), &mut out);
            serde_json::from_slice::<Payload>(&out).unwrap()
        })
    });
    g.bench_function("postcard", |b| {
        b.iter(|| {
            let n = postcard::to_slice(black_box(&p), &mut buf).unwrap().len();
            postcard::from_bytes::<Payload>(&buf[..n]).unwrap()
        })
    });
    g.bench_function("ciborium", |b| {
        b.iter(|| {
            cbor_encode(black_box(&p), &mut out);
            cbor_decode::<Payload>(&out)
        })
    });
    g.finish();
}

fn batch_benches(c: &mut Criterion) {
    let samples = batch();
    let e = encode_all(samples.as_slice());
    bench_encode(c, "batch100/encode", samples.as_slice());

    let mut g = c.benchmark_group("batch100/decode");
    g.bench_function("pson_validate", |b| b.iter(|| PsonRef::decode(black_box(&e.pson_hand)).unwrap()));
    g.bench_function("pson_ref_walk", |b| b.iter(|| walk_batch(black_box(&e.pson_hand)).unwrap()));
    g.bench_function("pson_hand", |b| b.iter(|| decode_batch_hand(black_box(&e.pson_hand)).unwrap()));
    g.bench_function("pson_serde", |b| b.iter(|| pson::from_slice::<Vec<Sample>>(black_box(&e.pson_serde)).unwrap()));
    g.bench_function("serde_json", |b| b.iter(|| serde_json::from_slice::<Vec<Sample>>(black_box(&e.json)).unwrap()));
    g.bench_function("postcard", |b| b.iter(|| postcard::from_bytes::<Vec<Sample>>(black_box(&e.postcard)).unwrap()));
    g.bench_function("ciborium", |b| b.iter(|| cbor_decode::<Vec<Sample>>(black_box(&e.cbor))));
    g.finish();
}

criterion_group!(benches, payload_benches, batch_benches);

fn main() {
    check_and_print_sizes();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
