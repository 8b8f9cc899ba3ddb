//! IOTMP frame decoding of an arbitrary byte stream in arbitrary chunks.
//!
//! Input layout: byte 0 picks the frame limit (8..=71 bytes, in a 72-byte buffer), byte 1
//! seeds the chunk sizes (1..=16 bytes each), the rest is the stream. Every complete frame's
//! body is parsed as a message and its PSON fields are walked. Checks:
//! * the streaming [`FrameDecoder`] returns exactly the frames (and the same error) that
//!   [`parse_frame`] finds in the whole stream at once;
//! * no frame exceeds the limit, and the decoder never stalls (it always takes bytes or
//!   returns a frame or an error);
//! * after an error it stays failed and takes no more bytes;
//! * at the end, `finish` reports exactly the bytes of an incomplete frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_core::iotmp::{FrameDecoder, FrameError, RawFrame, parse_frame};
use thinger_core::pson::PsonRef;

const BUFFER: usize = 72;

fn walk(v: PsonRef<'_>) -> usize {
    match v {
        PsonRef::Map(m) => 1 + m.iter().map(|(k, v)| k.len() + walk(v)).sum::<usize>(),
        PsonRef::Array(a) => 1 + a.iter().map(walk).sum::<usize>(),
        _ => 1,
    }
}

fn use_frame(frame: &RawFrame<'_>) {
    match frame.message() {
        Ok(message) => {
            for field in [message.parameters, message.payload, message.resource].into_iter().flatten() {
                let _ = walk(field.as_pson());
                let _ = (field.as_u64(), field.as_str());
            }
        }
        Err(e) => {
            assert_eq!(e.msg_type, frame.msg_type);
        }
    }
}

/// What the whole-buffer parser finds: the frames, then how the stream ends.
fn reference(stream: &[u8], max_frame: usize) -> (Vec<(u32, Vec<u8>)>, Result<usize, FrameError>) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        match parse_frame(rest, max_frame) {
            Ok(Some((frame, used))) => {
                assert!(used <= max_frame && used > 0);
                frames.push((frame.msg_type, frame.body.to_vec()));
                rest = &rest[used..];
            }
            // Bytes of an incomplete frame left over.
            Ok(None) => return (frames, Ok(rest.len())),
            Err(e) => return (frames, Err(e)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (config, stream) = data.split_at(data.len().min(2));
    let max_frame = 8 + usize::from(config.first().copied().unwrap_or(0) % 64);
    let mut seed = u32::from(config.get(1).copied().unwrap_or(0)) | 1;
    let mut next_chunk = move || {
        // xorshift: chunk sizes 1..=16 that vary along the stream.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        1 + (seed % 16) as usize
    };

    let mut decoder = FrameDecoder::new([0u8; BUFFER]).with_max_frame_size(max_frame);
    assert_eq!(decoder.max_frame_size(), max_frame);
    let mut got: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut error = None;
    let mut input = stream;

    'stream: while !input.is_empty() {
        let size = next_chunk().min(input.len());
        let mut chunk = &input[..size];
        input = &input[size..];
        while !chunk.is_empty() {
            let taken = decoder.feed(chunk);
            chunk = &chunk[taken..];
            let mut frames = 0;
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        assert!(frame.body.len() < max_frame);
                        use_frame(&frame);
                        got.push((frame.msg_type, frame.body.to_vec()));
                        frames += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(e);
                        assert_eq!(decoder.error(), Some(e));
                        assert_eq!(decoder.feed(&[0x05, 0x00]), 0, "a failed decoder takes no bytes");
                        assert_eq!(decoder.next_frame().err(), Some(e), "a failed decoder stays failed");
                        break 'stream;
                    }
                }
            }
            assert!(taken > 0 || frames > 0, "decoder stalled with {} bytes buffered", decoder.buffered());
        }
    }

    let (expected, end) = reference(stream, max_frame);
    assert_eq!(got, expected, "streamed frames differ from whole-buffer parsing");
    match (end, error) {
        (Err(e), Some(got_e)) => assert_eq!(e, got_e),
        (Ok(left), None) => {
            assert_eq!(decoder.buffered(), left);
            match decoder.finish() {
                Ok(()) => assert_eq!(left, 0),
                Err(FrameError::TruncatedAtClose { buffered }) => assert_eq!(buffered, left),
                Err(other) => panic!("unexpected finish error {other:?}"),
            }
        }
        (end, error) => panic!("whole-buffer parse ended with {end:?}, decoder with {error:?}"),
    }

    decoder.reset();
    assert_eq!(decoder.buffered(), 0);
    assert!(decoder.error().is_none());
});
