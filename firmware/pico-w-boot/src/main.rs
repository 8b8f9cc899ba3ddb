//! The bootloader of the Pico W firmware (`firmware/pico-w`): embassy-boot on the RP2040.
//!
//! On every reset it reads the state partition. After `$ota/end` marked a verified image
//! (`mark_updated`) it swaps the DFU partition into the active one, page by page, so that a
//! power cut in the middle resumes on the next boot; if the swapped-in firmware resets before
//! it confirmed itself (`mark_booted`), it swaps the previous firmware back. Then it jumps to
//! the active partition.
//!
//! The watchdog starts here (8 s, fed on every flash access while swapping) and stays on:
//! the firmware must keep feeding it, so a firmware that hangs is reset, and rolled back if
//! it was on trial. Flash layout: `memory.x` and `docs/embedded.md`.
#![no_std]
#![no_main]

use core::cell::RefCell;

use cortex_m_rt::{entry, exception};
use embassy_boot_rp::{BootLoader, BootLoaderConfig, WatchdogFlash};
use embassy_sync::blocking_mutex::Mutex;
use embassy_time::Duration;

/// The Pico W's flash (W25Q16JV, 2 MiB).
const FLASH_SIZE: usize = 2 * 1024 * 1024;

#[entry]
fn main() -> ! {
    let p = embassy_rp::init(Default::default());
    let flash = WatchdogFlash::<FLASH_SIZE>::start(p.FLASH, p.WATCHDOG, Duration::from_secs(8));
    let flash = Mutex::new(RefCell::new(flash));
    let config = BootLoaderConfig::from_linkerfile_blocking(&flash, &flash, &flash);
    let active = config.active.offset();
    let loader: BootLoader = BootLoader::prepare(config);
    // SAFETY: the active partition holds a firmware linked for it (firmware/pico-w/memory.x).
    unsafe { loader.load(embassy_rp::flash::FLASH_BASE as u32 + active) }
}

/// A fault resets the chip (the watchdog is running); the next boot retries the swap.
#[exception]
unsafe fn HardFault(_: &cortex_m_rt::ExceptionFrame) -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}

/// A panic (a flash error while swapping) resets the chip; the swap resumes on the next boot.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
