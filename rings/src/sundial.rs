//! Sundial Circle: gossip membership with phi-accrual failure detection.
//!
//! (About 1,020 lines on purpose: what is left here is one state machine
//! whose gossip, probing and suspicion handlers share its fields; records,
//! the Bloom filter and the wire live in `record`, `filter` and `msg`.)
//!
//! # Membership records
//! Every member has one [`Record`]: `(id, incarnation, status, suspectors,
//! meta)`. Records are ordered by `(incarnation, status rank, number of
//! suspectors)`; a newer record always replaces an older one, so merging is
//! commutative and idempotent and every node converges to the same view.
//! Only a member itself raises its incarnation: to refute a suspicion, to
//! change its metadata, or to come back after being declared dead. A dead
//! member therefore never returns with an old incarnation. Dead and left
//! members stay as tombstones for a grace period, then are forgotten; a
//! node never adopts a tombstone for a member it does not know, so expired
//! tombstones do not bounce back.
//!
//! # Dissemination: digest, then delta
//! Every `gossip_interval` a node sends `Syn{view hash, size}` to `fanout`
//! random members. The view hash is the XOR of all record hashes, so two
//! nodes with the same view stop there (steady state costs two small
//! numbers per peer). If the hashes differ, the peer answers with Bloom
//! filters of its records (`SynAck`; a large view is cut into up to
//! `ceil(log10 N)` slices of the digest space, one filter per frame, so each
//! filter keeps a low false-positive rate); the initiator sends the records the
//! filter does not contain (`Delta`, most recently changed first, cut at
//! `max_message_bytes`; up to `ceil(log10 N)` such frames, so per-node bytes
//! per round grow as O(log N)) and its own filter (`Pull`), which the peer
//! answers with its own delta. Filters are re-seeded per message, so a false
//! positive in one exchange is not repeated in the next. Every message fits
//! in `max_message_bytes` (default 1,200: one UDP datagram).
//!
//! # Failure detection on the circle
//! Members are placed on a circle by the hash of their id. Each node probes
//! its `monitors` predecessors every interval and feeds the arrival times of
//! the acknowledgements into a phi-accrual detector; so every member is
//! watched by `monitors` independent nodes and probing costs O(1) per node
//! whatever the cluster size. When phi crosses the threshold the monitor
//! marks the member `Suspect` (adding itself as a suspector) and tells the
//! member directly, which refutes by raising its incarnation. A suspicion
//! becomes `Dead` only when it is old enough *and* backed by enough
//! independent suspectors (the timeout shrinks, Lifeguard-style, as more
//! suspectors agree); a single node's opinion never kills a member unless it
//! persists for `suspicion_max`.
//!
//! # Messages
//! All at most `max_message_bytes`:
//!
//! | message | when | carries |
//! |---|---|---|
//! | `Syn` | every `gossip_interval` (200 ms) to `fanout` (3) random live members, plus seeds not yet seen live and, every [`DEAD_KNOCK_TICKS`]th round, one member counted dead | view hash, size |
//! | `SynAck` | view hashes differ | Bloom filters of the receiver's record digests, one per slice and frame |
//! | `Delta` | answer to a filter | the slice's records the filter lacks, most recently changed first |
//! | `Pull` | initiator, on the first `SynAck` slice | its own filters |
//! | `Join` | start / `add_seed` | the joiner's record; the seed answers with deltas |
//! | `Probe` / `ProbeAck` | every interval, monitor → monitored | sequence, heartbeat counter |
//! | `Suspected` | a monitor suspects a member | the suspected incarnation, so a live member refutes at once |
//!
//! A steady, converged cluster exchanges only `Syn`s and probes: O(1) bytes
//! per node per round (≈ 170 B measured by `shen sim gossip`).
//!
//! # Healing after a long partition
//! Seeds not yet seen live are re-contacted every round, so a lost `Join`
//! cannot leave an island. After a partition long enough for both sides to
//! declare each other dead, gossip among live members alone would keep the
//! islands apart for ever; the periodic knock on a member counted dead shows
//! a live "dead" member its tombstone, it refutes above it and the views
//! merge (`transport-memory/tests/membership_heal.rs`). Starting to monitor
//! a member counts as a first heartbeat, so a member that never answers
//! becomes suspect; a single suspector needs the full `suspicion_max`
//! (10 s), two or more shrink the wait towards `suspicion_min` (400 ms).
//!
//! # Ankh
//! Members publish `ankh.weight` and `ankh.salt` in their metadata;
//! [`Sundial::ankh_members`] is the live set with those values, so nodes with
//! equal views build identical Ankh rings.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::ankh::{Member, DEFAULT_WEIGHT};
use crate::contract::{NodeId, Ring, RingCtx, RingId, Time, TimerSlot, TimerToken};
use crate::hash::hash_bytes;
use crate::order::{Placement, RingOrder};
use crate::phi::{PhiAccrual, PhiConfig};

mod filter;
mod msg;
mod record;

pub use filter::Filter;
pub use msg::{SundialError, SundialEvent, SundialMsg};
pub use record::{Record, Status};

/// Every this many gossip rounds a node also sends its digest to one member
/// it counts as dead (see `on_tick`).
pub const DEAD_KNOCK_TICKS: u64 = 5;

/// Metadata key under which a member publishes its Ankh weight.
pub const META_ANKH_WEIGHT: &str = "ankh.weight";
/// Metadata key under which a member publishes its Ankh vnode salt.
pub const META_ANKH_SALT: &str = "ankh.salt";
/// Most metadata entries per member.
pub const MAX_META_ENTRIES: usize = 8;
/// Longest metadata key, in bytes.
pub const MAX_META_KEY: usize = 32;
/// Longest metadata value, in bytes.
pub const MAX_META_VALUE: usize = 128;
/// Most suspectors recorded per suspicion.
pub const MAX_SUSPECTORS: usize = 8;

/// Sundial's settings. Every member of a cluster should use the same ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SundialConfig {
    /// Cluster name; messages from another cluster are dropped.
    pub cluster: String,
    /// Gossip and probe period.
    pub gossip_interval: Duration,
    /// Peers contacted per gossip round.
    pub fanout: usize,
    /// Largest encoded message.
    pub max_message_bytes: usize,
    /// Monitors per member (each node probes this many predecessors).
    pub monitors: usize,
    /// Phi-accrual settings.
    pub phi: PhiConfig,
    /// Independent suspectors needed for the short confirmation path.
    pub required_suspectors: usize,
    /// Confirmation wait when every monitor agrees.
    pub suspicion_min: Duration,
    /// Confirmation wait with a single suspector (and the upper bound).
    pub suspicion_max: Duration,
    /// How long dead and left members are remembered.
    pub dead_grace: Duration,
    /// Gossip rounds a leaving node keeps spreading its departure.
    pub leave_rounds: u32,
    /// Cap on delta frames per answer (the answer uses
    /// `ceil(log10(view size))` frames, at most this many).
    pub max_delta_frames: usize,
}

impl Default for SundialConfig {
    fn default() -> Self {
        SundialConfig {
            cluster: String::from("shen"),
            gossip_interval: Duration::from_millis(200),
            fanout: 3,
            max_message_bytes: 1200,
            monitors: 3,
            phi: PhiConfig::default(),
            required_suspectors: 2,
            suspicion_min: Duration::from_millis(400),
            suspicion_max: Duration::from_secs(10),
            dead_grace: Duration::from_secs(24 * 3600),
            leave_rounds: 3,
            max_delta_frames: 8,
        }
    }
}

#[derive(Clone, Debug)]
struct Entry<I> {
    record: Record<I>,
    digest: u64,
    seq: u64,
    /// When this node learned the current status.
    since: Time,
}

#[derive(Clone, Debug)]
struct Monitor {
    phi: PhiAccrual,
    probe_seq: u64,
}

/// Counters for reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SundialStats {
    /// Suspicions this node raised.
    pub suspicions_raised: u64,
    /// Times this node refuted a suspicion about itself.
    pub refutations: u64,
    /// Messages dropped for carrying another cluster's tag.
    pub foreign_dropped: u64,
}

/// The Sundial membership state of one node.
#[derive(Clone, Debug)]
pub struct Sundial<I> {
    config: SundialConfig,
    cluster: u64,
    me: I,
    heartbeat: u64,
    members: BTreeMap<I, Entry<I>>,
    /// Local change sequence -> (member, record digest): most recent first
    /// iteration for deltas without touching `members`.
    recent: BTreeMap<u64, (I, u64)>,
    /// Members currently `Suspect` (checked every tick).
    suspects: alloc::collections::BTreeSet<I>,
    /// Members currently Dead or Left (expired after the grace period).
    tombstones: alloc::collections::BTreeSet<I>,
    next_seq: u64,
    view_hash: u64,
    live: RingOrder<I>,
    monitoring: BTreeMap<I, Monitor>,
    tick: TimerSlot,
    seeds: Vec<I>,
    seeds_met: alloc::collections::BTreeSet<I>,
    left_rounds: Option<u32>,
    stats: SundialStats,
}

fn cluster_tag(name: &str) -> u64 {
    hash_bytes(name.as_bytes())
}

impl<I: NodeId> Sundial<I> {
    /// A node `me` with `meta` published from the start (e.g. address,
    /// role, Ankh weight and salt), knowing nobody yet.
    pub fn new(
        me: I,
        config: SundialConfig,
        meta: Vec<(String, String)>,
    ) -> Result<Self, SundialError> {
        let meta = normalize_meta(meta)?;
        let mut s = Sundial {
            cluster: cluster_tag(&config.cluster),
            config,
            me: me.clone(),
            heartbeat: 0,
            members: BTreeMap::new(),
            recent: BTreeMap::new(),
            suspects: alloc::collections::BTreeSet::new(),
            tombstones: alloc::collections::BTreeSet::new(),
            next_seq: 0,
            view_hash: 0,
            live: RingOrder::new(Placement::ByHash),
            monitoring: BTreeMap::new(),
            tick: TimerSlot::new(),
            seeds: Vec::new(),
            seeds_met: alloc::collections::BTreeSet::new(),
            left_rounds: None,
            stats: SundialStats::default(),
        };
        let rec = Record {
            id: me,
            incarnation: 0,
            status: Status::Alive,
            suspectors: Vec::new(),
            meta,
        };
        s.store(rec, Time::ZERO);
        Ok(s)
    }

    /// Like [`Sundial::new`], for a node restarting: its incarnation starts
    /// above `last_incarnation` so it supersedes any record of its past life.
    pub fn restarted(
        me: I,
        config: SundialConfig,
        meta: Vec<(String, String)>,
        last_incarnation: u64,
    ) -> Result<Self, SundialError> {
        let mut s = Self::new(me.clone(), config, meta)?;
        let mut rec = s.members[&me].record.clone();
        rec.incarnation = last_incarnation.saturating_add(1);
        s.store(rec, Time::ZERO);
        Ok(s)
    }

    /// Peers to introduce this node to when it starts (its join seeds).
    pub fn with_seeds(mut self, seeds: impl IntoIterator<Item = I>) -> Self {
        for p in seeds {
            if p != self.me && !self.seeds.contains(&p) {
                self.seeds.push(p);
            }
        }
        self
    }

    /// Start knowing `peers` as dead (incarnation 0, so any record of
    /// theirs from a later life supersedes it): a world that continues a
    /// running cluster (the browser's fork) starts each view where the
    /// cluster's was. The same state as having heard of their deaths by
    /// gossip; this node's own record is never touched.
    pub fn with_dead(mut self, peers: impl IntoIterator<Item = I>) -> Self {
        for id in peers {
            if id != self.me {
                let rec = Record {
                    id,
                    incarnation: 0,
                    status: Status::Dead,
                    suspectors: Vec::new(),
                    meta: Vec::new(),
                };
                self.store(rec, Time::ZERO);
            }
        }
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SundialConfig {
        &self.config
    }

    /// This node's own record.
    pub fn own(&self) -> &Record<I> {
        &self.members[&self.me].record
    }

    /// The record of `id`, if known.
    pub fn record(&self, id: &I) -> Option<&Record<I>> {
        self.members.get(id).map(|e| &e.record)
    }

    /// Every known record (including tombstones), ordered by id.
    pub fn records(&self) -> impl Iterator<Item = &Record<I>> + '_ {
        self.members.values().map(|e| &e.record)
    }

    /// Members that are alive or suspect (including this node), by id.
    pub fn live_members(&self) -> impl Iterator<Item = &I> + '_ {
        self.members
            .values()
            .filter(|e| e.record.status.is_live())
            .map(|e| &e.record.id)
    }

    /// Number of live members (including this node).
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The order-independent hash of this node's whole view: two nodes with
    /// the same hash hold the same records.
    pub fn view_hash(&self) -> u64 {
        self.view_hash
    }

    /// The members this node currently probes.
    pub fn monitored(&self) -> impl Iterator<Item = &I> + '_ {
        self.monitoring.keys()
    }

    /// Current phi of a monitored member.
    pub fn phi_of(&self, id: &I, now: Time) -> Option<f64> {
        self.monitoring
            .get(id)
            .map(|m| m.phi.phi(now, &self.config.phi))
    }

    /// Counters.
    pub fn stats(&self) -> &SundialStats {
        &self.stats
    }

    /// The live members as Ankh members, using each member's published
    /// `ankh.weight` and `ankh.salt` (defaults 100 and 0). Nodes with the
    /// same view get the same list, hence the same placement.
    pub fn ankh_members(&self) -> Vec<Member<I>> {
        self.members
            .values()
            .filter(|e| e.record.status.is_live())
            .map(|e| Member {
                id: e.record.id.clone(),
                weight: e
                    .record
                    .meta(META_ANKH_WEIGHT)
                    .and_then(|w| w.parse().ok())
                    .filter(|w| (1..=10_000).contains(w))
                    .unwrap_or(DEFAULT_WEIGHT),
                salt: e
                    .record
                    .meta(META_ANKH_SALT)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            })
            .collect()
    }

    /// Whether this node has left.
    pub fn has_left(&self) -> bool {
        self.left_rounds.is_some()
    }

    // ---- local commands ------------------------------------------------

    /// Introduce this node to a known peer (from discovery, a flag, or the
    /// simulator). Safe to call repeatedly and for peers already known.
    pub fn add_seed(&mut self, cx: &mut RingCtx<'_, I, Self>, peer: I) {
        if peer == self.me {
            return;
        }
        if !self.seeds.contains(&peer) {
            self.seeds.push(peer.clone());
        }
        let record = self.own().clone();
        cx.send(
            peer,
            SundialMsg::Join {
                cluster: self.cluster,
                record,
            },
        );
    }

    /// Publish new metadata (replaces the whole set). Raises the
    /// incarnation so the change supersedes older records everywhere.
    pub fn set_meta(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        meta: Vec<(String, String)>,
    ) -> Result<(), SundialError> {
        if self.has_left() {
            return Err(SundialError::HasLeft);
        }
        let meta = normalize_meta(meta)?;
        let mut rec = self.own().clone();
        rec.incarnation = rec.incarnation.saturating_add(1);
        rec.meta = meta;
        self.store(rec, cx.now);
        cx.emit(SundialEvent::MetaChanged {
            id: self.me.clone(),
        });
        Ok(())
    }

    /// Leave gracefully: mark this node `Left` and push that to more peers
    /// than usual for a few rounds, then go quiet.
    pub fn leave(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        if self.has_left() {
            return;
        }
        let mut rec = self.own().clone();
        rec.status = Status::Left;
        rec.suspectors.clear();
        self.store(rec.clone(), cx.now);
        self.left_rounds = Some(self.config.leave_rounds);
        let peers = self.random_peers(cx.rng, self.config.fanout * 2);
        for p in peers {
            cx.send(
                p,
                SundialMsg::Delta {
                    cluster: self.cluster,
                    records: alloc::vec![rec.clone()],
                },
            );
        }
        cx.emit(SundialEvent::Left {
            id: self.me.clone(),
        });
    }

    // ---- internals -------------------------------------------------------

    /// Replace (or insert) a record and keep the indexes in step.
    fn store(&mut self, record: Record<I>, now: Time) {
        let digest = record.digest();
        self.next_seq += 1;
        let seq = self.next_seq;
        let id = record.id.clone();
        let live = record.status.is_live();
        if let Some(old) = self.members.get(&id) {
            self.view_hash ^= old.digest;
            self.recent.remove(&old.seq);
        }
        self.view_hash ^= digest;
        self.recent.insert(seq, (id.clone(), digest));
        match record.status {
            Status::Suspect => {
                self.suspects.insert(id.clone());
                self.tombstones.remove(&id);
            }
            Status::Alive => {
                self.suspects.remove(&id);
                self.tombstones.remove(&id);
            }
            Status::Dead | Status::Left => {
                self.suspects.remove(&id);
                self.tombstones.insert(id.clone());
            }
        }
        let since = match self.members.get(&id) {
            Some(old) if old.record.status == record.status => old.since,
            _ => now,
        };
        self.members.insert(
            id.clone(),
            Entry {
                record,
                digest,
                seq,
                since,
            },
        );
        if live {
            self.live.insert(id);
        } else {
            self.live.remove(&id);
        }
    }

    fn forget(&mut self, id: &I) {
        if let Some(old) = self.members.remove(id) {
            self.view_hash ^= old.digest;
            self.recent.remove(&old.seq);
            self.live.remove(id);
            self.suspects.remove(id);
            self.tombstones.remove(id);
        }
    }

    fn random_peers(&self, rng: &mut dyn RngCore, k: usize) -> Vec<I> {
        let n = self.live.len();
        let mut out: Vec<I> = Vec::new();
        if n <= 1 {
            return out;
        }
        if n - 1 <= k {
            return self
                .live
                .members()
                .filter(|m| **m != self.me)
                .cloned()
                .collect();
        }
        // Rejection sampling: k is small next to n here.
        let mut tries = 0;
        while out.len() < k && tries < k * 8 {
            tries += 1;
            let i = (rng.next_u64() % n as u64) as usize;
            if let Some(m) = self.live.get(i) {
                if *m != self.me && !out.contains(m) {
                    out.push(m.clone());
                }
            }
        }
        out
    }

    /// Filters describing this node's whole view: one per slice of the
    /// digest space, as many slices as needed for ~10 bits per record but
    /// at most `delta_frames()` (so O(log N) bytes), each within one frame,
    /// built in one pass over the view with a fresh seed per message.
    fn my_filters(&self, rng: &mut dyn RngCore) -> Vec<Filter> {
        self.build_filters(rng)
    }

    fn build_filters(&self, rng: &mut dyn RngCore) -> Vec<Filter> {
        // Leave room for the envelope and the message's own fields.
        let frame = self.config.max_message_bytes.saturating_sub(56).max(8);
        let n = self.members.len();
        let wanted = (n * 10).div_ceil(8).max(8);
        let parts = wanted.div_ceil(frame).clamp(1, self.delta_frames()) as u16;
        let mut slices: Vec<Vec<u64>> = alloc::vec![Vec::new(); usize::from(parts)];
        for e in self.members.values() {
            slices[(e.digest % u64::from(parts)) as usize].push(e.digest);
        }
        slices
            .into_iter()
            .enumerate()
            .map(|(part, digests)| {
                let bytes = frame.min((digests.len() * 10).div_ceil(8).max(8));
                let mut f = Filter::build(rng.next_u64(), bytes, digests.into_iter());
                f.part = part as u16;
                f.parts = parts;
                f
            })
            .collect()
    }

    /// How many delta frames one answer may carry: `ceil(log10(view))`,
    /// at least 1, at most `max_delta_frames`. Per-node bytes per round thus
    /// grow as O(log N) while a large view still converges quickly.
    fn delta_frames(&self) -> usize {
        let n = self.members.len().max(1) as f64;
        let f = libm::ceil(libm::log10(n + 1.0)) as usize;
        f.clamp(1, self.config.max_delta_frames.max(1))
    }

    /// Records the peer's filter lacks, most recently changed first, packed
    /// into at most `frames` messages of at most `max_message_bytes` each.
    fn delta_for(&self, filter: &Filter, frames: usize) -> Vec<Vec<Record<I>>> {
        let budget = self.config.max_message_bytes.saturating_sub(32);
        let mut out: Vec<Vec<Record<I>>> = Vec::new();
        let mut cur: Vec<Record<I>> = Vec::new();
        let mut used = 0usize;
        for (id, digest) in self.recent.values().rev() {
            if !filter.covers(*digest) || filter.contains(*digest) {
                continue;
            }
            let e = &self.members[id];
            let len = e.record.encoded_len();
            if len > budget {
                continue; // a record that can never fit: skip it
            }
            if used + len > budget {
                out.push(core::mem::take(&mut cur));
                used = 0;
                if out.len() == frames {
                    return out;
                }
            }
            used += len;
            cur.push(e.record.clone());
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    fn send_delta(&self, cx: &mut RingCtx<'_, I, Self>, to: &I, filter: &Filter) {
        // The answer to one slice gets its share of the O(log N) budget.
        let frames = self
            .delta_frames()
            .div_ceil(usize::from(filter.parts.max(1)));
        for records in self.delta_for(filter, frames) {
            cx.send(
                to.clone(),
                SundialMsg::Delta {
                    cluster: self.cluster,
                    records,
                },
            );
        }
    }

    /// Merge one record learned from a peer.
    fn merge(&mut self, cx: &mut RingCtx<'_, I, Self>, incoming: Record<I>) {
        if incoming.suspectors.len() > MAX_SUSPECTORS
            || normalize_meta(incoming.meta.clone()).is_err()
        {
            return; // malformed: ignore
        }
        if incoming.id == self.me {
            self.merge_about_me(cx, incoming);
            return;
        }
        let current = self.members.get(&incoming.id).map(|e| e.record.clone());
        let merged = match &current {
            // A tombstone for a member this node never knew (or already
            // forgot) is not adopted: otherwise nodes that expire it at
            // slightly different times would re-infect each other forever.
            None if !incoming.status.is_live() => return,
            None => incoming,
            Some(cur) => {
                if incoming.incarnation == cur.incarnation
                    && incoming.status == Status::Suspect
                    && cur.status == Status::Suspect
                {
                    // Union of suspectors at the same incarnation.
                    let mut s = cur.suspectors.clone();
                    for x in incoming.suspectors {
                        if !s.contains(&x) && s.len() < MAX_SUSPECTORS {
                            s.push(x);
                        }
                    }
                    s.sort();
                    if s.len() == cur.suspectors.len() {
                        return;
                    }
                    Record {
                        suspectors: s,
                        ..cur.clone()
                    }
                } else if incoming.supersedes(cur) {
                    incoming
                } else {
                    return;
                }
            }
        };
        let before = current.as_ref().map(|c| c.status);
        let meta_changed = current.as_ref().is_some_and(|c| c.meta != merged.meta);
        let id = merged.id.clone();
        let status = merged.status;
        let by = merged.suspectors.clone();
        self.store(merged, cx.now);
        match (before, status) {
            (None | Some(Status::Dead | Status::Left), Status::Alive | Status::Suspect) => {
                cx.emit(SundialEvent::Joined { id: id.clone() })
            }
            (Some(Status::Suspect), Status::Alive) => {
                cx.emit(SundialEvent::Recovered { id: id.clone() })
            }
            (_, Status::Suspect) => cx.emit(SundialEvent::Suspected { id: id.clone(), by }),
            (Some(Status::Alive | Status::Suspect), Status::Dead) => {
                cx.emit(SundialEvent::Died { id: id.clone() })
            }
            (Some(Status::Alive | Status::Suspect), Status::Left) => {
                cx.emit(SundialEvent::Left { id: id.clone() })
            }
            _ => {}
        }
        if meta_changed && status.is_live() {
            cx.emit(SundialEvent::MetaChanged { id });
        }
    }

    /// Someone says something about this node: refute anything but the
    /// truth by raising the incarnation above it.
    fn merge_about_me(&mut self, cx: &mut RingCtx<'_, I, Self>, incoming: Record<I>) {
        if self.has_left() {
            return;
        }
        let own = self.own();
        let wrong = incoming.status != Status::Alive || incoming.meta != own.meta;
        if incoming.incarnation >= own.incarnation && (wrong || incoming.supersedes(own)) {
            self.refute(cx, incoming.incarnation);
        }
    }

    fn refute(&mut self, cx: &mut RingCtx<'_, I, Self>, above: u64) {
        let mut rec = self.own().clone();
        if rec.incarnation > above && rec.status == Status::Alive {
            return;
        }
        rec.incarnation = above.saturating_add(1);
        rec.status = Status::Alive;
        rec.suspectors.clear();
        self.store(rec.clone(), cx.now);
        self.stats.refutations += 1;
        cx.emit(SundialEvent::Refuted {
            incarnation: rec.incarnation,
        });
    }

    /// Monitored set = this node's `monitors` predecessors on the circle.
    fn update_monitoring(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let k = self.config.monitors.min(self.live.len().saturating_sub(1));
        let mut want: Vec<I> = Vec::with_capacity(k);
        for n in 1..=k {
            if let Some(p) = self.live.nth_predecessor(&self.me, n) {
                if *p != self.me && !want.contains(p) {
                    want.push(p.clone());
                }
            }
        }
        self.monitoring.retain(|id, _| want.contains(id));
        for id in want {
            if !self.monitoring.contains_key(&id) {
                // Starting to watch counts as a first heartbeat: a member
                // that never answers becomes suspect instead of invisible.
                let mut phi = PhiAccrual::new();
                phi.heartbeat(cx.now, &self.config.phi);
                self.monitoring
                    .insert(id.clone(), Monitor { phi, probe_seq: 0 });
                cx.emit(SundialEvent::Monitoring { id });
            }
        }
    }

    fn confirm_timeout(&self, suspectors: usize) -> Duration {
        let monitors = self.config.monitors.max(1);
        let needed = self
            .config
            .required_suspectors
            .min(self.live.len().saturating_sub(1))
            .max(1);
        if suspectors < needed {
            return self.config.suspicion_max;
        }
        // Lifeguard-style: from max down to min as agreement grows.
        let min = self.config.suspicion_min.as_micros() as f64;
        let max = self.config.suspicion_max.as_micros() as f64;
        let frac = libm::log((suspectors as f64) + 1.0) / libm::log((monitors as f64) + 1.0);
        let frac = frac.clamp(0.0, 1.0);
        let us = max - (max - min) * frac;
        Duration::from_micros(us.max(min) as u64)
    }

    fn on_tick(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        if let Some(rounds) = self.left_rounds {
            if rounds == 0 {
                return; // quiet after leaving
            }
            self.left_rounds = Some(rounds - 1);
        } else {
            self.heartbeat += 1;
        }
        let now = cx.now;
        let live_self = !self.has_left();

        if live_self {
            // 1. Failure detection on the circle.
            self.update_monitoring(cx);
            let mut newly_suspect: Vec<I> = Vec::new();
            let ids: Vec<I> = self.monitoring.keys().cloned().collect();
            for id in ids {
                let suspect = self.monitoring[&id].phi.is_suspect(now, &self.config.phi);
                if suspect {
                    newly_suspect.push(id.clone());
                }
                let m = self.monitoring.get_mut(&id).expect("present");
                m.probe_seq += 1;
                let seq = m.probe_seq;
                cx.send(
                    id,
                    SundialMsg::Probe {
                        cluster: self.cluster,
                        seq,
                    },
                );
            }
            for id in newly_suspect {
                self.suspect(cx, id);
            }

            // 2. Confirm suspicions that are old and agreed enough.
            let mut to_kill: Vec<I> = Vec::new();
            for id in &self.suspects {
                let e = &self.members[id];
                if now.saturating_since(e.since) >= self.confirm_timeout(e.record.suspectors.len())
                {
                    to_kill.push(id.clone());
                }
            }
            for id in to_kill {
                let mut rec = self.members[&id].record.clone();
                rec.status = Status::Dead;
                rec.suspectors.clear();
                self.store(rec, now);
                self.monitoring.remove(&id);
                cx.emit(SundialEvent::Died { id });
            }
        }

        // 3. Forget old tombstones.
        let grace = self.config.dead_grace;
        let expired: Vec<I> = self
            .tombstones
            .iter()
            .filter(|id| **id != self.me && now.saturating_since(self.members[*id].since) >= grace)
            .cloned()
            .collect();
        for id in expired {
            self.forget(&id);
            cx.emit(SundialEvent::Forgotten { id });
        }

        // 4. Gossip.
        let mut peers = self.random_peers(cx.rng, self.config.fanout);
        // Keep knocking on every seed this node does not yet count as live:
        // a lost Join must not leave a node (or a little island of nodes
        // that only found each other) cut off from the cluster.
        // Once a seed has been seen live it is an ordinary member; when this
        // node is alone again (restart, everyone else gone) it knocks on all
        // of them.
        let alone = self.live.len() <= 1;
        let live = &self.live;
        self.seeds_met
            .extend(self.seeds.iter().filter(|s| live.contains(s)).cloned());
        for s in &self.seeds {
            if (alone || !self.seeds_met.contains(s)) && !peers.contains(s) {
                peers.push(s.clone());
            }
        }
        // Now and then knock on one member this node counts as dead. After a
        // long partition each side has declared the other dead, and gossip
        // among live members alone would keep the two islands apart for
        // ever; a knock that reaches a live "dead" member shows it its
        // tombstone, it refutes with a higher incarnation and the views
        // merge again (found by `shen sim log` seed 5213).
        if live_self && self.heartbeat % DEAD_KNOCK_TICKS == 0 {
            let dead: Vec<&I> = self
                .tombstones
                .iter()
                .filter(|id| {
                    **id != self.me
                        && self
                            .members
                            .get(*id)
                            .is_some_and(|e| e.record.status == Status::Dead)
                })
                .collect();
            if !dead.is_empty() {
                // Round robin over the dead (no random draw: the knock
                // leaves every other random choice of the node as it was).
                let turn = self.heartbeat / DEAD_KNOCK_TICKS;
                let pick = dead[(turn % dead.len() as u64) as usize].clone();
                if !peers.contains(&pick) {
                    peers.push(pick);
                }
            }
        }
        let syn = SundialMsg::Syn {
            cluster: self.cluster,
            view_hash: self.view_hash,
            size: self.members.len() as u32,
        };
        for p in peers {
            cx.send(p, syn.clone());
        }
        let at = now + self.config.gossip_interval;
        self.tick.arm(cx, at);
    }

    fn suspect(&mut self, cx: &mut RingCtx<'_, I, Self>, id: I) {
        let Some(e) = self.members.get(&id) else {
            return;
        };
        let mut rec = e.record.clone();
        match rec.status {
            Status::Alive => {
                rec.status = Status::Suspect;
                rec.suspectors = alloc::vec![self.me.clone()];
            }
            Status::Suspect if !rec.suspectors.contains(&self.me) => {
                if rec.suspectors.len() >= MAX_SUSPECTORS {
                    return;
                }
                rec.suspectors.push(self.me.clone());
                rec.suspectors.sort();
            }
            _ => return,
        }
        let inc = rec.incarnation;
        let by = rec.suspectors.clone();
        self.store(rec, cx.now);
        self.stats.suspicions_raised += 1;
        cx.emit(SundialEvent::Suspected { id: id.clone(), by });
        cx.send(
            id,
            SundialMsg::Suspected {
                cluster: self.cluster,
                incarnation: inc,
            },
        );
    }
}

fn normalize_meta(mut meta: Vec<(String, String)>) -> Result<Vec<(String, String)>, SundialError> {
    if meta.len() > MAX_META_ENTRIES
        || meta
            .iter()
            .any(|(k, v)| k.len() > MAX_META_KEY || v.len() > MAX_META_VALUE)
    {
        return Err(SundialError::MetaTooLarge);
    }
    meta.sort();
    meta.dedup_by(|a, b| a.0 == b.0);
    Ok(meta)
}

impl<I: NodeId> Ring<I> for Sundial<I> {
    type Msg = SundialMsg<I>;
    type Event = SundialEvent<I>;
    const ID: RingId = RingId::SUNDIAL;
    const NAME: &'static str = "sundial";

    fn on_start(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        // Spread the first tick over one interval so nodes started together
        // do not gossip in lockstep.
        let jitter = cx.rng.next_u64() % (self.config.gossip_interval.as_micros() as u64).max(1);
        let at = cx.now + Duration::from_micros(jitter);
        self.tick.arm(cx, at);
        let id = self.me.clone();
        cx.emit(SundialEvent::Joined { id });
        let record = self.own().clone();
        for p in self.seeds.clone() {
            cx.send(
                p,
                SundialMsg::Join {
                    cluster: self.cluster,
                    record: record.clone(),
                },
            );
        }
    }

    fn on_message(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, msg: SundialMsg<I>) {
        let cluster = match &msg {
            SundialMsg::Syn { cluster, .. }
            | SundialMsg::SynAck { cluster, .. }
            | SundialMsg::Pull { cluster, .. }
            | SundialMsg::Delta { cluster, .. }
            | SundialMsg::Join { cluster, .. }
            | SundialMsg::Probe { cluster, .. }
            | SundialMsg::ProbeAck { cluster, .. }
            | SundialMsg::Suspected { cluster, .. } => *cluster,
        };
        if cluster != self.cluster {
            self.stats.foreign_dropped += 1;
            return;
        }
        if self.has_left() && !matches!(msg, SundialMsg::Syn { .. } | SundialMsg::Probe { .. }) {
            return;
        }
        match msg {
            SundialMsg::Syn { view_hash, .. } => {
                if view_hash != self.view_hash {
                    for filter in self.my_filters(cx.rng) {
                        cx.send(
                            from.clone(),
                            SundialMsg::SynAck {
                                cluster: self.cluster,
                                filter,
                            },
                        );
                    }
                }
            }
            SundialMsg::SynAck { filter, .. } => {
                self.send_delta(cx, &from, &filter);
                // Answer the first slice with this node's own filters.
                if filter.part == 0 {
                    for filter in self.my_filters(cx.rng) {
                        cx.send(
                            from.clone(),
                            SundialMsg::Pull {
                                cluster: self.cluster,
                                filter,
                            },
                        );
                    }
                }
            }
            SundialMsg::Pull { filter, .. } => {
                self.send_delta(cx, &from, &filter);
            }
            SundialMsg::Delta { records, .. } => {
                for r in records {
                    self.merge(cx, r);
                }
            }
            SundialMsg::Join { record, .. } => {
                self.merge(cx, record);
                self.send_delta(cx, &from, &Filter::empty());
            }
            SundialMsg::Probe { seq, .. } => {
                cx.send(
                    from,
                    SundialMsg::ProbeAck {
                        cluster: self.cluster,
                        seq,
                        heartbeat: self.heartbeat,
                    },
                );
            }
            SundialMsg::ProbeAck { .. } => {
                if let Some(m) = self.monitoring.get_mut(&from) {
                    m.phi.heartbeat(cx.now, &self.config.phi);
                }
            }
            SundialMsg::Suspected { incarnation, .. } => {
                if incarnation >= self.own().incarnation {
                    self.refute(cx, incarnation);
                    // Tell the accuser straight away.
                    let rec = self.own().clone();
                    cx.send(
                        from,
                        SundialMsg::Delta {
                            cluster: self.cluster,
                            records: alloc::vec![rec],
                        },
                    );
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut RingCtx<'_, I, Self>, token: TimerToken) {
        if self.tick.fired(token) {
            self.on_tick(cx);
        }
    }
}

#[cfg(test)]
mod tests;
