//! The page link a failing seed prints: `shen viz`'s address with the
//! URL hash that replays the seed in the browser simulator, opened at the
//! page's first invariant violation with the same trace hash, or, when the
//! scenario does not fit a page world, why not.

use shen_transport_memory::Scenario;
use shen_wasm_viz::link::page_run;

use crate::cli::viz::DEFAULT_PORT;

/// The page's address (as `shen viz` serves it by default) for `hash`.
pub fn page_url(hash: &str) -> String {
    format!("http://127.0.0.1:{DEFAULT_PORT}/#{hash}")
}

/// The `page: ...` line for seed `seed` of `scenario`, whose native run
/// ended with trace hash `native_hash` (16 hex digits): the link, where it
/// opens and the trace hash there; or why there is none.
pub fn page_line(scenario: &Scenario, seed: u64, native_hash: &str) -> String {
    match page_run(scenario, seed) {
        Err(why) => format!("page: none, this scenario does not fit a page world: {why}"),
        Ok(run) if run.trace_hash_at_end != native_hash => format!(
            "page: none, the page's replay of this seed ends with trace hash {} instead of {native_hash} \
             (a determinism bug: please report it)",
            run.trace_hash_at_end
        ),
        Ok(run) => {
            let secs = run.t_us as f64 / 1e6;
            let at = match run.violation {
                Some(name) => format!("opens at the first invariant violation, {name} at {secs:.3} s"),
                None => format!(
                    "opens at the end, {secs:.3} s, where the expectations failed (no page invariant \
                     fails before)"
                ),
            };
            format!(
                "page: {} ({at}; trace hash {} there; serve the page with `shen viz`)",
                page_url(&run.hash),
                run.trace_hash_at_t
            )
        }
    }
}

/// What `shen sim token` prints for a failing seed.
pub const TOKEN_NO_PAGE: &str = "page: none, the token checker's world does not fit a page world \
    (its clients take and release the token on their own under load, and its faults include clock \
    drift, which the page lacks)";

/// What `shen sim log` prints for a failing seed.
pub const LOG_NO_PAGE: &str = "page: none, the log checker's world does not fit a page world \
    (its clients keep appending and reading under load over 16 partitions, and its faults include \
    duplication, reordering and clock drift, which the page lacks)";

#[cfg(test)]
mod tests {
    use super::*;
    use shen_rings::Time;
    use shen_transport_memory::{Expectation, Fault, ScheduledFault, TraceMode};
    use shen_wasm_viz::script::{Op, UrlParams};
    use shen_wasm_viz::world::{VizConfig, World};

    /// A page world's run (a crash, a minute's pause) as a scenario file,
    /// with an expectation that fails.
    pub(crate) fn failing_scenario() -> Scenario {
        let mut w = World::new(VizConfig::new(1, 5)).unwrap();
        w.run_to(Time::from_millis(800)).unwrap();
        w.act(Op::Crash(4)).unwrap();
        w.run_to(Time::from_millis(1_000)).unwrap();
        w.act(Op::Pause {
            node: 2,
            ms: 60_000.0,
        })
        .unwrap();
        w.run_to(Time::from_millis(30_000)).unwrap();
        let mut s = w.scenario().unwrap();
        // Nobody asks for the token: no grant, the expectation fails.
        s.expect = vec![Expectation {
            event: "cartouche.granted".into(),
            node: None,
            min: Some(1),
            max: None,
        }];
        s
    }

    fn native(s: &Scenario, seed: u64) -> String {
        let mut sim = s.build(seed, TraceMode::HashOnly).unwrap();
        sim.run_until(Time::from_millis(s.duration_ms));
        s.report(&sim).trace_hash
    }

    /// The printed link parses back, through the page's own parser, into
    /// the same scenario and replays to the trace hash it names.
    #[test]
    fn a_failing_seed_links_to_its_run() {
        let s = failing_scenario();
        let seed = 6;
        let native = native(&s, seed);
        let line = page_line(&s, seed, &native);
        let url = line
            .strip_prefix("page: ")
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{line}"));
        let hash = url
            .strip_prefix(&format!("http://127.0.0.1:{DEFAULT_PORT}/#"))
            .unwrap_or_else(|| panic!("{line}"));
        let p = UrlParams::parse(hash).unwrap();
        let config = VizConfig::from_url(&p).unwrap();
        assert_eq!((p.seed, p.nodes), (seed, s.nodes));
        assert_eq!(config.stack, s.stack);
        let faults: Vec<(u64, String)> = s
            .faults
            .iter()
            .map(|f| (f.at_ms * 1000, f.fault.kind().to_string()))
            .collect();
        let back: Vec<(u64, String)> = p
            .faults
            .iter()
            .map(|a| {
                (
                    a.at_us,
                    a.to_string().split(':').nth(1).unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(back.len(), faults.len());
        assert_eq!(back[0], (faults[0].0, "crash".into()));
        assert_eq!(back[1], (faults[1].0, "pause".into()));
        // The page opens where the views first failed to converge ...
        assert!(
            line.contains("first invariant violation, views_converged at"),
            "{line}"
        );
        let t = p.t_us.unwrap();
        assert!(t > 20_000_000 && t < s.duration_ms * 1000, "{t}");
        // ... with the trace hash the line names there, and the whole run
        // is the native one.
        let mut w = World::with_script(config.clone(), p.faults.clone()).unwrap();
        w.run_to(Time::from_micros(t)).unwrap();
        assert!(
            line.contains(&format!("trace hash {:016x} there", w.trace_hash())),
            "{line}"
        );
        w.run_to(Time::from_millis(s.duration_ms)).unwrap();
        assert_eq!(format!("{:016x}", w.trace_hash()), native);
        assert!(
            !s.report(&{
                let mut sim = s.build(seed, TraceMode::HashOnly).unwrap();
                sim.run_until(Time::from_millis(s.duration_ms));
                sim
            })
            .passed
        );
    }

    #[test]
    fn a_scenario_the_page_cannot_show_says_why() {
        let mut s = failing_scenario();
        s.faults.push(ScheduledFault {
            at_ms: 2_000,
            fault: Fault::DuplicateMessage(3),
        });
        let line = page_line(&s, 1, "0");
        assert!(
            line.starts_with(
                "page: none, this scenario does not fit a page world: fault 3 at 2000 ms"
            ) && line.contains("no `duplicate_message` fault"),
            "{line}"
        );
        let mut s = failing_scenario();
        s.nodes = 5_000;
        assert!(page_line(&s, 1, "0").contains("5000 nodes"));
        // A replay that does not end where the native run did is not
        // passed off as the same run.
        let s = failing_scenario();
        assert!(page_line(&s, 1, "0000000000000000").contains("determinism bug"));
    }
}
