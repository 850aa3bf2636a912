//! Ankh Ring lookups side by side with the `hashring` crate (the usual
//! choice), same keys, same node counts, 160 virtual nodes per node.
//!
//! `cargo bench -p shen-rings --bench ankh`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hashring::HashRing;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shen_rings::ankh::{AnkhConfig, AnkhRing, DEFAULT_WEIGHT, MAX_RF};

const VNODES: u32 = 160;
const KEYS: usize = 4096;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct VNode {
    node: u32,
    vnode: u32,
}

fn keys() -> Vec<[u8; 16]> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    (0..KEYS)
        .map(|_| {
            let mut k = [0u8; 16];
            rng.fill_bytes(&mut k);
            k
        })
        .collect()
}

fn shen_ring(n: u32) -> AnkhRing<u64> {
    let mut r = AnkhRing::new(AnkhConfig::default()).expect("default config is valid");
    for i in 0..n {
        r.join(u64::from(i), DEFAULT_WEIGHT).expect("fresh node");
    }
    r
}

fn hash_ring(n: u32) -> HashRing<VNode> {
    let mut r = HashRing::new();
    for node in 0..n {
        for vnode in 0..VNODES {
            r.add(VNode { node, vnode });
        }
    }
    r
}

fn bench(c: &mut Criterion) {
    let ks = keys();
    for &n in &[10u32, 100, 1000] {
        let shen = shen_ring(n);
        let hr = hash_ring(n);

        let mut g = c.benchmark_group("locate");
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("shen", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(shen.locate(black_box(&ks[i])))
            })
        });
        g.bench_with_input(BenchmarkId::new("hashring", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(hr.get(black_box(&ks[i])))
            })
        });
        g.finish();

        let mut g = c.benchmark_group("replicas_rf3");
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("shen", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % KEYS;
                let mut out = [0u64; MAX_RF];
                let mut k = 0;
                for id in shen.replicas(black_box(&ks[i]), 3) {
                    out[k] = *id;
                    k += 1;
                }
                black_box((out, k))
            })
        });
        // hashring's replica call returns the next vnodes (possibly the same
        // physical node) in a fresh Vec after cloning the whole ring; it is
        // the closest call the crate offers.
        g.bench_with_input(BenchmarkId::new("hashring", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(hr.get_with_replicas(black_box(&ks[i]), 2))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
