//! A member's gossiped record and its liveness status: how records are ordered and digested.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::contract::NodeId;
use crate::hash::hash_bytes;

/// A member's liveness as known by the cluster.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Up.
    Alive,
    /// Suspected by at least one monitor; not yet confirmed.
    Suspect,
    /// Confirmed failed at this incarnation.
    Dead,
    /// Left gracefully at this incarnation.
    Left,
}

impl Status {
    pub(super) fn rank(self) -> u8 {
        match self {
            Status::Alive => 0,
            Status::Suspect => 1,
            Status::Dead => 2,
            Status::Left => 3,
        }
    }

    /// Alive or suspect: still counted as a member.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Alive | Status::Suspect)
    }
}

/// One member's record, as gossiped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<I> {
    /// The member.
    pub id: I,
    /// Raised only by the member itself.
    pub incarnation: u64,
    /// Liveness.
    pub status: Status,
    /// Who suspects it (only for `Suspect`), sorted, at most 8.
    pub suspectors: Vec<I>,
    /// Small published key/values, sorted by key.
    pub meta: Vec<(String, String)>,
}

impl<I: NodeId> Record<I> {
    pub(super) fn order_key(&self) -> (u64, u8, usize) {
        (self.incarnation, self.status.rank(), self.suspectors.len())
    }

    /// Whether this record should replace `other` (same member).
    pub fn supersedes(&self, other: &Record<I>) -> bool {
        self.order_key() > other.order_key()
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn digest(&self) -> u64 {
        let mut buf: Vec<u8> = Vec::with_capacity(64);
        buf.extend_from_slice(&self.id.placement_hash().to_le_bytes());
        buf.extend_from_slice(&self.incarnation.to_le_bytes());
        buf.push(self.status.rank());
        // Suspectors by identity, not just by count: two suspicions with
        // different suspectors must look different so they get merged.
        buf.extend_from_slice(&(self.suspectors.len() as u32).to_le_bytes());
        for s in &self.suspectors {
            buf.extend_from_slice(&s.placement_hash().to_le_bytes());
        }
        for (k, v) in &self.meta {
            buf.extend_from_slice(k.as_bytes());
            buf.push(0);
            buf.extend_from_slice(v.as_bytes());
            buf.push(0);
        }
        hash_bytes(&buf)
    }

    pub(super) fn encoded_len(&self) -> usize {
        postcard::serialize_with_flavor(self, postcard::ser_flavors::Size::default())
            .unwrap_or(usize::MAX)
    }
}
