//! OTA on the ESP-IDF second-stage bootloader's A/B app slots (`ota_0`, `ota_1`, `otadata`),
//! through esp-bootloader-esp-idf's `OtaUpdater`. There is no embassy-boot bootloader for
//! the ESP32 family, so this is the platform's own scheme (see docs/embedded.md):
//!
//! 1. `$ota/begin` refuses while the running firmware is still on trial, or when the image
//!    is larger than the slot not running.
//! 2. `$ota/write` writes the chunk into that slot (esp-storage's read-modify-write of each
//!    4 KiB sector the chunk touches).
//! 3. `$ota/end` reads the slot back and checks MD5 / SHA-256 (in the core); only then is
//!    the slot selected in `otadata`, with the image state `New`.
//! 4. `$ota/reboot` signals a task that resets the chip a second later.
//! 5. The new firmware sets its state to `Valid` once it has connected ([`SlotUpdater::confirm_boot`]).
//!    With a bootloader built with `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE`, a reset before
//!    that boots the previous slot again; the watchdog in `main.rs` makes that reset happen
//!    when the new firmware hangs or never connects.

use esp_bootloader_esp_idf::ota::OtaImageState;
use esp_bootloader_esp_idf::ota_updater::OtaUpdater;
use thinger_core::ota::{StorageError, Updater};

const FLASH_ERROR: StorageError = StorageError("flash error");
const OTADATA_ERROR: StorageError = StorageError("otadata partition error (no ota_0/ota_1?)");

/// An [`Updater`] writing the app slot that is not running and selecting it in `otadata`.
pub struct SlotUpdater<R> {
    slots: OtaUpdater<'static, 'static>,
    size: u32,
    reboot: R,
}

impl<R: FnMut()> SlotUpdater<R> {
    /// An updater over the partition table's OTA slots; `reboot` schedules a reset.
    pub fn new(slots: OtaUpdater<'static, 'static>, reboot: R) -> Self {
        SlotUpdater { slots, size: 0, reboot }
    }

    /// Whether the running firmware is on trial: installed by an update and not confirmed.
    pub fn on_trial(&mut self) -> bool {
        matches!(self.slots.current_ota_state(), Ok(OtaImageState::New | OtaImageState::PendingVerify))
    }

    /// Confirms the running firmware (state `Valid`): call it once the device is connected.
    pub fn confirm_boot(&mut self) -> Result<(), StorageError> {
        if self.on_trial() {
            self.slots.set_current_ota_state(OtaImageState::Valid).map_err(|_| OTADATA_ERROR)?;
        }
        Ok(())
    }
}

impl<R: FnMut()> Updater for SlotUpdater<R> {
    fn begin(&mut self, size: u32) -> Result<(), StorageError> {
        if self.on_trial() {
            return Err(StorageError("running firmware not confirmed"));
        }
        let (slot, _) = self.slots.next_partition().map_err(|_| OTADATA_ERROR)?;
        if size as usize > slot.capacity() {
            return Err(StorageError("image larger than the OTA slot"));
        }
        self.size = size;
        Ok(())
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        let end = (offset as usize).checked_add(data.len()).ok_or(StorageError("write outside the image"))?;
        if end > self.size as usize {
            return Err(StorageError("write outside the image"));
        }
        let (mut slot, _) = self.slots.next_partition().map_err(|_| OTADATA_ERROR)?;
        slot.write(offset, data).map_err(|_| FLASH_ERROR)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let (mut slot, _) = self.slots.next_partition().map_err(|_| OTADATA_ERROR)?;
        slot.read(offset, buf).map_err(|_| FLASH_ERROR)
    }

    fn finish(&mut self, size: u32) -> Result<(), StorageError> {
        // esp-storage's writes are durable once they return.
        if size == self.size { Ok(()) } else { Err(StorageError("size changed")) }
    }

    fn mark_for_boot(&mut self) -> Result<(), StorageError> {
        self.slots.activate_next_partition().map_err(|_| OTADATA_ERROR)?;
        self.slots.set_current_ota_state(OtaImageState::New).map_err(|_| OTADATA_ERROR)
    }

    fn abort(&mut self) {
        // Nothing to undo: the slot is only selected once the image is verified.
        self.size = 0;
    }

    fn reboot(&mut self) -> Result<(), StorageError> {
        (self.reboot)();
        Ok(())
    }
}
