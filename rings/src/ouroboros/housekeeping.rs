//! Housekeeping: the periodic tick (round deadlines, retransmissions, catch-up, client retries and timeouts, slowness, the call for a reconfiguration).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::client::Op;
use super::members;
use super::{LogError, MemberChange, Ouroboros, OuroborosEvent, OuroborosMsg};
use crate::contract::{NodeId, RingCtx};

impl<I: NodeId> Ouroboros<I> {
    /// Members it knows and live nodes, but itself.
    pub(super) fn query_targets(&self, me: &I) -> BTreeSet<I> {
        self.table
            .members
            .ids()
            .chain(self.live.iter())
            .filter(|n| *n != me)
            .cloned()
            .collect()
    }

    /// The member set's housekeeping: who has been dead since when,
    /// intents resent until done (and others' forgotten when not
    /// refreshed), and a joiner's first table.
    fn members_tick(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let me = cx.me.clone();
        let now = cx.now;
        let m = &self.table.members;
        let live = &self.live;
        self.dead_since
            .retain(|n, _| m.contains(n) && !live.contains(n));
        for n in m.ids() {
            if *n != me && !live.contains(n) {
                self.dead_since.entry(n.clone()).or_insert(now);
            }
        }
        // Auto-join: a node that knows the table but is not in it.
        // A node the table marks leaving remembers it (a restart learns
        // it again from the table); a departed one never asks on its own.
        if m.is_leaving(&me) {
            self.left = true;
        }
        if self.config.auto_join
            && !self.left
            && !m.departed.contains(&me)
            && self.recovered
            && !m.is_empty()
            && !m.contains(&me)
        {
            self.own_intents.insert(MemberChange::Join(me.clone()));
        }
        let m = &self.table.members;
        let ttl = self.config.tick * members::INTENT_TTL_TICKS;
        members::prune(&mut self.intents, m, now, ttl);
        self.own_intents.retain(|c| !members::satisfied(c, m));
        if self.ticks % 10 == 0 {
            if !self.own_intents.is_empty() {
                let to = self.others(&me);
                let own: Vec<MemberChange<I>> = self.own_intents.iter().cloned().collect();
                for c in own {
                    if self.table.members.contains(&me) {
                        self.intents.insert(c.clone(), now);
                    }
                    cx.multicast(to.iter(), &OuroborosMsg::Intent { change: c });
                }
            }
            // A joiner that knows no table yet asks the live nodes.
            if self.table.members.is_empty() {
                let to = self.query_targets(&me);
                cx.multicast(to.iter(), &OuroborosMsg::TableQuery);
            }
        }
        // Once a second, ask one other node (in turn) for its table: a
        // node that was down while it was removed from the member set (or
        // that no chain talks to) learns it and can ask to join again.
        if self.ticks % 100 == 50 {
            let to: Vec<I> = self.query_targets(&me).into_iter().collect();
            if !to.is_empty() {
                let who = to[(self.ticks / 100) as usize % to.len()].clone();
                self.query(cx, who);
            }
        }
    }

    pub(super) fn arm_tick(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let at = cx.now + self.config.tick;
        self.tick.arm(cx, at);
    }

    pub(super) fn on_tick(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let me = cx.me.clone();
        let now = cx.now;
        // Configurator round deadline.
        if let Some(r) = &self.round {
            if now >= r.deadline {
                self.abort_round(cx);
            } else {
                self.progress_round(cx);
            }
        }
        // Restart recovery: ask again until a majority answered (the
        // members it knew, and every live node: the set may have moved).
        if !self.recovered {
            let to = self.query_targets(&me);
            cx.multicast(to.iter(), &OuroborosMsg::TableQuery);
        }
        self.members_tick(cx);
        self.retention_tick(now);
        self.handoff_tick(&me, now);
        // Retransmit to successors that made no progress.
        let retransmit = self.config.tick * 5;
        for p in 0..self.config.partitions {
            let part = &self.parts[p as usize];
            if part.stale || part.log.is_empty() {
                continue;
            }
            let lagging = part.commit < part.log.len();
            if lagging && now.saturating_since(part.last_progress) >= retransmit {
                if self.successor(p, &me).is_some() {
                    let part = &mut self.parts[p as usize];
                    part.sent = part.commit;
                    part.last_progress = now;
                    self.push(cx, p);
                } else if self.is_tail(p, &me) {
                    let len = self.parts[p as usize].log.len();
                    self.advance_commit(cx, p, len);
                }
            } else if part.sent < part.log.len() && self.successor(p, &me).is_some() {
                self.push(cx, p);
            }
        }
        // Members not caught up yet ask their predecessor again (a Sync or
        // its answer may have been lost, or crossed a table change).
        if self.ticks % 5 == 0 {
            for p in 0..self.config.partitions {
                let part = &self.parts[p as usize];
                if part.ready || part.stale {
                    continue;
                }
                if let Some(pred) = self.predecessor(p, &me) {
                    let len = part.log.len();
                    let epoch = self.chain(p).epoch;
                    cx.send(pred, OuroborosMsg::Sync { p, epoch, len });
                }
            }
        }
        self.ticks = self.ticks.wrapping_add(1);
        // Client operations: retry or give up.
        let due: Vec<(u64, bool)> = self
            .ops
            .iter()
            .filter(|(_, o)| now >= o.deadline || now >= o.retry_at)
            .map(|(r, o)| (*r, now >= o.deadline))
            .collect();
        for (req, expired) in due {
            if expired {
                let Some(op) = self.ops.remove(&req) else {
                    continue;
                };
                match op.op {
                    Op::Append {
                        owner: Some(owner), ..
                    } => self.txn_op_done(cx, owner, req, Err(LogError::Timeout)),
                    Op::Append { p, .. } => cx.emit(OuroborosEvent::AppendFailed {
                        req,
                        partition: p,
                        error: LogError::Timeout,
                    }),
                    // A read changes nothing: say why it could not be
                    // served if the tail said so.
                    Op::Read { p, .. } => cx.emit(OuroborosEvent::ReadFailed {
                        req,
                        partition: p,
                        error: if op.unavailable {
                            LogError::NotEnoughReplicas
                        } else {
                            LogError::Timeout
                        },
                    }),
                }
            } else {
                self.try_op(cx, req);
            }
        }
        // Reads waiting for a majority.
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| now >= r.deadline)
            .map(|(n, _)| *n)
            .collect();
        for n in expired {
            if let Some(r) = self.reads.remove(&n) {
                let msg = OuroborosMsg::ReadReply {
                    req: r.req,
                    result: Err(LogError::NotEnoughReplicas),
                };
                self.reply(cx, r.client, msg);
            }
        }
        self.check_slow(&me, now);
        self.txn_expire(cx);
        if self.ticks % 10 == 0 {
            self.txn_resolve_blocked(cx);
        }
        // Ask for the token when a chain needs a change (members only:
        // Cartouche's ring is the member set).
        if self.recovered
            && self.table.members.contains(&me)
            && self.round.is_none()
            && self.token_request.is_none()
            && self.needs_reconfig(&me, now)
            && self
                .wants_at
                .is_none_or(|t| now.saturating_since(t) >= self.config.round_timeout)
        {
            self.wants_at = Some(now);
            cx.emit(OuroborosEvent::WantsReconfig);
        }
        self.arm_tick(cx);
    }
}
