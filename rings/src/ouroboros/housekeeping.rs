//! Housekeeping: the periodic tick (round deadlines, retransmissions, catch-up, client retries and timeouts, slowness, the call for a reconfiguration).

use alloc::vec::Vec;

use super::client::Op;
use super::{LogError, Ouroboros, OuroborosEvent, OuroborosMsg};
use crate::contract::{NodeId, RingCtx};

impl<I: NodeId> Ouroboros<I> {
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
        // Restart recovery: ask again until a majority answered.
        if !self.recovered {
            let others = self.others(&me);
            cx.multicast(others.iter(), &OuroborosMsg::TableQuery);
        }
        self.retention_tick(now);
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
        // Ask for the token when a chain needs a change.
        if self.recovered
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
