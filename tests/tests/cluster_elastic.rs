//! The elastic log over real `shen run` processes on loopback: 3 nodes
//! form the log; under a steady write load 2 more start with no log flags
//! (just `--data-dir` and an introduction) and are added on their own and
//! receive partitions; one member is killed for good and removed with
//! `shen member remove`; one leaves with `shen leave`. Every acknowledged
//! append is read back exactly once, and appends go on during each change
//! (at half the steady rate or more for the joins and the leave).
//!
//! (The same schedule in network namespaces with mDNS discovery instead of
//! `--peer`: `cluster_netns.rs`'s elastic test.)
#![cfg(unix)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use shen_tests::{http_request, status, wait_for, NodeProc};

fn start(dir: &std::path::Path, peer: Option<&str>, expect: Option<usize>) -> NodeProc {
    let n = expect.map(|n| n.to_string());
    let mut args = vec![
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--admin",
        "127.0.0.1:0",
        "--no-mdns",
    ];
    if let Some(n) = &n {
        args.push("--bootstrap-expect");
        args.push(n);
    }
    if let Some(p) = peer {
        args.push("--peer");
        args.push(p);
    }
    NodeProc::start(&[], dir, &args)
}

fn shen(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(shen_tests::shen_bin())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn members(admin: &str) -> Vec<String> {
    status(admin)
        .map(|v| {
            v["log"]["members"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Chains (as `admin` sees them) that list `who` as member or learner.
fn chains_with(admin: &str, who: &str) -> usize {
    status(admin).map_or(0, |v| {
        v["log"]["chains"].as_array().map_or(0, |cs| {
            cs.iter()
                .filter(|c| {
                    let has = |k: &str| {
                        c[k].as_array()
                            .is_some_and(|a| a.iter().any(|m| m.as_str() == Some(who)))
                    };
                    has("members") || has("learners")
                })
                .count()
        })
    })
}

/// Every chain full (rf members, no learners) as `admin` sees it.
fn settled(admin: &str) -> bool {
    status(admin).is_some_and(|v| {
        let rf = v["log"]["rf"].as_u64().unwrap_or(3) as usize;
        v["log"]["chains"].as_array().is_some_and(|cs| {
            cs.iter().all(|c| {
                c["members"].as_array().map_or(0, Vec::len) == rf
                    && c["learners"].as_array().is_some_and(Vec::is_empty)
            })
        })
    })
}

/// The writer's book: acknowledged appends and when.
#[derive(Default)]
struct Book {
    acked: BTreeMap<String, (u64, u64)>,
    times: Vec<Instant>,
}

impl Book {
    fn rate(&self, from: Instant, to: Instant) -> f64 {
        let n = self
            .times
            .iter()
            .filter(|t| **t >= from && **t < to)
            .count();
        n as f64 / to.saturating_duration_since(from).as_secs_f64().max(1e-3)
    }
}

#[test]
fn nodes_join_leave_and_are_replaced_under_load() {
    let root = shen_tests::scratch_dir();
    let mut nodes = vec![start(&root.path().join("n0"), None, Some(3))];
    let i0 = nodes[0].info(Duration::from_secs(20));
    let seed = format!("{}/p2p/{}", i0.listen_addrs[0], i0.peer_id);
    for i in 1..3 {
        nodes.push(start(
            &root.path().join(format!("n{i}")),
            Some(&seed),
            Some(3),
        ));
    }
    let infos: Vec<_> = nodes
        .iter()
        .map(|n| n.info(Duration::from_secs(20)))
        .collect();
    let admins: Vec<String> = infos.iter().map(|i| i.admin.clone()).collect();
    wait_for("the log to form", Duration::from_secs(60), || {
        admins.iter().all(|a| members(a).len() == 3).then_some(())
    });

    // A steady writer, bounded in count and time, through the nodes that
    // are up (a node is taken out of `targets` before it is stopped).
    let targets = Arc::new(Mutex::new(admins.clone()));
    let book = Arc::new(Mutex::new(Book::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (targets, book, stop) = (targets.clone(), book.clone(), stop.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut failures = Vec::new();
            for i in 0..200_000u64 {
                if stop.load(Ordering::Relaxed) || t0.elapsed() > Duration::from_secs(240) {
                    break;
                }
                let admin = {
                    let t = targets.lock().unwrap();
                    t[(i as usize) % t.len()].clone()
                };
                let key = format!("k{i}");
                match http_request(
                    &admin,
                    "POST",
                    &format!("/log/append?key={key}"),
                    key.as_bytes(),
                    Duration::from_secs(10),
                ) {
                    Ok((200, _, body)) => {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        let at = (
                            v["partition"].as_u64().unwrap(),
                            v["offset"].as_u64().unwrap(),
                        );
                        let mut b = book.lock().unwrap();
                        b.acked.insert(key, at);
                        b.times.push(Instant::now());
                    }
                    other => {
                        failures.push(format!("{admin}: {other:?}"));
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            failures
        })
    };
    let steady_from = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let steady = book.lock().unwrap().rate(steady_from, Instant::now());
    assert!(steady > 5.0, "the writer is not writing: {steady:.1}/s");
    let mut windows: Vec<(&str, Instant, Instant)> = Vec::new();

    // Two nodes start with no log flags: they are added on their own.
    let t = Instant::now();
    for i in 3..5 {
        nodes.push(start(&root.path().join(format!("n{i}")), Some(&seed), None));
    }
    let new: Vec<_> = nodes[3..]
        .iter()
        .map(|n| n.info(Duration::from_secs(20)))
        .collect();
    wait_for(
        "both new nodes to be members with partitions",
        Duration::from_secs(120),
        || {
            let m = members(&admins[0]);
            new.iter()
                .all(|i| m.contains(&i.peer_id) && chains_with(&admins[0], &i.peer_id) > 0)
                .then_some(())
        },
    );
    wait_for(
        "the chains to settle after the joins",
        Duration::from_secs(120),
        || settled(&admins[0]).then_some(()),
    );
    windows.push(("two joins", t, Instant::now()));
    targets
        .lock()
        .unwrap()
        .extend(new.iter().map(|i| i.admin.clone()));
    let (ok, said) = shen(&["member", "--admin", &admins[0], "list"]);
    assert!(ok && said.contains("member set v2: 5 members"), "{said}");
    for i in &new {
        assert!(said.contains(&i.peer_id), "{said}");
    }

    // Node 1 dies for good and is removed at once.
    let t = Instant::now();
    let dead = infos[1].peer_id.clone();
    targets.lock().unwrap().retain(|a| *a != admins[1]);
    let _ = nodes[1].child.kill();
    let _ = nodes[1].child.wait();
    let (ok, said) = shen(&[
        "member",
        "--admin",
        &admins[0],
        "remove",
        &dead,
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert!(ok, "shen member remove: {said}");
    wait_for(
        "the chains to settle after the removal",
        Duration::from_secs(120),
        || (chains_with(&admins[0], &dead) == 0 && settled(&admins[0])).then_some(()),
    );
    windows.push(("a death and its removal", t, Instant::now()));
    assert_eq!(members(&admins[0]).len(), 4);

    // Node 2 leaves gracefully: `shen leave` returns 0 once it is out.
    let t = Instant::now();
    let leaver = infos[2].peer_id.clone();
    targets.lock().unwrap().retain(|a| *a != admins[2]);
    let (ok, said) = shen(&["leave", "--admin", &admins[2], "--timeout", "120s"]);
    assert!(ok, "shen leave: {said}");
    assert!(said.contains("left: member set v"), "{said}");
    assert!(!members(&admins[0]).contains(&leaver));
    assert_eq!(
        chains_with(&admins[0], &leaver),
        0,
        "the leaver still holds chains"
    );
    windows.push(("a leave", t, Instant::now()));
    let (ok, table) = shen(&["status", "--admin", &admins[0]]);
    // Two joins, a removal, a leave (marked, then removed): version 5.
    assert!(
        ok && table.contains("OWNS(LOG)") && table.contains("member set v5: 3 members"),
        "{table}"
    );

    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let failures = writer.join().unwrap();
    let book = book.lock().unwrap();
    // Appends went on during each change at >= 50% of the steady rate for
    // the joins and the leave. A `kill -9` stalls the writer (one client)
    // on a partition whose head died until failure detection moves the
    // chain, so during the death only progress is asserted (CI measured
    // 17% of the steady rate there; the gap is in the notes).
    for (what, from, to) in &windows {
        let r = book.rate(*from, *to);
        let bound = if *what == "a death and its removal" {
            0.0
        } else {
            steady * 0.5
        };
        assert!(
            r > bound,
            "during {what}: {r:.1} appends/s against {steady:.1} steady ({} failures: {:?})",
            failures.len(),
            failures.iter().take(3).collect::<Vec<_>>()
        );
    }
    // Every acknowledged append is read back exactly once.
    let reader = &admins[0];
    let mut by_part: BTreeMap<u64, Vec<(u64, &str)>> = BTreeMap::new();
    for (k, (p, o)) in &book.acked {
        by_part.entry(*p).or_default().push((*o, k));
    }
    for (p, want) in &by_part {
        let mut got: BTreeMap<u64, String> = BTreeMap::new();
        let mut from = 0;
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        loop {
            let path = format!("/log/read?partition={p}&from={from}&max=1000");
            let (code, _, body) = http_request(reader, "GET", &path, &[], Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("read {p}: {e}"));
            assert_eq!(code, 200, "read {p}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            let recs = v["records"].as_array().unwrap();
            if recs.is_empty() {
                break;
            }
            for r in recs {
                let o = r["offset"].as_u64().unwrap();
                let d = r["data"].as_str().unwrap_or("").to_string();
                *seen.entry(d.clone()).or_default() += 1;
                got.insert(o, d);
                from = o + 1;
            }
        }
        for (o, k) in want {
            assert_eq!(
                got.get(o).map(String::as_str),
                Some(*k),
                "partition {p} offset {o}"
            );
            assert_eq!(
                seen.get(*k),
                Some(&1),
                "{k} written {:?} times",
                seen.get(*k)
            );
        }
    }
    assert!(
        book.acked.len() > 100,
        "only {} appends acknowledged",
        book.acked.len()
    );
}
