//! Wall-clock time for certificate validity dates.

use core::cell::Cell;

use embassy_sync::blocking_mutex::CriticalSectionMutex;

/// Where the verifier gets the current time from, to check certificate validity dates.
///
/// A microcontroller has no trusted wall-clock time at boot: give a source that knows it
/// (an RTC with a backup battery, or [`SyncedClock`] set from SNTP) with
/// [`Tls::time_source`](crate::Tls::time_source). While [`unix_time`](Self::unix_time)
/// returns `None` the dates are not checked (as without a source).
pub trait TimeSource {
    /// Seconds since 1970-01-01 UTC, or `None` while the time is not known.
    fn unix_time(&self) -> Option<u64>;
}

/// A [`TimeSource`] set once from the network (SNTP, or the time in an HTTP `Date`
/// header) and carried on by the embassy-time monotonic clock. Put it in a `static`.
///
/// ```
/// use thinger_embassy::tls::{SyncedClock, TimeSource};
/// static CLOCK: SyncedClock = SyncedClock::new();
/// assert_eq!(CLOCK.unix_time(), None);
/// CLOCK.set(1_800_000_000); // from your SNTP client
/// assert!(CLOCK.unix_time().unwrap() >= 1_800_000_000);
/// ```
pub struct SyncedClock {
    // (Unix seconds, embassy-time seconds) at the last `set`.
    base: CriticalSectionMutex<Cell<Option<(u64, u64)>>>,
}

impl SyncedClock {
    /// A clock that does not know the time yet.
    pub const fn new() -> Self {
        SyncedClock { base: CriticalSectionMutex::new(Cell::new(None)) }
    }

    /// Sets the current time (seconds since the Unix epoch).
    pub fn set(&self, unix_time: u64) {
        let now = embassy_time::Instant::now().as_secs();
        self.base.lock(|b| b.set(Some((unix_time, now))));
    }
}

impl Default for SyncedClock {
    fn default() -> Self {
        Self::new()
    }
}

impl TimeSource for SyncedClock {
    fn unix_time(&self) -> Option<u64> {
        let (unix, at) = self.base.lock(Cell::get)?;
        Some(unix.saturating_add(embassy_time::Instant::now().as_secs().saturating_sub(at)))
    }
}

/// A fixed time (for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedTime(pub u64);

impl TimeSource for FixedTime {
    fn unix_time(&self) -> Option<u64> {
        Some(self.0)
    }
}
