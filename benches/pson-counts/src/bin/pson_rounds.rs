//! Our payload rows in the rounds timer ([`pson_counts::rounds`]): each row its own
//! monomorphised loop, the empty loop among them, interleaved rounds; per row the median
//! raw time and the median net of the empty loop.
//!
//! `pson_rounds [ROUNDS [ITERS]]` (default 301 rounds of 100,000 iterations per row). The
//! clock is the monotonic wall clock (`std::time::Instant`; this crate forbids `unsafe`, so
//! no thread CPU clock): a run shares the machine with whatever else runs, and the median
//! over the rounds is what stands for a row. The timer outside the repository
//! (docs/benchmarks.md) adds the C rows and times by the thread's CPU time.

use std::sync::OnceLock;
use std::time::Instant;

use pson_counts::count::Inputs;
use pson_counts::rounds::{LoopFn, empty_loop, run_rounds};
use pson_counts::{timed_fn, with_ops};

with_ops!(timed_fn);

/// The rows: the empty loop, then the payload rows.
pub const ROWS: &[&str] = &[
    "empty",
    "payload/encode/hand",
    "payload/encode/serde",
    "payload/decode/reader",
    "payload/decode/serde",
    "payload/decode/walk",
];

fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(301);
    let iters: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rows: Vec<(&str, LoopFn)> = ROWS
        .iter()
        .map(|&r| (r, if r == "empty" { empty_loop as LoopFn } else { timed(r).expect("a row of with_ops") }))
        .collect();
    let inputs = Inputs::for_op("payload");
    println!("load average at start: {}; {rounds} rounds of {iters} iterations per row", load());
    let times = run_rounds(&rows, &inputs, rounds, iters, clock);
    println!("load average at end: {}", load());
    times.print(|_| None);
}
