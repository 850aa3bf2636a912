//! The network model: latency distributions, loss, duplication and
//! reordering for a link (global or per link), and partitions.

use std::collections::BTreeSet;
use std::string::String;
use std::vec::Vec;

use rand_chacha::rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::rng::{chance, exponential, uniform_u64};

/// How long a message takes to cross a link, in milliseconds (fractions
/// allowed, down to 1 µs). Every latency is at least 1 µs so virtual time
/// always advances along a chain of messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always the same latency: `{ fixed = 2 }`.
    Fixed(f64),
    /// Uniform between `min` and `max`: `{ uniform = { min = 1, max = 5 } }`.
    Uniform {
        /// Lowest latency (ms).
        min: f64,
        /// Highest latency (ms).
        max: f64,
    },
    /// `min` plus an exponentially distributed tail with mean `mean`:
    /// `{ exponential = { min = 1, mean = 4 } }`.
    Exponential {
        /// The floor (ms).
        min: f64,
        /// Mean of the tail above the floor (ms).
        mean: f64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Uniform { min: 1.0, max: 5.0 }
    }
}

/// Network behaviour of a link (or of every link, as the global default).
///
/// Probabilities are in `[0, 1]`; times are in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Latency distribution (default: uniform 1–5 ms).
    #[serde(default)]
    pub latency: Latency,
    /// Probability that a message is lost.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub loss: f64,
    /// Probability that a message is delivered twice (the copy gets its own
    /// latency and message id).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicate: f64,
    /// Probability that a message is delayed by an extra random amount of up
    /// to `reorder_ms`, letting later messages overtake it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reorder: f64,
    /// Largest extra delay of a reordered message (ms).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reorder_ms: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The largest latency or delay accepted anywhere (one day), in ms.
const MAX_MS: f64 = 86_400_000.0;

/// Milliseconds to whole microseconds (validated input only).
pub(crate) fn ms_to_us(ms: f64) -> u64 {
    let us = (ms * 1000.0).round();
    if us.is_nan() || us <= 0.0 {
        0
    } else if us >= u64::MAX as f64 {
        u64::MAX
    } else {
        us as u64
    }
}

fn check_prob(field: &str, name: &str, p: f64) -> Result<(), String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "{field}.{name}: probability must be within [0, 1], got {p}"
        ))
    }
}

fn check_ms(field: &str, v: f64, min: f64) -> Result<(), String> {
    if !v.is_finite() || v < min || v > MAX_MS {
        Err(format!(
            "{field}: must be a number of milliseconds within [{min}, {MAX_MS}], got {v}"
        ))
    } else {
        Ok(())
    }
}

impl NetConfig {
    /// Check the settings; the error names the offending field, prefixed
    /// with `field` (for example `network`).
    pub fn validate(&self, field: &str) -> Result<(), String> {
        let lat = format!("{field}.latency");
        match self.latency {
            Latency::Fixed(ms) => check_ms(&format!("{lat}.fixed"), ms, 0.001)?,
            Latency::Uniform { min, max } => {
                check_ms(&format!("{lat}.uniform.min"), min, 0.001)?;
                check_ms(&format!("{lat}.uniform.max"), max, 0.001)?;
                if max < min {
                    return Err(format!(
                        "{lat}.uniform.max: must be at least min ({min}), got {max}"
                    ));
                }
            }
            Latency::Exponential { min, mean } => {
                check_ms(&format!("{lat}.exponential.min"), min, 0.001)?;
                check_ms(&format!("{lat}.exponential.mean"), mean, 0.0)?;
            }
        }
        check_prob(field, "loss", self.loss)?;
        check_prob(field, "duplicate", self.duplicate)?;
        check_prob(field, "reorder", self.reorder)?;
        check_ms(&format!("{field}.reorder_ms"), self.reorder_ms, 0.0)?;
        Ok(())
    }

    /// The validated, integer form used on the hot path.
    pub(crate) fn compile(&self, field: &str) -> Result<LinkModel, String> {
        self.validate(field)?;
        let latency = match self.latency {
            Latency::Fixed(ms) => LatencyModel::Fixed(ms_to_us(ms).max(1)),
            Latency::Uniform { min, max } => {
                LatencyModel::Uniform(ms_to_us(min).max(1), ms_to_us(max).max(1))
            }
            Latency::Exponential { min, mean } => {
                LatencyModel::Exponential(ms_to_us(min).max(1), mean * 1000.0)
            }
        };
        Ok(LinkModel {
            latency,
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            reorder_us: ms_to_us(self.reorder_ms),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LatencyModel {
    Fixed(u64),
    Uniform(u64, u64),
    /// Floor in µs and mean of the tail in µs.
    Exponential(u64, f64),
}

/// A compiled [`NetConfig`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LinkModel {
    latency: LatencyModel,
    pub(crate) loss: f64,
    pub(crate) duplicate: f64,
    reorder: f64,
    reorder_us: u64,
}

impl LinkModel {
    /// Sample one crossing: latency plus any reordering delay, in µs (>= 1).
    pub(crate) fn delay_us(&self, rng: &mut dyn RngCore) -> u64 {
        let base = match self.latency {
            LatencyModel::Fixed(us) => us,
            LatencyModel::Uniform(lo, hi) => uniform_u64(rng, lo, hi),
            LatencyModel::Exponential(min, mean) => {
                let tail = exponential(rng, mean);
                let tail = if tail >= MAX_MS * 1000.0 {
                    (MAX_MS * 1000.0) as u64
                } else {
                    tail as u64
                };
                min.saturating_add(tail)
            }
        };
        let extra = if self.reorder > 0.0 && chance(rng, self.reorder) {
            uniform_u64(rng, 0, self.reorder_us)
        } else {
            0
        };
        base.saturating_add(extra).max(1)
    }

    /// Whether this message is lost.
    pub(crate) fn lost(&self, rng: &mut dyn RngCore) -> bool {
        self.loss > 0.0 && chance(rng, self.loss)
    }

    /// Whether this message is duplicated.
    pub(crate) fn duplicated(&self, rng: &mut dyn RngCore) -> bool {
        self.duplicate > 0.0 && chance(rng, self.duplicate)
    }
}

/// A cut in the network: messages from any node of `from` to any node of
/// `to` are dropped. Sets are sorted for binary search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    from: Vec<u64>,
    to: Vec<u64>,
}

impl Cut {
    pub(crate) fn new(from: &[u64], to: &[u64]) -> Cut {
        let mut from = from.to_vec();
        from.sort_unstable();
        from.dedup();
        let mut to = to.to_vec();
        to.sort_unstable();
        to.dedup();
        Cut { from, to }
    }

    fn blocks(&self, from: u64, to: u64) -> bool {
        self.from.binary_search(&from).is_ok() && self.to.binary_search(&to).is_ok()
    }
}

/// The set of active cuts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Partitions {
    cuts: Vec<Cut>,
}

impl Partitions {
    pub(crate) fn is_empty(&self) -> bool {
        self.cuts.is_empty()
    }

    pub(crate) fn blocks(&self, from: u64, to: u64) -> bool {
        self.cuts.iter().any(|c| c.blocks(from, to))
    }

    pub(crate) fn add(&mut self, cut: Cut) {
        if !cut.from.is_empty() && !cut.to.is_empty() {
            self.cuts.push(cut);
        }
    }

    /// Split `all` nodes into `groups` (nodes in no group form one more
    /// group) and cut every pair of groups both ways.
    pub(crate) fn split(&mut self, all: u64, groups: &[Vec<u64>]) {
        let listed: BTreeSet<u64> = groups.iter().flatten().copied().collect();
        let rest: Vec<u64> = (0..all).filter(|n| !listed.contains(n)).collect();
        let mut gs: Vec<&[u64]> = groups.iter().map(|g| g.as_slice()).collect();
        if !rest.is_empty() {
            gs.push(&rest);
        }
        for (i, a) in gs.iter().enumerate() {
            for (j, b) in gs.iter().enumerate() {
                if i != j {
                    self.add(Cut::new(a, b));
                }
            }
        }
    }

    pub(crate) fn heal(&mut self) {
        self.cuts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{node_rng, Stream};

    #[test]
    fn validation_names_the_field() {
        let bad = NetConfig {
            loss: 1.5,
            ..NetConfig::default()
        };
        assert!(bad
            .validate("network")
            .unwrap_err()
            .starts_with("network.loss"));
        let bad = NetConfig {
            latency: Latency::Uniform { min: 5.0, max: 1.0 },
            ..NetConfig::default()
        };
        assert!(bad
            .validate("n")
            .unwrap_err()
            .starts_with("n.latency.uniform.max"));
        let bad = NetConfig {
            latency: Latency::Fixed(0.0),
            ..NetConfig::default()
        };
        assert!(bad
            .validate("n")
            .unwrap_err()
            .starts_with("n.latency.fixed"));
        let bad = NetConfig {
            latency: Latency::Fixed(f64::NAN),
            ..NetConfig::default()
        };
        assert!(bad.validate("n").is_err());
    }

    #[test]
    fn latencies_stay_within_their_distribution() {
        let mut rng = node_rng(3, 0, Stream::Net);
        let m = NetConfig {
            latency: Latency::Uniform { min: 1.0, max: 2.0 },
            ..NetConfig::default()
        }
        .compile("n")
        .unwrap();
        for _ in 0..1000 {
            let d = m.delay_us(&mut rng);
            assert!((1000..=2000).contains(&d));
        }
        let m = NetConfig {
            latency: Latency::Exponential {
                min: 1.0,
                mean: 3.0,
            },
            ..NetConfig::default()
        }
        .compile("n")
        .unwrap();
        let mean = (0..20_000).map(|_| m.delay_us(&mut rng)).sum::<u64>() / 20_000;
        assert!((3_800..4_200).contains(&mean), "{mean}");
    }

    #[test]
    fn split_cuts_between_groups_only() {
        let mut p = Partitions::default();
        p.split(5, &[vec![0, 1], vec![2]]);
        assert!(!p.blocks(0, 1));
        assert!(p.blocks(0, 2));
        assert!(p.blocks(2, 0));
        assert!(p.blocks(3, 1));
        assert!(!p.blocks(3, 4));
        p.heal();
        assert!(!p.blocks(0, 2));
    }
}
