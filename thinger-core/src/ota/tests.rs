use core::cell::RefCell;
use std::string::String;
use std::vec::Vec;

use md5::{Digest, Md5};
use sha2::Sha256;

use super::*;
use crate::pson::{PsonRef, Value};
use crate::resource::{Call, CallMode, HandlerError, Params, Resource, Thing};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| std::format!("{b:02x}")).collect()
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn begin_input(img: &[u8], firmware: &str) -> Value {
    let md5 = hex(&Md5::digest(img));
    crate::pson!({"firmware": firmware, "version": "2.0.0", "size": (img.len() as u64), "chunk_size": 256u32, "checksum": md5})
}

/// Runs `path` on `thing` with `input` and returns the decoded output.
fn run<const N: usize>(thing: &mut Thing<'_, N>, path: &str, input: Option<&Value>) -> Result<Value, HandlerError> {
    let bytes = input.map(Value::encode_to_vec);
    let input = match &bytes {
        Some(b) => Input::from_pson(b).unwrap(),
        None => Input::empty(),
    };
    let mut params = Params::new();
    let index = thing.lookup(path, &mut params).expect("resource");
    let mut out = [0u8; 512];
    let mut call = Call::new(CallMode::Run, input, Output::new(&mut out), &params);
    thing.entry_mut(index).unwrap().resource().unwrap().handle(&mut call)?;
    let n = call.into_output().finish().unwrap();
    Ok(if n == 0 { Value::Null } else { PsonRef::decode(&out[..n]).unwrap().into() })
}

fn success(v: &Value) -> bool {
    v["success"] == Value::Bool(true)
}

#[test]
fn push_over_the_resources_installs_the_image_byte_for_byte() {
    let img = image(3000);
    let mut area = [0u8; 4096];
    let ota = RefCell::new(Ota::new(RamUpdater::new(&mut area), OtaConfig::new(256).version("1.0.0")));
    let mut resources = OtaResources::new(&ota);
    let mut thing: Thing<'_, 5> = Thing::new();
    resources.register(&mut thing).unwrap();

    let options = run(&mut thing, OPTIONS, None).unwrap();
    assert_eq!(options["block_size"], 256u32);
    assert_eq!(options["checksum"], "md5");
    assert_eq!(options["version"], "1.0.0");
    let begun = run(&mut thing, BEGIN, Some(&begin_input(&img, "app"))).unwrap();
    assert!(success(&begun), "{begun:?}");
    assert_eq!(begun["offset"], 0u32);
    for chunk in img.chunks(256) {
        let w = run(&mut thing, WRITE, Some(&Value::Bytes(chunk.to_vec()))).unwrap();
        assert!(success(&w), "{w:?}");
    }
    let end = run(&mut thing, END, None).unwrap();
    assert!(success(&end), "{end:?}");
    run(&mut thing, REBOOT, None).unwrap();
    let mut ota = ota.borrow_mut();
    assert_eq!(ota.status(), OtaStatus::Rebooting);
    assert_eq!(ota.updater().installed(), Some(&img[..]));
    assert_eq!(ota.updater().reboots(), 1);
}

fn ota_over(area: &mut [u8]) -> Ota<RamUpdater<'_>> {
    Ota::new(RamUpdater::new(area), OtaConfig::new(256))
}

fn begin(ota: &mut Ota<RamUpdater<'_>>, input: &Value) -> Result<u32, OtaError> {
    let bytes = input.encode_to_vec();
    ota.begin(&Input::from_pson(&bytes).unwrap())
}

#[test]
fn wrong_checksum_is_refused_at_end_and_nothing_is_installed() {
    let img = image(1000);
    let mut area = [0u8; 1024];
    let mut ota = ota_over(&mut area);
    let mut input = begin_input(&img, "app");
    if let Value::Map(pairs) = &mut input {
        pairs.iter_mut().find(|(k, _)| k == "checksum").unwrap().1 = Value::from(hex(&[0u8; 16]).as_str());
    }
    begin(&mut ota, &input).unwrap();
    for chunk in img.chunks(256) {
        ota.write(chunk).unwrap();
    }
    assert_eq!(ota.end(), Err(OtaError::ChecksumMismatch));
    assert_eq!(ota.status(), OtaStatus::Idle);
    assert_eq!(ota.updater().installed(), None);
}

#[test]
fn storage_corrupted_after_write_is_caught_by_the_read_back() {
    let img = image(600);
    let mut area = [0u8; 1024];
    let mut ota = ota_over(&mut area);
    begin(&mut ota, &begin_input(&img, "app")).unwrap();
    for chunk in img.chunks(256) {
        ota.write(chunk).unwrap();
    }
    ota.updater().storage()[300] ^= 1; // a bit flipped in flash
    assert_eq!(ota.end(), Err(OtaError::ChecksumMismatch));
    assert_eq!(ota.updater().installed(), None);
}

#[test]
fn sha256_is_verified_when_sent() {
    let img = image(700);
    let mut area = [0u8; 1024];
    let mut ota = ota_over(&mut area);
    let good = hex(&Sha256::digest(&img));
    let input = crate::pson!({"firmware": "app", "size": 700u32, "sha256": good});
    begin(&mut ota, &input).unwrap();
    for chunk in img.chunks(256) {
        ota.write(chunk).unwrap();
    }
    assert_eq!(ota.end(), Ok(()));
    assert_eq!(ota.updater().installed(), Some(&img[..]));

    let bad = hex(&Sha256::digest(b"other"));
    let input = crate::pson!({"firmware": "app", "size": 700u32, "checksum": (hex(&Md5::digest(&img))), "sha256": bad});
    begin(&mut ota, &input).unwrap();
    for chunk in img.chunks(256) {
        ota.write(chunk).unwrap();
    }
    assert_eq!(ota.end(), Err(OtaError::ChecksumMismatch), "MD5 right, SHA-256 wrong");
}

#[test]
fn truncated_image_is_refused_and_stays_resumable() {
    let img = image(1000);
    let mut area = [0u8; 1024];
    let mut ota = ota_over(&mut area);
    begin(&mut ota, &begin_input(&img, "app")).unwrap();
    ota.write(&img[..512]).unwrap_err(); // larger than block_size
    ota.write(&img[..256]).unwrap();
    assert_eq!(ota.end(), Err(OtaError::Incomplete));
    assert_eq!(ota.status(), OtaStatus::Receiving { offset: 256, size: 1000 });
    assert_eq!(ota.updater().installed(), None);
}

#[test]
fn begin_for_the_same_image_resumes_at_the_offset() {
    let img = image(1000);
    let mut area = [0u8; 1024];
    let mut ota = ota_over(&mut area);
    let mut input = begin_input(&img, "app");
    if let Value::Map(pairs) = &mut input {
        pairs.push(("resume".into(), Value::Bool(true)));
    }
    assert_eq!(begin(&mut ota, &input), Ok(0));
    ota.write(&img[..256]).unwrap();
    ota.write(&img[256..512]).unwrap();
    assert_eq!(begin(&mut ota, &input), Ok(512));
    // Without `resume` (the official tools) the same image starts over.
    ota.write(&img[512..768]).unwrap();
    assert_eq!(begin(&mut ota, &begin_input(&img, "app")), Ok(0));
    ota.write(&img[..256]).unwrap();
    ota.write(&img[256..512]).unwrap();
    assert_eq!(begin(&mut ota, &input), Ok(512));
    for chunk in img[512..].chunks(256) {
        ota.write(chunk).unwrap();
    }
    assert_eq!(ota.end(), Ok(()));
    assert_eq!(ota.updater().installed(), Some(&img[..]));
}

#[test]
fn begin_for_another_image_restarts_cleanly() {
    let (old, new) = (image(1000), image(900).iter().map(|b| !b).collect::<Vec<u8>>());
    let mut area = [0u8; 1024];
    let mut ota = ota_over(&mut area);
    begin(&mut ota, &begin_input(&old, "app")).unwrap();
    ota.write(&old[..256]).unwrap();
    assert_eq!(begin(&mut ota, &begin_input(&new, "app")), Ok(0));
    assert_eq!(ota.status(), OtaStatus::Receiving { offset: 0, size: 900 });
    for chunk in new.chunks(256) {
        ota.write(chunk).unwrap();
    }
    assert_eq!(ota.end(), Ok(()));
    assert_eq!(ota.updater().installed(), Some(&new[..]));
}

#[test]
fn write_beyond_size_is_refused_and_changes_nothing() {
    let img = image(300);
    let mut area = [0u8; 1024];
    let mut ota = ota_over(&mut area);
    begin(&mut ota, &begin_input(&img, "app")).unwrap();
    ota.write(&img[..256]).unwrap();
    assert_eq!(ota.write(&[0u8; 100]), Err(OtaError::BeyondSize));
    assert_eq!(ota.status(), OtaStatus::Receiving { offset: 256, size: 300 });
    ota.write(&img[256..]).unwrap();
    assert_eq!(ota.end(), Ok(()));
}

#[test]
fn begin_is_checked_before_storage_is_touched() {
    let img = image(100);
    let mut area = [0u8; 1024];
    let mut ota = ota_over(&mut area);
    let no_sum = crate::pson!({"firmware": "app", "size": 100u32});
    assert_eq!(begin(&mut ota, &no_sum), Err(OtaError::NoChecksum));
    let bad_sum = crate::pson!({"size": 100u32, "checksum": "xyz"});
    assert_eq!(begin(&mut ota, &bad_sum), Err(OtaError::NoChecksum));
    let zero = crate::pson!({"size": 0u32, "checksum": (hex(&Md5::digest(&img)))});
    assert_eq!(begin(&mut ota, &zero), Err(OtaError::BadSize));
    let big_chunk = crate::pson!({"size": 100u32, "chunk_size": 8192u32, "checksum": (hex(&Md5::digest(&img)))});
    assert_eq!(begin(&mut ota, &big_chunk), Err(OtaError::ChunkTooLarge));
    let zipped = crate::pson!({"size": 100u32, "compression": "zlib", "checksum": (hex(&Md5::digest(&img)))});
    assert_eq!(begin(&mut ota, &zipped), Err(OtaError::Compression));
    let too_big = crate::pson!({"size": 5000u32, "checksum": (hex(&Md5::digest(&img)))});
    assert!(matches!(begin(&mut ota, &too_big), Err(OtaError::Storage(_))));
    assert_eq!(ota.write(&img), Err(OtaError::NotRunning));
    assert_eq!(ota.end(), Err(OtaError::NotRunning));
    let mut disabled = Ota::new(RamUpdater::new(&mut []), OtaConfig::new(256).enabled(false));
    assert_eq!(begin(&mut disabled, &begin_input(&img, "app")), Err(OtaError::Disabled));
}

#[test]
fn errors_answer_success_false_with_a_reason() {
    let mut area = [0u8; 64];
    let ota = RefCell::new(ota_over(&mut area));
    let mut write = OtaResource::new(&ota, Action::Write);
    let mut thing: Thing<'_, 1> = Thing::new();
    thing.add(WRITE, &mut write).unwrap();
    let out = run(&mut thing, WRITE, Some(&Value::from("not bytes"))).unwrap();
    assert_eq!(out["success"], false);
    assert_eq!(out["error"], OtaError::NotBytes.message());
    let out = run(&mut thing, WRITE, Some(&Value::Bytes(std::vec![1, 2]))).unwrap();
    assert_eq!(out["error"], OtaError::NotRunning.message());
}

#[test]
fn describe_has_no_side_effects() {
    let img = image(10);
    let mut area = [0u8; 64];
    let ota = RefCell::new(ota_over(&mut area));
    let bytes = begin_input(&img, "app").encode_to_vec();
    let params = Params::new();
    let mut out = [0u8; 128];
    let mut begin = OtaResource::new(&ota, Action::Begin);
    let mut call =
        Call::new(CallMode::DescribeOutput, Input::from_pson(&bytes).unwrap(), Output::new(&mut out), &params);
    begin.handle(&mut call).unwrap();
    assert_eq!(ota.borrow().status(), OtaStatus::Idle);
}

#[test]
fn version_resource_reports_the_numbers() {
    let mut version = Version::new("3.10.7");
    let mut thing: Thing<'_, 1> = Thing::new();
    thing[Version::PATH] >>= &mut version;
    let out = run(&mut thing, Version::PATH, None).unwrap();
    assert_eq!(out, crate::pson!({"major": 3u32, "minor": 10u32, "patch": 7u32, "version": "3.10.7"}));
    assert_eq!(Version::new("").major, 0);
    assert_eq!((Version::new("2").major, Version::new("2").minor), (2, 0));
}

#[test]
fn block_size_follows_the_receive_buffer() {
    assert_eq!(block_size_for(0), 64);
    assert_eq!(block_size_for(1024 + WRITE_FRAME_OVERHEAD), 1024);
    assert_eq!(block_size_for(1 << 20), 8192);
}
