//! Multi-host tests in network namespaces (root only).
//!
//! Each test builds its own bridge and one namespace per host, joined by
//! veth pairs (10.213.<net>.0/24; nothing routes outside the bridge, the
//! bridge has no address). Nodes are started with no `--peer`: they must
//! find each other by mDNS. Everything is removed on drop, also when the test
//! fails. Status is read with `ip netns exec NS shen status --json` (admin
//! HTTP listens on each namespace's own 127.0.0.1), or, where it is polled
//! under load, by a thread that enters the namespace (`Lab::enter`, setns).
//!
//! `netns_elastic_*` is issue 17's elastic-log schedule (the loopback twin
//! is `cluster_elastic.rs`): 3 hosts form the log, 2 more found by mDNS
//! join under load, one is killed and removed, one leaves.
//!
//! Without root (or without `ip`), the tests print why they are skipped and
//! pass.
#![cfg(unix)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shen_tests::{shen_bin, wait_for, NodeProc};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The tests of this file run in parallel, each in its own lab, except the
/// one that measures append rates: it holds this exclusively, so that its
/// steady rate and its rates during changes are measured on the same
/// machine load (the others hold it shared).
static RATES: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn alongside_others() -> std::sync::RwLockReadGuard<'static, ()> {
    RATES.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    RATES.write().unwrap_or_else(|e| e.into_inner())
}

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
    let _rates = alongside_others();
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
    let _rates = alongside_others();
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
    /// (success, stdout), or (false, stdout and stderr).
    fn shen(&self, i: usize, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i].ns])
            .arg(shen_bin())
            .args(args)
            .args(["--admin", "127.0.0.1:7600"])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => (true, String::from_utf8_lossy(&o.stdout).into_owned()),
            // A failure says why on stderr: keep it for the message.
            Ok(o) => (
                false,
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
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
    let _rates = alongside_others();
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
        // A repair may put host 0 (the writers' way in) in the chain for a
        // while; rebalancing moves the chain back to where placement wants
        // it, which leaves host 0 out.
        let c = wait_for(
            "the target chain at full length, without host 0",
            Duration::from_secs(90),
            || chain(0, target).filter(|c| c.len() == 3 && !c.contains(&0)),
        );
        let victim = c[at];
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

/// Every node's admin API, inside its own namespace (`shen run`'s default).
const ADMIN: &str = "127.0.0.1:7600";

impl Lab {
    /// Start host `i`'s node with nothing but `--data-dir` (and `ip netns
    /// exec`): the defaults, listening on every interface, the admin API on
    /// 127.0.0.1:7600 and mDNS on, are all a host in a namespace needs.
    fn start_bare(&self, i: usize, dir: &std::path::Path) -> NodeProc {
        NodeProc::start(&["ip", "netns", "exec", &self.hosts[i].ns], dir, &[])
    }

    /// Move the calling thread into host `i`'s network namespace: setns(2)
    /// changes the namespace of the calling thread only, and its sockets
    /// from then on are that host's, so `127.0.0.1:7600` is host `i`'s
    /// admin API. Only for threads of the test's own making (never the
    /// test's main thread, which starts processes).
    fn enter(&self, i: usize) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        // Where `ip netns add` keeps its namespaces.
        let path = format!("/var/run/netns/{}", self.hosts[i].ns);
        let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        // SAFETY: `f` is an open namespace file for the whole call, and
        // CLONE_NEWNET changes only this thread's network namespace.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("setns {path}: {}", std::io::Error::last_os_error()))
        }
    }

    /// One admin request to host `i` from a thread that enters its
    /// namespace: (status code, body).
    fn http(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter(i)?;
                shen_tests::http_request(ADMIN, method, path, body, timeout).map(|(c, _, b)| (c, b))
            })
            .join()
            .expect("the admin request's thread")
        })
    }

    /// Host `i`'s `/status` over its admin API (no process spawned: cheap
    /// enough to poll under load).
    fn status_now(&self, i: usize) -> Option<serde_json::Value> {
        match self.http(i, "GET", "/status", &[], Duration::from_secs(2)) {
            Ok((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// The log's members as host `i` sees them.
    fn log_members(&self, i: usize) -> Vec<String> {
        self.status_now(i)
            .and_then(|v| {
                v["log"]["members"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|m| m.as_str().map(String::from))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Chains (as host `i` sees them) that list `who` as member or learner.
    fn chains_with(&self, i: usize, who: &str) -> usize {
        self.status_now(i)
            .map_or(0, |v| shen_tests::chains_with(&v, who))
    }

    /// Every chain full (rf members, no learners) as host `i` sees it.
    fn settled(&self, i: usize) -> bool {
        self.status_now(i)
            .is_some_and(|v| shen_tests::chains_settled(&v))
    }
}

/// Writers of the elastic test (each append on a new key, at most
/// `ELASTIC_APPEND_TIMEOUT`, then on to the next key: a real producer).
const ELASTIC_WRITERS: usize = 6;
const ELASTIC_APPEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Issue 17's real-process schedule, with mDNS as the only introduction
/// (`cluster_elastic.rs` runs it on loopback with `--peer`): 3 hosts form
/// the log; under a steady write load 2 more start with nothing but
/// `--data-dir`, are found by mDNS, join on their own and receive
/// partitions; one member is killed (`kill -9`) for good and removed with
/// `shen member remove --wait`; one leaves with `shen leave`. Every
/// acknowledged append is read back exactly once, and during each change
/// appends go on at >= 50% of the steady rate.
///
/// The writers talk to the hosts' admin APIs (127.0.0.1:7600 in each
/// namespace) from threads that enter the host's namespace (setns(2)):
/// an HTTP request costs what it costs on loopback, where `ip netns exec
/// shen append` would cost two process starts per append.
#[test]
fn netns_elastic_hosts_join_by_mdns_die_and_leave_under_load() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED netns_elastic_...: {why}");
        return;
    }
    let _rates = alone();
    use shen_tests::load::{appended_at, check_changes, check_read_back, AppendFn, Change, Load};
    use std::sync::Arc;
    let t_start = Instant::now();
    let lab = Arc::new(Lab::new(5).expect("build the namespace lab"));
    let root = shen_tests::scratch_dir();
    let dir = |i: usize| root.path().join(format!("h{i}"));
    let mut nodes: Vec<NodeProc> = (0..3)
        .map(|i| lab.start(i, &dir(i), &["--bootstrap-expect", "3"]))
        .collect();
    let formed = poll_until(Duration::from_secs(60), || {
        (0..3).all(|i| lab.log_formed(i) && lab.log_members(i).len() == 3)
    });
    assert!(formed, "the log did not form in 60 s\n{}", logs(&nodes));
    let ids: Vec<String> = nodes
        .iter()
        .map(|n| n.info(Duration::from_secs(10)).peer_id)
        .collect();
    // A thread that entered host i's namespace reaches host i's node.
    for (i, id) in ids.iter().enumerate() {
        let seen = lab.status_now(i).map(|v| v["peer_id"].clone());
        assert_eq!(seen, Some(serde_json::json!(id)), "host {i}'s admin API");
    }
    eprintln!("3 hosts formed the log by mDNS in {:?}", t_start.elapsed());

    let append: Arc<AppendFn> = {
        let lab = lab.clone();
        Arc::new(move |_w, host, key| {
            lab.enter(host)?;
            match shen_tests::http_request(
                ADMIN,
                "POST",
                &format!("/log/append?key={key}"),
                key.as_bytes(),
                ELASTIC_APPEND_TIMEOUT,
            ) {
                Ok((200, _, body)) => appended_at(&body),
                Ok((code, _, body)) => Err(format!("{code} {}", body.trim())),
                Err(e) => Err(e),
            }
        })
    };
    let load = Load::start(
        ELASTIC_WRITERS,
        vec![0, 1, 2],
        Duration::from_secs(240),
        append,
    );
    std::thread::sleep(Duration::from_secs(1));
    let steady = load.measure(Duration::from_secs(4));
    assert!(steady > 5.0, "the writers are not writing: {steady:.1}/s");
    let first_steady = steady;
    let mut changes: Vec<Change> = Vec::new();

    // Two hosts start with nothing but --data-dir: mDNS finds the cluster
    // and they are added on their own.
    let t = Instant::now();
    for i in 3..5 {
        nodes.push(lab.start_bare(i, &dir(i)));
    }
    let new: Vec<String> = nodes[3..]
        .iter()
        .map(|n| n.info(Duration::from_secs(20)).peer_id)
        .collect();
    let joined = poll_until(Duration::from_secs(90), || {
        let m = lab.log_members(0);
        new.iter()
            .all(|id| m.contains(id) && lab.chains_with(0, id) > 0)
    });
    assert!(
        joined,
        "the new hosts were not added with partitions in 90 s: members {:?}\n{}",
        lab.log_members(0),
        logs(&nodes)
    );
    let settled = poll_until(Duration::from_secs(90), || lab.settled(0));
    assert!(
        settled,
        "the chains did not settle after the joins\n{}",
        logs(&nodes)
    );
    changes.push(Change {
        what: "two joins",
        steady,
        from: t,
        to: Instant::now(),
    });
    load.add_target(3);
    load.add_target(4);
    let (ok, said) = lab.shen(0, &["member", "list"]);
    assert!(ok && said.contains("member set v2: 5 members"), "{said}");
    for id in &new {
        assert!(said.contains(id.as_str()), "{said}");
    }

    // Host 1 dies for good and is removed at once (from host 0).
    let steady = load.measure(Duration::from_secs(3));
    let t = Instant::now();
    let dead = ids[1].clone();
    load.remove_target(1);
    let _ = nodes[1].child.kill();
    let _ = nodes[1].child.wait();
    let (ok, said) = lab.shen(
        0,
        &["member", "remove", &dead, "--wait", "--timeout", "60s"],
    );
    assert!(ok, "shen member remove: {said}\n{}", logs(&nodes));
    let settled = poll_until(Duration::from_secs(90), || {
        lab.chains_with(0, &dead) == 0 && lab.settled(0)
    });
    assert!(
        settled,
        "the chains did not settle after the removal\n{}",
        logs(&nodes)
    );
    changes.push(Change {
        what: "a death and its removal",
        steady,
        from: t,
        to: Instant::now(),
    });
    assert_eq!(lab.log_members(0).len(), 4);

    // Host 2 leaves: `shen leave` returns 0 once it is out.
    let steady = load.measure(Duration::from_secs(3));
    let t = Instant::now();
    let leaver = ids[2].clone();
    load.remove_target(2);
    let (ok, said) = lab.shen(2, &["leave", "--timeout", "120s"]);
    assert!(ok, "shen leave: {said}\n{}", logs(&nodes));
    assert!(said.contains("left: member set v"), "{said}");
    assert!(!lab.log_members(0).contains(&leaver));
    assert_eq!(
        lab.chains_with(0, &leaver),
        0,
        "the leaver still holds chains"
    );
    changes.push(Change {
        what: "a leave",
        steady,
        from: t,
        to: Instant::now(),
    });
    let (ok, table) = lab.shen(0, &["status"]);
    // Two joins, a removal, a leave (marked, then removed): version 5.
    assert!(
        ok && table.contains("OWNS(LOG)") && table.contains("member set v5: 3 members"),
        "{table}"
    );

    std::thread::sleep(ELASTIC_APPEND_TIMEOUT);
    let book = load.stop();
    eprintln!(
        "steady {first_steady:.1} appends/s at first with {ELASTIC_WRITERS} writers; {} acknowledged, {} failed",
        book.acked.len(),
        book.failures.len()
    );
    // Appends went on during each change, the death included, at >= 50%
    // of the steady rate of the seconds before it, counted over at least
    // the append timeout (`Book::change_rate`). The writers are
    // concurrent, so a stall of the chains a change touches (a few hundred
    // ms after a kill -9, until its removal moves them) is not all there is.
    check_changes(&book, &changes, ELASTIC_APPEND_TIMEOUT, 0.5);
    // Every acknowledged append is read back exactly once (on host 0).
    let read = check_read_back(&book, |path| {
        match lab.http(0, "GET", path, &[], Duration::from_secs(10)) {
            Ok((200, body)) => Ok(body),
            Ok((code, body)) => Err(format!("{code}: {body}")),
            Err(e) => Err(e),
        }
    });
    assert!(
        book.acked.len() > 100,
        "only {} appends acknowledged",
        book.acked.len()
    );
    eprintln!(
        "{} acknowledged appends read back exactly once among {read} records; {:?} in all",
        book.acked.len(),
        t_start.elapsed()
    );
}
