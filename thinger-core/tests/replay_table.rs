//! The exchange `firmware/qemu-replay` runs in QEMU, run here on the host: the same code
//! (the module is loaded by path), so a mismatch on the device is a target difference, not a table error.
//! Also checks the table itself: every expected reply is equal by value to the official
//! client's answer from iotmp-observed.md.

mod support;

#[allow(dead_code)]
#[path = "../../firmware/qemu-replay/src/replay.rs"]
mod replay;

use replay::{SESSION_BUFFER, STEPS, replay, unhex};
use support::{assert_equivalent, frames, hex, to_hex};

#[test]
fn the_firmware_exchange_replays_byte_for_byte_on_the_host() {
    let mut buf = vec![0u8; SESSION_BUFFER];
    let (mut out, mut expected) = (vec![0u8; 512], vec![0u8; 512]);
    let mut seen = Vec::new();
    let result = replay(&mut buf, &mut out, &mut expected, |i, sent| seen.push((i, to_hex(sent))));
    for (i, sent) in &seen {
        if *sent != STEPS[*i].reply {
            eprintln!("step {i}: sent {sent}, table {}", STEPS[*i].reply);
        }
    }
    assert_eq!(result, Ok(()));
    assert_eq!(seen.len(), STEPS.len());
}

#[test]
fn every_expected_reply_matches_the_official_client_by_value() {
    for (i, step) in STEPS.iter().enumerate() {
        if step.official.is_empty() || matches!(step.action, replay::Action::Connect) {
            continue;
        }
        let ours = frames(&hex(step.reply));
        let theirs = frames(&hex(step.official));
        assert_eq!(ours.len(), theirs.len(), "step {i}: frame count");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_equivalent(a, b);
        }
    }
}

#[test]
fn unhex_rejects_what_does_not_fit() {
    let mut small = [0u8; 1];
    assert_eq!(unhex("0a0b", &mut small), None);
    assert_eq!(unhex("zz", &mut small), None);
    assert_eq!(unhex("0a", &mut small), Some(&[0x0a][..]));
}
