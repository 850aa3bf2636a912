//! Chain bypass: a replica that is alive (its heartbeats arrive, so
//! Sundial keeps it) but whose links became slow is removed from the chains
//! it slows down, by its predecessor's report, and appends in those
//! partitions run at full speed again.

use std::time::Duration;

use shen_rings::ouroboros::{Ouroboros, OuroborosEvent};
use shen_rings::stack::{
    CartoucheSettings, JoinMode, OuroborosSettings, ShenEvent, StackConfig, SundialSettings,
};
use shen_rings::sundial::Sundial;
use shen_rings::Time;
use shen_transport_memory::{Latency, NetConfig, Sim, SimConfig, TraceKind, TraceMode};

fn sim() -> Sim<ShenEvent<u64>> {
    let stack = StackConfig {
        sundial: Some(SundialSettings {
            join: JoinMode::AllMembers,
            ..SundialSettings::default()
        }),
        cartouche: Some(CartoucheSettings::default()),
        ouroboros: Some(OuroborosSettings {
            partitions: 8,
            // Normal round trips here are 2-10 ms; the slow links add 500+.
            slow_after_ms: 300,
            ..OuroborosSettings::default()
        }),
        ..StackConfig::default()
    };
    Sim::with_stack(
        SimConfig {
            seed: 7,
            nodes: 5,
            network: NetConfig {
                latency: Latency::Uniform { min: 1.0, max: 5.0 },
                ..NetConfig::default()
            },
            trace: TraceMode::Full,
        },
        stack,
    )
    .unwrap()
}

fn chains(sim: &Sim<ShenEvent<u64>>, at: u64) -> Vec<Vec<u64>> {
    let o = sim
        .node(at)
        .and_then(|n| n.ring::<Ouroboros<u64>>())
        .unwrap();
    o.table().chains.iter().map(|c| c.members.clone()).collect()
}

/// Append `n` records to partition-spread keys from node 0 and run until
/// they complete; returns (partition, latency µs) of each completion.
fn appends(sim: &mut Sim<ShenEvent<u64>>, n: u64, run: Duration) -> Vec<(u32, u64)> {
    let mark = sim.trace().total();
    let t0 = sim.now();
    for k in 0..n {
        sim.command::<Ouroboros<u64>, _>(0, |o, cx| o.append(cx, &k.to_be_bytes(), vec![1; 64]))
            .unwrap();
    }
    let until = sim.now() + run;
    while sim.now() < until && sim.step() {}
    sim.trace()
        .since(mark)
        .filter_map(|(_, e)| match &e.kind {
            TraceKind::Event {
                node: 0,
                event: ShenEvent::Ouroboros(OuroborosEvent::Appended { partition, .. }),
                ..
            } => Some((*partition, e.at.saturating_since(t0).as_micros() as u64)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_slow_replica_is_bypassed_while_it_stays_a_live_member() {
    let mut s = sim();
    s.run_until(Time::from_secs(3));
    assert_eq!(appends(&mut s, 64, Duration::from_secs(1)).len(), 64);
    // Node 3's links slow down to 250-300 ms each way (heartbeats still
    // arrive, late but regularly).
    let slow = 3u64;
    let before = chains(&s, 0);
    let mut slowed = Vec::new();
    for (p, c) in before.iter().enumerate() {
        if c.iter().skip(1).any(|m| *m == slow) {
            slowed.push(p as u32);
        }
    }
    assert!(
        !slowed.is_empty(),
        "node 3 is a middle or tail somewhere: {before:?}"
    );
    let net = NetConfig {
        latency: Latency::Uniform {
            min: 250.0,
            max: 300.0,
        },
        ..NetConfig::default()
    };
    for other in 0..5u64 {
        if other != slow {
            s.set_link(slow, other, Some(net.clone())).unwrap();
            s.set_link(other, slow, Some(net.clone())).unwrap();
        }
    }
    // Keep writing while the predecessors notice and the chains change.
    for _ in 0..12 {
        appends(&mut s, 16, Duration::from_millis(500));
    }
    let after = chains(&s, 0);
    for p in &slowed {
        let c = &after[*p as usize];
        assert!(
            !c.contains(&slow),
            "partition {p} still lists the slow node: {before:?} -> {after:?}"
        );
        assert_eq!(c.len(), 3, "the chain was refilled: {after:?}");
    }
    let marked: u64 = (0..5)
        .filter_map(|i| s.node(i).and_then(|n| n.ring::<Ouroboros<u64>>()))
        .map(|o| o.stats().slow_marked)
        .sum();
    assert!(marked > 0, "a predecessor reported the slow successor");
    // The bypass, not the failure detector, removed it: it is still live.
    let sd = s.node(0).and_then(|n| n.ring::<Sundial<u64>>()).unwrap();
    assert!(
        sd.live_members().any(|m| *m == slow),
        "node 3 must still be a live member"
    );
    // Appends in the bypassed partitions are fast again.
    let done = appends(&mut s, 64, Duration::from_secs(1));
    let fast: Vec<u64> = done
        .iter()
        .filter(|(p, _)| {
            slowed.contains(p) && after[*p as usize].first().is_none_or(|h| *h != slow)
        })
        .map(|(_, us)| *us)
        .collect();
    assert!(!fast.is_empty());
    let worst = fast.iter().max().copied().unwrap_or(0);
    assert!(
        worst < 100_000,
        "bypassed partitions should not wait on the slow links ({worst} µs)"
    );
}

fn learners(sim: &Sim<ShenEvent<u64>>, at: u64) -> Vec<Vec<u64>> {
    let o = sim
        .node(at)
        .and_then(|n| n.ring::<Ouroboros<u64>>())
        .unwrap();
    o.table()
        .chains
        .iter()
        .map(|c| c.learners.clone())
        .collect()
}

#[test]
fn a_replacement_learns_before_it_joins_and_appends_go_on_meanwhile() {
    let mut s = sim();
    s.run_until(Time::from_secs(3));
    // Fill the logs so state transfer takes a while.
    for _ in 0..20 {
        appends(&mut s, 64, Duration::from_millis(200));
    }
    let before = chains(&s, 0);
    let victim = 4u64;
    s.crash(victim).unwrap();
    // Watch node 0's table while appends go on: a replacement shows up as a
    // learner first, and appends keep completing while it learns.
    let mut saw_learner = false;
    let mut done_while_learning = 0;
    for _ in 0..500 {
        let done = appends(&mut s, 2, Duration::from_millis(20));
        let l = learners(&s, 0);
        if l.iter().any(|x| !x.is_empty()) {
            saw_learner = true;
            done_while_learning += done.len();
        }
    }
    assert!(saw_learner, "no replacement was ever a learner");
    assert!(
        done_while_learning > 0,
        "appends stalled while a learner caught up"
    );
    // In the end every chain that lost the victim is whole again, with the
    // replacement as a member and no learner left.
    let after = chains(&s, 0);
    let l = learners(&s, 0);
    for (p, c) in before.iter().enumerate() {
        if c.contains(&victim) {
            assert!(!after[p].contains(&victim), "{after:?}");
            assert_eq!(after[p].len(), 3, "partition {p}: {after:?} learners {l:?}");
            assert!(l[p].is_empty(), "partition {p}: {l:?}");
        }
    }
}
