//! thinger-core's PSON on the workloads of the comparison with the official C codec
//! (docs/benchmarks.md), timed by criterion:
//!
//! ```text
//! cargo bench -p pson-counts --bench pson_counts
//! ```
//!
//! The inputs' bytes are checked by the crate's tests (`cargo test -p pson-counts`); the
//! payload's decode rows read [`PAYLOAD_BYTES`], so each encoder has one caller here.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use pson_counts::*;

fn benches(c: &mut Criterion) {
    let mut buf = vec![0u8; 1 << 20];
    let bytes = PAYLOAD_BYTES;

    let mut g = c.benchmark_group("payload/encode");
    g.bench_function("hand", |b| b.iter(|| encode_hand(black_box(&PAYLOAD), &mut buf).unwrap()));
    g.bench_function("serde", |b| b.iter(|| encode_serde(black_box(&PAYLOAD), &mut buf).unwrap()));
    g.bench_function("hand-f64", |b| b.iter(|| encode_hand_f64(black_box(&PAYLOAD_F64), &mut buf).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("payload/decode");
    g.bench_function("reader", |b| b.iter(|| read_map(black_box(&bytes)).unwrap()));
    g.bench_function("walk", |b| b.iter(|| decode_map_walk(black_box(&bytes)).unwrap()));
    g.bench_function("serde", |b| b.iter(|| decode_serde(black_box(&bytes)).unwrap()));
    g.bench_function("validate", |b| b.iter(|| decode_validate(black_box(&bytes)).unwrap()));
    g.finish();

    for kind in ["map", "array"] {
        let mut enc = c.benchmark_group(format!("{kind}/encode"));
        for &size in &SCALING_SIZES {
            let data = MapData::new(size);
            enc.throughput(Throughput::Elements(size as u64));
            if kind == "map" {
                enc.bench_with_input(BenchmarkId::new("rust", size), &data, |b, d| {
                    b.iter(|| encode_map(black_box(d), &mut buf).unwrap())
                });
            } else {
                enc.bench_with_input(BenchmarkId::new("rust", size), &data.values, |b, d| {
                    b.iter(|| encode_array(black_box(d), &mut buf).unwrap())
                });
            }
        }
        enc.finish();
        let mut dec = c.benchmark_group(format!("{kind}/decode"));
        for &size in &SCALING_SIZES {
            let data = MapData::new(size);
            let n = if kind == "map" { encode_map(&data, &mut buf) } else { encode_array(&data.values, &mut buf) };
            let bytes = buf[..n.unwrap()].to_vec();
            dec.throughput(Throughput::Elements(size as u64));
            if kind == "map" {
                dec.bench_with_input(BenchmarkId::new("reader", size), &bytes, |b, d| {
                    b.iter(|| read_map(black_box(d)).unwrap())
                });
                dec.bench_with_input(BenchmarkId::new("walk", size), &bytes, |b, d| {
                    b.iter(|| decode_map_walk(black_box(d)).unwrap())
                });
            } else {
                dec.bench_with_input(BenchmarkId::new("reader", size), &bytes, |b, d| {
                    b.iter(|| read_array(black_box(d)).unwrap())
                });
                dec.bench_with_input(BenchmarkId::new("walk", size), &bytes, |b, d| {
                    b.iter(|| decode_array_walk(black_box(d)).unwrap())
                });
            }
        }
        dec.finish();
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
