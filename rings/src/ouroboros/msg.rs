//! The wire: `OuroborosMsg`, one flat enum (its variant order is its postcard encoding; never reorder).

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::{
    Entry, Epoch, LogError, PartReport, PaxosState, Producer, ReadRecord, SealInfo, Table, TxnMark,
};

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
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// Payload.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// A transaction's record, decision or outcome copy.
        txn: Option<TxnMark>,
        /// The idempotent producer and sequence (deduplicated across
        /// heads and restarts).
        producer: Option<Producer>,
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
        /// The member version of the tail's table: a member whose tables
        /// have a newer one answers no.
        members_version: u64,
    },
    /// Answer to `Check`.
    CheckReply {
        /// The check.
        nonce: u64,
        /// True if no newer epoch for the partition was accepted here.
        ok: bool,
    },
    /// Predecessor → successor that asked for records retention deleted:
    /// "my log starts at `low`; everything below is committed". A
    /// successor holding less jumps to `low` (see `retention`).
    Skip {
        /// Partition.
        p: u32,
        /// The chain epoch.
        epoch: Epoch,
        /// The sender's low watermark.
        low: u64,
        /// The epoch runs of the log below `low`.
        runs: Vec<(Epoch, u64)>,
    },
    /// Any node → members: "please make this member change" (resent
    /// until a committed table shows it done).
    Intent {
        /// The change.
        change: super::MemberChange<I>,
    },
}
