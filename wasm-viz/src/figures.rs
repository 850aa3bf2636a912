//! A run's key figures (how fast views converge, how fast a crash is
//! detected, token acquisitions, Ankh keys moved), read from the world's
//! check points and counters: what the side-by-side mode puts next to each
//! other. Nothing here feeds back into the run.

use serde::Serialize;

use crate::invariants::Observation;
use crate::keys::SAMPLE_KEYS;
use crate::world::World;

/// Most convergence episodes and detections kept (the oldest go first).
pub const MAX_KEPT: usize = 32;

/// One crash and how long the others took to notice it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    /// The crashed node.
    pub node: u64,
    /// When it crashed, µs (the script's crash, else the check point that
    /// first saw it down).
    pub crashed_us: u64,
    /// The first check point at which a running node suspected it (or
    /// already declared it dead).
    pub suspected_us: Option<u64>,
    /// The first check point at which a majority of the running nodes
    /// declared it dead.
    pub dead_us: Option<u64>,
    /// It came back before a majority declared it dead.
    pub restarted: bool,
}

/// What the check points have shown so far. Kept with the timeline's
/// snapshots, so a rewind restores it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tracker {
    /// Stretches during which the views disagreed: `(from, to)` µs, `to`
    /// `None` while they still do.
    episodes: Vec<(u64, Option<u64>)>,
    detections: Vec<Detection>,
    was_up: Vec<bool>,
    last_at: Option<u64>,
}

fn keep_last<T>(v: &mut Vec<T>) {
    if v.len() > MAX_KEPT {
        v.remove(0);
    }
}

impl Tracker {
    /// Read the check point `obs`; `crashed_at(node)` is the time of the
    /// script's last crash of `node` at or before it. A check point already
    /// read (a rewind re-observes its snapshot) is ignored.
    pub fn update(&mut self, obs: &Observation, crashed_at: impl Fn(u64) -> Option<u64>) {
        let at = obs.at_us;
        if self.last_at.is_some_and(|t| at <= t) {
            return;
        }
        self.last_at = Some(at);
        let converged = obs.views_converged();
        match self.episodes.last_mut() {
            Some((_, to @ None)) if converged => *to = Some(at),
            Some((_, None)) => {}
            _ if !converged => {
                self.episodes.push((at, None));
                keep_last(&mut self.episodes);
            }
            _ => {}
        }
        let up = obs.nodes.iter().filter(|n| n.up).count() as u32;
        for n in &obs.nodes {
            let id = n.id as usize;
            let was_up = self.was_up.get(id).copied().unwrap_or(true);
            if was_up && !n.up {
                self.detections.push(Detection {
                    node: n.id,
                    crashed_us: crashed_at(n.id).filter(|&t| t <= at).unwrap_or(at),
                    suspected_us: None,
                    dead_us: None,
                    restarted: false,
                });
                keep_last(&mut self.detections);
            }
        }
        for d in self.detections.iter_mut().filter(|d| d.dead_us.is_none()) {
            let Some(n) = obs.nodes.get(d.node as usize) else {
                continue;
            };
            if n.up {
                d.restarted = true;
                continue;
            }
            if d.restarted {
                continue;
            }
            if d.suspected_us.is_none() && n.suspect_votes + n.dead_votes > 0 {
                d.suspected_us = Some(at);
            }
            if up > 0 && n.dead_votes * 2 > up {
                d.dead_us = Some(at);
                d.suspected_us.get_or_insert(at);
            }
        }
        self.was_up = obs.nodes.iter().map(|n| n.up).collect();
    }

    /// The convergence episodes, oldest first.
    pub fn episodes(&self) -> &[(u64, Option<u64>)] {
        &self.episodes
    }

    /// The crashes seen, oldest first.
    pub fn detections(&self) -> &[Detection] {
        &self.detections
    }
}

/// The figures the page shows, as data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    /// Virtual time, µs.
    pub time_us: u64,
    /// Trace hash (16 hex digits).
    pub trace_hash: String,
    /// Every running node has the same view, holding exactly the running
    /// nodes.
    pub converged: bool,
    /// The last disagreement that ended: how long, ms (to the 50 ms check
    /// point) ...
    pub convergence_ms: Option<f64>,
    /// ... and in Sundial gossip rounds.
    pub convergence_rounds: Option<f64>,
    /// Disagreements that ended.
    pub convergences: usize,
    /// The last crash seen.
    pub detection: Option<Detection>,
    /// Its crash to the first suspicion, ms.
    pub suspected_after_ms: Option<f64>,
    /// Its crash to a majority declaring it dead, ms.
    pub dead_after_ms: Option<f64>,
    /// Sundial suspicions raised (over every node).
    pub suspicions: u64,
    /// Cartouche grants.
    pub acquisitions: u64,
    /// Mean wait of a granted Cartouche request, from asking to the grant,
    /// ms (`None`: none granted, or no narration kept in this world).
    pub grant_wait_ms: Option<f64>,
    /// Idle tokens sent straight to a requester (the `Want` shortcut).
    pub shortcuts: u64,
    /// Cartouche tokens regenerated.
    pub regenerations: u64,
    /// Sample keys that changed owner at the last ring change ...
    pub keys_moved: Option<usize>,
    /// ... out of this many sample keys ...
    pub keys_sampled: usize,
    /// ... where an ideal placement moves this many.
    pub keys_ideal: Option<f64>,
    /// Sample keys moved over every ring change kept.
    pub keys_moved_total: usize,
    /// Messages sent.
    pub messages: u64,
    /// Sundial's gossip period, ms (0 without Sundial).
    pub gossip_ms: u64,
    /// Ankh virtual nodes per node.
    pub vnodes: u32,
}

/// The figures of `world` now.
pub fn figures(world: &World) -> Figures {
    let t = world.tracker();
    let gossip_ms = world
        .config()
        .stack
        .sundial
        .as_ref()
        .map_or(0, |s| s.interval_ms);
    let last_ended = t
        .episodes()
        .iter()
        .rev()
        .find_map(|(f, to)| to.map(|to| to - f));
    let convergence_ms = last_ended.map(|us| us as f64 / 1000.0);
    let detection = t.detections().last().cloned();
    let after = |at: Option<u64>| {
        let d = detection.as_ref()?;
        Some(at?.saturating_sub(d.crashed_us) as f64 / 1000.0)
    };
    let counts = world.sim().event_counts();
    let count = |name: &str| counts.get(name).copied().unwrap_or(0);
    let keys = world.keys();
    Figures {
        time_us: world.now().as_micros(),
        trace_hash: format!("{:016x}", world.trace_hash()),
        converged: world.observation().views_converged(),
        convergence_ms,
        convergence_rounds: convergence_ms
            .filter(|_| gossip_ms > 0)
            .map(|ms| ms / gossip_ms as f64),
        convergences: t.episodes().iter().filter(|(_, to)| to.is_some()).count(),
        suspected_after_ms: after(detection.as_ref().and_then(|d| d.suspected_us)),
        dead_after_ms: after(detection.as_ref().and_then(|d| d.dead_us)),
        detection,
        suspicions: count("sundial.suspected"),
        acquisitions: count("cartouche.granted"),
        grant_wait_ms: world.narration().and_then(|n| {
            let waits = n.grant_waits();
            (!waits.is_empty())
                .then(|| waits.iter().sum::<u64>() as f64 / waits.len() as f64 / 1000.0)
        }),
        shortcuts: world.cartouche_shortcuts(),
        regenerations: count("cartouche.regenerated"),
        keys_moved: keys.last().map(|m| m.moved.len()),
        keys_sampled: SAMPLE_KEYS,
        keys_ideal: keys.last().map(|m| m.ideal * SAMPLE_KEYS as f64),
        keys_moved_total: keys.history().iter().map(|m| m.moved.len()).sum(),
        messages: world.sim().traffic().sent,
        gossip_ms,
        vnodes: world.config().ankh.vnodes,
    }
}

/// [`figures`] as JSON.
pub fn figures_json(world: &World) -> String {
    serde_json::to_string(&figures(world)).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::NodeObs;

    fn obs(at_us: u64, nodes: &[(bool, u32, u32, u32)], same_view: bool) -> Observation {
        Observation {
            at_us,
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(i, &(up, alive, suspect, dead))| NodeObs {
                    id: i as u64,
                    up,
                    incarnation: 1,
                    alive_votes: alive,
                    suspect_votes: suspect,
                    dead_votes: dead,
                    max_phi: 0.0,
                    has_token: false,
                    holding: None,
                    pending: 0,
                    view_hash: if same_view || i == 0 { 7 } else { i as u64 },
                    live_count: 0,
                    placement_hash: 0,
                    group: 0,
                })
                .collect(),
            ..Observation::default()
        }
    }

    #[test]
    fn a_crash_is_timed_from_the_script_to_suspicion_and_majority() {
        let mut t = Tracker::default();
        let healthy = [(true, 2, 0, 0); 3];
        t.update(&obs(0, &healthy, true), |_| None);
        assert!(t.episodes().is_empty() && t.detections().is_empty());
        // Node 2 crashed at 1.23 s; the others still think it alive.
        let down = [(true, 1, 0, 0), (true, 1, 0, 0), (false, 2, 0, 0)];
        t.update(&obs(1_250_000, &down, true), |n| {
            (n == 2).then_some(1_230_000)
        });
        assert_eq!(t.episodes(), &[(1_250_000, None)]);
        let suspected = [(true, 1, 0, 0), (true, 1, 0, 0), (false, 1, 1, 0)];
        t.update(&obs(1_900_000, &suspected, false), |_| Some(1_230_000));
        let half = [(true, 1, 0, 0), (true, 1, 0, 0), (false, 0, 1, 1)];
        t.update(&obs(2_400_000, &half, false), |_| Some(1_230_000));
        let d = &t.detections()[0];
        assert_eq!(
            (d.crashed_us, d.suspected_us, d.dead_us),
            (1_230_000, Some(1_900_000), None)
        );
        let dead = [(true, 1, 0, 0), (true, 1, 0, 0), (false, 0, 0, 2)];
        t.update(&obs(3_000_000, &dead, true), |_| Some(1_230_000));
        assert_eq!(t.detections()[0].dead_us, Some(3_000_000));
        assert_eq!(t.episodes(), &[(1_250_000, Some(3_000_000))]);
        // A check point read again (after a rewind) changes nothing.
        let before = t.clone();
        t.update(&obs(3_000_000, &down, false), |_| None);
        assert_eq!(t, before);
    }

    #[test]
    fn a_node_back_before_it_is_declared_dead_ends_its_detection() {
        let mut t = Tracker::default();
        t.update(&obs(0, &[(true, 1, 0, 0); 2], true), |_| None);
        t.update(
            &obs(50_000, &[(true, 0, 0, 0), (false, 1, 0, 0)], true),
            |_| None,
        );
        t.update(&obs(100_000, &[(true, 1, 0, 0); 2], true), |_| None);
        t.update(
            &obs(150_000, &[(true, 1, 0, 0), (true, 0, 0, 1)], true),
            |_| None,
        );
        let d = &t.detections()[0];
        assert_eq!(
            d.crashed_us, 50_000,
            "no script crash: the check point that saw it"
        );
        assert!(d.restarted && d.dead_us.is_none() && d.suspected_us.is_none());
    }
}
