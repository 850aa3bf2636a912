//! Partition records on disk over a real `shen run`: a node killed with
//! `kill -9` after writing records serves all of them back after a
//! restart, the old ones read from `DIR/parts/N/` (its cache is a few KiB),
//! and `/status` shows each partition's watermarks and bytes on disk.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use shen_tests::http_request;
use shen_tests::{status, wait_for, NodeProc};

fn start(dir: &std::path::Path) -> NodeProc {
    // Checkpoints every 8 KiB of write-ahead log: the records reach their
    // segment files and the restart reads the checkpoint, not all history.
    let config = dir.with_extension("toml");
    std::fs::write(
        &config,
        "[stack.sundial]\n[stack.ouroboros]\ncheckpoint_bytes = 8192\n",
    )
    .unwrap();
    NodeProc::start(
        &[],
        dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--admin",
            "127.0.0.1:0",
            "--no-mdns",
            "--bootstrap-expect",
            "1",
            "--cache-bytes",
            "4096",
        ],
    )
}

fn formed(admin: &str) -> bool {
    status(admin).is_some_and(|v| v["log"]["formed"] == true && v["log"]["recovered"] == true)
}

fn read_partition(admin: &str, p: u64) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    let mut from = 0;
    loop {
        let path = format!("/log/read?partition={p}&from={from}&max=1000");
        let (code, _, body) =
            http_request(admin, "GET", &path, &[], Duration::from_secs(10)).unwrap();
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let recs = v["records"].as_array().unwrap().clone();
        if recs.is_empty() {
            return out;
        }
        for r in recs {
            let o = r["offset"].as_u64().unwrap();
            out.insert(o, r["data"].as_str().unwrap_or("").to_string());
            from = o + 1;
        }
    }
}

#[test]
fn a_restarted_node_serves_its_records_back_from_disk() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("n0");
    let mut node = start(&dir);
    let info = node.info(Duration::from_secs(20));
    wait_for("the log to form", Duration::from_secs(30), || {
        formed(&info.admin).then_some(())
    });
    let mut acked: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for i in 0..400u32 {
        let data = format!("record-{i}-{}", "x".repeat(100));
        let (code, _, body) = http_request(
            &info.admin,
            "POST",
            &format!("/log/append?key=k{}", i % 7),
            data.as_bytes(),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        acked.insert(
            (
                v["partition"].as_u64().unwrap(),
                v["offset"].as_u64().unwrap(),
            ),
            data,
        );
    }
    assert!(
        dir.join("parts").join("0").join("data").is_dir(),
        "no partition records under DIR/parts"
    );
    node.child.kill().unwrap();
    node.child.wait().unwrap();

    let node = start(&dir);
    let info = node.info(Duration::from_secs(20));
    wait_for("the log to be back", Duration::from_secs(30), || {
        formed(&info.admin).then_some(())
    });
    let st = status(&info.admin).unwrap();
    assert_eq!(st["log"]["restored"], true, "{st}");
    let parts: std::collections::BTreeSet<u64> = acked.keys().map(|k| k.0).collect();
    for p in &parts {
        let log = read_partition(&info.admin, *p);
        for ((ap, o), data) in acked.iter().filter(|k| k.0 .0 == *p) {
            assert_eq!(log.get(o), Some(data), "partition {ap} offset {o}");
        }
        let chain = &st["log"]["chains"][*p as usize];
        let high = acked.keys().filter(|k| k.0 == *p).count() as u64;
        assert_eq!(chain["low_watermark"], 0, "{chain}");
        assert_eq!(chain["high_watermark"], high, "{chain}");
        assert!(
            chain["disk_bytes"].as_u64().unwrap() > high * 100,
            "{chain}"
        );
    }
    // `shen read --max N` pages past the 1,024 records one answer holds.
    let client = shen_client::ShenClient::new(info.admin.clone());
    let mut p = 0;
    for i in 0..1_100u32 {
        p = client
            .append(b"many", format!("m{i:04}").as_bytes())
            .unwrap()
            .partition;
    }
    let out = std::process::Command::new(shen_tests::shen_bin())
        .args([
            "read",
            "--admin",
            &info.admin,
            "--partition",
            &p.to_string(),
            "--max",
            "5000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let many = text.lines().filter(|l| l.contains("\tmany\t")).count();
    assert_eq!(
        many, 1_100,
        "shen read --max 5000 returned {many} of the key's 1,100 records"
    );
}
