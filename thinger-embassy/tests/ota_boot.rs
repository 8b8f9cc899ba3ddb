//! The embassy-boot OTA cycle on RAM-backed NOR flash: an image pushed through the core's
//! `$ota` state machine into the DFU partition, swapped in by the real embassy-boot
//! bootloader, kept when the new firmware confirms its boot, rolled back when it does not.

use embassy_boot::{BootLoader, BootLoaderConfig, State};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use md5::Digest;
use thinger_core::ota::{Ota, OtaConfig, OtaError, OtaStatus, Updater};
use thinger_core::resource::Input;
use thinger_embassy::ota::BootUpdater;

const PAGE: usize = 4096;
const WRITE: usize = 4;
const ACTIVE_SIZE: usize = 8 * PAGE;
const DFU_SIZE: usize = ACTIVE_SIZE + PAGE;

/// NOR flash in RAM: erase sets 0xFF, writes can only clear bits, alignment enforced.
struct RamFlash(Vec<u8>);

#[derive(Debug)]
struct Misaligned;

impl NorFlashError for Misaligned {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::NotAligned
    }
}

impl ErrorType for RamFlash {
    type Error = Misaligned;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Misaligned> {
        let start = offset as usize;
        bytes.copy_from_slice(self.0.get(start..start + bytes.len()).ok_or(Misaligned)?);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Misaligned> {
        if !(from as usize).is_multiple_of(PAGE) || !(to as usize).is_multiple_of(PAGE) {
            return Err(Misaligned);
        }
        self.0.get_mut(from as usize..to as usize).ok_or(Misaligned)?.fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Misaligned> {
        if !(offset as usize).is_multiple_of(WRITE) || !bytes.len().is_multiple_of(WRITE) {
            return Err(Misaligned);
        }
        let start = offset as usize;
        let dst = self.0.get_mut(start..start + bytes.len()).ok_or(Misaligned)?;
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d &= *s; // NOR: bits only go from 1 to 0
        }
        Ok(())
    }
}

struct Board {
    active: RamFlash,
    dfu: RamFlash,
    state: RamFlash,
}

impl Board {
    fn new(running: &[u8]) -> Board {
        let mut active = vec![0xFF; ACTIVE_SIZE];
        active[..running.len()].copy_from_slice(running);
        Board { active: RamFlash(active), dfu: RamFlash(vec![0xFF; DFU_SIZE]), state: RamFlash(vec![0xFF; PAGE]) }
    }

    /// What the bootloader does at reset.
    fn reset(&mut self) -> State {
        let config = BootLoaderConfig { active: &mut self.active, dfu: &mut self.dfu, state: &mut self.state };
        let mut boot = BootLoader::new(config);
        let mut aligned = [0u8; PAGE];
        boot.prepare_boot(&mut aligned).unwrap()
    }

    fn running(&self, len: usize) -> &[u8] {
        &self.active.0[..len]
    }

    /// Pushes `image` through the core state machine, in 1 KiB chunks; returns what `end` said.
    fn push(&mut self, image: &[u8], reboots: &mut u32) -> Result<(), OtaError> {
        let mut aligned = [0u8; WRITE];
        let updater = BootUpdater::new(&mut self.dfu, &mut self.state, &mut aligned, || *reboots += 1);
        let mut ota = Ota::new(updater, OtaConfig::new(1024));
        let md5: String = md5::Md5::digest(image).iter().map(|b| format!("{b:02x}")).collect();
        let begin = thinger_core::pson!({"firmware": "fw", "size": (image.len() as u64), "checksum": md5});
        let bytes = begin.encode_to_vec();
        ota.begin(&Input::from_pson(&bytes).unwrap())?;
        for chunk in image.chunks(1024) {
            ota.write(chunk)?;
        }
        ota.end()?;
        assert_eq!(ota.status(), OtaStatus::Installed);
        ota.reboot()
    }

    fn confirm(&mut self) {
        let mut aligned = [0u8; WRITE];
        let mut updater = BootUpdater::new(&mut self.dfu, &mut self.state, &mut aligned, || ());
        assert_eq!(updater.boot_state().unwrap(), State::Swap, "unconfirmed after the swap");
        updater.confirm_boot().unwrap();
        assert_eq!(updater.boot_state().unwrap(), State::Boot);
    }
}

fn firmware(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn update_is_swapped_in_and_kept_once_confirmed() {
    let (old, new) = (firmware(20_000, 1), firmware(18_001, 2)); // odd size: last chunk padded
    let mut board = Board::new(&old);
    let mut reboots = 0;
    board.push(&new, &mut reboots).unwrap();
    assert_eq!(reboots, 1);
    assert_eq!(board.running(old.len()), &old[..], "nothing changes before the reset");
    assert_eq!(board.reset(), State::Swap);
    assert_eq!(board.running(new.len()), &new[..]);
    board.confirm();
    assert_eq!(board.reset(), State::Boot);
    assert_eq!(board.running(new.len()), &new[..], "kept after further resets");
}

#[test]
fn unconfirmed_update_is_rolled_back_at_the_next_reset() {
    let (old, new) = (firmware(20_000, 3), firmware(24_000, 4));
    let mut board = Board::new(&old);
    board.push(&new, &mut 0).unwrap();
    assert_eq!(board.reset(), State::Swap);
    assert_eq!(board.running(new.len()), &new[..]);
    // The new firmware crashes (or never connects) and does not confirm: reset again.
    assert_eq!(board.reset(), State::Swap);
    assert_eq!(board.running(old.len()), &old[..], "rolled back to the previous firmware");
    // After the rollback, updates are accepted again.
    board.push(&new, &mut 0).unwrap();
}

#[test]
fn corrupted_dfu_is_refused_at_end_and_not_marked() {
    let (old, new) = (firmware(10_000, 5), firmware(10_000, 6));
    let mut board = Board::new(&old);
    let mut aligned = [0u8; WRITE];
    {
        let updater = BootUpdater::new(&mut board.dfu, &mut board.state, &mut aligned, || ());
        let mut ota = Ota::new(updater, OtaConfig::new(1024));
        let md5: String = md5::Md5::digest(&new).iter().map(|b| format!("{b:02x}")).collect();
        let bytes = thinger_core::pson!({"size": 10_000u32, "checksum": md5}).encode_to_vec();
        ota.begin(&Input::from_pson(&bytes).unwrap()).unwrap();
        for chunk in new.chunks(1024) {
            ota.write(chunk).unwrap();
        }
        // A bit lost in flash after the write.
        ota.updater().write(0, &[0x00; WRITE]).unwrap();
        assert_eq!(ota.end(), Err(OtaError::ChecksumMismatch));
    }
    assert_eq!(board.reset(), State::Boot, "not marked for swap");
    assert_eq!(board.running(old.len()), &old[..]);
}

#[test]
fn update_is_refused_while_the_running_firmware_is_unconfirmed() {
    let (old, new) = (firmware(8_000, 7), firmware(8_000, 8));
    let mut board = Board::new(&old);
    board.push(&new, &mut 0).unwrap();
    assert_eq!(board.reset(), State::Swap);
    let err = board.push(&old, &mut 0).unwrap_err();
    assert!(matches!(err, OtaError::Storage(_)), "{err:?}");
    let mut aligned = [0u8; WRITE];
    let mut updater = BootUpdater::new(&mut board.dfu, &mut board.state, &mut aligned, || ());
    assert!(updater.begin(u32::MAX).is_err(), "larger than the partition");
}
