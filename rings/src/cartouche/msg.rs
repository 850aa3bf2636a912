//! Cartouche's wire: the token, the requests it carries, the messages and the events.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::Fencing;

/// A pending request for the token.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Request<I> {
    /// When it was made (requester's clock, µs) — the queue's first key.
    pub at: u64,
    /// The requester — the queue's second key.
    pub node: I,
    /// Requester-local id.
    pub id: u64,
    /// The critical section's name.
    pub name: String,
    /// The token's hop count when the requester last saw it. A request
    /// whose requester the token has not reached for two circulations (it
    /// crashed or is cut off) is dropped from the queue so it cannot block
    /// everyone behind it; the requester re-adds it, with its original
    /// time, on the next visit.
    pub refreshed: u64,
}

/// The token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token<I> {
    /// Generation.
    pub generation: u64,
    /// Last granted sequence number.
    pub sequence: u64,
    /// Hops made in this generation (orders copies of one token).
    pub hops: u64,
    /// Pending requests, FIFO by (time, node, id).
    pub queue: Vec<Request<I>>,
}

/// Cartouche's wire messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartoucheMsg<I> {
    /// The token, passed clockwise.
    Token(Token<I>),
    /// The token arrived (hand-off acknowledgement).
    TokenAck {
        /// Its generation.
        generation: u64,
        /// Its hop count.
        hops: u64,
    },
    /// "May I grant `fencing`?"
    Confirm {
        /// The grant to be.
        fencing: Fencing,
    },
    /// Answer to `Confirm`.
    ConfirmAck {
        /// The grant asked about.
        fencing: Fencing,
        /// Acknowledged.
        ok: bool,
        /// The member's promised generation.
        promised: u64,
        /// The highest fencing number the member acknowledged.
        confirmed: Fencing,
    },
    /// "Does the token look lost to you too?" (no state changes).
    PreVote {
        /// The generation the candidate would create.
        generation: u64,
    },
    /// Answer to `PreVote`.
    PreVoteReply {
        /// The generation asked about.
        generation: u64,
        /// Agrees the token looks lost.
        ok: bool,
    },
    /// "Promise generation `generation`."
    Prepare {
        /// The generation to create.
        generation: u64,
    },
    /// Answer to `Prepare`.
    Promise {
        /// The generation asked about.
        generation: u64,
        /// Promised.
        ok: bool,
        /// The member's promised generation.
        promised: u64,
        /// The member's highest acknowledged fencing number.
        confirmed: Fencing,
        /// The member's own pending requests (carried into the new token).
        requests: Vec<Request<I>>,
    },
    /// "I want the token" (multicast by a requester that does not hold
    /// it): a member holding an *idle* token sends it straight to the
    /// requester instead of letting it walk the ring. Only a shortcut: the
    /// request also rides the token when it next visits the requester.
    Want {
        /// The request.
        request: Request<I>,
    },
}

/// What Cartouche reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartoucheEvent {
    /// This node was granted request `id`.
    Granted {
        /// Request id.
        id: u64,
        /// Its fencing number.
        fencing: Fencing,
        /// Local time the lease ends (µs, holder's clock).
        lease_until: u64,
    },
    /// This node released a grant.
    Released {
        /// Request id.
        id: u64,
        /// Its fencing number.
        fencing: Fencing,
    },
    /// A grant's lease ran out before release.
    LeaseExpired {
        /// Request id.
        id: u64,
        /// Its fencing number.
        fencing: Fencing,
    },
    /// This node created a new generation.
    Regenerated {
        /// The new generation.
        generation: u64,
    },
    /// This node suspects the token is lost and asks for promises.
    Candidate {
        /// The generation it proposes.
        generation: u64,
    },
    /// A stale or duplicate token was dropped here.
    TokenDiscarded {
        /// Its generation.
        generation: u64,
        /// Its sequence.
        sequence: u64,
    },
    /// A request was queued at this node.
    Requested {
        /// Request id.
        id: u64,
    },
}
