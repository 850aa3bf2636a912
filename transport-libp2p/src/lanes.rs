//! Lanes: control messages never wait behind bulk data to or from the same peer.
//!
//! The host names the rings whose messages are bulk ([`Config::bulk_rings`](crate::Config),
//! e.g. the log's chain replication); every other ring's messages
//! (membership probes and gossip, token passing) are control. Each lane to a
//! peer has its own stream, writer task and bounded queue, and on the
//! receiving side its own bounded channel into the event loop, so:
//! - a failure detector's probe is never queued behind megabytes of records
//!   (before lanes, a replica being refilled at full speed got its probes
//!   seconds late, was suspected, and had its connection closed as stale);
//! - a full bulk lane back-pressures only the bulk stream's reader.
//!
//! Order is kept within a lane (so within a ring), not across lanes; rings
//! are independent state machines and already tolerate loss and reordering.
//! Each outbound lane is bounded both in frames and in bytes (a queue of
//! 1 MiB frames bounded only by count could hold a gigabyte); a frame that
//! does not fit is dropped and counted, as before.
//!
//! Which lane a ring takes is configuration, not protocol knowledge: the
//! transport knows ring ids only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use shen_rings::RingId;

/// One of a peer's two lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// Every ring not named bulk.
    Control,
    /// The rings named in `Config::bulk_rings`.
    Bulk,
}

/// Frames one outbound lane may queue.
pub(crate) const QUEUE_FRAMES: usize = 1024;
/// Bytes one outbound lane may queue (frames are at most 1 MiB).
pub(crate) const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Bulk frames the event loop's inbound channel holds (each at most 1 MiB;
/// the control channel holds 4,096 small ones).
pub(crate) const INBOUND_BULK_FRAMES: usize = 32;

/// Which lane `ring` travels in.
pub(crate) fn lane_of(bulk: &[RingId], ring: RingId) -> Lane {
    if bulk.contains(&ring) {
        Lane::Bulk
    } else {
        Lane::Control
    }
}

/// The bytes queued in one outbound lane, shared by the loop (which adds)
/// and the lane's writer (which subtracts once written).
#[derive(Debug, Clone, Default)]
pub(crate) struct Queued(Arc<AtomicUsize>);

impl Queued {
    /// Reserve `n` bytes if they fit under [`QUEUE_BYTES`] (a frame alone
    /// always fits an empty lane).
    pub(crate) fn reserve(&self, n: usize) -> bool {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            if cur > 0 && cur + n > QUEUE_BYTES {
                return false;
            }
            match self
                .0
                .compare_exchange_weak(cur, cur + n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Give back `n` reserved bytes (written, or not queued after all).
    pub(crate) fn release(&self, n: usize) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(n))
            });
    }

    /// The bytes queued now.
    pub(crate) fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_named_bulk_take_the_bulk_lane() {
        let bulk = [RingId::OUROBOROS];
        assert_eq!(lane_of(&bulk, RingId::OUROBOROS), Lane::Bulk);
        for r in [
            RingId::SUNDIAL,
            RingId::CARTOUCHE,
            RingId::ANKH,
            RingId::RELAY,
        ] {
            assert_eq!(lane_of(&bulk, r), Lane::Control, "{r:?}");
        }
        // No bulk rings: one lane, as before lanes.
        assert_eq!(lane_of(&[], RingId::OUROBOROS), Lane::Control);
    }

    #[test]
    fn a_lane_is_bounded_in_bytes() {
        let q = Queued::default();
        // A frame alone always fits, even a large one.
        assert!(q.reserve(QUEUE_BYTES + 1));
        assert!(!q.reserve(1));
        q.release(QUEUE_BYTES + 1);
        assert_eq!(q.bytes(), 0);
        let frame = 256 * 1024;
        let fit = QUEUE_BYTES / frame;
        for k in 0..fit {
            assert!(q.reserve(frame), "frame {k}");
        }
        assert!(!q.reserve(frame), "one more than fits");
        assert!(q.reserve(0) || q.bytes() == QUEUE_BYTES);
        q.release(frame);
        assert!(q.reserve(frame), "room again once one is written");
        // Releasing more than is held never wraps.
        q.release(usize::MAX);
        assert_eq!(q.bytes(), 0);
    }
}
