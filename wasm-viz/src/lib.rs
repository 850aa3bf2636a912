//! `shen-wasm-viz`: the browser simulator. Shen's sans-IO rings run in the
//! deterministic simulator ([`shen_transport_memory`]) compiled to
//! `wasm32-unknown-unknown`; a static page (`wasm-viz/www/`) draws them on a
//! `<canvas>` and lets you break them: crash and restart nodes, partition
//! and heal, set loss and latency, drop a message or the token, scrub the
//! timeline, and share a link that replays the same run.
//!
//! The logic is plain Rust, tested natively (`cargo test -p shen-wasm-viz`):
//!
//! - [`world`]: the engine: a [`shen_transport_memory::Sim`] running the
//!   standard stack, the user's actions (scheduled so a replay is the same
//!   run bit for bit), timeline snapshots, the invariants.
//! - [`invariants`]: what is read from the rings at each check point and
//!   the invariants checked on it.
//! - [`log`]: the Shen log (Ouroboros) in a *log world*: client operations
//!   issued from the page, every replica's log, the log invariants' data.
//! - [`narrate`]: ring events told in plain words, for the event log.
//! - [`script`]: the fault script and the URL hash.
//! - [`compare`]: side by side: two worlds differing in one setting, one
//!   URL hash.
//! - [`figures`]: a run's key figures (convergence, detection, token
//!   acquisitions, keys moved), what side by side compares.
//! - [`link`]: a scenario and seed as the page link that replays it, at
//!   its first invariant violation (`shen sim run` prints it on failure).
//! - [`state`]: the exported JSON state (the page's test and bench hook).
//! - [`spacetime`]: the space-time (Lamport) diagram: lanes, arrows, drops
//!   and crashes, recorded from the trace.
//! - [`keys`]: Ankh's sample keys: dots in their owner's colour, the keys
//!   a join or leave moves (against the ideal share), a key's replica walk.
//! - [`explain`]: every message kind of every ring decoded and explained.
//! - [`layout`]: where nodes sit: hash order kept, spread so none overlap.
//! - [`render`]: the scene: the world as canvas shapes.
//! - [`live`]: live mode: a running cluster's `/status` and `/events` drawn
//!   with the same shapes, and forked into a simulator link.
//! - [`web`]: the thin wasm-bindgen layer (`Viz`, `traceHash`) and the
//!   web-sys painter.
//!
//! [`trace_hash`] runs a scenario for one seed and returns its trace hash,
//! the value `shen sim run --scenario FILE --seed S --json` prints;
//! `scripts/wasm-determinism.mjs` compares the two, seed by seed, through
//! the wasm module (`traceHash` export).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use shen_rings::Time;
use shen_transport_memory::{Scenario, TraceMode};

pub mod compare;
pub mod explain;
pub mod figures;
pub mod invariants;
pub mod keys;
pub mod layout;
pub mod link;
pub mod live;
pub mod log;
pub mod narrate;
pub mod render;
pub mod script;
pub mod spacetime;
pub mod state;
pub mod web;
pub mod world;

/// Run a scenario to its end with `seed` (instead of the scenario's own
/// seed) and return the run's trace hash (XXH3-64 of the whole trace).
///
/// `scenario_toml` is a scenario file's text: TOML, or JSON when it starts
/// with `{` (as [`Scenario::load`] decides). It is validated as `shen sim run`
/// validates it, and the run is the one `shen sim run --seed SEED` makes, so
/// the result, as 16 lowercase hex digits, is that command's `trace_hash`.
///
/// # Errors
///
/// The scenario's parse or validation error (naming the field), or the
/// error building its world, as text.
///
/// ```
/// let scenario = r#"
/// name = "doc"
/// nodes = 3
/// duration_ms = 500
/// [stack.relay]
/// lap_timeout_ms = 50
/// "#;
/// let a = shen_wasm_viz::trace_hash(scenario, 1).unwrap();
/// assert_eq!(a, shen_wasm_viz::trace_hash(scenario, 1).unwrap());
/// assert_ne!(a, shen_wasm_viz::trace_hash(scenario, 2).unwrap());
/// ```
pub fn trace_hash(scenario_toml: &str, seed: u64) -> Result<u64, String> {
    let scenario = Scenario::load(scenario_toml, "scenario").map_err(|e| e.to_string())?;
    let mut sim = scenario
        .build(seed, TraceMode::HashOnly)
        .map_err(|e| e.to_string())?;
    sim.run_until(Time::from_millis(scenario.duration_ms));
    Ok(sim.trace_hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAOS: &str = include_str!("../../scenarios/relay-chaos.toml");
    const LOSSY_JSON: &str = include_str!("../../scenarios/relay-lossy.json");

    #[test]
    fn same_seed_same_hash_other_seed_other_hash() {
        let a = trace_hash(CHAOS, 7).unwrap();
        assert_eq!(trace_hash(CHAOS, 7).unwrap(), a);
        let b = trace_hash(CHAOS, 8).unwrap();
        assert_ne!(a, b);
        assert_ne!(trace_hash(CHAOS, 0).unwrap(), a);
    }

    #[test]
    fn matches_the_report_of_shen_sim_run() {
        for (text, source) in [
            (CHAOS, "relay-chaos.toml"),
            (LOSSY_JSON, "relay-lossy.json"),
        ] {
            let scenario = Scenario::load(text, source).unwrap();
            for seed in [0, 3, u64::MAX] {
                let report = scenario.run(seed, TraceMode::HashOnly).unwrap();
                let ours = trace_hash(text, seed).unwrap();
                assert_eq!(
                    format!("{ours:016x}"),
                    report.trace_hash,
                    "{source} seed {seed}"
                );
            }
        }
    }

    #[test]
    fn bad_scenarios_are_errors_naming_the_field() {
        let e = trace_hash(
            "name = \"x\"\nnodes = 0\nduration_ms = 5\n[stack.relay]\n",
            1,
        )
        .unwrap_err();
        assert!(e.contains("`nodes`"), "{e}");
        assert!(trace_hash("not toml [", 1).is_err());
        assert!(trace_hash("", 1).is_err());
    }
}
