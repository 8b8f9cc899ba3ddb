//! The `$ota` state machine driven by arbitrary call sequences.
//!
//! Input: records of `[action][len lo][len hi][payload]`. Action `% 6`: options, begin (payload
//! as PSON), write (payload as PSON), write (payload as the chunk's bytes), end, reboot.
//! Checks: no panic, the offset never passes the announced size, every answer fits the
//! output buffer or is a clean error, and an image is installed only by an `end` that said so.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_core::ota::{Action, Ota, OtaConfig, OtaStatus, RamUpdater};
use thinger_core::pson::PsonRef;
use thinger_core::resource::{Call, CallMode, Input, Output, Params};

fuzz_target!(|data: &[u8]| {
    let mut area = [0u8; 4096];
    let mut ota = Ota::new(RamUpdater::new(&mut area), OtaConfig::new(256));
    let params = Params::new();
    let mut rest = data;
    while let [op, lo, hi, tail @ ..] = rest {
        let len = (usize::from(*lo) | usize::from(*hi) << 8).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let (action, input) = match op % 6 {
            0 => (Action::Options, Input::empty()),
            1 => (Action::Begin, Input::from_pson(payload).unwrap_or_default()),
            2 => (Action::Write, Input::from_pson(payload).unwrap_or_default()),
            3 => (Action::Write, Input::new(Some(PsonRef::Bytes(payload)), None)),
            4 => (Action::End, Input::empty()),
            _ => (Action::Reboot, Input::empty()),
        };
        let mut out = [0u8; 256];
        let mut call = Call::new(CallMode::Run, input, Output::new(&mut out), &params);
        let _ = ota.handle(action, &mut call);
        let _ = call.into_output().finish();
        match ota.status() {
            OtaStatus::Receiving { offset, size } => assert!(offset <= size),
            OtaStatus::Installed => assert!(ota.updater().installed().is_some()),
            OtaStatus::Idle | OtaStatus::Rebooting => {}
        }
    }
});
