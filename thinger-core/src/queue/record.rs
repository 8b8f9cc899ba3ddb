//! The record format of a queued operation: the same bytes in the ring, in a file and in
//! flash, so a store saves exactly what the ring holds and a restore checks it.
//!
//! ```text
//! magic 0x51 | kind u8 | seq u64 LE | name_len u8 | data_len u32 LE | name | data | crc32 LE
//! ```
//!
//! `kind` is 1 for a bucket write, 2 for an endpoint call with data, 3 for one without.
//! The CRC-32 (IEEE, the one of zip and Ethernet) covers every byte before it, so a torn
//! write or garbage is told apart from a record.

use core::fmt;

use super::{Entry, Op};

/// First byte of every record (format version 1).
pub const MAGIC: u8 = 0x51;
/// Bytes of a record around its name and data.
pub const OVERHEAD: usize = HEADER + 4;
/// The header: magic, kind, seq, name length, data length.
const HEADER: usize = 1 + 1 + 8 + 1 + 4;
/// Longest bucket or endpoint name (its length is one byte).
pub const MAX_NAME: usize = 255;

const KIND_BUCKET: u8 = 1;
const KIND_ENDPOINT: u8 = 2;
const KIND_ENDPOINT_EMPTY: u8 = 3;

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordError {
    /// Shorter than its header says (a torn write).
    Truncated,
    /// Not the record magic (garbage, erased flash, another format).
    BadMagic,
    /// An unknown operation kind.
    BadKind,
    /// The checksum does not match (a torn or corrupted write).
    BadChecksum,
    /// The name is not UTF-8.
    BadName,
    /// Bytes after the record's end.
    TrailingBytes,
    /// Encoding: the name is longer than [`MAX_NAME`] bytes.
    NameTooLong,
    /// Encoding: the output buffer is too small.
    BufferTooSmall,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordError::Truncated => "truncated record",
            RecordError::BadMagic => "not a queue record",
            RecordError::BadKind => "unknown operation kind",
            RecordError::BadChecksum => "checksum mismatch",
            RecordError::BadName => "name is not UTF-8",
            RecordError::TrailingBytes => "bytes after the record",
            RecordError::NameTooLong => "name longer than 255 bytes",
            RecordError::BufferTooSmall => "buffer too small for the record",
        })
    }
}

impl core::error::Error for RecordError {}

/// Bytes the record of `op` takes.
///
/// ```
/// use thinger_core::queue::{Op, record};
/// let op = Op::WriteBucket { bucket: "temp", record: &[0x40, 0, 0, 0xbc, 0x41] };
/// assert_eq!(record::encoded_len(&op), record::OVERHEAD + 4 + 5);
/// ```
pub fn encoded_len(op: &Op<'_>) -> usize {
    let (name, data) = parts(op);
    OVERHEAD + name.len() + data.map_or(0, <[u8]>::len)
}

fn parts<'a>(op: &Op<'a>) -> (&'a str, Option<&'a [u8]>) {
    match *op {
        Op::WriteBucket { bucket, record } => (bucket, Some(record)),
        Op::CallEndpoint { endpoint, data } => (endpoint, data),
    }
}

/// Writes the record of `entry` into `out`; returns its length.
///
/// ```
/// use thinger_core::queue::{Entry, Op, record};
/// let entry = Entry { seq: 7, op: Op::CallEndpoint { endpoint: "alarm", data: None } };
/// let mut buf = [0u8; 64];
/// let n = record::encode(&entry, &mut buf).unwrap();
/// assert_eq!(record::decode(&buf[..n]), Ok(entry));
/// ```
pub fn encode(entry: &Entry<'_>, out: &mut [u8]) -> Result<usize, RecordError> {
    let (name, data) = parts(&entry.op);
    let name_len = u8::try_from(name.len()).map_err(|_| RecordError::NameTooLong)?;
    let data = data.unwrap_or(&[]);
    let data_len = u32::try_from(data.len()).map_err(|_| RecordError::BufferTooSmall)?;
    let kind = match entry.op {
        Op::WriteBucket { .. } => KIND_BUCKET,
        Op::CallEndpoint { data: Some(_), .. } => KIND_ENDPOINT,
        Op::CallEndpoint { data: None, .. } => KIND_ENDPOINT_EMPTY,
    };
    let len = OVERHEAD + name.len() + data.len();
    let out = out.get_mut(..len).ok_or(RecordError::BufferTooSmall)?;
    let (header, rest) = out.split_at_mut(HEADER);
    let (name_out, rest) = rest.split_at_mut(name.len());
    let data_out = rest.get_mut(..data.len()).ok_or(RecordError::BufferTooSmall)?;
    let (magic_kind, rest) = header.split_at_mut(2);
    let (seq_out, lens) = rest.split_at_mut(8);
    let (name_len_out, data_len_out) = lens.split_at_mut(1);
    magic_kind.copy_from_slice(&[MAGIC, kind]);
    seq_out.copy_from_slice(&entry.seq.to_le_bytes());
    name_len_out.copy_from_slice(&[name_len]);
    data_len_out.copy_from_slice(&data_len.to_le_bytes());
    name_out.copy_from_slice(name.as_bytes());
    data_out.copy_from_slice(data);
    let (covered, crc_out) = out.split_at_mut(len - 4);
    crc_out.copy_from_slice(&crc32(covered).to_le_bytes());
    Ok(len)
}

/// The length of the record at the start of `bytes`, from its header alone (no checksum
/// check): how a store walks records packed one after another.
///
/// ```
/// use thinger_core::queue::{Entry, Op, record};
/// let mut buf = [0u8; 64];
/// let n = record::encode(&Entry { seq: 1, op: Op::CallEndpoint { endpoint: "e", data: None } }, &mut buf).unwrap();
/// assert_eq!(record::peek_len(&buf), Ok(n));
/// assert_eq!(record::peek_len(&[0xff; 20]), Err(record::RecordError::BadMagic));
/// ```
pub fn peek_len(bytes: &[u8]) -> Result<usize, RecordError> {
    let header = bytes.get(..HEADER).ok_or(RecordError::Truncated)?;
    if header.first() != Some(&MAGIC) {
        return Err(RecordError::BadMagic);
    }
    let name_len = usize::from(header.get(10).copied().unwrap_or(0));
    let data_len = u32::from_le_bytes(array(header.get(11..15))) as usize;
    OVERHEAD.checked_add(name_len).and_then(|n| n.checked_add(data_len)).ok_or(RecordError::Truncated)
}

/// The sequence number of a record, read from its header (no checksum check).
pub fn peek_seq(bytes: &[u8]) -> Option<u64> {
    if bytes.first() != Some(&MAGIC) {
        return None;
    }
    bytes.get(2..10).map(|b| u64::from_le_bytes(array(Some(b))))
}

/// Reads one whole record (exactly `bytes`), checking magic, kind, checksum and name.
pub fn decode(bytes: &[u8]) -> Result<Entry<'_>, RecordError> {
    let len = peek_len(bytes)?;
    if bytes.len() < len {
        return Err(RecordError::Truncated);
    }
    if bytes.len() > len {
        return Err(RecordError::TrailingBytes);
    }
    let (covered, crc) = bytes.split_at(len - 4);
    if crc32(covered) != u32::from_le_bytes(array(Some(crc))) {
        return Err(RecordError::BadChecksum);
    }
    let kind = covered.get(1).copied().unwrap_or(0);
    let seq = u64::from_le_bytes(array(covered.get(2..10)));
    let name_len = usize::from(covered.get(10).copied().unwrap_or(0));
    let body = covered.get(HEADER..).unwrap_or(&[]);
    let (name, data) = body.split_at_checked(name_len).ok_or(RecordError::Truncated)?;
    let name = core::str::from_utf8(name).map_err(|_| RecordError::BadName)?;
    let op = match kind {
        KIND_BUCKET => Op::WriteBucket { bucket: name, record: data },
        KIND_ENDPOINT => Op::CallEndpoint { endpoint: name, data: Some(data) },
        KIND_ENDPOINT_EMPTY if data.is_empty() => Op::CallEndpoint { endpoint: name, data: None },
        _ => return Err(RecordError::BadKind),
    };
    Ok(Entry { seq, op })
}

/// First byte of a removal mark: `0x52 | seq u64 LE | crc32 LE`.
pub const REMOVAL_MAGIC: u8 = 0x52;
/// Length of a removal mark.
pub const REMOVAL_LEN: usize = 13;

/// Writes the removal mark of entry `seq` (what an append-only log stores for a delete).
///
/// ```
/// use thinger_core::queue::{Scanned, record, scan};
/// let mut mark = [0u8; record::REMOVAL_LEN];
/// record::encode_removal(9, &mut mark);
/// assert_eq!(scan(&mark).next(), Some(Scanned::Remove(9)));
/// assert_eq!(record::decode_removal(&mark), Ok(9));
/// ```
pub fn encode_removal(seq: u64, out: &mut [u8; REMOVAL_LEN]) {
    let (head, crc_out) = out.split_at_mut(9);
    let (magic, seq_out) = head.split_at_mut(1);
    magic.copy_from_slice(&[REMOVAL_MAGIC]);
    seq_out.copy_from_slice(&seq.to_le_bytes());
    let crc = crc32(head);
    crc_out.copy_from_slice(&crc.to_le_bytes());
}

/// Reads a removal mark (exactly [`REMOVAL_LEN`] bytes): the sequence number it removes.
pub fn decode_removal(bytes: &[u8]) -> Result<u64, RecordError> {
    if bytes.len() != REMOVAL_LEN {
        return Err(RecordError::Truncated);
    }
    let (head, crc) = bytes.split_at(9);
    if head.first() != Some(&REMOVAL_MAGIC) {
        return Err(RecordError::BadMagic);
    }
    if crc32(head) != u32::from_le_bytes(array(Some(crc))) {
        return Err(RecordError::BadChecksum);
    }
    Ok(u64::from_le_bytes(array(head.get(1..))))
}

fn array<const N: usize>(bytes: Option<&[u8]>) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(b) = bytes {
        for (o, i) in out.iter_mut().zip(b) {
            *o = *i;
        }
    }
    out
}

/// CRC-32/IEEE (reflected polynomial 0xEDB88320), nibble-table driven: 64 bytes of table
/// instead of 1 KB, fast enough for records written once and read at boot.
///
/// ```
/// assert_eq!(thinger_core::queue::record::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(bytes: &[u8]) -> u32 {
    // Evaluated at compile time: an index out of range would fail the build, not panic.
    #[allow(clippy::indexing_slicing)]
    const TABLE: [u32; 16] = {
        let mut table = [0u32; 16];
        let mut i = 0;
        while i < 16 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 4 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        crc = TABLE.get((crc & 0xf) as usize).copied().unwrap_or(0) ^ (crc >> 4);
        crc = TABLE.get((crc & 0xf) as usize).copied().unwrap_or(0) ^ (crc >> 4);
    }
    !crc
}
