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

/// Session-internal time: the low 32 bits of an [`Instant`]'s milliseconds. It wraps every
/// 2^32 ms (~49.7 days) and is compared wrap-safe, so two ticks order correctly while they
/// are less than 2^31 ms (~24.8 days) apart. Spans are clamped to [`MAX_SPAN`] (2^30 − 1
/// ms); `State::set_now` keeps the remembered times within that of the clock on every call
/// and rebuilds every tick after a longer step, and `handle_timeout` at `poll_timeout`
/// services each deadline once it is reached, so no tick gets 2^31 ms from the clock.
/// On 32-bit cores every deadline addition and comparison is then one instruction, not a
/// 64-bit pair (docs/footprint.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tick(u32);

/// The longest span a [`Tick`] deadline can be ahead, and the oldest a remembered time
/// (last receive, send, keep-alive) is kept: 2^30 − 1 ms, ~12.4 days. Half the wrap-safe
/// range, so the clock can move on by as much again between two calls before the session
/// has to rebuild its ticks from full `Instant`s.
pub(crate) const MAX_SPAN: u32 = (1 << 30) - 1;

/// The longest keep-alive interval: its watchdog (1.15 × it) still fits in [`MAX_SPAN`].
pub(crate) const MAX_KEEP_ALIVE: u32 = MAX_SPAN / 23 * 20;

impl Tick {
    /// The tick of `t` (its milliseconds, truncated).
    pub(crate) const fn of(t: Instant) -> Tick {
        Tick(t.0 as u32)
    }
    /// `self − earlier` in ms (wrapping).
    pub(crate) const fn since(self, earlier: Tick) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }
    /// `self + span` (wrapping; a span is at most [`MAX_SPAN`]).
    pub(crate) const fn after(self, span: u32) -> Tick {
        Tick(self.0.wrapping_add(span))
    }
    /// Whether `deadline` is at or before `self` (wrap-safe).
    pub(crate) const fn reached(self, deadline: Tick) -> bool {
        self.0.wrapping_sub(deadline.0) as i32 >= 0
    }
    /// `self`, or `now − MAX_SPAN` when `self` is older than that (`self` at or before
    /// `now`, less than 2^31 ms before it): a remembered time kept within the wrap-safe
    /// range while every span from it stays reached.
    pub(crate) const fn aged(self, now: Tick) -> Tick {
        if now.0.wrapping_sub(self.0) > MAX_SPAN { now.after(MAX_SPAN.wrapping_neg()) } else { self }
    }
    /// The earlier of two ticks (wrap-safe).
    pub(crate) const fn earlier(self, other: Tick) -> Tick {
        if other.reached(self) { self } else { other }
    }
    /// The later of two ticks (wrap-safe).
    pub(crate) const fn later(self, other: Tick) -> Tick {
        if other.reached(self) { other } else { self }
    }
    /// This tick as an `Instant`, with `now` (whose tick is the reference) giving the high
    /// bits: `now` plus the signed distance from `now`'s tick, saturating at the epoch.
    pub(crate) const fn instant(self, now: Instant) -> Instant {
        let delta = self.0.wrapping_sub(now.0 as u32) as i32;
        // Exactly 2^31 away reads as ahead, as `reached` has it.
        let delta = if delta == i32::MIN { 1i64 << 31 } else { delta as i64 };
        Instant(now.0.saturating_add_signed(delta))
    }
}

/// `d` as a [`Tick`] span: its milliseconds, clamped to [`MAX_SPAN`].
pub(crate) const fn span(d: Duration) -> u32 {
    if d.0 > MAX_SPAN as u64 { MAX_SPAN } else { d.0 as u32 }
}

/// The keep-alive interval `d` as a [`Tick`] span, clamped to [`MAX_KEEP_ALIVE`] (so the
/// watchdog keeps its 15 % margin over it).
pub(crate) const fn keep_alive_span(d: Duration) -> u32 {
    if d.0 > MAX_KEEP_ALIVE as u64 { MAX_KEEP_ALIVE } else { d.0 as u32 }
}

#[cfg(test)]
mod tests {
    use super::{Duration, Instant, MAX_KEEP_ALIVE, MAX_SPAN, Tick, keep_alive_span, span};
    use proptest::prelude::*;

    #[test]
    fn ticks_order_across_the_wrap() {
        // Two instants either side of a 2^32 ms boundary: the ticks wrap, the order holds.
        let before = Instant::from_millis((1 << 32) - 10);
        let after = Instant::from_millis((1 << 32) + 10);
        let (b, a) = (Tick::of(before), Tick::of(after));
        assert!(a.reached(b) && !b.reached(a) && a.reached(a));
        assert_eq!(b.after(20), a);
        assert_eq!((a.earlier(b), a.later(b)), (b, b.earlier(a).later(a)));
        assert_eq!(a.instant(before), after);
        assert_eq!(b.instant(after), before);
        // Near the epoch an overdue tick saturates at 0 instead of wrapping to the far future.
        assert_eq!(Tick::of(before).instant(Instant::from_millis(5)), Instant::ZERO);
        // The longest span is ahead, and so is anything up to 2^31 ms; past that a
        // deadline reads as past (what `State::set_now` keeps ticks from reaching).
        assert!(!b.reached(b.after(MAX_SPAN)) && b.after(MAX_SPAN).reached(b));
        assert!(!b.reached(b.after(1 << 31)) && b.reached(b.after((1 << 31) + 1)));
        // Exactly 2^31 away: ahead for both `reached` and `instant`.
        assert_eq!(b.after(1 << 31).instant(before), Instant::from_millis(before.as_millis() + (1 << 31)));
        // A remembered time older than MAX_SPAN is moved up to it, a younger one kept.
        assert_eq!(b.after(1u32.wrapping_neg()).aged(b), b.after(1u32.wrapping_neg()));
        assert_eq!(b.after((MAX_SPAN + 5).wrapping_neg()).aged(b), b.after(MAX_SPAN.wrapping_neg()));
        assert_eq!(keep_alive_span(Duration::from_millis(u64::MAX)), MAX_KEEP_ALIVE);
        assert_eq!((span(Duration::from_millis(u64::MAX)), span(Duration::from_secs(60))), (MAX_SPAN, 60_000));
    }

    proptest! {
        #[test]
        fn ticks_match_u64_time(start in 0..u64::MAX / 2, ahead in 0..=u64::from(MAX_SPAN), back in 0..=u64::from(MAX_SPAN)) {
            let now = Instant::from_millis(start);
            let later = Instant::from_millis(start + ahead);
            let earlier = Instant::from_millis(start.saturating_sub(back));
            prop_assert!(Tick::of(later).reached(Tick::of(now)));
            prop_assert_eq!(Tick::of(now).reached(Tick::of(later)), later == now);
            prop_assert!(Tick::of(now).reached(Tick::of(earlier)));
            prop_assert_eq!(Tick::of(later).instant(now), later);
            prop_assert_eq!(Tick::of(earlier).instant(now), earlier);
            prop_assert_eq!(Tick::of(now).after(span(Duration::from_millis(ahead))), Tick::of(later));
        }
    }
}
