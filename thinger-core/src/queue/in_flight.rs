//! Which queued entries are on the wire, and what each answer means for the queue.
//!
//! Both clients send the offline queue the same way: oldest first, at most a window of
//! entries awaiting their answer, an entry leaves the queue when the server answered it
//! (OK, or an ERROR that sending again would not change), and everything goes out again
//! from the front, in order, when an answer may have been lost (a timeout, a reconnect).
//! [`InFlight`] is that bookkeeping, sans-IO: the adapter owns the entries (a [`Ring`]
//! over its storage) and the session, and hands [`InFlight::pump`] a closure that sends
//! one entry.
//!
//! The entries in flight are always the first [`InFlight::len`] entries of the queue: an
//! entry is sent only after every entry before it, and an answered one leaves the queue at
//! once. So the next entry to send is the one at position `len()`.
//!
//! [`Ring`]: super::Ring

use heapless::Vec;

use crate::session::{CallError, Error as SessionError, RequestId};

/// The queued entries sent on this connection and not answered yet: at most `W`.
///
/// ```
/// use thinger_core::queue::{Answer, InFlight, Pumped, Settled};
/// use thinger_core::session::RequestId;
///
/// let queue = [10u64, 11, 12]; // the sequence numbers of three queued entries
/// let mut in_flight = InFlight::<4>::new();
/// let mut next_id = 100;
/// let pumped = in_flight.pump(2, |position| {
///     let seq = *queue.get(position)?;
///     next_id += 1;
///     Some((seq, Ok(RequestId(next_id))))
/// });
/// assert_eq!(pumped, Pumped::Idle);
/// assert_eq!(in_flight.len(), 2); // the window is 2
/// assert_eq!(in_flight.answered(RequestId(101), Answer::Delivered), Some(Settled::Done(10)));
/// assert_eq!(in_flight.answered(RequestId(102), Answer::Lost), Some(Settled::Resend));
/// assert!(in_flight.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct InFlight<const W: usize> {
    /// (request id of the call, sequence number of the entry), in the order sent.
    entries: Vec<(RequestId, u64), W>,
}

/// How an answer to a queued entry came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Answer {
    /// The server answered it: stored, or refused for good (an ERROR, a reply too large).
    Delivered,
    /// No answer (a timeout, the link went down): the server may not have it.
    Lost,
}

impl From<&CallError<'_>> for Answer {
    fn from(e: &CallError<'_>) -> Self {
        match e {
            CallError::Timeout | CallError::Disconnected => Answer::Lost,
            CallError::Server { .. } | CallError::PayloadTooLarge => Answer::Delivered,
        }
    }
}

impl<T> From<&Result<T, CallError<'_>>> for Answer {
    fn from(result: &Result<T, CallError<'_>>) -> Self {
        result.as_ref().map_or_else(Answer::from, |_| Answer::Delivered)
    }
}

/// What the adapter does with the queue after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Settled {
    /// Entry `seq` was answered: remove it from the queue (and tell whoever waits for it).
    Done(u64),
    /// An answer may be lost: every entry goes out again from the front, in order (the
    /// entries in flight were forgotten).
    Resend,
}

/// Where [`InFlight::pump`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pumped {
    /// The window is full, the queue has nothing more to send, or the session cannot take
    /// a request now (too many pending, not connected): pump again after the next answer.
    Idle,
    /// The session's transmit buffer is full: drain it, then pump again.
    Blocked,
    /// Entry `seq` can never be sent (it does not fit a frame, its stored PSON is bad):
    /// the adapter removes it from the queue (telling its waiter `error`) and pumps again.
    Failed {
        /// The entry.
        seq: u64,
        /// Why the session refused it.
        error: SessionError,
    },
}

impl<const W: usize> InFlight<W> {
    /// Nothing in flight.
    pub const fn new() -> Self {
        InFlight { entries: Vec::new() }
    }

    /// Entries in flight (also the queue position of the next entry to send).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing awaits an answer.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every entry in flight (a new connection): the queue goes out again from
    /// its front.
    pub fn restart(&mut self) {
        self.entries.clear();
    }

    /// Sends queued entries, oldest first, until `window` (at most `W`) are in flight.
    ///
    /// `send(position)` sends the queue's entry at `position` and returns its sequence
    /// number with the session's answer (the request id of the call, or why not), or
    /// `None` when the queue has no entry there.
    pub fn pump(
        &mut self,
        window: usize,
        mut send: impl FnMut(usize) -> Option<(u64, Result<RequestId, SessionError>)>,
    ) -> Pumped {
        let window = window.min(W);
        while self.entries.len() < window {
            let Some((seq, sent)) = send(self.entries.len()) else { return Pumped::Idle };
            match sent {
                Ok(id) => {
                    // Cannot fail: the length is below the window, which is at most W.
                    let _ = self.entries.push((id, seq));
                }
                Err(SessionError::TransmitBufferFull) => return Pumped::Blocked,
                Err(SessionError::TooManyPending | SessionError::NotConnected) => return Pumped::Idle,
                Err(error) => return Pumped::Failed { seq, error },
            }
        }
        Pumped::Idle
    }

    /// The answer to request `id` arrived: `None` when `id` is not a queued entry (a
    /// direct call), else what to do with the queue.
    pub fn answered(&mut self, id: RequestId, answer: Answer) -> Option<Settled> {
        let i = self.entries.iter().position(|(sent, _)| *sent == id)?;
        match answer {
            Answer::Delivered => {
                // Order kept: the rest are still the queue's first entries once it leaves.
                let (_, seq) = self.entries.remove(i);
                Some(Settled::Done(seq))
            }
            Answer::Lost => {
                self.entries.clear();
                Some(Settled::Resend)
            }
        }
    }

    /// Entry `seq` left the queue another way (dropped by the overflow policy): forget it
    /// if it was in flight. Its late answer is then not a queued entry's.
    pub fn forget(&mut self, seq: u64) {
        self.entries.retain(|(_, s)| *s != seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue of sequence numbers and a fake session that numbers requests from 1.
    struct Fixture {
        queue: std::vec::Vec<u64>,
        next_id: u16,
        /// What the session says to the next sends (default: accepted).
        refusals: std::vec::Vec<SessionError>,
        sent: std::vec::Vec<u64>,
    }

    impl Fixture {
        fn new(queue: &[u64]) -> Self {
            Fixture { queue: queue.to_vec(), next_id: 0, refusals: std::vec::Vec::new(), sent: std::vec::Vec::new() }
        }

        fn pump<const W: usize>(&mut self, f: &mut InFlight<W>, window: usize) -> Pumped {
            f.pump(window, |position| {
                let seq = *self.queue.get(position)?;
                if !self.refusals.is_empty() {
                    return Some((seq, Err(self.refusals.remove(0))));
                }
                self.next_id += 1;
                self.sent.push(seq);
                Some((seq, Ok(RequestId(self.next_id))))
            })
        }

        fn remove(&mut self, seq: u64) {
            self.queue.retain(|s| *s != seq);
        }
    }

    #[test]
    fn sends_in_order_up_to_the_window_and_no_further() {
        let mut fx = Fixture::new(&[1, 2, 3, 4, 5]);
        let mut f = InFlight::<8>::new();
        assert_eq!(fx.pump(&mut f, 3), Pumped::Idle);
        assert_eq!(fx.sent, [1, 2, 3]);
        // Pumping again with a full window sends nothing.
        assert_eq!(fx.pump(&mut f, 3), Pumped::Idle);
        assert_eq!(fx.sent, [1, 2, 3]);
    }

    #[test]
    fn the_window_is_capped_by_capacity() {
        let mut fx = Fixture::new(&[1, 2, 3, 4, 5]);
        let mut f = InFlight::<2>::new();
        assert_eq!(fx.pump(&mut f, 10), Pumped::Idle);
        assert_eq!(fx.sent, [1, 2]);
    }

    #[test]
    fn an_answer_out_of_order_frees_one_slot_and_the_next_entry_goes() {
        let mut fx = Fixture::new(&[1, 2, 3, 4]);
        let mut f = InFlight::<4>::new();
        fx.pump(&mut f, 2);
        // Entry 2 (request 2) answered first.
        assert_eq!(f.answered(RequestId(2), Answer::Delivered), Some(Settled::Done(2)));
        fx.remove(2);
        fx.pump(&mut f, 2);
        assert_eq!(fx.sent, [1, 2, 3]);
        assert_eq!(f.answered(RequestId(1), Answer::Delivered), Some(Settled::Done(1)));
        assert_eq!(f.answered(RequestId(3), Answer::Delivered), Some(Settled::Done(3)));
    }

    #[test]
    fn a_lost_answer_resends_everything_from_the_front() {
        let mut fx = Fixture::new(&[1, 2, 3]);
        let mut f = InFlight::<4>::new();
        fx.pump(&mut f, 4);
        assert_eq!(f.answered(RequestId(1), Answer::Delivered), Some(Settled::Done(1)));
        fx.remove(1);
        assert_eq!(f.answered(RequestId(3), Answer::Lost), Some(Settled::Resend));
        assert!(f.is_empty());
        // The late answer to request 2 is no longer a queued entry's.
        assert_eq!(f.answered(RequestId(2), Answer::Delivered), None);
        fx.pump(&mut f, 4);
        assert_eq!(fx.sent, [1, 2, 3, 2, 3]);
    }

    #[test]
    fn restart_sends_again_from_the_front() {
        let mut fx = Fixture::new(&[7, 8]);
        let mut f = InFlight::<4>::new();
        fx.pump(&mut f, 4);
        f.restart();
        fx.pump(&mut f, 4);
        assert_eq!(fx.sent, [7, 8, 7, 8]);
    }

    #[test]
    fn a_full_transmit_buffer_blocks_and_the_entry_goes_next_time() {
        let mut fx = Fixture::new(&[1, 2]);
        let mut f = InFlight::<4>::new();
        fx.refusals.push(SessionError::TransmitBufferFull);
        assert_eq!(fx.pump(&mut f, 4), Pumped::Blocked);
        assert!(f.is_empty());
        assert_eq!(fx.pump(&mut f, 4), Pumped::Idle);
        assert_eq!(fx.sent, [1, 2]);
    }

    #[test]
    fn too_many_pending_or_offline_waits() {
        for refusal in [SessionError::TooManyPending, SessionError::NotConnected] {
            let mut fx = Fixture::new(&[1]);
            let mut f = InFlight::<4>::new();
            fx.refusals.push(refusal);
            assert_eq!(fx.pump(&mut f, 4), Pumped::Idle);
            assert!(fx.sent.is_empty());
        }
    }

    #[test]
    fn an_entry_that_can_never_go_is_reported_and_the_rest_follow() {
        let mut fx = Fixture::new(&[1, 2]);
        let mut f = InFlight::<4>::new();
        fx.refusals.push(SessionError::TooLarge);
        assert_eq!(fx.pump(&mut f, 4), Pumped::Failed { seq: 1, error: SessionError::TooLarge });
        fx.remove(1);
        assert_eq!(fx.pump(&mut f, 4), Pumped::Idle);
        assert_eq!(fx.sent, [2]);
    }

    #[test]
    fn a_dropped_entry_in_flight_is_forgotten() {
        let mut fx = Fixture::new(&[1, 2, 3]);
        let mut f = InFlight::<4>::new();
        fx.pump(&mut f, 2);
        f.forget(1);
        fx.remove(1);
        assert_eq!(f.len(), 1);
        assert_eq!(f.answered(RequestId(1), Answer::Delivered), None);
        fx.pump(&mut f, 2);
        assert_eq!(fx.sent, [1, 2, 3]);
    }

    #[test]
    fn call_errors_map_to_answers() {
        assert_eq!(Answer::from(&CallError::Timeout), Answer::Lost);
        assert_eq!(Answer::from(&CallError::Disconnected), Answer::Lost);
        assert_eq!(Answer::from(&CallError::PayloadTooLarge), Answer::Delivered);
        assert_eq!(Answer::from(&CallError::Server { code: Some(500), payload: None }), Answer::Delivered);
        assert_eq!(Answer::from(&Ok::<(), CallError<'_>>(())), Answer::Delivered);
        assert_eq!(Answer::from(&Err::<(), _>(CallError::Timeout)), Answer::Lost);
    }
}
