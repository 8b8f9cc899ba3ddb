//! Single-pass readers of a top-level map or array: validate while reading.
//!
//! [`PsonRef::decode`] validates the whole value before handing out a view, and iterating
//! the view reads the input a second time. When every field is read once anyway (the common
//! case for a request body or a stream sample), [`MapReader`] and [`ArrayReader`] read it
//! once: each pair or element is checked (tags, lengths, UTF-8, depth) as it is returned,
//! and after the last one the reader checks that nothing follows. A nested map or array is
//! validated in full when its pair or element is read, and returned as a lazy view.
//!
//! The price of one pass: the pairs before a bad one have already been handed out when the
//! error comes. Code that must not act on any part of an invalid document should use
//! [`PsonRef::decode`] first.

use super::reader::{Cursor, DecodeOptions, PsonRef};
use super::{Error, WireType};

/// Reads the pairs of a top-level PSON map in one pass.
///
/// Yields `Ok((key, value))` for each pair, then, if bytes follow the map,
/// `Err(Error::TrailingBytes)`; after any error it yields nothing more.
///
/// ```
/// use thinger_core::pson::{Error, MapReader, PsonRef};
/// // {"humidity": 60, "label": "outdoor"}
/// let bytes = [0xc2, 0x88, b'h', b'u', b'm', b'i', b'd', b'i', b't', b'y', 0x1f, 0x3c,
///              0x85, b'l', b'a', b'b', b'e', b'l', 0x87, b'o', b'u', b't', b'd', b'o', b'o', b'r'];
/// let mut humidity = None;
/// for pair in MapReader::new(&bytes)? {
///     let (key, value) = pair?;
///     if key == "humidity" {
///         humidity = value.as_u64();
///     }
/// }
/// assert_eq!(humidity, Some(60));
/// assert_eq!(MapReader::new(&[0x01]).unwrap_err(), Error::UnexpectedType);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MapReader<'a> {
    cursor: Cursor<'a>,
    left: usize,
    /// Depth left for the values (the map itself took one level).
    depth: usize,
    done: bool,
}

impl<'a> MapReader<'a> {
    /// Reads the map header at the start of `input`, with the default limits.
    ///
    /// Errors: [`Error::UnexpectedType`] when `input` does not start with a map, or the
    /// header's own errors (truncation, a count the input cannot hold).
    #[inline]
    pub fn new(input: &'a [u8]) -> Result<Self, Error> {
        Self::with_options(input, &DecodeOptions::new())
    }

    /// Reads the map header at the start of `input`, with the given limits (the map
    /// counts as one level of depth).
    ///
    /// ```
    /// use thinger_core::pson::{DecodeOptions, Error, MapReader};
    /// assert_eq!(MapReader::with_options(&[0xc0], &DecodeOptions::new().max_depth(0)).unwrap_err(),
    ///            Error::DepthLimitExceeded);
    /// ```
    #[inline]
    pub fn with_options(input: &'a [u8], options: &DecodeOptions) -> Result<Self, Error> {
        let mut cursor = Cursor::new(input);
        // Hosts: a header with the count in the tag byte, first (see `Cursor::short_header`).
        #[cfg(not(target_os = "none"))]
        if let Some(left) = cursor.short_header(WireType::Map, 2) {
            let depth = options.depth_limit().checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
            return Ok(MapReader { cursor, left, depth, done: false });
        }
        let tag = cursor.tag()?;
        if tag.wire != WireType::Map {
            return Err(Error::UnexpectedType);
        }
        let depth = options.depth_limit().checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
        let left = cursor.map_len(tag)?;
        Ok(MapReader { cursor, left, depth, done: false })
    }

    /// Pairs not read yet.
    ///
    /// ```
    /// let reader = thinger_core::pson::MapReader::new(&[0xc1, 0x81, b'a', 0x01]).unwrap();
    /// assert_eq!(reader.len(), 1);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether every pair was read.
    ///
    /// ```
    /// assert!(thinger_core::pson::MapReader::new(&[0xc0]).unwrap().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    // Forced on hosts (with the two-pointer cursor: payload reader 298 -> 288, map10
    // 630 -> 577, array10 373 -> 320 instructions); as before on microcontrollers.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn pair(&mut self) -> Result<(&'a str, PsonRef<'a>), Error> {
        #[cfg(not(target_os = "none"))]
        let key = self.cursor.key()?;
        // Microcontrollers: the general read written out, as before the host fast path.
        #[cfg(target_os = "none")]
        let key = {
            let key = self.cursor.tag()?;
            if key.wire != WireType::String {
                return Err(Error::NonStringKey);
            }
            self.cursor.str_body(key.value, true)?
        };
        #[cfg(not(target_os = "none"))]
        let value = self.cursor.map_value(self.depth)?;
        #[cfg(target_os = "none")]
        let value = self.cursor.value(self.depth, true)?;
        Ok((key, value))
    }
}

impl<'a> Iterator for MapReader<'a> {
    type Item = Result<(&'a str, PsonRef<'a>), Error>;

    // Forced on hosts (with the two-pointer cursor: payload reader 298 -> 288, map10
    // 630 -> 577, array10 373 -> 320 instructions); as before on microcontrollers.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return end(&mut self.done, &self.cursor);
        }
        self.left -= 1;
        let pair = self.pair();
        if pair.is_err() {
            self.left = 0;
            self.done = true;
        }
        Some(pair)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left + usize::from(!self.done)))
    }
}

/// Reads the elements of a top-level PSON array in one pass; see [`MapReader`].
///
/// ```
/// use thinger_core::pson::{ArrayReader, Error};
/// let sum = ArrayReader::new(&[0xe3, 0x01, 0x02, 0x03])?
///     .map(|e| e.map(|v| v.as_u64().unwrap_or(0)))
///     .sum::<Result<u64, Error>>()?;
/// assert_eq!(sum, 6);
/// let trailing: Vec<_> = ArrayReader::new(&[0xe0, 0x00])?.collect();
/// assert_eq!(trailing, [Err(Error::TrailingBytes)]);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ArrayReader<'a> {
    cursor: Cursor<'a>,
    left: usize,
    depth: usize,
    done: bool,
}

impl<'a> ArrayReader<'a> {
    /// Reads the array header at the start of `input`, with the default limits.
    ///
    /// Errors: [`Error::UnexpectedType`] when `input` does not start with an array, or the
    /// header's own errors.
    #[inline]
    pub fn new(input: &'a [u8]) -> Result<Self, Error> {
        Self::with_options(input, &DecodeOptions::new())
    }

    /// Reads the array header at the start of `input`, with the given limits.
    ///
    /// ```
    /// use thinger_core::pson::{ArrayReader, DecodeOptions};
    /// assert!(ArrayReader::with_options(&[0xe0], &DecodeOptions::new().max_depth(1)).is_ok());
    /// ```
    #[inline]
    pub fn with_options(input: &'a [u8], options: &DecodeOptions) -> Result<Self, Error> {
        let mut cursor = Cursor::new(input);
        // Hosts: a header with the count in the tag byte, first (see `Cursor::short_header`).
        #[cfg(not(target_os = "none"))]
        if let Some(left) = cursor.short_header(WireType::Array, 1) {
            let depth = options.depth_limit().checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
            return Ok(ArrayReader { cursor, left, depth, done: false });
        }
        let tag = cursor.tag()?;
        if tag.wire != WireType::Array {
            return Err(Error::UnexpectedType);
        }
        let depth = options.depth_limit().checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
        let left = cursor.array_len(tag)?;
        Ok(ArrayReader { cursor, left, depth, done: false })
    }

    /// Elements not read yet.
    ///
    /// ```
    /// assert_eq!(thinger_core::pson::ArrayReader::new(&[0xe1, 0x01]).unwrap().len(), 1);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether every element was read.
    ///
    /// ```
    /// assert!(thinger_core::pson::ArrayReader::new(&[0xe0]).unwrap().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl<'a> Iterator for ArrayReader<'a> {
    type Item = Result<PsonRef<'a>, Error>;

    // Forced on hosts (with the two-pointer cursor: payload reader 298 -> 288, map10
    // 630 -> 577, array10 373 -> 320 instructions); as before on microcontrollers.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return end(&mut self.done, &self.cursor);
        }
        self.left -= 1;
        let value = self.cursor.value(self.depth, true);
        if value.is_err() {
            self.left = 0;
            self.done = true;
        }
        Some(value)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left + usize::from(!self.done)))
    }
}

/// After the last pair or element: `TrailingBytes` once if input is left, then nothing.
#[inline]
fn end<T>(done: &mut bool, cursor: &Cursor<'_>) -> Option<Result<T, Error>> {
    if core::mem::replace(done, true) || cursor.remaining() == 0 { None } else { Some(Err(Error::TrailingBytes)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the one-pass readers give, as the two-pass decode would: the pairs, or the
    /// first error.
    fn pairs_one_pass(bytes: &[u8]) -> Result<std::vec::Vec<(&str, PsonRef<'_>)>, Error> {
        MapReader::new(bytes)?.collect()
    }

    fn pairs_two_pass(bytes: &[u8]) -> Result<std::vec::Vec<(&str, PsonRef<'_>)>, Error> {
        let map = PsonRef::decode(bytes)?.as_map().ok_or(Error::UnexpectedType)?;
        Ok(map.iter().collect())
    }

    #[test]
    fn errors_match_the_validating_decode() {
        let cases: &[&[u8]] = &[
            &[0xc1, 0x81, b'a', 0x01, 0x00],       // trailing byte
            &[0xc1, 0x01, 0x01],                   // non-string key
            &[0xc1, 0x82, 0xff, 0xfe, 0x01],       // bad UTF-8 key
            &[0xc1, 0x81, b'a', 0x82, 0xc3, 0x28], // bad UTF-8 value
            &[0xc2, 0x81, b'a', 0x01],             // truncated
            &[0xc1, 0x81, b'a', 0x42],             // bad float tag
            &[0xc1, 0x81, b'a', 0xe1, 0xe1, 0xe0], // nested, fine
        ];
        for bytes in cases {
            assert_eq!(pairs_one_pass(bytes), pairs_two_pass(bytes), "{bytes:02x?}");
        }
        let mut deep = std::vec![0xc1, 0x81, b'k'];
        deep.extend(std::iter::repeat_n(0xe1, crate::pson::DEFAULT_MAX_DEPTH - 1));
        deep.push(0xe0);
        assert_eq!(pairs_one_pass(&deep), Err(Error::DepthLimitExceeded));
        assert_eq!(pairs_two_pass(&deep), Err(Error::DepthLimitExceeded));
    }

    /// A `max_depth` above the ceiling is capped, as in `PsonRef::decode_with` (the readers
    /// took it as given, so a hostile input nested deeper recursed without bound).
    #[test]
    fn the_depth_ceiling_holds_whatever_max_depth_says() {
        let options = DecodeOptions::new().max_depth(usize::MAX);
        let over = crate::pson::MAX_DEPTH_CEILING + 1;
        let mut map = std::vec![0xc1, 0x81, b'k'];
        map.extend(std::iter::repeat_n(0xe1, over - 1));
        map.push(0xe0);
        assert_eq!(PsonRef::decode_with(&map, &options).err(), Some(Error::DepthLimitExceeded));
        let pairs: Result<std::vec::Vec<_>, _> = MapReader::with_options(&map, &options).and_then(|r| r.collect());
        assert_eq!(pairs.err(), Some(Error::DepthLimitExceeded));
        let mut array = std::vec![0xe1];
        array.extend(std::iter::repeat_n(0xe1, over - 1));
        array.push(0xe0);
        assert_eq!(PsonRef::decode_with(&array, &options).err(), Some(Error::DepthLimitExceeded));
        let items: Result<std::vec::Vec<_>, _> = ArrayReader::with_options(&array, &options).and_then(|r| r.collect());
        assert_eq!(items.err(), Some(Error::DepthLimitExceeded));
    }

    /// `Cursor::key` without its fast path: what it must agree with.
    fn key_general<'a>(cursor: &mut Cursor<'a>) -> Result<&'a str, Error> {
        let tag = cursor.tag()?;
        if tag.wire != WireType::String {
            return Err(Error::NonStringKey);
        }
        cursor.str_body(tag.value, true)
    }

    /// Every header byte with 0 to 70 bytes after it, at depth limits 0 to 2: the readers
    /// (with the hosts' short-header path) give what the general header read gives.
    #[test]
    fn headers_agree_with_the_general_read() {
        fn general(bytes: &[u8], wire: WireType, depth: usize) -> Result<(usize, usize), Error> {
            let mut cursor = Cursor::new(bytes);
            let tag = cursor.tag()?;
            if tag.wire != wire {
                return Err(Error::UnexpectedType);
            }
            depth.checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
            let len = if wire == WireType::Map { cursor.map_len(tag)? } else { cursor.array_len(tag)? };
            Ok((len, cursor.remaining()))
        }
        for byte in 0..=255u8 {
            for after in 0..70usize {
                let mut bytes = std::vec![byte];
                bytes.extend((0..after).map(|i| if i == 0 { 0x05 } else { 0x01 }));
                for depth in 0..3 {
                    let options = DecodeOptions::new().max_depth(depth);
                    let map = MapReader::with_options(&bytes, &options).map(|r| (r.left, r.cursor.remaining()));
                    assert_eq!(map, general(&bytes, WireType::Map, depth), "{bytes:02x?} {depth}");
                    let array = ArrayReader::with_options(&bytes, &options).map(|r| (r.left, r.cursor.remaining()));
                    assert_eq!(array, general(&bytes, WireType::Array, depth), "{bytes:02x?} {depth}");
                }
            }
        }
    }

    fn same_key(bytes: &[u8]) {
        let mut fast = Cursor::new(bytes);
        let mut general = fast.clone();
        let got = fast.key();
        assert_eq!(got, key_general(&mut general), "{bytes:02x?}");
        if got.is_ok() {
            assert_eq!(fast.position(), general.position(), "{bytes:02x?}");
        }
    }

    #[test]
    fn keys_of_every_length_truncated_at_every_byte() {
        for len in 0..40usize {
            for high in [None, Some(0usize), Some(len / 2), len.checked_sub(1)] {
                let mut body: std::vec::Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                if let Some(at) = high.filter(|&at| at < len) {
                    body[at] = 0xc3; // not ASCII; valid UTF-8 only with a continuation byte
                }
                let mut bytes = if len < 31 { std::vec![0x80 | len as u8] } else { std::vec![0x9f, len as u8] };
                bytes.extend_from_slice(&body);
                // What follows the key (the fast path loads up to 16 bytes past the tag):
                // ASCII, or high bytes that must not count against the key.
                for after in [0x01u8, 0xff] {
                    let mut bytes = bytes.clone();
                    bytes.extend(core::iter::repeat_n(after, 17));
                    for cut in 0..=bytes.len() {
                        same_key(&bytes[..cut]);
                    }
                }
            }
        }
        same_key(&[0x01, 0x81, b'a']); // not a string
        same_key(&[0x9f]); // extended length, truncated
    }

    proptest! {
        #[test]
        fn value_fast_path_agrees_with_the_general_one(mut bytes in proptest::collection::vec(any::<u8>(), 0..16), tag in prop_oneof![0x00u8..0x20, 0x40u8..0x42, any::<u8>()]) {
            if let Some(first) = bytes.first_mut() {
                *first = tag;
            }
            same_value(&bytes);
            same_skip(&bytes);
        }

        #[test]
        fn key_fast_path_agrees_with_the_general_one(mut bytes in proptest::collection::vec(any::<u8>(), 0..48), tag in 0x70u8..0xb0) {
            if let Some(first) = bytes.first_mut() {
                *first = tag;
            }
            same_key(&bytes);
        }
    }

    /// A value read by `Cursor::value` (with its host fast forms) and by the general path
    /// alone: same value, same error, same position.
    fn same_value(bytes: &[u8]) {
        let mut fast = Cursor::new(bytes);
        let mut general = fast.clone();
        let got = fast.value(4, true);
        let want = general.tag().and_then(|tag| general.value_after_tag(tag, 4, true));
        // Floats by their bits (NaN is not equal to itself).
        match (got, want) {
            (Ok(PsonRef::F32(a)), Ok(PsonRef::F32(b))) => assert_eq!(a.to_bits(), b.to_bits(), "{bytes:02x?}"),
            (Ok(PsonRef::F64(a)), Ok(PsonRef::F64(b))) => assert_eq!(a.to_bits(), b.to_bits(), "{bytes:02x?}"),
            (got, want) => assert_eq!(got, want, "{bytes:02x?}"),
        }
        if got.is_ok() {
            assert_eq!(fast.position(), general.position(), "{bytes:02x?}");
        }
        // The map reader's value (short strings on the fast path too).
        let mut map = Cursor::new(bytes);
        let got = map.value(4, true);
        let mut fast = Cursor::new(bytes);
        match (fast.map_value(4), got) {
            (Ok(PsonRef::F32(a)), Ok(PsonRef::F32(b))) => assert_eq!(a.to_bits(), b.to_bits(), "{bytes:02x?}"),
            (Ok(PsonRef::F64(a)), Ok(PsonRef::F64(b))) => assert_eq!(a.to_bits(), b.to_bits(), "{bytes:02x?}"),
            (m, got) => {
                assert_eq!(m, got, "{bytes:02x?}");
                if m.is_ok() {
                    assert_eq!(fast.position(), map.position(), "{bytes:02x?}");
                }
            }
        }
    }

    /// A value skipped by the validating `Cursor::skip` (with its host fast forms) and read
    /// by the general path: same error, same position.
    fn same_skip(bytes: &[u8]) {
        let mut fast = Cursor::new(bytes);
        let mut general = fast.clone();
        let got = fast.skip(4, true);
        let want = general.tag().and_then(|tag| general.value_after_tag(tag, 4, true)).map(|_| ());
        assert_eq!(got, want, "{bytes:02x?}");
        if got.is_ok() {
            assert_eq!(fast.position(), general.position(), "{bytes:02x?}");
        }
    }

    #[test]
    fn common_scalars_truncated_at_every_byte() {
        let mut cases: std::vec::Vec<std::vec::Vec<u8>> = std::vec::Vec::new();
        for small in 0..=0x1fu8 {
            cases.push(std::vec![small, 0x01]);
        }
        for value in [31u64, 60, 127, 128, 1013, 0x3fff, 0x4000, 0x1f_ffff, 0x20_0000, u64::MAX] {
            let mut bytes = std::vec![0x1f];
            let mut v = value;
            while v >= 0x80 {
                bytes.push(v as u8 | 0x80);
                v >>= 7;
            }
            bytes.push(v as u8);
            cases.push(bytes);
        }
        cases.push(std::vec![0x1f, 0x85, 0x00]); // non-minimal varint
        cases.push(std::vec![0x40, 0, 0, 0xbc, 0x41]);
        cases.push(std::vec![0x41, 0, 0, 0, 0, 0, 0, 0x37, 0x40]);
        cases.push(std::vec![0x42]);
        // Strings: empty, short ASCII, non-ASCII, bad UTF-8, the longest inline length.
        for body in [&b""[..], b"outdoor", "d\u{e9}j\u{e0}".as_bytes(), &[0x61, 0xff, 0x62], &[b'x'; 30]] {
            let mut bytes = std::vec![0x80 | body.len() as u8];
            bytes.extend_from_slice(body);
            cases.push(bytes);
        }
        for bytes in &cases {
            for cut in 0..=bytes.len() {
                same_value(&bytes[..cut]);
                same_skip(&bytes[..cut]);
            }
        }
        // One to three bytes after each (the hosts' varint path tests for three bytes at
        // once): the value stops before them.
        for bytes in &cases {
            let mut longer = bytes.clone();
            for _ in 0..3 {
                longer.push(0x62);
                same_value(&longer);
                same_skip(&longer);
            }
        }
    }

    #[test]
    fn nothing_after_an_error() {
        let mut reader = MapReader::new(&[0xc2, 0x01, 0x01, 0x81, b'a', 0x01]).unwrap();
        assert_eq!(reader.next(), Some(Err(Error::NonStringKey)));
        assert_eq!(reader.next(), None);
        let mut array = ArrayReader::new(&[0xe2, 0x42, 0x01]).unwrap();
        assert_eq!(array.next(), Some(Err(Error::InvalidTag(0x42))));
        assert_eq!(array.next(), None);
    }

    proptest! {
        #[test]
        fn one_pass_agrees_with_two_passes(mut bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Mostly maps and arrays at the top, so the readers get past their header.
            if let Some(first) = bytes.first_mut() {
                *first = if *first & 1 == 0 { 0xc0 | (*first >> 4) } else { 0xe0 | (*first >> 4) };
            }
            if bytes.first().is_some_and(|b| b >> 5 == 6) {
                prop_assert_eq!(pairs_one_pass(&bytes), pairs_two_pass(&bytes));
            } else {
                let one: Result<std::vec::Vec<_>, Error> = ArrayReader::new(&bytes).and_then(|r| r.collect());
                let two = PsonRef::decode(&bytes)
                    .and_then(|v| v.as_array().ok_or(Error::UnexpectedType))
                    .map(|a| a.iter().collect::<std::vec::Vec<_>>());
                prop_assert_eq!(one, two);
            }
        }
    }
}
