//! Runs one workload of the bench N times, for instruction counts under
//! `valgrind --tool=callgrind` (see `count.sh`, which runs it at two N and divides the
//! difference, so start-up costs cancel out).
//!
//! `pson_count OP N`; `pson_count list` prints the operations.

use std::hint::black_box;
use std::process::ExitCode;

use pson_vs_c::*;

const PAYLOAD_OPS: &[&str] = &[
    "noop",
    "payload/encode/c",
    "payload/encode/hand",
    "payload/encode/serde",
    "payload/decode/c",
    "payload/decode/reader",
    "payload/decode/walk",
    "payload/decode/serde",
    "payload/decode/validate",
];

/// The map and array rows: `map{N}/…` and `array{N}/…` for every size.
const SCALING_OPS: &[&str] = &["encode/c", "encode/rust", "decode/c", "decode/reader", "decode/walk"];

fn all_ops() -> Vec<String> {
    let mut ops: Vec<String> = PAYLOAD_OPS.iter().map(|s| s.to_string()).collect();
    for size in SCALING_SIZES {
        for kind in ["map", "array"] {
            ops.extend(SCALING_OPS.iter().map(|op| format!("{kind}{size}/{op}")));
        }
    }
    ops
}

/// The inputs, made once before the loop.
struct Data<'a> {
    payload: &'a [u8],
    map: &'a MapData,
    map_bytes: &'a [u8],
    array: &'a [u64],
    array_bytes: &'a [u8],
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("list") {
        all_ops().iter().for_each(|op| println!("{op}"));
        return ExitCode::SUCCESS;
    }
    let (Some(op), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: pson_count OP N | pson_count list");
        return ExitCode::FAILURE;
    };
    if op.ends_with("/c") && !C_CODEC {
        eprintln!("{op}: the C codec is not built in; set THINGER_C_PSON_DIR (see build.rs)");
        return ExitCode::FAILURE;
    }
    let mut buf = vec![0u8; 1 << 20];
    let payload_bytes = {
        let n = encode_hand(&PAYLOAD, &mut buf).unwrap();
        buf[..n].to_vec()
    };
    // The size of a map/array row (`map100/...` → 100); the payload rows ignore it.
    let size: usize = op
        .split('/')
        .next()
        .map(|head| head.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(100);
    let kind = op.split('/').next().unwrap_or("").trim_end_matches(|c: char| c.is_ascii_digit()).to_owned();
    let row = op.split_once('/').map_or("", |(_, rest)| rest).to_owned();
    let map = MapData::new(size);
    let map_bytes = {
        let n = encode_map(&map, &mut buf).unwrap();
        buf[..n].to_vec()
    };
    let array = map.values.clone();
    let array_bytes = {
        let n = encode_array(&array, &mut buf).unwrap();
        buf[..n].to_vec()
    };
    #[cfg(c_pson)]
    let keys = c::CKeys::new(&map);
    let data =
        Data { payload: &payload_bytes, map: &map, map_bytes: &map_bytes, array: &array, array_bytes: &array_bytes };
    #[cfg(c_pson)]
    let keys = &keys;
    // Chosen once: the timed loop is one indirect call per iteration, for every operation.
    let key = if kind == "map" || kind == "array" { format!("{kind}/{row}") } else { op.clone() };
    let run: &dyn Fn(&Data<'_>, &mut [u8]) -> u64 = match key.as_str() {
        "noop" => &|_, buf| buf.len() as u64,
        "payload/encode/hand" => &|_, buf| encode_hand(black_box(&PAYLOAD), buf).unwrap() as u64,
        "payload/encode/serde" => &|_, buf| encode_serde(black_box(&PAYLOAD), buf).unwrap() as u64,
        "payload/decode/walk" => &|d, _| decode_map_walk(black_box(d.payload)).unwrap(),
        "payload/decode/serde" => &|d, _| decode_serde(black_box(d.payload)).unwrap(),
        "payload/decode/validate" => &|d, _| decode_validate(black_box(d.payload)).unwrap() as u64,
        "map/encode/rust" => &|d, buf| encode_map(black_box(d.map), buf).unwrap() as u64,
        "map/decode/walk" => &|d, _| decode_map_walk(black_box(d.map_bytes)).unwrap(),
        "map/decode/reader" => &|d, _| read_map(black_box(d.map_bytes)).unwrap(),
        "payload/decode/reader" => &|d, _| read_map(black_box(d.payload)).unwrap(),
        "array/decode/reader" => &|d, _| read_array(black_box(d.array_bytes)).unwrap(),
        "array/encode/rust" => &|d, buf| encode_array(black_box(d.array), buf).unwrap() as u64,
        "array/decode/walk" => &|d, _| decode_array_walk(black_box(d.array_bytes)).unwrap(),
        #[cfg(c_pson)]
        "payload/encode/c" => &|_, buf| c::encode_payload(black_box(&PAYLOAD), buf).unwrap() as u64,
        #[cfg(c_pson)]
        "payload/decode/c" => &|d, _| c::decode_map_walk(black_box(d.payload)).unwrap(),
        #[cfg(c_pson)]
        "map/encode/c" => &|d, buf| c::encode_map(black_box(d.map), keys, buf).unwrap() as u64,
        #[cfg(c_pson)]
        "map/decode/c" => &|d, _| c::decode_map_walk(black_box(d.map_bytes)).unwrap(),
        #[cfg(c_pson)]
        "array/encode/c" => &|d, buf| c::encode_array(black_box(d.array), buf).unwrap() as u64,
        #[cfg(c_pson)]
        "array/decode/c" => &|d, _| c::decode_array_walk(black_box(d.array_bytes)).unwrap(),
        other => {
            eprintln!("unknown operation {other}; `pson_count list` prints them");
            return ExitCode::FAILURE;
        }
    };
    let run = black_box(run);
    let mut acc = 0u64;
    for _ in 0..n {
        acc = acc.wrapping_add(black_box(run(&data, &mut buf)));
    }
    println!("{op} x{n}: {acc}");
    ExitCode::SUCCESS
}
