//! Table-driven tests of the pure table derivation: each row is a cluster state as a
//! majority reported it, and the chain the next round must give partition 0.

use super::*;
use crate::ouroboros::{Members, PaxosState};

fn e(sequence: u64) -> Epoch {
    Epoch {
        generation: 1,
        sequence,
    }
}

/// The ballot of the round under test.
const BALLOT: u64 = 9;

fn config(rf: usize) -> OuroborosConfig {
    OuroborosConfig {
        partitions: 1,
        rf,
        // These rows are about chain health; rebalancing has its own.
        max_moves: 0,
        ..OuroborosConfig::default()
    }
}

/// Every node the rows name is a member.
fn everyone() -> Members<u64> {
    Members::founding(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
}

/// Nothing asked for.
fn quiet() -> Asked<'static, u64> {
    static NONE: BTreeSet<MemberChange<u64>> = BTreeSet::new();
    static NOBODY: BTreeSet<u64> = BTreeSet::new();
    Asked {
        intents: &NONE,
        expired: &NOBODY,
    }
}

fn chain(epoch: Epoch, prev: Epoch, members: &[u64], learners: &[u64]) -> Chain<u64> {
    Chain {
        epoch,
        prev,
        keep: None,
        members: members.to_vec(),
        learners: learners.to_vec(),
    }
}

fn table(ballot: Epoch, c: Chain<u64>) -> Table<u64> {
    Table {
        ballot,
        chains: alloc::vec![c],
        members: everyone(),
    }
}

/// A report about partition 0 with nothing to say but `len`.
fn report(len: u64) -> PartReport {
    PartReport {
        p: 0,
        ready_in: None,
        left_ready: None,
        tail_of: None,
        len,
        runs: Vec::new(),
        slow_successor: None,
        sealed_in: None,
    }
}

/// One member's promise, as derive sees it.
#[derive(Clone, Copy)]
struct Said {
    node: u64,
    /// A caught-up member of the base chain's epoch.
    ready: bool,
    /// Its successor is slow in the base chain's epoch.
    slow_successor: bool,
    /// It lost partition 0's log on restart.
    stale: bool,
}

const fn ok(node: u64) -> Said {
    Said {
        node,
        ready: true,
        slow_successor: false,
        stale: false,
    }
}

const fn behind(node: u64) -> Said {
    Said {
        node,
        ready: false,
        slow_successor: false,
        stale: false,
    }
}

const fn finds_slow(node: u64) -> Said {
    Said {
        node,
        ready: true,
        slow_successor: true,
        stale: false,
    }
}

const fn lost(node: u64) -> Said {
    Said {
        node,
        ready: false,
        slow_successor: false,
        stale: true,
    }
}

fn promises(base: &Table<u64>, said: &[Said]) -> BTreeMap<u64, Promised<u64>> {
    let epoch = base.chains[0].epoch;
    said.iter()
        .map(|s| {
            let state = PaxosState {
                promised: e(BALLOT),
                accepted: None,
                committed: base.clone(),
            };
            let stale = if s.stale { alloc::vec![0] } else { Vec::new() };
            let mut r = report(0);
            r.ready_in = s.ready.then_some(epoch);
            r.slow_successor = s.slow_successor.then_some(epoch);
            let reports = if s.stale { Vec::new() } else { alloc::vec![r] };
            (s.node, (state, stale, reports))
        })
        .collect()
}

struct Case {
    name: &'static str,
    rf: usize,
    /// Live by Sundial.
    live: &'static [u64],
    members: &'static [u64],
    learners: &'static [u64],
    /// Who answered the prepare, and what they said.
    said: &'static [Said],
    /// The next chain's (members, learners), or `None`: unchanged.
    want: Option<(&'static [u64], &'static [u64])>,
}

const CASES: &[Case] = &[
    Case {
        name: "all caught up and live: nothing to change",
        rf: 3,
        live: &[1, 2, 3],
        members: &[1, 2, 3],
        learners: &[],
        said: &[ok(1), ok(2), ok(3)],
        want: None,
    },
    Case {
        name: "a dead tail leaves; its replacement learns first",
        rf: 3,
        live: &[1, 2, 4],
        members: &[1, 2, 3],
        learners: &[],
        said: &[ok(1), ok(2), behind(4)],
        want: Some((&[1, 2], &[4])),
    },
    Case {
        name: "a dead head leaves; the next caught-up member heads",
        rf: 3,
        live: &[2, 3, 4],
        members: &[1, 2, 3],
        learners: &[],
        said: &[ok(2), ok(3), behind(4)],
        want: Some((&[2, 3], &[4])),
    },
    Case {
        name: "a lone survivor takes its replacement as a member at once",
        rf: 3,
        live: &[1, 4],
        members: &[1, 2, 3],
        learners: &[],
        said: &[ok(1), behind(4)],
        want: Some((&[1, 4], &[])),
    },
    Case {
        name: "a node that answers is alive whatever the detector says",
        rf: 3,
        live: &[1, 2],
        members: &[1, 2, 3],
        learners: &[],
        said: &[ok(1), ok(2), ok(3)],
        want: None,
    },
    Case {
        name: "a member that lost its log leaves and comes back as a learner",
        rf: 3,
        live: &[1, 2, 3],
        members: &[1, 2, 3],
        learners: &[],
        said: &[ok(1), ok(2), lost(3)],
        want: Some((&[1, 2], &[3])),
    },
    Case {
        name: "a slow member is bypassed while two fast caught-up members remain",
        rf: 3,
        live: &[1, 2, 3, 4],
        members: &[1, 2, 3],
        learners: &[],
        said: &[ok(1), finds_slow(2), ok(3), behind(4)],
        want: Some((&[1, 2], &[4])),
    },
    Case {
        name: "a slow member that is one of two caught-up copies stays",
        rf: 3,
        live: &[1, 2, 3],
        members: &[1, 2, 3],
        learners: &[],
        said: &[finds_slow(1), ok(2), behind(3)],
        want: None,
    },
    Case {
        name: "no caught-up head and no sealed tail: the chain waits",
        rf: 3,
        live: &[2, 3, 4],
        members: &[1, 2, 3],
        learners: &[],
        said: &[behind(2), behind(3), behind(4)],
        want: None,
    },
    Case {
        name: "a caught-up learner joins at the end",
        rf: 3,
        live: &[1, 2, 3],
        members: &[1, 2],
        learners: &[3],
        said: &[ok(1), ok(2), ok(3)],
        want: Some((&[1, 2, 3], &[])),
    },
    Case {
        name: "a learner still catching up keeps learning",
        rf: 3,
        live: &[1, 2, 3],
        members: &[1, 2],
        learners: &[3],
        said: &[ok(1), ok(2), behind(3)],
        want: None,
    },
    Case {
        name: "a learner joins at once when fewer than two members are left",
        rf: 3,
        live: &[1, 3],
        members: &[1, 2],
        learners: &[3],
        said: &[ok(1), behind(3)],
        want: Some((&[1, 3], &[])),
    },
    Case {
        // (Placement over nodes 0-9 wants 4, 3, 7 for partition 0.)
        name:
            "a chain longer than rf drops first the members placement does not want, from the end",
        rf: 3,
        live: &[1, 2, 3, 4],
        members: &[1, 2, 3, 4],
        learners: &[],
        said: &[ok(1), ok(2), ok(3), ok(4)],
        want: Some((&[1, 3, 4], &[])),
    },
    Case {
        name: "a chain longer than rf keeps its surplus while one is behind",
        rf: 3,
        live: &[1, 2, 3, 4],
        members: &[1, 2, 3, 4],
        learners: &[],
        said: &[ok(1), ok(2), ok(3), behind(4)],
        want: None,
    },
];

#[test]
fn derive_table_cases() {
    let old = e(1);
    for case in CASES {
        let base = table(old, chain(old, e(0), case.members, case.learners));
        let live: BTreeSet<u64> = case.live.iter().copied().collect();
        let promised = promises(&base, case.said);
        let (got, changed) = derive_table(
            &config(case.rf),
            &live,
            e(BALLOT),
            &promised,
            &BTreeMap::new(),
            &quiet(),
        );
        match case.want {
            None => {
                assert_eq!(got, None, "{}", case.name);
                assert_eq!(changed, 0, "{}", case.name);
            }
            Some((members, learners)) => {
                let t = got.unwrap_or_else(|| panic!("{}: no table", case.name));
                assert_eq!(changed, 1, "{}", case.name);
                assert_eq!(t.ballot, e(BALLOT), "{}", case.name);
                let c = &t.chains[0];
                assert_eq!(c.members, members, "{}", case.name);
                assert_eq!(c.learners, learners, "{}", case.name);
                // A changed chain gets the round's ballot as its epoch and
                // remembers the epoch it came from.
                assert_eq!(c.epoch, e(BALLOT), "{}", case.name);
                assert_eq!(c.prev, old, "{}", case.name);
                assert_eq!(c.keep, None, "{}", case.name);
            }
        }
    }
}

#[test]
fn a_half_done_round_is_finished_even_without_a_change() {
    // Node 1 accepted a table (ballot 2) that was never committed: the next
    // round proposes again (with its own ballot) although no chain changes.
    let committed = table(e(1), chain(e(1), e(0), &[1, 2, 3], &[]));
    let accepted = Table {
        ballot: e(2),
        ..committed.clone()
    };
    let mut promised = promises(&committed, &[ok(1), ok(2), ok(3)]);
    promised.get_mut(&1).expect("node 1").0.accepted = Some(accepted.clone());
    let live: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
    let (t, changed) = derive_table(
        &config(3),
        &live,
        e(BALLOT),
        &promised,
        &BTreeMap::new(),
        &quiet(),
    );
    assert_eq!(changed, 0);
    let t = t.expect("a table to finish the half-done round");
    assert_eq!(t.ballot, e(BALLOT));
    assert_eq!(t.chains, accepted.chains);
    assert_eq!(newest_base(&promised), Some(&accepted));
}

/// Partition 0 after its caught-up members failed: chain epoch 3 (from
/// epoch 2) lists 2 (gone) and 3 (alive, not caught up); node 1 left the
/// epoch-2 chain caught up with 5 records. Tail 3 was sealed with commit 3.
struct Recovery {
    name: &'static str,
    /// Node 1's log: its epoch runs.
    runs: &'static [(u64, u64)],
    /// Node 1's log length.
    len: u64,
    /// Node 1 left epoch 2 caught up (`false`: it left an older one).
    left_prev: bool,
    /// Node 1 heads the chain, kept (`false`: the chain waits).
    recovers: bool,
}

const RECOVERIES: &[Recovery] = &[
    Recovery {
        name: "a former caught-up member whose log matches the sealed tail heads the chain",
        runs: &[(2, 0)],
        len: 5,
        left_prev: true,
        recovers: true,
    },
    Recovery {
        name: "a log that diverged at the tail's last committed offset does not",
        runs: &[(2, 0), (4, 2)],
        len: 5,
        left_prev: true,
        recovers: false,
    },
    Recovery {
        name: "a log shorter than the tail's commit point does not",
        runs: &[(2, 0)],
        len: 2,
        left_prev: true,
        recovers: false,
    },
    Recovery {
        name: "a member of an older epoch than the one the chain came from does not",
        runs: &[(2, 0)],
        len: 5,
        left_prev: false,
        recovers: false,
    },
];

#[test]
fn recovery_from_a_former_member_cases() {
    for case in RECOVERIES {
        let base = table(e(3), chain(e(3), e(2), &[2, 3], &[]));
        let mut promised = promises(&base, &[behind(3)]);
        let mut r1 = report(case.len);
        r1.left_ready = Some(if case.left_prev { e(2) } else { e(1) });
        r1.runs = case.runs.iter().map(|(ep, o)| (e(*ep), *o)).collect();
        let state = promised[&3].0.clone();
        promised.insert(1, (state, Vec::new(), alloc::vec![r1]));
        promised.get_mut(&3).expect("node 3").2[0].tail_of = Some(e(3));
        let live: BTreeSet<u64> = [1, 3].into_iter().collect();

        // The round seals tail 3 first: no caught-up member of epoch 3 is left.
        assert_eq!(
            to_seal(&live, &promised),
            alloc::vec![(0, 3, e(3))],
            "{}",
            case.name
        );
        let seal = SealInfo {
            commit: 3,
            len: 4,
            runs: alloc::vec![(e(2), 0)],
        };
        let sealed: BTreeMap<u32, SealInfo> = [(0, seal)].into_iter().collect();
        let (t, changed) = derive_table(&config(3), &live, e(BALLOT), &promised, &sealed, &quiet());
        if case.recovers {
            let t = t.unwrap_or_else(|| panic!("{}: no table", case.name));
            assert_eq!(changed, 1, "{}", case.name);
            let c = &t.chains[0];
            assert_eq!(c.members, [1, 3], "{}", case.name);
            assert_eq!(c.learners, [0u64; 0], "{}", case.name);
            assert_eq!(c.keep, Some(1), "{}", case.name);
            assert_eq!((c.epoch, c.prev), (e(BALLOT), e(3)), "{}", case.name);
        } else {
            assert_eq!((t, changed), (None, 0), "{}", case.name);
        }
        // Whatever derive finds, a round that sealed a tail commits a table,
        // so the tail learns it may go on.
        let d = decide(&config(3), &live, e(BALLOT), &promised, &sealed, &quiet());
        assert!(
            matches!(&d, Decision::Propose { table, changed: c }
                if table.ballot == e(BALLOT) && *c == u32::from(case.recovers)),
            "{}: {d:?}",
            case.name
        );
    }
}

#[test]
fn to_seal_cases() {
    // (name, chain epoch, chain prev, head caught up, tail answers as tail, sealed?)
    let cases: &[(&str, u64, u64, bool, bool, bool)] = &[
        (
            "a caught-up head survives: no seal",
            3,
            2,
            true,
            true,
            false,
        ),
        (
            "no caught-up head, the tail answers: seal it",
            3,
            2,
            false,
            true,
            true,
        ),
        (
            "no caught-up head, the tail is silent: nothing to seal",
            3,
            2,
            false,
            false,
            false,
        ),
        (
            "a chain never reconfigured (epoch = prev) is never sealed",
            0,
            0,
            false,
            true,
            false,
        ),
    ];
    for &(name, epoch, prev, head_ready, tail_answers, want) in cases {
        let base = table(e(3), chain(e(epoch), e(prev), &[1, 2], &[]));
        let mut promised = promises(&base, &[behind(1), behind(2)]);
        promised.get_mut(&1).expect("node 1").2[0].ready_in = head_ready.then_some(e(epoch));
        promised.get_mut(&2).expect("node 2").2[0].tail_of = tail_answers.then_some(e(epoch));
        let live: BTreeSet<u64> = [1, 2].into_iter().collect();
        let got = to_seal(&live, &promised);
        let expect = if want {
            alloc::vec![(0, 2, e(epoch))]
        } else {
            Vec::new()
        };
        assert_eq!(got, expect, "{name}");
    }
}

#[test]
fn decide_cases() {
    let c = chain(e(3), e(2), &[1, 2, 3], &[]);
    let live: BTreeSet<u64> = [1, 2, 3].into_iter().collect();

    // Nothing to do: finish, handing over the newest committed table seen.
    let newer = table(e(3), c.clone());
    let mut promised = promises(&table(e(1), c.clone()), &[ok(1), ok(2), ok(3)]);
    promised.get_mut(&2).expect("node 2").0.committed = newer.clone();
    let d = decide(
        &config(3),
        &live,
        e(BALLOT),
        &promised,
        &BTreeMap::new(),
        &quiet(),
    );
    assert_eq!(
        d,
        Decision::Finish {
            newest_committed: Some(newer.clone())
        }
    );

    // A tail still sealed in the current epoch: commit the unchanged chains.
    let mut promised = promises(&newer, &[ok(1), ok(2), ok(3)]);
    promised.get_mut(&3).expect("node 3").2[0].sealed_in = Some(e(3));
    let d = decide(
        &config(3),
        &live,
        e(BALLOT),
        &promised,
        &BTreeMap::new(),
        &quiet(),
    );
    assert_eq!(
        d,
        Decision::Propose {
            table: Table {
                ballot: e(BALLOT),
                chains: newer.chains.clone(),
                members: newer.members.clone(),
            },
            changed: 0
        }
    );

    // A seal of an older epoch does not count.
    promised.get_mut(&3).expect("node 3").2[0].sealed_in = Some(e(2));
    let d = decide(
        &config(3),
        &live,
        e(BALLOT),
        &promised,
        &BTreeMap::new(),
        &quiet(),
    );
    assert!(matches!(d, Decision::Finish { .. }), "{d:?}");

    // A change: propose it with the number of chains it changes.
    let live: BTreeSet<u64> = [1, 2, 4].into_iter().collect();
    let promised = promises(&newer, &[ok(1), ok(2), behind(4)]);
    let d = decide(
        &config(3),
        &live,
        e(BALLOT),
        &promised,
        &BTreeMap::new(),
        &quiet(),
    );
    let Decision::Propose { table, changed } = d else {
        panic!("expected a proposal, got {d:?}");
    };
    assert_eq!(changed, 1);
    assert_eq!(table.chains[0].members, [1, 2]);
    assert_eq!(table.chains[0].learners, [4]);
}

#[test]
fn epoch_at_cases() {
    let runs = [(e(1), 0), (e(2), 3), (e(5), 4)];
    // (offset, log length, epoch of the entry there)
    let cases: &[(u64, u64, Option<u64>)] = &[
        (0, 6, Some(1)),
        (2, 6, Some(1)),
        (3, 6, Some(2)),
        (4, 6, Some(5)),
        (5, 6, Some(5)),
        (6, 6, None),
        (4, 4, None),
    ];
    for &(offset, len, want) in cases {
        assert_eq!(
            epoch_at(&runs, len, offset),
            want.map(e),
            "offset {offset} of {len}"
        );
    }
    assert_eq!(epoch_at(&[], 0, 0), None);
}

/// Rebalancing rows: chains move towards placement (Ankh over the members
/// that stay), one learner per chain, bounded by `max_moves`.
#[test]
fn rebalancing_moves_chains_towards_placement() {
    let nodes = [1u64, 2, 3, 4, 5, 6];
    let members = Members::founding(&nodes);
    let cfg = |moves: usize| OuroborosConfig {
        max_moves: moves,
        ..config(3)
    };
    let want = crate::ouroboros::place::placement(&cfg(1), &members)[0].clone();
    let other: Vec<u64> = nodes
        .iter()
        .copied()
        .filter(|n| !want.contains(n))
        .collect();
    let live: BTreeSet<u64> = nodes.iter().copied().collect();
    let run = |moves: usize,
               members: &Members<u64>,
               chain_members: &[u64],
               learners: &[u64],
               ready: bool| {
        let base = Table {
            ballot: e(1),
            chains: alloc::vec![chain(e(1), e(0), chain_members, learners)],
            members: members.clone(),
        };
        let said: Vec<Said> = nodes
            .iter()
            .map(|&n| if ready { ok(n) } else { behind(n) })
            .collect();
        let promised = promises(&base, &said);
        derive_table(
            &cfg(moves),
            &live,
            e(BALLOT),
            &promised,
            &BTreeMap::new(),
            &quiet(),
        )
    };
    // A chain with one member placement does not want gains the one it
    // wants, as a learner.
    let (t, changed) = run(1, &members, &[want[0], want[1], other[0]], &[], true);
    let c = &t.expect("a move").chains[0];
    assert_eq!(
        (c.members.as_slice(), c.learners.as_slice(), changed),
        (&[want[0], want[1], other[0]][..], &[want[2]][..], 1)
    );
    // No move while members are behind, or with no move allowed.
    assert_eq!(
        run(1, &members, &[want[0], want[1], other[0]], &[], false),
        (None, 0)
    );
    assert_eq!(
        run(0, &members, &[want[0], want[1], other[0]], &[], true),
        (None, 0)
    );
    // Once the learner joined (rf + 1 members, all caught up), the
    // unwanted member is dropped, wherever it sits.
    let (t, _) = run(
        1,
        &members,
        &[other[0], want[0], want[1], want[2]],
        &[],
        true,
    );
    assert_eq!(
        t.expect("a drop").chains[0].members,
        [want[0], want[1], want[2]]
    );
    // A chain placement is happy with stays.
    assert_eq!(run(1, &members, &want, &[], true), (None, 0));
    // A leaving member is moved away like an unwanted one.
    let mut leaving = members.clone();
    leaving.leaving = alloc::vec![want[0]];
    let stay = crate::ouroboros::place::placement(&cfg(1), &leaving)[0].clone();
    assert!(!stay.contains(&want[0]));
    let (t, _) = run(1, &leaving, &want, &[], true);
    let c = &t.expect("a move away").chains[0];
    assert_eq!(c.learners.len(), 1);
    assert!(stay.contains(&c.learners[0]) && !want.contains(&c.learners[0]));
}

/// With fewer members staying than `rf`, a leaving member is dropped
/// without a replacement, so a leave always drains.
#[test]
fn a_leaver_drains_even_below_rf() {
    let mut members = Members::founding(&[1u64, 2, 3]);
    members.leaving = alloc::vec![3];
    let base = Table {
        ballot: e(1),
        chains: alloc::vec![chain(e(1), e(0), &[1, 2, 3], &[])],
        members,
    };
    let live: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
    let promised = promises(&base, &[ok(1), ok(2), ok(3)]);
    let (t, _) = derive_table(
        &config(3),
        &live,
        e(BALLOT),
        &promised,
        &BTreeMap::new(),
        &quiet(),
    );
    assert_eq!(t.expect("a drop").chains[0].members, [1, 2]);
}

/// A member change asked for shows in the derived table's member set;
/// removed members leave the chains like failed ones.
#[test]
fn member_changes_reach_the_table() {
    let base = Table {
        ballot: e(1),
        chains: alloc::vec![chain(e(1), e(0), &[1, 2, 3], &[])],
        members: Members::founding(&[1u64, 2, 3]),
    };
    let live: BTreeSet<u64> = [1, 2, 4].into_iter().collect();
    let promised = promises(&base, &[ok(1), ok(2), ok(4)]);
    let intents: BTreeSet<MemberChange<u64>> = [MemberChange::Remove(3)].into_iter().collect();
    let none = BTreeSet::new();
    let asked = Asked {
        intents: &intents,
        expired: &none,
    };
    let (t, _) = derive_table(
        &config(3),
        &live,
        e(BALLOT),
        &promised,
        &BTreeMap::new(),
        &asked,
    );
    let t = t.expect("a change");
    assert_eq!(t.members.ids().copied().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(t.members.version, 1);
    assert!(!t.chains[0].members.contains(&3));
    // Node 4 asked to join: added (one change per round).
    let intents: BTreeSet<MemberChange<u64>> = [MemberChange::Join(4)].into_iter().collect();
    let asked = Asked {
        intents: &intents,
        expired: &none,
    };
    let (t, _) = derive_table(
        &config(3),
        &live,
        e(BALLOT),
        &promised,
        &BTreeMap::new(),
        &asked,
    );
    assert!(t.expect("a join").members.contains(&4));
}
