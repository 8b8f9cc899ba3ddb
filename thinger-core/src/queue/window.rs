//! Sending the queue: which entries go out, how many wait for their answer at once, and
//! what an answer (or its absence) does to them. Both adapters drive their ring with it;
//! they only say how an entry is handed to the session and keep the store in step.

use heapless::Vec;

use super::{Buffer, Entry, Ring};
use crate::session::{CallError, Error, RequestId};

/// The queue entries in flight on one connection: at most `limit` (≤ `N`) sent and not
/// answered yet, always the ones at the front of the ring, in order.
///
/// The adapter calls [`Window::pump`] whenever the session may take requests, feeds it
/// the answers ([`Window::answered`]), tells it about entries that left the ring by other
/// means ([`Window::removed`]) and [`Window::reset`]s it when a connection starts.
///
/// ```
/// use thinger_core::queue::{Op, Overflow, Pump, Reply, Ring, Window};
/// use thinger_core::session::RequestId;
/// let mut ring = Ring::new([0u8; 256], 10, Overflow::Reject);
/// for _ in 0..3 {
///     ring.push(Op::CallEndpoint { endpoint: "alert", data: None }).unwrap();
/// }
/// let mut window: Window<2> = Window::new(2);
/// let mut next = 40;
/// assert_eq!(window.pump(&ring, |_| { next += 1; Ok(RequestId(next)) }), Pump::Done);
/// assert_eq!(window.in_flight(), 2); // the third waits for an answer
/// assert_eq!(window.answered(RequestId(41), Reply::Answered), Some(1)); // entry 1 may leave the ring
/// ```
#[derive(Debug, Clone)]
pub struct Window<const N: usize> {
    limit: usize,
    /// Entries from the front of the ring that are in flight.
    sent: usize,
    in_flight: Vec<(RequestId, u64), N>,
}

/// What [`Window::pump`] stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pump {
    /// Nothing more to send now: the window is full, every entry is out, or the session
    /// takes no more requests until some are answered.
    Done,
    /// The session's transmit buffer is full: drain it, then pump again.
    TransmitFull,
    /// Entry `seq` can never be sent (`error` says why: larger than a frame, bad PSON).
    /// Take it out of the ring (then [`Window::removed`]) and pump again.
    Unsendable {
        /// The entry.
        seq: u64,
        /// Why the session refused it.
        error: Error,
    },
}

/// How a queued entry's call completed, as far as the queue cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reply {
    /// The server answered: OK, or an error it would repeat (the entry is done).
    Answered,
    /// No answer: the request timed out or the connection ended (the entry goes again).
    Lost,
}

impl Reply {
    /// The queue's view of a session call result.
    ///
    /// ```
    /// use thinger_core::queue::Reply;
    /// use thinger_core::session::CallError;
    /// assert_eq!(Reply::of::<()>(&Err(CallError::Timeout)), Reply::Lost);
    /// assert_eq!(Reply::of(&Ok(())), Reply::Answered);
    /// ```
    pub fn of<T>(result: &Result<T, CallError<'_>>) -> Reply {
        match result {
            Ok(_) | Err(CallError::Server { .. } | CallError::PayloadTooLarge) => Reply::Answered,
            Err(CallError::Timeout | CallError::Disconnected) => Reply::Lost,
        }
    }
}

impl<const N: usize> Window<N> {
    /// A window of `limit` entries in flight at once (1 to `N`).
    pub const fn new(limit: usize) -> Self {
        let limit = if limit == 0 {
            1
        } else if limit > N {
            N
        } else {
            limit
        };
        Window { limit, sent: 0, in_flight: Vec::new() }
    }

    /// A connection started (or ended): everything in the ring goes out again, from the
    /// front, in order.
    pub fn reset(&mut self) {
        self.sent = 0;
        self.in_flight.clear();
    }

    /// Entries sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Hands entries to the session with `send`, in order, until the window is full or the
    /// session says stop. `send` returns the request id the session gave the entry, or the
    /// session's error: `TransmitBufferFull` ends the pump with [`Pump::TransmitFull`],
    /// `TooManyPending` and `NotConnected` with [`Pump::Done`], anything else makes the entry
    /// [`Pump::Unsendable`].
    pub fn pump<B: Buffer>(
        &mut self,
        ring: &Ring<B>,
        mut send: impl FnMut(&Entry<'_>) -> Result<RequestId, Error>,
    ) -> Pump {
        while self.in_flight.len() < self.limit {
            let Some(entry) = ring.get(self.sent) else { return Pump::Done };
            match send(&entry) {
                Ok(id) => {
                    if self.in_flight.push((id, entry.seq)).is_err() {
                        // Cannot happen (limit ≤ N); never lose track of a sent entry.
                        return Pump::Done;
                    }
                    self.sent += 1;
                }
                Err(Error::TransmitBufferFull) => return Pump::TransmitFull,
                Err(Error::TooManyPending | Error::NotConnected) => return Pump::Done,
                Err(error) => return Pump::Unsendable { seq: entry.seq, error },
            }
        }
        Pump::Done
    }

    /// The call `request` completed. Returns the entry that is done and must leave the
    /// ring, if `request` was one of the queue's and the server answered it. Without an
    /// answer ([`Reply::Lost`]) everything is sent again from the front, in order, and
    /// nothing leaves.
    pub fn answered(&mut self, request: RequestId, reply: Reply) -> Option<u64> {
        let i = self.in_flight.iter().position(|(id, _)| *id == request)?;
        let (_, seq) = self.in_flight.swap_remove(i);
        match reply {
            Reply::Answered => {
                self.sent = self.sent.saturating_sub(1);
                Some(seq)
            }
            Reply::Lost => {
                self.reset();
                None
            }
        }
    }

    /// Whether `request` is a queue entry in flight (its answer is the window's).
    pub fn owns(&self, request: RequestId) -> bool {
        self.in_flight.iter().any(|(id, _)| *id == request)
    }

    /// Entry `seq` left the ring other than by its answer (dropped by the overflow policy,
    /// unsendable): if it was in flight, its answer no longer counts.
    pub fn removed(&mut self, seq: u64) {
        let before = self.in_flight.len();
        self.in_flight.retain(|(_, s)| *s != seq);
        if self.in_flight.len() < before {
            self.sent = self.sent.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Op, Overflow};

    fn ring(n: usize) -> Ring<[u8; 512]> {
        let mut ring = Ring::new([0u8; 512], 16, Overflow::Reject);
        for _ in 0..n {
            ring.push(Op::CallEndpoint { endpoint: "e", data: None }).unwrap();
        }
        ring
    }

    #[test]
    fn limit_is_clamped_to_one_and_n() {
        assert_eq!(Window::<4>::new(0).limit, 1);
        assert_eq!(Window::<4>::new(9).limit, 4);
        assert_eq!(Window::<4>::new(3).limit, 3);
    }

    #[test]
    fn sends_in_order_up_to_the_window_and_stops_on_a_full_buffer() {
        let ring = ring(5);
        let mut w: Window<8> = Window::new(3);
        let mut seqs = std::vec::Vec::new();
        let mut calls = 0;
        let pumped = w.pump(&ring, |e| {
            calls += 1;
            if calls == 3 {
                return Err(Error::TransmitBufferFull);
            }
            seqs.push(e.seq);
            Ok(RequestId(calls))
        });
        assert_eq!(pumped, Pump::TransmitFull);
        assert_eq!(seqs, [1, 2]);
        // After the drain it continues with entry 3 and stops at the window.
        assert_eq!(w.pump(&ring, |e| Ok(RequestId(e.seq as u16 + 10))), Pump::Done);
        assert_eq!(w.in_flight(), 3);
        assert!(w.owns(RequestId(13)) && !w.owns(RequestId(14)));
    }

    #[test]
    fn lost_answer_resends_from_the_front_and_an_unsendable_entry_is_reported() {
        let mut ring = ring(3);
        let mut w: Window<4> = Window::new(4);
        w.pump(&ring, |e| Ok(RequestId(e.seq as u16)));
        assert_eq!(w.answered(RequestId(2), Reply::of::<()>(&Err(CallError::Timeout))), None);
        assert_eq!(w.in_flight(), 0);
        let pumped = w.pump(&ring, |e| if e.seq == 2 { Err(Error::TooLarge) } else { Ok(RequestId(e.seq as u16)) });
        assert_eq!(pumped, Pump::Unsendable { seq: 2, error: Error::TooLarge });
        assert!(ring.remove(2));
        w.removed(2);
        assert_eq!(w.pump(&ring, |e| Ok(RequestId(e.seq as u16))), Pump::Done);
        assert_eq!(w.in_flight(), 2);
        // An answer that is not the queue's leaves it alone.
        assert_eq!(w.answered(RequestId(9), Reply::Answered), None);
        assert_eq!(w.answered(RequestId(3), Reply::of(&Ok(()))), Some(3));
    }
}
