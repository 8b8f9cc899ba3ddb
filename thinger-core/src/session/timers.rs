//! Time: the keep-alive schedule, the dead-peer watchdog, stream intervals, request and
//! deferred-reply timeouts, and the completions they produce.

use super::*;

impl<'a, const R: usize, const S: usize, const P: usize, const E: usize> State<'a, R, S, P, E> {
    /// 1.15 × the keep-alive interval: `keep_alive.mul_ratio(115, 100)`, computed without
    /// 128-bit arithmetic (which costs about 1.5 KB of flash per use on 32-bit targets).
    #[inline(never)]
    pub(super) fn watchdog(&self) -> Duration {
        Duration::from_millis(watchdog_millis(self.config.keep_alive.as_millis()))
    }

    /// A KEEP_ALIVE goes out when either side has been quiet for the interval (so the
    /// server hears from us, and we give it a reason to answer), at most once per interval.
    pub(super) fn keep_alive_due(&self) -> Instant {
        let quiet = self.last_rx.min(self.last_tx) + self.config.keep_alive;
        quiet.max(self.last_keep_alive + self.config.keep_alive)
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.phase == Phase::Connecting || self.phase == Phase::Connected {
            consider(self.last_rx + self.watchdog());
        }
        if self.phase == Phase::Connected {
            // Sending deadlines that are already due wait for the transmit queue to drain
            // (the adapter calls `handle_timeout` after draining), so an adapter blocked
            // on a slow socket is not woken in a loop.
            let waiting = !self.tx.is_empty();
            let mut consider_send = |t: Instant| {
                if !(waiting && t <= self.now) {
                    consider(t);
                }
            };
            consider_send(self.keep_alive_due());
            for s in &self.streams {
                if s.interval != Duration::ZERO {
                    consider_send(s.next);
                }
            }
        }
        for p in &self.pending {
            if p.state == PendingState::Waiting {
                consider(p.deadline);
            }
        }
        next
    }

    pub(super) fn on_timeout(&mut self, now: Instant, tx: &mut [u8]) {
        // Request and deferred-reply timeouts.
        let mut i = 0;
        while let Some(p) = self.pending.get(i).copied() {
            if p.state == PendingState::Waiting && now >= p.deadline {
                match p.kind {
                    PendingKind::Deferred { .. } => {
                        if self.phase == Phase::Connected {
                            let _ = self.queue_handler_error(tx, p.id, HandlerError::new(504, "handler timed out"));
                        }
                        let _ = take_at(&mut self.pending, i);
                        continue;
                    }
                    PendingKind::Call { silent: true } => {
                        let _ = take_at(&mut self.pending, i);
                        continue;
                    }
                    _ => {
                        if let Some(p) = self.pending.get_mut(i) {
                            p.state = PendingState::TimedOut;
                        }
                    }
                }
            }
            i += 1;
        }
        // One watchdog check for both phases: nothing received for 1.15 × ka.
        if (self.phase == Phase::Connecting || self.phase == Phase::Connected) && now >= self.last_rx + self.watchdog()
        {
            warn!("nothing received for 1.15 x ka (no answer to CONNECT, or a dead connection)");
            self.close(DisconnectReason::Timeout, None);
            return;
        }
        if self.phase == Phase::Connected {
            if now >= self.keep_alive_due() && self.tx.is_empty() {
                trace!("keep-alive");
                if self.reply_status(tx, MessageType::KeepAlive, 0) {
                    self.last_keep_alive = now;
                }
            }
            for i in 0..self.streams.len() {
                let due = self.streams.get(i).filter(|s| s.interval != Duration::ZERO).map(|s| (s.next, s.interval));
                let Some((next, interval)) = due else { continue };
                if now < next {
                    continue;
                }
                if !self.send_sample(tx, i) && !self.tx.is_empty() {
                    // No room now: try again once the queue is drained.
                    continue;
                }
                if let Some(s) = self.streams.get_mut(i) {
                    let mut n = next + interval;
                    if n <= now {
                        n = now + interval;
                    }
                    s.next = n;
                }
            }
        }
    }

    /// Reports one completion synthesized from the pending table (timeouts, disconnects).
    #[cfg_attr(not(any(feature = "cloud", feature = "subscriptions")), allow(unused_variables))]
    pub(super) fn synthesize_completion(&mut self) {
        if !CLOUD && !SUBSCRIPTIONS {
            return; // only calls and subscriptions complete this way
        }
        let Some(i) = self.pending.iter().position(|p| p.state != PendingState::Waiting) else { return };
        let Some(p) = take_at(&mut self.pending, i) else { return };
        let timeout = p.state == PendingState::TimedOut;
        match p.kind {
            #[cfg(feature = "cloud")]
            PendingKind::Call { silent: false } => self.push(Record::CallFailed { id: p.id, timeout }),
            #[cfg(feature = "subscriptions")]
            PendingKind::Subscribe(sub) => self.push(Record::SubscriptionError { sub, timeout }),
            _ => {}
        }
    }
}

/// `⌊ka × 115 / 100⌋` truncated to 64 bits, as [`Duration::mul_ratio`] computes it:
/// with `ka = 20q + r`, that is `ka + 3q + ⌊3r / 20⌋`.
fn watchdog_millis(ka: u64) -> u64 {
    let q = crate::time::div_u64_u32(ka, 20);
    let r = (ka - q * 20) as u32; // < 20
    ka.wrapping_add(q.wrapping_mul(3)).wrapping_add(u64::from(r * 3 / 20))
}

#[cfg(test)]
mod tests {
    use super::watchdog_millis;
    use crate::time::Duration;
    use proptest::prelude::*;

    #[test]
    fn watchdog_is_mul_ratio_115_100() {
        for ka in [0, 1, 19, 20, 21, 99, 100, 1000, 60_000, 1_800_000, u64::MAX / 115 * 100, u64::MAX - 1, u64::MAX] {
            assert_eq!(watchdog_millis(ka), Duration::from_millis(ka).mul_ratio(115, 100).as_millis(), "{ka}");
        }
    }

    proptest! {
        #[test]
        fn watchdog_matches_mul_ratio(ka in any::<u64>()) {
            prop_assert_eq!(watchdog_millis(ka), Duration::from_millis(ka).mul_ratio(115, 100).as_millis());
            prop_assert_eq!(watchdog_millis(ka >> 24), Duration::from_millis(ka >> 24).mul_ratio(115, 100).as_millis());
        }
    }
}
