//! The observed IOTMP exchange through thinger-core's real `Session` with 4 resources, on a
//! Cortex-M4F in QEMU (`mps2-an386`): every reply is compared byte for byte with
//! `replay::STEPS`, the result and the peak stack use go out over semihosting, and the exit
//! code is 0 only when every byte matched.
//!
//!     cd firmware/qemu-replay && cargo run --release
//!
//! Peak stack is measured by stack painting: before the replay, the free stack below the
//! current stack pointer is filled with a pattern; afterwards the lowest overwritten word
//! shows how deep the stack went.
#![no_std]
#![no_main]

// `Step::official` is read only by the host test (thinger-core/tests/replay_table.rs).
#[allow(dead_code)]
mod replay;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use static_cell::ConstStaticCell;

/// The pattern painted over the free stack.
const PAINT: u32 = 0xDEAD_BEEF;
/// Words left unpainted right below the stack pointer of `main` (the painting loop's own
/// frame and the calls it makes live there).
const MARGIN_WORDS: usize = 16;

unsafe extern "C" {
    /// The lowest stack address (end of `.bss`/`.uninit`), from cortex-m-rt's `link.x`.
    static mut _stack_end: u32;
    /// The initial stack pointer (top of RAM), from cortex-m-rt's `link.x`.
    static _stack_start: u32;
}

fn stack_bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken, never their contents.
    (&raw const _stack_end as usize, &raw const _stack_start as usize)
}

/// Fills the stack from its lowest address up to below the current stack pointer.
#[inline(never)]
fn paint_stack() {
    let (bottom, _) = stack_bounds();
    let sp = cortex_m::register::msp::read() as usize;
    let top = sp.saturating_sub(MARGIN_WORDS * 4) & !3;
    let mut p = bottom;
    while p < top {
        // SAFETY: [bottom, top) is stack memory below the live frames, unused until the
        // replay runs; the writes are aligned and volatile so they are not optimised out.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack used so far: from the top down to the lowest word no longer painted.
#[inline(never)]
fn peak_stack() -> usize {
    let (bottom, top) = stack_bounds();
    let mut p = bottom;
    // SAFETY: reads of aligned stack words inside [bottom, top).
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

/// The replay's buffers live in statics, as a firmware would keep them (their RAM is static
/// RAM, not stack). The session object itself is built on the stack by `replay::replay`.
static SESSION_BUF: ConstStaticCell<[u8; replay::SESSION_BUFFER]> = ConstStaticCell::new([0; replay::SESSION_BUFFER]);
static OUT: ConstStaticCell<[u8; 512]> = ConstStaticCell::new([0; 512]);
static EXPECTED: ConstStaticCell<[u8; 512]> = ConstStaticCell::new([0; 512]);

#[entry]
fn main() -> ! {
    paint_stack();
    let (buf, out, expected) = (SESSION_BUF.take(), OUT.take(), EXPECTED.take());
    let mut steps = 0usize;
    let result = replay::replay(buf, out, expected, |_, _| steps += 1);
    let peak = peak_stack();
    let session = core::mem::size_of::<replay::ReplaySession<'static>>();
    match result {
        Ok(()) => {
            hprintln!("qemu-replay: {} steps, every reply byte for byte: ok", steps);
            hprintln!("qemu-replay: peak stack {} B (including the {} B Session object on the stack)", peak, session);
            debug::exit(debug::EXIT_SUCCESS);
        }
        Err(e) => {
            hprintln!("qemu-replay: FAILED after {} steps: {:?}", steps, e);
            debug::exit(debug::EXIT_FAILURE);
        }
    }
    loop {
        cortex_m::asm::nop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("qemu-replay: panic");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::nop();
    }
}
