//! Reading a stored log back: records and removal marks packed one after another, with
//! whatever a crash or bad flash left between them.

use super::record::{self, REMOVAL_LEN, REMOVAL_MAGIC, RecordError};
use super::{Buffer, Pushed, RestoreError, Ring};

/// One item of a stored log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned<'a> {
    /// A whole, valid record (an entry queued).
    Add(&'a [u8]),
    /// A valid removal mark (the entry left the queue).
    Remove(u64),
    /// Bytes that are neither: skipped up to the next byte that may start a record.
    Corrupt {
        /// Where they start in the log.
        offset: usize,
        /// How many bytes were skipped.
        skipped: usize,
        /// What was wrong with the first attempt.
        error: RecordError,
    },
}

/// Walks a stored log: its records, removal marks and the corrupt stretches between them.
/// Never panics and always advances, whatever the bytes.
///
/// ```
/// use thinger_core::queue::{Entry, Op, Scanned, record, scan};
/// let mut log = [0u8; 64];
/// let n = record::encode(&Entry { seq: 1, op: Op::CallEndpoint { endpoint: "e", data: None } }, &mut log).unwrap();
/// log[n] = 0x99; // garbage after it
/// let items: Vec<_> = scan(&log[..n + 1]).collect();
/// assert_eq!(items[0], Scanned::Add(&log[..n]));
/// assert!(matches!(items[1], Scanned::Corrupt { offset, skipped: 1, .. } if offset == n));
/// ```
pub fn scan(log: &[u8]) -> impl Iterator<Item = Scanned<'_>> {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let rest = log.get(at..).filter(|r| !r.is_empty())?;
        let item = match read_one(rest) {
            Ok((item, len)) => {
                at += len;
                item
            }
            Err(error) => {
                // Resynchronise on the next byte that may begin a record or a mark.
                let skipped = rest
                    .iter()
                    .skip(1)
                    .position(|&b| b == record::MAGIC || b == REMOVAL_MAGIC)
                    .map_or(rest.len(), |p| p + 1);
                let offset = at;
                at += skipped;
                Scanned::Corrupt { offset, skipped, error }
            }
        };
        Some(item)
    })
}

fn read_one(rest: &[u8]) -> Result<(Scanned<'_>, usize), RecordError> {
    if rest.first() == Some(&REMOVAL_MAGIC) {
        let seq = record::decode_removal(rest.get(..REMOVAL_LEN).ok_or(RecordError::Truncated)?)?;
        return Ok((Scanned::Remove(seq), REMOVAL_LEN));
    }
    let len = record::peek_len(rest)?;
    let bytes = rest.get(..len).ok_or(RecordError::Truncated)?;
    record::decode(bytes)?;
    Ok((Scanned::Add(bytes), len))
}

/// What a restore put back and what it skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Restored {
    /// Entries queued again.
    pub restored: usize,
    /// Corrupt stretches skipped (torn writes, garbage).
    pub corrupt: usize,
    /// Records refused because their sequence number was seen already.
    pub duplicates: usize,
    /// Entries that did not fit (dropped or rejected by the overflow policy, or too large).
    pub overflowed: usize,
    /// Entries removed again by a later removal mark.
    pub removed: usize,
}

impl Restored {
    /// Counts the outcome of one [`Ring::restore`].
    pub fn count(&mut self, result: Result<Pushed, RestoreError>) {
        match result {
            Ok(Pushed::Queued(_)) => self.restored += 1,
            Ok(Pushed::QueuedDropping { dropped, .. }) => {
                self.restored += 1;
                self.overflowed += dropped;
                self.restored = self.restored.saturating_sub(dropped);
            }
            Ok(Pushed::Rejected | Pushed::Dropped) | Err(RestoreError::Push(_)) => self.overflowed += 1,
            Err(RestoreError::Corrupt(_)) => self.corrupt += 1,
            Err(RestoreError::Duplicate { .. }) => self.duplicates += 1,
        }
    }
}

/// Rebuilds `ring` from an append-only log of records and removal marks (what
/// thinger-std's file store writes). Bad stretches are skipped and counted, a record seen
/// already is never queued again, and removal marks take their entry out.
///
/// ```
/// use thinger_core::queue::{Entry, Op, Overflow, Ring, record, replay};
/// let mut log = Vec::new();
/// for seq in 1..=3u64 {
///     let mut rec = [0u8; 64];
///     let n = record::encode(&Entry { seq, op: Op::WriteBucket { bucket: "b", record: &[seq as u8] } }, &mut rec).unwrap();
///     log.extend_from_slice(&rec[..n]);
/// }
/// let mut mark = [0u8; 13];
/// record::encode_removal(1, &mut mark);
/// log.extend_from_slice(&mark);
/// log.extend_from_slice(&[0x51, 0x01, 0x02]); // a torn last write
/// let mut ring = Ring::new([0u8; 256], 10, Overflow::Reject);
/// let report = replay(&mut ring, &log);
/// assert_eq!((ring.len(), report.removed, report.corrupt), (2, 1, 1));
/// assert_eq!(ring.next_seq(), 4);
/// ```
pub fn replay<B: Buffer>(ring: &mut Ring<B>, log: &[u8]) -> Restored {
    let mut report = Restored::default();
    for item in scan(log) {
        match item {
            Scanned::Add(bytes) => report.count(ring.restore(bytes)),
            Scanned::Remove(seq) => {
                if ring.remove(seq) {
                    report.removed += 1;
                    report.restored = report.restored.saturating_sub(1);
                }
            }
            Scanned::Corrupt { .. } => report.corrupt += 1,
        }
    }
    report
}
