//! Sundial over the simulator: after a partition long enough for each side
//! to declare the other dead, healing the network merges the views again.

use std::time::Duration;

use shen_rings::stack::{StackConfig, SundialSettings};
use shen_rings::sundial::Sundial;
use shen_transport_memory::{stack_factory, NetConfig, Sim, SimConfig};

fn live_views(sim: &Sim<shen_rings::stack::ShenEvent<u64>>, n: u64) -> Vec<usize> {
    (0..n)
        .map(|i| {
            sim.node(i)
                .and_then(|x| x.ring::<Sundial<u64>>())
                .map_or(0, |s| s.live_count())
        })
        .collect()
}

#[test]
fn two_islands_that_declared_each_other_dead_merge_after_healing() {
    for seed in 1..=5 {
        let stack = StackConfig {
            sundial: Some(SundialSettings::default()),
            ..StackConfig::default()
        };
        let config = SimConfig {
            seed,
            nodes: 6,
            network: NetConfig::default(),
            ..SimConfig::default()
        };
        let mut sim = Sim::new(config, stack_factory(stack)).unwrap();
        sim.run_for(Duration::from_secs(10));
        assert_eq!(live_views(&sim, 6), vec![6; 6], "seed {seed}: formed");
        // Two islands of three, long enough for every suspicion to be
        // confirmed on both sides.
        sim.partition(vec![vec![0, 1, 2], vec![3, 4, 5]]).unwrap();
        sim.run_for(Duration::from_secs(60));
        assert_eq!(live_views(&sim, 6), vec![3; 6], "seed {seed}: split");
        sim.heal().unwrap();
        sim.run_for(Duration::from_secs(30));
        assert_eq!(
            live_views(&sim, 6),
            vec![6; 6],
            "seed {seed}: the islands merged after healing"
        );
    }
}
