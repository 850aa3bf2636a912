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
