//! Rebalancing onto a new node in the simulator: `rebalance_bytes_per_sec`
//! paces the state transfer (the bytes sent to the new node arrive no
//! faster than the senders' caps allow; unthrottled, the same move is
//! several times quicker), and the replicas that moved away drop their
//! data once the switch is committed and settled, while every
//! acknowledged record is still read back exactly once.

use core::time::Duration;

use shen_rings::ouroboros::{Ouroboros, OuroborosEvent};
use shen_rings::stack::{
    CartoucheSettings, JoinMode, OuroborosSettings, ShenEvent, StackConfig, SundialSettings,
};
use shen_rings::Time;
use shen_transport_memory::{NetConfig, Sim, SimConfig, TraceKind, TraceMode};

const PARTS: u32 = 8;

fn ouroboros(sim: &Sim<ShenEvent<u64>>, id: u64) -> &Ouroboros<u64> {
    sim.node(id)
        .and_then(|n| n.ring::<Ouroboros<u64>>())
        .expect("runs Ouroboros")
}

/// Every chain full (rf members, no learners) with node `new` in some.
fn settled_with(sim: &Sim<ShenEvent<u64>>, new: u64) -> bool {
    let t = ouroboros(sim, 0).table();
    t.members.ids().any(|m| *m == new)
        && t.chains
            .iter()
            .all(|c| c.members.len() == 3 && c.learners.is_empty())
        && t.chains.iter().any(|c| c.members.contains(&new))
}

/// Write `records` records of 4 KiB, add a 4th node, and return (seconds
/// of virtual time until the chains settle with it, bytes it then holds,
/// appends acknowledged).
fn grow(rate: u64, records: usize) -> (f64, u64, usize) {
    let (took, held, acked, _) = grow_sim(rate, records);
    (took, held, acked)
}

fn grow_sim(rate: u64, records: usize) -> (f64, u64, usize, Sim<ShenEvent<u64>>) {
    let stack = StackConfig {
        sundial: Some(SundialSettings {
            join: JoinMode::AllMembers,
            ..SundialSettings::default()
        }),
        cartouche: Some(CartoucheSettings::default()),
        ouroboros: Some(OuroborosSettings {
            partitions: PARTS,
            rebalance_bytes_per_sec: rate,
            ..OuroborosSettings::default()
        }),
        ..StackConfig::default()
    };
    let mut sim = Sim::with_stack(
        SimConfig {
            seed: 11,
            nodes: 3,
            network: NetConfig::default(),
            trace: TraceMode::Full,
        },
        stack,
    )
    .unwrap();
    sim.run_until(Time::from_secs(3));
    let record = vec![5u8; 4096];
    for i in 0..records {
        sim.command::<Ouroboros<u64>, _>((i % 3) as u64, |o, cx| {
            o.append(cx, format!("k{i}").as_bytes(), record.clone())
        })
        .unwrap();
        if i % 16 == 15 {
            sim.run_for(Duration::from_millis(20));
        }
    }
    sim.run_for(Duration::from_secs(2));
    let acked = sim
        .trace()
        .since(0)
        .filter(|(_, e)| {
            matches!(
                &e.kind,
                TraceKind::Event {
                    event: ShenEvent::Ouroboros(OuroborosEvent::Appended { .. }),
                    ..
                }
            )
        })
        .count();
    let start = sim.now();
    let new = sim.add_node().unwrap();
    sim.member_joined(new).unwrap();
    let deadline = start + Duration::from_secs(300);
    while !settled_with(&sim, new) {
        assert!(sim.now() < deadline, "no settled table with the new node");
        sim.run_for(Duration::from_millis(50));
    }
    let took = sim.now().saturating_since(start).as_secs_f64();
    let held: u64 = (0..PARTS).map(|p| ouroboros(&sim, new).held_bytes(p)).sum();
    (took, held, acked, sim)
}

/// Partition `p` read through node `via`, from offset 0: (offset, key).
fn read_all(sim: &mut Sim<ShenEvent<u64>>, via: u64, p: u32) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let from = out.last().map_or(0, |(o, _)| o + 1);
        let at = sim.trace().total();
        sim.command::<Ouroboros<u64>, _>(via, |o, cx| o.read_range(cx, p, from, 1000))
            .unwrap();
        sim.run_for(Duration::from_millis(300));
        let got = sim
            .trace()
            .since(at)
            .find_map(|(_, e)| match &e.kind {
                TraceKind::Event {
                    event: ShenEvent::Ouroboros(OuroborosEvent::ReadDone { records, .. }),
                    ..
                } => Some(records.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("the read of partition {p} from {from} is answered"));
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().map(|r| (r.offset, r.key)));
    }
    panic!("partition {p}: too many reads");
}

#[test]
fn moved_replicas_drop_their_data_after_the_switch_and_nothing_is_lost() {
    let records = 512;
    let (_, _, acked, mut sim) = grow_sim(0, records);
    assert_eq!(acked, records);
    // Past the hand-off grace (300 ticks of 10 ms).
    sim.run_for(Duration::from_secs(5));
    let table = ouroboros(&sim, 0).table().clone();
    let mut dropped = 0;
    for n in 0..4u64 {
        let o = ouroboros(&sim, n);
        for (p, c) in table.chains.iter().enumerate() {
            let held = o.held_bytes(p as u32);
            if c.members.contains(&n) {
                assert!(held > 0, "node {n} is in chain {p} and holds nothing");
            } else {
                assert_eq!(
                    held, 0,
                    "node {n} left chain {p} and still holds {held} bytes"
                );
            }
        }
        dropped += o.stats().handed_off;
    }
    assert!(dropped > 0, "no replica was handed off");
    // Every acknowledged record, once, through the new node.
    let mut keys = std::collections::BTreeMap::new();
    for p in 0..PARTS {
        for (_, k) in read_all(&mut sim, 3, p) {
            *keys.entry(k).or_insert(0) += 1;
        }
    }
    for i in 0..records {
        let k = format!("k{i}").into_bytes();
        assert_eq!(keys.get(&k), Some(&1), "k{i}");
    }
}

#[test]
fn a_capped_move_takes_at_least_its_bytes_over_the_senders_caps() {
    let records = 1024; // 4 MiB
    let rate = 256 << 10;
    let (slow, held, acked) = grow(rate, records);
    assert_eq!(acked, records, "every append acknowledged");
    assert!(held > 1 << 20, "the new node holds only {held} bytes");
    // At most three senders (the other members), each within its cap plus
    // one burst (100 ms, at least one batch of 256 KiB) and one batch.
    let slack = 3.0 * 2.0 * (256 << 10) as f64;
    let floor = (held as f64 - slack) / (3.0 * rate as f64);
    assert!(
        slow >= floor,
        "{held} bytes moved in {slow:.2} s: faster than 3 senders at {rate} B/s ({floor:.2} s)"
    );
    let (fast, held_fast, _) = grow(0, records);
    eprintln!("throttled: {held} B in {slow:.2} s; unthrottled: {held_fast} B in {fast:.2} s");
    assert!(held_fast > 1 << 20);
    assert!(
        fast * 2.0 < slow,
        "unthrottled {fast:.2} s against throttled {slow:.2} s"
    );
}
