//! The resource DSL: pins, values, closures, typed serde handlers and describe samples.

use std::cell::Cell;
use std::convert::Infallible;

use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin, StatefulOutputPin};
use serde::{Deserialize, Serialize};
use thinger_core::dsl::*;
use thinger_core::pson::{self, PsonRef, Value};
use thinger_core::resource::{Params, encode_sample, write_sample, zero_value};

// ---------------------------------------------------------------------------------------
// Fakes and helpers

/// A pin that records its level and counts writes.
#[derive(Default)]
struct FakePin {
    high: Cell<bool>,
    writes: Cell<u32>,
}

impl ErrorType for &FakePin {
    type Error = Infallible;
}

impl OutputPin for &FakePin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.high.set(false);
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.high.set(true);
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }
}

impl StatefulOutputPin for &FakePin {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.high.get())
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.high.get())
    }
}

impl InputPin for &FakePin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.high.get())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.high.get())
    }
}

/// A pin whose every operation fails.
struct BrokenPin;

#[derive(Debug)]
struct PinFault;

impl embedded_hal::digital::Error for PinFault {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl ErrorType for BrokenPin {
    type Error = PinFault;
}

impl OutputPin for BrokenPin {
    fn set_low(&mut self) -> Result<(), PinFault> {
        Err(PinFault)
    }
    fn set_high(&mut self) -> Result<(), PinFault> {
        Err(PinFault)
    }
}

impl StatefulOutputPin for BrokenPin {
    fn is_set_high(&mut self) -> Result<bool, PinFault> {
        Err(PinFault)
    }
    fn is_set_low(&mut self) -> Result<bool, PinFault> {
        Err(PinFault)
    }
}

impl InputPin for BrokenPin {
    fn is_high(&mut self) -> Result<bool, PinFault> {
        Err(PinFault)
    }
    fn is_low(&mut self) -> Result<bool, PinFault> {
        Err(PinFault)
    }
}

const TRUE: &[u8] = &[0x61];
const FALSE: &[u8] = &[0x60];

/// Calls `resource` like the session would; returns the output bytes.
fn call_with(
    resource: &mut dyn Resource,
    mode: CallMode,
    input: &[u8],
    params: &Params<'_>,
) -> Result<Vec<u8>, HandlerError> {
    let input = if input.is_empty() { Input::empty() } else { Input::from_pson(input).unwrap() };
    let mut buf = [0u8; 256];
    let mut call = Call::new(mode, input, Output::new(&mut buf), params);
    resource.handle(&mut call)?;
    let n = call.into_output().finish()?;
    Ok(buf[..n].to_vec())
}

fn call(resource: &mut dyn Resource, mode: CallMode, input: &[u8]) -> Result<Vec<u8>, HandlerError> {
    call_with(resource, mode, input, &Params::new())
}

/// Calls the resource serving `path` in `thing`, with its path captures.
fn call_path<const N: usize>(
    thing: &mut Thing<'_, N>,
    mode: CallMode,
    path: &str,
    input: &[u8],
) -> Option<Result<Vec<u8>, HandlerError>> {
    let mut params = Params::new();
    let index = thing.lookup(path, &mut params)?;
    let resource = thing.entry_mut(index)?.resource()?;
    Some(call_with(resource, mode, input, &params))
}

fn encode<T: pson::EncodePson + ?Sized>(value: &T) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = pson::encode_to_slice(value, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn decode(bytes: &[u8]) -> Value {
    Value::decode(bytes).unwrap()
}

// ---------------------------------------------------------------------------------------
// Pins

#[test]
fn digital_pin_switches_and_reports() {
    let pin = FakePin::default();
    let mut led = digital_pin(&pin);
    assert_eq!(led.kind(), ResourceKind::Input);

    assert_eq!(call(&mut led, CallMode::Run, TRUE).unwrap(), TRUE);
    assert!(pin.high.get());
    assert_eq!(call(&mut led, CallMode::Run, FALSE).unwrap(), FALSE);
    assert!(!pin.high.get());

    // Empty input (RUN without payload, stream sample): report only.
    pin.high.set(true); // the application drove it
    let writes = pin.writes.get();
    assert_eq!(call(&mut led, CallMode::Run, &[]).unwrap(), TRUE);
    assert_eq!(call(&mut led, CallMode::Sample, &[]).unwrap(), TRUE);
    assert_eq!(pin.writes.get(), writes);
}

#[test]
fn digital_pin_accepts_numbers_and_refuses_other_types() {
    let pin = FakePin::default();
    let mut led = digital_pin(&pin);
    assert_eq!(call(&mut led, CallMode::Run, &[0x01]).unwrap(), TRUE);
    assert!(pin.high.get());
    assert_eq!(call(&mut led, CallMode::Run, &[0x00]).unwrap(), FALSE);
    assert!(!pin.high.get());
    let writes = pin.writes.get();
    for bad in [&encode("on")[..], &[0x62], &encode(&pson::Map(&[("on", true)]))[..], &encode(&f64::NAN)[..]] {
        assert_eq!(call(&mut led, CallMode::Run, bad), Err(HandlerError::bad_input()));
    }
    assert_eq!(pin.writes.get(), writes);
}

#[test]
fn describe_has_no_side_effects() {
    let pin = FakePin::default();
    let mut led = digital_pin(&pin);
    // Even if a describe call carried an input, the pin is not driven.
    assert_eq!(call(&mut led, CallMode::DescribeInput, TRUE).unwrap(), FALSE);
    assert_eq!(call(&mut led, CallMode::DescribeOutput, TRUE).unwrap(), b"");
    assert_eq!(call(&mut led, CallMode::Sample, TRUE).unwrap(), FALSE);
    assert_eq!(pin.writes.get(), 0);

    let speed = Cell::new(3u8);
    let mut input = input_value(&speed);
    assert_eq!(call(&mut input, CallMode::DescribeInput, &[0x09]).unwrap(), [0x03]);
    assert_eq!(speed.get(), 3);

    let runs = Cell::new(0);
    let mut command = run(|| runs.set(runs.get() + 1));
    for mode in [CallMode::Sample, CallMode::DescribeInput, CallMode::DescribeOutput] {
        assert_eq!(call(&mut command, mode, &[]).unwrap(), b"");
    }
    assert_eq!(runs.get(), 0);
    assert_eq!(call(&mut command, CallMode::Run, &[]).unwrap(), b"");
    assert_eq!(runs.get(), 1);
}

#[test]
fn inverted_pin_drives_low() {
    let pin = FakePin::default();
    pin.high.set(true);
    let mut relay = inverted_digital_pin(&pin);
    assert!(relay.is_inverted());
    // High pin: an active-low relay that is off.
    assert_eq!(call(&mut relay, CallMode::Run, &[]).unwrap(), FALSE);
    assert_eq!(call(&mut relay, CallMode::Run, TRUE).unwrap(), TRUE);
    assert!(!pin.high.get());
    assert_eq!(call(&mut relay, CallMode::Run, FALSE).unwrap(), FALSE);
    assert!(pin.high.get());
}

#[test]
fn digital_out_remembers_what_it_wrote() {
    let pin = FakePin::default();
    pin.high.set(true); // its real level is not read back
    let mut led = digital_out(&pin);
    assert_eq!(call(&mut led, CallMode::Run, &[]).unwrap(), FALSE);
    assert_eq!(call(&mut led, CallMode::Run, TRUE).unwrap(), TRUE);
    assert!(pin.high.get());
    assert!(led.state());
    led.set(false).unwrap();
    assert!(!pin.high.get());
    assert_eq!(call(&mut led, CallMode::Sample, &[]).unwrap(), FALSE);

    let mut relay = digital_out(&pin).inverted();
    assert_eq!(call(&mut relay, CallMode::Run, TRUE).unwrap(), TRUE);
    assert!(!pin.high.get());
    // A refused input leaves the pin and the state alone.
    assert_eq!(call(&mut relay, CallMode::Run, &encode("on")), Err(HandlerError::bad_input()));
    assert!(!pin.high.get());
    assert!(relay.state());
}

#[test]
fn input_pin_reports_level() {
    let pin = FakePin::default();
    let mut button = input_pin(&pin);
    assert_eq!(button.kind(), ResourceKind::Output);
    assert_eq!(call(&mut button, CallMode::Run, &[]).unwrap(), FALSE);
    pin.high.set(true);
    assert_eq!(call(&mut button, CallMode::Sample, &[]).unwrap(), TRUE);
    assert_eq!(call(&mut button, CallMode::DescribeOutput, &[]).unwrap(), TRUE);
    assert_eq!(call(&mut button, CallMode::DescribeInput, &[]).unwrap(), b"");

    let mut pressed = input_pin(&pin).inverted();
    assert_eq!(call(&mut pressed, CallMode::Run, &[]).unwrap(), FALSE);
}

#[test]
fn pin_errors_are_500() {
    let pin_error = Err(HandlerError::new(500, "pin error"));
    assert_eq!(call(&mut digital_pin(BrokenPin), CallMode::Run, TRUE), pin_error);
    assert_eq!(call(&mut digital_pin(BrokenPin), CallMode::Run, &[]), pin_error);
    assert_eq!(call(&mut digital_out(BrokenPin), CallMode::Run, TRUE), pin_error);
    assert_eq!(call(&mut input_pin(BrokenPin), CallMode::Run, &[]), pin_error);
    // A failed write leaves the remembered state alone.
    let mut out = digital_out(BrokenPin);
    assert!(out.set(true).is_err());
    assert!(!out.state());
}

#[test]
fn virtual_pin_is_all_three_pin_kinds() {
    let pin = VirtualPin::new(false);
    let mut led = digital_pin(&pin);
    assert_eq!(call(&mut led, CallMode::Run, TRUE).unwrap(), TRUE);
    assert!(pin.level());
    let mut sense = input_pin(&pin);
    assert_eq!(call(&mut sense, CallMode::Run, &[]).unwrap(), TRUE);
    pin.set_level(false);
    assert_eq!(call(&mut sense, CallMode::Run, &[]).unwrap(), FALSE);
    // Owned, too.
    let mut owned = digital_pin(VirtualPin::new(false));
    assert_eq!(call(&mut owned, CallMode::Run, TRUE).unwrap(), TRUE);
    assert!(owned.into_inner().level());
}

// ---------------------------------------------------------------------------------------
// Values

#[test]
fn output_value_reevaluates() {
    let clock = Cell::new(3809u64);
    let mut millis = output_value(|| clock.get());
    assert_eq!(millis.kind(), ResourceKind::Output);
    assert_eq!(call(&mut millis, CallMode::Run, &[]).unwrap(), [0x1f, 0xe1, 0x1d]);
    clock.set(7420);
    assert_eq!(decode(&call(&mut millis, CallMode::Sample, &[]).unwrap()), 7420);
    assert_eq!(call(&mut millis, CallMode::DescribeInput, &[]).unwrap(), b"");

    let mut name = output_value(|| "kitchen");
    assert_eq!(decode(&call(&mut name, CallMode::Run, &[]).unwrap()), "kitchen");
    let mut missing = output_value(|| None::<u8>);
    assert_eq!(call(&mut missing, CallMode::Run, &[]).unwrap(), [0x62]);
}

#[test]
fn output_too_large_is_413() {
    let long = "x".repeat(300);
    let mut text = output_value(|| long.as_str());
    assert_eq!(call(&mut text, CallMode::Run, &[]).unwrap_err().code, 413);
}

#[test]
fn analog_readings() {
    let mut light = analog(|| 512u16);
    assert_eq!(decode(&call(&mut light, CallMode::Run, &[]).unwrap()), 512);
    let mut volts = analog(|| Ok::<f32, ()>(3.25));
    assert_eq!(decode(&call(&mut volts, CallMode::Run, &[]).unwrap()), Value::F32(3.25));
    let mut broken = analog(|| Err::<u16, &str>("adc busy"));
    assert_eq!(call(&mut broken, CallMode::Run, &[]), Err(HandlerError::new(500, "read failed")));
}

#[test]
fn input_value_with_cells() {
    let speed = Cell::new(0u8);
    let mut speed_input = input_value(&speed);
    assert_eq!(call(&mut speed_input, CallMode::Run, &encode(&200u8)).unwrap(), encode(&200u8));
    assert_eq!(speed.get(), 200);
    assert_eq!(call(&mut speed_input, CallMode::Run, &encode(&300u16)), Err(HandlerError::bad_input()));
    assert_eq!(call(&mut speed_input, CallMode::Run, &encode(&-1i8)), Err(HandlerError::bad_input()));
    assert_eq!(call(&mut speed_input, CallMode::Run, &encode(&1.5f32)), Err(HandlerError::bad_input()));
    assert_eq!(speed.get(), 200);
    speed.set(7);
    assert_eq!(call(&mut speed_input, CallMode::Run, &[]).unwrap(), [0x07]);

    let offset = Cell::new(0i32);
    let mut offset_input = input_value(&offset);
    call(&mut offset_input, CallMode::Run, &encode(&-40i32)).unwrap();
    assert_eq!(offset.get(), -40);
    call(&mut offset_input, CallMode::Run, &encode(&12.0f64)).unwrap(); // a whole float
    assert_eq!(offset.get(), 12);

    let gain = Cell::new(1.0f32);
    let mut gain_input = input_value(&gain);
    assert_eq!(call(&mut gain_input, CallMode::Run, &encode(&0.5f32)).unwrap(), encode(&0.5f32));
    assert_eq!(gain.get(), 0.5);
    call(&mut gain_input, CallMode::Run, &encode(&3u8)).unwrap();
    assert_eq!(gain.get(), 3.0);

    let on = Cell::new(false);
    let mut on_input = input_value(&on);
    assert_eq!(call(&mut on_input, CallMode::Run, TRUE).unwrap(), TRUE);
    assert!(on.get());
    assert_eq!(call(&mut on_input, CallMode::Run, &encode("yes")), Err(HandlerError::bad_input()));

    let big = Cell::new(0u64);
    let mut big_input = input_value(&big);
    call(&mut big_input, CallMode::Run, &encode(&u64::MAX)).unwrap();
    assert_eq!(big.get(), u64::MAX);
}

// ---------------------------------------------------------------------------------------
// Closures

#[test]
fn closure_constructors() {
    let applied = Cell::new(0i64);
    let mut level = input_fn(|input: Input| match input.i64("level") {
        Some(v) => {
            applied.set(v);
            Ok(())
        }
        None => Err(HandlerError::bad_input()),
    });
    assert_eq!(level.kind(), ResourceKind::Input);
    let bytes = encode(&pson::Map(&[("level", 70u8)]));
    assert_eq!(call(&mut level, CallMode::Run, &bytes).unwrap(), b"");
    assert_eq!(applied.get(), 70);
    assert_eq!(call(&mut level, CallMode::Run, TRUE), Err(HandlerError::bad_input()));
    // Not called without input or for describe.
    applied.set(0);
    for mode in [CallMode::Run, CallMode::Sample, CallMode::DescribeInput] {
        call(&mut level, mode, &[]).unwrap();
    }
    assert_eq!(applied.get(), 0);

    let mut weather = output_fn(|out: &mut Output| {
        out.field("t", &21.5)?;
        out.field("h", &60u8)
    });
    let value = decode(&call(&mut weather, CallMode::Sample, &[]).unwrap());
    assert_eq!(value, thinger_core::pson!({"t": 21.5f32, "h": 60}));
    assert_eq!(call(&mut weather, CallMode::DescribeInput, &[]).unwrap(), b"");

    let mut sum = input_output_fn(|input: Input, out: &mut Output| {
        let a = input.i64("a").unwrap_or(0);
        let b = input.i64("b").unwrap_or(0);
        out.field("sum", &(a + b))
    });
    let ab = encode(&pson::Map(&[("a", 2u8), ("b", 3)]));
    assert_eq!(call(&mut sum, CallMode::Run, &ab).unwrap(), [0xc1, 0x83, b's', b'u', b'm', 0x05]);
    assert_eq!(call(&mut sum, CallMode::DescribeOutput, &ab).unwrap(), [0xc1, 0x83, b's', b'u', b'm', 0x00]);
    assert_eq!(call(&mut sum, CallMode::DescribeInput, &[]).unwrap(), b"");

    let mut teapot = run(|| Err::<(), _>(HandlerError::new(418, "teapot")));
    assert_eq!(call(&mut teapot, CallMode::Run, &[]), Err(HandlerError::new(418, "teapot")));
}

// ---------------------------------------------------------------------------------------
// Typed serde handlers

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct Sum {
    a: i32,
    b: i32,
}

#[derive(Serialize)]
struct Total {
    sum: i32,
}

#[test]
fn typed_input_keeps_and_reports_state() {
    #[derive(Deserialize, Serialize, Debug, PartialEq)]
    struct Led {
        on: bool,
        level: u8,
    }
    let seen = Cell::new(0u8);
    let mut led = input(|led: Led| {
        if led.level > 100 {
            return Err(HandlerError::new(422, "level above 100"));
        }
        seen.set(led.level);
        Ok(())
    });
    assert_eq!(led.kind(), ResourceKind::Input);
    // Before any value: nothing to report, DESCRIBE shows zeros.
    assert_eq!(call(&mut led, CallMode::Run, &[]).unwrap(), b"");
    assert_eq!(
        decode(&call(&mut led, CallMode::DescribeInput, &[]).unwrap()),
        thinger_core::pson!({"on": false, "level": 0})
    );

    let on = thinger_core::pson!({"on": true, "level": 40}).encode_to_vec();
    assert_eq!(call(&mut led, CallMode::Run, &on).unwrap(), on);
    assert_eq!(seen.get(), 40);
    assert_eq!(led.state(), Some(&Led { on: true, level: 40 }));
    assert_eq!(call(&mut led, CallMode::Sample, &[]).unwrap(), on);
    assert_eq!(call(&mut led, CallMode::DescribeInput, &[]).unwrap(), on);
    assert_eq!(call(&mut led, CallMode::DescribeOutput, &[]).unwrap(), b"");

    // Refused by the closure or by serde: the state stays.
    let too_bright = thinger_core::pson!({"on": true, "level": 200}).encode_to_vec();
    assert_eq!(call(&mut led, CallMode::Run, &too_bright), Err(HandlerError::new(422, "level above 100")));
    assert_eq!(call(&mut led, CallMode::Run, &encode("on")), Err(HandlerError::bad_input()));
    assert_eq!(call(&mut led, CallMode::Run, &[]).unwrap(), on);

    let mut speed = input(|_: u8| ()).initial(5);
    assert_eq!(call(&mut speed, CallMode::Run, &[]).unwrap(), [0x05]);
    assert_eq!(call(&mut speed, CallMode::Run, &[0x09]).unwrap(), [0x09]);
}

#[test]
fn typed_output() {
    #[derive(Serialize)]
    struct Weather {
        t: f32,
        h: u8,
        label: &'static str,
    }
    let mut weather = output(|| Weather { t: 21.5, h: 60, label: "lab" });
    assert_eq!(weather.kind(), ResourceKind::Output);
    let value = decode(&call(&mut weather, CallMode::Run, &[]).unwrap());
    assert_eq!(value, thinger_core::pson!({"t": 21.5f32, "h": 60, "label": "lab"}));
    assert_eq!(call(&mut weather, CallMode::DescribeInput, &[]).unwrap(), b"");
    assert!(!call(&mut weather, CallMode::DescribeOutput, &[]).unwrap().is_empty());

    let mut fail = try_output(|| -> Result<u8, HandlerError> { Err(HandlerError::new(418, "teapot")) });
    assert_eq!(call(&mut fail, CallMode::Run, &[]), Err(HandlerError::new(418, "teapot")));
    let mut fine = try_output(|| Ok::<_, HandlerError>([1u8, 2]));
    assert_eq!(call(&mut fine, CallMode::Run, &[]).unwrap(), [0xe2, 0x01, 0x02]);
}

#[test]
fn typed_input_output_matches_the_observed_sum() {
    let mut sum = input_output(|v: Sum| Total { sum: v.a + v.b });
    assert_eq!(sum.kind(), ResourceKind::InputOutput);
    // Observed exchange #4: DESCRIBE "sum" → in {a:0, b:0}, out {sum:0}.
    assert_eq!(call(&mut sum, CallMode::DescribeInput, &[]).unwrap(), [0xc2, 0x81, 0x61, 0x00, 0x81, 0x62, 0x00]);
    assert_eq!(call(&mut sum, CallMode::DescribeOutput, &[]).unwrap(), [0xc1, 0x83, 0x73, 0x75, 0x6d, 0x00]);
    // Observed exchange #8: RUN "sum" {a:2, b:3} → {sum:5}.
    let input = [0xc2, 0x81, 0x61, 0x02, 0x81, 0x62, 0x03];
    assert_eq!(call(&mut sum, CallMode::Run, &input).unwrap(), [0xc1, 0x83, 0x73, 0x75, 0x6d, 0x05]);
    // No payload: computed from zeros; a wrong or partial payload: 400.
    assert_eq!(call(&mut sum, CallMode::Run, &[]).unwrap(), [0xc1, 0x83, 0x73, 0x75, 0x6d, 0x00]);
    assert_eq!(call(&mut sum, CallMode::Run, &[0xc1, 0x81, 0x61, 0x02]), Err(HandlerError::bad_input()));
    assert_eq!(call(&mut sum, CallMode::Run, TRUE), Err(HandlerError::bad_input()));

    let mut half =
        try_input_output(|x: u32| if x.is_multiple_of(2) { Ok(x / 2) } else { Err(HandlerError::new(422, "odd")) });
    assert_eq!(call(&mut half, CallMode::Run, &[0x08]).unwrap(), [0x04]);
    assert_eq!(call(&mut half, CallMode::Run, &[0x07]), Err(HandlerError::new(422, "odd")));
    assert_eq!(call(&mut half, CallMode::DescribeInput, &[]).unwrap(), [0x00]);
    assert_eq!(call(&mut half, CallMode::DescribeOutput, &[]).unwrap(), [0x00]);
}

// ---------------------------------------------------------------------------------------
// Describe samples

#[derive(Deserialize, Serialize, Debug, PartialEq)]
enum Mode {
    Eco,
    Boost(u8),
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
enum Shape {
    Circle { r: f64 },
    Square(f32, f32),
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct Celsius(f32);

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct Unit;

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct Everything {
    flag: bool,
    small: i8,
    big: u64,
    wide: i128,
    ratio: f64,
    letter: char,
    name: String,
    bytes: serde_bytes_like::Bytes,
    maybe: Option<u8>,
    list: Vec<u16>,
    pair: (u8, String),
    fixed: [i16; 3],
    temp: Celsius,
    unit: Unit,
    nothing: (),
    mode: Mode,
    shape: Shape,
    nested: Sum,
    map: std::collections::BTreeMap<String, u8>,
}

/// A byte string field (serde's `deserialize_bytes`), without an extra crate.
mod serde_bytes_like {
    use serde::de::{Deserializer, Visitor};
    use serde::ser::Serializer;

    #[derive(Debug, PartialEq)]
    pub struct Bytes(pub Vec<u8>);

    impl serde::Serialize for Bytes {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> serde::Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

#[test]
fn zero_value_of_every_serde_shape() {
    let zero: Everything = zero_value().unwrap();
    assert_eq!(
        zero,
        Everything {
            flag: false,
            small: 0,
            big: 0,
            wide: 0,
            ratio: 0.0,
            letter: '\0',
            name: String::new(),
            bytes: serde_bytes_like::Bytes(vec![]),
            maybe: None,
            list: vec![],
            pair: (0, String::new()),
            fixed: [0; 3],
            temp: Celsius(0.0),
            unit: Unit,
            nothing: (),
            mode: Mode::Eco,
            shape: Shape::Circle { r: 0.0 },
            nested: Sum { a: 0, b: 0 },
            map: Default::default(),
        }
    );
}

/// The sample written while deserializing is exactly what serializing the zero value gives.
fn sample_matches_serialized_zero<T: serde::de::DeserializeOwned + Serialize>() {
    let mut buf = [0u8; 512];
    let mut out = Output::new(&mut buf);
    write_sample::<T>(&mut out).unwrap();
    let n = out.finish().unwrap();
    let mut expected = [0u8; 512];
    let m = pson::to_slice(&zero_value::<T>().unwrap(), &mut expected).unwrap();
    assert_eq!(&buf[..n], &expected[..m], "{}", std::any::type_name::<T>());
    PsonRef::decode(&buf[..n]).unwrap();
}

#[test]
fn samples_equal_serialized_zero_values() {
    sample_matches_serialized_zero::<Everything>();
    sample_matches_serialized_zero::<Sum>();
    sample_matches_serialized_zero::<Mode>();
    sample_matches_serialized_zero::<Shape>();
    sample_matches_serialized_zero::<Option<Sum>>();
    sample_matches_serialized_zero::<Vec<Sum>>();
    sample_matches_serialized_zero::<(bool, f32, Unit)>();
    sample_matches_serialized_zero::<[Celsius; 2]>();
    sample_matches_serialized_zero::<String>();
}

#[test]
fn sample_bytes() {
    let mut buf = [0u8; 64];
    let mut enc = pson::Encoder::new(pson::SliceSink::new(&mut buf));
    encode_sample::<Shape, _>(&mut enc).unwrap();
    let n = enc.into_sink().written();
    // {"Circle": {"r": 0}}
    assert_eq!(&buf[..n], &[0xc1, 0x86, b'C', b'i', b'r', b'c', b'l', b'e', 0xc1, 0x81, b'r', 0x00]);
    assert_eq!(decode(&buf[..n]), thinger_core::pson!({"Circle": {"r": 0}}));

    let mut enc = pson::Encoder::new(pson::SliceSink::new(&mut buf));
    encode_sample::<Mode, _>(&mut enc).unwrap();
    let n = enc.into_sink().written();
    assert_eq!(&buf[..n], &[0x83, b'E', b'c', b'o']);
}

#[test]
fn samples_that_cannot_be_made() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Chain {
        next: Box<Chain>,
    }
    assert_eq!(zero_value::<Chain>().unwrap_err(), pson::Error::DepthLimitExceeded);

    #[derive(Deserialize, Debug)]
    enum Never {}
    assert!(zero_value::<Never>().is_err());
    assert!(zero_value::<std::num::NonZeroU8>().is_err());

    // A failed sample becomes an error reply, never a half-written output.
    let mut out_buf = [0u8; 64];
    let mut out = Output::new(&mut out_buf);
    assert!(write_sample::<Chain>(&mut out).is_err());
    assert!(out.finish().is_err());

    // A sample larger than the buffer: 413.
    let mut sum = input_output(|v: Sum| Total { sum: v.a + v.b });
    let params = Params::new();
    let mut tiny = [0u8; 4];
    let mut call = Call::new(CallMode::DescribeInput, Input::empty(), Output::new(&mut tiny), &params);
    assert_eq!(sum.handle(&mut call).unwrap_err().code, 413);
}

// ---------------------------------------------------------------------------------------
// The table

#[test]
fn sketch_in_a_table() {
    let led_pin = FakePin::default();
    let clock = Cell::new(3809u64);
    let reboots = Cell::new(0);

    let mut led = digital_pin(&led_pin);
    let mut millis = output_value(|| clock.get());
    let mut sum = input_output(|v: Sum| Total { sum: v.a + v.b });
    let mut reboot = run(|| reboots.set(reboots.get() + 1));
    let mut thing: Thing<'_, 4> = Thing::new();
    thing["led"] <<= &mut led;
    thing["millis"] >>= &mut millis;
    thing["sum"] >>= &mut sum;
    thing["reboot"] <<= &mut reboot;

    let kinds: Vec<_> = thing.iter().map(|e| (e.path(), e.kind())).collect();
    assert_eq!(
        kinds,
        [
            ("led", Some(ResourceKind::Input)),
            ("millis", Some(ResourceKind::Output)),
            ("sum", Some(ResourceKind::InputOutput)),
            ("reboot", Some(ResourceKind::Run)),
        ]
    );
    assert_eq!(call_path(&mut thing, CallMode::Run, "led", TRUE).unwrap().unwrap(), TRUE);
    assert!(led_pin.high.get());
    assert_eq!(call_path(&mut thing, CallMode::Run, "millis", &[]).unwrap().unwrap(), [0x1f, 0xe1, 0x1d]);
    let ab = [0xc2, 0x81, 0x61, 0x02, 0x81, 0x62, 0x03];
    assert_eq!(
        decode(&call_path(&mut thing, CallMode::Run, "sum", &ab).unwrap().unwrap()),
        thinger_core::pson!({"sum": 5})
    );
    assert_eq!(call_path(&mut thing, CallMode::Run, "reboot", &[]).unwrap().unwrap(), b"");
    assert_eq!(reboots.get(), 1);
    assert!(call_path(&mut thing, CallMode::Run, "nope", &[]).is_none());
}

#[test]
fn owned_handlers_with_alloc() {
    let pin = FakePin::default();
    let mut thing: Thing<'_, 2> = Thing::new();
    thing["led"] <<= digital_pin(&pin);
    thing["millis"] >>= output_value(|| 5u8);
    assert_eq!(call_path(&mut thing, CallMode::Run, "led", TRUE).unwrap().unwrap(), TRUE);
    assert!(pin.high.get());
    assert_eq!(call_path(&mut thing, CallMode::Run, "millis", &[]).unwrap().unwrap(), [0x05]);
}

#[test]
fn path_params_reach_the_handler() {
    // Observed exchange #12: RUN "sensors/7" → {id: "7", value: 21.5}.
    let mut sensor = handler(ResourceKind::InputOutput, |call| {
        let id = call.param("id").ok_or(HandlerError::new(404, "no id"))?;
        call.output().field("id", id)?;
        call.output().field("value", &21.5f32)?;
        Ok(())
    });
    let mut files = handler(ResourceKind::Output, |call| {
        let path = call.param("path").unwrap_or("");
        call.output().set(&path.len())?;
        Ok(())
    });
    let mut thing: Thing<'_, 2> = Thing::new();
    thing["sensors/:id"] >>= &mut sensor;
    thing["$fs/get/*path"] >>= &mut files;

    let mut params = Params::new();
    assert_eq!(thing.lookup("sensors/7", &mut params), Some(0));
    assert_eq!(params.get("id"), Some("7"));
    let out = call_path(&mut thing, CallMode::Run, "sensors/7", &[]).unwrap().unwrap();
    assert_eq!(
        out,
        [0xc2, 0x82, 0x69, 0x64, 0x81, 0x37, 0x85, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x40, 0x00, 0x00, 0xac, 0x41]
    );
    assert_eq!(call_path(&mut thing, CallMode::Run, "$fs/get/a/b.txt", &[]).unwrap().unwrap(), [0x07]);
    assert!(call_path(&mut thing, CallMode::Run, "sensors/7/x", &[]).is_none());
    assert!(call_path(&mut thing, CallMode::Run, "sensors", &[]).is_none());
}

#[test]
fn try_entry_reports_a_full_table() {
    let mut a = run(|| ());
    let mut b = run(|| ());
    let mut thing: Thing<'_, 1> = Thing::new();
    thing.try_entry("a").unwrap().set(&mut a);
    let error = thing.try_entry("b").unwrap_err();
    assert_eq!(error.capacity, 1);
    assert_eq!(thing.add("b", &mut b).unwrap_err().capacity, 1);
    assert_eq!(thing.len(), 1);
    assert!(error.to_string().contains("1 resources"));
}

#[test]
#[should_panic(expected = "cannot add resource \"b\"")]
fn indexing_a_full_table_panics_at_setup() {
    let mut a = run(|| ());
    let mut b = run(|| ());
    let mut thing: Thing<'_, 1> = Thing::new();
    thing["a"] <<= &mut a;
    thing["b"] <<= &mut b;
}

#[test]
fn into_handler_result_conversions() {
    assert_eq!(().into_handler_result(), Ok(()));
    assert_eq!(Ok::<(), pson::Error>(()).into_handler_result(), Ok(()));
    assert_eq!(Err::<(), _>(pson::Error::BufferFull).into_handler_result().unwrap_err().code, 413);
    assert_eq!(Err::<(), _>(HandlerError::new(503, "busy")).into_handler_result(), Err(HandlerError::new(503, "busy")));
}

/// The unsigned scalars read through `as_u64` (the footprint cut of issue 13); every value
/// must convert exactly as the `as_i64` rule the signed types use.
#[test]
fn unsigned_scalars_convert_as_through_i64() {
    let mut values = vec![
        PsonRef::Null,
        PsonRef::Bool(true),
        PsonRef::Str("7"),
        PsonRef::Int(0),
        PsonRef::Int(5), // not what a decoder yields, but a caller may build it
        PsonRef::Int(-1),
        PsonRef::Int(i64::MIN),
    ];
    for v in [0u64, 1, 255, 256, 65_535, 65_536, u64::from(u32::MAX), 1 << 32, 1 << 63, u64::MAX] {
        values.push(PsonRef::Uint(v));
    }
    for f in [0.0f64, -0.0, 1.0, 1.5, -1.0, 255.0, 256.0, 65_535.0, 4_294_967_295.0, 4_294_967_296.0, 9.3e18, 1.8e19]
        .into_iter()
        .chain([f64::NAN, f64::INFINITY, f64::NEG_INFINITY])
    {
        values.push(PsonRef::F64(f));
        values.push(PsonRef::F32(f as f32));
    }
    for v in &values {
        assert_eq!(u8::from_pson(v), v.as_i64().and_then(|i| u8::try_from(i).ok()), "{v:?}");
        assert_eq!(u16::from_pson(v), v.as_i64().and_then(|i| u16::try_from(i).ok()), "{v:?}");
        assert_eq!(u32::from_pson(v), v.as_i64().and_then(|i| u32::try_from(i).ok()), "{v:?}");
    }
}
