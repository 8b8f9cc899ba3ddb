//! Every vector of `tests/data/iotmp-vectors.md`, both ways.
//!
//! PSON vectors: JSON → `pson::Value` → exactly the hex; hex → value equal to the JSON by
//! value. Message vectors: `type` + `fields` → the whole frame, built three ways
//! (`FrameWriter` field by field, `FrameWriter::value`, `OutgoingMessage`) → exactly the
//! hex; hex → `FrameDecoder` (whole and one byte at a time) → `RawFrame::message` → the
//! same fields by value, with the same wire types.

mod common;

use std::collections::BTreeMap;

use common::{hex, to_hex};
use thinger_core::iotmp::{
    FieldId, FieldValue, FrameDecoder, FrameWriter, Message, MessageType, OutField, OutgoingMessage,
};
use thinger_core::pson::{self, PsonRef, Value};

const PSON_VECTORS: usize = 35;
const MESSAGE_VECTORS: usize = 17;

#[derive(Debug)]
struct Vector {
    kind: String,
    name: String,
    fields: BTreeMap<String, String>,
}

impl Vector {
    fn field(&self, key: &str) -> &str {
        self.fields.get(key).unwrap_or_else(|| panic!("vector {} has no `{key}`", self.name))
    }
}

fn load() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iotmp-vectors.md");
    let text = std::fs::read_to_string(path).unwrap().replace("\r\n", "\n");
    let mut vectors = Vec::new();
    for block in text.split("\n\n") {
        let block = block.trim();
        if block.is_empty() {
            continue;
        }
        if !block.starts_with("kind:") {
            // Only the introduction may be prose; a vector block that lost its `kind` line
            // after the first vector would otherwise be skipped silently.
            assert!(vectors.is_empty(), "block without `kind:` after the first vector:\n{block}");
            continue;
        }
        let mut fields = BTreeMap::new();
        for line in block.lines() {
            let (key, value) = line.split_once(": ").unwrap_or_else(|| panic!("not `key: value`: {line:?}"));
            assert!(fields.insert(key.to_string(), value.to_string()).is_none(), "repeated `{key}` in {block}");
        }
        let kind = fields["kind"].clone();
        let name = fields.get("name").cloned().unwrap_or_else(|| panic!("vector without a name:\n{block}"));
        vectors.push(Vector { kind, name, fields });
    }
    // Cross-check the block parser against a plain count of `kind:` lines.
    assert_eq!(vectors.len(), text.lines().filter(|l| l.starts_with("kind:")).count());
    vectors
}

/// JSON → `Value`, independently of `Value`'s serde impls: integers become `Uint` / `Int`,
/// every other number `F64` (so the encoder's float rules apply). Keys come out sorted
/// (serde_json's map), which is the order the vectors use.
fn from_json(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::Uint(u)
            } else if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else {
                Value::F64(n.as_f64().unwrap())
            }
        }
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

/// A decoded value against the JSON text's value, by value, written against serde_json
/// directly (not through `Value::value_eq`).
fn matches_json(value: &Value, json: &serde_json::Value) -> bool {
    match json {
        serde_json::Value::Null => value.is_null(),
        serde_json::Value::Bool(b) => value.as_bool() == Some(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                value.as_u64() == Some(u)
            } else if let Some(i) = n.as_i64() {
                value.as_i64() == Some(i)
            } else {
                value.is_number() && value.as_f64() == n.as_f64()
            }
        }
        serde_json::Value::String(s) => value.as_str() == Some(s.as_str()),
        serde_json::Value::Array(items) => value
            .as_array()
            .is_some_and(|a| a.len() == items.len() && a.iter().zip(items).all(|(v, j)| matches_json(v, j))),
        serde_json::Value::Object(map) => value.as_map().is_some_and(|pairs| {
            pairs.len() == map.len() && pairs.iter().zip(map).all(|((k, v), (jk, jv))| k == jk && matches_json(v, jv))
        }),
    }
}

/// The JSON text as a `Value` in its written order, through `Value`'s `Deserialize`.
fn ordered(json: &str) -> Value {
    serde_json::from_str(json).unwrap()
}

#[test]
fn pson_vectors() {
    let vectors = load();
    let pson: Vec<&Vector> = vectors.iter().filter(|v| v.kind == "pson").collect();
    assert_eq!(pson.len(), PSON_VECTORS);
    for v in pson {
        let name = &v.name;
        let json_text = v.field("json");
        let expected = hex(v.field("hex"));
        let json: serde_json::Value = serde_json::from_str(json_text).unwrap();
        let value = from_json(&json);
        // The vectors write map keys sorted, so the ordered parse agrees exactly.
        assert_eq!(ordered(json_text), value, "{name}: ordered JSON parse");

        // Encode.
        let bytes = value.encode_to_vec();
        assert_eq!(to_hex(&bytes), to_hex(&expected), "{name}: encoding");
        assert_eq!(pson::encoded_len(&value), expected.len(), "{name}: encoded_len");
        let mut exact = vec![0u8; expected.len()];
        assert_eq!(pson::encode_to_slice(&value, &mut exact), Ok(expected.len()), "{name}");
        assert_eq!(exact, expected, "{name}: encode_to_slice");

        // Decode.
        let view = PsonRef::decode(&expected).unwrap_or_else(|e| panic!("{name}: {e}"));
        let decoded = Value::decode(&expected).unwrap();
        assert_eq!(Value::from_ref(view), decoded, "{name}");
        assert!(matches_json(&decoded, &json), "{name}: decoded {decoded:?} is not {json_text}");
        assert!(decoded.value_eq(&value), "{name}: decoded {decoded:?} vs {value:?}");
        // The vectors are canonical: what was decoded encodes back to the same bytes, and
        // so does the borrowed view.
        assert_eq!(decoded.encode_to_vec(), expected, "{name}: re-encoding");
        let mut again = vec![0u8; expected.len()];
        assert_eq!(pson::encode_to_slice(&view, &mut again), Ok(expected.len()));
        assert_eq!(again, expected, "{name}: PsonRef re-encoding");

        // Value's Serialize/Deserialize through serde_json keep the value.
        let through_json: Value = serde_json::from_value(serde_json::to_value(&decoded).unwrap()).unwrap();
        assert!(through_json.value_eq(&decoded), "{name}: serde round trip {through_json:?}");
    }
}

#[test]
fn benchmark_payload_is_55_bytes() {
    let vectors = load();
    let bench = vectors.iter().find(|v| v.name == "benchmark_payload").unwrap();
    let expected = hex(bench.field("hex"));
    assert_eq!(expected.len(), 55);
    let value = thinger_core::pson!({"humidity": 60, "label": "outdoor", "pressure": 1013, "temperature": 23.5});
    assert_eq!(pson::encoded_len(&value), 55);
    assert_eq!(value.encode_to_vec(), expected);
}

/// The fields of a message vector, in the order written, by field id.
fn message_fields(v: &Vector) -> Vec<(FieldId, Value)> {
    let fields = ordered(v.field("fields"));
    let pairs = fields.as_map().unwrap_or_else(|| panic!("{}: fields is not an object", v.name));
    let fields: Vec<(FieldId, Value)> = pairs
        .iter()
        .map(|(k, value)| {
            let id = match k.as_str() {
                "1" => FieldId::StreamId,
                "2" => FieldId::Parameters,
                "3" => FieldId::Payload,
                "4" => FieldId::Resource,
                other => panic!("{}: unknown field id {other}", v.name),
            };
            (id, value.clone())
        })
        .collect();
    assert!(fields.windows(2).all(|w| w[0].0 < w[1].0), "{}: fields not in ascending id order", v.name);
    fields
}

/// A field is sent as a varint exactly when it is an unsigned integer.
fn as_varint(value: &Value) -> Option<u64> {
    match value {
        Value::Uint(u) => Some(*u),
        _ => None,
    }
}

fn frame_writer_field_by_field(kind: MessageType, fields: &[(FieldId, Value)]) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut w = FrameWriter::new(&mut buf, kind).unwrap();
    for (id, value) in fields {
        match as_varint(value) {
            Some(u) => w.varint(*id, u).unwrap(),
            None => w.pson(*id, |enc| enc.value(value)).unwrap(),
        };
    }
    let n = w.finish();
    buf[..n].to_vec()
}

fn frame_writer_value(kind: MessageType, fields: &[(FieldId, Value)]) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut w = FrameWriter::new(&mut buf, kind).unwrap();
    for (id, value) in fields {
        w.value(*id, value).unwrap();
    }
    let n = w.finish();
    buf[..n].to_vec()
}

fn outgoing_message(kind: MessageType, fields: &[(FieldId, Value)]) -> Vec<u8> {
    fn out_field(value: &Value) -> OutField<'_> {
        match as_varint(value) {
            Some(u) => OutField::Varint(u),
            None => OutField::Pson(value),
        }
    }
    let mut msg = OutgoingMessage::new(kind, 0);
    for (id, value) in fields {
        match id {
            FieldId::StreamId => msg.stream_id = u16::try_from(as_varint(value).unwrap()).unwrap(),
            FieldId::Parameters => msg = msg.parameters(out_field(value)),
            FieldId::Payload => msg = msg.payload(out_field(value)),
            FieldId::Resource => msg = msg.resource(out_field(value)),
        }
    }
    let mut buf = vec![0u8; msg.encoded_len()];
    let n = msg.encode(&mut buf).unwrap();
    assert_eq!(n, buf.len());
    let mut through_writer = Vec::new();
    assert_eq!(msg.encode_to(&mut through_writer).unwrap(), n);
    assert_eq!(through_writer, buf);
    buf
}

/// Checks a decoded message against the vector's fields, by value and by wire type.
fn check_message(name: &str, kind: MessageType, fields: &[(FieldId, Value)], message: &Message<'_>) {
    assert_eq!(message.kind, kind, "{name}: type");
    let expected = |id: FieldId| fields.iter().find(|(f, _)| *f == id).map(|(_, v)| v);
    let stream_id = expected(FieldId::StreamId).map_or(0, |v| v.as_u64().unwrap());
    assert_eq!(u64::from(message.stream_id), stream_id, "{name}: stream id");
    for (id, got) in [
        (FieldId::Parameters, message.parameters),
        (FieldId::Payload, message.payload),
        (FieldId::Resource, message.resource),
    ] {
        match (expected(id), got) {
            (None, None) => {}
            (Some(want), Some(FieldValue::Varint(u))) => {
                assert_eq!(as_varint(want), Some(u), "{name}: {id:?} came as varint {u}, expected {want:?}");
            }
            (Some(want), Some(FieldValue::Pson(p))) => {
                assert!(as_varint(want).is_none(), "{name}: {id:?} should be a varint");
                let got = Value::from_ref(p);
                assert!(got.value_eq(want), "{name}: {id:?} is {got:?}, expected {want:?}");
            }
            (want, got) => panic!("{name}: {id:?}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn message_vectors() {
    let vectors = load();
    let messages: Vec<&Vector> = vectors.iter().filter(|v| v.kind == "message").collect();
    assert_eq!(messages.len(), MESSAGE_VECTORS);
    assert_eq!(vectors.len(), PSON_VECTORS + MESSAGE_VECTORS, "a vector of another kind");
    for v in messages {
        let name = &v.name;
        let type_number: u32 = v.field("type").parse().unwrap();
        let kind = MessageType::from_u32(type_number).unwrap_or_else(|| panic!("{name}: type {type_number}"));
        let fields = message_fields(v);
        let expected = hex(v.field("hex"));

        // Encode, three ways.
        assert_eq!(to_hex(&frame_writer_field_by_field(kind, &fields)), to_hex(&expected), "{name}: FrameWriter");
        assert_eq!(to_hex(&frame_writer_value(kind, &fields)), to_hex(&expected), "{name}: FrameWriter::value");
        assert_eq!(to_hex(&outgoing_message(kind, &fields)), to_hex(&expected), "{name}: OutgoingMessage");

        // Decode the whole frame at once.
        let mut decoder = FrameDecoder::new([0u8; 128]);
        assert_eq!(decoder.feed(&expected), expected.len());
        let frame = decoder.next_frame().unwrap().unwrap_or_else(|| panic!("{name}: no frame"));
        assert_eq!(frame.msg_type, type_number);
        check_message(name, kind, &fields, &frame.message().unwrap_or_else(|e| panic!("{name}: {e}")));
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.finish(), Ok(()));

        // One byte at a time: nothing comes out before the last byte.
        let mut decoder = FrameDecoder::new([0u8; 128]);
        let (last, head) = expected.split_last().unwrap();
        for byte in head {
            assert_eq!(decoder.feed(std::slice::from_ref(byte)), 1);
            assert_eq!(decoder.next_frame(), Ok(None), "{name}: frame before its last byte");
        }
        assert!(decoder.finish().is_err(), "{name}: a partial frame must count as truncated");
        assert_eq!(decoder.feed(std::slice::from_ref(last)), 1);
        let frame = decoder.next_frame().unwrap().unwrap();
        assert_eq!(frame.msg_type, type_number);
        check_message(name, kind, &fields, &frame.message().unwrap());
        assert_eq!(decoder.finish(), Ok(()));
    }
}
