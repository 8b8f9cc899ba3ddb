//! Every decoding limit and every refusal, at its exact boundary.

use thinger_core::iotmp::{
    FieldValue, FrameDecoder, FrameError, MessageErrorKind, MessageType, RawFrame, parse_frame, parse_header,
};
use thinger_core::pson::{self, DEFAULT_MAX_DEPTH, DecodeOptions, Error, PsonRef, Value};

/// `levels` arrays nested inside each other: `[[…[]…]]`.
fn nested_arrays(levels: usize) -> Vec<u8> {
    let mut bytes = vec![0xe1; levels - 1];
    bytes.push(0xe0);
    bytes
}

/// `levels` maps nested inside each other: `{"k":{"k":…{"k":0}…}}`.
fn nested_maps(levels: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..levels {
        bytes.extend_from_slice(&[0xc1, 0x81, b'k']);
    }
    bytes.push(0x00);
    bytes
}

/// A RUN frame on stream 7 whose payload (F3) is `pson`.
fn run_frame_with_payload(pson: &[u8]) -> Vec<u8> {
    let mut body = vec![0x08, 0x07, 0x1a];
    body.extend_from_slice(pson);
    let mut frame = vec![0x06];
    let (size, n) = thinger_core::varint::to_array(body.len() as u64);
    frame.extend_from_slice(&size[..n]);
    frame.extend_from_slice(&body);
    frame
}

fn decode_frame(frame: &[u8]) -> (u32, Vec<u8>) {
    let mut decoder = FrameDecoder::new(vec![0u8; frame.len().max(16)]);
    assert_eq!(decoder.feed(frame), frame.len());
    let raw = decoder.next_frame().unwrap().unwrap();
    (raw.msg_type, raw.body.to_vec())
}

#[test]
fn default_depth_limit_is_exact() {
    assert_eq!(DEFAULT_MAX_DEPTH, 32);
    for make in [nested_arrays, nested_maps] {
        let at_limit = make(DEFAULT_MAX_DEPTH);
        let over = make(DEFAULT_MAX_DEPTH + 1);
        assert!(PsonRef::decode(&at_limit).is_ok());
        assert_eq!(PsonRef::decode(&over), Err(Error::DepthLimitExceeded));
        let value = Value::decode(&at_limit).unwrap();
        assert_eq!(value.encode_to_vec(), at_limit);
        assert_eq!(Value::decode(&over), Err(Error::DepthLimitExceeded));

        // Inside a frame the same limit applies by default.
        let (t, body) = decode_frame(&run_frame_with_payload(&at_limit));
        assert!(RawFrame { msg_type: t, body: &body }.message().is_ok());
        let (t, body) = decode_frame(&run_frame_with_payload(&over));
        let err = RawFrame { msg_type: t, body: &body }.message().unwrap_err();
        assert_eq!(err.kind, MessageErrorKind::Pson(Error::DepthLimitExceeded));
        assert_eq!(err.stream_id, 7);
    }
}

#[test]
fn custom_depth_limit_is_exact() {
    for limit in [1usize, 5, 100] {
        let options = DecodeOptions::new().max_depth(limit);
        for make in [nested_arrays, nested_maps] {
            let at_limit = make(limit);
            let over = make(limit + 1);
            assert!(PsonRef::decode_with(&at_limit, &options).is_ok(), "limit {limit}");
            assert_eq!(PsonRef::decode_with(&over, &options), Err(Error::DepthLimitExceeded), "limit {limit}");
            assert!(Value::decode_with(&at_limit, &options).is_ok());
            assert_eq!(Value::decode_with(&over, &options), Err(Error::DepthLimitExceeded));
            let (t, body) = decode_frame(&run_frame_with_payload(&over));
            let frame = RawFrame { msg_type: t, body: &body };
            assert_eq!(
                frame.message_with(&options).unwrap_err().kind,
                MessageErrorKind::Pson(Error::DepthLimitExceeded)
            );
            let (t, body) = decode_frame(&run_frame_with_payload(&at_limit));
            assert!(RawFrame { msg_type: t, body: &body }.message_with(&options).is_ok());
        }
    }
    // Depth 0 still allows scalars, but no container.
    let none = DecodeOptions::new().max_depth(0);
    assert_eq!(PsonRef::decode_with(&[0x61], &none), Ok(PsonRef::Bool(true)));
    assert_eq!(PsonRef::decode_with(&[0xe0], &none), Err(Error::DepthLimitExceeded));
    assert_eq!(PsonRef::decode_with(&[0xc0], &none), Err(Error::DepthLimitExceeded));
}

/// A frame of type 6 whose header announces a `body_len` body.
fn header(body_len: u64) -> Vec<u8> {
    let mut h = vec![0x06];
    let (size, n) = thinger_core::varint::to_array(body_len);
    h.extend_from_slice(&size[..n]);
    h
}

#[test]
fn frame_size_limit_is_exact_and_checked_from_the_header() {
    // One-byte and two-byte size varints.
    for max in [20usize, 200] {
        let mut decoder = FrameDecoder::new(vec![0u8; 256]).with_max_frame_size(max);
        assert_eq!(decoder.max_frame_size(), max);

        // Exactly `max`: the header alone is accepted, the frame comes once the body is in.
        let body_len = (0..max).find(|&b| header(b as u64).len() + b == max).unwrap();
        let h = header(body_len as u64);
        assert_eq!(h.len() + body_len, max);
        decoder.feed(&h);
        assert_eq!(decoder.next_frame(), Ok(None));
        decoder.feed(&vec![0u8; body_len]);
        let frame = decoder.next_frame().unwrap().unwrap();
        assert_eq!(frame.body.len(), body_len);
        assert_eq!(decoder.finish(), Ok(()));

        // `max + 1`: refused from the header alone, before any byte of the body.
        let h = header(body_len as u64 + 1);
        decoder.feed(&h);
        assert_eq!(decoder.next_frame(), Err(FrameError::TooLarge { size: max as u64 + 1, max }));
        // The decoder stays failed: the connection must be closed.
        assert_eq!(decoder.feed(&[0]), 0);
        assert_eq!(decoder.error(), Some(FrameError::TooLarge { size: max as u64 + 1, max }));
        assert!(decoder.next_frame().is_err());
        decoder.reset();
        assert_eq!(decoder.next_frame(), Ok(None));

        assert!(parse_header(&header(body_len as u64), max).unwrap().is_some());
        assert!(matches!(parse_header(&header(body_len as u64 + 1), max), Err(FrameError::TooLarge { .. })));
    }

    // By default the limit is the buffer's size.
    let mut decoder = FrameDecoder::new([0u8; 32]);
    decoder.feed(&header(30));
    assert_eq!(decoder.next_frame(), Ok(None));
    let mut decoder = FrameDecoder::new([0u8; 32]);
    decoder.feed(&header(31));
    assert_eq!(decoder.next_frame(), Err(FrameError::TooLarge { size: 33, max: 32 }));
    // A limit above the buffer is cut to the buffer.
    assert_eq!(FrameDecoder::new([0u8; 32]).with_max_frame_size(1000).max_frame_size(), 32);
}

#[test]
fn hostile_frame_sizes() {
    // A 4 GiB - 1 body announced by a complete header: refused at once.
    let mut decoder = FrameDecoder::new([0u8; 64]);
    decoder.feed(&[0x06, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(decoder.next_frame(), Err(FrameError::TooLarge { size: 6 + u64::from(u32::MAX), max: 64 }));
    // 4 GiB does not fit the u32 size at all.
    assert_eq!(parse_header(&[0x06, 0x80, 0x80, 0x80, 0x80, 0x10], usize::MAX), Err(FrameError::BadVarint));
    assert_eq!(
        parse_frame(&[0x06, 0xff, 0xff, 0xff, 0xff, 0x0f], 1 << 20).map(|_| ()),
        Err(FrameError::TooLarge { size: 6 + u64::from(u32::MAX), max: 1 << 20 })
    );
}

#[test]
fn hostile_pson_lengths() {
    let cases: &[(&[u8], Error)] = &[
        // String, bytes, map and array claiming more than the input holds.
        (&[0x8a, b'a', b'b', b'c'], Error::LengthExceedsInput),
        (&[0xa5, 0x01], Error::LengthExceedsInput),
        (&[0xc3, 0x81, b'a', 0x01], Error::LengthExceedsInput),
        (&[0xe5, 0x01], Error::LengthExceedsInput),
        // ... with nothing at all after the tag.
        (&[0x85], Error::Truncated),
        (&[0xe1], Error::Truncated),
        // 4 GiB (2^32) lengths and counts.
        (&[0x9f, 0x80, 0x80, 0x80, 0x80, 0x10, b'a'], Error::LengthExceedsInput),
        (&[0xbf, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00], Error::LengthExceedsInput),
        (&[0xdf, 0x80, 0x80, 0x80, 0x80, 0x10, 0x80, 0x00], Error::LengthExceedsInput),
        (&[0xff, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00], Error::LengthExceedsInput),
        // u64::MAX counts (the pair count times 2 overflows).
        (&[0xdf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00], Error::LengthExceedsInput),
        (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00], Error::LengthExceedsInput),
        // A float with too few bytes.
        (&[0x41, 0, 0, 0, 0], Error::LengthExceedsInput),
        // An inner element claiming too much.
        (&[0xe2, 0x01, 0x9f, 0xff, 0xff, 0xff, 0xff, 0x0f, b'x'], Error::LengthExceedsInput),
    ];
    for (bytes, error) in cases {
        assert_eq!(PsonRef::decode(bytes), Err(*error), "{bytes:02x?}");
        assert_eq!(Value::decode(bytes), Err(*error), "{bytes:02x?}");
        // In a frame the error is typed too, and the stream id is kept for the ERROR reply.
        let (t, body) = decode_frame(&run_frame_with_payload(bytes));
        let err = RawFrame { msg_type: t, body: &body }.message().unwrap_err();
        assert!(matches!(err.kind, MessageErrorKind::Pson(_)), "{bytes:02x?}: {err:?}");
        assert_eq!(err.stream_id, 7);
    }
}

#[test]
fn other_pson_errors() {
    // Negative magnitude above 2^63.
    let mut over = vec![0x3f];
    over.extend_from_slice(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    assert_eq!(Value::decode(&over), Err(Error::IntegerOverflow));
    assert_eq!(Value::decode(&[0x42]), Err(Error::InvalidTag(0x42)));
    assert_eq!(Value::decode(&[0x63]), Err(Error::InvalidTag(0x63)));
    assert_eq!(Value::decode(&[0xc1, 0x01, 0x01]), Err(Error::NonStringKey));
    assert_eq!(Value::decode(&[0x81, 0xff]), Err(Error::InvalidUtf8));
    assert_eq!(Value::decode(&[0x01, 0x01]), Err(Error::TrailingBytes));
    assert_eq!(Value::decode(&[]), Err(Error::Truncated));
}

#[test]
fn overlong_varints() {
    // PSON tag varints: 11 bytes, or a 10th byte carrying more than the 64th bit.
    let mut eleven = vec![0x1f];
    eleven.extend_from_slice(&[0x80; 10]);
    eleven.push(0x01);
    assert_eq!(PsonRef::decode(&eleven), Err(Error::VarintOverflow));
    let mut big = vec![0x1f];
    big.extend_from_slice(&[0xff; 9]);
    big.push(0x02);
    assert_eq!(PsonRef::decode(&big), Err(Error::VarintOverflow));
    assert_eq!(Value::decode(&big), Err(Error::VarintOverflow));
    // The largest 10-byte varint is fine.
    let mut max = vec![0x1f];
    max.extend_from_slice(&[0xff; 9]);
    max.push(0x01);
    assert_eq!(Value::decode(&max), Ok(Value::Uint(u64::MAX)));
    // A varint cut short.
    assert_eq!(PsonRef::decode(&[0x1f, 0x80]), Err(Error::Truncated));

    // Frame header: type or size longer than 5 bytes / above u32.
    for bad in [&[0x86, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00][..], &[0x06, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]] {
        let mut decoder = FrameDecoder::new([0u8; 32]);
        decoder.feed(bad);
        assert_eq!(decoder.next_frame(), Err(FrameError::BadVarint), "{bad:02x?}");
    }
    assert_eq!(parse_header(&[0xff, 0xff, 0xff, 0xff, 0x1f, 0x00], 64), Err(FrameError::BadVarint));

    // Field keys and varint values inside a body.
    let bad_bodies: &[&[u8]] = &[
        &[0x08, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        &[0x08, 0x07, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        &[0x08, 0x07, 0x10, 0x80],
        &[0x08, 0x07, 0x90],
    ];
    for body in bad_bodies {
        let err = RawFrame { msg_type: 6, body }.message().unwrap_err();
        assert_eq!(err.kind, MessageErrorKind::BadVarint, "{body:02x?}");
        assert_eq!(err.stream_id, 7);
    }
}

#[test]
fn legacy_and_reserved_wire_types() {
    // F3 with wire type 1 (legacy PSON), after F1 = 7.
    let err = RawFrame { msg_type: 6, body: &[0x08, 0x07, 0x19, 0x61] }.message().unwrap_err();
    assert_eq!(err.kind, MessageErrorKind::LegacyPson);
    assert_eq!((err.msg_type, err.stream_id), (6, 7));
    // And through the frame decoder.
    let (t, body) = decode_frame(&[0x06, 0x04, 0x08, 0x07, 0x19, 0x61]);
    assert_eq!(RawFrame { msg_type: t, body: &body }.message().unwrap_err().kind, MessageErrorKind::LegacyPson);

    for wire in 3u8..=7 {
        let body = [0x08, 0x07, (3 << 3) | wire, 0x61];
        let err = RawFrame { msg_type: 6, body: &body }.message().unwrap_err();
        assert_eq!(err.kind, MessageErrorKind::ReservedWireType(wire));
        assert_eq!(err.stream_id, 7);
    }
}

#[test]
fn unknown_fields_are_skipped() {
    // F1=7, field 5 varint 9, F3=true, field 6 PSON "x", field 100 varint 1, F4="led".
    let body = [0x08, 0x07, 0x28, 0x09, 0x1a, 0x61, 0x32, 0x81, b'x', 0xa0, 0x06, 0x01, 0x22, 0x83, b'l', b'e', b'd'];
    let m = RawFrame { msg_type: 6, body: &body }.message().unwrap();
    assert_eq!(m.kind, MessageType::Run);
    assert_eq!(m.stream_id, 7);
    assert_eq!(m.parameters, None);
    assert_eq!(m.payload, Some(FieldValue::Pson(PsonRef::Bool(true))));
    assert_eq!(m.resource.unwrap().as_str(), Some("led"));
}

#[test]
fn repeated_field_last_wins() {
    // F1=7, F3=1, F3="two", F1=9 (fields in any order).
    let body = [0x08, 0x07, 0x1a, 0x01, 0x1a, 0x83, b't', b'w', b'o', 0x08, 0x09];
    let m = RawFrame { msg_type: 10, body: &body }.message().unwrap();
    assert_eq!(m.stream_id, 9);
    assert_eq!(m.payload.unwrap().as_str(), Some("two"));
    // Varint then PSON for the same field: the PSON one wins.
    let m = RawFrame { msg_type: 2, body: &[0x10, 0x05, 0x12, 0x21] }.message().unwrap();
    assert_eq!(m.parameters, Some(FieldValue::Pson(PsonRef::Int(-1))));
}

#[test]
fn unknown_message_types() {
    for t in [0u32, 11, 127, 128, u32::MAX] {
        let err = RawFrame { msg_type: t, body: &[0x08, 0x07] }.message().unwrap_err();
        assert_eq!(err.kind, MessageErrorKind::UnknownType(t));
        assert_eq!(err.msg_type, t);
    }
    // The frame itself is fine: the decoder returns it and goes on.
    let mut decoder = FrameDecoder::new([0u8; 32]);
    decoder.feed(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x05, 0x00]);
    let frame = decoder.next_frame().unwrap().unwrap();
    assert_eq!(frame.message().unwrap_err().kind, MessageErrorKind::UnknownType(u32::MAX));
    let frame = decoder.next_frame().unwrap().unwrap();
    assert_eq!(frame.message().unwrap().kind, MessageType::KeepAlive);
}

#[test]
fn stream_id_range() {
    let ok = |body: &[u8]| RawFrame { msg_type: 1, body }.message().map(|m| m.stream_id);
    assert_eq!(ok(&[0x08, 0xff, 0xff, 0x03]), Ok(65535));
    assert_eq!(ok(&[0x08, 0x80, 0x80, 0x04]).unwrap_err().kind, MessageErrorKind::BadStreamId);
    assert_eq!(ok(&[0x08, 0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err().kind, MessageErrorKind::BadStreamId);
    // Sent as PSON: an unsigned integer in range is accepted, anything else refused.
    assert_eq!(ok(&[0x0a, 0x1f, 0xff, 0xff, 0x03]), Ok(65535));
    assert_eq!(ok(&[0x0a, 0x1f, 0x80, 0x80, 0x04]).unwrap_err().kind, MessageErrorKind::BadStreamId);
    assert_eq!(ok(&[0x0a, 0x21]).unwrap_err().kind, MessageErrorKind::BadStreamId);
    assert_eq!(ok(&[0x0a, 0x81, b'1']).unwrap_err().kind, MessageErrorKind::BadStreamId);
    // The error keeps the last good stream id.
    let err = ok(&[0x08, 0x07, 0x08, 0x80, 0x80, 0x04]).unwrap_err();
    assert_eq!((err.kind, err.stream_id), (MessageErrorKind::BadStreamId, 7));
}

#[test]
fn truncated_at_close() {
    let frame = [0x01, 0x03, 0x08, 0xd2, 0x09];
    for cut in 1..frame.len() {
        let mut decoder = FrameDecoder::new([0u8; 16]);
        decoder.feed(&frame[..cut]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::TruncatedAtClose { buffered: cut }));
    }
    // A complete frame followed by part of another.
    let mut decoder = FrameDecoder::new([0u8; 16]);
    decoder.feed(&[0x05, 0x00, 0x06]);
    assert!(decoder.next_frame().unwrap().is_some());
    assert_eq!(decoder.next_frame(), Ok(None));
    assert_eq!(decoder.finish(), Err(FrameError::TruncatedAtClose { buffered: 1 }));
    // Nothing pending: a clean close.
    let mut decoder = FrameDecoder::new([0u8; 16]);
    decoder.feed(&[0x05, 0x00]);
    assert!(decoder.next_frame().unwrap().is_some());
    assert_eq!(decoder.finish(), Ok(()));
}

#[test]
fn encoder_refuses_short_buffers() {
    let value = thinger_core::pson!({"temperature": 23.5, "tags": ["a", "b"], "raw": (pson::Bytes(&[1, 2, 3]))});
    let len = pson::encoded_len(&value);
    for cut in 0..len {
        let mut buf = vec![0u8; cut];
        assert_eq!(pson::encode_to_slice(&value, &mut buf), Err(Error::BufferFull));
    }
    let mut buf = vec![0u8; len];
    assert_eq!(pson::encode_to_slice(&value, &mut buf), Ok(len));
}

/// A limit far above the ceiling is capped: 10,000 levels are refused with a typed error
/// instead of overflowing the stack (run on a 2 MiB thread, like a test's).
#[test]
fn depth_limits_above_the_ceiling_are_capped() {
    use thinger_core::pson::MAX_DEPTH_CEILING;
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let deep = nested_arrays(10_000);
            let lax = DecodeOptions::new().max_depth(100_000);
            assert_eq!(lax.depth_limit(), MAX_DEPTH_CEILING);
            assert_eq!(PsonRef::decode_with(&deep, &lax), Err(Error::DepthLimitExceeded));
            let maps = nested_maps(10_000);
            let mut de = pson::Deserializer::with_options(&maps, &lax);
            let decoded: Result<serde_json::Value, _> = serde::Deserialize::deserialize(&mut de);
            assert!(decoded.is_err());
            // Exactly at the ceiling is still accepted.
            assert!(PsonRef::decode_with(&nested_arrays(MAX_DEPTH_CEILING), &lax).is_ok());
        })
        .unwrap();
    handle.join().unwrap();
}
