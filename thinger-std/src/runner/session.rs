//! The core session as the runner instantiates it, and the clock it runs on.

use std::time::Duration;

use thinger_core::session::Session;

use super::buffer::LentBuffer;
use thinger_core::time::{Duration as CoreDuration, Instant};

/// The core session with the tables of a [`Capacity`](crate::Capacity): `R` resources, `S`
/// streams and subscriptions, `P` requests in flight, `E` events; its buffer is lent (held
/// only while it has data in it).
pub(super) type Sess<'a, const R: usize, const S: usize, const P: usize, const E: usize> =
    Session<'a, LentBuffer, R, S, P, E>;

/// Milliseconds since the runner started, for the core.
pub(super) struct Clock {
    pub(super) start: tokio::time::Instant,
}

impl Clock {
    pub(super) fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
    pub(super) fn at(&self, when: Instant) -> tokio::time::Instant {
        self.start
            .checked_add(Duration::from_millis(when.as_millis()))
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400))
    }
}

pub(super) fn core_duration(d: Duration) -> CoreDuration {
    CoreDuration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
