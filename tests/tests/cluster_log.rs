//! The replicated log over real `shen run` processes on loopback: the log
//! forms by itself (`--bootstrap-expect`), an append on one node is read on
//! another, and `kill -9` of chain members under a steady write load loses
//! no acknowledged append while appends resume.
//!
//! With 3 nodes and chains of 3, every node is the head of some partitions,
//! the middle of others and the tail of the rest, so each `kill -9` removes
//! a head, a middle and a tail at once.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use shen_client::{ClientError, ShenClient};
use shen_tests::http_request;
use shen_tests::{status, wait_for, NodeProc};

fn start(dir: &std::path::Path, peer: Option<&str>, expect: usize) -> NodeProc {
    let n = expect.to_string();
    let mut args = vec![
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--admin",
        "127.0.0.1:0",
        "--no-mdns",
        "--bootstrap-expect",
        &n,
    ];
    if let Some(p) = peer {
        args.push("--peer");
        args.push(p);
    }
    NodeProc::start(&[], dir, &args)
}

/// Run `shen ARGS`, insist on success, return its standard output.
fn shen_ok(args: &[&str]) -> String {
    let out = std::process::Command::new(shen_tests::shen_bin())
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "shen {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn formed(admin: &str) -> bool {
    status(admin).is_some_and(|v| v["log"]["formed"] == true && v["log"]["recovered"] == true)
}

/// POST one record; `Some((partition, offset))` if acknowledged.
fn append(admin: &str, key: &str, data: &str) -> Result<(u64, u64), String> {
    let (code, status, body) = http_request(
        admin,
        "POST",
        &format!("/log/append?key={key}"),
        data.as_bytes(),
        Duration::from_secs(10),
    )?;
    if code != 200 {
        return Err(format!("{status}: {body}"));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    Ok((
        v["partition"].as_u64().unwrap(),
        v["offset"].as_u64().unwrap(),
    ))
}

/// Every committed record of `partition` (offset → data), read through
/// `admin`, retrying while the chain is reconfiguring. On failure, the
/// message shows how each node of `cluster` sees the partition's chain.
fn read_all(admin: &str, partition: u64, cluster: &[String]) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    let mut from = 0u64;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let path = format!("/log/read?partition={partition}&from={from}&max=1000");
        match http_request(admin, "GET", &path, &[], Duration::from_secs(10)) {
            Ok((200, _, body)) => {
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
            other => {
                if Instant::now() >= until {
                    let views: Vec<String> = cluster
                        .iter()
                        .map(|a| match status(a) {
                            Some(v) => format!(
                                "{a} ({}): recovered {} chain {} members {}",
                                v["peer_id"],
                                v["log"]["recovered"],
                                v["log"]["chains"][partition as usize],
                                v["members"]
                            ),
                            None => format!("{a}: no status"),
                        })
                        .collect();
                    panic!(
                        "partition {partition} unreadable through {admin}: {other:?}\n{}",
                        views.join("\n")
                    );
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
}

#[test]
fn log_forms_replicates_and_survives_kill_9_under_load() {
    const N: usize = 3;
    let root = shen_tests::scratch_dir();
    let mut nodes = vec![start(&root.path().join("n0"), None, N)];
    let info0 = nodes[0].info(Duration::from_secs(20));
    let seed = format!("{}/p2p/{}", info0.listen_addrs[0], info0.peer_id);
    for i in 1..N {
        nodes.push(start(&root.path().join(format!("n{i}")), Some(&seed), N));
    }
    let mut infos: Vec<_> = nodes
        .iter()
        .map(|n| n.info(Duration::from_secs(20)))
        .collect();
    wait_for(
        "the log to form on every node",
        Duration::from_secs(60),
        || infos.iter().all(|i| formed(&i.admin)).then_some(()),
    );
    let st = status(&infos[1].admin).unwrap();
    assert_eq!(st["log"]["members"].as_array().unwrap().len(), N, "{st}");
    assert_eq!(st["log"]["chains"].as_array().unwrap().len(), 64, "{st}");

    // Append on node 0, read on node 2 (through the CLI, as a user would).
    let said = shen_ok(&["append", "--admin", &infos[0].admin, "greeting", "hello"]);
    assert!(said.starts_with("appended to partition "), "{said}");
    let got = shen_ok(&["read", "--admin", &infos[2].admin, "--key", "greeting"]);
    assert!(got.trim_end().ends_with("\thello"), "{got}");
    // ... and by the Scarab ID the append printed.
    let id = said
        .trim_end()
        .rsplit_once("(id ")
        .map(|(_, r)| r.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("no id in {said}"));
    let got = shen_ok(&["read", "--admin", &infos[1].admin, "--id", &id]);
    assert_eq!(got.lines().count(), 1, "{got}");
    assert!(got.trim_end().ends_with("\thello"), "{got}");
    // `shen tail` follows the partition: the record there, then one
    // appended while it waits.
    let tail = std::process::Command::new(shen_tests::shen_bin())
        .args(["tail", "--admin", &infos[2].admin, "--key", "greeting"])
        .args(["--count", "2", "--poll-ms", "50"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    shen_ok(&["append", "--admin", &infos[1].admin, "greeting", "again"]);
    let mut tail = tail;
    let exited = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        matches!(tail.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = tail.kill();
    }
    let out = tail.wait_with_output().unwrap();
    assert!(exited, "shen tail did not stop after 2 records within 20 s");
    let followed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{followed}");
    let lines: Vec<&str> = followed.lines().collect();
    assert_eq!(lines.len(), 2, "{followed}");
    assert!(
        lines[0].ends_with("\thello") && lines[1].ends_with("\tagain"),
        "{followed}"
    );
    // The application API: append, read by ID, read a range, follow,
    // cluster status — through another node.
    let log = ShenClient::new(infos[1].admin.clone());
    let a = log.append(b"api", b"first").unwrap();
    let b = log.append(b"api", b"second").unwrap();
    assert_eq!(a.partition, b.partition);
    assert_eq!(b.offset, a.offset + 1);
    assert!(b.id > a.id, "Scarab IDs increase along a partition");
    let got = log.read(b.id).unwrap().expect("read by id");
    assert_eq!(
        (got.offset, got.data.as_slice()),
        (b.offset, &b"second"[..])
    );
    let range = log.read_range(a.partition, a.offset, 10).unwrap();
    assert_eq!(range.len(), 2);
    let followed: Vec<Vec<u8>> = log
        .subscribe(a.partition, a.offset)
        .take(2)
        .map(|r| r.unwrap().data)
        .collect();
    assert_eq!(followed, vec![b"first".to_vec(), b"second".to_vec()]);
    let cs = log.cluster_status().unwrap();
    assert!(
        cs.log_formed && cs.partitions == 64 && cs.chains.len() == 64,
        "{cs:?}"
    );
    assert_eq!(cs.members.len(), N);
    let bad = ShenClient::new(infos[1].admin.clone()).read_range(9999, 0, 1);
    assert!(matches!(bad, Err(ClientError::BadRequest(_))), "{bad:?}");
    // A transaction: three records over (usually) three partitions, all
    // readable afterwards through another node, by ID and by range.
    let placed = log
        .transaction(|t| {
            t.append(b"account-1", b"-10");
            t.append(b"account-2", b"+10");
            t.append(b"ledger", b"transfer 1->2");
        })
        .unwrap();
    assert_eq!(placed.len(), 3);
    let other = ShenClient::new(infos[2].admin.clone());
    for (p, want) in placed.iter().zip([&b"-10"[..], b"+10", b"transfer 1->2"]) {
        let got = other
            .read(p.id)
            .unwrap()
            .expect("a committed transaction's record");
        assert_eq!(
            (got.partition, got.offset, got.data.as_slice()),
            (p.partition, p.offset, want)
        );
        let range = other.read_range(p.partition, p.offset, 1).unwrap();
        assert_eq!(range.first().map(|r| r.data.as_slice()), Some(want));
    }
    let none = log.transaction(|_| {});
    assert!(matches!(none, Err(ClientError::BadRequest(_))), "{none:?}");
    // ... and through the CLI.
    let said = shen_ok(&["txn", "--admin", &infos[0].admin, "x", "1", "y", "-2"]);
    assert!(said.starts_with("committed 2 records atomically"), "{said}");
    let got = shen_ok(&["read", "--admin", &infos[2].admin, "--key", "y"]);
    assert!(got.trim_end().ends_with("\t-2"), "{got}");
    // `shen status` shows the chains.
    let table = shen_ok(&["status", "--admin", &infos[1].admin]);
    assert!(
        table.contains("log: 64 partitions, rf 3, 3 members"),
        "{table}"
    );
    assert!(table.contains("PART    EPOCH HEAD"), "{table}");
    // Bad input is refused with a reason, not a crash.
    let (code, _, body) = http_request(
        &infos[0].admin,
        "GET",
        "/log/read?partition=999",
        &[],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("partition 999 does not exist"), "{body}");

    // Steady load through node 0 (4 writers); kill -9 node 1, restart it,
    // then kill -9 node 2.
    let acked: Arc<Mutex<Vec<(u64, u64, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let admin = infos[0].admin.clone();
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut i = 0u64;
                let mut failed = 0u64;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let data = format!("w{w}-{i}");
                    match append(&admin, &format!("k{}", i % 97), &data) {
                        Ok((p, o)) => acked.lock().unwrap().push((p, o, data)),
                        Err(_) => {
                            failed += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    i += 1;
                }
                failed
            })
        })
        .collect();
    let count = || acked.lock().unwrap().len();
    let wait_more = |what: &str, n: usize| {
        let base = count();
        wait_for(what, Duration::from_secs(45), || {
            (count() >= base + n).then_some(())
        });
    };
    wait_more("appends before the first kill", 200);
    nodes[1].child.kill().unwrap();
    nodes[1].child.wait().unwrap();
    wait_more("appends to resume after kill -9 of node 1", 300);
    // Restart node 1: same PeerId, rejoins the formed log.
    let old_id = infos[1].peer_id.clone();
    nodes[1] = start(&root.path().join("n1"), Some(&seed), N);
    infos[1] = nodes[1].info(Duration::from_secs(20));
    assert_eq!(
        infos[1].peer_id, old_id,
        "a restarted node keeps its PeerId"
    );
    wait_for("node 1 to rejoin the log", Duration::from_secs(60), || {
        formed(&infos[1].admin).then_some(())
    });
    // Let the chains take node 1 back before the next kill.
    wait_for(
        "chains to include node 1 again",
        Duration::from_secs(60),
        || {
            status(&infos[0].admin)
                .filter(|v| {
                    v["log"]["chains"].as_array().is_some_and(|c| {
                        c.iter()
                            .all(|c| c["members"].as_array().is_some_and(|m| m.len() == 3))
                    })
                })
                .map(|_| ())
        },
    );
    wait_more("appends after node 1 rejoined", 200);
    nodes[2].child.kill().unwrap();
    nodes[2].child.wait().unwrap();
    wait_more("appends to resume after kill -9 of node 2", 300);
    stop.store(true, Ordering::SeqCst);
    let failed: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();

    // Read everything back through node 1 (the restarted one) and compare
    // with what was acknowledged: nothing lost, nothing twice.
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 1000,
        "only {} appends acknowledged",
        acked.len()
    );
    eprintln!(
        "{} appends acknowledged, {failed} failed or timed out, across two kill -9",
        acked.len()
    );
    let partitions: BTreeSet<u64> = acked.iter().map(|a| a.0).collect();
    let check_all = |admin: &str, cluster: &[String]| {
        let mut seen_data = BTreeSet::new();
        for &p in &partitions {
            let log = read_all(admin, p, cluster);
            for d in log.values() {
                assert!(seen_data.insert(d.clone()), "record {d} appears twice");
            }
            for (ap, o, d) in acked.iter().filter(|a| a.0 == p) {
                assert_eq!(
                    log.get(o),
                    Some(d),
                    "acknowledged append {d} at {ap}:{o} lost or changed (read through {admin})"
                );
            }
        }
    };
    let alive: Vec<String> = infos[..2].iter().map(|i| i.admin.clone()).collect();
    check_all(&infos[1].admin, &alive);

    // The whole cluster goes down at once (kill -9 of the two that run;
    // node 2 is already dead) and comes back from its data directories:
    // every node rebuilds its logs from its write-ahead log, and every
    // acknowledged append is still there.
    for i in [0, 1] {
        nodes[i].child.kill().unwrap();
        nodes[i].child.wait().unwrap();
    }
    let mut nodes = vec![start(&root.path().join("n0"), None, N)];
    let info0 = nodes[0].info(Duration::from_secs(20));
    let seed = format!("{}/p2p/{}", info0.listen_addrs[0], info0.peer_id);
    for i in 1..N {
        nodes.push(start(&root.path().join(format!("n{i}")), Some(&seed), N));
    }
    let infos: Vec<_> = nodes
        .iter()
        .map(|n| n.info(Duration::from_secs(20)))
        .collect();
    wait_for(
        "the log to come back on every node",
        Duration::from_secs(60),
        || infos.iter().all(|i| formed(&i.admin)).then_some(()),
    );
    for (i, info) in infos.iter().enumerate() {
        let st = status(&info.admin).unwrap();
        assert_eq!(
            st["log"]["restored"], true,
            "node {i} did not rebuild from its write-ahead log: {st}"
        );
    }
    let alive: Vec<String> = infos.iter().map(|i| i.admin.clone()).collect();
    check_all(&infos[2].admin, &alive);
    // And the log takes new appends.
    let said = shen_ok(&["append", "--admin", &infos[1].admin, "after", "restart"]);
    assert!(said.starts_with("appended to partition "), "{said}");
}
