use super::*;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use proptest::prelude::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cfg(vnodes: u32) -> AnkhConfig {
    AnkhConfig {
        vnodes,
        ..AnkhConfig::default()
    }
}

fn ring_of(n: usize, vnodes: u32, seed: u64) -> AnkhRing<String> {
    let mut r = AnkhRing::new(cfg(vnodes)).unwrap();
    for i in 0..n {
        r.join(format!("node-{seed}-{i}"), DEFAULT_WEIGHT).unwrap();
    }
    r
}

fn keys(count: usize, seed: u64) -> Vec<[u8; 16]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xabcdef);
    (0..count)
        .map(|_| {
            let mut k = [0u8; 16];
            rng.fill_bytes(&mut k);
            k
        })
        .collect()
}

/// Reference implementation: linear scan for the first position >= h.
fn naive_replicas(r: &AnkhRing<String>, h: u64, rf: usize) -> Vec<String> {
    let n = r.points.len();
    let start = r.points.iter().position(|&p| p >= h).unwrap_or(0);
    let mut out: Vec<String> = Vec::new();
    for s in 0..n {
        let id = &r.nodes[r.owners[(start + s) % n] as usize].member.id;
        if !out.contains(id) {
            out.push(id.clone());
        }
        if out.len() == rf {
            break;
        }
    }
    out
}

#[test]
fn placement_does_not_depend_on_insertion_order() {
    let built = ring_of(20, 40, 1);
    let mut members: Vec<Member<String>> = built.members().cloned().collect();
    members.reverse();
    let rebuilt = AnkhRing::from_members(cfg(40), members).unwrap();
    assert_eq!(built.points, rebuilt.points);
    for k in keys(2_000, 1) {
        assert_eq!(built.locate(&k), rebuilt.locate(&k));
    }
}

#[test]
fn locate_and_replicas_match_the_reference_walk() {
    for (n, v) in [(1usize, 1u32), (2, 3), (7, 10), (50, 160)] {
        let r = ring_of(n, v, n as u64);
        for k in keys(3_000, n as u64) {
            let h = hash_bytes(&k);
            for rf in [1usize, 3, 5] {
                let got: Vec<String> = r.replicas(&k, rf).cloned().collect();
                assert_eq!(got, naive_replicas(&r, h, rf), "n={n} v={v} rf={rf}");
                assert_eq!(got.len(), rf.min(n));
            }
            assert_eq!(r.locate(&k), r.replicas(&k, 1).next());
        }
    }
}

#[test]
fn empty_ring_answers_nothing() {
    let r: AnkhRing<String> = AnkhRing::new(AnkhConfig::default()).unwrap();
    assert_eq!(r.locate(b"k"), None);
    assert_eq!(r.replicas(b"k", 3).count(), 0);
    assert_eq!(r.chain_of(0).count(), 0);
}

#[test]
fn boundary_keys_belong_to_the_vnode_at_their_position() {
    let r = ring_of(10, 16, 3);
    for (i, &p) in r.points.iter().enumerate() {
        let owner = &r.nodes[r.owners[i] as usize].member.id;
        if i > 0 && r.points[i - 1] == p {
            continue;
        }
        assert_eq!(r.locate_hash(p), Some(owner));
        if p > 0 && (i == 0 || r.points[i - 1] < p - 1) {
            assert_eq!(r.locate_hash(p - 1), Some(owner));
        }
    }
    let last = *r.points.last().unwrap();
    if last < u64::MAX {
        // past the last position wraps to the first
        assert_eq!(
            r.locate_hash(last + 1),
            Some(&r.nodes[r.owners[0] as usize].member.id)
        );
    }
}

/// The distribution targets at N = 100, V = 160, over many seeds.
#[test]
fn distribution_targets_hold_over_seeds() {
    let ks = keys(200_000, 7);
    for seed in 0..12u64 {
        let mut r = ring_of(100, 160, seed);
        // max/mean load over keys
        let mut load = std::collections::HashMap::new();
        for k in &ks {
            *load.entry(r.locate(k).unwrap().clone()).or_insert(0u64) += 1;
        }
        let mean = ks.len() as f64 / 100.0;
        let max = *load.values().max().unwrap() as f64;
        assert!(max / mean <= 1.30, "seed {seed}: max/mean {}", max / mean);

        // join: <= 1.1 x ideal moved, all to the joiner
        let before: Vec<String> = ks.iter().map(|k| r.locate(k).unwrap().clone()).collect();
        let joiner = format!("joiner-{seed}");
        let (_, plan) = r.join(joiner.clone(), DEFAULT_WEIGHT).unwrap();
        let mut moved = 0usize;
        for (k, old) in ks.iter().zip(&before) {
            let now = r.locate(k).unwrap();
            if now != old {
                assert_eq!(now, &joiner, "seed {seed}: a key moved to a non-joiner");
                moved += 1;
            }
        }
        let ideal = 1.0 / 101.0;
        let frac = moved as f64 / ks.len() as f64;
        assert!(
            frac <= 1.1 * ideal,
            "seed {seed}: join moved {frac} vs ideal {ideal}"
        );
        let share = r.share_of(&joiner).unwrap();
        assert!(share <= 1.1 * ideal, "seed {seed}: joiner share {share}");
        assert!((plan.primary_fraction() - share).abs() < 1e-9);

        // leave: only the leaver's keys move
        let victim = format!("node-{seed}-{}", seed % 100);
        let before: Vec<String> = ks.iter().map(|k| r.locate(k).unwrap().clone()).collect();
        r.leave(&victim).unwrap();
        for (k, old) in ks.iter().zip(&before) {
            if r.locate(k).unwrap() != old {
                assert_eq!(old, &victim, "seed {seed}: a non-leaver's key moved");
            }
        }
    }
}

#[test]
fn salted_joins_beat_plain_random_placement() {
    // Balanced joins should not be worse than salt-free placement on the
    // worst node (measured exactly over the hash space).
    let worst = |r: &AnkhRing<String>| {
        r.members()
            .map(|m| r.share_of(&m.id).unwrap())
            .fold(0.0f64, f64::max)
            * r.len() as f64
    };
    let mut balanced = 0.0;
    let mut plain = 0.0;
    for seed in 0..5u64 {
        balanced += worst(&ring_of(100, 160, seed));
        let mut r = AnkhRing::new(AnkhConfig {
            salt_candidates: 1,
            ..cfg(160)
        })
        .unwrap();
        for i in 0..100 {
            r.join(format!("node-{seed}-{i}"), DEFAULT_WEIGHT).unwrap();
        }
        plain += worst(&r);
    }
    assert!(balanced < plain, "balanced {balanced} vs plain {plain}");
}

#[test]
fn handoff_plan_is_exact_for_rf3() {
    let mut r = ring_of(30, 32, 11);
    let ks = keys(20_000, 11);
    let rf = 3;
    let snapshot = |r: &AnkhRing<String>| -> Vec<Vec<String>> {
        ks.iter()
            .map(|k| r.replicas(k, rf).cloned().collect())
            .collect()
    };
    let before = snapshot(&r);
    let (_, plan) = r.join("newcomer".into(), 150).unwrap();
    let after = snapshot(&r);
    for ((k, b), a) in ks.iter().zip(&before).zip(&after) {
        let h = hash_bytes(k);
        match plan.range_of(h) {
            Some(m) => {
                assert_ne!(b, a);
                assert_eq!(&m.old, b);
                assert_eq!(&m.new, a);
            }
            None => assert_eq!(b, a, "a key outside the plan changed replicas"),
        }
    }
    assert!(plan.replica_fraction() >= plan.primary_fraction());
    // ranges are disjoint and merged
    for w in plan.ranges.windows(2) {
        assert!(w[0].end <= w[1].start || w[0].start >= w[0].end);
        assert!(!(w[0].end == w[1].start && w[0].old == w[1].old && w[0].new == w[1].new));
    }
    let before = snapshot(&r);
    let plan = r.leave(&String::from("node-11-3")).unwrap();
    let after = snapshot(&r);
    for ((k, b), a) in ks.iter().zip(&before).zip(&after) {
        match plan.range_of(hash_bytes(k)) {
            Some(m) => {
                assert_eq!((&m.old, &m.new), (b, a));
                assert!(m.old.contains(&String::from("node-11-3")));
            }
            None => assert_eq!(b, a),
        }
    }
}

#[test]
fn weights_scale_vnodes_and_share() {
    let mut r: AnkhRing<u64> = AnkhRing::new(cfg(160)).unwrap();
    for i in 0..20u64 {
        r.join(i, if i == 0 { 300 } else { 100 }).unwrap();
    }
    assert_eq!(r.vnode_count(), 160 * 19 + 480);
    let heavy = r.share_of(&0).unwrap();
    let light: f64 = (1..20).map(|i| r.share_of(&i).unwrap()).sum::<f64>() / 19.0;
    assert!(
        heavy > 2.4 * light && heavy < 3.6 * light,
        "{heavy} vs {light}"
    );
}

#[test]
fn bounded_load_caps_every_node() {
    let r = ring_of(50, 160, 5);
    let ks = keys(100_000, 5);
    for eps in [0.05, 0.25] {
        let mut b = BoundedLoad::new(&r, ks.len() as u64, eps).unwrap();
        for k in &ks {
            assert!(b.place(k).is_some());
        }
        let cap = ((1.0 + eps) * ks.len() as f64 / 50.0).ceil() as u64;
        let mut total = 0;
        for (_, load, c) in b.loads() {
            assert_eq!(c, cap);
            assert!(load <= cap);
            total += load;
        }
        assert_eq!(total, ks.len() as u64);
    }
    assert!(BoundedLoad::new(&r, 1, 0.0).is_err());
    assert!(BoundedLoad::new(&r, 1, f64::NAN).is_err());
}

#[test]
fn partitions_cover_the_ring_and_have_chains() {
    let r = ring_of(10, 64, 2);
    let p = r.config().partitions;
    for part in 0..p {
        let a = partition_anchor(part, p);
        assert_eq!(partition_of_hash(a, p), part);
        if a > 0 {
            assert_eq!(partition_of_hash(a - 1, p), part - 1);
        }
        let chain: Vec<&String> = r.chain_of(part).collect();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0], r.locate_hash(a).unwrap());
    }
    assert_eq!(partition_of_hash(u64::MAX, p), p - 1);
    for k in keys(1000, 2) {
        assert!(r.partition_of(&k) < p);
    }
    let mut r2 = r.clone();
    r2.join("extra".into(), 100).unwrap();
    let changes = AnkhRing::partition_changes(&r, &r2);
    assert!(!changes.is_empty());
    for c in &changes {
        assert!(c.new.contains(&String::from("extra")));
    }
}

#[test]
fn bad_input_is_refused() {
    assert!(AnkhRing::<u64>::new(cfg(0)).is_err());
    assert!(AnkhRing::<u64>::new(AnkhConfig {
        rf: 0,
        ..AnkhConfig::default()
    })
    .is_err());
    assert!(AnkhRing::<u64>::new(AnkhConfig {
        rf: 17,
        ..AnkhConfig::default()
    })
    .is_err());
    let mut r: AnkhRing<u64> = AnkhRing::new(cfg(8)).unwrap();
    r.join(1, 100).unwrap();
    assert_eq!(r.join(1, 100).unwrap_err(), AnkhError::AlreadyMember);
    assert_eq!(r.join(2, 0).unwrap_err(), AnkhError::InvalidWeight);
    assert_eq!(r.leave(&9).unwrap_err(), AnkhError::NotMember);
    let dup = vec![
        Member {
            id: 1u64,
            weight: 100,
            salt: 0,
        },
        Member {
            id: 1u64,
            weight: 100,
            salt: 1,
        },
    ];
    assert!(AnkhRing::from_members(cfg(8), dup).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Joining then leaving the same node restores the exact placement.
    #[test]
    fn join_then_leave_is_identity(n in 1usize..20, extra in any::<u64>(), weight in 1u32..400) {
        let mut r: AnkhRing<u64> = AnkhRing::new(cfg(16)).unwrap();
        for i in 0..n as u64 { r.join(i * 1_000_003, 100).unwrap(); }
        prop_assume!(!r.contains(&extra));
        let before = r.points.clone();
        let (_, plan) = r.join(extra, weight).unwrap();
        prop_assert!(plan.ranges.iter().all(|m| m.new.contains(&extra)));
        let back = r.leave(&extra).unwrap();
        prop_assert_eq!(&r.points, &before);
        prop_assert_eq!(plan.ranges.len(), back.ranges.len());
    }

    /// Shares always sum to the whole ring.
    #[test]
    fn shares_sum_to_one(n in 1usize..30, v in 1u32..50) {
        let mut r: AnkhRing<u64> = AnkhRing::new(cfg(v)).unwrap();
        for i in 0..n as u64 { r.join(i, 100).unwrap(); }
        let total: u128 = r.nodes.iter().map(|e| e.share).sum();
        prop_assert_eq!(total, 1u128 << 64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Incremental joins, inserts and leaves give exactly the ring a bulk
    /// build of the final member list gives.
    #[test]
    fn incremental_changes_equal_bulk_build(ops in proptest::collection::vec((0u64..24, any::<bool>(), 1u32..300), 1..40)) {
        let mut r: AnkhRing<u64> = AnkhRing::new(cfg(12)).unwrap();
        for (id, add, weight) in ops {
            if add {
                if r.contains(&id) { continue; }
                if id % 2 == 0 {
                    r.join(id, weight).unwrap();
                } else {
                    let salt = r.choose_salt(&id, weight);
                    r.insert(Member { id, weight, salt }).unwrap();
                }
            } else if r.contains(&id) {
                r.leave(&id).unwrap();
            }
        }
        let bulk = AnkhRing::from_members(cfg(12), r.members().cloned()).unwrap();
        prop_assert_eq!(&r.points, &bulk.points);
        let ids = |x: &AnkhRing<u64>| -> Vec<u64> { x.owners.iter().map(|&o| x.nodes[o as usize].member.id).collect() };
        prop_assert_eq!(ids(&r), ids(&bulk));
        for m in r.members() {
            prop_assert_eq!(r.share_of(&m.id), bulk.share_of(&m.id));
        }
    }
}

#[test]
fn points_list_every_vnode_clockwise_with_its_owner() {
    let mut ring: AnkhRing<u64> = AnkhRing::new(AnkhConfig {
        vnodes: 8,
        ..AnkhConfig::default()
    })
    .unwrap();
    for id in 0..5u64 {
        ring.join(id, 100).unwrap();
    }
    let pts: Vec<(u64, u64)> = ring.points().map(|(p, o)| (p, *o)).collect();
    assert_eq!(pts.len(), ring.vnode_count());
    assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0), "sorted clockwise");
    for (pos, owner) in &pts {
        // A point owns its own position.
        assert_eq!(ring.locate_hash(*pos), Some(owner));
    }
    for id in 0..5u64 {
        assert_eq!(pts.iter().filter(|(_, o)| *o == id).count(), 8);
    }
}
