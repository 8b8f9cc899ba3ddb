//! Puts the memory layouts where the linker finds them: `memory.x` (Cortex-M, included by
//! cortex-m-rt's `link.x`) and `memory-riscv.x` (named by the riscv32 rustflags).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    for layout in ["memory.x", "memory-riscv.x"] {
        fs::copy(layout, out.join(layout)).expect("copy memory layout");
        println!("cargo:rerun-if-changed={layout}");
    }
    println!("cargo:rustc-link-search={}", out.display());
}
