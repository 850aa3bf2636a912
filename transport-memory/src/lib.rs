//! `shen-transport-memory`: the deterministic simulator that drives Shen's
//! sans-IO rings in virtual time over an in-memory network. It is at once
//! the in-memory transport the browser uses, the test harness for every
//! ring, and the engine behind `shen sim`.
//!
//! A [`Sim`] hosts any number of nodes — each one
//! [`shen_rings::node::Node<u64, E>`](shen_rings::node::Node), built by a
//! [`NodeFactory`] (or from a [`StackConfig`](shen_rings::stack::StackConfig)
//! with [`Sim::with_stack`]) — on one thread, with a virtual clock, seeded
//! ChaCha RNGs and an event queue ordered by `(time, sequence)`. Nothing in
//! it reads a wall clock, spawns a thread or asks the OS for randomness, so
//! it builds for `wasm32-unknown-unknown` and the same seed and inputs give
//! the same run, bit for bit, on every target: every run has a
//! [trace hash](Sim::trace_hash) to prove it.
//!
//! - Faults ([`Fault`]), scheduled at a virtual time or applied live:
//!   crash and restart (with the disk kept, its un-fsynced writes lost, or
//!   lost entirely — see [`SimDisk`]), partitions (any grouping, one-way or
//!   two-way) and heal, per-link and global latency / loss / duplication /
//!   reordering ([`NetConfig`]), holding and releasing a link, dropping or
//!   duplicating one in-flight message, clock skew and drift, and pauses.
//! - Observing: the [`Trace`] (full, bounded or hash-only), per-node and
//!   per-ring [`Traffic`] counters, event counts, [snapshots](Sim::snapshot)
//!   and restore.
//! - [`Scenario`]s (TOML or JSON) with expectations, producing a
//!   [`RunReport`].
//!
//! ```
//! use shen_rings::stack::{RelayConfig, StackConfig};
//! use shen_rings::Time;
//! use shen_transport_memory::{Sim, SimConfig};
//!
//! let stack = StackConfig { relay: Some(RelayConfig::default()), ..StackConfig::default() };
//! let config = SimConfig { seed: 7, nodes: 5, ..SimConfig::default() };
//! let mut sim = Sim::with_stack(config.clone(), stack.clone()).unwrap();
//! sim.partition(vec![vec![0, 1], vec![2, 3, 4]]).unwrap();
//! sim.run_until(Time::from_millis(500));
//! sim.heal().unwrap();
//! sim.run_until(Time::from_millis(3_000));
//! assert!(sim.event_count("relay.lap_completed") > 0);
//!
//! // Same seed, same calls: same trace.
//! let mut again = Sim::with_stack(config, stack).unwrap();
//! again.partition(vec![vec![0, 1], vec![2, 3, 4]]).unwrap();
//! again.run_until(Time::from_millis(500));
//! again.heal().unwrap();
//! again.run_until(Time::from_millis(3_000));
//! assert_eq!(again.trace_hash(), sim.trace_hash());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod disk;
pub mod event;
pub mod fault;
pub mod loadgen;
pub mod net;
mod rng;
pub mod scenario;
pub mod sim;
pub mod stats;
pub mod trace;

pub use crate::disk::{
    DiskContents, DiskFault, RestartMode, SimCell, SimCellError, SimDisk, SimRecord, SimWal,
    SimWalError,
};
pub use crate::event::SimEvent;
pub use crate::fault::Fault;
pub use crate::net::{Latency, NetConfig};
pub use crate::rng::SimRng;
pub use crate::scenario::{
    Expectation, ExpectationResult, RunReport, Scenario, ScenarioError, ScheduledFault,
    MAX_SCENARIO_NODES,
};
pub use crate::sim::{
    stack_factory, Choice, InFlight, NodeFactory, NodeInit, NodeStatus, Sim, SimConfig, SimError,
    Snapshot, MAX_NODES,
};
pub use crate::stats::Traffic;
pub use crate::trace::{DropReason, Trace, TraceEntry, TraceKind, TraceMode};
