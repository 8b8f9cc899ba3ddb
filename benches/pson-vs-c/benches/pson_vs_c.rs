//! thinger-core's PSON against the official standalone C codec, in one run.
//!
//! ```text
//! THINGER_C_PSON_DIR=/path/to/iotmp-benchmarks/encoding/pson/main \
//!     cargo bench -p pson-vs-c --bench pson_vs_c
//! ```
//!
//! Without `THINGER_C_PSON_DIR` the C codec is not compiled and this bench measures nothing
//! (it says so and exits). Before measuring it checks that both codecs write the same bytes
//! and that both decoders fold the same checksum. Results and method: docs/benchmarks.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
#[cfg(c_pson)]
use pson_vs_c::*;

#[cfg(c_pson)]
fn check(map_sizes: &[usize]) {
    let mut ours = vec![0u8; 1 << 20];
    let mut theirs = vec![0u8; 1 << 20];
    let n = encode_hand(&PAYLOAD, &mut ours).unwrap();
    let m = c::encode_payload(&PAYLOAD, &mut theirs).unwrap();
    assert_eq!(&ours[..n], &theirs[..m], "payload bytes differ between the codecs");
    assert_eq!(encode_serde(&PAYLOAD, &mut theirs).unwrap(), n);
    assert_eq!(&ours[..n], &theirs[..n], "serde and hand-written bytes differ");
    assert_eq!(n, 55);
    assert_eq!(decode_map_walk(&ours[..n]).unwrap(), c::decode_map_walk(&ours[..n]).unwrap());
    assert_eq!(read_map(&ours[..n]).unwrap(), c::decode_map_walk(&ours[..n]).unwrap());
    for &size in map_sizes {
        let data = MapData::new(size);
        let keys = c::CKeys::new(&data);
        let n = encode_map(&data, &mut ours).unwrap();
        let m = c::encode_map(&data, &keys, &mut theirs).unwrap();
        assert_eq!(&ours[..n], &theirs[..m], "map of {size}: bytes differ");
        assert_eq!(decode_map_walk(&ours[..n]).unwrap(), c::decode_map_walk(&ours[..n]).unwrap());
        assert_eq!(read_map(&ours[..n]).unwrap(), c::decode_map_walk(&ours[..n]).unwrap());
        let n = encode_array(&data.values, &mut ours).unwrap();
        let m = c::encode_array(&data.values, &mut theirs).unwrap();
        assert_eq!(&ours[..n], &theirs[..m], "array of {size}: bytes differ");
        assert_eq!(decode_array_walk(&ours[..n]).unwrap(), c::decode_array_walk(&ours[..n]).unwrap());
        assert_eq!(read_array(&ours[..n]).unwrap(), c::decode_array_walk(&ours[..n]).unwrap());
    }
    println!("pson-vs-c: both codecs write the same bytes and read the same values");
}

#[cfg(c_pson)]
fn benches(c: &mut Criterion) {
    let mut buf = vec![0u8; 1 << 20];
    let n = encode_hand(&PAYLOAD, &mut buf).unwrap();
    let bytes = buf[..n].to_vec();

    let mut g = c.benchmark_group("payload/encode");
    g.bench_function("c", |b| b.iter(|| c::encode_payload(black_box(&PAYLOAD), &mut buf).unwrap()));
    g.bench_function("hand", |b| b.iter(|| encode_hand(black_box(&PAYLOAD), &mut buf).unwrap()));
    g.bench_function("serde", |b| b.iter(|| encode_serde(black_box(&PAYLOAD), &mut buf).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("payload/decode");
    g.bench_function("c", |b| b.iter(|| c::decode_map_walk(black_box(&bytes)).unwrap()));
    g.bench_function("reader", |b| b.iter(|| read_map(black_box(&bytes)).unwrap()));
    g.bench_function("walk", |b| b.iter(|| decode_map_walk(black_box(&bytes)).unwrap()));
    g.bench_function("serde", |b| b.iter(|| decode_serde(black_box(&bytes)).unwrap()));
    g.bench_function("validate", |b| b.iter(|| decode_validate(black_box(&bytes)).unwrap()));
    g.finish();

    for kind in ["map", "array"] {
        let mut enc = c.benchmark_group(format!("{kind}/encode"));
        for &size in &SCALING_SIZES {
            let data = MapData::new(size);
            let keys = c::CKeys::new(&data);
            enc.throughput(Throughput::Elements(size as u64));
            if kind == "map" {
                enc.bench_with_input(BenchmarkId::new("c", size), &data, |b, d| {
                    b.iter(|| c::encode_map(black_box(d), &keys, &mut buf).unwrap())
                });
                enc.bench_with_input(BenchmarkId::new("rust", size), &data, |b, d| {
                    b.iter(|| encode_map(black_box(d), &mut buf).unwrap())
                });
            } else {
                enc.bench_with_input(BenchmarkId::new("c", size), &data.values, |b, d| {
                    b.iter(|| c::encode_array(black_box(d), &mut buf).unwrap())
                });
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
                dec.bench_with_input(BenchmarkId::new("c", size), &bytes, |b, d| {
                    b.iter(|| c::decode_map_walk(black_box(d)).unwrap())
                });
                dec.bench_with_input(BenchmarkId::new("reader", size), &bytes, |b, d| {
                    b.iter(|| read_map(black_box(d)).unwrap())
                });
                dec.bench_with_input(BenchmarkId::new("walk", size), &bytes, |b, d| {
                    b.iter(|| decode_map_walk(black_box(d)).unwrap())
                });
            } else {
                dec.bench_with_input(BenchmarkId::new("c", size), &bytes, |b, d| {
                    b.iter(|| c::decode_array_walk(black_box(d)).unwrap())
                });
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
    #[cfg(c_pson)]
    {
        check(&SCALING_SIZES);
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion);
        criterion.final_summary();
    }
    #[cfg(not(c_pson))]
    {
        let _ = (black_box(pson_vs_c::C_CODEC), BenchmarkId::new("", 0), Throughput::Elements(0), Criterion::default);
        println!(
            "pson-vs-c: not measured: the C codec was not built. Set THINGER_C_PSON_DIR to the folder \
             holding pson_encode.h and pson_decode.h (encoding/pson/main of thinger-io/iotmp-benchmarks) \
             and run again; docs/benchmarks.md has the procedure."
        );
    }
}
