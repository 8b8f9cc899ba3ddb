//! An [`Updater`] over a RAM slice: for tests, examples and devices that stage an image in
//! RAM before copying it themselves.

use super::{StorageError, Updater};

/// An [`Updater`] storing the image in a caller-owned byte slice.
///
/// ```
/// use thinger_core::ota::{RamUpdater, Updater};
/// let mut storage = [0u8; 8];
/// let mut ram = RamUpdater::new(&mut storage);
/// ram.begin(4).unwrap();
/// ram.write(0, b"abcd").unwrap();
/// ram.finish(4).unwrap();
/// ram.mark_for_boot().unwrap();
/// assert_eq!(ram.installed(), Some(&b"abcd"[..]));
/// assert!(ram.begin(9).is_err()); // larger than the slice
/// ```
#[derive(Debug)]
pub struct RamUpdater<'a> {
    storage: &'a mut [u8],
    size: u32,
    installed: Option<u32>,
    reboots: u32,
}

impl<'a> RamUpdater<'a> {
    /// An updater writing into `storage`.
    pub fn new(storage: &'a mut [u8]) -> Self {
        RamUpdater { storage, size: 0, installed: None, reboots: 0 }
    }
    /// The image marked for boot, if any.
    pub fn installed(&self) -> Option<&[u8]> {
        self.storage.get(..self.installed? as usize)
    }
    /// How many reboots were requested.
    pub fn reboots(&self) -> u32 {
        self.reboots
    }
    /// The storage (for tests that corrupt it).
    pub fn storage(&mut self) -> &mut [u8] {
        self.storage
    }
}

impl Updater for RamUpdater<'_> {
    fn begin(&mut self, size: u32) -> Result<(), StorageError> {
        if size as usize > self.storage.len() {
            return Err(StorageError("image larger than the update area"));
        }
        self.installed = None;
        self.size = size;
        Ok(())
    }
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        let dst = span(offset, data.len()).and_then(|r| self.storage.get_mut(r));
        let dst = dst.ok_or(StorageError("write outside the update area"))?;
        dst.copy_from_slice(data);
        Ok(())
    }
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let src = span(offset, buf.len()).and_then(|r| self.storage.get(r));
        let src = src.ok_or(StorageError("read outside the update area"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn finish(&mut self, size: u32) -> Result<(), StorageError> {
        if size == self.size { Ok(()) } else { Err(StorageError("size changed")) }
    }
    fn mark_for_boot(&mut self) -> Result<(), StorageError> {
        self.installed = Some(self.size);
        Ok(())
    }
    fn abort(&mut self) {
        self.size = 0;
    }
    fn reboot(&mut self) -> Result<(), StorageError> {
        self.reboots += 1;
        Ok(())
    }
}

fn span(offset: u32, len: usize) -> Option<core::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    Some(start..start.checked_add(len)?)
}
