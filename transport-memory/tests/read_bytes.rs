//! A read answer fits in one frame: a range of large records comes back in
//! pieces of at most `MAX_READ_BYTES`, and reading on from the next offset
//! gets the rest (before, 1,000 records of 4 KiB made an answer over the
//! 1 MiB frame limit that never arrived, and the read timed out).

use shen_rings::ouroboros::{Ouroboros, OuroborosEvent};
use shen_rings::stack::{
    CartoucheSettings, JoinMode, OuroborosSettings, ShenEvent, StackConfig, SundialSettings,
};
use shen_rings::Time;
use shen_transport_memory::{NetConfig, Sim, SimConfig, TraceKind, TraceMode};

fn outcomes(sim: &Sim<ShenEvent<u64>>, since: u64) -> Vec<OuroborosEvent<u64>> {
    sim.trace()
        .since(since)
        .filter_map(|(_, e)| match &e.kind {
            TraceKind::Event {
                event: ShenEvent::Ouroboros(ev),
                ..
            } => Some(ev.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_read_of_large_records_comes_back_in_frame_sized_pieces() {
    let stack = StackConfig {
        sundial: Some(SundialSettings {
            join: JoinMode::AllMembers,
            ..SundialSettings::default()
        }),
        cartouche: Some(CartoucheSettings::default()),
        ouroboros: Some(OuroborosSettings {
            partitions: 1,
            ..OuroborosSettings::default()
        }),
        ..StackConfig::default()
    };
    let mut sim = Sim::with_stack(
        SimConfig {
            seed: 7,
            nodes: 3,
            network: NetConfig::default(),
            trace: TraceMode::Full,
        },
        stack,
    )
    .unwrap();
    sim.run_until(Time::from_secs(3));
    let record = vec![7u8; 4096];
    let mut acked = 0;
    for round in 0..30 {
        let at = sim.trace().total();
        for i in 0..10 {
            let key = format!("k{round}-{i}");
            sim.command::<Ouroboros<u64>, _>(0, |o, cx| {
                o.append(cx, key.as_bytes(), record.clone())
            })
            .unwrap();
        }
        sim.run_for(core::time::Duration::from_millis(200));
        acked += outcomes(&sim, at)
            .iter()
            .filter(|e| matches!(e, OuroborosEvent::Appended { .. }))
            .count();
    }
    assert_eq!(acked, 300, "every append acknowledged");

    let mut from = 0u64;
    let mut pieces = 0;
    while from < 300 {
        let at = sim.trace().total();
        sim.command::<Ouroboros<u64>, _>(1, |o, cx| o.read_range(cx, 0, from, 1000))
            .unwrap();
        sim.run_for(core::time::Duration::from_millis(500));
        let done = outcomes(&sim, at)
            .into_iter()
            .find_map(|e| match e {
                OuroborosEvent::ReadDone { records, .. } => Some(records),
                _ => None,
            })
            .expect("the read is answered");
        assert!(!done.is_empty(), "a read from {from} returned nothing");
        let bytes: usize = done.iter().map(|r| r.data.len() + r.key.len()).sum();
        assert!(bytes <= 640 * 1024, "{bytes} bytes in one answer");
        assert_eq!(done[0].offset, from);
        from = done.last().unwrap().offset + 1;
        pieces += 1;
    }
    assert!(pieces >= 2, "300 records of 4 KiB cannot come in one piece");
}
