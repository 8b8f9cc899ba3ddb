//! Runs one workload of the bench N times, for instruction counts under
//! `valgrind --tool=callgrind` (see `count.sh`, which runs it at two N and divides the
//! difference, so start-up costs cancel out).
//!
//! `pson_count OP N`; `pson_count list` prints the operations.

use std::process::ExitCode;

use pson_counts::count::{Inputs, all_ops, op_key, ours, run_n};

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
    // Chosen once, before the inputs: the timed loop is one indirect call per iteration.
    let Some(run) = ours(&op_key(op)) else {
        eprintln!("unknown operation {op}; `pson_count list` prints them");
        return ExitCode::FAILURE;
    };
    let inputs = Inputs::for_op(op);
    let acc = run_n(run, &inputs, n);
    println!("{op} x{n}: {acc}");
    ExitCode::SUCCESS
}
