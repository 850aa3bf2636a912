//! `--jobs` of the many-seed checkers (`shen sim token|log|gossip`): seeds
//! run on N threads give byte for byte the output of one thread.

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

/// Run `args` with `--jobs 1` and `--jobs 3`; both succeed with the same
/// stdout, and nothing on stderr (not a terminal: no progress bar).
fn same_output(args: &[&str]) -> String {
    let run = |jobs: &str| {
        let mut a = args.to_vec();
        a.extend(["--jobs", jobs]);
        let (code, out, err) = shen(&a);
        assert_eq!(code, 0, "{a:?}: {err}");
        assert_eq!(err, "", "{a:?}");
        out
    };
    let one = run("1");
    assert_eq!(one, run("3"), "{args:?}");
    one
}

fn seeds_of(runs: &[serde_json::Value]) -> Vec<u64> {
    runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect()
}

#[test]
fn token_jobs_give_the_same_report() {
    let out = same_output(&["sim", "token", "--runs", "6", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"], 6);
    assert!(v["acquisitions"].as_u64().unwrap() > 600, "{out}");
    assert_eq!(v["violations"], 0, "{out}");
    // The text form too.
    let text = same_output(&["sim", "token", "--runs", "4", "--seed", "9"]);
    assert!(text.contains("Cartouche: 5 nodes, 4 run(s)"), "{text}");
}

#[test]
fn log_jobs_give_the_same_runs_in_seed_order() {
    let out = same_output(&[
        "sim",
        "log",
        "--runs",
        "3",
        "--seed",
        "4",
        "--duration-s",
        "3",
        "--partitions",
        "4",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let runs = v.as_array().unwrap();
    assert_eq!(seeds_of(runs), [4, 5, 6]);
    assert!(
        runs.iter().all(|r| r["acked"].as_u64().unwrap() > 0),
        "{out}"
    );
}

#[test]
fn gossip_jobs_give_the_same_report() {
    let out = same_output(&[
        "sim",
        "gossip",
        "--nodes",
        "30",
        "--runs",
        "4",
        "--steady-s",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let runs = v["per_run"].as_array().unwrap();
    assert_eq!(seeds_of(runs), [1, 2, 3, 4]);
    // Different seeds crash different nodes: the runs are not copies.
    let victims: std::collections::BTreeSet<u64> =
        runs.iter().map(|r| r["victim"].as_u64().unwrap()).collect();
    assert!(victims.len() > 1, "{out}");
}

#[test]
fn jobs_must_be_positive() {
    for cmd in ["token", "log", "gossip"] {
        let (code, _, err) = shen(&["sim", cmd, "--jobs", "0"]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{cmd}: {err}");
        assert!(err.contains("--jobs"), "{cmd}: {err}");
    }
}
