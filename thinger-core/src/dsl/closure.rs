//! Closures for the general case, without serde.

use super::{IntoHandlerResult, input_to_apply, output_writes};
use crate::resource::{Call, CallMode, HandlerError, Input, Output, Resource, ResourceKind};

/// A run resource (no input, no output), made by [`run`].
///
/// ```
/// use thinger_core::dsl::*;
/// assert_eq!(run(|| ()).kind(), ResourceKind::Run);
/// ```
#[derive(Debug, Clone)]
pub struct RunFn<F> {
    f: F,
}

/// A run resource: `f` runs on every RUN request (never for DESCRIBE). Arduino:
/// `thing["reboot"] = [](){ … };`.
///
/// The closure returns `()` or `Result<(), E>` with `E` converting into a [`HandlerError`]
/// (see [`IntoHandlerResult`]); an error is answered with its code and message.
///
/// ```
/// use core::cell::Cell;
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let reboots = Cell::new(0);
/// let mut reboot = run(|| reboots.set(reboots.get() + 1));
/// let (mut out, params) = ([0u8; 4], Params::new());
///
/// let mut call = Call::new(CallMode::DescribeOutput, Input::empty(), Output::new(&mut out), &params);
/// reboot.handle(&mut call).unwrap();
/// assert_eq!(reboots.get(), 0); // no side effects while describing
///
/// let mut call = Call::new(CallMode::Run, Input::empty(), Output::new(&mut out), &params);
/// reboot.handle(&mut call).unwrap();
/// assert_eq!(reboots.get(), 1);
/// assert_eq!(call.into_output().finish(), Ok(0)); // nothing to send back
/// ```
pub fn run<F, R>(f: F) -> RunFn<F>
where
    F: FnMut() -> R,
    R: IntoHandlerResult,
{
    RunFn { f }
}

impl<F, R> Resource for RunFn<F>
where
    F: FnMut() -> R,
    R: IntoHandlerResult,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::Run
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if call.mode() == CallMode::Run { (self.f)().into_handler_result() } else { Ok(()) }
    }
}

/// An input resource from a closure over the raw [`Input`], made by [`input_fn`].
///
/// ```
/// use thinger_core::dsl::*;
/// assert_eq!(input_fn(|_input: Input| ()).kind(), ResourceKind::Input);
/// ```
#[derive(Debug, Clone)]
pub struct InputFn<F> {
    f: F,
}

/// An input resource: `f` gets every non-empty input of a RUN (or stream data). Arduino:
/// `thing["cfg"] << [](pson& in){ … };`.
///
/// The closure reads the [`Input`] with its typed getters and returns `()` or a
/// `Result` (see [`IntoHandlerResult`]). It is not called for an empty input or for
/// DESCRIBE, and it reports no state; bind the state with [`input_value`](super::input_value),
/// a typed [`input`](crate::resource::input) (feature `serde`) or a
/// [`handler`](crate::resource::handler) over the whole call when the server should see it.
///
/// ```
/// use core::cell::Cell;
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let level = Cell::new(0i64);
/// let mut dimmer = input_fn(|input: Input| match input.i64("level") {
///     Some(v @ 0..=100) => {
///         level.set(v);
///         Ok(())
///     }
///     _ => Err(HandlerError::bad_input()),
/// });
/// let bytes = [0xc1, 0x85, b'l', b'e', b'v', b'e', b'l', 0x1f, 0x46]; // {level: 70}
/// let (mut out, params) = ([0u8; 4], Params::new());
/// let mut call = Call::new(CallMode::Run, Input::from_pson(&bytes).unwrap(), Output::new(&mut out), &params);
/// dimmer.handle(&mut call).unwrap();
/// assert_eq!(level.get(), 70);
/// ```
pub fn input_fn<F, R>(f: F) -> InputFn<F>
where
    F: FnMut(Input<'_>) -> R,
    R: IntoHandlerResult,
{
    InputFn { f }
}

impl<F, R> Resource for InputFn<F>
where
    F: FnMut(Input<'_>) -> R,
    R: IntoHandlerResult,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::Input
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        match input_to_apply(call) {
            Some(input) => (self.f)(input).into_handler_result(),
            None => Ok(()),
        }
    }
}

/// An output resource from a closure that writes an [`Output`], made by [`output_fn`].
///
/// ```
/// use thinger_core::dsl::*;
/// assert_eq!(output_fn(|out: &mut Output| out.set(&1u8)).kind(), ResourceKind::Output);
/// ```
#[derive(Debug, Clone)]
pub struct OutputFn<F> {
    f: F,
}

/// An output resource: `f` writes the output on RUN, stream samples and DESCRIBE. Arduino:
/// `thing["weather"] >> [](pson& out){ out["t"] = …; out["h"] = …; };`.
///
/// Write a whole value with [`Output::set`] or a map field by field with
/// [`Output::field`]; the closure returns `()` or a `Result` (the `pson::Error` of the
/// writes works with `?`).
///
/// ```
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let mut weather = output_fn(|out: &mut Output| {
///     out.field("t", &21.5)?;
///     out.field("h", &60u8)
/// });
/// let (mut out, params) = ([0u8; 32], Params::new());
/// let mut call = Call::new(CallMode::Run, Input::empty(), Output::new(&mut out), &params);
/// weather.handle(&mut call).unwrap();
/// let n = call.into_output().finish().unwrap();
/// let value = thinger_core::pson::PsonRef::decode(&out[..n]).unwrap();
/// assert_eq!(value.get("t").and_then(|t| t.as_f64()), Some(21.5));
/// assert_eq!(value.get("h").and_then(|h| h.as_u64()), Some(60));
/// ```
pub fn output_fn<F, R>(f: F) -> OutputFn<F>
where
    F: FnMut(&mut Output<'_>) -> R,
    R: IntoHandlerResult,
{
    OutputFn { f }
}

impl<F, R> Resource for OutputFn<F>
where
    F: FnMut(&mut Output<'_>) -> R,
    R: IntoHandlerResult,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::Output
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if output_writes(call.mode()) { (self.f)(call.output()).into_handler_result() } else { Ok(()) }
    }
}

/// An input+output resource from a closure over the raw [`Input`] and the [`Output`], made
/// by [`input_output_fn`].
///
/// ```
/// use thinger_core::dsl::*;
/// let echo = input_output_fn(|input: Input, out: &mut Output| out.set(&input.value()));
/// assert_eq!(echo.kind(), ResourceKind::InputOutput);
/// ```
#[derive(Debug, Clone)]
pub struct InputOutputFn<F> {
    f: F,
}

/// An input+output resource: `f` gets the input and writes the output. Arduino:
/// `thing["sum"] = [](pson& in, pson& out){ out["sum"] = (int)in["a"] + (int)in["b"]; };`.
///
/// It runs for RUN and stream samples, and for [`CallMode::DescribeOutput`] with an empty
/// input (the closure should then only compute; missing fields read as defaults, like
/// the Arduino `pson`). [`CallMode::DescribeInput`] writes nothing: without a type there is
/// no sample input; the typed [`input_output`](crate::resource::input_output) (feature
/// `serde`) answers it with zero values.
///
/// ```
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let mut sum = input_output_fn(|input: Input, out: &mut Output| {
///     let a = input.i64("a").unwrap_or(0);
///     let b = input.i64("b").unwrap_or(0);
///     out.field("sum", &(a + b))
/// });
/// let bytes = [0xc2, 0x81, b'a', 0x02, 0x81, b'b', 0x03]; // {a: 2, b: 3}
/// let (mut out, params) = ([0u8; 32], Params::new());
/// let mut call = Call::new(CallMode::Run, Input::from_pson(&bytes).unwrap(), Output::new(&mut out), &params);
/// sum.handle(&mut call).unwrap();
/// let n = call.into_output().finish().unwrap();
/// assert_eq!(&out[..n], &[0xc1, 0x83, b's', b'u', b'm', 0x05]); // {sum: 5}
/// ```
pub fn input_output_fn<F, R>(f: F) -> InputOutputFn<F>
where
    F: FnMut(Input<'_>, &mut Output<'_>) -> R,
    R: IntoHandlerResult,
{
    InputOutputFn { f }
}

impl<F, R> Resource for InputOutputFn<F>
where
    F: FnMut(Input<'_>, &mut Output<'_>) -> R,
    R: IntoHandlerResult,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::InputOutput
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        match call.mode() {
            CallMode::DescribeInput => Ok(()),
            CallMode::Run => {
                let input = call.input();
                (self.f)(input, call.output()).into_handler_result()
            }
            CallMode::Sample | CallMode::DescribeOutput => {
                (self.f)(Input::empty(), call.output()).into_handler_result()
            }
        }
    }
}
