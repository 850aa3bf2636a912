//! The example scenarios in `scenarios/` load, pass, and stay deterministic.

use std::path::PathBuf;

use shen_rings::Time;
use shen_transport_memory::{Scenario, TraceMode};

fn scenario_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("toml" | "json")
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn example_scenarios_pass_for_many_seeds() {
    let files = scenario_files();
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        let s = Scenario::load(&text, &name).unwrap_or_else(|e| panic!("{e}"));
        let first = s.run(s.seed, TraceMode::HashOnly).unwrap();
        assert!(first.passed, "{name}: {:?}", first.expectations);
        assert_eq!(s.run(s.seed, TraceMode::HashOnly).unwrap(), first, "{name}");
        for seed in 0..50 {
            let r = s.run(seed, TraceMode::HashOnly).unwrap();
            assert!(r.passed, "{name} seed {seed}: {:?}", r.expectations);
        }
        // the URL form round-trips to the same run
        let again = Scenario::load(&s.to_json(), "url.json").unwrap();
        assert_eq!(again, s);
        let mut sim = again.build(s.seed, TraceMode::HashOnly).unwrap();
        sim.run_until(Time::from_millis(s.duration_ms));
        assert_eq!(format!("{:016x}", sim.trace_hash()), first.trace_hash);
    }
}
