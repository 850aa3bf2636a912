//! Retention: deleting a partition's oldest records by size or age, in
//! whole segments, and the jump (`Skip`) a lagging replica makes over a
//! prefix its predecessor no longer holds.
//!
//! # The argument
//! Retention moves a replica's *low watermark* `low` up; records below it
//! are gone from that replica (its record store deletes whole segments).
//!
//! - **Only what every replica of the chain holds.** A replica deletes
//!   only below its commit point (and below what its record store holds).
//!   The commit point of any member is at most the tail's length, and an
//!   offset below it was acknowledged by the tail, which in chain order
//!   means every member held it, synced. So nothing is deleted that some
//!   member of the chain still needs from this replica.
//! - **The prefix property is kept.** Offsets never shift: a replica holds
//!   `low..len` of the one log order, `low` only grows (except when the
//!   whole log is dropped for a state transfer from 0), and the epoch runs
//!   of the deleted prefix are kept, so chain derivation compares lengths
//!   and epochs exactly as before.
//! - **State transfer still works.** A successor that needs offsets below
//!   its predecessor's `low` (a new or lagging replica) is sent `Skip {
//!   low, runs }`: everything below `low` is committed, so the successor
//!   drops its (shorter) log and continues empty at `low`, and the
//!   predecessor streams the rest, from its record store, in bounded
//!   batches. A successor that already holds `low` ignores it.
//! - **Reads.** A read below the tail's `low` fails with
//!   `OffsetOutOfRange { earliest, latest }` instead of returning a
//!   shorter history; the history checker (`shen-checks`) accepts that
//!   answer only at offsets below a low watermark the tail really had.
//!
//! Retention is local and deterministic: each replica decides from its own
//! log (sizes and Scarab ID times) on the housekeeping tick, and the
//! change is written to the write-ahead log (`Low` record) before anything
//! that depends on it leaves the node.
//!
//! # Hand-off: dropping a moved replica
//! When rebalancing moved a partition away from this node (a join, a
//! leave, a removal), the old replica's data is dropped only after the
//! switch is committed and settled: the committed table lists the chain
//! without this node (not as member, learner or `keep`), the chain is full
//! (`min(rf, members)` members) with no learner, placement no longer wants
//! this node for it, and all of that held for `HANDOFF_GRACE_TICKS` ticks
//! while this node had recovered (it votes on what it knows). Then the log
//! is cut to nothing, as a new member's is (`Truncated` in the write-ahead
//! log; the record store deletes the partition's segments).
//!
//! **Why nothing acknowledged is lost.** Every acknowledged record of the
//! partition is on every caught-up member of its chain; the committed
//! chain does not include this node, so no acknowledgement depends on its
//! copy, and a full chain without learners means the move finished (the
//! unwanted member is dropped only once the wanted learner caught up and
//! joined, see `derive`). The one other use of a non-member's copy is as
//! a recovery head (`Chain::keep`, chosen from its report when every
//! caught-up member of an epoch is lost). A round may have chosen it on a
//! report sent before the drop: the replica then remembers `handed_off`
//! and refuses the role (it marks itself stale instead of heading with an
//! empty log), so the partition waits for another candidate instead of
//! losing records. The grace period only makes that race rare; safety
//! does not rest on it.

use alloc::vec::Vec;

use super::{Epoch, Ouroboros, OuroborosMsg};
use crate::contract::{NodeId, RingCtx};
use crate::logstore::aligned_segment_starts;
use crate::scarab::ScarabId;

/// Ticks between retention passes.
const RETENTION_EVERY_TICKS: u64 = 16;

/// Ticks a partition must stay handed off before this replica drops it
/// (3 s at the default 10 ms tick).
const HANDOFF_GRACE_TICKS: u32 = 300;

impl<I: NodeId> Ouroboros<I> {
    /// A predecessor says its log starts at `low`.
    pub(super) fn on_skip(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        epoch: Epoch,
        low: u64,
        runs: Vec<(Epoch, u64)>,
    ) {
        let me = cx.me.clone();
        if self.predecessor(p, &me).as_ref() != Some(&from) {
            return;
        }
        let part = &mut self.parts[p as usize];
        if part.sealed == Some(epoch) {
            return;
        }
        if part.log.len() < low {
            // Everything below `low` is committed on the chain: drop the
            // shorter copy and continue empty at `low`.
            part.log.set_low(low, Some(runs));
            part.dedupe.clear();
            part.open.clear();
            part.commit = part.commit.max(low);
            part.sent = part.sent.max(low);
            self.stats.truncations += 1;
        }
        let len = self.parts[p as usize].log.len();
        cx.send(from, OuroborosMsg::Sync { p, epoch, len });
    }

    /// On the housekeeping tick: apply retention to every partition.
    pub(super) fn retention_tick(&mut self, now: crate::contract::Time) {
        if self.config.retention_bytes.is_none() && self.config.retention_ms.is_none() {
            return;
        }
        if self.ticks % RETENTION_EVERY_TICKS != 0 || self.storage_failed() {
            return;
        }
        let now_ms = self.unix_at_zero_ms.saturating_add(now.as_millis());
        for p in 0..self.config.partitions {
            let cut = self.retention_point(p, now_ms);
            let part = &mut self.parts[p as usize];
            if cut > part.log.low() {
                part.log.set_low(cut, None);
            }
        }
    }

    /// Drop the replicas of partitions handed off to other nodes (see
    /// the module docs).
    pub(super) fn handoff_tick(&mut self, me: &I, now: crate::contract::Time) {
        if !self.recovered || self.ticks % RETENTION_EVERY_TICKS != 0 || self.storage_failed() {
            return;
        }
        let grace = self.config.tick * HANDOFF_GRACE_TICKS;
        let target = self.config.rf.min(self.table.members.len());
        for p in 0..self.config.partitions as usize {
            let c = &self.table.chains[p];
            let away = !c.members.contains(me)
                && !c.learners.contains(me)
                && c.keep.as_ref() != Some(me)
                && c.learners.is_empty()
                && c.members.len() >= target
                && !self.placement.get(p).is_some_and(|w| w.contains(me));
            let part = &mut self.parts[p];
            if !away || part.log.is_empty() {
                part.away_since = None;
                continue;
            }
            let since = *part.away_since.get_or_insert(now);
            if now.saturating_since(since) < grace {
                continue;
            }
            Self::drop_log(part);
            part.away_since = None;
            part.handed_off = true;
            self.stats.handed_off += 1;
        }
    }

    /// Where partition `p`'s log may start after retention (a segment
    /// start, at most the commit point and what the store holds).
    fn retention_point(&self, p: u32, now_ms: u64) -> u64 {
        let part = &self.parts[p as usize];
        let log = &part.log;
        let low = log.low();
        let bound = part.commit.min(log.len()).min(if log.store.is_some() {
            log.stored
        } else {
            u64::MAX
        });
        if bound <= low {
            return low;
        }
        let starts: Vec<u64> = match &log.store {
            Some(s) => s.borrow().segment_starts(p),
            None => aligned_segment_starts(low, log.len()),
        };
        // Candidates: segment starts in (low, bound].
        let cands: Vec<u64> = starts
            .into_iter()
            .filter(|s| *s > low && *s <= bound)
            .collect();
        let mut cut = low;
        if let Some(max_bytes) = self.config.retention_bytes {
            // Drop oldest segments while what stays is still >= the limit.
            let sizes: Vec<u64> = log.sizes_from(low).collect();
            let total: u64 = sizes.iter().sum();
            let mut dropped = 0u64;
            let mut at = low;
            for c in &cands {
                let seg: u64 = sizes[(at - low) as usize..(*c - low) as usize].iter().sum();
                if total - dropped - seg < max_bytes {
                    break;
                }
                dropped += seg;
                at = *c;
            }
            cut = cut.max(at);
        }
        if let Some(max_ms) = self.config.retention_ms {
            let horizon = now_ms.saturating_sub(max_ms);
            for c in &cands {
                // A segment goes when its newest record is older.
                let newest = log
                    .id(*c - 1)
                    .map(|id| ScarabId::from_u64(id).unix_millis());
                match newest {
                    Some(t) if t < horizon => cut = cut.max(*c),
                    _ => break,
                }
            }
        }
        cut
    }
}
