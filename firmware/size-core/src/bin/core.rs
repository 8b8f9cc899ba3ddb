//! thinger-core with 4 resources on a Cortex-M4F: what the core costs in flash and RAM.
//!
//! The session, its buffer and the handlers live in statics (so their RAM shows in
//! `.bss`), and every byte fed in or sent out passes through `black_box`, so the optimizer
//! cannot drop any code path the session has: CONNECT, frame decoding, RUN / DESCRIBE /
//! streams of the 4 resources, keep-alives and timeouts and `stream()`; with feature
//! `cloud` also one cloud call (`write_bucket`) and one subscription. Compare with `baseline.rs`, which has the same buffers and loop without
//! the SDK.
#![no_std]
#![no_main]

use core::cell::Cell;
use core::convert::Infallible;
use core::hint::black_box;

#[cfg(target_arch = "arm")]
use cortex_m as _; // its critical-section implementation
use panic_halt as _;
#[cfg(target_arch = "riscv32")]
use riscv as _; // its critical-section implementation
use static_cell::{ConstStaticCell, StaticCell};
use thinger_core::dsl::{
    DigitalPin, InputValue, Output, OutputFn, OutputValue, Thing, digital_pin, input_value, output_fn, output_value,
};
use thinger_core::pson;
use thinger_core::session::{Config, Session};
use thinger_core::time::Instant;

/// The user's buffers: the session buffer and the wire buffers an adapter reads into and
/// writes from. `baseline.rs` has the same ones.
const SESSION_BUFFER: usize = 1024;
const WIRE: usize = 256;

static SESSION_BUF: ConstStaticCell<[u8; SESSION_BUFFER]> = ConstStaticCell::new([0; SESSION_BUFFER]);
static WIRE_IN: ConstStaticCell<[u8; WIRE]> = ConstStaticCell::new([0; WIRE]);
static WIRE_OUT: ConstStaticCell<[u8; WIRE]> = ConstStaticCell::new([0; WIRE]);

/// A GPIO stand-in: its level goes through `black_box` like a register write.
struct Led(bool);

impl embedded_hal::digital::ErrorType for Led {
    type Error = Infallible;
}
impl embedded_hal::digital::OutputPin for Led {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0 = black_box(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0 = black_box(true);
        Ok(())
    }
}
impl embedded_hal::digital::StatefulOutputPin for Led {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(black_box(self.0))
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!black_box(self.0))
    }
}

static TICKS: ConstStaticCell<u64> = ConstStaticCell::new(0);

fn millis() -> u64 {
    black_box(3809)
}

fn weather(out: &mut Output<'_>) -> Result<(), pson::Error> {
    out.field("t", &black_box(21.5f32))?;
    out.field("h", &black_box(60u8))
}

type WeatherFn = fn(&mut Output<'_>) -> Result<(), pson::Error>;

static LED: StaticCell<DigitalPin<Led>> = StaticCell::new();
static MILLIS: StaticCell<OutputValue<fn() -> u64>> = StaticCell::new();
static SPEED: StaticCell<Cell<u8>> = StaticCell::new();
static SPEED_RES: StaticCell<InputValue<'static, u8>> = StaticCell::new();
static WEATHER: StaticCell<OutputFn<WeatherFn>> = StaticCell::new();
/// The default configuration (8 streams, 8 pending requests), or with feature `small`
/// 4 streams and subscriptions and 4 pending requests.
#[cfg(not(feature = "small"))]
type ProbeSession = Session<'static, &'static mut [u8], 4>;
#[cfg(feature = "small")]
type ProbeSession = Session<'static, &'static mut [u8], 4, 4, 4>;

static SESSION: StaticCell<ProbeSession> = StaticCell::new();

/// Not a real RNG (there is no TRNG on this pretend part); only its code size matters here.
struct Rng(u32);
impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_u32()) << 32 | u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for Rng {}

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let led = LED.init(digital_pin(Led(false)));
    let millis = MILLIS.init(output_value(millis as fn() -> u64));
    let speed = SPEED_RES.init(input_value(SPEED.init(Cell::new(0))));
    let weather = WEATHER.init(output_fn(weather as WeatherFn));


    let config = Config::new(black_box("user"), black_box("device"), black_box("credential"));
    let buf: &'static mut [u8] = SESSION_BUF.take();
    // `init_with`, as static_cell recommends for large values: the session is built in its
    // static, not on the stack and then copied (that copy linked `__aeabi_memcpy8`; 164 B
    // on thumbv7em "z", docs/footprint.md).
    let session = SESSION.init_with(|| Session::new(config, Thing::new(), buf, &mut Rng(black_box(0x1234_5678))));
    // The resources go straight into the session's table: a table built on the stack and
    // passed to `Session::new` is moved into the static, twice, through `__aeabi_memcpy4`
    // (−180 B on thumbv7em "z", docs/footprint.md).
    let thing = session.thing_mut();
    thing["led"] <<= led;
    thing["millis"] >>= millis;
    thing["speed"] <<= speed;
    thing["weather"] >>= weather;
    let wire_in = WIRE_IN.take();
    let wire_out = WIRE_OUT.take();
    let ticks = TICKS.take();

    session.connect(Instant::from_millis(0));
    loop {
        *ticks = black_box(*ticks + 1);
        let now = Instant::from_millis(*ticks);
        // Bytes "received": the optimizer must assume any content and any length.
        let received = black_box(&mut *wire_in);
        let len = black_box(received.len()).min(WIRE);
        let taken = session.handle_input(now, received.get(..len).unwrap_or(&[]));
        black_box(taken);
        while let Ok(n) = session.poll_transmit(&mut wire_out[..]) {
            if n == 0 {
                break;
            }
            black_box(&wire_out[..]);
        }
        while let Some(event) = session.poll_event() {
            black_box(&event);
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
        #[cfg(feature = "cloud")]
        if black_box(false) {
            let _ = black_box(session.write_bucket(now, "bucket", &black_box(21.5f32)));
            let _ = black_box(session.subscribe(now, thinger_core::session::Subscription::Event { name: "e" }));
        }
        if black_box(false) {
            black_box(session.stream(now, "millis"));
        }
        if black_box(false) {
            session.handle_close(now);
            session.connect(now);
        }
    }
}
