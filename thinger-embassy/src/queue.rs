//! The offline queue on the device: bucket writes and endpoint calls wait in thinger-core's
//! ring (in [`Buffers`](crate::Buffers)) while the device is offline, go out in order after
//! each reconnect, and, with a [`QueueStore`], survive a reboot in flash.

use core::convert::Infallible;
use core::future::poll_fn;
use core::task::Poll;

use thinger_core::iotmp::DynEncodePson;
use thinger_core::pson::PsonRef;
use thinger_core::queue::{AsyncStorage, Op, Pumped, PushError, Pushed, Restored, record};
use thinger_core::session::Error as SessionError;

use crate::shared::{Inner, QUEUE_WINDOW, Shared};
use crate::{Client, Error, now};

/// Largest queued entry: its record (name, PSON payload and 24 bytes) must fit this.
pub const MAX_QUEUED: usize = 256;

impl<'d, const R: usize> Client<'d, R> {
    /// Queues a write of `record` to bucket `bucket`: it is sent now if connected, or
    /// after the reconnect, in order with the other queued entries, and stays queued until
    /// the server answered it. Returns once it is queued (and, with a [`QueueStore`],
    /// saved). Fails with [`Error::QueueFull`] / [`Error::Dropped`] as the queue's
    /// [`Overflow`](crate::Overflow) policy says, [`Error::TooLarge`] above
    /// [`MAX_QUEUED`] bytes.
    pub async fn queue_bucket_write(&self, bucket: &str, record: &dyn DynEncodePson) -> Result<(), Error> {
        let mut value = [0u8; MAX_QUEUED];
        let n = encode(record, &mut value)?;
        self.enqueue(Op::WriteBucket { bucket, record: value.get(..n).unwrap_or(&[]) }).await
    }

    /// Queues a call of endpoint `endpoint` (with `data`, if any), as
    /// [`Client::queue_bucket_write`] does.
    pub async fn queue_endpoint_call(&self, endpoint: &str, data: Option<&dyn DynEncodePson>) -> Result<(), Error> {
        let mut value = [0u8; MAX_QUEUED];
        let data = match data {
            Some(d) => {
                let n = encode(d, &mut value)?;
                Some(value.get(..n).unwrap_or(&[]))
            }
            None => None,
        };
        self.enqueue(Op::CallEndpoint { endpoint, data }).await
    }

    /// Entries in the offline queue (sent or not, waiting for their answer).
    pub fn queued(&self) -> usize {
        self.shared.with(|inner| inner.queue.ring.len()).unwrap_or(0)
    }

    /// Entries given up because they could not be sent (malformed, or larger than a frame).
    pub fn queue_discarded(&self) -> u32 {
        self.shared.with(|inner| inner.queue.discarded).unwrap_or(0)
    }

    /// Waits until the offline queue is empty: every entry answered by the server.
    pub async fn flush(&self) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared.poll_with(cx, |inner| if inner.queue.ring.is_empty() { Poll::Ready(()) } else { Poll::Pending })
        })
        .await
    }

    async fn enqueue(&self, op: Op<'_>) -> Result<(), Error> {
        if record::encoded_len(&op) > MAX_QUEUED {
            return Err(Error::TooLarge);
        }
        let (seq, store) = self.shared.with(|inner| {
            let q = &mut inner.queue;
            match q.ring.push(op) {
                Ok(Pushed::Queued(seq)) => Ok((seq, q.store)),
                Ok(Pushed::QueuedDropping { seq, dropped, last_dropped }) => {
                    // The dropped ones are the oldest: seq numbers last_dropped - dropped + 1 ..= last_dropped
                    // at most (some may have left already).
                    let first = last_dropped.saturating_sub(dropped as u64 - 1);
                    for old in first..=last_dropped {
                        q.in_flight.forget(old);
                        q.forget(old);
                    }
                    Ok((seq, q.store))
                }
                Ok(Pushed::Rejected) => Err(Error::QueueFull),
                Ok(Pushed::Dropped) => Err(Error::Dropped),
                Err(PushError::TooLarge | PushError::Record(_)) => Err(Error::TooLarge),
            }
        })??;
        self.shared.flush.signal(());
        if store {
            self.shared.persist.signal(());
            // Saved, or already answered and gone.
            poll_fn(|cx| {
                self.shared.poll_with(cx, |inner| {
                    let q = &inner.queue;
                    if q.saved_below > seq || q.ring.position(seq).is_none() { Poll::Ready(()) } else { Poll::Pending }
                })
            })
            .await?;
        }
        Ok(())
    }
}

fn encode(value: &dyn DynEncodePson, out: &mut [u8]) -> Result<usize, Error> {
    let mut sink = thinger_core::pson::SliceSink::new(out);
    let dyn_sink: &mut dyn thinger_core::pson::Sink = &mut sink;
    value.encode_dyn(&mut thinger_core::pson::Encoder::new(dyn_sink)).map_err(|_| Error::TooLarge)?;
    Ok(sink.written())
}

impl<const R: usize> Inner<'_, R> {
    /// Sends queued entries that are not in flight yet, in order, up to the window.
    pub(crate) fn pump_queue(&mut self) {
        if !self.session.is_connected() {
            return;
        }
        let t = now();
        loop {
            let Inner { session, queue, .. } = self;
            let pumped = queue.in_flight.pump(QUEUE_WINDOW, |position| {
                let entry = queue.ring.get(position)?;
                Some((entry.seq, send(session, t, &entry.op)))
            });
            match pumped {
                Pumped::Idle | Pumped::Blocked => return,
                // It can never be sent (bad PSON from a damaged store, larger than a frame).
                Pumped::Failed { seq, .. } => {
                    self.queue.discarded = self.queue.discarded.saturating_add(1);
                    self.queue.remove(seq);
                }
            }
        }
    }
}

fn send<const R: usize>(
    session: &mut crate::shared::CoreSession<'_, R>,
    t: thinger_core::time::Instant,
    op: &Op<'_>,
) -> Result<thinger_core::session::RequestId, SessionError> {
    match *op {
        Op::WriteBucket { bucket, record } => match PsonRef::decode(record) {
            Ok(value) => session.write_bucket(t, bucket, &value),
            Err(e) => Err(SessionError::Pson(e)),
        },
        Op::CallEndpoint { endpoint, data: None } => session.call_endpoint(t, endpoint, None),
        Op::CallEndpoint { endpoint, data: Some(data) } => match PsonRef::decode(data) {
            Ok(value) => session.call_endpoint(t, endpoint, Some(&value)),
            Err(e) => Err(SessionError::Pson(e)),
        },
    }
}

/// A persistent home for the offline queue: thinger-core's [`AsyncStorage`], e.g.
/// [`FlashStore`](crate::FlashStore). Hand it to [`Runner::with_store`](crate::Runner::with_store).
#[allow(async_fn_in_trait)] // Single-executor firmware: no `Send` bound wanted.
pub trait QueueStore: AsyncStorage {
    /// Erases everything (when the list of pending deletes overflowed: the runner then
    /// saves the ring's entries again).
    async fn clear(&mut self) -> Result<(), Self::Error>;
}

/// No store: the queue lives in RAM only (the [`Runner`](crate::Runner)'s default).
#[derive(Debug)]
pub enum NoStore {}

impl AsyncStorage for NoStore {
    type Error = Infallible;
    async fn save(&mut self, _: &[u8]) -> Result<(), Infallible> {
        match *self {}
    }
    async fn delete(&mut self, _: u64) -> Result<(), Infallible> {
        match *self {}
    }
    async fn load(&mut self, _: &mut dyn FnMut(&[u8])) -> Result<(), Infallible> {
        match *self {}
    }
}

impl QueueStore for NoStore {
    async fn clear(&mut self) -> Result<(), Infallible> {
        match *self {}
    }
}

/// Puts the store's records back into the ring (at boot, before the first connection).
pub(crate) async fn restore<S: QueueStore, const R: usize>(shared: &Shared<'_, R>, store: &mut S) -> Restored {
    let mut report = Restored::default();
    let _ = store
        .load(&mut |rec| {
            let _ = shared.with(|inner| report.count(inner.queue.ring.restore(rec)));
        })
        .await;
    let _ = shared.with(|inner| {
        inner.queue.store = true;
        inner.queue.saved_below = inner.queue.ring.next_seq();
        inner.waiters.wake();
    });
    report
}

enum Work {
    Idle,
    Clear,
    Delete(u64),
    Save(u64, usize),
}

/// Keeps the store in step with the ring: deletes answered entries, saves new ones.
pub(crate) async fn persist<S: QueueStore, const R: usize>(shared: &Shared<'_, R>, store: &mut S) -> ! {
    let mut buf = [0u8; MAX_QUEUED];
    loop {
        let work = shared
            .with(|inner| {
                let q = &mut inner.queue;
                if q.resync {
                    q.resync = false;
                    q.deletes.clear();
                    q.saved_below = q.ring.front().map_or(q.ring.next_seq(), |e| e.seq);
                    return Work::Clear;
                }
                if let Some(seq) = q.deletes.pop_front() {
                    return Work::Delete(seq);
                }
                let next = q.ring.iter().map(|e| e.seq).find(|&s| s >= q.saved_below);
                match next.and_then(|seq| q.ring.record(seq).map(|r| (seq, r))) {
                    Some((seq, rec)) => match buf.get_mut(..rec.len()) {
                        Some(dst) => {
                            dst.copy_from_slice(rec);
                            Work::Save(seq, rec.len())
                        }
                        None => {
                            q.saved_below = seq + 1;
                            Work::Idle
                        }
                    },
                    None => Work::Idle,
                }
            })
            .unwrap_or(Work::Idle);
        match work {
            Work::Idle => shared.persist.wait().await,
            Work::Clear => {
                let _ = store.clear().await;
            }
            Work::Delete(seq) => {
                let _ = store.delete(seq).await;
            }
            Work::Save(seq, len) => {
                // A failed save (flash full) leaves the entry in RAM only.
                let _ = store.save(buf.get(..len).unwrap_or(&[])).await;
                let _ = shared.with(|inner| {
                    inner.queue.saved_below = inner.queue.saved_below.max(seq + 1);
                    // Answered while it was being saved: delete it from the store again.
                    if inner.queue.ring.position(seq).is_none() {
                        inner.queue.forget(seq);
                    }
                    inner.waiters.wake();
                });
            }
        }
    }
}
