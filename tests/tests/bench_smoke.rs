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

/// `shen bench storage`, small: everything written is acknowledged, the
/// memory and disk figures come from the node processes, the restarted
/// node serves reads, the partition read back comes in whole records, and
/// a node killed while 16 MiB were written is refilled on its restart with
/// no message dropped for a full send queue (the refill's flow control),
/// and a node started afterwards joins and receives partitions.
/// Bad flags are refused with exit 2.
#[test]
fn shen_bench_storage_writes_restarts_and_reads_back() {
    let out = std::process::Command::new(shen_tests::shen_bin())
        .args([
            "bench",
            "storage",
            "--total-mib",
            "8",
            "--record-bytes",
            "2048",
            "--concurrency",
            "8",
            "--refill-mib",
            "16",
            "--rebalance-write-mib",
            "4",
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
    assert_eq!(v["written_bytes"], 8 * 1024 * 1024, "{text}");
    let rss = v["peak_rss_mib"].as_array().unwrap();
    assert_eq!(rss.len(), 3);
    assert!(rss.iter().all(|m| m.as_f64().unwrap() > 1.0), "{text}");
    // Every node holds every record (chains of 3 over 3 nodes).
    assert!(
        v["disk_mib"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.as_f64().unwrap() >= 8.0),
        "{text}"
    );
    assert!(v["restart_serving_s"].as_f64().is_some(), "{text}");
    assert!(
        v["restart_recovered_s"].as_f64().unwrap() >= v["restart_admin_s"].as_f64().unwrap(),
        "{text}"
    );
    // 8 MiB of 2 KiB records over 64 partitions: the largest holds some.
    let read = v["read_records"].as_u64().unwrap();
    assert!(
        read > 0 && v["read_bytes"].as_u64().unwrap() == read * 2048,
        "{text}"
    );

    // A fourth node joined on its own, took partitions, and every chain
    // was full again.
    let rb = &v["rebalance"];
    assert!(
        rb["rebalance_s"].as_f64().is_some(),
        "not rebalanced: {text}"
    );
    assert!(rb["partitions_gained"].as_u64().unwrap() > 0, "{text}");
    assert!(rb["moved_bytes"].as_u64().unwrap() > 0, "{text}");

    let refill = &v["refill"];
    assert_eq!(refill["written_bytes"], 16 * 1024 * 1024, "{text}");
    assert!(
        refill["refill_s"].as_f64().is_some(),
        "not refilled: {text}"
    );
    assert_eq!(refill["queue_full_drops"], 0, "{text}");
    let bad = std::process::Command::new(shen_tests::shen_bin())
        .args(["bench", "storage", "--total-mib", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--total-mib"));
}
