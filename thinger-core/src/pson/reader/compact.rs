//! The validating reader of microcontrollers: one recursive function for every type, with
//! the bodies of strings, byte strings, maps and arrays behind one length check.
//!
//! Hosts keep the fast paths of the parent module. Microcontrollers read every value the
//! validating way, also where the input was validated before: then `skip_trusted` is not
//! linked (248 B on thumbv7em "z", docs/footprint.md), at the cost of checking a nested
//! container again. The checks and their order are the hosts': a tag, then a length or
//! count the rest can hold, then the depth, then each item; a map key must be a string.

use super::super::{Error, WireType, utf8};
use super::{ArrayRef, Cursor, MapRef, PsonRef, Tag, discrete, negate};

impl<'a> Cursor<'a> {
    /// Reads one value. Containers are validated and returned as lazy views; `depth_left`
    /// is how many more containers may be entered.
    // Forced inline: out of line it was a 52-byte function copying the value out of the
    // compact reader's result.
    #[cfg(target_os = "none")]
    #[inline(always)]
    pub(crate) fn value(&mut self, depth_left: usize, _validate: bool) -> Result<PsonRef<'a>, Error> {
        self.compact_value(depth_left).map(|(value, _)| value)
    }

    /// The value whose tag was just read (the serde deserializer's scalars).
    #[cfg(all(target_os = "none", feature = "serde"))]
    #[inline]
    pub(crate) fn value_after_tag(
        &mut self,
        tag: Tag,
        depth_left: usize,
        _validate: bool,
    ) -> Result<PsonRef<'a>, Error> {
        self.compact_after_tag(tag, depth_left)
    }

    /// One value, read and validated by the compact reader (hosts: in tests only, against
    /// their own reader), with the position after it: the result of
    /// `PsonRef::decode_prefix_with` as it is, which then only passes it on (no copy).
    pub(crate) fn compact_value(&mut self, depth_left: usize) -> Result<(PsonRef<'a>, usize), Error> {
        let tag = self.tag()?;
        let value = self.compact_after_tag(tag, depth_left)?;
        Ok((value, self.position()))
    }

    /// `checked_count` in the native width: a length, or a count of items (a map pair at
    /// least two bytes), that the rest can hold; the same errors.
    fn compact_count(&self, count: u64, map: bool) -> Result<usize, Error> {
        let remaining = self.remaining();
        let max = if map { remaining / 2 } else { remaining };
        if count > max as u64 {
            // `checked_count` doubles a map's count first: past 2^64 that is a length error.
            let truncated = remaining == 0 && !(map && count >> 63 != 0);
            return Err(if truncated { Error::Truncated } else { Error::LengthExceedsInput });
        }
        Ok(count as usize)
    }

    /// The value whose tag was just read; containers recurse through `compact_value`.
    fn compact_after_tag(&mut self, tag: Tag, depth_left: usize) -> Result<PsonRef<'a>, Error> {
        let map = tag.wire == WireType::Map;
        Ok(match tag.wire {
            WireType::PositiveInt => PsonRef::Uint(tag.value),
            WireType::NegativeInt => PsonRef::Int(negate(tag.value)?),
            WireType::Float => self.float(tag)?,
            WireType::Discrete => discrete(tag.small)?,
            // Length-prefixed: a byte count, or a count of items (a map pair needs two bytes).
            wire => {
                let len = self.compact_count(tag.value, map)?;
                // `len` fits (checked just above): the body cannot fail to split off.
                if !matches!(wire, WireType::Map | WireType::Array) {
                    let body = self.take(len).unwrap_or_default();
                    return Ok(if wire == WireType::String {
                        PsonRef::Str(utf8::to_str(body)?)
                    } else {
                        PsonRef::Bytes(body)
                    });
                }
                let depth = depth_left.checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
                let start = self.rest;
                // A map's keys and values in one loop: an even count left means a key next.
                let mut items = if map { len << 1 } else { len };
                while items > 0 {
                    if map
                        && items & 1 == 0
                        && self.rest.first().map(|&b| WireType::from_tag(b)) != Some(WireType::String)
                    {
                        // The hosts' order: the tag's own errors (truncation, its varint) first.
                        self.tag()?;
                        return Err(Error::NonStringKey);
                    }
                    self.compact_value(depth)?;
                    items -= 1;
                }
                let body = self.since(start);
                if map { PsonRef::Map(MapRef { body, len }) } else { PsonRef::Array(ArrayRef { body, len }) }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::DecodeOptions;
    use super::*;
    use proptest::prelude::*;

    /// The compact reader against the hosts' `Cursor::value`: same value (floats by their
    /// bits), same error, same position after a value, at depth limits 0 to 3.
    fn same_as_hosts(bytes: &[u8]) {
        for depth in 0..4 {
            let depth = DecodeOptions::new().max_depth(depth).depth_limit();
            let mut compact = Cursor::new(bytes);
            let mut host = Cursor::new(bytes);
            let (got, want) = (compact.compact_value(depth), host.value(depth, true));
            // The position it returns is where the cursor stopped.
            if let Ok((_, at)) = got {
                assert_eq!(at, compact.position(), "{bytes:02x?} {depth}");
            }
            let got = got.map(|(v, _)| v);
            match (got, want) {
                (Ok(PsonRef::F32(a)), Ok(PsonRef::F32(b))) => assert_eq!(a.to_bits(), b.to_bits(), "{bytes:02x?}"),
                (Ok(PsonRef::F64(a)), Ok(PsonRef::F64(b))) => assert_eq!(a.to_bits(), b.to_bits(), "{bytes:02x?}"),
                (got, want) => assert_eq!(got, want, "{bytes:02x?} {depth}"),
            }
            if got.is_ok() {
                assert_eq!(compact.position(), host.position(), "{bytes:02x?} {depth}");
            }
        }
    }

    #[test]
    fn every_header_with_bodies_cut_at_every_length() {
        let body = [
            0x81, b'k', 0x1f, 0xac, 0x02, 0x82, 0xc3, 0xa9, 0xe1, 0x3f, 0x81, b'k', 0x41, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
            0x80, 0xa2, 1, 2, 0x62, 0xc1, 0x01, 0x00,
        ];
        for header in 0..=0xffu8 {
            for cut in 0..=body.len() {
                let mut bytes = std::vec![header];
                bytes.extend_from_slice(&body[..cut]);
                same_as_hosts(&bytes);
            }
        }
        // Nested past the limit, and keys that are not strings (with a bad varint first).
        same_as_hosts(&[0xe1, 0xe1, 0xe1, 0xe1, 0xe0]);
        same_as_hosts(&[0xc1, 0xc1, 0x81, b'k', 0x00, 0x00]);
        same_as_hosts(&[0xc1, 0x1f, 0x80]);
        same_as_hosts(&[0xc1, 0x1f, 0x80, 0x01, 0x00]);
        same_as_hosts(&[0xc1, 0x9f, 0x80]);
        // Counts at the edges of the native width and of the doubling, with and without
        // input left after them.
        for count in [1u64 << 31, 1 << 32, (1 << 63) - 1, 1 << 63, u64::MAX] {
            let (varint, n) = crate::varint::to_array(count);
            for header in [0xdf, 0xff, 0x9f, 0xbf] {
                let mut bytes = std::vec![header];
                bytes.extend_from_slice(&varint[..n]);
                same_as_hosts(&bytes);
                bytes.push(0x00);
                same_as_hosts(&bytes);
            }
        }
    }

    /// The microcontrollers' `Cursor::tag` against the hosts': same tag or error, and the
    /// same position after a tag.
    fn same_tag_as_hosts(bytes: &[u8]) {
        let (mut compact, mut host) = (Cursor::new(bytes), Cursor::new(bytes));
        let (got, want) = (compact.tag_compact(), host.tag());
        match (got, want) {
            (Ok(a), Ok(b)) => {
                assert_eq!((a.wire, a.small, a.value), (b.wire, b.small, b.value), "{bytes:02x?}");
                assert_eq!(compact.position(), host.position(), "{bytes:02x?}");
            }
            (got, want) => assert_eq!(got.err(), want.err(), "{bytes:02x?}"),
        }
    }

    #[test]
    fn tags_agree_with_the_hosts() {
        // Every tag byte, then a varint of 0 to 11 bytes (every last byte), cut short too.
        for header in 0..=0xffu8 {
            for len in 0..=11 {
                for last in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff] {
                    let mut bytes = std::vec![header];
                    bytes.extend(core::iter::repeat_n(0xffu8, len));
                    bytes.push(last);
                    for cut in 0..=bytes.len() {
                        same_tag_as_hosts(&bytes[..cut]);
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn tags_agree_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..14)) {
            same_tag_as_hosts(&bytes);
        }

        #[test]
        fn agrees_with_the_hosts_reader(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            same_as_hosts(&bytes);
        }

        #[test]
        fn agrees_on_containers(tail in proptest::collection::vec(prop_oneof![any::<u8>(), 0x80..=0x83u8, 0xc0..=0xe3u8, 0..=0x1fu8], 0..48), header in 0xc0..=0xffu8) {
            let mut bytes = std::vec![header];
            bytes.extend_from_slice(&tail);
            same_as_hosts(&bytes);
        }
    }
}
