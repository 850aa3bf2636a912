//! `GET /status`, `/healthz` and `/readyz`: the node's state as one versioned document.

use serde::{Deserialize, Serialize};

/// The `schema` of [`StatusDoc`] this crate writes. Readers accept any
/// document with this schema; fields added later are optional.
pub const STATUS_SCHEMA: u32 = 1;

/// How the membership looks from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterHealth {
    /// Every member alive.
    Ok,
    /// Some member suspected.
    Degraded,
    /// No other live member.
    Alone,
    /// This node left the cluster.
    Left,
}

/// A member's Sundial status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// Alive.
    #[default]
    Alive,
    /// Suspected by someone.
    Suspect,
    /// Confirmed failed.
    Dead,
    /// Left gracefully.
    Left,
}

/// One member of the Sundial view. Only `id` is required when reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberDoc {
    /// PeerId.
    pub id: String,
    /// This node (JSON `self`).
    #[serde(rename = "self", default)]
    pub is_self: bool,
    /// Sundial status.
    #[serde(default)]
    pub status: MemberStatus,
    /// Its incarnation.
    #[serde(default)]
    pub incarnation: u64,
    /// How many members suspect it.
    #[serde(default)]
    pub suspectors: usize,
    /// This node's phi for it, when it monitors it.
    #[serde(default)]
    pub phi: Option<f64>,
    /// Its share of the Ankh ring (0..1), when it holds one.
    #[serde(default)]
    pub ownership: Option<f64>,
}

/// The Ankh ring over the live members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnkhDoc {
    /// Virtual nodes per member.
    pub vnodes: u32,
    /// Members placed.
    pub members: usize,
}

/// Sundial's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SundialStatsDoc {
    /// Suspicions this node raised.
    pub suspicions_raised: u64,
    /// Times this node refuted a suspicion about itself.
    pub refutations: u64,
    /// Messages dropped for carrying another cluster's tag.
    pub foreign_dropped: u64,
}

/// One partition's chain as this node's table has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChainDoc {
    /// Partition.
    pub partition: u32,
    /// Epoch (`generation.sequence`).
    pub epoch: String,
    /// Head first, tail last.
    pub members: Vec<String>,
    /// Replacements still catching up.
    pub learners: Vec<String>,
    /// Whether this node replicates it (as member or learner).
    pub here: bool,
    /// This node's copy: records held ...
    pub local_len: u64,
    /// ... and known committed.
    pub committed: u64,
    /// This node's low watermark: the first offset still held (earlier
    /// ones were deleted by retention). 0 from older nodes.
    pub low_watermark: u64,
    /// This node's high watermark: the next offset (equal to `local_len`).
    pub high_watermark: u64,
    /// Record bytes held for this partition (key and data plus a fixed
    /// per-record overhead, as retention counts them).
    pub held_bytes: u64,
    /// Bytes of this partition's files on disk (`DIR/parts/N/`), when
    /// the node knows its data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
}

/// Ouroboros' counters on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogStatsDoc {
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
    /// Times this node found a successor slow.
    pub slow_marked: u64,
    /// Tails unsealed because the round that sealed them changed nothing.
    pub unsealed: u64,
    /// Transactions this node coordinated that committed ...
    pub txn_committed: u64,
    /// ... that aborted.
    pub txn_aborted: u64,
    /// Undecided transactions of others this node settled as a tail.
    pub txn_resolved: u64,
}

/// The replicated log on this node. Before it forms only `formed` and
/// `expect` are present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogDoc {
    /// Whether the log formed (or was restored from disk).
    #[serde(default)]
    pub formed: bool,
    /// `--bootstrap-expect`.
    #[serde(default)]
    pub expect: Option<usize>,
    /// May vote in configuration rounds (a restarted node heard a majority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// Rebuilt from its write-ahead log at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<bool>,
    /// `every`, `batch` or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsync: Option<String>,
    /// The write-ahead log failed: this node stopped acknowledging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_failed: Option<bool>,
    /// Why the write-ahead log failed (the OS error: no space left, an I/O
    /// error, a failed fsync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
    /// The log's member set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// The member set's version (one more per change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_version: Option<u64>,
    /// Members being decommissioned (their partitions move away first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaving: Vec<String>,
    /// Whether this node is a member (a node that joins a running log
    /// hosts it before it is added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<bool>,
    /// Member changes this node asked for and that are not done yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_changes: Vec<String>,
    /// Each member's share of the replicas as the log places them (from
    /// the chains, not from the Sundial view).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<ShareDoc>,
    /// Replicas moving (joins, leaves, refills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceDoc>,
    /// Number of partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Replication factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rf: Option<usize>,
    /// Ballot of the table this node holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_ballot: Option<String>,
    /// Every partition's chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<ChainDoc>,
    /// Counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<LogStatsDoc>,
}

/// One member's share of the log's replicas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShareDoc {
    /// PeerId.
    pub id: String,
    /// Chains it is a member of.
    pub replicas: u32,
    /// Chains it heads.
    pub heads: u32,
    /// Chains it is learning (catching up to join).
    pub learning: u32,
    /// `replicas` over all chain slots (partitions x rf).
    pub share: f64,
}

/// Replicas being moved: chains with learners catching up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RebalanceDoc {
    /// Chains with at least one learner.
    pub moving: u32,
    /// Of those, the ones this node is learning.
    pub learning_here: u32,
    /// Records this node still has to receive for them (its view of the
    /// commit point minus what it holds).
    pub records_behind: u64,
    /// Bytes this node received for them so far.
    pub bytes_done: u64,
    /// Bytes still to receive, estimated from the records behind at this
    /// node's mean record size.
    pub bytes_remaining: u64,
}

impl LogDoc {
    /// The section of a node whose log has not formed.
    pub fn not_formed(expect: Option<usize>) -> LogDoc {
        LogDoc {
            formed: false,
            expect,
            recovered: None,
            restored: None,
            fsync: None,
            storage_failed: None,
            storage_error: None,
            members: Vec::new(),
            members_version: None,
            leaving: Vec::new(),
            member: None,
            pending_changes: Vec::new(),
            shares: Vec::new(),
            rebalance: None,
            partitions: None,
            rf: None,
            table_ballot: None,
            chains: Vec::new(),
            stats: None,
        }
    }
}

/// The transport's view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetDoc {
    /// This node.
    pub peer_id: String,
    /// Addresses the swarm listens on.
    pub listen_addrs: Vec<String>,
    /// Addresses advertised to peers.
    pub external_addrs: Vec<String>,
    /// Peers with an open connection.
    pub connected: Vec<String>,
    /// Whether a pre-shared key is in force.
    pub private: bool,
    /// Seconds since the transport started.
    pub uptime_s: f64,
    /// This node's reachability: `public` (an address confirmed by an
    /// AutoNAT v2 dial-back), `private` (reachable through relays only),
    /// `unknown` (not tested yet) or `local` (loopback only).
    #[serde(default)]
    pub reachability: String,
    /// How each connected peer is reached.
    #[serde(default)]
    pub peers: Vec<PeerConnDoc>,
    /// Relays holding a reservation for this node.
    #[serde(default)]
    pub relays: Vec<String>,
}

/// One connected peer and how it is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerConnDoc {
    /// The peer.
    pub peer_id: String,
    /// `direct`, `relayed` or `hole-punched`.
    pub kind: String,
}

/// `GET /status` (schema [`STATUS_SCHEMA`]). The membership fields are
/// absent on a node that runs no Sundial. Readers are tolerant: unknown
/// fields are ignored and every field but a member's `id` may be missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// Schema version.
    #[serde(default)]
    pub schema: u32,
    /// This node.
    #[serde(default)]
    pub peer_id: String,
    /// Membership health (`degraded` too when this node's own storage
    /// failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<ClusterHealth>,
    /// Why `health` is not `ok`, in words (empty when it is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_reasons: Vec<String>,
    /// Live members, this node included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_members: Option<usize>,
    /// Hash of the membership view (equal views, equal hashes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_hash: Option<String>,
    /// This node's incarnation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
    /// The Sundial view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberDoc>>,
    /// The rings this node runs.
    #[serde(default)]
    pub rings: Vec<String>,
    /// The Ankh ring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ankh: Option<AnkhDoc>,
    /// Sundial's counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sundial: Option<SundialStatsDoc>,
    /// The replicated log.
    #[serde(default)]
    pub log: LogDoc,
    /// The transport.
    #[serde(default)]
    pub net: NetDoc,
}

impl StatusDoc {
    /// The Sundial view (empty on a node without one).
    pub fn members(&self) -> &[MemberDoc] {
        self.members.as_deref().unwrap_or(&[])
    }
}

/// `GET /healthz`: the process runs and its event loop answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Liveness {
    /// Always `true` in a 200 answer.
    pub alive: bool,
    /// This node.
    pub peer_id: String,
}

/// `GET /readyz`: 200 when `ready`, 503 otherwise, with the reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// The log formed, storage is healthy and this node serves requests.
    pub ready: bool,
    /// Why not, in words (empty when ready).
    pub reasons: Vec<String>,
}
