//! The ring: queued operations as records, packed in one caller-owned byte buffer.

use super::record::{self, RecordError};
use super::{Entry, Op, Overflow};

/// The memory a [`Ring`] keeps its records in: a fixed array or slice (no heap), or, with
/// the `alloc` feature, a `Vec<u8>` that grows on demand.
pub trait Buffer: AsRef<[u8]> + AsMut<[u8]> {
    /// Makes the buffer at least `len` bytes long if it can; returns whether it is.
    fn grow_to(&mut self, len: usize) -> bool {
        self.as_ref().len() >= len
    }
}

impl<const N: usize> Buffer for [u8; N] {}
impl Buffer for &mut [u8] {}
#[cfg(feature = "alloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
impl Buffer for alloc::vec::Vec<u8> {
    fn grow_to(&mut self, len: usize) -> bool {
        if self.len() < len {
            // Double, so that a growing queue moves its bytes O(log n) times.
            let target = len.max(self.len().saturating_mul(2)).max(256);
            self.resize(target, 0);
        }
        true
    }
}

/// Each slot: a 4-byte length, a 1-byte state, then the record.
const SLOT_HEADER: usize = 5;
const LIVE: u8 = 1;
const REMOVED: u8 = 0;

/// What [`Ring::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pushed {
    /// Queued under this sequence number.
    Queued(u64),
    /// Queued; the oldest entries were dropped for room (`dropped` of them, the last
    /// dropped having sequence number `last_dropped`).
    QueuedDropping {
        /// The new entry's sequence number.
        seq: u64,
        /// How many old entries were dropped.
        dropped: usize,
        /// Sequence number of the newest dropped entry (all older ones are gone too).
        last_dropped: u64,
    },
    /// Not queued: the queue is full and the policy is [`Overflow::Reject`].
    Rejected,
    /// Not queued: the queue is full and the policy is [`Overflow::DropNewest`].
    Dropped,
}

/// Why an operation can never be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PushError {
    /// Its record is larger than the whole buffer.
    TooLarge,
    /// It cannot be encoded (a name longer than 255 bytes).
    Record(RecordError),
}

/// A bounded FIFO of pending bucket writes and endpoint calls, each with an increasing
/// sequence number, in a caller-owned buffer. Bounded twice: by `capacity` entries and by
/// the buffer's bytes; when either is reached the [`Overflow`] policy decides.
///
/// Entries leave by [`Ring::remove`] (acknowledged, in any order) or by the overflow policy
/// (the oldest). The ring does no I/O: an adapter that persists it saves the record of each
/// pushed entry ([`Ring::record`]) and deletes removed ones, and at boot hands the stored
/// records back to [`Ring::restore`].
///
/// ```
/// use thinger_core::queue::{Op, Overflow, Pushed, Ring};
/// let mut ring = Ring::new([0u8; 256], 2, Overflow::DropOldest);
/// let write = |n: &'static [u8]| Op::WriteBucket { bucket: "b", record: n };
/// assert_eq!(ring.push(write(&[1])), Ok(Pushed::Queued(1)));
/// assert_eq!(ring.push(write(&[2])), Ok(Pushed::Queued(2)));
/// assert_eq!(ring.push(write(&[3])), Ok(Pushed::QueuedDropping { seq: 3, dropped: 1, last_dropped: 1 }));
/// assert_eq!(ring.front().map(|e| e.seq), Some(2));
/// assert!(ring.remove(2));
/// assert_eq!(ring.iter().map(|e| e.op).collect::<Vec<_>>(), [write(&[3])]);
/// ```
#[derive(Debug)]
pub struct Ring<B: Buffer> {
    buf: B,
    /// Byte range of the slots in use: `start..end`.
    start: usize,
    end: usize,
    live: usize,
    capacity: usize,
    overflow: Overflow,
    next_seq: u64,
}

impl<B: Buffer> Ring<B> {
    /// An empty ring holding at most `capacity` entries (at least 1) in `buf`.
    pub fn new(buf: B, capacity: usize, overflow: Overflow) -> Self {
        Ring { buf, start: 0, end: 0, live: 0, capacity: capacity.max(1), overflow, next_seq: 1 }
    }

    /// Entries queued.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Entries it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Its overflow policy.
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// Bytes in use (records, their slot headers, and removed records not reclaimed yet).
    pub fn bytes_used(&self) -> usize {
        self.end - self.start
    }

    /// The sequence number the next pushed entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Queues `op` at the back, applying the overflow policy when full.
    pub fn push(&mut self, op: Op<'_>) -> Result<Pushed, PushError> {
        let seq = self.next_seq;
        let pushed = self.insert(Entry { seq, op })?;
        if matches!(pushed, Pushed::Queued(_) | Pushed::QueuedDropping { .. }) {
            self.next_seq = seq.wrapping_add(1);
        }
        Ok(pushed)
    }

    fn insert(&mut self, entry: Entry<'_>) -> Result<Pushed, PushError> {
        let len = record::encoded_len(&entry.op);
        let slot = SLOT_HEADER + len;
        if u32::try_from(len).is_err() || !self.buf.grow_to(slot) {
            return Err(PushError::TooLarge);
        }
        let mut dropped = 0;
        let mut last_dropped = 0;
        while self.live >= self.capacity || !self.make_room(slot) {
            match self.overflow {
                Overflow::Reject => return Ok(Pushed::Rejected),
                Overflow::DropNewest => return Ok(Pushed::Dropped),
                Overflow::DropOldest => match self.front().map(|e| e.seq) {
                    Some(old) => {
                        self.remove(old);
                        dropped += 1;
                        last_dropped = old;
                    }
                    // Empty and still no room: the buffer is smaller than the slot.
                    None => return Err(PushError::TooLarge),
                },
            }
        }
        let at = self.end;
        let buf = self.buf.as_mut();
        let Some(out) = buf.get_mut(at..at + slot) else { return Err(PushError::TooLarge) };
        let (header, body) = out.split_at_mut(SLOT_HEADER);
        record::encode(&entry, body).map_err(PushError::Record)?;
        let (len_out, state) = header.split_at_mut(4);
        len_out.copy_from_slice(&(len as u32).to_le_bytes());
        state.copy_from_slice(&[LIVE]);
        self.end += slot;
        self.live += 1;
        Ok(if dropped == 0 {
            Pushed::Queued(entry.seq)
        } else {
            Pushed::QueuedDropping { seq: entry.seq, dropped, last_dropped }
        })
    }

    /// Makes `slot` bytes free at the end, compacting the live records to the front if
    /// needed (or growing a growable buffer). Returns whether it could.
    fn make_room(&mut self, slot: usize) -> bool {
        if self.buf.as_ref().len() - self.end >= slot {
            return true;
        }
        self.compact();
        if self.buf.as_ref().len() - self.end >= slot {
            return true;
        }
        self.buf.grow_to(self.end + slot)
    }

    /// Moves the live records to the start of the buffer, dropping removed ones.
    fn compact(&mut self) {
        let mut read = self.start;
        let mut write = 0;
        let end = self.end;
        let buf = self.buf.as_mut();
        while read < end {
            let Some(slot) = slot_len(buf, read) else { break };
            if buf.get(read + 4) == Some(&LIVE) {
                if write != read {
                    buf.copy_within(read..read + slot, write);
                }
                write += slot;
            }
            read += slot;
        }
        self.start = 0;
        self.end = write;
    }

    /// The live entries, oldest first.
    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: self.buf.as_ref(), at: self.start, end: self.end }
    }

    /// The oldest entry.
    pub fn front(&self) -> Option<Entry<'_>> {
        self.iter().next()
    }

    /// The entry `index` places from the front.
    pub fn get(&self, index: usize) -> Option<Entry<'_>> {
        self.iter().nth(index)
    }

    /// The position from the front of the entry with sequence number `seq`.
    pub fn position(&self, seq: u64) -> Option<usize> {
        self.iter().position(|e| e.seq == seq)
    }

    /// The stored record of entry `seq` (what a persistent store saves).
    pub fn record(&self, seq: u64) -> Option<&[u8]> {
        self.slots().find(|&(_, rec)| record::peek_seq(rec) == Some(seq)).map(|(_, rec)| rec)
    }

    /// Live slots: (offset, record bytes).
    fn slots(&self) -> impl Iterator<Item = (usize, &[u8])> {
        let buf = self.buf.as_ref();
        let mut at = self.start;
        let end = self.end;
        core::iter::from_fn(move || {
            while at < end {
                let slot = slot_len(buf, at)?;
                let here = at;
                at += slot;
                if buf.get(here + 4) == Some(&LIVE) {
                    return buf.get(here + SLOT_HEADER..here + slot).map(|r| (here, r));
                }
            }
            None
        })
    }

    /// Removes entry `seq` (acknowledged, answered with an error, or given up); false when
    /// it is not queued.
    pub fn remove(&mut self, seq: u64) -> bool {
        let Some((at, _)) = self.slots().find(|&(_, rec)| record::peek_seq(rec) == Some(seq)) else {
            return false;
        };
        if let Some(state) = self.buf.as_mut().get_mut(at + 4) {
            *state = REMOVED;
        }
        self.live -= 1;
        // Reclaim removed slots at the front at once; the others at the next compaction.
        let buf = self.buf.as_ref();
        while self.start < self.end && buf.get(self.start + 4) == Some(&REMOVED) {
            match slot_len(buf, self.start) {
                Some(slot) => self.start += slot,
                None => break,
            }
        }
        if self.live == 0 {
            self.start = 0;
            self.end = 0;
        }
        true
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.live = 0;
    }

    /// Puts back one stored record at boot. Records must come in the order they were
    /// pushed: one whose sequence number is not above every entry restored so far (a
    /// duplicate, a stale copy) is refused, so nothing is ever replayed twice. The
    /// overflow policy applies as for [`Ring::push`]. Later pushes continue the numbering.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Pushed, RestoreError> {
        let entry = record::decode(bytes).map_err(RestoreError::Corrupt)?;
        if entry.seq < self.next_seq || entry.seq == u64::MAX {
            return Err(RestoreError::Duplicate { seq: entry.seq });
        }
        let pushed = self.insert(entry).map_err(RestoreError::Push)?;
        self.next_seq = entry.seq + 1;
        Ok(pushed)
    }
}

/// Why [`Ring::restore`] skipped a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RestoreError {
    /// Not a valid record (torn write, garbage).
    Corrupt(RecordError),
    /// Its sequence number was restored already or is older than one restored.
    Duplicate {
        /// The record's sequence number.
        seq: u64,
    },
    /// It cannot be queued (larger than the buffer).
    Push(PushError),
}

fn slot_len(buf: &[u8], at: usize) -> Option<usize> {
    let len = buf.get(at..at + 4)?;
    let len = u32::from_le_bytes([*len.first()?, *len.get(1)?, *len.get(2)?, *len.get(3)?]) as usize;
    Some(SLOT_HEADER + len)
}

/// The live entries of a [`Ring`], oldest first.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    buf: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        while self.at < self.end {
            let slot = slot_len(self.buf, self.at)?;
            let here = self.at;
            self.at += slot;
            if self.buf.get(here + 4) == Some(&LIVE) {
                // Records in the ring were encoded by the ring: decoding cannot fail.
                return self.buf.get(here + SLOT_HEADER..here + slot).and_then(|r| record::decode(r).ok());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn write(n: u8) -> Op<'static> {
        const BYTES: [u8; 256] = {
            let mut b = [0u8; 256];
            let mut i = 0;
            while i < 256 {
                b[i] = i as u8;
                i += 1;
            }
            b
        };
        Op::WriteBucket { bucket: "b", record: &BYTES[n as usize..n as usize + 1] }
    }

    fn seqs<B: Buffer>(ring: &Ring<B>) -> Vec<u64> {
        ring.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn overflow_policies_by_count() {
        let mut r = Ring::new([0u8; 512], 2, Overflow::Reject);
        assert_eq!(r.push(write(1)), Ok(Pushed::Queued(1)));
        assert_eq!(r.push(write(2)), Ok(Pushed::Queued(2)));
        assert_eq!(r.push(write(3)), Ok(Pushed::Rejected));
        assert_eq!(seqs(&r), [1, 2]);
        assert_eq!(r.next_seq(), 3, "a refused entry takes no number");

        let mut r = Ring::new([0u8; 512], 2, Overflow::DropNewest);
        r.push(write(1)).unwrap();
        r.push(write(2)).unwrap();
        assert_eq!(r.push(write(3)), Ok(Pushed::Dropped));
        assert_eq!(r.get(1).unwrap().op, write(2));

        let mut r = Ring::new([0u8; 512], 2, Overflow::DropOldest);
        r.push(write(1)).unwrap();
        r.push(write(2)).unwrap();
        assert_eq!(r.push(write(3)), Ok(Pushed::QueuedDropping { seq: 3, dropped: 1, last_dropped: 1 }));
        assert_eq!(r.iter().map(|e| e.op).collect::<Vec<_>>(), [write(2), write(3)]);
    }

    #[test]
    fn overflow_by_bytes_drops_as_many_as_needed() {
        let slot = SLOT_HEADER + record::encoded_len(&write(0));
        let mut r = Ring::new([0u8; 64], 100, Overflow::DropOldest);
        let fits = 64 / slot;
        for n in 0..fits {
            assert_eq!(r.push(write(n as u8)), Ok(Pushed::Queued(n as u64 + 1)));
        }
        let big = Op::CallEndpoint { endpoint: "e", data: Some(&[7; 30]) };
        let Ok(Pushed::QueuedDropping { dropped, last_dropped, .. }) = r.push(big) else { panic!() };
        assert!(dropped >= 2, "dropped {dropped}");
        assert_eq!(last_dropped, dropped as u64);
        assert_eq!(r.iter().last().unwrap().op, big);
        // Larger than the whole buffer: never fits.
        assert_eq!(r.push(Op::CallEndpoint { endpoint: "e", data: Some(&[0; 64]) }), Err(PushError::TooLarge));
        let mut r = Ring::new([0u8; 64], 100, Overflow::Reject);
        while let Ok(Pushed::Queued(_)) = r.push(write(1)) {}
        assert_eq!(r.push(write(1)), Ok(Pushed::Rejected));
    }

    #[test]
    fn out_of_order_removal_and_compaction_keep_order() {
        let mut r = Ring::new([0u8; 100], 100, Overflow::Reject);
        let mut expected = Vec::new();
        let mut ops = Vec::new();
        for round in 0..200u32 {
            match r.push(write((round % 200) as u8)) {
                Ok(Pushed::Queued(seq)) => {
                    expected.push(seq);
                    ops.push((seq, write((round % 200) as u8)));
                }
                Ok(Pushed::Rejected) => {
                    // Full: acknowledge the second oldest, then the oldest.
                    let second = expected.remove(1);
                    assert!(r.remove(second));
                    let first = expected.remove(0);
                    assert!(r.remove(first));
                    assert!(!r.remove(first));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(seqs(&r), expected);
        }
        for e in r.iter() {
            assert!(ops.contains(&(e.seq, e.op)));
        }
    }

    #[test]
    fn restore_refuses_duplicates_and_continues_numbering() {
        let mut r = Ring::new([0u8; 256], 10, Overflow::Reject);
        r.push(write(1)).unwrap();
        r.push(write(2)).unwrap();
        let first: Vec<u8> = r.record(1).unwrap().to_vec();
        let second: Vec<u8> = r.record(2).unwrap().to_vec();
        let mut back = Ring::new([0u8; 256], 10, Overflow::Reject);
        assert_eq!(back.restore(&first), Ok(Pushed::Queued(1)));
        assert_eq!(back.restore(&first), Err(RestoreError::Duplicate { seq: 1 }));
        assert_eq!(back.restore(&second), Ok(Pushed::Queued(2)));
        let mut torn = second.clone();
        torn.pop();
        assert!(matches!(back.restore(&torn), Err(RestoreError::Corrupt(_))));
        assert_eq!(back.push(write(3)), Ok(Pushed::Queued(3)));
        assert_eq!(seqs(&back), [1, 2, 3]);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn a_vec_buffer_grows() {
        let mut r = Ring::new(Vec::new(), 10_000, Overflow::Reject);
        for n in 0..5000u32 {
            assert_eq!(r.push(write((n % 200) as u8)), Ok(Pushed::Queued(u64::from(n) + 1)));
        }
        assert_eq!(r.len(), 5000);
        assert_eq!(r.push(Op::CallEndpoint { endpoint: "e", data: Some(&[1; 100_000]) }), Ok(Pushed::Queued(5001)));
    }
}
