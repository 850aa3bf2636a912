//! Ouroboros on a disk: a node-wide write-ahead log of everything a crash
//! must not take back, written before any message that depends on it
//! leaves the node.
//!
//! # The argument
//!
//! With a store attached, Ouroboros *gates its sends*
//! ([`Ring::gates_sends`](crate::contract::Ring::gates_sends)): every message
//! it produces waits in the node until the next flush, and the flush first
//! appends to the write-ahead log whatever changed since the last one (log
//! entries and truncations, each partition's replica state, the acceptor
//! state and the table) and syncs it according to the [`FsyncPolicy`]. So a
//! node that crashes and restarts from its log is, to everyone else,
//! indistinguishable from a node whose messages were delayed and lost for a
//! while, which the protocol already tolerates: nothing it ever said
//! (an acknowledgement, a promise, a seal, a read) rests on state it no
//! longer has. Volatile leftovers (client operations in flight, a round it
//! was running, retransmission cursors) are lost the way a paused node's
//! timeouts lose them.
//!
//! One log for the whole node, not one per partition, so a flush costs one
//! sync however many partitions it touched (group commit). Records:
//! `Entries` (cut the partition's log at `start`, then append), `Part`
//! (a partition's replica state) and `Paxos` (acceptor state and the table
//! in force). Replaying them in order rebuilds the state of the last flush.
//!
//! With [`FsyncPolicy::Never`] the records are written but not synced: a
//! killed process keeps them (the kernel has them), a power loss may not.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use serde::{Deserialize, Serialize};

use super::{Entry, Epoch, Ouroboros, OuroborosConfig, OuroborosEvent, Part, Table};
use crate::contract::{NodeId, RingCtx};
use crate::logstore::LogStore;

/// When the write-ahead log is synced.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every record (each log entry is its own write and sync).
    Every,
    /// Once per flush, for everything the flush wrote (group commit).
    #[default]
    Batch,
    /// Never: written, not synced (survives a killed process, not a power
    /// loss).
    Never,
}

impl core::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "every" => Ok(FsyncPolicy::Every),
            "batch" => Ok(FsyncPolicy::Batch),
            "never" => Ok(FsyncPolicy::Never),
            _ => Err(alloc::format!(
                "unknown fsync policy {s:?} (expected every, batch or never)"
            )),
        }
    }
}

/// A write-ahead log as Ouroboros uses it: append a record, sync.
/// Every [`LogStore`] is one.
pub trait WalStore: core::fmt::Debug {
    /// Append one record (not yet durable).
    fn append_record(&mut self, record: &[u8]) -> Result<(), String>;
    /// Make every record appended so far durable.
    fn sync_records(&mut self) -> Result<(), String>;
}

impl<L: LogStore + core::fmt::Debug> WalStore for L {
    fn append_record(&mut self, record: &[u8]) -> Result<(), String> {
        self.append(record).map(|_| ()).map_err(|e| e.to_string())
    }
    fn sync_records(&mut self) -> Result<(), String> {
        self.sync().map_err(|e| e.to_string())
    }
}

/// Every record of `store`, in order (what [`Ouroboros::recover`] replays).
pub fn read_all<L: LogStore>(store: &L) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for o in 0..store.next_offset() {
        match store.read(o).map_err(|e| e.to_string())? {
            Some(r) => out.push(r),
            None => return Err(alloc::format!("record {o} is missing")),
        }
    }
    Ok(out)
}

/// A shared handle to the store (clones of the ring share it).
pub(super) type Store = Rc<RefCell<Box<dyn WalStore>>>;

/// What persists of one partition replica besides its log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PartState {
    commit: u64,
    ready: bool,
    barrier: Option<u64>,
    stale: bool,
    left_ready: Option<Epoch>,
    sealed: Option<Epoch>,
    sealed_by: Epoch,
}

impl PartState {
    fn of<I>(p: &Part<I>) -> PartState {
        PartState {
            commit: p.commit,
            ready: p.ready,
            barrier: p.barrier,
            stale: p.stale,
            left_ready: p.left_ready,
            sealed: p.sealed,
            sealed_by: p.sealed_by,
        }
    }
}

/// A record as written (borrowing the entries).
#[derive(Serialize)]
enum WalOut<'a, I> {
    Entries {
        p: u32,
        start: u64,
        entries: &'a [Entry<I>],
    },
    Part {
        p: u32,
        state: &'a PartState,
    },
    Paxos {
        promised: Epoch,
        accepted: &'a Option<Table<I>>,
        table: &'a Table<I>,
    },
}

/// The same record as read back (same layout).
#[derive(Deserialize)]
#[serde(bound = "I: NodeId")]
enum WalIn<I> {
    Entries {
        p: u32,
        start: u64,
        entries: Vec<Entry<I>>,
    },
    Part {
        p: u32,
        state: PartState,
    },
    Paxos {
        promised: Epoch,
        accepted: Option<Table<I>>,
        table: Table<I>,
    },
}

/// The write-ahead log could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("write-ahead log record {index}: {reason}")]
pub struct RecoverError {
    /// Which record.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Most entry bytes in one `Entries` record (records must stay below the
/// store's 1 MiB limit).
const RECORD_BYTES: usize = 256 * 1024;

/// Per-ring durability bookkeeping.
#[derive(Clone, Debug)]
pub(super) struct Durable {
    pub(super) store: Store,
    pub(super) policy: FsyncPolicy,
    /// (promised, accepted ballot, table ballot) last written.
    written_paxos: Option<(Epoch, Option<Epoch>, Epoch)>,
    /// The store failed: this node stopped (it says nothing more).
    pub(super) failed: bool,
}

/// Per-partition bookkeeping: how much of the in-memory log the write-ahead
/// log agrees with.
#[derive(Clone, Debug, Default)]
pub(super) struct PartWal {
    /// The write-ahead log holds exactly `log[..prefix]` of this log...
    pub(super) prefix: u64,
    /// ...and, as replayed, a log of this length.
    pub(super) len: u64,
    /// The replica state last written.
    state: Option<PartState>,
}

impl PartWal {
    /// The in-memory log was cut to `len`.
    pub(super) fn truncated(&mut self, len: u64) {
        self.prefix = self.prefix.min(len);
    }
}

fn encode<I: NodeId>(rec: &WalOut<'_, I>) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(rec).map_err(|e| alloc::format!("cannot encode a record: {e}"))
}

impl<I: NodeId> Ouroboros<I> {
    /// Attach a write-ahead log to a fresh node (first boot, or a restart
    /// after losing the disk). From now on its sends wait for flushes.
    pub fn with_store(mut self, store: Box<dyn WalStore>, policy: FsyncPolicy) -> Self {
        self.durable = Some(Durable {
            store: Rc::new(RefCell::new(store)),
            policy,
            written_paxos: None,
            failed: false,
        });
        self
    }

    /// Rebuild a node from the records of its write-ahead log (oldest
    /// first) and keep writing to `store`. With no acceptor record in it
    /// (the node never sent anything, or lost its disk), the node starts
    /// fresh, or as a restarted member that relearns its state from the
    /// others if `restarted` (it ran before).
    pub fn recover(
        members: &[I],
        config: OuroborosConfig,
        restarted: bool,
        records: &[Vec<u8>],
        store: Box<dyn WalStore>,
        policy: FsyncPolicy,
    ) -> Result<Self, RecoverError> {
        let mut o = Ouroboros::new(members, config, false);
        let parts = o.config.partitions;
        let mut paxos = false;
        let bad = |index: usize, reason: String| RecoverError { index, reason };
        for (index, bytes) in records.iter().enumerate() {
            let rec: WalIn<I> = postcard::from_bytes(bytes)
                .map_err(|e| bad(index, alloc::format!("undecodable ({e})")))?;
            match rec {
                WalIn::Entries { p, start, entries } => {
                    let part = o
                        .parts
                        .get_mut(p as usize)
                        .ok_or_else(|| bad(index, alloc::format!("partition {p} >= {parts}")))?;
                    if start > part.log.len() as u64 {
                        return Err(bad(
                            index,
                            alloc::format!(
                                "partition {p}: entries at {start} after a log of {}",
                                part.log.len()
                            ),
                        ));
                    }
                    part.log.truncate(start as usize);
                    part.log.extend(entries);
                }
                WalIn::Part { p, state } => {
                    let part = o
                        .parts
                        .get_mut(p as usize)
                        .ok_or_else(|| bad(index, alloc::format!("partition {p} >= {parts}")))?;
                    part.commit = state.commit;
                    part.ready = state.ready;
                    part.barrier = state.barrier;
                    part.stale = state.stale;
                    part.left_ready = state.left_ready;
                    part.sealed = state.sealed;
                    part.sealed_by = state.sealed_by;
                    part.wal.state = Some(state);
                }
                WalIn::Paxos {
                    promised,
                    accepted,
                    table,
                } => {
                    if table.chains.len() != parts as usize
                        || accepted
                            .as_ref()
                            .is_some_and(|a| a.chains.len() != parts as usize)
                    {
                        return Err(bad(index, "table of another partition count".to_string()));
                    }
                    o.promised = promised;
                    o.accepted = accepted;
                    o.table = table;
                    paxos = true;
                }
            }
        }
        if !paxos {
            let fresh = Ouroboros::new(members, o.config.clone(), restarted);
            return Ok(fresh.with_store(store, policy));
        }
        for part in &mut o.parts {
            let len = part.log.len() as u64;
            part.commit = part.commit.min(len);
            part.sent = part.commit;
            part.wal.prefix = len;
            part.wal.len = len;
            Self::rebuild_dedupe(part);
        }
        let written = (
            o.promised,
            o.accepted.as_ref().map(|a| a.ballot),
            o.table.ballot,
        );
        let mut o = o.with_store(store, policy);
        if let Some(d) = &mut o.durable {
            d.written_paxos = Some(written);
        }
        o.restored = true;
        Ok(o)
    }

    /// True when this node was rebuilt from its write-ahead log.
    pub fn is_restored(&self) -> bool {
        self.restored
    }

    /// The fsync policy, if a store is attached.
    pub fn fsync_policy(&self) -> Option<FsyncPolicy> {
        self.durable.as_ref().map(|d| d.policy)
    }

    /// True when the store failed and this node stopped taking part.
    pub fn storage_failed(&self) -> bool {
        self.durable.as_ref().is_some_and(|d| d.failed)
    }

    pub(super) fn wal_dirty(&self) -> bool {
        let Some(d) = &self.durable else {
            return false;
        };
        if d.failed {
            return false;
        }
        if self.recovered
            && d.written_paxos
                != Some((
                    self.promised,
                    self.accepted.as_ref().map(|a| a.ballot),
                    self.table.ballot,
                ))
        {
            return true;
        }
        self.parts.iter().any(|part| {
            let len = part.log.len() as u64;
            part.wal.prefix < len
                || part.wal.len != len
                || part.wal.state.as_ref() != Some(&PartState::of(part))
        })
    }

    /// Write and sync what changed. Returns false if the store failed (the
    /// node then stops: the held messages are dropped, as by a crash).
    pub(super) fn flush_wal(&mut self, cx: &mut RingCtx<'_, I, Self>) -> bool {
        let Some(d) = &self.durable else {
            return true;
        };
        if d.failed {
            return false;
        }
        let store = d.store.clone();
        let policy = d.policy;
        let result = self.write_changes(&mut **store.borrow_mut(), policy);
        match result {
            Ok(()) => true,
            Err(reason) => {
                if let Some(d) = &mut self.durable {
                    d.failed = true;
                }
                cx.emit(OuroborosEvent::StorageFailed { reason });
                false
            }
        }
    }

    fn write_changes(
        &mut self,
        store: &mut dyn WalStore,
        policy: FsyncPolicy,
    ) -> Result<(), String> {
        let mut wrote = false;
        let paxos_now = (
            self.promised,
            self.accepted.as_ref().map(|a| a.ballot),
            self.table.ballot,
        );
        if self.recovered && self.durable.as_ref().and_then(|d| d.written_paxos) != Some(paxos_now)
        {
            let rec = encode(&WalOut::Paxos {
                promised: self.promised,
                accepted: &self.accepted,
                table: &self.table,
            })?;
            store.append_record(&rec)?;
            wrote = true;
            if policy == FsyncPolicy::Every {
                store.sync_records()?;
            }
            if let Some(d) = &mut self.durable {
                d.written_paxos = Some(paxos_now);
            }
        }
        for (p, part) in self.parts.iter_mut().enumerate() {
            let p = p as u32;
            let len = part.log.len() as u64;
            if part.wal.prefix < len || part.wal.len != len {
                let mut start = part.wal.prefix;
                if start == len {
                    // Only a cut: one empty record says so.
                    store.append_record(&encode::<I>(&WalOut::Entries {
                        p,
                        start,
                        entries: &[],
                    })?)?;
                }
                while start < len {
                    let mut end = start;
                    let mut bytes = 0;
                    while end < len {
                        let e = &part.log[end as usize];
                        let b = e.data.len() + e.key.len() + 64;
                        if end > start && (bytes + b > RECORD_BYTES || policy == FsyncPolicy::Every)
                        {
                            break;
                        }
                        bytes += b;
                        end += 1;
                    }
                    let rec = encode(&WalOut::Entries {
                        p,
                        start,
                        entries: &part.log[start as usize..end as usize],
                    })?;
                    store.append_record(&rec)?;
                    if policy == FsyncPolicy::Every {
                        store.sync_records()?;
                    }
                    start = end;
                }
                part.wal.prefix = len;
                part.wal.len = len;
                wrote = true;
            }
            let state = PartState::of(part);
            if part.wal.state.as_ref() != Some(&state) {
                store.append_record(&encode::<I>(&WalOut::Part { p, state: &state })?)?;
                part.wal.state = Some(state);
                wrote = true;
            }
        }
        if wrote && policy != FsyncPolicy::Never {
            store.sync_records()?;
        }
        Ok(())
    }
}
