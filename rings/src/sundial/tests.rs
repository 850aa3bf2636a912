//! Sundial driven by a tiny deterministic harness (fixed latency, optional
//! loss, crashes). The full fault matrix runs in the simulator crate.

use super::*;
use crate::contract::{Ctx, Output, TokenSource};
use alloc::collections::{BTreeSet, BinaryHeap};
use alloc::format;
use core::cmp::Reverse;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

type Out = Output<u64, SundialMsg<u64>, SundialEvent<u64>>;

enum Ev {
    Msg {
        from: u64,
        to: u64,
        msg: SundialMsg<u64>,
    },
    Timer {
        node: u64,
        token: TimerToken,
    },
}

struct Harness {
    now: Time,
    nodes: BTreeMap<u64, Sundial<u64>>,
    tokens: BTreeMap<u64, TokenSource>,
    down: BTreeSet<u64>,
    queue: BinaryHeap<Reverse<(Time, u64)>>,
    events: BTreeMap<u64, Ev>,
    seq: u64,
    rng: ChaCha8Rng,
    loss: f64,
    latency: Duration,
    max_msg: usize,
    log: Vec<(Time, u64, SundialEvent<u64>)>,
    /// Drop every message between these two nodes (both ways).
    cut: BTreeSet<(u64, u64)>,
}

impl Harness {
    fn new(seed: u64) -> Self {
        Harness {
            now: Time::ZERO,
            nodes: BTreeMap::new(),
            tokens: BTreeMap::new(),
            down: BTreeSet::new(),
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            loss: 0.0,
            latency: Duration::from_millis(2),
            max_msg: 0,
            log: Vec::new(),
            cut: BTreeSet::new(),
        }
    }

    fn push(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn with_node<T>(
        &mut self,
        id: u64,
        f: impl FnOnce(&mut Sundial<u64>, &mut RingCtx<'_, u64, Sundial<u64>>) -> T,
    ) -> T {
        let mut out: Vec<Out> = Vec::new();
        let mut node = self.nodes.remove(&id).expect("node exists");
        let mut tokens = self.tokens.remove(&id).expect("tokens");
        let r = {
            let mut cx = Ctx::new(self.now, &id, &mut self.rng, &mut out, &mut tokens);
            f(&mut node, &mut cx)
        };
        self.nodes.insert(id, node);
        self.tokens.insert(id, tokens);
        for o in out {
            match o {
                Output::Send { to, msg } => {
                    let env = crate::wire::Envelope::wrap(RingId::SUNDIAL, &msg).unwrap();
                    self.max_msg = self.max_msg.max(env.encoded_len());
                    let lost = self.loss > 0.0
                        && (self.rng.next_u64() as f64 / u64::MAX as f64) < self.loss;
                    let cut = self.cut.contains(&(id.min(to), id.max(to)));
                    if !lost && !cut {
                        let at = self.now + self.latency;
                        self.push(at, Ev::Msg { from: id, to, msg });
                    }
                }
                Output::SetTimer { token, at } => self.push(at, Ev::Timer { node: id, token }),
                Output::CancelTimer { .. } => {}
                Output::Event(e) => self.log.push((self.now, id, e)),
            }
        }
        r
    }

    fn add(&mut self, id: u64, config: SundialConfig, seed_peer: Option<u64>) {
        self.add_node(Sundial::new(id, config, Vec::new()).unwrap(), seed_peer);
    }

    fn add_node(&mut self, s: Sundial<u64>, seed_peer: Option<u64>) {
        let id = s.own().id;
        self.nodes.insert(id, s);
        self.tokens.insert(id, TokenSource::new(self.seq as u32));
        self.down.remove(&id);
        self.with_node(id, |s, cx| s.on_start(cx));
        if let Some(p) = seed_peer {
            self.with_node(id, |s, cx| s.add_seed(cx, p));
        }
    }

    fn run_until(&mut self, t: Time) {
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > t {
                break;
            }
            self.queue.pop();
            self.now = at;
            let ev = self.events.remove(&seq).expect("event");
            match ev {
                Ev::Msg { from, to, msg } => {
                    if self.nodes.contains_key(&to) && !self.down.contains(&to) {
                        // round-trip through the wire format
                        let env = crate::wire::Envelope::wrap(RingId::SUNDIAL, &msg).unwrap();
                        let msg: SundialMsg<u64> = env.unwrap_msg().unwrap();
                        self.with_node(to, |s, cx| s.on_message(cx, from, msg));
                    }
                }
                Ev::Timer { node, token } => {
                    if self.nodes.contains_key(&node) && !self.down.contains(&node) {
                        self.with_node(node, |s, cx| s.on_timer(cx, token));
                    }
                }
            }
        }
        self.now = t;
    }

    fn up(&self) -> impl Iterator<Item = (&u64, &Sundial<u64>)> {
        self.nodes.iter().filter(|(id, _)| !self.down.contains(id))
    }

    fn converged(&self, expected: usize) -> bool {
        let mut hashes = self.up().map(|(_, s)| s.view_hash());
        let first = hashes.next();
        hashes.all(|h| Some(h) == first) && self.up().all(|(_, s)| s.live_count() == expected)
    }

    fn died(&self, victim: u64) -> Vec<(Time, u64)> {
        self.log
            .iter()
            .filter(|(_, _, e)| matches!(e, SundialEvent::Died { id } if *id == victim))
            .map(|(t, by, _)| (*t, *by))
            .collect()
    }
}

fn cluster(n: u64, seed: u64, config: &SundialConfig) -> Harness {
    let mut h = Harness::new(seed);
    for i in 0..n {
        let peer = if i == 0 {
            None
        } else {
            Some(h.rng.next_u64() % i)
        };
        h.add(i, config.clone(), peer);
    }
    h
}

#[test]
fn all_join_at_once_and_converge() {
    for seed in 0..5 {
        let cfg = SundialConfig::default();
        let mut h = cluster(64, seed, &cfg);
        let mut t = Time::ZERO;
        let mut rounds = 0;
        while !h.converged(64) {
            t += cfg.gossip_interval;
            rounds += 1;
            h.run_until(t);
            assert!(rounds < 30, "seed {seed}: no convergence after 30 rounds");
        }
        // log3(64) + 4 ≈ 7.8
        assert!(rounds <= 8, "seed {seed}: {rounds} rounds");
        assert!(h.max_msg <= 1200 + 8, "largest frame {}", h.max_msg);
        // identical placement inputs everywhere
        let first: Vec<Member<u64>> = h.nodes[&0].ankh_members();
        assert!(h.nodes.values().all(|s| s.ankh_members() == first));
    }
}

#[test]
fn a_crash_is_detected_by_everyone_without_false_deaths() {
    let cfg = SundialConfig::default();
    let mut h = cluster(40, 9, &cfg);
    h.run_until(Time::from_secs(5));
    assert!(h.converged(40));
    let victim = 17;
    h.down.insert(victim);
    let crash_at = h.now;
    h.run_until(crash_at + Duration::from_secs(6));
    for (id, s) in h.up() {
        assert_eq!(s.record(&victim).unwrap().status, Status::Dead, "node {id}");
        assert_eq!(s.live_count(), 39);
    }
    let deaths: Vec<u64> = h
        .log
        .iter()
        .filter_map(|(_, _, e)| match e {
            SundialEvent::Died { id } => Some(*id),
            _ => None,
        })
        .collect();
    assert!(
        deaths.iter().all(|d| *d == victim),
        "false deaths: {deaths:?}"
    );
    let last = h.died(victim).iter().map(|(t, _)| *t).max().unwrap();
    assert!(
        last - crash_at <= Duration::from_secs(4),
        "took {:?}",
        last - crash_at
    );
}

#[test]
fn lossy_jittery_network_has_no_false_deaths() {
    let cfg = SundialConfig::default();
    let mut h = cluster(30, 3, &cfg);
    h.loss = 0.01;
    h.run_until(Time::from_secs(120));
    let deaths = h
        .log
        .iter()
        .filter(|(_, _, e)| matches!(e, SundialEvent::Died { .. }))
        .count();
    assert_eq!(deaths, 0);
    assert!(h.converged(30));
}

#[test]
fn a_suspected_live_node_refutes() {
    let cfg = SundialConfig::default();
    let mut h = cluster(10, 4, &cfg);
    h.run_until(Time::from_secs(3));
    assert!(h.converged(10));
    // cut node 5 from one monitor long enough to be suspected, then heal
    let monitors: Vec<u64> = h
        .nodes
        .iter()
        .filter(|(_, s)| s.monitored().any(|m| *m == 5))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(monitors.len(), 3, "every member has 3 monitors");
    let m = monitors[0];
    h.cut.insert((m.min(5), m.max(5)));
    h.run_until(h.now + Duration::from_secs(2));
    h.cut.clear();
    h.run_until(h.now + Duration::from_secs(5));
    assert!(h
        .log
        .iter()
        .any(|(_, _, e)| matches!(e, SundialEvent::Suspected { id: 5, .. })));
    assert!(h
        .log
        .iter()
        .any(|(_, n, e)| *n == 5 && matches!(e, SundialEvent::Refuted { .. })));
    assert!(h.died(5).is_empty(), "one monitor's opinion must not kill");
    for (_, s) in h.up() {
        assert_eq!(s.record(&5).unwrap().status, Status::Alive);
    }
}

#[test]
fn leave_spreads_and_dead_node_returns_only_with_higher_incarnation() {
    let cfg = SundialConfig {
        dead_grace: Duration::from_secs(30),
        ..SundialConfig::default()
    };
    let mut h = cluster(12, 5, &cfg);
    h.run_until(Time::from_secs(3));
    h.with_node(3, |s, cx| s.leave(cx));
    h.run_until(h.now + Duration::from_secs(2));
    for (id, s) in h.up() {
        if *id != 3 {
            assert_eq!(s.record(&3).unwrap().status, Status::Left, "node {id}");
        }
    }
    // crash 7; wait until dead everywhere
    h.down.insert(7);
    h.run_until(h.now + Duration::from_secs(8));
    let dead_inc = h.nodes[&0].record(&7).unwrap().incarnation;
    assert_eq!(h.nodes[&0].record(&7).unwrap().status, Status::Dead);
    // a stale alive record at the old incarnation does not resurrect it
    let stale = Record {
        id: 7u64,
        incarnation: dead_inc,
        status: Status::Alive,
        suspectors: Vec::new(),
        meta: Vec::new(),
    };
    h.with_node(0, |s, cx| s.merge(cx, stale));
    assert_eq!(h.nodes[&0].record(&7).unwrap().status, Status::Dead);
    // restart 7 with a higher incarnation: it rejoins
    h.nodes.remove(&7);
    let s = Sundial::restarted(7, cfg.clone(), Vec::new(), dead_inc).unwrap();
    h.add_node(s, Some(0));
    h.run_until(h.now + Duration::from_secs(3));
    for (_, s) in h.up() {
        assert_eq!(s.record(&7).unwrap().status, Status::Alive);
    }
    // tombstones are forgotten after the grace period
    h.run_until(h.now + Duration::from_secs(40));
    assert!(h.nodes[&0].record(&3).is_none());
}

#[test]
fn metadata_spreads_and_drives_ankh() {
    let cfg = SundialConfig::default();
    let mut h = cluster(8, 6, &cfg);
    h.run_until(Time::from_secs(2));
    h.with_node(2, |s, cx| {
        s.set_meta(
            cx,
            alloc::vec![
                (META_ANKH_WEIGHT.into(), "300".into()),
                (META_ANKH_SALT.into(), "5".into()),
                ("addr".into(), "/ip4/127.0.0.1/tcp/4001".into()),
            ],
        )
        .unwrap()
    });
    h.run_until(h.now + Duration::from_secs(2));
    for (_, s) in h.up() {
        let m = s.ankh_members().into_iter().find(|m| m.id == 2).unwrap();
        assert_eq!((m.weight, m.salt), (300, 5));
        assert_eq!(
            s.record(&2).unwrap().meta("addr"),
            Some("/ip4/127.0.0.1/tcp/4001")
        );
    }
    let too_big = alloc::vec![("k".into(), "x".repeat(200))];
    assert_eq!(
        h.with_node(2, |s, cx| s.set_meta(cx, too_big)),
        Err(SundialError::MetaTooLarge)
    );
}

#[test]
fn foreign_clusters_are_ignored() {
    let mut h = Harness::new(1);
    h.add(1, SundialConfig::default(), None);
    let other = SundialConfig {
        cluster: "other".into(),
        ..SundialConfig::default()
    };
    h.add(2, other, Some(1));
    h.run_until(Time::from_secs(3));
    assert_eq!(h.nodes[&1].live_count(), 1);
    assert_eq!(h.nodes[&2].live_count(), 1);
    assert!(h.nodes[&1].stats().foreign_dropped > 0);
}

#[test]
fn messages_stay_bounded_with_a_large_view() {
    let cfg = SundialConfig::default();
    let mut h = cluster(400, 8, &cfg);
    h.run_until(Time::from_secs(4));
    assert!(h.max_msg <= 1200 + 8, "largest frame {}", h.max_msg);
    let _ = format!("{}", h.max_msg);
}

#[test]
fn extreme_incarnations_from_peers_do_not_panic() {
    let mut h = Harness::new(1);
    h.add(1, SundialConfig::default(), None);
    let rec = Record {
        id: 1u64,
        incarnation: u64::MAX,
        status: Status::Dead,
        suspectors: Vec::new(),
        meta: Vec::new(),
    };
    h.with_node(1, |s, cx| {
        s.on_message(
            cx,
            2,
            SundialMsg::Delta {
                cluster: s.cluster,
                records: alloc::vec![rec],
            },
        );
        s.on_message(
            cx,
            2,
            SundialMsg::Suspected {
                cluster: s.cluster,
                incarnation: u64::MAX,
            },
        )
    });
    assert_eq!(h.nodes[&1].own().status, Status::Alive);
}
