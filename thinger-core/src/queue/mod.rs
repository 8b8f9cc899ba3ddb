//! The offline queue: bucket writes and endpoint calls that wait for the server, in order,
//! across outages and (with a store) across restarts. No heap: the entries live as
//! records in a caller-owned buffer ([`Ring`]).
//!
//! Both clients use it: thinger-std keeps its ring in a growable `Vec` and its records in
//! a file, thinger-embassy keeps its ring in a static array and its records in flash.
//! The ring does no I/O; a store implements [`Storage`] (or [`AsyncStorage`] for flash
//! behind `embedded-storage-async`), and [`replay`] rebuilds a ring from a stored log.
//! [`InFlight`] decides which entries go out on a connection and what each answer does to
//! the queue, the same for both clients.
//!
//! Delivery is at-least-once: an entry leaves the ring when its answer (OK or ERROR)
//! arrived; one whose answer was lost with the connection is sent again after the
//! reconnect, so the server may see it twice. It never leaves the device twice from one
//! stored copy: a restore refuses any sequence number it has seen already.
//!
//! ```
//! use thinger_core::queue::{Op, Overflow, Pushed, Ring};
//! let mut ring = Ring::new([0u8; 512], 100, Overflow::Reject);
//! let Ok(Pushed::Queued(seq)) = ring.push(Op::WriteBucket { bucket: "temps", record: &[0x40, 0, 0, 0xbc, 0x41] }) else { panic!() };
//! // ... after the reconnect the adapter sends ring.front(), and on its OK:
//! assert!(ring.remove(seq));
//! assert!(ring.is_empty());
//! ```

mod in_flight;
pub mod record;
mod replay;
mod ring;

pub use in_flight::{Answer, InFlight, Pumped, Settled};
pub use replay::{Restored, Scanned, replay, scan};
pub use ring::{Buffer, Iter, PushError, Pushed, RestoreError, Ring};

/// What happens to a new entry when the queue is full.
///
/// ```
/// use thinger_core::queue::Overflow;
/// assert_eq!(Overflow::default(), Overflow::Reject);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Overflow {
    /// Refuse the new entry (nothing is lost silently).
    #[default]
    Reject,
    /// Drop the oldest entries to make room.
    DropOldest,
    /// Drop the new entry.
    DropNewest,
}

/// A queued operation; payloads are PSON bytes, already encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Op<'a> {
    /// Append `record` to data bucket `bucket`.
    WriteBucket {
        /// Bucket id.
        bucket: &'a str,
        /// The record, PSON.
        record: &'a [u8],
    },
    /// Call endpoint `endpoint`, with `data` if any.
    CallEndpoint {
        /// Endpoint id.
        endpoint: &'a str,
        /// The call's data, PSON.
        data: Option<&'a [u8]>,
    },
}

/// One queued operation with its sequence number (increasing, never reused by a ring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Entry<'a> {
    /// Sequence number, from 1.
    pub seq: u64,
    /// The operation.
    pub op: Op<'a>,
}

/// A store that keeps a ring's entries across restarts, written synchronously (a file).
///
/// The adapter calls [`Storage::save`] with the record of every entry it pushed
/// ([`Ring::record`]) and [`Storage::delete`] for every entry that left, then
/// [`Storage::sync`] once per batch; at boot it hands [`Storage::load`]'s records to
/// [`Ring::restore`] (or a byte log to [`replay`]).
pub trait Storage {
    /// The store's error.
    type Error;
    /// Stores the record of a newly queued entry.
    fn save(&mut self, record: &[u8]) -> Result<(), Self::Error>;
    /// Forgets entry `seq` (answered, or dropped by the overflow policy).
    fn delete(&mut self, seq: u64) -> Result<(), Self::Error>;
    /// Makes everything saved and deleted so far durable (e.g. `fsync`).
    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Hands every live stored record to `each`, oldest first.
    fn load(&mut self, each: &mut dyn FnMut(&[u8])) -> Result<(), Self::Error>;
}

/// [`Storage`] for stores written asynchronously (flash through `embedded-storage-async`).
#[allow(async_fn_in_trait)] // Used by single-executor firmware: no `Send` bound wanted.
pub trait AsyncStorage {
    /// The store's error.
    type Error;
    /// Stores the record of a newly queued entry.
    async fn save(&mut self, record: &[u8]) -> Result<(), Self::Error>;
    /// Forgets entry `seq`.
    async fn delete(&mut self, seq: u64) -> Result<(), Self::Error>;
    /// Hands every live stored record to `each`, oldest first (for [`Ring::restore`], which
    /// skips bad ones).
    async fn load(&mut self, each: &mut dyn FnMut(&[u8])) -> Result<(), Self::Error>;
}
