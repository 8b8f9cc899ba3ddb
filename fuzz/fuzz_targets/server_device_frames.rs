//! The server's parsing of what a device sends: a byte stream cut into IOTMP frames (with
//! the server's frame limit), each CONNECT read as the handshake does and each RUN as a
//! cloud call. Checks: no panic; an accepted CONNECT has three strings and a keep-alive in
//! 1..=1800; a refusal carries one of the documented codes.
#![no_main]

// The server's pure parsing module, compiled here without the server's I/O stack.
#[allow(dead_code)]
#[path = "../../thinger-server/src/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;
use thinger_core::iotmp::{MessageType, parse_frame};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, used))) = parse_frame(rest, 4096) {
        rest = rest.get(used..).unwrap_or(&[]);
        let Ok(msg) = frame.message() else { continue };
        match msg.kind {
            MessageType::Connect => match wire::parse_connect(&msg) {
                Ok(c) => {
                    assert!(c.keepalive_s.is_none_or(|s| (1..=1800).contains(&s)));
                    assert_eq!(c.sid, msg.stream_id);
                    let _ = (c.user.len(), c.device.len(), c.credential.len());
                }
                Err(r) => {
                    assert!([wire::REFUSE_CREDENTIALS, wire::REFUSE_KEEPALIVE, wire::REFUSE_ENCODING].contains(&r.code))
                }
            },
            MessageType::Run => {
                if let Some((code, id)) = wire::cloud_call(&msg) {
                    if code == 3 {
                        let _ = wire::call_target(id);
                    }
                    let _ = id.and_then(|f| f.as_str());
                }
            }
            _ => {}
        }
        if used == 0 {
            break;
        }
    }
});
