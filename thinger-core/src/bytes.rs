//! Equality and order of the short byte strings the session compares (resource paths, map
//! keys). On microcontrollers a byte loop, out of line: `==` and `cmp` on `str` call
//! `memcmp`, 116 B on thumbv7em that nothing else needs (docs/footprint.md). Hosts keep
//! the library comparisons.

use core::cmp::Ordering;

/// `a.cmp(b)`, byte by byte.
#[cfg(target_os = "none")]
#[inline(never)]
pub(crate) fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// `a.cmp(b)`.
#[cfg(not(target_os = "none"))]
#[inline(always)]
pub(crate) fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

/// `a == b`.
// Microcontrollers: one out-of-line copy for every path and key compare: −12 B on
// thumbv7em "z".
#[cfg_attr(not(target_os = "none"), inline)]
#[cfg_attr(target_os = "none", inline(never))]
pub(crate) fn eq(a: &[u8], b: &[u8]) -> bool {
    #[cfg(target_os = "none")]
    return a.len() == b.len() && cmp(a, b) == Ordering::Equal;
    #[cfg(not(target_os = "none"))]
    return a == b;
}

/// `a == b` on strings.
#[inline]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn same_as_the_library(a in proptest::collection::vec(0u8..4, 0..6), b in proptest::collection::vec(0u8..4, 0..6)) {
            prop_assert_eq!(cmp(&a, &b), a.cmp(&b));
            prop_assert_eq!(eq(&a, &b), a == b);
        }
    }
}
