//! What the viz reads from the world at each check point, and the
//! invariants it checks on it.
//!
//! | invariant | kind | holds when |
//! |---|---|---|
//! | `one_token_holder` | safety | at most one running node holds a Cartouche grant whose lease has not run out (on its own clock) |
//! | `views_converged` | liveness | every running node has the same Sundial view hash, sees every running node alive and every crashed node dead |
//! | `placements_agree` | liveness | every running node's view gives the same Ankh member list (so the same placement) |
//! | `chain_prefix_order` | safety (log worlds) | in every partition, the committed prefixes of all running replicas are prefixes of one log |
//! | `no_lost_ack` | safety + liveness (log worlds) | no replica commits another record at an acknowledged append's offset (safety); every acknowledged append is in the committed log of its chain's tail (liveness: a new tail catches up first) |
//!
//! A liveness invariant is violated when it stays false for longer than
//! [`converge_bound`] after the last user action; it is *suspended* while a
//! partition or message loss is in force (the protocols make no promise
//! then). The first violation's virtual time is kept for the timeline.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde::Serialize;
use shen_rings::cartouche::{Cartouche, Fencing};
use shen_rings::stack::ShenEvent;
use shen_rings::sundial::{Status, Sundial};
use shen_rings::Time;
use shen_transport_memory::Sim;

use crate::log::LogObs;

/// One node as seen at a check point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeObs {
    /// Node id.
    pub id: u64,
    /// Running.
    pub up: bool,
    /// Incarnation (restarts + 1).
    pub incarnation: u32,
    /// Running nodes (itself excluded) whose view says alive.
    pub alive_votes: u32,
    /// ... says suspect.
    pub suspect_votes: u32,
    /// ... says dead (or left).
    pub dead_votes: u32,
    /// The highest phi any running monitor computes for it now.
    pub max_phi: f64,
    /// The Cartouche token rests here.
    pub has_token: bool,
    /// Fencing number of its valid grant, if it holds one.
    pub holding: Option<Fencing>,
    /// Its pending token requests.
    pub pending: usize,
    /// Its Sundial view hash (0 when down).
    pub view_hash: u64,
    /// Members it believes live (itself included).
    pub live_count: usize,
    /// Hash of the Ankh member list its view gives (0 when down).
    pub placement_hash: u64,
    /// Its side of the partition (0 when the network is whole).
    pub group: u32,
}

/// Placement hashes by node, keyed by the view hash they were computed
/// from (a view's hash fixes its records, hence its Ankh members).
#[derive(Clone, Debug, Default)]
pub struct PlacementCache(BTreeMap<u64, (u64, u64)>);

/// The world at one check point.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Observation {
    /// Virtual time, µs.
    pub at_us: u64,
    /// Every node.
    pub nodes: Vec<NodeObs>,
    /// The Sundial phi threshold.
    pub phi_threshold: f64,
    /// Whether a partition cuts the network.
    pub partitioned: bool,
    /// Event counts by name, over the whole run.
    pub events: BTreeMap<String, u64>,
    /// The Shen log's replicas and acknowledged appends (log worlds).
    #[serde(skip)]
    pub log: Option<LogObs>,
}

impl Observation {
    /// Look at `sim` now.
    pub fn take(sim: &Sim<ShenEvent<u64>>) -> Observation {
        Observation::take_cached(sim, &mut PlacementCache::default())
    }

    /// [`Observation::take`], reusing placement hashes of views that did
    /// not change since the last call.
    pub fn take_cached(sim: &Sim<ShenEvent<u64>>, cache: &mut PlacementCache) -> Observation {
        let n = sim.node_count();
        let mut nodes: Vec<NodeObs> = (0..n)
            .map(|id| NodeObs {
                id,
                up: sim.node(id).is_some(),
                incarnation: sim.node_status(id).map_or(0, |s| s.incarnation),
                alive_votes: 0,
                suspect_votes: 0,
                dead_votes: 0,
                max_phi: 0.0,
                has_token: false,
                holding: None,
                pending: 0,
                view_hash: 0,
                live_count: 0,
                placement_hash: 0,
                group: 0,
            })
            .collect();
        let mut phi_threshold = 8.0;
        for id in 0..n {
            let Some(node) = sim.node(id) else { continue };
            let local = sim.node_status(id).map_or(sim.now(), |s| s.local_time);
            if let Some(s) = node.ring::<Sundial<u64>>() {
                phi_threshold = s.config().phi.threshold;
                let me = &mut nodes[id as usize];
                me.view_hash = s.view_hash();
                me.live_count = s.live_count();
                let vh = s.view_hash();
                me.placement_hash = match cache.0.get(&id) {
                    Some((v, p)) if *v == vh => *p,
                    _ => {
                        let mut h = DefaultHasher::new();
                        for m in s.ankh_members() {
                            (m.id, m.weight, m.salt).hash(&mut h);
                        }
                        let p = h.finish() | 1;
                        cache.0.insert(id, (vh, p));
                        p
                    }
                };
                for r in s.records() {
                    if r.id == id || r.id >= n {
                        continue;
                    }
                    let o = &mut nodes[r.id as usize];
                    match r.status {
                        Status::Alive => o.alive_votes += 1,
                        Status::Suspect => o.suspect_votes += 1,
                        Status::Dead | Status::Left => o.dead_votes += 1,
                    }
                }
                for m in s.monitored() {
                    if let (Some(p), Some(o)) = (s.phi_of(m, local), nodes.get_mut(*m as usize)) {
                        if p.is_finite() && p > o.max_phi {
                            o.max_phi = p;
                        }
                    }
                }
            }
            if let Some(c) = node.ring::<Cartouche<u64>>() {
                let me = &mut nodes[id as usize];
                me.has_token = c.has_token();
                me.holding = c.holding(local);
                me.pending = c.pending().count();
            }
        }
        // Partition sides: a representative per side.
        let mut reps: Vec<u64> = Vec::new();
        for id in 0..n {
            let g = reps
                .iter()
                .position(|r| !sim.is_cut(*r, id) && !sim.is_cut(id, *r));
            let g = g.unwrap_or_else(|| {
                reps.push(id);
                reps.len() - 1
            });
            nodes[id as usize].group = g as u32;
        }
        Observation {
            at_us: sim.now().as_micros(),
            nodes,
            phi_threshold,
            partitioned: reps.len() > 1,
            events: sim
                .event_counts()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            log: None,
        }
    }

    /// The lowest running node.
    pub fn first_up(&self) -> Option<u64> {
        self.nodes.iter().find(|n| n.up).map(|n| n.id)
    }

    /// Running nodes holding a valid grant.
    pub fn holders(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.up && n.holding.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// Every running node has the same view, which holds exactly the
    /// running nodes as live.
    pub fn views_converged(&self) -> bool {
        let up: Vec<&NodeObs> = self.nodes.iter().filter(|n| n.up).collect();
        let Some(first) = up.first() else {
            return true;
        };
        let others = up.len() as u32 - 1;
        up.iter().all(|n| n.view_hash == first.view_hash)
            && self.nodes.iter().all(|n| {
                if n.up {
                    n.alive_votes == others && n.suspect_votes == 0 && n.dead_votes == 0
                } else {
                    n.alive_votes == 0 && n.suspect_votes == 0
                }
            })
    }

    /// Every running node's view gives the same Ankh placement.
    pub fn placements_agree(&self) -> bool {
        let mut up = self.nodes.iter().filter(|n| n.up);
        match up.next() {
            None => true,
            Some(first) => up.all(|n| n.placement_hash == first.placement_hash),
        }
    }
}

/// How long a liveness invariant may stay false after the last action:
/// 20 s plus 1 s per doubling of the cluster.
pub fn converge_bound(nodes: usize) -> u64 {
    let doublings = usize::BITS - nodes.max(1).leading_zeros();
    20_000_000 + 1_000_000 * u64::from(doublings)
}

/// One invariant's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// Its name.
    pub name: &'static str,
    /// `ok`, `violated`, `converging` (false, within its bound) or
    /// `suspended` (false under a partition or loss).
    pub state: &'static str,
    /// Virtual time (µs) of the first violation in this history.
    pub first_violation_us: Option<u64>,
    /// What is wrong now, if anything.
    pub detail: String,
    #[serde(skip)]
    false_since: Option<u64>,
}

impl Check {
    fn new(name: &'static str) -> Check {
        Check {
            name,
            state: "ok",
            first_violation_us: None,
            detail: String::new(),
            false_since: None,
        }
    }

    fn violated(&mut self, now: u64, detail: String) {
        self.state = "violated";
        self.detail = detail;
        self.first_violation_us.get_or_insert(now);
    }

    fn liveness(&mut self, holds: bool, now: u64, since_action: u64, suspended: bool, bound: u64) {
        if holds {
            self.state = "ok";
            self.detail.clear();
            self.false_since = None;
        } else if suspended {
            self.state = "suspended";
            self.detail = "partition or loss in force".into();
            self.false_since = None;
        } else {
            let since = (*self.false_since.get_or_insert(now)).max(since_action);
            if now - since > bound {
                let d = format!("false for {:.1} s", (now - since) as f64 / 1e6);
                self.violated(now, d);
            } else {
                self.state = "converging";
                self.detail = format!("false for {:.1} s", (now - since) as f64 / 1e6);
            }
        }
    }
}

/// The invariants of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Invariants {
    /// At most one valid grant.
    pub one_token_holder: Check,
    /// Sundial views converge.
    pub views_converged: Check,
    /// Ankh placements agree.
    pub placements_agree: Check,
    /// Log worlds: committed prefixes agree.
    pub chain_prefix_order: Option<Check>,
    /// Log worlds: no acknowledged append is lost.
    pub no_lost_ack: Option<Check>,
    #[serde(skip)]
    last_action_us: u64,
}

impl Default for Invariants {
    fn default() -> Self {
        Invariants::new(false)
    }
}

impl Invariants {
    /// The invariants of a world, with the log's two when `log`.
    pub fn new(log: bool) -> Invariants {
        Invariants {
            one_token_holder: Check::new("one_token_holder"),
            views_converged: Check::new("views_converged"),
            placements_agree: Check::new("placements_agree"),
            chain_prefix_order: log.then(|| Check::new("chain_prefix_order")),
            no_lost_ack: log.then(|| Check::new("no_lost_ack")),
            last_action_us: 0,
        }
    }

    /// The user acted at `now`: liveness bounds restart from here.
    pub fn disturbed(&mut self, now: Time) {
        self.last_action_us = now.as_micros();
    }

    /// Check `obs` taken at `now` (`loss`: the network's loss probability).
    pub fn check(&mut self, now: Time, obs: &Observation, loss: f64) {
        let now = now.as_micros();
        let holders = obs.holders();
        if holders.len() > 1 {
            self.one_token_holder
                .violated(now, format!("nodes {holders:?} hold grants at once"));
        } else {
            self.one_token_holder.state = "ok";
            self.one_token_holder.detail.clear();
        }
        let suspended = obs.partitioned || loss > 0.0;
        let bound = converge_bound(obs.nodes.len());
        self.views_converged.liveness(
            obs.views_converged(),
            now,
            self.last_action_us,
            suspended,
            bound,
        );
        self.placements_agree.liveness(
            obs.placements_agree(),
            now,
            self.last_action_us,
            suspended,
            bound,
        );
        let Some(log) = &obs.log else { return };
        if let Some(c) = &mut self.chain_prefix_order {
            match log.prefix_violation() {
                Some(d) => c.violated(now, d),
                None => {
                    c.state = "ok";
                    c.detail.clear();
                }
            }
        }
        if let Some(c) = &mut self.no_lost_ack {
            match log.ack_check() {
                (Some(broken), _) => {
                    c.violated(now, broken);
                    c.false_since = None;
                }
                (None, missing) => {
                    let holds = missing.is_none();
                    c.liveness(holds, now, self.last_action_us, suspended, bound);
                    if let (Some(m), false) = (missing, c.state == "suspended") {
                        c.detail = format!("{m}; {}", c.detail);
                    }
                }
            }
        }
    }

    /// Every invariant of the world, in display order.
    pub fn all(&self) -> Vec<&Check> {
        let mut v = vec![
            &self.one_token_holder,
            &self.views_converged,
            &self.placements_agree,
        ];
        v.extend(self.chain_prefix_order.iter());
        v.extend(self.no_lost_ack.iter());
        v
    }

    /// The earliest violation of any invariant.
    pub fn first_violation_us(&self) -> Option<u64> {
        self.all().iter().filter_map(|c| c.first_violation_us).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, up: bool) -> NodeObs {
        NodeObs {
            id,
            up,
            incarnation: 1,
            alive_votes: 0,
            suspect_votes: 0,
            dead_votes: 0,
            max_phi: 0.0,
            has_token: false,
            holding: None,
            pending: 0,
            view_hash: 7,
            live_count: 0,
            placement_hash: 9,
            group: 0,
        }
    }

    fn converged(n: u64) -> Observation {
        Observation {
            nodes: (0..n)
                .map(|i| NodeObs {
                    alive_votes: n as u32 - 1,
                    ..node(i, true)
                })
                .collect(),
            phi_threshold: 8.0,
            ..Observation::default()
        }
    }

    #[test]
    fn two_holders_is_a_violation_kept_with_its_first_time() {
        let mut inv = Invariants::default();
        let mut obs = converged(3);
        obs.nodes[0].holding = Some(Fencing::default());
        inv.check(Time::from_millis(100), &obs, 0.0);
        assert_eq!(inv.one_token_holder.state, "ok");
        obs.nodes[2].holding = Some(Fencing::default());
        inv.check(Time::from_millis(150), &obs, 0.0);
        assert_eq!(inv.one_token_holder.state, "violated");
        assert!(inv.one_token_holder.detail.contains("[0, 2]"));
        obs.nodes[2].holding = None;
        inv.check(Time::from_millis(200), &obs, 0.0);
        assert_eq!(inv.one_token_holder.state, "ok");
        assert_eq!(inv.one_token_holder.first_violation_us, Some(150_000));
        assert_eq!(inv.first_violation_us(), Some(150_000));
        // A crashed holder does not count.
        obs.nodes[2].holding = Some(Fencing::default());
        obs.nodes[2].up = false;
        assert_eq!(obs.holders(), vec![0]);
    }

    #[test]
    fn divergence_becomes_a_violation_only_after_the_bound() {
        let mut inv = Invariants::default();
        let mut obs = converged(4);
        assert!(obs.views_converged() && obs.placements_agree());
        obs.nodes[1].view_hash = 8;
        let bound = converge_bound(4);
        inv.check(Time::from_micros(1_000_000), &obs, 0.0);
        assert_eq!(inv.views_converged.state, "converging");
        assert_eq!(inv.placements_agree.state, "ok");
        inv.check(Time::from_micros(1_000_000 + bound), &obs, 0.0);
        assert_eq!(inv.views_converged.state, "converging");
        // An action restarts the clock.
        inv.disturbed(Time::from_micros(2_000_000));
        inv.check(Time::from_micros(1_000_001 + bound), &obs, 0.0);
        assert_eq!(inv.views_converged.state, "converging");
        let late = 2_000_001 + bound;
        inv.check(Time::from_micros(late), &obs, 0.0);
        assert_eq!(inv.views_converged.state, "violated");
        assert_eq!(inv.views_converged.first_violation_us, Some(late));
        // Loss suspends it; convergence clears it (the first time stays).
        inv.check(Time::from_micros(late + 1), &obs, 0.1);
        assert_eq!(inv.views_converged.state, "suspended");
        obs.nodes[1].view_hash = 7;
        inv.check(Time::from_micros(late + 2), &obs, 0.0);
        assert_eq!(inv.views_converged.state, "ok");
        assert_eq!(inv.views_converged.first_violation_us, Some(late));
    }

    #[test]
    fn a_broken_log_is_a_violation_marked_with_its_first_time() {
        use crate::log::{fingerprint, Acked, LogObs, PartObs, ReplicaObs};
        let rep = |node: u64, prints: Vec<u64>| ReplicaObs {
            node,
            len: prints.len() as u64,
            commit: prints.len() as u64,
            epoch: (2, 0),
            member: true,
            prints,
        };
        let a = fingerprint(7, b"k#1");
        let mut obs = converged(3);
        obs.log = Some(LogObs {
            ballot: (2, 0),
            members: Default::default(),
            partitions: vec![PartObs {
                partition: 0,
                chain: vec![0, 1, 2],
                epoch: (2, 0),
                learners: Vec::new(),
                replicas: vec![rep(0, vec![a]), rep(1, vec![a]), rep(2, vec![a])],
            }],
            acked: vec![Acked {
                partition: 0,
                offset: 0,
                id: 7,
                data: "k#1".into(),
                print: a,
            }],
        });
        let mut inv = Invariants::new(true);
        assert_eq!(inv.all().len(), 5);
        assert_eq!(Invariants::default().all().len(), 3);
        inv.check(Time::from_millis(100), &obs, 0.0);
        assert_eq!(inv.chain_prefix_order.as_ref().unwrap().state, "ok");
        assert_eq!(inv.no_lost_ack.as_ref().unwrap().state, "ok");
        // The tail committed another record at the acknowledged offset:
        // both invariants break at once.
        obs.log.as_mut().unwrap().partitions[0].replicas[2] = rep(2, vec![fingerprint(8, b"evil")]);
        inv.check(Time::from_millis(150), &obs, 0.0);
        let prefix = inv.chain_prefix_order.as_ref().unwrap();
        assert_eq!(prefix.state, "violated");
        assert_eq!(prefix.first_violation_us, Some(150_000));
        let lost = inv.no_lost_ack.as_ref().unwrap();
        assert_eq!(lost.state, "violated");
        assert!(
            lost.detail.contains("node 2 committed another record"),
            "{}",
            lost.detail
        );
        assert_eq!(inv.first_violation_us(), Some(150_000));
        // The tail lost it (restarted empty): missing, a violation only
        // after the bound.
        let mut inv = Invariants::new(true);
        obs.log.as_mut().unwrap().partitions[0].replicas[2] = rep(2, vec![]);
        inv.check(Time::from_millis(200), &obs, 0.0);
        assert_eq!(inv.chain_prefix_order.as_ref().unwrap().state, "ok");
        let lost = inv.no_lost_ack.as_ref().unwrap();
        assert_eq!(lost.state, "converging");
        assert!(lost
            .detail
            .contains("not in the committed log of the tail, node 2"));
        let late = 200_000 + converge_bound(3) + 1;
        inv.check(Time::from_micros(late), &obs, 0.0);
        let lost = inv.no_lost_ack.as_ref().unwrap();
        assert_eq!(lost.state, "violated");
        assert_eq!(lost.first_violation_us, Some(late));
    }

    #[test]
    fn a_crashed_node_still_seen_alive_means_not_converged() {
        let mut obs = converged(3);
        obs.nodes[2].up = false;
        // Nodes 0 and 1 still count node 2 alive (2 votes), and each
        // other as alive with 2 votes where only 1 other node runs.
        assert!(!obs.views_converged());
        for n in &mut obs.nodes {
            n.alive_votes = if n.up { 1 } else { 0 };
        }
        obs.nodes[2].dead_votes = 2;
        assert!(obs.views_converged());
        obs.nodes[1].placement_hash = 1;
        assert!(!obs.placements_agree());
    }
}
