//! The configuration round: Paxos over the whole cluster with Cartouche ballots (prepare, seal, accept, commit), its acceptor side, and re-learning the table after a restart.
//!
//! # The round
//! `Prepare(b)` (b = the configurator's Cartouche fencing number) →
//! `Promise(b, accepted, committed, stale partitions, caught-up chains,
//! slow successors)` from a majority (then up to 3 ticks more for every live
//! member) → the next table derived (`derive`) from the newest table
//! reported, accepted ones first as Paxos requires → `Accept` → majority
//! `Accepted` → `Commit` to all. Replicas answer an older sender with their
//! table; a newer epoch makes them ask the sender for its table. A table
//! accepted but never committed makes its holders ask for the token after
//! one round timeout, so a round finishes it; a round that sealed tails but
//! changes nothing still commits the unchanged table (that unseals them).
//!
//! # Ballots after a whole-cluster restart
//! Cartouche's fencing numbers then start low again while the acceptors
//! remember their promises: a configurator whose grant is not above the
//! highest promise it knows of takes the next ballot above it (`Nack`s tell
//! it higher ones). Two configurators may then pick the same ballot, which
//! is safe: a promise needs a strictly higher ballot, so at most one gathers
//! a majority.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::derive::{self, Asked, Decision};
use super::members;
use super::{
    Chain, Epoch, MemberChange, Members, Ouroboros, OuroborosEvent, OuroborosMsg, PartReport,
    PaxosState, SealInfo, Table,
};
use crate::contract::{NodeId, RingCtx, Time};

/// A promise: the acceptor's state, its stale partitions and its reports.
pub(super) type Promised<I> = (PaxosState<I>, Vec<u32>, Vec<PartReport>);

#[derive(Clone, Debug)]
pub(super) enum Phase<I> {
    Preparing {
        promises: BTreeMap<I, Promised<I>>,
        settle_at: Option<Time>,
        /// Tails asked to seal (partition → answer), once started.
        seals: Option<BTreeMap<u32, Option<SealInfo>>>,
        seal_until: Time,
    },
    Accepting {
        table: Table<I>,
        /// The member set of the table it was derived from: a majority of
        /// it and of `table.members` must accept (see `members`).
        base_members: Members<I>,
        accepted: BTreeSet<I>,
        changed: u32,
    },
}

#[derive(Clone, Debug)]
pub(super) struct Round<I> {
    pub(super) ballot: Epoch,
    pub(super) phase: Phase<I>,
    pub(super) deadline: Time,
    /// Every node sent this round's `Prepare` (members of newer tables
    /// that promises reveal are added).
    pub(super) asked: BTreeSet<I>,
}

impl<I: NodeId> Ouroboros<I> {
    /// True if some chain needs a change this node can see.
    pub fn needs_reconfig(&self, me: &I, now: Time) -> bool {
        // A table accepted but never committed (its configurator died or
        // was outvoted) blocks tail reads until a round finishes it.
        let pending = self.accepted.as_ref().is_some_and(|a| {
            a.ballot > self.table.ballot
                && now.saturating_since(self.accepted_at) >= self.config.round_timeout
        });
        if pending {
            return true;
        }
        let slow = self.slow.iter().any(|((p, e), (m, until))| {
            now < *until && {
                let c = self.chain(*p);
                c.epoch == *e && c.members.contains(m)
            }
        });
        if slow {
            return true;
        }
        if self.member_work(now) {
            return true;
        }
        let live_n = self.live_members().len();
        let m = &self.table.members;
        let staying_live = m
            .ids()
            .filter(|n| !m.is_leaving(n) && (self.live.contains(n) || *n == me))
            .count();
        let target = self.config.rf.min(staying_live).max(1);
        let moves = self
            .table
            .chains
            .iter()
            .filter(|c| !c.learners.is_empty())
            .count();
        self.table.chains.iter().enumerate().any(|(p, c)| {
            // (Not "fully acknowledged": under a steady load that is
            // rarely true at a tick, and a move needs no pause in writes.)
            let head_idle = c.members.first() == Some(me) && self.parts[p].ready;
            let desired = self.placement.get(p).map(Vec::as_slice).unwrap_or(&[]);
            // Placement wants another member here and one of the members
            // away (a join or a leave), and a move may start.
            let misplaced = head_idle
                && c.learners.is_empty()
                && moves < self.config.max_moves
                && c.members.iter().any(|n| !desired.contains(n))
                && desired
                    .iter()
                    .any(|d| !c.members.contains(d) && self.live.contains(d));
            let listed = c.members.len() + c.learners.len();
            misplaced
                || (head_idle && c.members.len() > target)
                || c
                    .members
                    .iter()
                    .chain(c.learners.iter())
                    .any(|n| !self.live.contains(n) || !m.contains(n))
                || (listed < self.config.rf && live_n > listed)
                || (self.parts[p].sealed == Some(c.epoch) && c.members.last() == Some(me))
                || (self.parts[p].stale && (c.members.contains(me) || c.learners.contains(me)))
                // A learner that caught up asks to join the chain.
                || (c.learners.contains(me) && self.parts[p].ready && !self.parts[p].stale)
                // A head whose chain is longer than `rf` and fully
                // acknowledged asks for the surplus to be dropped.
                || (c.members.len() > self.config.rf
                    && c.members.first() == Some(me)
                    && self.parts[p].ready
                    && self.parts[p].commit == self.parts[p].log.len())
        })
    }

    /// Run a configuration round with `ballot` (the fencing number of a
    /// Cartouche grant held now).
    pub fn reconfigure(&mut self, cx: &mut RingCtx<'_, I, Self>, ballot: Epoch) {
        // A grant's fencing number is normally above every ballot promised
        // so far. After the whole cluster restarted, Cartouche numbers start
        // low again while the acceptors remember (on disk) what they
        // promised: then the round goes just above the highest promise this
        // node knows of (a `Nack` tells it the higher ones). Two
        // configurators may then pick the same ballot; at most one of them
        // gathers a majority of promises (a promise needs a strictly higher
        // ballot), so a ballot still decides at most one table.
        let ballot = if ballot > self.promised || self.durable.is_none() {
            ballot
        } else {
            Epoch {
                generation: self.promised.generation,
                sequence: self.promised.sequence.saturating_add(1),
            }
        };
        if !self.recovered || ballot <= self.promised || self.round.is_some() {
            cx.emit(OuroborosEvent::ReconfigAborted { ballot });
            return;
        }
        self.promised = ballot;
        let mut promises = BTreeMap::new();
        promises.insert(
            cx.me.clone(),
            (
                self.paxos_state(),
                self.stale_parts(cx.me),
                self.part_reports(cx.me),
            ),
        );
        // Members, and live nodes that may be joining.
        let others: BTreeSet<I> = self
            .others(cx.me)
            .into_iter()
            .chain(self.live.iter().filter(|n| *n != cx.me).cloned())
            .collect();
        let mut asked = others.clone();
        asked.insert(cx.me.clone());
        self.round = Some(Round {
            ballot,
            phase: Phase::Preparing {
                promises,
                settle_at: None,
                seals: None,
                seal_until: Time::ZERO,
            },
            deadline: cx.now + self.config.round_timeout,
            asked,
        });
        let msg = OuroborosMsg::Prepare { ballot };
        cx.multicast(others.iter(), &msg);
        self.progress_round(cx);
    }

    pub(super) fn paxos_state(&self) -> PaxosState<I> {
        PaxosState {
            promised: self.promised,
            accepted: self.accepted.clone(),
            committed: self.table.clone(),
        }
    }

    fn stale_parts(&self, me: &I) -> Vec<u32> {
        (0..self.config.partitions)
            .filter(|&p| self.parts[p as usize].stale && self.position(p, me).is_some())
            .collect()
    }

    fn part_reports(&self, me: &I) -> Vec<PartReport> {
        (0..self.config.partitions)
            .filter_map(|p| {
                let part = &self.parts[p as usize];
                if part.stale {
                    return None;
                }
                let c = self.chain(p);
                let member = c.members.contains(me) || c.learners.contains(me);
                let ready_in = (member && part.ready).then_some(c.epoch);
                let tail_of = (c.members.last() == Some(me)).then_some(c.epoch);
                let left_ready = if member { None } else { part.left_ready };
                let slow_successor = self.slow.contains_key(&(p, c.epoch)).then_some(c.epoch);
                let sealed_in = part.sealed.filter(|e| *e == c.epoch && tail_of.is_some());
                if ready_in.is_none()
                    && tail_of.is_none()
                    && left_ready.is_none()
                    && slow_successor.is_none()
                {
                    return None;
                }
                Some(PartReport {
                    p,
                    ready_in,
                    left_ready,
                    tail_of,
                    len: part.log.len(),
                    runs: part.log.runs(),
                    slow_successor,
                    sealed_in,
                })
            })
            .collect()
    }

    pub(super) fn query(&mut self, cx: &mut RingCtx<'_, I, Self>, who: I) {
        let due = self
            .queried
            .get(&who)
            .is_none_or(|t| cx.now.saturating_since(*t) >= self.config.tick * 5);
        if due && &who != cx.me {
            self.queried.insert(who.clone(), cx.now);
            cx.send(who, OuroborosMsg::TableQuery);
        }
    }

    pub(super) fn on_prepare(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, ballot: Epoch) {
        if !self.recovered {
            return;
        }
        if ballot > self.promised {
            self.promised = ballot;
            let state = self.paxos_state();
            let stale = self.stale_parts(cx.me);
            let reports = self.part_reports(cx.me);
            cx.send(
                from,
                OuroborosMsg::Promise {
                    ballot,
                    state,
                    stale,
                    reports,
                },
            );
        } else {
            cx.send(
                from,
                OuroborosMsg::Nack {
                    ballot,
                    promised: self.promised,
                },
            );
        }
    }

    pub(super) fn on_accept(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, table: Table<I>) {
        if !self.recovered || table.chains.len() != self.table.chains.len() {
            return;
        }
        let ballot = table.ballot;
        if ballot >= self.promised {
            self.promised = ballot;
            self.accepted = Some(table);
            self.accepted_at = cx.now;
            cx.send(from, OuroborosMsg::Accepted { ballot });
        } else {
            cx.send(
                from,
                OuroborosMsg::Nack {
                    ballot,
                    promised: self.promised,
                },
            );
        }
    }

    pub(super) fn on_sealed(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        ballot: Epoch,
        p: u32,
        info: SealInfo,
    ) {
        if let Some(Round {
            ballot: b,
            phase: Phase::Preparing { seals: Some(m), .. },
            ..
        }) = &mut self.round
        {
            if *b == ballot {
                if let Some(slot) = m.get_mut(&p) {
                    *slot = Some(info);
                }
                self.progress_round(cx);
            }
        }
    }

    pub(super) fn abort_round(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        if let Some(r) = self.round.take() {
            cx.emit(OuroborosEvent::ReconfigAborted { ballot: r.ballot });
        }
    }

    /// Move the configurator's round forward if it can.
    pub(super) fn progress_round(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        if self.round.is_none() {
            return;
        }
        let intents = self.held_intents();
        let expired = self.expired_members(cx.now);
        let Some(round) = &mut self.round else {
            return;
        };
        let ballot = round.ballot;
        match &mut round.phase {
            Phase::Preparing {
                promises,
                settle_at,
                seals,
                seal_until,
            } => {
                // A majority of the newest table's members (see `members`).
                let Some(base) = derive::newest_base(promises) else {
                    return;
                };
                if !members::has_majority(promises.keys(), &base.members) {
                    return;
                }
                // With a majority, wait briefly for every live member (and
                // live joiner) so that stale reports from restarted nodes
                // and joiners' answers are seen.
                let joiners: BTreeSet<&I> = intents
                    .iter()
                    .filter_map(|c| match c {
                        MemberChange::Join(n) => Some(n),
                        _ => None,
                    })
                    .collect();
                let all_live = self
                    .live
                    .iter()
                    .filter(|m| base.members.contains(m) || joiners.contains(m))
                    .all(|m| promises.contains_key(m));
                let at = *settle_at.get_or_insert(cx.now + self.config.tick * 3);
                if !all_live && cx.now < at {
                    return;
                }
                if seals.is_none() {
                    let want = derive::to_seal(&self.live, promises);
                    if !want.is_empty() {
                        let mut map = BTreeMap::new();
                        let until = cx.now + self.config.tick * 5;
                        let me = cx.me.clone();
                        let mut local = Vec::new();
                        for (p, tail, epoch) in want {
                            map.insert(p, None);
                            if tail == me {
                                local.push((p, epoch));
                            } else {
                                cx.send(tail, OuroborosMsg::Seal { ballot, p, epoch });
                            }
                        }
                        if let Some(Round {
                            phase:
                                Phase::Preparing {
                                    seals, seal_until, ..
                                },
                            ..
                        }) = &mut self.round
                        {
                            *seals = Some(map);
                            *seal_until = until;
                        }
                        for (p, epoch) in local {
                            if let Some(info) = self.seal(&me, p, epoch, ballot) {
                                self.on_sealed(cx, ballot, p, info);
                            }
                        }
                        return;
                    }
                    *seals = Some(BTreeMap::new());
                }
                let waiting = seals
                    .as_ref()
                    .is_some_and(|m| m.values().any(Option::is_none));
                if waiting && cx.now < *seal_until {
                    return;
                }
                let sealed: BTreeMap<u32, SealInfo> = seals
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(p, i)| i.map(|i| (p, i)))
                    .collect();
                let promises = core::mem::take(promises);
                let asked = Asked {
                    intents: &intents,
                    expired: &expired,
                };
                let base_members = derive::newest_base(&promises)
                    .map(|b| b.members.clone())
                    .unwrap_or_default();
                let (table, changed) = match derive::decide(
                    &self.config,
                    &self.live,
                    ballot,
                    &promises,
                    &sealed,
                    &asked,
                ) {
                    Decision::Propose { table, changed } => (table, changed),
                    Decision::Finish { newest_committed } => {
                        // Nothing to change and nothing half-done: finished.
                        if let Some(t) = newest_committed {
                            if t.ballot > self.table.ballot {
                                self.install(cx, t);
                            }
                        }
                        self.round = None;
                        cx.emit(OuroborosEvent::ReconfigDone { ballot, changed: 0 });
                        return;
                    }
                };
                self.promised = self.promised.max(ballot);
                self.accepted = Some(table.clone());
                let mut accepted = BTreeSet::new();
                accepted.insert(cx.me.clone());
                let to: BTreeSet<I> = base_members
                    .ids()
                    .chain(table.members.ids())
                    .chain(self.others(cx.me).iter())
                    .filter(|n| *n != cx.me)
                    .cloned()
                    .collect();
                if let Some(r) = &mut self.round {
                    r.phase = Phase::Accepting {
                        table: table.clone(),
                        base_members,
                        accepted,
                        changed,
                    };
                }
                cx.multicast(to.iter(), &OuroborosMsg::Accept { table });
                self.progress_round(cx);
            }
            Phase::Accepting {
                table,
                base_members,
                accepted,
                changed,
            } => {
                if !members::has_majority(accepted.iter(), base_members)
                    || !members::has_majority(accepted.iter(), &table.members)
                {
                    return;
                }
                let table = table.clone();
                let changed = *changed;
                let others: BTreeSet<I> = base_members
                    .ids()
                    .chain(table.members.ids())
                    .chain(self.live.iter())
                    .chain(round.asked.iter())
                    .filter(|n| *n != cx.me)
                    .cloned()
                    .collect();
                self.round = None;
                cx.multicast(
                    others.iter(),
                    &OuroborosMsg::Commit {
                        table: table.clone(),
                    },
                );
                self.install(cx, table);
                cx.emit(OuroborosEvent::ReconfigDone { ballot, changed });
            }
        }
    }

    pub(super) fn on_table_reply(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        state: PaxosState<I>,
    ) {
        if self.recovered {
            // (`install` takes only a newer table, or a joiner's first.)
            self.install(cx, state.committed);
            return;
        }
        self.recovery.insert(from, state);
        // A majority of the *others* (this node's own state was lost) of
        // the newest table's members that they report.
        let Some(newest) = self
            .recovery
            .values()
            .map(|s| &s.committed)
            .chain(self.recovery.values().filter_map(|s| s.accepted.as_ref()))
            .max_by_key(|t| t.ballot)
        else {
            return;
        };
        let others = self.recovery.keys().filter(|n| *n != cx.me);
        if !members::has_majority(others, &newest.members) {
            return;
        }
        let states = core::mem::take(&mut self.recovery);
        let mut promised = self.promised;
        let mut accepted: Option<Table<I>> = None;
        let mut committed: Option<Table<I>> = None;
        for s in states.into_values() {
            promised = promised.max(s.promised);
            if let Some(a) = s.accepted {
                if accepted.as_ref().is_none_or(|x| a.ballot > x.ballot) {
                    accepted = Some(a);
                }
            }
            if committed
                .as_ref()
                .is_none_or(|x| s.committed.ballot > x.ballot)
            {
                committed = Some(s.committed);
            }
        }
        self.promised = promised;
        self.accepted = accepted;
        if let Some(t) = committed {
            self.table = t;
        }
        // Every chain that lists this node: its log is gone.
        let me = cx.me.clone();
        for p in 0..self.config.partitions {
            let in_chain = |c: &Chain<I>| c.members.contains(&me) || c.learners.contains(&me);
            let listed = in_chain(self.chain(p))
                || self
                    .accepted
                    .as_ref()
                    .is_some_and(|a| in_chain(&a.chains[p as usize]));
            let part = &mut self.parts[p as usize];
            part.stale = listed;
            part.sealed = None;
            Self::drop_log(part);
        }
        self.recovered = true;
        cx.emit(OuroborosEvent::TableInstalled {
            ballot: self.table.ballot,
        });
    }

    /// The configuration round this node runs, in one line (for
    /// debugging and the inspector).
    pub fn round_debug(&self) -> alloc::string::String {
        match &self.round {
            None => "no round".into(),
            Some(r) => match &r.phase {
                Phase::Preparing {
                    promises, seals, ..
                } => alloc::format!(
                    "ballot {:?} preparing: promises from {:?}, newest base {:?} members {:?}, seals {:?}, deadline {:?}",
                    r.ballot,
                    promises.keys().collect::<Vec<_>>(),
                    derive::newest_base(promises).map(|b| b.ballot),
                    derive::newest_base(promises).map(|b| b.members.ids().cloned().collect::<Vec<_>>()),
                    seals,
                    r.deadline
                ),
                Phase::Accepting {
                    table,
                    base_members,
                    accepted,
                    ..
                } => alloc::format!(
                    "ballot {:?} accepting: accepted by {:?}, base members {:?}, new members {:?}",
                    r.ballot,
                    accepted,
                    base_members.ids().collect::<Vec<_>>(),
                    table.members.ids().collect::<Vec<_>>()
                ),
            },
        }
    }

    /// Every member change this node holds: its own and those it heard.
    pub(super) fn held_intents(&self) -> BTreeSet<MemberChange<I>> {
        self.intents
            .keys()
            .chain(self.own_intents.iter())
            .filter(|c| !members::satisfied(c, &self.table.members))
            .cloned()
            .collect()
    }

    /// True if a member change could be made now: an intent not done,
    /// a member dead too long, or a leaving member already drained.
    fn member_work(&self, now: Time) -> bool {
        let m = &self.table.members;
        let intent = self.held_intents().iter().any(|c| match c {
            MemberChange::Join(n) => self.live.contains(n),
            MemberChange::Leave(n) | MemberChange::Remove(n) => {
                m.contains(n) && (!m.is_leaving(n) || !self.live.contains(n))
            }
        });
        let drained = m.leaving.iter().any(|n| {
            !self
                .table
                .chains
                .iter()
                .any(|c| c.members.contains(n) || c.learners.contains(n))
        });
        intent || drained || !self.expired_members(now).is_empty()
    }

    /// Members this node has seen dead for longer than `replace_after`.
    pub(super) fn expired_members(&self, now: Time) -> BTreeSet<I> {
        self.dead_since
            .iter()
            .filter(|(m, t)| {
                self.table.members.contains(m)
                    && now.saturating_since(**t) >= self.config.replace_after
            })
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// A node asks for a member change.
    pub(super) fn on_intent(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        change: MemberChange<I>,
    ) {
        // A departed node asking to join on its own is not re-added.
        if let MemberChange::Join(n) = &change {
            if *n == from && self.table.members.departed.contains(n) {
                return;
            }
        }
        if !members::satisfied(&change, &self.table.members) {
            self.intents.insert(change, cx.now);
        }
    }

    /// An acceptor's promise for this node's round.
    pub(super) fn on_promise(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        ballot: Epoch,
        state: PaxosState<I>,
        stale: Vec<u32>,
        reports: Vec<PartReport>,
    ) {
        if let Some(Round {
            ballot: b,
            phase: Phase::Preparing { promises, .. },
            asked,
            ..
        }) = &mut self.round
        {
            if *b == ballot {
                promises.insert(from, (state, stale, reports));
                // A newer base names members not asked yet: ask them.
                let fresh: Vec<I> = derive::newest_base(promises)
                    .map(|t| {
                        t.members
                            .ids()
                            .filter(|n| !asked.contains(n))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                asked.extend(fresh.iter().cloned());
                cx.multicast(fresh.iter(), &OuroborosMsg::Prepare { ballot });
                self.progress_round(cx);
            }
        }
    }

    /// An acceptor accepted this node's proposed table.
    pub(super) fn on_accepted(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, ballot: Epoch) {
        if let Some(Round {
            ballot: b,
            phase: Phase::Accepting { accepted, .. },
            ..
        }) = &mut self.round
        {
            if *b == ballot {
                accepted.insert(from);
                self.progress_round(cx);
            }
        }
    }

    /// An acceptor refused this node's round: a higher ballot was promised.
    pub(super) fn on_nack(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        ballot: Epoch,
        promised: Epoch,
    ) {
        if self.round.as_ref().is_some_and(|r| r.ballot == ballot) {
            self.promised = self.promised.max(promised);
            self.abort_round(cx);
        }
    }

    /// A configurator announces the chosen table.
    pub(super) fn on_commit(&mut self, cx: &mut RingCtx<'_, I, Self>, table: Table<I>) {
        if self.recovered {
            self.install(cx, table);
        }
    }

    /// Someone asks for this node's Paxos state.
    pub(super) fn on_table_query(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I) {
        if self.recovered {
            let state = self.paxos_state();
            cx.send(from, OuroborosMsg::TableReply { state });
        }
    }
}
