//! Multi-host tests in network namespaces (root only).
//!
//! Each test builds its own bridge and one namespace per host, joined by
//! veth pairs (10.213.<net>.0/24; nothing routes outside the bridge, the
//! bridge has no address). Nodes are started with no `--peer`: they must
//! find each other by mDNS. Everything is removed on drop, also when the test
//! fails. Status is read with `ip netns exec NS shen status --json` (admin
//! HTTP listens on each namespace's own 127.0.0.1).
//!
//! Without root (or without `ip`), the tests print why they are skipped and
//! pass.
#![cfg(unix)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shen_tests::{shen_bin, wait_for, NodeProc};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root: network namespaces need CAP_NET_ADMIN".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` tool (iproute2) is not installed".into());
    }
    let probe = format!(
        "shpr{}-{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace: {e}"));
    }
    let _ = ip(&["netns", "del", &probe]);
    None
}

/// A bridge and `n` namespaces; torn down on drop.
struct Lab {
    bridge: String,
    hosts: Vec<Host>,
}

struct Host {
    ns: String,
    /// The root-namespace end of the veth (set down/up to partition).
    veth: String,
    addr: String,
}

impl Lab {
    fn new(n: usize) -> Result<Lab, String> {
        let tag = format!(
            "{}{}",
            std::process::id() % 10_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let net = (std::process::id() + NEXT.load(Ordering::SeqCst)) % 250;
        let mut lab = Lab {
            bridge: format!("shb{tag}"),
            hosts: Vec::new(),
        };
        ip(&["link", "add", &lab.bridge, "type", "bridge"])?;
        // Multicast (mDNS) is flooded to every port: no snooping querier here.
        let _ = ip(&[
            "link",
            "set",
            &lab.bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["link", "set", &lab.bridge, "up"])?;
        for i in 0..n {
            let h = Host {
                ns: format!("shn{tag}-{i}"),
                veth: format!("shv{tag}{i}"),
                addr: format!("10.213.{net}.{}", i + 1),
            };
            let inner = format!("shi{tag}{i}");
            ip(&["netns", "add", &h.ns])?;
            lab.hosts.push(h);
            let h = lab.hosts.last().expect("just pushed");
            ip(&[
                "link", "add", &h.veth, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &h.ns])?;
            ip(&["link", "set", &h.veth, "master", &lab.bridge])?;
            ip(&["link", "set", &h.veth, "up"])?;
            ip(&[
                "-n",
                &h.ns,
                "addr",
                "add",
                &format!("{}/24", h.addr),
                "dev",
                &inner,
            ])?;
            ip(&["-n", &h.ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &h.ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &h.ns, "route", "add", "224.0.0.0/4", "dev", &inner])?;
        }
        Ok(lab)
    }

    fn start(&self, i: usize, dir: &std::path::Path, extra: &[&str]) -> NodeProc {
        let listen = format!("/ip4/{}/tcp/4001", self.hosts[i].addr);
        self.start_on(i, dir, &listen, extra)
    }

    fn start_on(&self, i: usize, dir: &std::path::Path, listen: &str, extra: &[&str]) -> NodeProc {
        let mut args = vec!["--listen", listen, "--admin", "127.0.0.1:7600"];
        args.extend_from_slice(extra);
        let ns = self.hosts[i].ns.clone();
        NodeProc::start(&["ip", "netns", "exec", &ns], dir, &args)
    }

    /// `live_members` as host `i` sees it (None if it does not answer).
    fn live(&self, i: usize) -> Option<u64> {
        self.status(i)?["live_members"].as_u64()
    }

    /// Host `i`'s `/status` through `shen status --json` in its namespace.
    fn status(&self, i: usize) -> Option<serde_json::Value> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i].ns])
            .arg(shen_bin())
            .args(["status", "--json", "--admin", "127.0.0.1:7600"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    fn all_live(&self, idx: &[usize], n: u64) -> bool {
        idx.iter().all(|&i| self.live(i) == Some(n))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = ip(&["link", "del", &h.veth]);
            let _ = ip(&["netns", "del", &h.ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Poll `f` every 300 ms until it is true (true) or `timeout` passed
/// (false).
fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

fn logs(nodes: &[NodeProc]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("--- node {i}\n{}", n.log()))
        .collect()
}

#[test]
fn netns_five_hosts_find_each_other_by_mdns_partition_and_heal() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED netns_five_hosts...: {why}");
        return;
    }
    let lab = Lab::new(5).expect("build the namespace lab");
    let root = tempfile::tempdir().unwrap();
    let nodes: Vec<NodeProc> = (0..5)
        .map(|i| lab.start(i, &root.path().join(format!("h{i}")), &[]))
        .collect();
    let all = [0, 1, 2, 3, 4];
    let t0 = Instant::now();
    let ok = poll_until(Duration::from_secs(45), || lab.all_live(&all, 5));
    assert!(
        ok,
        "5 hosts did not converge by mDNS in 45 s\n{}",
        logs(&nodes)
    );
    eprintln!("converged by mDNS in {:?}", t0.elapsed());

    // Partition host 4 off (its link down), then heal.
    ip(&["link", "set", &lab.hosts[4].veth, "down"]).unwrap();
    wait_for(
        "the majority to drop the cut-off host",
        Duration::from_secs(30),
        || lab.all_live(&[0, 1, 2, 3], 4).then_some(()),
    );
    eprintln!("partition detected after {:?}", t0.elapsed());
    // Keep the link down 10 s (SHEN_TEST_PARTITION_HOLD_S to change it): long
    // enough for TCP's retransmission back-off to grow, so healing relies on
    // stale connections being replaced (ShenHost::on_tick).
    let hold: u64 = std::env::var("SHEN_TEST_PARTITION_HOLD_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .min(120);
    std::thread::sleep(Duration::from_secs(hold));
    let t0 = Instant::now();
    ip(&["link", "set", &lab.hosts[4].veth, "up"]).unwrap();
    let healed = poll_until(Duration::from_secs(45), || lab.all_live(&all, 5));
    assert!(healed, "views did not heal in 45 s\n{}", logs(&nodes));
    eprintln!("healed {:?} after the link came back", t0.elapsed());

    // Split into two islands, {0, 1, 2} and {3, 4}: blackhole routes in every
    // namespace to the other side's addresses (mDNS multicast still flows,
    // connections cannot). Each island must declare the other dead, then
    // merge again once the routes are gone.
    let (left, right) = ([0usize, 1, 2], [3usize, 4]);
    let cut = |add: bool| {
        for (mine, theirs) in [(&left[..], &right[..]), (&right[..], &left[..])] {
            for &i in mine {
                for &j in theirs {
                    let dst = format!("{}/32", lab.hosts[j].addr);
                    let verb = if add { "add" } else { "del" };
                    ip(&["-n", &lab.hosts[i].ns, "route", verb, "blackhole", &dst]).unwrap();
                }
            }
        }
    };
    cut(true);
    wait_for(
        "each island to declare the other dead",
        Duration::from_secs(60),
        || (lab.all_live(&left, 3) && lab.all_live(&right, 2)).then_some(()),
    );
    eprintln!("split into islands of 3 and 2");
    std::thread::sleep(Duration::from_secs(5));
    let t0 = Instant::now();
    cut(false);
    let merged = poll_until(Duration::from_secs(60), || lab.all_live(&all, 5));
    assert!(
        merged,
        "the islands did not merge in 60 s\n{}",
        logs(&nodes)
    );
    eprintln!(
        "islands merged {:?} after the routes came back",
        t0.elapsed()
    );
    drop(nodes);
}

#[test]
fn netns_a_node_without_the_psk_cannot_join_a_private_cluster() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED netns_..._psk: {why}");
        return;
    }
    let lab = Lab::new(4).expect("build the namespace lab");
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("swarm.key");
    std::fs::write(
        &key,
        shen_transport_libp2p::identity::psk_file_text(&[0x5a; 32]),
    )
    .unwrap();
    let other_key = root.path().join("other.key");
    std::fs::write(
        &other_key,
        shen_transport_libp2p::identity::psk_file_text(&[0x33; 32]),
    )
    .unwrap();
    let k = key.to_str().unwrap();
    // On 0.0.0.0 the nodes also listen on their namespace's loopback, which
    // must never be advertised (nor dialled when learned by mDNS).
    let mut nodes: Vec<NodeProc> = (0..3)
        .map(|i| {
            lab.start_on(
                i,
                &root.path().join(format!("p{i}")),
                "/ip4/0.0.0.0/tcp/4001",
                &["--psk", k],
            )
        })
        .collect();
    // Host 3 has no key, and later a wrong one.
    nodes.push(lab.start(3, &root.path().join("stranger"), &[]));
    wait_for(
        "the 3 private nodes to converge",
        Duration::from_secs(45),
        || lab.all_live(&[0, 1, 2], 3).then_some(()),
    );
    // An address is advertised only once confirmed (AutoNAT or an inbound
    // connection from another host), so wait for the confirmation.
    let ok = poll_external(&lab, 0, Duration::from_secs(30));
    let st = lab.status(0).unwrap();
    let listen = st["net"]["listen_addrs"].to_string();
    let external = st["net"]["external_addrs"].to_string();
    assert!(listen.contains("127.0.0.1"), "{listen}");
    assert!(ok, "no 10.213. address confirmed in 30 s: {external}");
    assert!(
        !external.contains("127.0.0.1") && external.contains("10.213."),
        "{external}"
    );
    assert_eq!(st["net"]["private"], true);
    // Give the stranger time to try (mDNS asks every 5 s).
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        lab.live(3),
        Some(1),
        "the stranger joined\n{}",
        logs(&nodes)
    );
    assert!(lab.all_live(&[0, 1, 2], 3), "{}", logs(&nodes));
    let mut stranger = nodes.pop().unwrap();
    assert_eq!(stranger.terminate(Duration::from_secs(10)), Some(0));
    let ok = other_key.to_str().unwrap();
    nodes.push(lab.start(3, &root.path().join("stranger"), &["--psk", ok]));
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(lab.live(3), Some(1), "a wrong key joined\n{}", logs(&nodes));
    assert!(lab.all_live(&[0, 1, 2], 3), "{}", logs(&nodes));
}

impl Lab {
    /// Run `shen ARGS --admin 127.0.0.1:7600` in host `i`'s namespace;
    /// (success, stdout).
    fn shen(&self, i: usize, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i].ns])
            .arg(shen_bin())
            .args(args)
            .args(["--admin", "127.0.0.1:7600"])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            ),
            Err(e) => (false, e.to_string()),
        }
    }

    fn log_formed(&self, i: usize) -> bool {
        self.status(i)
            .is_some_and(|v| v["log"]["formed"] == true && v["log"]["recovered"] == true)
    }
}

/// One acknowledged append: (partition, offset, data).
type Acked = (u64, u64, String);

#[test]
fn netns_five_hosts_form_the_log_by_mdns_and_lose_nothing_to_kill_9_of_head_middle_tail() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED netns_five_hosts_form_the_log...: {why}");
        return;
    }
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    let lab = Arc::new(Lab::new(5).expect("build the namespace lab"));
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<NodeProc> = (0..5)
        .map(|i| {
            lab.start(
                i,
                &root.path().join(format!("h{i}")),
                &["--bootstrap-expect", "5"],
            )
        })
        .collect();
    let all = [0, 1, 2, 3, 4];
    let formed = poll_until(Duration::from_secs(60), || {
        all.iter().all(|&i| lab.log_formed(i))
    });
    assert!(formed, "the log did not form in 60 s\n{}", logs(&nodes));

    // Append on host 0, read on host 3.
    let (ok, said) = lab.shen(0, &["append", "--json", "greeting", "hello from h0"]);
    assert!(ok, "{said}\n{}", logs(&nodes));
    let (ok, got) = lab.shen(3, &["read", "--key", "greeting"]);
    assert!(ok && got.contains("\thello from h0"), "{got}");

    // Which host is which: PeerId -> host index.
    let ids: Vec<String> = (0..5)
        .map(|i| {
            lab.status(i).unwrap()["peer_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let host_of = |id: &str| ids.iter().position(|x| x == id);
    // The chain (hosts, head first) of partition `p`, as host `from` sees it.
    let chain = |from: usize, p: u64| -> Option<Vec<usize>> {
        let st = lab.status(from)?;
        let c = st["log"]["chains"].as_array()?.get(p as usize)?.clone();
        c["members"]
            .as_array()?
            .iter()
            .map(|m| host_of(m.as_str()?))
            .collect()
    };
    // A target partition whose chain leaves out host 0 (the writers' way
    // in) and a key that lands on it.
    let (key, target) = (0..1000)
        .map(|k| format!("target-{k}"))
        .map(|k| {
            let p = u64::from(shen_rings::ouroboros::partition_of_key(k.as_bytes(), 64));
            (k, p)
        })
        .find(|(_, p)| chain(0, *p).is_some_and(|c| c.len() == 3 && !c.contains(&0)))
        .expect("a partition without host 0");

    // Steady load through host 0, half of it on the target partition; then
    // kill -9 the target chain's head, restart it from its data, and the
    // same for the chain's middle, then its tail (each time the chain as it
    // stands then).
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (lab, acked, stop) = (lab.clone(), acked.clone(), stop.clone());
            let key = key.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(240);
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let data = format!("w{w}-{i}");
                    let key = if i.is_multiple_of(2) {
                        key.clone()
                    } else {
                        format!("k{}", i % 31)
                    };
                    let (ok, out) = lab.shen(0, &["append", "--json", &key, &data]);
                    if ok {
                        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                        let (p, o) = (v["partition"].as_u64(), v["offset"].as_u64());
                        acked.lock().unwrap().push((p.unwrap(), o.unwrap(), data));
                    } else {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let in_target = || {
        acked
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.0 == target)
            .count()
    };
    let wait_more = |what: &str, n: usize| {
        let base = in_target();
        wait_for(what, Duration::from_secs(60), || {
            (in_target() >= base + n).then_some(())
        });
    };
    wait_more("appends to the target partition before the kills", 50);
    for (role, at) in [("head", 0usize), ("middle", 1), ("tail", 2)] {
        let c = wait_for(
            "the target chain at full length",
            Duration::from_secs(90),
            || chain(0, target).filter(|c| c.len() == 3),
        );
        let victim = c[at];
        assert_ne!(victim, 0, "host 0 joined the target chain: {c:?}");
        eprintln!("kill -9 of host {victim}, the {role} of partition {target} (chain {c:?})");
        nodes[victim].child.kill().unwrap();
        nodes[victim].child.wait().unwrap();
        wait_for(
            &format!("the {role} (host {victim}) to leave the chain"),
            Duration::from_secs(60),
            || chain(0, target).filter(|c| !c.contains(&victim)),
        );
        wait_more(
            &format!("appends to resume after kill -9 of the {role}"),
            20,
        );
        nodes[victim] = lab.start(
            victim,
            &root.path().join(format!("h{victim}")),
            &["--bootstrap-expect", "5"],
        );
        let back = poll_until(Duration::from_secs(60), || {
            lab.status(victim)
                .is_some_and(|v| v["log"]["restored"] == true && v["log"]["recovered"] == true)
        });
        assert!(
            back,
            "host {victim} did not come back from its data\n{}",
            logs(&nodes)
        );
        wait_more(&format!("appends after the {role} came back"), 20);
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{} appends acknowledged ({} in partition {target}) across kill -9 of its head, middle and tail",
        acked.len(),
        acked.iter().filter(|a| a.0 == target).count()
    );

    // Read everything back on host 1 and compare.
    let partitions: std::collections::BTreeSet<u64> = acked.iter().map(|a| a.0).collect();
    for p in partitions {
        let ps = p.to_string();
        let got = wait_for("a readable partition", Duration::from_secs(30), || {
            let (ok, out) = lab.shen(1, &["read", "--partition", &ps, "--max", "10000"]);
            ok.then_some(out)
        });
        let log: std::collections::BTreeMap<u64, String> = got
            .lines()
            .filter_map(|l| {
                // partition:offset<TAB>key<TAB>value
                let (pos, rest) = l.split_once('\t')?;
                let (_, data) = rest.split_once('\t')?;
                let (_, o) = pos.split_once(':')?;
                Some((o.parse().ok()?, data.to_string()))
            })
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for d in log.values() {
            assert!(seen.insert(d.clone()), "record {d} appears twice");
        }
        for (_, o, d) in acked.iter().filter(|a| a.0 == p) {
            assert_eq!(
                log.get(o),
                Some(d),
                "acknowledged append {d} at {p}:{o} lost"
            );
        }
    }
}

/// Wait up to `timeout` for host `i` to advertise a 10.213. address.
fn poll_external(lab: &Lab, i: usize, timeout: Duration) -> bool {
    let until = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < until {
        let ext = lab
            .status(i)
            .map(|st| st["net"]["external_addrs"].to_string())
            .unwrap_or_default();
        if ext.contains("10.213.") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}
