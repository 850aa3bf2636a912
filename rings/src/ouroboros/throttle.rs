//! Throttle: a token bucket over the bytes this node pushes to replicas catching up (rebalancing, refills).
//!
//! A replica that joins a chain as a learner, or comes back behind the
//! commit point, is sent everything it lacks from its predecessor's disk
//! (state transfer). Unthrottled, that stream competes with the chain's
//! own appends for the disk, the CPU and the link, and the write rate of
//! the cluster falls while partitions move (the issue-17 bench measured
//! appends at 19–25 % of their steady rate while 48 partitions moved at
//! 32–48 MB/s on two cores). `OuroborosConfig::rebalance_bytes_per_sec`
//! caps that stream: credit accrues at the rate, up to a burst of 100 ms
//! worth (at least one batch), and a catch-up batch is sent only while the
//! credit is positive; the batch's bytes are then spent (so the credit
//! overshoots by at most one batch). A partition that finds no credit
//! waits for the next tick, which pushes again.
//!
//! The throttle only decides *when* catch-up entries are sent, never
//! which: no safety argument depends on it. It is a local setting (nodes
//! may use different rates); time comes from the driver, so the sans-IO
//! determinism holds.

use crate::contract::Time;

/// A token bucket in bytes; `None` rate: unlimited.
#[derive(Clone, Debug)]
pub(super) struct Throttle {
    rate: Option<u64>,
    burst: i64,
    credit: i64,
    at: Time,
}

impl Throttle {
    /// A bucket filling at `rate` bytes per second, holding at most 100 ms
    /// of it and never less than `min_burst` (one batch). Starts full.
    pub(super) fn new(rate: Option<u64>, min_burst: u64) -> Self {
        let burst = rate.map_or(i64::MAX, |r| clamp_i64((r / 10).max(min_burst).max(1)));
        Throttle {
            rate,
            burst,
            credit: burst,
            at: Time::ZERO,
        }
    }

    fn refill(&mut self, now: Time) {
        let Some(rate) = self.rate else { return };
        let dt = now.saturating_since(self.at).as_micros();
        if dt == 0 {
            return;
        }
        self.at = now;
        let earned = clamp_i64((u128::from(rate) * dt / 1_000_000) as u64);
        self.credit = self.credit.saturating_add(earned).min(self.burst);
    }

    /// May a batch be sent now?
    pub(super) fn allows(&mut self, now: Time) -> bool {
        if self.rate.is_none() {
            return true;
        }
        self.refill(now);
        self.credit > 0
    }

    /// A batch of `bytes` was sent.
    pub(super) fn spend(&mut self, bytes: u64) {
        if self.rate.is_some() {
            self.credit = self.credit.saturating_sub(clamp_i64(bytes));
        }
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes sent over `ms` milliseconds, one attempt per 10 ms tick, each
    /// sending batches of `batch` bytes while allowed.
    fn sent_over(rate: Option<u64>, batch: u64, ms: u64) -> u64 {
        let mut t = Throttle::new(rate, batch);
        let mut sent = 0;
        for tick in 0..=ms / 10 {
            let now = Time::from_millis(tick * 10);
            // At most 64 batches per tick (the push window caps it too).
            for _ in 0..64 {
                if !t.allows(now) {
                    break;
                }
                t.spend(batch);
                sent += batch;
            }
        }
        sent
    }

    #[test]
    fn the_rate_is_kept_within_one_burst_and_one_batch() {
        // (rate B/s, batch B, over ms)
        let rows: &[(u64, u64, u64)] = &[
            (1 << 20, 256 << 10, 10_000),
            (16 << 20, 256 << 10, 5_000),
            (100 << 20, 64 << 10, 2_000),
            (10_000, 1_000, 60_000),
            (1, 1_000, 10_000),
        ];
        for &(rate, batch, ms) in rows {
            let got = sent_over(Some(rate), batch, ms);
            let ideal = rate * ms / 1000;
            let burst = (rate / 10).max(batch);
            assert!(
                got <= ideal + burst + batch,
                "rate {rate}, batch {batch}: sent {got}, ideal {ideal}"
            );
            assert!(
                got + 2 * batch >= ideal,
                "rate {rate}, batch {batch}: sent only {got} of {ideal}"
            );
        }
    }

    #[test]
    fn unlimited_never_holds_back() {
        let mut t = Throttle::new(None, 1);
        for i in 0..1000 {
            assert!(t.allows(Time::from_millis(i)));
            t.spend(u64::MAX);
        }
    }

    #[test]
    fn idle_time_does_not_store_more_than_a_burst() {
        let mut t = Throttle::new(Some(1 << 20), 1024);
        assert!(t.allows(Time::ZERO));
        t.spend(1 << 30); // deep in debt
        assert!(!t.allows(Time::from_secs(1)));
        // After an hour idle, only a burst (100 ms of the rate) is ready.
        let now = Time::from_secs(3600);
        let mut sent = 0u64;
        while t.allows(now) {
            t.spend(1024);
            sent += 1024;
        }
        assert!(sent <= (1 << 20) / 10 + 1024, "{sent}");
        assert!(sent >= (1 << 20) / 10, "{sent}");
    }
}
