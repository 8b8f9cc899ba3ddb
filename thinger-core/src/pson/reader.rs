use super::{EXTENDED, Error, WireType};
use crate::varint;

/// Default limit on nested maps and arrays.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// The highest nesting limit decoders honour, whatever [`DecodeOptions::max_depth`] says:
/// decoding recurses once per level (a few hundred bytes of stack each), and a limit in the
/// thousands would overflow a thread's stack before it stopped anything.
pub const MAX_DEPTH_CEILING: usize = 256;

/// Limits applied while decoding.
///
/// ```
/// use thinger_core::pson::{DecodeOptions, Error, PsonRef};
/// let nested = [0xe1, 0xe1, 0xe1, 0xe0]; // [[[[]]]]
/// let strict = DecodeOptions::new().max_depth(3);
/// assert_eq!(PsonRef::decode_with(&nested, &strict).unwrap_err(), Error::DepthLimitExceeded);
/// assert!(PsonRef::decode(&nested).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecodeOptions {
    /// Most maps/arrays that may be nested inside each other (the top-level container
    /// counts as one). Each level costs a small, fixed amount of stack.
    pub max_depth: usize,
}

impl DecodeOptions {
    /// The defaults: depth limit [`DEFAULT_MAX_DEPTH`].
    pub const fn new() -> Self {
        DecodeOptions { max_depth: DEFAULT_MAX_DEPTH }
    }
    /// Sets the nesting limit (at most [`MAX_DEPTH_CEILING`]; larger values are capped).
    pub const fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }
    /// The nesting limit in force: `max_depth`, capped at [`MAX_DEPTH_CEILING`].
    pub const fn depth_limit(&self) -> usize {
        if self.max_depth > MAX_DEPTH_CEILING { MAX_DEPTH_CEILING } else { self.max_depth }
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A low-level cursor over PSON bytes. Every read checks the remaining input first.
///
/// It holds the unread rest of the input as a slice (not the input and an index): each
/// read is one length test and a re-slice, with no `pos <= len` bookkeeping the compiler
/// has to re-prove on every access.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    rest: Rest<'a>,
    /// Length of the whole input, for [`Cursor::position`].
    input_len: usize,
}

// Hosts: two pointers (see `rest`); microcontrollers: the slice.
#[cfg(not(target_os = "none"))]
mod rest;
#[cfg(not(target_os = "none"))]
use rest::Rest;
#[cfg(target_os = "none")]
type Rest<'a> = &'a [u8];

/// A decoded tag: the wire type and its value (inline or from the varint).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(target_os = "none", repr(C))]
pub(crate) struct Tag {
    pub(crate) wire: WireType,
    pub(crate) small: u8,
    pub(crate) value: u64,
}

/// The common scalars' fast path (see `Cursor::common_scalar`): returns `$wrap(value)` from
/// the enclosing function when the cursor's next value is one, and leaves the cursor where it
/// was otherwise. A macro, not a function, so `Cursor::value` has it inline without an
/// `Option` in between (measured: 297 -> 341 instructions through one).
#[cfg(not(target_os = "none"))]
macro_rules! common_scalar_fast_path {
    ($cursor:ident, $wrap:path) => {
        common_scalar_fast_path!($cursor, $wrap, false)
    };
    ($cursor:ident, $wrap:path, $strings:expr) => {
        if let Some((&tag, rest)) =
            if $strings { $cursor.rest.split_first_by_len() } else { $cursor.rest.split_first() }
        {
            match tag {
                0x00..=0x1e => {
                    $cursor.rest = rest;
                    return $wrap(PsonRef::Uint(u64::from(tag)));
                }
                0x1f => {
                    if let Some((value, after)) = short_varint(rest) {
                        $cursor.rest = after;
                        return $wrap(PsonRef::Uint(value));
                    }
                }
                0x40 => {
                    if let Some((bytes, after)) = rest.split_first_chunk::<4>() {
                        $cursor.rest = after;
                        return $wrap(PsonRef::F32(f32::from_le_bytes(*bytes)));
                    }
                }
                0x80..=0x9e if $strings => {
                    if let Some((body, after)) = rest.split_at_checked(usize::from(tag - 0x80))
                        && let Some(s) = super::utf8::ascii_str(body)
                    {
                        $cursor.rest = after;
                        return $wrap(PsonRef::Str(s));
                    }
                }
                _ => {}
            }
        }
    };
}

impl<'a> Cursor<'a> {
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn new(input: &'a [u8]) -> Self {
        #[cfg(not(target_os = "none"))]
        let rest = Rest::new(input);
        #[cfg(target_os = "none")]
        let rest = input;
        Cursor { rest, input_len: input.len() }
    }
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn position(&self) -> usize {
        self.input_len - self.rest.len()
    }
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }
    #[allow(dead_code)] // used by the serde deserializer
    pub(crate) fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        match self.rest.split_at_checked(len) {
            Some((bytes, rest)) => {
                self.rest = rest;
                Ok(bytes)
            }
            None => Err(if self.rest.is_empty() { Error::Truncated } else { Error::LengthExceedsInput }),
        }
    }

    /// `N` bytes as an array (the floats).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    // A reference, not the array: a `Result<[u8; 4], _>` puts the bytes at an odd offset,
    // and reading the float back out of it took a dozen byte moves (x86-64).
    #[cfg(not(target_os = "none"))]
    fn take_array<const N: usize>(&mut self) -> Result<&'a [u8; N], Error> {
        match self.rest.split_first_chunk::<N>() {
            Some((bytes, rest)) => {
                self.rest = rest;
                Ok(bytes)
            }
            None => Err(if self.rest.is_empty() { Error::Truncated } else { Error::LengthExceedsInput }),
        }
    }

    /// `N` bytes as an array (the floats).
    #[cfg(target_os = "none")]
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        match self.rest.split_first_chunk::<N>() {
            Some((bytes, rest)) => {
                self.rest = rest;
                Ok(*bytes)
            }
            None => Err(if self.rest.is_empty() { Error::Truncated } else { Error::LengthExceedsInput }),
        }
    }

    /// Moves past `len` bytes that a check before proved are there (hosts' varint paths).
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn advance(&mut self, len: usize) {
        self.rest = self.rest.skip(len);
    }

    /// The bytes read since `start` (an earlier copy of this cursor's rest).
    #[cfg_attr(not(target_os = "none"), inline)]
    fn since(&self, start: Rest<'a>) -> &'a [u8] {
        #[cfg(not(target_os = "none"))]
        return start.until(self.rest);
        #[cfg(target_os = "none")]
        start.get(..start.len() - self.rest.len()).unwrap_or(&[])
    }

    /// A map key: a string tag and its body, or [`Error::NonStringKey`].
    ///
    /// On hosts the common short key (length in the tag) is recognised with one compare
    /// (type and inline length at once) before the general path: `payload/decode/reader`
    /// 319 -> 303 instructions (callgrind). Anything else, and every error, goes through
    /// the general path from the same place, so results and errors are the same.
    // Out of line in debug builds: inlined, its locals would sit in the (unoptimised)
    // frame of every nesting level of `value_other`, close to what the depth-limit test's
    // 2 MiB thread allows for 256 levels.
    #[cfg(not(target_os = "none"))]
    #[cfg_attr(debug_assertions, inline(never))]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn key(&mut self) -> Result<&'a str, Error> {
        // Nine bytes or more left (all but a map's last short pairs): a key of up to 8
        // bytes is tested for ASCII with one load of the 8 bytes after its tag, masked to
        // its length (`utf8::ascii_prefix`), with no length test of its own; one of 9 to 16
        // bytes with two loads when 17 bytes are left: `payload/decode/reader` 266 -> 250,
        // `validate` 256 -> 234, `serde` 469 -> 455, `map100/decode/reader` 5,249 -> 5,161
        // instructions (callgrind).
        if let Some(head) = self.rest.first_chunk::<9>()
            && let (Some(&tag), Some(window)) = (head.first(), head.last_chunk::<8>())
        {
            let len = usize::from(tag.wrapping_sub((WireType::String as u8) << 5));
            if len <= 8 {
                if let Some(key) = super::utf8::ascii_prefix(window, len) {
                    self.rest = self.rest.skip(1 + len);
                    return Ok(key);
                }
            } else if len <= 16 {
                if let Some(head) = self.rest.first_chunk::<17>()
                    && let Some(window) = head.last_chunk::<16>()
                    && let Some(key) = super::utf8::ascii_prefix16(window, len)
                {
                    self.rest = self.rest.skip(1 + len);
                    return Ok(key);
                }
            } else if len < usize::from(EXTENDED)
                && let Some((body, after)) = self.rest.skip(1).split_at_checked(len)
                && let Some(key) = super::utf8::ascii_str(body)
            {
                self.rest = after;
                return Ok(key);
            }
        } else if let Some((&tag, rest)) = self.rest.split_first() {
            let len = tag.wrapping_sub((WireType::String as u8) << 5);
            if len < EXTENDED
                && let Some((body, after)) = rest.split_at_checked(usize::from(len))
                && let Some(key) = super::utf8::ascii_str(body)
            {
                self.rest = after;
                return Ok(key);
            }
        }
        // Through a copy, as in `value_after_tag`: the cursor stays in registers.
        let mut cold = self.clone();
        let key = cold.key_general();
        *self = cold;
        key
    }

    /// `key`'s general path: any string tag, non-ASCII keys, every error.
    #[cfg(not(target_os = "none"))]
    #[cold]
    #[inline(never)]
    fn key_general(&mut self) -> Result<&'a str, Error> {
        let tag = self.tag()?;
        if tag.wire != WireType::String {
            return Err(Error::NonStringKey);
        }
        self.str_body(tag.value, true)
    }

    /// Reads a tag (microcontrollers: no inline fast paths, and the rest is set once, after
    /// the varint if there is one: −20 / −20 / −20 B "z" against a cursor moved twice).
    #[cfg(target_os = "none")]
    #[inline]
    pub(crate) fn tag(&mut self) -> Result<Tag, Error> {
        self.tag_compact()
    }

    /// The microcontrollers' `tag` (compiled on hosts for the tests).
    #[cfg(any(target_os = "none", test))]
    #[inline(always)]
    pub(crate) fn tag_compact(&mut self) -> Result<Tag, Error> {
        let (&byte, rest) = self.rest.split_first().ok_or(Error::Truncated)?;
        let small = byte & EXTENDED;
        let wire = WireType::from_tag(byte);
        let (value, rest) = if small == EXTENDED {
            #[cfg(not(target_os = "none"))]
            let varint = varint::decode_u64(rest.as_slice())?;
            #[cfg(target_os = "none")]
            let varint = varint::decode_u64(rest)?;
            // `n` is within the rest (the varint was read from it).
            match varint.and_then(|(v, n)| Some((v, rest.split_at_checked(n)?.1))) {
                Some(after) => after,
                None => return Err(Error::Truncated),
            }
        } else {
            (u64::from(small), rest)
        };
        self.rest = rest;
        Ok(Tag { wire, small, value })
    }

    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn tag(&mut self) -> Result<Tag, Error> {
        let (&byte, rest) = self.rest.split_first().ok_or(Error::Truncated)?;
        self.rest = rest;
        let small = byte & EXTENDED;
        let wire = WireType::from_tag(byte);
        let value = if small == EXTENDED { self.tag_varint()? } else { u64::from(small) };
        Ok(Tag { wire, small, value })
    }

    /// The varint after an extended tag: the forms up to three bytes inline (every count
    /// and length below 2^21), longer ones through `varint::decode_u64`.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn tag_varint(&mut self) -> Result<u64, Error> {
        match *self.rest.as_slice() {
            [b0, ..] if b0 < 0x80 => {
                self.advance(1);
                Ok(u64::from(b0))
            }
            [b0, b1, ..] if b1 < 0x80 => {
                self.advance(2);
                Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
            }
            [b0, b1, b2, ..] if b2 < 0x80 => {
                self.advance(3);
                Ok(u64::from(b0 & 0x7f) | (u64::from(b1 & 0x7f) << 7) | (u64::from(b2) << 14))
            }
            _ => {
                let mut cold = self.clone();
                let value = cold.tag_varint_long();
                *self = cold;
                value
            }
        }
    }

    #[cfg(not(target_os = "none"))]
    #[inline(never)]
    fn tag_varint_long(&mut self) -> Result<u64, Error> {
        match varint::decode_u64(self.rest.as_slice())? {
            Some((v, n)) => {
                self.advance(n);
                Ok(v)
            }
            None => Err(Error::Truncated),
        }
    }

    /// A length or count that must fit in the remaining input, `min_bytes_each` per unit.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn checked_count(&self, count: u64, min_bytes_each: u64) -> Result<usize, Error> {
        // 1 or 2 (a map pair): a doubling, not a multiply, which on thumbv6m is a call to
        // the 64-bit multiply routine (docs/footprint.md).
        let needed = if min_bytes_each == 2 { count.checked_add(count) } else { Some(count) };
        let needed = needed.ok_or(Error::LengthExceedsInput)?;
        if needed > self.remaining() as u64 {
            return Err(if self.remaining() == 0 && needed > 0 { Error::Truncated } else { Error::LengthExceedsInput });
        }
        usize::try_from(count).map_err(|_| Error::LengthExceedsInput)
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn str_body(&mut self, len: u64, validate: bool) -> Result<&'a str, Error> {
        let len = self.checked_count(len, 1)?;
        let bytes = self.take(len)?;
        // Every conversion checks UTF-8 (cheaply for ASCII, see `utf8`); `validate` only
        // matters for callers that skip a string without looking at it.
        let _ = validate;
        super::utf8::to_str(bytes)
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn float(&mut self, tag: Tag) -> Result<PsonRef<'a>, Error> {
        match tag.small {
            #[cfg(not(target_os = "none"))]
            0 => Ok(PsonRef::F32(f32::from_le_bytes(*self.take_array()?))),
            #[cfg(not(target_os = "none"))]
            1 => Ok(PsonRef::F64(f64::from_le_bytes(*self.take_array()?))),
            #[cfg(target_os = "none")]
            0 => Ok(PsonRef::F32(f32::from_le_bytes(self.take_array()?))),
            #[cfg(target_os = "none")]
            1 => Ok(PsonRef::F64(f64::from_le_bytes(self.take_array()?))),
            _ => Err(Error::InvalidTag(((WireType::Float as u8) << 5) | tag.small)),
        }
    }

    /// A `wire` (map or array) header with its count in the tag byte (below 31) that the
    /// rest can hold at `min_bytes_each` per unit; `None` for anything else, and then the
    /// cursor has not moved (the general path reads the header and reports any error).
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn short_header(&mut self, wire: WireType, min_bytes_each: usize) -> Option<usize> {
        let (&tag, rest) = self.rest.split_first()?;
        let count = tag.wrapping_sub((wire as u8) << 5);
        if count < EXTENDED && usize::from(count) * min_bytes_each <= rest.len() {
            self.rest = rest;
            return Some(usize::from(count));
        }
        None
    }

    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn map_len(&self, tag: Tag) -> Result<usize, Error> {
        // A pair needs at least a key tag and a value tag.
        self.checked_count(tag.value, 2)
    }

    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn array_len(&self, tag: Tag) -> Result<usize, Error> {
        self.checked_count(tag.value, 1)
    }

    /// The most common scalars, recognised on the whole tag byte (an integer below 2^21,
    /// an f32), read with one length test each; `None` for anything else and when the
    /// input is short, and then the cursor has not moved (the general path reads the
    /// value, and reports any error). In `value` (written out there) and the serde
    /// deserializer: `payload/decode/reader` 304 -> 297, `walk` 704 -> 668, `serde` 574 ->
    /// 519, `map10/decode/reader` 655 -> 624 instructions (callgrind); adding short strings
    /// made the map and array rows slower, so they stay on the general path.
    #[cfg(all(not(target_os = "none"), any(feature = "serde", test)))]
    #[inline(always)]
    pub(crate) fn common_scalar(&mut self) -> Option<PsonRef<'a>> {
        common_scalar_fast_path!(self, Some);
        None
    }

    /// An unsigned integer below 2^21 (the one- to three-byte forms) that is at most `max`;
    /// `None` for anything else, and then the cursor has not moved. The serde
    /// deserializer's narrow unsigned types read it first.
    #[cfg(all(not(target_os = "none"), any(feature = "serde", test)))]
    #[inline(always)]
    pub(crate) fn uint_at_most(&mut self, max: u64) -> Option<u64> {
        let (&tag, rest) = self.rest.split_first()?;
        let (value, after) = match tag {
            0x00..=0x1e => (u64::from(tag), rest),
            0x1f => short_varint(rest)?,
            _ => return None,
        };
        if value > max {
            return None;
        }
        self.rest = after;
        Some(value)
    }

    /// A string with its length in the tag (below 31 bytes) that is all ASCII; `None` for
    /// anything else, and then the cursor has not moved. The serde deserializer's
    /// `deserialize_str` reads it first.
    #[cfg(all(not(target_os = "none"), any(feature = "serde", test)))]
    #[inline(always)]
    pub(crate) fn short_ascii_str(&mut self) -> Option<&'a str> {
        let (&tag, rest) = self.rest.split_first()?;
        let len = tag.wrapping_sub((WireType::String as u8) << 5);
        if len < EXTENDED
            && let Some((body, after)) = rest.split_at_checked(usize::from(len))
            && let Some(s) = super::utf8::ascii_str(body)
        {
            self.rest = after;
            return Some(s);
        }
        None
    }

    /// `value` for a map's values on hosts (`MapReader`): short ASCII strings on the fast
    /// path too. Only there: in `value` itself it cost the array rows (`array100/decode/
    /// reader` 3,031 -> 3,131, `array10/decode/walk` 557 -> 586).
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn map_value(&mut self, depth_left: usize) -> Result<PsonRef<'a>, Error> {
        common_scalar_fast_path!(self, Ok, true);
        let tag = self.tag()?;
        self.value_after_tag(tag, depth_left, true)
    }

    /// Reads one value. Containers are skipped over (validated when `validate`) and returned
    /// as lazy views. `depth_left` is how many more containers may be entered.
    /// (Microcontrollers: `compact.rs`.)
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn value(&mut self, depth_left: usize, validate: bool) -> Result<PsonRef<'a>, Error> {
        // Hosts: the values of `common_scalar`, expanded here rather than called (through
        // the `Option` the compiler laid the map reader's loop out worse: 297 -> 341).
        common_scalar_fast_path!(self, Ok);
        let tag = self.tag()?;
        self.value_after_tag(tag, depth_left, validate)
    }

    /// The value whose tag was just read. The common scalars here, inlined into the loops
    /// that read pairs and elements; the rest (containers recurse) out of line.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn value_after_tag(
        &mut self,
        tag: Tag,
        depth_left: usize,
        validate: bool,
    ) -> Result<PsonRef<'a>, Error> {
        match tag.wire {
            WireType::PositiveInt => Ok(PsonRef::Uint(tag.value)),
            WireType::String => Ok(PsonRef::Str(self.str_body(tag.value, validate)?)),
            WireType::Float => self.float(tag),
            // Through a copy: `self` then never has its address taken, so the loops that
            // inline this keep the cursor in registers instead of reloading it per item.
            _ => {
                // The tag in pieces: passed in registers, not stored for every item.
                let mut cold = self.clone();
                let value = cold.value_other(tag.wire, tag.small, tag.value, depth_left, validate);
                *self = cold;
                value
            }
        }
    }

    #[cfg(not(target_os = "none"))]
    #[inline(never)]
    fn value_other(
        &mut self,
        wire: WireType,
        small: u8,
        value: u64,
        depth_left: usize,
        validate: bool,
    ) -> Result<PsonRef<'a>, Error> {
        let tag = Tag { wire, small, value };
        Ok(match tag.wire {
            WireType::PositiveInt => PsonRef::Uint(tag.value),
            WireType::NegativeInt => PsonRef::Int(negate(tag.value)?),
            WireType::Float => self.float(tag)?,
            WireType::Discrete => discrete(tag.small)?,
            WireType::String => PsonRef::Str(self.str_body(tag.value, validate)?),
            WireType::Bytes => {
                let len = self.checked_count(tag.value, 1)?;
                PsonRef::Bytes(self.take(len)?)
            }
            WireType::Map if !validate => {
                // Already validated: find the end without rebuilding every value.
                let len = self.map_len(tag)?;
                let start = self.rest;
                self.skip_trusted(2 * len as u64)?;
                let body = self.since(start);
                PsonRef::Map(MapRef { body, len })
            }
            WireType::Array if !validate => {
                let len = self.array_len(tag)?;
                let start = self.rest;
                self.skip_trusted(len as u64)?;
                let body = self.since(start);
                PsonRef::Array(ArrayRef { body, len })
            }
            WireType::Map => {
                let len = self.map_len(tag)?;
                let depth = depth_left.checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
                let start = self.rest;
                // On a local copy: `self` is behind a pointer here, and the loop would
                // otherwise load and store it for every byte it reads.
                let mut local = self.clone();
                let checked = local.check_pairs(len, depth, validate);
                *self = local;
                checked?;
                PsonRef::Map(MapRef { body: self.since(start), len })
            }
            WireType::Array => {
                let len = self.array_len(tag)?;
                let depth = depth_left.checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
                let start = self.rest;
                let mut local = self.clone();
                let checked = local.check_elements(len, depth, validate);
                *self = local;
                checked?;
                PsonRef::Array(ArrayRef { body: self.since(start), len })
            }
        })
    }

    /// Reads past `len` map pairs, checking them when `validate`.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn check_pairs(&mut self, len: usize, depth: usize, validate: bool) -> Result<(), Error> {
        for _ in 0..len {
            self.key()?;
            self.skip(depth, validate)?;
        }
        Ok(())
    }

    /// Reads past `len` array elements, checking them when `validate`.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn check_elements(&mut self, len: usize, depth: usize, validate: bool) -> Result<(), Error> {
        for _ in 0..len {
            self.skip(depth, validate)?;
        }
        Ok(())
    }

    /// Skips one value, checking it when `validate`. Inlined on hosts into the validating
    /// map and array loops (the recursion goes through the out-of-line `value_other`); on
    /// microcontrollers it is a call of `value`, inlined too (−20 B on thumbv7em "z").
    #[inline(always)]
    pub(crate) fn skip(&mut self, depth_left: usize, validate: bool) -> Result<(), Error> {
        // Not through `value`'s host fast forms: they would sit in the frame of every
        // nesting level (`value_other` inlines this), and a debug build's frame then grew
        // past what the depth-limit test's 2 MiB thread allows for 256 levels.
        #[cfg(not(target_os = "none"))]
        if validate {
            if self.skip_common() {
                return Ok(());
            }
            let tag = self.tag()?;
            return self.value_after_tag(tag, depth_left, true).map(|_| ());
        }
        #[cfg(target_os = "none")]
        {
            let _ = validate;
            self.value(depth_left, true).map(|_| ())
        }
        #[cfg(not(target_os = "none"))]
        self.skip_trusted(1)
    }

    /// Moves past the next value when it is a common scalar that needs no check beyond
    /// its length (an integer below 2^21, an f32 or f64) and returns true; otherwise (anything else, or the input is
    /// short) leaves the cursor where it was and returns false. The validating pass over
    /// a map or array does not build these values, so it only finds where they end:
    /// `payload/decode/validate` 435 -> 425, `map10/decode/walk` 1,255 -> 1,188,
    /// `array100/decode/walk` 7,016 -> 6,627 instructions (callgrind).
    // Out of line in debug builds for the frame size of deep nesting (see `key`).
    #[cfg(not(target_os = "none"))]
    #[cfg_attr(debug_assertions, inline(never))]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn skip_common(&mut self) -> bool {
        let Some((&tag, rest)) = self.rest.split_first() else {
            return false;
        };
        // On the tag byte first (a chain of compares; slice patterns on the whole input
        // merged the one-byte forms into a dozen flag instructions).
        // Integers first, the two floats on one test (as a `match` the integer varints came
        // after both float compares): `array100/decode/walk` 5,370 -> 4,974, `map100`
        // 9,781 -> 9,385 instructions (callgrind).
        self.rest = if tag == 0x1f {
            match *rest.as_slice() {
                [b0, ..] if b0 < 0x80 => rest.skip(1),
                [_, b1, ..] if b1 < 0x80 => rest.skip(2),
                [_, _, b2, ..] if b2 < 0x80 => rest.skip(3),
                _ => return false,
            }
        } else if tag < 0x1f {
            rest
        } else if tag & !1 == 0x40 {
            // f32 (0x40) or f64 (0x41): 4 or 8 bytes.
            match rest.split_at_checked(4 << (tag & 1)) {
                Some((_, after)) => after,
                None => return false,
            }
        } else {
            return false;
        };
        true
    }

    /// Skips `pending` values of input that was validated before: no recursion, no UTF-8
    /// check, no values built; lengths are still bounds-checked, so it cannot panic.
    #[cfg(not(target_os = "none"))]
    pub(crate) fn skip_trusted(&mut self, mut pending: u64) -> Result<(), Error> {
        while pending > 0 {
            pending -= 1;
            let tag = self.tag()?;
            match tag.wire {
                WireType::PositiveInt | WireType::NegativeInt | WireType::Discrete => {}
                WireType::Float => {
                    self.take(if tag.small == 0 { 4 } else { 8 })?;
                }
                WireType::String | WireType::Bytes => {
                    self.take(usize::try_from(tag.value).map_err(|_| Error::LengthExceedsInput)?)?;
                }
                WireType::Map => pending = pending.saturating_add(tag.value.saturating_mul(2)),
                WireType::Array => pending = pending.saturating_add(tag.value),
            }
        }
        Ok(())
    }
}

/// A varint of one to three bytes (every count, length and integer below 2^21) at the
/// start of `rest`, and the rest after it; `None` for a longer one and when `rest` ends
/// first. With three bytes left (all but the input's last value) one length test covers
/// all three forms. In `value`'s fast path only (`tag_varint` and `skip_common` keep
/// theirs: through this the map walks got slower): `array100/decode/walk` 5,638 -> 5,450, `array100/decode/reader` 3,120 ->
/// 3,031 instructions (callgrind).
#[cfg(not(target_os = "none"))]
#[inline(always)]
fn short_varint(rest: Rest<'_>) -> Option<(u64, Rest<'_>)> {
    if let Some(&[b0, b1, b2]) = rest.first_chunk::<3>() {
        return if b0 < 0x80 {
            Some((u64::from(b0), rest.skip(1)))
        } else if b1 < 0x80 {
            Some((u64::from(b0 & 0x7f) | (u64::from(b1) << 7), rest.skip(2)))
        } else if b2 < 0x80 {
            Some((u64::from(b0 & 0x7f) | (u64::from(b1 & 0x7f) << 7) | (u64::from(b2) << 14), rest.skip(3)))
        } else {
            None
        };
    }
    match *rest.as_slice() {
        [b0, ..] if b0 < 0x80 => Some((u64::from(b0), rest.skip(1))),
        [b0, b1, ..] if b1 < 0x80 => Some((u64::from(b0 & 0x7f) | (u64::from(b1) << 7), rest.skip(2))),
        _ => None,
    }
}

/// A discrete value (false, true, null) from the low bits of its tag.
#[inline(always)]
fn discrete<'a>(small: u8) -> Result<PsonRef<'a>, Error> {
    match small {
        0 => Ok(PsonRef::Bool(false)),
        1 => Ok(PsonRef::Bool(true)),
        2 => Ok(PsonRef::Null),
        _ => Err(Error::InvalidTag(((WireType::Discrete as u8) << 5) | small)),
    }
}

#[inline]
fn negate(magnitude: u64) -> Result<i64, Error> {
    // -(2^63) is the most negative i64.
    if magnitude == 1u64 << 63 {
        Ok(i64::MIN)
    } else {
        i64::try_from(magnitude).map(|m| -m).map_err(|_| Error::IntegerOverflow)
    }
}

/// A borrowed, validated view of one PSON value.
///
/// Strings and byte strings borrow the input; maps and arrays are lazy views that iterate
/// over the input when asked. A value is validated completely (UTF-8, lengths, tags, depth)
/// when it is decoded, so later access cannot fail.
///
/// ```
/// use thinger_core::pson::PsonRef;
/// // {"nested":{"f":0.25,"list":[true,null,-2,"x"]}}
/// let bytes = [0xc1, 0x86, b'n', b'e', b's', b't', b'e', b'd', 0xc2, 0x81, b'f', 0x40, 0, 0,
///              0x80, 0x3e, 0x84, b'l', b'i', b's', b't', 0xe4, 0x61, 0x62, 0x22, 0x81, b'x'];
/// let doc = PsonRef::decode(&bytes).unwrap();
/// let nested = doc.get("nested").unwrap();
/// assert_eq!(nested.get("f").unwrap().as_f64(), Some(0.25));
/// let list: Vec<PsonRef> = nested.get("list").unwrap().as_array().unwrap().iter().collect();
/// assert_eq!(list[2], PsonRef::Int(-2));
/// assert_eq!(list[3].as_str(), Some("x"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PsonRef<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A non-negative integer (PSON type 0).
    Uint(u64),
    /// A negative integer (PSON type 1).
    Int(i64),
    /// A float sent as f32.
    F32(f32),
    /// A float sent as f64.
    F64(f64),
    /// A UTF-8 string.
    Str(&'a str),
    /// A byte string.
    Bytes(&'a [u8]),
    /// A map of string keys to values.
    Map(MapRef<'a>),
    /// An array of values.
    Array(ArrayRef<'a>),
}

impl<'a> PsonRef<'a> {
    /// Decodes exactly one value that fills `input`, with the default limits.
    ///
    /// ```
    /// use thinger_core::pson::{PsonRef, Error};
    /// assert_eq!(PsonRef::decode(&[0x1f, 0xac, 0x02]), Ok(PsonRef::Uint(300)));
    /// assert_eq!(PsonRef::decode(&[0x01, 0x02]), Err(Error::TrailingBytes));
    /// ```
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn decode(input: &'a [u8]) -> Result<Self, Error> {
        Self::decode_with(input, &DecodeOptions::new())
    }

    /// Decodes exactly one value that fills `input`, with the given limits.
    ///
    /// ```
    /// use thinger_core::pson::{DecodeOptions, PsonRef};
    /// assert_eq!(PsonRef::decode_with(&[0x61], &DecodeOptions::new()), Ok(PsonRef::Bool(true)));
    /// ```
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn decode_with(input: &'a [u8], options: &DecodeOptions) -> Result<Self, Error> {
        let (value, used) = Self::decode_prefix_with(input, options)?;
        if used != input.len() {
            return Err(Error::TrailingBytes);
        }
        Ok(value)
    }

    /// Decodes the value at the start of `input` and returns it with the number of bytes it
    /// took; anything after it is left alone (as inside an IOTMP frame body).
    ///
    /// ```
    /// use thinger_core::pson::PsonRef;
    /// assert_eq!(PsonRef::decode_prefix(&[0x61, 0xff]), Ok((PsonRef::Bool(true), 1)));
    /// ```
    pub fn decode_prefix(input: &'a [u8]) -> Result<(Self, usize), Error> {
        Self::decode_prefix_with(input, &DecodeOptions::new())
    }

    /// [`PsonRef::decode_prefix`] with the given limits.
    ///
    /// ```
    /// use thinger_core::pson::{DecodeOptions, PsonRef};
    /// let (v, n) = PsonRef::decode_prefix_with(&[0x80, 0x00], &DecodeOptions::new()).unwrap();
    /// assert_eq!((v.as_str(), n), (Some(""), 1));
    /// ```
    // Forced inline on hosts (with `decode` and `decode_with`): the caller then takes the
    // view from registers, not from a returned `Result` in memory, and the header's tests
    // meet the caller's own (`TrailingBytes`, `as_map`): `array10/decode/walk` 540 -> 509,
    // `array100` 4,777 -> 4,926, `payload/decode/walk` 484 -> 440, `validate` 284 -> 257,
    // `map10/decode/walk` 927 -> 883 instructions (callgrind). Microcontrollers keep one copy.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn decode_prefix_with(input: &'a [u8], options: &DecodeOptions) -> Result<(Self, usize), Error> {
        let mut cursor = Cursor::new(input);
        // Hosts: a top-level map or array is checked here, in line, rather than through
        // `value_other` (the same steps in the same order, so the same errors); a map with
        // its count in the tag byte first. `payload/decode/validate` 408 -> 320, `walk`
        // 609 -> 521, `map10/decode/walk` 1,116 -> 1,037, `array10/decode/walk` 671 -> 593,
        // `array100` 5,450 -> 5,370 instructions (callgrind); arrays through the general
        // header (not a short-header test first: 619 for array10), maps not (map10 1,049).
        #[cfg(not(target_os = "none"))]
        if let Some(len) = cursor.short_header(WireType::Map, 2) {
            let depth = options.depth_limit().checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
            let start = cursor.rest;
            cursor.check_pairs(len, depth, true)?;
            return Ok((PsonRef::Map(MapRef { body: cursor.since(start), len }), cursor.position()));
        }
        #[cfg(not(target_os = "none"))]
        if let Some(&first) = cursor.rest.first()
            && first >= (WireType::Map as u8) << 5
        {
            // A map or array tag (no fast path of `value` applies to it).
            let tag = cursor.tag()?;
            let map = tag.wire == WireType::Map;
            let len = if map { cursor.map_len(tag)? } else { cursor.array_len(tag)? };
            let depth = options.depth_limit().checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
            let start = cursor.rest;
            if map {
                cursor.check_pairs(len, depth, true)?;
                return Ok((PsonRef::Map(MapRef { body: cursor.since(start), len }), cursor.position()));
            }
            cursor.check_elements(len, depth, true)?;
            return Ok((PsonRef::Array(ArrayRef { body: cursor.since(start), len }), cursor.position()));
        }
        #[cfg(not(target_os = "none"))]
        {
            let value = cursor.value(options.depth_limit(), true)?;
            Ok((value, cursor.position()))
        }
        // Microcontrollers: the compact reader's result is this one (value and position),
        // passed on as it is.
        #[cfg(target_os = "none")]
        cursor.compact_value(options.depth_limit())
    }
}

mod access;
#[cfg(any(target_os = "none", test))]
mod compact;
mod views;
pub use views::{ArrayIter, ArrayRef, MapIter, MapRef};

#[cfg(test)]
mod tests;
