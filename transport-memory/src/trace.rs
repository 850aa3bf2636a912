//! The trace: every send, delivery, drop, fired timer, ring event and fault,
//! stamped with virtual time, folded into a running XXH3 hash.
//!
//! Entries are compact (ids and numbers, never formatted strings). The hash
//! covers the postcard encoding of every entry ever recorded, including the
//! ones a bounded trace has evicted, so two runs with equal hashes did the
//! same thing step for step.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use shen_rings::{RingId, Time};
use xxhash_rust::xxh3::Xxh3;

use crate::fault::Fault;

/// Why a message was not delivered.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Random loss on the link.
    Loss,
    /// A partition cut the link (at send or at arrival).
    Partition,
    /// The destination was crashed when the message arrived.
    NodeDown,
    /// The destination is not a node of this world.
    UnknownNode,
    /// Dropped on purpose through [`crate::Sim::drop_message`].
    Manual,
    /// The destination could not decode the message.
    Malformed,
    /// The destination does not run the message's ring.
    UnknownRing,
    /// The destination does not accept the message's protocol version.
    BadVersion,
    /// The message exceeded the destination's frame limit.
    TooLarge,
}

impl DropReason {
    /// The reason as a short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Partition => "partition",
            DropReason::NodeDown => "node_down",
            DropReason::UnknownNode => "unknown_node",
            DropReason::Manual => "manual",
            DropReason::Malformed => "malformed",
            DropReason::UnknownRing => "unknown_ring",
            DropReason::BadVersion => "bad_version",
            DropReason::TooLarge => "too_large",
        }
    }
}

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceKind<E> {
    /// Node `from` sent message `id` of `bytes` encoded bytes to `to`.
    Sent {
        /// Message id (unique in the world, in send order).
        id: u64,
        /// Sender.
        from: u64,
        /// Destination.
        to: u64,
        /// The ring it belongs to.
        ring: RingId,
        /// Encoded size of the envelope.
        bytes: u32,
    },
    /// Message `id` reached `to`'s node and was handled.
    Delivered {
        /// Message id.
        id: u64,
        /// Sender.
        from: u64,
        /// Destination.
        to: u64,
        /// The ring.
        ring: RingId,
    },
    /// Message `id` was dropped.
    Dropped {
        /// Message id.
        id: u64,
        /// Sender.
        from: u64,
        /// Destination.
        to: u64,
        /// The ring.
        ring: RingId,
        /// Why.
        reason: DropReason,
    },
    /// Message `id` was duplicated; the copy travels as message `copy`.
    Duplicated {
        /// The original.
        id: u64,
        /// The copy's id.
        copy: u64,
    },
    /// Message `id` arrived on a held link and is parked until released.
    Held {
        /// Message id.
        id: u64,
    },
    /// A parked message was released for delivery.
    Released {
        /// Message id.
        id: u64,
    },
    /// A timer of `node`'s ring `ring` fired.
    TimerFired {
        /// The node.
        node: u64,
        /// The ring that armed it.
        ring: RingId,
        /// The ring's timer token.
        token: u64,
    },
    /// A ring reported an event.
    Event {
        /// The node.
        node: u64,
        /// The ring.
        ring: RingId,
        /// The event.
        event: E,
    },
    /// A ring's message could not be encoded and was not sent.
    SendFailed {
        /// The node.
        node: u64,
        /// The intended destination.
        to: u64,
        /// The ring.
        ring: RingId,
    },
    /// A node (re)started with a fresh incarnation.
    NodeStarted {
        /// The node.
        node: u64,
        /// Its incarnation.
        incarnation: u32,
    },
    /// A fault or control action was applied.
    Fault(Box<Fault>),
}

/// One trace entry: what happened and when (virtual time).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceEntry<E> {
    /// Virtual time.
    pub at: Time,
    /// What happened.
    pub kind: TraceKind<E>,
}

/// How much of the trace is kept in memory. The hash always covers
/// everything.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceMode {
    /// Keep every entry.
    #[default]
    Full,
    /// Keep the most recent `n` entries (a ring buffer).
    Bounded(usize),
    /// Keep no entries; only hash them (the cheapest mode).
    HashOnly,
}

/// The hash state and entry count, without the entries (part of a world
/// snapshot).
#[derive(Clone)]
pub(crate) struct HashState {
    hasher: Box<Xxh3>,
    stage: Vec<u8>,
    total: u64,
}

impl HashState {
    /// How many entries were hashed.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}

const STAGE_FLUSH: usize = 4096;

/// The trace of one world.
pub struct Trace<E> {
    mode: TraceMode,
    entries: VecDeque<TraceEntry<E>>,
    /// Global index of `entries[0]`.
    first: u64,
    hash: HashState,
}

impl<E: Serialize + Clone> Trace<E> {
    /// An empty trace keeping entries according to `mode`.
    pub fn new(mode: TraceMode) -> Trace<E> {
        Trace {
            mode,
            entries: VecDeque::new(),
            first: 0,
            hash: HashState {
                hasher: Box::new(Xxh3::new()),
                stage: Vec::with_capacity(STAGE_FLUSH + 256),
                total: 0,
            },
        }
    }

    /// The retention mode.
    pub fn mode(&self) -> TraceMode {
        self.mode
    }

    /// Change the retention mode (evicting entries a smaller bound no
    /// longer keeps).
    pub fn set_mode(&mut self, mode: TraceMode) {
        self.mode = mode;
        self.enforce_bound();
    }

    fn enforce_bound(&mut self) {
        let keep = match self.mode {
            TraceMode::Full => return,
            TraceMode::Bounded(n) => n,
            TraceMode::HashOnly => 0,
        };
        while self.entries.len() > keep {
            self.entries.pop_front();
            self.first += 1;
        }
    }

    /// Record one entry.
    #[inline]
    pub(crate) fn record(&mut self, at: Time, kind: TraceKind<E>) {
        let entry = TraceEntry { at, kind };
        let stage = std::mem::take(&mut self.hash.stage);
        self.hash.stage = match postcard::to_extend(&entry, stage) {
            Ok(s) => s,
            Err(_) => {
                // An event type postcard cannot encode: hash a marker so the
                // entry still counts, and keep going.
                let mut s = Vec::with_capacity(STAGE_FLUSH + 256);
                s.extend_from_slice(b"\xffunencodable");
                s
            }
        };
        if self.hash.stage.len() >= STAGE_FLUSH {
            self.hash.hasher.update(&self.hash.stage);
            self.hash.stage.clear();
        }
        self.hash.total += 1;
        match self.mode {
            TraceMode::Full => self.entries.push_back(entry),
            TraceMode::Bounded(n) => {
                if n > 0 {
                    if self.entries.len() >= n {
                        self.entries.pop_front();
                        self.first += 1;
                    }
                    self.entries.push_back(entry);
                } else {
                    self.first += 1;
                }
            }
            TraceMode::HashOnly => self.first += 1,
        }
    }

    /// The XXH3-64 hash of every entry recorded so far.
    pub fn hash(&self) -> u64 {
        let mut h = (*self.hash.hasher).clone();
        h.update(&self.hash.stage);
        h.digest()
    }

    /// How many entries were recorded in total (kept or evicted).
    pub fn total(&self) -> u64 {
        self.hash.total
    }

    /// Global index of the oldest entry still kept.
    pub fn first_kept(&self) -> u64 {
        self.first
    }

    /// The entries still kept, oldest first.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &TraceEntry<E>> + '_ {
        self.entries.iter()
    }

    /// The kept entries with global index `>= from`, with their indices
    /// (for streaming new entries to a viewer).
    pub fn since(&self, from: u64) -> impl Iterator<Item = (u64, &TraceEntry<E>)> + '_ {
        let skip = from.saturating_sub(self.first);
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        self.entries
            .iter()
            .enumerate()
            .skip(skip)
            .map(move |(i, e)| (self.first + i as u64, e))
    }

    /// Drop every kept entry (the hash and count are unaffected).
    pub fn clear_kept(&mut self) {
        self.first += self.entries.len() as u64;
        self.entries.clear();
    }

    pub(crate) fn hash_state(&self) -> HashState {
        self.hash.clone()
    }

    /// Rewind to a snapshot's hash state, keeping the entries recorded
    /// before it.
    pub(crate) fn rewind(&mut self, state: &HashState) {
        let total = state.total;
        if total < self.first {
            self.first = total;
            self.entries.clear();
        } else {
            let keep = usize::try_from(total - self.first).unwrap_or(usize::MAX);
            self.entries.truncate(keep);
            if (self.first + self.entries.len() as u64) < total {
                // The entries between the kept ones and the snapshot are
                // unknown (this trace never saw them): start afresh.
                self.first = total;
                self.entries.clear();
            }
        }
        self.hash = state.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(t: &mut Trace<u8>, n: u64) {
        for i in 0..n {
            t.record(Time::from_micros(i), TraceKind::Held { id: i });
        }
    }

    #[test]
    fn hash_is_independent_of_retention() {
        let mut full = Trace::new(TraceMode::Full);
        let mut ring = Trace::new(TraceMode::Bounded(10));
        let mut none = Trace::new(TraceMode::HashOnly);
        fill(&mut full, 5000);
        fill(&mut ring, 5000);
        fill(&mut none, 5000);
        assert_eq!(full.hash(), ring.hash());
        assert_eq!(full.hash(), none.hash());
        assert_eq!(full.entries().len(), 5000);
        assert_eq!(ring.entries().len(), 10);
        assert_eq!(ring.first_kept(), 4990);
        assert_eq!(none.entries().len(), 0);
        assert_eq!(ring.since(4995).count(), 5);
        assert_eq!(ring.since(4995).next().unwrap().0, 4995);
        let mut other = Trace::new(TraceMode::HashOnly);
        fill(&mut other, 4999);
        assert_ne!(other.hash(), full.hash());
    }

    #[test]
    fn rewind_restores_hash_and_truncates() {
        let mut t = Trace::new(TraceMode::Full);
        fill(&mut t, 100);
        let st = t.hash_state();
        let h = t.hash();
        fill(&mut t, 50);
        t.rewind(&st);
        assert_eq!(t.hash(), h);
        assert_eq!(t.entries().len(), 100);
        assert_eq!(t.total(), 100);
    }
}
