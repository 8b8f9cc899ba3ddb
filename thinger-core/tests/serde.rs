//! serde support for PSON: `to_slice` / `serialized_len` / `Serde` and `from_slice`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use proptest::prelude::*;
use serde::de;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize};
use thinger_core::iotmp::{FieldId, FrameWriter, MessageType, parse_frame};
use thinger_core::pson::{
    self, DEFAULT_MAX_DEPTH, DecodeOptions, Deserializer, Encoder, Error, PsonRef, Serde, Serializer, SizeCounter,
    SliceSink, encode_to_slice, from_slice, from_slice_with, serialized_len, to_slice,
};

// ---------------------------------------------------------------- helpers

/// Serializes with the size pass and the slice pass, checks they agree, and checks that
/// the result is one valid PSON value.
fn ser<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let len = serialized_len(value).unwrap();
    let mut buf = vec![0u8; len];
    let n = to_slice(value, &mut buf).unwrap();
    assert_eq!(n, len, "serialized_len and to_slice disagree");
    PsonRef::decode(&buf).expect("serializer produced invalid PSON");
    buf
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// `(name, json, bytes)` of every `kind: pson` block of the shared vectors file.
fn pson_vectors() -> Vec<(String, String, Vec<u8>)> {
    let text = include_str!("data/iotmp-vectors.md");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let field = |key: &str| block.lines().find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()));
        if field("kind:").as_deref() != Some("pson") {
            continue;
        }
        out.push((field("name:").unwrap(), field("json:").unwrap(), hex(&field("hex:").unwrap())));
    }
    assert!(out.len() >= 30, "vectors file not parsed: {} pson vectors", out.len());
    out
}

fn vector(name: &str) -> Vec<u8> {
    pson_vectors().into_iter().find(|(n, _, _)| n == name).unwrap().2
}

/// JSON equality with numbers compared by value (a whole float decodes as an integer).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_u64(), y.as_u64(), x.as_i64(), y.as_i64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------- vectors

#[test]
fn every_pson_vector_matches_through_serde_json_values() {
    for (name, json, bytes) in pson_vectors() {
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(ser(&value), bytes, "vector {name}");
        let back: serde_json::Value = from_slice(&bytes).unwrap();
        assert!(json_eq(&back, &value), "vector {name}: decoded {back}, expected {value}");
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Reading<'a> {
    humidity: u8,
    label: &'a str,
    pressure: u16,
    temperature: f64,
}

#[test]
fn benchmark_payload_is_55_bytes_exactly() {
    let expected = vector("benchmark_payload");
    let reading = Reading { humidity: 60, label: "outdoor", pressure: 1013, temperature: 23.5 };
    let bytes = ser(&reading);
    assert_eq!(bytes.len(), 55);
    assert_eq!(bytes, expected);

    // And back, borrowing the label from the input.
    let back: Reading = from_slice(&expected).unwrap();
    assert_eq!(back, reading);
    assert!(expected.as_ptr_range().contains(&back.label.as_ptr()), "label was copied");
}

#[test]
fn nested_and_array_vectors_from_typed_values() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Outer<'a> {
        #[serde(borrow)]
        nested: Inner<'a>,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Inner<'a> {
        f: f32,
        #[serde(borrow)]
        list: (bool, Option<u8>, i8, &'a str),
    }
    let value = Outer { nested: Inner { f: 0.25, list: (true, None, -2, "x") } };
    let expected = vector("nested");
    assert_eq!(ser(&value), expected);
    assert_eq!(from_slice::<Outer>(&expected).unwrap(), value);

    let creds = vector("credentials_array");
    assert_eq!(ser(&["user", "dev", "pass"]), creds);
    assert_eq!(ser(&vec!["user", "dev", "pass"]), creds);
    assert_eq!(from_slice::<[&str; 3]>(&creds).unwrap(), ["user", "dev", "pass"]);
    assert_eq!(from_slice::<Vec<String>>(&creds).unwrap(), ["user", "dev", "pass"]);

    #[derive(Serialize)]
    struct Two {
        humidity: u32,
        temperature: f32,
    }
    assert_eq!(ser(&Two { humidity: 60, temperature: 23.5 }), vector("map_two"));
}

#[test]
fn serde_wrapper_feeds_frames() {
    // vector `stream_data`: STREAM_DATA stream 12 payload {humidity: 60, temperature: 23.5}
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Env {
        humidity: u8,
        temperature: f64,
    }
    let env = Env { humidity: 60, temperature: 23.5 };
    let mut buf = [0u8; 64];
    let mut w = FrameWriter::new(&mut buf, MessageType::StreamData).unwrap();
    w.varint(FieldId::StreamId, 12).unwrap();
    w.value(FieldId::Payload, &Serde(&env)).unwrap();
    let n = w.finish();
    assert_eq!(&buf[..n], hex("0a20080c1ac28868756d69646974791f3c8b74656d7065726174757265400000bc41"));

    let (frame, used) = parse_frame(&buf[..n], 1024).unwrap().unwrap();
    assert_eq!(used, n);
    let msg = frame.message().unwrap();
    assert_eq!(from_slice::<Env>(msg.payload_pson().unwrap()).unwrap(), env);

    // Serde through encode_to_slice is the same as to_slice, and errors come through.
    let mut a = [0u8; 64];
    let mut b = [0u8; 64];
    let na = encode_to_slice(&Serde(&env), &mut a).unwrap();
    let nb = to_slice(&env, &mut b).unwrap();
    assert_eq!(a[..na], b[..nb]);
    assert_eq!(encode_to_slice(&Serde(u128::MAX), &mut a), Err(Error::Unsupported));
}

// ---------------------------------------------------------------- scalars

#[test]
fn whole_floats_are_integers_and_read_back_as_floats() {
    assert_eq!(ser(&3.0f64), vector("whole_float_becomes_uint"));
    assert_eq!(ser(&-7.0f32), vector("whole_neg_float_becomes_signed"));
    assert_eq!(ser(&0.1f64), vector("double_0_1"));
    assert_eq!(ser(&23.5f32), vector("float_23_5"));

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct T {
        a: f64,
        b: f32,
        c: f64,
    }
    let t = T { a: 60.0, b: -7.0, c: 1e300 };
    let bytes = ser(&t);
    let doc = PsonRef::decode(&bytes).unwrap();
    assert_eq!(doc.get("a"), Some(PsonRef::Uint(60)));
    assert_eq!(doc.get("b"), Some(PsonRef::Int(-7)));
    assert_eq!(doc.get("c"), Some(PsonRef::F64(1e300)));
    assert_eq!(from_slice::<T>(&bytes).unwrap(), t);
    // deserialize_any reports the integer.
    let any: serde_json::Value = from_slice(&bytes).unwrap();
    assert_eq!(any["a"], serde_json::json!(60u64));
}

fn raw(write: impl FnOnce(&mut Encoder<SliceSink<'_>>)) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut enc = Encoder::new(SliceSink::new(&mut buf));
    write(&mut enc);
    let n = enc.into_sink().written();
    buf[..n].to_vec()
}

#[test]
fn integer_hints_accept_any_number_that_fits() {
    let f3 = raw(|e| e.f32_raw(3.0).unwrap());
    let f64_neg = raw(|e| e.f64_raw(-5.0).unwrap());
    let half = raw(|e| e.f32_raw(3.5).unwrap());
    assert_eq!(from_slice::<u8>(&f3), Ok(3));
    assert_eq!(from_slice::<i64>(&f3), Ok(3));
    assert_eq!(from_slice::<i16>(&f64_neg), Ok(-5));
    assert_eq!(from_slice::<u16>(&f64_neg), Err(Error::Custom)); // out of range
    assert_eq!(from_slice::<u8>(&half), Err(Error::UnexpectedType));
    assert_eq!(from_slice::<u8>(&ser(&300u16)), Err(Error::Custom));
    assert_eq!(from_slice::<i8>(&ser(&-129i16)), Err(Error::Custom));
    assert_eq!(from_slice::<i8>(&ser(&-128i16)), Ok(-128));
    assert_eq!(from_slice::<u64>(&ser(&u64::MAX)), Ok(u64::MAX));
    assert_eq!(from_slice::<i64>(&ser(&i64::MIN)), Ok(i64::MIN));
    assert_eq!(from_slice::<u32>(&ser("1")), Err(Error::UnexpectedType));
    assert_eq!(from_slice::<u32>(&ser(&true)), Err(Error::UnexpectedType));
    // NaN is not a whole number.
    assert_eq!(from_slice::<u32>(&raw(|e| e.f64_raw(f64::NAN).unwrap())), Err(Error::UnexpectedType));
    // Floats accept integers.
    assert_eq!(from_slice::<f64>(&ser(&-300i32)), Ok(-300.0));
    assert_eq!(from_slice::<f32>(&ser(&u64::MAX)), Ok(u64::MAX as f32));
    assert_eq!(from_slice::<f32>(&ser(&0.1f64)), Ok(0.1f32));
    assert_eq!(from_slice::<f64>(&ser("x")), Err(Error::UnexpectedType));
}

#[test]
fn wide_integers_only_when_they_fit() {
    assert_eq!(ser(&300u128), ser(&300u64));
    assert_eq!(ser(&-300i128), ser(&-300i64));
    assert_eq!(serialized_len(&(u128::from(u64::MAX) + 1)), Err(Error::Unsupported));
    assert_eq!(serialized_len(&(i128::from(i64::MIN) - 1)), Err(Error::Unsupported));
    assert_eq!(ser(&i128::from(u64::MAX)), ser(&u64::MAX));
    assert_eq!(ser(&i128::from(i64::MIN)), ser(&i64::MIN));
    assert_eq!(from_slice::<u128>(&ser(&u64::MAX)), Ok(u128::from(u64::MAX)));
    assert_eq!(from_slice::<i128>(&ser(&i64::MIN)), Ok(i128::from(i64::MIN)));
}

#[test]
fn chars_strings_and_unit_likes() {
    assert_eq!(ser(&'é'), [0x82, 0xc3, 0xa9]);
    assert_eq!(from_slice::<char>(&[0x82, 0xc3, 0xa9]), Ok('é'));
    assert_eq!(from_slice::<char>(&ser("ab")), Err(Error::Custom));
    assert_eq!(from_slice::<String>(&ser("héllo")).unwrap(), "héllo");
    assert_eq!(from_slice::<&str>(&[0x82, 0xff, 0xfe]), Err(Error::InvalidUtf8));

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Unit;
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Celsius(f32);
    assert_eq!(ser(&()), [0x62]);
    assert_eq!(ser(&Unit), [0x62]);
    assert_eq!(ser(&None::<u8>), [0x62]);
    assert_eq!(ser(&Some(5u8)), [0x05]);
    assert_eq!(ser(&Celsius(22.5)), ser(&22.5f32));
    assert_eq!(from_slice::<()>(&[0x62]), Ok(()));
    assert_eq!(from_slice::<Unit>(&[0x62]), Ok(Unit));
    assert_eq!(from_slice::<Option<u8>>(&[0x62]), Ok(None));
    assert_eq!(from_slice::<Option<u8>>(&[0x05]), Ok(Some(5)));
    assert_eq!(from_slice::<Option<Option<u8>>>(&[0x05]), Ok(Some(Some(5))));
    assert_eq!(from_slice::<Celsius>(&ser(&22.5f32)), Ok(Celsius(22.5)));
    assert_eq!(from_slice::<()>(&[0x00]), Err(Error::UnexpectedType));
    assert_eq!(from_slice::<bool>(&[0x62]), Err(Error::UnexpectedType));
    assert_eq!(from_slice::<bool>(&[0x63]), Err(Error::InvalidTag(0x63)));
}

#[test]
fn collect_str_formats_twice_and_checks() {
    struct Version(u8, u8);
    impl Serialize for Version {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("v{}.{}", self.0, self.1))
        }
    }
    assert_eq!(ser(&Version(1, 12)), [0x85, b'v', b'1', b'.', b'1', b'2']);

    // A Display whose output changes between the size pass and the write pass.
    struct Flaky(Cell<u32>);
    impl fmt::Display for Flaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.set(self.0.get() * 10);
            write!(f, "{}", self.0.get())
        }
    }
    impl Serialize for Flaky {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }
    let mut buf = [0u8; 32];
    assert_eq!(to_slice(&Flaky(Cell::new(9)), &mut buf), Err(Error::Custom));
}

// ---------------------------------------------------------------- bytes

/// Serializes as a PSON byte string (what `serde_bytes` would do).
#[derive(Debug, PartialEq)]
struct Blob<'a>(&'a [u8]);

impl Serialize for Blob<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Blob<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&[u8]>::deserialize(d).map(Blob)
    }
}

#[test]
fn byte_strings_and_byte_sequences() {
    let data = [1u8, 2, 200];
    // serialize_bytes → type 5.
    let as_bytes = ser(&Blob(&data));
    assert_eq!(as_bytes, [0xa3, 1, 2, 200]);
    // serde's own `&[u8]` / `Vec<u8>` impls are sequences → an array of numbers.
    let as_seq = ser(&&data[..]);
    assert_eq!(as_seq, [0xe3, 1, 2, 0x1f, 200, 0x01]);
    assert_eq!(ser(&data.to_vec()), as_seq);

    // Borrowed bytes come straight from the input.
    let blob: Blob = from_slice(&as_bytes).unwrap();
    assert_eq!(blob.0, data);
    assert!(as_bytes.as_ptr_range().contains(&blob.0.as_ptr()));
    // A sequence cannot be borrowed as bytes.
    assert_eq!(from_slice::<Blob>(&as_seq), Err(Error::UnexpectedType));
    // Vec<u8> and [u8; N] accept both forms.
    assert_eq!(from_slice::<Vec<u8>>(&as_bytes).unwrap(), data);
    assert_eq!(from_slice::<Vec<u8>>(&as_seq).unwrap(), data);
    assert_eq!(from_slice::<[u8; 3]>(&as_bytes).unwrap(), data);
    assert_eq!(from_slice::<[u8; 2]>(&as_bytes), Err(Error::Custom));
    assert_eq!(from_slice::<[u8; 4]>(&as_bytes), Err(Error::Custom));

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Packet<'a> {
        #[serde(borrow)]
        payload: Blob<'a>,
        crc: u16,
    }
    let p = Packet { payload: Blob(&data), crc: 0xbeef };
    assert_eq!(from_slice::<Packet>(&ser(&p)).unwrap(), p);
}

// ---------------------------------------------------------------- enums

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Cmd {
    Stop,
    Move(i32),
    Pair(u8, u8),
    Set { level: u8, label: String },
}

#[test]
fn enums_are_externally_tagged_like_serde_json() {
    let cases = [
        (Cmd::Stop, vec![0x84, b'S', b't', b'o', b'p']),
        (Cmd::Move(-3), vec![0xc1, 0x84, b'M', b'o', b'v', b'e', 0x23]),
        (Cmd::Pair(1, 2), vec![0xc1, 0x84, b'P', b'a', b'i', b'r', 0xe2, 0x01, 0x02]),
        (
            Cmd::Set { level: 7, label: "a".into() },
            vec![
                0xc1, 0x83, b'S', b'e', b't', 0xc2, 0x85, b'l', b'e', b'v', b'e', b'l', 0x07, 0x85, b'l', b'a', b'b',
                b'e', b'l', 0x81, b'a',
            ],
        ),
    ];
    for (cmd, expected) in cases {
        let bytes = ser(&cmd);
        assert_eq!(bytes, expected, "{cmd:?}");
        assert_eq!(from_slice::<Cmd>(&bytes).unwrap(), cmd);
        // Same shape as serde_json.
        let via_pson: serde_json::Value = from_slice(&bytes).unwrap();
        assert_eq!(via_pson, serde_json::to_value(&cmd).unwrap());
    }
    // {"Stop": null} is the unit variant too; a struct variant may come as an array.
    assert_eq!(from_slice::<Cmd>(&[0xc1, 0x84, b'S', b't', b'o', b'p', 0x62]), Ok(Cmd::Stop));
    let set_array = [0xc1, 0x83, b'S', b'e', b't', 0xe2, 0x07, 0x81, b'a'];
    assert_eq!(from_slice::<Cmd>(&set_array).unwrap(), Cmd::Set { level: 7, label: "a".into() });

    assert_eq!(from_slice::<Cmd>(&ser("Jump")), Err(Error::Custom));
    assert_eq!(from_slice::<Cmd>(&ser("Move")), Err(Error::UnexpectedType)); // needs content
    assert_eq!(from_slice::<Cmd>(&ser(&0u8)), Err(Error::UnexpectedType));
    assert_eq!(from_slice::<Cmd>(&[0xc0]), Err(Error::UnexpectedType));
    let two_entries = [0xc2, 0x84, b'S', b't', b'o', b'p', 0x62, 0x84, b'S', b't', b'o', b'p', 0x62];
    assert_eq!(from_slice::<Cmd>(&two_entries), Err(Error::UnexpectedType));
    assert_eq!(from_slice::<Cmd>(&[0xc1, 0x01, 0x62]), Err(Error::NonStringKey));
}

#[test]
fn internally_and_adjacently_tagged_enums_round_trip() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "type")]
    enum Event {
        Boot { reason: String },
        Tick,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "t", content = "c")]
    enum Adj {
        Num(u32),
    }
    for e in [Event::Boot { reason: "wdt".into() }, Event::Tick] {
        assert_eq!(from_slice::<Event>(&ser(&e)).unwrap(), e);
    }
    assert_eq!(from_slice::<Adj>(&ser(&Adj::Num(9))).unwrap(), Adj::Num(9));
}

// ---------------------------------------------------------------- maps and structs

#[test]
fn map_keys_strings_and_integers() {
    let mut m = BTreeMap::new();
    m.insert("a".to_string(), 1u8);
    m.insert("b".to_string(), 2u8);
    let bytes = ser(&m);
    assert_eq!(bytes, [0xc2, 0x81, b'a', 0x01, 0x81, b'b', 0x02]);
    assert_eq!(from_slice::<BTreeMap<String, u8>>(&bytes).unwrap(), m);
    let borrowed: BTreeMap<&str, u8> = from_slice(&bytes).unwrap();
    assert_eq!(borrowed["b"], 2);

    // Integer keys are written as decimal strings and parsed back.
    let ints: BTreeMap<i32, bool> = [(-5, true), (31, false)].into_iter().collect();
    let bytes = ser(&ints);
    assert_eq!(bytes, [0xc2, 0x82, b'-', b'5', 0x61, 0x82, b'3', b'1', 0x60]);
    assert_eq!(from_slice::<BTreeMap<i32, bool>>(&bytes).unwrap(), ints);
    assert_eq!(from_slice::<BTreeMap<u8, bool>>(&bytes), Err(Error::UnexpectedType)); // "-5"
    let wide: BTreeMap<u128, u8> = [(u128::MAX, 1)].into_iter().collect();
    assert_eq!(from_slice::<BTreeMap<u128, u8>>(&ser(&wide)).unwrap(), wide);

    // char and unit-variant keys are strings too.
    #[derive(Serialize, Deserialize, Debug, PartialEq, PartialOrd, Ord, Eq)]
    enum Axis {
        X,
        Y,
    }
    let axes: BTreeMap<Axis, char> = [(Axis::X, 'x'), (Axis::Y, 'y')].into_iter().collect();
    let bytes = ser(&axes);
    assert_eq!(bytes, [0xc2, 0x81, b'X', 0x81, b'x', 0x81, b'Y', 0x81, b'y']);
    assert_eq!(from_slice::<BTreeMap<Axis, char>>(&bytes).unwrap(), axes);
    let by_char: BTreeMap<char, u8> = [('k', 1)].into_iter().collect();
    assert_eq!(from_slice::<BTreeMap<char, u8>>(&ser(&by_char)).unwrap(), by_char);

    // Anything else cannot be a key.
    let bools: BTreeMap<bool, u8> = [(true, 1)].into_iter().collect();
    assert_eq!(serialized_len(&bools), Err(Error::NonStringKey));
    let tuples: BTreeMap<(u8, u8), u8> = [((1, 2), 1)].into_iter().collect();
    assert_eq!(serialized_len(&tuples), Err(Error::NonStringKey));
    let opts: BTreeMap<Option<u8>, u8> = [(None, 1)].into_iter().collect();
    assert_eq!(serialized_len(&opts), Err(Error::NonStringKey));

    // A non-string key on the wire.
    assert_eq!(from_slice::<BTreeMap<String, u8>>(&[0xc1, 0x01, 0x01]), Err(Error::NonStringKey));
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
struct Telemetry<'a> {
    temp: f32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    error: Option<&'a str>,
    #[serde(skip)]
    internal: u32,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    history: Vec<u8>,
}

#[test]
fn skipped_fields_give_a_minimal_exact_header() {
    let bare = Telemetry { temp: 21.5, internal: 99, ..Default::default() };
    let bytes = ser(&bare);
    let expected = raw(|e| {
        e.map_header(1).unwrap();
        e.str("temp").unwrap();
        e.f32(21.5).unwrap();
    });
    assert_eq!(bytes, expected);
    assert_eq!(from_slice::<Telemetry>(&bytes).unwrap(), Telemetry { internal: 0, ..bare });

    let full = Telemetry { temp: 21.5, error: Some("probe"), internal: 0, history: vec![1, 2] };
    let bytes = ser(&full);
    let expected = raw(|e| {
        e.map_header(3).unwrap();
        e.str("temp").unwrap();
        e.f32(21.5).unwrap();
        e.str("error").unwrap();
        e.str("probe").unwrap();
        e.str("history").unwrap();
        e.array_header(2).unwrap();
        e.u64(1).unwrap();
        e.u64(2).unwrap();
    });
    assert_eq!(bytes, expected);
    assert_eq!(from_slice::<Telemetry>(&bytes).unwrap(), full);

    // Same inside a struct variant.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Report {
        Alarm {
            code: u16,
            #[serde(skip_serializing_if = "Option::is_none", default)]
            detail: Option<String>,
        },
    }
    let alarm = Report::Alarm { code: 7, detail: None };
    let bytes = ser(&alarm);
    assert_eq!(PsonRef::decode(&bytes).unwrap().get("Alarm").unwrap().as_map().unwrap().len(), 1);
    assert_eq!(from_slice::<Report>(&bytes).unwrap(), alarm);
}

/// A hand-written `Serialize` that declares `declared` fields and writes `written`.
struct Liar {
    declared: usize,
    written: usize,
}

impl Serialize for Liar {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Liar", self.declared)?;
        for _ in 0..self.written {
            st.serialize_field("f", &1u8)?;
        }
        st.skip_field("skipped")?;
        st.end()
    }
}

struct LiarSeq(usize, usize);

impl Serialize for LiarSeq {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0))?;
        for _ in 0..self.1 {
            seq.serialize_element(&1u8)?;
        }
        seq.end()
    }
}

struct KeyWithoutValue;

impl Serialize for KeyWithoutValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_key("k")?;
        map.end()
    }
}

#[test]
fn wrong_declared_lengths_are_refused() {
    assert_eq!(ser(&Liar { declared: 2, written: 2 }), [0xc2, 0x81, b'f', 0x01, 0x81, b'f', 0x01]);
    assert_eq!(serialized_len(&Liar { declared: 3, written: 2 }), Err(Error::Custom));
    assert_eq!(serialized_len(&Liar { declared: 1, written: 2 }), Err(Error::Custom));
    assert_eq!(serialized_len(&LiarSeq(2, 1)), Err(Error::Custom));
    assert_eq!(serialized_len(&LiarSeq(1, 2)), Err(Error::Custom));
    assert_eq!(serialized_len(&KeyWithoutValue), Err(Error::Custom));
}

#[test]
fn unknown_lengths_are_unsupported() {
    struct Stream;
    impl Serialize for Stream {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq((0..10u8).filter(|v| v % 2 == 0))
        }
    }
    assert_eq!(serialized_len(&Stream), Err(Error::Unsupported));

    #[derive(Serialize)]
    struct Flat {
        a: u8,
        #[serde(flatten)]
        rest: BTreeMap<String, u8>,
    }
    assert_eq!(serialized_len(&Flat { a: 1, rest: BTreeMap::new() }), Err(Error::Unsupported));
}

#[test]
fn structs_from_maps_and_arrays() {
    // Unknown keys (with nested containers) are skipped; key order does not matter.
    let input = raw(|e| {
        e.map_header(6).unwrap();
        e.str("extra").unwrap();
        e.map_header(1).unwrap();
        e.str("x").unwrap();
        e.array_header(2).unwrap();
        e.null().unwrap();
        e.bytes(b"zz").unwrap();
        e.str("temperature").unwrap();
        e.f32(23.5).unwrap();
        e.str("label").unwrap();
        e.str("in").unwrap();
        e.str("pressure").unwrap();
        e.u64(1000).unwrap();
        e.str("humidity").unwrap();
        e.u64(40).unwrap();
        e.str("more").unwrap();
        e.str("").unwrap();
    });
    let r: Reading = from_slice(&input).unwrap();
    assert_eq!(r, Reading { humidity: 40, label: "in", pressure: 1000, temperature: 23.5 });

    // From an array, in field order.
    let arr = ser(&(40u8, "in", 1000u16, 23.5f64));
    assert_eq!(from_slice::<Reading>(&arr).unwrap(), r);
    let long = ser(&(40u8, "in", 1000u16, 23.5f64, 0u8));
    assert_eq!(from_slice::<Reading>(&long), Err(Error::Custom));
    let short = ser(&(40u8, "in", 1000u16));
    assert_eq!(from_slice::<Reading>(&short), Err(Error::Custom));
    assert_eq!(from_slice::<(u8, u8)>(&ser(&(1u8, 2u8, 3u8))), Err(Error::Custom));

    // Missing and duplicate fields.
    let missing = ser(&BTreeMap::from([("humidity", 1u8)]));
    assert_eq!(from_slice::<Reading>(&missing), Err(Error::Custom));
    let dup = raw(|e| {
        e.map_header(2).unwrap();
        e.str("humidity").unwrap();
        e.u64(1).unwrap();
        e.str("humidity").unwrap();
        e.u64(2).unwrap();
    });
    assert_eq!(from_slice::<Reading>(&dup), Err(Error::Custom));
    assert_eq!(from_slice::<Reading>(&ser("no")), Err(Error::UnexpectedType));
}

#[test]
fn deserializer_reads_a_prefix_and_reports_trailing_bytes() {
    assert_eq!(from_slice::<u8>(&[0x01, 0x02]), Err(Error::TrailingBytes));
    assert_eq!(from_slice::<u8>(&[]), Err(Error::Truncated));

    let mut input = ser(&Cmd::Move(5));
    input.extend_from_slice(&ser("next"));
    let mut de = Deserializer::new(&input);
    assert_eq!(Cmd::deserialize(&mut de), Ok(Cmd::Move(5)));
    assert_eq!(de.end(), Err(Error::TrailingBytes));
    assert_eq!(<&str>::deserialize(&mut de), Ok("next"));
    assert_eq!(de.position(), input.len());
    assert_eq!(de.end(), Ok(()));

    // A serializer continuing an encoder, over a size counter.
    let mut s = Serializer::new(SizeCounter::default());
    Cmd::Pair(1, 2).serialize(&mut s).unwrap();
    assert_eq!(s.into_sink().len(), ser(&Cmd::Pair(1, 2)).len());
}

// ---------------------------------------------------------------- hostile input

fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut v = vec![0xe1; depth - 1];
    v.push(0xe0);
    v
}

#[derive(Deserialize, Debug)]
#[allow(dead_code)]
enum Tree {
    Leaf(u8),
    Node(Vec<Tree>),
}

#[derive(Deserialize, Debug)]
struct Any(#[allow(dead_code)] serde_json::Value);

#[test]
fn depth_limit_is_enforced() {
    // Exactly DEFAULT_MAX_DEPTH nested arrays are fine, one more is not (same as PsonRef).
    let ok = nested_arrays(DEFAULT_MAX_DEPTH);
    let deep = nested_arrays(DEFAULT_MAX_DEPTH + 1);
    assert!(PsonRef::decode(&ok).is_ok());
    assert!(from_slice::<serde_json::Value>(&ok).is_ok());
    assert_eq!(from_slice::<serde_json::Value>(&deep).unwrap_err(), Error::DepthLimitExceeded);
    assert_eq!(from_slice::<de::IgnoredAny>(&deep).unwrap_err(), Error::DepthLimitExceeded);
    let strict = DecodeOptions::new().max_depth(2);
    assert_eq!(from_slice_with::<Vec<Vec<u8>>>(&[0xe1, 0xe1, 0x01], &strict), Ok(vec![vec![1]]));
    assert_eq!(from_slice_with::<Vec<Vec<Vec<u8>>>>(&[0xe1, 0xe1, 0xe0], &strict), Err(Error::DepthLimitExceeded));
    // max_depth 0 still reads scalars.
    assert_eq!(from_slice_with::<u8>(&[0x07], &DecodeOptions::new().max_depth(0)), Ok(7));

    // Skipped (unknown) fields count too.
    let mut hidden = vec![0xc2, 0x84, b't', b'e', b'm', b'p', 0x01, 0x81, b'x'];
    hidden.extend_from_slice(&nested_arrays(DEFAULT_MAX_DEPTH));
    #[derive(Deserialize, Debug)]
    struct Small {
        #[allow(dead_code)]
        temp: u8,
    }
    assert_eq!(from_slice::<Small>(&hidden).unwrap_err(), Error::DepthLimitExceeded);

    // A recursive type fed 100 000 nested levels: an error, not a stack overflow.
    let mut bomb = Vec::new();
    for _ in 0..100_000 {
        bomb.extend_from_slice(&[0xc1, 0x84, b'N', b'o', b'd', b'e', 0xe1]);
    }
    bomb.extend_from_slice(&[0xc1, 0x84, b'L', b'e', b'a', b'f', 0x01]);
    assert_eq!(from_slice::<Tree>(&bomb).unwrap_err(), Error::DepthLimitExceeded);
    assert_eq!(from_slice::<Any>(&bomb).unwrap_err(), Error::DepthLimitExceeded);
}

#[test]
fn truncated_input_is_an_error_at_every_cut() {
    let full = vector("benchmark_payload");
    for cut in 0..full.len() {
        let err = from_slice::<Reading>(&full[..cut]).unwrap_err();
        assert!(matches!(err, Error::Truncated | Error::LengthExceedsInput), "cut {cut}: {err:?}");
        let err = from_slice::<serde_json::Value>(&full[..cut]).unwrap_err();
        assert!(matches!(err, Error::Truncated | Error::LengthExceedsInput), "cut {cut}: {err:?}");
    }
}

#[test]
fn hostile_lengths_are_refused_before_use() {
    // An array claiming u32::MAX elements, a string claiming 4 GiB, a map claiming 2^62 pairs.
    assert_eq!(from_slice::<Vec<u8>>(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), Err(Error::LengthExceedsInput));
    assert_eq!(from_slice::<&str>(&[0x9f, 0xff, 0xff, 0xff, 0xff, 0x0f, b'a']), Err(Error::LengthExceedsInput));
    let mut m = vec![0xdf];
    m.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x81, b'a', 0x01]);
    assert_eq!(from_slice::<BTreeMap<String, u8>>(&m), Err(Error::LengthExceedsInput));
    assert_eq!(
        from_slice::<Blob>(&[0xbf, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        Err(Error::VarintOverflow)
    );
    assert_eq!(
        from_slice::<i64>(&[0x3f, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        Err(Error::IntegerOverflow)
    );
}

#[test]
fn serializing_into_a_short_buffer_is_buffer_full_at_every_size() {
    let reading = Reading { humidity: 60, label: "outdoor", pressure: 1013, temperature: 23.5 };
    let len = serialized_len(&reading).unwrap();
    for cut in 0..len {
        let mut buf = vec![0u8; cut];
        assert_eq!(to_slice(&reading, &mut buf), Err(Error::BufferFull), "buffer of {cut}");
    }
}

// ---------------------------------------------------------------- property tests

#[derive(Serialize, Deserialize, Debug, Clone)]
enum Mode {
    Off,
    Level(u8),
    Range(i32, i32),
    Custom { gain: f64, label: Option<String> },
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Inner {
    values: Vec<f64>,
    flag: Option<bool>,
    modes: Vec<Mode>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Sample {
    small: u8,
    signed: i64,
    big: u64,
    wide: i128,
    ratio: f64,
    narrow: f32,
    name: String,
    letter: char,
    tags: Vec<String>,
    maybe: Option<i32>,
    nested: Vec<Inner>,
    grid: Vec<Vec<Option<i16>>>,
    mode: Mode,
    by_name: BTreeMap<String, i16>,
    by_id: BTreeMap<u32, bool>,
    raw: Vec<u8>,
    pair: (bool, u16),
    nothing: (),
}

fn same_f64(a: f64, b: f64) -> bool {
    if a.is_nan() { a.to_bits() == b.to_bits() } else { a == b }
}

fn same_f32(a: f32, b: f32) -> bool {
    if a.is_nan() { a.to_bits() == b.to_bits() } else { a == b }
}

fn same_mode(a: &Mode, b: &Mode) -> bool {
    match (a, b) {
        (Mode::Off, Mode::Off) => true,
        (Mode::Level(x), Mode::Level(y)) => x == y,
        (Mode::Range(a1, a2), Mode::Range(b1, b2)) => a1 == b1 && a2 == b2,
        (Mode::Custom { gain: g1, label: l1 }, Mode::Custom { gain: g2, label: l2 }) => same_f64(*g1, *g2) && l1 == l2,
        _ => false,
    }
}

fn same_inner(a: &Inner, b: &Inner) -> bool {
    a.values.len() == b.values.len()
        && a.values.iter().zip(&b.values).all(|(x, y)| same_f64(*x, *y))
        && a.flag == b.flag
        && a.modes.len() == b.modes.len()
        && a.modes.iter().zip(&b.modes).all(|(x, y)| same_mode(x, y))
}

fn same_sample(a: &Sample, b: &Sample) -> bool {
    a.small == b.small
        && a.signed == b.signed
        && a.big == b.big
        && a.wide == b.wide
        && same_f64(a.ratio, b.ratio)
        && same_f32(a.narrow, b.narrow)
        && a.name == b.name
        && a.letter == b.letter
        && a.tags == b.tags
        && a.maybe == b.maybe
        && a.nested.len() == b.nested.len()
        && a.nested.iter().zip(&b.nested).all(|(x, y)| same_inner(x, y))
        && a.grid == b.grid
        && same_mode(&a.mode, &b.mode)
        && a.by_name == b.by_name
        && a.by_id == b.by_id
        && a.raw == b.raw
        && a.pair == b.pair
}

/// Any f64, with the interesting ones (whole numbers, NaN payloads, infinities, -0,
/// f32-exact values, i64 edges) much more likely than uniform bits would give.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
        any::<i32>().prop_map(f64::from),
        any::<i64>().prop_map(|v| v as f64),
        any::<f32>().prop_map(f64::from),
        any::<u32>().prop_map(f32::from_bits).prop_map(f64::from),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(9_223_372_036_854_775_808.0),
        Just(-9_223_372_036_854_775_808.0),
    ]
}

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![any::<f32>(), any::<u32>().prop_map(f32::from_bits), any::<i16>().prop_map(f32::from), Just(-0.0)]
}

fn any_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Off),
        any::<u8>().prop_map(Mode::Level),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| Mode::Range(a, b)),
        (any_f64(), proptest::option::of(".{0,8}")).prop_map(|(gain, label)| Mode::Custom { gain, label }),
    ]
}

fn any_inner() -> impl Strategy<Value = Inner> {
    (
        proptest::collection::vec(any_f64(), 0..5),
        proptest::option::of(any::<bool>()),
        proptest::collection::vec(any_mode(), 0..3),
    )
        .prop_map(|(values, flag, modes)| Inner { values, flag, modes })
}

prop_compose! {
    fn any_sample()(
        (small, signed, big, wide, ratio, narrow, name, letter) in (
            any::<u8>(),
            any::<i64>(),
            any::<u64>(),
            prop_oneof![any::<i64>().prop_map(i128::from), any::<u64>().prop_map(i128::from)],
            any_f64(),
            any_f32(),
            ".{0,40}",
            any::<char>(),
        ),
        (tags, maybe, nested, grid, mode, by_name, by_id, raw, pair) in (
            proptest::collection::vec(".{0,6}", 0..4),
            proptest::option::of(any::<i32>()),
            proptest::collection::vec(any_inner(), 0..3),
            proptest::collection::vec(proptest::collection::vec(proptest::option::of(any::<i16>()), 0..4), 0..4),
            any_mode(),
            proptest::collection::btree_map(".{0,5}", any::<i16>(), 0..4),
            proptest::collection::btree_map(any::<u32>(), any::<bool>(), 0..4),
            proptest::collection::vec(any::<u8>(), 0..40),
            (any::<bool>(), any::<u16>()),
        ),
    ) -> Sample {
        Sample {
            small, signed, big, wide, ratio, narrow, name, letter, tags, maybe, nested, grid, mode,
            by_name, by_id, raw, pair, nothing: (),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn samples_round_trip(sample in any_sample()) {
        let bytes = ser(&sample);
        let back: Sample = from_slice(&bytes).unwrap();
        prop_assert!(same_sample(&sample, &back), "{sample:?}\n!=\n{back:?}");
        // The encoding is canonical: re-serializing the decoded value gives the same bytes.
        prop_assert_eq!(ser(&back), bytes.clone());
        // The Serde wrapper writes the same bytes.
        let mut buf = vec![0u8; bytes.len()];
        prop_assert_eq!(encode_to_slice(&Serde(&sample), &mut buf), Ok(bytes.len()));
        prop_assert_eq!(&buf, &bytes);
        // Any strict prefix fails cleanly.
        let cut = bytes.len() / 2;
        prop_assert!(from_slice::<Sample>(&bytes[..cut]).is_err());
    }

    #[test]
    fn scalars_round_trip(v in any_f64(), w in any_f32(), i in any::<i64>(), s in ".*") {
        prop_assert!(same_f64(from_slice::<f64>(&ser(&v)).unwrap(), v));
        prop_assert!(same_f32(from_slice::<f32>(&ser(&w)).unwrap(), w));
        prop_assert_eq!(from_slice::<i64>(&ser(&i)).unwrap(), i);
        let encoded = ser(&s);
        prop_assert_eq!(from_slice::<&str>(&encoded).unwrap(), s.as_str());
        // Floats go through the encoder's own rules.
        let mut buf = [0u8; 16];
        let n = pson::encode_to_slice(&v, &mut buf).unwrap();
        prop_assert_eq!(&buf[..n], &ser(&v)[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = from_slice::<Sample>(&bytes);
        let _ = from_slice::<Reading>(&bytes);
        let _ = from_slice::<Cmd>(&bytes);
        let _ = from_slice::<Tree>(&bytes);
        let _ = from_slice::<de::IgnoredAny>(&bytes);
        // Whatever a generic visitor accepts is valid PSON (same verdict as PsonRef).
        let generic = from_slice::<serde_json::Value>(&bytes);
        let checked = PsonRef::decode(&bytes);
        if generic.is_ok() {
            prop_assert!(checked.is_ok());
        }
    }

    #[test]
    fn mutated_samples_never_panic(
        sample in any_sample(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut bytes = ser(&sample);
        for (at, byte) in edits {
            let len = bytes.len();
            bytes[at % len] = byte;
        }
        let cut = cut % (bytes.len() + 1);
        if let Ok(back) = from_slice::<Sample>(&bytes[..cut]) {
            // Anything accepted serializes again.
            ser(&back);
        }
        let _ = from_slice::<serde_json::Value>(&bytes);
    }
}

// ---------------------------------------------------------------- custom visitors

/// A visitor that reads only the first element of a sequence.
struct FirstOnly;

impl<'de> Deserialize<'de> for FirstOnly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = FirstOnly;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<FirstOnly, A::Error> {
                let _: Option<u8> = seq.next_element()?;
                Ok(FirstOnly)
            }
        }
        d.deserialize_seq(V)
    }
}

#[test]
fn visitors_that_stop_early_are_refused() {
    assert!(from_slice::<FirstOnly>(&[0xe1, 0x01]).is_ok());
    assert_eq!(from_slice::<FirstOnly>(&[0xe2, 0x01, 0x02]).map(|_| ()), Err(Error::Custom));
}
