use super::{EXTENDED, Error, Key, WireType, float};
#[cfg(not(target_os = "none"))]
use crate::varint;

/// `buf.copy_within(from..to, dest)` for `dest <= from`, one byte at a time: moving data
/// towards the front is all this crate needs, and a forward copy avoids linking the
/// general `memmove` (1.5 KB of flash on Cortex-M). Out-of-range parts are not copied.
/// On hosts, where flash does not matter, the library's `copy_within` is used instead.
#[cfg(not(target_os = "none"))]
pub(crate) fn copy_down(buf: &mut [u8], from: usize, to: usize, dest: usize) {
    let to = to.min(buf.len());
    let dest = dest.min(from);
    if from < to {
        buf.copy_within(from..to, dest);
    }
}

/// See the host version above.
#[cfg(target_os = "none")]
#[inline(never)]
pub(crate) fn copy_down(buf: &mut [u8], from: usize, to: usize, dest: usize) {
    let mut src = from;
    let mut dst = dest.min(from);
    while src < to {
        match buf.get(src).copied() {
            Some(byte) => match buf.get_mut(dst) {
                Some(slot) => *slot = byte,
                None => return,
            },
            None => return,
        }
        src += 1;
        dst += 1;
    }
}

/// Where an [`Encoder`] writes bytes.
///
/// Implemented by [`SliceSink`] (a caller-owned buffer), [`SizeCounter`] (counts bytes and
/// writes nothing, for a size-only pass) and [`IoSink`] (any `embedded_io::Write`).
pub trait Sink {
    /// Appends `bytes`, or fails without a partial guarantee.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error>;
    /// Appends one byte.
    #[inline]
    fn write_byte(&mut self, byte: u8) -> Result<(), Error> {
        self.write(&[byte])
    }
    /// Appends `prefix` then `bytes` (a one-byte tag and its body). Sinks that can check
    /// room for both at once override it; the default writes them one after the other.
    /// (Not part of `dyn Sink`, so trait objects carry no extra method.)
    #[inline]
    fn write_prefixed(&mut self, prefix: u8, bytes: &[u8]) -> Result<(), Error>
    where
        Self: Sized,
    {
        self.write_byte(prefix)?;
        self.write(bytes)
    }
    /// Whether [`Encoder::str`] tests for a string of 4 to 7 bytes before anything else
    /// (internal, hosts: the roomy sink of [`encode_to_slice`], which copies such a string
    /// with one test; other sinks keep one length order for every string).
    #[cfg(not(target_os = "none"))]
    #[doc(hidden)]
    #[inline(always)]
    fn short_str_first(&self) -> bool
    where
        Self: Sized,
    {
        false
    }
    /// Appends `header` (unless 0), `tag` and `key` (a map key of up to 30 bytes, after
    /// its map's header if that is still to be written). Internal to the serde serializer
    /// (hosts): the roomy sink of `to_slice` writes it as fixed-size pieces.
    #[cfg(not(target_os = "none"))]
    #[doc(hidden)]
    #[inline]
    fn write_key(&mut self, header: u8, tag: u8, key: &[u8]) -> Result<(), Error>
    where
        Self: Sized,
    {
        if header != 0 {
            self.write_byte(header)?;
        }
        self.write_prefixed(tag, key)
    }
    /// Appends the tag byte `base | 31` and a varint of four bytes or more (`value` of
    /// 2^21 and more). Internal to the encoder (hosts): the roomy sink of
    /// [`encode_to_slice`] writes it in place, without a call.
    #[cfg(not(target_os = "none"))]
    #[doc(hidden)]
    #[inline]
    fn write_long_tag(&mut self, base: u8, value: u64) -> Result<(), Error>
    where
        Self: Sized,
    {
        let (bytes, n) = extended_tag(base, value);
        self.write(bytes.get(..n).ok_or(Error::BufferFull)?)
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        (**self).write(bytes)
    }
    #[inline]
    fn write_byte(&mut self, byte: u8) -> Result<(), Error> {
        (**self).write_byte(byte)
    }
}

/// A [`Sink`] over a caller-owned byte slice.
///
/// ```
/// use thinger_core::pson::{Sink, SliceSink, Error};
/// let mut buf = [0u8; 2];
/// let mut sink = SliceSink::new(&mut buf);
/// sink.write(b"ab").unwrap();
/// assert_eq!(sink.write(b"c"), Err(Error::BufferFull));
/// assert_eq!(sink.written(), 2);
/// ```
#[derive(Debug)]
pub struct SliceSink<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> SliceSink<'a> {
    /// A sink writing from the start of `buf`.
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceSink { buf, pos: 0 }
    }
    /// Bytes written so far.
    #[inline]
    pub fn written(&self) -> usize {
        self.pos
    }
    /// The bytes written so far.
    #[inline]
    pub fn as_written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }
    /// Moves the write position (resource `Output`: a value written again from the start,
    /// a map's pairs after the room for its header).
    #[inline]
    pub(crate) fn set_written(&mut self, pos: usize) {
        self.pos = pos;
    }
    /// The whole buffer, written part and rest.
    #[inline]
    pub(crate) fn buffer(&mut self) -> &mut [u8] {
        self.buf
    }
}

impl Sink for SliceSink<'_> {
    // Microcontrollers: one out-of-line copy (the optimizer had kept two, and inlined others
    // besides): −44 B on thumbv7em "z" (docs/footprint.md).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline(never))]
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self.pos.checked_add(bytes.len()).ok_or(Error::BufferFull)?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(Error::BufferFull)?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn write_byte(&mut self, byte: u8) -> Result<(), Error> {
        let slot = self.buf.get_mut(self.pos).ok_or(Error::BufferFull)?;
        *slot = byte;
        self.pos += 1;
        Ok(())
    }
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn write_prefixed(&mut self, prefix: u8, bytes: &[u8]) -> Result<(), Error>
    where
        Self: Sized,
    {
        // One room check for tag and body; the body copy has the caller's length, which
        // is a constant for literal keys once this is inlined.
        // (`pos + 1 + len` as one checked sum: one carry test and one compare.)
        let end = bytes.len().checked_add(1).and_then(|n| self.pos.checked_add(n)).ok_or(Error::BufferFull)?;
        let (first, dst) =
            self.buf.get_mut(self.pos..end).and_then(|d| d.split_first_mut()).ok_or(Error::BufferFull)?;
        *first = prefix;
        #[cfg(not(target_os = "none"))]
        copy_short(dst, bytes);
        #[cfg(target_os = "none")]
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
}

/// `dst.copy_from_slice(src)` for the short bodies of `write_prefixed` (below 32 bytes:
/// the strings whose length fits in the tag), as two overlapping fixed-size copies instead
/// of a call to `memcpy`, which costs more than the copy for a 7-byte label. Longer or
/// mismatched inputs go through `copy_from_slice`. Hosts only.
#[cfg(not(target_os = "none"))]
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    fn pieces<const N: usize>(dst: &mut [u8], src: &[u8]) -> Option<()> {
        let len = src.len();
        let tail = len.checked_sub(N)?;
        dst.get_mut(..N)?.copy_from_slice(src.get(..N)?);
        dst.get_mut(tail..len)?.copy_from_slice(src.get(tail..)?);
        Some(())
    }
    let len = src.len();
    if dst.len() != len {
        dst.copy_from_slice(src);
        return;
    }
    fn up_to_three(dst: &mut [u8], src: &[u8]) -> Option<()> {
        let len = src.len();
        *dst.first_mut()? = *src.first()?;
        *dst.get_mut(len / 2)? = *src.get(len / 2)?;
        *dst.last_mut()? = *src.last()?;
        Some(())
    }
    // Split at 8 first: keys and labels are mostly 4 to 15 bytes, two compares away.
    let done = if len >= 8 {
        if len >= 32 {
            None
        } else if len >= 16 {
            pieces::<16>(dst, src)
        } else {
            pieces::<8>(dst, src)
        }
    } else if len >= 4 {
        pieces::<4>(dst, src)
    } else if len > 0 {
        up_to_three(dst, src)
    } else {
        Some(())
    };
    if done.is_none() {
        dst.copy_from_slice(src);
    }
}

/// A [`Sink`] that only counts bytes: the size-only pass.
///
/// ```
/// use thinger_core::pson::{Encoder, SizeCounter};
/// let mut enc = Encoder::new(SizeCounter::default());
/// enc.str("hello").unwrap();
/// assert_eq!(enc.into_sink().len(), 6);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct SizeCounter(usize);

impl SizeCounter {
    /// Bytes counted so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.0
    }
    /// Whether nothing was counted.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

impl Sink for SizeCounter {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.0 = self.0.saturating_add(bytes.len());
        Ok(())
    }
    #[inline]
    fn write_byte(&mut self, _: u8) -> Result<(), Error> {
        self.0 = self.0.saturating_add(1);
        Ok(())
    }
    #[inline]
    fn write_prefixed(&mut self, _: u8, bytes: &[u8]) -> Result<(), Error>
    where
        Self: Sized,
    {
        self.0 = self.0.saturating_add(bytes.len()).saturating_add(1);
        Ok(())
    }
}

/// A [`Sink`] over any [`embedded_io::Write`]; write errors become [`Error::Io`].
///
/// ```
/// use thinger_core::pson::{Encoder, IoSink};
/// let mut out = [0u8; 8];
/// let mut enc = Encoder::new(IoSink::new(&mut out[..]));
/// enc.bool(true).unwrap();
/// assert_eq!(out[0], 0x61);
/// ```
#[derive(Debug)]
pub struct IoSink<W>(W);

impl<W: embedded_io::Write> IoSink<W> {
    /// Wraps a writer.
    pub fn new(writer: W) -> Self {
        IoSink(writer)
    }
    /// Returns the writer.
    pub fn into_inner(self) -> W {
        self.0
    }
}

impl<W: embedded_io::Write> Sink for IoSink<W> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.0.write_all(bytes).map_err(|_| Error::Io)
    }
}

/// Writes PSON values, one call per value or container header.
///
/// Containers are written as a header with their element count followed by the elements
/// (for maps: key string, value, key string, value, …). Floats follow the official
/// encoder: whole numbers in `i64` range become integers, doubles exactly representable as
/// `f32` are written as f32, everything else as f64; always little-endian.
///
/// On hosts every method inlines into the caller, so a literal key is a constant store and
/// the sink's position stays in a register; a short string's tag and body share one room
/// check (one checked sum), and its body is copied as two overlapping fixed-size pieces.
/// Microcontrollers keep `tag` and `str` out of line instead (flash).
///
/// ```
/// use thinger_core::pson::{Encoder, SliceSink};
/// let mut buf = [0u8; 8];
/// let mut enc = Encoder::new(SliceSink::new(&mut buf));
/// enc.f64(3.0).unwrap(); // whole number: sent as the integer 3
/// enc.i64(-300).unwrap();
/// assert_eq!(enc.into_sink().as_written(), &[0x03, 0x3f, 0xac, 0x02]);
/// ```
#[derive(Debug)]
pub struct Encoder<S> {
    sink: S,
}

impl<S: Sink> Encoder<S> {
    /// An encoder writing to `sink`.
    #[inline]
    pub fn new(sink: S) -> Self {
        Encoder { sink }
    }
    /// The sink, with everything written so far.
    #[inline]
    pub fn into_sink(self) -> S {
        self.sink
    }
    /// The sink, borrowed.
    #[inline]
    pub fn sink(&self) -> &S {
        &self.sink
    }
    /// The sink, borrowed mutably.
    #[inline]
    pub(crate) fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Writes a tag for `wire` with value `value` (inline below 31, else a varint follows).
    /// On `BufferFull` the sink may hold the first bytes of the tag (microcontrollers write
    /// it byte by byte), as after any failed write (see [`Sink::write`]).
    ///
    /// On hosts the forms up to four bytes (values below 2^21) are written as fixed-size
    /// pieces, inlined at each call site.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub fn tag(&mut self, wire: WireType, value: u64) -> Result<(), Error> {
        let base = (wire as u8) << 5;
        // Split at 0x80 first: one- and two-byte forms two compares away, three-byte too.
        if value < 0x80 {
            if value < u64::from(EXTENDED) {
                self.sink.write_byte(base | value as u8)
            } else {
                self.sink.write(&[base | EXTENDED, value as u8])
            }
        } else if value < 0x4000 {
            self.sink.write(&[base | EXTENDED, value as u8 | 0x80, (value >> 7) as u8])
        } else if value < 0x20_0000 {
            self.sink.write(&[base | EXTENDED, value as u8 | 0x80, (value >> 7) as u8 | 0x80, (value >> 14) as u8])
        } else {
            self.tag_varint(base, value)
        }
    }

    /// Writes a tag for `wire` with value `value` (inline below 31, else a varint follows).
    /// On `BufferFull` the sink may hold the first bytes of the tag (microcontrollers write
    /// it byte by byte), as after any failed write (see [`Sink::write`]).
    // Not inlined on microcontrollers: every value written goes through here, and a copy per
    // call site costs more flash than the call.
    #[cfg(target_os = "none")]
    #[inline(never)]
    pub fn tag(&mut self, wire: WireType, value: u64) -> Result<(), Error> {
        self.tag_compact(wire, value)
    }

    /// The microcontrollers' `tag` (compiled on hosts for the tests): the tag byte and each
    /// varint byte through one `write_byte` call in one loop, no staging buffer and no
    /// `write` of it (−40 B on thumbv7em "z", docs/footprint-rounds-2.md). A sink may keep
    /// the first bytes of a tag that does not fit (`Sink::write` gives no guarantee either).
    #[cfg(any(target_os = "none", test))]
    #[inline(always)]
    pub(crate) fn tag_compact(&mut self, wire: WireType, value: u64) -> Result<(), Error> {
        let base = (wire as u8) << 5;
        // `more`: a byte follows the one in `byte`; `rest` what the varint still holds.
        let mut more = value >= u64::from(EXTENDED);
        let mut byte = if more { base | EXTENDED } else { base | value as u8 };
        let mut rest = value;
        loop {
            self.sink.write_byte(byte)?;
            if !more {
                return Ok(());
            }
            // The next group tested as it is shifted out (a 64-bit test for zero is one
            // instruction, a compare with 0x80 three).
            let next = rest >> 7;
            more = next != 0;
            byte = rest as u8 | (u8::from(more) << 7);
            rest = next;
        }
    }

    /// The tag byte `base | 31` and `value` as a varint, of any length.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn tag_varint(&mut self, base: u8, value: u64) -> Result<(), Error> {
        self.sink.write_long_tag(base, value)
    }

    /// Writes an unsigned integer.
    // Inlined on microcontrollers too (a call of `tag`): −4 B on thumbv7em "z", −28 B on thumbv6m.
    #[inline(always)]
    pub fn u64(&mut self, value: u64) -> Result<(), Error> {
        self.tag(WireType::PositiveInt, value)
    }

    /// Writes a signed integer (type 0 when non-negative, type 1 with the magnitude otherwise).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub fn i64(&mut self, value: i64) -> Result<(), Error> {
        if value >= 0 {
            self.tag(WireType::PositiveInt, value as u64)
        } else {
            self.tag(WireType::NegativeInt, value.unsigned_abs())
        }
    }

    /// Writes a double with the official rules (integer, else f32 when exact, else f64).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub fn f64(&mut self, value: f64) -> Result<(), Error> {
        // Decided on the bits (no soft-float calls on FPU-less or single-precision targets):
        // a whole number in [-2^63, 2^63) is an integer; else f32 if `value as f32` is exact.
        if let Some(whole) = float::f64_whole_i64(value) {
            return self.i64(whole);
        }
        match float::f64_exact_f32(value) {
            Some(narrow) => self.f32_raw(narrow),
            None => self.f64_raw(value),
        }
    }

    /// Writes a float given as `f32`, with the same rules as [`Encoder::f64`].
    #[cfg(target_os = "none")]
    #[inline]
    pub fn f32(&mut self, value: f32) -> Result<(), Error> {
        // Every f32 (NaN with its exact bit pattern included) is exact as f32: only whole
        // numbers change type.
        self.f32_bits(value.to_bits())
    }

    /// Writes a float given as `f32`, with the same rules as [`Encoder::f64`].
    // Hosts: the whole-number test is the hardware round trip (as for `f64`), not the bit
    // tests of `f32_bits`: `payload/encode/hand` with an f32 temperature 193 -> 90.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub fn f32(&mut self, value: f32) -> Result<(), Error> {
        match float::f32_whole_i64(value) {
            Some(whole) => self.i64(whole),
            None => self.f32_raw(value),
        }
    }

    /// [`Encoder::f32`] of the float's bits: the classification and the raw form need only
    /// the bits, and an `f32` read as bits from memory is an integer load, not an FPU
    /// register kept across the calls in between.
    #[cfg(target_os = "none")]
    #[inline]
    fn f32_bits(&mut self, bits: u32) -> Result<(), Error> {
        match float::f32_whole_signed(bits) {
            Some((true, magnitude)) => self.tag(WireType::NegativeInt, magnitude),
            Some((false, magnitude)) => self.tag(WireType::PositiveInt, magnitude),
            None => self.f32_raw(f32::from_bits(bits)),
        }
    }

    /// Writes an f32 as is (tag `0x40` + 4 bytes little-endian), with no conversion.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub fn f32_raw(&mut self, value: f32) -> Result<(), Error> {
        let b = value.to_le_bytes();
        self.sink.write(&[0x40, b[0], b[1], b[2], b[3]])
    }

    /// Writes an f64 as is (tag `0x41` + 8 bytes little-endian), with no conversion.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub fn f64_raw(&mut self, value: f64) -> Result<(), Error> {
        let b = value.to_le_bytes();
        self.sink.write(&[0x41, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Writes `true` or `false`.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub fn bool(&mut self, value: bool) -> Result<(), Error> {
        self.sink.write_byte(if value { 0x61 } else { 0x60 })
    }

    /// Writes `null`.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub fn null(&mut self) -> Result<(), Error> {
        self.sink.write_byte(0x62)
    }

    /// Writes a UTF-8 string.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub fn str(&mut self, value: &str) -> Result<(), Error> {
        let len = value.len();
        if self.sink.short_str_first() && (4..8).contains(&len) {
            return self.sink.write_prefixed(((WireType::String as u8) << 5) | len as u8, value.as_bytes());
        }
        if len < usize::from(EXTENDED) {
            // Tag and body with one room check (the common short key or label).
            self.sink.write_prefixed(((WireType::String as u8) << 5) | len as u8, value.as_bytes())
        } else {
            self.tag(WireType::String, len as u64)?;
            self.sink.write(value.as_bytes())
        }
    }

    /// Writes a UTF-8 string.
    #[cfg(target_os = "none")]
    #[inline(never)]
    pub fn str(&mut self, value: &str) -> Result<(), Error> {
        self.tag(WireType::String, value.len() as u64)?;
        self.sink.write(value.as_bytes())
    }

    /// Writes a map key encoded once (with the map's header, if it was built with
    /// [`Key::after_map_header`]): the same bytes as [`Encoder::str`] of its name (after
    /// [`Encoder::map_header`]), as one copy.
    ///
    /// ```
    /// use thinger_core::pson::{Encoder, Key, SliceSink};
    /// const ON: Key = Key::new("on");
    /// let mut buf = [0u8; 4];
    /// let mut enc = Encoder::new(SliceSink::new(&mut buf));
    /// enc.key(&ON).unwrap();
    /// assert_eq!(enc.into_sink().as_written(), b"\x82on");
    /// ```
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub fn key(&mut self, key: &Key) -> Result<(), Error> {
        // Hosts: a name of 8 or 16 bytes alone is the tag byte and one piece (3 stores of
        // constants for 8 bytes, not two overlapping 8-byte pieces over all 9).
        #[cfg(not(target_os = "none"))]
        if !key.has_header() && matches!(key.name_bytes().len(), 8 | 16) {
            let name = key.name_bytes();
            return self.sink.write_prefixed(((WireType::String as u8) << 5) | name.len() as u8, name);
        }
        self.sink.write(key.as_bytes())
    }

    /// Writes a byte string.
    #[inline]
    pub fn bytes(&mut self, value: &[u8]) -> Result<(), Error> {
        self.tag(WireType::Bytes, value.len() as u64)?;
        self.sink.write(value)
    }

    /// Starts a map of `pairs` key/value pairs; write each key with [`Encoder::str`], then its
    /// value.
    // Inlined on microcontrollers too (a call of `tag`): −16 B on thumbv7em "z".
    #[inline(always)]
    pub fn map_header(&mut self, pairs: usize) -> Result<(), Error> {
        self.tag(WireType::Map, pairs as u64)
    }

    /// Starts an array of `len` elements.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    pub fn array_header(&mut self, len: usize) -> Result<(), Error> {
        self.tag(WireType::Array, len as u64)
    }

    /// Copies bytes that are already a complete, valid PSON value.
    #[inline]
    pub fn raw(&mut self, pson: &[u8]) -> Result<(), Error> {
        self.sink.write(pson)
    }

    /// Writes any [`EncodePson`] value.
    #[inline]
    pub fn value<T: EncodePson + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.encode_pson(self)
    }
}

/// The tag byte `base | 31` followed by `value` as a varint, and its length. Out of line
/// on hosts (long varints are rare) without taking the sink's address, so the sink of an
/// inlined encoder stays in registers.
#[cfg(not(target_os = "none"))]
#[inline(never)]
fn extended_tag(base: u8, value: u64) -> ([u8; 1 + varint::MAX_LEN_U64], usize) {
    let mut bytes = [0u8; 1 + varint::MAX_LEN_U64];
    let (first, rest) = bytes.split_at_mut(1);
    if let Some(tag) = first.first_mut() {
        *tag = base | EXTENDED;
    }
    // 10 bytes always hold a u64.
    let n = varint::encode_u64(value, rest).unwrap_or(0);
    (bytes, 1 + n)
}

/// A type that can write itself as one PSON value.
///
/// Implemented for integers, floats, `bool`, `str`, `&[u8]`-like byte wrappers, `Option`
/// (`None` → null), tuples of pairs, arrays and slices, [`PsonRef`](super::PsonRef), and
/// under features `Value` (alloc) and `Serde` (serde).
///
/// ```
/// use thinger_core::pson::{EncodePson, Encoder, Sink, Error};
///
/// struct Reading { celsius: f32 }
///
/// impl EncodePson for Reading {
///     fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
///         enc.map_header(1)?;
///         enc.str("celsius")?;
///         enc.f32(self.celsius)
///     }
/// }
///
/// let mut buf = [0u8; 16];
/// let n = thinger_core::pson::encode_to_slice(&Reading { celsius: 22.5 }, &mut buf).unwrap();
/// assert_eq!(n, 14);
/// ```
///
/// `encode_pson` may be called more than once for one encoding ([`encode_to_slice`] on
/// hosts retries a value with a long string through a second copy of the encoder): it
/// should write the same value each time and have no other side effect.
pub trait EncodePson {
    /// Writes `self` as exactly one PSON value.
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error>;
    /// `self` as the one tag it is written as (integers, `bool`; internal): microcontrollers'
    /// resource outputs write it through one out-of-line call.
    #[cfg(any(target_os = "none", test))]
    #[doc(hidden)]
    #[inline]
    fn as_tag(&self) -> Option<(WireType, u64)> {
        None
    }
}

/// Encodes `value` into `buf`, returning the number of bytes written.
///
/// On hosts, with a buffer of 256 bytes or more, `value.encode_pson` is called a second
/// time when the first, call-free attempt stops at a write it does not make itself: a
/// string, byte string or raw piece of 128 bytes or more, or an integer of 2^21 or more in
/// the last 10 bytes of the buffer. The second call writes from the start of the buffer,
/// so the bytes are right as long as `encode_pson` writes the same value each time (see
/// [`EncodePson`]).
///
/// After an error the contents of `buf` are unspecified: bytes past the ones written may
/// have been overwritten (the fast path writes a short string's first piece before its last
/// room test). Use only the first `n` bytes of an `Ok(n)`.
///
/// ```
/// let mut buf = [0u8; 8];
/// assert_eq!(thinger_core::pson::encode_to_slice("a", &mut buf), Ok(2));
/// ```
pub fn encode_to_slice<T: EncodePson + ?Sized>(value: &T, buf: &mut [u8]) -> Result<usize, Error> {
    // Hosts: the same code twice, once behind a test that the buffer is roomy. In that
    // copy the compiler proves most room checks of a small value true (their positions
    // are constants or small ranges) and drops them; the result is the same either way.
    // (A sink of its own type, so the value's `encode_pson` is a separate instance with
    // one caller, which the compiler inlines here.)
    #[cfg(not(target_os = "none"))]
    if buf.len() >= ROOMY {
        let mut enc = Encoder::new(RoomySink::new(buf));
        let result = value.encode_pson(&mut enc);
        // Whatever `encode_pson` made of a write the roomy copy refused (passed on, mapped
        // to another error, or ignored), the checked copy below writes the value again
        // from the start and decides; any other outcome is the answer.
        if let Some(written) = enc.into_sink().unrefused() {
            return result.map(|()| written);
        }
    }
    // Out of line on hosts: its calls would otherwise make the roomy copy save registers.
    encode_checked(value, buf)
}

/// [`encode_to_slice`] through the checked [`SliceSink`].
#[cfg_attr(not(target_os = "none"), inline(never))]
#[cfg_attr(target_os = "none", inline)]
fn encode_checked<T: EncodePson + ?Sized>(value: &T, buf: &mut [u8]) -> Result<usize, Error> {
    let mut enc = Encoder::new(SliceSink::new(buf));
    value.encode_pson(&mut enc)?;
    Ok(enc.into_sink().written())
}

/// The number of bytes `value` encodes to.
///
/// ```
/// assert_eq!(thinger_core::pson::encoded_len(&300u32), 3);
/// ```
pub fn encoded_len<T: EncodePson + ?Sized>(value: &T) -> usize {
    let mut enc = Encoder::new(SizeCounter::default());
    // A size counter cannot fail; an EncodePson impl that fails anyway counts what it wrote.
    let _ = value.encode_pson(&mut enc);
    enc.into_sink().len()
}

macro_rules! encode_unsigned {
    ($($t:ty),*) => {$(
        impl EncodePson for $t {
            #[inline]
            fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
                enc.u64(u64::from(*self))
            }
            #[cfg(any(target_os = "none", test))]
            #[inline]
            fn as_tag(&self) -> Option<(WireType, u64)> {
                Some((WireType::PositiveInt, u64::from(*self)))
            }
        }
    )*};
}
encode_unsigned!(u8, u16, u32, u64);

macro_rules! encode_signed {
    ($($t:ty),*) => {$(
        impl EncodePson for $t {
            #[inline]
            fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
                enc.i64(i64::from(*self))
            }
            #[cfg(any(target_os = "none", test))]
            #[inline]
            fn as_tag(&self) -> Option<(WireType, u64)> {
                Some(signed_tag(i64::from(*self)))
            }
        }
    )*};
}
encode_signed!(i8, i16, i32, i64);

#[cfg(any(target_os = "none", test))]
#[inline]
fn signed_tag(value: i64) -> (WireType, u64) {
    if value >= 0 { (WireType::PositiveInt, value as u64) } else { (WireType::NegativeInt, value.unsigned_abs()) }
}

impl EncodePson for usize {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.u64(*self as u64)
    }
    #[cfg(any(target_os = "none", test))]
    #[inline]
    fn as_tag(&self) -> Option<(WireType, u64)> {
        Some((WireType::PositiveInt, *self as u64))
    }
}

impl EncodePson for isize {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.i64(*self as i64)
    }
    #[cfg(any(target_os = "none", test))]
    #[inline]
    fn as_tag(&self) -> Option<(WireType, u64)> {
        Some(signed_tag(*self as i64))
    }
}

impl EncodePson for f32 {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        #[cfg(target_os = "none")]
        return enc.f32_bits(self.to_bits());
        #[cfg(not(target_os = "none"))]
        enc.f32(*self)
    }
}

impl EncodePson for f64 {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.f64(*self)
    }
}

impl EncodePson for bool {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.bool(*self)
    }
    #[cfg(any(target_os = "none", test))]
    #[inline]
    fn as_tag(&self) -> Option<(WireType, u64)> {
        Some((WireType::Discrete, u64::from(*self)))
    }
}

impl EncodePson for () {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.null()
    }
}

impl EncodePson for str {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.str(self)
    }
}

impl<T: EncodePson + ?Sized> EncodePson for &T {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        (**self).encode_pson(enc)
    }
}

impl<T: EncodePson> EncodePson for Option<T> {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        match self {
            Some(v) => v.encode_pson(enc),
            None => enc.null(),
        }
    }
}

impl<T: EncodePson> EncodePson for [T] {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.array_header(self.len())?;
        self.iter().try_for_each(|v| v.encode_pson(enc))
    }
}

impl<T: EncodePson, const N: usize> EncodePson for [T; N] {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        self.as_slice().encode_pson(enc)
    }
}

/// A single `(key, value)` pair is written as a one-entry map.
impl<K: AsRef<str>, V: EncodePson> EncodePson for (K, V) {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        // A pair on its own is a one-entry map.
        enc.map_header(1)?;
        enc.str(self.0.as_ref())?;
        self.1.encode_pson(enc)
    }
}

/// A byte string (PSON type 5) rather than an array of numbers.
///
/// ```
/// use thinger_core::pson::{encode_to_slice};
/// use thinger_core::pson::Bytes;
/// let mut buf = [0u8; 8];
/// let n = encode_to_slice(&Bytes(&[1, 2]), &mut buf).unwrap();
/// assert_eq!(&buf[..n], &[0xa2, 1, 2]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes<'a>(pub &'a [u8]);

impl EncodePson for Bytes<'_> {
    #[inline]
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.bytes(self.0)
    }
}

/// A map written from a slice of `(key, value)` pairs, in order.
///
/// ```
/// use thinger_core::pson::{encode_to_slice, Map};
/// let mut buf = [0u8; 8];
/// let n = encode_to_slice(&Map(&[("a", 1u8)]), &mut buf).unwrap();
/// assert_eq!(&buf[..n], &[0xc1, 0x81, b'a', 0x01]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Map<'a, K, V>(pub &'a [(K, V)]);

impl<K: AsRef<str>, V: EncodePson> EncodePson for Map<'_, K, V> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.map_header(self.0.len())?;
        self.0.iter().try_for_each(|(k, v)| {
            enc.str(k.as_ref())?;
            v.encode_pson(enc)
        })
    }
}

#[cfg(not(target_os = "none"))]
mod roomy;
#[cfg(not(target_os = "none"))]
pub(crate) use roomy::{ROOMY, RoomySink};

#[cfg(test)]
pub(crate) mod tests;
