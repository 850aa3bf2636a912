//! Idempotent producers: a producer id and sequence number on each append, and the per-partition table that writes a retried append at most once.
//!
//! # The model (Kafka's idempotent producer)
//! A *producer* (an application's client, `ShenClient`, one `shen append`
//! run) picks a random 64-bit id and numbers its appends 1, 2, 3, ...; a
//! retry of an append (after a timeout, a refused head, a node that died)
//! reuses its number. Numbers increase per producer; gaps are allowed (a
//! producer's numbers are spread over partitions).
//!
//! # The table
//! Every replica of a partition keeps, for each producer seen in its log,
//! the last [`WINDOW`] (sequence, offset) pairs, oldest first. The table is
//! a pure function of the log: every entry carries its [`Producer`], the
//! table is updated by indexing each entry in offset order (at the head
//! when it writes one, at the others when they receive it down the chain,
//! at a restarted node when it replays its write-ahead log, at a new member
//! when state transfer fills its log) and rebuilt from the log whenever the
//! log is cut (a diverged suffix truncated). It is replicated *with* the
//! records, never beside them, so it cannot disagree with the log it
//! describes. The head looks an append up before writing it:
//! - the sequence is in the window: a **duplicate**; nothing is written and
//!   the append is answered with the original offset once that one is
//!   acknowledged;
//! - the window is full and the sequence is below its oldest: **too old**
//!   ([`LogError::StaleSequence`](super::LogError::StaleSequence)); nothing
//!   is written, and the client learns that it cannot know whether the
//!   first attempt landed;
//! - otherwise it is new and written.
//!
//! # Why a retried append is written at most once
//! Say attempt A of (producer, seq) was written at offset `o` of some
//! replica's log and a retry B reaches head H.
//! - If `o` is acknowledged, it is on every member of the chain (the
//!   acknowledgement rule), and every later chain keeps a survivor of the
//!   old one in front (the prefix property), so H's log holds `o`; H indexed
//!   it, finds B a duplicate and writes nothing.
//! - If `o` is not (yet) acknowledged and H holds it, H again answers from
//!   `o`. If H does not hold it, B is written at some `o'` of H's log, and
//!   the copy at `o` lives only on replicas whose log diverged from H's
//!   (a deposed head's unreplicated suffix). A head's log is the chain's
//!   log: a member acknowledges only entries that match its
//!   predecessor's (offset and epoch of the previous entry), so a diverged
//!   suffix is truncated before any member that holds it acknowledges
//!   anything past it, and a replica outside the chain acknowledges
//!   nothing. At most one of `o`, `o'` is ever committed, and H never
//!   holds both (it looks up before it writes).
//! - A restart changes nothing: the table is rebuilt from the entries the
//!   write-ahead log kept, and the node acknowledged nothing that was not
//!   in it (durability before speech).
//!
//! A retry that arrives after its producer wrote [`WINDOW`] newer sequences
//! to the partition is refused rather than guessed about. The table keeps
//! the [`MAX_PRODUCERS`] producers that wrote most recently to the
//! partition; a producer idle while that many others wrote may be
//! forgotten, and a retry of its last append then written again (Kafka's
//! producer-id expiry, counted in records instead of time).
//!
//! Appends without a producer (the ring's own clients, transactions) keep
//! the older (client node, request number) deduplication: exact for the
//! retries a node makes itself, not across a client that moves to another
//! node or restarts.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// Sequences remembered per producer and partition.
pub const WINDOW: usize = 8;
/// Producers remembered per partition.
pub const MAX_PRODUCERS: usize = 1024;

/// Who wrote an append, for deduplication: a producer id and its sequence
/// number (the same pair on every retry of the same append).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Producer {
    /// The producer's id (random, chosen by the client).
    pub id: u64,
    /// The append's sequence number (increasing per producer).
    pub seq: u64,
}

/// What the table says about an append.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// Not written yet.
    New,
    /// Already in the log at this offset.
    Duplicate(u64),
    /// Older than every sequence remembered: its fate is unknown.
    TooOld,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// (sequence, offset), ascending by sequence, at most `WINDOW`.
    recent: VecDeque<(u64, u64)>,
    /// Offset of its newest entry.
    last: u64,
}

/// One partition's producers (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerTable {
    by_id: BTreeMap<u64, State>,
    /// Newest offset → producer (evicts the least recently written).
    by_last: BTreeMap<u64, u64>,
}

impl ProducerTable {
    /// Look `p` up.
    pub(super) fn check(&self, p: &Producer) -> Seen {
        let Some(s) = self.by_id.get(&p.id) else {
            return Seen::New;
        };
        if let Some((_, o)) = s.recent.iter().find(|(q, _)| *q == p.seq) {
            return Seen::Duplicate(*o);
        }
        match s.recent.front() {
            Some((oldest, _)) if s.recent.len() >= WINDOW && p.seq < *oldest => Seen::TooOld,
            _ => Seen::New,
        }
    }

    /// Index `p` written at `offset` (offsets arrive in increasing order).
    pub(super) fn record(&mut self, p: Producer, offset: u64) {
        let s = self.by_id.entry(p.id).or_default();
        if s.recent.iter().any(|(q, _)| *q == p.seq) {
            // Written twice (possible only for a forgotten producer): the
            // first copy is the one a retry is answered with.
            return;
        }
        let at = s.recent.partition_point(|(q, _)| *q < p.seq);
        s.recent.insert(at, (p.seq, offset));
        if s.recent.len() > WINDOW {
            s.recent.pop_front();
        }
        let old = core::mem::replace(&mut s.last, offset);
        if self.by_last.get(&old) == Some(&p.id) {
            self.by_last.remove(&old);
        }
        self.by_last.insert(offset, p.id);
        while self.by_id.len() > MAX_PRODUCERS {
            let Some((_, gone)) = self.by_last.pop_first() else {
                break;
            };
            self.by_id.remove(&gone);
        }
    }

    /// Forget what was written at `len` or later (the log was cut there):
    /// a retry of such a sequence is then new again, as it must be. What
    /// was evicted before stays forgotten, so a retry of it is refused as
    /// too old, never written twice.
    pub(super) fn forget_from(&mut self, len: u64) {
        let mut emptied = Vec::new();
        for (id, s) in self.by_id.iter_mut() {
            s.recent.retain(|(_, o)| *o < len);
            if s.last >= len {
                self.by_last.remove(&s.last);
                match s.recent.iter().map(|(_, o)| *o).max() {
                    Some(o) => {
                        s.last = o;
                        self.by_last.insert(o, *id);
                    }
                    None => emptied.push(*id),
                }
            }
        }
        for id in emptied {
            self.by_id.remove(&id);
        }
    }

    /// Producers remembered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no producer is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u64, seq: u64) -> Producer {
        Producer { id, seq }
    }

    #[test]
    fn duplicates_are_found_new_ones_pass_and_old_ones_are_refused() {
        let mut t = ProducerTable::default();
        assert_eq!(t.check(&p(1, 5)), Seen::New);
        t.record(p(1, 5), 0);
        assert_eq!(t.check(&p(1, 5)), Seen::Duplicate(0));
        assert_eq!(t.check(&p(2, 5)), Seen::New);
        // Below the newest but the window is not full: nothing forgotten.
        assert_eq!(t.check(&p(1, 3)), Seen::New);
        for (i, s) in (10..10 + WINDOW as u64).enumerate() {
            t.record(p(1, s), 1 + i as u64);
        }
        assert_eq!(t.check(&p(1, 5)), Seen::TooOld, "5 fell out of the window");
        assert_eq!(t.check(&p(1, 10)), Seen::Duplicate(1));
        assert_eq!(t.check(&p(1, 100)), Seen::New);
        // Out of order inside the window: kept sorted, still found.
        t.record(p(1, 13 + WINDOW as u64), 50);
        t.record(p(1, 12 + WINDOW as u64), 51);
        assert_eq!(t.check(&p(1, 12 + WINDOW as u64)), Seen::Duplicate(51));
        // A second copy keeps the first offset.
        t.record(p(1, 12 + WINDOW as u64), 52);
        assert_eq!(t.check(&p(1, 12 + WINDOW as u64)), Seen::Duplicate(51));
    }

    #[test]
    fn the_least_recent_producer_is_forgotten_first() {
        let mut t = ProducerTable::default();
        for id in 0..MAX_PRODUCERS as u64 {
            t.record(p(id, 1), id);
        }
        // Producer 0 writes again: now producer 1 is the least recent.
        t.record(p(0, 2), 5000);
        t.record(p(9999, 1), 5001);
        assert_eq!(t.len(), MAX_PRODUCERS);
        assert_eq!(t.check(&p(0, 1)), Seen::Duplicate(0));
        assert_eq!(t.check(&p(1, 1)), Seen::New, "producer 1 was forgotten");
        assert_eq!(t.check(&p(9999, 1)), Seen::Duplicate(5001));
        t.forget_from(0);
        assert!(t.is_empty());
    }

    #[test]
    fn a_cut_log_forgets_the_sequences_written_at_or_above_the_cut() {
        let mut t = ProducerTable::default();
        t.record(p(1, 1), 10);
        t.record(p(1, 2), 11);
        t.record(p(2, 1), 12);
        t.forget_from(11);
        assert_eq!(t.check(&p(1, 1)), Seen::Duplicate(10));
        assert_eq!(t.check(&p(1, 2)), Seen::New, "cut away: writable again");
        assert_eq!(t.check(&p(2, 1)), Seen::New);
        assert_eq!(t.len(), 1, "producer 2 had nothing below the cut");
        // The table still evicts by its newest offset after the cut.
        t.record(p(1, 3), 11);
        assert_eq!(t.check(&p(1, 3)), Seen::Duplicate(11));
    }

    // ---- the ring: a retry through another node, and after a restart ----

    use alloc::rc::Rc;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::logstore::{LogStore, MemoryLog, MemoryLogError};
    use crate::node::{Node, NodeOutput};
    use crate::ouroboros::{
        read_all, FsyncPolicy, LogError, Ouroboros, OuroborosConfig, OuroborosEvent,
    };
    use crate::Time;

    type N = Node<u64, OuroborosEvent<u64>>;

    fn config() -> OuroborosConfig {
        OuroborosConfig {
            partitions: 2,
            ..OuroborosConfig::default()
        }
    }

    /// Deliver every message at once until none is left (flushing nodes
    /// that hold sends); the events seen, by node.
    fn pump(nodes: &mut [N], rng: &mut ChaCha8Rng) -> Vec<(u64, OuroborosEvent<u64>)> {
        let mut events = Vec::new();
        loop {
            let mut quiet = true;
            for i in 0..nodes.len() {
                if nodes[i].needs_flush() {
                    nodes[i].flush(Time::ZERO, rng);
                }
                let outs: Vec<_> = nodes[i].drain_outputs().collect();
                for o in outs {
                    match o {
                        NodeOutput::Send { to, envelope } => {
                            quiet = false;
                            let _ = nodes[to as usize].handle_envelope(
                                Time::ZERO,
                                rng,
                                i as u64,
                                &envelope,
                            );
                        }
                        NodeOutput::Event { event, .. } => events.push((i as u64, event)),
                        _ => {}
                    }
                }
            }
            if quiet && !nodes.iter().any(|n| n.needs_flush()) {
                return events;
            }
        }
    }

    fn append(
        nodes: &mut [N],
        at: usize,
        rng: &mut ChaCha8Rng,
        data: &[u8],
        pr: Producer,
    ) -> Result<(u32, u64), LogError<u64>> {
        let req = nodes[at]
            .command::<Ouroboros<u64>, _>(Time::ZERO, rng, |o, cx| {
                o.append_as(cx, b"key", data.to_vec(), Some(pr))
            })
            .expect("ring");
        for (n, e) in pump(nodes, rng) {
            match e {
                OuroborosEvent::Appended {
                    req: r,
                    partition,
                    offset,
                    ..
                } if n == at as u64 && r == req => return Ok((partition, offset)),
                OuroborosEvent::AppendFailed { req: r, error, .. }
                    if n == at as u64 && r == req =>
                {
                    return Err(error)
                }
                _ => {}
            }
        }
        panic!("append {req} at node {at} got no answer");
    }

    #[test]
    fn a_retry_through_another_node_is_written_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let members = [0u64, 1, 2];
        let mut nodes: Vec<N> = members
            .iter()
            .map(|&m| {
                let mut n = Node::new(m, 1).with_ring(Ouroboros::new(&members, config(), false));
                n.start(Time::ZERO, &mut rng);
                n
            })
            .collect();
        let _ = pump(&mut nodes, &mut rng);
        let pr = Producer { id: 42, seq: 1 };
        let (p, o) = append(&mut nodes, 0, &mut rng, b"once", pr).unwrap();
        // The client gave up on node 0 (a timeout, say) and retries the same
        // append through nodes 1 and 2: new requests, other origins.
        assert_eq!(append(&mut nodes, 1, &mut rng, b"once", pr), Ok((p, o)));
        assert_eq!(append(&mut nodes, 2, &mut rng, b"once", pr), Ok((p, o)));
        for n in &nodes {
            let log = n.ring::<Ouroboros<u64>>().unwrap().log(p);
            assert_eq!(log.len(), 1, "written once on every replica");
            assert_eq!(log[0].producer, Some(pr));
        }
        // Its next sequence is a new record; another producer's too.
        let next = Producer { id: 42, seq: 2 };
        assert_eq!(
            append(&mut nodes, 1, &mut rng, b"two", next),
            Ok((p, o + 1))
        );
        let other = Producer { id: 43, seq: 1 };
        assert_eq!(append(&mut nodes, 1, &mut rng, b"x", other), Ok((p, o + 2)));
        // A producer that moved a window past an old sequence is refused.
        for s in 10..10 + WINDOW as u64 {
            append(&mut nodes, 2, &mut rng, b"w", Producer { id: 42, seq: s }).unwrap();
        }
        let len = nodes[0].ring::<Ouroboros<u64>>().unwrap().log(p).len();
        assert_eq!(
            append(&mut nodes, 2, &mut rng, b"once", pr),
            Err(LogError::StaleSequence)
        );
        assert_eq!(nodes[0].ring::<Ouroboros<u64>>().unwrap().log(p).len(), len);
    }

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

    #[test]
    fn a_retry_after_a_restart_is_written_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let store = Shared::default();
        let boot = |restarted: bool, rng: &mut ChaCha8Rng| {
            let records = read_all(&store).unwrap();
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
        };
        let mut nodes = vec![boot(false, &mut rng)];
        let _ = pump(&mut nodes, &mut rng);
        let pr = Producer { id: 7, seq: 3 };
        let first = append(&mut nodes, 0, &mut rng, b"v", pr).unwrap();
        // Power loss: only what was synced survives (the record was, before
        // its acknowledgement); the table is rebuilt from the replayed log.
        store.0.borrow_mut().crash(false);
        let mut nodes = vec![boot(true, &mut rng)];
        let _ = pump(&mut nodes, &mut rng);
        assert!(nodes[0].ring::<Ouroboros<u64>>().unwrap().is_restored());
        assert_eq!(append(&mut nodes, 0, &mut rng, b"v", pr), Ok(first));
        assert_eq!(
            nodes[0]
                .ring::<Ouroboros<u64>>()
                .unwrap()
                .log(first.0)
                .len(),
            1
        );
    }
}
