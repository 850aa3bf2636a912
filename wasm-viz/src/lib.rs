//! `shen-wasm-viz`: the browser simulator. Shen's sans-IO rings run in the
//! deterministic simulator ([`shen_transport_memory`]) compiled to
//! `wasm32-unknown-unknown`, so a web page can replay any scenario and seed
//! exactly as `shen sim run` does on a server.
//!
//! Today the crate exports the simulator's determinism probe: [`trace_hash`]
//! runs a scenario for one seed and returns the run's trace hash, the value
//! `shen sim run --scenario FILE --seed S --json` prints as `trace_hash`.
//! CI (`scripts/wasm-determinism.mjs`) calls it through the wasm module and
//! checks it against the native binary, seed by seed: the same scenario and
//! seed must give the same run, bit for bit, natively and in wasm. The canvas
//! UI comes with issue 8.
//!
//! # The wasm module
//!
//! `scripts/build-wasm.sh` builds `shen_wasm_viz.wasm` (the cdylib). It needs
//! no imports (instantiate it with `{}`) and has no wasm-bindgen glue: its
//! exports are plain C-ABI functions over its linear memory (see [`ffi`],
//! built for wasm32 only):
//!
//! | export | wasm signature | what |
//! |---|---|---|
//! | `memory` | | the linear memory |
//! | `shen_alloc` | `(len: i32) -> i32` | allocate `len` bytes, return the pointer |
//! | `shen_free` | `(ptr: i32, len: i32)` | free what `shen_alloc(len)` returned |
//! | `shen_trace_hash` | `(ptr: i32, len: i32, seed: i64) -> i64` | [`trace_hash`] of the UTF-8 scenario at `ptr`; 0 on error |
//! | `shen_error_len` | `() -> i32` | byte length of the last call's error, 0 if it succeeded |
//! | `shen_error_ptr` | `() -> i32` | pointer to that UTF-8 message |
//!
//! ```js
//! const { instance } = await WebAssembly.instantiate(bytes, {});
//! const x = instance.exports;
//! const text = new TextEncoder().encode(scenarioToml);
//! const ptr = x.shen_alloc(text.length);
//! new Uint8Array(x.memory.buffer, ptr, text.length).set(text);
//! const hash = BigInt.asUintN(64, x.shen_trace_hash(ptr, text.length, 7n));
//! if (x.shen_error_len() !== 0) { /* read the message at shen_error_ptr() */ }
//! x.shen_free(ptr, text.length);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

use shen_rings::Time;
use shen_transport_memory::{Scenario, TraceMode};

#[cfg(any(target_arch = "wasm32", test, doc))]
pub mod ffi;

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
