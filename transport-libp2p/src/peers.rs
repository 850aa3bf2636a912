//! The peer store: peers and addresses seen, persisted in the data directory, bounded and aged out.
//!
//! A node records every Shen peer it identified and the addresses that
//! reached it (dialled addresses, advertised external addresses, relayed
//! circuit addresses). On start it dials from this store, so a restarted
//! node rejoins without `--peer`, even when the node it first contacted is
//! gone: any member's address is an introduction; there is no special seed.
//!
//! Bounds: at most [`MAX_PEERS`] peers (the least recently seen go first),
//! [`MAX_ADDRS`] addresses per peer (the newest kept), and entries unseen
//! for [`MAX_AGE_S`] are dropped. The file is JSON, written atomically
//! (temporary file + rename); an unreadable or corrupt file is logged as a
//! warning and the node starts with an empty store (it is a cache, never
//! a source of truth).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tracing::warn;

/// Most peers kept.
pub const MAX_PEERS: usize = 256;
/// Most addresses kept per peer.
pub const MAX_ADDRS: usize = 8;
/// Entries unseen for this long (seconds) are dropped: 7 days.
pub const MAX_AGE_S: u64 = 7 * 24 * 3600;

/// One peer's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// Addresses, oldest first.
    addrs: Vec<String>,
    /// Unix seconds when last seen.
    seen: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    peers: BTreeMap<String, Entry>,
}

/// Peers and their addresses, bounded.
#[derive(Debug, Default)]
pub struct PeerStore {
    path: Option<PathBuf>,
    peers: BTreeMap<PeerId, Entry>,
    dirty: bool,
}

impl PeerStore {
    /// An empty store that is never saved.
    pub fn in_memory() -> PeerStore {
        PeerStore::default()
    }

    /// Load `path` (missing: empty; corrupt: a warning, empty), dropping
    /// entries older than [`MAX_AGE_S`] at `now` (unix seconds).
    pub fn load(path: &Path, now: u64) -> PeerStore {
        let mut store = PeerStore {
            path: Some(path.to_path_buf()),
            ..PeerStore::default()
        };
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<File>(&bytes) {
                Ok(file) => {
                    for (id, mut e) in file.peers {
                        let Ok(peer) = id.parse::<PeerId>() else {
                            warn!(path = %path.display(), "peer store: skipping a bad peer id {id:?}");
                            continue;
                        };
                        e.addrs.retain(|a| a.parse::<Multiaddr>().is_ok());
                        e.addrs.dedup();
                        let extra = e.addrs.len().saturating_sub(MAX_ADDRS);
                        e.addrs.drain(..extra);
                        if !e.addrs.is_empty() {
                            store.peers.insert(peer, e);
                        }
                    }
                }
                Err(e) => warn!(
                    path = %path.display(),
                    "peer store is corrupt ({e}); starting with an empty one"
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(path = %path.display(), "cannot read the peer store ({e}); starting with an empty one")
            }
        }
        store.age_out(now);
        store.trim();
        store
    }

    /// Record that `peer` was seen at `now` with these addresses.
    pub fn record(&mut self, peer: PeerId, addrs: impl IntoIterator<Item = Multiaddr>, now: u64) {
        let e = self.peers.entry(peer).or_insert_with(|| Entry {
            addrs: Vec::new(),
            seen: now,
        });
        e.seen = e.seen.max(now);
        for a in addrs {
            let a = strip_peer(&a, peer).to_string();
            e.addrs.retain(|x| *x != a);
            e.addrs.push(a);
        }
        let extra = e.addrs.len().saturating_sub(MAX_ADDRS);
        e.addrs.drain(..extra);
        if e.addrs.is_empty() {
            self.peers.remove(&peer);
        }
        self.trim();
        self.dirty = true;
    }

    /// Drop entries unseen since `now - MAX_AGE_S`.
    pub fn age_out(&mut self, now: u64) {
        let before = self.peers.len();
        self.peers
            .retain(|_, e| now.saturating_sub(e.seen) <= MAX_AGE_S);
        self.dirty |= before != self.peers.len();
    }

    fn trim(&mut self) {
        while self.peers.len() > MAX_PEERS {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(p, e)| (e.seen, **p))
                .map(|(p, _)| *p);
            match oldest {
                Some(p) => {
                    self.peers.remove(&p);
                }
                None => break,
            }
        }
    }

    /// Every peer with its addresses, most recently seen first.
    pub fn peers(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut v: Vec<(&PeerId, &Entry)> = self.peers.iter().collect();
        v.sort_by(|a, b| b.1.seen.cmp(&a.1.seen).then(a.0.cmp(b.0)));
        v.into_iter()
            .map(|(p, e)| {
                (
                    *p,
                    e.addrs
                        .iter()
                        .rev()
                        .filter_map(|a| a.parse().ok())
                        .collect(),
                )
            })
            .collect()
    }

    /// The addresses known for `peer`, newest first.
    pub fn addrs_of(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.peers
            .get(peer)
            .map(|e| {
                e.addrs
                    .iter()
                    .rev()
                    .filter_map(|a| a.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many peers are stored.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Write the store if it changed (atomically; errors are logged).
    pub fn save(&mut self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        if !self.dirty {
            return;
        }
        let file = File {
            version: 1,
            peers: self
                .peers
                .iter()
                .map(|(p, e)| (p.to_string(), e.clone()))
                .collect(),
        };
        let result = (|| -> std::io::Result<()> {
            let dir = path.parent().unwrap_or_else(|| Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(&serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        match result {
            Ok(()) => self.dirty = false,
            Err(e) => warn!(path = %path.display(), "cannot save the peer store: {e}"),
        }
    }
}

/// `addr` without a trailing `/p2p/<peer>`.
fn strip_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    let mut a = addr.clone();
    if a.iter().last() == Some(libp2p::multiaddr::Protocol::P2p(peer)) {
        a.pop();
    }
    a
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(i: u32) -> Multiaddr {
        format!("/ip4/10.0.{}.{}/tcp/4001", i / 250, i % 250 + 1)
            .parse()
            .unwrap()
    }

    #[test]
    fn round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        let p = PeerId::random();
        let mut s = PeerStore::load(&path, 1000);
        assert!(s.is_empty());
        let with_id = addr(1).with(libp2p::multiaddr::Protocol::P2p(p));
        s.record(p, [with_id, addr(2)], 1000);
        s.save();
        let back = PeerStore::load(&path, 1001);
        assert_eq!(back.addrs_of(&p), vec![addr(2), addr(1)]);
    }

    #[test]
    fn corrupt_file_is_a_warning_and_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        std::fs::write(&path, b"{not json at all\xff").unwrap();
        let mut s = PeerStore::load(&path, 5);
        assert!(s.is_empty());
        // And it can be overwritten with a good one.
        let p = PeerId::random();
        s.record(p, [addr(3)], 5);
        s.save();
        assert_eq!(PeerStore::load(&path, 6).len(), 1);
        // Bad entries inside a valid file are skipped, good ones kept.
        std::fs::write(
            &path,
            format!(
                r#"{{"version":1,"peers":{{"nope":{{"addrs":["/ip4/1.2.3.4/tcp/1"],"seen":5}},"{p}":{{"addrs":["garbage","/ip4/1.2.3.4/tcp/1"],"seen":5}}}}}}"#
            ),
        )
        .unwrap();
        let s = PeerStore::load(&path, 6);
        assert_eq!(s.len(), 1);
        assert_eq!(s.addrs_of(&p).len(), 1);
    }

    #[test]
    fn old_entries_age_out() {
        let mut s = PeerStore::in_memory();
        let old = PeerId::random();
        let new = PeerId::random();
        s.record(old, [addr(1)], 100);
        s.record(new, [addr(2)], 100 + MAX_AGE_S);
        s.age_out(101 + MAX_AGE_S);
        assert!(s.addrs_of(&old).is_empty());
        assert_eq!(s.addrs_of(&new), vec![addr(2)]);
    }

    proptest! {
        /// Whatever is recorded, the store stays within its bounds, keeps
        /// the most recently seen peers, and the newest address of each.
        #[test]
        fn bounded(records in proptest::collection::vec((0u32..400, 0u32..40, 0u64..1000), 1..1500)) {
            let ids: Vec<PeerId> = (0..400).map(|_| PeerId::random()).collect();
            let mut s = PeerStore::in_memory();
            let mut last = std::collections::HashMap::new();
            for (i, (p, a, t)) in records.iter().enumerate() {
                let now = *t + i as u64 * 1000; // increasing time
                s.record(ids[*p as usize], [addr(*a)], now);
                last.insert(*p, (*a, now));
            }
            prop_assert!(s.len() <= MAX_PEERS);
            prop_assert_eq!(s.len(), last.len().min(MAX_PEERS));
            for (p, addrs) in s.peers() {
                prop_assert!(!addrs.is_empty() && addrs.len() <= MAX_ADDRS);
                let i = ids.iter().position(|x| *x == p).unwrap() as u32;
                prop_assert_eq!(&addrs[0], &addr(last[&i].0));
            }
            // The kept peers are the most recently seen ones.
            let mut seen: Vec<u64> = last.values().map(|(_, t)| *t).collect();
            seen.sort_unstable_by(|a, b| b.cmp(a));
            if let Some(cut) = seen.get(MAX_PEERS.saturating_sub(1)) {
                for (p, _) in s.peers() {
                    let i = ids.iter().position(|x| *x == p).unwrap() as u32;
                    prop_assert!(last[&i].1 >= *cut);
                }
            }
        }
    }
}
