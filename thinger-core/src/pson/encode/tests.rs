use super::*;

/// A value whose code maps every error to `Io` (as user code may), or ignores it.
struct Labelled<'a> {
    labels: [&'a str; 2],
    big: u64,
    ignore_errors: bool,
}

impl EncodePson for Labelled<'_> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        let result = enc
            .array_header(3)
            .and_then(|()| enc.str(self.labels[0]))
            .and_then(|()| enc.str(self.labels[1]))
            .and_then(|()| enc.u64(self.big));
        match result {
            Err(_) if self.ignore_errors => Ok(()),
            other => other.map_err(|_| Error::Io),
        }
    }
}

/// The roomy copy's refusals (a string over 127 bytes; an integer of 2^21 or more with
/// less than 11 bytes left) are retried whatever the value's code makes of them: a
/// mapped error is not returned and an ignored one does not leave a tag without its
/// body. Only a real lack of room reaches the value's code.
#[test]
fn a_refused_write_is_retried_whatever_the_value_returns() {
    let text = "x".repeat(200);
    for ignore_errors in [false, true] {
        for big in [7, 1 << 21, u64::MAX] {
            // The second label's length moves the integer across the last bytes of a
            // `ROOMY` buffer; 200 is refused as a string.
            for second in (100..=127).chain([200]) {
                let value = Labelled { labels: [&text[..120], &text[..second]], big, ignore_errors };
                let len = encoded_len(&value);
                let mut reference = std::vec![0u8; len];
                let mut enc = Encoder::new(SliceSink::new(&mut reference));
                value.encode_pson(&mut enc).unwrap();
                for room in [ROOMY, ROOMY + 1, ROOMY + 300] {
                    let mut buf = std::vec![0u8; room];
                    let result = encode_to_slice(&value, &mut buf[..]);
                    let case = std::format!("room {room}, second {second}, big {big}, ignore {ignore_errors}");
                    if len <= room {
                        assert_eq!(result, Ok(len), "{case}");
                        assert_eq!(&buf[..len], &reference[..], "{case}");
                    } else if !ignore_errors {
                        assert_eq!(result, Err(Error::Io), "{case}");
                    }
                }
            }
        }
    }
}

#[test]
fn short_strings_of_every_length_copy_exactly() {
    let text = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";
    for len in 0..text.len() {
        let s = &text[..len];
        // Exactly enough room, and room to spare (bytes past the string stay as they were).
        for room in [len + 2, len + 9] {
            let mut buf = [0xEEu8; 64];
            let n = encode_to_slice(s, &mut buf[..room]).unwrap();
            let header = if len < 31 { 1 } else { 2 };
            assert_eq!(n, header + len);
            assert_eq!(&buf[header..n], s.as_bytes(), "length {len}");
            assert!(buf[n..].iter().all(|&b| b == 0xEE), "length {len}");
        }
        let mut small = [0u8; 64];
        assert_eq!(encode_to_slice(s, &mut small[..len]), Err(Error::BufferFull));
    }
}

#[test]
fn strings_fail_at_every_room_short_of_their_length() {
    let text = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";
    for len in 0..text.len() {
        let s = &text[..len];
        let need = if len < 31 { 1 } else { 2 } + len;
        // After a one-byte value, so the room check starts at a non-zero position.
        for room in 0..need + 1 {
            let mut buf = [0xEEu8; 64];
            let mut enc = Encoder::new(SliceSink::new(&mut buf[..room + 1]));
            enc.null().unwrap();
            let result = enc.str(s);
            let written = enc.into_sink().written();
            if room < need {
                assert_eq!(result, Err(Error::BufferFull), "length {len}, room {room}");
                // A short string's tag and body are checked together: nothing written.
                // (A long one's tag goes first, as it always has.)
                if len < 31 {
                    assert_eq!(written, 1, "length {len}, room {room}");
                }
            } else {
                assert_eq!(result, Ok(()), "length {len}, room {room}");
                assert_eq!(written, 1 + need, "length {len}, room {room}");
                assert_eq!(&buf[1 + need - len..1 + need], s.as_bytes());
            }
        }
    }
}

fn enc<T: EncodePson + ?Sized>(v: &T) -> std::vec::Vec<u8> {
    let mut buf = [0u8; 64];
    let n = encode_to_slice(v, &mut buf).unwrap();
    assert_eq!(n, encoded_len(v));
    buf[..n].to_vec()
}

#[test]
fn float_rules() {
    assert_eq!(enc(&3.0f64), [0x03]);
    assert_eq!(enc(&-7.0f64), [0x27]);
    assert_eq!(enc(&23.5f64), [0x40, 0, 0, 0xbc, 0x41]);
    assert_eq!(enc(&0.1f64)[0], 0x41);
    assert_eq!(enc(&-0.0f64), [0x00]);
    assert_eq!(enc(&f64::INFINITY), [0x40, 0, 0, 0x80, 0x7f]);
    assert_eq!(enc(&f64::NAN).len(), 9);
    assert_eq!(enc(&f32::NAN).len(), 5);
    // 2^63 is outside i64 range: stays a float.
    assert_eq!(enc(&9_223_372_036_854_775_808.0f64), [0x40, 0, 0, 0, 0x5f]);
    assert_eq!(
        enc(&-9_223_372_036_854_775_808.0f64),
        [0x3f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]
    );
}

#[test]
fn buffer_full_everywhere() {
    let value = Map(&[("temperature", 23.5f64), ("humidity", 60.0)]);
    let full = enc(&value);
    for cut in 0..full.len() {
        let mut buf = std::vec![0u8; cut];
        assert_eq!(encode_to_slice(&value, &mut buf), Err(Error::BufferFull));
    }
}

/// Values of about `ROOMY` bytes and more, so both copies of `encode_to_slice` (roomy
/// buffer or not) run out of room at every byte, and fill a buffer exactly.
#[test]
fn roomy_and_tight_buffers_give_the_same_bytes_and_errors() {
    let keys: std::vec::Vec<std::string::String> = (0..40).map(|i| std::format!("sensor_{i}")).collect();
    let pairs: std::vec::Vec<(&str, u64)> =
        keys.iter().enumerate().map(|(i, k)| (k.as_str(), i as u64 * 37_000)).collect();
    let long = "x".repeat(300);
    let floats: std::vec::Vec<f64> = (0..60).map(|i| f64::from(i) * 0.7).collect();
    let big: std::vec::Vec<u64> = (0..40).map(|i| 1u64 << (i + 20)).collect();
    check_every_room(&Map(&pairs));
    check_every_room(long.as_str());
    check_every_room(&floats[..]);
    check_every_room(&big[..]);
    check_every_room(&Map(&[("temperature", 23.5f64), ("humidity", 60.0), ("pressure", 1013.0)]));
    // Every length the roomy sink copies in pieces and past it (it refuses 128 bytes
    // and more), and varints around four bytes, at every room.
    for len in 0..140 {
        check_every_room("z".repeat(len).as_str());
        check_every_room(&Bytes(&long.as_bytes()[..len]));
    }
    for v in [(1u64 << 21) - 1, 1 << 21, 1 << 28, 1_733_170_000_000, 1 << 63, u64::MAX] {
        check_every_room(&v);
        check_every_room(&Map(&[("k", v)]));
    }
}

fn check_every_room<T: EncodePson + ?Sized>(value: &T) {
    let len = encoded_len(value);
    let mut reference = std::vec![0u8; len];
    // Through the encoder directly: no roomy copy.
    let mut enc = Encoder::new(SliceSink::new(&mut reference));
    value.encode_pson(&mut enc).unwrap();
    assert_eq!(enc.into_sink().written(), len);
    check_rooms(&reference, |buf| encode_to_slice(value, buf));
}

/// `encode` into every room from 0 to past `ROOMY`: `BufferFull` below the value's size,
/// else the `reference` bytes and nothing written past them.
pub(crate) fn check_rooms(reference: &[u8], encode: impl Fn(&mut [u8]) -> Result<usize, Error>) {
    let len = reference.len();
    for room in 0..len + ROOMY + 9 {
        let mut buf = std::vec![0xEEu8; room];
        let result = encode(&mut buf);
        if room < len {
            assert_eq!(result, Err(Error::BufferFull), "room {room} of {len}");
        } else {
            assert_eq!(result, Ok(len), "room {room}");
            assert_eq!(&buf[..len], reference, "room {room}");
            assert!(buf[len..].iter().all(|&b| b == 0xEE), "room {room}");
        }
    }
}

#[test]
fn copy_down_is_copy_within() {
    for len in 0..8 {
        for from in 0..=len {
            for to in from..=len {
                for dest in 0..=from {
                    let mut ours: std::vec::Vec<u8> = (0..len as u8).collect();
                    let mut theirs = ours.clone();
                    copy_down(&mut ours, from, to, dest);
                    theirs.copy_within(from..to, dest);
                    assert_eq!(ours, theirs, "{len} {from}..{to} -> {dest}");
                }
            }
        }
    }
    let mut short = [1u8, 2, 3];
    copy_down(&mut short, 1, 9, 0); // out of range: copies what exists
    assert_eq!(short, [2, 3, 3]);
}

/// The microcontrollers' `tag` against the hosts': the same bytes, or `BufferFull`, for
/// every wire type, values at every varint length edge, at every room.
#[test]
fn compact_tags_agree_with_the_hosts() {
    let mut values = std::vec![0u64, 1, 30, 31, 32, u64::MAX];
    for bits in 1..64 {
        values.extend([(1u64 << bits) - 1, 1 << bits, (1 << bits) + 1]);
    }
    for wire in [WireType::PositiveInt, WireType::NegativeInt, WireType::String, WireType::Map, WireType::Array] {
        for &value in &values {
            let mut want = [0u8; 12];
            let mut host = Encoder::new(SliceSink::new(&mut want));
            host.tag(wire, value).unwrap();
            let len = host.into_sink().written();
            for room in 0..=12 {
                let mut got = [0u8; 12];
                let mut compact = Encoder::new(SliceSink::new(&mut got[..room]));
                let result = compact.tag_compact(wire, value);
                if room < len {
                    assert_eq!(result, Err(Error::BufferFull), "{wire:?} {value} {room}");
                } else {
                    assert_eq!(result, Ok(()), "{wire:?} {value} {room}");
                    assert_eq!(compact.into_sink().written(), len, "{wire:?} {value} {room}");
                    assert_eq!(got[..len], want[..len], "{wire:?} {value} {room}");
                }
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn compact_tags_agree_on_random_values(value in proptest::prelude::any::<u64>(), room in 0usize..12) {
        let (mut want, mut got) = ([0u8; 12], [0u8; 12]);
        let mut host = Encoder::new(SliceSink::new(&mut want[..room]));
        let mut compact = Encoder::new(SliceSink::new(&mut got[..room]));
        let (a, b) = (host.tag(WireType::Array, value), compact.tag_compact(WireType::Array, value));
        proptest::prop_assert_eq!(a, b);
        if a.is_ok() {
            let n = host.into_sink().written();
            proptest::prop_assert_eq!(n, compact.into_sink().written());
            proptest::prop_assert_eq!(&got[..n], &want[..n]);
        }
    }
}
