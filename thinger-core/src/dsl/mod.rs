//! The resource DSL: Arduino-style one-liners that bind pins, values and closures to
//! resource paths, with no heap.
//!
//! | Arduino (`ThingerWifi`) | thinger-rs |
//! |---|---|
//! | `thing["led"] << digitalPin(LED_PIN);` | `thing["led"] <<= &mut led;` with `let mut led = digital_pin(led_pin);` |
//! | `thing["relay"] << invertedDigitalPin(PIN);` | `thing["relay"] <<= &mut relay;` with `inverted_digital_pin(pin)` |
//! | `thing["button"] >> digitalPin(BUTTON);` | `thing["button"] >>= &mut button;` with `input_pin(pin)` |
//! | `thing["light"] >> outputValue(analogRead(A0));` | `analog(\|\| adc.read())` |
//! | `thing["millis"] >> outputValue(millis());` | `output_value(\|\| clock.millis())` |
//! | `thing["speed"] << inputValue(speed);` | `input_value(&speed)` with `let speed = Cell::new(0u8);` |
//! | `thing["reboot"] = [](){ … };` | `run(\|\| …)` |
//! | `thing["cfg"] << [](pson& in){ … };` | `input(\|cfg: Config\| …)` (serde) or `input_fn(\|input\| …)` |
//! | `thing["t"] >> [](pson& out){ … };` | `output(\|\| Reading { … })` (serde) or `output_fn(\|out\| …)` |
//! | `thing["sum"] = [](pson& in, pson& out){ … };` | `input_output(\|v: Sum\| Total { … })` (serde) or `input_output_fn` |
//!
//! # Why `<<=` and `&mut`
//!
//! Rust's `<<` takes its left operand by value, so `thing["led"] << x` cannot bind anything
//! to an indexed place. The compound operators `<<=` and `>>=` take `&mut self` through
//! `IndexMut` and read the same. Every handler here is a different type (a closure type,
//! a pin type), and a table without a heap cannot own values of many types; so without the
//! `alloc` feature [`Thing`] *borrows* its handlers: `let mut led = digital_pin(p);`
//! followed by `thing["led"] <<= &mut led;`. The handlers live where the caller puts them
//! (on the stack of `main`, or in a `static_cell` on firmware), the table is a fixed array
//! of `&mut dyn Resource` with its capacity as a const generic, and nothing is allocated.
//! With `alloc` the same operators also accept handlers by value and box them
//! (`thing["led"] <<= digital_pin(p);`); the borrowed form keeps compiling there, because
//! `&mut R` is itself a [`Resource`]. Code written in the borrowed form therefore builds
//! with and without `alloc`, which is why every example in this crate uses it.
//!
//! `=` cannot be overloaded in Rust: the Arduino `thing["reboot"] = …` becomes
//! `thing["reboot"] <<= &mut reboot;` (or [`Entry::set`](crate::resource::Entry::set)).
//! The operator is only notation: what a resource takes and gives comes from the handler's
//! [`ResourceKind`], so by convention `<<=` binds inputs and run resources and `>>=`
//! outputs and input+output resources.
//!
//! Registering more resources than the table holds panics at setup with a message naming
//! the path and the capacity (it never drops a resource silently); use
//! [`Thing::try_entry`] or [`Thing::add`] to get a [`CapacityError`](crate::resource::CapacityError)
//! instead.
//!
//! # How the handlers answer
//!
//! The session calls a handler with a [`CallMode`]:
//!
//! * input resources ([`digital_pin`], [`digital_out`], [`input_value`], typed `input`)
//!   apply a non-empty input on [`CallMode::Run`] and then always write their current
//!   state; with an empty input (a RUN without payload, a stream sample) or in
//!   [`CallMode::DescribeInput`] they only write the state, without side effects;
//! * output resources ([`input_pin`], [`analog`], [`output_value`], [`output_fn`], typed
//!   `output`) write their value on [`CallMode::Run`], [`CallMode::Sample`] and
//!   [`CallMode::DescribeOutput`];
//! * run resources ([`run`]) act on [`CallMode::Run`] only.
//!
//! Pin errors become [`HandlerError`] 500 (`"pin error"`), inputs of the wrong type 400.
//! The pin and value handlers return pin errors from [`Resource::handle`], and record a
//! refused input or a failed output write on the call's [`Output`] (less code in each
//! handler): [`Output::finish`] returns them, as the session calls it after every handler.
//!
//! ```
//! use core::cell::Cell;
//! use thinger_core::dsl::*;
//! use thinger_core::resource::Params;
//!
//! let led_pin = VirtualPin::new(false); // your HAL's output pin
//! let uptime = Cell::new(3809u64);      // stands in for a clock
//!
//! let mut led = digital_pin(&led_pin);
//! let mut millis = output_value(|| uptime.get());
//! let mut thing: Thing<'_, 4> = Thing::new();
//! thing["led"] <<= &mut led;
//! thing["millis"] >>= &mut millis;
//!
//! // What the session does with `RUN "led" true`: find the resource, call its handler.
//! let mut params = Params::new();
//! let index = thing.lookup("led", &mut params).unwrap();
//! let input = [0x61]; // PSON true
//! let mut out = [0u8; 8];
//! let mut call = Call::new(CallMode::Run, Input::from_pson(&input).unwrap(), Output::new(&mut out), &params);
//! thing.entry_mut(index).unwrap().resource().unwrap().handle(&mut call).unwrap();
//! let n = call.into_output().finish().unwrap();
//! assert_eq!(&out[..n], &[0x61]); // the new state, true
//! assert!(led_pin.level());
//! ```

mod closure;
mod pin;
mod value;

pub use closure::{InputFn, InputOutputFn, OutputFn, RunFn, input_fn, input_output_fn, output_fn, run};
pub use pin::{
    DigitalIn, DigitalOut, DigitalPin, VirtualPin, digital_out, digital_pin, input_pin, inverted_digital_pin,
};
pub use value::{Analog, InputValue, OutputValue, Reading, Scalar, analog, input_value, output_value};

pub use crate::resource::{
    Call, CallMode, HandlerError, Input, IntoHandlerResult, Output, Resource, ResourceKind, Thing, handler,
};
#[cfg(feature = "serde")]
pub use crate::resource::{input, input_output, output, try_input_output, try_output};

/// The input to apply: only a RUN (or stream data) with a payload changes anything.
pub(crate) fn input_to_apply<'c>(call: &Call<'c>) -> Option<Input<'c>> {
    let input = call.input();
    (call.mode() == CallMode::Run && !input.is_empty()).then_some(input)
}

/// The input value a RUN carries, borrowed from the call (`None` in the other modes).
pub(crate) fn value_to_apply<'a, 'c>(call: &'a Call<'c>) -> Option<&'a crate::pson::PsonRef<'c>> {
    if call.mode() == CallMode::Run { call.input_value() } else { None }
}

/// Whether an input resource reports its state in this mode (all but `DescribeOutput`).
pub(crate) fn input_reports_state(mode: CallMode) -> bool {
    mode != CallMode::DescribeOutput
}

/// Whether an output resource writes its value in this mode (all but `DescribeInput`).
pub(crate) fn output_writes(mode: CallMode) -> bool {
    mode != CallMode::DescribeInput
}
