//! The roomy sink of [`encode_to_slice`](super::encode_to_slice) on hosts: the copy of
//! the encoder in which the compiler drops the room checks it can prove, and whose writes
//! make no call.

use super::{EXTENDED, Error, Sink, SliceSink, copy_short};
use crate::varint;

/// See [`encode_to_slice`](super::encode_to_slice): a buffer at least this long takes the
/// copy of the encoder in which the compiler drops the room checks it can prove (every check of the benchmark
/// payload: `payload/encode/hand` 137 -> 117, `serde` 125 -> 106 instructions, callgrind).
/// Smaller buffers, where running out of room is likely, keep the checked copy.
pub(crate) const ROOMY: usize = 256;

/// A [`SliceSink`] over a buffer of at least [`ROOMY`] bytes: the same writes, as another
/// type (see [`encode_to_slice`](super::encode_to_slice)).
///
/// It makes no function call: writes of up to `ROOMY_COPY` (127) bytes are copied in
/// fixed-size pieces and long varints are written a byte at a time (instead of `memcpy`
/// and the out-of-line `extended_tag`); a longer write fails with [`Error::BufferFull`],
/// and the caller then encodes the value again through the checked [`SliceSink`]. Without
/// a call on it (the checked copy is out of line too), the hot path keeps everything in
/// scratch registers and saves none: `payload/encode/hand` 117 -> 101, `serde` 106 -> 93
/// instructions (callgrind); the payload with a 35-byte label 152 -> 116, with a 13-digit
/// timestamp added 249 -> 147 (scratch rows, same counter).
///
/// A refusal is remembered (`refused`), not only returned: the value's own code may map the
/// error to another one or ignore it, and the caller must retry either way.
#[derive(Debug)]
pub(crate) struct RoomySink<'a> {
    sink: SliceSink<'a>,
    refused: bool,
}

impl<'a> RoomySink<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        RoomySink { sink: SliceSink::new(buf), refused: false }
    }

    /// The bytes written, or `None` when a write was refused (the value must be encoded
    /// again through the checked [`SliceSink`]).
    #[inline(always)]
    pub(crate) fn unrefused(&self) -> Option<usize> {
        (!self.refused).then_some(self.sink.written())
    }

    /// Remembers a refusal and returns the error the encoder sees.
    #[cold]
    fn refuse(&mut self) -> Error {
        self.refused = true;
        Error::BufferFull
    }
}

/// The longest write the roomy sink copies itself (in 16-byte pieces, no `memcpy`); longer
/// ones make the caller retry through the checked copy. 127, not 128: a string of 128
/// bytes has a three-byte tag, and that path took one more register (`payload/encode/hand`
/// 101 -> 99 instructions with 127).
const ROOMY_COPY: usize = 127;

/// `dst.copy_from_slice(src)` for 16 to `ROOMY_COPY` bytes without a call: 16-byte pieces,
/// the last one overlapping. Anything else through `copy_from_slice`.
#[inline(always)]
fn copy_chunks(dst: &mut [u8], src: &[u8]) {
    let len = src.len();
    if dst.len() != len || !(16..=ROOMY_COPY).contains(&len) {
        dst.copy_from_slice(src);
        return;
    }
    // Written out, not a loop: the compiler turns a copy loop back into `memcpy`.
    fn piece(dst: &mut [u8], src: &[u8], at: usize) {
        if let (Some(d), Some(s)) = (
            dst.get_mut(at..).and_then(|d| d.first_chunk_mut::<16>()),
            src.get(at..).and_then(|s| s.first_chunk::<16>()),
        ) {
            *d = *s;
        }
    }
    piece(dst, src, 0);
    piece(dst, src, 16);
    if len > 48 {
        piece(dst, src, 32);
        if len > 64 {
            piece(dst, src, 48);
            if len > 80 {
                piece(dst, src, 64);
                if len > 96 {
                    piece(dst, src, 80);
                    if len > 112 {
                        piece(dst, src, 96);
                    }
                }
            }
        }
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<16>(), src.last_chunk::<16>()) {
        *d = *s;
    }
}

impl Sink for RoomySink<'_> {
    #[inline(always)]
    fn short_str_first(&self) -> bool {
        true
    }
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() > ROOMY_COPY {
            return Err(self.refuse());
        }
        let end = self.sink.pos.checked_add(bytes.len()).ok_or(Error::BufferFull)?;
        let dst = self.sink.buf.get_mut(self.sink.pos..end).ok_or(Error::BufferFull)?;
        if bytes.len() < 32 {
            copy_short(dst, bytes);
        } else {
            copy_chunks(dst, bytes);
        }
        self.sink.pos = end;
        Ok(())
    }
    #[inline(always)]
    fn write_byte(&mut self, byte: u8) -> Result<(), Error> {
        self.sink.write_byte(byte)
    }
    #[inline(always)]
    fn write_prefixed(&mut self, prefix: u8, bytes: &[u8]) -> Result<(), Error>
    where
        Self: Sized,
    {
        let len = bytes.len();
        if len >= 32 {
            self.write_byte(prefix)?;
            return self.write(bytes);
        }
        // 4 to 7 bytes (labels, units, short names): both pieces addressed from the buffer,
        // the last at `end - 4`, so no pointer to the body is built (the sixth round's
        // change, reverted then for the inlining limit of the bench binary; with one caller
        // per encoder there it is kept): `payload/encode/hand` and `serde` 82 -> 80
        // instructions (callgrind).
        if (4..8).contains(&len)
            && let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>())
        {
            let pos = self.sink.pos;
            let end = pos + 1 + len;
            let buf = &mut *self.sink.buf;
            let Some(tag) = buf.get_mut(pos) else { return Err(Error::BufferFull) };
            *tag = prefix;
            *buf.get_mut(pos + 1..).and_then(|d| d.first_chunk_mut::<4>()).ok_or(Error::BufferFull)? = *head;
            *buf.get_mut(..end).and_then(|d| d.last_chunk_mut::<4>()).ok_or(Error::BufferFull)? = *tail;
            self.sink.pos = end;
            return Ok(());
        }
        self.sink.write_prefixed(prefix, bytes)
    }
    /// A serde field name (a literal): the header byte if any and the tag merged into the
    /// first of two fixed-size pieces, so with a constant key both are stores of
    /// immediates (`"\x85label"`: two 4-byte stores, not a byte and two 4-byte stores).
    /// A key of exactly 4, 8 or 16 bytes without a header is a tag byte and one piece, and
    /// other lengths go through `write_prefixed`.
    #[inline(always)]
    fn write_key(&mut self, header: u8, tag: u8, key: &[u8]) -> Result<(), Error>
    where
        Self: Sized,
    {
        let len = key.len();
        let (prefix, p) = if header != 0 { (u64::from(header) | u64::from(tag) << 8, 2) } else { (u64::from(tag), 1) };
        let total = p + len;
        let start = self.sink.pos;
        let merged = !(p == 1 && matches!(len, 4 | 8 | 16));
        if merged && let Some(dst) = start.checked_add(total).and_then(|end| self.sink.buf.get_mut(start..end)) {
            if (5..=8).contains(&total)
                && let (Some(head), Some(tail)) = (key.first_chunk::<4>(), key.last_chunk::<4>())
            {
                let head = (u32::from_le_bytes(*head) << (8 * p)) | prefix as u32;
                if let Some(d) = dst.first_chunk_mut::<4>() {
                    *d = head.to_le_bytes();
                }
                if let Some(t) = dst.last_chunk_mut::<4>() {
                    *t = *tail;
                }
                self.sink.pos = start + total;
                return Ok(());
            }
            if (9..=16).contains(&total)
                && let (Some(head), Some(tail)) = (key.first_chunk::<8>(), key.last_chunk::<8>())
            {
                let head = (u64::from_le_bytes(*head) << (8 * p)) | prefix;
                if let Some(d) = dst.first_chunk_mut::<8>() {
                    *d = head.to_le_bytes();
                }
                if let Some(t) = dst.last_chunk_mut::<8>() {
                    *t = *tail;
                }
                self.sink.pos = start + total;
                return Ok(());
            }
        }
        if header != 0 {
            self.write_byte(header)?;
        }
        self.write_prefixed(tag, key)
    }
    /// Written here without a call (timestamps and other large integers are common, and a
    /// retry would encode the value twice); the length is bounded (at most 11 bytes), so
    /// the room checks after it stay provable.
    #[inline(always)]
    fn write_long_tag(&mut self, base: u8, value: u64) -> Result<(), Error>
    where
        Self: Sized,
    {
        // In place, a byte at a time (the room for the longest form is checked first; a
        // buffer that has less left makes the caller retry through the checked copy).
        let start = self.sink.pos;
        let Some((tag, body)) = start
            .checked_add(1 + varint::MAX_LEN_U64)
            .and_then(|room| self.sink.buf.get_mut(start..room))
            .and_then(|d| d.split_first_mut())
        else {
            return Err(self.refuse());
        };
        *tag = base | EXTENDED;
        let mut v = value;
        let mut n = 1;
        for slot in body {
            n += 1;
            if v < 0x80 {
                *slot = v as u8;
                break;
            }
            *slot = v as u8 | 0x80;
            v >>= 7;
        }
        self.sink.pos = start + n;
        Ok(())
    }
}
