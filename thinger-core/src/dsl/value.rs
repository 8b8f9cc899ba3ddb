//! Values: readers for outputs, cells for inputs.

use core::cell::Cell;

use super::{input_reports_state, output_writes, value_to_apply};
use crate::pson::{EncodePson, PsonRef};
use crate::resource::{Call, HandlerError, Output, Resource, ResourceKind};

/// A plain value an input resource can receive and report: `bool`, the integers and the
/// floats. Used by [`input_value`].
///
/// Conversions are checked: an integer type takes any PSON number that fits it exactly
/// (whole floats included, as the official encoder sends `3.0` as `3`), a float type takes
/// any number, and `bool` takes a PSON bool or a number (non-zero is `true`, as the
/// Arduino `pson` does; NaN is refused). Anything else is `None` (the handler answers 400).
///
/// ```
/// use thinger_core::dsl::Scalar;
/// use thinger_core::pson::PsonRef;
/// assert_eq!(u8::from_pson(&PsonRef::Uint(200)), Some(200));
/// assert_eq!(u8::from_pson(&PsonRef::Uint(300)), None);
/// assert_eq!(i16::from_pson(&PsonRef::F64(-3.0)), Some(-3));
/// assert_eq!(f32::from_pson(&PsonRef::Int(-2)), Some(-2.0));
/// assert_eq!(bool::from_pson(&PsonRef::Uint(1)), Some(true));
/// assert_eq!(bool::from_pson(&PsonRef::Str("yes")), None);
/// ```
pub trait Scalar: Copy + EncodePson {
    /// The value, if `value` holds one of this type.
    fn from_pson(value: &PsonRef<'_>) -> Option<Self>;
}

impl Scalar for bool {
    fn from_pson(value: &PsonRef<'_>) -> Option<Self> {
        use crate::pson::float::{f32_words, f64_words, nonzero_words};
        // The floats' words first, then one test for both widths (−12 B on thumbv7em "z"
        // against a test per arm, docs/footprint-rounds-2.md).
        let words = match value {
            PsonRef::Bool(b) => return Some(*b),
            PsonRef::Uint(v) => return Some(*v != 0),
            PsonRef::Int(v) => return Some(*v != 0),
            PsonRef::F32(f) => f32_words(*f),
            PsonRef::F64(f) => f64_words(*f),
            _ => return None,
        };
        nonzero_words(words)
    }
}

macro_rules! scalar_from_i64 {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn from_pson(value: &PsonRef<'_>) -> Option<Self> {
                <$t>::try_from(value.as_i64()?).ok()
            }
        }
    )*};
}
scalar_from_i64!(i8, i16, i32, i64, isize);

// Unsigned types through `as_u64` (out of line, linked anyway for the session's own
// fields) rather than their own inlined copy of `as_i64`'s float checks; an `Int` keeps
// its `i64` path, so the results are the same.
macro_rules! scalar_unsigned {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn from_pson(value: &PsonRef<'_>) -> Option<Self> {
                match *value {
                    PsonRef::Int(v) => <$t>::try_from(v).ok(),
                    _ => <$t>::try_from(value.as_u64()?).ok(),
                }
            }
        }
    )*};
}
scalar_unsigned!(u8, u16, u32);

macro_rules! scalar_from_u64 {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn from_pson(value: &PsonRef<'_>) -> Option<Self> {
                <$t>::try_from(value.as_u64()?).ok()
            }
        }
    )*};
}
scalar_from_u64!(u64, usize);

impl Scalar for f64 {
    fn from_pson(value: &PsonRef<'_>) -> Option<Self> {
        value.as_f64()
    }
}

impl Scalar for f32 {
    fn from_pson(value: &PsonRef<'_>) -> Option<Self> {
        value.as_f64().map(|f| f as f32)
    }
}

/// An input resource bound to a [`Cell`], made by [`input_value`].
///
/// ```
/// use core::cell::Cell;
/// use thinger_core::dsl::*;
/// let speed = Cell::new(0u8);
/// assert_eq!(input_value(&speed).kind(), ResourceKind::Input);
/// ```
#[derive(Debug)]
pub struct InputValue<'c, T: Copy> {
    cell: &'c Cell<T>,
}

/// An input resource that stores what it receives in a [`Cell`] and reports the cell's value.
/// Arduino: `thing["speed"] << inputValue(speed);`.
///
/// The application reads (and changes) the value through the cell at any time; the cell
/// type is one of the [`Scalar`]s. A value that does not fit (a string, `300` for a `u8`) is
/// refused with 400 and leaves the cell alone.
///
/// ```
/// use core::cell::Cell;
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let speed = Cell::new(0u8);
/// let mut handler = input_value(&speed);
/// let (mut out, params) = ([0u8; 4], Params::new());
/// let input = Input::from_pson(&[0x1f, 0x64]).unwrap(); // 100
/// let mut call = Call::new(CallMode::Run, input, Output::new(&mut out), &params);
/// handler.handle(&mut call).unwrap();
/// assert_eq!(speed.get(), 100);
/// assert_eq!(call.into_output().finish(), Ok(2)); // reports 100
/// ```
pub fn input_value<T: Scalar>(cell: &Cell<T>) -> InputValue<'_, T> {
    InputValue { cell }
}

impl<T: Scalar> Resource for InputValue<'_, T> {
    fn kind(&self) -> ResourceKind {
        ResourceKind::Input
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if let Some(input) = value_to_apply(call) {
            let Some(value) = T::from_pson(input) else {
                // Answered 400 "bad input" by `Output::finish`, like any input error.
                call.output().refuse_input();
                return Ok(());
            };
            self.cell.set(value);
        }
        if input_reports_state(call.mode()) {
            // A failed write is recorded, and `Output::finish` reports it.
            let _ = call.output().set(&self.cell.get());
        }
        Ok(())
    }
}

/// An output resource that reports what a closure returns, made by [`output_value`].
///
/// ```
/// use thinger_core::dsl::*;
/// assert_eq!(output_value(|| 42u32).kind(), ResourceKind::Output);
/// ```
#[derive(Debug, Clone)]
pub struct OutputValue<F> {
    read: F,
}

/// An output resource whose value is `read()`, evaluated on every call. Arduino:
/// `thing["millis"] >> outputValue(millis());`.
///
/// The closure may return any [`EncodePson`] value: numbers, `bool`, `&str`, `Option`
/// (`None` is null), arrays, [`pson::Map`](crate::pson::Map), or (feature `serde`)
/// [`pson::Serde`](crate::pson::Serde). It is also called for DESCRIBE, so it should only
/// read.
///
/// ```
/// use core::cell::Cell;
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let now = Cell::new(3809u64);
/// let mut millis = output_value(|| now.get());
/// let (mut out, params) = ([0u8; 4], Params::new());
/// let mut call = Call::new(CallMode::Run, Input::empty(), Output::new(&mut out), &params);
/// millis.handle(&mut call).unwrap();
/// assert_eq!(call.into_output().finish(), Ok(3));
/// assert_eq!(&out[..3], &[0x1f, 0xe1, 0x1d]); // 3809
/// ```
pub fn output_value<F, T>(read: F) -> OutputValue<F>
where
    F: FnMut() -> T,
    T: EncodePson,
{
    OutputValue { read }
}

impl<F, T> Resource for OutputValue<F>
where
    F: FnMut() -> T,
    T: EncodePson,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::Output
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if output_writes(call.mode()) {
            // A failed write is recorded, and `Output::finish` reports it.
            let _ = call.output().set(&(self.read)());
        }
        Ok(())
    }
}

/// A number an [`analog`] reader returns: any integer or float, or a `Result` of one (an
/// `Err` answers 500 `"read failed"`, so fallible ADC drivers fit without `unwrap`).
///
/// ```
/// use thinger_core::dsl::Reading;
/// use thinger_core::resource::Output;
/// let mut buf = [0u8; 4];
/// let mut out = Output::new(&mut buf);
/// assert!(512u16.write_to(&mut out).is_ok());
/// let failed: Result<u16, ()> = Err(());
/// assert_eq!(failed.write_to(&mut out).unwrap_err().code, 500);
/// ```
pub trait Reading {
    /// Writes the reading as the output.
    fn write_to(self, out: &mut Output<'_>) -> Result<(), HandlerError>;
}

macro_rules! reading {
    ($($t:ty),*) => {$(
        impl Reading for $t {
            fn write_to(self, out: &mut Output<'_>) -> Result<(), HandlerError> {
                out.set(&self)?;
                Ok(())
            }
        }
    )*};
}
reading!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);

impl<N: Reading, E> Reading for Result<N, E> {
    fn write_to(self, out: &mut Output<'_>) -> Result<(), HandlerError> {
        match self {
            Ok(n) => n.write_to(out),
            Err(_) => Err(HandlerError::new(500, "read failed")),
        }
    }
}

/// An output resource reporting an analog reading, made by [`analog`].
///
/// ```
/// use thinger_core::dsl::*;
/// assert_eq!(analog(|| 512u16).kind(), ResourceKind::Output);
/// ```
#[derive(Debug, Clone)]
pub struct Analog<F> {
    read: F,
}

/// An output resource for an analog input. Arduino:
/// `thing["light"] >> outputValue(analogRead(A0));`.
///
/// embedded-hal 1.0 has no ADC trait (each HAL has its own), so the reading comes from a
/// closure that returns a number or a `Result` of one (see [`Reading`]); a failed read is
/// answered with 500 `"read failed"`.
///
/// ```
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// struct Adc; // your HAL's ADC
/// impl Adc {
///     fn read(&mut self) -> Result<u16, ()> { Ok(700) }
/// }
///
/// let mut adc = Adc;
/// let mut light = analog(|| adc.read());
/// let (mut out, params) = ([0u8; 4], Params::new());
/// let mut call = Call::new(CallMode::Sample, Input::empty(), Output::new(&mut out), &params);
/// light.handle(&mut call).unwrap();
/// assert_eq!(call.into_output().finish(), Ok(3));
/// assert_eq!(&out[..3], &[0x1f, 0xbc, 0x05]); // 700
/// ```
pub fn analog<F, R>(read: F) -> Analog<F>
where
    F: FnMut() -> R,
    R: Reading,
{
    Analog { read }
}

impl<F, R> Resource for Analog<F>
where
    F: FnMut() -> R,
    R: Reading,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::Output
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if output_writes(call.mode()) {
            (self.read)().write_to(call.output())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Scalar;
    use crate::pson::PsonRef;
    use proptest::prelude::*;

    /// The `bool` rule of a float: `f != 0.0`, NaN refused.
    fn want(f: f64) -> Option<bool> {
        if f.is_nan() { None } else { Some(f != 0.0) }
    }

    /// Both widths on their own bits: the smallest and largest of each class, and NaNs with
    /// mantissa bits in the f64's low word only.
    #[test]
    fn bool_of_floats_at_the_class_edges() {
        let f64_bits = [
            0,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0x7fef_ffff_ffff_ffff,
            0x7ff0_0000_0000_0000,
            0x7ff0_0000_0000_0001,
            0x7ff0_0000_8000_0000,
            0x7ff0_0001_0000_0000,
            0x7ff8_0000_0000_0000,
            0x7fff_ffff_ffff_ffff,
        ];
        for bits in f64_bits {
            for f in [f64::from_bits(bits), -f64::from_bits(bits)] {
                assert_eq!(bool::from_pson(&PsonRef::F64(f)), want(f), "{:#x}", f.to_bits());
            }
        }
        for bits in [0u32, 1, 0x007f_ffff, 0x0080_0000, 0x7f7f_ffff, 0x7f80_0000, 0x7f80_0001, 0x7fc0_0000, 0x7fff_ffff]
        {
            for f in [f32::from_bits(bits), -f32::from_bits(bits)] {
                assert_eq!(bool::from_pson(&PsonRef::F32(f)), want(f64::from(f)), "{:#x}", f.to_bits());
            }
        }
    }

    proptest! {
        #[test]
        fn bool_of_random_floats(bits in any::<u64>(), bits32 in any::<u32>()) {
            let f = f64::from_bits(bits);
            prop_assert_eq!(bool::from_pson(&PsonRef::F64(f)), want(f));
            let g = f32::from_bits(bits32);
            prop_assert_eq!(bool::from_pson(&PsonRef::F32(g)), want(f64::from(g)));
        }
    }
}
