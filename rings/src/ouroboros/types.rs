//! Ouroboros's public data: settings, tables and chains, log entries, errors, events, counters.

use alloc::vec::Vec;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Producer, TxnMark};
use crate::cartouche::Fencing;

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
    /// Retention by size: a replica deletes its oldest whole segments
    /// while what stays of the partition is still at least this many
    /// bytes. `None`: no size limit.
    #[serde(default)]
    pub retention_bytes: Option<u64>,
    /// Retention by age: a replica deletes whole segments whose newest
    /// record (by Scarab ID time) is older than this many milliseconds.
    /// `None`: no age limit.
    #[serde(default)]
    pub retention_ms: Option<u64>,
    /// Write a checkpoint (and drop the write-ahead log before it) once
    /// this many bytes were written to the write-ahead log since the last
    /// one. Only with a record store.
    #[serde(default = "default_checkpoint_bytes")]
    pub checkpoint_bytes: u64,
    /// A member the configurator has seen dead for this long is removed
    /// from the member set (its partitions were re-replicated when it
    /// died); `shen member remove` does it at once.
    #[serde(default = "default_replace_after")]
    pub replace_after: Duration,
    /// Most chains moving a replica at once (rebalancing after a join or
    /// for a leave; refills after a failure are not limited).
    #[serde(default = "default_max_moves")]
    pub max_moves: usize,
    /// A node that is not a member asks to join once it knows the table
    /// (off: only `shen member add`, or its own explicit request, adds
    /// it). A node that asked to leave never asks to join again.
    #[serde(default = "default_auto_join")]
    pub auto_join: bool,
    /// Most bytes per second this node sends to replicas catching up
    /// (learners of a rebalancing, refilled members), over all of them:
    /// state transfer then leaves room for the chains' own appends. A
    /// local setting (it decides only when catch-up entries are sent).
    /// `None`: unlimited.
    #[serde(default = "default_rebalance_rate")]
    pub rebalance_bytes_per_sec: Option<u64>,
    /// The founding table's chains, one per partition, instead of Ankh's
    /// placement (empty: Ankh's): a world that continues a running
    /// cluster (the browser's fork) starts with that cluster's chains and
    /// epochs. Members are indexes into the founding member list; a list
    /// that does not fit it (see [`FoundingChain`]) is ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub founding_chains: Vec<FoundingChain>,
}

/// One partition's chain in a given founding table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoundingChain {
    /// Its epoch.
    pub epoch: Epoch,
    /// Head first: indexes into the founding member list, each at most
    /// once.
    pub members: Vec<u32>,
}

/// Why founding chains do not fit `partitions` partitions over `nodes`
/// founding members (`None`: they fit).
pub fn founding_chains_error(
    chains: &[FoundingChain],
    partitions: u32,
    nodes: usize,
) -> Option<alloc::string::String> {
    use alloc::format;
    if chains.len() != partitions as usize {
        return Some(format!(
            "{} chains for {partitions} partitions (want one per partition)",
            chains.len()
        ));
    }
    for (p, c) in chains.iter().enumerate() {
        if c.members.is_empty() {
            return Some(format!("partition {p}'s chain has no member"));
        }
        if let Some(m) = c.members.iter().find(|m| **m as usize >= nodes) {
            return Some(format!(
                "partition {p}'s chain names node {m}, of {nodes} nodes"
            ));
        }
        let mut seen = c.members.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != c.members.len() {
            return Some(format!("partition {p}'s chain names a node twice"));
        }
    }
    None
}

/// 8 MiB/s: the default cap on state transfer from one node (on the
/// 2-core bench machine it keeps appends at about half their steady rate
/// while partitions move; see BENCHMARKS.md).
pub const DEFAULT_REBALANCE_BYTES_PER_SEC: u64 = 8 << 20;

fn default_rebalance_rate() -> Option<u64> {
    Some(DEFAULT_REBALANCE_BYTES_PER_SEC)
}

fn default_auto_join() -> bool {
    true
}

fn default_checkpoint_bytes() -> u64 {
    32 << 20
}

fn default_replace_after() -> Duration {
    Duration::from_secs(600)
}

fn default_max_moves() -> usize {
    8
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
            retention_bytes: None,
            retention_ms: None,
            checkpoint_bytes: default_checkpoint_bytes(),
            replace_after: default_replace_after(),
            max_moves: default_max_moves(),
            auto_join: true,
            rebalance_bytes_per_sec: default_rebalance_rate(),
            founding_chains: Vec::new(),
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
        if self.rebalance_bytes_per_sec == Some(0) {
            return Err((
                "rebalance_bytes_per_sec",
                "must be positive (leave it out for no limit)",
            ));
        }
        if self.max_moves == 0 {
            return Err(("max_moves", "must be at least 1"));
        }
        if self.replace_after.is_zero() {
            return Err(("replace_after", "must be positive"));
        }
        if self.max_batch == 0 || self.max_read == 0 {
            return Err(("max_batch", "must be at least 1"));
        }
        if self.max_batch_bytes < 1024 || self.max_batch_bytes > 768 * 1024 {
            return Err(("max_batch_bytes", "must be between 1 KiB and 768 KiB"));
        }
        // Retries of one operation (a transaction: three rounds) stay
        // inside the window in which requests are deduplicated, with 10 s
        // to spare for heads' clocks.
        if self.request_timeout.is_zero()
            || self.request_timeout.as_millis() as u64 * 3 + 10_000 > super::dedupe::WINDOW_MS
        {
            return Err((
                "request_timeout",
                "must be between 1 ms and 6.6 s (retries are deduplicated for 30 s)",
            ));
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

/// Every partition's chain and the log's member set, as decided by the
/// round with `ballot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table<I> {
    /// The round that decided this table.
    pub ballot: Epoch,
    /// Indexed by partition.
    pub chains: Vec<Chain<I>>,
    /// The members: the acceptors whose majorities decide the next table
    /// (see `members`), the nodes chains are placed on, and the
    /// Cartouche ring.
    pub members: Members<I>,
}

/// The log's member set. It changes by one node at a time, each change in
/// a round of its own whose base table was committed (the safety argument
/// is in `members`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members<I> {
    /// Bumped by every change of `nodes` or `leaving`.
    pub version: u64,
    /// The members and their slots, sorted by node. A slot is a member's
    /// Cartouche creator index: given once, never reused (`next_slot`), so
    /// two nodes never propose the same Cartouche generation.
    pub nodes: Vec<(I, u16)>,
    /// The next slot to give.
    pub next_slot: u16,
    /// Members being decommissioned: no chain gains them, their chains are
    /// moved away, and once in no chain they are removed.
    pub leaving: Vec<I>,
    /// Nodes that left gracefully (the newest [`DEPARTED_KEPT`]): they do
    /// not ask to join again on their own, even after a restart; an
    /// operator's `shen member add` (asked by another node) still adds
    /// them.
    pub departed: Vec<I>,
}

/// How many departed nodes a member set remembers.
pub const DEPARTED_KEPT: usize = 64;

impl<I> Default for Members<I> {
    fn default() -> Self {
        Members {
            version: 0,
            nodes: Vec::new(),
            next_slot: 0,
            leaving: Vec::new(),
            departed: Vec::new(),
        }
    }
}

impl<I: PartialEq + Ord + Clone> Members<I> {
    /// The founding member set: `nodes` (sorted, distinct) with slots in
    /// their order.
    pub fn founding(nodes: &[I]) -> Self {
        let mut v: Vec<I> = nodes.to_vec();
        v.sort();
        v.dedup();
        let n = v.len() as u16;
        Members {
            version: 0,
            nodes: v.into_iter().zip(0u16..).collect(),
            next_slot: n,
            leaving: Vec::new(),
            departed: Vec::new(),
        }
    }

    /// True if `who` is a member.
    pub fn contains(&self, who: &I) -> bool {
        self.nodes.binary_search_by(|(n, _)| n.cmp(who)).is_ok()
    }

    /// The member nodes, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &I> + '_ {
        self.nodes.iter().map(|(n, _)| n)
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Smallest number of members that is a majority.
    pub fn majority(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// True if `who` is leaving.
    pub fn is_leaving(&self, who: &I) -> bool {
        self.leaving.contains(who)
    }
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
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The payload.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Its part in a transaction, if any (see the `txn` module).
    pub txn: Option<TxnMark>,
    /// The idempotent producer that wrote it, if any (see `producer`).
    pub producer: Option<Producer>,
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
    /// it may or may not be in the log. A retry with the same producer id
    /// and sequence is safe (written at most once, answered with the
    /// original offset if it landed); a retry without them may write it
    /// twice.
    Timeout,
    /// The partition number is out of range.
    BadPartition(u32),
    /// The append's producer already wrote `WINDOW` newer sequences to the
    /// partition: nothing was written now, and whether this sequence was
    /// written earlier can no longer be told. Do not retry it with the same
    /// sequence (it would be refused again) and do not resend it as a new
    /// record unless a duplicate is acceptable.
    StaleSequence,
    /// The read starts below the partition's low watermark: retention
    /// deleted those records. Read from `earliest` (up to `latest`, the
    /// committed length) instead.
    OffsetOutOfRange {
        /// The first offset still held.
        earliest: u64,
        /// The committed length (one past the last readable offset).
        latest: u64,
    },
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
            LogError::Timeout => write!(
                f,
                "timeout: outcome unknown, the record may be in the log (retrying with the same producer id and sequence is safe; without them a retry may write it twice)"
            ),
            LogError::BadPartition(p) => write!(f, "partition {p} does not exist"),
            LogError::StaleSequence => write!(
                f,
                "sequence too old: this producer has since written newer sequences to the partition; nothing was written now and whether this one was written before is unknown (not safe to retry)"
            ),
            LogError::OffsetOutOfRange { earliest, latest } => write!(
                f,
                "offset out of range: retention deleted it; the partition holds offsets {earliest}..{latest}"
            ),
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
    /// The routing key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The payload.
    #[serde(with = "serde_bytes")]
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

/// A change of the member set that some node asked for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberChange<I> {
    /// Add this node (it asked itself: auto-join, or `shen member add`).
    Join(I),
    /// Decommission this member: move its partitions away, then remove it.
    Leave(I),
    /// Remove this member: at once if it does not answer (it is dead),
    /// else as `Leave`.
    Remove(I),
}

impl<I> MemberChange<I> {
    /// The node the change is about.
    pub fn node(&self) -> &I {
        match self {
            MemberChange::Join(n) | MemberChange::Leave(n) | MemberChange::Remove(n) => n,
        }
    }
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
    /// A round has work: a chain lists a member that is not live, is short
    /// of members, lists this node although it lost its log, or should move
    /// a replica (a join, a leave); or a member change was asked for. The
    /// node wants the Cartouche token to reconfigure.
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
    /// The installed table has a new member set.
    MembersChanged {
        /// Its version.
        version: u64,
        /// The members, sorted.
        members: Vec<I>,
        /// Those being decommissioned.
        leaving: Vec<I>,
    },
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
    /// Partition replicas this node dropped after handing them off (see
    /// `retention`).
    #[serde(default)]
    pub handed_off: u64,
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
