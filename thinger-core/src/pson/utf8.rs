//! `&[u8]` → `&str` for the short keys and strings of PSON documents.
//!
//! `core::str::from_utf8` walks a slice shorter than 16 bytes one byte at a time: about 105
//! instructions for an 11-byte key (callgrind, x86-64), twice the cost of reading the whole
//! rest of a small map pair. On hosts an ASCII test on whole words comes first (about 10
//! instructions for the same key); anything that is not all ASCII still goes through
//! `from_utf8`. `simdutf8` was measured too: for inputs this short it calls `from_utf8`
//! itself and is no faster. Microcontrollers validate with a plain byte loop instead, the
//! smallest code for it (see `to_str` there).

use super::Error;

/// The bytes as `&str`, or [`Error::InvalidUtf8`]. Microcontrollers validate with the
/// byte loop of [`is_utf8`] instead of `core::str::from_utf8`, whose validator and
/// 256-byte width table are more flash than this loop (−368 B on thumbv7em "z",
/// docs/footprint.md); short PSON strings do not need its word-at-a-time ASCII path.
#[cfg(target_os = "none")]
#[inline]
pub(crate) fn to_str(bytes: &[u8]) -> Result<&str, Error> {
    if !is_utf8(bytes) {
        return Err(Error::InvalidUtf8);
    }
    #[allow(unsafe_code)]
    // SAFETY: `is_utf8` accepted the bytes, and it accepts exactly what
    // `core::str::from_utf8` accepts (tests `is_utf8_*` below: every 1- and 2-byte input,
    // every lead and second byte of 3- and 4-byte ones, random inputs).
    let s = unsafe { core::str::from_utf8_unchecked(bytes) };
    Ok(s)
}

/// Whether `bytes` is valid UTF-8: well-formed sequences of 1 to 4 bytes, no overlong
/// form, no surrogate, nothing above U+10FFFF.
#[cfg(any(test, target_os = "none"))]
fn is_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some((&lead, tail)) = rest.split_first() {
        rest = tail;
        if lead < 0x80 {
            continue;
        }
        // Continuation bytes, and the range of the first (no overlong form, no surrogate,
        // nothing above U+10FFFF); the others are 0x80..=0xbf. The count, the low end and
        // the high end each on their own (a lead range, two special leads each): one match
        // giving all three for seven lead ranges was 28 B more on thumbv7em "z".
        if !(0xc2..=0xf4).contains(&lead) {
            return false;
        }
        let more = 1 + usize::from(lead >= 0xe0) + usize::from(lead >= 0xf0);
        let mut lo = match lead {
            0xe0 => 0xa0,
            0xf0 => 0x90,
            _ => 0x80,
        };
        let mut hi = match lead {
            0xed => 0x9f,
            0xf4 => 0x8f,
            _ => 0xbf,
        };
        for _ in 0..more {
            match rest.split_first() {
                Some((&b, tail)) if b >= lo && b <= hi => {
                    rest = tail;
                    (lo, hi) = (0x80, 0xbf);
                }
                _ => return false,
            }
        }
    }
    true
}

/// The bytes as `&str`, or [`Error::InvalidUtf8`].
#[cfg(not(target_os = "none"))]
#[inline(always)]
pub(crate) fn to_str(bytes: &[u8]) -> Result<&str, Error> {
    match ascii_str(bytes) {
        Some(s) => Ok(s),
        None => from_utf8_cold(bytes),
    }
}

/// `to_str` for anything not all ASCII, out of the readers' loops.
#[cfg(not(target_os = "none"))]
#[cold]
#[inline(never)]
fn from_utf8_cold(bytes: &[u8]) -> Result<&str, Error> {
    core::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8)
}

/// The bytes as `&str` when every one is ASCII, else `None` (the caller decides what a
/// non-ASCII string costs: `to_str` above runs `from_utf8`, the one-pass map reader's fast
/// path hands the pair to its general path).
#[cfg(not(target_os = "none"))]
#[inline(always)]
pub(crate) fn ascii_str(bytes: &[u8]) -> Option<&str> {
    if is_ascii(bytes) {
        #[allow(unsafe_code)]
        // SAFETY: every byte is below 0x80 (checked just above), and a sequence of ASCII
        // bytes is valid UTF-8. Safe code has no way to get a `&str` without running
        // `from_utf8` again (see the module docs for the cost).
        let s = unsafe { core::str::from_utf8_unchecked(bytes) };
        Some(s)
    } else {
        None
    }
}

/// The first `len` bytes of `window` as `&str` when `len <= 8` and every one of them is
/// ASCII, else `None`. One load and one masked test (the mask from a table, by length):
/// the bytes after the first `len` are not looked at, so `window` may run past the string
/// (the caller's input must hold all eight bytes).
#[cfg(not(target_os = "none"))]
#[inline(always)]
pub(crate) fn ascii_prefix(window: &[u8; 8], len: usize) -> Option<&str> {
    // The high bit of each of the first `len` bytes (little-endian: the low ones).
    const MASKS: [u64; 9] = [
        0,
        0x80,
        0x8080,
        0x80_8080,
        0x8080_8080,
        0x80_8080_8080,
        0x8080_8080_8080,
        0x80_8080_8080_8080,
        0x8080_8080_8080_8080,
    ];
    let mask = *MASKS.get(len)?;
    let bytes = window.get(..len)?;
    if u64::from_le_bytes(*window) & mask != 0 {
        return None;
    }
    #[allow(unsafe_code)]
    // SAFETY: the mask has the high bit of each of the first `len` bytes, and none is set:
    // `bytes` (those `len` bytes) is all ASCII, which is valid UTF-8.
    let s = unsafe { core::str::from_utf8_unchecked(bytes) };
    Some(s)
}

/// The first `len` bytes of `window` as `&str` when `8 <= len <= 16` and every one of them
/// is ASCII, else `None`: two overlapping 8-byte loads (the first eight, the last eight of
/// the `len`), no length test beyond the window's.
#[cfg(not(target_os = "none"))]
#[inline(always)]
pub(crate) fn ascii_prefix16(window: &[u8; 16], len: usize) -> Option<&str> {
    let bytes = window.get(..len)?;
    let first = bytes.first_chunk::<8>()?;
    let last = bytes.last_chunk::<8>()?;
    if (u64::from_le_bytes(*first) | u64::from_le_bytes(*last)) & 0x8080_8080_8080_8080 != 0 {
        return None;
    }
    #[allow(unsafe_code)]
    // SAFETY: `first` and `last` are the first and the last eight of `bytes`, which has
    // at most 16 (a slice of `window`), so together they are every byte of it, and no
    // high bit is set: all ASCII, which is valid UTF-8.
    let s = unsafe { core::str::from_utf8_unchecked(bytes) };
    Some(s)
}

/// The bytes of a string inside a map or array that a validating decode already checked
/// (a [`MapRef`](super::MapRef) or [`ArrayRef`](super::ArrayRef) body), as `&str` without
/// checking them again: the walk over a decoded map checked every key twice otherwise
/// (the map iterator's keys: `payload/decode/walk` 699 -> 642, `map10/decode/walk`
/// 1,404 -> 1,255 instructions, callgrind). Hosts only.
///
/// # Safety
///
/// `bytes` must be valid UTF-8. Map and array views are only ever made by
/// `Cursor::value_other`, or by the in-line top-level check of `PsonRef::decode_prefix_with`
/// after its validating pass, over input that pass checked (every key and string through
/// `to_str`), or over a part of such input; their fields are visible to
/// the reader module only (`pson/reader/views.rs`).
#[cfg(not(target_os = "none"))]
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) unsafe fn validated_str(bytes: &[u8]) -> &str {
    debug_assert!(core::str::from_utf8(bytes).is_ok());
    // SAFETY: the caller's contract above.
    unsafe { core::str::from_utf8_unchecked(bytes) }
}

/// Whether every byte is below 0x80, testing 8 (or 4) bytes at a time with overlapping
/// loads instead of a byte loop.
#[cfg(not(target_os = "none"))]
#[inline(always)]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        if bytes.len() > 16 {
            return bytes.is_ascii();
        }
        // 8..=16 bytes: the first and last eight cover all of them.
        return (u64::from_le_bytes(*first) | u64::from_le_bytes(*last)) & HIGH == 0;
    }
    if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        return (u32::from_le_bytes(*first) | u32::from_le_bytes(*last)) & (HIGH as u32) == 0;
    }
    bytes.iter().fold(0u8, |acc, &b| acc | b) < 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_length_and_position_of_a_high_byte() {
        for len in 0..40usize {
            let ascii: std::vec::Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(to_str(&ascii).map(str::len), Ok(len));
            for at in 0..len {
                let mut bad = ascii.clone();
                bad[at] = 0xff;
                assert_eq!(to_str(&bad), Err(Error::InvalidUtf8), "{len} {at}");
                let mut two = ascii.clone();
                two[at] = 0xc3; // "é" needs a second byte
                if at + 1 < len {
                    two[at + 1] = 0xa9;
                    assert_eq!(to_str(&two), Ok(core::str::from_utf8(&two).unwrap()), "{len} {at}");
                } else {
                    assert_eq!(to_str(&two), Err(Error::InvalidUtf8));
                }
            }
        }
    }

    #[test]
    fn prefixes_look_at_their_length_only() {
        for len in 0..=16usize {
            for at in 0..16usize {
                let mut window = [b'k'; 16];
                window[at] = 0x80;
                let want = if at < len { None } else { core::str::from_utf8(&window[..len]).ok() };
                let got = if len <= 8 {
                    ascii_prefix(window.first_chunk::<8>().unwrap(), len)
                } else {
                    ascii_prefix16(&window, len)
                };
                assert_eq!(got, want, "{len} {at}");
            }
        }
        assert_eq!(ascii_prefix(&[b'a'; 8], 9), None);
        assert_eq!(ascii_prefix16(&[b'a'; 16], 7), None);
        assert_eq!(ascii_prefix16(&[b'a'; 16], 17), None);
    }

    fn std_accepts(bytes: &[u8]) -> bool {
        core::str::from_utf8(bytes).is_ok()
    }

    #[test]
    fn is_utf8_on_every_short_input() {
        assert!(is_utf8(&[]));
        for a in 0..=255u8 {
            assert_eq!(is_utf8(&[a]), std_accepts(&[a]), "{a:02x}");
            for b in 0..=255u8 {
                assert_eq!(is_utf8(&[a, b]), std_accepts(&[a, b]), "{a:02x} {b:02x}");
            }
        }
    }

    #[test]
    fn is_utf8_on_every_lead_and_second_byte_of_longer_inputs() {
        // Third and fourth bytes at the edges of the continuation range and beyond.
        let edges = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc3, 0xe0, 0xf0, 0xff];
        for a in 0xc0..=0xffu8 {
            for b in 0..=255u8 {
                for &c in &edges {
                    let three = [a, b, c];
                    assert_eq!(is_utf8(&three), std_accepts(&three), "{three:02x?}");
                    for &d in &edges {
                        let four = [a, b, c, d];
                        assert_eq!(is_utf8(&four), std_accepts(&four), "{four:02x?}");
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn is_utf8_agrees_with_from_utf8(bytes in proptest::collection::vec(any::<u8>(), 0..48), s in "\\PC{0,12}") {
            prop_assert_eq!(is_utf8(&bytes), std_accepts(&bytes));
            prop_assert!(is_utf8(s.as_bytes()));
            let mut cut = s.into_bytes();
            cut.pop();
            prop_assert_eq!(is_utf8(&cut), std_accepts(&cut));
        }

        #[test]
        fn agrees_with_from_utf8(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let ours = to_str(&bytes);
            let core = core::str::from_utf8(&bytes).map_err(|_| Error::InvalidUtf8);
            prop_assert_eq!(ours, core);
        }

        #[test]
        fn agrees_on_mostly_ascii(s in "[a-z_0-9]{0,40}", high in proptest::option::of((0usize..40, 0x80u8..=0xff))) {
            let mut bytes = s.into_bytes();
            if let Some((at, b)) = high
                && at < bytes.len()
            {
                bytes[at] = b;
            }
            prop_assert_eq!(to_str(&bytes), core::str::from_utf8(&bytes).map_err(|_| Error::InvalidUtf8));
        }
    }
}
