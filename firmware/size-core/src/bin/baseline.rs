//! The baseline for `core.rs`: the same runtime, buffers and loop shape, without the SDK.
//! `core - baseline` is what thinger-core and the 4 resources cost.
#![no_std]
#![no_main]

use core::hint::black_box;

#[cfg(target_arch = "arm")]
use cortex_m as _; // its critical-section implementation
use panic_halt as _;
#[cfg(target_arch = "riscv32")]
use riscv as _; // its critical-section implementation
use static_cell::ConstStaticCell;

const SESSION_BUFFER: usize = 1024;
const WIRE: usize = 256;

static SESSION_BUF: ConstStaticCell<[u8; SESSION_BUFFER]> = ConstStaticCell::new([0; SESSION_BUFFER]);
static WIRE_IN: ConstStaticCell<[u8; WIRE]> = ConstStaticCell::new([0; WIRE]);
static WIRE_OUT: ConstStaticCell<[u8; WIRE]> = ConstStaticCell::new([0; WIRE]);
static TICKS: ConstStaticCell<u64> = ConstStaticCell::new(0);

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let buf = SESSION_BUF.take();
    let wire_in = WIRE_IN.take();
    let wire_out = WIRE_OUT.take();
    let ticks = TICKS.take();
    loop {
        *ticks = black_box(*ticks + 1);
        let received = black_box(&mut *wire_in);
        let len = black_box(received.len()).min(WIRE);
        // Stand-in for the session: the input goes through the buffer to the output.
        let n = len.min(buf.len());
        buf[..n].copy_from_slice(&received[..n]);
        black_box(&mut *buf);
        wire_out[..n].copy_from_slice(&buf[..n]);
        black_box(&wire_out[..]);
    }
}
