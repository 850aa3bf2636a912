//! Same seed, same run; snapshots round-trip; the Relay ring across 1,000
//! seeds.

mod common;

use std::time::Duration;

use common::*;
use shen_rings::Time;
use shen_transport_memory::{Fault, RestartMode, Scenario, Sim, TraceKind, TraceMode};

const RELAY: &str = r#"
name = "relay-chaos"
seed = 11
nodes = 5
duration_ms = 3000

[stack.relay]
lap_timeout_ms = 100

[network]
latency = { exponential = { min = 1, mean = 2 } }
loss = 0.01
duplicate = 0.01
reorder = 0.05
reorder_ms = 3

[[faults]]
at_ms = 300
fault = { crash = 2 }

[[faults]]
at_ms = 600
fault = { restart = { node = 2, disk = "lose_disk" } }

[[faults]]
at_ms = 900
fault = { partition = [[0, 1], [2, 3, 4]] }

[[faults]]
at_ms = 1200
fault = "heal"

[[faults]]
at_ms = 1500
fault = { pause = { node = 3, ms = 150 } }

[[faults]]
at_ms = 1700
fault = { drift = { node = 0, ppm = 200000 } }

[[faults]]
at_ms = 1800
fault = { skew = { node = 0, ms = -20 } }

[[faults]]
at_ms = 2000
fault = { hold = { from = 1, to = 2 } }

[[faults]]
at_ms = 2300
fault = { release = { from = 1, to = 2 } }

[[faults]]
at_ms = 2400
fault = { one_way = { from = [4], to = [0] } }

[[faults]]
at_ms = 2600
fault = "heal"

[[expect]]
event = "relay.lap_completed"
min = 20
"#;

fn scenario() -> Scenario {
    Scenario::load(RELAY, "relay-chaos.toml").unwrap()
}

#[test]
fn same_seed_same_trace_hash_different_seed_different_hash() {
    let s = scenario();
    let a = s.run(11, TraceMode::Full).unwrap();
    let b = s.run(11, TraceMode::Full).unwrap();
    assert_eq!(a, b);
    assert!(a.passed, "{a:?}");
    // the retention mode does not change the hash
    let c = s.run(11, TraceMode::HashOnly).unwrap();
    let d = s.run(11, TraceMode::Bounded(100)).unwrap();
    assert_eq!(a.trace_hash, c.trace_hash);
    assert_eq!(a.trace_hash, d.trace_hash);
    let mut hashes: Vec<String> = (0..20)
        .map(|seed| s.run(seed, TraceMode::HashOnly).unwrap().trace_hash)
        .collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 20, "every seed gives its own run");
}

#[test]
fn full_traces_of_two_runs_are_identical_entry_by_entry() {
    let s = scenario();
    let mut a = s.build(5, TraceMode::Full).unwrap();
    let mut b = s.build(5, TraceMode::Full).unwrap();
    a.run_until(Time::from_millis(s.duration_ms));
    b.run_until(Time::from_millis(s.duration_ms));
    assert!(a.trace().entries().len() > 1000);
    assert!(a.trace().entries().eq(b.trace().entries()));
    // every kind of entry shows up in this scenario
    let kinds = |k: &TraceKind<_>| match k {
        TraceKind::Sent { .. } => 0,
        TraceKind::Delivered { .. } => 1,
        TraceKind::Dropped { .. } => 2,
        TraceKind::Duplicated { .. } => 3,
        TraceKind::Held { .. } => 4,
        TraceKind::Released { .. } => 5,
        TraceKind::TimerFired { .. } => 6,
        TraceKind::Event { .. } => 7,
        TraceKind::NodeStarted { .. } => 8,
        TraceKind::Fault(_) => 9,
        TraceKind::SendFailed { .. } => 10,
    };
    let mut seen = [false; 11];
    for e in a.trace().entries() {
        seen[kinds(&e.kind)] = true;
    }
    assert!(seen[..10].iter().all(|s| *s), "{seen:?}");
}

#[test]
fn snapshot_then_restore_replays_the_same_future() {
    let s = scenario();
    let end = Time::from_millis(s.duration_ms);
    let mut sim = s.build(7, TraceMode::Full).unwrap();
    sim.run_until(Time::from_millis(1000));
    let snap = sim.snapshot();
    assert_eq!(snap.time(), Time::from_millis(1000));
    let kept_at_snap = sim.trace().entries().len();
    sim.run_until(end);
    let original = sim.trace_hash();
    let original_len = sim.trace().total();

    // restore in place: the trace is cut back to the snapshot and regrows
    // identically
    sim.restore(&snap);
    assert_eq!(sim.now(), Time::from_millis(1000));
    assert_eq!(sim.trace().entries().len(), kept_at_snap);
    sim.run_until(end);
    assert_eq!(sim.trace_hash(), original);
    assert_eq!(sim.trace().total(), original_len);

    // a fresh simulator from the snapshot, run in smaller steps
    let mut fresh = Sim::from_snapshot(&snap);
    while fresh.now() < end {
        let t = fresh.now() + Duration::from_millis(37);
        fresh.run_until(t.min(end));
    }
    assert_eq!(fresh.trace_hash(), original);

    // snapshots can be taken again and again (timeline scrubbing)
    let mut sim = s.build(7, TraceMode::Bounded(1000)).unwrap();
    let mut snaps = Vec::new();
    for ms in (0..=3000).step_by(500) {
        sim.run_until(Time::from_millis(ms));
        snaps.push((sim.snapshot(), sim.trace_hash()));
    }
    for (snap, hash) in snaps.iter().rev() {
        sim.restore(snap);
        assert_eq!(sim.trace_hash(), *hash);
    }
    sim.run_until(end);
    assert_eq!(sim.trace_hash(), original);
}

#[test]
fn snapshots_restore_disk_contents() {
    let mut sim = probe_world(2, fixed(1.0), None);
    sim.disk(1).unwrap().write("a", b"before".to_vec());
    sim.disk(1).unwrap().fsync();
    let snap = sim.snapshot();
    sim.command::<Probe, _>(1, |p, _| {
        p.disk.write("a", b"after".to_vec());
        p.disk.fsync();
    })
    .unwrap();
    sim.restart(1, RestartMode::Keep).unwrap();
    assert_eq!(
        sim.node(1).unwrap().ring::<Probe>().unwrap().booted_with.0,
        Some(b"after".to_vec())
    );
    sim.restore(&snap);
    assert_eq!(sim.disk(1).unwrap().read("a"), Some(b"before".to_vec()));
    sim.restart(1, RestartMode::Keep).unwrap();
    assert_eq!(
        sim.node(1).unwrap().ring::<Probe>().unwrap().booted_with.0,
        Some(b"before".to_vec())
    );
}

#[test]
fn live_calls_are_part_of_the_deterministic_run() {
    let run = || {
        let mut sim = probe_world_with(
            4,
            shen_transport_memory::NetConfig::default(),
            Some(Duration::from_millis(7)),
            &[],
            9,
        );
        for i in 0..50 {
            ping(&mut sim, i % 4, (i + 1) % 4, i);
            if i == 20 {
                sim.apply(Fault::Partition(vec![vec![0, 1]])).unwrap();
            }
            if i == 30 {
                let id = sim.in_flight().first().map(|m| m.id);
                if let Some(id) = id {
                    sim.duplicate_message(id).unwrap();
                }
                sim.heal().unwrap();
            }
            sim.run_for(Duration::from_millis(3));
        }
        sim.trace_hash()
    };
    assert_eq!(run(), run());
}

#[test]
fn relay_across_a_thousand_seeds() {
    let s = Scenario::load(
        r#"
name = "relay-seeds"
nodes = 5
duration_ms = 1500

[stack.relay]
lap_timeout_ms = 60

[network]
latency = { uniform = { min = 1, max = 4 } }
loss = 0.02
duplicate = 0.01

[[faults]]
at_ms = 150
fault = { crash = 2 }

[[faults]]
at_ms = 250
fault = { restart = { node = 2 } }

[[faults]]
at_ms = 500
fault = { partition = [[0, 1], [2, 3, 4]] }

[[faults]]
at_ms = 700
fault = "heal"

[[expect]]
event = "relay.lap_completed"
min = 5
"#,
        "relay-seeds.toml",
    )
    .unwrap();
    let mut hashes = std::collections::BTreeSet::new();
    for seed in 0..1000 {
        let mut sim = s.build(seed, TraceMode::HashOnly).unwrap();
        sim.run_until(Time::from_millis(s.duration_ms));
        let r = s.report(&sim);
        assert!(r.passed, "seed {seed}: {:?}", r.expectations);
        let t = r.traffic;
        assert_eq!(
            t.sent,
            t.delivered + t.dropped + sim.in_flight().len() as u64
        );
        hashes.insert(r.trace_hash);
    }
    assert!(hashes.len() > 990, "{}", hashes.len());
}
