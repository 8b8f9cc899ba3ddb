//! The few `unsafe` operations of the PSON hot paths on hosts, each a measured win
//! (figures from `count.sh` of the PSON bench, now `benches/pson-counts`, callgrind, x86-64;
//! see docs/benchmarks.md).
//! Nothing here is compiled for microcontrollers.

/// `f` truncated towards zero by the bare hardware conversion (`cvttsd2si`): `i64::MIN`
/// for NaN and for everything outside `[-2^63, 2^63)`. `f as i64` saturates instead
/// (`i64::MAX` above the range, 0 for NaN), six more instructions per float written:
/// `payload/encode/hand` 145 -> 137, `serde` 133 -> 125 instructions.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn truncate_f64(f: f64) -> i64 {
    use core::arch::x86_64::{_mm_cvttsd_si64, _mm_set_sd};
    #[allow(unsafe_code)]
    // SAFETY: both intrinsics need only SSE2, which this code is compiled for (the cfg
    // above: every x86-64 target but the soft-float ones, such as x86_64-unknown-uefi).
    let truncated = unsafe { _mm_cvttsd_si64(_mm_set_sd(f)) };
    truncated
}

/// `f` truncated towards zero by the bare hardware conversion (`cvttss2si`): `i64::MIN`
/// for NaN and for everything outside `[-2^63, 2^63)`, as [`truncate_f64`] for doubles
/// (the f32 whole-number test of the encoder; the bit tests it replaces on hosts cost
/// `payload/encode/hand` with an f32 temperature 193 instructions, see docs/benchmarks.md).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn truncate_f32(f: f32) -> i64 {
    use core::arch::x86_64::{_mm_cvttss_si64, _mm_set_ss};
    #[allow(unsafe_code)]
    // SAFETY: both intrinsics need only SSE (part of SSE2), which this code is compiled for
    // (the cfg above).
    let truncated = unsafe { _mm_cvttss_si64(_mm_set_ss(f)) };
    truncated
}
