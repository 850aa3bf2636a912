//! Obelisk over the real, fsyncing `FileCell`: ids per second including the
//! durable range reservations (`cargo bench -p shen-node --bench obelisk_file`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shen_rings::obelisk::{Obelisk, ObeliskConfig};
use shen_storage::FileCell;

const IDS_PER_ITER: u64 = 1 << 20;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("obelisk_filecell");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(20);
    g.throughput(Throughput::Elements(IDS_PER_ITER));
    for range in [1u64 << 14, 1 << 20] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cell = FileCell::open(dir.path()).expect("open cell");
        let mut o = Obelisk::open(cell, ObeliskConfig::with_range(range)).expect("open obelisk");
        g.bench_with_input(BenchmarkId::new("range", range), &range, |b, _| {
            b.iter(|| {
                let mut last = 0;
                for _ in 0..IDS_PER_ITER {
                    last = black_box(&mut o).next().expect("next id");
                }
                black_box(last)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
