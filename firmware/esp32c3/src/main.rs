//! Thinger.io on an ESP32-C3: the Rust twin of the Arduino sketch
//!
//! ```text
//! thing["led"] << digitalPin(LED_BUILTIN);
//! thing["millis"] >> outputValue(millis());
//! ```
//!
//! Wi-Fi through esp-radio, DHCP and DNS through embassy-net, the time from SNTP, TLS 1.3 to
//! the Thinger.io cloud with the RSA chain checked against the USERTrust RSA root (plus
//! ISRG Root X1: `thinger_embassy::tls::roots::THINGER_CLOUD`) and validity dates checked
//! once SNTP answered, and two resources: `led`, an LED on GPIO 8 (the on-board LED of the
//! ESP32-C3-DevKitM-1 is an addressable RGB LED there; put a plain LED on another pin if
//! yours differs) driven by `digital_pin`, and `millis`, the time since boot.
//!
//! Settings come from the environment at build time (see `docs/embedded.md`): `WIFI_SSID`,
//! `WIFI_PASSWORD`, `THINGER_USER`, `THINGER_DEVICE`, `THINGER_CREDENTIAL`, `THINGER_HOST`
//! (default `iot.thinger.io`), `THINGER_SERVER_NAME` (DNS name in the server certificate,
//! default `iot.thinger.io`), `NTP_SERVER` (default `pool.ntp.org`). The port is the IOTMP
//! TLS port, 25206.
//!
//! Over-the-air updates (`ota.rs`) on the ESP-IDF bootloader's two app slots: flash with
//! `partitions.csv` (`ota_0`, `ota_1`, `otadata`). `$ota/reboot` resets the chip a second
//! later, the new firmware marks itself `Valid` once connected, and a watchdog (TIMG1, 8 s)
//! resets a firmware that hangs, or one on trial that has not connected within
//! [`CONFIRM_WINDOW`]; rollback on that reset needs a bootloader built with
//! `CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE` (docs/embedded.md). Without the OTA partitions
//! the firmware runs without the `$ota` resources.
#![no_std]
#![no_main]

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, Ordering};
use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, Ticker, Timer};
use esp_bootloader_esp_idf::ota_updater::OtaUpdater;
use esp_bootloader_esp_idf::partitions::{FlashStorage, PARTITION_TABLE_MAX_LEN};
use esp_hal::clock::CpuClock;
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_hal::peripherals::TIMG1;
use esp_hal::rng::{Trng, TrngSource};
use esp_hal::timer::timg::{MwdtStage, TimerGroup, Wdt};
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{AuthenticationMethodConfig, Config as WifiConfig, Interface, WifiController};
use rand_core::RngCore;
use static_cell::StaticCell;
use thinger_core::dsl::{DigitalPin, OutputValue, Thing, digital_pin, output_value};
use thinger_core::ota::{Ota, OtaConfig, OtaResources, Version, block_size_for};
use thinger_core::session::Config as SessionConfig;
#[cfg(not(feature = "plain-tcp"))]
use thinger_embassy::Tls;
#[cfg(not(feature = "plain-tcp"))]
use thinger_embassy::tls::{SyncedClock, roots};
use thinger_embassy::{Buffers, Config, Runner};

mod ota;
mod sntp;

esp_bootloader_esp_idf::esp_app_desc!();

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    esp_hal::system::software_reset()
}

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
const DEVICE: &str = setting!("THINGER_DEVICE", "esp32c3");
const CREDENTIAL: &str = setting!("THINGER_CREDENTIAL", "device-credential");
const HOST: &str = setting!("THINGER_HOST", "iot.thinger.io");
#[cfg(not(feature = "plain-tcp"))]
const SERVER_NAME: &str = setting!("THINGER_SERVER_NAME", "iot.thinger.io");
const NTP_SERVER: &str = setting!("NTP_SERVER", "pool.ntp.org");

/// Resources in the table (`led`, `millis`, the five `$ota` ones, `version`).
const RESOURCES: usize = 8;

/// Session buffer size (the `Buffers` default): bounds the OTA chunk size.
const SESSION_BUFFER: usize = 2048;

/// How long a firmware on trial (just installed) has to connect before the watchdog resets it.
const CONFIRM_WINDOW: Duration = Duration::from_secs(300);

type OtaSlots = ota::SlotUpdater<fn()>;

/// Set once the running firmware is confirmed (at boot, or after its first connection).
static CONFIRMED: AtomicBool = AtomicBool::new(false);

/// Raised by `$ota/reboot`; the reboot task resets the chip.
static REBOOT: Signal<CriticalSectionRawMutex, ()> = Signal::new();

fn request_reboot() {
    REBOOT.signal(());
}

/// The chip's true RNG (radio noise while Wi-Fi runs, plus the ADC source).
type Rng = Trng;

/// All the client's memory: session 2 KiB, TLS record buffers 16,640 + 4,096 bytes.
#[cfg(not(feature = "plain-tcp"))]
type ClientBuffers = Buffers<'static, RESOURCES>;
/// Without TLS the record buffers are not needed.
#[cfg(feature = "plain-tcp")]
type ClientBuffers = Buffers<'static, RESOURCES, 2048, 0, 0>;

/// Wall-clock time for certificate dates, set from SNTP.
#[cfg(not(feature = "plain-tcp"))]
static CLOCK: SyncedClock = SyncedClock::new();

#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>) -> ! {
    let (Ok(ssid), Ok(password)) = (WIFI_SSID.try_into(), WIFI_PASSWORD.try_into()) else {
        panic!("WIFI_SSID or WIFI_PASSWORD too long")
    };
    let config = WifiConfig::Station(
        StationConfig::default()
            .with_ssid(ssid)
            .with_authentication(AuthenticationMethodConfig::Wpa2Personal(password)),
    );
    loop {
        if controller.set_config(&config).is_ok() && controller.connect_async().await.is_ok() {
            let _ = controller.wait_for_disconnect_async().await;
        }
        Timer::after(Duration::from_secs(2)).await;
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Interface>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn thinger_task(runner: Runner<'static, Rng, RESOURCES>) -> ! {
    runner.run().await
}

/// Asks SNTP for the time until it answers, then again every hour.
#[embassy_executor::task]
async fn time_task(stack: Stack<'static>) -> ! {
    loop {
        let wait = match sntp::unix_time(stack, NTP_SERVER).await {
            Some(_now) => {
                #[cfg(not(feature = "plain-tcp"))]
                CLOCK.set(_now);
                Duration::from_secs(3600)
            }
            None => Duration::from_secs(5),
        };
        Timer::after(wait).await;
    }
}

/// Feeds the watchdog while the firmware is confirmed, or still inside its confirm window.
#[embassy_executor::task]
async fn watchdog_task(mut watchdog: Wdt<TIMG1<'static>>) -> ! {
    watchdog.set_timeout(MwdtStage::Stage0, esp_hal::time::Duration::from_secs(8));
    watchdog.enable();
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
    esp_hal::system::software_reset()
}

fn millis() -> u64 {
    embassy_time::Instant::now().as_millis()
}

#[esp_rtos::main]
async fn main(spawner: Spawner) {
    let p = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // The Wi-Fi driver and the RSA checks allocate.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 32 * 1024);

    let timg0 = TimerGroup::new(p.TIMG0);
    esp_rtos::start(timg0.timer0, p.FROM_CPU_INTR0);
    spawner.spawn(watchdog_task(TimerGroup::new(p.TIMG1).wdt).unwrap());
    spawner.spawn(reboot_task().unwrap());

    // OTA: the partition table's app slots, if it has them (partitions.csv).
    static FLASH: StaticCell<FlashStorage<'static>> = StaticCell::new();
    static TABLE: StaticCell<[u8; PARTITION_TABLE_MAX_LEN]> = StaticCell::new();
    let flash = FLASH.init(FlashStorage::new(p.FLASH));
    let ota = match OtaUpdater::new(flash, TABLE.init([0; PARTITION_TABLE_MAX_LEN])) {
        Ok(slots) => {
            let mut slots = ota::SlotUpdater::new(slots, request_reboot as fn());
            CONFIRMED.store(!slots.on_trial(), Ordering::Relaxed);
            static OTA: StaticCell<RefCell<Ota<OtaSlots>>> = StaticCell::new();
            let config = OtaConfig::new(block_size_for(SESSION_BUFFER)).version(env!("CARGO_PKG_VERSION"));
            Some(&*OTA.init(RefCell::new(Ota::new(slots, config))))
        }
        Err(_) => {
            CONFIRMED.store(true, Ordering::Relaxed);
            None
        }
    };

    static TRNG_SOURCE: StaticCell<TrngSource<'static>> = StaticCell::new();
    TRNG_SOURCE.init(TrngSource::new(p.RNG, p.ADC1));
    let Ok(mut rng) = Trng::try_new() else { panic!("no entropy source") };

    let Ok(controller) = WifiController::new(p.WIFI, Default::default()) else { panic!("Wi-Fi init") };
    spawner.spawn(wifi_task(controller).unwrap());

    static NET_RESOURCES: StaticCell<StackResources<5>> = StaticCell::new();
    let (stack, net_runner) = embassy_net::new(
        Interface::station(),
        embassy_net::Config::dhcpv4(Default::default()),
        NET_RESOURCES.init(StackResources::new()),
        rng.next_u64(),
    );
    spawner.spawn(net_task(net_runner).unwrap());
    spawner.spawn(time_task(stack).unwrap());

    // The resources: thing["led"] << digitalPin(...); thing["millis"] >> outputValue(millis());
    static LED: StaticCell<DigitalPin<Output<'static>>> = StaticCell::new();
    static MILLIS: StaticCell<OutputValue<fn() -> u64>> = StaticCell::new();
    let led = LED.init(digital_pin(Output::new(p.GPIO8, Level::Low, OutputConfig::default())));
    let uptime = MILLIS.init(output_value(millis as fn() -> u64));
    let mut thing: Thing<'static, RESOURCES> = Thing::new();
    thing["led"] <<= led;
    thing["millis"] >>= uptime;
    static VERSION: StaticCell<Version> = StaticCell::new();
    thing[Version::PATH] >>= VERSION.init(Version::new(env!("CARGO_PKG_VERSION")));
    if let Some(ota) = ota {
        static OTA_RESOURCES: StaticCell<OtaResources<'static, OtaSlots>> = StaticCell::new();
        // Cannot fail: RESOURCES leaves room for the five `$ota` resources.
        let _ = OTA_RESOURCES.init(OtaResources::new(ota)).register(&mut thing);
    }

    // The client: TLS to the cloud, the chain checked against its roots for SERVER_NAME,
    // the dates once SNTP answered.
    let session = SessionConfig::new(USER, DEVICE, CREDENTIAL);
    #[cfg(not(feature = "plain-tcp"))]
    let config = Config::new(session, HOST, Tls::new(SERVER_NAME, roots::THINGER_CLOUD).time_source(&CLOCK));
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
        // A firmware on trial is kept once it has connected (state `Valid`).
        if !CONFIRMED.load(Ordering::Relaxed)
            && client.is_connected()
            && let Some(Ok(mut ota)) = ota.map(RefCell::try_borrow_mut)
            && ota.updater().confirm_boot().is_ok()
        {
            CONFIRMED.store(true, Ordering::Relaxed);
        }
        client.stream("millis");
    }
}
