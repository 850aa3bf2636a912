//! `rebalance_bytes_per_sec` paces state transfer: a node added to a
//! running log gains partitions as learners, and the bytes sent to it
//! arrive no faster than the senders' caps allow (unthrottled, the same
//! move is several times quicker); nothing acknowledged is lost.

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
    (took, held, acked)
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
