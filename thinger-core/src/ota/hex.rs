//! Hex checksums as the pushers send them (either case).

/// Decodes exactly `2 * N` hex digits into `N` bytes.
pub(crate) fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi)?, nibble(*lo)?),
            _ => return None,
        };
        *byte = (hi << 4) | lo;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_both_cases_and_rejects_bad_input() {
        assert_eq!(decode::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(decode::<2>("0aF"), None);
        assert_eq!(decode::<2>("0aFg"), None);
        assert_eq!(decode::<1>("é"), None);
    }
}
