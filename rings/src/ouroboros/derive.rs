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
use super::part::epoch_at;
use super::place::ankh_of;
use super::{Chain, Epoch, OuroborosConfig, PartReport, SealInfo, Table};
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
) -> Decision<I> {
    let (table, changed) = derive_table(config, live, ballot, promises, sealed);
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

/// The next table from the newest state a majority reported, or `None`
/// if the newest committed table needs no change.
fn derive_table<I: NodeId>(
    config: &OuroborosConfig,
    live: &BTreeSet<I>,
    ballot: Epoch,
    promises: &BTreeMap<I, Promised<I>>,
    sealed: &BTreeMap<u32, SealInfo>,
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
    // Alive: live by Sundial, or answered this round (a node that
    // answers is reachable, whatever a slow detector says).
    let alive = |m: &I| live.contains(m) || promises.contains_key(m);
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
    let ring = ankh_of(config, live.iter().cloned());
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
            if head_ok && next.len() > config.rf && next.iter().all(|m| ready(m, p32, c.epoch)) {
                next.truncate(config.rf);
            }
            // Learners that caught up join at the end (they hold the
            // tail's log: it fed them); the others keep learning.
            let mut learners: Vec<I> = Vec::new();
            for l in &c.learners {
                if !alive(l) || stale.contains(&(l.clone(), p32)) || next.contains(l) {
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
            let candidates: Vec<I> = ring
                .chain_of(p32)
                .cloned()
                .chain(live.iter().cloned())
                .collect();
            for d in candidates {
                if next.len() + learners.len() >= config.rf {
                    break;
                }
                if next.contains(&d) || learners.contains(&d) || slow.contains(&(d.clone(), p32)) {
                    continue;
                }
                if next.len() >= 2 {
                    learners.push(d);
                } else {
                    next.push(d);
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
    if changed == 0 && !pending {
        return (None, 0);
    }
    (Some(Table { ballot, chains }), changed)
}

/// The newest table reported in `promises` (accepted first).
fn newest_base<I: NodeId>(promises: &BTreeMap<I, Promised<I>>) -> Option<&Table<I>> {
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
