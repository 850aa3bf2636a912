//! Traffic counters and event counts.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};
use shen_rings::RingId;

/// Messages and bytes sent, delivered and dropped.
///
/// A message is counted as sent by its sender, delivered by its receiver
/// and dropped against its sender. Duplicates made by the network count as
/// extra sends.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Messages sent.
    pub sent: u64,
    /// Encoded bytes sent.
    pub sent_bytes: u64,
    /// Messages delivered and handled.
    pub delivered: u64,
    /// Encoded bytes delivered.
    pub delivered_bytes: u64,
    /// Messages dropped (any reason).
    pub dropped: u64,
    /// Encoded bytes dropped.
    pub dropped_bytes: u64,
}

impl AddAssign for Traffic {
    fn add_assign(&mut self, o: Traffic) {
        self.sent += o.sent;
        self.sent_bytes += o.sent_bytes;
        self.delivered += o.delivered;
        self.delivered_bytes += o.delivered_bytes;
        self.dropped += o.dropped;
        self.dropped_bytes += o.dropped_bytes;
    }
}

/// Which counter to bump.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Count {
    Sent,
    Delivered,
    Dropped,
}

impl Traffic {
    #[inline]
    pub(crate) fn bump(&mut self, c: Count, bytes: u64) {
        match c {
            Count::Sent => {
                self.sent += 1;
                self.sent_bytes += bytes;
            }
            Count::Delivered => {
                self.delivered += 1;
                self.delivered_bytes += bytes;
            }
            Count::Dropped => {
                self.dropped += 1;
                self.dropped_bytes += bytes;
            }
        }
    }
}

/// Per-ring traffic of one node: a short list searched linearly (a node
/// runs a handful of rings).
#[derive(Clone, Debug, Default)]
pub(crate) struct RingTraffic(pub(crate) Vec<(RingId, Traffic)>);

impl RingTraffic {
    #[inline]
    pub(crate) fn bump(&mut self, ring: RingId, c: Count, bytes: u64) {
        for (r, t) in self.0.iter_mut() {
            if *r == ring {
                t.bump(c, bytes);
                return;
            }
        }
        let mut t = Traffic::default();
        t.bump(c, bytes);
        self.0.push((ring, t));
        self.0.sort_by_key(|(r, _)| *r);
    }
}

/// Event counts by name: a short list searched linearly, comparing the
/// `&'static str` pointers first.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventCounts(pub(crate) Vec<(&'static str, u64)>);

impl EventCounts {
    #[inline]
    pub(crate) fn bump(&mut self, name: &'static str) {
        for (n, c) in self.0.iter_mut() {
            if core::ptr::eq(*n, name) || *n == name {
                *c += 1;
                return;
            }
        }
        self.0.push((name, 1));
    }

    pub(crate) fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    }
}
