//! `shen-rings`: Shen's ring protocols as sans-IO state machines.
//!
//! Every ring here is a plain value driven by a transport: input is the
//! current [`Time`], a seeded RNG and one event (peer message,
//! fired timer, membership hook or local command); output is messages to
//! send, timers to set and observable events ([`Output`]). No clocks,
//! sockets, threads or global randomness live in this crate, so it compiles
//! to `wasm32-unknown-unknown` and the same inputs give the same outputs bit
//! for bit.
//!
//! - [`contract`]: the contract (node ids, time, timers, output buffer, [`Ring`]).
//! - [`node`]: the composition point hosting several rings behind one envelope type.
//! - [`order`]: shared ring state (clockwise order, successor/predecessor, reconfiguration).
//! - [`wire`]: the versioned postcard envelope with a frame-size limit.
//! - [`ankh`]: Ankh Ring, consistent hashing with virtual nodes and hand-off plans.
//! - [`phi`]: the phi-accrual failure detector (deterministic math via `libm`).
//! - [`obelisk`]: Obelisk, the crash-safe sequencer (storage behind a trait).
//! - [`logstore`]: the durable append-only record log behind each partition (trait + in-memory model).
//! - [`scarab`]: Scarab IDs, 64-bit time-sortable identifiers.
//! - [`sundial`]: Sundial Circle, gossip membership with phi-accrual failure detection.
//! - [`cartouche`]: Cartouche Ring, token-passing mutual exclusion with safe regeneration and fencing.
//! - [`ouroboros`]: Ouroboros Circle, chain replication of the log partitions (epochs, Paxos-agreed chain table, stale-free tail reads).
//! - [`stack`]: the standard ring stack (settings, node-wide events, node builder).
//! - [`toy`]: Relay, a small teaching ring used to exercise drivers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod ankh;
pub mod cartouche;
pub mod contract;
pub mod hash;
pub mod logstore;
pub mod node;
pub mod obelisk;
pub mod order;
pub mod ouroboros;
pub mod phi;
pub mod scarab;
pub mod stack;
pub mod sundial;
pub mod toy;
pub mod wire;

pub use crate::contract::{
    Ctx, NodeId, Output, Ring, RingCtx, RingId, Time, TimerSlot, TimerToken,
};
pub use crate::node::{Node, NodeOutput, TimerKey};
pub use crate::order::{Placement, RingOrder};
pub use crate::wire::{Envelope, WireError};
