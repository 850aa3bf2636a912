//! Bypass: noticing a successor that holds records too late, so the next round drops it from that chain.
//!
//! Once its successor has caught up with the epoch's start, a predecessor
//! remembers when each later append happened; if one stays un-held longer
//! than `slow_after` (default 1 s), it marks the successor slow for that
//! chain epoch (for `slow_hold`, default 10 s), asks for the token, and says
//! so in its promise (`PartReport::slow_successor`). The round drops that
//! member from the chain like a failed one, but only while two caught-up,
//! non-slow members of the epoch remain (a slow copy is still a complete
//! copy). Safety is unchanged: an acknowledged record is on every member,
//! the slow one included, and removal keeps the survivors' order. A crashed
//! successor is often caught this way before Sundial declares it dead. A
//! slow *head* is not bypassed (nobody precedes it). Tested by
//! `node/tests/slow_replica.rs` and the slow-replica fault of every
//! `shen sim log` seed.

use super::Ouroboros;
use crate::contract::{NodeId, Time};

impl<I: NodeId> Ouroboros<I> {
    /// Local entries were appended at `now`: track them for the slowness
    /// check once the successor has caught up.
    pub(super) fn note_appended(&mut self, p: u32, now: Time) {
        let part = &mut self.parts[p as usize];
        if part.succ_held < part.succ_target {
            return;
        }
        let end = part.log.len();
        match part.unheld.back_mut() {
            Some((e, t)) if *t == now => *e = end,
            _ => part.unheld.push_back((end, now)),
        }
    }

    /// The successor reported holding `held` entries.
    pub(super) fn successor_holds(&mut self, p: u32, held: u64, now: Time) {
        let part = &mut self.parts[p as usize];
        let caught_before = part.succ_held >= part.succ_target;
        part.succ_held = part.succ_held.max(held);
        while part
            .unheld
            .front()
            .is_some_and(|(e, _)| *e <= part.succ_held)
        {
            part.unheld.pop_front();
        }
        let len = part.log.len();
        if !caught_before && part.succ_held >= part.succ_target && part.succ_held < len {
            // Just caught up: what it still lacks is judged from now on.
            part.unheld.push_back((len, now));
        }
    }

    /// Partitions whose successor (of this node) has left a record un-held
    /// for longer than `slow_after`: mark them (until `slow_hold`).
    pub(super) fn check_slow(&mut self, me: &I, now: Time) {
        for p in 0..self.config.partitions {
            let oldest = self.parts[p as usize].unheld.front().map(|(_, t)| *t);
            let Some(t) = oldest else {
                continue;
            };
            if now.saturating_since(t) < self.config.slow_after {
                continue;
            }
            let Some(succ) = self.successor(p, me) else {
                continue;
            };
            let epoch = self.chain(p).epoch;
            if !self.slow.contains_key(&(p, epoch)) {
                self.stats.slow_marked += 1;
            }
            self.slow
                .insert((p, epoch), (succ, now + self.config.slow_hold));
        }
        self.slow.retain(|_, (_, until)| now < *until);
    }
}
