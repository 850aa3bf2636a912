//! The `shen` binary's contract for bad input: one line naming the flag,
//! exit code 2, no panic.

use std::process::Command;

fn shen(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shen"))
        .args(args)
        .output()
        .expect("run shen");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ring_stats_bad_input_is_one_line_exit_2() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["ring", "stats", "--salt-candidates", "0"],
            "--salt-candidates",
        ),
        (&["ring", "stats", "--nodes", "0"], "--nodes"),
        (&["ring", "stats", "--nodes", "abc"], "--nodes"),
        (&["ring", "stats", "--vnodes", "0"], "--vnodes"),
        (&["ring", "stats", "--keys", "-5"], "--keys"),
        (&["ring", "stats", "--nodes", "2", "--rf", "3"], "--rf"),
        (&["ring", "stats", "--rf", "x"], "--rf"),
        (&["ring", "stats", "--bogus"], "--bogus"),
    ];
    for (args, flag) in cases {
        let (code, _, err) = shen(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn ring_stats_json_has_the_documented_fields() {
    let (code, out, err) = shen(&[
        "ring", "stats", "--nodes", "20", "--vnodes", "40", "--keys", "5000", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    for path in [
        "/schema",
        "/nodes",
        "/vnodes",
        "/keys",
        "/rf",
        "/seed",
        "/salt_candidates",
        "/load/max_over_mean",
        "/load/stddev",
        "/join/moved_fraction",
        "/join/ideal_fraction",
        "/join/ratio_to_ideal",
        "/join/only_expected_node",
        "/leave/moved_fraction",
        "/leave/only_expected_node",
        "/locate_ns",
        "/replicas_ns",
    ] {
        assert!(v.pointer(path).is_some(), "missing {path} in {out}");
    }
    assert_eq!(v.pointer("/nodes").and_then(|x| x.as_u64()), Some(20));
    assert_eq!(
        v.pointer("/join/only_expected_node"),
        Some(&serde_json::Value::Bool(true))
    );
}

#[test]
fn missing_subcommand_is_usage_error() {
    let (code, _, _) = shen(&[]);
    assert_eq!(code, 2);
    let (code, out, _) = shen(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("ring"));
}

/// A page world's run (a crash, then a node paused for a minute) as a
/// scenario file whose expectation fails (nobody asks for the token).
fn failing_scenario_file(
    dir: &std::path::Path,
) -> (std::path::PathBuf, shen_transport_memory::Scenario) {
    use shen_rings::Time;
    use shen_wasm_viz::script::Op;
    use shen_wasm_viz::world::{VizConfig, World};
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
    let s = w.scenario().unwrap();
    let text = s.to_toml().unwrap() + "\n[[expect]]\nevent = \"cartouche.granted\"\nmin = 1\n";
    let path = dir.join("failing.toml");
    std::fs::write(&path, text).unwrap();
    (path, s)
}

/// The page link a failing `shen sim run` seed prints parses back, through
/// the page's own hash parser, into the same scenario, and the page world
/// it opens has the trace hash the line names (and the native one at the
/// end).
#[test]
fn a_failing_seed_prints_a_page_link_that_replays_it() {
    use shen_rings::Time;
    use shen_wasm_viz::script::UrlParams;
    use shen_wasm_viz::world::{VizConfig, World};
    let dir = tempfile::tempdir().unwrap();
    let (path, scenario) = failing_scenario_file(dir.path());
    let file = path.to_str().unwrap();
    let (code, out, err) = shen(&["sim", "run", "--scenario", file, "--seed", "6"]);
    assert_eq!(code, 1, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("page: "))
        .unwrap_or_else(|| panic!("no page line: {out}"));
    let hash = line
        .strip_prefix("page: http://127.0.0.1:8080/#")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{line}"));
    let p = UrlParams::parse(hash).unwrap();
    assert_eq!((p.seed, p.nodes), (6, scenario.nodes));
    let config = VizConfig::from_url(&p).unwrap();
    assert_eq!(config.stack, scenario.stack);
    let times: Vec<u64> = p.faults.iter().map(|a| a.at_us).collect();
    let want: Vec<u64> = scenario.faults.iter().map(|f| f.at_ms * 1000).collect();
    assert_eq!(times, want);
    assert!(line.contains("views_converged at"), "{line}");
    let t = p.t_us.unwrap();
    let mut w = World::with_script(config, p.faults).unwrap();
    w.run_to(Time::from_micros(t)).unwrap();
    assert!(
        line.contains(&format!("trace hash {:016x} there", w.trace_hash())),
        "{line}"
    );
    w.run_to(Time::from_millis(scenario.duration_ms)).unwrap();
    let native = out
        .lines()
        .find_map(|l| l.split("trace hash ").nth(1))
        .and_then(|h| h.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(format!("{:016x}", w.trace_hash()), native);
    // JSON output: the line goes to stderr with the replay command.
    let (code, _, err) = shen(&["sim", "run", "--scenario", file, "--seed", "6", "--json"]);
    assert_eq!(code, 1);
    assert!(err.lines().any(|l| l == line), "{err}");
    // Many seeds: the lowest failing one gets the link.
    let (code, out, _) = shen(&["sim", "run", "--scenario", file, "--seeds", "6..8"]);
    assert_eq!(code, 1);
    assert_eq!(
        out.matches("page: http://127.0.0.1:8080/#seed=6&").count(),
        1,
        "{out}"
    );
    // A scenario the page cannot show says so.
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[[expect]]",
        "[[faults]]\nat_ms = 2000\nfault = { drift = { node = 1, ppm = 300 } }\n\n[[expect]]",
    );
    let odd = dir.path().join("drift.toml");
    std::fs::write(&odd, text).unwrap();
    let (code, out, err) = shen(&["sim", "run", "--scenario", odd.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "page: none, this scenario does not fit a page world: fault 3 at 2000 ms (drift)"
        ),
        "{out}"
    );
}
