#![no_std]
#![no_main]
use esp_hal::main;
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
esp_bootloader_esp_idf::esp_app_desc!();
#[main]
fn main() -> ! { let _p = esp_hal::init(esp_hal::Config::default()); loop {} }
