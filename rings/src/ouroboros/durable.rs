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
    /// Why the store failed.
    pub(super) failure: Option<String>,
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
    crate::wire::to_sized_vec(rec).map_err(|e| alloc::format!("cannot encode a record: {e}"))
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
            failure: None,
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
                part.commit = part.commit.max(part.log.len() as u64);
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
                    d.failure = Some(reason.clone());
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
        // Whether what was written must be synced before anything leaves.
        // A commit point that moved is written but needs no sync of its
        // own: a node that comes back with an older one is still right
        // (see `Ouroboros::on_restored`).
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Ring;
    use crate::logstore::{LogStore, MemoryLog, MemoryLogError};
    use crate::node::{Node, NodeOutput};
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
            entries: &[],
        })
        .unwrap();
        let gap = encode::<u64>(&WalOut::Entries {
            p: 1,
            start: 5,
            entries: &[],
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
