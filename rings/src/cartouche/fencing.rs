//! Fencing numbers, the fenced resource that checks them, and the guard that proves a live grant.

use serde::{Deserialize, Serialize};

use crate::contract::Time;

/// A fencing number: `(generation, sequence)`, ordered lexicographically.
/// A generation is `round · 2^16 + creator index`, so generations are
/// unique per creator and ordered by round first.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Fencing {
    /// Token generation.
    pub generation: u64,
    /// Grant sequence within the generation.
    pub sequence: u64,
}

/// A resource guarded by fencing numbers: it accepts an action only if its
/// fencing number is at least the highest it has accepted (equal numbers are
/// several actions under one grant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FencedResource {
    highest: Option<Fencing>,
    accepted: u64,
    rejected: u64,
}

impl FencedResource {
    /// A resource that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Try an action under `fencing`; `true` if accepted.
    pub fn accept(&mut self, fencing: Fencing) -> bool {
        if self.highest.is_some_and(|h| fencing < h) {
            self.rejected += 1;
            return false;
        }
        self.highest = Some(fencing);
        self.accepted += 1;
        true
    }

    /// The highest fencing number accepted.
    pub fn highest(&self) -> Option<Fencing> {
        self.highest
    }

    /// Actions accepted / rejected.
    pub fn counts(&self) -> (u64, u64) {
        (self.accepted, self.rejected)
    }
}

/// Proof of a live grant. Carry its fencing number into every action on a
/// protected resource, and give it back to [`Cartouche::release_guard`]
/// when done. A sans-IO ring cannot observe a value being dropped: a guard
/// dropped without release keeps the grant until its lease ends (the node
/// runtime wraps it in an RAII type that sends the release on drop).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "release the guard when done; dropping it holds the grant until its lease ends"]
pub struct Guard {
    pub(super) id: u64,
    pub(super) fencing: Fencing,
    pub(super) lease_until: Time,
}

impl Guard {
    /// The request this guard answers.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The grant's fencing number.
    pub fn fencing(&self) -> Fencing {
        self.fencing
    }

    /// When the lease ends, on the holder's clock.
    pub fn lease_until(&self) -> Time {
        self.lease_until
    }
}
