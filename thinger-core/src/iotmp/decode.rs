use core::fmt;

use super::{Message, MessageError};
use crate::pson::DecodeOptions;
use crate::varint;

/// Longest possible frame header: a `u32` type varint and a `u32` size varint.
pub const MAX_HEADER_LEN: usize = 2 * varint::MAX_LEN_U32;

/// A framing error: the byte stream can no longer be trusted and the connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// The message type or size varint is malformed or longer than 32 bits.
    BadVarint,
    /// The header announces a frame larger than the limit; refused before its body is read.
    TooLarge {
        /// Frame size (header + body) the header announced.
        size: u64,
        /// The configured limit.
        max: usize,
    },
    /// The connection closed in the middle of a frame.
    TruncatedAtClose {
        /// Bytes of the incomplete frame that were received.
        buffered: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::BadVarint => f.write_str("malformed IOTMP frame header varint"),
            FrameError::TooLarge { size, max } => write!(f, "IOTMP frame of {size} bytes exceeds the limit of {max}"),
            FrameError::TruncatedAtClose { buffered } => {
                write!(f, "connection closed inside an IOTMP frame ({buffered} bytes buffered)")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Message type number (unknown numbers included).
    pub msg_type: u32,
    /// Body length.
    pub body_len: usize,
    /// Length of the header itself.
    pub header_len: usize,
}

impl Header {
    /// Header plus body.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.body_len
    }
}

/// Parses a frame header at the start of `input`: `Ok(None)` means more bytes are needed.
/// Frames larger than `max_frame` (header + body) are refused from the header alone.
///
/// ```
/// use thinger_core::iotmp::{parse_header, FrameError};
/// let h = parse_header(&[0x05, 0x00], 64).unwrap().unwrap();
/// assert_eq!((h.msg_type, h.body_len, h.header_len), (5, 0, 2));
/// assert_eq!(parse_header(&[0x06], 64), Ok(None));
/// assert!(matches!(parse_header(&[0x06, 0xff, 0x7f], 64), Err(FrameError::TooLarge { .. })));
/// ```
pub fn parse_header(input: &[u8], max_frame: usize) -> Result<Option<Header>, FrameError> {
    let Some((msg_type, type_len)) = varint::decode_u32(input).map_err(|_| FrameError::BadVarint)? else {
        return Ok(None);
    };
    let rest = input.get(type_len..).unwrap_or(&[]);
    let Some((size, size_len)) = varint::decode_u32(rest).map_err(|_| FrameError::BadVarint)? else {
        return Ok(None);
    };
    let header_len = type_len + size_len;
    let total = header_len as u64 + u64::from(size);
    if total > max_frame as u64 {
        return Err(FrameError::TooLarge { size: total, max: max_frame });
    }
    Ok(Some(Header { msg_type, body_len: size as usize, header_len }))
}

/// A complete frame: its type number and body, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RawFrame<'a> {
    /// Message type number (may be unknown).
    pub msg_type: u32,
    /// The body bytes.
    pub body: &'a [u8],
}

impl<'a> RawFrame<'a> {
    /// Parses the body with the default PSON limits.
    ///
    /// ```
    /// use thinger_core::iotmp::{RawFrame, MessageType};
    /// let m = RawFrame { msg_type: 5, body: &[] }.message().unwrap();
    /// assert_eq!(m.kind, MessageType::KeepAlive);
    /// ```
    pub fn message(&self) -> Result<Message<'a>, MessageError> {
        Message::parse(self.msg_type, self.body, &DecodeOptions::new())
    }
    /// Parses the body with the given PSON limits.
    ///
    /// ```
    /// use thinger_core::iotmp::RawFrame;
    /// use thinger_core::pson::DecodeOptions;
    /// let f = RawFrame { msg_type: 1, body: &[0x08, 0x01] };
    /// assert_eq!(f.message_with(&DecodeOptions::new().max_depth(4)).unwrap().stream_id, 1);
    /// ```
    pub fn message_with(&self, options: &DecodeOptions) -> Result<Message<'a>, MessageError> {
        Message::parse(self.msg_type, self.body, options)
    }
}

/// Parses one frame at the start of `input`, for callers that manage their own buffer.
///
/// Returns `Ok(None)` when more bytes are needed, or the frame and the number of bytes it
/// took.
///
/// ```
/// use thinger_core::iotmp::parse_frame;
/// let (frame, used) = parse_frame(&[0x05, 0x00, 0x05], 64).unwrap().unwrap();
/// assert_eq!((frame.msg_type, used), (5, 2));
/// assert_eq!(parse_frame(&[0x01, 0x03, 0x08], 64), Ok(None));
/// ```
pub fn parse_frame(input: &[u8], max_frame: usize) -> Result<Option<(RawFrame<'_>, usize)>, FrameError> {
    let Some(header) = parse_header(input, max_frame)? else {
        return Ok(None);
    };
    let end = header.frame_len();
    match input.get(header.header_len..end) {
        Some(body) => Ok(Some((RawFrame { msg_type: header.msg_type, body }, end))),
        None => Ok(None),
    }
}

/// What the start of a frame body says about its stream id (field 1), for a frame too large
/// to buffer whole: enough to answer it without reading the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StreamIdPeek {
    /// The stream id.
    Found(u16),
    /// The prefix ends before the stream id (or inside it).
    NeedMore,
    /// No stream id before the first field that cannot be skipped without the whole body
    /// (a PSON value), or a malformed field.
    Absent,
}

/// Looks for the stream id in `prefix`, the first bytes of a frame body, skipping varint
/// fields in front of it (field order on the wire is free).
///
/// ```
/// use thinger_core::iotmp::{peek_stream_id, StreamIdPeek};
/// assert_eq!(peek_stream_id(&[0x08, 0x96, 0x01, 0x1a]), StreamIdPeek::Found(150));
/// assert_eq!(peek_stream_id(&[0x08]), StreamIdPeek::NeedMore);
/// assert_eq!(peek_stream_id(&[0x1a, 0x61]), StreamIdPeek::Absent);
/// ```
pub fn peek_stream_id(prefix: &[u8]) -> StreamIdPeek {
    let mut at = 0;
    // Every early end through one exit: `true` when the prefix ends inside a varint.
    let need_more = loop {
        let key = match varint::decode_u32(prefix.get(at..).unwrap_or(&[])) {
            Ok(Some((key, n))) => {
                at += n;
                key
            }
            end => break end.is_ok(),
        };
        if key & 0x7 != 0 {
            break false;
        }
        let value = match varint::decode_u64(prefix.get(at..).unwrap_or(&[])) {
            Ok(Some((value, n))) => {
                at += n;
                value
            }
            end => break end.is_ok(),
        };
        if key >> 3 == 1 {
            return u16::try_from(value).map_or(StreamIdPeek::Absent, StreamIdPeek::Found);
        }
    };
    if need_more { StreamIdPeek::NeedMore } else { StreamIdPeek::Absent }
}

/// An incremental frame decoder over a caller-provided buffer.
///
/// Feed it bytes in any chunking with [`FrameDecoder::feed`] (one byte at a time works) and
/// take complete frames with [`FrameDecoder::next_frame`]. A frame larger than the limit (by
/// default the buffer's size) is refused as soon as its header is seen. After a
/// [`FrameError`] the decoder stays failed: the connection must be closed; unless
/// [`FrameDecoder::skip_oversized`] is on, in which case a frame too large is reported once
/// and its body (its length is known from the header) discarded as it arrives.
///
/// ```
/// use thinger_core::iotmp::FrameDecoder;
/// let mut dec = FrameDecoder::new([0u8; 32]);
/// // Two keep-alives and half of a third frame in one read.
/// assert_eq!(dec.feed(&[0x05, 0x00, 0x05, 0x00, 0x01]), 5);
/// assert_eq!(dec.next_frame().unwrap().unwrap().msg_type, 5);
/// assert_eq!(dec.next_frame().unwrap().unwrap().msg_type, 5);
/// assert!(dec.next_frame().unwrap().is_none()); // need more
/// assert_eq!(dec.buffered(), 1);
/// ```
#[derive(Debug)]
pub struct FrameDecoder<B> {
    buf: B,
    start: usize,
    end: usize,
    max_frame: usize,
    failed: Option<FrameError>,
    skip_oversized: bool,
    /// Bytes of an oversized frame still to discard.
    skipping: u64,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> FrameDecoder<B> {
    /// A decoder using `buf` as its receive buffer; the frame limit is the buffer's size.
    pub fn new(buf: B) -> Self {
        let max_frame = buf.as_ref().len();
        FrameDecoder { buf, start: 0, end: 0, max_frame, failed: None, skip_oversized: false, skipping: 0 }
    }

    /// Sets the largest accepted frame (header + body), at most the buffer's size.
    ///
    /// ```
    /// use thinger_core::iotmp::{FrameDecoder, FrameError};
    /// let mut dec = FrameDecoder::new([0u8; 64]).with_max_frame_size(8);
    /// dec.feed(&[0x06, 0x10]);
    /// assert_eq!(dec.next_frame().unwrap_err(), FrameError::TooLarge { size: 18, max: 8 });
    /// ```
    pub fn with_max_frame_size(mut self, max: usize) -> Self {
        self.max_frame = max.min(self.buf.as_ref().len());
        self
    }

    /// Skips frames larger than the limit instead of failing: [`FrameDecoder::next_frame`]
    /// reports each with [`FrameError::TooLarge`] once, then the decoder discards its body
    /// and goes on with the next frame.
    ///
    /// ```
    /// use thinger_core::iotmp::{FrameDecoder, FrameError};
    /// let mut dec = FrameDecoder::new([0u8; 8]).skip_oversized(true);
    /// // A RUN with a 16-byte body, then a keep-alive.
    /// assert_eq!(dec.feed(&[0x06, 0x10, 0x08, 0x01]), 4);
    /// assert_eq!(dec.next_frame().unwrap_err(), FrameError::TooLarge { size: 18, max: 8 });
    /// assert_eq!(dec.feed(&[0u8; 14]), 14); // the rest of the body, discarded
    /// assert_eq!(dec.feed(&[0x05, 0x00]), 2);
    /// assert_eq!(dec.next_frame().unwrap().unwrap().msg_type, 5);
    /// ```
    pub fn skip_oversized(mut self, skip: bool) -> Self {
        self.skip_oversized = skip;
        self
    }

    /// The frame limit in force.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Whether a framing error happened.
    pub fn error(&self) -> Option<FrameError> {
        self.failed
    }

    /// Forgets everything buffered and any error (for a new connection).
    ///
    /// ```
    /// let mut dec = thinger_core::iotmp::FrameDecoder::new([0u8; 8]);
    /// dec.feed(&[0x05]);
    /// dec.reset();
    /// assert_eq!(dec.buffered(), 0);
    /// ```
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.failed = None;
        self.skipping = 0;
    }

    /// Copies as much of `input` as there is room for and returns how much it took. Call
    /// [`FrameDecoder::next_frame`] until it returns `Ok(None)`, then feed the rest. Returns
    /// 0 after a framing error.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        if self.skipping > 0 {
            let n = input.len().min(usize::try_from(self.skipping).unwrap_or(usize::MAX));
            self.skipping -= n as u64;
            return n;
        }
        let capacity = self.buf.as_ref().len();
        if self.start > 0 && capacity - self.end < input.len() {
            // Move the unread bytes to the front only when the tail is short of room.
            crate::pson::copy_down(self.buf.as_mut(), self.start, self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = capacity - self.end;
        let n = room.min(input.len());
        if let (Some(dst), Some(src)) = (self.buf.as_mut().get_mut(self.end..self.end + n), input.get(..n)) {
            dst.copy_from_slice(src);
            self.end += n;
            n
        } else {
            0
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or a framing error.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame<'_>>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let pending = self.buf.as_ref().get(self.start..self.end).unwrap_or(&[]);
        match parse_header(pending, self.max_frame) {
            Err(e @ FrameError::TooLarge { size, .. }) if self.skip_oversized => {
                // Everything buffered belongs to the oversized frame: drop it, skip the rest.
                self.skipping = size.saturating_sub(pending.len() as u64);
                self.start = 0;
                self.end = 0;
                Err(e)
            }
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
            Ok(None) => Ok(None),
            Ok(Some(header)) => {
                let frame_len = header.frame_len();
                if pending.len() < frame_len {
                    return Ok(None);
                }
                let body_start = self.start + header.header_len;
                let body_end = self.start + frame_len;
                self.start = body_end;
                if self.start == self.end {
                    // Empty: the next feed starts at the front without a copy.
                    self.start = 0;
                    self.end = 0;
                }
                let body = self.buf.as_ref().get(body_start..body_end).unwrap_or(&[]);
                Ok(Some(RawFrame { msg_type: header.msg_type, body }))
            }
        }
    }

    /// Call when the connection closed: an incomplete frame left in the buffer is an error.
    ///
    /// ```
    /// use thinger_core::iotmp::{FrameDecoder, FrameError};
    /// let mut dec = FrameDecoder::new([0u8; 8]);
    /// dec.feed(&[0x01, 0x03, 0x08]);
    /// assert_eq!(dec.finish(), Err(FrameError::TruncatedAtClose { buffered: 3 }));
    /// ```
    pub fn finish(&mut self) -> Result<(), FrameError> {
        match self.buffered() {
            0 => Ok(()),
            buffered => Err(FrameError::TruncatedAtClose { buffered }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_oversized_by_header() {
        let mut dec = FrameDecoder::new([0u8; 16]);
        // Announces a 1 MiB body; only the header was sent.
        assert_eq!(dec.feed(&[0x06, 0x80, 0x80, 0x40]), 4);
        assert!(matches!(dec.next_frame(), Err(FrameError::TooLarge { .. })));
        assert_eq!(dec.feed(&[0x00]), 0);
        assert!(dec.next_frame().is_err());
    }

    #[test]
    fn skip_mode_drops_only_the_oversized_frame() {
        let mut dec = FrameDecoder::new([0u8; 16]).skip_oversized(true);
        // A keep-alive, a RUN announcing 100 bytes, its body in pieces, then a keep-alive.
        let mut stream = std::vec![0x05, 0x00, 0x06, 100];
        stream.extend_from_slice(&[0x42; 100]);
        stream.extend_from_slice(&[0x05, 0x00]);
        let mut frames = std::vec::Vec::new();
        let mut skipped = 0;
        for chunk in stream.chunks(7) {
            let mut chunk = chunk;
            while !chunk.is_empty() {
                let n = dec.feed(chunk);
                chunk = &chunk[n..];
                loop {
                    match dec.next_frame() {
                        Ok(Some(f)) => frames.push(f.msg_type),
                        Ok(None) => break,
                        Err(FrameError::TooLarge { size: 102, max: 16 }) => skipped += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
        assert_eq!((frames.as_slice(), skipped), (&[5, 5][..], 1));
        assert_eq!(dec.error(), None);
    }

    #[test]
    fn stream_id_behind_varint_fields() {
        assert_eq!(peek_stream_id(&[0x10, 0x05, 0x08, 0x07]), StreamIdPeek::Found(7));
        assert_eq!(peek_stream_id(&[0x10]), StreamIdPeek::NeedMore);
        assert_eq!(peek_stream_id(&[]), StreamIdPeek::NeedMore);
        assert_eq!(peek_stream_id(&[0x08, 0xff, 0xff, 0x7f]), StreamIdPeek::Absent);
        assert_eq!(peek_stream_id(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), StreamIdPeek::Absent);
    }

    #[test]
    fn bad_header_varints() {
        assert_eq!(parse_header(&[0xff, 0xff, 0xff, 0xff, 0x7f, 0x00], 64), Err(FrameError::BadVarint));
        assert_eq!(parse_header(&[0x05, 0xff, 0xff, 0xff, 0xff, 0x7f], usize::MAX), Err(FrameError::BadVarint));
        let largest = parse_header(&[0x05, 0xff, 0xff, 0xff, 0xff, 0x0f], usize::MAX);
        // A u32::MAX body fits a 64-bit address space; with 32-bit `usize` the header and
        // body together do not.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(largest.unwrap().unwrap().body_len, u32::MAX as usize);
        #[cfg(not(target_pointer_width = "64"))]
        assert!(matches!(largest, Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn field_ids_past_32_bits_are_skipped_not_truncated() {
        // RUN F1=7, then unknown fields 2^32 + 3 (PSON true) and 2^32 + 2 (varint 5): a
        // truncated id would read them as F3 and F2.
        let mut body = std::vec![0x08, 0x07];
        for (id, wire, value) in [((1u64 << 32) + 3, 2u64, 0x61u8), ((1 << 32) + 2, 0, 0x05)] {
            let mut key = [0u8; 10];
            let n = varint::encode_u64(id << 3 | wire, &mut key).unwrap();
            body.extend_from_slice(&key[..n]);
            body.push(value);
        }
        let m = RawFrame { msg_type: 6, body: &body }.message().unwrap();
        assert_eq!((m.stream_id, m.payload, m.parameters, m.payload_pson()), (7, None, None, None));
    }

    #[test]
    fn exactly_at_limit() {
        let frame = [0x0a, 0x04, 0x08, 0x17, 0x1a, 0x61];
        let mut dec = FrameDecoder::new([0u8; 64]).with_max_frame_size(frame.len());
        dec.feed(&frame);
        assert!(dec.next_frame().unwrap().is_some());
        let mut dec = FrameDecoder::new([0u8; 64]).with_max_frame_size(frame.len() - 1);
        dec.feed(&frame);
        assert!(dec.next_frame().is_err());
    }

    proptest! {
        #[test]
        fn any_chunking_gives_same_frames(chunks in proptest::collection::vec(1usize..7, 1..40)) {
            // Three frames back to back.
            let stream: &[u8] = &[0x05, 0x00, 0x06, 0x09, 0x08, 0x08, 0x1a, 0x61, 0x22, 0x83, b'l', b'e', b'd',
                                  0x01, 0x03, 0x08, 0xd2, 0x09];
            let mut dec = FrameDecoder::new([0u8; 16]);
            let mut got = std::vec::Vec::new();
            let mut input = stream;
            let mut sizes = chunks.iter().cycle();
            while !input.is_empty() {
                let size = (*sizes.next().unwrap()).min(input.len());
                let mut chunk = &input[..size];
                while !chunk.is_empty() {
                    let n = dec.feed(chunk);
                    chunk = &chunk[n..];
                    while let Some(f) = dec.next_frame().unwrap() {
                        got.push((f.msg_type, f.body.to_vec()));
                    }
                }
                input = &input[size..];
            }
            prop_assert_eq!(got.len(), 3);
            prop_assert_eq!(got[1].1.len(), 9);
            prop_assert_eq!(dec.buffered(), 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut dec = FrameDecoder::new([0u8; 64]);
            let mut input = &bytes[..];
            loop {
                let n = dec.feed(input);
                input = &input[n..];
                let mut progressed = n > 0;
                loop {
                    match dec.next_frame() {
                        Ok(Some(f)) => { let _ = f.message(); progressed = true; }
                        Ok(None) => break,
                        Err(_) => return Ok(()),
                    }
                }
                if input.is_empty() || !progressed { break; }
            }
        }
    }
}
