//! Thinger.io on a Raspberry Pi Pico W — the Rust twin of the Arduino MKR1000 sketch:
//!
//! ```text
//! thing["led"] << digitalPin(LED_BUILTIN);
//! thing["millis"] >> outputValue(millis());
//! ```
//!
//! WiFi through the on-board CYW43439 (cyw43 + PIO SPI), DHCP and DNS through embassy-net,
//! TLS 1.3 with the server certificate checked against `ca.der`, and two resources: `led`,
//! an LED on GPIO 15 driven by `digital_pin` (the Pico W's own LED hangs off the radio
//! chip, not a GPIO), and `millis`, the time since boot.
//!
//! Over-the-air updates on embassy-boot (`thinger_embassy::ota::BootUpdater`): the `$ota`
//! resources write the DFU partition, `$ota/reboot` resets the chip a second later, the
//! bootloader (`firmware/pico-w-boot`) swaps the image in, and this firmware confirms it
//! (`mark_booted`) once it has connected to the server. A watchdog resets a firmware that
//! hangs; a freshly swapped firmware that has not connected within [`CONFIRM_WINDOW`] stops
//! feeding it, and the reset that follows rolls the previous firmware back. The flash layout
//! is in `memory.x` and `docs/embedded.md`.
//!
//! Settings come from the environment at build time (see `docs/embedded.md`):
//! `WIFI_SSID`, `WIFI_PASSWORD`, `THINGER_USER`, `THINGER_DEVICE`, `THINGER_CREDENTIAL`,
//! `THINGER_HOST` (address or name to connect to), `THINGER_SERVER_NAME` (DNS name in the
//! server certificate), and `ca.der` next to this crate's `Cargo.toml` (the CA that signed
//! the server certificate, DER; the one in the repository is a placeholder).
#![no_std]
#![no_main]

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, Ordering};

use cyw43_pio::{DEFAULT_CLOCK_DIVIDER, PioSpi};
use embassy_boot::{FirmwareUpdaterConfig, State};
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_executor::Spawner;
use embassy_net::StackResources;
use embassy_rp::bind_interrupts;
use embassy_rp::clocks::RoscRng;
use embassy_rp::flash::{Blocking, Flash};
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::{DMA_CH0, FLASH, PIO0};
use embassy_rp::pio::{InterruptHandler, Pio};
use embassy_rp::watchdog::Watchdog;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, Ticker, Timer};
use panic_halt as _;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use static_cell::StaticCell;
use thinger_core::dsl::{DigitalPin, OutputValue, Thing, digital_pin, output_value};
use thinger_core::ota::{Ota, OtaConfig, OtaResources, Version, block_size_for};
use thinger_core::session::Config as SessionConfig;
#[cfg(not(feature = "plain-tcp"))]
use thinger_embassy::Tls;
use thinger_embassy::ota::BootUpdater;
use thinger_embassy::{Buffers, Config, Runner};

bind_interrupts!(struct Irqs {
    PIO0_IRQ_0 => InterruptHandler<PIO0>;
});

/// Build-time setting `$name`, or `default`.
macro_rules! setting {
    ($name:literal, $default:literal) => {
        match option_env!($name) {
            Some(v) => v,
            None => $default,
        }
    };
}

const WIFI_SSID: &str = setting!("WIFI_SSID", "your-ssid");
const WIFI_PASSWORD: &str = setting!("WIFI_PASSWORD", "your-password");
const USER: &str = setting!("THINGER_USER", "username");
const DEVICE: &str = setting!("THINGER_DEVICE", "pico-w");
const CREDENTIAL: &str = setting!("THINGER_CREDENTIAL", "device-credential");
const HOST: &str = setting!("THINGER_HOST", "thinger.local");
#[cfg(not(feature = "plain-tcp"))]
const SERVER_NAME: &str = setting!("THINGER_SERVER_NAME", "thinger.local");
#[cfg(not(feature = "plain-tcp"))]
static CA: &[u8] = include_bytes!("../ca.der");

/// Resources in the table (`led`, `millis`, the five `$ota` ones, `version`).
const RESOURCES: usize = 8;

/// Session buffer size (the `Buffers` default): bounds the OTA chunk size.
const SESSION_BUFFER: usize = 2048;

/// The Pico W's flash (W25Q16JV, 2 MiB).
const FLASH_SIZE: usize = 2 * 1024 * 1024;

/// Watchdog period: the bootloader starts the watchdog with 8 s, this firmware keeps it.
const WATCHDOG_PERIOD: Duration = Duration::from_secs(8);

/// How long a freshly swapped-in firmware has to connect before it is rolled back.
const CONFIRM_WINDOW: Duration = Duration::from_secs(300);

type FlashDriver = Flash<'static, FLASH, Blocking, FLASH_SIZE>;
type Partition = BlockingPartition<'static, NoopRawMutex, FlashDriver>;
type OtaUpdater = BootUpdater<'static, Partition, Partition, fn()>;

/// Set once the running firmware is confirmed (at boot, or after its first connection).
static CONFIRMED: AtomicBool = AtomicBool::new(false);

/// Raised by `$ota/reboot`; the reboot task resets the chip.
static REBOOT: Signal<CriticalSectionRawMutex, ()> = Signal::new();

fn request_reboot() {
    REBOOT.signal(());
}

type Rng = ChaCha20Rng;

/// All the client's memory: session 2 KiB, TLS record buffers 16,640 + 4,096 bytes.
#[cfg(not(feature = "plain-tcp"))]
type ClientBuffers = Buffers<'static, RESOURCES>;
/// Without TLS the record buffers are not needed.
#[cfg(feature = "plain-tcp")]
type ClientBuffers = Buffers<'static, RESOURCES, 2048, 0, 0>;

#[embassy_executor::task]
async fn wifi_task(runner: cyw43::Runner<'static, Output<'static>, PioSpi<'static, PIO0, 0, DMA_CH0>>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, cyw43::NetDriver<'static>>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn thinger_task(runner: Runner<'static, Rng, RESOURCES>) -> ! {
    runner.run().await
}

/// Feeds the watchdog while the firmware is confirmed, or still inside its confirm window.
#[embassy_executor::task]
async fn watchdog_task(mut watchdog: Watchdog) -> ! {
    watchdog.start(WATCHDOG_PERIOD);
    let booted = Instant::now();
    loop {
        if CONFIRMED.load(Ordering::Relaxed) || booted.elapsed() < CONFIRM_WINDOW {
            watchdog.feed();
        }
        Timer::after(Duration::from_secs(1)).await;
    }
}

/// Resets the chip a second after `$ota/reboot` (its reply goes out first).
#[embassy_executor::task]
async fn reboot_task() -> ! {
    REBOOT.wait().await;
    Timer::after(Duration::from_secs(1)).await;
    cortex_m::peripheral::SCB::sys_reset()
}

fn millis() -> u64 {
    embassy_time::Instant::now().as_millis()
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());

    // The watchdog first: the bootloader left it running.
    spawner.spawn(watchdog_task(Watchdog::new(p.WATCHDOG)).unwrap());
    spawner.spawn(reboot_task().unwrap());

    // OTA: embassy-boot's DFU and state partitions (linker symbols from memory.x).
    static FLASH_MUTEX: StaticCell<Mutex<NoopRawMutex, RefCell<FlashDriver>>> = StaticCell::new();
    let flash: &'static _ = FLASH_MUTEX.init(Mutex::new(RefCell::new(Flash::new_blocking(p.FLASH))));
    let partitions = FirmwareUpdaterConfig::from_linkerfile_blocking(flash, flash);
    static ALIGNED: StaticCell<[u8; embassy_rp::flash::WRITE_SIZE]> = StaticCell::new();
    let aligned = ALIGNED.init([0; embassy_rp::flash::WRITE_SIZE]);
    let mut updater: OtaUpdater = BootUpdater::new(partitions.dfu, partitions.state, aligned, request_reboot as fn());
    // `Swap`: this firmware was just swapped in and is on trial until it connects.
    CONFIRMED.store(!matches!(updater.boot_state(), Ok(State::Swap)), Ordering::Relaxed);
    static OTA: StaticCell<RefCell<Ota<OtaUpdater>>> = StaticCell::new();
    let ota_config = OtaConfig::new(block_size_for(SESSION_BUFFER)).version(env!("CARGO_PKG_VERSION"));
    let ota: &'static _ = OTA.init(RefCell::new(Ota::new(updater, ota_config)));

    // A ChaCha20 stream seeded with 256 bits from the ring oscillator (the RP2040 has no TRNG).
    let mut seed = [0u8; 32];
    RoscRng.fill_bytes(&mut seed);
    let mut rng = Rng::from_seed(seed);

    // The radio: power and chip-select pins, PIO-driven SPI, firmware blobs from crates.io.
    let pwr = Output::new(p.PIN_23, Level::Low);
    let cs = Output::new(p.PIN_25, Level::High);
    let mut pio = Pio::new(p.PIO0, Irqs);
    let spi = PioSpi::new(&mut pio.common, pio.sm0, DEFAULT_CLOCK_DIVIDER, pio.irq0, cs, p.PIN_24, p.PIN_29, p.DMA_CH0);
    static WIFI_STATE: StaticCell<cyw43::State> = StaticCell::new();
    let state = WIFI_STATE.init(cyw43::State::new());
    let (net_device, mut control, wifi_runner) = cyw43::new(state, pwr, spi, cyw43_firmware::CYW43_43439A0).await;
    spawner.spawn(wifi_task(wifi_runner).unwrap());
    control.init(cyw43_firmware::CYW43_43439A0_CLM).await;
    control.set_power_management(cyw43::PowerManagementMode::PowerSave).await;

    // The IP stack: DHCP, DNS.
    static NET_RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, net_runner) = embassy_net::new(
        net_device,
        embassy_net::Config::dhcpv4(Default::default()),
        NET_RESOURCES.init(StackResources::new()),
        rng.next_u64(),
    );
    spawner.spawn(net_task(net_runner).unwrap());

    while control.join(WIFI_SSID, cyw43::JoinOptions::new(WIFI_PASSWORD.as_bytes())).await.is_err() {
        embassy_time::Timer::after(Duration::from_secs(1)).await;
    }

    // The resources: thing["led"] << digitalPin(...); thing["millis"] >> outputValue(millis());
    static LED: StaticCell<DigitalPin<Output<'static>>> = StaticCell::new();
    static MILLIS: StaticCell<OutputValue<fn() -> u64>> = StaticCell::new();
    let led = LED.init(digital_pin(Output::new(p.PIN_15, Level::Low)));
    let uptime = MILLIS.init(output_value(millis as fn() -> u64));
    let mut thing: Thing<'static, RESOURCES> = Thing::new();
    thing["led"] <<= led;
    thing["millis"] >>= uptime;
    static VERSION: StaticCell<Version> = StaticCell::new();
    thing[Version::PATH] >>= VERSION.init(Version::new(env!("CARGO_PKG_VERSION")));
    static OTA_RESOURCES: StaticCell<OtaResources<'static, OtaUpdater>> = StaticCell::new();
    // Cannot fail: RESOURCES leaves room for the five `$ota` resources.
    let _ = OTA_RESOURCES.init(OtaResources::new(ota)).register(&mut thing);

    // The client: TLS on by default, the certificate checked against `ca.der` for SERVER_NAME.
    let session = SessionConfig::new(USER, DEVICE, CREDENTIAL);
    #[cfg(not(feature = "plain-tcp"))]
    let config = Config::new(session, HOST, Tls::new(SERVER_NAME, CA));
    #[cfg(feature = "plain-tcp")]
    let config = Config::plain(session, HOST);
    static BUFFERS: StaticCell<ClientBuffers> = StaticCell::new();
    let (client, runner) = thinger_embassy::new(stack, config, thing, BUFFERS.init(Buffers::new()), rng);
    spawner.spawn(thinger_task(runner).unwrap());

    // The application goes on here; the client is usable from any task. For example, push
    // `millis` to whoever listens (a dashboard) every 10 s.
    let mut ticker = Ticker::every(Duration::from_secs(10));
    loop {
        ticker.next().await;
        // A firmware on trial is kept once it has connected (`mark_booted`).
        if !CONFIRMED.load(Ordering::Relaxed)
            && client.is_connected()
            && let Ok(mut ota) = ota.try_borrow_mut()
            && ota.updater().confirm_boot().is_ok()
        {
            CONFIRMED.store(true, Ordering::Relaxed);
        }
        client.stream("millis");
    }
}
