//! Sundial's wire messages, its events and its command errors.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::{Filter, Record};

/// Sundial's wire messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SundialMsg<I> {
    /// Start of a push-pull exchange.
    Syn {
        /// Cluster tag.
        cluster: u64,
        /// XOR of the sender's record digests.
        view_hash: u64,
        /// Records the sender holds.
        size: u32,
    },
    /// The receiver's view differs: here is its filter.
    SynAck {
        /// Cluster tag.
        cluster: u64,
        /// Filter of the receiver's records.
        filter: Filter,
    },
    /// Send me what this filter lacks.
    Pull {
        /// Cluster tag.
        cluster: u64,
        /// Filter of the sender's records.
        filter: Filter,
    },
    /// Records, most recently changed first.
    Delta {
        /// Cluster tag.
        cluster: u64,
        /// The records.
        records: Vec<Record<I>>,
    },
    /// A new node introduces itself to a known peer.
    Join {
        /// Cluster tag.
        cluster: u64,
        /// The joiner's record.
        record: Record<I>,
    },
    /// Liveness probe from a monitor.
    Probe {
        /// Cluster tag.
        cluster: u64,
        /// Echoed back.
        seq: u64,
    },
    /// Answer to a probe.
    ProbeAck {
        /// Cluster tag.
        cluster: u64,
        /// The probe's sequence number.
        seq: u64,
        /// The answering node's heartbeat counter.
        heartbeat: u64,
    },
    /// "You are suspected at this incarnation": lets a live member refute
    /// at once.
    Suspected {
        /// Cluster tag.
        cluster: u64,
        /// The incarnation under suspicion.
        incarnation: u64,
    },
}

/// What Sundial reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SundialEvent<I> {
    /// A member became known (or came back with a higher incarnation).
    Joined {
        /// The member.
        id: I,
    },
    /// A member is suspected.
    Suspected {
        /// The member.
        id: I,
        /// Suspectors so far.
        by: Vec<I>,
    },
    /// A suspected member was seen alive again.
    Recovered {
        /// The member.
        id: I,
    },
    /// A member was confirmed dead.
    Died {
        /// The member.
        id: I,
    },
    /// A member left gracefully.
    Left {
        /// The member.
        id: I,
    },
    /// A tombstone expired.
    Forgotten {
        /// The member.
        id: I,
    },
    /// A member's metadata changed.
    MetaChanged {
        /// The member.
        id: I,
    },
    /// This node refuted a suspicion about itself.
    Refuted {
        /// Its new incarnation.
        incarnation: u64,
    },
    /// This node started monitoring `id` (it is one of its predecessors).
    Monitoring {
        /// The monitored member.
        id: I,
    },
}

/// Why a local command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SundialError {
    /// Metadata over the limits.
    #[error("metadata limit: at most 8 entries, keys up to 32 bytes, values up to 128 bytes")]
    MetaTooLarge,
    /// This node has left.
    #[error("this node has left the cluster")]
    HasLeft,
}
