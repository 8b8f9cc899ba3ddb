//! Time as plain milliseconds: the core never reads a clock, the adapter passes `now` in.
//!
//! ```
//! use thinger_core::time::{Duration, Instant};
//! let t0 = Instant::from_millis(1_000);
//! let t1 = t0 + Duration::from_secs(60);
//! assert_eq!(t1.as_millis(), 61_000);
//! assert_eq!(t1.saturating_duration_since(t0), Duration::from_millis(60_000));
//! ```

use core::ops::{Add, AddAssign, Sub};

/// A point in time in milliseconds since an arbitrary, adapter-chosen epoch (for example
/// the boot of the device). Only differences between instants matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

/// A span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);
    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }
    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// `self - earlier`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
    /// `self + d`, saturating at the far future.
    pub const fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl Duration {
    /// Zero length.
    pub const ZERO: Duration = Duration(0);
    /// `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms)
    }
    /// `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Duration(s.saturating_mul(1000))
    }
    /// Length in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// `self * num / den`, rounded down (used for the 1.15 × keep-alive watchdog).
    pub const fn mul_ratio(self, num: u64, den: u64) -> Duration {
        if den == 0 {
            return Duration(u64::MAX);
        }
        Duration((self.0 as u128 * num as u128 / den as u128) as u64)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    // Out of line: a saturating 64-bit add is ~16 B of Thumb code at each of the session's
    // ~17 call sites (docs/footprint.md).
    #[inline(never)]
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, other: Duration) -> Duration {
        Duration(self.0.saturating_add(other.0))
    }
}

/// `n / d` without the 64-bit division routine of the compiler runtime (about 900 bytes on
/// 32-bit targets): the hardware 32-bit divide when `n` fits, else a shift-subtract loop.
/// `d` must not be 0 (the result is then `u64::MAX`).
pub(crate) fn div_u64_u32(n: u64, d: u32) -> u64 {
    if d == 0 {
        return u64::MAX;
    }
    if let Ok(small) = u32::try_from(n) {
        return u64::from(small / d);
    }
    let d = u64::from(d);
    let (mut quotient, mut rest) = (0u64, 0u64);
    for bit in (0..64).rev() {
        // rest < d <= 2^32, so the shift cannot overflow.
        rest = (rest << 1) | ((n >> bit) & 1);
        if rest >= d {
            rest -= d;
            quotient |= 1 << bit;
        }
    }
    quotient
}

#[cfg(test)]
mod tests {
    use super::div_u64_u32;
    use proptest::prelude::*;

    #[test]
    fn division_edges() {
        for (n, d) in [(0, 1), (u64::MAX, 1), (u64::MAX, u32::MAX), (1 << 32, 1000), (999, 1000), (u64::MAX, 3)] {
            assert_eq!(div_u64_u32(n, d), n / u64::from(d), "{n} / {d}");
        }
        assert_eq!(div_u64_u32(5, 0), u64::MAX);
    }

    proptest! {
        #[test]
        fn division_matches(n in any::<u64>(), d in 1u32..) {
            prop_assert_eq!(div_u64_u32(n, d), n / u64::from(d));
            prop_assert_eq!(div_u64_u32(n >> 20, d), (n >> 20) / u64::from(d));
        }
    }
}
