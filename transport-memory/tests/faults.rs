//! Every fault has a test that observes its effect.

mod common;

use std::time::Duration;

use common::*;
use shen_rings::stack::{RelayConfig, StackConfig};
use shen_rings::toy::{members_of, Relay};
use shen_rings::Time;
use shen_transport_memory::{
    DropReason, Fault, Latency, NetConfig, RestartMode, Sim, SimConfig, SimError, TraceKind,
};

fn drops(sim: &Sim<ProbeEvent>, reason: DropReason) -> usize {
    sim.trace()
        .entries()
        .filter(|e| matches!(&e.kind, TraceKind::Dropped { reason: r, .. } if *r == reason))
        .count()
}

#[test]
fn a_partitioned_pair_exchanges_nothing_until_heal() {
    let mut sim = probe_world(4, fixed(2.0), None);
    sim.partition(vec![vec![0, 1], vec![2, 3]]).unwrap();
    for n in 0..10 {
        ping(&mut sim, 0, 2, n);
        ping(&mut sim, 2, 0, n);
        ping(&mut sim, 0, 1, n); // same side: fine
        sim.run_for(Duration::from_millis(5));
    }
    assert!(received(&sim, 2).is_empty());
    assert!(received(&sim, 0).is_empty());
    assert_eq!(received(&sim, 1).len(), 10);
    assert_eq!(drops(&sim, DropReason::Partition), 20);
    assert!(sim.is_cut(0, 3) && sim.is_cut(3, 0) && !sim.is_cut(2, 3));

    // A message already in flight when the cut appears is dropped on arrival.
    sim.heal().unwrap();
    ping(&mut sim, 0, 2, 99);
    sim.partition(vec![vec![0], vec![2]]).unwrap();
    sim.run_for(Duration::from_millis(5));
    assert!(received(&sim, 2).is_empty());
    assert_eq!(drops(&sim, DropReason::Partition), 21);

    sim.heal().unwrap();
    ping(&mut sim, 0, 2, 100);
    ping(&mut sim, 2, 0, 100);
    sim.run_for(Duration::from_millis(5));
    assert_eq!(received(&sim, 2).len(), 1);
    assert_eq!(received(&sim, 0).len(), 1);
}

#[test]
fn unlisted_nodes_form_their_own_group() {
    let mut sim = probe_world(4, fixed(1.0), None);
    sim.partition(vec![vec![0]]).unwrap();
    assert!(sim.is_cut(0, 1) && sim.is_cut(3, 0));
    assert!(!sim.is_cut(1, 3));
}

#[test]
fn a_one_way_partition_delivers_in_one_direction_only() {
    let mut sim = probe_world(3, fixed(1.0), None);
    sim.partition_one_way(vec![0], vec![1]).unwrap();
    for n in 0..5 {
        ping(&mut sim, 0, 1, n);
        ping(&mut sim, 1, 0, n);
        ping(&mut sim, 0, 2, n);
    }
    sim.run_for(Duration::from_millis(10));
    assert!(received(&sim, 1).is_empty());
    assert_eq!(received(&sim, 0).len(), 5);
    assert_eq!(received(&sim, 2).len(), 5);
}

#[test]
fn loss_rate_p_drops_about_p_of_messages() {
    for p in [0.1, 0.5] {
        let net = NetConfig {
            loss: p,
            ..NetConfig::default()
        };
        let mut sim = probe_world(2, net, None);
        let n = 20_000;
        for i in 0..n {
            ping(&mut sim, 0, 1, i);
        }
        sim.run_for(Duration::from_secs(1));
        let got = received(&sim, 1).len() as f64;
        let lost = 1.0 - got / n as f64;
        assert!((lost - p).abs() < 0.02, "p = {p}: lost {lost}");
        assert_eq!(drops(&sim, DropReason::Loss), n as usize - got as usize);
        let t = sim.traffic();
        assert_eq!(t.sent, t.delivered + t.dropped);
        assert_eq!(t.dropped, drops(&sim, DropReason::Loss) as u64);
    }
}

#[test]
fn duplication_delivers_extra_copies() {
    let net = NetConfig {
        duplicate: 0.25,
        ..NetConfig::default()
    };
    let mut sim = probe_world(2, net, None);
    let n = 8_000;
    for i in 0..n {
        ping(&mut sim, 0, 1, i);
    }
    sim.run_for(Duration::from_secs(1));
    let got = received(&sim, 1).len() as f64 / n as f64;
    assert!((got - 1.25).abs() < 0.03, "{got}");
    let dups = sim
        .trace()
        .entries()
        .filter(|e| matches!(e.kind, TraceKind::Duplicated { .. }))
        .count();
    assert_eq!(received(&sim, 1).len(), n as usize + dups);
}

#[test]
fn fixed_latency_keeps_order_and_reordering_breaks_it() {
    let mut sim = probe_world(2, fixed(3.0), None);
    for i in 0..200 {
        ping(&mut sim, 0, 1, i);
    }
    sim.run_for(Duration::from_millis(10));
    let got = received(&sim, 1);
    assert!(got.iter().all(|(t, _, _)| *t == Time::from_millis(3)));
    assert!(
        got.windows(2).all(|w| w[0].2 < w[1].2),
        "FIFO at equal latency"
    );

    let net = NetConfig {
        latency: Latency::Fixed(3.0),
        reorder: 0.5,
        reorder_ms: 10.0,
        ..NetConfig::default()
    };
    let mut sim = probe_world(2, net, None);
    for i in 0..200 {
        ping(&mut sim, 0, 1, i);
    }
    sim.run_for(Duration::from_millis(20));
    let got = received(&sim, 1);
    assert_eq!(got.len(), 200);
    assert!(got.windows(2).any(|w| w[0].2 > w[1].2), "reordered");
    assert!(got
        .iter()
        .all(|(t, _, _)| *t >= Time::from_millis(3) && *t <= Time::from_millis(13)));
}

#[test]
fn latency_distributions_are_respected() {
    let net = NetConfig {
        latency: Latency::Uniform { min: 2.0, max: 4.0 },
        ..NetConfig::default()
    };
    let mut sim = probe_world(2, net, None);
    for i in 0..1000 {
        ping(&mut sim, 0, 1, i);
    }
    sim.run_for(Duration::from_millis(10));
    let got = received(&sim, 1);
    assert!(got
        .iter()
        .all(|(t, _, _)| (Time::from_millis(2)..=Time::from_millis(4)).contains(t)));

    let net = NetConfig {
        latency: Latency::Exponential {
            min: 1.0,
            mean: 5.0,
        },
        ..NetConfig::default()
    };
    let mut sim = probe_world(2, net, None);
    for i in 0..5000 {
        ping(&mut sim, 0, 1, i);
    }
    sim.run_for(Duration::from_secs(10));
    let got = received(&sim, 1);
    let mean = got.iter().map(|(t, _, _)| t.as_micros()).sum::<u64>() / got.len() as u64;
    assert!((5_700..6_300).contains(&mean), "{mean}");
    assert!(got.iter().all(|(t, _, _)| *t >= Time::from_millis(1)));
}

#[test]
fn per_link_settings_override_the_global_ones() {
    let mut sim = probe_world(3, fixed(1.0), None);
    sim.set_link(
        0,
        1,
        Some(NetConfig {
            latency: Latency::Fixed(1.0),
            loss: 1.0,
            ..NetConfig::default()
        }),
    )
    .unwrap();
    sim.apply(Fault::Link {
        from: 0,
        to: 2,
        both: true,
        net: Some(fixed(7.0)),
    })
    .unwrap();
    ping(&mut sim, 0, 1, 1);
    ping(&mut sim, 1, 0, 1);
    ping(&mut sim, 0, 2, 1);
    ping(&mut sim, 2, 0, 2);
    sim.run_for(Duration::from_millis(10));
    assert!(received(&sim, 1).is_empty());
    assert_eq!(received(&sim, 0).len(), 2);
    assert_eq!(received(&sim, 2), vec![(Time::from_millis(7), 0, 1)]);
    // clearing the override restores the global settings
    sim.set_link(0, 1, None).unwrap();
    ping(&mut sim, 0, 1, 2);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(received(&sim, 1).len(), 1);
    // a global change applies to links without their own settings
    sim.set_network(NetConfig {
        loss: 1.0,
        ..NetConfig::default()
    })
    .unwrap();
    ping(&mut sim, 1, 2, 3);
    ping(&mut sim, 0, 2, 3);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(received(&sim, 2).len(), 2);
    // invalid settings are refused, naming the field, and leave no trace
    let before = sim.trace().total();
    let err = sim
        .set_network(NetConfig {
            loss: -1.0,
            ..NetConfig::default()
        })
        .unwrap_err();
    assert!(
        matches!(&err, SimError::Invalid(m) if m.contains("fault.network.loss")),
        "{err}"
    );
    assert_eq!(sim.trace().total(), before);
}

#[test]
fn held_messages_wait_for_release_and_keep_their_order() {
    let mut sim = probe_world(3, fixed(1.0), None);
    sim.hold(0, 1).unwrap();
    for i in 0..5 {
        ping(&mut sim, 0, 1, i);
        ping(&mut sim, 0, 2, i);
    }
    sim.run_for(Duration::from_millis(50));
    assert!(received(&sim, 1).is_empty());
    assert_eq!(received(&sim, 2).len(), 5);
    let parked = sim.in_flight();
    assert_eq!(parked.len(), 5);
    assert!(parked.iter().all(|m| m.arrives.is_none() && m.to == 1));
    assert_eq!(sim.held_links(), vec![(0, 1)]);
    sim.release(0, 1).unwrap();
    sim.run_for(Duration::from_millis(1));
    let got = received(&sim, 1);
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|(t, _, _)| *t == Time::from_millis(50)));
    assert_eq!(
        got.iter().map(|g| g.2).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert!(sim.in_flight().is_empty());
}

#[test]
fn drop_or_duplicate_one_message_by_id() {
    let mut sim = probe_world(2, fixed(5.0), None);
    for i in 0..3 {
        ping(&mut sim, 0, 1, i);
    }
    let flying = sim.in_flight();
    assert_eq!(flying.len(), 3);
    assert!(flying
        .iter()
        .all(|m| m.from == 0 && m.to == 1 && m.arrives == Some(Time::from_millis(5))));
    let middle = flying[1].id;
    sim.drop_message(middle).unwrap();
    assert_eq!(sim.in_flight().len(), 2);
    assert_eq!(
        sim.drop_message(middle),
        Err(SimError::NoSuchMessage(middle))
    );
    sim.duplicate_message(flying[2].id).unwrap();
    assert_eq!(sim.in_flight().len(), 3);
    assert_eq!(
        sim.duplicate_message(12345),
        Err(SimError::NoSuchMessage(12345))
    );
    sim.run_for(Duration::from_millis(20));
    let ns: Vec<u64> = received(&sim, 1).iter().map(|g| g.2).collect();
    assert_eq!(ns.iter().filter(|n| **n == 0).count(), 1);
    assert_eq!(ns.iter().filter(|n| **n == 1).count(), 0);
    assert_eq!(ns.iter().filter(|n| **n == 2).count(), 2);
    assert_eq!(drops(&sim, DropReason::Manual), 1);
    assert!(sim.in_flight().is_empty());

    // parked messages can be dropped too
    sim.hold(0, 1).unwrap();
    ping(&mut sim, 0, 1, 7);
    sim.run_for(Duration::from_millis(10));
    let id = sim.in_flight()[0].id;
    sim.drop_message(id).unwrap();
    sim.release(0, 1).unwrap();
    sim.run_for(Duration::from_millis(10));
    assert!(!received(&sim, 1).iter().any(|g| g.2 == 7));
}

#[test]
fn a_crashed_node_receives_nothing_and_restarts_fresh() {
    let mut sim = probe_world(2, fixed(1.0), Some(Duration::from_millis(10)));
    sim.run_for(Duration::from_millis(35));
    assert_eq!(ticks(&sim, 1).len(), 3);
    sim.crash(1).unwrap();
    assert!(sim.node(1).is_none());
    assert!(!sim.node_status(1).unwrap().up);
    assert_eq!(
        sim.command::<Probe, _>(1, |_, _| ()),
        Err(SimError::NodeDown(1))
    );
    ping(&mut sim, 0, 1, 1);
    sim.run_for(Duration::from_millis(100));
    assert!(received(&sim, 1).is_empty());
    assert_eq!(
        ticks(&sim, 1).len(),
        3,
        "a crashed node's timers never fire"
    );
    assert_eq!(drops(&sim, DropReason::NodeDown), 1);
    sim.restart(1, RestartMode::Keep).unwrap();
    let st = sim.node_status(1).unwrap();
    assert!(st.up);
    assert_eq!(st.incarnation, 2);
    sim.run_for(Duration::from_millis(25));
    assert_eq!(ticks(&sim, 1).len(), 5);
    ping(&mut sim, 0, 1, 2);
    sim.run_for(Duration::from_millis(5));
    assert_eq!(received(&sim, 1).len(), 1);
    // restarting a running node crashes it first; its old timers are stale
    sim.restart(0, RestartMode::Keep).unwrap();
    sim.run_for(Duration::from_millis(25));
    let t0 = ticks(&sim, 0);
    assert!(t0.windows(2).all(|w| w[1].0 > w[0].0));
    assert_eq!(sim.node_status(0).unwrap().incarnation, 2);
}

fn disk_world() -> Sim<ProbeEvent> {
    let mut sim = probe_world(2, fixed(1.0), None);
    let d = sim.disk(1).unwrap().clone();
    d.write("a", b"synced".to_vec());
    d.fsync();
    d.write("b", b"unsynced".to_vec());
    sim.run_for(Duration::from_millis(1));
    sim
}

fn booted(sim: &Sim<ProbeEvent>, node: u64) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let r = sim.node(node).unwrap().ring::<Probe>().unwrap();
    r.booted_with.clone()
}

#[test]
fn restart_modes_decide_what_the_disk_keeps() {
    let mut sim = disk_world();
    sim.restart(1, RestartMode::Keep).unwrap();
    assert_eq!(
        booted(&sim, 1),
        (Some(b"synced".to_vec()), Some(b"unsynced".to_vec()))
    );

    let mut sim = disk_world();
    sim.crash(1).unwrap();
    sim.restart(1, RestartMode::LoseUnsynced).unwrap();
    assert_eq!(booted(&sim, 1), (Some(b"synced".to_vec()), None));

    let mut sim = disk_world();
    sim.restart(1, RestartMode::LoseDisk).unwrap();
    assert_eq!(booted(&sim, 1), (None, None));
    assert!(sim.disk(1).unwrap().keys().is_empty());
    // the other node's disk is untouched
    assert_eq!(booted(&sim, 0), (None, None));

    // a ring writing through its own handle is subject to the same rules
    let mut sim = probe_world(2, fixed(1.0), None);
    sim.command::<Probe, _>(1, |p, _| {
        p.disk.write("a", b"x".to_vec());
        p.disk.fsync();
        p.disk.write("b", b"y".to_vec());
    })
    .unwrap();
    sim.restart(1, RestartMode::LoseUnsynced).unwrap();
    assert_eq!(booted(&sim, 1), (Some(b"x".to_vec()), None));
}

#[test]
fn a_pause_defers_deliveries_and_timers() {
    let mut sim = probe_world(2, fixed(1.0), Some(Duration::from_millis(10)));
    sim.run_for(Duration::from_millis(5));
    sim.pause(1, Duration::from_millis(100)).unwrap();
    assert_eq!(
        sim.node_status(1).unwrap().paused_until,
        Some(Time::from_millis(105))
    );
    ping(&mut sim, 0, 1, 1);
    sim.run_for(Duration::from_millis(99));
    assert!(received(&sim, 1).is_empty());
    assert!(ticks(&sim, 1).is_empty());
    assert_eq!(ticks(&sim, 0).len(), 10);
    sim.run_for(Duration::from_millis(2));
    assert_eq!(received(&sim, 1), vec![(Time::from_millis(105), 0, 1)]);
    // the overdue tick fires once, at resume, then the period resumes
    assert_eq!(ticks(&sim, 1), vec![(Time::from_millis(105), 105_000)]);
    sim.run_for(Duration::from_millis(20));
    assert_eq!(ticks(&sim, 1).len(), 3);
    assert_eq!(sim.node_status(1).unwrap().paused_until, None);
}

#[test]
fn skew_and_drift_change_when_timers_fire() {
    // drift: a clock running twice as fast ticks every 5 ms of virtual time
    let mut sim = probe_world(3, fixed(1.0), Some(Duration::from_millis(10)));
    sim.set_drift(1, 1_000_000).unwrap();
    sim.set_drift(2, -500_000).unwrap();
    sim.run_for(Duration::from_millis(41));
    let fast = ticks(&sim, 1);
    let slow = ticks(&sim, 2);
    let normal = ticks(&sim, 0);
    assert_eq!(normal.len(), 4);
    assert_eq!(fast.len(), 8, "{fast:?}");
    assert_eq!(fast[0], (Time::from_millis(5), 10_000));
    assert_eq!(slow.len(), 2, "{slow:?}");
    assert_eq!(slow[0], (Time::from_millis(20), 10_000));
    assert_eq!(sim.node_status(1).unwrap().drift_ppm, 1_000_000);

    // skew: stepping the clock 6 ms forward makes the pending tick due 6 ms
    // sooner in virtual time; the node sees local time jump
    let mut sim = probe_world(2, fixed(1.0), Some(Duration::from_millis(10)));
    sim.run_for(Duration::from_millis(2));
    sim.skew_clock(1, 6_000).unwrap();
    assert_eq!(sim.node_status(1).unwrap().local_time, Time::from_millis(8));
    sim.run_for(Duration::from_millis(20));
    let t = ticks(&sim, 1);
    assert_eq!(t[0], (Time::from_millis(4), 10_000));
    assert_eq!(t[1], (Time::from_millis(14), 20_000));
    assert_eq!(ticks(&sim, 0)[0], (Time::from_millis(10), 10_000));

    // a backward step delays the pending timer
    let mut sim = probe_world(1, fixed(1.0), Some(Duration::from_millis(10)));
    sim.skew_clock(0, -5_000).unwrap();
    sim.run_for(Duration::from_millis(20));
    assert_eq!(ticks(&sim, 0)[0], (Time::from_millis(15), 10_000));
}

#[test]
fn undecodable_and_misaddressed_messages_are_drops_with_a_reason() {
    let mut sim = probe_world_with(3, fixed(1.0), None, &[2], 1);
    ping(&mut sim, 0, 2, 1); // node 2 runs no probe ring
    ping(&mut sim, 0, 42, 1); // no such node
    sim.run_for(Duration::from_millis(5));
    assert_eq!(drops(&sim, DropReason::UnknownRing), 1);
    assert_eq!(drops(&sim, DropReason::UnknownNode), 1);
    assert_eq!(sim.traffic().dropped, 2);
    assert!(matches!(sim.crash(9), Err(SimError::Invalid(m)) if m.contains("out of range")));
    assert_eq!(
        sim.command::<Probe, _>(9, |_, _| ()),
        Err(SimError::NoSuchNode(9))
    );
    assert_eq!(sim.command::<Probe, _>(2, |_, _| ()), Ok(None));
    assert!(sim.set_drift(0, -2_000_000).is_err());
    assert!(sim.skew_clock(0, i64::MAX).is_err());
}

#[test]
fn member_notifications_reach_the_rings() {
    let stack = StackConfig {
        relay: Some(RelayConfig { lap_timeout_ms: 50 }),
        ..StackConfig::default()
    };
    let config = SimConfig {
        seed: 3,
        nodes: 4,
        network: fixed(1.0),
        ..SimConfig::default()
    };
    let mut sim = Sim::with_stack(config, stack).unwrap();
    sim.run_for(Duration::from_millis(100));
    let laps = sim.event_count("relay.lap_completed");
    assert!(laps > 10);
    sim.crash(2).unwrap();
    sim.run_for(Duration::from_millis(200));
    assert!(sim.event_count("relay.relaunched") >= 3);
    let stalled = sim.event_count("relay.lap_completed");
    assert!(stalled <= laps + 1);
    sim.member_failed(2).unwrap();
    let order = members_of(sim.node(0).unwrap().ring::<Relay<u64>>().unwrap());
    assert_eq!(order, vec![0, 1, 3]);
    sim.run_for(Duration::from_millis(200));
    assert!(sim.event_count("relay.lap_completed") > stalled + 10);
    sim.restart(2, RestartMode::Keep).unwrap();
    sim.member_joined(2).unwrap();
    let order = members_of(sim.node(0).unwrap().ring::<Relay<u64>>().unwrap());
    assert_eq!(order, vec![0, 1, 2, 3]);
}

#[test]
fn scheduled_faults_fire_at_their_time() {
    let mut sim = probe_world(2, fixed(1.0), None);
    sim.schedule(Time::from_millis(10), Fault::Crash(1))
        .unwrap();
    sim.schedule(
        Time::from_millis(20),
        Fault::Restart {
            node: 1,
            disk: RestartMode::LoseDisk,
        },
    )
    .unwrap();
    sim.schedule(Time::from_millis(5), Fault::DropMessage(999))
        .unwrap();
    assert!(sim.schedule(Time::from_millis(5), Fault::Crash(5)).is_err());
    sim.run_for(Duration::from_millis(15));
    assert!(!sim.node_status(1).unwrap().up);
    sim.run_for(Duration::from_millis(10));
    assert!(sim.node_status(1).unwrap().up);
    let faults: Vec<(Time, &'static str)> = sim
        .trace()
        .entries()
        .filter_map(|e| match &e.kind {
            TraceKind::Fault(f) => Some((e.at, f.kind())),
            _ => None,
        })
        .collect();
    assert_eq!(
        faults,
        vec![
            (Time::from_millis(10), "crash"),
            (Time::from_millis(20), "restart")
        ]
    );
}

#[test]
fn counters_are_kept_per_node_and_ring() {
    let mut sim = probe_world(3, fixed(1.0), None);
    sim.partition_one_way(vec![0], vec![2]).unwrap();
    for i in 0..4 {
        ping(&mut sim, 0, 1, i);
        ping(&mut sim, 0, 2, i);
    }
    sim.run_for(Duration::from_millis(5));
    let n0 = sim.node_traffic(0).unwrap()[&PROBE];
    assert_eq!((n0.sent, n0.dropped, n0.delivered), (8, 4, 0));
    let n1 = sim.node_traffic(1).unwrap()[&PROBE];
    assert_eq!(n1.delivered, 4);
    assert_eq!(n1.delivered_bytes, n0.sent_bytes / 2);
    let all = sim.traffic_by_ring()[&PROBE];
    assert_eq!(all, sim.traffic());
    assert_eq!(sim.ring_name(PROBE), Some("probe"));
    assert_eq!(sim.event_count("probe.got"), 4);
    assert_eq!(sim.node_event_count(1, "probe.got"), 4);
    assert_eq!(sim.event_counts()["probe.booted"], 3);
}

#[test]
fn has_event_at_sees_queued_deliveries_timers_and_faults() {
    let mut sim = probe_world(2, fixed(2.0), None);
    sim.run_until(Time::from_millis(10));
    assert!(!sim.has_event_at(Time::from_millis(20)));
    sim.schedule(Time::from_millis(20), Fault::Heal).unwrap();
    assert!(sim.has_event_at(Time::from_millis(20)));
    ping(&mut sim, 0, 1, 1); // arrives 2 ms from now
    assert!(sim.has_event_at(Time::from_millis(12)));
    assert!(!sim.has_event_at(Time::from_millis(13)));
    sim.run_until(Time::from_millis(20));
    assert!(!sim.has_event_at(Time::from_millis(12)));
    assert!(!sim.has_event_at(Time::from_millis(20)));
}

/// A viewer's chosen delivery: the message picked happens now, before
/// ones due earlier; a timer fires early; the same calls give the same
/// run, and a run without them is untouched.
#[test]
fn a_chosen_delivery_or_timer_happens_now_and_replays_exactly() {
    use shen_transport_memory::Choice;
    let run = |choose: bool| {
        let mut sim = probe_world(3, fixed(5.0), Some(Duration::from_millis(20)));
        sim.run_for(Duration::from_millis(3));
        ping(&mut sim, 0, 1, 1);
        sim.run_for(Duration::from_millis(1));
        ping(&mut sim, 2, 1, 2);
        let pending = sim.pending_choices();
        let msgs: Vec<u64> = pending
            .iter()
            .filter_map(|c| match c {
                Choice::Message { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(msgs.len(), 2, "{pending:?}");
        let due: Vec<u64> = pending
            .iter()
            .map(|c| match c {
                Choice::Message { due_us, .. } | Choice::Timer { due_us, .. } => *due_us,
            })
            .collect();
        assert!(
            due.windows(2).all(|w| w[0] <= w[1]),
            "in the order they happen"
        );
        if choose {
            // The later ping (from 2) first, right now.
            sim.deliver_now(msgs[1]).unwrap();
            assert_eq!(received(&sim, 1), vec![(Time::from_millis(4), 2, 2)]);
            assert_eq!(
                sim.deliver_now(msgs[1]),
                Err(SimError::NoSuchMessage(msgs[1]))
            );
            let timer = sim
                .pending_choices()
                .into_iter()
                .find_map(|c| match c {
                    Choice::Timer {
                        node: 2,
                        ring,
                        token,
                        due_us,
                    } => Some((ring, token, due_us)),
                    _ => None,
                })
                .expect("node 2 ticks");
            assert!(timer.2 > 4_000);
            let before = ticks(&sim, 2).len();
            sim.fire_timer_now(2, timer.0, timer.1).unwrap();
            assert_eq!(ticks(&sim, 2).len(), before + 1);
            assert!(
                sim.fire_timer_now(2, timer.0, timer.1).is_err(),
                "fired once"
            );
            assert!(sim.fire_timer_now(9, timer.0, timer.1).is_err());
        }
        sim.run_for(Duration::from_millis(50));
        (sim.trace_hash(), received(&sim, 1))
    };
    let (plain, got) = run(false);
    assert_eq!(got[0].1, 0, "unchosen: queue order");
    assert_eq!(run(false).0, plain, "no choice: the same run");
    let (chosen, got) = run(true);
    assert_eq!(got[0].1, 2);
    assert_ne!(chosen, plain);
    assert_eq!(run(true).0, chosen, "the same choices: the same run");
}
