//! The phi-accrual failure detector (Hayashibara et al.), sans-IO.
//!
//! Instead of a yes/no timeout, the detector outputs a suspicion level
//! `phi = -log10(P(a heartbeat arrives later than now))`, computed from the
//! observed distribution of heartbeat inter-arrival times (a bounded window
//! of samples, modelled as a normal distribution with a floor on its
//! standard deviation). `phi = 8` means roughly a one-in-10^8 chance that
//! a live peer would be this late. An acceptable-pause allowance is added
//! to the mean so short stalls (GC, a slow link) do not raise suspicion.
//!
//! All transcendental math goes through the `libm` crate so the result is
//! bit-identical natively and in `wasm32` (the platform `exp`/`log10` may
//! differ in the last bit between targets).

use alloc::collections::VecDeque;
use core::time::Duration;

use crate::contract::Time;

/// Detector settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhiConfig {
    /// Suspicion threshold (Cassandra and chitchat use 8).
    pub threshold: f64,
    /// Inter-arrival samples kept.
    pub window: usize,
    /// Floor on the standard deviation, so a perfectly regular peer does
    /// not become suspect after a tiny delay.
    pub min_std_dev: Duration,
    /// Pause tolerated on top of the mean interval.
    pub acceptable_pause: Duration,
    /// Interval assumed before the second heartbeat (bootstraps the window).
    pub first_interval: Duration,
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig {
            threshold: 8.0,
            window: 1000,
            min_std_dev: Duration::from_millis(100),
            acceptable_pause: Duration::from_millis(0),
            first_interval: Duration::from_millis(200),
        }
    }
}

/// Inter-arrival statistics of one monitored peer.
#[derive(Clone, Debug)]
pub struct PhiAccrual {
    intervals: VecDeque<u64>,
    sum: u128,
    sum_sq: u128,
    last: Option<Time>,
}

impl Default for PhiAccrual {
    fn default() -> Self {
        Self::new()
    }
}

impl PhiAccrual {
    /// A detector that has seen no heartbeat.
    pub fn new() -> Self {
        PhiAccrual {
            intervals: VecDeque::new(),
            sum: 0,
            sum_sq: 0,
            last: None,
        }
    }

    /// Record a heartbeat arriving at `now`.
    pub fn heartbeat(&mut self, now: Time, config: &PhiConfig) {
        match self.last {
            None => {
                // Bootstrap with two samples around the expected interval so
                // the first real gap is judged against something sensible.
                let first = config.first_interval.as_micros() as u64;
                self.push(first + first / 4, config);
                self.push(first - first / 4, config);
            }
            Some(last) if now > last => {
                self.push((now - last).as_micros() as u64, config);
            }
            Some(_) => {}
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
    }

    fn push(&mut self, us: u64, config: &PhiConfig) {
        let window = config.window.max(1);
        while self.intervals.len() >= window {
            if let Some(old) = self.intervals.pop_front() {
                self.sum -= u128::from(old);
                self.sum_sq -= u128::from(old) * u128::from(old);
            }
        }
        self.intervals.push_back(us);
        self.sum += u128::from(us);
        self.sum_sq += u128::from(us) * u128::from(us);
    }

    /// When the last heartbeat arrived.
    pub fn last_heartbeat(&self) -> Option<Time> {
        self.last
    }

    /// Samples in the window.
    pub fn samples(&self) -> usize {
        self.intervals.len()
    }

    /// Mean inter-arrival time in microseconds (0 with no samples).
    pub fn mean_us(&self) -> f64 {
        if self.intervals.is_empty() {
            0.0
        } else {
            self.sum as f64 / self.intervals.len() as f64
        }
    }

    /// The suspicion level at `now` (0 before the first heartbeat).
    pub fn phi(&self, now: Time, config: &PhiConfig) -> f64 {
        let Some(last) = self.last else {
            return 0.0;
        };
        let n = self.intervals.len() as f64;
        if n == 0.0 {
            return 0.0;
        }
        let mean = self.sum as f64 / n;
        let var = (self.sum_sq as f64 / n - mean * mean).max(0.0);
        let min_sd = config.min_std_dev.as_micros() as f64;
        let sd = libm::sqrt(var).max(min_sd).max(1.0);
        let mean = mean + config.acceptable_pause.as_micros() as f64;
        let elapsed = now.saturating_since(last).as_micros() as f64;
        phi_normal(elapsed, mean, sd)
    }

    /// Whether the peer is suspected at `now` (phi at or above threshold).
    pub fn is_suspect(&self, now: Time, config: &PhiConfig) -> bool {
        self.phi(now, config) >= config.threshold
    }
}

/// `-log10(1 - CDF(elapsed))` for a normal distribution, using the logistic
/// approximation of the normal CDF (max error ~1e-4), computed stably for
/// large deviations.
fn phi_normal(elapsed: f64, mean: f64, sd: f64) -> f64 {
    let y = (elapsed - mean) / sd;
    // P(late) ≈ 1 / (1 + exp(y * (1.5976 + 0.070566 y²))).
    let z = y * (1.5976 + 0.070566 * y * y);
    if z > 700.0 {
        // exp would overflow: -log10(1/(1+e^z)) ≈ z / ln 10.
        return z / core::f64::consts::LN_10;
    }
    let e = libm::exp(z);
    // -log10(1 / (1 + e)) = log10(1 + e)
    libm::log10(1.0 + e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PhiConfig {
        PhiConfig::default()
    }

    #[test]
    fn regular_heartbeats_keep_phi_low_and_silence_raises_it() {
        let c = cfg();
        let mut d = PhiAccrual::new();
        for i in 0..100u64 {
            d.heartbeat(Time::from_millis(i * 200), &c);
        }
        let last = Time::from_millis(99 * 200);
        assert!(d.phi(last + Duration::from_millis(200), &c) < 1.0);
        assert!(!d.is_suspect(last + Duration::from_millis(400), &c));
        let p1 = d.phi(last + Duration::from_millis(600), &c);
        let p2 = d.phi(last + Duration::from_millis(1000), &c);
        assert!(p2 > p1, "phi grows with silence");
        assert!(d.is_suspect(last + Duration::from_secs(2), &c));
    }

    #[test]
    fn phi_is_monotonic_and_finite_for_huge_gaps() {
        let c = cfg();
        let mut d = PhiAccrual::new();
        d.heartbeat(Time::ZERO, &c);
        let mut prev = 0.0;
        for ms in (0..100_000u64).step_by(250) {
            let p = d.phi(Time::from_millis(ms), &c);
            assert!(p.is_finite());
            assert!(p >= prev);
            prev = p;
        }
        assert!(d.phi(Time::MAX, &c).is_finite());
    }

    #[test]
    fn acceptable_pause_delays_suspicion() {
        let c = cfg();
        let lenient = PhiConfig {
            acceptable_pause: Duration::from_secs(2),
            ..cfg()
        };
        let mut d = PhiAccrual::new();
        for i in 0..50u64 {
            d.heartbeat(Time::from_millis(i * 200), &c);
        }
        let t = Time::from_millis(49 * 200) + Duration::from_millis(1500);
        assert!(d.is_suspect(t, &c));
        assert!(!d.is_suspect(t, &lenient));
    }

    #[test]
    fn window_is_bounded() {
        let c = PhiConfig {
            window: 10,
            ..cfg()
        };
        let mut d = PhiAccrual::new();
        for i in 0..100u64 {
            d.heartbeat(Time::from_millis(i * 100), &c);
        }
        assert_eq!(d.samples(), 10);
        assert!((d.mean_us() - 100_000.0).abs() < 1.0);
    }

    #[test]
    fn never_heard_from_is_not_suspect_and_reordered_heartbeats_are_ignored() {
        let c = cfg();
        let mut d = PhiAccrual::new();
        assert_eq!(d.phi(Time::from_secs(100), &c), 0.0);
        d.heartbeat(Time::from_secs(10), &c);
        d.heartbeat(Time::from_secs(5), &c);
        assert_eq!(d.last_heartbeat(), Some(Time::from_secs(10)));
    }
}
