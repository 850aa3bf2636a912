//! Peer-to-peer through NATs, in network namespaces (root only).
//!
//! The test builds this topology (every link a veth pair inside namespaces
//! it creates; the "internet" bridge lives in its own namespace, so nothing
//! touches the root namespace's network and no traffic leaves):
//!
//! ```text
//!                      internet bridge (namespace inet), 10.214.T.0/24
//!        +----------------+-----------------+------------------+
//!        |                |                 |                  |
//!   pub .10         rA .1 (easy NAT)   rB .2 (easy NAT)   rH .3 (hard NAT)
//!   public host     masquerade         masquerade         masquerade random
//!                   192.168.1.1        192.168.2.1        192.168.3.1 + bridge
//!                        |                  |               |           |
//!                   e1 .1.11           e2 .2.11        h1 .3.11    h2 .3.12
//! ```
//!
//! Like home routers, each router silently drops unsolicited packets from
//! the WAN (no RST or ICMP that would abort a hole punch's early SYN).
//! "Easy" routers keep the host's source port (nftables `masquerade`:
//! endpoint-independent mapping), so DCUtR can punch a direct connection
//! between e1 and e2; the "hard" router picks a random port per connection
//! (`masquerade random`: address-and-port-dependent mapping), so h1 and h2
//! stay relayed through the public host. h1 and h2 share a LAN but, with
//! mDNS off and listen addresses not advertised, they too go through the
//! relay. Then every host appends and reads; every node restarts without
//! `--peer` (the peer stores bring them back); the public host is killed
//! (`kill -9`) and the others report the loss. Linux NAT does no hairpinning, so
//! two hosts behind one router cannot punch to each other through it
//! (on a real LAN, mDNS finds them directly): that is why each easy host
//! has its own router. mDNS is off; discovery goes through the public host.
//! `tc netem` delay is added on the WAN links where the kernel has it.
//!
//! Everything (namespaces, processes) is removed on drop, also on failure.
//! Without root, `ip` or `nft`, the test prints why it is skipped and passes.
#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shen_tests::{shen_bin, NodeProc};

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root: network namespaces need CAP_NET_ADMIN".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` tool (iproute2) is not installed".into());
    }
    if Command::new("nft").arg("--version").output().is_err() {
        return Some("the `nft` tool (nftables) is not installed".into());
    }
    let probe = format!("shnp{}", std::process::id() % 100_000);
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace: {e}"));
    }
    let nft = run(
        "ip",
        &[
            "netns", "exec", &probe, "nft", "add", "table", "ip", "probe",
        ],
    );
    let _ = ip(&["netns", "del", &probe]);
    if let Err(e) = nft {
        return Some(format!("nftables does not work in a namespace: {e}"));
    }
    None
}

/// The namespaces of the topology; deleted on drop.
struct Lab {
    tag: String,
    net: u32,
    namespaces: Vec<String>,
    netem: bool,
}

/// The hosts that run nodes: (name, LAN address, router).
const HOSTS: [(&str, &str); 5] = [
    ("pub", ""),
    ("e1", "192.168.1.11"),
    ("e2", "192.168.2.11"),
    ("h1", "192.168.3.11"),
    ("h2", "192.168.3.12"),
];
const PUB: usize = 0;
const E1: usize = 1;
const E2: usize = 2;
const H1: usize = 3;
const H2: usize = 4;

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("sh{}{name}", self.tag)
    }

    fn add_ns(&mut self, name: &str) -> Result<String, String> {
        let ns = self.ns(name);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A veth pair between two namespaces (names are per namespace).
    fn veth(a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), String> {
        ip(&[
            "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
        ])?;
        ip(&["-n", a, "link", "set", a_if, "up"])?;
        ip(&["-n", b, "link", "set", b_if, "up"])
    }

    fn exec(ns: &str, cmd: &[&str]) -> Result<(), String> {
        let mut args = vec!["netns", "exec", ns];
        args.extend_from_slice(cmd);
        run("ip", &args)
    }

    fn new() -> Result<Lab, String> {
        let pid = std::process::id();
        let mut lab = Lab {
            tag: format!("{}", pid % 10_000),
            net: pid % 250 + 1,
            namespaces: Vec::new(),
            netem: false,
        };
        let net = lab.net;
        let wan = move |i: u32| format!("10.214.{net}.{i}");
        let inet = lab.add_ns("inet")?;
        ip(&["-n", &inet, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &inet, "link", "set", "br0", "up"])?;
        // The public host.
        let pubns = lab.add_ns("pub")?;
        Lab::veth(&pubns, "wan", &inet, "pub")?;
        ip(&["-n", &inet, "link", "set", "pub", "master", "br0"])?;
        ip(&[
            "-n",
            &pubns,
            "addr",
            "add",
            &format!("{}/24", wan(10)),
            "dev",
            "wan",
        ])?;
        // The routers and their home networks.
        for (r, wan_host, lan, hard, hosts) in [
            ("rA", 1, 1, false, &[E1][..]),
            ("rB", 2, 2, false, &[E2][..]),
            ("rH", 3, 3, true, &[H1, H2][..]),
        ] {
            let rns = lab.add_ns(r)?;
            Lab::veth(&rns, "wan", &inet, r)?;
            ip(&["-n", &inet, "link", "set", r, "master", "br0"])?;
            ip(&[
                "-n",
                &rns,
                "addr",
                "add",
                &format!("{}/24", wan(wan_host)),
                "dev",
                "wan",
            ])?;
            ip(&["-n", &rns, "link", "add", "lan", "type", "bridge"])?;
            ip(&["-n", &rns, "link", "set", "lan", "up"])?;
            ip(&[
                "-n",
                &rns,
                "addr",
                "add",
                &format!("192.168.{lan}.1/24"),
                "dev",
                "lan",
            ])?;
            Lab::exec(&rns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            let masq = if hard {
                "masquerade random"
            } else {
                "masquerade"
            };
            let rules = format!(
                "table ip nat {{\n chain post {{\n  type nat hook postrouting priority 100; policy accept;\n  oifname \"wan\" {masq}\n }}\n}}\n\
                 table ip filter {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n  iifname \"wan\" ct state new drop\n }}\n}}\n"
            );
            let file = std::env::temp_dir().join(format!("shen-nat-{}-{r}.nft", lab.tag));
            std::fs::write(&file, rules).map_err(|e| e.to_string())?;
            let applied = Lab::exec(&rns, &["nft", "-f", file.to_str().unwrap_or("")]);
            let _ = std::fs::remove_file(&file);
            applied?;
            // netem on the WAN link where the kernel has it.
            let netem = Lab::exec(
                &rns,
                &[
                    "tc", "qdisc", "add", "dev", "wan", "root", "netem", "delay", "10ms", "loss",
                    "0.5%",
                ],
            );
            lab.netem = netem.is_ok();
            for (k, &h) in hosts.iter().enumerate() {
                let (name, addr) = HOSTS[h];
                let hns = lab.add_ns(name)?;
                let port = format!("p{k}");
                Lab::veth(&hns, "eth0", &rns, &port)?;
                ip(&["-n", &rns, "link", "set", &port, "master", "lan"])?;
                ip(&[
                    "-n",
                    &hns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    "eth0",
                ])?;
                ip(&[
                    "-n",
                    &hns,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("192.168.{lan}.1"),
                ])?;
            }
        }
        Ok(lab)
    }

    fn pub_addr(&self) -> String {
        format!("10.214.{}.10", self.net)
    }

    fn addr_of(&self, h: usize) -> String {
        if h == PUB {
            self.pub_addr()
        } else {
            HOSTS[h].1.to_string()
        }
    }

    fn start(&self, h: usize, root: &Path, peer: Option<&str>) -> NodeProc {
        let a = self.addr_of(h);
        let tcp = format!("/ip4/{a}/tcp/4001");
        let quic = format!("/ip4/{a}/udp/4001/quic-v1");
        let mut args = vec![
            "--listen",
            &tcp,
            "--listen",
            &quic,
            "--no-mdns",
            "--admin",
            "127.0.0.1:7600",
            "--bootstrap-expect",
            "5",
        ];
        if let Some(p) = peer {
            args.push("--peer");
            args.push(p);
        }
        let ns = self.ns(HOSTS[h].0);
        NodeProc::start(&["ip", "netns", "exec", &ns], &root.join(HOSTS[h].0), &args)
    }

    /// `shen ARGS --admin 127.0.0.1:7600` in host `h`'s namespace.
    fn shen(&self, h: usize, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(HOSTS[h].0)])
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

    fn status(&self, h: usize) -> Option<serde_json::Value> {
        let (ok, out) = self.shen(h, &["status", "--json"]);
        if !ok {
            return None;
        }
        serde_json::from_str(&out).ok()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Poll `f` every 500 ms until true or `timeout`.
fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

fn logs(nodes: &[NodeProc]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let log = n.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("--- {}\n{}\n", HOSTS[i].0, tail.join("\n"))
        })
        .collect()
}

/// The connection kind host `from` reports for peer `to` (by PeerId).
fn kind(st: &serde_json::Value, to: &str) -> Option<String> {
    st["net"]["peers"]
        .as_array()?
        .iter()
        .find(|p| p["peer_id"] == to)
        .and_then(|p| p["kind"].as_str().map(str::to_string))
}

#[test]
fn nat_five_hosts_behind_easy_and_hard_nats_converge_with_reachability_and_relays() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED nat_five_hosts...: {why}");
        return;
    }
    let t_all = Instant::now();
    let lab = Lab::new().expect("build the NAT topology");
    if lab.netem {
        eprintln!("netem: 10 ms delay and 0.5% loss on every router's WAN link");
    } else {
        eprintln!("this kernel has no netem qdisc: the test runs without added delay or loss");
    }
    let root = tempfile::tempdir().unwrap();
    let all = [PUB, E1, E2, H1, H2];
    let mut nodes: Vec<NodeProc> = Vec::new();
    nodes.push(lab.start(PUB, root.path(), None));
    let intro = format!("/ip4/{}/tcp/4001", lab.pub_addr());
    for h in [E1, E2, H1, H2] {
        nodes.push(lab.start(h, root.path(), Some(&intro)));
    }
    let live = |h: usize| lab.status(h).and_then(|s| s["live_members"].as_u64());
    let ok = poll_until(Duration::from_secs(60), || {
        all.iter().all(|&h| live(h) == Some(5))
    });
    assert!(ok, "5 hosts did not converge in 60 s\n{}", logs(&nodes));
    eprintln!("5 views converged after {:?}", t_all.elapsed());
    let formed = poll_until(Duration::from_secs(60), || {
        all.iter().all(|&h| {
            lab.status(h)
                .is_some_and(|v| v["log"]["formed"] == true && v["log"]["recovered"] == true)
        })
    });
    assert!(formed, "the log did not form in 60 s\n{}", logs(&nodes));
    let ids: Vec<String> = all
        .iter()
        .map(|&h| {
            lab.status(h).unwrap()["peer_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    // Reachability: the public host confirmed, the others private.
    let reach = |h: usize| {
        lab.status(h)
            .and_then(|s| s["net"]["reachability"].as_str().map(str::to_string))
    };
    let ok = poll_until(Duration::from_secs(30), || {
        reach(PUB).as_deref() == Some("public")
            && [E1, E2, H1, H2]
                .iter()
                .all(|&h| reach(h).as_deref() == Some("private"))
    });
    assert!(
        ok,
        "reachability: {:?}\n{}",
        all.iter().map(|&h| reach(h)).collect::<Vec<_>>(),
        logs(&nodes)
    );

    // Every host behind a NAT holds a relay reservation on the public host.
    let ok = poll_until(Duration::from_secs(30), || {
        [E1, E2, H1, H2].iter().all(|&h| {
            lab.status(h).is_some_and(|s| {
                s["net"]["relays"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| *x == ids[PUB]))
            })
        })
    });
    assert!(
        ok,
        "a NAT'd host holds no relay reservation\n{}",
        logs(&nodes)
    );
    // Connection kinds. Every NAT'd host reaches the public host directly;
    // two NAT'd hosts cannot have a plain direct connection: nothing routes
    // to a home network from outside, and h1 and h2 (one LAN) never learn
    // each other's LAN address (listen addresses are not advertised, mDNS
    // is off). Theirs is relayed through the public host, or hole-punched.
    let mut last = String::new();
    let ok = poll_until(Duration::from_secs(30), || {
        let mut good = true;
        let mut cross = 0;
        last.clear();
        for &h in &[E1, E2, H1, H2] {
            let Some(st) = lab.status(h) else {
                return false;
            };
            good &= kind(&st, &ids[PUB]).as_deref() == Some("direct");
            // Only the reachable host serves as a relay, even once e1 and
            // e2 hold a punched connection to each other.
            let relays = st["net"]["relays"].as_array().cloned().unwrap_or_default();
            if relays.iter().any(|r| *r != ids[PUB]) {
                last += &format!("{} relays {relays:?}; ", HOSTS[h].0);
                good = false;
            }
            for &o in &[E1, E2, H1, H2] {
                if o == h {
                    continue;
                }
                if let Some(k) = kind(&st, &ids[o]) {
                    last += &format!("{}->{}: {k}; ", HOSTS[h].0, HOSTS[o].0);
                    cross += 1;
                    good &= k == "relayed" || k == "hole-punched";
                }
            }
        }
        // e1 and e2 (easy NATs) punch a direct connection.
        for (a, b) in [(E1, E2), (E2, E1)] {
            good &=
                lab.status(a).and_then(|st| kind(&st, &ids[b])).as_deref() == Some("hole-punched");
        }
        good && cross > 0
    });
    assert!(ok, "connection kinds: {last}\n{}", logs(&nodes));
    eprintln!("connection kinds between NAT'd hosts: {last}");

    // Appends and reads from every host.
    let appends_and_reads = |tag: &str| {
        for &h in &all {
            let key = format!("{tag}-{}", HOSTS[h].0);
            let val = format!("{tag} from {}", HOSTS[h].0);
            let mut said = String::new();
            let ok = poll_until(Duration::from_secs(20), || {
                let (ok, out) = lab.shen(h, &["append", "--json", &key, &val]);
                said = out;
                ok
            });
            assert!(ok, "append on {}: {said}", HOSTS[h].0);
        }
        for &h in &all {
            for &w in &all {
                let key = format!("{tag}-{}", HOSTS[w].0);
                let want = format!("\t{tag} from {}", HOSTS[w].0);
                let mut got = String::new();
                let ok = poll_until(Duration::from_secs(20), || {
                    let (ok, out) = lab.shen(h, &["read", "--key", &key]);
                    got = out;
                    ok && got.contains(&want)
                });
                assert!(ok, "read of {key} on {}: {got}", HOSTS[h].0);
            }
        }
    };
    appends_and_reads("first");
    eprintln!(
        "appends and reads from every host after {:?}",
        t_all.elapsed()
    );
    for &h in &all {
        let (_, text) = lab.shen(h, &["status"]);
        eprintln!("--- shen status on {}\n{text}", HOSTS[h].0);
    }

    // Restart every node without --peer: the peer stores bring them back.
    for n in nodes.iter_mut() {
        n.terminate(Duration::from_secs(10));
    }
    drop(nodes);
    let mut nodes: Vec<NodeProc> = all
        .iter()
        .map(|&h| lab.start(h, root.path(), None))
        .collect();
    let ok = poll_until(Duration::from_secs(60), || {
        all.iter().all(|&h| live(h) == Some(5))
    });
    assert!(
        ok,
        "after a restart without --peer the 5 hosts did not find each other in 60 s\n{}",
        logs(&nodes)
    );
    eprintln!(
        "restarted without --peer: converged after {:?}",
        t_all.elapsed()
    );
    appends_and_reads("again");

    // Whether e1 and e2 punched again after the restart (not guaranteed:
    // the routers' conntrack may still hold the old flow between the same
    // ports; see the issue).
    let punched = |lab: &Lab| {
        [(E1, E2), (E2, E1)].iter().all(|&(a, b)| {
            lab.status(a).and_then(|st| kind(&st, &ids[b])).as_deref() == Some("hole-punched")
        })
    };
    let repunched = poll_until(Duration::from_secs(15), || punched(&lab));
    eprintln!("e1-e2 hole-punched again after the restart: {repunched}");

    // Lose the public host (kill -9: no leave gossip, the others must
    // detect it): they keep answering and report the loss.
    let _ = nodes[PUB].child.kill();
    let _ = nodes[PUB].child.wait();
    let rest = [E1, E2, H1, H2];
    let ok = poll_until(Duration::from_secs(40), || {
        rest.iter().all(|&h| live(h).is_some_and(|n| n < 5))
    });
    assert!(
        ok,
        "the loss of the public host is not reported: {:?}\n{}",
        rest.iter().map(|&h| live(h)).collect::<Vec<_>>(),
        logs(&nodes)
    );
    let ok = poll_until(Duration::from_secs(20), || {
        rest.iter().all(|&h| {
            let st = lab.status(h).expect("status after the public host is gone");
            kind(&st, &ids[PUB]).is_none()
        })
    });
    assert!(
        ok,
        "a host still shows a connection to the dead public host"
    );
    // Nor a reservation on it, nor an address relayed through it (listened
    // on or advertised).
    let via_pub = |st: &serde_json::Value| {
        let mut left: Vec<String> = Vec::new();
        for k in ["listen_addrs", "external_addrs", "relays"] {
            for a in st["net"][k].as_array().into_iter().flatten() {
                if a.as_str().is_some_and(|a| a.contains(ids[PUB].as_str())) {
                    left.push(format!("{k}: {a}"));
                }
            }
        }
        left
    };
    let mut last = Vec::new();
    let ok = poll_until(Duration::from_secs(20), || {
        last = rest
            .iter()
            .filter_map(|&h| lab.status(h))
            .flat_map(|st| via_pub(&st))
            .collect();
        last.is_empty()
    });
    assert!(
        ok,
        "hosts still list the dead relay: {last:?}\n{}",
        logs(&nodes)
    );
    // A hole-punched e1-e2 connection does not need the relay.
    let ok = !repunched || poll_until(Duration::from_secs(30), || punched(&lab));
    assert!(
        ok,
        "e1 and e2 lost their punched connection with the relay\n{}",
        logs(&nodes)
    );
    let served: Vec<(&str, bool)> = rest
        .iter()
        .map(|&h| {
            let (ok, _) = lab.shen(h, &["read", "--key", &format!("again-{}", HOSTS[h].0)]);
            (HOSTS[h].0, ok)
        })
        .collect();
    eprintln!("reads without the public host: {served:?}");
    for &h in &rest {
        let (_, text) = lab.shen(h, &["status"]);
        eprintln!(
            "--- shen status on {} without the public host\n{text}",
            HOSTS[h].0
        );
    }
    eprintln!("done in {:?}", t_all.elapsed());
    drop(nodes);
}
