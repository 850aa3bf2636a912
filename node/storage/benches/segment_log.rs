//! The durable partition log (`SegmentLog`) on this machine's disk:
//! 256-byte records appended with an fsync (fdatasync) every record, every
//! 64 or 1,024 records ("per batch"), or never
//! (`cargo bench -p shen-node --bench segment_log`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shen_rings::logstore::LogStore;
use shen_storage::SegmentLog;

const RECORDS_PER_ITER: u64 = 4_096;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment_log_append_256B");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(4));
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECORDS_PER_ITER));
    let record = [0x5au8; 256];
    // 0 = never sync.
    for every in [1u64, 64, 1_024, 0] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = SegmentLog::open(dir.path()).expect("open log");
        let name = if every == 0 {
            "sync_never".to_string()
        } else {
            format!("sync_every_{every}")
        };
        g.bench_with_input(
            BenchmarkId::new(name, RECORDS_PER_ITER),
            &every,
            |b, &every| {
                b.iter(|| {
                    for i in 0..RECORDS_PER_ITER {
                        black_box(log.append(&record).expect("append"));
                        if every != 0 && (i + 1) % every == 0 {
                            log.sync().expect("sync");
                        }
                    }
                    if every != 0 {
                        log.sync().expect("sync");
                    }
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
