//! The offline queue: bucket writes and endpoint calls wait here until the server has
//! acknowledged them, in order, across outages and (optionally) across restarts.
//!
//! An entry is removed only when its OK (or an ERROR answer) arrived: delivery is
//! at-least-once. A write whose OK was lost with the connection is sent again after the
//! reconnect, so the server may see it twice.
//!
//! The entries live in thinger-core's offline-queue ring ([`thinger_core::queue::Ring`],
//! here in a growable buffer), the same queue the embassy client keeps in flash.
//! Persistence is an append-only log of the ring's own records (each with a CRC-32) and
//! removal marks, in thinger-core's format. Opening replays it with
//! [`thinger_core::queue::replay`]: torn writes and garbage are skipped and reported, an
//! entry is never restored twice. Each added entry is `fsync`ed before the call returns,
//! together with the removals written since the last one (one `fsync` per batch); a lost
//! removal only means a repeated delivery, which at-least-once allows. The log is rewritten
//! compactly when most of it is removals, or when opening found damage.
//!
//! ```
//! use thinger_std::{Overflow, QueueConfig};
//! let config = QueueConfig::new().capacity(10_000).overflow(Overflow::DropOldest).persist("outbox.log");
//! assert_eq!(config.capacity, 10_000);
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use thinger_core::queue::{self as core_queue, Ring, Storage, record};

/// What happens to a new entry when the queue is full.
///
/// ```
/// use thinger_std::{Overflow, QueueConfig};
/// assert_eq!(Overflow::default(), Overflow::Reject);
/// let config = QueueConfig::new().overflow(Overflow::DropOldest);
/// assert_eq!(config.overflow, Overflow::DropOldest);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Refuse the new entry: the call fails with `Error::QueueFull` (nothing is lost
    /// silently).
    #[default]
    Reject,
    /// Drop the oldest entry to make room (its waiter, if any, gets `Error::Dropped`).
    DropOldest,
    /// Drop the new entry (the call fails with `Error::Dropped`).
    DropNewest,
}

/// Offline queue settings.
///
/// ```
/// use thinger_std::{Overflow, QueueConfig};
/// let c = QueueConfig::default();
/// assert_eq!((c.capacity, c.overflow, c.path), (1000, Overflow::Reject, None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Entries held at most.
    pub capacity: usize,
    /// What to do when full.
    pub overflow: Overflow,
    /// A file to keep the queue in, so that a restart keeps it.
    pub path: Option<PathBuf>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { capacity: 1000, overflow: Overflow::Reject, path: None }
    }
}

impl QueueConfig {
    /// 1000 entries, rejecting when full, in memory only.
    ///
    /// ```
    /// assert_eq!(thinger_std::QueueConfig::new(), thinger_std::QueueConfig::default());
    /// ```
    pub fn new() -> Self {
        QueueConfig::default()
    }
    /// Sets the capacity.
    ///
    /// ```
    /// assert_eq!(thinger_std::QueueConfig::new().capacity(5).capacity, 5);
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }
    /// Sets the overflow policy.
    ///
    /// ```
    /// use thinger_std::{Overflow, QueueConfig};
    /// assert_eq!(QueueConfig::new().overflow(Overflow::DropNewest).overflow, Overflow::DropNewest);
    /// ```
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }
    /// Keeps the queue in `path` (created if missing).
    ///
    /// ```
    /// let c = thinger_std::QueueConfig::new().persist("/var/lib/my-device/outbox.log");
    /// assert!(c.path.is_some());
    /// ```
    pub fn persist(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }
}

/// A queued operation (PSON payloads already encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// `write_bucket(bucket, record)`.
    WriteBucket { bucket: String, record: Vec<u8> },
    /// `call_endpoint(endpoint, data)`.
    CallEndpoint { endpoint: String, data: Option<Vec<u8>> },
}

impl Op {
    fn as_core(&self) -> core_queue::Op<'_> {
        match self {
            Op::WriteBucket { bucket, record } => core_queue::Op::WriteBucket { bucket, record },
            Op::CallEndpoint { endpoint, data } => core_queue::Op::CallEndpoint { endpoint, data: data.as_deref() },
        }
    }

    fn from_core(op: core_queue::Op<'_>) -> Op {
        match op {
            core_queue::Op::WriteBucket { bucket, record } => {
                Op::WriteBucket { bucket: bucket.to_owned(), record: record.to_vec() }
            }
            core_queue::Op::CallEndpoint { endpoint, data } => {
                Op::CallEndpoint { endpoint: endpoint.to_owned(), data: data.map(<[u8]>::to_vec) }
            }
        }
    }
}

/// One queued operation with its sequence number (increasing, never reused in a log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) op: Op,
}

/// The result of [`OfflineQueue::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued under this sequence number.
    Queued(u64),
    /// Queued, and the oldest entry (this sequence number) was dropped for it.
    QueuedDropping { seq: u64, dropped: u64 },
    /// Not queued: full and the policy rejects.
    Rejected,
    /// Not queued: full and the policy drops the newest.
    Dropped,
}

/// The queue, with its optional log file.
#[derive(Debug)]
pub(crate) struct OfflineQueue {
    ring: Ring<Vec<u8>>,
    log: Option<Log>,
}

#[derive(Debug)]
struct Log {
    path: PathBuf,
    file: File,
    /// Records and removal marks in the file.
    records: usize,
    /// Removal marks written since the last `fsync`.
    unsynced: bool,
}

impl OfflineQueue {
    /// Opens the queue, replaying the log file when one is configured.
    pub(crate) fn open(config: &QueueConfig) -> io::Result<Self> {
        let overflow = match config.overflow {
            Overflow::Reject => core_queue::Overflow::Reject,
            Overflow::DropOldest => core_queue::Overflow::DropOldest,
            Overflow::DropNewest => core_queue::Overflow::DropNewest,
        };
        let mut queue = OfflineQueue { ring: Ring::new(Vec::new(), config.capacity.max(1), overflow), log: None };
        if let Some(path) = &config.path {
            let bytes = match File::open(path) {
                Ok(mut f) => {
                    let mut bytes = Vec::new();
                    f.read_to_end(&mut bytes)?;
                    bytes
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            let report = core_queue::replay(&mut queue.ring, &bytes);
            let records =
                core_queue::scan(&bytes).filter(|s| !matches!(s, core_queue::Scanned::Corrupt { .. })).count();
            let damaged = report.corrupt > 0 || report.duplicates > 0 || report.overflowed > 0;
            if damaged {
                tracing::warn!(
                    "offline queue {}: skipped {} damaged stretches, {} repeated and {} overflowing records",
                    path.display(),
                    report.corrupt,
                    report.duplicates,
                    report.overflowed
                );
            }
            let file = OpenOptions::new().create(true).truncate(false).read(true).append(true).open(path)?;
            queue.log = Some(Log { path: path.clone(), file, records, unsynced: false });
            if damaged || queue.needs_compaction() {
                // Rewrite only what was restored, so the damage is not read again.
                queue.compact()?;
            }
        }
        Ok(queue)
    }

    /// Entries queued.
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The entry at `index` from the front.
    pub(crate) fn get(&self, index: usize) -> Option<Entry> {
        self.ring.get(index).map(|e| Entry { seq: e.seq, op: Op::from_core(e.op) })
    }

    /// Position of the entry with sequence number `seq`.
    pub(crate) fn position(&self, seq: u64) -> Option<usize> {
        self.ring.position(seq)
    }

    /// Adds an operation at the back, applying the overflow policy; with a log file, the
    /// entry is on disk (`fsync`ed) when this returns.
    pub(crate) fn push(&mut self, op: Op) -> io::Result<Pushed> {
        let pushed =
            self.ring.push(op.as_core()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:?}")))?;
        let (seq, dropped) = match pushed {
            core_queue::Pushed::Queued(seq) => (seq, None),
            core_queue::Pushed::QueuedDropping { seq, last_dropped, .. } => (seq, Some(last_dropped)),
            core_queue::Pushed::Rejected => return Ok(Pushed::Rejected),
            core_queue::Pushed::Dropped => return Ok(Pushed::Dropped),
        };
        if let Some(log) = &mut self.log {
            if let Some(dropped) = dropped {
                log.delete(dropped)?;
            }
            if let Some(rec) = self.ring.record(seq) {
                log.save(rec)?;
            }
            log.sync()?;
        }
        Ok(match dropped {
            Some(dropped) => Pushed::QueuedDropping { seq, dropped },
            None => Pushed::Queued(seq),
        })
    }

    /// Removes the entry `seq` (acknowledged or dropped); false if it is not queued.
    pub(crate) fn remove(&mut self, seq: u64) -> io::Result<bool> {
        if !self.ring.remove(seq) {
            return Ok(false);
        }
        if let Some(log) = &mut self.log {
            log.delete(seq)?;
            if self.ring.is_empty() {
                // Nothing left to lose: make the empty state durable now.
                log.sync()?;
            }
        }
        if self.needs_compaction() {
            self.compact()?;
        }
        Ok(true)
    }

    fn needs_compaction(&self) -> bool {
        self.log.as_ref().is_some_and(|log| log.records > 2 * self.ring.len() + 256)
    }

    /// Rewrites the log with only the live entries (to a temporary file, then renamed).
    fn compact(&mut self) -> io::Result<()> {
        let Some(log) = &mut self.log else { return Ok(()) };
        let tmp = temp_path(&log.path);
        {
            let mut out = io::BufWriter::new(File::create(&tmp)?);
            for entry in self.ring.iter() {
                if let Some(rec) = self.ring.record(entry.seq) {
                    out.write_all(rec)?;
                }
            }
            out.flush()?;
            out.get_ref().sync_all()?;
        }
        std::fs::rename(&tmp, &log.path)?;
        log.file = OpenOptions::new().read(true).append(true).open(&log.path)?;
        log.records = self.ring.len();
        log.unsynced = false;
        Ok(())
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".compact");
    path.with_file_name(name)
}

impl Log {
    /// One write per record, so a crash leaves at most one torn record at the end.
    fn append(&mut self, rec: &[u8]) -> io::Result<()> {
        self.file.write_all(rec)?;
        self.records += 1;
        self.unsynced = true;
        Ok(())
    }
}

/// The file store: an append-only log of records and removal marks.
impl Storage for Log {
    type Error = io::Error;

    fn save(&mut self, rec: &[u8]) -> io::Result<()> {
        self.append(rec)
    }

    fn delete(&mut self, seq: u64) -> io::Result<()> {
        let mut mark = [0u8; record::REMOVAL_LEN];
        record::encode_removal(seq, &mut mark);
        self.append(&mark)
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// The live records: the log replayed (removal marks applied, damage skipped).
    fn load(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let bytes = std::fs::read(&self.path)?;
        let mut ring = Ring::new(Vec::new(), usize::MAX, core_queue::Overflow::Reject);
        core_queue::replay(&mut ring, &bytes);
        for entry in ring.iter() {
            if let Some(rec) = ring.record(entry.seq) {
                each(rec);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(n: u32) -> Op {
        Op::WriteBucket { bucket: "b".into(), record: n.to_le_bytes().to_vec() }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("thinger-std-queue-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn overflow_policies() {
        let mut q = OfflineQueue::open(&QueueConfig::new().capacity(2)).unwrap();
        assert_eq!(q.push(op(1)).unwrap(), Pushed::Queued(1));
        assert_eq!(q.push(op(2)).unwrap(), Pushed::Queued(2));
        assert_eq!(q.push(op(3)).unwrap(), Pushed::Rejected);
        assert_eq!(q.len(), 2);

        let mut q = OfflineQueue::open(&QueueConfig::new().capacity(2).overflow(Overflow::DropNewest)).unwrap();
        q.push(op(1)).unwrap();
        q.push(op(2)).unwrap();
        assert_eq!(q.push(op(3)).unwrap(), Pushed::Dropped);
        assert_eq!(q.get(1).unwrap().op, op(2));

        let mut q = OfflineQueue::open(&QueueConfig::new().capacity(2).overflow(Overflow::DropOldest)).unwrap();
        q.push(op(1)).unwrap();
        q.push(op(2)).unwrap();
        assert_eq!(q.push(op(3)).unwrap(), Pushed::QueuedDropping { seq: 3, dropped: 1 });
        assert_eq!(q.get(0).unwrap().op, op(2));
        assert_eq!(q.get(1).unwrap().op, op(3));
    }

    #[test]
    fn persisted_queue_survives_reopen_and_torn_tail() {
        let path = temp("reopen");
        let config = QueueConfig::new().capacity(100).persist(&path);
        {
            let mut q = OfflineQueue::open(&config).unwrap();
            for n in 0..10 {
                q.push(op(n)).unwrap();
            }
            assert!(q.remove(1).unwrap());
            assert!(q.remove(2).unwrap());
            assert!(!q.remove(2).unwrap());
        }
        // A crash in the middle of the next record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[record::MAGIC, 1, 2, 0, 0]).unwrap();
        drop(f);
        let mut q = OfflineQueue::open(&config).unwrap();
        assert_eq!(q.len(), 8);
        assert_eq!(q.get(0).unwrap().seq, 3);
        assert_eq!(q.get(0).unwrap().op, op(2));
        // New entries continue the numbering and land after the cut.
        assert_eq!(q.push(op(99)).unwrap(), Pushed::Queued(11));
        drop(q);
        let q = OfflineQueue::open(&config).unwrap();
        assert_eq!(q.len(), 9);
        assert_eq!(q.get(8).unwrap().op, op(99));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn log_is_compacted() {
        let path = temp("compact");
        let config = QueueConfig::new().capacity(10_000).persist(&path);
        let mut q = OfflineQueue::open(&config).unwrap();
        for n in 0..2000 {
            let Pushed::Queued(seq) = q.push(op(n)).unwrap() else { panic!() };
            if n % 100 != 0 {
                q.remove(seq).unwrap();
            }
        }
        assert_eq!(q.len(), 20);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 20_000, "log not compacted: {size} bytes");
        drop(q);
        let q = OfflineQueue::open(&config).unwrap();
        assert_eq!(q.len(), 20);
        assert_eq!(q.get(1).unwrap().op, op(100));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn garbage_file_is_an_empty_queue() {
        let path = temp("garbage");
        std::fs::write(&path, [0xff; 64]).unwrap();
        let mut q = OfflineQueue::open(&QueueConfig::new().persist(&path)).unwrap();
        assert!(q.is_empty());
        q.push(op(1)).unwrap();
        drop(q);
        assert_eq!(OfflineQueue::open(&QueueConfig::new().persist(&path)).unwrap().len(), 1);
        let _ = std::fs::remove_file(&path);
    }
}

#[cfg(test)]
mod damage_tests {
    use super::*;

    #[test]
    fn the_file_store_loads_its_live_records() {
        let path = std::env::temp_dir().join(format!("thinger-std-queue-{}-load", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut q = OfflineQueue::open(&QueueConfig::new().persist(&path)).unwrap();
        for n in 0..3u8 {
            q.push(Op::WriteBucket { bucket: "b".into(), record: vec![n] }).unwrap();
        }
        q.remove(2).unwrap();
        let mut seqs = Vec::new();
        q.log.as_mut().unwrap().load(&mut |rec| seqs.push(record::peek_seq(rec).unwrap())).unwrap();
        assert_eq!(seqs, [1, 3]);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_damaged_record_in_the_middle_loses_only_that_entry() {
        let path = std::env::temp_dir().join(format!("thinger-std-queue-{}-middle", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let config = QueueConfig::new().persist(&path);
        {
            let mut q = OfflineQueue::open(&config).unwrap();
            for n in 0..5u8 {
                q.push(Op::CallEndpoint { endpoint: "e".into(), data: Some(vec![n; 8]) }).unwrap();
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len() / 5;
        bytes[2 * len + 20] ^= 0x40; // a bit flipped in the third record's data
        std::fs::write(&path, &bytes).unwrap();
        let q = OfflineQueue::open(&config).unwrap();
        let seqs: Vec<u64> = (0..q.len()).map(|i| q.get(i).unwrap().seq).collect();
        assert_eq!(seqs, [1, 2, 4, 5]);
        assert_eq!(q.position(4), Some(2));
        drop(q);
        // The damage was compacted away: a second open reads the same, cleanly.
        assert_eq!(std::fs::read(&path).unwrap().len(), 4 * len);
        assert_eq!(OfflineQueue::open(&config).unwrap().len(), 4);
        let _ = std::fs::remove_file(&path);
    }
}
