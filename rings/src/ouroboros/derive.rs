//! Deriving the next table: pure functions from what a majority promised (and sealed tails reported) to the chains of the next round.
//!
//! # Deriving a chain
//! Survivors are the members that are live (Sundial) *or* answered this
//! round, minus those that report having lost their log (stale) or were
//! found slow (`bypass`); they keep their order. Replacements come from the
//! Ankh chain over live members (then any live member) and are appended at
//! the end, as learners while two members remain (see the crate-level
//! Ouroboros docs), until `rf`. The new head must be a member that reported
//! itself caught up in *this very chain epoch*. A chain one longer than `rf`
//! (after a recovery put a former member in front) drops the surplus from
//! the end once every member is caught up in the epoch, which is safe as a
//! failure is.
//!
//! # Recovery from a former member
//! If no caught-up member of the chain's epoch `e` survives, the round first
//! seals the chain's tail (see `chain`). Every record acknowledged before
//! `e` is on each member that was caught up in `e.prev` when it left (a node
//! remembers that, `left_ready`, until its log changes). So a former member
//! with `left_ready = e.prev` (or still caught up in `e.prev`) whose log
//! matches the sealed tail's at the tail's last committed offset holds every
//! acknowledged record: it becomes the head and keeps its log
//! (`Chain::keep`). If the tail does not answer or no such node exists, the
//! chain is left alone: the partition waits rather than risk a head that
//! misses acknowledged records.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::config::Promised;
use super::members::{self, MemberInputs};
use super::part::epoch_at;
use super::place::{ankh_of, placement};
use super::{Chain, Epoch, MemberChange, OuroborosConfig, PartReport, SealInfo, Table};
use crate::contract::NodeId;

/// What a round does once its promises (and seals) are in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Decision<I> {
    /// Propose `table` (which gives `changed` chains a new epoch).
    Propose {
        /// The table to have accepted.
        table: Table<I>,
        /// Chains with a new epoch.
        changed: u32,
    },
    /// Nothing to change and nothing half-done: the round is finished; the
    /// configurator installs `newest_committed` if it is newer than its own.
    Finish {
        /// The newest committed table reported.
        newest_committed: Option<Table<I>>,
    },
}

/// The decision of a round with `ballot` from `promises` (a majority) and
/// the final words of the tails it sealed.
pub(super) fn decide<I: NodeId>(
    config: &OuroborosConfig,
    live: &BTreeSet<I>,
    ballot: Epoch,
    promises: &BTreeMap<I, Promised<I>>,
    sealed: &BTreeMap<u32, SealInfo>,
    asked: &Asked<'_, I>,
) -> Decision<I> {
    let (table, changed) = derive_table(config, live, ballot, promises, sealed, asked);
    // A round that sealed tails commits a table even when it
    // changes nothing, so those tails learn they may go on.
    let still_sealed = newest_base(promises).is_some_and(|b| {
        promises.values().any(|(_, _, r)| {
            r.iter().any(|x| {
                x.sealed_in.is_some() && b.chains.get(x.p as usize).map(|c| c.epoch) == x.sealed_in
            })
        })
    });
    let table = match table {
        None if !sealed.is_empty() || still_sealed => newest_base(promises).map(|b| Table {
            ballot,
            chains: b.chains.clone(),
            members: b.members.clone(),
        }),
        t => t,
    };
    match table {
        Some(table) => Decision::Propose { table, changed },
        None => {
            let newest = promises
                .values()
                .map(|(s, _, _)| s.committed.ballot)
                .max()
                .unwrap_or_default();
            Decision::Finish {
                newest_committed: promises
                    .values()
                    .find(|(s, _, _)| s.committed.ballot == newest)
                    .map(|(s, _, _)| s.committed.clone()),
            }
        }
    }
}

/// What the configurator was asked for, besides the chains' health: the
/// member changes others asked for, and the members it saw dead for too
/// long.
pub(super) struct Asked<'a, I> {
    /// Intents held by the configurator.
    pub intents: &'a BTreeSet<MemberChange<I>>,
    /// Members dead past `replace_after` in the configurator's view.
    pub expired: &'a BTreeSet<I>,
}

/// The next table from the newest state a majority reported, or `None`
/// if the newest committed table needs no change.
fn derive_table<I: NodeId>(
    config: &OuroborosConfig,
    live: &BTreeSet<I>,
    ballot: Epoch,
    promises: &BTreeMap<I, Promised<I>>,
    sealed: &BTreeMap<u32, SealInfo>,
    asked: &Asked<'_, I>,
) -> (Option<Table<I>>, u32) {
    let mut pending = false;
    let mut newest_committed = Epoch::default();
    for (s, _, _) in promises.values() {
        newest_committed = newest_committed.max(s.committed.ballot);
    }
    let Some(base) = newest_base(promises) else {
        return (None, 0);
    };
    if base.ballot > newest_committed {
        pending = true;
    }
    // The member set first (one change at most; see `members`).
    let answered: BTreeSet<I> = promises.keys().cloned().collect();
    let in_chains: BTreeSet<I> = base
        .chains
        .iter()
        .flat_map(|c| c.members.iter().chain(c.learners.iter()))
        .cloned()
        .collect();
    let next_members = members::next_members(&MemberInputs {
        base: &base.members,
        base_committed: !pending,
        intents: asked.intents,
        answered: &answered,
        expired: asked.expired,
        in_chains: &in_chains,
    });
    let members_changed = next_members != base.members;
    let stale: BTreeSet<(I, u32)> = promises
        .iter()
        .flat_map(|(n, (_, st, _))| st.iter().map(move |p| (n.clone(), *p)))
        .collect();
    let reports: BTreeMap<(I, u32), &PartReport> = promises
        .iter()
        .flat_map(|(n, (_, _, r))| r.iter().map(move |x| ((n.clone(), x.p), x)))
        .collect();
    let ready = |n: &I, p: u32, e: Epoch| {
        reports
            .get(&(n.clone(), p))
            .is_some_and(|r| r.ready_in == Some(e))
    };
    // Alive: a member (of the next set) live by Sundial, or that answered
    // this round (a node that answers is reachable, whatever a slow
    // detector says). Staying: alive and not leaving.
    let alive = |m: &I| next_members.contains(m) && (live.contains(m) || promises.contains_key(m));
    let staying = |m: &I| alive(m) && !next_members.is_leaving(m);
    let staying_n = next_members.ids().filter(|m| staying(m)).count();
    // Bypass: a member its predecessor reported slow in this very chain
    // epoch leaves the chain (like a failed one) and is not added back
    // in this round.
    let slow: BTreeSet<(I, u32)> = reports
        .iter()
        .filter_map(|((n, p), r)| {
            let c = base.chains.get(*p as usize)?;
            if r.slow_successor != Some(c.epoch) {
                return None;
            }
            let i = c.members.iter().position(|m| m == n)?;
            c.members.get(i + 1).map(|s| (s.clone(), *p))
        })
        .collect();
    // Placement over the members that stay (Ankh, as the log uses it);
    // fill-ins when a placed member is down: Ankh over those alive.
    let placed = placement(config, &next_members);
    let ring = ankh_of(config, next_members.ids().filter(|m| staying(m)).cloned());
    let mut moves = base
        .chains
        .iter()
        .filter(|c| !c.learners.is_empty())
        .count();
    let mut changed = 0;
    let chains: Vec<Chain<I>> = base
        .chains
        .iter()
        .enumerate()
        .map(|(p, c)| {
            let p32 = p as u32;
            let mut survivors: Vec<I> = c
                .members
                .iter()
                .filter(|m| alive(m) && !stale.contains(&((*m).clone(), p32)))
                .cloned()
                .collect();
            // Bypass slow members only while two caught-up members of
            // this epoch remain: a slow copy is still a complete copy,
            // and dropping it must not leave the data on one node.
            let fast_ready = survivors
                .iter()
                .filter(|m| !slow.contains(&((*m).clone(), p32)) && ready(m, p32, c.epoch))
                .count();
            if fast_ready >= 2 {
                survivors.retain(|m| !slow.contains(&(m.clone(), p32)));
            }
            // The new head must be known to hold everything: it is a
            // caught-up member of this very chain epoch (so every
            // acknowledgement included it). Otherwise leave the chain.
            let head_ok = survivors.first().is_some_and(|h| ready(h, p32, c.epoch));
            let mut keep = None;
            let mut next = survivors;
            if !head_ok {
                let Some(h) = sealed
                    .get(&p32)
                    .and_then(|si| recovery_head(c, p32, si, &reports, &stale))
                    .filter(|h| next_members.contains(h))
                else {
                    return c.clone();
                };
                next.retain(|m| *m != h);
                next.insert(0, h.clone());
                keep = Some(h);
            }
            // A recovery put a former member in front of the survivors,
            // so the chain may be longer than `rf`: once every member is
            // caught up in this epoch, drop the surplus from the end
            // (removing a caught-up member is safe, as a failure is:
            // the new tail holds everything acknowledged).
            let desired: &[I] = placed.get(p).map(Vec::as_slice).unwrap_or(&[]);
            let target = config.rf.min(staying_n).max(1);
            if head_ok && next.len() > target && next.iter().all(|m| ready(m, p32, c.epoch)) {
                // Members that placement no longer wants here go first
                // (from the end), then the surplus from the end.
                while next.len() > target {
                    match next.iter().rposition(|m| !desired.contains(m)) {
                        Some(i) => {
                            next.remove(i);
                        }
                        None => next.truncate(target),
                    }
                }
            }
            // Learners that caught up join at the end (they hold the
            // tail's log: it fed them); the others keep learning.
            let mut learners: Vec<I> = Vec::new();
            for l in &c.learners {
                if !staying(l) || stale.contains(&(l.clone(), p32)) || next.contains(l) {
                    continue;
                }
                // (With fewer than two members left, a learner joins
                // at once and catches up as a member: the chain must
                // not acknowledge on one copy while a second exists.)
                if ready(l, p32, c.epoch) || next.len() < 2 {
                    next.push(l.clone());
                } else {
                    learners.push(l.clone());
                }
            }
            // Replacements: learners while at least two members carry
            // the chain (so acknowledgements still mean two copies);
            // with fewer, members at once (appends wait for them).
            let candidates: Vec<I> = desired
                .iter()
                .chain(ring.chain_of(p32))
                .cloned()
                .chain(live.iter().cloned())
                .filter(|d| staying(d))
                .collect();
            for d in &candidates {
                // Members that leave do not count towards `rf`.
                let kept = next.iter().filter(|m| !next_members.is_leaving(m)).count();
                if kept + learners.len() >= config.rf {
                    break;
                }
                if next.contains(d) || learners.contains(d) || slow.contains(&(d.clone(), p32)) {
                    continue;
                }
                if next.len() >= 2 {
                    learners.push(d.clone());
                } else {
                    next.push(d.clone());
                }
            }
            // Rebalance: a full, caught-up chain with a member placement
            // no longer wants here (a node joined, or one is leaving)
            // gains the member placement wants as a learner, a bounded
            // number of chains at a time; once it caught up and joined,
            // the surplus rule above drops the unwanted one.
            let settled = learners.is_empty()
                && c.learners.is_empty()
                && head_ok
                && next.len() >= target
                && next.iter().all(|m| ready(m, p32, c.epoch));
            if settled && moves < config.max_moves && next.iter().any(|m| !desired.contains(m)) {
                if let Some(d) = desired.iter().find(|d| {
                    staying(d) && !next.contains(d) && !slow.contains(&((*d).clone(), p32))
                }) {
                    learners.push(d.clone());
                    moves += 1;
                }
            }
            let lost = c
                .members
                .iter()
                .chain(c.learners.iter())
                .any(|m| stale.contains(&(m.clone(), p32)));
            if next == c.members && learners == c.learners && !lost {
                c.clone()
            } else {
                changed += 1;
                Chain {
                    epoch: ballot,
                    prev: c.epoch,
                    keep,
                    members: next,
                    learners,
                }
            }
        })
        .collect();
    if changed == 0 && !pending && !members_changed {
        return (None, 0);
    }
    (
        Some(Table {
            ballot,
            chains,
            members: next_members,
        }),
        changed,
    )
}

/// The newest table reported in `promises` (accepted first).
pub(super) fn newest_base<I: NodeId>(promises: &BTreeMap<I, Promised<I>>) -> Option<&Table<I>> {
    let mut base: Option<&Table<I>> = None;
    for (s, _, _) in promises.values() {
        for t in [Some(&s.committed), s.accepted.as_ref()]
            .into_iter()
            .flatten()
        {
            if base.is_none_or(|b| t.ballot > b.ballot) {
                base = Some(t);
            }
        }
    }
    base
}

/// Chains with no caught-up survivor whose tail answered as the tail of
/// that very epoch: candidates for recovery, after sealing that tail.
pub(super) fn to_seal<I: NodeId>(
    live: &BTreeSet<I>,
    promises: &BTreeMap<I, Promised<I>>,
) -> Vec<(u32, I, Epoch)> {
    let Some(base) = newest_base(promises) else {
        return Vec::new();
    };
    let alive = |m: &I| live.contains(m) || promises.contains_key(m);
    let mut out = Vec::new();
    for (p, c) in base.chains.iter().enumerate() {
        let p32 = p as u32;
        if c.epoch == c.prev {
            continue;
        }
        let stale_of = |m: &I| promises.get(m).is_some_and(|(_, st, _)| st.contains(&p32));
        let head = c.members.iter().find(|m| alive(m) && !stale_of(m));
        let head_ready = head.is_some_and(|h| {
            promises.get(h).is_some_and(|(_, _, r)| {
                r.iter().any(|x| x.p == p32 && x.ready_in == Some(c.epoch))
            })
        });
        if head_ready {
            continue;
        }
        let Some(tail) = c.members.last() else {
            continue;
        };
        let tail_answers = promises
            .get(tail)
            .is_some_and(|(_, _, r)| r.iter().any(|x| x.p == p32 && x.tail_of == Some(c.epoch)));
        if tail_answers {
            out.push((p32, tail.clone(), c.epoch));
        }
    }
    out
}

/// A former member that can head chain `c` although no caught-up member
/// of `c`'s epoch survives. `c`'s tail was sealed first, so nothing above
/// its commit point was or will be acknowledged in `c`'s epoch; every
/// record acknowledged before that epoch is on each member that was
/// caught up in the epoch `c` came from (`c.prev`) when it left it. A
/// node that was such a member, whose log has not changed since, and
/// whose log matches the sealed tail's up to its commit point (same epoch
/// at the last committed offset: log matching) holds every acknowledged
/// record. Otherwise the chain waits.
fn recovery_head<I: NodeId>(
    c: &Chain<I>,
    p: u32,
    seal: &SealInfo,
    reports: &BTreeMap<(I, u32), &PartReport>,
    stale: &BTreeSet<(I, u32)>,
) -> Option<I> {
    let tc = seal.commit;
    let want = if tc == 0 {
        None
    } else {
        Some(epoch_at(&seal.runs, seal.len, tc - 1)?)
    };
    reports
        .iter()
        .filter(|((n, q), _)| *q == p && !stale.contains(&(n.clone(), p)))
        .filter(|(_, r)| r.left_ready == Some(c.prev) || r.ready_in == Some(c.prev))
        .filter(|(_, r)| {
            r.len >= tc && want.is_none_or(|w| epoch_at(&r.runs, r.len, tc - 1) == Some(w))
        })
        .map(|((n, _), _)| n.clone())
        .next()
}

#[cfg(test)]
mod tests;
