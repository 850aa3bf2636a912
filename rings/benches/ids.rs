//! Benchmarks of the ID sources: Obelisk (over the in-memory cell, so the
//! figure is the hot path plus one cheap reservation per 2^20 values) and
//! the Scarab generator, encoder and parser.
//!
//! Run with `cargo bench -p shen-rings --bench ids`. Throughput is reported
//! in elements (IDs) per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shen_rings::obelisk::{MemoryCell, Obelisk, ObeliskConfig};
use shen_rings::scarab::{ScarabGenerator, ScarabId, EPOCH_UNIX_MS};

/// IDs produced per measured iteration, so the per-iteration overhead of the
/// harness does not dominate a few-nanosecond operation.
const BATCH: u64 = 1_000;

fn obelisk(c: &mut Criterion) {
    let mut group = c.benchmark_group("obelisk");
    group.throughput(Throughput::Elements(BATCH));

    // `black_box(&mut o)` makes every call reload and store the counter
    // state, as a caller that does other work between IDs would.
    let mut o = Obelisk::open(MemoryCell::new(), ObeliskConfig::default()).unwrap();
    group.bench_function("next", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(black_box(&mut o).next().unwrap());
            }
        })
    });

    let mut o = Obelisk::open(MemoryCell::new(), ObeliskConfig::default()).unwrap();
    group.bench_function("next_batch_1000", |b| {
        b.iter(|| black_box(o.next_batch(BATCH).unwrap()))
    });
    group.finish();
}

fn scarab(c: &mut Criterion) {
    let mut group = c.benchmark_group("scarab");
    group.throughput(Throughput::Elements(BATCH));

    // A fixed clock reading: after 8192 IDs every call borrows the next
    // millisecond, the generator's busiest path.
    let now = EPOCH_UNIX_MS + 1_000_000;
    let mut g = ScarabGenerator::new(7).unwrap();
    group.bench_function("next", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(black_box(&mut g).next(black_box(now)).unwrap());
            }
        })
    });

    let ids: Vec<ScarabId> = (0..BATCH)
        .map(|i| ScarabId::from_u64(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    group.bench_function("display", |b| {
        b.iter(|| {
            for id in &ids {
                black_box(black_box(id).to_base32());
            }
        })
    });

    let strings: Vec<String> = ids.iter().map(ToString::to_string).collect();
    group.bench_function("parse", |b| {
        b.iter(|| {
            for s in &strings {
                black_box(black_box(s.as_str()).parse::<ScarabId>().unwrap());
            }
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = obelisk, scarab
}
criterion_main!(benches);
