//! The Sundial gossip measurements (`shen sim gossip`): convergence after
//! everyone joins at once, crash detection and dissemination, false
//! suspicions and deaths, and the traffic each node pays.
//!
//! One run per seed; `runs` runs seeds `seed..seed+runs` and the report
//! gives p50/p99/max over them. The serialised report is stable (fields are
//! only added; `schema` is bumped when a meaning changes).

use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shen_rings::stack::{ShenEvent, StackConfig, SundialSettings};
use shen_rings::sundial::{Status, Sundial};
use shen_rings::Time;
use shen_transport_memory::{Latency, NetConfig, Sim, SimConfig, TraceMode};

use crate::check::{Check, Fold};
use crate::stats::{spread, Spread};

/// What `shen sim gossip` runs: the cluster, the network, the gossip settings.
#[derive(Clone, Debug, PartialEq)]
pub struct GossipConfig {
    /// Nodes that all start at once, each knowing one earlier peer.
    pub nodes: u64,
    /// First seed.
    pub seed: u64,
    /// Seeds to run (`seed..seed+runs`); percentiles are over runs.
    pub runs: u64,
    /// Message loss probability on every link.
    pub loss: f64,
    /// Latency jitter: latency is uniform in [1, 1 + jitter] ms.
    pub jitter_ms: f64,
    /// Gossip fanout.
    pub fanout: usize,
    /// Gossip interval in ms.
    pub interval_ms: u64,
    /// Healthy steady-state time (virtual seconds) measured for false
    /// suspicions and traffic before the crash.
    pub steady_s: u64,
}

impl Default for GossipConfig {
    /// The `shen sim gossip` defaults.
    fn default() -> Self {
        GossipConfig {
            nodes: 100,
            seed: 1,
            runs: 1,
            loss: 0.0,
            jitter_ms: 5.0,
            fanout: 3,
            interval_ms: 200,
            steady_s: 10,
        }
    }
}

/// One run's measurements.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GossipRun {
    /// The seed.
    pub seed: u64,
    /// Gossip rounds until every node knew every node (`None`: not within
    /// 100 rounds).
    pub convergence_rounds: Option<u64>,
    /// The same in virtual milliseconds.
    pub convergence_ms: Option<u64>,
    /// Mean fraction of the membership known, per round (index 0 = start).
    pub membership_curve: Vec<f64>,
    /// The crashed node.
    pub victim: u64,
    /// Virtual ms from the crash to the first suspicion anywhere.
    pub first_suspicion_ms: Option<u64>,
    /// Virtual ms from the crash until every live node marked it dead.
    pub all_dead_ms: Option<u64>,
    /// Fraction of live nodes that know of the death, per round after the
    /// first node declared it.
    pub death_curve: Vec<f64>,
    /// Suspicions raised by monitors while every node was healthy (joining
    /// and steady phases).
    pub false_suspicions: u64,
    /// `sundial.died` events about healthy nodes over the whole run (one per
    /// node that marked a healthy member dead).
    pub false_deaths: u64,
    /// Messages sent per node per second in the steady phase.
    pub msgs_per_node_per_s: f64,
    /// Bytes sent per node per second in the steady phase.
    pub bytes_per_node_per_s: f64,
    /// Bytes sent per node per gossip round in the steady phase.
    pub bytes_per_node_per_round: f64,
    /// Bytes sent per node per round while converging.
    pub converge_bytes_per_node_per_round: f64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GossipReport {
    /// Report format version.
    pub schema: u32,
    /// Nodes.
    pub nodes: u64,
    /// Runs (seeds).
    pub runs: u64,
    /// Loss probability.
    pub loss: f64,
    /// Latency jitter (ms).
    pub jitter_ms: f64,
    /// Fanout.
    pub fanout: usize,
    /// Interval (ms).
    pub interval_ms: u64,
    /// The convergence target `log3(N) + 4` rounds.
    pub target_rounds: f64,
    /// Convergence rounds over runs (unconverged runs count as 100).
    pub convergence_rounds: Spread,
    /// Crash to first suspicion (ms).
    pub first_suspicion_ms: Spread,
    /// Crash to every live node marking it dead (ms; undetected = 60000).
    pub all_dead_ms: Spread,
    /// Total false suspicions over all runs.
    pub false_suspicions: u64,
    /// Total false deaths over all runs.
    pub false_deaths: u64,
    /// Steady-state bytes per node per round.
    pub bytes_per_node_per_round: Spread,
    /// Converging bytes per node per round.
    pub converge_bytes_per_node_per_round: Spread,
    /// Steady-state messages per node per second.
    pub msgs_per_node_per_s: Spread,
    /// Steady-state bytes per node per second.
    pub bytes_per_node_per_s: Spread,
    /// Every run.
    pub per_run: Vec<GossipRun>,
}

fn validate(a: &GossipConfig) -> Result<(), String> {
    if a.nodes < 2 || a.nodes > 20_000 {
        return Err("invalid value for --nodes: must be between 2 and 20000".into());
    }
    if a.runs == 0 || a.runs > 1_000 {
        return Err("invalid value for --runs: must be between 1 and 1000".into());
    }
    if !(0.0..1.0).contains(&a.loss) {
        return Err("invalid value for --loss: must be in [0, 1)".into());
    }
    if !(a.jitter_ms.is_finite() && (0.0..=10_000.0).contains(&a.jitter_ms)) {
        return Err("invalid value for --jitter-ms: must be between 0 and 10000".into());
    }
    if a.fanout == 0 || a.fanout > 64 {
        return Err("invalid value for --fanout: must be between 1 and 64".into());
    }
    if a.interval_ms == 0 || a.interval_ms > 60_000 {
        return Err("invalid value for --interval-ms: must be between 1 and 60000".into());
    }
    if a.steady_s > 100_000 {
        return Err("invalid value for --steady-s: must be at most 100000".into());
    }
    Ok(())
}

fn sundial(sim: &Sim<ShenEvent<u64>>, id: u64) -> Option<&Sundial<u64>> {
    sim.node(id)?.ring::<Sundial<u64>>()
}

fn raised(sim: &Sim<ShenEvent<u64>>, n: u64) -> u64 {
    (0..n)
        .filter_map(|i| sundial(sim, i))
        .map(|s| s.stats().suspicions_raised)
        .sum()
}

/// Run one seed.
fn run_one(a: &GossipConfig, seed: u64) -> Result<GossipRun, String> {
    let n = a.nodes;
    let interval = Duration::from_millis(a.interval_ms);
    let settings = SundialSettings {
        interval_ms: a.interval_ms,
        fanout: a.fanout,
        ..SundialSettings::default()
    };
    let stack = StackConfig {
        sundial: Some(settings),
        ..StackConfig::default()
    };
    let network = NetConfig {
        latency: Latency::Uniform {
            min: 1.0,
            max: 1.0 + a.jitter_ms,
        },
        loss: a.loss,
        ..NetConfig::default()
    };
    let config = SimConfig {
        seed,
        nodes: n,
        network,
        trace: TraceMode::HashOnly,
    };
    let mut sim = Sim::with_stack(config, stack).map_err(|e| e.to_string())?;

    // Phase 1: everyone joins at once.
    let mut curve = vec![1.0 / n as f64];
    let mut converged: Option<u64> = None;
    let start_traffic = sim.traffic();
    for round in 1..=100u64 {
        sim.run_until(Time::ZERO + interval * round as u32);
        let (mut sum, mut all) = (0u64, true);
        for i in 0..n {
            let c = sundial(&sim, i).map_or(0, |s| s.live_count() as u64);
            sum += c;
            all &= c == n;
        }
        curve.push(sum as f64 / (n * n) as f64);
        if all {
            converged = Some(round);
            break;
        }
    }
    let conv_rounds = converged.unwrap_or(100);
    let conv_traffic = sim.traffic();
    let converge_bytes =
        (conv_traffic.sent_bytes - start_traffic.sent_bytes) as f64 / n as f64 / conv_rounds as f64;

    // Phase 2: healthy steady state.
    let t0 = sim.now();
    let before = sim.traffic();
    let steady = Duration::from_secs(a.steady_s);
    sim.run_until(t0 + steady);
    let after = sim.traffic();
    let secs = steady.as_secs_f64().max(1e-9);
    let rounds = secs / interval.as_secs_f64();
    let msgs_s = (after.sent - before.sent) as f64 / n as f64 / secs;
    let bytes_s = (after.sent_bytes - before.sent_bytes) as f64 / n as f64 / secs;
    let false_before = raised(&sim, n);
    let deaths_before = sim.event_count("sundial.died");

    // Phase 3: crash one node.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let victim = rng.next_u64() % n;
    sim.crash(victim).map_err(|e| e.to_string())?;
    let crash_at = sim.now();
    let step = Duration::from_millis(20);
    let (mut first_suspicion, mut all_dead) = (None, None);
    let mut first_death_at: Option<Time> = None;
    let mut death_curve: Vec<f64> = Vec::new();
    let mut next_sample: Option<Time> = None;
    let live_n = (n - 1) as f64;
    while sim.now() < crash_at + Duration::from_secs(60) {
        let t = sim.now() + step;
        sim.run_until(t);
        let (mut suspect, mut dead) = (0u64, 0u64);
        for i in (0..n).filter(|i| *i != victim) {
            match sundial(&sim, i)
                .and_then(|s| s.record(&victim))
                .map(|r| r.status)
            {
                Some(Status::Suspect) => suspect += 1,
                Some(Status::Dead) => dead += 1,
                _ => {}
            }
        }
        let since = (sim.now() - crash_at).as_millis() as u64;
        if first_suspicion.is_none() && suspect + dead > 0 {
            first_suspicion = Some(since);
        }
        if dead > 0 && first_death_at.is_none() {
            first_death_at = Some(sim.now());
            next_sample = Some(sim.now());
        }
        if let Some(ns) = next_sample {
            if sim.now() >= ns {
                death_curve.push(dead as f64 / live_n);
                next_sample = Some(ns + interval);
            }
        }
        if dead == n - 1 {
            all_dead = Some(since);
            death_curve.push(1.0);
            break;
        }
    }
    // A little longer, to catch deaths of healthy nodes the crash provoked.
    let settle = sim.now() + Duration::from_secs(2);
    sim.run_until(settle);
    let deaths_after = sim.event_count("sundial.died") - deaths_before;
    let false_deaths_after = deaths_after.saturating_sub(n - 1);

    Ok(GossipRun {
        seed,
        convergence_rounds: converged,
        convergence_ms: converged.map(|r| r * a.interval_ms),
        membership_curve: curve,
        victim,
        first_suspicion_ms: first_suspicion,
        all_dead_ms: all_dead,
        death_curve,
        false_suspicions: false_before,
        false_deaths: deaths_before + false_deaths_after,
        msgs_per_node_per_s: msgs_s,
        bytes_per_node_per_s: bytes_s,
        bytes_per_node_per_round: bytes_s * secs / rounds,
        converge_bytes_per_node_per_round: converge_bytes,
    })
}

/// The push-pull epidemic model: fraction informed after each round,
/// starting from one node of `n`, fanout `f`:
/// `i' = 1 - (1 - i) * (1 - i)^f * exp(-f i)`.
pub fn theory_curve(n: u64, f: usize, rounds: usize) -> Vec<f64> {
    let mut i = 1.0 / n as f64;
    let mut out = vec![i];
    for _ in 0..rounds {
        i = 1.0 - (1.0 - i) * (1.0 - i).powi(f as i32) * (-(f as f64) * i).exp();
        out.push(i.min(1.0));
    }
    out
}

impl Check for GossipConfig {
    type Run = GossipRun;
    type Report = GossipReport;
    type Fold = GossipFold;

    fn validate(&self) -> Result<(), String> {
        validate(self)
    }

    fn seeds(&self) -> core::ops::Range<u64> {
        self.seed..self.seed.saturating_add(self.runs)
    }

    fn run_seed(&self, seed: u64) -> Result<GossipRun, String> {
        run_one(self, seed)
    }

    fn fold(&self) -> GossipFold {
        GossipFold {
            config: self.clone(),
            runs: Vec::new(),
        }
    }
}

/// Folds gossip runs, in seed order, into a [`GossipReport`].
#[derive(Debug)]
pub struct GossipFold {
    config: GossipConfig,
    runs: Vec<GossipRun>,
}

impl Fold for GossipFold {
    type Run = GossipRun;
    type Report = GossipReport;

    fn push(&mut self, run: GossipRun) {
        self.runs.push(run);
    }

    fn finish(self) -> GossipReport {
        let (a, runs) = (self.config, self.runs);
        let pick = |f: &dyn Fn(&GossipRun) -> f64| spread(runs.iter().map(f).collect());
        GossipReport {
            schema: 1,
            nodes: a.nodes,
            runs: a.runs,
            loss: a.loss,
            jitter_ms: a.jitter_ms,
            fanout: a.fanout,
            interval_ms: a.interval_ms,
            target_rounds: (a.nodes as f64).ln() / 3f64.ln() + 4.0,
            convergence_rounds: pick(&|r| r.convergence_rounds.unwrap_or(100) as f64),
            first_suspicion_ms: pick(&|r| r.first_suspicion_ms.unwrap_or(60_000) as f64),
            all_dead_ms: pick(&|r| r.all_dead_ms.unwrap_or(60_000) as f64),
            false_suspicions: runs.iter().map(|r| r.false_suspicions).sum(),
            false_deaths: runs.iter().map(|r| r.false_deaths).sum(),
            bytes_per_node_per_round: pick(&|r| r.bytes_per_node_per_round),
            converge_bytes_per_node_per_round: pick(&|r| r.converge_bytes_per_node_per_round),
            msgs_per_node_per_s: pick(&|r| r.msgs_per_node_per_s),
            bytes_per_node_per_s: pick(&|r| r.bytes_per_node_per_s),
            per_run: runs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nodes: u64, runs: u64) -> GossipConfig {
        GossipConfig {
            nodes,
            seed: 1,
            runs,
            loss: 0.0,
            jitter_ms: 5.0,
            fanout: 3,
            interval_ms: 200,
            steady_s: 5,
        }
    }

    fn report(a: &GossipConfig) -> Result<GossipReport, String> {
        crate::run_all(a).map_err(|e| e.to_string())
    }

    /// The targets, at a size the default suite can afford; the
    /// 1,000- and 10,000-node figures are in BENCHMARKS.md.
    #[test]
    fn convergence_and_crash_detection_meet_the_targets_over_seeds() {
        let r = report(&args(150, 8)).unwrap();
        assert!(
            r.convergence_rounds.max <= r.target_rounds,
            "rounds {:?} vs target {}",
            r.convergence_rounds,
            r.target_rounds
        );
        assert!(r.all_dead_ms.max <= 4_000.0, "{:?}", r.all_dead_ms);
        assert!(r.first_suspicion_ms.max < r.all_dead_ms.max);
        assert_eq!(r.false_deaths, 0);
        assert_eq!(r.false_suspicions, 0);
        for run in &r.per_run {
            assert_eq!(*run.membership_curve.last().unwrap(), 1.0);
            assert!(run.membership_curve.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn lossy_jittery_network_causes_no_false_deaths() {
        let mut a = args(60, 2);
        a.loss = 0.01;
        a.jitter_ms = 50.0;
        a.steady_s = 300;
        let r = report(&a).unwrap();
        assert_eq!(r.false_deaths, 0);
        assert!(r.all_dead_ms.max < 60_000.0, "the crash is still detected");
    }

    #[test]
    fn steady_traffic_per_round_grows_slower_than_log_n() {
        let small = report(&args(40, 1)).unwrap();
        let large = report(&args(320, 1)).unwrap();
        let ratio = large.bytes_per_node_per_round.p50 / small.bytes_per_node_per_round.p50;
        let log_ratio = (320f64).ln() / (40f64).ln();
        assert!(
            ratio <= log_ratio,
            "bytes/round grew {ratio:.2}x, log N grew {log_ratio:.2}x"
        );
    }

    #[test]
    fn theory_curve_is_an_increasing_epidemic() {
        let c = theory_curve(1000, 3, 12);
        assert!(c.windows(2).all(|w| w[0] <= w[1]));
        assert!(c[12] > 0.999);
        assert!(c[1] < 0.01);
    }

    #[test]
    fn bad_flags_are_named() {
        for (mutate, flag) in [
            (
                (|a: &mut GossipConfig| a.nodes = 1) as fn(&mut GossipConfig),
                "--nodes",
            ),
            (|a| a.loss = 1.5, "--loss"),
            (|a| a.jitter_ms = -1.0, "--jitter-ms"),
            (|a| a.fanout = 0, "--fanout"),
            (|a| a.runs = 0, "--runs"),
            (|a| a.interval_ms = 0, "--interval-ms"),
        ] {
            let mut a = args(10, 1);
            mutate(&mut a);
            assert!(report(&a).unwrap_err().contains(flag), "{flag}");
        }
    }
}
