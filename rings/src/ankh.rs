//! Ankh Ring: consistent hashing with virtual nodes, weights, a replica walk,
//! exact hand-off plans, bounded loads and fixed partitions.
//!
//! Ankh sends no messages: it is a pure function of the membership view.
//! Every node that holds the same members (id, weight, salt) computes the
//! same placement, bit for bit, on every platform, because positions come
//! only from XXH3-64 with a fixed seed ([`crate::hash`]) and ties are broken
//! by node id.
//!
//! # Balanced joins (the vnode salt)
//! A node's virtual-node positions are `xxh3(node, salt, i)`. With plain
//! random positions a node's share of the ring varies by about `1/sqrt(V)`
//! (≈ 8% at V = 160), so a joiner can take noticeably more than its fair
//! share. When a node joins, [`AnkhRing::choose_salt`] tries a few salts and
//! keeps the one whose positions give the joiner a share closest to ideal
//! while keeping the most-loaded node lowest. The chosen salt is part of
//! the member's identity on the ring (gossiped with its weight), so the
//! placement remains a pure function of the member list.
//!
//! # Hot path
//! `locate` hashes the key, reads a bucket index of the sorted position
//! array (one bucket per ~1 position), and scans a handful of entries:
//! no allocation. `replicas` walks clockwise from there, skipping physical
//! nodes already returned, using a fixed-size array: no allocation.
//!
//! # Placement
//! Each member is `(id, weight, salt)` and gets `vnodes × weight / 100`
//! points; points are sorted by `(position, id)`, and a key at hash `h`
//! belongs to the first point at or after `h` (wrapping): ranges are
//! `(prev, point]`. `choose_salt` tries 16 salts and keeps one that gives the
//! joiner a share within 5% of ideal and the lowest maximum load afterwards;
//! at N = 100, V = 160 that gives max/mean ≈ 1.11 (≈ 1.2–1.3 plain) and a
//! join moves ≈ 1.00× the ideal 1/(N+1) (`shen ring stats` measures it).
//!
//! # Hand-off plans
//! `join`/`leave`/`add_member` return a [`HandoffPlan`]: the union of old and
//! new boundaries splits the ring into elementary ranges; each range's
//! replica list (rf, primary first) is computed in both rings, and the ranges
//! that differ are emitted, adjacent identical moves merged. Tested exact (in
//! `ankh/tests.rs`): a key's replica list changes iff its hash is in a
//! range, and then from exactly `old` to `new`.
//!
//! # Bounded loads and partitions
//! [`BoundedLoad`]: for a known population `m`, node `i`'s capacity is
//! `⌈(1+ε)·m·vᵢ/V⌉`; a key goes to the first node clockwise with room.
//! Partitions: `P` (default 64) equal hash ranges; `partition_of(key)` is
//! `(h·P) >> 64` and `chain_of(p)` the rf replicas of the partition's first
//! position; `partition_changes(before, after)` lists the chains that
//! changed. Ouroboros' initial table is these chains.

use alloc::vec::Vec;
use core::fmt;

use crate::contract::NodeId;
use crate::hash::{hash_bytes, vnode_position};

/// Default virtual nodes per node of weight [`DEFAULT_WEIGHT`].
pub const DEFAULT_VNODES: u32 = 160;
/// Default replication factor.
pub const DEFAULT_RF: usize = 3;
/// Default number of partitions.
pub const DEFAULT_PARTITIONS: u32 = 64;
/// The weight of an ordinary node; a node of weight `w` gets
/// `vnodes * w / 100` virtual nodes (at least one).
pub const DEFAULT_WEIGHT: u32 = 100;
/// The largest replication factor [`AnkhRing::replicas`] serves.
pub const MAX_RF: usize = 16;
/// Salts tried per join by [`AnkhRing::choose_salt`] by default.
pub const DEFAULT_SALT_CANDIDATES: u32 = 16;

/// Why an Ankh operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnkhError {
    /// Configuration value out of range.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The node is already on the ring.
    #[error("node is already a member")]
    AlreadyMember,
    /// The node is not on the ring.
    #[error("node is not a member")]
    NotMember,
    /// A weight of zero (or too large) was given.
    #[error("weight must be between 1 and 10000 (100 = an ordinary node)")]
    InvalidWeight,
    /// The bounded-load epsilon must be positive and finite.
    #[error("epsilon must be a positive finite number")]
    InvalidEpsilon,
}

/// Ankh's configuration. Every node of a cluster must use the same values.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnkhConfig {
    /// Virtual nodes for a node of weight 100.
    pub vnodes: u32,
    /// Replication factor used for hand-off plans and partition chains.
    pub rf: usize,
    /// Number of fixed partitions.
    pub partitions: u32,
    /// Salts tried when a node joins (1 = plain random placement).
    pub salt_candidates: u32,
}

impl Default for AnkhConfig {
    fn default() -> Self {
        AnkhConfig {
            vnodes: DEFAULT_VNODES,
            rf: DEFAULT_RF,
            partitions: DEFAULT_PARTITIONS,
            salt_candidates: DEFAULT_SALT_CANDIDATES,
        }
    }
}

impl AnkhConfig {
    /// Check every field.
    pub fn validate(&self) -> Result<(), AnkhError> {
        let bad = |field, reason| Err(AnkhError::InvalidConfig { field, reason });
        if self.vnodes == 0 || self.vnodes > 65_536 {
            return bad("vnodes", "must be between 1 and 65536");
        }
        if self.rf == 0 || self.rf > MAX_RF {
            return bad("rf", "must be between 1 and 16");
        }
        if self.partitions == 0 {
            return bad("partitions", "must be at least 1");
        }
        if self.salt_candidates == 0 {
            return bad("salt_candidates", "must be at least 1");
        }
        Ok(())
    }
}

/// A member as placed on the ring: identity, weight and vnode salt.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member<I> {
    /// The node.
    pub id: I,
    /// Relative capacity (100 = ordinary).
    pub weight: u32,
    /// The vnode salt chosen when the node joined.
    pub salt: u32,
}

#[derive(Clone, Debug)]
struct Entry<I> {
    member: Member<I>,
    /// Sum of the ring arcs this node owns (as primary), out of 2^64.
    share: u128,
}

/// The consistent-hashing ring.
#[derive(Clone)]
pub struct AnkhRing<I> {
    config: AnkhConfig,
    nodes: Vec<Entry<I>>,
    /// Sorted vnode positions.
    points: Vec<u64>,
    /// Owner (index into `nodes`) of each position.
    owners: Vec<u32>,
    /// `buckets[b]` = first index with `points[i] >= b << shift`;
    /// one extra trailing entry equal to `points.len()`.
    buckets: Vec<u32>,
    shift: u32,
}

impl<I: NodeId> fmt::Debug for AnkhRing<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnkhRing")
            .field("nodes", &self.nodes.len())
            .field("points", &self.points.len())
            .field("config", &self.config)
            .finish()
    }
}

fn vnodes_for(config: &AnkhConfig, weight: u32) -> u32 {
    let v = (u64::from(config.vnodes) * u64::from(weight) + 50) / 100;
    u32::try_from(v.max(1)).unwrap_or(u32::MAX)
}

/// The clockwise distance from `a` to `b` on the 2^64 ring, in (0, 2^64];
/// `a == b` means the whole ring.
fn arc(a: u64, b: u64) -> u128 {
    let d = b.wrapping_sub(a);
    if d == 0 {
        1u128 << 64
    } else {
        u128::from(d)
    }
}

impl<I: NodeId> AnkhRing<I> {
    /// An empty ring.
    pub fn new(config: AnkhConfig) -> Result<Self, AnkhError> {
        config.validate()?;
        Ok(AnkhRing {
            config,
            nodes: Vec::new(),
            points: Vec::new(),
            owners: Vec::new(),
            buckets: alloc::vec![0, 0],
            shift: 63,
        })
    }

    /// A ring holding exactly `members` (salts as given). Building from the
    /// same member list in any order gives the same ring.
    pub fn from_members(
        config: AnkhConfig,
        members: impl IntoIterator<Item = Member<I>>,
    ) -> Result<Self, AnkhError> {
        let mut ring = AnkhRing::new(config)?;
        for m in members {
            if m.weight == 0 || m.weight > 10_000 {
                return Err(AnkhError::InvalidWeight);
            }
            if ring.index_of(&m.id).is_some() {
                return Err(AnkhError::AlreadyMember);
            }
            ring.nodes.push(Entry {
                member: m,
                share: 0,
            });
        }
        ring.rebuild();
        Ok(ring)
    }

    /// The configuration.
    pub fn config(&self) -> &AnkhConfig {
        &self.config
    }

    /// Number of physical nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node is on the ring.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of virtual nodes on the ring.
    pub fn vnode_count(&self) -> usize {
        self.points.len()
    }

    /// The members, in no particular order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member<I>> + '_ {
        self.nodes.iter().map(|e| &e.member)
    }

    /// Whether `id` is on the ring.
    pub fn contains(&self, id: &I) -> bool {
        self.index_of(id).is_some()
    }

    fn index_of(&self, id: &I) -> Option<usize> {
        self.nodes.iter().position(|e| &e.member.id == id)
    }

    /// The fraction of the hash space `id` owns as primary, or `None` if it
    /// is not a member.
    pub fn share_of(&self, id: &I) -> Option<f64> {
        let i = self.index_of(id)?;
        Some(self.nodes[i].share as f64 / 18_446_744_073_709_551_616.0)
    }

    /// Recompute points, owners, buckets and shares from `nodes`.
    fn rebuild(&mut self) {
        let mut pts: Vec<(u64, u32)> = Vec::new();
        for (i, e) in self.nodes.iter().enumerate() {
            let bytes = e.member.id.stable_bytes();
            for v in 0..vnodes_for(&self.config, e.member.weight) {
                pts.push((vnode_position(&bytes, e.member.salt, v), i as u32));
            }
        }
        let nodes = &self.nodes;
        pts.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                nodes[a.1 as usize]
                    .member
                    .id
                    .cmp(&nodes[b.1 as usize].member.id)
            })
        });
        self.points = pts.iter().map(|p| p.0).collect();
        self.owners = pts.iter().map(|p| p.1).collect();
        self.rebuild_buckets();
        self.recompute_shares();
    }

    fn rebuild_buckets(&mut self) {
        let n = self.points.len().max(1);
        // About one position per bucket, at most 2^20 buckets.
        let bits = (usize::BITS - (n - 1).leading_zeros()).clamp(1, 20);
        self.shift = 64 - bits;
        let count = 1usize << bits;
        let mut buckets = Vec::with_capacity(count + 1);
        let mut i = 0usize;
        for b in 0..count {
            let start = (b as u64) << self.shift;
            while i < self.points.len() && self.points[i] < start {
                i += 1;
            }
            buckets.push(i as u32);
        }
        buckets.push(self.points.len() as u32);
        self.buckets = buckets;
    }

    fn recompute_shares(&mut self) {
        for e in &mut self.nodes {
            e.share = 0;
        }
        let n = self.points.len();
        if n == 0 {
            return;
        }
        for i in 0..n {
            let prev = self.points[(i + n - 1) % n];
            let a = if n == 1 {
                1u128 << 64
            } else {
                arc(prev, self.points[i])
            };
            self.nodes[self.owners[i] as usize].share += a;
        }
    }

    /// Every virtual node as `(position, owner)`, clockwise from position 0.
    /// Point `i` owns the range `(position of point i-1, position i]`
    /// (wrapping). Read-only: for drawing and inspecting the ring.
    pub fn points(&self) -> impl ExactSizeIterator<Item = (u64, &I)> + '_ {
        self.points
            .iter()
            .zip(&self.owners)
            .map(|(p, o)| (*p, &self.nodes[*o as usize].member.id))
    }

    /// Index of the first position `>= h`, wrapping to 0.
    #[inline]
    fn first_at_or_after(&self, h: u64) -> usize {
        let b = (h >> self.shift) as usize;
        let lo = self.buckets[b] as usize;
        let hi = self.buckets[b + 1] as usize;
        let i = lo + self.points[lo..hi].partition_point(|&p| p < h);
        if i == self.points.len() {
            0
        } else {
            i
        }
    }

    /// The primary owner of `key`, or `None` on an empty ring.
    #[inline]
    pub fn locate(&self, key: &[u8]) -> Option<&I> {
        self.locate_hash(hash_bytes(key))
    }

    /// The primary owner of hash position `h`.
    #[inline]
    pub fn locate_hash(&self, h: u64) -> Option<&I> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.first_at_or_after(h);
        Some(&self.nodes[self.owners[i] as usize].member.id)
    }

    /// The `rf` distinct physical nodes responsible for `key`, clockwise
    /// from its position: the primary first. Yields `min(rf, len, 16)` nodes.
    #[inline]
    pub fn replicas(&self, key: &[u8], rf: usize) -> Replicas<'_, I> {
        self.replicas_hash(hash_bytes(key), rf)
    }

    /// [`AnkhRing::replicas`] for a hash position.
    #[inline]
    pub fn replicas_hash(&self, h: u64, rf: usize) -> Replicas<'_, I> {
        let want = rf.min(self.nodes.len()).min(MAX_RF);
        let start = if self.points.is_empty() {
            0
        } else {
            self.first_at_or_after(h)
        };
        Replicas {
            ring: self,
            pos: start,
            steps: 0,
            want,
            seen: [0; MAX_RF],
            found: 0,
        }
    }

    fn replica_indices(&self, h: u64, rf: usize, out: &mut [u32; MAX_RF]) -> usize {
        let mut it = self.replicas_hash(h, rf);
        while it.next_index().is_some() {}
        *out = it.seen;
        it.found
    }

    /// Pick the vnode salt for a node joining with `weight`: among
    /// `config.salt_candidates` salts, prefer those giving the joiner a share
    /// within 5% of its fair share, and among those the one leaving the
    /// most-loaded node (relative to its fair share) lowest. Deterministic.
    pub fn choose_salt(&self, id: &I, weight: u32) -> u32 {
        if self.nodes.is_empty() || self.config.salt_candidates <= 1 {
            return 0;
        }
        let bytes = id.stable_bytes();
        let v_new = vnodes_for(&self.config, weight);
        let v_total: u64 = self.points.len() as u64 + u64::from(v_new);
        let full = 18_446_744_073_709_551_616.0f64;
        let ideal_of = |v: u32| f64::from(v) / v_total as f64;
        let mut best: Option<(bool, f64, f64, u32)> = None;
        let mut own: Vec<u64> = Vec::with_capacity(v_new as usize);
        let mut delta: Vec<u128> = alloc::vec![0; self.nodes.len()];
        for salt in 0..self.config.salt_candidates {
            own.clear();
            own.extend((0..v_new).map(|v| vnode_position(&bytes, salt, v)));
            own.sort_unstable();
            delta.iter_mut().for_each(|d| *d = 0);
            let mut joiner: u128 = 0;
            for (k, &p) in own.iter().enumerate() {
                let succ = self.first_at_or_after(p);
                let pred_existing = self.points[(succ + self.points.len() - 1) % self.points.len()];
                // The arc this vnode takes: back to the nearest earlier point,
                // existing or own.
                let gap_existing = arc(pred_existing, p);
                let gap = if k > 0 {
                    gap_existing.min(arc(own[k - 1], p))
                } else {
                    let last_own = own[own.len() - 1];
                    if own.len() > 1 {
                        gap_existing.min(arc(last_own, p))
                    } else {
                        gap_existing
                    }
                };
                joiner += gap;
                delta[self.owners[succ] as usize] += gap;
            }
            let joiner_ratio = (joiner as f64 / full) / ideal_of(v_new);
            let mut worst = joiner_ratio;
            for (i, e) in self.nodes.iter().enumerate() {
                let s = e.share.saturating_sub(delta[i]) as f64 / full;
                let r = s / ideal_of(vnodes_for(&self.config, e.member.weight));
                if r > worst {
                    worst = r;
                }
            }
            let close = (joiner_ratio - 1.0).abs() <= 0.05;
            let cand = (close, (joiner_ratio - 1.0).abs(), worst, salt);
            let better = match &best {
                None => true,
                Some((bc, bdev, bworst, _)) => {
                    if close != *bc {
                        close
                    } else if close {
                        worst < *bworst
                    } else {
                        cand.1 < *bdev
                    }
                }
            };
            if better {
                best = Some(cand);
            }
        }
        best.map(|b| b.3).unwrap_or(0)
    }

    /// Add `id` with `weight` (100 = ordinary), choosing its salt with
    /// [`AnkhRing::choose_salt`]. Returns the member as placed (publish its
    /// salt with the membership) and the exact hand-off plan.
    pub fn join(&mut self, id: I, weight: u32) -> Result<(Member<I>, HandoffPlan<I>), AnkhError> {
        if weight == 0 || weight > 10_000 {
            return Err(AnkhError::InvalidWeight);
        }
        if self.contains(&id) {
            return Err(AnkhError::AlreadyMember);
        }
        let salt = self.choose_salt(&id, weight);
        let member = Member { id, weight, salt };
        let plan = self.add_member(member.clone())?;
        Ok((member, plan))
    }

    /// Add a member whose salt is already known (for example learned from
    /// gossip). Returns the hand-off plan.
    pub fn add_member(&mut self, member: Member<I>) -> Result<HandoffPlan<I>, AnkhError> {
        if member.weight == 0 || member.weight > 10_000 {
            return Err(AnkhError::InvalidWeight);
        }
        if self.contains(&member.id) {
            return Err(AnkhError::AlreadyMember);
        }
        let before = self.clone();
        self.insert_member(member);
        Ok(HandoffPlan::between(&before, self, self.config.rf))
    }

    /// Merge a new member's points into the sorted arrays: O(points), no
    /// full re-sort.
    fn insert_member(&mut self, member: Member<I>) {
        let idx = self.nodes.len() as u32;
        let bytes = member.id.stable_bytes();
        let mut fresh: Vec<u64> = (0..vnodes_for(&self.config, member.weight))
            .map(|v| vnode_position(&bytes, member.salt, v))
            .collect();
        fresh.sort_unstable();
        self.nodes.push(Entry { member, share: 0 });
        let total = self.points.len() + fresh.len();
        let mut points = Vec::with_capacity(total);
        let mut owners = Vec::with_capacity(total);
        let (mut i, mut j) = (0, 0);
        while i < self.points.len() || j < fresh.len() {
            let take_old = if j == fresh.len() {
                true
            } else if i == self.points.len() {
                false
            } else {
                (
                    self.points[i],
                    &self.nodes[self.owners[i] as usize].member.id,
                ) < (fresh[j], &self.nodes[idx as usize].member.id)
            };
            if take_old {
                points.push(self.points[i]);
                owners.push(self.owners[i]);
                i += 1;
            } else {
                points.push(fresh[j]);
                owners.push(idx);
                j += 1;
            }
        }
        self.points = points;
        self.owners = owners;
        self.rebuild_buckets();
        self.recompute_shares();
    }

    /// Add a member without computing a hand-off plan (bulk building).
    /// Same result as [`AnkhRing::add_member`].
    pub fn insert(&mut self, member: Member<I>) -> Result<(), AnkhError> {
        if member.weight == 0 || member.weight > 10_000 {
            return Err(AnkhError::InvalidWeight);
        }
        if self.contains(&member.id) {
            return Err(AnkhError::AlreadyMember);
        }
        self.insert_member(member);
        Ok(())
    }

    /// Remove `id`. Returns the hand-off plan.
    pub fn leave(&mut self, id: &I) -> Result<HandoffPlan<I>, AnkhError> {
        let i = self.index_of(id).ok_or(AnkhError::NotMember)?;
        let before = self.clone();
        self.remove_index(i);
        Ok(HandoffPlan::between(&before, self, self.config.rf))
    }

    /// Drop node `i`'s points and renumber the owners above it: O(points).
    fn remove_index(&mut self, i: usize) {
        self.nodes.remove(i);
        let gone = i as u32;
        let mut w = 0;
        for r in 0..self.points.len() {
            let o = self.owners[r];
            if o != gone {
                self.points[w] = self.points[r];
                self.owners[w] = if o > gone { o - 1 } else { o };
                w += 1;
            }
        }
        self.points.truncate(w);
        self.owners.truncate(w);
        self.rebuild_buckets();
        self.recompute_shares();
    }

    /// The partition `key` belongs to.
    #[inline]
    pub fn partition_of(&self, key: &[u8]) -> u32 {
        partition_of_hash(hash_bytes(key), self.config.partitions)
    }

    /// The replica chain (head first) of `partition`: the `rf` distinct
    /// nodes clockwise from the partition's anchor, the start of its range.
    pub fn chain_of(&self, partition: u32) -> Replicas<'_, I> {
        self.replicas_hash(
            partition_anchor(partition, self.config.partitions),
            self.config.rf,
        )
    }

    /// Partitions whose chain differs between `before` and `after`, with the
    /// old and new chains.
    pub fn partition_changes(before: &AnkhRing<I>, after: &AnkhRing<I>) -> Vec<PartitionMove<I>> {
        let p = after.config.partitions;
        (0..p)
            .filter_map(|part| {
                let old: Vec<I> = before.chain_of(part).cloned().collect();
                let new: Vec<I> = after.chain_of(part).cloned().collect();
                (old != new).then_some(PartitionMove {
                    partition: part,
                    old,
                    new,
                })
            })
            .collect()
    }
}

/// The partition of hash position `h` among `partitions` equal ranges.
#[inline]
pub fn partition_of_hash(h: u64, partitions: u32) -> u32 {
    ((u128::from(h) * u128::from(partitions)) >> 64) as u32
}

/// The first hash position of `partition`.
pub fn partition_anchor(partition: u32, partitions: u32) -> u64 {
    // ceil(p * 2^64 / P): the smallest h with partition_of_hash(h) == p.
    let num = u128::from(partition) << 64;
    let den = u128::from(partitions);
    num.div_ceil(den) as u64
}

/// A partition whose chain changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMove<I> {
    /// The partition.
    pub partition: u32,
    /// Its chain before (head first).
    pub old: Vec<I>,
    /// Its chain after.
    pub new: Vec<I>,
}

/// Iterator over the distinct physical replicas of a position, clockwise.
pub struct Replicas<'a, I> {
    ring: &'a AnkhRing<I>,
    pos: usize,
    steps: usize,
    want: usize,
    seen: [u32; MAX_RF],
    found: usize,
}

impl<I> Replicas<'_, I> {
    #[inline]
    fn next_index(&mut self) -> Option<u32> {
        let n = self.ring.points.len();
        while self.found < self.want && self.steps < n {
            let owner = self.ring.owners[self.pos];
            self.pos += 1;
            if self.pos == n {
                self.pos = 0;
            }
            self.steps += 1;
            if !self.seen[..self.found].contains(&owner) {
                self.seen[self.found] = owner;
                self.found += 1;
                return Some(owner);
            }
        }
        None
    }
}

impl<'a, I> Iterator for Replicas<'a, I> {
    type Item = &'a I;
    #[inline]
    fn next(&mut self) -> Option<&'a I> {
        let ring = self.ring;
        self.next_index().map(|i| &ring.nodes[i as usize].member.id)
    }
}

/// One contiguous hash range whose replica list changes: positions in
/// `(start, end]` (wrapping when `start >= end`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeMove<I> {
    /// Exclusive start of the range.
    pub start: u64,
    /// Inclusive end of the range.
    pub end: u64,
    /// Replicas before the change (primary first).
    pub old: Vec<I>,
    /// Replicas after the change.
    pub new: Vec<I>,
}

impl<I: PartialEq> RangeMove<I> {
    /// Whether hash position `h` is in this range.
    pub fn contains(&self, h: u64) -> bool {
        if self.start < self.end {
            h > self.start && h <= self.end
        } else {
            h > self.start || h <= self.end
        }
    }

    /// The range's size as a fraction of the ring.
    pub fn fraction(&self) -> f64 {
        arc(self.start, self.end) as f64 / 18_446_744_073_709_551_616.0
    }

    /// Whether the primary owner changes.
    pub fn primary_changes(&self) -> bool {
        self.old.first() != self.new.first()
    }
}

/// The exact set of ranges that change replicas in one membership change.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HandoffPlan<I> {
    /// The ranges, in clockwise order of their end.
    pub ranges: Vec<RangeMove<I>>,
}

impl<I: NodeId> HandoffPlan<I> {
    /// Compute the plan between two rings for replication factor `rf`.
    pub fn between(before: &AnkhRing<I>, after: &AnkhRing<I>, rf: usize) -> Self {
        let mut bounds: Vec<u64> = before
            .points
            .iter()
            .chain(after.points.iter())
            .copied()
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut ranges: Vec<RangeMove<I>> = Vec::new();
        if bounds.is_empty() {
            return HandoffPlan { ranges };
        }
        let n = bounds.len();
        let mut ob = [0u32; MAX_RF];
        let mut nb = [0u32; MAX_RF];
        // Track the open (unmerged) run as (start, end, old idx, new idx).
        for k in 0..n {
            let start = bounds[(k + n - 1) % n];
            let end = bounds[k];
            let on = before.replica_indices(end, rf, &mut ob);
            let nn = after.replica_indices(end, rf, &mut nb);
            let same = on == nn
                && ob[..on].iter().zip(&nb[..nn]).all(|(a, b)| {
                    before.nodes[*a as usize].member.id == after.nodes[*b as usize].member.id
                });
            if same {
                continue;
            }
            let old: Vec<I> = ob[..on]
                .iter()
                .map(|&i| before.nodes[i as usize].member.id.clone())
                .collect();
            let new: Vec<I> = nb[..nn]
                .iter()
                .map(|&i| after.nodes[i as usize].member.id.clone())
                .collect();
            match ranges.last_mut() {
                Some(last) if last.end == start && last.old == old && last.new == new => {
                    last.end = end;
                }
                _ => ranges.push(RangeMove {
                    start,
                    end,
                    old,
                    new,
                }),
            }
        }
        // Merge a run that wraps around the top of the ring.
        if ranges.len() > 1 {
            let last = ranges.len() - 1;
            if ranges[last].end == ranges[0].start
                && ranges[last].old == ranges[0].old
                && ranges[last].new == ranges[0].new
            {
                let tail = ranges.pop().expect("len > 1");
                ranges[0].start = tail.start;
            }
        }
        HandoffPlan { ranges }
    }

    /// The range containing hash position `h`, if it moves.
    pub fn range_of(&self, h: u64) -> Option<&RangeMove<I>> {
        self.ranges.iter().find(|r| r.contains(h))
    }

    /// Fraction of the ring whose primary owner changes.
    pub fn primary_fraction(&self) -> f64 {
        self.ranges
            .iter()
            .filter(|r| r.primary_changes())
            .map(|r| r.fraction())
            .sum()
    }

    /// Fraction of the ring whose replica list changes at all.
    pub fn replica_fraction(&self) -> f64 {
        self.ranges.iter().map(|r| r.fraction()).sum()
    }

    /// True when nothing moves.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam):
/// places a known population of `m` keys so that no node holds more than
/// `ceil((1 + eps) * m * v_i / V)` of them (`v_i` its vnodes, `V` the total,
/// i.e. `ceil((1 + eps) * m / n)` for equal weights). A key goes to the first
/// node clockwise from its position that still has room.
pub struct BoundedLoad<'r, I> {
    ring: &'r AnkhRing<I>,
    capacity: Vec<u64>,
    load: Vec<u64>,
}

impl<'r, I: NodeId> BoundedLoad<'r, I> {
    /// Prepare to place `keys` keys with slack `eps`.
    pub fn new(ring: &'r AnkhRing<I>, keys: u64, eps: f64) -> Result<Self, AnkhError> {
        if !(eps.is_finite() && eps > 0.0) {
            return Err(AnkhError::InvalidEpsilon);
        }
        let total = ring.points.len() as f64;
        let capacity = ring
            .nodes
            .iter()
            .map(|e| {
                let v = f64::from(vnodes_for(&ring.config, e.member.weight));
                ((1.0 + eps) * keys as f64 * v / total).ceil() as u64
            })
            .collect();
        Ok(BoundedLoad {
            ring,
            capacity,
            load: alloc::vec![0; ring.nodes.len()],
        })
    }

    /// Place `key`; `None` only when every node is full (more keys than the
    /// population given to [`BoundedLoad::new`]) or the ring is empty.
    pub fn place(&mut self, key: &[u8]) -> Option<&'r I> {
        let n = self.ring.points.len();
        if n == 0 {
            return None;
        }
        let mut i = self.ring.first_at_or_after(hash_bytes(key));
        for _ in 0..n {
            let o = self.ring.owners[i] as usize;
            if self.load[o] < self.capacity[o] {
                self.load[o] += 1;
                return Some(&self.ring.nodes[o].member.id);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        None
    }

    /// Each node with its current load and capacity.
    pub fn loads(&self) -> impl Iterator<Item = (&'r I, u64, u64)> + '_ {
        self.ring
            .nodes
            .iter()
            .zip(self.load.iter().zip(&self.capacity))
            .map(|(e, (l, c))| (&e.member.id, *l, *c))
    }
}

#[cfg(test)]
mod tests;
