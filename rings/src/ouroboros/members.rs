//! The member set's changes: which one a round makes, and the quorums a round needs.
//!
//! # What changes
//! The table carries the log's member set ([`Members`]): the acceptors
//! whose majorities decide the next table, the nodes chains are placed on
//! (Ankh over the members that are not leaving) and the Cartouche ring. A
//! node asks for a change by sending an *intent* to every member:
//! `Join(itself)` (auto-join, or `shen member add`), `Leave(itself)`
//! (`shen leave`) or `Remove(other)` (`shen member remove`). A configurator
//! also removes on its own a member it has seen dead for longer than
//! `replace_after`. [`next_members`] picks what a round does with them:
//! - leaving is marked at once (it changes no quorum): a leaving member
//!   gains no replica, and its chains are moved away like a rebalance;
//! - at most **one node** is added or removed, and only when the round's
//!   base table is known committed: a dead member named by `Remove` or
//!   dead past `replace_after`; a leaving member that is in no chain any
//!   more (drained); a non-member that asked to join and answered the
//!   round. `Remove` of a member that answers is a graceful leave. A node
//!   removed after a graceful leave is remembered as *departed*: it does
//!   not ask to join again on its own (even restarted), and a `Join` it
//!   sends about itself is ignored; an operator's add, asked by another
//!   node, still adds it. A
//!   member dead past `replace_after` is removed on its own only if the
//!   set without it keeps a margin (all others answer, or one more than a
//!   majority does): with two of five dead, removing one would leave four
//!   members that stop at the next failure, and the "dead" one may be
//!   back soon; the operator's `Remove` is obeyed. No change is made
//!   unless the nodes answering the round are a majority of the new set
//!   (else its acceptance could not complete, and a half-accepted set must
//!   be finished before any other).
//!
//! # Why a table is still decided once
//! Write `M(T)` for table `T`'s member set and `B` for the base a round
//! derives from (the newest table, accepted or committed, among its
//! promises). The rules:
//! 1. Phase 1 ends only with promises from a majority of `M(B)`, `B`
//!    recomputed as promises arrive (a newer base names new members, and
//!    the configurator sends them `Prepare` too).
//! 2. A round's table `T` has `M(T) = M(B)`, or one node more or fewer, and
//!    the latter only if `B` was reported *committed* by some promise.
//! 3. Phase 2 ends only with `Accepted` from a majority of `M(B)` **and** a
//!    majority of `M(T)`.
//!
//! Two sets that differ by one node have intersecting majorities (a
//! majority of `M ∪ {x}` holds at least half of `M`, rounded up, plus one
//! minus `x`). Claim: if table `T` is chosen (accepted per rule 3) at
//! ballot `b`, every round with a higher ballot `b'` derives from `T` or a
//! table derived from it. By induction over ballots, as in Paxos: let the
//! round `b'` end phase 1 with base `B'` and a majority `Q` of `M(B')`.
//! - If `M(B') = M(T)`'s base set or differs from it by one node, `Q`
//!   meets `T`'s accepting majority in a node that accepted `T` before it
//!   promised `b'` (after promising `b'` it refuses `b < b'`), so `B'` has a
//!   ballot at least `b`, and by induction derives from `T`.
//! - Otherwise `B'` is older than some chosen table `C` (on the way to `T`)
//!   that changed the member set from `M(B')`. By rule 2 `C`'s base was
//!   committed with the set `M(B')`, and by rule 3 `C` was accepted by a
//!   majority of `M(B')`, which meets `Q`: some promise reports a table at
//!   least as new as `C`, contradicting `B'` being the newest. So this
//!   case cannot arise.
//!
//! Rule 2's "committed" matters: two rounds that both derive from the same
//! uncommitted base could otherwise change the set in two different ways
//! (one drops `a`, the other `d`), and `{a,b,c}` and `{b,c,d}` have
//! disjoint majorities (`{a,b}`, `{c,d}`); the same trap single-server
//! changes in Raft avoid by committing an entry of the new term first.
//!
//! Reads: a tail's majority check ([`Ouroboros`]'s read path) asks a
//! majority of its table's members and carries the table's member
//! version; a member whose tables have a newer version answers no. A newer
//! chosen version was accepted by a majority of the older set, which meets
//! the check's majority, so a read never passes against a member set that
//! was already replaced.
//!
//! Cartouche follows the committed table's members (the reactor hands them
//! over); its generations use the members' slots, never reused, so two
//! nodes never run for the same generation. Ouroboros's safety rests on
//! the rules above, not on Cartouche.
//!
//! [`Ouroboros`]: super::Ouroboros

use alloc::collections::{BTreeMap, BTreeSet};

use super::{MemberChange, Members};
use crate::contract::NodeId;

/// True if `voters` include a majority of `members`.
pub(super) fn has_majority<'a, I: NodeId + 'a>(
    voters: impl IntoIterator<Item = &'a I>,
    members: &Members<I>,
) -> bool {
    let n = voters.into_iter().filter(|v| members.contains(v)).count();
    !members.is_empty() && n >= members.majority()
}

/// What a round knows when it picks the member set of its table.
pub(super) struct MemberInputs<'a, I> {
    /// The base table's member set.
    pub base: &'a Members<I>,
    /// The base was reported committed by some promise.
    pub base_committed: bool,
    /// The intents the configurator holds.
    pub intents: &'a BTreeSet<MemberChange<I>>,
    /// The nodes that answered this round (promised).
    pub answered: &'a BTreeSet<I>,
    /// Members the configurator has seen dead past `replace_after`.
    pub expired: &'a BTreeSet<I>,
    /// Nodes listed (as member or learner) by some chain of the base.
    pub in_chains: &'a BTreeSet<I>,
}

/// The member set of the round's table (the base's when nothing changes).
pub(super) fn next_members<I: NodeId>(x: &MemberInputs<'_, I>) -> Members<I> {
    let mut next = x.base.clone();
    let mut bumped = false;
    let staying = |m: &Members<I>| m.ids().filter(|n| !m.leaving.contains(n)).count();
    // 1. Leaving is marked at once: it changes no quorum.
    for c in x.intents {
        let (MemberChange::Leave(n) | MemberChange::Remove(n)) = c else {
            continue;
        };
        if next.contains(n)
            && !next.leaving.contains(n)
            && x.answered.contains(n)
            && staying(&next) > 1
        {
            next.leaving.push(n.clone());
            next.leaving.sort();
            bumped = true;
        }
    }
    // 2. At most one node in or out, and only from a committed base.
    if x.base_committed {
        let dead = |n: &I| !x.answered.contains(n);
        let removed_by_intent = x.intents.iter().find_map(|c| match c {
            MemberChange::Remove(n) if next.contains(n) && dead(n) => Some(n.clone()),
            _ => None,
        });
        // A member dead past `replace_after` goes on its own only if the
        // set without it keeps a margin: every other member answered, or
        // one more than a majority did. (Removing one of two dead members
        // of five leaves four that stop at the next failure, and the
        // "dead" one may come back; an operator's `Remove` is obeyed.)
        let margin = |gone: &I| {
            let rest: Vec<&I> = next.ids().filter(|m| *m != gone).collect();
            let up = rest.iter().filter(|m| x.answered.contains(**m)).count();
            up == rest.len() || up > rest.len() / 2 + 1
        };
        // Any change only if the nodes answering this round are a
        // majority of the new set: otherwise its acceptance could not
        // complete, and a half-accepted set must be finished before any
        // other (so removing a drained leaver while two of five are down
        // would stop the log until one of them is back).
        let completes = |gone: &I| {
            let rest: Vec<&I> = next.ids().filter(|m| *m != gone).collect();
            let up = rest.iter().filter(|m| x.answered.contains(**m)).count();
            up > rest.len() / 2
        };
        let out = removed_by_intent
            .or_else(|| {
                x.expired
                    .iter()
                    .find(|n| next.contains(n) && dead(n) && margin(n))
                    .cloned()
            })
            .or_else(|| {
                next.leaving
                    .iter()
                    .find(|n| !x.in_chains.contains(n))
                    .cloned()
            })
            .filter(|n| next.len() > 1 && completes(n));
        // (A joiner answered, so the new set's answering nodes are the old
        // set's plus one.)
        let up = next.ids().filter(|m| x.answered.contains(*m)).count() + 1;
        let new_len = next.len() + 1;
        let join_completes = up > new_len / 2;
        if let Some(n) = out {
            next.nodes.retain(|(m, _)| *m != n);
            if next.leaving.contains(&n) {
                // A graceful leave: remember it, so the node does not
                // join again on its own.
                next.leaving.retain(|m| *m != n);
                next.departed.retain(|m| *m != n);
                next.departed.push(n.clone());
                if next.departed.len() > super::types::DEPARTED_KEPT {
                    next.departed.remove(0);
                }
            }
            bumped = true;
        } else if let Some(n) = x.intents.iter().find_map(|c| match c {
            MemberChange::Join(n)
                if join_completes && !next.contains(n) && x.answered.contains(n) =>
            {
                Some(n.clone())
            }
            _ => None,
        }) {
            let slot = next.next_slot;
            next.next_slot = next.next_slot.wrapping_add(1);
            let at = next
                .nodes
                .binary_search_by(|(m, _)| m.cmp(&n))
                .unwrap_or_else(|i| i);
            next.departed.retain(|m| *m != n);
            next.nodes.insert(at, (n, slot));
            bumped = true;
        }
    }
    if bumped {
        next.version += 1;
    }
    next
}

/// True if intent `c` is done in a table with members `m`.
pub(super) fn satisfied<I: NodeId>(c: &MemberChange<I>, m: &Members<I>) -> bool {
    match c {
        MemberChange::Join(n) => m.contains(n),
        MemberChange::Leave(n) | MemberChange::Remove(n) => !m.contains(n),
    }
}

/// Intents older than this many ticks are forgotten unless resent.
pub(super) const INTENT_TTL_TICKS: u32 = 200;

/// Drop intents that are done or were not refreshed in time.
pub(super) fn prune<I: NodeId>(
    intents: &mut BTreeMap<MemberChange<I>, crate::contract::Time>,
    m: &Members<I>,
    now: crate::contract::Time,
    ttl: core::time::Duration,
) {
    intents.retain(|c, at| !satisfied(c, m) && now.saturating_since(*at) < ttl);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    fn run(
        base: &Members<u64>,
        committed: bool,
        intents: &[MemberChange<u64>],
        answered: &[u64],
        expired: &[u64],
        in_chains: &[u64],
    ) -> Members<u64> {
        let intents: BTreeSet<_> = intents.iter().cloned().collect();
        next_members(&MemberInputs {
            base,
            base_committed: committed,
            intents: &intents,
            answered: &set(answered),
            expired: &set(expired),
            in_chains: &set(in_chains),
        })
    }

    fn ids(m: &Members<u64>) -> Vec<u64> {
        m.ids().copied().collect()
    }

    #[test]
    fn majorities_count_only_members() {
        let m = Members::founding(&[1u64, 2, 3]);
        // (voters, majority?)
        let cases: &[(&[u64], bool)] = &[
            (&[1, 2], true),
            (&[1], false),
            (&[1, 9, 8], false),
            (&[3, 2, 9], true),
            (&[], false),
        ];
        for (voters, want) in cases {
            assert_eq!(has_majority(voters.iter(), &m), *want, "{voters:?}");
        }
        assert!(!has_majority([1u64].iter(), &Members::founding(&[])));
    }

    #[test]
    fn one_change_per_round_and_only_from_a_committed_base() {
        use MemberChange::*;
        let base = Members::founding(&[1u64, 2, 3]);
        let all = [1u64, 2, 3, 4, 5];
        // (intents, committed, answered, expired, in_chains, members after, leaving after)
        type Case = (
            Vec<MemberChange<u64>>,
            bool,
            Vec<u64>,
            Vec<u64>,
            Vec<u64>,
            Vec<u64>,
            Vec<u64>,
        );
        let cases: Vec<Case> = vec![
            // A joiner that answered is added; two joiners: one at a time.
            (
                vec![Join(4), Join(5)],
                true,
                all.to_vec(),
                vec![],
                vec![1, 2, 3],
                vec![1, 2, 3, 4],
                vec![],
            ),
            // ... but not from an uncommitted base.
            (
                vec![Join(4)],
                false,
                all.to_vec(),
                vec![],
                vec![1, 2, 3],
                vec![1, 2, 3],
                vec![],
            ),
            // A joiner that did not answer waits.
            (
                vec![Join(4)],
                true,
                vec![1, 2, 3],
                vec![],
                vec![1, 2, 3],
                vec![1, 2, 3],
                vec![],
            ),
            // Remove of a dead member: at once; it wins over a join.
            (
                vec![Join(4), Remove(3)],
                true,
                vec![1, 2, 4],
                vec![],
                vec![1, 2, 3],
                vec![1, 2],
                vec![],
            ),
            // Remove of a live member is a graceful leave.
            (
                vec![Remove(3)],
                true,
                vec![1, 2, 3],
                vec![],
                vec![1, 2, 3],
                vec![1, 2, 3],
                vec![3],
            ),
            // Leave marks even from an uncommitted base (no quorum changes).
            (
                vec![Leave(2)],
                false,
                vec![1, 2, 3],
                vec![],
                vec![1, 2, 3],
                vec![1, 2, 3],
                vec![2],
            ),
            // An expired dead member is removed; a live "expired" one is not.
            (
                vec![],
                true,
                vec![1, 2],
                vec![3],
                vec![1, 2, 3],
                vec![1, 2],
                vec![],
            ),
            (
                vec![],
                true,
                vec![1, 2, 3],
                vec![3],
                vec![1, 2, 3],
                vec![1, 2, 3],
                vec![],
            ),
        ];
        for (i, (intents, committed, answered, expired, in_chains, want, leaving)) in
            cases.into_iter().enumerate()
        {
            let got = run(&base, committed, &intents, &answered, &expired, &in_chains);
            assert_eq!(ids(&got), want, "case {i}");
            assert_eq!(got.leaving, leaving, "case {i}");
            let changed = ids(&got) != ids(&base) || !got.leaving.is_empty();
            assert_eq!(got.version, u64::from(changed), "case {i}");
        }
    }

    #[test]
    fn a_drained_leaver_is_removed_and_slots_are_never_reused() {
        let mut base = Members::founding(&[1u64, 2, 3]);
        base.leaving = vec![2];
        // Still in a chain: stays.
        let got = run(&base, true, &[], &[1, 2, 3], &[], &[1, 2, 3]);
        assert_eq!(ids(&got), vec![1, 2, 3]);
        // Drained: removed, and remembered as departed.
        let got = run(&base, true, &[], &[1, 2, 3], &[], &[1, 3]);
        assert_eq!(ids(&got), vec![1, 3]);
        assert!(got.leaving.is_empty());
        assert_eq!(got.departed, vec![2]);
        // A later joiner gets a fresh slot, not 2's.
        let got = run(
            &got,
            true,
            &[MemberChange::Join(2)],
            &[1, 2, 3],
            &[],
            &[1, 3],
        );
        assert_eq!(got.nodes, vec![(1, 0), (2, 3), (3, 2)]);
        assert!(got.departed.is_empty(), "added again: no longer departed");
    }

    #[test]
    fn expiry_keeps_a_margin() {
        let five = Members::founding(&[1u64, 2, 3, 4, 5]);
        // One of five dead: removed (the other four answer).
        let got = run(&five, true, &[], &[1, 2, 3, 4], &[5], &[1, 2, 3]);
        assert_eq!(ids(&got), vec![1, 2, 3, 4]);
        // Two of five dead: neither goes on its own (three of the four left
        // would be exactly a majority) ...
        let got = run(&five, true, &[], &[1, 2, 3], &[4, 5], &[1, 2, 3]);
        assert_eq!(ids(&got), vec![1, 2, 3, 4, 5]);
        // ... but an operator's remove is obeyed.
        let got = run(
            &five,
            true,
            &[MemberChange::Remove(5)],
            &[1, 2, 3],
            &[4, 5],
            &[1, 2, 3],
        );
        assert_eq!(ids(&got), vec![1, 2, 3, 4]);
        // Two of seven dead: one goes (five left, four of them up).
        let seven = Members::founding(&[1u64, 2, 3, 4, 5, 6, 7]);
        let got = run(&seven, true, &[], &[1, 2, 3, 4, 5], &[6, 7], &[1, 2, 3]);
        assert_eq!(ids(&got), vec![1, 2, 3, 4, 5, 7]);
    }

    #[test]
    fn no_change_that_could_not_complete() {
        let mut five = Members::founding(&[1u64, 2, 3, 4, 5]);
        five.leaving = vec![2];
        // 2 drained, but 4 and 5 are down: {1, 3, 4, 5} has only 1 and 3
        // up, so 2 stays until one is back.
        let got = run(&five, true, &[], &[1, 2, 3], &[], &[1, 3]);
        assert_eq!(ids(&got), vec![1, 2, 3, 4, 5]);
        let got = run(&five, true, &[], &[1, 2, 3, 4], &[], &[1, 3]);
        assert_eq!(ids(&got), vec![1, 3, 4, 5]);
        // An operator's remove of a dead member waits the same way.
        let three = Members::founding(&[1u64, 2, 3]);
        let got = run(&three, true, &[MemberChange::Remove(3)], &[1], &[], &[1]);
        assert_eq!(ids(&got), vec![1, 2, 3]);
        // A join needs the old set's answering majority too (one of three
        // up plus the joiner is two of four).
        let got = run(&three, true, &[MemberChange::Join(9)], &[1, 9], &[], &[1]);
        assert_eq!(ids(&got), vec![1, 2, 3]);
        let got = run(
            &three,
            true,
            &[MemberChange::Join(9)],
            &[1, 2, 9],
            &[],
            &[1],
        );
        assert_eq!(ids(&got), vec![1, 2, 3, 9]);
    }

    #[test]
    fn the_last_member_never_leaves() {
        let base = Members::founding(&[1u64]);
        let got = run(&base, true, &[MemberChange::Leave(1)], &[1], &[], &[1]);
        assert_eq!((ids(&got), got.leaving.len()), (vec![1], 0));
        let two = Members::founding(&[1u64, 2]);
        let got = run(
            &two,
            true,
            &[MemberChange::Leave(1), MemberChange::Leave(2)],
            &[1, 2],
            &[],
            &[1, 2],
        );
        assert_eq!(got.leaving, vec![1], "one of two may leave, not both");
    }

    #[test]
    fn done_intents_are_satisfied() {
        let m = Members::founding(&[1u64, 2]);
        assert!(satisfied(&MemberChange::Join(2), &m));
        assert!(!satisfied(&MemberChange::Join(3), &m));
        assert!(satisfied(&MemberChange::Leave(3), &m));
        assert!(!satisfied(&MemberChange::Remove(1), &m));
    }
}
