//! Ouroboros Circle: chain replication of the Shen log's partitions.
//!
//! Each partition (the Ankh partitions, default 64) is replicated by a
//! *chain* (default 3 members): head → middle → tail. Appends enter at the
//! head, which assigns the next offset and pushes batches down the chain;
//! every member appends in order and forwards; the tail's acknowledgement
//! travels back up, and the head answers the client once the record is on
//! every member. Reads go to the tail.
//!
//! # Configuration: a table agreed by majority, ballots from Cartouche
//! All chains form one *table*. A table change is a Paxos round over every
//! member of the cluster whose ballot is a Cartouche fencing number: the
//! node that holds the token (and only while it does) sends `Prepare`,
//! collects promises from a majority (each reports the newest table it has
//! accepted and committed, and the partitions it lost on restart), derives
//! the new table from the newest one reported, has a majority accept it and
//! then commits it. Two configurators therefore cannot both change the
//! table (the majorities intersect and a higher ballot wins), and a deposed
//! token holder's ballot is refused. A chain whose members change gets the
//! round's ballot as its *epoch*; replicas drop chain messages of any other
//! epoch.
//!
//! The founding table is Ankh's placement at epoch zero, or, for a world
//! that continues a running cluster, the chains and epochs the settings
//! give (`OuroborosConfig::founding_chains`). Both are computed alike by
//! every founding member before any round, so the founding table needs no
//! agreement; a given one's ballot (its newest epoch) is promised from the
//! start, and the stack raises Cartouche's promises above its generation,
//! so every round's ballot, and so every new epoch, is above it.
//!
//! # Why no acknowledged append is lost
//! A record is acknowledged only once the tail has it, so every member of
//! the chain has it. A new chain keeps the survivors of the old chain in
//! their old order and adds new members only at the end, so every member's
//! log contains its successor's (the *prefix property*), and the new head
//! has every acknowledged record. On a new epoch each member tells its
//! predecessor how much it holds; the predecessor re-sends the rest
//! (pending writes included). Entries carry the epoch that created them, so
//! a member whose log diverged (a deposed head that kept unreplicated
//! records) is found by the same check Raft uses (offset + epoch of the
//! previous entry) and truncated to its committed prefix. A chain is never
//! replaced by one without a survivor: if every member is gone, the
//! partition waits.
//!
//! # Why reads are never stale
//! A tail serves a read only (1) after it has caught up with what its
//! predecessor held when the epoch began (a new tail first receives the
//! whole log), and (2) after a majority of the cluster confirms, *after the
//! read arrived*, that it has accepted no newer epoch for the partition. A
//! new epoch needs a majority to accept it before any write in it can be
//! acknowledged, so a write acknowledged in a newer epoch is concurrent
//! with the read, never before it. This is a check, not a lease: it costs
//! one round trip to a majority and does not depend on clocks.
//!
//! # Exactly once
//! Each append carries the client node's id and request number; every
//! member indexes the (client, request) pairs of its newest records, so the
//! node's own retries of an append (after a lost message or a new head)
//! return the original offset instead of writing twice. The index covers
//! the last 30 s of the log's Scarab ID time (`dedupe`): a retry comes
//! within its operation's deadline, at most three request timeouts, and
//! `request_timeout` is refused above 6.6 s so that deadline plus 10 s of
//! clock difference between heads stays inside the window. An application that retries
//! through the admin API (a new request, maybe at another node, maybe after
//! the node restarted) names itself with an idempotent *producer* id and
//! sequence number; every replica indexes those too, in a bounded table
//! rebuilt from its log, so such a retry is also written at most once (the
//! argument is in `producer`).
//!
//! # Restarts
//! A node with a disk keeps a write-ahead log and rebuilds from it
//! ([`Ouroboros::recover`]; the argument is in `durable`). A node without
//! one (or whose disk was lost) restarts as an *amnesiac*: it first
//! re-learns the table and the Paxos state from a majority of the others
//! (never voting before), then marks every chain that lists it as *stale*
//! and asks for a reconfiguration, which removes it from those chains and
//! may add it back at the end with an empty log filled by state transfer.
//!
//! # Replacements learn before they join
//! A chain's new members are first *learners*: they follow the tail,
//! receive the log by state transfer and the new appends, but take no part
//! in acknowledgements or reads, so appends go on at full speed meanwhile.
//! A learner that caught up asks for a round, which makes it a member; in
//! that epoch it must catch up again before it counts (its log was never
//! part of an acknowledgement), and it never counts as a caught-up
//! *former* member for recovery. Learners are used only while at least two
//! members carry the chain: with fewer, replacements join as members at
//! once and appends wait for them, so an acknowledgement never rests on a
//! single copy while a second one is being made.
//!
//! # The member set changes while the log runs
//! The table carries the member set (`members`: the argument that a
//! table is still decided once while the acceptors change). Chains move
//! towards the Ankh placement over the members that stay: a chain that
//! holds a member placement no longer wants gains the one it wants as a
//! learner (bounded by `max_moves`); once that learner joined and caught
//! up, the unwanted member is dropped, which is safe as a failure is. A
//! leaving member's chains move the same way; a member removed from the
//! set leaves its chains as a failed one does.
//!
//! # Not yet
//! A chain whose caught-up members and tail are all lost, or whose only
//! complete copies sit on nodes that changed their log since, stays
//! unavailable (a few seeds per thousand of `shen sim log`; see
//! BENCHMARKS.md). A node that joins is appended at the end of its chains,
//! so it heads none until a failure reorders them. Placement gives every
//! member the same weight.
//!
//! # Checked by
//! The history checker (`shen sim log`, in `shen-checks`; 1,300 seeds in
//! `node/tests/log_check.rs`, 1,000 of them with the member set changing):
//! crashes and restarts from the synced disk or an empty one, power blips,
//! whole-cluster power loss, minority partitions, loss, duplication,
//! reordering, drifting clocks, a slow replica, joins, leaves, deaths for
//! good and replacements; then no acknowledged append lost, no duplicate, no phantom,
//! every read consistent with one order per partition, no stale read, and
//! every transaction all or nothing.
//!
//! # Where things are
//! - `types`: the public data (settings, tables, entries, errors, events,
//!   counters); `msg`: the wire enum.
//! - `part`: one partition's replica state; `place`: initial placement and
//!   the partition of a key.
//! - `chain`: chain replication (epochs, push, sync, ack, commit, seal).
//! - `client`: the client path (append at the head, read at the tail after
//!   the majority check, retries).
//! - `config`: the configuration round and its acceptor side; `derive`: the
//!   pure derivation of the next table from the promises.
//! - `bypass`: spotting slow successors; `housekeeping`: the periodic tick.
//! - `retention`: deleting old records, and a moved replica's data after
//!   its hand-off; `throttle`: pacing state transfer.
//! - `durable`: the write-ahead log; `txn`: multi-partition transactions.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::contract::{NodeId, Ring, RingCtx, RingId, Time, TimerSlot, TimerToken};
use crate::scarab::EPOCH_UNIX_MS;

mod bypass;
mod chain;
mod client;
mod config;
mod dedupe;
mod derive;
mod durable;
mod housekeeping;
mod members;
mod msg;
mod part;
mod place;
mod plog;
mod producer;
mod records;
mod retention;
mod throttle;
mod txn;
mod types;

pub use durable::{read_all, FsyncPolicy, RecoverError, WalStore};
pub use msg::OuroborosMsg;
pub use part::next_scarab;
pub use place::{initial_table, partition_of_key};
pub use producer::{Producer, ProducerTable, MAX_PRODUCERS, WINDOW as PRODUCER_WINDOW};
pub use records::{BoxedRecords, PartitionLogs, RecordStore};
pub use txn::{TxnId, TxnMark, TxnRecord};
pub use types::{
    founding_chains_error, Chain, Entry, Epoch, FoundingChain, LogError, MemberChange, Members,
    OuroborosConfig, OuroborosEvent, OuroborosStats, PartReport, PaxosState, ReadRecord, SealInfo,
    Table,
};

use client::{ClientOp, Op, OpResult, PendingRead};
use config::Round;
use part::Part;

/// One node's Ouroboros state: its replicas of every partition it is in,
/// its view of the table, its acceptor state and its client operations.
#[derive(Clone, Debug)]
pub struct Ouroboros<I> {
    config: OuroborosConfig,
    table: Table<I>,
    promised: Epoch,
    accepted: Option<Table<I>>,
    accepted_at: Time,
    /// May vote (false after a restart until a majority was heard).
    recovered: bool,
    recovery: BTreeMap<I, PaxosState<I>>,
    parts: Vec<Part<I>>,
    live: BTreeSet<I>,
    round: Option<Round<I>>,
    token_request: Option<u64>,
    wants_at: Option<Time>,
    req_base: u64,
    /// (partition, chain epoch) → (its slow successor, until when): this
    /// node found that member slow in that chain.
    slow: BTreeMap<(u32, Epoch), (I, Time)>,
    /// Unix time (ms) at `Time::ZERO`, for Scarab IDs.
    unix_at_zero_ms: u64,
    next_req: u64,
    ops: BTreeMap<u64, ClientOp>,
    reads: BTreeMap<u64, PendingRead<I>>,
    next_nonce: u64,
    queried: BTreeMap<I, Time>,
    told: BTreeMap<I, Time>,
    ticks: u64,
    tick: TimerSlot,
    stats: OuroborosStats,
    /// The write-ahead log, when the node has a disk.
    durable: Option<durable::Durable>,
    /// Transactions this node runs (coordinates or resolves).
    txns: BTreeMap<u64, txn::TxnOp>,
    /// Cartouche request → the transaction it is for.
    txn_tokens: BTreeMap<u64, u64>,
    /// Rebuilt from the write-ahead log at start.
    restored: bool,
    /// Member changes asked for by others (member set intents), with when
    /// each was last heard.
    intents: BTreeMap<MemberChange<I>, Time>,
    /// Member changes asked for here (resent until done).
    own_intents: BTreeSet<MemberChange<I>>,
    /// Members seen dead (not live) since when.
    dead_since: BTreeMap<I, Time>,
    /// This node asked to leave (it never asks to join again).
    left: bool,
    /// Where placement wants each partition under the table's member set
    /// (`place::placement`; recomputed when the set changes).
    placement: Vec<Vec<I>>,
    /// Paces catch-up pushes (`rebalance_bytes_per_sec`).
    throttle: throttle::Throttle,
}

impl<I: NodeId> Ouroboros<I> {
    /// A member of a cluster of `members` (the same list everywhere).
    /// `restarted` is true when this node ran before and lost its state.
    ///
    /// `members` is the founding member set; a node that joins a running
    /// log passes an empty one ([`Ouroboros::joiner`]).
    pub fn new(members: &[I], config: OuroborosConfig, restarted: bool) -> Self {
        let table = initial_table(&config, members);
        let placement = place::placement(&config, &table.members);
        // At first boot every log is empty, so every tail is caught up.
        let parts = (0..config.partitions)
            .map(|p| {
                let mut part = Part::new(!restarted);
                part.log.p = p;
                part
            })
            .collect();
        Ouroboros {
            live: table.members.ids().cloned().collect(),
            // A given founding table's ballot is promised from the start
            // (no round below it can be accepted); Ankh's is zero.
            promised: table.ballot,
            table,
            accepted: None,
            accepted_at: Time::ZERO,
            recovered: !restarted,
            recovery: BTreeMap::new(),
            parts,
            round: None,
            token_request: None,
            wants_at: None,
            req_base: 0,
            slow: BTreeMap::new(),
            unix_at_zero_ms: EPOCH_UNIX_MS,
            next_req: 0,
            ops: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_nonce: 0,
            queried: BTreeMap::new(),
            told: BTreeMap::new(),
            ticks: 0,
            tick: TimerSlot::new(),
            stats: OuroborosStats::default(),
            durable: None,
            txns: BTreeMap::new(),
            txn_tokens: BTreeMap::new(),
            restored: false,
            intents: BTreeMap::new(),
            own_intents: BTreeSet::new(),
            dead_since: BTreeMap::new(),
            placement,
            left: false,
            throttle: throttle::Throttle::new(
                config.rebalance_bytes_per_sec,
                config.max_batch_bytes as u64,
            ),
            config,
        }
    }

    /// A node that is not a member yet: it learns the table from the live
    /// nodes it is told of ([`Ouroboros::set_live`]) and takes part only
    /// once a round adds it (see [`Ouroboros::request_member_change`]).
    pub fn joiner(config: OuroborosConfig) -> Self {
        Self::new(&[], config, false)
    }

    // ---- observation ---------------------------------------------------

    /// The settings.
    pub fn config(&self) -> &OuroborosConfig {
        &self.config
    }

    /// The member set (the cluster the table's majorities are counted
    /// over), sorted.
    pub fn members(&self) -> Vec<I> {
        self.table.members.ids().cloned().collect()
    }

    /// The member set with its version, slots and leaving members.
    pub fn member_set(&self) -> &Members<I> {
        &self.table.members
    }

    /// Member changes asked for here and not done yet.
    pub fn own_intents(&self) -> impl Iterator<Item = &MemberChange<I>> + '_ {
        self.own_intents.iter()
    }

    /// Ask for a member change: it is sent to every member until a
    /// committed table shows it done. Asking for one that is already done
    /// does nothing.
    pub fn request_member_change(&mut self, change: MemberChange<I>) {
        if let MemberChange::Leave(_) = &change {
            self.left = true;
        }
        if !members::satisfied(&change, &self.table.members) {
            self.own_intents.insert(change);
        }
    }

    /// The table in force here.
    pub fn table(&self) -> &Table<I> {
        &self.table
    }

    /// This node's copy of partition `p`'s log, from its low watermark
    /// (empty if it holds none). Old records are read back from the record
    /// store: an inspection aid, not a read path.
    pub fn log(&self, p: u32) -> Vec<Entry<I>> {
        self.parts
            .get(p as usize)
            .map(|x| x.log.range(x.log.low(), x.log.len()))
            .unwrap_or_default()
    }

    /// Partition `p`'s log length here (its high watermark: the next
    /// offset, trimmed prefix included).
    pub fn log_len(&self, p: u32) -> u64 {
        self.parts.get(p as usize).map_or(0, |x| x.log.len())
    }

    /// Partition `p`'s low watermark here: the first offset still held
    /// (earlier ones were deleted by retention).
    pub fn low_watermark(&self, p: u32) -> u64 {
        self.parts.get(p as usize).map_or(0, |x| x.log.low())
    }

    /// Record bytes of partition `p` held here (key and data plus a fixed
    /// per-record overhead).
    pub fn held_bytes(&self, p: u32) -> u64 {
        self.parts.get(p as usize).map_or(0, |x| x.log.held_bytes())
    }

    /// Partition `p`'s commit point as known here.
    pub fn committed(&self, p: u32) -> u64 {
        self.parts.get(p as usize).map(|x| x.commit).unwrap_or(0)
    }

    /// A one-line description of this node's state for partition `p`
    /// (for debugging and the inspector).
    pub fn debug_partition(&self, p: u32) -> alloc::string::String {
        let Some(part) = self.parts.get(p as usize) else {
            return alloc::string::String::from("no such partition");
        };
        let c = self.chain(p);
        alloc::format!(
            "table {:?} chain {:?} (prev {:?}) {:?} len {} commit {} sent {} ready {} left_ready {:?} sealed {:?} barrier {:?} stale {} recovered {} promised {:?} token_req {:?} round {} live {:?}",
            self.table.ballot,
            c.epoch,
            c.prev,
            (&c.members, &c.learners),
            part.log.len(),
            part.commit,
            part.sent,
            part.ready,
            part.left_ready,
            part.sealed,
            part.barrier,
            part.stale,
            self.recovered,
            self.promised,
            self.token_request,
            self.round.is_some(),
            self.live
        )
    }

    /// True once a restarted node re-learned the table from a majority.
    pub fn is_recovered(&self) -> bool {
        self.recovered
    }

    /// The members this node currently considers live.
    pub fn live(&self) -> impl Iterator<Item = &I> + '_ {
        self.live.iter()
    }

    /// Counters.
    pub fn stats(&self) -> &OuroborosStats {
        &self.stats
    }

    /// Client operations in flight.
    pub fn pending_ops(&self) -> usize {
        self.ops.len()
    }

    /// The Cartouche request this node made to reconfigure, if any.
    pub fn token_request(&self) -> Option<u64> {
        self.token_request
    }

    // ---- settings ------------------------------------------------------

    /// Tell Ouroboros the Unix time in milliseconds at `Time::ZERO` of the
    /// driver's clock (the native driver passes its start time; the
    /// simulator leaves the default, the Scarab epoch, so runs stay
    /// deterministic). Only the time part of new Scarab IDs depends on it.
    pub fn set_wall_clock(&mut self, unix_ms_at_zero: u64) {
        self.unix_at_zero_ms = unix_ms_at_zero;
    }

    /// Replace the set of live nodes (from Sundial): members, and nodes
    /// that may join.
    pub fn set_live(&mut self, live: impl IntoIterator<Item = I>) {
        self.live = live.into_iter().collect();
    }

    /// Remember the Cartouche request made on this node's behalf.
    pub fn set_token_request(&mut self, id: Option<u64>) {
        self.token_request = id;
    }

    /// The other members of the table in force.
    pub(super) fn others(&self, me: &I) -> Vec<I> {
        self.table
            .members
            .ids()
            .filter(|m| *m != me)
            .cloned()
            .collect()
    }

    /// The live members (members that Sundial shows live).
    pub(super) fn live_members(&self) -> BTreeSet<I> {
        self.live
            .iter()
            .filter(|m| self.table.members.contains(m))
            .cloned()
            .collect()
    }
}

impl<I: NodeId> Ring<I> for Ouroboros<I> {
    type Msg = OuroborosMsg<I>;
    type Event = OuroborosEvent<I>;
    const ID: RingId = RingId::OUROBOROS;
    const NAME: &'static str = "ouroboros";

    fn on_start(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        self.req_base = cx.rng.next_u64() & !0xFFFF_FFFF;
        if self.restored {
            self.on_restored(cx.me);
        }
        if !self.recovered {
            let others = self.others(cx.me);
            let to = self.query_targets(cx.me);
            cx.multicast(to.iter(), &OuroborosMsg::TableQuery);
            // A one-member log has nobody to ask.
            if others.is_empty() && self.table.members.contains(cx.me) {
                self.recovered = true;
            }
        }
        self.arm_tick(cx);
    }

    fn gates_sends(&self) -> bool {
        self.durable.is_some()
    }

    fn needs_flush(&self) -> bool {
        self.wal_dirty()
    }

    fn on_flush(&mut self, cx: &mut RingCtx<'_, I, Self>) -> bool {
        self.flush_wal(cx)
    }

    fn on_message(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, msg: Self::Msg) {
        if self.storage_failed() {
            return;
        }
        match msg {
            // The configuration round (config.rs; the tail's seal: chain.rs).
            OuroborosMsg::Prepare { ballot } => self.on_prepare(cx, from, ballot),
            OuroborosMsg::Promise {
                ballot,
                state,
                stale,
                reports,
            } => self.on_promise(cx, from, ballot, state, stale, reports),
            OuroborosMsg::Accept { table } => self.on_accept(cx, from, table),
            OuroborosMsg::Seal { ballot, p, epoch } => self.on_seal(cx, from, ballot, p, epoch),
            OuroborosMsg::Sealed { ballot, p, info } => self.on_sealed(cx, ballot, p, info),
            OuroborosMsg::Accepted { ballot } => self.on_accepted(cx, from, ballot),
            OuroborosMsg::Nack { ballot, promised } => self.on_nack(cx, ballot, promised),
            OuroborosMsg::Commit { table } => self.on_commit(cx, table),
            OuroborosMsg::TableQuery => self.on_table_query(cx, from),
            OuroborosMsg::TableReply { state } => self.on_table_reply(cx, from, state),
            // Chain replication (chain.rs).
            OuroborosMsg::Append {
                p,
                epoch,
                start,
                prev,
                entries,
                commit,
                len,
            } => {
                if self.epoch_ok(cx, &from, p, epoch) {
                    self.on_append(cx, from, p, start, prev, entries, commit, len);
                }
            }
            OuroborosMsg::Sync { p, epoch, len } => self.on_sync(cx, from, p, epoch, len),
            OuroborosMsg::Skip {
                p,
                epoch,
                low,
                runs,
            } => {
                if self.epoch_ok(cx, &from, p, epoch) {
                    self.on_skip(cx, from, p, epoch, low, runs);
                }
            }
            OuroborosMsg::Ack {
                p,
                epoch,
                upto,
                held,
            } => self.on_ack(cx, from, p, epoch, upto, held),
            // The client path (client.rs).
            OuroborosMsg::ClientAppend {
                p,
                req,
                key,
                data,
                txn,
                producer,
            } => self.on_client_append(cx, from, p, req, key, data, txn, producer),
            OuroborosMsg::AppendReply {
                req,
                result,
                decided,
            } => {
                let r = match result {
                    Ok((o, id)) => OpResult::Appended(o, id, decided),
                    Err(e) => OpResult::Failed(e),
                };
                self.on_reply(cx, from, req, r);
            }
            OuroborosMsg::ClientRead {
                p,
                req,
                from: f,
                max,
                id,
            } => self.on_client_read(cx, from, p, req, f, max, id),
            OuroborosMsg::ReadReply { req, result } => {
                let r = match result {
                    Ok((records, committed)) => OpResult::Read(records, committed),
                    Err(e) => OpResult::Failed(e),
                };
                self.on_reply(cx, from, req, r);
            }
            OuroborosMsg::Check {
                p,
                epoch,
                nonce,
                members_version,
            } => self.on_check(cx, from, p, epoch, nonce, members_version),
            OuroborosMsg::CheckReply { nonce, ok } => {
                if self.table.members.contains(&from) {
                    self.on_check_reply(cx, from, nonce, ok);
                }
            }
            OuroborosMsg::Intent { change } => self.on_intent(cx, from, change),
        }
    }

    fn on_timer(&mut self, cx: &mut RingCtx<'_, I, Self>, token: TimerToken) {
        if self.tick.fired(token) && !self.storage_failed() {
            self.on_tick(cx);
        }
    }
}
#[cfg(test)]
mod tests;
