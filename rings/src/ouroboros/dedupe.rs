//! Recent client requests of one partition replica: (client, request number) → offset, kept for the retry window only.
//!
//! A client operation is retried (to a new head after a chain change, say)
//! with the same request number until its deadline, at most a few request
//! timeouts after it started. The head answers a retry whose record it
//! already holds with that record's offset instead of writing it again, so
//! every replica indexes the requests of the records it holds.
//!
//! Indexing the whole log kept an entry (the client's full id, the request
//! number, the offset) in memory for every record ever held: memory that
//! grew with the log (about 170 MiB per 2 GiB of 4 KiB records with libp2p
//! peer ids). Only retries need the index, so it keeps:
//! - the entries of records whose Scarab ID time is within [`WINDOW_MS`] of
//!   the newest record's (the log's own clock: IDs increase along the log,
//!   so a head whose clock is behind cannot shorten the window), and
//! - always the newest [`KEEP_ALWAYS`] entries, whatever their age.
//!
//! A key is the client id's placement hash (XXH3-64 of its stable bytes)
//! with the request number: 16 bytes instead of a full peer id. Two clients
//! collide only if their ids hash equal *and* they use the same request
//! number within the window.
//!
//! Idempotent producers ([`super::producer`]) are deduplicated by their own
//! table, across any time span; this index covers the ring's own retries.

use alloc::collections::{BTreeMap, VecDeque};

use crate::contract::NodeId;
use crate::scarab::ScarabId;

/// How far back (in the log's Scarab ID time) requests stay indexed. A
/// retry comes within its operation's deadline (three request timeouts for
/// a transaction, 9 s by default); the rest of the window is for a new
/// head whose clock runs ahead of the old one's (its IDs then jump ahead).
/// At 6,000 appends/s into a node this is about 180,000 entries, some
/// 12 MiB.
pub(super) const WINDOW_MS: u64 = 30_000;

/// Entries always kept, however old.
pub(super) const KEEP_ALWAYS: usize = 1024;

type Key = (u64, u64);

/// See the module docs.
#[derive(Clone, Debug, Default)]
pub(super) struct RecentRequests {
    map: BTreeMap<Key, u64>,
    /// (offset, ID time, key), oldest offset first.
    order: VecDeque<(u64, u64, Key)>,
}

fn key<I: NodeId>(origin: &I, req: u64) -> Key {
    (origin.placement_hash(), req)
}

impl RecentRequests {
    /// The offset of `origin`'s request `req`, if indexed.
    pub(super) fn get<I: NodeId>(&self, origin: &I, req: u64) -> Option<u64> {
        self.map.get(&key(origin, req)).copied()
    }

    /// Index the record at offset `o` (the newest so far), with Scarab ID
    /// `id`; forget what fell out of the window.
    pub(super) fn insert<I: NodeId>(&mut self, origin: &I, req: u64, o: u64, id: u64) {
        let k = key(origin, req);
        let t = ScarabId::from_u64(id).millis();
        self.map.insert(k, o);
        self.order.push_back((o, t, k));
        // IDs increase along the log: this record is the newest.
        let newest = t;
        while self.order.len() > KEEP_ALWAYS {
            let &(old_o, old_t, old_k) = self.order.front().expect("non-empty");
            if newest.saturating_sub(old_t) <= WINDOW_MS {
                break;
            }
            self.order.pop_front();
            if self.map.get(&old_k) == Some(&old_o) {
                self.map.remove(&old_k);
            }
        }
    }

    /// Forget the entries at offsets `len` and above (the log was cut).
    pub(super) fn truncate(&mut self, len: u64) {
        while self.order.back().is_some_and(|e| e.0 >= len) {
            let (o, _, k) = self.order.pop_back().expect("non-empty");
            if self.map.get(&k) == Some(&o) {
                self.map.remove(&k);
            }
        }
        self.map.retain(|_, o| *o < len);
    }

    /// Forget everything.
    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scarab::ScarabId;

    fn id_at(ms: u64, seq: u16) -> u64 {
        ScarabId::from_parts(ms, 0, seq).unwrap().as_u64()
    }

    #[test]
    fn retries_within_the_window_are_found_and_old_ones_forgotten() {
        let mut r = RecentRequests::default();
        // 3,000 records one ms apart from client 7, then one a minute on.
        for i in 0..3_000u64 {
            r.insert(&7u64, i, i, id_at(1_000 + i, 0));
        }
        assert_eq!(r.get(&7u64, 0), Some(0));
        assert_eq!(r.get(&7u64, 2_999), Some(2_999));
        assert_eq!(r.get(&8u64, 5), None, "another client's request 5");
        r.insert(&7u64, 3_000, 3_000, id_at(1_000 + 3_000 + WINDOW_MS, 0));
        // Older than the window: forgotten, except the newest KEEP_ALWAYS.
        assert_eq!(r.get(&7u64, 0), None);
        assert_eq!(r.len(), KEEP_ALWAYS);
        assert_eq!(
            r.get(&7u64, 3_000 - KEEP_ALWAYS as u64 + 1),
            Some(3_000 - KEEP_ALWAYS as u64 + 1)
        );
        assert_eq!(r.get(&7u64, 3_000), Some(3_000));
    }

    #[test]
    fn a_cut_log_forgets_the_cut_entries_only() {
        let mut r = RecentRequests::default();
        for i in 0..10u64 {
            r.insert(&1u64, 100 + i, i, id_at(5, i as u16));
        }
        r.truncate(6);
        assert_eq!(r.get(&1u64, 105), Some(5));
        assert_eq!(r.get(&1u64, 106), None);
        // The same request written again at a new offset is found there.
        r.insert(&1u64, 106, 6, id_at(6, 0));
        assert_eq!(r.get(&1u64, 106), Some(6));
        r.clear();
        assert_eq!(r.get(&1u64, 100), None);
    }

    #[test]
    fn memory_is_bounded_by_the_window_not_the_log() {
        let mut r = RecentRequests::default();
        // 200,000 records at 1,000 per second: 200 s of log.
        for i in 0..200_000u64 {
            r.insert(&3u64, i, i, id_at(i, 0));
        }
        assert!(r.len() <= WINDOW_MS as usize + 2, "{}", r.len());
    }
}
