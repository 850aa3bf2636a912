//! `shen ring stats`: measure an Ankh ring's balance, movement on join and
//! leave, and lookup speed, for given node/vnode/key counts.
//!
//! The JSON form ([`RingStats`]) is stable: fields are only ever added, and
//! `schema` is bumped if a field's meaning changes.

use std::collections::HashMap;
use std::time::Instant;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shen_rings::ankh::{AnkhConfig, AnkhRing, HandoffPlan, Member, DEFAULT_WEIGHT, MAX_RF};

/// What to measure.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RingStatsParams {
    /// Physical nodes (>= 1).
    pub nodes: u32,
    /// Virtual nodes per node (>= 1).
    pub vnodes: u32,
    /// Random keys to place (>= 1).
    pub keys: u64,
    /// Replication factor (1..=16, <= nodes).
    pub rf: usize,
    /// Seed for node ids and keys.
    pub seed: u64,
    /// Vnode salts tried per join (1 = plain random placement).
    pub salt_candidates: u32,
}

/// Why parameters were refused; names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// A flag's value is out of range.
    #[error("invalid value for {flag}: {reason}")]
    Invalid {
        /// The flag, e.g. `--rf`.
        flag: &'static str,
        /// Why.
        reason: String,
    },
}

/// Load per node, in keys.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LoadStats {
    /// Mean keys per node.
    pub mean: f64,
    /// Keys on the most loaded node.
    pub max: u64,
    /// Keys on the least loaded node.
    pub min: u64,
    /// `max / mean` (1.0 is perfect balance).
    pub max_over_mean: f64,
    /// Standard deviation of keys per node.
    pub stddev: f64,
    /// `stddev / mean`.
    pub stddev_over_mean: f64,
}

/// Keys that changed primary owner in one membership change (all zero when
/// the change was not possible, e.g. a leave from a one-node ring).
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct MoveStats {
    /// Keys whose primary owner changed.
    pub moved_keys: u64,
    /// `moved_keys / keys`.
    pub moved_fraction: f64,
    /// The ideal fraction: `1/(N+1)` for a join, `1/N` for a leave.
    pub ideal_fraction: f64,
    /// `moved_fraction / ideal_fraction`.
    pub ratio_to_ideal: f64,
    /// Join: every moved key went to the joiner. Leave: every moved key
    /// belonged to the leaver.
    pub only_expected_node: bool,
    /// Fraction of the hash space whose rf-replica list changed (from the
    /// hand-off plan).
    pub replica_set_changed_fraction: f64,
    /// Number of ranges in the hand-off plan.
    pub handoff_ranges: usize,
}

/// The report of `shen ring stats` (`--json` prints exactly this).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RingStats {
    /// JSON schema version of this report.
    pub schema: u32,
    /// The inputs (flattened into the top level of the JSON).
    #[serde(flatten)]
    pub params: RingStatsParams,
    /// Balance of primary ownership.
    pub load: LoadStats,
    /// One node joining.
    pub join: MoveStats,
    /// One node leaving (from the original ring).
    pub leave: MoveStats,
    /// Measured nanoseconds per `locate` (this build, this machine).
    pub locate_ns: f64,
    /// Measured nanoseconds per `replicas(key, rf)`.
    pub replicas_ns: f64,
}

impl RingStatsParams {
    /// Check every flag; the error names the flag.
    pub fn validate(&self) -> Result<(), StatsError> {
        let bad = |flag, reason: &str| {
            Err(StatsError::Invalid {
                flag,
                reason: reason.to_string(),
            })
        };
        if self.nodes == 0 {
            return bad("--nodes", "must be at least 1");
        }
        if self.vnodes == 0 {
            return bad("--vnodes", "must be at least 1");
        }
        if self.vnodes > 65_536 {
            return bad("--vnodes", "must be at most 65536");
        }
        if u64::from(self.nodes) * u64::from(self.vnodes) > 50_000_000 {
            return bad("--nodes", "nodes x vnodes must be at most 50,000,000");
        }
        if self.keys == 0 {
            return bad("--keys", "must be at least 1");
        }
        if self.keys > 100_000_000 {
            return bad("--keys", "must be at most 100,000,000");
        }
        if self.salt_candidates == 0 || self.salt_candidates > 1024 {
            return bad("--salt-candidates", "must be between 1 and 1024");
        }
        if self.rf == 0 || self.rf > MAX_RF {
            return bad("--rf", "must be between 1 and 16");
        }
        if self.rf > self.nodes as usize {
            return Err(StatsError::Invalid {
                flag: "--rf",
                reason: format!(
                    "{} is larger than --nodes {} (replicas must be distinct nodes)",
                    self.rf, self.nodes
                ),
            });
        }
        Ok(())
    }
}

fn load_stats(counts: &HashMap<u64, u64>, nodes: u32, keys: u64) -> LoadStats {
    let mean = keys as f64 / f64::from(nodes);
    // Nodes with no key at all count as zero.
    let mut all: Vec<u64> = counts.values().copied().collect();
    all.resize(nodes as usize, 0);
    let max = all.iter().copied().max().unwrap_or(0);
    let min = all.iter().copied().min().unwrap_or(0);
    let var = all.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / f64::from(nodes);
    LoadStats {
        mean,
        max,
        min,
        max_over_mean: max as f64 / mean,
        stddev: var.sqrt(),
        stddev_over_mean: var.sqrt() / mean,
    }
}

fn time_per_op(mut f: impl FnMut() -> u64, ops_per_call: u64) -> f64 {
    // Repeat until at least 50 ms have passed (at most 1,000 calls) so tiny
    // key counts still give a stable figure.
    let start = Instant::now();
    let mut calls = 0u64;
    let mut sink = 0u64;
    while calls == 0 || (start.elapsed().as_millis() < 50 && calls < 1_000) {
        sink = sink.wrapping_add(f());
        calls += 1;
    }
    std::hint::black_box(sink);
    start.elapsed().as_nanos() as f64 / (calls * ops_per_call) as f64
}

fn owner(r: &AnkhRing<u64>, k: &[u8]) -> u64 {
    *r.locate(k).expect("ring is not empty")
}

/// Compare primary owners of `keys` before (`before[i]`) and in `after`;
/// `expected(old, new)` says whether a move is one the change should cause.
fn move_stats(
    keys: &[[u8; 16]],
    before: &[u64],
    after: &AnkhRing<u64>,
    plan: &HandoffPlan<u64>,
    ideal: f64,
    expected: impl Fn(u64, u64) -> bool,
) -> MoveStats {
    let mut moved = 0u64;
    let mut only = true;
    for (k, &old) in keys.iter().zip(before) {
        let new = owner(after, k);
        if new != old {
            moved += 1;
            only &= expected(old, new);
        }
    }
    let frac = moved as f64 / keys.len() as f64;
    MoveStats {
        moved_keys: moved,
        moved_fraction: frac,
        ideal_fraction: ideal,
        ratio_to_ideal: frac / ideal,
        only_expected_node: only,
        replica_set_changed_fraction: plan.replica_fraction(),
        handoff_ranges: plan.ranges.len(),
    }
}

/// Build the ring and measure it.
pub fn ring_stats(p: &RingStatsParams) -> Result<RingStats, StatsError> {
    p.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let config = AnkhConfig {
        vnodes: p.vnodes,
        rf: p.rf,
        salt_candidates: p.salt_candidates,
        ..AnkhConfig::default()
    };
    let mut ring = AnkhRing::new(config).map_err(|e| StatsError::Invalid {
        flag: "--vnodes",
        reason: e.to_string(),
    })?;
    let mut ids = Vec::with_capacity(p.nodes as usize);
    while ids.len() < p.nodes as usize {
        let id = rng.next_u64();
        if ring.contains(&id) {
            continue;
        }
        // Bulk build: same placement as `join`, without computing a
        // hand-off plan per node.
        let salt = ring.choose_salt(&id, DEFAULT_WEIGHT);
        ring.insert(Member {
            id,
            weight: DEFAULT_WEIGHT,
            salt,
        })
        .map_err(|e| StatsError::Invalid {
            flag: "--nodes",
            reason: e.to_string(),
        })?;
        ids.push(id);
    }
    let keys: Vec<[u8; 16]> = (0..p.keys)
        .map(|_| {
            let mut k = [0u8; 16];
            rng.fill_bytes(&mut k);
            k
        })
        .collect();
    let before: Vec<u64> = keys.iter().map(|k| owner(&ring, k)).collect();
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for o in &before {
        *counts.entry(*o).or_insert(0) += 1;
    }
    let load = load_stats(&counts, p.nodes, p.keys);

    // One join.
    let mut joined = ring.clone();
    let mut joiner = rng.next_u64();
    while joined.contains(&joiner) {
        joiner = rng.next_u64();
    }
    let (_, plan) = joined
        .join(joiner, DEFAULT_WEIGHT)
        .expect("joiner is new and weight valid");
    let join = move_stats(
        &keys,
        &before,
        &joined,
        &plan,
        1.0 / f64::from(p.nodes + 1),
        |_, new| new == joiner,
    );

    // One leave (when there is more than one node).
    let leave = if p.nodes > 1 {
        let victim = ids[(rng.next_u64() % ids.len() as u64) as usize];
        let mut left = ring.clone();
        let plan = left.leave(&victim).expect("victim is a member");
        move_stats(
            &keys,
            &before,
            &left,
            &plan,
            1.0 / f64::from(p.nodes),
            |old, _| old == victim,
        )
    } else {
        MoveStats::default()
    };

    let sample = &keys[..keys.len().min(1 << 16)];
    let locate_ns = time_per_op(
        || {
            sample
                .iter()
                .map(|k| owner(&ring, k))
                .fold(0, u64::wrapping_add)
        },
        sample.len() as u64,
    );
    let replicas_ns = time_per_op(
        || {
            sample
                .iter()
                .map(|k| {
                    let mut buf = [0u64; MAX_RF];
                    let mut n = 0;
                    for id in ring.replicas(k, p.rf) {
                        buf[n] = *id;
                        n += 1;
                    }
                    buf[0].wrapping_add(n as u64)
                })
                .fold(0, u64::wrapping_add)
        },
        sample.len() as u64,
    );

    Ok(RingStats {
        schema: 1,
        params: p.clone(),
        load,
        join,
        leave,
        locate_ns,
        replicas_ns,
    })
}

/// Render the report as a readable table.
pub fn render(s: &RingStats) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Ankh ring: {} nodes x {} vnodes, {} keys, rf {}, seed {}, {} salt candidates\n",
        s.params.nodes,
        s.params.vnodes,
        s.params.keys,
        s.params.rf,
        s.params.seed,
        s.params.salt_candidates
    ));
    out.push_str(&format!(
        "  load      mean {:.1}  min {}  max {}  max/mean {:.3}  stddev {:.1} ({:.2}% of mean)\n",
        s.load.mean,
        s.load.min,
        s.load.max,
        s.load.max_over_mean,
        s.load.stddev,
        100.0 * s.load.stddev_over_mean
    ));
    for (name, m, who) in [
        ("join ", &s.join, "all to the joiner"),
        ("leave", &s.leave, "only the leaver's keys"),
    ] {
        out.push_str(&format!(
            "  {name}     moved {} keys = {:.4}% (ideal {:.4}%, {:.3}x ideal), {}: {}; rf-{} replica sets changed on {:.4}% in {} ranges\n",
            m.moved_keys,
            100.0 * m.moved_fraction,
            100.0 * m.ideal_fraction,
            m.ratio_to_ideal,
            who,
            if m.only_expected_node { "yes" } else { "NO" },
            s.params.rf,
            100.0 * m.replica_set_changed_fraction,
            m.handoff_ranges
        ));
    }
    out.push_str(&format!(
        "  lookups   locate {:.1} ns, replicas(rf={}) {:.1} ns (this build)\n",
        s.locate_ns, s.params.rf, s.replicas_ns
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> RingStatsParams {
        RingStatsParams {
            nodes: 100,
            vnodes: 160,
            keys: 100_000,
            rf: 3,
            seed: 1,
            salt_candidates: 16,
        }
    }

    #[test]
    fn stats_meet_the_distribution_targets_and_are_reproducible() {
        let a = ring_stats(&params()).unwrap();
        assert!(a.load.max_over_mean <= 1.30, "{:?}", a.load);
        assert!(a.join.ratio_to_ideal <= 1.1, "{:?}", a.join);
        assert!(a.join.only_expected_node);
        assert!(a.leave.only_expected_node);
        assert!(a.join.replica_set_changed_fraction >= a.join.moved_fraction * 0.9);
        let b = ring_stats(&params()).unwrap();
        assert_eq!(a.load, b.load);
        assert_eq!(a.join, b.join);
        assert_eq!(a.leave, b.leave);
        let text = render(&a);
        assert!(text.contains("max/mean"));
    }

    #[test]
    fn invalid_params_name_the_flag() {
        type Case = (fn(&mut RingStatsParams), &'static str);
        let cases: [Case; 5] = [
            (|p| p.nodes = 0, "--nodes"),
            (|p| p.vnodes = 0, "--vnodes"),
            (|p| p.keys = 0, "--keys"),
            (|p| p.rf = 101, "--rf"),
            (|p| p.rf = 0, "--rf"),
        ];
        for (mutate, flag) in cases {
            let mut p = params();
            mutate(&mut p);
            let e = ring_stats(&p).unwrap_err();
            assert!(e.to_string().contains(flag), "{e}");
        }
        let mut p = params();
        p.nodes = 2;
        p.rf = 3;
        assert!(ring_stats(&p).unwrap_err().to_string().contains("--rf"));
    }

    #[test]
    fn single_node_ring_works() {
        let mut p = params();
        p.nodes = 1;
        p.rf = 1;
        p.keys = 100;
        let s = ring_stats(&p).unwrap();
        assert_eq!(s.load.max, 100);
        assert!(s.join.only_expected_node);
    }
}
