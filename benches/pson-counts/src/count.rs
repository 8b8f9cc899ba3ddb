//! The instruction counter's parts: the operations, their inputs, and the loop that runs one
//! of them N times (`src/bin/pson_count.rs`; `count.sh` runs it under callgrind at two N and
//! divides the difference, so start-up and set-up cancel out).
//!
//! They are public so that a counter built outside this repository (the C codec's side of
//! docs/benchmarks.md) runs our rows through the same code and the same loop.

use std::hint::black_box;

use crate::{MapData, PAYLOAD_BYTES, SCALING_SIZES, encode_array, encode_map};

/// One operation: reads the inputs, may write into the buffer, returns a number that the
/// loop folds (so nothing is optimised away).
pub type Op<'a> = &'a dyn Fn(&Inputs, &mut [u8]) -> u64;

/// The payload rows (`noop` is the harness alone: the loop and one indirect call).
pub const PAYLOAD_OPS: &[&str] = &[
    "noop",
    "payload/encode/hand",
    "payload/encode/serde",
    "payload/encode/hand-f64",
    "payload/decode/reader",
    "payload/decode/walk",
    "payload/decode/serde",
    "payload/decode/validate",
];

/// The map and array rows: `map{N}/…` and `array{N}/…` for every size of [`SCALING_SIZES`].
pub const SCALING_OPS: &[&str] = &["encode/rust", "decode/reader", "decode/walk"];

/// Every operation, in the order `pson_count list` prints them.
pub fn all_ops() -> Vec<String> {
    let mut ops: Vec<String> = PAYLOAD_OPS.iter().map(|s| s.to_string()).collect();
    for size in SCALING_SIZES {
        for kind in ["map", "array"] {
            ops.extend(SCALING_OPS.iter().map(|op| format!("{kind}{size}/{op}")));
        }
    }
    ops
}

/// The inputs of every operation, made once before the loop.
#[derive(Debug)]
pub struct Inputs {
    /// The payload's bytes ([`PAYLOAD_BYTES`]).
    pub payload: Vec<u8>,
    /// The map rows' keys and values.
    pub map: MapData,
    /// That map, encoded.
    pub map_bytes: Vec<u8>,
    /// The array rows' values.
    pub array: Vec<u64>,
    /// That array, encoded.
    pub array_bytes: Vec<u8>,
}

impl Inputs {
    /// The inputs for `op`: a map/array row's size comes from its name (`map100/…` → 100);
    /// the payload rows use 100 (unread).
    pub fn for_op(op: &str) -> Self {
        let size: usize = op
            .split('/')
            .next()
            .map(|head| head.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(100);
        let mut buf = vec![0u8; 1 << 20];
        let map = MapData::new(size);
        let map_bytes = {
            let n = encode_map(&map, &mut buf).expect("map fits");
            buf[..n].to_vec()
        };
        let array = map.values.clone();
        let array_bytes = {
            let n = encode_array(&array, &mut buf).expect("array fits");
            buf[..n].to_vec()
        };
        Inputs { payload: PAYLOAD_BYTES.to_vec(), map, map_bytes, array, array_bytes }
    }
}

/// The name an operation is looked up by: the size dropped from map/array rows
/// (`map100/encode/rust` → `map/encode/rust`), the payload rows as they are.
pub fn op_key(op: &str) -> String {
    let head = op.split('/').next().unwrap_or("");
    let kind = head.trim_end_matches(|c: char| c.is_ascii_digit());
    match (kind, op.split_once('/')) {
        ("map" | "array", Some((_, row))) => format!("{kind}/{row}"),
        _ => op.to_owned(),
    }
}

/// The table of our operations, one `"key" => closure` per row, handed to the macro `$m`:
/// [`ours`] (the counter's rows) is made from it here, and the rounds timer's rows
/// (`src/bin/pson_rounds.rs`, and the timer outside the repository) from the same closures,
/// so both time exactly what is counted.
#[macro_export]
macro_rules! with_ops {
    ($m:ident) => {
        $m! {
            "noop" => |_, buf| buf.len() as u64,
            "payload/encode/hand" => |_, buf| $crate::encode_hand(::std::hint::black_box(&$crate::PAYLOAD), buf).unwrap() as u64,
            "payload/encode/serde" => |_, buf| $crate::encode_serde(::std::hint::black_box(&$crate::PAYLOAD), buf).unwrap() as u64,
            "payload/encode/hand-f64" => |_, buf| $crate::encode_hand_f64(::std::hint::black_box(&$crate::PAYLOAD_F64), buf).unwrap() as u64,
            "payload/decode/walk" => |d, _| $crate::decode_map_walk(::std::hint::black_box(d.payload.as_slice())).unwrap(),
            "payload/decode/serde" => |d, _| $crate::decode_serde(::std::hint::black_box(d.payload.as_slice())).unwrap(),
            "payload/decode/validate" => |d, _| $crate::decode_validate(::std::hint::black_box(d.payload.as_slice())).unwrap() as u64,
            "map/encode/rust" => |d, buf| $crate::encode_map(::std::hint::black_box(&d.map), buf).unwrap() as u64,
            "map/decode/walk" => |d, _| $crate::decode_map_walk(::std::hint::black_box(d.map_bytes.as_slice())).unwrap(),
            "map/decode/reader" => |d, _| $crate::read_map(::std::hint::black_box(d.map_bytes.as_slice())).unwrap(),
            "payload/decode/reader" => |d, _| $crate::read_map(::std::hint::black_box(d.payload.as_slice())).unwrap(),
            "array/decode/reader" => |d, _| $crate::read_array(::std::hint::black_box(d.array_bytes.as_slice())).unwrap(),
            "array/encode/rust" => |d, buf| $crate::encode_array(::std::hint::black_box(d.array.as_slice()), buf).unwrap() as u64,
            "array/decode/walk" => |d, _| $crate::decode_array_walk(::std::hint::black_box(d.array_bytes.as_slice())).unwrap(),
        }
    };
}

macro_rules! ours_fn {
    ($($key:literal => $run:expr,)*) => {
        /// Our operation for a key of [`op_key`], or `None` if there is none.
        pub fn ours(key: &str) -> Option<Op<'static>> {
            let run: Op<'static> = match key {
                $($key => &$run,)*
                _ => return None,
            };
            Some(run)
        }
    };
}
with_ops!(ours_fn);

/// The rounds timer's rows ([`crate::rounds`]): our operations, each in its own
/// [`crate::rounds::loop_n`]. A macro, expanded in the timer's binary, so that the loops are
/// compiled there and the counter's binary (one caller per encoder, see [`crate::Payload`])
/// is not changed by them.
#[macro_export]
macro_rules! timed_fn {
    ($($key:literal => $run:expr,)*) => {
        /// Our operation for a key of [`pson_counts::count::op_key`] in its own monomorphised
        /// loop, or `None` if there is none.
        fn timed(key: &str) -> Option<$crate::rounds::LoopFn> {
            let run: $crate::rounds::LoopFn = match key {
                $($key => |d, buf, n| $crate::rounds::loop_n($run, d, buf, n),)*
                _ => return None,
            };
            Some(run)
        }
    };
}

/// Runs `run` `n` times on `inputs` with a 1 MiB output buffer: one indirect call per
/// iteration, the same for every operation. Returns the folded results.
pub fn run_n(run: Op<'_>, inputs: &Inputs, n: u64) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let run = black_box(run);
    let mut acc = 0u64;
    for _ in 0..n {
        acc = acc.wrapping_add(black_box(run(inputs, &mut buf)));
    }
    acc
}
