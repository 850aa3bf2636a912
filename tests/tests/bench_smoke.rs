//! `shen bench` end to end, small: it starts its own 3-node cluster, loads
//! it through keep-alive connections and reports what was acknowledged.
//! (Figures are recorded in BENCHMARKS.md, never asserted here.)
#![cfg(unix)]

#[test]
fn shen_bench_measures_a_real_cluster() {
    let out = std::process::Command::new(shen_tests::shen_bin())
        .args([
            "bench",
            "--no-etcd",
            "--concurrency",
            "1,8",
            "--duration-s",
            "1",
            "--token-nodes",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let levels = v["appends"].as_array().unwrap();
    assert_eq!(levels.len(), 2, "{text}");
    for (l, c) in levels.iter().zip([1, 8]) {
        assert_eq!(l["system"], "shen");
        assert_eq!(l["concurrency"], c);
        assert!(l["writes_per_s"].as_f64().unwrap() > 0.0, "{l}");
        assert_eq!(l["errors"], 0, "{l}");
        // By default each record goes straight to its partition's head.
        assert_eq!(l["route"], "partition head", "{l}");
        assert!(l["p50_ms"].as_f64().unwrap() <= l["p99_ms"].as_f64().unwrap());
    }
    let t = &v["token"];
    assert_eq!(t["nodes"], 3, "{v}");
    assert!(t["grants"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(t["errors"], 0, "{v}");
    // Bad input is refused before anything starts.
    let out = std::process::Command::new(shen_tests::shen_bin())
        .args(["bench", "--concurrency", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
