//! Time: the keep-alive schedule, the dead-peer watchdog, stream intervals, request and
//! deferred-reply timeouts, and the completions they produce.

use super::*;
use crate::time;

impl<'a, const R: usize, const S: usize, const P: usize, const E: usize> State<'a, R, S, P, E> {
    /// Moves the session's clock to the adapter's `now` (every public call that takes a
    /// time comes here first) and keeps its ticks within the wrap-safe range of it: the
    /// remembered times (last receive, send, keep-alive) at most [`time::MAX_SPAN`] old,
    /// which every span from them still reaches. A link busy both ways never sends a
    /// keep-alive, so without this `last_keep_alive` would age past 2^31 ms and read as
    /// the future. A step forward longer than `MAX_SPAN` (a suspended host), or back by
    /// more than that (a clock set back), rebuilds every tick instead; a shorter step back
    /// (a `now` read before a later one) is ignored, so the schedule never moves earlier.
    /// Deadlines (requests, streams) are kept in range by `handle_timeout` at
    /// `poll_timeout`, which services them when they are reached.
    #[inline(never)]
    pub(super) fn set_now(&mut self, now: Instant) {
        let prev = self.now;
        let max = u64::from(time::MAX_SPAN);
        let step = now.as_millis().wrapping_sub(prev.as_millis());
        if step > max {
            if step.wrapping_neg() <= max {
                return;
            }
            self.now = now;
            self.rebase(prev, now);
            return;
        }
        self.now = now;
        let t = Tick::of(now);
        self.last_rx = self.last_rx.aged(t);
        self.last_tx = self.last_tx.aged(t);
        self.last_keep_alive = self.last_keep_alive.aged(t);
    }

    /// [`set_now`](Self::set_now) after a step longer than `MAX_SPAN`. Forward,
    /// every span from the remembered times and every deadline has passed (none is longer
    /// than `MAX_SPAN`), as with 64-bit time: the remembered times become `MAX_SPAN` old
    /// and the deadlines due now. Back (a clock set back), the whole schedule moves with
    /// the clock: every tick by the same step, so nothing falls due early or late.
    // Inlined into its one caller, not a `#[cold]` call: −44 B on thumbv7em "z"
    // (docs/footprint-rounds.md, eighth round, second shift).
    #[inline(always)]
    fn rebase(&mut self, prev: Instant, now: Instant) {
        let t = Tick::of(now);
        let back = now < prev;
        let step = t.since(Tick::of(prev));
        let remembered = t.after(time::MAX_SPAN.wrapping_neg());
        let moved = |tick: Tick, to: Tick| if back { tick.after(step) } else { to };
        self.last_rx = moved(self.last_rx, remembered);
        self.last_tx = moved(self.last_tx, remembered);
        self.last_keep_alive = moved(self.last_keep_alive, remembered);
        for s in self.streams.iter_mut() {
            s.next = moved(s.next, t);
        }
        for p in self.pending.iter_mut().filter(|_| PENDING) {
            p.deadline = moved(p.deadline, t);
        }
    }

    /// A KEEP_ALIVE goes out when either side has been quiet for the interval (so the
    /// server hears from us, and we give it a reason to answer), at most once per interval.
    pub(super) fn keep_alive_due(&self) -> Tick {
        let ka = self.keep_alive;
        let quiet = self.last_rx.earlier(self.last_tx).after(ka);
        quiet.later(self.last_keep_alive.after(ka))
    }

    pub(super) fn next_deadline(&self) -> Option<Tick> {
        let mut next: Option<Tick> = None;
        if self.phase == Phase::Connecting || self.phase == Phase::Connected {
            // The watchdog's deadline, then (connected) the earliest sending one: one
            // `Tick` until the end, no `Option` per candidate.
            let mut due = self.last_rx.after(self.watchdog);
            if self.phase == Phase::Connected {
                // Sending deadlines that are already due wait for the transmit queue to
                // drain (the adapter calls `handle_timeout` after draining), so an adapter
                // blocked on a slow socket is not woken in a loop.
                let waiting = !self.tx.is_empty();
                let now = self.tick();
                // The earliest sending deadline that does not wait for the queue: the
                // keep-alive's or a stream's, in one pass without an `Option` (a keep-alive
                // that waits gives way to the first stream deadline that does not).
                let mut send = self.keep_alive_due();
                for s in &self.streams {
                    if s.interval != 0 && !(waiting && now.reached(s.next)) {
                        send = if waiting && now.reached(send) { s.next } else { send.earlier(s.next) };
                    }
                }
                if !(waiting && now.reached(send)) {
                    due = due.earlier(send);
                }
            }
            next = Some(due);
        }
        for p in self.pending.iter().filter(|_| PENDING) {
            if p.state == PendingState::Waiting {
                next = Some(next.map_or(p.deadline, |n| n.earlier(p.deadline)));
            }
        }
        next
    }

    pub(super) fn on_timeout(&mut self, now: Instant, tx: &mut [u8]) {
        let now = Tick::of(now);
        // Request and deferred-reply timeouts.
        let mut i = 0;
        while let Some(p) = self.pending.get(i).copied().filter(|_| PENDING) {
            if p.state == PendingState::Waiting && now.reached(p.deadline) {
                match p.kind {
                    PendingKind::Deferred { .. } => {
                        if self.phase == Phase::Connected {
                            let _ = self.queue_handler_error(tx, p.id, HandlerError::new(504, "handler timed out"));
                        }
                        let _ = take_at(&mut self.pending, i);
                        continue;
                    }
                    PendingKind::Call { silent: true } if !(CLOUD && p.forever) => {
                        let _ = take_at(&mut self.pending, i);
                        continue;
                    }
                    // Calls and subscriptions (none without their features).
                    _ if CLOUD || SUBSCRIPTIONS => {
                        if let Some(p) = self.pending.get_mut(i) {
                            if CLOUD && p.forever {
                                // Waits on: the deadline only keeps within a tick span.
                                p.deadline = now.after(time::MAX_SPAN);
                            } else {
                                p.state = PendingState::TimedOut;
                            }
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        // One watchdog check for both phases: nothing received for 1.15 × ka.
        if (self.phase == Phase::Connecting || self.phase == Phase::Connected)
            && now.reached(self.last_rx.after(self.watchdog))
        {
            warn!("nothing received for 1.15 x ka (no answer to CONNECT, or a dead connection)");
            self.close(DisconnectReason::Timeout, None);
            return;
        }
        if self.phase == Phase::Connected {
            if now.reached(self.keep_alive_due()) && self.tx.is_empty() {
                trace!("keep-alive");
                if self.reply_status(tx, MessageType::KeepAlive, 0) {
                    self.last_keep_alive = now;
                }
            }
            for i in 0..self.streams.len() {
                let due = self.streams.get(i).filter(|s| s.interval != 0).map(|s| (s.next, s.interval));
                let Some((next, interval)) = due else { continue };
                if !now.reached(next) {
                    continue;
                }
                if !self.send_sample(tx, i) && !self.tx.is_empty() {
                    // No room now: try again once the queue is drained.
                    continue;
                }
                if let Some(s) = self.streams.get_mut(i) {
                    let mut n = next.after(interval);
                    if now.reached(n) {
                        n = now.after(interval);
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

/// `⌊ka × 115 / 100⌋` as [`Duration::mul_ratio`](crate::time::Duration::mul_ratio) computes it, in 32 bits and clamped to
/// [`time::MAX_SPAN`]: with `ka = 20q + r`, that is `23q + ⌊23r / 20⌋`.
pub(super) fn watchdog_span(ka: u32) -> u32 {
    let (q, r) = (ka / 20, ka % 20);
    q.saturating_mul(23).saturating_add(r * 23 / 20).min(time::MAX_SPAN)
}

#[cfg(test)]
mod tests {
    use super::watchdog_span;
    use crate::time::{Duration, MAX_SPAN};
    use proptest::prelude::*;

    /// The reference: `mul_ratio` on the 64-bit value, clamped like a tick span.
    fn reference(ka: u32) -> u32 {
        Duration::from_millis(u64::from(ka)).mul_ratio(115, 100).as_millis().min(u64::from(MAX_SPAN)) as u32
    }

    #[test]
    fn watchdog_is_mul_ratio_115_100() {
        for ka in [0, 1, 19, 20, 21, 99, 100, 1000, 60_000, 1_800_000, MAX_SPAN / 115 * 100, MAX_SPAN - 1, MAX_SPAN] {
            assert_eq!(watchdog_span(ka), reference(ka), "{ka}");
        }
    }

    proptest! {
        #[test]
        fn watchdog_matches_mul_ratio(ka in 0..=MAX_SPAN) {
            prop_assert_eq!(watchdog_span(ka), reference(ka));
            prop_assert_eq!(watchdog_span(ka >> 12), reference(ka >> 12));
        }
    }
}
