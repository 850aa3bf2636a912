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
//!
//! # Policies
//! [`FsyncPolicy`]: `batch` (default; one sync per flush, and drivers batch
//! their input into flushes), `every` (one record and sync per log entry) or
//! `never`. Because every member's forward and acknowledgement leave only
//! after its flush, an acknowledgement means the record is synced on every
//! chain member.
//!
//! # Recovery and failure
//! [`Ouroboros::recover`] replays the log: logs, replica states, acceptor
//! state and table as of the last flush, and the node carries on in its
//! roles. Only if the log holds no acceptor state does the node restart as
//! an amnesiac (see the module `ouroboros`). A damaged record is an error
//! that names it: the node refuses to start rather than guess. If the store
//! fails at run time the node stops taking part (`StorageFailed`; held
//! messages are dropped as a crash would drop them; client operations fail
//! at once) until it is restarted. Real clusters keep the log in a
//! `SegmentLog` (`shen-storage`), the simulator in a `SimWal`; both
//! implement [`WalStore`] through [`LogStore`].

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use serde::{Deserialize, Serialize};

use super::plog::Records;
use super::records::BoxedRecords;
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
    /// Append a checkpoint record, make it durable, and then drop what
    /// the log held before it (as far as the store can: whole segments).
    /// Recovery replays from the last checkpoint it finds.
    fn checkpoint(&mut self, record: &[u8]) -> Result<(), String> {
        self.append_record(record)?;
        self.sync_records()
    }
}

impl<L: LogStore + core::fmt::Debug> WalStore for L {
    fn append_record(&mut self, record: &[u8]) -> Result<(), String> {
        self.append(record).map(|_| ()).map_err(|e| e.to_string())
    }
    fn sync_records(&mut self) -> Result<(), String> {
        self.sync().map_err(|e| e.to_string())
    }
    fn checkpoint(&mut self, record: &[u8]) -> Result<(), String> {
        let at = self.append(record).map_err(|e| e.to_string())?;
        self.sync().map_err(|e| e.to_string())?;
        self.trim_before(at).map_err(|e| e.to_string())
    }
}

/// Every record of `store` from its first held offset, in order (what
/// [`Ouroboros::recover`] replays; it starts at the last checkpoint).
pub fn read_all<L: LogStore>(store: &L) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for o in store.first_offset()..store.next_offset() {
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
    /// Equal except for the commit point.
    fn same_flags(&self, o: &PartState) -> bool {
        PartState {
            commit: 0,
            ..self.clone()
        } == PartState {
            commit: 0,
            ..o.clone()
        }
    }

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

/// A partition's part of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CkPart {
    state: PartState,
    low: u64,
    len: u64,
    runs: Vec<(Epoch, u64)>,
}

/// A record as written (borrowing the entries).
#[derive(Serialize)]
enum WalOut<'a, I> {
    Entries {
        p: u32,
        start: u64,
        entries: Vec<&'a Entry<I>>,
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
    /// The partition's low watermark moved to `low` (retention, or a jump
    /// over a prefix: then the log is empty at `low`, with these runs).
    Low {
        p: u32,
        low: u64,
        runs: Vec<(Epoch, u64)>,
    },
    /// Everything as of now; the record store holds each partition's
    /// `low..len`, synced.
    Checkpoint {
        promised: Epoch,
        accepted: &'a Option<Table<I>>,
        table: &'a Table<I>,
        parts: Vec<CkPart>,
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
    Low {
        p: u32,
        low: u64,
        runs: Vec<(Epoch, u64)>,
    },
    Checkpoint {
        promised: Epoch,
        accepted: Option<Table<I>>,
        table: Table<I>,
        parts: Vec<CkPart>,
    },
}

/// The postcard tag of `WalIn::Checkpoint` (its variant index), so
/// recovery finds the last checkpoint without decoding what precedes it.
const CHECKPOINT_TAG: u8 = 4;

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
    /// Why the store failed.
    pub(super) failure: Option<String>,
    /// Where the records live (with checkpoints), if not in memory.
    records: Option<Records>,
    /// Bytes written to the write-ahead log since the last checkpoint.
    since_checkpoint: u64,
    /// Checkpoints written (since start).
    pub(super) checkpoints: u64,
}

/// Per-partition bookkeeping: how much of the in-memory log the write-ahead
/// log agrees with.
#[derive(Clone, Debug, Default)]
pub(super) struct PartWal {
    /// The write-ahead log holds exactly `log[..prefix]` of this log...
    pub(super) prefix: u64,
    /// ...and, as replayed, a log of this length.
    pub(super) len: u64,
    /// The low watermark last written.
    pub(super) low: u64,
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
    crate::wire::to_sized_vec(rec).map_err(|e| alloc::format!("cannot encode a record: {e}"))
}

/// A partition's log as the replay rebuilds it: `low..base` in the record
/// store, then `tail` from the write-ahead log.
struct Replay<I> {
    low: u64,
    base: u64,
    tail: Vec<Entry<I>>,
    runs: Vec<(Epoch, u64)>,
}

impl<I> Default for Replay<I> {
    fn default() -> Self {
        Replay {
            low: 0,
            base: 0,
            tail: Vec::new(),
            runs: Vec::new(),
        }
    }
}

impl<I> Replay<I> {
    fn len(&self) -> u64 {
        self.base + self.tail.len() as u64
    }
}

impl<I: NodeId> Ouroboros<I> {
    /// Attach a write-ahead log to a fresh node (first boot, or a restart
    /// after losing the disk). From now on its sends wait for flushes.
    pub fn with_store(mut self, store: Box<dyn WalStore>, policy: FsyncPolicy) -> Self {
        let records = self.durable.as_ref().and_then(|d| d.records.clone());
        self.durable = Some(Durable {
            store: Rc::new(RefCell::new(store)),
            policy,
            written_paxos: None,
            failed: false,
            failure: None,
            records,
            since_checkpoint: 0,
            checkpoints: 0,
        });
        self
    }

    /// Keep the partition records in `records` (see `records`), with a
    /// cache of the newest ones of at most `cache_bytes` in all. Without
    /// a record store every record stays in memory.
    fn attach_records(&mut self, records: BoxedRecords, cache_bytes: usize) {
        let records: Records = Rc::new(RefCell::new(records));
        let share = cache_bytes / self.parts.len().max(1);
        for part in &mut self.parts {
            part.log.store = Some(records.clone());
            part.log.budget = share;
        }
        if let Some(d) = &mut self.durable {
            d.records = Some(records);
        }
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
        Self::recover_with_records(members, config, restarted, records, store, policy, None)
    }

    /// [`recover`](Ouroboros::recover) with the partition records in a
    /// [`RecordStore`] (and a cache of at most `cache_bytes`): recovery
    /// starts from the write-ahead log's last checkpoint, reads each
    /// partition's index from the record store and replays the rest.
    pub fn recover_with_records(
        members: &[I],
        config: OuroborosConfig,
        restarted: bool,
        records: &[Vec<u8>],
        store: Box<dyn WalStore>,
        policy: FsyncPolicy,
        parts_store: Option<(BoxedRecords, usize)>,
    ) -> Result<Self, RecoverError> {
        let mut o = Ouroboros::new(members, config, false);
        let parts = o.config.partitions;
        let mut paxos = false;
        let bad = |index: usize, reason: String| RecoverError { index, reason };
        let from = records
            .iter()
            .rposition(|r| r.first() == Some(&CHECKPOINT_TAG))
            .unwrap_or(0);
        let mut replay: Vec<Replay<I>> = (0..parts).map(|_| Replay::default()).collect();
        for (index, bytes) in records.iter().enumerate().skip(from) {
            let rec: WalIn<I> = postcard::from_bytes(bytes)
                .map_err(|e| bad(index, alloc::format!("undecodable ({e})")))?;
            let part_of = |p: u32| {
                if p < parts {
                    Ok(p as usize)
                } else {
                    Err(bad(index, alloc::format!("partition {p} >= {parts}")))
                }
            };
            match rec {
                WalIn::Entries { p, start, entries } => {
                    let r = &mut replay[part_of(p)?];
                    if start < r.low {
                        // The live log was cut below its low watermark (the
                        // whole log dropped, as `PartLog::truncate` does):
                        // it continues at `start`.
                        r.low = start;
                        r.base = start;
                        r.tail.clear();
                    }
                    if start > r.len() {
                        return Err(bad(
                            index,
                            alloc::format!(
                                "partition {p}: entries at {start} after a log of {}..{}",
                                r.low,
                                r.len()
                            ),
                        ));
                    }
                    if start >= r.base {
                        r.tail.truncate((start - r.base) as usize);
                    } else {
                        r.base = start;
                        r.tail.clear();
                    }
                    while r.runs.last().is_some_and(|(_, s)| *s >= start) {
                        r.runs.pop();
                    }
                    for e in entries {
                        let at = r.len();
                        if r.runs.last().is_none_or(|(ep, _)| *ep != e.epoch) {
                            r.runs.push((e.epoch, at));
                        }
                        r.tail.push(e);
                    }
                }
                WalIn::Part { p, state } => {
                    let part = &mut o.parts[part_of(p)?];
                    part.apply_state(state);
                }
                WalIn::Paxos {
                    promised,
                    accepted,
                    table,
                } => {
                    o.apply_paxos(index, promised, accepted, table)?;
                    paxos = true;
                }
                WalIn::Low { p, low, runs } => {
                    let r = &mut replay[part_of(p)?];
                    if low >= r.len() {
                        *r = Replay {
                            low,
                            base: low,
                            tail: Vec::new(),
                            runs,
                        };
                    } else if low > r.low {
                        r.low = low;
                        if low > r.base {
                            r.tail.drain(..(low - r.base) as usize);
                            r.base = low;
                        }
                    }
                }
                WalIn::Checkpoint {
                    promised,
                    accepted,
                    table,
                    parts: ck,
                } => {
                    if ck.len() != parts as usize {
                        return Err(bad(index, "checkpoint of another partition count".into()));
                    }
                    o.apply_paxos(index, promised, accepted, table)?;
                    paxos = true;
                    for (p, c) in ck.into_iter().enumerate() {
                        o.parts[p].apply_state(c.state);
                        replay[p] = Replay {
                            low: c.low,
                            base: c.len,
                            tail: Vec::new(),
                            runs: c.runs,
                        };
                    }
                }
            }
        }
        if !paxos {
            let mut fresh =
                Ouroboros::new(members, o.config.clone(), restarted).with_store(store, policy);
            if let Some((rs, cache)) = parts_store {
                let mut rs = rs;
                for p in 0..parts {
                    rs.reset_at(p, 0).map_err(|e| bad(0, e))?;
                }
                fresh.attach_records(rs, cache);
            }
            return Ok(fresh);
        }
        let mut o = o.with_store(store, policy);
        if let Some((rs, cache)) = parts_store {
            o.attach_records(rs, cache);
        }
        let at_end = records.len();
        for (p, r) in replay.into_iter().enumerate() {
            o.load_part(p as u32, r)
                .map_err(|reason| bad(at_end, reason))?;
        }
        for part in &mut o.parts {
            let len = part.log.len();
            part.commit = part.commit.min(len);
            part.sent = part.commit;
            part.wal.prefix = len;
            part.wal.len = len;
            part.wal.low = part.log.low();
        }
        let written = (
            o.promised,
            o.accepted.as_ref().map(|a| a.ballot),
            o.table.ballot,
        );
        if let Some(d) = &mut o.durable {
            d.written_paxos = Some(written);
        }
        o.restored = true;
        Ok(o)
    }

    fn apply_paxos(
        &mut self,
        index: usize,
        promised: Epoch,
        accepted: Option<Table<I>>,
        table: Table<I>,
    ) -> Result<(), RecoverError> {
        let parts = self.config.partitions as usize;
        if table.chains.len() != parts || accepted.as_ref().is_some_and(|a| a.chains.len() != parts)
        {
            return Err(RecoverError {
                index,
                reason: "table of another partition count".to_string(),
            });
        }
        self.promised = promised;
        self.accepted = accepted;
        self.table = table;
        Ok(())
    }

    /// Rebuild partition `p`'s log from its replay: the index of
    /// `low..base` from the record store, then the replayed tail (also
    /// written to the record store).
    fn load_part(&mut self, p: u32, r: Replay<I>) -> Result<(), String> {
        let part = &mut self.parts[p as usize];
        let mut low = r.low;
        let mut runs = r.runs;
        if let Some(store) = part.log.store.clone() {
            let mut s = store.borrow_mut();
            let (first, next) = s.bounds(p);
            if r.base > low {
                // A trim after the checkpoint whose `Low` record was not
                // synced (fsync `never`): what was trimmed was committed.
                if first > low && first <= r.base {
                    low = first;
                }
                if first > low || next < r.base {
                    return Err(alloc::format!(
                        "partition {p}: the record store holds {first}..{next} but the write-ahead log needs {low}..{}",
                        r.base
                    ));
                }
                if next > r.base {
                    s.truncate_from(p, r.base)?;
                }
            } else if (first, next) != (low, low) {
                s.reset_at(p, low)?;
            }
        }
        let base = r.base.max(low);
        // The tail's runs are re-added by the pushes below.
        runs.retain(|(_, s)| *s < base);
        let mut idx = Vec::new();
        part.log.load(p, low, base, runs, |o, rec| {
            idx.push((
                o,
                rec.id,
                rec.origin.clone(),
                rec.req,
                rec.txn.clone(),
                rec.producer,
            ))
        })?;
        for (o, id, origin, req, txn, producer) in idx {
            Self::index_entry(part, o, id, &origin, req, txn.as_ref(), producer);
        }
        for e in r.tail {
            let o = part.log.len();
            if o < low {
                continue;
            }
            Self::index_entry(part, o, e.id, &e.origin, e.req, e.txn.as_ref(), e.producer);
            part.log.push(e);
        }
        part.log.write_store()?;
        part.log.evict();
        Ok(())
    }

    /// At start after a rebuild: commit points are written lazily, so one
    /// may be older than what this node said before the crash. That is
    /// safe for a head or a middle (a lower commit point only delays
    /// answers and cuts more on the next epoch) but a tail's reads must
    /// not go back: a tail's log holds only records it got from its
    /// predecessor in order, each synced by every member before it moved
    /// on, so all of it is committed (unless sealed, whose commit point
    /// was synced with the seal).
    pub(super) fn on_restored(&mut self, me: &I) {
        for p in 0..self.config.partitions {
            let c = &self.table.chains[p as usize];
            if c.members.last() != Some(me) {
                continue;
            }
            let epoch = c.epoch;
            let part = &mut self.parts[p as usize];
            if part.sealed != Some(epoch) && !part.stale {
                part.commit = part.commit.max(part.log.len());
                part.sent = part.commit;
            }
        }
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

    /// Why the store failed, if it did.
    pub fn storage_failure(&self) -> Option<&str> {
        self.durable.as_ref().and_then(|d| d.failure.as_deref())
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
            let len = part.log.len();
            part.wal.prefix < len
                || part.wal.len != len
                || part.wal.low != part.log.low()
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
        let mut result = self.write_changes(&mut **store.borrow_mut(), policy);
        if result.is_ok() {
            result = self.write_records();
        }
        if result.is_ok() {
            result = self.maybe_checkpoint(&mut **store.borrow_mut());
        }
        match result {
            Ok(()) => true,
            Err(reason) => {
                if let Some(d) = &mut self.durable {
                    d.failed = true;
                    d.failure = Some(reason.clone());
                }
                cx.emit(OuroborosEvent::StorageFailed { reason });
                false
            }
        }
    }

    /// After the write-ahead log holds them: bring every partition's
    /// record store up to date and trim the caches.
    fn write_records(&mut self) -> Result<(), String> {
        for part in &mut self.parts {
            if let Some(e) = part.log.read_error.borrow_mut().take() {
                return Err(e);
            }
            if part.log.store.is_some() {
                part.log.write_store()?;
                part.log.evict();
            }
        }
        Ok(())
    }

    /// Write a checkpoint once enough was written since the last one:
    /// sync the record store, then replace the write-ahead log by one
    /// record of the whole state (the argument is in the module docs).
    fn maybe_checkpoint(&mut self, store: &mut dyn WalStore) -> Result<(), String> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        let Some(records) = d.records.clone() else {
            return Ok(());
        };
        if d.since_checkpoint < self.config.checkpoint_bytes
            || !self.recovered
            || d.written_paxos.is_none()
        {
            return Ok(());
        }
        records.borrow_mut().sync()?;
        let parts = self
            .parts
            .iter()
            .map(|part| CkPart {
                state: PartState::of(part),
                low: part.log.low(),
                len: part.log.len(),
                runs: part.log.runs(),
            })
            .collect();
        let rec = encode(&WalOut::Checkpoint {
            promised: self.promised,
            accepted: &self.accepted,
            table: &self.table,
            parts,
        })?;
        store.checkpoint(&rec)?;
        if let Some(d) = &mut self.durable {
            d.since_checkpoint = 0;
            d.checkpoints += 1;
        }
        Ok(())
    }

    /// Checkpoints written since this node started.
    pub fn checkpoints(&self) -> u64 {
        self.durable.as_ref().map_or(0, |d| d.checkpoints)
    }

    fn write_changes(
        &mut self,
        store: &mut dyn WalStore,
        policy: FsyncPolicy,
    ) -> Result<(), String> {
        // Whether what was written must be synced before anything leaves.
        // A commit point that moved is written but needs no sync of its
        // own: a node that comes back with an older one is still right
        // (see `Ouroboros::on_restored`).
        let mut wrote = false;
        let mut bytes = 0u64;
        let mut put = |store: &mut dyn WalStore, rec: Vec<u8>| -> Result<(), String> {
            bytes += rec.len() as u64;
            store.append_record(&rec)
        };
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
            put(store, rec)?;
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
            let len = part.log.len();
            let low = part.log.low();
            if part.wal.low != low {
                // Replayed: a log shorter than `low` becomes empty at it.
                let runs: Vec<(Epoch, u64)> =
                    part.log.runs().into_iter().filter(|r| r.1 < low).collect();
                put(store, encode::<I>(&WalOut::Low { p, low, runs })?)?;
                if part.wal.len <= low {
                    part.wal.len = low;
                }
                part.wal.prefix = part.wal.prefix.max(low);
                part.wal.low = low;
                wrote = true;
            }
            if part.wal.prefix < len || part.wal.len != len {
                let mut start = part.wal.prefix;
                if start == len {
                    // Only a cut: one empty record says so.
                    put(
                        store,
                        encode::<I>(&WalOut::Entries {
                            p,
                            start,
                            entries: Vec::new(),
                        })?,
                    )?;
                }
                while start < len {
                    let mut entries: Vec<&Entry<I>> = Vec::new();
                    let mut size = 0;
                    for e in part.log.cached_from(start) {
                        let b = e.data.len() + e.key.len() + 64;
                        if !entries.is_empty()
                            && (size + b > RECORD_BYTES || policy == FsyncPolicy::Every)
                        {
                            break;
                        }
                        size += b;
                        entries.push(e);
                    }
                    if entries.is_empty() {
                        return Err(alloc::format!(
                            "partition {p}: records from {start} are not in memory"
                        ));
                    }
                    let end = start + entries.len() as u64;
                    let rec = encode(&WalOut::Entries { p, start, entries })?;
                    put(store, rec)?;
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
                put(store, encode::<I>(&WalOut::Part { p, state: &state })?)?;
                if !part
                    .wal
                    .state
                    .as_ref()
                    .is_some_and(|w| w.same_flags(&state))
                {
                    wrote = true;
                }
                part.wal.state = Some(state);
            }
        }
        if wrote && policy != FsyncPolicy::Never {
            store.sync_records()?;
        }
        if let Some(d) = &mut self.durable {
            d.since_checkpoint += bytes;
        }
        Ok(())
    }
}

impl<I> Part<I> {
    /// Take a replica state read back from the write-ahead log.
    fn apply_state(&mut self, state: PartState) {
        self.commit = state.commit;
        self.ready = state.ready;
        self.barrier = state.barrier;
        self.stale = state.stale;
        self.left_ready = state.left_ready;
        self.sealed = state.sealed;
        self.sealed_by = state.sealed_by;
        self.wal.state = Some(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Ring;
    use crate::logstore::{LogStore, MemoryLog, MemoryLogError};
    use crate::node::{Node, NodeOutput};
    use crate::ouroboros::BoxedRecords;
    use crate::Time;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A memory log the test can still reach after handing it to the ring.
    #[derive(Clone, Debug, Default)]
    struct Shared(Rc<RefCell<MemoryLog>>);

    impl LogStore for Shared {
        type Error = MemoryLogError;
        fn append(&mut self, r: &[u8]) -> Result<u64, MemoryLogError> {
            self.0.borrow_mut().append(r)
        }
        fn sync(&mut self) -> Result<(), MemoryLogError> {
            self.0.borrow_mut().sync()
        }
        fn read(&self, o: u64) -> Result<Option<Vec<u8>>, MemoryLogError> {
            self.0.borrow().read(o)
        }
        fn next_offset(&self) -> u64 {
            self.0.borrow().next_offset()
        }
        fn durable_offset(&self) -> u64 {
            self.0.borrow().durable_offset()
        }
        fn truncate_from(&mut self, o: u64) -> Result<(), MemoryLogError> {
            self.0.borrow_mut().truncate_from(o)
        }
        fn first_offset(&self) -> u64 {
            self.0.borrow().first_offset()
        }
        fn trim_before(&mut self, o: u64) -> Result<(), MemoryLogError> {
            self.0.borrow_mut().trim_before(o)
        }
        fn reset_at(&mut self, o: u64) -> Result<(), MemoryLogError> {
            self.0.borrow_mut().reset_at(o)
        }
        fn segment_starts(&self) -> Vec<u64> {
            self.0.borrow().segment_starts()
        }
    }

    fn parts_store(logs: &[(Shared, Shared)]) -> BoxedRecords {
        Box::new(crate::ouroboros::PartitionLogs::new(logs.to_vec()).unwrap())
    }

    #[test]
    fn checkpoints_bound_the_wal_and_a_restart_reads_records_back_from_the_store() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let wal = Shared::default();
        let logs: Vec<(Shared, Shared)> = (0..4).map(|_| Default::default()).collect();
        let cfg = OuroborosConfig {
            checkpoint_bytes: 2048,
            ..config()
        };
        let boot = |rng: &mut ChaCha8Rng, restarted: bool| {
            let o = Ouroboros::recover_with_records(
                &[0u64],
                cfg.clone(),
                restarted,
                &read_all(&wal).unwrap(),
                Box::new(wal.clone()),
                FsyncPolicy::Batch,
                Some((parts_store(&logs), 4096)),
            )
            .unwrap();
            let mut n = Node::new(0u64, if restarted { 2 } else { 1 }).with_ring(o);
            n.start(Time::ZERO, rng);
            n
        };
        let mut n = boot(&mut rng, false);
        let mut acked = 0;
        for i in 0..200u32 {
            n.command::<Ouroboros<u64>, _>(Time::ZERO, &mut rng, |o, cx| {
                o.append(cx, b"k", alloc::vec![i as u8; 100])
            });
            for _ in 0..6 {
                n.flush(Time::ZERO, &mut rng);
                let (events, _) = pump(&mut n, &mut rng);
                acked += events
                    .iter()
                    .filter(|e| matches!(e, OuroborosEvent::Appended { .. }))
                    .count();
                if !n.needs_flush() {
                    break;
                }
            }
        }
        assert_eq!(acked, 200);
        let o = ouro(&n);
        assert!(o.checkpoints() > 3, "{} checkpoints", o.checkpoints());
        let p = crate::ouroboros::partition_of_key(b"k", 4);
        assert_eq!(o.log_len(p), 200);
        // The cache holds about 1 KiB per partition; the rest is on "disk".
        let first = o.log(p);
        assert_eq!(first.len(), 200);
        assert!(
            wal.0.borrow().first_offset() > 0,
            "the WAL was never trimmed"
        );
        let held = wal.0.borrow().next_offset() - wal.0.borrow().first_offset();
        assert!(held < 100, "the WAL still holds {held} records");

        wal.0.borrow_mut().crash(false);
        for (i, d) in &logs {
            i.0.borrow_mut().crash(false);
            d.0.borrow_mut().crash(false);
        }
        let n2 = boot(&mut rng, true);
        let o2 = ouro(&n2);
        assert!(o2.is_restored());
        assert_eq!(o2.log(p), first);
        assert_eq!(o2.committed(p), 200);
    }

    type N = Node<u64, OuroborosEvent<u64>>;

    fn config() -> OuroborosConfig {
        OuroborosConfig {
            partitions: 4,
            ..OuroborosConfig::default()
        }
    }

    fn node_on(store: &Shared, restarted: bool, rng: &mut ChaCha8Rng) -> N {
        let records = read_all(store).unwrap();
        let o = Ouroboros::recover(
            &[0u64],
            config(),
            restarted,
            &records,
            Box::new(store.clone()),
            FsyncPolicy::Batch,
        )
        .unwrap();
        let mut n = Node::new(0u64, if restarted { 2 } else { 1 }).with_ring(o);
        n.start(Time::ZERO, rng);
        n
    }

    /// Hand every message the node sent (to itself) back to it; return the
    /// events seen and whether anything was sent.
    fn pump(n: &mut N, rng: &mut ChaCha8Rng) -> (Vec<OuroborosEvent<u64>>, bool) {
        let mut events = Vec::new();
        let mut sent = false;
        loop {
            let outs: Vec<_> = n.drain_outputs().collect();
            if outs.is_empty() {
                return (events, sent);
            }
            for o in outs {
                match o {
                    NodeOutput::Send { to, envelope } => {
                        assert_eq!(to, 0);
                        sent = true;
                        n.handle_envelope(Time::ZERO, rng, 0, &envelope).unwrap();
                    }
                    NodeOutput::Event { event, .. } => events.push(event),
                    _ => {}
                }
            }
        }
    }

    fn ouro(n: &N) -> &Ouroboros<u64> {
        n.ring::<Ouroboros<u64>>().unwrap()
    }

    #[test]
    fn nothing_leaves_before_the_flush_and_a_restart_keeps_what_was_acknowledged() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let store = Shared::default();
        let mut n = node_on(&store, false, &mut rng);
        let _ = pump(&mut n, &mut rng);
        n.command::<Ouroboros<u64>, _>(Time::ZERO, &mut rng, |o, cx| {
            o.append(cx, b"k", b"v1".to_vec())
        });
        // The client request to the head (this node) waits for a flush.
        let (_, sent) = pump(&mut n, &mut rng);
        assert!(!sent, "a message left before the flush");
        let mut acked = None;
        for _ in 0..4 {
            assert!(n.needs_flush());
            n.flush(Time::ZERO, &mut rng);
            let (events, _) = pump(&mut n, &mut rng);
            if let Some(OuroborosEvent::Appended {
                partition, offset, ..
            }) = events
                .into_iter()
                .find(|e| matches!(e, OuroborosEvent::Appended { .. }))
            {
                acked = Some((partition, offset));
                break;
            }
        }
        let (p, offset) = acked.expect("the append completes after flushes");
        assert_eq!(offset, 0);
        assert_eq!(store.0.borrow().unsynced(), 0, "acknowledged before sync");

        // Power loss: what was synced is all there is; it has the record.
        store.0.borrow_mut().crash(false);
        let n2 = node_on(&store, true, &mut rng);
        let o = ouro(&n2);
        assert!(o.is_restored());
        assert_eq!(o.log(p).len(), 1);
        assert_eq!(o.log(p)[0].data, b"v1");
        assert_eq!(o.committed(p), 1);
        assert_eq!(o.table(), ouro(&n).table());
    }

    #[test]
    fn a_crash_before_the_flush_loses_the_write_and_its_answer_together() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let store = Shared::default();
        let mut n = node_on(&store, false, &mut rng);
        let _ = pump(&mut n, &mut rng);
        n.flush(Time::ZERO, &mut rng);
        let synced = store.0.borrow().next_offset();
        assert!(synced > 0, "the first flush writes the acceptor state");
        n.command::<Ouroboros<u64>, _>(Time::ZERO, &mut rng, |o, cx| {
            o.append(cx, b"k", b"v1".to_vec())
        });
        n.flush(Time::ZERO, &mut rng);
        // The head appends and answers; the answer is held, the entry not
        // yet synced. Then power goes.
        let _ = pump(&mut n, &mut rng);
        assert!(n.needs_flush());
        store.0.borrow_mut().crash(false);
        let n2 = node_on(&store, true, &mut rng);
        let o = ouro(&n2);
        assert!(o.is_restored());
        assert!((0..4).all(|p| o.log(p).is_empty()));
    }

    #[test]
    fn a_log_without_acceptor_state_restarts_as_a_relearning_member() {
        for restarted in [true, false] {
            let o = Ouroboros::<u64>::recover(
                &[0, 1, 2],
                config(),
                restarted,
                &[],
                Box::new(MemoryLog::new()),
                FsyncPolicy::Batch,
            )
            .unwrap();
            assert!(!o.is_restored());
            // Restarted with nothing on disk: may not vote until it has
            // heard a majority. First boot: votes at once.
            assert_eq!(o.is_recovered(), !restarted);
            assert!(o.gates_sends());
        }
    }

    #[test]
    fn damaged_records_are_refused_with_their_index() {
        let good = encode::<u64>(&WalOut::Entries {
            p: 0,
            start: 0,
            entries: Vec::new(),
        })
        .unwrap();
        let gap = encode::<u64>(&WalOut::Entries {
            p: 1,
            start: 5,
            entries: Vec::new(),
        })
        .unwrap();
        let wide = encode::<u64>(&WalOut::Part {
            p: 9,
            state: &PartState::default(),
        })
        .unwrap();
        for (records, index) in [
            (vec![good.clone(), vec![0xff, 0xff, 0xff]], 1),
            (vec![good.clone(), gap], 1),
            (vec![wide], 0),
        ] {
            let e = Ouroboros::<u64>::recover(
                &[0],
                config(),
                true,
                &records,
                Box::new(MemoryLog::new()),
                FsyncPolicy::Batch,
            )
            .unwrap_err();
            assert_eq!(e.index, index, "{e}");
        }
    }

    #[test]
    fn a_failing_sync_stops_the_node_and_drops_what_it_held() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let store = Shared::default();
        let mut n = node_on(&store, false, &mut rng);
        let _ = pump(&mut n, &mut rng);
        n.flush(Time::ZERO, &mut rng);
        let _ = pump(&mut n, &mut rng);
        n.command::<Ouroboros<u64>, _>(Time::ZERO, &mut rng, |o, cx| {
            o.append(cx, b"k", b"v1".to_vec())
        });
        // The request reaches the head, which appends and holds its answer.
        n.flush(Time::ZERO, &mut rng);
        let _ = pump(&mut n, &mut rng);
        assert!(n.needs_flush());
        store.0.borrow_mut().set_fail_syncs(true);
        n.flush(Time::ZERO, &mut rng);
        let (events, sent) = pump(&mut n, &mut rng);
        assert!(!events
            .iter()
            .any(|e| matches!(e, OuroborosEvent::Appended { .. })));
        assert!(!sent, "held messages left after a failed sync");
        assert!(events
            .iter()
            .any(|e| matches!(e, OuroborosEvent::StorageFailed { .. })));
        assert!(ouro(&n).storage_failed());
        // New client operations fail at once instead of hanging.
        n.command::<Ouroboros<u64>, _>(Time::ZERO, &mut rng, |o, cx| {
            o.append(cx, b"k", b"v2".to_vec())
        });
        let (events, _) = pump(&mut n, &mut rng);
        assert!(events
            .iter()
            .any(|e| matches!(e, OuroborosEvent::AppendFailed { .. })));
    }

    #[test]
    fn policies_parse() {
        assert_eq!("every".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Every));
        assert_eq!("batch".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Batch));
        assert_eq!("never".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Never));
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
    }
}
