//! Property tests of IOTMP framing: arbitrary frames survive encode → chunked decode, and
//! arbitrary bytes never make the decoder panic.

mod common;

use common::{after_round_trip, any_value, same_bits};
use proptest::prelude::*;
use thinger_core::iotmp::{
    FieldId, FieldValue, FrameDecoder, FrameWriter, Message, MessageType, OutField, OutgoingMessage, RawFrame,
};
use thinger_core::pson::Value;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, ..ProptestConfig::default() }
}

/// One optional field of a frame.
#[derive(Debug, Clone)]
enum Field {
    Varint(u64),
    Pson(Value),
}

#[derive(Debug, Clone)]
struct Frame {
    kind: MessageType,
    stream_id: u16,
    parameters: Option<Field>,
    payload: Option<Field>,
    resource: Option<Field>,
}

impl Frame {
    fn fields(&self) -> [(FieldId, Option<&Field>); 3] {
        [
            (FieldId::Parameters, self.parameters.as_ref()),
            (FieldId::Payload, self.payload.as_ref()),
            (FieldId::Resource, self.resource.as_ref()),
        ]
    }

    fn outgoing(&self) -> OutgoingMessage<'_> {
        fn out(field: &Field) -> OutField<'_> {
            match field {
                Field::Varint(v) => OutField::Varint(*v),
                Field::Pson(value) => OutField::Pson(value),
            }
        }
        OutgoingMessage {
            kind: self.kind,
            stream_id: self.stream_id,
            parameters: self.parameters.as_ref().map(out),
            payload: self.payload.as_ref().map(out),
            resource: self.resource.as_ref().map(out),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let msg = self.outgoing();
        let mut bytes = vec![0u8; msg.encoded_len()];
        assert_eq!(msg.encode(&mut bytes), Ok(bytes.len()));
        bytes
    }

    /// The same frame through `FrameWriter`.
    fn encode_with_writer(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.outgoing().encoded_len() + 6];
        let mut w = FrameWriter::new(&mut buf, self.kind).unwrap();
        if self.stream_id != 0 {
            w.varint(FieldId::StreamId, u64::from(self.stream_id)).unwrap();
        }
        for (id, field) in self.fields() {
            match field {
                None => {}
                Some(Field::Varint(v)) => {
                    w.varint(id, *v).unwrap();
                }
                Some(Field::Pson(value)) => {
                    w.pson(id, |enc| enc.value(value)).unwrap();
                }
            }
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    fn check(&self, message: &Message<'_>) -> Result<(), TestCaseError> {
        prop_assert_eq!(message.kind, self.kind);
        prop_assert_eq!(message.stream_id, self.stream_id);
        let got = [message.parameters, message.payload, message.resource];
        for ((id, want), got) in self.fields().into_iter().zip(got) {
            match (want, got) {
                (None, None) => {}
                (Some(Field::Varint(v)), Some(FieldValue::Varint(g))) => prop_assert_eq!(*v, g, "{:?}", id),
                (Some(Field::Pson(v)), Some(FieldValue::Pson(g))) => {
                    let g = Value::from_ref(g);
                    prop_assert!(same_bits(&g, &after_round_trip(v)), "{:?}: {:?} vs {:?}", id, g, v);
                }
                (want, got) => prop_assert!(false, "{:?}: sent {:?}, got {:?}", id, want, got),
            }
        }
        Ok(())
    }
}

fn field() -> impl Strategy<Value = Option<Field>> {
    prop_oneof![
        Just(None),
        any::<u64>().prop_map(|v| Some(Field::Varint(v))),
        (0u64..300).prop_map(|v| Some(Field::Varint(v))),
        any_value().prop_map(|v| Some(Field::Pson(v))),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (1u32..=10, prop_oneof![Just(0u16), any::<u16>()], field(), field(), field()).prop_map(
        |(kind, stream_id, parameters, payload, resource)| Frame {
            kind: MessageType::from_u32(kind).unwrap(),
            stream_id,
            parameters,
            payload,
            resource,
        },
    )
}

/// Feeds `stream` to `decoder` in chunks of the given sizes (cycled), collecting every frame
/// as `(type, body)`; stops at the first framing error and returns it.
fn decode_chunked<B: AsRef<[u8]> + AsMut<[u8]>>(
    decoder: &mut FrameDecoder<B>,
    stream: &[u8],
    chunks: &[usize],
) -> (Vec<(u32, Vec<u8>)>, Option<thinger_core::iotmp::FrameError>) {
    let mut frames = Vec::new();
    let mut input = stream;
    let mut sizes = chunks.iter().cycle();
    while !input.is_empty() {
        let size = (*sizes.next().unwrap()).clamp(1, input.len());
        let mut chunk = &input[..size];
        input = &input[size..];
        while !chunk.is_empty() {
            let taken = decoder.feed(chunk);
            chunk = &chunk[taken..];
            let mut produced = false;
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        frames.push((frame.msg_type, frame.body.to_vec()));
                        produced = true;
                    }
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
            if taken == 0 && !produced {
                // Full buffer and no complete frame: cannot happen when the buffer holds
                // the largest frame, which the callers guarantee.
                panic!("decoder stuck with {} bytes buffered", decoder.buffered());
            }
        }
    }
    (frames, None)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn frames_survive_any_chunking(
        frames in proptest::collection::vec(frame(), 1..5),
        chunks in proptest::collection::vec(1usize..64, 1..16),
    ) {
        let encoded: Vec<Vec<u8>> = frames.iter().map(Frame::encode).collect();
        for (frame, bytes) in frames.iter().zip(&encoded) {
            prop_assert_eq!(&frame.encode_with_writer(), bytes);
        }
        let stream: Vec<u8> = encoded.concat();
        let largest = encoded.iter().map(Vec::len).max().unwrap();
        let mut decoder = FrameDecoder::new(vec![0u8; largest]);
        let (got, error) = decode_chunked(&mut decoder, &stream, &chunks);
        prop_assert_eq!(error, None);
        prop_assert_eq!(got.len(), frames.len());
        for (frame, (msg_type, body)) in frames.iter().zip(&got) {
            prop_assert_eq!(*msg_type, frame.kind as u32);
            let message = RawFrame { msg_type: *msg_type, body }.message().unwrap();
            frame.check(&message)?;
        }
        prop_assert_eq!(decoder.buffered(), 0);
        prop_assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        chunks in proptest::collection::vec(1usize..32, 1..8),
        capacity in 10usize..128,
    ) {
        fuzz_decoder(&bytes, &chunks, capacity);
    }

    #[test]
    fn corrupted_frames_never_panic(
        frames in proptest::collection::vec(frame(), 1..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        chunks in proptest::collection::vec(1usize..32, 1..8),
    ) {
        let mut stream: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for (at, byte) in flips {
            let i = at.index(stream.len());
            stream[i] ^= byte | 1;
        }
        fuzz_decoder(&stream, &chunks, 256);
    }
}

/// Drives a decoder over hostile input: every frame it yields is parsed (and its PSON fields
/// converted to values); after a framing error it accepts nothing more.
fn fuzz_decoder(bytes: &[u8], chunks: &[usize], capacity: usize) {
    let mut decoder = FrameDecoder::new(vec![0u8; capacity]);
    let mut input = bytes;
    let mut sizes = chunks.iter().cycle();
    'feed: while !input.is_empty() {
        let size = (*sizes.next().unwrap()).min(input.len());
        let taken = decoder.feed(&input[..size]);
        input = &input[taken..];
        let mut produced = false;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    produced = true;
                    assert!(frame.body.len() < capacity);
                    if let Ok(message) = frame.message() {
                        for field in [message.parameters, message.payload, message.resource].into_iter().flatten() {
                            let _ = Value::from_ref(field.as_pson());
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    assert_eq!(decoder.feed(&[0]), 0);
                    assert!(decoder.next_frame().is_err());
                    break 'feed;
                }
            }
        }
        if taken == 0 && !produced {
            break;
        }
    }
    let _ = decoder.finish();
}
