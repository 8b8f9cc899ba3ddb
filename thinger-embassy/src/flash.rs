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
/// ```ignore
/// let store = FlashStore::new(flash, 0x1F_0000..0x20_0000);
/// let runner = runner.with_store(store);
/// ```
pub struct FlashStore<S: MultiwriteNorFlash> {
    queue: QueueStorage<S, Cache<Uncached, Uncached, Uncached>>,
    buf: [u8; MAX_QUEUED],
}

/// Why the flash store failed.
pub type FlashError<E> = sequential_storage::Error<E>;

impl<S: MultiwriteNorFlash> FlashStore<S> {
    /// A store in `range` of `flash`; panics at compile-time-known misuse only through
    /// [`FlashStore::try_new`]'s `None` (a range not aligned to erase pages).
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
