//! Runs one workload of the bench N times, for instruction counts under
//! `valgrind --tool=callgrind` (see `count.sh`, which runs it at two N and divides the
//! difference, so start-up costs cancel out).
//!
//! `pson_count OP N`; `pson_count list` prints the operations.

use std::hint::black_box;
use std::process::ExitCode;

use pson_vs_c::*;

const OPS: &[&str] = &[
    "payload/encode/c",
    "payload/encode/hand",
    "payload/encode/serde",
    "payload/decode/c",
    "payload/decode/walk",
    "payload/decode/serde",
    "payload/decode/validate",
    "map100/encode/c",
    "map100/encode/rust",
    "map100/decode/c",
    "map100/decode/rust",
    "array100/encode/c",
    "array100/encode/rust",
    "array100/decode/c",
    "array100/decode/rust",
];

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
    let mut acc = 0u64;
    for _ in 0..n {
        let out = match op.as_str() {
            "payload/encode/hand" => encode_hand(black_box(&PAYLOAD), &mut buf).unwrap() as u64,
            "payload/encode/serde" => encode_serde(black_box(&PAYLOAD), &mut buf).unwrap() as u64,
            "payload/decode/walk" => decode_map_walk(black_box(&payload_bytes)).unwrap(),
            "payload/decode/serde" => decode_serde(black_box(&payload_bytes)).unwrap(),
            "payload/decode/validate" => decode_validate(black_box(&payload_bytes)).unwrap() as u64,
            "map100/encode/rust" => encode_map(black_box(&map), &mut buf).unwrap() as u64,
            "map100/decode/rust" => decode_map_walk(black_box(&map_bytes)).unwrap(),
            "array100/encode/rust" => encode_array(black_box(&array), &mut buf).unwrap() as u64,
            "array100/decode/rust" => decode_array_walk(black_box(&array_bytes)).unwrap(),
            #[cfg(c_pson)]
            "payload/encode/c" => c::encode_payload(black_box(&PAYLOAD), &mut buf).unwrap() as u64,
            #[cfg(c_pson)]
            "payload/decode/c" => c::decode_map_walk(black_box(&payload_bytes)).unwrap(),
            #[cfg(c_pson)]
            "map100/encode/c" => c::encode_map(black_box(&map), &keys, &mut buf).unwrap() as u64,
            #[cfg(c_pson)]
            "map100/decode/c" => c::decode_map_walk(black_box(&map_bytes)).unwrap(),
            #[cfg(c_pson)]
            "array100/encode/c" => c::encode_array(black_box(&array), &mut buf).unwrap() as u64,
            #[cfg(c_pson)]
            "array100/decode/c" => c::decode_array_walk(black_box(&array_bytes)).unwrap(),
            other => {
                eprintln!("unknown operation {other}; `pson_count list` prints them");
                return ExitCode::FAILURE;
            }
        };
        acc = acc.wrapping_add(black_box(out));
        black_box(&mut buf);
    }
    println!("{op} x{n}: {acc}");
    ExitCode::SUCCESS
}
