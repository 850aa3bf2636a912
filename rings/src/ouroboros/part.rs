//! One partition's replica at this node: its log, commit point and catch-up state, and helpers over a log.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::plog::PartLog;
use super::{durable, Epoch, TxnId};
use crate::contract::Time;
use crate::scarab::{ScarabGenerator, ScarabId, EPOCH_UNIX_MS};

#[derive(Clone, Debug)]
pub(super) struct Part<I> {
    pub(super) log: PartLog<I>,
    pub(super) commit: u64,
    /// Next offset to push to the successor.
    pub(super) sent: u64,
    /// Caught up with the chain as it was when the epoch began: the head
    /// always; another member once it holds the length its (caught-up)
    /// predecessor reported. A tail serves reads only when ready.
    pub(super) ready: bool,
    /// The length this member must reach to be ready, once known.
    pub(super) barrier: Option<u64>,
    /// Listed in the chain but the log was lost on restart.
    pub(super) stale: bool,
    /// Not a member now; was a caught-up member of this chain epoch when it
    /// left, and the log has not changed since.
    pub(super) left_ready: Option<Epoch>,
    /// Since when the committed table has this partition settled without
    /// this node, where placement does not want it (see `retention`'s
    /// hand-off).
    pub(super) away_since: Option<Time>,
    /// This replica's data was dropped after a hand-off: it cannot be a
    /// recovery head (`Chain::keep`) on an older report.
    pub(super) handed_off: bool,
    /// As the tail, this epoch is sealed: acknowledge nothing more in it.
    pub(super) sealed: Option<Epoch>,
    /// The ballot of the round that sealed it.
    pub(super) sealed_by: Epoch,
    /// (client, request) → offset, for the retry window (see `dedupe`).
    pub(super) dedupe: super::dedupe::RecentRequests,
    /// Idempotent producers → their recent sequences' offsets.
    pub(super) producers: super::ProducerTable,
    /// Head: clients waiting for an offset to commit.
    pub(super) waiters: BTreeMap<u64, Vec<(I, u64)>>,
    /// Last time the successor showed progress (or we pushed fresh data).
    pub(super) last_progress: Time,
    /// Entries the successor reported holding (this epoch).
    pub(super) succ_held: u64,
    /// Flow control: what the successor last said it holds (its `Sync`
    /// length, or the largest `held` of its acks since); the push window
    /// counts from here (or the commit point, if lower).
    pub(super) succ_acked: u64,
    /// When `succ_acked` last grew, or go-back-N last restarted the
    /// pushes (the commit point moving says nothing of a successor
    /// catching up).
    pub(super) succ_progress: Time,
    /// Payload bytes pushed beyond `succ_acked`, as of the last push (the
    /// per-successor catch-up budget adds these up).
    pub(super) in_flight: u64,
    /// The length the successor must hold to count as caught up (this
    /// node's length when the epoch began); slowness is judged after.
    pub(super) succ_target: u64,
    /// Since the successor caught up: (log end, time) of local appends it
    /// does not hold yet, oldest first.
    pub(super) unheld: VecDeque<(u64, Time)>,
    /// What the write-ahead log holds of this replica.
    pub(super) wal: durable::PartWal,
    /// Transaction → (offset of its first outcome entry here, commit).
    pub(super) txn_out: BTreeMap<TxnId, (u64, bool)>,
    /// Offsets of transaction members not yet known resolved below the
    /// commit point.
    pub(super) open: BTreeMap<u64, TxnId>,
    /// As tail: the undecided transaction the stable point waits at, since.
    pub(super) blocked: Option<(TxnId, Time)>,
}

impl<I> Part<I> {
    pub(super) fn new(ready: bool) -> Self {
        Part {
            log: PartLog::default(),
            commit: 0,
            sent: 0,
            ready,
            barrier: None,
            stale: false,
            left_ready: None,
            away_since: None,
            handed_off: false,
            sealed: None,
            sealed_by: Epoch::default(),
            dedupe: super::dedupe::RecentRequests::default(),
            producers: super::ProducerTable::default(),
            waiters: BTreeMap::new(),
            last_progress: Time::ZERO,
            succ_held: 0,
            succ_acked: 0,
            succ_progress: Time::ZERO,
            in_flight: 0,
            succ_target: 0,
            unheld: VecDeque::new(),
            wal: durable::PartWal::default(),
            txn_out: BTreeMap::new(),
            open: BTreeMap::new(),
            blocked: None,
        }
    }
}

pub(super) fn epoch_at(runs: &[(Epoch, u64)], len: u64, offset: u64) -> Option<Epoch> {
    if offset >= len {
        return None;
    }
    runs.iter()
        .rev()
        .find(|(_, start)| *start <= offset)
        .map(|(e, _)| *e)
}

/// The Scarab ID of the record at offset `o` (0 if absent, which callers
/// never ask for).
pub(super) fn part_id<I: crate::contract::NodeId>(part: &Part<I>, o: u64) -> u64 {
    part.log.id(o).unwrap_or(0)
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
