//! The elastic log over real `shen run` processes on loopback: 3 nodes
//! form the log; under a steady write load 2 more start with no log flags
//! (just `--data-dir` and an introduction) and are added on their own and
//! receive partitions; one member is killed for good and removed with
//! `shen member remove`; one leaves with `shen leave`. Every acknowledged
//! append is read back exactly once, and appends go on during each change
//! at half the steady rate or more, the death included. The load is a real
//! producer's: several concurrent writers, a new key each time, 2 s per
//! append at most (`shen_tests::load`).
//!
//! (The same schedule in network namespaces, with mDNS discovery instead of
//! `--peer`: `netns_elastic_*` in `cluster_netns.rs`.)
#![cfg(unix)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shen_tests::load::{appended_at, check_changes, check_read_back, AppendFn, Change, Load};
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
    status(admin).map_or(0, |v| shen_tests::chains_with(&v, who))
}

/// Every chain full (rf members, no learners) as `admin` sees it.
fn settled(admin: &str) -> bool {
    status(admin).is_some_and(|v| shen_tests::chains_settled(&v))
}

/// Concurrent writers (each on its own key each time, 2 s per append at
/// most, then on to the next key), as a real producer writes.
const WRITERS: usize = 6;
const APPEND_TIMEOUT: Duration = Duration::from_secs(2);

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

    // A steady load, bounded in count and time, through the nodes that
    // are up (a node is taken out of the targets before it is stopped).
    let targets = Arc::new(Mutex::new(admins.clone()));
    let append: Arc<AppendFn> = {
        let targets = targets.clone();
        Arc::new(move |_w, t, key| {
            let admin = targets.lock().unwrap()[t].clone();
            match http_request(
                &admin,
                "POST",
                &format!("/log/append?key={key}"),
                key.as_bytes(),
                APPEND_TIMEOUT,
            ) {
                Ok((200, _, body)) => appended_at(&body),
                Ok((code, _, body)) => Err(format!("{admin}: {code} {}", body.trim())),
                Err(e) => Err(format!("{admin}: {e}")),
            }
        })
    };
    let load = Load::start(WRITERS, vec![0, 1, 2], Duration::from_secs(240), append);
    std::thread::sleep(Duration::from_secs(1));
    let steady = load.measure(Duration::from_secs(4));
    assert!(steady > 5.0, "the writers are not writing: {steady:.1}/s");
    let first_steady = steady;
    let mut changes: Vec<Change> = Vec::new();

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
    changes.push(Change {
        what: "two joins",
        steady,
        from: t,
        to: Instant::now(),
    });
    targets
        .lock()
        .unwrap()
        .extend(new.iter().map(|i| i.admin.clone()));
    load.add_target(3);
    load.add_target(4);
    let (ok, said) = shen(&["member", "--admin", &admins[0], "list"]);
    assert!(ok && said.contains("member set v2: 5 members"), "{said}");
    for i in &new {
        assert!(said.contains(&i.peer_id), "{said}");
    }

    // Node 1 dies for good and is removed at once.
    let steady = load.measure(Duration::from_secs(3));
    let t = Instant::now();
    let dead = infos[1].peer_id.clone();
    load.remove_target(1);
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
    changes.push(Change {
        what: "a death and its removal",
        steady,
        from: t,
        to: Instant::now(),
    });
    assert_eq!(members(&admins[0]).len(), 4);

    // Node 2 leaves gracefully: `shen leave` returns 0 once it is out.
    let steady = load.measure(Duration::from_secs(3));
    let t = Instant::now();
    let leaver = infos[2].peer_id.clone();
    load.remove_target(2);
    let (ok, said) = shen(&["leave", "--admin", &admins[2], "--timeout", "120s"]);
    assert!(ok, "shen leave: {said}");
    assert!(said.contains("left: member set v"), "{said}");
    assert!(!members(&admins[0]).contains(&leaver));
    assert_eq!(
        chains_with(&admins[0], &leaver),
        0,
        "the leaver still holds chains"
    );
    changes.push(Change {
        what: "a leave",
        steady,
        from: t,
        to: Instant::now(),
    });
    let (ok, table) = shen(&["status", "--admin", &admins[0]]);
    // Two joins, a removal, a leave (marked, then removed): version 5.
    assert!(
        ok && table.contains("OWNS(LOG)") && table.contains("member set v5: 3 members"),
        "{table}"
    );

    std::thread::sleep(Duration::from_secs(2));
    let book = load.stop();
    eprintln!(
        "steady {first_steady:.1} appends/s at first with {WRITERS} writers; {} acknowledged, {} failed",
        book.acked.len(),
        book.failures.len()
    );
    // Appends went on during each change, the death included, at >= 50%
    // of the steady rate of the seconds before it, counted over at least
    // the append timeout (`Book::change_rate`). The writers are
    // concurrent, so a stall of the chains a change touches (a few hundred
    // ms after a kill -9, until its removal moves them) is not all there is.
    check_changes(&book, &changes, APPEND_TIMEOUT, 0.5);
    // Every acknowledged append is read back exactly once.
    let reader = &admins[0];
    check_read_back(&book, |path| {
        match http_request(reader, "GET", path, &[], Duration::from_secs(10)) {
            Ok((200, _, body)) => Ok(body),
            Ok((code, _, body)) => Err(format!("{code}: {body}")),
            Err(e) => Err(e),
        }
    });
    assert!(
        book.acked.len() > 100,
        "only {} appends acknowledged",
        book.acked.len()
    );
}
