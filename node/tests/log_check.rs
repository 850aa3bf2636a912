//! Ouroboros under faults, checked: 300 seeds of `shen sim log` with the
//! founding members throughout (crash and restart with an empty disk, a
//! second crash, a minority partition that heals, a replica whose links
//! turn slow for 2-3 s, a disk fault, a power blip, 1% loss, 1%
//! duplication, 5% reordering, two drifting clocks), and 1,000 seeds with
//! the member set changing under the same faults (`--membership mixed`:
//! a join, a graceful leave, a death for good and its replacement, growth
//! 3 -> 9 -> 4), each history checked for lost, duplicated, phantom,
//! reordered and stale results. A failing seed replays with `shen sim log
//! --seed S [--membership mixed]`.

use shen_checks::Membership;
use shen_node::cli::sim::log::{run_one, LogArgs};

fn args() -> LogArgs {
    LogArgs {
        nodes: 5,
        seed: 1,
        runs: 1,
        duration_s: 10,
        partitions: 16,
        concurrency: 4,
        read_ratio: 0.2,
        faults: true,
        txn_every: 50,
        durable: true,
        fsync_us: 300,
        membership: Membership::Fixed,
        json: false,
    }
}

fn check(seeds: std::ops::Range<u64>) {
    let a = args();
    let (mut acked, mut reconfigs, mut reads, mut id_reads, mut slow) = (0, 0, 0, 0, 0);
    let (mut txns, mut restored, mut power_losses) = (0, 0, 0);
    let mut unavailable = Vec::new();
    for seed in seeds.clone() {
        let r = run_one(&a, seed).expect("valid arguments");
        assert!(
            r.violations.is_empty(),
            "seed {seed}: {:?} (replay: shen sim log --seed {seed})",
            r.violations
        );
        if !r.unavailable.is_empty() {
            unavailable.push(seed);
        }
        acked += r.acked;
        reconfigs += r.reconfigurations;
        reads += r.reads;
        id_reads += r.id_reads;
        slow += r.slow_marked;
        txns += r.txns.0;
        restored += r.restored;
        power_losses += u64::from(r.cluster_power_loss);
    }
    let n = seeds.end - seeds.start;
    // The runs did real work under real reconfigurations (the check is not
    // vacuous): thousands of acknowledged appends and reads per seed, and at
    // least one chain change per seed on average.
    assert!(acked > n * 1_000, "only {acked} appends acknowledged");
    assert!(reads > n * 200, "only {reads} reads");
    assert!(reconfigs >= n, "only {reconfigs} reconfigurations");
    assert!(id_reads > n * 20, "only {id_reads} reads by Scarab ID");
    // The slow-replica fault made predecessors report slow successors.
    assert!(slow >= n, "only {slow} slow-successor reports");
    // Transactions committed, nodes came back from their disks (power
    // blips, restarts), and half the seeds cut power to the whole cluster.
    assert!(txns > n * 5, "only {txns} transactions committed");
    assert!(restored > n, "only {restored} restarts from disk");
    assert!(
        power_losses >= n / 2,
        "only {power_losses} cluster power losses"
    );
    // Liveness after healing: the known recovery gap (issue 17: complete
    // copies on former members one epoch back) leaves about 1 seed in
    // 2,000 with a partition unavailable. A change that makes refills or
    // retransmissions stall shows here first (one did: 21 of 400).
    assert!(
        unavailable.len() <= 1,
        "{} of {n} seeds end with partitions unavailable after healing: {unavailable:?}",
        unavailable.len()
    );
}

#[test]
fn seeds_1_to_300_have_no_violations() {
    check(1..301);
}

/// The member set changes under the faults (`--membership mixed`): every
/// history is correct, every schedule's member changes get done, and the
/// partitions stay available.
fn check_elastic(seeds: std::ops::Range<u64>) {
    let a = LogArgs {
        membership: Membership::Mixed,
        ..args()
    };
    let n = seeds.end - seeds.start;
    let (mut acked, mut versions, mut grown) = (0, 0, 0);
    let mut unavailable = Vec::new();
    let mut unfinished = Vec::new();
    for seed in seeds {
        let r = run_one(&a, seed).expect("valid arguments");
        assert!(
            r.violations.is_empty(),
            "seed {seed}: {:?} (replay: shen sim log --membership mixed --seed {seed})",
            r.violations
        );
        if !r.unavailable.is_empty() {
            unavailable.push(seed);
        }
        if !r.members_unfinished.is_empty() {
            unfinished.push((seed, r.members_unfinished.clone()));
        }
        acked += r.acked;
        versions += r.members_version;
        // Growth runs end with 4 members out of 3 founders, 6 joiners,
        // one death and four leaves.
        if r.membership == Membership::Grow && r.members.len() == 4 && r.members_version >= 11 {
            grown += 1;
        }
    }
    // Real work and real member changes: every seed changes the set at
    // least once (a join, a leave, a removal), growth seeds at least 11
    // times (6 joins, a removal, 4 leaves).
    assert!(acked > n * 1_000, "only {acked} appends acknowledged");
    assert!(versions >= n * 2, "only {versions} member changes");
    assert!(
        grown >= n / 4 - n / 40,
        "only {grown} growth seeds ended 3 -> 9 -> 4"
    );
    // Liveness (BENCHMARKS.md records the 10,000-seed figures): at most
    // one seed in 200 ends with a partition unavailable or a member change
    // unfinished.
    assert!(
        unavailable.len() as u64 <= n / 200,
        "{} of {n} seeds end with partitions unavailable after healing: {unavailable:?}",
        unavailable.len()
    );
    assert!(
        unfinished.len() as u64 <= n / 200,
        "{} of {n} seeds end with member changes unfinished: {unfinished:?}",
        unfinished.len()
    );
}

#[test]
fn elastic_seeds_1_to_500_have_no_violations() {
    check_elastic(1..501);
}

#[test]
fn elastic_seeds_501_to_1000_have_no_violations() {
    check_elastic(501..1001);
}

#[test]
fn without_faults_every_partition_stays_available() {
    let a = LogArgs {
        faults: false,
        ..args()
    };
    for seed in 1..21 {
        let r = run_one(&a, seed).expect("valid arguments");
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        assert!(r.unavailable.is_empty(), "seed {seed}: {:?}", r.unavailable);
        assert_eq!(
            r.unknown, 0,
            "seed {seed}: appends timed out without faults"
        );
        // Present in the final logs, or below a low watermark (deleted by
        // retention once on every replica; the checker verified the rest).
        assert_eq!(
            r.records + r.trimmed,
            r.acked,
            "seed {seed}: every append acknowledged and present (or trimmed by retention)"
        );
        assert_eq!(
            (r.txns.1, r.txns.2),
            (0, 0),
            "seed {seed}: transactions aborted or timed out without faults"
        );
        assert!(r.txns.0 > 0, "seed {seed}: no transaction committed");
    }
}
