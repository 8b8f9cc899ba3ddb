//! Float classification with integer arithmetic only.
//!
//! The targets this crate is for often have no double-precision FPU (Cortex-M4F) or no FPU
//! at all: there every `f64` comparison or conversion is a call into the soft-float
//! library (about 1.5 KB of it for the few operations the PSON rules need). These helpers
//! look at the IEEE 754 bits instead and give exactly the answers of the float expressions
//! they replace (the tests compare them on special values and random bit patterns).
//! x86-64 and AArch64 hosts, which have the instructions, use the float expressions for
//! `f64_whole_i64` and `f64_exact_f32` (the encoder's hot path) instead.

/// A finite, non-zero float as `±m × 2^e` (`m` has the implicit bit, if any), or a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parts {
    Zero,
    /// Infinity or NaN.
    NonFinite,
    Finite {
        m: u64,
        e: i32,
    },
}

/// Microcontrollers' form of [`Parts`]: `±m × 2^e` in plain fields, zero as `m = 0, e = 0`
/// and infinities and NaN as `m = u64::MAX, e = 1` (not whole: the first step up
/// overflows), so the whole-number test has no class to branch on and nothing to
/// translate.
#[cfg(any(target_os = "none", test))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scaled {
    m: u64,
    e: i32,
}

#[cfg(any(target_os = "none", test))]
impl Scaled {
    /// Infinity or NaN.
    const NON_FINITE: Scaled = Scaled { m: u64::MAX, e: 1 };

    /// The same value as `parts` (the tests' bridge to the hosts' functions).
    #[cfg(test)]
    fn from_parts(parts: Parts) -> Scaled {
        match parts {
            Parts::Zero => Scaled { m: 0, e: 0 },
            Parts::NonFinite => Scaled::NON_FINITE,
            Parts::Finite { m, e } => Scaled { m, e },
        }
    }

    /// Back to [`Parts`] (`f64_exact_f32_general`).
    #[cfg(target_os = "none")]
    #[inline(always)]
    fn parts(self) -> Parts {
        match self {
            Scaled { m: 0, .. } => Parts::Zero,
            Scaled::NON_FINITE => Parts::NonFinite,
            Scaled { m, e } => Parts::Finite { m, e },
        }
    }
}

/// What the splits give: [`Parts`], on microcontrollers [`Scaled`].
#[cfg(not(target_os = "none"))]
pub(crate) type Split = Parts;
#[cfg(target_os = "none")]
pub(crate) type Split = Scaled;

/// `split`, on microcontrollers as [`Scaled`].
#[cfg(not(target_os = "none"))]
#[inline]
fn split_to(bits: u64, mant_bits: u32, exp_bits: u32) -> (bool, Split) {
    split(bits, mant_bits, exp_bits)
}

/// `split`, on microcontrollers as [`Scaled`].
#[cfg(target_os = "none")]
#[inline(always)]
fn split_to(bits: u64, mant_bits: u32, exp_bits: u32) -> (bool, Split) {
    split_scaled(bits, mant_bits, exp_bits)
}

/// `split` as [`Scaled`] (microcontrollers; compiled on hosts for the tests).
// Inlined into `split_f32_bits` / `split_f64`, where the widths are constants (out of line
// it was one generic copy with variable shifts): −88 B on thumbv7em "z".
#[cfg(any(target_os = "none", test))]
#[inline(always)]
fn split_scaled(bits: u64, mant_bits: u32, exp_bits: u32) -> (bool, Scaled) {
    let neg = (bits >> (mant_bits + exp_bits)) & 1 == 1;
    let exp_max = (1u64 << exp_bits) - 1;
    let exp = (bits >> mant_bits) & exp_max;
    let mant = bits & ((1u64 << mant_bits) - 1);
    let shift = (exp_max >> 1) as i32 + mant_bits as i32;
    let scaled = match exp {
        // Zero (`mant == 0`: `m = 0, e = 0`) or subnormal.
        0 => Scaled { m: mant, e: if mant == 0 { 0 } else { 1 - shift } },
        e if e == exp_max => Scaled::NON_FINITE,
        e => Scaled { m: mant | 1u64 << mant_bits, e: e as i32 - shift },
    };
    (neg, scaled)
}

/// Splits IEEE bits with `mant_bits` fraction bits and `exp_bits` exponent bits.
#[cfg(not(target_os = "none"))]
#[inline]
fn split(bits: u64, mant_bits: u32, exp_bits: u32) -> (bool, Parts) {
    let neg = (bits >> (mant_bits + exp_bits)) & 1 == 1;
    let exp_max = (1u64 << exp_bits) - 1;
    let exp = (bits >> mant_bits) & exp_max;
    let mant = bits & ((1u64 << mant_bits) - 1);
    // Exponent bias plus the fraction bits: value = m × 2^(exp - shift).
    let shift = (exp_max >> 1) as i32 + mant_bits as i32;
    let parts = match exp {
        0 if mant == 0 => Parts::Zero,
        0 => Parts::Finite { m: mant, e: 1 - shift },
        e if e == exp_max => Parts::NonFinite,
        e => Parts::Finite { m: mant | 1u64 << mant_bits, e: e as i32 - shift },
    };
    (neg, parts)
}

// Forced inline on microcontrollers: with the split as `Scaled` (no class to write and read
// back) the copy in `PsonRef::as_u64` is smaller than the call and its result in memory
// (−24 / −24 / −24 B "z"; as `Parts` it was +96 B); so is a firmware's with `f64` output.
#[cfg_attr(not(target_os = "none"), inline)]
#[cfg_attr(target_os = "none", inline(always))]
pub(crate) fn split_f64(value: f64) -> (bool, Split) {
    split_to(value.to_bits(), 52, 11)
}

#[inline]
pub(crate) fn split_f32(value: f32) -> (bool, Split) {
    split_f32_bits(value.to_bits())
}

/// `split_f32` of the bits (the encoder holds an f32 as its bits: no FPU register is kept
/// alive across its calls).
#[inline]
fn split_f32_bits(bits: u32) -> (bool, Split) {
    split_to(u64::from(bits), 23, 8)
}

/// The magnitude of a whole number below 2^64 (`None` for fractions, infinities, NaN and
/// magnitudes of 2^64 and more).
// Hosts: inlined (speed). Microcontrollers have the stepwise version below, out of line.
#[cfg(not(target_os = "none"))]
#[inline]
fn whole_magnitude(parts: Parts) -> Option<u64> {
    match parts {
        Parts::Zero => Some(0),
        Parts::NonFinite => None,
        Parts::Finite { m, e } if e >= 0 => {
            let e = e.unsigned_abs();
            if e >= 64 || m.leading_zeros() < e { None } else { Some(m << e) }
        }
        Parts::Finite { m, e } => {
            let right = e.unsigned_abs();
            // m < 2^53, so shifting right by 53 or more leaves a fraction only.
            if right >= 64 || m & ((1u64 << right) - 1) != 0 { None } else { Some(m >> right) }
        }
    }
}

/// The magnitude of a whole number below 2^64 (microcontrollers: see `whole_magnitude_stepwise`).
#[cfg(target_os = "none")]
#[inline(always)]
fn whole_magnitude(Scaled { m, e }: Scaled) -> Option<u64> {
    whole_magnitude_of(e, m)
}

/// `whole_magnitude` out of line with `e` first: every argument in a register (the
/// `Scaled` by value put `e` on the stack).
#[cfg(target_os = "none")]
#[inline(never)]
fn whole_magnitude_of(e: i32, m: u64) -> Option<u64> {
    whole_magnitude_stepwise(Scaled { m, e })
}

/// `whole_magnitude` one bit at a time (compiled on hosts for the tests): a 64-bit shift by
/// one is a few 32-bit instructions, a shift by a variable amount is a call of the 64-bit
/// shift routines (`__aeabi_llsl` / `__aeabi_llsr`, `__ashldi3` / `__lshrdi3`), which
/// nothing else links. At most 64 steps: a non-zero `m` reaches the top (too large) or
/// the bottom (a fraction) by then; zero has `e = 0`, and a non-finite value overflows on
/// the first step.
#[cfg(any(target_os = "none", test))]
#[inline]
fn whole_magnitude_stepwise(Scaled { mut m, e }: Scaled) -> Option<u64> {
    if e >= 0 {
        for _ in 0..e {
            if m >> 63 != 0 {
                return None;
            }
            m <<= 1;
        }
    } else {
        for _ in 0..e.unsigned_abs() {
            if m & 1 != 0 {
                return None;
            }
            m >>= 1;
        }
    }
    Some(m)
}

#[inline]
fn to_i64(neg: bool, magnitude: u64) -> Option<i64> {
    if neg {
        if magnitude == 1u64 << 63 { Some(i64::MIN) } else { i64::try_from(magnitude).ok().map(|m| -m) }
    } else {
        i64::try_from(magnitude).ok()
    }
}

// Microcontrollers, and hosts other than x86-64 and AArch64 (which may lack a double FPU).
#[cfg(any(target_os = "none", not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
pub(crate) use self::f64_whole_i64_general as f64_whole_i64;

/// `Some(f as i64)` when `f` is a whole number in `[-2^63, 2^63)`, for every input, with
/// integer arithmetic only (microcontrollers use it as `f64_whole_i64`).
#[cfg_attr(
    all(not(test), not(target_os = "none"), any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) fn f64_whole_i64_general(f: f64) -> Option<i64> {
    let (neg, parts) = split_f64(f);
    to_i64(neg, whole_magnitude(parts)?)
}

// Microcontrollers, and hosts other than x86-64 and AArch64.
#[cfg(any(target_os = "none", not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
pub(crate) use self::f32_whole_i64_general as f32_whole_i64;

/// `Some(f as i64)` when `f` is a whole number in `[-2^63, 2^63)`, with integer
/// arithmetic only (microcontrollers use it as `f32_whole_i64`).
#[cfg_attr(
    all(not(test), not(target_os = "none"), any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) fn f32_whole_i64_general(f: f32) -> Option<i64> {
    let (neg, parts) = split_f32(f);
    to_i64(neg, whole_magnitude(parts)?)
}

/// The f32 of `bits` as a sign and a magnitude when it is a whole number in `[-2^63, 2^63)` (`-0.0` gives
/// `(false, 0)`: the integer 0), for the encoder: the sign picks the integer type and the
/// magnitude is the tag's value, so no `i64` is built and taken apart again.
// Hosts: the tests' reference for the microcontrollers' form below (hosts' `Encoder::f32`
// takes `f32_whole_i64`).
#[cfg(all(test, not(target_os = "none")))]
pub(crate) fn f32_whole_signed(bits: u32) -> Option<(bool, u64)> {
    let (neg, parts) = split_f32_bits(bits);
    let m = whole_magnitude(parts)?;
    let neg = neg && m != 0;
    // -2^63 is `i64::MIN`; 2^63 and up are out of range.
    (m < 1 << 63 || (neg && m == 1 << 63)).then_some((neg, m))
}

/// `f32_whole_signed` of microcontrollers (compiled on hosts for the tests): the magnitude's
/// bits through the one f32 rule they link, `f32_magnitude_whole`.
#[cfg(target_os = "none")]
pub(crate) fn f32_whole_signed(bits: u32) -> Option<(bool, u64)> {
    f32_whole_signed_compact(bits)
}

/// See `f32_whole_signed` (microcontrollers).
#[cfg(any(target_os = "none", test))]
#[inline]
fn f32_whole_signed_compact(bits: u32) -> Option<(bool, u64)> {
    let m = f32_magnitude_whole(bits & 0x7fff_ffff)?;
    let neg = bits >> 31 != 0 && m != 0;
    // -2^63 is `i64::MIN`; 2^63 and up are out of range: one subtraction and a sign test,
    // not two compares (docs/footprint-rounds-2.md).
    ((m - u64::from(neg)) >> 63 == 0).then_some((neg, m))
}

/// `Some(f as u64)` when `f` is a whole number in `[0, 2^64)` (`-0.0` included).
// Hosts' `PsonRef::as_u64` (microcontrollers: `f32_bits_whole_u64` / `f64_bits_whole_u64`).
#[cfg(any(not(target_os = "none"), test))]
pub(crate) fn f64_whole_u64(f: f64) -> Option<u64> {
    whole_u64(split_f64(f))
}

/// `Some(f as u64)` when `f` is a whole number in `[0, 2^64)` (`-0.0` included).
// Hosts' `PsonRef::as_u64` (microcontrollers: `f32_bits_whole_u64` / `f64_bits_whole_u64`).
#[cfg(any(not(target_os = "none"), test))]
pub(crate) fn f32_whole_u64(f: f32) -> Option<u64> {
    whole_u64(split_f32(f))
}

/// The split float as `u64` when it is a whole number in `[0, 2^64)` (`-0.0` included).
#[cfg(not(target_os = "none"))]
#[inline]
pub(crate) fn whole_u64((neg, parts): (bool, Split)) -> Option<u64> {
    whole_magnitude(parts).filter(|&m| !neg || m == 0)
}

/// The magnitude of the f32 of `bits` when it is a whole number below 2^64; the sign bit
/// must be clear (microcontrollers; compiled on hosts for the tests). The encoder's rule
/// and `PsonRef::as_u64` share it: one split of an f32, its answer in the caller's slot
/// (`whole_magnitude` is its tail), no sign and split written to memory and read back.
#[cfg(any(target_os = "none", test))]
#[cfg_attr(target_os = "none", inline(never))]
pub(crate) fn f32_magnitude_whole(bits: u32) -> Option<u64> {
    let (_, scaled) = split_scaled(u64::from(bits), 23, 8);
    #[cfg(target_os = "none")]
    return whole_magnitude(scaled);
    #[cfg(not(target_os = "none"))]
    whole_magnitude_stepwise(scaled)
}

/// `Some(f as u64)` for the f32 of `bits` when it is a whole number in `[0, 2^64)` (`-0.0`
/// included; microcontrollers' `PsonRef::as_u64`, compiled on hosts for the tests).
#[cfg(any(target_os = "none", test))]
#[inline(always)]
pub(crate) fn f32_bits_whole_u64(bits: u32) -> Option<u64> {
    if bits >> 31 != 0 {
        // Negative: whole and in range only as zero.
        return (bits << 1 == 0).then_some(0);
    }
    f32_magnitude_whole(bits)
}

/// `Some(f as u64)` for the f64 of `bits` when it is a whole number in `[0, 2^64)` (`-0.0`
/// included; microcontrollers' `PsonRef::as_u64`, compiled on hosts for the tests): a
/// negative value only as zero, with no split.
#[cfg(any(target_os = "none", test))]
#[inline(always)]
pub(crate) fn f64_bits_whole_u64(bits: u64) -> Option<u64> {
    if bits >> 63 != 0 {
        return (bits << 1 == 0).then_some(0);
    }
    let (_, scaled) = split_scaled(bits, 52, 11);
    #[cfg(target_os = "none")]
    return whole_magnitude(scaled);
    #[cfg(not(target_os = "none"))]
    whole_magnitude_stepwise(scaled)
}

/// `f != 0.0`, or `None` for NaN (the tests' form of the `bool` rule of floats).
#[cfg(test)]
fn f64_nonzero(f: f64) -> Option<bool> {
    nonzero_words(f64_words(f))
}

/// `f != 0.0`, or `None` for NaN (the tests' form of the `bool` rule of floats).
#[cfg(test)]
fn f32_nonzero(f: f32) -> Option<bool> {
    nonzero_words(f32_words(f))
}

/// An f64 for [`nonzero_words`]: its high word, its low word, the high word of infinity.
#[inline(always)]
pub(crate) fn f64_words(f: f64) -> (u32, u32, u32) {
    let bits = f.to_bits();
    ((bits >> 32) as u32, bits as u32, 0x7ff0_0000)
}

/// An f32 for [`nonzero_words`]: its bits, a low word of 0, the bits of infinity.
#[inline(always)]
pub(crate) fn f32_words(f: f32) -> (u32, u32, u32) {
    (f.to_bits(), 0, 0x7f80_0000)
}

/// `f != 0.0`, or `None` for NaN, on a float's 32-bit words (`f32_words`, `f64_words`):
/// `high` the word with the sign and the exponent, `low` the rest of the mantissa,
/// `infinity` the magnitude of the high word of an infinity. On the bits: no split, no FPU
/// register kept by the caller; one test for both widths, after the `bool` reader's match
/// (`DigitalPin::handle` 208 -> 180 B on thumbv7em "z", docs/footprint-rounds-2.md).
#[inline(always)]
pub(crate) fn nonzero_words((high, low, infinity): (u32, u32, u32)) -> Option<bool> {
    let magnitude = high & 0x7fff_ffff;
    if magnitude > infinity || (magnitude == infinity && low != 0) { None } else { Some(magnitude | low != 0) }
}

#[cfg(any(target_os = "none", not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
pub(crate) use self::f64_exact_f32_general as f64_exact_f32;

/// `Some(f as i64)` when `f` is a whole number in `[-2^63, 2^63)`.
///
/// x86-64 and AArch64 hosts: a round trip through the hardware conversions, no range
/// compares (a handful of instructions, against about twenty for the bit tests).
/// `f as i64` truncates and saturates (NaN gives 0, which is not NaN); it converts back to
/// `f` exactly when `f` had no fraction (a fraction means `|f| < 2^52`, where every
/// integer is exact as `f64`) and was in range, or saturated to `i64::MIN` from exactly
/// -2^63, or to `i64::MAX` from 2^63 and up, which the last test refuses (below -2^63 the
/// round trip gives -2^63, which is not `f`).
/// (Also x86-64 targets without SSE2, such as the soft-float `x86_64-unknown-uefi`.)
#[cfg(all(
    not(target_os = "none"),
    any(target_arch = "aarch64", all(target_arch = "x86_64", not(target_feature = "sse2")))
))]
#[inline(always)]
pub(crate) fn f64_whole_i64(f: f64) -> Option<i64> {
    let v = f as i64;
    // `v != i64::MAX` excludes what saturated from 2^63 and up (i64::MAX itself is not an
    // f64, so no whole number in range converts to it).
    if v as f64 == f && v != i64::MAX { Some(v) } else { None }
}

/// `Some(f as i64)` when `f` is a whole number in `[-2^63, 2^63)`.
///
/// x86-64: the bare truncating conversion (`cvttsd2si`), which gives `i64::MIN` for NaN
/// and for everything out of range, then one conversion back: equal exactly when `f` had
/// no fraction and was in range (`-2^63` itself converts to `i64::MIN` and back to
/// `-2^63`; every other out-of-range value and NaN differ from `-2^63`). `f as i64`
/// saturates instead, which costs six more instructions on every float written
/// (callgrind, `payload/encode/hand`).
#[cfg(all(not(target_os = "none"), target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn f64_whole_i64(f: f64) -> Option<i64> {
    let v = super::raw::truncate_f64(f);
    if v as f64 == f { Some(v) } else { None }
}

/// `Some(f as i64)` when `f` is a whole number in `[-2^63, 2^63)`: the f32 twin of
/// [`f64_whole_i64`] (AArch64: `f as i64` saturates, NaN to 0, 2^63 and up to `i64::MAX`,
/// which no whole f32 in range converts to).
#[cfg(all(
    not(target_os = "none"),
    any(target_arch = "aarch64", all(target_arch = "x86_64", not(target_feature = "sse2")))
))]
#[inline(always)]
pub(crate) fn f32_whole_i64(f: f32) -> Option<i64> {
    let v = f as i64;
    if v as f32 == f && v != i64::MAX { Some(v) } else { None }
}

/// `Some(f as i64)` when `f` is a whole number in `[-2^63, 2^63)`: the f32 twin of
/// [`f64_whole_i64`] on x86-64 (`cvttss2si` gives `i64::MIN` for NaN and out of range,
/// which converts back to -2^63: equal only for -2^63 itself; a fraction means
/// `|f| < 2^23`, whose truncation is exact and differs from `f`; -0.0 gives 0).
#[cfg(all(not(target_os = "none"), target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn f32_whole_i64(f: f32) -> Option<i64> {
    let v = super::raw::truncate_f32(f);
    if v as f32 == f { Some(v) } else { None }
}

/// `f as f32` when that conversion is exact (`f64::from(f as f32) == f`); `None` for NaN
/// and for values `f32` cannot hold exactly.
///
/// x86-64 and AArch64 hosts: the hardware narrowing and widening (round to nearest, so
/// the round trip gives `f` back exactly when `f32` holds it; NaN never compares equal).
#[cfg(all(not(target_os = "none"), any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
pub(crate) fn f64_exact_f32(f: f64) -> Option<f32> {
    let narrow = f as f32;
    if f64::from(narrow) == f { Some(narrow) } else { None }
}

/// `f as f32` when that conversion is exact, for every input, with integer arithmetic only
/// (microcontrollers and hosts other than x86-64 and AArch64 use it as `f64_exact_f32`).
#[cfg_attr(target_os = "none", inline(never))]
#[cfg_attr(
    all(not(test), not(target_os = "none"), any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) fn f64_exact_f32_general(f: f64) -> Option<f32> {
    let bits = f.to_bits();
    let sign = ((bits >> 63) as u32) << 31;
    #[cfg(not(target_os = "none"))]
    let parts = split_f64(f).1;
    #[cfg(target_os = "none")]
    let parts = split_f64(f).1.parts();
    match parts {
        Parts::Zero => Some(f32::from_bits(sign)),
        Parts::NonFinite if bits & ((1u64 << 52) - 1) != 0 => None,
        Parts::NonFinite => Some(f32::from_bits(sign | 0x7f80_0000)),
        Parts::Finite { m, e } => {
            let tz = m.trailing_zeros();
            let m = m >> tz;
            let low = e + tz as i32; // exponent of the lowest set bit
            let width = 64 - m.leading_zeros() as i32; // significant bits
            let top = low + width - 1; // value in [2^top, 2^(top + 1))
            if width > 24 || top > 127 || low < -149 {
                return None;
            }
            let m = m as u32; // fits: width <= 24
            let magnitude = if top >= -126 {
                // Normal: 24 bits with the implicit one at bit 23.
                let biased = (top + 127) as u32;
                (biased << 23) | ((m << (24 - width)) & 0x007f_ffff)
            } else {
                // Subnormal: value = fraction × 2^-149.
                m << (low + 149)
            };
            Some(f32::from_bits(sign | magnitude))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ref_whole_i64(f: f64) -> Option<i64> {
        if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) && (f as i64) as f64 == f {
            Some(f as i64)
        } else {
            None
        }
    }

    fn ref_whole_u64(f: f64) -> Option<u64> {
        if (0.0..18_446_744_073_709_551_616.0).contains(&f) && (f as u64) as f64 == f { Some(f as u64) } else { None }
    }

    fn ref_exact_f32(f: f64) -> Option<f32> {
        let narrow = f as f32;
        (f64::from(narrow) == f).then_some(narrow)
    }

    fn specials64() -> std::vec::Vec<f64> {
        let mut v = std::vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            1.5,
            3.0,
            21.5,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            // NaNs with mantissa bits in the low word only (the `bool` rule's word test).
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff0_0000_8000_0000),
            f64::EPSILON,
            9_223_372_036_854_775_808.0,
            -9_223_372_036_854_775_808.0,
            9_223_372_036_854_774_784.0,
            18_446_744_073_709_551_616.0,
            18_446_744_073_709_549_568.0,
            4_503_599_627_370_496.5,
            9_007_199_254_740_993.0,
            f64::from(f32::MAX),
            f64::from(f32::MIN_POSITIVE),
            f64::from(f32::from_bits(1)),
            f64::from(f32::from_bits(1)) / 2.0,
            f64::from(f32::from_bits(3)) * 1.5,
            f64::from(f32::MAX) * 2.0,
            16_777_217.0,
            16_777_216.0,
            0.1,
        ];
        for exp in -1100..1100 {
            let p = 2f64.powi(exp);
            v.extend([p, -p, p * 1.5, p * (1.0 + f64::EPSILON)]);
        }
        v
    }

    fn check64(f: f64) {
        assert_eq!(f64_whole_i64(f), ref_whole_i64(f), "{f:e} {:#x}", f.to_bits());
        assert_eq!(f64_whole_i64_general(f), ref_whole_i64(f), "{f:e} {:#x}", f.to_bits());
        let general = f64_exact_f32_general(f).map(f32::to_bits);
        assert_eq!(general, ref_exact_f32(f).map(f32::to_bits), "{f:e} {:#x}", f.to_bits());
        assert_eq!(f64_whole_u64(f), ref_whole_u64(f), "{f:e} {:#x}", f.to_bits());
        assert_eq!(f64_bits_whole_u64(f.to_bits()), ref_whole_u64(f), "{f:e} {:#x}", f.to_bits());
        let exact = f64_exact_f32(f).map(f32::to_bits);
        assert_eq!(exact, ref_exact_f32(f).map(f32::to_bits), "{f:e} {:#x}", f.to_bits());
        let nonzero = if f.is_nan() { None } else { Some(f != 0.0) };
        assert_eq!(f64_nonzero(f), nonzero, "{f:e}");
    }

    fn check_stepwise(f: f64) {
        for (_, parts) in [split_f64(f), split_f32(f as f32)] {
            let scaled = Scaled::from_parts(parts);
            assert_eq!(whole_magnitude_stepwise(scaled), whole_magnitude(parts), "{f:e} {parts:?}");
        }
        // The microcontrollers' split gives the same value as the hosts'.
        assert_eq!(split_scaled(f.to_bits(), 52, 11), (split_f64(f).0, Scaled::from_parts(split_f64(f).1)));
        let bits = (f as f32).to_bits();
        let (neg, parts) = split_f32(f as f32);
        assert_eq!(split_scaled(u64::from(bits), 23, 8), (neg, Scaled::from_parts(parts)));
    }

    fn check32(f: f32) {
        assert_eq!(f32_bits_whole_u64(f.to_bits()), ref_whole_u64(f64::from(f)), "{f:e} {:#x}", f.to_bits());
        let nonzero = if f.is_nan() { None } else { Some(f != 0.0) };
        assert_eq!(f32_nonzero(f), nonzero, "{f:e}");
        assert_eq!(f32_whole_i64(f), ref_whole_i64(f64::from(f)), "{f:e} {:#x}", f.to_bits());
        assert_eq!(f32_whole_i64_general(f), ref_whole_i64(f64::from(f)), "{f:e} {:#x}", f.to_bits());
        assert_eq!(f32_whole_u64(f), ref_whole_u64(f64::from(f)), "{f:e} {:#x}", f.to_bits());
        let signed = ref_whole_i64(f64::from(f)).map(|v| (v < 0, v.unsigned_abs()));
        assert_eq!(f32_whole_signed(f.to_bits()), signed, "{f:e} {:#x}", f.to_bits());
        assert_eq!(f32_whole_signed_compact(f.to_bits()), signed, "{f:e} {:#x}", f.to_bits());
    }

    #[test]
    fn special_values_match_float_arithmetic() {
        for f in specials64() {
            check64(f);
            check_stepwise(f);
            check32(f as f32);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn random_f64_bits_match_float_arithmetic(bits in any::<u64>()) {
            check64(f64::from_bits(bits));
            check_stepwise(f64::from_bits(bits));
        }

        #[test]
        fn random_f32_bits_match_float_arithmetic(bits in any::<u32>()) {
            check32(f32::from_bits(bits));
            let wide = f64::from(f32::from_bits(bits));
            check64(wide);
            // Neighbours of an exact value: never exact as f32 (except across zero).
            check64(f64::from_bits(wide.to_bits().wrapping_add(1)));
            check64(f64::from_bits(wide.to_bits().wrapping_sub(1)));
        }

        #[test]
        fn random_whole_numbers_match(v in any::<i64>(), shift in 0u32..64) {
            check64((v >> shift) as f64);
            check32((v >> shift) as f32);
            check_stepwise((v >> shift) as f64);
            check_stepwise(((v >> shift) as u64).wrapping_mul(3) as f64);
        }
    }
}
