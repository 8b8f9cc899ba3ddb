//! The REST API's JSON body → PSON conversion (what is sent to a device or stored). Checks:
//! no panic on any bytes; an accepted body encodes to PSON that a device's decoder (default
//! depth limit) reads back as an equal value.
#![no_main]

// The server's pure parsing module, compiled here without the server's I/O stack.
#[allow(dead_code)]
#[path = "../../thinger-server/src/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;
use thinger_core::pson::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(value)) = wire::json_to_pson(data) else { return };
    let value = wire::resource_input(value);
    let bytes = value.encode_to_vec();
    // Accepted bodies are within the device decoder's depth limit, so this must decode.
    let back = Value::decode(&bytes).expect("what we encode decodes");
    assert!(back.value_eq(&value), "{value:?} came back as {back:?}");
});
