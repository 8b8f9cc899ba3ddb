//! The offline queue: bucket writes and endpoint calls wait here until the server has
//! acknowledged them, in order, across outages and (optionally) across restarts.
//!
//! An entry is removed only when its OK (or an ERROR answer) arrived: delivery is
//! at-least-once. A write whose OK was lost with the connection is sent again after the
//! reconnect, so the server may see it twice.
//!
//! Persistence is an append-only log of postcard records (`add` with the entry, `remove` with
//! its sequence number), each behind a 4-byte little-endian length. Opening replays it; a torn
//! last record (a crash mid-write) is cut off. The log is rewritten compactly when most of it
//! is removals. Writes go to the operating system at once (they survive a crash of the
//! process), without `fsync` per record.
//!
//! ```
//! use thinger_std::{Overflow, QueueConfig};
//! let config = QueueConfig::new().capacity(10_000).overflow(Overflow::DropOldest).persist("outbox.log");
//! assert_eq!(config.capacity, 10_000);
//! ```

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op {
    /// `write_bucket(bucket, record)`.
    WriteBucket { bucket: String, record: Vec<u8> },
    /// `call_endpoint(endpoint, data)`.
    CallEndpoint { endpoint: String, data: Option<Vec<u8>> },
}

/// One queued operation with its sequence number (increasing, never reused in a log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) op: Op,
}

#[derive(Debug, Serialize, Deserialize)]
enum Record {
    Add(Entry),
    Remove(u64),
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
    entries: VecDeque<Entry>,
    capacity: usize,
    overflow: Overflow,
    next_seq: u64,
    log: Option<Log>,
}

#[derive(Debug)]
struct Log {
    path: PathBuf,
    file: File,
    /// Records in the file.
    records: usize,
}

const MAX_RECORD: usize = 16 * 1024 * 1024;

impl OfflineQueue {
    /// Opens the queue, replaying the log file when one is configured.
    pub(crate) fn open(config: &QueueConfig) -> io::Result<Self> {
        let mut queue = OfflineQueue {
            entries: VecDeque::new(),
            capacity: config.capacity.max(1),
            overflow: config.overflow,
            next_seq: 1,
            log: None,
        };
        if let Some(path) = &config.path {
            let (entries, good_len, records) = replay(path)?;
            queue.next_seq = entries.iter().map(|e| e.seq + 1).max().unwrap_or(1);
            queue.entries = entries;
            let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path)?;
            // Cut off a torn record so appends follow the last good one.
            file.set_len(good_len)?;
            let mut log = Log { path: path.clone(), file, records };
            log.seek_end()?;
            queue.log = Some(log);
            if queue.needs_compaction() {
                queue.compact()?;
            }
        }
        Ok(queue)
    }

    /// Entries queued.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at `index` from the front.
    pub(crate) fn get(&self, index: usize) -> Option<&Entry> {
        self.entries.get(index)
    }

    /// Position of the entry with sequence number `seq`.
    pub(crate) fn position(&self, seq: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.seq == seq)
    }

    /// Adds an operation at the back, applying the overflow policy.
    pub(crate) fn push(&mut self, op: Op) -> io::Result<Pushed> {
        let mut dropped = None;
        if self.entries.len() >= self.capacity {
            match self.overflow {
                Overflow::Reject => return Ok(Pushed::Rejected),
                Overflow::DropNewest => return Ok(Pushed::Dropped),
                Overflow::DropOldest => {
                    if let Some(old) = self.entries.front().map(|e| e.seq) {
                        self.remove(old)?;
                        dropped = Some(old);
                    }
                }
            }
        }
        let seq = self.next_seq;
        let entry = Entry { seq, op };
        if let Some(log) = &mut self.log {
            log.append(&Record::Add(entry.clone()))?;
        }
        self.next_seq += 1;
        self.entries.push_back(entry);
        Ok(match dropped {
            Some(dropped) => Pushed::QueuedDropping { seq, dropped },
            None => Pushed::Queued(seq),
        })
    }

    /// Removes the entry `seq` (acknowledged or dropped); false if it is not queued.
    pub(crate) fn remove(&mut self, seq: u64) -> io::Result<bool> {
        let Some(index) = self.position(seq) else { return Ok(false) };
        if let Some(log) = &mut self.log {
            log.append(&Record::Remove(seq))?;
        }
        self.entries.remove(index);
        if self.needs_compaction() {
            self.compact()?;
        }
        Ok(true)
    }

    fn needs_compaction(&self) -> bool {
        self.log.as_ref().is_some_and(|log| log.records > 2 * self.entries.len() + 256)
    }

    /// Rewrites the log with only the live entries (to a temporary file, then renamed).
    fn compact(&mut self) -> io::Result<()> {
        let Some(log) = &mut self.log else { return Ok(()) };
        let tmp = temp_path(&log.path);
        {
            let mut out = io::BufWriter::new(File::create(&tmp)?);
            for entry in &self.entries {
                write_record(&mut out, &Record::Add(entry.clone()))?;
            }
            out.flush()?;
            out.get_ref().sync_all()?;
        }
        std::fs::rename(&tmp, &log.path)?;
        log.file = OpenOptions::new().read(true).write(true).open(&log.path)?;
        log.records = self.entries.len();
        log.seek_end()
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".compact");
    path.with_file_name(name)
}

impl Log {
    fn seek_end(&mut self) -> io::Result<()> {
        use std::io::Seek;
        self.file.seek(io::SeekFrom::End(0)).map(|_| ())
    }

    fn append(&mut self, record: &Record) -> io::Result<()> {
        write_record(&mut self.file, record)?;
        self.records += 1;
        Ok(())
    }
}

fn write_record(out: &mut impl Write, record: &Record) -> io::Result<()> {
    let body = postcard::to_allocvec(record).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let len = u32::try_from(body.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "record too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    // One write per record, so a crash leaves at most one torn record at the end.
    out.write_all(&frame)
}

/// Reads a log: the live entries, the length of its good prefix and its record count.
fn replay(path: &Path) -> io::Result<(VecDeque<Entry>, u64, usize)> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((VecDeque::new(), 0, 0)),
        Err(e) => return Err(e),
    }
    let mut entries: VecDeque<Entry> = VecDeque::new();
    let mut pos = 0usize;
    let mut records = 0usize;
    while let Some(header) = bytes.get(pos..pos + 4) {
        let mut len = [0u8; 4];
        len.copy_from_slice(header);
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_RECORD {
            break;
        }
        let Some(body) = bytes.get(pos + 4..pos + 4 + len) else { break };
        let Ok(record) = postcard::from_bytes::<Record>(body) else { break };
        match record {
            Record::Add(entry) => entries.push_back(entry),
            Record::Remove(seq) => entries.retain(|e| e.seq != seq),
        }
        records += 1;
        pos += 4 + len;
    }
    if pos < bytes.len() {
        tracing::warn!("offline queue {}: ignoring {} bytes of a torn record", path.display(), bytes.len() - pos);
    }
    Ok((entries, pos as u64, records))
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
        f.write_all(&[40, 0, 0, 0, 1, 2]).unwrap();
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
