//! `shen-checks`: the many-seed checkers that drive Shen's rings in the
//! deterministic simulator under a workload and faults and check what they
//! did — the Ouroboros history checker ([`LogConfig`]), the Cartouche token
//! checker ([`TokenConfig`]) and the Sundial gossip measurements
//! ([`GossipConfig`]).
//!
//! Each checker is a typed config implementing [`Check`]: validate it, run
//! one seed ([`Check::run_seed`], single-threaded and deterministic), and
//! fold the per-seed results in seed order ([`Check::fold`], [`Fold`]) into
//! the report. [`run_all`] does that sequentially; a caller with threads
//! (the `shen` CLI) may run seeds in parallel and fold them in seed order
//! for the same report, bit for bit. Runs and reports are `serde`
//! `Serialize` (the CLI's `--json` output).
//!
//! Like the simulator it builds for `wasm32-unknown-unknown`: no threads,
//! no wall clock, no files, no OS randomness.

#![warn(missing_docs)]

mod check;
mod gossip;
mod log;
mod stats;
mod token;

pub use check::{run_all, Check, CheckError, Fold};
pub use gossip::{theory_curve, GossipConfig, GossipFold, GossipReport, GossipRun};
pub use log::{LogConfig, LogDebug, LogFold, LogRun, Membership};
pub use stats::{nearest_rank, percentile_rounded, spread, Spread};
pub use token::{TokenConfig, TokenDebug, TokenFold, TokenReport, TokenRun, TOKEN_DEBUG_STOP};
