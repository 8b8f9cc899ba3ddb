//! The rounds timer's parts: one monomorphised loop per row ([`loop_n`]), and the
//! interleaved rounds that time every row, the empty loop among them ([`run_rounds`]).
//!
//! Each row's loop is its own function: the operation inlined into it, its inputs and its
//! output buffer passed through `black_box` on every iteration and its result folded through
//! `black_box`, so nothing of the operation is hoisted out of the loop. The `empty` row is
//! the same loop around an operation that only returns the buffer's length: what every row
//! pays besides its operation. A row called through a function pointer is one indirect call
//! per round, not per iteration.
//!
//! `src/bin/pson_rounds.rs` times our rows with it; the timer outside the repository
//! (docs/benchmarks.md) adds the C rows, each a loop of the same shape around one direct
//! call of the C wrapper.

use std::hint::black_box;

use crate::count::Inputs;

/// One row: runs its operation `n` times on the inputs and the buffer, returns the fold.
pub type LoopFn = fn(&Inputs, &mut [u8], u64) -> u64;

/// The timed loop of one operation: `op` is inlined into this function's copy for it.
#[inline(never)]
pub fn loop_n<F: Fn(&Inputs, &mut [u8]) -> u64>(op: F, inputs: &Inputs, buf: &mut [u8], n: u64) -> u64 {
    let mut acc = 0u64;
    for _ in 0..n {
        let out = op(black_box(inputs), black_box(&mut *buf));
        acc = acc.wrapping_add(black_box(out));
    }
    acc
}

/// The empty row: [`loop_n`] around an operation that only returns the buffer's length.
#[inline(never)]
pub fn empty_loop(inputs: &Inputs, buf: &mut [u8], n: u64) -> u64 {
    loop_n(|_, buf| buf.len() as u64, inputs, buf, n)
}

/// The times of every row in every round, ns per iteration.
#[derive(Debug)]
pub struct Times {
    /// The rows' names, in the order given.
    pub rows: Vec<String>,
    /// `ns[row][round]`.
    pub ns: Vec<Vec<f64>>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs every row `iters` times per round, `rounds` rounds, the order rotated by one each
/// round, each run timed by `clock` (ns); a warm-up of every row first.
pub fn run_rounds(rows: &[(&str, LoopFn)], inputs: &Inputs, rounds: usize, iters: u64, clock: fn() -> u64) -> Times {
    let mut buf = vec![0u8; 1 << 20];
    let mut ns = vec![Vec::with_capacity(rounds); rows.len()];
    let mut sink = 0u64;
    for _ in 0..10 {
        for (_, run) in rows {
            sink = sink.wrapping_add(run(inputs, &mut buf, iters / 10 + 1));
        }
    }
    for r in 0..rounds {
        for k in 0..rows.len() {
            let i = (k + r) % rows.len();
            let t = clock();
            sink = sink.wrapping_add(rows[i].1(inputs, &mut buf, iters));
            ns[i].push((clock() - t) as f64 / iters as f64);
        }
    }
    black_box(sink);
    Times { rows: rows.iter().map(|(name, _)| (*name).to_owned()).collect(), ns }
}

impl Times {
    fn index(&self, row: &str) -> usize {
        self.rows.iter().position(|r| r == row).unwrap_or_else(|| panic!("no row {row}"))
    }

    /// Per round: the row's time less the `empty` row's time of the same round.
    pub fn net(&self, row: &str) -> Vec<f64> {
        let (i, e) = (self.index(row), self.index("empty"));
        self.ns[i].iter().zip(&self.ns[e]).map(|(a, b)| a - b).collect()
    }

    /// Prints per row the median raw time and the median net of the empty loop (ns per
    /// iteration), and, against the row `base(row)` if it has one, for raw and net each the
    /// median of the per-round ratios and the ratio of the medians.
    pub fn print(&self, base: impl Fn(&str) -> Option<&'static str>) {
        println!(
            "{:<24} {:>8} {:>8} {:>8} | {:>10} {:>9} | {:>10} {:>9}",
            "row", "raw ns", "min ns", "net ns", "raw r.med", "raw m/m", "net r.med", "net m/m"
        );
        for (i, row) in self.rows.iter().enumerate() {
            let raw = &self.ns[i];
            let min = raw.iter().copied().fold(f64::INFINITY, f64::min);
            let net = self.net(row);
            let (raw_med, net_med) = (median(raw.clone()), median(net.clone()));
            print!("{row:<24} {raw_med:>8.2} {min:>8.2} {net_med:>8.2}");
            match base(row) {
                Some(b) => {
                    let (braw, bnet) = (&self.ns[self.index(b)], self.net(b));
                    let rr = median(raw.iter().zip(braw).map(|(a, c)| a / c).collect());
                    let nr = median(net.iter().zip(&bnet).map(|(a, c)| a / c).collect());
                    let rm = raw_med / median(braw.clone());
                    let nm = net_med / median(bnet);
                    println!(" | {rr:>10.3} {rm:>9.3} | {nr:>10.3} {nm:>9.3}");
                }
                None => println!(),
            }
        }
    }
}
