//! Reconnect delays: exponential, bounded, with jitter (the settings; the computation is the
//! core's, shared with the embedded client).

use std::time::Duration;

/// How long to wait before reconnect attempt `n` (counted since the last connection
/// that stayed authenticated for [`ClientBuilder::healthy_after`](crate::ClientBuilder::healthy_after)): `min(max, initial × multiplier^n)`, then shortened by up to `jitter` of
/// itself at random so that many devices cut off together do not reconnect in lock-step.
///
/// ```
/// use std::time::Duration;
/// use thinger_std::Backoff;
///
/// let b = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60), multiplier: 2.0, jitter: 0.0 };
/// assert_eq!(b.delay(0, 0.5), Duration::from_secs(1));
/// assert_eq!(b.delay(3, 0.5), Duration::from_secs(8));
/// assert_eq!(b.delay(30, 0.5), Duration::from_secs(60));
/// let j = Backoff { jitter: 0.5, ..b };
/// assert_eq!(j.delay(3, 1.0), Duration::from_secs(4)); // 8 s less 50 %
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Growth per failed attempt (values below 1 are taken as 1).
    pub multiplier: f64,
    /// Fraction (0 to 1) of the delay that is randomly taken off.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 1 s, doubling up to 60 s, with 30 % jitter.
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60), multiplier: 2.0, jitter: 0.3 }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0-based), with `random` uniform in `[0, 1]`
    /// (computed by the core's [`Backoff`](thinger_core::backoff::Backoff), the one both
    /// clients use).
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        self.core().delay(attempt, unit_to_u32(random))
    }

    /// The core's policy for these settings (growth and jitter in thousandths).
    pub(crate) fn core(&self) -> thinger_core::backoff::Backoff {
        let permille =
            |x: f64, lo: f64, hi: f64| if x.is_finite() { (x.clamp(lo, hi) * 1000.0).round() as u32 } else { 1000 };
        thinger_core::backoff::Backoff {
            initial: self.initial,
            max: self.max,
            growth_permille: permille(self.multiplier, 1.0, 4_000_000.0),
            jitter_permille: if self.jitter.is_finite() { permille(self.jitter, 0.0, 1.0) } else { 0 },
        }
    }

    /// A uniformly random `u32` from the operating system's RNG (for the jitter).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn random() -> u32 {
        use rand_core::RngCore;
        rand_core::OsRng.next_u32()
    }
}

/// `[0, 1]` onto `[0, u32::MAX]` (out-of-range and NaN values clamped, NaN as 0).
fn unit_to_u32(random: f64) -> u32 {
    let r = if random.is_finite() { random.clamp(0.0, 1.0) } else { 0.0 };
    (r * f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_bounded() {
        let b =
            Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2), multiplier: 2.0, jitter: 0.3 };
        let mut last = Duration::ZERO;
        for attempt in 0..10 {
            let d = b.delay(attempt, 0.0);
            assert!(d >= last);
            assert!(d <= b.max);
            last = d;
        }
        assert_eq!(last, b.max);
        // Jitter only shortens, by at most 30 %.
        for i in 0..=10 {
            let d = b.delay(20, f64::from(i) / 10.0);
            assert!(d <= b.max && d >= b.max.mul_f64(0.7) - Duration::from_micros(1));
        }
        // Silly settings do not panic.
        let weird = Backoff { initial: Duration::MAX, max: Duration::from_secs(5), multiplier: f64::NAN, jitter: 7.0 };
        assert!(weird.delay(u32::MAX, f64::INFINITY) <= Duration::from_secs(5));
    }

    #[test]
    fn random_maps_onto_the_whole_range() {
        assert_eq!(unit_to_u32(0.0), 0);
        assert_eq!(unit_to_u32(1.0), u32::MAX);
        assert_eq!(unit_to_u32(f64::NAN), 0);
        assert_eq!(unit_to_u32(-3.0), 0);
        let distinct: std::collections::HashSet<u32> = (0..100).map(|_| Backoff::random()).collect();
        assert!(distinct.len() > 90);
    }
}
