//! An unsigned-integer output travels as F3 varint (key 0x18), as the official client sends
//! it; everything else as PSON (key 0x1a). The session takes the varint from the PSON
//! integer's own bytes, so these pin the bytes for every varint length.

mod support;

use std::cell::Cell;

use proptest::prelude::*;
use support::{Harness, hex, varint};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::resource::{ResourceKind, Thing, handler};
use thinger_core::session::Config;

/// What the device answers to `RUN "n"` (stream id 9) when its handler writes `raw` PSON.
fn answer(raw: &[u8]) -> Vec<u8> {
    let raw = raw.to_vec();
    let mut n = handler(ResourceKind::Output, move |call| Ok(call.output().write(|enc| enc.raw(&raw))?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["n"] >>= &mut n;
    let mut h = Harness::new(Config::new("user", "dev", "pass"), thing);
    h.connect();
    let mut run = vec![0u8; 0];
    let msg = OutgoingMessage::new(MessageType::Run, 9).resource(OutField::Pson(&"n"));
    run.resize(msg.encoded_len(), 0);
    msg.encode(&mut run).unwrap();
    h.feed(&run)
}

/// `OK F1=9 F3=body` with F3's key.
fn ok(key3: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x01, (3 + body.len()) as u8, 0x08, 0x09, key3];
    out.extend_from_slice(body);
    out
}

fn answer_to(value: u64) -> Vec<u8> {
    let out = Cell::new(value);
    let mut n = handler(ResourceKind::Output, move |call| Ok(call.output().set(&out.get())?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["n"] >>= &mut n;
    let mut h = Harness::new(Config::new("user", "dev", "pass"), thing);
    h.connect();
    let msg = OutgoingMessage::new(MessageType::Run, 9).resource(OutField::Pson(&"n"));
    let mut run = vec![0u8; msg.encoded_len()];
    msg.encode(&mut run).unwrap();
    h.feed(&run)
}

#[test]
fn unsigned_outputs_of_every_varint_length_go_as_f3_varints() {
    let mut edges = vec![0, 1, 30, 31, 127, 128, 300, 3809, u64::from(u32::MAX), u64::MAX];
    edges.extend((1..64).flat_map(|bit| [(1u64 << bit) - 1, 1u64 << bit]));
    for v in edges {
        assert_eq!(answer_to(v), ok(0x18, &varint(v)), "{v}");
    }
}

#[test]
fn other_outputs_and_padded_integers_go_as_pson() {
    // Not integers: PSON.
    assert_eq!(answer(&[0x61]), ok(0x1a, &[0x61]));
    assert_eq!(answer(&[0x21]), ok(0x1a, &[0x21])); // -1
    assert_eq!(answer(&[0x81, b'a']), ok(0x1a, &[0x81, b'a']));
    // The extended form of a small value, unpadded: the varint.
    assert_eq!(answer(&[0x1f, 0x05]), ok(0x18, &[0x05]));
    assert_eq!(answer(&[0x1f, 0x00]), ok(0x18, &[0x00]));
    // A varint padded with zero groups (the encoder never writes one): PSON, as written.
    assert_eq!(answer(&[0x1f, 0x85, 0x00]), ok(0x1a, &[0x1f, 0x85, 0x00]));
    assert_eq!(answer(&[0x1f, 0x80, 0x80, 0x00]), ok(0x1a, &[0x1f, 0x80, 0x80, 0x00]));
    // Trailing bytes after an integer, or a broken varint: not an integer output.
    assert_eq!(answer(&[0x05, 0x05]), ok(0x1a, &[0x05, 0x05]));
    assert_eq!(answer(&[0x1f, 0x85]), ok(0x1a, &[0x1f, 0x85]));
    // The frame itself, spelled out once.
    assert_eq!(answer(&[0x05]), hex("010408091805"));
}

proptest! {
    #[test]
    fn any_unsigned_output_is_its_varint(v in any::<u64>()) {
        prop_assert_eq!(answer_to(v), ok(0x18, &varint(v)));
    }
}
