//! Unsigned LEB128 varints, as used by IOTMP headers, fields and PSON tags.
//!
//! ```
//! use thinger_core::varint;
//!
//! let mut buf = [0u8; varint::MAX_LEN_U64];
//! let n = varint::encode_u64(300, &mut buf).unwrap();
//! assert_eq!(&buf[..n], &[0xac, 0x02]);
//! assert_eq!(varint::decode_u64(&buf[..n]), Ok(Some((300, 2))));
//! ```

/// Longest varint that can hold a `u64`.
pub const MAX_LEN_U64: usize = 10;
/// Longest varint that can hold a `u32`.
pub const MAX_LEN_U32: usize = 5;

/// A varint that cannot be represented in the requested width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Overflow;

impl core::fmt::Display for Overflow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("varint overflows its integer width")
    }
}

/// Number of bytes `value` takes as a varint.
///
/// ```
/// assert_eq!(thinger_core::varint::len_u64(127), 1);
/// assert_eq!(thinger_core::varint::len_u64(128), 2);
/// ```
#[inline]
pub const fn len_u64(value: u64) -> usize {
    // Bits needed, rounded up to groups of 7 (at least one byte).
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes `value` into `out`, returning the number of bytes written, or `None` when `out`
/// is too short.
///
/// ```
/// let mut buf = [0u8; 1];
/// assert_eq!(thinger_core::varint::encode_u64(300, &mut buf), None);
/// ```
#[inline]
pub fn encode_u64(mut value: u64, out: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    loop {
        let slot = out.get_mut(n)?;
        n += 1;
        if value < 0x80 {
            *slot = value as u8;
            return Some(n);
        }
        *slot = (value as u8 & 0x7f) | 0x80;
        value >>= 7;
    }
}

/// Encodes `value` into a small stack array, returning the array and the used length.
///
/// ```
/// let (bytes, len) = thinger_core::varint::to_array(1);
/// assert_eq!(&bytes[..len], &[1]);
/// ```
#[cfg_attr(target_os = "none", inline(never))]
pub fn to_array(value: u64) -> ([u8; MAX_LEN_U64], usize) {
    let mut bytes = [0u8; MAX_LEN_U64];
    let len = encode_u64(value, &mut bytes).unwrap_or(0);
    (bytes, len)
}

/// Decodes a `u64` varint from the start of `input`.
///
/// Returns `Ok(Some((value, bytes_read)))`, `Ok(None)` when `input` ends before the varint
/// does (more bytes are needed), or [`Overflow`] when the varint is longer than 10 bytes or
/// its value does not fit in 64 bits.
///
/// ```
/// use thinger_core::varint::decode_u64;
/// assert_eq!(decode_u64(&[0x80]), Ok(None));
/// assert!(decode_u64(&[0xff; 11]).is_err());
/// ```
#[cfg(not(target_os = "none"))]
#[inline]
pub fn decode_u64(input: &[u8]) -> Result<Option<(u64, usize)>, Overflow> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        if i == MAX_LEN_U64 - 1 && byte > 0x01 {
            // The tenth byte may carry only the 64th bit.
            return Err(Overflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if input.len() >= MAX_LEN_U64 {
        return Err(Overflow);
    }
    Ok(None)
}

/// Decodes a `u64` varint from the start of `input` (microcontrollers; the contract of the
/// hosts' version).
#[cfg(target_os = "none")]
#[inline]
pub fn decode_u64(input: &[u8]) -> Result<Option<(u64, usize)>, Overflow> {
    decode_backwards(input, MAX_LEN_U64)
}

/// The microcontrollers' `decode_u64` (`max_len` 10) and `decode_u32` (5), compiled on
/// hosts for the differential tests: the end of the varint is found first, then the value
/// is built from its last byte down, `value << 7` each step. A shift by a constant is a few
/// 32-bit instructions, where `bits << (7 * i)` is a call of the 64-bit shift routine
/// (`__aeabi_llsl` on Arm, `__ashldi3` on RISC-V) at opt-level "z". One function for both
/// widths: the last byte of the longest form may carry only the bits left of the width
/// (one of 64, four of 32), so a value that passes fits.
#[cfg(any(target_os = "none", test))]
#[cfg_attr(target_os = "none", inline(never))]
fn decode_backwards(input: &[u8], max_len: usize) -> Result<Option<(u64, usize)>, Overflow> {
    let window = input.get(..max_len).unwrap_or(input);
    let Some(last) = window.iter().position(|&byte| byte & 0x80 == 0) else {
        // No end in the first `max_len` bytes: too long, or more bytes are needed.
        return if window.len() == max_len { Err(Overflow) } else { Ok(None) };
    };
    let bytes = window.get(..=last).unwrap_or(window);
    let last_max = if max_len == MAX_LEN_U64 { 0x01 } else { 0x0f };
    // The end byte read from the window at `last` (the compiler then drops the test that
    // `bytes` is not empty: −4 B on thumbv7em "z").
    if last == max_len - 1 && window.get(last).is_some_and(|&byte| byte > last_max) {
        return Err(Overflow);
    }
    let value = bytes.iter().rev().fold(0u64, |value, &byte| (value << 7) | u64::from(byte & 0x7f));
    Ok(Some((value, last + 1)))
}

/// The hosts' `decode_u64` as the tests' reference for `decode_backwards`.
#[cfg(test)]
fn decode_u64_backwards(input: &[u8]) -> Result<Option<(u64, usize)>, Overflow> {
    decode_backwards(input, MAX_LEN_U64)
}

/// Decodes a `u32` varint (at most 5 bytes) from the start of `input`; see [`decode_u64`].
///
/// ```
/// use thinger_core::varint::decode_u32;
/// assert_eq!(decode_u32(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok(Some((u32::MAX, 5))));
/// assert!(decode_u32(&[0xff, 0xff, 0xff, 0xff, 0x1f]).is_err());
/// ```
#[cfg(not(target_os = "none"))]
#[inline]
pub fn decode_u32(input: &[u8]) -> Result<Option<(u32, usize)>, Overflow> {
    let window = input.get(..MAX_LEN_U32).unwrap_or(input);
    match decode_u64(window)? {
        Some((value, n)) => u32::try_from(value).map(|v| Some((v, n))).map_err(|_| Overflow),
        None if window.len() == MAX_LEN_U32 => Err(Overflow),
        None => Ok(None),
    }
}

/// Decodes a `u32` varint (at most 5 bytes) from the start of `input`; see [`decode_u64`].
// Microcontrollers: the `u64` decoder's code with a 5-byte limit (its last byte checked
// for the four bits left), so the value fits and is only narrowed.
#[cfg(target_os = "none")]
#[inline]
pub fn decode_u32(input: &[u8]) -> Result<Option<(u32, usize)>, Overflow> {
    decode_backwards(input, MAX_LEN_U32).map(|v| v.map(|(value, n)| (value as u32, n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        let (b, n) = to_array(1);
        assert_eq!(&b[..n], &[1]);
        let (b, n) = to_array(u64::MAX);
        assert_eq!(&b[..n], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(len_u64(0), 1);
        assert_eq!(len_u64(u64::MAX), 10);
    }

    #[test]
    fn rejects_overlong() {
        assert_eq!(decode_u64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), Err(Overflow));
        assert_eq!(decode_u64(&[0x80; 10]), Err(Overflow));
        assert_eq!(decode_u32(&[0x80, 0x80, 0x80, 0x80, 0x80]), Err(Overflow));
        assert_eq!(decode_u32(&[0x80, 0x80]), Ok(None));
    }

    #[test]
    fn backwards_matches_at_the_tenth_byte() {
        // Every last byte after 0 to 10 continuation bytes (the 64th-bit check and the
        // 10-byte limit), with and without a byte after it.
        for len in 0..=10 {
            for last in 0..=255u8 {
                let mut bytes = std::vec![0xffu8; len];
                bytes.push(last);
                assert_backwards_matches(&bytes);
                bytes.push(0x00);
                assert_backwards_matches(&bytes);
            }
        }
    }

    fn assert_backwards_matches(bytes: &[u8]) {
        assert_eq!(decode_u64_backwards(bytes), decode_u64(bytes), "{bytes:02x?}");
        // The microcontrollers' `decode_u32`: the same code with a 5-byte limit, narrowed.
        let narrow = decode_backwards(bytes, MAX_LEN_U32).map(|v| v.map(|(value, n)| (value as u32, n)));
        assert_eq!(narrow, decode_u32(bytes), "{bytes:02x?}");
    }

    proptest! {
        #[test]
        fn round_trip(v: u64) {
            let (b, n) = to_array(v);
            prop_assert_eq!(n, len_u64(v));
            prop_assert_eq!(decode_u64(&b[..n]), Ok(Some((v, n))));
            for cut in 0..n {
                prop_assert_eq!(decode_u64(&b[..cut]), Ok(None));
            }
        }

        #[test]
        fn backwards_matches_hosts_decoder(v: u64, extra in proptest::collection::vec(any::<u8>(), 0..12)) {
            let (b, n) = to_array(v);
            let mut bytes = b[..n].to_vec();
            bytes.extend(&extra);
            for cut in 0..=bytes.len() {
                prop_assert_eq!(decode_u64_backwards(&bytes[..cut]), decode_u64(&bytes[..cut]));
            }
        }

        #[test]
        fn backwards_matches_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..14)) {
            assert_backwards_matches(&bytes);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = decode_u64(&bytes);
            let _ = decode_u32(&bytes);
        }
    }
}
