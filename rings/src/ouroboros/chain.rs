//! Chain replication: the topology of a chain, epochs and their installation, pushing, syncing, acknowledging, committing, sealing.
//!
//! # Pushing
//! The head tags each entry with the chain epoch and the client's
//! `(origin, req)` and pushes batches (`Append{start, prev, entries, commit,
//! len}`, at most `max_batch` records / `max_batch_bytes`) down the chain,
//! Nagle-style: at once when nothing is in flight, otherwise when a batch is
//! full or the next acknowledgement arrives. Every member reports receipt
//! up the chain (`Ack{upto, held}`: the tail's acknowledgement, and a
//! middle's immediate receipt of each batch), so a predecessor knows what
//! its successor holds. A successor that made no progress for 5 ticks gets
//! go-back-N from the commit point.
//!
//! # Flow control
//! What is in flight to a successor counts from what it last said it holds
//! (its `Sync` length, or the largest `held` of its acks since; the commit
//! point if lower): at most 8 batches and 4 × `max_batch_bytes` per
//! partition. A successor behind the commit point (a learner, a restarted
//! or refilled member) is *catching up*: all of its partitions' catch-up
//! pushes from one node share one budget of 32 batches (8 MiB by default,
//! overshot by at most one batch), and each acknowledgement sends on. A
//! `Sync` from a successor catching up that repeats the length it last
//! reported, while it made progress within the retransmit interval (5
//! ticks), resends nothing: the periodic `Sync` of a learner and its `Sync`
//! per batch arriving past a gap would otherwise restart the window each
//! time and put copies of what is already on its way into the queue (seen
//! as 777 queue-full drops and senders at 340 MiB on a loaded machine).
//! Only a successor that made no progress gets go-back-N. So a refill runs at the
//! pace the successor takes it, with memory bounded on both sides, and
//! never bursts past the transport's queue to it. (Counting from the
//! commit point instead let a tail feeding a learner send a whole window
//! per tick per partition; the queue dropped most of it, the learner saw
//! gaps and asked again, and a 256 MiB refill took 40–110 s with the
//! learner at 400 MiB; now about 4 s.) Flow control decides only when
//! entries are sent, never which: the safety arguments below do not
//! depend on it.
//!
//! # Epoch start
//! A member continues (keeps its log and caught-up state) only if it held
//! exactly the chain's `prev` epoch; otherwise it is new and starts empty.
//! Non-head members truncate to their commit point (entries above it may be a
//! deposed head's leftovers); the head keeps everything and re-sends it. Each
//! non-head member sends `Sync{len}` to its predecessor, which pushes from
//! there. **Invariant (prefix property):** a member's log is a prefix of its
//! predecessor's. A predecessor told that its successor holds more than it
//! does has lost data: it marks itself stale and asks for a round. Log
//! matching (the epoch of the entry before `start`) finds divergence; a
//! member never truncates a committed entry.
//!
//! # A recovered head relearns its commit point
//! A former member made head (`Chain::keep`, see `derive`) may have learnt a
//! higher commit point in another role than the members that continue
//! (which cut their logs to their own); it resets its commit point to 0 and
//! relearns it from the new chain's acknowledgements, so a retried append is
//! not answered before the record is on every member again.
//!
//! # Sealing
//! `Seal`/`Sealed`: a sealed tail stops advancing its commit point in its
//! epoch and reports its log's epoch runs, so nothing above that commit point
//! was or will be acknowledged in that epoch. A tail stays sealed only while
//! the sealing round might still use its report: installing a committed
//! table whose ballot is at least the sealing round's, with the chain still
//! at the sealed epoch, unseals it (any change the sealing round got
//! accepted would be carried by every later round, so an unchanged chain
//! means the report was not used).

use alloc::vec::Vec;

use super::part::Part;
use super::{
    Chain, Entry, Epoch, LogError, Ouroboros, OuroborosEvent, OuroborosMsg, SealInfo, Table,
};
use crate::contract::{NodeId, RingCtx};

/// Catch-up pushes in flight from one node to one successor, over all
/// partitions, in batches of `max_batch_bytes` (8 MiB by default). A
/// partition finding the budget spent waits for the next acknowledgement
/// or tick; partitions are refilled a few at a time, none is left out for
/// good (each one's acknowledgements free budget for the next tick).
const CATCH_UP_BATCHES: u64 = 32;

impl<I: NodeId> Ouroboros<I> {
    pub(super) fn chain(&self, p: u32) -> &Chain<I> {
        &self.table.chains[p as usize]
    }

    /// Position in the replication order: members, then learners (the
    /// tail feeds its learner).
    pub(super) fn position(&self, p: u32, me: &I) -> Option<usize> {
        let c = self.chain(p);
        c.members
            .iter()
            .chain(c.learners.iter())
            .position(|m| m == me)
    }

    fn nth_in_order(c: &Chain<I>, i: usize) -> Option<I> {
        c.members.iter().chain(c.learners.iter()).nth(i).cloned()
    }

    pub(super) fn successor(&self, p: u32, me: &I) -> Option<I> {
        let i = self.position(p, me)?;
        Self::nth_in_order(self.chain(p), i + 1)
    }

    pub(super) fn predecessor(&self, p: u32, me: &I) -> Option<I> {
        let i = self.position(p, me)?;
        if i == 0 {
            None
        } else {
            Self::nth_in_order(self.chain(p), i - 1)
        }
    }

    pub(super) fn is_head(&self, p: u32, me: &I) -> bool {
        self.position(p, me) == Some(0)
    }

    pub(super) fn is_tail(&self, p: u32, me: &I) -> bool {
        let c = self.chain(p);
        c.members.last() == Some(me)
    }

    /// Compare a chain message's epoch with ours. `true` to process it.
    pub(super) fn epoch_ok(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: &I,
        p: u32,
        epoch: Epoch,
    ) -> bool {
        if p >= self.config.partitions {
            return false;
        }
        let mine = self.chain(p).epoch;
        if epoch == mine && self.recovered && !self.parts[p as usize].stale {
            return true;
        }
        self.stats.epoch_rejects += 1;
        if epoch > mine {
            self.query(cx, from.clone());
        } else if epoch < mine && self.recovered {
            // The sender is behind: hand it our table (rate-limited).
            let due = self
                .told
                .get(from)
                .is_none_or(|t| cx.now.saturating_since(*t) >= self.config.tick * 5);
            if due {
                self.told.insert(from.clone(), cx.now);
                let state = self.paxos_state();
                cx.send(from.clone(), OuroborosMsg::TableReply { state });
            }
        }
        false
    }

    pub(super) fn install(&mut self, cx: &mut RingCtx<'_, I, Self>, table: Table<I>) {
        // A joiner that knows no table yet takes the founding one too
        // (ballot zero, like its own empty one).
        let first = self.table.members.is_empty() && !table.members.is_empty();
        if (table.ballot <= self.table.ballot && !first)
            || table.chains.len() != self.table.chains.len()
        {
            return;
        }
        if table.ballot > self.promised {
            self.promised = table.ballot;
        }
        let old = core::mem::replace(&mut self.table, table);
        self.stats.tables += 1;
        cx.emit(OuroborosEvent::TableInstalled {
            ballot: self.table.ballot,
        });
        if old.members != self.table.members {
            self.placement = super::place::placement(&self.config, &self.table.members);
            self.intents
                .retain(|c, _| !super::members::satisfied(c, &self.table.members));
            let table = &self.table;
            self.own_intents
                .retain(|c| !super::members::satisfied(c, &table.members));
            cx.emit(OuroborosEvent::MembersChanged {
                version: self.table.members.version,
                members: self.table.members.ids().cloned().collect(),
                leaving: self.table.members.leaving.clone(),
            });
        }
        for p in 0..self.config.partitions {
            if old.chains[p as usize].epoch != self.chain(p).epoch {
                let old_chain = &old.chains[p as usize];
                let in_old =
                    old_chain.members.contains(cx.me) || old_chain.learners.contains(cx.me);
                // A replica dropped after a hand-off is not the log a
                // recovery round may have chosen from its older report.
                let kept = self.chain(p).keep.as_ref() == Some(cx.me)
                    && !self.parts[p as usize].handed_off;
                let continuous = old_chain.epoch == self.chain(p).prev;
                let was_member = (continuous && in_old) || kept;
                let old_epoch = old_chain.epoch;
                // A learner's log was not part of the old epoch's
                // acknowledgements: it must catch up again before it counts.
                let was_learner = continuous && old_chain.learners.contains(cx.me);
                self.begin_epoch(
                    cx,
                    p,
                    was_member && !was_learner,
                    was_member,
                    old_epoch,
                    in_old,
                );
            } else {
                // The chain goes on unchanged under a table decided by a
                // round at least as new as the one that sealed this tail:
                // that round (or a newer one, which would have carried any
                // change it got accepted) left the chain as it was, so the
                // seal is no longer needed by anyone.
                let ballot = self.table.ballot;
                let epoch = self.chain(p).epoch;
                let part = &mut self.parts[p as usize];
                if part.sealed == Some(epoch) && part.sealed_by <= ballot {
                    part.sealed = None;
                    self.stats.unsealed += 1;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn begin_epoch(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        p: u32,
        acked_member: bool,
        was_member: bool,
        old_epoch: Epoch,
        in_old: bool,
    ) {
        let me = cx.me.clone();
        let member = self.position(p, &me).is_some();
        let single = self.chain(p).members.len() == 1;
        let chosen = self.chain(p).keep.as_ref() == Some(&me);
        let kept = chosen && !self.parts[p as usize].handed_off;
        let part = &mut self.parts[p as usize];
        part.sealed = None;
        part.away_since = None;
        if member {
            part.handed_off = false;
        }
        // (A learner's log was never acknowledged by its epoch: it does not
        // count as a caught-up former member.)
        let old_learner = was_member && !acked_member;
        if !member && in_old && part.ready && !part.stale && !old_learner {
            part.left_ready = Some(old_epoch);
        }
        if member {
            part.left_ready = None;
        }
        // A member that stays in the chain and was caught up stays caught
        // up: every acknowledgement of the last epoch included it. A kept
        // former member was checked by the configurator.
        let was_ready = (acked_member && part.ready && !part.stale) || kept;
        if member && (!was_member || part.stale) {
            // Added (again), or listed again after losing its log: it starts
            // empty and is filled by state transfer. (An old copy could hold
            // more than its new predecessor and break the prefix property.)
            part.stale = false;
            part.log.clear();
            part.wal.truncated(0);
            Self::rebuild_dedupe(part);
            part.commit = 0;
        }
        let head = member && self.table.chains[p as usize].members[0] == me;
        if kept && head {
            // A recovered head's commit point was learnt in another role
            // (say as an old tail) and may exceed what the continuing
            // members kept (they cut their logs to their own, lower, commit
            // points). Relearn it from this chain's acknowledgements, so a
            // retried append is not answered before the record is on every
            // member again.
            part.commit = 0;
            Self::rebuild_dedupe(part);
        }
        if member && !head && part.log.len() > part.commit {
            // Entries above the commit point may have diverged (a deposed
            // head's leftovers); the predecessor re-sends what is valid.
            // This keeps the prefix property: a successor never holds what
            // its predecessor lacks, unless the predecessor lost data.
            part.log.truncate(part.commit);
            part.wal.truncated(part.commit);
            Self::rebuild_dedupe(part);
        }
        part.sent = part.commit.min(part.log.len());
        part.succ_held = 0;
        // A successor of the old epoch holds the commit point; a new one
        // says what it holds (`Sync`) before more is pushed.
        part.succ_acked = part.sent;
        part.succ_progress = cx.now;
        part.succ_target = part.log.len();
        part.unheld.clear();
        part.ready = single || head || was_ready;
        part.barrier = None;
        part.last_progress = cx.now;
        let waiters = core::mem::take(&mut part.waiters);
        for (_, ws) in waiters {
            for (client, req) in ws {
                let msg = OuroborosMsg::AppendReply {
                    req,
                    result: Err(LogError::StaleEpoch),
                    decided: None,
                };
                self.reply(cx, client, msg);
            }
        }
        if !member {
            return;
        }
        if chosen && !kept {
            // Chosen to head a recovery on a report from before this
            // replica was dropped: it no longer holds that log. It says so
            // (stale) rather than serve an empty one; the next round looks
            // elsewhere.
            self.mark_stale(cx, p);
            return;
        }
        if single {
            let part = &mut self.parts[p as usize];
            part.commit = part.log.len();
        }
        if let Some(pred) = self.predecessor(p, &me) {
            let len = self.parts[p as usize].log.len();
            let epoch = self.chain(p).epoch;
            cx.send(pred, OuroborosMsg::Sync { p, epoch, len });
        }
    }

    /// Send what the successor has not got yet.
    pub(super) fn push(&mut self, cx: &mut RingCtx<'_, I, Self>, p: u32) {
        let me = cx.me.clone();
        let Some(succ) = self.successor(p, &me) else {
            return;
        };
        let epoch = self.chain(p).epoch;
        let max_batch = self.config.max_batch;
        let max_bytes = self.config.max_batch_bytes;
        // A successor behind the commit point is catching up (a learner, a
        // restarted or refilled member): all its partitions' catch-up
        // pushes share one budget, so a node refilled in many partitions
        // at once gets at most `CATCH_UP_BATCHES` batches from this node
        // between acknowledgements, never more than its link and the
        // transport's queue to it can hold (a larger burst was dropped by
        // the queue, seen as gaps, and re-sent, again and again).
        let catching_up = |q: &Part<I>| q.succ_acked < q.commit;
        let throttled = catching_up(&self.parts[p as usize]);
        let budget = if throttled {
            let others: u64 = (0..self.config.partitions)
                .filter(|&q| q != p)
                .filter(|&q| catching_up(&self.parts[q as usize]))
                .filter(|&q| self.successor(q, &me).as_ref() == Some(&succ))
                .map(|q| self.parts[q as usize].in_flight)
                .sum();
            (max_bytes as u64 * CATCH_UP_BATCHES).saturating_sub(others)
        } else {
            u64::MAX
        };
        let part = &mut self.parts[p as usize];
        let len = part.log.len();
        let report = Self::report(part);
        // Bound what is in flight beyond what the successor holds (or the
        // commit point, if lower): in records, and in bytes. A replica
        // being refilled far behind the commit point gets at most this
        // window between its acknowledgements, so a refill streams at the
        // pace the successor takes it, with bounded memory on both sides;
        // and a burst never overflows the transport's queue to it (every
        // retransmission would overflow it again).
        let window = (max_batch as u64) * 8;
        let window_bytes = ((max_bytes * 4) as u64).min(budget);
        let mut acked = part.commit.min(part.succ_acked);
        let mut in_flight: u64 = {
            let from = acked.min(part.sent).max(part.log.low());
            part.log
                .sizes_from(from)
                .take(part.sent.saturating_sub(from) as usize)
                .sum()
        };
        let now = cx.now;
        while part.sent < len && part.sent < acked + window && in_flight < window_bytes {
            if throttled && !self.throttle.allows(now) {
                // `--rebalance-bytes-per-sec`: the next tick goes on.
                break;
            }
            if part.sent < part.log.low() {
                // The successor needs what retention deleted here: it
                // jumps to this log's low watermark (all below is
                // committed, see `plog`).
                let low = part.log.low();
                part.sent = low;
                // The window counts from the jump (a lost `Skip` shows as
                // a gap to the successor, which then sends `Sync`).
                part.succ_acked = part.succ_acked.max(low);
                acked = acked.max(low);
                cx.send(
                    succ.clone(),
                    OuroborosMsg::Skip {
                        p,
                        epoch,
                        low,
                        runs: part.log.runs().into_iter().filter(|r| r.1 < low).collect(),
                    },
                );
                continue;
            }
            let start = part.sent;
            let mut end = start;
            let mut bytes = 0;
            for b in part.log.sizes_from(start) {
                if end >= len || ((end - start) as usize) >= max_batch {
                    break;
                }
                let b = b as usize;
                if end > start && bytes + b > max_bytes {
                    break;
                }
                bytes += b;
                end += 1;
            }
            let prev = (start > 0).then(|| part.log.epoch(start - 1)).flatten();
            let entries = part.log.range(start, end);
            if entries.is_empty() {
                // Unreadable: the flush reports the store's failure.
                break;
            }
            let end = start + entries.len() as u64;
            in_flight += bytes as u64;
            if throttled {
                self.throttle.spend(bytes as u64);
            }
            part.sent = end;
            cx.send(
                succ.clone(),
                OuroborosMsg::Append {
                    p,
                    epoch,
                    start,
                    prev,
                    entries,
                    commit: part.commit,
                    len: report,
                },
            );
        }
        part.in_flight = in_flight;
    }

    /// What a member tells its successor it must reach to be caught up:
    /// its own length once it is caught up itself, else its own barrier
    /// (`u64::MAX` while unknown).
    pub(super) fn report(part: &Part<I>) -> u64 {
        if part.ready {
            part.log.len()
        } else {
            part.barrier.unwrap_or(u64::MAX)
        }
    }

    pub(super) fn advance_commit(&mut self, cx: &mut RingCtx<'_, I, Self>, p: u32, upto: u64) {
        let me = cx.me.clone();
        let epoch = self.chain(p).epoch;
        let part = &mut self.parts[p as usize];
        if part.sealed == Some(epoch) {
            // Sealed for a recovery: the commit point is final.
            return;
        }
        let upto = upto.min(part.log.len());
        if upto <= part.commit {
            return;
        }
        part.commit = upto;
        part.last_progress = cx.now;
        // Answer clients waiting at the head (an append behind a member of
        // an undecided transaction waits for its outcome).
        let due: Vec<u64> = part.waiters.range(..upto).map(|(o, _)| *o).collect();
        let mut replies = Vec::new();
        for o in due {
            if !Self::answerable(part, o) {
                continue;
            }
            if let Some(ws) = part.waiters.remove(&o) {
                for (client, req) in ws {
                    replies.push((client, Self::append_ok(part, req, o)));
                }
            }
        }
        for (client, msg) in replies {
            self.reply(cx, client, msg);
        }
        if let Some(pred) = self.predecessor(p, &me) {
            let epoch = self.chain(p).epoch;
            let held = self.parts[p as usize].log.len();
            cx.send(
                pred,
                OuroborosMsg::Ack {
                    p,
                    epoch,
                    upto,
                    held,
                },
            );
        }
        self.push(cx, p);
    }

    /// Seal this node's tail role in `epoch` of partition `p`, if it holds
    /// it, and report its final state.
    pub(super) fn seal(&mut self, me: &I, p: u32, epoch: Epoch, ballot: Epoch) -> Option<SealInfo> {
        if !self.recovered || p >= self.config.partitions || self.chain(p).epoch != epoch {
            return None;
        }
        if self.chain(p).members.last() != Some(me) {
            return None;
        }
        let part = &mut self.parts[p as usize];
        if part.stale {
            return None;
        }
        if part.sealed != Some(epoch) || ballot > part.sealed_by {
            part.sealed_by = ballot;
        }
        part.sealed = Some(epoch);
        Some(SealInfo {
            commit: part.commit,
            len: part.log.len(),
            runs: part.log.runs(),
        })
    }

    fn mark_stale(&mut self, cx: &mut RingCtx<'_, I, Self>, p: u32) {
        let part = &mut self.parts[p as usize];
        if part.stale {
            return;
        }
        part.stale = true;
        part.ready = false;
        let waiters = core::mem::take(&mut part.waiters);
        for (_, ws) in waiters {
            for (client, req) in ws {
                let msg = OuroborosMsg::AppendReply {
                    req,
                    result: Err(LogError::NotEnoughReplicas),
                    decided: None,
                };
                self.reply(cx, client, msg);
            }
        }
    }

    /// Drop `part`'s whole log (on disk too: `Truncated(0)` in the
    /// write-ahead log) and what depended on it: it holds nothing, is not
    /// caught up and is no former member's copy.
    pub(super) fn drop_log(part: &mut Part<I>) {
        part.log.clear();
        part.wal.truncated(0);
        Self::rebuild_dedupe(part);
        part.commit = 0;
        part.sent = 0;
        part.ready = false;
        part.left_ready = None;
    }

    /// Rebuild the indexes of `part`'s log (deduplication, transaction
    /// outcomes and members).
    pub(super) fn rebuild_dedupe(part: &mut Part<I>) {
        // Every index entry points at its own offset, so cutting the log
        // at `len` forgets exactly the entries at or above it.
        let len = part.log.len();
        part.dedupe.truncate(len);
        part.producers.forget_from(len);
        part.txn_out.retain(|_, (o, _)| *o < len);
        part.open.retain(|o, _| *o < len);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_append(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        start: u64,
        prev: Option<Epoch>,
        entries: Vec<Entry<I>>,
        commit: u64,
        pred_len: u64,
    ) {
        let me = cx.me.clone();
        if self.predecessor(p, &me).as_ref() != Some(&from) {
            return;
        }
        let epoch = self.chain(p).epoch;
        let part = &mut self.parts[p as usize];
        if part.sealed == Some(epoch) {
            return;
        }
        let len = part.log.len();
        if start > len {
            cx.send(from, OuroborosMsg::Sync { p, epoch, len });
            return;
        }
        // Below the low watermark everything is committed (and agreed).
        if start > part.log.low() && part.log.epoch(start - 1) != prev {
            // Diverged before `start`. Uncommitted entries may go; committed
            // ones never do: then the predecessor is the one that lost data
            // (it learns so from our length) and must be replaced.
            if start - 1 < part.commit {
                cx.send(from, OuroborosMsg::Sync { p, epoch, len });
                return;
            }
            let keep = part.commit;
            part.log.truncate(keep);
            part.wal.truncated(keep);
            Self::rebuild_dedupe(part);
            self.stats.truncations += 1;
            cx.send(
                from,
                OuroborosMsg::Sync {
                    p,
                    epoch,
                    len: keep,
                },
            );
            return;
        }
        let mut changed = false;
        let n_entries = entries.len() as u64;
        for (k, e) in entries.into_iter().enumerate() {
            let idx = start + k as u64;
            if idx < part.log.low() {
                // Deleted here by retention: committed, so the same.
                continue;
            }
            if idx < part.log.len() {
                if part.log.epoch(idx) == Some(e.epoch) {
                    continue;
                }
                if idx < part.commit {
                    // Same rule as above: never rewrite a committed entry.
                    let len = part.log.len();
                    cx.send(from, OuroborosMsg::Sync { p, epoch, len });
                    return;
                }
                part.log.truncate(idx);
                part.wal.truncated(idx);
                Self::rebuild_dedupe(part);
                self.stats.truncations += 1;
            }
            Self::index_entry(
                part,
                idx,
                e.id,
                &e.origin,
                e.req,
                e.txn.as_ref(),
                e.producer,
            );
            part.log.push(e);
            changed = true;
        }
        // The prefix known to equal the predecessor's.
        let matched = start + n_entries;
        let len = part.log.len();
        if pred_len != u64::MAX {
            let b = part.barrier.get_or_insert(pred_len);
            *b = (*b).max(pred_len);
        }
        if part.barrier.is_some_and(|b| len >= b) {
            part.ready = true;
        }
        let tail = self.is_tail(p, &me);
        if tail {
            // Everything up to the matched prefix is on every member.
            let before = self.parts[p as usize].commit;
            self.advance_commit(cx, p, matched);
            let c = self.parts[p as usize].commit;
            if c == before {
                // Always answer, so a lost ack is repaired by the retransmission.
                cx.send(
                    from,
                    OuroborosMsg::Ack {
                        p,
                        epoch,
                        upto: c,
                        held: len,
                    },
                );
            }
        } else {
            let before = self.parts[p as usize].commit;
            self.advance_commit(cx, p, commit.min(matched));
            let part = &mut self.parts[p as usize];
            if part.commit == before {
                // Report receipt at once (the commit point moves only when
                // the tail's ack comes back). A retransmission of what we
                // hold is answered too: the predecessor re-sends when our
                // ack was lost, and nothing else would repair it once the
                // stream stops.
                let upto = part.commit;
                cx.send(
                    from,
                    OuroborosMsg::Ack {
                        p,
                        epoch,
                        upto,
                        held: len,
                    },
                );
            }
            if changed {
                self.note_appended(p, cx.now);
                self.push(cx, p);
            }
        }
    }

    /// A configurator asks this node, as the tail of `epoch`, to seal it.
    pub(super) fn on_seal(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        ballot: Epoch,
        p: u32,
        epoch: Epoch,
    ) {
        let me = cx.me.clone();
        if let Some(info) = self.seal(&me, p, epoch, ballot) {
            cx.send(from, OuroborosMsg::Sealed { ballot, p, info });
        }
    }

    /// The successor says how much it holds: send it the rest.
    pub(super) fn on_sync(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        epoch: Epoch,
        len: u64,
    ) {
        let me = cx.me.clone();
        if self.epoch_ok(cx, &from, p, epoch) && self.successor(p, &me).as_ref() == Some(&from) {
            if len > self.parts[p as usize].log.len() {
                // The successor holds more than we do: our log was
                // lost (prefix property broken). Stop serving this
                // chain and have it reconfigured.
                self.mark_stale(cx, p);
                return;
            }
            let retransmit = self.config.tick * 5;
            let part = &mut self.parts[p as usize];
            if len < part.commit
                && len == part.succ_acked
                && part.sent > len
                && cx.now.saturating_since(part.succ_progress) < retransmit
            {
                // A successor catching up repeats what it holds (its
                // periodic `Sync`, or one per batch that arrived past a
                // gap) while what we sent after it is still on its way:
                // sending that again would only duplicate it (the queue
                // then overflows and the gaps multiply). Only a successor
                // that made no progress for `retransmit` gets go-back-N.
                self.push(cx, p);
                return;
            }
            part.sent = len.min(part.log.len());
            part.succ_acked = len;
            part.succ_progress = cx.now;
            part.last_progress = cx.now;
            if part.sent == part.log.len() {
                // Nothing to send: still tell the successor our length
                // (a new tail needs it to start serving reads).
                let mine = part.sent;
                let msg = OuroborosMsg::Append {
                    p,
                    epoch,
                    start: mine,
                    prev: part.log.last_epoch(),
                    entries: Vec::new(),
                    commit: part.commit,
                    len: Self::report(part),
                };
                cx.send(from, msg);
            } else {
                self.push(cx, p);
            }
        }
    }

    /// The successor acknowledges: what it holds, and what is on every
    /// member.
    pub(super) fn on_ack(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        epoch: Epoch,
        upto: u64,
        held: u64,
    ) {
        let me = cx.me.clone();
        if self.epoch_ok(cx, &from, p, epoch) && self.successor(p, &me).as_ref() == Some(&from) {
            self.successor_holds(p, held, cx.now);
            let part = &mut self.parts[p as usize];
            let grew = held > part.succ_acked;
            part.succ_acked = part.succ_acked.max(held);
            if grew {
                part.succ_progress = cx.now;
            }
            let commit = part.commit;
            self.advance_commit(cx, p, upto);
            if grew && self.parts[p as usize].commit == commit {
                // The window moved (a refill past the commit point): send
                // on (`advance_commit` pushes when the commit point moves).
                self.push(cx, p);
            }
        }
    }
}
