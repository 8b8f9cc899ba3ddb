//! Runs one workload of the bench N times, for instruction counts under
//! `valgrind --tool=callgrind` (see `count.sh`, which runs it at two N and divides the
//! difference, so start-up costs cancel out).
//!
//! `pson_count OP N`; `pson_count list` prints the operations.

use std::hint::black_box;
use std::process::ExitCode;

use pson_vs_c::*;

const OPS: &[&str] = &[
    "noop",
    "payload/encode/c",
    "payload/encode/hand",
    "payload/encode/serde",
    "payload/decode/c",
    "payload/decode/reader",
    "payload/decode/walk",
    "payload/decode/serde",
    "payload/decode/validate",
    "map100/encode/c",
    "map100/encode/rust",
    "map100/decode/c",
    "map100/decode/reader",
    "map100/decode/walk",
    "array100/encode/c",
    "array100/encode/rust",
    "array100/decode/c",
    "array100/decode/reader",
    "array100/decode/walk",
];

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
        OPS.iter().for_each(|op| println!("{op}"));
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
    let mut buf = vec![0u8; 1 << 16];
    let payload_bytes = {
        let n = encode_hand(&PAYLOAD, &mut buf).unwrap();
        buf[..n].to_vec()
    };
    let map = MapData::new(100);
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
    let data = Data { payload: &payload_bytes, map: &map, map_bytes: &map_bytes, array: &array, array_bytes: &array_bytes };
    #[cfg(c_pson)]
    let keys = &keys;
    // Chosen once: the timed loop is one indirect call per iteration, for every operation.
    let run: &dyn Fn(&Data<'_>, &mut [u8]) -> u64 = match op.as_str() {
        "noop" => &|_, buf| buf.len() as u64,
        "payload/encode/hand" => &|_, buf| encode_hand(black_box(&PAYLOAD), buf).unwrap() as u64,
        "payload/encode/serde" => &|_, buf| encode_serde(black_box(&PAYLOAD), buf).unwrap() as u64,
        "payload/decode/walk" => &|d, _| decode_map_walk(black_box(d.payload)).unwrap(),
        "payload/decode/serde" => &|d, _| decode_serde(black_box(d.payload)).unwrap(),
        "payload/decode/validate" => &|d, _| decode_validate(black_box(d.payload)).unwrap() as u64,
        "map100/encode/rust" => &|d, buf| encode_map(black_box(d.map), buf).unwrap() as u64,
        "map100/decode/walk" => &|d, _| decode_map_walk(black_box(d.map_bytes)).unwrap(),
        "map100/decode/reader" => &|d, _| read_map(black_box(d.map_bytes)).unwrap(),
        "payload/decode/reader" => &|d, _| read_map(black_box(d.payload)).unwrap(),
        "array100/decode/reader" => &|d, _| read_array(black_box(d.array_bytes)).unwrap(),
        "array100/encode/rust" => &|d, buf| encode_array(black_box(d.array), buf).unwrap() as u64,
        "array100/decode/walk" => &|d, _| decode_array_walk(black_box(d.array_bytes)).unwrap(),
        #[cfg(c_pson)]
        "payload/encode/c" => &|_, buf| c::encode_payload(black_box(&PAYLOAD), buf).unwrap() as u64,
        #[cfg(c_pson)]
        "payload/decode/c" => &|d, _| c::decode_map_walk(black_box(d.payload)).unwrap(),
        #[cfg(c_pson)]
        "map100/encode/c" => &|d, buf| c::encode_map(black_box(d.map), keys, buf).unwrap() as u64,
        #[cfg(c_pson)]
        "map100/decode/c" => &|d, _| c::decode_map_walk(black_box(d.map_bytes)).unwrap(),
        #[cfg(c_pson)]
        "array100/encode/c" => &|d, buf| c::encode_array(black_box(d.array), buf).unwrap() as u64,
        #[cfg(c_pson)]
        "array100/decode/c" => &|d, _| c::decode_array_walk(black_box(d.array_bytes)).unwrap(),
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
