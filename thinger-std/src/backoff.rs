//! Reconnect delays: exponential, bounded, with jitter.

use std::time::Duration;

/// How long to wait before reconnect attempt `n` (counted since the last successful
/// authentication): `min(max, initial × multiplier^n)`, then shortened by up to `jitter` of
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
    /// The delay before attempt `attempt` (0-based), with `random` uniform in `[0, 1]`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let initial = self.initial.as_secs_f64();
        let max = self.max.as_secs_f64().max(0.0);
        let multiplier = if self.multiplier.is_finite() { self.multiplier.max(1.0) } else { 1.0 };
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let mut delay = initial * multiplier.powi(exponent);
        if !delay.is_finite() || delay > max {
            delay = max;
        }
        let jitter = if self.jitter.is_finite() { self.jitter.clamp(0.0, 1.0) } else { 0.0 };
        let random = if random.is_finite() { random.clamp(0.0, 1.0) } else { 0.0 };
        delay *= 1.0 - jitter * random;
        Duration::try_from_secs_f64(delay.max(0.0)).unwrap_or(self.max)
    }

    /// A uniform random number in `[0, 1)` from the operating system's RNG (for the jitter).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn random() -> f64 {
        use rand_core::RngCore;
        let bits = rand_core::OsRng.next_u64() >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
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
    fn random_is_in_range() {
        for _ in 0..1000 {
            let r = Backoff::random();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
