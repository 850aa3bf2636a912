//! Retention over a real `shen run`: with small segments and
//! `--retention-bytes`, old segments are deleted, the partition's low
//! watermark rises (in `/status` and `shen status`), and a read below it is
//! refused with `offset_out_of_range` naming the earliest and latest
//! offsets: over the admin API (HTTP 416), through `ShenClient`, and by
//! `shen read` (exit 1). What is above the watermark reads back intact,
//! also after a restart.
#![cfg(unix)]

use std::time::Duration;

use serde_json::Value;
use shen_client::{ClientError, ShenClient};
use shen_tests::{http_request, status, wait_for, NodeProc};

const SEGMENT: u64 = 4096;
const KEEP: u64 = 16 * 1024;

fn start(dir: &std::path::Path) -> NodeProc {
    let seg = SEGMENT.to_string();
    let keep = KEEP.to_string();
    let mut args = shen_tests::LOOPBACK_ARGS.to_vec();
    args.extend([
        "--bootstrap-expect",
        "1",
        "--segment-bytes",
        &seg,
        "--retention-bytes",
        &keep,
    ]);
    NodeProc::start(&[], dir, &args)
}

fn chain(admin: &str, p: u64) -> Option<Value> {
    status(admin).map(|v| v["log"]["chains"][p as usize].clone())
}

#[test]
fn retention_deletes_old_segments_and_reads_below_the_watermark_are_refused() {
    let root = shen_tests::scratch_dir();
    let dir = root.path().join("n0");
    let mut node = start(&dir);
    let info = node.info(Duration::from_secs(20));
    let admin = info.admin.clone();
    wait_for("the log to form", Duration::from_secs(30), || {
        status(&admin)
            .filter(|v| v["log"]["formed"] == true)
            .map(|_| ())
    });
    // 400 records of ~200 bytes under one key: ~80 KB, about twenty
    // segments of 4 KiB, five times what retention keeps.
    let client = ShenClient::new(admin.clone());
    let mut p = 0;
    let mut last = 0;
    for i in 0..400u32 {
        let data = format!("{i:05}:{}", "x".repeat(194));
        let a = client
            .append(b"retained", data.as_bytes())
            .unwrap_or_else(|e| panic!("append {i}: {e}"));
        p = a.partition;
        last = a.offset;
    }
    let p = u64::from(p);
    // The retention pass runs on the node's housekeeping tick.
    let low = wait_for(
        "retention to raise the low watermark",
        Duration::from_secs(30),
        || {
            chain(&admin, p)
                .and_then(|c| c["low_watermark"].as_u64())
                .filter(|l| *l > 0)
        },
    );
    let c = chain(&admin, p).unwrap();
    assert_eq!(c["high_watermark"].as_u64(), Some(last + 1), "{c}");
    // What stays is at least what retention keeps, and the files shrank to
    // about that (not the ~80 KB written).
    let held = c["held_bytes"].as_u64().unwrap();
    assert!(
        held >= KEEP,
        "retention kept {held} bytes, less than {KEEP}: {c}"
    );
    let disk = c["disk_bytes"].as_u64().unwrap();
    assert!(
        disk < 60 * 1024,
        "partition files still hold {disk} bytes after retention: {c}"
    );

    // The admin API: 416 offset_out_of_range with both bounds.
    let path = format!("/log/read?partition={p}&from=0&max=10");
    let (code, _, body) = http_request(&admin, "GET", &path, &[], Duration::from_secs(5)).unwrap();
    assert_eq!(code, 416, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "offset_out_of_range", "{body}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains(&low.to_string()) && msg.contains(&(last + 1).to_string()),
        "the error names the earliest ({low}) and latest ({}) offsets: {msg}",
        last + 1
    );
    // ShenClient: its own error, not retried.
    match client.read_range(p as u32, 0, 10) {
        Err(ClientError::OffsetOutOfRange(m)) => assert!(m.contains(&low.to_string()), "{m}"),
        other => panic!("ShenClient read below the watermark: {other:?}"),
    }
    // The CLI: exit 1 with the message.
    let out = std::process::Command::new(shen_tests::shen_bin())
        .args(["read", "--admin", &admin, "--partition", &p.to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "shen read: {err}");
    assert!(err.contains("offset out of range"), "{err}");

    // From the watermark on, everything is there, in order.
    let read_from = |admin: &str, from: u64| -> Vec<(u64, String)> {
        let c = ShenClient::new(admin.to_string());
        let mut out = Vec::new();
        let mut next = from;
        loop {
            let r = c.read_range(p as u32, next, 1000).unwrap();
            let Some(l) = r.last() else { break };
            next = l.offset + 1;
            out.extend(
                r.iter()
                    .map(|r| (r.offset, String::from_utf8_lossy(&r.data).to_string())),
            );
        }
        out
    };
    let kept = read_from(&admin, low);
    assert_eq!(kept.len() as u64, last + 1 - low);
    for (o, d) in &kept {
        assert!(d.starts_with(&format!("{:05}:", o)), "offset {o} holds {d}");
    }

    // After a restart the watermark holds and the rest reads back.
    assert_eq!(node.terminate(Duration::from_secs(10)), Some(0));
    let node = start(&dir);
    let info = node.info(Duration::from_secs(20));
    wait_for("the log to come back", Duration::from_secs(30), || {
        status(&info.admin)
            .filter(|v| v["log"]["formed"] == true && v["log"]["restored"] == true)
            .map(|_| ())
    });
    let c = wait_for("the chain to serve", Duration::from_secs(30), || {
        chain(&info.admin, p).filter(|c| c["high_watermark"].as_u64() == Some(last + 1))
    });
    assert!(
        c["low_watermark"].as_u64().unwrap() >= low,
        "the watermark went back after a restart: {c}"
    );
    let low2 = c["low_watermark"].as_u64().unwrap();
    let again = read_from(&info.admin, low2);
    assert_eq!(again.len() as u64, last + 1 - low2);
    assert_eq!(&kept[(low2 - low) as usize..], &again[..]);
}
