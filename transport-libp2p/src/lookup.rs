//! When to look an unreachable peer up in the DHT: at most once per peer per interval, with a bounded memory of past lookups.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// At most one DHT lookup of a peer we cannot reach per this long.
pub(crate) const LOOKUP_EVERY: Duration = Duration::from_secs(3);
/// Peers whose last lookup time is remembered (older ones are forgotten).
pub(crate) const MAX_LOOKUPS_KEPT: usize = 1024;

/// The last lookup of each peer (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Lookups {
    last: HashMap<PeerId, Instant>,
}

impl Lookups {
    /// Whether `peer` may be looked up at `now`; if so, it is recorded.
    pub(crate) fn due(&mut self, peer: PeerId, now: Instant) -> bool {
        if self
            .last
            .get(&peer)
            .is_some_and(|t| now.duration_since(*t) < LOOKUP_EVERY)
        {
            return false;
        }
        if self.last.len() >= MAX_LOOKUPS_KEPT {
            self.last
                .retain(|_, t| now.duration_since(*t) < LOOKUP_EVERY);
        }
        self.last.insert(peer, now);
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lookup_per_peer_per_interval() {
        let mut l = Lookups::default();
        let t0 = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(l.due(a, t0));
        assert!(!l.due(a, t0 + Duration::from_millis(10)));
        assert!(l.due(b, t0 + Duration::from_millis(10)), "another peer");
        assert!(l.due(a, t0 + LOOKUP_EVERY));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut l = Lookups::default();
        let t0 = Instant::now();
        for i in 0..5_000u64 {
            assert!(l.due(PeerId::random(), t0 + LOOKUP_EVERY * i as u32));
        }
        assert!(l.len() <= MAX_LOOKUPS_KEPT, "{}", l.len());
    }
}
