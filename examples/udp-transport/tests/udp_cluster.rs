//! Three UDP nodes on loopback run Sundial: views converge; one stops and
//! the others declare it dead; garbage datagrams are counted, not fatal.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shen_example_udp::{run_udp_node, Observed, UdpNodeConfig};
use shen_rings::stack::{JoinMode, StackConfig, SundialSettings};
use tokio::sync::watch;

fn free_addr() -> SocketAddr {
    // Bind port 0 to learn a free port, then release it for the node.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

fn wait(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let until = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn udp_nodes_run_sundial() {
    let book: HashMap<u64, SocketAddr> = (1..=3u64).map(|i| (i, free_addr())).collect();
    let stack = StackConfig {
        sundial: Some(SundialSettings {
            interval_ms: 50,
            suspicion_max_ms: 1_500,
            suspicion_min_ms: 200,
            join: JoinMode::AllMembers,
            ..SundialSettings::default()
        }),
        ..StackConfig::default()
    };
    let mut stops = Vec::new();
    let mut seen = Vec::new();
    let mut threads = Vec::new();
    for id in 1..=3u64 {
        let (tx, rx) = watch::channel(false);
        let obs = Arc::new(Observed::default());
        let config = UdpNodeConfig {
            id,
            book: book.clone(),
            stack: stack.clone(),
        };
        let o = obs.clone();
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(run_udp_node(config, o, rx)).unwrap();
        }));
        stops.push(tx);
        seen.push(obs);
    }
    wait("3 live members everywhere", Duration::from_secs(20), || {
        seen.iter().all(|o| o.live.load(Ordering::Relaxed) == 3)
    });
    // Garbage is dropped and counted.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"\x01\0\0\0\0\0\0\0garbage", book[&1]).unwrap();
    wait("garbage counted", Duration::from_secs(5), || {
        seen[0].bad_datagrams.load(Ordering::Relaxed) >= 1
    });
    // Node 3 stops: the others declare it dead.
    stops[2].send(true).unwrap();
    wait("node 3 declared dead", Duration::from_secs(20), || {
        seen[..2]
            .iter()
            .all(|o| o.live.load(Ordering::Relaxed) == 2)
    });
    for s in &stops {
        let _ = s.send(true);
    }
    for t in threads {
        t.join().unwrap();
    }
}
