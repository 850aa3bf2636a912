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
//! Each append carries the client's id and request number; every member
//! indexes the (client, request) pairs in its log, so a retried append
//! (after a timeout or a new head) returns the original offset instead of
//! writing twice.
//!
//! # Restarts
//! This module keeps logs in memory. A restarted node has lost its logs and
//! its acceptor state: it first re-learns the table and the Paxos state
//! from a majority of the others (never voting before), then marks every
//! chain that lists it as *stale* and asks for a reconfiguration, which
//! removes it from those chains and may add it back at the end with an
//! empty log that is then filled by state transfer.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ankh::{partition_of_hash, AnkhConfig, AnkhRing, Member};
use crate::cartouche::Fencing;
use crate::contract::{NodeId, Ring, RingCtx, RingId, Time, TimerSlot, TimerToken};
use crate::hash::hash_bytes;
use crate::scarab::{ScarabGenerator, ScarabId, EPOCH_UNIX_MS};

mod durable;
mod txn;
pub use durable::{read_all, FsyncPolicy, RecoverError, WalStore};
pub use txn::{TxnId, TxnMark, TxnRecord};

/// A chain epoch / table ballot: a Cartouche fencing number.
pub type Epoch = Fencing;

/// Ouroboros settings. Every member must use the same values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuroborosConfig {
    /// Number of partitions (the Ankh partitions).
    pub partitions: u32,
    /// Chain length.
    pub rf: usize,
    /// Housekeeping period: retransmissions, retries, timeouts.
    pub tick: Duration,
    /// How long a client operation may take before it fails with
    /// "outcome unknown".
    pub request_timeout: Duration,
    /// How long a configuration round may take before it is abandoned.
    pub round_timeout: Duration,
    /// Most records in one chain message.
    pub max_batch: usize,
    /// Most payload bytes in one chain message.
    pub max_batch_bytes: usize,
    /// Most records in one read answer.
    pub max_read: usize,
    /// A successor that, once caught up, leaves a record it was sent
    /// un-held for longer than this is *slow*: it is bypassed (removed from
    /// that chain by the next configuration round) like a failed member.
    pub slow_after: Duration,
    /// How long a bypassed member is kept out of the chains it was slow in
    /// (afterwards it may be added again, caught up by state transfer).
    pub slow_hold: Duration,
}

impl Default for OuroborosConfig {
    fn default() -> Self {
        OuroborosConfig {
            partitions: 64,
            rf: 3,
            tick: Duration::from_millis(10),
            request_timeout: Duration::from_secs(3),
            round_timeout: Duration::from_millis(500),
            max_batch: 256,
            max_batch_bytes: 256 * 1024,
            max_read: 1024,
            slow_after: Duration::from_secs(1),
            slow_hold: Duration::from_secs(10),
        }
    }
}

impl OuroborosConfig {
    /// Check ranges; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.partitions == 0 || self.partitions > 1024 {
            return Err((
                "partitions",
                "must be between 1 and 1024 (the partition is the Scarab ID's node field)",
            ));
        }
        if self.rf == 0 || self.rf > 16 {
            return Err(("rf", "must be between 1 and 16"));
        }
        if self.tick.is_zero() {
            return Err(("tick", "must be positive"));
        }
        if self.slow_after.is_zero() {
            return Err(("slow_after", "must be positive"));
        }
        if self.max_batch == 0 || self.max_read == 0 {
            return Err(("max_batch", "must be at least 1"));
        }
        if self.max_batch_bytes < 1024 || self.max_batch_bytes > 768 * 1024 {
            return Err(("max_batch_bytes", "must be between 1 KiB and 768 KiB"));
        }
        Ok(())
    }
}

/// One partition's chain: its epoch and members, head first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain<I> {
    /// Changes whenever the members change.
    pub epoch: Epoch,
    /// The epoch this chain was derived from. A member continues (keeps
    /// its log and caught-up state) only if it held exactly that epoch; one
    /// that skipped a configuration may have missed acknowledged records,
    /// so it restarts as a new member.
    pub prev: Epoch,
    /// A member that keeps its own log although it did not hold `prev`:
    /// set only when a chain is recovered from a former member (see
    /// `recovery_head`).
    pub keep: Option<I>,
    /// Head first, tail last.
    pub members: Vec<I>,
    /// Replacements catching up by state transfer from the tail before
    /// they join the chain (they take no part in acknowledgements or
    /// reads; a later round appends each one to `members` once it reports
    /// itself caught up).
    pub learners: Vec<I>,
}

/// Every partition's chain, as decided by the round with `ballot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table<I> {
    /// The round that decided this table.
    pub ballot: Epoch,
    /// Indexed by partition.
    pub chains: Vec<Chain<I>>,
}

/// One record of a partition log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<I> {
    /// Its Scarab ID (raw): assigned by the head with the partition number
    /// as the Scarab node field, strictly increasing along the log.
    pub id: u64,
    /// The epoch whose head assigned its offset.
    pub epoch: Epoch,
    /// The client node that appended it.
    pub origin: I,
    /// The client's request number (deduplication).
    pub req: u64,
    /// The routing key.
    pub key: Vec<u8>,
    /// The payload.
    pub data: Vec<u8>,
    /// Its part in a transaction, if any (see the `txn` module).
    pub txn: Option<TxnMark>,
}

/// Why an operation failed. Every variant says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogError<I> {
    /// This node is not the partition's head; `head` is who is, as far as it
    /// knows. The client retries there.
    NotHead {
        /// The head this node believes in.
        head: Option<I>,
    },
    /// This node is not the partition's tail (reads go to the tail).
    NotTail {
        /// The tail this node believes in.
        tail: Option<I>,
    },
    /// The chain changed under the operation (a newer epoch exists): refresh
    /// the table and retry.
    StaleEpoch,
    /// The partition has no chain that can serve right now (its member is
    /// catching up, lost its data on restart, or every replica is gone).
    NotEnoughReplicas,
    /// No answer before the deadline. For an append the outcome is unknown:
    /// it may or may not be in the log (a retry with the same request id is
    /// safe and returns the original offset if it landed).
    Timeout,
    /// The partition number is out of range.
    BadPartition(u32),
}

impl<I: core::fmt::Debug> core::fmt::Display for LogError<I> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LogError::NotHead { head } => write!(f, "not the head of this chain (head: {head:?})"),
            LogError::NotTail { tail } => write!(f, "not the tail of this chain (tail: {tail:?})"),
            LogError::StaleEpoch => write!(f, "stale epoch: the chain was reconfigured, retry"),
            LogError::NotEnoughReplicas => {
                write!(f, "not enough replicas: the chain cannot serve right now")
            }
            LogError::Timeout => write!(f, "timeout: outcome unknown (retrying is safe)"),
            LogError::BadPartition(p) => write!(f, "partition {p} does not exist"),
        }
    }
}

/// A record returned by a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRecord<I> {
    /// Its offset in the partition.
    pub offset: u64,
    /// Its Scarab ID (raw).
    pub id: u64,
    /// The client that appended it.
    pub origin: I,
    /// That client's request number.
    pub req: u64,
    /// The payload.
    pub data: Vec<u8>,
}

/// What a partition's acceptor reported in a promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaxosState<I> {
    /// Highest ballot promised.
    pub promised: Epoch,
    /// Newest table accepted (maybe not committed).
    pub accepted: Option<Table<I>>,
    /// Newest table committed.
    pub committed: Table<I>,
}

/// What a member tells a configurator about one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartReport {
    /// Partition.
    pub p: u32,
    /// The chain epoch (of its installed table) it is a caught-up member of.
    pub ready_in: Option<Epoch>,
    /// The epoch of the chain it was a caught-up member of when it left it
    /// (its log has not changed since).
    pub left_ready: Option<Epoch>,
    /// The epoch of its installed chain if it is that chain's tail.
    pub tail_of: Option<Epoch>,
    /// Log length.
    pub len: u64,
    /// The log's epoch runs: (epoch, first offset), in offset order.
    pub runs: Vec<(Epoch, u64)>,
    /// Its successor in the chain of this epoch is slow (see
    /// `OuroborosConfig::slow_after`).
    pub slow_successor: Option<Epoch>,
    /// It is the tail of this chain epoch and a round sealed it.
    pub sealed_in: Option<Epoch>,
}

/// A sealed tail's final word on its epoch: nothing above `commit` was or
/// will be acknowledged in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealInfo {
    /// Commit point, final for the epoch.
    pub commit: u64,
    /// Log length.
    pub len: u64,
    /// The log's epoch runs.
    pub runs: Vec<(Epoch, u64)>,
}

fn epoch_at(runs: &[(Epoch, u64)], len: u64, offset: u64) -> Option<Epoch> {
    if offset >= len {
        return None;
    }
    runs.iter()
        .rev()
        .find(|(_, start)| *start <= offset)
        .map(|(e, _)| *e)
}

fn epoch_runs<I>(log: &[Entry<I>]) -> Vec<(Epoch, u64)> {
    let mut runs: Vec<(Epoch, u64)> = Vec::new();
    for (o, e) in log.iter().enumerate() {
        if runs.last().is_none_or(|(ep, _)| *ep != e.epoch) {
            runs.push((e.epoch, o as u64));
        }
    }
    runs
}

/// Ouroboros wire messages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OuroborosMsg<I> {
    /// Configurator → all: promise `ballot`.
    Prepare {
        /// The round's ballot.
        ballot: Epoch,
    },
    /// Answer to `Prepare`.
    Promise {
        /// The round's ballot.
        ballot: Epoch,
        /// The acceptor's state.
        state: PaxosState<I>,
        /// Partitions whose chain lists the sender but whose log it lost.
        stale: Vec<u32>,
        /// The sender's state per partition (only partitions with
        /// something to say).
        reports: Vec<PartReport>,
    },
    /// Configurator → the tail of a chain being recovered: stop
    /// acknowledging in `epoch` and report.
    Seal {
        /// The round.
        ballot: Epoch,
        /// Partition.
        p: u32,
        /// The epoch to seal.
        epoch: Epoch,
    },
    /// Answer to `Seal`.
    Sealed {
        /// The round.
        ballot: Epoch,
        /// Partition.
        p: u32,
        /// The tail's final state in the sealed epoch.
        info: SealInfo,
    },
    /// Configurator → all: accept `table`.
    Accept {
        /// The proposed table.
        table: Table<I>,
    },
    /// Answer to `Accept`.
    Accepted {
        /// The round's ballot.
        ballot: Epoch,
    },
    /// Refusal: a higher ballot was promised.
    Nack {
        /// The refused ballot.
        ballot: Epoch,
        /// The promise that blocks it.
        promised: Epoch,
    },
    /// Configurator → all: `table` is chosen.
    Commit {
        /// The chosen table.
        table: Table<I>,
    },
    /// Ask for the sender's Paxos state (restart recovery, or a newer epoch
    /// was seen).
    TableQuery,
    /// Answer to `TableQuery`.
    TableReply {
        /// The answering node's state.
        state: PaxosState<I>,
    },
    /// Predecessor → successor: entries from `start`.
    Append {
        /// Partition.
        p: u32,
        /// Chain epoch.
        epoch: Epoch,
        /// Offset of the first entry.
        start: u64,
        /// Epoch of the entry at `start - 1` (log matching).
        prev: Option<Epoch>,
        /// The entries.
        entries: Vec<Entry<I>>,
        /// The sender's commit point.
        commit: u64,
        /// The length the receiver must reach to be caught up (the
        /// sender's length if it is caught up itself; `u64::MAX` if unknown).
        len: u64,
    },
    /// Successor → predecessor: "I hold `len` entries; send from there".
    Sync {
        /// Partition.
        p: u32,
        /// Chain epoch.
        epoch: Epoch,
        /// Entries held.
        len: u64,
    },
    /// Up the chain: everything below `upto` is on every member (from the
    /// tail), and the sender holds `held` entries (every member reports
    /// receipt, so a predecessor can tell a slow successor).
    Ack {
        /// Partition.
        p: u32,
        /// Chain epoch.
        epoch: Epoch,
        /// Committed length.
        upto: u64,
        /// Entries the sender holds.
        held: u64,
    },
    /// Client → head.
    ClientAppend {
        /// Partition.
        p: u32,
        /// Request number.
        req: u64,
        /// Routing key.
        key: Vec<u8>,
        /// Payload.
        data: Vec<u8>,
        /// A transaction's record, decision or outcome copy.
        txn: Option<TxnMark>,
    },
    /// Head → client.
    AppendReply {
        /// Request number.
        req: u64,
        /// The offset and the record's Scarab ID, or why not.
        result: Result<(u64, u64), LogError<I>>,
        /// For a transaction's decision: the outcome in the log (the first
        /// decision written for it).
        decided: Option<bool>,
    },
    /// Client → tail.
    ClientRead {
        /// Partition.
        p: u32,
        /// Request number.
        req: u64,
        /// First offset.
        from: u64,
        /// Most records.
        max: u32,
        /// Read the one record with this Scarab ID instead (`from` and
        /// `max` are ignored).
        id: Option<u64>,
    },
    /// Tail → client.
    ReadReply {
        /// Request number.
        req: u64,
        /// The records and the committed length, or why not.
        result: Result<(Vec<ReadRecord<I>>, u64), LogError<I>>,
    },
    /// Tail → all: "is `epoch` still the newest for `p`?"
    Check {
        /// Partition.
        p: u32,
        /// The tail's epoch.
        epoch: Epoch,
        /// Matches the answer.
        nonce: u64,
    },
    /// Answer to `Check`.
    CheckReply {
        /// The check.
        nonce: u64,
        /// True if no newer epoch for the partition was accepted here.
        ok: bool,
    },
}

/// What Ouroboros reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OuroborosEvent<I> {
    /// A client append completed: the record is on every chain member.
    Appended {
        /// Request number.
        req: u64,
        /// Partition.
        partition: u32,
        /// Offset.
        offset: u64,
        /// The record's Scarab ID (raw; `ScarabId::from_u64`).
        id: u64,
    },
    /// A client append failed.
    AppendFailed {
        /// Request number.
        req: u64,
        /// Partition.
        partition: u32,
        /// Why.
        error: LogError<I>,
    },
    /// A client read completed.
    ReadDone {
        /// Request number.
        req: u64,
        /// Partition.
        partition: u32,
        /// First offset asked for.
        from: u64,
        /// The records.
        records: Vec<ReadRecord<I>>,
        /// The committed length at the tail.
        committed: u64,
    },
    /// A client read failed.
    ReadFailed {
        /// Request number.
        req: u64,
        /// Partition.
        partition: u32,
        /// Why.
        error: LogError<I>,
    },
    /// Some chain lists a member that is not live, is short of members, or
    /// lists this node although it lost its log: the node wants the
    /// Cartouche token to reconfigure.
    WantsReconfig,
    /// A configuration round finished (`changed` chains got a new epoch).
    ReconfigDone {
        /// The ballot.
        ballot: Epoch,
        /// Chains changed.
        changed: u32,
    },
    /// A configuration round was abandoned (outvoted or timed out).
    ReconfigAborted {
        /// The ballot.
        ballot: Epoch,
    },
    /// A new table was installed here.
    TableInstalled {
        /// Its ballot.
        ballot: Epoch,
    },
    /// Transaction `req` needs the Cartouche token (the reactor asks for it
    /// and calls `Ouroboros::txn_granted`).
    WantsTxnToken {
        /// The transaction (as returned by `Ouroboros::transaction`).
        req: u64,
    },
    /// Transaction `req` ended.
    TxnDone {
        /// The transaction.
        req: u64,
        /// `Some(true)`: every record is in the log and visible;
        /// `Some(false)`: none ever will be; `None`: outcome unknown (it
        /// timed out after writing; it will be settled for readers either
        /// way, atomically).
        committed: Option<bool>,
        /// When committed: each record's (partition, offset, Scarab ID), in
        /// the order given.
        records: Vec<(u32, u64, u64)>,
        /// Why it did not commit, when known.
        error: Option<LogError<I>>,
    },
    /// The write-ahead log failed: this node stopped taking part (restart
    /// it once the disk is fixed; it recovers from what was synced).
    StorageFailed {
        /// The store's error.
        reason: alloc::string::String,
    },
}

#[derive(Clone, Debug)]
struct Part<I> {
    log: Vec<Entry<I>>,
    commit: u64,
    /// Next offset to push to the successor.
    sent: u64,
    /// Caught up with the chain as it was when the epoch began: the head
    /// always; another member once it holds the length its (caught-up)
    /// predecessor reported. A tail serves reads only when ready.
    ready: bool,
    /// The length this member must reach to be ready, once known.
    barrier: Option<u64>,
    /// Listed in the chain but the log was lost on restart.
    stale: bool,
    /// Not a member now; was a caught-up member of this chain epoch when it
    /// left, and the log has not changed since.
    left_ready: Option<Epoch>,
    /// As the tail, this epoch is sealed: acknowledge nothing more in it.
    sealed: Option<Epoch>,
    /// The ballot of the round that sealed it.
    sealed_by: Epoch,
    /// (client, request) → offset, over the whole log.
    dedupe: BTreeMap<(I, u64), u64>,
    /// Head: clients waiting for an offset to commit.
    waiters: BTreeMap<u64, Vec<(I, u64)>>,
    /// Last time the successor showed progress (or we pushed fresh data).
    last_progress: Time,
    /// Entries the successor reported holding (this epoch).
    succ_held: u64,
    /// The length the successor must hold to count as caught up (this
    /// node's length when the epoch began); slowness is judged after.
    succ_target: u64,
    /// Since the successor caught up: (log end, time) of local appends it
    /// does not hold yet, oldest first.
    unheld: VecDeque<(u64, Time)>,
    /// What the write-ahead log holds of this replica.
    wal: durable::PartWal,
    /// Transaction → (offset of its first outcome entry here, commit).
    txn_out: BTreeMap<TxnId, (u64, bool)>,
    /// Offsets of transaction members not yet known resolved below the
    /// commit point.
    open: BTreeMap<u64, TxnId>,
    /// As tail: the undecided transaction the stable point waits at, since.
    blocked: Option<(TxnId, Time)>,
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        p: u32,
        key: Vec<u8>,
        data: Vec<u8>,
        txn: Option<TxnMark>,
        /// The transaction this append is part of (its events go there).
        owner: Option<u64>,
    },
    Read {
        p: u32,
        from: u64,
        max: u32,
        id: Option<u64>,
    },
}

#[derive(Clone, Debug)]
struct ClientOp {
    op: Op,
    deadline: Time,
    retry_at: Time,
}

#[derive(Clone, Debug)]
struct PendingRead<I> {
    client: I,
    req: u64,
    p: u32,
    epoch: Epoch,
    from: u64,
    max: u32,
    id: Option<u64>,
    oks: BTreeSet<I>,
    deadline: Time,
}

/// A promise: the acceptor's state, its stale partitions and its reports.
type Promised<I> = (PaxosState<I>, Vec<u32>, Vec<PartReport>);

#[derive(Clone, Debug)]
enum Phase<I> {
    Preparing {
        promises: BTreeMap<I, Promised<I>>,
        settle_at: Option<Time>,
        /// Tails asked to seal (partition → answer), once started.
        seals: Option<BTreeMap<u32, Option<SealInfo>>>,
        seal_until: Time,
    },
    Accepting {
        table: Table<I>,
        accepted: BTreeSet<I>,
        changed: u32,
    },
}

#[derive(Clone, Debug)]
struct Round<I> {
    ballot: Epoch,
    phase: Phase<I>,
    deadline: Time,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuroborosStats {
    /// Records appended at this node as head.
    pub head_appends: u64,
    /// Duplicate client appends answered from the index.
    pub deduplicated: u64,
    /// Chain messages dropped for a wrong epoch.
    pub epoch_rejects: u64,
    /// Log truncations after a mismatch.
    pub truncations: u64,
    /// Tables installed.
    pub tables: u64,
    /// Times this node found a successor slow (see `slow_after`).
    #[serde(default)]
    pub slow_marked: u64,
    /// Tails unsealed because the round that sealed them changed nothing.
    #[serde(default)]
    pub unsealed: u64,
    /// Transactions this node coordinated that committed.
    #[serde(default)]
    pub txn_committed: u64,
    /// ... that aborted.
    #[serde(default)]
    pub txn_aborted: u64,
    /// Undecided transactions of others this node settled as a tail.
    #[serde(default)]
    pub txn_resolved: u64,
}

/// One node's Ouroboros state: its replicas of every partition it is in,
/// its view of the table, its acceptor state and its client operations.
#[derive(Clone, Debug)]
pub struct Ouroboros<I> {
    config: OuroborosConfig,
    universe: Vec<I>,
    majority: usize,
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
}

impl<I> Part<I> {
    fn new(ready: bool) -> Self {
        Part {
            log: Vec::new(),
            commit: 0,
            sent: 0,
            ready,
            barrier: None,
            stale: false,
            left_ready: None,
            sealed: None,
            sealed_by: Epoch::default(),
            dedupe: BTreeMap::new(),
            waiters: BTreeMap::new(),
            last_progress: Time::ZERO,
            succ_held: 0,
            succ_target: 0,
            unheld: VecDeque::new(),
            wal: durable::PartWal::default(),
            txn_out: BTreeMap::new(),
            open: BTreeMap::new(),
            blocked: None,
        }
    }
}

fn ankh_of<I: NodeId>(config: &OuroborosConfig, nodes: impl IntoIterator<Item = I>) -> AnkhRing<I> {
    let ankh = AnkhConfig {
        rf: config.rf,
        partitions: config.partitions,
        ..AnkhConfig::default()
    };
    let members = nodes.into_iter().map(|id| Member {
        id,
        weight: 100,
        salt: 0,
    });
    // The config was validated and ids are distinct (they come from a set),
    // so building cannot fail; an empty ring is the fallback.
    AnkhRing::from_members(ankh.clone(), members)
        .unwrap_or_else(|_| AnkhRing::new(AnkhConfig::default()).expect("default config is valid"))
}

/// The table every member starts from: each partition's Ankh chain over
/// `members`, epoch zero.
pub fn initial_table<I: NodeId>(config: &OuroborosConfig, members: &[I]) -> Table<I> {
    let set: BTreeSet<I> = members.iter().cloned().collect();
    let ring = ankh_of(config, set);
    Table {
        ballot: Epoch::default(),
        chains: (0..config.partitions)
            .map(|p| Chain {
                epoch: Epoch::default(),
                prev: Epoch::default(),
                keep: None,
                members: ring.chain_of(p).cloned().collect(),
                learners: Vec::new(),
            })
            .collect(),
    }
}

/// The Scarab ID of the record at offset `o` (0 if absent, which callers
/// never ask for).
fn part_id<I>(part: &Part<I>, o: u64) -> u64 {
    part.log.get(o as usize).map(|e| e.id).unwrap_or(0)
}

/// The ID for a new record of partition `p` at Unix time `unix_ms`:
/// strictly greater than the log's last ID `last` (a new head's clock may be
/// behind the old head's), with `p` as the node field.
pub fn next_scarab(last: Option<u64>, p: u32, unix_ms: u64) -> u64 {
    let node = (p & u32::from(crate::scarab::MAX_NODE)) as u16;
    let gen = match last {
        Some(l) => ScarabGenerator::resume_after(node, ScarabId::from_u64(l)),
        None => ScarabGenerator::new(node),
    };
    let Ok(mut gen) = gen else {
        return last.map(|l| l + 1).unwrap_or(0);
    };
    match gen.next(unix_ms.max(EPOCH_UNIX_MS)) {
        Ok(id) => id.as_u64(),
        // Only after 2094 (41 bits of milliseconds exhausted).
        Err(_) => last.map(|l| l.saturating_add(1)).unwrap_or(0),
    }
}

/// The partition a key belongs to (the Ankh partition of its hash).
pub fn partition_of_key(key: &[u8], partitions: u32) -> u32 {
    partition_of_hash(hash_bytes(key), partitions)
}

impl<I: NodeId> Ouroboros<I> {
    /// A member of a cluster of `members` (the same list everywhere).
    /// `restarted` is true when this node ran before and lost its state.
    pub fn new(members: &[I], config: OuroborosConfig, restarted: bool) -> Self {
        let universe: Vec<I> = members
            .iter()
            .cloned()
            .collect::<BTreeSet<I>>()
            .into_iter()
            .collect();
        let table = initial_table(&config, &universe);
        // At first boot every log is empty, so every tail is caught up.
        let parts = (0..config.partitions)
            .map(|_| Part::new(!restarted))
            .collect();
        Ouroboros {
            majority: universe.len() / 2 + 1,
            live: universe.iter().cloned().collect(),
            universe,
            table,
            promised: Epoch::default(),
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
            config,
        }
    }

    // ---- observation ---------------------------------------------------

    /// The settings.
    pub fn config(&self) -> &OuroborosConfig {
        &self.config
    }

    /// The member set (the cluster the table's majorities are counted
    /// over), sorted.
    pub fn members(&self) -> &[I] {
        &self.universe
    }

    /// The table in force here.
    pub fn table(&self) -> &Table<I> {
        &self.table
    }

    /// This node's copy of partition `p`'s log (empty if it holds none).
    pub fn log(&self, p: u32) -> &[Entry<I>] {
        self.parts
            .get(p as usize)
            .map(|x| x.log.as_slice())
            .unwrap_or(&[])
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
        let live_n = self.live.len();
        self.table.chains.iter().enumerate().any(|(p, c)| {
            let listed = c.members.len() + c.learners.len();
            c.members.iter().chain(c.learners.iter()).any(|m| !self.live.contains(m))
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
                    && self.parts[p].commit == self.parts[p].log.len() as u64)
        })
    }

    // ---- commands ------------------------------------------------------

    /// Append `data` under `key`; returns the request number that the
    /// `Appended`/`AppendFailed` event will carry.
    pub fn append(&mut self, cx: &mut RingCtx<'_, I, Self>, key: &[u8], data: Vec<u8>) -> u64 {
        let p = partition_of_key(key, self.config.partitions);
        self.start_op(
            cx,
            Op::Append {
                p,
                key: key.to_vec(),
                data,
                txn: None,
                owner: None,
            },
        )
    }

    /// Read up to `max` committed records of partition `p` from offset
    /// `from` (at the tail); `ReadDone`/`ReadFailed` follows.
    pub fn read_range(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        p: u32,
        from: u64,
        max: u32,
    ) -> u64 {
        self.start_op(
            cx,
            Op::Read {
                p,
                from,
                max,
                id: None,
            },
        )
    }

    /// Read the record with Scarab ID `id` (its partition is the ID's node
    /// field); `ReadDone` with that one record, or none if no committed
    /// record has that ID, or `ReadFailed`.
    pub fn read_id(&mut self, cx: &mut RingCtx<'_, I, Self>, id: ScarabId) -> u64 {
        self.start_op(
            cx,
            Op::Read {
                p: u32::from(id.node()),
                from: 0,
                max: 1,
                id: Some(id.as_u64()),
            },
        )
    }

    /// Tell Ouroboros the Unix time in milliseconds at `Time::ZERO` of the
    /// driver's clock (the native driver passes its start time; the
    /// simulator leaves the default, the Scarab epoch, so runs stay
    /// deterministic). Only the time part of new Scarab IDs depends on it.
    pub fn set_wall_clock(&mut self, unix_ms_at_zero: u64) {
        self.unix_at_zero_ms = unix_ms_at_zero;
    }

    /// Replace the set of live members (from Sundial).
    pub fn set_live(&mut self, live: impl IntoIterator<Item = I>) {
        let universe = &self.universe;
        self.live = live.into_iter().filter(|m| universe.contains(m)).collect();
    }

    /// Remember the Cartouche request made on this node's behalf.
    pub fn set_token_request(&mut self, id: Option<u64>) {
        self.token_request = id;
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
        self.round = Some(Round {
            ballot,
            phase: Phase::Preparing {
                promises,
                settle_at: None,
                seals: None,
                seal_until: Time::ZERO,
            },
            deadline: cx.now + self.config.round_timeout,
        });
        let msg = OuroborosMsg::Prepare { ballot };
        let others: Vec<I> = self.others(cx.me);
        cx.multicast(others.iter(), &msg);
        self.progress_round(cx);
    }

    // ---- helpers -------------------------------------------------------

    fn others(&self, me: &I) -> Vec<I> {
        self.universe.iter().filter(|m| *m != me).cloned().collect()
    }

    fn paxos_state(&self) -> PaxosState<I> {
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
                    len: part.log.len() as u64,
                    runs: epoch_runs(&part.log),
                    slow_successor,
                    sealed_in,
                })
            })
            .collect()
    }

    /// Local entries were appended at `now`: track them for the slowness
    /// check once the successor has caught up.
    fn note_appended(&mut self, p: u32, now: Time) {
        let part = &mut self.parts[p as usize];
        if part.succ_held < part.succ_target {
            return;
        }
        let end = part.log.len() as u64;
        match part.unheld.back_mut() {
            Some((e, t)) if *t == now => *e = end,
            _ => part.unheld.push_back((end, now)),
        }
    }

    /// The successor reported holding `held` entries.
    fn successor_holds(&mut self, p: u32, held: u64, now: Time) {
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
        let len = part.log.len() as u64;
        if !caught_before && part.succ_held >= part.succ_target && part.succ_held < len {
            // Just caught up: what it still lacks is judged from now on.
            part.unheld.push_back((len, now));
        }
    }

    /// Partitions whose successor (of this node) has left a record un-held
    /// for longer than `slow_after`: mark them (until `slow_hold`).
    fn check_slow(&mut self, me: &I, now: Time) {
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

    fn chain(&self, p: u32) -> &Chain<I> {
        &self.table.chains[p as usize]
    }

    /// Position in the replication order: members, then learners (the
    /// tail feeds its learner).
    fn position(&self, p: u32, me: &I) -> Option<usize> {
        let c = self.chain(p);
        c.members
            .iter()
            .chain(c.learners.iter())
            .position(|m| m == me)
    }

    fn nth_in_order(c: &Chain<I>, i: usize) -> Option<I> {
        c.members.iter().chain(c.learners.iter()).nth(i).cloned()
    }

    fn successor(&self, p: u32, me: &I) -> Option<I> {
        let i = self.position(p, me)?;
        Self::nth_in_order(self.chain(p), i + 1)
    }

    fn predecessor(&self, p: u32, me: &I) -> Option<I> {
        let i = self.position(p, me)?;
        if i == 0 {
            None
        } else {
            Self::nth_in_order(self.chain(p), i - 1)
        }
    }

    fn is_head(&self, p: u32, me: &I) -> bool {
        self.position(p, me) == Some(0)
    }

    fn is_tail(&self, p: u32, me: &I) -> bool {
        let c = self.chain(p);
        c.members.last() == Some(me)
    }

    fn arm_tick(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let at = cx.now + self.config.tick;
        self.tick.arm(cx, at);
    }

    fn start_op(&mut self, cx: &mut RingCtx<'_, I, Self>, op: Op) -> u64 {
        self.next_req += 1;
        let req = self.req_base.wrapping_add(self.next_req);
        let p = match &op {
            Op::Append { p, .. } | Op::Read { p, .. } => *p,
        };
        let failed = self.storage_failed();
        if p >= self.config.partitions || failed {
            let error = if failed {
                LogError::NotEnoughReplicas
            } else {
                LogError::BadPartition(p)
            };
            match op {
                Op::Append { .. } => cx.emit(OuroborosEvent::AppendFailed {
                    req,
                    partition: p,
                    error,
                }),
                Op::Read { .. } => cx.emit(OuroborosEvent::ReadFailed {
                    req,
                    partition: p,
                    error,
                }),
            }
            return req;
        }
        self.ops.insert(
            req,
            ClientOp {
                op,
                deadline: cx.now + self.config.request_timeout,
                retry_at: Time::ZERO,
            },
        );
        self.try_op(cx, req);
        req
    }

    /// (Re)send client operation `req` to the head or tail of the table.
    fn try_op(&mut self, cx: &mut RingCtx<'_, I, Self>, req: u64) {
        let Some(op) = self.ops.get_mut(&req) else {
            return;
        };
        let retry = op.retry_at != Time::ZERO;
        // Retry after a few ticks unless an answer comes first.
        op.retry_at = cx.now + self.config.tick * 10;
        let op = op.op.clone();
        if retry && !self.universe.is_empty() {
            // No answer: the table may be stale; ask someone at random.
            let i = (cx.rng.next_u64() % self.universe.len() as u64) as usize;
            let who = self.universe[i].clone();
            self.query(cx, who);
        }
        match op {
            Op::Append {
                p, key, data, txn, ..
            } => {
                let Some(head) = self.table.chains[p as usize].members.first().cloned() else {
                    return;
                };
                let msg = OuroborosMsg::ClientAppend {
                    p,
                    req,
                    key,
                    data,
                    txn,
                };
                if &head == cx.me && self.durable.is_none() {
                    let me = cx.me.clone();
                    self.on_message(cx, me, msg);
                } else {
                    cx.send(head, msg);
                }
            }
            Op::Read { p, from, max, id } => {
                let Some(tail) = self.table.chains[p as usize].members.last().cloned() else {
                    return;
                };
                let msg = OuroborosMsg::ClientRead {
                    p,
                    req,
                    from,
                    max,
                    id,
                };
                if &tail == cx.me && self.durable.is_none() {
                    let me = cx.me.clone();
                    self.on_message(cx, me, msg);
                } else {
                    cx.send(tail, msg);
                }
            }
        }
    }

    /// Answer a client; a local one directly, unless the answer must wait
    /// for a flush (with a store, it goes through the node like any send).
    fn reply(&mut self, cx: &mut RingCtx<'_, I, Self>, to: I, msg: OuroborosMsg<I>) {
        if &to == cx.me && self.durable.is_none() {
            let me = cx.me.clone();
            self.on_message(cx, me, msg);
        } else {
            cx.send(to, msg);
        }
    }

    fn query(&mut self, cx: &mut RingCtx<'_, I, Self>, who: I) {
        let due = self
            .queried
            .get(&who)
            .is_none_or(|t| cx.now.saturating_since(*t) >= self.config.tick * 5);
        if due && &who != cx.me {
            self.queried.insert(who.clone(), cx.now);
            cx.send(who, OuroborosMsg::TableQuery);
        }
    }

    /// Compare a chain message's epoch with ours. `true` to process it.
    fn epoch_ok(&mut self, cx: &mut RingCtx<'_, I, Self>, from: &I, p: u32, epoch: Epoch) -> bool {
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

    fn install(&mut self, cx: &mut RingCtx<'_, I, Self>, table: Table<I>) {
        if table.ballot <= self.table.ballot || table.chains.len() != self.table.chains.len() {
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
        for p in 0..self.config.partitions {
            if old.chains[p as usize].epoch != self.chain(p).epoch {
                let old_chain = &old.chains[p as usize];
                let in_old =
                    old_chain.members.contains(cx.me) || old_chain.learners.contains(cx.me);
                let kept = self.chain(p).keep.as_ref() == Some(cx.me);
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
        let kept = self.chain(p).keep.as_ref() == Some(&me);
        let part = &mut self.parts[p as usize];
        part.sealed = None;
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
        if member && !head && (part.log.len() as u64) > part.commit {
            // Entries above the commit point may have diverged (a deposed
            // head's leftovers); the predecessor re-sends what is valid.
            // This keeps the prefix property: a successor never holds what
            // its predecessor lacks, unless the predecessor lost data.
            part.log.truncate(part.commit as usize);
            part.wal.truncated(part.commit);
            Self::rebuild_dedupe(part);
        }
        part.sent = part.commit.min(part.log.len() as u64);
        part.succ_held = 0;
        part.succ_target = part.log.len() as u64;
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
        if single {
            let part = &mut self.parts[p as usize];
            part.commit = part.log.len() as u64;
        }
        if let Some(pred) = self.predecessor(p, &me) {
            let len = self.parts[p as usize].log.len() as u64;
            let epoch = self.chain(p).epoch;
            cx.send(pred, OuroborosMsg::Sync { p, epoch, len });
        }
    }

    /// Send what the successor has not got yet.
    fn push(&mut self, cx: &mut RingCtx<'_, I, Self>, p: u32) {
        let me = cx.me.clone();
        let Some(succ) = self.successor(p, &me) else {
            return;
        };
        let epoch = self.chain(p).epoch;
        let max_batch = self.config.max_batch;
        let max_bytes = self.config.max_batch_bytes;
        let part = &mut self.parts[p as usize];
        let len = part.log.len() as u64;
        let report = Self::report(part);
        // Bound what is in flight beyond the commit point.
        let window = (max_batch as u64) * 8;
        while part.sent < len && part.sent < part.commit + window {
            let start = part.sent;
            let mut end = start;
            let mut bytes = 0;
            while end < len && ((end - start) as usize) < max_batch {
                let e = &part.log[end as usize];
                let b = e.data.len() + e.key.len() + 48;
                if end > start && bytes + b > max_bytes {
                    break;
                }
                bytes += b;
                end += 1;
            }
            let prev = (start > 0).then(|| part.log[start as usize - 1].epoch);
            let entries = part.log[start as usize..end as usize].to_vec();
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
    }

    /// What a member tells its successor it must reach to be caught up:
    /// its own length once it is caught up itself, else its own barrier
    /// (`u64::MAX` while unknown).
    fn report(part: &Part<I>) -> u64 {
        if part.ready {
            part.log.len() as u64
        } else {
            part.barrier.unwrap_or(u64::MAX)
        }
    }

    fn advance_commit(&mut self, cx: &mut RingCtx<'_, I, Self>, p: u32, upto: u64) {
        let me = cx.me.clone();
        let epoch = self.chain(p).epoch;
        let part = &mut self.parts[p as usize];
        if part.sealed == Some(epoch) {
            // Sealed for a recovery: the commit point is final.
            return;
        }
        let upto = upto.min(part.log.len() as u64);
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
            let held = self.parts[p as usize].log.len() as u64;
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
    fn seal(&mut self, me: &I, p: u32, epoch: Epoch, ballot: Epoch) -> Option<SealInfo> {
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
            len: part.log.len() as u64,
            runs: epoch_runs(&part.log),
        })
    }

    fn on_sealed(&mut self, cx: &mut RingCtx<'_, I, Self>, ballot: Epoch, p: u32, info: SealInfo) {
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

    /// Rebuild the indexes of `part`'s log (deduplication, transaction
    /// outcomes and members).
    fn rebuild_dedupe(part: &mut Part<I>) {
        part.dedupe.clear();
        part.txn_out.clear();
        part.open.clear();
        for o in 0..part.log.len() as u64 {
            Self::index_entry(part, o);
        }
    }

    /// Whether the head may answer the append at `o`: it is on every
    /// member, and it is not behind a member of an undecided transaction
    /// (an acknowledged append is always visible to a read that follows).
    /// Transaction members and outcome entries are answered once on every
    /// member: the coordinator needs them to decide.
    fn answerable(part: &mut Part<I>, o: u64) -> bool {
        if o >= part.commit {
            return false;
        }
        match part.log[o as usize].txn {
            Some(TxnMark::Member { .. }) | Some(TxnMark::Decide { .. }) => true,
            _ => o < Self::stable_point(part, part.commit),
        }
    }

    /// The answer to an acknowledged append at `o`.
    fn append_ok(part: &Part<I>, req: u64, o: u64) -> OuroborosMsg<I> {
        let decided = match part.log[o as usize].txn {
            Some(TxnMark::Decide { txn, .. }) => part.txn_out.get(&txn).map(|(_, c)| *c),
            _ => None,
        };
        OuroborosMsg::AppendReply {
            req,
            result: Ok((o, part_id(part, o))),
            decided,
        }
    }

    // ---- message handlers ------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn on_client_append(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        req: u64,
        key: Vec<u8>,
        data: Vec<u8>,
        txn: Option<TxnMark>,
    ) {
        let me = cx.me.clone();
        if p >= self.config.partitions {
            let msg = OuroborosMsg::AppendReply {
                req,
                result: Err(LogError::BadPartition(p)),
                decided: None,
            };
            return self.reply(cx, from, msg);
        }
        if !self.is_head(p, &me) {
            let head = self.chain(p).members.first().cloned();
            let msg = OuroborosMsg::AppendReply {
                req,
                result: Err(LogError::NotHead { head }),
                decided: None,
            };
            return self.reply(cx, from, msg);
        }
        if !self.recovered || self.parts[p as usize].stale {
            let msg = OuroborosMsg::AppendReply {
                req,
                result: Err(LogError::NotEnoughReplicas),
                decided: None,
            };
            return self.reply(cx, from, msg);
        }
        let epoch = self.chain(p).epoch;
        let single = self.chain(p).members.len() == 1;
        let part = &mut self.parts[p as usize];
        // A transaction's decision: the first one written counts, a later
        // one is answered like a duplicate of it.
        let first_decision = match &txn {
            Some(TxnMark::Decide { txn: t, .. }) => part
                .txn_out
                .get(t)
                .map(|(o, _)| *o)
                .filter(|o| matches!(part.log[*o as usize].txn, Some(TxnMark::Decide { .. }))),
            _ => None,
        };
        if let Some(o) = part
            .dedupe
            .get(&(from.clone(), req))
            .copied()
            .or(first_decision)
        {
            self.stats.deduplicated += 1;
            if Self::answerable(part, o) {
                let msg = Self::append_ok(part, req, o);
                return self.reply(cx, from, msg);
            }
            let ws = part.waiters.entry(o).or_default();
            if !ws.contains(&(from.clone(), req)) {
                ws.push((from, req));
            }
            return;
        }
        let o = part.log.len() as u64;
        let id = next_scarab(
            part.log.last().map(|e| e.id),
            p,
            self.unix_at_zero_ms.saturating_add(cx.now.as_millis()),
        );
        part.log.push(Entry {
            id,
            epoch,
            origin: from.clone(),
            req,
            key,
            data,
            txn,
        });
        Self::index_entry(part, o);
        part.waiters.entry(o).or_default().push((from, req));
        self.stats.head_appends += 1;
        self.note_appended(p, cx.now);
        if single {
            self.advance_commit(cx, p, o + 1);
            return;
        }
        // Nagle-style batching: push now if nothing is in flight or a full
        // batch is waiting; otherwise the next ack (or tick) pushes.
        let part = &self.parts[p as usize];
        let len = part.log.len() as u64;
        if part.sent <= part.commit || len - part.sent >= self.config.max_batch as u64 {
            if part.sent <= part.commit {
                self.parts[p as usize].last_progress = cx.now;
            }
            self.push(cx, p);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
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
        let len = part.log.len() as u64;
        if start > len {
            cx.send(from, OuroborosMsg::Sync { p, epoch, len });
            return;
        }
        if start > 0 && Some(part.log[start as usize - 1].epoch) != prev {
            // Diverged before `start`. Uncommitted entries may go; committed
            // ones never do: then the predecessor is the one that lost data
            // (it learns so from our length) and must be replaced.
            if start - 1 < part.commit {
                cx.send(from, OuroborosMsg::Sync { p, epoch, len });
                return;
            }
            let keep = part.commit;
            part.log.truncate(keep as usize);
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
            let idx = start as usize + k;
            if idx < part.log.len() {
                if part.log[idx].epoch == e.epoch {
                    continue;
                }
                if (idx as u64) < part.commit {
                    // Same rule as above: never rewrite a committed entry.
                    let len = part.log.len() as u64;
                    cx.send(from, OuroborosMsg::Sync { p, epoch, len });
                    return;
                }
                part.log.truncate(idx);
                part.wal.truncated(idx as u64);
                Self::rebuild_dedupe(part);
                self.stats.truncations += 1;
            }
            part.log.push(e);
            Self::index_entry(part, idx as u64);
            changed = true;
        }
        // The prefix known to equal the predecessor's.
        let matched = start + n_entries;
        let len = part.log.len() as u64;
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

    #[allow(clippy::too_many_arguments)]
    fn on_client_read(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        req: u64,
        start: u64,
        max: u32,
        id: Option<u64>,
    ) {
        let me = cx.me.clone();
        let err = if p >= self.config.partitions {
            Some(LogError::BadPartition(p))
        } else if !self.is_tail(p, &me) {
            Some(LogError::NotTail {
                tail: self.chain(p).members.last().cloned(),
            })
        } else if !self.recovered || self.parts[p as usize].stale || !self.parts[p as usize].ready {
            Some(LogError::NotEnoughReplicas)
        } else {
            None
        };
        if let Some(e) = err {
            let msg = OuroborosMsg::ReadReply {
                req,
                result: Err(e),
            };
            return self.reply(cx, from, msg);
        }
        self.next_nonce += 1;
        let nonce = self.next_nonce;
        let epoch = self.chain(p).epoch;
        self.reads.insert(
            nonce,
            PendingRead {
                client: from,
                req,
                p,
                epoch,
                from: start,
                max,
                id,
                oks: BTreeSet::new(),
                deadline: cx.now + self.config.round_timeout,
            },
        );
        // Our own answer first, then the others'.
        let ok = self.check_ok(p, epoch);
        self.on_check_reply(cx, me.clone(), nonce, ok);
        let others = self.others(&me);
        cx.multicast(others.iter(), &OuroborosMsg::Check { p, epoch, nonce });
    }

    fn check_ok(&self, p: u32, epoch: Epoch) -> bool {
        if !self.recovered {
            return false;
        }
        let newest = match &self.accepted {
            Some(a) if a.ballot > self.table.ballot => a.chains[p as usize].epoch,
            _ => self.chain(p).epoch,
        };
        newest <= epoch && self.chain(p).epoch <= epoch
    }

    fn on_check_reply(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, nonce: u64, ok: bool) {
        let Some(r) = self.reads.get_mut(&nonce) else {
            return;
        };
        if !ok {
            let r = self.reads.remove(&nonce).expect("present");
            let msg = OuroborosMsg::ReadReply {
                req: r.req,
                result: Err(LogError::StaleEpoch),
            };
            return self.reply(cx, r.client, msg);
        }
        r.oks.insert(from);
        if r.oks.len() < self.majority {
            return;
        }
        let r = self.reads.remove(&nonce).expect("present");
        // Still the tail of the same epoch?
        let me = cx.me.clone();
        if self.chain(r.p).epoch != r.epoch || !self.is_tail(r.p, &me) {
            let msg = OuroborosMsg::ReadReply {
                req: r.req,
                result: Err(LogError::StaleEpoch),
            };
            return self.reply(cx, r.client, msg);
        }
        let part = &mut self.parts[r.p as usize];
        // Only what is on every member (at the tail that is its verified
        // prefix), up to the first member of a transaction whose outcome is
        // not here yet; transaction bookkeeping entries and aborted members
        // are skipped (offsets keep their gaps).
        let committed = part.commit.min(part.log.len() as u64);
        let len = Self::stable_point(part, committed);
        let part = &self.parts[r.p as usize];
        let (start, n) = match r.id {
            // IDs increase along the log: binary search the stable part.
            Some(id) => match part.log[..len as usize].binary_search_by_key(&id, |e| e.id) {
                Ok(o) => (o as u64, 1),
                Err(_) => (len, 0),
            },
            None => (r.from, (r.max as usize).min(self.config.max_read) as u64),
        };
        let mut records: Vec<ReadRecord<I>> = Vec::new();
        let mut o = start.min(len);
        while o < len && (records.len() as u64) < n {
            if Self::visible(part, o) {
                let e = &part.log[o as usize];
                records.push(ReadRecord {
                    offset: o,
                    id: e.id,
                    origin: e.origin.clone(),
                    req: e.req,
                    data: e.data.clone(),
                });
            }
            if r.id.is_some() {
                break;
            }
            o += 1;
        }
        let msg = OuroborosMsg::ReadReply {
            req: r.req,
            result: Ok((records, len)),
        };
        self.reply(cx, r.client, msg);
    }

    fn on_reply(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, req: u64, result: OpResult<I>) {
        let Some(op) = self.ops.get(&req) else {
            return;
        };
        let p = match &op.op {
            Op::Append { p, .. } | Op::Read { p, .. } => *p,
        };
        let owner = match &op.op {
            Op::Append { owner, .. } => *owner,
            Op::Read { .. } => None,
        };
        if let Some(owner) = owner {
            match result {
                OpResult::Appended(o, id, decided) => {
                    self.ops.remove(&req);
                    self.txn_op_done(cx, owner, req, Ok((o, id, decided)));
                }
                OpResult::Failed(LogError::BadPartition(x)) => {
                    self.ops.remove(&req);
                    self.txn_op_done(cx, owner, req, Err(LogError::BadPartition(x)));
                }
                OpResult::Failed(_) => {
                    self.query(cx, from);
                    if let Some(op) = self.ops.get_mut(&req) {
                        op.retry_at = cx.now + self.config.tick * 2;
                    }
                }
                OpResult::Read(..) => {}
            }
            return;
        }
        match result {
            OpResult::Appended(o, id, _) => {
                self.ops.remove(&req);
                cx.emit(OuroborosEvent::Appended {
                    req,
                    partition: p,
                    offset: o,
                    id,
                });
            }
            OpResult::Read(records, committed) => {
                let from_off = match &op.op {
                    Op::Read { from, .. } => *from,
                    Op::Append { .. } => return,
                };
                self.ops.remove(&req);
                cx.emit(OuroborosEvent::ReadDone {
                    req,
                    partition: p,
                    from: from_off,
                    records,
                    committed,
                });
            }
            OpResult::Failed(LogError::BadPartition(x)) => {
                let is_append = matches!(op.op, Op::Append { .. });
                self.ops.remove(&req);
                let error = LogError::BadPartition(x);
                if is_append {
                    cx.emit(OuroborosEvent::AppendFailed {
                        req,
                        partition: p,
                        error,
                    });
                } else {
                    cx.emit(OuroborosEvent::ReadFailed {
                        req,
                        partition: p,
                        error,
                    });
                }
            }
            OpResult::Failed(_) => {
                // Retry soon, with a fresher table if the replier has one.
                self.query(cx, from);
                if let Some(op) = self.ops.get_mut(&req) {
                    op.retry_at = cx.now + self.config.tick * 2;
                }
            }
        }
    }

    // ---- configuration --------------------------------------------------

    fn on_prepare(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, ballot: Epoch) {
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

    fn on_accept(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, table: Table<I>) {
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

    fn abort_round(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        if let Some(r) = self.round.take() {
            cx.emit(OuroborosEvent::ReconfigAborted { ballot: r.ballot });
        }
    }

    /// Move the configurator's round forward if it can.
    fn progress_round(&mut self, cx: &mut RingCtx<'_, I, Self>) {
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
                if promises.len() < self.majority {
                    return;
                }
                // With a majority, wait briefly for every live member so
                // that stale reports from restarted nodes are seen.
                let all_live = self.live.iter().all(|m| promises.contains_key(m));
                let at = *settle_at.get_or_insert(cx.now + self.config.tick * 3);
                if !all_live && cx.now < at {
                    return;
                }
                if seals.is_none() {
                    let want = Self::to_seal(&self.live, promises);
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
                let (table, changed) = self.derive_table(ballot, &promises, &sealed);
                // A round that sealed tails commits a table even when it
                // changes nothing, so those tails learn they may go on.
                let still_sealed = Self::newest_base(&promises).is_some_and(|b| {
                    promises.values().any(|(_, _, r)| {
                        r.iter().any(|x| {
                            x.sealed_in.is_some()
                                && b.chains.get(x.p as usize).map(|c| c.epoch) == x.sealed_in
                        })
                    })
                });
                let table = match table {
                    None if !sealed.is_empty() || still_sealed => {
                        Self::newest_base(&promises).map(|b| Table {
                            ballot,
                            chains: b.chains.clone(),
                        })
                    }
                    t => t,
                };
                let newest_committed = promises
                    .values()
                    .map(|(s, _, _)| s.committed.ballot)
                    .max()
                    .unwrap_or_default();
                let Some(table) = table else {
                    // Nothing to change and nothing half-done: finished.
                    if newest_committed > self.table.ballot {
                        if let Some((s, _, _)) = promises
                            .values()
                            .find(|(s, _, _)| s.committed.ballot == newest_committed)
                        {
                            let t = s.committed.clone();
                            self.install(cx, t);
                        }
                    }
                    self.round = None;
                    cx.emit(OuroborosEvent::ReconfigDone { ballot, changed: 0 });
                    return;
                };
                self.promised = self.promised.max(ballot);
                self.accepted = Some(table.clone());
                let mut accepted = BTreeSet::new();
                accepted.insert(cx.me.clone());
                if let Some(r) = &mut self.round {
                    r.phase = Phase::Accepting {
                        table: table.clone(),
                        accepted,
                        changed,
                    };
                }
                let others = self.others(cx.me);
                cx.multicast(others.iter(), &OuroborosMsg::Accept { table });
                self.progress_round(cx);
            }
            Phase::Accepting {
                table,
                accepted,
                changed,
            } => {
                if accepted.len() < self.majority {
                    return;
                }
                let table = table.clone();
                let changed = *changed;
                self.round = None;
                let others = self.others(cx.me);
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

    /// The next table from the newest state a majority reported, or `None`
    /// if the newest committed table needs no change.
    fn derive_table(
        &self,
        ballot: Epoch,
        promises: &BTreeMap<I, Promised<I>>,
        sealed: &BTreeMap<u32, SealInfo>,
    ) -> (Option<Table<I>>, u32) {
        let mut pending = false;
        let mut newest_committed = Epoch::default();
        for (s, _, _) in promises.values() {
            newest_committed = newest_committed.max(s.committed.ballot);
        }
        let Some(base) = Self::newest_base(promises) else {
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
        let alive = |m: &I| self.live.contains(m) || promises.contains_key(m);
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
        let ring = ankh_of(&self.config, self.live.iter().cloned());
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
                        .and_then(|si| Self::recovery_head(c, p32, si, &reports, &stale))
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
                if head_ok
                    && next.len() > self.config.rf
                    && next.iter().all(|m| ready(m, p32, c.epoch))
                {
                    next.truncate(self.config.rf);
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
                    .chain(self.live.iter().cloned())
                    .collect();
                for d in candidates {
                    if next.len() + learners.len() >= self.config.rf {
                        break;
                    }
                    if next.contains(&d)
                        || learners.contains(&d)
                        || slow.contains(&(d.clone(), p32))
                    {
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
    fn newest_base(promises: &BTreeMap<I, Promised<I>>) -> Option<&Table<I>> {
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
    fn to_seal(live: &BTreeSet<I>, promises: &BTreeMap<I, Promised<I>>) -> Vec<(u32, I, Epoch)> {
        let Some(base) = Self::newest_base(promises) else {
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
            let tail_answers = promises.get(tail).is_some_and(|(_, _, r)| {
                r.iter().any(|x| x.p == p32 && x.tail_of == Some(c.epoch))
            });
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
    fn recovery_head(
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

    fn on_tick(&mut self, cx: &mut RingCtx<'_, I, Self>) {
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
        // Retransmit to successors that made no progress.
        let retransmit = self.config.tick * 5;
        for p in 0..self.config.partitions {
            let part = &self.parts[p as usize];
            if part.stale || part.log.is_empty() {
                continue;
            }
            let lagging = part.commit < part.log.len() as u64;
            if lagging && now.saturating_since(part.last_progress) >= retransmit {
                if self.successor(p, &me).is_some() {
                    let part = &mut self.parts[p as usize];
                    part.sent = part.commit;
                    part.last_progress = now;
                    self.push(cx, p);
                } else if self.is_tail(p, &me) {
                    let len = self.parts[p as usize].log.len() as u64;
                    self.advance_commit(cx, p, len);
                }
            } else if part.sent < part.log.len() as u64 && self.successor(p, &me).is_some() {
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
                    let len = part.log.len() as u64;
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
                    Op::Read { p, .. } => cx.emit(OuroborosEvent::ReadFailed {
                        req,
                        partition: p,
                        error: LogError::Timeout,
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

    fn on_table_reply(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, state: PaxosState<I>) {
        if self.recovered {
            if state.committed.ballot > self.table.ballot {
                self.install(cx, state.committed);
            }
            return;
        }
        self.recovery.insert(from, state);
        // A majority of the *others*: this node's own state was lost.
        if self.recovery.len() < self.majority {
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
            part.left_ready = None;
            part.sealed = None;
            part.log.clear();
            part.wal.truncated(0);
            Self::rebuild_dedupe(part);
            part.commit = 0;
            part.sent = 0;
            part.ready = false;
        }
        self.recovered = true;
        cx.emit(OuroborosEvent::TableInstalled {
            ballot: self.table.ballot,
        });
    }
}

/// The outcome carried by a reply to a client.
enum OpResult<I> {
    Appended(u64, u64, Option<bool>),
    Read(Vec<ReadRecord<I>>, u64),
    Failed(LogError<I>),
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
            cx.multicast(others.iter(), &OuroborosMsg::TableQuery);
            if others.is_empty() {
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
            OuroborosMsg::Prepare { ballot } => self.on_prepare(cx, from, ballot),
            OuroborosMsg::Promise {
                ballot,
                state,
                stale,
                reports,
            } => {
                if let Some(Round {
                    ballot: b,
                    phase: Phase::Preparing { promises, .. },
                    ..
                }) = &mut self.round
                {
                    if *b == ballot && self.universe.contains(&from) {
                        promises.insert(from, (state, stale, reports));
                        self.progress_round(cx);
                    }
                }
            }
            OuroborosMsg::Accept { table } => self.on_accept(cx, from, table),
            OuroborosMsg::Seal { ballot, p, epoch } => {
                let me = cx.me.clone();
                if let Some(info) = self.seal(&me, p, epoch, ballot) {
                    cx.send(from, OuroborosMsg::Sealed { ballot, p, info });
                }
            }
            OuroborosMsg::Sealed { ballot, p, info } => self.on_sealed(cx, ballot, p, info),
            OuroborosMsg::Accepted { ballot } => {
                if let Some(Round {
                    ballot: b,
                    phase: Phase::Accepting { accepted, .. },
                    ..
                }) = &mut self.round
                {
                    if *b == ballot && self.universe.contains(&from) {
                        accepted.insert(from);
                        self.progress_round(cx);
                    }
                }
            }
            OuroborosMsg::Nack { ballot, promised } => {
                if self.round.as_ref().is_some_and(|r| r.ballot == ballot) {
                    self.promised = self.promised.max(promised);
                    self.abort_round(cx);
                }
            }
            OuroborosMsg::Commit { table } => {
                if self.recovered {
                    self.install(cx, table);
                }
            }
            OuroborosMsg::TableQuery => {
                if self.recovered {
                    let state = self.paxos_state();
                    cx.send(from, OuroborosMsg::TableReply { state });
                }
            }
            OuroborosMsg::TableReply { state } => self.on_table_reply(cx, from, state),
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
            OuroborosMsg::Sync { p, epoch, len } => {
                let me = cx.me.clone();
                if self.epoch_ok(cx, &from, p, epoch)
                    && self.successor(p, &me).as_ref() == Some(&from)
                {
                    if len > self.parts[p as usize].log.len() as u64 {
                        // The successor holds more than we do: our log was
                        // lost (prefix property broken). Stop serving this
                        // chain and have it reconfigured.
                        self.mark_stale(cx, p);
                        return;
                    }
                    let part = &mut self.parts[p as usize];
                    part.sent = len.min(part.log.len() as u64);
                    part.last_progress = cx.now;
                    if part.sent == part.log.len() as u64 {
                        // Nothing to send: still tell the successor our length
                        // (a new tail needs it to start serving reads).
                        let mine = part.sent;
                        let msg = OuroborosMsg::Append {
                            p,
                            epoch,
                            start: mine,
                            prev: part.log.last().map(|e| e.epoch),
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
            OuroborosMsg::Ack {
                p,
                epoch,
                upto,
                held,
            } => {
                let me = cx.me.clone();
                if self.epoch_ok(cx, &from, p, epoch)
                    && self.successor(p, &me).as_ref() == Some(&from)
                {
                    self.successor_holds(p, held, cx.now);
                    self.advance_commit(cx, p, upto);
                }
            }
            OuroborosMsg::ClientAppend {
                p,
                req,
                key,
                data,
                txn,
            } => self.on_client_append(cx, from, p, req, key, data, txn),
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
            OuroborosMsg::Check { p, epoch, nonce } => {
                if self.recovered && p < self.config.partitions {
                    let ok = self.check_ok(p, epoch);
                    cx.send(from, OuroborosMsg::CheckReply { nonce, ok });
                }
            }
            OuroborosMsg::CheckReply { nonce, ok } => {
                if self.universe.contains(&from) {
                    self.on_check_reply(cx, from, nonce, ok);
                }
            }
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
