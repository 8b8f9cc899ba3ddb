//! Digital pins on embedded-hal 1.0 traits.

use core::cell::Cell;
use core::convert::Infallible;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin, StatefulOutputPin};

use super::value::Scalar;
use super::{input_reports_state, output_writes, value_to_apply};
use crate::resource::{Call, HandlerError, Resource, ResourceKind};

/// What a failing pin operation answers.
const PIN_ERROR: HandlerError = HandlerError::new(500, "pin error");

/// Reads the boolean an input resource was sent (see [`Scalar`] for `bool`): `Ok(None)`
/// without one; anything else is refused (`Err`), recorded on the output, which answers
/// 400 `"bad input"`.
fn bool_input(call: &mut Call<'_>) -> Result<Option<bool>, ()> {
    match value_to_apply(call).map(bool::from_pson) {
        None => Ok(None),
        Some(Some(on)) => Ok(Some(on)),
        Some(None) => {
            call.output().refuse_input();
            Err(())
        }
    }
}

/// Drives an output pin to a logical state (`inverted`: true → low).
fn drive<P: OutputPin>(pin: &mut P, on: bool, inverted: bool) -> Result<(), HandlerError> {
    let result = if on != inverted { pin.set_high() } else { pin.set_low() };
    result.map_err(|_| PIN_ERROR)
}

/// An input resource that drives a [`StatefulOutputPin`] and reports the pin's state, made by
/// [`digital_pin`] or [`inverted_digital_pin`].
///
/// The reported state is read back from the pin ([`StatefulOutputPin::is_set_high`]), so it
/// stays right when the application also drives the pin. For pins that cannot read their
/// state back, use [`digital_out`].
///
/// ```
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let pin = VirtualPin::new(false);
/// let mut led = digital_pin(&pin);
/// assert_eq!(led.kind(), ResourceKind::Input);
///
/// // RUN with `true`: the pin goes high and the new state is reported.
/// let (mut out, params) = ([0u8; 4], Params::new());
/// let input = Input::from_pson(&[0x61]).unwrap();
/// let mut call = Call::new(CallMode::Run, input, Output::new(&mut out), &params);
/// led.handle(&mut call).unwrap();
/// assert_eq!(call.into_output().finish(), Ok(1));
/// assert_eq!(out[0], 0x61);
/// assert!(pin.level());
/// ```
#[derive(Debug)]
pub struct DigitalPin<P> {
    pin: P,
    inverted: bool,
}

/// An input resource for a digital output pin: `true` drives it high, `false` low; with no
/// input it reports whether the pin is high. Arduino: `thing["led"] << digitalPin(LED_PIN);`.
///
/// Takes any [`StatefulOutputPin`] (including `&mut` pins, so the application can keep the
/// pin); the input may be a PSON bool or a number (non-zero is `true`), anything else is
/// answered with 400.
///
/// ```
/// use thinger_core::dsl::*;
///
/// let pin = VirtualPin::new(false);
/// let mut led = digital_pin(&pin);
/// let mut thing: Thing<'_, 4> = Thing::new();
/// thing["led"] <<= &mut led;
/// assert_eq!(thing.get("led").unwrap().kind(), Some(ResourceKind::Input));
/// ```
pub fn digital_pin<P: StatefulOutputPin>(pin: P) -> DigitalPin<P> {
    DigitalPin { pin, inverted: false }
}

/// [`digital_pin`] for active-low loads (relays, some LEDs): `true` drives the pin **low**, and
/// the state reported is `true` while the pin is low. Arduino: `invertedDigitalPin(PIN)`.
///
/// ```
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let pin = VirtualPin::new(true); // relay off
/// let mut relay = inverted_digital_pin(&pin);
/// let (mut out, params) = ([0u8; 4], Params::new());
/// let input = Input::from_pson(&[0x61]).unwrap(); // true: switch it on
/// let mut call = Call::new(CallMode::Run, input, Output::new(&mut out), &params);
/// relay.handle(&mut call).unwrap();
/// assert_eq!(call.into_output().finish(), Ok(1));
/// assert_eq!(out[0], 0x61); // reported on
/// assert!(!pin.level());    // driven low
/// ```
pub fn inverted_digital_pin<P: StatefulOutputPin>(pin: P) -> DigitalPin<P> {
    DigitalPin { pin, inverted: true }
}

impl<P> DigitalPin<P> {
    /// Whether `true` drives the pin low.
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// let pin = VirtualPin::new(false);
    /// assert!(inverted_digital_pin(&pin).is_inverted());
    /// assert!(!digital_pin(&pin).is_inverted());
    /// ```
    pub fn is_inverted(&self) -> bool {
        self.inverted
    }

    /// Gives the pin back.
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// let pin = VirtualPin::new(true);
    /// assert!(digital_pin(pin).into_inner().level());
    /// ```
    pub fn into_inner(self) -> P {
        self.pin
    }
}

impl<P: StatefulOutputPin> Resource for DigitalPin<P> {
    fn kind(&self) -> ResourceKind {
        ResourceKind::Input
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let Ok(input) = bool_input(call) else { return Ok(()) };
        if let Some(on) = input {
            drive(&mut self.pin, on, self.inverted)?;
        }
        if input_reports_state(call.mode()) {
            let high = self.pin.is_set_high().map_err(|_| PIN_ERROR)?;
            // A failed write is recorded, and `Output::finish` reports it.
            let _ = call.output().set(&(high != self.inverted));
        }
        Ok(())
    }
}

/// An input resource that drives an [`OutputPin`] and remembers the last state it wrote, made
/// by [`digital_out`], for pins that cannot read their state back.
///
/// ```
/// use thinger_core::dsl::*;
/// let pin = VirtualPin::new(false);
/// let mut led = digital_out(&pin);
/// assert_eq!(led.kind(), ResourceKind::Input);
/// assert!(!led.state());
/// ```
#[derive(Debug)]
pub struct DigitalOut<P> {
    pin: P,
    inverted: bool,
    state: bool,
}

/// An input resource for an [`OutputPin`] without read-back: like [`digital_pin`], but the
/// state it reports is the last one it wrote (`false` until the first write; set the pin
/// through [`DigitalOut::set`] to keep the two in step).
///
/// ```
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let pin = VirtualPin::new(false);
/// let mut led = digital_out(&pin);
/// led.set(true).unwrap(); // the application switches it on
///
/// // RUN with no input: report the state.
/// let (mut out, params) = ([0u8; 4], Params::new());
/// let mut call = Call::new(CallMode::Run, Input::empty(), Output::new(&mut out), &params);
/// led.handle(&mut call).unwrap();
/// assert_eq!(call.into_output().finish(), Ok(1));
/// assert_eq!(out[0], 0x61);
/// ```
pub fn digital_out<P: OutputPin>(pin: P) -> DigitalOut<P> {
    DigitalOut { pin, inverted: false, state: false }
}

impl<P: OutputPin> DigitalOut<P> {
    /// Makes `true` drive the pin low (active-low loads); the reported state stays logical.
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// let pin = VirtualPin::new(true);
    /// let mut relay = digital_out(&pin).inverted();
    /// relay.set(true).unwrap();
    /// assert!(!pin.level());
    /// assert!(relay.state());
    /// ```
    pub fn inverted(mut self) -> Self {
        self.inverted = true;
        self
    }

    /// Drives the pin to a logical state and remembers it.
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// let pin = VirtualPin::new(false);
    /// let mut led = digital_out(&pin);
    /// led.set(true).unwrap();
    /// assert!(pin.level() && led.state());
    /// ```
    pub fn set(&mut self, on: bool) -> Result<(), HandlerError> {
        drive(&mut self.pin, on, self.inverted)?;
        self.state = on;
        Ok(())
    }

    /// The last state written.
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// assert!(!digital_out(VirtualPin::new(true)).state());
    /// ```
    pub fn state(&self) -> bool {
        self.state
    }

    /// Gives the pin back.
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// let pin = digital_out(VirtualPin::new(true)).into_inner();
    /// assert!(pin.level());
    /// ```
    pub fn into_inner(self) -> P {
        self.pin
    }
}

impl<P: OutputPin> Resource for DigitalOut<P> {
    fn kind(&self) -> ResourceKind {
        ResourceKind::Input
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let Ok(input) = bool_input(call) else { return Ok(()) };
        if let Some(on) = input {
            self.set(on)?;
        }
        if input_reports_state(call.mode()) {
            // A failed write is recorded, and `Output::finish` reports it.
            let _ = call.output().set(&self.state);
        }
        Ok(())
    }
}

/// An output resource reading an [`InputPin`], made by [`input_pin`].
///
/// ```
/// use thinger_core::dsl::*;
/// let button = VirtualPin::new(false);
/// assert_eq!(input_pin(&button).kind(), ResourceKind::Output);
/// ```
#[derive(Debug)]
pub struct DigitalIn<P> {
    pin: P,
    inverted: bool,
}

/// An output resource that reports whether an [`InputPin`] is high. Arduino:
/// `thing["button"] >> digitalPin(BUTTON_PIN);`.
///
/// ```
/// use thinger_core::dsl::*;
/// use thinger_core::resource::Params;
///
/// let button = VirtualPin::new(true);
/// let mut pressed = input_pin(&button);
/// let (mut out, params) = ([0u8; 4], Params::new());
/// let mut call = Call::new(CallMode::Sample, Input::empty(), Output::new(&mut out), &params);
/// pressed.handle(&mut call).unwrap();
/// assert_eq!(call.into_output().finish(), Ok(1));
/// assert_eq!(out[0], 0x61); // true
/// ```
pub fn input_pin<P: InputPin>(pin: P) -> DigitalIn<P> {
    DigitalIn { pin, inverted: false }
}

impl<P: InputPin> DigitalIn<P> {
    /// Reports `true` while the pin is low (buttons with a pull-up).
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// let button = VirtualPin::new(true); // pulled up: not pressed
    /// let pressed = input_pin(&button).inverted();
    /// assert!(pressed.is_inverted());
    /// ```
    pub fn inverted(mut self) -> Self {
        self.inverted = true;
        self
    }

    /// Whether `true` is reported for a low pin.
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// assert!(!input_pin(VirtualPin::new(false)).is_inverted());
    /// ```
    pub fn is_inverted(&self) -> bool {
        self.inverted
    }

    /// Gives the pin back.
    ///
    /// ```
    /// use thinger_core::dsl::*;
    /// assert!(input_pin(VirtualPin::new(true)).into_inner().level());
    /// ```
    pub fn into_inner(self) -> P {
        self.pin
    }
}

impl<P: InputPin> Resource for DigitalIn<P> {
    fn kind(&self) -> ResourceKind {
        ResourceKind::Output
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if output_writes(call.mode()) {
            let high = self.pin.is_high().map_err(|_| PIN_ERROR)?;
            // A failed write is recorded, and `Output::finish` reports it.
            let _ = call.output().set(&(high != self.inverted));
        }
        Ok(())
    }
}

/// A digital pin that lives in memory: an [`OutputPin`], [`StatefulOutputPin`] and
/// [`InputPin`] that never fails, for host simulations (a "virtual LED" on a Linux gateway),
/// examples and tests.
///
/// The traits are implemented for `VirtualPin` and for `&VirtualPin`, so a handler can drive
/// a shared reference while the application reads [`VirtualPin::level`] or changes it with
/// [`VirtualPin::set_level`] (a simulated button).
///
/// ```
/// use embedded_hal::digital::{InputPin, OutputPin};
/// use thinger_core::dsl::VirtualPin;
///
/// let pin = VirtualPin::new(false);
/// let mut handle = &pin;
/// handle.set_high().unwrap();
/// assert!(pin.level());
/// pin.set_level(false);
/// assert_eq!(handle.is_high(), Ok(false));
/// ```
#[derive(Debug, Default)]
pub struct VirtualPin {
    level: Cell<bool>,
}

impl VirtualPin {
    /// A pin at the given level (`true` = high).
    ///
    /// ```
    /// assert!(thinger_core::dsl::VirtualPin::new(true).level());
    /// ```
    pub const fn new(high: bool) -> Self {
        VirtualPin { level: Cell::new(high) }
    }

    /// Whether the pin is high.
    ///
    /// ```
    /// assert!(!thinger_core::dsl::VirtualPin::new(false).level());
    /// ```
    pub fn level(&self) -> bool {
        self.level.get()
    }

    /// Sets the level (`true` = high), as a wire or a button would.
    ///
    /// ```
    /// let pin = thinger_core::dsl::VirtualPin::new(false);
    /// pin.set_level(true);
    /// assert!(pin.level());
    /// ```
    pub fn set_level(&self, high: bool) {
        self.level.set(high);
    }
}

impl ErrorType for VirtualPin {
    type Error = Infallible;
}

impl OutputPin for &VirtualPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.level.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.level.set(true);
        Ok(())
    }
}

impl StatefulOutputPin for &VirtualPin {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level.get())
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level.get())
    }
}

impl InputPin for &VirtualPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level.get())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level.get())
    }
}

impl OutputPin for VirtualPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.level.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.level.set(true);
        Ok(())
    }
}

impl StatefulOutputPin for VirtualPin {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level.get())
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level.get())
    }
}

impl InputPin for VirtualPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level.get())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level.get())
    }
}
