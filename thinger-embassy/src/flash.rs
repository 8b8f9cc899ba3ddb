//! The offline queue in flash: [`FlashStore`], on `embedded-storage-async` through the
//! `sequential-storage` crate's queue (wear-levelled, power-fail safe pages).

use core::ops::Range;

use embedded_storage_async::nor_flash::MultiwriteNorFlash;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::queue::{QueueConfig, QueueStorage};
use thinger_core::queue::{AsyncStorage, record};

use crate::queue::{MAX_QUEUED, QueueStore};

/// Keeps the offline queue's records in a range of NOR flash, one `sequential-storage`
/// queue item per entry. A reboot (or a power cut mid-write) loses no saved entry: at boot
/// the [`Runner`](crate::Runner) reads them back in order; an item that fails its checks
/// (torn, corrupted) is skipped and never sent twice.
///
/// `flash` is the chip's flash driver (`embedded_storage_async::nor_flash::MultiwriteNorFlash`,
/// e.g. embassy-rp's or esp-storage's), `range` a page-aligned byte range of it reserved for
/// the queue (at least two erase pages).
///
/// ```
/// use embedded_storage_async::nor_flash::MultiwriteNorFlash;
/// use thinger_embassy::{FlashStore, Runner};
///
/// // The last 64 KiB of a 2 MiB flash keep the queue.
/// fn with_flash_queue<G: rand_core::RngCore + rand_core::CryptoRng, F: MultiwriteNorFlash>(
///     runner: Runner<'static, G, 4>,
///     flash: F,
/// ) -> Runner<'static, G, 4, FlashStore<F>> {
///     let store = FlashStore::try_new(flash, 0x1F_0000..0x20_0000).expect("page-aligned range");
///     runner.with_store(store)
/// }
/// ```
pub struct FlashStore<S: MultiwriteNorFlash> {
    queue: QueueStorage<S, Cache<Uncached, Uncached, Uncached>>,
    buf: [u8; MAX_QUEUED],
}

/// Why the flash store failed.
pub type FlashError<E> = sequential_storage::Error<E>;

impl<S: MultiwriteNorFlash> FlashStore<S> {
    /// A store in `range` of `flash`; `None` when the range is not aligned to the flash's
    /// erase pages or is smaller than one page.
    pub fn try_new(flash: S, range: Range<u32>) -> Option<Self> {
        let config = QueueConfig::try_new(range).ok()?;
        Some(FlashStore { queue: QueueStorage::new(flash, config, Cache::new_uncached()), buf: [0; MAX_QUEUED] })
    }

    /// Gives the flash driver back.
    pub fn into_flash(self) -> S {
        self.queue.destroy().0
    }
}

impl<S: MultiwriteNorFlash> AsyncStorage for FlashStore<S> {
    type Error = FlashError<S::Error>;

    async fn save(&mut self, rec: &[u8]) -> Result<(), Self::Error> {
        // Never overwrite old data: a full flash refuses new entries (they stay in RAM).
        self.queue.push(rec, false).await
    }

    async fn delete(&mut self, seq: u64) -> Result<(), Self::Error> {
        let mut iter = self.queue.iter().await?;
        while let Some(item) = iter.next(&mut self.buf).await? {
            if record::peek_seq(&item) == Some(seq) {
                item.pop().await?;
                break;
            }
        }
        Ok(())
    }

    async fn load(&mut self, each: &mut dyn FnMut(&[u8])) -> Result<(), Self::Error> {
        let mut iter = self.queue.iter().await?;
        while let Some(item) = iter.next(&mut self.buf).await? {
            each(&item);
        }
        Ok(())
    }
}

impl<S: MultiwriteNorFlash> QueueStore for FlashStore<S> {
    async fn clear(&mut self) -> Result<(), Self::Error> {
        self.queue.erase_all().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_futures::block_on;
    use embedded_storage_async::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
    use std::vec;
    use std::vec::Vec;
    use thinger_core::queue::{Entry, Op, Overflow, Restored, Ring};

    /// NOR flash in RAM: erase sets bytes to 0xff, a write can only clear bits.
    struct RamFlash(Vec<u8>);

    #[derive(Debug)]
    struct OutOfBounds;
    impl NorFlashError for OutOfBounds {
        fn kind(&self) -> NorFlashErrorKind {
            NorFlashErrorKind::OutOfBounds
        }
    }
    impl ErrorType for RamFlash {
        type Error = OutOfBounds;
    }
    impl ReadNorFlash for RamFlash {
        const READ_SIZE: usize = 1;
        async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), OutOfBounds> {
            let src = self.0.get(offset as usize..offset as usize + bytes.len()).ok_or(OutOfBounds)?;
            bytes.copy_from_slice(src);
            Ok(())
        }
        fn capacity(&self) -> usize {
            self.0.len()
        }
    }
    impl NorFlash for RamFlash {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = 1024;
        async fn erase(&mut self, from: u32, to: u32) -> Result<(), OutOfBounds> {
            self.0.get_mut(from as usize..to as usize).ok_or(OutOfBounds)?.fill(0xff);
            Ok(())
        }
        async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), OutOfBounds> {
            let dst = self.0.get_mut(offset as usize..offset as usize + bytes.len()).ok_or(OutOfBounds)?;
            for (d, s) in dst.iter_mut().zip(bytes) {
                *d &= *s;
            }
            Ok(())
        }
    }
    impl MultiwriteNorFlash for RamFlash {}

    fn record(seq: u64, value: u8) -> Vec<u8> {
        let entry = Entry { seq, op: Op::WriteBucket { bucket: "temps", record: &[value] } };
        let mut buf = vec![0u8; 64];
        let n = thinger_core::queue::record::encode(&entry, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn load(store: &mut FlashStore<RamFlash>) -> (Vec<u64>, Restored) {
        let mut ring = Ring::new([0u8; 1024], 100, Overflow::Reject);
        let mut report = Restored::default();
        block_on(store.load(&mut |rec| report.count(ring.restore(rec)))).unwrap();
        (ring.iter().map(|e| e.seq).collect(), report)
    }

    #[test]
    fn entries_survive_a_reboot_and_deleted_ones_stay_gone() {
        let mut store = FlashStore::try_new(RamFlash(vec![0xff; 4096]), 0..4096).unwrap();
        for seq in 1..=5 {
            block_on(store.save(&record(seq, seq as u8))).unwrap();
        }
        block_on(store.delete(2)).unwrap();
        block_on(store.delete(4)).unwrap();
        // A reboot: a new store on the same flash.
        let flash = store.into_flash();
        let mut store = FlashStore::try_new(flash, 0..4096).unwrap();
        let (seqs, report) = load(&mut store);
        assert_eq!(seqs, [1, 3, 5]);
        assert_eq!((report.restored, report.corrupt, report.duplicates), (3, 0, 0));
        block_on(store.clear()).unwrap();
        assert_eq!(load(&mut store).0, Vec::<u64>::new());
    }

    #[test]
    fn a_damaged_or_repeated_item_is_skipped_and_reported() {
        let mut store = FlashStore::try_new(RamFlash(vec![0xff; 4096]), 0..4096).unwrap();
        block_on(store.save(&record(1, 1))).unwrap();
        block_on(store.save(&record(2, 2))).unwrap();
        block_on(store.save(&record(1, 1))).unwrap(); // a stale copy (e.g. a resync cut short)
        let mut garbage = record(3, 3);
        garbage[0] = 0x00; // not a record
        block_on(store.save(&garbage)).unwrap();
        block_on(store.save(&record(4, 4))).unwrap();
        let (seqs, report) = load(&mut store);
        assert_eq!(seqs, [1, 2, 4]);
        assert_eq!((report.restored, report.corrupt, report.duplicates), (3, 1, 1));
    }

    #[test]
    fn the_runner_saves_queued_entries_and_restores_them_after_a_reboot() {
        use crate::queue::{persist, restore};
        use crate::tests::{connect, drain, feed, shared_with};
        use embassy_futures::select::select;
        use thinger_core::iotmp::{MessageType, OutgoingMessage};
        use thinger_core::resource::Thing;

        let mut store = FlashStore::try_new(RamFlash(vec![0xff; 4096]), 0..4096).unwrap();
        let shared = shared_with(Thing::new(), 8);
        let client = crate::Client { shared };
        block_on(async {
            let runner = async {
                restore(shared, &mut store).await;
                persist(shared, &mut store).await
            };
            // Each write returns once it is in flash.
            let app = async {
                for n in 0..3u32 {
                    client.queue_bucket_write("b", &n).await.unwrap();
                }
            };
            select(runner, app).await;
        });
        assert_eq!(load(&mut store).0, [1, 2, 3]);

        // A reboot: fresh RAM, the same flash.
        let shared = shared_with(Thing::new(), 8);
        let client = crate::Client { shared };
        let report = block_on(restore(shared, &mut store));
        assert_eq!((report.restored, report.corrupt), (3, 0));
        assert_eq!(client.queued(), 3);
        // They go out in order; the first one answered is deleted from flash too.
        connect(shared);
        let sent = drain(shared);
        let values: Vec<u8> = sent.iter().map(|s| s.payload.as_ref().unwrap()[0]).collect();
        assert_eq!(values, [0, 1, 2]);
        feed(shared, OutgoingMessage::new(MessageType::Ok, sent[0].id));
        assert_eq!(client.queued(), 2);
        block_on(async {
            let runner = persist(shared, &mut store);
            let wait = async {
                while shared.with(|i| !i.queue.deletes.is_empty()).unwrap() {
                    embassy_futures::yield_now().await;
                }
                // One more turn so the delete's await completes.
                for _ in 0..10 {
                    embassy_futures::yield_now().await;
                }
            };
            select(runner, wait).await;
        });
        // New entries continue the numbering.
        assert_eq!(load(&mut store).0, [2, 3]);
        assert_eq!(shared.with(|i| i.queue.ring.next_seq()).unwrap(), 4);
    }

    #[test]
    fn a_misaligned_range_is_refused() {
        assert!(FlashStore::try_new(RamFlash(vec![0xff; 4096]), 100..4096).is_none());
    }
}
