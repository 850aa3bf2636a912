//! Per-node clocks: each node sees a local time that is a piecewise-linear
//! function of virtual time (an offset plus a drift rate), so clock skew and
//! drift can be injected without the node knowing.

use serde::Serialize;
use shen_rings::Time;

const PPM: i128 = 1_000_000;

/// The smallest drift accepted, in parts per million (a clock must still
/// move forward).
pub const MIN_DRIFT_PPM: i64 = -999_999;
/// The largest drift accepted, in parts per million (the clock runs at most
/// 1,001 times as fast as virtual time).
pub const MAX_DRIFT_PPM: i64 = 1_000_000_000;

/// A node's clock: `local(v) = anchor_local + (v - anchor_virtual) * (1 +
/// drift_ppm / 10^6)`, clamped at zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeClock {
    anchor_virtual: u64,
    anchor_local: i128,
    drift_ppm: i64,
}

fn clamp_time(us: i128) -> Time {
    if us <= 0 {
        Time::ZERO
    } else if us >= i128::from(u64::MAX) {
        Time::MAX
    } else {
        Time::from_micros(us as u64)
    }
}

impl NodeClock {
    /// True when the clock reads exactly virtual time.
    #[inline]
    pub fn is_exact(&self) -> bool {
        self.drift_ppm == 0 && self.anchor_local == i128::from(self.anchor_virtual)
    }

    /// The current drift in parts per million.
    pub fn drift_ppm(&self) -> i64 {
        self.drift_ppm
    }

    fn local_raw(&self, v: Time) -> i128 {
        let dv = i128::from(v.as_micros()) - i128::from(self.anchor_virtual);
        let scaled = dv * (PPM + i128::from(self.drift_ppm));
        self.anchor_local + scaled.div_euclid(PPM)
    }

    /// The local time the node reads at virtual time `v`.
    #[inline]
    pub fn local(&self, v: Time) -> Time {
        if self.is_exact() {
            return v;
        }
        clamp_time(self.local_raw(v))
    }

    /// The earliest virtual time, not before `now`, at which the node's
    /// clock reads `local` or later.
    pub fn virtual_for(&self, local: Time, now: Time) -> Time {
        if self.is_exact() {
            return local.max(now);
        }
        let target = i128::from(local.as_micros());
        if self.local(now) >= local {
            return now;
        }
        let rate = PPM + i128::from(self.drift_ppm);
        if rate <= 0 {
            return Time::MAX;
        }
        let need = target - self.anchor_local;
        // ceil(need * PPM / rate)
        let dv = (need * PPM + rate - 1).div_euclid(rate);
        let mut v = i128::from(self.anchor_virtual) + dv;
        // Integer rounding can be one off either way: settle it exactly
        // (a few steps at most; bounded so no input can spin here).
        if v >= i128::from(u64::MAX) {
            return Time::MAX;
        }
        let floor = i128::from(now.as_micros());
        for _ in 0..4 {
            if v > floor && self.local_raw(clamp_time(v - 1)) >= target {
                v -= 1;
            }
        }
        for _ in 0..4 {
            if self.local_raw(clamp_time(v)) < target {
                v += 1;
            }
        }
        clamp_time(v).max(now)
    }

    fn rebase(&mut self, now: Time) {
        self.anchor_local = self.local_raw(now);
        self.anchor_virtual = now.as_micros();
    }

    /// Step the clock by `delta_us` (negative steps it back) at virtual time
    /// `now`.
    pub fn step(&mut self, now: Time, delta_us: i64) {
        self.rebase(now);
        self.anchor_local += i128::from(delta_us);
    }

    /// From `now` on, run the clock `drift_ppm` parts per million fast
    /// (negative: slow). Continuous: the reading at `now` does not jump.
    pub fn set_drift(&mut self, now: Time, drift_ppm: i64) {
        self.rebase(now);
        self.drift_ppm = drift_ppm.clamp(MIN_DRIFT_PPM, MAX_DRIFT_PPM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_clock_is_identity() {
        let c = NodeClock::default();
        assert!(c.is_exact());
        assert_eq!(c.local(Time::from_millis(5)), Time::from_millis(5));
        assert_eq!(
            c.virtual_for(Time::from_millis(9), Time::from_millis(5)),
            Time::from_millis(9)
        );
    }

    #[test]
    fn skew_and_drift_round_trip() {
        let mut c = NodeClock::default();
        c.step(Time::from_millis(10), 5_000);
        assert_eq!(c.local(Time::from_millis(10)), Time::from_millis(15));
        c.set_drift(Time::from_millis(10), 500_000); // 1.5x
        assert_eq!(c.local(Time::from_millis(20)), Time::from_millis(30));
        // a timer at local 45 ms fires at virtual 30 ms
        assert_eq!(
            c.virtual_for(Time::from_millis(45), Time::from_millis(20)),
            Time::from_millis(30)
        );
        // already due: fires now
        assert_eq!(
            c.virtual_for(Time::from_millis(1), Time::from_millis(20)),
            Time::from_millis(20)
        );
        for l in 30_000..30_100u64 {
            let v = c.virtual_for(Time::from_micros(l), Time::from_millis(20));
            assert!(c.local(v) >= Time::from_micros(l));
            assert!(c.local(Time::from_micros(v.as_micros() - 1)) < Time::from_micros(l));
        }
        let mut slow = NodeClock::default();
        slow.set_drift(Time::ZERO, -500_000);
        assert_eq!(slow.local(Time::from_millis(10)), Time::from_millis(5));
        assert_eq!(
            slow.virtual_for(Time::from_millis(5), Time::ZERO),
            Time::from_millis(10)
        );
        let mut back = NodeClock::default();
        back.step(Time::ZERO, -1_000_000);
        assert_eq!(back.local(Time::from_millis(500)), Time::ZERO);
        assert_eq!(
            back.virtual_for(Time::from_millis(1), Time::ZERO),
            Time::from_millis(1001)
        );
    }

    #[test]
    fn extreme_clocks_stay_exact_and_terminate() {
        for drift in [MIN_DRIFT_PPM, -123_457, 1, 999_999, MAX_DRIFT_PPM] {
            for skew in [-5_000_000i64, 0, 7_777_777] {
                let mut c = NodeClock::default();
                c.step(Time::from_millis(3), skew);
                c.set_drift(Time::from_millis(4), drift);
                let now = Time::from_millis(5);
                for l in [0u64, 1, 4_999, 5_000_001, 1 << 40, u64::MAX - 1, u64::MAX] {
                    let v = c.virtual_for(Time::from_micros(l), now);
                    assert!(v >= now);
                    if v < Time::MAX {
                        assert!(c.local(v) >= Time::from_micros(l), "{drift} {skew} {l}");
                        if v > now {
                            let before = Time::from_micros(v.as_micros() - 1);
                            assert!(c.local(before) < Time::from_micros(l), "{drift} {skew} {l}");
                        }
                    }
                }
            }
        }
    }
}
