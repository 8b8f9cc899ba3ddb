//! Reconnect delays, shared by both clients: exponential, bounded, with jitter, and reset
//! only after a connection has stayed healthy for a while.
//!
//! Integer arithmetic only (no floating point on devices without an FPU); the caller
//! passes the randomness in, the core never reads a clock or an RNG.
//!
//! ```
//! use core::time::Duration;
//! use thinger_core::backoff::{Backoff, Reconnect};
//! use thinger_core::time::Instant;
//!
//! let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).jitter_permille(0);
//! let mut reconnect = Reconnect::new(backoff, Duration::from_secs(30));
//! assert_eq!(reconnect.next_delay(0), Duration::from_secs(1));
//! assert_eq!(reconnect.next_delay(0), Duration::from_secs(2));
//! // Authenticated, then dropped after 5 s: not healthy long enough, the delays keep growing.
//! reconnect.connected(Instant::from_millis(10_000));
//! reconnect.disconnected(Instant::from_millis(15_000));
//! assert_eq!(reconnect.next_delay(0), Duration::from_secs(4));
//! // A connection that lasted 30 s resets them.
//! reconnect.connected(Instant::from_millis(20_000));
//! reconnect.disconnected(Instant::from_millis(50_000));
//! assert_eq!(reconnect.next_delay(0), Duration::from_secs(1));
//! ```

use core::time::Duration;

use crate::time::Instant;

/// Fixed point of the growth computation: 32 fractional bits.
const FRACTION_BITS: u32 = 32;

/// How long to wait before reconnect attempt `n`: `min(max, initial × growth^n)`, then
/// shortened at random by up to `jitter` of itself, so that many devices cut off together
/// do not reconnect in lock-step.
///
/// ```
/// use core::time::Duration;
/// use thinger_core::backoff::Backoff;
/// let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).jitter_permille(0);
/// assert_eq!(b.delay(0, 0), Duration::from_secs(1));
/// assert_eq!(b.delay(3, 0), Duration::from_secs(8));
/// assert_eq!(b.delay(30, 0), Duration::from_secs(60));
/// // With 50 % jitter the delay lies in [4 s, 8 s] for attempt 3.
/// let j = b.jitter_permille(500);
/// assert_eq!(j.delay(3, u32::MAX), Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Growth per failed attempt in thousandths (2000 doubles; values below 1000 count as 1000).
    pub growth_permille: u32,
    /// The largest part of a delay taken off at random, in thousandths (values above 1000
    /// count as 1000).
    pub jitter_permille: u32,
}

impl Backoff {
    /// From `initial` doubling up to `max`, with 50 % jitter.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, growth_permille: 2000, jitter_permille: 500 }
    }

    /// The same with another growth per attempt (in thousandths).
    #[must_use]
    pub const fn growth_permille(mut self, growth: u32) -> Self {
        self.growth_permille = growth;
        self
    }

    /// The same with another jitter (in thousandths).
    #[must_use]
    pub const fn jitter_permille(mut self, jitter: u32) -> Self {
        self.jitter_permille = jitter;
        self
    }

    /// The delay before attempt `attempt` (0-based). `random` is a uniformly random `u32`:
    /// 0 takes nothing off, `u32::MAX` takes the full jitter.
    pub fn delay(&self, attempt: u32, random: u32) -> Duration {
        let max = millis(self.max);
        let full = grow(millis(self.initial), self.growth_permille.max(1000), attempt, max);
        let jitter = u128::from(self.jitter_permille.min(1000));
        // full × (1 − jitter/1000 × random/2^32), rounded down, without floating point.
        let whole = 1000u128 << FRACTION_BITS;
        let kept = whole - jitter * u128::from(random);
        let ms = u128::from(full) * kept / whole;
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

impl Default for Backoff {
    /// 1 s, doubling up to 60 s, with 50 % jitter.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `min(max, initial × (growth/1000)^n)` by squaring in fixed point: at most 32 rounds.
fn grow(initial: u64, growth_permille: u32, n: u32, max: u64) -> u64 {
    if initial >= max {
        return max;
    }
    let limit = u128::from(max) << FRACTION_BITS;
    // Factors beyond max/1 ms can never matter; capping them keeps products in range.
    let cap = limit;
    let mul = |a: u128, b: u128| (a.saturating_mul(b) >> FRACTION_BITS).min(cap);
    let mut result = u128::from(initial) << FRACTION_BITS;
    let mut base = (u128::from(growth_permille) << FRACTION_BITS) / 1000;
    let mut e = n;
    while e > 0 && result < limit {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    u64::try_from((result >> FRACTION_BITS).min(u128::from(max))).unwrap_or(max)
}

/// The reconnect policy of a client: counts failed attempts, and forgets them only once a
/// connection stayed authenticated for `healthy_after`. A server that authenticates and
/// then misbehaves thus still sees growing delays, not one reconnect per second forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reconnect {
    backoff: Backoff,
    healthy_after: Duration,
    failures: u32,
    since: Option<Instant>,
}

impl Reconnect {
    /// No failures yet.
    pub const fn new(backoff: Backoff, healthy_after: Duration) -> Self {
        Reconnect { backoff, healthy_after, failures: 0, since: None }
    }

    /// The connection authenticated at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.since = Some(now);
    }

    /// The connection ended at `now`: if it was authenticated for at least
    /// `healthy_after`, the next attempt starts from the first delay again.
    pub fn disconnected(&mut self, now: Instant) {
        if let Some(since) = self.since.take() {
            let lasted = u128::from(now.saturating_duration_since(since).as_millis());
            if lasted >= self.healthy_after.as_millis() {
                self.failures = 0;
            }
        }
    }

    /// Failed attempts since the last healthy connection.
    pub const fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt (see [`Backoff::delay`] for `random`); counts one
    /// more failure.
    pub fn next_delay(&mut self, random: u32) -> Duration {
        let delay = self.backoff.delay(self.failures, random);
        self.failures = self.failures.saturating_add(1);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift32) standing in for the RNG.
    struct Seeded(u32);
    impl Seeded {
        fn next(&mut self) -> u32 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.0 = x;
            x
        }
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn grows_exponentially_and_stays_bounded() {
        let b = Backoff::new(Duration::from_millis(100), 2 * SEC).jitter_permille(0);
        let delays: [u64; 7] = core::array::from_fn(|n| millis(b.delay(n as u32, 0)));
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.delay(u32::MAX, 0), 2 * SEC);
        let slow = b.growth_permille(1500);
        assert_eq!(millis(slow.delay(2, 0)), 225);
        // Growth below 1 never shrinks the delay.
        assert_eq!(b.growth_permille(10).delay(9, 0), Duration::from_millis(100));
    }

    #[test]
    fn jitter_only_shortens_and_by_at_most_its_share() {
        let b = Backoff::new(SEC, 60 * SEC).jitter_permille(300);
        let mut rng = Seeded(0x1234_5678);
        let mut seen = (u64::MAX, 0u64);
        for _ in 0..10_000 {
            let d = millis(b.delay(5, rng.next()));
            assert!((22_400..=32_000).contains(&d), "{d}");
            seen = (seen.0.min(d), seen.1.max(d));
        }
        // The seeded generator spreads the delays over most of the range.
        assert!(seen.0 < 23_000 && seen.1 > 31_500, "{seen:?}");
        assert_eq!(b.delay(5, 0), 32 * SEC);
        assert_eq!(b.delay(5, u32::MAX), Duration::from_millis(22_400));
    }

    #[test]
    fn silly_settings_do_not_panic() {
        let weird = Backoff { initial: Duration::MAX, max: 5 * SEC, growth_permille: u32::MAX, jitter_permille: 7000 };
        assert!(weird.delay(u32::MAX, u32::MAX) <= 5 * SEC);
        let huge = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::MAX,
            growth_permille: u32::MAX,
            jitter_permille: 0,
        };
        assert_eq!(huge.delay(u32::MAX, 0), Duration::from_millis(u64::MAX));
        let zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.delay(3, 17), Duration::ZERO);
    }

    #[test]
    fn short_lived_connections_do_not_reset_the_count() {
        let backoff = Backoff::new(Duration::from_millis(10), 10 * SEC).jitter_permille(0);
        let mut r = Reconnect::new(backoff, 30 * SEC);
        let mut now = Instant::from_millis(0);
        let mut delays = [0u64; 20];
        for d in &mut delays {
            // Authenticated, then garbage 50 ms later.
            r.connected(now);
            now += crate::time::Duration::from_millis(50);
            r.disconnected(now);
            *d = millis(r.next_delay(0));
            now += crate::time::Duration::from_millis(*d);
        }
        assert!(delays.windows(2).all(|w| w[1] >= w[0]), "{delays:?}");
        assert_eq!(delays[0], 10);
        assert_eq!(delays[19], 10_000);
        assert_eq!(r.failures(), 20);
    }

    #[test]
    fn a_healthy_connection_resets_the_count() {
        let mut r = Reconnect::new(Backoff::new(SEC, 60 * SEC).jitter_permille(0), 30 * SEC);
        for _ in 0..5 {
            r.next_delay(0);
        }
        // Ended before it authenticated: no reset.
        r.disconnected(Instant::from_millis(1_000_000));
        assert_eq!(r.failures(), 5);
        r.connected(Instant::from_millis(1_000_000));
        r.disconnected(Instant::from_millis(1_029_999));
        assert_eq!(r.failures(), 5);
        r.connected(Instant::from_millis(2_000_000));
        r.disconnected(Instant::from_millis(2_030_000));
        assert_eq!(r.failures(), 0);
        assert_eq!(r.next_delay(0), SEC);
        // A clock that went backwards counts as not healthy.
        r.connected(Instant::from_millis(5_000));
        r.disconnected(Instant::from_millis(1_000));
        assert_eq!(r.failures(), 1);
    }
}
