//! OTA on `embassy-boot`: the `$ota` resources of `thinger-core` write the DFU partition,
//! and the bootloader swaps it in on the next boot.
//!
//! The A/B cycle, and what protects each step:
//! 1. `$ota/begin` refuses unless the running firmware is confirmed (state `Boot`, or
//!    `Revert` after a rollback): an update never starts from a firmware that may still be
//!    rolled back.
//! 2. `$ota/write` erases each DFU sector as the first byte of it arrives and writes the chunk
//!    (the last chunk is padded to the flash write size with `0xFF`).
//! 3. `$ota/end` reads the DFU partition back and checks MD5 / SHA-256 (in the core); only a
//!    matching image is marked for swap ([`BootUpdater`] calls `mark_updated`).
//! 4. `$ota/reboot` calls the application's reboot hook, which must schedule the reset (the
//!    reply has to go out first).
//! 5. The bootloader swaps DFU and active. The new firmware calls
//!    [`BootUpdater::confirm_boot`] (`mark_booted`) once it has connected to the server;
//!    if it crashes or never connects, the next reset swaps the old firmware back.
//!
//! ```
//! use core::cell::RefCell;
//! use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
//! use thinger_core::ota::{Ota, OtaConfig, OtaResources};
//! use thinger_core::resource::Thing;
//! use thinger_embassy::ota::BootUpdater;
//!
//! # struct Flash;
//! # impl ErrorType for Flash { type Error = NorFlashErrorKind; }
//! # impl ReadNorFlash for Flash { const READ_SIZE: usize = 1;
//! #   fn read(&mut self, _: u32, _: &mut [u8]) -> Result<(), Self::Error> { Ok(()) }
//! #   fn capacity(&self) -> usize { 8192 } }
//! # impl NorFlash for Flash { const WRITE_SIZE: usize = 4; const ERASE_SIZE: usize = 4096;
//! #   fn erase(&mut self, _: u32, _: u32) -> Result<(), Self::Error> { Ok(()) }
//! #   fn write(&mut self, _: u32, _: &[u8]) -> Result<(), Self::Error> { Ok(()) } }
//! # let (dfu, state) = (Flash, Flash);
//! // `dfu` and `state` are the partitions of your flash (embassy-boot's linker symbols).
//! let mut aligned = [0u8; 4]; // the state partition's WRITE_SIZE
//! let updater = BootUpdater::new(dfu, state, &mut aligned, || { /* signal a task to reset in 1 s */ });
//! let ota = RefCell::new(Ota::new(updater, OtaConfig::new(1024).version(env!("CARGO_PKG_VERSION"))));
//! let mut resources = OtaResources::new(&ota);
//! let mut thing: Thing<'_, 8> = Thing::new();
//! resources.register(&mut thing).unwrap();
//! // After the first successful connection: ota.borrow_mut().updater().confirm_boot();
//! ```

use embassy_boot::{BlockingFirmwareState, FirmwareUpdaterError, State};
use embedded_storage::nor_flash::NorFlash;
use thinger_core::ota::{StorageError, Updater};

/// Largest flash write size the last, padded chunk supports.
pub const MAX_WRITE_SIZE: usize = 256;

const FLASH_ERROR: StorageError = StorageError("flash error");

fn state_error(e: FirmwareUpdaterError) -> StorageError {
    match e {
        FirmwareUpdaterError::BadState => StorageError("boot state does not allow an update"),
        _ => StorageError("boot state partition error"),
    }
}

/// An [`Updater`] on embassy-boot's DFU and state partitions (blocking flash).
pub struct BootUpdater<'d, DFU, STATE: NorFlash, R> {
    dfu: DFU,
    state: BlockingFirmwareState<'d, STATE>,
    size: u32,
    reboot: R,
}

impl<DFU, STATE: NorFlash, R> core::fmt::Debug for BootUpdater<'_, DFU, STATE, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BootUpdater").field("size", &self.size).finish_non_exhaustive()
    }
}

impl<'d, DFU: NorFlash, STATE: NorFlash, R: FnMut()> BootUpdater<'d, DFU, STATE, R> {
    /// An updater writing `dfu`, marking `state`; `aligned` is a scratch buffer of exactly
    /// `STATE::WRITE_SIZE` bytes; `reboot` schedules a reset (it must return first).
    pub fn new(dfu: DFU, state: STATE, aligned: &'d mut [u8], reboot: R) -> Self {
        BootUpdater { dfu, state: BlockingFirmwareState::new(state, aligned), size: 0, reboot }
    }

    /// The bootloader state: `Swap` right after an update was swapped in and until
    /// [`confirm_boot`](Self::confirm_boot), `Revert` after a rollback, else `Boot`.
    pub fn boot_state(&mut self) -> Result<State, StorageError> {
        self.state.get_state().map_err(state_error)
    }

    /// Confirms the running firmware (`mark_booted`): call it once the device is connected.
    /// Without it, the next reset rolls back to the previous firmware.
    pub fn confirm_boot(&mut self) -> Result<(), StorageError> {
        if self.boot_state()? == State::Swap { self.state.mark_booted().map_err(state_error) } else { Ok(()) }
    }

    /// Largest image the partitions take: the DFU partition less one sector for the swap.
    pub fn max_image(&self) -> u32 {
        (self.dfu.capacity().saturating_sub(DFU::ERASE_SIZE)) as u32
    }
}

impl<DFU: NorFlash, STATE: NorFlash, R: FnMut()> Updater for BootUpdater<'_, DFU, STATE, R> {
    fn begin(&mut self, size: u32) -> Result<(), StorageError> {
        if size > self.max_image() {
            return Err(StorageError("image larger than the DFU partition"));
        }
        if DFU::WRITE_SIZE > MAX_WRITE_SIZE {
            return Err(StorageError("flash write size not supported"));
        }
        match self.boot_state()? {
            State::Swap => return Err(StorageError("running firmware not confirmed, or an update awaits reboot")),
            State::Boot | State::Revert | State::DfuDetach => {}
        }
        self.size = size;
        Ok(())
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        let (start, len) = (offset as usize, data.len());
        let end = start.checked_add(len).ok_or(StorageError("write outside the image"))?;
        if end > self.size as usize {
            return Err(StorageError("write outside the image"));
        }
        if !start.is_multiple_of(DFU::WRITE_SIZE) {
            return Err(StorageError("write not aligned to the flash"));
        }
        // Erase each sector when its first byte arrives (writes come in order, from 0).
        let mut sector = start.next_multiple_of(DFU::ERASE_SIZE);
        while sector < end {
            self.dfu.erase(sector as u32, (sector + DFU::ERASE_SIZE) as u32).map_err(|_| FLASH_ERROR)?;
            sector += DFU::ERASE_SIZE;
        }
        let aligned = len - len % DFU::WRITE_SIZE;
        let (body, tail) = data.split_at(aligned);
        if !body.is_empty() {
            self.dfu.write(offset, body).map_err(|_| FLASH_ERROR)?;
        }
        if !tail.is_empty() {
            if end != self.size as usize {
                return Err(StorageError("only the last chunk may end off the flash write size"));
            }
            let mut padded = [0xFFu8; MAX_WRITE_SIZE];
            padded.get_mut(..tail.len()).ok_or(FLASH_ERROR)?.copy_from_slice(tail);
            let padded = padded.get(..DFU::WRITE_SIZE).ok_or(FLASH_ERROR)?;
            self.dfu.write((start + aligned) as u32, padded).map_err(|_| FLASH_ERROR)?;
        }
        Ok(())
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let step = DFU::READ_SIZE.max(1);
        let aligned = buf.len() - buf.len() % step;
        let (body, tail) = buf.split_at_mut(aligned);
        if !body.is_empty() {
            self.dfu.read(offset, body).map_err(|_| FLASH_ERROR)?;
        }
        if !tail.is_empty() {
            let mut scratch = [0u8; MAX_WRITE_SIZE];
            let scratch = scratch.get_mut(..step).ok_or(StorageError("flash read size not supported"))?;
            self.dfu.read(offset + aligned as u32, scratch).map_err(|_| FLASH_ERROR)?;
            tail.copy_from_slice(scratch.get(..tail.len()).ok_or(FLASH_ERROR)?);
        }
        Ok(())
    }

    fn finish(&mut self, size: u32) -> Result<(), StorageError> {
        // NOR writes are durable once `write` returns.
        if size == self.size { Ok(()) } else { Err(StorageError("size changed")) }
    }

    fn mark_for_boot(&mut self) -> Result<(), StorageError> {
        self.state.mark_updated().map_err(state_error)
    }

    fn abort(&mut self) {
        // Nothing to undo: the DFU partition is only used once marked.
        self.size = 0;
    }

    fn reboot(&mut self) -> Result<(), StorageError> {
        (self.reboot)();
        Ok(())
    }
}
