//! Simulator throughput: simulated messages delivered per second of wall
//! time, 1,000 nodes exchanging small messages (the Scatter load), with the
//! trace hashed (the cheapest mode that still proves determinism) and kept
//! in a bounded ring buffer.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shen_transport_memory::loadgen::scatter_factory;
use shen_transport_memory::{NetConfig, Sim, SimConfig, TraceMode};

const NODES: u64 = 1_000;
const BATONS: u32 = 8;
const DELIVERIES: u64 = 200_000;

fn world(trace: TraceMode) -> Sim<shen_transport_memory::loadgen::ScatterEvent> {
    Sim::new(
        SimConfig {
            seed: 1,
            nodes: NODES,
            network: NetConfig::default(),
            trace,
        },
        scatter_factory(NODES, BATONS),
    )
    .expect("valid config")
}

fn run(sim: &mut Sim<shen_transport_memory::loadgen::ScatterEvent>) {
    while sim.traffic().delivered < DELIVERIES && sim.step() {}
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_1000_nodes");
    g.throughput(Throughput::Elements(DELIVERIES));
    g.sample_size(10);
    for (name, mode) in [
        ("hash_only", TraceMode::HashOnly),
        ("bounded_64k", TraceMode::Bounded(65_536)),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(|| world(mode), |mut s| run(&mut s), BatchSize::LargeInput)
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
