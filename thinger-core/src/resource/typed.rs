//! Typed handlers over serde types: `input(|led: Led| …)`, `output(|| Reading { … })`,
//! `input_output(|sum: Sum| Total { … })`.
//!
//! Inputs are deserialized from the PSON the server sent ([`Input::deserialize`]); a value
//! that does not fit the type is answered with 400 before the closure runs. Outputs are
//! serialized straight into the transmit buffer ([`Output::serialize`]). For DESCRIBE the
//! sample input is the type's zero value ([`write_sample`], [`zero_value`]), so a resource
//! taking `{a: i32, b: i32}` describes its input as `{a: 0, b: 0}` like the official
//! clients do.

use core::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Call, CallMode, HandlerError, Input, IntoHandlerResult, Resource, ResourceKind, write_sample, zero_value};

/// Deserializes an input; any failure is the client's fault (400).
fn decode<T: DeserializeOwned>(input: Input<'_>) -> Result<T, HandlerError> {
    input.deserialize().map_err(|_| HandlerError::bad_input())
}

/// The value an input+output handler computes from: the input, or the zero value when the
/// call brings none (stream samples, describe, a RUN without payload).
fn io_input<I: DeserializeOwned>(call: &Call<'_>) -> Result<I, HandlerError> {
    let input = call.input();
    if call.mode() == CallMode::Run && !input.is_empty() {
        decode(input)
    } else {
        zero_value().map_err(|_| HandlerError::new(500, "no zero value for the input type"))
    }
}

/// A typed input resource, made by [`input`].
///
/// It keeps the last value its closure accepted and reports it as the resource's state.
///
/// ```
/// use thinger_core::resource::{input, Resource, ResourceKind};
/// let led = input(|on: bool| println!("led {on}"));
/// assert_eq!(led.kind(), ResourceKind::Input);
/// assert_eq!(led.state(), None);
/// ```
#[derive(Debug, Clone)]
pub struct SerdeInput<T, F> {
    f: F,
    state: Option<T>,
}

/// An input resource for a serde type: `f` gets every non-empty input, deserialized into
/// `T`. Arduino: `thing["cfg"] << [](pson& in){ … };`.
///
/// * The closure returns `()` or `Result<(), E>` (see [`IntoHandlerResult`]); an input that
///   does not deserialize into `T` is answered with 400 and the closure does not run.
/// * State: after the closure accepts a value, the handler keeps it (decoding the input a
///   second time, so `T` needs no `Clone`) and reports it for a RUN without payload, a
///   stream sample, an input echo and DESCRIBE. Before the first value it reports nothing,
///   or the value given to [`SerdeInput::initial`]; DESCRIBE then shows the zero value
///   of `T` ([`write_sample`]). That is why `T` must also be `Serialize`; for a state kept
///   elsewhere, use a [`handler`](super::handler) over the whole call.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use thinger_core::resource::{input, Call, CallMode, Input, Output, Params, Resource};
///
/// #[derive(Serialize, Deserialize)]
/// struct Led { on: bool }
///
/// let mut led = input(|led: Led| println!("led {}", led.on));
/// let (mut out, params) = ([0u8; 8], Params::new());
/// let bytes = [0xc1, 0x82, b'o', b'n', 0x61]; // {on: true}
/// let mut call = Call::new(CallMode::Run, Input::from_pson(&bytes).unwrap(), Output::new(&mut out), &params);
/// led.handle(&mut call).unwrap();
/// let n = call.into_output().finish().unwrap();
/// assert_eq!(&out[..n], &bytes); // the state, {on: true}
/// assert!(led.state().unwrap().on);
/// ```
pub fn input<T, F, R>(f: F) -> SerdeInput<T, F>
where
    T: DeserializeOwned + Serialize,
    F: FnMut(T) -> R,
    R: IntoHandlerResult,
{
    SerdeInput { f, state: None }
}

impl<T, F> SerdeInput<T, F> {
    /// Starts with `value` as the reported state (the closure is not called).
    ///
    /// ```
    /// use thinger_core::resource::input;
    /// let speed = input(|_speed: u8| ()).initial(5);
    /// assert_eq!(speed.state(), Some(&5));
    /// ```
    pub fn initial(mut self, value: T) -> Self {
        self.state = Some(value);
        self
    }

    /// The last value the closure accepted (or the initial one).
    ///
    /// ```
    /// use thinger_core::resource::input;
    /// assert_eq!(input(|_on: bool| ()).state(), None);
    /// ```
    pub fn state(&self) -> Option<&T> {
        self.state.as_ref()
    }
}

impl<T, F, R> Resource for SerdeInput<T, F>
where
    T: DeserializeOwned + Serialize,
    F: FnMut(T) -> R,
    R: IntoHandlerResult,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::Input
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let input = call.input();
        match call.mode() {
            CallMode::Run if !input.is_empty() => {
                (self.f)(decode(input)?).into_handler_result()?;
                self.state = Some(decode(input)?);
            }
            CallMode::DescribeOutput => return Ok(()),
            CallMode::DescribeInput if self.state.is_none() => {
                write_sample::<T>(call.output())?;
                return Ok(());
            }
            CallMode::Run | CallMode::Sample | CallMode::DescribeInput => {}
        }
        if let Some(state) = &self.state {
            call.output().serialize(state)?;
        }
        Ok(())
    }
}

/// A typed output resource, made by [`output`].
///
/// ```
/// use thinger_core::resource::{output, Resource, ResourceKind};
/// assert_eq!(output(|| 21.5f32).kind(), ResourceKind::Output);
/// ```
#[derive(Debug, Clone)]
pub struct SerdeOutput<F> {
    f: F,
}

/// An output resource for a serde type: the value `f` returns, serialized into the reply.
/// Arduino: `thing["weather"] >> [](pson& out){ … };`.
///
/// Called for RUN, stream samples and DESCRIBE (so it should only read). For a closure that
/// can fail, see [`try_output`].
///
/// ```
/// use serde::Serialize;
/// use thinger_core::resource::{output, Call, CallMode, Input, Output, Params, Resource};
///
/// #[derive(Serialize)]
/// struct Weather { t: f32, h: u8 }
///
/// let mut weather = output(|| Weather { t: 21.5, h: 60 });
/// let (mut out, params) = ([0u8; 16], Params::new());
/// let mut call = Call::new(CallMode::Sample, Input::empty(), Output::new(&mut out), &params);
/// weather.handle(&mut call).unwrap();
/// let n = call.into_output().finish().unwrap();
/// let value = thinger_core::pson::PsonRef::decode(&out[..n]).unwrap();
/// assert_eq!(value.get("h").and_then(|h| h.as_u64()), Some(60));
/// ```
pub fn output<F, T>(f: F) -> SerdeOutput<F>
where
    F: FnMut() -> T,
    T: Serialize,
{
    SerdeOutput { f }
}

impl<F, T> Resource for SerdeOutput<F>
where
    F: FnMut() -> T,
    T: Serialize,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::Output
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if call.mode() != CallMode::DescribeInput {
            call.output().serialize(&(self.f)())?;
        }
        Ok(())
    }
}

/// A fallible typed output resource, made by [`try_output`].
///
/// ```
/// use thinger_core::resource::{try_output, HandlerError, Resource, ResourceKind};
/// let r = try_output(|| Ok::<_, HandlerError>(1u8));
/// assert_eq!(r.kind(), ResourceKind::Output);
/// ```
#[derive(Debug, Clone)]
pub struct TryOutput<F> {
    f: F,
}

/// [`output`] for a closure that can fail: `Ok(value)` is serialized, `Err(e)` answers
/// with the [`HandlerError`] it converts into.
///
/// ```
/// use thinger_core::resource::{try_output, Call, CallMode, HandlerError, Input, Output, Params, Resource};
///
/// let mut fail = try_output(|| -> Result<u8, HandlerError> { Err(HandlerError::new(418, "teapot")) });
/// let (mut out, params) = ([0u8; 8], Params::new());
/// let mut call = Call::new(CallMode::Run, Input::empty(), Output::new(&mut out), &params);
/// assert_eq!(fail.handle(&mut call), Err(HandlerError::new(418, "teapot")));
/// ```
pub fn try_output<F, T, E>(f: F) -> TryOutput<F>
where
    F: FnMut() -> Result<T, E>,
    T: Serialize,
    E: Into<HandlerError>,
{
    TryOutput { f }
}

impl<F, T, E> Resource for TryOutput<F>
where
    F: FnMut() -> Result<T, E>,
    T: Serialize,
    E: Into<HandlerError>,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::Output
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if call.mode() != CallMode::DescribeInput {
            let value = (self.f)().map_err(Into::into)?;
            call.output().serialize(&value)?;
        }
        Ok(())
    }
}

/// A typed input+output resource, made by [`input_output`].
///
/// ```
/// use thinger_core::resource::{input_output, Resource, ResourceKind};
/// assert_eq!(input_output(|x: i32| x * 2).kind(), ResourceKind::InputOutput);
/// ```
pub struct SerdeInputOutput<I, F> {
    f: F,
    input: PhantomData<fn(I)>,
}

impl<I, F> core::fmt::Debug for SerdeInputOutput<I, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SerdeInputOutput").finish_non_exhaustive()
    }
}

/// An input+output resource for serde types: the input is deserialized into `I` and the
/// value `f` returns is serialized as the output. Arduino:
/// `thing["sum"] = [](pson& in, pson& out){ … };`.
///
/// * RUN with a payload: `f(input)`; an input that does not fit `I` is answered with 400. A
///   RUN without payload and stream samples compute from the zero value of `I`, as the
///   Arduino `pson` reads missing fields as zero.
/// * DESCRIBE: the input sample is the zero value of `I` ([`write_sample`]); the output
///   sample is `f` applied to it, so `f` should only compute.
///
/// Partial inputs (`{a: 2}` for `{a, b}`) are refused unless the type allows them
/// (`#[serde(default)]`). For a closure that can fail, see [`try_input_output`].
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use thinger_core::resource::{input_output, Call, CallMode, Input, Output, Params, Resource};
///
/// #[derive(Deserialize)]
/// struct Sum { a: i32, b: i32 }
/// #[derive(Serialize)]
/// struct Total { sum: i32 }
///
/// let mut sum = input_output(|v: Sum| Total { sum: v.a + v.b });
/// let (mut out, params) = ([0u8; 16], Params::new());
///
/// // DESCRIBE "sum": in {a: 0, b: 0}, out {sum: 0}.
/// let mut call = Call::new(CallMode::DescribeInput, Input::empty(), Output::new(&mut out), &params);
/// sum.handle(&mut call).unwrap();
/// let n = call.into_output().finish().unwrap();
/// assert_eq!(&out[..n], &[0xc2, 0x81, b'a', 0x00, 0x81, b'b', 0x00]);
///
/// let mut call = Call::new(CallMode::DescribeOutput, Input::empty(), Output::new(&mut out), &params);
/// sum.handle(&mut call).unwrap();
/// let n = call.into_output().finish().unwrap();
/// assert_eq!(&out[..n], &[0xc1, 0x83, b's', b'u', b'm', 0x00]);
/// ```
pub fn input_output<I, F, O>(f: F) -> SerdeInputOutput<I, F>
where
    I: DeserializeOwned,
    F: FnMut(I) -> O,
    O: Serialize,
{
    SerdeInputOutput { f, input: PhantomData }
}

impl<I, F, O> Resource for SerdeInputOutput<I, F>
where
    I: DeserializeOwned,
    F: FnMut(I) -> O,
    O: Serialize,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::InputOutput
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if call.mode() == CallMode::DescribeInput {
            write_sample::<I>(call.output())?;
            return Ok(());
        }
        let output = (self.f)(io_input(call)?);
        call.output().serialize(&output)?;
        Ok(())
    }
}

/// A fallible typed input+output resource, made by [`try_input_output`].
///
/// ```
/// use thinger_core::resource::{try_input_output, HandlerError, Resource, ResourceKind};
/// let half = try_input_output(|x: u32| if x.is_multiple_of(2) { Ok(x / 2) } else { Err(HandlerError::bad_input()) });
/// assert_eq!(half.kind(), ResourceKind::InputOutput);
/// ```
pub struct TryInputOutput<I, F> {
    f: F,
    input: PhantomData<fn(I)>,
}

impl<I, F> core::fmt::Debug for TryInputOutput<I, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TryInputOutput").finish_non_exhaustive()
    }
}

/// [`input_output`] for a closure that can fail: `Ok(value)` is serialized, `Err(e)`
/// answers with the [`HandlerError`] it converts into (also in describe mode).
///
/// ```
/// use thinger_core::resource::{try_input_output, Call, CallMode, HandlerError, Input, Output, Params, Resource};
///
/// let mut half = try_input_output(|x: u32| if x.is_multiple_of(2) { Ok(x / 2) } else { Err(HandlerError::bad_input()) });
/// let (mut out, params) = ([0u8; 8], Params::new());
/// let mut call = Call::new(CallMode::Run, Input::from_pson(&[0x03]).unwrap(), Output::new(&mut out), &params);
/// assert_eq!(half.handle(&mut call).unwrap_err().code, 400);
/// let mut call = Call::new(CallMode::Run, Input::from_pson(&[0x04]).unwrap(), Output::new(&mut out), &params);
/// half.handle(&mut call).unwrap();
/// assert_eq!(call.into_output().finish(), Ok(1));
/// assert_eq!(out[0], 0x02);
/// ```
pub fn try_input_output<I, F, O, E>(f: F) -> TryInputOutput<I, F>
where
    I: DeserializeOwned,
    F: FnMut(I) -> Result<O, E>,
    O: Serialize,
    E: Into<HandlerError>,
{
    TryInputOutput { f, input: PhantomData }
}

impl<I, F, O, E> Resource for TryInputOutput<I, F>
where
    I: DeserializeOwned,
    F: FnMut(I) -> Result<O, E>,
    O: Serialize,
    E: Into<HandlerError>,
{
    fn kind(&self) -> ResourceKind {
        ResourceKind::InputOutput
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if call.mode() == CallMode::DescribeInput {
            write_sample::<I>(call.output())?;
            return Ok(());
        }
        let output = (self.f)(io_input(call)?).map_err(Into::into)?;
        call.output().serialize(&output)?;
        Ok(())
    }
}
